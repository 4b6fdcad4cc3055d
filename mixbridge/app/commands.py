"""The main job's commands: ``automix``, ``render``, ``session validate`` and ``mixers``.

Each handler parses, calls one library function (:func:`mixbridge.app.automix.automix`,
:func:`mixbridge.app.automix.render`, :func:`mixbridge.session.validate_report`,
:func:`mixbridge.bridge.push.push`) and prints its result; errors are
:class:`~mixbridge.errors.MixbridgeError` s that :func:`mixbridge.app.cli.main` prints as one
line with exit status 2. The options follow the shared vocabulary
(:mod:`mixbridge.cli_options`); ``--backend``, ``--mixer`` and ``--push`` take their choices
from the backend, mixer and DAW registries, which import no torch. The libraries behind the
handlers are imported when a command runs, so ``mixbridge --help`` stays light.
"""
from __future__ import annotations

import argparse
import sys

from mixbridge.cli_options import EXIT_FAILED, EXIT_OK, add_backend, add_output, add_quiet

_BACKEND_HELP = "render backend (README: \"The plugin host and its backends\")"
_CLAMP_HELP = ("move values the backend cannot render into its range and list each one, instead of stopping "
               "with an error that names the track, parameter, value and range")


def _automix(args: argparse.Namespace) -> int:
    """``mixbridge automix``: :func:`~mixbridge.app.automix.automix`, then optionally push into a DAW."""
    from .automix import automix

    if args.push:  # fail fast: a direct mixer's session has no parameters to push
        from mixbridge.models.direct_mixers import is_direct
        from mixbridge.models.mixers import get_mixer
        from mixbridge.session import DirectSessionError

        if is_direct(get_mixer(args.mixer)):
            raise DirectSessionError(f"--push with --mixer {args.mixer}: a direct mixer writes the mix audio and sets "
                                     "no parameters, so there is nothing to push to a DAW; its mix.wav is the "
                                     "output (push a parameter mixer's session: --mixer dmc)")
    res = automix(args.stems_dir, args.output, mixer=args.mixer, backend=args.backend,
                  target_lufs=args.target_lufs, seed=args.seed, progress=not args.quiet, clamp=args.clamp,
                  report=not args.no_report,
                  checkpoint=args.checkpoint, reference=args.reference, refine_steps=args.refine_steps,
                  reference_start=args.reference_start,
                  ride=args.ride, max_ride_db=args.max_ride_db)
    if not args.quiet:
        print(res.summary())
    if args.push:  # DESIGN.md §3 step 6: push the session into a DAW
        _push(res, args.push, quiet=args.quiet)
    return EXIT_OK


def _push(res, daw: str, *, quiet: bool) -> None:
    """Push an automix result's session into ``daw`` on 127.0.0.1 (:func:`mixbridge.bridge.push.push`).

    Raises:
        MixbridgeError: the push failed (the DAW did not answer, tracks did not match); the
            message says that the automix outputs are written and how to push them again.
    """
    from mixbridge.bridge.push import push
    from mixbridge.errors import MixbridgeError

    try:
        rep = push(res.session, daw)
    except MixbridgeError:
        print(f"mixbridge automix: the outputs are written to {res.out_dir}/; push them again with "
              f"`mixbridge push {res.out_dir / 'session.json'} --daw {daw}`", file=sys.stderr)
        raise
    if not quiet:
        m = rep.plan.match
        print(f"pushed {len(rep.plan.strips)} tracks to {daw}: {rep.sent} messages in {rep.elapsed_s * 1000:.1f} ms"
              f"; {len(m.unmatched_session)} session tracks and {len(m.unmatched_daw)} DAW tracks unmatched"
              f"; {len(rep.plan.unmapped)} values not sent (see `mixbridge push --dry-run`)")


def _render(args: argparse.Namespace) -> int:
    """``mixbridge render``: :func:`~mixbridge.app.automix.render` a session file to a mastered WAV."""
    from .automix import render

    res = render(args.session, args.output, backend=args.backend, progress=not args.quiet, mix_out=args.mix_output,
                 resolve_gain=args.resolve_gain, clamp=args.clamp)
    if not args.quiet:
        how = "solved" if res.solved else "stored"
        print(f"wrote {args.output}: {res.lufs:.2f} LUFS, true peak {res.true_peak_dbtp:.2f} dBTP "
              f"({how} master gain {res.gain_db:+.2f} dB)")
        for n in res.notices:
            print(f"  notice: {n}")
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    """``mixbridge session validate``: exit 0 for a valid session file, 1 with the findings otherwise.

    Raises:
        SessionError: there is no such file (nothing to check: exit 2, not 1).
    """
    from pathlib import Path

    from mixbridge.errors import SessionError
    from mixbridge.session import validate_report

    if not Path(args.file).is_file():
        raise SessionError(f"{args.file}: no such file; name a session file (automix writes OUT_DIR/session.json)")
    ok, text = validate_report(args.file)
    print(text, file=sys.stdout if ok else sys.stderr)
    return EXIT_OK if ok else EXIT_FAILED


