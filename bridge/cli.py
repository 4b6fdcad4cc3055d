"""``mixbridge push``, ``pull``, ``automate``, ``midi-export`` and ``live``: thin commands over the bridge API.

Each handler parses, calls one library function (:func:`~mixbridge.bridge.push.push`,
:func:`~mixbridge.bridge.push.pull`, :func:`~mixbridge.bridge.automation.play_session_automation`,
:func:`~mixbridge.bridge.midi.export_smf`, :func:`run_live` over a
:class:`~mixbridge.bridge.live.LiveBus`) and prints its report; errors are
:class:`~mixbridge.errors.MixbridgeError` subclasses, which the top CLI prints as one line
with exit status 2. Options follow :mod:`mixbridge.cli_options` (``-o/--output``,
``-q/--quiet``, ``--timeout-s``, ``--duration-s``); ``--daw`` choices come from the profile
registry (:func:`~mixbridge.bridge.profiles.profile_names`). Module level imports only the
standard library, the vocabulary and the registry's names, so ``mixbridge --help`` stays
fast and torch-free; handlers import the rest lazily.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from mixbridge.cli_options import EXIT_FAILED, EXIT_OK, add_duration_s, add_output, add_quiet, add_timeout_s

from .profiles import profile_names

#: ``--master-model`` and ``--master-worker`` choices (as :data:`mixbridge.bridge.live_master.MASTER_MODELS`
#: and ``WORKERS``, kept here so ``mixbridge --help`` imports no numpy; a test keeps them equal).
MASTER_MODEL_NAMES = ("learned", "rules")
MASTER_WORKERS = ("process", "thread")

if TYPE_CHECKING:
    from .live import LiveBus
    from .live_summary import LiveSummary


def _common(p: argparse.ArgumentParser) -> None:
    names = profile_names()
    p.add_argument("--daw", required=True, choices=names, help="target DAW profile (from the profile registry)")
    p.add_argument("--host", default="127.0.0.1", help="DAW host (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None,
                   help="DAW OSC receive port (default: the profile's, e.g. reaper 8000, ableton 11000, ardour 3819)")
    p.add_argument("--reply-port", type=int, default=None,
                   help="local port for the DAW's feedback (default: reaper 9000, ableton 11001, ardour any)")
    add_timeout_s(p, default=2.0, help="seconds to wait for the DAW to answer (default 2)")
    p.add_argument("--clamp", action="store_true",
                   help="send/store the nearest value the DAW or schema takes instead of failing; each is listed")
    add_quiet(p, help="print only what was not sent, read or kept exact; no summary")


def register(subparsers) -> None:
    """Add ``push``, ``pull``, ``automate``, ``midi-export`` and ``live`` to the top CLI's subparsers."""
    p = subparsers.add_parser("push", help="push a session's faders, pans, mutes and plugin parameters into a DAW")
    p.add_argument("session", help="session file (mixbridge-session JSON)")
    _common(p)
    p.add_argument("--match", choices=("name", "order"), default="name",
                   help="match session tracks to DAW tracks by name (default) or by order")
    p.add_argument("--dry-run", action="store_true", help="print the exact OSC messages; send nothing")
    p.add_argument("--no-query", action="store_true",
                   help="send without asking the DAW for its tracks (for DAWs whose feedback is not set up): "
                        "tracks are addressed in session order and plugins at their default slots")
    p.add_argument("--no-verify", action="store_true",
                   help="skip the verification pass that reads the DAW's state back after the push and prints the "
                        "largest error per parameter")
    p.add_argument("--create", action="store_true",
                   help="Ardour: build the session in the saved --ardour-session (closed in Ardour) with Ardour's "
                        "headless Lua: missing tracks, the mapped plugins, a reverb bus with a send from every "
                        "track, every value and every automation curve as a lane; then verify the saved file. "
                        "Ableton: create and name the missing tracks over AbletonOSC, then push (AbletonOSC "
                        "cannot insert devices or make a return: the push lists what that leaves unsent)")
    p.add_argument("--ardour-session", metavar="SESSION.ardour", default=None,
                   help="the saved Ardour session --create builds in")
    p.set_defaults(func=_push)

    p = subparsers.add_parser("pull", help="read a DAW's mixer state back into a session file")
    _common(p)
    add_output(p, help="session file to write")
    p.add_argument("--sample-rate", type=int, default=None, metavar="HZ",
                   help="the session's sample rate where the DAW reports none (REAPER, Ableton; default 48000); "
                        "Ardour's own rate is always used")
    p.add_argument("--ardour-session", metavar="SESSION.ardour", default=None,
                   help="Ardour: also read the automation lanes, the master fader and the reverb bus from this saved "
                        "session file (a running Ardour is asked to save it first)")
    p.set_defaults(func=_pull)

    p = subparsers.add_parser("automate", help="play a session's automation curves into a DAW in real time")
    p.add_argument("session")
    _common(p)
    p.add_argument("--match", choices=("name", "order"), default="name",
                   help="match session tracks to DAW tracks by name (default, like push) or by order")
    p.add_argument("--rate-hz", type=float, default=100.0, help="curve sampling rate (default 100 Hz)")
    p.add_argument("--max-msgs-per-s", type=float, default=2000.0, help="rate limit over all parameters")
    p.add_argument("--bundles", choices=("on", "off"), default="off",
                   help="timetagged bundles, each tick 20 ms ahead, ending with a plain flush of every last value "
                        "(default off: plain messages at their due time, which Ardour applies on arrival)")
    p.add_argument("--dry-run", action="store_true", help="print the thinned schedule; send nothing")
    p.set_defaults(func=_automate)

    p = subparsers.add_parser("midi-export", help="export a session's automation as a Standard MIDI File (CC lanes)")
    p.add_argument("session")
    add_output(p, help=".mid file to write (CCs at their exact ticks; 16 channels per MIDI port)")
    p.add_argument("--cc14", action="store_true",
                   help="fader and pan as 14-bit MSB/LSB pairs (CC7/CC39, CC10/CC42, MSB first; fader on the GM "
                        "volume law over 0..16383); default 7-bit CC7 and CC10")
    add_quiet(p, help="no lane table or summary")
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
    p.add_argument("--ceiling-dbtp", type=float, default=None, metavar="DBTP",
                   help="the limiter's true-peak ceiling (default: the session's, else -1 dBTP)")
    g = p.add_argument_group("adaptive mastering (--master-model; see mixbridge.bridge.live_master)")
    g.add_argument("--master-model", choices=MASTER_MODEL_NAMES, default=None,
                   help="run a mastering model over a sliding window of the bus's audio and glide the master chain "
                        "toward its prediction (learned: the ONNX model, torch-free; rules: the rules masterer); "
                        "default off: the session's fixed chain")
    g.add_argument("--master-worker", choices=MASTER_WORKERS, default="process",
                   help="run the model in a worker process (default: the audio callback never waits for the "
                        "interpreter lock while it computes) or in a thread of the bus (measured: more xruns)")
    g.add_argument("--master-onnx", default=None, metavar="PATH",
                   help="the learned model's ONNX export (default: the shipped one)")
    g.add_argument("--target-lufs", type=float, default=None, metavar="LUFS",
                   help="loudness target the model's gain solve aims at (default: the session's, else -14 LUFS; "
                        "OSC /mixbridge/param/loudness/target_lufs changes it live)")
    g.add_argument("--master-window-s", type=float, default=6.0, metavar="S",
                   help="sliding window the model reads, 3-10 s (default 6)")
    g.add_argument("--master-hop-s", type=float, default=1.0, metavar="S",
                   help="how often the model runs on the latest window (default every 1 s)")
    g.add_argument("--master-max-rate-db-per-s", type=float, default=6.0, metavar="DB_PER_S",
                   help="fastest glide of gains, thresholds, knee and makeup (default 6 dB/s)")
    g.add_argument("--master-max-rate-oct-per-s", type=float, default=1.0, metavar="OCT_PER_S",
                   help="fastest glide of ratio, times, frequencies and Q, in octaves per second (default 1)")
    p.add_argument("--auto-connect", action="store_true",
                   help="connect the physical capture ports to the inputs and the outputs to the physical playback")
    add_duration_s(p, default=None, help="stop after this many seconds (default: run until SIGINT/SIGTERM)")
    add_quiet(p, help="print only the ready line and errors: no notices while running, no summary")
    p.set_defaults(func=_live)


