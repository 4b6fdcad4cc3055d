"""MIDI output of automation: a Standard MIDI File with one CC lane per parameter, and live
control changes through mido (JACK MIDI here).

**Mapping** (the same for the file and live output; :func:`cc_table` returns it):

* session track *i* -> MIDI port ``i // 16``, channel ``i % 16`` (:func:`track_port_channel`). In
  the file each session track has its own MIDI track, named after it, that starts with a MIDI port
  meta event (``FF 21 01 pp``) and a text event per lane, so tracks 0, 16 and 32 are channel 1 of
  ports 0, 1 and 2, never one shared channel. At most :data:`MAX_MIDI_PORTS` ports (4096 tracks);
* each channel-strip parameter -> a fixed controller number. Faders and pan use the General
  MIDI controllers (CC7 volume, CC10 pan); everything else uses controllers that MIDI 1.0
  leaves undefined (20-31, 85-89, 102-107), never 32-63 (the LSBs of CC0-31: a DAW may pair
  CC39 with CC7 as 14-bit volume), 64-69 (pedals), 96-101 (RPN/NRPN) or 120-127 (mode);
* value: the fader (CC7) on the **General MIDI volume law**, ``gain_db = 40 log10(v / 127)``
  (:mod:`mixbridge.gm`; 127 = 0 dB, 100 = -4.2 dB, 8 = -48 dB), so a GM synth or a DAW that
  follows GM plays the level the session says; a fader above 0 dB cannot be written and is
  sent as 127 (0 dB) with a notice. Every other parameter is ``round(127 * u)``, ``u`` the
  schema's normalised value (``Param.to_normalised``: linear for dB and pan, logarithmic for Hz,
  Q, ratio and times). 7-bit steps: CC7 0.14 dB near 0 dB, 0.5 dB at -20 dB, 2 dB at -48 dB
  (``40 log10((v + 1) / v)``); the other dB lanes 1/127 of their range (0.19 dB on +-12 dB EQ gains,
  0.38 dB on the +-24 dB trim);
* **14-bit option** (``cc14=True``, ``mixbridge midi-export --cc14``): the fader and pan lanes become
  MSB/LSB pairs as MIDI 1.0 defines them for controllers 0-31, CC7 + CC39 (volume) and CC10 + CC42
  (pan): ``v = 128 * MSB + LSB`` on 0..16383, the MSB written first and the LSB right after it at the
  same tick, both sent at every change (a receiver resets the LSB when a new MSB arrives). The fader
  is on the same GM law with full scale 16383 (``gain_db = 40 log10(v / 16383)``, :mod:`mixbridge.gm`),
  pan ``round(16383 * u)``. 14-bit steps: 0.001 dB near 0 dB, 0.003 dB at -20 dB, 0.017 dB at -48 dB;
  the other lanes stay 7-bit (DAWs take 14-bit pairs only on 0-31, and the schema's other controllers
  are not paired);
* on/off parameters (mute, polarity) are **steps**: only 0 or 127 is ever written. The rule,
  the same as ``automate`` and the console renderer: the switch is on where the curve's
  piecewise-linear value is >= 0.5, so between a 0 point and a 1 point it flips half way.

**Timing** in the file: 960 ticks per quarter note at 120 BPM (500000 us per beat), so 1920
ticks per second (0.26 ms). Each CC is written at the exact time its 7-bit (or 14-bit) value changes on the
piecewise-linear curve (where the curve crosses the half-way point between two values, solved per
segment through the inverse law), rounded to the nearest tick; nothing is sampled on a grid.

Live output opens a mido port on the ``mido.backends.rtmidi/UNIX_JACK`` backend
(python-rtmidi built with JACK) and sends 7-bit CCs on the perf_counter clock.
"""
from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mixbridge.atomic import atomic_path
from mixbridge.gm import CC_MAX_7BIT, CC_MAX_14BIT, cc7_gain_db, gain_db_to_cc7
from mixbridge.schema import CHANNEL_STRIP
from mixbridge.session import Automation, Session

