"""The artifact sidecar's own checksum, its value limits and its trained ranges (format version 2).

Editing ``artifact.json`` after export (its sample rate, its latency, any field) is refused
at load, naming the field and the fix; re-indenting it is not an edit. A version-1 artifact
(the kept fixture, exported before the checksum existed) still loads, marked unchecked, and
its values are range-checked. Real exported folders throughout.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

from mixbridge.export.artifact import (  # noqa: E402
    ARTIFACT_FORMAT_VERSION,
    CHECKSUM_NAME,
    SIDECAR_NAME,
    ArtifactError,
    ChecksumMismatchError,
    checksum_record,
    load_artifact,
)
from mixbridge.export.exporter import ExportError, export_model  # noqa: E402
from mixbridge.export.runtime import StreamingSession  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "artifacts"


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("artifact") / "a"
    export_model("tcn-tiny-causal", "onnx", out, seed=3)
    return out


@pytest.fixture
def art(exported, tmp_path) -> Path:
    dst = tmp_path / "art"
    shutil.copytree(exported, dst)
    return dst


def _edit(folder: Path, indent: int | None = None, **changes) -> None:
    path = folder / SIDECAR_NAME
    side = json.loads(path.read_text())
    side.update(changes)
    path.write_text(json.dumps(side, indent=indent))


def test_the_checksum_file_is_written_beside_the_sidecar_and_matches_it(exported):
    side = json.loads((exported / SIDECAR_NAME).read_text())
    assert side["format_version"] == ARTIFACT_FORMAT_VERSION == 2
    assert json.loads((exported / CHECKSUM_NAME).read_text()) == checksum_record(side)
    art = load_artifact(exported)
    assert art.sidecar_checked and art.trained_ranges == {n: (0.0, 1.0) for n in art.param_names}


@pytest.mark.parametrize("field, value", [("sample_rate", 44100), ("latency_samples", 7)])
def test_editing_the_rate_or_the_latency_is_refused_naming_the_field(art, field, value):
    """Today's main: the edited rate let a 48 kHz proxy run on a 44.1 kHz bus with 'golden pair
    verified', and an edited latency shifted the output silently."""
    _edit(art, **{field: value})
    message = rf"edited: {field} \(now {value}\).*re-export the artifact"
    with pytest.raises(ChecksumMismatchError, match=message):
        load_artifact(art)
    with pytest.raises(ChecksumMismatchError, match=message):  # the runtime (and the live bus) load alike
        StreamingSession(art)


def test_a_downgraded_version_an_added_or_a_removed_field_is_refused(art, tmp_path):
    _edit(art, format_version=1)  # a version-1 sidecar is not checked, but the checksum file is there
    with pytest.raises(ChecksumMismatchError, match=r"edited: format_version \(now 1\)"):
        load_artifact(art)
    other = tmp_path / "other"
    shutil.copytree(art, other)
    _edit(art, format_version=2, comment="tuned by hand")
    with pytest.raises(ChecksumMismatchError, match="added: comment"):
        load_artifact(art)
    side = json.loads((other / SIDECAR_NAME).read_text())
    side["format_version"] = 2
    del side["trained_ranges"]
    (other / SIDECAR_NAME).write_text(json.dumps(side))
    with pytest.raises(ChecksumMismatchError, match="removed: trained_ranges"):
        load_artifact(other)


def test_reindenting_the_sidecar_changes_no_value_and_still_loads(art):
    _edit(art, indent=4)
    assert load_artifact(art).sidecar_checked


def test_a_version_2_sidecar_without_its_checksum_file_is_refused(art):
    (art / CHECKSUM_NAME).unlink()
    with pytest.raises(ArtifactError, match=f"{CHECKSUM_NAME} is missing.*re-export the artifact"):
        load_artifact(art)


def test_the_kept_version_1_fixture_loads_unchecked_with_full_ranges():
    art = load_artifact(FIXTURES / "tcn-tiny-causal-onnx-v1")
    assert art.sidecar["format_version"] == 1 and not art.sidecar_checked
    assert set(art.trained_ranges.values()) == {(0.0, 1.0)}


@pytest.mark.parametrize("field, value, message", [
    ("sample_rate", 0, r"sample_rate = 0 must be an integer in 8000\.\.384000"),
    ("sample_rate", True, r"sample_rate = True must be an integer"),
    ("latency_samples", 31, r"latency_samples = 31 must be an integer in 0\.\.30"),
    ("block_sizes", {"min": 0, "max": 4096}, r"block_sizes\.min = 0 must be an integer in 1\.\.4096"),
])
def test_values_out_of_their_limits_are_refused_in_an_unchecked_sidecar(tmp_path, field, value, message):
    folder = tmp_path / "v1"
    shutil.copytree(FIXTURES / "tcn-tiny-causal-onnx-v1", folder)
    _edit(folder, **{field: value})
    with pytest.raises(ArtifactError, match=message):
        load_artifact(folder)


def test_crafted_state_shapes_are_refused(tmp_path):
    """Today's main: crafted state shapes in an artifact crashed ``live`` with a traceback."""
    folder = tmp_path / "v1"
    shutil.copytree(FIXTURES / "tcn-tiny-causal-onnx-v1", folder)
    side = json.loads((folder / SIDECAR_NAME).read_text())
    side["io"]["hidden_state_shape"] = [100000, 100000]
    (folder / SIDECAR_NAME).write_text(json.dumps(side))
    with pytest.raises(ArtifactError, match=r"io\.hidden_state_shape = \[100000, 100000\] must be a list of positive"):
        load_artifact(folder)
    side["io"]["hidden_state_shape"] = [8, 27]  # plausible, but not the graph's
    (folder / SIDECAR_NAME).write_text(json.dumps(side))
    load_artifact(folder)
    with pytest.raises(ArtifactError, match=r"io\.hidden_state_shape \[8, 27\] does not match the graph"):
        StreamingSession(folder)


def test_trained_ranges_come_from_the_checkpoint_or_an_override(tmp_path):
    ckpt = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "tcn_comp_round1.json"
    export_model(str(ckpt), "onnx", tmp_path / "comp", trained_ranges={"compressor.ratio": (0.25, 0.75)})
    ranges = load_artifact(tmp_path / "comp").trained_ranges
    assert ranges["compressor.knee_db"] == (0.0, 0.0)  # from the checkpoint's data set record
    assert ranges["compressor.ratio"] == (0.25, 0.75)  # the override
    assert ranges["compressor.threshold_db"] == (0.0, 1.0)
    with pytest.raises(ExportError, match="not a parameter of this model; known: compressor.threshold_db"):
        export_model("tcn-tiny-causal", "onnx", tmp_path / "x", trained_ranges={"eq.low_shelf_gain_db": (0, 1)})
    with pytest.raises(ExportError, match=r"0 <= u_lo <= u_hi <= 1"):
        export_model("tcn-tiny-causal", "onnx", tmp_path / "y", trained_ranges={"compressor.ratio": (0.8, 0.2)})