def _print_plan_notes(plan, out: TextIO, *, quiet: bool = False) -> None:
    """The plan's unmatched tracks, not-sent values, clamps and notices; ``quiet`` folds the master bus's
    not-sent lines (every master parameter a DAW cannot carry) into one line."""
    m = plan.match
    if m.unmatched_session:
        print(f"unmatched session tracks ({len(m.unmatched_session)}): {', '.join(m.unmatched_session)}", file=out)
    if m.unmatched_daw:
        print(f"DAW tracks without a session track ({len(m.unmatched_daw)}): {', '.join(m.unmatched_daw)}", file=out)
    master = [u for u in plan.unmapped if u.startswith("master.")]
    for u in plan.unmapped:
        if not (quiet and u.startswith("master.")):
            print(f"not sent: {u}", file=out)
    if quiet and master:
        print(f"not sent: {len(master)} master-bus parameters (without -q each is listed)", file=out)
    for c in plan.clamped:
        print(f"clamped: {c}", file=out)
    for n in plan.notices:
        print(f"notice: {n}", file=out)


def _master_summary(plan) -> str:
    """The summary's word on the master bus: what its fader got, or that nothing was sent to it; and the
    reverb bus fader, where the DAW said which bus the sends feed."""
    bus = (f"; reverb return master.reverb.return_db on the fader of bus '{plan.reverb_bus[1]}'"
           if plan.reverb_bus is not None else "")
    if plan.master_sent:
        return f"master: {plan.master_sent}; its other parameters listed as not sent{bus}"
    return f"master: nothing sent ({plan.master_unsent_why}; its parameters are listed as not sent){bus}"


