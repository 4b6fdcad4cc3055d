"""End-to-end automix and render, and the bad-input cases of the foundation issue."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from mixbridge.app.automix import automix
from mixbridge.app.cli import main
from mixbridge.audio import read_audio
from mixbridge.errors import AudioInputError, UnknownNameError
from mixbridge.loudness import integrated_lufs, true_peak_dbtp
from mixbridge.models.knowledge_mixer import ROLE_HIGHPASS_HZ, ROLE_SEND_DB
from mixbridge.models.mixers import get_mixer, mixer_names
from mixbridge.plugins.mastering import LOUDNESS_TOLERANCE_LU
from mixbridge.schema import CHANNEL_STRIP, MASTER_BUS
from tests.support import needs_vst

#: What the gain solver promises (plugins/mastering.py): every master within 0.1 LU of its target.
LUFS_TOL = LOUDNESS_TOLERANCE_LU
#: The limiter's default true-peak ceiling; the limiter's detector is the meter's (BS.1770-4 Annex 2).
CEILING_DBTP = MASTER_BUS.param("limiter.ceiling_dbtp").default


def _check_master(out_dir, target=-14.0):
    audio, sr = read_audio(out_dir / "master.wav")
    assert integrated_lufs(audio, sr) == pytest.approx(target, abs=LUFS_TOL)
    assert true_peak_dbtp(audio, sr) <= CEILING_DBTP
    return audio, sr


def test_automix_builtin_end_to_end(multitrack, tmp_path):
    res = automix(multitrack, tmp_path / "out", mixer="knowledge", progress=False)
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["master.wav", "mix.wav", "report.html", "session.json"]
    _check_master(out)
    s = json.loads((out / "session.json").read_text())
    assert s["version"] == 1 and s["provenance"]["mixer"] == "knowledge"
    roles = {t["name"]: t.get("role") for t in s["tracks"]}
    assert roles["kick"] == "kick" and roles["bass"] == "bass" and roles["lead_vox"] == "lead"
    pans = {t["name"]: t["params"]["pan"]["pan"] for t in s["tracks"]}
    assert pans["kick"] == pans["snare"] == pans["bass"] == pans["lead_vox"] == 0.0
    # the knowledge rules, in real units: a -12 dB low shelf at the role's corner (none on kick and
    # bass, which keep the schema's flat shelf) and the role's reverb send
    flat_db = CHANNEL_STRIP.param("eq.low_shelf_gain_db").default
    for t in s["tracks"]:
        eq, corner = t["params"]["eq"], ROLE_HIGHPASS_HZ[t["role"]]
        if corner is None:
            assert eq["low_shelf_gain_db"] == flat_db, t["name"]
        else:
            assert (eq["low_shelf_gain_db"], eq["low_shelf_freq_hz"]) == (-12.0, corner), t["name"]
        assert t["params"]["send"]["send_db"] == ROLE_SEND_DB[t["role"]], t["name"]
    html = (out / "report.html").read_text()
    assert html.count("<img") >= 5 and "dBTP" in html
    assert res.master_true_peak_dbtp <= CEILING_DBTP


@needs_vst
def test_automix_vst_end_to_end(multitrack, tmp_path):
    automix(multitrack, tmp_path / "out", backend="vst", progress=False)
    _check_master(tmp_path / "out")


def test_render_reproduces_master_and_honours_edits(multitrack, tmp_path):
    automix(multitrack, tmp_path / "out", progress=False)
    first, _ = read_audio(tmp_path / "out" / "master.wav")
    assert main(["render", str(tmp_path / "out" / "session.json"), "-o", str(tmp_path / "again.wav"), "-q"]) == 0
    again, _ = read_audio(tmp_path / "again.wav")
    np.testing.assert_allclose(again, first, atol=1e-6)
    # edit: a new target loudness
    data = json.loads((tmp_path / "out" / "session.json").read_text())
    data["master"]["params"]["loudness"]["target_lufs"] = -20.0
    (tmp_path / "edited.json").write_text(json.dumps(data))
    # sources are relative to the session's folder: keep it there
    shutil.copy(tmp_path / "edited.json", tmp_path / "out" / "edited.json")
    assert main(["render", str(tmp_path / "out" / "edited.json"), "-o", str(tmp_path / "e.wav"), "-q"]) == 0
    audio, sr = read_audio(tmp_path / "e.wav")
    assert integrated_lufs(audio, sr) == pytest.approx(-20.0, abs=LUFS_TOL)


@pytest.mark.parametrize("name", ["mono_sum", "random", "equal_loudness", "knowledge"])
def test_every_mixer_gives_a_valid_compliant_master(multitrack, tmp_path, name):
    automix(multitrack, tmp_path / name, mixer=name, progress=False, report=False)
    _check_master(tmp_path / name)


def test_random_mixer_is_seeded_and_in_range(multitrack):
    from mixbridge.audio import load_stems

    stems = load_stems(multitrack)
    a = get_mixer("random")(stems, seed=3).to_json()["tracks"]
    b = get_mixer("random")(stems, seed=3).to_json()["tracks"]
    c = get_mixer("random")(stems, seed=4).to_json()["tracks"]
    assert a == b and a != c
    assert all(abs(t["params"]["fader"]["fader_db"]) <= 12 for t in a)


def test_equal_loudness_mixer_equalises_tracks(multitrack):
    from mixbridge.audio import load_stems
    from mixbridge.plugins.console import render_console

    stems = load_stems(multitrack)
    s = get_mixer("equal_loudness")(stems)
    r = render_console(s, "builtin", audio={st.name: st.audio for st in stems.stems}, measure=True)
    levels = [t.lufs for t in r.tracks]  # measured block by block while the console rendered
    assert max(levels) - min(levels) < 0.05


def test_cli_automix_and_unknown_names(multitrack, tmp_path, capsys):
    assert main(["automix", str(multitrack), "-o", str(tmp_path / "o"), "--target-lufs", "-16", "-q"]) == 0
    _check_master(tmp_path / "o", target=-16.0)
    # --mixer and --backend take their choices from the registries: argparse names them (exit 2)
    assert main(["automix", str(multitrack), "-o", str(tmp_path / "x"), "--mixer", "magic", "-q"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'magic'" in err and all(name in err for name in mixer_names())
    assert main(["automix", str(multitrack), "-o", str(tmp_path / "x"), "--backend", "protools", "-q"]) == 2
    assert "invalid choice: 'protools'" in capsys.readouterr().err
    assert main(["automix", str(multitrack), "-o", str(tmp_path / "x"), "--target-lufs", "3", "-q"]) == 2
    assert "--target-lufs.target_lufs = 3 is outside [-30, -6] LUFS" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    assert main(["mixers"]) == 0
    assert "knowledge" in capsys.readouterr().out


def test_library_automix_refuses_unknown_names(multitrack, tmp_path):
    """Below the CLI, the library names the known mixers and backends (UnknownNameError)."""
    with pytest.raises(UnknownNameError, match="unknown mixer 'magic'; known mixers: knowledge"):
        automix(multitrack, tmp_path / "x", mixer="magic", progress=False)
    with pytest.raises(UnknownNameError, match="unknown backend 'protools'"):
        automix(multitrack, tmp_path / "x", backend="protools", progress=False)
    assert not (tmp_path / "x").exists()


# ----------------------------------------------------------------------------- bad input
def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(AudioInputError, match="no audio files"):
        automix(tmp_path / "empty", tmp_path / "out", progress=False)


def test_corrupt_file_is_named(multitrack_copy, tmp_path):
    (multitrack_copy / "broken.wav").write_bytes(b"RIFF\x00\x00garbage")
    with pytest.raises(AudioInputError, match="broken.wav: cannot read audio"):
        automix(multitrack_copy, tmp_path / "out", progress=False)


def test_nan_samples_are_named(multitrack_copy, tmp_path):
    x = np.zeros(4410, dtype=np.float32)
    x[100] = np.nan
    sf.write(multitrack_copy / "nan.wav", x, 44100, subtype="FLOAT")
    with pytest.raises(AudioInputError, match="nan.wav: 1 NaN/inf samples"):
        automix(multitrack_copy, tmp_path / "out", progress=False)


def test_sample_rates_and_lengths_are_conformed_with_notices(multitrack_copy, tmp_path):
    t = np.arange(48000 * 3) / 48000
    sf.write(multitrack_copy / "keys.wav", (0.2 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), 48000)
    res = automix(multitrack_copy, tmp_path / "out", progress=False, report=False)
    text = "\n".join(res.notices)
    assert "keys.wav: resampled from 48000 Hz to 44100 Hz" in text
    assert "zero-padded" in text
    assert "mono and stereo stems mixed" in text
    _check_master(tmp_path / "out")


def test_silent_stem_is_excluded_from_loudness_decisions(multitrack_copy, tmp_path):
    sf.write(multitrack_copy / "silence.wav", np.zeros(44100 * 6, dtype=np.float32), 44100)
    res = automix(multitrack_copy, tmp_path / "out", progress=False, report=False)
    assert any("silence.wav: silent" in n for n in res.notices)
    s = res.session.track("silence")
    assert s.params["fader"]["fader_db"] == 0.0 and s.params["trim"]["gain_db"] == 0.0
    _check_master(tmp_path / "out")


def test_nothing_half_written_on_failure(multitrack, tmp_path, monkeypatch):
    import mixbridge.plugins.report as report

    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(report, "write_report", boom)
    with pytest.raises(RuntimeError):
        automix(multitrack, tmp_path / "out", progress=False)
    # the outputs were staged beside out/ and the staging folder is gone: no out/, no .automix-*
    assert list(tmp_path.iterdir()) == []


def test_render_refuses_bad_session(multitrack, tmp_path, capsys):
    automix(multitrack, tmp_path / "out", progress=False, report=False)
    data = json.loads((tmp_path / "out" / "session.json").read_text())
    data["tracks"][0]["params"]["compressor"]["ratio"] = 0.5
    (tmp_path / "out" / "bad.json").write_text(json.dumps(data))
    assert main(["render", str(tmp_path / "out" / "bad.json"), "-o", str(tmp_path / "b.wav"), "-q"]) == 2
    assert "compressor.ratio = 0.5 is outside [1, 20]" in capsys.readouterr().err
    assert not (tmp_path / "b.wav").exists()


def test_missing_source_is_named(multitrack, tmp_path, capsys):
    automix(multitrack, tmp_path / "out", progress=False, report=False)
    data = json.loads((tmp_path / "out" / "session.json").read_text())
    data["tracks"][0]["source"] = "nowhere.wav"
    (tmp_path / "out" / "m.json").write_text(json.dumps(data))
    assert main(["render", str(tmp_path / "out" / "m.json"), "-o", str(tmp_path / "m.wav"), "-q"]) == 2
    assert "nowhere.wav not found" in capsys.readouterr().err


def test_mixer_registry():
    assert {"knowledge", "mono_sum", "random", "equal_loudness"} <= set(mixer_names())
    with pytest.raises(UnknownNameError):
        get_mixer("nope")


def test_one_stored_master_gain_drives_the_live_chain_to_the_target(multitrack, tmp_path):
    """`mixbridge live --session` takes the session's one master.solved_gain_db and the chain of master.wav."""
    from mixbridge.plugins.master_bus import master_params_from_session, render_master
    from mixbridge.session import load

    automix(multitrack, tmp_path / "out", progress=False, report=False)
    session = load(tmp_path / "out" / "session.json")
    assert session.master.solved_gain_db is not None
    mix, sr = read_audio(tmp_path / "out" / "mix.wav")
    params, _, _ = master_params_from_session(session)
    assert params["gain"]["gain_db"] == session.master.solved_gain_db
    live = render_master(mix, sr, params)
    assert integrated_lufs(live, sr) == pytest.approx(-14.0, abs=LUFS_TOL)
    assert true_peak_dbtp(live, sr) <= CEILING_DBTP
    offline, _ = read_audio(tmp_path / "out" / "master.wav")
    np.testing.assert_array_equal(live, offline)  # one chain: the same samples


