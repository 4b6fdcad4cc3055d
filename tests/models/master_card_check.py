"""The one check of a mastering model's card against the model: a card figure re-measured on a small subset.

Each card ``models/masterers/NAME.md`` states, in its "Re-checked subset" table, the scores of its shipped
model (no reference, -14 LUFS, -1 dBTP) on one item of the benchmark's independent test set at 8 s
(:func:`mixbridge.models.master_bench.independent_items` with ``seconds=8``, seed 0, the first item unless the
card names another: an excerpt of a test-album master, degraded by the bench's own shelves and transient
expansion), one row
``| NAME | ITEM | LUFS error | MR-STFT | tonal error dB | over ceiling |``. A card test rebuilds that item
(:func:`card_item`), masters it with the model and checks the scores of
:func:`mixbridge.models.master_metrics.score_master` against the row (:func:`assert_matches_card`).

Tolerances: the cards print 3 decimals for MR-STFT and 2 for dB (half a unit, :data:`ROUNDING`), and the
figures depend on float32 round-off in the features, the networks and the renders between CPUs and library
builds (:data:`FLOAT_SLACK`). A retrained model or a changed target table without a new card misses by far more.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MASTERERS = ROOT / "models" / "masterers"
#: The card item's settings, as the cards state them.
CARD_SECONDS, CARD_SEED, TARGET_LUFS, CEILING_DBTP = 8.0, 0, -14.0, -1.0
#: Float32 round-off between builds on a tonal error (dB), an MR-STFT distance and a LUFS error.
FLOAT_SLACK = {"tonal_error_db": 0.02, "mrstft": 0.005, "lufs_error_lu": 0.02}
#: The cards' own rounding.
ROUNDING = {"tonal_error_db": 0.005, "mrstft": 0.0005, "lufs_error_lu": 0.005}


def have_test_masters() -> bool:
    """True when the catalogue's test album (the Debian ``warzone2100-music`` package) is installed."""
    from mixbridge.errors import MixbridgeError
    from mixbridge.plugins.datagen.masters import master_files

    try:
        return bool(master_files(split="test"))
    except (OSError, MixbridgeError):
        return False


def card_marks(card: Path, model_file: Path, *, missing: str) -> list:
    """The ``pytestmark`` of a card test: skip (``missing``) without the ``card`` or the shipped ``model_file``,
    and without the test album the items are cut from."""
    return [pytest.mark.skipif(not model_file.exists() or not card.exists(), reason=missing),
            pytest.mark.skipif(not have_test_masters(),
                               reason="needs the Debian warzone2100-music test album (setup.sh)")]


def card_row(card: Path, model: str) -> dict:
    """The ``model`` row of the "Re-checked subset" table of ``card``: ``id``, ``lufs_error_lu``, ``mrstft``,
    ``tonal_error_db`` and ``over_ceiling``."""
    text = card.read_text(encoding="utf-8")
    assert "## Re-checked subset" in text, f"{card.name} has no 'Re-checked subset' section"
    section = text.split("## Re-checked subset", 1)[1]
    m = re.search(rf"^\| {re.escape(model)} \| (\S+) \| ([0-9.]+) \| ([0-9.]+) \| ([0-9.]+) \| (\d+) \|", section,
                  flags=re.M)
    assert m, f"the {model} row of {card.name}'s re-checked table is missing"
    return {"id": m.group(1), "lufs_error_lu": float(m.group(2)), "mrstft": float(m.group(3)),
            "tonal_error_db": float(m.group(4)), "over_ceiling": int(m.group(5))}


def card_item(index: int = 0):
    """A card's item: ``independent_items(seconds=8, seed=0, limit=index + 1)[index]`` (the first by default)."""
    from mixbridge.models import master_bench as mb

    return mb.independent_items(seconds=CARD_SECONDS, seed=CARD_SEED, limit=index + 1)[index]


def score_card_item(item, output):
    """:func:`~mixbridge.models.master_metrics.score_master` of ``output`` against the item's original master."""
    from mixbridge.models.master_metrics import score_master

    return score_master(output, item.master, item.sample_rate, target_lufs=TARGET_LUFS, ceiling_dbtp=CEILING_DBTP)


def master_with(name: str, item):
    """The item mastered by the registered masterer ``name`` (no reference) through the one master bus."""
    from mixbridge.models.masterers import get_masterer
    from mixbridge.plugins.mastering import master

    plan = get_masterer(name)(item.input, item.sample_rate, target_lufs=TARGET_LUFS, ceiling_dbtp=CEILING_DBTP)
    return master(item.input, plan.params, item.sample_rate).audio


def assert_matches_card(score: dict, row: dict, item, *, slack: dict | None = None,
                        rounding: dict | None = None) -> None:
    """The item is the row's, nothing is over the ceiling, and each figure is the card's within ``slack`` +
    ``rounding`` (default :data:`FLOAT_SLACK` and :data:`ROUNDING`; a card that prints more digits passes its own)."""
    slack, rounding = slack or FLOAT_SLACK, rounding or ROUNDING
    assert item.id == row["id"]
    assert int(score["over_ceiling"]) == row["over_ceiling"] == 0
    for key in ("lufs_error_lu", "mrstft", "tonal_error_db"):
        assert abs(score[key] - row[key]) <= slack[key] + rounding[key], (key, score[key], row[key])
