"""Differentiable console stages in torch: pure functions of batched audio (the schema's meaning).

Every function takes audio ``[batch, channels, samples]`` float32, ``sample_rate``
in Hz as an argument, and parameters as tensors ``[batch]`` (one value per batch
item: a track or a song) in the schema's real units (dB, Hz, ms, s). They mirror
the numpy references of :mod:`mixbridge.plugins` and are differentiable in the audio
and in every parameter. :class:`mixbridge.models.console.TorchConsole` wires them
into the console's signal flow.

* :func:`eq` -- the schema's five RBJ biquads (:mod:`mixbridge.plugins.rbj`: low
  shelf of slope ``SHELF_SLOPE`` through ``shelf_q``, three peaking bands, high
  shelf), coefficients computed in torch exactly as the cookbook; the cascade's
  response ``H(e^jw)`` is evaluated in float64 on the FFT grid and applied in the
  frequency domain. The FFT is zero padded by the length over which the slowest
  pole decays below ``IIR_TAIL`` (1e-10), so the time-aliased tail is below float32
  round-off and the output equals ``scipy.signal.sosfilt`` from a zero state; the
  magnitude at the grid is the RBJ magnitude to float64 round-off.
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
* :func:`reverb` -- :func:`mixbridge.plugins.reverb.reverb`: the same noise
  (:func:`~mixbridge.plugins.reverb.reverb_noise`) times ``exp(-3 ln10 t/decay_s)``,
  cut at ``ir_length`` samples, unit energy, FFT convolution of the send summed to mono
  (``sum_c x_c / sqrt(channels)``) with each of the two output channels' responses. Pre-delay is a phase
  ramp ``e^{-jw d}`` with ``d = predelay_ms/1000 * sample_rate`` samples, *not*
  rounded: at integer ``d`` it is the numpy reverb to float32 round-off; at
  fractional ``d`` it is the band-limited delay by the exact value (the numpy
  reverb rounds to the nearest sample, a waveform difference of up to half a
  sample that leaves the energy and RT60 unchanged), and ``predelay_ms`` gets a
  gradient (rounding would give it none).
* :func:`limiter` -- the true-peak look-ahead limiter of
  :mod:`mixbridge.plugins.master_bus` (offline, latency compensated): the same 81-tap
  4x interpolator as a ``conv1d``, attenuation held over the look-ahead by
  ``max_pool1d``, the max-plus release by ``cummax``, the box average by ``avg_pool1d``,
  the final sample-peak guard by ``clamp``.
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
from mixbridge.schema import SHELF_SLOPE

from mixbridge.plugins import master_bus as _mb
from mixbridge.plugins.dynamics import LEVEL_FLOOR, TINY
from mixbridge.plugins.reverb import IR_SPAN, REVERB_SEED, reverb_noise

#: An IIR's impulse response is treated as ended once its slowest pole has decayed by this factor.
IIR_TAIL = 1e-10
#: Below this (in dB of gain reduction) the held reduction is set to 0: keeps the FFTs out of denormals.
REDUCTION_FLOOR_DB = 1e-20
#: Send levels at or below this are off (the schema's -80 dB floor, as the numpy console).
SEND_OFF_DB = -80.0
_DECAY_LN = 3.0 * math.log(10.0)
_LN10_20 = math.log(10.0) / 20.0


# --------------------------------------------------------------------------- helpers
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
    return torch.exp(gain_db * _LN10_20)


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
def _unit_circle(n_fft: int, device: str):
    """``(cos w, sin w, cos 2w, sin 2w)`` float64 on the rfft grid of ``n_fft``."""
    w = torch.arange(n_fft // 2 + 1, dtype=torch.float64, device=device) * (2.0 * math.pi / n_fft)
    return torch.cos(w), torch.sin(w), torch.cos(2 * w), torch.sin(2 * w)


def biquad_response(b: torch.Tensor, a: torch.Tensor, n_fft: int) -> torch.Tensor:
    """``H(e^jw)`` of biquads ``b, a`` ``[batch, 3]`` (a0 = 1) on the rfft grid: complex128 ``[batch, n_fft//2+1]``."""
    c1, s1, c2, s2 = _unit_circle(n_fft, str(b.device))
    num = torch.complex(b[:, :1] + b[:, 1:2] * c1 + b[:, 2:3] * c2, -(b[:, 1:2] * s1 + b[:, 2:3] * s2))
    den = torch.complex(1.0 + a[:, 1:2] * c1 + a[:, 2:3] * c2, -(a[:, 1:2] * s1 + a[:, 2:3] * s2))
    return num / den


def decay_samples(a: np.ndarray) -> int:
    """Samples until the slowest pole of denominators ``a`` ``[k, 3]`` decays by :data:`IIR_TAIL`."""
    r = 0.0
    for a1, a2 in np.asarray(a, dtype=np.float64)[:, 1:]:
        disc = a1 * a1 - 4.0 * a2
        r = max(r, math.sqrt(max(a2, 0.0)) if disc < 0 else max(abs(-a1 + math.sqrt(disc)), abs(-a1 - math.sqrt(disc))) / 2)
    if r <= 0.0:
        return 2
    if r >= 1.0:
        raise ParamRangeError(f"an EQ band has a pole on or outside the unit circle (|p| = {r:.6g}); it is unstable")
    return int(math.ceil(math.log(IIR_TAIL) / math.log(r))) + 2


def fft_filter(audio: torch.Tensor, response_fn, pad: int) -> torch.Tensor:
    """Filter ``audio`` ``[batch, channels, samples]`` by ``response_fn(n_fft) -> [batch, n_fft//2+1]`` (zero padded)."""
    n = audio.shape[-1]
    n_fft = fft_size(n + pad)
    spec = torch.fft.rfft(audio, n=n_fft)
    h = response_fn(n_fft).to(spec.dtype)
    return torch.fft.irfft(spec * h[:, None, :], n=n_fft)[..., :n]


# --------------------------------------------------------------------------- EQ
def peaking_coefs(freq_hz, gain_db, q, sample_rate: int):
    """RBJ peaking biquads (``plugins.rbj.peaking``) in torch: ``(b, a)`` ``[batch, 3]``, a0 = 1."""
    a_ = torch.exp(gain_db * (math.log(10.0) / 40.0))
    w0 = (2.0 * math.pi / sample_rate) * freq_hz
    alpha = torch.sin(w0) / (2.0 * q)
    cw = torch.cos(w0)
    a0 = 1 + alpha / a_
    b = torch.stack([1 + alpha * a_, -2 * cw, 1 - alpha * a_], -1) / a0[:, None]
    a = torch.stack([a0, -2 * cw, 1 - alpha / a_], -1) / a0[:, None]
    return b, a


def shelf_coefs(kind: str, freq_hz, gain_db, sample_rate: int):
    """RBJ shelf biquads (``plugins.rbj.shelf``, slope ``SHELF_SLOPE`` via ``shelf_q``) in torch."""
    a_ = torch.exp(gain_db * (math.log(10.0) / 40.0))
    q = 1.0 / torch.sqrt((a_ + 1.0 / a_) * (1.0 / SHELF_SLOPE - 1.0) + 2.0)
    w0 = (2.0 * math.pi / sample_rate) * freq_hz
    cw, sw = torch.cos(w0), torch.sin(w0)
    beta = 2.0 * torch.sqrt(a_) * sw / (2.0 * q)
    ap, am = a_ + 1, a_ - 1
    if kind == "low":
        b = [a_ * (ap - am * cw + beta), 2 * a_ * (am - ap * cw), a_ * (ap - am * cw - beta)]
        a = [ap + am * cw + beta, -2 * (am + ap * cw), ap + am * cw - beta]
    elif kind == "high":
        b = [a_ * (ap + am * cw + beta), -2 * a_ * (am + ap * cw), a_ * (ap + am * cw - beta)]
        a = [ap - am * cw + beta, 2 * (am - ap * cw), ap - am * cw - beta]
    else:
        raise ParamRangeError(f"shelf kind must be 'low' or 'high', got {kind!r}")
    a0 = a[0]
    return torch.stack(b, -1) / a0[:, None], torch.stack(a, -1) / a0[:, None]


EQ_NAMES = ("low_shelf_gain_db", "low_shelf_freq_hz", "peak1_gain_db", "peak1_freq_hz", "peak1_q",
            "peak2_gain_db", "peak2_freq_hz", "peak2_q", "peak3_gain_db", "peak3_freq_hz", "peak3_q",
            "high_shelf_gain_db", "high_shelf_freq_hz")


def eq_sections(sample_rate: int, p: dict) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The five ``(b, a, gain_db)`` sections for parameters ``p`` (``EQ`` names -> ``[batch]`` float64)."""
    return [
        (*shelf_coefs("low", p["low_shelf_freq_hz"], p["low_shelf_gain_db"], sample_rate), p["low_shelf_gain_db"]),
        (*peaking_coefs(p["peak1_freq_hz"], p["peak1_gain_db"], p["peak1_q"], sample_rate), p["peak1_gain_db"]),
        (*peaking_coefs(p["peak2_freq_hz"], p["peak2_gain_db"], p["peak2_q"], sample_rate), p["peak2_gain_db"]),
        (*peaking_coefs(p["peak3_freq_hz"], p["peak3_gain_db"], p["peak3_q"], sample_rate), p["peak3_gain_db"]),
        (*shelf_coefs("high", p["high_shelf_freq_hz"], p["high_shelf_gain_db"], sample_rate), p["high_shelf_gain_db"]),
    ]


def eq_response(sample_rate: int, n_fft: int, **params) -> torch.Tensor:
    """The cascade's ``H(e^jw)`` complex128 ``[batch, n_fft//2+1]`` on the rfft grid of ``n_fft``."""
    sample_rate = check_rate(sample_rate)
    batch = max(int(torch.as_tensor(v).numel()) for v in params.values())
    p = {k: as_param(params[k], batch) for k in EQ_NAMES}
    h = None
    for b, a, _ in eq_sections(sample_rate, p):
        hb = biquad_response(b, a, n_fft)
        h = hb if h is None else h * hb
    return h


def eq(audio: torch.Tensor, sample_rate: int, **params) -> torch.Tensor:
    """The schema's five-band RBJ EQ of ``audio`` ``[batch, channels, samples]`` (see the module docstring).

    Args:
        params: the 13 ``EQ`` parameters (``low_shelf_gain_db`` ... ``high_shelf_freq_hz``),
            each a scalar or ``[batch]`` tensor in dB, Hz or Q.

    Returns:
        ``[batch, channels, samples]`` in ``audio``'s dtype. Bands whose gain is exactly
        0 dB are identities and are skipped; with every band at 0 dB and no gradient
        needed the input is returned as is.
    """
    check_audio(audio)
    sample_rate = check_rate(sample_rate)
    batch = audio.shape[0]
    p = {k: as_param(params[k], batch, audio.device) for k in EQ_NAMES}
    sections = eq_sections(sample_rate, p)
    needs_grad = torch.is_grad_enabled() and any(v.requires_grad for v in p.values())
    active = [s for s in sections if needs_grad or bool(torch.any(s[2] != 0))]
    if not active:
        return audio
    pad = max(decay_samples(torch.cat([s[1] for s in active]).detach().cpu().numpy()), 2)

    def response(n_fft):
        h = None
        for b, a, _ in active:
            hb = biquad_response(b, a, n_fft)
            h = hb if h is None else h * hb
        return h.to(torch.complex64) if audio.dtype == torch.float32 else h

    return fft_filter(audio, response, pad)


# --------------------------------------------------------------------------- dynamics
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
        c1, s1, _, _ = _unit_circle(n_fft, str(values.device))
        den = torch.complex(1.0 - a[:, None] * c1, a[:, None] * s1)
        return (1.0 - a)[:, None].to(den.dtype) / den

    return fft_filter(values[:, None, :], response, pad)[:, 0, :]


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
    gain = torch.exp((makeup[:, None] - gr) * _LN10_20)
    return audio * gain[:, None, :].to(audio.dtype)


# --------------------------------------------------------------------------- linear stages
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


# --------------------------------------------------------------------------- reverb
_NOISE: dict[tuple[int, int], np.ndarray] = {}


def _noise(channel: int, samples: int, seed: int = REVERB_SEED) -> np.ndarray:
    """``reverb_noise(channel, samples, seed)``, cached (a prefix of a longer draw is the same draw)."""
    have = _NOISE.get((seed, channel))
    if have is None or have.size < samples:
        have = _NOISE[(seed, channel)] = reverb_noise(channel, max(samples, 1 << 16), seed)
    return have[:samples]


def reverb_ir(sample_rate: int, decay_s: torch.Tensor, channels: int = 2, seed: int = REVERB_SEED) -> torch.Tensor:
    """Unit-energy responses ``[batch, channels, samples]`` float64 (no pre-delay), as ``plugins.reverb.reverb_ir``.

    Each item's response is ``ceil(IR_SPAN decay_s sample_rate)`` samples long (zeros after).
    """
    lengths = [max(1, int(math.ceil(IR_SPAN * float(d) * sample_rate))) for d in decay_s.detach().cpu().tolist()]
    n = max(lengths)
    noise = torch.from_numpy(np.stack([_noise(c, n, seed) for c in range(channels)])).to(decay_s.device)
    k = torch.arange(n, dtype=torch.float64, device=decay_s.device)
    env = torch.exp(-_DECAY_LN * k[None, :] / (decay_s[:, None] * sample_rate))
    mask = k[None, :] < torch.tensor(lengths, device=decay_s.device, dtype=torch.float64)[:, None]
    h = noise[None, :, :] * (env * mask)[:, None, :]
    return h / torch.sqrt(torch.sum(h * h, dim=-1, keepdim=True))


def reverb(audio: torch.Tensor, sample_rate: int, *, decay_s, predelay_ms, return_db,
           seed: int = REVERB_SEED) -> torch.Tensor:
    """Wet-only stereo return of send buses ``[batch, channels, samples]`` (see the module docstring on pre-delay).

    The send is summed to mono (``/ sqrt(channels)``) and convolved with each output channel's
    response. Returns ``[batch, 2, samples]`` in ``audio``'s dtype (the tail past the input is cut).
    """
    check_audio(audio)
    sample_rate = check_rate(sample_rate)
    batch, ch, n = audio.shape
    decay = as_param(decay_s, batch, audio.device)
    delay = as_param(predelay_ms, batch, audio.device) * (1e-3 * sample_rate)
    ret = db_to_gain(as_param(return_db, batch, audio.device))
    ir = reverb_ir(sample_rate, decay, 2, seed)
    n_fft = fft_size(n + ir.shape[-1] + int(math.ceil(float(delay.detach().max()))) + 1)
    cdtype = torch.complex64 if audio.dtype == torch.float32 else torch.complex128
    mono = audio.sum(dim=1, keepdim=True) * (1.0 / math.sqrt(ch))
    spec = torch.fft.rfft(mono, n=n_fft)
    w = torch.arange(n_fft // 2 + 1, dtype=torch.float64, device=audio.device) * (2.0 * math.pi / n_fft)
    phase = -w[None, :] * delay[:, None]
    shift = torch.polar(ret[:, None].expand_as(phase), phase)
    h = torch.fft.rfft(ir, n=n_fft) * shift[:, None, :]
    return torch.fft.irfft(spec * h.to(cdtype), n=n_fft)[..., :n]


# --------------------------------------------------------------------------- limiter
@lru_cache(maxsize=4)
def _interp_kernels() -> np.ndarray:
    """``[3, 1, 20]`` conv1d weights of the fractional phases 1/4, 2/4, 3/4 (input left-padded by 9)."""
    h = _mb.interpolation_filter()
    half = _mb.INTERP_HALF_LENGTH
    up = _mb.TRUE_PEAK_OVERSAMPLING
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
    :func:`mixbridge.plugins.master_bus.interpolation_filter`; ``peak[m] = max(raw[m], raw[m-1])``.
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
    y = audio * torch.exp(-att * _LN10_20)[:, None, :].to(audio.dtype)
    lim = db_to_gain(ceiling).to(audio.dtype)[:, None, None]
    return torch.minimum(torch.maximum(y, -lim), lim)


def master_chain(audio: torch.Tensor, sample_rate: int, eq_params: dict, comp_params: dict, gain_db,
                 limiter_params: dict, lookahead_ms: float = _mb.DEFAULT_LOOKAHEAD_MS) -> torch.Tensor:
    """The one master bus (``MASTER_RENDER``): EQ -> linked compressor -> gain -> true-peak limiter."""
    x = eq(audio, sample_rate, **eq_params)
    x = compress(x, sample_rate, **comp_params)
    x = trim(x, gain_db)
    return limiter(x, sample_rate, **limiter_params, lookahead_ms=lookahead_ms)


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
