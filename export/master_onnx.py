"""The learned mastering model as ONNX: export its network, and run it where torch is not installed.

* :func:`export_master_onnx` (imports torch, lazily) writes ``OUT.onnx`` -- the
  :class:`mixbridge.models.learned_master.MasterNet` of a checkpoint: ``inputs [batch, 22]`` float32
  (:data:`~mixbridge.models.learned_master.INPUT_NAMES`: the features of
  :func:`mixbridge.master_features.master_features`, then ``target_lufs`` and ``ceiling_dbtp``) in;
  ``params [batch, 20]`` (normalised 0..1, :data:`~mixbridge.models.learned_master.OUTPUT_NAMES`) and
  ``band_delta_db [batch, 10]`` out, with a dynamic ``batch`` axis -- plus its sidecar ``OUT.onnx.json``
  (format :data:`MASTER_ONNX_FORMAT` version :data:`MASTER_ONNX_VERSION`: architecture, config,
  input and output names, the output parameters' ranges, the recommended analysis window, the ONNX
  file's sha256, the source checkpoint) and a golden pair ``OUT.onnx.golden.npz`` made by the torch
  model (seeded inputs).
* :class:`~mixbridge.export.master_runtime.OnnxMasterPredictor` (re-exported here; numpy, onnxruntime and
  mixbridge's torch-free modules only: never torch) computes the features of a window, runs the
  network and returns the ``master_bus`` parameters in real units: what the live bus's worker runs
  over its sliding window. The export checks itself with it against the golden pair.

``python -m mixbridge.export.master_onnx CHECKPOINT OUT.onnx`` runs :func:`export_master_onnx`
(``untrained`` as the checkpoint gives the neutral stand-in).
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mixbridge.checksum import sha256_bytes
from mixbridge.npz import npz_bytes
from mixbridge.plugins.learned_master_io import INPUT_NAMES, OUTPUT_NAMES, OUTPUT_PARAMS, inference_settings

from .master_runtime import (
    GOLDEN_TOL,
    INPUT_NAME,
    MASTER_ONNX_FORMAT,
    MASTER_ONNX_VERSION,
    OUTPUT_NAMES_ONNX,
    SHIPPED_ONNX,
    MasterExportError,
    OnnxMasterPredictor,
    onnx_paths,
)
from .onnx_session import write_onnx_export

__all__ = ["GOLDEN_TOL", "MASTER_ONNX_FORMAT", "MASTER_ONNX_VERSION", "MasterExportError", "OnnxMasterPredictor",
           "SHIPPED_ONNX", "export_master_onnx"]

ONNX_OPSET = 17
GOLDEN_SEED = 1234
GOLDEN_BATCH = 4


def _load(checkpoint: Any, seed: int):
    import torch

    from mixbridge.models.checkpoint import load_checkpoint

    if isinstance(checkpoint, torch.nn.Module):
        return checkpoint.eval(), {"source": "model object"}
    if str(checkpoint) == "untrained":
        from mixbridge.models.learned_master import MasterNet

        torch.manual_seed(seed)
        return MasterNet().eval(), {"source": "untrained", "seed": seed, "trained": False}
    path = Path(str(checkpoint))
    if path.exists():
        model, record = load_checkpoint(path)
        return model, {"source": "checkpoint", "checkpoint": path.name,
                       "weights_sha256": record.get("weights_sha256"), "progress": record.get("progress", {}),
                       "inference": inference_settings(record.get("extra"))}
    raise MasterExportError(f"{checkpoint}: no such checkpoint; give a master-mlp checkpoint (NAME.json + "
                            "NAME.safetensors, e.g. models/masterers/learned.json) or 'untrained'")


def _golden_inputs(model) -> Any:
    """Seeded inputs ``[GOLDEN_BATCH, 22]`` around the model's standardisation."""
    import torch

    gen = torch.Generator().manual_seed(GOLDEN_SEED)
    z = torch.randn(GOLDEN_BATCH, len(INPUT_NAMES), generator=gen)
    return (model.input_mean + z * model.input_std).detach().float()


