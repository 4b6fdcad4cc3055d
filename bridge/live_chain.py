"""The live bus's signal path for one block, without JACK: input guard, proxy with bypass fallback,
master chain, output guard.

:class:`LiveChain` processes ``float32 [channels, n]`` blocks (``n <= max_block``) in place of
the JACK process callback's body, so it runs and is tested without a JACK server:

1. non-finite input samples become 0 (the block is counted in ``nonfinite_input_blocks``);
2. the optional proxy (:class:`~mixbridge.export.runtime.StreamingSession` or anything with its
   ``process``/``reset``/``prepare``/``latency_samples``). If it raises or outputs NaN/inf, the
   chain falls back to the dry signal for good (``proxy_failed``; :meth:`LiveChain.set_bypass`
   with ``False`` re-arms it, its state reset) and records ``failure`` for the host to report
   outside the callback. The dry path is delayed by the proxy's ``latency_samples``, so the
   chain's latency stays :attr:`LiveChain.latency_samples` whichever path runs;
3. the streaming master chain (:class:`~mixbridge.plugins.master_bus.StreamingMaster`);
4. a block that is still not finite becomes silence (``output_guard_blocks``), and every sample is
   clipped to full scale (+-1.0).

:meth:`LiveChain.process` never raises on bad audio or a failing proxy and allocates nothing of
its own (numpy view headers aside); attribute writes are its only side effects, so another thread
may read the counters and flags without a lock.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

#: Largest block the chain processes at once (the runtime's and master's block limit).
MAX_BLOCK = 4096
#: Last-stage clip level (digital full scale).
FULL_SCALE = 1.0


class _Delay:
    """A fixed delay of ``delay`` samples for ``[channels, n]`` blocks, preallocated."""

    def __init__(self, channels: int, delay: int, max_block: int) -> None:
        self.delay = int(delay)
        self._ext = np.zeros((channels, self.delay + max_block), np.float32)

    def process(self, x: np.ndarray, n: int) -> np.ndarray:
        if self.delay == 0:
            return x
        d, ext = self.delay, self._ext
        ext[:, d:d + n] = x
        return ext[:, :n]   # history first, then the block: valid until advance()

    def advance(self, n: int) -> None:
        """Shift the history after the block's output has been consumed."""
        if self.delay:
            d, ext = self.delay, self._ext
            ext[:, :d] = ext[:, n:n + d]


class LiveChain:
    """Proxy (optional) then master chain on ``[channels, n]`` float32 blocks, with the guards above.

    Args:
        master: a :class:`~mixbridge.plugins.master_bus.StreamingMaster` for ``channels`` channels.
        proxy: a proxy with the :class:`~mixbridge.export.runtime.StreamingSession` interface, or None.
        channels: audio channels.
        max_block: the largest ``n`` :meth:`process` will be given.
    """

    def __init__(self, master: Any, proxy: Any = None, *, channels: int, max_block: int = MAX_BLOCK) -> None:
        self.master = master
        self.proxy = proxy
        #: The proxy's latency and the chain's (proxy + master), samples.
        self.proxy_latency = int(proxy.latency_samples) if proxy is not None else 0
        self.latency_samples = self.proxy_latency + int(master.latency_samples)
        self._dry = _Delay(channels, self.proxy_latency, max_block)
        self.blocks = 0
        self.nonfinite_input_blocks = 0
        self.output_guard_blocks = 0
        self.proxy_bypassed = False
        self.proxy_failed = False
        #: ``(block, what, error)`` of the last proxy failure, or None.
        self.failure: tuple[int, str, BaseException | None] | None = None
        self._reset_proxy = False

    @property
    def proxy_active(self) -> bool:
        """True while the proxy runs (loaded, not bypassed, not failed)."""
        return self.proxy is not None and not self.proxy_bypassed and not self.proxy_failed

    def prepare(self, sizes: Iterable[int]) -> None:
        """Preallocate the master's and the proxy's buffers for blocks of these sizes (outside the callback)."""
        sizes = list(sizes)
        self.master.prepare(sizes)
        if self.proxy is not None and hasattr(self.proxy, "prepare"):
            self.proxy.prepare(sizes)

    def set_bypass(self, bypass: bool) -> bool:
        """Bypass the proxy or run it again; returns True when that re-armed it after a failure."""
        self.proxy_bypassed = bool(bypass)
        if not self.proxy_bypassed and self.proxy_failed:
            self._reset_proxy = True
            self.proxy_failed = False
            return True
        return False

    def process(self, x: np.ndarray, n: int) -> np.ndarray:
        """One block: ``x`` is ``float32 [channels, n]`` (non-finite samples are zeroed in place); returns
        the output block ``[channels, n]``, finite and within +-:data:`FULL_SCALE` (a view, valid until
        the next call)."""
        self.blocks += 1
        s = float(np.add.reduce(x, axis=None))
        if not math.isfinite(s):
            self.nonfinite_input_blocks += 1
            np.nan_to_num(x, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        y = self._dry.process(x, n)
        proxy = self.proxy
        if proxy is not None and not self.proxy_bypassed and not self.proxy_failed:
            if self._reset_proxy:
                self._reset_proxy = False
                proxy.reset()
            try:
                wet = proxy.process(x)
                s = float(np.add.reduce(wet, axis=None))
                if math.isfinite(s):
                    y = wet
                else:
                    self._fail("output NaN or inf", None)
            except Exception as e:
                self._fail("raised", e)
        out = self.master.process(y)
        self._dry.advance(n)
        s = float(np.add.reduce(out, axis=None))
        if not math.isfinite(s):
            self.output_guard_blocks += 1
            out.fill(0.0)
        np.clip(out, -FULL_SCALE, FULL_SCALE, out=out)
        return out

    def _fail(self, what: str, error: BaseException | None) -> None:
        self.proxy_failed = True
        self.failure = (self.blocks, what, error)
