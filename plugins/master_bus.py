"""The one master bus: EQ -> bus compressor -> solved gain -> true-peak look-ahead limiter (torch-free).

Every path that renders a master uses this module: ``automix`` and ``render``
(for the builtin and the vst backend alike, :func:`mixbridge.plugins.mastering.master`),
the live JACK bus (:mod:`mixbridge.bridge.live`, in its process callback) and the
mastering command; the one gain solver is
:func:`mixbridge.plugins.mastering.solve_master_gain`. It imports only numpy,
scipy and mixbridge's core (the schema and the RBJ designs of
:mod:`mixbridge.plugins.rbj`), never torch or pedalboard.

The chain and its parameters (:data:`mixbridge.schema.MASTER_RENDER`: the schema's
``eq``, ``compressor``, ``gain`` and ``limiter``):

* **EQ** -- the schema's five RBJ biquads (Audio EQ Cookbook, as in
  :func:`mixbridge.plugins.rbj.eq_sections`), run by ``scipy.signal.sosfilt``
  with its state ``zi`` carried from block to block. A band at 0 dB is an exact
  identity (its numerator equals its denominator).
* **Bus compressor** -- feed-forward, stereo-linked, log domain, after
  Giannoulis, Massberg & Reiss, "Digital Dynamic Range Compressor Design -- A
  Tutorial and Analysis", JAES 60(6), 2012:

  - detector level ``x_dB = 20 log10 max_channels |x[n]|`` (peak, per sample);
  - gain computer with a quadratic soft knee of width ``knee_db`` (their eq. 4),
    written as the gain reduction
    ``gr = s * clip(x_dB - T + W/2, 0, W)^2 / (2W) + s * max(x_dB - T - W/2, 0)``
    with ``s = 1 - 1/ratio`` (``gr = s * max(x_dB - T, 0)`` for ``W = 0``); a
    ratio of 1 gives ``gr = 0`` exactly;
  - ballistics on the gain reduction, after the gain computer as they recommend: their
    "smooth decoupled" peak detector (eq. 17; ZamComp's and ZamCompX2's code) with one
    change that lets it vectorise over a block:

    1. *release*: an instantaneous-attack peak hold with exponential release,
       ``y1[n] = max(gr[n], aR * y1[n-1])``, ``aR = exp(-1 / (release_ms/1000 * sample_rate))``
       (eq. 17 has ``max(gr[n], aR * y1[n-1] + (1 - aR) gr[n])``, which decays toward the
       current reduction instead of toward 0). Because
       ``log y1[n] = max(log gr[n], log y1[n-1] + log aR)`` is a max-plus recursion, it equals
       ``cummax(log gr[k] - k log aR) + n log aR`` -- one ``np.maximum.accumulate`` per
       block, with the last value carried. It never reduces more than eq. 17 and recovers a
       little sooner: a test measures 0.4 dB mean gap at 15.6 dB mean reduction, and on a
       20 s demo mix (threshold -16 dB, ratio 2, 30/200 ms) both give the same loudness
       within 0.02 LU;
    2. *attack*: eq. 17's one-pole ``y[n] = aA y[n-1] + (1 - aA) y1[n]``,
       ``aA = exp(-1 / (attack_ms/1000 * sample_rate))``, run by ``lfilter`` with its state
       carried.

    ``attack_ms``/``release_ms`` are time constants (63 % of a step), as ZamComp defines them.
  - output gain ``-y + makeup_db``.
* **Gain** -- ``gain.gain_db``, the master gain that the one solver finds for
  ``loudness.target_lufs`` (:func:`mixbridge.plugins.mastering.solve_master_gain`).
  A session's stored value (``master.solved_gain_db``) is used when present. Changing
  ``loudness.target_lufs`` live shifts the gain by the same number of dB (no integrated
  loudness can be measured on a live stream).
* **Limiter** -- look-ahead, true-peak aware, linked, with ``ceiling_dbtp`` and
  ``release_ms``:

  - the true peak is estimated per sample with the same 4x polyphase
    interpolator that :func:`mixbridge.loudness.true_peak_dbtp` uses (scipy's
    ``resample_poly`` filter: ``firwin(81, 1/4, window=("kaiser", 5.0)) * 4``,
    ITU-R BS.1770-4 Annex 2), as one matrix product per block over a sliding
    window; each sample's peak covers the interpolated signal from the sample
    before it to the sample after it;
  - the needed attenuation ``a[m] = max(0, 20 log10(peak[m]) - ceiling_dB + margin)``
    is held over the look-ahead window of ``L`` samples (sliding max), released
    exponentially (``release_ms``, the max-plus recursion above) and averaged
    over ``L`` samples (a box FIR by ``lfilter``). The average at the sample's
    output time covers only values >= ``a[m]``, so every peak is attenuated at
    least to the ceiling and the gain moves smoothly (no step, no click);
  - the audio is delayed by ``L - 1`` samples plus the interpolator's 10 samples:
    ``latency_samples = L + 9`` (81 samples, 1.69 ms, at 48 kHz with the default
    1.5 ms look-ahead);
  - a final sample-peak guard clips at the ceiling. It only acts when a
    ceiling decrease overtakes samples already in the look-ahead window; such
    samples are counted in :attr:`StreamingMaster.clipped_samples`.

Parameters are smoothed like :mod:`mixbridge.export.runtime`: each block the
smoothed vector moves toward its target as a one-pole with time constant
``smoothing_ms`` (default 20 ms). ``compressor.makeup_db`` and ``gain.gain_db`` ramp
linearly per sample within the block (no zipper noise); the other parameters take
the block's end value (the EQ is redesigned, the compressor and limiter
constants recomputed, only while they move). After :meth:`StreamingMaster.reset`
the first parameters apply at once.

:class:`StreamingMaster` holds the parameters, the state and preallocated scratch buffers; its
per-block DSP (the kernels above, in place on the scratch: scipy's ``sosfilt``/``lfilter`` and the
interpolator's matrix product return new block-sized arrays, everything else writes into scratch)
is :class:`~.master_kernels.MasterKernels`, with the true-peak interpolator. :func:`render_master`
is the offline path: the same kernels over 4096-sample chunks, so a
stream of any block size from 1 to 4096 equals it (float64 inside, float32 out).
"""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np

