"""DAW plugin maps: schema EQ/compressor parameters -> one DAW plugin's parameters.

A :class:`PluginMap` names the plugins a DAW profile drives (in strip/FX-chain
order) and, for each mapped schema parameter (``"eq.peak1_q"``), the plugin,
the DAW's parameter index, the native range and the conversion to native units.
Maps are data: every value is checked against the native range, so a value the
plugin cannot take raises :class:`~mixbridge.bridge.errors.DawRangeError` instead
of being clamped by the DAW.

Built-in maps (sources in each entry's ``source``):

* ``ardour``: Ardour's bundled ACE plugins, *ACE EQ* (``urn:ardour:a-eq``) and
  *ACE Compressor* (``urn:ardour:a-comp``); parameter ids are the 1-based
  ``/strip/plugin/descriptor`` ids, values native (Hz, dB, ms, ratio). a-EQ's
  peaking bands take a bandwidth ``bw`` for which the plugin computes
  ``Q = 2**(1/bw) / (2**bw - 1)`` (a-eq.c, ``linear_svf_set_peq``); we invert
  that exactly. Its shelves use a fixed Q of 1/sqrt(2) (RBJ slope S = 1), steeper than the schema's
  slope-form shelf (``SHELF_SLOPE`` = 1/sqrt(2)): up to ~1 dB apart at +-12 dB.
  a-EQ's fourth peaking band is not driven.
* ``reaper``: the zam-plugins VST2 *ZamEQ2* (FX 1) and *ZamComp* (FX 2), the
  plugins this machine's host renders with. REAPER's ``fxparam/K/value`` is the
  plugin's normalised 0..1 host value; for these DPF plugins it is linear over
  the declared range (ranges from the plugins' LV2 ``.ttl`` files in
  ``/usr/lib/lv2``). ZamEQ2 bandwidth is in octaves with the standard
  ``Q = sqrt(2**N) / (2**N - 1)``. ZamEQ2 has two peaking bands, so
  ``eq.peak3_*`` is reported as not mapped. Not measured inside REAPER here:
  verify with your REAPER before relying on it.
* ``ableton``: Live's *EQ Eight* (device 0) and *Compressor* (device 1),
  parameters addressed by *name* (indices are resolved from
  ``/live/device/get/parameters/name`` when Live answers; the ``index`` here is
  the fallback for ``--dry-run``). Values are sent in native units and checked
  against the min/max Live reports.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from mixbridge.schema import CHANNEL_STRIP

from .errors import DawRangeError

#: Bisection steps for inverting a-EQ's bandwidth law: 200 halvings of [0.1, 4]
#: reach float64 resolution, far below the 1e-6 round-trip tolerance in the tests.
_BISECT_STEPS = 200


def aeq_q_from_bw(bw: float) -> float:
    """a-EQ peaking bandwidth -> Q, as a-eq.c computes it: ``2**(1/bw) / (2**bw - 1)``."""
    return 2.0 ** (1.0 / bw) / (2.0 ** bw - 1.0)


def aeq_bw_from_q(q: float, lo: float = 0.1, hi: float = 4.0) -> float:
    """Inverse of :func:`aeq_q_from_bw` on a-EQ's range [0.1, 4] (Q falls as bw rises).

    Raises:
        DawRangeError: Q outside what bw in [lo, hi] can reach.
    """
    q_lo, q_hi = aeq_q_from_bw(hi), aeq_q_from_bw(lo)
    if not q_lo <= q <= q_hi:
        raise DawRangeError(f"Q {q:g} is outside ACE EQ's reach [{q_lo:.4g}, {q_hi:.4g}]")
    for _ in range(_BISECT_STEPS):
        mid = 0.5 * (lo + hi)
        if aeq_q_from_bw(mid) > q:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def octaves_from_q(q: float) -> float:
    """Standard bandwidth in octaves for a peaking Q: ``N = 2/ln2 * asinh(1/(2Q))``."""
    return 2.0 / math.log(2.0) * math.asinh(1.0 / (2.0 * q))


def q_from_octaves(n: float) -> float:
    """Standard Q for a bandwidth of ``n`` octaves: ``sqrt(2**n) / (2**n - 1)``."""
    return math.sqrt(2.0 ** n) / (2.0 ** n - 1.0)


_CONVERT = {
    "identity": (lambda v: v, lambda v: v),
    "q_to_aeq_bw": (aeq_bw_from_q, aeq_q_from_bw),
    "q_to_octaves": (octaves_from_q, q_from_octaves),
}


@dataclass(frozen=True)
class NativeParam:
    """One schema parameter on one DAW plugin parameter.

    ``slot`` is the plugin's position (Ardour piid and REAPER FX number are
    1-based, Ableton device index 0-based); ``index`` is the DAW's parameter
    number in its own convention. ``normalise`` is ``None`` when the DAW takes
    native units, else ``"linear"``: the DAW takes (native - min) / (max - min).
    """

    path: str
    slot: int
    index: int
    native_name: str
    native_min: float
    native_max: float
    convert: str = "identity"
    normalise: str | None = None

    def to_native(self, value: float, where: str = "") -> float:
        """Schema value (real units) -> the DAW plugin's native value.

        Raises:
            DawRangeError: the converted value lies outside the native range.
        """
        native = _CONVERT[self.convert][0](float(value))
        if not self.native_min - 1e-9 <= native <= self.native_max + 1e-9:
            raise DawRangeError(
                f"{where}{self.path} = {value:g} becomes {self.native_name} = {native:g}, outside the plugin's "
                f"[{self.native_min:g}, {self.native_max:g}]; choose a value the plugin can take"
            )
        return native

    def from_native(self, native: float) -> float:
        """The DAW plugin's native value -> the schema value in real units."""
        return _CONVERT[self.convert][1](float(native))

    def to_wire(self, value: float, where: str = "") -> float:
        """Schema value -> what goes on the wire (native, or normalised 0..1)."""
        native = self.to_native(value, where)
        if self.normalise == "linear":
            return (native - self.native_min) / (self.native_max - self.native_min)
        return native

    def from_wire(self, wire: float) -> float:
        if self.normalise == "linear":
            wire = self.native_min + float(wire) * (self.native_max - self.native_min)
        return self.from_native(wire)


