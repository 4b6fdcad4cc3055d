"""OSC control of the live bus: the bus's addresses on the bridge's own :class:`~mixbridge.bridge.routing.Router`
and :class:`~mixbridge.bridge.transport.OscUdpServer`.

:class:`LiveControl` listens on UDP (127.0.0.1 by default), routes each message to one handler
and applies it to a running :class:`~mixbridge.bridge.live.LiveBus` through the bus's control
methods (``set_master_param``, ``set_proxy_param``, ``set_proxy_bypass``), which only write
plain attributes or post to the master chain's lock-free queue: nothing here blocks or runs in
the JACK process callback. Values are in real units and validated against the schema by the
bus. Nothing is dropped silently: a datagram that does not parse, an unknown address, a message
without exactly one number and a value the bus refuses are each counted in :attr:`invalid` and
reported as a notice; a handler never raises into the receiving thread.

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

from typing import Any

from mixbridge.errors import MixbridgeError

from .errors import BridgeConfigError, LiveBusError
from .osc import OscMessage, encode_message
from .routing import Router
from .transport import LOCALHOST, OscUdpServer

#: Default UDP port of the live bus's OSC input (REAPER uses 8000/9000, AbletonOSC 11000/11001,
#: Ardour 3819: this one collides with none of them).
DEFAULT_OSC_PORT = 9310
#: Addresses the bus answers to (for the "unknown address" notice).
ADDRESSES = ("/mixbridge/param/<processor>/<param>", "/mixbridge/proxy/<processor>/<param>",
             "/mixbridge/proxy/bypass", "/mixbridge/status")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class LiveControl:
    """The OSC control surface of one live bus (see the module docstring).

    Args:
        bus: the :class:`~mixbridge.bridge.live.LiveBus` to control (started or not).
        host: address the UDP socket binds (default 127.0.0.1, loopback only).
        port: UDP port (0 picks a free one; :attr:`port` then holds the one bound).
    """

    def __init__(self, bus: Any, *, host: str = LOCALHOST, port: int = DEFAULT_OSC_PORT) -> None:
        self.bus = bus
        self.host = host
        self.port = port
        #: Messages applied and messages refused (unparseable, unknown, wrong arguments, out of range).
        self.applied = 0
        self.invalid = 0
        self.router = Router(fallback=self._unknown, on_unparsed=lambda _data, err: self._invalid(err))
        self.router.add("/mixbridge/status", self._guard(self._status))
        self.router.add("/mixbridge/proxy/bypass", self._guard(self._bypass))
        self.router.add("/mixbridge/param/*/*", self._guard(self._master_param))
        self.router.add("/mixbridge/proxy/*/*", self._guard(self._proxy_param))
        self._server: OscUdpServer | None = None

    def start(self) -> LiveControl:
        """Bind the socket and start receiving (a notice says so when it is not loopback).

        Raises:
            LiveBusError: the address cannot be bound (port in use, not an IP address).
        """
        if self.host not in _LOOPBACK:
            self.bus.notify(f"OSC: listening on {self.host}, not loopback: any host that reaches it "
                            "can change the master bus")
        try:
            self._server = OscUdpServer(self.port, self.router, record=False, host=self.host)
        except BridgeConfigError as e:
            raise LiveBusError(f"{e} (--osc-port)") from None
        self.port = self._server.port
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop receiving and close the socket (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def handle_datagram(self, data: bytes, sender: Any = None) -> None:
        """Decode one OSC datagram and apply its messages, as the receiving thread does (never raises)."""
        self.router.dispatch(data, sender)

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
        self.bus.notify(f"osc: invalid: {text}")

    def _unknown(self, msg: OscMessage) -> None:
        self._invalid(f"unknown address {msg.address}; use {', '.join(ADDRESSES[:-1])} or {ADDRESSES[-1]}")

    def _number(self, msg: OscMessage) -> float | None:
        if len(msg.args) != 1 or isinstance(msg.args[0], bool) or not isinstance(msg.args[0], (int, float)):
            self._invalid(f"{msg.address} needs one number (int or float), got {msg.typetags or 'no arguments'}")
            return None
        return float(msg.args[0])

    def _status(self, msg: OscMessage) -> None:
        sender, server = self.router.sender, self._server
        if sender is None or server is None:
            return
        bus = self.bus
        reply = OscMessage("/mixbridge/status", (
            int(bus.blocks), int(bus.xruns), int(self.applied), int(self.invalid), int(bus.proxy_active),
            int(bus.latency_samples), int(bus.clipped_samples)))
        server.reply(encode_message(reply), sender)

    def _bypass(self, msg: OscMessage) -> None:
        value = self._number(msg)
        if value is None:
            return
        try:
            self.bus.set_proxy_bypass(bool(value))
        except (MixbridgeError, ValueError) as e:
            self._invalid(f"{msg.address}: {e}")
            return
        self.applied += 1

    def _master_param(self, msg: OscMessage) -> None:
        self._param(msg, self.bus.set_master_param, "param")

    def _proxy_param(self, msg: OscMessage) -> None:
        self._param(msg, self.bus.set_proxy_param, "proxy")

    def _param(self, msg: OscMessage, apply, kind: str) -> None:
        value = self._number(msg)
        if value is None:
            return
        _, _, processor, name = msg.address.strip("/").split("/")
        path = f"{processor}.{name}"
        try:
            applied = apply(path, value)
        except (MixbridgeError, ValueError, KeyError) as e:
            self._invalid(f"{msg.address} {value:g}: {e}")
            return
        self.applied += 1
        self.bus.notify(f"osc: {kind} {path} = {applied:g}")
