"""A plugin that loads and probes fine but crashes on audio (issue 10 item 2): ``automix --backend vst`` and
``render --backend vst`` render in a child process, so the crash is one error line naming the plugin file, the
track and processor it was rendering and the signal (exit 2), never a dead command.

Real files and real processes: ``ZamEQ2-vst.so``, a VST2 compiled here that forwards every call to the
Debian ZamEQ2 (so it loads, probes and passes the map's identity check as ZamEQ2) but writes through a
null pointer (SIGSEGV) in its audio callback as soon as its input is not silent; the real ``mixbridge``
CLI in a child process, so that a regression kills that child and not pytest.
"""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

from tests.plugins.test_probe import C_COMPILER, ZAMEQ2, _cli, needs_cc, private_cache  # noqa: F401 - fixture
from tests.support import needs_vst

CRASH_C = r"""
/* Loads and probes as the real plugin REAL (every call forwarded); SIGSEGV on the first non-silent input. */
#include <dlfcn.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
typedef struct AEffect AEffect;
typedef intptr_t (*dispatcher_t)(AEffect *, int32_t, int32_t, intptr_t, void *, float);
typedef void (*process_t)(AEffect *, float **, float **, int32_t);
typedef void (*process_double_t)(AEffect *, double **, double **, int32_t);
struct AEffect { /* the VST 2.4 layout */
  int32_t magic; dispatcher_t dispatcher; process_t process;
  void (*setParameter)(AEffect *, int32_t, float); float (*getParameter)(AEffect *, int32_t);
  int32_t numPrograms, numParams, numInputs, numOutputs, flags;
  intptr_t resvd1, resvd2; int32_t initialDelay, realQualities, offQualities; float ioRatio;
  void *object, *user; int32_t uniqueID, version;
  process_t processReplacing; process_double_t processDoubleReplacing; char future[56];
};
static process_t real_process, real_replacing;
static int *volatile bad_pointer = NULL; /* volatile: the compiler cannot drop the store below */
static void check(AEffect *e, float **in, int32_t n) {
  for (int32_t c = 0; c < e->numInputs; c++)
    for (int32_t i = 0; i < n; i++)
      if (in[c][i] != 0.0f) { *bad_pointer = 1; raise(SIGSEGV); }
}
static void process(AEffect *e, float **in, float **out, int32_t n) {
  check(e, in, n); real_process(e, in, out, n);
}
static void replacing(AEffect *e, float **in, float **out, int32_t n) {
  check(e, in, n); real_replacing(e, in, out, n);
}
AEffect *VSTPluginMain(void *host) {
  void *lib = dlopen(REAL, RTLD_NOW | RTLD_LOCAL);
  if (!lib) return NULL;
  AEffect *(*real_main)(void *) = (AEffect *(*)(void *))dlsym(lib, "VSTPluginMain");
  if (!real_main) real_main = (AEffect *(*)(void *))dlsym(lib, "main");
  AEffect *e = real_main ? real_main(host) : NULL;
  if (!e) return NULL;
  real_process = e->process;
  real_replacing = e->processReplacing;
  e->process = process;
  e->processReplacing = replacing;
  e->processDoubleReplacing = NULL;
  return e;
}
"""


@pytest.fixture(scope="module")
def crashing_eq(tmp_path_factory):
    """A VST_PATH folder holding ``ZamEQ2-vst.so``: ZamEQ2 that crashes (SIGSEGV) on audio."""
    d = tmp_path_factory.mktemp("crashvst")
    (d / "crash.c").write_text(CRASH_C)
    subprocess.run([C_COMPILER, "-shared", "-fPIC", "-O1", f'-DREAL="{ZAMEQ2}"', "-o", str(d / "ZamEQ2-vst.so"),
                    str(d / "crash.c"), "-ldl"], check=True, capture_output=True, timeout=120)
    return d


