"""Dynamics in torch: the schema's compressor, the master's true-peak limiter and the master chain.

* :func:`compress` -- :func:`mixbridge.plugins.dynamics.compress`: linked peak
  detector, quadratic soft knee, release as the max-plus recursion
  ``log y1 = cummax(log gr[k] + k/tau) - n/tau`` (``torch.cummax``), then the
  one-pole attack applied as its exact frequency response
  ``(1 - a)/(1 - a e^-jw)`` on a zero-padded FFT grid. Detector path in float64.
  Why not ``torchcomp``: its ballistics are a one-pole on the *linear* gain that
  switches its coefficient between attack and release per sample (a
  "branching" smoother), so ``release_ms`` there is not the 63 % time of the
  reduction in dB, and its release does not hold peaks; the schema's ballistics
  (instant-attack peak hold with exponential release, then a one-pole attack, both
  on the reduction in dB) are a different filter, and torchcomp also needs numba and
  torchlpc. The functions here need torch only.
* :func:`limiter` -- the true-peak look-ahead limiter of
  :mod:`mixbridge.plugins.master_bus` (offline, latency compensated): the same 81-tap
  4x interpolator as a ``conv1d``, attenuation held over the look-ahead by
  ``max_pool1d``, the max-plus release by ``cummax``, the box average by ``avg_pool1d``,
  the final sample-peak guard by ``clamp``.
* :func:`master_chain` -- the one master bus (``MASTER_RENDER``): EQ -> compressor -> gain -> limiter.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from mixbridge.plugins import master_bus as _mb
from mixbridge.plugins import master_kernels as _mk
from mixbridge.plugins.dynamics import LEVEL_FLOOR, TINY

from .dsp import IIR_TAIL, LN10_OVER_20, as_param, check_audio, check_rate, db_to_gain, fft_filter, trim, unit_circle
from .dsp_eq import eq

#: Below this (in dB of gain reduction) the held reduction is set to 0: keeps the FFTs out of denormals.
REDUCTION_FLOOR_DB = 1e-20


def static_reduction_db(level_db: torch.Tensor, threshold_db, ratio, knee_db) -> torch.Tensor:
    """Gain reduction (dB, >= 0) of the quadratic soft-knee gain computer; parameters ``[batch]`` or scalars.

    ``level_db`` is ``[batch, samples]``; the same closed form as
    :func:`mixbridge.plugins.dynamics.static_reduction_db` (hard knee at ``knee_db = 0``).
    """
    slope = (1.0 - 1.0 / ratio)[:, None]
    thr, knee = threshold_db[:, None], knee_db[:, None]
    safe = torch.where(knee > 0, knee, torch.ones_like(knee))
    inside = torch.minimum(torch.clamp(level_db - (thr - knee / 2.0), min=0.0), knee)
    above = torch.clamp(level_db - (thr + knee / 2.0), min=0.0)
    soft = slope * (inside * inside / (2.0 * safe) + above)
    hard = slope * torch.clamp(level_db - thr, min=0.0)
    return torch.where(knee > 0, soft, hard)


def peak_release(values: torch.Tensor, release_ms, sample_rate: int) -> torch.Tensor:
    """``y[n] = max(v[n], exp(-1/tau) y[n-1])`` (zero state) for ``values`` ``[batch, samples]`` >= 0, float64.

    The max-plus recursion ``log y[n] = cummax_k(log v[k] + k/tau) - n/tau`` with
    ``tau = release_ms/1000 * sample_rate``; values under :data:`REDUCTION_FLOOR_DB` come out as 0.
    """
    n = values.shape[-1]
    step = 1.0 / (release_ms * (1e-3 * sample_rate))
    ramp = torch.arange(n, dtype=torch.float64, device=values.device)[None, :] * step[:, None]
    logv = torch.log(torch.clamp(values.to(torch.float64), min=TINY)) + ramp
    logv = torch.cummax(logv, dim=-1).values - ramp
    return torch.where(logv > math.log(REDUCTION_FLOOR_DB), torch.exp(logv), torch.zeros_like(logv))


def one_pole(values: torch.Tensor, time_ms, sample_rate: int) -> torch.Tensor:
    """``y[n] = a y[n-1] + (1 - a) v[n]`` from a zero state, ``a = exp(-1/(time_ms/1000 sample_rate))``.

    ``values`` ``[batch, samples]``; applied as its exact frequency response on an FFT grid
    padded until ``a^pad < IIR_TAIL`` (equal to ``scipy.signal.lfilter`` to round-off).
    """
    a = torch.exp(-1.0 / (time_ms * (1e-3 * sample_rate)))
    a_max = float(a.detach().max())
    pad = int(math.ceil(math.log(IIR_TAIL) / math.log(a_max))) + 2 if a_max > 0 else 2

    def response(n_fft):
        c1, s1, _, _ = unit_circle(n_fft, str(values.device))
        den = torch.complex(1.0 - a[:, None] * c1, a[:, None] * s1)
        return (1.0 - a)[:, None].to(den.dtype) / den

    return fft_filter(values[:, None, :], response, pad)[:, 0, :]


def decoupled_release(values: torch.Tensor, release_ms, beta, sample_rate: int) -> torch.Tensor:
    """Release stage between the schema's peak hold and Giannoulis et al.'s smooth decoupled detector.

    ``y[n] = max(g[n], aR y[n-1] + beta (1 - aR) g[n])`` (zero state) for ``values`` ``g``
    ``[batch, samples]`` >= 0, ``aR = exp(-1 / (release_ms/1000 sample_rate))``, ``beta`` in 0..1
    ``[batch]``: ``beta = 0`` is :func:`peak_release` (the schema's compressor), ``beta = 1`` is
    eq. 17 of Giannoulis, Massberg and Reiss (JAES 60(6), 2012), the release of ZamComp and many
    plugins, which decays toward the current reduction instead of toward zero.

    Vectorised through the identity (the recursion is a composition of monotone max-affine maps)
    ``y = beta P + M``, with ``P`` the one-pole ``(1 - aR)``-normalised low-pass of ``g``
    (:func:`one_pole`) and ``M[n] = max(aR M[n-1], max(g[n] - beta P[n], 0))``, the max-plus
    recursion :func:`peak_release` computes. Float64.
    """
    g = values.to(torch.float64)
    b = beta.to(torch.float64)[:, None]
    low = one_pole(g, release_ms, sample_rate)
    return b * low + peak_release(torch.clamp(g - b * low, min=0.0), release_ms, sample_rate)


def gain_reduction_db(audio: torch.Tensor, sample_rate: int, *, threshold_db, ratio, attack_ms, release_ms,
                      knee_db) -> torch.Tensor:
    """Smoothed gain reduction in dB (>= 0), float64 ``[batch, samples]``, of the linked compressor."""
    batch = audio.shape[0]
    thr, rat, att, rel, knee = (as_param(v, batch, audio.device) for v in (threshold_db, ratio, attack_ms,
                                                                           release_ms, knee_db))
    level = torch.amax(torch.abs(audio), dim=1).to(torch.float64)
    level_db = 20.0 * torch.log10(torch.clamp(level, min=LEVEL_FLOOR))
    gr = static_reduction_db(level_db, thr, rat, knee)
    return one_pole(peak_release(gr, rel, sample_rate), att, sample_rate)


def compress(audio: torch.Tensor, sample_rate: int, *, threshold_db, ratio, attack_ms, release_ms, knee_db,
             makeup_db) -> torch.Tensor:
    """The schema's compressor (:func:`mixbridge.plugins.dynamics.compress`) of ``[batch, channels, samples]``.

    Parameters: scalars or ``[batch]`` tensors (dB, ratio, ms). Stereo-linked per batch item.
    With ``ratio == 1``, ``makeup_db == 0`` everywhere and no gradient needed, returns the input.
    """
    check_audio(audio)
    sample_rate = check_rate(sample_rate)
    batch = audio.shape[0]
    rat, makeup = as_param(ratio, batch, audio.device), as_param(makeup_db, batch, audio.device)
    tensors = (threshold_db, ratio, attack_ms, release_ms, knee_db, makeup_db)
    needs_grad = torch.is_grad_enabled() and any(isinstance(t, torch.Tensor) and t.requires_grad for t in tensors)
    if not needs_grad and not audio.requires_grad and bool(torch.all(rat == 1.0)) and bool(torch.all(makeup == 0.0)):
        return audio
    gr = gain_reduction_db(audio, sample_rate, threshold_db=threshold_db, ratio=rat, attack_ms=attack_ms,
                           release_ms=release_ms, knee_db=knee_db)
    gain = torch.exp((makeup[:, None] - gr) * LN10_OVER_20)
    return audio * gain[:, None, :].to(audio.dtype)


# --------------------------------------------------------------------------- limiter
@lru_cache(maxsize=4)
def _interp_kernels() -> np.ndarray:
    """``[3, 1, 20]`` conv1d weights of the fractional phases 1/4, 2/4, 3/4 (input left-padded by 9)."""
    h = _mk.interpolation_filter()
    half = _mk.INTERP_HALF_LENGTH
    up = _mk.TRUE_PEAK_OVERSAMPLING
    taps = 2 * (half // up)
    w = np.zeros((3, 1, taps))
    for f in (1, 2, 3):
        for t in range(taps):
            k = up * (taps // 2 - 1 - t) + f + half
            w[f - 1, 0, t] = h[k] if 0 <= k < h.size else 0.0
    return w


def true_peak_estimate(audio: torch.Tensor) -> torch.Tensor:
    """Per-sample linked true-peak estimate ``[batch, samples]`` of the master bus's limiter.

    ``raw[m] = max_c max(|x[m]|, |x(m + f/4)|, f = 1..3)`` with the 4x interpolator of
    :func:`mixbridge.plugins.master_kernels.interpolation_filter`; ``peak[m] = max(raw[m], raw[m-1])``.
    """
    batch, ch, n = audio.shape
    w = torch.from_numpy(_interp_kernels()).to(audio.dtype)
    taps = w.shape[-1]
    x = F.pad(audio.reshape(batch * ch, 1, n), (taps // 2 - 1, taps // 2))
    phases = torch.abs(F.conv1d(x, w)).reshape(batch, ch, 3, n)
    raw = torch.maximum(torch.amax(phases, dim=2), torch.abs(audio)).amax(dim=1)
    return torch.maximum(raw, F.pad(raw, (1, 0))[:, :-1])


def limiter(audio: torch.Tensor, sample_rate: int, *, ceiling_dbtp, release_ms,
            lookahead_ms: float = _mb.DEFAULT_LOOKAHEAD_MS) -> torch.Tensor:
    """True-peak look-ahead limiter of ``[batch, channels, samples]``, output aligned with the input.

    The offline (``render_master(compensate_latency=True)``) form of the master bus's limiter:
    attenuation ``a[m] = max(0, 20 log10 peak[m] - ceiling_dbtp + LIMITER_MARGIN_DB)``, held
    over ``L = round(lookahead_ms sample_rate / 1000)`` samples, released (max-plus, ``release_ms``),
    averaged over the next ``L`` samples, applied; then a sample-peak guard at the ceiling.
    """
    check_audio(audio)
    sample_rate = check_rate(sample_rate)
    batch, _, n = audio.shape
    ceiling = as_param(ceiling_dbtp, batch, audio.device)
    rel = as_param(release_ms, batch, audio.device)
    L = max(1, int(round(lookahead_ms * 1e-3 * sample_rate)))
    peak = true_peak_estimate(F.pad(audio, (0, L - 1))).to(torch.float64)
    limit = (ceiling - _mb.LIMITER_MARGIN_DB)[:, None]
    att = torch.clamp(20.0 * torch.log10(torch.clamp(peak, min=LEVEL_FLOOR)) - limit, min=0.0)
    if L > 1:
        att = F.max_pool1d(F.pad(att, (L - 1, 0))[:, None], L, stride=1)[:, 0]
    att = peak_release(att, rel, sample_rate)
    if L > 1:
        att = F.avg_pool1d(att[:, None], L, stride=1)[:, 0]
    y = audio * torch.exp(-att * LN10_OVER_20)[:, None, :].to(audio.dtype)
    lim = db_to_gain(ceiling).to(audio.dtype)[:, None, None]
    return torch.minimum(torch.maximum(y, -lim), lim)


def master_chain(audio: torch.Tensor, sample_rate: int, eq_params: dict, comp_params: dict, gain_db,
                 limiter_params: dict, lookahead_ms: float = _mb.DEFAULT_LOOKAHEAD_MS) -> torch.Tensor:
    """The one master bus (``MASTER_RENDER``): EQ -> linked compressor -> gain -> true-peak limiter."""
    x = eq(audio, sample_rate, **eq_params)
    x = compress(x, sample_rate, **comp_params)
    x = trim(x, gain_db)
    return limiter(x, sample_rate, **limiter_params, lookahead_ms=lookahead_ms)
