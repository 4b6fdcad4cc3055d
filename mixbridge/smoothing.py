"""The parameter smoother of every streaming processor: a one-pole glide, block by block.

Each block of ``n`` samples, the smoothed parameter vector moves from its value at
the block start toward the target as a one-pole filter of time constant
``smoothing_ms``::

    p_end = target + (p_start - target) * exp(-n / (tau * sample_rate)),  tau = smoothing_ms / 1000

so 63 % of a change is done after ``smoothing_ms`` and 99 % after 4.6 times that.
The factors of consecutive blocks multiply (``exp(-a) exp(-b) = exp(-(a + b))``), so
while the target holds the glide does not depend on the block size. The processor interpolates within the block from
:attr:`ParamSmoother.start` to :attr:`ParamSmoother.current`. The first block after
:meth:`ParamSmoother.reset` jumps to the target (no glide from the defaults). The
streaming runtime (:mod:`mixbridge.export.runtime`, normalised float32 vectors) and
the master bus (:mod:`mixbridge.plugins.master_bus`, real-unit float64 vectors) both
use it.
"""
from __future__ import annotations

import math

import numpy as np


class ParamSmoother:
    """One-pole smoothing of a parameter vector ``[n_params]`` (any float dtype, kept).

    Args:
        target: the target vector; the smoother keeps this very array as :attr:`target`,
            so the owner sets targets by writing into it (``smoother.target[i] = v``).
        sample_rate: Hz.
        smoothing_ms: the time constant in ms (0: the target is reached at the end of
            each block, a linear ramp over one block).
        snap_tolerance: once every ``|current - target|`` times the block's factor is below
            this, the vector lands on the target exactly (0: never snaps, only converges).
    """

    def __init__(self, target: np.ndarray, *, sample_rate: int, smoothing_ms: float,
                 snap_tolerance: float = 0.0) -> None:
        self.target = target
        #: The smoothed vector at the end of the last block.
        self.current = target.copy()
        #: The smoothed vector at the start of the last block.
        self.start = target.copy()
        self.sample_rate = int(sample_rate)
        self.smoothing_ms = float(smoothing_ms)
        self.snap_tolerance = float(snap_tolerance)
        self._alpha: dict[int, float] = {}
        self._fresh = True

    def reset(self) -> None:
        """Make the next block jump to the target (a fresh start: no glide)."""
        self._fresh = True

    def alpha(self, n: int) -> float:
        """The factor ``exp(-n / (tau * sample_rate))`` of a block of ``n`` samples (0 when ``tau`` is 0)."""
        alpha = self._alpha.get(n)
        if alpha is None:
            tau = self.smoothing_ms * 1e-3 * self.sample_rate
            alpha = math.exp(-n / tau) if tau > 0 else 0.0
            self._alpha[n] = alpha
        return alpha

    def advance(self, n: int) -> None:
        """Move :attr:`current` one block of ``n`` samples toward :attr:`target`, in place
        (no allocation); :attr:`start` holds the value at the block start."""
        cur = self.current
        if self._fresh:
            cur[:] = self.target
            self.start[:] = cur
            self._fresh = False
            return
        self.start[:] = cur
        alpha = self.alpha(n)
        cur -= self.target
        if self.snap_tolerance > 0 and float(np.max(np.abs(cur))) * alpha < self.snap_tolerance:
            cur[:] = self.target
        else:
            cur *= alpha
            cur += self.target
