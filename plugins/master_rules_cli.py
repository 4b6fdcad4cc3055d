"""``mixbridge train master-rules``: the rules mastering model's target table (a torch-free parser).

The parser imports only the standard library and :mod:`mixbridge.cli_options`, so ``mixbridge --help``
stays light; the handler imports :func:`mixbridge.plugins.master_rules.fit_rules_target` when it runs.
"""
from __future__ import annotations


def add_rules_command(tsub) -> None:
    """Add ``master-rules`` to the ``mixbridge train`` subparsers ``tsub``:
    ``mixbridge train master-rules -o models/masterers/rules.json [--masters DIR] [--max-seconds S]``."""
    from mixbridge.cli_options import add_output, add_quiet

    p = tsub.add_parser(
        "master-rules", help="fit the rules mastering model's target spectrum on the training masters",
        description=("Measure the long-term third-octave spectrum relative to loudness, and the PLR, of every "
                     "training-split master (mixbridge.plugins.datagen.masters; never val or test) and write their "
                     "means as the table the `rules` mastering model aims at (models/masterers/rules.json)."))
    add_output(p, metavar="TABLE_JSON", help="the table to write (atomically), e.g. models/masterers/rules.json")
    p.add_argument("--masters", metavar="DIR", default=None,
                   help="a folder of your own masters (albums by folder; default: the Debian music catalogue)")
    p.add_argument("--max-seconds", type=float, default=None, metavar="S",
                   help="analyse only the middle S seconds of each file (default: the whole file)")
    add_quiet(p, help="no per-file lines")
    p.set_defaults(func=_train_rules, command="train master-rules")


def _train_rules(args) -> int:
    import shlex

    from mixbridge.errors import ParamRangeError

    if args.max_seconds is not None and not args.max_seconds > 0.5:
        raise ParamRangeError(f"--max-seconds {args.max_seconds:g}: give more than 0.5 s (or leave it out)")
    command = f"mixbridge train master-rules -o {shlex.quote(str(args.output))}"
    if args.masters:
        command += f" --masters {shlex.quote(str(args.masters))}"
    if args.max_seconds is not None:
        command += f" --max-seconds {args.max_seconds:g}"
    from .master_rules import fit_rules_target

    t = fit_rules_target(args.output, root=args.masters, max_seconds=args.max_seconds, command=command,
                         progress=not args.quiet)
    pv = t["provenance"]
    print(f"wrote {args.output}: {pv['files']} masters of {', '.join(pv['albums'])} ({pv['split']} split), "
          f"mean PLR {t['plr_db']:.2f} dB, mean loudness {t['lufs']:.2f} LUFS ({pv['seconds']:.0f} s)")
    return 0
