"""Running a generator job: planning shards, isolated worker processes, commits, the summary.

:func:`generate` is the one entry point (the CLI's ``datagen effect|demaster|mixes``
call it). It opens or creates the dataset folder (refusing another
configuration), works out which example indices are not yet committed, renders
them with one of three executors and commits each finished shard atomically:

* ``workers >= 1`` (default 1): local worker processes (``spawn``). Each example
  runs in a worker; the worker tells the parent the example's parameters before
  rendering. A worker that dies (a segfaulting plugin, ``os._exit``), exceeds
  ``timeout_s`` on one example (a hang: the parent kills it) or returns NaN/inf
  costs that example only: the failure, its kind and its parameters go into the
  shard's manifest record, a fresh worker takes over and the job goes on.
* ``workers == 0``: in the calling process, no isolation (for benchmarks and
  debugging; a crash takes the job down, exceptions and NaN are still recorded).
* ``executor="ray"``: tasks on a Ray cluster (:mod:`.ray_backend`).

An example the backend refuses (``ParamRangeError``) or renders with another value
than requested (a notice during its render) fails as ``unrenderable``
(:func:`render_one`), so no stored label differs from what was rendered. A run in
which every example, or more than ``max_failure_fraction`` of them, failed raises
:class:`DatagenFailuresError` after committing, with the first distinct reasons.

Workers die with the parent (``PR_SET_PDEATHSIG``), so ``kill -9`` of the parent
leaves no orphans; rerunning the same command resumes from the manifest. A full
disk stops the job cleanly: complete shards stay, :class:`DiskFullError` is raised
after the summary is logged.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import re
import signal
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import wait as mp_wait
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from mixbridge.errors import ParamRangeError

from .errors import DatagenConfigError, DatagenFailuresError, WorkerSetupError
from .format import DEFAULT_MAX_FAILURE_FRACTION, Dataset, distinct_reasons, plan_units
from .job import Example, Job, make_job
from .params import UNRENDERABLE

#: Default per-example time limit: a real-plugin render of a few seconds takes well under 1 s.
DEFAULT_TIMEOUT_S = 120.0
#: A worker that dies this many times in a row before becoming ready means a broken setup.
MAX_SETUP_DEATHS = 3
#: Notices that differ only in their numbers are shown once (the first one).
MAX_NOTICES_SHOWN = 8
#: Distinct failure reasons kept in a run summary (and listed when a job fails).
MAX_REASONS_SHOWN = 5


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

    @property
    def n_failed(self) -> int:
        return int(sum(self.failures.values()))

    def text(self) -> str:
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
        if self.stopped:
            lines.append(f"  stopped early: {self.stopped}")
        lines += [f"  failure reason: {r}" for r in self.failure_reasons[:MAX_REASONS_SHOWN]]
        lines += [f"  notice: {n}" for n in self.notices[:MAX_NOTICES_SHOWN]]
        if len(self.notices) > MAX_NOTICES_SHOWN:
            lines.append(f"  ... {len(self.notices) - MAX_NOTICES_SHOWN} more kinds of notice in runs.jsonl")
        return "\n".join(lines)


# --------------------------------------------------------------------------- one example
def run_one(job: Job, index: int, on_start: Callable[[int, dict], None] | None = None) -> tuple:
    """Plan and render one example; returns ``("done", index, Example, params)`` or
    ``("fail", index, kind, message, params)`` with kind ``error`` or ``nan``."""
    try:
        spec = job.plan(index)
    except Exception as e:
        return ("fail", index, "error", f"planning failed: {type(e).__name__}: {e}", None)
    if on_start is not None:
        on_start(index, spec.params)
    return render_one(job, index, spec)


def render_one(job: Job, index: int, spec) -> tuple:
    """Render a planned example (the part of :func:`run_one` after planning; the Ray actors call it too).

    An example whose render raised :class:`~mixbridge.errors.ParamRangeError` (a value the backend
    or its plugin map cannot reach), or during which the backend said it rendered another value
    than requested, fails as ``unrenderable``: it is never stored with the requested label.
    """
    job.set_current(index)
    job.begin_example()
    try:
        ex = job.render(spec)
    except ParamRangeError as e:  # the backend or its plugin map refused a value: never stored
        job.end_example()
        return ("fail", index, UNRENDERABLE, f"the {job.config.get('backend')} backend cannot render a "
                f"requested value: {e}", spec.params)
    except Exception as e:
        job.end_example()
        return ("fail", index, "error", f"{type(e).__name__}: {e}", spec.params)
    changed = job.end_example()
    if changed:  # rendered, but not with the requested values: the label would be wrong
        return ("fail", index, UNRENDERABLE, f"the {job.config.get('backend')} backend rendered another value "
                f"than requested: {'; '.join(changed)}", spec.params)
    bad = [k for k in job.finite_keys if k in ex.arrays and not np.isfinite(ex.arrays[k]).all()]
    if bad:
        return ("fail", index, "nan", f"non-finite values in {', '.join(bad)}", spec.params)
    return ("done", index, ex, spec.params)


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (no orphans after ``kill -9``)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # pragma: no cover - not Linux
        pass


def _worker_main(conn, config: dict, faults: dict | None, parent_pid: int) -> None:
    """Worker process: build the job, then render indices sent by the parent until told to stop."""
    _die_with_parent()
    if os.getppid() != parent_pid:  # the parent died before the death signal was armed
        os._exit(0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        job = make_job(config, faults)
        job.setup()
    except BaseException as e:
        try:
            conn.send(("fatal", type(e).__name__, str(e)))
        finally:
            return
    seen = 0
    try:
        conn.send(("ready", os.getpid()))
        while True:
            msg = conn.recv()
            if msg[0] == "stop":
                break
            res = run_one(job, msg[1], lambda i, p: conn.send(("start", i, p)))
            notes = job.notices()
            conn.send(res + (notes[seen:],))
            seen = len(notes)
    except (EOFError, BrokenPipeError, ConnectionResetError, KeyboardInterrupt):
        pass
    finally:
        job.close()


# --------------------------------------------------------------------------- shard assembly
class _Unit:
    def __init__(self, start: int, stop: int, indices: list[int]):
        self.start, self.stop = start, stop
        self.pending = set(indices)
        self.examples: dict[int, Example] = {}
        self.failures: list[dict] = []


def stack_examples(examples: list[Example]) -> dict[str, np.ndarray]:
    """Stack examples (sorted by index) into shard arrays ``[N, ...]``; an empty shard holds ``index`` only."""
    if not examples:
        return {"index": np.zeros(0, dtype=np.int64)}
    keys = examples[0].arrays.keys()
    return {k: np.stack([np.asarray(e.arrays[k]) for e in examples]) for k in keys}


class _Collector:
    """Routes results to their shard unit and commits a unit when its last index is resolved.

    Commits run on one background thread (file writes and hashing release the GIL),
    so rendering goes on while a shard is written; at most ``MAX_PENDING_COMMITS``
    wait, and a commit's error (a full disk) is raised at the next result or at
    :meth:`finish`.
    """

    MAX_PENDING_COMMITS = 2

    def __init__(self, ds: Dataset, units, summary: RunSummary, bar, example_s: float):
        self.ds, self.summary, self.bar, self.example_s = ds, summary, bar, example_s
        self.by_index: dict[int, _Unit] = {}
        self.notice_counts: dict[str, int] = {}
        self.reason_keys: set[str] = set()
        self.times: list[float] = []
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="datagen-commit")
        self._pending: deque = deque()
        for start, stop, idx in units:
            u = _Unit(start, stop, idx)
            for i in idx:
                self.by_index[i] = u

    def _commit(self, u: "_Unit") -> None:
        examples = [u.examples[i] for i in sorted(u.examples)]
        files: dict[str, bytes] = {}
        for e in examples:
            files.update(e.files)
        self.ds.commit(u.start, u.stop, stack_examples(examples), sorted(u.examples), u.failures, files)
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

    def add(self, res: tuple, notices: list[str] = ()) -> None:
        for n in notices:
            key = re.sub(r"[-+]?\d[\d.e+-]*", "#", n)
            if key not in self.notice_counts:
                self.notice_counts[key] = 0
                self.summary.notices.append(n)
            self.notice_counts[key] += 1
        self.times.append(time.perf_counter())
        index = res[1]
        u = self.by_index.pop(index, None)
        if u is None or index not in u.pending:
            return  # a late duplicate (e.g. a worker killed right after it sent); ignore
        u.pending.discard(index)
        if res[0] == "done":
            u.examples[index] = res[2]
            self.summary.examples_ok += 1
        else:
            kind, message, params = res[2], res[3], res[4]
            u.failures.append({"index": index, "kind": kind, "message": message, "params": params})
            self.summary.failures[kind] = self.summary.failures.get(kind, 0) + 1
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


# --------------------------------------------------------------------------- local executor
class _Worker:
    def __init__(self, ctx, config: dict, faults):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, config, faults, os.getpid()), daemon=True)
        self.proc.start()
        child.close()
        self.ready = False
        self.index: int | None = None
        self.params: Any = None
        self.t0 = 0.0

    def stop(self, kill: bool = False) -> None:
        if self.proc.is_alive() and not kill:
            try:
                self.conn.send(("stop",))
            except (OSError, BrokenPipeError):
                pass
            self.proc.join(timeout=2.0)
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=5.0)
        self.conn.close()


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "unknown exit"
    if code < 0:
        try:
            return f"killed by signal {-code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def _fatal_error(cls_name: str, message: str) -> Exception:
    from mixbridge import errors as core_errors

    from . import errors as dg_errors

    for mod in (core_errors, dg_errors):
        cls = getattr(mod, cls_name, None)
        if isinstance(cls, type) and issubclass(cls, core_errors.MixbridgeError):
            try:
                return cls(message)
            except TypeError:
                break
    return WorkerSetupError(f"worker setup failed: {cls_name}: {message}")


def _run_local(config: dict, faults, indices: list[int], n_workers: int, timeout_s: float,
               collector: _Collector) -> None:
    ctx = mp.get_context("spawn")
    queue = deque(indices)
    workers = [_Worker(ctx, config, faults) for _ in range(max(1, min(n_workers, len(queue))))]
    setup_deaths = 0
    try:
        while queue or any(w.index is not None for w in workers):
            for w in workers:
                if w.ready and w.index is None and queue and w.proc.is_alive():
                    w.index, w.params, w.t0 = queue.popleft(), None, time.monotonic()
                    try:
                        w.conn.send(("run", w.index))
                    except OSError:  # it died while idle: give the index back; the sentinel replaces it
                        queue.appendleft(w.index)
                        w.index = None
            busy = [w for w in workers if w.index is not None]
            wait_s = 1.0
            if busy:
                wait_s = max(0.0, min(w.t0 + timeout_s for w in busy) - time.monotonic())
            objs = {w.conn: w for w in workers}
            objs.update({w.proc.sentinel: w for w in workers})
            dead: list[_Worker] = []
            for obj in mp_wait(list(objs), timeout=min(wait_s, 1.0)):
                w = objs[obj]
                if w in dead:
                    continue
                msgs = []
                try:
                    while w.conn.poll():
                        msgs.append(w.conn.recv())
                except (EOFError, OSError):  # the pipe of a dead worker: handled below
                    pass
                for msg in msgs:  # outside the try: a commit's DiskFullError (an OSError) must propagate
                    if msg[0] == "ready":
                        w.ready, setup_deaths = True, 0
                    elif msg[0] == "fatal":
                        raise _fatal_error(msg[1], msg[2])
                    elif msg[0] == "start":
                        w.params = msg[2]
                    else:
                        w.index = None
                        collector.add(msg[:-1], msg[-1])
                if not w.proc.is_alive():
                    dead.append(w)
            now = time.monotonic()
            for w in workers:
                if w.index is not None and w not in dead and now - w.t0 > timeout_s:
                    w.proc.kill()
                    w.proc.join(timeout=5.0)
                    collector.add(("fail", w.index, "timeout",
                                   f"no result after {timeout_s:g} s (worker killed); raise --timeout-s if the "
                                   "processor is just slow", w.params))
                    w.index = None
                    dead.append(w)
            for w in dead:
                if w.index is not None:
                    collector.add(("fail", w.index, "crash",
                                   f"worker process {_describe_exit(w.proc.exitcode)} while "
                                   f"{'rendering' if w.params is not None else 'planning'} this example", w.params))
                    w.index = None
                if not w.ready:
                    setup_deaths += 1
                    if setup_deaths >= MAX_SETUP_DEATHS:
                        raise WorkerSetupError(f"worker processes died {setup_deaths} times during setup "
                                               f"({_describe_exit(w.proc.exitcode)}); check the backend and plugins")
                w.stop(kill=True)
                workers[workers.index(w)] = _Worker(ctx, config, faults)
    finally:
        for w in workers:
            w.stop(kill=w.index is not None)


def _run_inline(config: dict, faults, indices: list[int], collector: _Collector) -> None:
    job = make_job(config, faults)
    job.setup()
    seen = 0
    try:
        for i in indices:
            res = run_one(job, i)
            notes = job.notices()
            collector.add(res, notes[seen:])
            seen = len(notes)
    finally:
        job.close()


def example_duration_s(config: Mapping[str, Any]) -> float:
    """Seconds of rendered output audio per example (for the real-time factor)."""
    samples = config.get("patch_samples") or config.get("clip_samples") or 0
    return float(samples) / float(config["sample_rate"])


def generate(config: Mapping[str, Any], out: str | Path, *, workers: int = 1, timeout_s: float = DEFAULT_TIMEOUT_S,
             executor: str = "local", address: str | None = None, progress: bool = True,
             faults: Mapping[Any, str] | None = None,
             max_failure_fraction: float | None = None) -> RunSummary:
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

    Returns:
        :class:`RunSummary` (also appended to ``out/runs.jsonl``).

    Raises:
        DatagenFailuresError: every example of the run failed, or more than ``max_failure_fraction``;
            raised after everything was committed; the message lists the first distinct reasons
            and ``e.summary`` is the :class:`RunSummary`.
        DatasetConfigMismatchError: ``out`` holds another configuration.
        DiskFullError: the disk filled up; complete shards were kept.
        WorkerSetupError / PluginMapError / BackendUnavailableError: the job cannot start.
    """
    if workers < 0:
        raise DatagenConfigError(f"--workers {workers} must be >= 0")
    if timeout_s <= 0:
        raise DatagenConfigError(f"--timeout-s {timeout_s} must be > 0")
    if executor not in ("local", "ray"):
        raise DatagenConfigError(f"--backend {executor!r}: use local or ray")
    if max_failure_fraction is None:
        max_failure_fraction = DEFAULT_MAX_FAILURE_FRACTION
    if not 0.0 <= max_failure_fraction <= 1.0:
        raise DatagenConfigError(f"--max-failure-fraction {max_failure_fraction:g} is outside [0, 1]")
    config = dict(config)
    ds = Dataset.create_or_open(out, config)
    ds.lock()
    try:
        summary = _generate(ds, config, workers, timeout_s, executor, address, progress, faults)
    finally:
        ds.unlock()
    check_failures(summary, max_failure_fraction)
    return summary


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
        f"first reasons: {reasons}. The failures are recorded in manifest.jsonl and are not retried: fix the "
        "cause, then generate into a new folder")
    err.summary = summary
    raise err


