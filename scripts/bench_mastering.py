"""The mastering table of issue 13, side by side in one run on the held-out (test album) inputs.

    .venv/bin/python scripts/bench_mastering.py -o OUT_DIR [--premaster DATASET] [--seconds 20]
        [--methods input,gain-limiter,rules,learned,learned-reference,unet,matchering,matchering-bus]
        [--matchering-python /work/data/bench/mvenv/bin/python] [--target-lufs original|LUFS] [--ceiling-dbtp -1]
        [--limit N] [--quick] [--synthetic]

Inputs (:mod:`mixbridge.models.master_bench`): one ``--seconds`` excerpt of each test-album master
degraded by the bench's own independent degradation (first-order +-4 dB shelves, transient expansion,
-24 LUFS), plus, with ``--premaster``, the test split of a ``mixbridge datagen premaster`` dataset. Each
method's output is scored against the original master (:func:`mixbridge.models.master_metrics.score_master`),
mastered to that master's own loudness unless ``--target-lufs`` names one target for all.
Writes ``OUT_DIR/bench.md`` (a table for all inputs and one per input set) and ``OUT_DIR/bench.json``
(every score). ``--quick``: 2 items per set, 8 s excerpts. ``--synthetic``: synthetic masters instead of the
Debian music (offline smoke run). ``--resume`` reuses the methods an earlier call left complete in OUT_DIR for the same
inputs (marked "reused"). matchering runs only with ``--matchering-python`` (a separate venv:
``python3 -m venv /work/data/bench/mvenv && /work/data/bench/mvenv/bin/pip install matchering``); without
it its rows say it was skipped and why. Methods not built yet are reported as missing.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    import torch

    from mixbridge.atomic import atomic_write_text
    from mixbridge.models import master_bench as mb

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", required=True, type=Path, metavar="OUT_DIR", help="where bench.md/json go")
    ap.add_argument("--premaster", type=Path, default=None, metavar="DATASET",
                    help="a mixbridge datagen premaster dataset: its test split joins the inputs")
    ap.add_argument("--seconds", type=float, default=20.0, help="excerpt length of the independent set (default 20)")
    ap.add_argument("--limit", type=int, default=None, help="at most this many items per set")
    ap.add_argument("--methods", default=",".join(mb.METHOD_KEYS), help=f"comma-separated (default all: "
                    f"{','.join(mb.METHOD_KEYS)})")
    ap.add_argument("--matchering-python", type=Path, default=None, metavar="PATH",
                    help="a Python interpreter with matchering installed (run in a subprocess)")
    ap.add_argument("--unet", type=Path, default=None, metavar="CHECKPOINT",
                    help="U-Net weights (default the shipped models/masterers/unet)")
    ap.add_argument("--target-lufs", default="original", help="a loudness target in LUFS for every input, or "
                    "'original' (default): each input's own original master's loudness")
    ap.add_argument("--ceiling-dbtp", type=float, default=-1.0)
    ap.add_argument("--seed", type=int, default=0, help="seed of the excerpts and degradations (default 0)")
    ap.add_argument("--quick", action="store_true", help="2 items per set, 8 s excerpts (a smoke run)")
    ap.add_argument("--synthetic", action="store_true", help="synthetic masters instead of the test albums")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--resume", action="store_true", help="reuse the methods OUT_DIR/bench.json already holds "
                    "complete for the same inputs (marked 'reused'); run the others")
    ap.add_argument("--rerun", default="", metavar="METHODS", help="with --resume: run these (comma-separated) "
                    "again even when OUT_DIR holds them")
    ap.add_argument("-q", "--quiet", action="store_true", help="no per-item lines")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    limit, seconds = (2, min(args.seconds, 8.0)) if args.quick else (args.limit, args.seconds)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    say = (lambda s: None) if args.quiet else (lambda s: print(s, flush=True))
    if args.synthetic:
        items = mb.synthetic_items(limit or 2, seconds=min(seconds, 4.0), seed=args.seed)
    else:
        items = mb.independent_items(seconds=seconds, seed=args.seed, limit=limit)
    if args.premaster is not None:
        items += mb.premaster_items(args.premaster, limit=limit)
    try:
        target = None if args.target_lufs == "original" else float(args.target_lufs)
        previous = None
        if args.resume and (args.output / "bench.json").exists():
            previous = json.loads((args.output / "bench.json").read_text())
            for key in (m.strip() for m in args.rerun.split(",") if m.strip()):
                previous.get("methods", {}).pop(key, None)
            methods += [k for k in previous.get("methods", {}) if k not in methods]  # kept, not run again
        results = mb.run_bench(items, methods, target_lufs=target, ceiling_dbtp=args.ceiling_dbtp,
                               matchering_python=args.matchering_python, unet_path=args.unet, progress=say,
                               previous=previous)
    except ValueError as e:
        print(f"bench_mastering: {e}", file=sys.stderr)
        return 2
    call = " ".join(["scripts/bench_mastering.py", *(argv if argv is not None else sys.argv[1:])])
    results["calls"] = [*(previous or {}).get("calls", []), call]
    results["command"] = call.split(" --resume")[0]
    sets = sorted({it.set for it in items})
    target_text = ("each input's original master's own loudness" if target is None else f"{target:g} LUFS")
    reused = sorted(k for k, e in results["methods"].items() if e.get("reused"))
    again = (f" (resumed with `--resume`: {', '.join(reused)} reused from an earlier call of the same command)"
             if reused else "")
    parts = [f"# Mastering benchmark\n\n`{results['command']}`{again}\n\n"
             f"{len(items)} held-out inputs ({', '.join(f'{sum(it.set == s for it in items)} {s}' for s in sets)}), "
             f"loudness target {target_text}, ceiling {args.ceiling_dbtp:g} dBTP.\n\n## All inputs\n\n",
             mb.format_table(results, "all")]
    if len(sets) > 1:
        for s in sets:
            parts += [f"\n## {s}\n\n", mb.format_table(results, s)]
    md = "".join(parts)
    args.output.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.output / "bench.md", md)
    atomic_write_text(args.output / "bench.json", json.dumps(results, indent=1, default=float) + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
