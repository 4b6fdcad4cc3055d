"""The ``mixwaveunet`` direct mixer (mixbridge.models.mixwaveunet) and its training data: closed-form oracles.

* the slots: each stem lands in its role's slot, stems of one slot are summed, empty slots are zero;
* the network keeps the length of any input (padding to a multiple of 2 ** levels and cropping back);
* the chunked run of a long input equals the whole run for a pointwise network (the cross-fades sum to 1);
* the training target of an excerpt crop is the sum of the trimmed stems through the composer's fader
  gains and the console's pan law (closed form for stems with equal channels), i.e. ``target/mix.wav``
  times the trim;
* training lowers the validation loss; the registry's contract on the shipped weights.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mixbridge.audio import load_stems, read_audio
from tests.contracts import MixerContract
from tests.models.test_dae import write_direct_composer

torch.set_num_threads(1)

SAMPLE_RATE = 16000
TINY = dict(n_levels=2, base_channels=4, down_kernel=5, up_kernel=3)
#: Float32 sums of the same products in another order (relative to the signal's peak).
SUM_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def direct_ds(tmp_path_factory):
    return write_direct_composer(tmp_path_factory.mktemp("wun_composer"), roles=("kick", "guitar", "guitar"))


@pytest.fixture(scope="module")
def stems(multitrack):
    return load_stems(multitrack)


def test_every_role_has_one_slot_and_slots_sum_their_tracks():
    from mixbridge.models.mixwaveunet import N_SLOTS, SLOTS, slot_input, slot_of_role
    from mixbridge.roles import ROLES

    assert sorted(r for slot in SLOTS for r in slot) == sorted(ROLES) and N_SLOTS == 8
    assert slot_of_role(None) == N_SLOTS - 1 and slot_of_role("kick") == 0 and slot_of_role("strings") == 6
    rng = np.random.default_rng(0)
    audio = rng.standard_normal((3, 2, 50)).astype(np.float32)
    x = slot_input(audio, ["guitar", "kick", "guitar"]).reshape(N_SLOTS, 2, 50)
    np.testing.assert_array_equal(x[0], audio[1])
    np.testing.assert_allclose(x[4], audio[0] + audio[2], rtol=0, atol=1e-6)
    assert not np.any(np.delete(x, [0, 4], axis=0))


@pytest.mark.parametrize("n", [1, 63, 1000, 1023])
def test_the_network_keeps_the_length(n):
    from mixbridge.models.mixwaveunet import MixWaveUNet

    net = MixWaveUNet(**TINY, sample_rate=SAMPLE_RATE)
    assert net(torch.randn(2, 16, n)).shape == (2, 2, n)


def test_chunked_run_equals_the_whole_run_for_a_pointwise_network(monkeypatch):
    from mixbridge.models import mixwaveunet as mw

    monkeypatch.setattr(mw, "CHUNK_SAMPLES", 1000)
    monkeypatch.setattr(mw, "CHUNK_OVERLAP", 100)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 4321)).astype(np.float32)

    def net(t):   # pointwise: the same output whole or in chunks
        return 0.5 * t[:, :2] - 0.25 * t[:, 2:4]

    whole = net(torch.from_numpy(x)[None])[0].numpy()
    assert np.max(np.abs(mw.run_chunked(net, x) - whole)) <= SUM_TOLERANCE * np.max(np.abs(whole))


def test_the_target_is_the_trimmed_stems_through_the_composer_faders_and_pans(direct_ds):
    from mixbridge.models.mixwaveunet import N_SLOTS, slot_of_role
    from mixbridge.models.training.direct import SlotCrops, stem_trim
    from mixbridge.plugins.datagen.composer import read_composer_dataset

    ds = read_composer_dataset(direct_ds)
    data = SlotCrops(ds.split("train"), crop_s=0.5, random_crop=True, seed=0)
    for i in (0, 2):
        ex, item = data.excerpts[i], data[i]
        x, y, start = item["x"].numpy().reshape(N_SLOTS, 2, -1), item["y"].numpy(), item["start"]
        n = y.shape[-1]
        expected = np.zeros((2, n))
        slots = np.zeros_like(x)
        for k, f in enumerate(ex.track_files):
            stem = read_audio(ex.stems_dir / f)[0][:, start:start + n] * stem_trim(ex, k)
            slots[slot_of_role(ex.roles[k])] += stem
            g = 10.0 ** (ex.target_gain_db[k] / 20.0)
            theta = (ex.target_pan[k] + 1.0) * math.pi / 4.0
            expected += math.sqrt(2) * g * np.stack([math.cos(theta) * stem[0], math.sin(theta) * stem[1]])
        peak = np.max(np.abs(expected))
        assert np.max(np.abs(x - slots)) <= SUM_TOLERANCE * np.max(np.abs(slots))
        assert np.max(np.abs(y - expected)) <= SUM_TOLERANCE * peak
        # one input level per excerpt: the target is target/mix.wav times the trim
        mix = read_audio(ex.target_mix_path)[0][:, start:start + n] * stem_trim(ex, 0)
        assert np.max(np.abs(y - mix)) <= SUM_TOLERANCE * peak


def test_training_lowers_the_validation_loss_and_the_mixer_runs_it(direct_ds, tmp_path):
    from mixbridge.models.mixers import get_mixer
    from mixbridge.models.training.direct import train_mixwaveunet
    from mixbridge.models.training.mixing import ship_mixer
    from mixbridge.plugins.datagen.composer import read_composer_dataset

    s = train_mixwaveunet(direct_ds, tmp_path / "run", model_args=TINY, batch_size=2, crop_s=0.25,
                          learning_rate=3e-3, max_epochs=8, progress=False)
    assert s["epoch"] == 8
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    head = rows[0].split(",")
    val = [float(r.split(",")[head.index("val_loss")]) for r in rows[1:]]
    assert min(val[1:]) < val[0]
    path = ship_mixer(tmp_path / "run", tmp_path / "ship" / "mixwaveunet")
    ex = read_composer_dataset(direct_ds).split("val")[0]
    dm = get_mixer("mixwaveunet", checkpoint=str(path)).mix(load_stems(ex.stems_dir,
                                                                       roles=dict(zip(ex.track_names, ex.roles))))
    assert dm.audio.shape == (2, read_audio(ex.target_mix_path)[0].shape[1]) and np.all(np.isfinite(dm.audio))
    assert dm.session.provenance["direct"] is True


class TestMixWaveUNetMixer(MixerContract):
    """The registry's contract on the shipped ``mixwaveunet`` weights (models/mixers/mixwaveunet.*)."""

    mixer_name = "mixwaveunet"


