"""Running a generator job: which indices to render, resuming, the executor, the failure rule.

:func:`generate` is the one entry point (the CLI's ``datagen effect|demaster|mixes``
call it). It opens or creates the dataset folder (refusing another
configuration), works out which example indices are not yet committed, renders
them with one of three executors and commits each finished shard atomically:

* ``workers >= 1`` (default 1): local worker processes (``spawn``). Each example
  runs in a worker; the worker tells the parent the example's parameters before
  rendering. A worker that dies (a segfaulting plugin, ``os._exit``), exceeds
  ``timeout_s`` on one example (a hang: the parent kills it) or returns NaN/inf
  costs that example only: the failure, its kind and its parameters go into the
  shard's manifest record, a fresh worker takes over and the job goes on. A worker
  killed by a signal (the OOM killer's SIGKILL) or a timeout can come from outside the
  example, so that example is run once more at the end of the queue; both attempts are
  recorded (:data:`~.results.RETRY_KINDS`).
* ``workers == 0``: in the calling process, no isolation (for benchmarks and
  debugging; a crash takes the job down, exceptions and NaN are still recorded).
* ``executor="ray"``: tasks on a Ray cluster (:mod:`.ray_backend`).

The executors live in :mod:`.workers`; results reach the shards through
:class:`~.results.Collector`, which also fills the :class:`~.results.RunSummary`.

An example the backend refuses (``ParamRangeError``) or renders with another value
than requested (a notice during its render) fails as ``unrenderable``
(:func:`~.workers.render_one`), so no stored label differs from what was rendered. A run in
which every example, or more than ``max_failure_fraction`` of them, failed raises
:class:`DatagenFailuresError` after committing, with the first distinct reasons; a run whose
first :data:`~.results.EARLY_STOP_FAILURES` examples all failed stops there with it, naming the
first failure (a map that cannot render fails every example alike).

Workers die with the parent (``PR_SET_PDEATHSIG``), so ``kill -9`` of the parent
leaves no orphans; rerunning the same command resumes from the manifest, reading the
source where ``--source`` points now, after checking it by content (the per-file sha256
in ``config.json``). A rerun also checks every committed shard and generates again the
ones found missing or corrupt (the data is deterministic), listing them in the summary.
SIGTERM stops a run like Ctrl-C, with the same summary. A full disk stops the job
cleanly: complete shards stay, :class:`DiskFullError` is raised after the summary is logged.
"""
from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .errors import DatagenConfigError, DatagenFailuresError, DatagenTerminated
from .format import DEFAULT_MAX_FAILURE_FRACTION, Dataset
from .results import EARLY_STOP_FAILURES, MAX_REASONS_SHOWN, Collector, RunSummary
from .workers import run_inline, run_local

#: Default per-example time limit: a real-plugin render of a few seconds takes well under 1 s.
DEFAULT_TIMEOUT_S = 120.0
#: The longest per-example time limit (a day): a larger one is a typo, and ``inf`` would never stop a hang.
MAX_TIMEOUT_S = 86400.0
#: The most worker processes (or Ray tasks in flight) one run starts.
MAX_WORKERS = 1024


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


def example_duration_s(config: Mapping[str, Any]) -> float:
    """Seconds of rendered output audio per example (for the real-time factor)."""
    samples = config.get("patch_samples") or config.get("clip_samples") or 0
    return float(samples) / float(config["sample_rate"])


