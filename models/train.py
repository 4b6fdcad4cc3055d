"""Training a neural proxy ``g(x, p) ~ f(x, p)``: the config, the library entry point, shipping.

:func:`train_proxy` is the library entry point behind ``mixbridge train proxy``: it runs
:class:`~mixbridge.models.training.ProxyTask` in a
:class:`~mixbridge.models.training.Trainer` (the run folder, budgets, checkpoints, log.csv,
resume and ``torchrun`` data parallelism are the trainer's). The recipe is the thesis's
(Steinmetz 2020, ch. 4; DESIGN.md §2): Adam at 3e-4, the learning rate halved when the
validation loss plateaus, early stopping, and the loss ``L1 + MR-STFT``
(:class:`~mixbridge.models.losses.ProxyLoss`). The dataset's last ``val_fraction`` of a
seeded permutation of example indices is the validation split (centre crops, never
trained on).

The keyword arguments of :func:`train_proxy` are the whole training config (STYLE.md
point 10); config files bind to them only in the CLI (:func:`load_train_config`), and a
resumed run reads its own (:func:`~mixbridge.models.training.saved_recipe`).
:func:`ship_proxy` copies a run's best checkpoint with its training summary for shipping.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from .training import TrainConfigError


def default_config() -> dict[str, Any]:
    """The training keyword arguments with their defaults (the recipe of :func:`train_proxy`)."""
    from .training.data import recipe_defaults

    return recipe_defaults(train_proxy)


def load_train_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML or TOML training config into :func:`train_proxy` keyword arguments
    (:func:`mixbridge.models.training.data.load_recipe`).

    Raises:
        TrainConfigError: unreadable file, unknown keys (the known ones are listed),
            or a key that is not a training argument.
    """
    from .training.data import load_recipe

    return load_recipe(path, train_proxy)


def train_proxy(data: str | Path, out_dir: str | Path, *,
                model: str = "tcn-rt",
                model_args: dict | None = None,
                batch_size: int = 4,
                patch_samples: int = 32768,
                val_fraction: float = 0.1,
                learning_rate: float = 3e-4,
                lr_factor: float = 0.5,
                lr_patience: int = 2,
                early_stop_patience: int = 6,
                max_epochs: int = 200,
                epoch_examples: int | None = None,
                l1_weight: float = 1.0,
                stft_weight: float = 1.0,
                esr_weight: float = 0.0,
                pre_emphasis: float = 0.0,
                warmup_samples: int = 0,
                seed: int = 0,
                num_threads: int = 1,
                max_minutes: float | None = None,
                max_steps: int | None = None,
                device: str = "cpu",
                init_from: str | None = None,
                resume: bool = False,
                progress: bool = True) -> dict:
    """Train a proxy of the effect in dataset ``data``; checkpoints and logs go to ``out_dir``.

    Under ``torchrun`` every process calls this with the same arguments and the run is
    data-parallel: ``batch_size`` examples per process and step (rank 0 writes the files).

    Args:
        data: a mixbridge ``effect`` dataset (``mixbridge datagen effect``); its
            processors, parameter names, sample rate and channels define the proxy.
        out_dir: the run folder (created; with ``resume`` it must hold ``last``).
        model: registry name (``tcn-rt``, ``tcn-10-causal``, ...); ``model_args``
            override its constructor arguments (not schema/sample_rate/channels).
        batch_size: examples per step.
        patch_samples: random crop length in samples (validation uses centre crops).
        val_fraction: share of examples held out for validation (seeded split).
        learning_rate: Adam's rate (3e-4, the thesis's); ``lr_factor`` and
            ``lr_patience`` (epochs) drive ``ReduceLROnPlateau`` on the validation loss.
        early_stop_patience: stop after this many epochs without a better validation loss.
        max_epochs: at most this many epochs; ``epoch_examples`` (default: the
            training split) is the number of examples between validations.
        l1_weight, stft_weight, esr_weight: loss weights of L1, MR-STFT and the ESR term.
        pre_emphasis: coefficient of the ESR term's first-order pre-emphasis (0 = none).
        warmup_samples: leading output samples left out of the loss.
        seed: initialisation, split, crop and shuffle seed.
        num_threads: torch CPU threads (``torch.set_num_threads``).
        max_minutes: wall-clock budget of this call; the run stops and saves ``last``.
        max_steps: total optimizer steps (over all resumptions) after which the run stops.
        device: ``cpu`` or ``cuda``.
        init_from: start a new run from this checkpoint's weights (e.g. a shipped proxy, to
            continue its training on a GPU); its constructor arguments must equal the
            config's model. The optimizer starts fresh.
        resume: continue from ``out_dir/last`` (weights, optimizer, scheduler, progress, log).
        progress: show tqdm progress bars.

    Returns:
        A summary dict: ``stopped`` (why), ``epoch``, ``step``, ``examples``,
        ``train_seconds``, ``best_val_loss``, ``best_val_esr``, ``examples_per_s`` and
        the checkpoint paths.

    Raises:
        TrainConfigError: a bad value, a dataset that is not an effect dataset, an
            existing run without ``resume``, ``resume`` without a run, a resumed run
            whose recipe differs (the keys are named), or CUDA asked for but absent.
        CheckpointError: a corrupted ``last`` checkpoint.
    """
    import torch

    from .training import ProxyTask, Trainer, distributed

    recipe = {k: v for k, v in locals().items() if k in default_config()}
    recipe["model_args"] = dict(model_args or {})
    if int(num_threads) != num_threads or num_threads < 1:
        raise TrainConfigError(f"num_threads = {num_threads!r} must be a positive integer")
    if int(patch_samples) != patch_samples or patch_samples < 1:
        raise TrainConfigError(f"patch_samples = {patch_samples!r} must be a positive integer")
    world = distributed.setup(device)
    torch.set_num_threads(int(num_threads))
    task = ProxyTask(data, model=model, model_args=model_args, patch_samples=patch_samples, l1_weight=l1_weight,
                     stft_weight=stft_weight, esr_weight=esr_weight, pre_emphasis=pre_emphasis,
                     warmup_samples=warmup_samples, seed=seed, device=world.device,
                     init_from=init_from, resume=resume)
    trainer = Trainer(task, out_dir, recipe=recipe, batch_size=batch_size, val_fraction=val_fraction, seed=seed,
                      epoch_examples=epoch_examples, learning_rate=learning_rate, lr_factor=lr_factor,
                      lr_patience=lr_patience, early_stop_patience=early_stop_patience, max_epochs=max_epochs,
                      max_steps=max_steps, max_minutes=max_minutes, resume=resume, progress=progress, world=world)
    return trainer.run()


