"""Ardour 7's DAW profile: its OSC control surface, the pan and send laws, queries and pull.

Source: Ardour 7's OSC manual (manual.ardour.org, "Controlling Ardour with OSC") and
``libs/surfaces/osc/osc.cc`` (DESIGN.md §4). Port 3819, handshake ``/set_surface 0 31 16387 2
0 0`` (bank size 0 = all strips, strip types 31, feedback 16387 = values + buttons + ``/reply``
instead of ``#reply``), ``/set_surface/port 0`` (reply to the sender's port). ``/strip/gain ssid
dB`` (clamps at +6.02 dB), ``/strip/trimdB ssid dB`` (-20..+20 dB),
``/strip/pan_stereo_position ssid p`` (inverted: 0 = right), ``/strip/mute ssid 0|1``,
``/strip/polarity ssid 0|1``, ``/strip/plugin/parameter ssid piid param value`` (native units),
``/strip/send/gain ssid sendid dB`` (-193..+6 dB; below -192 dB the send is off,
``route_set_send_gain_dB`` in osc.cc), ``/strip/list``, ``/strip/plugin/list ssid``,
``/strip/plugin/descriptor ssid piid``, ``/master/gain dB`` and ``/master/trimdB dB`` (the master strip,
through the same ``_strip_parse``; a push sends the solved master gain there), ``/strip/sends ssid``
(per aux send: target ssid, name, sendid, fader position 0..1, active), ``/save_state``.
ssid, piid and sendid are 1-based.
Ardour's OSC server is liblo, which schedules bundles by their time tag.

What a pull reads beyond the strip feedback (checked against Ardour 7.3 in the tests): the
session's sample rate is the second argument of ``/strip/list``'s closing ``/reply end_route_list
rate end_sample monitor``; polarity has no ``/strip`` feedback, but with select feedback on
(feedback bit 8192) ``/strip/expand ssid 1`` makes the strip this surface's selected one and Ardour
answers ``/select/name`` then ``/select/polarity 0|1``; a fader at gain 0 is reported as
``/strip/gain ssid -200``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from mixbridge.schema import CHANNEL_STRIP

from .errors import DawUnreachableError
from .osc import OscMessage
from .profiles import (
    FADER_PATH,
    READBACK_EDGE_REL,
    SEND_PATH,
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

#: Ardour's fader maximum: gain coefficient 2.0 = +6.0206 dB (libs/ardour gain_control).
ARDOUR_MAX_GAIN_DB = 20.0 * math.log10(2.0)
#: Ardour's trim range in dB (libs/ardour/trim control: -20 .. +20 dB).
ARDOUR_TRIM_RANGE_DB = (-20.0, 20.0)
#: Ardour's aux-send level that means "off": ``/strip/send/gain`` sets gain 0 below -192 dB (osc.cc).
ARDOUR_SEND_OFF_DB = -193.0
#: Ardour's fader at gain 0 reads ``/strip/gain ssid -200``; it takes any level below -192 dB as gain 0.
ARDOUR_FADER_OFF_DB = -192.0
#: Feedback bit "select channel feedback": ``/select/*`` for this surface's selected (expanded) strip.
SELECT_FEEDBACK = 8192


def ardour_position_from_pan(pan: float) -> float:
    """Schema pan (-1 left .. +1 right) -> Ardour's inverted OSC position (1 left .. 0 right)."""
    return (1.0 - float(pan)) / 2.0


def pan_from_ardour_position(position: float) -> float:
    """Ardour's OSC pan position (1 left .. 0 right) -> schema pan (-1 left .. +1 right)."""
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


