"""The ``mixbridge`` command line: a thin shell over the library API (STYLE.md point 12).

Each command group lives in a module that defines ``register(subparsers)`` (listed in
:data:`COMMAND_MODULES`); those modules import only the standard library and torch-free
registries at top level, so ``mixbridge --help`` never imports torch or DawDreamer. A
command's handler parses, calls one library function and prints its result.

Exit status, for every command (README "Exit status"; :mod:`mixbridge.cli_options`):
0 done; 1 a check ran and failed (``verify``, ``plugins check``, ``session validate``);
2 a user error: a bad command line (argparse's message), a
:class:`~mixbridge.errors.MixbridgeError` or an OS refusal of a path the user named (full disk, no
permission, a file where a folder belongs): one line on stderr, no traceback; 70 (:data:`EXIT_INTERNAL`,
sysexits' EX_SOFTWARE) an internal error, i.e. any other exception: one line saying so and how to see the
traceback, which ``mixbridge --debug COMMAND ...`` prints. Tests call :func:`main` with an argument list;
it returns the status instead of exiting.

This module sits in the application layer, on top of every package (README "Layout and
design"): it is the one place that tells the lower layers about the higher ones, e.g. it
names the torch console as the contract's lazy ``torch`` implementation
(:func:`register_implementations`).
"""
from __future__ import annotations

import argparse
import errno
import importlib
import sys
import traceback
from collections.abc import Sequence

from mixbridge.cli_options import EXIT_OK, EXIT_USAGE
from mixbridge.errors import MixbridgeError

#: Exit status of an internal error (a bug, not a user error): sysexits.h's EX_SOFTWARE.
EXIT_INTERNAL = 70

#: OS errors that are the user's environment, not a bug, and the fix each one names.
_OS_FIXES = {
    errno.ENOSPC: "free some space or write somewhere else",
    errno.EDQUOT: "free some space or write somewhere else",
    errno.EACCES: "choose a path you may write to, or change its permissions",
    errno.EPERM: "choose a path you may write to, or change its permissions",
    errno.EROFS: "write to a writable filesystem",
    errno.EISDIR: "give a file path, not a folder",
    errno.ENOTDIR: "a part of the path is a file: give a path through folders",
    errno.EEXIST: "a file is in the way: give a path through folders, or remove the file",
    errno.ENOENT: "check the path",
    errno.ENAMETOOLONG: "give a shorter path",
}

#: Modules that contribute sub-commands, in help order.
COMMAND_MODULES = (
    "mixbridge.app.commands",          # automix, render, session validate, mixers
    "mixbridge.plugins.datagen.demo.cli",  # demo build|list|verify
    "mixbridge.plugins.cli",           # plugins list|inspect|calibrate|check
    "mixbridge.plugins.datagen_cli",   # datagen effect|demaster|mixes|verify|info
    "mixbridge.bridge.cli",            # push, pull, automate, midi-export, live
    "mixbridge.bridge.scripts_cli",    # daw-script
    "mixbridge.models.cli",            # train
    "mixbridge.export.cli",            # export, compare
    "mixbridge.app.evaluate",          # evaluate
    "mixbridge.app.reverse",           # reverse
    "mixbridge.app.master",            # master
    "mixbridge.app.listen",            # listen build|serve|results
)


def _load_torch_contract() -> None:
    """Register the torch console (``mixbridge.models.console``) as the contract's ``torch`` implementation.

    Raises:
        ImportError: torch is not installed (the contract reports it as unavailable).
    """
    from mixbridge.models.console import register_contract

    register_contract()


def register_implementations() -> None:
    """Tell the lower layers about implementations that live above them (idempotent).

    The contract (``mixbridge.plugins.contract``) learns the name ``torch`` and the prefix ``proxy:``;
    the torch console and the proxy loader are imported only when ``mixbridge plugins check torch``
    (or ``proxy:PATH``, or a caller) asks for them.
    """
    from mixbridge.plugins.contract import register_lazy, register_prefix

    register_lazy("torch", _load_torch_contract)
    register_prefix("proxy", _proxy_contract)


def _proxy_contract(path: str, sample_rate: int):
    """``proxy:PATH``: a proxy checkpoint or artifact as a contract implementation
    (:func:`mixbridge.export.compare.contract.proxy_implementation`)."""
    from mixbridge.export.compare.contract import proxy_implementation

    return proxy_implementation(path, sample_rate)


def build_parser() -> argparse.ArgumentParser:
    """The ``mixbridge`` parser with every command group of :data:`COMMAND_MODULES` registered."""
    from mixbridge import __version__

    parser = argparse.ArgumentParser(
        prog="mixbridge",
        description="Neural networks that drive real mixing consoles.",
        epilog="exit status: 0 done, 1 a check ran and failed, 2 a user error (the message says what to fix)",
    )
    parser.add_argument("--version", action="version", version=f"mixbridge {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="print the traceback of any error (before the command: mixbridge --debug automix ...)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod_name in COMMAND_MODULES:
        importlib.import_module(mod_name).register(sub)
    return parser


def _one_line(text: str) -> str:
    """``text`` on one line (newlines and runs of blanks become one space)."""
    return " ".join(str(text).split())


def error_line(command: str, exc: BaseException) -> tuple[str, int]:
    """The one stderr line and the exit status for an exception that ended ``command``.

    A :class:`~mixbridge.errors.MixbridgeError`: its message (it names the value, the limit and the fix),
    exit 2. An ``OSError`` with a path and a known ``errno`` (:data:`_OS_FIXES`): the path, the OS's reason
    and the fix, exit 2. Anything else is an internal error: its type and message and how to see the
    traceback, exit :data:`EXIT_INTERNAL`.
    """
    if isinstance(exc, MixbridgeError):
        return f"mixbridge {command}: error: {exc}", EXIT_USAGE
    if isinstance(exc, OSError) and exc.errno in _OS_FIXES and exc.filename:
        return (f"mixbridge {command}: error: {exc.filename}: {exc.strerror}; {_OS_FIXES[exc.errno]}", EXIT_USAGE)
    return (f"mixbridge {command}: internal error: {type(exc).__name__}: {_one_line(str(exc))[:300]}; this is a bug in "
            f"mixbridge, not in your input: rerun as `mixbridge --debug {command} ...` for the traceback and report "
            "it", EXIT_INTERNAL)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default ``sys.argv[1:]``) and return the exit status.

    Returns:
        0 done, 1 a check ran and failed, 2 a user error (bad arguments, or a
        :class:`~mixbridge.errors.MixbridgeError` or an OS refusal printed as one line), 70 an internal
        error (one line; the traceback too with ``--debug``), 130 interrupted, 141 the reader of stdout
        went away.
    """
    register_implementations()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version (0) or a bad command line (2): argparse has printed it
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        rc = args.func(args)
    except KeyboardInterrupt:
        print(f"mixbridge {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `mixbridge ... | head`: the reader left; exit quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as e:  # the one error path of the CLI (error_line)
        if args.debug:
            traceback.print_exc()
        line, status = error_line(args.command, e)
        print(line, file=sys.stderr)
        return status
    return int(rc or EXIT_OK)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
