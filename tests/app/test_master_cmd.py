"""``mixbridge master IN.wav -o OUT_DIR`` (issue 13 item 1 and "Bad input"), through ``main([...])``.

Real audio: the synthetic multitrack of ``tests/support.py`` summed to a stereo mix at -24 LUFS. Checked
with the project's meters: the target within ``LOUDNESS_TOLERANCE_LU``, the true peak under the ceiling
(:func:`mixbridge.loudness.true_peak_dbtp`); the written session loads and renders back to the same master;
every bad input gives its notice or exit status 2.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mixbridge.app.cli import main
from mixbridge.app.master import master_file
from mixbridge.audio import load_stems, read_audio
from mixbridge.loudness import integrated_lufs, true_peak_dbtp
from mixbridge.plugins.mastering import LOUDNESS_TOLERANCE_LU
from mixbridge.session import load

#: A session re-rendered with its stored gain gives the master back to float32 rounding of the same chain.
RENDER_BACK_TOL = 1e-5


def _mix(folder: Path, lufs: float) -> tuple[np.ndarray, int]:
    st = load_stems(folder)
    n = max(s.audio.shape[1] for s in st.stems)
    mix = np.zeros((2, n), np.float64)
    for s in st.stems:
        a = s.audio if s.audio.shape[0] == 2 else np.concatenate([s.audio, s.audio])
        mix[:, :a.shape[1]] += a
    sr = st.sample_rate
    return (mix * 10 ** ((lufs - integrated_lufs(mix, sr)) / 20)).astype(np.float32), sr


@pytest.fixture(scope="module")
def mix_wav(multitrack, tmp_path_factory) -> Path:
    x, sr = _mix(multitrack, -24.0)
    p = tmp_path_factory.mktemp("in") / "mix.wav"
    sf.write(p, x.T, sr, subtype="FLOAT")
    return p


@pytest.fixture(scope="module")
def mastered(mix_wav, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "out"
    assert main(["master", str(mix_wav), "-o", str(out), "-q"]) == 0
    return out


def test_master_writes_the_outputs_at_the_target_under_the_ceiling(mastered):
    assert sorted(p.name for p in mastered.iterdir()) == ["master.wav", "mix.wav", "report.html", "session.json"]
    audio, sr = read_audio(mastered / "master.wav")
    assert audio.shape[0] == 2
    assert abs(integrated_lufs(audio, sr) + 14.0) <= LOUDNESS_TOLERANCE_LU
    assert true_peak_dbtp(audio, sr) <= -1.0
    html = (mastered / "report.html").read_text()
    for part in ("<audio id='a'", "src='mix.wav'", "src='master.wav'", "Gain reduction", "Short-term loudness",
                 "Spectra", "data:image/png;base64,"):
        assert part in html, part


def test_the_session_loads_and_renders_back_to_the_same_master(mastered, tmp_path):
    from mixbridge.app.automix import render

    s = load(mastered / "session.json")
    assert [t.name for t in s.tracks] == ["mix"] and s.tracks[0].source == "mix.wav"
    assert s.master.solved_gain_db is not None
    assert s.provenance["masterer"] == "learned"  # the default model
    assert s.master.params["loudness"]["target_lufs"] == -14.0
    res = render(mastered / "session.json", tmp_path / "again.wav", progress=False)
    assert not res.solved  # the stored gain still meets the target: no re-solve
    again, _ = read_audio(tmp_path / "again.wav")
    master, _ = read_audio(mastered / "master.wav")
    np.testing.assert_allclose(again, master, atol=RENDER_BACK_TOL)


def test_push_carries_the_solved_gain_to_the_master_fader(mastered):
    from mixbridge.bridge.push import plan_push

    s = load(mastered / "session.json")
    plan = plan_push(s, "reaper", match="order")
    assert [str(m) for m in plan.master.messages] == [f"/track/0/volume/db ,f {s.master.solved_gain_db:g}"]
    assert any(u.startswith("master.eq.high_shelf_gain_db = ") for u in plan.unmapped)


def test_summary_and_library_call(mix_wav, tmp_path, capsys):
    assert main(["master", str(mix_wav), "-o", str(tmp_path / "o"), "--no-report", "--intensity", "0",
                 "--model", "rules"]) == 0
    out = capsys.readouterr().out
    assert "model rules" in out and "intensity 0" in out
    s = load(tmp_path / "o" / "session.json")
    assert s.master.params["compressor"]["ratio"] == 1.0
    assert all(s.master.params["eq"][k] == 0.0 for k in s.master.params["eq"] if k.endswith("_gain_db"))
    assert not (tmp_path / "o" / "report.html").exists()


def test_mono_input_is_mastered_as_stereo_with_a_notice(multitrack, tmp_path):
    x, sr = _mix(multitrack, -20.0)
    sf.write(tmp_path / "mono.wav", x[0], sr, subtype="FLOAT")
    res = master_file(tmp_path / "mono.wav", tmp_path / "o", report=False)
    assert any("mono" in n for n in res.notices)
    audio, _ = read_audio(tmp_path / "o" / "master.wav")
    assert audio.shape[0] == 2 and np.array_equal(audio[0], audio[1])


def test_a_reference_at_another_rate_is_resampled_with_a_notice(multitrack, mix_wav, tmp_path):
    from mixbridge.audio import resample

    x, sr = _mix(multitrack, -14.0)
    sf.write(tmp_path / "ref.wav", resample(x, sr, 22050).T, 22050, subtype="FLOAT")
    res = master_file(mix_wav, tmp_path / "o", references=[tmp_path / "ref.wav"], report=False)
    assert any("22050 Hz, resampled to the mix's 44100 Hz" in n for n in res.notices)
    assert "1 reference" in res.info["aim"]
    assert abs(res.lufs + 14.0) <= LOUDNESS_TOLERANCE_LU and res.true_peak_dbtp <= -1.0


def test_a_louder_mix_is_turned_down(multitrack, tmp_path):
    x, sr = _mix(multitrack, -9.0)
    sf.write(tmp_path / "loud.wav", x.T, sr, subtype="FLOAT")
    res = master_file(tmp_path / "loud.wav", tmp_path / "o", report=False)  # the default (learned) model
    assert res.gain_db < -3.0 and any("turned down" in n for n in res.notices), res.notices
    assert abs(res.lufs + 14.0) <= LOUDNESS_TOLERANCE_LU


@pytest.mark.parametrize("model", ["rules", "learned"])
def test_an_impossible_target_says_what_was_reached(mix_wav, tmp_path, model):
    """Every model's plan goes through the one limiter cap (plugins.master_rules.cap_limiter)."""
    res = master_file(mix_wav, tmp_path / "o", target_lufs=-6.0, ceiling_dbtp=-6.0, report=False, model=model)
    assert any("the cap is 6 dB" in n and "aims at" in n for n in res.notices), res.notices
    assert res.lufs < -6.0 - LOUDNESS_TOLERANCE_LU and res.true_peak_dbtp <= -6.0
    assert res.limiter_gr_db <= 6.0 + 0.5


