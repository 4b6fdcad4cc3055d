"""Typed errors of data generation (each subclasses a builtin and ``MixbridgeError``).

Messages name the path, the value, the limit and the fix (STYLE.md point 4).
"""
from __future__ import annotations

from typing import Any

from mixbridge.errors import MixbridgeError
from mixbridge.records import RecordFormatError


class DatasetConfigMismatchError(ValueError, MixbridgeError):
    """A dataset folder that already holds data generated with another configuration."""


class SourceChangedError(DatasetConfigMismatchError):
    """A resumed dataset whose source files differ, by content, from the ones it was generated from."""


class DatagenTerminated(KeyboardInterrupt):
    """A generator run stopped by SIGTERM: handled like Ctrl-C (complete shards kept, the summary printed)."""


class DatasetFormatError(RecordFormatError):
    """A folder that is not a mixbridge dataset, or one in an unknown format version."""


class DatasetIntegrityError(ValueError, MixbridgeError):
    """A shard whose checksum, contents or manifest entry do not match."""


class DatasetBusyError(RuntimeError, MixbridgeError):
    """Another generator run holds the dataset folder's lock."""


class DiskFullError(OSError, MixbridgeError):
    """The disk filled up while writing a shard; complete shards were kept."""


class WorkerSetupError(RuntimeError, MixbridgeError):
    """A worker process could not set up its job (backend, plugins, sources)."""


class DatagenConfigError(ValueError, MixbridgeError):
    """A generator option that is out of range or malformed (a --param spec, a chain name...)."""


class DatagenFailuresError(RuntimeError, MixbridgeError):
    """A run in which every example, or more than the allowed fraction, failed.

    Raised after the run's shards (with the failures and their reasons) were committed;
    ``summary`` holds the run's :class:`~mixbridge.plugins.datagen.results.RunSummary`.
    """

    #: The run's :class:`~mixbridge.plugins.datagen.results.RunSummary` (set by the runner).
    summary: Any = None
