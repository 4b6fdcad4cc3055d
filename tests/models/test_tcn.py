"""The TCN proxy: receptive field, alignment, streaming invariance, registry, checkpoints."""
from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from mixbridge.errors import MixbridgeError, UnknownNameError  # noqa: E402
from mixbridge.models import registry  # noqa: E402
from mixbridge.models.checkpoint import (  # noqa: E402
    CheckpointError,
    CheckpointMismatchError,
    load_checkpoint,
    load_training_state,
    save_checkpoint,
)
from mixbridge.models.metrics import esr  # noqa: E402
from mixbridge.models.tcn import TCN, ModelConfigError, StreamingTCN, schema_param_names, stream  # noqa: E402
from tests.support import make_identity_tcn  # noqa: E402

#: float32 streaming vs offline: same arithmetic in a different order (STYLE.md point 7).
STREAM_TOL = 1e-5
#: -6.02 dB is a factor 0.5 in amplitude (20 log10 0.5 = -6.0206 dB).
GAIN_MINUS_6DB = 10 ** (-6.02 / 20)
#: The overfit target of issue 4.
OVERFIT_ESR = 1e-3
BLOCK_SIZES = (1, 63, 64, 65, 512)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _randomise_batch_norm(model: TCN, seed: int = 1) -> TCN:
    """Give batch norm non-trivial eval statistics so streaming must fold them right."""
    gen = torch.Generator().manual_seed(seed)
    for block in model.blocks:
        bn = block.film.bn
        bn.running_mean.copy_(torch.rand(bn.num_features, generator=gen) - 0.5)
        bn.running_var.copy_(0.5 + torch.rand(bn.num_features, generator=gen))
    return model.eval()


def _tiny(causal: bool, **kw) -> TCN:
    torch.manual_seed(0)
    name = "tcn-tiny-causal" if causal else "tcn-tiny"
    return _randomise_batch_norm(registry.create(name, **kw))


