"""The one parameter smoother (:class:`mixbridge.smoothing.ParamSmoother`): closed-form one-pole glides."""
from __future__ import annotations

import math

import numpy as np
import pytest

from mixbridge.smoothing import ParamSmoother

SAMPLE_RATE = 48000
#: float64 round-off over a few hundred multiply-adds.
F64_TOL = 1e-12


def _smoother(**kw) -> ParamSmoother:
    return ParamSmoother(np.zeros(3), sample_rate=SAMPLE_RATE, smoothing_ms=20.0, **kw)


def test_first_block_jumps_then_a_step_moves_one_minus_one_over_e_per_tau() -> None:
    s = _smoother()
    s.target[:] = [1.0, 2.0, -4.0]
    s.advance(64)  # fresh: lands on the target, no glide from the defaults
    np.testing.assert_array_equal(s.current, s.target)
    np.testing.assert_array_equal(s.start, s.target)
    s.target[:] = 0.0
    tau = int(0.020 * SAMPLE_RATE)  # 960 samples
    s.advance(tau)
    np.testing.assert_allclose(s.current, np.array([1.0, 2.0, -4.0]) * math.exp(-1), rtol=F64_TOL)
    np.testing.assert_allclose(s.start, [1.0, 2.0, -4.0], rtol=F64_TOL)


@pytest.mark.parametrize("block", [1, 63, 64, 65, 512])
def test_the_glide_does_not_depend_on_the_block_size(block: int) -> None:
    s = _smoother()
    s.advance(block)
    s.target[:] = 1.0
    n = 4096 // block * block
    for _ in range(n // block):
        s.advance(block)
    np.testing.assert_allclose(s.current, 1.0 - math.exp(-n / (0.020 * SAMPLE_RATE)), rtol=1e-9)


def test_zero_time_constant_reaches_the_target_each_block_and_snap_lands_exactly() -> None:
    s = ParamSmoother(np.zeros(2, np.float32), sample_rate=SAMPLE_RATE, smoothing_ms=0.0)
    s.advance(8)
    s.target[:] = 0.5
    s.advance(8)
    assert s.current.dtype == np.float32 and s.alpha(8) == 0.0
    np.testing.assert_array_equal(s.current, [0.5, 0.5])
    snapping = _smoother(snap_tolerance=1e-9)
    snapping.advance(64)
    snapping.target[:] = 1.0
    for _ in range(200):  # 200 * 512 samples = 107 tau: far below the tolerance
        snapping.advance(512)
    np.testing.assert_array_equal(snapping.current, snapping.target)
    snapping.reset()
    snapping.target[:] = 7.0
    snapping.advance(1)
    np.testing.assert_array_equal(snapping.current, [7.0, 7.0, 7.0])
