"""The same generator jobs on a Ray cluster (``--executor ray --address auto|HOST:PORT``).

Each of ``slots`` Ray actors builds the job once (sources, plugins) and renders
examples one at a time: ``plan(index)`` returns the example's parameters to the
driver, and only then is ``render(index)`` submitted, so a crash during rendering
is always recorded with the parameters that caused it (a reply still in flight
when a process dies is lost, so the driver waits for it first). Isolation mirrors
the local executor: an actor that dies (a crashing plugin takes its worker process
down) costs the example it was rendering and is
replaced; one that exceeds ``timeout_s`` is killed and replaced; NaN/inf output
and exceptions come back as failures. Results travel through Ray's object store
to the driver, which commits shards exactly like a local run (same seeding, so
the same seed gives byte-identical shards on a cluster).

Every node needs mixbridge (and its plugins for ``--backend vst``) installed in
the Python environment Ray workers use. With no address, a local Ray instance is
started with ``slots`` CPUs, bound to 127.0.0.1 (:func:`local_ray_options`: Ray has no
authentication), and shut down at the end. A cluster given by ``--address`` is the user's:
its head and workers listen on their network interfaces, so run it on a trusted network.
An actor that dies (a crash, or killed for memory) or times out is retried once
(:data:`~.results.RETRY_KINDS`).
"""
from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Any

from mixbridge.errors import BackendUnavailableError

from .errors import WorkerSetupError

if TYPE_CHECKING:
    from .job import Spec


class _Runner:
    """Ray actor body: one job instance, example by example."""

    def __init__(self, config: dict, faults: dict | None):
        from .job import make_job

        self.job = make_job(config, faults)
        self.job.setup()
        self.spec: Spec | tuple | None = None
        self.seen = 0

    def ready(self) -> bool:
        """True once the actor's job is set up (the driver waits on it)."""
        return True

    def plan(self, index: int) -> dict | None:
        """Plan example ``index`` and return its parameters (None: planning failed; :meth:`render` says why)."""
        try:
            self.spec = self.job.plan(index)
        except Exception as e:
            from .workers import planning_failure

            self.spec = planning_failure(index, e)
            return None
        return self.spec.params

    def render(self, index: int) -> tuple:
        """Render the planned example: its result tuple plus the backend notices since the last one."""
        if isinstance(self.spec, tuple):
            res = self.spec
        elif self.spec is None:
            raise RuntimeError(f"render({index}) before plan({index}): the driver plans every example first")
        else:
            from .workers import render_one

            spec, self.spec = self.spec, None
            res = render_one(self.job, index, spec)
        notes = self.job.notices()
        out = res + (notes[self.seen:],)
        self.seen = len(notes)
        return out


def _import_ray():
    try:
        import ray
    except ImportError:
        raise BackendUnavailableError("--executor ray needs Ray: pip install 'ray==2.40.0'") from None
    return ray


#: The address every service of a local Ray instance binds (GCS, raylet, object manager, workers).
LOCAL_RAY_HOST = "127.0.0.1"


def local_ray_options(slots: int) -> dict[str, Any]:
    """``ray.init`` arguments of the local Ray instance started when no ``--address`` is given.

    Ray has no authentication: anyone who reaches its ports can run code. With the node's IP
    address set to 127.0.0.1, Ray's gRPC servers (GCS, raylet, object manager, core workers)
    listen on the loopback interface only (Ray binds 0.0.0.0 otherwise); the dashboard, which
    would serve its REST job API, is not started. ``slots`` CPUs.
    """
    return {"num_cpus": int(slots), "include_dashboard": False, "log_to_driver": False, "configure_logging": False,
            "_node_ip_address": LOCAL_RAY_HOST}


