"""Benchmark the torch console's forward and backward pass (issue 9): 16 tracks x 10 s at 44.1 kHz, CPU.

    .venv/bin/python scripts/bench_console.py [--tracks 16] [--seconds 10] [--repeats 2] [--libs DIR ...]

Runs mixbridge's :class:`~mixbridge.models.console.TorchConsole` (every strip stage, the
reverb bus and the master bus with its true-peak limiter), and, side by side in the same
run, the same chain in dasp-pytorch and GRAFX when they can be imported. They are not
project dependencies: install them for the benchmark only, outside the venv, e.g.

    pip install --no-deps --target /tmp/bench_libs dasp-pytorch grafx einops torchcomp numba llvmlite
    .venv/bin/python scripts/bench_console.py --libs /tmp/bench_libs

(``--no-deps`` keeps pip away from torch). The comparison chain per track: gain ->
parametric EQ -> compressor -> pan -> sum, a send into a reverb, then master EQ ->
compressor -> gain (dasp-pytorch has no limiter: its master stops at the gain). A library
that fails to import is reported with the reason and skipped; ratios are theirs / ours.
"""
from __future__ import annotations

import argparse
import sys
import time


def _time(label: str, fn, repeats: int) -> tuple[float, float]:
    """(forward s, forward+backward s), best of ``repeats``."""
    best_f = best_b = float("inf")
    for i in range(repeats):
        t0 = time.perf_counter()
        loss = fn()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        best_f, best_b = min(best_f, t1 - t0), min(best_b, t2 - t0)
        print(f"  {label} run {i + 1}/{repeats}: forward {t1 - t0:.2f} s, forward+backward {t2 - t0:.2f} s", flush=True)
    return best_f, best_b


def ours(torch, stems, sample_rate):
    from mixbridge.models.console import MASTER_PARAMS, STRIP_PARAMS, TorchConsole

    tracks = stems.shape[0]
    strip = {p: torch.full((tracks,), v.default, dtype=torch.float64, requires_grad=True) for p, v in STRIP_PARAMS}
    settings = {"eq.low_shelf_gain_db": 3.0, "eq.peak1_gain_db": -4.0, "eq.peak2_gain_db": 2.0,
                "eq.peak3_gain_db": 1.0, "eq.high_shelf_gain_db": -2.0, "compressor.threshold_db": -24.0,
                "compressor.ratio": 4.0, "compressor.knee_db": 6.0, "send.send_db": -12.0}
    for k, v in settings.items():
        strip[k] = torch.full((tracks,), v, dtype=torch.float64, requires_grad=True)
    master = {p: torch.full((1,), v.default, dtype=torch.float64, requires_grad=True) for p, v in MASTER_PARAMS
              if p != "loudness.target_lufs"}
    master["eq.peak2_gain_db"] = torch.full((1,), 2.0, dtype=torch.float64, requires_grad=True)
    master["compressor.ratio"] = torch.full((1,), 2.0, dtype=torch.float64, requires_grad=True)
    master["compressor.threshold_db"] = torch.full((1,), -18.0, dtype=torch.float64, requires_grad=True)
    master["gain.gain_db"] = torch.full((1,), 6.0, dtype=torch.float64, requires_grad=True)
    console = TorchConsole(sample_rate)
    return lambda: console(stems, strip, master).master.square().mean()


