"""Parameter sampling over the schema: dense and uniform in each parameter's scale.

For every parameter of a chain of schema processors a normalised value
``u`` in [0, 1] is drawn and mapped to real units with
:meth:`mixbridge.schema.Param.from_normalised`, so a ``log`` parameter
(frequencies, Q, ratio, times) is uniform in log-space and a ``db`` parameter
uniform in decibels. Per-parameter distributions narrow or fix this:

* ``fixed:V`` - always V (real units);
* ``uniform:LO:HI`` - uniform between LO and HI (real units) in the schema's scale.

Spec strings are ``processor.param=fixed:0`` as on the command line
(``--param compressor.knee_db=fixed:0``).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mixbridge.schema import COMPRESSOR, EQ, LIMITER, REVERB, Param, Processor

from .errors import DatagenConfigError

PROCESSORS: dict[str, Processor] = {p.name: p for p in (EQ, COMPRESSOR, REVERB, LIMITER)}


@dataclass(frozen=True)
class Dist:
    """A distribution over one parameter, as normalised bounds ``[u_lo, u_hi]`` (equal: fixed)."""

    kind: str
    u_lo: float
    u_hi: float

    def sample(self, rng: np.random.Generator) -> float:
        """One normalised value in ``[u_lo, u_hi]``; always one draw from ``rng`` (fixed ones too)."""
        if self.kind == "fixed":
            rng.random()  # keep one draw per parameter whatever the spec: the stream stays aligned
            return self.u_lo
        return float(self.u_lo + (self.u_hi - self.u_lo) * rng.random())

    def to_json(self) -> dict:
        """The JSON form stored in ``config.json``."""
        return {"kind": self.kind, "u_lo": self.u_lo, "u_hi": self.u_hi}


def flat_params(processors: Sequence[str]) -> list[tuple[str, Param]]:
    """``("processor.param", Param)`` for a processor list, in order.

    Raises:
        DatagenConfigError: an unknown processor name (the message lists them).
    """
    out = []
    for name in processors:
        if name not in PROCESSORS:
            raise DatagenConfigError(f"unknown processor '{name}'; known: {', '.join(PROCESSORS)}")
        out += [(f"{name}.{p.name}", p) for p in PROCESSORS[name].params]
    return out


def parse_dists(specs: Iterable[str] | Mapping[str, str], params: Sequence[tuple[str, Param]]) -> dict[str, Dist]:
    """Parse ``name=fixed:V`` / ``name=uniform:LO:HI`` specs against ``params``.

    Raises:
        DatagenConfigError: unknown parameter, malformed spec, or a value outside
            the schema range (named with the range and unit).
    """
    by_name = dict(params)
    items = specs.items() if isinstance(specs, Mapping) else [s.split("=", 1) if "=" in s else (s, "") for s in specs]
    out: dict[str, Dist] = {}
    for name, spec in items:
        name = name.strip()
        if name not in by_name:
            raise DatagenConfigError(f"--param {name}: unknown parameter; known: {', '.join(by_name)}")
        p = by_name[name]
        parts = spec.strip().split(":")
        try:
            values = [float(v) for v in parts[1:]]
        except ValueError:
            raise DatagenConfigError(f"--param {name}={spec}: values must be numbers") from None
        if parts[0] == "fixed" and len(values) == 1:
            lo = hi = values[0]
        elif parts[0] == "uniform" and len(values) == 2 and values[0] <= values[1]:
            lo, hi = values
        else:
            raise DatagenConfigError(f"--param {name}={spec}: use {name}=fixed:V or {name}=uniform:LO:HI (LO <= HI)")
        for v in (lo, hi):
            if not p.min <= v <= p.max:
                raise DatagenConfigError(f"--param {name}={spec}: {v:g} is outside {p.range_text()}")
        out[name] = Dist(parts[0], p.to_normalised(lo), p.to_normalised(hi))
    return out


def sample_params(
    rng: np.random.Generator, params: Sequence[tuple[str, Param]], dists: Mapping[str, Dist] | None = None,
) -> tuple[dict[str, dict[str, float]], np.ndarray, np.ndarray]:
    """Draw one parameter set.

    Returns ``(nested, real, norm)``: ``{processor: {param: value}}`` in real units,
    and float64 ``[P]`` arrays of real and normalised values in ``params`` order.
    One uniform draw per parameter, always (fixed ones too).
    """
    dists = dists or {}
    nested: dict[str, dict[str, float]] = {}
    real = np.empty(len(params))
    norm = np.empty(len(params))
    for i, (path, p) in enumerate(params):
        d = dists.get(path)
        u = d.sample(rng) if d else float(rng.random())
        v = p.from_normalised(min(max(u, 0.0), 1.0))
        proc, _, name = path.partition(".")
        nested.setdefault(proc, {})[name] = v
        real[i] = v
        norm[i] = p.to_normalised(v)
    return nested, real, norm


# --------------------------------------------------------------------------- what the backend can render
#: Failure kind of an example whose render did not honour a requested value (a ``ParamRangeError``
#: from the backend or a plugin map, or a backend notice that it rendered another value).
UNRENDERABLE = "unrenderable"

#: Notices of backends that do not flag ``changed_value`` but say that a value was not rendered as
#: requested ("knee_db > 0 was rendered as 0 dB", "rendered at the nearest reachable decay").
_VALUE_CHANGE_WORDS = re.compile(r"\brendered (as|at)\b|\bclamp|\bcannot (be )?honou?r|\bignored\b|"
                                 r"\bnearest reachable\b", re.IGNORECASE)


def says_value_changed(notice: str) -> bool:
    """Whether a backend notice says a parameter was rendered as another value than requested."""
    return bool(_VALUE_CHANGE_WORDS.search(notice))


def renderable_limits(backend: str, sample_rate: int, options: Mapping | None,
                      params: Sequence[tuple[str, Param]]) -> dict[str, list[float]]:
    """``{"processor.param": [lo, hi]}`` for every parameter the backend renders only in part of its schema range.

    Asks :meth:`Backend.renderable_range` of a backend built with ``options`` (the
    processors the console computes itself, such as ``fader`` or ``pan``, are skipped).

    Raises:
        UnknownNameError / BackendUnavailableError / PluginMapError: from the backend.
    """
    from mixbridge.plugins.backend import PLUGIN_PROCESSORS, get_backend

    wanted = [(path, p) for path, p in params if path.partition(".")[0] in PLUGIN_PROCESSORS]
    if not wanted:
        return {}
    be = get_backend(backend, sample_rate, **dict(options or {}))
    out: dict[str, list[float]] = {}
    try:
        for path, p in wanted:
            proc, _, name = path.partition(".")
            lo, hi = (float(v) for v in be.renderable_range(proc, name))
            lo, hi = max(lo, p.min), min(hi, p.max)
            if lo > hi:
                raise DatagenConfigError(f"the {backend} backend renders no value of {path} in {p.range_text()}")
            if (lo, hi) != (p.min, p.max):
                out[path] = [lo, hi]
    finally:
        be.close()
    return out


def restrict_dists(backend: str, params: Sequence[tuple[str, Param]], dists: Mapping[str, Dist],
                   limits: Mapping[str, Sequence[float]], user_names: Iterable[str] = ()) -> dict[str, Dist]:
    """Narrow the distributions to what the backend renders (``limits`` from :func:`renderable_limits`).

    A parameter's default distribution (its schema range, or a generator's default
    spec) is cut to the renderable range, so every example is drawn inside it; a
    range the user asked for (``user_names``) that reaches beyond it is refused.

    Raises:
        DatagenConfigError: a user ``--param`` range outside the renderable range (named with both).
    """
    by_name = dict(params)
    user = set(user_names)
    out = dict(dists)
    for path, (lo, hi) in limits.items():
        p = by_name[path]
        u_lo, u_hi = p.to_normalised(lo), p.to_normalised(hi)
        d = out.get(path, Dist("uniform", 0.0, 1.0))
        if path in user and (d.u_lo < u_lo - 1e-12 or d.u_hi > u_hi + 1e-12):
            unit = f" {p.unit}" if p.unit else ""
            raise DatagenConfigError(
                f"--param {path}: the {backend} backend renders {path} only in [{lo:g}, {hi:g}]{unit} of the "
                f"schema's {p.range_text()}; give a range inside it (e.g. {path}=uniform:{lo:g}:{hi:g}) or "
                "choose another backend")
        a, b = max(d.u_lo, u_lo), min(d.u_hi, u_hi)
        if a > b:
            raise DatagenConfigError(f"{path}: the default range does not meet the {backend} backend's renderable "
                                     f"[{lo:g}, {hi:g}]; give --param {path}=uniform:LO:HI inside it")
        out[path] = Dist("fixed" if a == b else "uniform", a, b)
    return out


# --------------------------------------------------------------------------- run-wide numbers
#: Sample rates a dataset may have, Hz (telephone band to 8x 48 kHz).
SAMPLE_RATE_RANGE_HZ = (8000, 384000)
#: Examples per dataset (``--n``): more is a typo.
MAX_EXAMPLES = 100_000_000
#: Seeds (``--seed``): numpy's ``SeedSequence`` takes non-negative integers; shards store them as int64.
SEED_RANGE = (0, 2**63 - 1)


def check_run_numbers(*, n: int, seed: int, sample_rate: int, shard_size: int | None, default_shard_size: int,
                      max_shard_size: int) -> int:
    """Check the numbers every generator shares; returns the shard size (``None``: ``default_shard_size``).

    Nothing is replaced silently: ``--shard-size 0`` is an error, not the default.

    Raises:
        DatagenConfigError: a value out of its range (named with the range and the fix).
    """
    def whole(v) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if not whole(n) or not 0 <= n <= MAX_EXAMPLES:
        raise DatagenConfigError(f"--n {n} is outside [0, {MAX_EXAMPLES}]; give the number of examples in all")
    if not whole(seed) or not SEED_RANGE[0] <= seed <= SEED_RANGE[1]:
        raise DatagenConfigError(f"--seed {seed} is outside [{SEED_RANGE[0]}, 2**63 - 1]; give a non-negative integer")
    lo, hi = SAMPLE_RATE_RANGE_HZ
    if not whole(sample_rate) or not lo <= sample_rate <= hi:
        raise DatagenConfigError(f"--sample-rate {sample_rate} is outside [{lo}, {hi}] Hz; give e.g. 44100 or 48000")
    if shard_size is None:
        return int(default_shard_size)
    if not whole(shard_size) or not 1 <= shard_size <= max_shard_size:
        raise DatagenConfigError(f"--shard-size {shard_size} is outside [1, {max_shard_size}] examples per shard; "
                                 f"leave it out for the default {default_shard_size}")
    return int(shard_size)
