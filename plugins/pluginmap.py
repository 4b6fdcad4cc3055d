"""Plugin maps: data files that tie schema parameters to one real plugin's parameters.

A map (``plugins/maps/NAME.json``, format ``mixbridge-plugin-map`` version 1)
holds, for one schema processor (``eq``, ``compressor``, ``reverb``, ``limiter``):

* ``plugins``: each plugin it uses, by key, with its **identity** (file name,
  format, plugin name, number of parameters, input/output channels) and the
  **measured value curves** of its parameters (normalised 0..1 <-> display value,
  by sweeping the normalised value and parsing the plugin's display text; see
  :func:`measure_curves` and ``mixbridge plugins calibrate``). Curves are never
  guessed.
* ``stages``: plugin instances in series. Each stage's ``set`` says which
  plugin parameter (by *name*, never by index) each schema parameter drives,
  with an optional named unit ``convert``\\ sion (:data:`CONVERSIONS`, each with
  its source); ``fixed`` holds settings that never change (display units, or the
  display text of a choice).
* ``handled_elsewhere``: schema parameters the plugin does not carry, with who
  applies them (e.g. ``reverb.return_db``: an exact gain applied by the host).
* ``deterministic`` (default true): false when the plugin's output differs
  between identical renders (the host reports a notice).
* ``fresh_instance_per_call`` (default false): true when the plugin keeps
  state across renders that re-preparing does not clear (the Dragonfly reverbs
  keep their tails); the host then loads new instances for every call.

Curves interpolate piecewise-linearly between the measured points, which is
monotone both ways; :func:`measure_curves` adds midpoints where a curve bends
until linear interpolation reproduces the display within
:data:`CURVE_REFINE_TOLERANCE` of its range. Values outside a plugin's range
raise (no silent clamping).

A map that does not match the installed plugin (name, parameter count, I/O, a
missing parameter name, or a display range that moved) is refused with
:class:`~mixbridge.errors.PluginMapError` (:func:`check_identity`).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np

from mixbridge.errors import ParamRangeError, PluginMapError, UnknownNameError
from mixbridge.schema import COMPRESSOR, EQ, LIMITER, REVERB, Processor

from .map_laws import CONVERSIONS, RANGE_ROUNDOFF, SIDECHAIN_SIGNALS, MeasuredTable

MAP_FORMAT = "mixbridge-plugin-map"
CALIBRATION_FORMAT = "mixbridge-plugin-calibration"
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

#: Default number of sweep points of a calibration (before refinement).
DEFAULT_POINTS = 101
#: Refinement: add the midpoint of two measured points when linear interpolation
#: misses the displayed value there by more than this fraction of the curve's range.
CURVE_REFINE_TOLERANCE = 1e-4
#: Most points a refined curve may have.
MAX_CURVE_POINTS = 2049
#: Display ranges at u=0 and u=1 must agree with the map's curve within this fraction
#: of the span, else the installed plugin is not the one the map was measured on.
IDENTITY_RANGE_TOLERANCE = 1e-3

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf", re.IGNORECASE)


def parse_display(text: str) -> float | None:
    """The first number in a plugin's display text (``"-12.5 dB"`` -> -12.5), or None."""
    m = _NUMBER.search(text or "")
    if not m:
        return None
    try:
        return float(m.group(0))
    except ValueError:  # pragma: no cover - the regex only matches floats
        return None


# --------------------------------------------------------------------------- parameter access
class ParamAccess(Protocol):
    """What calibration needs from a loaded plugin (see :mod:`.vst`)."""

    def param_names(self) -> list[str]: ...
    def param_label(self, index: int) -> str: ...
    def get_normalised(self, index: int) -> float: ...
    def set_normalised(self, index: int, value: float) -> None: ...
    def display_text(self, index: int) -> str: ...