from mixbridge.errors import AudioInputError, ParamRangeError, UnknownParamError
from mixbridge.schema import EQ, GAIN, MASTER_BUS, MASTER_RENDER, flatten_params
from mixbridge.smoothing import ParamSmoother

from .master_kernels import INTERP_DELAY_SAMPLES, BlockViews, MasterKernels, compiled_filters, interp_matrix

#: Default parameter smoothing time constant (as the streaming runtime's).
DEFAULT_SMOOTHING_MS = 20.0
#: Default limiter look-ahead (the hold and smoothing window), in ms.
DEFAULT_LOOKAHEAD_MS = 1.5
#: Largest block a :class:`StreamingMaster` takes by default (samples).
MAX_BLOCK_SIZE = 4096
#: Chunk of the offline path (the interpolator's matrix product is fastest on blocks that stay in cache).
OFFLINE_CHUNK = 4096
#: The limiter aims this far under the ceiling: the gain moves between the interpolator's taps,
#: so the output's true peak differs slightly from ``gain * estimate``. Measured with no margin:
#: at most +0.015 dB over the ceiling (noise driven 24 dB into the limiter; fs/4 sines, sweeps,
#: spikes, squares stay within +0.001 dB); 0.05 dB keeps every test signal under it.
LIMITER_MARGIN_DB = 0.05
#: Smoothing stops (snaps to the target) once every parameter is this close.
SNAP_TOLERANCE = 1e-9
#: Parameters that ramp per sample within a block (the others step per block).
RAMPED = ("compressor.makeup_db", "gain.gain_db")


