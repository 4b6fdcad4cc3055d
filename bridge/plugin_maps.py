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

Laws (sources and measurements in ``docs/bridge.md``):

* ACE EQ (Ardour 7.3, ``a-eq.c``): peaking ``Q = 2**(bw/2) / (2**bw - 1)`` with an
  SVF bell that equals the RBJ peaking biquad; shelves are RBJ slope-1 shelves whose
  corner moves with the gain, fitted by minimax to the schema shelf
  (:func:`aeq_shelf_fit`); remaining error :data:`AEQ_SHELF_MAX_ERROR_DB`.
* ACE Compressor (``a-comp.c``): knee full width ``6 * Knee + 0.01`` dB; the other
  five parameters in schema units.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from mixbridge.errors import MixbridgeError, ParamRangeError
from mixbridge.plugins.map_laws import CONVERSIONS, Conversion
from mixbridge.plugins.pluginmap import Binding, Choices, Curve, PluginMap, Stage, load_map, read_map_json
from mixbridge.schema import CHANNEL_STRIP, Processor

from .errors import BridgeConfigError, DawRangeError

DAW_MAP_FORMAT = "mixbridge-daw-map"
DAW_MAP_VERSIONS = (1,)
#: Package folder of the shipped DAW maps (inside ``mixbridge.plugins.maps``).
DAW_MAP_FOLDER = "daw"
#: Bisection steps for inverting a conversion over a schema range: 200 halvings reach
#: float64 resolution on any range the schema has.
BISECT_STEPS = 200
#: A native value may lie this fraction of the plugin's span outside it (float round-off).
NATIVE_ROUNDOFF = 1e-9


# ------------------------------------------------------------------------------ ACE laws
def aeq_q_from_bw(bw):
    """ACE EQ peaking bandwidth (its "Bandwidth" control, octaves) -> Q, as Ardour 7.3 computes it.

    ``q = 2**(bw/2) / (2**bw - 1)``, the standard octave-bandwidth law (libs/plugins/a-eq.lv2/a-eq.c,
    ``linear_svf_set_peq``, its ``double q = ...`` line; Ardour/ardour commit 3df530e7, the port
    layout of the installed 7.3 plugin). Measured on the installed plugin with lv2apply:
    ``tests/test_daw_maps.py``. (Later Ardour sources read ``2**(1/bw)``; the 7.3 binary does not.)
    """
    bw = np.asarray(bw, dtype=np.float64)
    q = np.power(2.0, 0.5 * bw) / (np.power(2.0, bw) - 1.0)
    return float(q) if q.ndim == 0 else q


def aeq_bw_from_q(q, *, sample_rate: int | None = None):
    """Inverse of :func:`aeq_q_from_bw`: ``bw = 2/ln2 * asinh(1/(2Q))`` (closed form).

    ``sample_rate`` is accepted (and unused) so the function serves as a map conversion.
    """
    q = np.asarray(q, dtype=np.float64)
    bw = 2.0 / math.log(2.0) * np.arcsinh(1.0 / (2.0 * q))
    return float(bw) if bw.ndim == 0 else bw


#: ACE EQ's fixed shelf Q (a-eq.c ``set_params``: 0.7071068, an RBJ shelf of slope S = 1).
AEQ_SHELF_Q = 0.7071068
#: Analog frequency grid of the fit (relative to the schema corner, 4 decades each side).
_FIT_W = np.logspace(-4.0, 4.0, 801)


def _analog_low_shelf_db(gain_db: float, q: float, corner: float) -> np.ndarray:
    """|H| in dB of the analog RBJ low shelf (cookbook prototype) at :data:`_FIT_W`."""
    a = 10.0 ** (gain_db / 40.0)
    s = 1j * _FIT_W / corner
    h = a * (s * s + math.sqrt(a) / q * s + a) / (a * s * s + math.sqrt(a) / q * s + 1.0)
    return 20.0 * np.log10(np.abs(h))