def _assert_one_crash_line(r: subprocess.CompletedProcess, plugin) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert r.stderr.count("\n") == 1, r.stderr[-2000:]
    assert str(plugin) in r.stderr and "SIGSEGV" in r.stderr and "while rendering track '" in r.stderr
    assert "(eq, plugin map 'zameq2_x2')" in r.stderr


@needs_vst
@needs_cc
def test_the_crashing_plugin_loads_and_probes_fine(crashing_eq):
    from mixbridge.plugins import probe

    res = probe.probe_plugin(crashing_eq / "ZamEQ2-vst.so", "vst2")
    assert res.ok and (res.inputs, res.outputs, res.n_params) == (1, 1, 12)  # what ZamEQ2 reports


@needs_vst
@needs_cc
def test_automix_vst_with_a_plugin_that_crashes_on_audio_is_one_error_line(crashing_eq, multitrack, tmp_path):
    out = tmp_path / "mix"
    r = _cli("automix", str(multitrack), "-o", str(out), "--backend", "vst", "--mixer", "knowledge", "-q",
             env_extra={"VST_PATH": str(crashing_eq)})
    _assert_one_crash_line(r, crashing_eq / "ZamEQ2-vst.so")
    # no output, no staging folder left ("cache": the probe cache of this test)
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["cache"]


@needs_vst
@needs_cc
def test_render_vst_with_a_plugin_that_crashes_on_audio_is_one_error_line(crashing_eq, multitrack, tmp_path):
    r = _cli("automix", str(multitrack), "-o", str(tmp_path / "mix"), "--mixer", "knowledge", "-q", "--no-report")
    assert r.returncode == 0, r.stderr[-2000:]
    wav = tmp_path / "again.wav"
    r = _cli("render", str(tmp_path / "mix" / "session.json"), "-o", str(wav), "--backend", "vst", "-q",
             env_extra={"VST_PATH": str(crashing_eq)})
    _assert_one_crash_line(r, crashing_eq / "ZamEQ2-vst.so")
    assert not wav.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["cache", "mix"]  # no temporary


@needs_vst
@needs_cc
def test_render_session_raises_the_crash_and_this_process_lives_on(crashing_eq, multitrack, monkeypatch):
    from mixbridge.app.automix import render_session
    from mixbridge.audio import load_stems
    from mixbridge.models.mixers import get_mixer
    from mixbridge.plugins.probe import PluginLoadError

    monkeypatch.setenv("VST_PATH", str(crashing_eq))
    s = get_mixer("knowledge")(load_stems(multitrack), source_base=multitrack)
    s.base_dir = multitrack
    with pytest.raises(PluginLoadError, match="SIGSEGV") as e:
        render_session(s, "vst")
    assert e.value.signal == "SIGSEGV" and e.value.path == crashing_eq / "ZamEQ2-vst.so"


@needs_vst
def test_the_vst_render_in_its_child_process_equals_the_render_in_this_one(multitrack):
    """The sandbox changes where the render runs, not what it renders; errors come back as they were."""
    from mixbridge.app.automix import _render_here, render_session
    from mixbridge.audio import load_stems
    from mixbridge.errors import ParamRangeError
    from mixbridge.models.mixers import get_mixer

    s = get_mixer("knowledge")(load_stems(multitrack), source_base=multitrack)
    s.base_dir = multitrack
    here, mres_here, be_here = _render_here(s, "vst", False, None, True, True, False, None, None)
    child, mres_child, be_child = render_session(s, "vst", measure=True, resolve_gain=True)
    np.testing.assert_array_equal(child.mix, here.mix)
    np.testing.assert_array_equal(mres_child.audio, mres_here.audio)
    assert mres_child.gain_db == mres_here.gain_db and be_child.notices == be_here.notices
    assert [t.lufs for t in child.tracks] == [t.lufs for t in here.tracks]
    s.tracks[0].params["eq"]["peak1_q"] = 1e6  # past the schema and the plugin's range
    with pytest.raises(ParamRangeError):  # rebuilt in this process from the child's error
        render_session(s, "vst")
