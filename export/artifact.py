"""Versioned export artifacts: the sidecar format, checksums and the loader (torch-free).

An artifact is a folder (STYLE.md point 6)::

    ARTIFACT_DIR/
      model.onnx | model.ts     the streaming graph (ONNX) or TorchScript module
      golden.npz                input, params, output: produced by the torch model
      artifact.json             the sidecar
      artifact.checksum.json    the sidecar's checksum (written last, atomically)

The sidecar holds ``format_version``, ``artifact_format`` (``onnx`` or
``torchscript``), ``architecture``, ``model_name``, the constructor ``config``, the
parameter ``schema`` (names, units, ranges, scales), ``sample_rate`` (Hz),
``latency_samples``, ``receptive_field`` (samples), ``block_sizes`` (``min``..``max``
samples per call), the graph's ``io`` (names and state shapes per batch item),
``files`` (name, bytes, sha256 of the model file and the golden pair) and
``provenance`` (versions, source checkpoint checksum) and, from format version 2,
``trained_ranges``: the normalised ``[u_lo, u_hi]`` of every parameter the model was
trained on (from the checkpoint's dataset record; ``[0, 1]`` where it was not narrowed),
which the runtime clamps to. It holds no timestamps, so exporting the same weights
twice gives identical bytes.

**The sidecar's own checksum** (version 2): ``artifact.checksum.json`` beside it holds the
sha256 of the canonical JSON (sorted keys, no spaces) of every top-level field of the
sidecar, and of the whole. The sidecar's values are part of the model (a proxy trained
at 44.1 kHz is wrong at 48 kHz; ``latency_samples`` aligns its output), so
:func:`load_artifact` refuses a sidecar whose fields no longer match, naming each
edited field; re-indenting the JSON changes no value and is accepted. A version-1
artifact (no checksum file, exported before it existed) still loads, with
:attr:`Artifact.sidecar_checked` False and full parameter ranges; if a checksum file
is present it is checked whatever the sidecar's version says.

:func:`load_artifact` also refuses an unknown ``format_version``, a missing, truncated
or modified model or golden file (size and sha256 are both checked), values out of
their limits (a ``sample_rate`` outside 8 000..384 000 Hz, a latency not shorter than
the receptive field, state shapes that are not small positive integers), a parameter
schema that no longer matches :mod:`mixbridge.schema`, and (when asked) another
parameter list or sample rate than the caller's. This module imports only the standard
library and numpy.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mixbridge.checksum import sha256_bytes, sha256_file
from mixbridge.proxy_schema import schema_differences
from mixbridge.records import RecordFormatError, read_record

ARTIFACT_FORMAT_VERSION = 2
SUPPORTED_VERSIONS = (1, 2)
#: The first format version whose sidecar must have a checksum file and trained ranges.
CHECKED_SIDECAR_VERSION = 2
SIDECAR_NAME = "artifact.json"
CHECKSUM_NAME = "artifact.checksum.json"
CHECKSUM_FORMAT = "mixbridge-artifact-checksum"
CHECKSUM_VERSIONS = (1,)
#: Sample rates an artifact may declare, Hz (telephone to 8x 48 kHz).
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 384000
#: Largest receptive field, samples (about 21 s at 48 kHz; the shipped proxies use 13 333).
MAX_RECEPTIVE_FIELD = 1 << 20
#: Largest audio channel count a model may take or give.
MAX_CHANNELS = 64
#: Largest state tensor per batch item, elements (64 MiB of float32).
MAX_STATE_ELEMENTS = 1 << 24
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


def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


def checksum_record(sidecar: Mapping) -> dict:
    """The record of ``artifact.checksum.json`` for a sidecar: ``{"format", "version", "sidecar",
    "sha256", "fields": {key: sha256}}``, each digest (hex) over the canonical JSON (sorted keys,
    no spaces) of the whole sidecar or of one top-level field."""
    return {"format": CHECKSUM_FORMAT, "version": 1, "sidecar": SIDECAR_NAME,
            "sha256": sha256_bytes(_canonical(dict(sidecar)), prefixed=False),
            "fields": {k: sha256_bytes(_canonical(v), prefixed=False) for k, v in sorted(sidecar.items())}}


def check_sidecar_checksum(folder: str | Path, sidecar: Mapping) -> bool:
    """Check ``sidecar`` against ``folder/artifact.checksum.json``; True when checked, False for a
    version-1 sidecar without a checksum file (exported before it existed).

    Raises:
        ArtifactError: a version-2 sidecar without its checksum file, or an unreadable one.
        ChecksumMismatchError: fields edited, added or removed since the export (each one named).
    """
    folder = Path(folder)
    path = folder / CHECKSUM_NAME
    if not path.is_file():
        if sidecar.get("format_version", 0) < CHECKED_SIDECAR_VERSION:
            return False
        raise ArtifactError(f"{folder}: the sidecar's checksum file {CHECKSUM_NAME} is missing, so "
                            f"{SIDECAR_NAME} cannot be trusted; re-export the artifact")
    rec = read_record(path, format=CHECKSUM_FORMAT, versions=CHECKSUM_VERSIONS, what="artifact checksum file",
                      fix="re-export the artifact", error=ArtifactError)
    fields = rec.get("fields")
    if not isinstance(fields, Mapping):
        raise ArtifactError(f"{path}: no 'fields' object; re-export the artifact")
    try:
        now = checksum_record(sidecar)["fields"]
    except ValueError:  # NaN or inf in the JSON: never written by an export
        now = {}
    edited = sorted(k for k in set(fields) & set(now) if fields[k] != now[k])
    added = sorted(set(now) - set(fields))
    removed = sorted(set(fields) - set(now))
    if edited or added or removed:
        parts = []
        for key in edited:
            value = sidecar[key]
            parts.append(f"{key} (now {value!r})" if isinstance(value, (int, float, str)) else key)
        what = "; ".join(x for x in (
            f"edited: {', '.join(parts)}" if parts else "",
            f"added: {', '.join(added)}" if added else "",
            f"removed: {', '.join(removed)}" if removed else "") if x)
        raise ChecksumMismatchError(
            f"{folder / SIDECAR_NAME}: the sidecar was changed after export ({what}); its values describe "
            "the exported model (it runs only at the sample rate it was trained at, and its latency "
            f"aligns its output), so it is refused; re-export the artifact (`mixbridge export CHECKPOINT -o "
            f"{folder}`) instead of editing {SIDECAR_NAME}")
    return True


def _int_in(sidecar_path: Path, what: str, value: object, lo: int, hi: int, fix: str = "re-export the artifact") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ArtifactError(f"{sidecar_path}: {what} = {value!r} must be an integer in {lo}..{hi}; {fix}")
    return value


def check_sidecar_values(sidecar: Mapping, sidecar_path: Path) -> None:
    """Range-check the sidecar's numbers (rate, latency, receptive field, block sizes, channels,
    state shapes, trained ranges) against the named limits of this module.

    Raises:
        ArtifactError: the first value out of its limits, named with the limit.
    """
    _int_in(sidecar_path, "sample_rate", sidecar["sample_rate"], MIN_SAMPLE_RATE, MAX_SAMPLE_RATE)
    rf = _int_in(sidecar_path, "receptive_field", sidecar["receptive_field"], 1, MAX_RECEPTIVE_FIELD)
    _int_in(sidecar_path, "latency_samples", sidecar["latency_samples"], 0, rf - 1)
    blocks = sidecar["block_sizes"]
    if not isinstance(blocks, Mapping):
        raise ArtifactError(f"{sidecar_path}: block_sizes must be {{'min', 'max'}}; re-export the artifact")
    lo = _int_in(sidecar_path, "block_sizes.min", blocks.get("min"), MIN_BLOCK_SIZE, MAX_BLOCK_SIZE)
    _int_in(sidecar_path, "block_sizes.max", blocks.get("max"), lo, MAX_BLOCK_SIZE)
    config = sidecar["config"]
    if not isinstance(config, Mapping):
        raise ArtifactError(f"{sidecar_path}: config must be an object; re-export the artifact")
    for key in ("n_inputs", "n_outputs"):
        _int_in(sidecar_path, f"config.{key}", config.get(key), 1, MAX_CHANNELS)
    io = sidecar["io"]
    if not isinstance(io, Mapping):
        raise ArtifactError(f"{sidecar_path}: io must be an object; re-export the artifact")
    for key in ("input_state_shape", "hidden_state_shape"):
        shape = io.get(key)
        if (not isinstance(shape, list) or not shape or
                any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape) or
                math.prod(shape) > MAX_STATE_ELEMENTS):
            raise ArtifactError(f"{sidecar_path}: io.{key} = {shape!r} must be a list of positive integers "
                                f"of at most {MAX_STATE_ELEMENTS} elements in all; re-export the artifact")
    ranges = sidecar.get("trained_ranges")
    if ranges is None:
        if sidecar.get("format_version", 0) >= CHECKED_SIDECAR_VERSION:
            raise ArtifactError(f"{sidecar_path}: the sidecar lacks trained_ranges; re-export the artifact")
        return
    names = list(sidecar["schema"].get("param_names", [])) if isinstance(sidecar["schema"], Mapping) else []
    if not isinstance(ranges, Mapping) or sorted(ranges) != sorted(names):
        raise ArtifactError(f"{sidecar_path}: trained_ranges must name every parameter ({', '.join(names)}); "
                            "re-export the artifact")
    for name, pair in ranges.items():
        ok = (isinstance(pair, list) and len(pair) == 2 and
              all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in pair))
        if not ok or not 0.0 <= pair[0] <= pair[1] <= 1.0:
            raise ArtifactError(f"{sidecar_path}: trained_ranges.{name} = {pair!r} must be [u_lo, u_hi] with "
                                "0 <= u_lo <= u_hi <= 1 (normalised); re-export the artifact")


@dataclass
class Artifact:
    """A loaded, checked artifact. ``sidecar`` is the parsed ``artifact.json``."""

    path: Path
    sidecar: dict
    model_path: Path
    golden_path: Path
    #: True when the sidecar matched its checksum file; False for a version-1 artifact without one.
    sidecar_checked: bool = True
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
    def trained_ranges(self) -> dict[str, tuple[float, float]]:
        """``{name: (u_lo, u_hi)}``: the normalised range each parameter was trained on
        (``(0, 1)`` for every parameter of a version-1 artifact, which did not record them)."""
        ranges = self.sidecar.get("trained_ranges") or {}
        return {n: (float(ranges[n][0]), float(ranges[n][1])) if n in ranges else (0.0, 1.0)
                for n in self.param_names}

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
    if not isinstance(sidecar["schema"], Mapping) or not isinstance(sidecar["files"], Mapping):
        raise ArtifactError(f"{sidecar_path}: schema and files must be objects; re-export the artifact")
    return sidecar


def load_artifact(folder: str | Path, *, expect_param_names: Sequence[str] | None = None,
                  expect_sample_rate: int | None = None) -> Artifact:
    """Open and check an artifact folder.

    Order: the version, the schema against today's, the sidecar's checksum, its values'
    limits, the caller's expectations, then the model and golden files.

    Raises:
        ArtifactError: missing sidecar or files, malformed sidecar, a value out of its limits,
            a version-2 sidecar without its checksum file.
        ArtifactVersionError: unknown ``format_version``.
        ChecksumMismatchError: a truncated or modified model or golden file, or sidecar fields
            edited after export (named).
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
    checked = check_sidecar_checksum(folder, sidecar)
    check_sidecar_values(sidecar, folder / SIDECAR_NAME)
    names = list(sidecar["schema"]["param_names"])
    if expect_param_names is not None and list(expect_param_names) != names:
        raise SchemaMismatchError(
            f"{folder}: the artifact takes parameters {names}, but {list(expect_param_names)} were expected")
    if expect_sample_rate is not None and int(expect_sample_rate) != int(sidecar["sample_rate"]):
        raise SchemaMismatchError(
            f"{folder}: the artifact runs at {sidecar['sample_rate']} Hz, but {expect_sample_rate} Hz was "
            "expected; resample the audio or export a model trained at that rate")
    files = sidecar["files"]
    for key in ("model", "golden"):
        rec = files.get(key)
        if not (isinstance(rec, Mapping) and isinstance(rec.get("name"), str) and isinstance(rec.get("sha256"), str)
                and isinstance(rec.get("bytes"), int)):
            raise ArtifactError(f"{folder / SIDECAR_NAME}: files.{key} must be {{name, bytes, sha256}}; "
                                "re-export the artifact")
    model_path = _check_file(folder, files["model"], "model")
    golden_path = _check_file(folder, files["golden"], "golden pair")
    return Artifact(folder, sidecar, model_path, golden_path, sidecar_checked=checked)
