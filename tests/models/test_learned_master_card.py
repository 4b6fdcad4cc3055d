"""The shipped learned mastering model against its card: one card figure re-measured on a small subset.

``models/masterers/learned.md`` states, in its "Re-checked subset" table, the scores of the shipped
``learned`` masterer (no reference, -14 LUFS, -1 dBTP) on the first item of the benchmark's
independent test set at 8 s (:func:`mixbridge.models.master_bench.independent_items` with
``seconds=8, limit=1``, seed 0: an excerpt of a test-album master, degraded by the bench's own
shelves and transient expansion). The test rebuilds that item, masters it and scores it with
:func:`mixbridge.models.master_metrics.score_master` (the cards' shared check, :mod:`.master_card_check`,
with its tolerances: the card's rounding plus float32 round-off between builds).
"""
from __future__ import annotations

from . import master_card_check as cc

CARD = cc.MASTERERS / "learned.md"
pytestmark = cc.card_marks(CARD, cc.MASTERERS / "learned.json", missing="no shipped learned mastering model")


def test_learned_card_figure_on_the_first_independent_test_item(one_torch_thread):
    row = cc.card_row(CARD, "learned")
    item = cc.card_item()
    cc.assert_matches_card(cc.score_card_item(item, cc.master_with("learned", item)), row, item)
