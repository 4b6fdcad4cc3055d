"""A stand-in for Ableton Live with AbletonOSC: reads its socket only on a 100 ms tick, from a small buffer.

What it copies from AbletonOSC (github.com/ideoforms/AbletonOSC; facts, not code):

* ``manager.py``: the remote script's ``tick`` runs once per 100 ms (Live's ``schedule_message(1, ...)``),
  and each tick calls ``OSCServer.process``; nothing reads the socket between ticks.
* ``abletonosc/osc_server.py``: ``process`` drains every datagram queued on the non-blocking socket
  (``recvfrom(65536)`` until ``EAGAIN``), parses bundles as well as messages, and answers a getter on the
  getter's own address, to the sender's IP on port 11001. The socket's receive buffer is never set, so it
  is the OS default; a burst larger than the buffer between two ticks is dropped by the kernel, unseen.
  An exception in a handler ends that tick's drain (the rest waits for the next tick).
* ``abletonosc/track.py`` and ``device.py``: getters reply with the indices first (``/live/track/get/volume
  t`` -> ``t, volume``; ``/live/device/get/parameters/value t d`` -> ``t, d, v0, v1, ...``; ``/live/track/get/send
  t s`` -> ``t, s, value`` per the README); ``mute`` is a bool (python-osc sends ``T``/``F``).
* ``abletonosc/song.py`` and ``track.py`` (creation): ``/live/song/create_audio_track i`` calls Live's
  ``Song.create_audio_track(i)`` (``-1``: at the end; the new track has no devices), ``/live/track/set/name t s``
  sets a track's name, ``/live/song/get/num_tracks`` answers ``len(song.tracks)``; a name sent to a track that
  does not exist raises in the handler (an ``IndexError``), which ends that tick's drain.

The buffer defaults to what Linux gives a socket that never sets one (``net.core.rmem_default``, 212992
bytes; the kernel charges each small datagram ~800 bytes, so about 256 fit). Requesting half of it via
``SO_RCVBUF`` gives exactly that, because Linux doubles the request. The peer counts every datagram and
message it read, so a test compares that with what the client sent: the difference is what the kernel dropped.
"""
from __future__ import annotations

import errno
import socket
import struct
import threading
import time

from mixbridge.bridge.osc import OscMessage, decode, encode_message, iter_messages
from mixbridge.bridge.plugin_maps import get_daw_map
from mixbridge.bridge.transport import LOCALHOST

#: AbletonOSC's tick (manager.py: "Called once per 100ms tick").
TICK_S = 0.1
#: Linux's default socket receive buffer (net.core.rmem_default), what AbletonOSC's socket gets there.
LINUX_DEFAULT_RCVBUF_BYTES = 212992

EQ_BANDS = ("Filter On", "Filter Type", "Frequency", "Gain", "Resonance")
#: EQ Eight's parameter names in the order the stand-in lists them (Device On, then 8 bands of set A).
EQ_EIGHT = ["Device On"] + [f"{b} {w} A" for b in range(1, 9) for w in EQ_BANDS]
#: EQ Eight's "Filter Type" value of a bell (the chooser's fourth entry in the Live Reference Manual).
BELL = 3.0
#: Compressor's, deliberately in another order than the map's fallback indices (names must be resolved).
COMPRESSOR = ["Device On", "Ratio", "Threshold", "Attack", "Release", "Knee", "Output Gain"]


def _f32(v: float) -> float:
    return struct.unpack("f", struct.pack("f", float(v)))[0]


