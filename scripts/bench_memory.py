"""Peak memory of ``mixbridge automix`` (and ``render``) on long multitracks (issue 10 item 6).

Usage::

    .venv/bin/python scripts/bench_memory.py [--root /work/data/memory] [--cases 2x20,16x5,16x60]
        [--mixers dmc,knowledge] [--backends builtin] [--no-report] [--render] [--json OUT.json]

* The long multitracks are built outside the repository under ``--root`` (default
  ``/work/data/memory``) by tiling the stems of one demo song (``mixbridge demo build --pick E1M9``,
  README "The demo multitracks", built there when missing): case ``NxM`` is ``N`` stereo float32
  WAV stems of ``M`` minutes, stem ``i`` being demo stem ``i mod 10`` tiled from a different
  offset, with a ``roles.json`` giving the demo's roles. A case is written once and reused.
* Each run is one ``mixbridge automix`` child process (``--render``: also one ``mixbridge render``
  of the session it wrote); its peak resident set comes from ``os.wait4`` (the child's own
  ``ru_maxrss``, not the largest of all children), its wall time from the clock.
* Reported per run: peak RSS in GB, and its ratio to the raw float32 size of the input stems
  (``tracks x channels x samples x 4`` bytes) and to the float32 size of the stereo output mix.

Runs one after another with ``nice -n 19`` and one torch thread (the machine is shared). A
printed markdown table and, with ``--json``, every figure. For "before" figures of an older tree,
run with ``PYTHONPATH`` naming a copy of it laid out as the installed package (``mixbridge/`` with
``plugins``, ``models``, ``export``, ``bridge`` inside).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
MIXBRIDGE = [sys.executable, "-m", "mixbridge.app.cli"]
DEMO_SONG = "E1M9"
#: Frames written per call when a long stem is tiled (about 23 s at 44.1 kHz stereo float32: 8 MB).
WRITE_BLOCK = 1 << 20


def demo_folder(root: Path) -> Path:
    """The demo song's stem folder under ``root/demo`` (built with ``mixbridge demo build`` when missing)."""
    demo = root / "demo"
    songs = [p for p in demo.glob("*/") if any(p.glob("*.wav"))] if demo.is_dir() else []
    if not songs:
        subprocess.run(MIXBRIDGE + ["demo", "build", "-o", str(demo), "--pick", DEMO_SONG, "--workers", "1", "-q"],
                       check=True, cwd=REPO)
        songs = [p for p in demo.glob("*/") if any(p.glob("*.wav"))]
    return sorted(songs)[0]


