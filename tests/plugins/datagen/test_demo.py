"""Tests of the demo multitrack builder (:mod:`mixbridge.plugins.datagen.demo`, ``mixbridge demo``).

Unit tests build small WAD and MIDI files in the test and check parsing, the
drum split, CC7/CC10 stripping and excerpt choice exactly. Integration tests
render a real Freedoom song with the real fluidsynth and soundfonts (skipped,
with the reason, where those Debian packages are missing) and check lengths,
levels, the manifest, bit-identical rebuilds and that failures leave nothing
half-written.
"""
from __future__ import annotations

import argparse
import io
import json
import shutil
import struct
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf

from mixbridge.errors import MixbridgeError, ParamRangeError, UnknownNameError
from mixbridge.plugins.datagen.demo import build, errors, gm, midi, plan, render, sources, wad
from mixbridge.plugins.datagen.demo import cli as demo_cli
from mixbridge.plugins.datagen.demo import manifest as demo_manifest
from mixbridge.roles import ROLES
from tests.support import HAVE_DEMO_SOURCES, needs_demo_sources

TPB = 480  # ticks per beat of the synthetic songs

#: Relative tolerance of seconds<->ticks conversions (float rounding only).
TIME_REL_TOL = 1e-9
#: A rendered drum hit counts as present when its slot peaks above this (dBFS);
#: the quietest AVL hit at velocity 100 peaks near -30 dBFS.
HIT_PRESENT_DB = -60.0

HAVE_SOURCES = HAVE_DEMO_SOURCES
needs_sources = needs_demo_sources
HAVE_FLUIDSYNTH_AVL = shutil.which("fluidsynth") is not None and sources.DRUM_KITS["black_pearl"].is_file()


# --------------------------------------------------------------------------- helpers


def make_wad(path: Path, lumps: list[tuple[str, bytes]], ident: bytes = b"PWAD") -> Path:
    """Write a WAD: 12-byte header, lump data, then 16-byte directory entries."""
    data = b""
    entries = []
    offset = 12
    for name, blob in lumps:
        entries.append(struct.pack("<ii8s", offset, len(blob), name.encode("ascii")))
        data += blob
        offset += len(blob)
    header = struct.pack("<4sii", ident, len(lumps), 12 + len(data))
    path.write_bytes(header + data + b"".join(entries))
    return path


def midi_bytes(tracks: list[list[tuple[int, mido.Message | mido.MetaMessage]]]) -> bytes:
    """A type-1 MIDI file from tracks of ``(absolute tick, message)``."""
    mid = mido.MidiFile(type=1, ticks_per_beat=TPB)
    for events in tracks:
        track = mido.MidiTrack()
        last = 0
        for tick, msg in sorted(events, key=lambda e: e[0]):
            track.append(msg.copy(time=tick - last))
            last = tick
        mid.tracks.append(track)
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def note(tick: int, length: int, pitch: int, channel: int, velocity: int = 100):
    return [
        (tick, mido.Message("note_on", channel=channel, note=pitch, velocity=velocity)),
        (tick + length, mido.Message("note_off", channel=channel, note=pitch, velocity=0)),
    ]


def band_song(bars: int = 40, tempo_bpm: float = 100.0) -> bytes:
    """A 4/4 song whose tempo lives in track 2 (not track 0), with:

    - drums (channel 10) on every beat from bar 0: 35 kick, 40 snare, 42 hat,
      48/50 toms, 49 crash, 54 tambourine, 75 claves;
    - bass (channel 1, program 33) only from bar 8 on, with CC7/CC10/CC11;
    - guitar (channel 2) program 30 for bars 8-19, then program 29 from bar 20.
    """
    bar = 4 * TPB
    conductor = [(0, mido.MetaMessage("track_name", name="1. Test Song")),
                 (0, mido.MetaMessage("time_signature", numerator=4, denominator=4))]
    drums, bass, guitar = [], [], []
    bass += [(0, mido.Message("program_change", channel=0, program=33)),
             (0, mido.Message("control_change", channel=0, control=7, value=30)),
             (0, mido.Message("control_change", channel=0, control=10, value=0)),
             (0, mido.Message("control_change", channel=0, control=11, value=90))]
    guitar += [(0, mido.Message("program_change", channel=1, program=30)),
               (20 * bar, mido.Message("program_change", channel=1, program=29))]
    for b in range(bars):
        for beat in range(4):
            t = b * bar + beat * TPB
            drums += note(t, TPB // 4, (35, 40, 35, 40)[beat], 9)
            drums += note(t, TPB // 8, 42, 9)
        drums += note(b * bar, 60, 54, 9) + note(b * bar + TPB, 60, 75, 9)
        drums += (note(b * bar, TPB, 49, 9) + note(b * bar + 3 * TPB, 60, 48, 9)
                  + note(b * bar + 3 * TPB + 240, 60, 50, 9))
        if b >= 8:
            bass += note(b * bar, 2 * TPB, 40, 0) + note(b * bar + 2 * TPB, 2 * TPB, 43, 0)
            guitar += note(b * bar, 4 * TPB, 64, 1)
    tempo = [(0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo_bpm)))]
    return midi_bytes([conductor, drums, tempo + bass, guitar])