def _generate(ds: Dataset, config: dict, workers: int, timeout_s: float, executor: str, address: str | None,
              progress: bool, faults) -> RunSummary:
    n = int(config["n"])
    done = ds.done_indices()
    units = plan_units(done, n, int(ds.config["shard_size"]))
    indices = [i for _, _, idx in units for i in idx]
    already = len(done & set(range(n)))
    summary = RunSummary(str(ds.root), ds.config["kind"], executor, workers, n, already)
    bar = None
    if progress and indices:
        from tqdm import tqdm

        bar = tqdm(total=n, initial=already, unit="ex", desc=f"datagen {ds.config['kind']}", file=sys.stderr,
                   dynamic_ncols=True)
    collector = _Collector(ds, units, summary, bar, example_duration_s(ds.config))
    t0 = time.perf_counter()
    try:
        if not indices:
            pass
        elif executor == "ray":
            from .ray_backend import run_ray

            run_ray(ds.config, faults, indices, max(1, workers), timeout_s, collector, address)
        elif workers == 0:
            _run_inline(ds.config, faults, indices, collector)
        else:
            _run_local(ds.config, faults, indices, workers, timeout_s, collector)
        collector.finish()
    except BaseException as e:
        try:
            collector.finish()  # commit what is complete (a second error is dropped: the first one is raised)
        except BaseException:
            pass
        summary.stopped = f"{type(e).__name__}: {e}"
        try:
            e.summary = summary  # the CLI prints what was done before the stop
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
