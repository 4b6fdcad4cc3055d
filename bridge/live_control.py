"""OSC control of the live bus: parse, validate and coalesce on a receiving thread; the audio callback
only takes the latest validated set.

:class:`LiveControl` listens on UDP (127.0.0.1 by default) on its own receiving thread and routes
each message through the bridge's :class:`~mixbridge.bridge.routing.Router` with strict decoding
(:func:`~mixbridge.bridge.osc.decode` ``strict=True``: a type tag without its bytes, e.g. ``,f``
with no data, is refused, never applied as a made-up 0.0). Everything per message happens on
that thread, never in the JACK process callback:

1. **Parse and validate.** A datagram that does not parse, an unknown address, a message without
   exactly one finite number, a ``bypass`` that is not exactly 0 or 1, and a value the bus refuses
   (:meth:`~mixbridge.bridge.live.LiveBus.check_master_param`: the schema's ranges) are each
   counted in :attr:`LiveControl.invalid` and reported (rate-limited, below).
2. **Coalesce.** A valid master change goes into a pending set keyed by parameter, latest value
   wins (superseded values are counted in :attr:`LiveControl.coalesced`).
3. **Forward once per period.** The pending set is posted to the master chain's lock-free queue
   (:meth:`~mixbridge.bridge.live.LiveBus.post_master_params`) at most once per JACK period (when
   the bus's ``blocks`` counter moved since the last post, or after :data:`STALL_S` without one),
   so the callback drains at most one value per parameter per period, whatever arrives.
4. **Share the interpreter.** The thread works for at most :data:`BUDGET_FRACTION` of a period at a
   time, then sleeps until the callback has run its next period: in CPython the callback needs the
   GIL, and a thread that parses a flood without pause would make it wait (measured before this
   design: 19-27 xruns in 8 s under a 10 000-message flood against 1-5 idle).

Proxy parameters go straight to the proxy's ``set_params`` (which validates and writes its target
array, no queue); bypass writes a flag. Notices (each applied change, each refusal) go through a
:class:`RateLimitedLog` (a burst of :data:`LOG_BURST` lines, then :data:`LOG_PER_S` per second, the
rest counted and reported as suppressed) to the bus's notice queue, which the command line prints
from its main thread. Datagrams the kernel dropped because the socket buffer was full are counted
in :attr:`LiveControl.dropped` (Linux ``SO_RXQ_OVFL``), so nothing is lost without a count.

Addresses (docs/live.md):

* ``/mixbridge/param/<processor>/<param> value`` -- the master chain: ``eq``, ``compressor``,
  ``gain/gain_db``, ``limiter``, and ``loudness/target_lufs`` (shifts the gain by the change of
  target, from a session's solved gain);
* ``/mixbridge/proxy/<processor>/<param> value`` -- the proxy's parameters;
* ``/mixbridge/proxy/bypass 0|1`` -- bypass the proxy, or re-arm it after a failure;
* ``/mixbridge/status`` -- replies to the sender with ``/mixbridge/status`` and the int32s
  ``blocks xruns osc_applied osc_invalid proxy_active latency_samples clipped_samples``.
"""
from __future__ import annotations

import ipaddress
import math
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from mixbridge.errors import MixbridgeError

from .errors import LiveBusError
from .osc import OscMessage, encode_message
from .routing import Router
from .transport import LOCALHOST, MAX_DATAGRAM_BYTES, RCVBUF_BYTES

#: Default UDP port of the live bus's OSC input (REAPER uses 8000/9000, AbletonOSC 11000/11001,
#: Ardour 3819: this one collides with none of them).
DEFAULT_OSC_PORT = 9310
#: Addresses the bus answers to (for the "unknown address" notice).
ADDRESSES = ("/mixbridge/param/<processor>/<param>", "/mixbridge/proxy/<processor>/<param>",
             "/mixbridge/proxy/bypass", "/mixbridge/status")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: Share of a JACK period the receiving thread may hold the interpreter before it pauses.
