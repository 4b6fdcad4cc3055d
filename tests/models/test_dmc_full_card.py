"""The shipped dmc-full against its model card: one card figure re-measured on a small subset.

``models/mixers/dmc_full.md`` states, besides its test-split table, the figures of the demo song
``D_E1M9``'s first excerpt (``e1m9_x0``, a test-split song) rebuilt alone
(``mixbridge datagen composer --pick D_E1M9 --excerpts-per-song 1``): on its method-1 pair (seed 1),
the Diff-MST feature distance to the reference of the shipped ``dmc`` mixer's session and of dmc-full's
prediction, and their sum/diff MR-STFT to the target. The test takes the excerpt from the session
fixture ``composer_e1m9_x0_root`` (tests/conftest.py, built once per run), re-runs
:func:`mixbridge.models.training.dmc_full.evaluate_dmc_full` without refinement and compares.

Tolerances: the card prints 3 decimals (ROUNDING), and the figures pass float32 features, the network
and the torch console's float64 render (REL_SLACK of the value covers library builds and CPUs).
A retrained model without a new card misses by far more.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support import needs_demo_sources, torch_threads

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
CARD = ROOT / "models" / "mixers" / "dmc_full.md"
WEIGHTS = ROOT / "models" / "mixers" / "dmc_full.safetensors"
#: The card's rounding (3 decimals) and the relative round-off slack between builds.
ROUNDING, REL_SLACK = 0.0005, 0.02


def card_figures() -> dict[str, tuple[float, float]]:
    """``{method: (feature_distance, mrstft)}`` from the card's ``e1m9_x0`` table."""
    section = CARD.read_text(encoding="utf-8").split("## Re-checked subset", 1)[1]
    rows = re.findall(r"^\| ([\w-]+) \| e1m9_x0 \| ([0-9.]+) \| ([0-9.]+) \|", section, flags=re.M)
    return {name: (float(fd), float(m)) for name, fd, m in rows}


@needs_demo_sources
def test_dmc_full_card_figures_on_e1m9_x0(composer_e1m9_x0_root):
    from mixbridge.models.training.dmc_full import evaluate_dmc_full

    if not CARD.exists() and not WEIGHTS.exists():
        pytest.skip("neither dmc-full's card nor its weights are shipped")
    assert WEIGHTS.exists(), f"{CARD.name} ships without its weights {WEIGHTS.name}"
    figures = card_figures()
    assert set(figures) == {"dmc", "dmc-full"}, figures
    with torch_threads(1):
        result = evaluate_dmc_full(composer_e1m9_x0_root, split="test", refine_steps=0, centre=False)
    (row,) = result["per_excerpt"]
    assert row["id"] == "e1m9_x0"
    for name, (fd_card, m_card) in figures.items():
        fd, m = row[name]["feature_distance"], row[name]["mrstft"]
        assert abs(fd - fd_card) <= ROUNDING + REL_SLACK * fd_card, (name, fd, fd_card)
        assert abs(m - m_card) <= ROUNDING + REL_SLACK * m_card, (name, m, m_card)
