"""``mixbridge train deepmixing``: the command line of DeepMixing's training, torch-free.

:func:`add_deepmixing_command` adds the ``deepmixing`` subcommand to ``mixbridge train`` (``models/cli.py``):
``mixbridge train deepmixing --method pg|direct --data COMPOSER_DATASET [--config CONFIG] -o RUN_DIR [--resume]
[--device cpu|cuda] [--max-minutes M] [--max-steps N] [--threads T] [-q]``. Running it calls
:func:`mixbridge.models.training.deepmixing.train_deepmixing` (which imports torch, lazily here). Its options
and result line are the train commands' shared ones (:func:`mixbridge.models.cli.add_training_options`);
``--method`` overrides the config's ``method``. Only the standard library and the torch-free
:mod:`mixbridge.models.cli` are imported at module level (STYLE.md point 12).
"""
from __future__ import annotations

from .cli import add_training_options, training_kwargs, training_result

__all__ = ["add_deepmixing_command", "METHOD_CHOICES"]

#: ``--method`` choices (the same as :data:`mixbridge.models.training.deepmixing.METHODS`; a test checks it).
METHOD_CHOICES = ("pg", "direct")


def add_deepmixing_command(tsub) -> None:
    """Add ``train deepmixing`` to the ``train`` subparsers ``tsub``."""
    m = tsub.add_parser(
        "deepmixing", help="train DeepMixing gain automation (policy gradient or direct) on a composer dataset",
        description=("Train DeepMixing (per-400 ms Dirichlet track gains, emitted as fader automation) on DATASET "
                     "(mixbridge datagen composer): train split for training, val split for selection (by song). "
                     "--method pg: REINFORCE with a baseline on the seed's MFCC reward; --method direct: the "
                     "Dirichlet mean gains through the torch console against the target mix (MR-STFT), with the "
                     "same smoothness term. CONFIG (YAML or TOML) holds train_deepmixing keyword arguments; see "
                     "models/configs/deepmixing.yaml. Checkpoints (last, best) and log.csv go to RUN_DIR; ship "
                     "best.json/.safetensors as models/mixers/deepmixing.*."))
    add_training_options(m, data_help="a composer dataset (mixbridge datagen composer)")
    m.add_argument("--method", choices=METHOD_CHOICES, default=None,
                   help="training method (default: the config's, else pg)")
    m.set_defaults(func=_train_deepmixing, command="train deepmixing")


def _train_deepmixing(args) -> int:
    from .training.deepmixing import load_deepmixing_config, train_deepmixing

    s = train_deepmixing(args.data, args.output, **training_kwargs(args, load_deepmixing_config, method=args.method))
    print(training_result(s))
    return 0
