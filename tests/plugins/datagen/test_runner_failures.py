"""A job whose examples all fail stops early with the cause; ``verify`` reports the failure rate (issue 14, item 5).

Before: a map that could not render cost all 50 examples, the console printed only ``failures:
error 50`` and ``datagen verify`` said OK. Now the run stops after its first
:data:`~mixbridge.plugins.datagen.results.EARLY_STOP_FAILURES` examples all failed, naming the
first failure and the fix, and a rerun once the cause is fixed renders the job; ``verify`` prints
the failure rate against its limit and exits 1 above it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mixbridge.app.cli import main
from mixbridge.plugins.datagen.effect import effect_config
from mixbridge.plugins.datagen.errors import DatagenConfigError, DatagenFailuresError
from mixbridge.plugins.datagen.results import EARLY_STOP_FAILURES
from mixbridge.plugins.datagen.runner import generate
from mixbridge.plugins.datagen.verify import verify

SAMPLE_RATE = 44100
#: Examples of the jobs below: many more than the early stop, so running them all would show.
N_EXAMPLES = 40


def _write_stems(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    for k in range(2):
        x = 0.3 * np.sin(2 * np.pi * 110 * (k + 1) * t)
        sf.write(folder / f"stem{k}.wav", np.stack([x, x], axis=1).astype(np.float32), SAMPLE_RATE, subtype="FLOAT")
    return folder


def _cfg(source: Path, n: int = N_EXAMPLES) -> dict:
    return effect_config(str(source), chain="eq", n=n, seed=3, patch_s=0.1, shard_size=8)


@pytest.mark.parametrize("workers", [0, 1])
def test_a_job_whose_first_examples_all_fail_stops_naming_the_first_failure(tmp_path, workers):
    src = _write_stems(tmp_path / "src")
    root = tmp_path / "ds"
    with pytest.raises(DatagenFailuresError, match=rf"the first {EARLY_STOP_FAILURES} examples of this run all "
                                                   r"failed \(error 5\), so the run stopped instead of rendering the "
                                                   r"other 35; first failure: error: RuntimeError: injected processor "
                                                   r"error at example 0\. Fix the cause and rerun.*--force") as e:
        generate(_cfg(src), root, workers=workers, progress=False, faults={"*": "error"})
    s = e.value.summary
    assert s.failures == {"error": EARLY_STOP_FAILURES} and s.examples_ok == 0
    assert s.stopped.startswith("DatagenFailuresError: ")
    # no shard was complete, so nothing was committed; the fixed rerun (same command) renders every example
    assert verify(root, allow_incomplete=True).n_failures == 0
    done = generate(_cfg(src), root, workers=workers, progress=False)
    assert done.examples_ok == N_EXAMPLES and not done.failures
    assert verify(root).ok


def test_the_early_stop_can_be_switched_off_and_a_good_first_example_disarms_it(tmp_path):
    src = _write_stems(tmp_path / "src")
    with pytest.raises(DatagenFailuresError, match=rf"{N_EXAMPLES} of the {N_EXAMPLES} examples this run rendered"):
        generate(_cfg(src), tmp_path / "all", workers=0, progress=False, faults={"*": "error"}, early_stop_failures=0)
    faults = {i: "error" for i in range(1, 12)}  # example 0 renders: the run is not all failures, it runs on
    s = generate(_cfg(src), tmp_path / "some", workers=0, progress=False, faults=faults, max_failure_fraction=0.5)
    assert s.examples_ok == N_EXAMPLES - 11 and s.failures == {"error": 11}
    with pytest.raises(DatagenConfigError, match=r"--stop-after-failures -1: give a whole number >= 0"):
        generate(_cfg(src), tmp_path / "bad", workers=0, progress=False, early_stop_failures=-1)


def test_the_cli_exits_2_with_the_cause_after_the_handful(tmp_path, monkeypatch, capsys):
    import mixbridge.plugins.datagen.effect as effect_mod

    def broken(*a, **k):
        raise RuntimeError("the plugin returned no audio")

    monkeypatch.setattr(effect_mod, "render_chain", broken)
    src = _write_stems(tmp_path / "src")
    out = tmp_path / "cli"
    rc = main(["datagen", "effect", "--chain", "eq", "--source", str(src), "--n", str(N_EXAMPLES), "--patch-s", "0.1",
               "--workers", "0", "-q", "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"failures: error {EARLY_STOP_FAILURES}" in err  # not error 40
    assert "first failure: error: RuntimeError: the plugin returned no audio" in err


def test_verify_reports_the_failure_rate_and_fails_above_the_limit(tmp_path, capsys):
    src = _write_stems(tmp_path / "src")
    root = tmp_path / "ds"
    s = generate(_cfg(src, n=12), root, workers=0, progress=False, faults={3: "error", 7: "nan"},
                 max_failure_fraction=1.0)
    assert s.examples_ok == 10
    report = verify(root)  # 2 of 12 = 16.7 % > the default 10 %
    assert not report.ok and report.failure_rate == pytest.approx(2 / 12)
    assert "2 recorded failures (error 1, nan 1) = 16.7% of the generated indices (allowed 10%)" in report.text()
    assert verify(root, max_failure_fraction=0.2).ok
    assert main(["datagen", "verify", str(root)]) == 1
    assert "FAILED" in capsys.readouterr().out
    assert main(["datagen", "verify", str(root), "--max-failure-fraction", "0.2"]) == 0
    assert "(allowed 20%)" in capsys.readouterr().out
    with pytest.raises(DatagenConfigError, match=r"--max-failure-fraction 1.5 is outside \[0, 1\]"):
        verify(root, max_failure_fraction=1.5)


def test_a_folder_that_failed_everything_is_not_locked_to_its_configuration(tmp_path):
    """The fix usually changes the map or the options, so the folder holds another configuration: the
    refusal names --force, and --force starts over (a map edit changes its sha256 in the config the same way)."""
    from mixbridge.plugins.datagen.errors import DatasetConfigMismatchError

    src = _write_stems(tmp_path / "src")
    root = tmp_path / "ds"
    with pytest.raises(DatagenFailuresError, match=r"add --force when the fix changes the plugin map or the options"):
        generate(_cfg(src), root, workers=0, progress=False, faults={"*": "error"})
    fixed = effect_config(str(src), chain="eq", n=N_EXAMPLES, seed=3, patch_s=0.1, shard_size=8,
                          param_specs=["eq.peak1_gain_db=uniform:-6:6"])
    with pytest.raises(DatasetConfigMismatchError, match=r"--force to discard this dataset and start over"):
        generate(fixed, root, workers=0, progress=False)
    s = generate(fixed, root, workers=0, progress=False, force=True)
    assert s.examples_ok == N_EXAMPLES and verify(root).ok
