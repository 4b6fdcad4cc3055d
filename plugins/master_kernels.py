"""The master chain's block kernels: the true-peak interpolator, the scratch views and the per-block DSP.

:class:`MasterKernels` is the audio half of :class:`~.master_bus.StreamingMaster` (which holds
the parameters, the state and the buffers; its module docstring gives the chain's equations and
sources): EQ biquads, the bus compressor's gain computer and ballistics, the gains, and the
true-peak look-ahead limiter, all in float64, in place on preallocated scratch views
(:class:`BlockViews`). The interpolator is the meter's own (:func:`interpolation_filter`, ITU-R
BS.1770-4 Annex 2, :mod:`mixbridge.loudness`); :func:`compiled_filters` gives scipy's compiled
filter kernels. numpy and scipy only.

The compressor's in-place pieces are module functions, shared with the grey-box proxies' CPU
streaming path (:mod:`mixbridge.export.greybox_dsp`): :func:`peak_level_db_` (the linked peak
detector), :func:`static_reduction_db_` (the soft-knee gain computer) and :func:`release_` (the
max-plus peak release, which the limiter uses too). Each is the in-place, allocation-free form of
its reference in :mod:`mixbridge.plugins.dynamics` (``static_reduction_db``, ``peak_release``), with
the same operations in the same order.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from mixbridge.loudness import TRUE_PEAK_HALF_TAPS as _TP_HALF
from mixbridge.loudness import TRUE_PEAK_OVERSAMPLING as _TP_UP

from .dynamics import LEVEL_FLOOR as _LEVEL_FLOOR
from .dynamics import TINY as _TINY

#: True-peak oversampling and interpolation filter: the meter's (:mod:`mixbridge.loudness`).
TRUE_PEAK_OVERSAMPLING = _TP_UP
INTERP_HALF_LENGTH = _TP_HALF
#: Delay of the interpolator in input samples ((81 - 1) / 2 / 4).
INTERP_DELAY_SAMPLES = INTERP_HALF_LENGTH // TRUE_PEAK_OVERSAMPLING
#: Detector floors, shared with the reference compressor (:mod:`mixbridge.plugins.dynamics`).
LEVEL_FLOOR, TINY = _LEVEL_FLOOR, _TINY

_LN10_20 = math.log(10.0) / 20.0
_ONE = np.ones(1)


def interpolation_filter() -> np.ndarray:
    """The 4x true-peak interpolation filter, float64 ``[81]`` taps: the meter's own
    (:func:`mixbridge.loudness.true_peak_interpolation_filter`)."""
    from mixbridge.loudness import true_peak_interpolation_filter

    return true_peak_interpolation_filter()


def interp_matrix() -> np.ndarray:
    """``[taps_per_phase, 3]``: the fractional phases 1/4, 2/4, 3/4 applied to a window oldest->newest."""
    h = interpolation_filter()
    k = -(-h.size // TRUE_PEAK_OVERSAMPLING)  # 21 taps per phase
    hp = np.zeros(k * TRUE_PEAK_OVERSAMPLING)
    hp[:h.size] = h
    # window element t holds x[j - (k-1) + t]; phase f output = sum_i h[4 i + f] x[j - i]
    return np.stack([hp[TRUE_PEAK_OVERSAMPLING * (k - 1 - np.arange(k)) + f] for f in (1, 2, 3)], axis=1)


def compiled_filters():
    """``(sosfilt_inplace, linear_filter)``: scipy's compiled kernels when importable, else public wrappers.

    ``scipy.signal.sosfilt`` and ``lfilter`` spend ~20-40 us per call validating and
    reshaping, more than the filtering of a 64-sample block. Their compiled cores
    (``scipy.signal._sosfilt._sosfilt``, in place on C-contiguous float64
    ``x [signals, samples]`` and ``zi [signals, sections, 2]``; and
    ``scipy.signal._sigtools._linear_filter(b, a, x, axis, zi) -> (y, zf)``) compute
    the same recursions; a test checks them against the public functions.
    """
    try:
        from scipy.signal._sigtools import _linear_filter
        from scipy.signal._sosfilt import _sosfilt
    except ImportError:  # pragma: no cover - another scipy layout: the public, slower path
        from scipy.signal import lfilter, sosfilt

        def _sosfilt(sos, x, zi):
            y, zf = sosfilt(sos, x, axis=-1, zi=np.moveaxis(zi, 1, 0))
            x[...] = y
            zi[...] = np.moveaxis(zf, 0, 1)

        def _linear_filter(b, a, x, axis, zi):
            return lfilter(b, a, x, axis=axis, zi=zi)
    return _sosfilt, _linear_filter


def peak_level_db_(x: np.ndarray, absx: np.ndarray, level: np.ndarray) -> np.ndarray:
    """In place: the linked peak level ``level[..., n] = 20 log10 max(max_c |x[..., c, n]|, LEVEL_FLOOR)``, dBFS.

    Args:
        x: float64 audio ``[..., channels, samples]`` (``[channels, samples]`` for one signal,
            ``[batch, channels, samples]`` for several); read only.
        absx: scratch of ``x``'s shape, float64 (overwritten with ``|x|``).
        level: output ``[..., samples]`` (``x``'s shape without the channel axis), float64.

    Returns:
        ``level``. The detector of :func:`mixbridge.plugins.dynamics.gain_reduction_db`.
    """
    np.abs(x, out=absx)
    np.maximum.reduce(absx, axis=-2, out=level)
    np.maximum(level, LEVEL_FLOOR, out=level)
    np.log10(level, out=level)
    level *= 20.0
    return level


def static_reduction_db_(level: np.ndarray, threshold_db: float, knee_db: float, slope: float,
                         out: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """In place: :func:`mixbridge.plugins.dynamics.static_reduction_db` (Giannoulis, Massberg and Reiss,
    JAES 2012, eq. 4) of ``level`` into ``out``: gain reduction in dB, >= 0.

    Args:
        level: detector level in dBFS, any shape (read only; may not be ``out`` or ``tmp``).
        threshold_db: knee centre, dBFS. knee_db: full knee width, dB (0: hard knee).
        slope: ``1 - 1/ratio`` (0..1).
        out: output of ``level``'s shape, float64; tmp: scratch of that shape.

    Returns:
        ``out``: ``slope (clip(L - T + W/2, 0, W)^2 / (2W) + max(L - T - W/2, 0))``, or
        ``slope max(L - T, 0)`` for ``W = 0``, in the reference's order of operations.
    """
    mx = np.maximum
    if knee_db > 0.0:
        np.subtract(level, threshold_db - knee_db / 2.0, out=out)
        np.clip(out, 0.0, knee_db, out=out)
        np.multiply(out, out, out=out)
        out /= 2.0 * knee_db
        np.subtract(level, threshold_db + knee_db / 2.0, out=tmp)
        mx(tmp, 0.0, out=tmp)
        out += tmp
    else:
        np.subtract(level, threshold_db, out=out)
        mx(out, 0.0, out=out)
    out *= slope
    return out


def release_(values: np.ndarray, ramp: np.ndarray, index: np.ndarray, step: float, state: float) -> float:
    """In place on ``values [samples]``: ``v[n] = max(v[n], exp(-step) v[n-1])``, the instant-attack peak
    hold with exponential release of :func:`mixbridge.plugins.dynamics.peak_release`.

    The max-plus form ``log v[n] = max_k(log v[k] + step k) - step n`` runs as one
    ``np.maximum.accumulate``.

    Args:
        values: float64 ``[samples]`` (dB of reduction or attenuation, >= 0), overwritten.
        ramp: float64 scratch ``[samples]``. index: float64 ``[samples]`` holding ``0, 1, ..., samples - 1``.
        step: ``1 / (release_ms / 1000 sample_rate)``, per sample.
        state: natural log of the value before the first sample (``-inf``: none).

    Returns:
        The new state (the log of the last value).
    """
    np.maximum(values, TINY, out=values)   # log(0) would warn; exp(log TINY) is exact enough: 1 - 1e-300 == 1
    np.log(values, out=values)
    np.multiply(index, step, out=ramp)
    values += ramp
    np.maximum.accumulate(values, out=values)
    np.maximum(values, state - step, out=values)
    values -= ramp
    new_state = float(values[-1])
    np.exp(values, out=values)
    return new_state


class BlockViews:
    """Views of the preallocated buffers for one block size ``n`` (made once per size)."""

    def __init__(self, m: MasterKernels, n: int) -> None:
        """Views for blocks of ``n`` samples into the buffers of master ``m`` (a
        :class:`~.master_bus.StreamingMaster`)."""
        ch = m.channels
        b = m._buffers
        self.x = b["x"][:ch * n].reshape(ch, n)            # C-contiguous, as _sosfilt needs
        self.absx = b["absx"][:ch * n].reshape(ch, n)
        self.level, self.gr, self.tmp, self.gain, self.peak = (b[k][:n] for k in ("level", "gr", "tmp", "gain", "peak"))
        self.ramp = b["ramp"][:n]
        self.index = b["index"][:n]
        h = m._history
        self.ext = b["ext"][:ch * (h + n)].reshape(ch, h + n)
        self.ext_hist = self.ext[:, :h]
        self.ext_block = self.ext[:, h:]
        self.ext_next = self.ext[:, n:n + h]
        taps = m._taps
        self.windows = np.lib.stride_tricks.sliding_window_view(self.ext[:, h - (taps - 1):], taps, axis=-1)
        d = INTERP_DELAY_SAMPLES
        self.exact = self.ext[:, h - d:h - d + n]
        self.delayed = self.ext[:, h - m.latency_samples:h - m.latency_samples + n]
        L = m.lookahead_samples
        self.hold = b["hold"][:L - 1 + n]
        self.hold_head = self.hold[:L - 1]
        self.hold_block = self.hold[L - 1:]
        self.hold_next = self.hold[n:n + L - 1]
        self.hold_windows = np.lib.stride_tricks.sliding_window_view(self.hold, L)
        self.prev_peak = self.tmp[1:]
        self.peak_head = self.peak[:-1]
        self.out = b["out"][:ch * n].reshape(ch, n)
        self.phases = b["phases"][:ch * n * 3].reshape(ch, n, 3)
        self.phase_max = b["phase_max"][:ch * n].reshape(ch, n)


class MasterKernels:
    """The per-block DSP of :class:`~.master_bus.StreamingMaster` (a mixin: it uses the master's
    state, constants and buffers; see the module docstrings).

    The attributes below are set by :class:`~.master_bus.StreamingMaster` (``__init__`` and
    ``reset``); they are declared here so that the kernels' use of them is checked.
    """

    # configuration (samples, channels) and buffers
    channels: int
    latency_samples: int
    lookahead_samples: int
    clipped_samples: int
    _history: int
    _taps: int
    _buffers: dict[str, np.ndarray]
    _views: dict[int, BlockViews]
    _interp: np.ndarray
    _box_b: np.ndarray
    _sosfilt: Callable[..., Any]
    _linear_filter: Callable[..., Any]
    # smoothed parameters and the constants derived from them
    _index: dict[str, int]
    _start: np.ndarray
    _current: np.ndarray
    _consts: Any
    _sos: Any
    # state carried from block to block
    _eq_zi: np.ndarray
    _comp_release_log: float
    _comp_attack_zi: np.ndarray
    _hist: np.ndarray
    _peak_prev: float
    _hold_hist: np.ndarray
    _lim_release_log: float
    _box_zi: np.ndarray

    def _ramp(self, name: str, n: int, out: np.ndarray) -> np.ndarray | float:
        """The parameter's per-sample linear ramp over the block, or a scalar if it is still."""
        i = self._index[name]
        a, b = self._start[i], self._current[i]
        if a == b:
            return float(b)
        np.multiply(self._buffers["ramp"][:n], (b - a) / n, out=out)
        out += a
        return out

    def _run(self, block: np.ndarray, n: int) -> np.ndarray:
        v = self._views.get(n)
        if v is None:
            v = self._views[n] = BlockViews(self, n)
        c = self._consts[1]
        buf = self._buffers
        mx = np.maximum
        x = v.x
        np.copyto(x, block, casting="unsafe")
        if not math.isfinite(float(np.add.reduce(x, axis=None))):
            np.nan_to_num(x, copy=False, nan=0.0, posinf=0.0, neginf=0.0)

        # ---- EQ: RBJ biquads in place, state carried
        self._sosfilt(self._sos, x, self._eq_zi)

        # ---- compressor: linked peak level in dB, gain reduction in dB (>= 0), release
        absx, level, gr, tmp = v.absx, v.level, v.gr, v.tmp
        peak_level_db_(x, absx, level)
        static_reduction_db_(level, c["threshold_db"], c["knee_db"], c["slope"], gr, tmp)
        self._comp_release_log = release_(gr, buf["rel"][:n], buf["index"][:n], c["release_log_step"],
                                          self._comp_release_log)
        # attack: one-pole low-pass, state carried
        smooth, self._comp_attack_zi = self._linear_filter(c["attack_b"], c["attack_a"], gr, -1,
                                                           self._comp_attack_zi)

        # ---- total gain in dB: -reduction + makeup + master gain (makeup and gain ramp per sample)
        gdb = v.gain
        np.negative(smooth, out=gdb)
        gdb += self._ramp("compressor.makeup_db", n, tmp)
        gdb += self._ramp("gain.gain_db", n, tmp)
        gdb *= _LN10_20
        np.exp(gdb, out=gdb)

        # ---- limiter input: history + gained block
        v.ext_hist[...] = self._hist
        np.multiply(x, gdb, out=v.ext_block)
        self._hist[...] = v.ext_next
        # true-peak estimate at j - D: the fractional phases 1/4..3/4 and the exact sample
        phases, peak = v.phases, v.peak
        np.matmul(v.windows, self._interp, out=phases)
        np.abs(phases, out=phases)
        mx.reduce(phases, axis=2, out=v.phase_max)
        mx.reduce(v.phase_max, axis=0, out=peak)
        np.abs(v.exact, out=absx)
        mx.reduce(absx, axis=0, out=tmp)
        mx(peak, tmp, out=peak)
        # each sample's peak spans the interpolated signal on both sides of it
        tmp[0] = self._peak_prev
        v.prev_peak[...] = v.peak_head
        self._peak_prev = float(peak[-1])
        mx(peak, tmp, out=peak)
        # attenuation needed, dB (>= 0)
        mx(peak, LEVEL_FLOOR, out=peak)
        np.log10(peak, out=peak)
        peak *= 20.0
        peak -= c["limit_db"]
        mx(peak, 0.0, out=peak)
        # hold over the look-ahead window (sliding max), exponential release, box average
        held = level
        if self.lookahead_samples > 1:
            v.hold_head[...] = self._hold_hist
            v.hold_block[...] = peak
            self._hold_hist[...] = v.hold_next
            mx.reduce(v.hold_windows, axis=-1, out=held)
        else:
            held[...] = peak
        self._lim_release_log = release_(held, buf["rel"][:n], buf["index"][:n], c["limiter_release_log_step"],
                                         self._lim_release_log)
        if self.lookahead_samples > 1:
            att, self._box_zi = self._linear_filter(self._box_b, _ONE, held, -1, self._box_zi)
        else:
            att = held
        gain = v.gain
        np.multiply(att, -_LN10_20, out=gain)
        np.exp(gain, out=gain)
        # delayed audio times the gain, then the sample-peak guard at the ceiling
        out = x
        np.multiply(v.delayed, gain, out=out)
        ceiling = c["ceiling_lin"]
        np.abs(out, out=absx)
        if float(mx.reduce(absx, axis=None)) > ceiling:
            self.clipped_samples += int(np.count_nonzero(absx > ceiling))
            np.clip(out, -ceiling, ceiling, out=out)
        np.copyto(v.out, out, casting="same_kind")
        return v.out
