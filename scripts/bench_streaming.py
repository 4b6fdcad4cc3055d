#!/usr/bin/env python
"""Benchmark streaming proxies: time per block and real-time factor, side by side.

For each model and block size (default 32..1024 samples at 48 kHz) it times the
streaming step of three backends, each on one thread:

* ``eager``: the torch :class:`~mixbridge.models.tcn.StreamingTCN` wrapper;
* ``torchscript``: :class:`~mixbridge.export.torchscript.TorchScriptSession.process`;
* ``onnxruntime``: :class:`~mixbridge.export.runtime.StreamingSession.process`
  (IOBinding, preallocated buffers), the exported block graph;
* ``dsp`` (grey-box proxies only, which export to ONNX only): the same session's CPU path, the
  control graph plus the numpy reference DSP (:mod:`mixbridge.export.greybox_dsp`).

Columns: mean and p99 wall time per block in ms, the real-time factor (mean wall
time / block duration), ``core`` (thread CPU time per block / block duration: the
fraction of one core the stream needs, unaffected by other processes competing
for the CPU) and a mark where p99 is over half a block (the live-bus budget). Models are registry names (untrained
weights time the same as trained ones) or checkpoint paths.

The ``master`` part times the live bus's torch-free streaming master chain
(:class:`~mixbridge.plugins.master_bus.StreamingMaster`: EQ, bus compressor, gain,
true-peak look-ahead limiter; stereo, every stage engaged) alone and after a
proxy streamed by onnxruntime (``--live-proxy``, default ``tcn-rt``), which is what
``mixbridge live`` runs per period.

    nice .venv/bin/python scripts/bench_streaming.py
    nice .venv/bin/python scripts/bench_streaming.py --models tcn-rt --block-sizes 64,128 --seconds 2
    nice .venv/bin/python scripts/bench_streaming.py --parts master
    nice .venv/bin/python scripts/bench_streaming.py --models models/proxies/zamcomp.json --block-sizes 64
    nice .venv/bin/python scripts/bench_streaming.py --parts proxy --block-sizes 64 --repeat 3 \
        --backends onnxruntime --models models/proxies/eqcomp_builtin.json,models/proxies/comp_builtin.json,tcn-rt

``--repeat N`` times each proxy cell N times (backends interleaved) and adds a table of the median
``core``, its spread (min..max) and its ratio to the ``onnxruntime`` column of the same runs: on a
shared CPU the ratio to that raw-engine reference moves less than the cost itself.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def _time_blocks(step, block: np.ndarray, n_blocks: int, warmup: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Wall-clock and thread CPU seconds per call. With one compute thread, the CPU time is
    the cost of the block itself; wall time also counts waiting for a busy CPU."""
    for _ in range(warmup):
        step(block)
    wall = np.empty(n_blocks)
    cpu = np.empty(n_blocks)
    clock, cpu_clock = time.perf_counter, time.thread_time
    for i in range(n_blocks):
        t0, c0 = clock(), cpu_clock()
        step(block)
        wall[i], cpu[i] = clock() - t0, cpu_clock() - c0
    return wall, cpu


def _time_blocks_paced(step, block: np.ndarray, n_blocks: int, period_s: float, warmup: int = 20) -> np.ndarray:
    """Thread CPU seconds per call when calls come once per ``period_s`` (sleeping between them),
    as in an audio callback: caches and branch predictors have gone cold by the next call."""
    for _ in range(warmup):
        step(block)
    cpu = np.empty(n_blocks)
    cpu_clock = time.thread_time
    deadline = time.perf_counter()
    for i in range(n_blocks):
        deadline += period_s
        c0 = cpu_clock()
        step(block)
        cpu[i] = cpu_clock() - c0
        left = deadline - time.perf_counter()
        if left > 0:
            time.sleep(left)
    return cpu