def build_case(root: Path, tracks: int, minutes: float, demo: Path) -> Path:
    """``root/long_{tracks}x{minutes}min``: ``tracks`` stems of ``minutes`` minutes tiled from ``demo``."""
    folder = root / f"long_{tracks}x{minutes:g}min"
    done = folder / ".complete"
    if done.exists() and len(list(folder.glob("*.wav"))) == tracks:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    sources = sorted(demo.glob("*.wav"))
    manifest = json.loads((demo / "manifest.json").read_text())
    demo_roles = manifest.get("roles", {})
    roles = {}
    for i in range(tracks):
        src = sources[i % len(sources)]
        audio, rate = sf.read(str(src), dtype="float32", always_2d=True)  # [frames, channels]
        total = int(round(minutes * 60 * rate))
        offset = (i // len(sources)) * (audio.shape[0] // 7)  # copies of one stem start elsewhere
        # "_copyK", not "_K": a demo stem may itself end in "_2" (distortion_guitar_2)
        name = src.stem if i < len(sources) else f"{src.stem}_copy{i // len(sources) + 1}"
        roles[name] = demo_roles.get(src.stem, "other")
        with sf.SoundFile(str(folder / f"{name}.wav"), "w", rate, audio.shape[1], subtype="FLOAT",
                          format="WAV") as fh:
            written = 0
            while written < total:
                n = min(WRITE_BLOCK, total - written)
                idx = (np.arange(written, written + n) + offset) % audio.shape[0]
                fh.write(audio[idx])
                written += n
    (folder / "roles.json").write_text(json.dumps(roles, indent=1))
    done.write_text("")
    return folder


def stem_bytes(folder: Path) -> tuple[int, int, int, int]:
    """``(tracks, float32 bytes of all stems, float32 bytes of the stereo mix, sample_rate)``."""
    total, frames, rate, n = 0, 0, 44100, 0
    for p in sorted(folder.glob("*.wav")):
        info = sf.info(str(p))
        total += info.frames * info.channels * 4
        frames, rate, n = max(frames, info.frames), info.samplerate, n + 1
    return n, total, frames * 2 * 4, rate


def run_child(cmd: list[str], cwd: Path) -> tuple[float, float, int, str]:
    """Run ``cmd`` in ``cwd``; returns ``(peak RSS bytes, wall s, exit code, last lines of its output)``.

    ``cwd`` is outside the repository so that ``python -m`` imports the installed package (or the one
    ``PYTHONPATH`` names: a pristine copy of an older tree for the "before" figures), not the folder.
    """
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    t0 = time.perf_counter()
    proc = subprocess.Popen(["nice", "-n", "19", *cmd], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    # `nice` execs the command, so the child's ru_maxrss is the command's (Linux: kB)
    return usage.ru_maxrss * 1024.0, wall, proc.returncode, "\n".join(out.strip().splitlines()[-6:])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", type=Path, default=Path("/work/data/memory"), help="where the long stems go")
    ap.add_argument("--cases", default="2x20,16x5", help="comma-separated TRACKSxMINUTES (e.g. 2x20,16x5,16x60)")
    ap.add_argument("--mixers", default="dmc,knowledge")
    ap.add_argument("--backends", default="builtin")
    ap.add_argument("--no-report", action="store_true", help="pass --no-report to automix")
    ap.add_argument("--render", action="store_true", help="also time `mixbridge render` of each session")
    ap.add_argument("--json", type=Path, help="write every figure here")
    ap.add_argument("--label", default="", help="a label stored with the figures (before/after)")
    args = ap.parse_args(argv)

    args.root.mkdir(parents=True, exist_ok=True)
    demo = demo_folder(args.root)
    rows = []
    for case in args.cases.split(","):
        tracks, minutes = case.lower().split("x")
        folder = build_case(args.root, int(tracks), float(minutes), demo)
        n, in_bytes, mix_bytes, _ = stem_bytes(folder)
        for backend in args.backends.split(","):
            for mixer in args.mixers.split(","):
                out = args.root / "out" / f"{folder.name}-{mixer}-{backend}"
                shutil.rmtree(out, ignore_errors=True)
                cmd = MIXBRIDGE + ["automix", str(folder), "-o", str(out), "--mixer", mixer, "--backend", backend,
                                   "-q"] + (["--no-report"] if args.no_report else [])
                runs = [("automix", cmd)]
                if args.render:
                    runs.append(("render", MIXBRIDGE + ["render", str(out / "session.json"), "-o",
                                                        str(args.root / "out" / f"{folder.name}-render.wav"),
                                                        "--backend", backend, "-q"]))
                for command, c in runs:
                    rss, wall, rc, tail = run_child(c, args.root)
                    row = {"label": args.label, "case": case, "tracks": n, "minutes": float(minutes),
                           "command": command, "mixer": mixer, "backend": backend, "report": not args.no_report,
                           "input_gb": in_bytes / 1e9, "mix_gb": mix_bytes / 1e9, "peak_rss_gb": rss / 1e9,
                           "rss_over_input": rss / in_bytes, "rss_over_mix": rss / mix_bytes, "wall_s": wall,
                           "exit": rc}
                    rows.append(row)
                    print(f"{case} {command} {mixer}/{backend}: peak {rss / 1e9:.2f} GB "
                          f"({rss / in_bytes:.2f}x input, {rss / mix_bytes:.2f}x mix), {wall:.1f} s, exit {rc}",
                          flush=True)
                    if rc != 0:
                        print(tail, flush=True)
                        break
    print("\n| case | command | mixer | backend | input f32 GB | mix f32 GB | peak RSS GB | x input | x mix | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['command']} | {r['mixer']} | {r['backend']} | {r['input_gb']:.2f} | "
              f"{r['mix_gb']:.2f} | {r['peak_rss_gb']:.2f} | {r['rss_over_input']:.2f} | {r['rss_over_mix']:.2f} | "
              f"{r['wall_s']:.0f} |" + ("" if r["exit"] == 0 else f" exit {r['exit']}"))
    if args.json:
        old = json.loads(args.json.read_text()) if args.json.exists() else []
        args.json.write_text(json.dumps(old + rows, indent=1))
    return 0 if all(r["exit"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
