#!/usr/bin/env python
"""Benchmark what adaptive mastering on the live bus costs the audio callback, against an idle run.

On one named dummy JACK server (48 kHz, 256-frame periods, synchronous mode:
:func:`mixbridge.bridge.jack_rig.dummy_server`) it plays the quiet, dull loop of the measurements
(:func:`mixbridge.bridge.jack_rig.dull_loop`, -28 LUFS) through ``LiveBus`` for ``--seconds``, in rounds of
interleaved runs: ``idle`` (the fixed master chain, no model), then each model in each worker
(``process``: the default, a worker process; ``thread``: a thread of the bus's process, which holds the
interpreter lock the callback needs while it predicts). Per run: the output's loudness over the last 3 s and
true peak, when the short-term loudness stayed within 1 LU of the target, the callback's mean and p99 wall
time, how late callbacks start in their period (p99 of JACK's frames since cycle start), xruns per 10 s, and
each figure's ratio to the idle run of the same round (a shared machine's load moves both).

    nice .venv/bin/python scripts/bench_live_master.py                       # rules and learned, 2 rounds
    nice .venv/bin/python scripts/bench_live_master.py --models rules --workers process --rounds 1 --seconds 10

The test (tests/bridge/test_live_master.py) checks loudness, ceiling and the worker process; the callback
cost is this script's, because on a shared 2-core machine the idle run's own xruns swamp it.
"""
from __future__ import annotations

import argparse
import math

import numpy as np

from mixbridge.bridge.jack_rig import dull_loop, dummy_server, run_live_bus
from mixbridge.bridge.live_master import WORKERS, MasterModelSettings, load_predictor
from mixbridge.loudness import integrated_lufs, true_peak_dbtp
from mixbridge.spectrum import short_term_lufs

SAMPLE_RATE = 48000
MEASURE_S = 3.0
WITHIN_LU = 1.0


def _reached_s(out: np.ndarray, target_lufs: float) -> float:
    t_s, st = short_term_lufs(out, SAMPLE_RATE, hop_s=0.25)
    off = np.nonzero(np.abs(st - target_lufs) > WITHIN_LU)[0]
    if not off.size:
        return float(t_s[0])
    return float(t_s[off[-1] + 1]) if off[-1] + 1 < t_s.size else math.inf


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="rules,learned", help="comma-separated: rules, learned")
    ap.add_argument("--workers", default="process,thread", help=f"comma-separated: {', '.join(WORKERS)}")
    ap.add_argument("--onnx", default=None, help="the learned master's ONNX export (default: the shipped one)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=16.0, help="length of each run")
    ap.add_argument("--window-s", type=float, default=3.0)
    ap.add_argument("--target-lufs", type=float, default=-12.0)
    ap.add_argument("--ceiling-dbtp", type=float, default=-1.0)
    args = ap.parse_args()
    models = [m for m in args.models.split(",") if m]
    workers = [w for w in args.workers.split(",") if w]
    signal = dull_loop(sample_rate=SAMPLE_RATE)
    chain = {"limiter": {"ceiling_dbtp": args.ceiling_dbtp}}
    rows = []
    with dummy_server(sample_rate=SAMPLE_RATE) as server:
        for r in range(args.rounds):
            idle = run_live_bus(server, chain, signal=signal, seconds=args.seconds, client_name="mb-bench-idle")
            base = (float(idle.callback_ms.mean()), float(np.percentile(idle.late_ms, 99)),
                    idle.summary.xruns * 10 / args.seconds)
            rows.append((r, "idle", "-", idle, None, base))
            for model in models:
                onnx = args.onnx if model == "learned" else None
                for worker in workers:
                    predictor = load_predictor(model, onnx_path=onnx)
                    settings = MasterModelSettings(predictor, model, window_s=args.window_s, worker=worker,
                                                   target_lufs=args.target_lufs, model=(model, onnx))
                    run = run_live_bus(server, chain, signal=signal, seconds=args.seconds,
                                       client_name="mb-bench-master", master_model=settings)
                    rows.append((r, model, worker, run, settings, base))
                    print(f"round {r + 1}: {model} in a {worker} done ({run.summary.master_model})", flush=True)
    print(f"\n{args.seconds:g} s runs, window {args.window_s:g} s, target {args.target_lufs:g} LUFS, ceiling "
          f"{args.ceiling_dbtp:g} dBTP; ratios to the idle run of the same round\n")
    head = ("round", "model", "worker", "LUFS last 3 s", "true peak dBTP", f"within {WITHIN_LU:g} LU from s",
            "callback mean ms (x idle)", "callback p99 ms", "start late p99 ms (x idle)", "xruns/10 s (idle)")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r, model, worker, run, settings, (mean0, late0, xr0) in rows:
        mean, p99 = float(run.callback_ms.mean()), float(np.percentile(run.callback_ms, 99))
        late = float(np.percentile(run.late_ms, 99))
        xr = run.summary.xruns * 10 / args.seconds
        if settings is None:
            loud = peak = reached = "-"
        else:
            loud = f"{integrated_lufs(run.recording[:, -int(MEASURE_S * SAMPLE_RATE):], SAMPLE_RATE):.2f}"
            peak = f"{true_peak_dbtp(run.recording, SAMPLE_RATE):.2f}"
            reached = f"{_reached_s(run.recording, args.target_lufs):.2f}"
        print(f"| {r + 1} | {model} | {worker} | {loud} | {peak} | {reached} | {mean:.3f} ({mean / mean0:.2f}) | "
              f"{p99:.3f} | {late:.2f} ({late / max(late0, 1e-9):.1f}) | {xr:.1f} ({xr0:.1f}) |")


if __name__ == "__main__":
    main()