# --------------------------------------------------------------------------- curves
@dataclass(frozen=True)
class Curve:
    """A measured numeric value curve: ``normalised`` [n] increasing 0..1, ``display`` [n].

    ``display`` is strictly monotone (increasing or decreasing), so the curve can
    be inverted.
    """

    param: str
    unit: str
    normalised: tuple[float, ...]
    display: tuple[float, ...]

    def __post_init__(self) -> None:
        u, d = np.asarray(self.normalised), np.asarray(self.display)
        if len(u) < 2 or len(u) != len(d):
            raise PluginMapError(f"curve '{self.param}': needs >= 2 points with as many display values as normalised")
        if not (np.all(np.diff(u) > 0) and u[0] >= 0 and u[-1] <= 1):
            raise PluginMapError(f"curve '{self.param}': normalised values must increase within [0, 1]")
        dd = np.diff(d)
        if not (np.all(dd > 0) or np.all(dd < 0)):
            raise PluginMapError(
                f"curve '{self.param}': display values are not strictly monotone, so the curve cannot be "
                "inverted; re-calibrate, or drive this parameter with a 'choices' table"
            )
        object.__setattr__(self, "_u", u.astype(np.float64))
        object.__setattr__(self, "_d", d.astype(np.float64))

    @property
    def lo(self) -> float:
        return float(min(self.display[0], self.display[-1]))

    @property
    def hi(self) -> float:
        return float(max(self.display[0], self.display[-1]))

    def to_display(self, normalised):
        """Display value(s) at normalised value(s) (float or float64 array)."""
        return np.interp(normalised, self._u, self._d)

    def to_normalised(self, display, where: str = ""):
        """Normalised value(s) giving display value(s) ``display``.

        Raises:
            ParamRangeError: a value outside the plugin's range (beyond
                :data:`RANGE_ROUNDOFF`); the message names both and the fix.
        """
        v = np.asarray(display, dtype=np.float64)
        span = self.hi - self.lo
        tol = RANGE_ROUNDOFF * span
        bad = ~np.isfinite(v) | (v < self.lo - tol) | (v > self.hi + tol)
        if np.any(bad):
            first = float(v.reshape(-1)[np.argmax(bad.reshape(-1))])
            label = f"{where}: " if where else ""
            raise ParamRangeError(
                f"{label}plugin parameter '{self.param}' = {first:g} {self.unit}".rstrip()
                + f" is outside the plugin's range [{self.lo:g}, {self.hi:g}] {self.unit}".rstrip()
                + "; choose a value the plugin can reach (or a map for another plugin)"
            )
        v = np.clip(v, self.lo, self.hi)  # round-off only (checked above)
        if self._d[0] < self._d[-1]:
            out = np.interp(v, self._d, self._u)
        else:
            out = np.interp(v, self._d[::-1], self._u[::-1])
        return float(out) if out.ndim == 0 else out

    def to_json(self) -> dict:
        return {"unit": self.unit, "normalised": list(self.normalised), "display": list(self.display)}


@dataclass(frozen=True)
class Choices:
    """A parameter whose display is text (or stepped): ``{display text: normalised value}``."""

    param: str
    choices: dict[str, float]

    def to_normalised(self, text: str | float, where: str = "") -> float:
        """Normalised value of a choice, by its display text or (numeric texts) its number.

        Raises:
            PluginMapError: a choice the plugin does not show; lists the choices.
        """
        if not isinstance(text, str):
            for t, u in self.choices.items():
                if parse_display(t) == float(text):
                    return float(u)
            text = repr(text)
        if text not in self.choices:
            raise PluginMapError(
                f"{where}: plugin parameter '{self.param}' has no choice {text!r}; choices: {', '.join(self.choices)}"
            )
        return float(self.choices[text])

    def to_json(self) -> dict:
        return {"choices": dict(self.choices)}


def _curve_from_json(param: str, raw: Mapping[str, Any], where: str) -> Curve | Choices:
    if not isinstance(raw, Mapping):
        raise PluginMapError(f"{where}: curve of '{param}' must be an object")
    if "choices" in raw:
        ch = raw["choices"]
        if not isinstance(ch, Mapping) or not ch:
            raise PluginMapError(f"{where}: 'choices' of '{param}' must be a non-empty object text -> normalised")
        return Choices(param, {str(k): float(v) for k, v in ch.items()})
    try:
        return Curve(param, str(raw.get("unit", "")), tuple(map(float, raw["normalised"])), tuple(map(float, raw["display"])))
    except (KeyError, TypeError, ValueError) as e:
        raise PluginMapError(f"{where}: curve of '{param}' needs 'normalised' and 'display' number lists ({e})") from None


