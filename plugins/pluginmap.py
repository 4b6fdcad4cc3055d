"""Plugin maps: data files that tie schema parameters to one real plugin's parameters.

A map (``plugins/maps/NAME.json``, format ``mixbridge-plugin-map`` version 1)
holds, for one schema processor (``eq``, ``compressor``, ``reverb``, ``limiter``):

* ``plugins``: each plugin it uses, by key, with its **identity** (file name,
  format, plugin name, number of parameters, input/output channels) and the
  **measured value curves** of its parameters (normalised 0..1 <-> display value,
  :mod:`.map_curves`, measured by sweeping the normalised value and parsing the plugin's
  display text: :mod:`.map_calibration` and ``mixbridge plugins calibrate``). Curves are
  never guessed.
* ``stages``: plugin instances in series. Each stage's ``set`` says which
  plugin parameter (by *name*, never by index) each schema parameter drives,
  with an optional named unit ``convert``\\ sion (:data:`CONVERSIONS`, each with
  its source) and an optional ``range`` ``[lo, hi]`` (schema units) where the plugin renders
  only part of the schema's range: values outside it are refused, and data generation samples
  inside it (:meth:`PluginMap.renderable_range`); ``fixed`` holds settings that never change
  (display units, or the display text of a choice).
* ``handled_elsewhere``: schema parameters the plugin does not carry, with who
  applies them (e.g. ``reverb.return_db``: an exact gain applied by the host).
* ``deterministic`` (default true): false when the plugin's output differs
  between identical renders (the host reports a notice).
* ``fresh_instance_per_call`` (default false): true when the plugin keeps
  state across renders that re-preparing does not clear (the Dragonfly reverbs
  keep their tails, LSP's compressor its gain reduction); the host then loads new
  instances for every call. ``plugins calibrate`` measures this flag and
  ``deterministic`` (:func:`~.map_calibration.measure_render_state`).

This module holds the map model (:class:`PluginMap` and its parts) and its validation
(:func:`map_from_dict`, :func:`check_reach`); the files are read by :mod:`.map_loader`
(:func:`~.map_loader.load_map`), which also refuses a map that does not match the installed
plugin (:func:`~.map_loader.check_identity`).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from mixbridge.errors import ParamRangeError, PluginMapError
from mixbridge.schema import COMPRESSOR, EQ, LIMITER, REVERB, Processor

from .map_curves import Choices, Curve, curve_from_json
from .map_laws import CONVERSIONS, RANGE_ROUNDOFF, MeasuredTable
from .map_sidechain import SIDECHAIN_SIGNALS

MAP_FORMAT = "mixbridge-plugin-map"
MAP_VERSION = 1
SUPPORTED_MAP_VERSIONS = (1,)

#: Processors a map can drive, with their schema definitions.
MAP_PROCESSORS: dict[str, Processor] = {p.name: p for p in (EQ, COMPRESSOR, REVERB, LIMITER)}

#: The default VST chain (DESIGN.md §4 plugins). The reverb is the Plate, not the
#: Room: DragonflyRoomReverb's late tail differs between identical renders (measured
#: max |diff| ~2e-3 on a unit impulse, even in a fresh instance), so renders with it
#: are not reproducible; ``dragonfly_room`` is shipped as an alternative.
#: There is no default limiter map: ZaMaximX2 is a sample-peak limiter (measured +0.7 dBTP on
#: noise and +2.1 dBTP on an fs/4 sine through a -1 dBTP ceiling, ``mixbridge plugins check
#: zamaximx2``), so the vst backend's limiter is the master bus's true-peak limiter unless a
#: limiter map is given explicitly (``maps={"limiter": "zamaximx2"}``).
DEFAULT_MAPS: dict[str, str] = {
    "eq": "zameq2_x2",
    "compressor": "zamcomp",
    "reverb": "dragonfly_plate",
}


@dataclass(frozen=True)
class Identity:
    """Which plugin a map was measured on."""

    file: str
    format: str
    name: str
    num_params: int
    inputs: int
    outputs: int

    def to_json(self) -> dict:
        """The identity as a map's JSON ``identity`` object."""
        return {
            "file": self.file, "format": self.format, "name": self.name, "num_params": self.num_params,
            "inputs": self.inputs, "outputs": self.outputs,
        }


