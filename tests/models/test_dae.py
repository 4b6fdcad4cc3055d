"""The ``dae`` direct mixer (mixbridge.models.dae), the direct-mixer protocol (mixbridge.models.direct_mixers)
and the DAE's training data (mixbridge.models.training.direct): closed-form oracles on synthetic audio.

* the STFT pair is the identity (Hann frames at 50 % overlap sum to a constant) and reads a full-scale
  sine at a bin centre as amplitude 1;
* a network that passes the magnitude through rebuilds the mid exactly from the raw phase (the
  reconstruction path is lossless up to float32 round-off);
* the training target of a track is the trimmed stem times the composer's fader gain and the console's
  pan law (closed form, for stems whose channels are equal);
* a stem scaled by k dB gives the same mix (the trim to the common level compensates it);
* the protocol: the session has every strip at its defaults and ``direct: true``; ``render`` refuses it
  naming mix.wav; ``automix`` writes the mixer's own audio as mix.wav, bit for bit.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mixbridge.audio import load_stems, read_audio, write_audio
from mixbridge.models.mix_session import build_session, master_defaults
from mixbridge.roles import ROLES
from mixbridge.schema import CHANNEL_STRIP
from mixbridge.session import save
from tests.contracts import MixerContract

torch.set_num_threads(1)

SAMPLE_RATE = 16000
TINY = dict(n_fft=256, hop_length=128, hidden=16, n_layers=2, sample_rate=SAMPLE_RATE)
#: Float32 STFT -> ISTFT round trip of unit-scale audio: a few ulps of O(1) sums per sample.
ROUNDTRIP_TOLERANCE = 1e-5
#: A sine at a bin centre reads 1 up to the float32 sum of 2048 window samples.
SINE_TOLERANCE = 1e-4
#: The target pipeline is float32 products of the same samples: relative round-off.
TARGET_TOLERANCE = 1e-5
#: The mix of a stem scaled by 6 dB: BS.1770 measures the scaled stem 6 dB louder to ~1e-6 dB, so the trims
#: cancel to float32 round-off of the mix (relative).
INVARIANCE_TOLERANCE = 1e-4


def _tiny_net(seed: int = 0):
    from mixbridge.models.dae import DAE

    torch.manual_seed(seed)
    return DAE(**TINY).eval()


# ------------------------------------------------------------------------------------------ a tiny composer dataset
#: The synthetic dataset's labels by role: (gain dB, pan).
ROLE_LABELS = {"kick": (3.0, 0.0), "bass": (-2.0, -0.4), "keys": (-8.0, 0.6), "guitar": (-4.0, -0.7)}


def write_direct_composer(root: Path, *, songs=(("D_T1", "train"), ("D_T2", "train"), ("D_V1", "val")),
                          excerpts_per_song: int = 2, tracks: int = 3, seconds: float = 1.5,
                          roles=("kick", "bass", "keys")) -> Path:
    """A composer dataset of synthetic stems (tests.models.test_dmc's) plus each excerpt's ``target/session.json``
    (the labels' gain on the fader, their pan) and ``target/mix.wav`` (its console render), stems of the roles
    ``roles`` with labels by role (:data:`ROLE_LABELS`: learnable) and channels that are equal (so pans are
    closed form)."""
    from mixbridge.plugins.backend import get_backend
    from mixbridge.plugins.console import render_console
    from tests.models.test_dmc import write_tiny_composer

    write_tiny_composer(root, songs=songs, excerpts_per_song=excerpts_per_song, tracks=tracks, seconds=seconds)
    manifest = json.loads((root / "manifest.json").read_text())
    for entry in manifest["excerpts"]:
        folder = root / entry["folder"]
        m = json.loads((folder / "stems" / "manifest.json").read_text())
        for i, s in enumerate(m["stems"]):
            s["role"] = roles[i % len(roles)]
            # labels that follow the role, so that a network reading the group can learn them
            s["target"]["gain_db"], s["target"]["pan"] = ROLE_LABELS.get(s["role"], (0.0, 0.0))
            audio, _ = read_audio(folder / "stems" / s["file"])
            write_audio(folder / "stems" / s["file"], np.repeat(audio.mean(axis=0, keepdims=True), 2, axis=0),
                        SAMPLE_RATE)
        (folder / "stems" / "manifest.json").write_text(json.dumps(m))
        stems = load_stems(folder / "stems")
        params = [{"fader": {"fader_db": s["target"]["gain_db"]}, "pan": {"pan": s["target"]["pan"]}}
                  for s in m["stems"]]
        (folder / "target").mkdir()
        session = build_session(stems, "composer", params, master_defaults(-14.0), 0, folder / "target")
        session.base_dir = folder / "target"
        save(session, folder / "target" / "session.json")
        mix = render_console(session, get_backend("builtin", SAMPLE_RATE)).mix
        write_audio(folder / "target" / "mix.wav", mix, SAMPLE_RATE)
    return root


@pytest.fixture(scope="module")
def direct_ds(tmp_path_factory) -> Path:
    return write_direct_composer(tmp_path_factory.mktemp("direct_composer"))


@pytest.fixture(scope="module")
def stems(multitrack):
    return load_stems(multitrack)


# ------------------------------------------------------------------------------------------ the STFT and the network
def test_stft_pair_is_the_identity_and_reads_amplitude():
    from mixbridge.models.dae import istft_frames, stft_frames

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.uniform(-1, 1, (2, 20000)).astype(np.float32))
    assert torch.max(torch.abs(istft_frames(stft_frames(x), x.shape[-1]) - x)) <= ROUNDTRIP_TOLERANCE
    n, k = 2048, 100
    sine = torch.from_numpy(np.sin(2 * np.pi * k * np.arange(8 * n) / n).astype(np.float32))
    mag = stft_frames(sine).abs()[:, 4:-4]   # frames away from the padded ends
    assert torch.max(torch.abs(mag[k] - 1.0)) <= SINE_TOLERANCE


def test_a_pass_through_network_rebuilds_the_mid_from_the_raw_phase(monkeypatch):
    """With the magnitudes passed through to both channels, the output is the stem's mid, both sides."""
    net = _tiny_net()
    monkeypatch.setattr(type(net), "forward", lambda self, mag, group: torch.stack([mag, mag], dim=1))
    rng = np.random.default_rng(1)
    audio = torch.from_numpy(rng.uniform(-0.5, 0.5, (2, 5000)).astype(np.float32))
    out = net.process_track(audio, 3)
    mid = audio.mean(dim=0)
    assert out.shape == (2, 5000)
    assert torch.max(torch.abs(out - mid)) <= ROUNDTRIP_TOLERANCE


def test_shapes_groups_and_config_round_trip(tmp_path):
    from mixbridge.models.checkpoint import load_checkpoint, save_checkpoint
    from mixbridge.models.dae import DAE
    from mixbridge.models.tcn import ModelConfigError

    net = _tiny_net()
    bins = TINY["n_fft"] // 2 + 1
    mag = torch.rand(7, bins)
    a = net(mag, torch.zeros(7, dtype=torch.long))
    b = net(mag, torch.full((7,), 5, dtype=torch.long))
    assert a.shape == (7, 2, bins)
    # the group enters the first layer as a one-hot: switching it from 0 to 5 changes that layer's
    # pre-activation by exactly column 5 minus column 0 of the one-hot part of its weight
    first = net.net[0]
    feature = (torch.log10(mag + net.log_floor) + 3.0) / 2.0
    onehot = torch.nn.functional.one_hot(torch.tensor([0, 5]), net.n_groups).float()
    z = first(torch.cat([feature[:1].expand(2, -1), onehot], dim=-1))
    w = first.weight[:, -net.n_groups:]
    assert torch.max(torch.abs((z[1] - z[0]) - (w[:, 5] - w[:, 0]))) <= ROUNDTRIP_TOLERANCE
    assert not torch.equal(a, b)
    save_checkpoint(net, tmp_path / "dae")
    again, record = load_checkpoint(tmp_path / "dae.json")
    assert record["architecture"] == "dae" and again.config() == net.config()
    assert torch.equal(again.eval()(mag, torch.zeros(7, dtype=torch.long)), a)
    # shipped as float16 (the dae's size): half the file, every weight within half-float rounding (2^-11
    # relative, 2^-24 absolute in the subnormal range), loaded back into float32 parameters
    full = tmp_path / "dae.safetensors"
    save_checkpoint(net, tmp_path / "dae16", weights_dtype="float16")
    half, record16 = load_checkpoint(tmp_path / "dae16.json")
    assert record16["weights_dtype"] == "float16" and "weights_dtype" not in record
    assert (tmp_path / "dae16.safetensors").stat().st_size < 0.6 * full.stat().st_size
    for (k, w16), w in zip(half.state_dict().items(), net.state_dict().values()):
        assert w16.dtype == w.dtype, k
        if w.is_floating_point():
            assert torch.all(torch.abs(w16 - w) <= torch.abs(w) * 2.0 ** -11 + 2.0 ** -24), k
    with pytest.raises(ModelConfigError, match="dropout"):
        DAE(dropout=1.0)
    with pytest.raises(ModelConfigError, match=r"magnitude \[frames, 129\]"):
        net(torch.rand(7, 100), torch.zeros(7, dtype=torch.long))


# ------------------------------------------------------------------------------------------ the training data
def test_the_target_is_the_stem_through_the_composer_fader_and_pan_law(direct_ds):
    from mixbridge.models.dae import stft_frames
    from mixbridge.models.training.direct import TrackFrames, stem_trim
    from mixbridge.plugins.datagen.composer import read_composer_dataset

    ds = read_composer_dataset(direct_ds)
    data = TrackFrames(ds.split("train"), frames=8, n_fft=256, hop_length=128, random_crop=True, pitch_shift=False,
                       seed=0)
    for i in (0, 4):
        ex, k = data.pairs[i]
        item = data[i]
        g = 10.0 ** (ex.target_gain_db[k] / 20.0)
        theta = (ex.target_pan[k] + 1.0) * math.pi / 4.0
        left, right = math.sqrt(2.0) * math.cos(theta) * g, math.sqrt(2.0) * math.sin(theta) * g
        scale = float(item["mag"].abs().max())
        assert torch.max(torch.abs(item["target"][:, 0] - left * item["mag"])) <= TARGET_TOLERANCE * scale * 4
        assert torch.max(torch.abs(item["target"][:, 1] - right * item["mag"])) <= TARGET_TOLERANCE * scale * 4
        assert item["group"] == ROLES.index(ex.roles[k])
        # the input is the stem at the common level: its magnitude frames, trimmed
        audio, _ = read_audio(ex.stems_dir / ex.track_files[k])
        whole = stft_frames(torch.from_numpy(audio.mean(axis=0) * np.float32(stem_trim(ex, k))), 256, 128).abs()
        assert whole.shape[0] == item["mag"].shape[1]


def test_pitch_shifted_examples_keep_the_fader_and_pan_relation(direct_ds):
    """The target is rendered from the shifted input, so the closed-form relation holds for shifted examples."""
    from mixbridge.models.training.direct import TrackFrames
    from mixbridge.plugins.datagen.composer import read_composer_dataset

    ds = read_composer_dataset(direct_ds)
    data = TrackFrames(ds.split("train"), frames=8, n_fft=256, hop_length=128, random_crop=True, pitch_shift=True,
                       seed=3)
    ex, k = data.pairs[1]
    item = data[1]
    g = 10.0 ** (ex.target_gain_db[k] / 20.0)
    theta = (ex.target_pan[k] + 1.0) * math.pi / 4.0
    scale = float(item["mag"].abs().max())
    assert torch.max(torch.abs(item["target"][:, 0] - math.sqrt(2) * math.cos(theta) * g * item["mag"])) \
        <= TARGET_TOLERANCE * scale * 4


def test_training_lowers_the_loss_and_ships(direct_ds, tmp_path):
    from mixbridge.models.training.direct import train_dae
    from mixbridge.models.training.mixing import ship_mixer

    s = train_dae(direct_ds, tmp_path / "run", model_args={k: v for k, v in TINY.items() if k != "sample_rate"},
                  batch_size=4, frames=4, learning_rate=1e-2, max_epochs=6, epoch_examples=24, progress=False,
                  pitch_shift=False)
    assert s["epoch"] == 6
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()[1:]
    val = [float(r.split(",")[6]) for r in rows]
    assert min(val[1:]) < val[0]   # it learns: a better validation MAE than after the first epoch
    path = ship_mixer(tmp_path / "run", tmp_path / "ship" / "dae")
    from mixbridge.models.mixers import get_mixer

    mixer = get_mixer("dae", checkpoint=str(path))
    from mixbridge.plugins.datagen.composer import read_composer_dataset

    ex = read_composer_dataset(direct_ds).split("val")[0]
    dm = mixer.mix(load_stems(ex.stems_dir, roles=dict(zip(ex.track_names, ex.roles))))
    assert dm.audio.shape == (2, read_audio(ex.target_mix_path)[0].shape[1]) and np.all(np.isfinite(dm.audio))


# ------------------------------------------------------------------------------------------ the mixer and the protocol
def write_steady_stems(folder: Path, tracks: int = 3, seconds: float = 2.0) -> Path:
    """Stems of steady tones plus noise (no quiet block near BS.1770's -70 LUFS gate: scaling one by k dB
    changes its measured loudness by exactly k dB)."""
    rng = np.random.default_rng(5)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    folder.mkdir(parents=True)
    for i in range(tracks):
        x = 0.2 * np.sin(2 * np.pi * 220.0 * (i + 1) * t) + 0.02 * rng.standard_normal(t.size)
        write_audio(folder / f"track{i}.wav", np.stack([x, x]).astype(np.float32), SAMPLE_RATE)
    return folder


def test_a_louder_stem_gives_the_same_mix(tmp_path):
    from mixbridge.models.mixers import get_mixer

    folder = write_steady_stems(tmp_path / "stems")
    mixer = get_mixer("dae", model=_tiny_net())
    before = mixer.mix(load_stems(folder)).audio
    audio, rate = read_audio(folder / "track0.wav")
    write_audio(folder / "track0.wav", audio * np.float32(10 ** (6 / 20)), rate)
    after = mixer.mix(load_stems(folder)).audio
    assert np.max(np.abs(after - before)) <= INVARIANCE_TOLERANCE * np.max(np.abs(before))


def test_the_session_records_only_what_the_mixer_is(stems):
    from mixbridge.models.mixers import get_mixer

    dm = get_mixer("dae", model=_tiny_net()).mix(stems, seed=4, target_lufs=-16.0)
    s = dm.session
    assert dm.audio.shape == (2, stems.stems[0].n_samples) and dm.audio.dtype == np.float32
    assert s.provenance["mixer"] == "dae" and s.provenance["direct"] is True and "mix.wav" in s.provenance["output"]
    assert all(t.params == CHANNEL_STRIP.defaults() for t in s.tracks)
    assert [t.name for t in s.tracks] == [st.name for st in stems.stems]
    assert s.master.params["loudness"]["target_lufs"] == -16.0


def test_render_refuses_a_direct_session_and_automix_writes_the_mixers_audio(multitrack, tmp_path, capsys):
    from mixbridge.app.automix import automix, render
    from mixbridge.app.cli import main
    from mixbridge.loudness import integrated_lufs
    from mixbridge.models.checkpoint import save_checkpoint
    from mixbridge.models.direct_mixers import DirectSessionError
    from mixbridge.models.mixers import get_mixer
    from mixbridge.roles import assign_roles, roles_from_manifest

    ckpt = save_checkpoint(_tiny_net(), tmp_path / "tiny_dae")
    res = automix(multitrack, tmp_path / "out", mixer="dae", checkpoint=ckpt, progress=False)
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["master.wav", "mix.wav", "session.json"]
    stems = load_stems(multitrack, roles=roles_from_manifest(multitrack))
    assign_roles(stems.stems)   # as automix does: the roles pick the groups
    expected = get_mixer("dae", checkpoint=str(ckpt)).mix(stems).audio
    mix, rate = read_audio(out / "mix.wav")
    assert np.array_equal(mix, expected)   # the mixer's own audio, bit for bit (float32 WAV)
    master, _ = read_audio(out / "master.wav")
    assert abs(integrated_lufs(master, rate) - (-14.0)) <= 0.5   # the master bus's loudness tolerance
    assert res.session.provenance["direct"] is True and res.session.master.solved_gain_db is not None
    assert any("report.html not written" in n for n in res.notices)
    with pytest.raises(DirectSessionError, match="mix.wav is the output"):
        render(out / "session.json", tmp_path / "again.wav", progress=False)
    assert main(["render", str(out / "session.json"), "-o", str(tmp_path / "again.wav"), "-q"]) != 0
    assert "direct mixer 'dae'" in capsys.readouterr().err and not (tmp_path / "again.wav").exists()
    with pytest.raises(DirectSessionError, match="--ride"):
        automix(multitrack, tmp_path / "out2", mixer="dae", checkpoint=ckpt, progress=False, ride=True)


class TestDAEMixer(MixerContract):
    """The registry's contract on the shipped ``dae`` weights (models/mixers/dae.*)."""

    mixer_name = "dae"


def test_evaluate_scores_a_direct_mixer_on_its_own_audio(direct_ds):
    """The batch form of ``evaluate`` scores the mixer's audio itself: the row equals evaluate_mix of that audio."""
    from mixbridge.app.evaluate import evaluate_dataset
    from mixbridge.models.evaluation import evaluate_mix
    from mixbridge.models.mixers import get_mixer
    from mixbridge.plugins.datagen.composer import read_composer_dataset
    from mixbridge.roles import assign_roles, roles_from_manifest

    summary = evaluate_dataset(direct_ds, "dae", split="val", limit=1, progress=False, log=lambda _: None)
    assert not summary["skipped"] and "| dae, direct |" in summary["table"]
    ex = read_composer_dataset(direct_ds).split("val")[0]
    stems = load_stems(ex.stems_dir, roles=roles_from_manifest(ex.stems_dir))
    assign_roles(stems.stems)
    res = evaluate_mix(get_mixer("dae").mix(stems).audio, ex.load_target_mix(), stems.sample_rate,
                       [s.audio for s in stems.stems], track_names=[s.name for s in stems.stems])
    assert summary["runs"]["dae"]["sum_difference_mrstft"] == res["scores"]["sum_difference_mrstft"]


def test_the_committed_config_builds():
    from mixbridge.models.dae import DAE
    from mixbridge.models.training.data import recipe_defaults
    from mixbridge.models.training.direct import load_dae_config, train_dae

    cfg = load_dae_config(Path(__file__).resolve().parents[2] / "models" / "configs" / "dae.yaml")
    assert set(cfg) <= set(recipe_defaults(train_dae))
    net = DAE(**cfg["model_args"])
    assert net.config()["hidden"] == 1024 and net.config()["n_layers"] == 3 and net.config()["dropout"] == 0.2


def test_automix_push_with_a_direct_mixer_is_refused_before_mixing(multitrack, tmp_path, capsys):
    from mixbridge.app.cli import main
    from mixbridge.bridge.profiles import profile_names

    daw = profile_names()[0]
    assert main(["automix", str(multitrack), "-o", str(tmp_path / "out"), "--mixer", "dae", "--push", daw, "-q"]) != 0
    assert "nothing to push to a DAW; its mix.wav is the output" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
