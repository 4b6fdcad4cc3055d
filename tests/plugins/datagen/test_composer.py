"""Tests of the composer dataset (:mod:`mixbridge.plugins.datagen.composer`, ``mixbridge datagen composer``).

Unit tests check the label rules against closed forms on synthetic MIDI songs (CC7
by the GM volume law, its power mean over a ramp, CC10 pan) and the split rule. One
real build (one Freedoom song, one 4 s excerpt, rendered with the real fluidsynth and
soundfonts; skipped, with the reason, where those Debian packages are missing) checks
the stems' common loudness, that the target mix is the panned, gain-scaled sum of the
stems, resuming, refusing other settings, and the reader's refusals.
"""
from __future__ import annotations

import io
import json
import math
import shutil
from pathlib import Path

import mido
import numpy as np
import pytest

from mixbridge.loudness import integrated_lufs
from mixbridge.plugins.console import pan_gains
from mixbridge.plugins.datagen.composer import (
    ComposerDatasetError,
    ComposerSettingsError,
    labels,
    read_composer_dataset,
    split,
)
from mixbridge.plugins.datagen.composer import build as cbuild
from mixbridge.plugins.datagen.demo import midi, wad
from mixbridge.session import load as load_session
from tests.support import HAVE_DEMO_SOURCES, needs_demo_sources

HAVE_SOURCES = HAVE_DEMO_SOURCES
needs_sources = needs_demo_sources

TPB = 480  # ticks per beat of the synthetic songs (120 bpm: 0.5 s per beat)
#: Label arithmetic is float64 closed form; only rounding to GAIN_DECIMALS remains.
LABEL_TOL_DB = 1e-9
#: Stored labels are rounded to 4 decimals of dB.
STORED_TOL_DB = 1e-4
#: Every stored stem is within this of its excerpt's drawn loudness (the builder aims at 0.01 LU).
COMMON_LUFS_TOL_LU = 0.1
#: The builtin console's mix vs the numpy sum: float32 arithmetic on signals below ~2 full scale.
MIX_TOL = 1e-5
SONG = "D_E1M9"


# --------------------------------------------------------------------------- synthetic songs


