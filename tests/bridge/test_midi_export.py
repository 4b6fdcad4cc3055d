"""midi-export (issue 15, item 6): on/off lanes as steps, 16 channels per MIDI port, CC7 on the General MIDI
volume law, CCs at their exact ticks. Files are read back both with mido and with the independent SMF
reader below (the byte layout of the Standard MIDI File 1.0 specification)."""
from __future__ import annotations

import math
import struct
from pathlib import Path

import pytest

from mixbridge.app.cli import main
from mixbridge.bridge.midi import CC_NUMBERS, TICKS_PER_S, read_smf_curves
from mixbridge.session import Automation, Session, Track, save

#: One tick of the file's clock (1920 ticks per second): the rounding of an exact time.
HALF_TICK_S = 0.5 / TICKS_PER_S


def _vlq(buf: bytes, i: int) -> tuple[int, int]:
    """A variable-length quantity at ``buf[i]``: ``(value, index after it)``."""
    value = 0
    while True:
        b = buf[i]
        i += 1
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            return value, i


def read_smf_raw(path: Path) -> list[dict]:
    """An SMF reader independent of mido: per MTrk chunk, its name, MIDI port meta events and
    ``(tick, channel, control, value)`` control changes (running status and meta/sysex skipped)."""
    data = path.read_bytes()
    assert data[:4] == b"MThd"
    head_len = struct.unpack(">I", data[4:8])[0]
    pos = 8 + head_len
    tracks = []
    while pos < len(data):
        kind, length = data[pos:pos + 4], struct.unpack(">I", data[pos + 4:pos + 8])[0]
        body, pos = data[pos + 8:pos + 8 + length], pos + 8 + length
        assert kind == b"MTrk"
        info: dict = {"name": None, "ports": [], "cc": []}
        i, tick, status = 0, 0, 0
        while i < len(body):
            delta, i = _vlq(body, i)
            tick += delta
            if body[i] & 0x80:
                status = body[i]
                i += 1
            if status == 0xFF:
                meta = body[i]
                n, i = _vlq(body, i + 1)
                payload = body[i:i + n]
                i += n
                if meta == 0x03:
                    info["name"] = payload.decode("latin-1")
                elif meta == 0x21:
                    info["ports"].append(payload[0])
            elif status in (0xF0, 0xF7):
                n, i = _vlq(body, i)
                i += n
            elif status & 0xF0 == 0xB0:
                info["cc"].append((tick, status & 0x0F, body[i], body[i + 1]))
                i += 2
            else:
                i += 1 if status & 0xF0 in (0xC0, 0xD0) else 2
        tracks.append(info)
    return tracks


def _export(tmp_path: Path, session: Session, *args: str) -> Path:
    out = tmp_path / "auto.mid"
    assert main(["midi-export", str(save(session, tmp_path / "s.json")), "-o", str(out), "-q", *args]) == 0
    return out


