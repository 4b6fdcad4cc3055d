"""``automix --ride``: every track gets a fader curve, the render includes it, and the session exports to MIDI."""
from __future__ import annotations

import mido

from mixbridge.app.cli import main
from mixbridge.schema import CHANNEL_STRIP
from mixbridge.session import load

#: The ride's limit used here, dB.
MAX_RIDE_DB = 3.0


def test_automix_ride_writes_bounded_fader_curves_that_render_and_export(multitrack, tmp_path):
    out = tmp_path / "out"
    assert main(["automix", str(multitrack), "-o", str(out), "--mixer", "mono_sum", "--no-report", "-q",
                 "--ride", "--max-ride-db", str(MAX_RIDE_DB)]) == 0
    s = load(out / "session.json")
    curves = {t.name: t.automation.get("fader.fader_db") for t in s.tracks}
    assert all(c is not None for c in curves.values()), curves
    lo, hi = CHANNEL_STRIP.param("fader.fader_db").min, CHANNEL_STRIP.param("fader.fader_db").max
    for t in s.tracks:
        static = t.params["fader"]["fader_db"]
        values = curves[t.name].values
        assert all(max(lo, static - MAX_RIDE_DB) - 1e-9 <= v <= min(hi, static + MAX_RIDE_DB) + 1e-9
                   for v in values), (t.name, static, values)
    assert s.provenance["ride"]
    # the curves reach the DAW's tools: a Standard MIDI File with a CC7 lane per track
    assert main(["midi-export", str(out / "session.json"), "-o", str(tmp_path / "ride.mid"), "-q"]) == 0
    cc7 = [m for tr in mido.MidiFile(tmp_path / "ride.mid").tracks for m in tr
           if m.type == "control_change" and m.control == 7]
    assert len(cc7) >= len(s.tracks)
