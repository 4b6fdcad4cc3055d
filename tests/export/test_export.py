"""Export artifacts: export -> load -> golden check -> re-export identical; bad artifacts refused."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from mixbridge.app.cli import main  # noqa: E402
from mixbridge.errors import UnknownNameError  # noqa: E402
from mixbridge.export.artifact import (  # noqa: E402
    GOLDEN_TOLERANCE,
    SIDECAR_NAME,
    ArtifactError,
    ArtifactVersionError,
    ChecksumMismatchError,
    SchemaMismatchError,
    load_artifact,
)
from mixbridge.export.exporter import ExportError, export_model  # noqa: E402
from mixbridge.export.torchscript import open_session  # noqa: E402
from mixbridge.models import registry  # noqa: E402
from mixbridge.models.checkpoint import save_checkpoint  # noqa: E402
from tests.support import run_python  # noqa: E402

FORMATS = ("onnx", "torchscript")


pytestmark = pytest.mark.usefixtures("one_torch_thread")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "artifacts"


@pytest.fixture(scope="module", params=FORMATS)
def exported(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"art-{request.param}")
    export_model("tcn-tiny-causal", request.param, out / "a", seed=3)
    return request.param, out / "a"


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_export_load_golden_reexport_identical(exported, tmp_path):
    fmt, folder = exported
    artifact = load_artifact(folder)
    side = artifact.sidecar
    assert side["format_version"] == 2 and side["artifact_format"] == fmt
    assert side["architecture"] == "tcn-film" and side["model_name"] == "tcn-tiny-causal"
    assert side["sample_rate"] == 48000 and side["latency_samples"] == 0 and side["receptive_field"] == 31
    assert side["block_sizes"] == {"min": 1, "max": 4096}
    assert side["schema"]["param_names"][0] == "compressor.threshold_db"
    assert side["config"] == registry.create("tcn-tiny-causal").config()
    # golden pair reproduced by the runtime in several block sizes
    session = open_session(artifact)
    for block_size in (1, 64, 4096):
        assert session.verify(block_size) <= GOLDEN_TOLERANCE
    # the golden output is the torch model's offline output (causal: identical to streaming)
    torch.manual_seed(3)
    model = registry.create("tcn-tiny-causal").eval()
    g = artifact.golden()
    with torch.no_grad():
        offline = model(torch.from_numpy(g["input"]), torch.from_numpy(g["params"])).numpy()
    np.testing.assert_allclose(g["output"], offline, rtol=0, atol=GOLDEN_TOLERANCE)
    # re-export: byte-identical files (no timestamps, deterministic graph)
    export_model("tcn-tiny-causal", fmt, tmp_path / "again", seed=3)
    assert _files(tmp_path / "again") == _files(folder)


def test_reexport_in_fresh_processes_is_byte_identical(tmp_path):
    """Across processes and hash seeds (TorchScript emits constants in set order and a
    random serialization id; the exporter canonicalises both)."""
    import os

    for seed in ("1", "2"):
        code = ("from mixbridge.export.exporter import export_model\n"
                f"for fmt in ('onnx', 'torchscript'):\n"
                f"    export_model('tcn-tiny-causal', fmt, r'{tmp_path}/{seed}/' + fmt, seed=3)\n")
        env = {**os.environ, "PYTHONHASHSEED": seed, "OMP_NUM_THREADS": "1"}
        result = run_python(code, env=env)
        assert result.returncode == 0, result.stderr
    for fmt in FORMATS:
        assert _files(tmp_path / "1" / fmt) == _files(tmp_path / "2" / fmt)


def test_export_from_checkpoint_records_provenance(tmp_path):
    torch.manual_seed(5)
    model = registry.create("tcn-tiny", schema=("eq",), sample_rate=44100)
    ck = save_checkpoint(model, tmp_path / "ck", model_name="tcn-tiny")
    export_model(ck, "onnx", tmp_path / "art")
    art = load_artifact(tmp_path / "art", expect_sample_rate=44100)
    prov = art.sidecar["provenance"]
    assert prov["source"] == "checkpoint" and len(prov["checkpoint_weights_sha256"]) == 64
    assert art.param_names[0] == "eq.low_shelf_gain_db" and art.sample_rate == 44100
    # centre-cropped model: latency is the look-ahead, and the stream lags the offline output
    assert art.latency_samples == (art.receptive_field - 1) // 2
    x = np.random.default_rng(0).standard_normal((1, 600)).astype(np.float32)
    p = np.random.default_rng(1).random(art.n_params).astype(np.float32)
    streamed = open_session(art).render(x, p, chunk=65)
    with torch.no_grad():
        offline = model.eval()(torch.from_numpy(x[None]), torch.from_numpy(p[None])).numpy()[0]
    rf = art.receptive_field
    with torch.no_grad():  # the runtime subtracts the model's response to silence (no DC offset)
        silence = model(torch.zeros(1, 1, rf), torch.from_numpy(p[None])).numpy()[0]
    np.testing.assert_allclose(streamed[:, rf - 1:], offline - silence, rtol=0, atol=GOLDEN_TOLERANCE)


def test_unknown_format_and_source_are_refused(tmp_path):
    with pytest.raises(ExportError, match="unknown export format"):
        export_model("tcn-tiny", "tflite", tmp_path)
    with pytest.raises(UnknownNameError, match="known models: .*tcn-tiny"):
        export_model("no-such-model", "onnx", tmp_path)


# --------------------------------------------------------------------------- bad artifacts
@pytest.fixture
def onnx_copy(tmp_path, tmp_path_factory):
    src = tmp_path_factory.getbasetemp() / "bad-src"
    if not (src / SIDECAR_NAME).exists():
        export_model("tcn-tiny-causal", "onnx", src)
    dst = tmp_path / "art"
    shutil.copytree(src, dst)
    return dst


def _edit_sidecar(folder: Path, **changes) -> None:
    side = json.loads((folder / SIDECAR_NAME).read_text())
    side.update(changes)
    (folder / SIDECAR_NAME).write_text(json.dumps(side))


def test_truncated_model_file_is_refused(onnx_copy):
    model = onnx_copy / "model.onnx"
    model.write_bytes(model.read_bytes()[:1000])
    with pytest.raises(ChecksumMismatchError, match="truncated"):
        load_artifact(onnx_copy)


def test_modified_model_file_is_refused(onnx_copy):
    model = onnx_copy / "model.onnx"
    data = bytearray(model.read_bytes())
    data[-10] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError, match="checksum mismatch"):
        load_artifact(onnx_copy)


def test_missing_model_file_is_refused(onnx_copy):
    (onnx_copy / "model.onnx").unlink()
    with pytest.raises(ArtifactError, match="missing"):
        load_artifact(onnx_copy)


def test_wrong_version_is_refused(onnx_copy):
    _edit_sidecar(onnx_copy, format_version=3)
    with pytest.raises(ArtifactVersionError, match="format_version 3 is not supported"):
        load_artifact(onnx_copy)


def test_truncated_sidecar_is_refused(onnx_copy):
    side = onnx_copy / SIDECAR_NAME
    side.write_text(side.read_text()[:100])
    with pytest.raises(ArtifactError, match="truncated"):
        load_artifact(onnx_copy)


def test_schema_mismatch_is_refused(onnx_copy):
    side = json.loads((onnx_copy / SIDECAR_NAME).read_text())
    side["schema"]["params"]["compressor.threshold_db"]["min"] = -80.0
    (onnx_copy / SIDECAR_NAME).write_text(json.dumps(side))
    with pytest.raises(SchemaMismatchError, match="threshold_db.min was -80.0, is now -60.0"):
        load_artifact(onnx_copy)


def test_caller_expectations_are_enforced(onnx_copy):
    with pytest.raises(SchemaMismatchError, match="44100 Hz was expected"):
        load_artifact(onnx_copy, expect_sample_rate=44100)
    with pytest.raises(SchemaMismatchError, match="takes parameters"):
        load_artifact(onnx_copy, expect_param_names=["eq.low_shelf_gain_db"])


def test_not_an_artifact_folder(tmp_path):
    with pytest.raises(ArtifactError, match="not an artifact folder"):
        load_artifact(tmp_path)


def test_kept_v1_fixture_still_loads_and_matches_golden():
    """An artifact exported by an earlier build stays readable (STYLE.md point 6)."""
    folder = FIXTURES / "tcn-tiny-causal-onnx-v1"
    art = load_artifact(folder)
    assert art.sidecar["format_version"] == 1
    assert open_session(art).verify(63) <= GOLDEN_TOLERANCE


# --------------------------------------------------------------------------- CLI
def test_cli_export(tmp_path, capsys):
    assert main(["export", "tcn-tiny", "--format", "torchscript", "-o", str(tmp_path / "ts")]) == 0
    assert "latency 15 samples" in capsys.readouterr().out
    assert load_artifact(tmp_path / "ts").format == "torchscript"
    assert main(["export", "no-such-model", "-o", str(tmp_path / "x")]) == 2
    assert "known models" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_shipped_proxy_export_load_golden_reexport_identical(fmt, tmp_path):
    """A trained TCN proxy (tests/fixtures/tcn_comp_round1, the first round's shipped comp_builtin)
    exports, loads, reproduces its golden pair
    and re-exports to identical bytes, like the tiny model."""
    ckpt = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "tcn_comp_round1.json"
    export_model(str(ckpt), fmt, tmp_path / "a")
    artifact = load_artifact(tmp_path / "a")
    assert artifact.sidecar["schema"]["param_names"][0].startswith("compressor.")
    session = open_session(artifact)
    for block_size in (1, 64, 4096):
        assert session.verify(block_size) <= GOLDEN_TOLERANCE
    export_model(str(ckpt), fmt, tmp_path / "b")
    assert _files(tmp_path / "b") == _files(tmp_path / "a")
