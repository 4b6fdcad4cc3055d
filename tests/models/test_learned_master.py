"""The learned mastering model: its features, network, refinement through the real chain, masterer and training.

Oracles: a gain of ``g`` dB moves the loudness and peak features by exactly ``g`` and leaves every
relative one unchanged; features of 3 s and 10 s of one stationary noise agree; an RBJ low shelf of
``g`` dB at 400 Hz raises the 31.5 Hz octave by ``g`` and leaves 16 kHz alone (its band
sensitivity ~1 and ~0); the refinement recovers a known EQ's spectrum from a neutral start; the
one gain solver meets the target within 0.1 LU and the limiter keeps the 4x true peak under the
ceiling.
"""
from __future__ import annotations

import numpy as np
import pytest

from mixbridge.errors import AudioInputError
from mixbridge.loudness import integrated_lufs, true_peak_dbtp
from mixbridge.master_features import FEATURE_NAMES, N_FEATURES, band_shape_db, master_features
from mixbridge.models.learned_master import (
    INPUT_NAMES,
    OUTPUT_NAMES,
    OUTPUT_PARAMS,
    eq_band_jacobian,
    params_from_normalised,
    refine_eq,
    tonal_error_db,
)
from mixbridge.plugins.rbj import eq_sections
from mixbridge.schema import MASTER_BUS

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

SR = 44100
#: Features of 3 s and of 10 s of one stationary noise: the band shapes differ by the noise's own
#: estimation variance (a few tenths of a dB in the lowest octave, which holds few FFT bins).
WINDOW_TOL_DB = 0.6
#: The loudness of 3 s and 10 s of the same noise (400 ms gating blocks): within this many LU.
WINDOW_TOL_LU = 0.2
#: Level features under a pure gain move by exactly the gain (float32 audio: 1e-3 dB).
GAIN_TOL_DB = 1e-3
#: The master bus's target tolerance (mixbridge.plugins.mastering.LOUDNESS_TOLERANCE_LU).
LUFS_TOL = 0.1
LEVEL_NAMES = ("lufs", "true_peak_dbtp")