@pytest.fixture()
def song_wad(tmp_path: Path) -> Path:
    return make_wad(tmp_path / "test.wad", [("D_TEST", band_song()), ("PLAYPAL", b"\x00" * 64),
                                            ("D_SHORT", band_song(bars=4))])


# --------------------------------------------------------------------------- WAD files


def test_wad_directory_and_midi_lumps(song_wad: Path) -> None:
    directory = wad.read_wad_directory(song_wad)
    assert [name for name, _, _ in directory] == ["D_TEST", "PLAYPAL", "D_SHORT"]
    refs = wad.find_midi_songs([song_wad])
    assert [r.lump for r in refs] == ["D_TEST", "D_SHORT"]
    assert wad.read_lump(refs[0]) == band_song()
    assert wad.resolve_song("test", [song_wad]).lump == "D_TEST"


def test_unknown_song_lists_known_songs(song_wad: Path) -> None:
    with pytest.raises(UnknownNameError, match="D_TEST, D_SHORT"):
        wad.resolve_song("D_NOPE", [song_wad])


def test_missing_and_corrupt_wads_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(errors.DemoSourceMissingError, match="apt-get install freedoom") as e:
        wad.read_wad_directory(tmp_path / "absent.wad")
    assert isinstance(e.value, FileNotFoundError)
    bad = tmp_path / "bad.wad"
    bad.write_bytes(b"NOPE" + b"\0" * 20)
    with pytest.raises(errors.DemoSourceError, match="bad.wad: not a WAD"):
        wad.read_wad_directory(bad)
    truncated = tmp_path / "trunc.wad"
    truncated.write_bytes(struct.pack("<4sii", b"IWAD", 5, 12))
    with pytest.raises(errors.DemoSourceError, match="trunc.wad: corrupt WAD directory"):
        wad.read_wad_directory(truncated)
    truncated_midi = b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\x10\x00\x00\x90"
    not_midi = make_wad(tmp_path / "m.wad", [("D_BAD", truncated_midi)])
    with pytest.raises(errors.DemoSourceError, match="D_BAD: not a readable MIDI"):
        midi.parse_song(wad.SongRef("D_BAD", not_midi))


# --------------------------------------------------------------------------- MIDI parsing


def test_tempo_from_any_track_drives_the_clock(song_wad: Path) -> None:
    song = midi.parse_song(wad.SongRef("D_TEST", song_wad))
    seconds_per_beat = 60.0 / 100.0  # the 100 bpm tempo lives in track 2
    assert song.seconds_at(TPB) == pytest.approx(seconds_per_beat, rel=TIME_REL_TOL)
    assert song.seconds_at(40 * 4 * TPB) == pytest.approx(160 * seconds_per_beat, rel=TIME_REL_TOL)
    assert song.tick_at(song.seconds_at(12345)) == 12345
    assert song.title == "Test Song"
    assert song.bar_starts()[:3] == [0, 4 * TPB, 8 * TPB]


def test_drum_groups_follow_data_md() -> None:
    assert gm.DRUM_GROUPS == {
        "kick": (35, 36), "snare": (37, 38, 40), "hihat": (42, 44, 46),
        "toms": (41, 43, 45, 47, 48, 50), "cymbals": (49, 51, 52, 53, 55, 57, 59),
    }
    assert gm.drum_group(75) == "percussion" and gm.drum_group(54) == "percussion"


