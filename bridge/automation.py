"""Automation: session curves sent to a DAW in real time against a clock.

A session's automation (``Track.automation["processor.param"]``, piecewise
linear in seconds) is sampled at ``rate_hz``, thinned to meaningful changes,
and sent on a ``time.perf_counter`` clock:

* **Thinning.** A sample is kept only if it moved by at least ``resolution``
  of the parameter's normalised range (schema scale, so log parameters thin
  in ratio) since the last kept value; the curve's last value is always kept.
  The default, :data:`DEFAULT_RESOLUTION`, is 1/1000 of the range (0.06 dB on
  the -48..+12 dB fader), finer than a DAW fader step.
* **Rate limit.** A token bucket caps messages per second over all parameters.
  When a tick has more changes than tokens, the changes wait and later values
  of the same parameter replace earlier ones (``coalesced``), so the DAW always
  converges to the curve instead of falling behind.
* **Bundles** (off by default, ``bundles=True`` or ``automate --bundles on``). Where the DAW's
  OSC server schedules bundles by time tag (Ardour via liblo), each tick goes out
  ``lookahead_s`` early as a bundle stamped with its due time. Measured against a real
  Ardour 7.3, liblo releases a queued bundle only when another message arrives: on a sparse
  curve every value landed about 160 ms late and the last one never landed. So plain messages
  at their due time are the default (0.7 ms median lateness there), and a bundled run ends
  with a **flush**: once the last tick is due, every parameter's last value is sent again as
  a plain message, which both releases the queue and lands the curve's exact ending.

:func:`measure_jitter` sends a curve to a local receiver and reports lateness
(arrival minus due time) as median and p99.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mixbridge.schema import CHANNEL_STRIP, Param
from mixbridge.session import Automation, Session, refuse_direct

from .errors import BridgeConfigError, NoAutomationError
from .osc import OscMessage, encode_bundle, encode_message, ntp_timetag
from .pacing import sleep_until
from .transport import DEFAULT_QUERY_TIMEOUT_S, LOCALHOST, OscUdpClient, OscUdpServer

#: Smallest change worth sending, as a fraction of a parameter's normalised range.
DEFAULT_RESOLUTION = 1e-3
#: How early a timetagged bundle leaves, so network and parsing finish before its time tag.
DEFAULT_LOOKAHEAD_S = 0.02
#: Highest curve sampling rate, Hz: MIDI 1.0 carries at most ~1040 three-byte messages a second
#: (31 250 baud, 10 bits a byte) and a DAW's OSC surface fewer; above it a long curve only costs
#: memory (``--rate-hz 1e7`` on a 4-minute curve: 2.4 G samples).
MAX_RATE_HZ = 1000.0


@dataclass(frozen=True)
class AutomationEvent:
    """One value due at ``time_s`` (seconds from the start) for ``track`` / ``path``."""

    time_s: float
    track: str
    path: str
    value: float


def check_rate_hz(rate_hz: float) -> float:
    """``rate_hz`` as a float if it is in (0, :data:`MAX_RATE_HZ`] Hz.

    Raises:
        BridgeConfigError: a rate that is not a number in that range (one line, the limit and the fix).
    """
    if not (isinstance(rate_hz, (int, float)) and 0 < rate_hz <= MAX_RATE_HZ):
        raise BridgeConfigError(f"--rate-hz {rate_hz:g} is outside (0, {MAX_RATE_HZ:g}] Hz; curves are sampled at "
                                f"most {MAX_RATE_HZ:g} times a second (default 100)")
    return float(rate_hz)


def sample_curve(curve: Automation, rate_hz: float, end_s: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sample a piecewise-linear curve every 1/rate_hz s from its first point to ``end_s`` (default its last).

    Raises:
        BridgeConfigError: a rate outside (0, :data:`MAX_RATE_HZ`] Hz (:func:`check_rate_hz`).
    """
    rate_hz = check_rate_hz(rate_hz)
    t0 = float(curve.times_s[0])
    t1 = float(curve.times_s[-1] if end_s is None else end_s)
    n = int(np.floor((t1 - t0) * rate_hz + 1e-9)) + 1
    times = t0 + np.arange(n) / rate_hz
    if times[-1] < t1 - 1e-12:
        times = np.append(times, t1)
    return times, np.interp(times, curve.times_s, curve.values)


