"""What ``compare`` feeds both sides: audio patches (from files or the built-in test programme)
and parameter sets (from a JSON file, or drawn within the proxy's trained ranges).
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mixbridge.errors import ParamRangeError
from mixbridge.proxy_schema import schema_params

from .loading import CompareError


def test_programme(sample_rate: int, seconds: float = 12.0, seed: int = 0) -> np.ndarray:
    """The default input: mono float32 ``[1, samples]`` of level-stepped pink-ish noise bursts
    and decaying tones (-40..-3 dBFS peaks), deterministic for ``seed``."""
    rng = np.random.default_rng([seed, 31337])
    n = int(seconds * sample_rate)
    out = np.zeros(n, np.float32)
    t = np.arange(n) / sample_rate
    pos = 0
    while pos < n:
        length = int(rng.uniform(0.08, 0.7) * sample_rate)
        level = 10 ** (rng.uniform(-40, -3) / 20)
        seg = np.arange(min(length, n - pos))
        if rng.random() < 0.5:
            noise = np.cumsum(rng.standard_normal(seg.size)) * 0.02
            noise = noise - np.convolve(noise, np.ones(64) / 64, mode="same") + rng.standard_normal(seg.size) * 0.3
            burst = noise / (np.max(np.abs(noise)) + 1e-9)
        else:
            f = rng.uniform(50, 2000)
            burst = np.sin(2 * np.pi * f * t[pos:pos + seg.size])
        env = np.exp(-seg / (rng.uniform(0.03, 0.4) * sample_rate))
        out[pos:pos + seg.size] += (level * burst * env).astype(np.float32)
        pos += seg.size + int(rng.uniform(0.0, 0.15) * sample_rate)
    return out[None, :]


def draw_patches(input_path: str | None, n: int, patch_samples: int, sample_rate: int, channels: int,
                 seed: int, echo: Callable[[str], None]) -> tuple[np.ndarray, list[str], list[str]]:
    """``n`` patches ``[n, channels, patch_samples]`` from ``input_path`` (file or folder), or from
    :func:`test_programme`; returns ``(patches, where, notices)``.

    Raises:
        AudioInputError: missing or unreadable audio (from :class:`SourceSet`).
    """
    notices: list[str] = []
    rng = np.random.default_rng([seed, 2718])
    if input_path is None:
        prog = test_programme(sample_rate, seed=seed)
        if channels > 1:
            prog = np.repeat(prog, channels, axis=0)
        starts = rng.integers(0, prog.shape[1] - patch_samples, size=n)
        return (np.stack([prog[:, s:s + patch_samples] for s in starts]),
                [f"test programme @ {s / sample_rate:.2f} s" for s in starts], notices)
    from mixbridge.plugins.datagen.sources import SourceSet

    src = SourceSet(input_path, hash_files=False)
    other = sorted({f.sample_rate for f in src.files if f.sample_rate != sample_rate})
    if other:
        msg = (f"notice: {sum(f.sample_rate != sample_rate for f in src.files)} input file(s) at "
               f"{', '.join(map(str, other))} Hz resampled to the proxy's {sample_rate} Hz")
        notices.append(msg)
        echo(msg)
    patches, where = [], []
    for _ in range(n):
        x, w = src.draw(rng, patch_samples, sample_rate, channels)
        patches.append(x)
        where.append(f"{w['file']} @ {w['start_s']:.2f} s")
    src.close()
    return np.stack(patches).astype(np.float32), where, notices


def read_params_file(path: str | Path, entries: Sequence[str]) -> list[np.ndarray]:
    """Parameter sets from JSON (a list of flat ``{"processor.param": value}`` or nested
    ``{"processor": {"param": value}}`` dicts in real units) as normalised vectors.

    Raises:
        CompareError: unreadable JSON, not a list of objects, or an unknown parameter name.
        ParamRangeError: a value outside its schema range (named, with the range and unit).
    """
    params = schema_params(entries)
    index = {n: i for i, (n, _) in enumerate(params)}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CompareError(f"--params {path}: cannot read the JSON ({e})") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not data or not all(isinstance(d, dict) for d in data):
        raise CompareError(f"--params {path}: expected a non-empty list of {{\"processor.param\": value}} objects")
    out = []
    for k, d in enumerate(data):
        vec = np.array([p.to_normalised(p.default) for _, p in params])
        flat: dict[str, Any] = {}
        for key, value in d.items():
            flat.update({f"{key}.{a}": b for a, b in value.items()} if isinstance(value, dict) else {key: value})
        for key, value in flat.items():
            if key not in index:
                raise CompareError(f"--params {path} set {k}: unknown parameter '{key}'; known: {', '.join(index)}")
            p = params[index[key]][1]
            if not isinstance(value, (int, float)) or not math.isfinite(value) or not p.min <= value <= p.max:
                raise ParamRangeError(f"--params {path} set {k}: {key} = {value!r} is outside {p.range_text()}; "
                                      "give a value inside the schema range")
            vec[index[key]] = p.to_normalised(float(value))
        out.append(vec)
    return out


def random_params(n: int, names: Sequence[str], entries: Sequence[str], ranges: dict[str, tuple[float, float]],
                  seed: int) -> list[np.ndarray]:
    """``n`` normalised vectors, uniform within each parameter's trained normalised range."""
    rng = np.random.default_rng([seed, 1618])
    lo = np.array([ranges[nm][0] for nm in names])
    hi = np.array([ranges[nm][1] for nm in names])
    return [lo + (hi - lo) * rng.random(len(names)) for _ in range(n)]


def nested_real(vec: np.ndarray, entries: Sequence[str]) -> tuple[dict, dict]:
    """Normalised vector -> (``{processor: {param: real}}``, ``{"processor.param": real}``)."""
    nested: dict[str, dict[str, float]] = {}
    flat = {}
    for v, (name, p) in zip(vec, schema_params(entries)):
        real = p.from_normalised(float(min(max(v, 0.0), 1.0)))
        proc, _, pn = name.partition(".")
        nested.setdefault(proc, {})[pn] = real
        flat[name] = real
    return nested, flat
