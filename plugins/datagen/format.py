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

Why ``.npz``: numpy's own format, readable with ``numpy.load`` alone, one file per shard
(one atomic rename), uncompressed so it memory-maps; written byte-deterministically
(:mod:`.shards`). Checking a folder: :mod:`.verify`.

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
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from mixbridge.atomic import atomic_write_text
from mixbridge.checksum import sha256_bytes, sha256_file
from mixbridge.records import read_record

from .errors import (
    DatasetBusyError,
    DatasetConfigMismatchError,
    DatasetFormatError,
    DatasetIntegrityError,
    DiskFullError,
    SourceChangedError,
)
from .shards import write_file, write_npz

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
#: Config keys that may differ between runs into one dataset (they do not change any example).
NON_IDENTITY_KEYS = ("n", "format", "version", "source_root", "mixbridge_version")
#: Changed source files named in the error (the rest are counted).
MAX_CHANGES_SHOWN = 5


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
    #: Examples stored after a retry: ``{"index", "attempts": [{"kind", "message"}, {"kind": "ok"}]}``
    #: (:data:`~.results.RETRY_KINDS`); a failure that was retried holds its ``attempts`` itself.
    retries: list[dict] = field(default_factory=list)

    @property
    def covered(self) -> list[int]:
        """Every index the record resolves, as an example or as a failure, sorted."""
        return sorted(self.indices + [f["index"] for f in self.failures])

    def to_json(self) -> dict:
        """The manifest line's JSON object (``n_examples`` added for people reading the file)."""
        d = {"shard": self.shard, "sha256": self.sha256, "bytes": self.bytes, "start": self.start,
             "stop": self.stop, "n_examples": len(self.indices), "indices": self.indices,
             "failures": self.failures, "files": self.files}
        if self.retries:
            d["retries"] = self.retries
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ShardRecord:
        """Parse one manifest line's object.

        Raises:
            KeyError, TypeError, ValueError: a malformed line (``Dataset.open`` names it).
        """
        return cls(d["shard"], d["sha256"], int(d["bytes"]), int(d["start"]), int(d["stop"]),
                   [int(i) for i in d["indices"]], list(d.get("failures", [])), list(d.get("files", [])),
                   list(d.get("retries", [])))


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


def reason_key(text: str) -> str:
    """``text`` with every number replaced by ``#``: messages that differ only in their numbers share a key."""
    return re.sub(r"[-+]?\d[\d.e+-]*", "#", text)


def distinct_reasons(failures: Iterable[Mapping[str, Any]], limit: int, seen: set | None = None) -> list[str]:
    """The first ``limit`` failure reasons ``"kind: message"`` that differ in more than their numbers.

    ``seen`` (updated in place) holds the keys of reasons already listed elsewhere.
    """
    seen = set() if seen is None else seen
    out: list[str] = []
    for f in failures:
        text = f"{f.get('kind')}: {f.get('message')}"
        key = reason_key(text)
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


def source_files(config: Mapping[str, Any]) -> dict[str, str]:
    """``{source path relative to the source root: "sha256:<hex>"}`` of a config (effect/demaster
    ``sources``, mixes ``songs[].stems[]``); {} for a config without recorded sources."""
    if "sources" in config:
        return {str(d["path"]): str(d.get("sha256", "")) for d in config["sources"]}
    if "songs" in config:
        return {str(st["path"]): str(st.get("sha256", "")) for song in config["songs"] for st in song["stems"]}
    return {}


def source_changes(stored: Mapping[str, Any], requested: Mapping[str, Any]) -> list[str]:
    """The source files whose content differs between a dataset's config and a new request.

    Compared by the per-file sha256 each config recorded, not by where the folder is: a source
    folder moved elsewhere with the same files has no changes. Returns ``"PATH (why)"`` entries,
    sorted: ``content differs``, ``not in the source now``, ``new in the source``.
    """
    a, b = source_files(stored), source_files(requested)
    out = [f"{k} (content differs)" for k in sorted(set(a) & set(b)) if a[k] != b[k]]
    out += [f"{k} (not in the source now)" for k in sorted(set(a) - set(b))]
    out += [f"{k} (new in the source)" for k in sorted(set(b) - set(a))]
    return out


def inside(root: Path, rel: str, what: str = "a path") -> Path:
    """``root / rel`` when it lies inside the dataset folder ``root``, else an error.

    A manifest names its shards and side files relative to the dataset folder; an absolute
    path, one that climbs out with ``..`` or one that resolves outside through a link is
    refused, so a manifest cannot make a loader read ``/etc/hostname`` or ``../x.npz``.

    Raises:
        DatasetIntegrityError: naming the path and the folder.
    """
    p = Path(rel)
    if not rel or p.is_absolute() or ".." in p.parts:
        raise DatasetIntegrityError(f"{root}: the manifest names {what} {rel!r} outside the dataset folder "
                                    "(absolute or with '..'); the manifest was edited or corrupted: restore it "
                                    "or regenerate the dataset")
    full = root / p
    base = root.resolve()
    if not full.resolve().is_relative_to(base):
        raise DatasetIntegrityError(f"{root}: the manifest's {what} {rel!r} resolves to {full.resolve()}, outside "
                                    "the dataset folder (through a link); restore the dataset folder or regenerate it")
    return full


