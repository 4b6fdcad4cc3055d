"""``mixbridge evaluate``: the single form on files written here, and the batch on a tiny composer dataset
this test builds in the reader's format (the console renders its target, so the mono sum's level and pan
errors have closed forms), its resumable rows, skipped mixers and the markdown table."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from mixbridge.app.cli import main
from mixbridge.app.evaluate import RESULTS_FILE, SUMMARY_FILE, evaluate_dataset
from mixbridge.audio import write_audio
from mixbridge.checksum import sha256_file
from mixbridge.cli_options import EXIT_OK, EXIT_USAGE
from mixbridge.plugins.console import pan_gains, render_console

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SAMPLE_RATE = 22050
SECONDS = 1.0
NAMES = ("bass", "lead", "pad")
#: (excerpt id, lump, song folder, split, target gain_db per track, target pan per track)
EXCERPTS = (("a_x0", "D_AAAA", "aaaa", "test", (3.0, -1.0, -2.0), (0.0, -0.5, 0.6)),
            ("a_x1", "D_AAAA", "aaaa", "test", (-4.0, 2.5, 1.5), (0.2, 0.0, -1.0)),
            ("b_x0", "D_BBBB", "bbbb", "train", (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)))
#: The target mix is float32 (the console's dtype): ~1e-5 dB of level, ~1e-6 of pan.
LEVEL_TOL_DB = 1e-3
PAN_TOL = 1e-3


def _stems(seed: int) -> np.ndarray:
    """Three independent stereo noise stems at the same RMS (so at about the same LUFS)."""
    return (0.05 * np.random.default_rng(seed).standard_normal((len(NAMES), 2, int(SECONDS * SAMPLE_RATE)))
            ).astype(np.float32)


def build_tiny_dataset(root: Path) -> Path:
    """A composer dataset with :data:`EXCERPTS`, written as ``mixbridge datagen composer`` lays it out."""
    from mixbridge.plugins.datagen.composer.build import (
        DATASET_FORMAT,
        DATASET_VERSION,
        EXCERPT_FORMAT,
        MANIFEST_FORMAT,
        MANIFEST_VERSION,
        composer_session,
    )
    from mixbridge.session import save

    entries = []
    for k, (eid, lump, song, split, gains, pans) in enumerate(EXCERPTS):
        folder = root / "excerpts" / eid
        (folder / "stems").mkdir(parents=True)
        (folder / "target").mkdir()
        stems = _stems(k)
        for name, audio in zip(NAMES, stems):
            write_audio(folder / "stems" / f"{name}.wav", audio, SAMPLE_RATE)
        session = composer_session(list(NAMES), [f"../stems/{n}.wav" for n in NAMES], [None] * 3, gains, pans,
                                   SAMPLE_RATE, {"mixer": "composer"})
        session.base_dir = folder / "target"
        save(session, folder / "target" / "session.json")
        mix = render_console(session, "builtin", audio=dict(zip(NAMES, stems))).mix
        write_audio(folder / "target" / "mix.wav", mix, SAMPLE_RATE)
        manifest = {"format": EXCERPT_FORMAT, "version": DATASET_VERSION, "id": eid, "sample_rate": SAMPLE_RATE,
                    "input_lufs": -24.0, "stems": [
                        {"file": f"{n}.wav", "name": n, "role": None, "kind": "pitched", "gm_program": 1,
                         "target": {"gain_db": g, "pan": p}} for n, g, p in zip(NAMES, gains, pans)]}
        (folder / "stems" / "manifest.json").write_text(json.dumps(manifest))
        files = {p.relative_to(folder).as_posix(): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}
        entries.append({"id": eid, "folder": f"excerpts/{eid}", "lump": lump, "song": song, "split": split,
                        "kit": "black_pearl", "n_tracks": 3, "files": files})
    (root / "config.json").write_text(json.dumps({"format": DATASET_FORMAT, "version": DATASET_VERSION,
                                                  "settings": {"sample_rate": SAMPLE_RATE}, "split": {}}))
    (root / "manifest.json").write_text(json.dumps({"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION,
                                                    "excerpts": entries}))
    return root


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    return build_tiny_dataset(tmp_path_factory.mktemp("composer") / "ds")


def test_the_batch_scores_the_mono_sum_with_its_closed_forms(tiny_dataset, tmp_path):
    out = tmp_path / "eval"
    summary = evaluate_dataset(tiny_dataset, "mono_sum,random", out_dir=out, progress=False)
    assert summary["excerpts"] == ["a_x0", "a_x1"]  # the test split only
    rows = [json.loads(line) for line in (out / RESULTS_FILE).read_text().splitlines()]
    assert [(r["run"], r["excerpt"]) for r in rows] == [(m, e) for e in ("a_x0", "a_x1")
                                                         for m in ("mono_sum", "random#0", "random#1", "random#2")]
    for eid, _, _, _, gains, pans in EXCERPTS[:2]:
        row = next(r for r in rows if r["run"] == "mono_sum" and r["excerpt"] == eid)
        # the mono sum: every track at 0 dB, centred; the target at `gains`, `pans`
        assert row["level_rmse_db"] == pytest.approx(float(np.std(gains)), abs=LEVEL_TOL_DB)
        assert row["pan_mae"] == pytest.approx(float(np.mean(np.abs(pans))), abs=PAN_TOL)
        np.testing.assert_allclose(np.array(row["reference_pan"]), pans, atol=PAN_TOL)
        level = np.array(row["reference_level_db"]) - np.array(gains)  # the labels, up to the normalisation
        np.testing.assert_allclose(level - level.mean(), 0.0, atol=LEVEL_TOL_DB)
    mono = summary["runs"]["mono_sum"]
    assert mono["n_excerpts"] == 2
    assert mono["level_rmse_db"] == pytest.approx(np.mean([np.std(e[4]) for e in EXCERPTS[:2]]), abs=LEVEL_TOL_DB)
    assert set(summary["per_song"]["mono_sum"]) == {"aaaa"}
    table = summary["table"].splitlines()
    assert table[0] == "| mixer | sum/diff MR-STFT | level RMSE dB | time level RMSE dB | pan MAE | feature distance |"
    assert table[2].startswith("| mono_sum, builtin | ") and table[3].startswith("| random, builtin (3 seeds) | ")
    assert "-" in table[3].split("|")[2]  # random shows the range of its seeds' means
    assert json.loads((out / SUMMARY_FILE).read_text())["table"] == summary["table"]


def test_the_batch_resumes_from_its_rows_and_repairs_a_torn_line(tiny_dataset, tmp_path, monkeypatch):
    out = tmp_path / "eval"
    evaluate_dataset(tiny_dataset, ["mono_sum"], out_dir=out, progress=False)
    path = out / RESULTS_FILE
    first = path.read_text().splitlines()
    path.write_text(first[0] + "\n" + first[1][: len(first[1]) // 2])  # interrupted in the middle of row 2
    import mixbridge.app.evaluate as ev

    calls = []
    real = ev.score_run
    monkeypatch.setattr(ev, "score_run", lambda *a, **k: calls.append(a[2].id) or real(*a, **k))
    summary = evaluate_dataset(tiny_dataset, ["mono_sum"], out_dir=out, progress=False)
    assert calls == ["a_x1"]  # only the torn row is computed again
    again = path.read_text().splitlines()
    assert len(again) == 2 and json.loads(again[0]) == json.loads(first[0])
    assert json.loads(again[1])["level_rmse_db"] == pytest.approx(json.loads(first[1])["level_rmse_db"], abs=1e-9)
    assert summary["runs"]["mono_sum"]["n_excerpts"] == 2
    other = build_tiny_dataset(tmp_path / "other")
    with pytest.raises(ev.EvaluateUsageError, match="holds rows of dataset"):
        evaluate_dataset(other, ["mono_sum"], out_dir=out, progress=False)


def test_a_mixer_that_cannot_run_is_skipped_with_its_reason(tiny_dataset):
    lines = []
    summary = evaluate_dataset(tiny_dataset, "learned,mono_sum", limit=1, progress=False, log=lines.append)
    assert "learned" in summary["skipped"] and "checkpoint" in summary["skipped"]["learned"]
    assert any(line.startswith("mixbridge evaluate: skipping mixer learned") for line in lines)
    assert list(summary["runs"]) == ["mono_sum"] and summary["excerpts"] == ["a_x0"]


def test_the_batch_cli_prints_the_table(tiny_dataset, tmp_path, capsys):
    assert main(["evaluate", "--dataset", str(tiny_dataset), "--mixers", "equal_loudness", "--limit", "1",
                 "-o", str(tmp_path / "o"), "-q"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "| equal_loudness, builtin |" in out and "1 excerpt(s)" in out
    assert main(["evaluate", "--dataset", str(tiny_dataset), "--mixers", "nope", "-q"]) == EXIT_USAGE
    assert "unknown mixer(s) nope" in capsys.readouterr().err


def _write_mix_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    stems = _stems(7)
    stems_dir = tmp_path / "stems"
    stems_dir.mkdir()
    for name, audio in zip(NAMES, stems):
        write_audio(stems_dir / f"{name}.wav", audio, SAMPLE_RATE)
    ref = np.zeros((2, stems.shape[-1]))
    for s, g, p in zip(stems, (2.0, -3.0, 0.0), (0.5, -0.25, 0.0)):
        gl, gr = pan_gains(p, 2)
        ref += 10 ** (g / 20) * np.stack([gl * s[0], gr * s[1]])
    write_audio(tmp_path / "ref.wav", ref.astype(np.float32), SAMPLE_RATE)
    write_audio(tmp_path / "mix.wav", stems.sum(axis=0), SAMPLE_RATE)
    return tmp_path / "mix.wav", tmp_path / "ref.wav", stems_dir


def test_the_single_cli_prints_a_table_and_writes_json(tmp_path, capsys):
    mix, ref, stems_dir = _write_mix_files(tmp_path)
    out_json = tmp_path / "scores.json"
    assert main(["evaluate", str(mix), "--reference", str(ref), "--stems", str(stems_dir),
                 "--json", str(out_json)]) == EXIT_OK
    text = capsys.readouterr().out
    assert "sum/difference MR-STFT" in text and "octave bands" in text and "level RMSE" in text
    res = json.loads(out_json.read_text())
    assert res["tracks"]["names"] == list(NAMES)
    assert res["scores"]["level_rmse_db"] == pytest.approx(float(np.std([2.0, -3.0, 0.0])), abs=LEVEL_TOL_DB)
    assert res["scores"]["pan_mae"] == pytest.approx(0.25, abs=PAN_TOL)
    assert res["compliance"]["mix"]["lufs"] < -14 and res["compliance"]["mix"]["lufs_ok"] is False


def test_the_single_cli_refuses_half_an_input(tmp_path, capsys):
    mix, ref, _ = _write_mix_files(tmp_path)
    assert main(["evaluate", str(mix)]) == EXIT_USAGE
    assert "--reference" in capsys.readouterr().err
    assert main(["evaluate", str(mix), "--reference", str(ref), "--dataset", str(tmp_path)]) == EXIT_USAGE
    assert "not both" in capsys.readouterr().err


@pytest.mark.slow
def test_the_batch_on_a_composer_excerpt_recovers_its_labels(composer_e1m9_x0_root, tmp_path):
    """The target mix is the console's render of the labels: least squares on it gives back every label."""
    from mixbridge.plugins.datagen.composer import read_composer_dataset

    ds = read_composer_dataset(composer_e1m9_x0_root)
    ex = ds.split("test")[0]
    summary = evaluate_dataset(ds, "mono_sum", limit=1, out_dir=tmp_path, progress=False)
    run = summary["runs"]["mono_sum"]
    assert run["n_excerpts"] == 1 and run["level_rmse_db"] > 0.5  # the unity sum is not the composer's balance
    row = json.loads((tmp_path / RESULTS_FILE).read_text().splitlines()[0])
    order = [row["track_names"].index(n) for n in ex.track_names]
    level = np.array(row["reference_level_db"])[order] - ex.target_gain_db
    np.testing.assert_allclose(level - level.mean(), 0.0, atol=LEVEL_TOL_DB)
    np.testing.assert_allclose(np.array(row["reference_pan"])[order], ex.target_pan, atol=PAN_TOL)