def _push(args) -> int:
    from mixbridge.session import load

    from .push import plan_push, push, push_blind

    session = load(args.session)
    if args.create and args.daw == "ableton":  # over AbletonOSC, inside the push below
        if args.ardour_session or args.dry_run or args.no_query or args.match != "name":
            from .errors import BridgeConfigError

            raise BridgeConfigError("push --create --daw ableton asks Live for its tracks and creates the missing "
                                    "ones by name; drop --ardour-session/--dry-run/--no-query/--match order")
    elif args.create or args.ardour_session:
        return _push_create(args, session)
    if args.no_query and not args.dry_run:
        rep = push_blind(session, args.daw, host=args.host, port=args.port, clamp=args.clamp)
        _print_plan_notes(rep.plan, sys.stdout, quiet=args.quiet)
        if not args.quiet:
            print(f"sent {rep.sent} messages for {len(rep.plan.strips)} tracks to {args.daw} at {args.host} "
                  f"without querying it, in {rep.elapsed_s * 1000:.1f} ms; {_master_summary(rep.plan)}")
        return EXIT_OK
    if args.dry_run:
        plan = plan_push(session, args.daw, daw_tracks=None, match=args.match, clamp=args.clamp)
        print(f"# dry run for {args.daw}: the DAW is not queried; tracks are addressed in session order")
        for m in plan.messages:
            print(m)
        _print_plan_notes(plan, sys.stdout)
        print(f"# {len(plan.messages)} messages for {len(plan.strips)} tracks; {_master_summary(plan)}")
        return EXIT_OK
    rep = push(session, args.daw, host=args.host, port=args.port, match=args.match, clamp=args.clamp,
               timeout_s=args.timeout_s, reply_port=args.reply_port, verify=not args.no_verify, create=args.create)
    _print_plan_notes(rep.plan, sys.stdout, quiet=args.quiet)
    if not args.quiet:
        print(f"pushed {len(rep.plan.strips)} tracks to {args.daw}: {rep.sent} messages in "
              f"{rep.elapsed_s * 1000:.1f} ms ({rep.messages_per_s:.0f} msg/s); {_master_summary(rep.plan)}; "
              f"feedback: {rep.feedback.summary()}")
    for line in rep.summary_lines():  # "create: ...", "delivery: ...", "missing: ...", "verify: ...", "off: ..."
        if not args.quiet or line.startswith(("create:", "not created:", "missing:", "off:")):
            print(line)
    return EXIT_OK


