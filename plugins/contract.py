"""The semantic contract: measure a rendering implementation against the schema's meaning (torch-free).

Every place that renders a schema parameter (the builtin and vst backends, one plugin
map, the live master chain, the torch console) must make it *sound* as the schema
says (``mixbridge.schema.COMPRESSOR_SEMANTICS``, ``REVERB_SEMANTICS``,
``PAN_SEMANTICS``, the RBJ EQ, the true-peak ceiling). This module measures that, with
the tolerances named once below, from the outside: a *renderer* is any callable

    ``render(audio: float32 [channels, samples], sample_rate: int, params: dict) -> float32 [channels, samples]``

(``params`` holds every real-unit parameter of one processor, e.g. the six of
``compressor``; ``reverb`` returns the stereo wet return; the ``pan`` renderer takes
``{"pan": p}`` and returns the track's ``[2, samples]`` post-pan output).

Measurements (each returns :class:`Row` objects; a setting whose render raises
:class:`~mixbridge.errors.ParamRangeError` is *refused*, any other exception is an
*error* row, and the other settings go on):

* :func:`measure_compressor_static` -- constant-``|x|`` square waves (peak = RMS =
  amplitude, so a peak and an RMS detector read the same level and no sine ripple
  enters a per-sample peak detector) on an ascending staircase -60..0 dBFS; settled
  gain vs ``makeup_db - static_reduction_db`` (:mod:`.dynamics`);
* :func:`measure_compressor_timing` -- a level step from below the knee to 18 dB of
  static reduction and back; the per-sample gain ``|y|/|x|`` in dB (exact for a
  constant-``|x|`` input) crosses 63 % of its change after ``attack_ms`` (rising
  reduction) and ``release_ms`` (falling reduction);
* :func:`measure_eq` -- impulse response, FFT, vs the RBJ magnitude of
  :func:`.rbj.eq_response_db`, 20 Hz to 16 kHz (worst frequency reported);
* :func:`measure_limiter` -- loud noise, an fs/4 sine at 45 degrees (sample peaks 3.01 dB
  under the true peak) and a full-scale square; output true peak
  (:func:`mixbridge.loudness.true_peak_dbtp`, BS.1770-4 Annex 2) <= ``ceiling_dbtp``;
* :func:`measure_reverb_rt60` -- Schroeder backward integration of the return's impulse
  response, T20 (-5 to -25 dB) extrapolated to 60 dB (ISO 3382-1), vs ``decay_s``;
* :func:`measure_reverb_level` -- stationary pink noise on the send; return loudness over
  send loudness (BS.1770-4, K-weighted) in LU vs ``return_db``;
* :func:`measure_pan` -- a mono and a dual-mono stereo track through the console; the
  position ``4/pi atan2(rms_R, rms_L) - 1`` vs ``pan`` (the schema's law puts both there)
  and the output/input power (0 dB for both).

Implementations (:func:`implementation_names`, :func:`register_implementation`):
``reference`` (the numpy reference functions themselves), ``builtin``, ``vst``
(the default plugin maps), ``live`` (the streaming master chain); a shipped map name,
a map JSON path, or a plugin name that a shipped map uses is a one-processor vst
implementation. :func:`run_contract` runs every supported row and returns a
:class:`ContractReport` (``mixbridge plugins check TARGET`` prints it).

A plugin that segfaults takes the process with it (DawDreamer runs in-process); one that
raises is reported on its row.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from mixbridge.errors import MixbridgeError, ParamRangeError, UnknownNameError

# ----------------------------------------------------------------------------- tolerances (named once)
#: Compressor static curve: settled gain within +-0.5 dB of the closed-form soft-knee curve
#: (issue 9; about the just-noticeable level difference for broadband sound).
STATIC_CURVE_TOL_DB = 0.5
#: Attack and release 63 % times within +-20 % of attack_ms/release_ms (issue 9). The
#: reference's release passes through the attack pole too, which adds <= ~11 % for
#: release_ms >= 10 attack_ms; the timing settings below keep that ratio.
TIME_CONSTANT_TOL = 0.20
#: EQ magnitude within +-0.25 dB of the RBJ design from EQ_BAND_HZ[0] to EQ_BAND_HZ[1] (issue 9).
EQ_MAGNITUDE_TOL_DB = 0.25
EQ_BAND_HZ = (20.0, 16000.0)
#: True peak may exceed the ceiling by this much: 0 dB, because the contract measures with
#: the schema's own meter (BS.1770-4 Annex 2, 4x, :func:`mixbridge.loudness.true_peak_dbtp`).
TRUE_PEAK_TOL_DB = 0.0
#: A limiter driven this far over its ceiling must still reach within this many dB of it
#: (a limiter that mutes or pumps everything down is not a ceiling).
LIMITER_MIN_PEAK_BELOW_DB = 3.0
#: Reverb RT60 within +-15 % of decay_s (issue 9; ISO 3382-1's T20 itself has a few % spread).
RT60_TOL = 0.15
#: Reverb wet level within +-1 dB of return_db for a pink-noise send (BS.1770-4 loudness) (issue 9).
WET_LEVEL_TOL_DB = 1.0
#: Pan position (4/pi atan2(rms_R, rms_L) - 1) within this of ``pan``: the console's pan is
#: exact arithmetic in float32 (1e-3 is 0.045 degrees of the pan angle).
PAN_POSITION_TOL = 1e-3
#: Track output power over input power, dB: 0 for mono and for centred stereo (constant power);
#: float32 arithmetic plus a neutral EQ/compressor in the track's chain.
PAN_POWER_TOL_DB = 0.05

#: Row groups, in the order the report lists them (also the renderer keys of an implementation).
ROW_GROUPS = ("compressor", "eq", "limiter", "reverb", "pan")

Renderer = Callable[[np.ndarray, int, dict], np.ndarray]


# ----------------------------------------------------------------------------- rows and report
@dataclass(frozen=True)
class Row:
    """One measured quantity for one setting.

    ``status`` is ``pass``, ``fail``, ``refused`` (the implementation raised
    :class:`ParamRangeError` naming the range it can render; counts as passed) or
    ``error`` (it raised anything else; ``note`` holds the message).
    """

    group: str
    quantity: str
    setting: str
    expected: float
    measured: float
    tolerance: str
    unit: str
    status: str
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.status in ("pass", "refused")


def _row(group, quantity, setting, expected, measured, tolerance, unit, ok, note="") -> Row:
    return Row(group, quantity, setting, float(expected), float(measured), tolerance, unit,
               "pass" if ok else "fail", note)


def _failed_row(group: str, quantity: str, setting: str, exc: BaseException) -> Row:
    status = "refused" if isinstance(exc, ParamRangeError) else "error"
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return Row(group, quantity, setting, math.nan, math.nan, "", "", status, f"{type(exc).__name__}: {msg}")


@dataclass
class ContractReport:
    """Rows measured on one implementation at one sample rate."""

    implementation: str
    sample_rate: int
    rows: list[Row] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when there is at least one row and every row passed or was refused."""
        return bool(self.rows) and all(r.passed for r in self.rows)

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if not r.passed]

    def table(self) -> str:
        """The measured-vs-schema table as plain text (one line per row)."""
        head = ("quantity", "setting", "expected", "measured", "tolerance", "result")
        lines = []
        for r in self.rows:
            if r.status in ("refused", "error"):
                lines.append((r.quantity, r.setting, "", "", "", f"{r.status.upper()}: {r.note}"))
                continue
            unit = f" {r.unit}" if r.unit else ""
            lines.append((r.quantity, r.setting, f"{r.expected:.3f}{unit}", f"{r.measured:.3f}{unit}", r.tolerance,
                          r.status.upper() + (f" ({r.note})" if r.note else "")))
        widths = [max(len(x[i]) for x in [head] + lines) for i in range(5)]
        fmt = lambda x: "  ".join(f"{c:<{w}}" for c, w in zip(x[:5], widths)) + "  " + x[5]  # noqa: E731
        out = [f"contract of '{self.implementation}' at {self.sample_rate} Hz", fmt(head),
               "  ".join("-" * w for w in widths) + "  ------"]
        out += [fmt(x) for x in lines]
        n_ok = sum(r.status == "pass" for r in self.rows)
        n_ref = sum(r.status == "refused" for r in self.rows)
        out.append(f"{n_ok} passed, {n_ref} refused, {len(self.rows) - n_ok - n_ref} failed of {len(self.rows)} rows"
                   + (" -> PASS" if self.passed else " -> FAIL"))
        out += [f"notice: {n}" for n in self.notices]
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()