# --------------------------------------------------------------------------- measurement
def _sweep(access: ParamAccess, index: int, u: float) -> str:
    access.set_normalised(index, u)
    return access.display_text(index)


def measure_parameter(access: ParamAccess, index: int, points: int = DEFAULT_POINTS) -> Curve | Choices | None:
    """Sweep one parameter and build its curve from the display text.

    Sweeps ``points`` evenly spaced normalised values, then refines where the
    curve bends (see :data:`CURVE_REFINE_TOLERANCE`). A parameter whose text is
    not numeric everywhere, or whose numbers are stepped, becomes a
    :class:`Choices` table (text -> normalised value in the middle of its run).
    Returns None for a parameter that shows one value only. The parameter's
    value is restored afterwards.
    """
    name = access.param_names()[index]
    label = access.param_label(index)
    original = access.get_normalised(index)
    try:
        us = list(np.linspace(0.0, 1.0, int(points)))
        texts = [_sweep(access, index, u) for u in us]
        values = [parse_display(t) for t in texts]
        numeric = all(v is not None and math.isfinite(v) for v in values)
        diffs = np.diff(np.asarray(values, dtype=np.float64)) if numeric else np.array([0.0])
        if numeric and (np.all(diffs > 0) or np.all(diffs < 0)):
            table = dict(zip(us, values))
            span = abs(values[-1] - values[0])
            for _ in range(12):  # refine where linear interpolation misses the display
                xs = sorted(table)
                added = 0
                for a, b in zip(xs, xs[1:]):
                    if len(table) >= MAX_CURVE_POINTS:
                        break
                    mid = 0.5 * (a + b)
                    v = parse_display(_sweep(access, index, mid))
                    if v is None:
                        continue
                    if abs(v - 0.5 * (table[a] + table[b])) > CURVE_REFINE_TOLERANCE * span:
                        table[mid] = v
                        added += 1
                if not added:
                    break
            xs = sorted(table)
            ys = [table[x] for x in xs]
            # keep strictly monotone points only (text rounding can tie neighbours)
            keep_x, keep_y = [xs[0]], [ys[0]]
            sign = 1.0 if ys[-1] > ys[0] else -1.0
            for x, y in zip(xs[1:], ys[1:]):
                if sign * (y - keep_y[-1]) > 0:
                    keep_x.append(x)
                    keep_y.append(y)
            return Curve(name, label, tuple(keep_x), tuple(keep_y))
        runs: dict[str, list[float]] = {}
        for u, t in zip(us, texts):
            runs.setdefault(t.strip(), []).append(u)
        if len(runs) < 2:
            return None
        return Choices(name, {t: round(float(np.median(v)), 6) for t, v in runs.items()})
    finally:
        access.set_normalised(index, original)


#: Parameters never swept: changing a program rewrites every other parameter.
PROGRAM_PARAMETERS = ("Current Program", "Program")


def measure_curves(access: ParamAccess, points: int = DEFAULT_POINTS) -> dict[str, Curve | Choices]:
    """Measure every parameter of a loaded plugin: ``{parameter name: Curve | Choices}``.

    Skipped: program selectors (:data:`PROGRAM_PARAMETERS`) and parameters the
    plugin marks as not automatable (DPF's VST3 "Buffer Size"/"Sample Rate",
    which the host owns; sweeping them to 0 trips the plugin's assertions).
    """
    out: dict[str, Curve | Choices] = {}
    for i, name in enumerate(access.param_names()):
        if name in PROGRAM_PARAMETERS or not getattr(access, "is_automatable", lambda _i: True)(i):
            continue
        c = measure_parameter(access, i, points)
        if c is not None:
            out[name] = c
    return out


# --------------------------------------------------------------------------- map data model
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
        curve = self.plugins[self.stages[og.stage].plugin].curves[og.param]
        return og.at(curve.to_display(stage_values[og.stage][og.param]))

    def stage_values(self, stage: Stage, params: Mapping[str, Any], sample_rate: int, label: str = "") -> dict[str, Any]:
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

    @property
    def sources(self) -> set[str]:
        return {b.source for st in self.stages for b in st.set}