class ReverbNotInMasterError(UnknownParamError):
    """A master reverb parameter: the reverb bus is fed by track sends, not by the stereo master input."""


def master_params_from_session(session: Any) -> tuple[dict[str, dict[str, float]], dict, list[str]]:
    """The master chain's parameters from a session's master bus.

    Returns ``(params, reference, notices)``: ``params`` nested for :data:`MASTER_RENDER`;
    ``reference`` ``{"gain_db", "target_lufs"}`` pairs the gain with the session's loudness
    target (changing the target live shifts the gain by the same dB); ``notices`` say what
    the chain does not take over (the reverb bus, automation, a missing solved gain).

    Raises:
        ParamRangeError: a solved gain outside the gain stage's range.
    """
    mp = MASTER_BUS.validate(session.master.params, "master")
    notices = ["master reverb: the reverb bus is fed by track sends and is already in the mix; "
               "the master chain has no reverb"]
    if getattr(session.master, "automation", None):
        auto = sorted(k for k in session.master.automation if not k.startswith("reverb."))
        if auto:
            notices.append(f"master automation ({', '.join(auto)}) is not played live; the session's static "
                           "values are used")
    solved = getattr(session.master, "solved_gain_db", None)
    if solved is None:
        pm = (session.provenance or {}).get("master")
        if isinstance(pm, Mapping):  # sessions written before master.solved_gain_db existed
            solved = pm.get("solved_gain_db")
    if solved is None:
        gain_db = 0.0
        notices.append("the session has no solved master gain (master.solved_gain_db); the gain stage "
                       "starts at 0 dB -- render the session with `mixbridge automix`/`render` to solve it, "
                       "or set /mixbridge/param/gain/gain_db")
    else:
        gain_db = GAIN.param("gain_db").validate(solved, "master.solved_gain_db")
    params = {"eq": dict(mp["eq"]), "compressor": dict(mp["compressor"]), "gain": {"gain_db": gain_db},
              "limiter": dict(mp["limiter"])}
    reference = {"gain_db": gain_db, "target_lufs": float(mp["loudness"]["target_lufs"])}
    return params, reference, notices


