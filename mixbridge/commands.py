"""Core CLI commands: ``automix``, ``render``, ``session validate``, ``mixers``.

Handlers import the library lazily so ``mixbridge --help`` stays light.
"""
from __future__ import annotations

import argparse
import sys


def _automix(args: argparse.Namespace) -> int:
    from mixbridge.models.automix import automix

    res = automix(args.stems_dir, args.output, mixer=args.mixer, backend=args.backend,
                  target_lufs=args.target_lufs, seed=args.seed, progress=not args.quiet, clamp=args.clamp)
    print(res.summary())
    if args.push:  # DESIGN.md §3 step 6: optionally push the session into a DAW
        from mixbridge.cli import main

        return main(["push", str(res.out_dir / "session.json"), "--daw", args.push])
    return 0


def _render(args: argparse.Namespace) -> int:
    from mixbridge.models.automix import render

    res = render(args.session, args.output, backend=args.backend, progress=not args.quiet, mix_out=args.mix_output,
                 resolve_gain=args.resolve_gain, clamp=args.clamp)
    how = "solved" if res.solved else "stored"
    print(f"wrote {args.output}: {res.lufs:.2f} LUFS, true peak {res.true_peak_dbtp:.2f} dBTP "
          f"({how} master gain {res.gain_db:+.2f} dB)")
    for n in res.notices:
        print(f"  notice: {n}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from mixbridge.session import validate_report

    ok, text = validate_report(args.file)
    print(text, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


def _mixers(args: argparse.Namespace) -> int:
    from mixbridge.models.mixers import DEFAULT_MIXER, get_mixer, mixer_names

    for name in mixer_names():
        doc = (type(get_mixer(name)).__doc__ or "").strip().splitlines()[0]
        print(f"{name:<16}{' (default)' if name == DEFAULT_MIXER else '':<11}{doc}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("automix", help="mix and master a folder of stems", description=(
        "Mix and master STEMS_DIR: writes mix.wav, master.wav, session.json and report.html to OUT_DIR."))
    p.add_argument("stems_dir", metavar="STEMS_DIR")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR")
    p.add_argument("--mixer", default="knowledge", help="knowledge (default), mono_sum, random, equal_loudness")
    p.add_argument("--backend", default="builtin", help="builtin (pedalboard) or vst (real plugins via DawDreamer)")
    p.add_argument("--target-lufs", type=float, default=None, help="integrated loudness target (default -14)")
    p.add_argument("--seed", type=int, default=0, help="seed of random mixers")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--clamp", action="store_true",
                   help="move values the backend cannot render into its range and list each one, instead of "
                        "stopping with an error that names the track, parameter, value and range")
    p.add_argument("--push", choices=("ardour", "reaper", "ableton"), default=None,
                   help="then push session.json into this DAW on 127.0.0.1 (see `mixbridge push --help`)")
    p.set_defaults(func=_automix)

    p = sub.add_parser("render", help="re-render a (possibly edited) session file")
    p.add_argument("session", metavar="SESSION")
    p.add_argument("-o", "--output", required=True, metavar="OUT.wav", help="mastered output")
    p.add_argument("--mix-output", default=None, metavar="MIX.wav", help="also write the pre-master mix")
    p.add_argument("--backend", default="builtin")
    p.add_argument("--resolve-gain", action="store_true",
                   help="solve the master gain again for this render instead of applying the session's "
                        "master.solved_gain_db (the file is not changed)")
    p.add_argument("--clamp", action="store_true",
                   help="move values the backend cannot render into its range and list each one, instead of "
                        "stopping with an error that names the track, parameter, value and range")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_render)

    p = sub.add_parser("session", help="session file tools")
    ss = p.add_subparsers(dest="session_command", metavar="ACTION")
    v = ss.add_parser("validate", help="check a session file against the schema")
    v.add_argument("file", metavar="FILE")
    v.set_defaults(func=_validate)

    p = sub.add_parser("mixers", help="list the registered mixers")
    p.set_defaults(func=_mixers)
