#!/usr/bin/env python
"""Time this tree's streaming compressor kernels against another version of their files, interleaved.

The before/after check of a change to :mod:`mixbridge.export.greybox_dsp` (the grey-box proxies' CPU
path) or :mod:`mixbridge.plugins.master_kernels` (the live master chain's block DSP): the other
version's file (for example git HEAD's) is loaded beside the working tree's, and both are timed in
the same process, in alternating order, so a busy spell of the shared CPU hits both alike:

    git show HEAD:export/greybox_dsp.py > /tmp/head_greybox_dsp.py
    git show HEAD:plugins/master_kernels.py > /tmp/head_master_kernels.py
    nice .venv/bin/python scripts/bench_kernels.py --greybox /tmp/head_greybox_dsp.py \\
        --master-kernels /tmp/head_master_kernels.py

Cells: each grey-box proxy of ``--models`` (one mono signal, parameters at 0.5) and the master chain
(stereo, every stage engaged: the settings of ``tests/plugins/test_master_stream.py``), at
``--block`` samples. Printed per cell: ``core`` (thread CPU time per block / block duration, the
fraction of one core), the median over ``--runs`` runs of ``--blocks`` blocks, and the min..max.
An older ``GreyBoxDSP`` without ``max_block`` or ``prepare`` (before the preallocated rewrite) is
adapted. numpy, scipy and onnxruntime; torch only to export the proxies.
"""
from __future__ import annotations

import argparse
import importlib.util
import inspect
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: The master chain's settings: every stage engaged (the streaming master test's ``HOT``).
MASTER_SETTINGS = {
    "eq": {"low_shelf_gain_db": 3.0, "peak1_gain_db": -2.5, "peak2_gain_db": 4.0, "peak2_q": 2.0,
           "peak3_gain_db": -3.0, "high_shelf_gain_db": 2.0},
    "compressor": {"threshold_db": -24.0, "ratio": 4.0, "attack_ms": 3.0, "release_ms": 80.0, "knee_db": 6.0,
                   "makeup_db": 3.0},
    "gain": {"gain_db": 16.0},
    "limiter": {"ceiling_dbtp": -1.0, "release_ms": 30.0},
}
MASTER_RATE = 48000


def load_module(name: str, path: Path):
    """Import ``path`` as module ``name`` (a dotted name inside the package, so its relative imports work)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def greybox_class(path: Path):
    """The ``GreyBoxDSP`` of another ``greybox_dsp.py``, taking this tree's constructor arguments."""
    base = load_module("mixbridge.export._bench_other_greybox_dsp", path).GreyBoxDSP
    takes_max_block = "max_block" in inspect.signature(base.__init__).parameters

    class Other(base):
        def __init__(self, *args, max_block=None, **kw):
            if takes_max_block and max_block is not None:
                kw["max_block"] = max_block
            super().__init__(*args, **kw)

    return Other


def master_class(path: Path):
    """:class:`~mixbridge.plugins.master_bus.StreamingMaster` running another ``master_kernels.py``'s kernels."""
    from mixbridge.plugins.master_bus import StreamingMaster

    other = load_module("mixbridge.plugins._bench_other_master_kernels", path).MasterKernels
    methods = {k: v for k, v in vars(other).items() if callable(v) and k.startswith("_") and not k.startswith("__")}
    return type("OtherMaster", (StreamingMaster,), methods)


def core(step, block_s: float, blocks: int, warmup: int = 50) -> float:
    """Thread CPU seconds per call of ``step`` over ``block_s`` (fraction of one core)."""
    for _ in range(warmup):
        step()
    c0 = time.thread_time()
    for _ in range(blocks):
        step()
    return (time.thread_time() - c0) / blocks / block_s


def cells(args, tmp: Path) -> list[tuple[str, float, object]]:
    """``(name, block duration s, step)`` per timed cell, this tree's and the other version's side by side."""
    from mixbridge.export.artifact import load_artifact
    from mixbridge.export.exporter import export_model, resolve_model
    from mixbridge.export.greybox_dsp import GreyBoxDSP
    from mixbridge.plugins.master_bus import StreamingMaster

    n = args.block
    rng = np.random.default_rng(0)
    out: list[tuple[str, float, object]] = []
    dsp_classes = [("tree", GreyBoxDSP)] + ([("other", greybox_class(args.greybox))] if args.greybox else [])
    for source in [m for m in args.models.split(",") if m]:
        model, _ = resolve_model(source)
        folder = tmp / Path(source).stem
        export_model(model, "onnx", folder)
        art = load_artifact(folder)
        x = (0.3 * rng.standard_normal((1, 1, n))).astype(np.float32)
        y = np.empty_like(x)
        for tag, cls in dsp_classes:
            dsp = cls(art.path, art.sidecar, 1, 1, art.sample_rate, max_block=n)
            p = np.full(len(dsp.param_names), 0.5, np.float32)
            out.append((f"{Path(source).stem} ({tag})", n / art.sample_rate,
                        lambda dsp=dsp, x=x, y=y, p=p: dsp.process(x, p, y)))
    xm = (0.3 * rng.standard_normal((2, n))).astype(np.float32)
    masters = [("tree", StreamingMaster)] + ([("other", master_class(args.master_kernels))]
                                             if args.master_kernels else [])
    for tag, cls in masters:
        m = cls(MASTER_RATE, MASTER_SETTINGS)
        out.append((f"master chain ({tag})", n / MASTER_RATE, lambda m=m: m.process(xm)))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--greybox", type=Path, default=None,
                    help="another export/greybox_dsp.py to time beside this tree's")
    ap.add_argument("--master-kernels", type=Path, default=None,
                    help="another plugins/master_kernels.py to time beside this tree's")
    ap.add_argument("--models", default="models/proxies/eqcomp_builtin.json,models/proxies/comp_builtin.json",
                    help="comma-separated grey-box proxies (registry names or paths); '' for the master chain only")
    ap.add_argument("--block", type=int, default=64, help="block size, samples")
    ap.add_argument("--blocks", type=int, default=3000, help="blocks timed per run")
    ap.add_argument("--runs", type=int, default=8, help="runs per cell (the order alternates between runs)")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        timed = cells(args, Path(tmp))
        runs: dict[str, list[float]] = {name: [] for name, _, _ in timed}
        for r in range(args.runs):
            for name, block_s, step in (timed if r % 2 == 0 else timed[::-1]):
                runs[name].append(core(step, block_s, args.blocks))
    print(f"# {args.block}-sample blocks, {args.runs} runs x {args.blocks} blocks, 1 thread; "
          "core = thread CPU time / block duration")
    print("| cell | core median | min..max |")
    print("|---|---|---|")
    for name, v in runs.items():
        print(f"| {name} | {np.median(v):.4f} | {min(v):.4f}..{max(v):.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
