"""Plugin maps: schema agreement, curves, identity checks, round trips, and the ``plugins`` CLI."""
from __future__ import annotations

import copy
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from mixbridge.app.cli import main
from mixbridge.errors import (
    BackendUnavailableError,
    ParamRangeError,
    PluginMapError,
    PluginNotFoundError,
    UnknownNameError,
)
from mixbridge.plugins import map_calibration, map_laws, map_sidechain, pluginmap
from mixbridge.plugins.map_curves import Curve, parse_display
from mixbridge.plugins.map_loader import builtin_map_names, load_map
from mixbridge.plugins.pluginmap import DEFAULT_MAPS, MAP_PROCESSORS, map_from_dict
from tests.support import needs_vst

MAPS_DIR = Path(pluginmap.__file__).parent / "maps"

#: A value set through a map and read back from the plugin's display text must agree
#: within this fraction of the parameter's span (the curves are exact to float32
#: round-off for these linear-in-display plugins; the text has 6 decimals).
ROUNDTRIP_TOLERANCE = 1e-5
#: Absolute allowance for the display's 6-decimal rounding.
DISPLAY_ROUNDING = 1e-6


def _raw(name: str) -> dict:
    return json.loads((MAPS_DIR / f"{name}.json").read_text())


# --------------------------------------------------------------------------- no plugins needed
def test_parse_display_reads_numbers_and_rejects_text():
    assert parse_display("-12.500000") == -12.5
    assert parse_display("3.0 dB") == 3.0
    assert parse_display("1e-3") == 1e-3
    assert parse_display("-inf") == -np.inf
    assert parse_display("Nested") is None


@pytest.mark.parametrize("name", builtin_map_names())
def test_every_shipped_map_agrees_with_the_schema(name):
    pm = load_map(name)
    proc = MAP_PROCESSORS[pm.processor]
    driven = pm.sources
    assert driven <= set(proc.param_names), f"{name} drives names outside schema '{pm.processor}'"
    for st in pm.stages:
        for b in st.set:
            for w in b.with_:
                assert w in proc.param_names
    # every schema parameter is mapped or explicitly handled elsewhere, never both
    assert driven | set(pm.handled_elsewhere) == set(proc.param_names)
    assert not driven & set(pm.handled_elsewhere)
    # every plugin parameter the map touches has a measured curve
    for st in pm.stages:
        curves = pm.plugins[st.plugin].curves
        assert {b.param for b in st.set} | set(st.fixed) <= set(curves)


def test_default_maps_cover_every_plugin_processor():
    assert set(DEFAULT_MAPS) == set(MAP_PROCESSORS) - {"limiter"}  # the limiter is the master bus's
    for proc, name in DEFAULT_MAPS.items():
        assert load_map(name).processor == proc
        assert load_map(name).deterministic


def test_schema_extremes_are_reachable_by_the_default_plugins(monkeypatch):
    """Every schema value from min to max maps into the plugin's measured range (no clamping needed).
    (The ZamEQ2 refusal of peaks too far from RBJ is switched off: this is about the curves' reach;
    the min corner, Q 0.2 at -12 dB, is refused for rendering.)"""
    import dataclasses

    name = "zameq2_bandwidth_from_rbj_q"
    monkeypatch.setitem(map_laws.CONVERSIONS, name, dataclasses.replace(map_laws.CONVERSIONS[name], refuse=None))
    for proc, name in DEFAULT_MAPS.items():
        pm = load_map(name)
        schema = MAP_PROCESSORS[proc]
        for corner in ("min", "max"):
            values = {p.name: getattr(p, corner) for p in schema.params}
            for st in pm.stages:
                u = pm.stage_values(st, values, 44100)
                assert all(0.0 <= v <= 1.0 for v in u.values())


@pytest.mark.parametrize("map_name,plugin,param,schema_param,keep", [
    ("zamcomp", "zamcomp", "Threshold", "threshold_db", (-40.0, 0.0)),
    ("zameq2_x2", "zameq2", "Bandwidth 1", "peak1_q", (0.1, 3.0)),
])
def test_map_whose_range_cannot_reach_the_schema_fails_at_load(tmp_path, map_name, plugin, param, schema_param, keep):
    """A real shipped map with one measured curve truncated is refused when loaded, naming the
    schema parameter, the plugin parameter and the range the plugin reaches."""
    raw = _raw(map_name)
    curve = raw["plugins"][plugin]["curves"][param]
    pts = [(u, d) for u, d in zip(curve["normalised"], curve["display"]) if keep[0] <= d <= keep[1]]
    curve["normalised"], curve["display"] = [u for u, _ in pts], [d for _, d in pts]
    path = tmp_path / f"{map_name}_truncated.json"
    path.write_text(json.dumps(raw))
    lo, hi = pts[0][1], pts[-1][1]
    with pytest.raises(PluginMapError, match=rf"{schema_param} spans .*'{param}'.* reaches only \[{lo:g}, {hi:g}\]"):
        load_map(path)


