"""Ableton Live's DAW profile through the AbletonOSC remote script: volume law, messages, queries, pull.

Source: the AbletonOSC README (github.com/ideoforms/AbletonOSC; DESIGN.md §4). AbletonOSC
listens on UDP 11000 and replies to the sender's IP on 11001, with 0-based indices.
``/live/track/set/volume t v`` (0..1; 0.85 = 0 dB, 1.0 = +6 dB), ``/live/track/set/panning t
p`` (-1..1), ``/live/track/set/mute t m``, ``/live/device/set/parameter/value t d p v``
(native units), ``/live/song/get/track_names``, ``/live/track/get/volume t`` etc. reply on the
same address with the indices first; ``/live/track/get/devices/name t`` and
``/live/device/get/parameters/{name,min,max,value} t d`` list a track's devices and their
parameters, so a push resolves EQ Eight's and Compressor's parameters by name and checks
their reported ranges.

**Delivery.** AbletonOSC reads its socket only on the remote script's 100 ms tick (``manager.py``:
``tick`` is rescheduled with ``schedule_message(1, ...)``; ``osc_server.py``: ``process`` drains the
non-blocking socket with ``recvfrom(65536)`` until ``EAGAIN``), and never sets the socket's receive buffer,
so whatever arrives between two ticks must fit the OS default buffer (Linux: 212992 bytes, ~256 small
datagrams); the rest is dropped by the kernel and AbletonOSC never knows. So everything sent to Live is
paced (:data:`ABLETON_BURST` datagrams every :data:`ABLETON_BURST_GAP_S`, at most ~75 per tick even when a
tick is late by half), every query of a round is sent at once and the replies collected together
(:func:`ableton_get_many`: one round costs about one tick, not one tick per query), and a push reads every
value it set back (``/live/track/get/volume|panning|mute``, ``/live/device/get/parameters/value``), resends
what did not land, up to :data:`ABLETON_RETRIES` times, each time at half the pace, and reports the counts
(:meth:`AbletonProfile.deliver`).
Bundles would take fewer datagrams, but AbletonOSC parses them only since its bundle support was added
(an older ``osc_server.py`` parses every datagram as one message and drops a bundle whole), so single
paced messages are used: they work with every version.

**EQ Eight's bands.** The map sets each band's type and switch as well as its frequency, gain and Q, so the
bands mean what the schema means: band 2 a low shelf, 3-5 bells, 7 a high shelf, bands 1, 6 and 8 off
(``plugins/maps/daw/ableton.json``; the type values are the chooser's order in the Live Reference Manual).

**Creating tracks** (``push --create --daw ableton``, :meth:`AbletonProfile.create_tracks`): AbletonOSC's
``song.py`` exposes Live's ``Song.create_audio_track(index)`` as ``/live/song/create_audio_track i`` (``-1``:
after the last track, Live's Object Model) and ``track.py`` the track's name as ``/live/track/set/name t s``;
so each missing session track is created at the end and named, and the names are read back
(``/live/song/get/track_names``), creating and naming again what did not land. What AbletonOSC cannot
create (:data:`ABLETON_CANNOT_CREATE`): a device (``track.py`` has ``delete_device`` but no insert, ``device.py``
only reads and sets parameters), and a usable return track (``/live/song/create_return_track`` exists, but
every ``/live/track/*`` address indexes ``song.tracks``, which holds no returns, so it can be neither named
nor found).

**Sends** are not mapped: AbletonOSC has ``/live/track/set/send t s v`` with ``v`` Live's send knob value
(0..1, 1.0 = 0 dB), but neither Live's manual nor AbletonOSC documents the knob's dB law between -inf and 0
dB, and AbletonOSC reports no display string for a send to calibrate against, so a send level in dB
cannot be set to a known value (the push lists ``send.send_db`` as not sent, with this reason).
"""
from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .errors import DawUnreachableError
from .osc import OscMessage
from .profiles import (
    DEFAULT_PUSH_RATE,
    SEND_PATH,
    DawProfile,
    DawTrack,
    Delivery,
    PulledTracks,
    StripLayout,
    TrackCreation,
    fits,
    read_plugin,
    store_fader,
    store_value,
)
from .transport import OscUdpClient