def export_master_onnx(checkpoint: Any, out_path: str | Path, *, seed: int = 0) -> Path:
    """Export a ``master-mlp`` network to ``OUT.onnx`` + ``OUT.onnx.json`` + ``OUT.onnx.golden.npz`` (atomic writes).

    Args:
        checkpoint: a ``master-mlp`` checkpoint, a :class:`~mixbridge.models.learned_master.MasterNet`, or
            ``"untrained"`` (a neutral network seeded with ``seed``: it predicts the schema defaults).
        out_path: ``OUT.onnx`` (the sidecar and golden pair go next to it).

    Returns:
        The ONNX file's path.

    Raises:
        MasterExportError: no such checkpoint, another architecture, or an ONNX output that differs
            from torch on the golden pair by more than :data:`GOLDEN_TOL`.
    """
    import torch

    model, source = _load(checkpoint, seed)
    if getattr(model, "architecture", None) != "master-mlp":
        raise MasterExportError(f"{checkpoint}: architecture {getattr(model, 'architecture', None)!r}; "
                                "this exports 'master-mlp' networks")
    onnx_path, sidecar_path, golden_path = onnx_paths(out_path)
    x = _golden_inputs(model)
    with torch.no_grad():
        u, delta = model(x)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), buf,  # type: ignore[arg-type]  # stub: path only; BytesIO works
                          dynamo=False, input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES_ONNX),
                          opset_version=ONNX_OPSET, do_constant_folding=True,
                          dynamic_axes={INPUT_NAME: {0: "batch"}, "params": {0: "batch"},
                                        "band_delta_db": {0: "batch"}})
    onnx_bytes = buf.getvalue()
    golden_bytes = npz_bytes({"inputs": x.numpy().astype(np.float32), "params": u.numpy().astype(np.float32),
                              "band_delta_db": delta.numpy().astype(np.float32)})
    sidecar = {
        "format": MASTER_ONNX_FORMAT, "version": MASTER_ONNX_VERSION, "architecture": "master-mlp",
        "masterer": "learned", "config": model.config(), "sample_rate": int(model.sample_rate),
        "window_s": float(model.window_s),
        "inference": source.get("inference", inference_settings(None)),
        "inputs": {INPUT_NAME: "[batch, 22] float32: master_features(window) then target_lufs, ceiling_dbtp"},
        "input_names": list(INPUT_NAMES),
        "outputs": {"params": "[batch, 20] float32 normalised 0..1, output_names order",
                    "band_delta_db": "[batch, 10] float32 target minus input octave-band shape, dB"},
        "output_names": list(OUTPUT_NAMES),
        "output_params": {n: {"unit": p.unit, "min": p.min, "max": p.max, "scale": p.scale} for n, p in OUTPUT_PARAMS},
        "onnx": {"file": onnx_path.name, "bytes": len(onnx_bytes), "sha256": sha256_bytes(onnx_bytes, prefixed=False),
                 "opset": ONNX_OPSET},
        "golden": {"file": golden_path.name, "sha256": sha256_bytes(golden_bytes, prefixed=False),
                   "seed": GOLDEN_SEED, "tolerance": GOLDEN_TOL},
        "source": source,
    }
    write_onnx_export(onnx_path, onnx_bytes, golden_bytes, sidecar)
    err = OnnxMasterPredictor(onnx_path).verify()
    if err > GOLDEN_TOL:
        raise MasterExportError(f"{onnx_path}: the ONNX network differs from torch by {err:.3g} on the golden pair "
                                f"(tolerance {GOLDEN_TOL}); report it with the checkpoint")
    return onnx_path


def main(argv: list[str] | None = None) -> int:
    """``python -m mixbridge.export.master_onnx CHECKPOINT|untrained OUT.onnx``."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m mixbridge.export.master_onnx", description=export_master_onnx.__doc__)
    ap.add_argument("checkpoint")
    ap.add_argument("out")
    args = ap.parse_args(argv)
    path = export_master_onnx(args.checkpoint, args.out)
    print(f"wrote {path} (+ .json sidecar, .golden.npz); max |onnx - torch| {OnnxMasterPredictor(path).verify():.2e}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
