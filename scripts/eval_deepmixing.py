"""The figures of the ``deepmixing`` model card (models/mixers/deepmixing.md), one sub-command per table.

    .venv/bin/python scripts/eval_deepmixing.py test --data /work/data/composer -o /work/runs_c/eval_test \
        --mixers deepmixing,dmc,mono_sum [--checkpoint deepmixing_direct=/work/runs_c/direct/best.json]
    .venv/bin/python scripts/eval_deepmixing.py automated --data /work/data/composer --split val \
        --mixers deepmixing,dmc,mono_sum [--checkpoint deepmixing_direct=/work/runs_c/direct/best.json]
    .venv/bin/python scripts/eval_deepmixing.py chunks --data /work/data/composer --split val \
        models/mixers/deepmixing.json /work/runs_c/direct/best.json [--ramped]
    .venv/bin/python scripts/eval_deepmixing.py curves --data /work/data/composer --split test \
        models/mixers/deepmixing.json /work/runs_c/direct/best.json [--excerpts e1m9_x0]

* ``test``: :func:`mixbridge.app.evaluate.evaluate_dataset` (what ``mixbridge evaluate --dataset`` runs) on a
  split, against the dataset's static ``target/mix.wav``; prints its table (means over the excerpts, the
  time-resolved level error included) and the unrounded means.
* ``automated``: :func:`mixbridge.models.training.deepmixing.score_against_automated_target` on the split's
  excerpts with a CC7 ramp (the composer's session with its ramps as fader automation); prints the
  per-mixer means.
* ``curves``: how much the mixer's curves move: per checkpoint, each track's span and standard deviation
  over time of its per-chunk gain (dB, its mean over time removed) and the mean chunk-to-chunk change.
* ``chunks``: the chunk level RMSE of checkpoints' gains against the time-varying targets
  (:class:`~mixbridge.models.training.deepmixing.ExcerptChunks`, ``chunk_level_errors_db``), beside the
  uniform gains and the static labels.

``--checkpoint NAME=PATH`` registers another ``deepmixing`` checkpoint as mixer ``NAME`` in this process.
One torch thread (``--threads``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time


def _register(pairs: list[str]) -> None:
    from mixbridge.models.deepmixing_mixer import DeepMixingMixer
    from mixbridge.models.mixers import MIXERS, register_mixer

    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"--checkpoint {pair!r}: write NAME=PATH (e.g. deepmixing_direct=RUN/best.json)")
        if name not in MIXERS.names():
            register_mixer(name, lambda path=path: DeepMixingMixer(checkpoint=path), f"deepmixing checkpoint {path}")


def _test(args) -> None:
    from mixbridge.app.evaluate import evaluate_dataset

    summary = evaluate_dataset(args.data, args.mixers, args.split, out_dir=args.out, progress=False)
    print(summary["table"])
    for run, means in summary["runs"].items():
        print(f"{run}: {json.dumps({k: v for k, v in means.items() if isinstance(v, float)})}")


def _automated(args) -> None:
    import numpy as np

    from mixbridge.models.mixers import get_mixer
    from mixbridge.models.training.deepmixing import score_against_automated_target
    from mixbridge.plugins.datagen.composer import read_composer_dataset

    excerpts = [e for e in read_composer_dataset(args.data).split(args.split)
                if any(t.get("cc7_ramped") for t in e.targets)]
    names = [m for m in args.mixers.split(",") if m]
    rows = score_against_automated_target(excerpts, {m: get_mixer(m) for m in names})
    print(f"{args.split}, excerpts with a CC7 ramp: {', '.join(e.id for e in excerpts)}")
    print("| mixer | level RMSE dB | time level RMSE dB | sum/diff MR-STFT |\n|---|---|---|---|")
    for m in names:
        r = [x for x in rows if x["mixer"] == m]
        print(f"| {m} | {np.mean([x['level_rmse_db'] for x in r]):.2f} | "
              f"{np.mean([x['time_level_rmse_db'] for x in r]):.2f} | "
              f"{np.mean([x['sum_difference_mrstft'] for x in r]):.3f} |")


def _chunks(args) -> None:
    import numpy as np
    import torch

    from mixbridge.models.checkpoint import load_checkpoint
    from mixbridge.models.training.deepmixing import ExcerptChunks, chunk_level_errors_db, target_fractions
    from mixbridge.plugins.datagen.composer import read_composer_dataset

    excerpts = read_composer_dataset(args.data).split(args.split)
    if args.ramped:
        excerpts = [e for e in excerpts if any(t.get("cc7_ramped") for t in e.targets)]
    nets = {c: load_checkpoint(c)[0].eval() for c in args.checkpoints}
    data = ExcerptChunks(excerpts, next(iter(nets.values())))
    errs: dict[str, list] = {k: [] for k in ["uniform", "static label", *nets]}
    for i, ex in enumerate(excerpts):
        it = data[i]
        target = torch.from_numpy(it["target"]).double()
        k, t = target.shape
        errs["uniform"].append(chunk_level_errors_db(torch.full((k, t), 1.0 / t, dtype=torch.float64), target))
        static = target_fractions(np.repeat(np.asarray(ex.target_gain_db)[:, None], k, axis=1))
        errs["static label"].append(chunk_level_errors_db(torch.from_numpy(static).double(), target))
        for c, net in nets.items():
            with torch.no_grad():
                alpha = net(torch.from_numpy(it["track_db"]), torch.from_numpy(it["mix_mfcc"]))
            errs[c].append(chunk_level_errors_db(net.mean_gains(alpha).double(), target))
    for name, v in errs.items():
        e = torch.cat(v)
        rmse = float(torch.sqrt((e ** 2).mean()))
        print(f"{args.split} {name}: chunk level RMSE {rmse:.3f} dB over {e.numel()} pairs")


def _curves(args) -> None:
    import numpy as np

    from mixbridge.audio import load_stems
    from mixbridge.models.deepmixing_mixer import DeepMixingMixer
    from mixbridge.plugins.datagen.composer import read_composer_dataset

    excerpts = read_composer_dataset(args.data).split(args.split)
    if args.excerpts:
        excerpts = [e for e in excerpts if e.id in args.excerpts.split(",")]
    for path in args.checkpoints:
        mixer = DeepMixingMixer(checkpoint=path)
        spans, stds, steps = [], [], []
        for ex in excerpts:
            d = mixer.predict(load_stems(ex.stems_dir))
            g = d["gain_db"][d["audible"]]                       # [tracks, chunks], dB relative per chunk
            g = g - g.mean(axis=1, keepdims=True)                # the curve around each track's static gain
            span = np.ptp(g, axis=1)
            if args.excerpts:
                print(f"{path} {ex.id}: span {span.min():.2f}..{span.max():.2f} dB, mean std over time "
                      f"{g.std(axis=1).mean():.3f} dB")
            spans.append(span)
            stds.append(g.std(axis=1))
            steps.append(np.abs(np.diff(g, axis=1)).ravel())
        print(f"{path} {args.split} ({len(excerpts)} excerpts): mean span {np.concatenate(spans).mean():.2f} dB, "
              f"mean std over time {np.concatenate(stds).mean():.3f} dB, mean |chunk-to-chunk change| "
              f"{np.concatenate(steps).mean():.3f} dB")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("test", "automated"):
        s = sub.add_parser(name)
        s.add_argument("--data", required=True, help="the composer dataset folder")
        s.add_argument("--split", default="test" if name == "test" else "val")
        s.add_argument("--mixers", default="deepmixing,dmc,mono_sum", help="comma list of registered mixers")
        s.add_argument("--checkpoint", action="append", default=[], metavar="NAME=PATH",
                       help="register a deepmixing checkpoint as mixer NAME (repeatable)")
        if name == "test":
            s.add_argument("-o", "--out", required=True, help="results.jsonl + summary.json go here")
    s = sub.add_parser("chunks")
    s.add_argument("--data", required=True)
    s.add_argument("--split", default="val")
    s.add_argument("--ramped", action="store_true", help="only the excerpts with a CC7 ramp")
    s.add_argument("checkpoints", nargs="+", help="deepmixing checkpoints (NAME.json)")
    s = sub.add_parser("curves")
    s.add_argument("--data", required=True)
    s.add_argument("--split", default="test")
    s.add_argument("--excerpts", default="", help="comma list of excerpt ids (default: the whole split)")
    s.add_argument("checkpoints", nargs="+", help="deepmixing checkpoints (NAME.json)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    t0 = time.time()
    if args.cmd in ("test", "automated"):
        _register(args.checkpoint)
    {"test": _test, "automated": _automated, "chunks": _chunks, "curves": _curves}[args.cmd](args)
    print(f"seconds: {time.time() - t0:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
