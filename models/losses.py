"""Differentiable audio losses, one definition each, usable for training and as metrics.

Every loss takes ``output`` (the model's audio) and ``target`` as float torch tensors of
shape ``[batch, channels, samples]`` and returns a scalar tensor that carries gradients
to ``output``; :mod:`mixbridge.models.metrics` wraps them into float-returning metrics.

============================  ==========================================================
loss                          definition and source
============================  ==========================================================
:func:`mrstft_loss`           auraloss ``MultiResolutionSTFTLoss`` with the thesis bands
                              (:data:`MRSTFT_FFT_SIZES`, hops, Hann windows): per band the
                              spectral convergence ``||T| - |Y|||_F / ||T|||_F`` plus
                              ``mean |ln|Y| - ln|T||``, averaged over the bands (Yamamoto
                              et al., Parallel WaveGAN, ICASSP 2020; Steinmetz & Reiss,
                              auraloss, DMRN+15 2020)
:func:`sum_and_difference_    auraloss ``SumAndDifferenceSTFTLoss``: the MR-STFT loss of
mrstft_loss`                  ``L + R`` and of ``L - R``, averaged (stereo only; invariant
                              to swapping the channels; Steinmetz et al., "Automatic
                              multitrack mixing with a differentiable mixing console of
                              neural audio effects", ICASSP 2021)
:func:`esr`                   error-to-signal ratio ``sum (t - y)^2 / (sum t^2 + eps)``
                              over the whole batch (Wright & Välimäki, "Perceptual loss
                              function for neural modelling of audio systems", ICASSP
                              2020, without pre-emphasis as in the thesis tables)
:class:`ProxyLoss`            the proxy recipe ``l1_weight * L1 + stft_weight * MR-STFT``
:class:`AudioFeatureLoss`     Diff-MST's audio-feature loss (Steinmetz, Vanka, Martínez
                              Ramírez, Fabbro, "Diff-MST: differentiable mixing style
                              transfer", ISMIR 2024; features after De Man et al., 2014):
                              weighted MSE between RMS, crest factor, stereo width,
                              stereo imbalance and a Bark spectrum of output and target
============================  ==========================================================

Closed forms the tests check: every loss is 0 for identical inputs; for a pure gain
``y = g t`` the ESR is ``(1 - g)^2`` and both MR-STFT losses are ``|1 - g| + |ln g|``
(auraloss floors power at 1e-8, far below music); the Bark spectrum moves by ``ln g``.
"""
from __future__ import annotations

import numpy as np
import torch

from mixbridge.errors import MixbridgeError

#: The thesis MR-STFT bands (DESIGN.md §2): FFT sizes, hops and Hann window lengths, in samples.
MRSTFT_FFT_SIZES = (512, 1024, 2048)
MRSTFT_HOP_SIZES = (50, 120, 240)
MRSTFT_WIN_LENGTHS = (240, 600, 1200)

#: ESR denominator floor (keeps a silent target finite).
ESR_EPS = 1e-12
#: Floor of RMS and peak in the crest factor and of energies in the stereo ratios (Diff-MST's clamp).
FEATURE_FLOOR = 1e-8
#: Added to Bark band magnitudes before the log (Diff-MST's).
BARK_LOG_FLOOR = 1e-8


class LossShapeError(ValueError, MixbridgeError):
    """Audio of the wrong shape for a loss (the message names the shape needed)."""


def _check_pair(output: torch.Tensor, target: torch.Tensor, *, stereo: bool = False) -> None:
    if output.shape != target.shape:
        raise LossShapeError(f"output {tuple(output.shape)} and target {tuple(target.shape)} must have the same shape")
    if output.dim() != 3:
        raise LossShapeError(f"audio must be [batch, channels, samples], got {tuple(output.shape)}")
    if stereo and output.shape[1] != 2:
        raise LossShapeError(f"this loss needs stereo [batch, 2, samples] audio, got {output.shape[1]} channel(s)")


def mrstft_loss(**kwargs) -> torch.nn.Module:
    """auraloss ``MultiResolutionSTFTLoss`` with the thesis bands (a module: ``loss(output, target)``).

    Inputs longer than half the largest FFT (1024 samples; auraloss pads by reflection).
    ``kwargs`` go to auraloss (e.g. ``w_sc``, ``w_log_mag``); the bands are fixed here.
    """
    import auraloss

    return auraloss.freq.MultiResolutionSTFTLoss(
        fft_sizes=list(MRSTFT_FFT_SIZES), hop_sizes=list(MRSTFT_HOP_SIZES),
        win_lengths=list(MRSTFT_WIN_LENGTHS), **kwargs)


