"""The types of the parameter schema: a parameter, a processor of parameters, a chain of processors.

:class:`Param` carries a name with its unit, a range, a default and a scale, and maps
between real units and the normalised 0..1 value that models and DAWs use;
:class:`Processor` groups a processor's parameters and validates ``{param: value}``;
:class:`Chain` orders processors and validates ``{processor: {param: value}}``. The
schema itself, every processor of mixbridge defined once, is :mod:`mixbridge.schema`.
This module imports nothing but the standard library.

Raises (every validator): :class:`~mixbridge.errors.ParamRangeError` naming the
parameter, the value and the range with its unit; :class:`~mixbridge.errors.UnknownParamError`
for a name the processor or chain does not define.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .errors import ParamRangeError, UnknownParamError

SCALES = ("linear", "log", "db")
KINDS = ("float", "bool")


@dataclass(frozen=True)
class Param:
    """One parameter: name with its unit, range, default and scale.

    ``scale`` is how the normalised value 0..1 maps to the real value:
    ``linear`` and ``db`` map linearly (``db`` marks a value already in decibels),
    ``log`` maps geometrically (equal ratios get equal normalised steps).
    """

    name: str
    unit: str
    min: float
    max: float
    default: float
    scale: str = "linear"
    kind: str = "float"
    description: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"{self.name}: scale {self.scale!r} not in {SCALES}")
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind {self.kind!r} not in {KINDS}")
        if not self.min < self.max:
            raise ValueError(f"{self.name}: min {self.min} must be < max {self.max}")
        if not self.min <= self.default <= self.max:
            raise ValueError(f"{self.name}: default {self.default} outside [{self.min}, {self.max}]")
        if self.scale == "log" and self.min <= 0:
            raise ValueError(f"{self.name}: a log scale needs min > 0, got {self.min}")

    def range_text(self) -> str:
        """The range for messages, with the unit: ``"[-12, 12] dB"``."""
        unit = f" {self.unit}" if self.unit else ""
        return f"[{self.min:g}, {self.max:g}]{unit}"

    def validate(self, value: float, where: str = "") -> float:
        """Return ``value`` as float if it lies in range, else raise.

        Raises:
            ParamRangeError: the value is not a finite number inside ``[min, max]``
                (a bool is refused unless the parameter is on/off; on/off ones must be 0 or 1). The
                message names the parameter, the value, the range with its unit and the fix.
        """
        label = f"{where}.{self.name}" if where else self.name
        if isinstance(value, bool) and self.kind != "bool":
            raise ParamRangeError(f"{label} = {str(value).lower()} is a boolean, not a number; "
                                  f"give a number in {self.range_text()}")
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ParamRangeError(
                f"{label} = {value!r} is not a number; give a value in {self.range_text()}"
            ) from None
        if not math.isfinite(v):
            raise ParamRangeError(f"{label} = {v} is not finite; give a value in {self.range_text()}")
        if self.kind == "bool" and v not in (0.0, 1.0):
            raise ParamRangeError(f"{label} = {value!r} must be 0 or 1 (false/true)")
        if v < self.min or v > self.max:
            raise ParamRangeError(
                f"{label} = {v:g} is outside {self.range_text()}; "
                f"set it between {self.min:g} and {self.max:g} (default {self.default:g})"
            )
        return v

    def to_normalised(self, value: float) -> float:
        """Map a real value to 0..1 in this parameter's scale (no range check)."""
        v = float(value)
        if self.scale == "log":
            return math.log(v / self.min) / math.log(self.max / self.min)
        return (v - self.min) / (self.max - self.min)

    def from_normalised(self, u: float) -> float:
        """Map 0..1 to a real value in this parameter's scale (booleans round).

        Raises:
            ParamRangeError: ``u`` is not finite or lies outside [0, 1].
        """
        u = float(u)
        if not (math.isfinite(u) and 0.0 <= u <= 1.0):
            raise ParamRangeError(f"{self.name}: normalised value {u} is outside [0, 1]")
        if self.scale == "log":
            v = self.min * (self.max / self.min) ** u
        else:
            v = self.min + u * (self.max - self.min)
        if self.kind == "bool":
            v = 1.0 if u >= 0.5 else 0.0
        return min(max(v, self.min), self.max)  # guard float round-off only