@dataclass(frozen=True)
class PluginMap:
    """The plugins a profile drives (``(slot, name)`` pairs) and their parameters."""

    daw: str
    plugins: tuple[tuple[int, str], ...]
    params: tuple[NativeParam, ...]
    source: str = ""

    def __post_init__(self) -> None:
        for p in self.params:
            CHANNEL_STRIP.param(p.path)  # raises UnknownParamError on drift from the schema

    def param(self, path: str) -> NativeParam | None:
        for p in self.params:
            if p.path == path:
                return p
        return None

    def plugin_name(self, slot: int) -> str:
        for s, name in self.plugins:
            if s == slot:
                return name
        raise KeyError(slot)

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(p.path for p in self.params)


def _p(path, slot, index, name, lo, hi, convert="identity", normalise=None) -> NativeParam:
    return NativeParam(path, slot, index, name, float(lo), float(hi), convert, normalise)


# ACE EQ ids from /strip/plugin/descriptor on Ardour 7.3 (1-based), ACE Compressor likewise.
ARDOUR_MAP = PluginMap(
    "ardour",
    ((1, "ACE EQ"), (2, "ACE Compressor")),
    (
        _p("eq.low_shelf_freq_hz", 1, 1, "Frequency L", 20, 20000),
        _p("eq.low_shelf_gain_db", 1, 2, "Gain L", -20, 20),
        _p("eq.peak1_freq_hz", 1, 3, "Frequency 1", 20, 20000),
        _p("eq.peak1_gain_db", 1, 4, "Gain 1", -20, 20),
        _p("eq.peak1_q", 1, 5, "Bandwidth 1", 0.1, 4, "q_to_aeq_bw"),
        _p("eq.peak2_freq_hz", 1, 6, "Frequency 2", 20, 20000),
        _p("eq.peak2_gain_db", 1, 7, "Gain 2", -20, 20),
        _p("eq.peak2_q", 1, 8, "Bandwidth 2", 0.1, 4, "q_to_aeq_bw"),
        _p("eq.peak3_freq_hz", 1, 9, "Frequency 3", 20, 20000),
        _p("eq.peak3_gain_db", 1, 10, "Gain 3", -20, 20),
        _p("eq.peak3_q", 1, 11, "Bandwidth 3", 0.1, 4, "q_to_aeq_bw"),
        _p("eq.high_shelf_freq_hz", 1, 15, "Frequency H", 20, 20000),
        _p("eq.high_shelf_gain_db", 1, 16, "Gain H", -20, 20),
        _p("compressor.attack_ms", 2, 1, "Attack", 0.1, 100),
        _p("compressor.release_ms", 2, 2, "Release", 1, 2000),
        _p("compressor.knee_db", 2, 3, "Knee", 0, 8),
        _p("compressor.ratio", 2, 4, "Ratio", 1, 20),
        _p("compressor.threshold_db", 2, 5, "Threshold", -60, 0),
        _p("compressor.makeup_db", 2, 6, "Makeup", 0, 30),
    ),
    "a-eq.ttl / a-comp.ttl of Ardour 7.3; ids as listed by /strip/plugin/descriptor",
)