def generate(config: Mapping[str, Any], out: str | Path, *, workers: int = 1, timeout_s: float = DEFAULT_TIMEOUT_S,
             executor: str = "local", address: str | None = None, progress: bool = True,
             faults: Mapping[Any, str] | None = None,
             max_failure_fraction: float | None = None, force: bool = False,
             early_stop_failures: int | None = None) -> RunSummary:
    """Generate (or resume) the dataset ``config`` describes into ``out``.

    Args:
        config: from :func:`~.effect.effect_config`, :func:`~.demaster.demaster_config`
            or :func:`~.mixes.mixes_config`; ``config["n"]`` examples in all.
        workers: local worker processes (0: in-process, no isolation); Ray: tasks in flight.
        timeout_s: per-example limit in seconds (isolated executors).
        executor: ``local`` or ``ray``; ``address`` is the Ray address (``auto``, ``HOST:PORT``,
            or None for a local Ray instance).
        faults: ``{index: fault}`` injected through :class:`~.job.FaultyBackend` (tests).
        max_failure_fraction: the run fails when more than this fraction of the examples it
            rendered failed, or all of them (0..1; None: :data:`~.format.DEFAULT_MAX_FAILURE_FRACTION`).
        force: discard a dataset of another configuration or source in ``out`` and start over.
        early_stop_failures: stop the run when its first this-many examples all failed (0: never;
            None: :data:`~.results.EARLY_STOP_FAILURES`): a map that cannot render, a plugin that does
            not load, fails every example alike, so the rest would only repeat it.

    A resumed run first checks every committed shard (size, sha256, side files): shards found
    missing or corrupt are dropped from the manifest and generated again (the data is
    deterministic, so they come back byte-identical), listed in the summary's ``regenerated``.
    SIGTERM stops a run like Ctrl-C (:class:`~.errors.DatagenTerminated`, a ``KeyboardInterrupt``):
    complete shards are committed and the summary is attached to the error.

    Returns:
        :class:`RunSummary` (also appended to ``out/runs.jsonl``).

    Raises:
        DatagenFailuresError: every example of the run failed, or more than ``max_failure_fraction``;
            raised after everything was committed; the message lists the first distinct reasons
            and ``e.summary`` is the :class:`RunSummary`. Also raised as soon as the run's first
            ``early_stop_failures`` examples all failed, naming the first failure (complete shards are
            committed; the unfinished ones are rendered again by a rerun).
        DatasetConfigMismatchError: ``out`` holds another configuration (``SourceChangedError``:
            its source files differ by content, named).
        DatagenConfigError: an option out of range (named with its limit).
        DatagenTerminated: SIGTERM (``e.summary`` is what was done).
        DiskFullError: the disk filled up; complete shards were kept.
        WorkerSetupError / PluginMapError / BackendUnavailableError: the job cannot start.
    """
    if executor not in ("local", "ray"):
        raise DatagenConfigError(f"--executor {executor!r}: use local or ray")
    if not 0 <= workers <= MAX_WORKERS:
        raise DatagenConfigError(f"--workers {workers} is outside [0, {MAX_WORKERS}]; give 0 (in-process) or the "
                                 "number of worker processes")
    if executor == "ray" and workers < 1:
        raise DatagenConfigError(f"--workers {workers} with --executor ray: Ray runs at least 1 task; give "
                                 "--workers N >= 1 (0 means in-process, local executor only)")
    if not (timeout_s > 0 and timeout_s <= MAX_TIMEOUT_S):  # also refuses NaN
        raise DatagenConfigError(f"--timeout-s {timeout_s:g} is outside (0, {MAX_TIMEOUT_S:g}] s; give a per-example "
                                 "limit in seconds")
    if max_failure_fraction is None:
        max_failure_fraction = DEFAULT_MAX_FAILURE_FRACTION
    if not 0.0 <= max_failure_fraction <= 1.0:  # also refuses NaN
        raise DatagenConfigError(f"--max-failure-fraction {max_failure_fraction:g} is outside [0, 1]")
    if early_stop_failures is None:
        early_stop_failures = EARLY_STOP_FAILURES
    if isinstance(early_stop_failures, bool) or not isinstance(early_stop_failures, int) or early_stop_failures < 0:
        raise DatagenConfigError(f"--stop-after-failures {early_stop_failures!r}: give a whole number >= 0 (0: never "
                                 f"stop early; default {EARLY_STOP_FAILURES})")
    config = dict(config)
    ds = Dataset.create_or_open(out, config, force=force)
    ds.lock()
    try:
        with _sigterm_as_interrupt():
            summary = _generate(ds, config, workers, timeout_s, executor, address, progress, faults,
                                early_stop_failures)
    finally:
        ds.unlock()
    check_failures(summary, max_failure_fraction)
    return summary


