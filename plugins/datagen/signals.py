"""Synthetic test signals that teach (and test) dynamics: ``mixbridge datagen signals``.

A compressor proxy trained on music alone never sees a level held long enough to measure
its static curve, nor a step long enough to show its attack and release: the first
round's proxies learned a fixed gain. This set spans levels from :data:`LEVEL_RANGE_DB`
(-50..0 dBFS) with the signal kinds the issue names, each file ``SECONDS`` long, mono,
float WAV:

* ``steps`` -- a sine (50 Hz..5 kHz, log-uniform) whose level steps every 0.1..1.0 s to a
  new uniform level: static curve, attack and release;
* ``sweep`` -- an exponential sine sweep 30 Hz..16 kHz whose level ramps linearly in dB
  between two uniform levels: frequency-dependent level detection and EQ;
* ``bursts`` -- pink-noise bursts of 10..600 ms at uniform levels, separated by gaps of
  5..800 ms at -90 dBFS: onset (attack) and decay (release) on broadband sound;
* ``drums`` -- synthetic kick (pitch-dropping sine), snare (noise plus tone) and hat
  (high-passed noise) hits with exponential decays on a random grid at 70..180 BPM, each
  hit at its own level: transients as music has them.

Each file ``i`` of kind ``k`` draws from ``numpy.random.default_rng((seed, kind index, i))``,
so a set is reproducible and a held-out set is the same command with another seed. Files
are written atomically (:func:`mixbridge.audio.write_audio`); rerunning over a complete set
rewrites nothing.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from scipy.signal import butter, sosfilt

from mixbridge.atomic import atomic_write_text
from mixbridge.audio import write_audio
from mixbridge.errors import ParamRangeError

from ..contract_measures import pink_noise

#: Levels the signals span, dBFS (peak of the sine / RMS-normalised noise peak).
LEVEL_RANGE_DB = (-50.0, 0.0)
#: The kinds, in the order of their seed index.
KINDS = ("steps", "sweep", "bursts", "drums")
#: The floor between bursts, dBFS (not digital silence: a detector sees a level).
GAP_LEVEL_DB = -90.0


def _db(v: float | np.ndarray) -> float | np.ndarray:
    return 10.0 ** (np.asarray(v) / 20.0)


def steps(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """A sine with level steps every 0.1..1.0 s (``[n]`` float64)."""
    freq = math.exp(rng.uniform(math.log(50.0), math.log(5000.0)))
    env = np.empty(n)
    pos = 0
    while pos < n:
        length = int(rng.uniform(0.1, 1.0) * sr)
        env[pos:pos + length] = _db(rng.uniform(*LEVEL_RANGE_DB))
        pos += length
    return env * np.sin(2 * np.pi * freq * np.arange(n) / sr + rng.uniform(0, 2 * np.pi))


def sweep(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """An exponential sweep 30 Hz..16 kHz with a linear-in-dB level ramp (``[n]`` float64)."""
    t = np.arange(n) / sr
    dur = n / sr
    f0, f1 = 30.0, 16000.0
    k = math.log(f1 / f0)
    phase = 2 * np.pi * f0 * dur / k * (np.exp(t / dur * k) - 1.0)
    a, b = rng.uniform(*LEVEL_RANGE_DB, size=2)
    return _db(a + (b - a) * t / dur) * np.sin(phase)


def bursts(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Pink-noise bursts (10..600 ms) at uniform levels with gaps (5..800 ms) at the floor (``[n]`` float64)."""
    noise = pink_noise(1, n, int(rng.integers(2 ** 31)))[0].astype(np.float64)
    noise /= max(float(np.max(np.abs(noise))), 1e-12)
    env = np.full(n, _db(GAP_LEVEL_DB))
    pos = int(rng.uniform(0.005, 0.2) * sr)
    while pos < n:
        length = int(rng.uniform(0.01, 0.6) * sr)
        env[pos:pos + length] = _db(rng.uniform(*LEVEL_RANGE_DB))
        pos += length + int(rng.uniform(0.005, 0.8) * sr)
    return env * noise