class ArdourProfile(DawProfile):
    """Ardour 7's OSC control surface (liblo; honours bundle time tags; see the module docstring)."""

    name = "ardour"
    default_port = 3819
    reply_port = None
    honours_timetags = True
    accepts_bundles = True
    maps_send = True
    lanes_override_static = True
    unreachable_hint = "Ardour: Edit > Preferences > Control Surfaces > Open Sound Control enabled"
    ports_hint = "its OSC port must be {port} (the port this command sent to; --port)"
    strip_paths = ("trim.gain_db", "polarity.invert", "fader.fader_db", "fader.mute", "pan.pan")
    fader_off_db = ARDOUR_FADER_OFF_DB
    #: The surface with value feedback (Ardour then sends every strip's state, which a pull reads) and
    #: select feedback (:data:`SELECT_FEEDBACK`, for polarity).
    HANDSHAKE = (OscMessage("/set_surface", (0, 31, 16387 | SELECT_FEEDBACK, 2, 0, 0)),
                 OscMessage("/set_surface/port", (0,)))
    #: The same surface without value feedback (16384 = only "/reply" instead of "#reply"): a push
    #: does not need Ardour's full strip dump (~40 messages per strip, ~1 s for 64 strips).
    HANDSHAKE_QUIET = (OscMessage("/set_surface", (0, 31, 16384, 2, 0, 0)), OscMessage("/set_surface/port", (0,)))

    def setup_messages(self, n_tracks: int) -> list[OscMessage]:
        """The quiet surface handshake (:attr:`HANDSHAKE_QUIET`)."""
        return list(self.HANDSHAKE_QUIET)

    def strip_messages(self, position, path, value, *, where="", clamp=False, clamped=None):
        """``/strip/gain`` and ``/strip/trimdB`` (dB), ``/strip/polarity`` and ``/strip/mute`` (0/1),
        ``/strip/pan_stereo_position`` (inverted position)."""
        ssid = position + 1
        if path == "fader.fader_db":
            v = fits(value, -math.inf, ARDOUR_MAX_GAIN_DB, path, where, clamp, clamped,
                     "Ardour clamps the fader at +6.02 dB: lower it, or pass --clamp to send +6.02 dB")
            return [OscMessage("/strip/gain", (ssid, float(v)))]
        if path == "trim.gain_db":
            v = fits(value, *ARDOUR_TRIM_RANGE_DB, path, where, clamp, clamped,
                     "Ardour's trim spans -20..+20 dB: move the rest to the fader, or pass --clamp")
            return [OscMessage("/strip/trimdB", (ssid, float(v)))]
        if path == "polarity.invert":
            return [OscMessage("/strip/polarity", (ssid, 1 if value >= 0.5 else 0))]
        if path == "fader.mute":
            return [OscMessage("/strip/mute", (ssid, 1 if value >= 0.5 else 0))]
        if path == "pan.pan":
            return [OscMessage("/strip/pan_stereo_position", (ssid, float(ardour_position_from_pan(value))))]
        raise KeyError(path)

    master_gain_carrier = "Ardour's master fader (/master/gain), above +6.02 dB the rest on its trim (/master/trimdB)"
    master_gain_range_db = (-math.inf, ARDOUR_MAX_GAIN_DB + ARDOUR_TRIM_RANGE_DB[1])

    def master_gain_messages(self, gain_db):
        """``/master/gain dB`` up to the fader's +6.02 dB and ``/master/trimdB dB`` with the rest (0 dB when
        the fader takes it all, so a stale trim never stays): fader + trim = ``gain_db``.
        (``/master/*`` is ``_strip_parse`` on the master strip in osc.cc; the fader clamps at +6.02 dB.)"""
        fader = min(float(gain_db), ARDOUR_MAX_GAIN_DB)
        trim = float(gain_db) - fader
        return [OscMessage("/master/trimdB", (float(trim),)), OscMessage("/master/gain", (float(fader),))]

    def plugin_message(self, position, slot, index, wire_value):
        """``/strip/plugin/parameter ssid piid param value`` (native units)."""
        return OscMessage("/strip/plugin/parameter", (position + 1, slot, index, float(wire_value)))

    def send_message(self, position, send_id, send_db):
        """``/strip/send/gain ssid sendid dB``; the schema's -80 dB ("off") becomes Ardour's -193 dB."""
        off = send_db <= CHANNEL_STRIP.param(SEND_PATH).min
        return OscMessage("/strip/send/gain", (position + 1, send_id, ARDOUR_SEND_OFF_DB if off else float(send_db)))

    def query_tracks(self, client, *, max_tracks=64):
        """``/strip/list`` after the quiet handshake: tracks and buses, positions ``ssid - 1``."""
        return [DawTrack(ssid - 1, name) for ssid, name, _ in ardour_list_strips(client)]

    def strip_layouts(self, client, tracks):
        """Each strip's plugins (``/strip/plugin/list``) and first aux send (``/strip/sends``), pipelined."""
        ssids = [d.position + 1 for d in tracks]
        listed = ardour_plugin_list_many(client, ssids)
        sends = ardour_sends_many(client, ssids)
        layouts = {}
        for d in tracks:
            first_send = sends[d.position + 1][0][2] if sends[d.position + 1] else None
            target = sends[d.position + 1][0][0] - 1 if sends[d.position + 1] else None
            present = {name: (piid, active) for piid, name, active in reversed(listed[d.position + 1])}
            slots = {slot: present[name][0] if name in present else None for slot, name in self.plugin_map.slots}
            bypassed = {slot for slot, name in self.plugin_map.slots if name in present and not present[name][1]}
            layouts[d.position] = StripLayout(slots, send_id=first_send, bypassed=bypassed, send_target=target)
        return layouts

    def pull_tracks(self, client, feedback, *, max_tracks=64, clamp=False, sample_rate=48000):
        """Gain, trim, mute and pan from the handshake's feedback, polarity from select feedback
        (:func:`ardour_polarities`), the first send from ``/strip/sends``, plugin values from
        ``/strip/plugin/descriptor``; the session's sample rate from ``/strip/list`` (used for the
        plugin conversions instead of ``sample_rate``)."""
        strips, reported_rate = ardour_strip_list(client, feedback=True)
        client.pump(0.1)  # the handshake's strip feedback keeps arriving for a moment
        sample_rate = reported_rate or sample_rate
        sends = ardour_sends_many(client, [ssid for ssid, _, _ in strips])
        polarity = ardour_polarities(client, [(ssid, name) for ssid, name, _ in strips])
        send_off_db = CHANNEL_STRIP.param(SEND_PATH).min
        reads: dict[str, tuple[str, Callable[[float], float]]] = {
            FADER_PATH: ("/strip/gain", float),
            "trim.gain_db": ("/strip/trimdB", float),
            "fader.mute": ("/strip/mute", float),
            "pan.pan": ("/strip/pan_stereo_position", pan_from_ardour_position),
        }
        pulled = PulledTracks(sample_rate=reported_rate)
        bus = reverb_bus_ssid(strips, sends)
        for ssid, name, _type in strips:
            where = f"track '{name}' "
            if ssid == bus:  # the reverb bus: its fader is the master's reverb return, not a session track
                row = feedback.last("/strip/gain", (ssid,))
                if row is None or len(row) < 2:
                    pulled.not_read.append(f"master.reverb.return_db (no /strip/gain for bus '{name}')")
                else:
                    pulled.master_params["reverb.return_db"] = store_return(float(row[1]), name, clamp, pulled)
                pulled.ignored.append(f"bus '{name}' (strip {ssid}): the reverb bus every track's first aux send "
                                      "feeds; its fader is read as master.reverb.return_db")
                continue
            t = self.new_track(name)
            for path, (address, conv) in reads.items():
                row = feedback.last(address, (ssid,))
                if row is None or len(row) < 2:
                    pulled.not_read.append(f"{name}: {path}")
                    continue
                if path == FADER_PATH:
                    store_fader(t.params, conv(float(row[1])), self.fader_off_db, where, clamp, pulled)
                else:
                    store_value(t.params, path, conv(float(row[1])), where, clamp, pulled.clamped)
            if ssid in polarity:
                store_value(t.params, "polarity.invert", polarity[ssid], where, clamp, pulled.clamped)
            else:
                pulled.not_read.append(f"{name}: polarity.invert (Ardour sent no /select/polarity for the strip)")
            if sends[ssid]:  # the first aux send; an inactive or silent send is the schema's "off"
                _target, _send_name, _send_id, position, active = sends[ssid][0]
                send_db = ardour_send_db_from_position(position) if active else float("-inf")
                store_value(t.params, SEND_PATH, send_off_db if send_db == float("-inf") else send_db, where, clamp,
                            pulled.clamped)
            else:
                pulled.not_read.append(f"{name}: {SEND_PATH} (no aux send on the strip)")
            present = ardour_plugins(client, ssid)
            for plug in self.plugin_map.plugins:
                piid = present.get(plug.name)
                if piid is None:
                    pulled.not_read.extend(f"{name}: {p} (no {plug.name} on the strip)" for p in plug.paths)
                    continue
                desc = ardour_descriptor(client, ssid, piid)
                wire = {p.name: desc[p.index][3] for p in plug.params.values()
                        if p.index in desc and desc[p.index][0] == p.name}
                read_plugin(t, plug, wire, name, where, pulled, clamp, sample_rate)
            pulled.add(t)
        return pulled


