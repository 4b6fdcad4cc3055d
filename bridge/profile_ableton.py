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
"""
from __future__ import annotations

import bisect
import math

from .osc import OscMessage
from .profiles import (
    DawProfile,
    DawTrack,
    PulledTracks,
    StripLayout,
    fits,
    read_plugin,
    store_fader,
    store_value,
)
from .routing import ReplyCollector
from .transport import OscUdpClient

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


def ableton_track_names(client: OscUdpClient) -> list[str]:
    """``/live/song/get/track_names``: every track name, in Live's order.

    Raises:
        DawUnreachableError: no reply within the client's timeout.
    """
    col = ReplyCollector("/live/song/get/track_names", done=lambda m: True)
    with client.router.routed("/live/song/get/track_names", col):
        client.query([OscMessage("/live/song/get/track_names")], col.finished.is_set,
                     what="/live/song/get/track_names", quiet_s=None)
    return [str(a) for a in col.messages[-1].args]


def ableton_get(client: OscUdpClient, address: str, key: tuple) -> tuple:
    """Send ``address *key`` and return the reply's arguments after the echoed ``key`` (indices).

    Raises:
        DawUnreachableError: no reply within the client's timeout.
    """
    col = ReplyCollector(address, done=lambda m: tuple(m.args[:len(key)]) == key)
    with client.router.routed(address, col):
        client.query([OscMessage(address, key)], col.finished.is_set, what=f"{address} {key}", quiet_s=None)
    return next(m.args for m in reversed(col.messages) if tuple(m.args[:len(key)]) == key)[len(key):]


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

    def query_tracks(self, client, *, max_tracks=64):
        """``/live/song/get/track_names``, 0-based positions."""
        return [DawTrack(i, n) for i, n in enumerate(ableton_track_names(client))]

    def layout(self, client: OscUdpClient, position: int) -> StripLayout:
        """Where the map's devices sit on track ``position``, their parameter indices by name and ranges."""
        devices = [str(x) for x in ableton_get(client, "/live/track/get/devices/name", (position,))]
        layout = StripLayout()
        for slot, name in self.plugin_map.slots:
            actual = devices.index(name) if name in devices else None
            layout.slots[slot] = actual
            if actual is not None:
                names = ableton_get(client, "/live/device/get/parameters/name", (position, actual))
                layout.param_index[slot] = {str(n): i for i, n in enumerate(names)}
                lo = ableton_get(client, "/live/device/get/parameters/min", (position, actual))
                hi = ableton_get(client, "/live/device/get/parameters/max", (position, actual))
                layout.ranges[slot] = {i: (float(a), float(b)) for i, (a, b) in enumerate(zip(lo, hi))}
        return layout

    def strip_layouts(self, client, tracks):
        """One :meth:`layout` per track."""
        return {d.position: self.layout(client, d.position) for d in tracks}

    def pull_tracks(self, client, feedback, *, max_tracks=64, clamp=False, sample_rate=48000):
        """Volume, panning, mute and the mapped devices' parameter values, per track."""
        pulled = PulledTracks()
        for i, name in enumerate(ableton_track_names(client)):
            where = f"track '{name}' "
            t = self.new_track(name)
            vol = ableton_get(client, "/live/track/get/volume", (i,))
            store_fader(t.params, ableton_db_from_volume(float(vol[0])), self.fader_off_db, where, clamp, pulled)
            for path, address in (("pan.pan", "/live/track/get/panning"), ("fader.mute", "/live/track/get/mute")):
                store_value(t.params, path, float(ableton_get(client, address, (i,))[0]), where, clamp, pulled.clamped)
            layout = self.layout(client, i)
            for plug in self.plugin_map.plugins:
                actual = layout.slots.get(plug.slot)
                if actual is None:
                    pulled.not_read.extend(f"{name}: {p} (no {plug.name} on the track)" for p in plug.paths)
                    continue
                values = ableton_get(client, "/live/device/get/parameters/value", (i, actual))
                idx = layout.param_index[plug.slot]
                wire = {n: float(values[idx[n]]) for n in plug.params if n in idx and idx[n] < len(values)}
                read_plugin(t, plug, wire, name, where, pulled, clamp, sample_rate)
            pulled.add(t)
        return pulled
