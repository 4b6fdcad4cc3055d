"""The on-disk dataset format: a config, numbered ``.npz`` shards and an append-only manifest.

Layout of a dataset folder (format ``mixbridge-dataset`` version 2)::

    DATASET/config.json        what generated the data (kind, chain, backend, seed,
                               sample rate, sources with sha256...) plus ``n``
    DATASET/manifest.jsonl     one JSON line per committed shard, appended after the
                               shard file is in place (fsync'd): shard path, sha256,
                               byte size, the index range it covers, the example
                               indices it holds and the failed ones with their
                               parameters and reason
    DATASET/shards/shard-SSSSSSSS-EEEEEEEE.npz   examples with index in [S, E)
    DATASET/images/...         optional side files (spectrogram PNGs), listed with
                               sha256 in the record of the shard they belong to
    DATASET/runs.jsonl         one line per run: timing and throughput (not part of
                               the data; ignored by ``verify``'s determinism)

Why ``.npz``: numpy's own zip-of-``.npy`` format is readable with ``numpy.load``
alone (no mixbridge, no torch, no pickle: every member is a plain numeric or
fixed-width unicode array); it holds many named arrays of any dtype and shape in
one file, so a shard is one atomic rename; members are stored uncompressed so a
reader can load one array without inflating the others. numpy's ``savez`` stamps
the current time into the zip headers, so shards are written here with a fixed
timestamp: the same seed gives byte-identical shards.

Commit protocol (what makes ``kill -9`` at any moment safe): side files, then the
shard, are written to a temporary name, fsync'd and renamed into place; only
then is the manifest line appended (one ``write`` + fsync). A shard without a
manifest line is an orphan that the next run overwrites with identical bytes; a
manifest line cut short by a kill is dropped on the next open. Every example
index is in exactly one committed record, as an example or as a failure.

Versions. 2 (this mixbridge): the stored parameters are the values that were
rendered. Values the backend cannot render are not drawn (``config.json``'s
``renderable_ranges`` narrows the sampling) or their examples fail as
``unrenderable``. Demastering labels use the schema's ``demaster_*`` processors
(``demaster_reverb.decay_s``, not ``reverb.rt60_s``). 1: written before that.
Version 1 folders are read only where their labels still mean what they did (see
:func:`legacy_problem`); none is resumed.
"""
from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from mixbridge.atomic import atomic_path, atomic_write_text
from mixbridge.checksum import sha256_bytes as _sha256_bytes

from .errors import (DatasetBusyError, DatasetConfigMismatchError, DatasetFormatError, DatasetIntegrityError,
                     DiskFullError)

FORMAT_NAME = "mixbridge-dataset"
FORMAT_VERSION = 2
#: Versions :meth:`Dataset.open` reads (version 1 only where :func:`legacy_problem` finds nothing).
SUPPORTED_VERSIONS = (1, 2)
#: A run, or a dataset, in which more than this fraction of the examples failed is a failed job
#: (``generate`` raises, ``verify`` fails). A real plugin that crashes now and then costs far less.
DEFAULT_MAX_FAILURE_FRACTION = 0.1
#: Processors whose builtin rendering changed meaning in version 2 (pedalboard's Compressor with a
#: hard knee, Freeverb with RT60 >= 0.61 s, JUCE's sample-peak Limiter became the schema's references).
_V1_BUILTIN_CHANGED = ("compressor", "reverb", "limiter")
CONFIG_FILE = "config.json"
MANIFEST_FILE = "manifest.jsonl"
RUNS_FILE = "runs.jsonl"
LOCK_FILE = ".lock"
SHARD_DIR = "shards"
#: Zip member timestamp of every shard (the earliest a zip can hold): makes shards byte-identical.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
#: Config keys that may differ between runs into one dataset (they do not change any example).
NON_IDENTITY_KEYS = ("n", "format", "version", "source_root", "mixbridge_version")


