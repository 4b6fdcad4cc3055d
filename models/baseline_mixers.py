"""The baseline mixers: reference points a learned or rule-based mixer must beat.

* :class:`MonoSum` -- every track at unity, centred, no processing;
* :class:`RandomMix` -- fader uniform in +-12 dB and pan uniform in -1..1, seeded (the DMC
  baseline, Steinmetz et al., "Automatic multitrack mixing with a differentiable mixing
  console of neural audio effects", ICASSP 2021);
* :class:`EqualLoudness` -- each track loudness-normalised to the same integrated LUFS,
  centred, then summed (Diff-MST's baseline, Vanka et al., ISMIR 2024).

Each class's keyword arguments are its config (``get_mixer("random", gain_range_db=6)``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mixbridge.audio import StemSet
from mixbridge.errors import ParamRangeError
from mixbridge.loudness import SILENT_LUFS, integrated_lufs_blocks
from mixbridge.session import Session

from .mix_session import build_session, master_defaults, split_gain


class MonoSum:
    """Every track at 0 dB, centred, no processing."""

    name = "mono_sum"

    def __call__(self, stems: StemSet, *, seed: int = 0, target_lufs: float = -14.0,
                 source_base: Path | None = None) -> Session:
        """The session of ``stems``: every strip at its defaults, the master aiming at ``target_lufs``."""
        return build_session(stems, self.name, [{} for _ in stems.stems], master_defaults(target_lufs), seed,
                             source_base)


class RandomMix:
    """Random faders (uniform within +-gain_range_db) and pans (uniform in -1..1), seeded.

    Args:
        gain_range_db: the fader range, dB (default 12, the DMC baseline's); 0..12.

    Raises:
        ParamRangeError: ``gain_range_db`` outside 0..12 dB (the fader's upper limit).
    """

    name = "random"
    GAIN_RANGE_DB = 12.0

    def __init__(self, gain_range_db: float = GAIN_RANGE_DB) -> None:
        if not 0.0 <= float(gain_range_db) <= 12.0:
            raise ParamRangeError(f"random mixer gain_range_db = {gain_range_db} must be within 0..12 dB")
        self.gain_range_db = float(gain_range_db)

    def __call__(self, stems: StemSet, *, seed: int = 0, target_lufs: float = -14.0,
                 source_base: Path | None = None) -> Session:
        """The session of ``stems`` with faders and pans drawn from numpy's PCG64 seeded with ``seed``."""
        rng = np.random.default_rng(seed)
        params = [
            {"fader": {"fader_db": float(rng.uniform(-self.gain_range_db, self.gain_range_db))},
             "pan": {"pan": float(rng.uniform(-1.0, 1.0))}}
            for _ in stems.stems
        ]
        return build_session(stems, self.name, params, master_defaults(target_lufs), seed, source_base)


class EqualLoudness:
    """Every non-silent track normalised to the same integrated loudness, centred.

    Args:
        track_lufs: the loudness every track is brought to, LUFS (default -26).
    """

    name = "equal_loudness"
    TRACK_LUFS = -26.0

    def __init__(self, track_lufs: float = TRACK_LUFS) -> None:
        self.track_lufs = float(track_lufs)

    def __call__(self, stems: StemSet, *, seed: int = 0, target_lufs: float = -14.0,
                 source_base: Path | None = None) -> Session:
        """The session of ``stems``: fader and trim bring each track to ``track_lufs`` (BS.1770-4)."""
        notes: list[str] = []
        params = []
        for s in stems.stems:
            lufs = integrated_lufs_blocks(s.blocks(), stems.sample_rate, s.channels)
            params.append({} if lufs <= SILENT_LUFS else split_gain(self.track_lufs - lufs, notes, s.name))
        return build_session(stems, self.name, params, master_defaults(target_lufs), seed, source_base,
                             {"mixer_notes": notes})
