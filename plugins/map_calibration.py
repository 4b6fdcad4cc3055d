"""Calibration: measure a loaded plugin's value curves by sweeping normalised values and parsing the display.

:func:`measure_parameter` sweeps one parameter (:data:`DEFAULT_POINTS` evenly spaced normalised
values, then midpoints where the curve bends until linear interpolation reproduces the display
within :data:`CURVE_REFINE_TOLERANCE` of its range) into a :class:`~.map_curves.Curve` or a
:class:`~.map_curves.Choices` table. Continuous or stepped is decided by probing between the
sweep points (:func:`probe_between_steps`), never by equal text alone: a knob whose coarse
display ties at its low end (LSP's attack and release, ``0.000`` ms) stays a curve, a numeric
enumeration stays a choice. :func:`measure_curves` does every parameter. Curves are
never guessed. :func:`calibration_dict` is the document ``mixbridge plugins calibrate`` writes
and :func:`merge_calibration` updates an existing map with it; :func:`map_document` turns it into a
whole map from bindings given on the command line (``plugins calibrate --processor``).
:func:`measure_render_state` renders through such a map to find whether its plugin carries state
from one render to the next (LSP's compressor keeps its gain reduction), which the map must then
say (``fresh_instance_per_call``, :func:`with_render_state`).
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np

from mixbridge.errors import PluginMapError

from .map_curves import Choices, Curve, parse_display
from .pluginmap import MAP_FORMAT, MAP_VERSION, Identity

CALIBRATION_FORMAT = "mixbridge-plugin-calibration"
#: Default number of sweep points of a calibration (before refinement).
DEFAULT_POINTS = 101
#: Refinement: add the midpoint of two measured points when linear interpolation
#: misses the displayed value there by more than this fraction of the curve's range.
CURVE_REFINE_TOLERANCE = 1e-4
#: Most points a refined curve may have.
MAX_CURVE_POINTS = 2049


class ParamAccess(Protocol):
    """What calibration needs from a loaded plugin (:class:`~.vst_plugin.LoadedPlugin` implements it)."""

    def param_names(self) -> list[str]:
        """Parameter names, by index."""
        ...

    def param_label(self, index: int) -> str:
        """The unit label of parameter ``index`` ("dB", "ms"; may be empty)."""
        ...

    def get_normalised(self, index: int) -> float:
        """Parameter ``index``'s normalised value, 0..1."""
        ...

    def set_normalised(self, index: int, value: float) -> None:
        """Set parameter ``index`` to normalised ``value`` (0..1)."""
        ...

    def display_text(self, index: int) -> str:
        """The plugin's display text of parameter ``index`` at its current value ("-12.5 dB")."""
        ...


def _sweep(access: ParamAccess, index: int, u: float) -> str:
    access.set_normalised(index, u)
    return access.display_text(index)


def _finite_span(values: list[float | None]) -> tuple[int, int] | None:
    """``(first, stop)``: the sweep points between the ends' non-finite runs, or None.

    A gain knob shows ``-inf`` at u = 0 (LSP's "Input gain" reads ``-inf .. 60.00``): such runs
    of +-inf at either end are left out of the curve, which then starts at the first finite
    point. None when a value is not a number, or a non-finite value lies inside the sweep.
    """
    if any(v is None or math.isnan(v) for v in values):
        return None
    first, stop = 0, len(values)
    while first < stop and not math.isfinite(values[first]):  # type: ignore[arg-type]
        first += 1
    while stop > first and not math.isfinite(values[stop - 1]):  # type: ignore[arg-type]
        stop -= 1
    if stop - first < 2 or not all(math.isfinite(v) for v in values[first:stop]):  # type: ignore[arg-type]
        return None
    return first, stop