def thin(times: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray, param: Param,
         resolution: float = DEFAULT_RESOLUTION) -> list[tuple[float, float]]:
    """Keep the samples that changed by >= ``resolution`` (normalised) since the last kept one,
    plus the last sample. Booleans keep every change."""
    out: list[tuple[float, float]] = []
    last_u = None
    for t, v in zip(times, values):
        v = float(v)
        if param.kind == "bool":
            v = 1.0 if v >= 0.5 else 0.0
        u = param.to_normalised(v)
        if last_u is None or abs(u - last_u) >= resolution - 1e-12 * (param.kind != "bool") and u != last_u:
            out.append((float(t), v))
            last_u = u
    if len(times) and out and out[-1][0] != float(times[-1]):
        v_last = float(values[-1])
        if param.kind == "bool":
            v_last = 1.0 if v_last >= 0.5 else 0.0
        if v_last != out[-1][1]:
            out.append((float(times[-1]), v_last))
    return out


def lane_points(curve: Automation, param: Param, rate_hz: float,
                resolution: float = DEFAULT_RESOLUTION) -> list[tuple[float, float]]:
    """The points of a DAW automation lane for ``curve``: ``[(time_s, schema value)]`` that, joined by straight
    lines in the parameter's normalised scale, stay within ``resolution`` of the curve sampled every
    ``1 / rate_hz`` s **and at each of its own breakpoints**.

    A lane is interpolated by the DAW between its points, unlike the step-held values ``automate`` sends in
    real time (:func:`thin`, which keeps a sample once it moved by ``resolution``): thinning a lane that way
    cuts a curve's corners (a fader dip whose bottom moved less than a step from the sample before was
    dropped, and the line to the next sample missed it by 10 steps). So each segment is extended as far as
    every sample between its ends stays within ``resolution`` of the line (found by galloping, then
    bisection: O(n log n) samples checked). Booleans are step lanes
    and keep every change (:func:`thin`).

    Raises:
        BridgeConfigError: a rate outside (0, :data:`MAX_RATE_HZ`] Hz.
    """
    t, v = sample_curve(curve, rate_hz)
    if param.kind == "bool":
        return thin(t, v, param, resolution)
    knots = np.asarray(curve.times_s, dtype=np.float64)
    t = np.union1d(t, knots[(knots >= t[0]) & (knots <= t[-1])])
    t = t[np.concatenate(([True], np.diff(t) > 1e-9))]  # a knot within 1 ns of a grid time is that time
    v = np.interp(t, curve.times_s, curve.values)
    u = np.array([param.to_normalised(float(min(max(x, param.min), param.max))) for x in v])
    tol = resolution + 1e-12

    def fits(a: int, b: int) -> bool:  # every sample a..b within tol of the line from a to b
        seg = slice(a, b + 1)
        line = u[a] + (u[b] - u[a]) * (t[seg] - t[a]) / (t[b] - t[a])
        return bool(np.max(np.abs(u[seg] - line)) <= tol)

    keep = [0]
    a, n = 0, len(t)
    while a < n - 1:  # the farthest end that fits: gallop, then bisect (each kept segment is checked to fit)
        good, step = a + 1, 1
        while good + step < n and fits(a, good + step):
            good += step
            step *= 2
        bad = min(good + step, n)
        while bad - good > 1:
            mid = (good + bad) // 2
            if fits(a, mid):
                good = mid
            else:
                bad = mid
        keep.append(good)
        a = good
    return [(float(t[i]), float(v[i])) for i in keep]