def _song(channel_events: dict[int, list[tuple[int, int, int]]], beats: int = 32) -> midi.Song:
    """A one-track song: every listed channel plays a note per beat; ``(tick, control, value)`` events."""
    mid = mido.MidiFile(type=0, ticks_per_beat=TPB)
    events = []
    for ch, ccs in channel_events.items():
        for tick, control, value in ccs:
            events.append((tick, 0, mido.Message("control_change", channel=ch, control=control, value=value)))
        for b in range(beats):
            events.append((b * TPB, 1, mido.Message("note_on", channel=ch, note=60, velocity=100)))
            events.append((b * TPB + TPB // 2, 1, mido.Message("note_off", channel=ch, note=60, velocity=0)))
    events.sort(key=lambda e: (e[0], e[1]))
    track = mido.MidiTrack()
    last = 0
    for tick, _, msg in events:
        track.append(msg.copy(time=tick - last))
        last = tick
    mid.tracks.append(track)
    buf = io.BytesIO()
    mid.save(file=buf)
    return midi.parse_song(wad.SongRef("D_TEST", Path("test.wad")), buf.getvalue())


def test_static_cc7_and_cc10_give_the_gm_laws_exactly():
    song = _song({0: [(0, 7, 100), (0, 10, 0)], 1: [(0, 7, 64), (0, 10, 64)], 2: [(0, 10, 127)], 3: []})
    start, end = 4 * TPB, 20 * TPB
    got = [labels.channel_label(song, ch, start, end) for ch in range(4)]
    assert [g.cc7 for g in got] == [100.0, 64.0, 100.0, 100.0]  # channels 2 and 3 never send CC7: GM 100
    assert got[0].cc7_gain_db == pytest.approx(40 * math.log10(100 / 127), abs=LABEL_TOL_DB)
    assert got[1].cc7_gain_db == pytest.approx(40 * math.log10(64 / 127), abs=LABEL_TOL_DB)
    assert got[1].cc7_gain_db == pytest.approx(-11.9, abs=0.05)  # half the value: about -12 dB
    assert [g.pan for g in got] == [-1.0, 0.0, 1.0, 0.0]
    assert [g.cc10 for g in got] == [0, 64, 127, 64]
    assert not any(g.cc7_ramped or g.cc10_ramped for g in got)
    assert labels.cc10_pan(32) == -0.5 and labels.cc10_pan(96) == pytest.approx(32 / 63)


def test_value_in_force_at_the_excerpt_start_is_the_label():
    song = _song({0: [(0, 7, 30), (2 * TPB, 7, 90), (30 * TPB, 7, 10)]})
    got = labels.channel_label(song, 0, 4 * TPB, 20 * TPB)  # 90 holds over the whole excerpt
    assert got.cc7 == 90.0 and not got.cc7_ramped
    assert got.cc7_curve == ((0.0, round(40 * math.log10(90 / 127), 6)),)


def test_ramp_is_labelled_by_its_power_mean_and_keeps_its_curve():
    # Excerpt of 16 beats (8 s at 120 bpm): CC7 127 for 4 beats, 64 for 8 beats, 100 for 4 beats.
    song = _song({0: [(0, 7, 127), (8 * TPB, 7, 64), (16 * TPB, 7, 100)]})
    got = labels.channel_label(song, 0, 4 * TPB, 20 * TPB)
    power = (4 * 1.0 + 8 * (64 / 127) ** 4 + 4 * (100 / 127) ** 4) / 16
    assert got.cc7_ramped
    assert got.cc7_gain_db == pytest.approx(10 * math.log10(power), abs=LABEL_TOL_DB)
    assert got.cc7 == pytest.approx(127 * power ** 0.25, abs=1e-9)
    assert [t for t, _ in got.cc7_curve] == pytest.approx([0.0, 2.0, 6.0])
    assert [g for _, g in got.cc7_curve] == pytest.approx([0.0, 40 * math.log10(64 / 127), 40 * math.log10(100 / 127)])
    # The power mean lies above the arithmetic mean of the dB values (loud parts dominate).
    mean_db = (8 * 40 * math.log10(64 / 127) + 4 * 40 * math.log10(100 / 127)) / 16
    assert got.cc7_gain_db > mean_db


def test_pan_ramp_is_time_weighted_and_cc7_zero_is_silent():
    song = _song({0: [(0, 10, 0), (12 * TPB, 10, 127)], 1: [(0, 7, 0)]})
    pan = labels.channel_label(song, 0, 4 * TPB, 20 * TPB)
    assert pan.cc10_ramped and pan.cc10 == 0
    assert pan.pan == pytest.approx(0.5 * -1.0 + 0.5 * 1.0, abs=1e-12)
    muted = labels.channel_label(song, 1, 4 * TPB, 20 * TPB)
    assert muted.cc7 == 0.0 and muted.cc7_gain_db == -math.inf


def test_relative_gains_are_cc7_plus_loudness_correction_minus_the_mean():
    cc7_db = np.array([0.0, -6.0, -12.0])
    raw = np.array([-20.0, -30.0, -25.0])
    inp = np.array([-24.0, -24.0, -24.0])
    g = labels.relative_gains_db(cc7_db, raw, inp)
    expect = cc7_db + raw - inp
    np.testing.assert_allclose(g, expect - expect.mean(), atol=LABEL_TOL_DB)
    assert abs(g.mean()) < LABEL_TOL_DB


def test_split_is_by_song_fixed_and_keeps_the_demo_songs_in_test():
    lumps = [f"D_SONG{i}" for i in range(400)] + list(split.DEMO_TEST_SONGS)
    parts = split.split_songs(lumps)
    seen = [lump for s in split.SPLITS for lump in parts[s]]
    assert sorted(seen) == sorted(lumps)  # every song in exactly one split
    assert all(lump in parts["test"] for lump in split.DEMO_TEST_SONGS)
    n = len(lumps)
    assert abs(len(parts["test"]) / n - split.TEST_FRACTION) < 0.06
    assert abs(len(parts["val"]) / n - split.VAL_FRACTION) < 0.05
    # Fixed: a song's split does not depend on which other songs are built.
    assert {lump: split.split_of(lump) for lump in lumps[:50]} == \
        {lump: s for s, ls in split.split_songs(lumps[:50]).items() for lump in ls}


def test_excerpts_are_bar_aligned_apart_and_in_time_order():
    from mixbridge.plugins.datagen.demo.plan import choose_excerpts

    song = _song({0: [], 1: []}, beats=64)  # 32 s at 120 bpm, 4/4: a bar is 2 s
    got = choose_excerpts(song, 4.0, 3, spacing_s=5.0)
    assert len(got) == 3
    starts = [e.start_s for e in got]
    assert starts == sorted(starts)
    assert all(b - a >= 5.0 for a, b in zip(starts, starts[1:]))
    assert all(e.start_tick % (4 * TPB) == 0 and e.end_s - e.start_s == pytest.approx(4.0) for e in got)
    refused = got[0].start_tick
    again = choose_excerpts(song, 4.0, 3, spacing_s=5.0, accept=lambda e: e.start_tick != refused)
    assert refused not in [e.start_tick for e in again] and len(again) == 3
    # Equal scores go to the earliest bar: starts 0, 6, 12, 18, 24 s (bars of 2 s, at least 5 s apart; the
    # last note ends at 31.75 s, so no window starts after 26 s).
    every = choose_excerpts(song, 4.0, 20, spacing_s=5.0)
    assert [e.start_s for e in every] == pytest.approx([0.0, 6.0, 12.0, 18.0, 24.0])


def test_gain_split_over_fader_and_trim():
    assert cbuild.split_gain_db(-6.5) == (-6.5, 0.0)
    assert cbuild.split_gain_db(20.0) == (12.0, 8.0)
    assert cbuild.split_gain_db(-60.0) == (-48.0, -12.0)
    with pytest.raises(Exception, match="outside what fader and trim reach"):
        cbuild.split_gain_db(40.0)


# --------------------------------------------------------------------------- one real build


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One Freedoom song, one 4 s excerpt (+ 1 s tail), built through the CLI; D_INTROA is skipped."""
    from mixbridge.app.cli import main

    out = tmp_path_factory.mktemp("composer") / "ds"
    rc = main(["datagen", "composer", "-o", str(out), "--pick", SONG, "D_INTROA", "--excerpts-per-song", "1",
               "--excerpt-s", "4", "--workers", "1", "-q"])
    assert rc == 0
    return out


def _settings():
    return cbuild.resolve_settings(pick=[SONG, "D_INTROA"], excerpts_per_song=1, excerpt_s=4.0)


@needs_sources
def test_build_layout_labels_and_skipped_song(built):
    ds = read_composer_dataset(built, verify=True)
    assert [e.id for e in ds.excerpts] == ["e1m9_x0"]
    ex = ds.excerpts[0]
    assert (ex.lump, ex.split, ex.kit, ex.sample_rate) == (SONG, "test", "black_pearl", 44100)
    assert ds.config["split"]["test"] == [SONG] and ds.split("test") == ds.excerpts and ds.split("train") == []
    assert [s["lump"] for s in ds.config["skipped_songs"]] == ["D_INTROA"]
    assert ds.config["skipped_songs"][0]["reason"]
    stems = ex.load_stems()
    assert stems.dtype == np.float32 and stems.shape == (len(ex.track_names), 2, int(5.0 * 44100))
    assert len(ex.track_names) >= cbuild.MIN_TRACKS and len(ex.kinds) == len(ex.gm_programs) == len(ex.track_names)
    # The labels follow the song's own CC7/CC10 (closed form from the MIDI file, not the builder's output).
    song = midi.parse_song(wad.resolve_song(SONG))
    m = ex.stems_manifest
    t0, t1 = m["excerpt"]["start_tick"], m["excerpt"]["end_tick"]
    raw = []
    for s in m["stems"]:
        ch = 9 if s["kind"] == "drums" else s["midi_channel"] - 1
        cc7 = [v for tick, v in song.controller_curve(ch, 7) if tick <= t0]
        cc10 = [v for tick, v in song.controller_curve(ch, 10) if tick <= t0]
        assert not any(t0 < tick < t1 for tick, _ in song.controller_curve(ch, 7))  # no ramp in this excerpt
        v7, v10 = (cc7[-1] if cc7 else 100), (cc10[-1] if cc10 else 64)
        assert s["target"]["cc7"] == v7 and s["target"]["cc10"] == v10
        assert s["target"]["pan"] == pytest.approx((v10 - 64) / (64 if v10 < 64 else 63), abs=1e-6)
        raw.append(40 * math.log10(v7 / 127) + s["target"]["raw_lufs"] - s["target"]["input_lufs"])
    raw = np.array(raw)
    np.testing.assert_allclose(ex.target_gain_db, raw - raw.mean(), atol=3 * STORED_TOL_DB)
    np.testing.assert_allclose(ex.target_pan, [s["target"]["pan"] for s in m["stems"]])
    # The session carries the same gains (trim + fader) and pans.
    session = load_session(ex.target_session_path)
    assert [t.name for t in session.tracks] == ex.track_names
    for t, g, p in zip(session.tracks, ex.target_gain_db, ex.target_pan):
        assert t.params["trim"]["gain_db"] + t.params["fader"]["fader_db"] == pytest.approx(g, abs=1e-9)
        assert t.params["pan"]["pan"] == p
        assert session.source_path(t).resolve().parent == ex.stems_dir.resolve()


@needs_sources
def test_stems_share_the_drawn_common_loudness(built):
    ex = read_composer_dataset(built).excerpts[0]
    drawn = cbuild.draw_input_lufs(_settings(), SONG, 0)
    assert -30.0 <= drawn <= -18.0 and ex.input_lufs == drawn
    for name, stem in zip(ex.track_names, ex.load_stems()):
        assert abs(integrated_lufs(stem, ex.sample_rate) - drawn) < COMMON_LUFS_TOL_LU, name


@needs_sources
def test_target_mix_is_the_panned_gain_scaled_sum_of_the_stems(built):
    ex = read_composer_dataset(built).excerpts[0]
    stems = ex.load_stems().astype(np.float64)
    gain = 10.0 ** (ex.target_gain_db / 20.0)
    left, right = pan_gains(ex.target_pan, 2)
    expect = np.stack([np.einsum("t,tn->n", gain * left, stems[:, 0]), np.einsum("t,tn->n", gain * right, stems[:, 1])])
    mix = ex.load_target_mix()
    assert mix.shape == expect.shape
    assert np.max(np.abs(mix - expect)) < MIX_TOL
    assert np.max(np.abs(mix)) > 0.05  # not trivially silent


@needs_sources
def test_rerun_resumes_and_other_settings_are_refused(built, tmp_path):
    out = tmp_path / "ds"
    shutil.copytree(built, out)
    manifest_bytes = (out / "manifest.json").read_bytes()
    summary = cbuild.build_composer(out, _settings(), jobs=1, progress=False)
    assert summary["rendered"] == [] and summary["reused"] == ["e1m9_x0"]
    assert (out / "manifest.json").read_bytes() == manifest_bytes
    # Delete the excerpt: the rerun renders that one only, and gives the same files.
    before = json.loads(manifest_bytes)["excerpts"][0]["files"]
    shutil.rmtree(out / "excerpts" / "e1m9_x0")
    summary = cbuild.build_composer(out, _settings(), jobs=1, progress=False)
    assert summary["rendered"] == ["e1m9_x0"] and summary["reused"] == []
    assert json.loads((out / "manifest.json").read_text())["excerpts"][0]["files"] == before
    assert not list(out.glob(".staging-*"))
    with pytest.raises(ComposerSettingsError, match=r"excerpt_s = 4\.0.*5\.0.*--force"):
        cbuild.build_composer(out, cbuild.resolve_settings(pick=[SONG, "D_INTROA"], excerpts_per_song=1,
                                                           excerpt_s=5.0), jobs=1, progress=False)


@needs_sources
def test_reader_refuses_corruption_incomplete_and_outside_paths(built, tmp_path):
    out = tmp_path / "ds"
    shutil.copytree(built, out)
    stem = next((out / "excerpts" / "e1m9_x0" / "stems").glob("*.wav"))
    data = bytearray(stem.read_bytes())
    data[-100] ^= 0xFF
    stem.write_bytes(bytes(data))
    read_composer_dataset(out)  # no verify: sizes and presence only
    with pytest.raises(ComposerDatasetError, match="checksum differs"):
        read_composer_dataset(out, verify=True)

    manifest = json.loads((out / "manifest.json").read_text())
    manifest["excerpts"][0]["folder"] = "../elsewhere"
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ComposerDatasetError, match="outside the dataset folder"):
        read_composer_dataset(out)

    (out / "manifest.json").unlink()
    with pytest.raises(ComposerDatasetError, match="incomplete"):
        read_composer_dataset(out)
    with pytest.raises(ComposerDatasetError, match="not a composer dataset"):
        read_composer_dataset(tmp_path / "nothing")
