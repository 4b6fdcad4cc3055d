"""ACE EQ's and ACE Compressor's laws (Ardour 7.3): schema units -> the plugins' own controls.

The conversions Ardour's DAW map (``plugins/maps/daw/ardour.json``) names, registered in
:data:`DAW_CONVERSIONS` beside the host's :data:`~mixbridge.plugins.map_laws.CONVERSIONS`:

* ACE EQ (``libs/plugins/a-eq.lv2/a-eq.c``): peaking ``Q = 2**(bw/2) / (2**bw - 1)`` with an
  SVF bell that equals the RBJ peaking biquad (:func:`aeq_q_from_bw`, :func:`aeq_bw_from_q`);
  shelves are RBJ slope-1 shelves whose corner moves with the gain, fitted by minimax to the
  schema shelf (:func:`fit_aeq_shelf`, tabulated in :data:`AEQ_SHELF_FIT`); remaining error
  :data:`AEQ_SHELF_MAX_ERROR_DB`.
* ACE Compressor (``a-comp.c``): knee full width ``6 * Knee + 0.01`` dB
  (:func:`acomp_knee_from_knee_db`); the other five parameters are in schema units.

Every conversion takes scalars or numpy arrays (float64) and a keyword ``sample_rate`` in Hz.
Sources and measurements: ``docs/bridge.md``; ``tests/bridge/test_daw_maps.py`` refits the table and
renders the installed plugins.
"""
from __future__ import annotations

import math

import numpy as np

from mixbridge.plugins.map_laws import Conversion


def aeq_q_from_bw(bw):
    """ACE EQ peaking bandwidth (its "Bandwidth" control, octaves) -> Q, as Ardour 7.3 computes it.

    ``q = 2**(bw/2) / (2**bw - 1)``, the standard octave-bandwidth law (libs/plugins/a-eq.lv2/a-eq.c,
    ``linear_svf_set_peq``, its ``double q = ...`` line; Ardour/ardour commit 3df530e7, the port
    layout of the installed 7.3 plugin). Measured on the installed plugin with lv2apply:
    ``tests/bridge/test_daw_maps.py``. (Later Ardour sources read ``2**(1/bw)``; the 7.3 binary does not.)
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
#: prototypes over 8 decades); ``tests/bridge/test_daw_maps.py`` refits it and renders the plugin.
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
    gain = np.asarray(gain_db, dtype=np.float64)
    return (np.interp(g, _FIT[:, 0], _FIT[:, 1]), gain * np.interp(g, _FIT[:, 0], _FIT[:, 2]),
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
