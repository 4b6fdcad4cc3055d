"""The TorchScript streaming session (libtorch) and :func:`open_session`, either runtime by format.

:class:`TorchScriptSession` has the interface of
:class:`~mixbridge.export.runtime.StreamingSession` (``process``, ``render``, ``reset``,
``verify``, parameter smoothing) on a TorchScript artifact. It lives apart from the
torch-free runtime so that :mod:`mixbridge.export.runtime` (which the live bridge uses)
never names torch; torch itself is imported only when a session is constructed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mixbridge.errors import BackendUnavailableError

from .artifact import Artifact, ArtifactError, load_artifact
from .runtime import DEFAULT_SMOOTHING_MS, WARM_BLOCK, SessionBase, StreamingSession


class TorchScriptSession(SessionBase):
    """Stream a TorchScript artifact with libtorch (torch is imported here, lazily).

    Same interface as :class:`StreamingSession`; ``num_threads`` sets
    ``torch.set_num_threads`` (process-wide). Torch allocates the output and state
    tensors of every call, so this path is not allocation-free.
    """

    def __init__(self, artifact: Artifact | str | Path, num_threads: int | None = 1,
                 channels: int | None = None, smoothing_ms: float = DEFAULT_SMOOTHING_MS) -> None:
        try:
            import torch
        except ImportError as e:  # pragma: no cover - torch is installed with the models extra
            raise BackendUnavailableError("TorchScriptSession needs torch; install the models extra") from e
        super().__init__(artifact, channels, smoothing_ms, "torchscript")
        self._torch = torch
        if num_threads is not None:
            torch.set_num_threads(int(num_threads))
        try:
            self.module = torch.jit.load(str(self.artifact.model_path), map_location="cpu").eval()
        except Exception as e:
            raise ArtifactError(f"{self.artifact.model_path}: torch cannot load the module ({e})") from None
        io = self.artifact.sidecar["io"]
        self._shapes = ([self.batch] + list(io["input_state_shape"]), [self.batch] + list(io["hidden_state_shape"]))
        self._p_start_t = torch.from_numpy(self._p_start)
        self._p_end_t = torch.from_numpy(self._p_end)
        self._p_start1_t = torch.from_numpy(self._p_start1)
        self._p_end1_t = torch.from_numpy(self._p_end1)
        self._shapes1 = ([1] + list(io["input_state_shape"]), [1] + list(io["hidden_state_shape"]))
        self._audio: dict[int, np.ndarray] = {}
        self._out: dict[int, np.ndarray] = {}
        self._silence_out: dict[int, np.ndarray] = {}
        self._reset_state(None)
        self.warm()

    def prepare(self, block_sizes) -> None:
        """:meth:`warm` the state at the current parameters (torch allocates per call anyway)."""
        self.warm()

    def _reset_state(self, warm: tuple[np.ndarray, ...] | None) -> None:
        torch = self._torch
        if warm is None:
            self._state = tuple(torch.zeros(s) for s in self._shapes)
            self._state1 = tuple(torch.zeros(s) for s in self._shapes1)
        else:
            self._state = tuple(torch.from_numpy(w).expand(*s).contiguous() for w, s in zip(warm, self._shapes))
            self._state1 = tuple(torch.from_numpy(w.copy()) for w in warm)

    def _warm_run(self, params: np.ndarray, samples: int) -> tuple[np.ndarray, ...]:
        torch = self._torch
        p = torch.from_numpy(params.astype(np.float32))
        state = tuple(torch.zeros(s) for s in self._shapes1)
        block = min(WARM_BLOCK, self.max_block)
        zeros = torch.zeros(1, self.n_inputs, block)
        with torch.inference_mode():
            for _ in range(-(-samples // block)):
                _, a, b = self.module(zeros, p, p, *state)
                state = (a, b)
        return tuple(t.numpy().copy() for t in state)

    def _ref_step(self, n: int) -> np.ndarray:
        out = self._silence_out.get(n)
        if out is None:
            out = self._silence_out[n] = np.zeros((1 if self.n_inputs == 1 else self.n_outputs, n), np.float32)
        zeros = self._torch.zeros(1, self.n_inputs, n)
        with self._torch.inference_mode():
            y, a, b = self.module(zeros, self._p_start1_t, self._p_end1_t, *self._state1)
        self._state1 = (a, b)
        out[:] = y.numpy().reshape(out.shape)
        return out

    def _step(self, block: np.ndarray, n: int) -> np.ndarray:
        audio = self._audio.get(n)
        if audio is None:
            audio = self._audio[n] = np.zeros((self.batch, self.n_inputs, n), np.float32)
            self._out[n] = np.zeros((self.out_channels, n), np.float32)
        if self.n_inputs == 1:
            np.copyto(audio[:, 0, :], block, casting="same_kind")
        else:
            np.copyto(audio[0], block, casting="same_kind")
        with self._torch.inference_mode():
            y, a, b = self.module(self._torch.from_numpy(audio), self._p_start_t, self._p_end_t, *self._state)
        self._state = (a, b)
        out = self._out[n]
        out[:] = y.numpy().reshape(out.shape)
        return out


def open_session(artifact: Artifact | str | Path, **kwargs) -> SessionBase:
    """A :class:`~mixbridge.export.runtime.StreamingSession` (ONNX) or a :class:`TorchScriptSession`,
    whichever fits the artifact's format; ``kwargs`` go to the session's constructor.

    Raises:
        ArtifactError: see :func:`~mixbridge.export.artifact.load_artifact`.
        BackendUnavailableError: onnxruntime's provider, or torch, is missing.
    """
    art = artifact if isinstance(artifact, Artifact) else load_artifact(artifact)
    return StreamingSession(art, **kwargs) if art.format == "onnx" else TorchScriptSession(art, **kwargs)
