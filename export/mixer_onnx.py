"""The ``dmc`` mixer as ONNX: export its network, and run it where torch is not installed.

* :func:`export_mixer_onnx` (imports torch, lazily) writes ``OUT.onnx`` -- the DMC network
  :class:`mixbridge.models.dmc.DMC` from a checkpoint, ``features [batch, tracks, n_mels, frames]``
  float32 and ``mask [batch, tracks]`` float32 (1 = a real track) in, ``params [batch, tracks, 2]``
  (normalised ``fader.fader_db``, ``pan.pan`` in 0..1) out, with dynamic ``batch``, ``tracks`` and
  ``frames`` axes -- plus its sidecar ``OUT.onnx.json`` (format :data:`MIXER_ONNX_FORMAT` version
  :data:`MIXER_ONNX_VERSION`: architecture, constructor config and feature settings, the output
  parameters' ranges, the ONNX file's sha256, the source checkpoint) and a golden pair
  ``OUT.onnx.golden.npz`` made by the torch model (:data:`GOLDEN_SHAPE`, seeded).
* :class:`OnnxDMCMixer` (numpy, onnxruntime and mixbridge's torch-free modules only: never torch)
  is the ``dmc`` mixer of :class:`mixbridge.models.dmc_mixer.DMCMixer` with the network run by
  onnxruntime: the same windowing, loudness trims, features
  (:func:`mixbridge.models.dmc.dmc_features`), mean removal and session building (it inherits
  ``DMCMixer.__call__``); the normalised outputs are read in real units with the schema's own
  :meth:`mixbridge.parameters.Param.from_normalised` instead of the torch ``denormalise``. Its
  decision equals the torch mixer's within :data:`MATCH_TOL_DB` dB and :data:`MATCH_TOL_PAN`
  (float32 network outputs; the session rounds gains to 1 mdB and pans to 1e-4). Its three files are
  read and checked by :mod:`.onnx_session`, the network exports' one loader.

``mixbridge export mixer CHECKPOINT -o OUT.onnx`` runs :func:`export_mixer_onnx` and checks the
golden pair with the runner.
"""
from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mixbridge.checksum import sha256_bytes
from mixbridge.errors import RecordFormatError
from mixbridge.models.dmc import OUTPUT_NAMES, OUTPUT_PARAMS
from mixbridge.models.dmc_mixer import (
    SHIPPED_CHECKPOINT,
    DMCMixer,
    DMCMixerError,
    record_pan_scale,
    record_prior_weight,
)
from mixbridge.npz import npz_bytes

from .onnx_session import golden_arrays, inference_session, onnx_paths, read_onnx_export, write_onnx_export

#: The sidecar's format and version (a :func:`mixbridge.records.read_record` record).
MIXER_ONNX_FORMAT = "mixbridge-mixer-onnx"
MIXER_ONNX_VERSION = 1
ONNX_OPSET = 17
INPUT_NAMES = ("features", "mask")
OUTPUT_NAME = "params"
#: The golden pair's feature shape ``[batch, tracks, n_mels, frames]`` (n_mels from the model) and seed.
GOLDEN_SHAPE = (1, 3, None, 24)
#: Where the shipped export lives, beside the shipped weights ``dmc.json`` + ``dmc.safetensors``.
SHIPPED_ONNX = SHIPPED_CHECKPOINT.with_name("dmc.onnx")
GOLDEN_SEED = 1234
#: float32 network outputs differ between torch and onnxruntime by a few ulps of the sigmoid: 1e-6
#: of 0..1 is 6e-5 dB of the fader's 60 dB range and 2e-6 of the pan's 2.
GOLDEN_TOL = 1e-5
MATCH_TOL_DB = 1e-4
MATCH_TOL_PAN = 1e-5


class MixerExportError(RecordFormatError):
    """A mixer ONNX export that cannot be made, or one whose files are missing, changed or of another version."""


def _load_dmc(checkpoint: Any, seed: int):
    """``(model, source record)`` from a DMC object, a ``dmc`` checkpoint or ``"dmc"`` (untrained, seeded)."""
    import torch

    from mixbridge.models.checkpoint import load_checkpoint

    if isinstance(checkpoint, torch.nn.Module):
        return checkpoint.eval(), {"source": "model object"}
    path = Path(str(checkpoint))
    if path.exists():
        model, record = load_checkpoint(path)
        return model, {"source": "checkpoint", "checkpoint": path.name,
                       "weights_sha256": record.get("weights_sha256"), "progress": record.get("progress", {})}
    if str(checkpoint) == "dmc":
        from mixbridge.models.dmc import DMC

        torch.manual_seed(seed)
        return DMC().eval(), {"source": "untrained", "seed": seed, "trained": False}
    raise MixerExportError(f"{checkpoint}: no such checkpoint; give a dmc checkpoint (NAME.json + NAME.safetensors, "
                           "e.g. models/mixers/dmc.json) or 'dmc' for an untrained network")


