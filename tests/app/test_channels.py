"""One multichannel rule in every command: a source of more than two channels is refused, never cut to two."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from mixbridge.app.cli import main
from mixbridge.audio import MAX_SOURCE_CHANNELS, read_audio
from mixbridge.errors import AudioInputError

SAMPLE_RATE = 44100
#: An 8-channel take: more than the MAX_SOURCE_CHANNELS = 2 every command accepts.
CHANNELS = 8


def _eight_channels(path, seconds: float = 2.0):
    rng = np.random.default_rng(0)
    sf.write(path, (0.1 * rng.standard_normal((int(seconds * SAMPLE_RATE), CHANNELS))).astype(np.float32),
             SAMPLE_RATE, subtype="FLOAT")
    return path


def test_reader_refuses_more_than_two_channels_naming_count_limit_and_fix(tmp_path):
    assert MAX_SOURCE_CHANNELS == 2
    with pytest.raises(AudioInputError) as e:
        read_audio(_eight_channels(tmp_path / "take.wav"))
    msg = str(e.value)
    assert "take.wav: 8 channels" in msg and "at most 2" in msg and "remix 1 2" in msg


def test_automix_refuses_an_eight_channel_stem_and_writes_nothing(multitrack_copy, tmp_path, capsys):
    _eight_channels(multitrack_copy / "room.wav", seconds=6.0)
    assert main(["automix", str(multitrack_copy), "-o", str(tmp_path / "out"), "-q"]) == 2
    assert "room.wav: 8 channels" in capsys.readouterr().err
    assert not (tmp_path / "out" / "session.json").exists()


def test_render_refuses_a_session_whose_source_became_eight_channels(multitrack_copy, tmp_path, capsys):
    out = tmp_path / "mix"
    assert main(["automix", str(multitrack_copy), "-o", str(out), "-q"]) == 0
    session = json.loads((out / "session.json").read_text())
    source = next(t["source"] for t in session["tracks"] if t["name"] == "pad")
    _eight_channels(out / source if not source.startswith("/") else source, seconds=6.0)
    assert main(["render", str(out / "session.json"), "-o", str(tmp_path / "x.wav"), "-q"]) == 2
    assert "8 channels" in capsys.readouterr().err
    assert not (tmp_path / "x.wav").exists()


def test_datagen_refuses_an_eight_channel_source(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    _eight_channels(src / "take.wav")
    rc = main(["datagen", "effect", "--chain", "compressor", "--source", str(src), "--n", "2", "--patch-s", "0.5",
               "-o", str(tmp_path / "ds"), "-q"])
    assert rc == 2 and "take.wav: 8 channels" in capsys.readouterr().err