def pinkish(seconds: float, seed: int = 0, sample_rate: int = SR) -> np.ndarray:
    """Stereo noise with a -3 dB/octave tilt and a slow level wobble (so dynamics features are not degenerate)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    spec = rng.standard_normal((2, n // 2 + 1)) + 1j * rng.standard_normal((2, n // 2 + 1))
    f = np.fft.rfftfreq(n, 1.0 / sample_rate)
    spec *= 1.0 / np.sqrt(np.maximum(f, 20.0))
    x = np.fft.irfft(spec, n=n, axis=-1)
    x *= 0.1 / np.sqrt(np.mean(x ** 2))
    t = np.arange(n) / sample_rate
    x *= 1.0 + 0.3 * np.sin(2 * np.pi * 0.7 * t)
    return x.astype(np.float32)


def apply_eq(x: np.ndarray, eq: dict) -> np.ndarray:
    from scipy.signal import sosfilt

    sos = np.array([np.concatenate([b, a]) for b, a in eq_sections(eq, SR)])
    return sosfilt(sos, x, axis=-1).astype(np.float32)


def neutral_eq() -> dict:
    return {n.split(".")[1]: p.default for n, p in MASTER_BUS.flat_params() if n.startswith("eq.")}


# --------------------------------------------------------------------------- features
def test_features_shape_names_and_determinism():
    x = pinkish(4.0)
    f1, f2 = master_features(x, SR), master_features(x.copy(), SR)
    assert f1.shape == (N_FEATURES,) == (len(FEATURE_NAMES),) and f1.dtype == np.float32
    np.testing.assert_array_equal(f1, f2)
    assert np.all(np.isfinite(f1))


def test_features_under_a_gain_move_only_the_levels():
    x = pinkish(4.0, seed=1)
    g = -7.5
    a, b = master_features(x, SR), master_features(x * np.float32(10 ** (g / 20)), SR)
    for i, name in enumerate(FEATURE_NAMES):
        want = g if name in LEVEL_NAMES else 0.0
        assert b[i] - a[i] == pytest.approx(want, abs=GAIN_TOL_DB), name


def test_features_do_not_depend_on_the_window_length():
    x = pinkish(10.0, seed=2)
    long, short = master_features(x, SR), master_features(x[:, :3 * SR], SR)
    for i, name in enumerate(FEATURE_NAMES):
        if name.startswith("band_"):
            assert abs(long[i] - short[i]) <= WINDOW_TOL_DB, name
    assert abs(long[0] - short[0]) <= WINDOW_TOL_LU


def test_features_refuse_short_or_bad_windows():
    with pytest.raises(AudioInputError, match="at least 3 s"):
        master_features(pinkish(2.0), SR)
    bad = pinkish(3.5)
    bad[0, 10] = np.nan
    with pytest.raises(AudioInputError, match="NaN"):
        master_features(bad, SR)


# --------------------------------------------------------------------------- network
def test_network_shapes_ranges_and_neutral_start():
    from mixbridge.models.dmc import parameter_count
    from mixbridge.models.learned_master import MasterNet, default_normalised

    net = MasterNet().eval()
    assert parameter_count(net) <= 1_000_000
    x = torch.randn(5, len(INPUT_NAMES)) * 10
    u, d = net(x)
    assert u.shape == (5, len(OUTPUT_NAMES)) and d.shape == (5, 10)
    assert bool(((u > 0) & (u < 1)).all())
    # the untrained output bias is the schema defaults: a neutral chain (EQ at 0 dB, ratio ~1)
    with torch.no_grad():
        u0, d0 = net(net.input_mean[None])
    np.testing.assert_allclose(u0[0].numpy(), default_normalised(), atol=1e-6)
    plan = params_from_normalised(u0[0].numpy(), target_lufs=-14.0, ceiling_dbtp=-1.0)
    assert all(abs(plan["eq"][k]) < 1e-4 for k in plan["eq"] if k.endswith("gain_db"))
    assert plan["compressor"]["ratio"] < 1.1 and plan["limiter"]["ceiling_dbtp"] == -1.0
    assert float(d0.abs().max()) == 0.0


def test_params_from_normalised_respects_the_schema_ranges():
    for u in (np.zeros(len(OUTPUT_NAMES)), np.ones(len(OUTPUT_NAMES)), np.full(len(OUTPUT_NAMES), 0.37)):
        plan = params_from_normalised(u, target_lufs=-10.0, ceiling_dbtp=-0.5)
        for name, p in OUTPUT_PARAMS:
            proc, key = name.split(".")
            assert p.min <= plan[proc][key] <= p.max, name
    from mixbridge.errors import ParamRangeError

    with pytest.raises(ParamRangeError):
        params_from_normalised(np.full(len(OUTPUT_NAMES), 0.5), target_lufs=-14.0, ceiling_dbtp=3.0)


# --------------------------------------------------------------------------- refinement
def test_band_jacobian_of_a_low_shelf_is_one_far_below_its_corner_and_zero_far_above():
    eq = neutral_eq() | {"low_shelf_freq_hz": 400.0}
    jac = eq_band_jacobian(eq, SR)
    assert jac.shape == (10, 5)
    assert jac[0, 0] == pytest.approx(1.0, abs=0.02)     # 31.5 Hz: three octaves below the 400 Hz corner
    assert abs(jac[9, 0]) < 0.01 and abs(jac[0, 4]) < 0.01


def test_refinement_recovers_a_known_eq_spectrum():
    x = pinkish(4.0, seed=3)
    truth = neutral_eq() | {"low_shelf_gain_db": 4.0, "high_shelf_gain_db": -3.0, "peak2_gain_db": 2.0}
    target = band_shape_db(apply_eq(x, truth), SR)
    start = {"eq": neutral_eq(), "compressor": {"threshold_db": 0.0, "ratio": 1.0, "attack_ms": 10.0,
                                                 "release_ms": 100.0, "knee_db": 0.0, "makeup_db": 0.0},
             "limiter": {"ceiling_dbtp": -1.0, "release_ms": 50.0}, "loudness": {"target_lufs": -16.0}}
    assert tonal_error_db(band_shape_db(x, SR), target) > 0.8   # the neutral start is far off
    best, errors = refine_eq(x, SR, start, target, steps=3)
    assert errors[0] > 0.8 and min(errors) < 0.15 and min(errors) < 0.2 * errors[0], errors
    assert best["eq"]["low_shelf_gain_db"] > 2.0 and best["eq"]["high_shelf_gain_db"] < -1.5


# --------------------------------------------------------------------------- the masterer
@pytest.fixture(scope="module")
def masterer():
    from mixbridge.models.learned_master import LearnedMasterer, MasterNet

    torch.manual_seed(0)
    return LearnedMasterer(MasterNet().eval(), refine_steps=1)


@pytest.mark.parametrize("target_lufs, ceiling_dbtp", [(-14.0, -1.0), (-9.0, -2.0)])
def test_masterer_meets_target_and_ceiling(masterer, target_lufs, ceiling_dbtp):
    from mixbridge.plugins.mastering import master

    x = pinkish(4.0, seed=4) * np.float32(0.3)
    plan = masterer(x, SR, target_lufs=target_lufs, ceiling_dbtp=ceiling_dbtp)
    for proc in ("eq", "compressor", "limiter", "loudness"):
        MASTER_BUS.processor(proc).validate(plan.params[proc], proc)
    res = master(x, plan.params, SR)
    assert abs(integrated_lufs(res.audio, SR) - target_lufs) <= LUFS_TOL
    assert true_peak_dbtp(res.audio, SR) <= ceiling_dbtp
    assert plan.info["aim"].startswith("the model's")


def test_masterer_with_a_reference_aims_at_it(masterer):
    x = pinkish(4.0, seed=5)
    ref = apply_eq(pinkish(4.0, seed=6), neutral_eq() | {"high_shelf_gain_db": 5.0})
    plan = masterer(x, SR, target_lufs=-14.0, ceiling_dbtp=-1.0, references=[ref])
    assert "reference" in plan.info["aim"]
    errors = plan.info["refine_tonal_error_db"]
    assert errors[-1] < errors[0] and plan.params["eq"]["high_shelf_gain_db"] > 1.0


def test_masterer_refuses_mono(masterer):
    with pytest.raises(AudioInputError, match=r"\[2, samples\]"):
        masterer(pinkish(4.0)[:1], SR, target_lufs=-14.0, ceiling_dbtp=-1.0)


def test_registered_as_learned():
    from mixbridge.models.masterers import MASTERERS

    assert "learned" in MASTERERS.names()


# --------------------------------------------------------------------------- training
def synthetic_pairs(n_train: int = 3, n_val: int = 1, seconds: float = 3.5):
    """Pairs whose pre-master is an RBJ EQ of the master at a lower level; the label is the negated EQ
    (the exact inverse, :func:`mixbridge.plugins.datagen.premaster.negate_eq`)."""
    from functools import partial

    from mixbridge.models.training.mastering import MasterPair
    from mixbridge.plugins.datagen.premaster import negate_eq

    rng = np.random.default_rng(7)
    pairs = []
    for k in range(n_train + n_val):
        mas = pinkish(seconds, seed=10 + k)
        deg = neutral_eq() | {"low_shelf_gain_db": float(rng.uniform(-5, 5)),
                              "high_shelf_gain_db": float(rng.uniform(-5, 5))}
        pre = apply_eq(mas, deg) * np.float32(0.3)
        label = {"eq": negate_eq(deg), "compressor": {"threshold_db": 0.0, "ratio": 1.0, "attack_ms": 10.0,
                                                     "release_ms": 100.0, "knee_db": 0.0, "makeup_db": 0.0},
                 "limiter": {"ceiling_dbtp": -1.0, "release_ms": 50.0},
                 "loudness": {"target_lufs": float(integrated_lufs(mas, SR))}}
        pairs.append(MasterPair(id=f"p{k}", split="train" if k < n_train else "val", album="a" if k < n_train else "b",
                                sample_rate=SR, n_samples=mas.shape[1], label=label,
                                load=partial(lambda a, b: (a, b), pre, mas)))
    return pairs


def test_training_runs_resumes_and_checkpoints(tmp_path):
    from mixbridge.models.checkpoint import load_checkpoint
    from mixbridge.models.training.mastering import train_master

    pairs = synthetic_pairs()
    kw = dict(pairs=pairs, identity={"root": "synthetic"}, batch_size=2, views=2, max_window_s=3.5, chain_s=0.5,
              progress=False)
    s = train_master(None, tmp_path / "run", max_epochs=1, **kw)
    assert s["epoch"] == 1 and np.isfinite(s["best_val_loss"])
    s2 = train_master(None, tmp_path / "run", max_epochs=2, resume=True, **kw)
    assert s2["epoch"] == 2 and s2["step"] == 2 * s["step"]
    model, record = load_checkpoint(tmp_path / "run" / "last.json")
    assert record["architecture"] == "master-mlp" and record["model_name"] == "learned"
    assert float(model.input_std.min()) >= 0.1      # the standardisation was fitted and saved
    assert (tmp_path / "run" / "cache").is_dir()
    from mixbridge.export.master_onnx import OnnxMasterPredictor, export_master_onnx
    from mixbridge.models.learned_master import LearnedMasterer
    from mixbridge.models.training.mastering import ship_master

    shipped = ship_master(tmp_path / "run", tmp_path / "ship" / "learned", eq_intensity=0.25, compressor_intensity=0.0,
                          refine_without_reference=False, chosen_on="test")
    m = LearnedMasterer(shipped)
    assert m.settings == {"eq_intensity": 0.25, "compressor_intensity": 0.0} and not m.refine_without_reference
    assert OnnxMasterPredictor(export_master_onnx(shipped, shipped.with_suffix(".onnx"))).settings == m.settings


def test_label_weights_ignore_what_a_label_does_not_fix():
    from mixbridge.models.training.mastering import label_normalised

    label = synthetic_pairs(1, 1)[0].label
    label["eq"]["peak1_gain_db"] = 0.0
    u, w = label_normalised(label)
    names = list(OUTPUT_NAMES)
    assert w[names.index("eq.peak1_freq_hz")] == 0.0 and w[names.index("eq.peak1_gain_db")] == 1.0
    assert w[names.index("compressor.threshold_db")] == 0.0      # ratio 1: the threshold does nothing
    assert np.all((u >= 0) & (u <= 1))


def test_train_master_command_is_registered():
    import argparse

    from mixbridge.models.learned_master_cli import add_master_command

    ap = argparse.ArgumentParser()
    add_master_command(ap.add_subparsers())
    args = ap.parse_args(["master", "--data", "D", "-o", "R", "--max-minutes", "5", "--threads", "1"])
    assert args.command == "train master" and args.max_minutes == 5.0


def test_scale_plan_and_inference_settings():
    from mixbridge.models.learned_master import inference_settings, scale_plan

    u = np.full(len(OUTPUT_NAMES), 0.8)
    plan = params_from_normalised(u, target_lufs=-14.0, ceiling_dbtp=-1.0)
    none = scale_plan(plan, eq_intensity=0.0, compressor_intensity=0.0)
    assert all(none["eq"][k] == 0.0 for k in none["eq"] if k.endswith("gain_db"))
    assert none["compressor"]["ratio"] == 1.0 and none["limiter"] == plan["limiter"]
    half = scale_plan(plan, eq_intensity=0.5, compressor_intensity=1.0)
    assert half["eq"]["low_shelf_gain_db"] == pytest.approx(0.5 * plan["eq"]["low_shelf_gain_db"])
    assert half["compressor"] == plan["compressor"]
    assert inference_settings(None) == {"eq_intensity": 1.0, "compressor_intensity": 1.0}
    assert inference_settings({"inference": {"eq_intensity": 0.0}})["eq_intensity"] == 0.0


def test_masterer_at_zero_eq_intensity_skips_the_refinement_without_a_reference():
    from mixbridge.models.learned_master import LearnedMasterer, MasterNet

    m = LearnedMasterer(MasterNet().eval(), eq_intensity=0.0, compressor_intensity=0.5)
    x = pinkish(4.0, seed=8)
    plan = m(x, SR, target_lufs=-14.0, ceiling_dbtp=-1.0)
    assert "refine_tonal_error_db" not in plan.info and plan.info["settings"]["compressor_intensity"] == 0.5
    ref = apply_eq(pinkish(4.0, seed=9), neutral_eq() | {"low_shelf_gain_db": 5.0})
    assert "refine_tonal_error_db" in m(x, SR, target_lufs=-14.0, ceiling_dbtp=-1.0, references=[ref]).info


def test_committed_config_builds():
    from pathlib import Path

    from mixbridge.models.dmc import parameter_count
    from mixbridge.models.learned_master import MasterNet
    from mixbridge.models.training.mastering import load_master_config

    cfg = load_master_config(Path(__file__).resolve().parents[2] / "models" / "configs" / "master.yaml")
    assert parameter_count(MasterNet(**cfg["model_args"])) <= 1_000_000
    assert cfg["min_window_s"] >= 3.0 and cfg["num_threads"] == 1
