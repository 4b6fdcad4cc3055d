"""Tests of the dataset format and the effect generator: determinism, resume, isolation, safety.

Sources are small synthetic stem folders written by the fixtures; patches are
short so the whole file runs in seconds.
"""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mixbridge.app.cli import main
from mixbridge.errors import AudioInputError, ParamRangeError
from mixbridge.npz import npz_bytes
from mixbridge.plugins import backend as backend_registry
from mixbridge.plugins.backend import get_backend
from mixbridge.plugins.builtin import BuiltinBackend
from mixbridge.plugins.datagen import format as fmt
from mixbridge.plugins.datagen import shards
from mixbridge.plugins.datagen.augment import AUG_NAMES, Augmentations, augment
from mixbridge.plugins.datagen.effect import effect_config, render_chain
from mixbridge.plugins.datagen.errors import (
    DatagenConfigError,
    DatagenFailuresError,
    DatasetBusyError,
    DatasetConfigMismatchError,
    DatasetFormatError,
    DiskFullError,
)
from mixbridge.plugins.datagen.format import Dataset
from mixbridge.plugins.datagen.params import UNRENDERABLE, flat_params, parse_dists, sample_params, says_value_changed
from mixbridge.plugins.datagen.runner import generate, plan_units
from mixbridge.plugins.datagen.verify import verify
from tests.support import run_python

SAMPLE_RATE = 44100
PATCH_S = 0.2
#: Re-rendering from the stored parameters must reproduce the stored output; pedalboard is
#: deterministic for a fresh board, so only float32 summation order could differ.
RERENDER_TOL = 1e-6


def _write_stems(folder: Path, n: int = 3, seconds: float = 1.0, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    for k in range(n):
        tone = 0.3 * np.sin(2 * np.pi * (110 * (k + 1)) * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2
        x = tone + 0.05 * rng.standard_normal(t.size)
        chans = 1 if k % 2 else 2
        sf.write(folder / f"stem{k}.wav", np.stack([x] * chans, axis=1).astype(np.float32), SAMPLE_RATE,
                 subtype="FLOAT")
    return folder


@pytest.fixture(scope="module")
def stems(tmp_path_factory) -> Path:
    return _write_stems(tmp_path_factory.mktemp("src") / "stems")


def _cfg(stems: Path, **kw):
    base = dict(n=12, seed=7, patch_s=PATCH_S, shard_size=4, chain="eq_comp_reverb")
    base.update(kw)
    return effect_config(str(stems), **base)


def _all_examples(root: Path) -> dict[int, dict[str, np.ndarray]]:
    ds = Dataset.open(root)
    out = {}
    for rec in ds.records:
        arrays = ds.load_shard(rec)
        for row, idx in enumerate(arrays["index"]):
            out[int(idx)] = {k: v[row] for k, v in arrays.items()}
    return out


def _shard_bytes(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "shards").glob("*.npz"))}


# --------------------------------------------------------------------------- format pieces
def test_npz_is_deterministic_and_plain_numpy(tmp_path):
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "names": np.array(["x", "yz"])}
    b1, b2 = npz_bytes(arrays), npz_bytes(dict(reversed(list(arrays.items()))))
    assert b1 == b2
    (tmp_path / "s.npz").write_bytes(b1)
    with np.load(tmp_path / "s.npz", allow_pickle=False) as z:
        assert z["a"].tolist() == [[0, 1, 2], [3, 4, 5]] and z["names"].tolist() == ["x", "yz"]


def test_plan_units_are_aligned_and_skip_done():
    assert plan_units(set(), 10, 4) == [(0, 4, [0, 1, 2, 3]), (4, 8, [4, 5, 6, 7]), (8, 10, [8, 9])]
    assert plan_units({0, 1, 2, 3, 5}, 10, 4) == [(4, 5, [4]), (6, 8, [6, 7]), (8, 10, [8, 9])]


