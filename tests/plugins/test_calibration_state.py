"""Calibration measures whether a plugin keeps state from one render to the next, and the map says so
(issue 14, the unseen-plugin walk).

Before: ``plugins calibrate --processor`` wrote LSP's mono compressor map without
``fresh_instance_per_call``; the plugin keeps its gain reduction across the host's re-prepare (a
-60 dBFS tone rendered after a 0 dBFS one started 12 dB down), so every example of ``datagen effect``
began with what the example before left behind, and the proxy learned it. Toy processors with
closed-form state pin the rule; the installed LSP compressor and the shipped ZamComp and Dragonfly
Plate maps check it for real.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from mixbridge.app.cli import main
from mixbridge.plugins.contract_measures import square_wave
from mixbridge.plugins.map_calibration import (
    AUDIO_PROBE_ABS,
    STATE_PROBE_LOUD_DBFS,
    STATE_PROBE_QUIET_DBFS,
    STATE_PROBE_S,
    measure_render_state,
    state_probe_params,
    with_render_state,
)
from mixbridge.plugins.map_loader import load_map
from mixbridge.plugins.pluginmap import map_from_dict
from tests.support import needs_vst

LSP_MONO = Path("/usr/lib/vst/lsp-plugins/compressor-mono.so")
needs_lsp_mono = pytest.mark.skipif(
    not (LSP_MONO.exists() and importlib.util.find_spec("dawdreamer") is not None),
    reason="needs dawdreamer and the Debian lsp-plugins-vst VST2s (/usr/lib/vst/lsp-plugins/compressor-mono.so)")

#: Relative error of a measured fraction against its float64 closed form: the audio is float32 (2^-24
#: relative), and a fraction is a difference of two renders divided by a peak; the floor's two renders
#: differ by 1 % only (the quiet probe's own peak, -40 dBFS), which multiplies that error by 100.
FLOAT32_REL = 1e-6
FLOOR_REL = 100 * 2 * 2.0 ** -24 * 2


class _ToyBackend:
    """A gain whose value is set by the previous render's peak: ``y = x / (1 + peak of the last input)``.

    ``keeps``: the memory survives a render (a plugin that does not clear on re-prepare); otherwise
    every render starts from a cleared memory. ``close()`` is a fresh instance (memory cleared).
    ``jitter``: adds unseeded noise of that size (a plugin whose renders differ).
    """

    def __init__(self, keeps: bool, jitter: float = 0.0) -> None:
        self.keeps, self.jitter, self.last_peak = keeps, jitter, 0.0
        self.rng = np.random.default_rng()

    def process(self, processor, x, params, label=""):
        y = x / (1.0 + self.last_peak)
        if self.jitter:
            y = y + self.jitter * self.rng.standard_normal(x.shape)
        self.last_peak = float(np.max(np.abs(x))) if self.keeps else 0.0
        return y.astype(np.float32)

    def close(self):
        self.last_peak = 0.0


def _probe_peaks() -> tuple[float, float]:
    """Peaks of the quiet probe and the loud burst, as :func:`measure_render_state` draws them."""
    noise = np.random.default_rng(0).uniform(-1.0, 1.0, (2, 1, int(round(STATE_PROBE_S * 48000))))
    return (10 ** (STATE_PROBE_QUIET_DBFS / 20) * float(np.max(np.abs(noise[0]))),
            10 ** (STATE_PROBE_LOUD_DBFS / 20) * float(np.max(np.abs(noise[1]))))


def test_a_processor_that_keeps_state_is_found_with_its_closed_form_and_one_that_clears_it_is_not():
    pm = load_map("zamcomp")  # any compressor map: the toy backend renders, not the plugin
    q, loud = _probe_peaks()
    kept = measure_render_state(pm, 48000, backend=_ToyBackend(keeps=True))
    # after itself the quiet probe is divided by (1 + q), after the burst by (1 + loud)
    expected = abs(1 / (1 + loud) - 1 / (1 + q)) * (1 + q)
    assert kept.carries_state and kept.deterministic
    assert kept.carried == pytest.approx(expected, rel=FLOAT32_REL)
    assert kept.floor == pytest.approx(q, rel=FLOOR_REL)  # first render from a cleared memory, then 1 + q
    cleared = measure_render_state(pm, 48000, backend=_ToyBackend(keeps=False))
    assert not cleared.carries_state and cleared.deterministic
    assert cleared.carried == cleared.floor == cleared.fresh == 0.0
    jitter = measure_render_state(pm, 48000, backend=_ToyBackend(keeps=False, jitter=1e-3 * q))
    assert not jitter.deterministic and jitter.fresh > AUDIO_PROBE_ABS


def test_the_probe_settings_sit_half_way_along_each_scale_inside_what_the_map_renders():
    p = state_probe_params(load_map("zamcomp"))
    assert p["threshold_db"] == -30.0 and p["knee_db"] == 4.0 and p["makeup_db"] == 6.0
    assert p["ratio"] == pytest.approx(20 ** 0.5) and p["attack_ms"] == pytest.approx(10 ** 0.5)
    assert p["release_ms"] == pytest.approx(5000 ** 0.5)


def test_the_measured_flags_go_into_the_map_and_it_still_loads():
    pm_doc = json.loads(Path(load_map("zamcomp").path).read_text())
    kept = measure_render_state(load_map("zamcomp"), 48000, backend=_ToyBackend(keeps=True))
    doc = with_render_state(pm_doc, kept)
    assert doc["fresh_instance_per_call"] is True and doc["deterministic"] is True
    assert all(rp["calibration"]["render_state"]["carries_state"] for rp in doc["plugins"].values())
    assert map_from_dict(doc, "x").fresh_instance_per_call
    assert "fresh_instance_per_call" not in pm_doc or pm_doc["fresh_instance_per_call"] is False  # a copy


# --------------------------------------------------------------------------- real plugins
@needs_vst
@pytest.mark.parametrize("name", ["zamcomp", "zamcompx2", "zameq2_x2", "zamaximx2", "dragonfly_plate",
                                  "dragonfly_room"])
def test_the_shipped_maps_flags_agree_with_the_measurement(name):
    """The Zam plugins clear on re-prepare (bit-identical whatever came before); the Dragonfly reverbs keep
    their tails, and Room's differs between fresh instances (the flags were measured by hand before)."""
    pm = load_map(name)
    state = measure_render_state(pm, 48000)
    assert (state.carries_state, state.deterministic) == (pm.fresh_instance_per_call, pm.deterministic)
    if not pm.fresh_instance_per_call:
        assert state.carried == state.floor == state.fresh == 0.0


