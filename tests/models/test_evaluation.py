"""``mixbridge.models.evaluation`` against closed forms: least squares recovers the gains and pans of
THE pan law, a mix scores 0 against itself, octave-band differences of a known tilt, loudness
normalisation, and the notices for mono, resampled and trimmed references."""
from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("torch")

from mixbridge.audio import resample
from mixbridge.loudness import integrated_lufs
from mixbridge.models.evaluation import (
    NORMALISED_LUFS,
    OCTAVE_CENTRES_HZ,
    EvaluationInputError,
    evaluate_mix,
    track_levels_pans,
)
from mixbridge.plugins.console import pan_gains

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SAMPLE_RATE = 22050
SECONDS = 1.0
#: The brief's bound; float64 least squares on independent noise reaches ~1e-12.
LS_LEVEL_TOL_DB = 1e-3
LS_PAN_TOL = 1e-3
#: The mix rendered in float32 (the console's dtype): relative error ~1e-7 -> ~1e-5 dB.
FLOAT32_LEVEL_TOL_DB = 1e-3
#: Scores are computed in float32 after normalisation; identical inputs give exact zeros, near-identical ~1e-6.
SCORE_TOL = 1e-5
#: Octave bands of bin-aligned sines: the band sums are exact in float64 up to FFT rounding (~1e-12 dB).
BAND_TOL_DB = 1e-6
#: 6 dB per octave: the tilt of the closed-form test.
TILT_DB_PER_OCTAVE = 6.0

GAINS_DB = np.array([-3.0, 2.0, -10.0])
PANS = np.array([-0.7, 0.0, 0.45])


def _noise_stems(tracks: int = 3, channels: int = 2, seed: int = 0, seconds: float = SECONDS) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 0.1 * rng.standard_normal((tracks, channels, int(seconds * SAMPLE_RATE)))


def _console_mix(stems: np.ndarray, gains_db, pans) -> np.ndarray:
    """What the console does with trim/fader and pan only: ``g * pan_gains(pan, channels) * stem``."""
    mix = np.zeros((2, stems.shape[-1]))
    for s, g_db, p in zip(stems, gains_db, pans):
        gl, gr = pan_gains(p, s.shape[0])
        g = 10.0 ** (g_db / 20.0)
        mix[0] += g * gl * s[0]
        mix[1] += g * gr * s[-1]
    return mix


@pytest.mark.parametrize("channels", [2, 1])
def test_least_squares_recovers_the_gains_and_pans_of_the_pan_law(channels):
    stems = _noise_stems(channels=channels)
    level_db, pan = track_levels_pans(_console_mix(stems, GAINS_DB, PANS), stems)
    np.testing.assert_allclose(level_db, GAINS_DB, atol=LS_LEVEL_TOL_DB)
    np.testing.assert_allclose(pan, PANS, atol=LS_PAN_TOL)


def test_least_squares_reaches_the_hard_pans_and_a_float32_render():
    stems = _noise_stems(4)
    gains, pans = np.array([0.0, -6.0, 4.0, -20.0]), np.array([-1.0, 1.0, 0.999, -0.25])
    level_db, pan = track_levels_pans(_console_mix(stems, gains, pans).astype(np.float32), stems.astype(np.float32))
    np.testing.assert_allclose(level_db, gains, atol=FLOAT32_LEVEL_TOL_DB)
    np.testing.assert_allclose(pan, pans, atol=LS_PAN_TOL)


def test_a_mix_against_itself_scores_zero():
    stems = _noise_stems()
    mix = _console_mix(stems, GAINS_DB, PANS)
    res = evaluate_mix(mix, mix, SAMPLE_RATE, stems)
    for key in ("sum_difference_mrstft", "feature_distance", "level_rmse_db", "pan_mae"):
        assert res["scores"][key] == pytest.approx(0.0, abs=SCORE_TOL), key
    assert all(v == pytest.approx(0.0, abs=BAND_TOL_DB) for v in res["octave_bands"]["difference_db"] if v is not None)
    np.testing.assert_allclose(res["tracks"]["mix_level_db"], res["tracks"]["reference_level_db"], atol=1e-9)
    assert res["notices"] == []


