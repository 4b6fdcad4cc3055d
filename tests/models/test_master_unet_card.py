"""The shipped mel U-Net baseline against its card: one card figure re-measured on a small subset.

``models/masterers/unet.md`` states, in its "Re-checked subset" table, the scores of the shipped ``unet``
(:class:`mixbridge.models.master_unet.UNetMasterer`: the U-Net and Griffin-Lim, then the one master bus as
gain + true-peak limiter, the benchmark's ``unet`` row) at -14 LUFS, -1 dBTP on the first item of the
benchmark's independent test set at 8 s, the learned card's item (:mod:`.master_card_check`). The test
rebuilds the item, masters it and scores it with :func:`mixbridge.models.master_metrics.score_master`.

Tolerances: the cards' shared ones (:data:`.master_card_check.FLOAT_SLACK` + the card's rounding). The 32
float32 Griffin-Lim iterations are the most round-off-sensitive step; 1 and 2 torch threads (another
reduction order) moved the MR-STFT by 4e-5 and the tonal error by 2e-6 dB, far inside them.
"""
from __future__ import annotations

from . import master_card_check as cc

CARD = cc.MASTERERS / "unet.md"
pytestmark = cc.card_marks(CARD, cc.MASTERERS / "unet.json", missing="no shipped mel U-Net")


def test_unet_card_figure_on_the_first_independent_test_item(one_torch_thread):
    from mixbridge.models.master_unet import UNetMasterer

    row = cc.card_row(CARD, "unet")
    item = cc.card_item()
    out = UNetMasterer().master(item.input, item.sample_rate, target_lufs=cc.TARGET_LUFS, ceiling_dbtp=cc.CEILING_DBTP)
    cc.assert_matches_card(cc.score_card_item(item, out.audio), row, item)