def test_reverb_table_that_cannot_reach_the_schema_fails_at_load(tmp_path):
    raw = _raw("dragonfly_plate")
    table = raw["stages"][0]["set"]["Decay"]["table"]
    table["display"], table["measured"] = table["display"][:30], table["measured"][:30]
    path = tmp_path / "short_plate.json"
    path.write_text(json.dumps(raw))
    top = table["measured"][-1]
    refused = rf"reverb.decay_s spans \[0.3, 8\] s.* reaches only \[0.1421, {top:g}\] s"
    with pytest.raises(PluginMapError, match=refused):
        load_map(path)


def test_map_missing_a_schema_parameter_is_refused():
    raw = _raw("zamcomp")
    del raw["handled_elsewhere"]["knee_db"]  # the host's sidechain carries the knee; the map must say so
    with pytest.raises(PluginMapError, match="knee_db"):
        map_from_dict(raw, "broken")


def test_map_driving_an_unknown_schema_name_is_refused():
    raw = _raw("zamcomp")
    raw["stages"][0]["set"]["Ratio"]["from"] = "knee"
    with pytest.raises(PluginMapError, match="'knee' is not a parameter"):
        map_from_dict(raw, "broken")


def test_map_with_unknown_version_is_refused():
    raw = _raw("zamcomp")
    raw["version"] = 99
    with pytest.raises(PluginMapError, match="version 99"):
        map_from_dict(raw, "future")


def test_unknown_map_name_lists_the_shipped_maps():
    with pytest.raises(UnknownNameError, match="zameq2_x2"):
        load_map("no_such_map")


def test_curve_inverts_exactly_and_refuses_out_of_range_values():
    c = Curve("Release", "ms", (0.0, 0.5, 1.0), (1.0, 10.0, 100.0))  # bent, like a log knob
    assert c.to_normalised(10.0) == pytest.approx(0.5, abs=1e-15)
    assert c.to_normalised(55.0) == pytest.approx(0.75, abs=1e-15)
    assert float(c.to_display(c.to_normalised(37.0))) == pytest.approx(37.0, rel=1e-12)
    with pytest.raises(ParamRangeError, match=r"outside the plugin's range \[1, 100\] ms"):
        c.to_normalised(150.0)
    dec = Curve("Cut", "dB", (0.0, 1.0), (0.0, -30.0))  # decreasing display
    assert dec.to_normalised(-15.0) == pytest.approx(0.5)


def test_non_monotone_curve_is_refused():
    with pytest.raises(PluginMapError, match="not strictly monotone"):
        Curve("X", "", (0.0, 0.5, 1.0), (0.0, 2.0, 1.0))


def test_zameq2_bandwidth_conversion_meets_its_defining_equation():
    """bw solves 2**(1/bw)/(2**bw-1) = (f/sr)/Dw with Dw the RBJ mid-gain digital width."""
    sample_rate = 48000
    for q in (0.2, 0.707, 2.0, 10.0):
        for f in (100.0, 1000.0, 8000.0):
            bw = map_laws.zameq2_bandwidth_from_rbj_q(q, f, sample_rate=sample_rate)
            w0 = np.tan(np.pi * f / sample_rate)
            w2 = 0.5 * (w0 / q + np.sqrt((w0 / q) ** 2 + 4 * w0 * w0))
            dw = 2 * (np.arctan(w2) - np.arctan(w0 * w0 / w2))
            assert 2 ** (1 / bw) / (2 ** bw - 1) == pytest.approx((f / sample_rate) / dw, rel=1e-9)
    # vectorised form agrees with the scalar one
    arr = map_laws.zameq2_bandwidth_from_rbj_q(np.array([0.5, 3.0]), np.array([200.0, 2000.0]), sample_rate=sample_rate)
    assert arr[1] == pytest.approx(map_laws.zameq2_bandwidth_from_rbj_q(3.0, 2000.0, sample_rate=sample_rate))