@needs_vst
def test_recalibrating_a_map_in_place_measures_its_flags_again(tmp_path, capsys):
    doc = json.loads(Path(load_map("dragonfly_plate").path).read_text())
    del doc["fresh_instance_per_call"]  # a map written before the flag was measured
    dst = tmp_path / "plate.json"
    dst.write_text(json.dumps(doc))
    assert not load_map(dst).fresh_instance_per_call
    assert main(["plugins", "calibrate", "DragonflyPlateReverb", "-o", str(dst), "--points", "11"]) == 0
    assert "keeps state from one render to the next" in capsys.readouterr().out
    again = load_map(dst)
    assert again.fresh_instance_per_call and again.deterministic
    assert [b.source for b in again.stages[0].set] == [b.source for b in load_map("dragonfly_plate").stages[0].set]


#: LSP's mono compressor after a 0 dBFS tone at T -20 dB, ratio 4: a -60 dBFS tone rendered next starts
#: 12 dB down (measured); rendered alone it is at 0 dB. Over the first 10 ms the carried state must show
#: at least this much reduction for the test to mean anything.
CARRIED_REDUCTION_DB = 6.0


@needs_lsp_mono
def test_calibrate_flags_lsp_mono_and_its_renders_no_longer_depend_on_the_one_before(tmp_path, capsys):
    from mixbridge.plugins.vst import VstBackend

    path = tmp_path / "lsp_mono.json"
    args = ["plugins", "calibrate", str(LSP_MONO), "--processor", "compressor", "--set", "threshold_db=al",
            "--set", "ratio=cr", "--set", "attack_ms=at", "--set", "release_ms=rt",
            "--set", "knee_db=kn:lsp_knee_from_width", "--set", "makeup_db=mk", "--fixed", "cm=Down",
            "--fixed", "scm=Peak", "--fixed", "sla=0", "-o", str(path)]
    assert main(args) == 0
    assert "keeps state from one render to the next" in capsys.readouterr().out
    doc = json.loads(path.read_text())
    assert doc["fresh_instance_per_call"] is True and doc["deterministic"] is True
    sr = 48000
    loud = square_wave(1.0, sr // 4, sr)[:1]
    quiet = square_wave(10 ** (-60 / 20), sr // 4, sr)[:1]
    p = {"threshold_db": -20.0, "ratio": 4.0, "attack_ms": 2.0, "release_ms": 50.0}
    head = sr // 100

    def quiet_after_loud(pm) -> tuple[np.ndarray, np.ndarray]:
        be = VstBackend(sr, maps={"compressor": pm})
        alone = np.asarray(be.process("compressor", quiet, p))
        be.process("compressor", loud, p)
        return alone, np.asarray(be.process("compressor", quiet, p))

    pm = load_map(path)
    alone, after = quiet_after_loud(pm)
    assert np.array_equal(alone, after)  # a fresh instance per call: history does not matter
    alone, after = quiet_after_loud(dataclasses.replace(pm, fresh_instance_per_call=False))  # the old map
    gain_db = 20 * np.log10(np.sqrt(np.mean(after[0, :head] ** 2) / np.mean(quiet[0, :head] ** 2)))
    assert gain_db < -CARRIED_REDUCTION_DB
