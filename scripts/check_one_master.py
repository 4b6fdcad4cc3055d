"""One stored master gain, three renders: builtin, vst and the live chain on each automixed song.

For every ``INPUT/builtin/<song>/session.json`` written by ``automix`` (``make demo`` writes
them), the session's one ``master.solved_gain_db`` is applied, without re-solving, to

* the builtin backend's render (the render it was solved on),
* the vst backend's render (real plugins on the tracks and the reverb bus, the shared master),
* the live bus's streaming master chain, run in 256-sample blocks on the builtin mix,

and the integrated loudness (BS.1770-4) and true peak of each master are printed with their
distance from the target. Exit 1 if any render misses the target by more than
``LOUDNESS_TOLERANCE_LU`` or goes over its ceiling.

Usage: python scripts/check_one_master.py [--input out] [--block 256]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    from mixbridge.cli_options import add_option

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_option(ap, "--input", old=("--out",), dest="input", default="out", metavar="DIR",
               help="the automix output folder (run_demo.py -o) holding builtin/<song>/session.json")
    ap.add_argument("--block", type=int, default=256, help="live chain block size (samples)")
    args = ap.parse_args(argv)

    from mixbridge.loudness import integrated_lufs, true_peak_dbtp
    from mixbridge.plugins.console import render_console
    from mixbridge.plugins.master_bus import StreamingMaster, master_params_from_session
    from mixbridge.plugins.mastering import LOUDNESS_TOLERANCE_LU, master
    from mixbridge.session import load

    sessions = sorted(Path(args.input).glob("builtin/*/session.json"))
    if not sessions:
        print(f"no {args.input}/builtin/*/session.json: run `make demo` (or automix --backend builtin) first",
              file=sys.stderr)
        return 2
    print(f"{'song':<26}{'gain dB':>8}{'target':>8}   {'builtin':>14}{'vst':>14}{'live':>14}")
    ok = True
    for path in sessions:
        s = load(path)
        target = s.master.params["loudness"]["target_lufs"]
        ceiling = s.master.params["limiter"]["ceiling_dbtp"]
        gain = s.master.solved_gain_db
        cells, mix_b = [], None
        for backend in ("builtin", "vst"):
            mix = render_console(s, backend).mix
            mix_b = mix if backend == "builtin" else mix_b
            res = master(mix, s.master.params, s.sample_rate, gain_db=gain, resolve_stale=False)
            cells.append((res.lufs, res.true_peak_dbtp))
        params, _, _ = master_params_from_session(s)
        chain = StreamingMaster(s.sample_rate, params, channels=2, max_block=args.block)
        src = np.concatenate([mix_b, np.zeros((2, chain.latency_samples), np.float32)], axis=1)
        live = np.concatenate([chain.process(src[:, i:i + args.block]).copy()
                               for i in range(0, src.shape[1], args.block)], axis=1)[:, chain.latency_samples:]
        cells.append((integrated_lufs(live, s.sample_rate), true_peak_dbtp(live, s.sample_rate)))
        text = []
        for lufs, tp in cells:
            ok &= abs(lufs - target) <= LOUDNESS_TOLERANCE_LU and tp <= ceiling
            text.append(f"{lufs:>7.2f} ({lufs - target:+.2f})")
        print(f"{path.parent.name:<26}{gain:>8.2f}{target:>8.1f}   " + "".join(f"{t:>14}" for t in text))
    print(f"each within {LOUDNESS_TOLERANCE_LU} LU of its target and under its ceiling: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
