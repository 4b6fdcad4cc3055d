"""``mixbridge daw-script``: write the Lua script that builds a session inside Ardour or REAPER.

A thin command over :func:`~mixbridge.bridge.daw_scripts.write_daw_script`: it loads the session,
writes the script atomically and prints what the script cannot carry (``not sent: ...``, as ``push``
prints it), what it clamped, and a summary line. Module level imports only the standard library and
the CLI vocabulary, so ``mixbridge --help`` stays fast; the handler imports the rest.
"""
from __future__ import annotations

from mixbridge.cli_options import EXIT_OK, add_output, add_quiet

#: As :data:`mixbridge.bridge.daw_scripts.SCRIPT_DAWS` (kept here so ``--help`` imports no numpy).
SCRIPT_DAW_NAMES = ("ardour", "reaper")


def register(sub) -> None:
    """Add ``daw-script`` to the top CLI's subparsers ``sub``."""
    p = sub.add_parser(
        "daw-script", help="write a Lua script that creates a session's tracks, plugins, bus and automation in a DAW",
        description=("Write one Lua file that, run inside the DAW, creates the session's missing tracks (stereo, by "
                     "name), the mapped plugins in the DAW map's order, a reverb bus with a post-fader send from "
                     "every track, sets every mapped value (the same numbers push sends) and writes each automation "
                     "curve as points in the DAW's own lanes. Ardour: Window > Scripting (or ardour7-lua with "
                     "--ardour-session). REAPER: Actions > Load ReaScript. Everything a script cannot carry is "
                     "printed as 'not sent:' and written at the top of the script."))
    p.add_argument("session", help="session file (mixbridge-session JSON)")
    p.add_argument("--daw", required=True, choices=SCRIPT_DAW_NAMES, help="the DAW that runs the script")
    add_output(p, metavar="FILE.lua", old=(), help="where to write the script")
    p.add_argument("--ardour-session", metavar="SESSION.ardour", default=None,
                   help="Ardour only: make a headless script for `ardour7-lua FILE.lua` that opens this saved session, "
                        "applies the mix and saves it")
    p.add_argument("--bus", default="Reverb", metavar="NAME", help="the reverb bus to find or create (default Reverb)")
    p.add_argument("--rate-hz", type=float, default=100.0,
                   help="curve sampling rate before thinning, Hz (default 100, as `automate`)")
    p.add_argument("--clamp", action="store_true",
                   help="write the nearest value the DAW takes instead of failing; each is listed")
    add_quiet(p, help="print only what is not carried or clamped; no summary")
    p.set_defaults(func=_daw_script, command="daw-script")


def _daw_script(args) -> int:
    from mixbridge.session import load

    from .daw_scripts import write_daw_script

    session = load(args.session)
    script = write_daw_script(session, args.daw, args.output, clamp=args.clamp, rate_hz=args.rate_hz,
                              bus_name=args.bus, headless_session=args.ardour_session)
    for u in script.not_sent:
        print(f"not sent: {u}")
    for c in script.clamped:
        print(f"clamped: {c}")
    if not args.quiet:
        print(f"wrote {args.output}: {script.summary()}")
    return EXIT_OK
