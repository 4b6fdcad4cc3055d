"""``mixbridge train dmc-full``: the command line of dmc-full's training, torch-free.

:func:`add_dmc_full_command` adds the ``dmc-full`` subcommand to ``mixbridge train`` (``models/cli.py``):
``mixbridge train dmc-full --data COMPOSER_DATASET [--config CONFIG] -o RUN_DIR [--resume] [--device cpu|cuda]
[--max-minutes M] [--max-steps N] [--threads T] [--compressor-proxy PROXY.json] [--init-from CHECKPOINT.json]
[-q]``. Running it calls
:func:`mixbridge.models.training.dmc_full.train_dmc_full` (torch, imported when it runs). Its options and
result line are the train commands' shared ones (:func:`mixbridge.models.cli.add_training_options`).
"""
from __future__ import annotations

from .cli import add_training_options, training_kwargs, training_result

__all__ = ["add_dmc_full_command"]


def add_dmc_full_command(tsub) -> None:
    """Add ``train dmc-full`` to the ``train`` subparsers ``tsub``."""
    m = tsub.add_parser(
        "dmc-full", help="train dmc-full (stems + reference -> the whole console) on a composer dataset",
        description=("Train dmc-full (Diff-MST's method 1) on DATASET (mixbridge datagen composer): per excerpt "
                     "and epoch a random full-strip session is rendered by the torch console on crop B (the "
                     "reference the network reads) and crop A (the target); train split for training, val split "
                     "for selection (by song). CONFIG (YAML or TOML) holds train_dmc_full keyword arguments; see "
                     "models/configs/full_dmc.yaml. Checkpoints (last, best) and log.csv go to RUN_DIR; ship "
                     "best.json/.safetensors as models/mixers/dmc_full.*."))
    add_training_options(m, data_help="a composer dataset (mixbridge datagen composer)")
    m.add_argument("--compressor-proxy", default=None, metavar="PROXY.json",
                   help=("proxy in the loop: render the strips' compressor through this grey-box compressor proxy "
                         "(mixbridge train proxy) of the plugin the mixes will be rendered with"))
    m.add_argument("--init-from", default=None, metavar="CHECKPOINT.json",
                   help="start from this dmc-full checkpoint's weights (e.g. models/mixers/dmc_full.json)")
    m.set_defaults(func=_train_dmc_full, command="train dmc-full")


def _train_dmc_full(args) -> int:
    from .training.dmc_full import load_dmc_full_config, train_dmc_full

    s = train_dmc_full(args.data, args.output, **training_kwargs(
        args, load_dmc_full_config, compressor_proxy=args.compressor_proxy, init_from=args.init_from))
    print(training_result(s))
    return 0
