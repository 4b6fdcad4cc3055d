"""``mixbridge train master``: the command line of the learned mastering model's training, torch-free.

:func:`add_master_command` adds the ``master`` subcommand to ``mixbridge train`` (``models/cli.py``);
running it calls :func:`mixbridge.models.training.mastering.train_master` (which imports torch, lazily
here, so that ``mixbridge --help`` does not). Its options and result line are the train commands' shared ones
(:func:`mixbridge.models.cli.add_training_options`). Only the standard library and the torch-free
:mod:`mixbridge.models.cli` are imported at module level (STYLE.md point 12).
"""
from __future__ import annotations

from .cli import add_training_options, training_kwargs, training_result

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
    add_training_options(m, data_help="a pre-master dataset (mixbridge datagen premaster)")
    m.set_defaults(func=_train_master, command="train master")


def _train_master(args) -> int:
    from .training.mastering import load_master_config, train_master

    s = train_master(args.data, args.output, **training_kwargs(args, load_master_config))
    print(training_result(s))
    return 0
