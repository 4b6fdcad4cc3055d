#!/usr/bin/env python
"""Benchmark what the live bus's load costs its audio callback, against idle runs: adaptive mastering
(``--parts master``) and an OSC flood (``--parts flood``).

**master.** On one named dummy JACK server (48 kHz, 256-frame periods, synchronous mode:
:func:`mixbridge.bridge.jack_rig.dummy_server`) it plays the quiet, dull loop of the measurements
(:func:`mixbridge.bridge.jack_rig.dull_loop`, -28 LUFS) through ``LiveBus`` for ``--seconds``, in rounds of
interleaved runs: ``idle`` (the fixed master chain, no model), then each model in each worker
(``process``: the default, a worker process; ``thread``: a thread of the bus's process, which holds the
interpreter lock the callback needs while it predicts). Per run: the output's loudness over the last 3 s and
true peak, when the short-term loudness stayed within 1 LU of the target, the callback's mean and p99 wall
time, how late callbacks start in their period (p99 of JACK's frames since cycle start), xruns per 10 s, and
each figure's ratio to the idle run of the same round (a shared machine's load moves both).

**flood.** One bus (the fixed chain, OSC on a free port) plays the same loop; windows of ``--window-s``
alternate idle and flood (``--flood-messages`` datagrams, a tenth malformed, sent as fast as another
process can: :func:`mixbridge.bridge.jack_rig.osc_flood`), ``--flood-rounds`` floods; per window the xruns and
the callback's mean and p99 wall time. Whether the flood raises xruns shows as the flood windows against the
idle windows around them.

    nice .venv/bin/python scripts/bench_live.py                       # both parts: rules and learned, 2 rounds
    nice .venv/bin/python scripts/bench_live.py --parts master --models rules --workers process --rounds 1
    nice .venv/bin/python scripts/bench_live.py --parts flood --flood-rounds 5

The tests (tests/bridge/test_live_master.py, tests/bridge/test_live.py) check loudness, ceiling, the worker
process and what the control does with every flood message; the callback cost is this script's, because on
a shared 2-core machine the idle runs' own xruns swamp it.
"""
from __future__ import annotations

import argparse
import math
import subprocess
import time

import numpy as np

from mixbridge.bridge.jack_rig import LoopbackRig, dull_loop, dummy_server, flood_command, run_live_bus
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


def bench_master(server: str, args: argparse.Namespace, signal: np.ndarray) -> None:
    """The master part: idle / model x worker runs, interleaved in rounds; prints the table."""
    models = [m for m in args.models.split(",") if m]
    workers = [w for w in args.workers.split(",") if w]
    chain = {"limiter": {"ceiling_dbtp": args.ceiling_dbtp}}
    rows = []
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
    print(f"\nmaster: {args.seconds:g} s runs, window {args.window_s:g} s, target {args.target_lufs:g} LUFS, ceiling "
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


def bench_flood(server: str, args: argparse.Namespace, signal: np.ndarray) -> None:
    """The flood part: one bus with OSC, idle and flood windows alternating; prints the table."""
    from mixbridge.bridge.live import LiveBus

    windows = ["idle"] + ["flood", "idle"] * args.flood_rounds
    rig = LoopbackRig(server, capacity_s=2.0)  # the recording is not kept: the rig only plays
    bus = LiveBus({"limiter": {"ceiling_dbtp": args.ceiling_dbtp}}, jack_server=server, client_name="mb-bench-osc",
                  osc_port=0)
    rows = []
    try:
        bus.start()
        rig.connect("mb-bench-osc")
        rig.play(signal, loop=True)
        time.sleep(1.0)  # let the bus settle after start-up
        for kind in windows:
            start, xruns0 = time.monotonic(), bus.xruns
            if kind == "flood":
                subprocess.run(flood_command(bus.osc_port, args.flood_messages), check=True, timeout=60)
            sent_s = time.monotonic() - start
            time.sleep(max(0.0, args.window_s - sent_s))
            times, _ = bus.callback_times_ms(last=int(args.window_s * bus.sample_rate / bus.block_size))
            rows.append((kind, bus.xruns - xruns0, float(times.mean()), float(np.percentile(times, 99)), sent_s))
        summary = bus.summary()
    finally:
        bus.stop()
        rig.close()
    print(f"\nflood: {args.flood_messages} OSC messages per flood (a tenth malformed), {args.window_s:g} s windows; "
          f"bus OSC: {summary.osc_applied} applied, {summary.osc_invalid} refused\n")
    print("| window | kind | xruns | callback mean ms | callback p99 ms | flood sent in s |")
    print("|---|---|---|---|---|---|")
    for i, (kind, xr, mean, p99, sent_s) in enumerate(rows):
        print(f"| {i + 1} | {kind} | {xr} | {mean:.3f} | {p99:.3f} | {sent_s:.2f} |" if kind == "flood" else
              f"| {i + 1} | {kind} | {xr} | {mean:.3f} | {p99:.3f} | - |")
    idle = [r[1] for r in rows if r[0] == "idle"]
    flood = [r[1] for r in rows if r[0] == "flood"]
    print(f"\nxruns per window: idle median {np.median(idle):g} (range {min(idle)}..{max(idle)}), flood median "
          f"{np.median(flood):g} (range {min(flood)}..{max(flood)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default="master,flood", help="comma-separated: master, flood")
    ap.add_argument("--models", default="rules,learned", help="master: comma-separated: rules, learned")
    ap.add_argument("--workers", default="process,thread", help=f"master: comma-separated: {', '.join(WORKERS)}")
    ap.add_argument("--onnx", default=None, help="master: the learned master's ONNX export (default: the shipped one)")
    ap.add_argument("--rounds", type=int, default=2, help="master: rounds of interleaved runs")
    ap.add_argument("--seconds", type=float, default=16.0, help="master: length of each run")
    ap.add_argument("--window-s", type=float, default=3.0, help="master: the model's window; flood: each window")
    ap.add_argument("--target-lufs", type=float, default=-12.0)
    ap.add_argument("--ceiling-dbtp", type=float, default=-1.0)
    ap.add_argument("--flood-rounds", type=int, default=3, help="flood: floods (each between two idle windows)")
    ap.add_argument("--flood-messages", type=int, default=10_000, help="flood: datagrams per flood")
    args = ap.parse_args()
    parts = [p for p in args.parts.split(",") if p]
    unknown = set(parts) - {"master", "flood"}
    if unknown:
        ap.error(f"--parts {','.join(sorted(unknown))}: not one of master, flood")
    signal = dull_loop(sample_rate=SAMPLE_RATE)
    with dummy_server(sample_rate=SAMPLE_RATE) as server:
        if "flood" in parts:
            bench_flood(server, args, signal)
        if "master" in parts:
            bench_master(server, args, signal)


if __name__ == "__main__":
    main()
