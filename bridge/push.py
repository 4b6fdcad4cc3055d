"""The bridge's library API: match tracks, push a session, pull a DAW's mixer state.

``push(session, daw=...)`` asks the DAW for its tracks (where it answers),
matches session tracks by name or order, resolves where the mapped plugins sit
on each strip (and, on Ardour, its first aux send), sends gain, pan, mute, the
send level and plugin parameters the profile's way (:meth:`~mixbridge.bridge.profiles.DawProfile.deliver`:
Ableton's is paced to AbletonOSC's tick, reads every value back and resends what did not land), then
reads the DAW's state back (:func:`verify_push`: the largest error per parameter) and returns a
:class:`PushReport`. ``plan_push`` does the same without a socket and is what
``--dry-run`` prints. ``pull(daw=...)`` reads the DAW's state back into a
:class:`~mixbridge.session.Session`.

Every query has a timeout (``timeout_s``, default 2 s): an unreachable DAW raises
:class:`~mixbridge.bridge.errors.DawUnreachableError` within a few seconds.
Feedback that does not parse is counted in the report, never fatal.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mixbridge.schema import CHANNEL_STRIP, MASTER_BUS
from mixbridge.session import Master, Session, Track, refuse_direct

from .errors import BridgeConfigError, DawRangeError, DawUnreachableError, TrackMatchError
from .osc import OscMessage
from .profiles import (
    DEFAULT_PUSH_RATE,
    FADER_PATH,
    SEND_PATH,
    DawProfile,
    DawTrack,
    Delivery,
    FeedbackState,
    StripLayout,
    StripMessages,
    TrackCreation,
    get_profile,
)
from .routing import RouterStats
from .transport import DEFAULT_QUERY_TIMEOUT_S, LOCALHOST, OscUdpClient

__all__ = ["DawTrack", "Delivery", "MatchResult", "PullReport", "PushPlan", "PushReport", "StripLayout",
           "Verification", "match_tracks", "plan_push", "pull", "push", "push_blind", "send_plan", "verify_push",
           "DEFAULT_PULL_SAMPLE_RATE", "DEFAULT_PUSH_RATE", "VERIFY_REL"]

MATCH_MODES = ("name", "order")


@dataclass
class MatchResult:
    """Session tracks paired with DAW tracks, and the names left over on each side."""

    pairs: list[tuple[Track, DawTrack]]
    unmatched_session: list[str]
    unmatched_daw: list[str]


def match_tracks(tracks: Sequence[Track], daw_tracks: Sequence[DawTrack] | None, mode: str) -> MatchResult:
    """Pair session tracks with DAW tracks by ``name`` or ``order``.

    By name: exact names pair first, over all tracks; then a session track left over pairs with a DAW
    track whose name differs only in case, but only when that pairing is unique both ways (``kick``
    with DAW tracks ``KICK`` and ``Kick`` is an error naming both, never a silent pick).
    ``daw_tracks=None`` means the DAW was not asked (dry run): tracks pair in session order.

    Raises:
        TrackMatchError: unknown mode, an ambiguous case-insensitive name, or no pair at all.
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
        rest: list[Track] = []
        for t in tracks:
            hit = next((d for d in free if d.name == t.name), None)
            if hit is None:
                rest.append(t)
            else:
                free.remove(hit)
                pairs.append((t, hit))
        un_s = []
        for t in rest:
            key = t.name.casefold()
            hits = [d for d in free if d.name.casefold() == key]
            rivals = [r.name for r in rest if r.name.casefold() == key]
            if len(hits) > 1 or (hits and len(rivals) > 1):
                raise TrackMatchError(
                    f"session track{'s' if len(rivals) > 1 else ''} {', '.join(repr(r) for r in rivals)} "
                    f"match{'' if len(rivals) > 1 else 'es'} DAW tracks {', '.join(repr(d.name) for d in hits)} "
                    "only up to case, which is ambiguous; rename the tracks so each name matches exactly")
            if hits:
                free.remove(hits[0])
                pairs.append((t, hits[0]))
            else:
                un_s.append(t.name)
        order = {id(t): i for i, t in enumerate(tracks)}
        pairs.sort(key=lambda p: order[id(p[0])])
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
    #: The master bus: the solved gain's messages, and every master-bus value not sent (see :func:`master_messages`).
    master: StripMessages = field(default_factory=StripMessages)
    #: What the DAW's master got, in words for the summary ("" : nothing).
    master_sent: str = ""
    #: Why the DAW's master got nothing, in words for the summary ("" : it got the solved gain).
    master_unsent_why: str = ""
    #: The reverb bus that takes ``master.reverb.return_db`` on its fader: (0-based DAW position, name), where the
    #: DAW reports which strip every track's first aux send feeds (Ardour); None: the return is listed as not sent.
    reverb_bus: tuple[int, str] | None = None

    @property
    def messages(self) -> list[OscMessage]:
        """Every message in sending order: setup, each strip's, then the master's."""
        return self.setup + [m for _, _, s in self.strips for m in s.messages] + self.master.messages

    @property
    def unmapped(self) -> list[str]:
        """Values not sent, each with its reason (no mapping, plugin or parameter absent): the tracks', then
        the master bus's (``master.<processor>.<param> = ...``, every one the DAW does not get)."""
        return [u for _, _, s in self.strips for u in s.unmapped] + self.master.unmapped

    @property
    def clamped(self) -> list[str]:
        """Values moved to the DAW's range (``--clamp``), each ``old -> new``."""
        return [c for _, _, s in self.strips for c in s.clamped] + self.master.clamped

    @property
    def notices(self) -> list[str]:
        """What was sent but may not do what the session says (a bypassed plugin, an automated parameter)."""
        return [n for _, _, s in self.strips for n in s.notices] + self.master.notices


