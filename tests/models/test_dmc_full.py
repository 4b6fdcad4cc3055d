"""dmc-full (models/dmc_full.py, models/training/dmc_full.py, style_transfer.predict_from_reference).

Closed-form and structural checks on a tiny untrained network (seconds): the strip head is
permutation equivariant and the master head invariant (within float32 round-off, PERM_TOL), padded
tracks do not move the real ones, the random sessions stay inside the datagen priors, the loss of a
perfect prediction is zero, and the predictor's loudness trim is the closed form ``COMMON_LUFS - L``.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mixbridge.models.dmc_full import (  # noqa: E402
    COMMON_LUFS,
    MASTER_OUTPUT_NAMES,
    MASTER_OUTPUT_PARAMS,
    STRIP_OUTPUT_NAMES,
    draw_session,
    reference_features,
    track_features,
)
from mixbridge.models.registry import build_architecture  # noqa: E402
from mixbridge.schema import CHANNEL_STRIP, MASTER_BUS  # noqa: E402
from mixbridge.session import Master, Session, Track  # noqa: E402

#: float32 round-off of a reordered mean over tracks (the context), on outputs in (0, 1).
PERM_TOL = 1e-6
#: The issue's size limit.
MAX_PARAMS = 2_000_000
TINY = dict(n_mels=16, channels=8, n_layers=2, embed_dim=8, hidden=16)
SAMPLE_RATE = 44100
#: A loss of identical renders: MR-STFT and feature MSE of two equal tensors (0 up to float32 round-off).
STFT_ZERO_TOL, FEATURE_ZERO_TOL = 1e-5, 1e-8
#: Loudness meter agreement on a steady signal (BS.1770 gating of 1 s of noise), dB.
LUFS_TOL = 0.05


def tiny():
    torch.manual_seed(0)
    return build_architecture("dmc-full", TINY).eval()


def test_heads_cover_the_strip_and_master_bus_and_size_is_within_the_limit():
    assert "trim.gain_db" not in STRIP_OUTPUT_NAMES and "fader.mute" not in STRIP_OUTPUT_NAMES
    assert "fader.fader_db" in STRIP_OUTPUT_NAMES and "send.send_db" in STRIP_OUTPUT_NAMES
    assert len(STRIP_OUTPUT_NAMES) == len(CHANNEL_STRIP.flat_params()) - 3
    assert {n.split(".")[0] for n in MASTER_OUTPUT_NAMES} == {"eq", "compressor", "reverb"}
    net = build_architecture("dmc-full", {})   # the shipped config's sizes are the defaults
    assert sum(p.numel() for p in net.parameters()) <= MAX_PARAMS


def test_permutation_equivariance_and_padding():
    net = tiny()
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(1, 5, 16, 20, generator=g) * 10 - 50
    ref = torch.randn(1, 32, 20, generator=g) * 10 - 50
    perm = torch.tensor([3, 0, 4, 1, 2])
    with torch.no_grad():
        s, m = net(feats, ref)
        sp, mp = net(feats[:, perm], ref)
        pad = torch.cat([feats, torch.zeros(1, 2, 16, 20)], dim=1)
        s_pad, m_pad = net(pad, ref, torch.tensor([[1.0] * 5 + [0.0] * 2]))
    assert torch.allclose(sp, s[:, perm], atol=PERM_TOL) and torch.allclose(mp, m, atol=PERM_TOL)
    assert torch.allclose(s_pad[:, :5], s, atol=PERM_TOL) and torch.allclose(m_pad, m, atol=PERM_TOL)
    assert s.shape == (1, 5, len(STRIP_OUTPUT_NAMES)) and m.shape == (1, len(MASTER_OUTPUT_NAMES))


def test_random_sessions_stay_inside_the_datagen_priors():
    strip, master = draw_session(np.random.default_rng(0), 200)
    fader = [CHANNEL_STRIP.param("fader.fader_db").from_normalised(float(u))
             for u in strip[:, STRIP_OUTPUT_NAMES.index("fader.fader_db")]]
    assert -12.0 - 1e-9 <= min(fader) and max(fader) <= 6.0 + 1e-9   # MIX_DEFAULT_SPECS: -12..+6 dB
    ratio = dict(MASTER_OUTPUT_PARAMS)["compressor.ratio"].from_normalised(
        float(master[MASTER_OUTPUT_NAMES.index("compressor.ratio")]))
    assert 1.0 <= ratio <= 4.0
    assert ((strip >= 0) & (strip <= 1)).all()


def test_features_shapes_and_mono_reference_has_a_silent_side():
    x = np.random.default_rng(0).standard_normal((3, 2, SAMPLE_RATE)).astype(np.float32) * 0.1
    assert track_features(x, SAMPLE_RATE, n_mels=16).shape[:2] == (3, 16)
    mono = reference_features(x[0, :1], SAMPLE_RATE, n_mels=16)
    stereo_same = reference_features(np.repeat(x[0, :1], 2, axis=0), SAMPLE_RATE, n_mels=16)
    np.testing.assert_allclose(mono, stereo_same, atol=1e-4)   # L = R: the side is silent either way


def test_perfect_prediction_has_zero_loss():
    from mixbridge.models.training.dmc_full import DMCFullTask

    task = DMCFullTask.__new__(DMCFullTask)   # the loss alone, without a dataset
    from mixbridge.models.console import TorchConsole
    from mixbridge.models.losses import AudioFeatureLoss, sum_and_difference_mrstft_loss

    task.sample_rate, task.weights = SAMPLE_RATE, {"param": 1.0, "stft": 1.0, "feature": 1.0}
    task.console, task.stft = TorchConsole(SAMPLE_RATE, check_ranges=False), sum_and_difference_mrstft_loss()
    task.features = AudioFeatureLoss(SAMPLE_RATE)
    strip, master = draw_session(np.random.default_rng(2), 3)
    batch = {"features": torch.zeros(1, 3, 16, 4), "reference": torch.zeros(1, 32, 4),
             "audio": torch.randn(1, 3, 2, 22050, generator=torch.Generator().manual_seed(0)) * 0.1,
             "strip_u": torch.from_numpy(strip)[None], "master_u": torch.from_numpy(master)[None],
             "mask": torch.ones(1, 3)}
    out = task.losses(batch, model=lambda f, r, m: (batch["strip_u"], batch["master_u"]))
    # identical renders: the MR-STFT's log-magnitude term sees float32 round-off of two equal float64 paths
    # cast to float32 (STFT_ZERO_TOL); the feature MSE is of identical tensors (FEATURE_ZERO_TOL)
    assert float(out["param"]) == 0.0 and float(out["stft"]) < STFT_ZERO_TOL
    assert float(out["feature"]) < FEATURE_ZERO_TOL


def test_predict_from_reference_trims_to_the_common_loudness_and_keeps_delivery():
    from mixbridge.loudness import integrated_lufs
    from mixbridge.models.style_transfer import predict_from_reference

    rng = np.random.default_rng(3)
    stems = [rng.standard_normal((2, SAMPLE_RATE)).astype(np.float32) * a for a in (0.01, 0.1, 0.3)]
    names = ["a", "b", "c"]
    master = MASTER_BUS.defaults()
    master["loudness"]["target_lufs"] = -16.0
    init = Session(SAMPLE_RATE, [Track(n, f"{n}.wav", CHANNEL_STRIP.defaults()) for n in names], Master(master), {})
    ref = rng.standard_normal((1, SAMPLE_RATE)).astype(np.float32) * 0.1   # mono: side silent
    out = predict_from_reference(stems, ref, SAMPLE_RATE, init, model=tiny())
    for s, t in zip(stems, out.tracks):
        expected = COMMON_LUFS - integrated_lufs(s.astype(np.float64), SAMPLE_RATE)
        assert abs(t.params["trim"]["gain_db"] - expected) <= LUFS_TOL
        CHANNEL_STRIP.validate(t.params, t.name)
    assert out.master.params["loudness"]["target_lufs"] == -16.0
    assert out.master.params["limiter"] == master["limiter"]
    assert "dmc_full" in out.provenance and init.tracks[0].params["trim"]["gain_db"] == 0.0


def test_the_committed_configs_build_within_the_size_limit():
    from pathlib import Path

    from mixbridge.models.training.dmc_full import load_dmc_full_config

    paths = sorted((Path(__file__).resolve().parents[2] / "models" / "configs").glob("full_dmc*.yaml"))
    assert [p.name for p in paths][:1] == ["full_dmc.yaml"], paths
    for path in paths:   # the first stage and its fine-tune
        cfg = load_dmc_full_config(path)
        net = build_architecture("dmc-full", cfg["model_args"])
        assert sum(p.numel() for p in net.parameters()) <= MAX_PARAMS, path


def test_train_command_parses_the_shared_training_options():
    import argparse

    from mixbridge.models.dmc_full_cli import add_dmc_full_command

    parser = argparse.ArgumentParser()
    add_dmc_full_command(parser.add_subparsers(dest="what"))
    args = parser.parse_args(["dmc-full", "--data", "DS", "-o", "RUN", "--max-steps", "3", "--threads", "1", "-q"])
    assert args.command == "train dmc-full" and args.max_steps == 3 and args.quiet and callable(args.func)


def test_shipped_weights_load_small_and_with_their_card():
    from pathlib import Path

    from mixbridge.models.checkpoint import load_checkpoint

    root = Path(__file__).resolve().parents[2] / "models" / "mixers"
    if not (root / "dmc_full.safetensors").exists():
        pytest.skip("no shipped dmc-full weights")
    net, record = load_checkpoint(root / "dmc_full.json", expect_sample_rate=SAMPLE_RATE)
    assert net.architecture == "dmc-full" and record["training_state"] is None
    assert (root / "dmc_full.safetensors").stat().st_size < 1_000_000   # small enough to commit
    assert record["extra"]["dataset"]["root"] == "composer"
    card = (root / "dmc_full.md").read_text()
    assert "models/configs/full_dmc.yaml" in card and "## Test split (held out)" in card


def test_missing_weights_name_the_train_command(monkeypatch, tmp_path):
    from mixbridge.models import checkpoint as checkpoint_module
    from mixbridge.models.style_transfer import StyleTransferError, load_dmc_full

    monkeypatch.setattr(checkpoint_module, "SHIPPED_MIXERS_DIR", tmp_path / "none")
    with pytest.raises(StyleTransferError, match="mixbridge train dmc-full"):
        load_dmc_full()


def test_a_trim_beyond_its_range_is_limited_with_a_notice():
    from mixbridge.models.style_transfer import predict_from_reference

    rng = np.random.default_rng(4)
    stems = [rng.standard_normal((2, SAMPLE_RATE)).astype(np.float32) * a for a in (0.1, 0.001)]  # ~-57 LUFS
    init = Session(SAMPLE_RATE, [Track(n, f"{n}.wav", CHANNEL_STRIP.defaults()) for n in "ab"],
                   Master(MASTER_BUS.defaults()), {})
    out = predict_from_reference(stems, stems[0], SAMPLE_RATE, init, model=tiny())
    trim_max = CHANNEL_STRIP.param("trim.gain_db").max
    assert out.tracks[1].params["trim"]["gain_db"] == trim_max
    assert any("stem 2" in n and "limited" in n for n in out.provenance["dmc_full"]["notices"])
