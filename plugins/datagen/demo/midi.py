"""Standard MIDI Files read with mido: one song flattened to one timeline, notes grouped by stem.

:func:`parse_song` merges a song's tracks (tempo maps kept outside track 0 apply
to all), splits the GM drum channel by note number into kit-piece stems and the
other channels by the program in force, and keeps every channel's controller,
pitch-wheel and aftertouch events (:attr:`Song.channel_events`, CC7/CC10 included)
for whoever needs them. Times are MIDI ticks; :meth:`Song.seconds_at` and
:meth:`Song.tick_at` convert through the tempo map.
"""
from __future__ import annotations

import bisect
import io
import re
from dataclasses import dataclass, field
from typing import Any

import mido
import numpy as np

from .errors import DemoSourceError
from .gm import GM_DRUM_CHANNEL, drum_group
from .wad import SongRef, read_lump

#: The channel messages a :class:`Song` keeps per channel (besides notes and program changes).
CHANNEL_EVENT_TYPES = frozenset({"control_change", "pitchwheel", "aftertouch", "polytouch"})


@dataclass(frozen=True)
class Note:
    """One note: ``on_tick``/``off_tick`` in MIDI ticks from the song start."""

    on_tick: int
    off_tick: int
    note: int
    velocity: int
    channel: int


#: A stem's key: ``("drums", group)`` or ``("pitched", channel, program)``.
StemKey = tuple


