"""``mixbridge train master-unet``: the command of the seed's mel U-Net baseline (:mod:`.master_unet`), torch-free.

The parser is built without importing torch (``mixbridge --help`` never does, tests/test_imports.py); the
command imports :mod:`.master_unet` (torch) when it runs.
"""
from __future__ import annotations

import argparse
from pathlib import Path

#: The shipped weights, ``models/masterers/unet.{json,safetensors}`` (without suffix).
SHIPPED = Path(__file__).resolve().parent / "masterers" / "unet"

__all__ = ["SHIPPED", "add_unet_command"]


def add_unet_command(tsub) -> None:
    """``mixbridge train master-unet --data DIR -o RUN_DIR [--config] [--resume] [--max-minutes] ... [--ship]``."""
    from mixbridge.cli_options import add_output, add_quiet

    m = tsub.add_parser(
        "master-unet", help="train the seed's mel U-Net mastering baseline on a pre-master dataset",
        description=("Train the mel U-Net (Khoo's demastering design, Griffin-Lim reconstruction) on DIR "
                     "(mixbridge datagen premaster): its train split for training, its val split for validation "
                     "(by album). CONFIG (YAML or TOML) holds train_unet keyword arguments; see "
                     "models/configs/master_unet.yaml. Checkpoints (last, best) and log.csv go to RUN_DIR; --ship "
                     "copies best to models/masterers/unet.*."))
    m.add_argument("--data", required=True, metavar="DIR", help="a pre-master dataset (mixbridge datagen premaster)")
    m.add_argument("--config", metavar="CONFIG", help="YAML/TOML training config (default: built-in defaults, "
                   "or the run's own config with --resume)")
    add_output(m, metavar="RUN_DIR", help="the run folder (checkpoints, log.csv, train_config.json)")
    m.add_argument("--resume", action="store_true", help="continue RUN_DIR from its last checkpoint")
    m.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: the config's, else cpu")
    m.add_argument("--max-minutes", type=float, default=None, help="wall-clock budget of this call")
    m.add_argument("--max-steps", type=int, default=None, help="stop after this many optimizer steps in all")
    m.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: the config's, 1)")
    m.add_argument("--ship", metavar="DEST", nargs="?", const=str(SHIPPED), default=None,
                   help="after training, copy the best checkpoint to DEST (default models/masterers/unet)")
    add_quiet(m, help="no progress bars or per-epoch lines (the result line stays)")
    m.set_defaults(func=_train_unet_cli, command="train master-unet")


def _train_unet_cli(args: argparse.Namespace) -> int:
    from .master_unet import load_unet_config, ship_unet, train_unet
    from .training import saved_recipe

    kwargs = load_unet_config(args.config) if args.config else {}
    if args.resume and not args.config:
        kwargs = saved_recipe(args.output)
    for key, value in (("device", args.device), ("max_minutes", args.max_minutes), ("max_steps", args.max_steps),
                       ("num_threads", args.threads)):
        if value is not None:
            kwargs[key] = value
    kwargs["progress"] = not args.quiet
    kwargs["resume"] = args.resume
    s = train_unet(args.data, args.output, **kwargs)
    print(f"stopped ({s['stopped']}) after epoch {s['epoch']}, step {s['step']}, {s['examples']} examples, "
          f"{s['train_seconds']:.0f} s of training ({s['examples_per_s']:.2f} examples/s); best validation "
          f"loss {s['best_val_loss']:.4f} dB; best checkpoint {s['best']}")
    if args.ship:
        print(f"shipped {ship_unet(args.output, args.ship)}")
    return 0
