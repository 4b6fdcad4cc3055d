"""Calibration tells continuous knobs from choices by probing between display steps; maps that cannot
reach the schema fail at load naming the part they reach and the fixes (issue 14, item 5).

Before: LSP's compressor's attack and release (``0.000 .. 2000`` ms, three decimals) became
``choices`` tables because their low ends round to the same text, so a map driving them failed
with "'at' is a choice parameter". Fakes with closed-form displays pin each rule; the installed
LSP compressor (lsp-plugins-vst) is calibrated for real where it is installed.
"""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from mixbridge.app.cli import main
from mixbridge.errors import ParamRangeError, PluginMapError
from mixbridge.plugins.map_calibration import map_document, measure_parameter
from mixbridge.plugins.map_curves import Choices, Curve, parse_display
from mixbridge.plugins.map_laws import CONVERSIONS, lsp_knee_from_width
from mixbridge.plugins.pluginmap import map_from_dict
from tests.support import needs_vst

LSP_COMPRESSOR = Path("/usr/lib/vst/lsp-plugins/compressor-stereo.so")
needs_lsp = pytest.mark.skipif(
    not (LSP_COMPRESSOR.exists() and importlib.util.find_spec("dawdreamer") is not None),
    reason="needs dawdreamer and the Debian lsp-plugins-vst VST2s (/usr/lib/vst/lsp-plugins/compressor-stereo.so)")

#: LSP shows times with 3 significant digits (``0.117``, ``1.04``, ``20.0``): a value set through the
#: measured curve reads back within half a unit of that last digit, 0.5 % of the value (plus the
#: linear interpolation between curve points, well under it).
LSP_DISPLAY_REL_TOL = 5e-3


class _Fake:
    """A one-parameter plugin whose display is ``text(u)``."""

    def __init__(self, text, label=""):
        self.text, self.label, self.u = text, label, 0.5

    def param_names(self):
        return ["p"]

    def param_label(self, i):
        return self.label

    def get_normalised(self, i):
        return self.u

    def set_normalised(self, i, v):
        self.u = float(v)

    def display_text(self, i):
        return self.text(self.u)


def _lsp_time(u: float) -> float:
    """An LSP-like time knob: 0 .. 2000 ms, exponential over most of its travel."""
    return 2000.0 * (math.exp(10.0 * u) - 1.0) / (math.exp(10.0) - 1.0)


def _three_digits(v: float) -> str:
    return f"{v:.3f}" if v < 1 else f"{v:.3g}" if v < 1000 else f"{v:.0f}"


def test_a_continuous_knob_whose_low_end_rounds_alike_stays_a_curve():
    fake = _Fake(lambda u: _three_digits(_lsp_time(u)), "ms")
    c = measure_parameter(fake, 0)
    assert isinstance(c, Curve) and c.lo == 0.0 and c.hi == 2000.0
    for v in (0.1, 1.0, 10.0, 100.0, 1000.0):  # the schema's attack range and beyond
        u = c.to_normalised(v)
        assert _lsp_time(u) == pytest.approx(v, rel=LSP_DISPLAY_REL_TOL)
    assert fake.u == 0.5  # restored


@pytest.mark.parametrize("text,n", [
    (lambda u: str(int(round(u * 4))), 5),                       # an enumeration shown as numbers
    (lambda u: "1.000000" if u >= 0.5 else "0.000000", 2),        # ZamComp's Sidechain toggle
    (lambda u: ("512", "1024", "2048", "4096")[min(int(u * 4), 3)], 4),
])
def test_a_numeric_enumeration_stays_a_choice(text, n):
    c = measure_parameter(_Fake(text), 0)
    assert isinstance(c, Choices) and len(c.choices) == n


def test_a_gain_knob_showing_minus_inf_at_zero_is_a_curve_from_its_first_finite_point():
    fake = _Fake(lambda u: "-inf" if u == 0 else f"{20 * math.log10(u) + 60:.2f}", "dB")
    c = measure_parameter(fake, 0)
    assert isinstance(c, Curve) and c.normalised[0] == pytest.approx(0.01) and c.hi == 60.0
    assert c.to_normalised(40.0) == pytest.approx(0.1, rel=1e-3)  # 20 log10(0.1) + 60 dB