def require_automation(session: Session, what: str = "play") -> None:
    """Refuse a session with no track automation curve (``midi-export`` and ``automate`` alike).

    Raises:
        DirectSessionError: a direct mixer's session (it has no parameters, so no curves).
        NoAutomationError: no track has a curve; the message names the fix.
    """
    refuse_direct(session, what)
    if not any(t.automation for t in session.tracks):
        raise NoAutomationError(
            f"the session has no automation curves to {what}: add \"automation\": {{\"fader.fader_db\": "
            "{\"times_s\": [0, 5], \"values\": [-6, 0]}} to a track (README \"The session file\"), "
            "or automix with --mixer deepmixing, which writes fader curves")


def schedule_session(session: Session, *, rate_hz: float = 100.0,
                     resolution: float = DEFAULT_RESOLUTION) -> list[AutomationEvent]:
    """All tracks' automation as thinned events sorted by time (ties in track order).

    Raises:
        BridgeConfigError: ``rate_hz`` outside (0, :data:`MAX_RATE_HZ`] Hz.
    """
    rate_hz = check_rate_hz(rate_hz)
    events: list[AutomationEvent] = []
    for track in session.tracks:
        for path, curve in track.automation.items():
            param = CHANNEL_STRIP.param(path)
            t, v = sample_curve(curve, rate_hz)
            events.extend(AutomationEvent(tt, track.name, path, vv) for tt, vv in thin(t, v, param, resolution))
    events.sort(key=lambda e: e.time_s)
    return events


def _ticks(events: Sequence[AutomationEvent]) -> list[tuple[float, list[AutomationEvent]]]:
    ticks: list[tuple[float, list[AutomationEvent]]] = []
    for e in events:
        if ticks and abs(ticks[-1][0] - e.time_s) < 1e-9:
            ticks[-1][1].append(e)
        else:
            ticks.append((e.time_s, [e]))
    return ticks


@dataclass
class PlayReport:
    """What :func:`play_events` did: counts and send lateness (seconds, send minus due)."""

    events: int = 0
    sent_messages: int = 0
    datagrams: int = 0
    coalesced: int = 0
    #: Plain messages of the closing flush of a bundled run (every parameter's last value again).
    flushed: int = 0
    duration_s: float = 0.0
    send_lateness_s: list[float] = field(default_factory=list)
    due_perf_s: list[float] = field(default_factory=list)

    def lateness_stats_ms(self) -> tuple[float, float]:
        """Send lateness ``(median, p99)`` in ms (absolute values; NaN without sends)."""
        return _median_p99_ms(self.send_lateness_s)

    def summary(self) -> str:
        """One line: events, messages, datagrams, duration, coalesced, lateness."""
        med, p99 = self.lateness_stats_ms()
        flush = f", {self.flushed} flushed at the end" if self.flushed else ""
        return (f"{self.events} events -> {self.sent_messages} messages in {self.datagrams} datagrams over "
                f"{self.duration_s:.2f} s ({self.coalesced} coalesced by the rate limit{flush}); "
                f"send lateness median {med:.3f} ms, p99 {p99:.3f} ms")


def _median_p99_ms(xs: Sequence[float]) -> tuple[float, float]:
    if not xs:
        return float("nan"), float("nan")
    a = np.abs(np.asarray(xs)) * 1000.0
    return float(np.median(a)), float(np.percentile(a, 99))