def run_ray(config: dict, faults, indices: list[int], slots: int, timeout_s: float, collector,
            address: str | None) -> None:
    """Render ``indices`` on ``slots`` Ray actors and feed results to ``collector`` (a :class:`~.results.Collector`).

    Raises:
        BackendUnavailableError: Ray is not installed.
        WorkerSetupError: the actors cannot build the job.
    """
    import signal

    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        term = signal.getsignal(signal.SIGTERM)
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(**local_ray_options(slots))
            started = True
        if callable(term):  # ray.init replaces the driver's SIGTERM handler; keep the runner's (summary, clean stop)
            signal.signal(signal.SIGTERM, term)
    Runner = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(_Runner)
    queue = deque(indices)
    actors: list[dict[str, Any]] = []
    setup_failures = 0

    def new_actor() -> dict[str, Any]:
        a = Runner.remote(config, faults)
        return {"actor": a, "ready": a.ready.remote(), "index": None, "plan": None, "render": None,
                "params": None, "t0": 0.0}

    try:
        actors = [new_actor() for _ in range(max(1, min(slots, len(queue))))]
        while queue or any(s["index"] is not None for s in actors):
            for s in actors:
                if s["ready"] is not None:
                    done, _ = ray.wait([s["ready"]], timeout=0)
                    if done:
                        try:
                            ray.get(s["ready"])
                            s["ready"] = None
                            setup_failures = 0
                        except Exception as e:  # the job's setup raised inside the actor
                            cause = getattr(e, "cause", None)
                            if cause is not None and hasattr(cause, "args") and "MixbridgeError" in [
                                    c.__name__ for c in type(cause).__mro__]:
                                raise cause from None
                            setup_failures += 1
                            if setup_failures >= 3:
                                raise WorkerSetupError(f"Ray actors failed to set up the job 3 times: {e}") from None
                            s.update(new_actor())
                if s["ready"] is None and s["index"] is None and queue:
                    i = queue.popleft()
                    s.update(index=i, plan=s["actor"].plan.remote(i), render=None, params=None, t0=time.monotonic())
            pending = [s["render"] for s in actors if s["render"] is not None]
            pending += [s["plan"] for s in actors if s["plan"] is not None]
            pending += [s["ready"] for s in actors if s["ready"] is not None]
            if pending:
                ray.wait(pending, num_returns=1, timeout=0.5)
            now = time.monotonic()
            for s in actors:
                if s["index"] is None:
                    continue
                if s["plan"] is not None and ray.wait([s["plan"]], timeout=0)[0]:
                    try:
                        s["params"] = ray.get(s["plan"])
                        s["render"] = s["actor"].render.remote(s["index"])
                    except Exception as e:  # the actor died while planning
                        if collector.add(("fail", s["index"], "crash",
                                          f"Ray actor died while planning this example ({type(e).__name__})", None),
                                         retryable=True):
                            queue.append(s["index"])
                        s.update(new_actor())
                        s.update(index=None)
                    s["plan"] = None
                    continue
                if s["render"] is not None and ray.wait([s["render"]], timeout=0)[0]:
                    try:
                        res = ray.get(s["render"])
                        collector.add(res[:-1], res[-1])
                    except Exception as e:  # the actor died while rendering (a crash, or killed for memory)
                        if collector.add(("fail", s["index"], "crash",
                                          f"Ray actor died while rendering this example ({type(e).__name__})",
                                          s["params"]), retryable=True):
                            queue.append(s["index"])
                        s.update(new_actor())
                    s.update(index=None, render=None, plan=None)
                elif now - s["t0"] > timeout_s:
                    ray.kill(s["actor"], no_restart=True)
                    if collector.add(("fail", s["index"], "timeout",
                                      f"no result after {timeout_s:g} s (Ray actor killed); raise --timeout-s if the "
                                      "processor is just slow", s["params"]), retryable=True):
                        queue.append(s["index"])
                    s.update(new_actor())
                    s.update(index=None, render=None, plan=None)
    finally:
        for s in actors:
            try:
                ray.kill(s["actor"], no_restart=True)
            except Exception:
                pass
        if started:
            ray.shutdown()