def reverb_bus_ssid(strips: Sequence[tuple[int, str, str]], sends: dict[int, list]) -> int | None:
    """The ssid of the reverb bus: the one audio bus (strip type ``B``) that the first aux send of every strip
    with sends feeds (None: no send, or sends to several strips)."""
    types = {ssid: kind for ssid, _, kind in strips}
    targets = {rows[0][0] for ssid, rows in sends.items() if rows and types.get(ssid) != "B"}
    if len(targets) == 1:
        (target,) = targets
        return target if types.get(target) == "B" else None
    return None


def store_return(value_db: float, bus: str, clamp: bool, pulled: PulledTracks) -> float:
    """The reverb bus fader (dB; at or below :data:`ARDOUR_FADER_OFF_DB` it is silent) as
    ``master.reverb.return_db``: silence is the schema's minimum (listed in ``pulled.silenced``).

    Raises:
        DawRangeError: an audible level outside the schema range and not ``clamp``.
    """
    from mixbridge.schema import MASTER_BUS

    from .errors import DawRangeError

    param = MASTER_BUS.param("reverb.return_db")
    if value_db <= ARDOUR_FADER_OFF_DB:
        pulled.silenced.append(f"bus '{bus}' fader reads {value_db:g} dB (-inf): master.reverb.return_db stored as "
                               f"{param.min:g} dB, the schema's minimum")
        return param.min
    v = value_db
    for limit in (param.min, param.max):  # float32 read-back at a limit
        if abs(v - limit) <= READBACK_EDGE_REL * max(1.0, abs(limit)):
            v = limit
    if not param.min <= v <= param.max:
        if not clamp:
            raise DawRangeError(f"bus '{bus}' fader reads {v:g} dB, outside master.reverb.return_db's "
                                f"{param.range_text()}; change it in Ardour or pass --clamp")
        nv = min(max(v, param.min), param.max)
        pulled.clamped.append(f"master.reverb.return_db (bus '{bus}'): {v:g} -> {nv:g}")
        v = nv
    return v


