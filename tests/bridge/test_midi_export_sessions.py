"""midi-export on the sessions users have (issue 15, done-when): every ``automix --ride`` session of the
small multitrack, written as 7-bit CCs and as 14-bit pairs (``--cc14``), and a 64-track session spread over 4
MIDI ports. Each file is read back with mido (``read_smf_curves``) and with the independent raw SMF reader of
``test_midi_export``; the last fader value of every track must decode to the curve's last value within one
controller step on the GM volume law."""
from __future__ import annotations

import math

import pytest

from mixbridge.app.cli import main
from mixbridge.bridge.midi import read_smf_curves, read_smf_ports
from mixbridge.session import Automation, Session, Track, load, save

from .test_midi_export import _pairs, read_smf_raw

#: The mixers ``automix`` runs without a trained checkpoint (``learned`` needs ``--checkpoint``).
OFFLINE_MIXERS = ["knowledge", "mono_sum", "random", "equal_loudness", "prior", "dmc"]
#: Full scale of a 7-bit CC and of a 14-bit MSB/LSB pair.
FULL = {False: 127, True: 16383}


def _step_db(v: int) -> float:
    """One controller step at value ``v`` on the GM volume law, dB: ``40 log10((v + 1) / v)``."""
    return 40 * math.log10((v + 1) / v)


def _check_last_fader_values(session: Session, mid, cc14: bool) -> None:
    """Every track's last CC7 (or CC7/CC39 pair), read raw and with mido, is the curve's last value (clipped at
    0 dB, the law's top) within one step."""
    raw = {t["name"]: t for t in read_smf_raw(mid)[1:]}
    by_mido = read_smf_curves(mid, cc14=cc14)
    full = FULL[cc14]
    for t in session.tracks:
        curve = t.automation["fader.fader_db"]
        if cc14:
            v = _pairs(raw[t.name]["cc"], 7)[-1][1]
        else:
            v = [val for _, _, c, val in raw[t.name]["cc"] if c == 7][-1]
        assert by_mido[(t.name, 7)][-1][1] == v, t.name
        want_db = min(float(curve.values[-1]), 0.0)
        got_db = 40 * math.log10(v / full)
        assert abs(got_db - want_db) <= _step_db(v), (t.name, cc14, v, want_db)


@pytest.fixture(scope="module")
def ride_sessions(multitrack, tmp_path_factory) -> dict[str, Session]:
    """``automix --ride`` of the 6 s multitrack with every offline mixer: ``{mixer: session}``."""
    out = {}
    for mixer in OFFLINE_MIXERS:
        folder = tmp_path_factory.mktemp(f"ride_{mixer}")
        assert main(["automix", str(multitrack), "-o", str(folder), "--mixer", mixer, "--no-report", "-q",
                     "--ride"]) == 0, mixer
        out[mixer] = load(folder / "session.json")
    return out


@pytest.mark.parametrize("cc14", [False, True], ids=["cc7", "cc14"])
@pytest.mark.parametrize("mixer", OFFLINE_MIXERS)
def test_midi_export_works_on_every_automix_ride_session(ride_sessions, tmp_path, mixer, cc14):
    session = ride_sessions[mixer]
    assert all("fader.fader_db" in t.automation for t in session.tracks), mixer
    mid = tmp_path / "ride.mid"
    args = ["--cc14"] if cc14 else []
    assert main(["midi-export", str(save(session, tmp_path / "s.json")), "-o", str(mid), "-q", *args]) == 0
    assert [t["name"] for t in read_smf_raw(mid)[1:]] == [t.name for t in session.tracks]
    _check_last_fader_values(session, mid, cc14)


@pytest.mark.parametrize("cc14", [False, True], ids=["cc7", "cc14"])
def test_midi_export_works_on_64_tracks(tmp_path, cc14):
    """64 tracks with a fader ramp, a pan ramp and a mute step each: 4 ports of 16 channels, one (port, channel)
    per track, every lane present."""
    tracks = [Track(f"t{i:02d}", f"t{i:02d}.wav", automation={
        "fader.fader_db": Automation([0.0, 3.0], [-40.0 + i * 0.5, -3.0 - i * 0.1]),
        "pan.pan": Automation([0.0, 3.0], [-1.0 + i / 32, 1.0 - i / 32]),
        "fader.mute": Automation([0.0, 1.0, 1.01, 2.0], [0.0, 0.0, 1.0, 1.0])}) for i in range(64)]
    session = Session(48000, tracks)
    mid = tmp_path / "t64.mid"
    args = ["--cc14"] if cc14 else []
    assert main(["midi-export", str(save(session, tmp_path / "s.json")), "-o", str(mid), "-q", *args]) == 0
    ports = read_smf_ports(mid)
    assert ports == {f"t{i:02d}": divmod(i, 16) for i in range(64)}
    raw = read_smf_raw(mid)[1:]
    assert [t["ports"] for t in raw] == [[i // 16] for i in range(64)]
    want_ccs = {7, 10, 22} | ({39, 42} if cc14 else set())
    assert all({c for _, _, c, _ in t["cc"]} == want_ccs for t in raw)
    _check_last_fader_values(session, mid, cc14)
