"""Proxy metrics against hand-computed values and closed-form facts."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mixbridge.models import metrics  # noqa: E402

SAMPLE_RATE = 48000
#: Half amplitude: 20 log10(0.5) = -6.0206 dB.
GAIN = 0.5
GAIN_DB = 20 * math.log10(GAIN)
#: Float32 arithmetic on sums of ~1e5 values.
FLOAT_TOL = 1e-6
#: auraloss floors power at 1e-8 and pads by reflection; white noise at 0.3 rms
#: sits far above the floor, so the closed form holds to about this.
MRSTFT_TOL = 1e-3
#: pyloudnorm 0.1.1 redesigns the K-weighting from its analog prototype at every rate and
#: reads a 0 dBFS 997 Hz sine at -3.052 LUFS at 48 kHz, 0.04 dB below BS.1770-4's -3.01.
LOUDNESS_TOL_DB = 0.05


@pytest.fixture(scope="module")
def noise():
    rng = np.random.default_rng(0)
    return (0.3 * rng.standard_normal((1, 1, SAMPLE_RATE))).astype(np.float32)


def test_mae_and_esr_by_hand():
    y = np.array([[1.0, 2.0, 3.0]])
    t = np.array([[1.0, 1.0, 1.0]])
    assert metrics.mae(y, t) == pytest.approx((0 + 1 + 2) / 3)
    assert metrics.esr(y, t) == pytest.approx((0 + 1 + 4) / 3)
    assert metrics.esr(t, t) == 0.0 and metrics.mae(t, t) == 0.0


def test_gain_closed_forms(noise):
    t = torch.from_numpy(noise)
    y = GAIN * t
    assert metrics.esr(y, t) == pytest.approx((1 - GAIN) ** 2, abs=FLOAT_TOL)
    assert metrics.mae(y, t) == pytest.approx((1 - GAIN) * float(t.abs().mean()), rel=FLOAT_TOL)
    assert metrics.mrstft(y, t) == pytest.approx(abs(1 - GAIN) + abs(math.log(GAIN)), abs=MRSTFT_TOL)
    assert metrics.mrstft(t, t) == pytest.approx(0.0, abs=FLOAT_TOL)


def test_mcd_from_cepstra_by_hand():
    c_target = np.zeros((2, 26))
    c_output = np.zeros((2, 26))
    c_output[:, 0] = 7.0  # c0 (energy) is ignored
    c_output[0, 1] = 1.0  # frame 0: one unit in c1 -> 10/ln10 * sqrt(2)
    c_output[1, 1:3] = [3.0, 4.0]  # frame 1: |d| = 5 -> 5 * 10/ln10 * sqrt(2)
    expected = (10 / math.log(10)) * math.sqrt(2) * (1 + 5) / 2
    assert metrics.mcd_from_cepstra(c_output, c_target) == pytest.approx(expected)


def test_mcd_is_zero_for_a_gain_and_positive_for_a_filter(noise):
    assert metrics.mel_cepstrum(noise, SAMPLE_RATE).shape[-1] == metrics.MCD_ORDER + 1
    assert metrics.mcd(GAIN * noise, noise, SAMPLE_RATE) == pytest.approx(0.0, abs=1e-3)
    lowpassed = np.copy(noise)
    lowpassed[..., 1:] = 0.5 * (noise[..., 1:] + noise[..., :-1])  # 2-tap average: a low-pass
    assert metrics.mcd(lowpassed, noise, SAMPLE_RATE) > 1.0


def test_loudness_of_full_scale_sine_and_gain_difference():
    """BS.1770-4: a 0 dBFS 997 Hz sine on one channel reads -3.01 LUFS."""
    n = np.arange(3 * SAMPLE_RATE)
    sine = np.sin(2 * np.pi * 997 * n / SAMPLE_RATE)[None].astype(np.float64)
    assert metrics.loudness_lufs(sine, SAMPLE_RATE) == pytest.approx(-3.01, abs=LOUDNESS_TOL_DB)
    assert metrics.loudness_difference_db(GAIN * sine, sine, SAMPLE_RATE) == pytest.approx(GAIN_DB, abs=1e-6)


def test_all_metrics_zero_for_identical(noise):
    out = metrics.all_metrics(noise, noise, SAMPLE_RATE)
    assert out["mae"] == out["esr"] == 0.0
    assert out["mcd_db"] == pytest.approx(0.0, abs=1e-9)
    assert out["mrstft"] == pytest.approx(0.0, abs=FLOAT_TOL)
    assert out["loudness_diff_db"] == pytest.approx(0.0, abs=1e-9)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="same shape"):
        metrics.esr(np.zeros((1, 10)), np.zeros((1, 11)))


def test_sum_and_difference_mrstft_ignores_channel_swap(noise):
    stereo = np.concatenate([noise, 0.5 * noise[..., ::-1].copy()], axis=1)
    swapped = stereo[:, ::-1].copy()
    # L-R flips sign under a swap; magnitudes do not change
    assert metrics.mrstft(swapped, stereo, sum_and_difference=True) == pytest.approx(0.0, abs=FLOAT_TOL)
    assert metrics.mrstft(swapped, stereo) > 0.1
