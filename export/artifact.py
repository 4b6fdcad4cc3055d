"""Versioned export artifacts: the sidecar format, checksums and the loader (torch-free).

An artifact is a folder (STYLE.md point 6)::

    ARTIFACT_DIR/
      model.onnx | model.ts     the streaming graph (ONNX) or TorchScript module
      golden.npz                input, params, output: produced by the torch model
      artifact.json             the sidecar (written last, atomically)

The sidecar holds ``format_version``, ``artifact_format`` (``onnx`` or
``torchscript``), ``architecture``, ``model_name``, the constructor ``config``, the
parameter ``schema`` (names, units, ranges, scales), ``sample_rate`` (Hz),
``latency_samples``, ``receptive_field`` (samples), ``block_sizes`` (``min``..``max``
samples per call), the graph's ``io`` (names and state shapes per batch item),
``files`` (name, bytes, sha256 of the model file and the golden pair) and
``provenance`` (versions, source checkpoint checksum). It holds no timestamps, so
exporting the same weights twice gives identical bytes.

:func:`load_artifact` refuses an unknown ``format_version``, a missing, truncated
or modified file (size and sha256 are both checked), a parameter schema that no
longer matches :mod:`mixbridge.schema`, and (when asked) another parameter list
or sample rate than the caller's. This module imports only the standard library
and numpy.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mixbridge.checksum import sha256_file
from mixbridge.proxy_schema import schema_differences
from mixbridge.records import RecordFormatError, read_record

ARTIFACT_FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
SIDECAR_NAME = "artifact.json"
GOLDEN_NAME = "golden.npz"
MODEL_FILES = {"onnx": "model.onnx", "torchscript": "model.ts"}
#: Block sizes an export promises to stream (samples per call), STYLE.md point 5.
MIN_BLOCK_SIZE = 1
MAX_BLOCK_SIZE = 4096
#: Streamed runtime output vs the torch golden output: float32, different kernels.
GOLDEN_TOLERANCE = 1e-5


class ArtifactError(RecordFormatError):
    """An artifact folder that is missing files, malformed, truncated or modified."""


class ArtifactVersionError(ArtifactError):
    """An artifact written in a format version this runtime does not read."""


class ChecksumMismatchError(ArtifactError):
    """A file whose size or sha256 differs from the one the sidecar records."""


class SchemaMismatchError(ArtifactError):
    """An artifact for other parameters, another schema or another sample rate."""


def file_record(path: Path) -> dict:
    """The sidecar's record of one artifact file: ``{"name", "bytes", "sha256"}`` (hex, unprefixed)."""
    return {"name": path.name, "bytes": path.stat().st_size, "sha256": sha256_file(path, prefixed=False)}


@dataclass
class Artifact:
    """A loaded, checked artifact. ``sidecar`` is the parsed ``artifact.json``."""

    path: Path
    sidecar: dict
    model_path: Path
    golden_path: Path
    _golden: dict | None = field(default=None, repr=False)

    @property
    def format(self) -> str:
        """``"onnx"`` or ``"torchscript"``."""
        return self.sidecar["artifact_format"]

    @property
    def sample_rate(self) -> int:
        """The rate the model was trained and exported for, Hz."""
        return int(self.sidecar["sample_rate"])

    @property
    def latency_samples(self) -> int:
        """How many samples the streamed output lags the input."""
        return int(self.sidecar["latency_samples"])

    @property
    def receptive_field(self) -> int:
        """Input samples one output sample depends on."""
        return int(self.sidecar["receptive_field"])

    @property
    def param_names(self) -> list[str]:
        """The ``"processor.param"`` names of the normalised parameter vector, in order."""
        return list(self.sidecar["schema"]["param_names"])

    @property
    def n_params(self) -> int:
        """Length of the normalised parameter vector."""
        return len(self.param_names)

    @property
    def n_inputs(self) -> int:
        """Audio channels the model takes together (1: mono, run per channel)."""
        return int(self.sidecar["config"]["n_inputs"])

    @property
    def n_outputs(self) -> int:
        """Audio channels the model outputs."""
        return int(self.sidecar["config"]["n_outputs"])

    @property
    def block_sizes(self) -> tuple[int, int]:
        """``(min, max)`` block size in samples that streams (1..4096)."""
        b = self.sidecar["block_sizes"]
        return int(b["min"]), int(b["max"])

    def golden(self) -> dict[str, np.ndarray]:
        """``{"input": [1, n_inputs, N], "params": [1, n_params], "output": [1, n_outputs, N]}``."""
        if self._golden is None:
            with np.load(self.golden_path, allow_pickle=False) as data:
                self._golden = {k: np.asarray(data[k]) for k in data.files}
        return self._golden