def _mixers(args: argparse.Namespace) -> int:
    """``mixbridge mixers``: one line per registered mixer, the default marked."""
    from mixbridge.models.mixers import DEFAULT_MIXER, mixer_names, mixer_summary

    for name in mixer_names():
        mark = "(default)" if name == DEFAULT_MIXER else ""
        print(f"{name:<16}{mark:<11}{mixer_summary(name)}")
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``automix``, ``render``, ``session`` and ``mixers`` to the ``mixbridge`` sub-commands."""
    from mixbridge.bridge.profiles import profile_names
    from mixbridge.models.mixers import DEFAULT_MIXER, mixer_names
    from mixbridge.plugins.backend import backend_names

    from .automix import DEFAULT_REFINE_STEPS

    p = sub.add_parser("automix", help="mix and master a folder of stems", description=(
        "Mix and master STEMS_DIR: writes mix.wav, master.wav, session.json and report.html to OUT_DIR. "
        "The outputs are staged beside OUT_DIR and put in place in one rename (the whole folder is replaced), "
        "so OUT_DIR must be new, empty or hold only a previous automix's outputs; staging folders "
        "(.automix-OUT_DIR-XXXXXXXX) left by interrupted runs are removed by the next run, with a notice."))
    p.add_argument("stems_dir", metavar="STEMS_DIR")
    add_output(p, metavar="OUT_DIR", old=(), help="folder for mix.wav, master.wav, session.json and report.html "
                                                  "(new, empty or a previous automix's; replaced as a whole)")
    p.add_argument("--mixer", choices=mixer_names(), default=DEFAULT_MIXER,
                   help=f"automatic mixer (`mixbridge mixers` describes each; default: {DEFAULT_MIXER})")
    add_backend(p, choices=backend_names(), default="builtin", help=_BACKEND_HELP)
    p.add_argument("--target-lufs", type=float, default=None, metavar="LUFS",
                   help="integrated loudness target of the master (default: -14)")
    p.add_argument("--checkpoint", default=None, metavar="PATH",
                   help="a trained mixer's checkpoint (NAME.json or its folder), for a mixer that takes one "
                        "(`mixbridge mixers`)")
    p.add_argument("--seed", type=int, default=0, help="seed of random mixers (default: 0)")
    p.add_argument("--reference", default=None, metavar="REF.wav",
                   help="mixing style transfer: refine the mixer's session so that the master's audio features "
                        "(Diff-MST: RMS, crest factor, stereo width and imbalance, Bark spectrum) match this mix's "
                        "(needs torch)")
    p.add_argument("--reference-start", choices=("dmc-full", "mixer"), default="dmc-full",
                   help="with --reference: start from dmc-full's predicted console (default) or the mixer's session")
    p.add_argument("--refine-steps", type=int, default=DEFAULT_REFINE_STEPS, metavar="N",
                   help=f"with --reference: optimisation steps through the torch console (default: "
                        f"{DEFAULT_REFINE_STEPS}; 0: the mixer's session only, the distance measured)")
    add_quiet(p, help="no progress bar and no summary")
    p.add_argument("--clamp", action="store_true", help=_CLAMP_HELP)
    p.add_argument("--no-report", action="store_true",
                   help="skip report.html and the per-track measurements behind it (saves most of the CPU "
                        "spent after the render)")
    p.add_argument("--ride", action="store_true",
                   help="write a loudness-riding fader curve on every track (a rule: each stem's short-term "
                        "loudness against its median), rendered and pushed with the session")
    p.add_argument("--max-ride-db", type=float, default=6.0, metavar="DB",
                   help="with --ride: the largest fader move either way, dB (default 6)")
    p.add_argument("--push", choices=profile_names(), default=None,
                   help="then push session.json into this DAW on 127.0.0.1 (see `mixbridge push --help`)")
    p.set_defaults(func=_automix)

    p = sub.add_parser("render", help="re-render a (possibly edited) session file", description=(
        "Render SESSION (a session.json, edited or not) through the console and the master bus to a mastered WAV."))
    p.add_argument("session", metavar="SESSION")
    add_output(p, metavar="OUT.wav", old=(), help="the mastered output")
    p.add_argument("--mix-output", default=None, metavar="MIX.wav", help="also write the pre-master mix")
    add_backend(p, choices=backend_names(), default="builtin", help=_BACKEND_HELP)
    p.add_argument("--resolve-gain", action="store_true",
                   help="solve the master gain again for this render instead of applying the session's "
                        "master.solved_gain_db (the file is not changed)")
    p.add_argument("--clamp", action="store_true", help=_CLAMP_HELP)
    add_quiet(p, help="no progress bar and no summary")
    p.set_defaults(func=_render)

    p = sub.add_parser("session", help="session file tools")
    ss = p.add_subparsers(dest="session_command", metavar="ACTION")
    v = ss.add_parser("validate", help="check a session file against the schema (exit 1 if it fails)")
    v.add_argument("file", metavar="FILE")
    v.set_defaults(func=_validate)

    p = sub.add_parser("mixers", help="list the registered mixers")
    p.set_defaults(func=_mixers)
