"""Building the composer dataset: excerpts of every Freedoom song, unmixed stems, the composer's mix.

For every song, :func:`plan_song` chooses up to ``excerpts_per_song`` non-overlapping
bar-aligned excerpts where most stems play (``demo.plan.choose_excerpts``), plans the
stems exactly as the demo does (``demo.plan.plan_stems``: CC7 and CC10 stripped, CC11
kept; drum kits alternate by excerpt) and reads the composer's CC7/CC10 as labels
(:mod:`.labels`). :func:`render_excerpt` renders the stems with fluidsynth
(``demo.render.render_stem``), normalises them to one random common loudness per
excerpt, and writes the target: a session (trim + fader = ``gain_db``, ``pan``) and its
console mix (``plugins.console.render_console``, builtin backend, pre-master).
:func:`build_composer` stages each excerpt in a hidden folder and moves it into place
when complete, skips finished excerpts on a rerun (checksums checked), and writes
``manifest.json`` last. The layout is in the package docstring.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from mixbridge import __version__
from mixbridge.atomic import atomic_write_text
from mixbridge.audio import peak_db as audio_peak_db
from mixbridge.audio import write_audio
from mixbridge.checksum import sha256_file
from mixbridge.errors import MixbridgeError, ParamRangeError, UnknownNameError
from mixbridge.loudness import SILENT_LUFS, db_to_gain, integrated_lufs
from mixbridge.records import read_record
from mixbridge.schema import CHANNEL_STRIP
from mixbridge.session import Session, Track
from mixbridge.session import save as save_session

from ..demo.build import song_folder_name
from ..demo.errors import DemoRenderError, DemoSourceError, DemoSourceMissingError
from ..demo.gm import GM_DRUM_CHANNEL, slug
from ..demo.midi import Song, parse_song
from ..demo.plan import Excerpt, StemPlan, choose_excerpts, plan_stems
from ..demo.render import fluidsynth_path, fluidsynth_version, render_stem
from ..demo.sources import (
    DEFAULT_SAMPLE_RATE,
    DEFAULT_SYNTH_GAIN,
    DRUM_KITS,
    FREEDOOM_WADS,
    GM_SOUNDFONT,
    SILENT_PEAK_DB,
    SOURCE_PACKAGES,
    source_entry,
)
from ..demo.wad import SongRef, find_midi_songs, resolve_song
from .errors import ComposerDatasetError, ComposerSettingsError
from .labels import GAIN_RULE, PAN_RULE, ChannelLabel, channel_label, relative_gains_db
from .split import SPLIT_RULE, split_of, split_songs

DATASET_FORMAT = "mixbridge-composer-dataset"
DATASET_VERSION = 1
MANIFEST_FORMAT = "mixbridge-composer-manifest"
MANIFEST_VERSION = 1
EXCERPT_FORMAT = "mixbridge-composer-excerpt"
#: Version of the builder's output: bump when the same settings give different files.
BUILDER_VERSION = 1
DEFAULT_EXCERPTS_PER_SONG = 3
DEFAULT_EXCERPT_S = 8.0
DEFAULT_TAIL_S = 1.0
#: The common input loudness of an excerpt's stems is drawn uniformly from this range (LUFS).
INPUT_LUFS_RANGE = (-30.0, -18.0)
#: An excerpt needs this many non-silent stems with CC7 > 0.
MIN_TRACKS = 3
EXCERPT_S_RANGE = (1.0, 60.0)
#: Drum kits by excerpt index: x0 Black Pearl, x1 Red Zeppelin, x2 Black Pearl, ...
KIT_ORDER = tuple(DRUM_KITS)
#: Decimals of the stored labels (gain_db in dB, pan) and loudness figures (LUFS).
GAIN_DECIMALS = 4
PAN_DECIMALS = 6
LUFS_DECIMALS = 4


@dataclass(frozen=True)
class ComposerSettings:
    """What a composer build is made of; equal settings give identical files.

    ``songs`` are WAD lumps (``D_E1M9``), in build order; ``excerpt_s`` and ``tail_s`` in
    seconds (stem length = their sum); ``sample_rate`` in Hz; ``synth_gain`` fluidsynth's
    ``-g``; ``seed`` draws each excerpt's input loudness from ``input_lufs_range`` (LUFS).
    """

    songs: tuple[str, ...]
    excerpts_per_song: int = DEFAULT_EXCERPTS_PER_SONG
    excerpt_s: float = DEFAULT_EXCERPT_S
    tail_s: float = DEFAULT_TAIL_S
    sample_rate: int = DEFAULT_SAMPLE_RATE
    synth_gain: float = DEFAULT_SYNTH_GAIN
    seed: int = 0
    input_lufs_range: tuple[float, float] = INPUT_LUFS_RANGE
    min_tracks: int = MIN_TRACKS

    def validate(self) -> None:
        """Check every setting.

        Raises:
            ParamRangeError: a value out of its range (named, with the range, unit and fix).
        """
        if not self.songs:
            raise ParamRangeError("songs: none given; name at least one song (see `mixbridge demo list`)")
        if len(set(self.songs)) != len(self.songs):
            raise ParamRangeError("songs: a song is listed twice; name each song once")
        if not (1 <= self.excerpts_per_song <= 20):
            raise ParamRangeError(f"excerpts_per_song = {self.excerpts_per_song} is outside 1..20; pick one in it")
        lo, hi = EXCERPT_S_RANGE
        if not (lo <= self.excerpt_s <= hi):
            raise ParamRangeError(f"excerpt_s = {self.excerpt_s:g} s is outside {lo:g}..{hi:g} s; pick one in it")
        if not (0.0 <= self.tail_s <= 10.0):
            raise ParamRangeError(f"tail_s = {self.tail_s:g} s is outside 0..10 s; pick a tail in that range")
        if not (8000 <= self.sample_rate <= 192000):
            raise ParamRangeError(f"sample_rate = {self.sample_rate} Hz is outside 8000..192000 Hz; use 44100")
        if not (0.0 < self.synth_gain <= 2.0):
            raise ParamRangeError(f"synth_gain = {self.synth_gain:g} is outside (0, 2]; fluidsynth's -g default is 0.2")
        a, b = self.input_lufs_range
        if not (-70.0 < a <= b < 0.0):
            raise ParamRangeError(f"input_lufs_range = ({a:g}, {b:g}) LUFS must satisfy -70 < low <= high < 0")
        if self.min_tracks < 1:
            raise ParamRangeError(f"min_tracks = {self.min_tracks} must be at least 1")

    def to_json(self) -> dict:
        """The settings as ``config.json`` records them (with :data:`BUILDER_VERSION`)."""
        return {"songs": list(self.songs), "excerpts_per_song": self.excerpts_per_song,
                "excerpt_s": float(self.excerpt_s), "tail_s": float(self.tail_s), "sample_rate": self.sample_rate,
                "synth_gain": float(self.synth_gain), "seed": self.seed,
                "input_lufs_range": [float(v) for v in self.input_lufs_range], "min_tracks": self.min_tracks,
                "builder_version": BUILDER_VERSION}

    @property
    def n_samples(self) -> int:
        """Samples per stem: ``round((excerpt_s + tail_s) * sample_rate)``."""
        return int(round((self.excerpt_s + self.tail_s) * self.sample_rate))


def all_songs(wads: Sequence[str | Path] = FREEDOOM_WADS) -> tuple[str, ...]:
    """Every MIDI song's lump in ``wads``, in WAD order (``demo.wad.find_midi_songs``)."""
    return tuple(r.lump for r in find_midi_songs(wads))