def bench_model(source: str, block_sizes: list[int], seconds: float, sample_rate_override: int | None,
                backends: list[str], repeat: int = 1) -> list[dict]:
    """Rows of timings per block size and backend; with ``repeat`` > 1 each cell is timed that many
    times, the backends interleaved (so a busy spell of the shared CPU hits all of them), and the
    row keeps the median run (by thread CPU time) plus every run's ``core`` in ``core_runs``."""
    import torch

    from mixbridge.export.exporter import export_model, resolve_model
    from mixbridge.export.runtime import StreamingSession
    from mixbridge.export.torchscript import TorchScriptSession

    model, _ = resolve_model(source)
    if sample_rate_override:
        model.sample_rate = sample_rate_override
    sample_rate = model.sample_rate
    rows = []
    from mixbridge.models.registry import streaming_wrapper

    with tempfile.TemporaryDirectory() as tmp:
        sessions = {}
        formats = getattr(streaming_wrapper(model), "formats", ("onnx", "torchscript"))
        backends = [b for b in backends if b != "torchscript" or "torchscript" in formats]
        if "onnxruntime" in backends:
            export_model(model, "onnx", Path(tmp) / "onnx")
            sessions["onnxruntime"] = StreamingSession(Path(tmp) / "onnx", num_threads=1, dsp=False)
            if "dsp" in sessions["onnxruntime"].artifact.sidecar:  # a grey-box proxy: its CPU path too
                sessions["dsp"] = StreamingSession(Path(tmp) / "onnx", num_threads=1)
                backends = [*backends, "dsp"]
        if "torchscript" in backends:
            export_model(model, "torchscript", Path(tmp) / "ts")
            sessions["torchscript"] = TorchScriptSession(Path(tmp) / "ts", num_threads=1)
        torch.set_num_threads(1)
        wrapper = streaming_wrapper(model).eval()
        p = torch.rand(1, model.n_params)
        state = list(wrapper.initial_state(1))

        def eager_step(block: np.ndarray) -> None:
            with torch.inference_mode():
                _, state[0], state[1] = wrapper(torch.from_numpy(block)[None], p, p, state[0], state[1])

        for n in block_sizes:
            block = (0.1 * np.random.default_rng(0).standard_normal((1, n))).astype(np.float32)
            n_blocks = max(100, int(seconds * sample_rate / n))
            block_ms = 1e3 * n / sample_rate
            runs: dict[str, list[dict]] = {b: [] for b in backends}
            for _ in range(max(1, repeat)):
                for backend in backends:
                    if backend == "eager":
                        step = eager_step
                    else:
                        session = sessions[backend]
                        session.reset()
                        step = session.process
                    wall, cpu = _time_blocks(step, block, n_blocks)
                    wall, cpu = 1e3 * wall, 1e3 * cpu
                    mean, p99, cpu_mean = float(wall.mean()), float(np.percentile(wall, 99)), float(cpu.mean())
                    runs[backend].append({"model": source, "backend": backend, "block": n, "mean_ms": mean,
                                          "p99_ms": p99, "rtf": mean / block_ms, "cpu_ms": cpu_mean,
                                          "core": cpu_mean / block_ms, "p99_ok": p99 < block_ms / 2,
                                          "block_ms": block_ms})
            for backend in backends:
                done = sorted(runs[backend], key=lambda r: r["core"])
                rows.append({**done[len(done) // 2], "core_runs": [r["core"] for r in runs[backend]]})
    return rows, model


def print_repeat_summary(rows: list[dict], reference: str = "onnxruntime") -> None:
    """Median and spread (min..max) of ``core`` over the repeated runs, and each backend's ratio to the
    ``reference`` backend timed in the same runs (the ratio holds across machines better than the cost)."""
    print(f"\n## repeated runs: core = thread CPU time / block duration, median (min..max); ratio to "
          f"{reference} of the same model, median of the per-run ratios")
    print("| model | block | backend | runs | core median | spread | ratio |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        ref = next((q for q in rows if q["model"] == r["model"] and q["block"] == r["block"]
                    and q["backend"] == reference), None)
        c = np.array(r["core_runs"])
        ratio = (f"{float(np.median(c / np.array(ref['core_runs']))):.3f}" if ref is not None
                 and len(ref["core_runs"]) == c.size else "")
        print(f"| {r['model']} | {r['block']} | {r['backend']} | {c.size} | {float(np.median(c)):.4f} | "
              f"{float(c.min()):.4f}..{float(c.max()):.4f} | {ratio} |")


#: Master-bus settings for the master benchmark: every stage engaged (the cost hardly depends on them).
MASTER_BENCH_PARAMS = {
    "eq": {"low_shelf_gain_db": 2.0, "peak1_gain_db": -2.0, "peak2_gain_db": 1.5, "peak3_gain_db": -1.0,
           "high_shelf_gain_db": 1.0},
    "compressor": {"threshold_db": -20.0, "ratio": 3.0, "attack_ms": 5.0, "release_ms": 100.0, "knee_db": 6.0,
                   "makeup_db": 2.0},
    "gain": {"gain_db": 8.0},
    "limiter": {"ceiling_dbtp": -1.0, "release_ms": 50.0},
}


def bench_master(block_sizes: list[int], seconds: float, sample_rate: int, live_proxy: str | None,
                 paced_seconds: float = 1.0) -> list[dict]:
    """Time the streaming master chain (stereo), alone and after ``live_proxy`` in onnxruntime:
    back to back (as the proxy part) and paced at one block per block duration."""
    from mixbridge.plugins.master_bus import StreamingMaster

    chains = {"master": None}
    tmp = None
    if live_proxy:
        from mixbridge.export.exporter import export_model
        from mixbridge.export.runtime import StreamingSession

        tmp = tempfile.TemporaryDirectory()
        export_model(live_proxy, "onnx", Path(tmp.name) / "onnx")
        chains[f"{live_proxy}+master"] = StreamingSession(Path(tmp.name) / "onnx", num_threads=1, channels=2)
    rows = []
    for n in block_sizes:
        rng = np.random.default_rng(0)
        block = (0.3 * rng.standard_normal((2, n))).astype(np.float32)
        n_blocks = max(100, int(seconds * sample_rate / n))
        block_ms = 1e3 * n / sample_rate
        for name, proxy in chains.items():
            master = StreamingMaster(sample_rate, MASTER_BENCH_PARAMS, channels=2)
            master.prepare([n])
            if proxy is None:
                step = master.process
            else:
                proxy.reset()
                proxy.prepare([n])

                def step(b, proxy=proxy, master=master):
                    master.process(proxy.process(b))
            wall, cpu = _time_blocks(step, block, n_blocks)
            wall, cpu = 1e3 * wall, 1e3 * cpu
            mean, p99, cpu_mean = float(wall.mean()), float(np.percentile(wall, 99)), float(cpu.mean())
            n_paced = max(50, int(paced_seconds * sample_rate / n))
            paced = 1e3 * _time_blocks_paced(step, block, n_paced, n / sample_rate)
            rows.append({"chain": name, "block": n, "mean_ms": mean, "p99_ms": p99, "rtf": mean / block_ms,
                         "cpu_ms": cpu_mean, "core": cpu_mean / block_ms, "p99_ok": p99 < block_ms / 2,
                         "block_ms": block_ms, "paced_core": float(paced.mean()) / block_ms,
                         "paced_p99_core": float(np.percentile(paced, 99)) / block_ms})
    if tmp is not None:
        tmp.cleanup()
    return rows, list(chains)


def print_master(rows: list[dict], chains: list[str], block_sizes: list[int], sample_rate: int) -> None:
    from mixbridge.plugins.master_bus import StreamingMaster

    m = StreamingMaster(sample_rate, MASTER_BENCH_PARAMS, channels=2)
    print(f"\n## master chain: stereo, EQ (5 RBJ biquads) -> compressor (knee 6 dB) -> gain -> true-peak limiter "
          f"(look-ahead {m.lookahead_samples} samples, latency {m.latency_samples} samples), {sample_rate} Hz")
    print(f"| block | {'ms':>6} |" + "".join(f" {c} mean ms | p99 ms | RTF | core | paced core | paced p99 |"
                                           for c in chains))
    print("|" + "---|" * (2 + 6 * len(chains)))
    for n in block_sizes:
        cells = []
        block_ms = None
        for c in chains:
            r = next(r for r in rows if r["block"] == n and r["chain"] == c)
            block_ms = r["block_ms"]
            flag = "" if r["p99_ok"] else "!"
            cells.append(f" {r['mean_ms']:.3f} | {r['p99_ms']:.3f}{flag} | {r['rtf']:.3f} | {r['core']:.3f} | "
                         f"{r['paced_core']:.3f} | {r['paced_p99_core']:.3f} |")
        print(f"| {n} | {block_ms:6.3f} |" + "".join(cells))
    print("(paced: one block per block duration, sleeping in between, as an audio callback is called; the CPU "
          "time per block over the block duration, mean and p99 -- caches go cold between calls, so this is the "
          "cost to budget on a live bus)")
    print("(the proxy column streams the stereo input as a batch of 2 through onnxruntime, 1 thread, then the "
          "master chain: the live bus's work per period)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="tcn-tiny-causal,tcn-rt,tcn-10-causal",
                    help="comma-separated registry names or checkpoint paths")
    ap.add_argument("--block-sizes", default="32,64,128,256,512,1024")
    ap.add_argument("--backends", default="eager,torchscript,onnxruntime")
    ap.add_argument("--seconds", type=float, default=1.0, help="audio seconds timed per cell (>= 100 blocks)")
    ap.add_argument("--sample-rate", type=int, default=None, help="override the models' sample rate (Hz)")
    ap.add_argument("--parts", default="proxy,master", help="proxy (the models' backends), master (the live master "
                                                            "chain), or both")
    ap.add_argument("--paced-seconds", type=float, default=1.0,
                    help="audio seconds timed per cell in the master part's paced (real-time) timing")
    ap.add_argument("--repeat", type=int, default=1,
                    help="time each proxy cell this many times (backends interleaved) and print the median, "
                         "the spread and the ratio to onnxruntime")
    ap.add_argument("--live-proxy", default="tcn-rt",
                    help="proxy streamed before the master chain in the master part ('' for none)")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    block_sizes = [int(b) for b in args.block_sizes.split(",")]
    backends = args.backends.split(",")
    parts = args.parts.split(",")
    import onnxruntime
    import scipy

    if "proxy" in parts:
        import torch

        print(f"# torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, 1 thread each; "
              f"RTF = mean time per block / block duration (= fraction of one core)")
    all_rows: list[dict] = []
    for source in (args.models.split(",") if "proxy" in parts else []):
        rows, model = bench_model(source, block_sizes, args.seconds, args.sample_rate, backends, args.repeat)
        all_rows += rows
        used = list(dict.fromkeys(r["backend"] for r in rows))  # a grey-box proxy adds dsp, drops torchscript
        shape = (f"{model.n_blocks} blocks, kernel {model.kernel_size}, {model.channels} channels"
                 if hasattr(model, "n_blocks") else f"{model.architecture} {list(model.schema)}")
        print(f"\n## {source}: {'causal' if model.causal else 'centre-cropped'}, {shape}, {model.n_weights} weights, "
              f"receptive field {model.receptive_field} samples, latency {model.latency_samples} samples, "
              f"{model.sample_rate} Hz")
        header = f"| block | {'ms':>6} |" + "".join(f" {b} mean ms | p99 ms | RTF | core |" for b in used)
        print(header)
        print("|" + "---|" * (2 + 4 * len(used)))
        for n in block_sizes:
            cells = []
            block_ms = None
            for b in used:
                r = next(r for r in rows if r["block"] == n and r["backend"] == b)
                block_ms = r["block_ms"]
                flag = "" if r["p99_ok"] else "!"
                cells.append(f" {r['mean_ms']:.3f} | {r['p99_ms']:.3f}{flag} | {r['rtf']:.3f} | {r['core']:.3f} |")
            print(f"| {n} | {block_ms:6.3f} |" + "".join(cells))
        print("(ms: block duration; RTF: wall mean / block duration; core: thread CPU time / block duration, "
              "the cost without waiting for a busy CPU; ! = p99 above half a block)")
    if args.repeat > 1 and all_rows:
        print_repeat_summary(all_rows)
    if "master" in parts:
        sample_rate = args.sample_rate or 48000
        print(f"\n# master chain: numpy {np.__version__}, scipy {scipy.__version__}, onnxruntime "
              f"{onnxruntime.__version__}; no torch on this path")
        rows, chains = bench_master(block_sizes, args.seconds, sample_rate, args.live_proxy or None,
                                    paced_seconds=args.paced_seconds)
        print_master(rows, chains, block_sizes, sample_rate)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
