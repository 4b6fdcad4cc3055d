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
import functools
import sys
import time
from collections.abc import Mapping

import numpy as np

SR = 44100


def make_session(n_tracks: int, seconds: float, seed: int = 0):
    """``(session, audio)``: ``n_tracks`` noise tracks (every third stereo) of ``seconds`` at :data:`SR` Hz,
    each with EQ, compressor, fader, pan and a -15 dB send; a master with EQ and bus compressor."""
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
    """The host's path: ``render_console`` then ``master`` at a fixed +6 dB, unverified: float32 ``[2, samples]``."""
    from mixbridge.plugins.console import render_console
    from mixbridge.plugins.mastering import master

    r = render_console(session, backend, audio=audio)
    return master(r.mix, session.master.params, SR, gain_db=6.0, verify=False).audio


def raw_pedalboard(session, audio):
    """The builtin chain written directly: pedalboard EQ boards, the reference compressor, numpy pan,
    one convolution with the reference reverb's response, the master-bus kernels: float32 ``[2, samples]``."""
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


_RAW_CACHE: dict = {}


def raw_graph_render(session, audio: Mapping[str, np.ndarray]) -> np.ndarray:
    """The default VST chain rendered with DawDreamer directly: the benchmark baseline.

    What a user would write by hand for this benchmark's session (kept here, out of the library,
    because the benchmark is its only user):
    per track one DawDreamer graph (per channel: ZamEQ2 -> ZamEQ2), then one with
    ZamComp per channel, its sidechain fed with the map's schema reduction drive
    signal, numpy fader/pan/send with the console's laws, a fresh Dragonfly Plate on
    the send bus (as the backend does, for reproducibility; its measured onset delay
    removed and its measured wet gain applied), then the one master bus's kernels
    (:func:`~mixbridge.plugins.master_bus.render_master` at a fixed +6 dB gain, as the backend's master). Parameters
    are set by index from the shipped maps' curves (computed here, outside any
    mixbridge backend). Graphs are built once and cached.

    Args:
        session: a :class:`~mixbridge.session.Session` (tracks' params; master params).
        audio: ``{track name: float32 [channels, samples]}``, all the same length.

    Returns:
        float32 ``[2, samples]``: the limited master (same work as
        ``render_console`` followed by ``mastering.master`` at a fixed gain).
    """
    from mixbridge.plugins.console import pan_gains
    from mixbridge.plugins.discovery import find_plugins, import_dawdreamer, quiet_fds
    from mixbridge.plugins.map_loader import load_map
    from mixbridge.plugins.map_sidechain import SIDECHAIN_SIGNALS
    from mixbridge.plugins.master_bus import render_master
    from mixbridge.plugins.mastering import chain_params
    from mixbridge.plugins.pluginmap import DEFAULT_MAPS, MAP_PROCESSORS
    from mixbridge.plugins.vst_plugin import seed_libc_rand

    daw = import_dawdreamer()
    sr = int(session.sample_rate)
    maps = {p: load_map(m) for p, m in DEFAULT_MAPS.items()}

    files = {pf.path.name: str(pf.path) for pf in find_plugins() if pf.format == "vst2"}

    def path_of(proc, stage=0):
        return files[maps[proc].plugins[maps[proc].stages[stage].plugin].identity.file]

    def indexed(proc, params):
        """Per stage ``{plugin parameter name: normalised value}``."""
        return [maps[proc].stage_values(st, params, sr) for st in maps[proc].stages]

    def strip_engine(channels):
        """Per channel ZamEQ2 -> ZamEQ2 (one graph), then per channel ZamComp fed (main, sidechain)."""
        key = (sr, channels)
        if key in _RAW_CACHE:
            return _RAW_CACHE[key]
        with quiet_fds():
            eng = daw.RenderEngine(sr, 512)
            graph, pbs, eqs = [], [], []
            for c in range(channels):
                pb = eng.make_playback_processor(f"pb{c}", np.zeros((1, 1), np.float32))
                a = eng.make_plugin_processor(f"eqa{c}", path_of("eq", 0))
                b = eng.make_plugin_processor(f"eqb{c}", path_of("eq", 1))
                b.record = True
                graph += [(pb, []), (a, [f"pb{c}"]), (b, [f"eqa{c}"])]
                pbs.append(pb)
                eqs.append((a, b))
            eng.load_graph(graph)
            ceng = daw.RenderEngine(sr, 512)
            cgraph, cpbs, comps = [], [], []
            for c in range(channels):
                main = ceng.make_playback_processor(f"main{c}", np.zeros((1, 1), np.float32))
                side = ceng.make_playback_processor(f"side{c}", np.zeros((1, 1), np.float32))
                k = ceng.make_plugin_processor(f"comp{c}", path_of("compressor"))
                k.record = True
                cgraph += [(main, []), (side, []), (k, [f"main{c}", f"side{c}"])]
                cpbs.append((main, side))
                comps.append(k)
            ceng.load_graph(cgraph)
        entry = (eng, pbs, eqs, ceng, cpbs, comps)
        _RAW_CACHE[key] = entry
        return entry

    def set_all(proc_obj, values):
        idx = {}
        for name, u in values.items():
            if name not in idx:
                count = proc_obj.get_plugin_parameter_size()
                idx[name] = [proc_obj.get_parameter_name(i) for i in range(count)].index(name)
            proc_obj.set_parameter(idx[name], float(u))

    comp_map = maps["compressor"]
    sc_input, sc_signal = comp_map.stages[0].sidechain

    def strip(x, eq_params, comp_params):
        eng, pbs, eqs, ceng, cpbs, comps = strip_engine(x.shape[0])
        eq_vals = indexed("eq", eq_params)
        for c, (a, b) in enumerate(eqs):
            pbs[c].set_data(np.ascontiguousarray(x[c:c + 1]))
            set_all(a, eq_vals[0])
            set_all(b, eq_vals[1])
        eng.render((n + 0.5) / sr)
        e = np.concatenate([b.get_audio() for _, b in eqs])
        cp = {**MAP_PROCESSORS["compressor"].defaults(), **comp_params}
        side = SIDECHAIN_SIGNALS[sc_signal].func(e, cp, sr)[None]
        comp_vals = indexed("compressor", cp)[0]
        for c, ((main, sc), k) in enumerate(zip(cpbs, comps)):
            main.set_data(np.ascontiguousarray(e[c:c + 1]))
            sc.set_data(np.ascontiguousarray(side))
            set_all(k, comp_vals)
        ceng.render((n + 0.5) / sr)
        return np.concatenate([k.get_audio() for k in comps])

    n = next(iter(audio.values())).shape[1]
    mix = np.zeros((2, n), np.float32)
    bus = np.zeros((2, n), np.float32)
    for t in session.tracks:
        p = t.params
        y = strip(audio[t.name], p["eq"], p["compressor"])
        g = 10 ** (p["fader"]["fader_db"] / 20)
        gl, gr = pan_gains(p["pan"]["pan"], y.shape[0])  # the console's pan law (PAN_SEMANTICS)
        src_r = y[0] if y.shape[0] == 1 else y[1]
        out = np.stack([y[0] * np.float32(g * gl), src_r * np.float32(g * gr)])
        mix += out
        if p["send"]["send_db"] > -80.0:
            bus += out * np.float32(10 ** (p["send"]["send_db"] / 20))
    mp = session.master.params
    rmap = maps["reverb"]
    delay = int(round(rmap.delay_ms * 1e-3 * sr))  # the plate's measured onset delay, removed
    rvals = indexed("reverb", mp["reverb"])
    with quiet_fds():
        reng = daw.RenderEngine(sr, 512)
        rpb = reng.make_playback_processor("bus", np.ascontiguousarray(np.pad(bus, ((0, 0), (0, delay)))))
        plate = reng.make_plugin_processor("plate", path_of("reverb"))
        set_all(plate, rvals[0])
        reng.load_graph([(rpb, []), (plate, ["bus"])])
    seed_libc_rand()
    reng.render((n + delay + 0.5) / sr)
    wet_db = rmap.output_gain_db(rvals) + np.asarray(mp["reverb"]["return_db"], dtype=np.float64)
    mix += (reng.get_audio()[:, delay:delay + n] * np.power(10.0, wet_db / 20.0)).astype(np.float32)
    # the one master bus (the backend's master for every backend): its kernels called directly
    return render_master(mix, sr, chain_params(mp, 6.0))


