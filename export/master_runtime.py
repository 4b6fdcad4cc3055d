"""The learned mastering network's torch-free runtime: :class:`OnnxMasterPredictor` (numpy + onnxruntime only).

:class:`OnnxMasterPredictor` reads an export of :func:`mixbridge.export.master_onnx.export_master_onnx`
(``OUT.onnx`` + its sidecar ``OUT.onnx.json`` + the golden pair ``OUT.onnx.golden.npz``), checks the
sidecar's format and version and the ONNX file's sha256 (:mod:`.onnx_session`, the exports' one loader),
computes the features of a window of audio
(:func:`mixbridge.master_features.master_features`), runs the network and returns the ``master_bus``
parameters in real units (:func:`mixbridge.plugins.learned_master_io.params_from_normalised`): what the live
bus's worker runs over its sliding window (:attr:`OnnxMasterPredictor.window_s`). Default file: the
shipped :data:`SHIPPED_ONNX` (``models/masterers/learned.onnx``). Never imports torch.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mixbridge.errors import RecordFormatError
from mixbridge.master_features import FEATURE_NAMES, master_features
from mixbridge.plugins.learned_master_io import (
    INPUT_NAMES,
    OUTPUT_NAMES,
    inference_settings,
    network_inputs,
    params_from_normalised,
    scale_plan,
)

from .onnx_session import golden_arrays, inference_session, onnx_paths, read_onnx_export

__all__ = ["GOLDEN_TOL", "MASTER_ONNX_FORMAT", "MASTER_ONNX_VERSION", "MasterExportError", "OnnxMasterPredictor",
           "SHIPPED_ONNX", "onnx_paths"]

MASTER_ONNX_FORMAT = "mixbridge-master-onnx"
MASTER_ONNX_VERSION = 1
INPUT_NAME = "inputs"
OUTPUT_NAMES_ONNX = ("params", "band_delta_db")
#: The shipped export, beside the shipped weights ``learned.json`` + ``learned.safetensors``.
#: (``export/`` and ``models/`` are siblings in the source tree and in the installed ``mixbridge`` package,
#: so this names the file without importing the models layer.)
SHIPPED_ONNX = Path(__file__).resolve().parent.parent / "models" / "masterers" / "learned.onnx"
#: float32 network outputs differ between torch and onnxruntime by a few ulps (sigmoid and matmul order).
GOLDEN_TOL = 1e-5


class MasterExportError(RecordFormatError):
    """A master ONNX export that cannot be made, or one whose files are missing, changed or of another version."""


class OnnxMasterPredictor:
    """The learned mastering network run by onnxruntime on a window of audio (no torch).

    Args:
        path: ``OUT.onnx`` or its sidecar (:func:`export_master_onnx`); default the shipped
            :data:`SHIPPED_ONNX` (``models/masterers/learned.onnx``).
        provider: an onnxruntime execution provider (default: CUDA when available, else CPU).
        num_threads: onnxruntime's intra-op threads (default 1).

    Attributes:
        window_s: the recommended analysis window in seconds (the features need at least 3 s).
        sample_rate: the rate the model was trained at (the features themselves are rate-independent).

    Raises:
        MasterExportError: a missing or changed ONNX file or sidecar, or a sidecar of another version.
        BackendUnavailableError: onnxruntime is not installed, or the provider is not available.
    """

    def __init__(self, path: str | Path | None = None, *, provider: str | None = None, num_threads: int = 1) -> None:
        onnx_path = onnx_paths(path if path is not None else SHIPPED_ONNX)[0]
        fix = f"re-export it (python -m mixbridge.export.master_onnx CHECKPOINT {onnx_path})"
        self.sidecar, onnx_path, sidecar_path, golden_path = read_onnx_export(
            onnx_path, format=MASTER_ONNX_FORMAT, version=MASTER_ONNX_VERSION, what="mixbridge master ONNX sidecar",
            fix=fix, error=MasterExportError)
        if (list(self.sidecar.get("output_names", [])) != list(OUTPUT_NAMES)
                or list(self.sidecar.get("input_names", [])) != list(INPUT_NAMES)):
            raise MasterExportError(f"{sidecar_path}: inputs/outputs differ from this mixbridge's "
                                    f"({len(INPUT_NAMES)} features, {len(OUTPUT_NAMES)} parameters); {fix}")
        self._ort = inference_session(onnx_path, provider=provider, num_threads=num_threads,
                                      runs="the ONNX mastering model")
        self.onnx_path, self.golden_path = onnx_path, golden_path
        self.window_s = float(self.sidecar["window_s"])
        #: The EQ and compressor intensities the export carries (``learned_master_io.scale_plan``).
        self.settings = inference_settings({"inference": self.sidecar.get("inference")})
        self.sample_rate = int(self.sidecar["sample_rate"])
        self.feature_names = FEATURE_NAMES

    def run(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(params [batch, 20] in 0..1, band_delta_db [batch, 10])`` of ``inputs [batch, 22]`` (or ``[22]``)."""
        x = np.asarray(inputs, dtype=np.float32)
        single = x.ndim == 1
        x = x[None] if single else x
        u, d = self._ort.run(list(OUTPUT_NAMES_ONNX), {INPUT_NAME: x})
        return (u[0], d[0]) if single else (u, d)

    def predict(self, audio: np.ndarray, sample_rate: int, *, target_lufs: float, ceiling_dbtp: float) -> dict:
        """``master_bus`` parameters in real units (``eq``, ``compressor``, ``limiter``, ``loudness``) for a
        window ``audio [2, samples]`` (at least 3 s; :attr:`window_s` recommended) at ``sample_rate`` Hz,
        with the export's EQ and compressor intensities applied (as :class:`LearnedMasterer` does; no
        refinement renders here: the live bus glides toward this plan).

        Raises:
            AudioInputError: a window shorter than 3 s, another shape, NaN/inf.
            ParamRangeError: a ceiling or target outside the schema's range.
        """
        inp = network_inputs(master_features(audio, sample_rate), target_lufs, ceiling_dbtp)
        u, _ = self.run(inp)
        return scale_plan(params_from_normalised(u, target_lufs=target_lufs, ceiling_dbtp=ceiling_dbtp),
                          **self.settings)

    def verify(self) -> float:
        """The largest difference between this runtime's outputs and the golden pair's (made by torch).

        Raises:
            MasterExportError: the golden file is missing or changed.
        """
        g = golden_arrays(self.golden_path, self.sidecar, error=MasterExportError, fix="re-export the model")
        u, d = self.run(g["inputs"])
        return float(max(np.max(np.abs(u - g["params"])), np.max(np.abs(d - g["band_delta_db"]))))
