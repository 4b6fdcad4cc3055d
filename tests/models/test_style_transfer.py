"""Mixing style transfer by inference-time optimisation (models/style_transfer.py).

The reference is the builtin console's mix of the test stems under a known session (tests/models/
test_reverse.py: gains -6..+8 dB, pans, EQ); starting from a neutral session of the same stems,
:func:`match_reference` must cut the Diff-MST feature distance by at least
:data:`MIN_DISTANCE_DROP` and move the track balance toward the reference session's.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mixbridge.models.style_transfer import match_reference  # noqa: E402
from mixbridge.schema import CHANNEL_STRIP, MASTER_BUS  # noqa: E402
from mixbridge.session import Master, Session, Track  # noqa: E402
from tests.models.test_reverse import GAINS_DB, NAMES, SAMPLE_RATE, builtin_mix, make_stems  # noqa: E402

#: The refined distance must be at most this fraction of the start's.
MIN_DISTANCE_DROP = 0.5
#: The balance error (RMS of mean-removed gain differences, dB) must fall to this fraction of the start's,
#: and the fitted gains must correlate with the reference session's at least this much. The features are
#: global statistics of the master (the EQs can absorb part of a balance change), so the balance is only
#: partly identified by them: measured 0.87 of the start's error and a correlation of 0.96 at 60 steps.
BALANCE_IMPROVEMENT, MIN_GAIN_CORRELATION = 0.95, 0.8
STEPS = 60


def neutral_session() -> Session:
    tracks = [Track(n, f"{n}.wav", CHANNEL_STRIP.defaults()) for n in NAMES]
    m = MASTER_BUS.defaults()
    return Session(SAMPLE_RATE, tracks, Master(m), {"mixer": "mono_sum"})


def balance_error_db(gains) -> float:
    g = np.asarray(gains, float) - np.mean(gains)
    r = np.asarray(GAINS_DB) - np.mean(GAINS_DB)
    return float(np.sqrt(np.mean((g - r) ** 2)))


@pytest.fixture(scope="module")
def matched():
    torch.set_num_threads(1)
    stems = make_stems(0)
    ref = builtin_mix(stems)
    return match_reference(stems, ref, SAMPLE_RATE, neutral_session(), steps=STEPS, progress=False)


def test_distance_falls(matched):
    st = matched.provenance["style_transfer"]
    assert st["feature_distance_after"] <= MIN_DISTANCE_DROP * st["feature_distance_before"], st
    assert st["stereo_features"] is True


def test_balance_moves_toward_the_reference(matched):
    gains = [t.params["fader"]["fader_db"] + t.params["trim"]["gain_db"] for t in matched.tracks]
    assert balance_error_db(gains) <= BALANCE_IMPROVEMENT * balance_error_db([0.0] * len(NAMES)), gains
    assert np.corrcoef(gains, GAINS_DB)[0, 1] >= MIN_GAIN_CORRELATION, gains


def test_zero_steps_keep_the_session_and_mono_reference_is_noted():
    torch.set_num_threads(1)
    stems = make_stems(0)
    ref = builtin_mix(stems).mean(axis=0, keepdims=True)
    init = neutral_session()
    out = match_reference(stems, ref, SAMPLE_RATE, init, steps=0, progress=False, reference_rate=48000)
    st = out.provenance["style_transfer"]
    assert [t.params for t in out.tracks] == [t.params for t in init.tracks]
    assert st["feature_distance_after"] == st["feature_distance_before"] and st["stereo_features"] is False
    assert any("mono reference" in n for n in st["notices"]) and any("resampled" in n for n in st["notices"])