def play_events(events: Sequence[AutomationEvent], to_messages: Callable[[AutomationEvent], list[OscMessage]],
                send: Callable[[bytes], None], *, max_msgs_per_s: float = 2000.0, bundles: bool = False,
                lookahead_s: float = DEFAULT_LOOKAHEAD_S, start_perf_s: float | None = None) -> PlayReport:
    """Send events on the perf_counter clock; ``send`` gets each datagram.

    With ``bundles``, each tick leaves ``lookahead_s`` early as one bundle time-tagged
    with its due wall-clock time, and once the last tick is due every parameter's last value
    is sent again as plain messages (the flush, counted in :attr:`PlayReport.flushed`);
    otherwise each message leaves at its due time.

    Raises:
        BridgeConfigError: ``max_msgs_per_s`` is not > 0.
    """
    if not max_msgs_per_s > 0:
        raise BridgeConfigError(f"max_msgs_per_s = {max_msgs_per_s} must be > 0")
    rep = PlayReport(events=len(events))
    start = (time.perf_counter() + 0.05) if start_perf_s is None else start_perf_s
    wall_offset = time.time() - time.perf_counter()
    tokens = max_msgs_per_s * 0.01 + 1  # a 10 ms burst allowance
    last_refill = start - (lookahead_s if bundles else 0.0)
    burst = tokens
    pending: dict[tuple[str, str], AutomationEvent] = {}
    last_sent: dict[tuple[str, str], AutomationEvent] = {}
    last_due = start
    for due_rel, group in _ticks(events):
        due = start + due_rel
        sleep_until(due - (lookahead_s if bundles else 0.0))
        now = time.perf_counter()
        tokens = min(burst, tokens + max(0.0, now - last_refill) * max_msgs_per_s)
        last_refill = max(last_refill, now)
        for e in group:
            key = (e.track, e.path)
            if key in pending:
                rep.coalesced += 1
            pending[key] = e
        msgs: list[OscMessage] = []
        while pending and tokens >= 1:
            key = next(iter(pending))
            e = pending.pop(key)
            out = to_messages(e)
            tokens -= max(len(out), 1)
            msgs.extend(out)
            last_sent[key] = e
        if not msgs:
            continue
        if bundles:
            send(encode_bundle(msgs, ntp_timetag(due + wall_offset)))
            rep.datagrams += 1
        else:
            for m in msgs:
                send(encode_message(m))
                rep.datagrams += 1
        rep.sent_messages += len(msgs)
        rep.send_lateness_s.append(time.perf_counter() - due if not bundles else now - (due - lookahead_s))
        rep.due_perf_s.append(due)
        last_due = due
    # send what the rate limit held back
    while pending:
        sleep_until(time.perf_counter() + 1.0 / max_msgs_per_s)
        key = next(iter(pending))
        e = pending.pop(key)
        last_sent[key] = e
        for m in to_messages(e):
            send(encode_message(m))
            rep.datagrams += 1
            rep.sent_messages += 1
    if bundles and last_sent:  # the flush: a plain message releases liblo's queue and lands the ending
        sleep_until(last_due)
        for e in last_sent.values():
            for m in to_messages(e):
                send(encode_message(m))
                rep.datagrams += 1
                rep.flushed += 1
    rep.duration_s = time.perf_counter() - start
    return rep


def play_session_automation(session: Session, daw: str, *, host: str = LOCALHOST, port: int | None = None,
                            match: str = "name", rate_hz: float = 100.0, max_msgs_per_s: float = 2000.0,
                            bundles: bool | None = None, clamp: bool = False,
                            timeout_s: float = DEFAULT_QUERY_TIMEOUT_S, reply_port: int | None = None,
                            resolution: float = DEFAULT_RESOLUTION) -> PlayReport:
    """Query and match the DAW's tracks (like push: by name unless ``match="order"``), then play the
    session's automation into it.

    Raises:
        NoAutomationError: the session has no automation curve (checked before the DAW is asked).
        DawUnreachableError, TrackMatchError, DawRangeError: as for :func:`~mixbridge.bridge.push.push`.
    """
    from .profiles import get_profile
    from .push import match_tracks

    require_automation(session)
    profile = get_profile(daw)
    # bundles only when asked (module docstring: liblo holds a queued bundle until another message comes)
    use_bundles = bool(bundles)
    with profile.open_client(host, port, timeout_s, reply_port) as client:
        client.router.add("/**", lambda m: None)
        daw_tracks = profile.query_tracks(client, max_tracks=max(64, len(session.tracks)))
        result = match_tracks(session.tracks, daw_tracks, match)
        position = {t.name: d.position for t, d in result.pairs}
        events = [e for e in schedule_session(session, rate_hz=rate_hz, resolution=resolution) if e.track in position]
        for m in profile.setup_messages(len(daw_tracks)):
            client.send(m)

        def to_messages(e: AutomationEvent) -> list[OscMessage]:
            return profile.param_messages(position[e.track], e.path, e.value, where=f"track '{e.track}' ", clamp=clamp)

        return play_events(events, to_messages, client.send_raw, max_msgs_per_s=max_msgs_per_s, bundles=use_bundles)


