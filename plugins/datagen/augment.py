"""Input augmentations for effect datasets (Steinmetz 2020 thesis, ch. 4; DESIGN.md §2).

Each augmentation has its own probability and range, and every draw comes from
the example's own generator, so they are reproducible from (seed, index):

==============  =====================================================  ==================
name            what it does                                           value recorded
==============  =====================================================  ==================
``mix``         adds a second random clip at ``mix_gain_db``           gain of clip 2, dB
``gain``        scales the input by ``gain_db``                        dB
``polarity``    flips the sign                                         1
``noise``       adds white Gaussian noise at ``noise_dbfs`` RMS        dBFS
``zero_samples`` zeroes a random fraction of single samples           fraction
``zero_block``  zeroes one contiguous block (fraction of the patch)    fraction
==============  =====================================================  ==================
They are applied in that order, to the input before rendering (so the output
is the effect of the augmented input).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .errors import DatagenConfigError

AUG_NAMES = ("mix", "gain", "polarity", "noise", "zero_samples", "zero_block")


@dataclass(frozen=True)
class Augmentations:
    """Probabilities (0..1) and ranges of the augmentations; all probabilities 0 disables them."""

    p_mix: float = 0.25
    mix_gain_db: tuple[float, float] = (-12.0, 0.0)
    p_gain: float = 0.5
    gain_db: tuple[float, float] = (-12.0, 6.0)
    p_polarity: float = 0.5
    p_noise: float = 0.2
    noise_dbfs: tuple[float, float] = (-80.0, -40.0)
    p_zero_samples: float = 0.1
    zero_samples_fraction: tuple[float, float] = (0.001, 0.02)
    p_zero_block: float = 0.1
    zero_block_fraction: tuple[float, float] = (0.05, 0.25)

    def __post_init__(self) -> None:
        for k, v in asdict(self).items():
            if k.startswith("p_") and not 0.0 <= v <= 1.0:
                raise DatagenConfigError(f"augmentation probability {k} = {v} is outside [0, 1]")
            if isinstance(v, tuple) and not v[0] <= v[1]:
                raise DatagenConfigError(f"augmentation range {k} = {v} needs low <= high")

    @classmethod
    def none(cls) -> Augmentations:
        """Every augmentation off (``--no-augment``): the input is the source patch as read."""
        return cls(p_mix=0.0, p_gain=0.0, p_polarity=0.0, p_noise=0.0, p_zero_samples=0.0, p_zero_block=0.0)

    @classmethod
    def from_json(cls, d: dict) -> Augmentations:
        """Read :meth:`to_json`'s form (lists back to tuples).

        Raises:
            DatagenConfigError: a probability outside [0, 1] or a range with low > high.
        """
        kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**kwargs)

    def to_json(self) -> dict:
        """The JSON form stored in ``config.json`` (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def augment(x: np.ndarray, rng: np.random.Generator, aug: Augmentations,
            second_clip: Callable[[], np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply the augmentations to float32 ``[channels, samples]``.

    A fixed number of draws is taken per augmentation whether it fires or not, so
    changing one probability does not shift the others' random streams.

    Returns ``(augmented, applied uint8 [6], values float32 [6])`` in ``AUG_NAMES`` order.
    """
    x = x.astype(np.float32, copy=True)
    n = x.shape[1]
    applied = np.zeros(len(AUG_NAMES), dtype=np.uint8)
    values = np.zeros(len(AUG_NAMES), dtype=np.float32)
    fire = rng.random(len(AUG_NAMES))
    u = rng.random(len(AUG_NAMES))
    if fire[0] < aug.p_mix:
        g = aug.mix_gain_db[0] + u[0] * (aug.mix_gain_db[1] - aug.mix_gain_db[0])
        x += second_clip() * np.float32(10 ** (g / 20))
        applied[0], values[0] = 1, g
    if fire[1] < aug.p_gain:
        g = aug.gain_db[0] + u[1] * (aug.gain_db[1] - aug.gain_db[0])
        x *= np.float32(10 ** (g / 20))
        applied[1], values[1] = 1, g
    if fire[2] < aug.p_polarity:
        x = -x
        applied[2], values[2] = 1, 1.0
    noise_rng = np.random.default_rng(rng.integers(0, 2**63))
    if fire[3] < aug.p_noise:
        level = aug.noise_dbfs[0] + u[3] * (aug.noise_dbfs[1] - aug.noise_dbfs[0])
        x += (noise_rng.standard_normal(x.shape) * 10 ** (level / 20)).astype(np.float32)
        applied[3], values[3] = 1, level
    mask_rng = np.random.default_rng(rng.integers(0, 2**63))
    if fire[4] < aug.p_zero_samples:
        frac = aug.zero_samples_fraction[0] + u[4] * (aug.zero_samples_fraction[1] - aug.zero_samples_fraction[0])
        x[:, mask_rng.random(n) < frac] = 0.0
        applied[4], values[4] = 1, frac
    if fire[5] < aug.p_zero_block:
        frac = aug.zero_block_fraction[0] + u[5] * (aug.zero_block_fraction[1] - aug.zero_block_fraction[0])
        length = max(1, int(frac * n))
        start = int(mask_rng.integers(0, max(1, n - length + 1)))
        x[:, start:start + length] = 0.0
        applied[5], values[5] = 1, frac
    return x, applied, values