def test_level_and_pan_errors_have_their_closed_forms():
    """Reference: the stems at GAINS_DB and PANS; mix: every stem at unity, centred (a mono sum).
    Level RMSE = the population std of GAINS_DB (the mean difference is removed); pan MAE = mean |PANS|."""
    stems = _noise_stems()
    ref = _console_mix(stems, GAINS_DB, PANS)
    mono_sum = _console_mix(stems, np.zeros(3), np.zeros(3))
    res = evaluate_mix(mono_sum, ref, SAMPLE_RATE, stems)
    assert res["scores"]["level_rmse_db"] == pytest.approx(float(np.std(GAINS_DB)), abs=LS_LEVEL_TOL_DB)
    assert res["scores"]["pan_mae"] == pytest.approx(float(np.mean(np.abs(PANS))), abs=LS_PAN_TOL)
    assert res["scores"]["sum_difference_mrstft"] > 0.1


def test_octave_band_differences_of_a_6_db_per_octave_tilt():
    """One bin-aligned sine per octave band; the copy scales the band-k sine by 6 (k - 5) dB (k = 5: 1 kHz).
    After both are normalised to the same LUFS the difference is 6 (k - 5) - (L_tilted - L_reference) dB."""
    sample_rate, n = 44100, 2 * 44100
    t = np.arange(n) / sample_rate
    freqs = [round(fc) for fc in OCTAVE_CENTRES_HZ]  # 31, 62, 125, ..., 16000 Hz: bin-aligned (0.5 Hz bins)
    octaves = np.arange(len(freqs)) - 5
    ref = sum(0.05 * np.sin(2 * np.pi * f * t + k) for k, f in enumerate(freqs))
    tilted = sum(0.05 * 10 ** (TILT_DB_PER_OCTAVE * o / 20) * np.sin(2 * np.pi * f * t + k)
                 for k, (f, o) in enumerate(zip(freqs, octaves)))
    ref, tilted = np.stack([ref, 0.8 * ref]), np.stack([tilted, 0.8 * tilted])
    res = evaluate_mix(tilted, ref, sample_rate)
    offset = integrated_lufs(tilted, sample_rate) - integrated_lufs(ref, sample_rate)
    np.testing.assert_allclose(res["octave_bands"]["difference_db"], TILT_DB_PER_OCTAVE * octaves - offset,
                               atol=BAND_TOL_DB)
    assert res["octave_bands"]["nominal_hz"][0] == 31.5 and res["octave_bands"]["nominal_hz"][-1] == 16000


def test_loudness_normalisation_makes_a_10_db_quieter_copy_score_the_same():
    stems = _noise_stems()
    ref = _console_mix(stems, GAINS_DB, PANS)
    mix = _console_mix(stems, [0.0, -4.0, 3.0], [0.2, -0.5, 0.0])
    loud = evaluate_mix(mix, ref, SAMPLE_RATE, stems)
    quiet = evaluate_mix(mix * 10 ** (-10 / 20), ref, SAMPLE_RATE, stems)
    for key, value in loud["scores"].items():
        assert quiet["scores"][key] == pytest.approx(value, rel=SCORE_TOL, abs=SCORE_TOL), key
    bands_quiet, bands_loud = quiet["octave_bands"]["difference_db"], loud["octave_bands"]["difference_db"]
    assert bands_quiet[-1] is None and bands_loud[-1] is None  # 16 kHz lies above Nyquist at 22.05 kHz
    np.testing.assert_allclose(bands_quiet[:-1], bands_loud[:-1], atol=BAND_TOL_DB)
    # compliance is of the mix as given: 10 LU lower
    assert quiet["compliance"]["mix"]["lufs"] == pytest.approx(loud["compliance"]["mix"]["lufs"] - 10, abs=1e-6)
    assert loud["normalised_lufs"] == NORMALISED_LUFS


