"""The real DAW: headless Ardour 7 (ardour7-lua, Dummy backend, OSC on), one instance per module.

Creates a session with 8 tracks carrying ACE EQ and ACE Compressor, pushes a mixbridge
session, reads the state back over OSC (strip list, strip feedback, plugin descriptors) and
from the XML Ardour writes on ``/save_state``, then checks that ``pull`` reproduces the session.
Aux sends (``send.send_db``) get a second, smaller session with a bus fed by every track.
"""
from __future__ import annotations

import json
import math

import pytest

from mixbridge.app.cli import main
from mixbridge.bridge.ace_laws import aeq_bw_from_q, aeq_shelf_gain
from mixbridge.bridge.ardour import HeadlessArdour, ardour_available, read_routes
from mixbridge.bridge.automation import play_session_automation
from mixbridge.bridge.plugin_maps import ARDOUR_MAP
from mixbridge.bridge.push import pull
from mixbridge.session import Automation, Session, Track, load, save

pytestmark = [
    pytest.mark.ardour,
    pytest.mark.skipif(not ardour_available(), reason="headless Ardour 7 (Debian 'ardour', ardour7-lua) not installed"),
]

#: OSC carries float32 and Ardour stores gain as a float coefficient: 1e-4 dB is far below audibility
#: and above float32 round-off at these magnitudes.
GAIN_TOLERANCE_DB = 1e-4
#: Pan position and plugin values cross the wire as float32 (relative error <= 6e-8).
FLOAT32_REL = 1e-6
#: /strip/sends reports a send as a float32 fader position p; dB = 6.02 (198 p**(1/8) - 192) / 6 turns
#: its 6e-8 relative error into < 1e-5 dB at -80..+6 dB (the slope is largest at -80 dB).
SEND_TOLERANCE_DB = 1e-4
N_TRACKS = 8


@pytest.fixture(scope="module")
def ardour(tmp_path_factory):
    a = HeadlessArdour(tmp_path_factory.mktemp("ardour"), n_tracks=N_TRACKS, name="mbtest")
    a.create()
    a.start()
    yield a
    a.stop()


def mix_session() -> Session:
    s = Session(48000, [Track(f"T{i + 1}", f"t{i + 1}.wav") for i in range(N_TRACKS)])
    s.validate()
    for i, t in enumerate(s.tracks):
        p = t.params
        p["fader"]["fader_db"] = -2.0 * i + 3.0          # +3 .. -11 dB
        p["pan"]["pan"] = -1.0 + 2.0 * i / (N_TRACKS - 1)  # hard left .. hard right
        p["fader"]["mute"] = float(i % 3 == 2)
        p["trim"]["gain_db"] = 1.5 * (i - 3)
        p["polarity"]["invert"] = float(i % 2)
        p["eq"]["peak1_gain_db"] = 4.0 - i
        p["eq"]["peak1_freq_hz"] = 300.0 + 100 * i
        p["eq"]["peak1_q"] = 0.5 + 0.5 * i
        p["eq"]["high_shelf_gain_db"] = -3.0
        p["compressor"]["threshold_db"] = -10.0 - 3 * i
        p["compressor"]["ratio"] = 2.0 + i
        p["compressor"]["attack_ms"] = 5.0 + i
        p["compressor"]["release_ms"] = 80.0 + 20 * i
    return s


