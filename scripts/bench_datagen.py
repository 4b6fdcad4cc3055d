#!/usr/bin/env python
"""Benchmark data generation against the raw engines rendering the same chain.

For each backend (``builtin`` = pedalboard, ``vst`` = real plugins in DawDreamer):

1. *raw engine*: the chain rendered directly on pre-drawn inputs and parameters
   (``render_chain`` through the backend, in this process, nothing else);
2. *datagen in-process* (``--workers 0``): the full generator (patch reading,
   parameter sampling, augmentation, rendering, shard writing with checksums);
3. *datagen with 1 and 2 worker processes* (isolation: IPC, crash detection).

It reports examples/s, the real-time factor (seconds of audio produced per wall
second) per core, the ratio per worker against the raw engine (the issue's aim:
>= 0.9), and the scaling from 1 to 2 workers. Results go to stdout and, with
``--json``, to a file.

Two clocks, because a shared machine's load changes from minute to minute:

* *CPU time* (user + system of this process and its reaped worker processes,
  ``getrusage``): audio seconds per CPU second is the real-time factor per core,
  independent of other load; it includes worker start-up (imports, plugin loading)
  and the parent's shard writing. The ratio against the raw engine on this clock
  is the efficiency figure.
* *wall clock*: examples/s over the last 80 % of results (start-up excluded); the
  1 -> 2 worker scaling uses it and is only meaningful on an otherwise idle machine.

Usage::

    python scripts/bench_datagen.py --source DEMO_DIR --n 200 --n-vst 60 --json bench.json
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path


def _synthetic_source(folder: Path, sample_rate: int = 44100) -> Path:
    import numpy as np
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t = np.arange(10 * sample_rate) / sample_rate
    for k in range(4):
        x = 0.3 * np.sin(2 * np.pi * 110 * (k + 1) * t) * (1 + np.sin(2 * np.pi * 2 * t)) / 2
        sf.write(folder / f"s{k}.wav", (x + 0.02 * rng.standard_normal(t.size)).astype(np.float32), sample_rate,
                 subtype="FLOAT")
    return folder


def cpu_s() -> float:
    """User + system CPU seconds of this process and its reaped children."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def bench_backend(backend: str, source: Path, n: int, patch_s: float, chain: str, workdir: Path,
                  worker_counts=(1, 2)) -> dict:
    from mixbridge.plugins.datagen.effect import effect_config, render_chain
    from mixbridge.plugins.datagen.job import make_job
    from mixbridge.plugins.datagen.runner import generate

    cfg = effect_config(str(source), chain=chain, backend=backend, patch_s=patch_s, n=n, seed=0, shard_size=32)
    job = make_job(cfg)
    job.setup()
    specs = [job.plan(i) for i in range(n)]
    for s in specs[:2]:  # warm caches (plugin instances, page cache)
        render_chain(job.backend, job.processors, s.data["input"], s.params["params"])
    t0, c0 = time.perf_counter(), cpu_s()
    for s in specs:
        render_chain(job.backend, job.processors, s.data["input"], s.params["params"])
    raw_s, raw_cpu = time.perf_counter() - t0, cpu_s() - c0
    job.close()
    out = {"backend": backend, "chain": list(cfg["processors"]), "n": n, "patch_s": patch_s,
           "raw_examples_per_s": n / raw_s, "raw_rtf": n * patch_s / raw_s, "raw_rtf_per_cpu_s": n * patch_s / raw_cpu}
    runs = {"inline": 0, **{f"workers_{w}": w for w in worker_counts}}
    for label, w in runs.items():
        dest = workdir / f"{backend}_{label}"
        shutil.rmtree(dest, ignore_errors=True)
        c0 = cpu_s()
        s = generate(cfg, dest, workers=w, progress=False)
        cpu = cpu_s() - c0
        rate = s.steady_examples_per_s or s.examples_per_s
        per_worker = rate / max(1, w)
        rtf_cpu = s.examples_ok * patch_s / cpu
        out[label] = {"examples_per_s": rate, "examples_per_s_with_startup": s.examples_per_s,
                      "rtf_per_core_wall": per_worker * patch_s, "rtf_per_cpu_s": rtf_cpu,
                      "ratio_per_core_vs_raw_cpu": rtf_cpu / out["raw_rtf_per_cpu_s"],
                      "ratio_per_worker_vs_raw_wall": per_worker / out["raw_examples_per_s"], "failures": s.failures}
        shutil.rmtree(dest, ignore_errors=True)
    if "workers_1" in out and "workers_2" in out:
        out["scaling_2_vs_1"] = out["workers_2"]["examples_per_s"] / out["workers_1"]["examples_per_s"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", help="source audio folder (default: a synthetic one)")
    ap.add_argument("--n", type=int, default=200, help="examples per builtin run (default 200)")
    ap.add_argument("--n-vst", type=int, default=60, help="examples per vst run (default 60; 0 skips vst)")
    ap.add_argument("--patch-s", type=float, default=1.48)
    ap.add_argument("--chain", default="eq_comp_reverb")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench_datagen_"))
    try:
        source = Path(args.source) if args.source else _synthetic_source(work / "src")
        results = {"cpus": os.cpu_count(), "load_avg_start": os.getloadavg(), "runs": []}
        plan = [("builtin", args.n)]
        if args.n_vst > 0:
            try:
                import dawdreamer  # noqa: F401

                plan.append(("vst", args.n_vst))
            except ImportError:
                print("dawdreamer not installed: skipping the vst backend", file=sys.stderr)
        for backend, n in plan:
            r = bench_backend(backend, source, n, args.patch_s, args.chain, work)
            results["runs"].append(r)
            print(f"\n{backend} ({' -> '.join(r['chain'])}), {n} examples of {args.patch_s} s:")
            print(f"  {'':22s} {'wall ex/s':>9s} {'RTF/CPU-s':>9s} {'ratio (CPU)':>11s} {'ratio/worker (wall)':>19s}")
            print(f"  {'raw engine':22s} {r['raw_examples_per_s']:9.2f} {r['raw_rtf_per_cpu_s']:9.1f} "
                  f"{1.0:11.2f} {1.0:19.2f}")
            for label in ("inline", "workers_1", "workers_2"):
                if label in r:
                    x = r[label]
                    print(f"  {'datagen ' + label:22s} {x['examples_per_s']:9.2f} {x['rtf_per_cpu_s']:9.1f} "
                          f"{x['ratio_per_core_vs_raw_cpu']:11.2f} {x['ratio_per_worker_vs_raw_wall']:19.2f}")
            if "scaling_2_vs_1" in r:
                print(f"  scaling 1 -> 2 workers (wall): {r['scaling_2_vs_1']:.2f}x")
        results["load_avg_end"] = os.getloadavg()
        print(f"\nload average start {results['load_avg_start']}, end {results['load_avg_end']} "
              f"on {results['cpus']} CPUs")
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