def test_drums_split_and_program_changes_split_stems(song_wad: Path) -> None:
    song = midi.parse_song(wad.SongRef("D_TEST", song_wad))
    notes = {k: sorted({n.note for n in v}) for k, v in song.stems.items()}
    assert notes[("drums", "kick")] == [35]
    assert notes[("drums", "snare")] == [40]
    assert notes[("drums", "hihat")] == [42]
    assert notes[("drums", "toms")] == [48, 50]
    assert notes[("drums", "cymbals")] == [49]
    assert notes[("drums", "percussion")] == [54, 75]
    assert len(song.stems[("pitched", 1, 30)]) == 12  # bars 8..19
    assert len(song.stems[("pitched", 1, 29)]) == 20  # bars 20..39
    assert len(song.stems[("pitched", 0, 33)]) == 64


def test_gm_tables() -> None:
    assert len(gm.GM_PROGRAM_NAMES) == 128 and len(set(gm.GM_PROGRAM_NAMES)) == 128
    assert gm.GM_PROGRAM_NAMES[30] == "Distortion Guitar" and gm.GM_PROGRAM_NAMES[33] == "Electric Bass (finger)"
    assert [gm.gm_role(p) for p in (0, 30, 33, 48, 52, 81, 89)] == [
        "keys", "guitar", "bass", "strings", "pad", "lead", "pad"]
    assert {gm.gm_role(p) for p in range(128)} | set(gm.DRUM_STEM_ORDER) <= set(ROLES)
    assert gm.slug("Electric Bass (finger)") == "electric_bass_finger"
    # Every AVL target is a note of the 4-piece kits' layout (36..61).
    assert set(gm.GM_TO_AVL_NOTE.values()) <= set(range(36, 62))
    # Every note of the five kit-piece groups is played by the AVL kit.
    assert all(n in gm.GM_TO_AVL_NOTE for group in gm.DRUM_GROUPS.values() for n in group)


# --------------------------------------------------------------------------- excerpt and stem MIDI


def test_excerpt_starts_where_most_stems_play(song_wad: Path) -> None:
    song = midi.parse_song(wad.SongRef("D_TEST", song_wad))
    excerpt = plan.choose_excerpt(song, 30.0)
    # 30 s = 12.5 bars at 100 bpm. Bass and guitar enter at bar 8, but the guitar's
    # second program (from bar 20) has its 4th note in bar 23: bar 11 is the first
    # start from which all 9 stems have >= 4 notes.
    assert excerpt.start_tick == 11 * 4 * TPB
    assert excerpt.end_s - excerpt.start_s == pytest.approx(30.0)
    assert song.seconds_at(excerpt.end_tick) == pytest.approx(excerpt.end_s, abs=song.seconds_at(1))


def test_too_short_song_is_refused(song_wad: Path) -> None:
    song = midi.parse_song(wad.SongRef("D_SHORT", song_wad))
    with pytest.raises(errors.DemoSourceError, match=r"D_SHORT: the song lasts [\d.]+ s, shorter than the 30 s"):
        plan.choose_excerpt(song, 30.0)


def _events(midi: bytes) -> list[tuple[int, int, mido.Message]]:
    mid = mido.MidiFile(file=io.BytesIO(midi))
    out = []
    for ti, track in enumerate(mid.tracks):
        tick = 0
        for msg in track:
            tick += msg.time
            out.append((ti, tick, msg))
    return out


def test_parsed_song_keeps_volume_and_pan_for_later_use(song_wad: Path) -> None:
    """Only the stem renders strip CC7/CC10: the parsed song keeps every controller event."""
    song = midi.parse_song(wad.SongRef("D_TEST", song_wad))
    assert song.controller_curve(0, 7) == [(0, 30)] and song.controller_curve(0, 10) == [(0, 0)]
    assert song.controller_curve(0, 11) == [(0, 90)] and song.controller_curve(1, 7) == []


