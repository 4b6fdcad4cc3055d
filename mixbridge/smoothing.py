"""The parameter smoother of every streaming processor: a one-pole glide, block by block.

Each block of ``n`` samples, the smoothed parameter vector moves from its value at
the block start toward the target as a one-pole filter of time constant
``smoothing_ms``::

    p_end = target + (p_start - target) * exp(-n / (tau * sample_rate)),  tau = smoothing_ms / 1000

so 63 % of a change is done after ``smoothing_ms`` and 99 % after 4.6 times that.
The factors of consecutive blocks multiply (``exp(-a) exp(-b) = exp(-(a + b))``), so
while the target holds the glide does not depend on the block size. The processor interpolates within the block from
:attr:`ParamSmoother.start` to :attr:`ParamSmoother.current`. The first block after
:meth:`ParamSmoother.reset` jumps to the target (no glide from the defaults).

The glide lands on the target exactly: in floating point, ``target + d * alpha`` rounds
back to the old value once ``d * (1 - alpha)`` is under half a unit in the last place
(float32 at a 1-sample block and 20 ms at 48 kHz: about 480 ulp, ``2.9e-5`` of a
value near 1, short of the target for good), so an element that a block leaves
unchanged while it is off target is set to the target. :attr:`ParamSmoother.settled`
says whether the last block held the parameters constant (start = end = target). The
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
            this, the vector lands on the target exactly (0: no early snap; the glide still
            lands exactly once rounding would stall it, see the module docstring).
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
        #: True when the last block held every parameter constant (start == current == target).
        self.settled = True
        self._alpha: dict[int, float] = {}
        self._fresh = True
        # scratch (never reallocated): |current - target| and the elements a block left unchanged
        self._abs = np.zeros_like(target)
        self._stuck = np.zeros(target.shape, bool)

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
        (no allocation); :attr:`start` holds the value at the block start. An element the
        step leaves unchanged while off target lands on it (rounding would stall it there)."""
        cur = self.current
        self.start[:] = cur
        if self._fresh:
            cur[:] = self.target
            self.start[:] = cur
            self._fresh = False
            self.settled = True
            return
        cur -= self.target  # the distance d (exactly 0 only where current == target)
        np.abs(cur, out=self._abs)
        dist = float(self._abs.max()) if cur.size else 0.0
        if dist == 0.0:
            cur += self.target
            self.settled = True
            return
        self.settled = False
        alpha = self.alpha(n)
        if self.snap_tolerance > 0 and dist * alpha < self.snap_tolerance:
            cur[:] = self.target
            return
        cur *= alpha
        cur += self.target
        np.equal(cur, self.start, out=self._stuck)
        np.copyto(cur, self.target, where=self._stuck)