@pytest.mark.parametrize("level", [0.0, 3e-5])
def test_silence_exits_2_with_a_clear_error(tmp_path, capsys, level):
    sf.write(tmp_path / "quiet.wav", np.full((44100 * 2, 2), level, np.float32), 44100, subtype="FLOAT")
    assert main(["master", str(tmp_path / "quiet.wav"), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "silent or near-silent" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv,needle", [
    (["--intensity", "1.5"], "intensity = 1.5"),
    (["--target-lufs", "-3"], "--target-lufs"),
    (["--ceiling-dbtp", "1"], "--ceiling-dbtp"),
    (["--model", "learned", "--eq-strength", "0.5"], "only the rules model"),
    (["--model", "rules", "--eq-strength", "2"], "eq_strength = 2"),
])
def test_bad_options_exit_2(mix_wav, tmp_path, capsys, argv, needle):
    assert main(["master", str(mix_wav), "-o", str(tmp_path / "o"), *argv]) == 2
    assert needle in capsys.readouterr().err


def test_missing_input_unknown_model_and_input_inside_out_dir_exit_2(mix_wav, tmp_path, capsys):
    assert main(["master", str(tmp_path / "nope.wav"), "-o", str(tmp_path / "o")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["master", str(mix_wav), "-o", str(tmp_path / "o"), "--model", "nope"]) == 2
    capsys.readouterr()
    assert main(["master", str(mix_wav), "-o", str(mix_wav.parent)]) == 2
    assert "inside the output folder" in capsys.readouterr().err
