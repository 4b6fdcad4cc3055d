"""Tests of the torch Dataset over mixbridge datasets: random access, crops, memory maps, loaders."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from mixbridge.models.dataset import MixbridgeDataset
from mixbridge.plugins.datagen.effect import effect_config
from mixbridge.plugins.datagen.errors import DatagenConfigError
from mixbridge.plugins.datagen.format import Dataset
from mixbridge.plugins.datagen.runner import generate
from mixbridge.plugins.datagen.shards import shard_memmaps

SAMPLE_RATE = 44100


@pytest.fixture(scope="module")
def effect_ds(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("ds")
    src = base / "src"
    src.mkdir()
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    sf.write(src / "a.wav", (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), SAMPLE_RATE, subtype="FLOAT")
    cfg = effect_config(str(src), chain="eq,compressor", n=10, seed=4, patch_s=0.1, shard_size=4)
    generate(cfg, base / "ds", workers=0, progress=False, faults={3: "nan"})  # index 3 fails: not an item
    return base / "ds"


def test_memmaps_equal_numpy_load(effect_ds):
    ds = Dataset.open(effect_ds)
    for rec in ds.records:
        maps = shard_memmaps(effect_ds / rec.shard)
        loaded = ds.load_shard(rec)
        assert set(maps) == set(loaded)
        for k in loaded:
            assert np.array_equal(np.asarray(maps[k]), loaded[k])


def test_items_random_access_and_crops(effect_ds):
    full = MixbridgeDataset(effect_ds)
    assert len(full) == 9
    assert [int(full[i]["index"]) for i in range(9)] == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    ds = Dataset.open(effect_ds)
    rows = {int(i): (rec, r) for rec in ds.records for r, i in enumerate(rec.indices)}
    rec, r = rows[5]
    arrays = ds.load_shard(rec)
    item = full[4]
    assert int(item["index"]) == 5
    assert torch.equal(item["input"], torch.from_numpy(arrays["input"][r]))
    assert torch.equal(item["target"], torch.from_numpy(arrays["output"][r]))
    assert item["params"].shape == (len(ds.config["param_names"]),) and item["params"].dtype == torch.float32
    crop = MixbridgeDataset(effect_ds, patch_samples=1000, seed=1)
    a = crop[4]
    assert a["input"].shape == (2, 1000)
    # input and target are cropped at the same offset: find it in the full input
    full_in = item["input"].numpy()
    offs = [o for o in range(full_in.shape[1] - 999) if np.array_equal(full_in[:, o:o + 1000], a["input"].numpy())]
    assert offs and torch.equal(a["target"], item["target"][:, offs[0]:offs[0] + 1000])
    assert torch.equal(crop[4]["input"], a["input"])  # same epoch, same crop
    centred = MixbridgeDataset(effect_ds, patch_samples=1000, random_patch=False)
    span = full.example_samples - 1000
    assert torch.equal(centred[4]["input"], item["input"][:, span // 2: span // 2 + 1000])
    batch = next(iter(torch.utils.data.DataLoader(crop, batch_size=3)))
    assert batch["input"].shape == (3, 2, 1000) and batch["params"].shape[0] == 3
    with pytest.raises(DatagenConfigError, match="patch_samples=100000 must be in 1..4410"):
        MixbridgeDataset(effect_ds, patch_samples=100000)


CLIP_S = 0.5
CLIP_SAMPLES = round(CLIP_S * SAMPLE_RATE)


def _wav(path: Path, seconds: float, channels: int, freq_hz: float) -> None:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    x = 0.2 * np.sin(2 * np.pi * freq_hz * t)
    sf.write(path, np.stack([x] * channels, axis=1).astype(np.float32), SAMPLE_RATE, subtype="FLOAT")


@pytest.fixture(scope="module")
def mixes_ds(tmp_path_factory) -> Path:
    """Two random mixes (with stems) of a 3-track song."""
    from mixbridge.plugins.datagen.mixes import mixes_config

    base = tmp_path_factory.mktemp("mixes")
    song = base / "songs" / "a"
    song.mkdir(parents=True)
    for k, name in enumerate(("kick", "bass", "lead_vox")):
        _wav(song / f"{name}.wav", 1.0, 1 + k % 2, 100.0 * (k + 1))
    cfg = mixes_config(str(base / "songs"), clip_s=CLIP_S, n=2, seed=0, store_stems=True)
    generate(cfg, base / "ds", workers=0, progress=False)
    return base / "ds"


@pytest.fixture(scope="module")
def demaster_ds(tmp_path_factory) -> Path:
    """Two demastering pairs of a stereo 'master'."""
    from mixbridge.plugins.datagen.demaster import demaster_config

    base = tmp_path_factory.mktemp("demaster")
    (base / "masters").mkdir()
    _wav(base / "masters" / "m.wav", 2.0, 2, 330.0)
    cfg = demaster_config(str(base / "masters"), clip_s=CLIP_S, n=2, seed=0, images=False)
    generate(cfg, base / "ds", workers=0, progress=False)
    return base / "ds"


def test_mixes_items_hold_stems_mix_params_and_masks(mixes_ds):
    ds = MixbridgeDataset(mixes_ds, patch_samples=1000, random_patch=False)
    assert ds.kind == "mixes" and len(ds) == 2
    item = ds[0]
    n_params = len(ds.config["param_names"])
    assert item["input"].shape == (3, 2, 1000) and item["target"].shape == (2, 1000)
    assert item["params"].shape == (3, n_params) and torch.isfinite(item["params"]).all()
    assert item["track_mask"].tolist() == [True, True, True] and item["master_params"].shape == (3,)
    # the stored mix, cropped at the centre like the stems
    span = CLIP_SAMPLES - 1000
    rec = Dataset.open(mixes_ds).records[0]
    stored = shard_memmaps(mixes_ds / rec.shard)["mix"][0, :, span // 2: span // 2 + 1000]
    assert np.array_equal(item["target"].numpy(), stored)


def test_demaster_items_pair_degraded_with_master(demaster_ds):
    ds = MixbridgeDataset(demaster_ds)
    assert ds.kind == "demaster" and len(ds) == 2
    item = ds[1]
    assert item["input"].shape == item["target"].shape == (2, CLIP_SAMPLES)
    assert item["params"].shape == (len(ds.config["param_names"]),)
    rec = Dataset.open(demaster_ds).records[0]
    arrays = shard_memmaps(demaster_ds / rec.shard)
    row = list(rec.indices).index(int(item["index"]))
    assert np.array_equal(item["input"].numpy(), arrays["degraded"][row])
    assert np.array_equal(item["target"].numpy(), arrays["master"][row])


def test_the_proxy_task_refuses_datasets_of_other_kinds(mixes_ds, demaster_ds):
    from mixbridge.models.training import ProxyTask, TrainConfigError

    for root in (mixes_ds, demaster_ds):
        with pytest.raises(TrainConfigError, match="proxies train on effect datasets"):
            ProxyTask(root, model="tcn-tiny-causal", patch_samples=1000)
