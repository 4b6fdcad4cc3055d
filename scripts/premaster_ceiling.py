"""The round-trip ceiling of a pre-master dataset: how close its labels master the inputs back.

For ``--n`` examples of ``--split`` (evenly spaced over the split, in index order), master each
pre-master with its own label through the one master bus (:func:`mixbridge.plugins.mastering.master`)
and score the result against the original master with the benchmark's columns
(:func:`mixbridge.models.master_metrics.score_master`: LUFS error, worst true peak, MR-STFT after
loudness normalisation, octave-band tonal error, PLR and crest errors), beside the untouched input.
No model can beat the label row on these pairs: it is the ceiling.

    .venv/bin/python scripts/premaster_ceiling.py /work/data/premaster --split test --n 20 [--json OUT.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    """Print the table (markdown) and optionally write the per-file scores as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dataset")
    ap.add_argument("--split", default="test", choices=("train", "val", "test"))
    ap.add_argument("--n", type=int, default=20, help="examples scored (default 20)")
    ap.add_argument("--json", default=None, metavar="OUT", help="write the per-file scores and the rows here")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from mixbridge.models.master_metrics import COLUMNS, aggregate_scores, score_master
    from mixbridge.plugins.datagen.premaster import read_premaster_dataset, round_trip_error

    data = read_premaster_dataset(args.dataset, args.split)
    if not len(data):
        print(f"{args.dataset}: no {args.split} examples", file=sys.stderr)
        return 2
    picks = np.unique(np.linspace(0, len(data) - 1, min(args.n, len(data))).round().astype(int))
    rows: dict[str, list[dict]] = {"input, untouched": [], "label through the one master bus": []}
    extra = []
    t0 = time.perf_counter()
    for i in picks.tolist():
        pre, master = data.pair(i)
        plan = data.plan(i)
        target, ceiling = plan["loudness"]["target_lufs"], plan["limiter"]["ceiling_dbtp"]
        rt = round_trip_error(pre, master, plan, data.sample_rate)
        rows["input, untouched"].append(score_master(pre, master, data.sample_rate, target_lufs=target,
                                                     ceiling_dbtp=ceiling))
        rows["label through the one master bus"].append(score_master(rt.audio, master, data.sample_rate,
                                                                     target_lufs=target, ceiling_dbtp=ceiling))
        extra.append({"index": int(data.indices[i]), "album": data.albums[i], "file": data.source_files[i],
                      "hard": bool(data.hard[i]), "max_abs_error": rt.max_abs_error,
                      "octave_error_db": rt.octave_error_db, "lufs_error_lu": rt.lufs_error_lu,
                      "gain_db": rt.gain_db, "label_gain_db": float(data.gain_db[i]),
                      "master_gain_db": float(data.degradations[i].get("master_gain_db", 0.0)),
                      "notices": list(rt.notices)})
    elapsed = time.perf_counter() - t0
    table = {name: aggregate_scores(s) for name, s in rows.items()}
    print(f"{args.dataset}, split {args.split}: {len(picks)} pairs, {elapsed:.0f} s")
    print("| method | " + " | ".join(label for _, label in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for name, row in table.items():
        cells = [f"{row[k]:.4g}" if isinstance(row[k], float) else f"{row[k]}/{row['files']}" for k, _ in COLUMNS]
        print(f"| {name} | " + " | ".join(cells) + " |")
    err = np.array([e["max_abs_error"] for e in extra])
    down = sum(e["master_gain_db"] < 0.0 for e in extra)
    print(f"largest sample error of the label round trip: median {np.median(err):.2e}, max {err.max():.2e}; "
          f"{down} of {len(extra)} targets are their clip turned down to -0.1 dBTP (lossy decodes over it); "
          f"{int(sum(e['hard'] for e in extra))} hard-set pairs")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"dataset": args.dataset, "split": args.split, "rows": table, "files": extra,
                       "scores": rows}, fh, indent=1, default=float)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
