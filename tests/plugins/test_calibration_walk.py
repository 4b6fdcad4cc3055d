"""The unseen-plugin walk, end to end through the CLI, with no file edited by hand (issue 14).

LSP's mono compressor ships with no map: ``plugins calibrate --processor compressor`` writes one,
``datagen effect`` renders paired data through it, ``train proxy`` trains the grey-box proxy
(one step here: the walk, not the fit, is under test; the README gives the 12-minute run and its
figures) and ``compare`` measures the proxy against the plugin with the semantic contract on both
sides. The plugin's side of the contract is the physics check: with the calibrated
``fresh_instance_per_call`` every row of its static curve matches the schema within the contract's
tolerance (before, the row after a loud one read 1.56 dB where 3 dB is expected, because the
plugin carried the previous render's gain reduction). About 25 s of CPU (slow: 110 s wall on the
shared 2-core machine).
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from mixbridge.app.cli import main

LSP_MONO = Path("/usr/lib/vst/lsp-plugins/compressor-mono.so")
GREYBOX_CONFIG = Path(__file__).resolve().parents[2] / "models" / "configs" / "proxy_greybox.yaml"
_HAVE = (LSP_MONO.exists() and importlib.util.find_spec("dawdreamer") is not None
         and importlib.util.find_spec("torch") is not None)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not _HAVE, reason="needs dawdreamer, torch and the Debian lsp-plugins-vst VST2s "
                                         "(/usr/lib/vst/lsp-plugins/compressor-mono.so)"),
]

#: The README's calibrate command for LSP's mono compressor (its bindings and held settings).
CALIBRATE_ARGS = ["--processor", "compressor", "--set", "threshold_db=al", "--set", "ratio=cr",
                  "--set", "attack_ms=at", "--set", "release_ms=rt", "--set", "knee_db=kn:lsp_knee_from_width",
                  "--set", "makeup_db=mk", "--fixed", "cm=Down", "--fixed", "scm=Peak", "--fixed", "sla=0",
                  "--fixed", "g_in=0", "--fixed", "g_out=0", "--fixed", "cwt=0"]
SAMPLE_RATE = 44100
#: The greybox config's patch length (patch_samples 88200 at 44.1 kHz).
PATCH_S = 2.0


def _steps(path: Path, seconds: float = 6.0) -> None:
    """A 1 kHz sine stepping -50 / -30 / -10 / -3 dBFS every 0.5 s (what a compressor's detector has to follow)."""
    import soundfile as sf

    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    levels = np.array([-50.0, -30.0, -10.0, -3.0])[(t // 0.5).astype(int) % 4]
    sf.write(path, (10 ** (levels / 20) * np.sin(2 * np.pi * 1000 * t)).astype(np.float32), SAMPLE_RATE,
             subtype="FLOAT")


def test_calibrate_datagen_train_compare_runs_without_a_hand_edit(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    walk = tmp_path / "walk"
    src = walk / "src"
    src.mkdir(parents=True)
    _steps(src / "steps.wav")
    map_path = walk / "lsp_comp_mono.json"
    assert main(["plugins", "calibrate", "compressor-mono", *CALIBRATE_ARGS, "-o", str(map_path)]) == 0
    assert json.loads(map_path.read_text())["fresh_instance_per_call"] is True
    data = walk / "data"
    assert main(["datagen", "effect", "--plugin", str(map_path), "--backend", "vst", "--source", str(src),
                 "--channels", "1", "--n", "16", "--patch-s", str(PATCH_S), "--seed", "21", "--workers", "0",
                 "-q", "-o", str(data)]) == 0
    assert main(["datagen", "verify", str(data)]) == 0
    run = walk / "run"
    assert main(["train", "proxy", "--data", str(data), "--config", str(GREYBOX_CONFIG), "--max-steps", "1",
                 "-q", "-o", str(run)]) == 0
    report = walk / "report"
    capsys.readouterr()
    assert main(["compare", "--plugin", str(map_path), "--proxy", str(run / "best.json"), "--input", str(src),
                 "--random", "2", "--patch-s", str(PATCH_S), "-o", str(report)]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["overall"]["n"] == 2 and np.isfinite(metrics["overall"]["esr_pooled"])
    static = [r for r in metrics["contract"] if r["quantity"] == "compressor static gain"]
    assert len(static) == 3 and all(r["plugin_status"] == "pass" for r in static), static
    assert "## Semantic contract, plugin and proxy" in (report / "report.md").read_text()
