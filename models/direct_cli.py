"""``mixbridge train dae`` and ``mixbridge train mixwaveunet``: the direct mixers' training commands, torch-free.

The parsers are built from the train commands' shared options
(:func:`mixbridge.models.cli.add_training_options`) plus ``--ship [DEST]``; the handlers import
:mod:`mixbridge.models.training.direct` (torch) when they run. ``add_direct_commands(tsub)`` adds both
to the ``train`` subparsers (called by :func:`mixbridge.models.cli.register`).
"""
from __future__ import annotations

import argparse

from .cli import add_training_options, training_kwargs, training_result
from .direct_mixers import MIXERS_DIR

__all__ = ["add_direct_commands"]

_COMMANDS = {
    "dae": ("train the deep-autoencoder direct mixer (dae) on a composer dataset",
            "Train the dae direct mixer (Martinez-Ramirez and Reiss 2017: magnitude frames per instrument group "
            "through 3 hidden layers of 1024) on DATASET (mixbridge datagen composer): its train split for training, "
            "its val split for validation (by song). CONFIG holds train_dae keyword arguments; see "
            "models/configs/dae.yaml. --ship copies the best checkpoint to models/mixers/dae.*."),
    "mixwaveunet": ("train the Mix-Wave-U-Net direct mixer (mixwaveunet) on a composer dataset",
                    "Train the mixwaveunet direct mixer (Martinez-Ramirez, Stoller and Moffat 2021: a multichannel "
                    "Wave-U-Net from 8 role slots to the stereo mix) on DATASET (mixbridge datagen composer): its "
                    "train split for training, its val split for validation (by song). CONFIG holds "
                    "train_mixwaveunet keyword arguments; see models/configs/mixwaveunet.yaml. --ship copies the "
                    "best checkpoint to models/mixers/mixwaveunet.*."),
}


def add_direct_commands(tsub) -> None:
    """``mixbridge train dae|mixwaveunet --data DIR -o RUN_DIR [--config] [--resume] ... [--ship [DEST]]``."""
    for name, (help_text, description) in _COMMANDS.items():
        m = tsub.add_parser(name, help=help_text, description=description)
        add_training_options(m, data_help="a composer dataset (mixbridge datagen composer)")
        m.add_argument("--ship", metavar="DEST", nargs="?", const=str(MIXERS_DIR / name), default=None,
                       help=f"after training, copy the best checkpoint to DEST (default models/mixers/{name})")
        m.set_defaults(func=_train_direct, command=f"train {name}", direct_model=name)


#: Shipped weight precision per model: the dae (5.3 M weights, the paper's layer sizes) ships as float16.
SHIPPED_DTYPE = {"dae": "float16"}


def _train_direct(args: argparse.Namespace) -> int:
    from .training import direct
    from .training.mixing import ship_mixer

    name = args.direct_model
    train = getattr(direct, f"train_{name}")
    load = getattr(direct, f"load_{name}_config")
    s = train(args.data, args.output, **training_kwargs(args, load))
    print(training_result(s))
    if args.ship:
        dest = ship_mixer(args.output, args.ship, description=f"the {name} direct mixer",
                          weights_dtype=SHIPPED_DTYPE.get(name))
        print(f"shipped {dest}")
    return 0
