"""Errors of the demo builder: a source that is missing, a source that cannot be used, a failed render.

Each subclasses :class:`~mixbridge.errors.MixbridgeError` and the builtin that fits
(STYLE.md point 4), so the CLI prints them as one line and exits 2.
"""
from __future__ import annotations

from mixbridge.errors import MixbridgeError
from mixbridge.records import RecordFormatError


class DemoSourceMissingError(FileNotFoundError, MixbridgeError):
    """A file the demo is built from (WAD, soundfont, the fluidsynth program) is missing."""


class DemoSourceError(ValueError, MixbridgeError):
    """A source file that cannot be used: a corrupt WAD or MIDI lump, a song too short."""


class DemoRenderError(RuntimeError, MixbridgeError):
    """fluidsynth failed or produced unusable audio for a stem."""



class DemoManifestError(DemoSourceError, RecordFormatError):
    """A demo manifest that is unreadable, not a demo manifest, or of an unsupported version."""
