"""Loading a network export (``OUT.onnx``, sidecar ``OUT.onnx.json``, golden pair ``OUT.onnx.golden.npz``), no torch.

The one loader of the exports that hold a plain network run by onnxruntime (the learned mastering model's,
:mod:`.master_runtime`, and the ``dmc`` mixer's, :mod:`.mixer_onnx`): :func:`onnx_paths` names the three
files, :func:`read_onnx_export` reads the sidecar (its format and version,
:func:`mixbridge.records.read_record`) and checks the ONNX file against the sidecar's sha256,
:func:`inference_session` opens the onnxruntime session (intra-op threads, one inter-op thread, the provider
of :func:`mixbridge.export.runtime.select_provider`) and :func:`golden_arrays` reads the golden pair after
checking its sha256. Each raises the caller's own error class with the caller's fix. The exporters write
the three files with :func:`write_onnx_export`. Numpy and onnxruntime
(imported when a session opens) only: never torch (tests/test_layers.py ``RUNTIME_MODULES``).
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from mixbridge.atomic import atomic_write_bytes, atomic_write_text
from mixbridge.checksum import sha256_bytes, sha256_file
from mixbridge.errors import RecordFormatError
from mixbridge.records import read_record

__all__ = ["golden_arrays", "inference_session", "onnx_paths", "read_onnx_export", "write_onnx_export"]


def onnx_paths(out_path: str | Path) -> tuple[Path, Path, Path]:
    """``(OUT.onnx, OUT.onnx.json, OUT.onnx.golden.npz)`` of ``out_path`` (``OUT.onnx``, ``OUT.onnx.json`` or
    ``OUT``). The sidecar is not ``OUT.json``, so that ``models/mixers/dmc.onnx`` sits beside the checkpoint
    ``dmc.json`` + ``dmc.safetensors`` it was exported from without replacing its record."""
    p = Path(out_path)
    name = p.name
    for suffix in (".onnx.json", ".onnx"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    onnx_path = p.parent / (name + ".onnx")
    return onnx_path, p.parent / (onnx_path.name + ".json"), p.parent / (onnx_path.name + ".golden.npz")


def read_onnx_export(path: str | Path, *, format: str, version: int, what: str, fix: str,
                     error: type[RecordFormatError]) -> tuple[dict, Path, Path, Path]:
    """``(sidecar, onnx_path, sidecar_path, golden_path)`` of the export at ``path`` (:func:`onnx_paths`).

    Args:
        path: ``OUT.onnx``, its sidecar ``OUT.onnx.json`` or ``OUT``.
        format, version: the sidecar's ``format`` and the one ``version`` this mixbridge reads.
        what: the sidecar's name in messages (``"mixbridge mixer ONNX sidecar"``).
        fix: the fix every message ends with (how to re-export).
        error: the :class:`~mixbridge.errors.RecordFormatError` subclass raised (the caller's ``...ExportError``).

    Raises:
        error: a missing or unreadable sidecar, another format or version, a missing ONNX file, or an
            ONNX file whose sha256 differs from the sidecar's (the file changed).
    """
    onnx_path, sidecar_path, golden_path = onnx_paths(path)
    sidecar = read_record(sidecar_path, format=format, versions=(version,), what=what, fix=fix, error=error,
                          missing=f"{sidecar_path}: no sidecar next to {onnx_path.name}; {fix}")
    if not onnx_path.is_file():
        raise error(f"{onnx_path}: no ONNX file; {fix}")
    digest = sha256_file(onnx_path, prefixed=False)
    if digest != sidecar["onnx"]["sha256"]:
        raise error(f"{onnx_path}: sha256 {digest[:12]}... differs from the sidecar's "
                    f"{str(sidecar['onnx']['sha256'])[:12]}...; the file changed; {fix}")
    return sidecar, onnx_path, sidecar_path, golden_path


def inference_session(onnx_path: str | Path, *, provider: str | None, num_threads: int, runs: str) -> Any:
    """An onnxruntime ``InferenceSession`` of ``onnx_path``: ``num_threads`` intra-op threads, one inter-op
    thread, ``provider`` (None: CUDA when available, else CPU; :func:`~mixbridge.export.runtime.select_provider`).

    Args:
        runs: what runs on it, for the message when onnxruntime is missing (``"the ONNX dmc mixer"``).

    Raises:
        BackendUnavailableError: onnxruntime is not installed, or ``provider`` is not available.
    """
    try:
        import onnxruntime as ort
    except ImportError as e:
        from mixbridge.errors import BackendUnavailableError

        raise BackendUnavailableError(f"onnxruntime is not installed; pip install onnxruntime ({runs} runs on it)"
                                      ) from e
    from .runtime import select_provider

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(num_threads)
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(onnx_path), sess_options=opts, providers=[select_provider(provider)])


def golden_arrays(golden_path: Path, sidecar: dict, *, error: type[RecordFormatError],
                  fix: str) -> dict[str, np.ndarray]:
    """The arrays of the golden pair ``golden_path`` (made by the torch model at export), by name.

    Raises:
        error: the file is missing, or its sha256 is not the sidecar's ``golden.sha256`` (it changed);
            the message ends with ``fix``.
    """
    data = golden_path.read_bytes() if golden_path.is_file() else None
    if data is None or sha256_bytes(data, prefixed=False) != sidecar["golden"]["sha256"]:
        raise error(f"{golden_path}: missing or changed; {fix}")
    with np.load(io.BytesIO(data), allow_pickle=False) as g:
        return {name: g[name] for name in g.files}


def write_onnx_export(onnx_path: str | Path, onnx_bytes: bytes, golden_bytes: bytes, sidecar: dict) -> Path:
    """Write an export's three files (:func:`onnx_paths` of ``onnx_path``), each atomically, its folder made:
    the ONNX file, the golden pair, then the sidecar (JSON, indent 1) last, so that a reader never finds a
    sidecar before the files it checks. Returns the ONNX file's path."""
    onnx_file, sidecar_path, golden_path = onnx_paths(onnx_path)
    onnx_file.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(onnx_file, onnx_bytes)
    atomic_write_bytes(golden_path, golden_bytes)
    atomic_write_text(sidecar_path, json.dumps(sidecar, indent=1) + "\n")
    return onnx_file