def test_cli_automix_push_reports_an_unreachable_daw(multitrack, tmp_path, capsys):
    """--push calls the bridge's push; with no DAW on 127.0.0.1:3819 it fails clearly within a few
    seconds, and the automix outputs stay (the message says how to push them again)."""
    import time

    t0 = time.monotonic()
    rc = main(["automix", str(multitrack), "-o", str(tmp_path / "o"), "-q", "--push", "ardour"])
    assert rc == 2
    assert (tmp_path / "o" / "session.json").exists() and (tmp_path / "o" / "master.wav").exists()
    err = capsys.readouterr().err
    assert "mixbridge automix: error:" in err and "3819" in err
    assert f"mixbridge push {tmp_path / 'o' / 'session.json'} --daw ardour" in err
    assert time.monotonic() - t0 < 60


def test_a_checkpoint_needs_a_mixer_that_takes_one(multitrack, tmp_path, capsys):
    assert main(["automix", str(multitrack), "-o", str(tmp_path / "x"), "--mixer", "knowledge",
                 "--checkpoint", str(tmp_path / "c.json"), "-q"]) == 2
    assert "mixer 'knowledge' takes no checkpoint; mixers that do: learned, dmc" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_automix_with_a_trained_mixer_checkpoint(multitrack, tmp_path):
    """``automix --mixer learned --checkpoint PATH`` mixes with the checkpoint's network: the same
    strips as the network itself gives (models/learned_mixer.py), through the whole main job."""
    torch = pytest.importorskip("torch")
    from mixbridge.audio import load_stems
    from mixbridge.models import registry
    from mixbridge.models.checkpoint import save_checkpoint
    from mixbridge.roles import roles_from_manifest
    from mixbridge.session import load

    torch.manual_seed(5)
    net = registry.create("mixer-tiny")
    path = save_checkpoint(net, tmp_path / "mixer", model_name="mixer-tiny")
    assert main(["automix", str(multitrack), "-o", str(tmp_path / "o"), "--mixer", "learned",
                 "--checkpoint", str(path), "-q"]) == 0
    session = load(tmp_path / "o" / "session.json")
    direct = get_mixer("learned", model=net)(load_stems(multitrack, roles=roles_from_manifest(multitrack)))
    assert session.provenance["mixer"] == "learned"
    assert [t.params for t in session.tracks] == [t.params for t in direct.tracks]
    _check_master(tmp_path / "o")