def _measured_receptive_field(model: TCN, length: int) -> int:
    """Count output samples that change when one input sample changes (float64)."""
    model = model.double().eval()
    p = torch.rand(1, model.n_params, dtype=torch.float64)
    x = torch.zeros(1, model.n_inputs, length, dtype=torch.float64)
    impulse = x.clone()
    impulse[..., length // 2] = 1.0
    with torch.no_grad():
        diff = (model(impulse, p) - model(x, p)).abs()[0, 0]
    changed = torch.nonzero(diff > 0).flatten()
    return int(changed.max() - changed.min() + 1)


# --------------------------------------------------------------------------- receptive field
@pytest.mark.parametrize("causal", [False, True])
def test_receptive_field_computed_equals_impulse_measurement(causal):
    model = _tiny(causal)
    assert model.receptive_field == 1 + 2 * (1 + 2 + 4 + 8)
    assert _measured_receptive_field(model, 4 * model.receptive_field) == model.receptive_field


def test_thesis_dilation_pattern_receptive_field():
    """TCN-10 shape (kernel 15, dilations 1..512), few channels so the impulse run is fast."""
    torch.manual_seed(0)
    model = TCN(channels=2, cond_dim=4, kernel_size=15, n_blocks=10, causal=True)
    assert model.dilations == [2 ** i for i in range(10)]
    assert model.receptive_field == 1 + 14 * 1023 == 14323
    assert _measured_receptive_field(model, 2 * model.receptive_field) == 14323
    two_stacks = TCN(channels=2, cond_dim=4, n_blocks=20)
    assert two_stacks.dilations == [2 ** (i % 10) for i in range(20)]
    assert two_stacks.receptive_field == 1 + 2 * 14 * 1023


def test_noncausal_output_is_centred_and_shorter_by_receptive_field_minus_one():
    model = make_identity_tcn(_tiny(False))
    x = torch.randn(1, 1, 500)
    with torch.no_grad():
        y = model(x, torch.rand(1, model.n_params))
    rf = model.receptive_field
    assert y.shape[-1] == 500 - (rf - 1) == model.output_length(500)
    assert model.center_offset_samples == (rf - 1) // 2 == model.latency_samples
    torch.testing.assert_close(y, x[..., model.center_offset_samples: model.center_offset_samples + y.shape[-1]])


def test_causal_identity_has_zero_latency_and_same_length():
    model = make_identity_tcn(_tiny(True))
    x = torch.randn(1, 1, 300)
    with torch.no_grad():
        y = model(x, torch.rand(1, model.n_params))
    assert model.latency_samples == 0 and y.shape == x.shape
    torch.testing.assert_close(y, x)


def test_noncausal_input_shorter_than_receptive_field_is_refused():
    model = _tiny(False)
    with pytest.raises(ValueError, match="receptive field"):
        model(torch.zeros(1, 1, model.receptive_field - 1), torch.zeros(1, model.n_params))


# --------------------------------------------------------------------------- streaming
@pytest.mark.parametrize("block_size", BLOCK_SIZES)
def test_causal_streaming_equals_offline(block_size):
    model = _tiny(True)
    # block size 1 is one eager call per sample: keep it short (still 10x the receptive field)
    x = torch.randn(2, 1, 310 if block_size == 1 else 1500)
    p = torch.rand(2, model.n_params)
    with torch.no_grad():
        offline = model(x, p)
    streamed = stream(model, x, p, block_size)
    assert (streamed - offline).abs().max() <= STREAM_TOL


@pytest.mark.parametrize("block_size", (1, 64, 65))
def test_noncausal_streaming_equals_offline_after_latency(block_size):
    """Streamed output ``m`` equals offline output ``m - (rf - 1)``: the stream lags the input
    by ``latency_samples`` while the offline output is centred ``center_offset_samples`` ahead."""
    model = _tiny(False)
    x = torch.randn(1, 1, 310 if block_size == 1 else 700)
    p = torch.rand(1, model.n_params)
    with torch.no_grad():
        offline = model(x, p)
    streamed = stream(model, x, p, block_size)
    rf = model.receptive_field
    assert model.latency_samples + model.center_offset_samples == rf - 1
    assert (streamed[..., rf - 1:] - offline).abs().max() <= STREAM_TOL


def test_thesis_sized_causal_streaming_equals_offline():
    torch.manual_seed(0)
    model = _randomise_batch_norm(TCN(channels=4, cond_dim=8, kernel_size=15, n_blocks=10, causal=True))
    x = torch.randn(1, 1, 6000)
    p = torch.rand(1, model.n_params)
    with torch.no_grad():
        offline = model(x, p)
    assert (stream(model, x, p, 1024) - offline).abs().max() <= STREAM_TOL


def test_parameter_ramp_glides_between_blocks():
    """With different start and end parameters the FiLM coefficients ramp linearly:
    the last sample of the block sees exactly ``p_end`` (checked on a model whose
    output is the FiLM shift of the last block)."""
    model = _tiny(True)
    with torch.no_grad():
        for b in model.blocks:
            b.conv.weight.zero_()
            b.conv.bias.zero_()
    wrapper = StreamingTCN(model)
    s_in, s_hid = wrapper.initial_state(1)
    p0, p1 = torch.zeros(1, model.n_params), torch.ones(1, model.n_params)
    x = torch.zeros(1, 1, 32)
    with torch.no_grad():
        ramped, _, _ = wrapper(x, p0, p1, s_in, s_hid)
        start, _, _ = wrapper(x, p0, p0, s_in, s_hid)
        end, _, _ = wrapper(x, p1, p1, s_in, s_hid)
    torch.testing.assert_close(ramped[..., -1], end[..., -1])
    # strictly between the two constant outputs' ends, no jump at the first sample
    assert (ramped[..., 0] - start[..., 0]).abs() < (end[..., 0] - start[..., 0]).abs()


def test_torchscript_streaming_matches_eager():
    model = _tiny(True)
    wrapper = StreamingTCN(model)
    scripted = torch.jit.script(wrapper)
    s_in, s_hid = wrapper.initial_state(1)
    x, p = torch.randn(1, 1, 77), torch.rand(1, model.n_params)
    with torch.no_grad():
        a = wrapper(x, p, p, s_in, s_hid)
        b = scripted(x, p, p, s_in, s_hid)
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v)


