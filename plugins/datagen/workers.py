"""Local executors: isolated worker processes, or the calling process, rendering one example at a time.

:func:`run_one` / :func:`render_one` turn one index into a result tuple (every failure
kind classified there; the Ray actors call :func:`render_one` too). :func:`run_local` runs
``spawn`` worker processes that die with the parent (``PR_SET_PDEATHSIG``, so ``kill -9``
of the parent leaves no orphans): a worker tells the parent an example's parameters
before rendering it, so a segfaulting plugin, an ``os._exit`` or a hang (killed after
``timeout_s``) is recorded with the parameters that caused it, and a fresh worker takes
over. :func:`run_inline` renders in the calling process.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as mp_wait
from typing import Any

import numpy as np

from mixbridge.errors import ParamRangeError

from .errors import WorkerSetupError
from .job import Job, Spec, make_job
from .params import UNRENDERABLE
from .results import Collector

#: A worker that dies this many times in a row before becoming ready means a broken setup.
MAX_SETUP_DEATHS = 3


def run_one(job: Job, index: int, on_start: Callable[[int, dict], None] | None = None) -> tuple:
    """Plan and render one example; returns ``("done", index, Example, params)`` or
    ``("fail", index, kind, message, params)`` with kind ``error``, ``nan`` or ``unrenderable``.

    ``on_start(index, params)`` is called between planning and rendering (a worker sends the
    parameters to the parent then, so a crash is recorded with them). Never raises for an
    example's own failure.
    """
    try:
        spec = job.plan(index)
    except Exception as e:
        return planning_failure(index, e)
    if on_start is not None:
        on_start(index, spec.params)
    return render_one(job, index, spec)


def planning_failure(index: int, e: Exception) -> tuple:
    """The ``("fail", ...)`` result of an example whose planning raised ``e`` (no parameters yet)."""
    return ("fail", index, "error", f"planning failed: {type(e).__name__}: {e}", None)


def render_one(job: Job, index: int, spec: Spec) -> tuple:
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


def _worker_main(conn: Connection, config: dict, faults: dict | None, parent_pid: int) -> None:
    """Worker process: build the job, then render indices sent by the parent until told to stop."""
    _die_with_parent()
    if os.getppid() != parent_pid:  # the parent died before the death signal was armed
        os._exit(0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C and SIGTERM are the parent's to handle: it stops
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the workers itself, after committing what is complete
    try:
        job = make_job(config, faults)
        job.setup()
    except BaseException as e:
        try:
            conn.send(("fatal", type(e).__name__, str(e)))
        except BaseException:  # the parent is gone: there is no one to tell
            pass
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


class _Worker:
    """One worker process, its pipe, and the example it is busy with (``index``; None when idle)."""

    def __init__(self, ctx: Any, config: dict, faults: dict | None):
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


def run_local(config: dict, faults: dict | None, indices: list[int], n_workers: int, timeout_s: float,
              collector: Collector) -> None:
    """Render ``indices`` in ``n_workers`` isolated ``spawn`` processes, feeding ``collector``.

    A worker that dies, or exceeds ``timeout_s`` seconds on one example (it is killed), costs
    that example only (``crash`` / ``timeout`` failures with its parameters) and is replaced. A
    worker killed by a signal (the OOM killer's SIGKILL) or a timeout may come from outside the
    example: the index goes to the end of the queue once more (:data:`~.results.RETRY_KINDS`),
    and both attempts are recorded; a status exit (``os._exit``) is not retried.

    Raises:
        WorkerSetupError: workers died :data:`MAX_SETUP_DEATHS` times in a row before becoming ready.
        MixbridgeError subclasses: a worker's setup raised one (re-raised here by class name).
        DiskFullError: from a commit.
    """
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
                    if collector.add(("fail", w.index, "timeout",
                                      f"no result after {timeout_s:g} s (worker killed); raise --timeout-s if the "
                                      "processor is just slow", w.params), retryable=True):
                        queue.append(w.index)  # a loaded machine: once more, at the end of the queue
                    w.index = None
                    dead.append(w)
            for w in dead:
                if w.index is not None:
                    code = w.proc.exitcode
                    if collector.add(("fail", w.index, "crash",
                                      f"worker process {_describe_exit(code)} while "
                                      f"{'rendering' if w.params is not None else 'planning'} this example",
                                      w.params), retryable=code is not None and code < 0):
                        queue.append(w.index)  # killed by a signal (the OOM killer...): once more
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


def run_inline(config: dict, faults: dict | None, indices: list[int], collector: Collector) -> None:
    """Render ``indices`` in this process, no isolation (``--workers 0``: benchmarks, debugging).

    Exceptions and NaN output are still recorded per example; a crash takes the job down.
    """
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
