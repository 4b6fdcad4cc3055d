"""Tests of ``mixbridge compare``: an identity proxy vs a 0 dB plugin has zero error; bad input refused."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mixbridge.app.cli import main
from mixbridge.export.compare import CompareError, compare_proxy, eq_response, level_curve, load_proxy, resolve_plugin
from mixbridge.models import registry
from mixbridge.models.checkpoint import save_checkpoint
from tests.support import make_identity_tcn

SAMPLE_RATE = 44100
#: The identity TCN and the 0 dB RBJ EQ both pass samples through bit-exactly in float32.
ZERO_ERROR = 1e-12
#: 0 dB EQ: every gain at 0 dB (the frequencies and Qs are then irrelevant).
FLAT_EQ = {"eq.low_shelf_gain_db": 0.0, "eq.peak1_gain_db": 0.0, "eq.peak2_gain_db": 0.0,
           "eq.peak3_gain_db": 0.0, "eq.high_shelf_gain_db": 0.0}
#: Welch estimate of a pass-through: |S_xy / S_xx| is 1 up to rounding.
FLAT_RESPONSE_DB = 1e-4


def identity_tcn(schema=("eq",)):
    """A causal tcn-tiny whose weights make ``y = x`` exactly (:func:`tests.support.make_identity_tcn`)."""
    return make_identity_tcn(registry.create("tcn-tiny-causal", schema=schema, sample_rate=SAMPLE_RATE))


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(0)
    sf.write(d / "noise.wav", (0.2 * rng.standard_normal(SAMPLE_RATE)).astype(np.float32), SAMPLE_RATE,
             subtype="FLOAT")
    return d


@pytest.fixture(scope="module")
def identity_ckpt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "identity"
    return save_checkpoint(identity_tcn(), path, model_name="tcn-tiny-causal")


@pytest.fixture()
def flat_params(tmp_path) -> Path:
    p = tmp_path / "flat.json"
    p.write_text(json.dumps([FLAT_EQ, {**FLAT_EQ, "eq.peak2_freq_hz": 3000.0, "eq.peak2_q": 4.0}]))
    return p


def test_identity_proxy_vs_0db_eq_reports_zero_error(identity_ckpt, flat_params, audio_dir, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["compare", "--plugin", "eq", "--proxy", str(identity_ckpt), "--input", str(audio_dir),
                 "--params", str(flat_params), "--patch-s", "0.5", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| n | MAE | ESR (mean)" in printed
    s = json.loads((out / "metrics.json").read_text())
    assert s["overall"]["n"] == 2
    for key in ("mae", "esr", "esr_pooled", "mrstft", "mcd_db"):
        assert abs(s["overall"][key]) <= ZERO_ERROR, key
    assert abs(s["overall"]["loudness_diff_db"]) <= ZERO_ERROR
    assert s["flagged"] == [] and s["curves"]["eq"][0]["max_abs_diff_db"] <= ZERO_ERROR
    for name in ("report.md", "examples.csv", "spectrograms.png", "transfer_eq.png"):
        assert (out / name).stat().st_size > 0, name
    assert "| eq.peak2_freq_hz |" in (out / "report.md").read_text()


def test_identity_artifact_streamed_by_the_runtime_also_reports_zero_error(identity_ckpt, flat_params,
                                                                           audio_dir, tmp_path):
    from mixbridge.export.exporter import export_model

    export_model(str(identity_ckpt), "onnx", tmp_path / "art")
    s = compare_proxy(["eq"], tmp_path / "art", tmp_path / "report", input_path=str(audio_dir),
                      params_file=str(flat_params), patch_s=0.3, curves=False)
    assert s["proxy_kind"] == "artifact"
    assert s["overall"]["esr"] <= ZERO_ERROR and s["overall"]["mae"] <= ZERO_ERROR


def test_static_curves_of_a_pass_through_are_unity():
    def through(a):
        return a

    x_db, y_db = level_curve(through, SAMPLE_RATE, 1)
    assert np.allclose(x_db, y_db, atol=1e-6)
    # the sweep's peak levels are RMS re a full-scale sine: equal to the requested dB
    assert x_db[0] == pytest.approx(-60.0, abs=1e-3) and x_db[-1] == pytest.approx(0.0, abs=1e-3)
    _, mag = eq_response(through, SAMPLE_RATE, 1)
    assert np.max(np.abs(mag)) <= FLAT_RESPONSE_DB


def test_trained_compressor_level_curve_of_the_builtin_is_the_closed_form():
    """Builtin compressor, threshold -20 dB, ratio 4: above threshold, 4 dB in -> 1 dB out."""
    chain = resolve_plugin(["compressor"], SAMPLE_RATE)
    params = {"compressor": {"threshold_db": -20.0, "ratio": 4.0, "attack_ms": 1.0, "release_ms": 50.0,
                             "knee_db": 0.0, "makeup_db": 0.0}}
    x_db, y_db = level_curve(lambda a: chain.render(a, params), SAMPLE_RATE, 1)
    below = x_db <= -24
    assert np.allclose(y_db[below], x_db[below], atol=0.1)
    above = x_db >= -12
    slope = np.polyfit(x_db[above], y_db[above], 1)[0]
    assert slope == pytest.approx(0.25, abs=0.03)


def test_schema_mismatch_is_refused(identity_ckpt, tmp_path, capsys):
    assert main(["compare", "--plugin", "compressor", "--proxy", str(identity_ckpt), "--random", "1",
                 "-o", str(tmp_path / "r")]) == 2
    assert "imitates ['eq']" in capsys.readouterr().err
    with pytest.raises(CompareError, match="mixes plugin maps"):
        resolve_plugin(["zamcomp", "eq"], SAMPLE_RATE)


def test_other_sample_rate_is_refused(identity_ckpt, tmp_path, capsys):
    assert main(["compare", "--plugin", "eq", "--proxy", str(identity_ckpt), "--random", "1",
                 "--sample-rate", "48000", "-o", str(tmp_path / "r")]) == 2
    assert "trained at 44100 Hz, but 48000 Hz" in capsys.readouterr().err


def test_params_outside_the_schema_are_refused(identity_ckpt, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"eq.peak1_gain_db": 30.0}]))
    assert main(["compare", "--plugin", "eq", "--proxy", str(identity_ckpt), "--params", str(bad),
                 "-o", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "eq.peak1_gain_db = 30.0" in err and "-12" in err
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps([{"eq.tilt_db": 1.0}]))
    assert main(["compare", "--plugin", "eq", "--proxy", str(identity_ckpt), "--params", str(unknown),
                 "-o", str(tmp_path / "r")]) == 2


def test_params_outside_the_trained_range_are_flagged(tmp_path, audio_dir):
    # a proxy whose dataset fixed peak1 gain at 0 dB (normalised 0.5)
    dists = {"eq.peak1_gain_db": {"kind": "fixed", "u_lo": 0.5, "u_hi": 0.5}}
    ck = save_checkpoint(identity_tcn(), tmp_path / "narrow", extra={"dataset": {"param_dists": dists}})
    p = tmp_path / "p.json"
    p.write_text(json.dumps([FLAT_EQ, {**FLAT_EQ, "eq.peak1_gain_db": 6.0}]))
    s = compare_proxy(["eq"], ck, tmp_path / "r", input_path=str(audio_dir), params_file=str(p), patch_s=0.3,
                      curves=False)
    assert s["flagged"] == [{"example": 1, "params": ["eq.peak1_gain_db"]}]
    assert any("outside the proxy's trained range" in n for n in s["notices"])
    assert "Flagged examples" in (tmp_path / "r" / "report.md").read_text()
    # random draws stay inside the trained range
    prx = load_proxy(ck)
    assert prx.trained_ranges["eq.peak1_gain_db"] == (0.5, 0.5)
    s = compare_proxy(["eq"], ck, tmp_path / "r2", input_path=str(audio_dir), n_random=3, patch_s=0.3,
                      curves=False)
    assert s["flagged"] == [] and all(e["params"]["eq.peak1_gain_db"] == 0.0 for e in s["examples"])


def test_input_at_another_sample_rate_is_resampled_with_a_notice(identity_ckpt, flat_params, tmp_path):
    d = tmp_path / "sr"
    d.mkdir()
    t = np.arange(22050) / 22050
    sf.write(d / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 22050, subtype="FLOAT")
    s = compare_proxy(["eq"], identity_ckpt, tmp_path / "r", input_path=str(d), params_file=str(flat_params),
                      patch_s=0.3, curves=False)
    assert any("22050 Hz resampled to the proxy's 44100 Hz" in n for n in s["notices"])
    assert s["overall"]["esr"] <= ZERO_ERROR


def test_default_input_is_the_test_programme(identity_ckpt, tmp_path):
    s = compare_proxy(["eq"], identity_ckpt, tmp_path / "r", n_random=2, patch_s=0.5, curves=False)
    assert s["input"] == "built-in test programme" and s["overall"]["n"] == 2