def test_param_sampling_is_uniform_in_schema_scale():
    params = flat_params(["compressor"])
    rng = np.random.default_rng(0)
    norms = np.array([sample_params(rng, params)[2] for _ in range(4000)])
    ratio = dict(params)["compressor.ratio"]  # a log parameter: its normalised value is uniform
    col = [p for p, _ in params].index("compressor.ratio")
    assert abs(norms[:, col].mean() - 0.5) < 0.02  # 4000 uniform draws: std of mean 0.0046
    nested, real, norm = sample_params(rng, params)
    assert ratio.to_normalised(nested["compressor"]["ratio"]) == pytest.approx(norm[col], abs=1e-12)
    fixed = parse_dists(["compressor.knee_db=fixed:0", "compressor.ratio=uniform:2:4"], params)
    for _ in range(50):
        nested, _, _ = sample_params(rng, params, fixed)
        assert nested["compressor"]["knee_db"] == 0.0 and 2.0 - 1e-9 <= nested["compressor"]["ratio"] <= 4.0 + 1e-9
    with pytest.raises(DatagenConfigError, match=r"compressor.ratio=uniform:0.5:4: 0.5 is outside \[1, 20\]"):
        parse_dists(["compressor.ratio=uniform:0.5:4"], params)
    with pytest.raises(DatagenConfigError, match="unknown parameter"):
        parse_dists(["compressor.gain=fixed:1"], params)


def test_augmentations_each_fire_with_their_own_probability():
    x = np.ones((2, 1000), dtype=np.float32)
    rng = np.random.default_rng(1)
    none = Augmentations.none()
    y, applied, _ = augment(x, rng, none, lambda: x)
    assert np.array_equal(y, x) and applied.sum() == 0
    only_pol = Augmentations(p_mix=0, p_gain=0, p_polarity=1, p_noise=0, p_zero_samples=0, p_zero_block=0)
    y, applied, _ = augment(x, rng, only_pol, lambda: x)
    assert np.array_equal(y, -x) and applied.tolist() == [0, 0, 1, 0, 0, 0]
    gain = Augmentations(p_mix=0, p_gain=1, gain_db=(-6.0206, -6.0206), p_polarity=0, p_noise=0,
                         p_zero_samples=0, p_zero_block=0)
    y, applied, values = augment(x, rng, gain, lambda: x)
    assert y[0, 0] == pytest.approx(0.5, abs=1e-5) and values[AUG_NAMES.index("gain")] == pytest.approx(-6.0206)
    block = Augmentations(p_mix=0, p_gain=0, p_polarity=0, p_noise=0, p_zero_samples=0, p_zero_block=1,
                          zero_block_fraction=(0.1, 0.1))
    y, _, _ = augment(x, rng, block, lambda: x)
    assert int((y == 0).all(axis=0).sum()) == 100
    mix = Augmentations(p_mix=1, mix_gain_db=(0.0, 0.0), p_gain=0, p_polarity=0, p_noise=0, p_zero_samples=0,
                        p_zero_block=0)
    y, _, _ = augment(x, rng, mix, lambda: 2 * x)
    assert np.allclose(y, 3.0)


# --------------------------------------------------------------------------- generation
def test_same_seed_gives_byte_identical_data_with_any_worker_count(stems, tmp_path):
    s0 = generate(_cfg(stems), tmp_path / "a", workers=0, progress=False)
    s2 = generate(_cfg(stems), tmp_path / "b", workers=2, progress=False)
    assert s0.examples_ok == s2.examples_ok == 12 and s0.shards_committed == 3
    assert _shard_bytes(tmp_path / "a") == _shard_bytes(tmp_path / "b")
    other = generate(_cfg(stems, seed=8), tmp_path / "c", workers=0, progress=False)
    assert other.examples_ok == 12
    assert _shard_bytes(tmp_path / "a") != _shard_bytes(tmp_path / "c")
    assert verify(tmp_path / "b").ok
    ex = _all_examples(tmp_path / "a")
    assert sorted(ex) == list(range(12))
    assert ex[3]["input"].shape == (2, int(round(PATCH_S * SAMPLE_RATE)))
    assert ex[3]["params_norm"].min() >= 0 and ex[3]["params_norm"].max() <= 1


def test_stored_parameters_reproduce_the_output(stems, tmp_path):
    generate(_cfg(stems, n=6), tmp_path / "d", workers=0, progress=False)
    ds = Dataset.open(tmp_path / "d")
    names = ds.config["param_names"]
    backend = get_backend("builtin", SAMPLE_RATE)
    n_checked = 0
    for ex in _all_examples(tmp_path / "d").values():
        params: dict = {}
        for name, value in zip(names, ex["params_real"]):
            proc, _, p = name.partition(".")
            params.setdefault(proc, {})[p] = float(value)
        y = render_chain(backend, ds.config["processors"], ex["input"], params)
        assert np.max(np.abs(y - ex["output"])) <= RERENDER_TOL
        assert not np.allclose(ex["output"], ex["input"])  # the chain did something
        n_checked += 1
    assert n_checked == 6


