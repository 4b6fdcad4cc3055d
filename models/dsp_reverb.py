"""The schema's send reverb in torch: the numpy reverb's noise response, applied by FFT convolution.

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
"""
from __future__ import annotations

import math

import numpy as np
import torch

from mixbridge.plugins.reverb import IR_SPAN, REVERB_SEED, reverb_noise

from .dsp import as_param, check_audio, check_rate, db_to_gain, fft_size

_DECAY_LN = 3.0 * math.log(10.0)


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
