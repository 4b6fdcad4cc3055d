"""Evaluation metrics of neural proxies (thesis ch. 4): MAE, ESR, MCD, MR-STFT, loudness.

ESR and MR-STFT are float-returning wrappers (under ``no_grad``) over the differentiable
losses of :mod:`mixbridge.models.losses` (one definition each); MCD and loudness are
measurements only.

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
MR-STFT    :func:`mixbridge.models.losses.mrstft_loss` (auraloss, thesis bands: FFT
           512/1024/2048, hops 50/120/240, Hann windows 240/600/1200); per band
           spectral convergence ``||T| - |Y|||_F / ||T|||_F`` plus
           ``mean |ln|Y| - ln|T||``, averaged over the bands (Yamamoto et al.,
           Parallel WaveGAN, ICASSP 2020; Steinmetz & Reiss, auraloss, DMRN 2020)
loudness   ``L(y) - L(t)`` in LU, ``L`` the integrated loudness in LUFS of ITU-R
           BS.1770-4 (:func:`mixbridge.loudness.integrated_lufs`, pyloudnorm; gated-out
           signals and ones shorter than a 400 ms block read -70 LUFS)
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

from mixbridge.loudness import integrated_lufs
from mixbridge.mel import mel_filterbank

from . import losses

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
    """Mean absolute error ``mean |y - t|`` (same units as the audio).

    Raises:
        ValueError: shapes differ, or audio that is not 2-D or 3-D.
    """
    y, t = _pair(output, target)
    return float((y - t).abs().mean())


def esr(output: Any, target: Any, eps: float = losses.ESR_EPS) -> float:
    """Error-to-signal ratio ``sum (t - y)^2 / (sum t^2 + eps)`` in float64 (:func:`mixbridge.models.losses.esr`).

    Raises:
        ValueError: shapes differ, or audio that is not ``[channels, samples]`` / ``[batch, channels, samples]``.
    """
    y, t = _pair(output, target)
    with torch.no_grad():
        return float(losses.esr(y.double(), t.double(), eps))


def mrstft(output: Any, target: Any, sum_and_difference: bool = False) -> float:
    """Multi-resolution STFT distance with the thesis bands (:func:`mixbridge.models.losses.mrstft_loss`).

    ``sum_and_difference``: for stereo, the mean of the distances of ``L + R`` and of
    ``L - R`` (:func:`mixbridge.models.losses.sum_and_difference_mrstft_loss`; invariant to
    swapping channels; DESIGN.md §2, Diff-MST/DMC). Signals must be longer than half the
    largest FFT (1024 samples).

    Raises:
        ValueError: shapes differ, or ``sum_and_difference`` on audio that is not stereo.
    """
    y, t = _pair(output, target)
    if y.dim() == 2:
        y, t = y[None], t[None]
    if sum_and_difference and y.shape[1] != 2:
        raise ValueError(f"sum_and_difference needs 2 channels, got {y.shape[1]}")
    loss = losses.sum_and_difference_mrstft_loss() if sum_and_difference else losses.mrstft_loss()
    with torch.no_grad():
        return float(loss(y.float(), t.float()))


def mel_cepstrum(audio: Any, sample_rate: int, order: int = MCD_ORDER) -> np.ndarray:
    """Mel cepstra ``[..., frames, order + 1]`` (``c_0 .. c_order``) of ``audio [..., samples]``."""
    from scipy.fft import dct
    from scipy.signal import stft

    x = np.asarray(_tensor(audio).double().numpy())
    _, _, spec = stft(x, nperseg=MCD_FFT_SIZE, noverlap=MCD_FFT_SIZE - MCD_HOP_SIZE, window="hann",
                      boundary=None, padded=False)  # [..., bins, frames]
    power = np.abs(spec) ** 2
    mel = np.einsum("mb,...bf->...fm", mel_filterbank(sample_rate, MCD_FFT_SIZE, MCD_N_MELS), power)
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
    """Integrated loudness in LUFS (ITU-R BS.1770-4) of ``[channels, samples]`` audio (array or tensor).

    Batched input ``[batch, channels, samples]`` is measured as one long signal per channel.
    The measurement is :func:`mixbridge.loudness.integrated_lufs`: a signal that the gates
    remove entirely, or one shorter than a 400 ms block, measures -70 LUFS (the absolute gate).
    """
    x = _tensor(audio).double()
    if x.dim() == 3:
        x = x.permute(1, 0, 2).reshape(x.shape[1], -1)
    if x.dim() == 1:
        x = x[None]
    return integrated_lufs(x.numpy(), sample_rate)


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
