"""Where a run's results go: the shard assembler that commits them, and the run's summary.

:class:`Collector` routes each example's result (from any executor) to its shard and
commits a shard (:meth:`~.format.Dataset.commit`) once every index in it is resolved, on a
background thread so rendering goes on while a shard is written. :class:`RunSummary`
counts what one run did (examples, failures by kind, rates, distinct notices) and prints
the end-of-run summary; the runner appends it to ``runs.jsonl``.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import DatagenFailuresError
from .format import Dataset, distinct_reasons, reason_key
from .job import Example

#: Notices that differ only in their numbers are shown once (the first one).
MAX_NOTICES_SHOWN = 8
#: Distinct failure reasons kept in a run summary (and listed when a job fails).
MAX_REASONS_SHOWN = 5
#: Failure kinds that can come from outside the example: a worker killed by a signal (the OOM killer's
#: SIGKILL, a Ray worker killed for memory) and a time limit hit on a loaded machine. An example that
#: failed so is run once more (the data is deterministic, so a success stores the same bytes); both
#: attempts are recorded. A status exit, an exception, NaN output or a refused value is the example's
#: own failure and is not retried.
RETRY_KINDS = ("crash", "timeout")
#: Attempts per example in all (the first and one retry).
MAX_ATTEMPTS = 2
#: A run whose first this-many resolved examples all failed stops there (a map that cannot render,
#: a plugin that does not load): running the rest would only repeat the failure. 0 never stops early.
EARLY_STOP_FAILURES = 5


@dataclass
class RunSummary:
    """What one run did. Rates are per wall-clock second of this run."""

    root: str
    kind: str
    executor: str
    workers: int
    n_requested: int
    already_done: int
    examples_ok: int = 0
    failures: dict = field(default_factory=dict)
    shards_committed: int = 0
    elapsed_s: float = 0.0
    examples_per_s: float = 0.0
    audio_s_per_s: float = 0.0
    #: Throughput over the last 80 % of results (excludes worker start-up), examples/s.
    steady_examples_per_s: float = 0.0
    stopped: str = ""
    notices: list = field(default_factory=list)
    #: The first distinct failure reasons (``"kind: message"``; reasons differing only in numbers once).
    failure_reasons: list = field(default_factory=list)
    #: Examples run a second time after a failure from outside (:data:`RETRY_KINDS`), and how many
    #: of them then succeeded.
    retried: int = 0
    retried_ok: int = 0
    #: Committed shards found missing or corrupt at the start of the run and generated again
    #: (``"shard: why"``).
    regenerated: list = field(default_factory=list)
    #: ``{"processor.param": [lo, hi]}``: parameters sampled inside the part of their schema range the
    #: backend renders (the config's ``renderable_ranges``; a map's declared ``range``), said in the summary.
    sampled_ranges: dict = field(default_factory=dict)

    @property
    def n_failed(self) -> int:
        """Failures of this run, all kinds together."""
        return int(sum(self.failures.values()))

    def text(self) -> str:
        """The end-of-run summary for people (the CLI prints it): counts, rates, reasons, notices."""
        fails = ", ".join(f"{k} {v}" for k, v in sorted(self.failures.items())) or "none"
        rt = f"{self.audio_s_per_s:.1f}x real time" + (
            f" ({self.audio_s_per_s / self.workers:.1f}x per worker)" if self.workers > 1 else "")
        lines = [
            f"{self.kind} dataset {self.root}: {self.examples_ok} examples generated in {self.elapsed_s:.1f} s "
            f"({self.examples_per_s:.2f} examples/s, {rt}) by {self.workers} "
            f"{'ray task slots' if self.executor == 'ray' else 'worker process(es)' if self.workers else 'in-process'}",
            f"  already present: {self.already_done}; requested: {self.n_requested}; shards committed: "
            f"{self.shards_committed}; failures: {fails}",
        ]
        if self.regenerated:
            lines.append(f"  regenerated {len(self.regenerated)} shard(s) found missing or corrupt: "
                         + "; ".join(self.regenerated[:MAX_REASONS_SHOWN])
                         + (f"; and {len(self.regenerated) - MAX_REASONS_SHOWN} more"
                            if len(self.regenerated) > MAX_REASONS_SHOWN else ""))
        for k, (lo, hi) in sorted(self.sampled_ranges.items()):
            lines.append(f"  {k}: sampled in [{lo:g}, {hi:g}] only, the part of its schema range the backend "
                         "renders (see `datagen info`)")
        if self.retried:
            lines.append(f"  retried: {self.retried} example(s) whose worker was killed or timed out; "
                         f"{self.retried_ok} succeeded on the second attempt (both attempts in manifest.jsonl)")
        if self.stopped:
            lines.append(f"  stopped early: {self.stopped}")
        lines += [f"  failure reason: {r}" for r in self.failure_reasons[:MAX_REASONS_SHOWN]]
        lines += [f"  notice: {n}" for n in self.notices[:MAX_NOTICES_SHOWN]]
        if len(self.notices) > MAX_NOTICES_SHOWN:
            lines.append(f"  ... {len(self.notices) - MAX_NOTICES_SHOWN} more kinds of notice in runs.jsonl")
        return "\n".join(lines)


class _Unit:
    """One shard being assembled: the indices still pending, the examples and failures resolved."""

    def __init__(self, start: int, stop: int, indices: list[int]):
        self.start, self.stop = start, stop
        self.pending = set(indices)
        self.examples: dict[int, Example] = {}
        self.failures: list[dict] = []
        self.retries: list[dict] = []
        #: Failed first attempts of examples being retried: ``{index: {"kind", "message"}}``.
        self.attempts: dict[int, dict] = {}


def stack_examples(examples: list[Example]) -> dict[str, np.ndarray]:
    """Stack examples (sorted by index) into shard arrays ``[N, ...]``; an empty shard holds ``index`` only.

    Every example holds the same array names (its job's); ``np.stack`` raises ValueError on
    differing shapes, which would be a generator bug.
    """
    if not examples:
        return {"index": np.zeros(0, dtype=np.int64)}
    keys = examples[0].arrays.keys()
    return {k: np.stack([np.asarray(e.arrays[k]) for e in examples]) for k in keys}


class Collector:
    """Routes results to their shard unit and commits a unit when its last index is resolved.

    ``units`` are :func:`~.runner.plan_units`'s ``(start, stop, indices)``; ``bar`` a tqdm bar
    or None. Every executor (:mod:`.workers`, :mod:`.ray_backend`) feeds :meth:`add` with
    ``("done", index, Example, params)`` or ``("fail", index, kind, message, params)``.

    Commits run on one background thread (file writes and hashing release the GIL),
    so rendering goes on while a shard is written; at most ``MAX_PENDING_COMMITS``
    wait, and a commit's error (a full disk) is raised at the next result or at
    :meth:`finish`.
    """

    MAX_PENDING_COMMITS = 2

    def __init__(self, ds: Dataset, units: Iterable[tuple[int, int, list[int]]], summary: RunSummary, bar: Any,
                 *, early_stop_failures: int = EARLY_STOP_FAILURES):
        self.ds, self.summary, self.bar = ds, summary, bar
        self.early_stop_failures = int(early_stop_failures)
        #: Set once the first ``early_stop_failures`` results all failed; :meth:`add` raises it from then on.
        self.stop_error: DatagenFailuresError | None = None
        self._first_failure = ""
        self.by_index: dict[int, _Unit] = {}
        self.notice_counts: dict[str, int] = {}
        self.reason_keys: set[str] = set()
        self.times: list[float] = []
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="datagen-commit")
        self._pending: deque = deque()
        for start, stop, idx in units:
            u = _Unit(start, stop, idx)
            for i in idx:
                self.by_index[i] = u

    def _commit(self, u: _Unit) -> None:
        examples = [u.examples[i] for i in sorted(u.examples)]
        files: dict[str, bytes] = {}
        for e in examples:
            files.update(e.files)
        self.ds.commit(u.start, u.stop, stack_examples(examples), sorted(u.examples), u.failures, files,
                       u.retries)
        self.summary.shards_committed += 1

    def _reap(self, keep: int) -> None:
        while len(self._pending) > keep or (self._pending and self._pending[0].done()):
            self._pending.popleft().result()  # re-raises a commit's error here

    def finish(self) -> None:
        """Wait for every pending commit; raises the first commit error."""
        try:
            self._reap(0)
        finally:
            self._pool.shutdown(wait=True)

    def add(self, res: tuple, notices: Sequence[str] = (), *, retryable: bool = False) -> bool:
        """Record one result and the backend notices it raised; commits its shard when complete.

        ``retryable``: the executor saw a failure from outside (a worker killed by a signal, a time
        limit; :data:`RETRY_KINDS`). The first such failure of an index is kept as its first attempt
        and True is returned: the caller runs the index again. The second attempt's result resolves
        it, with both attempts recorded. A result for an index already resolved (a worker killed
        right after it sent) is ignored.

        Returns:
            True when the caller must run ``res[1]`` again.

        Raises:
            DiskFullError: a pending commit ran out of space (raised here, at the next result).
            DatagenFailuresError: the run's first ``early_stop_failures`` examples all failed
                (:data:`EARLY_STOP_FAILURES`; raised again at every later result, so an executor that
                catches it around a call still stops at the next one); names the first failure.
        """
        if self.stop_error is not None:
            raise self.stop_error
        for n in notices:
            key = reason_key(n)
            if key not in self.notice_counts:
                self.notice_counts[key] = 0
                self.summary.notices.append(n)
            self.notice_counts[key] += 1
        self.times.append(time.perf_counter())
        index = res[1]
        u = self.by_index.get(index)
        if u is None or index not in u.pending:
            return False  # a late duplicate (e.g. a worker killed right after it sent); ignore
        first = u.attempts.get(index)
        if res[0] == "fail" and retryable and first is None and MAX_ATTEMPTS > 1:
            u.attempts[index] = {"kind": res[2], "message": res[3]}
            self.summary.retried += 1
            return True
        del self.by_index[index]
        u.pending.discard(index)
        if res[0] == "done":
            u.examples[index] = res[2]
            self.summary.examples_ok += 1
            if first is not None:
                u.retries.append({"index": index, "attempts": [first, {"kind": "ok"}]})
                self.summary.retried_ok += 1
        else:
            kind, message, params = res[2], res[3], res[4]
            rec = {"index": index, "kind": kind, "message": message, "params": params}
            if first is not None:
                rec["attempts"] = [first, {"kind": kind, "message": message}]
            u.failures.append(rec)
            self.summary.failures[kind] = self.summary.failures.get(kind, 0) + 1
            if not self._first_failure:
                self._first_failure = f"{kind}: {message}"
            if len(self.summary.failure_reasons) < MAX_REASONS_SHOWN:
                for r in distinct_reasons([{"kind": kind, "message": message}], MAX_REASONS_SHOWN, self.reason_keys):
                    self.summary.failure_reasons.append(r)
        if self.bar is not None:
            self.bar.update(1)
            if self.summary.failures:
                self.bar.set_postfix(failures=sum(self.summary.failures.values()))
        self._reap(self.MAX_PENDING_COMMITS)
        if not u.pending:
            self._reap(self.MAX_PENDING_COMMITS - 1)
            self._pending.append(self._pool.submit(self._commit, u))
        if (self.early_stop_failures and self.summary.examples_ok == 0 and self.by_index
                and self.summary.n_failed >= self.early_stop_failures):  # (none left: the run's end decides)
            self.stop_error = self._early_stop()
            raise self.stop_error
        return False

    def _early_stop(self) -> DatagenFailuresError:
        """The error that stops a run whose first examples all failed (the summary is attached by the runner)."""
        s = self.summary
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(s.failures.items()))
        err = DatagenFailuresError(
            f"{s.root}: the first {s.n_failed} examples of this run all failed ({kinds}), so the run stopped "
            f"instead of rendering the other {s.n_requested - s.already_done - s.n_failed}; first failure: "
            f"{self._first_failure}. Fix the cause and rerun the same command (add --force when the fix changes the "
            "plugin map or the options: the folder then holds another configuration, and --force discards it)")
        err.summary = s
        return err
