"""The saved-session reader (bridge/ardour_session.py) on hand-written Ardour 7 XML, next to the real round
trip of test_ardour_roundtrip.py: what the real Ardour does not produce by itself here (a tempo other than
120 BPM, tempo changes, a lane left in Manual, a partly inverted stereo track, a silent fader point).
"""
from __future__ import annotations

import math

import pytest

from mixbridge.bridge.ardour_session import STEP_S, SUPERCLOCK_HZ, TICKS_PER_BEAT, read_ardour_session
from mixbridge.bridge.errors import ArdourError

TEMPO = '<Tempo npm="{npm}" enpm="{npm}" note-type="4" type="Tempo::Constant" sclock="0" quarters="0:0" bbt="1|1|0"/>'


def session_xml(tempos: list[float], *, phase: str = "11", mute_state: str = "Play", pan_events: str = "",
                gain_events: str = "") -> str:
    tempo = "".join(TEMPO.format(npm=t) for t in tempos)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Session version="7002" name="x" sample-rate="44100">
  <Routes>
    <Route id="1" name="Master"><PresentationInfo order="0" flags="MasterOut"/>
      <Processor type="trim"><Controllable name="trimcontrol" value="1.9952623149688795"/></Processor>
      <Processor type="amp"><Controllable name="gaincontrol" value="2"/></Processor>
    </Route>
    <Route id="2" name="Vox"><PresentationInfo order="1" flags="AudioTrack,OrderSet"/>
      <Controllable name="mute" value="0"/>
      <Controllable name="phase" value="1" phase-invert="{phase}"/>
      <Automation>
        <AutomationList automation-id="mute" interpolation-style="Discrete" state="{mute_state}"><events>a0 0
a{SUPERCLOCK_HZ // 2} 1
a{SUPERCLOCK_HZ} 0
</events></AutomationList>
      </Automation>
      <Pannable><Controllable name="pan-azimuth" value="0.25"/>
        <Automation><AutomationList automation-id="pan-azimuth" state="Play"><events>{pan_events}</events>
        </AutomationList></Automation>
      </Pannable>
      <Processor type="trim"><Controllable name="trimcontrol" value="0.5011872336272722"/></Processor>
      <Processor type="amp"><Controllable name="gaincontrol" value="1"/>
        <Automation><AutomationList automation-id="gain" state="Play"><events>{gain_events}</events>
        </AutomationList></Automation>
      </Processor>
      <Processor type="intsend" target="3" active="1"><Controllable name="gaincontrol" value="0"/></Processor>
    </Route>
    <Route id="3" name="Verb"><PresentationInfo order="2" flags="AudioBus,OrderSet"/>
      <Processor type="amp"><Controllable name="gaincontrol" value="0.5011872336272722"/></Processor>
    </Route>
  </Routes>
  <TempoMap superclocks-per-second="{SUPERCLOCK_HZ}"><Tempos>{tempo}</Tempos></TempoMap>
</Session>
"""


def test_values_master_bus_and_a_musical_time_lane_at_90_bpm(tmp_path):
    quarter_s = 60.0 / 90.0
    path = tmp_path / "x.ardour"
    path.write_text(session_xml([90.0], pan_events=f"b0 0\nb{TICKS_PER_BEAT} 1\n"))
    r = read_ardour_session(path)
    assert r.sample_rate == 44100 and r.bus_name == "Verb"
    assert r.master.solved_gain_db == pytest.approx(20 * math.log10(2) + 6.0, abs=1e-12)
    assert r.master.params["reverb"]["return_db"] == pytest.approx(-6.0, abs=1e-12)
    (vox,) = r.tracks
    assert vox.params["trim"]["gain_db"] == pytest.approx(-6.0, abs=1e-12)
    assert vox.params["polarity"]["invert"] == 1.0  # both channels
    assert vox.params["send"]["send_db"] == -80.0  # gain 0: the schema's "off"
    pan = vox.automation["pan.pan"]
    assert pan.times_s == [0.0, pytest.approx(quarter_s, rel=1e-15)]  # one quarter note at 90 BPM
    assert pan.values == [-1.0, 1.0] and vox.params["pan"]["pan"] == -1.0  # the static: the curve's start
    # a mute lane is Ardour's discrete one: held until one STEP_S before each change
    mute = vox.automation["fader.mute"]
    assert mute.times_s == [0.0, pytest.approx(0.5 - STEP_S), 0.5, pytest.approx(1.0 - STEP_S), 1.0]
    assert mute.values == [0.0, 0.0, 1.0, 1.0, 0.0]
    assert any("Ardour's master and reverb bus carry no mixbridge plugin" in n for n in r.not_read)
    assert any("no ACE EQ on the track" in n for n in r.not_read)


def test_lanes_under_tempo_changes_manual_lanes_partial_polarity_and_silent_points(tmp_path):
    path = tmp_path / "x.ardour"
    path.write_text(session_xml([120.0, 90.0], phase="10", mute_state="Off", pan_events="b0 0\nb1920 1\n",
                                gain_events=f"a0 0\na{SUPERCLOCK_HZ} 1\na{SUPERCLOCK_HZ} 0.5\n"))
    r = read_ardour_session(path)
    (vox,) = r.tracks
    assert "pan.pan" not in vox.automation  # musical time under two tempos: listed, not guessed
    assert any("automation pan.pan (the session has 2 tempos" in n for n in r.not_read)
    assert "fader.mute" not in vox.automation  # a lane in Manual is not played by Ardour
    assert vox.params["polarity"]["invert"] == 0.0
    assert any("inverts 1 of 2 input channels" in n for n in r.not_read)
    fader = vox.automation["fader.fader_db"]
    assert fader.values[:2] == [-48.0, 0.0]  # gain 0 in a curve: the fader's minimum
    assert fader.times_s == [0.0, 1.0, 1.0 + STEP_S]  # a vertical step: STEP_S wide, times strictly increasing
    assert fader.values[2] == pytest.approx(20 * math.log10(0.5), abs=1e-12)


def test_not_a_session_is_refused(tmp_path):
    path = tmp_path / "x.ardour"
    path.write_text("<Ardour/>")
    with pytest.raises(ArdourError, match="not an Ardour session file"):
        read_ardour_session(path)
    with pytest.raises(ArdourError, match="cannot read the Ardour session"):
        read_ardour_session(tmp_path / "missing.ardour")
