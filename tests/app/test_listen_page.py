"""``listen build``: item matching, loudness normalisation, the anchor's filter, the config, the listener shuffle.

:func:`write_sweep_stimuli` (used by the server and browser tests too) writes conditions whose playback
position can be read back from the sound: every condition holds the same linear sweep (300 Hz + 600 Hz/s)
plus a marker tone of its own frequency.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mixbridge.app.listen_order import listener_orders, listener_seed
from mixbridge.app.listen_page import (
    ANCHOR,
    HIDDEN_REFERENCE,
    ListenInputError,
    build_page,
    find_items,
    loudest_start_s,
    lowpass_anchor,
)
from mixbridge.checksum import sha256_file
from mixbridge.loudness import integrated_lufs

SAMPLE_RATE = 44100
#: The sweep every condition holds: f(t) = SWEEP_START_HZ + SWEEP_RATE_HZ_PER_S * t (t in the source file, s).
SWEEP_START_HZ, SWEEP_RATE_HZ_PER_S = 300.0, 600.0
#: Marker tone per condition (Hz): which one sounds tells which condition plays.
MARKERS_HZ = {"alpha": 5000.0, "beta": 6500.0, "gamma": 8000.0, "ref": 9500.0}
#: The loudness meter's agreement with itself after a gain (float32 WAV rounding at 16 bits: ~1e-4 LU).
LUFS_TOLERANCE_LU = 0.01


def write_sweep_stimuli(root: Path, seconds: float = 3.0, songs=("song1", "song2"), conditions=None) -> Path:
    """``root/<condition>/<song>/mix.wav``: the sweep plus the condition's marker, stereo float32."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    sweep = np.sin(2 * np.pi * (SWEEP_START_HZ * t + SWEEP_RATE_HZ_PER_S / 2 * t ** 2))
    for cond in conditions or MARKERS_HZ:
        for k, song in enumerate(songs):
            x = (0.3 - 0.05 * k) * sweep + 0.05 * np.sin(2 * np.pi * MARKERS_HZ[cond] * t)
            folder = root / cond / song
            folder.mkdir(parents=True, exist_ok=True)
            sf.write(folder / "mix.wav", np.stack([x, x]).T.astype(np.float32), SAMPLE_RATE, subtype="FLOAT")
    return root


@pytest.fixture(scope="module")
def stimuli(tmp_path_factory) -> Path:
    return write_sweep_stimuli(tmp_path_factory.mktemp("stimuli"))