def test_static_reduction_accepts_per_sample_threshold_ratio_and_knee():
    """Arrays give, sample by sample, what the scalar call gives (knee 0 included: the hard knee)."""
    from mixbridge.plugins.dynamics import static_reduction_db

    level = np.linspace(-60.0, 0.0, 61)
    t = np.where(level < -30.0, -40.0, -20.0)
    r = np.where(level < -10.0, 4.0, 10.0)
    w = np.where(np.arange(61) % 2 == 0, 0.0, 8.0)
    arr = static_reduction_db(level, t, r, w)
    one = np.array([static_reduction_db(np.array(lv), tv, rv, wv) for lv, tv, rv, wv in zip(level, t, r, w)])
    assert np.array_equal(arr, one)


def _branching_one_pole_plugin(sidechain: np.ndarray, p: dict, sample_rate: int) -> np.ndarray:
    """ZamComp's detector as zam-plugins 4.x ZamCompPlugin.cpp run() codes it (Knee 0, Slew 1), in float64:
    hard-knee reduction of the sidechain level, then a one-pole with the attack coefficient while the
    reduction rises and the release one while it falls."""
    level = 20 * np.log10(sidechain.astype(np.float64))
    x = np.maximum(level - p["threshold_db"], 0.0) * (1 - 1 / p["ratio"])
    a_att = np.exp(-1000 / (p["attack_ms"] * sample_rate))
    a_rel = np.exp(-1000 / (p["release_ms"] * sample_rate))
    y, prev = np.empty_like(x), 0.0
    for i, xi in enumerate(x):
        a = a_att if xi > prev else a_rel if xi < prev else 0.0
        prev = y[i] = a * prev + (1 - a) * xi
    return y


@pytest.mark.parametrize("setting", [
    dict(threshold_db=-24.0, ratio=4.0, attack_ms=5.0, release_ms=80.0, knee_db=4.0),
    dict(threshold_db=-12.0, ratio=20.0, attack_ms=0.1, release_ms=10.0, knee_db=0.0),
    dict(threshold_db=-40.0, ratio=2.0, attack_ms=100.0, release_ms=500.0, knee_db=8.0),
])
def test_reduction_drive_makes_the_plugins_detector_the_schemas(setting):
    """Through the plugin's branching one-pole (its source), the drive gives dynamics.gain_reduction_db
    (peak hold, soft knee, linked): within the float32 rounding of the sidechain (1e-5 dB)."""
    from mixbridge.plugins.dynamics import gain_reduction_db

    sr = 48000
    n = sr // 2
    t = np.arange(n) / sr
    gate = ((t % 0.125) < 0.03) * np.exp(-(t % 0.125) / 0.01)
    audio = (np.random.default_rng(3).standard_normal((2, n)) * gate * [[0.9], [0.2]]).astype(np.float32)
    side = map_sidechain.schema_reduction_drive(audio, setting, sr)
    want = gain_reduction_db(audio, sr, **setting)
    assert np.max(np.abs(_branching_one_pole_plugin(side, setting, sr) - want)) <= 1e-5


@pytest.mark.parametrize("edit,match", [
    (lambda st: st["fixed"].update(Knee=4.0), "needs 'Knee' fixed at 0"),
    (lambda st: st["set"].pop("Release") and st["fixed"].update(Release=1.0), "needs 'Release' driven by release_ms"),
])
def test_compressor_map_that_breaks_the_drive_assumptions_is_refused(edit, match):
    raw = _raw("zamcomp")
    edit(raw["stages"][0])
    raw["handled_elsewhere"].setdefault("release_ms", "fixed")
    with pytest.raises(PluginMapError, match=match):
        map_from_dict(raw, "broken")


def test_zameq2_peak_off_rbj_is_refused_when_values_are_computed_not_at_load():
    """The contract's 'five bands' peak 3 (0.49 dB off RBJ at 16 kHz) is refused by the map itself (so
    the REAPER push refuses it too); the defaults and the contract's other EQ rows are not."""
    from mixbridge.plugins.contract_measures import EQ_SETTINGS

    pm = load_map("zameq2_x2")
    proc = pluginmap.MAP_PROCESSORS["eq"]
    for label, over in EQ_SETTINGS:
        values = {**proc.defaults(), **over}
        if label == "five bands":
            with pytest.raises(ParamRangeError, match=r"eq\.peak3_q: 0\.5 at 6000 Hz, \+6 dB renders 0\.49 dB off"):
                pm.stage_values(pm.stages[1], values, 48000)
        else:
            for st in pm.stages:
                pm.stage_values(st, values, 48000)
    dev, at_hz = map_laws.zameq2_peak_deviation_db(6000.0, 0.5, 6.0, 48000)
    assert dev == pytest.approx(0.492, abs=0.005) and at_hz == pytest.approx(16000.0)