# ZamEQ2 / ZamComp VST2 parameter numbers are the DPF parameter order (LV2 control
# ports after the audio ports), 1-based as REAPER's fxparam/K counts them.
REAPER_MAP = PluginMap(
    "reaper",
    ((1, "ZamEQ2"), (2, "ZamComp")),
    (
        _p("eq.peak1_gain_db", 1, 1, "Boost/Cut 1", -50, 20, normalise="linear"),
        _p("eq.peak1_q", 1, 2, "Bandwidth 1", 0.1, 6, "q_to_octaves", "linear"),
        _p("eq.peak1_freq_hz", 1, 3, "Frequency 1", 20, 14000, normalise="linear"),
        _p("eq.peak2_gain_db", 1, 4, "Boost/Cut 2", -50, 20, normalise="linear"),
        _p("eq.peak2_q", 1, 5, "Bandwidth 2", 0.1, 6, "q_to_octaves", "linear"),
        _p("eq.peak2_freq_hz", 1, 6, "Frequency 2", 20, 14000, normalise="linear"),
        _p("eq.low_shelf_gain_db", 1, 7, "Boost/Cut L", -50, 20, normalise="linear"),
        _p("eq.low_shelf_freq_hz", 1, 8, "Frequency L", 20, 14000, normalise="linear"),
        _p("eq.high_shelf_gain_db", 1, 9, "Boost/Cut H", -50, 20, normalise="linear"),
        _p("eq.high_shelf_freq_hz", 1, 10, "Frequency H", 20, 14000, normalise="linear"),
        _p("compressor.attack_ms", 2, 1, "Attack", 0.1, 100, normalise="linear"),
        _p("compressor.release_ms", 2, 2, "Release", 1, 500, normalise="linear"),
        _p("compressor.knee_db", 2, 3, "Knee", 0, 8, normalise="linear"),
        _p("compressor.ratio", 2, 4, "Ratio", 1, 20, normalise="linear"),
        _p("compressor.threshold_db", 2, 5, "Threshold", -80, 0, normalise="linear"),
        _p("compressor.makeup_db", 2, 6, "Makeup", 0, 30, normalise="linear"),
    ),
    "ZamEQ2_dsp.ttl / ZamComp_dsp.ttl (zam-plugins, /usr/lib/lv2); DPF linear normalisation",
)


def _eq8(path: str, band: int, what: str, lo: float, hi: float) -> NativeParam:
    # Fallback index in EQ Eight's parameter list: 0 is "Device On", then per band
    # "On, Type, Frequency, Gain, Resonance" for set A. Resolved by name when Live answers.
    offset = {"Frequency": 2, "Gain": 3, "Resonance": 4}[what]
    return _p(path, 0, 1 + (band - 1) * 5 + offset, f"{band} {what} A", lo, hi)


ABLETON_MAP = PluginMap(
    "ableton",
    ((0, "EQ Eight"), (1, "Compressor")),
    (
        _eq8("eq.low_shelf_freq_hz", 2, "Frequency", 10, 22000),
        _eq8("eq.low_shelf_gain_db", 2, "Gain", -15, 15),
        _eq8("eq.peak1_freq_hz", 3, "Frequency", 10, 22000),
        _eq8("eq.peak1_gain_db", 3, "Gain", -15, 15),
        _eq8("eq.peak1_q", 3, "Resonance", 0.1, 18),
        _eq8("eq.peak2_freq_hz", 4, "Frequency", 10, 22000),
        _eq8("eq.peak2_gain_db", 4, "Gain", -15, 15),
        _eq8("eq.peak2_q", 4, "Resonance", 0.1, 18),
        _eq8("eq.peak3_freq_hz", 5, "Frequency", 10, 22000),
        _eq8("eq.peak3_gain_db", 5, "Gain", -15, 15),
        _eq8("eq.peak3_q", 5, "Resonance", 0.1, 18),
        _eq8("eq.high_shelf_freq_hz", 7, "Frequency", 10, 22000),
        _eq8("eq.high_shelf_gain_db", 7, "Gain", -15, 15),
        _p("compressor.threshold_db", 1, 1, "Threshold", -70, 6),
        _p("compressor.ratio", 1, 2, "Ratio", 1, 100),
        _p("compressor.attack_ms", 1, 3, "Attack", 0.01, 1000),
        _p("compressor.release_ms", 1, 4, "Release", 1, 3000),
        _p("compressor.knee_db", 1, 5, "Knee", 0, 18),
        _p("compressor.makeup_db", 1, 6, "Output Gain", -36, 36),
    ),
    "Live EQ Eight / Compressor parameter names; ranges from Live's display ranges, checked "
    "against /live/device/get/parameters/min|max at push time",
)

PLUGIN_MAPS = {m.daw: m for m in (ARDOUR_MAP, REAPER_MAP, ABLETON_MAP)}
