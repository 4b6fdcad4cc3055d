"""Static transfer curves of any renderer ``[channels, samples] -> [channels, samples]``: the
compressor's input/output level curve from a stepped 1 kHz tone, and an EQ's magnitude
response from white noise (Welch cross-spectrum).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

#: and the analysed tail of each step (the detector has settled for release <= 500 ms).
SWEEP_LEVELS_DB = tuple(float(v) for v in range(-60, 1, 3))
SWEEP_STEP_S = 0.6
SWEEP_MEASURE_S = 0.2
SWEEP_TONE_HZ = 1000.0
#: EQ response: white noise RMS level (dBFS) and Welch segment length.
EQ_NOISE_DBFS = -30.0
EQ_NOISE_S = 3.0
EQ_NPERSEG = 4096
#: How many parameter sets the transfer-curve plots show.
N_CURVE_SETS = 3


def level_curve(render: Callable[[np.ndarray], np.ndarray], sample_rate: int,
                channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Static compressor curve: a 1 kHz tone stepping through ``SWEEP_LEVELS_DB`` (peak dBFS);
    returns ``(input_db, output_db)``, both as RMS dB re a full-scale sine of the analysed tail."""
    step = int(SWEEP_STEP_S * sample_rate)
    tail = int(SWEEP_MEASURE_S * sample_rate)
    t = np.arange(step) / sample_rate
    tone = np.sin(2 * np.pi * SWEEP_TONE_HZ * t).astype(np.float32)
    x = np.concatenate([tone * 10 ** (lv / 20) for lv in SWEEP_LEVELS_DB])[None, :].astype(np.float32)
    x = np.repeat(x, channels, axis=0)
    y = render(x)
    ref = math.sqrt(0.5)
    ins, outs = [], []
    for i, _ in enumerate(SWEEP_LEVELS_DB):
        a, b = (i + 1) * step - tail, (i + 1) * step
        ins.append(20 * math.log10(np.sqrt(np.mean(x[0, a:b] ** 2)) / ref + 1e-12))
        outs.append(20 * math.log10(np.sqrt(np.mean(y[0, a:b] ** 2)) / ref + 1e-12))
    return np.array(ins), np.array(outs)


def eq_response(render: Callable[[np.ndarray], np.ndarray], sample_rate: int, channels: int,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Magnitude response in dB from white noise at ``EQ_NOISE_DBFS`` RMS: ``|S_xy / S_xx|``
    (Welch, ``EQ_NPERSEG``); returns ``(freqs_hz, magnitude_db)``."""
    from scipy.signal import csd, welch

    rng = np.random.default_rng([seed, 4242])
    n = int(EQ_NOISE_S * sample_rate)
    x = (rng.standard_normal(n) * 10 ** (EQ_NOISE_DBFS / 20)).astype(np.float32)[None, :]
    x = np.repeat(x, channels, axis=0)
    y = render(x)
    skip = int(0.5 * sample_rate)  # let the compressor's detector settle
    f, pxx = welch(x[0, skip:], fs=sample_rate, nperseg=EQ_NPERSEG)
    _, pxy = csd(x[0, skip:], y[0, skip:], fs=sample_rate, nperseg=EQ_NPERSEG)
    return f[1:], 20 * np.log10(np.abs(pxy[1:]) / np.maximum(pxx[1:], 1e-30) + 1e-12)
