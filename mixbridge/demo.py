"""The demo multitrack: real composed music rendered per part from real recorded samples.

``build_demo`` turns General MIDI songs of the Freedoom project (``freedoom`` Debian
package, BSD-3-Clause) into multitracks: one WAV stem per instrument, rendered by
the ``fluidsynth`` command line with the FluidR3_GM soundfont (MIT) for pitched
parts and the AVL acoustic drum kits (Black Pearl / Red Zeppelin, CC-BY-SA-3.0)
for drums. The GM drum part (MIDI channel 10) is split by note number into
``kick``, ``snare``, ``hihat``, ``toms``, ``cymbals`` and ``percussion`` stems, like
a multi-miked kit. Volume (CC7) and pan (CC10) are stripped, so stems arrive
unmixed and centred: mixing is mixbridge's job. Every stem of a song has exactly
the same length. A ``manifest.json`` records, for every file, its source, licence,
attribution and checksum (see ``../shared/DATA.md`` for the facts this rests on).

Layout written under ``OUT_DIR``::

    OUT_DIR/manifest.json           every file: source, licence, attribution, sha256
    OUT_DIR/ATTRIBUTION.md          the same, for people
    OUT_DIR/<song>/<stem>.wav       float32 or 24-bit WAV, stereo, one per instrument
    OUT_DIR/<song>/manifest.json    that song's entry, with ``roles`` {stem name: role}

Audio arrays are float32 ``[channels, samples]`` with an explicit ``sample_rate``
in Hz (STYLE.md point 1). The build is staged in a hidden folder and moved into
place only when complete, so an interrupted build leaves nothing half-written.
"""
from __future__ import annotations

import bisect
import dataclasses
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .atomic import atomic_path, atomic_write_text
from .checksum import sha256_file
from .errors import BackendUnavailableError, MixbridgeError, UnknownNameError

# --------------------------------------------------------------------------- errors


class DemoSourceMissingError(FileNotFoundError, MixbridgeError):
    """A file the demo is built from (WAD, soundfont, the fluidsynth program) is missing."""


class DemoSourceError(ValueError, MixbridgeError):
    """A source file that cannot be used: a corrupt WAD or MIDI lump, a song too short."""


class DemoRenderError(RuntimeError, MixbridgeError):
    """fluidsynth failed or produced unusable audio for a stem."""


# --------------------------------------------------------------------------- sources

#: Version of the builder's output: bump when the same settings give different audio.
BUILDER_VERSION = 1
MANIFEST_FORMAT = "mixbridge-demo-manifest"
MANIFEST_VERSION = 1

FREEDOOM_WADS = (
    Path("/usr/share/games/doom/freedoom1.wad"),
    Path("/usr/share/games/doom/freedoom2.wad"),
)
GM_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
DRUM_KITS = {
    "black_pearl": Path("/usr/share/sounds/sf2/Black_Pearl_4_LV2.sf2"),
    "red_zeppelin": Path("/usr/share/sounds/sf2/Red_Zeppelin_4_LV2.sf2"),
}

#: Debian package, licence (SPDX) and attribution of every kind of source file.
SOURCE_PACKAGES: dict[str, dict[str, str]] = {
    "freedoom": {
        "package": "freedoom",
        "license": "BSD-3-Clause",
        "attribution": (
            "Music from Freedoom (https://freedoom.github.io), Copyright (c) 2001-2019 "
            "Contributors to the Freedoom project; the composers are listed in "
            "/usr/share/doc/freedoom/CREDITS"
        ),
        "url": "https://github.com/freedoom/freedoom",
    },
    "fluid-soundfont-gm": {
        "package": "fluid-soundfont-gm",
        "license": "MIT",
        "attribution": "FluidR3_GM soundfont, Copyright (c) 2000-2002, 2008 Frank Wen, 2008 Toby Smithe (MIT)",
        "url": "https://packages.debian.org/fluid-soundfont-gm",
    },
    "avldrums.lv2-soundfont": {
        "package": "avldrums.lv2-soundfont",
        "license": "CC-BY-SA-3.0",
        "attribution": (
            "AVL Drumkits (Black Pearl 4pc, Red Zeppelin 4pc), Copyright (c) 2015 Glen MacArthur, "
            "CC BY-SA 3.0; soundfonts packaged by Robin Gareus in avldrums.lv2"
        ),
        "url": "https://github.com/x42/avldrums.lv2",
    },
}

#: Songs in the order ``--songs N`` takes them. Each gives a full band (drums with at
#: least 4 of the 5 kit stems, bass, guitars or keys, a lead) of 10-16 stems in its
#: best 30 s excerpt; the first three differ in tempo (90/105/140 bpm) and style
#: (metal, rock with keys, funk rock with percussion). ``mixbridge demo list`` shows all.
CURATED_SONGS: tuple[str, ...] = (
    "D_E1M9", "D_E2M3", "D_E3M4", "D_ROMERO", "D_E1M1", "D_TENSE", "D_E3M7", "D_RUNNI2",
)
DEFAULT_N_SONGS = 3
#: Excerpt length in seconds (issue 2 asks for songs of at least 30 s).
DEFAULT_EXCERPT_S = 30.0
#: Seconds after the excerpt's end during which releases ring out (stems last excerpt + tail).
DEFAULT_TAIL_S = 2.0
DEFAULT_SAMPLE_RATE = 44100
#: fluidsynth's master gain (``-g``), as in DATA.md: keeps summed parts below full scale.
DEFAULT_SYNTH_GAIN = 0.5
#: A stem needs this many note onsets inside the excerpt to be kept.
MIN_NOTES_PER_STEM = 4
#: A rendered stem whose peak is below this is reported as silent and left out.
SILENT_PEAK_DB = -80.0
#: Minimum number of stems a song must give; fewer is an error naming the song.
MIN_STEMS_PER_SONG = 6
#: Minimum excerpt length in seconds (issue 2: songs of at least 30 s).
MIN_EXCERPT_S = 30.0
MAX_EXCERPT_S = 600.0
#: fluidsynth wall-clock limit per part, in seconds.
RENDER_TIMEOUT_S = 300.0
WAV_SUBTYPES = ("FLOAT", "PCM_24", "PCM_16")

# --------------------------------------------------------------------------- General MIDI

