"""The bridge's one clock: wait for a ``time.perf_counter`` deadline, and pace sends to a fixed rate.

:func:`sleep_until` sleeps until :data:`SPIN_S` before the deadline, then spins with
``time.sleep(0)`` (which releases the GIL, so receiver threads are not starved):
``time.sleep`` alone overshoots by ~0.1-1 ms on Linux. :class:`Pacer` spaces events
``1 / rate_hz`` apart on that clock (a push's single messages, live MIDI, the automation
rate limit's flush), so a burst never outruns a receiver's socket buffer.
"""
from __future__ import annotations

import time

from .errors import BridgeConfigError

#: Sleep until this long before a deadline, then spin: time.sleep overshoots by ~0.1-1 ms.
SPIN_S = 0.002


def sleep_until(deadline: float) -> None:
    """Wait until ``time.perf_counter() >= deadline`` (seconds): sleep, then spin the last :data:`SPIN_S`."""
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            return
        time.sleep(left - SPIN_S if left > SPIN_S else 0)


class Pacer:
    """Spaces events ``1 / rate_hz`` seconds apart from the moment it is made.

    Raises:
        BridgeConfigError: a rate that is not > 0 Hz.
    """

    def __init__(self, rate_hz: float) -> None:
        if not rate_hz > 0:
            raise BridgeConfigError(f"rate {rate_hz} must be > 0 per second")
        self.gap_s = 1.0 / float(rate_hz)
        self.due = time.perf_counter()

    def wait(self) -> None:
        """Wait until the next event is due (one gap after the previous due time)."""
        self.due += self.gap_s
        sleep_until(self.due)
