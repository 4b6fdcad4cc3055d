"""Loudness riding (plugins/ride.py) against closed-form expectations on tones with known level steps.

A 440 Hz tone holds one level for 20 s and 12 dB more for the last 10 s. Its short-term loudness is
``A`` for two thirds of the frames and ``A + 12`` for the rest, so the median is ``A`` and the rule
(module docstring) gives a ride of exactly 0 dB before the step and ``-min(12, max_ride_db)`` dB after
it, away from the step by more than window_s / 2 + smooth_s / 2 (1.5 + 1 s here).
"""
from __future__ import annotations

import numpy as np
import pytest

from mixbridge.plugins.ride import ride_automation, ride_curve, simplify_curve
from mixbridge.session import Automation, Session, Track

SR = 16000
#: The K-weighting filters start from rest, so the first window of a tone reads a few 1e-4 dB off its
#: steady loudness (measured 1.7e-4 dB); plateaus are compared within 0.01 dB.
PLATEAU_TOL_DB = 0.01
STEP_S, LENGTH_S, STEP_DB = 20.0, 30.0, 12.0
#: Away from the step by more than window_s / 2 + smooth_s / 2 (3 s window, 2 s smoothing).
GUARD_S = 1.5 + 1.0 + 0.5


def tone(level: float = 0.05, length_s: float = LENGTH_S) -> np.ndarray:
    t = np.arange(int(length_s * SR)) / SR
    return (level * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]


def stepped() -> np.ndarray:
    x = tone()
    x[:, int(STEP_S * SR):] *= np.float32(10 ** (STEP_DB / 20))
    return x


def session(*names: str, fader_db: float = -3.0) -> Session:
    s = Session(SR, [Track(n, f"{n}.wav") for n in names])
    s.validate()
    for t in s.tracks:
        t.params["fader"]["fader_db"] = fader_db
    return s


@pytest.mark.parametrize("max_ride_db", [4.0, 6.0, 15.0])
def test_a_level_step_is_ridden_against_by_min_step_max(max_ride_db):
    out = ride_automation(session("lead"), {"lead": stepped()}, max_ride_db=max_ride_db)
    curve = out.tracks[0].automation["fader.fader_db"]
    t = np.arange(0.0, LENGTH_S, 0.05)
    ride = np.interp(t, curve.times_s, curve.values) + 3.0
    before = ride[(t > GUARD_S) & (t < STEP_S - GUARD_S)]
    after = ride[t > STEP_S + GUARD_S]
    assert np.all(np.abs(before) < PLATEAU_TOL_DB)
    assert np.all(np.abs(after + min(STEP_DB, max_ride_db)) < PLATEAU_TOL_DB)
    assert np.all(np.abs(np.asarray(curve.values) + 3.0) <= max_ride_db + 1e-9)  # never beyond +-max_ride_db
    assert out.provenance["ride"]["largest_move_db"]["lead"] == pytest.approx(min(STEP_DB, max_ride_db), abs=0.01)
    out.validate()


def test_a_steady_stem_gets_one_point_at_its_fader():
    out = ride_automation(session("pad"), {"pad": tone(0.1)})
    curve = out.tracks[0].automation["fader.fader_db"]
    assert len(curve.times_s) == 1
    assert curve.values[0] == pytest.approx(-3.0, abs=PLATEAU_TOL_DB)


def test_a_pause_does_not_pull_the_fader_and_silence_gets_a_flat_curve():
    x = tone()
    x[:, 10 * SR:16 * SR] = 0.0  # a 6 s pause
    times, ride = ride_curve(x, SR)
    assert np.max(np.abs(ride)) < PLATEAU_TOL_DB
    times, ride = ride_curve(np.zeros((2, 5 * SR), np.float32), SR)
    assert np.all(ride == 0.0)


def test_existing_fader_curves_and_missing_stems_are_left_alone():
    s = session("a", "b", "c")
    s.tracks[0].automation["fader.fader_db"] = Automation([0.0, 1.0], [-6.0, 0.0])
    out = ride_automation(s, {"a": stepped(), "b": stepped()})
    assert out.tracks[0].automation["fader.fader_db"].values == [-6.0, 0.0]
    assert "fader.fader_db" in out.tracks[1].automation and "fader.fader_db" not in out.tracks[2].automation
    assert out.provenance["ride"]["left_alone"] == {"a": "it already has a fader curve", "c": "no stem given for it"}
    assert "fader.fader_db" not in s.tracks[1].automation  # the input session is not changed


def test_simplified_curve_stays_within_its_tolerance():
    rng = np.random.default_rng(0)
    t = np.arange(400) * 0.5
    v = np.cumsum(rng.normal(0, 0.2, t.size))
    ts, vs = simplify_curve(t, v, 0.05)
    assert len(ts) < len(t) and ts[0] == t[0] and ts[-1] == t[-1]
    assert np.max(np.abs(np.interp(t, ts, vs) - v)) <= 0.05 + 1e-12


def test_bad_settings_are_refused():
    from mixbridge.errors import AudioInputError

    with pytest.raises(AudioInputError, match="max_ride_db"):
        ride_curve(tone(), SR, max_ride_db=0.0)


def test_a_lazy_stem_set_is_ridden_by_name_and_the_curves_export_to_midi(tmp_path):
    """The StemSet automix holds (lazy, read one stem at a time) matches tracks by name, and the ride's
    curves are what `midi-export` takes (issue 15: midi-export on every automix session with --ride)."""
    import mido

    from mixbridge.audio import load_stems, write_audio
    from mixbridge.bridge.midi import export_smf

    stems_dir = tmp_path / "stems"
    stems_dir.mkdir()
    write_audio(stems_dir / "lead.wav", stepped(), SR)
    write_audio(stems_dir / "pad.wav", tone(0.1), SR)
    stems = load_stems(stems_dir, lazy=True)
    s = session("pad", "lead")
    out = ride_automation(s, stems, max_ride_db=6.0)
    lead = out.track("lead").automation["fader.fader_db"]
    assert min(lead.values) == pytest.approx(-3.0 - 6.0, abs=PLATEAU_TOL_DB)
    assert len(out.track("pad").automation["fader.fader_db"].times_s) == 1
    export_smf(out, tmp_path / "ride.mid")
    cc7 = [m.value for tr in mido.MidiFile(tmp_path / "ride.mid").tracks for m in tr
           if m.type == "control_change" and m.control == 7]
    assert len(set(cc7)) > 2  # the ride moves the lead's CC7 lane
