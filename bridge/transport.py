"""Layer 3 of the bridge: OSC over UDP sockets, with timeouts.

:class:`OscUdpClient` sends messages and bundles to a DAW and collects its
replies through a :class:`~mixbridge.bridge.routing.Router`; a query that gets
no answer within ``timeout_s`` raises
:class:`~mixbridge.bridge.errors.DawUnreachableError` naming the host, port and
the setting to check. :class:`OscUdpServer` receives datagrams on 127.0.0.1 in a
background thread (a local peer for tests, benchmarks and the fake DAWs); it
records each datagram's arrival time from ``time.perf_counter``.

UDP goes to 127.0.0.1 by default. Ardour's OSC surface listens on all
interfaces (DESIGN.md §4), so mixbridge only ever addresses it on loopback
unless the user names another host.
"""
from __future__ import annotations

import ipaddress
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from .errors import BridgeConfigError, DawUnreachableError
from .osc import IMMEDIATELY, OscBundle, OscMessage, encode_bundle, encode_message
from .routing import Router

#: Default time to wait for the first reply to a query: a local DAW answers in
#: milliseconds (DESIGN.md §4), so 2 s means "not there", and stays "a few seconds".
DEFAULT_QUERY_TIMEOUT_S = 2.0
#: A multi-datagram reply is complete once the DAW has been silent this long.
DEFAULT_QUIET_S = 0.15
LOCALHOST = "127.0.0.1"
#: The largest UDP payload over IPv4 (65535 - 8 UDP - 20 IP header bytes).
MAX_DATAGRAM_BYTES = 65507
#: Socket receive buffer, bytes: room for a DAW's whole feedback burst (~40 messages per strip).
RCVBUF_BYTES = 4 * 1024 * 1024


def check_endpoint(host: str, port: int) -> tuple[str, int]:
    """Validate an IPv4/IPv6 literal or ``localhost`` and a UDP port.

    Raises:
        BridgeConfigError: the host is not an IP literal or the port is outside 1..65535.
    """
    if host == "localhost":
        host = LOCALHOST
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise BridgeConfigError(f"host {host!r} is not an IP address; give one such as 127.0.0.1") from None
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise BridgeConfigError(f"--port {port!r} is outside 1..65535; give the DAW's OSC receive port")
    return host, port


def check_timeout_s(timeout_s: float) -> float:
    """``timeout_s`` as a float if it is a finite number of seconds > 0.

    Raises:
        BridgeConfigError: zero, negative, NaN or infinite (one line naming the value and the fix).
    """
    if not (isinstance(timeout_s, (int, float)) and not isinstance(timeout_s, bool)
            and 0 < timeout_s < float("inf")):
        raise BridgeConfigError(f"--timeout-s {timeout_s!r} must be a number of seconds > 0 (default "
                                f"{DEFAULT_QUERY_TIMEOUT_S:g}): how long to wait for the DAW's answer")
    return float(timeout_s)


