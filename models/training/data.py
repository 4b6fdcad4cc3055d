"""Seeded data order for the trainer: the train/validation split, each epoch's example order, its batches.

Everything is a pure function of ``(seed, epoch)``, so a resumed or data-parallel run draws
exactly what an uninterrupted single-process run draws:

* :func:`split_indices`: the last ``val_fraction`` of a permutation seeded by ``[seed, 7919]``
  is the validation split;
* :func:`epoch_order`: ``n`` training positions from back-to-back permutations of the
  training split seeded by ``[seed, 104729, epoch]``;
* :func:`global_batches` and :func:`shard_batches`: global batches of ``batch_size * world_size``
  consecutive positions, rank ``r`` taking every ``world_size``-th one from ``r`` (with one
  process: the plain batches).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mixbridge.errors import MixbridgeError


class TrainConfigError(ValueError, MixbridgeError):
    """A training config or run folder that cannot be used (the message names the key and the fix)."""


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """``(train, val)`` positions of a seeded permutation of ``range(n)``; at least one of each when n >= 2.

    Raises:
        TrainConfigError: ``val_fraction`` outside [0, 0.5] or fewer than 2 examples.
    """
    if not 0.0 <= val_fraction <= 0.5:
        raise TrainConfigError(f"val_fraction = {val_fraction} must be in 0..0.5")
    if n < 2:
        raise TrainConfigError(f"the dataset has {n} example(s); training needs at least 2 (one for validation)")
    perm = np.random.default_rng([int(seed), 7919]).permutation(n)
    n_val = max(1, round(n * val_fraction))
    return sorted(perm[n_val:].tolist()), sorted(perm[:n_val].tolist())


def epoch_order(train: Sequence[int], n: int, seed: int, epoch: int) -> list[int]:
    """The first ``n`` positions of back-to-back permutations of ``train``, seeded by ``(seed, epoch)``."""
    rng = np.random.default_rng([seed, 104729, epoch])
    order: list[int] = []
    while len(order) < n:
        order.extend(np.asarray(train)[rng.permutation(len(train))].tolist())
    return order[:n]


def global_batches(order: Sequence[int], batch_size: int, world_size: int = 1) -> list[list[int]]:
    """``order`` cut into global batches of ``batch_size * world_size`` consecutive positions.

    A last batch with fewer positions than ``world_size`` is dropped (every rank must take
    part in every step). With ``world_size == 1``: ``order`` cut into batches of ``batch_size``.
    """
    size = batch_size * world_size
    chunks = [list(order[i:i + size]) for i in range(0, len(order), size)]
    return [c for c in chunks if len(c) >= world_size]


def shard_batches(order: Sequence[int], batch_size: int, rank: int = 0, world_size: int = 1) -> list[list[int]]:
    """Rank ``rank``'s share of each of :func:`global_batches`: every ``world_size``-th position from ``rank``."""
    return [c[rank::world_size] for c in global_batches(order, batch_size, world_size)]


def recipe_defaults(entry: Callable[..., Any]) -> dict[str, Any]:
    """The keyword-only arguments of a training entry point (``train_proxy``, ``train_mixer``) with
    their defaults: the whole recipe (STYLE.md point 10)."""
    import inspect

    sig = inspect.signature(entry)
    return {k: p.default for k, p in sig.parameters.items() if p.kind is p.KEYWORD_ONLY}


def load_recipe(path: str | Path, entry: Callable[..., Any]) -> dict[str, Any]:
    """Read a YAML or TOML training config into keyword arguments of ``entry`` (``description`` dropped).

    Raises:
        TrainConfigError: an unreadable or invalid file, a file that is not a mapping, or keys that
            are not arguments of ``entry`` (the known ones are listed).
    """
    import tomllib

    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise TrainConfigError(f"{path}: cannot read the training config ({e})") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else (yaml.safe_load(text) or {})
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as e:
        raise TrainConfigError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'YAML'} ({e})") from None
    if not isinstance(data, dict):
        raise TrainConfigError(f"{path}: a training config is a mapping of {entry.__name__} arguments")
    known = recipe_defaults(entry)
    unknown = sorted(set(data) - set(known) - {"description"})
    if unknown:
        raise TrainConfigError(f"{path}: unknown training keys {unknown}; known: {', '.join(sorted(known))}")
    data.pop("description", None)
    return data
