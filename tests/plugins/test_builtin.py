"""Physics oracles for the builtin (pedalboard) backend."""
from __future__ import annotations

import numpy as np
import pytest

from mixbridge.plugins import builtin
from mixbridge.plugins.backend import get_backend
from mixbridge.plugins.rbj import eq_response_db
from mixbridge.schema import COMPRESSOR, EQ, LIMITER, REVERB
from mixbridge.session import Automation

SR = 44100
#: float32 processing noise of an identity chain
IDENTITY_TOL = 1e-6
#: measured vs designed RBJ magnitude at test frequencies (float32 biquads, long impulse)
EQ_RESPONSE_TOL_DB = 0.05
TEST_FREQS_HZ = np.array([40.0, 100.0, 250.0, 600.0, 1000.0, 2500.0, 5000.0, 8000.0, 12000.0])


def _noise(channels=2, seconds=1.0, seed=0):
    return (np.random.default_rng(seed).standard_normal((channels, int(SR * seconds))) * 0.2).astype(np.float32)


def measured_response_db(process, freqs_hz, n=1 << 16):
    x = np.zeros((1, n), dtype=np.float32)
    x[0, 0] = 1.0
    y = process(x)[0].astype(np.float64)
    spec = np.fft.rfft(y)
    bins = np.fft.rfftfreq(n, 1 / SR)
    return np.interp(freqs_hz, bins, 20 * np.log10(np.abs(spec) + 1e-20))


#: The five EQ bands' gains (the 0 dB identity is checked with every band built).
EQ_GAINS = ("low_shelf_gain_db", "peak1_gain_db", "peak2_gain_db", "peak3_gain_db", "high_shelf_gain_db")
#: 0 dB settings at the defaults and at both ends of every corner-frequency and Q range.
EQ_ZERO_DB_SETTINGS = [
    {},
    {p.name: p.min for p in EQ.params if not p.name.endswith("_gain_db")},
    {p.name: p.max for p in EQ.params if not p.name.endswith("_gain_db")},
]
#: A band at 1 dB changes broadband noise by far more than the identity's float32 noise.
ONE_DB_MIN_CHANGE = 1e-3


@pytest.mark.parametrize("over", EQ_ZERO_DB_SETTINGS, ids=("defaults", "ranges_min", "ranges_max"))
def test_eq_at_0_db_is_identity(over):
    """pedalboard's five RBJ filters, all built (``all_bands``), at 0 dB return their input.

    (``builtin.eq`` leaves a 0 dB band out, which would compare an empty board with its
    input.) The same board with one band at 1 dB is not the identity, so the filters are live.
    """
    params = EQ.defaults() | over
    board = builtin.eq_board(**params, all_bands=True)
    assert [type(b).__name__ for b in board] == ["LowShelfFilter", "PeakFilter", "PeakFilter", "PeakFilter",
                                                 "HighShelfFilter"]
    x = _noise()
    assert np.max(np.abs(board(x, SR) - x)) <= IDENTITY_TOL
    for gain in EQ_GAINS:
        live = builtin.eq_board(**(params | {gain: 1.0}), all_bands=True)
        assert np.max(np.abs(live(x, SR) - x)) > ONE_DB_MIN_CHANGE, gain


def test_eq_leaves_0_db_bands_out():
    """``builtin.eq`` builds no filter for a 0 dB band: the input comes back unchanged."""
    assert len(builtin.eq_board(**EQ.defaults())) == 0
    x = _noise()
    assert np.array_equal(builtin.eq(x, SR, **EQ.defaults()), x)


def test_compressor_ratio_1_is_identity():
    x = _noise() * 4  # hot signal, far above any threshold
    p = COMPRESSOR.defaults() | {"threshold_db": -40.0, "ratio": 1.0}
    y = builtin.compressor(x, SR, **p)
    assert np.max(np.abs(y - x)) <= IDENTITY_TOL


@pytest.mark.parametrize("settings", [
    {"peak1_gain_db": 6.0, "peak1_freq_hz": 1000.0, "peak1_q": 1.0},
    {"low_shelf_gain_db": -12.0, "low_shelf_freq_hz": 150.0},
    {"high_shelf_gain_db": 4.5, "high_shelf_freq_hz": 6000.0, "peak3_gain_db": -8.0, "peak3_freq_hz": 3000.0,
     "peak3_q": 4.0},
])
def test_eq_magnitude_matches_rbj_design(settings):
    params = EQ.defaults() | settings
    measured = measured_response_db(lambda x: builtin.eq(x, SR, **params), TEST_FREQS_HZ)
    designed = eq_response_db(params, TEST_FREQS_HZ, SR)
    np.testing.assert_allclose(measured, designed, atol=EQ_RESPONSE_TOL_DB)


def test_peak_centre_gain_equals_gain_db():
    params = EQ.defaults() | {"peak2_gain_db": -9.0, "peak2_freq_hz": 2000.0, "peak2_q": 2.0}
    measured = measured_response_db(lambda x: builtin.eq(x, SR, **params), np.array([2000.0]))
    assert measured[0] == pytest.approx(-9.0, abs=EQ_RESPONSE_TOL_DB)


