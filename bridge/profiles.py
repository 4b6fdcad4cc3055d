"""Layer 4 of the bridge: DAW profiles mapping the session schema onto each DAW's OSC.

A profile turns one session track's channel strip into the OSC messages one
DAW understands (addresses, argument types, value scales, track numbering)
and parses the DAW's feedback back into schema values. Profiles build
messages only; sockets live in :mod:`mixbridge.bridge.transport` and the
orchestration (query, match, send, pull) in :mod:`mixbridge.bridge.push`.

Sources (DESIGN.md §4 and each DAW's documentation):

* **REAPER**, default pattern file ``Default.ReaperOSC`` (REAPER > Preferences >
  Control/OSC/web > OSC): listens on 8000, sends feedback to the device port
  9000. Tracks are 1-based within a bank; track 0 is the master;
  ``/device/track/count N`` widens the bank so tracks 1..N are addressable and
  ``/device/track/bank/select 1`` selects the first bank. ``/track/N/volume/db``
  takes raw dB (float), ``/track/N/pan`` 0..1 (0 left, 1 right), ``/track/N/mute``
  0/1, ``/track/N/fx/M/fxparam/K/value`` the normalised 0..1 plugin value,
  ``/track/N/name`` a string. ``/action 41743`` ("Control surface: refresh all
  surfaces") makes REAPER send its whole state, which ``pull`` reads.
* **Ableton Live via AbletonOSC** (github.com/ideoforms/AbletonOSC README): UDP
  11000 in, replies to the sender's IP on 11001, 0-based indices.
  ``/live/track/set/volume t v`` (0..1; 0.85 = 0 dB, 1.0 = +6 dB),
  ``/live/track/set/panning t p`` (-1..1), ``/live/track/set/mute t m``,
  ``/live/device/set/parameter/value t d p v`` (native units),
  ``/live/song/get/track_names``, ``/live/track/get/volume t`` etc. reply on
  the same address with the indices first, ``/live/test`` is a health check.
* **Ardour 7** OSC surface (manual.ardour.org, "Controlling Ardour with OSC"):
  port 3819, handshake ``/set_surface 0 31 16387 2 0 0`` (bank size 0 = all
  strips, strip types 31, feedback 16387 = values + buttons + ``/reply``
  instead of ``#reply``), ``/set_surface/port 0`` (reply to the sender's port).
  ``/strip/gain ssid dB`` (clamps at +6.02 dB), ``/strip/trimdB ssid dB``
  (-20..+20 dB), ``/strip/pan_stereo_position ssid p`` (inverted: 0 = right),
  ``/strip/mute ssid 0|1``, ``/strip/polarity ssid 0|1``,
  ``/strip/plugin/parameter ssid piid param value`` (native units),
  ``/strip/send/gain ssid sendid dB`` (-193..+6 dB; below -192 dB the send is
  off, ``route_set_send_gain_dB`` in libs/surfaces/osc/osc.cc),
  ``/strip/list``, ``/strip/plugin/list ssid``, ``/strip/plugin/descriptor ssid
  piid``, ``/strip/sends ssid`` (per aux send: target ssid, name, sendid, fader
  position 0..1, active), ``/save_state``. ssid, piid and sendid are 1-based.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Callable

from mixbridge.schema import CHANNEL_STRIP

from .errors import BridgeConfigError, DawRangeError
from .osc import OscMessage
from .plugin_maps import DawMap, get_daw_map

#: Ardour's fader maximum: gain coefficient 2.0 = +6.0206 dB (libs/ardour gain_control).
ARDOUR_MAX_GAIN_DB = 20.0 * math.log10(2.0)
#: Ardour's trim range in dB (libs/ardour/trim control: -20 .. +20 dB).
ARDOUR_TRIM_RANGE_DB = (-20.0, 20.0)
#: Ardour's aux-send level that means "off": ``/strip/send/gain`` sets gain 0 below -192 dB (osc.cc).
ARDOUR_SEND_OFF_DB = -193.0
#: The schema path of the post-fader send to the shared reverb bus.
SEND_PATH = "send.send_db"
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
    """Inverse of :func:`ableton_volume_from_db` (``-inf`` for 0)."""
    if v >= 0.4:
        return (v - 0.85) * 40.0
    if v <= 0.0:
        return float("-inf")
    vals = [x for _, x in ABLETON_VOLUME_TABLE]
    i = max(0, bisect.bisect_right(vals, v) - 1)
    (d0, v0), (d1, v1) = ABLETON_VOLUME_TABLE[i], ABLETON_VOLUME_TABLE[i + 1]
    return d0 + (v - v0) / (v1 - v0) * (d1 - d0)


@dataclass
class StripMessages:
    """What a profile makes of one track: messages, paths it cannot map, clamped values."""

    messages: list[OscMessage] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    clamped: list[str] = field(default_factory=list)


def _fits(value: float, lo: float, hi: float, what: str, where: str, clamp: bool, clamped: list[str],
          fix: str) -> float:
    """Return ``value`` if inside [lo, hi]; clamp and record it if ``clamp``; else raise DawRangeError."""
    if lo - 1e-9 <= value <= hi + 1e-9:
        return value
    if not clamp:
        raise DawRangeError(f"{where}{what} = {value:g} is outside the DAW's [{lo:g}, {hi:g}]; {fix}")
    v = min(max(value, lo), hi)
    clamped.append(f"{where}{what}: {value:g} -> {v:g}")
    return v


class DawProfile:
    """Base class: one DAW's OSC address space over the channel-strip schema.

    Track positions passed to profiles are 0-based positions in the DAW's track
    order; each profile converts to its own numbering.
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
    #: What to check on the DAW's side when it does not answer.
    unreachable_hint = ""

    def setup_messages(self, n_tracks: int) -> list[OscMessage]:
        return []

    def strip_messages(self, position: int, path: str, value: float, *, where: str = "",
                       clamp: bool = False, clamped: list[str] | None = None) -> list[OscMessage]:
        raise NotImplementedError

    def plugin_message(self, position: int, slot: int, index: int, wire_value: float) -> OscMessage:
        raise NotImplementedError

    def send_message(self, position: int, send_id: int, send_db: float) -> OscMessage:
        """The message setting aux send ``send_id`` (1-based) of a strip to ``send_db`` (schema dB)."""
        raise NotImplementedError

    @property
    def plugin_map(self) -> DawMap:
        """This DAW's plugin map (``plugins/maps/daw/<name>.json``, loaded once per process)."""
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
            for b in (plug.stage.set if plug.stage is not None else plug.bindings):
                if b.source == name or name in b.with_:
                    out.append(self.plugin_message(position, plug.slot, plug.params[b.param].index, wire[b.param]))
        return out

    def mapped_paths(self) -> tuple[str, ...]:
        return self.strip_paths + ((SEND_PATH,) if self.maps_send else ()) + self.plugin_map.paths

    def unmapped_paths(self) -> list[str]:
        return [p for p, _ in CHANNEL_STRIP.flat_params() if p not in self.mapped_paths()]