def _push_create(args, session) -> int:
    from .ardour_create import create_in_ardour
    from .errors import BridgeConfigError

    if args.daw != "ardour":
        fix = {"reaper": "REAPER's OSC cannot insert FX: run `mixbridge daw-script --daw reaper -o FILE.lua` and "
                         "load it in REAPER (Actions > Load ReaScript)",
               "ableton": "--ardour-session is for --daw ardour; `push --create --daw ableton` creates the tracks "
                          "over AbletonOSC, without a session file"}
        raise BridgeConfigError(f"--create --ardour-session is for --daw ardour; "
                                f"{fix.get(args.daw, 'create the tracks in the DAW')}")
    if not (args.create and args.ardour_session):
        raise BridgeConfigError("--create and --ardour-session go together: give the saved session to build in, "
                                "e.g. --create --ardour-session ~/Sessions/mix/mix.ardour")
    if args.dry_run or args.no_query:
        raise BridgeConfigError("--create runs Ardour's headless Lua on the saved session; drop --dry-run/--no-query "
                                "(`mixbridge daw-script --daw ardour` writes the script without running it)")
    rep = create_in_ardour(session, args.ardour_session, host=args.host, port=args.port, clamp=args.clamp,
                           verify=not args.no_verify)
    for u in rep.script.not_sent:
        if not (args.quiet and u.startswith("master.")):
            print(f"not sent: {u}")
    for c in rep.script.clamped:
        print(f"clamped: {c}")
    for line in rep.lines:
        if not args.quiet or line.startswith("off:"):
            print(line)
    return EXIT_OK


def _pull(args) -> int:
    from mixbridge.session import save

    from .push import pull

    rep = pull(args.daw, host=args.host, port=args.port, clamp=args.clamp, timeout_s=args.timeout_s,
               reply_port=args.reply_port, sample_rate=args.sample_rate, ardour_session=args.ardour_session)
    save(rep.session, args.output)
    master_unread = [n for n in rep.not_read if n.startswith("master.")]
    for n in rep.not_read:
        if not (master_unread and n.startswith("master.")):
            print(f"not read: {n}")
    if master_unread:  # one reason for all of them (read_ardour_session)
        why = master_unread[0].split(" (", 1)[1].rstrip(")") if " (" in master_unread[0] else ""
        print(f"not read: {len(master_unread)} master-bus parameters ({why}): "
              + ", ".join(n.split(" ", 1)[0] for n in master_unread))
    for c in rep.clamped:
        print(f"clamped: {c}")
    for n in rep.silenced:
        print(f"silent: {n}")
    for n in rep.ignored:
        print(f"ignored: {n}")
    if not args.quiet:
        rate_from = {"default": "the default; pass --sample-rate", "--sample-rate": "--sample-rate"}.get(
            rep.sample_rate_from, f"reported by {rep.sample_rate_from}")
        curves = sum(len(t.automation) for t in rep.session.tracks)
        if args.ardour_session:
            gain = rep.session.master.solved_gain_db
            print(f"pulled {len(rep.session.tracks)} tracks with {curves} automation curves from {args.ardour_session} "
                  f"into {args.output} at {rep.session.sample_rate} Hz; master: solved gain "
                  f"{'none' if gain is None else f'{gain:+.3f} dB'}, reverb return "
                  f"{rep.session.master.params['reverb']['return_db']:+.3f} dB")
        else:
            print(f"pulled {len(rep.session.tracks)} tracks from {args.daw} into {args.output} at "
                  f"{rep.session.sample_rate} Hz ({rate_from}); feedback: {rep.feedback.summary()}")
    return EXIT_OK