BUDGET_FRACTION = 0.35
#: Period assumed before the bus reports one (a 256-sample period at 48 kHz), seconds.
DEFAULT_PERIOD_S = 256 / 48000
#: Longest pause waiting for the callback's next period; also how long a pending change waits for
#: a period that does not come (JACK stalled or the bus not started) before it is posted anyway.
STALL_S = 0.1
#: Poll step while pausing for the next period, seconds (each poll holds the interpreter for microseconds).
PAUSE_POLL_S = 0.0005
#: Rate limit of the notices: a burst of this many lines, then this many per second.
LOG_BURST = 20
LOG_PER_S = 2.0
#: Real-time priority of the receiving thread (SCHED_FIFO; JACK's threads run at 10 and above by default).
RECEIVER_RT_PRIORITY = 1
#: Linux socket option that attaches the socket's cumulative kernel drop count to each datagram.
SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)
_CMSG_SPACE = socket.CMSG_SPACE(4)


def _raise_priority() -> str:
    """Run the calling thread (the receiver) at the lowest real-time priority, below JACK's threads.

    The callback waits for the interpreter lock while the receiver holds it; at normal priority
    the receiver can be preempted by any busy process while it holds the lock, and the callback
    then waits for that process's time slice (priority inversion). At ``SCHED_FIFO`` priority 1
    only real-time threads preempt it, and its duty cycle is bounded by :data:`BUDGET_FRACTION`.
    Returns what was done, for the summary; without the right (``ulimit -r``) it stays as it is.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(RECEIVER_RT_PRIORITY))
        return f"SCHED_FIFO priority {RECEIVER_RT_PRIORITY}"
    except (AttributeError, OSError) as e:
        return f"normal priority ({getattr(e, 'strerror', None) or e})"


class RateLimitedLog:
    """A token bucket in front of a line sink: ``burst`` lines at once, then ``per_s`` per second.

    :meth:`allow` says whether a line may go out now (so the caller formats only those);
    refused lines are counted and reported in one line (``"... N notices suppressed"``) as soon
    as a token is free again (:meth:`flush`). Not thread-safe: one writer thread.
    """

    def __init__(self, sink: Callable[[str], None], *, burst: int = LOG_BURST, per_s: float = LOG_PER_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.sink, self.burst, self.per_s, self.clock = sink, int(burst), float(per_s), clock
        self.tokens = float(burst)
        self.suppressed = 0
        self.suppressed_total = 0
        self._t = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self._t) * self.per_s)
        self._t = now

    def allow(self) -> bool:
        """Take a token if one is free (True: the caller sends its line with :meth:`send`)."""
        self._refill()
        if self.tokens >= 1.0 and not self.suppressed:
            self.tokens -= 1.0
            return True
        if self.tokens >= 2.0:  # report what was suppressed first, then this line
            self.flush()
            self.tokens -= 1.0
            return True
        self.suppressed += 1
        self.suppressed_total += 1
        return False

    def send(self, line: str) -> None:
        """Send a line :meth:`allow` let through."""
        self.sink(line)

    def say(self, line: str) -> bool:
        """:meth:`allow` then :meth:`send`; returns whether the line went out."""
        if self.allow():
            self.sink(line)
            return True
        return False

    def flush(self) -> None:
        """Report the suppressed count when a token is free (call it now and then)."""
        if not self.suppressed:
            return
        self._refill()
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            self.sink(f"osc: {self.suppressed} notices suppressed (at most {self.burst} at once, then "
                      f"{self.per_s:g} per second); the counts are in the summary and in /mixbridge/status")
            self.suppressed = 0


class LiveControl:
    """The OSC control surface of one live bus (see the module docstring).

    Args:
        bus: the :class:`~mixbridge.bridge.live.LiveBus` to control (started or not): it provides
            ``notify``, ``check_master_param``, ``post_master_params``, ``set_proxy_param``,
            ``set_proxy_bypass`` and the counters ``blocks``, ``xruns``, ``latency_samples``,
            ``clipped_samples``, ``proxy_active``, and optionally ``block_size``/``sample_rate``.
        host: address the UDP socket binds (default 127.0.0.1, loopback only).
        port: UDP port (0 picks a free one; :attr:`port` then holds the one bound).
    """

    def __init__(self, bus: Any, *, host: str = LOCALHOST, port: int = DEFAULT_OSC_PORT) -> None:
        self.bus = bus
        self.host = host
        self.port = port
        #: Datagrams received; messages applied; messages refused (unparseable, unknown, wrong
        #: arguments, out of range); master values superseded before they were posted; datagrams the
        #: kernel dropped (socket buffer full); batches posted to the master chain.
        self.received = 0
        self.applied = 0
        self.invalid = 0
        self.coalesced = 0
        self.dropped = 0
        self.posts = 0
        self.log = RateLimitedLog(bus.notify)
        self.router = Router(fallback=self._unknown, on_unparsed=lambda _data, err: self._invalid(err), strict=True)
        self.router.add("/mixbridge/status", self._guard(self._status))
        self.router.add("/mixbridge/proxy/bypass", self._guard(self._bypass))
        self.router.add("/mixbridge/param/*/*", self._guard(self._master_param))
        self.router.add("/mixbridge/proxy/*/*", self._guard(self._proxy_param))
        self._pending: dict[str, float] = {}
        self._posted_at_block: int | None = None
        self._posted_at = 0.0
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._drops_seen = 0
        #: The receiving thread's scheduling (set when it starts; see ``_raise_priority``).
        self.realtime = "not started"

    # ------------------------------------------------------------------ socket and thread
    def start(self) -> LiveControl:
        """Bind the socket and start the receiving thread (a notice says so when it is not loopback).

        Raises:
            LiveBusError: the address cannot be bound (port in use, not an IP address).
        """
        if self.host not in _LOOPBACK:
            self.bus.notify(f"OSC: listening on {self.host}, not loopback: any host that reaches it "
                            "can change the master bus")
        host = LOCALHOST if self.host == "localhost" else self.host
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise LiveBusError(f"OSC host {self.host!r} is not an IP address; give one such as 127.0.0.1 "
                               "(--osc-host)") from None
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
            except OSError:  # not Linux: kernel drops are not counted
                pass
            sock.bind((host, self.port))
        except OSError as e:
            sock.close()
            raise LiveBusError(f"cannot listen for OSC on {self.host}:{self.port}: {e.strerror}; choose another "
                               "port (--osc-port, 0 picks a free one)") from None
        sock.setblocking(False)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"live-osc-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop receiving, post what is still pending and close the socket (idempotent)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            thread.join(timeout=2)
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
        self._post(force=True)
        self.log.flush()

    @property
    def address(self) -> tuple | None:
        """The bound socket's address (``(host, port)``), or None when not listening."""
        return self._sock.getsockname() if self._sock is not None else None

    def handle_datagram(self, data: bytes, sender: Any = None) -> None:
        """Decode one OSC datagram and validate its messages, as the receiving thread does (never raises);
        master changes are posted by the next :meth:`flush` (or the thread's next period)."""
        self.received += 1
        self.router.dispatch(data, sender)

    def flush(self) -> None:
        """Post the pending master changes now (tests, and :meth:`stop`)."""
        self._post(force=True)

    def _period_s(self) -> float:
        rate, block = getattr(self.bus, "sample_rate", 0), getattr(self.bus, "block_size", 0)
        return block / rate if rate and block else DEFAULT_PERIOD_S

    def _run(self) -> None:
        sock = self._sock
        assert sock is not None, "started by start()"
        self.realtime = _raise_priority()
        self.bus.notify(f"osc: receiving thread at {self.realtime}")
        used, window_end = 0.0, time.perf_counter()
        while not self._stop.is_set():
            period = self._period_s()
            try:
                ready, _, _ = select.select([sock], [], [], period)
            except (OSError, ValueError):  # closed under us
                return
            start = time.perf_counter()
            if start >= window_end:  # a new period: a new budget
                used, window_end = 0.0, start + period
            budget = BUDGET_FRACTION * period
            while ready:
                try:
                    data, anc, _flags, addr = sock.recvmsg(MAX_DATAGRAM_BYTES, _CMSG_SPACE)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    return
                self._note_drops(anc)
                self.handle_datagram(data, addr)
                now = time.perf_counter()
                if used + (now - start) >= budget:  # this period's share is spent
                    self._post()
                    self._pause(period)
                    if self._stop.is_set():
                        return
                    start = time.perf_counter()
                    used, window_end = 0.0, start + period
            used += time.perf_counter() - start
            self._post()
            self.log.flush()

    def _note_drops(self, ancillary: list) -> None:
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_RXQ_OVFL and len(data) >= 4:
                total = struct.unpack("=I", data[:4])[0]
                if total > self._drops_seen:
                    new = total - self._drops_seen
                    self.dropped += new
                    self._drops_seen = total
                    if self.log.allow():
                        self.log.send(f"osc: the kernel dropped {new} datagram(s): the socket buffer was full "
                                      f"({self.dropped} so far); send fewer messages per second")

    def _pause(self, period: float) -> None:
        """Sleep until the callback has run its next period (or :data:`STALL_S`): the GIL is free meanwhile."""
        start = getattr(self.bus, "blocks", 0)
        until = time.perf_counter() + min(STALL_S, 2 * period)
        while getattr(self.bus, "blocks", 0) == start and time.perf_counter() < until and not self._stop.is_set():
            time.sleep(PAUSE_POLL_S)

    def _post(self, force: bool = False) -> None:
        """Post the pending master changes, at most once per period of the bus (see the module docstring)."""
        if not self._pending:
            return
        blocks = getattr(self.bus, "blocks", 0)
        now = time.perf_counter()
        if not force and blocks == self._posted_at_block and now - self._posted_at < STALL_S:
            return
        items, self._pending = list(self._pending.items()), {}
        try:
            self.bus.post_master_params(items)
        except Exception as e:  # validated already; a bus that stopped meanwhile
            self._invalid(f"posting {len(items)} master change(s): {e}")
            return
        self._posted_at_block, self._posted_at = blocks, now
        self.posts += 1

    # ------------------------------------------------------------------ handlers
    def _guard(self, handler):
        def guarded(msg: OscMessage) -> None:
            try:
                handler(msg)
            except Exception as e:  # a bug in a handler must not kill the receiving thread
                self._invalid(f"{msg.address}: {e}")
        return guarded

    def _invalid(self, text: str) -> None:
        self.invalid += 1
        if self.log.allow():
            self.log.send(f"osc: invalid: {text}")

    def _unknown(self, msg: OscMessage) -> None:
        self._invalid(f"unknown address {msg.address}; use {', '.join(ADDRESSES[:-1])} or {ADDRESSES[-1]}")

    def _number(self, msg: OscMessage) -> float | None:
        """The message's one finite number, or None (counted as invalid)."""
        if len(msg.args) != 1 or isinstance(msg.args[0], bool) or not isinstance(msg.args[0], (int, float)):
            self._invalid(f"{msg.address} needs one number (int or float), got {msg.typetags or 'no arguments'}")
            return None
        value = float(msg.args[0])
        if not math.isfinite(value):
            self._invalid(f"{msg.address} {value}: the value must be a finite number")
            return None
        return value

    def _status(self, msg: OscMessage) -> None:
        sender, sock = self.router.sender, self._sock
        if sender is None or sock is None:
            return
        bus = self.bus
        reply = OscMessage("/mixbridge/status", (
            int(bus.blocks), int(bus.xruns), int(self.applied), int(self.invalid), int(bus.proxy_active),
            int(bus.latency_samples), int(bus.clipped_samples)))
        try:
            sock.sendto(encode_message(reply), sender)
        except OSError as e:
            self._invalid(f"/mixbridge/status: cannot reply to {sender}: {e}")

    def _bypass(self, msg: OscMessage) -> None:
        value = self._number(msg)
        if value is None:
            return
        if value not in (0.0, 1.0):
            self._invalid(f"{msg.address} {value:g}: bypass takes 0 (run the proxy) or 1 (bypass it) only")
            return
        try:
            self.bus.set_proxy_bypass(value == 1.0)
        except (MixbridgeError, ValueError) as e:
            self._invalid(f"{msg.address}: {e}")
            return
        self.applied += 1

    def _path(self, msg: OscMessage) -> str:
        _, _, processor, name = msg.address.strip("/").split("/")
        return f"{processor}.{name}"

    def _master_param(self, msg: OscMessage) -> None:
        value = self._number(msg)
        if value is None:
            return
        path = self._path(msg)
        try:
            checked = self.bus.check_master_param(path, value)
        except (MixbridgeError, ValueError, KeyError) as e:
            self._invalid(f"{msg.address} {value:g}: {e}")
            return
        if self._pending.pop(path, None) is not None:
            self.coalesced += 1
        self._pending[path] = value  # re-inserted last: the order of the latest changes is kept
        self.applied += 1
        if self.log.allow():
            self.log.send(f"osc: param {path} = {checked:g}")

    def _proxy_param(self, msg: OscMessage) -> None:
        value = self._number(msg)
        if value is None:
            return
        path = self._path(msg)
        try:
            applied = self.bus.set_proxy_param(path, value)
        except (MixbridgeError, ValueError, KeyError) as e:
            self._invalid(f"{msg.address} {value:g}: {e}")
            return
        self.applied += 1
        if self.log.allow():
            self.log.send(f"osc: proxy {path} = {applied:g}")