def export_mixer_onnx(checkpoint: Any, out_path: str | Path, *, seed: int = 0) -> Path:
    """Export a DMC network to ``OUT.onnx`` + ``OUT.onnx.json`` + ``OUT.onnx.golden.npz`` (each written atomically).

    Args:
        checkpoint: a ``dmc`` checkpoint (``NAME.json``, its weights or folder), a
            :class:`~mixbridge.models.dmc.DMC` object, or ``"dmc"`` for an untrained network seeded with ``seed``.
        out_path: ``OUT.onnx`` (the sidecar and golden pair go next to it).
        seed: the initialisation seed of ``"dmc"``.

    Returns:
        The ONNX file's path.

    Raises:
        MixerExportError: no such checkpoint, a network that is not a DMC, or an export whose ONNX
            output differs from torch on the golden pair by more than :data:`GOLDEN_TOL`.
        CheckpointError: see :func:`mixbridge.models.checkpoint.load_checkpoint`.
    """
    import torch

    model, source = _load_dmc(checkpoint, seed)
    if getattr(model, "architecture", None) != "dmc":
        raise MixerExportError(f"{checkpoint}: architecture {getattr(model, 'architecture', None)!r}; "
                               "`mixbridge export mixer` exports 'dmc' networks "
                               "(proxies: `mixbridge export CHECKPOINT`)")
    onnx_path, _, golden_path = onnx_paths(out_path)
    shape = (GOLDEN_SHAPE[0], GOLDEN_SHAPE[1], model.n_mels, GOLDEN_SHAPE[3])
    gen = torch.Generator().manual_seed(GOLDEN_SEED)
    feats = -60.0 + 20.0 * torch.randn(*shape, generator=gen)
    mask = torch.ones(shape[:2])
    with torch.no_grad():
        golden_out = model(feats, mask)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (feats, mask), buf,  # type: ignore[arg-type]  # stub: path only; BytesIO works
                          dynamo=False, input_names=list(INPUT_NAMES),
                          output_names=[OUTPUT_NAME], opset_version=ONNX_OPSET, do_constant_folding=True,
                          dynamic_axes={"features": {0: "batch", 1: "tracks", 3: "frames"},
                                        "mask": {0: "batch", 1: "tracks"}, OUTPUT_NAME: {0: "batch", 1: "tracks"}})
    onnx_bytes = buf.getvalue()
    golden = {"features": feats.numpy().astype(np.float32), "mask": mask.numpy().astype(np.float32),
              "params": golden_out.numpy().astype(np.float32)}
    golden_bytes = npz_bytes(golden)
    sidecar = {
        "format": MIXER_ONNX_FORMAT, "version": MIXER_ONNX_VERSION, "architecture": "dmc", "mixer": "dmc",
        "config": model.config(), "sample_rate": int(model.sample_rate),
        "inputs": {"features": "[batch, tracks, n_mels, frames] float32 log-mel dB (dmc_features)",
                   "mask": "[batch, tracks] float32, 1 = a real track"},
        "outputs": {OUTPUT_NAME: "[batch, tracks, 2] float32 normalised 0..1, output_names order"},
        "output_names": list(OUTPUT_NAMES),
        "output_params": {n: {"unit": p.unit, "min": p.min, "max": p.max, "scale": p.scale} for n, p in OUTPUT_PARAMS},
        "onnx": {"file": onnx_path.name, "bytes": len(onnx_bytes), "sha256": sha256_bytes(onnx_bytes, prefixed=False),
                 "opset": ONNX_OPSET},
        "golden": {"file": golden_path.name, "sha256": sha256_bytes(golden_bytes, prefixed=False),
                   "seed": GOLDEN_SEED, "tolerance": GOLDEN_TOL},
        "source": source,
    }
    write_onnx_export(onnx_path, onnx_bytes, golden_bytes, sidecar)
    err = OnnxDMCMixer(onnx_path).verify()
    if err > GOLDEN_TOL:
        raise MixerExportError(f"{onnx_path}: the ONNX network differs from torch by {err:.3g} on the golden pair "
                               f"(tolerance {GOLDEN_TOL}); report it with the checkpoint")
    return onnx_path