def excerpt_id(lump: str, index: int) -> str:
    """``("D_E1M9", 0)`` -> ``"e1m9_x0"``."""
    base = slug(lump[2:] if lump.startswith("D_") else lump)
    return f"{base}_x{index}"


def draw_input_lufs(settings: ComposerSettings, lump: str, index: int) -> float:
    """The common input loudness (LUFS, 3 decimals) of excerpt ``index`` of ``lump``: uniform over
    ``settings.input_lufs_range``, seeded by ``(seed, SHA-256 of the lump, index)``."""
    key = int(hashlib.sha256(lump.encode("ascii")).hexdigest()[:8], 16)
    rng = np.random.default_rng([int(settings.seed), key, int(index)])
    lo, hi = settings.input_lufs_range
    return round(float(rng.uniform(lo, hi)), 3)


@dataclass
class ExcerptPlan:
    """One excerpt decided before any audio: its stems (with their channel's labels) and exclusions."""

    id: str
    index: int
    ref: SongRef
    song: Song
    split: str
    kit: str
    excerpt: Excerpt
    input_lufs: float
    stems: list[StemPlan]
    labels: list[ChannelLabel]
    excluded: list[dict] = field(default_factory=list)

    @property
    def song_folder(self) -> str:
        """The song's folder name, as the demo names it (``e1m4_flood_the_city``)."""
        return song_folder_name(self.song)


