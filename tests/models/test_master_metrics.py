"""The mastering table's metrics (models/master_metrics.py) against closed forms."""
from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("torch")

from mixbridge.loudness import integrated_lufs, true_peak_dbtp
from mixbridge.models.evaluation import EvaluationInputError
from mixbridge.models.master_metrics import aggregate_scores, score_master

SAMPLE_RATE = 48000
TARGET_LUFS = -14.0
CEILING_DBTP = -1.0
#: The scores of float64 arithmetic on identical (or exactly scaled) signals, made float32 for auraloss.
EXACT_TOL = 1e-6
#: MR-STFT of two float32 roundings of the same signal (auraloss's log term at 1e-8 power floor).
MRSTFT_TOL = 1e-4


def music_like(seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    """Stereo noise with a decaying-hit envelope (so crest and PLR are not those of steady noise), peak ~0.5."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    env = 0.3 + np.exp(-(np.arange(n) % (SAMPLE_RATE // 4)) / (0.03 * SAMPLE_RATE))
    x = rng.standard_normal((2, n)) * env
    x[1] = 0.7 * x[1] + 0.3 * x[0]
    return 0.1 * x


def test_identical_signals_score_zero():
    x = music_like()
    s = score_master(x, x, SAMPLE_RATE, target_lufs=TARGET_LUFS, ceiling_dbtp=CEILING_DBTP)
    for key in ("tonal_error_db", "plr_error_db", "crest_error_db"):
        assert s[key] == pytest.approx(0.0, abs=EXACT_TOL), key
    assert s["mrstft"] == pytest.approx(0.0, abs=MRSTFT_TOL)
    assert s["lufs_error_lu"] == pytest.approx(abs(integrated_lufs(x, SAMPLE_RATE) - TARGET_LUFS), abs=EXACT_TOL)


@pytest.mark.parametrize("gain_db", [-3.0, 2.5])
def test_a_known_gain_moves_lufs_error_and_peak_exactly_and_nothing_else(gain_db):
    x = music_like()
    lufs = integrated_lufs(x, SAMPLE_RATE)
    target = lufs - 10.0  # far below both, so |L + g - target| = |L - target| + g
    base = score_master(x, x, SAMPLE_RATE, target_lufs=target, ceiling_dbtp=CEILING_DBTP)
    y = x * 10.0 ** (gain_db / 20.0)
    s = score_master(y, x, SAMPLE_RATE, target_lufs=target, ceiling_dbtp=CEILING_DBTP)
    assert s["lufs_error_lu"] - base["lufs_error_lu"] == pytest.approx(gain_db, abs=1e-9)
    assert s["true_peak_dbtp"] - base["true_peak_dbtp"] == pytest.approx(gain_db, abs=1e-9)
    for key in ("tonal_error_db", "plr_error_db", "crest_error_db"):
        assert s[key] == pytest.approx(0.0, abs=EXACT_TOL), key
    assert s["mrstft"] == pytest.approx(0.0, abs=MRSTFT_TOL)


@pytest.mark.parametrize("shelf_db", [4.0, -4.0])
def test_a_known_shelf_gives_the_computed_tonal_error(shelf_db):
    """A brick-wall shelf of s dB on every rfft bin from the 1k/2k octave edge up: the 2k..16k bands move by
    exactly s, the others by 0, and each band relative to loudness by that minus the loudness change."""
    x = music_like()
    n = x.shape[1]
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    edge_hz = 1000.0 * math.sqrt(2.0)
    gain = np.where(freqs >= edge_hz, 10.0 ** (shelf_db / 20.0), 1.0)
    y = np.fft.irfft(np.fft.rfft(x, axis=-1) * gain, n=n, axis=-1)
    s = score_master(y, x, SAMPLE_RATE, target_lufs=TARGET_LUFS, ceiling_dbtp=CEILING_DBTP)
    centres = np.asarray(s["octave_bands"]["centre_hz"])
    band_shift = np.where(centres > edge_hz, shelf_db, 0.0)
    delta_lufs = integrated_lufs(y, SAMPLE_RATE) - integrated_lufs(x, SAMPLE_RATE)
    assert all(s["octave_bands"]["used"])
    assert np.allclose(s["octave_bands"]["difference_db"], band_shift - delta_lufs, atol=1e-6)
    assert s["tonal_error_db"] == pytest.approx(float(np.mean(np.abs(band_shift - delta_lufs))), abs=1e-6)
    assert s["tonal_error_db"] > 1.0  # a 4 dB shelf on half the bands is far from 0


def test_over_ceiling_is_the_measured_true_peak_above_the_ceiling():
    x = music_like()
    tp = true_peak_dbtp(x, SAMPLE_RATE)
    just_over = score_master(x, x, SAMPLE_RATE, target_lufs=TARGET_LUFS, ceiling_dbtp=tp - 0.01)
    just_under = score_master(x, x, SAMPLE_RATE, target_lufs=TARGET_LUFS, ceiling_dbtp=tp + 0.01)
    assert just_over["over_ceiling"] and not just_under["over_ceiling"]
    assert just_over["true_peak_dbtp"] == pytest.approx(tp)


def test_bad_input_is_refused_with_the_fix():
    x = music_like()
    kw = dict(target_lufs=TARGET_LUFS, ceiling_dbtp=CEILING_DBTP)
    with pytest.raises(EvaluationInputError, match="stereo"):
        score_master(x[:1], x[:1], SAMPLE_RATE, **kw)
    with pytest.raises(EvaluationInputError, match="trim"):
        score_master(x[:, :-10], x, SAMPLE_RATE, **kw)
    with pytest.raises(EvaluationInputError, match="silent"):
        score_master(np.zeros_like(x), x, SAMPLE_RATE, **kw)


def test_aggregate_by_hand():
    rows = [{"lufs_error_lu": 0.1, "mrstft": 1.0, "tonal_error_db": 2.0, "plr_error_db": 1.0, "crest_error_db": 0.0,
             "true_peak_dbtp": -1.5, "over_ceiling": False},
            {"lufs_error_lu": 0.3, "mrstft": 0.0, "tonal_error_db": 1.0, "plr_error_db": 3.0, "crest_error_db": 1.0,
             "true_peak_dbtp": -0.5, "over_ceiling": True}]
    agg = aggregate_scores(rows)
    assert agg == pytest.approx({"files": 2, "lufs_error_lu": 0.2, "mrstft": 0.5, "tonal_error_db": 1.5,
                                 "plr_error_db": 2.0, "crest_error_db": 0.5, "worst_true_peak_dbtp": -0.5,
                                 "over_ceiling": 1})
    assert aggregate_scores([]) == {"files": 0}
