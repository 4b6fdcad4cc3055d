"""The bridge's library API: match tracks, push a session, pull a DAW's mixer state.

``push(session, daw=...)`` asks the DAW for its tracks (where it answers),
matches session tracks by name or order, resolves where the mapped plugins sit
on each strip (and, on Ardour, its first aux send), sends gain, pan, mute, the
send level and plugin parameters, and returns a
:class:`PushReport`. ``plan_push`` does the same without a socket and is what
``--dry-run`` prints. ``pull(daw=...)`` reads the DAW's state back into a
:class:`~mixbridge.session.Session`.

Every query has a timeout (``timeout_s``, default 2 s): an unreachable DAW raises
:class:`~mixbridge.bridge.errors.DawUnreachableError` within a few seconds.
Feedback that does not parse is counted in the report, never fatal.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

from mixbridge.schema import CHANNEL_STRIP, MASTER_BUS
from mixbridge.session import Master, Session, Track

from .errors import DawRangeError, DawUnreachableError, TrackMatchError
from .osc import OscMessage
from .profiles import (
    SEND_PATH, AbletonProfile, ArdourProfile, DawProfile, ReaperProfile, StripMessages, ableton_db_from_volume,
    ardour_send_db_from_position, get_profile, pan_from_ardour_position,
)
from .routing import ReplyCollector, RouterStats
from .transport import DEFAULT_QUERY_TIMEOUT_S, LOCALHOST, OscUdpClient

MATCH_MODES = ("name", "order")
#: Pace of single-message pushes: 20000 msg/s sends a 64-track strip set (~1300 messages) in
#: ~65 ms without bursting past a receiver's default 208 KiB socket buffer.
DEFAULT_PUSH_RATE = 20000.0


@dataclass(frozen=True)
class DawTrack:
    """A track as the DAW lists it: 0-based position in the DAW's order and its name."""

    position: int
    name: str


@dataclass
class StripLayout:
    """Where the mapped plugins sit on one DAW strip: map slot -> actual slot (None: absent),
    and, where the DAW lists parameter names, native name -> parameter index per slot."""

    slots: dict[int, int | None] = field(default_factory=dict)
    param_index: dict[int, dict[str, int]] = field(default_factory=dict)
    #: Native (min, max) per slot and parameter index, where the DAW reports them (Ableton).
    ranges: dict[int, dict[int, tuple[float, float]]] = field(default_factory=dict)
    #: The aux send that carries ``send.send_db`` (1-based; the strip's first send), None: no send.
    send_id: int | None = 1


@dataclass
class MatchResult:
    pairs: list[tuple[Track, DawTrack]]
    unmatched_session: list[str]
    unmatched_daw: list[str]


def match_tracks(tracks: Sequence[Track], daw_tracks: Sequence[DawTrack] | None, mode: str) -> MatchResult:
    """Pair session tracks with DAW tracks by ``name`` (exact, then case-insensitive) or ``order``.

    ``daw_tracks=None`` means the DAW was not asked (dry run): tracks pair in session order.

    Raises:
        TrackMatchError: unknown mode, name matching without a DAW track list, or no pair at all.
    """
    if mode not in MATCH_MODES:
        raise TrackMatchError(f"--match {mode!r} is not one of {', '.join(MATCH_MODES)}")
    if daw_tracks is None:
        return MatchResult([(t, DawTrack(i, t.name)) for i, t in enumerate(tracks)], [], [])
    pairs: list[tuple[Track, DawTrack]] = []
    if mode == "order":
        for t, d in zip(tracks, daw_tracks):
            pairs.append((t, d))
        un_s = [t.name for t in tracks[len(daw_tracks):]]
        un_d = [d.name for d in daw_tracks[len(tracks):]]
    else:
        free = list(daw_tracks)
        un_s = []
        for t in tracks:
            hit = next((d for d in free if d.name == t.name), None) or next(
                (d for d in free if d.name.casefold() == t.name.casefold()), None)
            if hit is None:
                un_s.append(t.name)
            else:
                free.remove(hit)
                pairs.append((t, hit))
        un_d = [d.name for d in free]
    if not pairs:
        raise TrackMatchError(
            f"no session track matches a DAW track by {mode} (session: {', '.join(t.name for t in tracks)}; "
            f"DAW: {', '.join(d.name for d in daw_tracks) or 'no tracks'}); rename the tracks or use --match order"
        )
    return MatchResult(pairs, un_s, un_d)


