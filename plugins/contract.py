"""The semantic contract: tolerances, report rows, the implementation registry and the runner (torch-free).

Every place that renders a schema parameter (the builtin and vst backends, one plugin
map, the live master chain, the torch console) must make it *sound* as the schema
says (``mixbridge.schema.COMPRESSOR_SEMANTICS``, ``REVERB_SEMANTICS``,
``PAN_SEMANTICS``, the RBJ EQ, the true-peak ceiling). The contract measures that from
the outside, with the tolerances named once below. A *renderer* is any callable

    ``render(audio: float32 [channels, samples], sample_rate: int, params: dict) -> float32 [channels, samples]``

(``params`` holds every real-unit parameter of one processor, e.g. the six of
``compressor``; ``reverb`` returns the stereo wet return; the ``pan`` renderer takes
``{"pan": p}`` and returns the track's ``[2, samples]`` post-pan output).

Three modules, one job each:

* this one -- the tolerances, :class:`Row` and :class:`ContractReport`, :class:`Implementation`
  and its registry (:func:`register_implementation`, :func:`register_lazy`,
  :func:`implementation_names`), :func:`resolve_implementation`, :func:`run_implementation`
  and :func:`run_contract` (``mixbridge plugins check TARGET`` prints its report);
* :mod:`.contract_measures` -- the test signals and the measurements (compressor static curve
  and 63 % times, EQ magnitude vs RBJ, limiter true peak, reverb RT60 and wet level, pan);
* :mod:`.contract_implementations` -- the built-in implementations ``reference``, ``builtin``,
  ``vst``, ``live`` and the one-map implementations (a shipped map name, a map JSON path, or a
  plugin name a shipped map uses).

The torch console (``torch``) lives in the models layer, which this layer never imports: the
application registers it with ``register_lazy("torch", loader)`` (the loader imports the torch
console and calls its ``register_contract()``), so it is loaded only when asked for.

A plugin that segfaults takes the process with it (DawDreamer runs in-process); one that
raises is reported on its row.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mixbridge.errors import BackendUnavailableError, ParamRangeError, UnknownNameError
from mixbridge.registry import DuplicateNameError

# ----------------------------------------------------------------------------- tolerances (named once)
#: Compressor static curve: settled gain within +-0.5 dB of the closed-form soft-knee curve
#: (issue 9; about the just-noticeable level difference for broadband sound).
STATIC_CURVE_TOL_DB = 0.5
#: Attack and release 63 % times within +-20 % of attack_ms/release_ms (issue 9). The
#: reference's release passes through the attack pole too, which adds <= ~11 % for
#: release_ms >= 10 attack_ms; the timing settings below keep that ratio.
TIME_CONSTANT_TOL = 0.20
#: EQ magnitude within +-0.25 dB of the RBJ design from EQ_BAND_HZ[0] to EQ_BAND_HZ[1] (issue 9).
EQ_MAGNITUDE_TOL_DB = 0.25
EQ_BAND_HZ = (20.0, 16000.0)
#: True peak may exceed the ceiling by this much: 0 dB, because the contract measures with
#: the schema's own meter (BS.1770-4 Annex 2, 4x, :func:`mixbridge.loudness.true_peak_dbtp`).
TRUE_PEAK_TOL_DB = 0.0
#: A limiter driven this far over its ceiling must still reach within this many dB of it
#: (a limiter that mutes or pumps everything down is not a ceiling).
LIMITER_MIN_PEAK_BELOW_DB = 3.0
#: Reverb RT60 within +-15 % of decay_s (issue 9; ISO 3382-1's T20 itself has a few % spread).
RT60_TOL = 0.15
#: Reverb wet level within +-1 dB of return_db for a pink-noise send (BS.1770-4 loudness) (issue 9).
WET_LEVEL_TOL_DB = 1.0
#: Pan position (4/pi atan2(rms_R, rms_L) - 1) within this of ``pan``: the console's pan is
#: exact arithmetic in float32 (1e-3 is 0.045 degrees of the pan angle).
PAN_POSITION_TOL = 1e-3
#: Track output power over input power, dB: 0 for mono and for centred stereo (constant power);
#: float32 arithmetic plus a neutral EQ/compressor in the track's chain.
PAN_POWER_TOL_DB = 0.05

#: Row groups, in the order the report lists them (also the renderer keys of an implementation).
ROW_GROUPS = ("compressor", "eq", "limiter", "reverb", "pan")

Renderer = Callable[[np.ndarray, int, dict], np.ndarray]


# ----------------------------------------------------------------------------- rows and report
@dataclass(frozen=True)
class Row:
    """One measured quantity for one setting.

    ``status`` is ``pass``, ``fail``, ``refused`` (the implementation raised
    :class:`ParamRangeError` naming the range it can render; counts as passed) or
    ``error`` (it raised anything else; ``note`` holds the message).
    """

    group: str
    quantity: str
    setting: str
    expected: float
    measured: float
    tolerance: str
    unit: str
    status: str
    note: str = ""

    @property
    def passed(self) -> bool:
        """True for ``pass`` and ``refused`` rows."""
        return self.status in ("pass", "refused")


def measured_row(group: str, quantity: str, setting: str, expected: float, measured: float, tolerance: str,
                 unit: str, ok: bool, note: str = "") -> Row:
    """A measured :class:`Row`: ``status`` ``pass`` when ``ok``, else ``fail`` (values cast to float)."""
    return Row(group, quantity, setting, float(expected), float(measured), tolerance, unit,
               "pass" if ok else "fail", note)


def failed_row(group: str, quantity: str, setting: str, exc: BaseException) -> Row:
    """The row of a setting whose render raised ``exc``: ``refused`` for a
    :class:`~mixbridge.errors.ParamRangeError` (the implementation names the range it renders), else ``error``."""
    status = "refused" if isinstance(exc, ParamRangeError) else "error"
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return Row(group, quantity, setting, math.nan, math.nan, "", "", status, f"{type(exc).__name__}: {msg}")


@dataclass
class ContractReport:
    """Rows measured on one implementation at one sample rate."""

    implementation: str
    sample_rate: int
    rows: list[Row] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when there is at least one row and every row passed or was refused."""
        return bool(self.rows) and all(r.passed for r in self.rows)

    @property
    def failures(self) -> list[Row]:
        """The rows that neither passed nor were refused."""
        return [r for r in self.rows if not r.passed]

    def table(self) -> str:
        """The measured-vs-schema table as plain text (one line per row)."""
        head = ("quantity", "setting", "expected", "measured", "tolerance", "result")
        lines = []
        for r in self.rows:
            if r.status in ("refused", "error"):
                lines.append((r.quantity, r.setting, "", "", "", f"{r.status.upper()}: {r.note}"))
                continue
            unit = f" {r.unit}" if r.unit else ""
            lines.append((r.quantity, r.setting, f"{r.expected:.3f}{unit}", f"{r.measured:.3f}{unit}", r.tolerance,
                          r.status.upper() + (f" ({r.note})" if r.note else "")))
        widths = [max(len(x[i]) for x in [head] + lines) for i in range(5)]
        fmt = lambda x: "  ".join(f"{c:<{w}}" for c, w in zip(x[:5], widths)) + "  " + x[5]  # noqa: E731
        out = [f"contract of '{self.implementation}' at {self.sample_rate} Hz", fmt(head),
               "  ".join("-" * w for w in widths) + "  ------"]
        out += [fmt(x) for x in lines]
        n_ok = sum(r.status == "pass" for r in self.rows)
        n_ref = sum(r.status == "refused" for r in self.rows)
        out.append(f"{n_ok} passed, {n_ref} refused, {len(self.rows) - n_ok - n_ref} failed of {len(self.rows)} rows"
                   + (" -> PASS" if self.passed else " -> FAIL"))
        out += [f"notice: {n}" for n in self.notices]
        return "\n".join(out)

    def __str__(self) -> str:
        """:meth:`table`."""
        return self.table()


