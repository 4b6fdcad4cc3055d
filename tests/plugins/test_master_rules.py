"""The ``rules`` mastering model (issue 13 item 2): measured loudness, spectrum and PLR set the one master bus.

Real audio: the five-stem synthetic multitrack (``tests/support.py``) summed to a stereo mix. Oracles:
the loudness target and true-peak ceiling measured by :mod:`mixbridge.loudness`; the threshold moves by
exactly the level difference; intensity 0 is the neutral chain (a constant gain where the limiter is idle);
the EQ fit recovers RBJ gains from their own closed-form magnitude; a dull copy of a signal moves back
toward it.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mixbridge.audio import load_stems
from mixbridge.loudness import integrated_lufs, true_peak_dbtp
from mixbridge.models.masterers import get_masterer
from mixbridge.plugins.master_bus import render_master
from mixbridge.plugins.master_plan import MasterPlan
from mixbridge.plugins.master_rules import (
    EQ_GAINS,
    EQ_LAYOUT,
    RULES_FORMAT,
    MasterInputError,
    RulesMasterer,
    apply_intensity,
    fit_eq_gains,
    fit_rules_target,
    load_rules_target,
    probe_render,
)
from mixbridge.plugins.mastering import LOUDNESS_TOLERANCE_LU, chain_params, master
from mixbridge.plugins.rbj import eq_response_db
from mixbridge.schema import EQ
from mixbridge.spectrum import THIRD_OCTAVE_CENTRES_HZ, ltas_db

#: The threshold follows the loudness to float precision of the measured loudness (BS.1770 is linear in power).
THRESHOLD_TOL_DB = 0.01
#: The EQ fit's ridge shrinks gains slightly: recovered within this of the gains that made the curve.
EQ_FIT_TOL_DB = 0.35
#: Float32 rendering of a constant gain (the neutral chain with the limiter idle), relative.
NEUTRAL_REL_TOL = 1e-5


def _mix(folder: Path) -> tuple[np.ndarray, int]:
    st = load_stems(folder)
    n = max(s.audio.shape[1] for s in st.stems)
    mix = np.zeros((2, n), np.float64)
    for s in st.stems:
        a = s.audio if s.audio.shape[0] == 2 else np.concatenate([s.audio, s.audio])
        mix[:, :a.shape[1]] += a
    return mix.astype(np.float32), st.sample_rate


def _at_lufs(x: np.ndarray, sr: int, lufs: float) -> np.ndarray:
    return (x * 10.0 ** ((lufs - integrated_lufs(x, sr)) / 20.0)).astype(np.float32)


@pytest.fixture(scope="module")
def mix(multitrack) -> tuple[np.ndarray, int]:
    return _mix(multitrack)


@pytest.fixture(scope="module")
def bright(mix) -> dict:
    """A target table whose spectrum is the mix's own (the mix is 'on target')."""
    x, sr = mix
    return {"format": RULES_FORMAT, "version": 1, "centres_hz": list(THIRD_OCTAVE_CENTRES_HZ),
            "ltas_db": ltas_db(x, sr).tolist(), "plr_db": 12.0, "provenance": {"files": 1, "albums": ["test"]}}


def test_registered_as_rules_and_returns_a_plan(mix, bright):
    x, sr = mix
    m = get_masterer("rules", target=bright)
    assert isinstance(m, RulesMasterer) and m.name == "rules"
    plan = m(_at_lufs(x, sr, -20), sr, target_lufs=-14, ceiling_dbtp=-1)
    assert isinstance(plan, MasterPlan)
    assert set(plan.params) == {"eq", "compressor", "limiter", "loudness"}


def test_target_reached_and_true_peak_under_the_ceiling(mix, bright):
    x, sr = mix
    x = _at_lufs(x, sr, -24)
    for target, ceiling in ((-14.0, -1.0), (-16.0, -2.0)):
        plan = RulesMasterer(target=bright)(x, sr, target_lufs=target, ceiling_dbtp=ceiling)
        res = master(x, plan.params, sr)
        assert abs(integrated_lufs(res.audio, sr) - target) <= LOUDNESS_TOLERANCE_LU
        assert true_peak_dbtp(res.audio, sr) <= ceiling


def test_threshold_follows_the_measured_loudness(mix, bright):
    x, sr = mix
    quiet = RulesMasterer(target=bright)(_at_lufs(x, sr, -24), sr, target_lufs=-14, ceiling_dbtp=-1)
    loud = RulesMasterer(target=bright)(_at_lufs(x, sr, -14), sr, target_lufs=-14, ceiling_dbtp=-1)
    diff = loud.params["compressor"]["threshold_db"] - quiet.params["compressor"]["threshold_db"]
    assert diff == pytest.approx(10.0, abs=THRESHOLD_TOL_DB)
    assert loud.params["compressor"]["ratio"] == pytest.approx(quiet.params["compressor"]["ratio"], abs=1e-3)
    assert loud.params["eq"] == quiet.params["eq"]


