"""Layer 4 (DAW profiles) and the push/pull API: value laws, matching, dry runs, fake DAW peers.

REAPER's and Ableton's feedback cannot be reached on this machine, so ``pull`` and the
name-resolving ``push`` for them are tested against fake peers that speak the documented
replies (REAPER ``Default.ReaperOSC`` feedback; for Ableton the stand-in Live of
``ableton_standin.py``, which also reads its socket on AbletonOSC's 100 ms tick). Ardour is tested
for real in ``test_ardour.py``.
"""
from __future__ import annotations

import json
import math
import subprocess
import time

import pytest

from mixbridge.app.cli import main
from mixbridge.bridge.errors import DawRangeError, TrackMatchError
from mixbridge.bridge.osc import OscMessage, decode, encode_message, iter_messages
from mixbridge.bridge.plugin_maps import get_daw_map
from mixbridge.bridge.profile_ableton import ableton_db_from_volume, ableton_volume_from_db
from mixbridge.bridge.profile_ardour import (
    ARDOUR_MAX_GAIN_DB,
    ARDOUR_SEND_OFF_DB,
    ardour_position_from_pan,
    ardour_send_db_from_position,
    pan_from_ardour_position,
)
from mixbridge.bridge.profiles import DawTrack, StripLayout
from mixbridge.bridge.push import match_tracks, plan_push, pull, push
from mixbridge.bridge.transport import OscUdpServer, free_udp_port
from mixbridge.session import Session, Track, save
from tests.bridge.ableton_standin import AbletonStandin
from tests.contracts import DawProfileContract

#: Inverting a-EQ's bandwidth law by bisection and the octave formula are exact to float64 round-off.
Q_ROUND_TRIP_TOLERANCE = 1e-9
#: Values that crossed the wire as float32 (24-bit mantissa): relative error <= 2**-24.
FLOAT32_REL_TOLERANCE = 1e-6
#: An unreachable DAW must be reported within "a few seconds" (issue 6): the query timeout plus slack.
UNREACHABLE_LIMIT_S = 4.0


def make_session(n=3, **overrides) -> Session:
    s = Session(48000, [Track(f"trk{i + 1}", f"trk{i + 1}.wav") for i in range(n)])
    s.validate()
    t = s.tracks[0].params
    t["fader"]["fader_db"] = -6.0
    t["pan"]["pan"] = -0.5
    t["eq"]["peak1_q"] = 2.0
    t["compressor"]["threshold_db"] = -24.0
    t["compressor"]["ratio"] = 4.0
    for path, value in overrides.items():
        proc, name = path.split(".")
        t[proc][name] = value
    return s


# ------------------------------------------------------------------------------- value laws
def test_ableton_volume_law():
    assert ableton_volume_from_db(0.0) == pytest.approx(0.85)
    assert ableton_volume_from_db(6.0) == pytest.approx(1.0)
    assert ableton_volume_from_db(-18.0) == pytest.approx(0.4)
    assert ableton_volume_from_db(-100.0) == 0.0
    for db in (-60.0, -40.0, -20.0, -12.0, -3.0, 5.0):
        assert ableton_db_from_volume(ableton_volume_from_db(db)) == pytest.approx(db, abs=1e-9)
    vals = [ableton_volume_from_db(d) for d in range(-70, 7)]
    assert all(b > a for a, b in zip(vals, vals[1:]))  # monotonic


def test_ardour_pan_is_inverted():
    assert ardour_position_from_pan(-1.0) == 1.0  # hard left is position 1
    assert ardour_position_from_pan(1.0) == 0.0   # position 0 = right (DESIGN.md §4)
    assert pan_from_ardour_position(ardour_position_from_pan(0.3)) == pytest.approx(0.3)


def test_ardour_send_position_law():
    # Ardour's gain_to_slider_position_with_max(g, 2.0) (libs/ardour/utils.cc), written forwards here
    def position(db):
        return ((6.0 * math.log2(10 ** (db / 20.0)) + 192.0) / 198.0) ** 8
    for db in (-80.0, -40.0, -12.0, 0.0, 6.0):
        assert ardour_send_db_from_position(position(db)) == pytest.approx(db, abs=1e-9)
    assert ardour_send_db_from_position(0.467359) == pytest.approx(-12.0, abs=1e-3)  # what Ardour 7.3 reported
    assert ardour_send_db_from_position(0.0) == float("-inf")