from .automation import AutomationEvent, require_automation
from .errors import BridgeConfigError, MidiPortError
from .pacing import sleep_until

TICKS_PER_BEAT = 960
TEMPO_US_PER_BEAT = 500_000  # 120 BPM
TICKS_PER_S = TICKS_PER_BEAT * 1_000_000 // TEMPO_US_PER_BEAT
JACK_BACKEND = "mido.backends.rtmidi/UNIX_JACK"
CHANNELS_PER_PORT = 16
#: The MIDI port meta event carries one byte: ports 0..255.
MAX_MIDI_PORTS = 256
FADER_PATH = "fader.fader_db"

#: The lanes ``cc14=True`` writes as MSB/LSB pairs: the MSB is ``CC_NUMBERS[path]``, the LSB that + 32.
CC14_PATHS = frozenset({FADER_PATH, "pan.pan"})
CC14_LSB_OFFSET = 32

#: Controller number per channel-strip parameter (see the module docstring for the rules).
CC_NUMBERS: dict[str, int] = {
    "fader.fader_db": 7, "pan.pan": 10,
    "trim.gain_db": 20, "polarity.invert": 21, "fader.mute": 22, "send.send_db": 23,
    "eq.low_shelf_gain_db": 24, "eq.low_shelf_freq_hz": 25,
    "eq.peak1_gain_db": 26, "eq.peak1_freq_hz": 27, "eq.peak1_q": 28,
    "eq.peak2_gain_db": 29, "eq.peak2_freq_hz": 30, "eq.peak2_q": 31,
    "eq.peak3_gain_db": 85, "eq.peak3_freq_hz": 86, "eq.peak3_q": 87,
    "eq.high_shelf_gain_db": 88, "eq.high_shelf_freq_hz": 89,
    "compressor.threshold_db": 102, "compressor.ratio": 103, "compressor.attack_ms": 104,
    "compressor.release_ms": 105, "compressor.knee_db": 106, "compressor.makeup_db": 107,
}
_RESERVED = set(range(32, 70)) | set(range(96, 102)) | set(range(120, 128)) | {0, 6}


@dataclass(frozen=True)
class CcLane:
    """One CC lane: which track/parameter it carries, where (port, 0-based channel) and how to read it back."""

    track: str
    channel: int
    cc: int
    path: str
    min: float
    max: float
    unit: str
    scale: str
    port: int = 0
    #: 7, or 14 for an MSB/LSB pair (the LSB on ``cc + 32``).
    bits: int = 7

    @property
    def full_scale(self) -> int:
        """The largest value of the lane: 127, or 16383 for a 14-bit pair."""
        return CC_MAX_14BIT if self.bits == 14 else CC_MAX_7BIT

    def describe(self) -> str:
        """The lane in words (the text event written into the MIDI file)."""
        fs = self.full_scale
        law = f"GM volume law 40 log10(v/{fs}) dB, {fs} = 0 dB" if self.path == FADER_PATH else self.scale
        cc = f"CC{self.cc}/CC{self.cc + CC14_LSB_OFFSET} (14-bit MSB/LSB)" if self.bits == 14 else f"CC{self.cc}"
        return (f"{cc} = {self.path} [{self.min:g}, {self.max:g}] {self.unit} ({law}) "
                f"on port {self.port} channel {self.channel + 1}")


def track_port_channel(index: int) -> tuple[int, int]:
    """Session track ``index`` (0-based) -> ``(MIDI port, 0-based channel)``: ``(index // 16, index % 16)``.

    Raises:
        BridgeConfigError: more tracks than :data:`MAX_MIDI_PORTS` ports of 16 channels hold (4096).
    """
    port, channel = divmod(index, CHANNELS_PER_PORT)
    if port >= MAX_MIDI_PORTS:
        raise BridgeConfigError(f"track {index + 1} needs MIDI port {port}, but a MIDI file addresses at most "
                                f"{MAX_MIDI_PORTS} ports of 16 channels ({MAX_MIDI_PORTS * CHANNELS_PER_PORT} "
                                "tracks); export fewer automated tracks per file")
    return port, channel