def stem_channel(stem: StemPlan) -> int:
    """The 0-based MIDI channel whose CC7/CC10 label ``stem``: channel 10 for every drum stem."""
    return GM_DRUM_CHANNEL if stem.kind == "drums" else stem.midi_channel - 1


def _labelled_stems(song: Song, excerpt: Excerpt, kit: Path, gm_soundfont: Path,
                    tail_s: float) -> tuple[list[StemPlan], list[ChannelLabel], list[dict]]:
    stems, excluded = plan_stems(song, excerpt, kit, gm_soundfont, tail_s)
    kept, labels = [], []
    for stem in stems:
        label = channel_label(song, stem_channel(stem), excerpt.start_tick, excerpt.end_tick)
        if label.cc7 <= 0.0:
            excluded.append({"name": stem.name, "midi_channel": stem.midi_channel,
                             "reason": "CC7 is 0 over the excerpt (the composer muted it)"})
            continue
        kept.append(stem)
        labels.append(label)
    return kept, labels, list(excluded)


def plan_song(ref: SongRef, settings: ComposerSettings, *, gm_soundfont: Path = GM_SOUNDFONT,
              drum_kits: dict[str, Path] | None = None) -> list[ExcerptPlan]:
    """Parse ``ref``, choose its excerpts and plan their labelled stems, rendering nothing.

    Excerpts are ``excerpt_s`` long, start on bar lines at least ``excerpt_s + tail_s``
    apart (so no audio repeats), and need ``min_tracks`` planned stems with CC7 > 0.

    Raises:
        DemoSourceError: the song cannot be read, is shorter than ``excerpt_s``, or has no
            excerpt with ``min_tracks`` stems (the message says which).
    """
    kits = drum_kits or DRUM_KITS
    song = parse_song(ref)
    if song.duration_s < settings.excerpt_s:
        raise DemoSourceError(f"{ref.lump}: the song lasts {song.duration_s:.1f} s, shorter than the "
                              f"{settings.excerpt_s:g} s excerpts")
    probe_kit = Path(kits[KIT_ORDER[0]])

    def accept(ex: Excerpt) -> bool:
        stems, _, _ = _labelled_stems(song, ex, probe_kit, Path(gm_soundfont), settings.tail_s)
        return len(stems) >= settings.min_tracks

    chosen = choose_excerpts(song, settings.excerpt_s, settings.excerpts_per_song,
                             spacing_s=settings.excerpt_s + settings.tail_s, accept=accept)
    if not chosen:
        raise DemoSourceError(f"{ref.lump}: no {settings.excerpt_s:g} s excerpt has {settings.min_tracks} stems "
                              "with notes and CC7 > 0")
    plans = []
    for index, ex in enumerate(chosen):
        kit = KIT_ORDER[index % len(KIT_ORDER)]
        stems, labels, excluded = _labelled_stems(song, ex, Path(kits[kit]), Path(gm_soundfont), settings.tail_s)
        plans.append(ExcerptPlan(excerpt_id(ref.lump, index), index, ref, song, split_of(ref.lump), kit, ex,
                                 draw_input_lufs(settings, ref.lump, index), stems, labels, excluded))
    return plans


class ExcerptSkipped(MixbridgeError):
    """An excerpt whose stems rendered into fewer than ``min_tracks`` usable tracks (the reason is the message)."""


def _target_json(label: ChannelLabel, gain_db: float, raw_lufs: float, input_lufs: float) -> dict:
    return {"gain_db": gain_db, "pan": round(label.pan, PAN_DECIMALS),
            "cc7": round(label.cc7, 4), "cc10": label.cc10, "cc7_ramped": label.cc7_ramped,
            "cc7_curve": [list(p) for p in label.cc7_curve], "cc10_ramped": label.cc10_ramped,
            "cc7_gain_db": round(label.cc7_gain_db, GAIN_DECIMALS),
            "raw_lufs": round(raw_lufs, LUFS_DECIMALS), "input_lufs": round(input_lufs, LUFS_DECIMALS)}