class OscUdpClient:
    """Sends OSC to ``host:port`` from a local socket and receives replies on it.

    The socket binds 127.0.0.1 when the DAW is on loopback (so replies sent to
    the sender's port arrive), otherwise all interfaces. Use as a context manager.
    """

    def __init__(self, host: str = LOCALHOST, port: int = 3819, *, local_port: int = 0,
                 timeout_s: float = DEFAULT_QUERY_TIMEOUT_S, router: Router | None = None):
        self.host, self.port = check_endpoint(host, port)
        self.timeout_s = check_timeout_s(timeout_s)
        if not (isinstance(local_port, int) and 0 <= local_port <= 65535):
            raise BridgeConfigError(f"--reply-port {local_port!r} is outside 0..65535 (0 picks a free port)")
        self.router = router or Router()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
        loopback = ipaddress.ip_address(self.host).is_loopback
        bind_host = (LOCALHOST if family == socket.AF_INET else "::1") if loopback else ""
        try:
            self.sock.bind((bind_host, local_port))
        except OSError as e:
            self.sock.close()
            raise BridgeConfigError(f"cannot bind UDP {bind_host or '*'}:{local_port}: {e.strerror}; "
                                    "choose another --reply-port") from None
        self.sent = 0
        self._next_burst_s = 0.0  # perf_counter time before which send_paced sends no further burst

    @property
    def local_port(self) -> int:
        """The UDP port this client sends from and receives replies on."""
        return self.sock.getsockname()[1]

    def __enter__(self) -> OscUdpClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()

    def send_raw(self, datagram: bytes) -> None:
        """Send one encoded OSC packet.

        Raises:
            BridgeConfigError: larger than one UDP datagram (:data:`MAX_DATAGRAM_BYTES`).
        """
        if len(datagram) > MAX_DATAGRAM_BYTES:
            raise BridgeConfigError(f"OSC packet of {len(datagram)} bytes exceeds UDP's {MAX_DATAGRAM_BYTES}")
        self.sock.sendto(datagram, (self.host, self.port))
        self.sent += 1

    def send(self, msg: OscMessage) -> None:
        """Send one message."""
        self.send_raw(encode_message(msg))

    def send_many(self, msgs: Iterable[OscMessage]) -> int:
        """Send messages one datagram each, unpaced; returns how many."""
        n = 0
        for m in msgs:
            self.send(m)
            n += 1
        return n

    def send_bundle(self, msgs: Sequence[OscMessage | OscBundle], timetag: int = IMMEDIATELY) -> None:
        """Send one bundle with NTP ``timetag`` (:func:`~mixbridge.bridge.osc.ntp_timetag`; default immediately)."""
        self.send_raw(encode_bundle(msgs, timetag))

    def pump(self, duration_s: float) -> int:
        """Receive and route datagrams for ``duration_s``; returns how many arrived."""
        return self.receive(lambda: False, duration_s, quiet_s=None)

    def receive(self, done: Callable[[], bool], timeout_s: float, quiet_s: float | None = DEFAULT_QUIET_S) -> int:
        """Route incoming datagrams until ``done()``, ``timeout_s`` passes, or (after at
        least one datagram) the peer stays silent for ``quiet_s``. Returns the count."""
        deadline = time.monotonic() + timeout_s
        n = 0
        while not done():
            now = time.monotonic()
            wait = deadline - now
            if quiet_s is not None and n:
                wait = min(wait, quiet_s)
            if wait <= 0:
                break
            ready, _, _ = select.select([self.sock], [], [], wait)
            if not ready:
                if quiet_s is not None and n:
                    break
                continue
            try:
                data, _addr = self.sock.recvfrom(MAX_DATAGRAM_BYTES)
            except ConnectionRefusedError:
                continue  # ICMP port unreachable from an earlier send; keep waiting
            self.router.dispatch(data)
            n += 1
        return n

    def query(self, msgs: Sequence[OscMessage], done: Callable[[], bool], *, what: str,
              timeout_s: float | None = None, quiet_s: float | None = DEFAULT_QUIET_S) -> int:
        """Send ``msgs`` and receive until ``done()``; raise if nothing came back.

        Raises:
            DawUnreachableError: no datagram arrived within ``timeout_s`` seconds.
        """
        timeout = self.timeout_s if timeout_s is None else timeout_s
        for m in msgs:
            self.send(m)
        n = self.receive(done, timeout, quiet_s)
        if n == 0 and not done():
            raise self.unreachable_error(what, timeout)
        return n

    def unreachable_error(self, what: str, timeout_s: float) -> DawUnreachableError:
        """The error for "no reply to ``what`` within ``timeout_s``", naming the host, port and what to check
        (a DAW profile's client adds the DAW's own hint)."""
        return DawUnreachableError(
            f"no reply to {what} from {self.host}:{self.port} within {timeout_s:g} s; "
            "check that the DAW is running, its OSC control surface is enabled on that port, "
            "and it replies to this machine"
        )

    def send_paced(self, msgs: Sequence[OscMessage], *, burst: int, gap_s: float) -> int:
        """Send ``msgs`` one datagram each, ``burst`` at a time, bursts ``gap_s`` seconds apart, routing
        replies that arrive in the gaps. Returns how many were sent.

        A receiver that reads its socket only every so often (AbletonOSC: every 100 ms) must find room in
        its socket buffer for everything sent between two reads; ``burst / gap_s`` bounds that.

        Raises:
            BridgeConfigError: ``burst`` < 1 or ``gap_s`` < 0.
        """
        if burst < 1 or not gap_s >= 0:
            raise BridgeConfigError(f"paced sending needs burst >= 1 and gap_s >= 0, got {burst} and {gap_s}")
        for i in range(0, len(msgs), burst):
            left = self._next_burst_s - time.perf_counter()  # the pace holds across calls, too
            if left > 0:
                self.receive(lambda: False, left, quiet_s=None)
            start = time.perf_counter()
            for m in msgs[i:i + burst]:
                self.send(m)
            self._next_burst_s = max(self._next_burst_s, start) + gap_s  # late: no catching up
        return len(msgs)


@dataclass
class OscUdpServer:
    """A background UDP receiver bound to 127.0.0.1 by default (port 0 picks a free one).

    Every datagram is routed through ``router`` (with its sender address, so handlers can
    reply through :meth:`reply`) and, if given, passed to ``on_datagram(data, sender)`` (a
    fake DAW replies from there). ``arrivals`` keeps ``(perf_counter_s, datagram)`` pairs when
    ``record`` is true. ``host`` is an IP literal or ``localhost``; another address than
    loopback lets any host that reaches it send here.

    Raises:
        BridgeConfigError: ``host`` is not an IP address, or the port cannot be bound (in use).
    """

    port: int = 0
    router: Router = field(default_factory=Router)
    on_datagram: Callable[[bytes, tuple], None] | None = None
    record: bool = True
    arrivals: list = field(default_factory=list)
    host: str = LOCALHOST

    def __post_init__(self) -> None:
        self.host = LOCALHOST if self.host == "localhost" else self.host
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            raise BridgeConfigError(f"host {self.host!r} is not an IP address; give one such as 127.0.0.1") from None
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
        try:
            self.sock.bind((self.host, self.port))
        except OSError as e:
            self.sock.close()
            raise BridgeConfigError(f"cannot listen for OSC on {self.host}:{self.port}: {e.strerror}; "
                                    "choose another port (0 picks a free one)") from None
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"osc-server-{self.port}", daemon=True)

    def start(self) -> OscUdpServer:
        """Start the receiving thread; returns ``self``."""
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.sock], [], [], 0.05)
            if not ready:
                continue
            try:
                data, addr = self.sock.recvfrom(MAX_DATAGRAM_BYTES)
            except OSError:
                return
            t = time.perf_counter()
            if self.record:
                self.arrivals.append((t, data))
            self.router.dispatch(data, addr)
            if self.on_datagram is not None:
                self.on_datagram(data, addr)

    def reply(self, datagram: bytes, addr: tuple) -> None:
        """Send ``datagram`` to ``addr`` from this server's socket (a reply to a sender)."""
        self.sock.sendto(datagram, addr)

    def stop(self) -> None:
        """Stop the thread (within about 2 s) and close the socket."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        self.sock.close()

    def __enter__(self) -> OscUdpServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that is free right now (for tests and headless DAWs)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOCALHOST, 0))
        return s.getsockname()[1]