@dataclass
class JitterReport:
    """Arrival lateness at a local receiver (arrival minus due time), in ms."""

    sent: int
    received: int
    median_ms: float
    p99_ms: float
    max_ms: float

    def summary(self) -> str:
        """One line: received of sent, lateness median, p99 and max in ms."""
        return (f"{self.received}/{self.sent} received; lateness median {self.median_ms:.3f} ms, "
                f"p99 {self.p99_ms:.3f} ms, max {self.max_ms:.3f} ms")


_RECEIVER = r"""
import json, select, socket, sys, time
n, timeout_s = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
arrivals, end = [], time.monotonic() + timeout_s
while len(arrivals) < n and time.monotonic() < end:
    if select.select([s], [], [], 0.05)[0]:
        s.recvfrom(65536)
        arrivals.append(time.perf_counter())
print(json.dumps(arrivals), flush=True)
"""


def measure_jitter(*, rate_hz: float = 100.0, duration_s: float = 2.0, max_msgs_per_s: float = 10000.0,
                   receiver: str = "process") -> JitterReport:
    """Send a ``rate_hz`` fader ramp (one change per tick) to a local OSC receiver and time arrivals.

    ``receiver="process"`` (default) receives in a separate Python process, so sender and
    receiver do not share a GIL; both read ``time.perf_counter``, which on Linux is
    CLOCK_MONOTONIC and common to all processes. ``"thread"`` receives in this process.
    """
    import subprocess
    import sys

    from .profile_ardour import ArdourProfile

    n = int(round(duration_s * rate_hz))
    events = [AutomationEvent(i / rate_hz, "t", "fader.fader_db", -40.0 + 40.0 * i / max(n - 1, 1)) for i in range(n)]
    profile = ArdourProfile()

    def to_messages(e: AutomationEvent) -> list[OscMessage]:
        return profile.param_messages(0, e.path, e.value)

    if receiver == "thread":
        with OscUdpServer() as server, OscUdpClient(LOCALHOST, server.port) as client:
            rep = play_events(events, to_messages, client.send_raw, max_msgs_per_s=max_msgs_per_s)
            deadline = time.monotonic() + 1.0
            while len(server.arrivals) < rep.datagrams and time.monotonic() < deadline:
                time.sleep(0.01)
            arrivals = [t for t, _ in server.arrivals]
    elif receiver == "process":
        proc = subprocess.Popen([sys.executable, "-c", _RECEIVER, str(n), str(duration_s + 5.0)],
                                stdout=subprocess.PIPE, text=True)
        stdout = proc.stdout
        assert stdout is not None  # stdout=PIPE
        try:
            port = int(stdout.readline())
            with OscUdpClient(LOCALHOST, port) as client:
                rep = play_events(events, to_messages, client.send_raw, max_msgs_per_s=max_msgs_per_s)
            import json

            arrivals = json.loads(stdout.readline() or "[]")
            proc.wait(timeout=5)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    else:
        raise BridgeConfigError(f"receiver {receiver!r} must be 'process' or 'thread'")
    late = [a - d for a, d in zip(arrivals, rep.due_perf_s)]
    med, p99 = _median_p99_ms(late)
    mx = float(np.max(np.abs(late)) * 1000.0) if late else float("nan")
    return JitterReport(rep.datagrams, len(arrivals), med, p99, mx)