def test_more_than_16_tracks_spread_over_ports_never_sharing_a_channel(tmp_path):
    """40 automated tracks: track i on port i // 16, channel i % 16 (tracks 0, 16, 32 used to be channel 1 of
    one port, all on CC7); every (port, channel) pair carries exactly one session track."""
    tracks = [Track(f"t{i:02d}", f"t{i:02d}.wav", automation={"fader.fader_db": Automation([0.0, 1.0], [-20.0, -10.0])})
              for i in range(40)]
    raw = read_smf_raw(_export(tmp_path, Session(48000, tracks)))[1:]
    assert [t["name"] for t in raw] == [f"t{i:02d}" for i in range(40)]
    for i, t in enumerate(raw):
        assert t["ports"] == [i // 16], t["name"]
        assert {ch for _, ch, _, _ in t["cc"]} == {i % 16}, t["name"]
    assert len({(t["ports"][0], t["cc"][0][1]) for t in raw}) == 40


def test_cc7_is_the_general_midi_volume_law(tmp_path, capsys):
    """A held fader at g dB is written as CC7 = round(127 * 10 ** (g / 40)) (GM: 127 = 0 dB, 100 = -4.15 dB,
    64 = -11.9 dB); the law is the one the composer labels read CC7 with."""
    from mixbridge.gm import cc7_gain_db
    from mixbridge.plugins.datagen.composer import labels

    assert labels.cc7_gain_db is cc7_gain_db  # one implementation
    gains = [0.0, cc7_gain_db(100), cc7_gain_db(64), -24.0, -48.0, 6.0]
    tracks = [Track(f"t{i}", f"t{i}.wav", automation={"fader.fader_db": Automation([0.0, 1.0], [g, g])})
              for i, g in enumerate(gains)]
    out = tmp_path / "gm.mid"
    assert main(["midi-export", str(save(Session(48000, tracks), tmp_path / "s.json")), "-o", str(out)]) == 0
    got = [t["cc"][0][3] for t in read_smf_raw(out)[1:]]
    assert got == [127, 100, 64, round(127 * 10 ** (-24 / 40)), round(127 * 10 ** (-48 / 40)), 127]
    err = capsys.readouterr().err
    assert "notice: track 't5'" in err and "above CC7's 0 dB" in err  # +6 dB cannot be written: said so


def test_ccs_land_at_their_exact_tick_not_on_a_100hz_grid(tmp_path):
    """A pan ramp -1 -> +1 over 0.333 s: CC10 value k is reached where 127 * u(t) crosses k - 1/2,
    u = (pan + 1) / 2, i.e. at t_k = 0.333 * (k - 1/2) / 127; each CC lies within half a tick of it
    (a 100 Hz grid is up to 10 ms late)."""
    duration = 0.333
    s = Session(48000, [Track("gtr", "g.wav", automation={"pan.pan": Automation([0.0, duration], [-1.0, 1.0])})])
    points = [(tick, v) for tick, _, cc, v in read_smf_raw(_export(tmp_path, s))[1]["cc"] if cc == 10]
    assert [v for _, v in points] == list(range(128))
    for tick, v in points[1:]:
        assert tick / TICKS_PER_S == pytest.approx(duration * (v - 0.5) / 127, abs=HALF_TICK_S), v
    assert read_smf_curves(tmp_path / "auto.mid")[("gtr", 10)][-1][1] == 127  # mido reads the same file


@pytest.mark.parametrize("path", ["fader.mute", "polarity.invert"])
def test_on_off_curves_export_as_steps_at_their_exact_time(tmp_path, path):
    """A mute or polarity curve drawn as a step (0 at 1 s, 1 at 1 s + 1/150 s, back to 0 from 2.5 s to 3 s)
    exports only 0 and 127: on where the piecewise-linear value is >= 0.5, so it flips half way along each
    ramp, at its exact tick (sampling it on a grid gave an interpolated 0.00666 or a late switch)."""
    times = [0.0, 1.0, 1.0 + 1 / 150, 2.5, 3.0]
    s = Session(48000, [Track("kick", "k.wav", automation={path: Automation(times, [0.0, 0.0, 1.0, 1.0, 0.0])})])
    cc = CC_NUMBERS[path]
    points = [(tick, v) for tick, _, c, v in read_smf_raw(_export(tmp_path, s))[1]["cc"] if c == cc]
    assert [v for _, v in points] == [0, 127, 0]
    want_s = [0.0, 1.0 + 0.5 / 150, 2.75]
    assert all(math.isclose(tick / TICKS_PER_S, w, abs_tol=HALF_TICK_S) for (tick, _), w in zip(points, want_s))


def _pairs(cc: list[tuple[int, int, int, int]], msb: int) -> list[tuple[int, int]]:
    """``(tick, 128 * MSB + LSB)`` of the 14-bit pairs on controller ``msb`` (LSB on ``msb + 32``), decoded
    from raw control changes; each LSB must follow its MSB directly, at the same tick (MIDI 1.0: MSB first)."""
    out = []
    for (tick, ch, c, v), nxt in zip(cc, cc[1:] + [(None, None, None, None)]):
        if c == msb:
            assert nxt[2] == msb + 32 and nxt[0] == tick and nxt[1] == ch, (tick, c, nxt)
            out.append((tick, 128 * v + nxt[3]))
        elif c == msb + 32:
            assert out and out[-1][0] == tick, ("LSB without its MSB", tick)
    return out


#: The 14-bit scale's top (MSB 127, LSB 127).
FULL_14BIT = 16383


def test_cc14_writes_fader_and_pan_as_msb_lsb_pairs_within_one_14bit_step(tmp_path):
    """``--cc14``: a held fader at g dB is the pair CC7/CC39 with v = 128 MSB + LSB on the GM law over 0..16383
    (g = 40 log10(v / 16383)); the decoded level is within the 14-bit step 40 log10((v + 1) / v) of g (0.001 dB
    at 0 dB, 0.017 dB at -48 dB; a 7-bit step is 0.14-2 dB). Pan is CC10/CC42, v = round(16383 (pan + 1) / 2),
    within 2 / 16383. Read with the raw reader above and with mido (read_smf_curves)."""
    gains = [0.0, -0.05, -4.15, -11.9, -24.0, -47.3]
    pans = [-1.0, -0.3, 0.0, 0.25, 0.77, 1.0]
    tracks = [Track(f"t{i}", f"t{i}.wav", automation={"fader.fader_db": Automation([0.0, 1.0], [g, g]),
                                                      "pan.pan": Automation([0.0, 1.0], [p, p])})
              for i, (g, p) in enumerate(zip(gains, pans))]
    out = _export(tmp_path, Session(48000, tracks), "--cc14")
    by_mido = read_smf_curves(out, cc14=True)
    for t, g, pan in zip(read_smf_raw(out)[1:], gains, pans):
        (_, v), = _pairs(t["cc"], 7)
        step_db = 40 * math.log10((v + 1) / v)
        assert abs(40 * math.log10(v / FULL_14BIT) - g) <= step_db, (t["name"], v, g)
        (_, p14), = _pairs(t["cc"], 10)
        assert abs(2 * p14 / FULL_14BIT - 1 - pan) <= 1 / FULL_14BIT, (t["name"], p14, pan)
        assert [v for _, v in by_mido[(t["name"], 7)]] == [v]
        assert [v for _, v in by_mido[(t["name"], 10)]] == [p14]


def test_cc14_ramp_lands_each_14bit_value_at_its_exact_tick(tmp_path):
    """A fader ramp -30 -> -20 dB over 10 s (8.5 ticks per 14-bit value), as 14-bit pairs: the decoded
    values rise by one at a time from the start value to the end value (no 7-bit jumps), each within half
    a tick of where the line crosses the half-way point between two values on the GM law; the 7-bit export
    of the same curve has fewer than 128 values and no CC39."""
    duration, g0, g1 = 10.0, -30.0, -20.0
    s = Session(48000, [Track("vox", "v.wav", automation={"fader.fader_db": Automation([0.0, duration], [g0, g1])})])
    pairs = _pairs(read_smf_raw(_export(tmp_path, s, "--cc14"))[1]["cc"], 7)
    values = [v for _, v in pairs]
    v0, v1 = round(FULL_14BIT * 10 ** (g0 / 40)), round(FULL_14BIT * 10 ** (g1 / 40))
    assert values == list(range(v0, v1 + 1))
    for tick, v in pairs[1:]:
        crossing_db = 40 * math.log10((v - 0.5) / FULL_14BIT)
        assert tick / TICKS_PER_S == pytest.approx((crossing_db - g0) / (g1 - g0) * duration, abs=HALF_TICK_S), v
    seven = [v for _, _, c, v in read_smf_raw(_export(tmp_path, s))[1]["cc"] if c == 7]
    assert len(seven) < 128 and not any(c == 39 for _, _, c, _ in read_smf_raw(tmp_path / "auto.mid")[1]["cc"])
