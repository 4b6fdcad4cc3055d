"""Faults and bad input in data generation (issue 10): nothing silently wrong, one clear line each.

Real files and real processes throughout: a source folder moved or changed between runs, a
worker killed from outside with SIGKILL, shards corrupted or deleted on disk, manifests edited
to name files outside the dataset, a real SIGTERM to a running ``mixbridge datagen``, and a
real local Ray instance whose listening sockets are read from the kernel (``ss``).
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mixbridge.app.cli import main
from mixbridge.plugins.datagen.effect import effect_config
from mixbridge.plugins.datagen.errors import DatagenConfigError, DatasetIntegrityError, SourceChangedError
from mixbridge.plugins.datagen.format import Dataset
from mixbridge.plugins.datagen.mixes import mixes_config
from mixbridge.plugins.datagen.runner import generate
from mixbridge.plugins.datagen.verify import verify

SAMPLE_RATE = 44100
PATCH_S = 0.1
#: A patch delay long enough that a worker spends nearly all its time rendering (so an outside kill
#: lands during an example), short enough for a few-second test.
RENDER_DELAY_S = 1.0


def _write_stems(folder: Path, n: int = 2, seconds: float = 1.0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    for k in range(n):
        x = 0.3 * np.sin(2 * np.pi * 110 * (k + 1) * t)
        sf.write(folder / f"stem{k}.wav", np.stack([x, x], axis=1).astype(np.float32), SAMPLE_RATE, subtype="FLOAT")
    return folder


def _cfg(source: Path, **kw) -> dict:
    base = dict(chain="eq", n=8, seed=3, patch_s=PATCH_S, shard_size=4)
    base.update(kw)
    return effect_config(str(source), **base)


def _shards(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "shards").glob("*.npz"))}


# --------------------------------------------------------------------------- 1. source by content
def test_a_resume_reads_the_source_given_now_and_checks_it_by_content(tmp_path):
    """The old folder still exists with a changed file; the resume points at a copy of the original."""
    src = _write_stems(tmp_path / "src")
    ref = tmp_path / "ref"
    generate(_cfg(src, n=8), ref, workers=0, progress=False)
    root = tmp_path / "ds"
    generate(_cfg(src, n=4), root, workers=0, progress=False)
    moved = tmp_path / "moved"
    shutil.copytree(src, moved)
    x, _ = sf.read(src / "stem0.wav", dtype="float32")
    sf.write(src / "stem0.wav", -x, SAMPLE_RATE, subtype="FLOAT")  # the old folder changes behind our back
    generate(_cfg(moved, n=8), root, workers=0, progress=False)
    assert _shards(root) == _shards(ref)  # every example from the files --source names now
    assert Dataset.open(root).config["source_root"] == str(moved.resolve())
    # the changed folder itself is refused, naming the file and the fixes
    with pytest.raises(SourceChangedError, match=r"stem0\.wav \(content differs\).*new output folder.*--force"):
        generate(_cfg(src, n=12), root, workers=0, progress=False)
    (src / "stem2.wav").write_bytes((src / "stem1.wav").read_bytes())
    with pytest.raises(SourceChangedError, match=r"stem0\.wav \(content differs\), stem2\.wav \(new in the source\)"):
        generate(_cfg(src, n=12), root, workers=0, progress=False)
    assert verify(root).ok  # nothing was written by the refused runs
    s = generate(_cfg(src, n=4), root, workers=0, progress=False, force=True)  # --force starts over
    assert s.already_done == 0 and s.examples_ok == 4
    assert Dataset.open(root).config["sources"][0]["sha256"] != Dataset.open(ref).config["sources"][0]["sha256"]


def test_a_moved_source_folder_resumes(tmp_path):
    src = _write_stems(tmp_path / "src")
    root = tmp_path / "ds"
    generate(_cfg(src, n=4), root, workers=0, progress=False)
    src.rename(tmp_path / "elsewhere")
    s = generate(_cfg(tmp_path / "elsewhere", n=8), root, workers=1, progress=False)
    assert s.examples_ok == 4 and verify(root).ok


def test_a_changed_mixes_source_is_refused_by_file(tmp_path):
    song = _write_stems(tmp_path / "songs" / "a", seconds=1.0)
    cfg = mixes_config(str(tmp_path / "songs"), clip_s=0.5, n=2, shard_size=2)
    stored = dict(cfg)
    x, _ = sf.read(song / "stem1.wav", dtype="float32")
    sf.write(song / "stem1.wav", 0.5 * x, SAMPLE_RATE, subtype="FLOAT")
    from mixbridge.plugins.datagen.format import source_changes

    assert source_changes(stored, mixes_config(str(tmp_path / "songs"), clip_s=0.5, n=2, shard_size=2)) == [
        "a/stem1.wav (content differs)"]


# --------------------------------------------------------------------------- 2. truncated sources
def _truncated_wav(path: Path, seconds: float = 32.0, keep: float = 0.1, rate: int = 8000) -> Path:
    """A float WAV whose header says ``seconds`` but whose file holds only ``keep`` of its bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    x = (0.1 * np.random.default_rng(0).standard_normal((int(seconds * rate), 2))).astype(np.float32)
    sf.write(path, x, rate, subtype="FLOAT")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def test_datagen_refuses_a_truncated_source(tmp_path):
    src = _write_stems(tmp_path / "src")
    _truncated_wav(src / "cut.wav", rate=SAMPLE_RATE, seconds=2.0)
    with pytest.raises(Exception, match=r"cut\.wav: truncated: expected 88200 frames .* got \d+ .*copy or export"):
        _cfg(src)
    song = _write_stems(tmp_path / "songs" / "a")
    _truncated_wav(song / "cut.wav", rate=SAMPLE_RATE, seconds=2.0)
    with pytest.raises(Exception, match=r"cut\.wav: truncated"):
        mixes_config(str(tmp_path / "songs"), clip_s=0.5, n=2)


