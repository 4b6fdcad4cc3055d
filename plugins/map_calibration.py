"""Calibration: measure a loaded plugin's value curves by sweeping normalised values and parsing the display.

:func:`measure_parameter` sweeps one parameter (:data:`DEFAULT_POINTS` evenly spaced normalised
values, then midpoints where the curve bends until linear interpolation reproduces the display
within :data:`CURVE_REFINE_TOLERANCE` of its range) into a :class:`~.map_curves.Curve` or a
:class:`~.map_curves.Choices` table; :func:`measure_curves` does every parameter. Curves are
never guessed. :func:`calibration_dict` is the document ``mixbridge plugins calibrate`` writes
and :func:`merge_calibration` updates an existing map with it.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .map_curves import Choices, Curve, parse_display
from .pluginmap import MAP_VERSION, Identity

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
        numbers = [v for v in values if v is not None and math.isfinite(v)]
        numeric = len(numbers) == len(values)
        diffs = np.diff(np.asarray(numbers, dtype=np.float64)) if numeric else np.array([0.0])
        if numeric and (np.all(diffs > 0) or np.all(diffs < 0)):
            table = dict(zip(us, numbers))
            span = abs(numbers[-1] - numbers[0])
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


def calibration_dict(loaded, curves: Mapping[str, Curve | Choices], points: int) -> dict:
    """The JSON document ``plugins calibrate`` writes: identity plus curves."""
    ident = Identity(Path(loaded.path).name, loaded.format, loaded.name, len(loaded.param_names()), loaded.inputs,
                     loaded.outputs)
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
