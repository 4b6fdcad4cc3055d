"""The ``prior`` mixer (issue 12's simplest learned baseline): the table fitted on a tiny composer
dataset equals the hand-computed means of its training split (exactly; val and test ignored), the
mixer's gains relative to the loudness-normalised stems equal the table's (mean removed), the
fallbacks (unknown family -> role -> overall, no manifest -> role) are taken with a notice, and
``mixbridge train prior`` writes the table."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mixbridge.audio import load_stems
from mixbridge.loudness import integrated_lufs
from mixbridge.models.prior_mixer import (
    PRIOR_FORMAT,
    PRIOR_VERSION,
    PriorMixer,
    PriorTableError,
    add_prior_command,
    fit_prior,
    load_prior_table,
    track_key,
)
from mixbridge.plugins.datagen.composer.build import (
    DATASET_FORMAT,
    DATASET_VERSION,
    EXCERPT_FORMAT,
    MANIFEST_FORMAT,
    MANIFEST_VERSION,
)
from tests.contracts import MixerContract

SAMPLE_RATE = 8000
#: The decision (before split_gain) is plain float64 arithmetic on the same numbers: exact to rounding.
DECISION_TOL_DB = 1e-6
#: split_gain rounds fader and trim to 1 mdB each: their sum is within 2 x 0.5 mdB of the decision.
SPLIT_GAIN_ROUNDING_DB = 1e-3 + 1e-9

# One tiny dataset: (excerpt id, lump, split, [(name, kind, gm_program, role, gain_db, pan)]).
# Programs 33 and 38 are both GM family 4 (bass), 0 and 4 family 0 (piano), 81 family 10 (synth lead).
EXCERPTS = [
    ("a_x0", "D_AAA", "train", [("kick", "drums", None, "kick", 2.0, 0.0),
                                ("electric_bass_finger", "pitched", 33, "bass", 1.0, -0.5),
                                ("acoustic_grand_piano", "pitched", 0, "keys", -3.0, 0.25)]),
    ("a_x1", "D_AAA", "train", [("kick", "drums", None, "kick", 4.0, 0.0),
                                ("synth_bass_1", "pitched", 38, "bass", -2.0, 0.5),
                                ("lead_2_sawtooth", "pitched", 81, "lead", -2.0, 1.0)]),
    ("b_x0", "D_BBB", "train", [("snare", "drums", None, "snare", 0.5, 0.1),
                                ("electric_piano_1", "pitched", 4, "keys", -1.5, -0.75),
                                ("acoustic_grand_piano", "pitched", 0, "keys", 1.0, 0.0)]),
    # val and test songs carry wild labels: a table that read them would be far off
    ("c_x0", "D_CCC", "val", [("kick", "drums", None, "kick", 40.0, 0.9),
                              ("acoustic_grand_piano", "pitched", 0, "keys", -40.0, -0.9)]),
    ("d_x0", "D_E1M9", "test", [("kick", "drums", None, "kick", -30.0, -0.9),
                                ("synth_bass_1", "pitched", 38, "bass", 30.0, 0.9)]),
]
# The means, by hand, over the three training excerpts only.
EXPECTED_FAMILY = {
    "drums:kick": (3.0, 0.0, 2), "drums:snare": (0.5, 0.1, 1),
    "gm:bass": (-0.5, 0.0, 2), "gm:piano": (-3.5 / 3, -0.5 / 3, 3), "gm:synth_lead": (-2.0, 1.0, 1),
}
EXPECTED_ROLE = {"kick": (3.0, 0.0, 2), "snare": (0.5, 0.1, 1), "bass": (-0.5, 0.0, 2),
                 "keys": (-3.5 / 3, -0.5 / 3, 3), "lead": (-2.0, 1.0, 1)}
EXPECTED_OVERALL = (0.0, 0.6 / 9, 9)  # pans 0 - 0.5 + 0.25 + 0 + 0.5 + 1 + 0.1 - 0.75 + 0


def _tone(seed: int, seconds: float = 1.0, level: float = 0.1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (level * rng.standard_normal((int(seconds * SAMPLE_RATE), 2))).astype(np.float32)


def write_composer_dataset(root: Path, excerpts=EXCERPTS) -> Path:
    """A complete composer dataset in the layout of ``plugins/datagen/composer`` (labels as given)."""
    entries = []
    for eid, lump, split, tracks in excerpts:
        folder = root / "excerpts" / eid
        (folder / "stems").mkdir(parents=True)
        stems = []
        for i, (name, kind, program, role, gain_db, pan) in enumerate(tracks):
            sf.write(folder / "stems" / f"{name}.wav", _tone(i), SAMPLE_RATE, subtype="FLOAT")
            stems.append({"file": f"{name}.wav", "name": name, "role": role, "kind": kind, "gm_program": program,
                          "midi_channel": 10 if kind == "drums" else i + 1,
                          "target": {"gain_db": gain_db, "pan": pan, "cc7": 100, "cc10": 64, "cc7_ramped": False,
                                     "cc7_curve": [], "raw_lufs": -20.0, "input_lufs": -24.0}})
        (folder / "stems" / "manifest.json").write_text(json.dumps(
            {"format": EXCERPT_FORMAT, "version": DATASET_VERSION, "id": eid, "sample_rate": SAMPLE_RATE,
             "input_lufs": -24.0, "stems": stems}))
        entries.append({"id": eid, "folder": f"excerpts/{eid}", "lump": lump, "song": lump.lower(), "split": split,
                        "kit": "black_pearl", "n_tracks": len(tracks), "files": {}})
    splits = {s: sorted({e[1] for e in excerpts if e[2] == s}) for s in ("train", "val", "test")}
    (root / "config.json").write_text(json.dumps(
        {"format": DATASET_FORMAT, "version": DATASET_VERSION, "settings": {},
         "split": {"rule": "test fixture", **splits}, "labels": {"gain_db": "given", "pan": "given"}}))
    (root / "manifest.json").write_text(json.dumps(
        {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "excerpts": entries}))
    return root


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    root = write_composer_dataset(tmp_path_factory.mktemp("composer") / "ds")
    out = root.parent / "prior.json"
    return fit_prior(root, out), out


def test_table_is_the_hand_computed_mean_of_the_training_split(fitted):
    table, path = fitted
    assert load_prior_table(path) == table  # what was written is what was returned
    assert table["format"] == PRIOR_FORMAT and table["version"] == PRIOR_VERSION and table["split"] == "train"
    assert table["data"]["songs"] == ["D_AAA", "D_BBB"]
    assert table["counts"]["excerpts"] == 3 and table["counts"]["tracks"] == 9
    for part, expected in (("family", EXPECTED_FAMILY), ("role", EXPECTED_ROLE)):
        assert set(table[part]) == set(expected), part
        for key, (gain_db, pan, n) in expected.items():
            e = table[part][key]
            # exact: the same float64 mean the fit takes (np.mean of the same values)
            assert e["n"] == n, (part, key)
            assert e["gain_db"] == pytest.approx(gain_db, abs=1e-12), (part, key)
            assert e["pan"] == pytest.approx(pan, abs=1e-12), (part, key)
    o = table["overall"]
    assert (o["gain_db"], o["pan"], o["n"]) == pytest.approx(EXPECTED_OVERALL, abs=1e-12)


def test_track_keys():
    assert track_key("pitched", 33, "electric_bass_finger", "bass") == "gm:bass"
    assert track_key("pitched", 127, "gunshot", "other") == "gm:sound_effects"
    assert track_key("drums", None, "kick", "kick") == "drums:kick"
    assert track_key(None, None, "my_guitar", "guitar") is None


# ---------------------------------------------------------------------------------------- mixing
#: A table by hand (not fitted): gm:bass +2, gm:piano -4, drums:kick +5; roles; overall.
TABLE = {
    "format": PRIOR_FORMAT, "version": PRIOR_VERSION, "split": "train", "data": {"root": "hand"},
    "family": {"gm:bass": {"gain_db": 2.0, "pan": 0.0, "n": 3}, "gm:piano": {"gain_db": -4.0, "pan": 0.3, "n": 3},
               "drums:kick": {"gain_db": 5.0, "pan": -0.1, "n": 2}},
    "role": {"keys": {"gain_db": -1.5, "pan": 0.2, "n": 4}, "lead": {"gain_db": 1.25, "pan": -0.4, "n": 2}},
    "overall": {"gain_db": 0.0, "pan": 0.05, "n": 9},
}


def write_stem_folder(folder: Path, stems, manifest: bool = True) -> Path:
    """Stems of very different loudness (noise at level ``level``), with a demo-style manifest."""
    folder.mkdir(parents=True)
    entries = []
    for i, (name, kind, program, level) in enumerate(stems):
        sf.write(folder / f"{name}.wav", _tone(10 + i, 2.0, level), SAMPLE_RATE, subtype="FLOAT")
        entries.append({"file": f"{name}.wav", "name": name, "kind": kind, "gm_program": program,
                        "role": "kick" if kind == "drums" else None})
    if manifest:
        (folder / "manifest.json").write_text(json.dumps({"stems": entries}))
    return folder


def session_gains(session) -> np.ndarray:
    return np.array([t.params["fader"]["fader_db"] + t.params["trim"]["gain_db"] for t in session.tracks])


def test_gains_relative_to_the_normalised_stems_are_the_table(tmp_path):
    folder = write_stem_folder(tmp_path / "song", [("kick", "drums", None, 0.5), ("bass", "pitched", 33, 0.02),
                                                   ("piano", "pitched", 1, 0.2)])
    stems = load_stems(folder)
    session = PriorMixer(TABLE)(stems)
    lufs = np.array([integrated_lufs(s.audio, SAMPLE_RATE) for s in stems.stems])
    assert np.ptp(lufs) > 20.0  # the inputs are far from equally loud: the trims matter
    names = [s.name for s in stems.stems]
    assert names == ["bass", "kick", "piano"]  # load_stems sorts the files
    table_db = np.array([2.0, 5.0, -4.0])
    want = table_db - table_db.mean()
    prov = session.provenance["prior"]["tracks"]
    decided = np.array([prov[n]["gain_db"] for n in names])
    # the gain on top of the loudness normalisation, up to the free overall level
    got = decided + lufs - np.mean(decided + lufs)
    np.testing.assert_allclose(got, want, atol=DECISION_TOL_DB)
    got_session = session_gains(session) + lufs - np.mean(session_gains(session) + lufs)
    np.testing.assert_allclose(got_session, want, atol=SPLIT_GAIN_ROUNDING_DB)
    # common_lufs defaults to the mean loudness: the trims alone bring every stem there
    common = session.provenance["prior"]["common_lufs"]
    assert common == pytest.approx(lufs.mean(), abs=1e-9)
    np.testing.assert_allclose(decided - (common - lufs), want, atol=DECISION_TOL_DB)
    assert [t.params["pan"]["pan"] for t in session.tracks] == [0.0, -0.1, 0.3]
    assert not session.provenance["mixer_notes"]


def test_unknown_family_falls_back_to_role_then_overall_with_a_notice(tmp_path):
    # organ (program 16, family organ) is not in the table; its role keys is; a sax (role brass) has neither
    folder = write_stem_folder(tmp_path / "song", [("bass", "pitched", 33, 0.1), ("drawbar_organ", "pitched", 16, 0.1),
                                                   ("alto_sax", "pitched", 65, 0.1)])
    stems = load_stems(folder)
    for s, role in zip(stems.stems, ("brass", "bass", "keys")):  # load order is sorted: alto_sax, bass, organ
        s.role = role
    session = PriorMixer(TABLE, common_lufs=-30.0)(stems)
    prov = session.provenance["prior"]["tracks"]
    assert prov["bass"]["source"] == "family"
    assert prov["drawbar_organ"]["source"] == "role" and prov["drawbar_organ"]["key"] == "gm:organ"
    assert prov["alto_sax"]["source"] == "overall"
    notes = session.provenance["mixer_notes"]
    assert any("drawbar_organ" in n and "gm:organ" in n and "role 'keys'" in n for n in notes), notes
    assert any("alto_sax" in n and "overall" in n for n in notes), notes
    table_db = np.array([0.0, 2.0, -1.5])  # alto_sax overall, bass family, organ role (sorted order)
    np.testing.assert_allclose([prov[n]["relative_gain_db"] for n in ("alto_sax", "bass", "drawbar_organ")],
                               table_db - table_db.mean(), atol=DECISION_TOL_DB)
    assert [t.params["pan"]["pan"] for t in session.tracks] == [0.05, 0.0, 0.2]


def test_a_folder_without_gm_information_mixes_by_role(tmp_path):
    folder = write_stem_folder(tmp_path / "mine", [("lead_vox", None, None, 0.1), ("keys", None, None, 0.1)],
                               manifest=False)
    stems = load_stems(folder)
    stems.stems[0].role, stems.stems[1].role = "keys", "lead"  # sorted: keys, lead_vox
    session = PriorMixer(TABLE)(stems)
    prov = session.provenance["prior"]["tracks"]
    assert prov["keys"]["source"] == prov["lead_vox"]["source"] == "role"
    assert sum("no GM program" in n for n in session.provenance["mixer_notes"]) == 2
    assert [t.params["pan"]["pan"] for t in session.tracks] == [0.2, -0.4]


def test_silent_stem_stays_at_unity_and_out_of_the_mean(tmp_path):
    folder = write_stem_folder(tmp_path / "song", [("bass", "pitched", 33, 0.1), ("kick", "drums", None, 0.0),
                                                   ("piano", "pitched", 0, 0.1)])
    session = PriorMixer(TABLE)(load_stems(folder))
    prov = session.provenance["prior"]["tracks"]
    assert prov["kick"]["source"] == "silent" and prov["kick"]["gain_db"] == 0.0
    assert prov["bass"]["relative_gain_db"] == pytest.approx(3.0, abs=DECISION_TOL_DB)  # (2 - -4) / 2
    assert any("kick: silent" in n for n in session.provenance["mixer_notes"])


def test_missing_or_wrong_table_is_refused_with_the_fix(tmp_path):
    with pytest.raises(PriorTableError, match="mixbridge train prior"):
        PriorMixer(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": PRIOR_FORMAT, "version": 99}))
    with pytest.raises(PriorTableError, match="version"):
        PriorMixer(bad)


def test_train_prior_command_writes_the_table(tmp_path, capsys):
    root = write_composer_dataset(tmp_path / "ds")
    parser = argparse.ArgumentParser()
    add_prior_command(parser.add_subparsers())
    args = parser.parse_args(["prior", "--data", str(root), "-o", str(tmp_path / "t" / "prior.json")])
    assert args.func(args) == 0
    table = load_prior_table(tmp_path / "t" / "prior.json")
    assert table["family"]["gm:piano"]["n"] == 3
    assert "5 family/drum keys" in capsys.readouterr().out


def test_module_imports_no_torch():
    from tests.support import run_python

    run = run_python("import sys, mixbridge.models.prior_mixer; sys.exit(1 if 'torch' in sys.modules else 0)")
    assert run.returncode == 0, run.stderr


@pytest.fixture(scope="module")
def stems(multitrack):
    return load_stems(multitrack)


class TestPriorMixer(MixerContract):
    """The registry's contract on the hand table (the shipped one is tested where it exists)."""

    mixer_name = "prior"
    config = {"table": TABLE}


@pytest.mark.skipif(not Path(__file__).resolve().parents[2].joinpath("models/mixers/prior.json").exists(),
                    reason="no shipped models/mixers/prior.json yet (mixbridge train prior)")
def test_shipped_table_reads_and_was_fitted_on_train():
    table = load_prior_table()
    assert table["split"] == "train" and table["counts"]["tracks"] > 0
    assert not set(table["data"]["songs"]) & {"D_E1M9", "D_E2M3", "D_E3M4"}  # the demo songs are test songs
