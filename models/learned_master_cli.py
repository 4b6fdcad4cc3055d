"""``mixbridge train master``: the command line of the learned mastering model's training, torch-free.

:func:`add_master_command` adds the ``master`` subcommand to ``mixbridge train`` (``models/cli.py``);
running it calls :func:`mixbridge.models.training.mastering.train_master` (which imports torch, lazily
here, so that ``mixbridge --help`` does not). Only the standard library and
:mod:`mixbridge.cli_options` are imported at module level (STYLE.md point 12).
"""
from __future__ import annotations

from mixbridge.cli_options import add_output, add_quiet

__all__ = ["add_master_command"]


def add_master_command(tsub) -> None:
    """Add ``train master`` to the ``train`` subparsers ``tsub``."""
    m = tsub.add_parser(
        "master", help="train the learned mastering model on pre-master pairs",
        description=("Train the learned mastering model (features -> master chain) on DATASET (mixbridge datagen "
                     "premaster): its train split for training, its val split for validation (by album). CONFIG "
                     "(YAML or TOML) holds train_master keyword arguments; see models/configs/master.yaml. "
                     "Checkpoints (last, best) and log.csv go to RUN_DIR; ship best.json/.safetensors as "
                     "models/masterers/learned.*."))
    m.add_argument("--data", required=True, metavar="DATASET",
                   help="a pre-master dataset (mixbridge datagen premaster)")
    m.add_argument("--config", metavar="CONFIG", help="YAML/TOML training config (default: built-in defaults, "
                   "or the run's own config with --resume)")
    add_output(m, metavar="RUN_DIR", help="the run folder (checkpoints, log.csv, train_config.json)")
    m.add_argument("--resume", action="store_true", help="continue RUN_DIR from its last checkpoint")
    m.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: the config's, else cpu")
    m.add_argument("--max-minutes", type=float, default=None, help="wall-clock budget of this call")
    m.add_argument("--max-steps", type=int, default=None, help="stop after this many optimizer steps in all")
    m.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: the config's, 1)")
    add_quiet(m, help="no progress bars or per-epoch lines (the result line stays)")
    m.set_defaults(func=_train_master, command="train master")


def _train_master(args) -> int:
    from .training.mastering import load_master_config, train_master
    from .training.trainer import saved_recipe

    kwargs = load_master_config(args.config) if args.config else {}
    if args.resume and not args.config:
        kwargs = saved_recipe(args.output)
    for key, value in (("device", args.device), ("max_minutes", args.max_minutes), ("max_steps", args.max_steps),
                       ("num_threads", args.threads)):
        if value is not None:
            kwargs[key] = value
    kwargs["progress"] = not args.quiet
    kwargs["resume"] = args.resume
    s = train_master(args.data, args.output, **kwargs)
    print(f"stopped ({s['stopped']}) after epoch {s['epoch']}, step {s['step']}, {s['examples']} examples, "
          f"{s['train_seconds']:.0f} s of training ({s['examples_per_s']:.2f} examples/s); best validation "
          f"loss {s['best_val_loss']:.4f}; best checkpoint {s['best']}")
    return 0
