"""A saved Ardour 7 session (``.ardour`` XML) read back into mixbridge tracks, master and automation curves.

OSC reports a DAW's current values only; the automation lanes Ardour plays live in the session file.
:func:`read_ardour_session` reads that file, after :func:`save_ardour_state` has asked a running Ardour
to write it (``/save_state``), and maps every value back through the very laws a push uses, inverted:
gains and sends are Ardour's gain coefficients (``dB = 20 log10(g)``; gain 0 is the fader's -inf, see
:func:`~mixbridge.bridge.profiles.store_fader`, and the send's "off"), the pan is Ardour's azimuth (0 left
.. 1 right; :func:`~mixbridge.bridge.profile_ardour.pan_from_ardour_position` of ``1 - azimuth``),
polarity the route's phase bit mask, the plugin controls ACE EQ's and ACE Compressor's native values
inverted through the Ardour DAW map (:meth:`~mixbridge.bridge.plugin_maps.DawPlugin.read_back`, the laws
of :mod:`mixbridge.bridge.ace_laws`).

What the XML holds (Ardour 7.3, checked in ``tests/bridge/test_ardour_roundtrip.py``): each ``Route``
carries ``PresentationInfo`` (``order``, ``flags`` ``AudioTrack`` / ``AudioBus`` / ``MasterOut``),
``Controllable`` ``mute`` and ``phase`` (bit mask over the inputs), ``Pannable/Controllable pan-azimuth``,
and ``Processor`` elements: ``trim`` (``trimcontrol``), ``amp`` (``gaincontrol``), ``intsend``
(``target`` = the bus route's id, ``gaincontrol``), ``lv2`` (``Controllable parameter=N`` in native
units). An ``AutomationList`` (``automation-id`` ``gain``, ``trim``, ``mute``, ``pan-azimuth``, ``send``,
``parameter-N``) holds ``events``, one ``<time> <value>`` per line; a time is ``a<superclock>`` (audio
time, ``TempoMap superclocks-per-second``, 282 240 000) or ``b<ticks>`` (musical time, 1920 ticks per
quarter note, converted through the session's tempo; only a single constant tempo is read, a lane under
tempo changes is listed as not read). Lanes in ``Off`` (Ardour's "Manual") are not played and not read.

The static value of an automated parameter is its curve's first value: Ardour's saved control value
under a lane in Play is sometimes the static value last set (the fader) and sometimes the curve's value at
the playhead (pan, sends, plugins; Ardour 7.3), and a render holds the curve's first value before the
curve starts anyway. A curve whose values are all equal within :data:`CONSTANT_REL` is a static value,
not a curve (ACE EQ's shelf frequency lane, written because it depends on the automated shelf
gain, reads back as the constant frequency it is).
"""
from __future__ import annotations

import math
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mixbridge.schema import CHANNEL_STRIP, MASTER_BUS
from mixbridge.session import Automation, Master, Track

from .errors import ArdourError
from .osc import OscMessage
from .profile_ardour import ArdourProfile, pan_from_ardour_position, store_return
from .profiles import FADER_PATH, SEND_PATH, PulledTracks, store_fader, store_value
from .transport import LOCALHOST, OscUdpClient

#: Ardour's superclock rate (ticks per second of audio time; ``temporal/superclock.h``), when the session
#: file names none.
SUPERCLOCK_HZ = 282_240_000
#: Ardour's musical ticks per quarter note (``Temporal::ticks_per_beat``).
TICKS_PER_BEAT = 1920
#: A lane's read-back values whose spread is within this fraction of their magnitude (at least 1) are one
#: constant: Ardour stores plugin values as float32 (6e-8 relative) and inverting a law by bisection is
#: exact to float64, so a constant curve spreads less than 1e-6.
CONSTANT_REL = 1e-6
#: A boolean lane's step, seconds: its held value ends this long before the next event (one sample at 192 kHz,
#: far below the 10 ms of a 100 Hz automation schedule).
STEP_S = 1.0 / 192000
#: Lane ids of the channel strip outside plugins: (processor type or "" for the route, automation-id) -> path.
STRIP_LANES = {("amp", "gain"): FADER_PATH, ("trim", "trim"): "trim.gain_db", ("", "mute"): "fader.mute",
               ("pannable", "pan-azimuth"): "pan.pan", ("intsend", "send"): SEND_PATH}
