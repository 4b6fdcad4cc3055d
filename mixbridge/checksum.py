"""SHA-256 checksums of files and bytes, the one implementation every manifest uses.

``prefixed=True`` returns ``"sha256:<hex>"`` (the form manifests and sessions
store); ``prefixed=False`` the bare hex digest (artifact sidecars, checkpoints).
"""
from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_bytes(data: bytes, prefixed: bool = True) -> str:
    """SHA-256 (FIPS 180-4, :mod:`hashlib`) of ``data``: ``"sha256:<hex>"``, or the bare hex digest."""
    digest = hashlib.sha256(data).hexdigest()
    return f"sha256:{digest}" if prefixed else digest


def sha256_file(path: str | Path, prefixed: bool = True) -> str:
    """SHA-256 of the file at ``path``, read in 1 MiB chunks: ``"sha256:<hex>"``, or the bare hex digest.

    Raises:
        OSError: the file cannot be read (FileNotFoundError when it is missing).
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return f"sha256:{h.hexdigest()}" if prefixed else h.hexdigest()
