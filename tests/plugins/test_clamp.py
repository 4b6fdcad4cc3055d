"""A value a backend cannot render stops the render, unless ``--clamp`` moves it and lists it."""
from __future__ import annotations

import numpy as np
import pytest

from mixbridge.errors import ParamRangeError
from mixbridge.schema import EQ
from tests.support import needs_vst

SAMPLE_RATE = 48000
#: ZamEQ2's peak is Orfanidis's design: at 6 kHz, Q 0.5, +6 dB it is 0.49 dB off the RBJ band at 16 kHz.
WIDE_PEAK = {"peak3_gain_db": 6.0, "peak3_freq_hz": 6000.0, "peak3_q": 0.5}


@pytest.mark.vst
@needs_vst
def test_vst_refuses_a_value_it_cannot_render_and_clamps_it_on_request():
    from mixbridge.plugins.backend import get_backend
    from mixbridge.plugins.contract import EQ_MAGNITUDE_TOL_DB
    from mixbridge.plugins.map_laws import zameq2_peak_deviation_db

    x = np.random.default_rng(0).standard_normal((1, 4800)).astype(np.float32) * 0.1
    params = EQ.defaults() | WIDE_PEAK
    with pytest.raises(ParamRangeError, match=r"track 'pad'.*peak3_q: 0.5 at 6000 Hz.*--clamp") as info:
        get_backend("vst", SAMPLE_RATE).process("eq", x, params, label="track 'pad'")
    lo, hi = info.value.reachable
    assert info.value.param == "peak3_q" and lo > 0.5 and hi == pytest.approx(EQ.param("peak3_q").max)
    be = get_backend("vst", SAMPLE_RATE, clamp=True)
    y = be.process("eq", x, params, label="track 'pad'")
    assert y.shape == x.shape and np.all(np.isfinite(y))
    assert any(f"peak3_q = 0.5 clamped to {lo:g}" in n for n in be.notices), be.notices
    assert be.value_changes  # datagen refuses such examples
    assert zameq2_peak_deviation_db(6000.0, lo, 6.0, SAMPLE_RATE)[0] <= EQ_MAGNITUDE_TOL_DB


def test_builtin_renders_the_whole_schema_range_so_clamp_changes_nothing():
    from mixbridge.plugins.backend import get_backend

    x = np.random.default_rng(0).standard_normal((1, 4800)).astype(np.float32) * 0.1
    params = EQ.defaults() | WIDE_PEAK
    a = get_backend("builtin", SAMPLE_RATE).process("eq", x, params)
    be = get_backend("builtin", SAMPLE_RATE, clamp=True)
    np.testing.assert_array_equal(be.process("eq", x, params), a)
    assert be.notices == []