@dataclass(frozen=True)
class PluginSpec:
    """One plugin of a map: its identity and measured curves."""

    key: str
    identity: Identity
    curves: dict[str, Curve | Choices]
    calibration: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Binding:
    """Plugin parameter ``param`` driven by schema parameter ``source`` (optionally converted)."""

    param: str
    source: str
    convert: str | None = None
    with_: tuple[str, ...] = ()
    table: MeasuredTable | None = None
    #: ``(lo, hi)`` in the schema parameter's unit: the part of its range this binding renders, where
    #: the map declares one (``"range": [lo, hi]``); None: the whole schema range.
    range: tuple[float, float] | None = None


@dataclass(frozen=True)
class Stage:
    """One plugin instance of a map's series chain."""

    plugin: str
    set: tuple[Binding, ...]
    fixed: dict[str, float | str]
    #: ``(plugin input channel, SIDECHAIN_SIGNALS name)``: the host feeds that input with the signal.
    sidechain: tuple[int, str] | None = None


@dataclass(frozen=True)
class OutputGain:
    """A measured gain the host applies to a map's output, a function of one plugin parameter.

    ``gain_db(display)`` interpolates ``gain_db`` over ``display`` (the parameter's display
    values, increasing) linearly; e.g. Dragonfly Plate's wet energy over its Decay knob, negated,
    so the return's energy equals the send's at ``return_db = 0``.
    """

    stage: int
    param: str
    display: tuple[float, ...]
    gain_db: tuple[float, ...]
    method: str = ""

    def at(self, display):
        """Gain in dB at display value(s) ``display`` (float or float64 array), interpolated linearly."""
        return np.interp(display, self.display, self.gain_db)


@dataclass(frozen=True)
class PluginMap:
    """A validated plugin map (see the module docstring)."""

    name: str
    processor: str
    plugins: dict[str, PluginSpec]
    stages: tuple[Stage, ...]
    handled_elsewhere: dict[str, str]
    deterministic: bool = True
    fresh_instance_per_call: bool = False
    notes: str = ""
    path: Path | None = None
    #: Measured delay of the plugin's output onset that it does not report as latency (ms); the
    #: host removes it like latency (Dragonfly Plate: 55.9 ms before its pre-delay).
    delay_ms: float = 0.0
    output_gain: OutputGain | None = None

    def output_gain_db(self, stage_values: Sequence[Mapping[str, Any]]):
        """The host's output gain in dB (0.0 without ``output_gain``) for per-stage normalised values."""
        og = self.output_gain
        if og is None:
            return 0.0
        # map_from_dict refuses an output_gain parameter without a numeric curve
        curve = cast(Curve, self.plugins[self.stages[og.stage].plugin].curves[og.param])
        return og.at(curve.to_display(stage_values[og.stage][og.param]))

    def stage_values(self, stage: Stage, params: Mapping[str, Any], sample_rate: int,
                     label: str = "") -> dict[str, Any]:
        """Normalised values of one stage's plugin parameters.

        Args:
            stage: one of :attr:`stages`.
            params: real-unit schema values (floats, or float64 arrays of per-sample
                automation of equal length).
            sample_rate: in Hz (for conversions that need it).

        Returns:
            ``{plugin parameter name: normalised float or float64 array}``
            covering the stage's ``fixed`` and ``set`` parameters.

            label: where the values come from (``track 'kick'``, ``reverb bus``), for messages.

        Raises:
            ParamRangeError: a value the plugin cannot reach; names ``label``, the parameter,
                the value and the range the plugin reaches.
        """
        spec = self.plugins[stage.plugin]
        where = f"{label + ': ' if label else ''}map '{self.name}' ({spec.identity.name})"
        out: dict[str, Any] = {}
        for pname, value in stage.fixed.items():
            curve = spec.curves[pname]
            if isinstance(curve, Choices):
                out[pname] = curve.to_normalised(value, where)
            else:
                out[pname] = curve.to_normalised(float(value), where)
        for b in stage.set:
            v = params[b.source]
            if b.range is not None:
                _refuse_outside_range(v, b, self.processor, f"{where} {self.processor}.{b.source}")
            if b.convert:
                conv = CONVERSIONS[b.convert]
                extra = {"table": b.table, "where": f"{where} {self.processor}.{b.source}"} if conv.needs_table else {}
                if conv.refuse is not None:
                    conv.refuse(v, *[params[w] for w in b.with_], params=params, source=b.source,
                                sample_rate=sample_rate, where=where)
                try:
                    v = conv.func(v, *[params[w] for w in b.with_], sample_rate=sample_rate, **extra)
                except ParamRangeError as e:  # name the schema parameter, so a render can clamp it
                    if e.param is None:
                        e.param = b.source
                    raise
            curve = spec.curves[b.param]
            out[b.param] = curve.to_normalised(v, f"{where} {self.processor}.{b.source}")
        return out

    def renderable_range(self, param: str) -> tuple[float, float]:
        """``(lo, hi)`` in real units: the values of schema parameter ``param`` this map renders.

        The schema's range, narrowed by the ``range`` of every binding ``param`` drives (a map
        declares one where its plugin reaches only part of the schema's range).

        Raises:
            UnknownParamError: ``param`` is not a parameter of the map's processor.
        """
        p = MAP_PROCESSORS[self.processor].param(param)
        lo, hi = p.min, p.max
        for st in self.stages:
            for b in st.set:
                if b.source == param and b.range is not None:
                    lo, hi = max(lo, b.range[0]), min(hi, b.range[1])
        return lo, hi

    @property
    def sources(self) -> set[str]:
        """The schema parameters some stage drives."""
        return {b.source for st in self.stages for b in st.set}


