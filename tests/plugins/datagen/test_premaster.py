"""Tests of pre-master pairs: the degradation inverts exactly through the one master bus.

Closed forms first (the RBJ EQ with negated gains is the reciprocal transfer function; compressing
the expander's output gives its input back), then the bounds every pre-master meets, the round trip
through :func:`mixbridge.plugins.mastering.master`, determinism, split isolation, a small
end-to-end build with resume and verify, and bad input. Synthetic masters keep every test short;
one test runs on the Debian masters when they are installed.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import freqz

from mixbridge.app.cli import main
from mixbridge.errors import AudioInputError
from mixbridge.loudness import integrated_lufs, true_peak_dbtp
from mixbridge.plugins.datagen import premaster as pm
from mixbridge.plugins.datagen.errors import DatagenConfigError
from mixbridge.plugins.datagen.format import Dataset
from mixbridge.plugins.datagen.masters import split_of_album
from mixbridge.plugins.datagen.runner import generate
from mixbridge.plugins.datagen.verify import verify
from mixbridge.plugins.dynamics import compress
from mixbridge.plugins.rbj import eq_sections

SAMPLE_RATE = 44100
#: |H_degrade(f) H_label(f) - 1| on a dense grid: RBJ peaking and slope-form shelves with negated
#: gains are exact reciprocals; what is left is float64 round-off of the coefficients (measured 1e-13).
EQ_INVERSE_TOL = 1e-9
#: Largest sample error of compress(expand(x)) - x (float64 path; measured 4e-13 at 30 dB expansion).
EXPAND_INVERSE_TOL = 1e-9
#: Round trip of a synthetic master (true peak under the label ceiling, so the limiter does not act):
#: largest sample error of master(pre, label) vs the master, float32 pre-master (measured 2e-6 to 5e-6),
#: and its loudness error in LU (the solver stops within 0.02 LU; measured < 1e-4).
ROUND_TRIP_MAX_ABS = 1e-4
ROUND_TRIP_LUFS_LU = 0.02
#: Float slack on the loudness and peak bounds of a pre-master (dB).
BOUND_TOL_DB = 1e-6
DEBIAN_MASTERS = Path("/usr/share/games/wesnoth/1.16/data/core/music")


def synthetic_master(seconds: float = 3.0, seed: int = 0, lufs: float = -14.0) -> np.ndarray:
    """A music-like stereo master: chords with an envelope plus noise hits, at ``lufs``, true peak < -1 dBTP."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    x = np.zeros((2, n))
    for f in rng.uniform(80, 2000, 6):
        x += np.sin(2 * np.pi * f * t + rng.uniform(0, 6, (2, 1))) * rng.uniform(0.05, 0.2)
    env = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t) ** 2
    hits = np.zeros(n)
    for start in rng.integers(0, n - 4000, 8):
        hits[start:start + 4000] += np.exp(-np.arange(4000) / 600.0)
    x = x * env + rng.standard_normal((2, n)) * hits * 0.5
    x *= 10 ** ((lufs - integrated_lufs(x, SAMPLE_RATE)) / 20)
    tp = true_peak_dbtp(x)
    if tp > -1.5:
        x *= 10 ** ((-1.5 - tp) / 20)
    return x.astype(np.float32)


def _complex_response(params: dict, freqs: np.ndarray) -> np.ndarray:
    h = np.ones(freqs.shape, complex)
    for b, a in eq_sections(params, SAMPLE_RATE):
        h *= freqz(b, a, worN=freqs, fs=SAMPLE_RATE)[1]
    return h


def test_label_eq_is_the_exact_reciprocal_of_the_degradation_eq():
    """H(-g) = 1/H(g) for RBJ peaking and slope-form shelves: the product is 1 in magnitude and phase."""
    freqs = np.geomspace(10.0, 22000.0, 2000)
    rng = np.random.default_rng(1)
    for _ in range(25):
        eq = pm.draw_eq(rng, SAMPLE_RATE)
        product = _complex_response(eq, freqs) * _complex_response(pm.negate_eq(eq), freqs)
        assert np.max(np.abs(product - 1.0)) < EQ_INVERSE_TOL
        # every band within +-6 dB and the whole response too (issue 13 item 3)
        assert all(abs(eq[g]) <= pm.EQ_MAX_DB for g in eq if g.endswith("_gain_db"))
        assert np.max(np.abs(pm.eq_response_db(eq, SAMPLE_RATE))) <= pm.EQ_MAX_DB + 1e-9
    # and in the time domain, from rest, as the master bus runs it
    x = synthetic_master(1.0)
    eq = pm.draw_eq(np.random.default_rng(2), SAMPLE_RATE)
    assert np.max(np.abs(pm.rbj_eq(pm.rbj_eq(x, SAMPLE_RATE, eq), SAMPLE_RATE, pm.negate_eq(eq)) - x)) < 1e-9


