"""Tests of random console mixes: stored sessions re-render to the stored mix, padding, layouts."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mixbridge.plugins.console import render_console
from mixbridge.plugins.datagen.errors import DatagenConfigError
from mixbridge.plugins.datagen.format import Dataset
from mixbridge.plugins.datagen.mixes import STRIP_PARAMS, _read, mixes_config
from mixbridge.plugins.datagen.runner import generate
from mixbridge.plugins.datagen.verify import verify
from mixbridge.schema import REVERB
from mixbridge.session import from_dict

SAMPLE_RATE = 44100
CLIP_S = 0.5
#: Re-rendering a stored session through the same builtin console gives the same float32 mix.
RERENDER_TOL = 1e-6


def _song(folder: Path, names: list[str], seconds: float = 2.0, seed: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    for k, name in enumerate(names):
        x = 0.2 * np.sin(2 * np.pi * 100 * (k + 1) * t) + 0.02 * rng.standard_normal(t.size)
        data = np.stack([x, x * 0.9], axis=1) if k % 2 else x[:, None]
        sf.write(folder / f"{name}.wav", data.astype(np.float32), SAMPLE_RATE, subtype="FLOAT")


@pytest.fixture(scope="module")
def songs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mt") / "songs"
    _song(root / "a", ["kick", "bass", "lead_vox"], seed=1)
    _song(root / "b", ["snare", "keys"], seed=2)
    return root


def test_random_mixes_rerender_from_their_sessions(songs, tmp_path):
    cfg = mixes_config(str(songs), clip_s=CLIP_S, n=6, seed=2, shard_size=4)
    assert cfg["max_tracks"] == 3 and [s["name"] for s in cfg["songs"]] == ["a", "b"]
    s = generate(cfg, tmp_path / "mx", workers=1, progress=False)
    assert s.examples_ok == 6 and verify(tmp_path / "mx").ok
    ds = Dataset.open(tmp_path / "mx")
    names = [p for p, _ in STRIP_PARAMS]
    seen_songs = set()
    for rec in ds.records:
        a = ds.load_shard(rec)
        for row in range(len(a["index"])):
            session = from_dict(json.loads(str(a["session_json"][row])), base_dir=songs)
            start_s = float(a["clip_start_s"][row])
            assert session.provenance["clip"] == {"start_s": start_s, "duration_s": CLIP_S}
            n_tracks = len(session.tracks)
            seen_songs.add(n_tracks)
            assert a["track_mask"][row].tolist() == [1] * n_tracks + [0] * (3 - n_tracks)
            assert np.isnan(a["params_real"][row, n_tracks:]).all()
            for t, track in enumerate(session.tracks):
                flat = [track.params[p.split(".")[0]][p.split(".")[1]] for p in names]
                assert np.array_equal(a["params_real"][row, t], np.array(flat))
                assert track.params["fader"]["mute"] == 0.0 and -12.0 <= track.params["fader"]["fader_db"] <= 6.0
            clips = {t.name: _read(session.source_path(t), start_s, int(CLIP_S * SAMPLE_RATE), SAMPLE_RATE)
                     for t in session.tracks}
            mix = render_console(session, "builtin", audio=clips).mix
            assert np.max(np.abs(mix - a["mix"][row])) <= RERENDER_TOL
            assert np.abs(a["mix"][row]).max() > 0.01
    assert seen_songs == {2, 3}


def test_mixes_param_overrides_and_layouts(songs, tmp_path):
    cfg = mixes_config(str(songs), clip_s=CLIP_S, n=2, param_specs=["pan.pan=fixed:0", "reverb.decay_s=fixed:2"])
    assert cfg["param_dists"]["pan.pan"]["kind"] == "fixed"
    u_2s = REVERB.param("decay_s").to_normalised(2.0)
    assert cfg["master_param_dists"]["reverb.decay_s"]["u_lo"] == pytest.approx(u_2s)
    with pytest.raises(DatagenConfigError, match="unknown parameter"):
        mixes_config(str(songs), clip_s=CLIP_S, param_specs=["pan.width=fixed:0"])
    musdb = tmp_path / "musdb"
    _song(musdb / "train" / "X - Y", ["drums", "bass", "other", "vocals"])
    cfg = mixes_config(str(musdb), layout="musdb", clip_s=CLIP_S, n=2)
    assert [st["role"] for st in cfg["songs"][0]["stems"]] == ["bass", "percussion", "other", "lead"]
    assert generate(cfg, tmp_path / "m2", workers=0, progress=False).examples_ok == 2


def test_cli_mixes(songs, tmp_path, capsys):
    from mixbridge.app.cli import main

    out = tmp_path / "cli"
    assert main(["datagen", "mixes", "--multitracks", str(songs), "--n", "3", "--clip-s", "0.5", "--workers", "0",
                 "--store-stems", "-o", str(out)]) == 0
    assert "mixes dataset" in capsys.readouterr().out
    a = Dataset.open(out).load_shard(Dataset.open(out).records[0])
    assert a["stems"].shape == (3, 3, 2, int(CLIP_S * SAMPLE_RATE))
    assert main(["datagen", "mixes", "--multitracks", str(songs), "--layout", "medley", "-o", str(tmp_path / "y")]) == 2
    assert "unknown layout 'medley'" in capsys.readouterr().err


def test_mixes_draw_only_what_the_backend_renders(songs, tmp_path, monkeypatch):
    """Strip and bus parameters are both cut to the backend's renderable range; a --param beyond it is refused."""
    from mixbridge.plugins import backend as registry
    from mixbridge.plugins.builtin import BuiltinBackend

    class ShortReverb(BuiltinBackend):
        def renderable_range(self, processor, param):
            return {("reverb", "decay_s"): (0.3, 2.0), ("compressor", "knee_db"): (0.0, 2.0)}.get(
                (processor, param)) or super().renderable_range(processor, param)

    monkeypatch.setitem(registry._BACKENDS, "short_reverb", lambda sr, **kw: ShortReverb(sr, **kw))
    cfg = mixes_config(str(songs), clip_s=CLIP_S, n=4, seed=3, backend="short_reverb")
    assert cfg["renderable_ranges"] == {"compressor.knee_db": [0.0, 2.0], "reverb.decay_s": [0.3, 2.0]}
    assert generate(cfg, tmp_path / "sr", workers=0, progress=False).examples_ok == 4
    ds = Dataset.open(tmp_path / "sr")
    a = ds.load_shard(ds.records[0])
    knee = a["params_real"][:, :, [p for p, _ in STRIP_PARAMS].index("compressor.knee_db")]
    assert np.nanmax(knee) <= 2.0 and a["master_params_real"][:, 0].max() <= 2.0
    with pytest.raises(DatagenConfigError, match=r"renders reverb.decay_s only in \[0.3, 2\] s"):
        mixes_config(str(songs), clip_s=CLIP_S, backend="short_reverb", param_specs=["reverb.decay_s=uniform:1:4"])
