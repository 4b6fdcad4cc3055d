"""``mixbridge.spectrum``: band levels, the loudness-relative LTAS, crest factor, PLR, short-term loudness,
against closed-form oracles (a sine's crest factor is 3.01 dB; a gain leaves a relative spectrum unchanged;
a sine's power lands in its own band; stationary noise has short-term loudness equal to its integrated)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from mixbridge.errors import AudioInputError
from mixbridge.loudness import integrated_lufs, true_peak_dbtp
from mixbridge.spectrum import (
    OCTAVE_CENTRES_HZ,
    THIRD_OCTAVE_CENTRES_HZ,
    band_edges_hz,
    band_level_error_db,
    crest_factor_db,
    ltas_db,
    octave_band_levels_db,
    plr_db,
    short_term_lufs,
)

SR = 48000
#: A gain changes the Welch power and the loudness by the same dB, to float64 rounding.
LEVEL_FREE_TOL_DB = 1e-6
#: Short-term loudness of stationary noise varies by this much from window to window (3 s of white noise).
NOISE_STL_TOL_LU = 0.1


def _noise(seconds: float = 6.0, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((2, int(seconds * SR))) * 0.1


def test_the_relative_ltas_does_not_depend_on_the_level():
    x = _noise()
    np.testing.assert_allclose(ltas_db(x * 0.1, SR), ltas_db(x, SR), atol=LEVEL_FREE_TOL_DB)
    np.testing.assert_allclose(ltas_db(x * 0.1, SR, relative=False), ltas_db(x, SR, relative=False) - 20.0,
                               atol=LEVEL_FREE_TOL_DB)


def test_a_sine_lands_in_its_own_third_octave_band():
    t = np.arange(SR * 4) / SR
    k = 15  # the 1 kHz band
    x = np.stack([np.sin(2 * np.pi * 1000.0 * t)] * 2)
    levels = ltas_db(x, SR, relative=False)
    assert int(np.nanargmax(levels)) == k
    assert levels[k] - np.nanmax(np.delete(levels, [k - 1, k, k + 1])) > 40.0
    # its band holds the sine's whole power, 2 channels * 1/2: 0 dB (Hann leakage stays in the band)
    assert levels[k] == pytest.approx(0.0, abs=0.1)


def test_band_edges_are_fractional_octaves_cut_at_nyquist():
    edges = band_edges_hz(THIRD_OCTAVE_CENTRES_HZ, 1 / 3, 44100)
    lo, hi = edges[15]
    assert hi / lo == pytest.approx(2 ** (1 / 3)) and math.sqrt(lo * hi) == pytest.approx(1000.0)
    assert band_edges_hz(OCTAVE_CENTRES_HZ, 1.0, 16000)[-1] is None  # 16 kHz band above an 8 kHz Nyquist


def test_octave_band_levels_moved_here_and_re_exported():
    from mixbridge.models import evaluation

    assert evaluation.octave_band_levels_db is octave_band_levels_db
    assert len(octave_band_levels_db(_noise(1.0), SR)) == len(OCTAVE_CENTRES_HZ)


def test_crest_factor_and_plr_of_a_sine():
    t = np.arange(SR * 2) / SR
    x = np.stack([0.5 * np.sin(2 * np.pi * 997.0 * t)] * 2)
    assert crest_factor_db(x) == pytest.approx(20 * math.log10(math.sqrt(2)), abs=1e-3)  # 3.01 dB
    assert plr_db(x, SR) == pytest.approx(true_peak_dbtp(x, SR) - integrated_lufs(x, SR))
    assert crest_factor_db(np.zeros((2, 100))) == 0.0


def test_short_term_loudness_of_stationary_noise_is_its_integrated_loudness():
    x = _noise(8.0)
    t, stl = short_term_lufs(x, SR, hop_s=0.5)
    assert t[0] == pytest.approx(3.0) and t[-1] <= 8.0
    np.testing.assert_allclose(stl, integrated_lufs(x, SR), atol=NOISE_STL_TOL_LU)
    _, quiet = short_term_lufs(np.zeros((2, SR * 4)), SR)
    assert np.all(quiet == -70.0)


def test_bad_input_is_refused():
    with pytest.raises(AudioInputError, match="NaN"):
        ltas_db(np.full((2, SR), np.nan), SR)
    with pytest.raises(AudioInputError, match="silent"):
        ltas_db(np.zeros((2, SR)), SR)
    with pytest.raises(AudioInputError, match="octave"):
        ltas_db(_noise(1.0), SR, bands="tenth")
    with pytest.raises(AudioInputError, match="silent"):
        plr_db(np.zeros((2, SR)), SR)


def test_band_level_error_is_the_mean_absolute_difference_over_the_bands_both_have():
    a = [0.0, -10.0, -70.0, None, 3.0]
    b = [1.0, -12.0, -75.0, -3.0, float("nan")]
    error, diff, used = band_level_error_db(a, b)
    assert diff == [-1.0, 2.0, 5.0, None, None] and used == [True, True, True, False, False]
    assert error == pytest.approx((1.0 + 2.0 + 5.0) / 3.0, abs=1e-12)
    # -60 dB: the third band is 73 dB below a's loudest (3 dB) and 76 dB below b's (1 dB): left out
    error, _, used = band_level_error_db(a, b, skip_below_db=-60.0)
    assert used == [True, True, False, False, False] and error == pytest.approx(1.5, abs=1e-12)
    # halving the amplitude lowers every band by 6.02 dB: the error is exactly that
    x = _noise(2.0)
    assert band_level_error_db(octave_band_levels_db(x, SR), octave_band_levels_db(x * 0.5, SR))[0] == pytest.approx(
        20.0 * math.log10(2.0), abs=LEVEL_FREE_TOL_DB)
    assert math.isnan(band_level_error_db([None], [1.0])[0])
    with pytest.raises(AudioInputError, match="same bands"):
        band_level_error_db([1.0, 2.0], [1.0])