def _check_file(folder: Path, rec: dict, what: str) -> Path:
    path = folder / Path(str(rec["name"])).name  # a bare name inside the folder, never a path
    if not path.is_file():
        raise ArtifactError(f"{folder}: the {what} file {rec['name']} is missing; re-export the artifact")
    size = path.stat().st_size
    if size != rec["bytes"]:
        raise ChecksumMismatchError(
            f"{path}: {size} bytes but the sidecar records {rec['bytes']}; the file is truncated or "
            "was modified — re-export the artifact")
    digest = sha256_file(path, prefixed=False)
    if digest != rec["sha256"]:
        raise ChecksumMismatchError(
            f"{path}: checksum mismatch (sha256 {digest[:12]}... != recorded {rec['sha256'][:12]}...); "
            "the file was modified or corrupted — re-export the artifact")
    return path


def read_sidecar(folder: str | Path) -> dict:
    """Parse and version-check ``artifact.json`` (no file checks).

    Raises:
        ArtifactError: no sidecar, unreadable or truncated JSON, missing fields.
        ArtifactVersionError: a ``format_version`` this runtime does not read.
    """
    folder = Path(folder)
    sidecar_path = folder / SIDECAR_NAME
    sidecar = read_record(sidecar_path, format=None, versions=SUPPORTED_VERSIONS, what="mixbridge artifact sidecar",
                          version_key="format_version", fix="re-export with this mixbridge or upgrade it",
                          missing=f"{folder}: not an artifact folder (no {SIDECAR_NAME}); "
                                  "create one with `mixbridge export CHECKPOINT -o DIR`",
                          error=ArtifactError, version_error=ArtifactVersionError)
    missing = [k for k in ("artifact_format", "architecture", "config", "schema", "sample_rate",
                           "latency_samples", "receptive_field", "block_sizes", "io", "files")
               if k not in sidecar]
    if missing:
        raise ArtifactError(f"{sidecar_path}: the sidecar lacks {', '.join(missing)}; re-export the artifact")
    if sidecar["artifact_format"] not in MODEL_FILES:
        raise ArtifactError(f"{sidecar_path}: unknown artifact_format {sidecar['artifact_format']!r}; "
                            f"known: {', '.join(MODEL_FILES)}")
    return sidecar


def load_artifact(folder: str | Path, *, expect_param_names: Sequence[str] | None = None,
                  expect_sample_rate: int | None = None) -> Artifact:
    """Open and check an artifact folder.

    Raises:
        ArtifactError: missing sidecar or files, malformed sidecar.
        ArtifactVersionError: unknown ``format_version``.
        ChecksumMismatchError: a truncated or modified model or golden file.
        SchemaMismatchError: the recorded parameter schema differs from today's
            :mod:`mixbridge.schema`, or from ``expect_param_names``, or the sample
            rate differs from ``expect_sample_rate``.
    """
    folder = Path(folder)
    sidecar = read_sidecar(folder)
    diffs = schema_differences(sidecar["schema"])
    if diffs:
        raise SchemaMismatchError(
            f"{folder}: the artifact's parameter schema no longer matches mixbridge's "
            f"({'; '.join(diffs)}); re-export from a checkpoint trained on the current schema")
    names = list(sidecar["schema"]["param_names"])
    if expect_param_names is not None and list(expect_param_names) != names:
        raise SchemaMismatchError(
            f"{folder}: the artifact takes parameters {names}, but {list(expect_param_names)} were expected")
    if expect_sample_rate is not None and int(expect_sample_rate) != int(sidecar["sample_rate"]):
        raise SchemaMismatchError(
            f"{folder}: the artifact runs at {sidecar['sample_rate']} Hz, but {expect_sample_rate} Hz was "
            "expected; resample the audio or export a model trained at that rate")
    files = sidecar["files"]
    model_path = _check_file(folder, files["model"], "model")
    golden_path = _check_file(folder, files["golden"], "golden pair")
    return Artifact(folder, sidecar, model_path, golden_path)
