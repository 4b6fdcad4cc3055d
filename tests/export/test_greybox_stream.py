"""The grey-box CPU streaming path (mixbridge.export.greybox_dsp): streamed in blocks of 1, 64 and 512
samples it equals the numpy reference stages run once on the whole signal; the audio callback
allocates nothing (tracemalloc over 1000 callbacks); and it is safe on a live thread (no raise, no
NaN out, an optional ceiling clipped and counted)."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from scipy.signal import sosfilt

from mixbridge.export.artifact import load_artifact
from mixbridge.export.exporter import export_model, resolve_model
from mixbridge.export.greybox_dsp import COMPRESSOR_LEAVES, GreyBoxConfigError, GreyBoxDSP
from mixbridge.export.runtime import StreamingSession
from mixbridge.plugins.dynamics import compress
from mixbridge.plugins.rbj import eq_sections

#: float64 in both paths, rounded once to float32 at the end; the ops differ only in their order
#: (in-place vs. temporaries, 10^x as exp), so one float32 ulp at most (6e-8 at full scale).
STREAM_TOL = 1e-6
#: tracemalloc's peak over the callbacks: numpy's ufunc reductions hold about 1.4 kB of small temporaries
#: per call; one block-sized array at the shipped proxies' largest block (512 samples, stereo) is at
#: least 4 kB (float32; 8 kB float64, the precision the DSP runs in).
ALLOC_PEAK_BYTES = 3072
#: Traced memory kept after 1000 callbacks (no growth: a leak of one small object per call is > 50 kB).
ALLOC_GROWTH_BYTES = 1024
#: The max-plus release restarted at block boundaries vs one pass: exp/log round-off of the carried state.
RELEASE_REL_TOL = 1e-12
PROXIES = ("models/proxies/eqcomp_builtin.json", "models/proxies/comp_builtin.json")


@pytest.fixture(scope="module", params=PROXIES, ids=["eqcomp", "comp"])
def artifact(request, tmp_path_factory):
    model, _ = resolve_model(request.param)
    folder = tmp_path_factory.mktemp("greybox") / "onnx"
    export_model(model, "onnx", folder)
    return load_artifact(folder)


def _signal(channels: int, samples: int = 6000) -> np.ndarray:
    """Noise with level steps of -40, -12 and 0 dBFS peak-ish, then silence: attack, release and the knee."""
    rng = np.random.default_rng(21)
    x = rng.standard_normal((channels, samples))
    gains = np.repeat([0.01, 0.25, 1.0, 0.0], samples // 4)
    return (0.3 * x * np.pad(gains, (0, samples - gains.size))).astype(np.float32)


def _reference(dsp: GreyBoxDSP, x: np.ndarray, params: np.ndarray) -> np.ndarray:
    """The reference stages once on the whole ``x [batch, channels, samples]``: sosfilt of the RBJ
    cascade, then :func:`mixbridge.plugins.dynamics.compress` with the learned release law."""
    vals = dsp.controls(params)
    out = np.empty_like(x)
    for b in range(x.shape[0]):
        y = x[b].astype(np.float64)
        if "eq" in dsp.entries:
            eq = {k.split(".", 1)[1]: v for k, v in vals.items() if k.startswith("eq.")}
            sos = np.array([np.concatenate([bq, aq]) for bq, aq in eq_sections(eq, dsp.sample_rate)])
            y = sosfilt(sos, y, axis=-1)
        comp = {leaf: vals[f"compressor.{leaf}"] for leaf in COMPRESSOR_LEAVES}
        out[b] = compress(y, dsp.sample_rate, **comp, beta=vals["compressor.beta"])
    return out


def _dsp(artifact, batch: int, channels: int, **kw) -> GreyBoxDSP:
    return GreyBoxDSP(artifact.path, artifact.sidecar, batch, channels, artifact.sample_rate, **kw)


@pytest.mark.parametrize("layout", [(2, 1), (1, 2)], ids=["two-mono-signals", "one-linked-stereo"])
@pytest.mark.parametrize("block", [1, 64, 512])
def test_streamed_blocks_equal_the_one_shot_reference(artifact, block, layout):
    batch, channels = layout
    dsp = _dsp(artifact, batch, channels)
    x = _signal(batch * channels).reshape(batch, channels, -1)
    params = np.random.default_rng(22).random(len(dsp.param_names)).astype(np.float32)
    ref = _reference(dsp, x, params)
    assert dsp.controls(params)["compressor.beta"] > 0.0  # the learned release law, not the plain peak hold
    assert np.max(np.abs(ref)) > 0.1 and not np.allclose(ref, x, atol=1e-3)  # it does filter and compress
    out = np.empty_like(x)
    buf = np.empty((batch, channels, block), np.float32)
    for start in range(0, x.shape[-1], block):
        n = min(block, x.shape[-1] - start)
        piece = buf[..., :n]
        dsp.process(x[..., start:start + n], params, piece)
        out[..., start:start + n] = piece
    np.testing.assert_allclose(out, ref, atol=STREAM_TOL, rtol=0)
    # reset() clears every tail: the same signal again gives the same output
    dsp.reset()
    head = x[..., :dsp.max_block]
    np.testing.assert_allclose(dsp.process(head, params, np.empty_like(head)), ref[..., :dsp.max_block],
                               atol=STREAM_TOL, rtol=0)


def test_the_session_renders_its_dsp_path_as_the_reference(artifact):
    s = StreamingSession(artifact, channels=2)
    assert s.dsp is not None
    x = _signal(2)
    params = np.random.default_rng(23).random(len(s.param_names)).astype(np.float32)
    got = s.render(x, params, chunk=64)
    np.testing.assert_allclose(got, _reference(s.dsp, x[:, None], s.params)[:, 0], atol=STREAM_TOL, rtol=0)


def _traced(step, calls: int = 1000) -> tuple[int, int]:
    """(bytes kept, peak bytes above the start) of tracemalloc over ``calls`` calls of ``step``."""
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(calls):
            step()
        end, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return end - start, peak - start


@pytest.mark.parametrize("block", [64, "max"])
def test_the_audio_callback_allocates_nothing(artifact, block):
    s = StreamingSession(artifact, channels=2)
    block = s.max_block if block == "max" else block
    s.prepare([block])
    x = _signal(2, block)
    for _ in range(20):  # warm-up: the parameters settle, so the control graph stops running
        s.process(x)
    kept, peak = _traced(lambda: s.process(x))
    assert kept <= ALLOC_GROWTH_BYTES, f"{kept} bytes kept over 1000 callbacks"
    assert peak <= ALLOC_PEAK_BYTES, f"{peak} bytes allocated at the peak of a callback of {block} samples"


def test_a_nonfinite_input_block_is_silence(artifact):
    dsp = _dsp(artifact, 1, 1)
    params = np.full(len(dsp.param_names), 0.5, np.float32)
    x = _signal(1, 512).reshape(1, 1, -1)
    bad = x.copy()
    bad[0, 0, 100] = np.nan
    out = np.empty_like(x)
    dsp.process(bad, params, out)
    assert dsp.refused_blocks == 1 and dsp.nonfinite_blocks == 0 and not np.any(out)
    dsp.process(x, params, out)  # that block was silence after rest: the same as a fresh stream
    fresh = _dsp(artifact, 1, 1)
    np.testing.assert_array_equal(out, fresh.process(x, params, np.empty_like(x)))
    assert np.all(np.isfinite(out))


def test_the_ceiling_clips_and_counts(artifact):
    x = (np.random.default_rng(24).uniform(-1.0, 1.0, (1, 1, 2000))).astype(np.float32)
    params = np.full(len(load_artifact(artifact.path).sidecar["schema"]["param_names"]), 0.9, np.float32)
    free = _dsp(artifact, 1, 1).process(x, params, np.empty_like(x))
    over = int(np.count_nonzero(np.abs(free) > 1.0))
    assert over > 0  # makeup 10.8 dB at these parameters: the proxy's output passes full scale
    dsp = _dsp(artifact, 1, 1, ceiling=1.0)
    out = dsp.process(x, params, np.empty_like(x))
    assert float(np.max(np.abs(out))) <= 1.0 and dsp.clipped_samples == over
    np.testing.assert_array_equal(out, np.clip(free, -1.0, 1.0))


def test_block_sizes_outside_the_buffers_are_refused(artifact):
    from mixbridge.errors import AudioInputError

    dsp = _dsp(artifact, 1, 1, max_block=64)
    with pytest.raises(AudioInputError, match="1..64"):
        dsp.process(np.zeros((1, 1, 65), np.float32), np.zeros(len(dsp.param_names), np.float32),
                    np.zeros((1, 1, 65), np.float32))
    with pytest.raises(GreyBoxConfigError, match="max_block = 0 samples is outside 1..4096"):
        _dsp(artifact, 1, 1, max_block=0)
    with pytest.raises(GreyBoxConfigError, match="batch = 0 and channels = 1"):
        _dsp(artifact, 0, 1)


@pytest.mark.parametrize("ceiling", [0.0, -1.0, float("nan"), float("inf")])
def test_a_bad_ceiling_is_refused(artifact, ceiling):
    from mixbridge.errors import ParamRangeError

    with pytest.raises(ParamRangeError, match="ceiling"):
        _dsp(artifact, 1, 1, ceiling=ceiling)


def test_any_finite_or_not_block_gives_finite_output_within_the_ceiling(artifact):
    """Fuzz: NaN, infinities, float32's largest values and silence, at any block size, never raise and
    never give a non-finite sample or one past the ceiling."""
    dsp = _dsp(artifact, 2, 1, ceiling=1.0)
    params = np.full(len(dsp.param_names), 0.9, np.float32)  # makeup 10.8 dB: loud output
    rng = np.random.default_rng(25)
    specials = np.array([np.nan, np.inf, -np.inf, 3.4e38, -3.4e38, 0.0, 1e-45], np.float32)
    for n in (1, 7, 64, 333, dsp.max_block):
        for _ in range(5):
            x = rng.uniform(-4.0, 4.0, (2, 1, n)).astype(np.float32)
            hits = rng.random(x.shape) < 0.05
            x[hits] = rng.choice(specials, int(hits.sum()))
            out = dsp.process(x, params, np.empty_like(x))
            assert np.all(np.isfinite(out)) and float(np.max(np.abs(out))) <= 1.0
    assert dsp.refused_blocks > 0 and dsp.clipped_samples > 0


def test_silence_after_a_signal_leaves_no_subnormal_state(artifact):
    """The tails are flushed below FLUSH_BELOW: silence costs what signal costs (no subnormal floats)."""
    dsp = _dsp(artifact, 1, 1)
    params = np.full(len(dsp.param_names), 0.5, np.float32)
    x = _signal(1, 512).reshape(1, 1, -1)
    out = np.empty_like(x)
    dsp.process(x * np.float32(10.0), params, out)
    silence = np.zeros_like(x)
    for _ in range(400):  # 4.6 s of silence at 44.1 kHz: every tail decays through the subnormal range
        dsp.process(silence, params, out)
    tiny = np.finfo(np.float64).tiny
    for state in (dsp._zi, dsp._low_zi, dsp._attack_zi):
        assert not np.any((state != 0.0) & (np.abs(state) < tiny))
    assert not np.any(out)


def test_a_state_gone_wrong_gives_one_silent_block_and_a_fresh_start(artifact):
    dsp = _dsp(artifact, 1, 1)
    params = np.full(len(dsp.param_names), 0.5, np.float32)
    x = _signal(1, 512).reshape(1, 1, -1)
    out = np.empty_like(x)
    dsp.process(x, params, out)
    (dsp._zi if "eq" in dsp.entries else dsp._attack_zi)[0, 0, 0] = np.nan  # as a corrupted state would be
    dsp.process(x, params, out)
    assert dsp.nonfinite_blocks == 1 and not np.any(out)
    dsp.process(x, params, out)
    np.testing.assert_array_equal(out, _dsp(artifact, 1, 1).process(x, params, np.empty_like(x)))


def test_clipping_at_the_ceiling_allocates_nothing(artifact):
    dsp = _dsp(artifact, 2, 1, max_block=512, ceiling=1.0)
    params = np.full(len(dsp.param_names), 0.9, np.float32)  # makeup 10.8 dB: every block clips
    x = (np.random.default_rng(26).uniform(-1.0, 1.0, (2, 1, 512))).astype(np.float32)
    out = np.empty_like(x)
    for _ in range(20):
        dsp.process(x, params, out)
    kept, peak = _traced(lambda: dsp.process(x, params, out))
    assert dsp.clipped_samples > 1000
    assert kept <= ALLOC_GROWTH_BYTES and peak <= ALLOC_PEAK_BYTES, (kept, peak)


@pytest.mark.parametrize("knee_db", [0.0, 6.0])
def test_the_shared_kernels_are_the_reference_functions_in_place(knee_db):
    """plugins.master_kernels' in-place detector, gain computer and release (which this DSP and the master
    chain share) give dynamics' reference values: the gain computer bit for bit (the same operations in the
    same order), the release carried over uneven blocks within round-off."""
    from mixbridge.plugins.dynamics import LEVEL_FLOOR, peak_release, static_reduction_db
    from mixbridge.plugins.master_kernels import peak_level_db_, release_, static_reduction_db_

    x = _signal(2, 3000).astype(np.float64)
    level = np.empty(x.shape[-1])
    peak_level_db_(x, np.empty_like(x), level)
    np.testing.assert_array_equal(level, 20.0 * np.log10(np.maximum(np.max(np.abs(x), axis=0), LEVEL_FLOOR)))
    gr = np.empty_like(level)
    static_reduction_db_(level, -30.0, knee_db, 1.0 - 1.0 / 4.0, gr, np.empty_like(level))
    np.testing.assert_array_equal(gr, static_reduction_db(level, -30.0, 4.0, knee_db))
    release_ms, rate = 50.0, 44100
    ref, _ = peak_release(gr, release_ms, rate)
    held, state, pos = gr.copy(), -np.inf, 0
    index = np.arange(x.shape[-1], dtype=np.float64)
    for n in (1, 64, 511, 1000, 1424):  # 3000 samples in uneven blocks
        state = release_(held[pos:pos + n], np.empty(n), index[:n], 1.0 / (release_ms * 1e-3 * rate), state)
        pos += n
    np.testing.assert_allclose(held, ref, rtol=RELEASE_REL_TOL, atol=0)