if TYPE_CHECKING:
    from .push import PushPlan

#: AbletonOSC reads its socket once per tick of the remote script (manager.py: "once per 100ms").
ABLETON_TICK_S = 0.1
#: Datagrams sent back to back, then :data:`ABLETON_BURST_GAP_S` of silence: 500 per second, 50 per tick
#: (75 if a tick comes half a tick late), against the ~256 small datagrams Linux's default buffer holds.
ABLETON_BURST = 25
ABLETON_BURST_GAP_S = ABLETON_TICK_S / 2
#: How often a query without a reply, or a value that reads back wrong, is sent again.
ABLETON_RETRIES = 3
#: A round's replies are complete once Live has been silent this long (three ticks: one late tick and margin).
ABLETON_QUIET_S = 3 * ABLETON_TICK_S
#: A value read back within this relative error of what was sent has landed: OSC carries float32 both ways
#: (2**-24 = 6e-8 relative), and Live stores the float it was given.
ABLETON_READBACK_REL = 1e-6
#: What ``/live/track/set/<prop>`` is read back with, and ``/live/device/set/parameter/value``'s device getter.
_TRACK_GETTERS = {"/live/track/set/volume": "/live/track/get/volume",
                  "/live/track/set/panning": "/live/track/get/panning",
                  "/live/track/set/mute": "/live/track/get/mute"}
_PARAMS_VALUE = "/live/device/get/parameters/value"

#: AbletonOSC's creation and naming addresses (song.py: Song.create_audio_track(index), -1 = at the end;
#: track.py: the read/write property ``name``).
ABLETON_CREATE_TRACK = "/live/song/create_audio_track"
ABLETON_SET_NAME = "/live/track/set/name"
#: What ``push --create`` cannot build in Live through AbletonOSC (checked in its song.py, track.py, device.py).
ABLETON_CANNOT_CREATE = (
    "AbletonOSC cannot insert devices or plugins (its track API has delete_device but no insert; device.py only "
    "reads and sets parameters) nor make a usable reverb return (/live/song/create_return_track exists, but "
    "/live/track/* reaches only song.tracks, which holds no returns): put EQ Eight and Compressor on the created "
    "tracks and make the return in Live, then push again")

#: Ableton Live's mixer volume maximum: +6 dB at 1.0.
ABLETON_MAX_DB = 6.0
#: Live's mixer volume law measured in 3 dB steps (parameter value at each dB);
#: from -18 dB up it is exactly linear at 1/40 per dB (0.85 at 0 dB, 1.0 at +6 dB).
#: Source: a public community measurement of Live's volume fader (value vs display);
#: values between points are interpolated linearly. Below -70 dB the value is 0 (-inf dB).
ABLETON_VOLUME_TABLE: tuple[tuple[float, float], ...] = (
    (-70.0, 0.0), (-63.0, 0.021345632150769234), (-60.0, 0.03462362661957741),
    (-57.0, 0.05101150646805763), (-54.0, 0.06778648495674133), (-51.0, 0.08523604273796082),
    (-48.0, 0.10353590548038483), (-45.0, 0.12271705269813538), (-42.0, 0.1428816020488739),
    (-39.0, 0.16421939432621002), (-36.0, 0.18703696131706238), (-33.0, 0.2116302251815796),
    (-30.0, 0.23843887448310852), (-27.0, 0.2682555615901947), (-24.0, 0.302414208650589),
    (-21.0, 0.3436638116836548), (-18.0, 0.4),
)
#: Where Live's volume law turns exactly linear (dB).
ABLETON_LINEAR_FROM_DB = -18.0


def ableton_volume_from_db(db: float) -> float:
    """Live mixer volume value (0..1) for a fader level in dB (-70 .. +6 dB).

    Exact in Live's linear region (-18 .. +6 dB: ``0.85 + dB/40``), table-interpolated below.
    """
    if db >= ABLETON_LINEAR_FROM_DB:
        return 0.85 + db / 40.0
    dbs = [d for d, _ in ABLETON_VOLUME_TABLE]
    if db <= dbs[0]:
        return 0.0
    i = bisect.bisect_right(dbs, db) - 1
    (d0, v0), (d1, v1) = ABLETON_VOLUME_TABLE[i], ABLETON_VOLUME_TABLE[i + 1]
    return v0 + (db - d0) / (d1 - d0) * (v1 - v0)


