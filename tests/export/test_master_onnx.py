"""The learned mastering network exported to ONNX: equal to torch within 1e-5, a torch-free predictor with the
live bus's interface, changed or foreign files refused, and the shipped export in step with the shipped weights."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from mixbridge.export.master_onnx import (  # noqa: E402
    GOLDEN_TOL,
    SHIPPED_ONNX,
    MasterExportError,
    OnnxMasterPredictor,
    export_master_onnx,
)
from mixbridge.master_features import master_features  # noqa: E402
from mixbridge.models.learned_master import INPUT_NAMES, MasterNet, network_inputs, params_from_normalised  # noqa: E402
from tests.support import run_python  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SR = 44100
#: ONNX == torch: float32 sigmoid and matmul order differ by a few ulps of 0..1.
MATCH_TOL = 1e-5


@pytest.fixture(scope="module")
def net():
    """A network with random (non-neutral) heads, so that the outputs vary with the input."""
    torch.manual_seed(5)
    model = MasterNet(hidden=32, n_layers=2).eval()
    with torch.no_grad():
        model.params_head.weight.normal_(0.0, 0.3)
        model.bands_head.weight.normal_(0.0, 0.3)
        model.input_mean.normal_(0.0, 5.0)
        model.input_std.uniform_(0.5, 5.0)
    return model


@pytest.fixture(scope="module")
def exported(net, tmp_path_factory):
    return export_master_onnx(net, tmp_path_factory.mktemp("onnx") / "m.onnx")


def audio(seconds: float = 3.5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.05 * rng.standard_normal((2, int(seconds * SR)))).astype(np.float32)


def test_onnx_equals_torch_on_golden_and_random_inputs(net, exported):
    runner = OnnxMasterPredictor(exported)
    assert runner.verify() <= GOLDEN_TOL
    rng = np.random.default_rng(1)
    for batch in (1, 3, 17):
        x = rng.normal(0.0, 20.0, (batch, len(INPUT_NAMES))).astype(np.float32)
        with torch.no_grad():
            u, d = net(torch.from_numpy(x))
        ou, od = runner.run(x)
        np.testing.assert_allclose(ou, u.numpy(), atol=MATCH_TOL, rtol=0)
        np.testing.assert_allclose(od, d.numpy(), atol=MATCH_TOL, rtol=0)
        assert np.ptp(ou) > 0.1


def test_predict_returns_master_bus_params_in_real_units(net, exported):
    runner = OnnxMasterPredictor(exported)
    assert runner.window_s == net.window_s and runner.sample_rate == SR
    x = audio()
    params = runner.predict(x, SR, target_lufs=-12.0, ceiling_dbtp=-1.5)
    inp = network_inputs(master_features(x, SR), -12.0, -1.5)
    with torch.no_grad():
        u, _ = net(torch.from_numpy(inp)[None])
    want = params_from_normalised(u[0].numpy(), target_lufs=-12.0, ceiling_dbtp=-1.5)
    assert set(params) == {"eq", "compressor", "limiter", "loudness"}
    assert params["limiter"]["ceiling_dbtp"] == -1.5 and params["loudness"]["target_lufs"] == -12.0
    for proc in params:
        for k, v in params[proc].items():
            assert v == pytest.approx(want[proc][k], rel=1e-4, abs=1e-4), (proc, k)


def test_predictor_runs_where_torch_is_not_installed(exported):
    code = ("import sys\n"
            "class NoTorch:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'torch':\n"
            "            raise ImportError('torch is not installed')\n"
            "sys.meta_path.insert(0, NoTorch())\n"
            "import numpy as np\n"
            "from mixbridge.export.master_runtime import OnnxMasterPredictor\n"
            f"p = OnnxMasterPredictor({str(exported)!r})\n"
            "x = (0.05 * np.random.default_rng(0).standard_normal((2, 44100 * 4))).astype(np.float32)\n"
            "params = p.predict(x, 44100, target_lufs=-14.0, ceiling_dbtp=-1.0)\n"
            "assert 'torch' not in sys.modules\n"
            "print(params['limiter']['ceiling_dbtp'])")
    run = run_python(code)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "-1.0"


def test_changed_or_foreign_files_are_refused(exported, tmp_path):
    import shutil

    copy = tmp_path / "c.onnx"
    for suffix in ("", ".json", ".golden.npz"):
        shutil.copy(str(exported) + suffix, str(copy) + suffix)
    with open(copy, "ab") as f:
        f.write(b"x")
    with pytest.raises(MasterExportError, match="sha256"):
        OnnxMasterPredictor(copy)
    side = json.loads((tmp_path / "c.onnx.json").read_text())
    side["version"] = 99
    (tmp_path / "c.onnx.json").write_text(json.dumps(side))
    with pytest.raises(MasterExportError):
        OnnxMasterPredictor(copy)
    with pytest.raises(MasterExportError, match="no such checkpoint"):
        export_master_onnx(tmp_path / "missing.json", tmp_path / "x.onnx")


def test_untrained_export_is_neutral(tmp_path):
    path = export_master_onnx("untrained", tmp_path / "standin.onnx")
    params = OnnxMasterPredictor(path).predict(audio(3.0), SR, target_lufs=-14.0, ceiling_dbtp=-1.0)
    assert all(abs(v) < 1e-4 for k, v in params["eq"].items() if k.endswith("gain_db"))


@pytest.mark.skipif(not SHIPPED_ONNX.exists(), reason="no shipped models/masterers/learned.onnx yet")
def test_shipped_export_matches_the_shipped_weights():
    runner = OnnxMasterPredictor()
    assert runner.verify() <= GOLDEN_TOL
    record = json.loads(SHIPPED_ONNX.with_name("learned.json").read_text())
    assert runner.sidecar["source"]["weights_sha256"] == record["weights_sha256"]