def _require(cond: bool, msg: str) -> None:
    if not cond:
        raise PluginMapError(msg)


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
    _require(proc_name in MAP_PROCESSORS, f"{where}: 'processor' {proc_name!r} must be one of {', '.join(MAP_PROCESSORS)}")
    proc = MAP_PROCESSORS[proc_name]
    raw_plugins = data.get("plugins")
    _require(isinstance(raw_plugins, Mapping) and raw_plugins, f"{where}: needs a non-empty 'plugins' object")
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
        curves = {p: _curve_from_json(p, c, f"{where} plugins['{key}']") for p, c in (rp.get("curves") or {}).items()}
        plugins[key] = PluginSpec(str(key), ident, curves, dict(rp.get("calibration") or {}))
    stages: list[Stage] = []
    raw_stages = data.get("stages")
    _require(isinstance(raw_stages, list) and raw_stages, f"{where}: needs a non-empty 'stages' list")
    for i, rs in enumerate(raw_stages):
        sw = f"{where} stages[{i}]"
        _require(isinstance(rs, Mapping) and rs.get("plugin") in plugins, f"{sw}: 'plugin' must name a key of 'plugins'")
        spec = plugins[rs["plugin"]]
        binds: list[Binding] = []
        for pname, rb in (rs.get("set") or {}).items():
            _require(isinstance(rb, Mapping) and "from" in rb, f"{sw}: set['{pname}'] needs 'from' (a schema parameter)")
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
                _require(w in proc.param_names, f"{sw}: set['{pname}'].with names '{w}', not a parameter of '{proc.name}'")
            _require(pname in spec.curves, f"{sw}: plugin parameter '{pname}' has no measured curve in plugins['{spec.key}']")
            _require(isinstance(spec.curves[pname], Curve), f"{sw}: '{pname}' is a choice parameter; put it in 'fixed'")
            table = None
            if conv is not None and CONVERSIONS[conv].needs_table:
                rt = rb.get("table")
                _require(isinstance(rt, Mapping), f"{sw}: convert '{conv}' needs a measured 'table' (display, measured)")
                try:
                    table = MeasuredTable(tuple(map(float, rt["display"])), tuple(map(float, rt["measured"])),
                                          str(rt.get("unit", "")), str(rt.get("method", "")))
                except (KeyError, TypeError, ValueError) as e:
                    raise PluginMapError(f"{sw}: set['{pname}'].table needs 'display' and 'measured' number lists ({e})") from None
                except PluginMapError as e:
                    raise PluginMapError(f"{sw}: set['{pname}'].table: {e}") from None
            binds.append(Binding(pname, src, conv, with_, table))
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
                     f"{sw}: sidechain 'input' must be one of the plugin's {spec.identity.inputs} input channels (0-based)")
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
            raise PluginMapError(f"{where}: 'output_gain' needs stage, param, display and gain_db lists ({e})") from None
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
    for st in pm.stages:
        pm.stage_values(st, proc.defaults(), 48000)
    return pm


#: Sample rates at which :func:`check_reach` evaluates conversions that depend on the rate.
REACH_SAMPLE_RATES = (44100, 48000)
#: Interior points per schema range :func:`check_reach` evaluates besides the bounds.
REACH_POINTS = 9


def _reach_grid(p) -> np.ndarray:
    if p.scale == "log" and p.min > 0:
        return np.geomspace(p.min, p.max, REACH_POINTS)
    return np.linspace(p.min, p.max, REACH_POINTS)


