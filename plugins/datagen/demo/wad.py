"""Doom WAD files: the lump directory, one lump's bytes, and the MIDI songs they hold.

A WAD (Doom's archive format, id Software 1993; the layout is documented in the
Unofficial Doom Specs, section 2) is a 12-byte header (``IWAD``/``PWAD``, lump
count, directory offset) and a directory of 16-byte entries (offset, size,
8-byte zero-padded name). Freedoom keeps its music as Standard MIDI File lumps
named ``D_*``. No library reads WADs, and the format is 30 lines of ``struct``.
"""
from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mixbridge.errors import UnknownNameError

from .errors import DemoSourceError, DemoSourceMissingError
from .sources import FREEDOOM_WADS


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