def _automate(args) -> int:
    from mixbridge.session import load

    from .automation import play_session_automation, require_automation, schedule_session

    session = load(args.session)
    if args.dry_run:
        require_automation(session)
        events = schedule_session(session, rate_hz=args.rate_hz)
        for e in events:
            print(f"{e.time_s:9.3f} s  {e.track:<16} {e.path:<28} {e.value:g}")
        print(f"# {len(events)} events after thinning")
        return EXIT_OK
    rep = play_session_automation(session, args.daw, host=args.host, port=args.port, match=args.match,
                                  rate_hz=args.rate_hz, max_msgs_per_s=args.max_msgs_per_s,
                                  bundles=args.bundles == "on",
                                  clamp=args.clamp, timeout_s=args.timeout_s, reply_port=args.reply_port)
    if not args.quiet:
        print(rep.summary())
    return EXIT_OK


def _midi_export(args) -> int:
    from mixbridge.session import load

    from .midi import export_smf

    session = load(args.session)
    notices: list[str] = []
    table = export_smf(session, args.output, cc14=args.cc14, notices=notices)
    for n in notices:
        print(f"notice: {n}", file=sys.stderr)
    if not args.quiet:
        for row in table:
            cc = f"CC{row.cc}/{row.cc + 32}" if row.bits == 14 else f"CC{row.cc}"
            print(f"track {row.track:<16} port {row.port} channel {row.channel + 1:>2}  {cc:<7} {row.path}  "
                  f"[{row.min:g}, {row.max:g}] {row.unit} {row.scale}")
        print(f"wrote {args.output}: {len(table)} CC lanes")
    return EXIT_OK


def _live(args) -> int:
    from .errors import BridgeConfigError

    proxy_params = {}
    for item in args.proxy_param:
        name, sep, value = item.partition("=")
        if not sep:
            raise BridgeConfigError(f"--proxy-param {item!r} must look like processor.param=value")
        try:
            proxy_params[name.strip()] = float(value)
        except ValueError:
            raise BridgeConfigError(f"--proxy-param {item!r}: {value!r} is not a number") from None
    master_model = None
    if args.master_model is not None:
        from .live_master import MasterModelSettings, load_predictor

        # the settings are checked before the model is loaded (a bad option fails fast)
        checked = MasterModelSettings(predictor=None, name=args.master_model,  # type: ignore[arg-type]
                                      window_s=args.master_window_s, hop_s=args.master_hop_s,
                                      max_rate_db_per_s=args.master_max_rate_db_per_s,
                                      max_rate_oct_per_s=args.master_max_rate_oct_per_s,
                                      target_lufs=args.target_lufs, worker=args.master_worker,
                                      model=(args.master_model, args.master_onnx))
        checked.predictor = load_predictor(args.master_model, onnx_path=args.master_onnx)
        master_model = checked
    else:
        for flag, value in (("--target-lufs", args.target_lufs), ("--master-onnx", args.master_onnx)):
            if value is not None:
                raise BridgeConfigError(f"{flag} needs --master-model: without a model the live bus cannot measure "
                                        "loudness (the session's solved gain sets the level; OSC "
                                        "/mixbridge/param/loudness/target_lufs shifts it)")
    bus = bus_from_files(session=args.session, artifact=args.artifact, proxy_params=proxy_params,
                         channels=args.channels, client_name=args.client_name, jack_server=args.jack_server,
                         osc_port=None if args.no_osc else args.osc_port, osc_host=args.osc_host,
                         lookahead_ms=args.lookahead_ms, auto_connect=args.auto_connect,
                         master_model=master_model, ceiling_dbtp=args.ceiling_dbtp)
    summary = run_live(bus, duration_s=args.duration_s, quiet=args.quiet)
    return EXIT_FAILED if summary.callback_errors else EXIT_OK