def _require(cond: object, msg: str) -> None:
    if not cond:
        raise PluginMapError(msg)


def _refuse_outside_range(value, b: Binding, processor: str, where: str) -> None:
    """Refuse a schema value outside the ``range`` a binding declares (nothing is clamped).

    Raises:
        ParamRangeError: naming ``where``, the value and the declared range (``param``,
            ``value`` and ``reachable`` set, so a render asked to ``--clamp`` can move it).
    """
    lo, hi = cast(tuple, b.range)
    v = np.asarray(value, dtype=np.float64)
    tol = RANGE_ROUNDOFF * max(hi - lo, 1.0)
    bad = ~np.isfinite(v) | (v < lo - tol) | (v > hi + tol)
    if np.any(bad):
        first = float(v.reshape(-1)[np.argmax(bad.reshape(-1))])
        unit = MAP_PROCESSORS[processor].param(b.source).unit
        raise ParamRangeError(
            f"{where}: {first:g} {unit}".rstrip() + f" is outside the range this map renders, [{lo:g}, {hi:g}] "
            f"{unit}".rstrip() + " (the binding's 'range'); choose a value inside it, another map, or pass --clamp",
            param=b.source, value=first, reachable=(float(lo), float(hi)))


def map_from_dict(data: Mapping[str, Any], name: str = "", path: Path | None = None) -> PluginMap:
    """Build and validate a map from parsed JSON.

    Checks the format and version, the schema agreement (every driven or
    ``with`` name is a schema parameter of the processor, and every schema
    parameter is driven or listed in ``handled_elsewhere``), and that every
    plugin parameter named has a measured curve.

    Raises:
        PluginMapError: naming the map, the problem and the fix.
    """
    where = f"plugin map '{name or data.get('name', '?')}'"
    _require(isinstance(data, Mapping), f"{where} must be a JSON object")
    _require(data.get("format") == MAP_FORMAT, f"{where}: 'format' is {data.get('format')!r}, expected '{MAP_FORMAT}'")
    _require(
        data.get("version") in SUPPORTED_MAP_VERSIONS,
        f"{where}: version {data.get('version')!r} is not supported; this mixbridge reads {SUPPORTED_MAP_VERSIONS}",
    )
    proc_name = data.get("processor")
    if proc_name not in MAP_PROCESSORS:
        raise PluginMapError(f"{where}: 'processor' {proc_name!r} must be one of {', '.join(MAP_PROCESSORS)}")
    proc = MAP_PROCESSORS[proc_name]
    raw_plugins = data.get("plugins")
    if not (isinstance(raw_plugins, Mapping) and raw_plugins):
        raise PluginMapError(f"{where}: needs a non-empty 'plugins' object")
    plugins: dict[str, PluginSpec] = {}
    for key, rp in raw_plugins.items():
        _require(isinstance(rp, Mapping), f"{where}: plugins['{key}'] must be an object")
        ri = rp.get("identity") or {}
        try:
            ident = Identity(str(ri["file"]), str(ri["format"]), str(ri["name"]), int(ri["num_params"]),
                             int(ri["inputs"]), int(ri["outputs"]))
        except (KeyError, TypeError, ValueError):
            raise PluginMapError(
                f"{where}: plugins['{key}'].identity needs file, format, name, num_params, inputs, outputs "
                "(run `mixbridge plugins calibrate PLUGIN` to get them)"
            ) from None
        _require(ident.format in ("vst2", "vst3"), f"{where}: plugins['{key}'] format must be vst2 or vst3")
        curves = {p: curve_from_json(p, c, f"{where} plugins['{key}']") for p, c in (rp.get("curves") or {}).items()}
        plugins[key] = PluginSpec(str(key), ident, curves, dict(rp.get("calibration") or {}))
    stages: list[Stage] = []
    raw_stages = data.get("stages")
    if not (isinstance(raw_stages, list) and raw_stages):
        raise PluginMapError(f"{where}: needs a non-empty 'stages' list")
    for i, rs in enumerate(raw_stages):
        sw = f"{where} stages[{i}]"
        _require(isinstance(rs, Mapping) and rs.get("plugin") in plugins,
                 f"{sw}: 'plugin' must name a key of 'plugins'")
        spec = plugins[rs["plugin"]]
        binds: list[Binding] = []
        for pname, rb in (rs.get("set") or {}).items():
            _require(isinstance(rb, Mapping) and "from" in rb,
                     f"{sw}: set['{pname}'] needs 'from' (a schema parameter)")
            src = rb["from"]
            _require(
                src in proc.param_names,
                f"{sw}: set['{pname}'].from = '{src}' is not a parameter of schema processor '{proc.name}' "
                f"({', '.join(proc.param_names)})",
            )
            conv = rb.get("convert")
            with_ = tuple(rb.get("with") or ())
            if conv is not None:
                _require(conv in CONVERSIONS, f"{sw}: unknown convert '{conv}'; known: {', '.join(CONVERSIONS)}")
                _require(
                    len(with_) == CONVERSIONS[conv].n_with,
                    f"{sw}: convert '{conv}' needs {CONVERSIONS[conv].n_with} 'with' parameter(s), got {len(with_)}",
                )
            for w in with_:
                _require(w in proc.param_names,
                         f"{sw}: set['{pname}'].with names '{w}', not a parameter of '{proc.name}'")
            _require(pname in spec.curves,
                     f"{sw}: plugin parameter '{pname}' has no measured curve in plugins['{spec.key}']")
            chosen = spec.curves[pname]
            if isinstance(chosen, Choices):
                raise PluginMapError(
                    f"{sw}: '{pname}' is a choice parameter (calibration saw only steps: "
                    f"{', '.join(list(chosen.choices)[:4])}, ...); put it in 'fixed', or, if it is a continuous knob "
                    f"with a coarse display, re-calibrate with `mixbridge plugins calibrate {spec.identity.name} "
                    f"--continuous {pname}`")
            table = None
            if conv is not None and CONVERSIONS[conv].needs_table:
                rt = rb.get("table")
                _require(isinstance(rt, Mapping),
                         f"{sw}: convert '{conv}' needs a measured 'table' (display, measured)")
                try:
                    table = MeasuredTable(tuple(map(float, rt["display"])), tuple(map(float, rt["measured"])),
                                          str(rt.get("unit", "")), str(rt.get("method", "")))
                except (KeyError, TypeError, ValueError) as e:
                    raise PluginMapError(
                        f"{sw}: set['{pname}'].table needs 'display' and 'measured' number lists ({e})") from None
                except PluginMapError as e:
                    raise PluginMapError(f"{sw}: set['{pname}'].table: {e}") from None
            brange = None
            if rb.get("range") is not None:
                rr = rb["range"]
                p_src = proc.param(src)
                try:
                    brange = (float(rr[0]), float(rr[1]))
                    ok = len(rr) == 2 and p_src.min <= brange[0] <= brange[1] <= p_src.max
                except (TypeError, ValueError, IndexError, KeyError):
                    ok = False
                _require(ok, f"{sw}: set['{pname}'].range must be [lo, hi] inside {proc.name}.{src}'s "
                             f"{p_src.range_text()}, lo <= hi")
            binds.append(Binding(pname, src, conv, with_, table, brange))
        fixed: dict[str, float | str] = {}
        for pname, val in (rs.get("fixed") or {}).items():
            _require(pname in spec.curves, f"{sw}: fixed '{pname}' has no measured curve in plugins['{spec.key}']")
            _require(pname not in {b.param for b in binds}, f"{sw}: '{pname}' is both set and fixed")
            fixed[pname] = val if isinstance(spec.curves[pname], Choices) and isinstance(val, str) else float(val)
        sidechain = None
        if rs.get("sidechain") is not None:
            rsc = rs["sidechain"]
            _require(i == 0, f"{sw}: only the first stage can take a host-made 'sidechain'")
            _require(isinstance(rsc, Mapping) and rsc.get("signal") in SIDECHAIN_SIGNALS,
                     f"{sw}: sidechain needs 'signal', one of {', '.join(SIDECHAIN_SIGNALS)}")
            sc_in = rsc.get("input")
            _require(isinstance(sc_in, int) and 0 <= sc_in < spec.identity.inputs and spec.identity.inputs >= 2,
                     f"{sw}: sidechain 'input' must be one of the plugin's {spec.identity.inputs} input channels "
                     "(0-based)")
            sidechain = (int(sc_in), str(rsc["signal"]))
            sig = SIDECHAIN_SIGNALS[sidechain[1]]
            for pname, want in sig.requires_fixed.items():
                _require(pname in fixed and not isinstance(fixed[pname], str) and float(fixed[pname]) == float(want),
                         f"{sw}: sidechain '{sig.name}' needs '{pname}' fixed at {want:g} (it assumes that setting)")
            driven = {b.param: b for b in binds}
            for pname, src in sig.requires_set.items():
                _require(pname in driven and driven[pname].source == src and driven[pname].convert is None,
                         f"{sw}: sidechain '{sig.name}' needs '{pname}' driven by {src}, unconverted "
                         "(it inverts the plugin's response to that setting)")
        stages.append(Stage(spec.key, tuple(binds), fixed, sidechain))
    handled = {str(k): str(v) for k, v in (data.get("handled_elsewhere") or {}).items()}
    for k in handled:
        _require(k in proc.param_names, f"{where}: handled_elsewhere names '{k}', not a parameter of '{proc.name}'")
    output_gain = None
    if data.get("output_gain") is not None:
        rg = data["output_gain"]
        try:
            og_stage = int(rg.get("stage", 0))
            output_gain = OutputGain(og_stage, str(rg["param"]), tuple(map(float, rg["display"])),
                                     tuple(map(float, rg["gain_db"])), str(rg.get("method", "")))
        except (AttributeError, KeyError, TypeError, ValueError) as e:
            raise PluginMapError(
                f"{where}: 'output_gain' needs stage, param, display and gain_db lists ({e})") from None
        _require(0 <= og_stage < len(stages), f"{where}: output_gain.stage {og_stage} is not a stage")
        og_curve = plugins[stages[og_stage].plugin].curves.get(output_gain.param)
        _require(isinstance(og_curve, Curve), f"{where}: output_gain.param '{output_gain.param}' needs a numeric curve")
        _require(len(output_gain.display) >= 2 and len(output_gain.display) == len(output_gain.gain_db)
                 and bool(np.all(np.diff(output_gain.display) > 0)),
                 f"{where}: output_gain needs >= 2 increasing 'display' values and as many 'gain_db'")
    delay_ms = float(data.get("delay_ms", 0.0))
    _require(math.isfinite(delay_ms) and delay_ms >= 0.0, f"{where}: 'delay_ms' must be a finite value >= 0 ms")
    pm = PluginMap(str(data.get("name") or name), proc.name, plugins, tuple(stages), handled,
                   bool(data.get("deterministic", True)), bool(data.get("fresh_instance_per_call", False)),
                   str(data.get("notes", "")), path, delay_ms, output_gain)
    missing = [p for p in proc.param_names if p not in pm.sources and p not in handled]
    _require(
        not missing,
        f"{where}: schema parameters {', '.join(missing)} of '{proc.name}' are neither driven by a stage "
        "nor listed in 'handled_elsewhere'; map them or say who applies them",
    )
    both = [p for p in handled if p in pm.sources]
    _require(not both, f"{where}: {', '.join(both)} are both driven and 'handled_elsewhere'")
    check_reach(pm, where)
    # fixed values must be reachable too: evaluate once at the schema defaults
    at = {k: min(max(v, pm.renderable_range(k)[0]), pm.renderable_range(k)[1]) for k, v in proc.defaults().items()}
    for st in pm.stages:  # (the defaults moved into a binding's declared range, where it has one)
        pm.stage_values(st, at, 48000)
    return pm


