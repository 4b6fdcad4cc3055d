"""The composer dataset's split: by song (WAD lump), fixed, never by excerpt.

A song's bucket depends on its lump name only, so every build, of any subset of
songs, puts a song in the same split: ``u`` = the first 8 hex digits of
SHA-256(lump) as a fraction of 2**32; ``u < 0.15`` -> test, ``u < 0.25`` -> val,
else train; the demo's three songs (:data:`DEMO_TEST_SONGS`) are always test.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable

#: The demo multitrack's songs (``demo.sources.CURATED_SONGS[:3]``): always in the test split.
DEMO_TEST_SONGS = ("D_E1M9", "D_E2M3", "D_E3M4")
#: Fractions of the hash range that go to test, then val (about 15 % and 10 % of songs).
TEST_FRACTION = 0.15
VAL_FRACTION = 0.10
#: Prefixed to the lump before hashing (a fixed constant: changing it changes every split).
SPLIT_SALT = "composer-split-v1:"
SPLITS = ("train", "val", "test")
SPLIT_RULE = (f"by song (lump): u = int(sha256('{SPLIT_SALT}' + lump)[:8], 16) / 2**32; test if the lump is one of "
              f"{', '.join(DEMO_TEST_SONGS)} or u < {TEST_FRACTION:g}; val if u < {TEST_FRACTION + VAL_FRACTION:g}; "
              "else train")


def lump_fraction(lump: str) -> float:
    """``u`` in [0, 1) of ``lump`` (e.g. ``"D_E1M9"``): SHA-256 of ``SPLIT_SALT + lump``, first 32 bits over 2**32."""
    return int(hashlib.sha256((SPLIT_SALT + lump).encode("ascii")).hexdigest()[:8], 16) / 2.0 ** 32


def split_of(lump: str) -> str:
    """The split (``"train"``, ``"val"`` or ``"test"``) of song ``lump`` under :data:`SPLIT_RULE`."""
    if lump in DEMO_TEST_SONGS:
        return "test"
    u = lump_fraction(lump)
    if u < TEST_FRACTION:
        return "test"
    if u < TEST_FRACTION + VAL_FRACTION:
        return "val"
    return "train"


def split_songs(lumps: Iterable[str]) -> dict[str, list[str]]:
    """``{"train": [...], "val": [...], "test": [...]}`` of ``lumps``, each list in the given order."""
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    for lump in lumps:
        out[split_of(lump)].append(lump)
    return out