GM_PROGRAM_NAMES = (
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano",
    "Electric Piano 1", "Electric Piano 2", "Harpsichord", "Clavinet",
    "Celesta", "Glockenspiel", "Music Box", "Vibraphone",
    "Marimba", "Xylophone", "Tubular Bells", "Dulcimer",
    "Drawbar Organ", "Percussive Organ", "Rock Organ", "Church Organ",
    "Reed Organ", "Accordion", "Harmonica", "Tango Accordion",
    "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)", "Electric Guitar (jazz)", "Electric Guitar (clean)",
    "Electric Guitar (muted)", "Overdriven Guitar", "Distortion Guitar", "Guitar Harmonics",
    "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)", "Fretless Bass",
    "Slap Bass 1", "Slap Bass 2", "Synth Bass 1", "Synth Bass 2",
    "Violin", "Viola", "Cello", "Contrabass",
    "Tremolo Strings", "Pizzicato Strings", "Orchestral Harp", "Timpani",
    "String Ensemble 1", "String Ensemble 2", "Synth Strings 1", "Synth Strings 2",
    "Choir Aahs", "Voice Oohs", "Synth Voice", "Orchestra Hit",
    "Trumpet", "Trombone", "Tuba", "Muted Trumpet",
    "French Horn", "Brass Section", "Synth Brass 1", "Synth Brass 2",
    "Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax",
    "Oboe", "English Horn", "Bassoon", "Clarinet",
    "Piccolo", "Flute", "Recorder", "Pan Flute",
    "Blown Bottle", "Shakuhachi", "Whistle", "Ocarina",
    "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)",
    "Lead 5 (charang)", "Lead 6 (voice)", "Lead 7 (fifths)", "Lead 8 (bass + lead)",
    "Pad 1 (new age)", "Pad 2 (warm)", "Pad 3 (polysynth)", "Pad 4 (choir)",
    "Pad 5 (bowed)", "Pad 6 (metallic)", "Pad 7 (halo)", "Pad 8 (sweep)",
    "FX 1 (rain)", "FX 2 (soundtrack)", "FX 3 (crystal)", "FX 4 (atmosphere)",
    "FX 5 (brightness)", "FX 6 (goblins)", "FX 7 (echoes)", "FX 8 (sci-fi)",
    "Sitar", "Banjo", "Shamisen", "Koto",
    "Kalimba", "Bagpipe", "Fiddle", "Shanai",
    "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock",
    "Taiko Drum", "Melodic Tom", "Synth Drum", "Reverse Cymbal",
    "Guitar Fret Noise", "Breath Noise", "Seashore", "Bird Tweet",
    "Telephone Ring", "Helicopter", "Applause", "Gunshot",
)
#: The mixing roles a stem can have (the knowledge-based mixer's vocabulary, models/mixers.py).
ROLES = ("kick", "snare", "hihat", "toms", "cymbals", "percussion", "bass", "guitar", "keys",
         "lead", "pad", "strings", "brass", "other")
#: Mixing role of each GM family of 8 programs: piano, chromatic percussion, organ,
#: guitar, bass, strings, ensemble, brass, reed, pipe, synth lead, synth pad, synth
#: effects, ethnic, percussive, sound effects. Reeds and pipes play melodies in these
#: songs, so they count as leads.
GM_FAMILY_ROLES = (
    "keys", "keys", "keys", "guitar", "bass", "strings", "strings", "brass",
    "lead", "lead", "lead", "pad", "other", "other", "percussion", "other",
)
#: Programs whose role differs from their family's: timpani, the choirs (sustained
#: pads here) and the orchestra hit.
GM_PROGRAM_ROLES = {47: "percussion", 52: "pad", 53: "pad", 54: "pad", 55: "other"}

#: GM drum notes of each drum stem (DATA.md); notes in none of them go to ``percussion``.
DRUM_GROUPS: dict[str, tuple[int, ...]] = {
    "kick": (35, 36),
    "snare": (37, 38, 40),
    "hihat": (42, 44, 46),
    "toms": (41, 43, 45, 47, 48, 50),
    "cymbals": (49, 51, 52, 53, 55, 57, 59),
}
DRUM_STEM_ORDER = ("kick", "snare", "hihat", "toms", "cymbals", "percussion")

#: GM drum note -> AVL kit note (the AVL kits are one melodic preset, bank 0 program 0,
#: with a 4-piece layout: 36 kick, 37 side stick, 38 snare, 39 clap, 40 snare edge,
#: 41 floor tom, 42/44/46/48 hi-hat closed/pedal/semi-open/swish, 43/47 tom edges,
#: 45 rack tom, 49/57 crashes, 50/52/58 chokes, 51/59 ride, 53 bell, 54 tambourine,
#: 55 splash, 56 cowbell, 60 china, 61 maracas; read from the kits' sample names).
#: The 4-piece kit has two toms: GM's low toms go to the floor tom, the higher ones
#: to the rack tom. GM notes absent here are rendered with FluidR3_GM's drum kit.
GM_TO_AVL_NOTE = {
    35: 36, 36: 36,
    37: 37, 38: 38, 40: 38,
    42: 42, 44: 44, 46: 46,
    41: 41, 43: 41, 45: 45, 47: 45, 48: 45, 50: 45,
    49: 49, 51: 51, 52: 60, 53: 53, 55: 55, 57: 57, 59: 59,
    39: 39, 54: 54, 56: 56, 70: 61,
}
GM_DRUM_CHANNEL = 9
#: Controllers removed from every stem: 7 volume, 10 pan (mixing is our job) and
#: 0/32 bank select (the soundfonts hold only the GM banks); also 8 balance.
STRIPPED_CONTROLLERS = frozenset({0, 7, 8, 10, 32})
_CHANNEL_EVENT_TYPES = frozenset({"control_change", "pitchwheel", "aftertouch", "polytouch"})


