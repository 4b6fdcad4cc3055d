"""``push --create --daw ableton`` (issue 15, "Ableton through AbletonOSC where it can"): the missing tracks are
created (``/live/song/create_audio_track -1``) and named (``/live/track/set/name``) over AbletonOSC, read back,
then pushed; what AbletonOSC cannot create (devices, a usable return) is said in one line. Run against the
stand-in Live that reads its socket on AbletonOSC's 100 ms tick (``ableton_standin.py``)."""
from __future__ import annotations

import pytest

from mixbridge.app.cli import main
from mixbridge.bridge.errors import BridgeConfigError
from mixbridge.bridge.profile_ableton import ABLETON_CANNOT_CREATE, ableton_volume_from_db
from mixbridge.bridge.push import push
from mixbridge.bridge.transport import free_udp_port
from mixbridge.session import save
from tests.bridge.ableton_standin import AbletonStandin, wait_idle
from tests.bridge.test_push_delivery import FLOAT32_REL, session


def _fader_landed(live: AbletonStandin, s, names) -> None:
    """Each named session track's fader is on the stand-in's track of that name (Live's volume law)."""
    for t in s.tracks:
        if t.name in names:
            want = ableton_volume_from_db(t.params["fader"]["fader_db"])
            have = live.state[live.names.index(t.name)]["volume"]
            assert have == pytest.approx(want, rel=FLOAT32_REL), t.name


def test_create_adds_and_names_the_missing_tracks_then_pushes_them():
    """Live has trk1 (with EQ Eight and Compressor); the session has trk1..trk4: 3 tracks are created at the end
    and named, their strip values land, their device values are listed as not sent (no devices on a new track),
    and the report says what AbletonOSC cannot create."""
    s = session(4)
    rp = free_udp_port()
    with AbletonStandin(rp, names=["trk1"]) as live:
        rep = push(s, "ableton", port=live.port, reply_port=rp, timeout_s=1.0, create=True)
        wait_idle(live)
        assert live.names == ["trk1", "trk2", "trk3", "trk4"] and live.created == 3
        _fader_landed(live, s, live.names)
    assert rep.creation.created == ["trk2", "trk3", "trk4"] and rep.creation.rounds == 1
    assert rep.creation.sent == 6  # 3 creates + 3 names
    assert len(rep.plan.strips) == 4
    assert any(u.startswith("trk2: eq.") and "not found" in u for u in rep.plan.unmapped)
    assert not any(u.startswith("trk1: eq.") for u in rep.plan.unmapped)
    lines = rep.summary_lines()
    assert lines[0].startswith("create: 3 tracks created and named (trk2, trk3, trk4)")
    assert lines[1] == f"not created: {ABLETON_CANNOT_CREATE}"
    assert rep.delivery.missing == [] and rep.verification.off == []
    # the new tracks' device values were neither sent nor read back: the verification compares none of them
    assert all(name == "trk1" for path, (_, name) in rep.verification.largest.items()
               if path.startswith(("eq.", "compressor.")))


def test_create_into_an_empty_live_with_a_small_buffer_is_made_good_by_resends():
    """20 tracks into a Live with no tracks and a 16 KiB buffer (about 19 datagrams a tick): a burst of creates
    and names can lose some (here: a name, so a create went unnamed); the read-back creates and names again
    until every track is there, each created once."""
    s = session(20)
    rp = free_udp_port()
    with AbletonStandin(rp, names=[], rcvbuf_bytes=16384) as live:
        rep = push(s, "ableton", port=live.port, reply_port=rp, timeout_s=1.0, create=True)
        wait_idle(live)
        assert live.names == [t.name for t in s.tracks] and live.created == 20
        _fader_landed(live, s, live.names)
    assert rep.creation.created == [t.name for t in s.tracks]
    assert rep.delivery.missing == []


def test_create_twice_creates_nothing_the_second_time():
    s = session(2)
    rp = free_udp_port()
    with AbletonStandin(rp, names=["trk2"]) as live:
        first = push(s, "ableton", port=live.port, reply_port=rp, timeout_s=1.0, create=True)
        again = push(s, "ableton", port=live.port, reply_port=rp, timeout_s=1.0, create=True)
        assert live.names == ["trk2", "trk1"] and live.created == 1
    assert first.creation.created == ["trk1"]
    assert again.creation.created == [] and again.summary_lines()[0].startswith("create: every session track")


def test_cli_push_create_ableton_prints_what_it_created_and_cannot(tmp_path, capsys):
    path = save(session(2), tmp_path / "s.json")
    rp = free_udp_port()
    with AbletonStandin(rp, names=["trk1"]) as live:
        rc = main(["push", str(path), "--daw", "ableton", "--create", "--port", str(live.port),
                   "--reply-port", str(rp), "--timeout-s", "1", "-q"])
        assert live.names == ["trk1", "trk2"]
    out = capsys.readouterr().out
    assert rc == 0 and "create: 1 tracks created and named (trk2)" in out and "not created: AbletonOSC cannot" in out


def test_create_refuses_where_it_cannot(tmp_path, capsys):
    """REAPER's OSC cannot create (the ReaScript does); Ableton creates by name only, and needs no session file."""
    with pytest.raises(BridgeConfigError, match="tracks are created by name"):
        push(session(1), "ableton", create=True, match="order")
    with pytest.raises(BridgeConfigError, match="cannot create tracks"):
        push(session(1), "reaper", create=True)
    path = save(session(1), tmp_path / "s.json")
    assert main(["push", str(path), "--daw", "ableton", "--create", "--ardour-session", "x.ardour"]) != 0
    assert "drop --ardour-session" in capsys.readouterr().err
