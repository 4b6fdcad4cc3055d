"""Deterministic ``.npz`` files: the same arrays always give the same bytes.

numpy's ``savez`` writes the current time into every zip member header, so two
saves of the same arrays differ. :func:`write_npz_to` writes numpy's own
zip-of-``.npy`` format (readable with ``numpy.load`` alone, no pickle) with
members in sorted name order, uncompressed (``ZIP_STORED``, so one member can be
memory-mapped or loaded without inflating the others), the fixed timestamp
:data:`ZIP_EPOCH` and fixed permissions. Dataset shards
(:mod:`mixbridge.plugins.datagen.shards`) and an export's golden pair
(:mod:`mixbridge.export.exporter`) are written with it.
"""
from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from typing import BinaryIO

import numpy as np

from .errors import MixbridgeError

#: Zip member timestamp of every member (the earliest a zip can hold).
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
#: Unix permissions recorded for every member (rw-r--r--).
MEMBER_MODE = 0o644
#: Members of at least this many bytes get zip64 headers (the 32-bit limit, less room for the .npy header).
ZIP64_FROM_BYTES = (1 << 31) - (1 << 20)


class NpzDtypeError(ValueError, MixbridgeError):
    """An array that a plain ``.npz`` cannot hold without pickle (dtype object)."""


def write_npz_to(fileobj: BinaryIO, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` (name -> array of any shape and numeric or fixed-width string dtype)
    as a deterministic ``.npz`` into the open binary ``fileobj``.

    Raises:
        NpzDtypeError: an array of dtype object (it would need pickle); names it.
    """
    with zipfile.ZipFile(fileobj, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            arr = np.ascontiguousarray(arrays[name])
            if arr.dtype == object:
                raise NpzDtypeError(f"array '{name}' has dtype object; store numbers or fixed-width strings")
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = MEMBER_MODE << 16
            with zf.open(info, "w", force_zip64=arr.nbytes > ZIP64_FROM_BYTES) as member:
                np.lib.format.write_array(member, arr, allow_pickle=False)


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """The bytes :func:`write_npz_to` writes for ``arrays`` (independent of dict order and the clock).

    Raises:
        NpzDtypeError: an array of dtype object.
    """
    buf = io.BytesIO()
    write_npz_to(buf, arrays)
    return buf.getvalue()