def gm_role(program: int) -> str:
    """Mixing role of GM ``program`` (0..127): kick/snare/... for drums are set elsewhere."""
    return GM_PROGRAM_ROLES.get(program, GM_FAMILY_ROLES[program // 8])


def slug(text: str) -> str:
    """``"Electric Bass (finger)"`` -> ``"electric_bass_finger"``."""
    s = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return s or "untitled"


# --------------------------------------------------------------------------- WAD files


@dataclass(frozen=True)
class SongRef:
    """Where a song lives: the ``lump`` name (e.g. ``D_E1M4``) inside ``wad``."""

    lump: str
    wad: Path


def read_wad_directory(path: str | Path) -> list[tuple[str, int, int]]:
    """List the lumps of a Doom WAD file as ``(name, offset, size)``.

    The format: a 12-byte header (``IWAD``/``PWAD``, lump count, directory offset)
    and a directory of 16-byte entries (offset, size, 8-byte zero-padded name).

    Raises:
        DemoSourceMissingError: the file does not exist.
        DemoSourceError: the file is not a WAD or its directory points outside it.
    """
    path = Path(path)
    if not path.is_file():
        raise DemoSourceMissingError(f"{path}: WAD file not found; install it with `apt-get install freedoom`")
    size = path.stat().st_size
    with open(path, "rb") as fh:
        header = fh.read(12)
        if len(header) < 12 or header[:4] not in (b"IWAD", b"PWAD"):
            raise DemoSourceError(f"{path}: not a WAD file (header {header[:4]!r}, expected b'IWAD' or b'PWAD')")
        _, count, dir_offset = struct.unpack("<4sii", header)
        if count < 0 or dir_offset < 12 or dir_offset + 16 * count > size:
            raise DemoSourceError(
                f"{path}: corrupt WAD directory ({count} lumps at offset {dir_offset}, file is {size} bytes)"
            )
        fh.seek(dir_offset)
        raw = fh.read(16 * count)
    lumps = []
    for i in range(count):
        offset, lump_size, name = struct.unpack("<ii8s", raw[16 * i:16 * i + 16])
        name_s = name.split(b"\0", 1)[0].decode("ascii", errors="replace")
        if offset < 0 or lump_size < 0 or offset + lump_size > size:
            raise DemoSourceError(f"{path}: lump {name_s!r} lies outside the file (offset {offset}, size {lump_size})")
        lumps.append((name_s, offset, lump_size))
    return lumps


def read_lump(ref: SongRef) -> bytes:
    """The bytes of ``ref.lump`` in ``ref.wad``.

    Raises:
        UnknownNameError: no lump of that name; the message lists the music lumps found.
    """
    directory = read_wad_directory(ref.wad)
    for name, offset, size in directory:
        if name == ref.lump:
            with open(ref.wad, "rb") as fh:
                fh.seek(offset)
                return fh.read(size)
    music = sorted(n for n, _, _ in directory if n.startswith("D_"))
    raise UnknownNameError(f"{ref.wad}: no lump {ref.lump!r}; music lumps there: {', '.join(music)}")


def find_midi_songs(wads: Sequence[str | Path] = FREEDOOM_WADS) -> list[SongRef]:
    """Every Standard MIDI File lump (``MThd``) in ``wads``, in WAD order; a lump name
    found in several WADs is taken from the first.

    Raises:
        DemoSourceMissingError: a WAD is missing.
    """
    refs: list[SongRef] = []
    seen: set[str] = set()
    for wad in wads:
        wad = Path(wad)
        directory = read_wad_directory(wad)
        with open(wad, "rb") as fh:
            for name, offset, size in directory:
                if size < 14 or name in seen:
                    continue
                fh.seek(offset)
                if fh.read(4) == b"MThd":
                    refs.append(SongRef(name, wad))
                    seen.add(name)
    return refs


def resolve_song(lump: str, wads: Sequence[str | Path] = FREEDOOM_WADS) -> SongRef:
    """The :class:`SongRef` of ``lump`` (case-insensitive; ``E1M4`` means ``D_E1M4``).

    Raises:
        UnknownNameError: no MIDI song of that name; the message lists the known ones.
    """
    name = lump.upper()
    if not name.startswith("D_"):
        name = "D_" + name
    songs = find_midi_songs(wads)
    for ref in songs:
        if ref.lump == name:
            return ref
    raise UnknownNameError(
        f"no MIDI song {lump!r} in {', '.join(str(w) for w in wads)}; known songs: "
        f"{', '.join(r.lump for r in songs)} (see `mixbridge demo list`)"
    )


# --------------------------------------------------------------------------- MIDI parsing


def _mido():
    try:
        import mido
    except ImportError as e:  # pragma: no cover - mido is pinned in requirements.lock
        raise BackendUnavailableError(
            f"the demo builder needs mido ({e}); install it with `pip install mido==1.3.3`"
        ) from None
    return mido


@dataclass(frozen=True)
class Note:
    """One note: ``on_tick``/``off_tick`` in MIDI ticks from the song start."""

    on_tick: int
    off_tick: int
    note: int
    velocity: int
    channel: int


StemKey = tuple  # ("drums", group) or ("pitched", channel, program)


@dataclass
class Song:
    """A General MIDI song, flattened to one timeline and grouped by stem.

    ``tempo_map`` is ``[(tick, microseconds_per_beat)]`` starting at tick 0;
    ``time_signatures`` is ``[(tick, numerator, denominator)]``; ``channel_events``
    holds each channel's controller, pitch-wheel and aftertouch messages as
    ``(tick, message)``; ``stems`` maps a stem key to its notes.
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
        return self.tempo_map[bisect.bisect_right(self._tempo_ticks, tick) - 1][1]

    @property
    def duration_s(self) -> float:
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
    mido = _mido()
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
                text = (getattr(msg, "name", None) or getattr(msg, "text", "")).strip()
                if text:
                    texts.append(text)
                    if msg.type == "track_name":
                        track_names.setdefault(ti, []).append(text)
            continue
        if msg.type == "program_change":
            program[msg.channel] = msg.program
        elif msg.type in _CHANNEL_EVENT_TYPES:
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


def drum_group(note: int) -> str:
    """The drum stem of GM drum ``note``: kick, snare, hihat, toms, cymbals or percussion."""
    for group, notes in DRUM_GROUPS.items():
        if note in notes:
            return group
    return "percussion"


# --------------------------------------------------------------------------- excerpt and stem plans


@dataclass(frozen=True)
class Excerpt:
    """A window ``[start_tick, end_tick)`` of a song; ``start_s``/``end_s`` in seconds."""

    start_tick: int
    end_tick: int
    start_s: float
    end_s: float


def _count_in(notes: list[Note], start_tick: int, end_tick: int) -> int:
    ons = [n.on_tick for n in notes]
    return bisect.bisect_left(ons, end_tick) - bisect.bisect_left(ons, start_tick)


def choose_excerpt(song: Song, seconds: float, min_notes: int = MIN_NOTES_PER_STEM) -> Excerpt:
    """The ``seconds``-long window, starting on a bar line, where most stems play.

    Candidates are the bar starts from which ``seconds`` fit before the song's end.
    The score is the number of stems with at least ``min_notes`` note onsets in
    the window, then the total number of onsets; ties go to the earliest bar.

    Raises:
        DemoSourceError: the song is shorter than ``seconds``; the message gives its length.
    """
    total_s = song.duration_s
    if total_s < seconds:
        raise DemoSourceError(
            f"{song.ref.lump}: the song lasts {total_s:.1f} s, shorter than the {seconds:g} s asked; "
            "pick another song"
        )
    best: tuple[tuple[int, int, int], Excerpt] | None = None
    for bar in song.bar_starts():
        start_s = song.seconds_at(bar)
        if start_s + seconds > total_s + 1e-9:
            break
        end_tick = song.tick_at(start_s + seconds)
        counts = [_count_in(notes, bar, end_tick) for notes in song.stems.values()]
        score = (sum(c >= min_notes for c in counts), sum(counts), -bar)
        if best is None or score > best[0]:
            best = (score, Excerpt(bar, end_tick, start_s, start_s + seconds))
    if best is None:  # no bar line fits: take the song start
        return Excerpt(0, song.tick_at(seconds), 0.0, seconds)
    return best[1]


@dataclass(frozen=True)
class PartPlan:
    """One fluidsynth render: a MIDI file (bytes) played with one soundfont.

    ``package`` names the soundfont's entry in :data:`SOURCE_PACKAGES` (its licence).
    """

    soundfont: Path
    midi: bytes
    notes: int
    package: str


@dataclass(frozen=True)
class StemPlan:
    """A stem to render: its file name stem, role, GM description and parts to sum."""

    name: str
    role: str
    kind: str  # "drums" or "pitched"
    description: str
    midi_channel: int  # 1-based, as musicians count
    gm_program: int | None
    notes: int
    parts: tuple[PartPlan, ...]


def _stem_midi(song: Song, excerpt: Excerpt, notes: Iterable[Note], source_channel: int, out_channel: int,
               program: int, note_map: dict[int, int] | None, tail_s: float) -> bytes:
    """A type-1 MIDI file of ``notes`` inside ``excerpt``, shifted to start at tick 0.

    Track 0 holds the tempo and meter in force (tempo events of other tracks
    included); track 1 holds, on ``out_channel``: the program, the source
    channel's controller state at the excerpt start (all earlier controller
    events, in order, at tick 0, CC0/7/8/10/32 stripped), the controller events
    inside the excerpt, and the notes starting inside it, cut at its end.
    """
    mido = _mido()
    t0, t1 = excerpt.start_tick, excerpt.end_tick
    end_tick = max(song.tick_at(excerpt.end_s + tail_s), t1 + 1) - t0
    conductor: list[tuple[int, int, int, Any]] = [
        (0, 0, 0, mido.MetaMessage("set_tempo", tempo=song.tempo_at(t0), time=0)),
    ]
    sig = [s for s in song.time_signatures if s[0] <= t0]
    if sig:
        conductor.append((0, 1, 0, mido.MetaMessage("time_signature", numerator=sig[-1][1], denominator=sig[-1][2])))
    for tick, tempo in song.tempo_map:
        if t0 < tick < t0 + end_tick:
            conductor.append((tick - t0, 0, 0, mido.MetaMessage("set_tempo", tempo=tempo)))
    for tick, num, den in song.time_signatures:
        if t0 < tick < t1:
            conductor.append((tick - t0, 1, 0, mido.MetaMessage("time_signature", numerator=num, denominator=den)))

    # (tick, priority, sequence, message): setup first, note-offs before note-ons.
    part: list[tuple[int, int, int, Any]] = [(0, 0, 0, mido.Message("program_change", channel=out_channel, program=program))]
    seq = 1
    for tick, msg in song.channel_events.get(source_channel, []):
        if tick >= t1:
            break
        if msg.type == "control_change" and msg.control in STRIPPED_CONTROLLERS:
            continue
        if msg.type == "polytouch" and note_map is not None:
            if msg.note not in note_map:
                continue
            msg = msg.copy(note=note_map[msg.note])
        part.append((max(tick - t0, 0), 0, seq, msg.copy(channel=out_channel, time=0)))
        seq += 1
    for n in notes:
        if not (t0 <= n.on_tick < t1):
            continue
        pitch = note_map[n.note] if note_map is not None else n.note
        off = min(n.off_tick, t1)
        part.append((n.on_tick - t0, 2, seq, mido.Message("note_on", channel=out_channel, note=pitch, velocity=n.velocity)))
        part.append((off - t0, 1, seq, mido.Message("note_off", channel=out_channel, note=pitch, velocity=0)))
        seq += 1
    part.append((t1 - t0, 3, seq, mido.Message("control_change", channel=out_channel, control=64, value=0)))

    mid = mido.MidiFile(type=1, ticks_per_beat=song.ticks_per_beat)
    for events in (conductor, part):
        events.sort(key=lambda e: e[:3])
        track = mido.MidiTrack()
        last = 0
        for tick, _, _, msg in events:
            track.append(msg.copy(time=tick - last))
            last = tick
        track.append(mido.MetaMessage("end_of_track", time=max(end_tick - last, 0)))
        mid.tracks.append(track)
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def plan_stems(song: Song, excerpt: Excerpt, drum_kit: Path, gm_soundfont: Path = GM_SOUNDFONT,
               tail_s: float = DEFAULT_TAIL_S, min_notes: int = MIN_NOTES_PER_STEM) -> tuple[list[StemPlan], list[dict]]:
    """The stems of ``song`` inside ``excerpt``, and the parts left out (with the reason).

    Drum stems come first in :data:`DRUM_STEM_ORDER`, rendered with ``drum_kit``
    (notes remapped by :data:`GM_TO_AVL_NOTE`, played on a melodic channel);
    drum notes the AVL kit lacks are rendered with ``gm_soundfont``'s GM kit on
    channel 10 and summed into the same stem. Pitched stems follow in channel
    order, named after their GM program (``_2``, ``_3`` for repeats), rendered
    with ``gm_soundfont`` on channel 1. A stem with fewer than ``min_notes``
    onsets in the excerpt is left out.
    """
    plans: list[StemPlan] = []
    excluded: list[dict] = []
    t0, t1 = excerpt.start_tick, excerpt.end_tick
    for group in DRUM_STEM_ORDER:
        notes = [n for n in song.stems.get(("drums", group), []) if t0 <= n.on_tick < t1]
        if not notes:
            continue
        if len(notes) < min_notes:
            excluded.append({"name": group, "reason": f"{len(notes)} notes in the excerpt (< {min_notes})"})
            continue
        avl = [n for n in notes if n.note in GM_TO_AVL_NOTE]
        gm = [n for n in notes if n.note not in GM_TO_AVL_NOTE]
        parts = []
        if avl:
            midi = _stem_midi(song, excerpt, avl, GM_DRUM_CHANNEL, 0, 0, GM_TO_AVL_NOTE, tail_s)
            parts.append(PartPlan(Path(drum_kit), midi, len(avl), "avldrums.lv2-soundfont"))
        if gm:
            identity = {n.note: n.note for n in gm}
            midi = _stem_midi(song, excerpt, gm, GM_DRUM_CHANNEL, GM_DRUM_CHANNEL, 0, identity, tail_s)
            parts.append(PartPlan(Path(gm_soundfont), midi, len(gm), "fluid-soundfont-gm"))
        notes_used = sorted({n.note for n in notes})
        plans.append(StemPlan(group, group, "drums", f"GM drum notes {notes_used}", GM_DRUM_CHANNEL + 1,
                              None, len(notes), tuple(parts)))
    pitched = sorted(k for k in song.stems if k[0] == "pitched")
    used_names: dict[str, int] = {}
    for _, channel, program in pitched:
        notes = [n for n in song.stems[("pitched", channel, program)] if t0 <= n.on_tick < t1]
        base = slug(GM_PROGRAM_NAMES[program])
        if len(notes) < min_notes:
            if notes:
                excluded.append({"name": base, "midi_channel": channel + 1,
                                 "reason": f"{len(notes)} notes in the excerpt (< {min_notes})"})
            continue
        used_names[base] = used_names.get(base, 0) + 1
        name = base if used_names[base] == 1 else f"{base}_{used_names[base]}"
        midi = _stem_midi(song, excerpt, notes, channel, 0, program, None, tail_s)
        plans.append(StemPlan(name, gm_role(program), "pitched", GM_PROGRAM_NAMES[program], channel + 1,
                              program, len(notes), (PartPlan(Path(gm_soundfont), midi, len(notes), "fluid-soundfont-gm"),)))
    return plans, excluded


# --------------------------------------------------------------------------- rendering


def fluidsynth_path() -> Path:
    """The ``fluidsynth`` program.

    Raises:
        DemoSourceMissingError: it is not on ``PATH``; the fix is to install it.
    """
    found = shutil.which("fluidsynth")
    if not found:
        raise DemoSourceMissingError("fluidsynth: program not found on PATH; install it with `apt-get install fluidsynth`")
    return Path(found)


#: fluidsynth warnings that are expected and harmless (the AVL fonts have no GM drum bank).
_HARMLESS_WARNINGS = (re.compile(r"No preset found on channel 9 \[bank=128 prog=0\]"),)


def render_part(part: PartPlan, sample_rate: int, synth_gain: float = DEFAULT_SYNTH_GAIN,
                workdir: str | Path | None = None) -> tuple[np.ndarray, list[str]]:
    """Render one part with the fluidsynth command line (DATA.md's invocation).

    ``fluidsynth -ni -q -g GAIN -r RATE -R 0 -C 0 -T wav -O float -F OUT FONT IN.mid``:
    reverb and chorus off, 32-bit float WAV. Renders are bit-identical when repeated.

    Returns:
        (audio, warnings): float32 ``[2, samples]`` at ``sample_rate`` Hz, and the
        warnings fluidsynth printed (harmless ones dropped).

    Raises:
        DemoSourceMissingError: fluidsynth or the soundfont is missing.
        DemoRenderError: fluidsynth failed, timed out, or wrote no or non-finite audio.
    """
    import soundfile as sf

    exe = fluidsynth_path()
    if not Path(part.soundfont).is_file():
        raise DemoSourceMissingError(
            f"{part.soundfont}: soundfont not found; install fluid-soundfont-gm and avldrums.lv2-soundfont"
        )
    with tempfile.TemporaryDirectory(prefix="mixbridge-demo-", dir=workdir) as tmp:
        mid_path = Path(tmp) / "part.mid"
        wav_path = Path(tmp) / "part.wav"
        mid_path.write_bytes(part.midi)
        cmd = [str(exe), "-ni", "-q", "-g", f"{synth_gain:g}", "-r", str(int(sample_rate)), "-R", "0", "-C", "0",
               "-T", "wav", "-O", "float", "-F", str(wav_path), str(part.soundfont), str(mid_path)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RENDER_TIMEOUT_S, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise DemoRenderError(f"fluidsynth ran past {RENDER_TIMEOUT_S:g} s on {part.soundfont.name}") from None
        if proc.returncode != 0 or not wav_path.is_file():
            raise DemoRenderError(
                f"fluidsynth failed (exit {proc.returncode}) rendering with {part.soundfont}: "
                f"{(proc.stderr or proc.stdout).strip()[-500:]}"
            )
        errors = [line.strip() for line in (proc.stderr or "").splitlines()
                  if "error" in line.lower() or "not a soundfont" in line.lower()]
        if errors:
            raise DemoRenderError(f"fluidsynth could not render with {part.soundfont}: {' '.join(errors)[-500:]}")
        audio, rate = sf.read(str(wav_path), dtype="float32", always_2d=True)
    if rate != sample_rate:
        raise DemoRenderError(f"fluidsynth wrote {rate} Hz audio, {sample_rate} Hz was asked")
    if not np.isfinite(audio).all():
        raise DemoRenderError(f"fluidsynth wrote NaN/inf samples rendering with {part.soundfont}")
    warnings = [line.strip() for line in (proc.stderr or "").splitlines()
                if line.strip() and not any(p.search(line) for p in _HARMLESS_WARNINGS)]
    return np.ascontiguousarray(audio.T), warnings


def render_stem(plan: StemPlan, n_samples: int, sample_rate: int, synth_gain: float = DEFAULT_SYNTH_GAIN,
                workdir: str | Path | None = None) -> tuple[np.ndarray, list[str]]:
    """Render and sum ``plan``'s parts, padded with zeros or cut to ``n_samples``.

    Returns:
        (audio, warnings): float32 ``[2, n_samples]``, and fluidsynth's warnings.
    """
    total = np.zeros((2, n_samples), dtype=np.float32)
    warnings: list[str] = []
    for part in plan.parts:
        audio, w = render_part(part, sample_rate, synth_gain, workdir)
        warnings.extend(w)
        if audio.shape[0] == 1:
            audio = np.repeat(audio, 2, axis=0)
        n = min(n_samples, audio.shape[1])
        total[:, :n] += audio[:2, :n]
    return total, warnings


# --------------------------------------------------------------------------- build


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int, subtype: str = "FLOAT") -> Path:
    """Write float ``[channels, samples]`` audio as WAV, atomically and reproducibly.

    FLOAT files are written here as RIFF ``fmt`` (IEEE float, tag 3) + ``fact`` +
    ``data``: libsndfile adds a ``PEAK`` chunk holding the write time, which would
    make identical audio give different files and checksums. PCM subtypes go
    through soundfile, which writes no time stamp.

    Raises:
        DemoRenderError: the array is not ``[channels, samples]`` or holds NaN/inf.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 2 or audio.shape[0] < 1:
        raise DemoRenderError(f"{path}: audio must be [channels, samples], got shape {audio.shape}")
    if not np.isfinite(audio).all():
        raise DemoRenderError(f"{path}: refusing to write NaN/inf samples")
    channels, frames = audio.shape
    with atomic_path(path) as tmp:
        if subtype == "FLOAT":
            data = np.ascontiguousarray(audio.T).astype("<f4").tobytes()
            fmt = struct.pack("<HHIIHH", 3, channels, int(sample_rate), int(sample_rate) * 4 * channels, 4 * channels, 32)
            body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
                    + b"fact" + struct.pack("<II", 4, frames)
                    + b"data" + struct.pack("<I", len(data)) + data)
            Path(tmp).write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
        else:
            import soundfile as sf

            sf.write(str(tmp), audio.T, int(sample_rate), subtype=subtype, format="WAV")
    return Path(path)


def _sha256(path: Path) -> str:
    return sha256_file(path)


def _package_version(package: str) -> str | None:
    """The installed Debian version of ``package``, or None where dpkg is absent."""
    if not shutil.which("dpkg-query"):
        return None
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _fluidsynth_version() -> str | None:
    try:
        out = subprocess.run([str(fluidsynth_path()), "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired, DemoSourceMissingError):
        return None
    m = re.search(r"version\s+(\S+)", out.stdout)
    return m.group(1) if m else None


def _source_entry(path: Path, kind: str) -> dict:
    info = SOURCE_PACKAGES[kind]
    return {"path": str(path), "package": info["package"], "package_version": _package_version(info["package"]),
            "license": info["license"], "attribution": info["attribution"], "url": info["url"]}


@dataclass(frozen=True)
class DemoSettings:
    """What a demo build is made of; two builds with equal settings give identical files.

    ``songs`` are ``(lump, drum kit name)`` pairs; ``excerpt_s`` is the excerpt length
    and ``tail_s`` the release tail after it, in seconds (stem length = their sum);
    ``sample_rate`` in Hz; ``synth_gain`` is fluidsynth's ``-g``; ``subtype`` the WAV
    sample format (FLOAT, PCM_24 or PCM_16).
    """

    songs: tuple[tuple[str, str], ...] = field(default_factory=lambda: default_songs(DEFAULT_N_SONGS))
    excerpt_s: float = DEFAULT_EXCERPT_S
    tail_s: float = DEFAULT_TAIL_S
    sample_rate: int = DEFAULT_SAMPLE_RATE
    synth_gain: float = DEFAULT_SYNTH_GAIN
    subtype: str = "FLOAT"

    def validate(self, drum_kits: dict[str, Path] | None = None) -> None:
        """Check every setting.

        Raises:
            ParamRangeError: a number out of its range (the message names it, its
                range with unit, and the fix); UnknownNameError: an unknown drum
                kit or WAV subtype.
        """
        from .errors import ParamRangeError

        kits = drum_kits or DRUM_KITS
        if not self.songs:
            raise ParamRangeError("songs: none given; name at least one song (see `mixbridge demo list`)")
        for lump, kit in self.songs:
            if kit not in kits:
                raise UnknownNameError(f"drum kit {kit!r} for {lump}: unknown; known kits: {', '.join(kits)}")
        if not (MIN_EXCERPT_S <= self.excerpt_s <= MAX_EXCERPT_S):
            raise ParamRangeError(f"excerpt_s = {self.excerpt_s:g} s is outside {MIN_EXCERPT_S:g}..{MAX_EXCERPT_S:g} s; "
                                  "pick a length in that range")
        if not (0.0 <= self.tail_s <= 10.0):
            raise ParamRangeError(f"tail_s = {self.tail_s:g} s is outside 0..10 s; pick a tail in that range")
        if not (8000 <= self.sample_rate <= 192000):
            raise ParamRangeError(f"sample_rate = {self.sample_rate} Hz is outside 8000..192000 Hz; use 44100 or 48000")
        if not (0.0 < self.synth_gain <= 2.0):
            raise ParamRangeError(f"synth_gain = {self.synth_gain:g} is outside (0, 2]; fluidsynth's -g default is 0.2")
        if self.subtype not in WAV_SUBTYPES:
            raise UnknownNameError(f"WAV subtype {self.subtype!r} is unknown; use one of {', '.join(WAV_SUBTYPES)}")

    def to_json(self) -> dict:
        return {"songs": [list(s) for s in self.songs], "excerpt_s": self.excerpt_s, "tail_s": self.tail_s,
                "sample_rate": self.sample_rate, "synth_gain": self.synth_gain, "subtype": self.subtype,
                "builder_version": BUILDER_VERSION}


def default_kit(index: int) -> str:
    """Drum kits alternate between songs: Black Pearl, Red Zeppelin, ..."""
    kits = list(DRUM_KITS)
    return kits[index % len(kits)]


def default_songs(n_songs: int = DEFAULT_N_SONGS) -> tuple[tuple[str, str], ...]:
    """The first ``n_songs`` of :data:`CURATED_SONGS`, with alternating drum kits.

    Raises:
        ParamRangeError: ``n_songs`` is outside 1..len(CURATED_SONGS); name songs
            explicitly (``DemoSettings(songs=...)``, ``--pick``) for more.
    """
    from .errors import ParamRangeError

    if not (1 <= n_songs <= len(CURATED_SONGS)):
        raise ParamRangeError(
            f"n_songs = {n_songs} is outside 1..{len(CURATED_SONGS)} (the curated songs); "
            "name more songs explicitly with --pick (see `mixbridge demo list`)"
        )
    return tuple((lump, default_kit(i)) for i, lump in enumerate(CURATED_SONGS[:n_songs]))


def song_folder_name(song: Song) -> str:
    """``D_E1M4`` titled "Flood the City" -> ``e1m4_flood_the_city``."""
    base = slug(song.ref.lump[2:] if song.ref.lump.startswith("D_") else song.ref.lump)
    return f"{base}_{slug(song.title)}" if song.title else base


def _progress(total: int, desc: str, enabled: bool):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is pinned
        tqdm = None
    if tqdm is None or not enabled:
        class _Null:
            def update(self, n: int = 1) -> None: ...
            def close(self) -> None: ...
            def set_postfix_str(self, s: str) -> None: ...
        return _Null()
    return tqdm(total=total, desc=desc, unit="stem", file=sys.stderr, leave=False)


@dataclass
class SongPlan:
    """Everything decided about one song before any audio is rendered."""

    ref: SongRef
    kit: str
    song: Song
    excerpt: Excerpt
    stems: list[StemPlan]
    excluded: list[dict]

    @property
    def folder(self) -> str:
        return song_folder_name(self.song)


def plan_song(ref: SongRef, kit: str, settings: DemoSettings, *, gm_soundfont: Path = GM_SOUNDFONT,
              drum_kits: dict[str, Path] | None = None) -> SongPlan:
    """Parse ``ref``, choose its excerpt and plan its stems, rendering nothing.

    Raises:
        DemoSourceError: the song is too short, or fewer than
            :data:`MIN_STEMS_PER_SONG` stems play in the excerpt.
        UnknownNameError: an unknown drum kit.
    """
    kits = drum_kits or DRUM_KITS
    if kit not in kits:
        raise UnknownNameError(f"drum kit {kit!r} for {ref.lump}: unknown; known kits: {', '.join(kits)}")
    song = parse_song(ref)
    excerpt = choose_excerpt(song, settings.excerpt_s)
    stems, excluded = plan_stems(song, excerpt, Path(kits[kit]), Path(gm_soundfont), settings.tail_s)
    if len(stems) < MIN_STEMS_PER_SONG:
        raise DemoSourceError(
            f"{ref.lump}: only {len(stems)} stems play in its best {settings.excerpt_s:g} s excerpt "
            f"({', '.join(p.name for p in stems)}); a demo song needs {MIN_STEMS_PER_SONG}; "
            "pick another song (see `mixbridge demo list`)"
        )
    return SongPlan(ref, kit, song, excerpt, stems, excluded)


def render_song(plan: SongPlan, settings: DemoSettings, folder: Path, *, jobs: int = 1,
                progress: bool = False) -> dict:
    """Render ``plan``'s stems into ``folder`` (created) and return its manifest entry.

    Every stem is float32 ``[2, samples]`` with ``samples = round((excerpt_s +
    tail_s) * sample_rate)``, written as WAV in ``settings.subtype``. A
    stem that renders silent (peak below :data:`SILENT_PEAK_DB`) is left out and
    listed under ``excluded``.

    Raises:
        DemoSourceError: fewer than :data:`MIN_STEMS_PER_SONG` stems are not silent.
        DemoRenderError: a stem would clip in an integer ``subtype``; and as
            :func:`render_part`, with DemoSourceMissingError.
    """
    ref, excerpt = plan.ref, plan.excerpt
    n_samples = int(round((settings.excerpt_s + settings.tail_s) * settings.sample_rate))
    folder.mkdir(parents=True, exist_ok=True)
    bar = _progress(len(plan.stems), plan.folder, progress)

    def work(stem: StemPlan) -> tuple[StemPlan, np.ndarray, list[str]]:
        try:
            audio, warnings = render_stem(stem, n_samples, settings.sample_rate, settings.synth_gain, folder)
        except DemoRenderError as e:
            raise DemoRenderError(f"{ref.lump}/{stem.name}: {e}") from None
        return stem, audio, warnings

    results = []
    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            for result in pool.map(work, plan.stems):
                results.append(result)
                bar.update(1)
    finally:
        bar.close()

    freedoom = SOURCE_PACKAGES["freedoom"]
    excluded = list(plan.excluded)
    stems = []
    for stem, audio, warnings in results:
        peak = float(np.max(np.abs(audio)))
        peak_db = 20.0 * np.log10(peak) if peak > 0 else float("-inf")
        if peak_db < SILENT_PEAK_DB:
            excluded.append({"name": stem.name, "reason": f"rendered silent (peak {peak_db:.1f} dBFS)"})
            continue
        if settings.subtype != "FLOAT" and peak >= 1.0:
            raise DemoRenderError(
                f"{ref.lump}/{stem.name}: peak {peak_db:+.2f} dBFS would clip as {settings.subtype}; "
                "use --subtype FLOAT"
            )
        path = folder / f"{stem.name}.wav"
        write_wav(path, audio, settings.sample_rate, settings.subtype)
        kinds = sorted({p.package for p in stem.parts})
        licences = [freedoom["license"] + " (composition)"] + [SOURCE_PACKAGES[k]["license"] + " (samples)" for k in kinds]
        stems.append({
            "file": path.name,
            "name": stem.name,
            "role": stem.role,
            "kind": stem.kind,
            "description": stem.description,
            "midi_channel": stem.midi_channel,
            "gm_program": stem.gm_program,
            "notes": stem.notes,
            "soundfonts": [str(p.soundfont) for p in stem.parts],
            "peak_dbfs": round(peak_db, 2),
            "sha256": _sha256(path),
            "source": f"{ref.wad.name}:{ref.lump} (Freedoom), excerpt {excerpt.start_s:.3f}-{excerpt.end_s:.3f} s",
            "license": " AND ".join(licences),
            "attribution": "; ".join([freedoom["attribution"]] + [SOURCE_PACKAGES[k]["attribution"] for k in kinds]),
            **({"render_warnings": warnings} if warnings else {}),
        })
    if len(stems) < MIN_STEMS_PER_SONG:
        raise DemoSourceError(
            f"{ref.lump}: only {len(stems)} stems are not silent ({', '.join(s['name'] for s in stems)}); "
            f"a demo song needs {MIN_STEMS_PER_SONG}; check the soundfonts, or pick another song"
        )
    song = plan.song
    return {
        "folder": plan.folder,
        "lump": ref.lump,
        "wad": ref.wad.name,
        "title": song.title,
        "midi_texts": song.texts[:12],
        "drum_kit": plan.kit,
        "excerpt": {"start_s": round(excerpt.start_s, 6), "end_s": round(excerpt.end_s, 6),
                    "start_tick": excerpt.start_tick, "end_tick": excerpt.end_tick,
                    "tempo_bpm_at_start": round(60e6 / song.tempo_at(excerpt.start_tick), 3),
                    "song_duration_s": round(song.duration_s, 3)},
        "sample_rate": settings.sample_rate,
        "samples": n_samples,
        "duration_s": n_samples / settings.sample_rate,
        "channels": 2,
        "subtype": settings.subtype,
        "roles": {s["name"]: s["role"] for s in stems},
        "stems": stems,
        "excluded": excluded,
    }


def _attribution_markdown(manifest: dict) -> str:
    lines = ["# Demo multitrack: sources, licences and attribution", "",
             "Generated by `mixbridge demo build`; `manifest.json` holds the same per file, with checksums.", ""]
    for kind, info in SOURCE_PACKAGES.items():
        lines.append(f"- **{info['package']}** ({info['license']}): {info['attribution']}. <{info['url']}>")
    lines += ["", "Each stem is a derived work of the song's composition (BSD-3-Clause) and the "
              "samples it was rendered with (MIT for FluidR3_GM, CC-BY-SA-3.0 for the AVL kits: "
              "drum stems are shared under CC BY-SA 3.0).", ""]
    for song in manifest["songs"]:
        title = f" \"{song['title']}\"" if song.get("title") else ""
        lines.append(f"## {song['folder']}: Freedoom {song['lump']}{title} ({song['wad']})")
        lines.append("")
        for stem in song["stems"]:
            lines.append(f"- `{song['folder']}/{stem['file']}`: {stem['description']}; {stem['license']}")
        lines.append("")
    return "\n".join(lines)


def build_demo(out_dir: str | Path, settings: DemoSettings | None = None, *, n_songs: int | None = None,
               duration_s: float | None = None, force: bool = False, jobs: int | None = None,
               progress: bool = True, wads: Sequence[str | Path] = FREEDOOM_WADS,
               gm_soundfont: Path = GM_SOUNDFONT, drum_kits: dict[str, Path] | None = None,
               log: Callable[[str], None] | None = None) -> dict:
    """Build the demo multitrack in ``out_dir`` and return its manifest (a dict).

    When ``out_dir`` already holds a build with the same settings whose files all
    match their checksums, nothing is rendered (unless ``force``). Otherwise
    every song is planned first (so a bad song fails before any rendering), then
    rendered into a hidden staging folder inside ``out_dir``, and moved into
    place only when every song succeeded: a failed or interrupted build leaves
    ``out_dir`` as it was (and removes it when it created it). Song folders that
    the previous manifest listed and the new build does not hold are removed;
    anything else in ``out_dir`` is left alone.

    Args:
        settings: what to build (:class:`DemoSettings`); default: the first 3
            curated songs, 30 s excerpts + 2 s tails.
        n_songs: shorthand for ``songs=default_songs(n_songs)`` (overrides ``settings.songs``).
        duration_s: shorthand for ``excerpt_s`` in seconds (overrides ``settings.excerpt_s``).
        jobs: fluidsynth processes run at once (default: 2, or 1 on one core).
        log: receives one line per step (default: print to stderr).

    Raises:
        DemoSourceMissingError: a WAD, soundfont or fluidsynth is not installed.
        UnknownNameError: an unknown song or drum kit.
        DemoSourceError / DemoRenderError: a song cannot be built; the message names it.
    """
    settings = settings or DemoSettings()
    if n_songs is not None:
        settings = dataclasses.replace(settings, songs=default_songs(n_songs))
    if duration_s is not None:
        settings = dataclasses.replace(settings, excerpt_s=float(duration_s))
    kits = dict(drum_kits or DRUM_KITS)
    settings.validate(kits)
    log = log or (lambda s: print(s, file=sys.stderr))
    out_dir = Path(out_dir)
    for path in [Path(w) for w in wads] + [Path(gm_soundfont)] + sorted({Path(kits[k]) for _, k in settings.songs}):
        if not path.is_file():
            package = "freedoom" if path.suffix == ".wad" else (
                "fluid-soundfont-gm" if path == Path(gm_soundfont) else "avldrums.lv2-soundfont")
            raise DemoSourceMissingError(f"{path}: not found; install it with `apt-get install {package}`")
    fluidsynth_path()
    if not force:
        current = _up_to_date(out_dir, settings)
        if current is not None:
            log(f"demo multitrack in {out_dir} is up to date ({len(current['songs'])} songs); --force rebuilds it")
            return current
    plans: list[SongPlan] = []
    for lump, kit in settings.songs:
        plan = plan_song(resolve_song(lump, wads), kit, settings, gm_soundfont=Path(gm_soundfont), drum_kits=kits)
        if any(p.folder == plan.folder for p in plans):
            raise DemoSourceError(f"{plan.ref.lump}: listed twice; name each song once")
        plans.append(plan)
    if jobs is None:
        jobs = max(1, min(2, os.cpu_count() or 1))
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
    done = False
    try:
        entries = []
        for i, plan in enumerate(plans):
            log(f"[{i + 1}/{len(plans)}] {plan.ref.lump} ({plan.ref.wad.name}) -> {plan.folder}: "
                f"{len(plan.stems)} stems, excerpt {plan.excerpt.start_s:.1f}-{plan.excerpt.end_s:.1f} s, "
                f"{plan.kit} kit")
            entries.append(render_song(plan, settings, staging / plan.folder, jobs=jobs, progress=progress))
        manifest = {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "settings": settings.to_json(),
            "tools": {"fluidsynth": _fluidsynth_version(), "mixbridge": _mixbridge_version()},
            "sources": ([_source_entry(Path(w), "freedoom") for w in wads]
                        + [_source_entry(Path(gm_soundfont), "fluid-soundfont-gm")]
                        + [_source_entry(Path(kits[k]), "avldrums.lv2-soundfont")
                           for k in sorted({k for _, k in settings.songs})]),
            "realism_limits": ("General-MIDI timbres, quantised timing, no bleed between drum stems, "
                               "no reverb or chorus in the renders (mixing adds them)"),
            "songs": entries,
        }
        for entry in entries:
            song_manifest = {"format": MANIFEST_FORMAT + "-song", "version": MANIFEST_VERSION, **entry}
            atomic_write_text(staging / entry["folder"] / "manifest.json", json.dumps(song_manifest, indent=2) + "\n")
        # Every song succeeded: move them into place, then write the manifests. Song
        # folders that the previous manifest listed and this build does not hold go too;
        # folders mixbridge did not write are left alone.
        try:
            previous = [song["folder"] for song in load_manifest(out_dir).get("songs", [])]
        except MixbridgeError:
            previous = []
        new_folders = {entry["folder"] for entry in entries}
        trash = Path(tempfile.mkdtemp(prefix=".old-", dir=out_dir))
        try:
            for folder in previous:
                stale = out_dir / folder
                if folder not in new_folders and "/" not in folder and not folder.startswith(".") and stale.is_dir():
                    os.replace(stale, trash / folder)
            for entry in entries:
                dest = out_dir / entry["folder"]
                if dest.exists():
                    os.replace(dest, trash / entry["folder"])
                os.replace(staging / entry["folder"], dest)
            atomic_write_text(out_dir / "ATTRIBUTION.md", _attribution_markdown(manifest))
            atomic_write_text(out_dir / "manifest.json", json.dumps(manifest, indent=2) + "\n")
        finally:
            shutil.rmtree(trash, ignore_errors=True)
        done = True
        return manifest
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not done:
            shutil.rmtree(out_dir, ignore_errors=True)


def _mixbridge_version() -> str:
    from . import __version__

    return __version__


# --------------------------------------------------------------------------- verify


def load_manifest(out_dir: str | Path) -> dict:
    """Read ``out_dir/manifest.json``.

    Raises:
        DemoSourceMissingError: there is none (the fix: ``mixbridge demo build``).
        DemoSourceError: it is not a demo manifest of a known version.
    """
    path = Path(out_dir) / "manifest.json"
    if not path.is_file():
        raise DemoSourceMissingError(f"{path}: no demo manifest; build the demo with `mixbridge demo build -o {out_dir}`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DemoSourceError(f"{path}: unreadable manifest ({e}); rebuild with `mixbridge demo build --force`") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise DemoSourceError(f"{path}: not a mixbridge demo manifest (format {manifest.get('format')!r})"
                              if isinstance(manifest, dict) else f"{path}: not a mixbridge demo manifest")
    if manifest.get("version") != MANIFEST_VERSION:
        raise DemoSourceError(f"{path}: manifest version {manifest.get('version')!r} is not {MANIFEST_VERSION}; "
                              "rebuild with `mixbridge demo build --force`")
    return manifest


def verify_demo(out_dir: str | Path) -> list[str]:
    """Check a built demo against its manifest; return the problems found (empty: all good).

    Checks every listed stem exists, has the manifest's checksum, sample rate,
    length and channel count, and that each song has at least
    :data:`MIN_STEMS_PER_SONG` stems of at least :data:`MIN_EXCERPT_S` seconds.

    Raises:
        DemoSourceMissingError / DemoSourceError: as :func:`load_manifest`.
    """
    import soundfile as sf

    out_dir = Path(out_dir)
    manifest = load_manifest(out_dir)
    problems: list[str] = []
    for song in manifest.get("songs", []):
        folder = out_dir / song["folder"]
        if len(song["stems"]) < MIN_STEMS_PER_SONG:
            problems.append(f"{song['folder']}: {len(song['stems'])} stems (< {MIN_STEMS_PER_SONG})")
        if song["duration_s"] < MIN_EXCERPT_S:
            problems.append(f"{song['folder']}: {song['duration_s']:.1f} s (< {MIN_EXCERPT_S:g} s)")
        for stem in song["stems"]:
            path = folder / stem["file"]
            if not path.is_file():
                problems.append(f"{path}: missing")
                continue
            if _sha256(path) != stem["sha256"]:
                problems.append(f"{path}: checksum differs from the manifest")
            try:
                info = sf.info(str(path))
            except Exception as e:  # soundfile raises LibsndfileError/RuntimeError
                problems.append(f"{path}: unreadable as audio ({e})")
                continue
            if (info.samplerate, info.frames, info.channels) != (song["sample_rate"], song["samples"], song["channels"]):
                problems.append(f"{path}: {info.samplerate} Hz, {info.frames} samples, {info.channels} channels; "
                                f"manifest says {song['sample_rate']} Hz, {song['samples']}, {song['channels']}")
        listed = {s["file"] for s in song["stems"]}
        if folder.is_dir():
            extra = sorted(p.name for p in folder.glob("*.wav") if p.name not in listed)
            if extra:
                problems.append(f"{folder}: WAV files not in the manifest: {', '.join(extra)}")
    return problems


def _up_to_date(out_dir: Path, settings: DemoSettings) -> dict | None:
    try:
        manifest = load_manifest(out_dir)
    except MixbridgeError:
        return None
    if manifest.get("settings") != settings.to_json():
        return None
    return manifest if not verify_demo(out_dir) else None


def list_songs(wads: Sequence[str | Path] = FREEDOOM_WADS) -> list[dict]:
    """Describe every MIDI song in ``wads``: lump, WAD, title, length in seconds,
    whether it has drums, and its stems (pitched instruments and drum groups)."""
    rows = []
    for ref in find_midi_songs(wads):
        try:
            song = parse_song(ref)
        except DemoSourceError as e:
            rows.append({"lump": ref.lump, "wad": ref.wad.name, "error": str(e)})
            continue
        drums = [k[1] for k in song.stems if k[0] == "drums"]
        pitched = [slug(GM_PROGRAM_NAMES[k[2]]) for k in sorted(k for k in song.stems if k[0] == "pitched")]
        rows.append({"lump": ref.lump, "wad": ref.wad.name, "title": song.title,
                     "duration_s": round(song.duration_s, 1), "drum_stems": [g for g in DRUM_STEM_ORDER if g in drums],
                     "pitched_stems": pitched})
    return rows