@pytest.fixture(scope="module")
def page(stimuli, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("page") / "page"
    cfg = build_page([str(stimuli / "alpha"), f"B={stimuli / 'beta'}"], out, reference=stimuli / "ref", anchor=True,
                     excerpt_s=2.0, lufs=-20.0, seed=3)
    return out, cfg


def test_page_files_and_config(page, stimuli):
    out, cfg = page
    assert {p.name for p in out.iterdir()} == {"index.html", "listen.js", "listen.css", "config.json", "stimuli"}
    on_disk = json.loads((out / "config.json").read_text())
    assert on_disk["page_id"] == cfg["page_id"] and on_disk["style"] == "mushra"
    assert [c["name"] for c in cfg["conditions"]] == ["alpha", "B", HIDDEN_REFERENCE, ANCHOR]
    assert [i["name"] for i in cfg["items"]] == ["song1", "song2"]
    for item in cfg["items"]:
        assert set(item["stimuli"]) == {"alpha", "B", HIDDEN_REFERENCE, ANCHOR}
        files = [*item["stimuli"].values(), item["reference"]]
        assert len({f["file"] for f in files}) == len(files)  # the hidden and the open reference are two files
        for f in files:
            assert f["sha256"] == sha256_file(out / f["file"])
            info = sf.info(str(out / f["file"]))
            assert (info.subtype, info.samplerate, info.channels) == ("PCM_16", SAMPLE_RATE, 2)
            assert info.frames == int(2.0 * SAMPLE_RATE)
            assert not any(c in f["file"] for c in ("alpha", "ref", "anchor"))  # names do not tell the condition
        assert item["stimuli"]["B"]["source"] == str(stimuli / "beta" / item["name"] / "mix.wav")


def test_stimuli_are_loudness_normalised(page):
    out, cfg = page
    for item in cfg["items"]:
        for f in [*item["stimuli"].values(), item["reference"]]:
            x, rate = sf.read(str(out / f["file"]), dtype="float32", always_2d=True)
            assert abs(integrated_lufs(x.T, rate) - cfg["lufs"]) < LUFS_TOLERANCE_LU, f


def test_hidden_reference_is_the_reference_and_excerpts_are_aligned(page):
    out, cfg = page
    item = cfg["items"][0]
    hidden, _ = sf.read(str(out / item["stimuli"][HIDDEN_REFERENCE]["file"]))
    open_ref, _ = sf.read(str(out / item["reference"]["file"]))
    assert np.array_equal(hidden, open_ref)
    # the sweep is common to every condition: same excerpt start -> the low band correlates at lag 0
    a, _ = sf.read(str(out / item["stimuli"]["alpha"]["file"]))
    lag = np.argmax(np.correlate(lowpass_anchor(a[:4096, :1].T, SAMPLE_RATE)[0],
                                 lowpass_anchor(hidden[:4096, :1].T, SAMPLE_RATE)[0], "full")) - 4095
    assert lag == 0


def _tone_db(freq_hz: float, seconds: float = 1.0) -> float:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    x = np.sin(2 * np.pi * freq_hz * t)[None].astype(np.float32)
    y = lowpass_anchor(x, SAMPLE_RATE)
    mid = slice(SAMPLE_RATE // 4, 3 * SAMPLE_RATE // 4)  # away from the filter's edge transients
    return 20 * np.log10(np.sqrt(np.mean(y[0, mid] ** 2)) / np.sqrt(np.mean(x[0, mid] ** 2)))


def test_anchor_is_a_3k5_lowpass():
    """BS.1534-3's anchor: 1 kHz passes, the cut-off is -6 dB (Butterworth -3 dB, run twice), 7 kHz is gone."""
    assert abs(_tone_db(1000.0)) < 0.01
    assert abs(_tone_db(3500.0) - (-6.02)) < 0.05
    assert _tone_db(7000.0) < -90.0


def test_loudest_window_is_found_block_by_block(tmp_path):
    """A 2 s loud part at 6..8 s of a 10 s file (longer than one read block of 6.4 s): the window starts at 6 s."""
    x = np.zeros((10 * SAMPLE_RATE, 2), np.float32)
    x[6 * SAMPLE_RATE:8 * SAMPLE_RATE] = 0.5
    x[:SAMPLE_RATE] = 0.1  # quieter signal elsewhere
    sf.write(tmp_path / "x.wav", x, SAMPLE_RATE, subtype="FLOAT")
    assert loudest_start_s(tmp_path / "x.wav", 2.0) == 6.0
    assert loudest_start_s(tmp_path / "x.wav", 20.0) == 0.0


def test_items_as_files_and_folders(tmp_path):
    (tmp_path / "a" / "s1").mkdir(parents=True)
    sf.write(tmp_path / "a" / "s1" / "mix.wav", np.zeros((4410, 2)), SAMPLE_RATE)
    sf.write(tmp_path / "a" / "s1" / "master.wav", np.zeros((4410, 2)), SAMPLE_RATE)
    sf.write(tmp_path / "a" / "s2.wav", np.zeros((4410, 2)), SAMPLE_RATE)
    found = find_items(tmp_path / "a")
    assert found == {"s1": tmp_path / "a" / "s1" / "master.wav", "s2": tmp_path / "a" / "s2.wav"}
    sf.write(tmp_path / "a" / "s1.wav", np.zeros((4410, 2)), SAMPLE_RATE)
    with pytest.raises(ListenInputError, match="'s1' is given twice"):
        find_items(tmp_path / "a")


def test_missing_item_is_a_clear_error(tmp_path):
    root = write_sweep_stimuli(tmp_path / "st", seconds=1.0, conditions=("alpha", "beta"))
    (root / "beta" / "song2" / "mix.wav").unlink()
    (root / "beta" / "song2").rmdir()
    with pytest.raises(ListenInputError, match=r"condition 'beta' .* has no item 'song2', which alpha hold"):
        build_page([str(root / "alpha"), str(root / "beta")], tmp_path / "page", style="ape", excerpt_s=1.0)
    assert not (tmp_path / "page").exists()


@pytest.mark.parametrize("kwargs,match", [
    ({"style": "mushra"}, "needs --reference"),
    ({"style": "ape", "anchor": True}, "--anchor low-passes the reference"),
    ({"style": "ape", "lufs": -5.0}, "--lufs -5: outside"),
    ({"style": "ape", "items": 0}, "--items 0"),
    ({"style": "dolby"}, "--style 'dolby'"),
])
def test_bad_options(stimuli, tmp_path, kwargs, match):
    with pytest.raises(ListenInputError, match=match):
        build_page([str(stimuli / "alpha"), str(stimuli / "beta")], tmp_path / "p", **kwargs)


def test_clipping_level_is_refused(tmp_path):
    """Sparse clicks at full scale are quiet (about -40 LUFS): raising them to -20 LUFS would pass 0 dBFS."""
    x = np.zeros((SAMPLE_RATE, 2), np.float32)
    x[::SAMPLE_RATE // 4] = 0.9
    for cond in ("a", "b"):
        (tmp_path / cond).mkdir()
        sf.write(tmp_path / cond / "clicks.wav", x, SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(ListenInputError, match="peak is .* dBFS, past the full scale of a 16-bit WAV; give a lower"):
        build_page([str(tmp_path / "a"), str(tmp_path / "b")], tmp_path / "p", style="ape", lufs=-20.0)


def test_rebuild_replaces_a_page_but_never_results_or_other_folders(stimuli, tmp_path):
    args = ([str(stimuli / "alpha"), str(stimuli / "beta")], tmp_path / "p")
    build_page(*args, style="ape", excerpt_s=1.0, items=1, seed=1)
    cfg = build_page(*args, style="ape", excerpt_s=1.0)
    assert len(cfg["items"]) == 2 and len(list((tmp_path / "p" / "stimuli").iterdir())) == 4
    (tmp_path / "p" / "results.jsonl").write_text("{}\n")
    with pytest.raises(ListenInputError, match="holds collected ratings"):
        build_page(*args, style="ape", excerpt_s=1.0)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ListenInputError, match="not a listening page holds files"):
        build_page(args[0], tmp_path / "other", style="ape", excerpt_s=1.0)


def test_listener_shuffle_is_seeded_and_a_permutation(page):
    _, cfg = page
    items, orders = listener_orders(cfg, "ann")
    assert sorted(items) == ["song1", "song2"]
    assert all(sorted(o) == sorted(c["name"] for c in cfg["conditions"]) for o in orders.values())
    assert listener_orders(cfg, "ann") == (items, orders)
    many = {tuple(listener_orders(cfg, f"l{k}")[1]["song1"]) for k in range(40)}
    assert len(many) > 10  # 24 permutations of 4 conditions: different listeners get different orders


def test_listener_seed_is_fnv1a():
    """FNV-1a 32-bit reference values ("" and "a", from the algorithm's published test vectors), over UTF-16 units."""
    from mixbridge.app import listen_order

    def raw(text: str) -> int:
        h = 0x811C9DC5
        for unit in text.encode("utf-16-le")[::2]:
            h = ((h ^ unit) * 0x01000193) & 0xFFFFFFFF
        return h

    assert raw("") == 0x811C9DC5 and raw("a") == 0xE40C292C
    assert listener_seed(0, "a") == raw("0:a")
    assert listen_order._mulberry32(0)() == pytest.approx(0.26642920868471265, abs=1e-15)


def test_cli_build_and_its_errors(stimuli, tmp_path, capsys):
    from mixbridge.app.cli import main

    rc = main(["listen", "build", "--stimuli", str(stimuli / "alpha"), f"B={stimuli / 'beta'}", "-o",
               str(tmp_path / "page"), "--style", "ape", "--excerpt-s", "1", "--items", "1", "--seed", "2"])
    out = capsys.readouterr().out
    assert rc == 0 and "APE-style page, 1 items x 2 conditions (alpha, B)" in out
    assert len(json.loads((tmp_path / "page" / "config.json").read_text())["items"]) == 1
    rc = main(["listen", "build", "--stimuli", str(stimuli / "alpha"), str(tmp_path / "nowhere"), "-o",
               str(tmp_path / "p2")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "is not a folder" in err


def test_reference_may_hold_more_items_and_file_picks_the_mix(tmp_path):
    """A composer dataset as the reference (ITEM/target/mix.wav, more items than the conditions) and automix
    outputs as conditions, their pre-master mix.wav chosen with ``file``."""
    root = write_sweep_stimuli(tmp_path / "st", seconds=1.2, conditions=("alpha", "beta", "ref"),
                               songs=("s1", "s2", "s3"))
    for song in ("s1", "s2", "s3"):
        (root / "ref" / song / "target").mkdir()
        (root / "ref" / song / "mix.wav").rename(root / "ref" / song / "target" / "mix.wav")
    for cond in ("alpha", "beta"):
        sf.write(root / cond / "s1" / "master.wav", np.zeros((SAMPLE_RATE, 2)), SAMPLE_RATE)  # silent: not picked
        (root / cond / "s3" / "mix.wav").unlink()
        (root / cond / "s3").rmdir()
    cfg = build_page([str(root / "alpha"), str(root / "beta")], tmp_path / "page", reference=root / "ref",
                     excerpt_s=1.0, file="mix.wav")
    assert [i["name"] for i in cfg["items"]] == ["s1", "s2"]
    s1 = cfg["items"][0]["stimuli"]
    assert s1["alpha"]["source"].endswith("alpha/s1/mix.wav")
    assert s1[HIDDEN_REFERENCE]["source"].endswith("ref/s1/target/mix.wav")
    (root / "ref" / "s2" / "target" / "mix.wav").unlink()
    with pytest.raises(ListenInputError, match=r"condition 'reference' .* has no item 's2'"):
        build_page([str(root / "alpha"), str(root / "beta")], tmp_path / "p2", reference=root / "ref",
                   excerpt_s=1.0, file="mix.wav")


def test_assets_name_no_network_resource():
    """The page's three files load nothing from elsewhere: every src/href is relative (or a data: URI), no CSS
    import or url(), no module import; the browser test checks what the page really fetched."""
    import re
    from importlib import resources

    assets = resources.files("mixbridge.app") / "listen_assets"
    html = (assets / "index.html").read_text()
    refs = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert sorted(refs) == ["data:,", "listen.css", "listen.js"]
    css = (assets / "listen.css").read_text()
    assert "@import" not in css and "url(" not in css
    js = (assets / "listen.js").read_text()
    assert not re.search(r"\bimport\b|https?://|//cdn", js)