#: Sample rates at which :func:`check_reach` evaluates conversions that depend on the rate.
REACH_SAMPLE_RATES = (44100, 48000)
#: Interior points per schema range :func:`check_reach` evaluates besides the bounds.
REACH_POINTS = 9
#: Points over the schema range at which a refusal works out the part a binding does reach.
REACHABLE_SEARCH_POINTS = 257


def _reach_grid(p, lo: float | None = None, hi: float | None = None, points: int = REACH_POINTS) -> np.ndarray:
    lo = p.min if lo is None else lo
    hi = p.max if hi is None else hi
    if p.scale == "log" and lo > 0:
        return np.geomspace(lo, hi, points)
    return np.linspace(lo, hi, points)


def _reach_fix(b: Binding, reach: tuple[float, float] | None, unit: str) -> str:
    """The fixes a reach refusal names: a conversion, a declared ``range``, or another plugin."""
    fixes = []
    if b.convert is None:
        fixes.append(f"give set['{b.param}'] a 'convert' from the schema's unit to the plugin's (one of "
                     f"{', '.join(CONVERSIONS)})")
    if reach is not None:
        fixes.append(f"declare the part it renders with \"range\": [{reach[0]:.4g}, {reach[1]:.4g}] on "
                     f"set['{b.param}'] (renders then refuse values outside it, and `datagen` samples inside it "
                     "and says so)")
    fixes.append("map another plugin")
    return "; " + ", ".join(fixes[:-1]) + (", or " if len(fixes) > 1 else "") + fixes[-1]


