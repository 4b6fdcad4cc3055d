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


# --------------------------------------------------------------------------- truncated files (issue 10)
#: The cut keeps a tenth of the bytes: the header says 32 s, the file holds about 3.2 s.
CUT_FRACTION = 0.1


def _cut(path: Path, subtype: str, fmt: str | None = None, seconds: float = 32.0, rate: int = 8000) -> Path:
    """A file whose header declares ``seconds`` of audio but which holds only :data:`CUT_FRACTION` of its bytes."""
    x = (0.1 * np.random.default_rng(1).standard_normal((int(seconds * rate), 2))).astype(np.float32)
    sf.write(str(path), x, rate, subtype=subtype, format=fmt)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * CUT_FRACTION)])
    return path


@pytest.mark.parametrize("name, subtype", [("f.wav", "FLOAT"), ("p.wav", "PCM_16"), ("a.aiff", "PCM_24")])
def test_a_truncated_file_is_an_error_naming_the_frames_expected_and_got(tmp_path: Path, name: str,
                                                                         subtype: str) -> None:
    from mixbridge.audio import header_frames, read_audio

    path = _cut(tmp_path / name, subtype)
    assert header_frames(path) == 256000
    got = sf.info(str(path)).frames  # libsndfile shortens its count to what the file holds
    assert got < 256000 * 0.11
    with pytest.raises(AudioInputError, match=rf"{name}: truncated: expected 256000 frames \(32\.00 s at 8000 Hz, "
                                              rf"from its header\), got {got} \(3\.\d\d s\).*copy or export it again"):
        read_audio(path)


def test_header_frames_of_whole_files_match_what_is_read(tmp_path: Path) -> None:
    from mixbridge.audio import header_frames, read_audio

    x = _noise(2, 12345).T
    for name, subtype in (("a.wav", "FLOAT"), ("b.wav", "PCM_24"), ("c.flac", "PCM_16"), ("d.aiff", "PCM_16")):
        sf.write(str(tmp_path / name), x, 22050, subtype=subtype)
        assert header_frames(tmp_path / name) == 12345
        assert read_audio(tmp_path / name)[0].shape == (2, 12345)
    write_audio(tmp_path / "e.wav", x.T, 22050)  # scipy's writer: fmt + fact + data
    assert header_frames(tmp_path / "e.wav") == 12345
    sf.write(str(tmp_path / "f.ogg"), x, 22050, subtype="VORBIS")
    assert header_frames(tmp_path / "f.ogg") is None  # lossy: no frame count in a header
    # a range read stops at the file's end without padding
    audio, _ = read_audio(tmp_path / "a.wav", start=12000, frames=1000)
    assert audio.shape == (2, 345)


def test_automix_refuses_a_truncated_stem_instead_of_padding_it(tmp_path: Path, capsys) -> None:
    from mixbridge.app.cli import main
    from mixbridge.audio import load_stems

    stems = tmp_path / "stems"
    stems.mkdir()
    sf.write(str(stems / "bass.wav"), _noise(2, 32 * 8000).T, 8000, subtype="FLOAT")
    _cut(stems / "drums.wav", "FLOAT")
    with pytest.raises(AudioInputError, match=r"drums\.wav: truncated: expected 256000 frames"):
        load_stems(stems)
    assert main(["automix", str(stems), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "drums.wav: truncated" in err
    assert not (tmp_path / "out" / "mix.wav").exists()
