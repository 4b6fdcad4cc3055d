"""The one versioned-record reader (:func:`mixbridge.records.read_record`) and the loaders built on it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from mixbridge.errors import MixbridgeError, SessionError, SessionVersionError
from mixbridge.records import RecordFormatError, read_record

KW = dict(format="mixbridge-thing", versions=(1, 2), what="mixbridge thing")


def test_a_good_record_comes_back_as_a_new_dict(tmp_path: Path) -> None:
    record = {"format": "mixbridge-thing", "version": 2, "x": [1, 2]}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(record))
    for source in (record, json.dumps(record).encode(), path, str(path)):
        out = read_record(source, **KW)
        assert out == record and out is not record


@pytest.mark.parametrize("data, message", [
    ({"format": "other", "version": 1}, "not a mixbridge thing: 'format' is 'other', expected 'mixbridge-thing'"),
    ({"version": 1}, "not a mixbridge thing: 'format' is None"),
    ({"format": "mixbridge-thing", "version": 3},
     "mixbridge thing version 3 is not supported; this mixbridge reads 1, 2; upgrade it"),
    ({"format": "mixbridge-thing"}, "mixbridge thing version None is not supported"),
    ({"format": "mixbridge-thing", "version": True}, "mixbridge thing version True is not supported"),
    ([1, 2], "not a mixbridge thing: a JSON object was expected, got list"),
])
def test_each_refusal_names_what_was_found_and_what_is_read(data, message: str) -> None:
    with pytest.raises(RecordFormatError) as e:
        read_record(data, fix="upgrade it", **KW)
    assert str(e.value).startswith(message)
    assert isinstance(e.value, ValueError) and isinstance(e.value, MixbridgeError)


def test_files_that_cannot_be_parsed_name_the_file_and_the_place(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_text('{"format": "mixbridge-thing", "vers')
    with pytest.raises(RecordFormatError, match=r"cut.json: cannot parse the mixbridge thing: invalid JSON at "
                                                 r"line 1 column 31 .*the file is truncated"):
        read_record(path, **KW)
    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(RecordFormatError, match="not UTF-8"):
        read_record(path, **KW)
    with pytest.raises(RecordFormatError, match="none.json: cannot read the mixbridge thing"):
        read_record(tmp_path / "none.json", **KW)


def test_format_none_checks_only_the_version_under_its_key() -> None:
    assert read_record({"format_version": 1}, format=None, versions=(1,), what="sidecar",
                       version_key="format_version") == {"format_version": 1}
    with pytest.raises(RecordFormatError, match="sidecar format_version 2 is not supported"):
        read_record({"format_version": 2}, format=None, versions=(1,), what="sidecar", version_key="format_version")


def test_loader_error_types_are_raised_and_stay_record_format_errors(tmp_path: Path) -> None:
    class ThingError(RecordFormatError):
        pass

    class ThingVersionError(ThingError):
        pass

    with pytest.raises(ThingVersionError):
        read_record({"format": "mixbridge-thing", "version": 9}, error=ThingError, version_error=ThingVersionError,
                    **KW)
    with pytest.raises(ThingError) as e:
        read_record(b"[", error=ThingError, version_error=ThingVersionError, **KW)
    assert not isinstance(e.value, ThingVersionError)


def test_the_loaders_share_the_reader() -> None:
    from mixbridge import session
    from mixbridge.export.artifact import ArtifactError
    from mixbridge.plugins.datagen.demo.errors import DemoManifestError
    from mixbridge.plugins.datagen.errors import DatasetFormatError

    assert issubclass(SessionError, RecordFormatError) and issubclass(DatasetFormatError, RecordFormatError)
    assert issubclass(DemoManifestError, RecordFormatError) and issubclass(ArtifactError, RecordFormatError)
    with pytest.raises(SessionVersionError,
                       match="mixbridge session version 7 is not supported; this mixbridge reads 1"):
        session.from_dict({"format": "mixbridge-session", "version": 7})


def test_a_missing_file_gets_the_loader_message(tmp_path: Path) -> None:
    with pytest.raises(RecordFormatError, match=r"^DIR: not a thing folder \(no t.json\)$"):
        read_record(tmp_path / "t.json", missing="DIR: not a thing folder (no t.json)", **KW)


def test_the_provenance_hash_is_remembered_until_the_file_changes(tmp_path) -> None:
    import hashlib
    import os

    from mixbridge.checksum import sha256_file_memo

    p = tmp_path / "stem.wav"
    p.write_bytes(b"one")
    first = sha256_file_memo(p)
    assert first == "sha256:" + hashlib.sha256(b"one").hexdigest()
    assert sha256_file_memo(p, prefixed=False) == hashlib.sha256(b"one").hexdigest()
    p.write_bytes(b"two")  # rewritten in place: a new modification time, hashed again
    os.utime(p, ns=(os.stat(p).st_atime_ns, os.stat(p).st_mtime_ns + 1_000_000))
    assert sha256_file_memo(p) == "sha256:" + hashlib.sha256(b"two").hexdigest()