def probe_between_steps(access: ParamAccess, index: int, us: list[float],
                        values: list[float]) -> tuple[bool, dict[float, float]]:
    """Tell a continuous knob whose display ties from a stepped parameter, by probing between sweep points.

    Sets the midpoint of every pair of neighbouring sweep points ``us`` (whose parsed display
    values are ``values``) and reads its display. A stepped parameter (an enumeration with
    numeric texts, a toggle shown as ``0.000000``/``1.000000``) jumps from one step to the next,
    so every midpoint shows a value the sweep already showed; a continuous knob whose text is
    coarse (LSP's attack reads ``0.000`` over the first 9 % of its travel, in 1 us steps) shows
    new values between its sweep points wherever its display is finer than the sweep. (A stepped
    parameter with more steps than the sweep has points shows new steps there and becomes a curve
    through its steps; a knob whose display shows no value between its steps anywhere stays a
    choice unless calibration is told it is continuous, ``plugins calibrate --continuous``.)

    Returns:
        ``(continuous, {midpoint u: display value})`` (the probes, for the curve to keep).
    """
    seen = set(values)
    probes: dict[float, float] = {}
    new = 0
    for a, b in zip(us, us[1:]):
        mid = 0.5 * (a + b)
        v = parse_display(_sweep(access, index, mid))
        if v is None or not math.isfinite(v):
            continue
        probes[mid] = v
        new += v not in seen
    return new > 0, probes


#: The audio probe: a parameter moves the sound between two settings that display alike when their
#: renders differ by more than this many times the difference between two renders of one setting
#: (a plugin's state carried from render to render) ...
AUDIO_PROBE_FACTOR = 10.0
#: ... and by more than this fraction of the probe signal's peak (float32 round-off of the path).
AUDIO_PROBE_ABS = 1e-5
#: The probe signal: white noise in level steps (dBFS peak), each this long, then as long a silence.
AUDIO_PROBE_LEVELS_DBFS = (-40.0, -20.0, -6.0)
AUDIO_PROBE_STEP_S = 0.1


def probe_signal(channels: int, sample_rate: int) -> np.ndarray:
    """float32 ``[channels, samples]``: seeded white noise at :data:`AUDIO_PROBE_LEVELS_DBFS`, then silence.

    Level steps move a dynamics processor's detector across its range, noise excites every band
    of an EQ, and the closing silence keeps a reverb's or delay's tail.
    """
    n = int(round(AUDIO_PROBE_STEP_S * sample_rate))
    rng = np.random.default_rng(0)
    parts = [10 ** (lvl / 20.0) * rng.uniform(-1.0, 1.0, (channels, n)) for lvl in AUDIO_PROBE_LEVELS_DBFS]
    parts.append(np.zeros((channels, n)))
    return np.concatenate(parts, axis=1).astype(np.float32)


def plugin_renderer(loaded) -> Callable[[], np.ndarray] | None:
    """A function rendering :func:`probe_signal` through ``loaded`` at its current settings, or None.

    ``loaded`` is a :class:`~.vst_plugin.LoadedPlugin` from ``open_plugin``: a VST2 renders in its
    own DawDreamer engine (a playback processor feeding the plugin), a VST3 through pedalboard
    (``reset=True``). None for a plugin without audio inputs (an instrument) or whose render fails
    (calibration then decides from the display alone).
    """
    if int(getattr(loaded, "inputs", 0) or 0) < 1:
        return None
    x = probe_signal(int(loaded.inputs), int(loaded.sample_rate))
    seconds = x.shape[1] / float(loaded.sample_rate)
    try:
        if loaded.format == "vst3":
            def render_vst3() -> np.ndarray:
                return np.asarray(loaded.processor.process(x, float(loaded.sample_rate), reset=True), np.float32)

            render_vst3()
            return render_vst3
        pb = loaded.engine.make_playback_processor("calibration_probe", x)
        loaded.processor.record = True
        loaded.engine.load_graph([(pb, []), (loaded.processor, ["calibration_probe"])])

        def render_vst2() -> np.ndarray:
            loaded.engine.render(seconds)
            return np.asarray(loaded.processor.get_audio(), np.float32)

        render_vst2()
        return render_vst2
    except Exception:  # a plugin that cannot render here: the display decides alone
        return None