def split_gain_db(gain_db: float) -> tuple[float, float]:
    """``gain_db`` spread over the strip as ``(fader_db, trim_db)``: the fader takes what fits in its
    range (-48..+12 dB), the trim the rest (-24..+24 dB), as ``models.mix_session.split_gain`` does.

    Raises:
        ParamRangeError: the gain exceeds what fader and trim together reach (-72..+36 dB).
    """
    fp, tp = CHANNEL_STRIP.param("fader.fader_db"), CHANNEL_STRIP.param("trim.gain_db")
    fader = round(min(max(gain_db, fp.min), fp.max), GAIN_DECIMALS)
    trim = round(gain_db - fader, GAIN_DECIMALS)
    if not (tp.min <= trim <= tp.max):
        raise ParamRangeError(f"gain_db = {gain_db:+.1f} dB is outside what fader and trim reach "
                              f"({fp.min + tp.min:g}..{fp.max + tp.max:g} dB)")
    return fader, trim


def composer_session(names: list[str], sources: list[str], roles: list[str | None], gain_db: Sequence[float],
                     pan: Sequence[float], sample_rate: int, provenance: dict) -> Session:
    """The composer's mix as a validated :class:`~mixbridge.session.Session`: per track, trim + fader =
    ``gain_db`` (:func:`split_gain_db`) and ``pan``; every other parameter at the schema default.

    Raises:
        ParamRangeError: a gain or pan outside the console's ranges.
    """
    tracks = []
    for name, source, role, g, p in zip(names, sources, roles, gain_db, pan):
        fader, trim = split_gain_db(float(g))
        params = CHANNEL_STRIP.defaults()
        params["trim"]["gain_db"] = trim
        params["fader"]["fader_db"] = fader
        params["pan"]["pan"] = float(p)
        tracks.append(Track(name, source, CHANNEL_STRIP.validate(params, f"track '{name}'"), {}, role))
    return Session(int(sample_rate), tracks, provenance=provenance).validate()


#: Largest distance in LU between a stored stem's loudness and its excerpt's drawn input loudness.
LUFS_TOLERANCE_LU = 0.01
#: Gain corrections tried to reach it (BS.1770's absolute gate makes loudness not exactly scale-invariant).
MAX_NORMALISE_STEPS = 6


def normalise_lufs(audio: np.ndarray, sample_rate: int, lufs: float, target_lufs: float) -> tuple[np.ndarray, float]:
    """``audio`` (float32 ``[2, samples]``, loudness ``lufs``) scaled to ``target_lufs``, and its measured loudness.

    One gain of ``target - lufs`` dB, corrected by the measured error until it is within
    :data:`LUFS_TOLERANCE_LU` (the -70 LUFS absolute gate lets quiet blocks in or out as the
    level moves, so one step can miss by a tenth of an LU); at most :data:`MAX_NORMALISE_STEPS` steps.
    """
    gain_db = target_lufs - lufs
    for _ in range(MAX_NORMALISE_STEPS):
        x = (audio * np.float32(db_to_gain(gain_db))).astype(np.float32)
        measured = integrated_lufs(x, sample_rate)
        if abs(measured - target_lufs) <= LUFS_TOLERANCE_LU:
            break
        gain_db += target_lufs - measured
    return x, measured


