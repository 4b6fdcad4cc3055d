"""Per-song decisions before any audio: the excerpt, the stems, their MIDI parts; the song catalogue.

:func:`choose_excerpt` picks the bar-aligned window where most stems play
(:func:`choose_excerpts` several that do not overlap);
:func:`plan_stems` turns a song and its excerpt into :class:`StemPlan` s, each
one or two fluidsynth parts (:class:`PartPlan`: a soundfont and a small MIDI
file with volume and pan stripped); :func:`list_songs` describes every song the
WADs hold.
"""
from __future__ import annotations

import bisect
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mido

from .errors import DemoSourceError
from .gm import DRUM_STEM_ORDER, GM_DRUM_CHANNEL, GM_PROGRAM_NAMES, GM_TO_AVL_NOTE, STRIPPED_CONTROLLERS, gm_role, slug
from .midi import Note, Song, parse_song
from .sources import DEFAULT_TAIL_S, FREEDOOM_WADS, GM_SOUNDFONT, MIN_NOTES_PER_STEM
from .wad import find_midi_songs


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


def rank_excerpts(song: Song, seconds: float, min_notes: int = MIN_NOTES_PER_STEM) -> list[Excerpt]:
    """Every ``seconds``-long window starting on a bar line, best first (the order of :func:`choose_excerpt`).

    The score is the number of stems with at least ``min_notes`` note onsets in the
    window, then the total number of onsets; ties go to the earliest bar. Empty when
    the song is shorter than ``seconds`` or no bar line fits.
    """
    total_s = song.duration_s
    scored: list[tuple[tuple[int, int, int], Excerpt]] = []
    for bar in song.bar_starts():
        start_s = song.seconds_at(bar)
        if start_s + seconds > total_s + 1e-9:
            break
        end_tick = song.tick_at(start_s + seconds)
        counts = [_count_in(notes, bar, end_tick) for notes in song.stems.values()]
        scored.append(((sum(c >= min_notes for c in counts), sum(counts), -bar),
                       Excerpt(bar, end_tick, start_s, start_s + seconds)))
    scored.sort(key=lambda e: e[0], reverse=True)
    return [e for _, e in scored]


def choose_excerpts(song: Song, seconds: float, count: int, *, spacing_s: float | None = None,
                    accept: Callable[[Excerpt], bool] | None = None,
                    min_notes: int = MIN_NOTES_PER_STEM) -> list[Excerpt]:
    """Up to ``count`` non-overlapping bar-aligned windows where most stems play, in time order.

    Greedy over :func:`rank_excerpts`: the best window first, then the best one whose
    start lies at least ``spacing_s`` seconds (default ``seconds``) from every start
    already taken, and so on; a window ``accept`` refuses is passed over. Fewer than
    ``count`` come back when the song holds fewer.
    """
    spacing = seconds if spacing_s is None else spacing_s
    chosen: list[Excerpt] = []
    for ex in rank_excerpts(song, seconds, min_notes):
        if len(chosen) >= count:
            break
        if any(abs(ex.start_s - c.start_s) < spacing - 1e-9 for c in chosen):
            continue
        if accept is not None and not accept(ex):
            continue
        chosen.append(ex)
    return sorted(chosen, key=lambda e: e.start_tick)


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
    setup = mido.Message("program_change", channel=out_channel, program=program)
    part: list[tuple[int, int, int, Any]] = [(0, 0, 0, setup)]
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
        on = mido.Message("note_on", channel=out_channel, note=pitch, velocity=n.velocity)
        part.append((n.on_tick - t0, 2, seq, on))
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
               tail_s: float = DEFAULT_TAIL_S,
               min_notes: int = MIN_NOTES_PER_STEM) -> tuple[list[StemPlan], list[dict]]:
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
                              program, len(notes),
                              (PartPlan(Path(gm_soundfont), midi, len(notes), "fluid-soundfont-gm"),)))
    return plans, excluded


def list_songs(wads: Sequence[str | Path] = FREEDOOM_WADS) -> list[dict]:
    """Describe every MIDI song in ``wads``: lump, WAD, title, length in seconds,
    whether it has drums, and its stems (pitched instruments and drum groups)."""
    rows: list[dict[str, Any]] = []
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
