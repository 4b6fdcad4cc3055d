"""The shipped direct mixers against their model cards: one card figure re-measured on a small subset.

``models/mixers/dae.md`` and ``models/mixers/mixwaveunet.md`` state, besides their test-split table, the
scores of the demo song ``D_E1M9``'s first excerpt (``e1m9_x0``, a test-split song): the sum/difference
MR-STFT and the level RMSE (dB) of the mixer's audio against the composer's ``target/mix.wav``. The test
rebuilds that excerpt with the composer builder (the session fixture ``composer_e1m9_x0_root``: the same
excerpt and input loudness as in the full dataset) and scores the shipped mixers on it with
:func:`mixbridge.app.evaluate.evaluate_dataset`, the code that made the cards' test-split tables.

Tolerances: the card prints 3 decimals for the MR-STFT and 2 for the level (half a unit) and the figures
depend on float32 round-off in the networks and the FFTs between CPUs and library builds
(``FLOAT_SLACK``). A retrained mixer without a new card, or a broken one, misses by far more.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support import needs_demo_sources, torch_threads

ROOT = Path(__file__).resolve().parents[2]
CARDS = {name: ROOT / "models" / "mixers" / f"{name}.md" for name in ("dae", "mixwaveunet")}
#: Float32 round-off between builds on an MR-STFT (dimensionless) and a level RMSE (dB).
FLOAT_SLACK = 0.01
#: The cards' own rounding: 3 decimals (MR-STFT), 2 (level).
ROUNDING_MRSTFT, ROUNDING_LEVEL = 0.0005, 0.005


def card_figures(name: str) -> tuple[float, float]:
    """``(sum/difference MR-STFT, level RMSE dB)`` of the card's ``e1m9_x0`` row."""
    text = CARDS[name].read_text(encoding="utf-8")
    section = text.split("## Re-checked subset", 1)[1]
    (row,) = re.findall(rf"^\| {name} \| e1m9_x0 \| ([0-9.]+) \| ([0-9.]+) \|", section, flags=re.M)
    return float(row[0]), float(row[1])


@pytest.fixture(scope="module")
def e1m9_scores(composer_e1m9_x0_root, composer_e1m9_x0) -> dict:
    """``evaluate_dataset``'s summary (the command the cards cite) of both direct mixers on e1m9_x0
    (the session fixtures of tests/conftest.py: built once, checked to be that test-split excerpt)."""
    from mixbridge.app.evaluate import evaluate_dataset

    with torch_threads(1):
        return evaluate_dataset(composer_e1m9_x0_root, sorted(CARDS), split="test", progress=False,
                                log=lambda _: None)


@needs_demo_sources
@pytest.mark.parametrize("name", sorted(CARDS))
def test_direct_card_figures_on_e1m9_x0(name, e1m9_scores):
    mrstft_card, level_card = card_figures(name)
    assert not e1m9_scores["skipped"], e1m9_scores["skipped"]
    run = e1m9_scores["runs"][name]
    assert abs(run["sum_difference_mrstft"] - mrstft_card) <= ROUNDING_MRSTFT + FLOAT_SLACK, (name, run, mrstft_card)
    assert abs(run["level_rmse_db"] - level_card) <= ROUNDING_LEVEL + FLOAT_SLACK, (name, run, level_card)
