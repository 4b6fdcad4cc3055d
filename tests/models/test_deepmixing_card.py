"""The shipped ``deepmixing`` weights against their model card: one card figure re-measured on a small subset.

``models/mixers/deepmixing.md`` states, in its "Re-checked subset" table, the time-resolved level RMSE (dB,
:func:`mixbridge.models.evaluation.time_level_errors`) of the shipped mixer on the demo song ``D_E1M9``'s first
excerpt ``e1m9_x0`` (a test-split song), as ``mixbridge evaluate --dataset`` scores it: the card's test table
comes from the same call (``scripts/eval_deepmixing.py test``, :func:`mixbridge.app.evaluate.evaluate_dataset`),
so this test re-checks the code that made the table. The excerpt is the session's ``composer_e1m9_x0`` fixture
(``tests/conftest.py``: rebuilt once with the composer builder, the same excerpt, labels and input loudness as
in the full dataset).

Tolerances: the card prints 2 decimals (half a unit: 0.005); float32 round-off in the features, the LSTMs
and the render between CPUs moves the gains by far less than 0.01 dB (``FLOAT_SLACK``). Retrained weights
without a new card miss by more.
"""
from __future__ import annotations

import re
from pathlib import Path

from tests.support import needs_demo_sources, torch_threads

ROOT = Path(__file__).resolve().parents[2]
CARD = ROOT / "models" / "mixers" / "deepmixing.md"
#: Float32 round-off between builds on a level RMSE (dB).
FLOAT_SLACK = 0.02
#: The card's own rounding (2 decimals).
ROUNDING = 0.005


def card_figure() -> float:
    """The card's ``e1m9_x0`` time-resolved level RMSE of ``deepmixing`` (dB)."""
    section = CARD.read_text(encoding="utf-8").split("## Re-checked subset", 1)[1]
    (value,) = re.findall(r"^\| deepmixing \| e1m9_x0 \| ([0-9.]+) \|", section, flags=re.M)
    return float(value)


@needs_demo_sources
def test_deepmixing_card_figure_on_e1m9_x0(composer_e1m9_x0_root, composer_e1m9_x0):
    from mixbridge.app.evaluate import evaluate_dataset

    want = card_figure()
    with torch_threads(1):
        summary = evaluate_dataset(composer_e1m9_x0_root, "deepmixing", "test", progress=False)
    assert summary["excerpts"] == [composer_e1m9_x0.id]
    got = summary["runs"]["deepmixing"]["time_level_rmse_db"]
    assert abs(got - want) <= ROUNDING + FLOAT_SLACK, (got, want)