def render_excerpt(plan: ExcerptPlan, settings: ComposerSettings, folder: Path) -> dict:
    """Render ``plan`` into ``folder`` (created) and return its manifest entry (``files`` with checksums).

    Writes ``stems/*.wav`` (float32 stereo, each normalised to ``plan.input_lufs``),
    ``stems/manifest.json``, ``target/session.json`` and ``target/mix.wav`` (the builtin
    console's pre-master mix of that session). A stem that renders silent (peak below
    :data:`SILENT_PEAK_DB` or gated out by BS.1770) is left out and listed under ``excluded``.

    Raises:
        ExcerptSkipped: fewer than ``settings.min_tracks`` stems are usable.
        DemoRenderError / DemoSourceMissingError: fluidsynth failed or a source is missing.
    """
    from ...console import render_console

    sr, n = settings.sample_rate, settings.n_samples
    stems_dir, target_dir = folder / "stems", folder / "target"
    stems_dir.mkdir(parents=True, exist_ok=True)
    target_dir.mkdir(parents=True, exist_ok=True)
    excluded = list(plan.excluded)
    kept: list[tuple[StemPlan, ChannelLabel, np.ndarray, float, list[str]]] = []
    for stem, label in zip(plan.stems, plan.labels):
        try:
            audio, warnings = render_stem(stem, n, sr, settings.synth_gain, folder)
        except DemoRenderError as e:
            raise DemoRenderError(f"{plan.id}/{stem.name}: {e}") from None
        peak = audio_peak_db(audio)
        if peak < SILENT_PEAK_DB:
            excluded.append({"name": stem.name, "reason": f"rendered silent (peak {peak:.1f} dBFS)"})
            continue
        raw_lufs = integrated_lufs(audio, sr)
        if raw_lufs <= SILENT_LUFS:
            excluded.append({"name": stem.name, "reason": f"gated out by BS.1770 ({raw_lufs:g} LUFS)"})
            continue
        kept.append((stem, label, audio, raw_lufs, warnings))
    # Normalise to the excerpt's common loudness, then label; a gain the console cannot reach drops the track.
    while True:
        if len(kept) < settings.min_tracks:
            raise ExcerptSkipped(f"{plan.id}: only {len(kept)} usable stems "
                                 f"({', '.join(k[0].name for k in kept)}); an excerpt needs {settings.min_tracks}")
        normalised = [normalise_lufs(a, sr, raw, plan.input_lufs) for _, _, a, raw, _ in kept]
        inputs = [x for x, _ in normalised]
        input_lufs = np.array([lufs for _, lufs in normalised])
        gains = relative_gains_db(np.array([k[1].cc7_gain_db for k in kept]), np.array([k[3] for k in kept]),
                                  input_lufs)
        gains = np.round(gains, GAIN_DECIMALS)
        fp, tp = CHANNEL_STRIP.param("fader.fader_db"), CHANNEL_STRIP.param("trim.gain_db")
        bad = [i for i, g in enumerate(gains) if not (fp.min + tp.min <= g <= fp.max + tp.max)]
        if not bad:
            break
        worst = max(bad, key=lambda i: abs(gains[i]))
        excluded.append({"name": kept[worst][0].name,
                         "reason": f"label gain {gains[worst]:+.1f} dB is beyond the console's reach"})
        del kept[worst]

    freedoom = SOURCE_PACKAGES["freedoom"]
    ex, ref = plan.excerpt, plan.ref
    stem_entries: list[dict[str, Any]] = []
    for (stem, label, _, raw, warnings), x, lufs_in, g in zip(kept, inputs, input_lufs, gains):
        path = stems_dir / f"{stem.name}.wav"
        write_audio(path, x, sr, "FLOAT")
        packages = sorted({p.package for p in stem.parts})
        licences = [freedoom["license"] + " (composition)"] + [SOURCE_PACKAGES[k]["license"] + " (samples)"
                                                               for k in packages]
        stem_entries.append({
            "file": path.name, "name": stem.name, "role": stem.role, "kind": stem.kind,
            "description": stem.description, "midi_channel": stem.midi_channel, "gm_program": stem.gm_program,
            "notes": stem.notes, "soundfonts": [str(p.soundfont) for p in stem.parts],
            "peak_dbfs": round(audio_peak_db(x), 2), "sha256": sha256_file(path),
            "source": f"{ref.wad.name}:{ref.lump} (Freedoom), excerpt {ex.start_s:.3f}-{ex.end_s:.3f} s",
            "license": " AND ".join(licences),
            "attribution": "; ".join([freedoom["attribution"]] + [SOURCE_PACKAGES[k]["attribution"]
                                                                  for k in packages]),
            "target": _target_json(label, float(g), raw, float(lufs_in)),
            **({"render_warnings": warnings} if warnings else {}),
        })
    names = [s["name"] for s in stem_entries]
    provenance = {"mixer": "composer", "mixbridge_version": __version__,
                  "source": f"{ref.wad.name}:{ref.lump} (Freedoom), excerpt {ex.start_s:.3f}-{ex.end_s:.3f} s",
                  "labels": "CC7 (GM volume law) and CC10 of the composer's MIDI file; see the dataset's config.json"}
    session = composer_session(names, [f"../stems/{s['file']}" for s in stem_entries],
                               [s["role"] for s in stem_entries], [s["target"]["gain_db"] for s in stem_entries],
                               [s["target"]["pan"] for s in stem_entries], sr, provenance)
    session.base_dir = target_dir
    save_session(session, target_dir / "session.json")
    mix = render_console(session, "builtin", audio=dict(zip(names, inputs))).mix
    write_audio(target_dir / "mix.wav", mix, sr, "FLOAT")
    song = plan.song
    stem_manifest = {
        "format": EXCERPT_FORMAT, "version": DATASET_VERSION, "id": plan.id, "folder": plan.song_folder,
        "lump": ref.lump, "wad": ref.wad.name, "title": song.title, "midi_texts": song.texts[:12],
        "drum_kit": plan.kit, "split": plan.split,
        "excerpt": {"index": plan.index, "start_s": round(ex.start_s, 6), "end_s": round(ex.end_s, 6),
                    "start_tick": ex.start_tick, "end_tick": ex.end_tick,
                    "tempo_bpm_at_start": round(60e6 / song.tempo_at(ex.start_tick), 3),
                    "song_duration_s": round(song.duration_s, 3)},
        "sample_rate": sr, "samples": n, "duration_s": n / sr, "channels": 2, "subtype": "FLOAT",
        "input_lufs": plan.input_lufs,
        "labels": {"gain_db": GAIN_RULE, "pan": PAN_RULE},
        "roles": {s["name"]: s["role"] for s in stem_entries},
        "stems": stem_entries,
        "excluded": excluded,
    }
    atomic_write_text(stems_dir / "manifest.json", json.dumps(stem_manifest, indent=2) + "\n")
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        files[path.relative_to(folder).as_posix()] = sha256_file(path)
    return {"id": plan.id, "folder": f"excerpts/{plan.id}", "lump": ref.lump, "song": plan.song_folder,
            "split": plan.split, "kit": plan.kit, "n_tracks": len(stem_entries),
            "start_s": round(ex.start_s, 6), "input_lufs": plan.input_lufs, "files": files}