def sha256_bytes(data: bytes) -> str:
    return _sha256_bytes(data, prefixed=True)


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Serialise named arrays as a deterministic, uncompressed ``.npz`` (readable by ``numpy.load``).

    Raises:
        DatasetFormatError: an array of dtype object (it would need pickle).
    """
    buf = io.BytesIO()
    _write_npz(buf, arrays)
    return buf.getvalue()


def write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> tuple[str, int]:
    """Write :func:`npz_bytes`'s exact bytes to ``path`` atomically, streaming (no copy in memory).

    Returns ``(sha256, size in bytes)`` of the file as written (hashed from the page cache).

    Raises:
        DiskFullError: the disk is full; nothing is left at ``path``.
    """
    try:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                _write_npz(fh, arrays)
            h = hashlib.sha256()
            with open(tmp, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 22), b""):
                    h.update(chunk)
            size = tmp.stat().st_size
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(errno.ENOSPC, f"{path}: disk full while writing a shard; complete shards were "
                                f"kept. Free space on {path.parent} and rerun the same command to resume") from None
        raise
    return "sha256:" + h.hexdigest(), size


def _write_npz(fileobj, arrays: Mapping[str, np.ndarray]) -> None:
    with zipfile.ZipFile(fileobj, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            arr = np.ascontiguousarray(arrays[name])
            if arr.dtype == object:
                raise DatasetFormatError(f"array '{name}' has dtype object; store numbers or fixed-width strings")
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=arr.nbytes > (1 << 31) - (1 << 20)) as member:
                np.lib.format.write_array(member, arr, allow_pickle=False)


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` atomically (temp + fsync + rename). Separate so tests can inject ENOSPC.

    Raises:
        DiskFullError: the disk is full (errno ENOSPC or EDQUOT); nothing is left at ``path``.
    """
    try:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                fh.write(data)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(
                errno.ENOSPC,
                f"{path}: disk full while writing {len(data)} bytes; complete shards were kept. "
                f"Free space on {path.parent} and rerun the same command to resume",
            ) from None
        raise


@dataclass
class ShardRecord:
    """One manifest line: a committed shard covering example indices ``[start, stop)``."""

    shard: str
    sha256: str
    bytes: int
    start: int
    stop: int
    indices: list[int]
    failures: list[dict] = field(default_factory=list)
    files: list[dict] = field(default_factory=list)

    @property
    def covered(self) -> list[int]:
        return sorted(self.indices + [f["index"] for f in self.failures])

    def to_json(self) -> dict:
        return {"shard": self.shard, "sha256": self.sha256, "bytes": self.bytes, "start": self.start,
                "stop": self.stop, "n_examples": len(self.indices), "indices": self.indices,
                "failures": self.failures, "files": self.files}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "ShardRecord":
        return cls(d["shard"], d["sha256"], int(d["bytes"]), int(d["start"]), int(d["stop"]),
                   [int(i) for i in d["indices"]], list(d.get("failures", [])), list(d.get("files", [])))


def legacy_problem(config: Mapping[str, Any]) -> str:
    """Why the labels of a version 1 dataset do not mean what version 2 labels mean ("" if they do).

    * demastering ``dsp`` datasets: their labels are named ``eq.centre_hz``, ``compressor.*``,
      ``reverb.rt60_s``... (now ``demaster_eq.*``, ``demaster_compressor.*``, ``demaster_reverb.decay_s``),
      and their compressor used block-rate ballistics that no longer exist;
    * ``builtin`` datasets with a compressor, reverb or limiter: pedalboard rendered ``knee_db`` > 0 as
      a hard knee, decays below 0.61 s at 0.61 s, and other time constants than the labels say;
      ``vst`` datasets (and builtin EQ-only ones) are unaffected.
    """
    if config.get("version") != 1:
        return ""
    kind = config.get("kind")
    if kind == "demaster" and config.get("mode", "dsp") == "dsp":
        return ("its labels use the names of the version 1 demastering generator (eq.centre_hz, compressor.*, "
                "reverb.rt60_s, echo.*), now demaster_eq.*, demaster_compressor.*, demaster_reverb.decay_s and "
                "demaster_echo.*, and its compressor's block-rate ballistics are gone")
    procs = set(config.get("processors") or ())
    if kind == "mixes":
        procs |= {"compressor", "reverb"}
    changed = sorted(procs & set(_V1_BUILTIN_CHANGED))
    if config.get("backend") == "builtin" and changed:
        return (f"its builtin {', '.join(changed)} labels were rendered by pedalboard (knee_db > 0 as a hard knee, "
                "decays below 0.61 s at 0.61 s, other time constants than the labels), not what they say")
    return ""


