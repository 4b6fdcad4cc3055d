"""``mixbridge push``, ``pull``, ``automate``, ``midi-export`` and ``live``: thin commands over the bridge API.

Only the standard library is imported at module level; handlers import the
bridge lazily, so ``mixbridge --help`` stays fast and torch-free.
"""
from __future__ import annotations

import argparse
import sys

DAWS = ("reaper", "ableton", "ardour")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--daw", required=True, choices=DAWS, help="target DAW profile")
    p.add_argument("--host", default="127.0.0.1", help="DAW host (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None,
                   help="DAW OSC receive port (default: reaper 8000, ableton 11000, ardour 3819)")
    p.add_argument("--reply-port", type=int, default=None,
                   help="local port for the DAW's feedback (default: reaper 9000, ableton 11001, ardour any)")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for the DAW to answer (default 2)")
    p.add_argument("--clamp", action="store_true",
                   help="send/store the nearest value the DAW or schema takes instead of failing; each is listed")


def register(subparsers) -> None:
    p = subparsers.add_parser("push", help="push a session's faders, pans, mutes and plugin parameters into a DAW")
    p.add_argument("session", help="session file (mixbridge-session JSON)")
    _common(p)
    p.add_argument("--match", choices=("name", "order"), default="name",
                   help="match session tracks to DAW tracks by name (default) or by order")
    p.add_argument("--dry-run", action="store_true", help="print the exact OSC messages; send nothing")
    p.add_argument("--no-query", action="store_true",
                   help="send without asking the DAW for its tracks (for DAWs whose feedback is not set up): "
                        "tracks are addressed in session order and plugins at their default slots")
    p.set_defaults(func=_push)

    p = subparsers.add_parser("pull", help="read a DAW's mixer state back into a session file")
    _common(p)
    p.add_argument("-o", "--output", required=True, help="session file to write")
    p.set_defaults(func=_pull)

    p = subparsers.add_parser("automate", help="play a session's automation curves into a DAW in real time")
    p.add_argument("session")
    _common(p)
    p.add_argument("--match", choices=("name", "order"), default="order")
    p.add_argument("--rate-hz", type=float, default=100.0, help="curve sampling rate (default 100 Hz)")
    p.add_argument("--max-msgs-per-s", type=float, default=2000.0, help="rate limit over all parameters")
    p.add_argument("--bundles", choices=("auto", "on", "off"), default="auto",
                   help="timetagged bundles (auto: where the DAW honours them, i.e. Ardour)")
    p.add_argument("--dry-run", action="store_true", help="print the thinned schedule; send nothing")
    p.set_defaults(func=_automate)

    p = subparsers.add_parser("midi-export", help="export a session's automation as a Standard MIDI File (CC lanes)")
    p.add_argument("session")
    p.add_argument("-o", "--output", required=True, help=".mid file to write")
    p.add_argument("--rate-hz", type=float, default=100.0, help="curve sampling rate (default 100 Hz)")
    p.set_defaults(func=_midi_export)

    p = subparsers.add_parser(
        "live", help="stream mastering (and an exported proxy) on a live JACK bus, controlled over OSC",
        description="Run the master chain of a session (EQ, bus compressor, gain, true-peak limiter), after an "
                    "optional exported proxy, as a JACK client. Stop with Ctrl-C (SIGINT) or SIGTERM.")
    p.add_argument("--session", help="session file whose master bus (and solved master gain) to run")
    p.add_argument("--artifact", help="exported ONNX proxy artifact folder to run before the master chain")
    p.add_argument("--jack-server", default=None, help="JACK server name (jackd -n NAME); default server if omitted")
    p.add_argument("--client-name", default="mixbridge-live", help="JACK client name (default mixbridge-live)")
    p.add_argument("--channels", type=int, default=2, help="audio channels / port pairs (default 2)")
    p.add_argument("--osc-port", type=int, default=9310, help="UDP port for OSC parameter changes (default 9310; "
                                                              "0 picks a free one)")
    p.add_argument("--osc-host", default="127.0.0.1", help="address the OSC socket binds (default 127.0.0.1)")
    p.add_argument("--no-osc", action="store_true", help="do not listen for OSC")
    p.add_argument("--proxy-param", action="append", default=[], metavar="PROCESSOR.PARAM=VALUE",
                   help="initial proxy parameter in real units (repeatable)")
    p.add_argument("--lookahead-ms", type=float, default=None, help="limiter look-ahead in ms (default 1.5)")
    p.add_argument("--auto-connect", action="store_true",
                   help="connect the physical capture ports to the inputs and the outputs to the physical playback")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds (default: run until "
                                                                "SIGINT/SIGTERM)")
    p.set_defaults(func=_live)


