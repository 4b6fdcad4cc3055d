"""A torch ``Dataset`` over mixbridge datasets (effect pairs, demastering pairs, random mixes).

Random access by example: shards are memory-mapped (:func:`~mixbridge.plugins.datagen.shards.shard_memmaps`),
so an item reads only its own bytes and any number of DataLoader workers can
share a dataset. Each item is a dict of tensors:

=================  ===========================  ======================================
key                shape                        meaning
=================  ===========================  ======================================
``input``          float32 [channels, samples]  effect ``input`` / demaster ``degraded`` /
                                                mixes ``stems`` [T, 2, samples] (if stored)
``target``         float32 [channels, samples]  effect ``output`` / demaster ``master`` /
                                                mixes ``mix``
``params``         float32 [P] (mixes: [T, P])  normalised 0..1 parameters (the schema's
                                                scale); mixes' NaN padding reads 0
``track_mask``     bool [T]                     mixes only: 1 for a real track
``master_params``  float32 [3]                  mixes only: the reverb bus, normalised 0..1
``index``          int64 []                     the example's index in the dataset
=================  ===========================  ======================================

``patch_samples`` crops input and target at the same offset: random per item
(seeded by ``(seed, epoch, index)``; call :meth:`MixbridgeDataset.set_epoch`) or
centred (``random_patch=False``). Failed examples recorded in the manifest are
not items. Only ``models`` imports torch; the data format itself needs numpy only.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from mixbridge.plugins.datagen.errors import DatagenConfigError
from mixbridge.plugins.datagen.format import Dataset as DatasetFolder
from mixbridge.plugins.datagen.format import inside
from mixbridge.plugins.datagen.shards import shard_memmaps

#: Which shard arrays feed ``input``, ``target`` and ``params`` for each dataset kind.
KEYS = {
    "effect": ("input", "output", "params_norm"),
    "demaster": ("degraded", "master", "params_norm"),
    "mixes": ("stems", "mix", "params_norm"),
    "premaster": ("pre", "master", "label_norm"),
}


class MixbridgeDataset(torch.utils.data.Dataset):
    """Items of a mixbridge dataset folder (see the module docstring).

    Args:
        root: the dataset folder.
        patch_samples: crop length in samples (None: whole examples).
        random_patch: random crop offsets (else centred).
        seed: seeds the crop offsets.

    Raises:
        DatasetFormatError: not a dataset.
        DatasetIntegrityError: the manifest names a shard outside the dataset folder (``../x.npz``,
            ``/etc/hostname``); nothing outside the folder is ever read.
        DatagenConfigError: ``patch_samples`` longer than the examples or not positive.
    """

    def __init__(self, root: str | Path, *, patch_samples: int | None = None, random_patch: bool = True,
                 seed: int = 0) -> None:
        folder = DatasetFolder.open(root)
        self.root = folder.root
        self.config = folder.config
        self.kind = self.config["kind"]
        if self.kind not in KEYS:
            raise DatagenConfigError(f"{root}: dataset kind {self.kind!r} has no loader; known: {', '.join(KEYS)}")
        self.sample_rate = int(self.config["sample_rate"])
        self.example_samples = int(self.config.get("patch_samples") or self.config["clip_samples"])
        if patch_samples is not None and not 0 < patch_samples <= self.example_samples:
            raise DatagenConfigError(f"patch_samples={patch_samples} must be in 1..{self.example_samples} "
                                     f"(the examples' length in {root})")
        self.patch_samples = patch_samples
        self.random_patch = random_patch
        self.seed = int(seed)
        self.epoch = 0
        self.param_names = list(self.config.get("param_names", []))
        self._items: list[tuple[str, int, int]] = []  # (shard path, row, example index)
        for rec in folder.example_records():
            folder.path(rec.shard)  # refuses a manifest naming a file outside the dataset folder
            for row, idx in enumerate(rec.indices):
                self._items.append((rec.shard, row, idx))
        self._items.sort(key=lambda t: t[2])
        self._maps: dict[str, dict[str, np.ndarray]] = {}

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers re-open their own memory maps
        state = dict(self.__dict__)
        state["_maps"] = {}
        return state

    def set_epoch(self, epoch: int) -> None:
        """Draw new random crop offsets (deterministic per epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        """The number of stored examples (failed ones are not items)."""
        return len(self._items)

    def _arrays(self, shard: str) -> dict[str, np.ndarray]:
        if shard not in self._maps:
            self._maps[shard] = shard_memmaps(inside(self.root, shard, "shard"))
        return self._maps[shard]

    def _offset(self, index: int) -> int:
        if self.patch_samples is None:
            return 0
        span = self.example_samples - self.patch_samples
        if not self.random_patch:
            return span // 2
        return int(np.random.default_rng([self.seed, self.epoch, index]).integers(0, span + 1))

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        """Item ``i`` (the ``i``-th stored example in index order) as a dict of tensors (module table)."""
        shard, row, index = self._items[i]
        arrays = self._arrays(shard)
        in_key, out_key, p_key = KEYS[self.kind]
        off = self._offset(index)
        stop = off + (self.patch_samples or self.example_samples)
        item: dict[str, torch.Tensor] = {"index": torch.tensor(index, dtype=torch.int64)}
        if in_key in arrays:
            item["input"] = torch.from_numpy(np.array(arrays[in_key][row, ..., off:stop], dtype=np.float32))
        item["target"] = torch.from_numpy(np.array(arrays[out_key][row, ..., off:stop], dtype=np.float32))
        item["params"] = torch.from_numpy(np.nan_to_num(np.array(arrays[p_key][row], dtype=np.float32)))
        if "track_mask" in arrays:
            item["track_mask"] = torch.from_numpy(np.array(arrays["track_mask"][row]).astype(bool))
        if "master_params_norm" in arrays:
            item["master_params"] = torch.from_numpy(np.array(arrays["master_params_norm"][row], dtype=np.float32))
        return item
