"""A shipped proxy against its model card: ``comp_builtin``'s figures, re-measured.

``models/proxies/comp_builtin.md`` reports, for its proxy, the static level curve difference of
the first three random parameter sets and the ESR of 64 held-out examples (random 1.48 s patches
of the demo song ``e3m4`` with random parameters, ``mixbridge compare ... --random 64 --seed 0``).
These tests read the figures from the card's text and measure them again:

* **Target.** The card's target is superseded (the card says so): pedalboard's JUCE
  ``Compressor`` (hard knee) followed by ``Gain(makeup_db)``, which ``--backend builtin`` rendered
  when the card was measured and no longer does (it renders the reference compressor now). It is
  rendered here with pedalboard itself (pinned in requirements.lock), so the figures can be
  re-measured; the rest is the library's ``compare`` code (parameter draws, patches, curves,
  :func:`mixbridge.models.metrics.esr`).
* **Static level curve** (no data needed): deterministic, so the card's figure must come back
  to the precision it is printed at (0.1 dB: half a digit) plus ``FLOAT_SLACK_DB``.
* **Held-out ESR median on a subset**: the first ``N_SUBSET`` of the card's 64 examples. Parameter
  sets and patches are drawn in sequence from the card's seed, so these are the card's examples
  0..15, on ``e3m4`` rebuilt by the demo builder (byte-identical to ``mixbridge demo build``'s).
  A median of 16 is not the median of 64, so the tolerance is the distribution-free confidence
  interval of a median from the subset's order statistics: ``[x_(k), x_(n+1-k)]`` holds the
  population median with probability ``1 - 2 P(Binomial(n, 1/2) <= k - 1)``; ``k`` is the largest
  order with coverage >= ``COVERAGE`` (99 %: k = 3 for n = 16, 99.58 %). The card's median must lie
  in it. A broken or retrained-without-a-new-card proxy (ESR near 1 on most examples) fails.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
CARD = ROOT / "models" / "proxies" / "comp_builtin.md"
CHECKPOINT = ROOT / "models" / "proxies" / "comp_builtin.json"
#: Float32 round-off between torch/pedalboard builds on the level curve (dB); the card's own
#: rounding (0.05 dB) is added to it.
FLOAT_SLACK_DB = 0.01
#: Examples re-measured out of the card's 64 (the first ones, same seed).
N_SUBSET = 16
#: Coverage of the order-statistic interval for the median.
COVERAGE = 0.99
#: Patch length of the card's held-out examples (seconds; ``compare --patch-s`` default).
PATCH_S = 1.48


def card_figures(text: str) -> dict:
    """The card's held-out table (``{"ESR median": 0.12, ...}``), its level-curve differences per
    set (dB), the compare seed and the held-out song folder, parsed from the card's Markdown."""
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("| n | MAE |"))
    names = [c.strip() for c in lines[head].strip("|").split("|")]
    values = [float(c) for c in lines[head + 2].strip("|").split("|")]
    curve = re.search(r"static level curve [^:]*: largest plugin/proxy difference (.*)", text)
    assert curve, "the card lost its static level curve line"
    diffs = {int(s): float(v) for v, s in re.findall(r"([\d.]+) dB \(set (\d+)\)", curve.group(1))}
    command = re.search(r"mixbridge compare .*--input demo/(\S+) --random (\d+) --seed (\d+)", text)
    assert command, "the card lost its reproduce command"
    return {"table": dict(zip(names, values)), "level_diff_db": diffs, "song": command.group(1),
            "n": int(command.group(2)), "seed": int(command.group(3))}


def median_interval_order(n: int, coverage: float) -> int:
    """Largest ``k`` with ``P(x_(k) <= median <= x_(n+1-k)) = 1 - 2 P(Bin(n, 1/2) <= k-1) >= coverage``."""
    def cdf(j: int) -> float:
        return sum(math.comb(n, i) for i in range(j + 1)) / 2 ** n

    k = 1
    while k + 1 <= n // 2 and 1 - 2 * cdf(k) >= coverage:
        k += 1
    return k