def test_missing_dawdreamer_names_the_fix(monkeypatch):
    from mixbridge.plugins.discovery import import_dawdreamer

    monkeypatch.setitem(sys.modules, "dawdreamer", None)  # import raises ImportError
    with pytest.raises(BackendUnavailableError, match="pip install dawdreamer"):
        import_dawdreamer()


def test_plugin_search_honours_vst_path(tmp_path, monkeypatch):
    from mixbridge.plugins.discovery import find_plugins, resolve_plugin

    (tmp_path / "Fake-vst.so").write_bytes(b"")
    (tmp_path / "Other.vst3").mkdir()
    monkeypatch.setenv("VST_PATH", str(tmp_path))
    found = {(pf.name, pf.format) for pf in find_plugins()}
    assert ("Fake", "vst2") in found and ("Other", "vst3") in found
    assert resolve_plugin("fake").path == (tmp_path / "Fake-vst.so").resolve()


def test_missing_vst3_file_gives_the_clear_error():
    from mixbridge.plugins.vst_plugin import open_plugin

    with pytest.raises(PluginNotFoundError, match="does not exist"):
        open_plugin("/nonexistent/Thing.vst3")


# --------------------------------------------------------------------------- with the real plugins
@pytest.fixture(scope="module")
def loaded():
    from mixbridge.plugins.vst_plugin import open_plugin

    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = open_plugin(name)
        return cache[name]

    return get


ROUNDTRIP_CASES = {
    # map: list of schema settings; every bound plugin parameter is checked for each
    "zameq2_x2": [
        {"low_shelf_gain_db": -12.0, "low_shelf_freq_hz": 20.0,
         "peak1_gain_db": 7.5, "peak1_freq_hz": 400.0, "peak1_q": 0.2,
         "peak2_gain_db": -3.25, "peak2_freq_hz": 6000.0, "peak2_q": 10.0,
         "peak3_gain_db": 12.0, "peak3_freq_hz": 2000.0, "peak3_q": 1.0,
         "high_shelf_gain_db": 4.0, "high_shelf_freq_hz": 14000.0},
    ],
    "zamcomp": [
        {"threshold_db": -60.0, "ratio": 20.0, "attack_ms": 0.1, "release_ms": 500.0, "knee_db": 8.0,
         "makeup_db": 12.0},
        {"threshold_db": -17.3, "ratio": 2.5, "attack_ms": 33.0, "release_ms": 10.0, "knee_db": 0.0, "makeup_db": 0.0},
    ],
    "zamaximx2": [{"ceiling_dbtp": -1.0, "release_ms": 1.0}, {"ceiling_dbtp": -6.0, "release_ms": 100.0}],
    "dragonfly_plate": [{"decay_s": 0.3, "predelay_ms": 0.0, "return_db": 0.0},
                        {"decay_s": 8.0, "predelay_ms": 37.5, "return_db": 0.0}],
    "dragonfly_room": [{"decay_s": 2.2, "predelay_ms": 100.0, "return_db": 0.0}],
}


