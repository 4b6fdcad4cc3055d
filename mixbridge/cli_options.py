"""The command line's one vocabulary: the options every ``mixbridge`` subcommand spells alike.

Each helper adds one option to an :class:`argparse.ArgumentParser` with its one spelling,
and keeps the old spellings of the first release working for one more release: an old
spelling still sets the same value and prints one deprecation line on stderr naming the new
spelling. Exit status, for every command (README "Exit status"):

* :data:`EXIT_OK` (0): done;
* :data:`EXIT_FAILED` (1): a check ran and failed (``verify``, ``plugins check``, ``session validate``);
* :data:`EXIT_USAGE` (2): the input or the command line is wrong (a :class:`~mixbridge.errors.MixbridgeError`,
  an unknown name, nothing to do); the message names the value, the limit and the fix.

The vocabulary: ``-o/--output`` where a command writes; ``-q/--quiet`` switches progress bars
and summaries off; ``--backend`` is always the render backend (builtin, vst, ...);
``--executor local|ray`` is where parallel jobs run; ``--workers N`` the number of worker
processes; ``--threads N`` the intra-op threads of one process (torch); durations end in
``-s`` or ``-ms`` (``--timeout-s``, ``--duration-s``, ``--patch-s``).

This module imports only the standard library, so ``mixbridge --help`` stays light.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
#: Where parallel jobs run.
EXECUTORS = ("local", "ray")


class _Spelled(argparse.Action):
    """Store an option's value (or True for a flag); an old spelling also prints one deprecation line."""

    def __init__(self, option_strings, dest, old: Sequence[str] = (), flag: bool = False, **kwargs):
        self.old = tuple(old)
        self.flag = flag
        if flag:
            kwargs["nargs"] = 0
            kwargs.setdefault("default", False)
        if self.old and kwargs.get("help") not in (None, argparse.SUPPRESS):
            kwargs["help"] += f" ({', '.join(self.old)}: old spelling, deprecated)"
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        """Store the value; name the new spelling on stderr when an old one was used."""
        if option_string in self.old:
            new = "/".join(o for o in self.option_strings if o not in self.old)
            print(f"{parser.prog}: warning: {option_string} is deprecated and goes in the next release; "
                  f"use {new}", file=sys.stderr)
        setattr(namespace, self.dest, True if self.flag else values)


def add_option(parser: argparse.ArgumentParser, *spellings: str, old: Sequence[str] = (), flag: bool = False,
               **kwargs) -> argparse.Action:
    """Add an option under its new ``spellings`` and its deprecated ``old`` ones (one value, one ``dest``).

    ``flag=True`` makes a ``store_true`` flag. Other keyword arguments go to ``add_argument``.
    """
    return parser.add_argument(*spellings, *old, action=_Spelled, old=old, flag=flag, **kwargs)


def add_output(parser: argparse.ArgumentParser, *, help: str, metavar: str = "PATH", required: bool = True,
               old: Sequence[str] = ("--out",), **kwargs) -> None:
    """``-o/--output PATH`` (dest ``output``); ``--out`` kept as a deprecated spelling."""
    add_option(parser, "-o", "--output", old=old, dest="output", metavar=metavar, required=required, help=help,
               **kwargs)


def add_quiet(parser: argparse.ArgumentParser, *, help: str = "no progress bars or summaries") -> None:
    """``-q/--quiet`` (dest ``quiet``); ``--no-progress`` kept as a deprecated spelling."""
    add_option(parser, "-q", "--quiet", old=("--no-progress",), flag=True, dest="quiet", help=help)


def add_timeout_s(parser: argparse.ArgumentParser, *, default: float | None, help: str) -> None:
    """``--timeout-s SECONDS`` (dest ``timeout_s``); ``--timeout`` kept as a deprecated spelling."""
    add_option(parser, "--timeout-s", old=("--timeout",), dest="timeout_s", type=float, default=default,
               metavar="SECONDS", help=help)


def add_duration_s(parser: argparse.ArgumentParser, *, default: float | None, help: str) -> None:
    """``--duration-s SECONDS`` (dest ``duration_s``); ``--duration`` kept as a deprecated spelling."""
    add_option(parser, "--duration-s", old=("--duration",), dest="duration_s", type=float, default=default,
               metavar="SECONDS", help=help)


def add_workers(parser: argparse.ArgumentParser, *, default: int | None, help: str,
                old: Sequence[str] = ("--jobs",)) -> None:
    """``--workers N`` (dest ``workers``): worker processes; ``--jobs`` kept as a deprecated spelling."""
    add_option(parser, "--workers", old=old, dest="workers", type=int, default=default, metavar="N", help=help)


def add_backend(parser: argparse.ArgumentParser, *, choices: Sequence[str], default: str | None,
                help: str = "render backend") -> None:
    """``--backend NAME`` (dest ``backend``): the render backend, choices from the backend registry."""
    parser.add_argument("--backend", choices=list(choices), default=default,
                        help=f"{help} (default: {default})" if default else help)


def add_executor(parser: argparse.ArgumentParser, *, default: str = "local") -> None:
    """``--executor local|ray`` (dest ``executor``): where parallel jobs run."""
    parser.add_argument("--executor", choices=EXECUTORS, default=default,
                        help=f"where the jobs run: local worker processes or a Ray cluster (default: {default})")