def audio_moves_between(access: ParamAccess, index: int, render: Callable[[], np.ndarray], u_a: float,
                        u_b: float) -> bool:
    """Whether the rendered audio changes between normalised ``u_a`` and ``u_b`` (which display alike).

    Renders three times at ``u_a`` and twice at ``u_b`` and compares the last render of each: the
    change must exceed :data:`AUDIO_PROBE_FACTOR` times the difference between the last two renders
    at ``u_a`` (state a plugin carries from one render to the next) and :data:`AUDIO_PROBE_ABS` of the
    output's peak. A stepped parameter holds one value over a step, so its audio cannot change there.
    """
    access.set_normalised(index, u_a)
    a = [render() for _ in range(3)]
    access.set_normalised(index, u_b)
    b = [render() for _ in range(2)]
    if any(y.shape != a[-1].shape or not np.all(np.isfinite(y)) for y in a + b):
        return False
    floor = float(np.max(np.abs(a[2] - a[1]))) if a[1].size else 0.0
    change = float(np.max(np.abs(b[1] - a[2]))) if a[2].size else 0.0
    peak = max(float(np.max(np.abs(a[2]))) if a[2].size else 0.0, 1e-12)
    return change > AUDIO_PROBE_FACTOR * floor and change > AUDIO_PROBE_ABS * peak


def _widest_tie(us: list[float], values: list[float]) -> tuple[float, float] | None:
    """``(u_first, u_last)`` of the longest run of neighbouring sweep points showing the same value."""
    best, start = None, 0
    for k in range(1, len(values) + 1):
        if k == len(values) or values[k] != values[start]:
            if k - 1 > start and (best is None or k - 1 - start > best[1] - best[0]):
                best = (start, k - 1)
            start = k
    return (us[best[0]], us[best[1]]) if best else None


def _collapse_ties(xs: list[float], ys: list[float]) -> tuple[list[float], list[float]]:
    """One point per run of equal display values: a strictly monotone curve from a display that rounds.

    A run at either end of the curve keeps its end point (the plugin's range end is shown
    there); an interior run keeps the mean of its normalised values, where a display rounded
    to the nearest step shows the step's value exactly (on a locally linear knob).
    """
    runs: list[tuple[list[float], float]] = []
    for x, y in zip(xs, ys):
        if runs and runs[-1][1] == y:
            runs[-1][0].append(x)
        else:
            runs.append(([x], y))
    out_x, out_y = [], []
    for k, (rx, y) in enumerate(runs):
        x = rx[0] if k == 0 else rx[-1] if k == len(runs) - 1 else float(np.mean(rx))
        out_x.append(round(x, 9))
        out_y.append(y)
    return out_x, out_y


def measure_parameter(access: ParamAccess, index: int, points: int = DEFAULT_POINTS, *,
                      continuous: bool = False, render: Callable[[], np.ndarray] | None = None
                      ) -> Curve | Choices | None:
    """Sweep one parameter and build its curve from the display text.

    Sweeps ``points`` evenly spaced normalised values. A parameter whose display is numeric
    and monotone becomes a :class:`Curve`, refined where it bends (see
    :data:`CURVE_REFINE_TOLERANCE`); +-inf runs at the ends (a gain knob's ``-inf`` at 0) are
    left out of it. Where neighbouring sweep points show the same number (a display that
    rounds, or a stepped parameter), :func:`probe_between_steps` decides: new values between
    the sweep points mean a continuous knob (a curve; each run of equal text becomes one point,
    :func:`_collapse_ties`). Where no value shows between them, ``render`` (a function rendering
    a probe signal at the current settings, :func:`plugin_renderer`) decides: audio that changes
    between the two ends of the widest run of equal text means a continuous knob
    (:func:`audio_moves_between`), unchanged audio a stepped one. A parameter whose text is not numeric, not
    monotone, or stepped becomes a :class:`Choices` table (text -> normalised value in the middle
    of its run). Returns None for a parameter that shows one value only. The parameter's value
    is restored afterwards.

    ``continuous``: the caller knows the knob is continuous (``plugins calibrate --continuous``),
    for a display too coarse to show values between its steps anywhere (a 0..20 knob shown as
    integers): a numeric, monotone display then becomes a curve without the probe's evidence.
    """
    name = access.param_names()[index]
    label = access.param_label(index)
    original = access.get_normalised(index)
    try:
        us = list(np.linspace(0.0, 1.0, int(points)))
        texts = [_sweep(access, index, u) for u in us]
        values = [parse_display(t) for t in texts]
        span_idx = _finite_span(values)
        curve = None
        if span_idx is not None:
            first, stop = span_idx
            cu = us[first:stop]
            cv = [float(v) for v in values[first:stop]]  # type: ignore[arg-type]  # finite: checked
            diffs = np.diff(np.asarray(cv, dtype=np.float64))
            if np.all(diffs >= 0) or np.all(diffs <= 0):
                table = dict(zip(cu, cv))
                strict = bool(np.all(diffs != 0))
                if not strict and np.any(diffs != 0):
                    between, probes = probe_between_steps(access, index, cu, cv)
                    table.update(probes)
                    tie = _widest_tie(cu, cv) if not (between or continuous) and render is not None else None
                    heard = tie is not None and audio_moves_between(access, index, cast(Callable, render), *tie)
                    strict = between or continuous or heard
                if strict:
                    curve = _refined_curve(access, index, name, label, table)
        if curve is not None:
            return curve
        runs: dict[str, list[float]] = {}
        for u, t in zip(us, texts):
            runs.setdefault(t.strip(), []).append(u)
        if len(runs) < 2:
            return None
        return Choices(name, {t: round(float(np.median(v)), 6) for t, v in runs.items()})
    finally:
        access.set_normalised(index, original)


