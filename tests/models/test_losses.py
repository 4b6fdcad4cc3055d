"""Differentiable losses against closed forms: zero for identical audio, pure gains, ESR, gradients, features."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mixbridge.models import losses, metrics  # noqa: E402

SAMPLE_RATE = 44100
#: Pure gain of the closed-form checks.
GAIN = 0.5
#: float32 sums over ~1e5 samples.
FLOAT_TOL = 1e-6
#: auraloss floors power at 1e-8 and pads by reflection; noise at 0.3 rms sits far above the floor.
MRSTFT_TOL = 1e-3
#: A sine at a quarter of the sample rate samples 0, 1, 0, -1: peak 1, rms 1/sqrt(2) -> 20 log10 sqrt(2) dB.
SINE_CREST_DB = 10 * math.log10(2.0)
#: A short FFT for the Bark spectrum (the Diff-MST default 32768 needs > 16384 samples).
BARK_FFT = 4096
#: 0.37 s: long enough for the largest MR-STFT band (2048) and the Bark FFT, short enough to be quick.
NOISE_SAMPLES = 16384


@pytest.fixture(scope="module")
def noise() -> torch.Tensor:
    """Stereo white noise [2, 2, NOISE_SAMPLES], independent channels."""
    rng = np.random.default_rng(0)
    return torch.from_numpy((0.3 * rng.standard_normal((2, 2, NOISE_SAMPLES))).astype(np.float32))


def test_every_loss_is_zero_for_identical_audio(noise):
    assert float(losses.mrstft_loss()(noise, noise)) == pytest.approx(0.0, abs=FLOAT_TOL)
    assert float(losses.sum_and_difference_mrstft_loss()(noise, noise)) == pytest.approx(0.0, abs=FLOAT_TOL)
    assert float(losses.esr(noise, noise)) == 0.0
    terms = losses.AudioFeatureLoss(SAMPLE_RATE, n_fft=BARK_FFT).terms(noise, noise)
    assert set(terms) == set(losses.AUDIO_FEATURES) and all(float(v) == 0.0 for v in terms.values())
    loss, l1, stft = losses.ProxyLoss(warmup_samples=100)(noise, noise)
    assert float(l1) == 0.0 and float(loss) == pytest.approx(0.0, abs=FLOAT_TOL)


def test_esr_closed_forms_and_gradient(noise):
    x = noise
    assert float(losses.esr(torch.zeros_like(x), x)) == pytest.approx(1.0, abs=FLOAT_TOL)  # silence: all error
    assert float(losses.esr(2 * x, x)) == pytest.approx(1.0, abs=FLOAT_TOL)  # error = x
    assert float(losses.esr(x, 2 * x)) == pytest.approx(0.25, abs=FLOAT_TOL)  # error = x, energy 4 x^2
    assert float(losses.esr(GAIN * x, x)) == pytest.approx((1 - GAIN) ** 2, abs=FLOAT_TOL)
    y = torch.zeros_like(x, requires_grad=True)
    losses.esr(y, x).backward()
    expected = -2 * x / (x ** 2).sum()  # d/dy sum (x - y)^2 / sum x^2 at y = 0
    assert torch.allclose(y.grad, expected, rtol=1e-5, atol=1e-12)
    # the float metric is the same definition, in float64
    assert metrics.esr(GAIN * x, x) == pytest.approx((1 - GAIN) ** 2, abs=1e-12)


def test_mrstft_losses_of_a_pure_gain_and_their_gradients(noise):
    expected = abs(1 - GAIN) + abs(math.log(GAIN))  # spectral convergence + log-magnitude distance
    y = (GAIN * noise).requires_grad_(True)
    for make in (losses.mrstft_loss, losses.sum_and_difference_mrstft_loss):
        loss = make()(y, noise)
        assert float(loss.detach()) == pytest.approx(expected, abs=MRSTFT_TOL)
        y.grad = None
        loss.backward()
        assert torch.isfinite(y.grad).all() and float(y.grad.abs().sum()) > 0.0
    assert metrics.mrstft(GAIN * noise, noise) == pytest.approx(expected, abs=MRSTFT_TOL)
    assert metrics.mrstft(GAIN * noise, noise, sum_and_difference=True) == pytest.approx(expected, abs=MRSTFT_TOL)


def test_sum_and_difference_is_blind_to_a_channel_swap(noise):
    swapped = noise.flip(1)
    assert float(losses.sum_and_difference_mrstft_loss()(swapped, noise)) == pytest.approx(0.0, abs=FLOAT_TOL)
    assert float(losses.mrstft_loss()(swapped, noise)) > 0.1


def test_proxy_loss_leaves_out_the_warmup():
    target = torch.zeros(1, 1, 4096)
    output = target.clone()
    output[..., :1000] = 1.0  # all the error sits in the warmup
    loss, l1, _ = losses.ProxyLoss(stft_weight=0.0, warmup_samples=1000)(output, target)
    assert float(l1) == 0.0 and float(loss) == 0.0
    _, l1, _ = losses.ProxyLoss(stft_weight=0.0)(output, target)
    assert float(l1) == pytest.approx(1000 / 4096)


def _quarter_rate_sine(n: int = 8192) -> torch.Tensor:
    return torch.sin(torch.arange(n, dtype=torch.float64) * math.pi / 2)


def test_feature_closed_forms():
    s = _quarter_rate_sine()
    zeros = torch.zeros_like(s)
    left_only = torch.stack([s, zeros])[None]
    right_only = torch.stack([zeros, s])[None]
    dual_mono = torch.stack([s, s])[None]
    assert torch.allclose(losses.rms(dual_mono), torch.full((1, 2), math.sqrt(0.5), dtype=torch.float64))
    assert torch.allclose(losses.crest_factor_db(dual_mono), torch.full((1, 2), SINE_CREST_DB, dtype=torch.float64))
    assert float(losses.crest_factor_db(torch.zeros(1, 1, 16))[0, 0]) == 0.0  # silence: floored, not -inf
    assert float(losses.stereo_width(dual_mono)) == 0.0  # no side
    assert float(losses.stereo_width(left_only)) == pytest.approx(1.0)  # mid and side equal
    assert float(losses.stereo_imbalance(left_only)) == pytest.approx(-1.0)
    assert float(losses.stereo_imbalance(right_only)) == pytest.approx(1.0)
    assert float(losses.stereo_imbalance(dual_mono)) == 0.0
    with pytest.raises(losses.LossShapeError, match="stereo"):
        losses.stereo_width(s[None, None])


def test_bark_spectrum_moves_by_ln_gain_and_the_scale_inverts(noise):
    a = losses.bark_spectrum(noise, SAMPLE_RATE, n_fft=BARK_FFT)
    b = losses.bark_spectrum(GAIN * noise, SAMPLE_RATE, n_fft=BARK_FFT)
    assert a.shape == (2, 24, 2)
    # every band is far above the 1e-8 log floor, so a gain shifts each by ln g
    assert torch.allclose(b - a, torch.full_like(a, math.log(GAIN)), atol=1e-4)
    f = np.array([50.0, 150.0, 1000.0, 8000.0, 18000.0])  # through both corrections (z < 2, z > 20.1)
    assert np.allclose(losses.bark_to_hz(losses.hz_to_bark(f)), f, rtol=1e-9)
    fb = losses.bark_filterbank(SAMPLE_RATE, BARK_FFT)
    assert fb.shape == (24, BARK_FFT // 2 + 1) and fb.max() <= 1.0
    with pytest.raises(losses.LossShapeError, match="Nyquist"):
        losses.bark_filterbank(32000, BARK_FFT, fmax_hz=20000.0)


def test_audio_feature_loss_of_a_gain_and_its_gradient(noise):
    loss_fn = losses.AudioFeatureLoss(SAMPLE_RATE, {"rms": 1.0, "stereo_width": 1.0}, n_fft=BARK_FFT)
    y = (2 * noise).requires_grad_(True)
    terms = loss_fn.terms(y, noise)
    # rms(2x) - rms(x) = rms(x) per channel; a gain leaves the width unchanged
    expected_rms = float(torch.mean(losses.rms(noise) ** 2))
    assert float(terms["rms"].detach()) == pytest.approx(expected_rms, rel=1e-5)
    assert float(terms["stereo_width"].detach()) == pytest.approx(0.0, abs=1e-10)
    loss_fn(y, noise).backward()
    assert torch.isfinite(y.grad).all() and float(y.grad.abs().sum()) > 0.0
    with pytest.raises(losses.LossShapeError, match="unknown audio features"):
        losses.AudioFeatureLoss(SAMPLE_RATE, {"loudness": 1.0})