# ----------------------------------------------------------------------------- signals and helpers
def square_wave(amplitude: float, samples: int, sample_rate: int, freq_hz: float = 1000.0, channels: int = 2) -> np.ndarray:
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
            measured = np.array([_db(_rms(y[:, (i + 1) * step - read:(i + 1) * step]) / _rms(x[:, (i + 1) * step - read:(i + 1) * step]))
                                 for i in range(len(levels))])
            worst = int(np.argmax(np.abs(measured - expected)))
            ok = bool(np.all(np.abs(measured - expected) <= STATIC_CURVE_TOL_DB))
            rows.append(_row("compressor", "compressor static gain", f"{setting}; worst at {levels[worst]:g} dBFS",
                             expected[worst], measured[worst], f"+-{STATIC_CURVE_TOL_DB:g} dB", "dB", ok,
                             f"max dev {abs(measured[worst] - expected[worst]):.3f} dB"))
        except Exception as e:  # noqa: BLE001 - a failing render is reported on its row
            rows.append(_failed_row("compressor", "compressor static gain", setting, e))
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
        except Exception as e:  # noqa: BLE001
            rows.append(_failed_row("compressor", "compressor attack (63 %)", setting, e))
            rows.append(_failed_row("compressor", "compressor release (63 %)", setting, e))
            continue
        for name, want, got in (("attack", attack_ms, att), ("release", release_ms, rel)):
            ok = math.isfinite(got) and abs(got - want) <= TIME_CONSTANT_TOL * want
            rows.append(_row("compressor", f"compressor {name} (63 %)", setting, want, got,
                             f"+-{TIME_CONSTANT_TOL * 100:g} %", "ms", ok, "" if math.isfinite(got) else "never crossed"))
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
            rows.append(_row("eq", "EQ magnitude", f"{label}; worst at {freqs[i]:.0f} Hz", expected[i], measured[ch, i],
                             f"+-{EQ_MAGNITUDE_TOL_DB:g} dB", "dB", bool(err.max() <= EQ_MAGNITUDE_TOL_DB),
                             f"max dev {float(err.max()):.3f} dB"))
        except Exception as e:  # noqa: BLE001
            rows.append(_failed_row("eq", "EQ magnitude", label, e))
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
        raise ValueError(f"unknown limiter signal '{kind}'; known: noise, isp, square")
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
            note = "" if tp >= ceiling - LIMITER_MIN_PEAK_BELOW_DB else f"more than {LIMITER_MIN_PEAK_BELOW_DB:g} dB under"
            rows.append(_row("limiter", "limiter true peak", setting, ceiling, tp, "<= ceiling", "dBTP", ok, note))
        except Exception as e:  # noqa: BLE001
            rows.append(_failed_row("limiter", "limiter true peak", setting, e))
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
            rows.append(_row("reverb", "reverb RT60 (T20)", setting, decay_s, rt, f"+-{RT60_TOL * 100:g} %", "s", ok,
                             "" if math.isfinite(rt) else "decay never reached -25 dB"))
        except Exception as e:  # noqa: BLE001
            rows.append(_failed_row("reverb", "reverb RT60 (T20)", setting, e))
    return rows


