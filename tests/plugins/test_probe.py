"""The sandboxed plugin probe (:mod:`mixbridge.plugins.probe`): broken and hanging plugins are one row or
one error line naming the file and the signal or the limit, never a dead or hung command.

Real files and real processes: a Debian VST2 truncated to a few KB (dlopen maps past its end: SIGBUS),
a tiny shared library whose ``VSTPluginMain`` sleeps forever (compiled here; skipped with a reason
where no C compiler is installed), and the real ``mixbridge`` CLI in a child process, so that a
regression kills that child and not pytest.
"""
from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mixbridge.errors import ParamRangeError, PluginNotFoundError
from tests.support import needs_vst

#: A healthy Debian VST2 (1 in / 1 out, 12 params), copied and truncated for the faults.
ZAMEQ2 = Path("/usr/lib/vst/ZamEQ2-vst.so")
#: Bytes kept of the truncated copy: the ELF header survives, the mapped segments do not.
TRUNCATED_BYTES = 4096
#: Seconds the hanging plugin gets in these tests (the default limit is 30 s).
HANG_LIMIT_S = 1.5
#: Slack for process start and kill on a busy 2-core machine, in seconds.
KILL_SLACK_S = 30.0
#: The subprocess limit of one CLI run, in seconds: a hang shows as TimeoutExpired, not a stuck suite.
CLI_LIMIT_S = 180