def test_compressor_reduces_level_above_threshold_by_ratio():
    # steady sine 20 dB over the threshold; ratio 4 leaves 5 dB over: 15 dB of gain reduction
    t = np.arange(SR * 2) / SR
    x = (0.5 * np.sin(2 * np.pi * 200 * t))[None, :].astype(np.float32)  # peak -6.02 dBFS
    p = COMPRESSOR.defaults() | {"threshold_db": -26.02, "ratio": 4.0, "attack_ms": 1.0, "release_ms": 50.0}
    y = builtin.compressor(x, SR, **p)
    tail = slice(SR, 2 * SR)
    gr_db = 20 * np.log10(np.abs(y[0, tail]).max() / np.abs(x[0, tail]).max())
    assert gr_db == pytest.approx(-15.0, abs=0.5)


#: Schroeder RT60 of exponentially decaying noise scatters by the noise's own fluctuation: 3 %.
RT60_NOISE_TOL = 0.03


def test_limiter_true_peak_ceiling():
    from mixbridge.loudness import true_peak_dbtp

    x = _noise() * 10
    for ceiling in (-1.0, -3.0):
        y = builtin.limiter(x, SR, ceiling_dbtp=ceiling, release_ms=50.0)
        assert true_peak_dbtp(y, SR) <= ceiling


def test_reverb_rt60_is_decay_s_and_wet_energy_is_return_db():
    """RT60 by Schroeder backward integration (T20 extrapolated); wet energy of white noise."""
    for decay_s in (0.3, 1.0, 3.0):
        x = np.zeros((2, int(SR * decay_s * 1.5)), dtype=np.float32)
        x[:, 0] = 1.0
        y = builtin.reverb(x, SR, decay_s=decay_s, predelay_ms=0.0, return_db=0.0)
        h = y[0].astype(np.float64)
        edc = np.cumsum((h ** 2)[::-1])[::-1]
        edc_db = 10 * np.log10(edc / edc[0] + 1e-30)
        i5, i25 = np.argmax(edc_db < -5), np.argmax(edc_db < -25)
        assert (i25 - i5) / SR * 3.0 == pytest.approx(decay_s, rel=RT60_NOISE_TOL)
    noise = np.random.default_rng(1).standard_normal((2, SR * 6)).astype(np.float32) * 0.1
    wet = builtin.reverb(noise, SR, decay_s=0.5, predelay_ms=20.0, return_db=-6.0)
    steady = slice(SR, None)  # past the response's build-up
    ratio_db = 10 * np.log10(np.mean(wet[:, steady].astype(np.float64) ** 2) / np.mean(noise[:, steady] ** 2.0))
    assert ratio_db == pytest.approx(-6.0, abs=0.2)


def test_backend_automation_changes_gain_blockwise():
    be = get_backend("builtin", SR, block_size=512)
    x = np.full((1, SR), 0.25, dtype=np.float32)
    params = COMPRESSOR.defaults() | {"makeup_db": 0.0}
    auto = {"makeup_db": Automation([0.0, 0.5], [0.0, 6.0206])}
    y = be.process("compressor", x, params, auto)
    assert y[0, 10] == pytest.approx(0.25, rel=1e-5)
    assert y[0, -10] == pytest.approx(0.5, rel=1e-4)


def test_backend_unknown_processor_and_backend():
    from mixbridge.errors import UnknownNameError

    be = get_backend("builtin", SR)
    with pytest.raises(UnknownNameError, match="known: eq"):
        be.process("chorus", _noise(), {})
    with pytest.raises(UnknownNameError, match="known backends: builtin, vst"):
        get_backend("reaper", SR)


def test_soft_knee_is_rendered_at_its_closed_form():
    """At the threshold a quadratic knee of width W reduces by (1 - 1/ratio) W / 8 (Giannoulis eq. 4)."""
    be = get_backend("builtin", SR)
    x = np.full((1, SR), 10 ** (-20 / 20), dtype=np.float32)  # constant |x|: -20 dBFS detector level
    p = COMPRESSOR.defaults() | {"threshold_db": -20.0, "ratio": 4.0, "knee_db": 8.0, "attack_ms": 1.0}
    y = be.process("compressor", x, p)
    assert 20 * np.log10(y[0, -1] / x[0, -1]) == pytest.approx(-(1 - 1 / 4) * 8 / 8, abs=1e-6)
    assert be.notices == []


def test_schema_defaults_cover_limiter_and_reverb():
    assert set(LIMITER.param_names) == {"ceiling_dbtp", "release_ms"}
    assert set(REVERB.param_names) == {"decay_s", "predelay_ms", "return_db"}


def test_fused_chain_equals_stage_by_stage():
    be = get_backend("builtin", SR)
    x = _noise()
    eqp = EQ.defaults() | {"peak1_gain_db": 6.0, "low_shelf_gain_db": -9.0}
    cp = COMPRESSOR.defaults() | {"threshold_db": -30.0, "ratio": 4.0, "makeup_db": 3.0}
    staged = be.process("compressor", be.process("eq", x, eqp), cp)
    fused = be.process_chain([("eq", eqp, None), ("compressor", cp, None)], x)
    np.testing.assert_array_equal(fused, staged)
