"""Run the main job on the bundled demo: automix every demo song with both backends.

Usage: python scripts/run_demo.py [--demo demo] [-o out] [--backends builtin,vst] [--mixer knowledge]

Writes OUT/<backend>/<song>/{mix.wav,master.wav,session.json,report.html} with
:func:`mixbridge.app.automix.automix` and prints a table of loudness and true peak.
Exit status (README "Exit status"): 0 every master meets its target within
``LOUDNESS_TOLERANCE_LU`` (0.1 LU, what the gain solver promises) and its true-peak
ceiling; 1 a master misses; 2 no demo songs, or a song the library refuses.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Automix every song of ``--demo`` with every backend of ``--backends``; returns the exit status."""
    from mixbridge.cli_options import EXIT_FAILED, EXIT_OK, EXIT_USAGE, add_output
    from mixbridge.models.mixers import DEFAULT_MIXER

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", default="demo", help="the demo folder (`mixbridge demo build -o DEMO`)")
    add_output(ap, required=False, default="out", metavar="OUT", help="output folder (default: out)")
    ap.add_argument("--backends", default="builtin,vst", help="comma-separated render backends")
    ap.add_argument("--mixer", default=DEFAULT_MIXER,
                    help=f"a registered mixer (`mixbridge mixers`; default {DEFAULT_MIXER})")
    args = ap.parse_args(argv)

    from mixbridge.app.automix import automix
    from mixbridge.errors import MixbridgeError
    from mixbridge.plugins.mastering import LOUDNESS_TOLERANCE_LU

    demo = Path(args.demo)
    songs = sorted(p for p in demo.iterdir() if p.is_dir() and not p.name.startswith(".")) if demo.is_dir() else []
    if not songs:
        print(f"no songs in {args.demo}; run `mixbridge demo build -o {args.demo}` first", file=sys.stderr)
        return EXIT_USAGE
    refused = missed = False
    rows = []
    for backend in args.backends.split(","):
        for song in songs:
            out = Path(args.output) / backend / song.name
            try:
                res = automix(song, out, mixer=args.mixer, backend=backend, progress=True)
            except MixbridgeError as e:
                print(f"{backend}/{song.name}: error: {e}", file=sys.stderr)
                refused = True
                continue
            target = res.session.master.params["loudness"]["target_lufs"]
            ceiling = res.session.master.params["limiter"]["ceiling_dbtp"]
            ok = abs(res.master_lufs - target) <= LOUDNESS_TOLERANCE_LU and res.master_true_peak_dbtp <= ceiling
            missed |= not ok
            rows.append((backend, song.name, len(res.session.tracks), res.mix_lufs, res.master_lufs,
                         res.master_true_peak_dbtp, res.seconds, "ok" if ok else "FAIL"))
    print(f"\n{'backend':<8} {'song':<24} {'tracks':>6} {'mix LUFS':>9} {'master LUFS':>12} {'dBTP':>6} {'s':>6}")
    for r in rows:
        print(f"{r[0]:<8} {r[1]:<24} {r[2]:>6} {r[3]:>9.2f} {r[4]:>12.2f} {r[5]:>6.2f} {r[6]:>6.1f} {r[7]}")
    print(f"\nlisten: {Path(args.output).resolve()}/<backend>/<song>/master.wav; report.html shows every decision")
    return EXIT_USAGE if refused else EXIT_FAILED if missed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
