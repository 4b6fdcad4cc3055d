"""The torch-free streaming runtime: run an exported proxy block by block.

This module imports only numpy, onnxruntime and mixbridge's stdlib-only core —
never torch — so a real-time host (the live bus) can use it.

:class:`StreamingSession` streams an ONNX artifact:

* ``process(block [channels, samples], params=None) -> [channels, samples]``
  keeps the model's layer states between calls; any block size from 1 to 4096.
  The output lags the input by ``latency_samples``.
* ``reset()`` restarts the parameter smoother and sets the states to the *warm state*
  (clears tails): the state the network reaches on silence at the parameters of the last
  :meth:`~SessionBase.warm` (run at construction, by :meth:`~StreamingSession.prepare`
  and by ``render``, outside the audio thread), not the zero state, from which a trained
  network thumps over its first receptive field (-25.8 dBFS for the shipped compressors).
* **Silence in, silence out:** a trained network's biases also make it output a DC level
  on silence (-57 to -65 dBFS for the shipped compressors). Each block therefore also
  runs the graph on silence, from the same state history and with the same parameter
  ramp (one batch item, its own ``IOBinding``), and subtracts that *silence response*: the output is ``f(x) - f(0)``,
  exactly 0 for silence from the first block after a reset, with no DC, whatever the
  parameters do. Once they have held still for a receptive field, the silence response
  is a constant (the network's memory is finite), so it is kept and the second run stops
  until they move again. ``verify`` runs the raw graph (zero state, no subtraction),
  which is what the golden pair records.
* **Guards** (each counted, nothing raised, nothing allocated): an input block with a
  sample that is NaN, infinite or beyond :data:`GUARD_LIMIT` (+60 dBFS: not audio, and
  enough to overflow the network's float32 state) is replaced by silence for that block
  (``nonfinite_input_blocks``); an output block like that is replaced by silence and the
  session re-arms itself (warm state, ``nonfinite_output_blocks`` and ``rearms``), so one
  bad block costs that block only and never disables the proxy. A block that passes has
  a finite float32 sum, the test the live bus applies to the proxy's output.
* **Trained ranges:** values inside the schema range but outside the range the model was
  trained on (``Artifact.trained_ranges``; the builtin compressor proxies saw knee 0 dB
  only) are clamped to it and counted per parameter in ``clamped``; ``set_params`` returns
  how many it clamped.
* **Hot path without allocation:** per block size, input, output, parameter and
  two ping-pong state buffers (of the model run and of the silence run) are allocated
  once (on the first call at that size, or up front with :meth:`prepare`) and bound to
  onnxruntime with
  ``IOBinding``, so a call copies the block in, runs the graph and returns a view
  of a preallocated output buffer (valid until the next call with that size —
  copy it to keep it). Passing ``params`` as a mapping converts through the schema
  and allocates; set them with :meth:`set_params` outside the audio thread.
* **Parameter smoothing:** each block, the smoothed parameters move from their
  value at the block start toward the target as a one-pole low-pass with time
  constant ``smoothing_ms`` (default 20 ms: 63 % of a change in 20 ms, 99 % in
  92 ms), ``p_end = target + (p_start - target) * exp(-T / (tau * sample_rate))``,
  and the graph ramps its FiLM coefficients linearly from ``p_start`` to ``p_end``
  across the block's ``T`` samples. The conditioning is therefore continuous
  sample to sample: no zipper steps. With constant parameters it is exactly the
  offline model (run after silence, minus its silence response). After :meth:`reset`
  the first parameters apply at once. The glide lands on its target exactly.
* **Providers:** ``provider=None`` picks ``CUDAExecutionProvider`` when
  onnxruntime-gpu sees a GPU, else ``CPUExecutionProvider``; ``num_threads``
  sets onnxruntime's intra-op threads (1 for an audio thread).
* ``render(audio, params, chunk=4096)`` renders a whole signal by reusing the
  streaming step in large chunks (DESIGN.md §4: 3.7x faster than one call).

Mono models (``n_inputs == 1``) process each channel independently (channels
become the batch); a model with ``n_inputs == channels`` takes them together.
:class:`~mixbridge.export.torchscript.TorchScriptSession` offers the same interface on a
TorchScript artifact (a module of its own, so this one never names torch), and
:func:`~mixbridge.export.torchscript.open_session` picks whichever fits an artifact.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mixbridge.errors import AudioInputError, BackendUnavailableError, ParamRangeError, UnknownParamError
from mixbridge.proxy_schema import schema_params
from mixbridge.smoothing import ParamSmoother

from .artifact import GOLDEN_TOLERANCE, Artifact, ArtifactError, load_artifact

#: Default time constant of the parameter smoother.
DEFAULT_SMOOTHING_MS = 20.0
#: Largest magnitude of an input or output sample the runtime passes (+60 dBFS): 48 dB above
#: the +12 dBFS the live bus is tested with; a block beyond it is a fault, replaced by silence.
GUARD_LIMIT = 1000.0
#: Block size of the warm-up run on silence (the largest block streams fastest).
WARM_BLOCK = 4096


def select_provider(provider: str | None = None) -> str:
    """``provider`` if onnxruntime offers it; by default CUDA when available, else CPU.

    Raises:
        BackendUnavailableError: an explicitly requested provider is not available.
    """
    import onnxruntime as ort

    available = ort.get_available_providers()
    if provider is None:
        return "CUDAExecutionProvider" if "CUDAExecutionProvider" in available else "CPUExecutionProvider"
    if provider not in available:
        raise BackendUnavailableError(
            f"onnxruntime provider '{provider}' is not available; available: {', '.join(available)}")
    return provider


class SessionBase:
    """Parameters, smoothing, channel mapping and chunked rendering shared by both runtimes.

    Subclasses (:class:`StreamingSession`, :class:`~mixbridge.export.torchscript.TorchScriptSession`)
    implement ``_step(block, n)`` and ``_reset_state()``.

    Args:
        artifact: an :class:`Artifact` or an artifact folder.
        channels: audio channels of the blocks (default: the model's ``n_inputs``).
        smoothing_ms: parameter smoothing time constant in ms (>= 0, finite).
        expected_format: the artifact format the subclass runs (``"onnx"``, ``"torchscript"``).

    Raises:
        ArtifactError: the artifact is of another format, or does not load.
        AudioInputError: a channel count the model cannot run.
        ParamRangeError: a negative or non-finite ``smoothing_ms``.
    """

    def __init__(self, artifact: Artifact | str | Path, channels: int | None,
                 smoothing_ms: float, expected_format: str) -> None:
        self.artifact = artifact if isinstance(artifact, Artifact) else load_artifact(artifact)
        if self.artifact.format != expected_format:
            other = ("StreamingSession" if self.artifact.format == "onnx"
                     else "mixbridge.export.torchscript.TorchScriptSession")
            raise ArtifactError(f"{self.artifact.path}: a {self.artifact.format} artifact; use {other}")
        side = self.artifact.sidecar
        self.sample_rate = self.artifact.sample_rate
        self.latency_samples = self.artifact.latency_samples
        self.receptive_field = self.artifact.receptive_field
        self.min_block, self.max_block = self.artifact.block_sizes
        self.n_inputs, self.n_outputs = self.artifact.n_inputs, self.artifact.n_outputs
        self.channels = int(channels if channels is not None else self.n_inputs)
        if self.n_inputs == 1:
            self.batch = self.channels
        elif self.channels == self.n_inputs:
            self.batch = 1
        else:
            raise AudioInputError(f"the model takes {self.n_inputs} channels together; got channels={self.channels}")
        if self.batch > 1 and self.n_outputs != 1:
            raise AudioInputError("a mono-in model with several outputs cannot run per channel")
        self.out_channels = self.channels if self.n_inputs == 1 else self.n_outputs
        if not (smoothing_ms >= 0 and math.isfinite(smoothing_ms)):
            raise ParamRangeError(f"smoothing_ms = {smoothing_ms} must be a finite value >= 0 ms")
        self.smoothing_ms = float(smoothing_ms)
        self._params = schema_params(side["schema"]["entries"])
        self.param_names = [n for n, _ in self._params]
        n = len(self.param_names)
        ranges = self.artifact.trained_ranges
        #: ``{name: (u_lo, u_hi)}``, the normalised range each parameter was trained on.
        self.trained_ranges = {name: ranges[name] for name in self.param_names}
        self._lo = np.array([ranges[name][0] for name in self.param_names], np.float64)
        self._hi = np.array([ranges[name][1] for name in self.param_names], np.float64)
        defaults = np.array([p.to_normalised(p.default) for _, p in self._params], np.float64)
        # a default outside the trained range starts at its nearest trained value (not counted: no one asked)
        self._smoother = ParamSmoother(np.clip(defaults, self._lo, self._hi).astype(np.float32),
                                       sample_rate=self.sample_rate, smoothing_ms=self.smoothing_ms)
        # the smoother's arrays (never rebound): set_params writes targets; the smoothed values at a block's end
        self._target, self._current = self._smoother.target, self._smoother.current
        self._p_start = np.zeros((self.batch, n), np.float32)
        self._p_end = np.zeros((self.batch, n), np.float32)
        # the silence run: one batch item, same parameters
        self._p_start1 = np.zeros((1, n), np.float32)
        self._p_end1 = np.zeros((1, n), np.float32)
        #: Values clamped into their trained range since the session was made, per parameter name.
        self.clamped: dict[str, int] = {}
        #: Input blocks replaced by silence (a sample NaN, infinite or beyond GUARD_LIMIT).
        self.nonfinite_input_blocks = 0
        #: Output blocks replaced by silence (a sample NaN, infinite or beyond GUARD_LIMIT); each re-armed.
        self.nonfinite_output_blocks = 0
        #: Times the session re-armed itself (states set to the warm state) after such an output.
        self.rearms = 0
        self._raw = False           # verify(): the bare graph, as the golden pair records it
        self._ref_still = 0         # samples the silence run has seen with constant parameters
        self._ref_frozen = False    # its response is a constant: kept in _dc, the run skipped
        self._dc = np.zeros((self.out_channels if self.n_inputs > 1 else 1, 1), np.float32)
        self._silent_in = np.zeros((self.channels, self.max_block), np.float32)
        self._warm_state: tuple[np.ndarray, ...] | None = None  # batch-1 states, from warm()
        self._warm_key: bytes | None = None  # the target parameters they were made at
        self._untouched = True  # no block since the last reset
        #: The exporter recorded that silence in gives exactly 0 out from rest (the grey-box DSP): no silence run.
        self._silent_at_rest = bool(side["io"].get("silent_at_rest", False))

    # -------------------------------------------------------------- parameters
    def set_params(self, params: Any) -> int:
        """Set the target parameters.

        ``params`` is either a normalised vector (``n_params`` floats in 0..1, in
        :attr:`param_names` order) or a mapping in real units, flat
        (``{"compressor.threshold_db": -20}``) or nested
        (``{"compressor": {"threshold_db": -20}}``); a mapping may be partial.

        Values inside the schema range but outside :attr:`trained_ranges` are clamped to
        the trained range and counted in :attr:`clamped`. Nothing is applied when a value
        is refused. Returns how many values this call clamped.

        Raises:
            ParamRangeError: wrong length, a value out of range or not finite.
            UnknownParamError: a name that is not one of :attr:`param_names`.
        """
        if isinstance(params, Mapping):
            from mixbridge.schema import flatten_params

            flat = flatten_params(params)
            index = {name: i for i, name in enumerate(self.param_names)}
            updates = []
            for key, value in flat.items():
                if key not in index:
                    raise UnknownParamError(
                        f"this model has no parameter '{key}'; known: {', '.join(self.param_names)}")
                p = self._params[index[key]][1]
                updates.append((index[key], p.to_normalised(p.validate(value, key.split(".")[0]))))
            return sum(self._set_target(i, u) for i, u in updates)
        vec = np.asarray(params, dtype=np.float64).reshape(-1)
        if vec.size != self._target.size:
            raise ParamRangeError(f"expected {self._target.size} normalised parameters "
                                  f"({', '.join(self.param_names)}), got {vec.size}")
        bad = np.flatnonzero(~(np.isfinite(vec) & (vec >= 0.0) & (vec <= 1.0)))
        if bad.size:
            i = int(bad[0])
            raise ParamRangeError(f"normalised {self.param_names[i]} = {vec[i]} is outside [0, 1]")
        return sum(self._set_target(i, float(u)) for i, u in enumerate(vec))

    def _set_target(self, i: int, u: float) -> int:
        """Write normalised ``u`` (in 0..1) as target ``i``, clamped to its trained range; 1 if clamped."""
        lo, hi = float(self._lo[i]), float(self._hi[i])
        if lo <= u <= hi:
            self._target[i] = u
            return 0
        self._target[i] = min(max(u, lo), hi)
        name = self.param_names[i]
        self.clamped[name] = self.clamped.get(name, 0) + 1
        return 1

    @property
    def clamped_total(self) -> int:
        """Values clamped into their trained range since the session was made."""
        return sum(self.clamped.values())

    @property
    def params(self) -> np.ndarray:
        """The current target parameters, normalised (a copy)."""
        return self._target.copy()

    def _advance_params(self, n: int) -> None:
        """Fill ``_p_start``/``_p_end`` for a block of ``n`` samples (no allocation once warm)."""
        self._smoother.advance(n)
        self._p_start[:] = self._smoother.start
        self._p_end[:] = self._smoother.current
        self._p_start1[:] = self._smoother.start
        self._p_end1[:] = self._smoother.current

    # -------------------------------------------------------------- audio
    def _check_block(self, block: np.ndarray) -> int:
        if block.ndim != 2 or block.shape[0] != self.channels:
            raise AudioInputError(f"block must be [{self.channels}, samples], got {tuple(block.shape)}")
        n = block.shape[1]
        if not self.min_block <= n <= self.max_block:
            raise AudioInputError(f"block of {n} samples; this artifact streams {self.min_block}..{self.max_block}")
        return n

    def process(self, block: np.ndarray, params: Any = None) -> np.ndarray:
        """Process one block ``[channels, samples]`` float32; returns ``[out_channels, samples]``.

        The returned array is a preallocated buffer, overwritten by the next call
        with the same block size. It is the model's response minus its response to
        silence (see the module docstring), always finite: a non-finite input block is
        processed as silence, a non-finite output block becomes silence and re-arms
        the session (both counted).

        Raises:
            AudioInputError: wrong channel count or a block size outside 1..4096.
            ParamRangeError, UnknownParamError: see :meth:`set_params`.
        """
        if params is not None:
            self.set_params(params)
        n = self._check_block(block)
        if not _within_guard(block):
            self.nonfinite_input_blocks += 1
            block = self._silent_in[:, :n]
        self._untouched = False
        self._advance_params(n)
        y = self._step(block, n)
        if not self._raw:
            self._subtract_silence(y, n)
        if not _within_guard(y):
            y.fill(0.0)
            self.nonfinite_output_blocks += 1
            self.rearms += 1
            self._reset_streams()
        return y

    def _subtract_silence(self, y: np.ndarray, n: int) -> None:
        """``y -= f(0)``: the silence run's output for this block, or its kept constant (nothing for
        a model whose sidecar says ``io.silent_at_rest``: its output on silence is exactly 0)."""
        if self._silent_at_rest:
            return
        if self._ref_frozen and self._smoother.settled:
            y -= self._dc
            return
        self._ref_frozen = False
        ref = self._ref_step(n)
        y -= ref
        self._ref_still = self._ref_still + n if self._smoother.settled else 0
        if self._ref_still >= self.receptive_field:
            # constant parameters for a receptive field: the silence run's state is its fixed point
            self._dc[:, 0] = ref[:, n - 1]
            self._ref_frozen = True

    def render(self, audio: np.ndarray, params: Any = None, chunk: int = 4096,
               compensate_latency: bool = False) -> np.ndarray:
        """Render a whole ``[channels, samples]`` signal from a reset state in ``chunk``-sample calls
        (warmed at ``params`` first, so the output is what a stream that had seen silence gives).

        ``compensate_latency`` feeds ``latency_samples`` zeros after the signal and
        drops the first ``latency_samples`` output samples, so the output lines up
        with the input. The session is reset before and after.
        """
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 2 or audio.shape[0] != self.channels:
            raise AudioInputError(f"audio must be [{self.channels}, samples], got {tuple(audio.shape)}")
        chunk = int(min(max(chunk, self.min_block), self.max_block))
        if params is not None:
            self.set_params(params)
        self.warm()
        self.reset()
        pad = self.latency_samples if compensate_latency else 0
        total = audio.shape[1] + pad
        src = audio if pad == 0 else np.concatenate([audio, np.zeros((self.channels, pad), np.float32)], axis=1)
        out = np.empty((self.out_channels, total), np.float32)
        for start in range(0, total, chunk):
            stop = min(start + chunk, total)
            out[:, start:stop] = self.process(src[:, start:stop])
        self.reset()
        return out[:, pad:] if pad else out

    def verify(self, block_size: int = 100) -> float:
        """Stream the artifact's golden input in ``block_size`` blocks from a reset state
        through the raw graph (no silence subtraction, the golden parameters unclamped);
        returns the max absolute error against the torch golden output. The session
        is reset afterwards (its target parameters are kept).

        Raises:
            ArtifactError: the error exceeds ``GOLDEN_TOLERANCE`` (1e-5).
        """
        g = self.artifact.golden()
        x, p, y = g["input"][0], g["params"][0], g["output"][0]
        if self.n_inputs == 1:
            x = np.repeat(x, self.channels, axis=0)
            y = np.repeat(y, self.channels, axis=0)
        block_size = int(min(max(block_size, self.min_block), self.max_block))
        saved = self._target.copy()
        self._raw = True
        try:
            self.reset()
            self._target[:] = np.asarray(p, np.float32).reshape(-1)  # the golden parameters, unclamped
            out = np.concatenate([self.process(x[:, i:i + block_size]).copy()
                                  for i in range(0, x.shape[1], block_size)], axis=1)
        finally:
            self._raw = False
            self.reset()
            self._target[:] = saved
        err = float(np.max(np.abs(out - y)))
        if not err <= GOLDEN_TOLERANCE:
            raise ArtifactError(f"{self.artifact.path}: streamed golden output differs from the torch output by "
                                f"{err:.3g} (> {GOLDEN_TOLERANCE}); the artifact does not match its model")
        return err

    def reset(self) -> None:
        """Set every layer state to the warm state and restart the parameter smoother (tails
        are cleared; no allocation, so the audio thread may call it)."""
        self._smoother.reset()
        self._reset_streams()

    def warm(self) -> None:
        """Compute the warm state: the network's state after a receptive field of silence at the
        current target parameters (a separate run; the stream is not touched). If no block has
        run since the last reset, the stream starts from it. Allocates: call it outside the
        audio thread, after setting the parameters (``prepare`` and ``render`` call it)."""
        key = self._target.tobytes()
        if key == self._warm_key and self._warm_state is not None:
            return
        self._warm_state = self._warm_run(self._target.reshape(1, -1).copy(), self.receptive_field)
        self._warm_key = key
        if self._untouched:
            self._reset_streams()

    def _reset_streams(self) -> None:
        self._reset_state(None if self._raw else self._warm_state)
        self._ref_still = 0
        self._ref_frozen = False
        self._untouched = True

    # subclasses
    def _reset_state(self, warm: tuple[np.ndarray, ...] | None) -> None:  # pragma: no cover - abstract
        """Set the states of the model run and of the silence run to ``warm`` (batch-1 arrays,
        broadcast over the batch), or to zero when it is None."""
        raise NotImplementedError

    def _warm_run(self, params: np.ndarray, samples: int) -> tuple[np.ndarray, ...]:  # pragma: no cover
        """The batch-1 states after at least ``samples`` of silence at ``params [1, n_params]``
        from a zero state, as new arrays."""
        raise NotImplementedError

    def _step(self, block: np.ndarray, n: int) -> np.ndarray:  # pragma: no cover - abstract
        """Run the model on ``block``; ``[out_channels, n]``, a buffer the caller may modify."""
        raise NotImplementedError

    def _ref_step(self, n: int) -> np.ndarray:  # pragma: no cover - abstract
        """Run the silence run on ``n`` zeros; ``[1 or n_outputs, n]`` (mono models: 1 row)."""
        raise NotImplementedError


def _within_guard(x: np.ndarray) -> bool:
    """True when every sample of ``x`` is finite and within +-:data:`GUARD_LIMIT` (two reductions,
    no allocation; NaN fails both comparisons)."""
    return bool(x.max() <= GUARD_LIMIT) and bool(x.min() >= -GUARD_LIMIT)


class _Buffers:
    """Per-block-size input/output buffers and the two ping-pong IOBindings of one run."""

    __slots__ = ("audio", "output", "bindings", "out_view", "in_view")
    audio: np.ndarray
    output: np.ndarray
    bindings: list[Any]
    out_view: np.ndarray
    in_view: np.ndarray


class _OrtRun:
    """One stream through the graph: its batch, its ping-pong states and its per-size buffers."""

    def __init__(self, ort: Any, session: Any, batch: int, n_inputs: int, n_outputs: int,
                 state_shapes: tuple[list[int], list[int]], p_start: np.ndarray, p_end: np.ndarray) -> None:
        self._ort, self._session = ort, session
        self.batch, self.n_inputs, self.n_outputs = batch, n_inputs, n_outputs
        ov = ort.OrtValue.ortvalue_from_numpy
        self.states = [(np.zeros([batch] + state_shapes[0], np.float32),
                        np.zeros([batch] + state_shapes[1], np.float32)) for _ in range(2)]
        self._state_values = [(ov(a), ov(b)) for a, b in self.states]
        self._p_start_value, self._p_end_value = ov(p_start), ov(p_end)
        self._keep = (p_start, p_end)
        self.parity = 0
        self.buffers: dict[int, _Buffers] = {}

    def buffers_for(self, n: int) -> _Buffers:
        buf = self.buffers.get(n)
        if buf is not None:
            return buf
        ov = self._ort.OrtValue.ortvalue_from_numpy
        buf = _Buffers()
        buf.audio = np.zeros((self.batch, self.n_inputs, n), np.float32)
        buf.output = np.zeros((self.batch, self.n_outputs, n), np.float32)
        audio_v, out_v = ov(buf.audio), ov(buf.output)
        buf.bindings = []
        for parity in (0, 1):
            b = self._session.io_binding()
            src, dst = self._state_values[parity], self._state_values[1 - parity]
            b.bind_ortvalue_input("audio", audio_v)
            b.bind_ortvalue_input("params_start", self._p_start_value)
            b.bind_ortvalue_input("params_end", self._p_end_value)
            b.bind_ortvalue_input("input_state", src[0])
            b.bind_ortvalue_input("hidden_state", src[1])
            b.bind_ortvalue_output("output", out_v)
            b.bind_ortvalue_output("input_state_out", dst[0])
            b.bind_ortvalue_output("hidden_state_out", dst[1])
            buf.bindings.append(b)
        # keep the OrtValues alive with the buffers
        buf.bindings.append((audio_v, out_v))
        if self.n_inputs == 1:
            buf.in_view = buf.audio[:, 0, :]
            buf.out_view = buf.output[:, 0, :]
        else:
            buf.in_view = buf.audio[0]
            buf.out_view = buf.output[0]
        self.buffers[n] = buf
        return buf

    def run(self, buf: _Buffers) -> np.ndarray:
        self._session.run_with_iobinding(buf.bindings[self.parity])
        self.parity ^= 1
        return buf.out_view

    def reset(self, warm: tuple[np.ndarray, ...] | None) -> None:
        a, b = self.states[0]
        if warm is None:
            a.fill(0.0)
            b.fill(0.0)
        else:
            np.copyto(a, warm[0])  # [1, ...] broadcast over the batch
            np.copyto(b, warm[1])
        self.parity = 0


class StreamingSession(SessionBase):
    """Stream an ONNX artifact with onnxruntime (see the module docstring).

    Args:
        artifact: an :class:`Artifact` or an artifact folder.
        provider: onnxruntime execution provider; ``None`` picks CUDA when available, else CPU.
        num_threads: onnxruntime intra-op threads (1 for an audio thread).
        channels: audio channels of the blocks (default: the model's ``n_inputs``).
        smoothing_ms: parameter smoothing time constant in ms (0 = a linear ramp over one block).
        dsp: a grey-box artifact's CPU path (:mod:`~mixbridge.export.greybox_dsp`: its control graph plus
            the numpy reference DSP in place on preallocated buffers: 5x (compressor) to 20x (EQ -> compressor)
            cheaper than the block graph): None (default) uses it on
            the CPU provider, True always, False never (the block graph runs).

    Raises:
        ArtifactError: see :func:`~mixbridge.export.artifact.load_artifact`; a
            TorchScript artifact; or state shapes in the sidecar that the graph does not have.
        BackendUnavailableError: the requested provider is missing.
    """

    def __init__(self, artifact: Artifact | str | Path, provider: str | None = None, num_threads: int = 1,
                 channels: int | None = None, smoothing_ms: float = DEFAULT_SMOOTHING_MS,
                 dsp: bool | None = None) -> None:
        import onnxruntime as ort

        super().__init__(artifact, channels, smoothing_ms, "onnx")
        self._ort = ort
        self.provider = select_provider(provider)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(num_threads)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # decaying tails in the layer states reach denormal floats, which are 10-100x slower
        # on x86; flush them to zero (a change below 1e-38, far under any audible level)
        opts.add_session_config_entry("session.set_denormal_as_zero", "1")
        try:
            self.session = ort.InferenceSession(str(self.artifact.model_path), opts, providers=[self.provider])
        except Exception as e:  # onnxruntime raises its own exception types
            raise ArtifactError(f"{self.artifact.model_path}: onnxruntime cannot load the model ({e})") from None
        io = self.artifact.sidecar["io"]
        shapes = (list(io["input_state_shape"]), list(io["hidden_state_shape"]))
        graph = {i.name: i.shape for i in self.session.get_inputs()}
        for name, shape in zip(("input_state", "hidden_state"), shapes):
            declared = graph.get(name)
            if declared is None or len(declared) != len(shape) + 1 or any(
                    isinstance(d, int) and d != s for d, s in zip(declared[1:], shape)):
                raise ArtifactError(f"{self.artifact.path}: io.{name}_shape {shape} does not match the graph's "
                                    f"{name} {declared}; re-export the artifact")
        self._main = _OrtRun(ort, self.session, self.batch, self.n_inputs, self.n_outputs, shapes,
                             self._p_start, self._p_end)
        self._silence = _OrtRun(ort, self.session, 1, self.n_inputs, self.n_outputs, shapes,
                                self._p_start1, self._p_end1)
        self._shapes = shapes
        side = self.artifact.sidecar
        if dsp and "dsp" not in side:
            raise ArtifactError(f"{self.artifact.path}: dsp=True, but the artifact has no DSP path "
                                "(grey-box proxies have one)")
        #: The grey-box CPU path (:class:`~mixbridge.export.greybox_dsp.GreyBoxDSP`), or None: the graph runs.
        self.dsp = None
        if "dsp" in side and (dsp or (dsp is None and self.provider == "CPUExecutionProvider")):
            from .greybox_dsp import GreyBoxDSP

            self.dsp = GreyBoxDSP(self.artifact.path, side, self.batch, self.n_inputs, self.sample_rate,
                                  max_block=self.max_block)
        # the DSP path's output buffer, for the largest block; views per block size (see prepare)
        self._dsp_buffer = np.zeros(self.batch * self.n_outputs * self.max_block if self.dsp else 0, np.float32)
        self._dsp_out: dict[int, np.ndarray] = {}
        self.warm()

    def prepare(self, block_sizes) -> None:
        """Allocate and bind buffers for these block sizes now, not on their first call, and
        :meth:`warm` the state at the current parameters (outside the audio thread)."""
        for n in block_sizes:
            self._main.buffers_for(int(n))
            self._silence.buffers_for(int(n))
            if self.dsp is not None:
                self.dsp.prepare([int(n)])  # raises AudioInputError beyond max_block
                self._dsp_out_for(int(n))
        self.warm()

    def _dsp_out_for(self, n: int) -> np.ndarray:
        """The DSP path's ``[batch, n_outputs, n]`` output view for blocks of ``n`` (made once per size)."""
        out = self._dsp_out.get(n)
        if out is None:
            out = self._dsp_out[n] = self._dsp_buffer[:self.batch * self.n_outputs * n].reshape(
                self.batch, self.n_outputs, n)
        return out

    def _warm_run(self, params: np.ndarray, samples: int) -> tuple[np.ndarray, ...]:
        if self._silent_at_rest:  # silence leaves such a model at rest: its warm state is the zero state
            return tuple(np.zeros([1] + shape, np.float32) for shape in self._shapes)
        p = params.astype(np.float32)
        run = _OrtRun(self._ort, self.session, 1, self.n_inputs, self.n_outputs, self._shapes, p, p.copy())
        run.reset(None)
        block = min(WARM_BLOCK, self.max_block)
        buf = run.buffers_for(block)
        for _ in range(-(-samples // block)):
            run.run(buf)
        a, b = run.states[run.parity]
        return a.copy(), b.copy()

    def _step(self, block: np.ndarray, n: int) -> np.ndarray:
        if self.dsp is not None:
            out = self._dsp_out_for(n)
            self.dsp.process(block.reshape(self.batch, self.n_inputs, n), self._p_end[0], out)
            return out.reshape(self.out_channels, n)
        buf = self._main.buffers_for(n)
        np.copyto(buf.in_view, block, casting="same_kind")
        return self._main.run(buf)

    def _ref_step(self, n: int) -> np.ndarray:
        return self._silence.run(self._silence.buffers_for(n))  # its audio buffer stays zero

    def _reset_state(self, warm: tuple[np.ndarray, ...] | None) -> None:
        self._main.reset(warm)
        self._silence.reset(warm)
        dsp = getattr(self, "dsp", None)
        if dsp is not None:
            dsp.reset()
