"""The job contract shared by every generator, the per-example seeding, and fault injection.

A *job* turns an example index into one example. It is built from its JSON
config alone (so a worker process, a Ray task or the parent can rebuild it) and
works in two steps:

* :meth:`Job.plan` draws everything random for the index (parameters, source
  position, augmentations) and may read source audio. Its ``params`` are sent
  to the parent *before* rendering, so a crash during rendering is recorded
  with the exact parameters that caused it.
* :meth:`Job.render` runs the processors (the part that may crash or hang) and
  returns named arrays (and optional side files such as PNG images).

Seeding: example ``index`` of a dataset with ``seed`` draws from
``numpy.random.SeedSequence([seed, index])`` (spawned into independent streams),
never from worker order, so the same seed gives the same examples with any
number of workers and after any interruption.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mixbridge.plugins.backend import Backend, get_backend
from mixbridge.registry import DuplicateNameError

from .errors import DatagenConfigError

if TYPE_CHECKING:
    from .sources import SourceSet

FAULT_KINDS = ("crash", "exit", "hang", "nan", "error", "delay")


def example_rngs(seed: int, index: int, n: int) -> list[np.random.Generator]:
    """``n`` independent generators for example ``index`` of a dataset seeded ``seed``."""
    ss = np.random.SeedSequence([int(seed), int(index)])
    return [np.random.default_rng(s) for s in ss.spawn(n)]


@dataclass
class Spec:
    """What :meth:`Job.plan` decided for one example; ``params`` is JSON-able (real units)."""

    index: int
    params: dict
    data: dict = field(default_factory=dict)


@dataclass
class Example:
    """One rendered example: named arrays (first axis is *not* the batch) and side files."""

    index: int
    #: Shard arrays of this example (one row each); scalars are numpy scalars (``np.int64(index)``).
    arrays: dict[str, np.ndarray | np.generic]
    files: dict[str, bytes] = field(default_factory=dict)


class FaultyBackend(Backend):
    """A backend wrapper that misbehaves on chosen example indices, to test isolation.

    ``faults`` maps an example index to ``crash`` (SIGKILL itself, like a
    segfaulting plugin), ``exit`` (``os._exit(3)``), ``hang`` (sleeps forever),
    ``nan`` (returns NaN), ``error`` (raises ``RuntimeError``) or ``delay:S``
    (sleeps S seconds, then renders). The key ``"*"`` applies to every index.
    The fault fires inside ``process``, where a real plugin would fail.
    """

    name = "faulty"

    def __init__(self, inner: Backend, faults: Mapping[Any, str]):
        super().__init__(inner.sample_rate, inner.block_size)
        self.inner = inner
        self.faults = {str(k): v for k, v in faults.items()}
        self.current_index: int | None = None

    def check_renderable(self, processor, params, *, label=""):
        """The wrapped backend's check (faults fire in :meth:`process` only)."""
        return self.inner.check_renderable(processor, params, label=label)

    def process(self, processor, audio, params, automation=None, *, label=""):
        """Fire the fault of the current example (if any), then render with the wrapped backend.

        Audio as :meth:`Backend.process <mixbridge.plugins.backend.Backend.process>`: float32
        ``[channels, samples]`` in and out.

        Raises:
            RuntimeError: the injected ``error`` fault.
        """
        fault = self.faults.get(str(self.current_index)) or self.faults.get("*")
        if fault == "crash":
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
        elif fault == "exit":
            os._exit(3)
        elif fault == "hang":
            time.sleep(3600)
        elif fault == "error":
            raise RuntimeError(f"injected processor error at example {self.current_index}")
        elif fault and fault.startswith("delay:"):
            time.sleep(float(fault.split(":", 1)[1]))
        out = self.inner.process(processor, audio, params, automation, label=label)
        if fault == "nan":
            out = out.copy()
            out[..., out.shape[-1] // 2] = np.nan
        return out

    @property
    def notices(self):
        """The wrapped backend's notices (read and written through)."""
        return self.inner.notices

    @notices.setter
    def notices(self, value):
        """Set the wrapped backend's notices."""
        if hasattr(self, "inner"):  # Backend.__init__ sets it before inner exists
            self.inner.notices = value

    @property
    def value_changes(self):
        """The wrapped backend's record of values it rendered differently (read and written through)."""
        return self.inner.value_changes

    @value_changes.setter
    def value_changes(self, value):
        """Set the wrapped backend's value changes."""
        if hasattr(self, "inner"):
            self.inner.value_changes = value

    def renderable_range(self, processor, param):
        """The wrapped backend's renderable range of ``processor.param`` (real units)."""
        return self.inner.renderable_range(processor, param)

    def close(self) -> None:
        """Close the wrapped backend."""
        self.inner.close()


class Job:
    """Base class of generators. Subclasses set ``kind`` and implement ``setup/plan/render``."""

    kind = ""
    #: The source files (set by :meth:`open_sources`, in ``setup``; the mixes job reads stems itself).
    sources: SourceSet
    #: Arrays that must be finite (NaN/inf there fails the example as ``nan``).
    finite_keys: tuple[str, ...] = ()

    def __init__(self, config: Mapping[str, Any], faults: Mapping[Any, str] | None = None):
        self.config = dict(config)
        self.faults = dict(faults or {})
        self.sample_rate = int(config["sample_rate"])
        self.seed = int(config["seed"])
        self.backend: Backend | None = None

    def make_backend(self) -> Backend:
        """The configured backend (wrapped by :class:`FaultyBackend` when faults are injected).

        Raises:
            UnknownNameError / BackendUnavailableError / PluginMapError: from the backend.
        """
        be = get_backend(self.config["backend"], self.sample_rate, **self.config.get("backend_options", {}))
        return FaultyBackend(be, self.faults) if self.faults else be

    def open_sources(self) -> None:
        """Reopen the source files the config fingerprinted as ``self.sources`` (no rescan or hashing).

        Raises:
            AudioInputError: a recorded source file is gone (named).
        """
        from .sources import SourceSet

        self.sources = SourceSet.from_fingerprint(self.config["source_root"], self.config["sources"])

    def need_backend(self) -> Backend:
        """The backend ``setup`` made with :meth:`make_backend`.

        Raises:
            RuntimeError: there is none yet (``setup`` was not called: a generator bug).
        """
        if self.backend is None:
            raise RuntimeError(f"the {self.kind} job has no backend: call setup() first")
        return self.backend

    def warm_up(self, processors, channels: int) -> None:
        """Render a short silent block through each processor once.

        Loads the plugins now, so a missing plugin or a plugin map that does not
        match the installed plugin stops the job at setup (``PluginMapError``,
        ``PluginNotFoundError``) instead of failing every example.
        """
        from .params import PROCESSORS

        be = self.need_backend()
        be = be.inner if isinstance(be, FaultyBackend) else be
        for proc in processors:
            if proc in PROCESSORS:
                ch = 2 if proc == "reverb" else channels
                be.process(proc, np.zeros((ch, 256), dtype=np.float32), PROCESSORS[proc].defaults())

    def setup(self) -> None:
        """Load what rendering needs (sources, backend). Runs once per worker."""

    def plan(self, index: int) -> Spec:
        """Draw example ``index``'s parameters and source from ``SeedSequence([seed, index])`` only.

        Cheap and deterministic: the same ``(config, index)`` always gives the same spec, in
        any process. ``spec.params`` is JSON (recorded with a failure).
        """
        raise NotImplementedError

    def render(self, spec: Spec) -> Example:
        """Render a planned example into its shard arrays (one row each) and side files.

        Raises:
            ParamRangeError: a value the backend cannot render (the example fails as ``unrenderable``).
            Exception: anything else fails the example as ``error``.
        """
        raise NotImplementedError

    def set_current(self, index: int) -> None:
        """Tell an injected :class:`FaultyBackend` which example is rendering."""
        if isinstance(self.backend, FaultyBackend):
            self.backend.current_index = index

    def notices(self) -> list[str]:
        """Every notice the backend gave so far (deduplicated by the backend), oldest first."""
        return list(self.backend.notices) if self.backend is not None else []

    def begin_example(self) -> None:
        """Start watching the backend for values it did not render as requested (one example).

        The backend's notices are deduplicated, so they are set aside and restored by
        :meth:`end_example`: a notice repeated by every example is seen by every example.
        """
        be = self.backend
        if be is None:
            return
        self._kept_notices = list(be.notices)
        self._n_changes = len(getattr(be, "value_changes", ()))
        be.notices = []

    def end_example(self) -> list[str]:
        """Stop watching; returns what the backend said it rendered differently during this example.

        That is every notice given with ``changed_value=True`` and every other notice that
        says so in words (:func:`~.params.says_value_changed`), first first, without repeats.
        """
        from .params import says_value_changed

        be = self.backend
        if be is None or not hasattr(self, "_kept_notices"):
            return []
        fresh = list(be.notices)
        kept = self._kept_notices
        be.notices = kept + [n for n in fresh if n not in kept]
        changes = list(getattr(be, "value_changes", [])[self._n_changes:])
        if changes:  # read once per example: keep the list from growing over a long job
            be.value_changes = be.value_changes[:self._n_changes]
        changes += [n for n in fresh if says_value_changed(n)]
        del self._kept_notices
        return list(dict.fromkeys(changes))

    def close(self) -> None:
        """Free the backend's plugins (the worker is done)."""
        if self.backend is not None:
            self.backend.close()


#: Dataset kinds -> job factories ``factory(config, faults)``.
_JOBS: dict[str, Callable[..., Job]] = {}


def register_job(kind: str, factory: Callable[..., Job]) -> None:
    """Register the job class (or factory) of dataset ``kind``: ``factory(config, faults) -> Job``.

    Raises:
        DuplicateNameError: ``kind`` is already registered.
    """
    if kind in _JOBS:
        raise DuplicateNameError(f"dataset kind '{kind}' is already registered; pick another name")
    _JOBS[kind] = factory


def make_job(config: Mapping[str, Any], faults: Mapping[Any, str] | None = None) -> Job:
    """Build the job of ``config["kind"]``.

    Raises:
        DatagenConfigError: an unknown kind.
    """
    import importlib

    kind = config.get("kind")
    if kind in ("effect", "demaster", "mixes", "premaster") and kind not in _JOBS:
        importlib.import_module(f"{__package__}.{kind}")  # registers the job
    if kind not in _JOBS:
        raise DatagenConfigError(f"unknown dataset kind {kind!r}; known: {', '.join(_JOBS)}")
    return _JOBS[kind](config, faults)
