"""The laws plugin maps name: unit conversions and measured tables.

A map's binding can name a ``convert`` (:data:`CONVERSIONS`: schema value -> the plugin's
display value, each with its source, optionally with a refusal check for values the
plugin renders off the schema). The laws are ZamEQ2's (its Orfanidis peaks against RBJ, and
the bandwidth that matches an RBJ Q) and measured response tables (Dragonfly Plate's RT60
over its Decay knob). A stage's host-made ``sidechain`` signals (the drive that makes
ZamComp/ZamCompX2 render the schema's compressor) are :mod:`.map_sidechain`. The map model
and loader that use them are :mod:`mixbridge.plugins.pluginmap`.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mixbridge.errors import ParamRangeError, PluginMapError

#: A value may lie this fraction of the curve's span outside it and still be taken as
#: the end point (float round-off of conversions); beyond it the value is refused.
RANGE_ROUNDOFF = 1e-6


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
    if bw.size == 1 and np.ndim(q) == 0 and np.ndim(f) == 0:
        return float(bw[0])
    return bw.reshape(np.broadcast(q, f).shape)


def _zameq2_peak_dw(q, freq_hz, sample_rate: int) -> np.ndarray:
    """The digital bandwidth ``Dw = (freq/sample_rate) / qq`` ZamEQ2 uses for the converted Bandwidth."""
    bw = np.asarray(zameq2_bandwidth_from_rbj_q(q, freq_hz, sample_rate=sample_rate), np.float64)
    qq = np.power(2.0, 1.0 / bw) / (np.power(2.0, bw) - 1.0)
    return (np.asarray(freq_hz, np.float64) / float(sample_rate)) / qq


def zameq2_peak_sections(freq_hz: float, q: float, gain_db: float, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """The biquad ZamEQ2 renders for a schema peak ``(freq_hz, q, gain_db)`` through this map: ``(b [3], a [3])``.

    S. J. Orfanidis, "Digital Parametric Equalizer Design with Prescribed Nyquist-Frequency
    Gain", JAES 45(6), 1997 (eqs. 23-29, the design zam-plugins 4.x ``ZamEQ2Plugin.cpp``
    ``peq()`` codes): reference gain ``G0 = 1``, peak gain ``G = 10^(gain_db/20)``, band-edge
    gain ``GB = sqrt(G)``, centre ``w0 = 2 pi freq/sample_rate`` and the width ``Dw`` of
    :func:`zameq2_bandwidth_from_rbj_q`. Its Nyquist gain ``G1`` matches the analog
    prototype, where the RBJ cookbook band's is forced to 1 (0 dB): the two agree at low
    frequencies and part near Nyquist for wide bands. ``gain_db = 0`` is the identity
    (ZamEQ2 bypasses the band).
    """
    if gain_db == 0.0:
        return np.array([1.0, 0.0, 0.0]), np.array([1.0, 0.0, 0.0])
    w0 = 2.0 * math.pi * freq_hz / sample_rate
    dw = float(_zameq2_peak_dw(q, freq_hz, sample_rate))
    g0, g = 1.0, 10.0 ** (gain_db / 20.0)
    gb = math.sqrt(g)
    f = abs(g * g - gb * gb)
    g00, f00 = abs(g * g - g0 * g0), abs(gb * gb - g0 * g0)
    pole = (w0 * w0 - math.pi ** 2) ** 2
    g1 = math.sqrt((g0 * g0 * pole + g * g * f00 * math.pi ** 2 * dw * dw / f)
                   / (pole + f00 * math.pi ** 2 * dw * dw / f))
    g01, g11 = abs(g * g - g0 * g1), abs(g * g - g1 * g1)
    f01, f11 = abs(gb * gb - g0 * g1), abs(gb * gb - g1 * g1)
    w2 = math.sqrt(g11 / g00) * math.tan(w0 / 2.0) ** 2
    dww = (1.0 + math.sqrt(f00 / f11) * w2) * math.tan(dw / 2.0)
    c = f11 * dww * dww - 2.0 * w2 * (f01 - math.sqrt(f00 * f11))
    d = 2.0 * w2 * (g01 - math.sqrt(g00 * g11))
    a_ = math.sqrt((c + d) / f)
    b_ = math.sqrt((g * g * c + gb * gb * d) / f)
    norm = 1.0 + w2 + a_
    b = np.array([g1 + g0 * w2 + b_, -2.0 * (g1 - g0 * w2), g1 - b_ + g0 * w2]) / norm
    a = np.array([1.0, -2.0 * (1.0 - w2) / norm, (1.0 + w2 - a_) / norm])
    return b, a


def _biquad_db(b: np.ndarray, a: np.ndarray, freqs_hz: np.ndarray, sample_rate: int) -> np.ndarray:
    z = np.exp(-2j * np.pi * np.asarray(freqs_hz, np.float64) / sample_rate)
    h = (b[0] + b[1] * z + b[2] * z * z) / (a[0] + a[1] * z + a[2] * z * z)
    return 20.0 * np.log10(np.maximum(np.abs(h), 1e-30))


#: Frequencies (per octave) at which :func:`zameq2_peak_deviation_db` compares the designs.
DEVIATION_POINTS_PER_OCTAVE = 48


def zameq2_peak_deviation_db(freq_hz: float, q: float, gain_db: float, sample_rate: int) -> tuple[float, float]:
    """``(max |ZamEQ2 - RBJ| in dB, the frequency where it is, Hz)`` for one peak, closed forms.

    Compares :func:`zameq2_peak_sections` with :func:`mixbridge.plugins.rbj.peaking` over the
    contract's EQ band (:data:`mixbridge.plugins.contract.EQ_BAND_HZ`, capped at 0.45
    ``sample_rate`` like the contract). Checked against the plugin: the contract's "five
    bands" row measured 0.488 dB at 16 kHz where this gives 0.492 dB for its peak 3
    (6 kHz, Q 0.5, +6 dB, 48 kHz; the other bands add < 0.01 dB there).
    """
    from .contract import EQ_BAND_HZ
    from .rbj import peaking

    if gain_db == 0.0:
        return 0.0, float(freq_hz)
    lo, hi = EQ_BAND_HZ[0], min(EQ_BAND_HZ[1], 0.45 * sample_rate)
    freqs = np.geomspace(lo, hi, int(math.ceil(math.log2(hi / lo) * DEVIATION_POINTS_PER_OCTAVE)) + 1)
    zb, za = zameq2_peak_sections(freq_hz, q, gain_db, sample_rate)
    rb, ra = peaking(freq_hz, gain_db, q, sample_rate)
    err = np.abs(_biquad_db(zb, za, freqs, sample_rate) - _biquad_db(rb, ra, freqs, sample_rate))
    i = int(np.argmax(err))
    return float(err[i]), float(freqs[i])


#: Q values (log grid over the schema's peak Q range) searched for the range ZamEQ2 renders.
REACHABLE_Q_POINTS = 64


def zameq2_reachable_q(freq_hz: float, gain_db: float, sample_rate: int,
                       tolerance_db: float) -> tuple[float, float] | None:
    """``(lo, hi)``: the schema Q range (its grid) whose ZamEQ2 peak stays within ``tolerance_db`` of RBJ, or None."""
    from mixbridge.schema import CHANNEL_STRIP

    p = CHANNEL_STRIP.processor("eq").param("peak1_q")
    grid = np.geomspace(p.min, p.max, REACHABLE_Q_POINTS)
    ok = [qv for qv in grid if zameq2_peak_deviation_db(freq_hz, float(qv), gain_db, sample_rate)[0] <= tolerance_db]
    return (float(min(ok)), float(max(ok))) if ok else None


#: At most this many distinct automated (freq, Q, gain) values are checked per band (evenly spaced).
REFUSAL_MAX_CHECKS = 64


def refuse_zameq2_peak_off_rbj(q, freq_hz, *, params: Mapping[str, Any], source: str, sample_rate: int,
                               where: str) -> None:
    """Refuse a peak that ZamEQ2 renders further from the RBJ design than the contract allows.

    Where a backend cannot meet the contract's EQ row natively, the issue asks for a refusal
    naming the range it renders: ``source`` is the band's ``peakN_q``; its gain is
    ``peakN_gain_db`` in ``params``. Automated values are checked at up to
    :data:`REFUSAL_MAX_CHECKS` evenly spaced samples.

    Raises:
        ParamRangeError: naming ``where``, the parameter, the value (with the band's frequency
            and gain), the deviation and where it is, the tolerance
            (:data:`mixbridge.plugins.contract.EQ_MAGNITUDE_TOL_DB`), and the Q range ZamEQ2
            renders within it at that frequency and gain.
    """
    from .contract import EQ_BAND_HZ, EQ_MAGNITUDE_TOL_DB

    gain_name = source[: -len("_q")] + "_gain_db"
    cols = [np.atleast_1d(np.asarray(v, np.float64)) for v in (q, freq_hz, params[gain_name])]
    n = max(c.shape[0] for c in cols)
    idx = np.unique(np.linspace(0, n - 1, min(n, REFUSAL_MAX_CHECKS)).round().astype(int))
    triples = {tuple(float(np.broadcast_to(c, (n,))[i]) for c in cols) for i in idx}
    for qv, fv, gv in sorted(triples):
        dev, at_hz = zameq2_peak_deviation_db(fv, qv, gv, sample_rate)
        if dev <= EQ_MAGNITUDE_TOL_DB:
            continue
        reach = zameq2_reachable_q(fv, gv, sample_rate, EQ_MAGNITUDE_TOL_DB)
        proc = source.split("_", 1)[0]
        reach_txt = (f"at {fv:g} Hz and {gv:+g} dB it renders {source} {reach[0]:.3g} to {reach[1]:.3g} within it"
                     if reach else f"no {source} at {fv:g} Hz and {gv:+g} dB is within it")
        raise ParamRangeError(
            f"{where} eq.{source}: {qv:g} at {fv:g} Hz, {gv:+g} dB renders {dev:.2f} dB off the RBJ design "
            f"(worst at {at_hz:.0f} Hz; the contract allows {EQ_MAGNITUDE_TOL_DB:g} dB from {EQ_BAND_HZ[0]:g} Hz to "
            f"{min(EQ_BAND_HZ[1], 0.45 * sample_rate):g} Hz at {sample_rate} Hz): ZamEQ2's peak is Orfanidis's design, "
            f"which parts from RBJ near Nyquist for wide bands; {reach_txt}; raise the Q, lower the {proc} gain, "
            "move the band down, render with the builtin backend, or pass --clamp",
            param=source, value=qv, reachable=reach if reach else None,
        )


@dataclass(frozen=True)
class MeasuredTable:
    """A measured response of a plugin over one of its parameters (a map binding's ``table``).

    ``display`` [n]: the plugin parameter's display values where it was measured (increasing);
    ``measured`` [n]: the quantity measured there, in the schema parameter's unit (strictly
    monotone, so the table inverts); ``method``: how it was measured (the map's source).
    """

    display: tuple[float, ...]
    measured: tuple[float, ...]
    unit: str = ""
    method: str = ""

    def __post_init__(self) -> None:
        d, m = np.asarray(self.display, np.float64), np.asarray(self.measured, np.float64)
        if len(d) < 2 or len(d) != len(m) or not np.all(np.diff(d) > 0):
            raise PluginMapError("a measured table needs >= 2 points with increasing 'display' and as many 'measured'")
        if not (np.all(np.diff(m) > 0) or np.all(np.diff(m) < 0)):
            raise PluginMapError("a measured table's 'measured' values must be strictly monotone so it can be inverted")

    @property
    def reach(self) -> tuple[float, float]:
        """``(lo, hi)``: the values of the measured quantity the plugin reaches."""
        return float(min(self.measured[0], self.measured[-1])), float(max(self.measured[0], self.measured[-1]))

    def to_json(self) -> dict:
        """The table as a map binding's JSON ``table``: ``{"display", "measured", "unit", "method"}``."""
        return {"display": list(self.display), "measured": list(self.measured), "unit": self.unit,
                "method": self.method}


def inverse_measured_table(value, *, sample_rate: int, table: MeasuredTable, where: str = ""):
    """The plugin display value whose measured response is ``value`` (inverse of a :class:`MeasuredTable`).

    Interpolates the inverse of the table log-log (the tables hold positive quantities over
    log-spaced settings: RT60 over Dragonfly's Decay knob), linearly where a value is <= 0.

    Raises:
        ParamRangeError: ``value`` outside what the plugin reaches (the table's measured range,
            beyond :data:`RANGE_ROUNDOFF`); names ``where``, the value and that range. Nothing is clamped.
    """
    v = np.asarray(value, dtype=np.float64)
    lo, hi = table.reach
    tol = RANGE_ROUNDOFF * (hi - lo)
    bad = ~np.isfinite(v) | (v < lo - tol) | (v > hi + tol)
    if np.any(bad):
        first = float(v.reshape(-1)[np.argmax(bad.reshape(-1))])
        raise ParamRangeError(
            f"{where + ': ' if where else ''}{first:g} {table.unit}".rstrip()
            + f" is outside what the plugin reaches, [{lo:g}, {hi:g}] {table.unit}".rstrip()
            + " (measured; see the map's table); choose a value in that range, another map, or pass --clamp",
            value=first, reachable=(float(lo), float(hi)),
        )
    v = np.clip(v, lo, hi)
    d, m = np.asarray(table.display, np.float64), np.asarray(table.measured, np.float64)
    if m[0] > m[-1]:
        d, m = d[::-1], m[::-1]
    if np.all(d > 0) and np.all(m > 0):
        out = np.exp(np.interp(np.log(v), np.log(m), np.log(d)))
    else:
        out = np.interp(v, m, d)
    return float(out) if out.ndim == 0 else out


def lsp_knee_from_width(knee_db, *, sample_rate: int):
    """LSP compressor "Knee" (its display, dB, <= 0) for a soft knee of full width ``knee_db`` (the schema's).

    LSP Plugins' compressor (lsp-dsp-units ``dynamics/Compressor``) takes its knee as a gain
    ``k <= 1``: the soft region runs from ``threshold * k`` to ``threshold / k``, so its full
    width in dB is ``-2 * 20 log10 k`` and the display value for a width ``knee_db`` is
    ``-knee_db / 2`` (0 dB: a hard knee). The static curve through it is checked against the
    schema's by ``mixbridge plugins check`` on a map that uses it. ``sample_rate`` is unused.
    """
    return -0.5 * np.asarray(knee_db, dtype=np.float64) if np.ndim(knee_db) else -0.5 * float(knee_db)


@dataclass(frozen=True)
class Conversion:
    """A named unit conversion: ``func(value, *with_values, sample_rate=...)`` -> display value.

    ``needs_table``: the binding carries a measured ``table`` (:class:`MeasuredTable`), passed
    as ``table=`` (with ``where=`` for error messages).
    """

    name: str
    func: Callable[..., Any]
    n_with: int
    source: str
    needs_table: bool = False
    #: ``refuse(value, *with_values, params=, source=, sample_rate=, where=)`` raises
    #: ParamRangeError for values the plugin renders off the schema (called when a map's values
    #: are computed for rendering, not by :func:`check_reach`).
    refuse: Callable[..., None] | None = None


CONVERSIONS: dict[str, Conversion] = {
    "zameq2_bandwidth_from_rbj_q": Conversion(
        "zameq2_bandwidth_from_rbj_q",
        zameq2_bandwidth_from_rbj_q,
        1,
        "RBJ Audio EQ Cookbook band edges; Orfanidis 1997 digital parametric EQ as coded in zam-plugins ZamEQ2",
        refuse=refuse_zameq2_peak_off_rbj,
    ),
    "lsp_knee_from_width": Conversion(
        "lsp_knee_from_width",
        lsp_knee_from_width,
        0,
        "LSP Plugins compressor: knee gain k, soft region threshold*k .. threshold/k (lsp-dsp-units Compressor)",
    ),
    "inverse_measured_table": Conversion(
        "inverse_measured_table",
        inverse_measured_table,
        0,
        "the binding's own measured table (e.g. Dragonfly Plate RT60 by Schroeder T20 over its Decay knob; "
        "tests/plugins/test_vst_semantics.py re-measures it)",
        needs_table=True,
    ),
}