def card_target(audio: np.ndarray, sample_rate: int, compressor: dict[str, float]) -> np.ndarray:
    """The card's target: pedalboard ``Compressor`` (hard knee, ``knee_db`` fixed at 0) then makeup
    ``Gain``, on float32 ``[channels, samples]``."""
    import pedalboard

    board = pedalboard.Pedalboard([
        pedalboard.Compressor(threshold_db=compressor["threshold_db"], ratio=compressor["ratio"],
                              attack_ms=compressor["attack_ms"], release_ms=compressor["release_ms"]),
        pedalboard.Gain(gain_db=compressor["makeup_db"]),
    ])
    return board(np.ascontiguousarray(audio, dtype=np.float32), sample_rate)


@pytest.fixture(scope="module")
def card() -> dict:
    return card_figures(CARD.read_text())


@pytest.fixture(scope="module")
def proxy():
    pytest.importorskip("torch")
    from mixbridge.export.compare import load_proxy

    return load_proxy(CHECKPOINT)


def test_median_interval_order_is_the_binomial_one():
    # n = 16: P(Bin <= 2) = 137 / 65536, so k = 3 covers 99.58 %; k = 4 would cover 97.87 %.
    assert median_interval_order(16, 0.99) == 3
    assert median_interval_order(16, 0.95) == 4


def test_card_parses(card):
    assert card["table"]["n"] == 64 and card["n"] == 64 and card["song"] == "e3m4"
    assert sorted(card["level_diff_db"]) == [0, 1, 2]


def test_static_level_curve_matches_card(card, proxy):
    from mixbridge.export.compare import level_curve, nested_real, random_params

    sets = random_params(len(card["level_diff_db"]), proxy.param_names, proxy.entries, proxy.trained_ranges,
                         card["seed"])
    sr = proxy.sample_rate
    for k, want_db in card["level_diff_db"].items():
        nested, _ = nested_real(sets[k], proxy.entries)
        _, plugin_db = level_curve(lambda a, c=nested["compressor"]: card_target(a, sr, c), sr, 1)
        _, proxy_db = level_curve(lambda a, v=sets[k]: proxy.render(a, v), sr, 1)
        got_db = float(np.max(np.abs(plugin_db - proxy_db)))
        assert got_db == pytest.approx(want_db, abs=0.05 + FLOAT_SLACK_DB), f"set {k}"


@pytest.fixture(scope="module")
def held_out_song(card, tmp_path_factory) -> Path:
    """The card's held-out song, rebuilt by the demo builder (the demo's third default song)."""
    from mixbridge.plugins.datagen.demo.build import DemoSettings, build_demo, default_songs
    from mixbridge.plugins.datagen.demo.errors import DemoSourceMissingError

    out = tmp_path_factory.mktemp("demo")
    try:
        build_demo(out, DemoSettings(songs=(default_songs(3)[2],)), progress=False, log=lambda s: None)
    except DemoSourceMissingError as e:
        pytest.skip(f"the demo's sources are not installed (scripts/setup.sh): {e}")
    song = out / card["song"]
    assert song.is_dir(), f"the demo builder made no {card['song']}/"
    return song


def test_held_out_esr_median_matches_card_on_a_subset(card, proxy, held_out_song):
    from mixbridge.export.compare import draw_patches, nested_real, random_params
    from mixbridge.models.metrics import esr

    sr = proxy.sample_rate
    sets = random_params(N_SUBSET, proxy.param_names, proxy.entries, proxy.trained_ranges, card["seed"])
    patches, _, _ = draw_patches(str(held_out_song), N_SUBSET, int(round(PATCH_S * sr)), sr, 1, card["seed"],
                                 lambda s: None)
    esrs = []
    for vec, x in zip(sets, patches):
        nested, _ = nested_real(vec, proxy.entries)
        esrs.append(esr(proxy.render(x, vec), card_target(x, sr, nested["compressor"])))
    order = np.sort(esrs)
    k = median_interval_order(N_SUBSET, COVERAGE)
    lo, hi = order[k - 1], order[N_SUBSET - k]
    assert lo <= card["table"]["ESR median"] <= hi, (
        f"card median ESR {card['table']['ESR median']} outside the subset's {COVERAGE:.0%} interval "
        f"[{lo:.4g}, {hi:.4g}] (subset median {np.median(esrs):.4g})")
