"""Session file v1: round trip, atomic save, refusal of unknown versions and bad values."""
from __future__ import annotations

import json

import pytest

from mixbridge.app.cli import main
from mixbridge.errors import ParamRangeError, SessionError, SessionVersionError, UnknownParamError
from mixbridge.session import Automation, Session, Track, from_dict, load, save


def _session(tmp_path) -> Session:
    t = Track("kick", "kick.wav", role="kick")
    t.params["compressor"].update(threshold_db=-20.0, ratio=4.0)
    t.automation["fader.fader_db"] = Automation([0.0, 2.0], [-6.0, 0.0])
    s = Session(48000, [t, Track("bass", "bass.wav")], provenance={"mixer": "test"})
    return s


def test_round_trip(tmp_path):
    s = _session(tmp_path)
    path = save(s, tmp_path / "session.json")
    back = load(path)
    assert back.to_json() == s.to_json()
    assert back.tracks[0].automation["fader.fader_db"].values == [-6.0, 0.0]
    assert back.base_dir == tmp_path.resolve()
    assert back.source_path(back.tracks[0]) == tmp_path.resolve() / "kick.wav"


def test_save_is_atomic_and_leaves_no_temp(tmp_path):
    path = save(_session(tmp_path), tmp_path / "s.json")
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]
    bad = _session(tmp_path)
    bad.tracks[0].params["fader"]["fader_db"] = 99.0
    with pytest.raises(ParamRangeError):
        save(bad, path)
    assert json.loads(path.read_text())["tracks"][0]["params"]["fader"]["fader_db"] == 0.0
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


@pytest.mark.parametrize("version", [0, 2, "1", None])
def test_unknown_version_is_refused(tmp_path, version):
    data = _session(tmp_path).to_json()
    data["version"] = version
    with pytest.raises(SessionVersionError, match="not supported"):
        from_dict(data)


def test_not_a_session(tmp_path):
    with pytest.raises(SessionVersionError, match="not a mixbridge session"):
        from_dict({"version": 1})


def test_bad_values_name_the_track(tmp_path):
    data = _session(tmp_path).to_json()
    data["tracks"][1]["params"]["pan"] = {"pan": 2.0}
    with pytest.raises(ParamRangeError, match=r"track 'bass'\.pan\.pan = 2 is outside \[-1, 1\]"):
        from_dict(data)
    data = _session(tmp_path).to_json()
    data["tracks"][0]["params"]["eq"]["tilt_db"] = 1.0
    with pytest.raises(UnknownParamError, match="tilt_db"):
        from_dict(data)


def test_automation_checks(tmp_path):
    data = _session(tmp_path).to_json()
    data["tracks"][0]["automation"]["fader.fader_db"] = {"times_s": [1.0, 0.5], "values": [0, 0]}
    with pytest.raises(SessionError, match="strictly increasing"):
        from_dict(data)
    data["tracks"][0]["automation"] = {"fader.fader_db": {"times_s": [0.0], "values": [50.0]}}
    with pytest.raises(ParamRangeError, match="fader_db"):
        from_dict(data)
    data["tracks"][0]["automation"] = {"fader.volume": {"times_s": [0.0], "values": [0.0]}}
    with pytest.raises(UnknownParamError):
        from_dict(data)


def test_duplicate_track_names(tmp_path):
    data = _session(tmp_path).to_json()
    data["tracks"][1]["name"] = "kick"
    with pytest.raises(SessionError, match="appears twice"):
        from_dict(data)


def test_cli_validate(tmp_path, capsys):
    path = save(_session(tmp_path), tmp_path / "s.json")
    assert main(["session", "validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "kick" in out and "source file not found" in out
    data = json.loads(path.read_text())
    data["version"] = 7
    path.write_text(json.dumps(data))
    assert main(["session", "validate", str(path)]) == 1
    assert "version 7 is not supported" in capsys.readouterr().err
    path.write_text("{not json")
    assert main(["session", "validate", str(path)]) == 1
    assert "invalid JSON at line 1" in capsys.readouterr().err