# --------------------------------------------------------------------------- config, registry
def test_config_round_trips_and_records_schema():
    model = registry.create("tcn-tiny", schema=("eq", "compressor"), sample_rate=44100)
    again = TCN(**model.config())
    assert again.config() == model.config()
    assert model.param_names == schema_param_names(("eq", "compressor"))
    assert model.n_params == 13 + 6 and model.sample_rate == 44100


def test_bad_config_is_refused():
    with pytest.raises(ModelConfigError, match="channels"):
        TCN(channels=0)
    with pytest.raises(UnknownNameError, match="known processors"):
        TCN(schema=("nonesuch",))
    with pytest.raises(ModelConfigError, match="output_activation"):
        TCN(output_activation="relu")


def test_registry_rejects_duplicates_and_lists_known_names():
    with pytest.raises(MixbridgeError, match="already registered"):
        registry.register("tcn-tiny", lambda **kw: None)
    with pytest.raises(UnknownNameError) as err:
        registry.create("tcn-nonesuch")
    assert "tcn-tiny" in str(err.value) and "tcn-10" in str(err.value)


@pytest.mark.parametrize("name", [n for n in registry.names() if n.startswith("tcn-")])
def test_every_registry_entry_builds(name):
    model = registry.create(name)
    assert model.architecture == "tcn-film"
    assert model.receptive_field >= 1 and model.n_weights > 0
    assert model.latency_samples == (0 if model.causal else (model.receptive_field - 1) // 2)


def test_checkpoints_and_export_dispatch_on_the_architecture_name():
    """A recorded config rebuilds through the architecture registry; a model whose architecture has
    no streaming wrapper is refused by name, with the ones that stream listed."""
    model = registry.create("tcn-tiny-causal", schema=("eq",))
    rebuilt = registry.build_architecture("tcn-film", model.config())
    assert isinstance(rebuilt, TCN) and rebuilt.config() == model.config()
    assert type(registry.streaming_wrapper(model)).__name__ == "StreamingTCN"
    with pytest.raises(UnknownNameError, match="known architectures: tcn-film, mixer-mlp"):
        registry.build_architecture("wavenet", {})
    with pytest.raises(UnknownNameError, match="known streaming architectures: tcn-film"):
        registry.streaming_wrapper(registry.create("mixer-tiny"))
    with pytest.raises(MixbridgeError, match="architecture 'tcn-film' is already registered"):
        registry.register_architecture("tcn-film", TCN)


def test_registry_thesis_sizes():
    assert registry.create("tcn-10").receptive_field == 14323
    assert registry.create("tcn-20").receptive_field == 28645
    assert registry.create("tcn-rt").causal


# --------------------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip(tmp_path):
    model = _tiny(True)
    path = save_checkpoint(model, tmp_path / "ck", model_name="tcn-tiny-causal", progress={"epoch": 3})
    loaded, record = load_checkpoint(path, expect_param_names=model.param_names, expect_sample_rate=48000)
    assert record["progress"] == {"epoch": 3} and record["config"] == model.config()
    x, p = torch.randn(1, 1, 200), torch.rand(1, model.n_params)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, p), model(x, p), rtol=0, atol=0)
    # a folder holding one checkpoint, or the weights path, resolve to the same
    assert load_checkpoint(tmp_path)[1]["weights_sha256"] == record["weights_sha256"]
    assert load_checkpoint(tmp_path / "ck.safetensors")[1]["config"] == record["config"]


