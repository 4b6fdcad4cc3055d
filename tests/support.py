"""Helpers that test files import (fixtures stay in ``conftest.py``): the synthetic multitrack
writer and the VST availability check.

* ``write_multitrack``: five real WAV stems (kick, snare, bass, lead, stereo pad) at
  ``SAMPLE_RATE`` with musical level ranges (the ``multitrack`` fixtures of ``conftest.py`` use it).
* ``needs_vst``: skips a test, with ``VST_SKIP_REASON``, where DawDreamer or the Debian VST2
  plugins are missing; ``conftest.py`` gives every test it skips the ``vst`` marker too.
* ``run_python``: runs code in a fresh interpreter (what a module imports, a CLI without torch).
* ``torch_threads``: torch's intra-op thread count for a block (the ``one_torch_thread`` fixture).
* ``make_identity_tcn``: sets a TCN's weights so that it passes its input through exactly.

Import as ``from tests.support import needs_vst`` from any folder of ``tests/``.
"""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


def vst_available() -> bool:
    """DawDreamer, the vst backend and the Debian zam-plugins VST2s are installed."""
    return (importlib.util.find_spec("dawdreamer") is not None
            and Path("/usr/lib/vst/ZamComp-vst.so").exists()
            and Path("/usr/lib/vst/ZamEQ2-vst.so").exists()
            and importlib.util.find_spec("mixbridge.plugins.vst") is not None)


VST_SKIP_REASON = "needs dawdreamer and the Debian zam-plugins/dragonfly VST2s"
needs_vst = pytest.mark.skipif(not vst_available(), reason=VST_SKIP_REASON)


def run_python(code: str, *, env: Mapping[str, str] | None = None,
               timeout: float | None = 300) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with ``python -c`` in a fresh interpreter (this venv's); stdout and stderr are
    captured as text. ``timeout`` is in seconds (``subprocess.TimeoutExpired`` past it)."""
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, then restore the previous count. One thread
    is faster for tiny tensors on a busy 2-core box, and repeats a worker's summation order."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def make_identity_tcn(model: Any) -> Any:
    """Make a ``mixbridge.models.tcn.TCN`` a pure (cropped) wire, ``y = x`` exactly, and return it
    in eval mode: every conv and FiLM adaptor zero (the block's PReLU sees 0), every residual gain
    1, the output 1x1 conv picks input channel 0."""
    import torch

    with torch.no_grad():
        for b in model.blocks:
            b.conv.weight.zero_()
            b.conv.bias.zero_()
            b.film.adaptor.weight.zero_()
            b.film.adaptor.bias.zero_()
            b.res.weight.fill_(1.0)
        model.output.weight.zero_()
        model.output.weight[0, 0] = 1.0
        model.output.bias.zero_()
    return model.eval()


def _have_demo_sources() -> bool:
    from mixbridge.plugins.datagen.demo import sources

    return (shutil.which("fluidsynth") is not None
            and all(p.is_file() for p in sources.FREEDOOM_WADS)
            and sources.GM_SOUNDFONT.is_file()
            and all(p.is_file() for p in sources.DRUM_KITS.values()))


#: Whether the demo and composer builders can render here (fluidsynth and the Debian sources).
HAVE_DEMO_SOURCES = _have_demo_sources()
#: Skip a test that renders Freedoom songs where the apt packages are missing.
needs_demo_sources = pytest.mark.skipif(
    not HAVE_DEMO_SOURCES,
    reason="needs fluidsynth, freedoom, fluid-soundfont-gm and avldrums.lv2-soundfont (apt packages)",
)
