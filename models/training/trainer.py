"""The trainer: a task's model, Adam with plateau halving, budgets, checkpoints, a CSV log, resume.

A :class:`Trainer` runs any object that follows :class:`Task` (proxy training is
:class:`~mixbridge.models.training.proxy.ProxyTask`; learned mixing and mastering plug in
as more tasks). The recipe is the thesis's (Steinmetz 2020, ch. 4): Adam, the learning
rate multiplied by ``lr_factor`` after ``lr_patience`` epochs without a better validation
loss (``ReduceLROnPlateau``), early stopping after ``early_stop_patience`` such epochs.

A run folder holds::

    RUN_DIR/train_config.json     {"recipe": ..., "dataset": the task's identity, "model_name": ...}
    RUN_DIR/last.json|.safetensors|.optim.safetensors   after every epoch (resumable)
    RUN_DIR/best.json|.safetensors                      the lowest validation loss so far
    RUN_DIR/log.csv               one row per epoch (:meth:`Trainer.log_fields`)

Budgets: ``max_epochs``, ``max_steps`` (optimizer steps over all resumptions) and
``max_minutes`` (wall clock of this call). A budget that ends an epoch early saves ``last``
with that epoch not counted, so a resumed run redoes it from its start. Resuming restores
weights, optimizer, scheduler and progress (:mod:`mixbridge.models.checkpoint`) and draws
the same data (:mod:`.data`), so it repeats the uninterrupted run's arithmetic exactly.

Under ``torchrun`` the same trainer runs data-parallel (:mod:`.distributed`): each rank
trains on its share of every global batch of ``batch_size * world_size`` examples, DDP
averages the gradients (equally, also for a last global batch that does not split evenly),
every rank validates the whole validation split with rank 0's buffers, and only rank 0
writes files.
"""
from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch

from . import distributed
from .data import TrainConfigError, epoch_order, global_batches, split_indices

#: Keys of train_config.json's recipe that may differ when a run is resumed (budgets, not the recipe).
RESUMABLE_KEYS = ("max_epochs", "max_minutes", "max_steps", "device", "progress", "early_stop_patience",
                  "num_threads", "init_from", "resume")
#: The log columns every task shares, before the task's training and validation columns.
LOG_HEAD = ("epoch", "step", "examples", "train_seconds", "lr")
LOG_TAIL = ("examples_per_s", "best")


class Task(Protocol):
    """What the trainer needs from a task (duck-typed; see :class:`~.proxy.ProxyTask`).

    Attributes:
        model: the ``torch.nn.Module`` trained and checkpointed (with ``config()``,
            ``schema`` ... as :func:`~mixbridge.models.checkpoint.save_checkpoint` needs).
        forward_model: what :meth:`step` calls for the forward pass; the trainer sets it
            to the DDP wrapper of ``model`` under ``torchrun`` (else it is ``model``).
        model_name: the registry name recorded in checkpoints (or None).
        identity: a JSON-able description of the data, compared on resume (``root`` excepted).
        train_data, val_data: map-style datasets (``len``, ``[i]``; ``set_epoch(e)`` if any).
        train_keys, val_keys: the names :meth:`step` and :meth:`validate` return, ``"loss"`` first.
    """

    model: torch.nn.Module
    forward_model: Any
    model_name: str | None
    identity: dict
    train_data: Any
    val_data: Any
    train_keys: Sequence[str]
    val_keys: Sequence[str]

    def collate(self, items: list) -> Any:
        """A batch (on the task's device) from a list of dataset items."""

    def step(self, batch: Any) -> dict[str, torch.Tensor]:
        """Training forward pass: ``{"loss": scalar tensor with gradients, ...}`` (no backward)."""

    def validate(self, batches: Iterable[Any]) -> dict[str, float]:
        """Validation figures over all ``batches`` (model in eval mode, no gradients): ``{"loss": ...}``."""