def _round(x: float) -> int:
    return int(math.floor(x + 0.5))


def _cc_position(path: str, value: float, full_scale: int = CC_MAX_7BIT) -> float:
    """The unrounded controller value (0..``full_scale``) of a schema value (fader on the GM law, clipped
    at 0 dB)."""
    p = CHANNEL_STRIP.param(path)
    if p.kind == "bool":
        return float(full_scale) if value >= 0.5 else 0.0
    if path == FADER_PATH:
        return gain_db_to_cc7(min(float(value), 0.0), full_scale)
    return full_scale * p.to_normalised(float(value))


def _value_at_position(path: str, position: float, full_scale: int = CC_MAX_7BIT) -> float:
    """The schema value whose controller position is ``position`` (inverse of :func:`_cc_position`)."""
    if path == FADER_PATH:
        return cc7_gain_db(position, full_scale)
    return CHANNEL_STRIP.param(path).from_normalised(position / full_scale)


def cc_value(path: str, value: float) -> int:
    """Schema value -> 7-bit controller value (validated against the schema range): the fader on the GM
    volume law (above 0 dB -> 127), on/off 0 or 127 (>= 0.5 is on), the rest ``round(127 * u)``.

    Raises:
        ParamRangeError: the value lies outside the parameter's range.
    """
    p = CHANNEL_STRIP.param(path)
    return _round(_cc_position(path, p.validate(value)))


def value_from_cc(path: str, cc: int, full_scale: int = CC_MAX_7BIT) -> float:
    """Controller value (0..``full_scale``: 127, or 16383 for a 14-bit pair ``128 * MSB + LSB``) -> schema
    value (the inverse of :func:`cc_value` up to half a step; a CC7 below the fader's range reads as its
    minimum)."""
    p = CHANNEL_STRIP.param(path)
    if path == FADER_PATH:
        return max(p.min, cc7_gain_db(cc, full_scale))
    return p.from_normalised(cc / full_scale)


def cc_points(curve: Automation, path: str, full_scale: int = CC_MAX_7BIT) -> list[tuple[float, int]]:
    """The ``(time_s, value)`` changes of one CC lane (values 0..``full_scale``: 127, or 16383 for a 14-bit
    pair): the first point's value at its time, then a point at the exact time each value is reached on the
    piecewise-linear curve (the crossing of the half-way point between two controller values; on/off lanes
    flip where the line crosses 0.5)."""
    times = [float(t) for t in curve.times_s]
    values = [float(v) for v in curve.values]
    out = [(times[0], _round(_cc_position(path, values[0], full_scale)))]
    for ta, tb, va, vb in zip(times, times[1:], values, values[1:]):
        ka, kb = _round(_cc_position(path, va, full_scale)), _round(_cc_position(path, vb, full_scale))
        if ka == kb or vb == va:
            continue
        step = 1 if kb > ka else -1
        if CHANNEL_STRIP.param(path).kind == "bool":
            crossings = [(0.5, kb)]
        else:  # the value k + step is reached where the position crosses k + step / 2
            crossings = [(_value_at_position(path, k + step * 0.5, full_scale), k + step)
                         for k in range(ka, kb, step)]
        for x, k in crossings:
            t = ta + (x - va) / (vb - va) * (tb - ta)
            out.append((min(max(t, ta), tb), k))
    return out


def cc_table(session: Session, *, cc14: bool = False) -> list[CcLane]:
    """The lanes a session's automation uses, in track then schema order; with ``cc14`` the fader and pan
    lanes are 14-bit MSB/LSB pairs (:data:`CC14_PATHS`).

    Raises:
        BridgeConfigError: more than 4096 tracks (:func:`track_port_channel`).
    """
    lanes = []
    for i, t in enumerate(session.tracks):
        for path, p in CHANNEL_STRIP.flat_params():
            if path in t.automation:
                port, channel = track_port_channel(i)
                bits = 14 if cc14 and path in CC14_PATHS else 7
                lanes.append(CcLane(t.name, channel, CC_NUMBERS[path], path, p.min, p.max, p.unit, p.scale, port,
                                    bits))
    return lanes