def ableton_db_from_volume(v: float) -> float:
    """Inverse of :func:`ableton_volume_from_db`: volume value (0..1) -> dB (``-inf`` for 0)."""
    if v >= 0.4:
        return (v - 0.85) * 40.0
    if v <= 0.0:
        return float("-inf")
    vals = [x for _, x in ABLETON_VOLUME_TABLE]
    i = max(0, bisect.bisect_right(vals, v) - 1)
    (d0, v0), (d1, v1) = ABLETON_VOLUME_TABLE[i], ABLETON_VOLUME_TABLE[i + 1]
    return d0 + (v - v0) / (v1 - v0) * (d1 - d0)


def ableton_get_many(client: OscUdpClient, requests: Sequence[tuple[str, tuple]], *,
                     what: str = "AbletonOSC queries") -> dict[tuple[str, tuple], tuple]:
    """Send every query ``(address, key)`` of a round, paced, and collect the replies together.

    AbletonOSC answers a getter on its own address with the key (the indices) first; the reply's
    arguments after the key are returned under ``(address, key)``. Queries still unanswered once Live
    has been silent for :data:`ABLETON_QUIET_S` are sent again, up to :data:`ABLETON_RETRIES` times;
    those never answered are absent from the result (the caller says what that means).

    Raises:
        DawUnreachableError: not one reply within the client's timeout.
    """
    pending = list(dict.fromkeys(requests))
    got: dict[tuple[str, tuple], tuple] = {}
    lengths: dict[str, set[int]] = {}
    for address, key in pending:
        lengths.setdefault(address, set()).add(len(key))
    wanted = set(pending)

    def on_reply(m: OscMessage) -> None:
        for n in lengths.get(m.address, ()):
            k = (m.address, tuple(m.args[:n]))
            if k in wanted and k not in got:
                got[k] = tuple(m.args[n:])

    with client.router.routed("/live/**", on_reply):
        for attempt in range(ABLETON_RETRIES + 1):
            todo = [r for r in pending if r not in got]
            if not todo:
                break
            client.send_paced([OscMessage(a, k) for a, k in todo], burst=_burst(attempt), gap_s=ABLETON_BURST_GAP_S)
            heard = client.router.stats.datagrams > 0
            client.receive(lambda: len(got) == len(pending), ABLETON_QUIET_S if heard else client.timeout_s,
                           quiet_s=ABLETON_QUIET_S)
            if not client.router.stats.datagrams:  # never heard from Live: not there (a lost round is retried)
                first = f"{todo[0][0]} {' '.join(str(x) for x in todo[0][1])}".rstrip()
                raise client.unreachable_error(f"{what} ({len(todo)}, first {first})", client.timeout_s)
    return got


def _burst(attempt: int) -> int:
    """The burst size of send number ``attempt`` (0: the first): each resend goes at half the pace of the
    one before, so a Live whose buffer holds less than the first pace still takes every message in the end."""
    return max(1, ABLETON_BURST >> attempt)


def _require(got: dict, requests: Sequence[tuple[str, tuple]], what: str) -> None:
    missing = [r for r in requests if r not in got]
    if missing:
        a, k = missing[0]
        raise DawUnreachableError(
            f"AbletonOSC answered {len(requests) - len(missing)} of {len(requests)} {what} queries, also after "
            f"{ABLETON_RETRIES} resends (first unanswered: {a} {' '.join(str(x) for x in k)}); check that Live is "
            "not busy (a modal dialog, a long load) and that the track still exists, then push again")


def ableton_track_names(client: OscUdpClient) -> list[str]:
    """``/live/song/get/track_names``: every track name, in Live's order.

    Raises:
        DawUnreachableError: no reply within the client's timeout.
    """
    req = ("/live/song/get/track_names", ())
    got = ableton_get_many(client, [req], what="/live/song/get/track_names")
    _require(got, [req], "track-name")
    return [str(a) for a in got[req]]