def test_push_then_read_back_over_osc_xml_and_pull(ardour, tmp_path, capsys):
    s = mix_session()
    path = save(s, tmp_path / "mix.json")
    assert main(["push", str(path), "--daw", "ardour", "--port", str(ardour.osc_port)]) == 0
    out = capsys.readouterr().out
    assert f"pushed {N_TRACKS} tracks to ardour" in out and "unparseable" not in out

    # 1. the saved session XML
    routes = read_routes(ardour.save_state())
    for t in s.tracks:
        r, p = routes[t.name], t.params
        assert r["gain_db"] == pytest.approx(p["fader"]["fader_db"], abs=GAIN_TOLERANCE_DB)
        assert r["trim_db"] == pytest.approx(p["trim"]["gain_db"], abs=GAIN_TOLERANCE_DB)
        assert r["mute"] == p["fader"]["mute"]
        assert r["polarity"] == p["polarity"]["invert"]
        assert r["azimuth"] == pytest.approx((1 + p["pan"]["pan"]) / 2, abs=FLOAT32_REL)  # 0 = left in the XML
        assert r["ACE Compressor/Threshold"] == pytest.approx(p["compressor"]["threshold_db"], rel=FLOAT32_REL)
        assert r["ACE Compressor/Ratio"] == pytest.approx(p["compressor"]["ratio"], rel=FLOAT32_REL)
        assert r["ACE EQ/Frequency 1"] == pytest.approx(p["eq"]["peak1_freq_hz"], rel=FLOAT32_REL)
        assert r["ACE EQ/Bandwidth 1"] == pytest.approx(aeq_bw_from_q(p["eq"]["peak1_q"]), rel=FLOAT32_REL)
        assert r["ACE EQ/Gain H"] == pytest.approx(aeq_shelf_gain(-3.0), rel=FLOAT32_REL)  # the fitted shelf

    # 2. over OSC: strip list, strip feedback and plugin descriptors, through pull
    out = tmp_path / "pulled.json"
    assert main(["pull", "--daw", "ardour", "--port", str(ardour.osc_port), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "polarity" not in text  # read through /strip/expand and select feedback (issue 15 item 5)
    got = load(out)
    assert [t.name for t in got.tracks] == [t.name for t in s.tracks]
    for want, have in zip(s.tracks, got.tracks):
        strip = ["fader.fader_db", "trim.gain_db", "fader.mute", "pan.pan", "polarity.invert"]
        for path in strip + list(ARDOUR_MAP.paths):
            proc, name = path.split(".")
            w, h = want.params[proc][name], have.params[proc][name]
            assert h == pytest.approx(w, rel=FLOAT32_REL, abs=GAIN_TOLERANCE_DB), f"{want.name} {path}"
    assert json.loads(out.read_text())["provenance"]["pulled_from"] == "ardour"


def test_gain_above_ardours_clamp_is_an_error_unless_clamped(ardour, tmp_path, capsys):
    s = mix_session()
    s.tracks[0].params["fader"]["fader_db"] = 9.0
    path = save(s, tmp_path / "hot.json")
    assert main(["push", str(path), "--daw", "ardour", "--port", str(ardour.osc_port)]) == 2
    assert "Ardour clamps the fader at +6.02 dB" in capsys.readouterr().err
    assert main(["push", str(path), "--daw", "ardour", "--port", str(ardour.osc_port), "--clamp"]) == 0
    assert "clamped: track 'T1' fader.fader_db: 9 -> 6.0206" in capsys.readouterr().out
    got = pull("ardour", port=ardour.osc_port).session
    assert got.tracks[0].params["fader"]["fader_db"] == pytest.approx(20 * math.log10(2), abs=GAIN_TOLERANCE_DB)


def test_unmatched_tracks_are_reported(ardour, tmp_path, capsys):
    s = Session(48000, [Track("T2", "a.wav"), Track("vocals", "v.wav")])
    s.validate()
    s.tracks[0].params["send"]["send_db"] = -6.0  # this session's strips have no aux send
    path = save(s, tmp_path / "two.json")
    assert main(["push", str(path), "--daw", "ardour", "--port", str(ardour.osc_port)]) == 0
    out = capsys.readouterr().out
    assert "unmatched session tracks (1): vocals" in out
    assert "DAW tracks without a session track (7): T1, T3" in out
    assert "not sent: T2: send.send_db = -6 (no aux send on the DAW strip)" in out


@pytest.fixture
def ardour_with_sends(tmp_path_factory):
    a = HeadlessArdour(tmp_path_factory.mktemp("ardour_sends"), n_tracks=3, name="mbsends", plugins=(),
                       send_bus="Reverb")
    a.create()
    a.start()
    yield a
    a.stop()


def test_send_levels_land_on_the_aux_sends_and_pull_back(ardour_with_sends, tmp_path, capsys):
    a = ardour_with_sends
    s = Session(48000, [Track(f"T{i + 1}", "x.wav") for i in range(3)])
    s.validate()
    for t, db in zip(s.tracks, (-12.0, 3.5, -80.0)):  # -80 dB is the schema's "off"
        t.params["send"]["send_db"] = db
    path = save(s, tmp_path / "sends.json")
    assert main(["push", str(path), "--daw", "ardour", "--port", str(a.osc_port)]) == 0
    assert "not sent: T" not in capsys.readouterr().out  # every send carried (the verify lines name them all)

    routes = read_routes(a.save_state())
    assert routes["T1"]["send_db"] == pytest.approx(-12.0, abs=GAIN_TOLERANCE_DB)
    assert routes["T2"]["send_db"] == pytest.approx(3.5, abs=GAIN_TOLERANCE_DB)
    assert routes["T3"]["send_db"] == float("-inf")  # off: gain coefficient 0

    got = {t.name: t for t in pull("ardour", port=a.osc_port).session.tracks}
    for t in s.tracks:  # over OSC, /strip/sends reports a fader position: float32 through Ardour's law
        want = t.params["send"]["send_db"]
        assert got[t.name].params["send"]["send_db"] == pytest.approx(want, abs=SEND_TOLERANCE_DB)


@pytest.mark.parametrize("bundles", [None, True], ids=["plain-default", "bundles-with-flush"])
def test_automation_lands_in_ardour_with_its_exact_ending(ardour, bundles):
    s = Session(48000, [Track(f"T{i + 1}", "x.wav") for i in range(2)])
    s.validate()
    s.tracks[1].automation["fader.fader_db"] = Automation([0.0, 0.3], [-30.0, -12.5])
    s.tracks[1].automation["pan.pan"] = Automation([0.0, 0.3], [0.0, 0.6])
    rep = play_session_automation(s, "ardour", port=ardour.osc_port, rate_hz=100.0, bundles=bundles)
    assert rep.datagrams >= 20 and rep.coalesced == 0
    assert rep.flushed == (2 if bundles else 0)  # a bundled run re-sends both last values as plain messages
    got = pull("ardour", port=ardour.osc_port).session
    assert got.tracks[1].params["fader"]["fader_db"] == pytest.approx(-12.5, abs=GAIN_TOLERANCE_DB)
    assert got.tracks[1].params["pan"]["pan"] == pytest.approx(0.6, abs=FLOAT32_REL)


def test_ardour_honours_bundle_time_tags(ardour):
    """liblo queues a bundle until its time tag: the value must not change before then."""
    import time

    from mixbridge.bridge.osc import OscMessage, ntp_timetag
    from mixbridge.bridge.transport import OscUdpClient

    with OscUdpClient("127.0.0.1", ardour.osc_port) as c:
        c.send(OscMessage("/strip/gain", (8, -20.0)))
        time.sleep(0.1)
        c.send_bundle([OscMessage("/strip/gain", (8, -3.0))], ntp_timetag(time.time() + 3.0))
    t0 = time.monotonic()
    before = pull("ardour", port=ardour.osc_port).session.tracks[7].params["fader"]["fader_db"]
    assert time.monotonic() - t0 < 2.7  # the read happened before the time tag (a pull takes ~1 s on a busy CPU)
    time.sleep(max(0.0, 3.3 - (time.monotonic() - t0)))
    after = pull("ardour", port=ardour.osc_port).session.tracks[7].params["fader"]["fader_db"]
    assert before == pytest.approx(-20.0, abs=GAIN_TOLERANCE_DB)
    assert after == pytest.approx(-3.0, abs=GAIN_TOLERANCE_DB)


def test_push_says_when_it_writes_to_a_plugin_ardour_reports_bypassed(ardour, tmp_path, capsys):
    """Deactivate ACE Compressor on T3 over OSC (``/strip/plugin/deactivate``): push still writes it (the
    values land) and says, in one notice, that it is bypassed; other strips get no notice."""
    from mixbridge.bridge.osc import OscMessage
    from mixbridge.bridge.profile_ardour import ardour_plugins
    from mixbridge.bridge.transport import OscUdpClient

    with OscUdpClient("127.0.0.1", ardour.osc_port) as c:
        piid = ardour_plugins(c, 3)["ACE Compressor"]
        c.send(OscMessage("/strip/plugin/deactivate", (3, piid)))
    try:
        path = save(mix_session(), tmp_path / "mix.json")
        assert main(["push", str(path), "--daw", "ardour", "--port", str(ardour.osc_port)]) == 0
        notices = [line for line in capsys.readouterr().out.splitlines() if line.startswith("notice:")]
        assert notices == ["notice: T3: plugin 'ACE Compressor' is bypassed on the DAW strip; its parameters are "
                           "written but not heard until it is enabled"]
        routes = read_routes(ardour.save_state())
        assert routes["T3"]["ACE Compressor/Threshold"] == pytest.approx(-16.0, rel=FLOAT32_REL)
    finally:
        with OscUdpClient("127.0.0.1", ardour.osc_port) as c:
            c.send(OscMessage("/strip/plugin/activate", (3, piid)))


#: A dB value through Ardour's float gain coefficient (float32, relative error 6e-8): 20 log10(1 + 6e-8)
#: = 5e-7 dB; 1e-5 dB leaves margin for the OSC float32 on the way in and out.
MASTER_FLOAT32_DB = 1e-5
#: ``/master/gain`` queried over OSC answers ``fast_coefficient_to_dB`` (osc.cc), Ardour's approximate log:
#: 3.36 dB reads 3.3533 and -4.5 dB reads -4.5712 (measured, Ardour 7.3); the exact value is the saved XML's.
ARDOUR_FAST_DB_TOLERANCE = 0.1


def _ardour_master_gain_db(port: int) -> float:
    """``/master/gain`` without an argument: Ardour answers with the master fader's level in dB (osc.cc)."""
    from mixbridge.bridge.osc import OscMessage
    from mixbridge.bridge.profile_ardour import ArdourProfile
    from mixbridge.bridge.routing import ReplyCollector
    from mixbridge.bridge.transport import OscUdpClient

    col = ReplyCollector("/master/gain", done=lambda m: bool(m.args))
    with OscUdpClient("127.0.0.1", port, timeout_s=2.0) as c, c.router.routed("/master/gain", col):
        c.query(list(ArdourProfile.HANDSHAKE_QUIET) + [OscMessage("/master/gain")], col.finished.is_set,
                what="/master/gain", quiet_s=None)
    return float(col.messages[-1].args[0])


@pytest.mark.parametrize("solved_db", [3.36, 9.44, -4.5])
def test_push_sets_the_master_fader_to_the_solved_gain(ardour, tmp_path, capsys, solved_db):
    """Issue 15 item 1: the solved master gain lands on Ardour's master (fader, and above +6.02 dB the
    rest on its trim), read back from the saved XML and over OSC; the master bus's other parameters are
    listed as not sent."""
    s = mix_session()
    s.master.params["compressor"]["threshold_db"] = -18.0
    s.master.solved_gain_db = solved_db
    path = save(s, tmp_path / "master.json")
    assert main(["push", str(path), "--daw", "ardour", "--port", str(ardour.osc_port)]) == 0
    out = capsys.readouterr().out
    assert "not sent: master.compressor.threshold_db = -18 dB (" in out
    assert "not sent: master.limiter.ceiling_dbtp = -1 dBTP (" in out
    assert f"= {solved_db:+.2f} dB (the solved master gain)" in out
    fader_db = min(solved_db, 20 * math.log10(2))
    master = read_routes(ardour.save_state())["Master"]
    assert master["gain_db"] == pytest.approx(fader_db, abs=MASTER_FLOAT32_DB)
    assert master["gain_db"] + master["trim_db"] == pytest.approx(solved_db, abs=MASTER_FLOAT32_DB)
    assert _ardour_master_gain_db(ardour.osc_port) == pytest.approx(fader_db, abs=ARDOUR_FAST_DB_TOLERANCE)
