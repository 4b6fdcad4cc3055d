"""Layer 2 of the bridge: route decoded OSC feedback to handlers, no sockets.

A :class:`Router` takes raw datagrams (bytes), decodes them with
:mod:`mixbridge.bridge.osc` and calls the handlers whose pattern matches each
message's address. Patterns are addresses in which a ``*`` segment matches any
one segment (``/track/*/volume/db``) and a trailing ``/**`` matches any rest.
Nothing is dropped silently: datagrams that do not parse are counted in
``stats.unparsed`` (with the last error kept in ``stats.last_error``) and passed
to ``on_unparsed``, and messages no handler wants are counted in
``stats.unrouted`` and passed to ``fallback``. While a datagram is dispatched,
``sender`` holds the address it came from (what :meth:`Router.dispatch` was
given), so a handler can reply to it.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import OscParseError
from .osc import OscMessage, decode, iter_messages

Handler = Callable[[OscMessage], None]


@dataclass
class RouterStats:
    """Counters of one router: datagrams, messages, and what could not be used."""

    datagrams: int = 0
    messages: int = 0
    unparsed: int = 0
    unrouted: int = 0
    last_error: str = ""

    def summary(self) -> str:
        """One line: messages and datagrams seen, and what could not be parsed or routed."""
        text = f"{self.messages} messages in {self.datagrams} datagrams"
        if self.unparsed:
            text += f"; {self.unparsed} unparseable datagram(s) (last: {self.last_error})"
        if self.unrouted:
            text += f"; {self.unrouted} message(s) with no handler"
        return text


def address_matches(pattern: str, address: str) -> bool:
    """True if ``address`` matches ``pattern`` (``*`` = one segment, trailing ``**`` = the rest)."""
    p, a = pattern.strip("/").split("/"), address.strip("/").split("/")
    if p and p[-1] == "**":
        return len(a) >= len(p) - 1 and all(x in ("*", y) for x, y in zip(p[:-1], a))
    return len(p) == len(a) and all(x in ("*", y) for x, y in zip(p, a))


@dataclass
class Router:
    """Dispatches datagrams to handlers by address pattern; thread-safe counters.

    Args:
        routes: ``(pattern, handler)`` pairs, tried in order; every match is called.
        fallback: called with each message no route matches (after counting it as unrouted).
        on_unparsed: called with ``(datagram, error text)`` for each datagram that does not parse.
        strict: decode with ``strict=True`` (:func:`~mixbridge.bridge.osc.decode`): an argument cut
            short or bytes after the last one make the datagram unparseable.
    """

    routes: list[tuple[str, Handler]] = field(default_factory=list)
    stats: RouterStats = field(default_factory=RouterStats)
    fallback: Handler | None = None
    on_unparsed: Callable[[bytes, str], None] | None = None
    strict: bool = False
    #: The sender address of the datagram being dispatched (``None`` outside :meth:`dispatch`).
    sender: Any = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, pattern: str, handler: Handler) -> None:
        """Route messages whose address matches ``pattern`` to ``handler`` (see :func:`address_matches`)."""
        self.routes.append((pattern, handler))

    @contextlib.contextmanager
    def routed(self, pattern: str, handler: Handler):
        """Route ``pattern`` to ``handler`` for the ``with`` block only (removed on errors too)."""
        self.add(pattern, handler)
        try:
            yield handler
        finally:
            self.routes.remove((pattern, handler))

    def dispatch_message(self, msg: OscMessage) -> int:
        """Call every matching handler; returns how many matched."""
        hits = 0
        for pattern, handler in self.routes:
            if address_matches(pattern, msg.address):
                handler(msg)
                hits += 1
        with self._lock:
            self.stats.messages += 1
            if not hits:
                self.stats.unrouted += 1
        if not hits and self.fallback is not None:
            self.fallback(msg)
        return hits

    def dispatch(self, datagram: bytes, sender: Any = None) -> list[OscMessage]:
        """Decode one datagram from ``sender`` and route its messages; never raises on bad bytes.

        Returns the decoded messages (``[]`` for a datagram that does not parse).
        """
        with self._lock:
            self.stats.datagrams += 1
        try:
            packet = decode(datagram, strict=self.strict)
        except OscParseError as e:
            with self._lock:
                self.stats.unparsed += 1
                self.stats.last_error = str(e)
            if self.on_unparsed is not None:
                self.on_unparsed(datagram, str(e))
            return []
        msgs = [m for _, m in iter_messages(packet)]
        self.sender = sender
        try:
            for m in msgs:
                self.dispatch_message(m)
        finally:
            self.sender = None
        return msgs


class ReplyCollector:
    """Collects messages matching a pattern until ``done(msg)`` says the reply is complete.

    A handler for :meth:`Router.add`; ``messages`` holds what matched, ``finished`` is set
    once ``done`` returned true.
    """

    def __init__(self, pattern: str = "/**", done: Callable[[OscMessage], bool] | None = None):
        self.pattern = pattern
        self.messages: list[OscMessage] = []
        self._done = done
        self.finished = threading.Event()

    def __call__(self, msg: OscMessage) -> None:
        """Keep ``msg`` if it matches the pattern; set :attr:`finished` when ``done(msg)`` says so."""
        if not address_matches(self.pattern, msg.address):
            return
        self.messages.append(msg)
        if self._done is not None and self._done(msg):
            self.finished.set()