class AbletonStandin:
    """Ableton Live + AbletonOSC on 127.0.0.1: tracks with EQ Eight and Compressor, a 100 ms tick.

    Args:
        reply_port: where replies go (AbletonOSC: 11001 on the sender's IP).
        names: the tracks, in Live's order.
        rcvbuf_bytes: the receive buffer the kernel should give the socket (Linux doubles the request, so
            half is requested); ``None`` leaves the OS default.
        tick_s: how often the socket is read.
    """

    def __init__(self, reply_port: int, names=("trk1", "trk2", "Bass"), *,
                 rcvbuf_bytes: int | None = LINUX_DEFAULT_RCVBUF_BYTES, tick_s: float = TICK_S):
        self.reply_port = reply_port
        self.names = list(names)
        self.tick_s = tick_s
        self.state = {i: {"volume": 0.85, "panning": 0.0, "mute": False} for i in range(len(self.names))}
        self.sends = {i: [0.0] for i in range(len(self.names))}
        self.devices = {"EQ Eight": EQ_EIGHT, "Compressor": COMPRESSOR}
        #: The devices on each track, by name (a created track has none).
        self.track_devices = {i: list(self.devices) for i in range(len(self.names))}
        self.created = 0
        dm = get_daw_map("ableton")
        self.ranges: dict[str, dict[str, tuple[float, float]]] = {}
        for d, dname in enumerate(self.devices):
            plug = dm.plugin(d)
            self.ranges[dname] = {n: ((plug.params[n].min, plug.params[n].max) if n in plug.params else (0.0, 1.0))
                                  for n in self.devices[dname]}
        # every parameter a schema value drives starts at the schema default (so a pull of an untouched track
        # is in range); every band on and a bell (not what the schema's bands mean); the rest at the minimum
        self.values = {}
        for t in self.state:
            for d, dn in enumerate(self.devices):
                plug = dm.plugin(d)
                start = {k: v for k, v in plug.values(plug.processor.defaults(), 48000).items() if k not in plug.fixed}
                start.update({n: 1.0 if "Filter On" in n else BELL for n in self.devices[dn] if "Filter " in n})
                self.values[(t, d)] = [float(start.get(n, self.ranges[dn][n][0])) for n in self.devices[dn]]
        self.datagrams = 0
        self.messages = 0
        self.ticks = 0
        #: Datagrams read at each tick (what had queued since the tick before).
        self.per_tick: list[int] = []
        self.errors = 0
        self.sets: list[OscMessage] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if rcvbuf_bytes is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf_bytes // 2)
        self.rcvbuf_bytes = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        self.sock.bind((LOCALHOST, 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ableton-standin", daemon=True)

    # ------------------------------------------------------------------ life cycle
    def __enter__(self) -> AbletonStandin:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()

    def _run(self) -> None:
        due = time.perf_counter()
        while not self._stop.is_set():
            due += self.tick_s
            self._stop.wait(max(0.0, due - time.perf_counter()))
            self.tick()

    def tick(self) -> None:
        """One AbletonOSC ``process()``: drain the socket, handle each datagram; an error ends the drain."""
        self.ticks += 1
        self.per_tick.append(0)
        while True:
            try:
                data, addr = self.sock.recvfrom(65536)
            except OSError as e:
                if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    return
                raise
            self.datagrams += 1
            self.per_tick[-1] += 1
            try:
                for _, m in iter_messages(decode(data)):
                    self.messages += 1
                    reply = self.handle(m)
                    if reply is not None:
                        self.sock.sendto(encode_message(reply), (addr[0], self.reply_port))
            except (IndexError, KeyError, ValueError):
                self.errors += 1
                return

    # ------------------------------------------------------------------ AbletonOSC's address space (the part used)
    def device_name(self, d: int) -> str:
        return list(self.devices)[d]

    def handle(self, m: OscMessage) -> OscMessage | None:
        a = m.args
        if m.address == "/live/song/get/track_names":
            return OscMessage(m.address, tuple(self.names))
        if m.address == "/live/track/get/devices/name":
            return OscMessage(m.address, (a[0], *self.track_devices[a[0]]))
        if m.address == "/live/song/get/num_tracks":
            return OscMessage(m.address, (len(self.names),))
        if m.address == "/live/song/create_audio_track":
            index = len(self.names) if a[0] == -1 else int(a[0])
            if index != len(self.names):
                raise IndexError("the stand-in creates tracks at the end only")
            self.names.append(f"{index + 1}-Audio")  # Live's default name for a new audio track
            self.state[index] = {"volume": 0.85, "panning": 0.0, "mute": False}
            self.sends[index] = [0.0]
            self.track_devices[index] = []
            self.created += 1
            return None
        if m.address == "/live/track/set/name":
            self.sets.append(m)
            self.names[a[0]] = str(a[1])  # IndexError for a track that does not exist, as in Live
            return None
        if m.address == "/live/device/get/parameters/name":
            return OscMessage(m.address, (a[0], a[1], *self.devices[self.device_name(a[1])]))
        if m.address in ("/live/device/get/parameters/min", "/live/device/get/parameters/max"):
            dn = self.device_name(a[1])
            side = 0 if m.address.endswith("min") else 1
            return OscMessage(m.address, (a[0], a[1], *(float(self.ranges[dn][n][side]) for n in self.devices[dn])))
        if m.address == "/live/device/get/parameters/value":
            return OscMessage(m.address, (a[0], a[1], *self.values[(a[0], a[1])]))
        if m.address == "/live/track/get/send":
            return OscMessage(m.address, (a[0], a[1], self.sends[a[0]][a[1]]))
        if m.address.startswith("/live/track/get/"):
            return OscMessage(m.address, (a[0], self.state[a[0]][m.address.rsplit("/", 1)[1]]))
        if m.address == "/live/track/set/send":
            self.sets.append(m)
            self.sends[a[0]][a[1]] = _f32(a[2])
        elif m.address.startswith("/live/track/set/"):
            self.sets.append(m)
            prop = m.address.rsplit("/", 1)[1]
            self.state[a[0]][prop] = bool(a[1]) if prop == "mute" else _f32(a[1])
        elif m.address == "/live/device/set/parameter/value":
            self.sets.append(m)
            lo, hi = self.ranges[self.device_name(a[1])][self.devices[self.device_name(a[1])][a[2]]]
            self.values[(a[0], a[1])][a[2]] = min(max(_f32(a[3]), lo), hi)  # Live clamps to the range
        return None

    def value(self, track: int, device: str, param: str) -> float:
        """The stand-in's current value of one device parameter."""
        d = list(self.devices).index(device)
        return self.values[(track, d)][self.devices[device].index(param)]


def wait_idle(standin: AbletonStandin, settle_s: float = 3 * TICK_S) -> None:
    """Give the stand-in time to read what is still queued (a few ticks)."""
    time.sleep(settle_s)


__all__ = ["AbletonStandin", "TICK_S", "LINUX_DEFAULT_RCVBUF_BYTES", "EQ_EIGHT", "COMPRESSOR", "wait_idle"]