HANG_C = """
#include <unistd.h>
void *VSTPluginMain(void *host) { for (;;) pause(); return 0; }
"""
C_COMPILER = shutil.which("cc") or shutil.which("gcc")
needs_cc = pytest.mark.skipif(C_COMPILER is None, reason="needs a C compiler (cc/gcc) to build the hanging plugin")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test gets its own probe cache folder and an empty in-memory cache."""
    from mixbridge.plugins import probe

    monkeypatch.setenv(probe.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(probe.TIMEOUT_ENV, raising=False)
    probe.clear_memo()
    yield
    probe.clear_memo()
    probe.close_children()


@pytest.fixture
def plugin_dir(tmp_path) -> Path:
    """A search folder with ``ProbeBroken-vst.so`` (ZamEQ2 truncated) and ``ProbeHealthy-vst.so`` (a full copy)."""
    d = tmp_path / "vst"
    d.mkdir()
    shutil.copyfile(ZAMEQ2, d / "ProbeHealthy-vst.so")
    shutil.copyfile(ZAMEQ2, d / "ProbeBroken-vst.so")
    os.truncate(d / "ProbeBroken-vst.so", TRUNCATED_BYTES)
    return d


@pytest.fixture(scope="module")
def hanging_plugin(tmp_path_factory) -> Path:
    """``Hang-vst.so``: a VST2 entry point that never returns."""
    d = tmp_path_factory.mktemp("hang")
    (d / "hang.c").write_text(HANG_C)
    subprocess.run([C_COMPILER, "-shared", "-fPIC", "-o", str(d / "Hang-vst.so"), str(d / "hang.c")], check=True,
                   capture_output=True, timeout=120)
    return d / "Hang-vst.so"


def _cli(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "mixbridge.app.cli", *args], capture_output=True, text=True,
                          timeout=CLI_LIMIT_S, env=env)


def _my_children() -> list[int]:
    """Live (non-zombie) processes whose parent is this one."""
    me = str(os.getpid())
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me and fields[0] != "Z":
            out.append(int(entry))
    return out


# --------------------------------------------------------------------------- a truncated .so
@needs_vst
def test_plugins_list_shows_a_truncated_plugin_as_one_failed_row(plugin_dir):
    r = _cli("plugins", "list", "Probe", "--path", str(plugin_dir))
    assert r.returncode == 0, (r.returncode, r.stderr)
    rows = {line.split()[0]: line for line in r.stdout.splitlines() if line.startswith("Probe")}
    assert "failed: killed by SIGBUS" in rows["ProbeBroken"] and str(plugin_dir / "ProbeBroken-vst.so") in rows[
        "ProbeBroken"]
    assert "1 in / 1 out, 12 params" in rows["ProbeHealthy"]
    assert "2 plugin(s), 1 failed to load" in r.stdout


@needs_vst
def test_plugins_inspect_of_a_truncated_plugin_is_one_error_line(plugin_dir):
    path = plugin_dir / "ProbeBroken-vst.so"
    r = _cli("plugins", "inspect", str(path))
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stderr.count("\n") == 1 and str(path) in r.stderr and "SIGBUS" in r.stderr
    assert r.stdout == ""


@needs_vst
def test_rendering_through_a_truncated_plugin_is_one_error(plugin_dir, multitrack, tmp_path):
    """``automix --backend vst`` with a truncated ZamEQ2 first on VST_PATH: exit 2, one line, no output."""
    bad = tmp_path / "badvst"
    bad.mkdir()
    shutil.copyfile(plugin_dir / "ProbeBroken-vst.so", bad / "ZamEQ2-vst.so")
    out = tmp_path / "mix"
    r = _cli("automix", str(multitrack), "-o", str(out), "--backend", "vst", "-q", env_extra={"VST_PATH": str(bad)})
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert r.stderr.count("\n") == 1 and str(bad / "ZamEQ2-vst.so") in r.stderr and "SIGBUS" in r.stderr
    assert not (out / "master.wav").exists()


@needs_vst
def test_loaded_plugin_refuses_a_truncated_file_in_this_process(plugin_dir):
    from mixbridge.plugins.probe import PluginLoadError
    from mixbridge.plugins.vst_plugin import LoadedPlugin

    path = plugin_dir / "ProbeBroken-vst.so"
    with pytest.raises(PluginLoadError) as e:
        LoadedPlugin(path, "vst2", 48000)
    assert e.value.signal == "SIGBUS" and e.value.path == path
    assert isinstance(e.value, PluginNotFoundError)  # callers catching the old type still catch it
    assert str(path) in str(e.value) and "\n" not in str(e.value)


# --------------------------------------------------------------------------- a hanging plugin
@needs_vst
@needs_cc
def test_a_hanging_plugin_times_out_naming_the_file_and_the_limit(hanging_plugin):
    t0 = time.monotonic()
    r = _cli("plugins", "inspect", str(hanging_plugin), "--timeout-s", str(HANG_LIMIT_S))
    assert time.monotonic() - t0 < HANG_LIMIT_S + KILL_SLACK_S
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stderr.count("\n") == 1 and str(hanging_plugin) in r.stderr
    assert f"did not load within {HANG_LIMIT_S:g} s" in r.stderr


@needs_vst
@needs_cc
def test_a_hanging_plugin_is_one_row_and_its_process_is_killed(hanging_plugin, plugin_dir):
    from mixbridge.plugins import probe
    from mixbridge.plugins.discovery import find_plugins

    shutil.copyfile(hanging_plugin, plugin_dir / "ProbeHang-vst.so")
    probe.close_children()
    before = set(_my_children())  # other tests' long-lived children (servers), not the probe's
    found = [pf for pf in find_plugins([plugin_dir]) if pf.name.startswith("Probe")]
    res = {r.path.name: r for r in probe.probe_plugins(found, HANG_LIMIT_S)}
    assert res["ProbeHang-vst.so"].status == "timeout" and res["ProbeHang-vst.so"].limit_s == HANG_LIMIT_S
    assert res["ProbeBroken-vst.so"].signal == "SIGBUS"
    assert res["ProbeHealthy-vst.so"].ok  # the plugin after the hang got a fresh child
    probe.close_children()
    assert set(_my_children()) - before == set()  # the hung child and the crashed one are gone, not orphaned


@needs_vst
@needs_cc
def test_a_cached_timeout_serves_listings_but_loading_tries_again(hanging_plugin):
    from mixbridge.plugins import probe

    first = probe.probe_plugin(hanging_plugin, "vst2", HANG_LIMIT_S)
    assert first.status == "timeout" and not first.cached
    t0 = time.monotonic()
    again = probe.probe_plugin(hanging_plugin, "vst2", HANG_LIMIT_S)
    assert again.cached and time.monotonic() - t0 < HANG_LIMIT_S  # the listing does not wait again
    assert not probe.probe_plugin(hanging_plugin, "vst2", 2 * HANG_LIMIT_S).cached  # a larger limit retries
    with pytest.raises(probe.PluginLoadError, match=f"did not load within {HANG_LIMIT_S:g} s"):
        probe.ensure_loadable(hanging_plugin, "vst2", HANG_LIMIT_S)


# --------------------------------------------------------------------------- the cache
@needs_vst
def test_results_are_cached_per_file_size_and_mtime(plugin_dir):
    from mixbridge.plugins import probe

    path = plugin_dir / "ProbeHealthy-vst.so"
    first = probe.probe_plugin(path, "vst2")
    assert first.ok and not first.cached and (first.inputs, first.outputs, first.n_params) == (1, 1, 12)
    probe.clear_memo()  # the file cache alone
    second = probe.probe_plugin(path, "vst2")
    assert second.cached and (second.inputs, second.outputs, second.n_params) == (1, 1, 12)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # the file changed
    assert not probe.probe_plugin(path, "vst2").cached
    os.truncate(path, TRUNCATED_BYTES)  # and now it is broken: the cached success is not reused
    assert probe.probe_plugin(path, "vst2").signal == "SIGBUS"


@needs_vst
def test_cache_folder_that_cannot_be_written_only_loses_the_cache(plugin_dir, tmp_path, monkeypatch):
    from mixbridge.plugins import probe

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(probe.CACHE_ENV, str(blocker))  # the cache file would have to live inside a file
    assert probe.probe_plugin(plugin_dir / "ProbeHealthy-vst.so", "vst2").ok
    assert blocker.read_text() == "not a folder"


# --------------------------------------------------------------------------- the limit
@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, 1e9])
def test_timeout_outside_its_range_is_refused(bad):
    from mixbridge.plugins.probe import MAX_TIMEOUT_S, check_timeout_s

    with pytest.raises(ParamRangeError, match=rf"--timeout-s .* is outside \(0, {MAX_TIMEOUT_S:g}\] s"):
        check_timeout_s(bad)


def test_timeout_default_comes_from_the_environment(monkeypatch):
    from mixbridge.plugins import probe

    assert probe.check_timeout_s(None) == probe.DEFAULT_TIMEOUT_S
    monkeypatch.setenv(probe.TIMEOUT_ENV, "7.5")
    assert probe.check_timeout_s(None) == 7.5
    monkeypatch.setenv(probe.TIMEOUT_ENV, "soon")
    with pytest.raises(ParamRangeError, match=r"\$MIXBRIDGE_PLUGIN_TIMEOUT_S='soon' is not a number"):
        probe.check_timeout_s(None)


@needs_vst
@needs_cc
def test_a_kill_from_outside_is_not_blamed_on_the_plugin(hanging_plugin, plugin_dir):
    """SIGKILL of the probe child (the OOM killer) while idle or mid-load: a fresh child takes the
    request, so the result is the plugin's own (ok, or the timeout), never "killed by SIGKILL"."""
    import signal
    import threading

    from mixbridge.plugins import probe

    assert probe.probe_plugin(plugin_dir / "ProbeHealthy-vst.so", "vst2").ok
    os.kill(probe._SHARED[-1].proc.pid, signal.SIGKILL)  # idle child killed
    shutil.copyfile(ZAMEQ2, plugin_dir / "ProbeOther-vst.so")
    assert probe.probe_plugin(plugin_dir / "ProbeOther-vst.so", "vst2").ok
    victim = probe._SHARED[-1].proc.pid
    timer = threading.Timer(HANG_LIMIT_S / 3, os.kill, (victim, signal.SIGKILL))  # killed mid-load
    timer.start()
    res = probe.probe_plugin(hanging_plugin, "vst2", HANG_LIMIT_S)
    timer.join()
    assert res.status == "timeout" and res.signal is None