def dasp(torch, stems, sample_rate):
    import dasp_pytorch.functional as D

    tracks = stems.shape[0]

    def p(v, n=tracks):
        return torch.full((n, 1), float(v), requires_grad=True)

    eq_args = dict(low_shelf_gain_db=p(3), low_shelf_cutoff_freq=p(100), low_shelf_q_factor=p(0.707),
                   band0_gain_db=p(-4), band0_cutoff_freq=p(400), band0_q_factor=p(0.707),
                   band1_gain_db=p(2), band1_cutoff_freq=p(1500), band1_q_factor=p(0.707),
                   band2_gain_db=p(1), band2_cutoff_freq=p(5000), band2_q_factor=p(0.707),
                   band3_gain_db=p(0), band3_cutoff_freq=p(8000), band3_q_factor=p(0.707),
                   high_shelf_gain_db=p(-2), high_shelf_cutoff_freq=p(8000), high_shelf_q_factor=p(0.707))
    comp_args = dict(threshold_db=p(-24), ratio=p(4), attack_ms=p(10), release_ms=p(100), knee_db=p(6),
                     makeup_gain_db=p(0))
    m_eq = {k: torch.full((1, 1), float(v.detach()[0, 0]), requires_grad=True) for k, v in eq_args.items()}
    m_comp = {k: torch.full((1, 1), float(v.detach()[0, 0]), requires_grad=True) for k, v in comp_args.items()}
    trim, pan, send, mgain = p(0), p(0.5), p(-12), p(6, 1)
    rv = {f"band{i}_gain": torch.full((1, 1), 0.5, requires_grad=True) for i in range(12)}
    rv.update({f"band{i}_decay": torch.full((1, 1), 0.5, requires_grad=True) for i in range(12)})
    rv["mix"] = torch.full((1, 1), 1.0, requires_grad=True)

    def run():
        x = D.gain(stems, sample_rate, trim)
        x = D.parametric_eq(x, sample_rate, **eq_args)
        x = D.compressor(x, sample_rate, **comp_args)
        # dasp's panner takes mono tracks [1, tracks, samples] -> [1, 2, tracks, samples]
        x = D.stereo_panner(x.mean(dim=1)[None], sample_rate, pan.view(1, tracks))
        mix = x.sum(dim=2)
        bus = (x * (10 ** (send / 20)).view(1, 1, tracks, 1)).sum(dim=2)
        mix = mix + D.noise_shaped_reverberation(bus, sample_rate, **rv)
        y = D.parametric_eq(mix, sample_rate, **m_eq)
        y = D.compressor(y, sample_rate, **m_comp)
        return D.gain(y, sample_rate, mgain).square().mean()

    return run


def grafx(torch, stems, sample_rate):
    import grafx.processors as G  # noqa: F401 - GRAFX 0.6 needs torchaudio (lfilter) and torchlpc to import

    raise ImportError("GRAFX imported, but this script has no GRAFX chain for this version yet")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tracks", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--sample-rate", type=int, default=44100)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--libs", nargs="*", default=[], help="extra import paths holding dasp-pytorch / GRAFX")
    ap.add_argument("--only", choices=("ours", "dasp", "grafx"), nargs="*", default=None,
                    help="run only these chains (default all)")
    args = ap.parse_args(argv)
    sys.path[:0] = args.libs
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    n = int(args.seconds * args.sample_rate)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.tracks} stereo tracks x "
          f"{args.seconds:g} s at {args.sample_rate} Hz ({n} samples), best of {args.repeats}", flush=True)
    gen = torch.Generator().manual_seed(0)
    stems = (torch.randn(args.tracks, 2, n, generator=gen) * 0.1).requires_grad_(True)
    results = {}
    chains = (("ours", "mixbridge TorchConsole", ours), ("dasp", "dasp-pytorch 0.0.1", dasp), ("grafx", "GRAFX", grafx))
    for key, name, build in chains:
        if args.only is not None and key not in args.only:
            continue
        print(f"{name}:", flush=True)
        try:
            fn = build(torch, stems, args.sample_rate)
        except Exception as e:  # a benchmark-only library that is missing or broken: report it, go on
            print(f"  not run: {type(e).__name__}: {e}", flush=True)
            continue
        try:
            results[name] = _time(name, fn, args.repeats)
        except Exception as e:
            print(f"  failed: {type(e).__name__}: {e}", flush=True)
        stems.grad = None
    print("\nresults (best forward / forward+backward, and ratio to mixbridge):")
    base = results.get("mixbridge TorchConsole")
    for name, (f, b) in results.items():
        ratio = f" ({f / base[0]:.2f}x / {b / base[1]:.2f}x)" if base else ""
        print(f"  {name:24s} {f:7.2f} s / {b:7.2f} s{ratio}")
    if len(results) == 1:
        print("  (dasp-pytorch / GRAFX not importable: install them outside the venv and pass --libs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
