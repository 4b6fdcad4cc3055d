"""``mixbridge train master-unet``: the command of the seed's mel U-Net baseline (:mod:`.master_unet`), torch-free.

The parser is built without importing torch (``mixbridge --help`` never does, tests/test_imports.py) from the
train commands' shared options (:func:`mixbridge.models.cli.add_training_options`) plus ``--ship``; the
command imports :mod:`.master_unet` (torch) when it runs.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .cli import add_training_options, training_kwargs, training_result

#: The shipped weights, ``models/masterers/unet.{json,safetensors}`` (without suffix).
SHIPPED = Path(__file__).resolve().parent / "masterers" / "unet"

__all__ = ["SHIPPED", "add_unet_command"]


def add_unet_command(tsub) -> None:
    """``mixbridge train master-unet --data DIR -o RUN_DIR [--config] [--resume] [--max-minutes] ... [--ship]``."""
    m = tsub.add_parser(
        "master-unet", help="train the seed's mel U-Net mastering baseline on a pre-master dataset",
        description=("Train the mel U-Net (Khoo's demastering design, Griffin-Lim reconstruction) on DIR "
                     "(mixbridge datagen premaster): its train split for training, its val split for validation "
                     "(by album). CONFIG (YAML or TOML) holds train_unet keyword arguments; see "
                     "models/configs/master_unet.yaml. Checkpoints (last, best) and log.csv go to RUN_DIR; --ship "
                     "copies best to models/masterers/unet.*."))
    add_training_options(m, data_metavar="DIR", data_help="a pre-master dataset (mixbridge datagen premaster)")
    m.add_argument("--ship", metavar="DEST", nargs="?", const=str(SHIPPED), default=None,
                   help="after training, copy the best checkpoint to DEST (default models/masterers/unet)")
    m.set_defaults(func=_train_unet_cli, command="train master-unet")


def _train_unet_cli(args: argparse.Namespace) -> int:
    from .master_unet import load_unet_config, ship_unet, train_unet

    s = train_unet(args.data, args.output, **training_kwargs(args, load_unet_config))
    print(training_result(s, loss=" dB"))
    if args.ship:
        print(f"shipped {ship_unet(args.output, args.ship)}")
    return 0