def test_a_mono_reference_leaves_the_stereo_features_undefined_with_a_notice():
    stems = _noise_stems()
    mix = _console_mix(stems, GAINS_DB, PANS)
    res = evaluate_mix(mix, 0.5 * (mix[:1] + mix[1:]), SAMPLE_RATE, stems)
    assert res["mono"] and any("mono reference" in n for n in res["notices"])
    assert res["scores"]["sum_difference_mrstft"] is None and res["mrstft"]["difference"] is None
    assert res["features"]["reference"]["stereo_width"] is None
    assert res["feature_distances"]["stereo_imbalance"] is None
    assert res["tracks"]["mix_pan"] is None and res["scores"]["pan_mae"] is None
    # the mono reference is the mix's own downmix: every mono-defined score is 0
    assert res["mrstft"]["sum"] == pytest.approx(0.0, abs=SCORE_TOL)
    assert res["scores"]["feature_distance"] == pytest.approx(0.0, abs=SCORE_TOL)
    assert res["scores"]["level_rmse_db"] == pytest.approx(0.0, abs=LS_LEVEL_TOL_DB)


def test_a_reference_at_another_rate_is_resampled_and_a_longer_one_trimmed():
    stems = _noise_stems()
    mix, other = _console_mix(stems, GAINS_DB, PANS), _console_mix(stems, [0.0, 0.0, 0.0], [0.5, 0.5, -0.5])
    ref = resample(mix.astype(np.float32), SAMPLE_RATE, 48000)
    res = evaluate_mix(mix, ref, SAMPLE_RATE, reference_sample_rate=48000)
    assert any("resampled from 48000 Hz to 22050 Hz" in n for n in res["notices"])
    assert res["n_samples"] == SAMPLE_RATE and res["sample_rate"] == SAMPLE_RATE
    # resampled by mixbridge.audio.resample: the same scores as resampling it beforehand
    back = evaluate_mix(mix, resample(ref, 48000, SAMPLE_RATE), SAMPLE_RATE)
    for key in ("sum_difference_mrstft", "feature_distance"):  # float32 vs float64 resampler input: ~1e-5
        assert back["scores"][key] == pytest.approx(res["scores"][key], rel=1e-4), key
    # the round trip only rolls off the top of the band: far closer than a mix with other pans
    assert res["scores"]["sum_difference_mrstft"] < 0.25 * evaluate_mix(other, mix, SAMPLE_RATE)["scores"][
        "sum_difference_mrstft"]
    longer = np.concatenate([mix, mix[:, :1000]], axis=1)
    res = evaluate_mix(mix, longer, SAMPLE_RATE)
    assert any("trimmed to the shorter" in n for n in res["notices"]) and res["n_samples"] == SAMPLE_RATE
    assert res["scores"]["sum_difference_mrstft"] == pytest.approx(0.0, abs=SCORE_TOL)


def test_bad_input_names_the_value_and_the_fix():
    mix = _console_mix(_noise_stems(), GAINS_DB, PANS)
    with pytest.raises(EvaluationInputError, match="silent"):
        evaluate_mix(np.zeros_like(mix), mix, SAMPLE_RATE)
    with pytest.raises(EvaluationInputError, match=r"0\.100 s, below the 0\.5 s minimum"):
        evaluate_mix(mix[:, : SAMPLE_RATE // 10], mix[:, : SAMPLE_RATE // 10], SAMPLE_RATE)
    with pytest.raises(EvaluationInputError, match="1 or 2 channels"):
        evaluate_mix(np.zeros((3, 100)), mix, SAMPLE_RATE)
    bad = mix.copy()
    bad[0, 5] = math.nan
    with pytest.raises(EvaluationInputError, match="NaN"):
        evaluate_mix(bad, mix, SAMPLE_RATE)