def raw_dawdreamer(session, audio):
    """The same plugins in one DawDreamer graph, set through the shipped plugin maps."""
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
    """Run the benchmark (``--help`` for the options) and print the table; returns 0."""
    ap = argparse.ArgumentParser(description="mixbridge render overhead vs the raw engine")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--tracks", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--backends", default="builtin,vst")
    args = ap.parse_args(argv)

    from mixbridge.plugins.backend import get_backend

    session, audio = make_session(args.tracks, args.seconds)
    print(f"{args.tracks} tracks x {args.seconds:g} s at {SR} Hz; best of {args.repeats}")
    print("ratio = mixbridge / raw; CPU time is this process's, robust to other load on the machine")
    print(f"{'backend':<8} {'mixbridge s':>12} {'raw s':>8} {'ratio':>7} {'mb CPU s':>9} {'raw CPU s':>10} "
          f"{'CPU ratio':>10} {'x realtime':>11} {'verify CPU s':>13}")
    for name in args.backends.split(","):
        try:
            be = get_backend(name, SR)
            raw_fn = raw_pedalboard if name == "builtin" else raw_dawdreamer
            raw = functools.partial(raw_fn, session, audio)
            raw()  # warm up (plugin loading) on both sides
            mixbridge_render(session, audio, be)
        except Exception as e:  # report and go on with the other backend
            print(f"{name:<8} unavailable: {e}")
            continue
        t_mb, t_raw = [], []
        for _ in range(args.repeats):  # alternate so both see the same machine state
            t_raw.append(timed(raw))
            t_mb.append(timed(functools.partial(mixbridge_render, session, audio, be)))
        mb, rw = min(t[0] for t in t_mb), min(t[0] for t in t_raw)
        mbc, rwc = min(t[1] for t in t_mb), min(t[1] for t in t_raw)
        print(f"{name:<8} {mb:>12.3f} {rw:>8.3f} {mb / rw:>7.3f} {mbc:>9.3f} {rwc:>10.3f} {mbc / rwc:>10.3f} "
              f"{args.seconds / mb:>11.1f} {verify_cost(session, audio, be):>13.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