def test_stem_midi_strips_volume_and_pan_and_cuts_at_the_excerpt(song_wad: Path) -> None:
    song = midi.parse_song(wad.SongRef("D_TEST", song_wad))
    excerpt = plan.choose_excerpt(song, 30.0)
    plans, excluded = plan.plan_stems(song, excerpt, Path("kit.sf2"), Path("gm.sf2"), tail_s=1.0)
    by_name = {p.name: p for p in plans}
    assert list(by_name) == ["kick", "snare", "hihat", "toms", "cymbals", "percussion",
                             "electric_bass_finger", "overdriven_guitar", "distortion_guitar"]
    assert by_name["electric_bass_finger"].role == "bass" and by_name["kick"].role == "kick"
    assert excluded == []

    bass = _events(by_name["electric_bass_finger"].parts[0].midi)
    ccs = [m for _, _, m in bass if m.type == "control_change"]
    assert {m.control for m in ccs} == {11, 64}, "CC7/CC10 must be stripped, CC11 kept"
    assert [m.program for _, _, m in bass if m.type == "program_change"] == [33]
    assert all(m.channel == 0 for _, _, m in bass if not m.is_meta)
    tempo = [(ti, t, m.tempo) for ti, t, m in bass if m.type == "set_tempo"]
    assert tempo[0] == (0, 0, mido.bpm2tempo(100.0))
    ons = [(t, m.note) for _, t, m in bass if m.type == "note_on" and m.velocity > 0]
    assert ons[0] == (0, 40), "the excerpt starts on the bass's first note, shifted to tick 0"
    assert all(t < excerpt.end_tick - excerpt.start_tick for t, _ in ons)
    offs = [t for _, t, m in bass if m.type == "note_off"]
    assert max(offs) <= excerpt.end_tick - excerpt.start_tick, "notes are cut at the excerpt end"

    # The guitar's program in force at the excerpt start is the one of its stem.
    guitar = _events(by_name["distortion_guitar"].parts[0].midi)
    assert [m.program for _, _, m in guitar if m.type == "program_change"] == [30]


def test_drum_parts_are_remapped_to_the_avl_layout(song_wad: Path) -> None:
    song = midi.parse_song(wad.SongRef("D_TEST", song_wad))
    excerpt = plan.choose_excerpt(song, 30.0)
    plans, _ = plan.plan_stems(song, excerpt, Path("kit.sf2"), Path("gm.sf2"))
    by_name = {p.name: p for p in plans}

    def played(part: plan.PartPlan) -> tuple[set[int], set[int]]:
        ev = _events(part.midi)
        return ({m.note for _, _, m in ev if m.type == "note_on"}, {m.channel for _, _, m in ev if not m.is_meta})

    assert played(by_name["kick"].parts[0]) == ({36}, {0})  # GM 35 -> AVL 36, melodic channel
    assert played(by_name["snare"].parts[0]) == ({38}, {0})  # GM 40 (electric snare) -> AVL 38
    assert played(by_name["toms"].parts[0]) == ({45}, {0})  # GM 48/50 -> the rack tom
    perc = by_name["percussion"].parts
    assert [p.package for p in perc] == ["avldrums.lv2-soundfont", "fluid-soundfont-gm"]
    assert played(perc[0]) == ({54}, {0})  # tambourine from the AVL kit
    assert played(perc[1]) == ({75}, {9})  # claves from FluidR3_GM's drum channel
    assert perc[0].soundfont == Path("kit.sf2") and perc[1].soundfont == Path("gm.sf2")


def test_settings_are_validated() -> None:
    with pytest.raises(ParamRangeError, match=r"excerpt_s = 10 s is outside 30..600 s"):
        build.DemoSettings(excerpt_s=10).validate()
    with pytest.raises(ParamRangeError, match=r"n_songs = 9 is outside 1..8"):
        build.default_songs(9)
    with pytest.raises(UnknownNameError, match="known kits: black_pearl, red_zeppelin"):
        build.DemoSettings(songs=(("D_E1M1", "gretsch"),)).validate()
    with pytest.raises(ParamRangeError, match="sample_rate = 1000 Hz"):
        build.DemoSettings(sample_rate=1000).validate()
    with pytest.raises(UnknownNameError, match="WAV subtype 'MP3'"):
        build.DemoSettings(subtype="MP3").validate()


# --------------------------------------------------------------------------- real renders


