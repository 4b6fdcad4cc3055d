"""Tests of proxy training: configs build, the CLI trains a few steps, resumes exactly, refuses bad input."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from mixbridge.app.cli import main
from mixbridge.models import registry
from mixbridge.models.checkpoint import load_checkpoint
from mixbridge.models.train import default_config, load_train_config, ship_proxy, train_proxy
from mixbridge.models.training import (
    TrainConfigError,
    build_model_from_config,
    epoch_order,
    global_batches,
    shard_batches,
    split_indices,
)
from mixbridge.plugins.datagen.effect import effect_config
from mixbridge.plugins.datagen.runner import generate

SAMPLE_RATE = 44100
CONFIGS = sorted((Path(__file__).resolve().parents[2] / "models" / "configs").glob("proxy_*.yaml"))
TINY = next(p for p in CONFIGS if p.name == "proxy_tiny.yaml")
#: A resumed run repeats the uninterrupted run's arithmetic exactly (same ops, same order, CPU).
RESUME_TOLERANCE = 0.0
#: One Adam step at learning rate 1e-12 moves a weight by at most about 1e-12.
INIT_TOLERANCE = 1e-9


def compressor_dataset(base: Path) -> Path:
    """8 mono 0.1 s examples of the builtin compressor, knee fixed at 0 dB, in ``base/ds``."""
    src = base / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    sig = 0.5 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)
    sf.write(src / "a.wav", sig.astype(np.float32), SAMPLE_RATE, subtype="FLOAT")
    cfg = effect_config(str(src), chain="compressor", n=8, seed=1, patch_s=0.1, channels=1, shard_size=4,
                        param_specs=["compressor.knee_db=fixed:0"])
    generate(cfg, base / "ds", workers=0, progress=False)
    return base / "ds"


@pytest.fixture(scope="module")
def comp_ds(tmp_path_factory) -> Path:
    """:func:`compressor_dataset` once per module."""
    return compressor_dataset(tmp_path_factory.mktemp("train"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_committed_config_builds(path):
    kwargs = load_train_config(path)
    assert set(kwargs) <= set(default_config())
    model = build_model_from_config(kwargs.get("model", "tcn-rt"), kwargs.get("model_args"),
                                    schema=("eq", "compressor"), sample_rate=SAMPLE_RATE, channels=1)
    assert model.sample_rate == SAMPLE_RATE and model.n_inputs == 1
    assert model.n_params == 19
    x = torch.zeros(1, 1, model.receptive_field + 16)
    assert model(x, torch.full((1, 19), 0.5)).shape[-1] == model.output_length(x.shape[-1])


def test_shipped_recipe_is_the_micro_tcn():
    kwargs = load_train_config(next(p for p in CONFIGS if p.name == "proxy_micro_tcn.yaml"))
    model = build_model_from_config(kwargs["model"], kwargs["model_args"], schema=("compressor",),
                                    sample_rate=SAMPLE_RATE, channels=1)
    # 4 blocks, kernel 13, dilations 1, 10, 100, 1000: 1 + 12 * 1111 samples, causal
    assert model.dilations == [1, 10, 100, 1000]
    assert model.receptive_field == 13333 and model.latency_samples == 0 and model.causal


def test_config_with_unknown_key_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: tcn-tiny\nlearning_rat: 0.1\n")
    with pytest.raises(TrainConfigError, match="learning_rat"):
        load_train_config(bad)
    toml = tmp_path / "ok.toml"
    toml.write_text('model = "tcn-tiny"\nbatch_size = 3\n')
    assert load_train_config(toml) == {"model": "tcn-tiny", "batch_size": 3}


def test_model_args_may_not_contradict_the_dataset():
    with pytest.raises(TrainConfigError, match="sample_rate"):
        build_model_from_config("tcn-tiny", {"sample_rate": 48000}, schema=("compressor",),
                                sample_rate=SAMPLE_RATE, channels=1)


def test_split_is_disjoint_seeded_and_covers_everything():
    train, val = split_indices(100, 0.1, seed=3)
    assert len(val) == 10 and len(train) == 90 and not set(train) & set(val)
    assert sorted(train + val) == list(range(100))
    assert split_indices(100, 0.1, seed=3) == (train, val)
    with pytest.raises(TrainConfigError):
        split_indices(1, 0.1, seed=0)


def test_epoch_order_and_rank_shards():
    train = [1, 4, 5, 7]
    order = epoch_order(train, 10, seed=0, epoch=3)
    # back-to-back permutations: every example once before any repeats
    assert sorted(order[:4]) == sorted(order[4:8]) == train and set(order[8:]) <= set(train)
    assert order == epoch_order(train, 10, seed=0, epoch=3) != epoch_order(train, 10, seed=0, epoch=4)
    positions = list(range(10))
    assert shard_batches(positions, 3) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]  # one process: plain batches
    assert global_batches(positions, 2, world_size=2) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert shard_batches(positions, 2, rank=0, world_size=2) == [[0, 2], [4, 6], [8]]
    assert shard_batches(positions, 2, rank=1, world_size=2) == [[1, 3], [5, 7], [9]]
    # a last global batch smaller than the world is dropped: every rank steps together
    assert global_batches(list(range(9)), 2, world_size=2) == [[0, 1, 2, 3], [4, 5, 6, 7]]


def _log(run: Path) -> list[dict]:
    with open(run / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_cli_trains_checkpoints_and_resumes_exactly(comp_ds, tmp_path, capsys):
    straight = tmp_path / "straight"
    assert main(["train", "proxy", "--data", str(comp_ds), "--config", str(TINY), "--output", str(straight),
                 "--max-epochs", "2", "-q"]) == 0
    assert "stopped (max_epochs) after epoch 2" in capsys.readouterr().out
    rows = _log(straight)
    # tiny config: 8 examples, 2 for validation, batch 2 -> 3 steps per epoch
    assert [(int(r["epoch"]), int(r["step"]), int(r["examples"])) for r in rows] == [(1, 3, 6), (2, 6, 12)]
    for r in rows:
        assert np.isfinite(float(r["val_loss"])) and float(r["val_esr"]) >= 0.0

    split = tmp_path / "split"
    # the old spellings still work for one release, with a notice
    assert main(["train", "proxy", "--data", str(comp_ds), "--config", str(TINY), "--out", str(split),
                 "--max-epochs", "1", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "--out is deprecated" in err and "--no-progress is deprecated" in err
    rec = json.loads((split / "last.json").read_text())
    assert rec["progress"]["epoch"] == 1 and rec["progress"]["step"] == 3
    assert rec["training_state"]["optimizer"] == "Adam"
    assert rec["training_state"]["scheduler"] == "ReduceLROnPlateau"
    assert rec["config"]["causal"] is True and rec["sample_rate"] == SAMPLE_RATE
    assert rec["extra"]["dataset"]["param_dists"]["compressor.knee_db"]["kind"] == "fixed"
    # resume (config read back from the run folder) for the second epoch
    assert main(["train", "proxy", "--data", str(comp_ds), "-o", str(split), "--resume",
                 "--max-epochs", "2", "-q"]) == 0
    assert [int(r["step"]) for r in _log(split)] == [3, 6]
    a = load_file(str(straight / "last.safetensors"))
    b = load_file(str(split / "last.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.max(torch.abs(a[k] - b[k])).item() <= RESUME_TOLERANCE, k
    model, record = load_checkpoint(split / "best.json", expect_sample_rate=SAMPLE_RATE)
    assert record["model_name"] == "tcn-tiny-causal" and not model.training


def test_max_steps_stops_mid_epoch_and_a_resume_redoes_that_epoch(comp_ds, tmp_path):
    run = tmp_path / "run"
    s = train_proxy(comp_ds, run, **{**load_train_config(TINY), "max_steps": 2, "progress": False})
    assert s["stopped"] == "max_steps" and s["step"] == 2 and s["epoch"] == 0
    s = train_proxy(comp_ds, run, **{**load_train_config(TINY), "max_steps": 5, "progress": False,
                                     "resume": True})
    assert s["stopped"] == "max_steps" and s["step"] == 5 and s["epoch"] == 1


def test_a_wall_clock_budget_of_zero_stops_after_one_step_and_keeps_the_epoch_open(comp_ds, tmp_path):
    s = train_proxy(comp_ds, tmp_path / "run", **{**load_train_config(TINY), "max_minutes": 0.0, "progress": False})
    assert s["stopped"] == "max_minutes" and s["step"] == 1 and s["epoch"] == 0
    rows = _log(tmp_path / "run")
    assert [(int(r["epoch"]), int(r["step"])) for r in rows] == [(0, 1)]  # validated and saved, not counted
    assert set(rows[0]) == {"epoch", "step", "examples", "train_seconds", "lr", "train_loss", "train_l1", "train_stft",
                            "train_esr_term", "val_loss", "val_l1", "val_stft", "val_esr_term", "val_esr",
                            "examples_per_s", "best"}


def test_bad_runs_are_refused(comp_ds, tmp_path, capsys):
    run = tmp_path / "run"
    base = ["train", "proxy", "--data", str(comp_ds), "--config", str(TINY), "-o", str(run), "-q"]
    assert main(base + ["--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    assert main(base + ["--max-steps", "1"]) == 0
    assert main(base + ["--max-steps", "1"]) == 2
    assert "pass --resume" in capsys.readouterr().err
    other = tmp_path / "other.yaml"
    other.write_text(TINY.read_text().replace("batch_size: 2", "batch_size: 3"))
    assert main(["train", "proxy", "--data", str(comp_ds), "--config", str(other), "-o", str(run),
                 "--resume", "-q"]) == 2
    assert "batch_size" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(base + ["-o", str(tmp_path / "gpu"), "--device", "cuda"]) == 2
        assert "no CUDA device" in capsys.readouterr().err


def test_ship_proxy_writes_a_small_record_with_trained_ranges(comp_ds, tmp_path):
    run = tmp_path / "run"
    train_proxy(comp_ds, run, **{**load_train_config(TINY), "max_epochs": 1, "progress": False})
    dest = ship_proxy(run, comp_ds, tmp_path / "ship" / "comp")
    rec = json.loads(dest.read_text())
    assert rec["training_state"] is None and not (tmp_path / "ship" / "comp.optim.safetensors").exists()
    assert rec["extra"]["dataset"]["param_dists"]["compressor.knee_db"] == {"kind": "fixed", "u_lo": 0.0,
                                                                             "u_hi": 0.0}
    assert rec["extra"]["training"]["steps"] == 3 and rec["extra"]["train_config"]["model"] == "tcn-tiny-causal"
    model, _ = load_checkpoint(dest)
    assert model.config() == registry.create("tcn-tiny-causal", schema=("compressor",),
                                             sample_rate=SAMPLE_RATE).config()


def test_init_from_a_shipped_checkpoint_starts_from_its_weights(comp_ds, tmp_path, capsys):
    run = tmp_path / "run"
    train_proxy(comp_ds, run, **{**load_train_config(TINY), "max_epochs": 1, "progress": False})
    shipped = ship_proxy(run, comp_ds, tmp_path / "ship" / "comp")
    # a new run (e.g. on a GPU) starting from the shipped weights; Adam moves each weight by
    # about the learning rate per step, so with 1e-12 the trained weights stay the shipped ones
    train_proxy(comp_ds, tmp_path / "cont", **{**load_train_config(TINY), "max_steps": 1, "progress": False,
                                               "init_from": str(shipped), "learning_rate": 1e-12})
    a = load_file(str(tmp_path / "ship" / "comp.safetensors"))
    b = load_file(str(tmp_path / "cont" / "last.safetensors"))
    weights = [k for k in a if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert weights and all(torch.max(torch.abs(a[k] - b[k])).item() <= INIT_TOLERANCE for k in weights)
    other = tmp_path / "noncausal.yaml"
    other.write_text(TINY.read_text().replace("tcn-tiny-causal", "tcn-tiny"))
    assert main(["train", "proxy", "--data", str(comp_ds), "--config", str(other), "-o", str(tmp_path / "x"),
                 "--init", str(shipped), "-q"]) == 2
    assert "causal" in capsys.readouterr().err


SHIPPED = {"comp_builtin": ["compressor"], "zamcomp": ["compressor"], "eqcomp_builtin": ["eq", "compressor"]}
#: Shipped weights must stay small enough to commit.
MAX_SHIPPED_BYTES = 1_000_000


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_proxies_load_with_cards_and_trained_ranges(name):
    root = Path(__file__).resolve().parents[2] / "models" / "proxies"
    model, record = load_checkpoint(root / f"{name}.json", expect_sample_rate=SAMPLE_RATE)
    assert list(model.schema) == SHIPPED[name] and model.causal and model.latency_samples == 0
    assert (root / f"{name}.safetensors").stat().st_size < MAX_SHIPPED_BYTES
    assert record["training_state"] is None
    assert record["extra"]["dataset"]["param_dists"] == {}  # every parameter over its whole schema range
    card = (root / f"{name}.md").read_text()
    assert f"--proxy models/proxies/{name}.json" in card and "--input demo --random 48" in card
    assert "DEVICE=cuda" in card and "## Re-checked subset" in card
    with torch.no_grad():
        y = model(torch.zeros(1, 1, 512), torch.full((1, model.n_params), 0.5))
    assert torch.isfinite(y).all()