def test_intensity_zero_is_the_neutral_chain(mix, bright):
    x, sr = mix
    x = _at_lufs(x, sr, -30)
    plan = RulesMasterer(target=bright)(x, sr, target_lufs=-28, ceiling_dbtp=-1)
    p0 = apply_intensity(plan.params, 0.0)
    assert all(p0["eq"][g] == 0.0 for g in EQ_GAINS)
    assert p0["compressor"]["ratio"] == 1.0 and p0["compressor"]["makeup_db"] == 0.0
    half = apply_intensity(plan.params, 0.5)
    assert half["compressor"]["ratio"] == pytest.approx(1 + (plan.params["compressor"]["ratio"] - 1) / 2)
    assert half["eq"]["peak2_gain_db"] == pytest.approx(plan.params["eq"]["peak2_gain_db"] / 2)
    # only the solved gain remains: the limiter is idle at -28 LUFS (peaks far under -1 dBTP), so the
    # master is the mix times one constant
    res = master(x, p0, sr)
    assert true_peak_dbtp(x, sr) + res.gain_db < -3.0
    np.testing.assert_allclose(res.audio, x * np.float32(10 ** (res.gain_db / 20)), rtol=NEUTRAL_REL_TOL, atol=1e-7)
    with pytest.raises(ValueError, match="intensity"):
        apply_intensity(plan.params, 1.5)


def test_eq_fit_recovers_rbj_gains_from_their_closed_form_magnitude():
    sr = 48000
    gains = dict(zip(EQ_GAINS, (-3.0, 2.0, -1.5, 2.5, 4.0)))
    truth = {**EQ.defaults(), **EQ_LAYOUT, **gains}
    centres = np.asarray(THIRD_OCTAVE_CENTRES_HZ)
    desired = eq_response_db(truth, centres, sr) + 7.0  # plus an overall level the fit may take freely
    eq, offset = fit_eq_gains(desired, centres, sr)
    for g, v in gains.items():
        assert eq[g] == pytest.approx(v, abs=EQ_FIT_TOL_DB), g
    assert offset == pytest.approx(7.0, abs=EQ_FIT_TOL_DB)


def test_the_eq_moves_a_dull_input_toward_the_target(mix, bright):
    x, sr = mix
    p = {"eq": {**EQ.defaults(), "high_shelf_gain_db": -6.0, "high_shelf_freq_hz": 4000.0},
         "compressor": {"ratio": 1.0}, "limiter": {"ceiling_dbtp": 0.0}, "loudness": {"target_lufs": -14.0}}
    dull = render_master(x, sr, chain_params({k: v for k, v in p.items() if k != "loudness"}, 0.0))
    plan = RulesMasterer(target=bright, eq_strength=1.0)(dull, sr, target_lufs=-14, ceiling_dbtp=-1)
    assert plan.params["eq"]["high_shelf_gain_db"] > 3.0
    out = master(dull, plan.params, sr).audio
    before = np.nanmean(np.abs(ltas_db(dull, sr, bands="octave") - ltas_db(x, sr, bands="octave")))
    after = np.nanmean(np.abs(ltas_db(out, sr, bands="octave") - ltas_db(x, sr, bands="octave")))
    assert after < 0.5 * before, (before, after)


def test_references_replace_the_training_mean(mix, bright):
    x, sr = mix
    p = {"eq": {**EQ.defaults(), "low_shelf_gain_db": 6.0}, "compressor": {"ratio": 1.0},
         "limiter": {"ceiling_dbtp": 0.0}}
    boomy = render_master(_at_lufs(x, sr, -24), sr, chain_params(p, 0.0))
    plan = RulesMasterer(target=bright)(boomy, sr, target_lufs=-14, ceiling_dbtp=-1, references=[x])
    assert "1 reference" in plan.info["aim"]
    assert plan.params["eq"]["low_shelf_gain_db"] < -3.0


