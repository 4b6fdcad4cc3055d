"""Errors of the composer dataset: a dataset that cannot be read, settings that differ from a build's.

Each subclasses :class:`~mixbridge.errors.MixbridgeError` and the builtin that fits
(STYLE.md point 4), so the CLI prints them as one line and exits 2.
"""
from __future__ import annotations

from mixbridge.errors import MixbridgeError, RecordFormatError


class ComposerDatasetError(RecordFormatError):
    """A composer dataset that is incomplete (no ``manifest.json``), malformed, points outside its
    folder, or whose files do not match their checksums."""


class ComposerSettingsError(ValueError, MixbridgeError):
    """A build asked for settings that differ from those of the dataset already in the folder."""
