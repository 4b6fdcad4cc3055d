"""Console arithmetic: gains, pan laws, mute, polarity, sends, automation."""
from __future__ import annotations

import math

import numpy as np
import pytest

from mixbridge.plugins.console import pan_gains, render_console
from mixbridge.session import Automation, Session, Track

SR = 44100
EXACT_TOL = 1e-6


def _session(n_tracks=1, **over):
    tracks = [Track(f"t{i}", f"t{i}.wav") for i in range(n_tracks)]
    return Session(SR, tracks)


def _render(session, audio):
    return render_console(session, "builtin", audio=audio)


def test_constant_power_pan_law_values():
    left, right = pan_gains(0.0, 1)
    assert left == pytest.approx(math.sqrt(0.5)) and right == pytest.approx(math.sqrt(0.5))
    for pan in np.linspace(-1, 1, 11):
        gl, gr = pan_gains(pan, 1)
        assert gl ** 2 + gr ** 2 == pytest.approx(1.0)
    assert pan_gains(-1.0, 1)[1] == pytest.approx(0.0, abs=1e-12)
    assert pan_gains(1.0, 1)[0] == pytest.approx(0.0, abs=1e-12)
    # stereo: constant-power balance, unity at the centre, the far side closes
    assert pan_gains(0.0, 2) == (pytest.approx(1.0, abs=1e-15), pytest.approx(1.0, abs=1e-15))
    assert pan_gains(-1.0, 2) == (pytest.approx(math.sqrt(2.0)), pytest.approx(0.0, abs=1e-15))


@pytest.mark.parametrize("pan", [-0.6, -0.25, 0.1, 0.35, 0.9])
def test_stereo_stem_with_equal_channels_lands_where_a_mono_stem_lands(pan):
    """Measured image position 4/pi atan2(rms_R, rms_L) - 1 of a dual-mono stem equals ``pan``, as for mono."""
    x = np.random.default_rng(0).standard_normal(8192).astype(np.float32) * 0.1
    s = _session()
    s.tracks[0].params["pan"]["pan"] = pan
    for audio in (x[None, :], np.stack([x, x])):
        out = _render(s, {"t0": audio}).mix.astype(np.float64)
        rms_l, rms_r = np.sqrt(np.mean(out[0] ** 2)), np.sqrt(np.mean(out[1] ** 2))
        assert 4 / math.pi * math.atan2(rms_r, rms_l) - 1 == pytest.approx(pan, abs=1e-6)
        assert np.mean(out ** 2) * 2 == pytest.approx(np.mean(x.astype(np.float64) ** 2) * audio.shape[0], rel=1e-5)


def test_minus_6_02_db_fader_halves_amplitude():
    x = np.full((1, 4096), 0.5, dtype=np.float32)
    s = _session()
    s.tracks[0].params["fader"]["fader_db"] = -6.0206
    s.tracks[0].params["pan"]["pan"] = -1.0  # hard left: L gain exactly 1
    out = _render(s, {"t0": x}).mix
    assert np.max(np.abs(out[0] - 0.25)) < EXACT_TOL
    assert np.max(np.abs(out[1])) < EXACT_TOL


def test_polarity_mute_and_trim():
    x = np.full((2, 2048), 0.1, dtype=np.float32)
    s = _session()
    s.tracks[0].params["polarity"]["invert"] = 1.0
    s.tracks[0].params["trim"]["gain_db"] = 20.0
    out = _render(s, {"t0": x}).mix
    assert np.allclose(out, -1.0, atol=1e-5)
    s.tracks[0].params["fader"]["mute"] = 1.0
    assert np.max(np.abs(_render(s, {"t0": x}).mix)) == 0.0


def test_tracks_sum_and_send_feeds_reverb():
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((2, SR)) * 0.1).astype(np.float32)
    b = (rng.standard_normal((2, SR)) * 0.1).astype(np.float32)
    s = _session(2)
    r = _render(s, {"t0": a, "t1": b})
    assert np.max(np.abs(r.mix - (a + b))) < EXACT_TOL
    assert np.max(np.abs(r.reverb_return)) == 0.0  # all sends off at -80 dB
    s.tracks[1].params["send"]["send_db"] = 0.0
    r = _render(s, {"t0": a, "t1": b})
    assert np.sqrt(np.mean(r.reverb_return ** 2)) > 1e-3


def test_fader_automation_is_sample_accurate():
    x = np.full((1, SR), 1.0, dtype=np.float32)
    s = _session()
    s.tracks[0].params["pan"]["pan"] = -1.0
    s.tracks[0].automation["fader.fader_db"] = Automation([0.0, 0.5], [0.0, -6.0206])
    out = _render(s, {"t0": x}).mix[0]
    assert out[0] == pytest.approx(1.0, abs=EXACT_TOL)
    assert out[SR // 2] == pytest.approx(0.5, abs=1e-4)
    assert out[-1] == pytest.approx(0.5, abs=1e-4)
    mid = SR // 4  # halfway in time is halfway in dB
    assert 20 * np.log10(out[mid]) == pytest.approx(-3.0103, abs=1e-3)
