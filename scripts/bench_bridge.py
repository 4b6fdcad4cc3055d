"""Benchmark of the DAW bridge: push a 64-track session with full channel strips, messages/s, jitter.

Usage: .venv/bin/python scripts/bench_bridge.py [--tracks 64] [--no-ardour]

* Ardour: a headless Ardour 7 session with N tracks (ACE EQ + ACE Compressor each) is created in
  a temporary folder; ``push`` (query strips and plugins, match by name, send one bundle per
  strip) is timed, then ``pull`` checks that the last strip's fader landed.
* Encoding + UDP: the same push to a local OSC receiver without pacing (REAPER profile,
  ``--no-query`` path), giving raw messages per second.
* Jitter: a 100 Hz curve for 3 s to a local receiver; lateness median and p99.
"""
from __future__ import annotations

import argparse
import tempfile
import time

from mixbridge.bridge.ardour import HeadlessArdour, ardour_available
from mixbridge.bridge.automation import measure_jitter
from mixbridge.bridge.profiles import get_profile
from mixbridge.bridge.push import plan_push, pull, push, send_plan
from mixbridge.bridge.transport import OscUdpClient, OscUdpServer
from mixbridge.session import Session, Track


def full_session(n: int) -> Session:
    s = Session(48000, [Track(f"T{i + 1}", f"t{i + 1}.wav") for i in range(n)])
    s.validate()
    for i, t in enumerate(s.tracks):
        p = t.params
        p["fader"]["fader_db"] = -0.25 * i
        p["pan"]["pan"] = -1 + 2 * i / max(n - 1, 1)
        p["trim"]["gain_db"] = 1.0
        p["eq"]["peak2_gain_db"] = 2.0
        p["compressor"]["threshold_db"] = -20.0
        p["compressor"]["ratio"] = 3.0
    return s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tracks", type=int, default=64)
    ap.add_argument("--no-ardour", action="store_true")
    args = ap.parse_args()
    s = full_session(args.tracks)

    if ardour_available() and not args.no_ardour:
        with tempfile.TemporaryDirectory() as tmp:
            a = HeadlessArdour(tmp, n_tracks=args.tracks, name="bench")
            t0 = time.perf_counter()
            a.create()
            t1 = time.perf_counter()
            with a:
                t2 = time.perf_counter()
                times = []
                for _ in range(3):
                    rep = push(s, "ardour", port=a.osc_port)
                    times.append(rep.elapsed_s)
                got = pull("ardour", port=a.osc_port).session
                ok = abs(got.tracks[-1].params["fader"]["fader_db"] - s.tracks[-1].params["fader"]["fader_db"]) < 1e-4
            print(f"ardour: create {args.tracks}-track session {t1 - t0:.1f} s, start {t2 - t1:.1f} s")
            print(f"ardour push of {args.tracks} tracks ({rep.sent} messages, incl. strip/plugin queries): "
                  f"best {min(times) * 1000:.0f} ms, runs {[round(x * 1000) for x in times]} ms; "
                  f"{rep.sent / min(times):.0f} msg/s; pulled back correctly: {ok}")

    profile = get_profile("reaper")
    plan = plan_push(s, profile, match="order")
    with OscUdpServer(record=False) as server, OscUdpClient("127.0.0.1", server.port) as client:
        t0 = time.perf_counter()
        n = client.send_many(plan.messages)
        raw = time.perf_counter() - t0
        t0 = time.perf_counter()
        n2 = send_plan(client, plan, profile)
        paced = time.perf_counter() - t0
        time.sleep(0.2)
        got = server.router.stats.messages
    print(f"encode+UDP, unpaced: {n} messages in {raw * 1000:.1f} ms = {n / raw:.0f} msg/s; "
          f"paced push (REAPER default 20000 msg/s): {paced * 1000:.1f} ms; receiver got {got}/{n + n2}")

    j = measure_jitter(rate_hz=100.0, duration_s=3.0)
    print(f"automation 100 Hz x 3 s to a local receiver: {j.summary()}")


if __name__ == "__main__":
    main()