# ----------------------------------------------------------------------------- implementations and their registry
@dataclass
class Implementation:
    """Something the contract runs on: one renderer per row group it supports.

    Args:
        name: shown in the report.
        renderers: ``{group: render}`` with groups from :data:`ROW_GROUPS` (see :data:`Renderer`).
        notices: callable returning the implementation's notices (e.g. a backend's).
        close: frees plugin handles.
    """

    name: str
    renderers: dict[str, Renderer]
    notices: Callable[[], list[str]] = lambda: []
    close: Callable[[], None] = lambda: None

    @property
    def rows(self) -> tuple[str, ...]:
        """The row groups this implementation supports, in report order."""
        return tuple(g for g in ROW_GROUPS if g in self.renderers)


#: ``factory(sample_rate: int) -> Implementation``.
ImplementationFactory = Callable[[int], Implementation]
_IMPLEMENTATIONS: dict[str, ImplementationFactory] = {}
#: Loaders of implementations registered on first use (:func:`register_lazy`): ``{name: loader}``.
_LAZY: dict[str, Callable[[], None]] = {}
_BUILTIN_LOADED = False


def _load_builtin() -> None:
    """Register the built-in implementations (:mod:`.contract_implementations`) once."""
    global _BUILTIN_LOADED
    if not _BUILTIN_LOADED:
        _BUILTIN_LOADED = True
        from .contract_implementations import register_builtin

        register_builtin()


