"""Shard files of a dataset: deterministic ``.npz`` bytes, atomic writes, memory-mapped reads.

A shard (``DATASET/shards/shard-SSSSSSSS-EEEEEEEE.npz``, see :mod:`.format`) is numpy's own
zip-of-``.npy`` format, readable with ``numpy.load`` alone (no mixbridge, no torch, no
pickle: every member is a plain numeric or fixed-width unicode array). It holds many named
arrays of any dtype and shape in one file, so a shard is one atomic rename. Members are
stored uncompressed, so a reader can load or memory-map one array without inflating the
others. numpy's ``savez`` stamps the current time into the zip headers; shards are written
here with :mod:`mixbridge.npz` (a fixed timestamp, members in sorted order), so the same
arrays always give the same bytes.

Writes go to a temporary name, are fsync'd and renamed into place
(:func:`mixbridge.atomic.atomic_path`); a full disk raises :class:`~.errors.DiskFullError`
and leaves nothing at the target path.
"""
from __future__ import annotations

import errno
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from mixbridge.atomic import atomic_path
from mixbridge.checksum import sha256_file
from mixbridge.npz import write_npz_to as _write_npz  # the one .npz writer (tests patch it for ENOSPC)

from .errors import DatasetFormatError, DiskFullError


def write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> tuple[str, int]:
    """Write :func:`mixbridge.npz.npz_bytes`'s exact bytes to ``path`` atomically, streaming (no copy in memory).

    Returns ``(sha256, size in bytes)`` of the file as written (``"sha256:<hex>"``, hashed
    from the page cache before the rename).

    Raises:
        NpzDtypeError: an array of dtype object.
        DiskFullError: the disk is full; nothing is left at ``path``.
    """
    try:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                _write_npz(fh, arrays)
            digest = sha256_file(tmp)
            size = tmp.stat().st_size
    except OSError as e:
        _raise_if_disk_full(e, path, "a shard")
        raise
    return digest, size


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` atomically (temp + fsync + rename): side files and ``config.json``.

    Raises:
        DiskFullError: the disk is full (errno ENOSPC or EDQUOT); nothing is left at ``path``.
    """
    try:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                fh.write(data)
    except OSError as e:
        _raise_if_disk_full(e, path, f"{len(data)} bytes")
        raise


def _raise_if_disk_full(e: OSError, path: Path, what: str) -> None:
    """Turn ENOSPC/EDQUOT from writing ``what`` to ``path`` into :class:`DiskFullError` (other errors pass)."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        raise DiskFullError(errno.ENOSPC, f"{path}: disk full while writing {what}; complete shards were kept. "
                            f"Free space on {path.parent} and rerun the same command to resume") from None


def shard_memmaps(path: str | Path) -> dict[str, np.ndarray]:
    """Memory-map every array of an uncompressed ``.npz`` shard without reading it.

    Shards are stored uncompressed (``ZIP_STORED``), so each ``.npy`` member is a
    contiguous byte range of the file: this reads the zip's local headers and the
    ``.npy`` headers and returns read-only ``numpy.memmap`` views, one per member name
    (without ``.npy``), each of the shape and dtype stored (``[n_examples, ...]``).
    Random access to one example then costs only its own bytes. Empty arrays come back
    as ordinary zero-size arrays (a memmap cannot be empty).

    Raises:
        DatasetFormatError: a compressed member or an unreadable shard (named).
    """
    path = Path(path)
    out: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(path) as zf, open(path, "rb") as fh:
            for info in zf.infolist():
                if info.compress_type != zipfile.ZIP_STORED:
                    raise DatasetFormatError(f"{path}: member {info.filename} is compressed; cannot memory-map it")
                fh.seek(info.header_offset)
                local = fh.read(30)
                name_len, extra_len = struct.unpack("<HH", local[26:30])
                fh.seek(info.header_offset + 30 + name_len + extra_len)
                version = np.lib.format.read_magic(fh)
                shape, fortran, dtype = (np.lib.format.read_array_header_1_0(fh) if version == (1, 0)
                                         else np.lib.format.read_array_header_2_0(fh))
                offset = fh.tell()
                name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                if int(np.prod(shape)) == 0:
                    out[name] = np.zeros(shape, dtype=dtype)
                else:
                    out[name] = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape,
                                          order="F" if fortran else "C")
    except (OSError, zipfile.BadZipFile, ValueError) as e:
        raise DatasetFormatError(f"{path}: cannot memory-map the shard ({e})") from None
    return out
