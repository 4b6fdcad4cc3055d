"""What every test folder shares: a small synthetic multitrack and the VST availability check.

* ``write_multitrack`` / the ``multitrack`` fixtures: five real WAV stems (kick, snare, bass,
  lead, stereo pad) at ``SAMPLE_RATE`` with musical level ranges, written once per session;
  ``multitrack_copy`` is a per-test copy that a test may modify.
* ``needs_vst``: skips a test, with the reason, where DawDreamer or the Debian VST2 plugins are
  missing; every test it skips also carries the ``vst`` marker (``-m "not vst"`` deselects them).

Markers (declared in pyproject ``[tool.pytest.ini_options]``, ``--strict-markers``): ``vst``,
``jack``, ``ardour`` (need those programs) and ``slow`` (over 20 s on a 2-core CPU; ``make test``
runs them, ``-m "not slow"`` leaves them out).
"""
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
    """The session's 6 s multitrack folder (read-only: copy it with ``multitrack_copy`` to modify)."""
    return write_multitrack(tmp_path_factory.mktemp("stems") / "song")


@pytest.fixture
def multitrack_copy(multitrack, tmp_path) -> Path:
    """A private copy of ``multitrack`` in the test's ``tmp_path``."""
    dst = tmp_path / "song"
    shutil.copytree(multitrack, dst)
    return dst


def vst_available() -> bool:
    """DawDreamer, the vst backend and the Debian zam-plugins VST2s are installed."""
    return (importlib.util.find_spec("dawdreamer") is not None
            and Path("/usr/lib/vst/ZamComp-vst.so").exists()
            and Path("/usr/lib/vst/ZamEQ2-vst.so").exists()
            and importlib.util.find_spec("mixbridge.plugins.vst") is not None)


VST_SKIP_REASON = "needs dawdreamer and the Debian zam-plugins/dragonfly VST2s"
needs_vst = pytest.mark.skipif(not vst_available(), reason=VST_SKIP_REASON)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give every test that ``needs_vst`` guards the ``vst`` marker too."""
    for item in items:
        if any(m.kwargs.get("reason") == VST_SKIP_REASON for m in item.iter_markers("skipif")):
            item.add_marker(pytest.mark.vst)