@pytest.mark.parametrize("knee_db", [0.0, 6.0])
@pytest.mark.parametrize("attack_ms,release_ms", [(0.1, 10.0), (5.0, 100.0), (30.0, 500.0)])
def test_compressor_undoes_the_expander_exactly(knee_db, attack_ms, release_ms):
    """The schema compressor (COMPRESSOR_SEMANTICS) of the expander's output is its input, ballistics included."""
    x = synthetic_master(1.0).astype(np.float64)
    p = {"threshold_db": -20.0, "ratio": 4.0, "attack_ms": attack_ms, "release_ms": release_ms, "knee_db": knee_db}
    u = pm.expand(x, SAMPLE_RATE, **p)
    assert np.max(np.abs(u)) > 1.41 * np.max(np.abs(x))  # it really expanded (peaks up by more than 3 dB)
    from mixbridge.plugins.dynamics import gain_reduction_db

    back = u * 10 ** (-gain_reduction_db(u, SAMPLE_RATE, **p) / 20)
    assert np.max(np.abs(back - x)) < EXPAND_INVERSE_TOL
    # ratio 1 is the identity both ways
    assert np.array_equal(pm.expand(x, SAMPLE_RATE, **dict(p, ratio=1.0)), x)
    # the float32 compressor too, to float32 round-off
    assert np.max(np.abs(compress(u, SAMPLE_RATE, makeup_db=0.0, **p) - x)) < 1e-6


def test_pre_masters_meet_the_loudness_and_peak_bounds():
    for seed in range(8):
        master = synthetic_master(3.0, seed=seed, lufs=float(np.random.default_rng(seed).uniform(-20, -9)))
        deg, pre = pm.premaster_pair(np.random.default_rng(seed), master, SAMPLE_RATE)
        lufs = integrated_lufs(pre, SAMPLE_RATE)
        assert pm.PRE_LUFS_RANGE[0] - BOUND_TOL_DB <= lufs <= pm.PRE_LUFS_RANGE[1] + BOUND_TOL_DB
        assert true_peak_dbtp(pre) <= pm.PRE_PEAK_MAX_DB + BOUND_TOL_DB
        assert 20 * np.log10(np.max(np.abs(pre))) <= pm.PRE_PEAK_MAX_DB + BOUND_TOL_DB
        assert deg["pre"]["lufs"] == pytest.approx(lufs, abs=1e-3)  # what is stored is what was rendered
        json.dumps(deg)  # JSON-able
        assert pm.degrade(master, SAMPLE_RATE, deg).tobytes() == pre.tobytes()  # degrade() renders the same


def test_the_label_masters_the_pre_master_back_to_the_original():
    for seed in range(2):
        master = synthetic_master(2.0, seed=seed)
        deg, pre = pm.premaster_pair(np.random.default_rng(10 + seed), master, SAMPLE_RATE)
        plan = pm.inverse_plan(deg)
        assert plan["compressor"]["threshold_db"] == pytest.approx(deg["expander"]["threshold_db"] + deg["level_db"])
        assert plan["eq"] == pm.negate_eq(deg["eq"])
        rt = pm.round_trip_error(pre, master, plan, SAMPLE_RATE)
        assert rt.max_abs_error < ROUND_TRIP_MAX_ABS
        assert abs(rt.lufs_error_lu) < ROUND_TRIP_LUFS_LU
        assert rt.gain_db == pytest.approx(-deg["level_db"], abs=0.05)
        # the vector form round-trips, and its names are the master bus's (without the reverb)
        vec = pm.label_vector(plan)
        assert pm.plan_from_vector(vec) == plan
        assert pm.plan_from_vector(pm.label_vector(plan, normalised=True), normalised=True)["eq"] == pytest.approx(
            plan["eq"])
        assert len(pm.LABEL_NAMES) == vec.shape[0] == 22 and not any(n.startswith("reverb.") for n in pm.LABEL_NAMES)
    # a caller's own target and ceiling go into the plan (validated against the schema)
    plan = pm.inverse_plan(deg, target_lufs=-14.0, ceiling_dbtp=-1.0)
    assert plan["loudness"]["target_lufs"] == -14.0 and plan["limiter"]["ceiling_dbtp"] == -1.0
    from mixbridge.errors import ParamRangeError

    with pytest.raises(ParamRangeError, match="ceiling_dbtp"):
        pm.inverse_plan(deg, ceiling_dbtp=3.0)


