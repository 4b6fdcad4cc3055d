"""The dmc mixer's loudness trim (mixbridge.models.dmc_mixer.trim_lufs): the part the network reads
sets it when it is the whole stem or represents it, the whole stem otherwise."""
from __future__ import annotations

import numpy as np
import pytest

from mixbridge.loudness import integrated_lufs
from mixbridge.models import dmc_mixer
from mixbridge.models.dmc import select_windows

RATE = 22050
WINDOW_S, MAX_WINDOWS = 4.0, 4
#: The loudness meter on the same samples, summed in another block order: round-off only.
SAME_SAMPLES_LU = 1e-9
#: Stationary noise: its windows' loudness is its whole loudness to within this (measured 0.003 LU).
STATIONARY_LU = 0.02


def _trim(audio: np.ndarray) -> float:
    part = select_windows(audio, RATE, window_s=WINDOW_S, max_windows=MAX_WINDOWS)
    return dmc_mixer.trim_lufs(part, RATE, audio.shape[-1], lambda: [audio], audio.shape[0])


def _noise(seconds: float, level: float = 0.05, seed: int = 3) -> np.ndarray:
    return (level * np.random.default_rng(seed).standard_normal((2, int(seconds * RATE)))).astype(np.float32)


def test_a_short_stem_is_measured_whole():
    x = _noise(12.0)
    assert _trim(x) == pytest.approx(integrated_lufs(x, RATE), abs=SAME_SAMPLES_LU)


def test_a_long_stationary_stem_is_measured_on_its_windows_only(monkeypatch):
    x = _noise(60.0)

    def whole_meter(*a, **k):
        raise AssertionError("the whole stem was metered")

    monkeypatch.setattr(dmc_mixer, "integrated_lufs_blocks", whole_meter)
    part = select_windows(x, RATE, window_s=WINDOW_S, max_windows=MAX_WINDOWS)
    assert _trim(x) == pytest.approx(integrated_lufs(part, RATE), abs=SAME_SAMPLES_LU)
    assert _trim(x) == pytest.approx(integrated_lufs(x, RATE), abs=STATIONARY_LU)


@pytest.mark.parametrize("where", ["between the windows", "only in the windows"])
def test_windows_that_do_not_represent_the_stem_give_the_whole_stem_loudness(where):
    x = _noise(60.0, level=0.002)
    n = x.shape[-1]
    win = int(WINDOW_S * RATE)
    starts = [int(round(s)) for s in np.linspace(0, n - win, MAX_WINDOWS)]
    loud = np.zeros(n, bool)
    for s in starts:
        loud[s:s + win] = True
    if where == "between the windows":
        loud = ~loud
    x[:, loud] *= 100.0  # +40 dB there
    assert _trim(x) == pytest.approx(integrated_lufs(x, RATE), abs=SAME_SAMPLES_LU)


def test_a_scaled_stem_changes_its_loudness_by_the_scale():
    x = _noise(60.0)
    assert _trim(x * np.float32(0.5)) - _trim(x) == pytest.approx(20 * np.log10(0.5), abs=1e-6)


def test_silence_gives_the_silent_loudness_short_or_long():
    assert _trim(np.zeros((2, RATE), np.float32)) == dmc_mixer.SILENT_LUFS
    assert _trim(np.zeros((2, 60 * RATE), np.float32)) == dmc_mixer.SILENT_LUFS  # long and silent: no nan


def test_stems_at_another_rate_are_trimmed_from_the_resampled_audio():
    """The mixer's resampling branch: a long steady stem at twice the network's rate, and a fill between
    the windows (the whole stem's loudness trims it), both measured at the network's rate."""
    torch = pytest.importorskip("torch")
    from pathlib import Path

    from mixbridge.audio import Stem, StemSet, resample
    from mixbridge.models.dmc import DMC

    steady = _noise(40.0, seed=4)
    steady = resample(steady, RATE, 2 * RATE).astype(np.float32)
    fill = np.zeros_like(steady)
    fill[:, -RATE:] = steady[:, -RATE:] * 6.0
    stems = StemSet([Stem("steady", Path("steady.wav"), steady.copy(), "other"),
                     Stem("fill", Path("fill.wav"), fill.copy(), "toms")], 2 * RATE)
    torch.manual_seed(0)
    d = dmc_mixer.DMCMixer(model=DMC(sample_rate=RATE)).predict(stems)
    for i, audio in enumerate((steady, fill)):
        whole = integrated_lufs(resample(audio, 2 * RATE, RATE), RATE)
        tol = STATIONARY_LU if i == 0 else SAME_SAMPLES_LU
        assert d["lufs"][i] == pytest.approx(whole, abs=tol)


#: BS.1770-4 loudness scales with the gain (the gates are relative, the absolute one far below): round-off only.
GAIN_INVARIANCE_LU = 1e-6


@pytest.mark.parametrize("level", [0.001, 0.05, 0.5])
def test_the_trim_brings_a_stem_to_the_common_loudness(level):
    from mixbridge.loudness import db_to_gain

    x = _noise(3.0, level=level)
    trimmed = x.astype(np.float64) * db_to_gain(dmc_mixer.trim_db(integrated_lufs(x, RATE)))
    assert integrated_lufs(trimmed, RATE) == pytest.approx(dmc_mixer.COMMON_LUFS, abs=GAIN_INVARIANCE_LU)


@pytest.mark.parametrize("level_lufs", [dmc_mixer.SILENT_LUFS, dmc_mixer.SILENT_LUFS - 10.0, -np.inf, np.nan])
def test_a_silent_stem_gets_no_trim(level_lufs):
    assert dmc_mixer.trim_db(level_lufs) == 0.0
    assert dmc_mixer.trim_db(dmc_mixer.SILENT_LUFS + 1.0) == dmc_mixer.COMMON_LUFS - dmc_mixer.SILENT_LUFS - 1.0