def test_resume_adds_only_missing_examples_and_n_can_grow(stems, tmp_path):
    ref = tmp_path / "ref"
    generate(_cfg(stems, n=12), ref, workers=0, progress=False)
    part = tmp_path / "part"
    generate(_cfg(stems, n=6), part, workers=0, progress=False)  # 4 + 2 (a partial block)
    s = generate(_cfg(stems, n=12), part, workers=0, progress=False)
    assert s.already_done == 6 and s.examples_ok == 6
    a, b = _all_examples(ref), _all_examples(part)
    assert sorted(b) == list(range(12))
    for i in range(12):
        assert np.array_equal(a[i]["output"], b[i]["output"])
    again = generate(_cfg(stems, n=12), part, workers=0, progress=False)
    assert again.examples_ok == 0 and again.already_done == 12
    assert verify(part).ok


def test_refuses_to_mix_two_configurations(stems, tmp_path):
    generate(_cfg(stems, n=4), tmp_path / "e", workers=0, progress=False)
    with pytest.raises(DatasetConfigMismatchError, match=r"e: holds a dataset generated with another configuration "
                                                          r"\(seed: 7 in the dataset, 8 requested\)"):
        generate(_cfg(stems, n=4, seed=8), tmp_path / "e", workers=0, progress=False)
    with pytest.raises(DatasetConfigMismatchError, match="processors"):
        generate(_cfg(stems, n=4, chain="eq"), tmp_path / "e", workers=0, progress=False)
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "x.txt").write_text("x")
    with pytest.raises(DatasetFormatError, match="not empty and holds no dataset"):
        generate(_cfg(stems, n=4), tmp_path / "f", workers=0, progress=False)


def test_one_writer_at_a_time_and_stale_temp_files_are_removed(stems, tmp_path):
    root = tmp_path / "lk"
    generate(_cfg(stems, n=4), root, workers=0, progress=False)
    stale = root / "shards" / ".shard-00000004-00000008.abc123.tmp.npz"  # left by a kill -9 mid-write
    stale.write_bytes(b"half")
    assert any("not in the manifest" in w for w in verify(root).warnings)
    holder = Dataset.open(root)
    holder.lock()
    try:
        with pytest.raises(DatasetBusyError, match=rf"another datagen run \(pid {os.getpid()}\) is writing"):
            generate(_cfg(stems, n=8), root, workers=0, progress=False)
    finally:
        holder.unlock()
    s = generate(_cfg(stems, n=8), root, workers=0, progress=False)
    assert s.examples_ok == 4 and not stale.exists() and verify(root).warnings == []


def test_bad_sources_name_the_path(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(AudioInputError, match=r"empty: no audio files"):
        effect_config(str(tmp_path / "empty"))
    with pytest.raises(AudioInputError, match="source not found"):
        effect_config(str(tmp_path / "missing"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.wav").write_bytes(b"RIFF not really a wav")
    with pytest.raises(AudioInputError, match=r"x.wav: cannot read audio"):
        effect_config(str(tmp_path / "bad"))
    with pytest.raises(DatagenConfigError, match="unknown chain 'fuzz'"):
        effect_config(str(_write_stems(tmp_path / "ok", n=1)), chain="fuzz")


def test_disk_full_stops_cleanly_keeping_complete_shards(stems, tmp_path, monkeypatch):
    real_write = shards._write_npz
    calls = {"shards": 0}

    def full_on_third_shard(fileobj, arrays):
        calls["shards"] += 1
        if calls["shards"] == 3:
            fileobj.write(b"partial")  # a half-written temp file must not survive
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fileobj, arrays)

    monkeypatch.setattr(shards, "_write_npz", full_on_third_shard)
    with pytest.raises(DiskFullError, match=r"shard-00000008-00000012.npz: disk full while writing a shard; "
                                            r"complete shards were kept"):
        generate(_cfg(stems), tmp_path / "g", workers=0, progress=False)
    report = verify(tmp_path / "g", allow_incomplete=True)
    assert report.ok and report.n_examples == 8 and report.missing == [8, 9, 10, 11] and report.warnings == []
    assert sorted(p.name for p in (tmp_path / "g" / "shards").iterdir()) == [
        "shard-00000000-00000004.npz", "shard-00000004-00000008.npz"]
    monkeypatch.setattr(shards, "_write_npz", real_write)
    s = generate(_cfg(stems), tmp_path / "g", workers=0, progress=False)
    assert s.examples_ok == 4 and verify(tmp_path / "g").ok


def test_disk_full_also_stops_a_run_with_worker_processes(stems, tmp_path, monkeypatch):
    real_write = shards._write_npz
    calls = {"shards": 0}

    def full_from_second_shard(fileobj, arrays):  # commits run in the parent: the patch applies
        calls["shards"] += 1
        if calls["shards"] >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fileobj, arrays)

    monkeypatch.setattr(shards, "_write_npz", full_from_second_shard)
    with pytest.raises(DiskFullError, match="disk full"):
        generate(_cfg(stems, n=40), tmp_path / "w", workers=2, progress=False)
    # the job stopped at the first failed commit (plus at most the commits already queued),
    # instead of rendering all 10 shards
    assert calls["shards"] <= 2 + 2
    report = verify(tmp_path / "w", allow_incomplete=True)
    assert report.ok and report.n_examples == 4


def test_write_file_maps_enospc_to_disk_full(tmp_path, monkeypatch):
    import builtins

    real_open = builtins.open

    def fake_open(path, mode="r", *a, **kw):
        if "w" in mode and ".tmp" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, mode, *a, **kw)

    monkeypatch.setattr(builtins, "open", fake_open)
    with pytest.raises(DiskFullError, match=r"x.npz: disk full .* rerun the same command to resume"):
        shards.write_file(tmp_path / "x.npz", b"abc")
    monkeypatch.undo()
    assert not list(tmp_path.iterdir())  # no temp file left behind