#: Automation states Ardour plays back (``ARDOUR::AutoState``; ``Off`` is the GUI's "Manual").
PLAYED_STATES = ("Play", "Touch", "Latch", "Write")
#: Master-bus parameters an Ardour session carries: the reverb bus's fader is ``reverb.return_db``.
MASTER_CARRIED = ("reverb.return_db",)


@dataclass
class ArdourSessionRead:
    """What :func:`read_ardour_session` read: tracks (static values and ``automation``), the master (solved
    gain from the master fader plus trim; the reverb bus's fader as ``reverb.return_db``), the session's
    sample rate (Hz), the reverb bus's name (None: no bus is the target of the tracks' first aux sends),
    and the report lists of a pull (``not_read``, ``clamped``, ``silenced``)."""

    tracks: list[Track]
    master: Master
    sample_rate: int
    bus_name: str | None
    not_read: list[str] = field(default_factory=list)
    clamped: list[str] = field(default_factory=list)
    silenced: list[str] = field(default_factory=list)


def _db(gain: float) -> float:
    """An Ardour gain coefficient -> dB (``-inf`` at 0)."""
    return 20.0 * math.log10(gain) if gain > 0.0 else -math.inf


class _Clock:
    """Event times -> seconds: audio time through the superclock, musical time through one constant tempo."""

    def __init__(self, root: ET.Element):
        tm = root.find("TempoMap")
        self.superclock_hz = float(tm.get("superclocks-per-second", SUPERCLOCK_HZ)) if tm is not None \
            else float(SUPERCLOCK_HZ)
        tempos = tm.findall("Tempos/Tempo") if tm is not None else []
        self.quarters_per_s: float | None = None
        self.why = "the session has no tempo map"
        if len(tempos) == 1 and tempos[0].get("type", "Tempo::Constant").endswith("Constant"):
            t = tempos[0]
            npm = float(t.get("npm", "120"))
            note_type = float(t.get("note-type", "4"))
            self.quarters_per_s = npm * 4.0 / note_type / 60.0
        elif tempos:
            self.why = f"the session has {len(tempos)} tempos or a ramped tempo; mixbridge reads musical-time " \
                       "lanes under one constant tempo only"

    def seconds(self, when: str) -> float:
        """``a<superclock>`` or ``b<ticks>`` -> seconds from the timeline's origin.

        Raises:
            ArdourError: a musical time under a tempo map mixbridge does not read, or an unknown time format.
        """
        if when[0] == "a":
            return int(when[1:]) / self.superclock_hz
        if when[0] == "b":
            if self.quarters_per_s is None:
                raise ArdourError(self.why)
            return int(when[1:]) / TICKS_PER_BEAT / self.quarters_per_s
        raise ArdourError(f"event time {when!r} is neither audio (a...) nor musical (b...) time")


def _events(al: ET.Element, clock: _Clock) -> list[tuple[float, float]]:
    ev = al.find("events")
    rows = []
    for line in (ev.text or "").splitlines() if ev is not None else []:
        if line.strip():
            when, value = line.split()
            rows.append((clock.seconds(when), float(value)))
    return rows


def _lane(parent: ET.Element | None, aid: str) -> ET.Element | None:
    if parent is None:
        return None
    for al in parent.findall("Automation/AutomationList"):
        if al.get("automation-id") == aid:
            return al
    return None


def _controllable(parent: ET.Element | None, name: str) -> ET.Element | None:
    if parent is None:
        return None
    return next((c for c in parent.findall("Controllable") if c.get("name") == name), None)


def _flags(route: ET.Element) -> str:
    pi = route.find("PresentationInfo")
    return pi.get("flags", "") if pi is not None else ""


def _order(route: ET.Element) -> int:
    pi = route.find("PresentationInfo")
    return int(pi.get("order", "0")) if pi is not None else 0


