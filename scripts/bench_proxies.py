#!/usr/bin/env python
"""Benchmark the shipped proxies: training throughput (examples/s, CPU) and inference real-time factor.

For every checkpoint in ``models/proxies/`` (or those given with ``--proxies``):

* **training throughput**: optimizer steps of the proxy's own recipe (the
  ``train_config`` its checkpoint records, e.g. ``models/configs/proxy_greybox.yaml``:
  batch, crop length, loss weights; or ``--config``) on random data shaped like the
  proxy's dataset, in examples per second; ``cpu ex/s`` divides by the thread's CPU
  time instead of the wall time, so it does not drop when other processes
  compete for the cores;
* **offline inference**: the torch model on ``--seconds`` of mono audio in one
  call (``rtf`` = processing time / audio duration; below 1 is faster than real
  time);
* **streaming inference**: the ONNX artifact (exported to a temporary folder)
  run by the torch-free :class:`~mixbridge.export.runtime.StreamingSession` at
  ``--block-size`` samples per call, one thread; ``core`` is the thread CPU time
  per second of audio, the fraction of one core the live stream needs.

    nice .venv/bin/python scripts/bench_proxies.py
    nice .venv/bin/python scripts/bench_proxies.py --steps 5 --seconds 5 --json out/bench_proxies.json
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def train_throughput(model, kwargs: dict, steps: int) -> dict:
    import torch

    from mixbridge.models.losses import ProxyLoss
    from mixbridge.models.training import align_target

    torch.manual_seed(0)
    model = model.__class__(**model.config()).train()
    opt = torch.optim.Adam(model.parameters(), lr=kwargs.get("learning_rate", 3e-4))
    loss_fn = ProxyLoss(**{k: kwargs[k] for k in ("l1_weight", "stft_weight", "esr_weight", "pre_emphasis",
                                                   "warmup_samples") if k in kwargs})
    b, s = int(kwargs.get("batch_size", 4)), int(kwargs.get("patch_samples", 32768))
    x = torch.randn(b, model.n_inputs, s) * 0.1
    y = torch.tanh(3 * x) * 0.5
    p = torch.rand(b, model.n_params)

    def step():
        loss, _, _ = loss_fn(model(x, p), align_target(model, y))
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # warm-up
    w0, c0 = time.perf_counter(), time.thread_time()
    for _ in range(steps):
        step()
    wall, cpu = time.perf_counter() - w0, time.thread_time() - c0
    return {"examples_per_s": steps * b / wall, "cpu_examples_per_s": steps * b / cpu, "batch_size": b,
            "patch_samples": s}


def offline_rtf(model, seconds: float) -> dict:
    import torch

    n = int(seconds * model.sample_rate)
    x = torch.randn(1, model.n_inputs, n) * 0.1
    p = torch.full((1, model.n_params), 0.5)
    with torch.no_grad():
        model(x[..., : model.sample_rate], p)
        w0, c0 = time.perf_counter(), time.thread_time()
        model(x, p)
        wall, cpu = time.perf_counter() - w0, time.thread_time() - c0
    return {"rtf": wall / seconds, "core": cpu / seconds}


def streaming_rtf(checkpoint: Path, seconds: float, block_size: int) -> dict:
    from mixbridge.export.exporter import export_model
    from mixbridge.export.runtime import StreamingSession

    with tempfile.TemporaryDirectory() as tmp:
        export_model(str(checkpoint), "onnx", Path(tmp) / "art")
        sess = StreamingSession(Path(tmp) / "art", num_threads=1)
        sr = sess.sample_rate
        n_blocks = int(seconds * sr / block_size)
        block = (np.random.default_rng(0).standard_normal((sess.channels, block_size)) * 0.1).astype(np.float32)
        for _ in range(50):
            sess.process(block)
        w0, c0 = time.perf_counter(), time.thread_time()
        for _ in range(n_blocks):
            sess.process(block)
        wall, cpu = time.perf_counter() - w0, time.thread_time() - c0
        dur = n_blocks * block_size / sr
        return {"rtf": wall / dur, "core": cpu / dur, "block_size": block_size}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--proxies", nargs="*", default=None, help="checkpoint JSON files (default: models/proxies/*.json)")
    ap.add_argument("--config", default=None,
                    help="training recipe to time (default: the one each checkpoint records)")
    ap.add_argument("--steps", type=int, default=10, help="timed training steps")
    ap.add_argument("--seconds", type=float, default=10.0, help="seconds of audio for the inference timings")
    ap.add_argument("--block-size", type=int, default=512, help="streaming block size in samples")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)

    import torch

    from mixbridge.models.checkpoint import load_checkpoint
    from mixbridge.models.train import load_train_config

    torch.set_num_threads(args.threads)
    paths = [Path(p) for p in args.proxies] if args.proxies else sorted((ROOT / "models" / "proxies").glob("*.json"))
    if not paths:
        print("no proxies found", file=sys.stderr)
        return 1
    forced = load_train_config(args.config) if args.config else None
    rows = []
    print(f"torch {torch.__version__}, {args.threads} thread(s); training: {args.steps} steps of "
          f"{Path(args.config).name if args.config else 'the recipe each proxy records'}; inference: "
          f"{args.seconds:g} s of audio")
    print(f"{'proxy':<22}{'weights':>8}{'RF ms':>7}{'train ex/s':>11}{'cpu ex/s':>9}{'offline rtf':>12}"
          f"{'core':>7}{'stream rtf':>11}{'core':>7}")
    for path in paths:
        model, record = load_checkpoint(path)
        kwargs = forced or dict((record.get("extra") or {}).get("train_config") or {})
        tr = train_throughput(model, kwargs, args.steps)
        off = offline_rtf(model, args.seconds)
        st = streaming_rtf(path, args.seconds, args.block_size)
        row = {"proxy": path.stem, "n_weights": model.n_weights,
               "receptive_field_ms": 1000 * model.receptive_field / model.sample_rate,
               "train": tr, "offline": off, "streaming": st}
        rows.append(row)
        print(f"{path.stem:<22}{model.n_weights:>8}{row['receptive_field_ms']:>7.0f}{tr['examples_per_s']:>11.2f}"
              f"{tr['cpu_examples_per_s']:>9.2f}{off['rtf']:>12.4f}{off['core']:>7.4f}{st['rtf']:>11.4f}"
              f"{st['core']:>7.4f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": args.threads, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
