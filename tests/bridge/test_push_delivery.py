"""Issue 15 item 3: delivery you can trust. Ableton against a stand-in that reads its socket on AbletonOSC's
100 ms tick from Linux's default buffer (``ableton_standin.py``), and the push's verification pass for
every DAW (the real headless Ardour, a REAPER fake, the Ableton stand-in).
"""
from __future__ import annotations

import time

import pytest

from mixbridge.bridge.ardour import HeadlessArdour, ardour_available
from mixbridge.bridge.errors import DawUnreachableError
from mixbridge.bridge.osc import OscMessage
from mixbridge.bridge.profile_ableton import ABLETON_BURST, ABLETON_BURST_GAP_S, AbletonProfile, ableton_volume_from_db
from mixbridge.bridge.profiles import DawProfile, FeedbackState, get_profile
from mixbridge.bridge.push import VERIFY_REL, match_tracks, plan_push, pull, push, verify_push
from mixbridge.bridge.transport import free_udp_port
from mixbridge.session import Session, Track
from tests.bridge.ableton_standin import TICK_S, AbletonStandin, wait_idle

#: Values crossed the wire as float32 both ways (relative error <= 2**-24).
FLOAT32_REL = 1e-6
#: Ardour: OSC float32 plus Ardour's gain coefficient (as in test_ardour.py).
GAIN_TOLERANCE_DB = 1e-4
#: Every mapped Ableton strip carries 3 strip values, 13 EQ Eight values + 13 band types/switches, 6 Compressor
#: values: 35 set messages; 29 tracks make the issue's 1 000 (1 015).
ABLETON_MSGS_PER_TRACK = 35
N_1000 = 29


def session(n: int, prefix: str = "trk") -> Session:
    s = Session(48000, [Track(f"{prefix}{i + 1}", f"t{i + 1}.wav") for i in range(n)])
    s.validate()
    for i, t in enumerate(s.tracks):
        p = t.params
        p["fader"]["fader_db"] = -1.0 - 0.25 * i
        p["pan"]["pan"] = -0.9 + 1.8 * i / max(1, n - 1)
        p["fader"]["mute"] = float(i % 4 == 3)
        p["eq"]["peak1_gain_db"] = 3.0 - 0.2 * i
        p["eq"]["peak2_freq_hz"] = 900.0 + 10 * i
        p["compressor"]["threshold_db"] = -12.0 - 0.5 * i
        p["compressor"]["ratio"] = 2.0 + 0.1 * i
    return s


def expected_sets(s: Session) -> list[OscMessage]:
    """Every set message a push of ``s`` sends to tracks at positions 0.. in session order (map indices)."""
    return [m for m in plan_push(s, "ableton", match="order").messages if "/set/" in m.address]


def landed(live: AbletonStandin, msgs: list[OscMessage]) -> int:
    """How many of the set messages ``msgs`` (a push's plan, indices resolved by name) the stand-in's state
    holds (the last message to each value)."""
    last = {}
    for m in msgs:
        last[(m.address, m.args[:-1])] = m
    ok = 0
    for m in last.values():
        a = m.args
        if m.address == "/live/device/set/parameter/value":
            have = live.values[(a[0], a[1])][a[2]]
        else:
            have = float(live.state[a[0]][m.address.rsplit("/", 1)[1]])
        ok += abs(have - float(a[-1])) <= FLOAT32_REL * max(1.0, abs(float(a[-1])))
    return ok


# ------------------------------------------------------------------------------ the stand-in
def capacity(live: AbletonStandin) -> int:
    """About how many small datagrams the stand-in's buffer holds (the kernel charges ~800 bytes each)."""
    return live.rcvbuf_bytes // 832


def test_the_standin_drops_a_burst_larger_than_its_buffer_like_the_issue_measured():
    """A burst sent between two ticks is kept only up to the buffer: the issue's 330-message push lost 74."""
    rp = free_udp_port()
    with AbletonStandin(rp, names=["a"]) as live:
        with AbletonProfile().open_client("127.0.0.1", live.port, 1.0, rp) as client:
            msgs = [OscMessage("/live/track/set/panning", (0, float(i) / 1000)) for i in range(330)]
            client.send_many(msgs)
            wait_idle(live)
    assert live.datagrams < 330, "the kernel kept the whole burst: the stand-in's buffer is not small"
    assert live.datagrams > 100  # and it is Linux's default, not a toy one


