"""Shared fixtures: small synthetic multitracks written as real WAV files."""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SAMPLE_RATE = 44100


def write_multitrack(folder: Path, seconds: float = 6.0, sample_rate: int = SAMPLE_RATE, seed: int = 0) -> Path:
    """Five stems (kick, snare, bass, lead, stereo pad) with musical level ranges."""
    folder.mkdir(parents=True, exist_ok=True)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    rng = np.random.default_rng(seed)
    kick = np.zeros(n)
    for s in range(0, n, sample_rate // 2):
        m = min(n - s, 8000)
        tt = np.arange(m) / sample_rate
        kick[s:s + m] += 0.9 * np.sin(2 * np.pi * 55 * tt) * np.exp(-tt * 20)
    snare = np.zeros(n)
    for s in range(sample_rate // 4, n, sample_rate // 2):
        m = min(n - s, 6000)
        snare[s:s + m] += rng.standard_normal(m) * np.exp(-np.arange(m) / sample_rate * 30) * 0.4
    bass = 0.3 * np.sin(2 * np.pi * 82.4 * t)
    lead = 0.2 * np.sin(2 * np.pi * 440 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.5 * t))
    pad = np.stack([0.1 * np.sin(2 * np.pi * 220 * t), 0.1 * np.sin(2 * np.pi * 221 * t)])
    for name, x in (("kick", kick), ("snare", snare), ("bass", bass), ("lead_vox", lead)):
        sf.write(folder / f"{name}.wav", x.astype(np.float32), sample_rate, subtype="FLOAT")
    sf.write(folder / "pad.wav", pad.T.astype(np.float32), sample_rate, subtype="FLOAT")
    return folder


@pytest.fixture(scope="session")
def multitrack(tmp_path_factory) -> Path:
    return write_multitrack(tmp_path_factory.mktemp("stems") / "song")


@pytest.fixture
def multitrack_copy(multitrack, tmp_path) -> Path:
    dst = tmp_path / "song"
    shutil.copytree(multitrack, dst)
    return dst


def vst_available() -> bool:
    return (importlib.util.find_spec("dawdreamer") is not None
            and Path("/usr/lib/vst/ZamComp-vst.so").exists()
            and Path("/usr/lib/vst/ZamEQ2-vst.so").exists()
            and importlib.util.find_spec("mixbridge.plugins.vst") is not None)


needs_vst = pytest.mark.skipif(not vst_available(), reason="needs dawdreamer and the Debian zam-plugins/dragonfly VST2s")