def export_smf(session: Session, path: str | Path, *, cc14: bool = False,
               notices: list[str] | None = None) -> list[CcLane]:
    """Write the session's automation as a type-1 Standard MIDI File; returns the lane table.

    Track 0 holds the tempo and the port/channel rule; each session track with automation gets a
    MIDI track named after it with a MIDI port meta event, a text event per lane describing the
    mapping, and its CCs at their exact ticks (:func:`cc_points`). ``cc14`` writes the fader and pan as
    14-bit pairs (CC7/CC39, CC10/CC42: MSB then LSB at the same tick). ``notices`` (when given) receives
    one line per fader lane that goes above 0 dB (written as CC7 127, or 16383 as a 14-bit pair).

    Raises:
        NoAutomationError: a session with no automation (:func:`~mixbridge.bridge.automation.require_automation`).
        BridgeConfigError: more than 4096 tracks.
    """
    import mido

    require_automation(session, "export")
    lanes = cc_table(session, cc14=cc14)
    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    conductor = mido.MidiTrack([
        mido.MetaMessage("set_tempo", tempo=TEMPO_US_PER_BEAT, time=0),
        mido.MetaMessage("track_name", name="mixbridge automation", time=0),
        mido.MetaMessage("text", text="session track i (0-based) -> MIDI port i // 16, channel i % 16 + 1; "
                                      + ("CC7/CC39 14-bit pair (MSB first) on the GM volume law "
                                         "40 log10(v/16383) dB; CC10/CC42 14-bit pan" if cc14 else
                                         "CC7 on the GM volume law 40 log10(v/127) dB"), time=0)])
    mid.tracks.append(conductor)
    for t in session.tracks:
        my = [lane for lane in lanes if lane.track == t.name]
        if not my:
            continue
        events: dict[tuple[int, int], tuple[int, int]] = {}  # (tick, cc) -> (value, bits); last in a tick wins
        for lane in my:
            curve = t.automation[lane.path]
            if lane.path == FADER_PATH and max(curve.values) > 0.0 and notices is not None:
                top = "CC7/CC39 16383" if lane.bits == 14 else "CC7 127"
                notices.append(f"track '{t.name}': fader.fader_db reaches {max(curve.values):+g} dB, above CC7's "
                               f"0 dB on the GM volume law; written as {top} (0 dB) there")
            last = None
            for time_s, v in cc_points(curve, lane.path, lane.full_scale):
                if v != last:
                    events[(_round(time_s * TICKS_PER_S), lane.cc)] = (v, lane.bits)
                    last = v
        port, channel = my[0].port, my[0].channel
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=t.name, time=0),
                                mido.MetaMessage("midi_port", port=port, time=0)])
        track.extend(mido.MetaMessage("text", text=lane.describe(), time=0) for lane in my)
        now = 0
        for (tick, cc), (v, bits) in sorted(events.items()):
            if bits == 14:  # MSB first, then the LSB at the same tick (MIDI 1.0, controllers 0-31 + 32-63)
                msb, lsb = divmod(v, 128)
                track.append(mido.Message("control_change", channel=channel, control=cc, value=msb, time=tick - now))
                track.append(mido.Message("control_change", channel=channel, control=cc + CC14_LSB_OFFSET,
                                          value=lsb, time=0))
            else:
                track.append(mido.Message("control_change", channel=channel, control=cc, value=v, time=tick - now))
            now = tick
        track.append(mido.MetaMessage("end_of_track", time=0))
        mid.tracks.append(track)
    with atomic_path(path) as tmp:
        mid.save(str(tmp))
    return lanes