def fit_aeq_shelf(gain_db: float, start: tuple[float, float] = (1.067, 0.938)) -> tuple[float, float, float]:
    """Minimax fit of ACE EQ's shelf (RBJ slope 1; corner ratio c, gain g') to the schema shelf of ``gain_db``.

    Both shelves are bilinear transforms prewarped at their corner, so their digital
    responses are the analog prototypes at ``tan(pi f/sr)``: the best corner ratio and gain
    depend on the gain only, and the analog error bounds the digital one at every frequency.
    Returns (corner ratio, ACE gain / schema gain, max |error| dB).
    """
    from scipy.optimize import minimize

    from mixbridge.schema import shelf_q

    g = max(abs(float(gain_db)), 0.05)  # the shape of the fit converges as the gain vanishes
    ref = _analog_low_shelf_db(g, shelf_q(g), 1.0)

    def err(p):
        return float(np.max(np.abs(_analog_low_shelf_db(g * p[1], AEQ_SHELF_Q, math.exp(p[0])) - ref)))

    r = minimize(err, np.array([math.log(start[0]), start[1]]), method="Nelder-Mead",
                 options={"xatol": 1e-9, "fatol": 1e-11, "maxiter": 4000})
    return math.exp(r.x[0]), float(r.x[1]), float(r.fun) * abs(float(gain_db)) / g


#: Minimax fit of ACE EQ's shelf to the schema shelf, per |gain| (dB): (|gain|, corner ratio,
#: ACE gain / schema gain, max |error| dB). Made by :func:`fit_aeq_shelf` (0.5 dB grid, analog
#: prototypes over 8 decades); ``tests/test_daw_maps.py`` refits it and renders the plugin.
AEQ_SHELF_FIT: tuple[tuple[float, float, float, float], ...] = (
    (0.0, 1.067024, 0.937914, 0.0), (0.5, 1.06705, 0.937904, 0.031), (1.0, 1.067126, 0.937877, 0.0621),
    (1.5, 1.067253, 0.937832, 0.0933), (2.0, 1.067431, 0.937769, 0.1245), (2.5, 1.067659, 0.937689, 0.1558),
    (3.0, 1.067937, 0.937591, 0.1872), (3.5, 1.068263, 0.937477, 0.2188), (4.0, 1.068638, 0.937348, 0.2506),
    (4.5, 1.069077, 0.937199, 0.2826), (5.0, 1.069589, 0.937027, 0.3149), (5.5, 1.070152, 0.936841, 0.3474),
    (6.0, 1.070763, 0.936641, 0.3802), (6.5, 1.071421, 0.936429, 0.4132), (7.0, 1.072125, 0.936205, 0.4466),
    (7.5, 1.072873, 0.935971, 0.4802), (8.0, 1.073726, 0.935711, 0.5143), (8.5, 1.074595, 0.935425, 0.5489),
    (9.0, 1.075505, 0.93513, 0.5838), (9.5, 1.076454, 0.934829, 0.6191), (10.0, 1.077467, 0.934516, 0.6548),
    (10.5, 1.078583, 0.934179, 0.6911), (11.0, 1.079737, 0.933839, 0.7278), (11.5, 1.080914, 0.933494, 0.7648),
    (12.0, 1.082141, 0.933117, 0.8026), (12.5, 1.083449, 0.932727, 0.8409), (13.0, 1.084786, 0.932338, 0.8796),
    (13.5, 1.086182, 0.931944, 0.9188), (14.0, 1.087696, 0.931529, 0.9586), (14.5, 1.08918, 0.931101, 0.999),
    (15.0, 1.090717, 0.930667, 1.04), (15.5, 1.092373, 0.930215, 1.0817), (16.0, 1.094046, 0.929772, 1.1236),
    (16.5, 1.095793, 0.929311, 1.1664), (17.0, 1.097577, 0.92883, 1.2099), (17.5, 1.099371, 0.92836, 1.2537),
    (18.0, 1.101332, 0.927866, 1.2984), (18.5, 1.103285, 0.92738, 1.3435), (19.0, 1.105279, 0.926869, 1.3895),
    (19.5, 1.107357, 0.926357, 1.436), (20.0, 1.10947, 0.925853, 1.4829),
)
_FIT = np.asarray(AEQ_SHELF_FIT, dtype=np.float64)
#: The fit's largest error over the schema's shelf gains (+-12 dB), any frequency.
AEQ_SHELF_MAX_ERROR_DB = float(np.interp(12.0, _FIT[:, 0], _FIT[:, 3]))


