"""``mixbridge train proxy`` and ``mixbridge compare``: thin CLI over :mod:`.train` and :mod:`.compare`.

``mixbridge train proxy --data DATASET --config CONFIG -o RUN_DIR [--resume]
[--device cpu|cuda] [--max-minutes M] [--max-steps N]`` binds a YAML/TOML config
to :func:`mixbridge.models.train.train_proxy` keyword arguments.
``mixbridge compare --plugin MAP_OR_BUILTIN --proxy CHECKPOINT_OR_ARTIFACT
[--input AUDIO] [--params FILE | --random N] -o REPORT_DIR`` calls
:func:`mixbridge.models.compare.compare_proxy`. Only the standard library is
imported at module level (STYLE.md point 12).
"""
from __future__ import annotations

import argparse


def register(sub) -> None:
    t = sub.add_parser("train", help="train models (proxy: a neural proxy of an effect)")
    tsub = t.add_subparsers(dest="train_command", metavar="WHAT")
    p = tsub.add_parser(
        "proxy", help="train a TCN proxy of the effect in an effect dataset",
        description=("Train a proxy g(x, p) ~ f(x, p) on DATASET (mixbridge datagen effect). CONFIG (YAML or "
                     "TOML) holds train_proxy keyword arguments (model, model_args, batch_size, ...); see "
                     "models/configs/. Checkpoints (last, best) and log.csv go to RUN_DIR."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", required=True, metavar="DATASET")
    p.add_argument("--config", metavar="CONFIG", help="YAML/TOML training config (default: built-in defaults, "
                   "or the run's own config with --resume)")
    p.add_argument("-o", "--out", required=True, metavar="RUN_DIR")
    p.add_argument("--resume", action="store_true", help="continue RUN_DIR from its last checkpoint")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: the config's, else cpu")
    p.add_argument("--max-minutes", type=float, default=None, help="wall-clock budget of this call")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many optimizer steps in all")
    p.add_argument("--max-epochs", type=int, default=None, help="override the config's max_epochs")
    p.add_argument("--init", metavar="CHECKPOINT", default=None,
                   help="start from this checkpoint's weights (e.g. a shipped proxy), fresh optimizer")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: the config's, 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_train_proxy, command="train proxy")
    t.set_defaults(func=lambda args: (t.print_help(), 2)[1])

    c = sub.add_parser(
        "compare", help="compare a proxy with the real plugin it imitates (metrics, plots, report)",
        description=("Render the same inputs and parameters through the real plugin (a plugin map name or "
                     "JSON, or a builtin chain such as compressor or eq,compressor) and the proxy (a "
                     "checkpoint or an exported artifact); write REPORT_DIR/report.md with metrics overall "
                     "and per parameter region, spectrograms, and static transfer curves."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    c.add_argument("--plugin", required=True, action="append", metavar="MAP_OR_BUILTIN",
                   help="plugin map name/JSON (repeat for a chain) or builtin processors (eq,compressor)")
    c.add_argument("--proxy", required=True, metavar="CHECKPOINT_OR_ARTIFACT")
    c.add_argument("--input", metavar="AUDIO", help="an audio file or folder (default: the demo's held-out song)")
    g = c.add_mutually_exclusive_group()
    g.add_argument("--params", metavar="FILE", help="JSON: a list of {\"processor.param\": real value} dicts")
    g.add_argument("--random", type=int, default=None, metavar="N",
                   help="N parameter sets drawn uniformly over the proxy's trained ranges (default 32)")
    c.add_argument("--patch-s", type=float, default=1.48, help="patch length in seconds")
    c.add_argument("--seed", type=int, default=0, help="seed of the patches and random parameters")
    c.add_argument("--sample-rate", type=int, default=None,
                   help="refuse a proxy trained at another rate (default: render at the proxy's rate)")
    c.add_argument("--no-curves", action="store_true", help="skip the static transfer curves")
    c.add_argument("--bins", type=int, default=3, help="regions per parameter in the per-region table")
    c.add_argument("-o", "--out", required=True, metavar="REPORT_DIR")
    c.set_defaults(func=_compare, command="compare")


def _train_proxy(args) -> int:
    from .train import load_train_config, train_proxy

    kwargs = load_train_config(args.config) if args.config else {}
    if args.resume and not args.config:
        import json
        from pathlib import Path

        saved = Path(args.out) / "train_config.json"
        if saved.exists():
            kwargs = {k: v for k, v in json.loads(saved.read_text())["recipe"].items() if k != "resume"}
    for key, value in (("device", args.device), ("max_minutes", args.max_minutes), ("max_steps", args.max_steps),
                       ("max_epochs", args.max_epochs), ("num_threads", args.threads),
                        ("init_from", args.init)):
        if value is not None:
            kwargs[key] = value
    kwargs["progress"] = not args.no_progress
    kwargs["resume"] = args.resume
    s = train_proxy(args.data, args.out, **kwargs)
    esr = "n/a" if s["best_val_esr"] is None else f"{s['best_val_esr']:.4f}"
    print(f"stopped ({s['stopped']}) after epoch {s['epoch']}, step {s['step']}, {s['examples']} examples, "
          f"{s['train_seconds']:.0f} s of training ({s['examples_per_s']:.2f} examples/s); best validation "
          f"loss {s['best_val_loss']:.4f}, ESR {esr}; best checkpoint {s['best']}")
    return 0


def _compare(args) -> int:
    from .compare import compare_proxy

    summary = compare_proxy(args.plugin, args.proxy, args.out, input_path=args.input, params_file=args.params,
                            n_random=args.random, patch_s=args.patch_s, seed=args.seed, bins=args.bins,
                            sample_rate=args.sample_rate, curves=not args.no_curves,
                            echo=print)
    return 0 if summary is not None else 1