def register_implementation(name: str, factory: ImplementationFactory) -> None:
    """Add ``factory(sample_rate) -> Implementation`` under ``name`` (it replaces a lazy loader of ``name``).

    Raises:
        DuplicateNameError: ``name`` is already registered (the message lists the registered names).
    """
    _load_builtin()
    if name in _IMPLEMENTATIONS:
        raise DuplicateNameError(
            f"contract implementation '{name}' is already registered; registered: {', '.join(_IMPLEMENTATIONS)}")
    _IMPLEMENTATIONS[name] = factory
    _LAZY.pop(name, None)


def register_lazy(name: str, loader: Callable[[], None]) -> None:
    """Name an implementation that ``loader()`` registers the first time ``name`` is asked for.

    ``loader`` must call :func:`register_implementation` for ``name``; it may raise
    ``ImportError`` (reported as :class:`~mixbridge.errors.BackendUnavailableError`). This is
    how a higher layer (the torch console in ``models``) joins without this layer importing it.
    Idempotent: a name that is already registered, eagerly or lazily, keeps its first entry,
    so an application may call this on every start.
    """
    _load_builtin()
    if name not in _IMPLEMENTATIONS and name not in _LAZY:
        _LAZY[name] = loader


#: ``{prefix: factory(rest, sample_rate) -> Implementation}``: targets ``PREFIX:REST`` (:func:`register_prefix`).
_PREFIXES: dict[str, Callable[[str, int], Implementation]] = {}


def register_prefix(prefix: str, factory: Callable[[str, int], Implementation]) -> None:
    """Resolve targets ``PREFIX:REST`` with ``factory(REST, sample_rate)`` (idempotent: the first entry stays).

    How a higher layer adds a family of targets this layer cannot import, such as
    ``proxy:models/proxies/zamcomp.json`` (:mod:`mixbridge.export.compare.contract`, registered by the CLI).
    """
    _PREFIXES.setdefault(prefix, factory)


def implementation_names(include_lazy: bool = False) -> list[str]:
    """Registered implementations (with ``include_lazy``, also the lazy ones not loaded yet), in order."""
    _load_builtin()
    return list(_IMPLEMENTATIONS) + ([n for n in _LAZY if n not in _IMPLEMENTATIONS] if include_lazy else [])


def _load_lazy(name: str) -> None:
    """Run the loader of ``name``.

    Raises:
        BackendUnavailableError: the loader fails to import its module (torch missing) or
            registers nothing under ``name``.
    """
    try:
        _LAZY[name]()
    except ImportError as e:
        raise BackendUnavailableError(f"contract implementation '{name}' fails to load ({e}); "
                                      "install torch==2.13.0 (CPU) for the torch console") from None
    if name not in _IMPLEMENTATIONS:
        raise BackendUnavailableError(
            f"the loader of contract implementation '{name}' registered nothing under that name")