@dataclass
class Verification:
    """The push's verification pass: the DAW's state read back after the push, compared with the session.

    ``largest`` maps each schema path compared to ``(largest |read - pushed|, track)`` in the parameter's
    own unit (dB, Hz, ms, ...; a boolean's error is 0 or 1); ``off`` lists the values whose error exceeds
    :data:`VERIFY_REL` of their magnitude (at least 1), ``not_read`` what the DAW did not report.
    ``skipped`` says why no pass ran ("" : it ran).
    """

    largest: dict[str, tuple[float, str]] = field(default_factory=dict)
    compared: int = 0
    off: list[str] = field(default_factory=list)
    not_read: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    skipped: str = ""
    #: Automated values not compared: the DAW plays their lanes (:attr:`DawProfile.lanes_override_static`).
    automated: int = 0

    def summary(self) -> str:
        """One line: how many values were compared, how many are off, and the largest error per parameter."""
        if self.skipped:
            return f"verify: skipped ({self.skipped})"
        worst = ", ".join(f"{path} {err:.3g}{_unit(path)} ({name})" for path, (err, name) in self.largest.items())
        state = f"{len(self.off)} off" if self.off else "all within tolerance"
        auto = (f"; {self.automated} automated values not compared (the DAW plays their lanes; pull "
                "--ardour-session compares the curves)") if self.automated else ""
        return (f"verify: read back {self.compared} values in {self.elapsed_s * 1000:.0f} ms, {state}{auto}; largest "
                f"error per parameter: {worst or 'none compared'}")


@dataclass
class PushReport:
    """What a push sent: the plan, messages sent, wall time (s) and the feedback counters; how they reached
    the DAW (:class:`~mixbridge.bridge.profiles.Delivery`) and what the verification pass read back."""

    plan: PushPlan
    sent: int
    elapsed_s: float
    feedback: RouterStats
    delivery: Delivery | None = None
    verification: Verification | None = None
    #: What ``push(create=True)`` created first (None: no ``create``).
    creation: TrackCreation | None = None

    @property
    def messages_per_s(self) -> float:
        """Messages sent per second of the push (``inf`` for an instant one)."""
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else float("inf")

    def summary_lines(self) -> list[str]:
        """The create line and what cannot be created (with ``create``), the delivery line, each message still
        missing, the verification line and each value off."""
        out = []
        if self.creation is not None:
            out.append(self.creation.summary())
            if self.creation.cannot:
                out.append(f"not created: {self.creation.cannot}")
        if self.delivery is not None:
            out.append(self.delivery.summary())
            out += [f"missing: {m}" for m in self.delivery.missing]
        if self.verification is not None:
            out.append(self.verification.summary())
            out += [f"off: {o}" for o in self.verification.off]
        return out