def test_limiter_cap_lowers_an_impossible_target_with_a_notice(mix, bright):
    x, sr = mix
    spiky = _at_lufs(x, sr, -30).copy()
    spiky[:, ::sr // 4] = 0.5  # one full-scale-ish click every 250 ms: a PLR no 6 dB of limiting can absorb
    m = RulesMasterer(target=bright)
    plan = m(spiky, sr, target_lufs=-8, ceiling_dbtp=-3)
    assert any("the cap is 6 dB" in n for n in plan.notices), plan.notices
    planned = plan.params["loudness"]["target_lufs"]
    assert planned < -8
    res = master(spiky, plan.params, sr)
    assert abs(res.lufs - planned) <= LOUDNESS_TOLERANCE_LU
    pre_limiter_tp = true_peak_dbtp(probe_render(spiky, sr, plan.params), sr) + res.gain_db
    assert pre_limiter_tp - (-3.0) <= 6.0 + 0.5  # the limiter's largest reduction stays near the cap
    more = RulesMasterer(target=bright, max_limiter_db=20.0)(spiky, sr, target_lufs=-8, ceiling_dbtp=-3)
    assert more.params["loudness"]["target_lufs"] > planned


def test_a_mix_louder_than_the_target_is_turned_down_not_limited_harder(mix, bright):
    x, sr = mix
    loud = _at_lufs(x, sr, -9)
    plan = RulesMasterer(target=bright)(loud, sr, target_lufs=-14, ceiling_dbtp=-1)
    assert any("turned down" in n for n in plan.notices)
    res = master(loud, plan.params, sr)
    assert res.gain_db < -3.0
    assert abs(res.lufs + 14) <= LOUDNESS_TOLERANCE_LU and res.true_peak_dbtp <= -1.0
    assert plan.info["expected_limiter_gr_db"] <= plan.info["compressed_plr_db"] - 13.0 + 0.1


@pytest.mark.parametrize("level", [0.0, 1e-5])
def test_silence_and_near_silence_are_refused(bright, level):
    x = np.full((2, 48000 * 2), level, np.float32)
    with pytest.raises(MasterInputError, match="silent"):
        RulesMasterer(target=bright)(x, 48000, target_lufs=-14, ceiling_dbtp=-1)


def test_by_default_the_tone_is_left_alone_without_references(mix, bright):
    x, sr = mix
    plan = RulesMasterer(target={**bright, "ltas_db": [v - 0.5 * i for i, v in enumerate(bright["ltas_db"])]})(
        x, sr, target_lufs=-14, ceiling_dbtp=-1)
    assert all(plan.params["eq"][g] == 0.0 for g in EQ_GAINS)
    assert plan.info["eq_fitted_db"]["high_shelf_gain_db"] < -3.0  # fitted and reported, not applied


def test_the_shipped_table_is_the_training_split():
    t = load_rules_target()
    pv = t["provenance"]
    assert pv["split"] == "train" and pv["files"] >= 50
    assert pv["albums"] == ["warzone2100-aftermath", "wesnoth-1.16"]
    assert len(t["ltas_db"]) == len(t["centres_hz"]) == len(THIRD_OCTAVE_CENTRES_HZ)
    assert 8.0 < t["plr_db"] < 25.0


def test_train_master_rules_writes_a_loadable_table(tmp_path, mix):
    from mixbridge.app.cli import main
    from mixbridge.plugins.datagen.masters import split_of_album

    x, sr = mix
    album = next(f"album{i}" for i in range(100) if split_of_album(f"album{i}") == "train")
    (tmp_path / "m" / album).mkdir(parents=True)
    for k in range(2):
        sf.write(tmp_path / "m" / album / f"t{k}.wav", (x * (0.5 + 0.2 * k)).T, sr, subtype="FLOAT")
    out = tmp_path / "rules.json"
    assert main(["train", "master-rules", "--masters", str(tmp_path / "m"), "-o", str(out), "-q"]) == 0
    t = load_rules_target(out)
    assert t["provenance"]["files"] == 2 and t["provenance"]["albums"] == [album]
    assert t["provenance"]["command"] == f"mixbridge train master-rules -o {out} --masters {tmp_path / 'm'}"
    assert math.isclose(t["ltas_db"][15], ltas_db(x, sr)[15], abs_tol=0.01)  # level-independent: one spectrum
    again = fit_rules_target(tmp_path / "again.json", root=tmp_path / "m", max_seconds=2.0)
    assert again["provenance"]["max_seconds"] == 2.0


def test_bands_inside_the_masters_spread_are_left_alone(mix, bright):
    """Without references (and with the EQ on: the default strength is 0, chosen on the validation album),
    the EQ moves a band only by what lies outside ``eq_deadband_std`` standard deviations of the masters'
    levels: a 3 dB dull top inside a 4 dB spread gets no EQ at all, and a
    6 dB dull top inside a 2 dB spread is corrected by about the excess."""
    x, sr = mix
    p = {"eq": {**EQ.defaults(), "high_shelf_gain_db": -3.0, "high_shelf_freq_hz": 4000.0},
         "compressor": {"ratio": 1.0}, "limiter": {"ceiling_dbtp": 0.0}}
    dull = render_master(x, sr, chain_params(p, 0.0))
    wide = {**bright, "ltas_std_db": [4.0] * len(THIRD_OCTAVE_CENTRES_HZ)}
    plan = RulesMasterer(target=wide, eq_strength=1.0, eq_deadband_std=1.0)(dull, sr, target_lufs=-14, ceiling_dbtp=-1)
    assert all(abs(plan.params["eq"][g]) < 0.5 for g in EQ_GAINS), plan.params["eq"]
    p["eq"]["high_shelf_gain_db"] = -6.0
    dull = render_master(x, sr, chain_params(p, 0.0))
    narrow = {**bright, "ltas_std_db": [2.0] * len(THIRD_OCTAVE_CENTRES_HZ)}
    plan = RulesMasterer(target=narrow, eq_strength=1.0, eq_deadband_std=1.0)(dull, sr, target_lufs=-14,
                                                                            ceiling_dbtp=-1)
    assert 1.5 < plan.params["eq"]["high_shelf_gain_db"] < 5.5