def pink_noise(channels: int, samples: int, seed: int) -> np.ndarray:
    """Stationary pink noise (power 1/f from 20 Hz up), independent per channel, RMS 1: float64 ``[channels, samples]``."""
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
            rows.append(_row("reverb", "reverb wet level", setting, return_db, level, f"+-{WET_LEVEL_TOL_DB:g} dB", "dB",
                             abs(level - return_db) <= WET_LEVEL_TOL_DB))
        except Exception as e:  # noqa: BLE001
            rows.append(_failed_row("reverb", "reverb wet level", setting, e))
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
    for layout, x in (("mono", noise[None, :].astype(np.float32)), ("stereo (dual mono)", np.tile(noise, (2, 1)).astype(np.float32))):
        worst_power = None
        for pan in settings:
            setting = f"{layout} track, pan {pan:g}"
            try:
                y = _check_output(render(x, sample_rate, {"pan": float(pan)}), 2, x.shape[1], "pan")
                pos = pan_position(y)
                rows.append(_row("pan", "pan position", setting, pan, pos, f"+-{PAN_POSITION_TOL:g}", "",
                                 abs(pos - pan) <= PAN_POSITION_TOL))
                power = 10.0 * math.log10(float(np.sum(y ** 2)) / float(np.sum(x.astype(np.float64) ** 2)))
                if worst_power is None or abs(power) > abs(worst_power[1]):
                    worst_power = (pan, power)
            except Exception as e:  # noqa: BLE001
                rows.append(_failed_row("pan", "pan position", setting, e))
        if worst_power is not None:
            rows.append(_row("pan", "pan power (out/in)", f"{layout} track; worst at pan {worst_power[0]:g}", 0.0,
                             worst_power[1], f"+-{PAN_POWER_TOL_DB:g} dB", "dB", abs(worst_power[1]) <= PAN_POWER_TOL_DB))
    return rows