def sum_and_difference_mrstft_loss(**kwargs) -> torch.nn.Module:
    """auraloss ``SumAndDifferenceSTFTLoss`` with the thesis bands, for ``[batch, 2, samples]`` audio.

    ``(MR-STFT(L+R) + MR-STFT(L-R)) / 2``; auraloss raises ``ValueError`` on non-stereo input.
    """
    import auraloss

    return auraloss.freq.SumAndDifferenceSTFTLoss(
        fft_sizes=list(MRSTFT_FFT_SIZES), hop_sizes=list(MRSTFT_HOP_SIZES),
        win_lengths=list(MRSTFT_WIN_LENGTHS), **kwargs)


def esr_parts(output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sum (t - y)^2, sum t^2)`` over all elements: the ESR's numerator and denominator.

    Sums over several batches give the ESR of their union (the trainer's validation ESR).
    """
    return ((target - output) ** 2).sum(), (target ** 2).sum()


def esr(output: torch.Tensor, target: torch.Tensor, eps: float = ESR_EPS) -> torch.Tensor:
    """Error-to-signal ratio ``sum (t - y)^2 / (sum t^2 + eps)`` of tensors of any equal shape (a scalar).

    ESR(0, t) = 1; ESR(g t, t) = (1 - g)^2. Gradient w.r.t. ``output``: ``-2 (t - y) / (sum t^2 + eps)``.
    """
    err, energy = esr_parts(output, target)
    return err / (energy + eps)


class ProxyLoss:
    """``l1_weight * L1 + stft_weight * MR-STFT + esr_weight * ESR(pre-emphasised)`` on
    ``[batch, channels, samples]`` (the proxy recipe).

    The ESR term is Wright et al.'s ("Real-time guitar amplifier emulation with deep learning",
    Applied Sciences 10(3), 2020): the per-example error-to-signal ratio
    (``auraloss.time.ESRLoss``) after a first-order high-pass pre-emphasis ``1 - pre_emphasis z^-1``
    (``auraloss.perceptual.FIRFilter``; 0 = none). Unlike MR-STFT it sees phase and level, so a
    proxy cannot satisfy it with a fixed gain and the right spectrum.

    ``warmup_samples`` leading samples are left out when the signal is longer than twice
    that (a proxy's state before a random crop is unknown). Calling it returns
    ``(loss, l1, stft)`` as scalar tensors with gradients; :meth:`terms` adds ``esr``. A term
    whose weight is 0 is not computed (it reads 0).

    Raises:
        LossShapeError: ``pre_emphasis`` outside [0, 1).
    """

    def __init__(self, *, l1_weight: float = 1.0, stft_weight: float = 1.0, esr_weight: float = 0.0,
                 pre_emphasis: float = 0.0, warmup_samples: int = 0, sample_rate: int = 44100,
                 device: str = "cpu") -> None:
        import auraloss


        if not 0.0 <= pre_emphasis < 1.0:
            raise LossShapeError(f"pre_emphasis = {pre_emphasis} must be in [0, 1) (0.85-0.95 in Wright et al.)")
        self.l1_weight, self.stft_weight, self.esr_weight = float(l1_weight), float(stft_weight), float(esr_weight)
        self.warmup_samples = int(warmup_samples)
        self.stft = mrstft_loss().to(device)
        self.esr = auraloss.time.ESRLoss(eps=ESR_EPS).to(device)
        self.emphasis = (auraloss.perceptual.FIRFilter(filter_type="hp", coef=float(pre_emphasis),
                                                       fs=int(sample_rate)).to(device)
                         if pre_emphasis > 0 else None)

    def terms(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"loss", "l1", "stft", "esr"}`` of ``output`` against ``target`` (same shape)."""
        w = self.warmup_samples if output.shape[-1] > 2 * self.warmup_samples else 0
        output, target = output[..., w:], target[..., w:]
        l1 = (output - target).abs().mean()
        zero = l1.new_zeros(())
        stft = self.stft(output, target) if self.stft_weight else zero
        esr_term = zero
        if self.esr_weight:
            o, t = output.reshape(-1, 1, output.shape[-1]), target.reshape(-1, 1, target.shape[-1])
            if self.emphasis is not None:
                o, t = self.emphasis(o, t)
            esr_term = self.esr(o, t)
        loss = self.l1_weight * l1 + self.stft_weight * stft + self.esr_weight * esr_term
        return {"loss": loss, "l1": l1, "stft": stft, "esr": esr_term}

    def __call__(self, output: torch.Tensor, target: torch.Tensor):
        """``(loss, l1, stft)`` of ``output`` against ``target`` (same shape)."""
        t = self.terms(output, target)
        return t["loss"], t["l1"], t["stft"]


# --- Diff-MST audio features: [batch, channels, samples] -> per-example feature tensors ---

def rms(x: torch.Tensor) -> torch.Tensor:
    """Root mean square per channel, ``[batch, channels]`` (linear, same unit as the audio)."""
    return torch.sqrt(torch.mean(x ** 2, dim=-1))


def crest_factor_db(x: torch.Tensor) -> torch.Tensor:
    """Peak-to-RMS ratio per channel in dB, ``[batch, channels]``: ``20 log10(max|x| / rms)``.

    Peak and RMS are floored at :data:`FEATURE_FLOOR` (Diff-MST floors the RMS only), so
    digital silence reads 0 dB instead of -inf. A full-scale sine reads 3.01 dB.
    """
    peak = torch.amax(torch.abs(x), dim=-1).clamp(min=FEATURE_FLOOR)
    return 20.0 * torch.log10(peak / rms(x).clamp(min=FEATURE_FLOOR))


def stereo_width(x: torch.Tensor) -> torch.Tensor:
    """Side-to-mid energy ratio ``mean (L - R)^2 / mean (L + R)^2``, ``[batch]`` (0: mono; 1: one side only)."""
    _check_pair(x, x, stereo=True)
    mid, side = x[:, 0] + x[:, 1], x[:, 0] - x[:, 1]
    return torch.mean(side ** 2, dim=-1) / torch.mean(mid ** 2, dim=-1).clamp(min=FEATURE_FLOOR)


def stereo_imbalance(x: torch.Tensor) -> torch.Tensor:
    """``(E_R - E_L) / (E_R + E_L)`` from channel energies, ``[batch]``: -1 left only, 0 balanced, +1 right only."""
    _check_pair(x, x, stereo=True)
    left, right = torch.mean(x[:, 0] ** 2, dim=-1), torch.mean(x[:, 1] ** 2, dim=-1)
    return (right - left) / (right + left).clamp(min=FEATURE_FLOOR)


def hz_to_bark(f_hz):
    """Traunmüller's Bark scale (J. Acoust. Soc. Am. 88, 1990) with its low/high corrections."""
    z = 26.81 * np.asarray(f_hz, dtype=np.float64) / (1960.0 + np.asarray(f_hz, dtype=np.float64)) - 0.53
    return np.where(z < 2.0, z + 0.15 * (2.0 - z), np.where(z > 20.1, z + 0.22 * (z - 20.1), z))


def bark_to_hz(z):
    """Inverse of :func:`hz_to_bark` (Traunmüller 1990), in Hz."""
    z = np.asarray(z, dtype=np.float64)
    z = np.where(z < 2.0, (z - 0.3) / 0.85, np.where(z > 20.1, (z + 4.422) / 1.22, z))
    return 1960.0 * (z + 0.53) / (26.28 - z)


def bark_filterbank(sample_rate: int, n_fft: int, n_bands: int = 24, fmin_hz: float = 20.0,
                    fmax_hz: float = 20000.0) -> np.ndarray:
    """Triangular filters equally spaced in Bark, ``[n_bands, n_fft // 2 + 1]`` (peak 1 at each centre).

    Raises:
        LossShapeError: ``fmax_hz`` above Nyquist or not above ``fmin_hz``.
    """
    if not 0 <= fmin_hz < fmax_hz <= sample_rate / 2:
        raise LossShapeError(f"Bark bands need 0 <= fmin_hz < fmax_hz <= {sample_rate / 2} Hz (Nyquist); "
                             f"got {fmin_hz}..{fmax_hz} Hz")
    edges = bark_to_hz(np.linspace(hz_to_bark(fmin_hz), hz_to_bark(fmax_hz), n_bands + 2))
    freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    lo, centre, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None] - lo) / np.maximum(centre - lo, 1e-9)
    down = (hi - freqs[None]) / np.maximum(hi - centre, 1e-9)
    return np.clip(np.minimum(up, down), 0.0, None)


