"""The DMC (mixbridge.models.dmc), its mixer (dmc_mixer), its training task (training.mixing) and CLI."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mixbridge.app.cli import main
from mixbridge.audio import Stem, StemSet, load_stems, write_audio
from mixbridge.loudness import integrated_lufs
from mixbridge.mel import log_mel_spectrogram, mel_filterbank
from mixbridge.models import dmc_mixer
from mixbridge.models.checkpoint import load_checkpoint
from mixbridge.models.dmc import DMC, MAX_WINDOWS, dmc_features, parameter_count, select_windows
from mixbridge.models.dmc_mixer import MAX_TRACKS, DMCMixer, DMCMixerError
from mixbridge.models.mixers import get_mixer
from mixbridge.models.training.mixing import MixingTask, load_mixer_config, ship_mixer
from tests.contracts import MixerContract

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "models" / "configs").glob("dmc*.yaml"))
TINY_CONFIG = ROOT / "models" / "configs" / "dmc_tiny.yaml"
SAMPLE_RATE = 16000
TINY = dict(n_mels=16, channels=8, n_layers=2, embed_dim=8, hidden=16, sample_rate=SAMPLE_RATE)
#: float32 round-off of a log-mel frame computed inside a longer signal vs alone, dB (7.6e-6 seen).
FEATURE_ROUNDOFF_DB = 1e-4
#: Float32 sums over the tracks in another order differ by a few ulps of O(1) values.
EQUIVARIANCE_TOLERANCE = 1e-6
#: The mixer's trim compensates a stem's input level exactly up to the session's 1e-3 dB rounding.
LEVEL_TOLERANCE_DB = 0.1
#: Float32 FFT round-off and the far side lobes of the Hann window (below -31 dB), in dB.
MEL_TOLERANCE_DB = 0.01
#: The issue's limit on a shipped mixer network.
MAX_PARAMETERS = 2_000_000


def _stems(rng: np.random.Generator, tracks: int, seconds: float) -> np.ndarray:
    """``[tracks, 2, samples]`` of noise bursts and tones, each track its own colour and level."""
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    out = np.zeros((tracks, 2, n), np.float32)
    for i in range(tracks):
        tone = np.sin(2 * np.pi * (110.0 * (i + 1)) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * (i + 1) * t))
        noise = rng.standard_normal(n) * (0.05 * (i % 3))
        out[i] = (0.1 * (tone + noise)).astype(np.float32)
    return out


def write_tiny_composer(root: Path, *, songs=(("D_T1", "train"), ("D_T2", "train"), ("D_V1", "val")),
                        excerpts_per_song: int = 2, tracks: int = 3, seconds: float = 1.5) -> Path:
    """A composer dataset in COMMON.md's layout (read by H1's reader) from synthetic stems."""
    from mixbridge.plugins.datagen.composer.build import (
        DATASET_FORMAT,
        DATASET_VERSION,
        EXCERPT_FORMAT,
        MANIFEST_FORMAT,
        MANIFEST_VERSION,
    )

    rng = np.random.default_rng(0)
    entries = []
    for lump, split in songs:
        for x in range(excerpts_per_song):
            eid = f"{lump.lower()}_x{x}"
            folder = root / "excerpts" / eid
            (folder / "stems").mkdir(parents=True)
            audio = _stems(rng, tracks, seconds)
            gains = rng.uniform(-6, 6, tracks)
            gains -= gains.mean()
            stems = []
            for i in range(tracks):
                name = f"track{i}"
                write_audio(folder / "stems" / f"{name}.wav", audio[i], SAMPLE_RATE)
                stems.append({"file": f"{name}.wav", "name": name, "kind": "pitched", "gm_program": i, "role": "keys",
                              "target": {"gain_db": float(gains[i]), "pan": float(rng.uniform(-1, 1))}})
            (folder / "stems" / "manifest.json").write_text(json.dumps(
                {"format": EXCERPT_FORMAT, "version": DATASET_VERSION, "sample_rate": SAMPLE_RATE,
                 "input_lufs": -24.0, "stems": stems}))
            entries.append({"id": eid, "folder": f"excerpts/{eid}", "lump": lump, "song": lump, "split": split,
                            "kit": "synthetic", "n_tracks": tracks,
                            "files": {f"stems/track{i}.wav": "0" * 64 for i in range(tracks)}})
    split = {s: [lump for lump, sp in songs if sp == s] for s in ("train", "val", "test")}
    (root / "config.json").write_text(json.dumps({"format": DATASET_FORMAT, "version": DATASET_VERSION,
                                                  "settings": {}, "split": split, "labels": {}}))
    (root / "manifest.json").write_text(json.dumps({"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION,
                                                    "excerpts": entries}))
    return root


@pytest.fixture(scope="module")
def tiny_ds(tmp_path_factory) -> Path:
    return write_tiny_composer(tmp_path_factory.mktemp("composer"))


def _net(seed: int = 0) -> DMC:
    torch.manual_seed(seed)
    return DMC(**TINY).eval()


# --------------------------------------------------------------------------- the network
def test_permuting_tracks_permutes_outputs():
    net = _net()
    x = torch.randn(2, 7, 16, 20) * 10 - 50
    perm = torch.tensor([3, 0, 6, 1, 5, 2, 4])
    with torch.no_grad():
        u, up = net(x), net(x[:, perm])
    assert torch.max(torch.abs(up - u[:, perm])) <= EQUIVARIANCE_TOLERANCE


def test_padded_tracks_do_not_change_real_tracks():
    net = _net()
    x = torch.randn(1, 4, 16, 20) * 10 - 50
    padded = torch.cat([x, torch.randn(1, 3, 16, 20) * 30], dim=1)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0, 0]], dtype=torch.float32)
    with torch.no_grad():
        u, up = net(x), net(padded, mask)
    assert torch.max(torch.abs(up[:, :4] - u)) <= EQUIVARIANCE_TOLERANCE


def test_shapes_and_parameter_count():
    default = DMC()
    assert parameter_count(default) <= MAX_PARAMETERS
    assert parameter_count(default) < 100_000   # the shipped size: CPU-light
    net = _net()
    for tracks in (1, 200):
        u = net(torch.randn(tracks, 16, 12))
        assert u.shape == (tracks, 2) and bool(((u > 0) & (u < 1)).all())
    assert net(torch.randn(3, 5, 16, 12)).shape == (3, 5, 2)


def test_features_window_long_stems_and_need_no_torch():
    rng = np.random.default_rng(1)
    window = int(4.0 * SAMPLE_RATE)
    long = rng.standard_normal((2, 2, window * MAX_WINDOWS + 5 * SAMPLE_RATE)).astype(np.float32)
    part = select_windows(long, SAMPLE_RATE)
    assert part.shape[-1] == window * MAX_WINDOWS
    assert np.array_equal(part[..., :window], long[..., :window])            # first window at the start
    assert np.array_equal(part[..., -window:], long[..., -window:])          # last one at the end
    f = dmc_features(long, SAMPLE_RATE, n_mels=16)
    assert f.shape == (2, 16, 1 + (window * MAX_WINDOWS - 2048) // 1024) and f.dtype == np.float32
    np.testing.assert_array_equal(f, log_mel_spectrogram(part.mean(axis=1), SAMPLE_RATE, n_mels=16))
    code = ("import sys; sys.modules['torch'] = None; import numpy as np; "
            "from mixbridge.models.dmc import dmc_features; "
            "print(dmc_features(np.zeros((1, 2, 8000), np.float32), 16000).shape)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(1, 64, 6)"   # 1 + (8000 - 2048) // 1024 frames


def test_log_mel_of_a_bin_centred_sine_reads_its_level():
    """Closed form: a Hann-windowed sine at bin k has power A^2 at k and A^2 / 4 at k +- 1 (|X| = A sum(w) / 4)."""
    n_fft, k = 2048, 93
    f_hz = k * SAMPLE_RATE / n_fft
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    fb = mel_filterbank(SAMPLE_RATE, n_fft, 64, 20.0, SAMPLE_RATE / 2)
    band = fb[:, k] + 0.25 * (fb[:, k - 1] + fb[:, k + 1])
    for level_db in (0.0, -20.0):
        x = (10 ** (level_db / 20) * np.sin(2 * np.pi * f_hz * t)).astype(np.float32)
        m = log_mel_spectrogram(x, SAMPLE_RATE, n_mels=64)
        np.testing.assert_allclose(m.mean(axis=-1), level_db + 10 * np.log10(np.maximum(band, 1e-10 / 10 ** (
            level_db / 10))), atol=MEL_TOLERANCE_DB)


# --------------------------------------------------------------------------- the mixer
def _stemset(folder: Path, audio: np.ndarray) -> StemSet:
    folder.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(audio):
        write_audio(folder / f"s{i}.wav", a, SAMPLE_RATE)
    return load_stems(folder)


def test_mixer_trim_compensates_input_level(tmp_path):
    audio = _stems(np.random.default_rng(2), 4, 2.0)
    quiet = audio.copy()
    quiet[1] *= np.float32(10 ** (-10 / 20))
    mixer = DMCMixer(model=_net())
    a = mixer(_stemset(tmp_path / "a", audio))
    b = mixer(_stemset(tmp_path / "b", quiet))

    def total_db(session):
        return np.array([t.params["trim"]["gain_db"] + t.params["fader"]["fader_db"] for t in session.tracks])

    out_a = total_db(a) + [integrated_lufs(x, SAMPLE_RATE) for x in audio]
    out_b = total_db(b) + [integrated_lufs(x, SAMPLE_RATE) for x in quiet]
    np.testing.assert_allclose(out_b, out_a, atol=LEVEL_TOLERANCE_DB)   # every track at the same mixed level
    assert total_db(b)[1] - total_db(a)[1] == pytest.approx(10.0, abs=LEVEL_TOLERANCE_DB)
    assert [t.params["pan"]["pan"] for t in a.tracks] == pytest.approx([t.params["pan"]["pan"] for t in b.tracks],
                                                                       abs=1e-4)
    assert a.provenance["mixer"] == "dmc"


def test_mixer_track_limits():
    mixer = DMCMixer(model=_net())
    one = StemSet([Stem("solo", Path("solo.wav"), _stems(np.random.default_rng(3), 1, 1.0)[0])], SAMPLE_RATE)
    assert mixer.predict(one)["gain_db"] == pytest.approx([0.0])             # one track: no relative balance
    audio = _stems(np.random.default_rng(4), 3, 0.5)
    many = StemSet([Stem(f"t{i}", Path(f"t{i}.wav"), audio[i % 3]) for i in range(200)], SAMPLE_RATE)
    assert mixer.predict(many)["pan"].shape == (200,)
    too_many = StemSet(many.stems * 2, SAMPLE_RATE)
    with pytest.raises(DMCMixerError, match=f"at most {MAX_TRACKS}"):
        mixer.predict(too_many)


def test_missing_weights_name_the_train_command(monkeypatch, tmp_path):
    from mixbridge.models import checkpoint as checkpoint_module

    monkeypatch.setattr(dmc_mixer, "SHIPPED_CHECKPOINT", tmp_path / "none" / "dmc.json")
    monkeypatch.setattr(checkpoint_module, "SHIPPED_MIXERS_DIR", tmp_path / "none")
    with pytest.raises(DMCMixerError, match="mixbridge train mixer"):
        get_mixer("dmc").network()


# --------------------------------------------------------------------------- training
@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_dmc_config_builds(path):
    cfg = load_mixer_config(path)
    assert parameter_count(DMC(**cfg.get("model_args", {}))) <= MAX_PARAMETERS


def test_one_training_step_decreases_the_loss(tiny_ds):
    task = MixingTask(tiny_ds, model_args={k: v for k, v in TINY.items() if k != "sample_rate"}, crop_s=1.0,
                      stft_s=0.5, stft_weight=0.1, seed=0)
    assert task.val_note == "the dataset's val split" and len(task.val_data) == 2 and len(task.train_data) == 4
    batch = task.collate([task.train_data[i] for i in range(4)])
    assert batch["mask"].shape == (4, 3) and batch["features"].shape[:3] == (4, 3, 16)
    opt = torch.optim.Adam(task.model.parameters(), lr=1e-3)
    before = task.step(batch)
    assert float(before["stft"].detach()) > 0
    opt.zero_grad()
    before["loss"].backward()
    opt.step()
    with torch.no_grad():
        after = task.step(batch)["loss"]
    assert float(after) < float(before["loss"].detach())
    val = task.validate([task.collate([task.val_data[i] for i in range(2)])])
    assert set(task.val_keys) <= set(val) and val["level_rmse_db"] > 0


def test_train_cli_runs_resumes_and_the_mixer_loads_the_run(tiny_ds, tmp_path, capsys):
    run = tmp_path / "run"
    base = ["train", "mixer", "--data", str(tiny_ds), "--config", str(TINY_CONFIG), "-o", str(run), "-q"]
    assert main(base + ["--max-steps", "2"]) == 0
    assert main(base + ["--max-steps", "2"]) == 2                       # an existing run needs --resume
    assert "--resume" in capsys.readouterr().err
    assert main(base + ["--resume", "--max-steps", "3"]) == 0
    with open(run / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert int(rows[-1]["step"]) == 3 and "val_level_rmse_db" in rows[0] and "val_pan_mae" in rows[0]
    shipped = ship_mixer(run, tmp_path / "ship" / "dmc")
    net, record = load_checkpoint(shipped)
    assert record["extra"]["training"]["steps"] == 3 and record["training_state"] is None
    assert record["architecture"] == "dmc" and net.sample_rate == SAMPLE_RATE
    stems = load_stems(tiny_ds / "excerpts" / "d_v1_x0" / "stems")
    session = get_mixer("dmc", checkpoint=str(run / "best.json"))(stems)
    assert len(session.tracks) == 3 and session.provenance["mixer_model"] == str(run / "best.json")


def test_crops_are_frames_of_the_excerpt_features(tiny_ds):
    """A crop's features equal dmc_features of the crop's own audio (crops start on frames), up to the
    float32 round-off of an FFT over another length (FEATURE_ROUNDOFF_DB; 7.6e-6 dB was seen on one CPU)."""
    task = MixingTask(tiny_ds, model_args={k: v for k, v in TINY.items() if k != "sample_rate"}, crop_s=0.5,
                      stft_s=0.25, seed=3)
    data = task.train_data
    data.set_epoch(2)
    for i in range(len(data)):
        item = data[i]
        audio = data.excerpts[i].load_stems()
        total = data._excerpt_features(i).shape[-1]
        f0 = int(np.random.default_rng([3, 2, i]).integers(0, total - data.crop_frames + 1))
        start = f0 * task.model.hop_length
        np.testing.assert_allclose(item["features"], task.model.features(audio[..., start:start + data.crop],
                                                                         SAMPLE_RATE), rtol=0, atol=FEATURE_ROUNDOFF_DB)
        off = start + (data.crop - data.audio_samples) // 2
        np.testing.assert_array_equal(item["audio"], audio[..., off:off + data.audio_samples])


def test_a_dataset_without_val_songs_holds_a_training_song_out(tmp_path):
    ds = write_tiny_composer(tmp_path / "noval", songs=(("D_A", "train"), ("D_B", "train"), ("D_C", "train")),
                             excerpts_per_song=1)
    task = MixingTask(ds, model_args={k: v for k, v in TINY.items() if k != "sample_rate"}, crop_s=0.5)
    assert [ex.lump for ex in task.val_data.excerpts] == ["D_C"] and len(task.train_data) == 2
    assert "D_C held out" in task.identity["val_source"]


def test_track_dropout_leaves_tracks_out_with_their_labels(tmp_path):
    ds = write_tiny_composer(tmp_path / "six", tracks=6)
    task = MixingTask(ds, model_args={k: v for k, v in TINY.items() if k != "sample_rate"}, crop_s=0.5,
                      track_dropout=0.5, seed=1)
    counts = set()
    for epoch in range(4):
        task.train_data.set_epoch(epoch)
        for i in range(len(task.train_data)):
            item, labels = task.train_data[i], task.train_data.excerpts[i].target_gain_db.astype(np.float32)
            k = item["gain_db"].size
            counts.add(k)
            assert k >= 2 and item["features"].shape[0] == item["audio"].shape[0] == item["pan"].size == k
            assert set(item["gain_db"].tolist()) <= set(labels.tolist())
    assert min(counts) < 6 and 6 in counts or len(counts) > 1
    assert all(task.val_data[i]["gain_db"].size == 6 for i in range(len(task.val_data)))   # never in validation


@pytest.fixture(scope="module")
def stems(multitrack):
    return load_stems(multitrack)


class TestDMCMixer(MixerContract):
    """The registry's contract on the shipped ``dmc`` weights (models/mixers/dmc.*)."""

    mixer_name = "dmc"


