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


# ----------------------------------------------------------------------------- JSON booleans (issue 10 item 5)
def _doc(tmp_path, **fader) -> dict:
    data = _session(tmp_path).to_json()
    data["tracks"][0]["params"]["fader"].update(fader)
    return data


def test_a_json_true_is_not_the_number_1(tmp_path, capsys):
    """``float(True)`` is 1.0: without the check, ``"fader_db": true`` loads as a +1 dB fader."""
    with pytest.raises(ParamRangeError, match=r"track 'kick'\.fader\.fader_db = true is a JSON boolean, not a "
                                              r"number; give a number in \[-48, 12\] dB \(default 0\)"):
        from_dict(_doc(tmp_path, fader_db=True))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_doc(tmp_path, fader_db=False)))
    assert main(["session", "validate", str(bad)]) == 1
    assert "fader.fader_db = false is a JSON boolean" in capsys.readouterr().err
    # automation values and times, and the stored master gain, the same
    data = _session(tmp_path).to_json()
    data["tracks"][0]["automation"]["fader.fader_db"]["values"] = [True, 0.0]
    with pytest.raises(ParamRangeError, match=r"automation\['fader.fader_db'\]\.values\[0\] = true"):
        from_dict(data)
    data = _session(tmp_path).to_json()
    data["tracks"][0]["automation"]["fader.fader_db"]["times_s"] = [False, 2.0]
    with pytest.raises(ParamRangeError, match=r"times_s\[0\] = false is a JSON boolean"):
        from_dict(data)
    data = _session(tmp_path).to_json()
    data["master"]["solved_gain_db"] = True
    with pytest.raises(ParamRangeError, match="master.solved_gain_db = true is a JSON boolean"):
        from_dict(data)
    data = _session(tmp_path).to_json()
    data["master"]["params"]["limiter"]["ceiling_dbtp"] = True
    with pytest.raises(ParamRangeError, match="master.limiter.ceiling_dbtp = true is a JSON boolean"):
        from_dict(data)


def test_on_off_parameters_still_take_json_booleans(tmp_path):
    """The schema's on/off parameters (``kind="bool"``: mute, invert) read true/false as 1/0."""
    s = from_dict(_doc(tmp_path, mute=True))
    assert s.tracks[0].params["fader"]["mute"] == 1.0 and s.tracks[0].params["fader"]["fader_db"] == 0.0


def test_a_direct_mixers_session_is_refused_by_every_parameter_consumer(tmp_path):
    # A direct mixer (dae, mixwaveunet) writes audio and keeps every strip at its defaults: pushing,
    # automating or rendering its session would silently give the unity sum, so each consumer refuses it.
    from mixbridge.bridge.automation import require_automation
    from mixbridge.bridge.push import push_blind
    from mixbridge.session import DirectSessionError, refuse_direct

    s = Session(48000, [Track("kick", "kick.wav")], provenance={"mixer": "dae", "direct": True})
    assert s.is_direct and not _session(tmp_path).is_direct
    back = load(save(s, tmp_path / "session.json"))
    assert back.is_direct  # the mark survives the file
    for call, action in ((lambda: refuse_direct(back, "render"), "render"),
                         (lambda: push_blind(back, "reaper", port=9), "push"),
                         (lambda: require_automation(back, "automate"), "automate")):
        with pytest.raises(DirectSessionError, match=f"cannot {action} this session: .*'dae'.*mix.wav is the output"):
            call()
    refuse_direct(_session(tmp_path), "render")  # a parameter mixer's session passes
