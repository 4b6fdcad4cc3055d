"""The ``mixbridge`` command line: a thin layer over the library API (STYLE.md point 12).

Each command group lives in a module that defines ``register(subparsers)``; the
module imports only the standard library at top level, so ``mixbridge --help``
never imports torch, pedalboard or DawDreamer. A command's handler parses, calls
one library function, and turns a :class:`MixbridgeError` into one line on
stderr and exit status 2. Tests call :func:`main` with an argument list.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from .errors import MixbridgeError

#: Modules that contribute sub-commands, in help order.
COMMAND_MODULES = (
    "mixbridge.commands",          # automix, render, session, mixers
    "mixbridge.demo_cli",          # demo build|list|verify
    "mixbridge.plugins.cli",       # plugins list|inspect|calibrate
    "mixbridge.plugins.datagen_cli",  # datagen effect|demaster|mixes|verify|info
    "mixbridge.bridge.cli",        # push, pull
    "mixbridge.models.cli",        # train, compare
    "mixbridge.export.cli",        # export (live is in mixbridge.bridge.cli)
)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="mixbridge",
        description="Neural networks that drive real mixing consoles.",
    )
    parser.add_argument("--version", action="version", version=f"mixbridge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod_name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as e:
            if e.name and (e.name == mod_name or mod_name.startswith(e.name + ".") or e.name.startswith(mod_name)):
                continue  # that command group is not part of this install yet
            raise
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 failed check, 2 error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        rc = args.func(args)
    except MixbridgeError as e:
        print(f"mixbridge {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mixbridge {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `mixbridge ... | head`: the reader left; exit quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
