"""The semantic contract's measurements: test signals and one measurement per schema meaning (torch-free).

Each ``measure_*`` takes a renderer (:data:`.contract.Renderer`) and a sample rate in Hz and
returns :class:`.contract.Row` objects judged with :mod:`.contract`'s tolerances; a setting whose
render raises :class:`~mixbridge.errors.ParamRangeError` is *refused*, any other exception is an
*error* row, and the other settings go on. :data:`MEASUREMENTS` lists them by row group:

* compressor: the settled gain of a constant-``|x|`` square-wave staircase -60..0 dBFS vs
  ``makeup_db - static_reduction_db`` (:mod:`.dynamics`), and the 63 % attack and release times
  of a step from below the knee to 18 dB of reduction and back (:func:`compressor_step_times`);
* eq: the impulse response's FFT magnitude vs :func:`.rbj.eq_response_db`, 20 Hz to 16 kHz;
* limiter: the output true peak (:func:`mixbridge.loudness.true_peak_dbtp`, BS.1770-4 Annex 2) of
  loud noise, an fs/4 sine at 45 degrees (+3.01 dB of inter-sample peak) and a full-scale square;
* reverb: Schroeder T20 of the return's impulse response (ISO 3382-1) vs ``decay_s``, and the
  return's loudness over a pink-noise send's (BS.1770-4) vs ``return_db``;
* pan: ``4/pi atan2(rms_R, rms_L) - 1`` of a mono and a dual-mono track vs ``pan``, and the
  output/input power (0 dB).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from mixbridge.errors import UnknownNameError

from .contract import (
    EQ_BAND_HZ,
    EQ_MAGNITUDE_TOL_DB,
    LIMITER_MIN_PEAK_BELOW_DB,
    PAN_POSITION_TOL,
    PAN_POWER_TOL_DB,
    RT60_TOL,
    STATIC_CURVE_TOL_DB,
    TIME_CONSTANT_TOL,
    TRUE_PEAK_TOL_DB,
    WET_LEVEL_TOL_DB,
    Renderer,
    Row,
    failed_row,
    measured_row,
)


# ----------------------------------------------------------------------------- signals and helpers
def square_wave(amplitude: float, samples: int, sample_rate: int, freq_hz: float = 1000.0,
                channels: int = 2) -> np.ndarray:
    """``[channels, samples]`` float32 square wave with ``|x| = amplitude`` at every sample (no zeros)."""
    n = np.arange(samples, dtype=np.float64)
    phase = np.floor(n * 2.0 * freq_hz / sample_rate)
    x = np.where(phase % 2 == 0, 1.0, -1.0) * amplitude
    return np.tile(x.astype(np.float32), (channels, 1))


def _db(x: float) -> float:
    return 20.0 * math.log10(max(float(x), 1e-30))


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(np.asarray(x, dtype=np.float64)))))


def _check_output(y: Any, channels: int, samples: int, what: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 2 or y.shape[1] != samples or (channels and y.shape[0] != channels):
        raise ValueError(f"{what}: renderer returned shape {y.shape}, expected [{channels or 'channels'}, {samples}]")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{what}: renderer returned non-finite samples")
    return y.astype(np.float64)


def _defaults(processor: str) -> dict[str, float]:
    from mixbridge.schema import COMPRESSOR, EQ, LIMITER, REVERB

    return {"eq": EQ, "compressor": COMPRESSOR, "limiter": LIMITER, "reverb": REVERB}[processor].defaults()


def _crossing(curve: np.ndarray, start: int, target: float, rising: bool) -> float:
    """Fractional index >= start where ``curve`` first crosses ``target`` (linear interpolation); nan if never."""
    seg = curve[start:]
    hit = np.nonzero(seg >= target if rising else seg <= target)[0]
    if hit.size == 0:
        return math.nan
    i = int(hit[0])
    if i == 0:
        return float(start)
    a, b = seg[i - 1], seg[i]
    frac = (target - a) / (b - a) if b != a else 0.0
    return start + i - 1 + float(frac)


# ----------------------------------------------------------------------------- compressor
#: Static-curve settings: (threshold_db, ratio, knee_db, makeup_db); ballistics fast so each step settles.
#: A hard knee differs from a soft one by at most (1 - 1/ratio) knee_db / 8 (at the threshold, which
#: every staircase includes): 0.875 dB for the second setting, so a knee rendered hard fails it.
STATIC_SETTINGS: tuple[tuple[float, float, float, float], ...] = (
    (-20.0, 4.0, 0.0, 0.0),
    (-30.0, 8.0, 8.0, 3.0),
    (-12.0, 10.0, 4.0, 0.0),
)
#: Levels of the static staircase, dBFS (ascending, so only the attack acts between steps).
STATIC_LEVELS_DB = tuple(float(v) for v in range(-60, 1, 6))
#: Each staircase step lasts this long; the gain is read over its last STATIC_READ_S.
STATIC_STEP_S = 0.15
STATIC_READ_S = 0.05
#: Ballistics of the static measurement (ms).
STATIC_ATTACK_MS, STATIC_RELEASE_MS = 2.0, 50.0

#: Timing settings: (attack_ms, release_ms), release >= 10 attack (see TIME_CONSTANT_TOL).
TIMING_SETTINGS: tuple[tuple[float, float], ...] = ((10.0, 100.0), (2.0, 40.0))
#: The timing step: threshold, ratio, the low and the high level (dBFS): 0 dB -> 18 dB of reduction.
TIMING_THRESHOLD_DB, TIMING_RATIO = -30.0, 4.0
TIMING_LOW_DB, TIMING_HIGH_DB = -50.0, -6.0
#: Each segment of the timing step lasts this many of the asked time constants, so an implementation
#: up to 4x slower than asked still settles (e^-5 of its change left) and is measured, not truncated.
SETTLE_TIME_CONSTANTS = 20.0


def measure_compressor_static(render: Renderer, sample_rate: int,
                              settings: Iterable[Sequence[float]] = STATIC_SETTINGS,
                              levels_db: Sequence[float] = STATIC_LEVELS_DB) -> list[Row]:
    """Static curve: settled gain of a square-wave staircase vs ``makeup_db - static_reduction_db``.

    The staircase is ``levels_db`` plus the setting's threshold (where a soft knee departs
    most from a hard one). One row per setting, reporting the level with the largest
    deviation; passes when every level is within :data:`STATIC_CURVE_TOL_DB`.
    """
    from .dynamics import static_reduction_db

    step = int(STATIC_STEP_S * sample_rate)
    read = int(STATIC_READ_S * sample_rate)
    rows = []
    for threshold_db, ratio, knee_db, makeup_db in settings:
        setting = f"T {threshold_db:g} dB, ratio {ratio:g}, knee {knee_db:g} dB, makeup {makeup_db:g} dB"
        params = {"threshold_db": float(threshold_db), "ratio": float(ratio), "attack_ms": STATIC_ATTACK_MS,
                  "release_ms": STATIC_RELEASE_MS, "knee_db": float(knee_db), "makeup_db": float(makeup_db)}
        try:
            levels = sorted(set(float(v) for v in levels_db) | {float(threshold_db)})
            x = np.concatenate([square_wave(10.0 ** (lv / 20.0), step, sample_rate) for lv in levels], axis=1)
            y = _check_output(render(x, sample_rate, dict(params)), x.shape[0], x.shape[1], "compressor")
            expected = makeup_db - static_reduction_db(np.asarray(levels), threshold_db, ratio, knee_db)
            ends = [(i + 1) * step for i in range(len(levels))]
            measured = np.array([_db(_rms(y[:, e - read:e]) / _rms(x[:, e - read:e])) for e in ends])
            worst = int(np.argmax(np.abs(measured - expected)))
            ok = bool(np.all(np.abs(measured - expected) <= STATIC_CURVE_TOL_DB))
            rows.append(measured_row("compressor", "compressor static gain",
                                     f"{setting}; worst at {levels[worst]:g} dBFS",
                             expected[worst], measured[worst], f"+-{STATIC_CURVE_TOL_DB:g} dB", "dB", ok,
                             f"max dev {abs(measured[worst] - expected[worst]):.3f} dB"))
        except Exception as e:
            rows.append(failed_row("compressor", "compressor static gain", setting, e))
    return rows


def compressor_step_times(render: Renderer, sample_rate: int, attack_ms: float, release_ms: float,
                          *, threshold_db: float = TIMING_THRESHOLD_DB, ratio: float = TIMING_RATIO,
                          low_db: float = TIMING_LOW_DB, high_db: float = TIMING_HIGH_DB) -> tuple[float, float]:
    """The measured 63 % times (ms) of the gain-reduction step response: ``(attack, release)``.

    Input: a 1 kHz square wave (constant ``|x|``) at ``low_db``, stepping to ``high_db`` and
    back. The gain ``20 log10 |y|/|x|`` is averaged over one period centred on each sample
    (no delay; a plugin's edge ripple averages out), and each step's time is where it first
    crosses 63 % of the way from its settled value before the step to its settled value at
    the end of the segment.
    """
    lead = int(0.05 * sample_rate)
    high = int(max(SETTLE_TIME_CONSTANTS * attack_ms * 1e-3, 0.1) * sample_rate)
    tail = int(max(SETTLE_TIME_CONSTANTS * (release_ms + attack_ms) * 1e-3, 0.2) * sample_rate)
    amp = np.concatenate([np.full(lead, 10.0 ** (low_db / 20.0)), np.full(high, 10.0 ** (high_db / 20.0)),
                          np.full(tail, 10.0 ** (low_db / 20.0))])
    x = square_wave(1.0, amp.size, sample_rate) * amp.astype(np.float32)
    params = {"threshold_db": float(threshold_db), "ratio": float(ratio), "attack_ms": float(attack_ms),
              "release_ms": float(release_ms), "knee_db": 0.0, "makeup_db": 0.0}
    y = _check_output(render(x, sample_rate, params), x.shape[0], x.shape[1], "compressor")
    gain = 20.0 * np.log10(np.maximum(np.max(np.abs(y), axis=0), 1e-30) / np.abs(x[0].astype(np.float64)))
    period = max(1, int(round(sample_rate / 1000.0)))
    if period > 1:
        kernel = np.ones(period) / period
        gain = np.convolve(np.pad(gain, (period // 2, period - 1 - period // 2), mode="edge"), kernel, mode="valid")
    settle = max(1, int(0.005 * sample_rate))
    g0 = float(np.median(gain[lead - settle:lead]))
    g1 = float(np.median(gain[lead + high - settle:lead + high]))
    g2 = float(np.median(gain[-settle:]))
    t_att = _crossing(gain, lead, g0 + 0.63 * (g1 - g0), rising=g1 > g0)
    t_rel = _crossing(gain, lead + high, g1 + 0.63 * (g2 - g1), rising=g2 > g1)
    return (t_att - lead) / sample_rate * 1e3, (t_rel - lead - high) / sample_rate * 1e3


def measure_compressor_timing(render: Renderer, sample_rate: int,
                              settings: Iterable[Sequence[float]] = TIMING_SETTINGS) -> list[Row]:
    """Attack and release 63 % times vs ``attack_ms``/``release_ms`` (two rows per setting)."""
    rows = []
    for attack_ms, release_ms in settings:
        setting = f"attack {attack_ms:g} ms, release {release_ms:g} ms, 0 -> 18 dB reduction"
        try:
            att, rel = compressor_step_times(render, sample_rate, attack_ms, release_ms)
        except Exception as e:
            rows.append(failed_row("compressor", "compressor attack (63 %)", setting, e))
            rows.append(failed_row("compressor", "compressor release (63 %)", setting, e))
            continue
        for name, want, got in (("attack", attack_ms, att), ("release", release_ms, rel)):
            ok = math.isfinite(got) and abs(got - want) <= TIME_CONSTANT_TOL * want
            rows.append(measured_row("compressor", f"compressor {name} (63 %)", setting, want, got,
                             f"+-{TIME_CONSTANT_TOL * 100:g} %", "ms", ok,
                             "" if math.isfinite(got) else "never crossed"))
    return rows


# ----------------------------------------------------------------------------- EQ
#: EQ settings: (label, overrides of the EQ defaults).
EQ_SETTINGS: tuple[tuple[str, dict[str, float]], ...] = (
    ("peak +12 dB, Q 0.7 @ 1 kHz", {"peak2_gain_db": 12.0, "peak2_freq_hz": 1000.0, "peak2_q": 0.7}),
    ("peak -12 dB, Q 2 @ 400 Hz", {"peak1_gain_db": -12.0, "peak1_freq_hz": 400.0, "peak1_q": 2.0}),
    ("peak +12 dB, Q 7 @ 5 kHz", {"peak3_gain_db": 12.0, "peak3_freq_hz": 5000.0, "peak3_q": 7.0}),
    ("low shelf +12 dB @ 100 Hz", {"low_shelf_gain_db": 12.0, "low_shelf_freq_hz": 100.0}),
    ("high shelf -12 dB @ 8 kHz", {"high_shelf_gain_db": -12.0, "high_shelf_freq_hz": 8000.0}),
    ("five bands", {"low_shelf_gain_db": -4.0, "low_shelf_freq_hz": 80.0, "peak1_gain_db": 3.0, "peak1_freq_hz": 250.0,
                    "peak1_q": 1.0, "peak2_gain_db": -5.0, "peak2_freq_hz": 2000.0, "peak2_q": 3.0,
                    "peak3_gain_db": 6.0, "peak3_freq_hz": 6000.0, "peak3_q": 0.5, "high_shelf_gain_db": 4.0,
                    "high_shelf_freq_hz": 12000.0}),
)
#: Impulse amplitude (-20 dBFS: +12 dB of boost stays under full scale) and response length.
EQ_IMPULSE_AMPLITUDE = 0.1
EQ_RESPONSE_SAMPLES = 1 << 16
#: Frequencies evaluated per octave (rounded to FFT bins).
EQ_POINTS_PER_OCTAVE = 24


def eq_frequencies(sample_rate: int, samples: int = EQ_RESPONSE_SAMPLES) -> np.ndarray:
    """Log-spaced FFT-bin frequencies from EQ_BAND_HZ[0] to EQ_BAND_HZ[1] (Hz)."""
    lo, hi = EQ_BAND_HZ
    hi = min(hi, 0.45 * sample_rate)
    n = int(math.ceil(math.log2(hi / lo) * EQ_POINTS_PER_OCTAVE)) + 1
    bins = np.unique(np.round(np.geomspace(lo, hi, n) * samples / sample_rate).astype(int))
    return bins


def measure_eq(render: Renderer, sample_rate: int,
               settings: Iterable[tuple[str, Mapping[str, float]]] = EQ_SETTINGS) -> list[Row]:
    """Magnitude response of an impulse vs the RBJ design (worst frequency per setting, both channels)."""
    from .rbj import eq_response_db

    rows = []
    bins = eq_frequencies(sample_rate)
    freqs = bins * sample_rate / EQ_RESPONSE_SAMPLES
    for label, over in settings:
        params = _defaults("eq")
        params.update({k: float(v) for k, v in over.items()})
        try:
            x = np.zeros((2, EQ_RESPONSE_SAMPLES), np.float32)
            x[:, 0] = EQ_IMPULSE_AMPLITUDE
            y = _check_output(render(x, sample_rate, dict(params)), 2, x.shape[1], "eq")
            spec = np.abs(np.fft.rfft(y / EQ_IMPULSE_AMPLITUDE, axis=1))[:, bins]
            measured = 20.0 * np.log10(np.maximum(spec, 1e-30))
            expected = eq_response_db(params, freqs, sample_rate)
            err = np.abs(measured - expected[None, :])
            ch, i = np.unravel_index(int(np.argmax(err)), err.shape)
            rows.append(measured_row("eq", "EQ magnitude", f"{label}; worst at {freqs[i]:.0f} Hz", expected[i],
                                     measured[ch, i],
                             f"+-{EQ_MAGNITUDE_TOL_DB:g} dB", "dB", bool(err.max() <= EQ_MAGNITUDE_TOL_DB),
                             f"max dev {float(err.max()):.3f} dB"))
        except Exception as e:
            rows.append(failed_row("eq", "EQ magnitude", label, e))
    return rows


# ----------------------------------------------------------------------------- limiter
#: Limiter settings: (label, signal kind, ceiling_dbtp).
LIMITER_SETTINGS: tuple[tuple[str, str, float], ...] = (
    ("noise, peaks +12 dB over the ceiling", "noise", -1.0),
    ("fs/4 sine at 45 deg, samples at 0 dBFS (+3.01 dBTP)", "isp", -1.0),
    ("full-scale 1 kHz square", "square", -3.0),
)
LIMITER_SIGNAL_S = 0.5
LIMITER_RELEASE_MS = 50.0


def limiter_signal(kind: str, ceiling_dbtp: float, sample_rate: int, seconds: float = LIMITER_SIGNAL_S) -> np.ndarray:
    """Test signals ``[2, samples]`` float32 whose true peak lies well over ``ceiling_dbtp``."""
    n = int(seconds * sample_rate)
    if kind == "noise":
        rng = np.random.default_rng(9)
        x = rng.standard_normal((2, n))
        x *= 10.0 ** ((ceiling_dbtp + 12.0) / 20.0) / np.max(np.abs(x))
    elif kind == "isp":
        k = np.arange(n)
        x = np.tile(math.sqrt(2.0) * np.sin(np.pi / 2.0 * k + np.pi / 4.0), (2, 1))
    elif kind == "square":
        x = square_wave(1.0, n, sample_rate).astype(np.float64)
    else:
        raise UnknownNameError(f"unknown limiter signal '{kind}'; known: noise, isp, square")
    return x.astype(np.float32)


def measure_limiter(render: Renderer, sample_rate: int,
                    settings: Iterable[tuple[str, str, float]] = LIMITER_SETTINGS) -> list[Row]:
    """Output true peak (BS.1770-4 Annex 2) vs ``ceiling_dbtp``: <= ceiling + TRUE_PEAK_TOL_DB."""
    from mixbridge.loudness import true_peak_dbtp

    rows = []
    for label, kind, ceiling in settings:
        setting = f"{label}, ceiling {ceiling:g} dBTP"
        try:
            x = limiter_signal(kind, ceiling, sample_rate)
            params = {"ceiling_dbtp": float(ceiling), "release_ms": LIMITER_RELEASE_MS}
            y = _check_output(render(x, sample_rate, params), 2, x.shape[1], "limiter")
            tp = true_peak_dbtp(y, sample_rate)
            ok = ceiling - LIMITER_MIN_PEAK_BELOW_DB <= tp <= ceiling + TRUE_PEAK_TOL_DB
            low = tp < ceiling - LIMITER_MIN_PEAK_BELOW_DB
            note = f"more than {LIMITER_MIN_PEAK_BELOW_DB:g} dB under" if low else ""
            rows.append(measured_row("limiter", "limiter true peak", setting, ceiling, tp, "<= ceiling", "dBTP", ok,
                                     note))
        except Exception as e:
            rows.append(failed_row("limiter", "limiter true peak", setting, e))
    return rows


# ----------------------------------------------------------------------------- reverb
#: RT60 settings: decay_s values (pre-delay 10 ms, return 0 dB).
RT60_SETTINGS: tuple[float, ...] = (0.5, 1.2, 3.0)
#: Wet-level settings: (decay_s, return_db).
WET_LEVEL_SETTINGS: tuple[tuple[float, float], ...] = ((0.5, 0.0), (1.2, -6.0))
REVERB_PREDELAY_MS = 10.0
#: Schroeder fit range (ISO 3382-1 T20) in dB below the start of the decay.
T20_RANGE_DB = (-5.0, -25.0)


def schroeder_rt60(impulse_response: np.ndarray, sample_rate: int, fit_db: tuple[float, float] = T20_RANGE_DB) -> float:
    """RT60 in s of ``[channels, samples]`` (or ``[samples]``) by Schroeder backward integration.

    The energy decay curve ``EDC(t) = sum_{k >= t} sum_c h_c[k]^2`` (Schroeder 1965) in dB,
    normalised to 0 dB at its start, is fitted by least squares between ``fit_db`` (default
    -5 and -25 dB: T20, ISO 3382-1) and extrapolated to -60 dB. nan when the curve never
    reaches the lower end.
    """
    h = np.atleast_2d(np.asarray(impulse_response, dtype=np.float64))
    energy = np.sum(h * h, axis=0)
    edc = np.cumsum(energy[::-1])[::-1]
    if edc[0] <= 0:
        return math.nan
    edc_db = 10.0 * np.log10(np.maximum(edc / edc[0], 1e-300))
    hi, lo = fit_db
    idx = np.nonzero((edc_db <= hi) & (edc_db >= lo))[0]
    if idx.size < 2 or edc_db[-1] > lo:
        return math.nan
    t = idx / sample_rate
    slope, _ = np.polyfit(t, edc_db[idx], 1)
    return -60.0 / slope if slope < 0 else math.nan


def measure_reverb_rt60(render: Renderer, sample_rate: int, settings: Iterable[float] = RT60_SETTINGS) -> list[Row]:
    """RT60 (Schroeder T20) of the return's impulse response vs ``decay_s``."""
    rows = []
    for decay_s in settings:
        setting = f"decay {decay_s:g} s, pre-delay {REVERB_PREDELAY_MS:g} ms"
        try:
            n = int((REVERB_PREDELAY_MS * 1e-3 + 1.5 * decay_s + 0.1) * sample_rate)
            x = np.zeros((2, n), np.float32)
            x[:, 0] = 0.5
            params = {"decay_s": float(decay_s), "predelay_ms": REVERB_PREDELAY_MS, "return_db": 0.0}
            y = _check_output(render(x, sample_rate, params), 2, n, "reverb")
            rt = schroeder_rt60(y / 0.5, sample_rate)
            ok = math.isfinite(rt) and abs(rt - decay_s) <= RT60_TOL * decay_s
            rows.append(measured_row("reverb", "reverb RT60 (T20)", setting, decay_s, rt, f"+-{RT60_TOL * 100:g} %",
                                     "s", ok,
                             "" if math.isfinite(rt) else "decay never reached -25 dB"))
        except Exception as e:
            rows.append(failed_row("reverb", "reverb RT60 (T20)", setting, e))
    return rows


def pink_noise(channels: int, samples: int, seed: int) -> np.ndarray:
    """Stationary pink noise (power 1/f from 20 Hz up), independent per channel, RMS 1:
    float64 ``[channels, samples]``."""
    w = np.random.default_rng(seed).standard_normal((channels, samples))
    f = np.fft.rfftfreq(samples)
    shape = 1.0 / np.sqrt(np.maximum(f, 20.0 / 48000.0))
    x = np.fft.irfft(np.fft.rfft(w, axis=1) * shape, n=samples, axis=1)
    return x / np.sqrt(np.mean(x * x))


def measure_reverb_level(render: Renderer, sample_rate: int,
                         settings: Iterable[Sequence[float]] = WET_LEVEL_SETTINGS) -> list[Row]:
    """Loudness of the return over loudness of the send (LU) for stationary pink noise vs ``return_db``.

    The send is independent pink noise on both channels (a music-like spectrum), ``predelay +
    4.5 decay_s`` long (>= 1.5 s); both are measured with the BS.1770-4 meter
    (:func:`mixbridge.loudness.integrated_lufs`: K-weighted) after the return has built up
    (``predelay + 4/3 decay_s``, 80 dB into the decay) to the end. A reverb whose spectrum is
    tilted against the schema's flat one (Dragonfly Plate's is) is judged by how loud it
    sounds on such material, not by its white-noise energy, which its highs dominate.
    """
    from mixbridge.loudness import integrated_lufs

    rows = []
    for decay_s, return_db in settings:
        setting = f"decay {decay_s:g} s, return {return_db:g} dB, pink-noise send"
        try:
            start = int((REVERB_PREDELAY_MS * 1e-3 + 4.0 / 3.0 * decay_s) * sample_rate)
            n = max(int(1.5 * sample_rate), start + int(3.0 * decay_s * sample_rate))
            x = (pink_noise(2, n, 3) * 0.05).astype(np.float32)
            params = {"decay_s": float(decay_s), "predelay_ms": REVERB_PREDELAY_MS, "return_db": float(return_db)}
            y = _check_output(render(x, sample_rate, params), 2, n, "reverb")
            level = integrated_lufs(y[:, start:], sample_rate) - integrated_lufs(x[:, start:], sample_rate)
            rows.append(measured_row("reverb", "reverb wet level", setting, return_db, level,
                                     f"+-{WET_LEVEL_TOL_DB:g} dB", "dB",
                             abs(level - return_db) <= WET_LEVEL_TOL_DB))
        except Exception as e:
            rows.append(failed_row("reverb", "reverb wet level", setting, e))
    return rows


# ----------------------------------------------------------------------------- pan
PAN_SETTINGS: tuple[float, ...] = (-0.6, 0.35, 1.0)
PAN_SIGNAL_S = 0.25


def pan_position(audio: np.ndarray) -> float:
    """Measured position of a ``[2, samples]`` image: ``4/pi atan2(rms_R, rms_L) - 1`` (-1 left .. +1 right)."""
    return 4.0 / math.pi * math.atan2(_rms(audio[1]), _rms(audio[0])) - 1.0


def measure_pan(render: Renderer, sample_rate: int, settings: Iterable[float] = PAN_SETTINGS) -> list[Row]:
    """Pan of a mono and of a dual-mono stereo track: position vs ``pan``, and output/input power (0 dB)."""
    rows = []
    noise = np.random.default_rng(5).standard_normal(int(PAN_SIGNAL_S * sample_rate)) * 0.1
    layouts = (("mono", noise[None, :].astype(np.float32)),
               ("stereo (dual mono)", np.tile(noise, (2, 1)).astype(np.float32)))
    for layout, x in layouts:
        worst_power = None
        for pan in settings:
            setting = f"{layout} track, pan {pan:g}"
            try:
                y = _check_output(render(x, sample_rate, {"pan": float(pan)}), 2, x.shape[1], "pan")
                pos = pan_position(y)
                rows.append(measured_row("pan", "pan position", setting, pan, pos, f"+-{PAN_POSITION_TOL:g}", "",
                                 abs(pos - pan) <= PAN_POSITION_TOL))
                power = 10.0 * math.log10(float(np.sum(y ** 2)) / float(np.sum(x.astype(np.float64) ** 2)))
                if worst_power is None or abs(power) > abs(worst_power[1]):
                    worst_power = (pan, power)
            except Exception as e:
                rows.append(failed_row("pan", "pan position", setting, e))
        if worst_power is not None:
            pan, power = worst_power
            rows.append(measured_row("pan", "pan power (out/in)", f"{layout} track; worst at pan {pan:g}", 0.0,
                                     power, f"+-{PAN_POWER_TOL_DB:g} dB", "dB", abs(power) <= PAN_POWER_TOL_DB))
    return rows


#: The measurements of each row group.
MEASUREMENTS: dict[str, tuple[Callable[[Renderer, int], list[Row]], ...]] = {
    "compressor": (measure_compressor_static, measure_compressor_timing),
    "eq": (measure_eq,),
    "limiter": (measure_limiter,),
    "reverb": (measure_reverb_rt60, measure_reverb_level),
    "pan": (measure_pan,),
}
