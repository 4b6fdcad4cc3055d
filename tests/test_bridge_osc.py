"""Layers 1-3 of the bridge: exact OSC bytes, routing without sockets, UDP transport."""
from __future__ import annotations

import struct
import subprocess
import sys

import pytest
from pythonosc.osc_bundle import OscBundle as PyOscBundle
from pythonosc.osc_message import OscMessage as PyOscMessage

from mixbridge.bridge.errors import OscEncodeError, OscParseError
from mixbridge.bridge.osc import (
    IMMEDIATELY, NTP_UNIX_OFFSET_S, OscBundle, OscMessage, decode, encode_bundle, encode_message, iter_messages,
    ntp_timetag, timetag_to_unix,
)
from mixbridge.bridge.routing import Router, address_matches
from mixbridge.bridge.transport import OscUdpClient, OscUdpServer

#: NTP fractions are 1/2**32 s; a round trip through a float Unix time loses at most ~1 us.
TIMETAG_TOLERANCE_S = 1e-6

# Exact wire bytes, written out by hand from the OSC 1.0 spec (address and type tags NUL-padded
# to 4 bytes, big-endian int32/float32). One fixture per profile's address space.
FIXTURES = [
    # Ardour: /strip/gain ssid=2 -7.5 dB  ("/strip/gain" = 11 chars -> 12 bytes)
    (OscMessage("/strip/gain", (2, -7.5)),
     b"/strip/gain\x00" b",if\x00" b"\x00\x00\x00\x02" b"\xc0\xf0\x00\x00"),
    # Ardour handshake
    (OscMessage("/set_surface", (0, 31, 16387, 2, 0, 0)),
     b"/set_surface\x00\x00\x00\x00" b",iiiiii\x00"
     b"\x00\x00\x00\x00" b"\x00\x00\x00\x1f" b"\x00\x00\x40\x03" b"\x00\x00\x00\x02" b"\x00\x00\x00\x00" b"\x00\x00\x00\x00"),
    # Ardour plugin parameter: ssid 1, piid 2, param 5 (Threshold), -20 dB
    (OscMessage("/strip/plugin/parameter", (1, 2, 5, -20.0)),
     b"/strip/plugin/parameter\x00" b",iiif\x00\x00\x00"
     b"\x00\x00\x00\x01" b"\x00\x00\x00\x02" b"\x00\x00\x00\x05" b"\xc1\xa0\x00\x00"),
    # REAPER: /track/3/volume/db -6.0 ("/track/3/volume/db" = 18 chars -> 20 bytes)
    (OscMessage("/track/3/volume/db", (-6.0,)),
     b"/track/3/volume/db\x00\x00" b",f\x00\x00" b"\xc0\xc0\x00\x00"),
    # REAPER: /track/1/name "kick"
    (OscMessage("/track/1/name", ("kick",)),
     b"/track/1/name\x00\x00\x00" b",s\x00\x00" b"kick\x00\x00\x00\x00"),
    # Ableton: /live/track/set/volume 0 0.85 (0 dB)
    (OscMessage("/live/track/set/volume", (0, 0.85)),
     b"/live/track/set/volume\x00\x00" b",if\x00" b"\x00\x00\x00\x00" b"\x3f\x59\x99\x9a"),
    # no arguments
    (OscMessage("/live/test"), b"/live/test\x00\x00" b",\x00\x00\x00"),
]


@pytest.mark.parametrize("msg,wire", FIXTURES, ids=[m.address for m, _ in FIXTURES])
def test_exact_bytes_and_round_trip(msg, wire):
    assert encode_message(msg) == wire
    back = decode(wire)
    assert back.address == msg.address
    assert back.args == pytest.approx(msg.args) if msg.args else back.args == ()
    py = PyOscMessage(wire)  # an independent parser agrees
    assert py.address == msg.address and list(py.params) == pytest.approx(list(msg.args))


