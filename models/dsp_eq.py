"""The schema's EQ in torch: five RBJ biquads applied on the FFT grid (see :mod:`mixbridge.models.dsp`).

* :func:`eq` -- the schema's five RBJ biquads (:mod:`mixbridge.plugins.rbj`: low
  shelf of slope ``SHELF_SLOPE`` through ``shelf_q``, three peaking bands, high
  shelf), coefficients computed in torch exactly as the cookbook; the cascade's
  response ``H(e^jw)`` is evaluated in float64 on the FFT grid and applied in the
  frequency domain. The FFT is zero padded by the length over which the slowest
  pole decays below ``IIR_TAIL`` (1e-10), so the time-aliased tail is below float32
  round-off and the output equals ``scipy.signal.sosfilt`` from a zero state; the
  magnitude at the grid is the RBJ magnitude to float64 round-off.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from mixbridge.errors import ParamRangeError
from mixbridge.schema import SHELF_SLOPE

from .dsp import as_param, biquad_response, check_audio, check_rate, decay_samples, fft_filter


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


def cascade_response(sections: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], n_fft: int) -> torch.Tensor:
    """The product of the sections' ``H(e^jw)``, complex128 ``[batch, n_fft//2+1]``, in section order.

    ``sections`` are ``(b, a, gain_db)`` as :func:`eq_sections` returns them (``gain_db`` unused).

    Raises:
        ParamRangeError: ``sections`` is empty.
    """
    if not sections:
        raise ParamRangeError("an EQ cascade needs at least one section")
    b, a, _ = sections[0]
    h = biquad_response(b, a, n_fft)
    for b, a, _ in sections[1:]:
        h = h * biquad_response(b, a, n_fft)
    return h


def eq_response(sample_rate: int, n_fft: int, **params) -> torch.Tensor:
    """The cascade's ``H(e^jw)`` complex128 ``[batch, n_fft//2+1]`` on the rfft grid of ``n_fft``."""
    sample_rate = check_rate(sample_rate)
    batch = max(int(torch.as_tensor(v).numel()) for v in params.values())
    p = {k: as_param(params[k], batch) for k in EQ_NAMES}
    return cascade_response(eq_sections(sample_rate, p), n_fft)


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

    def response(n_fft: int) -> torch.Tensor:
        h = cascade_response(active, n_fft)
        return h.to(torch.complex64) if audio.dtype == torch.float32 else h

    return fft_filter(audio, response, pad)
