"""Layer 4 of the bridge: the DAW profile contract, its registry, and what every profile shares.

A profile is everything mixbridge knows about one DAW's OSC surface, in one file
(``bridge/profile_<daw>.py``): it turns one session track's channel strip into the OSC
messages the DAW understands (addresses, argument types, value scales, track numbering),
asks the DAW for its tracks and for where the mapped plugins sit on each strip
(:meth:`DawProfile.query_tracks`, :meth:`DawProfile.strip_layouts`), sends a push plan its
DAW's way (:meth:`DawProfile.deliver`: paced or bundled; Ableton's reads every value back and
resends what did not land) and reads the DAW's mixer state back into schema values
(:meth:`DawProfile.pull_tracks`, also the push's verification pass). Profiles build
messages and parse replies; sockets live in :mod:`mixbridge.bridge.transport` and the
orchestration (match, plan, send) in :mod:`mixbridge.bridge.push`, which never asks which
DAW it talks to. Adding a DAW means one ``profile_<daw>.py`` with a :class:`DawProfile`
subclass, its plugin map ``plugins/maps/daw/<daw>.json`` and one line in :data:`PROFILES`.

The shipped profiles and their sources: :mod:`~mixbridge.bridge.profile_reaper` (REAPER's
``Default.ReaperOSC``), :mod:`~mixbridge.bridge.profile_ableton` (the AbletonOSC README),
:mod:`~mixbridge.bridge.profile_ardour` (Ardour 7's OSC manual and ``libs/surfaces/osc``).

This module imports only the standard library and the bridge's OSC layers, so the CLI can
list :func:`profile_names` for ``--daw`` without loading a profile or its plugin map.
"""
from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mixbridge.errors import UnknownNameError
from mixbridge.schema import CHANNEL_STRIP

from .errors import DawRangeError, DawUnreachableError
from .osc import OscMessage
from .pacing import Pacer
from .transport import OscUdpClient

if TYPE_CHECKING:
    from mixbridge.session import Track

    from .plugin_maps import DawMap, DawPlugin
    from .push import PushPlan

#: The schema path of the post-fader send to the shared reverb bus.
SEND_PATH = "send.send_db"
#: The schema path of the fader (see :func:`store_fader` for a DAW fader at -inf).
FADER_PATH = "fader.fader_db"
#: A value read back from a DAW within ``READBACK_EDGE_REL * max(1, |limit|)`` outside a schema limit is
#: that limit, not a value out of range. OSC carries float32 (relative error 2**-24 = 6e-8) and a DAW law
#: between the wire and the schema can amplify it: Ardour's aux-send position law by 25x at +6 dB (1.5e-6
#: dB; a pushed +6 dB send reads back as 6.000000267). 1e-5 covers that with margin and is still 1000x
#: below the smallest step any parameter is set in (0.01 dB).
READBACK_EDGE_REL = 1e-5
#: Pace of single-message pushes (:meth:`DawProfile.deliver`): 20000 msg/s sends a 64-track strip set (~1300
#: messages) in ~65 ms without bursting past a receiver's default 208 KiB socket buffer, where the receiver
#: reads its socket continuously (REAPER; Ardour gets bundles; Ableton, which does not, paces itself).
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
    #: Map slots whose plugin the DAW reports as bypassed (inactive), where it reports that (Ardour).
    bypassed: set[int] = field(default_factory=set)
    #: The 0-based DAW position of the strip the first aux send feeds, where the DAW reports it (Ardour).
    send_target: int | None = None


@dataclass
class StripMessages:
    """What a profile makes of one track: messages, paths it cannot map, clamped values."""

    messages: list[OscMessage] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    clamped: list[str] = field(default_factory=list)
    #: Sent, but worth a word: a bypassed plugin written to, an automated parameter sent at its static value.
    notices: list[str] = field(default_factory=list)