class Dataset:
    """A dataset folder: its config and committed shard records.

    Use :meth:`create_or_open` to start or resume generation, :meth:`open` to read.
    """

    def __init__(self, root: Path, config: dict, records: list[ShardRecord]):
        self.root = Path(root)
        self.config = config
        self.records = records
        #: The open ``.lock`` file while :meth:`lock` holds the writer lock.
        self._lock: TextIO | None = None

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, root: str | Path, *, repair: bool = False, legacy: bool = False) -> Dataset:
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
        config = read_record(cfg_path, format=FORMAT_NAME, versions=SUPPORTED_VERSIONS, what="mixbridge dataset config",
                             fix="upgrade mixbridge", error=DatasetFormatError,
                             missing=f"{root}: not a mixbridge dataset (no {CONFIG_FILE}); "
                                     "create one with `mixbridge datagen KIND -o DIR` (mixbridge datagen --help)")
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
    def create_or_open(cls, root: str | Path, config: dict, *, force: bool = False) -> Dataset:
        """Start a dataset at ``root`` with ``config``, or reopen it to resume.

        ``config["n"]`` may grow between runs (more examples of the same kind);
        every other key must match what the folder holds. The source is compared by
        content (the per-file sha256 both configs recorded, :func:`source_changes`), wherever
        it is now: a resumed run reads the files from the request's ``source_root`` (the
        ``--source`` given now; ``config.json`` is updated to it), so a moved source folder
        works and a changed one is refused.

        ``force`` discards a dataset of another configuration (or source) in ``root`` and starts
        over (only the dataset's own files are removed).

        Raises:
            SourceChangedError: the source's files differ from the ones the dataset was generated
                from (the files named).
            DatasetConfigMismatchError: the folder holds data of another configuration;
                the message lists the differing keys.
            DatasetFormatError: the folder is not empty and not a dataset.
            DatasetBusyError: ``force`` while another run writes to the folder.
        """
        root = Path(root)
        config = {"format": FORMAT_NAME, "version": FORMAT_VERSION, **config}
        if (root / CONFIG_FILE).exists():
            try:
                return cls._reopen(root, config)
            except DatasetConfigMismatchError:
                if not force:
                    raise
            discard(root)
        if root.exists() and any(p for p in root.iterdir() if not p.name.startswith(".")):
            raise DatasetFormatError(f"{root}: the folder is not empty and holds no dataset; "
                                     "give a new or empty folder")
        root.mkdir(parents=True, exist_ok=True)
        write_file(root / CONFIG_FILE, (json.dumps(config, indent=2, sort_keys=True) + "\n").encode())
        (root / MANIFEST_FILE).touch()
        return cls(root, config, [])

    @classmethod
    def _reopen(cls, root: Path, config: dict) -> Dataset:
        """Reopen ``root`` to resume ``config`` (:meth:`create_or_open`'s checks)."""
        ds = cls.open(root, repair=True, legacy=True)
        if ds.config.get("version") != FORMAT_VERSION:
            raise DatasetConfigMismatchError(
                f"{root}: holds a format version {ds.config.get('version')} dataset and this mixbridge writes "
                f"version {FORMAT_VERSION}; refusing to mix the two in one dataset. Generate into a new folder")
        changed = source_changes(ds.config, config)
        if changed:
            shown = ", ".join(changed[:MAX_CHANGES_SHOWN])
            more = f" and {len(changed) - MAX_CHANGES_SHOWN} more" if len(changed) > MAX_CHANGES_SHOWN else ""
            raise SourceChangedError(
                f"{root}: the source {config.get('source_root')} is not the one this dataset was generated from "
                f"(by content: {len(changed)} file(s) differ: {shown}{more}); resuming would mix examples of two "
                "sources. Restore the original files, generate into a new output folder, or rerun with --force "
                "to discard this dataset and start over")
        diffs = _diff(_identity(ds.config), _identity(config))
        if diffs:
            raise DatasetConfigMismatchError(
                f"{root}: holds a dataset generated with another configuration ({'; '.join(diffs[:3])}"
                f"{f'; and {len(diffs) - 3} more' if len(diffs) > 3 else ''}); refusing to mix two configurations "
                "in one dataset. "
                "Use a new output folder, repeat the original options to resume, or rerun with --force to "
                "discard this dataset and start over")
        update = False
        if config.get("source_root") and config["source_root"] != ds.config.get("source_root"):
            ds.config["source_root"] = config["source_root"]  # the same files, found where --source points now
            update = True
        if int(config.get("n", 0)) > int(ds.config.get("n", 0)):
            ds.config["n"] = int(config["n"])
            update = True
        if update:
            atomic_write_text(root / CONFIG_FILE, json.dumps(ds.config, indent=2, sort_keys=True) + "\n")
        return ds

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
        """Release the writer lock taken by :meth:`lock` (no-op when not held)."""
        if self._lock is not None:
            self._lock.close()  # closing drops the flock
            self._lock = None

    def commit(self, start: int, stop: int, arrays: Mapping[str, np.ndarray], indices: Iterable[int],
               failures: Iterable[dict] = (), files: Mapping[str, bytes] | None = None,
               retries: Iterable[dict] = ()) -> ShardRecord:
        """Write side files and the shard atomically, then append the manifest line.

        ``failures`` and ``retries`` (examples stored on their second attempt) go into the record.

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
                          sorted(failures, key=lambda f: f["index"]), file_recs,
                          sorted(retries, key=lambda f: f["index"]))
        self.append_record(rec)
        return rec

    def append_record(self, rec: ShardRecord) -> None:
        """Append ``rec`` to ``manifest.jsonl`` with one ``write`` and an fsync: the commit point.

        Raises:
            DiskFullError: out of space; the record is not committed (a rerun redoes the shard).
        """
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
        """The number of examples requested in all (``config["n"]``; it may grow between runs)."""
        return int(self.config.get("n", 0))

    def done_indices(self) -> set[int]:
        """Every committed index, example or failure (what a resumed run skips)."""
        out: set[int] = set()
        for r in self.records:
            out.update(r.covered)
        return out

    def example_records(self) -> list[ShardRecord]:
        """The committed records in index order (the manifest holds them in commit order)."""
        return sorted(self.records, key=lambda r: (r.start, r.stop))

    def path(self, rel: str, what: str = "shard") -> Path:
        """The file a manifest entry names, confined to the dataset folder (:func:`inside`).

        Raises:
            DatasetIntegrityError: the entry names a path outside the folder.
        """
        return inside(self.root, rel, what)

    def load_shard(self, rec: ShardRecord) -> dict[str, np.ndarray]:
        """Read one shard's arrays into memory (``[n_examples, ...]`` each; no pickle).

        For random access without reading whole shards use :func:`~.shards.shard_memmaps`.

        Raises:
            DatasetIntegrityError: the record names a path outside the dataset folder.
        """
        with np.load(self.path(rec.shard), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    def record_problem(self, rec: ShardRecord) -> str:
        """Why a committed record's files cannot be trusted ("" when they can).

        Checks that the shard and side file paths lie inside the folder, that the shard exists with
        its recorded size and sha256, and that every side file matches its sha256. (``verify``
        also loads the arrays.)
        """
        try:
            path = self.path(rec.shard)
            sides = [(f, self.path(f["path"], "side file")) for f in rec.files]
        except DatasetIntegrityError as e:
            return str(e)
        if not path.is_file():
            return f"{rec.shard}: missing (the manifest names it)"
        if path.stat().st_size != rec.bytes or sha256_file(path) != rec.sha256:
            return f"{rec.shard}: checksum or size mismatch (corrupted or replaced)"
        for f, fp in sides:
            if not fp.is_file() or sha256_file(fp) != f["sha256"]:
                return f"{f['path']}: missing or checksum mismatch"
        return ""

    def drop_records(self, bad: Iterable[ShardRecord]) -> None:
        """Remove records from the manifest (rewritten atomically): their indices are generated again.

        Used to repair a dataset whose shards are missing or corrupt; the data is deterministic, so
        the regenerated shards are byte-identical to the lost ones. Call with the writer lock held.
        """
        drop = {id(r) for r in bad}
        keep = [r for r in self.records if id(r) not in drop]
        text = "".join(json.dumps(r.to_json(), sort_keys=True, separators=(",", ":")) + "\n" for r in keep)
        atomic_write_text(self.root / MANIFEST_FILE, text)
        self.records = keep


def discard(root: Path) -> None:
    """Remove a dataset's own files from ``root`` (``--force``): config, manifest, runs, shards, images.

    Other files are left (and then refuse the folder as not empty).

    Raises:
        DatasetBusyError: another run holds the folder's writer lock.
    """
    import fcntl
    import shutil

    with open(root / LOCK_FILE, "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise DatasetBusyError(f"{root}: another datagen run is writing to this dataset; wait for it to "
                                   "finish or stop it before --force") from None
        for name in (MANIFEST_FILE, CONFIG_FILE, RUNS_FILE):  # the manifest first: no half dataset looks complete
            (root / name).unlink(missing_ok=True)
        for sub in (SHARD_DIR, "images"):
            if (root / sub).is_dir() and not (root / sub).is_symlink():
                shutil.rmtree(root / sub)


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