def _run_summary(run_dir: Path) -> dict:
    with open(run_dir / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise TrainConfigError(f"{run_dir}: log.csv has no epoch yet")
    saved = json.loads((run_dir / "train_config.json").read_text())
    last = rows[-1]
    best = min(rows, key=lambda r: float(r["val_loss"]))
    return {"run": run_dir.name, "recipe": saved["recipe"], "epochs_logged": len(rows), "steps": int(last["step"]),
            "examples": int(last["examples"]), "train_seconds": float(last["train_seconds"]),
            "best_epoch": int(best["epoch"]), "best_val_loss": float(best["val_loss"]),
            "best_val_esr": float(best["val_esr"]), "final_lr": float(last["lr"])}


def ship_proxy(run_dir: str | Path, data: str | Path, dest: str | Path, *, description: str = "",
               earlier_runs: tuple = ()) -> Path:
    """Copy a run's best checkpoint to ``dest`` (``NAME.json`` + ``NAME.safetensors``) for shipping.

    The copy has no optimizer state (small), and its record's ``extra`` holds the
    training recipe, the dataset identity with its parameter distributions (the
    trained ranges :mod:`mixbridge.export.compare` flags against), and a training
    summary from ``log.csv`` (epochs, steps, examples, training seconds, best
    validation loss and ESR).

    ``earlier_runs`` are the run folders this run continued from (``init_from``),
    in order; their summaries are recorded as earlier ``phases``, and the totals
    (steps, examples, training seconds) count every phase.

    Raises:
        TrainConfigError: no best checkpoint or log in ``run_dir``.
        CheckpointError: a corrupted checkpoint.
    """
    from .checkpoint import load_checkpoint, save_checkpoint
    from .dataset import MixbridgeDataset
    from .training import dataset_identity

    run_dir = Path(run_dir)
    best, log_path = run_dir / "best.json", run_dir / "log.csv"
    if not best.exists() or not log_path.exists():
        raise TrainConfigError(f"{run_dir}: no best.json / log.csv; train first (mixbridge train proxy)")
    model, record = load_checkpoint(best)
    saved = json.loads((run_dir / "train_config.json").read_text())
    ds = MixbridgeDataset(data)
    identity = dataset_identity(ds)
    identity["root"] = Path(identity["root"]).name
    phases = [_run_summary(Path(r)) for r in earlier_runs] + [_run_summary(run_dir)]
    summary = {"steps": sum(p["steps"] for p in phases), "examples": sum(p["examples"] for p in phases),
               "train_seconds": sum(p["train_seconds"] for p in phases),
               "best_epoch": record["progress"].get("best_epoch"),
               "best_val_loss": record["progress"].get("best_val_loss"),
               "best_val_esr": record["progress"].get("best_val_esr"), "phases": phases}
    extra = {"train_config": saved["recipe"], "dataset": identity, "training": summary,
             "model_name": saved.get("model_name"), "description": description}
    return save_checkpoint(model, dest, model_name=record.get("model_name"), progress=record["progress"], extra=extra)
