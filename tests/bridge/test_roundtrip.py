"""Issue 15, items 4 and 5: REAPER's empty bank slots, and round trips that keep the session.

REAPER is a fake peer that answers "refresh all surfaces" like REAPER does for a widened bank:
every slot up to the bank size, the empty ones as "Track N" at -150 dB. Ardour is the real
headless Ardour 7 (polarity through ``/strip/expand`` and select feedback, the sample rate from
``/strip/list``, a +6 dB send read back through float32, a fader at gain 0 read as -200).
"""
from __future__ import annotations

import json
import math
import time

import pytest

from mixbridge.app.cli import main
from mixbridge.bridge.ardour import HeadlessArdour, ardour_available
from mixbridge.bridge.errors import BridgeConfigError, DawRangeError
from mixbridge.bridge.osc import OscMessage, decode, encode_message, iter_messages
from mixbridge.bridge.profiles import READBACK_EDGE_REL, PulledTracks, store_fader, store_value
from mixbridge.bridge.push import DEFAULT_PULL_SAMPLE_RATE, pull, push
from mixbridge.bridge.transport import OscUdpClient, OscUdpServer, free_udp_port
from mixbridge.schema import CHANNEL_STRIP
from mixbridge.session import Session, Track, load, save

#: Values that crossed the wire as float32 (24-bit mantissa): relative error <= 2**-24.
FLOAT32_REL = 1e-6
#: OSC float32 plus Ardour's gain coefficient: far below audibility, above float32 round-off.
GAIN_TOLERANCE_DB = 1e-4
FADER_MIN_DB = CHANNEL_STRIP.param("fader.fader_db").min
BANK = 64


class BankedReaper:
    """Answers /action 41743 with Default.ReaperOSC feedback for every slot of the bank
    (``/device/track/count``): real tracks as given, empty slots named "Track N" at -150 dB."""

    def __init__(self, device_port: int, tracks: dict[int, tuple[str, float, float, float]]):
        self.device_port = device_port
        self.tracks = tracks
        self.bank = 8  # REAPER's default bank size
        self.received: list[OscMessage] = []
        self.server = OscUdpServer(on_datagram=self.on_datagram)

    def on_datagram(self, data, addr):
        for _, m in iter_messages(decode(data)):
            self.received.append(m)
            if m.address == "/device/track/count":
                self.bank = int(m.args[0])
            if m.address == "/action" and m.args == (41743,):
                dest = (addr[0], self.device_port)
                for n in range(1, self.bank + 1):
                    name, db, pan, mute = self.tracks.get(n, (f"Track {n}", -150.0, 0.5, 0.0))
                    msgs = [OscMessage(f"/track/{n}/name", (name,)), OscMessage(f"/track/{n}/volume/db", (db,)),
                            OscMessage(f"/track/{n}/pan", (pan,)), OscMessage(f"/track/{n}/mute", (mute,))]
                    if n in self.tracks:
                        msgs.append(OscMessage(f"/track/{n}/fx/3/fxparam/5/value", (0.75,)))
                    for msg in msgs:
                        self.server.reply(encode_message(msg), dest)


TWO = {1: ("Kick", -3.5, 0.25, 0.0), 2: ("Snare", 0.0, 0.5, 1.0)}


def test_reaper_push_lists_no_phantom_tracks_for_empty_bank_slots():
    device_port = free_udp_port()
    fake = BankedReaper(device_port, TWO)
    s = Session(48000, [Track("Kick", "k.wav"), Track("Snare", "s.wav")])
    s.validate()
    with fake.server:
        rep = push(s, "reaper", port=fake.server.port, reply_port=device_port, timeout_s=0.5)
    assert rep.plan.match.unmatched_daw == []  # not "Track 3" .. "Track 64"
    assert [(n, pos) for n, pos, _ in rep.plan.strips] == [("Kick", 0), ("Snare", 1)]
    counts = [m.args for m in fake.received if m.address == "/device/track/count"]
    assert counts[:2] == [(BANK,), (2,)]  # the bank narrows to the 2 real tracks
    # (the verification pass may refresh again, with the same bank)
    assert set(counts[2:]) <= {(2,)}