@needs_vst
@pytest.mark.parametrize("map_name", sorted(ROUNDTRIP_CASES))
def test_map_round_trip_reads_back_the_real_value(map_name, loaded):
    """Set real units through the map, read the plugin's display text back."""
    pm = load_map(map_name)
    sample_rate = 48000
    checked = 0
    for setting in ROUNDTRIP_CASES[map_name]:
        values = {**MAP_PROCESSORS[pm.processor].defaults(), **setting}
        for st in pm.stages:
            spec = pm.plugins[st.plugin]
            lp = loaded(spec.identity.name)
            normalised = pm.stage_values(st, values, sample_rate)
            for b in st.set:
                want = values[b.source]
                if b.convert:
                    conv = map_laws.CONVERSIONS[b.convert]
                    extra = {"table": b.table} if conv.needs_table else {}
                    want = conv.func(want, *[values[w] for w in b.with_], sample_rate=sample_rate, **extra)
                i = lp.index(b.param)
                lp.set_normalised(i, normalised[b.param])
                got = parse_display(lp.display_text(i))
                curve = spec.curves[b.param]
                tol = ROUNDTRIP_TOLERANCE * (curve.hi - curve.lo) + DISPLAY_ROUNDING
                assert got == pytest.approx(want, abs=tol), f"{map_name}: {b.param} from {b.source}"
                checked += 1
            for pname, value in st.fixed.items():
                i = lp.index(pname)
                lp.set_normalised(i, normalised[pname])
                text = lp.display_text(i)
                if isinstance(value, str):
                    assert text.strip() == value
                else:
                    assert parse_display(text) == pytest.approx(value, abs=DISPLAY_ROUNDING + 1e-4)
    assert checked >= 2


@needs_vst
def test_map_for_another_plugin_version_is_refused(loaded):
    from mixbridge.plugins.map_loader import check_identity

    pm = load_map("zamcomp")
    spec = pm.plugins["zamcomp"]
    lp = loaded("ZamComp")
    check_identity(spec, lp)  # the shipped map matches the installed plugin
    bad = copy.deepcopy(_raw("zamcomp"))
    bad["plugins"]["zamcomp"]["identity"]["num_params"] = 9
    with pytest.raises(PluginMapError, match="num_params = 9.*num_params = 8"):
        check_identity(map_from_dict(bad, "x").plugins["zamcomp"], lp)
    moved = copy.deepcopy(_raw("zamcomp"))
    curve = moved["plugins"]["zamcomp"]["curves"]["Makeup"]
    curve["display"] = [d * 0.5 for d in curve["display"]]  # as if the range were 0..15 dB (still covers 0..12)
    with pytest.raises(PluginMapError, match="Makeup.*range changed"):
        check_identity(map_from_dict(moved, "x").plugins["zamcomp"], lp)


@needs_vst
def test_backend_refuses_a_mismatched_map(tmp_path):
    from mixbridge.plugins.vst import VstBackend

    bad = _raw("zamaximx2")
    bad["plugins"]["zamaximx2"]["identity"]["outputs"] = 1
    path = tmp_path / "bad_limiter.json"
    path.write_text(json.dumps(bad))
    backend = VstBackend(48000, maps={"limiter": str(path)})
    with pytest.raises(PluginMapError, match="outputs = 1"):
        backend.process("limiter", np.zeros((2, 256), np.float32), {"ceiling_dbtp": -1.0, "release_ms": 50.0})


def _fake_plugins(folder: Path, names) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / f"{n}-vst.so").write_bytes(b"")


#: More fake plugins than any listing limit, in one folder: the error must not depend on the count.
MANY_FAKES = [f"Filler{i:03d}" for i in range(60)]


def test_backend_missing_plugin_lists_the_closest_plugins(tmp_path, monkeypatch):
    """The error names the installed plugins that look like the one asked for, and how many were found,
    however many plugins the machine has (60 fillers plus the look-alikes, in a private search path)."""
    from mixbridge.plugins.discovery import find_plugins
    from mixbridge.plugins.vst import VstBackend

    fakes = tmp_path / "vst"
    _fake_plugins(fakes, MANY_FAKES + ["AaaFirst", "ZamCompPr", "ZamCompXPro"])
    monkeypatch.setenv("VST_PATH", str(fakes))
    n_found = len(find_plugins())
    raw = _raw("zamcomp")
    raw["plugins"]["zamcomp"]["identity"].update(file="ZamCompPro-vst.so", name="ZamCompPro")
    path = tmp_path / "pro.json"
    path.write_text(json.dumps(raw))
    backend = VstBackend(48000, maps={"compressor": str(path)})
    with pytest.raises(PluginNotFoundError) as e:
        backend.process("compressor", np.zeros((1, 256), np.float32), {})
    msg = str(e.value)
    assert "'ZamCompPro (ZamCompPro-vst.so, vst2)' is not installed" in msg
    assert f"of the {n_found} plugin(s) found" in msg
    assert "ZamCompPr (vst2)" in msg and "ZamCompXPro (vst2)" in msg
    assert "AaaFirst" not in msg and "Filler000" not in msg  # neither alphabetical nor a dump