def test_verify_catches_corruption_and_manifest_tail_is_tolerated(stems, tmp_path):
    root = tmp_path / "h"
    generate(_cfg(stems), root, workers=0, progress=False)
    with open(root / "manifest.jsonl", "ab") as fh:  # a line cut short by kill -9
        fh.write(b'{"shard":"shards/shard-000')
    assert verify(root).ok
    generate(_cfg(stems), root, workers=0, progress=False)  # reopening repairs the tail
    assert (root / "manifest.jsonl").read_bytes().endswith(b"}\n")
    shard = sorted((root / "shards").glob("*.npz"))[1]
    data = bytearray(shard.read_bytes())
    data[-100] ^= 0xFF
    shard.write_bytes(bytes(data))
    report = verify(root)
    assert not report.ok and any("checksum or size mismatch" in p for p in report.problems)
    assert main(["datagen", "verify", str(root)]) == 1


# --------------------------------------------------------------------------- isolation
def test_crash_exit_nan_and_error_cost_one_example_each(stems, tmp_path):
    faults = {1: "crash", 4: "exit", 6: "nan", 9: "error"}
    s = generate(_cfg(stems), tmp_path / "i", workers=2, progress=False, faults=faults, max_failure_fraction=0.5)
    assert s.examples_ok == 8
    assert s.failures == {"crash": 2, "nan": 1, "error": 1}
    recs = Dataset.open(tmp_path / "i").records
    fails = {f["index"]: f for r in recs for f in r.failures}
    assert sorted(fails) == [1, 4, 6, 9]
    assert "signal 9 (SIGKILL)" in fails[1]["message"] and "exited with status 3" in fails[4]["message"]
    assert set(fails[1]["params"]["params"]) == {"eq", "compressor", "reverb"}
    # the recorded parameters are the ones the example would have used: compare with a clean run
    clean = generate(_cfg(stems), tmp_path / "j", workers=0, progress=False)
    assert clean.examples_ok == 12
    ex = _all_examples(tmp_path / "j")
    names = Dataset.open(tmp_path / "j").config["param_names"]
    for i in (1, 4):
        for name, value in zip(names, ex[i]["params_real"]):
            proc, _, p = name.partition(".")
            assert fails[i]["params"]["params"][proc][p] == value
    report = verify(tmp_path / "i", max_failure_fraction=0.5)
    assert report.ok and report.failures_by_kind == {"crash": 2, "nan": 1, "error": 1}
    assert not verify(tmp_path / "i").ok  # 4 of 12 is more than the default 10 %


def test_a_hang_times_out_and_the_job_goes_on(stems, tmp_path):
    s = generate(_cfg(stems, n=4), tmp_path / "k", workers=1, timeout_s=3.0, progress=False, faults={2: "hang"},
                 max_failure_fraction=0.5)
    assert s.examples_ok == 3 and s.failures == {"timeout": 1}
    fails = [f for r in Dataset.open(tmp_path / "k").records for f in r.failures]
    assert fails[0]["index"] == 2 and "no result after 3 s" in fails[0]["message"]