#: The measurements of each row group.
MEASUREMENTS: dict[str, tuple[Callable[[Renderer, int], list[Row]], ...]] = {
    "compressor": (measure_compressor_static, measure_compressor_timing),
    "eq": (measure_eq,),
    "limiter": (measure_limiter,),
    "reverb": (measure_reverb_rt60, measure_reverb_level),
    "pan": (measure_pan,),
}


# ----------------------------------------------------------------------------- implementations
@dataclass
class Implementation:
    """Something the contract runs on: one renderer per row group it supports.

    Args:
        name: shown in the report.
        renderers: ``{group: render}`` with groups from :data:`ROW_GROUPS`.
        notices: callable returning the implementation's notices (e.g. a backend's).
        close: frees plugin handles.
    """

    name: str
    renderers: dict[str, Renderer]
    notices: Callable[[], list[str]] = lambda: []
    close: Callable[[], None] = lambda: None

    @property
    def rows(self) -> tuple[str, ...]:
        """The row groups this implementation supports, in report order."""
        return tuple(g for g in ROW_GROUPS if g in self.renderers)


ImplementationFactory = Callable[[int], Implementation]
_IMPLEMENTATIONS: dict[str, ImplementationFactory] = {}


def register_implementation(name: str, factory: ImplementationFactory) -> None:
    """Add ``factory(sample_rate) -> Implementation`` under ``name``.

    Raises:
        ValueError: ``name`` is already registered.
    """
    if name in _IMPLEMENTATIONS:
        raise ValueError(f"contract implementation '{name}' is already registered; known: {', '.join(_IMPLEMENTATIONS)}")
    _IMPLEMENTATIONS[name] = factory


#: Implementations registered by importing another module on first use (so this module never
#: imports torch): ``{name: (module, function that registers it)}``.
LAZY_IMPLEMENTATIONS: dict[str, tuple[str, str]] = {"torch": ("mixbridge.models.console", "register_contract")}


def implementation_names(include_lazy: bool = False) -> list[str]:
    """Registered implementations (with ``include_lazy``, also the lazy ones not loaded yet)."""
    lazy = [n for n in LAZY_IMPLEMENTATIONS if n not in _IMPLEMENTATIONS] if include_lazy else []
    return list(_IMPLEMENTATIONS) + lazy


def _load_lazy(name: str) -> None:
    """Import the module that registers ``name``.

    Raises:
        BackendUnavailableError: the module (or torch) cannot be imported.
    """
    import importlib

    from mixbridge.errors import BackendUnavailableError

    module, func = LAZY_IMPLEMENTATIONS[name]
    try:
        getattr(importlib.import_module(module), func)()
    except ImportError as e:
        raise BackendUnavailableError(f"contract implementation '{name}' needs {module}, which fails to import ({e}); "
                                      "install torch==2.13.0 (CPU) for the torch console") from None


