"""The finished masters mixbridge learns mastering from, and their split by album (never by excerpt).

The masters are the Debian music packages ``scripts/setup.sh`` installs (DATA.md): Wesnoth 1.16's
soundtrack (one game, 41 tracks, 44.1 kHz Vorbis) and Warzone 2100's three albums plus its menu
theme (48 kHz Opus). Every file of one album goes to one split, fixed here and recorded in each
dataset's config, so no excerpt of a test album is ever trained on:

==========================  =====================================================  ======  =====
album                       folder                                                 tracks  split
==========================  =====================================================  ======  =====
``wesnoth-1.16``            ``/usr/share/games/wesnoth/1.16/data/core/music``      41      train
``warzone2100-aftermath``   ``.../warzone2100/music/albums/aftermath_soundtrack``  13      train
``warzone2100-original``    ``.../warzone2100/music/albums/original_soundtrack``   3       val
``warzone2100-menu``        ``.../warzone2100/music`` (``menu.opus`` only)         1       val
``warzone2100-legacy``      ``.../warzone2100/music/albums/legacy_soundtrack``     13      test
==========================  =====================================================  ======  =====

A user's own masters (any folder) get albums by folder: :func:`album_of` names a file's album by its
parent folder, and :func:`split_of_album` puts an album nobody listed into a split by a salted hash of
its name (about 70 / 15 / 15 %), so the same folder always lands in the same split.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from mixbridge.audio import AUDIO_SUFFIXES
from mixbridge.errors import AudioInputError

__all__ = ["ALBUMS", "SPLITS", "Album", "MasterFile", "album_of", "master_files", "split_of_album"]

#: The split names, in order.
SPLITS = ("train", "val", "test")
_WZ = "/usr/share/games/warzone2100/music"


@dataclass(frozen=True)
class Album:
    """One album of masters: its name, folder, file pattern (non-recursive), split, package and licence."""

    name: str
    folder: str
    pattern: str
    split: str
    package: str
    licence: str


#: The shipped catalogue (DATA.md "Finished stereo masters").
ALBUMS: tuple[Album, ...] = (
    Album("wesnoth-1.16", "/usr/share/games/wesnoth/1.16/data/core/music", "*.ogg", "train",
          "wesnoth-1.16-music", "GPL-2+"),
    Album("warzone2100-aftermath", f"{_WZ}/albums/aftermath_soundtrack", "*.opus", "train",
          "warzone2100-music", "GPL-2+ / CC-BY-SA-3.0"),
    Album("warzone2100-original", f"{_WZ}/albums/original_soundtrack", "*.opus", "val",
          "warzone2100-music", "GPL-2+ / CC-BY-SA-3.0"),
    Album("warzone2100-menu", _WZ, "menu.opus", "val", "warzone2100-music", "GPL-2+ / CC-BY-SA-3.0"),
    Album("warzone2100-legacy", f"{_WZ}/albums/legacy_soundtrack", "*.opus", "test",
          "warzone2100-music", "GPL-2+ / CC-BY-SA-3.0"),
)
#: Salt of the hash split of albums the catalogue does not list.
SPLIT_SALT = "mixbridge-masters-v1"


@dataclass(frozen=True)
class MasterFile:
    """One master: its path, album name and split."""

    path: Path
    album: str
    split: str


def split_of_album(album: str) -> str:
    """The split of ``album``: the catalogue's, else a salted hash of the name (70 / 15 / 15 %)."""
    for a in ALBUMS:
        if a.name == album:
            return a.split
    h = int.from_bytes(hashlib.sha256(f"{SPLIT_SALT}:{album}".encode()).digest()[:8], "big") % 100
    return "train" if h < 70 else "val" if h < 85 else "test"


def album_of(path: str | Path) -> str:
    """The album of a master file: the catalogue's album whose folder and pattern hold it, else its folder's name."""
    p = Path(path)
    for a in ALBUMS:
        if p.parent == Path(a.folder) and p.match(a.pattern):
            return a.name
    return p.parent.name


def master_files(root: str | Path | None = None, *, split: str | None = None) -> list[MasterFile]:
    """The masters (sorted by path) of the catalogue (``root=None``) or of every audio file under ``root``.

    Args:
        root: a folder of the user's masters (recursive; each file's album is its parent folder);
            ``None`` is the shipped catalogue :data:`ALBUMS`.
        split: keep only ``"train"``, ``"val"`` or ``"test"``.

    Raises:
        AudioInputError: no master found (the Debian packages are not installed: run
            ``scripts/setup.sh``; or ``root`` holds no audio), or an unknown ``split``.
    """
    if split is not None and split not in SPLITS:
        raise AudioInputError(f"split {split!r}: use one of {', '.join(SPLITS)}")
    files: list[MasterFile] = []
    if root is None:
        for a in ALBUMS:
            for p in sorted(Path(a.folder).glob(a.pattern)):
                if p.suffix.lower() in AUDIO_SUFFIXES:
                    files.append(MasterFile(p, a.name, a.split))
        where = "the Debian music packages (wesnoth-1.16-music, warzone2100-music); run scripts/setup.sh"
    else:
        base = Path(root)
        if not base.is_dir():
            raise AudioInputError(f"masters folder {base} does not exist; give a folder of finished stereo masters")
        for p in sorted(base.rglob("*")):
            if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES:
                album = album_of(p)
                files.append(MasterFile(p, album, split_of_album(album)))
        where = f"{base} (no audio file with a suffix in {', '.join(sorted(AUDIO_SUFFIXES))})"
    files.sort(key=lambda f: str(f.path))
    if split is not None:
        files = [f for f in files if f.split == split]
    if not files:
        raise AudioInputError(f"no finished masters found{' in split ' + split if split else ''}: {where}")
    return files
