"""Typed errors of mixbridge.

Every error subclasses :class:`MixbridgeError` *and* the builtin that fits it, so
callers can catch either. Messages name the offending value, the limit and the
fix (STYLE.md point 4); the CLI prints ``str(err)`` as one line and exits 2.
"""
from __future__ import annotations


class MixbridgeError(Exception):
    """Base class of every error mixbridge raises on purpose."""


class ParamRangeError(ValueError, MixbridgeError):
    """A parameter value lies outside its schema range, or outside what a backend can render.

    A backend that refuses a value it cannot render sets ``param`` (the schema name, e.g.
    ``"peak3_q"``), ``value`` and ``reachable`` (``(lo, hi)`` in real units), so that a render
    asked to clamp (``--clamp``) can move the value into that range and list it.
    """

    def __init__(self, message: str, *, param: str | None = None, value: float | None = None,
                 reachable: tuple[float, float] | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.value = value
        self.reachable = reachable


class UnknownParamError(KeyError, MixbridgeError):
    """A parameter or processor name that the schema does not define."""

    def __str__(self) -> str:  # KeyError quotes its message; we want plain text
        return str(self.args[0]) if self.args else ""


class UnknownNameError(LookupError, MixbridgeError):
    """A registry lookup (mixer, backend, plugin map, chain) found nothing."""


class AudioInputError(ValueError, MixbridgeError):
    """Input audio that cannot be used: empty folder, corrupt file, NaN/inf samples."""


class RecordFormatError(ValueError, MixbridgeError):
    """A record that is unreadable, not JSON, not an object, of another format or an unsupported version.

    Bases in the order of every mixbridge error (the builtin first), so that a loader's
    ``class XError(ValueError, MixbridgeError)`` can add it as a base without an MRO conflict.

    Raised by :func:`mixbridge.records.read_record`. Loaders subclass it for their own
    error types (``SessionError``, ``ArtifactError``, ``CheckpointError``,
    ``DatasetFormatError``) and pass them to ``read_record``, so a caller can catch
    either the loader's type or this one.
    """


class SessionError(RecordFormatError):
    """A session file that is unreadable, malformed or fails validation."""


class SessionVersionError(SessionError):
    """A session file written in a format version this mixbridge does not read."""


class PluginNotFoundError(FileNotFoundError, MixbridgeError):
    """A plugin that is not installed or fails to load."""


class PluginMapError(ValueError, MixbridgeError):
    """A plugin map that does not match the installed plugin or the schema."""


class BackendUnavailableError(ImportError, MixbridgeError):
    """A rendering backend whose library or plugins are not installed."""
