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

Every ``train`` command that runs the trainer (proxy, mixer, master, master-unet) spells its common options,
reads them back and prints its result line through the one set of helpers here: :func:`add_training_options`,
:func:`training_kwargs` and :func:`training_result`.
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
    add_training_options(p, data_help="an effect dataset (mixbridge datagen effect)",
                         threads_help="torch intra-op CPU threads of each process (default: the config's, 1)")
    p.add_argument("--max-epochs", type=int, default=None, help="override the config's max_epochs")
    p.add_argument("--init", metavar="CHECKPOINT", default=None,
                   help="start from this checkpoint's weights (e.g. a shipped proxy), fresh optimizer")
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

    from .deepmixing_cli import add_deepmixing_command
    from .direct_cli import add_direct_commands
    from .dmc_full_cli import add_dmc_full_command
    from .learned_master_cli import add_master_command
    from .master_unet_cli import add_unet_command

    add_master_command(tsub)
    add_rules_command(tsub)
    add_unet_command(tsub)
    add_deepmixing_command(tsub)
    add_direct_commands(tsub)
    add_dmc_full_command(tsub)
    t.set_defaults(func=lambda args: (t.print_help(), 2)[1])


#: ``--threads`` help of the train commands that run one process.
THREADS_HELP = "torch CPU threads (default: the config's, 1)"
#: ``-q`` help of every train command that runs the trainer.
QUIET_HELP = "no progress bars or per-epoch lines (the result line stays)"


def add_training_options(parser, *, data_help: str, data_metavar: str = "DATASET",
                         threads_help: str = THREADS_HELP) -> None:
    """Add the options every trainer-run ``mixbridge train`` command spells alike to ``parser``.

    ``--data DATASET`` (required; ``data_metavar``, ``data_help``), ``--config CONFIG``, ``-o/--output RUN_DIR``
    (:func:`mixbridge.cli_options.add_output`), ``--resume``, ``--device cpu|cuda``, ``--max-minutes M``,
    ``--max-steps N``, ``--threads T`` (``threads_help``) and ``-q/--quiet``
    (:func:`mixbridge.cli_options.add_quiet`); every default is ``None`` (the config's or the function's
    applies) but ``--resume``/``-q`` (False). :func:`training_kwargs` reads them back.
    """
    parser.add_argument("--data", required=True, metavar=data_metavar, help=data_help)
    parser.add_argument("--config", metavar="CONFIG", help="YAML/TOML training config (default: built-in defaults, "
                        "or the run's own config with --resume)")
    add_output(parser, metavar="RUN_DIR", help="the run folder (checkpoints, log.csv, train_config.json)")
    parser.add_argument("--resume", action="store_true", help="continue RUN_DIR from its last checkpoint")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: the config's, else cpu")
    parser.add_argument("--max-minutes", type=float, default=None, help="wall-clock budget of this call")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many optimizer steps in all")
    parser.add_argument("--threads", type=int, default=None, help=threads_help)
    add_quiet(parser, help=QUIET_HELP)


def training_kwargs(args, load_config, **more) -> dict:
    """The keyword arguments of a ``train_*`` call from :func:`add_training_options`'s parsed ``args``.

    The config file's (``load_config(args.config)``), or with ``--resume`` and no ``--config`` the run's own
    recipe (:func:`mixbridge.models.training.trainer.saved_recipe`), then ``device``, ``max_minutes``,
    ``max_steps``, ``num_threads`` and the command's own ``more`` where given (not ``None``), then
    ``progress`` (not ``-q``) and ``resume``.

    Raises:
        TrainConfigError: an unreadable or invalid config (from ``load_config``).
    """
    from .training.trainer import saved_recipe

    kwargs = load_config(args.config) if args.config else {}
    if args.resume and not args.config:
        kwargs = saved_recipe(args.output)
    given = {"device": args.device, "max_minutes": args.max_minutes, "max_steps": args.max_steps,
             "num_threads": args.threads} | more
    kwargs.update({key: value for key, value in given.items() if value is not None})
    kwargs["progress"] = not args.quiet
    kwargs["resume"] = args.resume
    return kwargs


def training_result(s: dict, *, loss: str = "") -> str:
    """The one line a train command prints from the trainer's summary ``s``; ``loss`` follows the best
    validation loss (its unit, or more figures)."""
    return (f"stopped ({s['stopped']}) after epoch {s['epoch']}, step {s['step']}, {s['examples']} examples, "
            f"{s['train_seconds']:.0f} s of training ({s['examples_per_s']:.2f} examples/s); best validation "
            f"loss {s['best_val_loss']:.4f}{loss}; best checkpoint {s['best']}")


def _add_mixer_command(tsub) -> None:
    m = tsub.add_parser(
        "mixer", help="train the DMC mixer (gain and pan) on a composer dataset",
        description=("Train the differentiable-mixing-console network on DATASET (mixbridge datagen composer): "
                     "its train split for training, its val split for validation (by song). CONFIG (YAML or TOML) "
                     "holds train_mixer keyword arguments; see models/configs/dmc.yaml. Checkpoints (last, best) "
                     "and log.csv go to RUN_DIR; ship best.json/.safetensors as models/mixers/dmc.*."))
    add_training_options(m, data_help="a composer dataset (mixbridge datagen composer)")
    m.set_defaults(func=_train_mixer, command="train mixer")


def _train_mixer(args) -> int:
    from .training.mixing import load_mixer_config, train_mixer

    s = train_mixer(args.data, args.output, **training_kwargs(args, load_mixer_config))
    print(training_result(s))
    return 0


def _train_proxy(args) -> int:
    import os

    from .train import load_train_config, train_proxy

    s = train_proxy(args.data, args.output, **training_kwargs(args, load_train_config, max_epochs=args.max_epochs,
                                                              init_from=args.init))
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    esr = "n/a" if s["best_val_esr"] is None else f"{s['best_val_esr']:.4f}"
    print(training_result(s, loss=f", ESR {esr}"))
    return 0
