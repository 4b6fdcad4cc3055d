"""The one WAV writer (:func:`mixbridge.audio.write_audio`): exact samples, reproducible bytes, refusals."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mixbridge.audio import write_audio
from mixbridge.errors import AudioInputError


def _noise(channels: int = 2, frames: int = 4097) -> np.ndarray:
    return (0.25 * np.random.default_rng(0).standard_normal((channels, frames))).astype(np.float32)


@pytest.mark.parametrize("subtype", ["FLOAT", "PCM_24"])
def test_same_audio_gives_the_same_bytes(tmp_path: Path, subtype: str) -> None:
    """libsndfile's FLOAT files carry a PEAK chunk with the write time; ours must not differ run to run."""
    audio = _noise()
    a = write_audio(tmp_path / "a.wav", audio, 44100, subtype)
    time.sleep(1.1)  # the PEAK chunk's time stamp has a one-second resolution
    b = write_audio(tmp_path / "b.wav", audio, 44100, subtype)
    assert a.read_bytes() == b.read_bytes()
    assert b"PEAK" not in a.read_bytes()[:200]


def test_float_wav_holds_the_exact_samples_in_the_standard_layout(tmp_path: Path) -> None:
    audio = _noise(channels=2, frames=1001)
    path = write_audio(tmp_path / "x.wav", audio, 48000)
    data = path.read_bytes()
    # RIFF header + fmt (18 bytes: IEEE float, tag 3, cbSize 0) + fact (4 bytes) + data of 2 * 1001 float32 samples
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt " and data[38:42] == b"fact" and data[50:54] == b"data"
    assert data[16:22] == b"\x12\x00\x00\x00\x03\x00"
    assert len(data) == 12 + (8 + 18) + (8 + 4) + (8 + 4 * 2 * 1001)
    back, rate = sf.read(str(path), dtype="float32", always_2d=True)
    info = sf.info(str(path))
    assert rate == 48000 and info.subtype == "FLOAT" and info.channels == 2 and info.frames == 1001
    np.testing.assert_array_equal(back.T, audio)


def test_bad_audio_is_refused_and_nothing_written(tmp_path: Path) -> None:
    with pytest.raises(AudioInputError, match="NaN/inf"):
        write_audio(tmp_path / "c.wav", np.full((2, 8), np.nan, np.float32), 44100)
    with pytest.raises(AudioInputError, match=r"\[channels, samples\]"):
        write_audio(tmp_path / "d.wav", np.zeros(8, np.float32), 44100)
    assert list(tmp_path.iterdir()) == []