def test_plugin_maps_take_every_schema_extreme_or_say_which_they_cannot():
    """Every DAW map renders the schema defaults; at the extremes a value is either sent inside the
    plugin's range or refused with DawRangeError naming the range (never clamped silently).
    The laws themselves are tested against the rendered plugins in test_daw_maps.py."""
    from mixbridge.bridge.errors import DawRangeError as Refused
    for daw in ("ardour", "reaper", "ableton"):
        for plug in get_daw_map(daw).plugins:
            for corner in ("min", "max"):
                values = {p.name: getattr(p, corner) for p in plug.processor.params}
                try:
                    wire = plug.values(values, 48000)
                except Refused as e:  # a range the plugin lacks, or a value it renders off the schema
                    assert "outside" in str(e) or "renders" in str(e) and "within it" in str(e)
                    continue
                for name, v in wire.items():
                    p = plug.params[name]
                    assert p.min - 1e-9 <= v <= p.max + 1e-9


# ------------------------------------------------------------------------------- the profile contract
class TestReaperProfile(DawProfileContract):
    """REAPER ``Default.ReaperOSC``: volume in raw dB, pan 0 (left)..1 (right), mute as a float 0/1."""

    daw = "reaper"
    documented = {("fader.fader_db", -6.0): ("/track/1/volume/db", (-6.0,)),
                  ("pan.pan", -0.5): ("/track/1/pan", (0.25,)),
                  ("fader.mute", 1.0): ("/track/1/mute", (1.0,))}


class TestAbletonProfile(DawProfileContract):
    """AbletonOSC README: 0-based track, volume 0.85 at 0 dB and 1/40 per dB above -18 dB, pan -1..1."""

    daw = "ableton"
    documented = {("fader.fader_db", -6.0): ("/live/track/set/volume", (0, 0.7)),
                  ("fader.fader_db", 6.0): ("/live/track/set/volume", (0, 1.0)),
                  ("pan.pan", -0.5): ("/live/track/set/panning", (0, -0.5)),
                  ("fader.mute", 1.0): ("/live/track/set/mute", (0, 1))}


class TestArdourProfile(DawProfileContract):
    """Ardour's OSC manual: 1-based ssid, gain and trim in dB, pan position inverted (0 = right)."""

    daw = "ardour"
    documented = {("fader.fader_db", -6.0): ("/strip/gain", (1, -6.0)),
                  ("trim.gain_db", 3.0): ("/strip/trimdB", (1, 3.0)),
                  ("pan.pan", -0.5): ("/strip/pan_stereo_position", (1, 0.75)),
                  ("fader.mute", 1.0): ("/strip/mute", (1, 1)),
                  ("polarity.invert", 1.0): ("/strip/polarity", (1, 1)),
                  ("send.send_db", -80.0): ("/strip/send/gain", (1, 1, -193.0))}


def test_profile_registry_names_unknown_daws_and_feeds_the_cli_choices(capsys):
    from mixbridge.bridge.errors import BridgeConfigError
    from mixbridge.bridge.profiles import get_profile, profile_names, register_profile
    from mixbridge.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="unknown DAW 'cubase'; known: reaper, ableton, ardour"):
        get_profile("cubase")
    with pytest.raises(BridgeConfigError, match="already registered"):
        register_profile("reaper", lambda: None)
    assert main(["push", "x.json", "--daw", "cubase"]) == 2
    assert "invalid choice: 'cubase' (choose from " + ", ".join(map(repr, profile_names())) in capsys.readouterr().err


