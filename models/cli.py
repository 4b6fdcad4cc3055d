"""``mixbridge train proxy|mixer``: thin CLI over :mod:`.train` and :mod:`.training.mixing`
(``compare`` is in :mod:`mixbridge.export.cli`).

``mixbridge train proxy --data DATASET --config CONFIG -o RUN_DIR [--resume]
[--device cpu|cuda] [--max-minutes M] [--max-steps N] [-q]`` binds a YAML/TOML config
to :func:`mixbridge.models.train.train_proxy` keyword arguments; with ``--resume`` and
no ``--config`` the run's own recipe is used
(:func:`mixbridge.models.training.saved_recipe`). Under ``torchrun`` the same command
trains data-parallel and rank 0 prints the result.

``mixbridge train mixer --data DATASET --config CONFIG -o RUN_DIR [--resume] [--device cpu|cuda]
[--max-minutes M] [--max-steps N] [--threads T] [-q]`` trains the DMC mixer on a composer dataset
(:func:`mixbridge.models.training.mixing.train_mixer`), with the same run folder. ``train prior``
comes from :mod:`.prior_mixer` when it defines ``add_prior_command``. Only the standard library is
imported at module level (STYLE.md point 12).
"""
from __future__ import annotations

from mixbridge.cli_options import add_output, add_quiet


def register(sub) -> None:
    """Add ``train`` (with ``train proxy``, ``train mixer`` and, when defined, ``train prior``) to ``sub``."""
    t = sub.add_parser("train", help="train models (proxy: a neural proxy of an effect; mixer: the DMC mixer)")
    tsub = t.add_subparsers(dest="train_command", metavar="WHAT")
    p = tsub.add_parser(
        "proxy", help="train a TCN proxy of the effect in an effect dataset",
        description=("Train a proxy g(x, p) ~ f(x, p) on DATASET (mixbridge datagen effect). CONFIG (YAML or "
                     "TOML) holds train_proxy keyword arguments (model, model_args, batch_size, ...); see "
                     "models/configs/. Checkpoints (last, best) and log.csv go to RUN_DIR. Under torchrun "
                     "(torchrun --nproc_per_node N $(which mixbridge) train proxy ...) the run is data-parallel: "
                     "batch_size examples per process and step."))
    p.add_argument("--data", required=True, metavar="DATASET", help="an effect dataset (mixbridge datagen effect)")
    p.add_argument("--config", metavar="CONFIG", help="YAML/TOML training config (default: built-in defaults, "
                   "or the run's own config with --resume)")
    add_output(p, metavar="RUN_DIR", help="the run folder (checkpoints, log.csv, train_config.json)")
    p.add_argument("--resume", action="store_true", help="continue RUN_DIR from its last checkpoint")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: the config's, else cpu")
    p.add_argument("--max-minutes", type=float, default=None, help="wall-clock budget of this call")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many optimizer steps in all")
    p.add_argument("--max-epochs", type=int, default=None, help="override the config's max_epochs")
    p.add_argument("--init", metavar="CHECKPOINT", default=None,
                   help="start from this checkpoint's weights (e.g. a shipped proxy), fresh optimizer")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op CPU threads of each process (default: the config's, 1)")
    add_quiet(p, help="no progress bars or per-epoch lines (the result line stays)")
    p.set_defaults(func=_train_proxy, command="train proxy")
    _add_mixer_command(tsub)
    try:  # numpy-only; defined by the prior mixer's module when it ships its training command
        from .prior_mixer import add_prior_command
    except ImportError:
        pass
    else:
        add_prior_command(tsub)
    # mastering: the learned model, the rules model's target spectrum, the seed's mel U-Net baseline
    # (each parser module is torch-free; the handlers import torch when they run)
    from mixbridge.plugins.master_rules_cli import add_rules_command

    from .learned_master_cli import add_master_command
    from .master_unet_cli import add_unet_command

    add_master_command(tsub)
    add_rules_command(tsub)
    add_unet_command(tsub)
    t.set_defaults(func=lambda args: (t.print_help(), 2)[1])


def _add_mixer_command(tsub) -> None:
    m = tsub.add_parser(
        "mixer", help="train the DMC mixer (gain and pan) on a composer dataset",
        description=("Train the differentiable-mixing-console network on DATASET (mixbridge datagen composer): "
                     "its train split for training, its val split for validation (by song). CONFIG (YAML or TOML) "
                     "holds train_mixer keyword arguments; see models/configs/dmc.yaml. Checkpoints (last, best) "
                     "and log.csv go to RUN_DIR; ship best.json/.safetensors as models/mixers/dmc.*."))
    m.add_argument("--data", required=True, metavar="DATASET", help="a composer dataset (mixbridge datagen composer)")
    m.add_argument("--config", metavar="CONFIG", help="YAML/TOML training config (default: built-in defaults, "
                   "or the run's own config with --resume)")
    add_output(m, metavar="RUN_DIR", help="the run folder (checkpoints, log.csv, train_config.json)")
    m.add_argument("--resume", action="store_true", help="continue RUN_DIR from its last checkpoint")
    m.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: the config's, else cpu")
    m.add_argument("--max-minutes", type=float, default=None, help="wall-clock budget of this call")
    m.add_argument("--max-steps", type=int, default=None, help="stop after this many optimizer steps in all")
    m.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: the config's, 1)")
    add_quiet(m, help="no progress bars or per-epoch lines (the result line stays)")
    m.set_defaults(func=_train_mixer, command="train mixer")


def _train_mixer(args) -> int:
    from .training import saved_recipe
    from .training.mixing import load_mixer_config, train_mixer

    kwargs = load_mixer_config(args.config) if args.config else {}
    if args.resume and not args.config:
        kwargs = saved_recipe(args.output)
    for key, value in (("device", args.device), ("max_minutes", args.max_minutes), ("max_steps", args.max_steps),
                       ("num_threads", args.threads)):
        if value is not None:
            kwargs[key] = value
    kwargs["progress"] = not args.quiet
    kwargs["resume"] = args.resume
    s = train_mixer(args.data, args.output, **kwargs)
    print(f"stopped ({s['stopped']}) after epoch {s['epoch']}, step {s['step']}, {s['examples']} examples, "
          f"{s['train_seconds']:.0f} s of training ({s['examples_per_s']:.2f} examples/s); best validation "
          f"loss {s['best_val_loss']:.4f}; best checkpoint {s['best']}")
    return 0


def _train_proxy(args) -> int:
    import os

    from .train import load_train_config, train_proxy
    from .training import saved_recipe

    kwargs = load_train_config(args.config) if args.config else {}
    if args.resume and not args.config:
        kwargs = saved_recipe(args.output)
    for key, value in (("device", args.device), ("max_minutes", args.max_minutes), ("max_steps", args.max_steps),
                       ("max_epochs", args.max_epochs), ("num_threads", args.threads),
                        ("init_from", args.init)):
        if value is not None:
            kwargs[key] = value
    kwargs["progress"] = not args.quiet
    kwargs["resume"] = args.resume
    s = train_proxy(args.data, args.output, **kwargs)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    esr = "n/a" if s["best_val_esr"] is None else f"{s['best_val_esr']:.4f}"
    print(f"stopped ({s['stopped']}) after epoch {s['epoch']}, step {s['step']}, {s['examples']} examples, "
          f"{s['train_seconds']:.0f} s of training ({s['examples_per_s']:.2f} examples/s); best validation "
          f"loss {s['best_val_loss']:.4f}, ESR {esr}; best checkpoint {s['best']}")
    return 0
