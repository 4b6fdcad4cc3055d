"""Benchmark: mixbridge's console render vs the raw engine rendering the same chains.

A 16-track, 60-second session (every track with EQ, compressor, fader, pan and a
reverb send; a master bus with EQ, compressor and limiter) is rendered

* by mixbridge (``render_console`` + ``master`` with one fixed master gain and
  ``verify=False``, i.e. one pass of the master chain, so both sides do the same work), and
* directly in the raw engines: for ``builtin``, pedalboard EQ boards, the
  reference compressor kernel, one scipy convolution with the reference reverb's
  response and the master-bus kernels called without the host; for ``vst``, a
  DawDreamer graph of the same plugins (and the same master-bus kernels),

side by side in one run, alternating, best of ``--repeats``. The ratio
mixbridge / raw is the host's overhead (aim: <= 1.10). ``automix`` and ``render`` also
*verify* the master (integrated loudness and true peak of the mix and of the master, and
the target check): that cost, which the raw engines do not pay, is reported in its own
column (``verify CPU s``).

Usage: python scripts/bench_render.py [--seconds 60] [--tracks 16] [--repeats 3] [--backends builtin,vst]
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

SR = 44100


def make_session(n_tracks: int, seconds: float, seed: int = 0):
    from mixbridge.schema import MASTER_BUS
    from mixbridge.session import Master, Session, Track

    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    audio, tracks = {}, []
    for i in range(n_tracks):
        name = f"track{i:02d}"
        audio[name] = (rng.standard_normal((1 if i % 3 else 2, n)) * 0.1).astype(np.float32)
        t = Track(name, f"{name}.wav")
        t.params["eq"].update(low_shelf_gain_db=-6.0, peak1_gain_db=3.0, peak2_gain_db=-2.0,
                              peak3_gain_db=1.5, high_shelf_gain_db=2.0)
        t.params["compressor"].update(threshold_db=-24.0, ratio=3.0, attack_ms=10.0, release_ms=120.0,
                                      makeup_db=2.0)
        t.params["fader"]["fader_db"] = float(rng.uniform(-12, 0))
        t.params["pan"]["pan"] = float(rng.uniform(-1, 1))
        t.params["send"]["send_db"] = -15.0
        tracks.append(t)
    m = MASTER_BUS.defaults()
    m["eq"].update(low_shelf_gain_db=1.0, high_shelf_gain_db=1.0)
    m["compressor"].update(threshold_db=-12.0, ratio=2.0, attack_ms=30.0, release_ms=200.0)
    return Session(SR, tracks, Master(m)), audio


def mixbridge_render(session, audio, backend):
    from mixbridge.plugins.console import render_console

    from mixbridge.plugins.mastering import master

    r = render_console(session, backend, audio=audio)
    return master(r.mix, session.master.params, SR, gain_db=6.0, verify=False).audio


def raw_pedalboard(session, audio):
    import math

    import pedalboard as pb

    from mixbridge.schema import shelf_q

    def eq(p):
        return [pb.LowShelfFilter(p["low_shelf_freq_hz"], p["low_shelf_gain_db"], shelf_q(p["low_shelf_gain_db"])),
                pb.PeakFilter(p["peak1_freq_hz"], p["peak1_gain_db"], p["peak1_q"]),
                pb.PeakFilter(p["peak2_freq_hz"], p["peak2_gain_db"], p["peak2_q"]),
                pb.PeakFilter(p["peak3_freq_hz"], p["peak3_gain_db"], p["peak3_q"]),
                pb.HighShelfFilter(p["high_shelf_freq_hz"], p["high_shelf_gain_db"], shelf_q(p["high_shelf_gain_db"]))]

    from scipy.signal import oaconvolve

    from mixbridge.plugins.dynamics import compress
    from mixbridge.plugins.master_bus import render_master
    from mixbridge.plugins.mastering import chain_params
    from mixbridge.plugins.reverb import reverb_ir

    n = next(iter(audio.values())).shape[1]
    mix = np.zeros((2, n), np.float32)
    bus = np.zeros((2, n), np.float32)
    for t in session.tracks:
        p = t.params
        y = pb.Pedalboard(eq(p["eq"]))(audio[t.name], SR)
        y = compress(y, SR, **p["compressor"]) * np.float32(10 ** (p["fader"]["fader_db"] / 20))
        th = (p["pan"]["pan"] + 1) * math.pi / 4
        scale = 1.0 if y.shape[0] == 1 else math.sqrt(2.0)
        st = np.stack([y[0] * np.float32(scale * math.cos(th)), y[-1] * np.float32(scale * math.sin(th))])
        mix += st
        bus += st * np.float32(10 ** (p["send"]["send_db"] / 20))
    rv = session.master.params["reverb"]
    ir = reverb_ir(SR, decay_s=rv["decay_s"], predelay_ms=rv["predelay_ms"])
    mono = bus.astype(np.float64).sum(axis=0, keepdims=True) / math.sqrt(2.0)
    mix += (oaconvolve(mono, ir, axes=1)[:, :n] * 10 ** (rv["return_db"] / 20)).astype(np.float32)
    return render_master(mix, SR, chain_params(session.master.params, 6.0))


def raw_dawdreamer(session, audio):
    """The same plugins in one DawDreamer graph, set through the shipped plugin maps."""
    from mixbridge.plugins.vst import raw_graph_render  # provided by the vst backend for benchmarking

    return raw_graph_render(session, audio)


def verify_cost(session, audio, backend) -> float:
    """CPU seconds that ``master``'s verification (loudness, true peak, target check) adds."""
    from mixbridge.plugins.console import render_console
    from mixbridge.plugins.mastering import master

    mix = render_console(session, backend, audio=audio).mix
    mp = session.master.params
    quick = timed(lambda: master(mix, mp, SR, gain_db=6.0, verify=False))[1]
    full = timed(lambda: master(mix, mp, SR, gain_db=6.0, resolve_stale=False))[1]
    return full - quick


