"""The mastering benchmark (models/master_bench.py, scripts/bench_mastering.py): the independent degradation's
closed forms and a smoke run of the script on synthetic masters."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from mixbridge.loudness import integrated_lufs
from mixbridge.models import master_bench as mb

SAMPLE_RATE = 44100
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_mastering.py"


def _response(b: np.ndarray, a: np.ndarray, z: complex) -> complex:
    return complex(np.polyval(b[::-1], 1 / z) / np.polyval(a[::-1], 1 / z))


@pytest.mark.parametrize("gain_db", [-4.0, 3.0])
def test_first_order_shelves_have_their_gain_at_dc_and_nyquist(gain_db):
    g = 10 ** (gain_db / 20)
    b, a = mb.first_order_shelf(gain_db, 200.0, SAMPLE_RATE, "low")
    assert abs(_response(b, a, 1.0)) == pytest.approx(g, rel=1e-12)
    assert abs(_response(b, a, -1.0)) == pytest.approx(1.0, rel=1e-12)
    b, a = mb.first_order_shelf(gain_db, 4000.0, SAMPLE_RATE, "high")
    assert abs(_response(b, a, 1.0)) == pytest.approx(1.0, rel=1e-12)
    assert abs(_response(b, a, -1.0)) == pytest.approx(g, rel=1e-12)
    with pytest.raises(ValueError, match="low' or 'high"):
        mb.first_order_shelf(gain_db, 4000.0, SAMPLE_RATE, "bell")


def test_transient_expansion_raises_onsets_and_leaves_steady_level_alone():
    step = SAMPLE_RATE // 2
    x = np.full((2, 2 * SAMPLE_RATE), 0.01)
    x[:, step:] = 0.5                                              # a level step at 0.5 s
    g = mb.transient_gain_db(x, SAMPLE_RATE, amount=0.5)
    assert g.max() <= 0.5 * mb.EXPANSION_MAX_DB + 1e-12
    assert g[:step] == pytest.approx(0.0, abs=1e-9)                # steady from the first sample on
    assert g[step + int(0.005 * SAMPLE_RATE)] > 3.0                # the onset is raised
    settled = int(12 * mb.SLOW_TAU_S * SAMPLE_RATE)                # exp(-12): the slow average has caught up
    assert g[step + settled] == pytest.approx(0.0, abs=1e-3)


def test_independent_degradation_lands_at_minus_24_lufs_and_is_seeded():
    items = mb.synthetic_items(2, seconds=3.0)
    again = mb.synthetic_items(2, seconds=3.0)
    for it, it2 in zip(items, again):
        assert integrated_lufs(it.input, it.sample_rate) == pytest.approx(mb.INDEPENDENT_LUFS, abs=1e-4)
        assert max(abs(it.degradation["low_shelf_db"]), abs(it.degradation["high_shelf_db"])) <= mb.SHELF_DB
        np.testing.assert_array_equal(it.input, it2.input)
    assert items[0].degradation != items[1].degradation


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="known"):
        mb.run_bench(mb.synthetic_items(1, seconds=1.0), ["gain-limiter", "auto-eq"])


def test_quick_bench_runs_on_synthetic_and_premaster_inputs(tmp_path, capsys):
    """The script's smoke run: a table and JSON for every requested method; matchering without its interpreter,
    and models without weights, are reported (skipped / missing), never crash the run."""
    from tests.models.test_master_unet import make_premaster_dataset

    data = make_premaster_dataset(tmp_path / "ds")
    spec = importlib.util.spec_from_file_location("bench_mastering", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "bench"
    argv = ["--quick", "--synthetic", "--premaster", str(data), "-o", str(out), "-q",
            "--methods", "input,gain-limiter,rules,unet,matchering", "--unet", str(tmp_path / "no-such-unet")]
    assert module.main(argv) == 0
    results = json.loads((out / "bench.json").read_text())
    methods = results["methods"]
    assert set(methods) == {"input", "gain-limiter", "rules", "unet", "matchering"}
    assert methods["matchering"]["status"] == "missing" and "--matchering-python" in methods["matchering"]["reason"]
    assert methods["unet"]["status"] == "missing"
    gl = methods["gain-limiter"]["rows"]
    assert set(gl) == {"independent", "premaster", "all"} and gl["all"]["files"] == 4
    assert gl["all"]["lufs_error_lu"] <= 0.1 and gl["all"]["over_ceiling"] == 0
    assert methods["input"]["rows"]["all"]["cpu_s_per_min"] is None
    md = (out / "bench.md").read_text()
    assert "| input, untouched |" in md and "## premaster" in md and "skipped" in md
    # --resume reuses the complete methods of the earlier call instead of running them again
    assert module.main(argv + ["--resume"]) == 0
    again = json.loads((out / "bench.json").read_text())["methods"]
    assert again["gain-limiter"]["reused"] and again["gain-limiter"]["rows"] == gl
    assert not again["matchering"].get("reused")
    assert "(reused)" in (out / "bench.md").read_text()