def _reference(sample_rate: int) -> Implementation:
    from scipy.signal import sosfilt

    from .console import pan_gains
    from .dynamics import compress
    from .rbj import eq_sections
    from .reverb import reverb

    def eq(audio, sr, params):
        sos = np.array([np.concatenate([b, a]) for b, a in eq_sections(params, sr)])
        return sosfilt(sos, np.asarray(audio, np.float64), axis=1).astype(np.float32)

    def pan(audio, sr, params):
        left, right = pan_gains(params["pan"], audio.shape[0])
        src = (audio[0], audio[0]) if audio.shape[0] == 1 else (audio[0], audio[1])
        return np.stack([src[0] * np.float32(left), src[1] * np.float32(right)])

    return Implementation("reference", {"compressor": lambda a, sr, p: compress(a, sr, **p), "eq": eq,
                                        "reverb": lambda a, sr, p: reverb(a, sr, **p), "pan": pan})


def console_pan_renderer(backend) -> Renderer:
    """A renderer of one track through :func:`.console.render_track` (defaults but ``pan``) on ``backend``."""
    from mixbridge.session import Track

    from .console import render_track

    def pan(audio, sr, params):
        track = Track("contract", "contract.wav")
        track.params["pan"]["pan"] = float(params["pan"])
        tr, _ = render_track(track, np.ascontiguousarray(audio, np.float32), backend, sr, measure=False)
        return tr.output

    return pan


def backend_implementation(name: str, backend, processors: Iterable[str] = ("eq", "compressor", "reverb", "limiter"),
                           pan: bool = True) -> Implementation:
    """Wrap a :class:`~.backend.Backend`: ``backend.process(processor, audio, params)`` per group."""

    def proc(p):
        def render(audio, sr, params):
            if sr != backend.sample_rate:
                raise ValueError(f"the backend runs at {backend.sample_rate} Hz, the contract asked for {sr} Hz")
            return backend.process(p, audio, params, label="contract")
        return render

    renderers = {p: proc(p) for p in processors}
    if pan:
        renderers["pan"] = console_pan_renderer(backend)
    return Implementation(name, renderers, notices=lambda: list(backend.notices), close=backend.close)


def _builtin(sample_rate: int) -> Implementation:
    from .backend import get_backend

    return backend_implementation("builtin", get_backend("builtin", sample_rate))


def _vst(sample_rate: int) -> Implementation:
    from .backend import get_backend

    return backend_implementation("vst", get_backend("vst", sample_rate))


def _master_module():
    from mixbridge.plugins import master_bus as m

    return m


#: The live adapter runs the EQ and compressor with the gain stage at -LIVE_HEADROOM_DB and scales
#: the output back exactly, so the chain's limiter (ceiling 0 dBTP) never acts on those rows.
LIVE_HEADROOM_DB = 24.0


def _live(sample_rate: int) -> Implementation:
    m = _master_module()
    neutral_comp = {"ratio": 1.0}
    back = 10.0 ** (LIVE_HEADROOM_DB / 20.0)

    def through(processor):
        def render(audio, sr, params):
            p = {"eq": {}, "compressor": dict(neutral_comp), "gain": {"gain_db": -LIVE_HEADROOM_DB},
                 "limiter": {"ceiling_dbtp": 0.0}}
            p[processor] = dict(params)
            return (m.render_master(audio, sr, p).astype(np.float64) * back).astype(np.float32)
        return render

    def limiter(audio, sr, params):
        return m.render_master(audio, sr, {"compressor": dict(neutral_comp), "gain": {"gain_db": 0.0},
                                           "limiter": dict(params)})

    return Implementation("live", {"eq": through("eq"), "compressor": through("compressor"), "limiter": limiter})


register_implementation("reference", _reference)
register_implementation("builtin", _builtin)
register_implementation("vst", _vst)
register_implementation("live", _live)


def map_implementation(map_name_or_path: Any, sample_rate: int, plugin_paths: Iterable[str] | None = None) -> Implementation:
    """One plugin map as an implementation: ``VstBackend(sample_rate, maps={processor: map})``, its rows only."""
    from .pluginmap import load_map
    from .vst import VstBackend

    pm = load_map(map_name_or_path)
    backend = VstBackend(sample_rate, maps={pm.processor: pm}, plugin_paths=plugin_paths)
    return backend_implementation(f"map {pm.name} ({pm.processor})", backend, processors=(pm.processor,), pan=False)


