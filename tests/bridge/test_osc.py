"""Layers 1-3 of the bridge: exact OSC bytes, routing without sockets, UDP transport."""
from __future__ import annotations

import struct

import pytest
from pythonosc.osc_bundle import OscBundle as PyOscBundle
from pythonosc.osc_message import OscMessage as PyOscMessage

from mixbridge.bridge.errors import OscEncodeError, OscParseError
from mixbridge.bridge.osc import (
    IMMEDIATELY,
    NTP_UNIX_OFFSET_S,
    OscBundle,
    OscMessage,
    decode,
    encode_bundle,
    encode_message,
    iter_messages,
    ntp_timetag,
    timetag_to_unix,
)
from mixbridge.bridge.routing import Router, address_matches
from mixbridge.bridge.transport import OscUdpClient, OscUdpServer
from tests.support import run_python

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
     b"\x00\x00\x00\x00" b"\x00\x00\x00\x1f" b"\x00\x00\x40\x03"
     b"\x00\x00\x00\x02" b"\x00\x00\x00\x00" b"\x00\x00\x00\x00"),
    # Ardour plugin parameter: ssid 1, piid 2, param 5 (Threshold), -20 dB
    (OscMessage("/strip/plugin/parameter", (1, 2, 5, -20.0)),
     b"/strip/plugin/parameter\x00" b",iiif\x00\x00\x00"
     b"\x00\x00\x00\x01" b"\x00\x00\x00\x02" b"\x00\x00\x00\x05" b"\xc1\xa0\x00\x00"),
    # Ardour aux send: ssid 3, sendid 1, -12 dB ("/strip/send/gain" = 16 chars -> 20 bytes)
    (OscMessage("/strip/send/gain", (3, 1, -12.0)),
     b"/strip/send/gain\x00\x00\x00\x00" b",iif\x00\x00\x00\x00"
     b"\x00\x00\x00\x03" b"\x00\x00\x00\x01" b"\xc1\x40\x00\x00"),
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


# python-osc 1.10.2 would skip these with a log line, loop forever, or raise a non-OSC error;
# the adapter in bridge/osc.py turns each into an OscParseError a receiver can count.
_HEADER = b"#bundle\x00" + struct.pack(">Q", IMMEDIATELY)
_ONE = encode_message(OscMessage("/a", (1,)))


def _nested_bundles(depth: int) -> bytes:
    wire = _HEADER
    for _ in range(depth):
        wire = _HEADER + struct.pack(">i", len(wire)) + wire
    return wire


@pytest.mark.parametrize("junk,err", [
    (_HEADER + struct.pack(">i", -4) + _ONE, "element size -4"),  # python-osc: endless loop
    (_HEADER + struct.pack(">i", 4 + len(_HEADER)) + _HEADER + struct.pack(">i", -8), "element size -8"),  # nested
    (_HEADER + struct.pack(">i", 4) + b"abcd", "must start with '/'"),  # python-osc: dropped with a log line
    (_HEADER + struct.pack(">i", 64) + _ONE, "element size 64"),  # python-osc: truncated element parsed
    (b"/x\x00\x00,Si\x00" b"ab\x00\x00" b"\x00\x00\x00\x01", "'S'"),  # python-osc: skips S, misreads i
    (b"/x\x00\x00,I\x00\x00", "'I'"),
    (b"/x\xff\x00,\x00\x00\x00", "utf-8"),  # python-osc: UnicodeDecodeError
    (_nested_bundles(3000), "recursion"),  # 60 kB of bundles in bundles: RecursionError
])
def test_decode_refuses_what_python_osc_would_mishandle(junk, err):
    with pytest.raises(OscParseError, match=err):
        decode(junk)


def test_decode_keeps_python_osc_leniency():
    # documented in bridge/osc.py: bytes after the last argument are ignored, a cut-short final float is padded
    assert decode(_ONE + b"\x00\x00\x00\x07").args == (1,)
    assert decode(b"/x\x00\x00,f\x00\x00" b"\x3f\x80").args == (1.0,)


def test_exact_timetag_survives_where_float_seconds_would_not():
    tt = ((1_700_000_000 + NTP_UNIX_OFFSET_S) << 32) | 12345  # not representable as float Unix seconds
    wire = encode_bundle([OscBundle(IMMEDIATELY, (OscMessage("/a", (1,)),))], tt)
    assert wire[8:16] == struct.pack(">Q", tt) and wire[28:36] == struct.pack(">Q", IMMEDIATELY)
    b = decode(wire)
    assert b.timetag == tt and b.elements[0].timetag == IMMEDIATELY
    assert [x.address for x in PyOscBundle(wire).content(0)] == ["/a"]


def test_time_tags_outside_the_ntp_era_are_refused():
    with pytest.raises(OscEncodeError, match="no NTP time tag"):
        ntp_timetag(-NTP_UNIX_OFFSET_S - 1.0)  # before 1900
    with pytest.raises(OscEncodeError, match="no NTP time tag"):
        ntp_timetag(2.0**32)  # after the NTP era ends in 2036
    with pytest.raises(OscEncodeError, match="2\\*\\*64"):
        encode_bundle([], 2**64)


def test_int_tags_are_explicit_not_guessed():
    # python-osc would guess 'h' for -2**31 (bit_length 32) and MIDI for a 4-tuple
    assert encode_message(OscMessage("/x", (-(2**31),))) == b"/x\x00\x00,i\x00\x00\x80\x00\x00\x00"
    assert decode(encode_message(OscMessage("/x", (bytearray(b"ab"),)))).args == (b"ab",)


@pytest.mark.parametrize("bad,err", [
    (OscMessage("/x", (b"",)), "[Bb]lob"),  # python-osc refuses empty blobs
    (OscMessage("/x", (1e40,)), "float"),
    (OscMessage("/x", ((1, 2, 3, 4),)), "type tuple"),
    (OscMessage("/x\x00y", ()), "NUL"),
    (OscMessage("/x", ("\udc80",)), "encode"),
])
def test_encode_errors_from_python_osc_are_typed(bad, err):
    with pytest.raises(OscEncodeError, match=err):
        encode_message(bad)


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
            "mixbridge.bridge.ardour, mixbridge.bridge.cli, mixbridge.bridge.plugin_maps, mixbridge.bridge.ace_laws, "
            "mixbridge.bridge.profile_reaper, mixbridge.bridge.profile_ableton, mixbridge.bridge.profile_ardour, "
            "mixbridge.bridge.live, mixbridge.bridge.live_chain, mixbridge.bridge.live_control; "
            "print('torch' in sys.modules)")
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
