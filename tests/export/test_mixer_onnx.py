"""The ``dmc`` mixer exported to ONNX: the torch-free runner's decision and session equal the torch
``DMCMixer``'s on an untrained, seeded DMC; dynamic track and frame axes; no torch imported (not even
installed) to mix; changed files refused; ``mixbridge export mixer`` beside the proxies' command line."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from mixbridge.app.cli import main  # noqa: E402
from mixbridge.audio import load_stems  # noqa: E402
from mixbridge.errors import UnknownNameError  # noqa: E402
from mixbridge.export.mixer_onnx import (  # noqa: E402
    GOLDEN_TOL,
    MATCH_TOL_DB,
    MATCH_TOL_PAN,
    SHIPPED_ONNX,
    MixerExportError,
    OnnxDMCMixer,
    export_mixer_onnx,
)
from mixbridge.models.dmc import DMC  # noqa: E402
from mixbridge.models.dmc_mixer import DMCMixer  # noqa: E402
from tests.support import run_python  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
#: The session rounds gains to 1 mdB (split_gain) and pans to 1e-4: where the two float32 networks'
#: decisions (equal within MATCH_TOL_*) straddle a rounding boundary, the sessions differ by one step.
SESSION_GAIN_STEP_DB = 1e-3 + 1e-9
SESSION_PAN_STEP = 1e-4 + 1e-12
SEED = 3
#: The untrained weights are scaled by this, so that its outputs vary between tracks by dB, not mdB.
WEIGHT_SCALE = 2.0


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(SEED)
    model = DMC(channels=16, embed_dim=16, hidden=32, n_layers=3).eval()
    with torch.no_grad():  # spread the untrained outputs between tracks, so that a mismatch shows
        for p in model.parameters():
            p.mul_(WEIGHT_SCALE)
    return model


@pytest.fixture(scope="module")
def exported(net, tmp_path_factory):
    return export_mixer_onnx(net, tmp_path_factory.mktemp("mixer") / "dmc.onnx")


@pytest.fixture(scope="module")
def stems(multitrack):
    return load_stems(multitrack)


def test_decision_and_session_equal_the_torch_mixer(net, exported, stems):
    torch_mixer, onnx_mixer = DMCMixer(model=net), OnnxDMCMixer(exported)
    a, b = torch_mixer.predict(stems), onnx_mixer.predict(stems)
    np.testing.assert_allclose(b["gain_db"], a["gain_db"], atol=MATCH_TOL_DB, rtol=0)
    np.testing.assert_allclose(b["pan"], a["pan"], atol=MATCH_TOL_PAN, rtol=0)
    np.testing.assert_array_equal(b["trim_db"], a["trim_db"])  # the same numpy code on the same audio
    assert np.ptp(a["gain_db"]) > 1.0 and np.ptp(a["pan"]) > 0.02, a  # the network does not predict a constant
    sa, sb = torch_mixer(stems, target_lufs=-16.0), onnx_mixer(stems, target_lufs=-16.0)
    assert sb.provenance["mixer"] == "dmc" and [t.name for t in sb.tracks] == [t.name for t in sa.tracks]
    steps = {"fader": SESSION_GAIN_STEP_DB, "trim": SESSION_GAIN_STEP_DB, "pan": SESSION_PAN_STEP}
    for ta, tb in zip(sa.tracks, sb.tracks):
        for proc in ta.params:
            for k, va in ta.params[proc].items():
                vb = tb.params[proc][k]
                tol = steps.get(proc, 0)
                assert abs(vb - va) <= tol, (ta.name, proc, k, va, vb)
    assert sa.master.params == sb.master.params


def test_dynamic_tracks_and_frames(net, exported):
    runner = OnnxDMCMixer(exported)
    assert runner.verify() <= GOLDEN_TOL
    rng = np.random.default_rng(0)
    for tracks, frames in ((1, 5), (7, 333), (40, 64)):
        x = rng.normal(-50.0, 15.0, (tracks, net.n_mels, frames)).astype(np.float32)
        with torch.no_grad():
            want = net(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(runner.run(x), want, atol=GOLDEN_TOL, rtol=0)
    # a padded batch: the mask keeps padding out of the real tracks' context, as in torch
    x = rng.normal(-50.0, 15.0, (2, 4, net.n_mels, 20)).astype(np.float32)
    m = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x), torch.from_numpy(m)).numpy()
    np.testing.assert_allclose(runner.run(x, m), want, atol=GOLDEN_TOL, rtol=0)


def test_runner_mixes_where_torch_is_not_installed(exported, multitrack):
    code = ("import sys\n"
            "class NoTorch:  # as if torch were not installed: `import torch` raises ImportError\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'torch':\n"
            "            raise ImportError('torch is not installed')\n"
            "sys.meta_path.insert(0, NoTorch())\n"
            "from mixbridge.audio import load_stems\n"
            "from mixbridge.export.mixer_onnx import OnnxDMCMixer\n"
            f"s = OnnxDMCMixer({str(exported)!r})(load_stems({str(multitrack)!r}))\n"
            "assert s.provenance['mixer'] == 'dmc', s.provenance\n"
            "assert 'torch' not in sys.modules\n"
            "print(len(s.tracks))")
    run = run_python(code)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "5"


def test_changed_or_foreign_files_are_refused(exported, tmp_path):
    for f in exported.parent.iterdir():
        shutil.copy(f, tmp_path / f.name)
    copy = tmp_path / exported.name
    side = tmp_path / (copy.name + ".json")
    record = json.loads(side.read_text())
    side.write_text(json.dumps({**record, "version": 99}))
    with pytest.raises(MixerExportError, match="version"):
        OnnxDMCMixer(copy)
    side.write_text(json.dumps(record))
    copy.write_bytes(copy.read_bytes() + b"\0")
    with pytest.raises(MixerExportError, match="sha256"):
        OnnxDMCMixer(copy)
    copy.unlink()
    with pytest.raises(MixerExportError, match="no ONNX file"):
        OnnxDMCMixer(copy)


def test_export_mixer_command(tmp_path, capsys):
    out = tmp_path / "m" / "dmc.onnx"
    assert main(["export", "mixer", "dmc", "-o", str(out), "--seed", "1"]) == 0
    assert "golden max error" in capsys.readouterr().out
    assert out.is_file() and (out.parent / "dmc.onnx.json").is_file() and not (out.parent / "dmc.json").exists()
    assert OnnxDMCMixer(out).sidecar["source"] == {"source": "untrained", "seed": 1, "trained": False}
    # two positionals are `mixer CHECKPOINT` only
    assert main(["export", "tcn-tiny", "dmc", "-o", str(tmp_path / "x")]) != 0
    with pytest.raises(UnknownNameError):
        from mixbridge.export.cli import _export_mixer

        _export_mixer(type("A", (), {"checkpoint": "mixer", "mixer_checkpoint": "dmc", "format": "torchscript",
                                     "output": str(tmp_path / "y.onnx"), "seed": 0})())


def test_proxy_command_line_unchanged():
    import argparse

    from mixbridge.export.cli import _export, register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["export", "tcn-tiny", "--format", "torchscript", "-o", "ART", "--seed", "2"])
    assert (args.checkpoint, args.mixer_checkpoint, args.format, args.output, args.seed) == (
        "tcn-tiny", None, "torchscript", "ART", 2)
    assert args.func is _export


def test_export_records_the_checkpoint_it_came_from(net, tmp_path):
    from mixbridge.models.checkpoint import save_checkpoint

    save_checkpoint(net, tmp_path / "dmc.safetensors")
    out = export_mixer_onnx(tmp_path / "dmc.json", tmp_path / "dmc.onnx")
    assert (tmp_path / "dmc.json").is_file()  # the checkpoint's record is not overwritten by the sidecar
    runner = OnnxDMCMixer(out)
    assert runner.exported_from(tmp_path / "dmc.json")
    other = json.loads((tmp_path / "dmc.json").read_text())
    (tmp_path / "other.json").write_text(json.dumps({**other, "weights_sha256": "0" * 64}))
    assert not runner.exported_from(tmp_path / "other.json")


@pytest.mark.skipif(not SHIPPED_ONNX.exists(), reason="no shipped models/mixers/dmc.onnx yet")
def test_shipped_export_matches_the_shipped_weights():
    runner = OnnxDMCMixer()
    assert runner.verify() <= GOLDEN_TOL
    assert runner.exported_from(), "models/mixers/dmc.onnx is stale: re-export it from models/mixers/dmc.json"
    # the shipped export decides as the shipped torch mixer: with its checkpoint's family-prior weight
    assert runner.prior_weight() == DMCMixer().prior_weight() > 0
    assert runner.pan_scale() == DMCMixer().pan_scale()