def test_a_source_truncated_after_indexing_fails_its_examples_not_padded(tmp_path):
    src = _write_stems(tmp_path / "src", n=1, seconds=2.0)
    cfg = _cfg(src, n=4)
    data = (src / "stem0.wav").read_bytes()
    (src / "stem0.wav").write_bytes(data[: len(data) // 10])  # cut short between the config and the render
    with pytest.raises(Exception, match=r"4 of the 4 examples this run rendered failed"):
        generate(cfg, tmp_path / "ds", workers=0, progress=False)
    fails = [f for r in Dataset.open(tmp_path / "ds").records for f in r.failures]
    assert len(fails) == 4 and all("stem0.wav: truncated" in f["message"] for f in fails)


# --------------------------------------------------------------------------- 3. retries and repairs
def _spawned_children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmd = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid and b"spawn_main" in cmd:
            out.append(int(stat.parent.name))
    return out


def test_a_worker_killed_from_outside_is_retried_once_and_both_attempts_recorded(tmp_path):
    src = _write_stems(tmp_path / "src")
    ref = tmp_path / "ref"
    generate(_cfg(src, n=4, shard_size=2), ref, workers=0, progress=False)
    root = tmp_path / "ds"
    killed: list[int] = []

    def oom_killer() -> None:  # like the kernel's OOM killer: SIGKILL to a busy worker, from outside
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (root / "manifest.jsonl").is_file():
            time.sleep(0.05)
        while time.monotonic() < deadline:
            pids = _spawned_children(os.getpid())
            m = root / "manifest.jsonl"
            if pids and m.is_file() and m.read_bytes().count(b"\n") >= 1:
                time.sleep(RENDER_DELAY_S / 2)  # mid-render of the next example
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
                return
            time.sleep(0.05)

    t = threading.Thread(target=oom_killer)
    t.start()
    s = generate(_cfg(src, n=4, shard_size=2), root, workers=1, progress=False,
                 faults={"*": f"delay:{RENDER_DELAY_S}"})
    t.join()
    assert killed, "the worker was never seen"
    assert s.failures == {} and s.examples_ok == 4 and s.retried == 1 and s.retried_ok == 1, s.text()
    [retry] = [r for rec in Dataset.open(root).records for r in rec.retries]
    assert retry["attempts"][0]["kind"] == "crash" and "SIGKILL" in retry["attempts"][0]["message"]
    assert retry["attempts"][1] == {"kind": "ok"}
    assert _shards(root) == _shards(ref)  # the retried example is the same bytes
    assert "retried: 1 example(s)" in s.text()


def test_a_repeated_timeout_is_one_failure_with_both_attempts(tmp_path):
    src = _write_stems(tmp_path / "src")
    s = generate(_cfg(src, n=3, shard_size=3), tmp_path / "ds", workers=1, timeout_s=1.0, progress=False,
                 faults={1: "hang"}, max_failure_fraction=0.5)
    assert s.failures == {"timeout": 1} and s.retried == 1 and s.retried_ok == 0
    [fail] = [f for r in Dataset.open(tmp_path / "ds").records for f in r.failures]
    assert [a["kind"] for a in fail["attempts"]] == ["timeout", "timeout"]


def test_a_status_exit_is_not_retried(tmp_path):
    src = _write_stems(tmp_path / "src")
    s = generate(_cfg(src, n=2, shard_size=2), tmp_path / "ds", workers=1, progress=False, faults={0: "exit"},
                 max_failure_fraction=0.5)
    assert s.failures == {"crash": 1} and s.retried == 0


def test_rerunning_a_complete_job_regenerates_corrupt_and_missing_shards(tmp_path, capsys):
    src = _write_stems(tmp_path / "src")
    root = tmp_path / "ds"
    args = ["datagen", "effect", "--chain", "eq", "--source", str(src), "--n", "12", "--patch-s", str(PATCH_S),
            "--seed", "3", "--shard-size", "4", "--workers", "0", "-o", str(root)]
    assert main(args) == 0
    good = _shards(root)
    names = sorted(good)
    corrupt = root / "shards" / names[0]
    data = bytearray(corrupt.read_bytes())
    data[-200] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    (root / "shards" / names[2]).unlink()
    capsys.readouterr()
    assert main(["datagen", "verify", str(root)]) == 1
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "regenerated 2 shard(s) found missing or corrupt" in out and names[0] in out and names[2] in out
    assert _shards(root) == good  # deterministic: the same bytes came back
    report = verify(root)
    assert report.ok and report.n_examples == 12, report.text()
    assert main(args) == 0 and "regenerated" not in capsys.readouterr().out


# --------------------------------------------------------------------------- 4. paths confined
def test_manifest_paths_outside_the_dataset_fail_verify_and_the_loader(tmp_path, capsys):
    src = _write_stems(tmp_path / "src")
    root = tmp_path / "data" / "ds"
    generate(_cfg(src, n=4, shard_size=4), root, workers=0, progress=False)
    line = json.loads((root / "manifest.jsonl").read_text())
    shutil.copy(root / line["shard"], root.parent / "x.npz")  # a valid shard, outside the folder
    line["shard"] = "../x.npz"
    (root / "manifest.jsonl").write_text(json.dumps(line) + "\n")
    report = verify(root)
    assert not report.ok and any("'../x.npz' outside the dataset folder" in p for p in report.problems)
    assert main(["datagen", "verify", str(root)]) == 1
    assert "../x.npz" in capsys.readouterr().out
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from mixbridge.models.dataset import MixbridgeDataset

    with pytest.raises(DatasetIntegrityError, match=r"'\.\./x\.npz' outside the dataset folder"):
        MixbridgeDataset(root)
    host = Path("/etc/hostname")
    if host.is_file():
        from mixbridge.checksum import sha256_file

        line.update(shard=str(host), sha256=sha256_file(host), bytes=host.stat().st_size)
        (root / "manifest.jsonl").write_text(json.dumps(line) + "\n")
        assert any("'/etc/hostname' outside" in p for p in verify(root).problems)
        with pytest.raises(DatasetIntegrityError, match="/etc/hostname"):
            MixbridgeDataset(root)
    (root / "shards" / "link.npz").symlink_to(root.parent / "x.npz")
    line.update(shard="shards/link.npz")
    (root / "manifest.jsonl").write_text(json.dumps(line) + "\n")
    assert any("through a link" in p for p in verify(root).problems)


# --------------------------------------------------------------------------- 5. local Ray on loopback
ray_installed = importlib.util.find_spec("ray") is not None


def test_run_ray_without_an_address_starts_ray_with_the_loopback_options(monkeypatch, tmp_path):
    """The arguments (the real instance is checked below when Ray is installed)."""
    from mixbridge.plugins.datagen import ray_backend

    seen: dict = {}

    class _Stop(Exception):
        pass

    class _FakeRay:
        def is_initialized(self):
            return False

        def init(self, **kw):
            seen.update(kw)
            raise _Stop

    monkeypatch.setattr(ray_backend, "_import_ray", lambda: _FakeRay())
    with pytest.raises(_Stop):
        ray_backend.run_ray({}, None, [0], 3, 1.0, None, None)
    assert seen == ray_backend.local_ray_options(3)
    assert seen["_node_ip_address"] == "127.0.0.1" and seen["include_dashboard"] is False


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


@pytest.mark.skipif(not ray_installed or shutil.which("ss") is None, reason="needs ray and ss (iproute2)")
def test_a_local_ray_listens_on_loopback_only():
    code = (
        "import os, ray\n"
        "from mixbridge.plugins.datagen.ray_backend import local_ray_options\n"
        "ray.init(**local_ray_options(1))\n"
        "@ray.remote\n"
        "def f():\n"
        "    return os.getpid()\n"
        "print('worker', ray.get(f.remote()), flush=True)\n"
        "import sys; sys.stdin.readline()\n"
        "ray.shutdown()\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("worker")
        pids = _descendants(proc.pid) | {proc.pid}
        ss = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
        ours = [ln.split() for ln in ss.splitlines() if any(f"pid={p}," in ln for p in pids)]
        assert len(ours) >= 3, ss  # GCS, raylet, workers...
        exposed = [f[3] for f in ours if not f[3].replace("[::ffff:", "").startswith("127.0.0.1")]
        assert exposed == [], f"Ray listens beyond loopback: {exposed}"
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


# --------------------------------------------------------------------------- 6. numbers and SIGTERM
@pytest.mark.parametrize("kw, match", [
    ({"shard_size": 0}, r"--shard-size 0 is outside \[1, 100000\]"),
    ({"shard_size": -3}, r"--shard-size -3 is outside \[1, 100000\]"),
    ({"sample_rate": 0}, r"--sample-rate 0 is outside \[8000, 384000\] Hz"),
    ({"seed": -1}, r"--seed -1 is outside \[0, "),
    ({"n": -1}, r"--n -1 is outside \[0, "),
    ({"patch_s": float("nan")}, r"--patch-s nan is outside"),
])
def test_numbers_out_of_range_are_refused_with_the_limit(tmp_path, kw, match):
    src = _write_stems(tmp_path / "src", n=1)
    with pytest.raises(DatagenConfigError, match=match):
        _cfg(src, **kw)


def test_run_options_out_of_range_are_refused(tmp_path):
    src = _write_stems(tmp_path / "src", n=1)
    cfg = _cfg(src, n=1)
    with pytest.raises(DatagenConfigError, match=r"--workers 0 with --executor ray"):
        generate(cfg, tmp_path / "a", workers=0, executor="ray", progress=False)
    with pytest.raises(DatagenConfigError, match=r"--timeout-s inf is outside"):
        generate(cfg, tmp_path / "b", timeout_s=float("inf"), progress=False)
    with pytest.raises(DatagenConfigError, match=r"--max-failure-fraction nan"):
        generate(cfg, tmp_path / "c", max_failure_fraction=float("nan"), progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_sample_rate_zero_leaves_no_config_behind(tmp_path, capsys):
    src = _write_stems(tmp_path / "src", n=1)
    out = tmp_path / "ds"
    base = ["datagen", "effect", "--chain", "eq", "--source", str(src), "--n", "2", "--patch-s", "0.1",
            "--workers", "0", "-q", "-o", str(out)]
    assert main(base + ["--sample-rate", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--sample-rate 0 is outside [8000, 384000] Hz" in err
    assert not out.exists()
    assert main(base + ["--sample-rate", "22050"]) == 0


_SLOW_CLI = """
import functools, sys
from mixbridge.plugins.datagen import runner
runner.generate = functools.partial(runner.generate, faults={"*": "delay:0.2"})
from mixbridge.app.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sigterm_stops_with_the_same_summary_as_ctrl_c(tmp_path, sig):
    src = _write_stems(tmp_path / "src", n=1)
    root = tmp_path / "ds"
    cmd = [sys.executable, "-c", _SLOW_CLI, "datagen", "effect", "--chain", "eq", "--source", str(src), "--n", "40",
           "--patch-s", "0.1", "--shard-size", "2", "--workers", "1", "-o", str(root)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            m = root / "manifest.jsonl"
            if m.is_file() and m.read_bytes().count(b"\n") >= 1:
                break
            time.sleep(0.05)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (proc.returncode, err)
    assert "effect dataset" in err and "examples generated" in err and "stopped early: " in err, err
    assert err.rstrip().endswith("mixbridge datagen: interrupted")
    report = verify(root, allow_incomplete=True)
    assert report.ok and report.n_examples >= 2 and report.missing, report.text()


def test_cli_shard_size_zero_is_refused_with_its_limit(tmp_path, capsys):
    """``--shard-size 0`` is one line naming the value and its limit, exit 2, and no folder is left."""
    from mixbridge.app.cli import main
    from tests.support import write_multitrack

    stems = write_multitrack(tmp_path / "stems", seconds=1.0)
    out = tmp_path / "ds"
    rc = main(["datagen", "effect", "--chain", "eq", "--source", str(stems), "-o", str(out), "--n", "4",
               "--shard-size", "0", "-q"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "shard" in err and "0" in err and "1" in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert not out.exists()
