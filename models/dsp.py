"""Differentiable console stages in torch: pure functions of batched audio (the schema's meaning).

Every function takes audio ``[batch, channels, samples]`` float32, ``sample_rate``
in Hz as an argument, and parameters as tensors ``[batch]`` (one value per batch
item: a track or a song) in the schema's real units (dB, Hz, ms, s). They mirror
the numpy references of :mod:`mixbridge.plugins` and are differentiable in the audio
and in every parameter. :class:`mixbridge.models.console.TorchConsole` wires them
into the console's signal flow. One module per kind of stage:

* this module -- the shared helpers (audio and rate checks, parameters as ``[batch]``
  tensors, biquad responses on the FFT grid, FFT filtering), the linear gain stages and
  BS.1770-4 loudness (:func:`integrated_lufs`);
* :mod:`mixbridge.models.dsp_eq` -- the five-band RBJ EQ;
* :mod:`mixbridge.models.dsp_dynamics` -- the compressor, the true-peak limiter and the master chain;
* :mod:`mixbridge.models.dsp_reverb` -- the send reverb.


* :func:`trim`, :func:`polarity`, :func:`fader`, :func:`pan`, :func:`send` -- exact
  gains (computed in float64, applied in float32 like :mod:`mixbridge.plugins.console`).
  ``polarity.invert`` and ``fader.mute`` are continuous relaxations, gain ``1 - 2 invert``
  and ``1 - mute``, equal to the console at 0 and 1 and differentiable between.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from mixbridge.errors import AudioInputError, ParamRangeError

#: An IIR's impulse response is treated as ended once its slowest pole has decayed by this factor.
IIR_TAIL = 1e-10
#: Send levels at or below this are off (the schema's -80 dB floor, as the numpy console).
SEND_OFF_DB = -80.0
#: ``ln(10) / 20``: ``10^(x/20) = exp(x * LN10_OVER_20)``.
LN10_OVER_20 = math.log(10.0) / 20.0


def check_audio(audio: torch.Tensor, name: str = "audio") -> torch.Tensor:
    """Raise :class:`AudioInputError` unless ``audio`` is a floating ``[batch, channels, samples]`` tensor."""
    if not isinstance(audio, torch.Tensor) or audio.ndim != 3 or not audio.is_floating_point():
        shape = tuple(audio.shape) if isinstance(audio, torch.Tensor) else type(audio).__name__
        raise AudioInputError(f"{name} must be a float tensor [batch, channels, samples], got {shape}")
    return audio


def check_rate(sample_rate) -> int:
    """``sample_rate`` as int; :class:`ParamRangeError` unless it is a whole number in [8000, 384000] Hz."""
    if isinstance(sample_rate, bool) or not float(sample_rate).is_integer() or not 8000 <= sample_rate <= 384000:
        raise ParamRangeError(f"sample_rate = {sample_rate!r} must be a whole number of Hz in [8000, 384000]")
    return int(sample_rate)


def as_param(value, batch: int, device=None, dtype=torch.float64) -> torch.Tensor:
    """A parameter as a ``[batch]`` tensor (a scalar broadcasts); float64 unless ``dtype``.

    Raises:
        ParamRangeError: a tensor whose shape is neither ``[]``, ``[1]`` nor ``[batch]``.
    """
    t = value if isinstance(value, torch.Tensor) else torch.tensor(float(value), dtype=dtype, device=device)
    t = t.to(dtype=dtype, device=device)
    if t.ndim == 0 or t.shape == (1,):
        return t.reshape(1).expand(batch)
    if t.shape != (batch,):
        raise ParamRangeError(f"a parameter must be a scalar or a [{batch}] tensor, got shape {tuple(t.shape)}")
    return t


def db_to_gain(gain_db: torch.Tensor) -> torch.Tensor:
    """``10^(gain_db/20)`` of a tensor, elementwise (as ``exp(gain_db ln10 / 20)``)."""
    return torch.exp(gain_db * LN10_OVER_20)


def fft_size(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= ``n`` (pocketfft's fast lengths)."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


@lru_cache(maxsize=4)
def unit_circle(n_fft: int, device: str):
    """``(cos w, sin w, cos 2w, sin 2w)`` float64 on the rfft grid of ``n_fft``."""
    w = torch.arange(n_fft // 2 + 1, dtype=torch.float64, device=device) * (2.0 * math.pi / n_fft)
    return torch.cos(w), torch.sin(w), torch.cos(2 * w), torch.sin(2 * w)


def biquad_response(b: torch.Tensor, a: torch.Tensor, n_fft: int) -> torch.Tensor:
    """``H(e^jw)`` of biquads ``b, a`` ``[batch, 3]`` (a0 = 1) on the rfft grid: complex128 ``[batch, n_fft//2+1]``."""
    c1, s1, c2, s2 = unit_circle(n_fft, str(b.device))
    num = torch.complex(b[:, :1] + b[:, 1:2] * c1 + b[:, 2:3] * c2, -(b[:, 1:2] * s1 + b[:, 2:3] * s2))
    den = torch.complex(1.0 + a[:, 1:2] * c1 + a[:, 2:3] * c2, -(a[:, 1:2] * s1 + a[:, 2:3] * s2))
    return num / den


def decay_samples(a: np.ndarray) -> int:
    """Samples until the slowest pole of denominators ``a`` ``[k, 3]`` decays by :data:`IIR_TAIL`."""
    r = 0.0
    for a1, a2 in np.asarray(a, dtype=np.float64)[:, 1:]:
        disc = a1 * a1 - 4.0 * a2
        if disc < 0:
            r = max(r, math.sqrt(max(a2, 0.0)))
        else:
            r = max(r, max(abs(-a1 + math.sqrt(disc)), abs(-a1 - math.sqrt(disc))) / 2)
    if r <= 0.0:
        return 2
    if r >= 1.0:
        raise ParamRangeError(f"an EQ band has a pole on or outside the unit circle (|p| = {r:.6g}); it is unstable")
    return int(math.ceil(math.log(IIR_TAIL) / math.log(r))) + 2


def fft_filter(audio: torch.Tensor, response_fn, pad: int) -> torch.Tensor:
    """Filter ``audio [batch, channels, samples]`` by ``response_fn(n_fft) -> [batch, n_fft//2+1]``
    (zero padded by ``pad`` samples)."""
    n = audio.shape[-1]
    n_fft = fft_size(n + pad)
    spec = torch.fft.rfft(audio, n=n_fft)
    h = response_fn(n_fft).to(spec.dtype)
    return torch.fft.irfft(spec * h[:, None, :], n=n_fft)[..., :n]


def trim(audio: torch.Tensor, gain_db) -> torch.Tensor:
    """Input trim: ``audio * 10^(gain_db/20)`` (gain in float64, applied in the audio's dtype)."""
    g = db_to_gain(as_param(gain_db, audio.shape[0], audio.device))
    return audio * g[:, None, None].to(audio.dtype)


def polarity(audio: torch.Tensor, invert) -> torch.Tensor:
    """Polarity: ``audio * (1 - 2 invert)`` (the console's flip at 0/1; continuous between)."""
    s = 1.0 - 2.0 * as_param(invert, audio.shape[0], audio.device)
    return audio * s[:, None, None].to(audio.dtype)


def fader_gain(fader_db, mute, batch: int, device=None) -> torch.Tensor:
    """Fader times mute, ``10^(fader_db/20) (1 - mute)``, float64 ``[batch]``."""
    return db_to_gain(as_param(fader_db, batch, device)) * (1.0 - as_param(mute, batch, device))


def pan_gains(pan, mono: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(left, right)`` gains ``[batch]`` float64 of :func:`mixbridge.plugins.console.pan_gains`.

    ``mono`` ``[batch]`` bool: constant power ``(cos th, sin th)`` for mono tracks,
    ``sqrt(2)`` times that for stereo ones; ``th = (pan + 1) pi / 4``.
    """
    theta = (as_param(pan, mono.shape[0], mono.device) + 1.0) * (math.pi / 4.0)
    scale = torch.where(mono, torch.ones_like(theta), torch.full_like(theta, math.sqrt(2.0)))
    return scale * torch.cos(theta), scale * torch.sin(theta)


def fader_pan(audio: torch.Tensor, fader_db, mute, pan, mono: torch.Tensor | None = None) -> torch.Tensor:
    """Fader, mute and pan: ``[batch, 1|2, samples]`` -> ``[batch, 2, samples]``.

    ``mono`` ``[batch]`` bool marks tracks rendered with the mono law from channel 0
    (default: ``channels == 1``).
    """
    batch, ch = audio.shape[0], audio.shape[1]
    if mono is None:
        mono = torch.full((batch,), ch == 1, dtype=torch.bool, device=audio.device)
    g = fader_gain(fader_db, mute, batch, audio.device)
    left, right = pan_gains(pan, mono)
    src_l = audio[:, 0]
    src_r = audio[:, 0] if ch == 1 else torch.where(mono[:, None], audio[:, 0], audio[:, 1])
    gl, gr = (g * left).to(audio.dtype), (g * right).to(audio.dtype)
    return torch.stack([src_l * gl[:, None], src_r * gr[:, None]], dim=1)


def send_gain(send_db, batch: int, device=None) -> torch.Tensor:
    """Send gain ``[batch]`` float64: ``10^(send_db/20)``, 0 at or below :data:`SEND_OFF_DB`."""
    s = as_param(send_db, batch, device)
    return torch.where(s <= SEND_OFF_DB, torch.zeros_like(s), db_to_gain(s))


# --------------------------------------------------------------------------- loudness
#: BS.1770-4 gating block (s), its step (75 % overlap), the absolute gate (LUFS) and the relative gate (LU).
LOUDNESS_BLOCK_S, LOUDNESS_STEP_S, ABSOLUTE_GATE_LUFS, RELATIVE_GATE_LU = 0.4, 0.1, -70.0, -10.0


@lru_cache(maxsize=8)
def _k_weighting(sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """K-weighting ``(b, a)`` ``[2, 3]``: pyloudnorm's high shelf and high pass for ``sample_rate``."""
    import pyloudnorm as pyln

    f = pyln.Meter(int(sample_rate))._filters
    stages = [f["high_shelf"], f["high_pass"]]
    return (np.stack([np.asarray(s.b, float) * s.passband_gain for s in stages]),
            np.stack([np.asarray(s.a, float) for s in stages]))


def integrated_lufs(audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """BS.1770-4 integrated loudness ``[batch]`` (LUFS, float64) of ``[batch, channels, samples]``, differentiable.

    The algorithm of ``pyloudnorm.Meter.integrated_loudness`` (K-weighting from a zero state,
    400 ms blocks every 100 ms, channel gains 1, absolute gate -70 LUFS, relative gate -10 LU);
    the gates select blocks (no gradient through the selection), the loudness of the selected
    blocks is differentiable. Signals shorter than one block, or gated out, give -70 LUFS.
    """
    check_audio(audio)
    sample_rate = check_rate(sample_rate)
    batch, _, n = audio.shape
    block = int(LOUDNESS_BLOCK_S * sample_rate)
    if n < block + 1:
        return torch.full((batch,), ABSOLUTE_GATE_LUFS, dtype=torch.float64, device=audio.device)
    b_np, a_np = _k_weighting(sample_rate)
    b = torch.from_numpy(b_np).to(audio.device)
    a = torch.from_numpy(a_np).to(audio.device)

    def response(n_fft):
        return (biquad_response(b[:1], a[:1], n_fft) * biquad_response(b[1:], a[1:], n_fft)).expand(batch, -1)

    y = fft_filter(audio.to(torch.float64), response, decay_samples(a_np))
    count = int(round((n / sample_rate - LOUDNESS_BLOCK_S) / LOUDNESS_STEP_S)) + 1
    starts = [min(n, int(LOUDNESS_BLOCK_S * (j * 0.25) * sample_rate)) for j in range(count)]
    stops = [min(n, int(LOUDNESS_BLOCK_S * (j * 0.25 + 1) * sample_rate)) for j in range(count)]
    csum = F.pad(torch.cumsum(y * y, dim=-1), (1, 0))
    z = (csum[..., stops] - csum[..., starts]) / (LOUDNESS_BLOCK_S * sample_rate)   # [batch, ch, blocks]
    power = z.sum(dim=1)
    lj = -0.691 + 10.0 * torch.log10(torch.clamp(power.detach(), min=1e-300))
    gate = lj >= ABSOLUTE_GATE_LUFS
    mean_abs = (power.detach() * gate).sum(-1) / gate.sum(-1).clamp(min=1)
    rel = -0.691 + 10.0 * torch.log10(torch.clamp(mean_abs, min=1e-300)) + RELATIVE_GATE_LU
    gate = (lj > rel[:, None]) & (lj > ABSOLUTE_GATE_LUFS)
    mean = (power * gate).sum(-1) / gate.sum(-1).clamp(min=1)
    lufs = -0.691 + 10.0 * torch.log10(torch.clamp(mean, min=1e-300))
    return torch.where(gate.any(-1) & (lufs > ABSOLUTE_GATE_LUFS), lufs, torch.full_like(lufs, ABSOLUTE_GATE_LUFS))
