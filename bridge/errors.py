"""Typed errors of the DAW bridge.

Each subclasses a builtin and :class:`mixbridge.errors.MixbridgeError`, so the CLI
prints it as one line and exits 2. Messages name the value, the limit and the fix.
"""
from __future__ import annotations

from mixbridge.errors import MixbridgeError


class OscEncodeError(ValueError, MixbridgeError):
    """A value that OSC 1.0 cannot carry (bad address, unsupported argument type)."""


class OscParseError(ValueError, MixbridgeError):
    """Bytes that are not a well-formed OSC 1.0 packet."""


class DawUnreachableError(TimeoutError, MixbridgeError):
    """The DAW did not answer a query within the timeout."""


class DawRangeError(ValueError, MixbridgeError):
    """A session value the DAW cannot represent (it would clamp it)."""


class TrackMatchError(LookupError, MixbridgeError):
    """Session tracks that cannot be matched to DAW tracks."""


class BridgeConfigError(ValueError, MixbridgeError):
    """A bad bridge option: unknown DAW, port out of range, non-local host for a server."""


class ArdourError(RuntimeError, MixbridgeError):
    """Headless Ardour could not be created, started or queried."""


class MidiPortError(OSError, MixbridgeError):
    """A MIDI port (mido / JACK MIDI) that cannot be opened."""


class LiveBusError(RuntimeError, MixbridgeError):
    """The live bus cannot start: no JACK server, a sample-rate or channel mismatch, a busy OSC port."""


class NoAutomationError(BridgeConfigError):
    """A session without automation curves given to a command that plays or exports them."""
