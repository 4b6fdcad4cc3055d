"""Issue 15, item 7 and item 2's matching: case-insensitive names never resolve an ambiguity silently, push
says when it writes to a bypassed plugin or sends the static value of an automated parameter, and
``automate`` matches tracks by name like ``push`` (a piano's fader curve reaches the piano strip)."""
from __future__ import annotations

import time

import pytest

from mixbridge.app.cli import main
from mixbridge.bridge.errors import TrackMatchError
from mixbridge.bridge.plugin_maps import get_daw_map
from mixbridge.bridge.profiles import DawTrack, StripLayout
from mixbridge.bridge.push import match_tracks, plan_push
from mixbridge.bridge.transport import free_udp_port
from mixbridge.session import Automation, Session, Track, save
from tests.bridge.test_profiles import FakeReaper


def _tracks(*names: str) -> list[Track]:
    return [Track(n, f"{n}.wav") for n in names]


def test_an_ambiguous_case_insensitive_name_is_an_error_naming_the_candidates():
    with pytest.raises(TrackMatchError) as e:
        match_tracks(_tracks("kick"), [DawTrack(0, "KICK"), DawTrack(1, "Kick")], "name")
    assert "'KICK'" in str(e.value) and "'Kick'" in str(e.value) and "'kick'" in str(e.value)
    with pytest.raises(TrackMatchError, match="'kick', 'Kick'"):  # two session tracks for one DAW name
        match_tracks(_tracks("kick", "Kick"), [DawTrack(0, "KICK")], "name")


def test_exact_names_pair_first_over_all_tracks():
    """Session "kick", "KICK" with DAW "KICK", "Kick": "KICK" is exact, so "kick" can only be "Kick"
    (matching track by track sent "kick" to "KICK" and "KICK" to "Kick")."""
    r = match_tracks(_tracks("kick", "KICK"), [DawTrack(0, "KICK"), DawTrack(1, "Kick")], "name")
    assert [(t.name, d.name) for t, d in r.pairs] == [("kick", "Kick"), ("KICK", "KICK")]


def test_push_says_it_sends_the_static_value_of_an_automated_parameter(tmp_path, capsys):
    s = Session(48000, _tracks("vox"))
    s.tracks[0].params["fader"]["fader_db"] = -6.0
    s.tracks[0].automation["fader.fader_db"] = Automation([0.0, 2.0], [-20.0, 0.0])
    assert main(["push", str(save(s, tmp_path / "s.json")), "--daw", "ardour", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "notice: vox: fader.fader_db is automated (2 points); push sends its static value -6" in out
    assert "mixbridge automate" in out


def test_push_says_when_it_writes_to_a_bypassed_plugin():
    s = Session(48000, _tracks("vox"))
    s.tracks[0].params["compressor"]["threshold_db"] = -30.0
    dm = get_daw_map("ardour")
    comp = next(p for p in dm.plugins if p.processor.name == "compressor")
    slots = {slot: slot for slot, _ in dm.slots}
    plan = plan_push(s, "ardour", daw_tracks=[DawTrack(0, "vox")],
                     layouts={0: StripLayout(dict(slots), bypassed={comp.slot})})
    assert plan.notices == [f"vox: plugin '{comp.name}' is bypassed on the DAW strip; its parameters are written "
                            "but not heard until it is enabled"]
    assert plan_push(s, "ardour", daw_tracks=[DawTrack(0, "vox")], layouts={0: StripLayout(dict(slots))}).notices == []


def _faders_sent(fake: FakeReaper, n_before: int) -> dict[str, list[float]]:
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        time.sleep(0.05)
        got: dict[str, list[float]] = {}
        for m in fake.received[n_before:]:
            if m.address.endswith("/volume/db"):
                got.setdefault(m.address, []).append(float(m.args[0]))
        if got and any(v[-1] == pytest.approx(-10.0) for v in got.values()):
            return got
    return got


@pytest.mark.parametrize("match, strip", [(None, "/track/2/volume/db"), ("order", "/track/1/volume/db")])
def test_automate_matches_tracks_by_name_by_default(tmp_path, capsys, match, strip):
    """REAPER lists "toms" then "piano"; the session lists the piano first. Its fader curve must reach
    REAPER's track 2 (by order it drove "toms", issue 15 item 2); ``--match order`` still pairs by order."""
    device_port = free_udp_port()
    fake = FakeReaper(device_port)
    fake.tracks = {1: ("toms", 0.0, 0.5, 0.0), 2: ("piano", 0.0, 0.5, 0.0)}
    s = Session(48000, _tracks("piano", "toms"))
    s.tracks[0].automation["fader.fader_db"] = Automation([0.0, 0.1], [-20.0, -10.0])
    path = save(s, tmp_path / "s.json")
    with fake.server:
        argv = ["automate", str(path), "--daw", "reaper", "--port", str(fake.server.port), "--reply-port",
                str(device_port), "--timeout-s", "0.5", "-q"] + (["--match", match] if match else [])
        assert main(argv) == 0
        got = _faders_sent(fake, 0)
    assert list(got) == [strip], got
    assert got[strip][0] == pytest.approx(-20.0) and got[strip][-1] == pytest.approx(-10.0)