class ReaperProfile(DawProfile):
    """REAPER's default OSC pattern set (``Default.ReaperOSC``)."""

    name = "reaper"
    default_port = 8000
    reply_port = 9000
    honours_timetags = False
    strip_paths = ("fader.fader_db", "fader.mute", "pan.pan")
    #: REAPER's fader range in dB (its volume control tops out at +12 dB).
    FADER_RANGE_DB = (-150.0, 12.0)
    REFRESH_ACTION = 41743
    unreachable_hint = ("REAPER: Preferences > Control/OSC/web > OSC, mode 'Configure device IP+local port', "
                        "local listen port 8000, device IP 127.0.0.1, device port 9000 (= --reply-port); "
                        "or push with --no-query")
    def setup_messages(self, n_tracks: int) -> list[OscMessage]:
        return [OscMessage("/device/track/count", (int(max(n_tracks, 1)),)),
                OscMessage("/device/track/bank/select", (1,))]

    def strip_messages(self, position, path, value, *, where="", clamp=False, clamped=None):
        n = position + 1
        if path == "fader.fader_db":
            v = _fits(value, *self.FADER_RANGE_DB, path, where, clamp, clamped, "lower the fader")
            return [OscMessage(f"/track/{n}/volume/db", (float(v),))]
        if path == "fader.mute":
            return [OscMessage(f"/track/{n}/mute", (1.0 if value >= 0.5 else 0.0,))]
        if path == "pan.pan":
            return [OscMessage(f"/track/{n}/pan", ((float(value) + 1.0) / 2.0,))]
        raise KeyError(path)

    def plugin_message(self, position, slot, index, wire_value):
        return OscMessage(f"/track/{position + 1}/fx/{slot}/fxparam/{index}/value", (float(wire_value),))


    def refresh_message(self) -> OscMessage:
        return OscMessage("/action", (self.REFRESH_ACTION,))


class AbletonProfile(DawProfile):
    """Ableton Live through the AbletonOSC remote script."""

    name = "ableton"
    default_port = 11000
    reply_port = 11001
    honours_timetags = False  # AbletonOSC dispatches on arrival
    strip_paths = ("fader.fader_db", "fader.mute", "pan.pan")
    unreachable_hint = ("Ableton: install AbletonOSC in Live's MIDI Remote Scripts and select it as a Control "
                        "Surface; it listens on 11000 and replies to port 11001 (= --reply-port)")

    def strip_messages(self, position, path, value, *, where="", clamp=False, clamped=None):
        if path == "fader.fader_db":
            v = _fits(value, -math.inf, ABLETON_MAX_DB, path, where, clamp, clamped,
                      "Live's fader tops out at +6 dB: lower the fader or raise trim elsewhere")
            return [OscMessage("/live/track/set/volume", (position, float(ableton_volume_from_db(v))))]
        if path == "fader.mute":
            return [OscMessage("/live/track/set/mute", (position, 1 if value >= 0.5 else 0))]
        if path == "pan.pan":
            return [OscMessage("/live/track/set/panning", (position, float(value)))]
        raise KeyError(path)

    def plugin_message(self, position, slot, index, wire_value):
        return OscMessage("/live/device/set/parameter/value", (position, slot, index, float(wire_value)))