EXCERPT_RECORD = "excerpt.json"


def _finished_entry(out_dir: Path, plan_id: str, settings_json: dict) -> dict | None:
    """The entry of an excerpt already in place with these settings and intact files, else None."""
    folder = out_dir / "excerpts" / plan_id
    try:
        record = json.loads((folder / EXCERPT_RECORD).read_text())
    except (OSError, ValueError):
        return None
    if record.get("settings") != settings_json or not isinstance(record.get("entry"), dict):
        return None
    entry = record["entry"]
    try:
        for rel, digest in entry["files"].items():
            if sha256_file(folder / rel) != digest:
                return None
    except (OSError, KeyError, AttributeError):
        return None
    return entry


def _first_difference(old: dict, new: dict) -> str | None:
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            return key
    return None


def _config(settings: ComposerSettings, used: Sequence[str], skipped: list[dict], skipped_excerpts: list[dict],
            wads: Sequence[Path], gm_soundfont: Path, kits: dict[str, Path]) -> dict:
    return {"format": DATASET_FORMAT, "version": DATASET_VERSION, "settings": settings.to_json(),
            "split": {"rule": SPLIT_RULE, **split_songs(used)},
            "labels": {"gain_db": GAIN_RULE, "pan": PAN_RULE},
            "skipped_songs": skipped, "skipped_excerpts": skipped_excerpts,
            "tools": {"fluidsynth": fluidsynth_version(), "mixbridge": __version__},
            "sources": ([source_entry(Path(w), "freedoom") for w in wads]
                        + [source_entry(Path(gm_soundfont), "fluid-soundfont-gm")]
                        + [source_entry(Path(kits[k]), "avldrums.lv2-soundfont") for k in KIT_ORDER])}


def _prepare_folder(out_dir: Path, settings_json: dict, force: bool) -> None:
    """Check ``out_dir`` may receive this build; with ``force``, remove what an earlier build wrote."""
    config = out_dir / "config.json"
    if out_dir.exists() and not config.is_file() and any(out_dir.iterdir()):
        raise ComposerSettingsError(f"{out_dir}: not empty and not a composer dataset (no config.json); "
                                    "give a new or empty folder")
    if not config.is_file():
        return
    if force:
        for name in ("manifest.json", "config.json"):
            (out_dir / name).unlink(missing_ok=True)
        shutil.rmtree(out_dir / "excerpts", ignore_errors=True)
        return
    old = read_record(config, format=DATASET_FORMAT, versions=(DATASET_VERSION,), what="composer dataset config",
                      fix="rebuild it with --force", error=ComposerDatasetError)
    old_settings = old.get("settings") or {}
    key = _first_difference(old_settings, settings_json)
    if key is not None:
        raise ComposerSettingsError(
            f"{out_dir}: built with {key} = {json.dumps(old_settings.get(key))[:120]}, this run asks for "
            f"{json.dumps(settings_json.get(key))[:120]}; rerun with --force to rebuild it, or give another folder")