def _strip_messages(profile: DawProfile, position: int, track: Track, layout: StripLayout | None,
                    clamp: bool, sample_rate: int = 48000) -> StripMessages:
    out = StripMessages()
    where = f"track '{track.name}' "
    dm = profile.plugin_map
    carried = set(dm.paths)
    for path in (p for p, _ in CHANNEL_STRIP.flat_params() if p in track.automation):
        proc, name = path.split(".")
        lanes = ("; Ardour's own lanes take it with `mixbridge push --create --ardour-session FILE.ardour` (the "
                 "session closed in Ardour)") if profile.name == "ardour" else ""
        out.notices.append(f"{track.name}: {path} is automated ({len(track.automation[path].times_s)} points); push "
                           f"sends its static value {track.params[proc][name]:g}; play the curve with "
                           f"`mixbridge automate` or write it with `mixbridge midi-export`{lanes}")
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
                       profile.path_not_carried.get(path, f"no {profile.name} mapping"))
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
        if layout is not None and plug.slot in layout.bypassed and wire:
            out.notices.append(f"{track.name}: plugin '{plug.name}' is bypassed on the DAW strip; its parameters "
                               f"are written but not heard until it is enabled")
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


#: Why each master-bus processor stays behind: no DAW profile drives a plugin on the DAW's master or reverb bus.
_MASTER_WHY = {
    "eq": "mixbridge drives no plugin on the DAW's master bus; set its EQ there by hand",
    "compressor": "mixbridge drives no plugin on the DAW's master bus; set its glue compressor there by hand",
    "reverb": "mixbridge drives no reverb plugin on the DAW's reverb bus; set it there by hand",
    "limiter": "mixbridge drives no plugin on the DAW's master bus; put a true-peak limiter there by hand",
    "loudness": "the DAW does not solve a master gain; the solved gain for this target is master.solved_gain_db",
}


def master_messages(profile: DawProfile, master: Master, *, clamp: bool = False,
                    reverb_bus: tuple[int, str] | None = None) -> tuple[StripMessages, str, str]:
    """The master bus for one DAW: the solved gain's messages where the profile carries it, and one
    ``not sent`` line per master-bus parameter, every one of them whatever its value (the DAW's master bus
    is the user's own, so even a default, such as the limiter's -1 dBTP ceiling, is not reproduced there).

    ``reverb_bus`` (DAW position, name): the bus whose fader takes ``master.reverb.return_db``
    (:func:`reverb_bus`); its message comes first and the return is not listed as not sent.

    Returns ``(messages, what the master got in words or "", why it got nothing or "")``. A solved gain
    outside :attr:`~mixbridge.bridge.profiles.DawProfile.master_gain_range_db` is listed as not sent (never
    an error: such sessions pushed before the master did), or clamped and listed with ``clamp``; a session
    without a solved gain sends nothing to the master and the summary says why.
    """
    out = StripMessages()
    if reverb_bus is not None:
        pos, bus_name = reverb_bus
        out.messages.extend(profile.strip_messages(pos, FADER_PATH, float(master.params["reverb"]["return_db"]),
                                                   where=f"master.reverb.return_db (bus '{bus_name}'): ",
                                                   clamp=clamp, clamped=out.clamped))
        if "reverb.return_db" in master.automation:
            n = len(master.automation["reverb.return_db"].times_s)
            out.notices.append(f"master.reverb.return_db is automated ({n} points); push sends its static value to "
                               f"bus '{bus_name}' (no master-bus lane is written)")
    for path, param in MASTER_BUS.flat_params():
        if reverb_bus is not None and path == "reverb.return_db":
            continue
        proc, name = path.split(".")
        value = master.params[proc][name]
        auto = f", automated ({len(master.automation[path].times_s)} points)" if path in master.automation else ""
        unit = f" {param.unit}" if param.unit else ""
        out.unmapped.append(f"master.{path} = {value:g}{unit}{auto} ({_MASTER_WHY[proc]})")
    gain = master.solved_gain_db
    where = "master.solved_gain_db"
    if gain is None:
        return out, "", (f"the session stores no solved master gain ({where}; `mixbridge render` or `automix` "
                         f"solves it), so {profile.name}'s master fader is left as it is")
    if not profile.master_gain_carrier:
        out.unmapped.append(f"{where} = {gain:g} dB ({profile.master_gain_not_carried})")
        return out, "", f"{profile.name} has no master fader address mixbridge can use"
    lo, hi = profile.master_gain_range_db
    if not lo - 1e-9 <= gain <= hi + 1e-9:
        if not clamp:
            out.unmapped.append(f"{where} = {gain:g} dB (outside what {profile.master_gain_carrier} takes, "
                                f"[{lo:g}, {hi:g}] dB; pass --clamp to send the nearest limit)")
            return out, "", f"the solved gain {gain:+.2f} dB is outside {profile.name}'s master fader range"
        v = min(max(gain, lo), hi)
        out.clamped.append(f"{where}: {gain:g} -> {v:g}")
        gain = v
    out.messages.extend(profile.master_gain_messages(gain))
    return out, f"{profile.master_gain_carrier} = {gain:+.2f} dB (the solved master gain)", ""