@pytest.mark.parametrize("clamp", [False, True])
def test_reaper_pull_creates_no_phantom_tracks(tmp_path, capsys, clamp):
    device_port = free_udp_port()
    fake = BankedReaper(device_port, TWO)
    out = tmp_path / "pulled.json"
    with fake.server:
        rc = main(["pull", "--daw", "reaper", "--port", str(fake.server.port), "--reply-port", str(device_port),
                   "--timeout-s", "1", "-o", str(out)] + (["--clamp"] if clamp else []))
    text = capsys.readouterr().out
    assert rc == 0, text
    data = json.loads(out.read_text())
    assert [t["name"] for t in data["tracks"]] == ["Kick", "Snare"]
    assert "ignored: 62 empty REAPER bank slots (3..64" in text and "clamped" not in text
    assert data["sample_rate"] == DEFAULT_PULL_SAMPLE_RATE and "48000 Hz (the default; pass --sample-rate)" in text


def test_reaper_keeps_real_tracks_at_minus_inf_and_maps_them_to_minimum_and_mute(tmp_path, capsys):
    """A track at -inf inside the bank is a real track (only the trailing run of default-named silent
    slots is empty); its fader becomes the schema's -48 dB with mute on, never an audible -48 dB."""
    device_port = free_udp_port()
    fake = BankedReaper(device_port, {1: ("Kick", -3.5, 0.25, 0.0), 2: ("Track 2", -150.0, 0.5, 0.0),
                                      3: ("Pad", -150.0, 0.5, 0.0)})
    out = tmp_path / "pulled.json"
    with fake.server:
        assert main(["pull", "--daw", "reaper", "--port", str(fake.server.port), "--reply-port", str(device_port),
                     "--timeout-s", "1", "--sample-rate", "44100", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    got = load(out)
    assert [t.name for t in got.tracks] == ["Kick", "Track 2", "Pad"]
    for t in got.tracks[1:]:
        assert t.params["fader"]["fader_db"] == FADER_MIN_DB and t.params["fader"]["mute"] == 1.0
    assert got.tracks[0].params["fader"]["mute"] == 0.0
    assert "silent: track 'Pad' fader.fader_db reads -150 dB (-inf, silent)" in text
    assert got.sample_rate == 44100 and "44100 Hz (--sample-rate)" in text


# ------------------------------------------------------------------------------- the read-back rules
def test_readback_within_float32_of_a_limit_is_the_limit():
    params = CHANNEL_STRIP.defaults()
    store_value(params, "send.send_db", 6.000000267, "", False, [])  # what Ardour reports for a pushed +6 dB
    assert params["send"]["send_db"] == 6.0
    top_hz = CHANNEL_STRIP.param("eq.peak1_freq_hz").max
    store_value(params, "eq.peak1_freq_hz", top_hz * (1 + 2 ** -24), "", False, [])  # one float32 step above
    assert params["eq"]["peak1_freq_hz"] == top_hz
    with pytest.raises(DawRangeError, match=r"send.send_db reads 6.01 .* pass --clamp"):
        store_value(params, "send.send_db", 6.0 + 1e3 * READBACK_EDGE_REL, "", False, [])


def test_a_fader_at_minus_inf_is_the_minimum_with_mute_but_an_audible_level_still_needs_clamp():
    pulled = PulledTracks()
    t = Track("a", "daw:x/a", CHANNEL_STRIP.defaults())
    store_fader(t.params, -200.0, -192.0, "track 'a' ", False, pulled)
    store_value(t.params, "fader.mute", 0.0, "", False, [])  # the DAW's mute button is off
    pulled.add(t)
    assert t.params["fader"] == {**t.params["fader"], "fader_db": FADER_MIN_DB, "mute": 1.0}
    assert len(pulled.silenced) == 1 and pulled.clamped == []
    store_fader(t.params, -math.inf, -150.0, "", False, pulled)
    assert t.params["fader"]["fader_db"] == FADER_MIN_DB
    with pytest.raises(DawRangeError, match="fader.fader_db reads -60"):
        store_fader(t.params, -60.0, -192.0, "", False, pulled)


def test_pull_refuses_a_bad_sample_rate():
    with pytest.raises(BridgeConfigError, match="--sample-rate 0 must be a positive integer"):
        pull("reaper", sample_rate=0)


# ------------------------------------------------------------------------------- the real Ardour
@pytest.fixture(scope="module")
def ardour(tmp_path_factory):
    if not ardour_available():
        pytest.skip("headless Ardour 7 (Debian 'ardour', ardour7-lua) not installed")
    a = HeadlessArdour(tmp_path_factory.mktemp("ardour_rt"), n_tracks=6, name="mbrt", plugins=(),
                       send_bus="Reverb", sample_rate=44100)
    a.create()
    a.start()
    yield a
    a.stop()


@pytest.mark.ardour
def test_ardour_pull_then_push_keeps_polarity_edges_and_rate(ardour, tmp_path, capsys):
    s = Session(44100, [Track(f"T{i + 1}", "x.wav") for i in range(6)])
    s.validate()
    for i, t in enumerate(s.tracks):
        t.params["polarity"]["invert"] = float(i % 2 == 0)   # T1, T3, T5 inverted
        t.params["fader"]["fader_db"] = -3.0 * i
        t.params["send"]["send_db"] = (6.0, -12.0, -80.0, 6.0, 0.0, -40.0)[i]  # +6 dB: the send's maximum
    path = save(s, tmp_path / "mix.json")
    port = ["--port", str(ardour.osc_port)]
    assert main(["push", str(path), "--daw", "ardour"] + port) == 0
    with OscUdpClient("127.0.0.1", ardour.osc_port) as c:  # a fader pulled to -inf in the DAW
        c.send(OscMessage("/strip/gain", (6, -300.0)))
    time.sleep(0.2)
    capsys.readouterr()

    pulled = tmp_path / "pulled.json"
    assert main(["pull", "--daw", "ardour", "-o", str(pulled)] + port) == 0  # no --clamp needed
    text = capsys.readouterr().out
    got = load(pulled)
    assert got.sample_rate == 44100 and "44100 Hz (reported by ardour)" in text
    assert "polarity" not in text and "clamped" not in text
    assert "silent: track 'T6' fader.fader_db reads -200 dB" in text
    by = {t.name: t for t in got.tracks}
    for t in s.tracks:
        g = by[t.name].params
        assert g["polarity"]["invert"] == t.params["polarity"]["invert"], t.name
        assert g["send"]["send_db"] == pytest.approx(t.params["send"]["send_db"], abs=GAIN_TOLERANCE_DB), t.name
    assert by["T1"].params["send"]["send_db"] == 6.0  # exactly the limit, not 6.000000267
    assert by["T6"].params["fader"] == {**by["T6"].params["fader"], "fader_db": FADER_MIN_DB, "mute": 1.0}

    # push the pulled session back: polarity is not reset, T6 stays silent
    assert main(["push", str(pulled), "--daw", "ardour"] + port) == 0
    capsys.readouterr()
    again = pull("ardour", port=ardour.osc_port).session
    for t in s.tracks:
        assert again.track(t.name).params["polarity"]["invert"] == t.params["polarity"]["invert"], t.name
    assert again.track("T6").params["fader"]["mute"] == 1.0


@pytest.mark.ardour
def test_ardour_rate_conflicting_with_sample_rate_is_an_error(ardour, capsys):
    rc = main(["pull", "--daw", "ardour", "--port", str(ardour.osc_port), "--sample-rate", "48000",
               "-o", "/nonexistent/never.json"])
    assert rc == 2
    assert "--sample-rate 48000 differs from the 44100 Hz ardour reports" in capsys.readouterr().err


class NamedFxReaper(BankedReaper):
    """A REAPER whose refresh also names each track's FX (``/track/N/fx/M/name``, Default.ReaperOSC FX_NAME)."""

    def __init__(self, device_port, tracks, fx):
        super().__init__(device_port, tracks)
        self.fx = fx  # {track: {slot: name}}

    def on_datagram(self, data, addr):
        super().on_datagram(data, addr)
        for _, m in iter_messages(decode(data)):
            if m.address == "/action" and m.args == (41743,):
                for n, slots in self.fx.items():
                    for slot, name in slots.items():
                        self.server.reply(encode_message(OscMessage(f"/track/{n}/fx/{slot}/name", (name,))),
                                          (addr[0], self.device_port))


def test_reaper_plugin_slots_are_found_by_name():
    """Track 1 has a gate in front of the chain (ZamEQ2 at 2 and 3, ZamComp at 4); track 2 has no ZamComp:
    the push drives the real slots, and reports the compressor of track 2 as not sent."""
    from mixbridge.bridge.profile_reaper import reaper_slot_layout

    assert reaper_slot_layout({1: "VST: ZamGate", 2: "VST: ZamEQ2 (Damien Zammit)", 3: "VST: ZamEQ2",
                               4: "VST: ZamComp"}, [(1, "ZamEQ2"), (2, "ZamEQ2"), (3, "ZamComp")]) == {1: 2, 2: 3, 3: 4}
    device_port = free_udp_port()
    fx = {1: {1: "VST: ZamGate (Damien Zammit)", 2: "VST: ZamEQ2 (Damien Zammit)", 3: "VST: ZamEQ2 (Damien Zammit)",
              4: "VST: ZamComp (Damien Zammit)"},
          2: {1: "VST: ZamEQ2 (Damien Zammit)", 2: "VST: ZamEQ2 (Damien Zammit)"}}
    fake = NamedFxReaper(device_port, TWO, fx)
    s = Session(48000, [Track("Kick", "k.wav"), Track("Snare", "s.wav")])
    s.validate()
    for t in s.tracks:
        t.params["compressor"]["threshold_db"] = -20.0
        t.params["compressor"]["ratio"] = 4.0
    with fake.server:
        rep = push(s, "reaper", port=fake.server.port, reply_port=device_port, timeout_s=0.5)
        deadline = time.monotonic() + 2
        while len(fake.received) < rep.sent + 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    addresses = {m.address for m in fake.received}
    assert any(a.startswith("/track/1/fx/4/fxparam/") for a in addresses)  # ZamComp found at slot 4
    assert not any(a.startswith("/track/1/fx/1/fxparam/") for a in addresses)  # the gate is never driven
    assert any(a.startswith("/track/1/fx/2/fxparam/") for a in addresses)  # first ZamEQ2 at slot 2
    assert not any(a.startswith("/track/2/fx/3/") for a in addresses)  # no ZamComp on track 2
    unmapped = rep.plan.unmapped
    assert any(u.startswith("Snare: compressor.threshold_db") and "not found on the DAW strip" in u for u in unmapped)
    assert not any(u.startswith("Kick: compressor") for u in unmapped)


def test_reaper_pull_reads_plugins_at_their_named_slots_and_says_what_is_absent():
    device_port = free_udp_port()
    fake = NamedFxReaper(device_port, {1: ("Kick", -3.5, 0.25, 0.0)}, {1: {3: "VST: ZamComp (Damien Zammit)"}})
    with fake.server:
        rep = pull("reaper", port=fake.server.port, reply_port=device_port, timeout_s=0.5)
    kick = rep.session.tracks[0]
    assert kick.params["compressor"]["threshold_db"] == pytest.approx(-20.0)  # slot 3's 0.75 of -80..0
    assert any(r.startswith("Kick: eq.") and "not on the REAPER track" in r for r in rep.not_read)