def test_todays_unpaced_push_loses_messages_the_paced_read_back_push_loses_none_of_1000(monkeypatch):
    """The issue's "done when": 0 of 1 000 messages lost. Before (the unpaced burst of the base profile, no
    read-back), measured here: 240-657 of 1 015 set messages lost, depending on how fast the loaded CPU got
    the burst out (the stand-in keeps ~256 per tick), and the push said nothing."""
    s = session(N_1000)
    want = expected_sets(s)
    assert len(want) == N_1000 * ABLETON_MSGS_PER_TRACK >= 1000
    rp = free_udp_port()
    with monkeypatch.context() as mp:  # today's delivery: everything at 20 000 msg/s, nothing read back
        mp.setattr(AbletonProfile, "deliver", DawProfile.deliver)
        with AbletonStandin(rp, names=[t.name for t in s.tracks]) as live:
            before = push(s, "ableton", port=live.port, reply_port=rp, timeout_s=1.0, verify=False)
            wait_idle(live)
            lost_before = len(want) - landed(live, before.plan.messages)
    assert before.sent == len(want) and before.delivery.checked == 0
    assert lost_before > 0, "nothing lost: the stand-in no longer reproduces the issue"

    with AbletonStandin(rp, names=[t.name for t in s.tracks]) as live:
        rep = push(s, "ableton", port=live.port, reply_port=rp, timeout_s=1.0)
        wait_idle(live)
        assert landed(live, rep.plan.messages) == len(want)  # 0 of 1 015 lost
        # the pace: a tick finds at most 3 bursts queued (2, or 3 when it comes late), far below the buffer
        assert max(live.per_tick) <= 3 * ABLETON_BURST < capacity(live)
    d = rep.delivery
    assert d.sent == len(want) and d.checked == len(want) and d.missing == [] and d.resent == 0
    assert "1015 messages sent, 1015 values read back, 0 resent, 0 still missing" in rep.summary_lines()[0]
    v = rep.verification
    assert v.off == [] and v.compared == N_1000 * 22
    assert v.largest["fader.fader_db"][0] < 1e-5 and v.largest["fader.mute"][0] == 0.0


def test_a_buffer_too_small_for_the_pace_is_made_good_by_resends():
    """16 KiB (about 19 datagrams a tick): the first pace loses messages; the slower resends make them good."""
    s = session(6)
    want = expected_sets(s)
    rp = free_udp_port()
    with AbletonStandin(rp, names=[t.name for t in s.tracks], rcvbuf_bytes=16384) as live:
        rep = push(s, "ableton", port=live.port, reply_port=rp, timeout_s=1.0)
        wait_idle(live)
        assert landed(live, rep.plan.messages) == len(want)
    assert rep.delivery.resent > 0 and rep.delivery.missing == [] and rep.delivery.rounds >= 2
    assert rep.verification.off == []


class StubbornLive(AbletonStandin):
    """Refuses every set of Compressor's Ratio on track 0 (a value that never lands)."""

    def handle(self, m):
        if m.address == "/live/device/set/parameter/value" and m.args[:3] == (0, 1, self.devices["Compressor"]
                                                                                .index("Ratio")):
            return None
        return super().handle(m)


def test_a_value_that_never_lands_is_reported_missing_and_off():
    s = session(2)
    rp = free_udp_port()
    with StubbornLive(rp, names=["trk1", "trk2"]) as live:
        rep = push(s, "ableton", port=live.port, reply_port=rp, timeout_s=1.0)
    (missing,) = rep.delivery.missing
    assert missing.startswith("/live/device/set/parameter/value ,iiif 0 1 1 2") and "after 4 sends" in missing
    assert rep.delivery.resent == 3
    (off,) = rep.verification.off
    assert off.startswith("trk1: compressor.ratio reads back 1, pushed 2")
    assert rep.verification.largest["compressor.ratio"] == (pytest.approx(1.0), "trk1")


class MuteAfterPush(AbletonStandin):
    """Stops answering once the push's read-back is done (its second /live/song/get/track_names: the
    verification pass's pull)."""

    names_asked = 0

    def handle(self, m):
        if m.address == "/live/song/get/track_names":
            self.names_asked += 1
        if self.names_asked >= 2:
            return None
        return super().handle(m)


def test_a_live_that_stops_answering_during_verification_is_reported_not_raised():
    s = session(2)
    rp = free_udp_port()
    with MuteAfterPush(rp, names=["trk1", "trk2"]) as live:
        rep = push(s, "ableton", port=live.port, reply_port=rp, timeout_s=0.5)
    assert rep.delivery.missing == [] and rep.delivery.checked == 2 * ABLETON_MSGS_PER_TRACK
    assert rep.verification.skipped.startswith("the DAW stopped answering while it was read back: AbletonOSC "
                                               "answered 0 of 1 track-name queries")