def _refined_curve(access: ParamAccess, index: int, name: str, label: str, table: dict[float, float]) -> Curve:
    """The curve through ``table`` ({u: display}), refined where linear interpolation misses the display."""
    lo_u, hi_u = min(table), max(table)
    span = abs(table[hi_u] - table[lo_u])
    for _ in range(12):  # refine where linear interpolation misses the display
        xs = sorted(table)
        added = 0
        for a, b in zip(xs, xs[1:]):
            if len(table) >= MAX_CURVE_POINTS:
                break
            mid = 0.5 * (a + b)
            v = parse_display(_sweep(access, index, mid))
            if v is None or not math.isfinite(v):
                continue
            if abs(v - 0.5 * (table[a] + table[b])) > CURVE_REFINE_TOLERANCE * span:
                table[mid] = v
                added += 1
        if not added:
            break
    xs = sorted(table)
    ys = [table[x] for x in xs]
    sign = 1.0 if ys[-1] > ys[0] else -1.0
    # a probe that reads against the trend (text rounding at a step's edge) is dropped
    keep_x, keep_y = [xs[0]], [ys[0]]
    for x, y in zip(xs[1:], ys[1:]):
        if sign * (y - keep_y[-1]) >= 0:
            keep_x.append(x)
            keep_y.append(y)
    cx, cy = _collapse_ties(keep_x, keep_y)
    return Curve(name, label, tuple(cx), tuple(cy))


#: Parameters never swept: changing a program rewrites every other parameter.
PROGRAM_PARAMETERS = ("Current Program", "Program")


def measure_curves(access: ParamAccess, points: int = DEFAULT_POINTS, continuous: Sequence[str] = (),
                   render: Callable[[], np.ndarray] | None = None) -> dict[str, Curve | Choices]:
    """Measure every parameter of a loaded plugin: ``{parameter name: Curve | Choices}``.

    Skipped: program selectors (:data:`PROGRAM_PARAMETERS`) and parameters the
    plugin marks as not automatable (DPF's VST3 "Buffer Size"/"Sample Rate",
    which the host owns; sweeping them to 0 trips the plugin's assertions). ``continuous`` names
    parameters known to be continuous knobs (:func:`measure_parameter`'s ``continuous``); ``render``
    renders a probe signal at the current settings (:func:`plugin_renderer`), for the parameters
    whose display cannot tell continuous from stepped.

    Raises:
        PluginMapError: a ``continuous`` name the plugin does not have, or whose display is not
            numeric and monotone (it cannot be a curve; its texts are named).
    """
    names = access.param_names()
    unknown = [c for c in continuous if c not in names]
    if unknown:
        raise PluginMapError(f"--continuous {', '.join(unknown)}: the plugin has no such parameter; its parameters: "
                             f"{', '.join(names)}")
    out: dict[str, Curve | Choices] = {}
    for i, name in enumerate(names):
        if name in PROGRAM_PARAMETERS or not getattr(access, "is_automatable", lambda _i: True)(i):
            continue
        c = measure_parameter(access, i, points, continuous=name in continuous, render=render)
        if name in continuous and not isinstance(c, Curve):
            shown = ", ".join(list(c.choices)[:6]) if isinstance(c, Choices) else "one value only"
            raise PluginMapError(f"--continuous {name}: its display is not numeric and monotone ({shown}), so it "
                                 "cannot be a curve; leave it a choice and put it in 'fixed'")
        if c is not None:
            out[name] = c
    return out


