"""The master bus in a push (issue 15 item 1): every master-bus parameter the DAW does not get is listed
as ``not sent``, by name, for every profile; the solved master gain goes to the DAW's master fader where
the profile's documented address space has one (Ardour ``/master/gain`` + ``/master/trimdB``, REAPER
``/track/0/volume/db``), else it is listed too (Ableton: AbletonOSC documents no master track)."""
from __future__ import annotations

import pytest

from mixbridge.app.cli import main
from mixbridge.bridge.profile_ardour import ARDOUR_MAX_GAIN_DB
from mixbridge.bridge.profiles import profile_names
from mixbridge.bridge.push import plan_push
from mixbridge.schema import MASTER_BUS
from mixbridge.session import Session, Track, save

MASTER_PATHS = [f"master.{p}" for p, _ in MASTER_BUS.flat_params()]


def session(solved_gain_db: float | None = 3.36) -> Session:
    s = Session(48000, [Track("kick", "k.wav"), Track("bass", "b.wav")])
    s.validate()
    s.master.params["compressor"]["threshold_db"] = -18.0
    s.master.params["compressor"]["ratio"] = 2.0
    s.master.params["reverb"]["decay_s"] = 2.5
    s.master.params["limiter"]["ceiling_dbtp"] = -1.0
    s.master.solved_gain_db = solved_gain_db
    return s


def _named(lines: list[str], path: str) -> list[str]:
    return [u for u in lines if u.startswith(f"{path} = ")]


@pytest.mark.parametrize("daw", profile_names())
def test_every_master_parameter_is_listed_as_not_sent(daw):
    plan = plan_push(session(), daw, match="order")
    for path in MASTER_PATHS:  # every one, whatever its value: the DAW's master bus is the user's own
        assert len(_named(plan.unmapped, path)) == 1, f"{daw}: {path} missing from not sent"
    assert _named(plan.unmapped, "master.compressor.threshold_db")[0].startswith(
        "master.compressor.threshold_db = -18 dB (")
    assert _named(plan.unmapped, "master.reverb.decay_s")[0].startswith("master.reverb.decay_s = 2.5 s (")
    assert _named(plan.unmapped, "master.limiter.ceiling_dbtp")[0].startswith("master.limiter.ceiling_dbtp = -1 dBTP (")


def test_solved_gain_goes_to_the_master_fader_where_the_daw_has_one():
    by = {d: plan_push(session(3.36), d, match="order") for d in profile_names()}
    assert [str(m) for m in by["ardour"].master.messages] == ["/master/trimdB ,f 0", "/master/gain ,f 3.36"]
    assert [str(m) for m in by["reaper"].master.messages] == ["/track/0/volume/db ,f 3.36"]
    assert by["ableton"].master.messages == []
    assert _named(by["ableton"].unmapped, "master.solved_gain_db")[0].startswith(
        "master.solved_gain_db = 3.36 dB (AbletonOSC's documented API")
    for d in ("ardour", "reaper"):
        assert not _named(by[d].unmapped, "master.solved_gain_db")
        assert "+3.36 dB (the solved master gain)" in by[d].master_sent
        assert by[d].messages[-len(by[d].master.messages):] == by[d].master.messages  # sent after the strips


def test_ardour_splits_a_gain_above_its_fader_onto_the_master_trim():
    plan = plan_push(session(9.44), "ardour", match="order")
    trim, fader = (m.args[0] for m in plan.master.messages)
    assert fader == pytest.approx(ARDOUR_MAX_GAIN_DB) and trim + fader == pytest.approx(9.44, abs=1e-12)


def test_a_gain_the_master_fader_cannot_take_is_not_sent_or_clamped():
    plan = plan_push(session(14.0), "reaper", match="order")  # REAPER's fader stops at +12 dB
    assert plan.master.messages == [] and plan.master_sent == ""
    assert "[-150, 12] dB; pass --clamp" in _named(plan.unmapped, "master.solved_gain_db")[0]
    plan = plan_push(session(14.0), "reaper", match="order", clamp=True)
    assert [str(m) for m in plan.master.messages] == ["/track/0/volume/db ,f 12"]
    assert "master.solved_gain_db: 14 -> 12" in plan.clamped


def test_a_session_without_a_solved_gain_says_so():
    plan = plan_push(session(None), "ardour", match="order")
    assert plan.master.messages == [] and plan.master_sent == ""
    assert plan.master_unsent_why.startswith("the session stores no solved master gain (master.solved_gain_db")


def test_dry_run_prints_the_master_lines(tmp_path, capsys):
    path = save(session(3.36), tmp_path / "s.json")
    assert main(["push", str(path), "--daw", "reaper", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "/track/0/volume/db ,f 3.36" in out
    for p in MASTER_PATHS:
        assert any(line.startswith(f"not sent: {p} = ") for line in out), p
    assert out[-1].endswith("master: REAPER's master track volume (/track/0/volume/db) = +3.36 dB (the solved "
                            "master gain); its other parameters listed as not sent")


def test_the_reverb_return_goes_to_the_bus_every_first_send_feeds():
    """Ardour reports each strip's send target (``/strip/sends``): when every matched track's first send feeds
    one strip that no session track matched, ``master.reverb.return_db`` goes to that strip's fader (the
    fader law of the profile) and is no longer listed as not sent; else it stays listed."""
    from mixbridge.bridge.profiles import DawTrack, StripLayout

    s = session()
    s.master.params["reverb"]["return_db"] = -4.5
    daw = [DawTrack(0, "kick"), DawTrack(1, "bass"), DawTrack(2, "Verb")]
    layouts = {0: StripLayout(send_target=2), 1: StripLayout(send_target=2)}
    plan = plan_push(s, "ardour", daw_tracks=daw, layouts=layouts)
    assert plan.reverb_bus == (2, "Verb")
    assert plan.master.messages[0].address == "/strip/gain" and plan.master.messages[0].args == (3, -4.5)
    assert not _named(plan.unmapped, "master.reverb.return_db")
    split = {0: StripLayout(send_target=2), 1: StripLayout(send_target=None)}  # not every track feeds it
    plan = plan_push(s, "ardour", daw_tracks=daw, layouts=split)
    assert plan.reverb_bus is None and len(_named(plan.unmapped, "master.reverb.return_db")) == 1