class _sigterm_as_interrupt:
    """While a run lasts (main thread only), SIGTERM raises :class:`~.errors.DatagenTerminated`.

    It is a ``KeyboardInterrupt``, so a run stopped by ``kill`` (or a job scheduler) takes the
    Ctrl-C path: complete shards are committed, the summary is logged and printed, workers are
    stopped. The previous handler is restored afterwards.
    """

    def __enter__(self):
        self.old = None
        if threading.current_thread() is threading.main_thread():
            self.old = signal.signal(signal.SIGTERM, _raise_terminated)
        return self

    def __exit__(self, *exc):
        if self.old is not None:
            signal.signal(signal.SIGTERM, self.old)
        return False


def _raise_terminated(signum, frame):
    raise DatagenTerminated("SIGTERM")


def check_failures(summary: RunSummary, max_failure_fraction: float = DEFAULT_MAX_FAILURE_FRACTION) -> None:
    """Raise when every example of a run failed, or more than ``max_failure_fraction`` of them.

    Raises:
        DatagenFailuresError: with the counts by kind and the first distinct reasons; ``summary``
            is attached to the error.
    """
    n_fail = summary.n_failed
    attempted = summary.examples_ok + n_fail
    if not attempted or not (summary.examples_ok == 0 or n_fail > max_failure_fraction * attempted):
        return
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(summary.failures.items()))
    limit = "no example succeeded" if summary.examples_ok == 0 else f"more than the allowed {max_failure_fraction:.0%}"
    reasons = "; ".join(summary.failure_reasons[:MAX_REASONS_SHOWN]) or "none recorded"
    err = DatagenFailuresError(
        f"{summary.root}: {n_fail} of the {attempted} examples this run rendered failed ({kinds}; {limit}); "
        f"first reasons: {reasons}. The failures are recorded in manifest.jsonl (a worker killed by a signal or "
        "a timeout was retried once; others are not): fix the cause, then generate into a new folder, or rerun "
        "with --force to discard this one")
    err.summary = summary
    raise err


def _generate(ds: Dataset, config: dict, workers: int, timeout_s: float, executor: str, address: str | None,
              progress: bool, faults, early_stop_failures: int = EARLY_STOP_FAILURES) -> RunSummary:
    n = int(config["n"])
    damaged = [(rec, why) for rec in ds.records for why in [ds.record_problem(rec)] if why]
    if damaged:  # deterministic data: drop the records and render their indices again
        ds.drop_records(rec for rec, _ in damaged)
    done = ds.done_indices()
    units = plan_units(done, n, int(ds.config["shard_size"]))
    indices = [i for _, _, idx in units for i in idx]
    already = len(done & set(range(n)))
    summary = RunSummary(str(ds.root), ds.config["kind"], executor, workers, n, already)
    summary.regenerated = [why for _, why in damaged]
    summary.sampled_ranges = dict(ds.config.get("renderable_ranges") or {})
    bar = None
    if progress and indices:
        from tqdm import tqdm

        bar = tqdm(total=n, initial=already, unit="ex", desc=f"datagen {ds.config['kind']}", file=sys.stderr,
                   dynamic_ncols=True)
    collector = Collector(ds, units, summary, bar, early_stop_failures=early_stop_failures)
    t0 = time.perf_counter()
    try:
        if not indices:
            pass
        elif executor == "ray":
            from .ray_backend import run_ray

            run_ray(ds.config, faults, indices, max(1, workers), timeout_s, collector, address)
        elif workers == 0:
            run_inline(ds.config, faults, indices, collector)
        else:
            run_local(ds.config, faults, indices, workers, timeout_s, collector)
        collector.finish()
    except BaseException as e:
        try:
            collector.finish()  # commit what is complete (a second error is dropped: the first one is raised)
        except BaseException:
            pass
        summary.stopped = f"{type(e).__name__}: {e}"
        try:
            e.summary = summary  # type: ignore[attr-defined]  # the CLI prints what was done before the stop
        except AttributeError:
            pass
        raise
    finally:
        if bar is not None:
            bar.close()
        summary.elapsed_s = time.perf_counter() - t0
        if summary.elapsed_s > 0:
            summary.examples_per_s = summary.examples_ok / summary.elapsed_s
            summary.audio_s_per_s = summary.examples_per_s * example_duration_s(ds.config)
        times = collector.times
        if len(times) > 1:
            k = len(times) // 5
            if times[-1] > times[k]:
                summary.steady_examples_per_s = (len(times) - 1 - k) / (times[-1] - times[k])
        ds.log_run({**asdict(summary), "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return summary
