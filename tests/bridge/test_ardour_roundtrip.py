"""Issue 15's Done-when, against the real headless Ardour 7: a 64-track session with automation, a master
bus and inverted tracks goes into an **empty** Ardour session with ``mixbridge push --create`` (Ardour's
headless Lua builds the tracks, plugins, reverb bus, sends, values and lanes), Ardour is started and the
session pushed over OSC, then ``mixbridge pull --ardour-session`` reads it back (``/save_state``, then the
saved XML: values, lanes, master) into a session equal to the one sent: static values within float32 of
their laws, curves within one automation step (:mod:`mixbridge.bridge.roundtrip`).
"""
from __future__ import annotations

import math
import time

import numpy as np
import pytest

from mixbridge.app.cli import main
from mixbridge.bridge.ardour import HeadlessArdour, ardour_available
from mixbridge.bridge.ardour_session import read_ardour_session
from mixbridge.bridge.profile_ardour import ARDOUR_MAX_GAIN_DB, ArdourProfile
from mixbridge.bridge.roundtrip import compare_sessions
from mixbridge.schema import CHANNEL_STRIP
from mixbridge.session import Automation, Session, Track, load, save

pytestmark = [
    pytest.mark.ardour,
    pytest.mark.skipif(not ardour_available(), reason="headless Ardour 7 (Debian 'ardour', ardour7-lua) not installed"),
]

N_TRACKS = 64
#: Ardour saves gain coefficients as doubles; a value pushed over OSC crossed the wire as float32
#: (20 log10(1 + 6e-8) = 5e-7 dB): 1e-4 dB is far below audibility and above that round-off.
GAIN_TOLERANCE_DB = 1e-4
#: Pan and plugin controls are float32 in Ardour (relative error <= 6e-8); the laws are inverted by
#: bisection to float64, so 1e-6 relative covers them.
FLOAT32_REL = 1e-6
#: A curve that landed is within one thinning step of the schedule a push writes.
CURVE_STEPS = 1.0
#: The solved master gain: fader plus trim, two double coefficients.
MASTER_TOLERANCE_DB = 1e-6
GAIN_PATHS = ("fader.fader_db", "trim.gain_db", "send.send_db")


def roundtrip_session() -> Session:
    """64 tracks: random statics inside Ardour's ranges, every odd track inverted, every fifth muted, and curves
    on the fader (every track), pan, mute, trim, send, an ACE EQ band gain, the low shelf (whose frequency law
    depends on its gain) and the compressor threshold; each automated static is its curve's start."""
    s = Session(48000, [Track(f"ch{i:02d}", f"{i}.wav") for i in range(N_TRACKS)])
    s.validate()
    rng = np.random.default_rng(1515)
    for i, t in enumerate(s.tracks):
        p = t.params
        p["fader"]["fader_db"] = float(rng.uniform(-30, ARDOUR_MAX_GAIN_DB - 0.1))
        p["pan"]["pan"] = float(rng.uniform(-1, 1))
        p["trim"]["gain_db"] = float(rng.uniform(-18, 18))
        p["polarity"]["invert"] = float(i % 2)
        p["fader"]["mute"] = float(i % 5 == 4)
        p["send"]["send_db"] = -80.0 if i % 16 == 3 else float(rng.uniform(-40, 6))
        p["eq"]["peak2_gain_db"] = float(rng.uniform(-12, 12))
        p["eq"]["peak2_q"] = float(rng.uniform(0.3, 8))
        p["eq"]["low_shelf_gain_db"] = float(rng.uniform(-12, 12))
        p["eq"]["high_shelf_freq_hz"] = float(rng.uniform(3000, 12000))
        p["compressor"]["threshold_db"] = float(rng.uniform(-40, 0))
        p["compressor"]["ratio"] = float(rng.uniform(1, 12))
        p["compressor"]["attack_ms"] = float(rng.uniform(1, 50))
        p["compressor"]["knee_db"] = float(rng.uniform(0, 6))

        def curve(path: str, times: list[float], values: list[float], t: Track = t) -> None:
            t.automation[path] = Automation(times, values)
            proc, name = path.split(".")
            t.params[proc][name] = values[0]

        start = p["fader"]["fader_db"]
        curve("fader.fader_db", [0.0, 0.3 + 0.01 * i, 1.0], [start, -24.0, min(start + 3.0, ARDOUR_MAX_GAIN_DB)])
        kind = i % 8
        if kind == 0:
            curve("pan.pan", [0.0, 0.8], [-1.0, 1.0])
        elif kind == 1:
            curve("fader.mute", [0.0, 0.3, 0.31, 0.6, 0.61], [0.0, 0.0, 1.0, 1.0, 0.0])
        elif kind == 2:
            curve("trim.gain_db", [0.0, 0.5], [p["trim"]["gain_db"], 0.0])
        elif kind == 3:
            curve("send.send_db", [0.0, 0.7], [-30.0, 0.0])
        elif kind == 4:
            curve("eq.peak1_gain_db", [0.0, 0.5], [-6.0, 6.0])
        elif kind == 5 and i < 16:  # the shelf's law is inverted by bisection at every point: two tracks
            curve("eq.low_shelf_gain_db", [0.0, 0.5], [-9.0, 3.0])
        elif kind == 6:
            curve("compressor.threshold_db", [0.0, 0.25, 0.5], [-30.0, -10.0, -20.0])
    s.master.solved_gain_db = 9.44  # above the fader's +6.02 dB: the rest lands on the master trim
    s.master.params["reverb"]["return_db"] = -6.0
    return s


