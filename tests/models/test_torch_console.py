"""The torch console vs the numpy console and references: equivalence, the contract, gradients, mapping.

Oracles: the numpy console (``render_console``/``render_track``, builtin backend) for the
linear stages; the RBJ closed form (``plugins.rbj``) for the EQ; ``plugins.dynamics.compress``,
``plugins.reverb.reverb`` and ``plugins.master_bus.render_master`` for the other stages; the
semantic contract (``plugins.contract``) for the compressor, EQ, limiter, reverb and pan rows;
the scalar schema functions for the normalised mapping.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mixbridge.errors import AudioInputError, ParamRangeError, UnknownParamError  # noqa: E402
from mixbridge.loudness import integrated_lufs, true_peak_dbtp  # noqa: E402
from mixbridge.models import dsp, dsp_dynamics, dsp_eq, dsp_reverb  # noqa: E402
from mixbridge.models.console import (  # noqa: E402
    MASTER_PARAMS,
    STRIP_PARAMS,
    TorchConsole,
    denormalise,
    normalise,
    register_contract,
    render_strips,
    resolve_params,
)
from mixbridge.plugins import rbj  # noqa: E402
from mixbridge.plugins.backend import get_backend  # noqa: E402
from mixbridge.plugins.console import render_console, render_track  # noqa: E402
from mixbridge.plugins.dynamics import compress, gain_reduction_db  # noqa: E402
from mixbridge.plugins.master_bus import render_master  # noqa: E402
from mixbridge.plugins.reverb import reverb  # noqa: E402
from mixbridge.schema import CHANNEL_STRIP, MASTER_BUS, MASTER_RENDER  # noqa: E402
from mixbridge.session import Session, Track  # noqa: E402

SR = 44100
#: Linear stages (gain, polarity, pan, sends, sum): float32 round-off (issue 9).
LINEAR_TOL = 1e-6
#: EQ magnitude vs the RBJ design, dB (issue 9).
EQ_EXACT_TOL_DB = 0.01
#: Filtering vs scipy's sosfilt of the same biquads (zero state), max abs error on a ~unit signal.
EQ_TIME_TOL = 1e-5
#: Compressor output vs plugins.dynamics.compress, max abs error (measured 6e-8 on 0.2-RMS noise).
COMPRESSOR_TOL = 1e-6
#: Smoothed gain reduction vs the reference's, dB (measured 5e-11 dB).
REDUCTION_TOL_DB = 1e-6
#: Reverb return vs plugins.reverb.reverb at whole-sample pre-delays, max abs error (measured 1.2e-7).
REVERB_TOL = 1e-6
#: At a fractional pre-delay (torch: exact delay; numpy: rounded) the return energies agree to this (dB).
REVERB_ENERGY_TOL_DB = 0.05
#: ... and the torch return is the numpy one delayed by the fraction (band-limited), within this share of
#: its peak: the sinc tails of a fractional delay wrap around an FFT frame, and the frames differ (measured 3e-4).
FRACTIONAL_DELAY_TOL = 1e-3
#: Master bus vs render_master, max abs error (measured 2e-7).
MASTER_TOL = 1e-5
#: Differentiable BS.1770-4 loudness vs pyloudnorm, LU.
LOUDNESS_TOL_LU = 0.01
#: Normalised mapping vs the scalar schema functions (float64).
MAPPING_TOL = 1e-9

EQ_SETTINGS = [
    dict(low_shelf_gain_db=6.0, low_shelf_freq_hz=20.0, peak1_gain_db=-9.0, peak1_freq_hz=200.0, peak1_q=10.0,
         peak2_gain_db=4.0, peak2_freq_hz=1500.0, peak2_q=0.3, peak3_gain_db=12.0, peak3_freq_hz=9000.0,
         peak3_q=2.0, high_shelf_gain_db=-12.0, high_shelf_freq_hz=14000.0),
    dict(low_shelf_gain_db=-12.0, low_shelf_freq_hz=1000.0, peak1_gain_db=12.0, peak1_freq_hz=5000.0, peak1_q=0.2,
         peak2_gain_db=-12.0, peak2_freq_hz=500.0, peak2_q=7.0, peak3_gain_db=-3.0, peak3_freq_hz=2000.0,
         peak3_q=0.707, high_shelf_gain_db=12.0, high_shelf_freq_hz=2000.0),
]


def _noise(channels=2, seconds=1.0, seed=0, scale=0.2):
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    env = np.abs(np.sin(np.linspace(0, 7 * np.pi, n))) + 0.05  # level moves through the compressor's knee
    return (rng.standard_normal((channels, n)) * env * scale).astype(np.float32)


def _t(x):
    return torch.from_numpy(np.ascontiguousarray(x))


# ----------------------------------------------------------------------------- linear stages
def _session():
    s = Session(SR, [Track("mono", "m.wav"), Track("stereo", "s.wav"), Track("muted", "u.wav")])
    p = [t.params for t in s.tracks]
    p[0]["trim"]["gain_db"], p[0]["pan"]["pan"], p[0]["send"]["send_db"] = 4.5, -0.6, -3.0
    p[1]["polarity"]["invert"], p[1]["fader"]["fader_db"], p[1]["pan"]["pan"] = 1.0, -7.5, 0.35
    p[1]["send"]["send_db"] = 2.0
    p[2]["fader"]["mute"], p[2]["send"]["send_db"] = 1.0, 0.0
    return s


def _strip_tensors(session):
    return {path: torch.tensor([t.params[path.split(".")[0]][path.split(".")[1]] for t in session.tracks],
                               dtype=torch.float64) for path, _ in STRIP_PARAMS}


def test_linear_stages_equal_the_numpy_console():
    s = _session()
    audio = {"mono": _noise(1, seed=1), "stereo": _noise(2, seed=2), "muted": _noise(2, seed=3)}
    ref = render_console(s, "builtin", audio=audio)
    be = get_backend("builtin", SR)
    ref_sends = [render_track(t, audio[t.name], be, SR, measure=False)[1] for t in s.tracks]
    stems = torch.zeros(3, 2, SR)
    for i, t in enumerate(s.tracks):
        stems[i, :audio[t.name].shape[0]] = _t(audio[t.name])
    out = TorchConsole(SR)(stems, _strip_tensors(s), mono=torch.tensor([True, False, False]))
    dry = (out.mix - out.reverb_return)[0].numpy()
    assert np.max(np.abs(dry - (ref.mix - ref.reverb_return))) < LINEAR_TOL
    bus = np.sum([x for x in ref_sends if x is not None], axis=0)
    assert np.max(np.abs(out.bus[0].numpy() - bus)) < LINEAR_TOL
    # per-track sends, post-fader and post-pan (the muted track sends nothing)
    p = resolve_params(STRIP_PARAMS, _strip_tensors(s), (3,))
    _, sends = render_strips(stems, SR, p, torch.tensor([True, False, False]))
    for i, ref_send in enumerate(ref_sends):
        want = np.zeros((2, SR), np.float32) if ref_send is None else ref_send
        assert np.max(np.abs(sends[i].numpy() - want)) < LINEAR_TOL
    # the reverb bus: the mix is the dry sum plus the reference reverb of the bus
    rv = s.master.params["reverb"]
    want_mix = (ref.mix - ref.reverb_return) + reverb(bus, SR, **rv)
    assert np.max(np.abs(out.mix[0].numpy() - want_mix)) < LINEAR_TOL


def test_true_mono_stems_match_the_mono_law():
    s = Session(SR, [Track("a", "a.wav"), Track("b", "b.wav")])
    s.tracks[0].params["pan"]["pan"], s.tracks[1].params["pan"]["pan"] = -1.0, 0.5
    audio = {"a": _noise(1, seed=4), "b": _noise(1, seed=5)}
    ref = render_console(s, "builtin", audio=audio)
    out = TorchConsole(SR)(torch.stack([_t(audio["a"]), _t(audio["b"])]), _strip_tensors(s))
    assert np.max(np.abs(out.mix[0].numpy() - ref.mix)) < LINEAR_TOL


# ----------------------------------------------------------------------------- EQ
@pytest.mark.parametrize("setting", range(len(EQ_SETTINGS)))
def test_eq_magnitude_is_the_rbj_design(setting):
    p = EQ_SETTINGS[setting]
    n_fft = 1 << 16
    freqs = np.arange(n_fft // 2 + 1) * SR / n_fft
    band = (freqs >= 20.0) & (freqs <= 20000.0)
    h = dsp_eq.eq_response(SR, n_fft, **p)[0].numpy()
    assert np.max(np.abs(20 * np.log10(np.abs(h[band])) - rbj.eq_response_db(p, freqs[band], SR))) < EQ_EXACT_TOL_DB
    # the filter as realised: the FFT of its impulse response
    impulse = np.zeros((1, 1, n_fft), np.float32)
    impulse[..., 0] = 1.0
    ir = dsp_eq.eq(_t(impulse), SR, **p)[0, 0].numpy().astype(np.float64)
    measured = 20 * np.log10(np.abs(np.fft.rfft(ir)))
    assert np.max(np.abs(measured[band] - rbj.eq_response_db(p, freqs[band], SR))) < EQ_EXACT_TOL_DB


def test_eq_equals_sosfilt():
    from scipy.signal import sosfilt

    x = _noise(2, seed=6)
    for p in EQ_SETTINGS:
        sos = np.array([np.concatenate([b, a]) for b, a in rbj.eq_sections(p, SR)])
        want = sosfilt(sos, x.astype(np.float64), axis=-1)
        got = dsp_eq.eq(_t(x)[None], SR, **p)[0].numpy()
        assert np.max(np.abs(got - want)) < EQ_TIME_TOL


# ----------------------------------------------------------------------------- compressor
@pytest.mark.parametrize("cp", [
    dict(threshold_db=-30.0, ratio=4.0, attack_ms=5.0, release_ms=100.0, knee_db=6.0, makeup_db=3.0),
    dict(threshold_db=-12.0, ratio=20.0, attack_ms=0.1, release_ms=10.0, knee_db=0.0, makeup_db=0.0),
    dict(threshold_db=-40.0, ratio=1.5, attack_ms=100.0, release_ms=500.0, knee_db=8.0, makeup_db=12.0),
])
def test_compressor_equals_the_reference(cp):
    x = _noise(2, seed=7)
    got = dsp_dynamics.compress(_t(x)[None], SR, **cp)[0].numpy()
    assert np.max(np.abs(got - compress(x, SR, **cp))) < COMPRESSOR_TOL
    dyn = {k: v for k, v in cp.items() if k != "makeup_db"}
    gr = dsp_dynamics.gain_reduction_db(_t(x)[None], SR, **dyn)[0].numpy()
    assert np.max(np.abs(gr - gain_reduction_db(x, SR, **dyn))) < REDUCTION_TOL_DB


def test_batched_parameters_are_per_item():
    x = np.stack([_noise(2, seed=8), _noise(2, seed=9)])
    cps = [dict(threshold_db=-30.0, ratio=4.0, attack_ms=5.0, release_ms=100.0, knee_db=6.0, makeup_db=3.0),
           dict(threshold_db=-10.0, ratio=2.0, attack_ms=20.0, release_ms=50.0, knee_db=0.0, makeup_db=0.0)]
    batched = {k: torch.tensor([c[k] for c in cps]) for k in cps[0]}
    got = dsp_dynamics.compress(_t(x), SR, **batched).numpy()
    for i, c in enumerate(cps):
        assert np.max(np.abs(got[i] - compress(x[i], SR, **c))) < COMPRESSOR_TOL


# ----------------------------------------------------------------------------- the semantic contract
def test_contract_rows_pass_for_the_torch_console():
    from mixbridge.plugins import contract

    register_contract()
    report = contract.run_contract("torch", SR)
    groups = {r.group for r in report.rows}
    assert {"compressor", "eq", "limiter", "reverb", "pan"} <= groups
    failed = [r for r in report.rows if r.status != "pass"]
    assert not failed, failed


# ----------------------------------------------------------------------------- reverb
@pytest.mark.parametrize("predelay_ms", [0.0, 10.0, 20.0])
def test_reverb_equals_the_reference_at_whole_sample_predelays(predelay_ms):
    x = _noise(2, seed=10)
    rv = dict(decay_s=1.5, predelay_ms=predelay_ms, return_db=-3.0)
    assert float(predelay_ms * SR / 1000).is_integer()
    got = dsp_reverb.reverb(_t(x)[None], SR, **rv)[0].numpy()
    assert np.max(np.abs(got - reverb(x, SR, **rv))) < REVERB_TOL


def test_fractional_predelay_is_exact_and_keeps_the_energy():
    x = _noise(2, seed=11)
    rv = dict(decay_s=0.8, predelay_ms=10.01, return_db=0.0)   # 441.44 samples; numpy rounds to 441
    got = dsp_reverb.reverb(_t(x)[None], SR, **rv)[0].numpy().astype(np.float64)
    want = reverb(x, SR, **rv).astype(np.float64)
    assert abs(10 * np.log10(np.sum(got ** 2) / np.sum(want ** 2))) < REVERB_ENERGY_TOL_DB
    # the exact delay: shifting the numpy return by the same 0.44 samples in the frequency domain gives it
    n = x.shape[1]
    frac = 10.01e-3 * SR - 441
    n_fft = 1 << 21
    k = np.arange(n_fft // 2 + 1)
    long = reverb(np.pad(x, ((0, 0), (0, n_fft - n))), SR, **rv).astype(np.float64)
    shifted = np.fft.irfft(np.fft.rfft(long) * np.exp(-2j * np.pi * k * frac / n_fft), n=n_fft)[:, :n]
    assert np.max(np.abs(got - shifted)) < FRACTIONAL_DELAY_TOL * np.max(np.abs(want))


# ----------------------------------------------------------------------------- master bus
MASTER = {"eq": EQ_SETTINGS[0], "compressor": dict(threshold_db=-24.0, ratio=3.0, attack_ms=10.0,
                                                  release_ms=120.0, knee_db=4.0, makeup_db=2.0),
          "gain": {"gain_db": 12.0}, "limiter": {"ceiling_dbtp": -1.0, "release_ms": 50.0}}


def test_master_bus_equals_render_master_and_keeps_the_ceiling():
    x = _noise(2, seed=12)
    want = render_master(x, SR, MASTER)
    got = dsp_dynamics.master_chain(_t(x)[None], SR, MASTER["eq"], MASTER["compressor"], 12.0,
                                    MASTER["limiter"])[0].numpy()
    assert np.max(np.abs(got - want)) < MASTER_TOL
    assert true_peak_dbtp(got, SR) <= MASTER["limiter"]["ceiling_dbtp"]
    # an fs/4 sine at 45 degrees: sample peaks 3 dB under the true peak
    n = np.arange(SR // 2)
    sine = np.tile(np.sin(np.pi / 2 * n + np.pi / 4), (2, 1)).astype(np.float32)
    for ceiling in (-1.0, -6.0, 0.0):
        y = dsp_dynamics.limiter(_t(sine)[None], SR, ceiling_dbtp=ceiling, release_ms=20.0)[0].numpy()
        assert true_peak_dbtp(y, SR) <= ceiling


def test_loudness_matches_pyloudnorm_and_target_sets_the_gain():
    x = _noise(2, seconds=2.3, seed=13)
    x[:, : SR // 2] *= 0.001  # a quiet start the gates drop
    assert abs(float(dsp.integrated_lufs(_t(x)[None], SR)) - integrated_lufs(x, SR)) < LOUDNESS_TOL_LU
    quiet = MASTER_BUS.defaults()
    quiet["limiter"]["ceiling_dbtp"] = 0.0
    m = {f"{proc}.{k}": v for proc, d in quiet.items() for k, v in d.items()}
    m["loudness.target_lufs"] = -30.0   # far under the ceiling: the limiter stays out
    out = TorchConsole(SR)(_t(x)[None], {"send.send_db": -80.0}, m)
    assert abs(integrated_lufs(out.master[0].numpy(), SR) - (-30.0)) < 0.05


# ----------------------------------------------------------------------------- gradients
def test_every_parameter_gets_a_finite_nonzero_gradient():
    n = SR // 2
    rng = np.random.default_rng(14)
    # a level rising through -60..0 dBFS: the detector's held peaks cross every knee (a knee's width has
    # a gradient only while the level is inside it)
    stems = torch.from_numpy((rng.standard_normal((2, 2, n)) * np.geomspace(1e-3, 0.5, n)).astype(np.float32))
    strip_vals = {
        "trim.gain_db": 2.0, "polarity.invert": 0.0, "eq.low_shelf_gain_db": 3.0, "eq.low_shelf_freq_hz": 150.0,
        "eq.peak1_gain_db": -4.0, "eq.peak1_freq_hz": 400.0, "eq.peak1_q": 1.5, "eq.peak2_gain_db": 5.0,
        "eq.peak2_freq_hz": 2000.0, "eq.peak2_q": 2.0, "eq.peak3_gain_db": -6.0, "eq.peak3_freq_hz": 6000.0,
        "eq.peak3_q": 0.9, "eq.high_shelf_gain_db": 4.0, "eq.high_shelf_freq_hz": 9000.0,
        "compressor.threshold_db": -24.0, "compressor.ratio": 4.0, "compressor.attack_ms": 5.0,
        "compressor.release_ms": 60.0, "compressor.knee_db": 6.0, "compressor.makeup_db": 3.0,
        "send.send_db": -3.0, "fader.fader_db": -2.0, "fader.mute": 0.25, "pan.pan": 0.3,
    }
    assert set(strip_vals) == {p for p, _ in STRIP_PARAMS}
    master_vals = {**{f"eq.{k}": v for k, v in EQ_SETTINGS[1].items()},
                   "compressor.threshold_db": -20.0, "compressor.ratio": 3.0, "compressor.attack_ms": 8.0,
                   "compressor.release_ms": 80.0, "compressor.knee_db": 4.0, "compressor.makeup_db": 1.0,
                   "reverb.decay_s": 0.6, "reverb.predelay_ms": 10.3, "reverb.return_db": -3.0,
                   "limiter.ceiling_dbtp": -1.0, "limiter.release_ms": 20.0, "loudness.target_lufs": -8.0}
    assert set(master_vals) | {"gain.gain_db"} == {p for p, _ in MASTER_PARAMS}
    strip = {k: torch.tensor([v, v * 0.9 if k not in ("polarity.invert",) else 1.0], dtype=torch.float64,
                             requires_grad=True) for k, v in strip_vals.items()}
    master = {k: torch.tensor([v], dtype=torch.float64, requires_grad=True) for k, v in master_vals.items()}
    weights = torch.from_numpy(rng.standard_normal((1, 2, n)).astype(np.float32))
    out = TorchConsole(SR)(stems, strip, master)    # loudness.target_lufs sets the gain (no gain.gain_db)
    (torch.sum(out.master * weights) + torch.sum(out.master ** 2)).backward()
    gain = {"gain.gain_db": torch.tensor([12.0], dtype=torch.float64, requires_grad=True)}
    out2 = TorchConsole(SR)(stems, {k: v.detach() for k, v in strip.items()},
                            {**{k: v.detach() for k, v in master.items()}, **gain})
    torch.sum(out2.master ** 2).backward()
    grads = {**{f"strip {k}": v.grad for k, v in strip.items()}, **{f"master {k}": v.grad for k, v in master.items()},
             "master gain.gain_db": gain["gain.gain_db"].grad}
    bad = {k: g for k, g in grads.items() if g is None or not bool(torch.all(torch.isfinite(g)))
           or not bool(torch.all(g != 0))}
    assert not bad, bad


# ----------------------------------------------------------------------------- normalised mapping
@pytest.mark.parametrize("chain", [CHANNEL_STRIP, MASTER_BUS, MASTER_RENDER], ids=lambda c: c.name)
def test_normalised_mapping_equals_the_schema(chain):
    rng = np.random.default_rng(15)
    u = torch.from_numpy(rng.uniform(0, 1, (64, len(chain.flat_params()))))
    u[0], u[1] = 0.0, 1.0
    real = denormalise(chain, u)
    for i, (path, p) in enumerate(chain.flat_params()):
        want = np.array([p.from_normalised(float(v)) for v in u[:, i]])
        assert np.max(np.abs(real[path].numpy() - want)) <= MAPPING_TOL * max(1.0, abs(p.max))
    back = normalise(chain, real)
    for i, (path, p) in enumerate(chain.flat_params()):
        want = np.array([p.to_normalised(float(v)) for v in real[path]])
        assert np.max(np.abs(back[:, i].numpy() - want)) < MAPPING_TOL


def test_boolean_heads_pass_a_gradient_and_bad_vectors_raise():
    flat = CHANNEL_STRIP.flat_params()
    u = torch.full((3, len(flat)), 0.5, dtype=torch.float64, requires_grad=True)
    real = denormalise(CHANNEL_STRIP, u)
    assert float(real["fader.mute"][0].detach()) == 1.0   # u >= 0.5 rounds up, as Param.from_normalised
    real["fader.mute"].sum().backward()
    assert torch.all(u.grad[:, [p for p, _ in flat].index("fader.mute")] == 1.0)
    with pytest.raises(ParamRangeError, match="outside"):
        denormalise(CHANNEL_STRIP, torch.full((len(flat),), 1.5))
    with pytest.raises(ParamRangeError, match="normalised values"):
        denormalise(CHANNEL_STRIP, torch.zeros(3))


def test_bad_input_raises_named_errors():
    con = TorchConsole(SR)
    with pytest.raises(AudioInputError, match="stems must be"):
        con(torch.zeros(2, 3, 100))
    with pytest.raises(ParamRangeError, match=r"compressor.ratio = 0.5 is outside \[1, 20\]"):
        con(torch.zeros(1, 2, 100), {"compressor.ratio": 0.5})
    with pytest.raises(UnknownParamError, match="compressor.rattio"):
        con(torch.zeros(1, 2, 100), {"compressor": {"rattio": 2.0}})
    with pytest.raises(ParamRangeError, match="sample_rate"):
        TorchConsole(44100.5)
    # a real-valued parameter tensor in flat_params order is accepted
    values = torch.tensor([[p.default for _, p in STRIP_PARAMS]], dtype=torch.float64)
    out = con(torch.zeros(1, 2, 1000), values)
    assert out.mix.shape == (1, 2, 1000) and math.isfinite(float(out.master.abs().max()))
