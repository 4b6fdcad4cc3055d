"""The torch-free streaming runtime: run an exported proxy block by block.

This module imports only numpy, onnxruntime and mixbridge's stdlib-only core —
never torch — so a real-time host (the live bus) can use it.

:class:`StreamingSession` streams an ONNX artifact:

* ``process(block [channels, samples], params=None) -> [channels, samples]``
  keeps the model's layer states between calls; any block size from 1 to 4096.
  The output lags the input by ``latency_samples``.
* ``reset()`` zeroes the states and the parameter smoother (clears tails).
* **Hot path without allocation:** per block size, input, output, parameter and
  two ping-pong state buffers are allocated once (on the first call at that
  size, or up front with :meth:`prepare`) and bound to onnxruntime with
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
  offline model. After :meth:`reset` the first parameters apply at once.
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
        self._smoother = ParamSmoother(np.array([p.to_normalised(p.default) for _, p in self._params], np.float32),
                                       sample_rate=self.sample_rate, smoothing_ms=self.smoothing_ms)
        # the smoother's arrays (never rebound): set_params writes targets; the smoothed values at a block's end
        self._target, self._current = self._smoother.target, self._smoother.current
        self._p_start = np.zeros((self.batch, n), np.float32)
        self._p_end = np.zeros((self.batch, n), np.float32)

    # -------------------------------------------------------------- parameters
    def set_params(self, params: Any) -> None:
        """Set the target parameters.

        ``params`` is either a normalised vector (``n_params`` floats in 0..1, in
        :attr:`param_names` order) or a mapping in real units, flat
        (``{"compressor.threshold_db": -20}``) or nested
        (``{"compressor": {"threshold_db": -20}}``); a mapping may be partial.

        Raises:
            ParamRangeError: wrong length, a value out of range or not finite.
            UnknownParamError: a name that is not one of :attr:`param_names`.
        """
        if isinstance(params, Mapping):
            from mixbridge.schema import flatten_params

            flat = flatten_params(params)
            index = {name: i for i, name in enumerate(self.param_names)}
            for key, value in flat.items():
                if key not in index:
                    raise UnknownParamError(
                        f"this model has no parameter '{key}'; known: {', '.join(self.param_names)}")
                p = self._params[index[key]][1]
                self._target[index[key]] = p.to_normalised(p.validate(value, key.split(".")[0]))
            return
        vec = np.asarray(params, dtype=np.float64).reshape(-1)
        if vec.size != self._target.size:
            raise ParamRangeError(f"expected {self._target.size} normalised parameters "
                                  f"({', '.join(self.param_names)}), got {vec.size}")
        bad = np.flatnonzero(~(np.isfinite(vec) & (vec >= 0.0) & (vec <= 1.0)))
        if bad.size:
            i = int(bad[0])
            raise ParamRangeError(f"normalised {self.param_names[i]} = {vec[i]} is outside [0, 1]")
        self._target[:] = vec

    @property
    def params(self) -> np.ndarray:
        """The current target parameters, normalised (a copy)."""
        return self._target.copy()

    def _advance_params(self, n: int) -> None:
        """Fill ``_p_start``/``_p_end`` for a block of ``n`` samples (no allocation once warm)."""
        self._smoother.advance(n)
        self._p_start[:] = self._smoother.start
        self._p_end[:] = self._smoother.current

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
        with the same block size.

        Raises:
            AudioInputError: wrong channel count or a block size outside 1..4096.
            ParamRangeError, UnknownParamError: see :meth:`set_params`.
        """
        if params is not None:
            self.set_params(params)
        n = self._check_block(block)
        self._advance_params(n)
        return self._step(block, n)

    def render(self, audio: np.ndarray, params: Any = None, chunk: int = 4096,
               compensate_latency: bool = False) -> np.ndarray:
        """Render a whole ``[channels, samples]`` signal from a reset state in ``chunk``-sample calls.

        ``compensate_latency`` feeds ``latency_samples`` zeros after the signal and
        drops the first ``latency_samples`` output samples, so the output lines up
        with the input. The session is reset before and after.
        """
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 2 or audio.shape[0] != self.channels:
            raise AudioInputError(f"audio must be [{self.channels}, samples], got {tuple(audio.shape)}")
        chunk = int(min(max(chunk, self.min_block), self.max_block))
        self.reset()
        if params is not None:
            self.set_params(params)
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
        """Stream the artifact's golden input in ``block_size`` blocks from a reset state;
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
        saved = self._target.copy()
        out = self.render(x, p, chunk=block_size)
        self._target[:] = saved
        err = float(np.max(np.abs(out - y)))
        if not err <= GOLDEN_TOLERANCE:
            raise ArtifactError(f"{self.artifact.path}: streamed golden output differs from the torch output by "
                                f"{err:.3g} (> {GOLDEN_TOLERANCE}); the artifact does not match its model")
        return err

    def reset(self) -> None:
        """Zero every layer state and restart the parameter smoother (tails are cleared)."""
        self._smoother.reset()
        self._reset_state()

    # subclasses
    def _reset_state(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _step(self, block: np.ndarray, n: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class _Buffers:
    """Per-block-size input/output buffers and the two ping-pong IOBindings."""

    __slots__ = ("audio", "output", "bindings", "out_view", "in_view")
    audio: np.ndarray
    output: np.ndarray
    bindings: list[Any]
    out_view: np.ndarray
    in_view: np.ndarray


class StreamingSession(SessionBase):
    """Stream an ONNX artifact with onnxruntime (see the module docstring).

    Args:
        artifact: an :class:`Artifact` or an artifact folder.
        provider: onnxruntime execution provider; ``None`` picks CUDA when available, else CPU.
        num_threads: onnxruntime intra-op threads (1 for an audio thread).
        channels: audio channels of the blocks (default: the model's ``n_inputs``).
        smoothing_ms: parameter smoothing time constant in ms (0 = a linear ramp over one block).

    Raises:
        ArtifactError: see :func:`~mixbridge.export.artifact.load_artifact`; or a
            TorchScript artifact.
        BackendUnavailableError: the requested provider is missing.
    """

    def __init__(self, artifact: Artifact | str | Path, provider: str | None = None, num_threads: int = 1,
                 channels: int | None = None, smoothing_ms: float = DEFAULT_SMOOTHING_MS) -> None:
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
        in_shape = [self.batch] + list(io["input_state_shape"])
        hid_shape = [self.batch] + list(io["hidden_state_shape"])
        self._states = [(np.zeros(in_shape, np.float32), np.zeros(hid_shape, np.float32)) for _ in range(2)]
        ov = ort.OrtValue.ortvalue_from_numpy
        self._state_values = [(ov(a), ov(b)) for a, b in self._states]
        self._p_start_value = ov(self._p_start)
        self._p_end_value = ov(self._p_end)
        self._parity = 0
        self._buffers: dict[int, _Buffers] = {}

    def prepare(self, block_sizes) -> None:
        """Allocate and bind buffers for these block sizes now, not on their first call."""
        for n in block_sizes:
            self._buffers_for(int(n))

    def _buffers_for(self, n: int) -> _Buffers:
        buf = self._buffers.get(n)
        if buf is not None:
            return buf
        ov = self._ort.OrtValue.ortvalue_from_numpy
        buf = _Buffers()
        buf.audio = np.zeros((self.batch, self.n_inputs, n), np.float32)
        buf.output = np.zeros((self.batch, self.n_outputs, n), np.float32)
        audio_v, out_v = ov(buf.audio), ov(buf.output)
        buf.bindings = []
        for parity in (0, 1):
            b = self.session.io_binding()
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
        self._buffers[n] = buf
        return buf

    def _step(self, block: np.ndarray, n: int) -> np.ndarray:
        buf = self._buffers_for(n)
        np.copyto(buf.in_view, block, casting="same_kind")
        self.session.run_with_iobinding(buf.bindings[self._parity])
        self._parity ^= 1
        return buf.out_view

    def _reset_state(self) -> None:
        for a, b in self._states:
            a.fill(0.0)
            b.fill(0.0)
        self._parity = 0