def drums(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Synthetic kick, snare and hat hits on a 16th-note grid at 70..180 BPM (``[n]`` float64)."""
    out = np.zeros(n)
    step = int(60.0 / rng.uniform(70.0, 180.0) / 4.0 * sr)
    hat_sos = butter(2, 7000.0, "highpass", fs=sr, output="sos")
    for start in range(0, n, step):
        hit = rng.choice(4, p=(0.25, 0.2, 0.35, 0.2))  # kick, snare, hat, rest
        if hit == 3:
            continue
        length = min(int((0.4 if hit == 0 else 0.25 if hit == 1 else 0.08) * sr), n - start)
        t = np.arange(length) / sr
        if hit == 0:
            f = 50.0 + 100.0 * np.exp(-t / 0.03)
            sig = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / 0.15)
        elif hit == 1:
            sig = (0.6 * rng.standard_normal(length) + 0.5 * np.sin(2 * np.pi * 190.0 * t)) * np.exp(-t / 0.06)
        else:
            sig = sosfilt(hat_sos, rng.standard_normal(length)) * np.exp(-t / 0.02)
        peak = max(float(np.max(np.abs(sig))), 1e-12)
        out[start:start + length] += sig / peak * _db(rng.uniform(*LEVEL_RANGE_DB))
    return out


GENERATORS = {"steps": steps, "sweep": sweep, "bursts": bursts, "drums": drums}


def write_signals(out_dir: str | Path, *, per_kind: int = 40, seconds: float = 4.0, seed: int = 0,
                  sample_rate: int = 44100) -> list[Path]:
    """Write ``per_kind`` files of each kind in :data:`KINDS` to ``out_dir/KIND/KIND_III.wav``.

    Returns the paths (existing complete files are kept). A ``signals.json`` records the settings;
    a folder made with other settings is refused.

    Raises:
        ParamRangeError: ``per_kind`` < 1, ``seconds`` outside 0.5..600, a sample rate outside
            8000..192000 Hz, or a folder holding a set made with other settings (named).
    """
    if int(per_kind) != per_kind or per_kind < 1:
        raise ParamRangeError(f"per_kind = {per_kind!r} must be a positive integer")
    if not 0.5 <= seconds <= 600.0:
        raise ParamRangeError(f"seconds = {seconds} must be within 0.5..600 s")
    if not 8000 <= sample_rate <= 192000:
        raise ParamRangeError(f"sample_rate = {sample_rate} Hz must be within 8000..192000 Hz")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"kind": "dynamics_signals", "per_kind": int(per_kind), "seconds": float(seconds), "seed": int(seed),
                "sample_rate": int(sample_rate), "levels_dbfs": list(LEVEL_RANGE_DB), "kinds": list(KINDS)}
    record = out / "signals.json"
    if record.exists():
        old = json.loads(record.read_text())
        if old != settings:
            diff = sorted(k for k in settings if old.get(k) != settings[k])
            raise ParamRangeError(f"{out}: holds signals made with other settings ({', '.join(diff)}); "
                                  "use another folder or remove it")
    else:
        atomic_write_text(record, json.dumps(settings, indent=1) + "\n")
    n = int(round(seconds * sample_rate))
    paths = []
    for ki, kind in enumerate(KINDS):
        for i in range(per_kind):
            path = out / kind / f"{kind}_{i:03d}.wav"
            paths.append(path)
            if path.exists():
                continue
            sig = GENERATORS[kind](np.random.default_rng((int(seed), ki, i)), n, sample_rate)
            write_audio(path, np.clip(sig, -1.0, 1.0)[None, :].astype(np.float32), sample_rate)
    return paths


def link_composer_stems(out_dir: str | Path, composer_root: str | Path, split: str = "train") -> list[Path]:
    """Hard-link (or copy, across file systems) the stems of the composer dataset's ``split`` into
    ``out_dir/stems/EXCERPT/`` so a proxy's source folder holds real music of those songs only.

    Returns the linked paths (existing ones kept).

    Raises:
        ComposerDatasetError: an incomplete composer dataset or an unknown split.
    """
    import os
    import shutil

    from .composer.reader import read_composer_dataset

    ds = read_composer_dataset(composer_root)
    out = Path(out_dir) / "stems"
    paths = []
    for ex in ds.split(split):
        for src in sorted(Path(ex.stems_dir).glob("*.wav")):
            dst = out / ex.id / src.name
            paths.append(dst)
            if dst.exists():
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src, dst)
            except OSError:
                shutil.copyfile(src, dst)
    return paths