@dataclass(frozen=True)
class Processor:
    """A named group of parameters, e.g. ``compressor``."""

    name: str
    params: tuple[Param, ...]
    description: str = ""

    def __post_init__(self) -> None:
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"processor {self.name}: duplicate parameter names {names}")

    @property
    def param_names(self) -> tuple[str, ...]:
        """The parameter names, in schema order (``("threshold_db", "ratio", ...)``)."""
        return tuple(p.name for p in self.params)

    def param(self, name: str) -> Param:
        """The parameter ``name``; UnknownParamError (listing the known ones) when there is none."""
        for p in self.params:
            if p.name == name:
                return p
        raise UnknownParamError(
            f"processor '{self.name}' has no parameter '{name}'; known: {', '.join(self.param_names)}"
        )

    def defaults(self) -> dict[str, float]:
        """``{param: default}`` in real units."""
        return {p.name: p.default for p in self.params}

    def validate(self, values: Mapping[str, float], where: str = "", partial: bool = False) -> dict[str, float]:
        """Validate a ``{param: value}`` mapping; fill defaults unless ``partial``.

        Raises:
            UnknownParamError: a key that is not a parameter of this processor.
            ParamRangeError: a value outside its range.
        """
        label = f"{where}.{self.name}" if where else self.name
        out = {} if partial else self.defaults()
        for key, value in values.items():
            if key not in self.param_names:
                raise UnknownParamError(
                    f"{label}: unknown parameter '{key}'; known: {', '.join(self.param_names)}"
                )
            out[key] = self.param(key).validate(value, label)
        return out


@dataclass(frozen=True)
class Chain:
    """An ordered list of processors: ``channel_strip`` or ``master_bus``."""

    name: str
    processors: tuple[Processor, ...]
    description: str = ""
    _index: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for proc in self.processors:
            self._index[proc.name] = proc

    @property
    def processor_names(self) -> tuple[str, ...]:
        """The processor names, in chain (signal) order."""
        return tuple(p.name for p in self.processors)

    def processor(self, name: str) -> Processor:
        """The processor ``name``; UnknownParamError (listing the known ones) when there is none."""
        try:
            return self._index[name]
        except KeyError:
            raise UnknownParamError(
                f"chain '{self.name}' has no processor '{name}'; known: {', '.join(self.processor_names)}"
            ) from None

    def param(self, path: str) -> Param:
        """Look a parameter up by ``"processor.param"`` path."""
        proc, _, name = path.partition(".")
        if not name:
            raise UnknownParamError(f"parameter path '{path}' must look like 'processor.param'")
        return self.processor(proc).param(name)

    def flat_params(self) -> list[tuple[str, Param]]:
        """All parameters as ``("processor.param", Param)`` pairs, in chain order."""
        return [(f"{proc.name}.{p.name}", p) for proc in self.processors for p in proc.params]

    def defaults(self) -> dict[str, dict[str, float]]:
        """``{processor: {param: default}}`` in real units: a fresh nested dict each call."""
        return {proc.name: proc.defaults() for proc in self.processors}

    def validate(self, values: Mapping[str, Mapping[str, float]], where: str = "") -> dict[str, dict[str, float]]:
        """Validate nested ``{processor: {param: value}}``, filling defaults.

        Raises:
            UnknownParamError: an unknown processor or parameter name.
            ParamRangeError: an out-of-range value.
        """
        label = where or self.name
        for key in values:
            if key not in self._index:
                raise UnknownParamError(
                    f"{label}: unknown processor '{key}'; known: {', '.join(self.processor_names)}"
                )
        return {
            proc.name: proc.validate(values.get(proc.name, {}), label) for proc in self.processors
        }

    def to_vector(self, values: Mapping[str, Mapping[str, float]]) -> list[float]:
        """Flatten validated values to normalised 0..1 floats in ``flat_params`` order."""
        full = self.validate(values)
        return [p.to_normalised(full[path.split(".")[0]][p.name]) for path, p in self.flat_params()]

    def from_vector(self, vector: Iterable[float]) -> dict[str, dict[str, float]]:
        """Inverse of :meth:`to_vector`.

        Raises:
            ParamRangeError: wrong length or an entry outside [0, 1].
        """
        vec = list(vector)
        flat = self.flat_params()
        if len(vec) != len(flat):
            raise ParamRangeError(f"chain '{self.name}' needs {len(flat)} normalised values, got {len(vec)}")
        out: dict[str, dict[str, float]] = {proc.name: {} for proc in self.processors}
        for (path, p), u in zip(flat, vec):
            out[path.split(".")[0]][p.name] = p.from_normalised(u)
        return out
