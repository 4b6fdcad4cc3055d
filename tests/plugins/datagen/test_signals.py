"""``mixbridge datagen signals``: the dynamics signals span their levels, are reproducible, and a folder
of other settings is refused."""
from __future__ import annotations

import numpy as np
import pytest

from mixbridge.audio import read_audio
from mixbridge.errors import ParamRangeError
from mixbridge.plugins.datagen.signals import GAP_LEVEL_DB, KINDS, LEVEL_RANGE_DB, steps, write_signals

SR = 44100


def test_every_kind_is_written_within_full_scale_and_reproducibly(tmp_path):
    a = write_signals(tmp_path / "a", per_kind=2, seconds=1.0, seed=3)
    b = write_signals(tmp_path / "b", per_kind=2, seconds=1.0, seed=3)
    assert len(a) == 2 * len(KINDS)
    for pa, pb in zip(a, b):
        xa, sr = read_audio(pa)
        assert sr == SR and xa.shape == (1, SR)
        assert np.max(np.abs(xa)) <= 1.0 and np.max(np.abs(xa)) > 10 ** (LEVEL_RANGE_DB[0] / 20) * 0.5
        assert pa.read_bytes() == pb.read_bytes()


def test_steps_hold_levels_inside_the_range():
    x = steps(np.random.default_rng(0), 4 * SR, SR)
    # the sine's peak over 50 ms windows is one of the drawn levels, all within -50..0 dBFS
    peaks = 20 * np.log10(np.max(np.abs(x[: (x.size // 2205) * 2205].reshape(-1, 2205)), axis=1))
    assert peaks.min() >= LEVEL_RANGE_DB[0] - 0.5 and peaks.max() <= LEVEL_RANGE_DB[1] + 1e-9
    assert np.ptp(peaks) > 6.0  # it steps
    assert GAP_LEVEL_DB < LEVEL_RANGE_DB[0]


def test_other_settings_in_the_folder_are_refused(tmp_path):
    write_signals(tmp_path, per_kind=1, seconds=1.0, seed=0)
    with pytest.raises(ParamRangeError, match="other settings"):
        write_signals(tmp_path, per_kind=1, seconds=1.0, seed=1)
    with pytest.raises(ParamRangeError, match="per_kind"):
        write_signals(tmp_path / "x", per_kind=0)