# --------------------------------------------------------------------------- maps that cannot reach
def _calibration(knee_display=(-24.0, 0.0)) -> dict:
    lin = [0.0, 1.0]
    curves = {
        "al": {"unit": "dB", "normalised": lin, "display": [-60.0, 0.0]},
        "cr": {"unit": "", "normalised": lin, "display": [1.0, 100.0]},
        "at": {"unit": "ms", "normalised": lin, "display": [0.0, 2000.0]},
        "rt": {"unit": "ms", "normalised": lin, "display": [0.0, 5000.0]},
        "kn": {"unit": "dB", "normalised": lin, "display": list(knee_display)},
        "mk": {"unit": "dB", "normalised": lin, "display": [-60.0, 60.0]},
        "cm": {"choices": {"Down": 0.25, "Up": 0.75}},
    }
    ident = {"file": "compressor-stereo.so", "format": "vst2", "name": "compressor-stereo", "num_params": 7,
             "inputs": 2, "outputs": 2}
    return {"identity": ident, "calibration": {"points": 2}, "curves": curves}


SETS = ["threshold_db=al", "ratio=cr", "attack_ms=at", "release_ms=rt", "makeup_db=mk"]


def test_a_map_that_cannot_reach_the_schema_fails_at_load_naming_the_part_it_reaches_and_the_fixes():
    doc = map_document(_calibration(), "compressor", name="lsp", sets=SETS + ["knee_db=kn"], fixed=["cm=Down"])
    with pytest.raises(PluginMapError, match=(
            r"compressor\.knee_db spans \[0, 8\] dB, but plugin parameter 'kn' of compressor-stereo reaches only "
            r"\[-24, 0\] dB; of knee_db it renders only \[0, 0\] dB; give set\['kn'\] a 'convert' .*lsp_knee_from_width"
            r".*declare the part it renders with \"range\": \[0, 0\] on set\['kn'\].*or map another plugin")):
        map_from_dict(doc, "lsp")


def test_a_declared_range_loads_refuses_values_outside_it_and_is_the_renderable_range():
    doc = map_document(_calibration((0.0, 4.0)), "compressor", name="lsp", sets=SETS + ["knee_db=kn"],
                       fixed=["cm=Down"], ranges=["knee_db=0:4"])
    pm = map_from_dict(doc, "lsp")
    assert pm.renderable_range("knee_db") == (0.0, 4.0) and pm.renderable_range("ratio") == (1.0, 20.0)
    values = {"threshold_db": -20.0, "ratio": 4.0, "attack_ms": 10.0, "release_ms": 100.0, "makeup_db": 0.0}
    assert pm.stage_values(pm.stages[0], {**values, "knee_db": 3.0}, 48000)["kn"] == pytest.approx(0.75)
    with pytest.raises(ParamRangeError, match=r"6 dB is outside the range this map renders, \[0, 4\] dB") as e:
        pm.stage_values(pm.stages[0], {**values, "knee_db": 6.0}, 48000)
    assert (e.value.param, e.value.reachable) == ("knee_db", (0.0, 4.0))  # so --clamp can move it
    with pytest.raises(PluginMapError, match=r"range must be \[lo, hi\] inside compressor.knee_db's"):
        map_from_dict(map_document(_calibration(), "compressor", name="x", sets=SETS + ["knee_db=kn"],
                                   fixed=["cm=Down"], ranges=["knee_db=0:9"]), "x")


def test_the_lsp_knee_law_gives_the_schemas_full_width():
    """LSP's soft region runs threshold*k .. threshold/k: full width -2 * 20 log10 k dB, so k = -width/2 in dB."""
    assert lsp_knee_from_width(8.0, sample_rate=48000) == -4.0 and lsp_knee_from_width(0.0, sample_rate=48000) == 0.0
    assert "lsp_knee_from_width" in CONVERSIONS
    doc = map_document(_calibration(), "compressor", name="lsp", sets=SETS + ["knee_db=kn:lsp_knee_from_width"],
                       fixed=["cm=Down"])
    pm = map_from_dict(doc, "lsp")
    assert pm.renderable_range("knee_db") == (0.0, 8.0)


