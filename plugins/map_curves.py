"""Plugin display text and value curves: the measured normalised <-> display conversions of a plugin map.

A plugin shows each parameter's value as text (``"-12.5 dB"``); :func:`parse_display` reads its
number. A numeric parameter becomes a :class:`Curve` (``normalised`` 0..1 increasing,
``display`` strictly monotone, interpolated piecewise-linearly both ways, which keeps it
monotone); a text or stepped one a :class:`Choices` table. Values outside a plugin's range
raise :class:`~mixbridge.errors.ParamRangeError` (beyond :data:`~.map_laws.RANGE_ROUNDOFF`;
no silent clamping). The curves are measured by :mod:`.map_calibration` and stored in the map
files (:mod:`.pluginmap`); the unit laws between schema and display units are :mod:`.map_laws`.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mixbridge.errors import ParamRangeError, PluginMapError

from .map_laws import RANGE_ROUNDOFF

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
    # float64 copies of ``normalised`` / ``display`` for np.interp, set once in __post_init__
    # (not compared: the tuples already are; arrays would make ``==`` ambiguous).
    _u: np.ndarray = field(init=False, repr=False, compare=False)
    _d: np.ndarray = field(init=False, repr=False, compare=False)

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
        """The lowest display value the plugin reaches (display unit)."""
        return float(min(self.display[0], self.display[-1]))

    @property
    def hi(self) -> float:
        """The highest display value the plugin reaches (display unit)."""
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
        """The curve as a map's JSON ``curves`` entry: ``{"unit", "normalised", "display"}``."""
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
        """The table as a map's JSON ``curves`` entry: ``{"choices": {text: normalised}}``."""
        return {"choices": dict(self.choices)}


def curve_from_json(param: str, raw: Mapping[str, Any], where: str) -> Curve | Choices:
    """A map's JSON ``curves`` entry of ``param`` as a :class:`Curve` or :class:`Choices`.

    Raises:
        PluginMapError: a malformed entry (``where`` names the map and plugin).
    """
    if not isinstance(raw, Mapping):
        raise PluginMapError(f"{where}: curve of '{param}' must be an object")
    if "choices" in raw:
        ch = raw["choices"]
        if not isinstance(ch, Mapping) or not ch:
            raise PluginMapError(f"{where}: 'choices' of '{param}' must be a non-empty object text -> normalised")
        return Choices(param, {str(k): float(v) for k, v in ch.items()})
    try:
        return Curve(param, str(raw.get("unit", "")), tuple(map(float, raw["normalised"])),
                     tuple(map(float, raw["display"])))
    except (KeyError, TypeError, ValueError) as e:
        raise PluginMapError(
            f"{where}: curve of '{param}' needs 'normalised' and 'display' number lists ({e})") from None