def _reachable_part(b: Binding, p, with_params: Sequence, curve: Curve,
                    table: MeasuredTable | None) -> tuple[float, float] | None:
    """The interval of ``p``'s values (its binding range or schema range) the binding renders, or None.

    Evaluated on :data:`REACHABLE_SEARCH_POINTS` points at each of :data:`REACH_SAMPLE_RATES` and each
    combination of the ``with`` parameters' grids; the interval around the longest run of good points.
    """
    import itertools

    lo0, hi0 = b.range if b.range is not None else (p.min, p.max)
    xs = _reach_grid(p, lo0, hi0, REACHABLE_SEARCH_POINTS)
    ok = np.ones(len(xs), dtype=bool)
    tol = RANGE_ROUNDOFF * (curve.hi - curve.lo)
    if b.convert is None:
        ok &= (xs >= curve.lo - tol) & (xs <= curve.hi + tol)
    else:
        conv = CONVERSIONS[b.convert]
        if conv.needs_table and table is not None:
            tlo, thi = table.reach
            ok &= (xs >= tlo) & (xs <= thi)
        withs = [_reach_grid(w) for w in with_params]
        for sr in REACH_SAMPLE_RATES:
            for combo in itertools.product(*withs) if withs else [()]:
                for k, x in enumerate(xs):
                    if not ok[k]:
                        continue
                    try:
                        extra = {"table": table, "where": ""} if conv.needs_table else {}
                        d = float(conv.func(x, *combo, sample_rate=sr, **extra))
                    except (ParamRangeError, ValueError):
                        ok[k] = False
                        continue
                    ok[k] = curve.lo - tol <= d <= curve.hi + tol
    if not ok.any():
        return None
    best, start = (0, 0), None
    for k, good in enumerate(list(ok) + [False]):
        if good and start is None:
            start = k
        elif not good and start is not None:
            if k - start > best[1] - best[0]:
                best = (start, k)
            start = None
    return float(xs[best[0]]), float(xs[best[1] - 1])