@pytest.fixture(scope="module")
def empty_ardour(tmp_path_factory):
    """An Ardour session with no tracks at all."""
    a = HeadlessArdour(tmp_path_factory.mktemp("ardour_rt64"), n_tracks=0, name="rt64", plugins=())
    a.create()
    yield a
    a.stop()


def _figures(capsys, out: str, what: str) -> None:
    """Print the run's figures past pytest's capture (``pytest -s`` shows them)."""
    with capsys.disabled():
        print(f"\n[figure] {what}: " + " | ".join(line for line in out.splitlines()
                                                  if line.startswith(("created", "verify", "pushed", "pulled"))))


def test_push_create_then_push_then_pull_returns_the_session(empty_ardour, tmp_path, capsys):
    a = empty_ardour
    s = roundtrip_session()
    mix = save(s, tmp_path / "mix.json")
    port = ["--port", str(a.osc_port)]

    # 1. push --create into the empty, closed session: Ardour's headless Lua builds everything
    t0 = time.perf_counter()
    assert main(["push", str(mix), "--daw", "ardour", "--create", "--ardour-session", str(a.session_file)] + port) == 0
    create_s = time.perf_counter() - t0
    out = capsys.readouterr().out
    _figures(capsys, out, f"push --create {create_s:.1f} s")
    assert f"{N_TRACKS} tracks ({N_TRACKS} new), {2 * N_TRACKS} plugins inserted" in out, out[-3000:]
    assert "verify: read back" in out and "all within tolerance" in out, out[-3000:]
    assert "off:" not in out
    assert "not sent: master.limiter.ceiling_dbtp = -1 dBTP (" in out  # the master bus: listed, never dropped
    created = read_ardour_session(a.session_file)
    assert [t.name for t in created.tracks] == [t.name for t in s.tracks] and created.bus_name == "Reverb"
    closed = tmp_path / "closed.json"  # no Ardour has it open: the file is read as last saved, and says so
    assert main(["pull", "--daw", "ardour", "--ardour-session", str(a.session_file), "-o", str(closed)] + port) == 0
    assert f"ignored: no Ardour answered on 127.0.0.1:{a.osc_port}: read rt64.ardour as last saved" in \
        capsys.readouterr().out
    assert compare_sessions(s, load(closed), paths=ArdourProfile().mapped_paths(), static_rel=1e-4).off == []

    # 2. Ardour opens it (OSC on, switched on by --create) and the session is pushed over OSC
    a.start()
    t0 = time.perf_counter()
    assert main(["push", str(mix), "--daw", "ardour"] + port) == 0
    push_s = time.perf_counter() - t0
    out = capsys.readouterr().out
    _figures(capsys, out, f"push over OSC {push_s:.2f} s")
    assert f"pushed {N_TRACKS} tracks to ardour" in out and "unmatched" not in out
    # the lanes play over the automated controls: their statics are not compared over OSC, all else is
    assert "all within tolerance; 114 automated values not compared" in out and "off:" not in out
    assert "master: Ardour's master fader" in out
    assert "reverb return master.reverb.return_db on the fader of bus 'Reverb'" in out
    assert "not sent: master.reverb.return_db" not in out

    # 3. pull with the saved session: /save_state, then values, lanes and master from the XML
    pulled = tmp_path / "pulled.json"
    t0 = time.perf_counter()
    assert main(["pull", "--daw", "ardour", "--ardour-session", str(a.session_file), "-o", str(pulled)] + port) == 0
    pull_s = time.perf_counter() - t0
    out = capsys.readouterr().out
    _figures(capsys, out, f"pull --ardour-session {pull_s:.2f} s")
    assert "clamped" not in out and "silent" not in out
    assert not [line for line in out.splitlines() if line.startswith("not read: ch")], out[-3000:]
    got = load(pulled)

    assert got.sample_rate == s.sample_rate
    assert [t.name for t in got.tracks] == [t.name for t in s.tracks]  # the reverb bus is the master's return
    paths = ArdourProfile().mapped_paths()
    diff = compare_sessions(s, got, paths=paths, static_rel=FLOAT32_REL, curve_steps=CURVE_STEPS)
    _figures(capsys, f"pulled: {diff.summary()}; master errors {diff.master}", "round trip")
    bad = [o for o in diff.off if not any(f": {p} reads back" in o for p in GAIN_PATHS)]
    assert bad == [], bad[:10]
    assert {"trim.gain_db", "send.send_db"} <= set(diff.largest)  # (every fader is automated: a curve)
    for path in GAIN_PATHS:  # dB values through gain coefficients: an absolute tolerance in dB
        assert diff.largest.get(path, (0.0, ""))[0] <= GAIN_TOLERANCE_DB, (path, diff.largest[path])
    assert max(v[0] for v in diff.curves.values()) <= CURVE_STEPS, diff.curves
    assert diff.master["master.solved_gain_db"] <= MASTER_TOLERANCE_DB
    assert diff.master["master.reverb.return_db"] <= MASTER_TOLERANCE_DB
    for want, have in zip(s.tracks, got.tracks):  # the same curves, no more (the shelf frequency stays static)
        assert set(have.automation) == set(want.automation), (want.name, set(have.automation))
        assert have.params["polarity"]["invert"] == want.params["polarity"]["invert"]
    inverted = sum(t.params["polarity"]["invert"] == 1.0 for t in got.tracks)
    assert inverted == N_TRACKS // 2
    # the mute curve holds its steps (Ardour's discrete lane): muted from 0.31 s to 0.61 s, within 10 ms
    mute = got.track("ch01").automation["fader.mute"]
    tt = np.array([0.2, 0.33, 0.5, 0.59, 0.63, 0.9])
    assert list(np.interp(tt, mute.times_s, mute.values) >= 0.5) == [False, True, True, True, False, False]