# ------------------------------------------------------------------------------- profiles
def test_each_profile_makes_the_documented_messages():
    s = make_session(1)
    by = {d: {str(m) for m in plan_push(s, d, match="order").messages} for d in ("ardour", "reaper", "ableton")}
    assert "/strip/gain ,if 1 -6" in by["ardour"]
    assert "/strip/pan_stereo_position ,if 1 0.75" in by["ardour"]
    assert "/strip/plugin/parameter ,iiif 1 2 5 -24" in by["ardour"]
    assert "/set_surface ,iiiiii 0 31 16384 2 0 0" in by["ardour"]
    assert "/track/1/volume/db ,f -6" in by["reaper"]
    assert "/track/1/pan ,f 0.25" in by["reaper"]
    assert "/device/track/count ,i 1" in by["reaper"]
    assert "/track/1/fx/3/fxparam/5/value ,f 0.7" in by["reaper"]  # -24 dB on ZamComp's -80..0 (FX 3, 5th parameter)
    assert "/live/track/set/volume ,if 0 0.7" in by["ableton"]       # -6 dB -> 0.85 - 6/40
    assert "/live/track/set/panning ,if 0 -0.5" in by["ableton"]


def test_ardour_maps_the_send_to_the_strips_first_aux_send():
    s = make_session(3)
    for t, db in zip(s.tracks, (-12.0, 6.0, -80.0)):
        t.params["send"]["send_db"] = db
    msgs = [str(m) for m in plan_push(s, "ardour", match="order").messages if m.address == "/strip/send/gain"]
    assert msgs == ["/strip/send/gain ,iif 1 1 -12", "/strip/send/gain ,iif 2 1 6",
                    f"/strip/send/gain ,iif 3 1 {ARDOUR_SEND_OFF_DB:g}"]  # -80 dB is the schema's "off"
    # the send Ardour lists first is used; a strip without a send reports the value instead of dropping it
    layouts = {0: StripLayout(send_id=2), 1: StripLayout(send_id=None), 2: StripLayout(send_id=None)}
    plan = plan_push(s, "ardour", match="order", layouts=layouts)
    assert [str(m) for m in plan.messages if m.address == "/strip/send/gain"] == ["/strip/send/gain ,iif 1 2 -12"]
    tracks = [u for u in plan.unmapped if not u.startswith("master.")]  # the master bus's lines follow the tracks
    assert tracks == ["trk2: send.send_db = 6 (no aux send on the DAW strip)"]  # trk3 is at the default
    assert "send.send_db" not in plan.unmapped_paths


def test_ardour_refuses_gain_above_its_clamp_unless_asked():
    s = make_session(1, **{"fader.fader_db": 9.0})
    with pytest.raises(DawRangeError, match=r"fader.fader_db = 9 .*\[-inf, 6.0206\].*--clamp"):
        plan_push(s, "ardour", match="order")
    plan = plan_push(s, "ardour", match="order", clamp=True)
    assert any(str(m) == f"/strip/gain ,if 1 {ARDOUR_MAX_GAIN_DB:.6g}" for m in plan.messages)
    assert plan.clamped == ["track 'trk1' fader.fader_db: 9 -> 6.0206"]


def test_unmapped_values_are_reported_not_dropped():
    s = make_session(1, **{"compressor.knee_db": 3.0, "send.send_db": -10.0, "trim.gain_db": 2.0})
    plan = plan_push(s, "reaper", match="order")
    assert any("compressor.knee_db = 3 (the host renders ZamComp's soft knee" in u for u in plan.unmapped)
    assert any("send.send_db = -10" in u for u in plan.unmapped)
    assert any("trim.gain_db = 2" in u for u in plan.unmapped)
    assert "send.send_db" in plan.unmapped_paths


def test_match_by_name_order_and_unmatched():
    s = make_session(3)
    daw = [DawTrack(0, "TRK2"), DawTrack(1, "other"), DawTrack(2, "trk1")]
    r = match_tracks(s.tracks, daw, "name")
    assert [(t.name, d.position) for t, d in r.pairs] == [("trk1", 2), ("trk2", 0)]
    assert r.unmatched_session == ["trk3"] and r.unmatched_daw == ["other"]
    r = match_tracks(s.tracks, daw[:2], "order")
    assert [(t.name, d.position) for t, d in r.pairs] == [("trk1", 0), ("trk2", 1)] and r.unmatched_session == ["trk3"]
    with pytest.raises(TrackMatchError, match="--match order"):
        match_tracks(s.tracks, [DawTrack(0, "x")], "name")