def save_ardour_state(session_file: str | Path, *, host: str = LOCALHOST, port: int = ArdourProfile.default_port,
                      timeout_s: float = 10.0, settle_s: float = 0.5) -> None:
    """Ask a running Ardour to ``/save_state`` and wait until ``session_file`` is rewritten.

    Waits ``settle_s`` first: real-time controls (mute) take effect in a later process cycle, while
    ``/save_state`` runs at once (measured: a mute sent just before was missing from the XML).

    Raises:
        ArdourError: the file was not rewritten within ``timeout_s`` (Ardour has another session open,
            or none).
    """
    path = Path(session_file)
    time.sleep(settle_s)
    before = path.stat().st_mtime_ns
    with OscUdpClient(host, port) as c:
        c.send(OscMessage("/save_state"))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.stat().st_mtime_ns != before:
            time.sleep(0.2)  # let Ardour's rename settle
            try:
                ET.parse(path)
                return
            except ET.ParseError:
                pass
        time.sleep(0.05)
    raise ArdourError(f"Ardour at {host}:{port} did not rewrite {path} within {timeout_s:g} s after /save_state; "
                      "give the .ardour file of the session Ardour has open (--ardour-session)")


def _first_send(route: ET.Element) -> ET.Element | None:
    return next((p for p in route.findall("Processor") if p.get("type") == "intsend"), None)


def _schema_point(path: str, value: float, where: str, clamp: bool, clamped: list[str]) -> float:
    """One read-back value in schema units through :func:`~mixbridge.bridge.profiles.store_value`'s rules."""
    scratch = CHANNEL_STRIP.defaults()
    store_value(scratch, path, value, where, clamp, clamped)
    proc, name = path.split(".")
    return float(scratch[proc][name])


def _strip_value(path: str, raw: float) -> float:
    """An Ardour control value -> the schema value before range checks (fader/send gain 0 -> -inf)."""
    if path in (FADER_PATH, "trim.gain_db", SEND_PATH):
        return _db(raw)
    if path == "pan.pan":
        return pan_from_ardour_position(1.0 - raw)  # azimuth 0 left .. 1 right = 1 - OSC position
    return raw  # mute 0/1