@pytest.mark.skipif(not HAVE_FLUIDSYNTH_AVL, reason="needs fluidsynth and avldrums.lv2-soundfont (apt packages)")
def test_every_avl_target_note_sounds() -> None:
    """Each GM drum note the builder remaps must produce a hit in the real AVL kit."""
    targets = sorted(set(gm.GM_TO_AVL_NOTE.values()))
    slot = TPB  # one beat (0.5 s at 120 bpm) per note
    events = [(0, mido.Message("program_change", channel=0, program=0))]
    for i, n in enumerate(targets):
        events += note(i * slot, 60, n, 0)
    midi = midi_bytes([events, [(len(targets) * slot + 2 * TPB, mido.MetaMessage("marker", text="end"))]])
    part = plan.PartPlan(sources.DRUM_KITS["black_pearl"], midi, len(targets), "avldrums.lv2-soundfont")
    audio, _ = render.render_part(part, 44100)
    samples_per_slot = int(0.5 * 44100)
    for i, n in enumerate(targets):
        onset = audio[:, i * samples_per_slot:i * samples_per_slot + 4410]  # the first 100 ms of its slot
        peak_db = 20 * np.log10(max(float(np.abs(onset).max()), 1e-12))
        assert peak_db > HIT_PRESENT_DB, f"AVL note {n} is silent ({peak_db:.1f} dBFS)"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    if not HAVE_SOURCES:
        pytest.skip("needs fluidsynth, freedoom, fluid-soundfont-gm and avldrums.lv2-soundfont (apt packages)")
    out = tmp_path_factory.mktemp("demo") / "multitracks"
    settings = build.DemoSettings(songs=(("D_E1M6", "black_pearl"),), excerpt_s=30.0)
    manifest = build.build_demo(out, settings, progress=False, log=lambda s: None)
    return out, manifest


SMALL = build.DemoSettings(songs=(("D_E1M6", "black_pearl"),), excerpt_s=30.0)


@needs_sources
def test_real_song_builds_equal_length_stems_with_manifest(built: tuple[Path, dict]) -> None:
    out, manifest = built
    assert [s["folder"] for s in manifest["songs"]] == ["e1m6"]
    song = manifest["songs"][0]
    names = [s["name"] for s in song["stems"]]
    assert names == ["kick", "snare", "toms", "cymbals", "distortion_guitar", "electric_bass_pick"]
    assert len(names) >= sources.MIN_STEMS_PER_SONG
    n = int(round((30.0 + sources.DEFAULT_TAIL_S) * 44100))
    assert song["samples"] == n and song["duration_s"] >= sources.MIN_EXCERPT_S
    for stem in song["stems"]:
        path = out / "e1m6" / stem["file"]
        info = sf.info(str(path))
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (44100, 2, n, "FLOAT")
        audio, _ = sf.read(str(path), dtype="float32")
        assert np.isfinite(audio).all()
        assert -60.0 < stem["peak_dbfs"] < 0.0, f"{stem['file']}: peak {stem['peak_dbfs']} dBFS"
        for key in ("source", "license", "attribution", "sha256"):
            assert stem[key], f"{stem['file']}: no {key}"
        assert "BSD-3-Clause (composition)" in stem["license"]
        expected = "CC-BY-SA-3.0 (samples)" if stem["kind"] == "drums" else "MIT (samples)"
        assert expected in stem["license"]
    assert {s["package"] for s in manifest["sources"]} == {"freedoom", "fluid-soundfont-gm", "avldrums.lv2-soundfont"}
    assert json.loads((out / "e1m6" / "manifest.json").read_text())["roles"]["electric_bass_pick"] == "bass"
    assert "Freedoom" in (out / "ATTRIBUTION.md").read_text()
    assert demo_manifest.verify_demo(out) == []
    assert not list(out.glob(".*")), "no staging folder may remain"


@needs_sources
def test_drum_split_puts_each_piece_in_its_band(built: tuple[Path, dict]) -> None:
    """The kick stem's energy sits low, the cymbals' high: the split follows the notes."""
    out, _ = built

    def centroid_hz(name: str) -> float:
        audio, rate = sf.read(str(out / "e1m6" / f"{name}.wav"), dtype="float32")
        spectrum = np.abs(np.fft.rfft(audio.mean(axis=1)))
        freqs = np.fft.rfftfreq(audio.shape[0], 1.0 / rate)
        return float((spectrum * freqs).sum() / spectrum.sum())

    kick, snare, cymbals = centroid_hz("kick"), centroid_hz("snare"), centroid_hz("cymbals")
    bass = centroid_hz("electric_bass_pick")
    assert kick < snare < cymbals, (kick, snare, cymbals)
    assert bass < 1000.0 < cymbals


@needs_sources
def test_rebuild_is_bit_identical_and_skipped_when_up_to_date(built: tuple[Path, dict], tmp_path: Path) -> None:
    out, manifest = built
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")}
    lines: list[str] = []
    again = build.build_demo(out, SMALL, progress=False, log=lines.append)
    assert again == manifest and any("up to date" in line for line in lines)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")} == mtimes

    other = build.build_demo(tmp_path / "other", SMALL, force=True, progress=False, log=lambda s: None)
    assert [s["sha256"] for s in other["songs"][0]["stems"]] == [s["sha256"] for s in manifest["songs"][0]["stems"]]
    for p in (tmp_path / "other" / "e1m6").glob("*.wav"):
        assert p.read_bytes() == (out / "e1m6" / p.name).read_bytes()