@dataclass
class PushPlan:
    """Everything a push would send, and what it could not map."""

    daw: str
    setup: list[OscMessage]
    strips: list[tuple[str, int, StripMessages]]
    match: MatchResult
    unmapped_paths: list[str]

    @property
    def messages(self) -> list[OscMessage]:
        return self.setup + [m for _, _, s in self.strips for m in s.messages]

    @property
    def unmapped(self) -> list[str]:
        return [u for _, _, s in self.strips for u in s.unmapped]

    @property
    def clamped(self) -> list[str]:
        return [c for _, _, s in self.strips for c in s.clamped]


@dataclass
class PushReport:
    plan: PushPlan
    sent: int
    elapsed_s: float
    feedback: RouterStats

    @property
    def messages_per_s(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else float("inf")


def _strip_messages(profile: DawProfile, position: int, track: Track, layout: StripLayout | None,
                    clamp: bool, sample_rate: int = 48000) -> StripMessages:
    out = StripMessages()
    where = f"track '{track.name}' "
    dm = profile.plugin_map
    carried = set(dm.paths)
    for path, param in CHANNEL_STRIP.flat_params():
        proc, name = path.split(".")
        value = track.params[proc][name]
        msgs: list[OscMessage] = []
        if path in profile.strip_paths:
            msgs = profile.strip_messages(position, path, value, where=where, clamp=clamp, clamped=out.clamped)
        elif path == SEND_PATH and profile.maps_send:
            send_id = layout.send_id if layout is not None else 1
            if send_id is None:
                if value != param.default:
                    out.unmapped.append(f"{track.name}: {path} = {value:g} (no aux send on the DAW strip)")
                continue
            msgs = [profile.send_message(position, send_id, value)]
        elif path in carried:
            continue  # sent per plugin below
        if msgs:
            out.messages.extend(msgs)
        elif value != param.default:
            why = next((p.not_carried[name] for p in dm.plugins if p.processor.name == proc and name in p.not_carried),
                       f"no {profile.name} mapping")
            out.unmapped.append(f"{track.name}: {path} = {value:g} ({why})")
    # plugin parameters: per plugin slot, by parameter name, from the DAW map (host maps for REAPER)
    for plug in dm.plugins:
        proc = plug.processor.name
        params = track.params[proc]
        changed = [f"{proc}.{n}" for n in plug.sources if params[n] != plug.processor.param(n).default]
        slot: int | None = plug.slot
        names = None
        if layout is not None:
            slot = layout.slots.get(plug.slot, plug.slot)
            names = layout.param_index.get(plug.slot)
        if slot is None:
            out.unmapped.extend(f"{track.name}: {p} = {params[p.split('.')[1]]:g} (plugin '{plug.name}' not found on "
                                "the DAW strip)" for p in changed)
            continue
        wire = plug.values(params, sample_rate, where)
        for pname, v in wire.items():
            index = plug.params[pname].index if names is None else names.get(pname, -1)
            if index < 0:
                out.unmapped.extend(f"{track.name}: {p} = {params[p.split('.')[1]]:g} (parameter '{pname}' of "
                                    f"'{plug.name}' not found on the DAW strip)"
                                    for p in changed if _drives(plug, pname, p.split(".")[1]))
                continue
            rng = layout.ranges.get(plug.slot, {}).get(index) if layout is not None else None
            if rng is not None and not rng[0] - 1e-6 <= v <= rng[1] + 1e-6:
                raise DawRangeError(
                    f"{where}{plug.name} '{pname}' would be sent as {v:g}, but {profile.name} reports that "
                    f"parameter's range as [{rng[0]:g}, {rng[1]:g}]; the built-in plugin map does not fit this "
                    "device version, so nothing was sent"
                )
            out.messages.append(profile.plugin_message(position, slot, index, v))
    return out


def _drives(plug, pname: str, source: str) -> bool:
    bs = plug.stage.set if plug.stage is not None else plug.bindings
    return any(b.param == pname and (b.source == source or source in b.with_) for b in bs)


def plan_push(session: Session, daw: str | DawProfile, *, daw_tracks: Sequence[DawTrack] | None = None,
              match: str = "name", clamp: bool = False,
              layouts: dict[int, StripLayout] | None = None) -> PushPlan:
    """Build every message of a push without touching the network.

    Raises:
        TrackMatchError: see :func:`match_tracks`.
        DawRangeError: a value the DAW cannot take (unless ``clamp``; then it is listed in ``clamped``).
    """
    profile = get_profile(daw) if isinstance(daw, str) else daw
    result = match_tracks(session.tracks, daw_tracks, match)
    n = max([d.position + 1 for _, d in result.pairs] + [len(daw_tracks or [])])
    setup = profile.setup_messages(n)
    strips = []
    for track, d in result.pairs:
        layout = (layouts or {}).get(d.position)
        strips.append((track.name, d.position, _strip_messages(profile, d.position, track, layout, clamp,
                                                                  session.sample_rate)))
    return PushPlan(profile.name, setup, strips, result, profile.unmapped_paths())


# ------------------------------------------------------------------------------ DAW queries
class _State:
    """Feedback gathered from a DAW: address -> list of argument tuples."""

    def __init__(self) -> None:
        self.by_address: dict[str, list[tuple]] = {}

    def __call__(self, msg: OscMessage) -> None:
        self.by_address.setdefault(msg.address, []).append(msg.args)

    def last(self, address: str, key: tuple) -> tuple | None:
        hit = None
        for args in self.by_address.get(address, []):
            if tuple(args[:len(key)]) == key:
                hit = args
        return hit


class _HintingClient(OscUdpClient):
    """An OscUdpClient whose timeouts name what to check on the DAW's side."""

    hint = ""

    def query(self, *args, **kwargs):
        try:
            return super().query(*args, **kwargs)
        except DawUnreachableError as e:
            raise DawUnreachableError(f"{e}. {self.hint}" if self.hint else str(e)) from None


def _client(profile: DawProfile, host: str, port: int | None, timeout_s: float,
            reply_port: int | None) -> OscUdpClient:
    local = reply_port if reply_port is not None else (profile.reply_port or 0)
    c = _HintingClient(host, port or profile.default_port, local_port=local, timeout_s=timeout_s)
    c.hint = profile.unreachable_hint
    return c


def ardour_list_strips(client: OscUdpClient, *, feedback: bool = False) -> list[tuple[int, str, str]]:
    """Handshake and ``/strip/list``: ``[(ssid, name, type), ...]`` for tracks and buses.

    ``feedback=True`` registers the surface with value feedback, so Ardour also sends
    every strip's state (gain, trim, pan, mute), which :func:`pull` reads."""
    rows: list[tuple[int, str, str]] = []
    done = ReplyCollector("/reply", done=lambda m: bool(m.args) and m.args[0] == "end_route_list")
    handshake = ArdourProfile.HANDSHAKE if feedback else ArdourProfile.HANDSHAKE_QUIET
    with client.router.routed("/reply", done):
        client.query(list(handshake) + [OscMessage("/strip/list")], done.finished.is_set,
                     what="/strip/list", quiet_s=None)
    for m in done.messages:
        a = m.args
        if len(a) >= 7 and a[0] in ("AT", "MT", "B", "MB") and isinstance(a[6], int):
            rows.append((a[6], str(a[1]), str(a[0])))
    return sorted(rows)


def ardour_plugins(client: OscUdpClient, ssid: int) -> dict[str, int]:
    """``/strip/plugin/list ssid`` -> ``{plugin name: piid}``."""
    return ardour_plugins_many(client, [ssid])[ssid]


def _per_strip_query(client: OscUdpClient, address: str, ssids: Sequence[int], parse, noun: str) -> dict:
    """Send ``address ssid`` for every strip at once, then collect ``{ssid: parse(reply args after ssid)}``.

    Raises:
        DawUnreachableError: not every strip answered within the client's timeout.
    """
    want = set(ssids)
    got: dict = {}

    def on_reply(m: OscMessage) -> None:
        if m.args and m.args[0] in want:
            got[m.args[0]] = parse(m.args[1:])

    with client.router.routed(address, on_reply):
        client.query([OscMessage(address, (s,)) for s in ssids], lambda: want <= set(got),
                     what=f"{address} for {len(want)} strips", quiet_s=None)
    if not want <= set(got):
        raise DawUnreachableError(f"Ardour listed the {noun} of {len(got)} of {len(want)} strips within "
                                  f"{client.timeout_s:g} s; raise --timeout")
    return got


def _plugin_names(args) -> dict[str, int]:
    names: dict[str, int] = {}
    for i in range(0, len(args) - 2, 3):  # piid, name, active
        names.setdefault(str(args[i + 1]), int(args[i]))
    return names


def ardour_plugins_many(client: OscUdpClient, ssids: Sequence[int]) -> dict[int, dict[str, int]]:
    """``/strip/plugin/list`` for many strips, pipelined: all queries first, then the replies."""
    return _per_strip_query(client, "/strip/plugin/list", ssids, _plugin_names, "plugins")


def ardour_sends_many(client: OscUdpClient, ssids: Sequence[int]) -> dict[int, list[tuple[int, str, int, float, int]]]:
    """``/strip/sends`` for many strips, pipelined: ``{ssid: [(target ssid, name, sendid, fader position,
    active), ...]}`` per aux send, in strip order (an empty list for a strip without sends)."""
    return _per_strip_query(
        client, "/strip/sends", ssids,
        lambda a: [(int(a[i]), str(a[i + 1]), int(a[i + 2]), float(a[i + 3]), int(a[i + 4]))
                   for i in range(0, len(a) - 4, 5)],
        "sends")


def ardour_descriptor(client: OscUdpClient, ssid: int, piid: int) -> dict[int, tuple[str, float, float, float]]:
    """``/strip/plugin/descriptor`` -> ``{param id: (name, lower, upper, current value)}``."""
    col = ReplyCollector("/strip/plugin/**", done=lambda m: m.address.endswith("descriptor_end")
                         and tuple(m.args[:2]) == (ssid, piid))
    with client.router.routed("/strip/plugin/**", col):
        client.query([OscMessage("/strip/plugin/descriptor", (ssid, piid))], col.finished.is_set,
                     what=f"/strip/plugin/descriptor {ssid} {piid}", quiet_s=None)
    out = {}
    for m in col.messages:
        a = m.args
        if m.address == "/strip/plugin/descriptor" and tuple(a[:2]) == (ssid, piid) and len(a) >= 11:
            out[int(a[2])] = (str(a[3]), float(a[6]), float(a[7]), float(a[10]))
    return out


def ableton_track_names(client: OscUdpClient) -> list[str]:
    col = ReplyCollector("/live/song/get/track_names", done=lambda m: True)
    with client.router.routed("/live/song/get/track_names", col):
        client.query([OscMessage("/live/song/get/track_names")], col.finished.is_set,
                     what="/live/song/get/track_names", quiet_s=None)
    return [str(a) for a in col.messages[-1].args]


def _ableton_get(client: OscUdpClient, address: str, key: tuple) -> tuple:
    col = ReplyCollector(address, done=lambda m: tuple(m.args[:len(key)]) == key)
    with client.router.routed(address, col):
        client.query([OscMessage(address, key)], col.finished.is_set, what=f"{address} {key}", quiet_s=None)
    return next(m.args for m in reversed(col.messages) if tuple(m.args[:len(key)]) == key)[len(key):]


def _ableton_layout(client: OscUdpClient, t: int, profile: DawProfile) -> StripLayout:
    devices = [str(x) for x in _ableton_get(client, "/live/track/get/devices/name", (t,))]
    layout = StripLayout()
    for slot, name in profile.plugin_map.slots:
        actual = devices.index(name) if name in devices else None
        layout.slots[slot] = actual
        if actual is not None:
            names = _ableton_get(client, "/live/device/get/parameters/name", (t, actual))
            layout.param_index[slot] = {str(n): i for i, n in enumerate(names)}
            lo = _ableton_get(client, "/live/device/get/parameters/min", (t, actual))
            hi = _ableton_get(client, "/live/device/get/parameters/max", (t, actual))
            layout.ranges[slot] = {i: (float(a), float(b)) for i, (a, b) in enumerate(zip(lo, hi))}
    return layout


def reaper_refresh(client: OscUdpClient, n_tracks: int, profile: ReaperProfile, timeout_s: float) -> _State:
    """Widen the bank to ``n_tracks``, trigger "refresh all surfaces" and collect REAPER's feedback."""
    state = _State()
    with client.router.routed("/**", state):
        client.query(profile.setup_messages(n_tracks) + [profile.refresh_message()], lambda: False,
                     what="/action 41743 (refresh all surfaces)", timeout_s=timeout_s)
    return state


def query_daw_tracks(client: OscUdpClient, profile: DawProfile, *, max_tracks: int = 64) -> list[DawTrack]:
    """Ask the DAW for its tracks in order."""
    if isinstance(profile, ArdourProfile):
        return [DawTrack(ssid - 1, name) for ssid, name, _ in ardour_list_strips(client)]
    if isinstance(profile, AbletonProfile):
        return [DawTrack(i, n) for i, n in enumerate(ableton_track_names(client))]
    state = reaper_refresh(client, max_tracks, profile, client.timeout_s)
    return _reaper_tracks(state)


def _reaper_tracks(state: _State) -> list[DawTrack]:
    names: dict[int, str] = {}
    for address, rows in state.by_address.items():
        parts = address.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "track" and parts[2] == "name" and parts[1].isdigit() and int(parts[1]) > 0:
            names[int(parts[1])] = str(rows[-1][0]) if rows and rows[-1] else ""
    return [DawTrack(n - 1, names[n]) for n in sorted(names) if names[n]]


def push(session: Session, daw: str, *, host: str = LOCALHOST, port: int | None = None, match: str = "name",
         clamp: bool = False, timeout_s: float = DEFAULT_QUERY_TIMEOUT_S, reply_port: int | None = None,
         max_tracks: int = 64, max_msgs_per_s: float = DEFAULT_PUSH_RATE) -> PushReport:
    """Push a session's channel strips into a running DAW.

    Raises:
        DawUnreachableError: the DAW did not answer within ``timeout_s``.
        TrackMatchError, DawRangeError: see :func:`plan_push`.
    """
    profile = get_profile(daw)
    with _client(profile, host, port, timeout_s, reply_port) as client:
        client.router.add("/**", lambda m: None)  # feedback is expected; count it as routed
        t0 = time.perf_counter()
        daw_tracks = query_daw_tracks(client, profile, max_tracks=max(max_tracks, len(session.tracks)))
        result = match_tracks(session.tracks, daw_tracks, match)
        layouts: dict[int, StripLayout] = {}
        if isinstance(profile, ArdourProfile):
            ssids = [d.position + 1 for _, d in result.pairs]
            present = ardour_plugins_many(client, ssids)
            sends = ardour_sends_many(client, ssids)
            for _, d in result.pairs:
                first_send = sends[d.position + 1][0][2] if sends[d.position + 1] else None
                layouts[d.position] = StripLayout({slot: present[d.position + 1].get(name)
                                                   for slot, name in profile.plugin_map.slots}, send_id=first_send)
        elif isinstance(profile, AbletonProfile):
            for _, d in result.pairs:
                layouts[d.position] = _ableton_layout(client, d.position, profile)
        plan = plan_push(session, profile, daw_tracks=daw_tracks, match=match, clamp=clamp, layouts=layouts)
        sent = send_plan(client, plan, profile, max_msgs_per_s=max_msgs_per_s)
        client.pump(0.02)  # drain immediate feedback so unparseable replies are counted
        elapsed = time.perf_counter() - t0
        return PushReport(plan, sent, elapsed, client.router.stats)


def send_plan(client: OscUdpClient, plan: PushPlan, profile: DawProfile, *,
              max_msgs_per_s: float = DEFAULT_PUSH_RATE) -> int:
    """Send a plan: setup messages, then one bundle per strip where the DAW takes bundles,
    else single messages paced to ``max_msgs_per_s``. Returns the number of messages."""
    n = client.send_many(plan.setup)
    if profile.accepts_bundles:
        for _, _, strip in plan.strips:
            if strip.messages:
                client.send_bundle(strip.messages)
                n += len(strip.messages)
        return n
    gap = 1.0 / max_msgs_per_s
    due = time.perf_counter()
    for _, _, strip in plan.strips:
        for m in strip.messages:
            due += gap
            while time.perf_counter() < due:
                pass
            client.send(m)
            n += 1
    return n


def push_blind(session: Session, daw: str, *, host: str = LOCALHOST, port: int | None = None,
               clamp: bool = False, max_msgs_per_s: float = DEFAULT_PUSH_RATE) -> PushReport:
    """Send a push plan without querying the DAW (session order, default plugin slots).

    For DAWs whose feedback is not configured; nothing is received.
    """
    profile = get_profile(daw)
    plan = plan_push(session, profile, daw_tracks=None, match="order", clamp=clamp)
    with OscUdpClient(host, port or profile.default_port) as client:
        t0 = time.perf_counter()
        sent = send_plan(client, plan, profile, max_msgs_per_s=max_msgs_per_s)
        return PushReport(plan, sent, time.perf_counter() - t0, client.router.stats)


# ------------------------------------------------------------------------------ pull
@dataclass
class PullReport:
    session: Session
    not_read: list[str]
    clamped: list[str]
    feedback: RouterStats


def _set(track_params: dict, path: str, value: float, where: str, clamp: bool, clamped: list[str]) -> None:
    param = CHANNEL_STRIP.param(path)
    proc, name = path.split(".")
    v = float(value)
    if param.kind == "bool":
        v = 1.0 if v >= 0.5 else 0.0
    if not param.min <= v <= param.max:
        if not clamp:
            raise DawRangeError(
                f"{where}{path} reads {v:g} from the DAW, outside the schema's {param.range_text()}; "
                "change it in the DAW or pass --clamp to store the nearest limit (listed in the report)"
            )
        nv = min(max(v, param.min), param.max)
        clamped.append(f"{where}{path}: {v:g} -> {nv:g}")
        v = nv
    track_params[proc][name] = v


def _new_session(daw: str, host: str, port: int, tracks: list[Track]) -> Session:
    return Session(48000, tracks, Master(MASTER_BUS.defaults()),
                   {"pulled_from": daw, "host": host, "port": port,
                    "pulled_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


def pull(daw: str, *, host: str = LOCALHOST, port: int | None = None, clamp: bool = False,
         timeout_s: float = DEFAULT_QUERY_TIMEOUT_S, reply_port: int | None = None,
         max_tracks: int = 64, sample_rate: int = 48000) -> PullReport:
    """Read a DAW's faders, pans, mutes and mapped plugin parameters into a new session.

    Tracks get ``source = "daw:<daw>/<name>"`` (no audio is pulled). Values the DAW
    did not report are left at schema defaults and listed in ``not_read``.

    Raises:
        DawUnreachableError: no answer within ``timeout_s``.
        DawRangeError: a DAW value outside the schema range (unless ``clamp``).
    """
    profile = get_profile(daw)
    port = port or profile.default_port
    with _client(profile, host, port, timeout_s, reply_port) as client:
        state = _State()
        client.router.add("/**", state)
        if isinstance(profile, ArdourProfile):
            tracks, not_read, clamped = _pull_ardour(client, profile, state, clamp, sample_rate)
        elif isinstance(profile, AbletonProfile):
            tracks, not_read, clamped = _pull_ableton(client, profile, clamp, sample_rate)
        else:
            tracks, not_read, clamped = _pull_reaper(client, profile, max_tracks, clamp, sample_rate)
        s = _new_session(daw, host, port, tracks)
        s.sample_rate = sample_rate
        s.validate()
        return PullReport(s, not_read, clamped, client.router.stats)


def _read_plugin(t: Track, plug, wire: dict[str, float], name: str, where: str, clamp: bool, clamped: list[str],
                 not_read: list[str], sample_rate: int) -> None:
    """Store what one plugin's wire values say about its schema parameters (conversions inverted)."""
    got, missing = plug.read_back(wire, sample_rate)
    proc = plug.processor.name
    for src, v in got.items():
        _set(t.params, f"{proc}.{src}", v, where, clamp, clamped)
    not_read.extend(f"{name}: {proc}.{m} ({plug.name} did not report it)" for m in missing)


def _pull_ardour(client, profile, state: _State, clamp, sample_rate=48000):
    strips = ardour_list_strips(client, feedback=True)
    client.pump(0.1)  # the handshake's strip feedback keeps arriving for a moment
    sends = ardour_sends_many(client, [ssid for ssid, _, _ in strips])
    send_off_db = CHANNEL_STRIP.param(SEND_PATH).min
    tracks, not_read, clamped = [], [], []
    for ssid, name, _type in strips:
        where = f"track '{name}' "
        t = Track(name, f"daw:ardour/{name}", CHANNEL_STRIP.defaults())
        reads = {
            "fader.fader_db": ("/strip/gain", lambda v: v),
            "trim.gain_db": ("/strip/trimdB", lambda v: v),
            "fader.mute": ("/strip/mute", lambda v: v),
            "pan.pan": ("/strip/pan_stereo_position", pan_from_ardour_position),
        }
        for path, (address, conv) in reads.items():
            row = state.last(address, (ssid,))
            if row is None or len(row) < 2:
                not_read.append(f"{name}: {path}")
                continue
            _set(t.params, path, conv(float(row[1])), where, clamp, clamped)
        not_read.append(f"{name}: polarity.invert (Ardour's OSC sends no polarity feedback)")
        if sends[ssid]:  # the first aux send; an inactive or silent send is the schema's "off"
            _target, _send_name, _send_id, position, active = sends[ssid][0]
            send_db = ardour_send_db_from_position(position) if active else float("-inf")
            _set(t.params, SEND_PATH, send_off_db if send_db == float("-inf") else send_db, where, clamp, clamped)
        else:
            not_read.append(f"{name}: {SEND_PATH} (no aux send on the strip)")
        present = ardour_plugins(client, ssid)
        for plug in profile.plugin_map.plugins:
            piid = present.get(plug.name)
            if piid is None:
                not_read.extend(f"{name}: {p} (no {plug.name} on the strip)" for p in plug.paths)
                continue
            desc = ardour_descriptor(client, ssid, piid)
            wire = {p.name: desc[p.index][3] for p in plug.params.values()
                    if p.index in desc and desc[p.index][0] == p.name}
            _read_plugin(t, plug, wire, name, where, clamp, clamped, not_read, sample_rate)
        tracks.append(t)
    return tracks, not_read, clamped


def _pull_ableton(client, profile, clamp, sample_rate=48000):
    names = ableton_track_names(client)
    tracks, not_read, clamped = [], [], []
    for i, name in enumerate(names):
        where = f"track '{name}' "
        t = Track(name, f"daw:ableton/{name}", CHANNEL_STRIP.defaults())
        vol = _ableton_get(client, "/live/track/get/volume", (i,))
        _set(t.params, "fader.fader_db", ableton_db_from_volume(float(vol[0])), where, clamp, clamped)
        _set(t.params, "pan.pan", float(_ableton_get(client, "/live/track/get/panning", (i,))[0]), where, clamp, clamped)
        _set(t.params, "fader.mute", float(_ableton_get(client, "/live/track/get/mute", (i,))[0]), where, clamp, clamped)
        layout = _ableton_layout(client, i, profile)
        for plug in profile.plugin_map.plugins:
            actual = layout.slots.get(plug.slot)
            if actual is None:
                not_read.extend(f"{name}: {p} (no {plug.name} on the track)" for p in plug.paths)
                continue
            values = _ableton_get(client, "/live/device/get/parameters/value", (i, actual))
            idx = layout.param_index[plug.slot]
            wire = {n: float(values[idx[n]]) for n in plug.params if n in idx and idx[n] < len(values)}
            _read_plugin(t, plug, wire, name, where, clamp, clamped, not_read, sample_rate)
        tracks.append(t)
    return tracks, not_read, clamped


def _pull_reaper(client, profile, max_tracks, clamp, sample_rate=48000):
    state = reaper_refresh(client, max_tracks, profile, client.timeout_s)
    tracks, not_read, clamped = [], [], []
    for d in _reaper_tracks(state):
        n = d.position + 1
        where = f"track '{d.name}' "
        t = Track(d.name, f"daw:reaper/{d.name}", CHANNEL_STRIP.defaults())
        for path, address, conv in (
            ("fader.fader_db", f"/track/{n}/volume/db", float),
            ("pan.pan", f"/track/{n}/pan", lambda v: 2.0 * float(v) - 1.0),
            ("fader.mute", f"/track/{n}/mute", float),
        ):
            rows = state.by_address.get(address)
            if not rows or not rows[-1]:
                not_read.append(f"{d.name}: {path}")
                continue
            _set(t.params, path, conv(rows[-1][0]), where, clamp, clamped)
        for plug in profile.plugin_map.plugins:
            wire = {}
            for pname, p in plug.params.items():
                rows = state.by_address.get(f"/track/{n}/fx/{plug.slot}/fxparam/{p.index}/value")
                if rows and rows[-1]:
                    wire[pname] = float(rows[-1][0])
            _read_plugin(t, plug, wire, d.name, where, clamp, clamped, not_read, sample_rate)
        tracks.append(t)
    return tracks, not_read, clamped
