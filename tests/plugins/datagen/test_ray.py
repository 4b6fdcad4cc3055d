"""The generator on a local Ray instance: same bytes as a local run, crashes isolated, Ray shut down."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import soundfile as sf

from mixbridge.plugins.datagen.effect import effect_config
from mixbridge.plugins.datagen.format import Dataset
from mixbridge.plugins.datagen.runner import generate
from mixbridge.plugins.datagen.verify import verify

pytestmark = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs ray (pip install ray==2.40.0)")
SAMPLE_RATE = 44100


@pytest.fixture
def local_ray():
    """A local Ray instance with 2 CPUs, always shut down afterwards."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def test_ray_matches_local_and_isolates_a_crash(tmp_path, local_ray):
    src = tmp_path / "src"
    src.mkdir()
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    sf.write(src / "a.wav", (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), SAMPLE_RATE, subtype="FLOAT")
    cfg = effect_config(str(src), chain="eq,compressor", n=8, seed=5, patch_s=0.1, shard_size=4)
    s = generate(cfg, tmp_path / "ray", workers=2, executor="ray", progress=False, faults={1: "crash"},
                 max_failure_fraction=0.5)
    assert s.examples_ok == 7 and s.failures == {"crash": 1} and s.executor == "ray"
    assert verify(tmp_path / "ray", max_failure_fraction=0.5).ok
    [fail] = [f for r in Dataset.open(tmp_path / "ray").records for f in r.failures]
    assert fail["index"] == 1 and "Ray actor died" in fail["message"] and "eq" in fail["params"]["params"]
    generate(cfg, tmp_path / "local", workers=0, progress=False)
    # the block without the crash is byte-identical to the local run
    name = "shards/shard-00000004-00000008.npz"
    assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    assert local_ray.is_initialized()  # the generator left the caller's Ray instance running


def test_ray_without_an_address_starts_a_loopback_instance_and_shuts_it_down(tmp_path):
    """No --address: the generator starts its own local Ray (bound to 127.0.0.1) and stops it."""
    import ray

    src = tmp_path / "src"
    src.mkdir()
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    sf.write(src / "a.wav", (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), SAMPLE_RATE, subtype="FLOAT")
    cfg = effect_config(str(src), chain="eq", n=2, seed=1, patch_s=0.1, shard_size=2)
    s = generate(cfg, tmp_path / "ray", workers=1, executor="ray", progress=False)
    assert s.examples_ok == 2 and verify(tmp_path / "ray").ok
    assert not ray.is_initialized()
