"""Building the demo multitrack: settings, per-song plan and render, and the staged build.

``build_demo`` turns General MIDI songs of the Freedoom project into multitracks:
one WAV stem per instrument, rendered by fluidsynth with FluidR3_GM for pitched
parts and the AVL acoustic drum kits for drums (:mod:`.sources` names the
packages and licences). The GM drum part is split by note number into ``kick``,
``snare``, ``hihat``, ``toms``, ``cymbals`` and ``percussion`` stems, like a
multi-miked kit. Volume (CC7) and pan (CC10) are stripped, so stems arrive
unmixed and centred: mixing is mixbridge's job. Every stem of a song has exactly
the same length. The build is staged in a hidden folder and moved into place
only when complete, so an interrupted build leaves nothing half-written.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
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

from .errors import DemoRenderError, DemoSourceError, DemoSourceMissingError
from .gm import slug
from .manifest import (
    BUILDER_VERSION,
    MANIFEST_FORMAT,
    MANIFEST_VERSION,
    attribution_markdown,
    load_manifest,
    up_to_date,
)
from .midi import Song, parse_song
from .plan import Excerpt, StemPlan, choose_excerpt, plan_stems
from .render import fluidsynth_path, fluidsynth_version, render_stem
from .sources import (
    CURATED_SONGS,
    DEFAULT_EXCERPT_S,
    DEFAULT_N_SONGS,
    DEFAULT_SAMPLE_RATE,
    DEFAULT_SYNTH_GAIN,
    DEFAULT_TAIL_S,
    DRUM_KITS,
    FREEDOOM_WADS,
    GM_SOUNDFONT,
    MAX_EXCERPT_S,
    MIN_EXCERPT_S,
    MIN_STEMS_PER_SONG,
    SILENT_PEAK_DB,
    SOURCE_PACKAGES,
    WAV_SUBTYPES,
    source_entry,
)
from .wad import SongRef, resolve_song


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
        kits = drum_kits or DRUM_KITS
        if not self.songs:
            raise ParamRangeError("songs: none given; name at least one song (see `mixbridge demo list`)")
        for lump, kit in self.songs:
            if kit not in kits:
                raise UnknownNameError(f"drum kit {kit!r} for {lump}: unknown; known kits: {', '.join(kits)}")
        if not (MIN_EXCERPT_S <= self.excerpt_s <= MAX_EXCERPT_S):
            raise ParamRangeError(f"excerpt_s = {self.excerpt_s:g} s is outside "
                                  f"{MIN_EXCERPT_S:g}..{MAX_EXCERPT_S:g} s; "
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
        """The settings as the manifest records them (with :data:`BUILDER_VERSION`)."""
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
        """The song's folder name in the build (:func:`song_folder_name`)."""
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
    bar = tqdm(total=len(plan.stems), desc=plan.folder, unit="stem", file=sys.stderr, leave=False, disable=not progress)

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
    stems: list[dict[str, Any]] = []
    for stem, audio, warnings in results:
        peak_db = audio_peak_db(audio)
        if peak_db < SILENT_PEAK_DB:
            excluded.append({"name": stem.name, "reason": f"rendered silent (peak {peak_db:.1f} dBFS)"})
            continue
        if settings.subtype != "FLOAT" and peak_db >= 0.0:
            raise DemoRenderError(
                f"{ref.lump}/{stem.name}: peak {peak_db:+.2f} dBFS would clip as {settings.subtype}; "
                "use --subtype FLOAT"
            )
        path = folder / f"{stem.name}.wav"
        write_audio(path, audio, settings.sample_rate, settings.subtype)
        kinds = sorted({p.package for p in stem.parts})
        licences = ([freedoom["license"] + " (composition)"]
                    + [SOURCE_PACKAGES[k]["license"] + " (samples)" for k in kinds])
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
            "sha256": sha256_file(path),
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
        current = up_to_date(out_dir, settings.to_json())
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
            "tools": {"fluidsynth": fluidsynth_version(), "mixbridge": __version__},
            "sources": ([source_entry(Path(w), "freedoom") for w in wads]
                        + [source_entry(Path(gm_soundfont), "fluid-soundfont-gm")]
                        + [source_entry(Path(kits[k]), "avldrums.lv2-soundfont")
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
            atomic_write_text(out_dir / "ATTRIBUTION.md", attribution_markdown(manifest))
            atomic_write_text(out_dir / "manifest.json", json.dumps(manifest, indent=2) + "\n")
        finally:
            shutil.rmtree(trash, ignore_errors=True)
        done = True
        return manifest
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not done:
            shutil.rmtree(out_dir, ignore_errors=True)
