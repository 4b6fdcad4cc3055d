"""The rendering-backend contract and registry of the plugin host.

A backend renders the *plugin* processors of the schema (``eq``, ``compressor``,
``reverb``, ``limiter``) on one signal. The exact-math stages of a console
(trim, polarity, fader, mute, pan, send, summing) are done by
:mod:`mixbridge.plugins.console` with numpy for every backend alike, as a DAW's
own mixer does them.

Audio contract: float32 ``[channels, samples]`` with ``channels`` 1 or 2 and an
explicit ``sample_rate`` in Hz. ``process`` returns the same shape, except
``reverb`` which takes the stereo send bus ``[2, samples]`` and returns the
wet-only return ``[2, samples]``.

Backends:

* ``builtin``: pedalboard's built-in JUCE processors (:mod:`.builtin`).
* ``vst``: real third-party plugins through DawDreamer, driven by plugin maps
  (:mod:`.vst`).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import TypeVar

import numpy as np

from mixbridge.errors import UnknownNameError
from mixbridge.registry import DuplicateNameError
from mixbridge.session import Automation

_R = TypeVar("_R")

PLUGIN_PROCESSORS = ("eq", "compressor", "reverb", "limiter")


def automation_curve(automation: Automation, n_samples: int, sample_rate: int) -> np.ndarray:
    """Sample a piecewise-linear curve at every sample: returns float64 ``[n_samples]``.

    Outside ``times_s`` the first/last value is held.
    """
    t = np.arange(n_samples, dtype=np.float64) / float(sample_rate)
    times = np.asarray(automation.times_s, dtype=np.float64)
    return np.interp(t, times, np.asarray(automation.values, dtype=np.float64))


def automation_blocks(
    params: Mapping[str, float],
    automation: Mapping[str, Automation] | None,
    n_samples: int,
    sample_rate: int,
    block_size: int,
):
    """Yield ``(start, stop, params_for_block)`` covering ``n_samples``.

    Without automation this yields a single block with ``params``. With it, each
    block takes the automated parameters' values at the block's first sample
    (block-rate automation, like a plugin host's parameter updates).
    """
    if not automation:
        yield 0, n_samples, dict(params)
        return
    curves = {k: automation_curve(a, n_samples, sample_rate) for k, a in automation.items()}
    for start in range(0, n_samples, block_size):
        stop = min(start + block_size, n_samples)
        p = dict(params)
        for k, c in curves.items():
            p[k] = float(c[start])
        yield start, stop, p


Stage = tuple[str, Mapping[str, float], "Mapping[str, Automation] | None"]


class Chain:
    """Processors in series on one signal fed block by block: ``process(block, start)`` -> block.

    ``start`` is the block's first sample in the whole signal (automation is read there). A
    streaming chain (``streaming = True``) carries every processor's state from one block to
    the next, so any split of a signal into consecutive blocks renders what one call on the
    whole signal renders. This default is not streaming: it renders the stages with
    :meth:`Backend.process_chain` and takes exactly one block, the whole signal, starting at 0.

    Raises:
        RuntimeError: (non-streaming) a second block, or one that does not start at 0.
    """

    streaming = False

    def __init__(self, backend: Backend, stages: list[Stage], label: str = "") -> None:
        self.backend, self.stages, self.label = backend, list(stages), label
        self._used = False

    def process(self, block: np.ndarray, start: int = 0) -> np.ndarray:
        """Render the stages on ``block`` float32 ``[channels, samples]`` (see the class docstring)."""
        if self._used or start != 0:
            raise RuntimeError(f"the {self.backend.name} backend renders {self.label or 'a signal'} in one call; "
                               "give the whole signal as one block")
        self._used = True
        return self.backend.process_chain(self.stages, block, label=self.label)


class Backend(ABC):
    """Renders schema processors on audio. Subclasses hold plugin handles and settings.

    Args:
        sample_rate: in Hz; every call uses it.
        block_size: samples per host block (and the automation update rate).
        clamp: a value this backend cannot render is moved to the nearest value it can
            render and listed in :attr:`notices` (``--clamp``); by default it is refused with
            a :class:`~mixbridge.errors.ParamRangeError` naming the value and the range.
    """

    name: str = ""

    def __init__(self, sample_rate: int, block_size: int = 512, clamp: bool = False) -> None:
        self.sample_rate = int(sample_rate)
        self.block_size = int(block_size)
        self.clamp = bool(clamp)
        #: Human-readable notices about how the render differs from the request
        #: (e.g. a parameter a processor cannot honour). Reported, never silent.
        self.notices: list[str] = []
        #: Every notice given with ``changed_value=True``, once per call (not deduplicated): a
        #: render that used another value than requested. Data generation refuses such examples.
        self.value_changes: list[str] = []

    def notice(self, text: str, *, changed_value: bool = False) -> None:
        """Report how a render differs from the request.

        ``changed_value=True``: a parameter was rendered as another value than requested (a
        clamp, a soft knee rendered hard); ``datagen`` then does not store the example.
        """
        if changed_value:
            self.value_changes.append(text)
        if text not in self.notices:
            self.notices.append(text)

    def with_clamp(self, processor: str, params: Mapping[str, float], render: Callable[[dict], _R],
                   label: str = "") -> _R:
        """``render(params)``, clamping refused values when :attr:`clamp` is set.

        A refusal is a :class:`~mixbridge.errors.ParamRangeError` that names its ``param`` and
        ``reachable`` range; with ``clamp`` the value moves into that range, the change is
        listed as a notice (``changed_value=True``) and the render is tried again.

        Raises:
            ParamRangeError: without ``clamp``, or a refusal that names no reachable range.
        """
        from mixbridge.errors import ParamRangeError

        p = dict(params)
        for _ in range(len(p) + 1):
            try:
                return render(p)
            except ParamRangeError as e:
                if not (self.clamp and e.param in p and e.reachable is not None):
                    raise
                lo, hi = e.reachable
                old = float(p[e.param])
                new = min(max(old, lo), hi)
                if new == old:
                    raise
                p[e.param] = new
                where = f"{label}: " if label else ""
                self.notice(f"{where}{processor}.{e.param} = {old:g} clamped to {new:g} (the {self.name} backend "
                            f"renders {lo:g}..{hi:g} here)", changed_value=True)
        return render(p)

    def check_renderable(  # noqa: B027 - a default that accepts everything, not an abstract method
            self, processor: str, params: Mapping[str, float], *, label: str = "") -> None:
        """Raise if this backend would refuse ``params`` (static values) for ``processor``; render nothing.

        The default renders every schema value. Data generation calls it to redraw an example's
        parameters before rendering, so that refused draws cost no render.

        Raises:
            ParamRangeError: a value this backend cannot render (see :meth:`with_clamp`).
        """

    def renderable_range(self, processor: str, param: str) -> tuple[float, float]:
        """``(lo, hi)`` in real units: the values of ``processor.param`` this backend renders as requested.

        The default is the schema's range; a backend that can render only part of it overrides
        this (data generation samples inside it and refuses ``--param`` ranges beyond it).

        Raises:
            UnknownParamError: an unknown processor or parameter name.
        """
        from mixbridge.schema import COMPRESSOR, EQ, LIMITER, REVERB

        procs = {p.name: p for p in (EQ, COMPRESSOR, REVERB, LIMITER)}
        if processor not in procs:
            from mixbridge.errors import UnknownParamError

            raise UnknownParamError(f"unknown processor '{processor}'; backends render {', '.join(procs)}")
        p = procs[processor].param(param)
        return (p.min, p.max)

    @abstractmethod
    def process(self, processor: str, audio: np.ndarray, params: Mapping[str, float],
                automation: Mapping[str, Automation] | None = None, *, label: str = "") -> np.ndarray:
        """Render one processor.

        Args:
            processor: one of ``PLUGIN_PROCESSORS``.
            audio: float32 ``[channels, samples]``.
            params: real-unit values of that processor's schema parameters
                (already validated; keys are bare names such as ``threshold_db``).
            automation: optional ``{param_name: Automation}`` curves.
            label: where the call comes from (``"track 'kick'"``), for notices.

        Returns:
            float32 ``[channels, samples]`` (``reverb``: ``[2, samples]`` wet only).

        Raises:
            UnknownNameError: an unknown processor name.
        """

    def process_chain(
        self,
        stages: list[tuple[str, Mapping[str, float], Mapping[str, Automation] | None]],
        audio: np.ndarray,
        *,
        label: str = "",
    ) -> np.ndarray:
        """Render several processors in series: ``[(processor, params, automation), ...]``.

        The default calls :meth:`process` stage by stage; a backend may fuse the
        stages into one engine call (same result, less overhead).
        """
        for processor, params, automation in stages:
            audio = self.process(processor, audio, params, automation, label=label)
        return audio

    def open_chain(self, stages: list[Stage], *, label: str = "") -> Chain:
        """A :class:`Chain` of ``stages`` (``[(processor, params, automation), ...]``) fed block by block.

        The default is not streaming (the whole signal in one call); a backend whose processors
        keep their state across calls returns a streaming one (``builtin``).
        """
        return Chain(self, stages, label)

    def close(self) -> None:  # noqa: B027  # pragma: no cover - default has nothing to free
        """Free plugin handles."""


_BACKENDS: dict[str, Callable[..., Backend]] = {}


def register_backend(name: str, factory: Callable[..., Backend]) -> None:
    """Add a backend factory ``factory(sample_rate, **options) -> Backend`` under ``name``.

    The factory imports its library when called, so listing the names (:func:`backend_names`,
    the CLI's ``--backend`` choices) never imports pedalboard or DawDreamer.

    Raises:
        DuplicateNameError: ``name`` is already registered (the message lists the registered names).
    """
    if name in _BACKENDS:
        raise DuplicateNameError(f"backend '{name}' is already registered; registered: {', '.join(_BACKENDS)}")
    _BACKENDS[name] = factory


def _builtin(sample_rate: int, **kw) -> Backend:
    from .builtin import BuiltinBackend

    return BuiltinBackend(sample_rate, **kw)


def _vst(sample_rate: int, **kw) -> Backend:
    from .vst import VstBackend

    return VstBackend(sample_rate, **kw)


register_backend("builtin", _builtin)
register_backend("vst", _vst)


def backend_names() -> list[str]:
    """The registered backend names, in registration order (``builtin``, ``vst``, ...); imports no backend library."""
    return list(_BACKENDS)


def get_backend(name: str, sample_rate: int, **options) -> Backend:
    """Create a backend by name.

    Raises:
        UnknownNameError: unknown name; the message lists the known backends.
        BackendUnavailableError: its library or plugins are not installed.
    """
    try:
        factory = _BACKENDS[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown backend '{name}'; known backends: {', '.join(_BACKENDS)} (use --backend {'|'.join(_BACKENDS)})"
        ) from None
    return factory(sample_rate, **options)
