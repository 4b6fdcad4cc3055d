"""Loaders for the public multitrack layouts users bring: MedleyDB, ENST-drums, MUSDB18, Cambridge-MT.

Each loader walks a folder in the dataset's published layout and returns
:class:`Multitrack` records (paths, not audio): the stems of one song with a
role each (mixbridge's role vocabulary, guessed from the layout's metadata or
file names), the reference mix when the layout ships one, and metadata. No
audio is decoded and nothing is imported beyond numpy-free stdlib and PyYAML
(MedleyDB only); the data generator and the models read the audio later.

Layouts (as distributed; the tests build small fixtures in the same shape):

* ``medleydb``: ``ROOT/<Song>/<Song>_METADATA.yaml`` (or ``ROOT/Metadata/``),
  ``<Song>_MIX.wav``, ``<Song>_STEMS/<Song>_STEM_NN.wav``, ``<Song>_RAW/...``;
  the YAML's ``stems: {S01: {filename, instrument, raw: {...}}}`` gives the
  files and instruments (Bittner et al., ISMIR 2014). ``raw=True`` returns the
  raw tracks instead of the stems.
* ``enst``: ``ROOT/drummer_N/audio/<mic>/<take>.wav`` with mics ``kick``,
  ``snare``, ``hi-hat``, ``tom_1``, ``tom_2``, ``overhead_L``, ``overhead_R``
  (stems), ``wet_mix`` / ``dry_mix`` (reference mixes) and ``accompaniment``
  (Gillet & Richard, ISMIR 2006).
* ``musdb``: MUSDB18-HQ ``ROOT/{train,test}/<Artist - Title>/{drums,bass,other,vocals,mixture}.wav``.
  The compressed MUSDB18 ``.stem.mp4`` files must be decoded to that layout first
  (``musdbconvert`` from the ``musdb`` package).
* ``cambridge``: Cambridge-MT "Mixing Secrets" downloads unzipped, one folder per
  song (``<Artist>_<Title>_Full/NN_Name.wav``, possibly nested).
* ``folders``: ``ROOT/<song>/<stem>.wav`` (mixbridge's demo; ``<song>/manifest.json``
  may give ``roles``), or ``ROOT/<stem>.wav`` for a single song.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mixbridge.audio import AUDIO_SUFFIXES
from mixbridge.errors import AudioInputError, MixbridgeError, UnknownNameError
from mixbridge.roles import guess_role


class LayoutError(ValueError, MixbridgeError):
    """A folder that does not follow the layout it was loaded as."""


@dataclass
class Multitrack:
    """One song: ``stems`` maps a stem name to its audio file; ``roles`` a stem name to a role."""

    name: str
    stems: dict[str, Path]
    roles: dict[str, str] = field(default_factory=dict)
    mix: Path | None = None
    meta: dict = field(default_factory=dict)
    layout: str = ""


def _audio_files(folder: Path, recursive: bool = False) -> list[Path]:
    it = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in it if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith("."))


def _need_dir(root: Path, layout: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise AudioInputError(f"{root}: not a folder; give the root of a {layout} dataset")
    return root


def _none_found(root: Path, layout: str, expect: str) -> LayoutError:
    return LayoutError(f"{root}: no {layout} songs found (expected {expect}); check --layout and the folder")


# --------------------------------------------------------------------------- MedleyDB
def medleydb(root: str | Path, *, raw: bool = False) -> list[Multitrack]:
    """MedleyDB songs from their ``*_METADATA.yaml`` files.

    Raises:
        LayoutError: no metadata found, malformed YAML, or a listed file missing (named).
    """
    import yaml

    root = _need_dir(Path(root), "MedleyDB")
    metas = sorted(set(root.glob("*/*_METADATA.yaml")) | set(root.glob("Metadata/*_METADATA.yaml")))
    out = []
    for meta_path in metas:
        song = meta_path.name[: -len("_METADATA.yaml")]
        song_dir = root / song if (root / song).is_dir() else meta_path.parent
        try:
            meta = yaml.safe_load(meta_path.read_text())
        except (OSError, yaml.YAMLError) as e:
            raise LayoutError(f"{meta_path}: unreadable MedleyDB metadata ({e})") from None
        if not isinstance(meta, dict) or not isinstance(meta.get("stems"), dict):
            raise LayoutError(f"{meta_path}: no 'stems' mapping; is this a MedleyDB metadata file?")
        stem_dir = song_dir / meta.get("stem_dir", f"{song}_STEMS")
        raw_dir = song_dir / meta.get("raw_dir", f"{song}_RAW")
        stems, roles = {}, {}
        for sid, s in sorted(meta["stems"].items()):
            items = sorted((s.get("raw") or {}).items()) if raw else [(sid, s)]
            for tid, t in items:
                path = (raw_dir if raw else stem_dir) / t["filename"]
                if not path.is_file():
                    raise LayoutError(f"{meta_path}: {tid} lists {path.name}, which is missing from {path.parent}")
                inst = t.get("instrument") or s.get("instrument") or ""
                if isinstance(inst, list):
                    inst = inst[0] if inst else ""
                name = f"{tid}_{re.sub(r'[^A-Za-z0-9]+', '_', inst).strip('_') or 'track'}"
                stems[name] = path
                roles[name] = guess_role(inst)
        mix = song_dir / meta.get("mix_filename", f"{song}_MIX.wav")
        out.append(Multitrack(song, stems, roles, mix if mix.is_file() else None,
                              {k: meta.get(k) for k in ("artist", "title", "genre", "has_bleed", "instrumental")},
                              "medleydb"))
    if not out:
        raise _none_found(root, "MedleyDB", "<Song>/<Song>_METADATA.yaml")
    return out


# --------------------------------------------------------------------------- ENST-drums
ENST_MIXES = ("wet_mix", "dry_mix")
ENST_ROLES = {"kick": "kick", "snare": "snare", "hi-hat": "hihat", "tom_1": "toms", "tom_2": "toms",
              "overhead_l": "cymbals", "overhead_r": "cymbals", "accompaniment": "other"}


def enst(root: str | Path, *, with_accompaniment: bool = False) -> list[Multitrack]:
    """ENST-drums takes: one :class:`Multitrack` per (drummer, take), mics as stems, ``wet_mix`` as mix.

    Raises:
        LayoutError: no ``drummer_*/audio/<mic>/`` folders with takes.
    """
    root = _need_dir(Path(root), "ENST-drums")
    out = []
    for drummer in sorted(p for p in root.glob("drummer_*") if p.is_dir()):
        audio = drummer / "audio"
        if not audio.is_dir():
            continue
        mics = sorted(p for p in audio.iterdir() if p.is_dir())
        takes = sorted({f.stem for m in mics for f in _audio_files(m)})
        for take in takes:
            stems, roles, mix = {}, {}, None
            for m in mics:
                f = next((p for p in _audio_files(m) if p.stem == take), None)
                if f is None:
                    continue
                key = m.name.lower()
                if key in ENST_MIXES:
                    if key == "wet_mix" or mix is None:
                        mix = f
                    continue
                if key == "accompaniment" and not with_accompaniment:
                    continue
                stems[m.name] = f
                roles[m.name] = ENST_ROLES.get(key, guess_role(m.name))
            if stems:
                out.append(Multitrack(f"{drummer.name}/{take}", stems, roles, mix,
                                      {"drummer": drummer.name, "take": take}, "enst"))
    if not out:
        raise _none_found(root, "ENST-drums", "drummer_N/audio/<mic>/<take>.wav")
    return out


# --------------------------------------------------------------------------- MUSDB18
MUSDB_STEMS = {"drums": "percussion", "bass": "bass", "other": "other", "vocals": "lead"}


def musdb(root: str | Path, *, subsets: tuple[str, ...] = ("train", "test")) -> list[Multitrack]:
    """MUSDB18-HQ songs (``{train,test}/<song>/{drums,bass,other,vocals,mixture}.wav``).

    Raises:
        LayoutError: only ``.stem.mp4`` files (decode them first) or no songs.
    """
    root = _need_dir(Path(root), "MUSDB18")
    out = []
    for sub in subsets:
        for song in sorted(p for p in (root / sub).glob("*") if p.is_dir()) if (root / sub).is_dir() else []:
            files = {p.stem: p for p in _audio_files(song)}
            stems = {k: files[k] for k in MUSDB_STEMS if k in files}
            if stems:
                out.append(Multitrack(song.name, stems, {k: MUSDB_STEMS[k] for k in stems}, files.get("mixture"),
                                      {"subset": sub}, "musdb"))
    if not out:
        if list(root.rglob("*.stem.mp4")):
            raise LayoutError(f"{root}: holds MUSDB18 .stem.mp4 files; decode them to WAV stems first "
                              "(pip install musdb; musdbconvert ROOT OUT) and give OUT")
        raise _none_found(root, "MUSDB18", "{train,test}/<song>/{drums,bass,other,vocals}.wav")
    return out


# --------------------------------------------------------------------------- Cambridge-MT / folders
def cambridge(root: str | Path) -> list[Multitrack]:
    """Cambridge-MT multitracks: every sub-folder holding audio (searched recursively) is a song.

    Raises:
        LayoutError: no sub-folder holds audio.
    """
    root = _need_dir(Path(root), "Cambridge-MT")
    out = []
    for song in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = _audio_files(song, recursive=True)
        if not files:
            continue
        stems = {}
        for f in files:
            name = re.sub(r"^\d+[_ .-]*", "", f.stem) or f.stem
            base, k = name, 2
            while name in stems:
                name, k = f"{base}_{k}", k + 1
            stems[name] = f
        out.append(Multitrack(song.name, stems, {k: guess_role(k) for k in stems}, None, {}, "cambridge"))
    if not out:
        raise _none_found(root, "Cambridge-MT", "<Song_Full>/NN_Name.wav")
    return out


def folders(root: str | Path) -> list[Multitrack]:
    """``ROOT/<song>/<stem>.wav`` (roles from ``<song>/manifest.json`` if present) or ``ROOT/<stem>.wav``.

    Raises:
        AudioInputError: no audio anywhere.
    """
    root = _need_dir(Path(root), "multitrack")

    def song(folder: Path, name: str) -> Multitrack | None:
        files = _audio_files(folder)
        if not files:
            return None
        roles = {}
        man = folder / "manifest.json"
        if man.is_file():
            try:
                roles = dict(json.loads(man.read_text()).get("roles", {}))
            except (OSError, ValueError, AttributeError):
                roles = {}
        stems = {f.stem: f for f in files}
        return Multitrack(name, stems, {k: roles.get(k) or guess_role(k) for k in stems}, None, {}, "folders")

    out = [m for m in (song(p, p.name) for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith("."))
           if m is not None]
    if not out:
        single = song(root, root.name)
        if single is None:
            raise AudioInputError(f"{root}: no audio files in the folder or its sub-folders; "
                                  "give ROOT/<song>/<stem>.wav")
        out = [single]
    return out


LAYOUTS: dict[str, Callable[..., list[Multitrack]]] = {
    "folders": folders, "medleydb": medleydb, "enst": enst, "musdb": musdb, "cambridge": cambridge,
}


def load_layout(root: str | Path, layout: str = "folders", **options) -> list[Multitrack]:
    """Load the multitracks under ``root`` in ``layout``.

    Raises:
        UnknownNameError: an unknown layout (the message lists them).
        LayoutError / AudioInputError: as the loader raises.
    """
    if layout not in LAYOUTS:
        raise UnknownNameError(f"unknown layout '{layout}'; known: {', '.join(LAYOUTS)}")
    return LAYOUTS[layout](root, **options)
