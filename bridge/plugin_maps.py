"""DAW plugin maps: one registry and one loader for the plugins each DAW profile drives.

A DAW map (``plugins/maps/daw/<daw>.json``, format ``mixbridge-daw-map`` version 1)
lists, in strip / FX-chain order, the plugins a DAW profile drives. Each entry is
either

* a **host stage** (``"host_map"`` + ``"stage"``): the plugin is the very plugin the
  host renders with, and its values are the host's measured map's
  :meth:`~mixbridge.plugins.pluginmap.PluginMap.stage_values` (normalised 0..1),
  addressed by parameter *name*; the DAW's parameter number is the name's position
  in the plugin's parameter order, which the host map's measured curves list (all
  ``identity.num_params`` of them, checked at load). REAPER uses this: no law is
  typed twice, so REAPER and the host cannot drift apart; or
* a **native plugin** (``"params"`` + ``"set"`` + ``"fixed"``): the DAW takes values in
  the plugin's own units; each plugin parameter (by name, with the DAW's index and the
  native range) is driven by one schema parameter through an optional named
  conversion (:data:`DAW_CONVERSIONS`, or the host's
  :data:`~mixbridge.plugins.pluginmap.CONVERSIONS`), with ``"with"`` parameters as in
  the host maps. Ardour's ACE EQ / ACE Compressor and Ableton's EQ Eight /
  Compressor use this (``measured`` says whether the laws were checked against the
  plugin's output here).

Every value is checked against the plugin's range: a value the plugin cannot take
raises :class:`~mixbridge.bridge.errors.DawRangeError` (naming the schema value, the
plugin value, the range and, where the conversion has no ``with``, the schema range
the plugin can reach) instead of being clamped by the DAW. Reading a DAW back
(:meth:`DawPlugin.read_back`) inverts each conversion by bisection over the schema
range (the conversions are monotone), so pull needs no second, hand-typed law.

The conversions only DAW maps use (ACE EQ's and ACE Compressor's laws) live in
:mod:`mixbridge.bridge.ace_laws`; sources and measurements in ``docs/bridge.md``.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from mixbridge.errors import MixbridgeError, ParamRangeError, UnknownNameError
from mixbridge.plugins.map_curves import Choices, Curve
from mixbridge.plugins.map_laws import CONVERSIONS, Conversion
from mixbridge.plugins.map_loader import load_map, read_map_json
from mixbridge.plugins.pluginmap import Binding, PluginMap, Stage
from mixbridge.schema import CHANNEL_STRIP, Processor

from .ace_laws import DAW_CONVERSIONS
from .errors import DawRangeError

DAW_MAP_FORMAT = "mixbridge-daw-map"
DAW_MAP_VERSIONS = (1,)
#: Package folder of the shipped DAW maps (inside ``mixbridge.plugins.maps``).
DAW_MAP_FOLDER = "daw"
#: Bisection steps for inverting a conversion over a schema range: 200 halvings reach
#: float64 resolution on any range the schema has.
BISECT_STEPS = 200
#: A native value may lie this fraction of the plugin's span outside it (float round-off).
NATIVE_ROUNDOFF = 1e-9


def _conversion(name: str) -> Conversion:
    return DAW_CONVERSIONS.get(name) or CONVERSIONS[name]


def known_conversions() -> list[str]:
    """Names of every conversion a DAW map may name (the host's and :data:`DAW_CONVERSIONS`)."""
    return sorted(set(CONVERSIONS) | set(DAW_CONVERSIONS))


# ------------------------------------------------------------------------------ data model
@dataclass(frozen=True)
class DawParam:
    """One plugin parameter as the DAW addresses it: name, DAW index, native range (None: 0..1 wire)."""

    name: str
    index: int
    min: float = 0.0
    max: float = 1.0
    symbol: str = ""


def _bisect(func, target: float, lo: float, hi: float, log: bool) -> float:
    """The lowest x in [lo, hi] with func(x) reaching ``target`` (func monotone; flat runs -> lowest)."""
    f_lo, f_hi = func(lo), func(hi)
    rising = f_hi >= f_lo
    a, b = (math.log(lo), math.log(hi)) if log else (lo, hi)
    for _ in range(BISECT_STEPS):
        mid = 0.5 * (a + b)
        x = math.exp(mid) if log else mid
        fx = func(x)
        if (fx >= target) if rising else (fx <= target):
            b = mid
        else:
            a = mid
    return math.exp(b) if log else b


@dataclass(frozen=True)
class DawPlugin:
    """One plugin slot of a DAW map (see the module docstring)."""

    slot: int
    name: str
    processor: Processor
    params: dict[str, DawParam]
    wire: str  # "native" or "normalised"
    bindings: tuple[Binding, ...] = ()
    fixed: dict[str, Any] = field(default_factory=dict)
    host: PluginMap | None = None
    stage: Stage | None = None
    uri: str = ""
    measured: bool = False
    source: str = ""
    #: Host stages: fixed settings the DAW uses instead of the host's (display values), e.g. internal
    #: detection where the host feeds a sidechain the DAW cannot receive.
    override: dict[str, Any] = field(default_factory=dict)
    #: Schema parameters of :attr:`processor` the DAW cannot carry, with the reason (reported, never sent).
    not_carried: dict[str, str] = field(default_factory=dict)

    @property
    def driven(self) -> tuple[Binding, ...]:
        """The bindings that drive this plugin's parameters (the host stage's, or the native map's)."""
        return self.stage.set if self.stage is not None else self.bindings

    @property
    def sources(self) -> tuple[str, ...]:
        """Schema parameter names (of :attr:`processor`) this plugin carries."""
        return tuple(b.source for b in self.driven)

    @property
    def paths(self) -> tuple[str, ...]:
        """Schema paths (``"eq.peak1_q"``) this plugin carries."""
        return tuple(f"{self.processor.name}.{s}" for s in self.sources)

    def values(self, params: Mapping[str, float], sample_rate: int, where: str = "") -> dict[str, float]:
        """Wire values ``{plugin parameter name: value}`` for this plugin (fixed and driven ones).

        Args:
            params: real-unit values of the processor's schema parameters (all of them).
            sample_rate: the session's sample rate in Hz (for conversions that need it).

        Raises:
            DawRangeError: a value the plugin cannot take; names both values and the range.
        """
        if self.stage is not None:
            host = self.host
            assert host is not None, "a host stage always has its host map"
            try:
                vals = host.stage_values(self.stage, params, sample_rate)
                curves = host.plugins[self.stage.plugin].curves
                for k, v in self.override.items():
                    c = curves[k]
                    vals[k] = c.to_normalised(v if isinstance(c, Choices) else float(v), f"{self.name} override")
            except ParamRangeError as e:
                raise DawRangeError(f"{where}{e}") from None
            return {k: float(v) for k, v in vals.items()}
        out: dict[str, float] = {k: float(v) for k, v in self.fixed.items()}
        for b in self.bindings:
            v = float(params[b.source])
            native = v
            if b.convert:
                native = float(_conversion(b.convert).func(v, *[float(params[w]) for w in b.with_],
                                                           sample_rate=sample_rate))
            p = self.params[b.param]
            tol = NATIVE_ROUNDOFF * (p.max - p.min)
            if not (p.min - tol <= native <= p.max + tol) or not math.isfinite(native):
                reach = self.reachable(b.source, sample_rate)
                hint = f"; {self.name} reaches {self.processor.name}.{b.source} in [{reach[0]:.4g}, {reach[1]:.4g}]" \
                    if reach is not None else ""
                raise DawRangeError(
                    f"{where}{self.processor.name}.{b.source} = {v:g} becomes {self.name} '{b.param}' = {native:g}, "
                    f"outside the plugin's [{p.min:g}, {p.max:g}]{hint}; choose a value the plugin can take"
                )
            out[b.param] = min(max(native, p.min), p.max)  # round-off only (checked above)
        return out

    def reachable(self, source: str, sample_rate: int = 48000) -> tuple[float, float] | None:
        """The schema range of ``source`` this plugin can render (None: it depends on other values)."""
        b = next(b for b in self.driven if b.source == source)
        sp = self.processor.param(source)
        if self.stage is not None or b.with_:
            return None
        p = self.params[b.param]
        if not b.convert:
            return max(sp.min, p.min), min(sp.max, p.max)
        f = lambda x: float(_conversion(b.convert).func(x, sample_rate=sample_rate))  # noqa: E731
        lo, hi = sp.min, sp.max
        log = sp.min > 0
        ins = [x for x in np.geomspace(lo, hi, 2001) if p.min <= f(x) <= p.max] if log else \
            [x for x in np.linspace(lo, hi, 2001) if p.min <= f(x) <= p.max]
        if not ins:
            return None
        a = ins[0] if ins[0] == lo else _bisect(lambda x: float(p.min <= f(x) <= p.max), 1.0, lo, ins[0], log)
        z = ins[-1] if ins[-1] == hi else _bisect(lambda x: float(not p.min <= f(x) <= p.max), 1.0, ins[-1], hi, log)
        return a, z

    def read_back(self, wire: Mapping[str, float], sample_rate: int) -> tuple[dict[str, float], list[str]]:
        """Schema values from the plugin's wire values ``{name: value}`` (as the DAW reports them).

        Inverts each conversion by bisection over the schema range (``with`` values first).
        Returns ``({schema name: value}, [schema names not read])``.
        """
        got: dict[str, float] = {}
        missing: list[str] = []
        curves = self.host.plugins[self.stage.plugin].curves if self.stage is not None and self.host else {}
        # plain copies first, then laws without ``with``, then laws that need other values (ACE EQ's shelf
        # frequency needs the shelf gain, whichever order the map lists them in)
        ordered = sorted(self.driven, key=lambda b: (bool(b.with_), bool(b.convert)))
        for b in ordered:
            if b.param not in wire or any(w not in got for w in b.with_):
                missing.append(b.source)
                continue
            x = float(wire[b.param])
            if self.stage is not None:
                c = curves[b.param]
                if not isinstance(c, Curve):
                    missing.append(b.source)
                    continue
                x = float(c.to_display(x))
            if not b.convert:
                got[b.source] = x
                continue
            sp = self.processor.param(b.source)
            others = [got[w] for w in b.with_]
            conv = _conversion(b.convert)
            got[b.source] = _bisect(lambda s, conv=conv, others=others: float(
                conv.func(s, *others, sample_rate=sample_rate)), x, sp.min, sp.max, sp.min > 0)
        return got, missing


@dataclass(frozen=True)
class DawMap:
    """The plugins one DAW profile drives, in strip order."""

    daw: str
    wire: str
    index_base: int
    plugins: tuple[DawPlugin, ...]
    notes: str = ""
    path: Path | None = None

    @property
    def paths(self) -> tuple[str, ...]:
        """Schema paths (``"eq.peak1_q"``) carried by some plugin of the map, in map order."""
        seen: dict[str, None] = {}
        for p in self.plugins:
            for path in p.paths:
                seen.setdefault(path, None)
        return tuple(seen)

    def plugin(self, slot: int) -> DawPlugin:
        """The plugin in ``slot``.

        Raises:
            KeyError: no plugin in that slot.
        """
        for p in self.plugins:
            if p.slot == slot:
                return p
        raise KeyError(slot)

    def plugin_name(self, slot: int) -> str:
        """The name of the plugin in ``slot`` (as the DAW lists it)."""
        return self.plugin(slot).name

    @property
    def slots(self) -> tuple[tuple[int, str], ...]:
        """``(slot, plugin name)`` per plugin, in strip order."""
        return tuple((p.slot, p.name) for p in self.plugins)


# ------------------------------------------------------------------------------ loader
class DawMapError(ValueError, MixbridgeError):
    """A DAW map that does not parse or does not agree with the schema / its host map."""


def _require(cond: object, msg: str) -> None:
    if not cond:
        raise DawMapError(msg)


def _host_plugin(raw: Mapping, where: str, wire: str, index_base: int) -> DawPlugin:
    _require(wire == "normalised", f"{where}: a host-map plugin sends normalised values; set \"wire\": \"normalised\"")
    host = load_map(raw["host_map"])
    stage_i = int(raw.get("stage", 0))
    _require(0 <= stage_i < len(host.stages), f"{where}: host map '{host.name}' has {len(host.stages)} stages, "
                                              f"not stage {stage_i}")
    stage = host.stages[stage_i]
    spec = host.plugins[stage.plugin]
    order = list(spec.curves)
    _require(len(order) == spec.identity.num_params,
             f"{where}: host map '{host.name}' lists {len(order)} of {spec.identity.name}'s "
             f"{spec.identity.num_params} parameters, so their order (the DAW's parameter numbers) is unknown; "
             "re-calibrate the map with every parameter")
    params = {n: DawParam(n, index_base + i) for i, n in enumerate(order)}
    name = str(raw.get("name") or spec.identity.name)
    override = dict(raw.get("override_fixed") or {})
    for k in override:
        _require(k in stage.fixed, f"{where}: override_fixed '{k}' is not a fixed setting of host map "
                                   f"'{host.name}' stage {stage_i} ({', '.join(stage.fixed)})")
    _require(stage.sidechain is None or override,
             f"{where}: host map '{host.name}' stage {stage_i} takes a host-made sidechain "
             f"({stage.sidechain[1] if stage.sidechain else ''}) that a DAW cannot receive; set 'override_fixed' "
             "to the plugin's own detection and list what it then cannot carry in 'not_carried'")
    _require(host.output_gain is None and not host.delay_ms,
             f"{where}: host map '{host.name}' applies a host-side output gain or delay that a DAW cannot; "
             "give this DAW a native map instead")
    not_carried = {str(k): str(v) for k, v in (raw.get("not_carried") or {}).items()}
    proc = host_processor(host)
    for k in not_carried:
        _require(k in proc.param_names and k not in {b.source for b in stage.set},
                 f"{where}: not_carried '{k}' must be a '{proc.name}' parameter the stage does not drive")
    return DawPlugin(int(raw["slot"]), name, proc, params, wire, host=host, stage=stage,
                     measured=True, source=f"host map '{host.name}' stage {stage_i} ({spec.identity.name})",
                     override=override, not_carried=not_carried)


def host_processor(host: PluginMap) -> Processor:
    """The schema processor a host plugin map drives."""
    from mixbridge.plugins.pluginmap import MAP_PROCESSORS

    return MAP_PROCESSORS[host.processor]


def _native_plugin(raw: Mapping, where: str, wire: str) -> DawPlugin:
    proc_name = raw.get("processor")
    try:
        proc = CHANNEL_STRIP.processor(str(proc_name))
    except (LookupError, ValueError):
        raise DawMapError(f"{where}: 'processor' {proc_name!r} is not a channel_strip processor") from None
    params: dict[str, DawParam] = {}
    for rp in raw.get("params") or []:
        params[str(rp["name"])] = DawParam(str(rp["name"]), int(rp["index"]), float(rp["min"]), float(rp["max"]),
                                           str(rp.get("symbol", "")))
    binds: list[Binding] = []
    for pname, rb in (raw.get("set") or {}).items():
        _require(pname in params, f"{where}: set['{pname}'] names no parameter in 'params'")
        _require(rb.get("from") in proc.param_names,
                 f"{where}: set['{pname}'].from = {rb.get('from')!r} is not a parameter of '{proc.name}' "
                 f"({', '.join(proc.param_names)})")
        conv = rb.get("convert")
        with_ = tuple(rb.get("with") or ())
        if conv is not None:
            _require(conv in DAW_CONVERSIONS or conv in CONVERSIONS,
                     f"{where}: unknown convert '{conv}'; known: {', '.join(known_conversions())}")
            n_with = _conversion(conv).n_with
            _require(len(with_) == n_with,
                     f"{where}: convert '{conv}' needs {n_with} 'with' parameter(s), got {len(with_)}")
        for w in with_:
            _require(w in proc.param_names,
                     f"{where}: set['{pname}'].with names '{w}', not a parameter of '{proc.name}'")
        binds.append(Binding(pname, rb["from"], conv, with_))
    fixed = {}
    for pname, v in (raw.get("fixed") or {}).items():
        _require(pname in params, f"{where}: fixed '{pname}' names no parameter in 'params'")
        _require(pname not in {b.param for b in binds}, f"{where}: '{pname}' is both set and fixed")
        p = params[pname]
        _require(p.min <= float(v) <= p.max, f"{where}: fixed '{pname}' = {v} is outside [{p.min:g}, {p.max:g}]")
        fixed[pname] = float(v)
    return DawPlugin(int(raw["slot"]), str(raw["name"]), proc, params, wire, tuple(binds), fixed,
                     uri=str(raw.get("uri", "")), measured=bool(raw.get("measured", False)),
                     source=str(raw.get("source", "")))


def daw_map_from_dict(data: Mapping[str, Any], name: str = "", path: Path | None = None) -> DawMap:
    """Build and validate a DAW map from parsed JSON.

    Checks the format and version; every plugin parameter named exists with its range;
    every driven name is a schema parameter; no schema parameter is carried twice; the
    schema defaults are renderable (the plugin reaches them).

    Raises:
        DawMapError: naming the map, the problem and the fix.
    """
    where = f"DAW map '{name or data.get('daw', '?')}'"
    _require(isinstance(data, Mapping), f"{where} must be a JSON object")
    _require(data.get("format") == DAW_MAP_FORMAT,
             f"{where}: 'format' is {data.get('format')!r}, expected '{DAW_MAP_FORMAT}'")
    _require(data.get("version") in DAW_MAP_VERSIONS,
             f"{where}: version {data.get('version')!r} is not supported; this mixbridge reads {DAW_MAP_VERSIONS}")
    wire = data.get("wire")
    _require(wire in ("native", "normalised"), f"{where}: 'wire' must be 'native' or 'normalised', got {wire!r}")
    assert isinstance(wire, str)
    index_base = int(data.get("index_base", 0))
    raw_plugins = data.get("plugins")
    _require(isinstance(raw_plugins, list) and raw_plugins, f"{where}: needs a non-empty 'plugins' list")
    assert isinstance(raw_plugins, list)
    plugins = []
    for i, rp in enumerate(raw_plugins):
        pw = f"{where} plugins[{i}]"
        _require(isinstance(rp, Mapping) and "slot" in rp, f"{pw}: needs 'slot'")
        plugins.append(_host_plugin(rp, pw, wire, index_base) if "host_map" in rp else _native_plugin(rp, pw, wire))
    _require(len({p.slot for p in plugins}) == len(plugins), f"{where}: two plugins share a slot")
    seen: dict[str, int] = {}
    for p in plugins:
        for schema_path in p.paths:
            _require(schema_path not in seen,
                     f"{where}: {schema_path} is carried by slots {seen.get(schema_path)} and {p.slot}")
            seen[schema_path] = p.slot
    dm = DawMap(str(data.get("daw") or name), wire, index_base, tuple(plugins), str(data.get("notes", "")), path)
    for p in plugins:  # the schema defaults must be renderable
        p.values(p.processor.defaults(), 48000, f"{where} slot {p.slot} at the schema defaults: ")
    return dm


def daw_map_names() -> list[str]:
    """Names of the shipped DAW maps (``plugins/maps/daw/*.json``)."""
    root = resources.files("mixbridge.plugins.maps").joinpath(DAW_MAP_FOLDER)
    return sorted(p.name[: -len(".json")] for p in root.iterdir() if p.name.endswith(".json"))


def load_daw_map(name_or_path: str | Path) -> DawMap:
    """Load a DAW map by shipped name (``"reaper"``) or JSON path (read by the host's one map reader).

    Raises:
        UnknownNameError: an unknown name (lists the shipped ones).
        DawMapError: a file that is not valid JSON or fails validation.
    """
    data, name, p = read_map_json(name_or_path, folder=DAW_MAP_FOLDER, what="DAW map", error=DawMapError,
                                  unknown=UnknownNameError, shipped=daw_map_names)
    return daw_map_from_dict(data, name, p)


@functools.cache
def get_daw_map(daw: str) -> DawMap:
    """The shipped map of ``daw``, loaded once per process (the registry)."""
    return load_daw_map(daw)


def __getattr__(name: str):
    """``REAPER_MAP``, ``ARDOUR_MAP``, ``ABLETON_MAP``: the shipped maps, loaded on first use."""
    legacy = {"REAPER_MAP": "reaper", "ARDOUR_MAP": "ardour", "ABLETON_MAP": "ableton"}
    if name in legacy:
        return get_daw_map(legacy[name])
    if name == "PLUGIN_MAPS":
        return {d: get_daw_map(d) for d in daw_map_names()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