def check_reach(pm: PluginMap, where: str = "") -> None:
    """Refuse a map whose plugins cannot reach a schema parameter's whole range.

    For each ``set`` binding, the schema parameter's range (its bounds and
    :data:`REACH_POINTS` points between them; for a conversion with ``with``
    parameters, every combination of their grids, at each of :data:`REACH_SAMPLE_RATES`)
    is converted to the plugin's display unit and must lie inside the plugin
    parameter's measured curve (or a measured table's range).

    Raises:
        PluginMapError: naming the schema parameter, its range, the plugin parameter and
            the range the plugin reaches (in the schema's unit where it is known).
    """
    import itertools

    proc = MAP_PROCESSORS[pm.processor]
    label = where or f"plugin map '{pm.name}'"
    for si, st in enumerate(pm.stages):
        spec = pm.plugins[st.plugin]
        for b in st.set:
            p = proc.param(b.source)
            curve = spec.curves[b.param]
            head = (f"{label} stages[{si}]: {pm.processor}.{b.source} spans [{p.min:g}, {p.max:g}] {p.unit}".rstrip()
                    + f", but plugin parameter '{b.param}' of {spec.identity.name}")
            if b.convert is None:
                if p.min < curve.lo - RANGE_ROUNDOFF * (curve.hi - curve.lo) or p.max > curve.hi + RANGE_ROUNDOFF * (curve.hi - curve.lo):
                    raise PluginMapError(
                        f"{head} reaches only [{curve.lo:g}, {curve.hi:g}] {curve.unit}".rstrip()
                        + "; re-calibrate on a plugin build with the full range, or map another plugin"
                    )
                continue
            conv = CONVERSIONS[b.convert]
            if conv.needs_table:
                lo, hi = b.table.reach
                tol = RANGE_ROUNDOFF * (hi - lo)
                if p.min < lo - tol or p.max > hi + tol:
                    raise PluginMapError(
                        f"{head} reaches only [{lo:g}, {hi:g}] {b.table.unit} (its measured table)".rstrip()
                        + "; measure the plugin over a wider setting range, or map another plugin"
                    )
            grids = [_reach_grid(p)] + [_reach_grid(proc.param(w)) for w in b.with_]
            for sr in REACH_SAMPLE_RATES:
                for combo in itertools.product(*grids):
                    extra = {"table": b.table, "where": head} if conv.needs_table else {}
                    d = float(conv.func(combo[0], *combo[1:], sample_rate=sr, **extra))
                    tol = RANGE_ROUNDOFF * (curve.hi - curve.lo)
                    if not (curve.lo - tol <= d <= curve.hi + tol):
                        with_txt = "".join(f", {w} = {c:g}" for w, c in zip(b.with_, combo[1:]))
                        raise PluginMapError(
                            f"{head} reaches only [{curve.lo:g}, {curve.hi:g}] {curve.unit}".rstrip()
                            + f": convert '{b.convert}' gives {d:g} for {b.source} = {combo[0]:g}{with_txt} "
                            f"at {sr} Hz; narrow the schema use or map another plugin"
                        )


def builtin_map_names() -> list[str]:
    """Names of the maps shipped in ``mixbridge.plugins.maps``."""
    root = resources.files("mixbridge.plugins.maps")
    return sorted(p.name[: -len(".json")] for p in root.iterdir() if p.name.endswith(".json"))


def read_map_json(name_or_path: str | Path, *, folder: str = "", what: str = "plugin map",
                  error: type[Exception] = PluginMapError, unknown: type[Exception] = UnknownNameError,
                  shipped: Callable[[], list[str]] | None = None) -> tuple[dict, str, Path]:
    """Read a map's JSON by shipped name (``mixbridge/plugins/maps/[folder/]NAME.json``) or by path.

    The one reader of every map file, the host's plugin maps and the bridge's DAW maps alike.

    Returns:
        ``(data, name, path)``.

    Raises:
        ``unknown``: a name that is not shipped (the message lists ``shipped()``).
        ``error``: a file that cannot be read or is not valid JSON (line and column named).
    """
    p = Path(name_or_path)
    if p.suffix == ".json" or p.exists():
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise error(f"cannot read {what} {p}: {e.strerror or e}") from None
        name = p.stem
    else:
        name = str(name_or_path)
        root = resources.files("mixbridge.plugins.maps")
        res = (root.joinpath(folder) if folder else root).joinpath(f"{name}.json")
        if not res.is_file():
            known = ", ".join(shipped()) if shipped else ""
            raise unknown(f"unknown {what} '{name}'; shipped: {known}")
        text = res.read_text(encoding="utf-8")
        p = Path(str(res))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{what} {p}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    return data, name, p