def read_ardour_session(session_file: str | Path, *, clamp: bool = False) -> ArdourSessionRead:
    """Read a saved Ardour 7 session: every audio track and bus (in Ardour's order, as the OSC pull lists
    strips) as a session track with its static values and its played automation lanes as
    ``Track.automation`` curves ``(times_s, schema values)``, the master (see :class:`ArdourSessionRead`),
    and the sample rate (Hz) from the XML.

    The reverb bus (the one bus every track's first aux send feeds) is no track: its fader is
    ``master.reverb.return_db``.

    Raises:
        ArdourError: the file is not an Ardour session.
        DawRangeError: a value outside the schema range (unless ``clamp``: then stored at the limit and listed).
    """
    path = Path(session_file)
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        raise ArdourError(f"cannot read the Ardour session {path}: {e}; give a saved .ardour file") from None
    if root.tag != "Session":
        raise ArdourError(f"{path} is not an Ardour session file (root <{root.tag}>); give the session's .ardour file")
    profile = ArdourProfile()
    dm = profile.plugin_map
    clock = _Clock(root)
    sample_rate = int(root.get("sample-rate", "48000"))
    routes = sorted(root.findall("Routes/Route") or list(root.iter("Route")), key=_order)
    by_id = {r.get("id"): r for r in routes}
    sends = [_first_send(r) for r in routes if "AudioTrack" in _flags(r)]
    targets = {s.get("target") for s in sends if s is not None}
    bus = by_id.get(next(iter(targets))) if len(targets) == 1 else None
    if bus is not None and "AudioBus" not in _flags(bus):
        bus = None
    # as the OSC pull: audio tracks and buses in Ardour's order, the reverb bus being the master's return
    tracks_xml = [r for r in routes if ("AudioTrack" in _flags(r) or "AudioBus" in _flags(r)) and r is not bus]
    pulled = PulledTracks(sample_rate=sample_rate)
    out = ArdourSessionRead([], Master(MASTER_BUS.defaults()), sample_rate, bus.get("name") if bus is not None
                            else None)
    for r in tracks_xml:
        name = r.get("name", "")
        where = f"track '{name}' "
        t = profile.new_track(name)
        procs = r.findall("Processor")
        amp = next((p for p in procs if p.get("type") == "amp"), None)
        trim = next((p for p in procs if p.get("type") == "trim"), None)
        send = _first_send(r)
        pannable = r.find("Pannable")
        parents = {"amp": amp, "trim": trim, "": r, "pannable": pannable, "intsend": send}
        controls = {FADER_PATH: (amp, "gaincontrol"), "trim.gain_db": (trim, "trimcontrol"),
                    "fader.mute": (r, "mute"), "pan.pan": (pannable, "pan-azimuth"), SEND_PATH: (send, "gaincontrol")}
        for p, (parent, cname) in controls.items():
            c = _controllable(parent, cname)
            if c is None:
                why = "no aux send on the track" if p == SEND_PATH else f"no {cname} control in the session file"
                pulled.not_read.append(f"{name}: {p} ({why})")
                continue
            v = _strip_value(p, float(c.get("value", "nan")))
            if p == SEND_PATH and (v == -math.inf or (send is not None and send.get("active", "1") == "0")):
                v = CHANNEL_STRIP.param(SEND_PATH).min  # an inactive or silent send is the schema's "off"
            if p == FADER_PATH:
                store_fader(t.params, v, profile.fader_off_db, where, clamp, pulled)
            else:
                store_value(t.params, p, v, where, clamp, pulled.clamped)
        phase = _controllable(r, "phase")
        if phase is not None:
            bits = phase.get("phase-invert", "")
            store_value(t.params, "polarity.invert", 1.0 if bits and set(bits) == {"1"} else 0.0, where, clamp,
                        pulled.clamped)
            if "1" in bits and "0" in bits:
                pulled.not_read.append(f"{name}: polarity.invert (Ardour inverts {bits.count('1')} of {len(bits)} "
                                       "input channels; the schema's one switch is stored as 0)")
        for (ptype, aid), p in STRIP_LANES.items():
            al = _lane(parents[ptype], aid)
            if al is None or al.get("state") not in PLAYED_STATES:
                continue
            try:
                events = _events(al, clock)
            except ArdourError as e:
                pulled.not_read.append(f"{name}: automation {p} ({e})")
                continue
            if events:
                _store_curve(t, p, [(s, _strip_value(p, v)) for s, v in events], where, clamp, pulled)
        _read_plugins(t, procs, dm, name, where, clamp, sample_rate, clock, pulled)
        pulled.add(t)
    master = next((r for r in routes if "MasterOut" in _flags(r)), None)
    if master is not None:
        mp = {p.get("type"): p for p in master.findall("Processor")}
        g = _controllable(mp.get("amp"), "gaincontrol")
        tr = _controllable(mp.get("trim"), "trimcontrol")
        if g is not None:
            db = _db(float(g.get("value", "1"))) + (_db(float(tr.get("value", "1"))) if tr is not None else 0.0)
            out.master.solved_gain_db = db if math.isfinite(db) else None
    if bus is not None:
        bp = {p.get("type"): p for p in bus.findall("Processor")}
        g = _controllable(bp.get("amp"), "gaincontrol")
        if g is not None:
            db = _db(float(g.get("value", "1")))
            out.master.params["reverb"]["return_db"] = store_return(db, bus.get("name", ""), clamp, pulled)
    out.not_read += [f"master.{p} (Ardour's master and reverb bus carry no mixbridge plugin; left at the default)"
                     for p, _ in MASTER_BUS.flat_params() if p not in MASTER_CARRIED]
    out.tracks = pulled.tracks
    out.not_read[:0] = pulled.not_read
    out.clamped[:0] = pulled.clamped
    out.silenced = pulled.silenced
    return out