def build_composer(out_dir: str | Path, settings: ComposerSettings, *, force: bool = False, jobs: int = 2,
                   progress: bool = True, wads: Sequence[str | Path] = FREEDOOM_WADS,
                   gm_soundfont: Path = GM_SOUNDFONT, drum_kits: dict[str, Path] | None = None,
                   log: Callable[[str], None] | None = None) -> dict:
    """Build (or resume) the composer dataset in ``out_dir``; return a summary.

    Each excerpt is rendered in a hidden staging folder and moved to
    ``excerpts/<id>`` when complete, with ``excerpt.json`` (its entry and the
    settings); a rerun with the same settings keeps every excerpt whose files match
    their checksums and renders the rest. ``config.json`` (settings, split, label
    rules, skipped songs) is written first and rewritten at the end;
    ``manifest.json`` (every excerpt with its files' checksums) last, atomically:
    its presence means the dataset is complete.

    Args:
        jobs: excerpts rendered at once (one fluidsynth process each).
        progress: a tqdm bar of songs on stderr.
        log: receives one line per skipped song (default: nothing).

    Returns:
        ``{"songs_used", "songs_skipped", "excerpts", "per_split", "tracks_per_excerpt",
        "rendered", "reused", "skipped_excerpts", "seconds"}``.

    Raises:
        ComposerSettingsError: ``out_dir`` holds a build with other settings (the message
            names the setting; the fix is --force or another folder), or another folder.
        DemoSourceMissingError: a WAD, soundfont or fluidsynth is missing.
        UnknownNameError: an unknown song; ParamRangeError: a setting out of range.
        DemoSourceError: no song gave a usable excerpt. (A song without one, or an excerpt
            whose render failed, is skipped and listed in ``config.json``; a rerun retries it.)
    """
    t_start = time.monotonic()
    settings.validate()
    kits = dict(drum_kits or DRUM_KITS)
    for kit in KIT_ORDER:
        if kit not in kits:
            raise UnknownNameError(f"drum kit {kit!r}: not given; known kits: {', '.join(kits)}")
    log = log or (lambda s: None)
    wad_paths = [Path(w) for w in wads]
    for path in wad_paths + [Path(gm_soundfont)] + [Path(kits[k]) for k in KIT_ORDER]:
        if not path.is_file():
            package = "freedoom" if path.suffix == ".wad" else (
                "fluid-soundfont-gm" if path == Path(gm_soundfont) else "avldrums.lv2-soundfont")
            raise DemoSourceMissingError(f"{path}: not found; install it with `apt-get install {package}`")
    fluidsynth_path()
    refs = [resolve_song(lump, wad_paths) for lump in settings.songs]
    out_dir = Path(out_dir)
    settings_json = settings.to_json()
    _prepare_folder(out_dir, settings_json, force)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(".staging-*"):
        shutil.rmtree(stale, ignore_errors=True)
    atomic_write_text(out_dir / "config.json", json.dumps(
        _config(settings, settings.songs, [], [], wad_paths, gm_soundfont, kits), indent=2) + "\n")

    skipped: list[dict] = []
    song_plans: list[tuple[SongRef, list[ExcerptPlan]]] = []
    for ref in refs:
        try:
            song_plans.append((ref, plan_song(ref, settings, gm_soundfont=Path(gm_soundfont), drum_kits=kits)))
        except DemoSourceError as e:
            skipped.append({"lump": ref.lump, "reason": str(e)})
            log(f"skipped {ref.lump}: {e}")
    entries: dict[str, dict] = {}
    todo: list[ExcerptPlan] = []
    for _, plans in song_plans:
        for p in plans:
            done = _finished_entry(out_dir, p.id, settings_json)
            if done is not None:
                entries[p.id] = done
            else:
                todo.append(p)
    reused = sorted(entries)
    if todo:
        (out_dir / "manifest.json").unlink(missing_ok=True)
    (out_dir / "excerpts").mkdir(exist_ok=True)

    skipped_excerpts: list[dict] = []
    remaining = {ref.lump: sum(1 for p in plans if p.id not in entries) for ref, plans in song_plans}
    bar = tqdm(total=len(refs), desc="composer", unit="song", file=sys.stderr, disable=not progress)
    bar.update(len(refs) - sum(1 for v in remaining.values() if v > 0))

    def work(p: ExcerptPlan) -> tuple[ExcerptPlan, dict | None, str | None]:
        staging = Path(tempfile.mkdtemp(prefix=f".staging-{p.id}-", dir=out_dir))
        try:
            try:
                entry = render_excerpt(p, settings, staging)
            except (ExcerptSkipped, DemoRenderError) as e:  # a failed render skips the excerpt; a rerun retries it
                return p, None, str(e)
            atomic_write_text(staging / EXCERPT_RECORD, json.dumps({"settings": settings_json, "entry": entry},
                                                                   indent=2) + "\n")
            dest = out_dir / "excerpts" / p.id
            if dest.exists():
                shutil.rmtree(dest)
            os.replace(staging, dest)
            return p, entry, None
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    rendered: list[str] = []
    futures: list = []
    try:
        with ThreadPoolExecutor(max_workers=max(1, int(jobs))) as pool:
            futures = [pool.submit(work, p) for p in todo]
            for fut in as_completed(futures):
                p, entry, reason = fut.result()
                if entry is not None:
                    entries[p.id] = entry
                    rendered.append(p.id)
                else:
                    skipped_excerpts.append({"id": p.id, "lump": p.ref.lump, "reason": reason})
                remaining[p.ref.lump] -= 1
                if remaining[p.ref.lump] == 0:
                    bar.update(1)
    except BaseException:
        for fut in futures:
            fut.cancel()
        raise
    finally:
        bar.close()

    ordered = [entries[p.id] for _, plans in song_plans for p in plans if p.id in entries]
    used = [ref.lump for ref, plans in song_plans if any(p.id in entries for p in plans)]
    for ref, _plans in song_plans:
        if ref.lump not in used:
            reasons = "; ".join(s["reason"] for s in skipped_excerpts if s["lump"] == ref.lump)
            skipped.append({"lump": ref.lump, "reason": f"no excerpt rendered usable: {reasons}"})
            log(f"skipped {ref.lump}: {reasons}")
    order = {lump: i for i, lump in enumerate(settings.songs)}
    skipped.sort(key=lambda s: order[s["lump"]])
    skipped_excerpts.sort(key=lambda s: (order[s["lump"]], s["id"]))
    if not ordered:
        raise DemoSourceError(f"no song gave a usable excerpt ({'; '.join(s['reason'] for s in skipped)[:400]}); "
                              "pick other songs")
    atomic_write_text(out_dir / "config.json", json.dumps(
        _config(settings, used, skipped, skipped_excerpts, wad_paths, gm_soundfont, kits), indent=2) + "\n")
    manifest = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "excerpts": ordered}
    atomic_write_text(out_dir / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    per_split = {s: sum(1 for e in ordered if e["split"] == s) for s in ("train", "val", "test")}
    tracks = [e["n_tracks"] for e in ordered]
    return {"root": str(out_dir), "songs_used": len(used), "songs_skipped": len(skipped),
            "excerpts": len(ordered), "per_split": per_split,
            "songs_per_split": {k: len(v) for k, v in split_songs(used).items()},
            "tracks_per_excerpt": {"min": min(tracks), "mean": round(float(np.mean(tracks)), 2), "max": max(tracks)},
            "rendered": sorted(rendered), "reused": reused, "skipped_excerpts": len(skipped_excerpts),
            "seconds": round(time.monotonic() - t_start, 1)}


def resolve_settings(songs: int | None = None, pick: Sequence[str] | None = None,
                     wads: Sequence[str | Path] = FREEDOOM_WADS, **kwargs: Any) -> ComposerSettings:
    """:class:`ComposerSettings` from the CLI's choices: ``pick`` (lumps, ``E1M9`` means ``D_E1M9``),
    else the first ``songs`` songs in WAD order, else every song; ``kwargs`` are the other fields.

    Raises:
        UnknownNameError: an unknown song; ParamRangeError: ``songs`` out of range.
    """
    if pick:
        lumps = tuple(resolve_song(p, wads).lump for p in pick)
    else:
        everything = all_songs(wads)
        if songs is not None and not (1 <= songs <= len(everything)):
            raise ParamRangeError(f"--songs {songs} is outside 1..{len(everything)} (the songs in the WADs)")
        lumps = everything if songs is None else everything[:songs]
    return dataclasses.replace(ComposerSettings(songs=lumps), **kwargs)


__all__ = ["ComposerSettings", "ExcerptPlan", "ExcerptSkipped", "build_composer", "composer_session",
           "draw_input_lufs", "excerpt_id", "plan_song", "render_excerpt", "resolve_settings", "split_gain_db"]
