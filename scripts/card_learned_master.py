"""The figures of the learned mastering model's card (models/masterers/learned.md), on the held-out test album.

    .venv/bin/python scripts/card_learned_master.py -o OUT_DIR [--premaster DATASET] [--premaster-limit 24]
        [--seconds 20] [--checkpoint models/masterers/learned.json] [--target-lufs -14] [--ceiling-dbtp -1]

The benchmark's own inputs and scorer (:mod:`mixbridge.models.master_bench`,
:func:`mixbridge.models.master_metrics.score_master`): one ``--seconds`` excerpt of each test-album master
under the bench's independent degradation, plus the test split of a pre-master dataset; the rows
``input``, ``gain-limiter``, ``rules``, ``learned`` and ``learned-reference`` (another test master as the
reference) come from :func:`~mixbridge.models.master_bench.run_bench`, and ``learned-original`` (the
true original as the reference, matchering's setting in the issue's table) is scored here the same way.
Writes ``OUT_DIR/card.md`` and ``OUT_DIR/card.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    import torch

    from mixbridge.atomic import atomic_write_text
    from mixbridge.models import master_bench as mb
    from mixbridge.models.learned_master import SHIPPED_CHECKPOINT, LearnedMasterer
    from mixbridge.models.master_metrics import aggregate_scores, score_master
    from mixbridge.plugins.mastering import master

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", required=True, type=Path)
    ap.add_argument("--premaster", type=Path, default=None)
    ap.add_argument("--premaster-limit", type=int, default=24)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--limit", type=int, default=None, help="at most this many independent items")
    ap.add_argument("--checkpoint", type=Path, default=SHIPPED_CHECKPOINT)
    ap.add_argument("--target-lufs", type=float, default=-14.0)
    ap.add_argument("--ceiling-dbtp", type=float, default=-1.0)
    ap.add_argument("--methods", default="input,gain-limiter,rules,learned,learned-reference")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    items = mb.independent_items(seconds=args.seconds, seed=0, limit=args.limit)
    if args.premaster is not None:
        items += mb.premaster_items(args.premaster, limit=args.premaster_limit)
    methods = [m for m in args.methods.split(",") if m]
    results = mb.run_bench(items, methods, target_lufs=args.target_lufs, ceiling_dbtp=args.ceiling_dbtp,
                           progress=lambda s: print(s, flush=True))
    model = LearnedMasterer(args.checkpoint)
    scores = []
    for item in items:
        t0 = time.process_time()
        plan = model(item.input, item.sample_rate, target_lufs=args.target_lufs, ceiling_dbtp=args.ceiling_dbtp,
                     references=(item.master,))
        out = master(item.input, plan.params, item.sample_rate).audio
        spent = time.process_time() - t0
        sc = score_master(out, item.master, item.sample_rate, target_lufs=args.target_lufs,
                          ceiling_dbtp=args.ceiling_dbtp)
        sc.pop("octave_bands")
        scores.append({"id": item.id, "set": item.set, "cpu_s": spent, **sc})
        print(f"learned-original: {item.id} tonal {sc['tonal_error_db']:.2f} mrstft {sc['mrstft']:.3f}", flush=True)
    rows = {}
    for s in sorted({sc["set"] for sc in scores}) + ["all"]:
        chosen = [sc for sc in scores if s == "all" or sc["set"] == s]
        minutes = sum(it.input.shape[1] / it.sample_rate / 60.0 for it in items if s == "all" or it.set == s)
        rows[s] = {**aggregate_scores(chosen), "cpu_s_per_min": sum(c["cpu_s"] for c in chosen) / minutes}
    results["methods"]["learned-original"] = {"label": "learned, the true original as reference", "status": "ok",
                                              "reason": "", "failures": [], "scores": scores, "rows": rows}
    results["command"] = " ".join(["scripts/card_learned_master.py", *(argv if argv is not None else sys.argv[1:])])
    sets = sorted({it.set for it in items})
    parts = [f"`{results['command']}`\n\n## All inputs\n\n", mb.format_table(results, "all")]
    for s in sets:
        parts += [f"\n## {s}\n\n", mb.format_table(results, s)]
    md = "".join(parts)
    args.output.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.output / "card.md", md)
    atomic_write_text(args.output / "card.json", json.dumps(results, indent=1, default=float) + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