@needs_sources
def test_tampered_stem_is_reported_and_cli_verify_fails(built: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = built
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    assert run_cli(["demo", "verify", str(copy)]) == 0
    stem = copy / "e1m6" / "kick.wav"
    data = bytearray(stem.read_bytes())
    data[-1] ^= 0x01
    stem.write_bytes(bytes(data))
    problems = demo_manifest.verify_demo(copy)
    assert problems == [f"{stem}: checksum differs from the manifest"]
    assert run_cli(["demo", "verify", str(copy)]) == 1
    (copy / "e1m6" / "stray.wav").write_bytes(stem.read_bytes())
    assert any("stray.wav" in p for p in demo_manifest.verify_demo(copy))


@needs_sources
def test_rebuild_with_other_songs_replaces_only_its_own_folders(built: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = built
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "my_stems").mkdir()
    (copy / "my_stems" / "vocal.wav").write_bytes(b"not ours")
    other = build.DemoSettings(songs=(("D_E2M9", "red_zeppelin"),), excerpt_s=30.0)
    manifest = build.build_demo(copy, other, progress=False, log=lambda s: None)
    assert [s["folder"] for s in manifest["songs"]] == ["e2m9"]
    assert not (copy / "e1m6").exists(), "the previous build's song folder is replaced"
    assert (copy / "my_stems" / "vocal.wav").read_bytes() == b"not ours"
    assert demo_manifest.verify_demo(copy) == []


@needs_sources
def test_failed_build_leaves_nothing_behind(built: tuple[Path, dict], tmp_path: Path) -> None:
    """A drum kit that is not a soundfont fails the build, and nothing is written."""
    out, _ = built
    bogus = tmp_path / "bogus.sf2"
    bogus.write_bytes(b"this is not a soundfont")
    fresh = tmp_path / "fresh"
    with pytest.raises(MixbridgeError, match="D_E1M6"):
        build.build_demo(fresh, SMALL, force=True, progress=False, log=lambda s: None,
                        drum_kits={"black_pearl": bogus})
    assert not fresh.exists(), "a build that created its folder removes it on failure"

    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(MixbridgeError):
        build.build_demo(out, SMALL, force=True, progress=False, log=lambda s: None,
                        drum_kits={"black_pearl": bogus})
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before, "an existing build is untouched by a failed rebuild"
    assert not list(out.glob(".*"))


@needs_sources
def test_unknown_song_and_short_song_fail_before_rendering(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="known songs: D_E1M1"):
        build.build_demo(tmp_path / "x", build.DemoSettings(songs=(("NOPE", "black_pearl"),)), progress=False)
    with pytest.raises(errors.DemoSourceError, match="D_INTROA: the song lasts"):
        build.build_demo(tmp_path / "x", build.DemoSettings(songs=(("INTROA", "black_pearl"),)), progress=False)
    with pytest.raises(ParamRangeError, match="n_songs = 0"):
        build.build_demo(tmp_path / "x", n_songs=0, progress=False)
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------- CLI


def run_cli(argv: list[str]) -> int:
    """Run the ``demo`` command group as ``mixbridge.app.cli.main`` does (errors -> exit 2)."""
    parser = argparse.ArgumentParser(prog="mixbridge")
    demo_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MixbridgeError:
        return 2


def test_cli_song_list_parsing_and_errors(tmp_path: Path) -> None:
    assert demo_cli.parse_song_list("e1m9, D_E2M3:red_zeppelin,E3M4") == (
        ("D_E1M9", "black_pearl"), ("D_E2M3", "red_zeppelin"), ("D_E3M4", "black_pearl"))
    assert build.default_songs(3) == (("D_E1M9", "black_pearl"), ("D_E2M3", "red_zeppelin"), ("D_E3M4", "black_pearl"))
    assert run_cli(["demo", "build", "-o", str(tmp_path / "o"), "--duration-s", "10"]) == 2
    assert run_cli(["demo", "build", "-o", str(tmp_path / "o"), "--songs", "0"]) == 2
    assert run_cli(["demo", "verify", str(tmp_path / "none")]) == 2
    assert not (tmp_path / "o").exists()