def test_a_stem_silent_in_the_windows_is_trimmed_by_its_whole_loudness():
    """A tom fill only at the end of a 40 s stem (outside the 4 windows the network reads) is trimmed
    by the stem's whole integrated loudness (its windows do not represent it): never by tens of dB."""
    from mixbridge.models.dmc import DMC

    rate, seconds = 22050, 40.0
    n = int(rate * seconds)
    rng = np.random.default_rng(1)
    steady = (0.05 * rng.standard_normal((2, n))).astype(np.float32)
    fill = np.zeros((2, n), dtype=np.float32)
    fill[:, n - rate // 2:] = 0.3 * rng.standard_normal((2, rate // 2)).astype(np.float32)
    stems = StemSet([Stem("steady", Path("steady.wav"), steady, "other"),
                     Stem("fill", Path("fill.wav"), fill, "toms")], rate)
    torch.manual_seed(0)
    d = DMCMixer(model=DMC(sample_rate=rate)).predict(stems)
    # the fill is silent in the windows: the whole stem's loudness trims it (never tens of dB)
    assert d["trim_db"][1] == pytest.approx(dmc_mixer.COMMON_LUFS - integrated_lufs(fill, rate), abs=1e-9)
    # the steady stem's windows represent it: their loudness trims it, within 0.01 dB of the whole stem's
    assert d["trim_db"][0] == pytest.approx(dmc_mixer.COMMON_LUFS - integrated_lufs(steady, rate), abs=0.01)
    assert abs(d["trim_db"][1]) < 24.0


def test_the_family_prior_moves_known_tracks_by_its_weight(composer_e1m9_x0):
    """Closed form of the blend: with every track's family in the prior table, the relative gains at weight
    w are ``(1 - w) g_net + w (g_table - mean)``; without GM programs (no manifest) they are the network's."""
    from mixbridge.models.prior_mixer import PriorMixer

    stems = load_stems(composer_e1m9_x0.stems_dir)
    alone = DMCMixer(prior_weight=0.0).predict(stems)["gain_db"]
    half = DMCMixer(prior_weight=0.5).predict(stems)["gain_db"]
    prior = PriorMixer()
    table = np.array([prior.lookup(k, r, s.name)[0] for (k, r), s in zip(prior.stem_keys(stems), stems.stems)])
    assert all(prior.lookup(k, r, "x")[2] == "family" for k, r in prior.stem_keys(stems))
    np.testing.assert_allclose(half, 0.5 * alone + 0.5 * (table - table.mean()), atol=1e-9)
    assert np.max(np.abs(half - alone)) > 0.5   # the table and the network disagree by decibels here
    bare = StemSet([Stem(s.name, Path("/nonexistent") / f"{s.name}.wav", audio=s.audio) for s in stems.stems],
                   stems.sample_rate)
    np.testing.assert_allclose(DMCMixer(prior_weight=0.5).predict(bare)["gain_db"], alone, atol=1e-9)


def test_the_shipped_prior_weight_is_read_from_the_record_and_checked():
    assert dmc_mixer.record_prior_weight(dmc_mixer.SHIPPED_CHECKPOINT) == pytest.approx(0.35)
    assert DMCMixer().prior_weight() == pytest.approx(0.35)
    assert DMCMixer(model=DMC(**TINY)).prior_weight() == 0.0   # a network object has no record
    with pytest.raises(DMCMixerError, match="prior_weight = 1.5.*0..1"):
        DMCMixer(prior_weight=1.5)


def test_the_pan_scale_multiplies_the_network_pans_and_the_shipped_one_centres(composer_e1m9_x0):
    """``pan_scale`` s: the pans are s x the network's (closed form); the shipped record's 0 (chosen on the
    validation split) centres every track; a network object keeps its pans; outside 0..1 is refused."""
    stems = load_stems(composer_e1m9_x0.stems_dir)
    net = DMCMixer(pan_scale=1.0).predict(stems)["pan"]
    half = DMCMixer(pan_scale=0.5).predict(stems)["pan"]
    assert np.max(np.abs(net)) > 1e-4                      # the network's pans are not all centred
    np.testing.assert_allclose(half, 0.5 * net, atol=1e-12)
    assert dmc_mixer.record_pan_scale(dmc_mixer.SHIPPED_CHECKPOINT) == 0.0
    assert np.all(DMCMixer().predict(stems)["pan"] == 0.0)
    assert DMCMixer(model=DMC(**TINY)).pan_scale() == 1.0   # a network object has no record
    with pytest.raises(DMCMixerError, match="pan_scale = -0.5.*0..1"):
        DMCMixer(pan_scale=-0.5)