@dataclass
class Song:
    """A General MIDI song, flattened to one timeline and grouped by stem.

    ``tempo_map`` is ``[(tick, microseconds_per_beat)]`` starting at tick 0;
    ``time_signatures`` is ``[(tick, numerator, denominator)]``; ``channel_events``
    holds each channel's (0-based) controller, pitch-wheel and aftertouch messages
    as ``(tick, mido.Message)``, every controller included (CC7 volume and CC10 pan
    too: only the stem renders strip them); ``stems`` maps a stem key to its notes;
    ``end_tick`` is the last note-off; ``texts`` the text, copyright and track-name
    meta events in file order, ``track_names`` the names per track index.
    """

    ref: SongRef
    ticks_per_beat: int
    tempo_map: list[tuple[int, int]]
    time_signatures: list[tuple[int, int, int]]
    channel_events: dict[int, list[tuple[int, Any]]]
    stems: dict[StemKey, list[Note]]
    end_tick: int
    texts: list[str] = field(default_factory=list)
    track_names: dict[int, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._tempo_ticks = [t for t, _ in self.tempo_map]
        seconds = [0.0]
        for (t0, us), (t1, _) in zip(self.tempo_map, self.tempo_map[1:]):
            seconds.append(seconds[-1] + (t1 - t0) * us / 1e6 / self.ticks_per_beat)
        self._tempo_seconds = seconds

    @property
    def title(self) -> str | None:
        """The title the composer wrote into the first track name (``"5. Flood the City"``), if any."""
        for text in self.texts[:1]:
            m = re.match(r"^\s*\d+\.\s*(.+?)\s*$", text)
            if m:
                return m.group(1)
        return None

    def seconds_at(self, tick: int) -> float:
        """Seconds from the song start to ``tick``, through the tempo map."""
        i = bisect.bisect_right(self._tempo_ticks, tick) - 1
        t0, us = self.tempo_map[i]
        return self._tempo_seconds[i] + (tick - t0) * us / 1e6 / self.ticks_per_beat

    def tick_at(self, seconds: float) -> int:
        """The first tick at or after ``seconds`` from the song start."""
        i = bisect.bisect_right(self._tempo_seconds, seconds) - 1
        i = max(i, 0)
        t0, us = self.tempo_map[i]
        ticks = (seconds - self._tempo_seconds[i]) * 1e6 * self.ticks_per_beat / us
        return t0 + int(np.ceil(ticks - 1e-9))

    def tempo_at(self, tick: int) -> int:
        """The tempo in force at ``tick``, in microseconds per beat."""
        return self.tempo_map[bisect.bisect_right(self._tempo_ticks, tick) - 1][1]

    def controller_curve(self, channel: int, control: int) -> list[tuple[int, int]]:
        """Every value of controller ``control`` (e.g. 7 volume, 10 pan) on 0-based ``channel``,
        as ``[(tick, value 0..127)]`` in time order (empty when the song never sends it)."""
        return [(tick, msg.value) for tick, msg in self.channel_events.get(channel, [])
                if msg.type == "control_change" and msg.control == control]

    @property
    def duration_s(self) -> float:
        """Seconds from the song start to its last note-off."""
        return self.seconds_at(self.end_tick)

    def bar_starts(self) -> list[int]:
        """Ticks of every bar start, following the time signatures (4/4 when none)."""
        sigs = self.time_signatures or [(0, 4, 4)]
        if sigs[0][0] > 0:
            sigs = [(0, 4, 4)] + list(sigs)
        bars: list[int] = []
        for k, (tick, num, den) in enumerate(sigs):
            stop = sigs[k + 1][0] if k + 1 < len(sigs) else self.end_tick + 1
            bar = max(1, int(round(num * self.ticks_per_beat * 4 / den)))
            bars.extend(range(tick, stop, bar))
        return bars


def parse_song(ref: SongRef, data: bytes | None = None) -> Song:
    """Parse a song's MIDI lump into a :class:`Song`.

    Tracks are merged into one timeline, so tempo, meter and key events kept in
    any track apply to all (DATA.md: some files keep their tempo map outside
    track 0). Notes on channel 10 go to drum stems by note number
    (:data:`DRUM_GROUPS`); other notes go to the stem of their channel and the
    program in force when they start. Notes without a note-off end at the song end.

    Raises:
        DemoSourceError: the lump is not a readable Standard MIDI File, is type 2
            (independent sequences), or has no notes.
    """
    if data is None:
        data = read_lump(ref)
    try:
        mid = mido.MidiFile(file=io.BytesIO(data))
    except Exception as e:
        raise DemoSourceError(f"{ref.wad}:{ref.lump}: not a readable MIDI file ({type(e).__name__}: {e})") from None
    if mid.type == 2:
        raise DemoSourceError(f"{ref.wad}:{ref.lump}: MIDI type 2 (independent sequences) is not supported")
    events: list[tuple[int, int, int, Any]] = []
    track_names: dict[int, list[str]] = {}
    texts: list[str] = []
    for ti, track in enumerate(mid.tracks):
        tick = 0
        for k, msg in enumerate(track):
            tick += msg.time
            events.append((tick, ti, k, msg))
    events.sort(key=lambda e: (e[0], e[1], e[2]))

    tempo_map: list[tuple[int, int]] = []
    sigs: list[tuple[int, int, int]] = []
    program = [0] * 16
    channel_events: dict[int, list[tuple[int, Any]]] = {}
    open_notes: dict[tuple[int, int], list[tuple[int, int, StemKey]]] = {}
    stems: dict[StemKey, list[Note]] = {}
    end_tick = 0
    for tick, ti, _, msg in events:
        end_tick = max(end_tick, tick)
        if msg.is_meta:
            if msg.type == "set_tempo":
                if tempo_map and tempo_map[-1][0] == tick:
                    tempo_map[-1] = (tick, msg.tempo)
                else:
                    tempo_map.append((tick, msg.tempo))
            elif msg.type == "time_signature":
                if sigs and sigs[-1][0] == tick:
                    sigs[-1] = (tick, msg.numerator, msg.denominator)
                else:
                    sigs.append((tick, msg.numerator, msg.denominator))
            elif msg.type in ("track_name", "text", "copyright"):
                text = str(getattr(msg, "name", None) or getattr(msg, "text", None) or "").strip()
                if text:
                    texts.append(text)
                    if msg.type == "track_name":
                        track_names.setdefault(ti, []).append(text)
            continue
        if msg.type == "program_change":
            program[msg.channel] = msg.program
        elif msg.type in CHANNEL_EVENT_TYPES:
            channel_events.setdefault(msg.channel, []).append((tick, msg))
        elif msg.type == "note_on" and msg.velocity > 0:
            if msg.channel == GM_DRUM_CHANNEL:
                key: StemKey = ("drums", drum_group(msg.note))
            else:
                key = ("pitched", msg.channel, program[msg.channel])
            open_notes.setdefault((msg.channel, msg.note), []).append((tick, msg.velocity, key))
        elif msg.type in ("note_off", "note_on"):
            pending = open_notes.get((msg.channel, msg.note))
            if pending:
                on, velocity, key = pending.pop(0)
                stems.setdefault(key, []).append(Note(on, max(tick, on + 1), msg.note, velocity, msg.channel))
    for (channel, note), pending in open_notes.items():
        for on, velocity, key in pending:
            stems.setdefault(key, []).append(Note(on, max(end_tick, on + 1), note, velocity, channel))
    if not stems:
        raise DemoSourceError(f"{ref.wad}:{ref.lump}: the MIDI file has no notes")
    for notes in stems.values():
        notes.sort(key=lambda n: (n.on_tick, n.note))
    # The song ends with its last note-off (trailing controller or meta events do not count).
    end_tick = max(n.off_tick for notes in stems.values() for n in notes)
    if not tempo_map or tempo_map[0][0] > 0:
        tempo_map.insert(0, (0, 500000))  # MIDI default: 120 beats per minute
    return Song(ref, mid.ticks_per_beat, tempo_map, sigs, channel_events, stems, end_tick, texts, track_names)