def _print_plan_notes(plan, out) -> None:
    m = plan.match
    if m.unmatched_session:
        print(f"unmatched session tracks ({len(m.unmatched_session)}): {', '.join(m.unmatched_session)}", file=out)
    if m.unmatched_daw:
        print(f"DAW tracks without a session track ({len(m.unmatched_daw)}): {', '.join(m.unmatched_daw)}", file=out)
    for u in plan.unmapped:
        print(f"not sent: {u}", file=out)
    for c in plan.clamped:
        print(f"clamped: {c}", file=out)


def _push(args) -> int:
    from mixbridge.session import load

    from .push import plan_push, push, push_blind

    session = load(args.session)
    if args.no_query and not args.dry_run:
        rep = push_blind(session, args.daw, host=args.host, port=args.port, clamp=args.clamp)
        _print_plan_notes(rep.plan, sys.stdout)
        print(f"sent {rep.sent} messages for {len(rep.plan.strips)} tracks to {args.daw} at {args.host} without "
              f"querying it, in {rep.elapsed_s * 1000:.1f} ms")
        return 0
    if args.dry_run:
        plan = plan_push(session, args.daw, daw_tracks=None, match=args.match, clamp=args.clamp)
        print(f"# dry run for {args.daw}: the DAW is not queried; tracks are addressed in session order")
        for m in plan.messages:
            print(m)
        _print_plan_notes(plan, sys.stdout)
        print(f"# {len(plan.messages)} messages for {len(plan.strips)} tracks")
        return 0
    rep = push(session, args.daw, host=args.host, port=args.port, match=args.match, clamp=args.clamp,
               timeout_s=args.timeout, reply_port=args.reply_port)
    _print_plan_notes(rep.plan, sys.stdout)
    print(f"pushed {len(rep.plan.strips)} tracks to {args.daw}: {rep.sent} messages in {rep.elapsed_s * 1000:.1f} ms "
          f"({rep.messages_per_s:.0f} msg/s); feedback: {rep.feedback.summary()}")
    return 0


def _pull(args) -> int:
    from mixbridge.session import save

    from .push import pull

    rep = pull(args.daw, host=args.host, port=args.port, clamp=args.clamp, timeout_s=args.timeout,
               reply_port=args.reply_port)
    save(rep.session, args.output)
    for n in rep.not_read:
        print(f"not read: {n}")
    for c in rep.clamped:
        print(f"clamped: {c}")
    print(f"pulled {len(rep.session.tracks)} tracks from {args.daw} into {args.output}; "
          f"feedback: {rep.feedback.summary()}")
    return 0


def _automate(args) -> int:
    from mixbridge.session import load

    from .automation import play_session_automation, schedule_session

    session = load(args.session)
    if args.dry_run:
        events = schedule_session(session, rate_hz=args.rate_hz)
        for e in events:
            print(f"{e.time_s:9.3f} s  {e.track:<16} {e.path:<28} {e.value:g}")
        print(f"# {len(events)} events after thinning")
        return 0
    rep = play_session_automation(session, args.daw, host=args.host, port=args.port, match=args.match,
                                  rate_hz=args.rate_hz, max_msgs_per_s=args.max_msgs_per_s,
                                  bundles={"auto": None, "on": True, "off": False}[args.bundles],
                                  clamp=args.clamp, timeout_s=args.timeout, reply_port=args.reply_port)
    print(rep.summary())
    return 0


def _midi_export(args) -> int:
    from mixbridge.session import load

    from .midi import export_smf

    session = load(args.session)
    table = export_smf(session, args.output, rate_hz=args.rate_hz)
    for row in table:
        print(f"track {row.track:<16} channel {row.channel + 1:>2}  CC{row.cc:<3} {row.path}  "
              f"[{row.min:g}, {row.max:g}] {row.unit} {row.scale}")
    print(f"wrote {args.output}: {len(table)} CC lanes")
    return 0


def _live(args) -> int:
    from .errors import BridgeConfigError
    from .live import bus_from_files, run_live

    proxy_params = {}
    for item in args.proxy_param:
        name, sep, value = item.partition("=")
        if not sep:
            raise BridgeConfigError(f"--proxy-param {item!r} must look like processor.param=value")
        try:
            proxy_params[name.strip()] = float(value)
        except ValueError:
            raise BridgeConfigError(f"--proxy-param {item!r}: {value!r} is not a number") from None
    bus = bus_from_files(session=args.session, artifact=args.artifact, proxy_params=proxy_params,
                         channels=args.channels, client_name=args.client_name, jack_server=args.jack_server,
                         osc_port=None if args.no_osc else args.osc_port, osc_host=args.osc_host,
                         lookahead_ms=args.lookahead_ms, auto_connect=args.auto_connect)
    summary = run_live(bus, duration_s=args.duration)
    return 1 if summary.callback_errors else 0
