"""The shipped learned mixers against their model cards: one card figure re-measured on a small subset.

``models/mixers/dmc.md`` states, besides its test-split table, the figures of the demo song
``D_E1M9``'s first excerpt (``e1m9_x0``, a test-split song): the level RMSE (dB, gains relative to
their mean) and the pan MAE of the ``dmc`` and ``prior`` mixers' decisions against the composer's
labels. The excerpt is rebuilt once per session with the composer builder (the ``composer_e1m9_x0``
fixture of ``tests/conftest.py``: the same excerpt, labels and input loudness as in the full dataset;
the excerpt ranking and the loudness draw depend only on the song, the excerpt index and the seed);
the test runs both shipped mixers on its stems and compares.

Tolerances: the card prints 2 decimals (half a unit: 0.005) and the figures depend on float32
round-off in the features and the network between CPUs and library builds (``FLOAT_SLACK``).
A retrained mixer without a new card, or a broken one, misses by far more.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mixbridge.audio import load_stems
from tests.support import needs_demo_sources, torch_threads

ROOT = Path(__file__).resolve().parents[2]
CARD = ROOT / "models" / "mixers" / "dmc.md"
#: Float32 round-off between builds on a level RMSE (dB) and a pan MAE.
FLOAT_SLACK = 0.02
#: The card's own rounding (2 decimals).
ROUNDING = 0.005



def card_figures() -> dict[str, tuple[float, float]]:
    """``{mixer: (level_rmse_db, pan_mae)}`` from the card's ``e1m9_x0`` table."""
    text = CARD.read_text(encoding="utf-8")
    section = text.split("## Re-checked subset", 1)[1]
    rows = re.findall(r"^\| (\w+) \| e1m9_x0 \| ([0-9.]+) \| ([0-9.]+) \|", section, flags=re.M)
    return {name: (float(level), float(pan)) for name, level, pan in rows}


def label_errors(mixer, excerpt) -> tuple[float, float]:
    """Level RMSE (dB, both sides relative to their mean) and pan MAE of ``mixer`` on ``excerpt``."""
    stems = load_stems(excerpt.stems_dir)
    session = mixer(stems)
    by_name = {t.name: t for t in session.tracks}
    gain = np.array([by_name[n].params["trim"]["gain_db"] + by_name[n].params["fader"]["fader_db"]
                     for n in excerpt.track_names])
    pan = np.array([by_name[n].params["pan"]["pan"] for n in excerpt.track_names])
    # The stored stems share one loudness, so a gain relative to the mean is the balance itself.
    err = (gain - gain.mean()) - (excerpt.target_gain_db - excerpt.target_gain_db.mean())
    return float(np.sqrt(np.mean(err ** 2))), float(np.mean(np.abs(pan - excerpt.target_pan)))


@needs_demo_sources
def test_dmc_and_prior_card_figures_on_e1m9_x0(composer_e1m9_x0):
    from mixbridge.models.mixers import get_mixer

    figures = card_figures()
    assert set(figures) == {"dmc", "prior"}, figures
    excerpt = composer_e1m9_x0
    for name, (level_card, pan_card) in figures.items():
        with torch_threads(1):
            level, pan = label_errors(get_mixer(name), excerpt)
        assert abs(level - level_card) <= ROUNDING + FLOAT_SLACK, (name, level, level_card)
        assert abs(pan - pan_card) <= ROUNDING + FLOAT_SLACK, (name, pan, pan_card)