def distinct_reasons(failures: Iterable[Mapping[str, Any]], limit: int, seen: set | None = None) -> list[str]:
    """The first ``limit`` failure reasons ``"kind: message"`` that differ in more than their numbers.

    ``seen`` (updated in place) holds the keys of reasons already listed elsewhere.
    """
    import re

    seen = set() if seen is None else seen
    out: list[str] = []
    for f in failures:
        text = f"{f.get('kind')}: {f.get('message')}"
        key = re.sub(r"[-+]?\d[\d.e+-]*", "#", text)
        if key in seen:
            continue
        seen.add(key)
        out.append(text)
        if len(out) >= limit:
            break
    return out


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _identity(config: Mapping[str, Any]) -> dict:
    return {k: v for k, v in config.items() if k not in NON_IDENTITY_KEYS}


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    """Human-readable differences between two JSON values, shortest first."""
    def short(v: Any) -> str:
        text = _canonical(v)
        return text if len(text) <= 60 else text[:57] + "..."

    out: list[str] = []
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for k in sorted(set(a) | set(b)):
            p = f"{path}.{k}" if path else str(k)
            if k not in a:
                out.append(f"{p}: absent in the dataset, {short(b[k])} requested")
            elif k not in b:
                out.append(f"{p}: {short(a[k])} in the dataset, absent in the request")
            else:
                out.extend(_diff(a[k], b[k], p))
    elif isinstance(a, list) and isinstance(b, list) and _canonical(a) != _canonical(b):
        if len(a) != len(b):
            out.append(f"{path}: {len(a)} entries in the dataset, {len(b)} requested")
        else:
            i = next(i for i, (x, y) in enumerate(zip(a, b)) if _canonical(x) != _canonical(y))
            out.extend(_diff(a[i], b[i], f"{path}[{i}]"))
    elif _canonical(a) != _canonical(b):
        out.append(f"{path}: {short(a)} in the dataset, {short(b)} requested")
    return sorted(out, key=len) if not path else out