def ableton_get(client: OscUdpClient, address: str, key: tuple) -> tuple:
    """Send ``address *key`` and return the reply's arguments after the echoed ``key`` (indices).

    Raises:
        DawUnreachableError: no reply within the client's timeout.
    """
    got = ableton_get_many(client, [(address, key)], what=address)
    _require(got, [(address, key)], address)
    return got[(address, key)]


def _close(got: float, want: float) -> bool:
    return abs(float(got) - float(want)) <= ABLETON_READBACK_REL * max(1.0, abs(float(want)))


def readback_request(m: OscMessage) -> tuple[tuple[str, tuple], int, float] | None:
    """Where a set message's value reads back: ``((getter address, key), index in the reply, value sent)``,
    or None for a message this profile does not read back."""
    if m.address in _TRACK_GETTERS:
        return (_TRACK_GETTERS[m.address], (m.args[0],)), 0, float(m.args[1])
    if m.address == "/live/device/set/parameter/value":
        t, d, p, v = m.args
        return (_PARAMS_VALUE, (t, d)), int(p), float(v)
    return None


class AbletonProfile(DawProfile):
    """Ableton Live through the AbletonOSC remote script (see the module docstring)."""

    name = "ableton"
    default_port = 11000
    reply_port = 11001
    honours_timetags = False  # AbletonOSC dispatches on arrival
    strip_paths = ("fader.fader_db", "fader.mute", "pan.pan")
    #: Live's volume 0 is -inf; :func:`ableton_db_from_volume` gives -70 dB and below only there.
    fader_off_db = ABLETON_VOLUME_TABLE[0][0]
    unreachable_hint = ("Ableton: install AbletonOSC in Live's MIDI Remote Scripts and select it as a Control "
                        "Surface")
    ports_hint = ("AbletonOSC listens on 11000 and replies to 11001; this command sent to {port} (--port) and "
                  "listened on {reply_port} (--reply-port)")

    master_gain_not_carried = ("AbletonOSC's documented API (its README: song, track, clip, device, view) has no "
                               "master track address; set Live's master volume by hand")
    #: Why ``send.send_db`` is not sent (see the module docstring).
    path_not_carried = {SEND_PATH: ("AbletonOSC's /live/track/set/send takes Live's send knob value (0..1, 1 = 0 dB) "
                                    "but Live documents no dB law for it, so a level in dB cannot be set exactly; set "
                                    "the send by hand")}

    def strip_messages(self, position, path, value, *, where="", clamp=False, clamped=None):
        """``/live/track/set/volume`` (Live's volume law), ``.../mute`` (0/1), ``.../panning`` (-1..1)."""
        if path == "fader.fader_db":
            v = fits(value, -math.inf, ABLETON_MAX_DB, path, where, clamp, clamped,
                     "Live's fader tops out at +6 dB: lower the fader or raise trim elsewhere")
            return [OscMessage("/live/track/set/volume", (position, float(ableton_volume_from_db(v))))]
        if path == "fader.mute":
            return [OscMessage("/live/track/set/mute", (position, 1 if value >= 0.5 else 0))]
        if path == "pan.pan":
            return [OscMessage("/live/track/set/panning", (position, float(value)))]
        raise KeyError(path)

    def plugin_message(self, position, slot, index, wire_value):
        """``/live/device/set/parameter/value track device parameter value`` (native units)."""
        return OscMessage("/live/device/set/parameter/value", (position, slot, index, float(wire_value)))

    create_unsupported = None

    def create_tracks(self, client: OscUdpClient, names: Sequence[str], n_tracks: int) -> TrackCreation:
        """Create an audio track per name after Live's ``n_tracks`` tracks (``/live/song/create_audio_track -1``)
        and name it (``/live/track/set/name``), paced; then read the names back and create or name again
        what did not land, up to :data:`ABLETON_RETRIES` times. Devices and returns cannot be created
        (:attr:`TrackCreation.cannot`).

        Raises:
            DawUnreachableError: Live did not answer, or after the last resend the new tracks still do not
                carry the names.
        """
        want = list(names)
        target = n_tracks + len(want)
        out = TrackCreation(cannot=ABLETON_CANNOT_CREATE)

        def send(msgs: list[OscMessage], attempt: int) -> None:
            client.send_paced(msgs, burst=_burst(attempt), gap_s=ABLETON_BURST_GAP_S)
            out.sent += len(msgs)

        have = ableton_track_names(client)
        for attempt in range(ABLETON_RETRIES + 1):
            if len(have) < target:  # creates first, read back, so a name never goes to a track not yet there
                send([OscMessage(ABLETON_CREATE_TRACK, (-1,))] * (target - len(have)), attempt)
                have = ableton_track_names(client)
            wrong = [OscMessage(ABLETON_SET_NAME, (n_tracks + i, name)) for i, name in enumerate(want)
                     if n_tracks + i < len(have) and have[n_tracks + i] != name]
            if wrong:
                send(wrong, attempt)
                have = ableton_track_names(client)
            out.rounds = attempt + 1
            if have[n_tracks:target] == want:
                out.created = want
                return out
        raise DawUnreachableError(
            f"AbletonOSC has {len(have)} tracks named {have[n_tracks:target]} where push --create wanted {want} "
            f"after {ABLETON_RETRIES} resends; check that Live is not busy (a modal dialog) and push again")

    def query_tracks(self, client, *, max_tracks=64):
        """``/live/song/get/track_names``, 0-based positions."""
        return [DawTrack(i, n) for i, n in enumerate(ableton_track_names(client))]

    def _layouts(self, client: OscUdpClient, positions: Sequence[int], *, ranges: bool = True,
                 values: bool = False) -> tuple[dict[int, StripLayout], dict[tuple[int, int], tuple]]:
        """Two rounds of queries: every track's device names, then each mapped device's parameter names
        (and ranges, and values). Returns ``({position: layout}, {(position, device index): values})``.

        Raises:
            DawUnreachableError: Live did not answer (also after resends).
        """
        first = [("/live/track/get/devices/name", (p,)) for p in positions]
        devs = ableton_get_many(client, first, what="/live/track/get/devices/name")
        _require(devs, first, "device-name")
        found: dict[int, dict[int, int | None]] = {}
        second = []
        kinds = ["name"] + (["min", "max"] if ranges else []) + (["value"] if values else [])
        for p in positions:
            names = [str(x) for x in devs[("/live/track/get/devices/name", (p,))]]
            found[p] = {slot: (names.index(n) if n in names else None) for slot, n in self.plugin_map.slots}
            for actual in found[p].values():
                if actual is not None:
                    second += [(f"/live/device/get/parameters/{k}", (p, actual)) for k in kinds]
        got = ableton_get_many(client, second, what="/live/device/get/parameters/*") if second else {}
        _require(got, second, "device-parameter")
        layouts: dict[int, StripLayout] = {}
        vals: dict[tuple[int, int], tuple] = {}
        for p in positions:
            layout = StripLayout()
            for slot, actual in found[p].items():
                layout.slots[slot] = actual
                if actual is None:
                    continue
                key = (p, actual)
                layout.param_index[slot] = {str(n): i for i, n in
                                            enumerate(got[("/live/device/get/parameters/name", key)])}
                if ranges:
                    lo = got[("/live/device/get/parameters/min", key)]
                    hi = got[("/live/device/get/parameters/max", key)]
                    layout.ranges[slot] = {i: (float(a), float(b)) for i, (a, b) in enumerate(zip(lo, hi))}
                if values:
                    vals[key] = got[("/live/device/get/parameters/value", key)]
            layouts[p] = layout
        return layouts, vals

    def layout(self, client: OscUdpClient, position: int) -> StripLayout:
        """Where the map's devices sit on track ``position``, their parameter indices by name and ranges."""
        return self._layouts(client, [position])[0][position]

    def strip_layouts(self, client, tracks):
        """Every track's layout in two pipelined rounds of queries (see :meth:`_layouts`)."""
        return self._layouts(client, [d.position for d in tracks])[0]

    def deliver(self, client: OscUdpClient, plan: PushPlan, *,
                max_msgs_per_s: float = DEFAULT_PUSH_RATE) -> Delivery:
        """Send the plan paced to AbletonOSC's tick, read every value back, resend what did not land.

        Every set message is read back through its getter (one ``/live/device/get/parameters/value`` per
        device, one ``/live/track/get/<prop>`` per strip value), in one pipelined round; what reads back
        different from what was sent (beyond float32, :data:`ABLETON_READBACK_REL`), or not at all, is sent
        again, at half the previous pace, and read again, up to :data:`ABLETON_RETRIES` times; what still
        differs is listed in
        :attr:`Delivery.missing`. ``max_msgs_per_s`` is ignored: the tick sets the pace.
        """
        msgs = plan.messages
        client.send_paced(msgs, burst=ABLETON_BURST, gap_s=ABLETON_BURST_GAP_S)
        expect: dict[tuple[tuple[str, tuple], int], tuple[float, OscMessage]] = {}
        for m in msgs:
            rb = readback_request(m)
            if rb is not None:
                expect[(rb[0], rb[1])] = (rb[2], m)  # a later message to the same value wins
        delivery = Delivery(sent=len(msgs), checked=len(expect), rounds=1)
        bad: list[tuple[tuple[tuple[str, tuple], int], float, OscMessage, str]] = []
        for attempt in range(ABLETON_RETRIES + 1):
            got = ableton_get_many(client, [k[0] for k in expect], what="the read-back of the push")
            bad = []
            for (req, i), (want, m) in expect.items():
                reply = got.get(req)
                if reply is None or i >= len(reply):
                    bad.append(((req, i), want, m, "no reply"))
                elif not _close(reply[i], want):
                    bad.append(((req, i), want, m, f"reads {float(reply[i]):g}"))
            if not bad or attempt == ABLETON_RETRIES:
                break
            client.send_paced([m for _, _, m, _ in bad], burst=_burst(attempt + 1), gap_s=ABLETON_BURST_GAP_S)
            delivery.resent += len(bad)
            delivery.rounds += 1
            expect = {k: (w, m) for k, w, m, _ in bad}
        delivery.missing = [f"{m} ({why} after {delivery.rounds} sends)" for _, _, m, why in bad]
        return delivery

    def pull_tracks(self, client, feedback, *, max_tracks=64, clamp=False, sample_rate=48000):
        """Volume, panning, mute and the mapped devices' parameter values, per track, in three pipelined
        rounds of queries (track names; strip values and device names; parameter names and values)."""
        pulled = PulledTracks()
        names = ableton_track_names(client)
        positions = list(range(len(names)))
        strip = [(a, (i,)) for i in positions
                 for a in ("/live/track/get/volume", "/live/track/get/panning", "/live/track/get/mute")]
        got = ableton_get_many(client, strip, what="/live/track/get/volume|panning|mute")
        _require(got, strip, "strip")
        layouts, values = self._layouts(client, positions, ranges=False, values=True)
        for i, name in enumerate(names):
            where = f"track '{name}' "
            t = self.new_track(name)
            vol = got[("/live/track/get/volume", (i,))]
            store_fader(t.params, ableton_db_from_volume(float(vol[0])), self.fader_off_db, where, clamp, pulled)
            for path, address in (("pan.pan", "/live/track/get/panning"), ("fader.mute", "/live/track/get/mute")):
                store_value(t.params, path, float(got[(address, (i,))][0]), where, clamp, pulled.clamped)
            layout = layouts[i]
            for plug in self.plugin_map.plugins:
                actual = layout.slots.get(plug.slot)
                if actual is None:
                    pulled.not_read.extend(f"{name}: {p} (no {plug.name} on the track)" for p in plug.paths)
                    continue
                vals = values[(i, actual)]
                idx = layout.param_index[plug.slot]
                wire = {n: float(vals[idx[n]]) for n in plug.params if n in idx and idx[n] < len(vals)}
                read_plugin(t, plug, wire, name, where, pulled, clamp, sample_rate)
            pulled.add(t)
        return pulled
