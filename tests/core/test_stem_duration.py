"""The shortest stem set mixbridge mixes (issue 10 item 5): one BS.1770-4 loudness block, 400 ms.

Below it the meter has no block to measure (``integrated_lufs`` reports -70 LUFS), so no level decision
and no loudness target can be met; a 1-sample stem folder used to give a 96-byte master with exit 0."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mixbridge.app.cli import main
from mixbridge.audio import MIN_STEM_DURATION_S, load_stems, write_audio
from mixbridge.errors import AudioInputError
from mixbridge.loudness import SILENT_LUFS, integrated_lufs

RATE = 8000


def _folder(path: Path, samples: int) -> Path:
    path.mkdir(parents=True)
    rng = np.random.default_rng(0)
    write_audio(path / "a.wav", (0.1 * rng.standard_normal((2, samples))).astype(np.float32), RATE)
    write_audio(path / "b.wav", (0.1 * rng.standard_normal((1, max(1, samples // 2)))).astype(np.float32), RATE)
    return path


def test_the_limit_is_the_meters_first_block():
    """The limit is where the meter starts measuring: one sample fewer reads as silence."""
    n = int(MIN_STEM_DURATION_S * RATE) + 1
    x = (0.1 * np.random.default_rng(1).standard_normal((2, n))).astype(np.float32)
    assert integrated_lufs(x, RATE) > SILENT_LUFS
    assert integrated_lufs(x[:, :-1], RATE) == SILENT_LUFS


@pytest.mark.parametrize("samples", [1, int(MIN_STEM_DURATION_S * RATE)])
def test_too_short_stems_are_refused_naming_the_minimum(tmp_path, samples):
    with pytest.raises(AudioInputError, match=rf"a\.wav\) has {samples} samples .*more than 400 ms \(3201 samples"):
        load_stems(_folder(tmp_path / "s", samples))


def test_one_block_is_enough(tmp_path):
    stems = load_stems(_folder(tmp_path / "s", int(MIN_STEM_DURATION_S * RATE) + 1))
    assert stems.stems[0].audio.shape == (2, 3201)


def test_automix_of_a_one_sample_folder_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys):
    assert main(["automix", str(_folder(tmp_path / "s", 1)), "-o", str(tmp_path / "out"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has 1 samples (0.1 ms at 8000 Hz)" in err and "give longer stems" in err
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".automix-")]