def aeq_shelf_fit(gain_db):
    """For a schema shelf of ``gain_db``: (corner ratio, ACE EQ gain in dB, max |error| dB of the fit).

    The corner ratio multiplies the schema corner's ``tan(pi f/sr)`` for the low shelf
    (and divides it for the high shelf, the mirror image); ACE EQ's own corner offset
    (its shelf sits at ``f0 sqrt(A)`` / ``f0 / sqrt(A)``) is applied by
    :func:`aeq_low_shelf_freq` / :func:`aeq_high_shelf_freq`.
    """
    g = np.abs(np.asarray(gain_db, dtype=np.float64))
    return (np.interp(g, _FIT[:, 0], _FIT[:, 1]), np.asarray(gain_db, dtype=np.float64) * np.interp(g, _FIT[:, 0], _FIT[:, 2]),
            np.interp(g, _FIT[:, 0], _FIT[:, 3]))


def aeq_shelf_gain(gain_db, *, sample_rate: int | None = None):
    """ACE EQ shelf "Gain" for a schema shelf gain (the minimax fit, :func:`aeq_shelf_fit`)."""
    out = aeq_shelf_fit(gain_db)[1]
    return float(out) if np.ndim(out) == 0 else out


def _aeq_shelf_freq(freq_hz, gain_db, sample_rate: int, high: bool):
    ratio, g_aeq, _ = aeq_shelf_fit(gain_db)
    sqrt_a = np.power(10.0, g_aeq / 80.0)  # sqrt(A), A = 10^(gain/40)
    wc = np.tan(np.pi * np.asarray(freq_hz, dtype=np.float64) / float(sample_rate))
    w0 = wc * sqrt_a / ratio if high else wc * ratio / sqrt_a
    out = np.arctan(w0) * float(sample_rate) / np.pi
    return float(out) if np.ndim(out) == 0 else out


def aeq_low_shelf_freq(freq_hz, gain_db, *, sample_rate: int):
    """ACE EQ "Frequency L" for a schema low shelf at ``freq_hz`` / ``gain_db``.

    ACE EQ's low shelf at ``f0`` is the RBJ slope-1 shelf with corner
    ``tan(pi fc/sr) = tan(pi f0/sr) sqrt(A)`` (a-eq.c sets ``g = tan(pi f0/sr)`` without
    Simper's ``/ sqrt(A)``); we place that corner at the fitted ratio of the schema corner.
    """
    return _aeq_shelf_freq(freq_hz, gain_db, sample_rate, high=False)


def aeq_high_shelf_freq(freq_hz, gain_db, *, sample_rate: int):
    """ACE EQ "Frequency H" for a schema high shelf (the mirror of :func:`aeq_low_shelf_freq`)."""
    return _aeq_shelf_freq(freq_hz, gain_db, sample_rate, high=True)


def aeq_shelf_max_error_db(gain_db: float) -> float:
    """Largest |dB| difference of the fitted ACE EQ shelf from the schema shelf (any frequency)."""
    return float(aeq_shelf_fit(gain_db)[2])


#: ACE Compressor's knee: full width ``6 * Knee + 0.01`` dB (a-comp.c ``run``: ``width``).
ACOMP_KNEE_WIDTH_PER_UNIT_DB = 6.0
ACOMP_KNEE_MIN_WIDTH_DB = 0.01


def acomp_knee_from_knee_db(knee_db, *, sample_rate: int | None = None):
    """ACE Compressor "Knee" for a schema full knee width: ``(knee_db - 0.01) / 6``, floored at 0.

    Below 0.01 dB the plugin's narrowest knee (0.01 dB) is used: its gain curve differs
    from a hard knee by at most 0.01/8 dB.
    """
    out = np.maximum(0.0, (np.asarray(knee_db, dtype=np.float64) - ACOMP_KNEE_MIN_WIDTH_DB)
                     / ACOMP_KNEE_WIDTH_PER_UNIT_DB)
    return float(out) if out.ndim == 0 else out


_A_EQ_SOURCE = "Ardour 7.x libs/plugins/a-eq.lv2/a-eq.c (linear_svf_set_peq / _lowshelf / _highshelf)"
#: Conversions only the DAW maps use (same form as the host's CONVERSIONS; both are looked up).
DAW_CONVERSIONS: dict[str, Conversion] = {
    "aeq_bandwidth_from_rbj_q": Conversion("aeq_bandwidth_from_rbj_q", aeq_bw_from_q, 0, _A_EQ_SOURCE),
    "aeq_shelf_gain": Conversion("aeq_shelf_gain", aeq_shelf_gain, 0, _A_EQ_SOURCE + "; minimax fit"),
    "aeq_low_shelf_freq": Conversion("aeq_low_shelf_freq", aeq_low_shelf_freq, 1, _A_EQ_SOURCE + "; minimax fit"),
    "aeq_high_shelf_freq": Conversion("aeq_high_shelf_freq", aeq_high_shelf_freq, 1, _A_EQ_SOURCE + "; minimax fit"),
    "acomp_knee_from_knee_db": Conversion("acomp_knee_from_knee_db", acomp_knee_from_knee_db, 0,
                                          "Ardour 7.x libs/plugins/a-comp.lv2/a-comp.c (run: width = 6*knee + 0.01)"),
}


