"""The reusable trainer: tasks, seeded data order, budgets, checkpoints, CSV logs, resume, DDP.

* :mod:`.trainer`: :class:`Trainer` (the loop, budgets, checkpoints, log.csv, resume) and
  the :class:`Task` protocol (``step(batch) -> losses``, ``validate(batches) -> figures``);
* :mod:`.data`: the seeded split, epoch order and per-rank batches;
* :mod:`.distributed`: the ``torchrun`` process group (gloo on CPU, nccl on CUDA);
* :mod:`.proxy`: :class:`ProxyTask`, a neural proxy of an effect dataset (the first task).
"""
from .data import TrainConfigError, epoch_order, global_batches, shard_batches, split_indices
from .distributed import World, setup
from .proxy import ProxyTask, align_target, build_model_from_config, dataset_identity
from .trainer import RESUMABLE_KEYS, Task, Trainer, saved_recipe

__all__ = ["RESUMABLE_KEYS", "ProxyTask", "Task", "TrainConfigError", "Trainer", "World", "align_target",
           "build_model_from_config", "dataset_identity", "epoch_order", "global_batches", "saved_recipe", "setup",
           "shard_batches", "split_indices"]