def reverb_bus(daw_tracks: Sequence[DawTrack] | None, result: MatchResult,
               layouts: dict[int, StripLayout] | None) -> tuple[int, str] | None:
    """The DAW strip every matched track's first aux send feeds, when it is one strip that no session track
    matched: ``(0-based position, name)``; None where the DAW reports no send targets."""
    if not daw_tracks or not layouts:
        return None
    targets = {layouts[d.position].send_target for _, d in result.pairs if d.position in layouts}
    matched = {d.position for _, d in result.pairs}
    if len(targets) != 1 or None in targets:
        return None
    (pos,) = targets
    name = next((d.name for d in daw_tracks if d.position == pos), None)
    return (pos, name) if pos is not None and name is not None and pos not in matched else None


def _drives(plug, pname: str, source: str) -> bool:
    return any(b.param == pname and (b.source == source or source in b.with_) for b in plug.driven)


def plan_push(session: Session, daw: str | DawProfile, *, daw_tracks: Sequence[DawTrack] | None = None,
              match: str = "name", clamp: bool = False,
              layouts: dict[int, StripLayout] | None = None) -> PushPlan:
    """Build every message of a push without touching the network: the matched strips, then the master
    (:func:`master_messages`: the solved gain where the DAW carries it; every master-bus value not sent).

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
    bus = reverb_bus(daw_tracks, result, layouts)
    master, master_sent, master_unsent_why = master_messages(profile, session.master, clamp=clamp, reverb_bus=bus)
    return PushPlan(profile.name, setup, strips, result, profile.unmapped_paths(), master, master_sent,
                    master_unsent_why, bus)


def push(session: Session, daw: str, *, host: str = LOCALHOST, port: int | None = None, match: str = "name",
         clamp: bool = False, timeout_s: float = DEFAULT_QUERY_TIMEOUT_S, reply_port: int | None = None,
         max_tracks: int = 64, max_msgs_per_s: float = DEFAULT_PUSH_RATE, verify: bool = True,
         create: bool = False) -> PushReport:
    """Push a session's channel strips, and its solved master gain where the DAW carries it, into a running DAW,
    then (``verify``) read the DAW's state back and report the largest error per parameter (:func:`verify_push`).

    Delivery is the profile's (:meth:`~mixbridge.bridge.profiles.DawProfile.deliver`): Ableton's is paced
    to AbletonOSC's tick and reads every value back, resending what did not land; the counts are in
    :attr:`PushReport.delivery`. ``elapsed_s`` covers the push up to the end of delivery; the verification
    pass's own time is :attr:`Verification.elapsed_s`.

    A DAW that stops answering during the verification pass leaves :attr:`Verification.skipped` saying so
    (what was sent stays sent).

    ``create`` (Ableton, ``match="name"``): the session tracks the DAW lacks are first created and named
    over OSC (:meth:`~mixbridge.bridge.profiles.DawProfile.create_tracks`; :attr:`PushReport.creation`
    says what was created and what the DAW's OSC cannot create). Ardour builds through its Lua instead
    (:func:`~mixbridge.bridge.ardour_create.create_in_ardour`).

    Raises:
        DawUnreachableError: the DAW did not answer within ``timeout_s``.
        TrackMatchError, DawRangeError: see :func:`plan_push`.
        BridgeConfigError: ``create`` for a DAW whose OSC cannot create tracks, or with ``match="order"``.
        DirectSessionError: a direct mixer's session (no parameters to push).
    """
    refuse_direct(session, "push")
    profile = get_profile(daw)
    if create and (profile.create_unsupported is not None or match != "name"):
        raise BridgeConfigError(f"push --create --daw {daw}: " + (profile.create_unsupported or
                                "tracks are created by name; drop --match order"))
    with profile.open_client(host, port, timeout_s, reply_port) as client:
        feedback = FeedbackState()
        client.router.add("/**", feedback)  # feedback is expected: kept (the verification pass reads it)
        t0 = time.perf_counter()
        daw_tracks = profile.query_tracks(client, max_tracks=max(max_tracks, len(session.tracks)))
        creation = None
        if create:
            missing = _missing_tracks(session, daw_tracks)
            creation = (profile.create_tracks(client, missing, len(daw_tracks)) if missing else
                        TrackCreation(cannot=profile.create_unsupported or ""))
            if missing:
                daw_tracks = profile.query_tracks(client, max_tracks=max(max_tracks, len(session.tracks)))
        result = match_tracks(session.tracks, daw_tracks, match)
        layouts = profile.strip_layouts(client, [d for _, d in result.pairs])
        plan = plan_push(session, profile, daw_tracks=daw_tracks, match=match, clamp=clamp, layouts=layouts)
        delivery = profile.deliver(client, plan, max_msgs_per_s=max_msgs_per_s)
        client.pump(0.02)  # drain immediate feedback so unparseable replies are counted
        elapsed = time.perf_counter() - t0
        verification = Verification(skipped="--no-verify")
        if verify:
            try:
                verification = verify_push(client, profile, session, plan, feedback, n_tracks=len(daw_tracks))
            except DawUnreachableError as e:  # everything was sent; say that it could not be read back
                verification = Verification(skipped=f"the DAW stopped answering while it was read back: {e}")
        return PushReport(plan, delivery.sent, elapsed, client.router.stats, delivery, verification, creation)


def _missing_tracks(session: Session, daw_tracks: Sequence[DawTrack]) -> list[str]:
    """The session tracks :func:`match_tracks` would leave without a DAW track (by name), in session order."""
    try:
        return list(match_tracks(session.tracks, daw_tracks, "name").unmatched_session)
    except TrackMatchError:
        daw_names = {d.name.casefold() for d in daw_tracks}
        if any(t.name.casefold() in daw_names for t in session.tracks):
            raise  # an ambiguous name: another track of that name would not resolve it
        return [t.name for t in session.tracks]  # no track of the session's is in the DAW yet


#: The verification pass calls a value "off" when it reads back further than this from the session's, relative
#: to the value's magnitude (at least 1): 1e-4 is 1e-4 dB at 0 dB, 0.1 Hz at 1 kHz. OSC carries float32
#: (6e-8 relative) and the DAW laws between the wire and the schema amplify it at most ~25x (Ardour's send
#: law at +6 dB; READBACK_EDGE_REL), so a value that landed is 60x inside; one that did not is far outside.
VERIFY_REL = 1e-4


def _unit(path: str) -> str:
    unit = (MASTER_BUS.param(path[len("master."):]) if path.startswith("master.") else CHANNEL_STRIP.param(path)).unit
    return f" {unit}" if unit else ""


def _not_sent_paths(strip: StripMessages, name: str) -> set[str]:
    """The schema paths a strip's "not sent" lines name (``"<track>: <path> = <value> (<why>)"``)."""
    prefix = f"{name}: "
    return {u[len(prefix):].split(" = ", 1)[0] for u in strip.unmapped if u.startswith(prefix)}


def _named_paths(lines: Sequence[str], name: str) -> set[str]:
    """The schema paths that ``"<track>: <path> (<why>)"`` lines (a pull's ``not_read``) name for ``name``."""
    prefix = f"{name}: "
    return {u[len(prefix):].split(" ", 1)[0] for u in lines if u.startswith(prefix)}


def verify_push(client: OscUdpClient, profile: DawProfile, session: Session, plan: PushPlan,
                feedback: FeedbackState, *, n_tracks: int = 64) -> Verification:
    """Read the DAW's state back after a push (the profile's own pull: Ardour's strip feedback and plugin
    descriptors, REAPER's refresh, Ableton's pipelined getters) and compare every value the push sent with
    the session: the largest error per schema path, in the parameter's unit, and each value off by more than
    :data:`VERIFY_REL` of its magnitude. Values listed as not sent, or as not read back (a plugin missing
    on a created track), are not compared, nor automated ones where
    the DAW plays its lanes over them (:attr:`~mixbridge.bridge.profiles.DawProfile.lanes_override_static`);
    out-of-range read-backs are clamped into the schema range for the comparison (the error then shows how
    far off they were).

    Raises:
        DawUnreachableError: the DAW stopped answering.
    """
    t0 = time.perf_counter()
    pulled = profile.pull_tracks(client, feedback, max_tracks=n_tracks, clamp=True, sample_rate=session.sample_rate)
    free: dict[str, list[Track]] = {}
    for t in pulled.tracks:
        free.setdefault(t.name, []).append(t)
    mapped = set(profile.mapped_paths())
    out = Verification(not_read=list(pulled.not_read))
    pairs = {id(t): d for t, d in plan.match.pairs}
    by_name = {name: strip for name, _, strip in plan.strips}
    for track in session.tracks:
        d = pairs.get(id(track))
        if d is None:
            continue
        got = free.get(d.name, [])
        if not got:
            out.not_read.append(f"{track.name}: the DAW reported no track '{d.name}' on reading back")
            continue
        back = got.pop(0)
        skip = _not_sent_paths(by_name[track.name], track.name) | _named_paths(pulled.not_read, d.name)
        for path, _param in CHANNEL_STRIP.flat_params():
            if path not in mapped or path in skip:
                continue
            if profile.lanes_override_static and path in track.automation:
                out.automated += 1
                continue
            proc, name = path.split(".")
            want, have = float(track.params[proc][name]), float(back.params[proc][name])
            err = abs(have - want)
            out.compared += 1
            if path not in out.largest or err > out.largest[path][0]:
                out.largest[path] = (err, track.name)
            if err > VERIFY_REL * max(1.0, abs(want)):
                out.off.append(f"{track.name}: {path} reads back {have:g}{_unit(path)}, pushed {want:g}")
    if plan.reverb_bus is not None:  # the reverb return on the bus fader
        key = "master.reverb.return_db"
        want = float(session.master.params["reverb"]["return_db"])
        if "reverb.return_db" not in pulled.master_params:
            out.not_read.append(f"{key}: the DAW reported no fader for bus '{plan.reverb_bus[1]}'")
        else:
            have = pulled.master_params["reverb.return_db"]
            out.compared += 1
            out.largest[key] = (abs(have - want), plan.reverb_bus[1])
            if abs(have - want) > VERIFY_REL * max(1.0, abs(want)):
                out.off.append(f"bus '{plan.reverb_bus[1]}': {key} reads back {have:g} dB, pushed {want:g}")
    out.elapsed_s = time.perf_counter() - t0
    return out


def send_plan(client: OscUdpClient, plan: PushPlan, profile: DawProfile, *,
              max_msgs_per_s: float = DEFAULT_PUSH_RATE) -> int:
    """Send a plan the profile's way (:meth:`~mixbridge.bridge.profiles.DawProfile.deliver`); returns the
    number of messages sent once (resends, where the profile reads back, are in its Delivery)."""
    return profile.deliver(client, plan, max_msgs_per_s=max_msgs_per_s).sent


def push_blind(session: Session, daw: str, *, host: str = LOCALHOST, port: int | None = None,
               clamp: bool = False, max_msgs_per_s: float = DEFAULT_PUSH_RATE) -> PushReport:
    """Send a push plan without querying the DAW (session order, default plugin slots).

    For DAWs whose feedback is not configured; nothing is received.

    Raises:
        DirectSessionError: a direct mixer's session (no parameters to push).
    """
    refuse_direct(session, "push")
    profile = get_profile(daw)
    plan = plan_push(session, profile, daw_tracks=None, match="order", clamp=clamp)
    with OscUdpClient(host, profile.default_port if port is None else port) as client:
        t0 = time.perf_counter()
        delivery = DawProfile.deliver(profile, client, plan, max_msgs_per_s=max_msgs_per_s)  # nothing read back
        return PushReport(plan, delivery.sent, time.perf_counter() - t0, client.router.stats, delivery,
                          Verification(skipped="--no-query: nothing is read from the DAW"))


# ------------------------------------------------------------------------------ pull
@dataclass
class PullReport:
    """What a pull read: the new session, values not read (with why), values clamped, feedback counters,
    faders found at -inf (stored as -48 dB with mute on), DAW slots ignored, and where the session's
    sample rate came from (``"<daw>"``: the DAW reported it; ``"--sample-rate"``; ``"default"``)."""

    session: Session
    not_read: list[str]
    clamped: list[str]
    feedback: RouterStats
    silenced: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    sample_rate_from: str = "default"


#: The sample rate a pull gives the session when the DAW reports none (REAPER, Ableton) and no
#: ``sample_rate`` is passed: 48 kHz, the schema's and the renderer's default.
DEFAULT_PULL_SAMPLE_RATE = 48000


def _new_session(daw: str, host: str, port: int, tracks: list[Track], sample_rate: int) -> Session:
    return Session(sample_rate, tracks, Master(MASTER_BUS.defaults()),
                   {"pulled_from": daw, "host": host, "port": port,
                    "pulled_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


def pull(daw: str, *, host: str = LOCALHOST, port: int | None = None, clamp: bool = False,
         timeout_s: float = DEFAULT_QUERY_TIMEOUT_S, reply_port: int | None = None,
         max_tracks: int = 64, sample_rate: int | None = None,
         ardour_session: str | Path | None = None) -> PullReport:
    """Read a DAW's faders, pans, mutes, polarity (where reported), sends and mapped plugin parameters
    into a new session.

    Tracks get ``source = "daw:<daw>/<name>"`` (no audio is pulled). Values the DAW
    did not report are left at schema defaults and listed in ``not_read``. A fader at -inf
    becomes -48 dB with mute on (listed in ``silenced``; see :func:`~mixbridge.bridge.profiles.store_fader`);
    a value within float32 of a schema limit is that limit. The session's sample rate (Hz) is the
    DAW's where it reports one (Ardour), else ``sample_rate``, else :data:`DEFAULT_PULL_SAMPLE_RATE`.
    Ardour's reverb bus (the bus every track's first aux send feeds) is no track: its fader is read as
    ``master.reverb.return_db`` (listed in ``ignored``).

    ``ardour_session`` (Ardour only): the saved ``.ardour`` file of the session; the pull then also reads
    the automation lanes, the master fader (the solved master gain) and the reverb bus's fader
    (``master.reverb.return_db``) from the file, after asking a running Ardour to save it
    (:func:`~mixbridge.bridge.ardour_create.pull_ardour_session`).

    Raises:
        DawUnreachableError: no answer within ``timeout_s``.
        DawRangeError: a DAW value outside the schema range (unless ``clamp``).
        BridgeConfigError: ``sample_rate`` is not a positive integer, or differs from the rate the DAW
            reports; ``ardour_session`` for another DAW than Ardour.
    """
    if ardour_session is not None:
        if daw != "ardour":
            raise BridgeConfigError(f"--ardour-session is for --daw ardour, not {daw}; drop it")
        from .ardour_create import pull_ardour_session

        return pull_ardour_session(ardour_session, host=host, port=port, clamp=clamp, timeout_s=timeout_s,
                                   sample_rate=sample_rate)
    if sample_rate is not None and (isinstance(sample_rate, bool) or not isinstance(sample_rate, int)
                                    or sample_rate <= 0):
        raise BridgeConfigError(f"--sample-rate {sample_rate!r} must be a positive integer in Hz, e.g. 48000")
    profile = get_profile(daw)
    port = profile.default_port if port is None else port
    with profile.open_client(host, port, timeout_s, reply_port) as client:
        feedback = FeedbackState()
        client.router.add("/**", feedback)
        pulled = profile.pull_tracks(client, feedback, max_tracks=max_tracks, clamp=clamp,
                                     sample_rate=sample_rate or DEFAULT_PULL_SAMPLE_RATE)
        if pulled.sample_rate is not None:
            if sample_rate is not None and sample_rate != pulled.sample_rate:
                raise BridgeConfigError(
                    f"--sample-rate {sample_rate} differs from the {pulled.sample_rate} Hz {daw} reports for its "
                    "session; drop --sample-rate (the DAW's rate is used) or change the DAW session's rate")
            rate, source = pulled.sample_rate, daw
        elif sample_rate is not None:
            rate, source = sample_rate, "--sample-rate"
        else:
            rate, source = DEFAULT_PULL_SAMPLE_RATE, "default"
        s = _new_session(daw, host, port, pulled.tracks, rate)
        for mpath, mv in pulled.master_params.items():
            proc, name = mpath.split(".")
            s.master.params[proc][name] = mv
        s.validate()
        return PullReport(s, pulled.not_read, pulled.clamped, client.router.stats, pulled.silenced,
                          pulled.ignored, source)