def _conversion(name: str) -> Conversion:
    return DAW_CONVERSIONS.get(name) or CONVERSIONS[name]


def known_conversions() -> list[str]:
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
    def sources(self) -> tuple[str, ...]:
        """Schema parameter names (of :attr:`processor`) this plugin carries."""
        bs = self.stage.set if self.stage is not None else self.bindings
        return tuple(b.source for b in bs)

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(f"{self.processor.name}.{s}" for s in self.sources)

    def _bindings(self) -> tuple[Binding, ...]:
        return self.stage.set if self.stage is not None else self.bindings

    def values(self, params: Mapping[str, float], sample_rate: int, where: str = "") -> dict[str, float]:
        """Wire values ``{plugin parameter name: value}`` for this plugin (fixed and driven ones).

        Args:
            params: real-unit values of the processor's schema parameters (all of them).
            sample_rate: the session's sample rate in Hz (for conversions that need it).

        Raises:
            DawRangeError: a value the plugin cannot take; names both values and the range.
        """
        if self.stage is not None:
            try:
                vals = self.host.stage_values(self.stage, params, sample_rate)
                curves = self.host.plugins[self.stage.plugin].curves
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
        b = next(b for b in self._bindings() if b.source == source)
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
        curves = self.host.plugins[self.stage.plugin].curves if self.stage is not None else {}
        ordered = sorted(self._bindings(), key=lambda b: bool(b.convert))
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
            got[b.source] = _bisect(lambda s: float(conv.func(s, *others, sample_rate=sample_rate)), x,
                                    sp.min, sp.max, sp.min > 0)
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
        for p in self.plugins:
            if p.slot == slot:
                return p
        raise KeyError(slot)

    def plugin_name(self, slot: int) -> str:
        return self.plugin(slot).name

    @property
    def slots(self) -> tuple[tuple[int, str], ...]:
        return tuple((p.slot, p.name) for p in self.plugins)


# ------------------------------------------------------------------------------ loader
class DawMapError(ValueError, MixbridgeError):
    """A DAW map that does not parse or does not agree with the schema / its host map."""


def _require(cond: bool, msg: str) -> None:
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
            _require(len(with_) == _conversion(conv).n_with,
                     f"{where}: convert '{conv}' needs {_conversion(conv).n_with} 'with' parameter(s), got {len(with_)}")
        for w in with_:
            _require(w in proc.param_names, f"{where}: set['{pname}'].with names '{w}', not a parameter of '{proc.name}'")
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
    index_base = int(data.get("index_base", 0))
    raw_plugins = data.get("plugins")
    _require(isinstance(raw_plugins, list) and raw_plugins, f"{where}: needs a non-empty 'plugins' list")
    plugins = []
    for i, rp in enumerate(raw_plugins):
        pw = f"{where} plugins[{i}]"
        _require(isinstance(rp, Mapping) and "slot" in rp, f"{pw}: needs 'slot'")
        plugins.append(_host_plugin(rp, pw, wire, index_base) if "host_map" in rp else _native_plugin(rp, pw, wire))
    _require(len({p.slot for p in plugins}) == len(plugins), f"{where}: two plugins share a slot")
    seen: dict[str, int] = {}
    for p in plugins:
        for path in p.paths:
            _require(path not in seen, f"{where}: {path} is carried by slots {seen.get(path)} and {p.slot}")
            seen[path] = p.slot
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
        BridgeConfigError: an unknown name (lists the shipped ones).
        DawMapError: a file that is not valid JSON or fails validation.
    """
    data, name, p = read_map_json(name_or_path, folder=DAW_MAP_FOLDER, what="DAW map", error=DawMapError,
                                  unknown=BridgeConfigError, shipped=daw_map_names)
    return daw_map_from_dict(data, name, p)


@functools.lru_cache(maxsize=None)
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