def bus_from_files(*, session: str | Path | None = None, artifact: str | Path | None = None,
                   proxy_params: Mapping[str, Any] | None = None, ceiling_dbtp: float | None = None,
                   **kwargs: Any) -> LiveBus:
    """A :class:`~mixbridge.bridge.live.LiveBus` for a session's master bus, an exported proxy and/or a
    master model (``kwargs["master_model"]``; at least one of the three).

    The session gives the master chain's parameters and its solved gain
    (:func:`~mixbridge.plugins.master_bus.master_params_from_session`); ``ceiling_dbtp`` replaces its
    limiter ceiling; ``kwargs`` go to ``LiveBus``.

    Raises:
        BridgeConfigError: none given. ParamRangeError: a ceiling outside the schema's range.
        SessionError etc.: a bad session file.
    """
    from .errors import BridgeConfigError

    if session is None and artifact is None and kwargs.get("master_model") is None:
        raise BridgeConfigError("give --session SESSION (its master bus), --artifact ART (a proxy) and/or "
                                "--master-model {learned,rules}")
    params = reference = source_rate = None
    notices: list[str] = []
    if session is not None:
        from mixbridge.plugins.master_bus import master_params_from_session
        from mixbridge.session import load

        loaded = load(session)
        params, reference, notices = master_params_from_session(loaded)
        source_rate = loaded.sample_rate
    else:
        if kwargs.get("master_model") is not None:
            notices.append("no session: the master chain starts at the schema defaults (flat EQ, ratio-1 compressor, "
                           "0 dB gain) until the master model's first prediction")
        else:
            notices.append("no session: the master chain runs at the schema defaults (flat EQ, ratio-1 compressor, "
                           "0 dB gain, limiter at -1 dBTP)")
    if ceiling_dbtp is not None:
        from mixbridge.schema import MASTER_BUS

        ceiling = MASTER_BUS.param("limiter.ceiling_dbtp").validate(ceiling_dbtp, "--ceiling-dbtp")
        params = dict(params or {})
        params["limiter"] = {**params.get("limiter", {}), "ceiling_dbtp": ceiling}
    from .live import LiveBus

    return LiveBus(params, reference=reference, artifact=artifact, proxy_params=proxy_params, notices=notices,
                   source_sample_rate=source_rate, **kwargs)


def run_live(bus: LiveBus, *, duration_s: float | None = None, out: TextIO | None = None,
             install_signals: bool = True, poll_s: float = 0.1, quiet: bool = False) -> LiveSummary:
    """Start ``bus``, print its notices while it runs, stop it on SIGINT/SIGTERM, after ``duration_s``
    seconds or when the JACK server goes away; print and return the summary.

    ``quiet`` prints only the ready line (no notices, no summary). Signal handlers are installed
    (and restored after) only on the main thread.

    Raises:
        BridgeConfigError: ``duration_s`` not a finite number > 0 (checked before anything starts).
        LiveBusError etc.: what :meth:`LiveBus.start` raises.
    """
    out = out or sys.stdout
    if duration_s is not None and not (isinstance(duration_s, (int, float)) and 0 < duration_s < float("inf")):
        from .errors import BridgeConfigError

        raise BridgeConfigError(f"--duration-s {duration_s!r} must be a number of seconds > 0; leave it out to run "
                                "until SIGINT/SIGTERM")

    def say(line: str) -> None:
        if not quiet:
            print(line, file=out, flush=True)

    stop = threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if install_signals and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda signum, frame: stop.set())
    try:
        bus.start()
        print(bus.ready_text(), file=out, flush=True)
        deadline = None if duration_s is None else time.monotonic() + float(duration_s)
        reason = "stopped"
        while True:
            for line in bus.poll_messages():
                say(f"live: {line}")
            if stop.wait(poll_s):
                reason = "signal received"
                break
            if bus.server_gone:
                reason = f"JACK server gone: {bus.server_gone}"
                break
            if deadline is not None and time.monotonic() >= deadline:
                reason = f"duration of {duration_s:g} s reached"
                break
        summary = bus.stop()
        for line in bus.poll_messages():
            say(f"live: {line}")
        say(f"live: {reason}; shutting down")
        say(summary.text())
        return summary
    finally:
        if bus.client is not None:
            bus.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
