"""DeepMixing: shapes, Dirichlet gains, the seed's reward in closed form, chunk targets, the time-resolved
level error, and the mixer's fader automation through the session schema and the builtin renderer.

Oracles: the reward of two tracks with flat, equal spectra has only a c0 term (the DCT of a constant
vector), ``c0 = sqrt(M) ln(sum g^2)``, and the Dirichlet KL has its closed form (digamma / log-gamma,
scipy); a step of a CC7 curve at a chunk's middle from 0 dB to silence is -3.01 dB in power mean; a track
6 dB down in half the windows gives a time-resolved level RMSE of 3 dB over those windows' pairs.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import digamma, gammaln

from mixbridge.models import deepmixing as dm
from mixbridge.models.training.deepmixing import METHODS, chunk_level_errors_db, chunk_power_mean_db, target_fractions
from tests.contracts import MixerContract

#: float32 round-off of the network's sums and of the reward's log/exp chain.
FLOAT32_TOL = 1e-5
#: Float64 least squares on exact linear mixes recover levels to this (dB).
LS_TOL_DB = 1e-6
RATE = 8000


def _net(**kw):
    torch.manual_seed(0)
    return dm.DeepMixing(sample_rate=RATE, **kw)


def _features(tracks=3, seconds=2.0, seed=0):
    rng = np.random.default_rng(seed)
    stems = (0.1 * rng.standard_normal((tracks, 2, int(seconds * RATE)))).astype(np.float32)
    return stems, dm.deepmixing_features(stems, RATE)


def test_shapes_and_dirichlet_gains_sum_to_one():
    stems, f = _features()
    assert f["power"].shape == (3, 5, dm.N_MELS) and f["mix_mfcc"].shape == (5, dm.N_MFCC)
    net = _net()
    alpha = net(torch.from_numpy(f["track_db"]), torch.from_numpy(f["mix_mfcc"]))
    assert alpha.shape == (5, 3) and bool((alpha > 0).all())
    mean = net.mean_gains(alpha)
    np.testing.assert_allclose(mean.sum(-1).detach().numpy(), 1.0, atol=FLOAT32_TOL)
    draws = torch.distributions.Dirichlet(alpha).sample((7,))
    assert draws.shape == (7, 5, 3)
    np.testing.assert_allclose(draws.sum(-1).numpy(), 1.0, atol=FLOAT32_TOL)
    batched = net(torch.from_numpy(f["track_db"])[None].repeat(2, 1, 1, 1),
                  torch.from_numpy(f["mix_mfcc"])[None].repeat(2, 1, 1))
    assert batched.shape == (2, 5, 3)
    # the untrained precision: kappa = init_precision, so alpha sums to kappa * tracks per chunk
    np.testing.assert_allclose(alpha.sum(-1).detach().numpy(), net.init_precision * 3, rtol=FLOAT32_TOL)


def test_permuting_the_tracks_permutes_the_gains():
    _, f = _features(tracks=4)
    net = _net()
    perm = [2, 0, 3, 1]
    with torch.no_grad():
        a = net(torch.from_numpy(f["track_db"]), torch.from_numpy(f["mix_mfcc"]))
        b = net(torch.from_numpy(f["track_db"][perm]), torch.from_numpy(f["mix_mfcc"]))
    np.testing.assert_allclose(b.numpy(), a[:, perm].numpy(), rtol=1e-4, atol=1e-5)


#: Float64 round-off of a 32-point DCT of values of order 1.
DCT_TOL = 1e-12


@pytest.mark.parametrize("k", [0, 1, 5, 12])
def test_mfcc_of_one_cosine_of_the_log_power_is_one_coefficient(k):
    """ln(power) = cos(pi k (m + 1/2) / M) is DCT-II basis vector k: MFCC k is its orthonormal norm, the rest 0."""
    m = dm.N_MELS
    log_power = np.cos(np.pi * k * (np.arange(m) + 0.5) / m)
    want = np.zeros(dm.N_MFCC)
    want[k] = np.sqrt(m) if k == 0 else np.sqrt(m / 2.0)
    got = dm.mfcc(np.exp(log_power) - dm.POWER_FLOOR)
    np.testing.assert_allclose(got, want, atol=DCT_TOL)
    np.testing.assert_allclose(dm.mfcc(torch.from_numpy(np.exp(log_power) - dm.POWER_FLOOR)).numpy(), want,
                               atol=DCT_TOL)


def _kl_dirichlet(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return (gammaln(a.sum()) - gammaln(a).sum() - gammaln(b.sum()) + gammaln(b).sum()
            + ((a - b) * (digamma(a) - digamma(a.sum()))).sum())


def test_reward_has_its_closed_form_on_two_flat_tracks():
    m = dm.N_MELS
    power = torch.ones(2, 2, m, dtype=torch.float64)        # [tracks, chunks, mels]: flat, equal spectra
    gains = torch.tensor([[0.7, 0.3], [0.5, 0.5]], dtype=torch.float64)
    target_g = torch.tensor([[0.5, 0.5], [0.5, 0.5]], dtype=torch.float64)
    target_mfcc = dm.mfcc(dm.mix_power(target_g, power))
    alpha = torch.tensor([[3.0, 2.0], [4.0, 1.5]], dtype=torch.float64)
    r = dm.reward(gains, alpha, power, target_mfcc, rho=dm.RHO)
    c0 = math.sqrt(m) * (math.log(0.7 ** 2 + 0.3 ** 2) - math.log(0.5))   # only c0 differs (the floor is 1e-10)
    expected0 = math.exp(-c0 ** 2 / dm.N_MFCC - dm.RHO * _kl_dirichlet([3.0, 2.0], [4.0, 1.5]))
    assert float(r[0]) == pytest.approx(expected0, rel=1e-8)
    assert float(r[1]) == pytest.approx(1.0, abs=1e-8)      # the target's gains, no successor: reward 1


#: Central differences of a smooth float64 function with step 1e-6: truncation and round-off below this.
FD_TOL = 1e-7


def test_pg_loss_gradient_is_the_smoothness_terms_when_every_draw_scores_alike():
    """Silent tracks give every draw the same mix MFCCs, so REINFORCE's advantage is 0 and the gradient of the
    pg loss must be the pathwise one of ``-mean_t exp(-rho KL(alpha_t || alpha_t+1))`` (the last chunk has no
    KL): checked against central differences of that closed form with an independent KL (scipy's gammaln,
    digamma). The pre-fix loss (reward computed on a detached alpha) had a zero gradient here."""
    from mixbridge.models.training.deepmixing import pg_loss

    k, t, rho = 3, 3, 0.5
    alpha0 = np.array([[2.0, 3.0, 1.5], [1.0, 4.0, 2.5], [3.0, 1.0, 1.2]])
    power = torch.zeros(t, k, dm.N_MELS, dtype=torch.float64)
    target = torch.from_numpy(dm.mfcc(np.zeros((k, dm.N_MELS))))

    def closed(a):
        kl = [_kl_dirichlet(a[i], a[i + 1]) for i in range(k - 1)] + [0.0]
        return -np.mean(np.exp(-rho * np.asarray(kl)))

    alpha = torch.tensor(alpha0, requires_grad=True)
    draws = torch.distributions.Dirichlet(alpha.detach()).sample((8,))
    loss = pg_loss(alpha, draws, power, target, rho)
    assert float(loss.detach()) == pytest.approx(closed(alpha0), abs=1e-12)
    loss.backward()
    want = np.zeros_like(alpha0)
    for idx in np.ndindex(alpha0.shape):
        step = np.zeros_like(alpha0)
        step[idx] = 1e-6
        want[idx] = (closed(alpha0 + step) - closed(alpha0 - step)) / 2e-6
    assert np.abs(want).max() > 1e-3          # the smoothness term does pull here
    np.testing.assert_allclose(alpha.grad.numpy(), want, atol=FD_TOL)


def test_split_gain_fills_the_trim_first_for_an_automated_fader():
    from mixbridge.models.mix_session import split_gain

    notes: list[str] = []
    assert split_gain(-10.0, notes, "a", first="trim") == {"fader": {"fader_db": 0.0}, "trim": {"gain_db": -10.0}}
    assert split_gain(30.0, notes, "b", first="trim") == {"fader": {"fader_db": 6.0}, "trim": {"gain_db": 24.0}}
    assert notes == []
    # beyond both ranges (-24 + -48 = -72 dB): limited, and said so
    assert split_gain(-80.0, notes, "c", first="trim") == {"fader": {"fader_db": -48.0}, "trim": {"gain_db": -24.0}}
    assert notes == ["c: wanted -80.0 dB of gain, limited to -72.0 dB by the trim and fader ranges"]
    # the default order is unchanged: the fader first
    assert split_gain(20.0, [], "d") == {"fader": {"fader_db": 12.0}, "trim": {"gain_db": 8.0}}
    with pytest.raises(ValueError, match="first='master'"):
        split_gain(0.0, [], "e", first="master")


def test_read_crop_zero_pads_both_ends_and_duplicates_mono(tmp_path):
    import soundfile as sf

    from mixbridge.models.training.mixing import read_crop

    ramp = np.arange(1, 11, dtype=np.float32) / 16          # exact in float32 and in a FLOAT wav
    sf.write(tmp_path / "mono.wav", ramp, RATE, subtype="FLOAT")
    got = read_crop(tmp_path / "mono.wav", -3, 5)
    np.testing.assert_array_equal(got, np.stack([[0, 0, 0, 1 / 16, 2 / 16]] * 2).astype(np.float32))
    np.testing.assert_array_equal(read_crop(tmp_path / "mono.wav", 8, 4)[1], np.float32([9, 10, 0, 0]) / 16)
    np.testing.assert_array_equal(read_crop(tmp_path / "mono.wav", -6, 4), np.zeros((2, 4), np.float32))
    three = np.stack([ramp, -ramp, 2 * ramp], axis=1)       # [frames, 3 channels]: the first two are kept
    sf.write(tmp_path / "three.wav", three, RATE, subtype="FLOAT")
    np.testing.assert_array_equal(read_crop(tmp_path / "three.wav", 0, 10), three.T[:2])


def test_load_mixer_network_checks_the_architecture_and_names_the_fix():
    from mixbridge.models.checkpoint import load_mixer_network
    from mixbridge.models.deepmixing_mixer import DeepMixingMixerError

    net = _net()
    assert load_mixer_network(None, "deepmixing", "deepmixing", "HINT", error=DeepMixingMixerError, model=net) is net
    with pytest.raises(DeepMixingMixerError, match="runs a 'dmc' network, got 'deepmixing'"):
        load_mixer_network(None, "dmc", "dmc", "HINT", error=DeepMixingMixerError, model=net)
    with pytest.raises(DeepMixingMixerError, match=r"no shipped no_such_mixer weights; train them \(HINT\)"):
        load_mixer_network(None, "no_such_mixer", "deepmixing", "HINT", error=DeepMixingMixerError)


def test_gains_to_db_is_relative_to_the_mean():
    g = np.array([[0.5, 0.25, 0.25]])
    db = dm.gains_to_db(g)
    assert db.sum() == pytest.approx(0.0, abs=1e-12)
    assert db[0, 0] - db[0, 1] == pytest.approx(20 * math.log10(2), abs=1e-12)


def test_chunk_power_mean_of_a_step_and_the_target_fractions():
    curve = [[0.0, 0.0], [0.6, -math.inf]]        # 0 dB, then silence from the middle of chunk 1
    out = chunk_power_mean_db(curve, 1.2, 0.4, 3)
    assert out[0] == pytest.approx(0.0, abs=1e-12)
    assert out[1] == pytest.approx(10 * math.log10(0.5), abs=1e-12)
    assert out[2] == -math.inf
    p = target_fractions(np.array([[0.0, 0.0], [-20 * math.log10(3), 0.0]]))   # [tracks, chunks]
    np.testing.assert_allclose(p, [[0.75, 0.25], [0.5, 0.5]], atol=1e-12)
    err = chunk_level_errors_db(torch.tensor(p), torch.tensor(p))
    assert float(err.abs().max()) == pytest.approx(0.0, abs=1e-9)


def test_time_level_error_of_a_track_down_6_db_in_half_the_windows():
    from mixbridge.models.evaluation import evaluate_mix, time_level_errors

    rng = np.random.default_rng(3)
    n = int(1.6 * RATE)
    stems = 0.1 * rng.standard_normal((2, 2, n))
    ref = stems.sum(axis=0)
    g = np.ones(n)
    g[n // 2:] = 10 ** (-6 / 20)
    mix = stems[0] * g + stems[1]
    res = time_level_errors(mix, ref, stems, RATE)
    assert res["windows"] == 4 and res["pairs"] == 8
    # windows 3, 4: differences (-6, 0) -> (-3, +3) after the mean; windows 1, 2: 0
    assert res["time_level_rmse_db"] == pytest.approx(math.sqrt(9 * 4 / 8), abs=LS_TOL_DB)
    assert time_level_errors(ref, ref, stems, RATE)["time_level_rmse_db"] == pytest.approx(0.0, abs=LS_TOL_DB)
    full = evaluate_mix(mix, ref, RATE, stems)
    assert full["scores"]["time_level_rmse_db"] == pytest.approx(res["time_level_rmse_db"], abs=1e-6)
    # mono: the same error with one channel and no pan law
    mono = time_level_errors(mix.mean(axis=0, keepdims=True), ref.mean(axis=0, keepdims=True), stems, RATE)
    assert mono["time_level_rmse_db"] == pytest.approx(res["time_level_rmse_db"], abs=LS_TOL_DB)
    # a track silent in a window in both mixes is left out there
    quiet = stems.copy()
    quiet[1, :, : n // 4] = 0.0
    r2 = time_level_errors(quiet.sum(axis=0), quiet.sum(axis=0), quiet, RATE)
    assert r2["pairs"] == 7


def test_training_methods_match_the_cli_choices():
    from mixbridge.models.deepmixing_cli import METHOD_CHOICES

    assert tuple(METHODS) == METHOD_CHOICES


class _StubNet:
    """A 'deepmixing' network whose mean gains put track 0 at +6 dB over track 1 in the first half of the
    chunks and -6 dB in the second half (amplitudes 2:1 then 1:2)."""

    architecture = "deepmixing"
    chunk_s = 0.4
    sample_rate = RATE

    def eval(self):
        return self

    def features(self, stems, rate):
        return dm.deepmixing_features(stems, rate, chunk_s=self.chunk_s)

    def __call__(self, track_db, mix_mfcc):
        k = track_db.shape[1]
        a = torch.tensor([[2.0, 1.0]] * (k // 2) + [[1.0, 2.0]] * (k - k // 2), dtype=torch.float32)
        return a * 10

    @staticmethod
    def mean_gains(alpha):
        return alpha / alpha.sum(-1, keepdim=True)


def _stemset(tmp_path, seconds=3.2):
    from mixbridge.audio import load_stems, write_audio

    rng = np.random.default_rng(5)
    for i in range(2):
        write_audio(tmp_path / f"t{i}.wav", (0.05 * rng.standard_normal((2, int(seconds * RATE)))).astype(np.float32),
                    RATE)
    return load_stems(tmp_path)


def test_mixer_emits_fader_automation_the_builtin_renderer_applies(tmp_path):
    from mixbridge.models.deepmixing_mixer import DeepMixingMixer
    from mixbridge.models.evaluation import least_squares_gains
    from mixbridge.plugins.console import render_console
    from mixbridge.session import load as load_session
    from mixbridge.session import save as save_session

    stems = _stemset(tmp_path)
    session = DeepMixingMixer(model=_StubNet())(stems, source_base=tmp_path)
    assert session.provenance["deepmixing"]["chunk_s"] == 0.4
    for t in session.tracks:
        a = t.automation["fader.fader_db"]
        assert len(a.times_s) == 8 and a.times_s[0] == pytest.approx(0.2) and a.times_s[-1] == pytest.approx(3.0)
    save_session(session, tmp_path / "session.json")
    again = load_session(tmp_path / "session.json")    # the session schema validates the curves
    assert again.tracks[0].automation["fader.fader_db"].values == session.tracks[0].automation["fader.fader_db"].values
    mix = render_console(again, "builtin", audio={s.name: s.audio for s in stems.stems}).mix
    audio = np.stack([s.audio for s in stems.stems]).astype(np.float64)
    # windows inside the flat parts (the curve is linear between chunk centres 1.4 and 1.8 s)
    for lo, hi, want_db in ((0.0, 1.2, 6.0), (2.0, 3.2, -6.0)):
        seg = slice(int(lo * RATE), int(hi * RATE))
        a, _ = least_squares_gains(np.asarray(mix, dtype=np.float64)[:, seg], audio[:, :, seg])
        got = 20 * math.log10(abs(a[0, 0]) / abs(a[0, 1]))
        # the builtin applies automation block by block (block-rate steps), hence a block's worth of slack
        assert got == pytest.approx(want_db, abs=0.05), (lo, hi, got)


def test_mixer_with_an_untrained_network_gives_a_valid_session(tmp_path):
    from mixbridge.models.deepmixing_mixer import DeepMixingMixer
    from mixbridge.schema import CHANNEL_STRIP

    stems = _stemset(tmp_path, seconds=1.0)
    session = DeepMixingMixer(model=_net())(stems, source_base=tmp_path)
    fp = CHANNEL_STRIP.param("fader.fader_db")
    for t in session.tracks:
        v = t.automation["fader.fader_db"].values
        assert len(v) == 3 and all(fp.min <= x <= fp.max for x in v)
    session.validate()


def test_render_and_midi_export_commands_carry_the_curves(tmp_path):
    """``mixbridge render`` renders a deepmixing session's automation (its pre-master mix swaps the balance at
    half time) and ``mixbridge midi-export`` writes more than one CC7 value per track."""
    import mido

    from mixbridge.app.cli import main
    from mixbridge.audio import read_audio
    from mixbridge.models.deepmixing_mixer import DeepMixingMixer
    from mixbridge.models.evaluation import least_squares_gains
    from mixbridge.session import save as save_session

    stems = _stemset(tmp_path)
    path = save_session(DeepMixingMixer(model=_StubNet())(stems, source_base=tmp_path), tmp_path / "session.json")
    assert main(["render", str(path), "-o", str(tmp_path / "out.wav"), "--mix-output", str(tmp_path / "mix.wav"),
                 "-q"]) == 0
    mix, _ = read_audio(tmp_path / "mix.wav")
    audio = np.stack([s.audio for s in stems.stems]).astype(np.float64)
    late = slice(int(2.0 * RATE), int(3.2 * RATE))
    a, _ = least_squares_gains(np.asarray(mix, dtype=np.float64)[:, late], audio[:, :, late])
    assert 20 * math.log10(abs(a[0, 0]) / abs(a[0, 1])) == pytest.approx(-6.0, abs=0.05)
    assert main(["midi-export", str(path), "-o", str(tmp_path / "mix.mid"), "-q"]) == 0
    cc7 = [m for m in mido.MidiFile(tmp_path / "mix.mid") if m.type == "control_change" and m.control == 7]
    assert len({m.value for m in cc7 if m.channel == 0}) > 1


def test_the_train_command_parses_its_method():
    import argparse

    from mixbridge.models.deepmixing_cli import add_deepmixing_command

    parser = argparse.ArgumentParser()
    add_deepmixing_command(parser.add_subparsers(dest="what"))
    args = parser.parse_args(["deepmixing", "--method", "direct", "--data", "DS", "-o", "RUN"])
    assert (args.method, args.data, args.output, args.command) == ("direct", "DS", "RUN", "train deepmixing")
    with pytest.raises(SystemExit):
        parser.parse_args(["deepmixing", "--method", "sgd", "--data", "DS", "-o", "RUN"])


def test_the_config_file_builds_the_recipe():
    from pathlib import Path

    from mixbridge.models.training.deepmixing import default_config, load_deepmixing_config

    cfg = load_deepmixing_config(Path(__file__).resolve().parents[2] / "models" / "configs" / "deepmixing.yaml")
    assert set(cfg) <= set(default_config()) and cfg["method"] in METHODS
    dm.DeepMixing(**cfg["model_args"])


@pytest.fixture(scope="module")
def stems(multitrack):
    from mixbridge.audio import load_stems

    return load_stems(multitrack)


class TestDeepMixingMixer(MixerContract):
    """The registry's contract on the shipped ``deepmixing`` weights (models/mixers/deepmixing.*)."""

    mixer_name = "deepmixing"
