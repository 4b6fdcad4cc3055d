"""The torch-free streaming runtime: invariance to block size, reset, smoothing, no torch import.

The runtime's output is the network's response from its warm state (a receptive field of
silence) minus its response to silence, so the offline oracle is the torch model run on the
signal after ``receptive_field`` zeros, minus the model's steady output on zeros
(:func:`_offline`); the raw graph (``verify``) is still the golden pair."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from mixbridge.errors import AudioInputError, BackendUnavailableError, ParamRangeError, UnknownParamError
from mixbridge.export.runtime import StreamingSession, select_provider
from tests.support import run_python

#: float32 onnxruntime kernels vs torch kernels (STYLE.md point 7).
STREAM_TOL = 1e-5
BLOCK_SIZES = (1, 63, 64, 65, 256, 4096)
SAMPLE_RATE = 48000
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "artifacts" / "tcn-tiny-causal-onnx-v2"


def _offline(model, x: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The offline oracle of a mono causal model per channel: ``f(zeros ++ x) - f(zeros)`` after the
    ``receptive_field`` zeros of the warm state (any longer run of zeros gives the same state)."""
    import torch

    w = model.receptive_field
    padded = np.concatenate([np.zeros((x.shape[0], w), np.float32), x], axis=1)
    pt = torch.from_numpy(np.tile(p.astype(np.float32), (x.shape[0], 1)))
    with torch.no_grad():
        y = model(torch.from_numpy(padded[:, None]), pt).numpy()[:, 0, w:]
        y0 = model(torch.zeros(x.shape[0], 1, w + 1), pt).numpy()[:, 0, -1:]
    return y - y0


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A causal tiny model with non-trivial batch-norm statistics, its ONNX and TorchScript
    artifacts, and a stereo test signal with its offline torch output."""
    torch = pytest.importorskip("torch")
    from mixbridge.export.exporter import export_model
    from mixbridge.models import registry

    torch.manual_seed(0)
    model = registry.create("tcn-tiny-causal")
    gen = torch.Generator().manual_seed(1)
    for block in model.blocks:
        block.film.bn.running_mean.copy_(torch.rand(8, generator=gen) - 0.5)
        block.film.bn.running_var.copy_(0.5 + torch.rand(8, generator=gen))
    model.eval()
    out = tmp_path_factory.mktemp("runtime")
    export_model(model, "onnx", out / "onnx")
    export_model(model, "torchscript", out / "ts")
    rng = np.random.default_rng(0)
    x = (0.3 * rng.standard_normal((2, 5000))).astype(np.float32)
    p = rng.random(model.n_params).astype(np.float32)
    offline = _offline(model, x, p)
    return {"model": model, "onnx": out / "onnx", "ts": out / "ts", "x": x, "p": p, "offline": offline}


def _stream(session, x, p, block_size):
    session.set_params(p)
    session.warm()
    session.reset()
    return np.concatenate([session.process(x[:, i:i + block_size]).copy()
                           for i in range(0, x.shape[1], block_size)], axis=1)


@pytest.mark.parametrize("block_size", BLOCK_SIZES)
def test_streamed_equals_offline(tiny, block_size):
    session = StreamingSession(tiny["onnx"], channels=2)
    n = 700 if block_size == 1 else tiny["x"].shape[1]  # one call per sample: keep it short
    out = _stream(session, tiny["x"][:, :n], tiny["p"], block_size)
    assert np.max(np.abs(out - tiny["offline"][:, :n])) <= STREAM_TOL


def test_torchscript_session_streams_like_onnx(tiny):
    from mixbridge.export.torchscript import TorchScriptSession

    ts = TorchScriptSession(tiny["ts"], channels=2, num_threads=None)
    out = _stream(ts, tiny["x"], tiny["p"], 65)
    assert np.max(np.abs(out - tiny["offline"])) <= STREAM_TOL


def test_reset_clears_state(tiny):
    session = StreamingSession(tiny["onnx"], channels=2)
    session.set_params(tiny["p"])
    session.prepare([512, 256])  # warms at these parameters
    noise = np.random.default_rng(5).standard_normal((2, 512)).astype(np.float32)
    session.process(noise)
    x = tiny["x"][:, :256]
    dirty = session.process(x).copy()
    assert np.max(np.abs(dirty - tiny["offline"][:, :256])) > 1e-3  # the tail of the noise is audible
    session.reset()
    clean = session.process(x).copy()
    assert np.max(np.abs(clean - tiny["offline"][:, :256])) <= STREAM_TOL


def test_render_reuses_streaming_in_chunks(tiny):
    session = StreamingSession(tiny["onnx"], channels=2)
    for chunk in (4096, 1000):
        out = session.render(tiny["x"], tiny["p"], chunk=chunk)
        assert np.max(np.abs(out - tiny["offline"])) <= STREAM_TOL


def test_hot_path_reuses_preallocated_buffers(tiny):
    session = StreamingSession(tiny["onnx"], channels=2)
    session.prepare([64])
    a = session.process(tiny["x"][:, :64])
    b = session.process(tiny["x"][:, 64:128])
    assert a is b  # the same preallocated output view, overwritten in place


def test_parameter_smoothing_time_constant_and_continuity(tiny):
    """One-pole smoothing: after ``tau`` a step has moved 1 - 1/e of the way; the output
    of a parameter step has no jump larger than a small part of the total change."""
    session = StreamingSession(tiny["onnx"], channels=1, smoothing_ms=20.0)
    tau_samples = int(0.020 * SAMPLE_RATE)  # 960
    zeros, ones = np.zeros(session.artifact.n_params), np.ones(session.artifact.n_params)
    dc = np.full((1, 64), 0.5, np.float32)  # a constant input: the output is a level FiLM shifts
    session.set_params(zeros)
    session.process(dc)
    session.set_params(ones)
    session.process(np.full((1, tau_samples), 0.5, np.float32))
    np.testing.assert_allclose(session._current, 1 - math.exp(-1), rtol=1e-6)

    def response(smoothing_ms):
        s = StreamingSession(tiny["onnx"], channels=1, smoothing_ms=smoothing_ms)
        blocks = []
        for i in range(200):
            s.set_params(zeros if i < 10 else ones)  # the step arrives with block 10 (sample 640)
            blocks.append(s.process(dc).copy())
        return np.concatenate(blocks, axis=1)[0]

    # skip the first two blocks: the step from silence (warm state) to the level settles over the
    # first receptive field (31 samples)
    smooth, hard = response(20.0)[128:], response(0.0)[128:]
    final = hard[-1]
    total = abs(final - smooth[0])
    assert total > 1e-4  # the parameters change the output (the level FiLM shifts)
    # no zipper: the largest sample-to-sample jump is a small part of the change
    assert np.max(np.abs(np.diff(smooth))) < 0.02 * total
    # one block and a receptive field (31 samples, the network's memory of the ramp) after the
    # step: unsmoothed (a one-block ramp) has arrived, smoothed has not
    one_block_after = 640 + 64 + 31 - 128
    assert abs(hard[one_block_after] - final) < 0.01 * total
    assert abs(smooth[one_block_after] - final) > 0.5 * total
    # 190 blocks later (12 160 samples, 12.7 tau) the smoothed output has settled too
    assert abs(smooth[-1] - final) < 0.01 * total


def test_params_in_real_units_and_validation(tiny):
    session = StreamingSession(tiny["onnx"])
    session.set_params({"compressor": {"threshold_db": -30.0}, "compressor.ratio": 20.0})
    names = session.param_names
    assert session.params[names.index("compressor.threshold_db")] == pytest.approx(0.5)
    assert session.params[names.index("compressor.ratio")] == pytest.approx(1.0)
    with pytest.raises(ParamRangeError, match=r"threshold_db = -70 is outside \[-60, 0\] dB"):
        session.set_params({"compressor.threshold_db": -70})
    with pytest.raises(UnknownParamError, match="known: compressor.threshold_db"):
        session.set_params({"eq.peak1_q": 1.0})
    with pytest.raises(ParamRangeError, match="outside"):
        session.set_params(np.full(session.artifact.n_params, 1.5))
    with pytest.raises(ParamRangeError, match="expected 6"):
        session.set_params([0.5])


def test_bad_blocks_are_refused(tiny):
    session = StreamingSession(tiny["onnx"], channels=2)
    with pytest.raises(AudioInputError, match=r"\[2, samples\]"):
        session.process(np.zeros((1, 64), np.float32))
    with pytest.raises(AudioInputError, match="1..4096"):
        session.process(np.zeros((2, 4097), np.float32))


def test_provider_selection():
    import onnxruntime as ort

    expected = "CUDAExecutionProvider" if "CUDAExecutionProvider" in ort.get_available_providers() \
        else "CPUExecutionProvider"
    assert select_provider() == expected
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(BackendUnavailableError, match="available: "):
            select_provider("CUDAExecutionProvider")


def test_runtime_imports_and_runs_without_torch():
    code = f"""
import sys
import numpy as np
import mixbridge.export, mixbridge.export.runtime, mixbridge.export.artifact
from mixbridge.export.runtime import StreamingSession
s = StreamingSession({str(FIXTURE)!r})
err = s.verify(64)
s.process(np.zeros((1, 64), np.float32))
assert err <= 1e-5, err
bad = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
assert not bad, bad
print("ok")
"""
    result = run_python(code, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