def test_a_master_over_full_scale_is_turned_down_and_still_inverts_exactly():
    """Lossy decodes peak over 0 dBTP; the label ceiling cannot: the target is turned down first."""
    clip = synthetic_master(2.0, seed=4)
    clip *= np.float32(10 ** ((1.0 - true_peak_dbtp(clip)) / 20))  # +1 dBTP
    deg, pre = pm.premaster_pair(np.random.default_rng(4), clip, SAMPLE_RATE)
    target = pm.target_master(clip, deg)
    assert deg["master_gain_db"] == pytest.approx(-1.1, abs=1e-3)
    assert true_peak_dbtp(target) <= pm.MASTER_TRUE_PEAK_MAX_DBTP + BOUND_TOL_DB
    plan = pm.inverse_plan(deg)
    assert plan["limiter"]["ceiling_dbtp"] <= 0.0
    assert pm.round_trip_error(pre, target, plan, SAMPLE_RATE).max_abs_error < ROUND_TRIP_MAX_ABS


def test_hard_set_adds_reverb_or_echo_and_keeps_the_invertible_label():
    master = synthetic_master(3.0)
    deg, pre = pm.premaster_pair(np.random.default_rng(3), master, SAMPLE_RATE, hard=True)
    assert deg["hard"] and (deg["reverb"] or deg["echo"])
    easy = dict(deg, reverb=None, echo=None)
    assert not np.allclose(pm.degrade(master, SAMPLE_RATE, easy), pre)
    assert true_peak_dbtp(pre) <= pm.PRE_PEAK_MAX_DB + BOUND_TOL_DB
    assert set(pm.inverse_plan(deg)) == set(pm.LABEL_PROCESSORS)


def _album_names() -> dict[str, str]:
    """One album folder name that hashes into each split."""
    out: dict[str, str] = {}
    i = 0
    while len(out) < 3:
        name = f"album{i}"
        out.setdefault(split_of_album(name), name)
        i += 1
    return out


@pytest.fixture(scope="module")
def masters_dir(tmp_path_factory) -> Path:
    """Two 3 s synthetic masters in each of three album folders, one album per split."""
    root = tmp_path_factory.mktemp("masters")
    for k, (split, album) in enumerate(sorted(_album_names().items())):
        (root / album).mkdir()
        for j in range(2):
            sf.write(root / album / f"{split}{j}.wav", synthetic_master(3.0, seed=10 * k + j).T, SAMPLE_RATE,
                     subtype="FLOAT")
    return root


def _config(source: Path, **kw) -> dict:
    return pm.premaster_config(source, **{"split_counts": "train=2,val=1,test=1", "clip_s": 1.5, "shard_size": 2,
                                          **kw})


