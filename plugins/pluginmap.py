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
DEFAULT_MAPS: dict[str, str] = {
    "eq": "zameq2_x2",
    "compressor": "zamcomp",
    "reverb": "dragonfly_plate",
    "limiter": "zamaximx2",
}

#: Default number of sweep points of a calibration (before refinement).
DEFAULT_POINTS = 101
#: Refinement: add the midpoint of two measured points when linear interpolation
#: misses the displayed value there by more than this fraction of the curve's range.
CURVE_REFINE_TOLERANCE = 1e-4
#: Most points a refined curve may have.
MAX_CURVE_POINTS = 2049
#: A value may lie this fraction of the curve's span outside it and still be taken as
#: the end point (float round-off of conversions); beyond it the value is refused.
RANGE_ROUNDOFF = 1e-6
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


# --------------------------------------------------------------------------- unit conversions
def _solve_zam_bandwidth(qq: np.ndarray) -> np.ndarray:
    """Invert ZamEQ2's ``qq = 2**(1/bw) / (2**bw - 1)`` (decreasing in bw) by bisection."""
    lo = np.full_like(qq, 1e-3)
    hi = np.full_like(qq, 50.0)
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        f = np.power(2.0, 1.0 / mid) / (np.power(2.0, mid) - 1.0)
        too_narrow = f > qq  # bw too small -> its qq too large
        lo = np.where(too_narrow, mid, lo)
        hi = np.where(too_narrow, hi, mid)
    return 0.5 * (lo + hi)


def zameq2_bandwidth_from_rbj_q(q, freq_hz, *, sample_rate: int):
    """ZamEQ2 "Bandwidth" (its display value) that gives an RBJ peaking band of quality ``q`` at ``freq_hz``.

    Measured, then explained by the plugin's source (zam-plugins 4.x
    ``ZamEQ2Plugin.cpp``): the peak is Orfanidis's digital parametric design
    (J. Audio Eng. Soc. 45(6), 1997) with the band edges at the mid (dB) gain and
    the digital bandwidth ``Dw = (freq/sample_rate) / qq`` radians, where
    ``qq = 2**(1/bw) / (2**bw - 1)`` from the Bandwidth display ``bw``. (The
    analog-octave relation ``bw = 2/ln2 * asinh(1/(2Q))`` of the RBJ cookbook
    does not hold for this plugin: measured errors were 6-12 dB.)

    The RBJ cookbook band (R. Bristow-Johnson, "Audio EQ Cookbook") has its
    mid-gain edges at the bilinear images of the analog edges
    ``W1*W2 = W0**2, W2 - W1 = W0/q`` with ``W0 = tan(pi*freq/sample_rate)``;
    this sets ``Dw`` to that digital width. Measured agreement with RBJ: see
    ``docs/plugins.md``.

    Args:
        q: RBJ quality factor(s), > 0.
        freq_hz: band centre(s) in Hz, below Nyquist.
        sample_rate: in Hz.

    Returns:
        Bandwidth display value(s) (float or float64 array).
    """
    q = np.asarray(q, dtype=np.float64)
    f = np.asarray(freq_hz, dtype=np.float64)
    w0 = np.tan(np.pi * f / float(sample_rate))
    d = w0 / q
    w2 = 0.5 * (d + np.sqrt(d * d + 4.0 * w0 * w0))
    w1 = w0 * w0 / w2
    dw = 2.0 * (np.arctan(w2) - np.arctan(w1))
    qq = (f / float(sample_rate)) / dw
    bw = _solve_zam_bandwidth(np.atleast_1d(qq))
    return float(bw[0]) if bw.size == 1 and np.ndim(q) == 0 and np.ndim(f) == 0 else bw.reshape(np.broadcast(q, f).shape)


@dataclass(frozen=True)
class Conversion:
    """A named unit conversion: ``func(value, *with_values, sample_rate=...)`` -> display value."""

    name: str
    func: Callable[..., Any]
    n_with: int
    source: str