# ------------------------------------------------------------------------------ queries
def ardour_list_strips(client: OscUdpClient, *, feedback: bool = False) -> list[tuple[int, str, str]]:
    """Handshake and ``/strip/list``: ``[(ssid, name, type), ...]`` for tracks and buses
    (see :func:`ardour_strip_list`).

    Raises:
        DawUnreachableError: no reply within the client's timeout.
    """
    return ardour_strip_list(client, feedback=feedback)[0]


def ardour_strip_list(client: OscUdpClient, *, feedback: bool = False) -> tuple[list[tuple[int, str, str]], int | None]:
    """Handshake and ``/strip/list``: ``([(ssid, name, type), ...], sample rate in Hz or None)``.

    ``feedback=True`` registers the surface with value and select feedback, so Ardour also sends
    every strip's state (gain, trim, pan, mute), which a pull reads. The sample rate is the second
    argument of the closing ``/reply end_route_list`` (None if Ardour left it out).

    Raises:
        DawUnreachableError: no reply within the client's timeout.
    """
    rows: list[tuple[int, str, str]] = []
    done = ReplyCollector("/reply", done=lambda m: bool(m.args) and m.args[0] == "end_route_list")
    handshake = ArdourProfile.HANDSHAKE if feedback else ArdourProfile.HANDSHAKE_QUIET
    with client.router.routed("/reply", done):
        client.query(list(handshake) + [OscMessage("/strip/list")], done.finished.is_set,
                     what="/strip/list", quiet_s=None)
    rate = None
    for m in done.messages:
        a = m.args
        if len(a) >= 7 and a[0] in ("AT", "MT", "B", "MB") and isinstance(a[6], int):
            rows.append((a[6], str(a[1]), str(a[0])))
        elif len(a) >= 2 and a[0] == "end_route_list" and isinstance(a[1], int) and a[1] > 0:
            rate = int(a[1])
    return sorted(rows), rate


