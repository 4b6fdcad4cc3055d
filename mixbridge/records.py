"""Versioned JSON records: the one reader that says "not a X" and "unsupported version N".

Every file mixbridge writes for a later run to read back is a JSON object that
names its ``format`` and a format ``version``: a session, an export artifact's
sidecar, a model checkpoint's record, a dataset's ``config.json``, the demo's
manifest. :func:`read_record` parses one and refuses, in one wording everywhere,
a file that cannot be read, is not JSON, is not an object, is another format or
a version this mixbridge does not read (STYLE.md point 6, like DAC's
``SUPPORTED_VERSIONS``). Checksums of the files a record lists are checked with
:mod:`mixbridge.checksum`; what a record's fields must hold is checked by its
own loader.
"""
from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from .errors import RecordFormatError

__all__ = ["RecordFormatError", "read_record"]


def read_record(data_or_path: Mapping[str, Any] | bytes | str | os.PathLike, *, format: str | None,
                versions: Collection[int], what: str, version_key: str = "version", fix: str = "",
                missing: str | None = None, error: type[RecordFormatError] = RecordFormatError,
                version_error: type[RecordFormatError] | None = None) -> dict:
    """Parse and check a versioned record; return it as a new dict.

    Args:
        data_or_path: the parsed JSON object, the JSON text as bytes, or the path of a JSON file.
        format: the value the record's ``format`` field must hold (None: the record has no
            ``format`` field, only a version, as artifact sidecars).
        versions: the versions this mixbridge reads.
        what: the record's name in messages, e.g. ``"mixbridge session"``.
        version_key: the name of the version field (``"version"`` or ``"format_version"``).
        fix: what the user should do about an unsupported version, appended to that
            message (e.g. ``"upgrade mixbridge or re-save the session"``).
        missing: the whole message when the file does not exist (e.g. ``"DIR: not a dataset
            (no config.json); create one with ..."``); default: the operating system's reason.
        error: the error type raised (a subclass of :class:`RecordFormatError`).
        version_error: the type raised for a wrong format or version (default: ``error``).

    Raises:
        RecordFormatError (``error``): the file is missing or cannot be read, is not UTF-8 JSON (the
            message says where and that the file may be truncated), or is not a JSON object.
        RecordFormatError (``version_error``): ``format`` is another value ("not a X"), or
            the version is missing or not in ``versions`` (the message lists the supported ones).
    """
    version_error = version_error or error
    tail = f"; {fix}" if fix else ""
    where = ""
    if isinstance(data_or_path, Mapping) or not isinstance(data_or_path, (bytes, str, os.PathLike)):
        data: Any = data_or_path  # parsed JSON: an object, or something that is not one (refused below)
    else:
        if isinstance(data_or_path, bytes):
            raw = data_or_path
        else:
            path = Path(data_or_path)
            where = f"{path}: "
            if missing is not None and not path.is_file():
                raise error(missing)
            try:
                raw = path.read_bytes()
            except OSError as e:
                raise error(f"{where}cannot read the {what} ({e.strerror or e})") from None
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise error(f"{where}cannot parse the {what}: not UTF-8 text ({e.reason}); the file is truncated "
                        f"or not a {what}") from None
        except json.JSONDecodeError as e:
            raise error(f"{where}cannot parse the {what}: invalid JSON at line {e.lineno} column {e.colno} "
                        f"({e.msg}); the file is truncated or not a {what}") from None
    if not isinstance(data, Mapping):
        raise error(f"{where}not a {what}: a JSON object was expected, got {type(data).__name__}")
    if format is not None and data.get("format") != format:
        raise version_error(f"{where}not a {what}: 'format' is {data.get('format')!r}, expected {format!r}")
    version = data.get(version_key)
    if isinstance(version, bool) or version not in tuple(versions):
        raise version_error(f"{where}{what} {version_key} {version!r} is not supported; this mixbridge reads "
                            f"{', '.join(map(str, sorted(versions)))}{tail}")
    return dict(data)
