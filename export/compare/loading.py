"""The proxy side of ``compare``: open a checkpoint (torch) or an exported artifact (onnxruntime)
as a :class:`Proxy` that renders ``[channels, samples]`` aligned to its input, and the
:class:`CompareError` every ``compare`` stage raises.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mixbridge.errors import MixbridgeError


class CompareError(ValueError, MixbridgeError):
    """A plugin/proxy pair or comparison option that cannot be compared (the message says why)."""


@dataclass
class Proxy:
    """A proxy that renders ``[channels, samples]`` with one parameter set, aligned to its input.

    Built by :func:`load_proxy` from a checkpoint (torch) or an artifact folder (onnxruntime).
    """

    path: str
    kind: str  # "checkpoint" | "artifact"
    sample_rate: int
    entries: list[str]
    param_names: list[str]
    n_inputs: int
    latency_samples: int
    receptive_field: int
    trained_ranges: dict[str, tuple[float, float]]  # normalised bounds per parameter
    record: dict = field(repr=False, default_factory=dict)
    _model: Any = field(repr=False, default=None)
    _session_factory: Any = field(repr=False, default=None)

    def render(self, audio: np.ndarray, norm_params: np.ndarray) -> np.ndarray:
        """``audio [channels, samples]`` float32 -> the proxy's output, same shape, latency removed.

        A mono proxy (``n_inputs == 1``) processes each channel on its own.
        """
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if self._model is not None:
            import torch

            m = self._model
            x = torch.from_numpy(audio)
            x = x.unsqueeze(1) if m.n_inputs == 1 else x.unsqueeze(0)  # [B, n_inputs, S]
            if not m.causal:  # centre-cropped: pad so the output lines up with every input sample
                left = m.center_offset_samples
                x = torch.nn.functional.pad(x, (left, m.receptive_field - 1 - left))
            p = torch.from_numpy(np.asarray(norm_params, np.float32)).unsqueeze(0).expand(x.shape[0], -1)
            with torch.no_grad():
                y = m(x, p.contiguous())
            y = y[:, 0] if m.n_inputs == 1 else y[0]
            return y.numpy().astype(np.float32)
        session = self._session_factory(audio.shape[0])
        return np.array(session.render(audio, np.asarray(norm_params, np.float32), chunk=4096,
                                       compensate_latency=True), dtype=np.float32)


def _trained_ranges(record: dict, names: Sequence[str]) -> dict[str, tuple[float, float]]:
    dists = ((record.get("extra") or {}).get("dataset") or {}).get("param_dists") or {}
    out = {}
    for n in names:
        d = dists.get(n)
        out[n] = (float(d["u_lo"]), float(d["u_hi"])) if d else (0.0, 1.0)
    return out


def load_proxy(path: str | Path, *, expect_sample_rate: int | None = None,
               expect_param_names: Sequence[str] | None = None) -> Proxy:
    """Open a checkpoint (``NAME.json``/``NAME.safetensors``) or an exported artifact folder.

    Raises:
        CheckpointMismatchError: another parameter schema or sample rate than expected.
        CheckpointError / ArtifactError: unreadable, corrupted or unknown-version files.
    """
    path = Path(path)
    if path.is_dir() and (path / "artifact.json").exists():
        from mixbridge.models.checkpoint import check_compatible

        from ..artifact import load_artifact
        from ..torchscript import open_session

        art = load_artifact(path)
        side = art.sidecar
        rec = {"schema": side["schema"], "sample_rate": art.sample_rate, "extra": side.get("extra") or {}}
        check_compatible(rec, expect_param_names=expect_param_names, expect_sample_rate=expect_sample_rate,
                         where=str(path))
        cache: dict[int, Any] = {}

        def factory(channels: int):
            if channels not in cache:
                cache[channels] = open_session(art, channels=channels)
            return cache[channels]

        return Proxy(str(path), "artifact", art.sample_rate, list(side["schema"]["entries"]), art.param_names,
                     art.n_inputs, art.latency_samples, art.receptive_field, art.trained_ranges,
                     record=side, _session_factory=factory)
    from mixbridge.models.checkpoint import load_checkpoint

    model, record = load_checkpoint(path, expect_param_names=expect_param_names,
                                    expect_sample_rate=expect_sample_rate)
    return Proxy(record["_path"], "checkpoint", model.sample_rate, list(model.schema), list(model.param_names),
                 model.n_inputs, model.latency_samples, model.receptive_field,
                 _trained_ranges(record, model.param_names), record=record, _model=model)
