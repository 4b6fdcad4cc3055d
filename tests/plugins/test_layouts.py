"""Tests of the multitrack layout loaders on small fixtures built in each published layout."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from mixbridge.errors import AudioInputError, UnknownNameError
from mixbridge.plugins.layouts import LayoutError, load_layout
from mixbridge.roles import guess_role

SAMPLE_RATE = 8000


def _wav(path: Path, channels: int = 1, seconds: float = 0.1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros((int(seconds * SAMPLE_RATE), channels), dtype=np.float32), SAMPLE_RATE)
    return path


def test_medleydb_stems_raw_tracks_roles_and_mix(tmp_path):
    song = "ArtistA_Song"
    d = tmp_path / song
    meta = {"artist": "ArtistA", "title": "Song", "genre": "Rock", "has_bleed": "no", "instrumental": "no",
            "mix_filename": f"{song}_MIX.wav", "stem_dir": f"{song}_STEMS", "raw_dir": f"{song}_RAW",
            "stems": {"S01": {"filename": f"{song}_STEM_01.wav", "instrument": "drum set",
                              "raw": {"R01": {"filename": f"{song}_RAW_01_01.wav", "instrument": "kick drum"},
                                      "R02": {"filename": f"{song}_RAW_01_02.wav", "instrument": "snare drum"}}},
                      "S02": {"filename": f"{song}_STEM_02.wav", "instrument": "electric bass",
                              "raw": {"R01": {"filename": f"{song}_RAW_02_01.wav", "instrument": "electric bass"}}},
                      "S03": {"filename": f"{song}_STEM_03.wav", "instrument": "male singer", "raw": {}}}}
    d.mkdir()
    (d / f"{song}_METADATA.yaml").write_text(yaml.safe_dump(meta))
    _wav(d / f"{song}_MIX.wav", 2)
    for i in (1, 2, 3):
        _wav(d / f"{song}_STEMS" / f"{song}_STEM_0{i}.wav")
    for f in ("01_01", "01_02", "02_01"):
        _wav(d / f"{song}_RAW" / f"{song}_RAW_{f}.wav")
    [mt] = load_layout(tmp_path, "medleydb")
    assert mt.name == song and mt.mix == d / f"{song}_MIX.wav" and mt.layout == "medleydb"
    assert list(mt.stems) == ["S01_drum_set", "S02_electric_bass", "S03_male_singer"]
    assert mt.roles == {"S01_drum_set": "percussion", "S02_electric_bass": "bass", "S03_male_singer": "lead"}
    assert mt.meta["genre"] == "Rock"
    [raw] = load_layout(tmp_path, "medleydb", raw=True)
    assert raw.roles == {"R01_kick_drum": "kick", "R02_snare_drum": "snare", "R01_electric_bass": "bass"}
    (d / f"{song}_STEMS" / f"{song}_STEM_02.wav").unlink()
    with pytest.raises(LayoutError, match=r"S02 lists ArtistA_Song_STEM_02.wav, which is missing"):
        load_layout(tmp_path, "medleydb")


def test_enst_drums_takes_mics_and_wet_mix(tmp_path):
    root = tmp_path / "ENST-drums"
    take = "001_hits_snare-drum_sticks_x6"
    for mic in ("kick", "snare", "hi-hat", "tom_1", "overhead_L", "overhead_R", "wet_mix", "dry_mix", "accompaniment"):
        _wav(root / "drummer_1" / "audio" / mic / f"{take}.wav", 2 if "mix" in mic else 1)
    _wav(root / "drummer_2" / "audio" / "kick" / "002_solo.wav")
    takes = load_layout(root, "enst")
    assert [t.name for t in takes] == [f"drummer_1/{take}", "drummer_2/002_solo"]
    t = takes[0]
    assert sorted(t.stems) == ["hi-hat", "kick", "overhead_L", "overhead_R", "snare", "tom_1"]
    assert t.roles["overhead_L"] == "cymbals" and t.roles["hi-hat"] == "hihat" and t.roles["tom_1"] == "toms"
    assert t.mix.parent.name == "wet_mix"
    assert "accompaniment" in load_layout(root, "enst", with_accompaniment=True)[0].stems


def test_musdb18_hq_and_the_mp4_hint(tmp_path):
    for sub, song in (("train", "A - One"), ("test", "B - Two")):
        for stem in ("drums", "bass", "other", "vocals", "mixture"):
            _wav(tmp_path / "musdb" / sub / song / f"{stem}.wav", 2)
    songs = load_layout(tmp_path / "musdb", "musdb")
    assert [(s.name, s.meta["subset"]) for s in songs] == [("A - One", "train"), ("B - Two", "test")]
    assert list(songs[0].stems) == ["drums", "bass", "other", "vocals"]
    assert songs[0].roles["vocals"] == "lead" and songs[0].mix.name == "mixture.wav"
    (tmp_path / "mp4" / "train").mkdir(parents=True)
    (tmp_path / "mp4" / "train" / "A - One.stem.mp4").write_bytes(b"\0")
    with pytest.raises(LayoutError, match="decode them to WAV stems first"):
        load_layout(tmp_path / "mp4", "musdb")


def test_cambridge_folders_nested_and_numbered(tmp_path):
    root = tmp_path / "cmt"
    _wav(root / "Artist_Title_Full" / "01_Kick.wav")
    _wav(root / "Artist_Title_Full" / "02_SnareTop.wav")
    _wav(root / "Artist_Title_Full" / "Guitars" / "07_ElecGtr1.wav")
    _wav(root / "Artist_Title_Full" / "12_LeadVox.wav", 2)
    (root / "notes").mkdir()
    [mt] = load_layout(root, "cambridge")
    assert sorted(mt.stems) == ["ElecGtr1", "Kick", "LeadVox", "SnareTop"]
    assert mt.roles == {"Kick": "kick", "SnareTop": "snare", "ElecGtr1": "guitar", "LeadVox": "lead"}


def test_plain_folders_use_manifest_roles_and_bad_input_is_named(tmp_path):
    _wav(tmp_path / "songs" / "s1" / "kick.wav")
    _wav(tmp_path / "songs" / "s1" / "thing.wav")
    (tmp_path / "songs" / "s1" / "manifest.json").write_text('{"roles": {"thing": "pad"}}')
    _wav(tmp_path / "songs" / "s2" / "bass.wav")
    songs = load_layout(tmp_path / "songs")
    assert [s.name for s in songs] == ["s1", "s2"]
    assert songs[0].roles == {"kick": "kick", "thing": "pad"} and songs[1].roles == {"bass": "bass"}
    [single] = load_layout(tmp_path / "songs" / "s2")
    assert single.name == "s2" and list(single.stems) == ["bass"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(AudioInputError, match=r"empty: no audio files"):
        load_layout(tmp_path / "empty")
    with pytest.raises(LayoutError, match=r"no MedleyDB songs found"):
        load_layout(tmp_path / "empty", "medleydb")
    with pytest.raises(UnknownNameError, match="unknown layout 'medley'; known: folders, medleydb"):
        load_layout(tmp_path, "medley")


def test_guess_role_keywords():
    assert [guess_role(n) for n in ("Kick_In", "OH_L", "BassDI", "LeadVox", "Rhodes", "tambourine", "xyz")] == \
        ["kick", "cymbals", "bass", "lead", "keys", "percussion", "other"]