@dataclass
class Delivery:
    """How a push's messages reached the DAW: sent once, sent again after a read-back said they had not
    landed, and those still missing after the last resend (each the message and what the DAW read back).

    ``checked`` counts the values read back (0: this DAW's delivery reads nothing back; see
    :meth:`DawProfile.deliver`); ``rounds`` the sends of the slowest value (1: nothing resent).
    """

    sent: int
    resent: int = 0
    checked: int = 0
    rounds: int = 1
    missing: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line: sent, resent, checked and missing counts."""
        if not self.checked:
            return f"delivery: {self.sent} messages sent (this DAW's delivery reads nothing back)"
        text = (f"delivery: {self.sent} messages sent, {self.checked} values read back, {self.resent} resent, "
                f"{len(self.missing)} still missing")
        return text + (f" after {self.rounds} sends" if self.missing or self.resent else "")


@dataclass
class TrackCreation:
    """What ``push --create`` built over OSC before the push: the tracks created (by name, in Live's order),
    the create and name messages sent (resends included), the rounds of read-back it took, and one line on
    what the DAW's OSC cannot create (the user does that by hand)."""

    created: list[str] = field(default_factory=list)
    sent: int = 0
    rounds: int = 0
    cannot: str = ""

    def summary(self) -> str:
        """One line: the tracks created and how (or that none were missing)."""
        if not self.created:
            return "create: every session track is already in the DAW; nothing created"
        return (f"create: {len(self.created)} tracks created and named ({', '.join(self.created)}); "
                f"{self.sent} messages, read back in {self.rounds} rounds")


@dataclass
class PulledTracks:
    """What a profile read from a DAW: session tracks, values it could not read, values it clamped,
    faders it found at -inf (stored as the schema's minimum with mute on), DAW slots it ignored
    (REAPER's empty bank slots; Ardour's reverb bus, read as ``master_params``), and the sample rate the DAW
    reported (None: it reports none)."""

    tracks: list[Track] = field(default_factory=list)
    not_read: list[str] = field(default_factory=list)
    clamped: list[str] = field(default_factory=list)
    silenced: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    sample_rate: int | None = None
    #: Master-bus values read from the DAW, by ``master_bus`` path (Ardour: ``reverb.return_db``, the fader of
    #: the bus every track's first aux send feeds).
    master_params: dict[str, float] = field(default_factory=dict)
    _silent: set[int] = field(default_factory=set, repr=False)

    def add(self, track: Track) -> None:
        """Append a finished track; a fader read at -inf (:func:`store_fader`) turns its mute on,
        whatever the DAW's mute button said."""
        if id(track.params) in self._silent:
            track.params["fader"]["mute"] = 1.0
        self.tracks.append(track)


class FeedbackState:
    """A router handler that keeps every feedback message: address -> list of argument tuples."""

    def __init__(self) -> None:
        self.by_address: dict[str, list[tuple]] = {}

    def __call__(self, msg: OscMessage) -> None:
        """Keep ``msg``'s arguments under its address."""
        self.by_address.setdefault(msg.address, []).append(msg.args)

    def last(self, address: str, key: tuple) -> tuple | None:
        """The last arguments received on ``address`` that start with ``key`` (None: none did)."""
        hit = None
        for args in self.by_address.get(address, []):
            if tuple(args[:len(key)]) == key:
                hit = args
        return hit


def fits(value: float, lo: float, hi: float, what: str, where: str, clamp: bool, clamped: list[str],
         fix: str) -> float:
    """Return ``value`` if inside [lo, hi]; clamp and record it if ``clamp``; else raise.

    Raises:
        DawRangeError: outside the DAW's range and not ``clamp``; names the value, range and ``fix``.
    """
    if lo - 1e-9 <= value <= hi + 1e-9:
        return value
    if not clamp:
        raise DawRangeError(f"{where}{what} = {value:g} is outside the DAW's [{lo:g}, {hi:g}]; {fix}")
    v = min(max(value, lo), hi)
    clamped.append(f"{where}{what}: {value:g} -> {v:g}")
    return v


def store_value(track_params: dict, path: str, value: float, where: str, clamp: bool, clamped: list[str]) -> None:
    """Store a value read from a DAW into a session track's ``params`` (booleans rounded).

    Raises:
        DawRangeError: outside the schema range and not ``clamp`` (then the nearest limit is stored
            and listed in ``clamped``).
    """
    param = CHANNEL_STRIP.param(path)
    proc, name = path.split(".")
    v = float(value)
    if param.kind == "bool":
        v = 1.0 if v >= 0.5 else 0.0
    for limit in (param.min, param.max):  # float32 read-back of a value at a range limit
        if v != limit and abs(v - limit) <= READBACK_EDGE_REL * max(1.0, abs(limit)):
            v = limit
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


def store_fader(track_params: dict, value_db: float, off_db: float, where: str, clamp: bool,
                pulled: PulledTracks) -> None:
    """Store a DAW fader level (dB) as ``fader.fader_db``; a fader at -inf becomes the schema's minimum
    with mute on.

    The rule: a DAW fader at or below ``off_db`` (the level the DAW reports for gain 0: Ardour -200,
    REAPER -150, Live's volume 0) is silence, which the schema (fader -48..+12 dB) spells as fader -48 dB
    plus ``fader.mute = 1`` (applied by :meth:`PulledTracks.add`, over the DAW's mute button); it is listed
    in ``pulled.silenced``, with or without ``clamp``. A level between ``off_db`` and -48 dB is an ordinary
    out-of-range value (:func:`store_value`).

    Raises:
        DawRangeError: an audible level outside the schema range and not ``clamp``.
    """
    v = float(value_db)
    if v <= off_db or math.isnan(v):
        lo = CHANNEL_STRIP.param(FADER_PATH).min
        track_params["fader"]["fader_db"] = lo
        pulled._silent.add(id(track_params))
        pulled.silenced.append(f"{where}{FADER_PATH} reads {v:g} dB (-inf, silent) from the DAW: stored as "
                               f"{lo:g} dB with fader.mute = 1 (the schema's fader stops at {lo:g} dB)")
        return
    store_value(track_params, FADER_PATH, v, where, clamp, pulled.clamped)


def read_plugin(track: Track, plug: DawPlugin, wire: dict[str, float], name: str, where: str,
                pulled: PulledTracks, clamp: bool, sample_rate: int) -> None:
    """Store what one plugin's wire values say about its schema parameters (conversions inverted);
    what the plugin did not report goes to ``pulled.not_read``."""
    got, missing = plug.read_back(wire, sample_rate)
    proc = plug.processor.name
    for src, v in got.items():
        store_value(track.params, f"{proc}.{src}", v, where, clamp, pulled.clamped)
    pulled.not_read.extend(f"{name}: {proc}.{m} ({plug.name} did not report it)" for m in missing)


class _HintingClient(OscUdpClient):
    """An OscUdpClient whose timeouts name what to check on the DAW's side, with the ports it used."""

    hint = ""
    ports_hint = ""

    def unreachable_error(self, what: str, timeout_s: float) -> DawUnreachableError:
        e = super().unreachable_error(what, timeout_s)
        ports = self.ports_hint.format(port=self.port, reply_port=self.local_port)
        hint = "; ".join(h for h in (self.hint, ports) if h)
        return DawUnreachableError(f"{e}. {hint}") if hint else e


class DawProfile:
    """Base class: one DAW's OSC address space over the channel-strip schema.

    Track positions passed to profiles are 0-based positions in the DAW's track
    order; each profile converts to its own numbering. A subclass sets the class
    attributes and implements the methods that raise :class:`NotImplementedError`.
    """

    name = ""
    default_port = 0
    #: Port the DAW sends feedback to (None: the sender's own port).
    reply_port: int | None = None
    #: True if the DAW's OSC server schedules bundles by time tag (liblo does; python-osc and REAPER do not).
    honours_timetags = False
    #: True if a push may pack each strip into one bundle. A burst of hundreds of small datagrams
    #: overflows a DAW's socket buffer (measured with Ardour: mutes went missing), so Ardour gets
    #: one bundle per strip; the others get individual messages, paced.
    accepts_bundles = False
    #: Schema paths this profile maps outside the plugin map.
    strip_paths: tuple[str, ...] = ()
    #: True if the profile maps ``send.send_db`` onto an aux send of the strip (see :meth:`send_message`).
    maps_send = False
    #: True if the DAW plays its own automation lanes over a control's value (Ardour: a control under a lane in
    #: Play reads the lane's value at the playhead, whatever OSC set): the verification pass then does not
    #: compare the static value of an automated parameter (``pull --ardour-session`` compares the curve).
    lanes_override_static = False
    #: The fader level (dB) at or below which the DAW's fader is at -inf (gain 0); see :func:`store_fader`.
    fader_off_db = -math.inf
    #: Why a channel-strip path outside :meth:`mapped_paths` is not sent, where there is more to say than
    #: "no mapping" (``{path: reason}``; the push's "not sent" lines quote it).
    path_not_carried: dict[str, str] = {}
    #: What to check on the DAW's side when it does not answer (no port numbers: see :attr:`ports_hint`).
    unreachable_hint = ""
    #: The ports of that check, formatted with the ones this command used (``{port}``: where it sent,
    #: ``{reply_port}``: where it listened for the answer).
    ports_hint = "the DAW must listen on port {port} (--port) and answer to port {reply_port} (--reply-port)"

    #: Where this DAW's master fader takes the session's solved master gain (``master.solved_gain_db``),
    #: in words for the push summary ("" : this profile cannot carry it; see :attr:`master_gain_not_carried`).
    master_gain_carrier = ""
    #: The solved master gain (dB) :meth:`master_gain_messages` can carry, (lo, hi).
    master_gain_range_db: tuple[float, float] = (-math.inf, math.inf)
    #: Why the solved master gain is not sent, where :attr:`master_gain_carrier` is "".
    master_gain_not_carried = "this DAW profile has no master fader mapping; set the DAW's master fader by hand"

    # ------------------------------------------------------------------ messages
    def master_gain_messages(self, gain_db: float) -> list[OscMessage]:
        """Messages setting the DAW's master to the session's solved master gain ``gain_db`` (dB, inside
        :attr:`master_gain_range_db`; the caller checks the range). Only where :attr:`master_gain_carrier`.

        Raises:
            NotImplementedError: the profile carries no master gain.
        """
        raise NotImplementedError

    def setup_messages(self, n_tracks: int) -> list[OscMessage]:
        """Messages a push or automation sends first (bank size, surface handshake); none by default."""
        return []

    def strip_messages(self, position: int, path: str, value: float, *, where: str = "",
                       clamp: bool = False, clamped: list[str] | None = None) -> list[OscMessage]:
        """Messages setting strip parameter ``path`` (one of :attr:`strip_paths`) to ``value`` (schema units).

        Raises:
            DawRangeError: the value is outside what the DAW takes (unless ``clamp``).
            KeyError: ``path`` is not one of :attr:`strip_paths`.
        """
        raise NotImplementedError

    def plugin_message(self, position: int, slot: int, index: int, wire_value: float) -> OscMessage:
        """The message setting parameter ``index`` of the plugin in ``slot`` to ``wire_value``."""
        raise NotImplementedError

    def send_message(self, position: int, send_id: int, send_db: float) -> OscMessage:
        """The message setting aux send ``send_id`` (1-based) of a strip to ``send_db`` (schema dB)."""
        raise NotImplementedError

    @property
    def plugin_map(self) -> DawMap:
        """This DAW's plugin map (``plugins/maps/daw/<name>.json``, loaded once per process)."""
        from .plugin_maps import get_daw_map

        return get_daw_map(self.name)

    def param_messages(self, position: int, path: str, value: float, *, where: str = "",
                       clamp: bool = False, clamped: list[str] | None = None,
                       context: dict[str, float] | None = None, sample_rate: int = 48000) -> list[OscMessage]:
        """Messages setting schema parameter ``path`` on the track at ``position``.

        For a plugin parameter, every plugin parameter that depends on ``path`` is sent
        (a ZamEQ2 bandwidth depends on the band's Q and frequency); ``context`` holds the
        processor's other real-unit values (schema defaults where missing).
        Returns ``[]`` if this profile does not map ``path``.

        Raises:
            DawRangeError: the value is outside what the DAW takes (unless ``clamp``).
        """
        clamped = clamped if clamped is not None else []
        if path in self.strip_paths:
            return self.strip_messages(position, path, value, where=where, clamp=clamp, clamped=clamped)
        if path == SEND_PATH and self.maps_send:
            return [self.send_message(position, 1, value)]
        proc, name = path.split(".")
        out = []
        for plug in self.plugin_map.plugins:
            if plug.processor.name != proc or name not in plug.sources:
                continue
            values = {**plug.processor.defaults(), **(context or {}), name: float(value)}
            wire = plug.values(values, sample_rate, where)
            for b in plug.driven:
                if b.source == name or name in b.with_:
                    out.append(self.plugin_message(position, plug.slot, plug.params[b.param].index, wire[b.param]))
        return out

    def mapped_paths(self) -> tuple[str, ...]:
        """Every schema path this profile sends (strip paths, the send, the plugin map's paths)."""
        return self.strip_paths + ((SEND_PATH,) if self.maps_send else ()) + self.plugin_map.paths

    def unmapped_paths(self) -> list[str]:
        """Channel-strip paths this profile cannot send (reported by a push, never dropped silently)."""
        return [p for p, _ in CHANNEL_STRIP.flat_params() if p not in self.mapped_paths()]

    # ------------------------------------------------------------------ talking to the DAW
    def open_client(self, host: str, port: int | None, timeout_s: float, reply_port: int | None) -> OscUdpClient:
        """A UDP client for this DAW (default ports from the profile) whose timeouts say what to check.

        Raises:
            BridgeConfigError: a bad host or port, or the reply port cannot be bound.
        """
        local = reply_port if reply_port is not None else (self.reply_port or 0)
        client = _HintingClient(host, self.default_port if port is None else port, local_port=local,
                                timeout_s=timeout_s)
        client.hint = self.unreachable_hint
        client.ports_hint = self.ports_hint
        return client

    def deliver(self, client: OscUdpClient, plan: PushPlan, *,
                max_msgs_per_s: float = DEFAULT_PUSH_RATE) -> Delivery:
        """Send a push plan: setup messages, then one bundle per strip where the DAW takes bundles
        (:attr:`accepts_bundles`), else single messages paced to ``max_msgs_per_s``.

        The default reads nothing back (the push's verification pass does, for every DAW); a profile whose
        DAW can lose messages unseen (Ableton) reads each value back and resends what did not land.

        Raises:
            BridgeConfigError: ``max_msgs_per_s`` is not > 0.
        """
        n = client.send_many(plan.setup)
        groups = [strip.messages for _, _, strip in plan.strips] + [plan.master.messages]
        if self.accepts_bundles:
            for msgs in groups:
                if msgs:
                    client.send_bundle(msgs)
                    n += len(msgs)
            return Delivery(sent=n)
        pacer = Pacer(max_msgs_per_s)
        for msgs in groups:
            for m in msgs:
                pacer.wait()
                client.send(m)
                n += 1
        return Delivery(sent=n)

    #: Why ``push --create`` over this DAW's OSC is not possible, and what to do instead (a profile that
    #: implements :meth:`create_tracks` sets None).
    create_unsupported: str | None = "this DAW's OSC cannot create tracks; create them in the DAW, then push"

    def create_tracks(self, client: OscUdpClient, names: Sequence[str], n_tracks: int) -> TrackCreation:
        """Create one track per name after the DAW's ``n_tracks`` tracks, name it, and read the names back.

        Raises:
            BridgeConfigError: this DAW's OSC cannot create tracks (:attr:`create_unsupported`).
        """
        from .errors import BridgeConfigError

        raise BridgeConfigError(f"push --create --daw {self.name}: {self.create_unsupported}")

    def query_tracks(self, client: OscUdpClient, *, max_tracks: int = 64) -> list[DawTrack]:
        """Ask the DAW for its tracks, in the DAW's order.

        Raises:
            DawUnreachableError: no answer within the client's timeout.
        """
        raise NotImplementedError

    def strip_layouts(self, client: OscUdpClient, tracks: Sequence[DawTrack]) -> dict[int, StripLayout]:
        """Where the mapped plugins (and the send) sit on each of ``tracks``: ``{position: layout}``.

        The default (a DAW that cannot say) is ``{}``: plugins at the map's slots and indices.
        """
        return {}

    def pull_tracks(self, client: OscUdpClient, feedback: FeedbackState, *, max_tracks: int = 64,
                    clamp: bool = False, sample_rate: int = 48000) -> PulledTracks:
        """Read the DAW's faders, pans, mutes, sends and mapped plugin parameters into session tracks.

        ``feedback`` has been routed every message the client received so far and keeps
        receiving. Tracks get ``source = "daw:<name>/<track>"``; a profile appends each through
        :meth:`PulledTracks.add` and stores faders through :func:`store_fader`. ``sample_rate``
        (Hz) drives plugin conversions where the DAW reports no rate; a profile whose DAW reports
        one uses that and sets :attr:`PulledTracks.sample_rate`.

        Raises:
            DawUnreachableError: no answer within the client's timeout.
            DawRangeError: a DAW value outside the schema range (unless ``clamp``).
        """
        raise NotImplementedError

    def new_track(self, name: str) -> Track:
        """A session track named ``name`` at the schema defaults, sourced ``daw:<daw>/<name>`` (no audio)."""
        from mixbridge.session import Track

        return Track(name, f"daw:{self.name}/{name}", CHANNEL_STRIP.defaults())


#: The DAW profile registry: name -> ``"module:Class"`` of a :class:`DawProfile` subclass (bridge modules
#: are imported on first use) or a zero-argument factory (:func:`register_profile`).
PROFILES: dict[str, str | Callable[[], DawProfile]] = {
    "reaper": "mixbridge.bridge.profile_reaper:ReaperProfile",
    "ableton": "mixbridge.bridge.profile_ableton:AbletonProfile",
    "ardour": "mixbridge.bridge.profile_ardour:ArdourProfile",
}


def register_profile(name: str, factory: Callable[[], DawProfile]) -> None:
    """Add a DAW profile under ``name`` (a factory returning a fresh :class:`DawProfile`).

    Raises:
        BridgeConfigError: the name is taken.
    """
    from .errors import BridgeConfigError

    if name in PROFILES:
        raise BridgeConfigError(f"a DAW profile named '{name}' is already registered; choose another name")
    PROFILES[name] = factory


def profile_names() -> list[str]:
    """The registered DAW names, in registration order (the CLI's ``--daw`` choices)."""
    return list(PROFILES)


def profile_class(name: str) -> Callable[[], DawProfile]:
    """The factory of DAW ``name`` (imports its module on first use).

    Raises:
        UnknownNameError: unknown DAW; the message lists the known ones.
    """
    try:
        entry = PROFILES[name]
    except KeyError:
        raise UnknownNameError(f"unknown DAW '{name}'; known: {', '.join(PROFILES)}") from None
    if isinstance(entry, str):
        module, _, cls = entry.partition(":")
        entry = getattr(importlib.import_module(module), cls)
    return entry


def get_profile(name: str) -> DawProfile:
    """Return a fresh profile by DAW name.

    Raises:
        UnknownNameError: unknown DAW; the message lists the known ones.
    """
    return profile_class(name)()