def _reach_error(text: str, b: Binding, p, with_params: Sequence, curve: Curve) -> PluginMapError:
    """The reach refusal: ``text``, the part of the schema range the binding renders, and the fixes."""
    reach = _reachable_part(b, p, with_params, curve, b.table)
    part = (f"; of {b.source} it renders only [{reach[0]:.4g}, {reach[1]:.4g}] {p.unit}".rstrip()
            if reach is not None else f"; it renders no value of {b.source}")
    return PluginMapError(text + part + _reach_fix(b, reach, p.unit))


def check_reach(pm: PluginMap, where: str = "") -> None:
    """Refuse a map whose plugins cannot reach a schema parameter's whole range (or its declared ``range``).

    For each ``set`` binding, the schema parameter's range (or the binding's ``range``: its
    bounds and :data:`REACH_POINTS` points between them; for a conversion with ``with``
    parameters, every combination of their grids, at each of :data:`REACH_SAMPLE_RATES`)
    is converted to the plugin's display unit and must lie inside the plugin
    parameter's measured curve (or a measured table's range).

    Raises:
        PluginMapError: naming the schema parameter, its range, the plugin parameter, the range
            the plugin reaches (in its display unit and as the part of the schema range it
            renders) and the fixes: a ``convert``, a declared ``range`` on the binding (datagen
            then samples inside it), or another plugin.
    """
    import itertools

    proc = MAP_PROCESSORS[pm.processor]
    label = where or f"plugin map '{pm.name}'"
    for si, st in enumerate(pm.stages):
        spec = pm.plugins[st.plugin]
        for b in st.set:
            p = proc.param(b.source)
            lo0, hi0 = b.range if b.range is not None else (p.min, p.max)
            curve = cast(Curve, spec.curves[b.param])  # map_from_dict refuses a 'set' on a choice parameter
            spans = "its declared range" if b.range is not None else "spans"
            head = (f"{label} stages[{si}]: {pm.processor}.{b.source} {spans} [{lo0:g}, {hi0:g}] {p.unit}".rstrip()
                    + f", but plugin parameter '{b.param}' of {spec.identity.name}")
            withs = [proc.param(w) for w in b.with_]

            if b.convert is None:
                slack = RANGE_ROUNDOFF * (curve.hi - curve.lo)
                if lo0 < curve.lo - slack or hi0 > curve.hi + slack:
                    raise _reach_error(head + f" reaches only [{curve.lo:g}, {curve.hi:g}] {curve.unit}".rstrip(),
                                       b, p, withs, curve)
                continue
            conv = CONVERSIONS[b.convert]
            if conv.needs_table:
                table = cast(MeasuredTable, b.table)  # map_from_dict reads one for every needs_table convert
                lo, hi = table.reach
                tol = RANGE_ROUNDOFF * (hi - lo)
                if lo0 < lo - tol or hi0 > hi + tol:
                    raise _reach_error(head + f" reaches only [{lo:g}, {hi:g}] {table.unit} (its measured table)"
                                       .rstrip(), b, p, withs, curve)
            grids = [_reach_grid(p, lo0, hi0)] + [_reach_grid(proc.param(w)) for w in b.with_]
            for sr in REACH_SAMPLE_RATES:
                for combo in itertools.product(*grids):
                    extra = {"table": b.table, "where": head} if conv.needs_table else {}
                    d = float(conv.func(combo[0], *combo[1:], sample_rate=sr, **extra))
                    tol = RANGE_ROUNDOFF * (curve.hi - curve.lo)
                    if not (curve.lo - tol <= d <= curve.hi + tol):
                        with_txt = "".join(f", {w} = {c:g}" for w, c in zip(b.with_, combo[1:]))
                        raise _reach_error(
                            head + f" reaches only [{curve.lo:g}, {curve.hi:g}] {curve.unit}".rstrip()
                            + f": convert '{b.convert}' gives {d:g} for {b.source} = {combo[0]:g}{with_txt} at {sr} Hz",
                            b, p, withs, curve)
