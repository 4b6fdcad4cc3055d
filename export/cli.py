"""``mixbridge export``: write a streaming ONNX or TorchScript artifact.

``mixbridge export CHECKPOINT --format onnx|torchscript -o ARTIFACT_DIR [--seed N]``
exports a checkpoint (``NAME.json`` + ``NAME.safetensors``, or a folder holding
one) or, for tests and demos, an untrained registry model such as ``tcn-tiny``
initialised with ``--seed``. The handler calls
:func:`mixbridge.export.exporter.export_model`, then reloads the artifact with the
torch-free runtime and checks the golden pair. Only the standard library is
imported at module level (STYLE.md point 12).
"""
from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser(
        "export", help="export a proxy to a streaming ONNX/TorchScript artifact",
        description=("Export CHECKPOINT (a checkpoint file or folder, or a registry model name such as "
                     "tcn-tiny for an untrained model) to ARTIFACT_DIR: the model file, golden.npz and "
                     "artifact.json (format version, config, schema, sample rate, latency, checksums)."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("checkpoint", metavar="CHECKPOINT")
    p.add_argument("--format", choices=("onnx", "torchscript"), default="onnx")
    p.add_argument("-o", "--output", required=True, metavar="ARTIFACT_DIR")
    p.add_argument("--seed", type=int, default=0, help="initialisation seed for a registry model name")
    p.set_defaults(func=_export)


def _export(args) -> int:
    from .artifact import load_artifact
    from .exporter import export_model
    from .runtime import open_session

    sidecar_path = export_model(args.checkpoint, args.format, args.output, seed=args.seed)
    artifact = load_artifact(sidecar_path.parent)
    err = open_session(artifact).verify(block_size=64)
    s = artifact.sidecar
    print(f"wrote {artifact.path} ({s['artifact_format']}, {s['architecture']}, "
          f"{s['config']['n_blocks']} blocks, {'causal' if s['causal'] else 'centre-cropped'}): "
          f"sample_rate {s['sample_rate']} Hz, latency {s['latency_samples']} samples, receptive field "
          f"{s['receptive_field']} samples, blocks {s['block_sizes']['min']}..{s['block_sizes']['max']}, "
          f"golden max error {err:.2g}")
    return 0