def ardour_polarities(client: OscUdpClient, strips: Sequence[tuple[int, str]]) -> dict[int, float]:
    """Each strip's polarity (0/1) through select feedback: ``{ssid: 0.0 | 1.0}``, strips that did not
    answer left out.

    The surface must have select feedback on (:attr:`ArdourProfile.HANDSHAKE`). One strip at a time:
    ``/strip/expand ssid 1``, then the first ``/select/polarity`` after the ``/select/name`` naming that
    strip (Ardour sends the name first; the ``/select`` messages carry no ssid). About 5-10 ms per strip
    (Ardour 7.3). The last strip is un-expanded at the end (``/strip/expand ssid 0``).

    Raises:
        DawUnreachableError: nothing at all came back for a strip within the client's timeout.
    """
    got: dict[int, float] = {}
    cur: dict = {}

    def on_select(m: OscMessage) -> None:
        if m.address == "/select/name" and m.args:
            cur["named"] = str(m.args[0]) == cur.get("name")
        elif m.address == "/select/polarity" and m.args and cur.get("named") and "value" not in cur:
            cur["value"] = float(m.args[0])

    with client.router.routed("/select/**", on_select):
        for ssid, name in strips:
            cur.clear()
            cur["name"] = name
            client.query([OscMessage("/strip/expand", (ssid, 1))], lambda: "value" in cur,
                         what=f"/strip/expand {ssid} 1 (polarity of '{name}')", quiet_s=None)
            if "value" in cur:
                got[ssid] = cur["value"]
        if strips:
            client.send(OscMessage("/strip/expand", (strips[-1][0], 0)))
    return got


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
                                  f"{client.timeout_s:g} s; raise --timeout-s")
    return got


def _plugin_rows(args) -> list[tuple[int, str, bool]]:
    return [(int(args[i]), str(args[i + 1]), bool(int(args[i + 2]))) for i in range(0, len(args) - 2, 3)]


def _plugin_names(args) -> dict[str, int]:
    names: dict[str, int] = {}
    for piid, name, _active in _plugin_rows(args):  # piid, name, active
        names.setdefault(name, piid)
    return names


def ardour_plugins(client: OscUdpClient, ssid: int) -> dict[str, int]:
    """``/strip/plugin/list ssid`` -> ``{plugin name: piid}`` (see :func:`ardour_plugins_many`)."""
    return ardour_plugins_many(client, [ssid])[ssid]


def ardour_plugins_many(client: OscUdpClient, ssids: Sequence[int]) -> dict[int, dict[str, int]]:
    """``/strip/plugin/list`` for many strips, pipelined: all queries first, then the replies.

    Raises:
        DawUnreachableError: not every strip answered within the client's timeout.
    """
    return _per_strip_query(client, "/strip/plugin/list", ssids, _plugin_names, "plugins")


def ardour_plugin_list_many(client: OscUdpClient, ssids: Sequence[int]) -> dict[int, list[tuple[int, str, bool]]]:
    """``/strip/plugin/list`` for many strips, pipelined: ``{ssid: [(piid, name, active), ...]}`` in strip order
    (``active`` False: the plugin is bypassed).

    Raises:
        DawUnreachableError: not every strip answered within the client's timeout.
    """
    return _per_strip_query(client, "/strip/plugin/list", ssids, _plugin_rows, "plugins")


def ardour_sends_many(client: OscUdpClient, ssids: Sequence[int]) -> dict[int, list[tuple[int, str, int, float, int]]]:
    """``/strip/sends`` for many strips, pipelined: ``{ssid: [(target ssid, name, sendid, fader position,
    active), ...]}`` per aux send, in strip order (an empty list for a strip without sends).

    Raises:
        DawUnreachableError: not every strip answered within the client's timeout.
    """
    return _per_strip_query(
        client, "/strip/sends", ssids,
        lambda a: [(int(a[i]), str(a[i + 1]), int(a[i + 2]), float(a[i + 3]), int(a[i + 4]))
                   for i in range(0, len(a) - 4, 5)],
        "sends")


def ardour_descriptor(client: OscUdpClient, ssid: int, piid: int) -> dict[int, tuple[str, float, float, float]]:
    """``/strip/plugin/descriptor`` -> ``{param id: (name, lower, upper, current value)}``.

    Raises:
        DawUnreachableError: no reply within the client's timeout.
    """
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