def test_map_document_refuses_malformed_bindings():
    with pytest.raises(PluginMapError, match=r"--set 'threshold_db': use SCHEMA=PLUGIN_PARAM"):
        map_document(_calibration(), "compressor", name="x", sets=["threshold_db"])
    with pytest.raises(PluginMapError, match=r"--range 'knee_db=0:4': no --set drives knee_db"):
        map_document(_calibration(), "compressor", name="x", sets=SETS, ranges=["knee_db=0:4"])


# --------------------------------------------------------------------------- the real LSP compressor
@needs_lsp
def test_lsp_compressor_attack_and_release_calibrate_as_continuous_curves():
    from mixbridge.plugins.vst_plugin import open_plugin

    lp = open_plugin(str(LSP_COMPRESSOR))
    names = lp.param_names()
    for name, values in (("at", (0.1, 0.3, 1.0, 10.0, 100.0)), ("rt", (10.0, 30.0, 100.0, 500.0))):
        i = names.index(name)
        c = measure_parameter(lp, i)
        assert isinstance(c, Curve), f"{name} calibrated as {type(c).__name__}"
        for v in values:  # through the curve, read back from the plugin's own display
            lp.set_normalised(i, c.to_normalised(v))
            assert parse_display(lp.display_text(i)) == pytest.approx(v, rel=LSP_DISPLAY_REL_TOL)
    for name in ("cm", "scm", "scs"):  # its real enumerations stay choices
        assert isinstance(measure_parameter(lp, names.index(name)), Choices)


@needs_lsp
def test_cli_writes_a_whole_lsp_map_and_refuses_one_that_cannot_reach(tmp_path, capsys):
    sets = ["threshold_db=al", "ratio=cr", "attack_ms=at", "release_ms=rt", "makeup_db=mk"]
    args = ["plugins", "calibrate", str(LSP_COMPRESSOR), "--processor", "compressor", "--fixed", "cm=Down",
            "--fixed", "scm=Peak", "--fixed", "scs=Max", "--fixed", "g_in=0"]
    for s in sets:
        args += ["--set", s]
    bad = tmp_path / "bad.json"
    assert main(args + ["--set", "knee_db=kn", "-o", str(bad)]) == 2
    assert "of knee_db it renders only [0, 0] dB" in capsys.readouterr().err and not bad.exists()
    good = tmp_path / "lsp_comp.json"
    assert main(args + ["--set", "knee_db=kn:lsp_knee_from_width", "-o", str(good)]) == 0
    pm = map_from_dict(json.loads(good.read_text()), "lsp_comp")
    curves = pm.plugins["compressor_stereo"].curves
    assert isinstance(curves["at"], Curve) and isinstance(curves["rt"], Curve) and isinstance(curves["g_in"], Curve)
    assert np.all(np.diff(curves["at"].display) > 0)


def test_a_knob_too_coarse_to_show_values_between_steps_is_a_choice_unless_declared_continuous():
    """A 0..20 knob shown as integers over 101 points: no text between its steps anywhere, so the
    display cannot tell it from an enumeration; ``continuous=True`` (``--continuous``) makes it a curve."""
    fake = _Fake(lambda u: str(int(round(20 * u))))
    assert isinstance(measure_parameter(fake, 0), Choices)
    c = measure_parameter(fake, 0, continuous=True)
    assert isinstance(c, Curve) and (c.lo, c.hi) == (0.0, 20.0) and np.all(np.diff(c.display) > 0)
    assert c.to_normalised(10.0) == pytest.approx(0.5, abs=0.01)  # the middle of the "10" run


def test_driving_a_choice_names_the_steps_and_the_continuous_fix():
    cal = _calibration()
    cal["curves"]["at"] = {"choices": {"0.000": 0.045, "0.001": 0.13, "0.002": 0.18, "20.0": 0.7, "2000": 1.0}}
    doc = map_document(cal, "compressor", name="x", sets=SETS + ["knee_db=kn:lsp_knee_from_width"], fixed=["cm=Down"])
    with pytest.raises(PluginMapError, match=r"'at' is a choice parameter \(calibration saw only steps: 0\.000, "
                                             r"0\.001, 0\.002, 20\.0, \.\.\.\); put it in 'fixed', or.*"
                                             r"plugins calibrate compressor-stereo --continuous at"):
        map_from_dict(doc, "x")


