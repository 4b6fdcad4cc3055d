"""The seed's mel U-Net mastering baseline (models/master_unet.py): closed forms, training, the CLI, shipping."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mixbridge.app.cli import main  # noqa: E402
from mixbridge.models.checkpoint import load_checkpoint  # noqa: E402
from mixbridge.models.master_unet import (  # noqa: E402
    MelUNet,
    UNetMasterer,
    griffin_lim,
    neutral_master_params,
    parameter_count,
    ship_unet,
)

SAMPLE_RATE = 44100
#: float32 STFT -> iSTFT round trip of audio at ~0.1 rms (torch's overlap-add), absolute.
ROUND_TRIP_TOL = 1e-5
#: The issue's size limit for the mastering models.
MAX_PARAMS = 1_000_000
#: Albums whose names hash into train, val and test (mixbridge.plugins.datagen.masters.split_of_album).
ALBUMS = {"alpha": "train", "gamma": "train", "beta": "val", "iota": "test"}


def write_masters(folder: Path, seconds: float = 3.0, sample_rate: int = SAMPLE_RATE) -> Path:
    """One synthetic stereo "master" per album folder of :data:`ALBUMS` (noise hits over a tone bed, ~-16 LUFS)."""
    import soundfile as sf

    t = np.arange(int(seconds * sample_rate)) / sample_rate
    for k, album in enumerate(ALBUMS):
        rng = np.random.default_rng(k)
        x = np.exp(-(t % 0.25) / 0.03) * rng.standard_normal((2, t.size)) * 0.2
        x += 0.1 * np.sin(2 * np.pi * (110.0 + 40 * k) * t)[None]
        (folder / album).mkdir(parents=True, exist_ok=True)
        sf.write(folder / album / f"{album}.wav", x.T.astype(np.float32), sample_rate, subtype="FLOAT")
    return folder


def make_premaster_dataset(tmp: Path, counts: str = "train=3,val=1,test=2") -> Path:
    """A tiny ``mixbridge datagen premaster`` dataset from :func:`write_masters`."""
    src, out = write_masters(tmp / "masters"), tmp / "premaster"
    assert main(["datagen", "premaster", "--source", str(src), "-o", str(out), "--split-counts", counts,
                 "--clip-s", "1.5", "-q"]) == 0
    return out


@pytest.fixture(scope="module")
def tiny_premaster(tmp_path_factory):
    return make_premaster_dataset(tmp_path_factory.mktemp("unet"))


def test_default_model_is_under_a_million_parameters():
    assert parameter_count(MelUNet()) < MAX_PARAMS


def test_untrained_network_is_the_identity_on_mel():
    """The zero-initialised head: the predicted master mel equals the input mel exactly."""
    m = MelUNet(sample_rate=SAMPLE_RATE)
    x = torch.randn(2, SAMPLE_RATE // 2) * 0.1
    mel = m.mel_db(x)
    with torch.no_grad():
        assert torch.equal(m(mel), mel)


def test_griffin_lim_keeps_a_consistent_spectrogram():
    """A signal's own magnitude and phase are a fixed point of Griffin-Lim; 0 iterations is the plain iSTFT."""
    m = MelUNet(sample_rate=SAMPLE_RATE)
    x = torch.randn(2, SAMPLE_RATE // 2) * 0.1
    spec = m.stft(x)
    for n_iter in (0, 3):
        y = griffin_lim(m, spec.abs(), x.shape[-1], n_iter=n_iter, init=spec)
        assert float((y - x).abs().max()) < ROUND_TRIP_TOL * (1 + 10 * n_iter)


def test_spread_maps_a_flat_mel_spectrum_to_a_flat_spectrum():
    """Between the first and last mel centres the triangles sum to 1: a flat power spectrum comes back flat."""
    m = MelUNet(sample_rate=SAMPLE_RATE)
    flat = torch.ones(m.n_fft // 2 + 1)
    back = m.spread @ (m.filterbank @ flat)
    fb = m.filterbank.numpy()
    first, last = int(np.argmax(fb[0])) + 1, int(np.argmax(fb[-1])) - 1   # strictly inside the outer centres
    assert torch.allclose(back[first:last + 1], torch.ones(last + 1 - first), atol=1e-5)


def test_neutral_master_params_are_the_identity_eq_and_compressor():
    p = neutral_master_params(-16.0, -2.0)
    assert all(v == 0.0 for k, v in p["eq"].items() if k.endswith("gain_db"))
    assert p["compressor"]["ratio"] == 1.0 and p["loudness"]["target_lufs"] == -16.0
    assert p["limiter"]["ceiling_dbtp"] == -2.0 and "reverb" not in p


def test_train_cli_runs_resumes_ships_and_masters(tiny_premaster, tmp_path, capsys):
    run = tmp_path / "run"
    base = ["train", "master-unet", "--data", str(tiny_premaster), "-o", str(run), "-q"]
    assert main(base + ["--max-steps", "2"]) == 0
    assert main(base + ["--max-steps", "2"]) == 2                       # an existing run needs --resume
    assert "--resume" in capsys.readouterr().err
    assert main(base + ["--resume", "--max-steps", "3"]) == 0
    with open(run / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert int(rows[-1]["step"]) == 3 and np.isfinite(float(rows[-1]["val_loss"]))
    shipped = ship_unet(run, tmp_path / "ship" / "unet")
    net, record = load_checkpoint(shipped)
    assert record["architecture"] == "master-unet" and net.sample_rate == SAMPLE_RATE
    masterer = UNetMasterer(shipped)
    audio = (np.random.default_rng(0).standard_normal((2, 2 * 48000)) * 0.05).astype(np.float32)
    out = masterer.render(audio, 48000)                                  # resampled to the model's rate and back
    assert out.shape == audio.shape and out.dtype == np.float32
    res = masterer.master(audio, 48000, target_lufs=-16.0, ceiling_dbtp=-1.0)
    assert abs(res.lufs - -16.0) <= 0.1 and res.true_peak_dbtp <= -1.0


def test_the_committed_config_builds_a_model_under_the_limit():
    from mixbridge.models.master_unet import load_unet_config

    config = load_unet_config(Path(__file__).resolve().parents[2] / "models" / "configs" / "master_unet.yaml")
    model = MelUNet(sample_rate=SAMPLE_RATE, **config["model_args"])
    assert parameter_count(model) < MAX_PARAMS