def test_end_to_end_build_resume_verify_and_read(masters_dir, tmp_path):
    out = tmp_path / "ds"
    generate(_config(masters_dir), out, workers=0, progress=False)
    assert verify(out).ok
    ds = Dataset.open(out)
    first = {r.shard: (ds.path(r.shard).read_bytes(), r.indices) for r in ds.records}
    assert sorted(i for _, idx in first.values() for i in idx) == [0, 1, 2, 3]
    # a run killed after its first shard: drop the second shard and its manifest line, rerun, same bytes
    lines = (out / "manifest.jsonl").read_text().splitlines(keepends=True)
    last = json.loads(lines[-1])
    (out / "manifest.jsonl").write_text("".join(lines[:-1]))
    (out / last["shard"]).unlink()
    summary = generate(_config(masters_dir), out, workers=0, progress=False)
    assert summary.examples_ok == len(last["indices"])
    assert (out / last["shard"]).read_bytes() == first[last["shard"]][0]
    assert verify(out).ok
    assert main(["datagen", "verify", str(out)]) == 0

    data = pm.read_premaster_dataset(out, verify=True)
    assert len(data) == 4 and data.labels.shape == (4, 22) and data.label_names == pm.LABEL_NAMES
    assert data.splits == ["train", "train", "val", "test"]
    # split isolation: each example's source file belongs to its split's album
    cfg = json.loads((out / "config.json").read_text())
    for split, name in zip(data.splits, data.source_files):
        entry = next(e for e in cfg["sources"] if e["path"] == name)
        assert entry["split"] == split and split_of_album(entry["album"]) == split
    test_only = pm.read_premaster_dataset(out, "test")
    assert test_only.splits == ["test"] and test_only.albums[0] == _album_names()["test"]
    # the stored pair (float32, as rendered) is degrade() of the stored master and round-trips through the label
    pre, master = data.pair(0)
    assert pre.shape == master.shape == (2, int(1.5 * SAMPLE_RATE)) and pre.dtype == np.float32
    assert pm.degrade(master, SAMPLE_RATE, data.degradations[0]).tobytes() == pre.tobytes()
    rt = pm.round_trip_error(pre, master, data.plan(0), SAMPLE_RATE)
    assert rt.max_abs_error < ROUND_TRIP_MAX_ABS
    batch = next(data.batches(3))
    assert batch["pre"].shape == (3, 2, int(1.5 * SAMPLE_RATE)) and batch["label"].shape == (3, 22)


def test_same_seed_same_bytes(masters_dir, tmp_path):
    """The CLI (one worker process) and the library (in-process) write the same shard bytes; another seed does not."""
    assert main(["datagen", "premaster", "-o", str(tmp_path / "a"), "--source", str(masters_dir), "--split-counts",
                 "train=1,test=1", "--clip-s", "1.5", "--shard-size", "2", "--workers", "1", "-q"]) == 0
    generate(_config(masters_dir, split_counts="train=1,val=0,test=1"), tmp_path / "b", workers=0, progress=False)
    a, b = Dataset.open(tmp_path / "a"), Dataset.open(tmp_path / "b")
    assert [r.sha256 for r in a.example_records()] == [r.sha256 for r in b.example_records()]
    generate(_config(masters_dir, split_counts="train=1,val=0,test=1", seed=1), tmp_path / "c", workers=0,
             progress=False)
    c = Dataset.open(tmp_path / "c")
    assert [r.sha256 for r in c.example_records()] != [r.sha256 for r in a.example_records()]


def test_bad_input_gives_clear_errors(masters_dir, tmp_path, capsys):
    with pytest.raises(DatagenConfigError, match="unknown split 'tset'"):
        pm.parse_split_counts("train=2,tset=1")
    with pytest.raises(DatagenConfigError, match="SPLIT=N"):
        pm.parse_split_counts("train")
    with pytest.raises(DatagenConfigError, match="every split has 0"):
        pm.parse_split_counts("train=0")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AudioInputError, match="no finished masters"):
        pm.premaster_config(empty)
    only_train = tmp_path / "one"
    (only_train / _album_names()["train"]).mkdir(parents=True)
    sf.write(only_train / _album_names()["train"] / "x.wav", synthetic_master(2.0).T, SAMPLE_RATE)
    with pytest.raises(DatagenConfigError, match="no master of .* is in split val"):
        pm.premaster_config(only_train, split_counts="train=1,val=1", clip_s=1.0)
    with pytest.raises(DatagenConfigError, match="unknown"):
        pm.read_premaster_dataset(tmp_path, "everything")
    assert main(["datagen", "premaster", "-o", str(tmp_path / "x"), "--source", str(empty)]) == 2
    assert "no finished masters" in capsys.readouterr().err
    assert main(["datagen", "premaster", "-o", str(tmp_path / "x"), "--source", str(masters_dir),
                 "--split-counts", "dev=3"]) == 2


@pytest.mark.skipif(not DEBIAN_MASTERS.is_dir(), reason="the Debian masters (wesnoth-1.16-music) are not installed")
def test_catalogue_config_splits_by_album():
    cfg = pm.premaster_config(None, split_counts="train=1,val=1,test=1", clip_s=8.0)
    by_split = {s: {e["album"] for e in cfg["sources"] if e["split"] == s} for s in ("train", "val", "test")}
    assert by_split["test"] == {"warzone2100-legacy"}
    assert "wesnoth-1.16" in by_split["train"] and not by_split["train"] & by_split["test"]
