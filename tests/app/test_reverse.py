"""``mixbridge reverse`` and ``mixbridge automix --reference`` on tiny stems (1 s, few steps).

The stems and the known session are those of tests/models/test_reverse.py; the mix is the builtin
console's render of that session, written as a float32 WAV.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mixbridge.app.cli import main  # noqa: E402
from mixbridge.audio import resample, write_audio  # noqa: E402
from mixbridge.session import load  # noqa: E402
from tests.models.test_reverse import (  # noqa: E402
    GAIN_TOL_DB,
    GAINS_DB,
    NAMES,
    PAN_TOL,
    PANS,
    SAMPLE_RATE,
    builtin_mix,
    make_stems,
)

#: Residual of the rendered fit that the CLI must reach on the console's own mix, dB.
RENDERED_RESIDUAL_MAX_DB = -30.0


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("song")
    stems = make_stems(0)
    (root / "stems").mkdir()
    for name, audio in zip(NAMES, stems):
        write_audio(root / "stems" / f"{name}.wav", audio, SAMPLE_RATE)
    write_audio(root / "mix.wav", builtin_mix(stems), SAMPLE_RATE)
    write_audio(root / "mix48k.wav", resample(builtin_mix(stems), SAMPLE_RATE, 48000), 48000)
    write_audio(root / "other.wav", builtin_mix(make_stems(1)), SAMPLE_RATE)
    return root


def test_reverse_recovers_the_session(song, tmp_path):
    out = tmp_path / "rev"
    assert main(["reverse", str(song / "stems"), str(song / "mix.wav"), "-o", str(out), "--steps", "3",
                 "--polish-steps", "8", "--init", "neutral", "-q"]) == 0
    report = json.loads((out / "fit_report.json").read_text())
    assert report["poor_fit"] is False and report["rendered_residual_db"] < RENDERED_RESIDUAL_MAX_DB
    assert report["init"] == "neutral" and (out / "mix.wav").is_file()
    session = load(out / "session.json")
    assert session.provenance["mixer"] == "reverse"
    by_name = {t.name: t for t in session.tracks}
    for name, g, p in zip(NAMES, GAINS_DB, PANS):
        t = by_name[name].params
        assert abs(t["fader"]["fader_db"] + t["trim"]["gain_db"] - g) < GAIN_TOL_DB
        assert abs(t["pan"]["pan"] - p) < PAN_TOL
        assert session.source_path(by_name[name]).is_file()


def test_reverse_resamples_the_mix_and_starts_from_auto(song, tmp_path, capsys):
    out = tmp_path / "rev48"
    assert main(["reverse", str(song / "stems"), str(song / "mix48k.wav"), "-o", str(out), "--steps", "2",
                 "--polish-steps", "6"]) == 0
    report = json.loads((out / "fit_report.json").read_text())
    assert any("resampled from 48000 Hz" in n for n in report["notices"])
    assert report["init"] == "dmc-full" and report["poor_fit"] is False
    assert "residual" in capsys.readouterr().out


def test_reverse_of_another_mix_is_a_poor_fit(song, tmp_path, capsys):
    out = tmp_path / "bad"
    assert main(["reverse", str(song / "stems"), str(song / "other.wav"), "-o", str(out), "--steps", "2",
                 "--polish-steps", "2", "--init", "neutral", "-q"]) == 1
    report = json.loads((out / "fit_report.json").read_text())
    assert report["poor_fit"] is True and report["residual_db"] > report["poor_fit_threshold_db"]
    assert "poor fit" in capsys.readouterr().err


def test_automix_reference_records_the_match(song, tmp_path):
    from mixbridge.checksum import sha256_file

    out = tmp_path / "ref"
    assert main(["automix", str(song / "stems"), "-o", str(out), "--mixer", "mono_sum", "--reference",
                 str(song / "mix.wav"), "--refine-steps", "8", "-q"]) == 0
    ref = load(out / "session.json").provenance["reference"]
    assert ref["sha256"] == sha256_file(song / "mix.wav") and ref["refine_steps"] == 8
    assert ref["feature_distance_after"] < ref["feature_distance_before"]
    assert (out / "master.wav").is_file()


def test_automix_reference_zero_steps_keeps_the_mixer(song, tmp_path):
    out0, plain = tmp_path / "r0", tmp_path / "plain"
    assert main(["automix", str(song / "stems"), "-o", str(out0), "--mixer", "mono_sum", "--reference",
                 str(song / "mix48k.wav"), "--refine-steps", "0", "--reference-start", "mixer", "-q"]) == 0
    assert main(["automix", str(song / "stems"), "-o", str(plain), "--mixer", "mono_sum", "-q"]) == 0
    a, b = load(out0 / "session.json"), load(plain / "session.json")
    assert [t.params for t in a.tracks] == [t.params for t in b.tracks]
    ref = a.provenance["reference"]
    assert ref["feature_distance_after"] == ref["feature_distance_before"]
    assert any("resampled" in n for n in a.provenance["style_transfer"]["notices"])


def test_missing_reference_is_a_usage_error(song, tmp_path):
    assert main(["automix", str(song / "stems"), "-o", str(tmp_path / "x"), "--reference",
                 str(tmp_path / "nope.wav"), "-q"]) == 2


def test_torch_free_defaults_mirror_the_models():
    from mixbridge.app import automix, reverse
    from mixbridge.models import reverse as model_reverse
    from mixbridge.models import style_transfer

    assert reverse.DEFAULT_STEPS == model_reverse.DEFAULT_STEPS
    assert reverse.DEFAULT_POLISH_STEPS == model_reverse.DEFAULT_POLISH_STEPS
    assert automix.DEFAULT_REFINE_STEPS == style_transfer.DEFAULT_REFINE_STEPS
    assert np.isfinite(model_reverse.POOR_FIT_DB)