def _store_curve(t: Track, path: str, points: list[tuple[float, float]], where: str, clamp: bool,
                 pulled: PulledTracks) -> None:
    """A lane's points (schema values before range checks) as ``t.automation[path]``, or as the static value
    when they are one constant (:data:`CONSTANT_REL`). A fader point at gain 0 is the schema's minimum.

    Two events at one time (a vertical step drawn in Ardour) are :data:`STEP_S` apart, since a session curve's
    times increase strictly. A boolean lane is Ardour's "Discrete" one: each value holds until the next
    event, so the piecewise-linear curve gets the held value again :data:`STEP_S` before each change."""
    param = CHANNEL_STRIP.param(path)
    vals = []
    for _, v in points:
        if path == FADER_PATH and v <= ArdourProfile.fader_off_db:
            v = param.min  # silence inside a fader curve: the schema's -48 dB (a curve carries no mute)
        if path == SEND_PATH and v == -math.inf:
            v = param.min
        vals.append(_schema_point(path, v, where, clamp, pulled.clamped))
    proc, name = path.split(".")
    if max(vals) - min(vals) <= CONSTANT_REL * max(1.0, abs(vals[0])):
        t.params[proc][name] = vals[0]
        return
    times = [float(s) for s, _ in points]
    for i in range(1, len(times)):  # a vertical step (two events at one time) becomes one STEP_S wide
        if times[i] <= times[i - 1]:
            times[i] = times[i - 1] + STEP_S
    if param.kind == "bool":
        st, sv = [times[0]], [vals[0]]
        for s, v in zip(times[1:], vals[1:]):
            if v != sv[-1] and s - STEP_S > st[-1]:
                st.append(s - STEP_S)
                sv.append(sv[-1])
            st.append(s)
            sv.append(v)
        times, vals = st, sv
    t.automation[path] = Automation(times, vals)
    t.params[proc][name] = vals[0]  # the value the curve starts at (see the module docstring)


def _read_plugins(t: Track, procs: list[ET.Element], dm, name: str, where: str, clamp: bool, sample_rate: int,
                  clock: _Clock, pulled: PulledTracks) -> None:
    """Each mapped plugin (the nth processor of its name, as the daw-script places them): static values through
    :func:`~mixbridge.bridge.profiles.read_plugin`'s inversion, and the lanes of its parameters as schema curves."""
    from .profiles import read_plugin

    seen: dict[str, int] = {}
    for plug in dm.plugins:
        seen[plug.name] = seen.get(plug.name, 0) + 1
        same = [p for p in procs if p.get("type") == "lv2" and p.get("name") == plug.name]
        if len(same) < seen[plug.name]:
            pulled.not_read.extend(f"{name}: {p} (no {plug.name} on the track)" for p in plug.paths)
            continue
        node = same[seen[plug.name] - 1]
        if node.get("active", "1") == "0":
            pulled.not_read.append(f"{name}: {plug.name} is bypassed in Ardour (its values are read all the same)")
        by_index = {int(c.get("parameter", "-1")): float(c.get("value", "nan")) for c in node.findall("Controllable")
                    if c.get("parameter") is not None}
        wire = {p.name: by_index[p.index - dm.index_base] for p in plug.params.values()
                if p.index - dm.index_base in by_index}
        read_plugin(t, plug, wire, name, where, pulled, clamp, sample_rate)
        lanes: dict[str, tuple[list[float], list[float], bool]] = {}
        for p in plug.params.values():
            al = _lane(node, f"parameter-{p.index - dm.index_base}")
            if al is None or al.get("state") not in PLAYED_STATES:
                continue
            try:
                ev = _events(al, clock)
            except ArdourError as e:
                pulled.not_read.append(f"{name}: automation of {plug.name} '{p.name}' ({e})")
                continue
            if ev:
                lanes[p.name] = ([s for s, _ in ev], [v for _, v in ev], al.get("interpolation-style") == "Logarithmic")
        if not lanes:
            continue
        # the schema sources a lane moves, and the ones their laws need (ACE EQ's shelf frequency needs its gain)
        moved = {b.source for b in plug.driven if b.param in lanes}
        need = moved | {w for b in plug.driven if b.source in moved for w in b.with_}
        sub = {b.param: wire.get(b.param) for b in plug.driven if b.source in need}
        times = sorted({s for ts, _, _ in lanes.values() for s in ts})
        series: dict[str, list[float]] = {s: [] for s in moved}
        for s in times:
            w = dict(sub)
            for pname, (ts, vs, log) in lanes.items():
                if pname in w:
                    w[pname] = float(np.exp(np.interp(s, ts, np.log(vs)))) if log and min(vs) > 0 else \
                        float(np.interp(s, ts, vs))
            got, _missing = plug.read_back({k: v for k, v in w.items() if v is not None}, sample_rate)
            for src in moved:
                if src in got:
                    series[src].append(got[src])
        proc = plug.processor.name
        for src, vals in series.items():
            if len(vals) == len(times):
                _store_curve(t, f"{proc}.{src}", list(zip(times, vals)), where, clamp, pulled)
            else:
                pulled.not_read.append(f"{name}: automation {proc}.{src} ({plug.name} lanes lack a value it needs)")