CONVERSIONS: dict[str, Conversion] = {
    "zameq2_bandwidth_from_rbj_q": Conversion(
        "zameq2_bandwidth_from_rbj_q",
        zameq2_bandwidth_from_rbj_q,
        1,
        "RBJ Audio EQ Cookbook band edges; Orfanidis 1997 digital parametric EQ as coded in zam-plugins ZamEQ2",
    ),
}


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


@dataclass(frozen=True)
class Stage:
    """One plugin instance of a map's series chain."""

    plugin: str
    set: tuple[Binding, ...]
    fixed: dict[str, float | str]


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

    def stage_values(self, stage: Stage, params: Mapping[str, Any], sample_rate: int) -> dict[str, Any]:
        """Normalised values of one stage's plugin parameters.

        Args:
            stage: one of :attr:`stages`.
            params: real-unit schema values (floats, or float64 arrays of per-sample
                automation of equal length).
            sample_rate: in Hz (for conversions that need it).

        Returns:
            ``{plugin parameter name: normalised float or float64 array}``
            covering the stage's ``fixed`` and ``set`` parameters.

        Raises:
            ParamRangeError: a value the plugin cannot reach.
        """
        spec = self.plugins[stage.plugin]
        where = f"map '{self.name}' ({spec.identity.name})"
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
                v = conv.func(v, *[params[w] for w in b.with_], sample_rate=sample_rate)
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
            binds.append(Binding(pname, src, conv, with_))
        fixed: dict[str, float | str] = {}
        for pname, val in (rs.get("fixed") or {}).items():
            _require(pname in spec.curves, f"{sw}: fixed '{pname}' has no measured curve in plugins['{spec.key}']")
            _require(pname not in {b.param for b in binds}, f"{sw}: '{pname}' is both set and fixed")
            fixed[pname] = val if isinstance(spec.curves[pname], Choices) and isinstance(val, str) else float(val)
        stages.append(Stage(spec.key, tuple(binds), fixed))
    handled = {str(k): str(v) for k, v in (data.get("handled_elsewhere") or {}).items()}
    for k in handled:
        _require(k in proc.param_names, f"{where}: handled_elsewhere names '{k}', not a parameter of '{proc.name}'")
    pm = PluginMap(str(data.get("name") or name), proc.name, plugins, tuple(stages), handled,
                   bool(data.get("deterministic", True)), bool(data.get("fresh_instance_per_call", False)),
                   str(data.get("notes", "")), path)
    missing = [p for p in proc.param_names if p not in pm.sources and p not in handled]
    _require(
        not missing,
        f"{where}: schema parameters {', '.join(missing)} of '{proc.name}' are neither driven by a stage "
        "nor listed in 'handled_elsewhere'; map them or say who applies them",
    )
    both = [p for p in handled if p in pm.sources]
    _require(not both, f"{where}: {', '.join(both)} are both driven and 'handled_elsewhere'")
    # fixed/set values must be reachable: evaluate once at the schema defaults
    for st in pm.stages:
        pm.stage_values(st, proc.defaults(), 48000)
    return pm


def builtin_map_names() -> list[str]:
    """Names of the maps shipped in ``mixbridge.plugins.maps``."""
    root = resources.files("mixbridge.plugins.maps")
    return sorted(p.name[: -len(".json")] for p in root.iterdir() if p.name.endswith(".json"))


def load_map(name_or_path: str | Path | PluginMap) -> PluginMap:
    """Load a map by shipped name (``"zameq2_x2"``) or by JSON path.

    Raises:
        UnknownNameError: an unknown name; lists the shipped maps.
        PluginMapError: a file that is not valid JSON or fails validation.
    """
    if isinstance(name_or_path, PluginMap):
        return name_or_path
    p = Path(name_or_path)
    if p.suffix == ".json" or p.exists():
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise PluginMapError(f"cannot read plugin map {p}: {e.strerror or e}") from None
        name = p.stem
    else:
        name = str(name_or_path)
        res = resources.files("mixbridge.plugins.maps").joinpath(f"{name}.json")
        if not res.is_file():
            raise UnknownNameError(f"unknown plugin map '{name}'; shipped maps: {', '.join(builtin_map_names())}")
        text = res.read_text(encoding="utf-8")
        p = Path(str(res))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise PluginMapError(f"plugin map {p}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
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