@needs_lsp
def test_a_declared_range_narrows_datagen_sampling(tmp_path, capsys):
    """``"range"`` on a binding reaches data generation through the vst backend's renderable range."""
    from mixbridge.plugins.backend import Backend
    from mixbridge.plugins.datagen.params import flat_params, renderable_limits
    from mixbridge.plugins.vst import VstBackend

    if VstBackend.renderable_range is Backend.renderable_range:
        pytest.skip("VstBackend.renderable_range does not read the map yet (calibrate's request in REQUESTS.md)")
    path = tmp_path / "lsp_narrow.json"
    args = ["plugins", "calibrate", str(LSP_COMPRESSOR), "--processor", "compressor", "--fixed", "cm=Down",
            "--range", "attack_ms=1:50", "-o", str(path)]
    for s in SETS + ["knee_db=kn:lsp_knee_from_width"]:
        args += ["--set", s]
    assert main(args) == 0
    limits = renderable_limits("vst", 48000, {"maps": {"compressor": str(path)}}, flat_params(["compressor"]))
    assert limits == {"compressor.attack_ms": [1.0, 50.0]}
    import soundfile as sf

    from mixbridge.plugins.datagen.format import Dataset

    src = tmp_path / "src"
    src.mkdir()
    t = np.arange(44100) / 44100
    sf.write(src / "tone.wav", (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 44100, subtype="FLOAT")
    out = tmp_path / "ds"
    capsys.readouterr()
    assert main(["datagen", "effect", "--plugin", str(path), "--source", str(src), "--n", "8", "--patch-s", "0.2",
                 "--workers", "0", "-o", str(out)]) == 0
    assert "compressor.attack_ms: sampled in [1, 50] only" in capsys.readouterr().out
    ds = Dataset.open(out)
    k = ds.config["param_names"].index("compressor.attack_ms")
    for rec in ds.example_records():
        with np.load(ds.path(rec.shard)) as z:
            attack = z["params_real"][:, k]
        assert np.all((attack >= 1.0 - 1e-9) & (attack <= 50.0 + 1e-9))


class _Rendered(_Fake):
    """A fake whose rendered audio follows its internal value ``value(u)`` (the display may be coarser)."""

    def __init__(self, text, value):
        super().__init__(text)
        self.value = value

    def render(self):
        return np.full((2, 64), self.value(self.u), np.float32)


def test_the_audio_decides_where_the_display_cannot():
    """Integer text over a 0..20 knob: the renders differ inside one displayed step, so it is continuous;
    an enumeration whose audio holds over each step stays a choice."""
    knob = _Rendered(lambda u: str(int(round(20 * u))), lambda u: 20 * u)
    c = measure_parameter(knob, 0, render=knob.render)
    assert isinstance(c, Curve) and (c.lo, c.hi) == (0.0, 20.0)
    steps = _Rendered(lambda u: str(int(round(4 * u))), lambda u: round(4 * u))
    assert isinstance(measure_parameter(steps, 0, render=steps.render), Choices)


@needs_vst
def test_the_audio_probe_hears_a_knob_and_not_a_toggle_on_a_real_plugin():
    from mixbridge.plugins.map_calibration import audio_moves_between, plugin_renderer
    from mixbridge.plugins.vst_plugin import open_plugin

    lp = open_plugin("ZamComp")
    render = plugin_renderer(lp)
    assert render is not None
    names = lp.param_names()
    # "Sidechain" shows 0.000000 below 0.5: one step, whatever the value in it
    assert not audio_moves_between(lp, names.index("Sidechain"), render, 0.05, 0.45)
    assert audio_moves_between(lp, names.index("Threshold"), render, 0.5, 0.8)  # -40 vs -16 dB on the noise steps
    assert isinstance(measure_parameter(lp, names.index("Sidechain"), render=render), Choices)
