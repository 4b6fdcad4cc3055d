"""The grey-box proxies' CPU streaming path: the artifact's control graph plus the numpy reference DSP.

A grey-box artifact (:mod:`mixbridge.models.proxy_greybox`) holds two ONNX graphs: ``model.onnx``,
the whole proxy as a block graph (what :class:`~mixbridge.export.runtime.StreamingSession` runs on a
GPU provider and what ``verify`` checks), and ``controls.onnx``, its learned knob law alone
(``params [1, n_params]`` normalised -> ``controls [1, n_params + 1]``: the DSP's real-unit values in
``param_names`` order, then ``beta``). On the CPU the block graph costs about 250 small nodes per
block; :class:`GreyBoxDSP` instead runs the control graph only when the parameters move and renders
with the project's numpy reference stages, which the torch model mirrors
(``tests/models/test_proxy_greybox.py``):

* EQ: :func:`mixbridge.plugins.rbj.eq_sections` through :func:`scipy.signal.sosfilt` with its state;
* compressor: :func:`mixbridge.plugins.dynamics.compress` with a
  :class:`~mixbridge.plugins.dynamics.CompressorState` and the learned release law ``beta``.

Torch-free (numpy, scipy, onnxruntime), like the runtime that uses it. The numpy stages allocate
their temporaries (a few kB per block); the ONNX path stays allocation-free.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.signal import sosfilt

from mixbridge.plugins.dynamics import CompressorState, compress
from mixbridge.plugins.rbj import eq_sections

from .artifact import ArtifactError, _check_file

#: The compressor's real-unit arguments, in the schema's order.
COMPRESSOR_LEAVES = ("threshold_db", "ratio", "attack_ms", "release_ms", "knee_db", "makeup_db")
#: Biquad sections of the schema's EQ.
EQ_SECTIONS = 5


class GreyBoxDSP:
    """Stream a grey-box artifact's DSP for ``batch`` independent signals of ``channels`` channels each.

    Args:
        folder: the artifact folder; ``sidecar``: its checked sidecar (``dsp`` and ``files.controls``).
        batch: independent signals (a mono proxy runs each channel as its own signal);
            ``channels``: channels of each signal (the compressor links them).
        sample_rate: Hz.

    Raises:
        ArtifactError: no ``dsp`` record or a missing/corrupted ``controls.onnx``.
    """

    def __init__(self, folder: str | Path, sidecar: dict, batch: int, channels: int, sample_rate: int) -> None:
        import onnxruntime as ort

        rec = sidecar.get("dsp") or {}
        if rec.get("kind") != "greybox" or "controls" not in (sidecar.get("files") or {}):
            raise ArtifactError(f"{folder}: not a grey-box artifact (no dsp record or controls graph); re-export it")
        path = _check_file(Path(folder), sidecar["files"]["controls"], "controls")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.entries = list(rec["entries"])
        self.param_names = list(sidecar["schema"]["param_names"])
        self.sample_rate = int(sample_rate)
        self.batch, self.channels = int(batch), int(channels)
        self._key: bytes | None = None
        self._comp: dict[str, float] = {}
        self._beta = 0.0
        self._sos = np.zeros((EQ_SECTIONS, 6))
        self.reset()

    def reset(self) -> None:
        """Every signal at rest: compressor states and EQ filter states cleared."""
        self._states = [CompressorState() for _ in range(self.batch)]
        self._zi = np.zeros((self.batch, EQ_SECTIONS, self.channels, 2))

    def controls(self, params: np.ndarray) -> dict[str, float]:
        """The DSP values for normalised ``params [n_params]`` (the control graph, run when they change):
        ``{"processor.param": value, "compressor.beta": beta}``."""
        p = np.ascontiguousarray(params, np.float32).reshape(1, -1)
        key = p.tobytes()
        if key != self._key:
            out = np.asarray(self.session.run(None, {"params": p})[0], np.float64)[0]
            vals = dict(zip(self.param_names, out[:-1].tolist()))
            if "eq" in self.entries:
                eq = {name.split(".", 1)[1]: v for name, v in vals.items() if name.startswith("eq.")}
                self._sos = np.array([np.concatenate([b, a]) for b, a in eq_sections(eq, self.sample_rate)])
            if "compressor" in self.entries:
                self._comp = {leaf: vals[f"compressor.{leaf}"] for leaf in COMPRESSOR_LEAVES}
                self._beta = float(out[-1])
            self._values = {**vals, "compressor.beta": float(out[-1])}
            self._key = key
        return self._values

    def process(self, signals: np.ndarray, params: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Render ``signals [batch, channels, n]`` at ``params [n_params]`` into ``out`` (same shape); returns it."""
        self.controls(params)
        for b in range(self.batch):
            y = signals[b].astype(np.float64)
            if "eq" in self.entries:
                y, self._zi[b] = sosfilt(self._sos, y, axis=-1, zi=self._zi[b])
            if "compressor" in self.entries:
                y = compress(y, self.sample_rate, **self._comp, state=self._states[b], beta=self._beta)
            out[b] = y
        return out
