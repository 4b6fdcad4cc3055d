"""Checking and summarising a dataset folder: ``mixbridge datagen verify`` and ``datagen info``.

:func:`verify` re-reads every committed shard against its manifest record (size, sha256,
arrays, indices), checks side files, coverage of ``[0, n)`` and the failure fraction;
:func:`info` summarises a dataset for people and for ``--json``. Both open version 1
datasets too (``legacy=True``), naming why their labels cannot be trained on
(:func:`~.format.legacy_problem`).
"""
from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mixbridge.checksum import sha256_bytes

from .errors import DatagenConfigError, DatasetIntegrityError
from .format import DEFAULT_MAX_FAILURE_FRACTION, SHARD_DIR, Dataset, distinct_reasons, legacy_problem


@dataclass
class VerifyReport:
    """What :func:`verify` found: ``ok`` when ``problems`` is empty; counts are example indices."""

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
    #: The limit the failure rate was checked against (0..1).
    max_failure_fraction: float = DEFAULT_MAX_FAILURE_FRACTION

    @property
    def failure_rate(self) -> float:
        """Recorded failures over the generated (covered) indices, 0..1 (0.0 when nothing was generated)."""
        covered = self.n_examples + self.n_failures
        return self.n_failures / covered if covered else 0.0

    def text(self) -> str:
        """The report for people: one summary line, then one line per problem, failure reason and warning."""
        fails = ", ".join(f"{k} {v}" for k, v in sorted(self.failures_by_kind.items()))
        rate = (f" = {self.failure_rate:.1%} of the generated indices (allowed {self.max_failure_fraction:.0%})"
                if self.n_failures else "")
        lines = [f"{self.root}: {'OK' if self.ok else 'FAILED'} - {self.n_examples} examples, "
                 f"{self.n_failures} recorded failures{f' ({fails})' if fails else ''}{rate}, "
                 f"{len(self.missing)} of {self.n_expected} indices missing"]
        lines += [f"  problem: {p}" for p in self.problems]
        lines += [f"  failure reason: {r}" for r in self.failure_reasons]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def verify(root: str | Path, *, allow_incomplete: bool = False, deep: bool = True,
           max_failure_fraction: float | None = None) -> VerifyReport:
    """Check a dataset's integrity, and that its examples did not mostly fail.

    Checks: every path a record names lies inside the dataset folder (no absolute path, no
    ``..``, no link out: :func:`~.format.inside`); every manifest record's shard exists with
    its recorded size and sha256,
    its arrays load without pickle, its ``index`` array equals the record's indices,
    every example array has one row per example and only finite samples; side
    files match their sha256; no index appears twice; every index of ``[0, n)`` is
    covered (unless ``allow_incomplete``). Files on disk that no record names are
    leftovers of a killed run (warnings: the next run overwrites them). Recorded
    failures are counted by kind with their first distinct reasons; the dataset
    fails when no example succeeded or more than ``max_failure_fraction`` of the
    covered indices failed (None: :data:`DEFAULT_MAX_FAILURE_FRACTION`). A version 1
    dataset whose labels changed meaning is checked too, with a warning that says why it cannot be loaded for training.

    Raises:
        DatasetFormatError: not a dataset.
        DatagenConfigError: ``max_failure_fraction`` outside [0, 1].
    """
    if max_failure_fraction is None:
        max_failure_fraction = DEFAULT_MAX_FAILURE_FRACTION
    if not 0.0 <= max_failure_fraction <= 1.0:  # also refuses NaN
        raise DatagenConfigError(f"--max-failure-fraction {max_failure_fraction:g} is outside [0, 1]; give the "
                                 f"largest fraction of failed examples a good dataset may hold (default "
                                 f"{DEFAULT_MAX_FAILURE_FRACTION:g})")
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
        try:
            path = ds.path(rec.shard)
        except DatasetIntegrityError as e:
            problems.append(str(e))
            continue
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
            index_array = arrays.get("index")
            if index_array is None or [int(i) for i in index_array] != rec.indices:
                problems.append(f"{rec.shard}: its 'index' array does not match the manifest's indices")
            for k, a in arrays.items():
                if a.ndim and a.shape[0] != len(rec.indices):
                    problems.append(f"{rec.shard}: array '{k}' has {a.shape[0]} rows for {len(rec.indices)} examples")
                if a.dtype.kind == "f" and "params" not in k and not np.isfinite(a).all():
                    problems.append(f"{rec.shard}: array '{k}' holds NaN/inf")
        for f in rec.files:
            named.add(f["path"])
            try:
                fp = ds.path(f["path"], "side file")
            except DatasetIntegrityError as e:
                problems.append(str(e))
                continue
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
    by_kind = dict(Counter(f["kind"] for f in failures))
    covered = n_ex + n_fail
    if n_fail and (n_ex == 0 or n_fail > max_failure_fraction * covered):
        limit = "no example succeeded" if n_ex == 0 else f"more than the allowed {max_failure_fraction:.0%}"
        problems.append(f"{n_fail} of {covered} generated indices are recorded failures ({limit}); see the "
                        "failure reasons below")
    return VerifyReport(ds.root, not problems, problems, warnings[:20], n_ex, n_fail, ds.n, missing, by_kind,
                        distinct_reasons(failures, 5), float(max_failure_fraction))


def info(root: str | Path) -> dict:
    """Summarise a dataset: kind, config, counts, failures by kind and first reasons, sizes, arrays of one shard.

    Returns a JSON-ready dict (``mixbridge datagen info --json`` prints it): ``bytes`` is the
    size of shards plus side files; ``arrays`` maps each array of the first non-empty shard
    to its dtype and per-example shape.

    Raises:
        DatasetFormatError: not a dataset.
        DatasetIntegrityError: the manifest names a shard outside the dataset folder.
    """
    ds = Dataset.open(root, legacy=True)
    fails = dict(Counter(f["kind"] for r in ds.records for f in r.failures))
    arrays = {}
    for r in ds.example_records():
        if r.indices:
            with np.load(ds.path(r.shard), allow_pickle=False) as z:
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