def test_bundle_bytes_timetag_and_python_osc_agree():
    tt = ntp_timetag(1_700_000_000.25)
    assert tt >> 32 == 1_700_000_000 + NTP_UNIX_OFFSET_S and (tt & 0xFFFFFFFF) == 2**30
    m = OscMessage("/strip/mute", (1, 1))
    wire = encode_bundle([m], tt)
    assert wire == b"#bundle\x00" + struct.pack(">Q", tt) + struct.pack(">i", 24) + encode_message(m)
    b = decode(wire)
    assert isinstance(b, OscBundle) and b.timetag == tt and b.messages() == [m]
    assert abs(timetag_to_unix(tt) - 1_700_000_000.25) < TIMETAG_TOLERANCE_S
    py = PyOscBundle(wire)
    assert [x.address for x in py] == ["/strip/mute"]
    assert list(iter_messages(b)) == [(tt, m)]
    assert timetag_to_unix(IMMEDIATELY) == 0.0


def test_all_argument_types_round_trip():
    m = OscMessage("/x", (1, "s", 2.5, True, False, None, b"abc"))
    assert m.typetags == "isfTFNb"
    assert decode(encode_message(m)) == m


@pytest.mark.parametrize("bad,err", [
    (OscMessage("no-slash", ()), "must start with '/'"),
    (OscMessage("/x", (2**31,)), "int32"),
    (OscMessage("/x", ([1],)), "type list"),
    (OscMessage("/x", ("a\x00b",)), "NUL"),
])
def test_encode_errors_name_the_problem(bad, err):
    with pytest.raises(OscEncodeError, match=err):
        encode_message(bad)


@pytest.mark.parametrize("junk", [b"", b"hello", b"/x\x00\x00,i\x00\x00\x00\x01", b"/x\x00\x00,q\x00\x00",
                                  b"#bundle\x00\x00", b"#bundle\x00" + b"\x00" * 8 + b"\x00\x00\x00\x07abc"])
def test_decode_rejects_malformed_bytes(junk):
    with pytest.raises(OscParseError):
        decode(junk)


def test_router_routes_by_pattern_and_counts_what_it_cannot_use():
    r = Router()
    got = []
    r.add("/track/*/volume/db", got.append)
    r.dispatch(encode_message(OscMessage("/track/4/volume/db", (-3.0,))))
    r.dispatch(encode_message(OscMessage("/track/4/pan", (0.5,))))
    r.dispatch(b"\x00garbage")
    r.dispatch(encode_bundle([OscMessage("/track/1/volume/db", (0.0,)), OscMessage("/track/2/volume/db", (1.0,))]))
    assert [m.address for m in got] == ["/track/4/volume/db", "/track/1/volume/db", "/track/2/volume/db"]
    assert (r.stats.datagrams, r.stats.messages, r.stats.unparsed, r.stats.unrouted) == (4, 4, 1, 1)
    assert "1 unparseable" in r.stats.summary()
    assert address_matches("/strip/plugin/**", "/strip/plugin/descriptor_end")
    assert not address_matches("/strip/*", "/strip/plugin/list")


def test_udp_round_trip_on_loopback():
    with OscUdpServer() as server, OscUdpClient("127.0.0.1", server.port) as client:
        got = []
        server.router.add("/**", got.append)
        client.send(OscMessage("/live/test"))
        client.send_bundle([OscMessage("/a", (1,)), OscMessage("/b", (2.0,))])
        import time
        deadline = time.monotonic() + 2
        while len(got) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert [m.address for m in got] == ["/live/test", "/a", "/b"]
    assert server.sock.fileno() == -1  # closed


def test_bridge_never_imports_torch():
    code = ("import sys, mixbridge.bridge.osc, mixbridge.bridge.routing, mixbridge.bridge.transport, "
            "mixbridge.bridge.profiles, mixbridge.bridge.push, mixbridge.bridge.automation, mixbridge.bridge.midi, "
            "mixbridge.bridge.ardour, mixbridge.bridge.cli, mixbridge.bridge.plugin_maps; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