def _maps_using_plugin(name: str) -> list[str]:
    from .pluginmap import builtin_map_names, load_map

    hits = []
    for m in builtin_map_names():
        try:
            pm = load_map(m)
        except MixbridgeError:
            continue
        if any(spec.identity.name.lower() == name.lower() or spec.identity.file.lower() == name.lower()
               for spec in pm.plugins.values()):
            hits.append(m)
    return hits


def resolve_implementation(target: Any, sample_rate: int) -> list[Implementation]:
    """``target`` as implementations: a registered name, a shipped map, a map JSON path, or a plugin name.

    A plugin name gives one implementation per shipped map that uses the plugin.

    Raises:
        UnknownNameError: none of these; lists the implementations and the shipped maps.
    """
    from pathlib import Path

    from .pluginmap import PluginMap, builtin_map_names

    if isinstance(target, Implementation):
        return [target]
    if isinstance(target, PluginMap):
        return [map_implementation(target, sample_rate)]
    text = str(target)
    if text in LAZY_IMPLEMENTATIONS and text not in _IMPLEMENTATIONS:
        _load_lazy(text)
    if text in _IMPLEMENTATIONS:
        return [_IMPLEMENTATIONS[text](sample_rate)]
    if text in builtin_map_names() or text.endswith(".json") or Path(text).exists():
        return [map_implementation(text, sample_rate)]
    maps = _maps_using_plugin(text)
    if maps:
        return [map_implementation(m, sample_rate) for m in maps]
    raise UnknownNameError(
        f"'{text}' is no contract implementation, plugin map or mapped plugin; implementations: "
        f"{', '.join(implementation_names(include_lazy=True))}; shipped maps: {', '.join(builtin_map_names())} (or give a map .json path)")


def run_implementation(impl: Implementation, sample_rate: int = 48000, rows: Iterable[str] | None = None) -> ContractReport:
    """Measure every supported row group of ``impl`` (or only ``rows``) into a :class:`ContractReport`."""
    wanted = tuple(rows) if rows is not None else ROW_GROUPS
    for g in wanted:
        if g not in ROW_GROUPS:
            raise UnknownNameError(f"unknown contract row group '{g}'; known: {', '.join(ROW_GROUPS)}")
    report = ContractReport(impl.name, int(sample_rate))
    for group in impl.rows:
        if group not in wanted:
            continue
        for measure in MEASUREMENTS[group]:
            report.rows.extend(measure(impl.renderers[group], int(sample_rate)))
    try:
        report.notices = list(impl.notices())
    except Exception:  # noqa: BLE001 - notices are informative only
        pass
    return report


def run_contract(target: Any, sample_rate: int = 48000, rows: Iterable[str] | None = None) -> ContractReport:
    """Run the contract on an implementation name, a plugin map (name, path or object) or a mapped plugin name.

    Args:
        target: see :func:`resolve_implementation`.
        sample_rate: Hz.
        rows: row groups to measure (default all that the implementation supports:
            :data:`ROW_GROUPS`).

    Returns:
        One :class:`ContractReport` (several maps of one plugin are merged, each row's
        setting prefixed with the map). An implementation that fails to build
        (a library or plugin missing) gives one ``error`` row.

    Raises:
        UnknownNameError: an unknown target or row group.
    """
    try:
        impls = resolve_implementation(target, sample_rate)
    except UnknownNameError:
        raise
    except Exception as e:  # noqa: BLE001 - e.g. DawDreamer missing, a map that fails validation
        report = ContractReport(str(target), int(sample_rate))
        report.rows.append(_failed_row("load", "load implementation", str(target), e))
        if report.rows[0].status == "refused":
            report.rows[0] = Row(**{**report.rows[0].__dict__, "status": "error"})
        return report
    if len(impls) == 1:
        try:
            return run_implementation(impls[0], sample_rate, rows)
        finally:
            impls[0].close()
    merged = ContractReport(f"{target} ({', '.join(i.name for i in impls)})", int(sample_rate))
    for impl in impls:
        try:
            r = run_implementation(impl, sample_rate, rows)
        finally:
            impl.close()
        merged.rows += [Row(**{**row.__dict__, "setting": f"[{impl.name}] {row.setting}"}) for row in r.rows]
        merged.notices += r.notices
    return merged