def read_smf_curves(path: str | Path, *, cc14: bool = False) -> dict[tuple[str, int], list[tuple[float, int]]]:
    """Read back ``{(track name, cc): [(time_s, value), ...]}`` from a file written by :func:`export_smf`.

    With ``cc14`` the pairs of a ``cc14=True`` file are joined: an MSB on CC7 or CC10 followed by its LSB
    (CC39, CC42) reads as one point ``128 * MSB + LSB`` (0..16383) under the MSB's number; an MSB without
    an LSB reads as ``128 * MSB`` (the receiver's reset LSB).
    """
    import mido

    mid = mido.MidiFile(str(path))
    msbs = {CC_NUMBERS[p] for p in CC14_PATHS} if cc14 else set()
    lsbs = {cc + CC14_LSB_OFFSET: cc for cc in msbs}
    out: dict[tuple[str, int], list[tuple[float, int]]] = {}
    for track in mid.tracks[1:]:
        name, tick = "", 0
        for msg in track:
            tick += msg.time
            if msg.type == "track_name":
                name = msg.name
            elif msg.type == "control_change" and msg.control in lsbs and out.get((name, lsbs[msg.control])):
                lane = out[(name, lsbs[msg.control])]
                time_s, value = lane[-1]
                lane[-1] = (time_s, (value // 128) * 128 + msg.value)
            elif msg.type == "control_change":
                scale = 128 if msg.control in msbs else 1
                out.setdefault((name, msg.control), []).append((tick / TICKS_PER_S, msg.value * scale))
    return out


def read_smf_ports(path: str | Path) -> dict[str, tuple[int, int]]:
    """Read back ``{track name: (MIDI port, 0-based channel)}`` from a file written by :func:`export_smf`."""
    import mido

    out: dict[str, tuple[int, int]] = {}
    for track in mido.MidiFile(str(path)).tracks[1:]:
        name, port = "", 0
        for msg in track:
            if msg.type == "track_name":
                name = msg.name
            elif msg.type == "midi_port":
                port = msg.port
            elif msg.type == "control_change":
                out[name] = (port, msg.channel)
                break
    return out


class MidiCcOutput:
    """A live MIDI output (mido) that sends automation events as control changes.

    ``port_name`` names a virtual output port created on the backend (JACK MIDI by
    default), which other JACK clients connect to.
    """

    def __init__(self, port_name: str, *, backend: str = JACK_BACKEND, virtual: bool = True):
        import mido

        try:
            self._backend = mido.Backend(backend, load=True)
            self.port = self._backend.open_output(port_name, virtual=virtual)
        except (OSError, ImportError, RuntimeError) as e:  # rtmidi raises SystemError subclasses of RuntimeError
            raise MidiPortError(f"cannot open MIDI output {port_name!r} on {backend}: {e}; is a JACK server "
                                "running and python-rtmidi installed with JACK support?") from None
        self.sent = 0

    def send_event(self, channel: int, path: str, value: float) -> None:
        """Send ``value`` (schema units) of ``path`` as its control change on ``channel`` (0-based).

        Raises:
            ParamRangeError: the value lies outside the parameter's range.
        """
        import mido

        self.port.send(mido.Message("control_change", channel=channel, control=CC_NUMBERS[path],
                                    value=cc_value(path, value)))
        self.sent += 1

    def play(self, events: Sequence[AutomationEvent], channels: dict[str, int]) -> float:
        """Send events on the perf_counter clock; returns the duration in seconds."""
        start = time.perf_counter() + 0.02
        for e in events:
            sleep_until(start + e.time_s)
            self.send_event(channels[e.track], e.path, e.value)
        return time.perf_counter() - start

    def close(self) -> None:
        """Close the MIDI port."""
        self.port.close()

    def __enter__(self) -> MidiCcOutput:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _check_table() -> None:
    bad = {k: v for k, v in CC_NUMBERS.items() if v in _RESERVED}
    if bad or len(set(CC_NUMBERS.values())) != len(CC_NUMBERS):
        raise AssertionError(f"CC table uses reserved or duplicate controllers: {bad}")


_check_table()