def test_push_and_pull_of_15_tracks_take_a_few_ticks_not_one_per_query():
    """Before: 10.6 s to push and 18.1 s to pull 15 tracks (one query per 100 ms tick; the issue measured
    10.7 and 18.7). Now the queries of a round go out together: measured 2.0-2.2 s push (525 messages,
    read-back and verification included) and 0.4-0.5 s pull."""
    s = session(15)
    rp = free_udp_port()
    with AbletonStandin(rp, names=[t.name for t in s.tracks]) as live:
        t0 = time.perf_counter()
        rep = push(s, "ableton", port=live.port, reply_port=rp, timeout_s=1.0)
        push_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        got = pull("ableton", port=live.port, reply_port=rp, timeout_s=1.0)
        pull_s = time.perf_counter() - t0
    # sending is paced at ABLETON_BURST per ABLETON_BURST_GAP_S; every round of queries costs ~1-3 ticks
    send_s = len(rep.plan.messages) / ABLETON_BURST * ABLETON_BURST_GAP_S
    assert push_s < send_s + 30 * TICK_S, f"push took {push_s:.2f} s"
    assert pull_s < 15 * TICK_S, f"pull took {pull_s:.2f} s"
    assert rep.delivery.missing == [] and rep.verification.off == []
    for t in s.tracks:
        back = got.session.track(t.name).params
        assert back["compressor"]["threshold_db"] == pytest.approx(t.params["compressor"]["threshold_db"])
        assert back["fader"]["fader_db"] == pytest.approx(t.params["fader"]["fader_db"], abs=1e-5)


def test_ableton_unreachable_fails_fast_and_names_abletonosc():
    port = free_udp_port()
    t0 = time.perf_counter()
    with pytest.raises(DawUnreachableError, match=r"no reply to /live/song/get/track_names .* within 0.5 s.*"
                                                  r"AbletonOSC"):
        push(session(1), "ableton", port=port, reply_port=free_udp_port(), timeout_s=0.5)
    assert time.perf_counter() - t0 < 2.0


# ------------------------------------------------------------------------------ EQ Eight and sends
def test_eq_eight_bands_get_the_schemas_types_and_unused_bands_are_off():
    """Live Reference Manual, EQ Eight's chooser from the top: low cut 48, low cut 12, low shelf, bell, notch,
    high shelf, high cut 12, high cut 48 (values 0..7)."""
    s = session(1)
    rp = free_udp_port()
    with AbletonStandin(rp, names=["trk1"]) as live:
        push(s, "ableton", port=live.port, reply_port=rp, timeout_s=1.0)
        on = {b: live.value(0, "EQ Eight", f"{b} Filter On A") for b in range(1, 9)}
        types = {b: live.value(0, "EQ Eight", f"{b} Filter Type A") for b in (2, 3, 4, 5, 7)}
    assert on == {1: 0.0, 2: 1.0, 3: 1.0, 4: 1.0, 5: 1.0, 6: 0.0, 7: 1.0, 8: 0.0}
    assert types == {2: 2.0, 3: 3.0, 4: 3.0, 5: 3.0, 7: 5.0}  # low shelf, 3 bells, high shelf


def test_a_send_level_is_listed_as_not_sent_with_the_reason():
    s = session(1)
    s.tracks[0].params["send"]["send_db"] = -6.0
    plan = plan_push(s, "ableton", match="order")
    (line,) = [u for u in plan.unmapped if "send.send_db" in u]
    assert line.startswith("trk1: send.send_db = -6 (AbletonOSC's /live/track/set/send")
    assert "documents no dB law" in line
    assert not any(m.address == "/live/track/set/send" for m in plan.messages)


def test_volume_law_readback_is_what_the_verification_compares():
    """The stand-in stores float32, so a fader reads back within float32 through Live's law."""
    v = ableton_volume_from_db(-7.25)
    assert v == pytest.approx(0.85 - 7.25 / 40)