class OnnxDMCMixer(DMCMixer):
    """The ``dmc`` mixer running an exported network with onnxruntime (no torch).

    Args:
        model_path: ``OUT.onnx`` or its sidecar ``OUT.onnx.json`` (:func:`export_mixer_onnx`); default
            the shipped :data:`SHIPPED_ONNX` (``models/mixers/dmc.onnx``).
        provider: an onnxruntime execution provider (default: CUDA when available, else CPU).
        num_threads: onnxruntime's intra-op threads (default 1).
        prior_weight: the family prior's weight (:class:`DMCMixer`); default: the shipped checkpoint's when
            this export was made from it, else 0.
        pan_scale: the factor on the network's pans (:class:`DMCMixer`); default: the shipped checkpoint's
            when this export was made from it, else 1.

    Raises:
        MixerExportError: a missing or changed ONNX file or sidecar, or a sidecar of another version.
        BackendUnavailableError: onnxruntime is not installed, or the provider is not available.
    """

    name = "dmc"

    def __init__(self, model_path: str | Path = SHIPPED_ONNX, *, provider: str | None = None,
                 num_threads: int = 1, prior_weight: float | None = None, pan_scale: float | None = None) -> None:
        onnx_path = onnx_paths(model_path)[0]
        fix = f"re-export it (mixbridge export mixer CHECKPOINT -o {onnx_path})"
        self.sidecar, onnx_path, sidecar_path, golden_path = read_onnx_export(
            onnx_path, format=MIXER_ONNX_FORMAT, version=MIXER_ONNX_VERSION, what="mixbridge mixer ONNX sidecar",
            fix=fix, error=MixerExportError)
        if list(self.sidecar.get("output_names", [])) != list(OUTPUT_NAMES):
            raise MixerExportError(f"{sidecar_path}: outputs {self.sidecar.get('output_names')} are not "
                                   f"{list(OUTPUT_NAMES)}; {fix}")
        self._ort = inference_session(onnx_path, provider=provider, num_threads=num_threads,
                                      runs="the ONNX dmc mixer")
        self.onnx_path, self.golden_path = onnx_path, golden_path
        c = self.sidecar["config"]
        self.sample_rate, self.window_s = int(c["sample_rate"]), float(c["window_s"])
        self.max_windows = int(c["max_windows"])
        self.n_mels, self.n_fft, self.hop_length = int(c["n_mels"]), int(c["n_fft"]), int(c["hop_length"])
        shipped = self.exported_from()   # the blend of the checkpoint it was exported from (shipped)
        if prior_weight is None:
            prior_weight = record_prior_weight(SHIPPED_CHECKPOINT) if shipped else 0.0
        if pan_scale is None:
            pan_scale = record_pan_scale(SHIPPED_CHECKPOINT) if shipped else 1.0
        super().__init__(checkpoint=str(onnx_path), prior_weight=prior_weight, pan_scale=pan_scale)
        self._source = f"{onnx_path.name} (onnx)"

    def exported_from(self, checkpoint_json: str | Path = SHIPPED_CHECKPOINT) -> bool:
        """True when this export was made from the weights that ``checkpoint_json`` (a checkpoint's
        ``NAME.json``) records (their sha256), so that a re-trained checkpoint with a stale export shows.
        Reads the JSON only (no torch); False when the file is missing or unreadable."""
        try:
            record = json.loads(Path(checkpoint_json).read_text())
        except (OSError, ValueError):
            return False
        want = record.get("weights_sha256") if isinstance(record, dict) else None
        return want is not None and self.sidecar.get("source", {}).get("weights_sha256") == want

    def network(self):
        """Refused: this mixer has no torch network (the ONNX session runs in :meth:`run`)."""
        raise DMCMixerError("the ONNX dmc mixer has no torch network; use its run() or call the mixer")

    def run(self, features: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """The network's normalised outputs float32 ``[batch, tracks, 2]`` (or ``[tracks, 2]`` for 3-D
        ``features [tracks, n_mels, frames]``), as ``DMC.forward``."""
        x = np.asarray(features, dtype=np.float32)
        single = x.ndim == 3
        if single:
            x = x[None]
        m = np.ones(x.shape[:2], np.float32) if mask is None else np.asarray(mask, np.float32).reshape(x.shape[:2])
        (u,) = self._ort.run([OUTPUT_NAME], {"features": x, "mask": m})
        return u[0] if single else u

    def verify(self) -> float:
        """The largest difference between this runtime's output and the golden pair's (made by torch).

        Raises:
            MixerExportError: the golden file is missing or changed.
        """
        g = golden_arrays(self.golden_path, self.sidecar, error=MixerExportError, fix="re-export the mixer")
        return float(np.max(np.abs(self.run(g["features"], g["mask"]) - g["params"])))

    def geometry(self) -> tuple[int, float, int, dict[str, int]]:
        """``(sample_rate, window_s, max_windows, feature settings)`` from the export's sidecar."""
        return (self.sample_rate, self.window_s, self.max_windows,
                {"n_mels": self.n_mels, "n_fft": self.n_fft, "hop_length": self.hop_length})

    def run_network(self, features: np.ndarray) -> np.ndarray:
        """The exported network's outputs float64 ``[tracks, 2]`` (0..1), run by onnxruntime; the rest of
        the decision (loudness trims, windows, features, the session) is :class:`DMCMixer`'s."""
        return self.run(features).astype(np.float64)


__all__ = ["export_mixer_onnx", "OnnxDMCMixer", "SHIPPED_ONNX", "MixerExportError", "MIXER_ONNX_FORMAT",
           "MIXER_ONNX_VERSION"]
