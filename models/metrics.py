"""Evaluation metrics of neural proxies (thesis ch. 4): MAE, ESR, MCD, MR-STFT, loudness.

Every function takes ``output`` (the proxy's audio) and ``target`` (the real
effect's audio) as torch tensors or numpy arrays of the same shape,
``[batch, channels, samples]`` or ``[channels, samples]`` (float, any sample
values), and returns a Python float. Lower is better for all but
:func:`loudness_difference_db`, which is signed.

=========  ==========================================================================
metric     formula and source
=========  ==========================================================================
MAE        ``mean |y - t|`` over all samples
ESR        ``sum (t - y)^2 / sum t^2`` (error-to-signal ratio; Wright & Välimäki,
           "Perceptual loss function for neural modelling of audio systems", ICASSP
           2020 — here without pre-emphasis, as in the thesis tables)
MCD        ``(10 / ln 10) * sqrt(2 * sum_{k=1..25} (c_k - c'_k)^2)`` averaged over
           frames, where ``c`` is the DCT-II (orthonormal) of the natural log of an
           80-band mel power spectrum (FFT 2048, hop 512, Hann) and ``c_0`` (energy)
           is left out (Kubichek, "Mel-cepstral distance measure for objective speech
           quality assessment", 1993; k = 25 as in the thesis)
MR-STFT    auraloss ``MultiResolutionSTFTLoss`` with the thesis bands: FFT 512/1024/
           2048, hops 50/120/240, Hann windows 240/600/1200; per band spectral
           convergence ``||T| - |Y|||_F / ||T|||_F`` plus ``mean |ln|Y| - ln|T||``,
           averaged over the bands (Yamamoto et al., Parallel WaveGAN, ICASSP 2020;
           Steinmetz & Reiss, auraloss, DMRN 2020)
loudness   ``L(y) - L(t)`` in LU, ``L`` the integrated loudness in LUFS of ITU-R
           BS.1770-4 measured by pyloudnorm (signals shorter than one 400 ms block
           raise)
=========  ==========================================================================

Hand-checkable facts the tests use: for ``y = g t`` (a pure gain ``g``) ESR is
``(1 - g)^2``, MAE is ``|1 - g| mean|t|``, MR-STFT is ``|1 - g| + |ln g|``, MCD is 0
(a gain only moves ``c_0``) and the loudness difference is ``20 log10 g`` LU.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

#: Thesis MR-STFT bands (FFT size, hop, window), DESIGN.md §2.
MRSTFT_FFT_SIZES = (512, 1024, 2048)
MRSTFT_HOP_SIZES = (50, 120, 240)
MRSTFT_WIN_LENGTHS = (240, 600, 1200)

#: MCD analysis settings.
MCD_ORDER = 25
MCD_N_MELS = 80
MCD_FFT_SIZE = 2048
MCD_HOP_SIZE = 512
#: Floor added to mel power before the log (keeps digital silence finite).
MCD_POWER_FLOOR = 1e-10
#: ``10 / ln 10 * sqrt(2)``: one unit of cepstral difference in ``c_1`` alone, in dB.
MCD_SCALE_DB = 10.0 / math.log(10.0)


def _tensor(x: Any) -> torch.Tensor:
    t = torch.as_tensor(x)
    if not torch.is_floating_point(t):
        t = t.float()
    return t


def _pair(output: Any, target: Any) -> tuple[torch.Tensor, torch.Tensor]:
    y, t = _tensor(output), _tensor(target)
    if y.shape != t.shape:
        raise ValueError(f"output {tuple(y.shape)} and target {tuple(t.shape)} must have the same shape")
    if y.dim() not in (2, 3):
        raise ValueError(f"audio must be [channels, samples] or [batch, channels, samples], got {tuple(y.shape)}")
    dtype = torch.promote_types(y.dtype, t.dtype)
    return y.to(dtype), t.to(dtype)


def mae(output: Any, target: Any) -> float:
    """Mean absolute error ``mean |y - t|`` (same units as the audio)."""
    y, t = _pair(output, target)
    return float((y - t).abs().mean())


def esr(output: Any, target: Any, eps: float = 1e-12) -> float:
    """Error-to-signal ratio ``sum (t - y)^2 / (sum t^2 + eps)`` (Wright & Välimäki 2020)."""
    y, t = _pair(output, target)
    y, t = y.double(), t.double()
    return float(((t - y) ** 2).sum() / ((t ** 2).sum() + eps))


def mrstft(output: Any, target: Any, sum_and_difference: bool = False) -> float:
    """Multi-resolution STFT distance with the thesis bands (auraloss).

    ``sum_and_difference``: for stereo, compare ``L + R`` and ``L - R`` instead of
    ``L`` and ``R`` (invariant to swapping channels; DESIGN.md §2, Diff-MST/DMC).
    Signals must be longer than half the largest FFT (1024 samples).
    """
    import auraloss

    y, t = _pair(output, target)
    if y.dim() == 2:
        y, t = y[None], t[None]
    if sum_and_difference:
        if y.shape[1] != 2:
            raise ValueError(f"sum_and_difference needs 2 channels, got {y.shape[1]}")
        y = torch.stack([y[:, 0] + y[:, 1], y[:, 0] - y[:, 1]], dim=1)
        t = torch.stack([t[:, 0] + t[:, 1], t[:, 0] - t[:, 1]], dim=1)
    loss = auraloss.freq.MultiResolutionSTFTLoss(
        fft_sizes=list(MRSTFT_FFT_SIZES), hop_sizes=list(MRSTFT_HOP_SIZES),
        win_lengths=list(MRSTFT_WIN_LENGTHS))
    with torch.no_grad():
        return float(loss(y.float(), t.float()))


def mel_filterbank(sample_rate: int, n_fft: int = MCD_FFT_SIZE, n_mels: int = MCD_N_MELS,
                   fmin_hz: float = 0.0, fmax_hz: float | None = None) -> np.ndarray:
    """Triangular HTK-mel filterbank ``[n_mels, n_fft // 2 + 1]`` (mel = 2595 log10(1 + f/700))."""
    fmax_hz = sample_rate / 2 if fmax_hz is None else fmax_hz

    def mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    edges = hz(np.linspace(mel(fmin_hz), mel(fmax_hz), n_mels + 2))
    freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    fb = np.zeros((n_mels, freqs.size))
    for m in range(n_mels):
        lo, centre, hi = edges[m], edges[m + 1], edges[m + 2]
        up = (freqs - lo) / max(centre - lo, 1e-9)
        down = (hi - freqs) / max(hi - centre, 1e-9)
        fb[m] = np.clip(np.minimum(up, down), 0.0, None)
    return fb


def mel_cepstrum(audio: Any, sample_rate: int, order: int = MCD_ORDER) -> np.ndarray:
    """Mel cepstra ``[..., frames, order + 1]`` (``c_0 .. c_order``) of ``audio [..., samples]``."""
    from scipy.fft import dct
    from scipy.signal import stft

    x = np.asarray(_tensor(audio).double().numpy())
    _, _, spec = stft(x, nperseg=MCD_FFT_SIZE, noverlap=MCD_FFT_SIZE - MCD_HOP_SIZE, window="hann",
                      boundary=None, padded=False)  # [..., bins, frames]
    power = np.abs(spec) ** 2
    mel = np.einsum("mb,...bf->...fm", mel_filterbank(sample_rate), power)
    return dct(np.log(mel + MCD_POWER_FLOOR), type=2, norm="ortho", axis=-1)[..., : order + 1]


def mcd_from_cepstra(c_output: np.ndarray, c_target: np.ndarray) -> float:
    """``mean_frames (10 / ln 10) sqrt(2 sum_{k>=1} (c_k - c'_k)^2)`` on ``[..., frames, order + 1]``."""
    diff = np.asarray(c_output)[..., 1:] - np.asarray(c_target)[..., 1:]
    return float(np.mean(MCD_SCALE_DB * np.sqrt(2.0 * np.sum(diff ** 2, axis=-1))))


def mcd(output: Any, target: Any, sample_rate: int, order: int = MCD_ORDER) -> float:
    """Mel cepstral distortion in dB with ``k = order`` coefficients (see the module table).

    Raises:
        ValueError: shapes differ, or the audio is shorter than one FFT frame (2048 samples).
    """
    y, t = _pair(output, target)
    if y.shape[-1] < MCD_FFT_SIZE:
        raise ValueError(f"MCD needs at least {MCD_FFT_SIZE} samples, got {y.shape[-1]}")
    return mcd_from_cepstra(mel_cepstrum(y, sample_rate, order), mel_cepstrum(t, sample_rate, order))


def loudness_lufs(audio: Any, sample_rate: int) -> float:
    """Integrated loudness (ITU-R BS.1770-4, pyloudnorm) of ``[channels, samples]`` audio.

    Batched input ``[batch, channels, samples]`` is measured as one long signal per channel.
    """
    import pyloudnorm

    x = _tensor(audio).double()
    if x.dim() == 3:
        x = x.permute(1, 0, 2).reshape(x.shape[1], -1)
    data = x.numpy().T  # pyloudnorm wants [samples, channels]
    if data.shape[1] == 1:
        data = data[:, 0]
    return float(pyloudnorm.Meter(sample_rate).integrated_loudness(data))


def loudness_difference_db(output: Any, target: Any, sample_rate: int) -> float:
    """``L(output) - L(target)`` in LU (dB), both integrated LUFS (BS.1770-4)."""
    y, t = _pair(output, target)
    return loudness_lufs(y, sample_rate) - loudness_lufs(t, sample_rate)


def all_metrics(output: Any, target: Any, sample_rate: int) -> dict[str, float]:
    """Every metric in one dict: ``mae``, ``esr``, ``mcd_db``, ``mrstft``, ``loudness_diff_db``."""
    return {
        "mae": mae(output, target),
        "esr": esr(output, target),
        "mcd_db": mcd(output, target, sample_rate),
        "mrstft": mrstft(output, target),
        "loudness_diff_db": loudness_difference_db(output, target, sample_rate),
    }
