"""A deepmixing session's fader curves played into the real DAW: headless Ardour 7 (ardour7-lua, Dummy
backend, OSC on), as tests/bridge/test_ardour.py does for hand-made curves.

The session comes from the ``deepmixing`` mixer (a stub network with a known +-6 dB swap at half time, so
the test does not depend on the shipped weights); ``play_session_automation`` (what ``mixbridge automate``
runs) sends its 8 points per track in real time, then ``pull`` reads the faders back: each must hold its
curve's last value. About 10 s with Ardour's start.
"""
from __future__ import annotations

import pytest

from mixbridge.bridge.ardour import HeadlessArdour, ardour_available
from mixbridge.bridge.automation import play_session_automation
from mixbridge.bridge.push import pull, push
from tests.models.test_deepmixing import _StubNet

pytestmark = [
    pytest.mark.ardour,
    pytest.mark.skipif(not ardour_available(), reason="headless Ardour 7 (Debian 'ardour', ardour7-lua) not installed"),
]

#: OSC float32 and Ardour's float gain coefficient (as tests/bridge/test_ardour.py).
GAIN_TOLERANCE_DB = 1e-4
#: The stems' rate (the stub network reads them resampled to its 8 kHz).
DAW_RATE = 48000


def test_deepmixing_curves_land_in_ardour(tmp_path):
    import numpy as np

    from mixbridge.audio import load_stems, write_audio
    from mixbridge.models.deepmixing_mixer import DeepMixingMixer

    rng = np.random.default_rng(5)
    for name in ("T1", "T2"):  # at Ardour's 48 kHz (at 8 kHz the EQ's default 8 kHz shelf lies above Nyquist)
        write_audio(tmp_path / f"{name}.wav", (0.05 * rng.standard_normal((2, int(1.6 * DAW_RATE)))).astype(np.float32),
                    DAW_RATE)
    session = DeepMixingMixer(model=_StubNet())(load_stems(tmp_path), source_base=tmp_path)
    a = HeadlessArdour(tmp_path / "ardour", n_tracks=2, name="dmtest", nice=10)
    a.create()
    a.start()
    try:
        push(session, "ardour", port=a.osc_port)
        rep = play_session_automation(session, "ardour", port=a.osc_port, rate_hz=50.0)
        assert rep.datagrams >= 4
        got = {t.name: t for t in pull("ardour", port=a.osc_port).session.tracks}
        for t in session.tracks:
            last = t.automation["fader.fader_db"].values[-1]
            assert got[t.name].params["fader"]["fader_db"] == pytest.approx(last, abs=GAIN_TOLERANCE_DB), t.name
    finally:
        a.stop()