def test_the_committed_config_builds():
    from pathlib import Path

    from mixbridge.models.mixwaveunet import MixWaveUNet
    from mixbridge.models.training.data import recipe_defaults
    from mixbridge.models.training.direct import load_mixwaveunet_config, train_mixwaveunet

    cfg = load_mixwaveunet_config(Path(__file__).resolve().parents[2] / "models" / "configs" / "mixwaveunet.yaml")
    assert set(cfg) <= set(recipe_defaults(train_mixwaveunet))
    assert MixWaveUNet(**cfg["model_args"]).config()["n_levels"] == 5


def test_the_train_command_trains_and_ships(direct_ds, tmp_path, capsys):
    from mixbridge.app.cli import main

    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("model_args: {n_levels: 2, base_channels: 4, down_kernel: 5, up_kernel: 3}\n"
                   "crop_s: 0.25\nbatch_size: 2\nmax_epochs: 2\n")
    assert main(["train", "mixwaveunet", "--data", str(direct_ds), "--config", str(cfg), "-o", str(tmp_path / "run"),
                 "-q", "--ship", str(tmp_path / "ship" / "wun")]) == 0
    out = capsys.readouterr().out
    assert "stopped (max_epochs) after epoch 2" in out and f"shipped {tmp_path / 'ship' / 'wun.json'}" in out
    assert (tmp_path / "ship" / "wun.safetensors").is_file()