class StreamingMaster(MasterKernels):
    """The master chain with state carried block to block (see the module docstring).

    Args:
        sample_rate: Hz.
        params: nested ``{processor: {param: value}}`` or flat ``{"processor.param": value}``
            in real units for :data:`MASTER_RENDER` (partial; the rest take schema defaults).
        channels: audio channels (linked detection).
        smoothing_ms: parameter smoothing time constant, ms (0: a ramp over one block).
        lookahead_ms: limiter look-ahead, ms (>= 1 sample).
        max_block: largest block :meth:`process` takes, samples.
        reference: ``{"gain_db", "target_lufs"}`` from :func:`live_params_from_session`, which
            lets ``loudness.target_lufs`` be set (it shifts the gain).

    Raises:
        ParamRangeError, UnknownParamError: bad parameters or settings.
    """

    def __init__(self, sample_rate: int, params: Mapping[str, Any] | None = None, *, channels: int = 2,
                 smoothing_ms: float = DEFAULT_SMOOTHING_MS, lookahead_ms: float = DEFAULT_LOOKAHEAD_MS,
                 max_block: int = MAX_BLOCK_SIZE, reference: Mapping[str, float] | None = None) -> None:
        if not (isinstance(sample_rate, (int, np.integer)) and 8000 <= sample_rate <= 384000):
            raise ParamRangeError(f"sample_rate = {sample_rate!r} must be an integer in [8000, 384000] Hz")
        if not (isinstance(channels, (int, np.integer)) and channels >= 1):
            raise ParamRangeError(f"channels = {channels!r} must be an integer >= 1")
        if not (math.isfinite(smoothing_ms) and smoothing_ms >= 0):
            raise ParamRangeError(f"smoothing_ms = {smoothing_ms} must be a finite value >= 0 ms")
        if not (math.isfinite(lookahead_ms) and 0 <= lookahead_ms <= 50):
            raise ParamRangeError(f"lookahead_ms = {lookahead_ms} must lie in [0, 50] ms")
        if not (isinstance(max_block, (int, np.integer)) and max_block >= 1):
            raise ParamRangeError(f"max_block = {max_block!r} must be an integer >= 1")
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.smoothing_ms = float(smoothing_ms)
        self.max_block = int(max_block)
        #: Look-ahead window ``L`` in samples.
        self.lookahead_samples = max(1, int(round(lookahead_ms * 1e-3 * self.sample_rate)))
        #: Output delay relative to the input, samples.
        self.latency_samples = self.lookahead_samples - 1 + INTERP_DELAY_SAMPLES
        self._interp = interp_matrix()
        self._taps = self._interp.shape[0]
        self._history = max(self.latency_samples, self._taps - 1)
        self._box_b = np.full(self.lookahead_samples, 1.0 / self.lookahead_samples)
        ch, cap, L = self.channels, self.max_block, self.lookahead_samples
        self._buffers = {
            "x": np.zeros(ch * cap), "absx": np.zeros(ch * cap), "level": np.zeros(cap), "gr": np.zeros(cap),
            "tmp": np.zeros(cap), "rel": np.zeros(cap), "gain": np.zeros(cap), "peak": np.zeros(cap),
            "ramp": np.arange(1, cap + 1, dtype=np.float64), "index": np.arange(cap, dtype=np.float64),
            "ext": np.zeros(ch * (self._history + cap)), "hold": np.zeros(L - 1 + cap),
            "out": np.zeros(ch * cap, np.float32), "phases": np.zeros(ch * cap * 3), "phase_max": np.zeros(ch * cap),
        }
        self._views: dict[int, BlockViews] = {}
        self._sosfilt, self._linear_filter = compiled_filters()

        self._flat = MASTER_RENDER.flat_params()
        self.param_names = [name for name, _ in self._flat]
        self._index = {name: i for i, name in enumerate(self.param_names)}
        self._smoother = ParamSmoother(np.array([p.default for _, p in self._flat], np.float64),
                                       sample_rate=self.sample_rate, smoothing_ms=self.smoothing_ms,
                                       snap_tolerance=SNAP_TOLERANCE)
        # the smoother's own arrays (never rebound): targets, and the smoothed values at a block's end and start
        self._target, self._current, self._start = self._smoother.target, self._smoother.current, self._smoother.start
        self._pending: deque = deque()
        self._eq = slice(0, len(EQ.params))
        self._i = {name: self._index[name] for name in (
            "compressor.threshold_db", "compressor.ratio", "compressor.attack_ms", "compressor.release_ms",
            "compressor.knee_db", "compressor.makeup_db", "gain.gain_db", "limiter.ceiling_dbtp",
            "limiter.release_ms")}
        self.reference = dict(reference) if reference else None
        if params:
            self.set_params(params)
        self._designed_eq: np.ndarray | None = None
        self._sos: np.ndarray | None = None
        self._consts: tuple | None = None
        self.clipped_samples = 0
        self.reset()

    # ------------------------------------------------------------------ parameters
    def _resolve(self, path: str, value: Any) -> tuple[int, float]:
        """Validate one ``processor.param`` value; returns (index, value)."""
        proc, _, name = path.partition(".")
        if proc == "loudness" and name == "target_lufs":
            target = MASTER_BUS.param(path).validate(value, "master.loudness")
            if self.reference is None:
                raise UnknownParamError(
                    "loudness.target_lufs needs the session's solved gain as a reference; "
                    "set gain.gain_db instead (or start from a session)")
            gain = self.reference["gain_db"] + (target - self.reference["target_lufs"])
            return self._index["gain.gain_db"], GAIN.param("gain_db").validate(
                gain, f"gain for target {target:g} LUFS")
        if proc == "reverb":
            raise ReverbNotInMasterError(
                f"master parameter '{path}': the master chain has no reverb (the reverb bus is fed by "
                "track sends and is already in the mix)")
        if path not in self._index:
            raise UnknownParamError(
                f"the master chain has no parameter '{path}'; known: {', '.join(self.param_names)}, "
                "loudness.target_lufs")
        return self._index[path], MASTER_RENDER.param(path).validate(value, f"master.{proc}")

    _flatten = staticmethod(flatten_params)

    def resolve(self, path: str, value: Any) -> tuple[int, float]:
        """Validate one change without applying it: ``(index, value)`` of ``path`` set to ``value``.

        Raises:
            ParamRangeError, UnknownParamError: as :meth:`set_params` would for that change.
        """
        return self._resolve(path, value)

    def set_params(self, params: Mapping[str, Any]) -> None:
        """Set target parameters now (not from another thread while streaming: use :meth:`post`).

        Raises:
            ParamRangeError: a value out of range or not finite.
            UnknownParamError: a name that is not a master chain parameter
                (:class:`ReverbNotInMasterError` for the reverb).
        """
        resolved = [self._resolve(k, v) for k, v in self._flatten(params).items()]
        for i, v in resolved:
            self._target[i] = v

    def post(self, path: str, value: Any) -> float:
        """Validate one ``"processor.param"`` change and queue it for the next block (thread-safe).

        The audio thread applies queued changes at the start of :meth:`process`. Returns the
        validated value in real units.

        Raises:
            ParamRangeError, UnknownParamError: see :meth:`set_params`.
        """
        i, v = self._resolve(path, value)
        self._pending.append((i, v))
        return v

    @property
    def params(self) -> dict[str, dict[str, float]]:
        """The target parameters, nested, in real units (a copy)."""
        out: dict[str, dict[str, float]] = {}
        for (name, _), v in zip(self._flat, self._target):
            proc, _, p = name.partition(".")
            out.setdefault(proc, {})[p] = float(v)
        return out

    def _advance(self, n: int) -> None:
        """Move the smoothed parameters one block of ``n`` samples toward the target."""
        pending = self._pending
        while pending:
            i, v = pending.popleft()
            self._target[i] = v
        self._smoother.advance(n)

    def _update_constants(self) -> None:
        """Redesign the EQ and recompute the dynamics constants when their parameters moved."""
        cur = self._current
        eq = cur[self._eq]
        if self._designed_eq is None or not np.array_equal(eq, self._designed_eq):
            from mixbridge.plugins.rbj import eq_sections

            values = {p.name: float(v) for p, v in zip(EQ.params, eq)}
            sections = eq_sections(values, self.sample_rate)
            self._sos = np.array([np.concatenate([b, a]) for b, a in sections])
            self._designed_eq = eq.copy()
        i = self._i
        key = (cur[i["compressor.threshold_db"]], cur[i["compressor.ratio"]], cur[i["compressor.attack_ms"]],
               cur[i["compressor.release_ms"]], cur[i["compressor.knee_db"]], cur[i["limiter.ceiling_dbtp"]],
               cur[i["limiter.release_ms"]])
        if key != (self._consts[0] if self._consts else None):
            threshold, ratio, attack_ms, release_ms, knee_db, ceiling_dbtp, lim_release_ms = map(float, key)
            sr = self.sample_rate
            attack_coef = math.exp(-1.0 / (attack_ms * 1e-3 * sr))
            self._consts = (key, {
                "threshold_db": threshold,
                "slope": 1.0 - 1.0 / ratio,
                "knee_db": knee_db,
                "release_log_step": 1.0 / (release_ms * 1e-3 * sr),   # -ln(aR) per sample
                "attack_b": np.array([1.0 - attack_coef]),
                "attack_a": np.array([1.0, -attack_coef]),
                "ceiling_db": ceiling_dbtp,
                "limit_db": ceiling_dbtp - LIMITER_MARGIN_DB,
                "limiter_release_log_step": 1.0 / (lim_release_ms * 1e-3 * sr),
                "ceiling_lin": 10.0 ** (ceiling_dbtp / 20.0),
            })

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Clear every state (filters, detectors, look-ahead audio); the next parameters apply at once."""
        self._smoother.reset()
        self._eq_zi = np.zeros((self.channels, 5, 2))   # [signals, sections, 2] as _sosfilt keeps it
        self._comp_release_log = -math.inf
        self._comp_attack_zi = np.zeros(1)
        self._hist = np.zeros((self.channels, self._history))
        self._peak_prev = 0.0
        self._hold_hist = np.zeros(self.lookahead_samples - 1)
        self._lim_release_log = -math.inf
        self._box_zi = np.zeros(self.lookahead_samples - 1)
        self._pending.clear()

    # ------------------------------------------------------------------ audio
    def process(self, block: np.ndarray) -> np.ndarray:
        """Process one block ``[channels, samples]`` (any float dtype, 1..``max_block`` samples).

        Returns a float32 ``[channels, samples]`` view of a preallocated buffer, overwritten
        by the next call; the output lags the input by :attr:`latency_samples`. Non-finite
        input samples are treated as 0.

        Raises:
            AudioInputError: wrong shape or block size.
        """
        if block.ndim != 2 or block.shape[0] != self.channels:
            raise AudioInputError(f"block must be [{self.channels}, samples], got {tuple(block.shape)}")
        n = block.shape[1]
        if not 1 <= n <= self.max_block:
            raise AudioInputError(f"block of {n} samples; this master chain takes 1..{self.max_block}")
        self._advance(n)
        self._update_constants()
        return self._run(block, n)

    def prepare(self, block_sizes) -> None:
        """Make the buffer views for these block sizes now rather than on their first call."""
        for n in block_sizes:
            n = int(n)
            if not 1 <= n <= self.max_block:
                raise AudioInputError(f"block of {n} samples; this master chain takes 1..{self.max_block}")
            if n not in self._views:
                self._views[n] = BlockViews(self, n)


def render_master(audio: np.ndarray, sample_rate: int, params: Mapping[str, Any] | None = None, *,
                  compensate_latency: bool = True, chunk: int = OFFLINE_CHUNK, **kwargs: Any) -> np.ndarray:
    """Offline master of ``[channels, samples]`` audio: the streaming kernels over whole chunks.

    ``compensate_latency`` feeds :attr:`~StreamingMaster.latency_samples` zeros after the
    signal and drops as many output samples from the start, so the output lines up with
    the input. ``kwargs`` go to :class:`StreamingMaster` (``lookahead_ms``, ``reference``...).

    Returns:
        float32 ``[channels, samples]``.

    Raises:
        AudioInputError: audio that is not 2-D; see :class:`StreamingMaster` for the rest.
    """
    audio = np.asarray(audio)
    if audio.ndim != 2:
        raise AudioInputError(f"audio must be [channels, samples], got shape {audio.shape}")
    m = StreamingMaster(sample_rate, params, channels=audio.shape[0], max_block=int(chunk), **kwargs)
    pad = m.latency_samples if compensate_latency else 0
    total = audio.shape[1] + pad
    out = np.empty((audio.shape[0], total), np.float32)
    tail = np.zeros((audio.shape[0], pad), audio.dtype if audio.dtype.kind == "f" else np.float32)
    src = np.concatenate([audio, tail], axis=1) if pad else audio
    for start in range(0, total, chunk):
        stop = min(start + chunk, total)
        out[:, start:stop] = m.process(src[:, start:stop])
    return out[:, pad:] if pad else out