class Trainer:
    """Train ``task`` into run folder ``out_dir`` (see the module docstring).

    Args:
        task: a :class:`Task`.
        out_dir: the run folder (created; with ``resume`` it must hold ``last``).
        recipe: the JSON-able training config, saved and compared on resume (keys outside
            :data:`RESUMABLE_KEYS` must match).
        batch_size: examples per step and process.
        val_fraction, seed: the seeded split and data order (:mod:`.data`).
        epoch_examples: examples between validations (default: the training split).
        learning_rate, lr_factor, lr_patience: Adam and ``ReduceLROnPlateau`` (epochs).
        early_stop_patience: stop after this many epochs without improvement (0: never).
        max_epochs, max_steps, max_minutes: budgets.
        resume: continue from ``out_dir/last``.
        progress: tqdm bars and one line per epoch (rank 0 only).
        world: this process's place (:func:`.distributed.setup`; default: alone on CPU).

    Raises:
        TrainConfigError: a bad value, an existing run without ``resume``, ``resume``
            without a run, or a resumed run whose recipe or data differ (the keys are named).
    """

    def __init__(self, task: Task, out_dir: str | Path, *, recipe: dict, batch_size: int = 4,
                 val_fraction: float = 0.1, seed: int = 0, epoch_examples: int | None = None,
                 learning_rate: float = 3e-4, lr_factor: float = 0.5, lr_patience: int = 2,
                 early_stop_patience: int = 6, max_epochs: int = 200, max_steps: int | None = None,
                 max_minutes: float | None = None, resume: bool = False, progress: bool = True,
                 world: distributed.World | None = None) -> None:
        for key, value in (("batch_size", batch_size), ("max_epochs", max_epochs), ("lr_patience", lr_patience),
                           ("early_stop_patience", early_stop_patience)):
            if int(value) != value or value < (0 if key.endswith("patience") else 1):
                raise TrainConfigError(f"{key} = {value!r} must be a positive integer")
        if not learning_rate > 0 or not 0 < lr_factor < 1:
            raise TrainConfigError(f"learning_rate = {learning_rate} must be > 0 and lr_factor = {lr_factor} in (0, 1)")
        self.task, self.out_dir, self.recipe = task, Path(out_dir), dict(recipe)
        self.batch_size, self.seed = int(batch_size), int(seed)
        self.max_epochs, self.max_steps, self.max_minutes = int(max_epochs), max_steps, max_minutes
        self.early_stop_patience = int(early_stop_patience)
        self.resume, self.progress = bool(resume), bool(progress)
        self.world = world or distributed.World()
        self.train_idx, self.val_idx = split_indices(len(task.train_data), val_fraction, seed)
        self.per_epoch = int(epoch_examples or len(self.train_idx))
        self._check_run_folder()
        task.model.to(self.world.device)
        self.optimizer = torch.optim.Adam(task.model.parameters(), lr=learning_rate)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, mode="min", factor=lr_factor,
                                                                    patience=lr_patience)
        self.state: dict[str, Any] = {"epoch": 0, "step": 0, "examples": 0, "train_seconds": 0.0,
                                      "best_val_loss": math.inf, "best_val_esr": None, "bad_epochs": 0,
                                      "best_epoch": None}
        task.forward_model = task.model
        if self.world.distributed:
            task.forward_model = torch.nn.parallel.DistributedDataParallel(task.model)

    # --- run folder ---
    @property
    def log_fields(self) -> tuple[str, ...]:
        """The columns of log.csv: :data:`LOG_HEAD`, ``train_*``, ``val_*``, :data:`LOG_TAIL`."""
        return (LOG_HEAD + tuple(f"train_{k}" for k in self.task.train_keys)
                + tuple(f"val_{k}" for k in self.task.val_keys) + LOG_TAIL)

    def _check_run_folder(self) -> None:
        config_path, last = self.out_dir / "train_config.json", self.out_dir / "last.json"
        if not self.resume:
            if last.exists():
                raise TrainConfigError(f"{self.out_dir}: already holds a run (last.json); pass --resume to continue "
                                       "it, or choose another output folder")
            return
        if not last.exists() or not config_path.exists():
            raise TrainConfigError(f"{self.out_dir}: nothing to resume (no last.json / train_config.json); "
                                   "drop --resume to start a new run")
        saved = json.loads(config_path.read_text())
        diff = sorted(k for k in set(saved["recipe"]) | set(self.recipe)
                      if k not in RESUMABLE_KEYS and saved["recipe"].get(k) != self.recipe.get(k))
        if diff:
            raise TrainConfigError(f"{self.out_dir}: the run was started with other values for {diff}; "
                                   "resume with the same config (only budgets such as max_minutes may change)")
        identity = self.task.identity
        ident_diff = sorted(k for k in identity if k != "root" and k in saved["dataset"]
                            and saved["dataset"][k] != identity[k])
        if ident_diff:
            raise TrainConfigError(f"{identity.get('root')}: not the dataset this run was trained on "
                                   f"(differs in {ident_diff})")

    def _start(self) -> None:
        from ..checkpoint import load_checkpoint, load_training_state

        model = self.task.model
        if self.resume:
            last = self.out_dir / "last.json"
            loaded, _ = load_checkpoint(last, expect_param_names=getattr(model, "param_names", None),
                                        expect_sample_rate=getattr(model, "sample_rate", None))
            model.load_state_dict(loaded.state_dict())
            self.state.update(load_training_state(last, self.optimizer, self.scheduler))
            if self.state.get("best_val_loss") is None:
                self.state["best_val_loss"] = math.inf
        elif self.world.main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            record = {"recipe": self.recipe, "dataset": self.task.identity, "model_name": self.task.model_name}
            (self.out_dir / "train_config.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        log_path = self.out_dir / "log.csv"
        if self.world.main and not log_path.exists():
            with open(log_path, "w", newline="") as f:
                csv.writer(f).writerow(self.log_fields)

    def _checkpoint(self, name: str, training_state: bool) -> Path:
        from ..checkpoint import save_checkpoint

        extra = {"train_config": self.recipe, "dataset": self.task.identity, "model_name": self.task.model_name}
        return save_checkpoint(self.task.model, self.out_dir / name, model_name=self.task.model_name,
                               progress=dict(self.state), extra=extra,
                               optimizer=self.optimizer if training_state else None,
                               scheduler=self.scheduler if training_state else None)

    # --- data ---
    def _validate(self) -> dict[str, float]:
        task, model = self.task, self.task.model
        distributed.broadcast_buffers(self.world, model)
        model.eval()
        with torch.no_grad():
            val = task.validate(task.collate([task.val_data[j] for j in positions])
                                for positions in global_batches(self.val_idx, self.batch_size))
        model.train()
        return val

    # --- the loop ---
    def run(self) -> dict:
        """Train until a budget or early stopping ends the run; returns a summary dict.

        The summary: ``stopped`` (``max_epochs``, ``max_steps``, ``max_minutes``,
        ``early_stopping``), ``epoch``, ``step``, ``examples``, ``train_seconds``,
        ``best_val_loss``, ``best_val_esr`` (when the task reports ``esr``),
        ``examples_per_s`` and the ``best`` and ``last`` checkpoint paths.

        Raises:
            TrainConfigError: a non-finite training loss (the step is named).
            CheckpointError: a corrupted ``last`` checkpoint on resume.
        """
        from tqdm import tqdm

        self._start()
        task, state, world = self.task, self.state, self.world
        show = self.progress and world.main
        t_call = time.monotonic()
        stopped = None
        task.model.train()
        while stopped is None:
            if state["epoch"] >= self.max_epochs:
                stopped = "max_epochs"
                break
            if self.early_stop_patience and state["bad_epochs"] >= self.early_stop_patience:
                stopped = "early_stopping"
                break
            for data in (task.train_data, task.val_data):
                if hasattr(data, "set_epoch"):
                    data.set_epoch(state["epoch"])
            order = epoch_order(self.train_idx, self.per_epoch, self.seed, state["epoch"])
            chunks = global_batches(order, self.batch_size, world.size)
            planned = sum(len(c) for c in chunks)
            sums = dict.fromkeys(task.train_keys, 0.0)
            seen = 0
            t0 = time.monotonic()
            bar = tqdm(total=planned, desc=f"epoch {state['epoch'] + 1}", unit="ex", disable=not show, leave=False)
            for chunk in chunks:
                positions = chunk[world.rank::world.size]
                b, b_all = len(positions), len(chunk)
                losses = task.step(task.collate([task.train_data[j] for j in positions]))
                loss = losses["loss"]
                if distributed.any_true(world, not bool(torch.isfinite(loss))):
                    raise TrainConfigError(f"training diverged at step {state['step']} (loss {loss.item()}); "
                                           "lower learning_rate or check the dataset for NaN")
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                state["step"] += 1
                state["examples"] += b_all
                seen += b_all
                for k in task.train_keys:
                    sums[k] += losses[k].item() * b
                bar.update(b_all)
                bar.set_postfix(loss=f"{loss.item():.4f}")
                timed_out = self.max_minutes is not None and time.monotonic() - t_call > 60.0 * self.max_minutes
                if distributed.any_true(world, timed_out):
                    stopped = "max_minutes"
                    break
                if self.max_steps is not None and state["step"] >= self.max_steps:
                    stopped = "max_steps"
                    break
            bar.close()
            dt = time.monotonic() - t0
            state["train_seconds"] += dt
            if seen == 0:
                break
            if world.distributed:
                sums = dict(zip(task.train_keys, distributed.sum_floats(world, [sums[k] for k in task.train_keys])))
            self._end_epoch(sums, seen, planned, dt, show)
        distributed.barrier(world)
        return {"stopped": stopped, "epoch": state["epoch"], "step": state["step"], "examples": state["examples"],
                "train_seconds": state["train_seconds"], "best_val_loss": state["best_val_loss"],
                "best_val_esr": state["best_val_esr"],
                "examples_per_s": state["examples"] / max(state["train_seconds"], 1e-9),
                "best": str(self.out_dir / "best.json"), "last": str(self.out_dir / "last.json")}

    def _end_epoch(self, sums: dict[str, float], seen: int, planned: int, dt: float, show: bool) -> None:
        from tqdm import tqdm

        state = self.state
        val = self._validate()
        state["epoch"] += 1 if seen == planned else 0  # a cut-short epoch is not counted (resume redoes it)
        improved = val["loss"] < state["best_val_loss"]
        if improved:
            state.update(best_val_loss=val["loss"], best_val_esr=val.get("esr"), bad_epochs=0,
                         best_epoch=state["epoch"])
        else:
            state["bad_epochs"] += 1
        self.scheduler.step(val["loss"])
        if self.world.main:
            if improved:
                self._checkpoint("best", training_state=False)
            self._checkpoint("last", training_state=True)
        row = {"epoch": state["epoch"], "step": state["step"], "examples": state["examples"],
               "train_seconds": round(state["train_seconds"], 2), "lr": self.optimizer.param_groups[0]["lr"],
               **{f"train_{k}": v / seen for k, v in sums.items()}, **{f"val_{k}": val[k] for k in self.task.val_keys},
               "examples_per_s": round(seen / max(dt, 1e-9), 3), "best": int(improved)}
        if self.world.main:
            with open(self.out_dir / "log.csv", "a", newline="") as f:
                csv.writer(f).writerow([row[k] for k in self.log_fields])
        if show:
            figures = ", ".join(f"{k} {val[k]:.5g}" for k in self.task.val_keys if k != "loss")
            tqdm.write(f"epoch {state['epoch']}: train {row['train_loss']:.4f} val {val['loss']:.4f} ({figures}) "
                       f"lr {row['lr']:.2e} {row['examples_per_s']:.2f} ex/s{' *' if improved else ''}")


def example_weighted_means(batches: Iterable, losses, keys: Sequence[str], batch_size) -> dict[str, float]:
    """Means of ``losses(batch)[k]`` for each ``k`` in ``keys`` over ``batches``, each batch weighted by its
    example count ``batch_size(batch)`` (so a short last batch counts for what it holds), computed under
    ``torch.no_grad()``: the body of a task's ``validate`` when its figures are its loss terms.
    Empty ``batches`` give zeros."""
    sums = dict.fromkeys(keys, 0.0)
    n = 0
    for batch in batches:
        with torch.no_grad():
            out = losses(batch)
        b = int(batch_size(batch))
        for k in sums:
            sums[k] += float(out[k]) * b
        n += b
    return {k: v / max(n, 1) for k, v in sums.items()}


def saved_recipe(run_dir: str | Path) -> dict:
    """The recipe a run folder was started with (train_config.json), without ``resume``; {} if there is none."""
    path = Path(run_dir) / "train_config.json"
    if not path.exists():
        return {}
    return {k: v for k, v in json.loads(path.read_text())["recipe"].items() if k != "resume"}