def test_checkpoint_resumes_optimizer_and_scheduler(tmp_path):
    """Adam moments and the plateau scheduler survive a save/load (resumable training)."""
    model = registry.create("tcn-tiny-causal")
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0)
    for _ in range(2):
        loss = model(torch.randn(1, 1, 64), torch.rand(1, model.n_params)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    sched.step(1.0)
    sched.step(2.0)  # no improvement -> lr halves
    path = save_checkpoint(model, tmp_path / "run.best", optimizer=opt, scheduler=sched, progress={"step": 2})
    assert (tmp_path / "run.best.safetensors").exists() and (tmp_path / "run.best.optim.safetensors").exists()
    model2, _ = load_checkpoint(path)
    opt2 = torch.optim.Adam(model2.parameters(), lr=1.0)
    sched2 = torch.optim.lr_scheduler.ReduceLROnPlateau(opt2)
    assert load_training_state(path, opt2, sched2) == {"step": 2}
    assert opt2.param_groups[0]["lr"] == pytest.approx(1.5e-4)
    a, b = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert a.keys() == b.keys()
    for idx in a:
        torch.testing.assert_close(a[idx]["exp_avg_sq"], b[idx]["exp_avg_sq"], rtol=0, atol=0)
    assert sched2.state_dict()["best"] == sched.state_dict()["best"]
    with pytest.raises(CheckpointError, match="saved a Adam state"):
        load_training_state(path, torch.optim.SGD(model2.parameters(), lr=0.1))


def test_checkpoint_refuses_other_schema_and_sample_rate(tmp_path):
    model = _tiny(True)
    path = save_checkpoint(model, tmp_path / "ck")
    with pytest.raises(CheckpointMismatchError, match="44100 Hz was expected"):
        load_checkpoint(path, expect_sample_rate=44100)
    with pytest.raises(CheckpointMismatchError, match="trained for parameters"):
        load_checkpoint(path, expect_param_names=schema_param_names(("eq",)))


def test_checkpoint_refuses_corruption_and_unknown_versions(tmp_path):
    model = _tiny(True)
    path = save_checkpoint(model, tmp_path / "ck")
    weights = tmp_path / "ck.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_checkpoint(path)
    weights.write_bytes(good)
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "format_version": 99}))
    with pytest.raises(CheckpointError, match="format_version 99 is not supported"):
        load_checkpoint(path)
    drifted = {**record, "schema": {**record["schema"], "param_names": ["compressor.old_name"]}}
    path.write_text(json.dumps(drifted))
    with pytest.raises(CheckpointMismatchError, match="no longer matches"):
        load_checkpoint(path)
    path.write_text(json.dumps(record)[:40])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(path)


# --------------------------------------------------------------------------- learning
def test_tiny_proxy_overfits_a_fixed_gain():
    """tcn-tiny-causal learns a -6.02 dB gain to ESR < 1e-3 (eval mode, fresh noise)."""
    torch.manual_seed(0)
    model = registry.create("tcn-tiny-causal", schema=("trim",))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    p = torch.full((4, 1), 0.5)
    held_out = torch.randn(2, 1, 4096) * 0.3
    score = float("inf")
    for step in range(1, 401):
        x = torch.randn(4, 1, 1024) * 0.3
        loss = torch.nn.functional.mse_loss(model(x, p), GAIN_MINUS_6DB * x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 25 == 0:
            model.eval()
            with torch.no_grad():
                score = esr(model(held_out, p[:2]), GAIN_MINUS_6DB * held_out)
            model.train()
            if score < OVERFIT_ESR:
                break
    assert score < OVERFIT_ESR, f"ESR {score:.2e} after {step} steps"


def test_streaming_wrapper_uses_eval_statistics_and_leaves_the_model_alone():
    """Wrapping a model in training mode streams its eval-mode output and does not switch it."""
    model = _tiny(True).train()
    x, p = torch.randn(1, 1, 300), torch.rand(1, model.n_params)
    streamed = stream(model, x, p, 64)
    assert model.training
    with torch.no_grad():
        offline = model.eval()(x, p)
    assert (streamed - offline).abs().max() <= STREAM_TOL