# ------------------------------------------------------------------------------ REAPER: its refresh
def test_reaper_verification_reads_the_refresh_and_reports_what_did_not_land():
    """A REAPER fake that answers the refresh with fixed values (it applies no sets): the pass names them."""
    from tests.bridge.test_profiles import FakeReaper

    device_port = free_udp_port()
    fake = FakeReaper(device_port)
    s = Session(48000, [Track("Kick", "k.wav"), Track("Snare", "s.wav")])
    s.validate()
    s.tracks[0].params["fader"]["fader_db"] = -3.5  # what the fake reports for Kick
    s.tracks[1].params["fader"]["fader_db"] = -9.0  # the fake keeps 0 dB
    with fake.server:
        rep = push(s, "reaper", port=fake.server.port, reply_port=device_port, timeout_s=0.5)
    v = rep.verification
    assert v.largest["fader.fader_db"] == (pytest.approx(9.0, abs=1e-5), "Snare")
    assert any(o.startswith("Snare: fader.fader_db reads back 0 dB, pushed -9") for o in v.off)
    assert not any(o.startswith("Kick: fader.fader_db") for o in v.off)
    assert "verify: read back" in rep.summary_lines()[-len(v.off) - 1]


def test_no_verify_skips_the_pass():
    s = session(1)
    rp = free_udp_port()
    with AbletonStandin(rp, names=["trk1"]) as live:
        rep = push(s, "ableton", port=live.port, reply_port=rp, timeout_s=1.0, verify=False)
    assert rep.verification.skipped == "--no-verify" and "verify: skipped (--no-verify)" in rep.summary_lines()


# ------------------------------------------------------------------------------ Ardour: the real one
N_ARDOUR = 4


@pytest.fixture(scope="module")
def ardour(tmp_path_factory):
    if not ardour_available():
        pytest.skip("headless Ardour 7 (ardour7-lua) not installed")
    a = HeadlessArdour(tmp_path_factory.mktemp("ardour"), n_tracks=N_ARDOUR, name="mbverify")
    a.create()
    a.start()
    yield a
    a.stop()


@pytest.mark.ardour
def test_ardour_push_verifies_every_value_and_the_pass_catches_a_difference(ardour):
    s = session(N_ARDOUR, prefix="T")
    for i, t in enumerate(s.tracks):
        t.params["trim"]["gain_db"] = 1.5 * (i - 1)
        t.params["polarity"]["invert"] = float(i % 2)
    rep = push(s, "ardour", port=ardour.osc_port, timeout_s=2.0)
    v = rep.verification
    assert v.off == [], v.off
    for path in ("fader.fader_db", "trim.gain_db", "pan.pan", "fader.mute", "polarity.invert",
                 "eq.peak1_gain_db", "compressor.threshold_db"):
        assert path in v.largest
    assert v.largest["fader.fader_db"][0] < GAIN_TOLERANCE_DB
    assert rep.delivery.checked == 0  # Ardour's delivery reads nothing back itself; the pass does

    # the same pass against a session that differs from what Ardour holds by 1.5 dB on one fader
    s.tracks[2].params["fader"]["fader_db"] += 1.5
    ardour_profile = get_profile("ardour")
    with ardour_profile.open_client("127.0.0.1", ardour.osc_port, 2.0, None) as client:
        feedback = FeedbackState()
        client.router.add("/**", feedback)
        tracks = ardour_profile.query_tracks(client)
        plan = plan_push(s, ardour_profile, daw_tracks=tracks)
        assert match_tracks(s.tracks, tracks, "name").unmatched_session == []
        again = verify_push(client, ardour_profile, s, plan, feedback, n_tracks=len(tracks))
    (off,) = again.off
    assert off.startswith("T3: fader.fader_db reads back")
    assert again.largest["fader.fader_db"] == (pytest.approx(1.5, abs=GAIN_TOLERANCE_DB), "T3")
    assert 1.5 > VERIFY_REL * abs(s.tracks[2].params["fader"]["fader_db"])  # far outside the tolerance


def test_cli_push_to_the_standin_succeeds(tmp_path, capsys):
    """`mixbridge push --daw ableton` goes through the paced, read-back delivery (the CLI's extra summary lines
    and --no-verify are the CLI owner's; the library default verifies)."""
    from mixbridge.app.cli import main
    from mixbridge.session import save

    path = save(session(2), tmp_path / "s.json")
    rp = free_udp_port()
    with AbletonStandin(rp, names=["trk1", "trk2"]) as live:
        rc = main(["push", str(path), "--daw", "ableton", "--port", str(live.port), "--reply-port", str(rp),
                   "--timeout-s", "1"])
        assert landed(live, plan_push(session(2), "ableton", match="order").messages[:3]) == 3  # the strip values
    assert rc == 0 and "pushed 2 tracks to ableton" in capsys.readouterr().out
