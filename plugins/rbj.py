"""RBJ Audio EQ Cookbook biquads (Robert Bristow-Johnson), for designs and oracles.

Used to draw EQ curves in reports and as the reference that tests compare the
backends' measured responses against. Coefficients are normalised (a0 = 1),
``b = [b0, b1, b2]``, ``a = [1, a1, a2]``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from mixbridge.schema import shelf_q


def peaking(freq_hz: float, gain_db: float, q: float, sample_rate: int):
    """Peaking EQ: A = 10^(dB/40), alpha = sin(w0)/(2Q) (cookbook 'peakingEQ')."""
    a_ = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * freq_hz / sample_rate
    alpha = math.sin(w0) / (2.0 * q)
    cw = math.cos(w0)
    b = np.array([1 + alpha * a_, -2 * cw, 1 - alpha * a_])
    a = np.array([1 + alpha / a_, -2 * cw, 1 - alpha / a_])
    return b / a[0], a / a[0]


def shelf(kind: str, freq_hz: float, gain_db: float, sample_rate: int, q: float | None = None):
    """Low or high shelf (cookbook 'lowShelf'/'highShelf', Q form): 2 sqrt(A) alpha = sin(w0) sqrt(A)/Q.

    ``q`` defaults to the schema's shelf (slope ``SHELF_SLOPE``, via ``shelf_q``).
    """
    if q is None:
        q = shelf_q(gain_db)
    a_ = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * freq_hz / sample_rate
    cw, sw = math.cos(w0), math.sin(w0)
    beta = 2.0 * math.sqrt(a_) * sw / (2.0 * q)
    if kind == "low":
        b = np.array([a_ * ((a_ + 1) - (a_ - 1) * cw + beta), 2 * a_ * ((a_ - 1) - (a_ + 1) * cw),
                      a_ * ((a_ + 1) - (a_ - 1) * cw - beta)])
        a = np.array([(a_ + 1) + (a_ - 1) * cw + beta, -2 * ((a_ - 1) + (a_ + 1) * cw),
                      (a_ + 1) + (a_ - 1) * cw - beta])
    elif kind == "high":
        b = np.array([a_ * ((a_ + 1) + (a_ - 1) * cw + beta), -2 * a_ * ((a_ - 1) + (a_ + 1) * cw),
                      a_ * ((a_ + 1) + (a_ - 1) * cw - beta)])
        a = np.array([(a_ + 1) - (a_ - 1) * cw + beta, 2 * ((a_ - 1) - (a_ + 1) * cw),
                      (a_ + 1) - (a_ - 1) * cw - beta])
    else:
        raise ValueError(f"shelf kind must be 'low' or 'high', got {kind!r}")
    return b / a[0], a / a[0]


def eq_sections(params: Mapping[str, float], sample_rate: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The five biquads of the schema EQ for ``params`` (bands at 0 dB included)."""
    p = params
    return [
        shelf("low", p["low_shelf_freq_hz"], p["low_shelf_gain_db"], sample_rate),
        peaking(p["peak1_freq_hz"], p["peak1_gain_db"], p["peak1_q"], sample_rate),
        peaking(p["peak2_freq_hz"], p["peak2_gain_db"], p["peak2_q"], sample_rate),
        peaking(p["peak3_freq_hz"], p["peak3_gain_db"], p["peak3_q"], sample_rate),
        shelf("high", p["high_shelf_freq_hz"], p["high_shelf_gain_db"], sample_rate),
    ]


def eq_response_db(params: Mapping[str, float], freqs_hz: np.ndarray, sample_rate: int) -> np.ndarray:
    """Magnitude response in dB of the schema EQ at ``freqs_hz`` (RBJ design)."""
    from scipy.signal import freqz

    total = np.zeros(len(freqs_hz))
    for b, a in eq_sections(params, sample_rate):
        _, h = freqz(b, a, worN=np.asarray(freqs_hz, dtype=np.float64), fs=sample_rate)
        total += 20.0 * np.log10(np.maximum(np.abs(h), 1e-12))
    return total