class Dataset:
    """A dataset folder: its config and committed shard records.

    Use :meth:`create_or_open` to start or resume generation, :meth:`open` to read.
    """

    def __init__(self, root: Path, config: dict, records: list[ShardRecord]):
        self.root = Path(root)
        self.config = config
        self.records = records

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, root: str | Path, *, repair: bool = False, legacy: bool = False) -> "Dataset":
        """Read a dataset's config and manifest.

        A last manifest line cut short by a kill is ignored (and cut off when ``repair``).
        ``legacy=True`` also opens a version 1 dataset whose labels changed meaning
        (:func:`legacy_problem`), for ``verify`` and ``info``; loaders of training data leave it off.

        Raises:
            DatasetFormatError: no ``config.json``, not a mixbridge dataset, an unknown version,
                or a version 1 dataset whose labels no longer mean what they say (named; regenerate it).
            DatasetIntegrityError: a malformed manifest line before the last one.
        """
        root = Path(root)
        cfg_path = root / CONFIG_FILE
        if not cfg_path.is_file():
            raise DatasetFormatError(f"{root}: not a mixbridge dataset (no {CONFIG_FILE}); "
                                     "create one with `mixbridge datagen effect|demaster|mixes -o DIR`")
        try:
            config = json.loads(cfg_path.read_text())
        except (OSError, ValueError) as e:
            raise DatasetFormatError(f"{cfg_path}: unreadable config ({e})") from None
        if config.get("format") != FORMAT_NAME:
            raise DatasetFormatError(f"{cfg_path}: format {config.get('format')!r} is not {FORMAT_NAME!r}")
        if config.get("version") not in SUPPORTED_VERSIONS:
            raise DatasetFormatError(f"{cfg_path}: format version {config.get('version')!r} is not supported "
                                     f"(this mixbridge reads {SUPPORTED_VERSIONS}); upgrade mixbridge")
        problem = legacy_problem(config)
        if problem and not legacy:
            raise DatasetFormatError(
                f"{cfg_path}: a format version 1 {config.get('kind')} dataset: {problem}. Regenerate it with this "
                f"mixbridge (the same `mixbridge datagen {config.get('kind')}` command into a new folder); "
                "`mixbridge datagen verify` still checks its integrity")
        records, good_bytes, total = _read_manifest(root / MANIFEST_FILE)
        if repair and good_bytes < total:
            with open(root / MANIFEST_FILE, "rb+") as fh:
                fh.truncate(good_bytes)
                fh.flush()
                os.fsync(fh.fileno())
        return cls(root, config, records)

    @classmethod
    def create_or_open(cls, root: str | Path, config: dict) -> "Dataset":
        """Start a dataset at ``root`` with ``config``, or reopen it to resume.

        ``config["n"]`` may grow between runs (more examples of the same kind);
        every other key must match what the folder holds.

        Raises:
            DatasetConfigMismatchError: the folder holds data of another configuration;
                the message lists the differing keys.
            DatasetFormatError: the folder is not empty and not a dataset.
        """
        root = Path(root)
        config = {"format": FORMAT_NAME, "version": FORMAT_VERSION, **config}
        if (root / CONFIG_FILE).exists():
            ds = cls.open(root, repair=True, legacy=True)
            if ds.config.get("version") != FORMAT_VERSION:
                raise DatasetConfigMismatchError(
                    f"{root}: holds a format version {ds.config.get('version')} dataset and this mixbridge writes "
                    f"version {FORMAT_VERSION}; refusing to mix the two in one dataset. Generate into a new folder")
            diffs = _diff(_identity(ds.config), _identity(config))
            if diffs:
                raise DatasetConfigMismatchError(
                    f"{root}: holds a dataset generated with another configuration ({'; '.join(diffs[:3])}"
                    f"{f'; and {len(diffs) - 3} more' if len(diffs) > 3 else ''}); refusing to mix two configurations in one dataset. "
                    "Use a new output folder, or repeat the original options to resume")
            if int(config.get("n", 0)) > int(ds.config.get("n", 0)):
                ds.config["n"] = int(config["n"])
                atomic_write_text(root / CONFIG_FILE, json.dumps(ds.config, indent=2, sort_keys=True) + "\n")
            return ds
        if root.exists() and any(p for p in root.iterdir() if not p.name.startswith(".")):
            raise DatasetFormatError(f"{root}: the folder is not empty and holds no dataset; give a new or empty folder")
        root.mkdir(parents=True, exist_ok=True)
        write_file(root / CONFIG_FILE, (json.dumps(config, indent=2, sort_keys=True) + "\n").encode())
        (root / MANIFEST_FILE).touch()
        return cls(root, config, [])

    # ------------------------------------------------------------------ writing
    def lock(self) -> None:
        """Take the folder's writer lock (``flock`` on ``.lock``; the OS drops it if the process dies)
        and remove temporary files a killed run left behind.

        Raises:
            DatasetBusyError: another run holds the lock.
        """
        import fcntl

        fh = open(self.root / LOCK_FILE, "a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            raise DatasetBusyError(f"{self.root}: another datagen run (pid {holder}) is writing to this dataset; "
                                   "wait for it to finish or stop it, then rerun") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._lock = fh
        for sub in (SHARD_DIR, "images"):
            for tmp in (self.root / sub).glob(".*.tmp*") if (self.root / sub).is_dir() else []:
                tmp.unlink(missing_ok=True)

    def unlock(self) -> None:
        fh = getattr(self, "_lock", None)
        if fh is not None:
            fh.close()  # closing drops the flock
            self._lock = None

    def commit(self, start: int, stop: int, arrays: Mapping[str, np.ndarray], indices: Iterable[int],
               failures: Iterable[dict] = (), files: Mapping[str, bytes] | None = None) -> ShardRecord:
        """Write side files and the shard atomically, then append the manifest line.

        Raises:
            DiskFullError: out of space; the shard is not committed (a rerun redoes it).
        """
        file_recs = []
        for rel, data in sorted((files or {}).items()):
            write_file(self.root / rel, data)
            file_recs.append({"path": rel, "sha256": sha256_bytes(data), "bytes": len(data)})
        rel = f"{SHARD_DIR}/shard-{start:08d}-{stop:08d}.npz"
        digest, size = write_npz(self.root / rel, arrays)
        rec = ShardRecord(rel, digest, size, start, stop, sorted(int(i) for i in indices),
                          sorted(failures, key=lambda f: f["index"]), file_recs)
        self.append_record(rec)
        return rec

    def append_record(self, rec: ShardRecord) -> None:
        line = (json.dumps(rec.to_json(), sort_keys=True, separators=(",", ":")) + "\n").encode()
        try:
            fd = os.open(self.root / MANIFEST_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFullError(errno.ENOSPC, f"{self.root / MANIFEST_FILE}: disk full while appending; "
                                    "free space and rerun the same command to resume") from None
            raise
        self.records.append(rec)

    def log_run(self, summary: Mapping[str, Any]) -> None:
        """Append a run summary to ``runs.jsonl`` (best effort: a full disk is not an error here)."""
        try:
            with open(self.root / RUNS_FILE, "a") as fh:
                fh.write(json.dumps(summary, sort_keys=True) + "\n")
        except OSError:
            pass

    # ------------------------------------------------------------------ reading
    @property
    def n(self) -> int:
        return int(self.config.get("n", 0))

    def done_indices(self) -> set[int]:
        out: set[int] = set()
        for r in self.records:
            out.update(r.covered)
        return out

    def example_records(self) -> list[ShardRecord]:
        return sorted(self.records, key=lambda r: (r.start, r.stop))

    def load_shard(self, rec: ShardRecord) -> dict[str, np.ndarray]:
        with np.load(self.root / rec.shard, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}


def _read_manifest(path: Path) -> tuple[list[ShardRecord], int, int]:
    """Parse the manifest; returns records, the byte length of the good prefix and the file size."""
    if not path.exists():
        return [], 0, 0
    raw = path.read_bytes()
    records: list[ShardRecord] = []
    pos = 0
    lines = raw.split(b"\n")
    for i, line in enumerate(lines):
        last = i == len(lines) - 1
        if last:  # bytes after the final newline: a line cut short by a kill (or nothing)
            break
        try:
            records.append(ShardRecord.from_json(json.loads(line)))
        except (ValueError, KeyError, TypeError) as e:
            if i == len(lines) - 2 and not raw.endswith(b"\n"):
                break
            raise DatasetIntegrityError(f"{path}: line {i + 1} is malformed ({e}); the manifest was edited "
                                        "or corrupted; restore it or regenerate the dataset") from None
        pos += len(line) + 1
    return records, pos, len(raw)


# ---------------------------------------------------------------------- units of work
def plan_units(done: set[int], n: int, shard_size: int) -> list[tuple[int, int, list[int]]]:
    """Split the not-yet-done indices of ``[0, n)`` into shard units ``(start, stop, indices)``.

    Units lie inside aligned blocks ``[k * shard_size, (k + 1) * shard_size)`` and are
    contiguous runs of missing indices, so a given ``n`` always gives the same
    shards however often the job was interrupted.
    """
    units = []
    for block in range(0, n, shard_size):
        run: list[int] = []
        for i in range(block, min(block + shard_size, n)):
            if i in done:
                if run:
                    units.append((run[0], run[-1] + 1, run))
                    run = []
            else:
                run.append(i)
        if run:
            units.append((run[0], run[-1] + 1, run))
    return units


# ---------------------------------------------------------------------- verify / info
@dataclass
class VerifyReport:
    root: Path
    ok: bool
    problems: list[str]
    warnings: list[str]
    n_examples: int
    n_failures: int
    n_expected: int
    missing: list[int]
    #: Recorded failures by kind, and the first distinct reasons (``"kind: message"``).
    failures_by_kind: dict = field(default_factory=dict)
    failure_reasons: list = field(default_factory=list)

    def text(self) -> str:
        fails = ", ".join(f"{k} {v}" for k, v in sorted(self.failures_by_kind.items()))
        lines = [f"{self.root}: {'OK' if self.ok else 'FAILED'} - {self.n_examples} examples, "
                 f"{self.n_failures} recorded failures{f' ({fails})' if fails else ''}, "
                 f"{len(self.missing)} of {self.n_expected} indices missing"]
        lines += [f"  problem: {p}" for p in self.problems]
        lines += [f"  failure reason: {r}" for r in self.failure_reasons]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def verify(root: str | Path, *, allow_incomplete: bool = False, deep: bool = True,
           max_failure_fraction: float | None = None) -> VerifyReport:
    """Check a dataset's integrity, and that its examples did not mostly fail.

    Checks: every manifest record's shard exists with its recorded size and sha256,
    its arrays load without pickle, its ``index`` array equals the record's indices,
    every example array has one row per example and only finite samples; side
    files match their sha256; no index appears twice; every index of ``[0, n)`` is
    covered (unless ``allow_incomplete``). Files on disk that no record names are
    leftovers of a killed run (warnings: the next run overwrites them). Recorded
    failures are counted by kind with their first distinct reasons; the dataset
    fails when no example succeeded or more than ``max_failure_fraction`` of the
    covered indices failed (None: :data:`DEFAULT_MAX_FAILURE_FRACTION`). A version 1 dataset whose labels changed meaning is
    checked too, with a warning that says why it cannot be loaded for training.

    Raises:
        DatasetFormatError: not a dataset.
    """
    if max_failure_fraction is None:
        max_failure_fraction = DEFAULT_MAX_FAILURE_FRACTION
    ds = Dataset.open(root, legacy=True)
    problems: list[str] = []
    warnings: list[str] = []
    legacy = legacy_problem(ds.config)
    if legacy:
        warnings.append(f"format version 1: {legacy}; loaders refuse it, regenerate it with this mixbridge")
    seen: dict[int, str] = {}
    n_ex = n_fail = 0
    named = set()
    for rec in ds.records:
        named.add(rec.shard)
        for idx in rec.covered:
            if idx in seen:
                problems.append(f"index {idx} appears in {seen[idx]} and {rec.shard} (duplicate)")
            seen[idx] = rec.shard
        n_ex += len(rec.indices)
        n_fail += len(rec.failures)
        path = ds.root / rec.shard
        if not path.is_file():
            problems.append(f"{rec.shard}: missing (the manifest names it)")
            continue
        data = path.read_bytes()
        if len(data) != rec.bytes or sha256_bytes(data) != rec.sha256:
            problems.append(f"{rec.shard}: checksum or size mismatch (corrupted or replaced)")
            continue
        if deep:
            try:
                with np.load(io.BytesIO(data), allow_pickle=False) as z:
                    arrays = {k: z[k] for k in z.files}
            except Exception as e:  # a corrupt zip or npy header
                problems.append(f"{rec.shard}: cannot be read by numpy.load ({e})")
                continue
            idx = arrays.get("index")
            if idx is None or [int(i) for i in idx] != rec.indices:
                problems.append(f"{rec.shard}: its 'index' array does not match the manifest's indices")
            for k, a in arrays.items():
                if a.ndim and a.shape[0] != len(rec.indices):
                    problems.append(f"{rec.shard}: array '{k}' has {a.shape[0]} rows for {len(rec.indices)} examples")
                if a.dtype.kind == "f" and "params" not in k and not np.isfinite(a).all():
                    problems.append(f"{rec.shard}: array '{k}' holds NaN/inf")
        for f in rec.files:
            named.add(f["path"])
            fp = ds.root / f["path"]
            if not fp.is_file() or sha256_bytes(fp.read_bytes()) != f["sha256"]:
                problems.append(f"{f['path']}: missing or checksum mismatch")
    for p in sorted(ds.root.rglob("*")):
        rel = p.relative_to(ds.root).as_posix()
        if p.is_file() and rel.startswith((SHARD_DIR + "/", "images/")) and rel not in named:
            warnings.append(f"{rel}: not in the manifest (left by an interrupted run; the next run replaces it)")
    missing = sorted(set(range(ds.n)) - set(seen))
    if missing and not allow_incomplete:
        problems.append(f"{len(missing)} of {ds.n} example indices are not generated yet (first {missing[:5]}); "
                        "rerun the same generate command to finish")
    failures = [f for r in ds.example_records() for f in r.failures]
    by_kind: dict[str, int] = {}
    for f in failures:
        by_kind[f["kind"]] = by_kind.get(f["kind"], 0) + 1
    covered = n_ex + n_fail
    if n_fail and (n_ex == 0 or n_fail > max_failure_fraction * covered):
        limit = "no example succeeded" if n_ex == 0 else f"more than the allowed {max_failure_fraction:.0%}"
        problems.append(f"{n_fail} of {covered} generated indices are recorded failures ({limit}); see the "
                        "failure reasons below")
    return VerifyReport(ds.root, not problems, problems, warnings[:20], n_ex, n_fail, ds.n, missing, by_kind,
                        distinct_reasons(failures, 5))


def info(root: str | Path) -> dict:
    """Summarise a dataset: kind, config, counts, failures by kind and first reasons, sizes, arrays of one shard."""
    ds = Dataset.open(root, legacy=True)
    fails: dict[str, int] = {}
    for r in ds.records:
        for f in r.failures:
            fails[f["kind"]] = fails.get(f["kind"], 0) + 1
    arrays = {}
    for r in ds.example_records():
        if r.indices:
            with np.load(ds.root / r.shard, allow_pickle=False) as z:
                arrays = {k: {"dtype": str(z[k].dtype), "shape_per_example": list(z[k].shape[1:])} for k in z.files}
            break
    n_ex = sum(len(r.indices) for r in ds.records)
    cfg = ds.config
    return {
        "root": str(ds.root), "kind": cfg.get("kind"), "n_requested": ds.n, "n_examples": n_ex,
        "n_failures": sum(fails.values()), "failures_by_kind": fails, "n_shards": len(ds.records),
        "bytes": sum(r.bytes for r in ds.records) + sum(f["bytes"] for r in ds.records for f in r.files),
        "sample_rate": cfg.get("sample_rate"), "seed": cfg.get("seed"), "backend": cfg.get("backend"),
        "processors": cfg.get("processors"), "param_names": cfg.get("param_names"), "arrays": arrays,
        "complete": len(ds.done_indices() & set(range(ds.n))) == ds.n, "version": cfg.get("version"),
        "failure_reasons": distinct_reasons((f for r in ds.example_records() for f in r.failures), 5),
        "renderable_ranges": cfg.get("renderable_ranges", {}), "legacy_problem": legacy_problem(cfg),
    }


def shard_memmaps(path: str | Path) -> dict[str, np.ndarray]:
    """Memory-map every array of an uncompressed ``.npz`` shard without reading it.

    Shards are stored uncompressed (``ZIP_STORED``), so each ``.npy`` member is a
    contiguous byte range of the file: this reads the zip's local headers and the
    ``.npy`` headers and returns read-only ``numpy.memmap`` views. Random access to
    one example then costs only its own bytes.

    Raises:
        DatasetFormatError: a compressed member or an unreadable shard (named).
    """
    import struct

    path = Path(path)
    out: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(path) as zf, open(path, "rb") as fh:
            for info in zf.infolist():
                if info.compress_type != zipfile.ZIP_STORED:
                    raise DatasetFormatError(f"{path}: member {info.filename} is compressed; cannot memory-map it")
                fh.seek(info.header_offset)
                local = fh.read(30)
                name_len, extra_len = struct.unpack("<HH", local[26:30])
                fh.seek(info.header_offset + 30 + name_len + extra_len)
                version = np.lib.format.read_magic(fh)
                shape, fortran, dtype = (np.lib.format.read_array_header_1_0(fh) if version == (1, 0)
                                         else np.lib.format.read_array_header_2_0(fh))
                offset = fh.tell()
                name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                if int(np.prod(shape)) == 0:
                    out[name] = np.zeros(shape, dtype=dtype)
                else:
                    out[name] = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape,
                                          order="F" if fortran else "C")
    except (OSError, zipfile.BadZipFile, ValueError) as e:
        raise DatasetFormatError(f"{path}: cannot memory-map the shard ({e})") from None
    return out