def _worker_pids(pid: int) -> list[int]:
    """Worker processes (``spawn_main``) whose parent is ``pid`` (not multiprocessing's resource tracker)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmd = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and b"spawn_main" in cmd:
            out.append(int(stat.parent.name))
    return sorted(out)


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def test_kill_a_worker_then_kill_the_parent_then_resume(stems, tmp_path):
    root = tmp_path / "l"
    script = tmp_path / "gen.py"
    script.write_text(
        "import sys\n"
        "from mixbridge.plugins.datagen.effect import effect_config\n"
        "from mixbridge.plugins.datagen.runner import generate\n"
        "if __name__ == '__main__':\n"
        f"    cfg = effect_config({str(stems)!r}, n=40, seed=7, patch_s={PATCH_S}, shard_size=4)\n"
        f"    generate(cfg, {str(root)!r}, workers=2, progress=False, faults={{'*': 'delay:0.03'}})\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            m = root / "manifest.jsonl"
            if m.exists() and m.read_bytes().count(b"\n") >= 2:
                break
            time.sleep(0.05)
        workers = _worker_pids(proc.pid)
        assert len(workers) == 2, f"worker processes of {proc.pid}: {workers}"
        os.kill(workers[-1], signal.SIGKILL)
        time.sleep(0.4)
        survivors = _worker_pids(proc.pid)  # the first worker and the replacement of the killed one
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 30  # a replacement still importing exits once it reaches the check
        while time.monotonic() < deadline and not all(_gone(w) for w in survivors):
            time.sleep(0.05)
        assert all(_gone(w) for w in survivors), f"orphans left: {[w for w in survivors if not _gone(w)]}"
    finally:
        if proc.poll() is None:
            proc.kill()
    before = verify(root, allow_incomplete=True, max_failure_fraction=0.5)  # the killed worker's example
    assert before.ok and len(before.missing) > 0, before.text()
    s = generate(_cfg(stems, n=40), root, workers=2, progress=False)
    report = verify(root)
    assert report.ok and report.missing == []
    assert s.examples_ok + before.n_examples + before.n_failures == 40
    covered = [i for r in Dataset.open(root).records for i in r.covered]
    assert sorted(covered) == list(range(40))  # no duplicates, none lost
    ref = tmp_path / "ref"
    generate(_cfg(stems, n=40), ref, workers=0, progress=False)
    a, b = _all_examples(ref), _all_examples(root)
    for i, ex in b.items():
        assert np.array_equal(ex["output"], a[i]["output"])


# --------------------------------------------------------------------------- CLI
def test_cli_effect_info_verify(stems, tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["datagen", "effect", "--chain", "eq,compressor", "--source", str(stems), "--n", "5", "--patch-s", "0.1",
            "--seed", "3", "--workers", "0", "-o", str(out), "--param", "compressor.knee_db=fixed:0"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "effect dataset" in text and "5 examples generated" in text and "examples/s" in text
    assert main(["datagen", "info", str(out), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["n_examples"] == 5 and d["processors"] == ["eq", "compressor"] and d["complete"]
    assert d["arrays"]["input"]["shape_per_example"] == [2, 4410]
    assert main(["datagen", "verify", str(out)]) == 0
    assert main(args[:-2] + ["--seed", "4"]) == 2
    assert "refusing to mix two configurations" in capsys.readouterr().err
    assert main(["datagen", "effect", "--chain", "eq", "--source", str(tmp_path / "nope"),
                 "-o", str(tmp_path / "x")]) == 2
    assert "source not found" in capsys.readouterr().err


def test_cli_vocabulary_and_the_old_spellings(stems, tmp_path, capsys):
    """``--backend`` is the render backend, ``--executor`` the executor; the old spellings still work
    for one release, each with one deprecation line naming the new spelling."""
    from mixbridge.app.cli import build_parser

    base = ["datagen", "effect", "--chain", "eq", "--source", str(stems), "--n", "2", "--patch-s", "0.1",
            "--workers", "0"]
    assert main(base + ["-q", "--backend", "builtin", "--executor", "local", "-o", str(tmp_path / "new")]) == 0
    out, err = capsys.readouterr()
    assert out == "" and "deprecated" not in err  # -q: no bar, no summary
    assert main(base + ["--no-progress", "--render", "builtin", "--backend", "local", "--out", str(tmp_path / "old"),
                        "--timeout", "30"]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    for old, new in (("--no-progress", "-q/--quiet"), ("--render builtin", "--backend builtin"),
                     ("--backend local", "--executor local"), ("--out", "-o/--output"), ("--timeout", "--timeout-s")):
        assert f"{old} is deprecated and goes in the next release; use {new}" in err, old
    assert _shard_bytes(tmp_path / "old") == _shard_bytes(tmp_path / "new")
    parse = build_parser().parse_args
    args = parse(base + ["-o", "x", "--backend", "ray"])
    assert (args.executor, args.backend) == ("ray", None)
    assert "use --executor ray" in capsys.readouterr().err
    args = parse(base + ["-o", "x", "--backend", "vst", "--executor", "ray"])
    assert (args.executor, args.backend) == ("ray", "vst")
    with pytest.raises(SystemExit) as e:
        parse(base + ["-o", "x", "--backend", "nosuch"])
    assert e.value.code == 2 and "invalid choice: 'nosuch' (choose from builtin, vst" in capsys.readouterr().err


def test_cli_backend_choices_come_from_the_registry_without_loading_pedalboard():
    code = ("import argparse, contextlib, io, sys\n"
            "from mixbridge.plugins import datagen_cli\n"
            "from mixbridge.plugins.backend import backend_names\n"
            "p = argparse.ArgumentParser(prog='mixbridge')\n"
            "datagen_cli.register(p.add_subparsers(dest='command'))\n"
            "buf = io.StringIO()\n"
            "with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):\n"
            "    p.parse_args(['datagen', 'effect', '--help'])\n"
            "assert '--backend {' + ','.join(backend_names()) + '}' in buf.getvalue(), buf.getvalue()\n"
            "sys.exit(3 if 'pedalboard' in sys.modules or 'torch' in sys.modules else 0)\n")
    run = run_python(code)
    assert run.returncode == 0, run.stderr


# --------------------------------------------------------------------------- labels are what was rendered
#: The knee above which the test backends below cannot render (a soft knee up to 4 dB, like a plugin
#: whose knee control ends there).
KNEE_LIMIT_DB = 4.0


class _HardKneeBackend(BuiltinBackend):
    """Renders ``knee_db`` > KNEE_LIMIT_DB as a hard knee and says so only in a notice (like main's builtin)."""

    name = "hardknee"

    def process(self, processor, audio, params, automation=None, *, label=""):
        if processor == "compressor" and params["knee_db"] > KNEE_LIMIT_DB:
            self.notice("hardknee backend: knee_db > 4 was rendered as 0 dB")
            params = dict(params, knee_db=0.0)
        return super().process(processor, audio, params, automation, label=label)


class _DeclaringBackend(_HardKneeBackend):
    """The same renderer, but it declares what it renders (``renderable_range``) and flags the change."""

    name = "declaring"

    def renderable_range(self, processor, param):
        if (processor, param) == ("compressor", "knee_db"):
            return (0.0, KNEE_LIMIT_DB)
        return super().renderable_range(processor, param)


class _RefusingBackend(BuiltinBackend):
    """Refuses ``knee_db`` > KNEE_LIMIT_DB with ParamRangeError, as a plugin map does for an unreachable value."""

    name = "refusing"

    def process(self, processor, audio, params, automation=None, *, label=""):
        if processor == "compressor" and params["knee_db"] > KNEE_LIMIT_DB:
            raise ParamRangeError(f"plugin parameter 'Knee' = {params['knee_db']:g} dB is outside the plugin's "
                                  f"range [0, {KNEE_LIMIT_DB:g}] dB")
        return super().process(processor, audio, params, automation, label=label)


@pytest.fixture
def narrow_backends(monkeypatch):
    """Register the three test backends for this test only (in-process runs: ``workers=0``)."""
    for cls in (_HardKneeBackend, _DeclaringBackend, _RefusingBackend):
        monkeypatch.setitem(backend_registry._BACKENDS, cls.name, lambda sr, _c=cls, **kw: _c(sr, **kw))


def _knees(root: Path) -> tuple[dict[int, float], dict[int, dict]]:
    """Stored knee_db per example index, and the recorded failures by index."""
    ds = Dataset.open(root)
    col = ds.config["param_names"].index("compressor.knee_db")
    stored = {i: float(ex["params_real"][col]) for i, ex in _all_examples(root).items()}
    return stored, {f["index"]: f for r in ds.records for f in r.failures}


def test_values_the_backend_declares_it_cannot_render_are_never_drawn(stems, tmp_path, narrow_backends):
    cfg = _cfg(stems, chain="compressor", backend="declaring", n=12)
    assert cfg["renderable_ranges"] == {"compressor.knee_db": [0.0, KNEE_LIMIT_DB]}
    s = generate(cfg, tmp_path / "dec", workers=0, progress=False)
    assert s.examples_ok == 12 and s.failures == {}
    stored, _ = _knees(tmp_path / "dec")
    assert max(stored.values()) <= KNEE_LIMIT_DB and max(stored.values()) > 1.0  # drawn across [0, 4], not fixed
    # what is stored is what renders: the honest builtin renders the same output from the stored labels
    backend = get_backend("builtin", SAMPLE_RATE)
    names = cfg["param_names"]
    for ex in _all_examples(tmp_path / "dec").values():
        params = {"compressor": {n.partition(".")[2]: float(v) for n, v in zip(names, ex["params_real"])}}
        assert np.max(np.abs(render_chain(backend, ["compressor"], ex["input"], params) - ex["output"])) <= RERENDER_TOL
    # a --param range beyond what the backend renders is refused up front, naming that range
    with pytest.raises(DatagenConfigError, match=r"--param compressor.knee_db: the declaring backend renders "
                                                 r"compressor.knee_db only in \[0, 4\] dB of the schema's \[0, 8\] dB"):
        _cfg(stems, chain="compressor", backend="declaring", param_specs=["compressor.knee_db=uniform:0:8"])
    ok = _cfg(stems, chain="compressor", backend="declaring", param_specs=["compressor.knee_db=uniform:1:3"])
    assert ok["param_dists"]["compressor.knee_db"]["kind"] == "uniform"


@pytest.mark.parametrize("backend", ["hardknee", "refusing"])
def test_an_example_the_backend_cannot_honour_is_not_stored_with_the_requested_label(stems, tmp_path,
                                                                                      narrow_backends, backend):
    cfg = _cfg(stems, chain="compressor", backend=backend, n=16)
    assert cfg["renderable_ranges"] == {}  # these backends do not declare their range: caught at render time
    s = generate(cfg, tmp_path / backend, workers=0, progress=False, max_failure_fraction=1.0)
    stored, fails = _knees(tmp_path / backend)
    assert s.failures == {UNRENDERABLE: len(fails)} and 0 < len(fails) < 16 and s.examples_ok == len(stored)
    assert all(v <= KNEE_LIMIT_DB for v in stored.values())  # no stored label was rendered as something else
    for f in fails.values():  # the refused examples keep their requested values, in the manifest only
        assert f["kind"] == UNRENDERABLE and f["params"]["params"]["compressor"]["knee_db"] > KNEE_LIMIT_DB
        assert f"the {backend} backend" in f["message"]
    reason = next(iter(fails.values()))["message"]
    assert ("rendered another value than requested: hardknee backend: knee_db > 4 was rendered as 0 dB" in reason
            if backend == "hardknee" else "cannot render a requested value: plugin parameter 'Knee'" in reason)
    assert sorted(set(stored) | set(fails)) == list(range(16))


def test_flagged_value_changes_are_seen_by_every_example(stems, tmp_path, narrow_backends, monkeypatch):
    """A deduplicated notice is seen once per backend; ``changed_value=True`` and the per-example
    notice window make every example that changed a value fail, not only the first."""
    def flagged(self, processor, audio, params, automation=None, *, label=""):
        if processor == "compressor" and params["knee_db"] > KNEE_LIMIT_DB:
            self.notice("knee limited", changed_value=True)
            params = dict(params, knee_db=KNEE_LIMIT_DB)
        return BuiltinBackend.process(self, processor, audio, params, automation, label=label)

    monkeypatch.setattr(_HardKneeBackend, "process", flagged)
    cfg = _cfg(stems, chain="compressor", backend="hardknee", n=16)
    generate(cfg, tmp_path / "fl", workers=0, progress=False, max_failure_fraction=1.0)
    stored, fails = _knees(tmp_path / "fl")
    requested = {**stored, **{i: f["params"]["params"]["compressor"]["knee_db"] for i, f in fails.items()}}
    assert sorted(fails) == sorted(i for i, v in requested.items() if v > KNEE_LIMIT_DB) and len(fails) > 1
    assert says_value_changed("builtin backend: reverb decay_s=0.3 s is outside Freeverb's reachable 0.61-10.7 s; "
                              "rendered at the nearest reachable decay")
    assert not says_value_changed("compressor: plugin latency 64 samples, compensated")


def test_an_all_failing_job_exits_non_zero_and_verify_reports_it(stems, tmp_path, monkeypatch, capsys):
    # the library: every example raises -> DatagenFailuresError after the failures are committed
    with pytest.raises(DatagenFailuresError, match=r"12 of the 12 examples this run rendered failed \(error 12; "
                                                   r"no example succeeded\); first reasons: error: RuntimeError: "
                                                   r"injected processor error at example \d+\.") as e:
        generate(_cfg(stems), tmp_path / "all", workers=1, progress=False, faults={"*": "error"},
                 early_stop_failures=0)  # run them all (the early stop: tests/plugins/datagen/test_runner_failures.py)
    assert e.value.summary.failures == {"error": 12}
    assert e.value.summary.failure_reasons == ["error: RuntimeError: injected processor error at example 0"]
    report = verify(tmp_path / "all")
    assert not report.ok and report.n_failures == 12 and report.failure_reasons[0].startswith("error: RuntimeError")
    assert any("no example succeeded" in p for p in report.problems)
    # more than the stated fraction: 2 of 12 fail, allowed 10 % -> fails; allowed 20 % -> passes
    with pytest.raises(DatagenFailuresError, match=r"2 of the 12 .*more than the allowed 10%"):
        generate(_cfg(stems), tmp_path / "two", workers=0, progress=False, faults={3: "error", 7: "nan"})
    assert generate(_cfg(stems), tmp_path / "two2", workers=0, progress=False, faults={3: "error", 7: "nan"},
                    max_failure_fraction=0.2).examples_ok == 10
    # the CLI: exit 2, the summary and the reasons on stderr; verify exits 1 and lists the reasons
    import mixbridge.plugins.datagen.effect as effect_mod

    def broken(*a, **k):
        raise RuntimeError("the plugin returned no audio")

    monkeypatch.setattr(effect_mod, "render_chain", broken)
    out = tmp_path / "cli_all"
    rc = main(["datagen", "effect", "--chain", "eq", "--source", str(stems), "--n", "5", "--patch-s", "0.1",
               "--workers", "0", "-q", "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "failures: error 5" in err and "failure reason: error: RuntimeError: the plugin returned no audio" in err
    assert "5 of the 5 examples this run rendered failed" in err
    assert main(["datagen", "verify", str(out)]) == 1
    text = capsys.readouterr().out
    assert "FAILED - 0 examples, 5 recorded failures (error 5)" in text
    assert "failure reason: error: RuntimeError: the plugin returned no audio" in text
    from mixbridge.plugins.datagen.runner import DEFAULT_TIMEOUT_S
    from mixbridge.plugins.datagen_cli import MAX_FAILURE_FRACTION_HELP, TIMEOUT_S_HELP

    assert MAX_FAILURE_FRACTION_HELP == fmt.DEFAULT_MAX_FAILURE_FRACTION and TIMEOUT_S_HELP == DEFAULT_TIMEOUT_S


def test_version_1_datasets_are_not_resumed_and_changed_labels_are_refused(stems, tmp_path):
    root = tmp_path / "v1"
    generate(_cfg(stems, n=4, chain="eq"), root, workers=0, progress=False)
    cfg_path = root / "config.json"
    old = json.loads(cfg_path.read_text())
    assert old["version"] == fmt.FORMAT_VERSION == 2
    old["version"] = 1
    cfg_path.write_text(json.dumps(old))
    assert Dataset.open(root).config["version"] == 1  # a builtin EQ-only v1 dataset: its labels still hold
    with pytest.raises(DatasetConfigMismatchError,
                       match="format version 1 dataset and this mixbridge writes version 2"):
        generate(_cfg(stems, n=8, chain="eq"), root, workers=0, progress=False)
    old["processors"] = ["eq", "compressor"]  # pedalboard's hard-knee compressor rendered these labels
    cfg_path.write_text(json.dumps(old))
    with pytest.raises(DatasetFormatError, match=r"format version 1 effect dataset: its builtin compressor labels "
                                                 r"were rendered by pedalboard \(knee_db > 0 as a hard knee"):
        Dataset.open(root)
    report = verify(root)  # integrity is still checked, with the reason as a warning
    assert report.ok and any("format version 1" in w for w in report.warnings)