def timed(fn):
    """(wall seconds, CPU seconds of this process) of one call."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="mixbridge render overhead vs the raw engine")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--tracks", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--backends", default="builtin,vst")
    args = ap.parse_args(argv)

    from mixbridge.plugins.backend import get_backend

    session, audio = make_session(args.tracks, args.seconds)
    audio_s = args.tracks * args.seconds
    print(f"{args.tracks} tracks x {args.seconds:g} s at {SR} Hz; best of {args.repeats}")
    print("ratio = mixbridge / raw; CPU time is this process's, robust to other load on the machine")
    print(f"{'backend':<8} {'mixbridge s':>12} {'raw s':>8} {'ratio':>7} {'mb CPU s':>9} {'raw CPU s':>10} "
          f"{'CPU ratio':>10} {'x realtime':>11} {'verify CPU s':>13}")
    for name in args.backends.split(","):
        try:
            be = get_backend(name, SR)
            raw = (lambda: raw_pedalboard(session, audio)) if name == "builtin" else (lambda: raw_dawdreamer(session, audio))
            raw()  # warm up (plugin loading) on both sides
            mixbridge_render(session, audio, be)
        except Exception as e:  # report and go on with the other backend
            print(f"{name:<8} unavailable: {e}")
            continue
        t_mb, t_raw = [], []
        for _ in range(args.repeats):  # alternate so both see the same machine state
            t_raw.append(timed(raw))
            t_mb.append(timed(lambda: mixbridge_render(session, audio, be)))
        mb, rw = min(t[0] for t in t_mb), min(t[0] for t in t_raw)
        mbc, rwc = min(t[1] for t in t_mb), min(t[1] for t in t_raw)
        print(f"{name:<8} {mb:>12.3f} {rw:>8.3f} {mb / rw:>7.3f} {mbc:>9.3f} {rwc:>10.3f} {mbc / rwc:>10.3f} "
              f"{args.seconds / mb:>11.1f} {verify_cost(session, audio, be):>13.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