def load_map(name_or_path: str | Path | PluginMap) -> PluginMap:
    """Load a map by shipped name (``"zameq2_x2"``) or by JSON path.

    Raises:
        UnknownNameError: an unknown name; lists the shipped maps.
        PluginMapError: a file that is not valid JSON or fails validation.
    """
    if isinstance(name_or_path, PluginMap):
        return name_or_path
    data, name, p = read_map_json(name_or_path, shipped=builtin_map_names)
    return map_from_dict(data, name, p)


def check_identity(spec: PluginSpec, loaded, where: str = "") -> None:
    """Refuse a loaded plugin that is not the one ``spec`` was measured on.

    ``loaded`` is a :class:`~mixbridge.plugins.vst.LoadedPlugin`. Compares the
    plugin name, parameter count, input/output channels, that every parameter
    with a curve exists by name, and that each numeric curve's display at u=0
    and u=1 still matches (within :data:`IDENTITY_RANGE_TOLERANCE` of the span).

    Raises:
        PluginMapError: naming the field, both values and the fix (re-calibrate).
    """
    ident = spec.identity
    label = where or f"plugin map entry '{spec.key}'"
    fix = f"re-run `mixbridge plugins calibrate {loaded.path}` and update the map"
    got = {"name": loaded.name, "num_params": len(loaded.param_names()), "inputs": loaded.inputs, "outputs": loaded.outputs}
    for fld, val in got.items():
        want = getattr(ident, fld)
        if want != val:
            raise PluginMapError(
                f"{label}: the map was measured on {ident.name} with {fld} = {want}, but {loaded.path} has {fld} = {val}; {fix}"
            )
    names = loaded.param_names()
    for pname, curve in spec.curves.items():
        if pname not in names:
            raise PluginMapError(f"{label}: {loaded.path} has no parameter named '{pname}'; {fix}")
        if isinstance(curve, Curve):
            i = names.index(pname)
            original = loaded.get_normalised(i)
            try:
                ends = []
                for u in (curve.normalised[0], curve.normalised[-1]):
                    loaded.set_normalised(i, u)
                    ends.append(parse_display(loaded.display_text(i)))
            finally:
                loaded.set_normalised(i, original)
            span = abs(curve.display[-1] - curve.display[0])
            for want, have in zip((curve.display[0], curve.display[-1]), ends):
                if have is None or abs(have - want) > IDENTITY_RANGE_TOLERANCE * span:
                    raise PluginMapError(
                        f"{label}: '{pname}' of {loaded.path} shows {have} where the map measured {want:g} "
                        f"{curve.unit}; the plugin's range changed; {fix}"
                    )


def calibration_dict(loaded, curves: Mapping[str, Curve | Choices], points: int) -> dict:
    """The JSON document ``plugins calibrate`` writes: identity plus curves."""
    ident = Identity(Path(loaded.path).name, loaded.format, loaded.name, len(loaded.param_names()), loaded.inputs, loaded.outputs)
    return {
        "format": CALIBRATION_FORMAT,
        "version": MAP_VERSION,
        "identity": ident.to_json(),
        "calibration": {
            "method": "sweep normalised value, parse display text; refine midpoints where linear interpolation "
                      f"misses by > {CURVE_REFINE_TOLERANCE:g} of the range",
            "points": int(points),
            "sample_rate": int(loaded.sample_rate),
        },
        "curves": {k: c.to_json() for k, c in curves.items()},
    }


def merge_calibration(existing: Mapping[str, Any], calibration: Mapping[str, Any]) -> tuple[dict, list[str]]:
    """Update a map's plugin entries whose identity name matches ``calibration``'s.

    Returns ``(updated map dict, keys updated)``; keeps stages and notes.
    """
    out = json.loads(json.dumps(existing))
    keys = []
    for key, rp in (out.get("plugins") or {}).items():
        if (rp.get("identity") or {}).get("name") == calibration["identity"]["name"]:
            rp["identity"] = dict(calibration["identity"])
            rp["calibration"] = dict(calibration["calibration"])
            rp["curves"] = dict(calibration["curves"])
            keys.append(key)
    return out, keys
