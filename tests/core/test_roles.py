"""The one role vocabulary: whole-word guesses, checked roles.json, one notice per guess."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mixbridge.app.cli import main
from mixbridge.audio import Stem
from mixbridge.roles import ROLES, RoleError, assign_roles, guess_role, read_roles_json, roles_from_manifest


@pytest.mark.parametrize("name,role", [
    ("Kick_In", "kick"), ("OH_L", "cymbals"), ("BassDI", "bass"), ("LeadVox", "lead"), ("Rhodes", "keys"),
    ("tambourine", "percussion"), ("bass_drum", "kick"), ("synth_strings", "strings"), ("bass guitar", "bass"),
    ("Toms 2", "toms"), ("Vocals", "lead"), ("SD", "snare"), ("HH", "hihat"),
    # substrings are not words: none of these is a bass, toms, a pad or a hi-hat
    ("bassoon", "other"), ("tomatoes", "other"), ("launchpad", "other"), ("what_if", "other"), ("ch00", "other"),
])
def test_guess_matches_whole_words_only(name, role):
    assert guess_role(name) == role


def test_roles_json_with_an_unknown_role_names_the_closest_and_every_known_role(tmp_path):
    (tmp_path / "roles.json").write_text(json.dumps({"k1": "Kick", "b": "bass"}))
    with pytest.raises(RoleError) as e:
        read_roles_json(tmp_path / "roles.json")
    msg = str(e.value)
    assert "'Kick' is not a role" in msg and "did you mean 'kick'?" in msg and ", ".join(ROLES) in msg
    (tmp_path / "roles.json").write_text(json.dumps({"k1": "kick", "b": "bass"}))
    assert roles_from_manifest(tmp_path) == {"k1": "kick", "b": "bass"}


def test_every_guess_is_reported_per_track():
    stems = [Stem(n, None, np.zeros((1, 4), np.float32), r)  # type: ignore[arg-type]
             for n, r in (("kick_in", None), ("ch00", None), ("gtr", "guitar"))]
    notes = assign_roles(stems)
    assert [s.role for s in stems] == ["kick", "other", "guitar"]
    assert len(notes) == 2 and "'kick_in': role 'kick' guessed from the word 'kick'" in notes[0]
    assert "'ch00': no role given" in notes[1] and "roles.json" in notes[1]


def test_automix_refuses_a_roles_json_with_an_unknown_role(multitrack_copy, tmp_path, capsys):
    (multitrack_copy / "roles.json").write_text(json.dumps({"kick": "bass guitar"}))
    assert main(["automix", str(multitrack_copy), "-o", str(tmp_path / "out"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "'bass guitar' is not a role" in err and err.count("\n") == 1
    assert not (tmp_path / "out" / "session.json").exists()
