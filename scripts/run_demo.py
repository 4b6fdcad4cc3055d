"""Run the main job on the bundled demo: automix every demo song with both backends.

Usage: python scripts/run_demo.py [--demo demo] [--out out] [--backends builtin,vst]

Writes OUT/<backend>/<song>/{mix.wav,master.wav,session.json,report.html} and
prints a table of loudness and true peak; exits 1 if a master misses the
target by more than 0.5 LU or exceeds its true-peak ceiling.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

TOLERANCE_LU = 0.5


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", default="demo")
    ap.add_argument("--out", default="out")
    ap.add_argument("--backends", default="builtin,vst")
    ap.add_argument("--mixer", default="knowledge")
    args = ap.parse_args(argv)

    from mixbridge.errors import MixbridgeError
    from mixbridge.models.automix import automix

    songs = sorted(p for p in Path(args.demo).iterdir() if p.is_dir() and not p.name.startswith("."))
    if not songs:
        print(f"no songs in {args.demo}; run `mixbridge demo build -o {args.demo}` first", file=sys.stderr)
        return 2
    failed = False
    rows = []
    for backend in args.backends.split(","):
        for song in songs:
            out = Path(args.out) / backend / song.name
            try:
                res = automix(song, out, mixer=args.mixer, backend=backend, progress=True)
            except MixbridgeError as e:
                print(f"{backend}/{song.name}: error: {e}", file=sys.stderr)
                failed = True
                continue
            target = res.session.master.params["loudness"]["target_lufs"]
            ceiling = res.session.master.params["limiter"]["ceiling_dbtp"]
            ok = abs(res.master_lufs - target) <= TOLERANCE_LU and res.master_true_peak_dbtp <= ceiling
            failed |= not ok
            rows.append((backend, song.name, len(res.session.tracks), res.mix_lufs, res.master_lufs,
                         res.master_true_peak_dbtp, res.seconds, "ok" if ok else "FAIL"))
    print(f"\n{'backend':<8} {'song':<24} {'tracks':>6} {'mix LUFS':>9} {'master LUFS':>12} {'dBTP':>6} {'s':>6}")
    for r in rows:
        print(f"{r[0]:<8} {r[1]:<24} {r[2]:>6} {r[3]:>9.2f} {r[4]:>12.2f} {r[5]:>6.2f} {r[6]:>6.1f} {r[7]}")
    print(f"\nlisten: {Path(args.out).resolve()}/<backend>/<song>/master.wav; report.html shows every decision")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