def test_create_refuses_while_ardour_has_the_session_open(empty_ardour, tmp_path, capsys):
    a = empty_ardour
    if a.proc is None or a.proc.poll() is not None:
        a.start()
    s = Session(48000, [Track("x", "x.wav")])
    s.validate()
    mix = save(s, tmp_path / "one.json")
    rc = main(["push", str(mix), "--daw", "ardour", "--create", "--ardour-session", str(a.session_file),
               "--port", str(a.osc_port)])
    assert rc == 2
    err = capsys.readouterr().err
    assert f"an Ardour answers OSC on 127.0.0.1:{a.osc_port}" in err and "Session > Close" in err


def test_create_is_refused_for_other_daws_and_without_a_session_file(tmp_path, capsys):
    s = Session(48000, [Track("x", "x.wav")])
    s.validate()
    mix = save(s, tmp_path / "one.json")
    assert main(["push", str(mix), "--daw", "reaper", "--create"]) == 2
    assert "daw-script --daw reaper" in capsys.readouterr().err
    assert main(["push", str(mix), "--daw", "ardour", "--create"]) == 2
    assert "--create and --ardour-session go together" in capsys.readouterr().err
    assert main(["push", str(mix), "--daw", "ardour", "--create", "--ardour-session", str(tmp_path / "no.ardour")]) == 2
    assert "give an existing Ardour session file" in capsys.readouterr().err


def test_gain_laws_of_the_reader_are_the_push_laws():
    """The reader's conversions are the push's, inverted: coefficient <-> dB, azimuth <-> OSC position."""
    from mixbridge.bridge.ardour_session import _strip_value
    from mixbridge.bridge.daw_scripts import _db_to_gain
    from mixbridge.bridge.profile_ardour import ardour_position_from_pan

    for db in (-47.5, -6.0, 0.0, 5.9):
        assert _strip_value("fader.fader_db", _db_to_gain(db)) == pytest.approx(db, abs=1e-12)
    for pan in (-1.0, -0.3, 0.0, 0.7, 1.0):
        assert _strip_value("pan.pan", 1.0 - ardour_position_from_pan(pan)) == pytest.approx(pan, abs=1e-15)
    assert _strip_value("send.send_db", 0.0) == -math.inf
    assert CHANNEL_STRIP.param("fader.mute").kind == "bool"