def test_missing_plugin_error_lists_what_was_found(tmp_path, monkeypatch):
    from mixbridge.plugins.discovery import resolve_plugin

    _fake_plugins(tmp_path, MANY_FAKES + ["Present", "NoSuchPlug"])
    monkeypatch.setenv("VST_PATH", str(tmp_path))
    with pytest.raises(PluginNotFoundError, match=r"'NoSuchPlugin' is not installed.*NoSuchPlug \(vst2\)") as e:
        resolve_plugin("NoSuchPlugin")
    assert "Present" not in str(e.value) and "Filler" not in str(e.value)
    with pytest.raises(PluginNotFoundError, match=r"None of the \d+ plugin\(s\) found .* named like 'Qwxyz'"):
        resolve_plugin("Qwxyz")


# --------------------------------------------------------------------------- CLI
@needs_vst
def test_cli_list_shows_format_and_io(capsys):
    assert main(["plugins", "list", "ZamEQ2"]) == 0
    out = capsys.readouterr().out
    assert "ZamEQ2" in out and "vst2" in out and "1 in / 1 out, 12 params" in out


@needs_vst
def test_cli_inspect_shows_every_parameter_with_its_range(capsys):
    assert main(["plugins", "inspect", "ZaMaximX2"]) == 0
    out = capsys.readouterr().out
    assert "2 in / 2 out, 3 parameters" in out
    assert "Output Ceiling" in out and "-30.000000 .. 0.000000" in out
    assert "Release" in out and "1.000000 .. 100.000000" in out


def test_cli_inspect_missing_plugin_is_one_clear_line(capsys):
    assert main(["plugins", "inspect", "NoSuchPlugin"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'NoSuchPlugin' is not installed" in err


@needs_vst
def test_cli_calibrate_writes_measured_curves(tmp_path, capsys):
    out = tmp_path / "maxim.json"
    assert main(["plugins", "calibrate", "ZaMaximX2", "-o", str(out), "--points", "11"]) == 0
    doc = json.loads(out.read_text())
    assert doc["identity"] == {"file": "ZaMaximX2-vst.so", "format": "vst2", "name": "ZaMaximX2", "num_params": 3,
                               "inputs": 2, "outputs": 2}
    ceiling = doc["curves"]["Output Ceiling"]
    assert ceiling["unit"] == "dB" and len(ceiling["normalised"]) == 11  # linear knob: no refinement points
    assert ceiling["display"][0] == -30.0 and ceiling["display"][-1] == 0.0
    assert ceiling["display"][5] == pytest.approx(-15.0, abs=DISPLAY_ROUNDING)
    assert not list(tmp_path.glob(".*tmp*"))  # atomic write leaves no temporary file


@needs_vst
def test_cli_calibrate_updates_an_existing_map_in_place(tmp_path):
    dst = tmp_path / "zamaximx2.json"
    shutil.copy(MAPS_DIR / "zamaximx2.json", dst)
    assert main(["plugins", "calibrate", "ZaMaximX2", "-o", str(dst), "--points", "21"]) == 0
    updated, shipped = load_map(dst), load_map("zamaximx2")
    assert [b.source for b in updated.stages[0].set] == [b.source for b in shipped.stages[0].set]
    c_new, c_old = updated.plugins["zamaximx2"].curves["Release"], shipped.plugins["zamaximx2"].curves["Release"]
    assert len(c_new.normalised) == 21
    for v in (1.0, 12.5, 77.0):
        assert c_new.to_normalised(v) == pytest.approx(c_old.to_normalised(v), abs=1e-6)


@needs_vst
def test_measured_curve_refines_where_the_display_bends():
    """A fake plugin whose display is exponential in u gets refinement points."""
    from mixbridge.plugins.map_calibration import measure_parameter

    class Fake:
        u = 0.0

        def param_names(self):
            return ["Time"]

        def param_label(self, i):
            return "ms"

        def get_normalised(self, i):
            return self.u

        def set_normalised(self, i, v):
            self.u = v

        def display_text(self, i):
            return f"{1000.0 ** self.u:.6f}"

    fake = Fake()
    c = measure_parameter(fake, 0, points=11)
    assert len(c.normalised) > 11
    u = np.linspace(0, 1, 997)
    err = np.abs(c.to_display(u) - 1000.0 ** u) / 999.0
    assert err.max() <= 2 * map_calibration.CURVE_REFINE_TOLERANCE
    assert fake.u == 0.0  # the value was restored