def bark_spectrum(x: torch.Tensor, sample_rate: int, *, n_fft: int = 32768, n_bands: int = 24,
                  fmin_hz: float = 20.0, fmax_hz: float = 20000.0) -> torch.Tensor:
    """Log Bark spectrum of mid and side, ``[batch, n_bands, 2]`` (natural log of band magnitudes).

    Mid ``L + R`` and side ``L - R`` (Diff-MST's "mid-side" mode): the time-averaged STFT
    magnitude (Hann, ``n_fft``, hop ``n_fft / 4``) weighted by :func:`bark_filterbank`, then
    ``ln(. + 1e-8)``. Signals must be longer than ``n_fft / 2`` samples (reflect padding);
    ``fmax_hz`` is cut to Nyquist.

    Raises:
        LossShapeError: not stereo ``[batch, 2, samples]``.
    """
    _check_pair(x, x, stereo=True)
    fb = torch.as_tensor(bark_filterbank(sample_rate, n_fft, n_bands, fmin_hz, min(fmax_hz, sample_rate / 2)),
                         dtype=x.dtype, device=x.device)
    window = torch.hann_window(n_fft, dtype=x.dtype, device=x.device)
    bands = []
    for signal in (x[:, 0] + x[:, 1], x[:, 0] - x[:, 1]):
        spec = torch.stft(signal, n_fft=n_fft, hop_length=n_fft // 4, window=window, return_complex=True)
        bands.append(torch.log(fb @ spec.abs().mean(dim=-1, keepdim=True) + BARK_LOG_FLOOR))
    return torch.cat(bands, dim=-1)


#: The Diff-MST feature names, in the order of :class:`AudioFeatureLoss` ``weights``.
AUDIO_FEATURES = ("rms", "crest_factor_db", "stereo_width", "stereo_imbalance", "bark_spectrum")


class AudioFeatureLoss(torch.nn.Module):
    """Diff-MST's audio-feature loss: ``sum_f w_f * MSE(feature_f(output), feature_f(target))``.

    The features are :data:`AUDIO_FEATURES` (:func:`rms`, :func:`crest_factor_db`,
    :func:`stereo_width`, :func:`stereo_imbalance`, :func:`bark_spectrum`) of stereo
    ``[batch, 2, samples]`` audio at ``sample_rate`` Hz. ``weights`` (default 1 each) may
    name any subset; :meth:`terms` gives the weighted terms one by one, ``forward`` their sum.

    Raises:
        LossShapeError: unknown feature names, or audio that is not stereo.
    """

    def __init__(self, sample_rate: int, weights: dict[str, float] | None = None, *, n_fft: int = 32768,
                 n_bands: int = 24) -> None:
        super().__init__()
        weights = dict.fromkeys(AUDIO_FEATURES, 1.0) if weights is None else dict(weights)
        unknown = sorted(set(weights) - set(AUDIO_FEATURES))
        if unknown:
            raise LossShapeError(f"unknown audio features {unknown}; known: {', '.join(AUDIO_FEATURES)}")
        self.sample_rate, self.weights, self.n_fft, self.n_bands = int(sample_rate), weights, int(n_fft), int(n_bands)

    def _feature(self, name: str, x: torch.Tensor) -> torch.Tensor:
        if name == "bark_spectrum":
            return bark_spectrum(x, self.sample_rate, n_fft=self.n_fft, n_bands=self.n_bands)
        return {"rms": rms, "crest_factor_db": crest_factor_db, "stereo_width": stereo_width,
                "stereo_imbalance": stereo_imbalance}[name](x)

    def terms(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """The weighted MSE of each feature, ``{name: scalar tensor}``."""
        _check_pair(output, target, stereo=True)
        return {name: w * torch.nn.functional.mse_loss(self._feature(name, output), self._feature(name, target))
                for name, w in self.weights.items()}

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The sum of :meth:`terms` (a scalar tensor with gradients)."""
        return sum(self.terms(output, target).values(), torch.zeros((), dtype=output.dtype, device=output.device))