def resolve_implementation(target: Any, sample_rate: int) -> list[Implementation]:
    """``target`` as implementations: a registered name, ``PREFIX:REST`` of a registered prefix
    (:func:`register_prefix`, e.g. ``proxy:PATH``), a shipped map, a map JSON path, or a plugin name.

    A plugin name gives one implementation per shipped map that uses the plugin.

    Raises:
        UnknownNameError: none of these; lists the implementations and the shipped maps.
        BackendUnavailableError: a lazy implementation whose loader fails.
    """
    from .contract_implementations import map_implementation, maps_using_plugin
    from .map_loader import builtin_map_names
    from .pluginmap import PluginMap

    _load_builtin()
    if isinstance(target, Implementation):
        return [target]
    if isinstance(target, PluginMap):
        return [map_implementation(target, sample_rate)]
    text = str(target)
    if text in _LAZY and text not in _IMPLEMENTATIONS:
        _load_lazy(text)
    if text in _IMPLEMENTATIONS:
        return [_IMPLEMENTATIONS[text](sample_rate)]
    prefix, sep, rest = text.partition(":")
    if sep and prefix in _PREFIXES:
        return [_PREFIXES[prefix](rest, sample_rate)]
    if text in builtin_map_names() or text.endswith(".json") or Path(text).exists():
        return [map_implementation(text, sample_rate)]
    maps = maps_using_plugin(text)
    if maps:
        return [map_implementation(m, sample_rate) for m in maps]
    raise UnknownNameError(
        f"'{text}' is no contract implementation, plugin map or mapped plugin; implementations: "
        f"{', '.join(implementation_names(include_lazy=True))}; shipped maps: {', '.join(builtin_map_names())} "
        "(or give a map .json path)")


# ----------------------------------------------------------------------------- the runner
def run_implementation(impl: Implementation, sample_rate: int = 48000,
                       rows: Iterable[str] | None = None) -> ContractReport:
    """Measure every supported row group of ``impl`` (or only ``rows``) into a :class:`ContractReport`.

    Raises:
        UnknownNameError: a row group not in :data:`ROW_GROUPS`.
    """
    from .contract_measures import MEASUREMENTS

    wanted = tuple(rows) if rows is not None else ROW_GROUPS
    for g in wanted:
        if g not in ROW_GROUPS:
            raise UnknownNameError(f"unknown contract row group '{g}'; known: {', '.join(ROW_GROUPS)}")
    report = ContractReport(impl.name, int(sample_rate))
    for group in impl.rows:
        if group not in wanted:
            continue
        for measure in MEASUREMENTS[group]:
            report.rows.extend(measure(impl.renderers[group], int(sample_rate)))
    try:
        report.notices = list(impl.notices())
    except Exception:
        pass
    return report


def run_contract(target: Any, sample_rate: int = 48000, rows: Iterable[str] | None = None) -> ContractReport:
    """Run the contract on an implementation name, a plugin map (name, path or object) or a mapped plugin name.

    Args:
        target: see :func:`resolve_implementation`.
        sample_rate: Hz.
        rows: row groups to measure (default all that the implementation supports:
            :data:`ROW_GROUPS`).

    Returns:
        One :class:`ContractReport` (several maps of one plugin are merged, each row's
        setting prefixed with the map). An implementation that fails to build
        (a library or plugin missing) gives one ``error`` row.

    Raises:
        UnknownNameError: an unknown target or row group.
    """
    try:
        impls = resolve_implementation(target, sample_rate)
    except UnknownNameError:
        raise
    except Exception as e:
        report = ContractReport(str(target), int(sample_rate))
        report.rows.append(failed_row("load", "load implementation", str(target), e))
        if report.rows[0].status == "refused":
            report.rows[0] = Row(**{**report.rows[0].__dict__, "status": "error"})
        return report
    if len(impls) == 1:
        try:
            return run_implementation(impls[0], sample_rate, rows)
        finally:
            impls[0].close()
    merged = ContractReport(f"{target} ({', '.join(i.name for i in impls)})", int(sample_rate))
    for impl in impls:
        try:
            r = run_implementation(impl, sample_rate, rows)
        finally:
            impl.close()
        merged.rows += [Row(**{**row.__dict__, "setting": f"[{impl.name}] {row.setting}"}) for row in r.rows]
        merged.notices += r.notices
    return merged
