"""MIDI output of automation: a Standard MIDI File with one CC lane per parameter, and live
control changes through mido (JACK MIDI here).

**Mapping** (the same for the file and live output; :func:`cc_table` returns it):

* session track *i* -> MIDI channel ``i % 16`` (and, in the file, its own MIDI track named
  after the session track);
* each channel-strip parameter -> a fixed controller number. Faders and pan use the General
  MIDI controllers (CC7 volume, CC10 pan); everything else uses controllers that MIDI 1.0
  leaves undefined (20-31, 85-89, 102-107), never 32-63 (the LSBs of CC0-31: a DAW may pair
  CC39 with CC7 as 14-bit volume), 64-69 (pedals), 96-101 (RPN/NRPN) or 120-127 (mode);
* value -> ``round(127 * u)``, where ``u`` is the schema's normalised value of the parameter
  (``Param.to_normalised``: linear for dB and pan, logarithmic for Hz, Q, ratio and times;
  booleans 0 or 127). 7 bits give 128 steps over the schema range: 0.47 dB on the
  -48..+12 dB fader.

**Timing** in the file: 960 ticks per quarter note at 120 BPM (500000 us per beat), so
1920 ticks per second. Curves are sampled at ``rate_hz`` and a CC is written only when its
7-bit value changes.

Live output opens a mido port on the ``mido.backends.rtmidi/UNIX_JACK`` backend
(python-rtmidi built with JACK) and sends on the perf_counter clock.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mixbridge.atomic import atomic_path
from mixbridge.schema import CHANNEL_STRIP
from mixbridge.session import Session

from .automation import AutomationEvent, check_rate_hz, require_automation, sample_curve
from .errors import MidiPortError
from .pacing import sleep_until

TICKS_PER_BEAT = 960
TEMPO_US_PER_BEAT = 500_000  # 120 BPM
TICKS_PER_S = TICKS_PER_BEAT * 1_000_000 // TEMPO_US_PER_BEAT
JACK_BACKEND = "mido.backends.rtmidi/UNIX_JACK"

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
    """One CC lane: which track/parameter it carries and how to read it back."""

    track: str
    channel: int
    cc: int
    path: str
    min: float
    max: float
    unit: str
    scale: str

    def describe(self) -> str:
        """The lane in words (the text event written into the MIDI file)."""
        return (f"CC{self.cc} = {self.path} [{self.min:g}, {self.max:g}] {self.unit} ({self.scale}) "
                f"on channel {self.channel + 1}")


def cc_value(path: str, value: float) -> int:
    """Schema value -> 7-bit controller value (validated against the schema range).

    Raises:
        ParamRangeError: the value lies outside the parameter's range.
    """
    p = CHANNEL_STRIP.param(path)
    return int(round(127 * p.to_normalised(p.validate(value))))


def value_from_cc(path: str, cc: int) -> float:
    """7-bit controller value -> schema value (the inverse of :func:`cc_value` up to 1/127)."""
    return CHANNEL_STRIP.param(path).from_normalised(cc / 127.0)


def cc_table(session: Session) -> list[CcLane]:
    """The lanes a session's automation uses, in track then schema order."""
    lanes = []
    for i, t in enumerate(session.tracks):
        for path, p in CHANNEL_STRIP.flat_params():
            if path in t.automation:
                lanes.append(CcLane(t.name, i % 16, CC_NUMBERS[path], path, p.min, p.max, p.unit, p.scale))
    return lanes


def export_smf(session: Session, path: str | Path, *, rate_hz: float = 100.0) -> list[CcLane]:
    """Write the session's automation as a type-1 Standard MIDI File; returns the lane table.

    Track 0 holds the tempo; each session track with automation gets a MIDI track named
    after it with a text event per lane describing the mapping.

    Raises:
        BridgeConfigError: ``rate_hz`` outside (0, :data:`~mixbridge.bridge.automation.MAX_RATE_HZ`] Hz.
        NoAutomationError: a session with no automation (:func:`~mixbridge.bridge.automation.require_automation`).
    """
    import mido

    rate_hz = check_rate_hz(rate_hz)

    require_automation(session, "export")
    lanes = cc_table(session)
    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    conductor = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=TEMPO_US_PER_BEAT, time=0),
                                mido.MetaMessage("track_name", name="mixbridge automation", time=0)])
    mid.tracks.append(conductor)
    for i, t in enumerate(session.tracks):
        my = [lane for lane in lanes if lane.track == t.name]
        if not my:
            continue
        events: list[tuple[int, int, int]] = []  # tick, cc, value
        for lane in my:
            times, values = sample_curve(t.automation[lane.path], rate_hz)
            boolean = CHANNEL_STRIP.param(lane.path).kind == "bool"
            last = None
            for tt, vv in zip(times, values):
                # a switch sampled between its points is on from half way, as automation plays it (thin)
                v = cc_value(lane.path, float(vv >= 0.5) if boolean else float(vv))
                if v != last:
                    events.append((int(round(tt * TICKS_PER_S)), lane.cc, v))
                    last = v
        events.sort()
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=t.name, time=0)])
        track.extend(mido.MetaMessage("text", text=lane.describe(), time=0) for lane in my)
        now = 0
        for tick, cc, v in events:
            track.append(mido.Message("control_change", channel=i % 16, control=cc, value=v, time=tick - now))
            now = tick
        track.append(mido.MetaMessage("end_of_track", time=0))
        mid.tracks.append(track)
    with atomic_path(path) as tmp:
        mid.save(str(tmp))
    return lanes


def read_smf_curves(path: str | Path) -> dict[tuple[str, int], list[tuple[float, int]]]:
    """Read back ``{(track name, cc): [(time_s, value), ...]}`` from a file written by :func:`export_smf`."""
    import mido

    mid = mido.MidiFile(str(path))
    out: dict[tuple[str, int], list[tuple[float, int]]] = {}
    for track in mid.tracks[1:]:
        name, tick = "", 0
        for msg in track:
            tick += msg.time
            if msg.type == "track_name":
                name = msg.name
            elif msg.type == "control_change":
                out.setdefault((name, msg.control), []).append((tick / TICKS_PER_S, msg.value))
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