def test_dry_run_prints_exact_messages(tmp_path, capsys):
    path = save(make_session(2), tmp_path / "s.json")
    assert main(["push", str(path), "--daw", "reaper", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "/device/track/count ,i 2"
    assert "/track/2/volume/db ,f 0" in out
    # 2 setup + per track: volume, mute, pan + ZamEQ2 (12) + ZamEQ2 (12) + ZamComp (8) = 35
    assert out[-1] == ("# 72 messages for 2 tracks; master: nothing sent (the session stores no solved master gain "
                       "(master.solved_gain_db; `mixbridge render` or `automix` solves it), so reaper's master fader "
                       "is left as it is; its parameters are listed as not sent)")


def test_unreachable_daw_fails_fast_with_a_clear_error(tmp_path, capsys):
    path = save(make_session(1), tmp_path / "s.json")
    port = free_udp_port()  # nothing listens here
    t0 = time.monotonic()
    rc = main(["push", str(path), "--daw", "ardour", "--port", str(port), "--timeout-s", "1"])
    elapsed = time.monotonic() - t0
    err = capsys.readouterr().err
    assert rc == 2 and elapsed < UNREACHABLE_LIMIT_S
    assert f"no reply to /strip/list from 127.0.0.1:{port} within 1 s" in err


# ------------------------------------------------------------------------------- fake peers
def test_ableton_push_resolves_parameters_by_name_then_pull_reads_them_back():
    reply_port = free_udp_port()
    with AbletonStandin(reply_port) as fake:
        s = make_session(2)
        rep = push(s, "ableton", port=fake.port, reply_port=reply_port, timeout_s=1.0)
        assert rep.plan.match.unmatched_daw == ["Bass"]
        assert fake.state[0]["volume"] == pytest.approx(0.7, rel=FLOAT32_REL_TOLERANCE)
        # Threshold is index 2 in the fake's list, not the fallback index 1: resolved by name
        assert fake.values[(0, 1)][2] == pytest.approx(-24.0) and fake.values[(0, 1)][1] == pytest.approx(4.0)
        got = pull("ableton", port=fake.port, reply_port=reply_port, timeout_s=1.0)
    t = got.session.track("trk1").params
    assert t["fader"]["fader_db"] == pytest.approx(-6.0, abs=1e-4)
    assert t["pan"]["pan"] == pytest.approx(-0.5)
    assert t["compressor"]["threshold_db"] == pytest.approx(-24.0)
    assert t["eq"]["peak1_q"] == pytest.approx(2.0, rel=FLOAT32_REL_TOLERANCE)
    assert [x.name for x in got.session.tracks] == ["trk1", "trk2", "Bass"]


def test_ableton_push_refuses_a_parameter_whose_reported_range_does_not_fit():
    reply_port = free_udp_port()
    fake = AbletonStandin(reply_port)
    fake.ranges["Compressor"]["Threshold"] = (0.0, 1.0)  # e.g. a Live version that exposes 0..1 internally
    with fake:
        refused = r"Compressor 'Threshold' would be sent as -24, but ableton reports .*\[0, 1\]"
        with pytest.raises(DawRangeError, match=refused):
            push(make_session(2), "ableton", port=fake.port, reply_port=reply_port, timeout_s=1.0)
    assert fake.sets == []  # nothing half-pushed


class FakeReaper:
    """Answers "refresh all surfaces" (/action 41743) with Default.ReaperOSC feedback on the device port,
    and sends one unparseable datagram, as a misconfigured surface might."""

    def __init__(self, device_port: int):
        self.device_port = device_port
        self.tracks = {1: ("Kick", -3.5, 0.25, 0.0), 2: ("Snare", 0.0, 0.5, 1.0)}
        self.received: list[OscMessage] = []
        self.server = OscUdpServer(on_datagram=self.on_datagram)

    def on_datagram(self, data, addr):
        for _, m in iter_messages(decode(data)):
            self.received.append(m)
            if m.address == "/action" and m.args == (41743,):
                dest = (addr[0], self.device_port)
                self.server.reply(b"\xffnot osc", dest)
                for n, (name, db, pan, mute) in self.tracks.items():
                    for msg in (OscMessage(f"/track/{n}/name", (name,)), OscMessage(f"/track/{n}/volume/db", (db,)),
                                OscMessage(f"/track/{n}/pan", (pan,)), OscMessage(f"/track/{n}/mute", (mute,)),
                                OscMessage(f"/track/{n}/fx/3/fxparam/5/value", (0.75,))):
                        self.server.reply(encode_message(msg), dest)


def test_reaper_pull_from_documented_feedback_counts_garbage(tmp_path, capsys):
    device_port = free_udp_port()
    fake = FakeReaper(device_port)
    with fake.server:
        out = tmp_path / "pulled.json"
        rc = main(["pull", "--daw", "reaper", "--port", str(fake.server.port), "--reply-port", str(device_port),
                   "--timeout-s", "1", "-o", str(out)])
    text = capsys.readouterr().out
    assert rc == 0 and "1 unparseable datagram" in text
    data = json.loads(out.read_text())
    kick, snare = data["tracks"]
    assert kick["name"] == "Kick" and kick["params"]["fader"]["fader_db"] == pytest.approx(-3.5)
    assert kick["params"]["pan"]["pan"] == pytest.approx(-0.5)
    assert kick["params"]["compressor"]["threshold_db"] == pytest.approx(-20.0)  # 0.75 of -80..0
    assert snare["params"]["fader"]["mute"] == 1.0


def test_reaper_push_matches_names_from_feedback_and_widens_the_bank():
    device_port = free_udp_port()
    fake = FakeReaper(device_port)
    s = Session(48000, [Track("snare", "s.wav"), Track("Kick", "k.wav"), Track("vox", "v.wav")])
    s.validate()
    s.tracks[0].params["fader"]["fader_db"] = -9.0
    s.tracks[1].params["fader"]["fader_db"] = -1.0
    with fake.server:
        rep = push(s, "reaper", port=fake.server.port, reply_port=device_port, timeout_s=0.5, verify=False)
        deadline = time.monotonic() + 2
        while len(fake.received) < rep.sent + 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert rep.plan.match.unmatched_session == ["vox"] and rep.feedback.unparsed == 1
    got = {m.address: m.args for m in fake.received}
    counts = [m.args for m in fake.received if m.address == "/device/track/count"]
    assert counts == [(64,), (2,)]  # widen to look for up to 64 tracks, then to the 2 REAPER has
    assert got["/device/track/bank/select"] == (1,)
    assert got["/track/2/volume/db"] == (pytest.approx(-9.0),)  # "snare" matched REAPER's "Snare" (track 2)
    assert got["/track/1/volume/db"] == (pytest.approx(-1.0),)


def test_oscdump_decodes_what_push_sends(tmp_path):
    """liblo's oscdump (an independent OSC implementation) receives a REAPER push."""
    import shutil

    if shutil.which("oscdump") is None:
        pytest.skip("liblo-tools (oscdump) not installed")
    path = save(make_session(2), tmp_path / "s.json")
    port = free_udp_port()
    dump = subprocess.Popen(["oscdump", "-L", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)  # oscdump binds its port
        assert main(["push", str(path), "--daw", "reaper", "--port", str(port), "--no-query"]) == 0
        time.sleep(0.3)
    finally:
        dump.terminate()
        out, _ = dump.communicate(timeout=5)
    lines = [line.split(" ", 1)[1] for line in out.splitlines() if line.strip()]  # drop oscdump's time tag column
    plan = plan_push(make_session(2), "reaper", match="order")
    expected = []
    for m in plan.messages:
        args = " ".join(f"{a:f}" if isinstance(a, float) else (f'"{a}"' if isinstance(a, str) else str(a))
                        for a in m.args)
        expected.append(f"{m.address} {m.typetags} {args}".rstrip())
    assert [line.rstrip() for line in lines] == expected
    assert "/track/1/volume/db f -6.000000" in lines