class ArdourProfile(DawProfile):
    """Ardour 7's OSC control surface (liblo; honours bundle time tags)."""

    name = "ardour"
    default_port = 3819
    reply_port = None
    honours_timetags = True
    accepts_bundles = True
    maps_send = True
    unreachable_hint = ("Ardour: Edit > Preferences > Control Surfaces > Open Sound Control enabled, "
                        "port 3819 (or --port)")
    strip_paths = ("trim.gain_db", "polarity.invert", "fader.fader_db", "fader.mute", "pan.pan")
    HANDSHAKE = (OscMessage("/set_surface", (0, 31, 16387, 2, 0, 0)), OscMessage("/set_surface/port", (0,)))
    #: The same surface without value feedback (16384 = only "/reply" instead of "#reply"): a push
    #: does not need Ardour's full strip dump (~40 messages per strip, ~1 s for 64 strips).
    HANDSHAKE_QUIET = (OscMessage("/set_surface", (0, 31, 16384, 2, 0, 0)), OscMessage("/set_surface/port", (0,)))

    def setup_messages(self, n_tracks: int) -> list[OscMessage]:
        return list(self.HANDSHAKE_QUIET)

    def strip_messages(self, position, path, value, *, where="", clamp=False, clamped=None):
        ssid = position + 1
        if path == "fader.fader_db":
            v = _fits(value, -math.inf, ARDOUR_MAX_GAIN_DB, path, where, clamp, clamped,
                      "Ardour clamps the fader at +6.02 dB: lower it, or pass --clamp to send +6.02 dB")
            return [OscMessage("/strip/gain", (ssid, float(v)))]
        if path == "trim.gain_db":
            v = _fits(value, *ARDOUR_TRIM_RANGE_DB, path, where, clamp, clamped,
                      "Ardour's trim spans -20..+20 dB: move the rest to the fader, or pass --clamp")
            return [OscMessage("/strip/trimdB", (ssid, float(v)))]
        if path == "polarity.invert":
            return [OscMessage("/strip/polarity", (ssid, 1 if value >= 0.5 else 0))]
        if path == "fader.mute":
            return [OscMessage("/strip/mute", (ssid, 1 if value >= 0.5 else 0))]
        if path == "pan.pan":
            return [OscMessage("/strip/pan_stereo_position", (ssid, float(ardour_position_from_pan(value))))]
        raise KeyError(path)

    def plugin_message(self, position, slot, index, wire_value):
        return OscMessage("/strip/plugin/parameter", (position + 1, slot, index, float(wire_value)))

    def send_message(self, position, send_id, send_db):
        off = send_db <= CHANNEL_STRIP.param(SEND_PATH).min  # the schema's -80 dB means "off"
        return OscMessage("/strip/send/gain", (position + 1, send_id, ARDOUR_SEND_OFF_DB if off else float(send_db)))



def ardour_position_from_pan(pan: float) -> float:
    """Schema pan (-1 left .. +1 right) -> Ardour's inverted OSC position (1 left .. 0 right)."""
    return (1.0 - float(pan)) / 2.0


def pan_from_ardour_position(position: float) -> float:
    return 1.0 - 2.0 * float(position)


def ardour_send_db_from_position(position: float) -> float:
    """Ardour's aux-send fader position (0..1, as ``/strip/sends`` reports it) -> dB (``-inf`` at 0).

    Inverts ``gain_to_slider_position_with_max(g, 2.0)`` (libs/ardour/utils.cc, then
    ``gain_to_position`` in libs/pbd/pbd/control_math.h; max gain 2.0 = +6.02 dB):
    ``position = ((6 log2(g) + 192) / 198) ** 8``. Checked against Ardour 7.3 in the tests.
    """
    if position <= 0.0:
        return float("-inf")
    return 20.0 * math.log10(2.0) * (float(position) ** 0.125 * 198.0 - 192.0) / 6.0


PROFILES: dict[str, Callable[[], DawProfile]] = {
    "reaper": ReaperProfile, "ableton": AbletonProfile, "ardour": ArdourProfile,
}


def get_profile(name: str) -> DawProfile:
    """Return a fresh profile by DAW name.

    Raises:
        BridgeConfigError: unknown DAW; the message lists the known ones.
    """
    try:
        return PROFILES[name]()
    except KeyError:
        raise BridgeConfigError(f"unknown DAW '{name}'; known: {', '.join(PROFILES)}") from None