def calibration_dict(loaded, curves: Mapping[str, Curve | Choices], points: int) -> dict:
    """The JSON document ``plugins calibrate`` writes: identity plus curves."""
    ident = Identity(Path(loaded.path).name, loaded.format, loaded.name, len(loaded.param_names()), loaded.inputs,
                     loaded.outputs)
    return {
        "format": CALIBRATION_FORMAT,
        "version": MAP_VERSION,
        "identity": ident.to_json(),
        "calibration": {
            "method": "sweep normalised value, parse display text; where neighbours show the same number, probe "
                      "the midpoints: new values there mean a continuous knob (one point per run of equal text), "
                      "none there and no change in the audio rendered at both ends of the widest run of equal text "
                      "a stepped one (choices); refine midpoints where linear interpolation "
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


def _split_spec(spec: str, option: str, form: str) -> tuple[str, str]:
    name, sep, value = str(spec).partition("=")
    if not sep or not name.strip() or not value.strip():
        raise PluginMapError(f"{option} {spec!r}: use {form}")
    return name.strip(), value.strip()


def map_document(calibration: Mapping[str, Any], processor: str, *, name: str, sets: Sequence[str],
                 fixed: Sequence[str] = (), ranges: Sequence[str] = (), handled_elsewhere: Sequence[str] = (),
                 notes: str = "") -> dict:
    """A plugin map (``mixbridge-plugin-map`` JSON) from a calibration and bindings given as text.

    The bindings are the command line's (``plugins calibrate --processor``):

    * ``sets``: ``SCHEMA=PLUGIN_PARAM`` or ``SCHEMA=PLUGIN_PARAM:CONVERT`` (a name of
      :data:`~.map_laws.CONVERSIONS`): plugin parameter ``PLUGIN_PARAM`` is driven by schema
      parameter ``SCHEMA`` of ``processor``;
    * ``fixed``: ``PLUGIN_PARAM=VALUE``, a display value or the display text of a choice;
    * ``ranges``: ``SCHEMA=LO:HI``, the part of the schema range the plugin renders (schema units);
    * ``handled_elsewhere``: ``SCHEMA=WHY``, a schema parameter the plugin does not carry.

    The result is not validated here: :func:`~.pluginmap.map_from_dict` does that (the CLI
    refuses to write a map that does not load).

    Raises:
        PluginMapError: a malformed binding, or a ``range`` for a schema parameter no ``set`` drives.
    """
    key = re.sub(r"[^a-z0-9]+", "_", str(calibration["identity"]["name"]).lower()).strip("_") or "plugin"
    curves = calibration["curves"]
    set_doc: dict[str, dict] = {}
    by_source: dict[str, list[str]] = {}
    for spec in sets:
        src, target = _split_spec(spec, "--set", "SCHEMA=PLUGIN_PARAM[:CONVERT], e.g. --set threshold_db=al")
        param, _, conv = target.partition(":")
        entry: dict[str, Any] = {"from": src}
        if conv:
            entry["convert"] = conv
        set_doc[param] = entry
        by_source.setdefault(src, []).append(param)
    for spec in ranges:
        src, value = _split_spec(spec, "--range", "SCHEMA=LO:HI, e.g. --range attack_ms=0.1:50")
        if src not in by_source:
            raise PluginMapError(f"--range {spec!r}: no --set drives {src}; give --set {src}=PLUGIN_PARAM first")
        try:
            lo, hi = (float(v) for v in value.split(":"))
        except ValueError:
            raise PluginMapError(f"--range {spec!r}: use SCHEMA=LO:HI with two numbers") from None
        for param in by_source[src]:
            set_doc[param]["range"] = [lo, hi]
    fixed_doc: dict[str, Any] = {}
    for spec in fixed:
        param, value = _split_spec(spec, "--fixed", "PLUGIN_PARAM=VALUE, e.g. --fixed cm=Down")
        raw = curves.get(param) or {}
        number = parse_display(value) if re.fullmatch(r"\s*[-+]?[\d.]+(e[-+]?\d+)?\s*", value, re.I) else None
        fixed_doc[param] = value if "choices" in raw and value in raw["choices"] or number is None else number
    handled = dict(_split_spec(s, "--handled-elsewhere", "SCHEMA=WHY") for s in handled_elsewhere)
    return {
        "format": MAP_FORMAT, "version": MAP_VERSION, "name": name, "processor": processor,
        "notes": notes,
        "plugins": {key: {"identity": dict(calibration["identity"]), "calibration": dict(calibration["calibration"]),
                          "curves": dict(curves)}},
        "stages": [{"plugin": key, "set": set_doc, "fixed": fixed_doc}],
        "handled_elsewhere": handled,
    }


# --------------------------------------------------------------------------- state across renders
#: The state probe of :func:`measure_render_state`: a loud burst that drives the processor hard, and a
#: quiet signal whose render shows what the burst left behind (white noise, dBFS peak; each this long).
STATE_PROBE_LOUD_DBFS = -6.0
STATE_PROBE_QUIET_DBFS = -40.0
STATE_PROBE_S = 0.5


@dataclass(frozen=True)
class RenderState:
    """What :func:`measure_render_state` measured, as fractions of the quiet render's peak.

    ``carried``: max |quiet signal rendered after the loud burst - the same rendered after itself|;
    ``floor``: max |two renders of the quiet signal in a row| (what a render leaves for the next when
    nothing loud came before); ``fresh``: max |the quiet signal in two fresh instances|.
    """

    carries_state: bool
    deterministic: bool
    carried: float
    floor: float
    fresh: float
    params: dict[str, float]

    def to_json(self) -> dict:
        """The figures as a map's ``calibration.render_state`` entry."""
        return {"carries_state": self.carries_state, "deterministic": self.deterministic,
                "carried_fraction": self.carried, "floor_fraction": self.floor, "fresh_fraction": self.fresh,
                "params": dict(self.params),
                "method": f"white noise at {STATE_PROBE_QUIET_DBFS:g} dBFS ({STATE_PROBE_S:g} s) rendered after "
                          f"itself and after a {STATE_PROBE_LOUD_DBFS:g} dBFS burst in one instance, and in two "
                          f"fresh instances; carries state when the burst moves it by more than "
                          f"{AUDIO_PROBE_FACTOR:g} x the floor and {AUDIO_PROBE_ABS:g} of its peak"}


def state_probe_params(pmap) -> dict[str, float]:
    """Settings of the state probe: every schema parameter of ``pmap``'s processor half-way along its scale.

    ``Param.from_normalised(0.5)`` (a ``log`` time in the middle of its decades, a dB value in the
    middle of its range), moved into the part of the range the map renders
    (:meth:`~.pluginmap.PluginMap.renderable_range`). For the compressor: threshold -30 dB, ratio
    4.5, attack 3.2 ms, release 71 ms, knee 4 dB, makeup 6 dB, which reduces the loud burst by
    about 18 dB.
    """
    from .pluginmap import MAP_PROCESSORS

    out = {}
    for p in MAP_PROCESSORS[pmap.processor].params:
        lo, hi = pmap.renderable_range(p.name)
        out[p.name] = float(min(max(p.from_normalised(0.5), lo), hi))
    return out


def measure_render_state(pmap, sample_rate: int, *, backend=None, plugin_paths: Sequence[str] = ()) -> RenderState:
    """Whether a map's plugins carry state from one render to the next, and whether fresh instances agree.

    The host re-prepares the plugins before every render; most plugins clear their state then
    (ZamComp, ZamEQ2: bit-identical renders whatever came before), some do not (the Dragonfly
    reverbs keep their tails; LSP's compressor keeps its gain reduction: a -60 dBFS tone rendered
    after a loud one starts 12 dB down). A map of such a plugin needs ``fresh_instance_per_call``
    (the host loads new instances for every render), or every render, and every example of a data
    set, starts with what the one before left behind.

    At :func:`state_probe_params`, renders the quiet probe (:data:`STATE_PROBE_QUIET_DBFS`) in a
    fresh instance, again, then the loud burst (:data:`STATE_PROBE_LOUD_DBFS`), then the quiet
    probe once more; then closes the instances and renders the quiet probe in fresh ones. Carries
    state: the render after the burst differs from the one after the quiet probe by more than
    :data:`AUDIO_PROBE_FACTOR` times the difference of the two quiet renders and more than
    :data:`AUDIO_PROBE_ABS` of the peak. Deterministic: the two fresh renders differ by at most
    :data:`AUDIO_PROBE_ABS` of the peak.

    Args:
        pmap: a :class:`~.pluginmap.PluginMap` (its ``fresh_instance_per_call`` is ignored: the
            probe renders in one instance).
        sample_rate: in Hz.
        backend: the backend to render with (``process``/``close``); default a
            :class:`~.vst.VstBackend` with ``pmap`` for its processor.
        plugin_paths: extra folders the default backend searches for the plugins.

    Raises:
        PluginNotFoundError / PluginLoadError / PluginMapError: from the backend.
    """
    import dataclasses

    if backend is None:
        from .vst import VstBackend

        backend = VstBackend(int(sample_rate), maps={pmap.processor: dataclasses.replace(
            pmap, fresh_instance_per_call=False)}, plugin_paths=list(plugin_paths))
    channels = 2 if pmap.processor == "reverb" else 1
    n = int(round(STATE_PROBE_S * sample_rate))
    rng = np.random.default_rng(0)
    noise = rng.uniform(-1.0, 1.0, (2, channels, n))
    quiet = (10 ** (STATE_PROBE_QUIET_DBFS / 20.0) * noise[0]).astype(np.float32)
    loud = (10 ** (STATE_PROBE_LOUD_DBFS / 20.0) * noise[1]).astype(np.float32)
    params = state_probe_params(pmap)

    def render(x: np.ndarray) -> np.ndarray:
        return np.asarray(backend.process(pmap.processor, x, params, label="state probe"), np.float64)

    try:
        first = render(quiet)
        after_quiet = render(quiet)
        render(loud)
        after_loud = render(quiet)
        backend.close()
        fresh = render(quiet)
    finally:
        backend.close()
    peak = max(float(np.max(np.abs(after_quiet))), 1e-12)
    floor = float(np.max(np.abs(after_quiet - first))) / peak
    carried = float(np.max(np.abs(after_loud - after_quiet))) / peak
    fresh_dev = float(np.max(np.abs(fresh - first))) / peak
    carries = carried > AUDIO_PROBE_FACTOR * floor and carried > AUDIO_PROBE_ABS
    return RenderState(bool(carries), bool(fresh_dev <= AUDIO_PROBE_ABS), carried, floor, fresh_dev, params)


def with_render_state(doc: Mapping[str, Any], state: RenderState) -> dict:
    """A copy of map document ``doc`` with the flags :func:`measure_render_state` measured.

    Sets ``fresh_instance_per_call`` (the plugin carries state) and ``deterministic``, and records the
    figures under every plugin's ``calibration.render_state``.
    """
    out = json.loads(json.dumps(doc))
    out["fresh_instance_per_call"] = bool(state.carries_state)
    out["deterministic"] = bool(state.deterministic)
    for rp in (out.get("plugins") or {}).values():
        rp.setdefault("calibration", {})["render_state"] = state.to_json()
    return out
