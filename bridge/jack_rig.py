"""A named dummy JACK server and a loopback rig around a JACK client: play a known signal in, record what
comes out, sample-aligned on JACK's frame clock.

Used by the live-bus tests and by ``scripts/bench_live.py``; useful to anyone measuring a JACK
client (latency, loudness, callback cost) without a sound card.

:func:`dummy_server` starts ``jackd -n NAME -S -t 4000 -d dummy -r RATE -p PERIOD`` and stops it on exit.
``-S`` (synchronous mode) makes the server wait for every client each period: on a shared 2-core machine a
Python client misses some deadlines, and in JACK2's default asynchronous mode the period a client misses
reaches the next client as a stale buffer (measured: 256 wrong samples per such xrun; MIDI events of that
period can be lost). Synchronous, a late period is late, not wrong. ``-t 4000`` (ms) keeps a slow period
from getting a client thrown out.

:class:`LoopbackRig` is a player client and a recorder client; both read the frame time of each period,
so the recording lines up with the signal sample for sample whatever the scheduling.

:func:`osc_flood` floods a bus's OSC port from another process (the control's load test and benchmark).

:func:`dull_loop` is the quiet, dull mix the adaptive-mastering measurements play (a master model must
lift and brighten it).
"""
from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import LiveBusError

#: Server settings of :func:`dummy_server` (the live tests' and the benchmarks').
DEFAULT_SAMPLE_RATE = 48000
DEFAULT_PERIOD = 256
#: ``jackd -t``: how long the server waits for a client's period before throwing it out, ms.
CLIENT_TIMEOUT_MS = 4000
#: How long :func:`dummy_server` waits for the server to accept a client, s.
START_TIMEOUT_S = 20.0

#: :func:`dull_loop`'s loudness (LUFS) and the corner of its low-pass (Hz).
DULL_LOOP_LUFS = -28.0
DULL_LOOP_HIGH_CUT_HZ = 2500.0

_counter = itertools.count()


def dull_loop(seconds: float = 4.0, seed: int = 0, *, sample_rate: int = DEFAULT_SAMPLE_RATE,
              lufs: float = DULL_LOOP_LUFS, high_cut_hz: float = DULL_LOOP_HIGH_CUT_HZ) -> np.ndarray:
    """A quiet, dull, loopable mix: float32 ``[2, seconds * sample_rate]``.

    A kick on each beat (120 bpm), a snare on beats 2 and 4, a bass line, a chord and noise hats,
    low-passed at ``high_cut_hz`` (4th-order Butterworth) and scaled to ``lufs`` integrated
    (:func:`mixbridge.loudness.integrated_lufs`). Rendered three loops long and cut to the middle one,
    so the filter's state wraps and the loop plays without a click.
    """
    from scipy.signal import butter, sosfilt

    from ..loudness import integrated_lufs

    n = int(seconds * sample_rate)
    t = np.arange(3 * n) / sample_rate
    rng = np.random.default_rng(seed)
    beat = (t % 0.5) / 0.5
    kick = np.sin(2 * np.pi * (50 + 60 * np.exp(-beat * 30)) * t) * np.exp(-beat * 12)
    bass = 0.4 * np.sin(2 * np.pi * np.where((t % 2) < 1, 55.0, 73.4) * t)
    chord = sum(0.15 * np.sin(2 * np.pi * f * t + i) for i, f in enumerate((261.6, 329.6, 392.0, 523.3)))
    hats = 0.3 * rng.standard_normal(t.size) * np.exp(-((t % 0.25) / 0.25) * 25)
    snare = 1.5 * rng.standard_normal(t.size) * np.exp(-(((t + 0.5) % 1.0) / 1.0) * 40)   # on beats 2 and 4
    x = np.stack([kick + bass + chord + hats + snare, kick + bass + 0.8 * chord + 0.7 * hats + snare])
    x = sosfilt(butter(4, high_cut_hz, fs=sample_rate, output="sos"), x, axis=1)[:, n:2 * n]  # the middle loop
    x *= 10 ** ((lufs - integrated_lufs(x, sample_rate)) / 20)
    return x.astype(np.float32)


def _jack():
    try:
        import jack
    except (ImportError, OSError) as e:  # JACK-Client missing, or libjack missing (OSError)
        raise LiveBusError(f"the JACK rig needs JACK-Client and libjack: pip install JACK-Client, "
                           f"apt-get install jackd2 ({e})") from None
    return jack


@contextlib.contextmanager
def dummy_server(name: str | None = None, *, sample_rate: int = DEFAULT_SAMPLE_RATE, period: int = DEFAULT_PERIOD,
                 synchronous: bool = True, start_timeout_s: float = START_TIMEOUT_S) -> Iterator[str]:
    """Run a named JACK server on the dummy backend for the ``with`` block; yields its name.

    Args:
        name: the server's name (``jackd -n``); default ``mixbridge-<pid>-<n>``, unique in this process.
        sample_rate: Hz (``-r``). period: frames per period (``-p``).
        synchronous: ``-S`` (see the module docstring); ``False`` runs JACK2's asynchronous default.
        start_timeout_s: how long to wait for the server to accept a client.

    Raises:
        LiveBusError: jackd is not installed, exits at start-up, or accepts no client in time.
    """
    jack = _jack()
    if shutil.which("jackd") is None:
        raise LiveBusError("jackd is not installed: apt-get install jackd2")
    name = name or f"mixbridge-{os.getpid()}-{next(_counter)}"
    cmd = ["jackd", "-n", name, *(["-S"] if synchronous else []), "-t", str(CLIENT_TIMEOUT_MS), "-d", "dummy",
           "-r", str(int(sample_rate)), "-p", str(int(period))]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            if proc.poll() is not None:
                raise LiveBusError(f"{' '.join(cmd)} exited with status {proc.returncode} at start-up; is a server "
                                   f"named {name!r} already running?")
            try:
                jack.Client("mb-probe", servername=name, no_start_server=True).close()
                break
            except jack.JackOpenError:
                if time.monotonic() > deadline:
                    raise LiveBusError(f"jackd {name!r} accepted no client within {start_timeout_s:g} s") from None
                time.sleep(0.1)
        yield name
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung server
            proc.kill()
            proc.wait(timeout=5)


class LoopbackRig:
    """A player client and a recorder client, connected around a client under test.

    The player writes the signal from the period in which :meth:`play` takes effect (``start_frame``, a
    JACK frame time), then zeros (or loops it); the recorder stores what it receives at
    ``frame_time - start_frame`` in ``recording`` (float32 ``[channels, capacity_s * sample_rate]``),
    ``recorded`` samples so far. Both run in the same JACK cycle as the client under test.

    Raises:
        LiveBusError: JACK-Client or libjack missing; ``jack.JackOpenError`` when the server is not running.
    """

    def __init__(self, server: str, channels: int = 2, capacity_s: float = 10.0) -> None:
        jack = _jack()
        self.channels = channels
        self.player = jack.Client("mb-test-player", servername=server, no_start_server=True)
        self.recorder = jack.Client("mb-test-recorder", servername=server, no_start_server=True)
        self.sample_rate = int(self.player.samplerate)
        self.outs = [self.player.outports.register(f"out_{i + 1}") for i in range(channels)]
        self.ins = [self.recorder.inports.register(f"in_{i + 1}") for i in range(channels)]
        self.signal = np.zeros((channels, 0), np.float32)
        self.loop = False
        self.start_frame: int | None = None
        self._armed = False
        self.pos = 0
        self.recording = np.zeros((channels, int(capacity_s * self.sample_rate)), np.float32)
        self.recorded = 0
        #: Xruns the server reported to the player. JACK notifies every active client of each xrun, and
        #: the rig is active before the client under test starts and after it stops, so this bounds its count.
        self.xruns = 0
        self.player.set_process_callback(self._play)
        self.recorder.set_process_callback(self._record)
        self.player.set_xrun_callback(self._on_xrun)
        self.player.activate()
        self.recorder.activate()

    def _on_xrun(self, delayed_usecs):
        self.xruns += 1

    def _play(self, frames):
        outs = [p.get_array() for p in self.outs]
        if self._armed and self.start_frame is None:
            self.start_frame = self.player.last_frame_time
        n_sig = self.signal.shape[1]
        for a in outs:
            a.fill(0.0)
        if self.start_frame is None or n_sig == 0:
            return
        start = self.pos
        if self.loop:
            idx = (np.arange(start, start + frames) % n_sig)
            for i, a in enumerate(outs):
                a[:] = self.signal[i, idx]
        elif start < n_sig:
            m = min(frames, n_sig - start)
            for i, a in enumerate(outs):
                a[:m] = self.signal[i, start:start + m]
        self.pos += frames

    def _record(self, frames):
        if self.start_frame is None:
            return
        offset = self.recorder.last_frame_time - self.start_frame
        if offset < 0 or offset + frames > self.recording.shape[1]:
            return
        for i, p in enumerate(self.ins):
            self.recording[i, offset:offset + frames] = p.get_array()
        self.recorded = max(self.recorded, offset + frames)

    def connect(self, client: str) -> None:
        """Connect the player to ``client:in_1..N`` and ``client:out_1..N`` to the recorder."""
        for i in range(self.channels):
            self.player.connect(self.outs[i], f"{client}:in_{i + 1}")
            self.recorder.connect(f"{client}:out_{i + 1}", self.ins[i])

    def play(self, signal: np.ndarray, loop: bool = False) -> None:
        """Play ``signal`` (``[channels, samples]``) from the next period; ``loop`` repeats it."""
        self.signal = np.ascontiguousarray(signal, dtype=np.float32)
        self.loop = loop
        self._armed = True

    def wait_recorded(self, n: int, timeout_s: float) -> None:
        """Wait until ``n`` samples are recorded.

        Raises:
            TimeoutError: fewer than ``n`` within ``timeout_s`` seconds (names how many came).
        """
        deadline = time.monotonic() + timeout_s
        while self.recorded < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"JACK recorded {self.recorded} of {n} samples within {timeout_s:.0f} s")
            time.sleep(0.05)

    def close(self) -> None:
        """Deactivate and close both clients (never raises)."""
        for c in (self.player, self.recorder):
            try:
                c.deactivate()
                c.close()
            except Exception:
                pass

    def __enter__(self) -> LoopbackRig:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class LiveRun:
    """What :func:`run_live_bus` measured.

    ``recording``: float32 ``[2, samples]``, the bus's output from the first period of the signal;
    ``callback_ms`` and ``late_ms``: each callback's wall time and how late it started in its period
    (JACK's frames since cycle start), ms, the run's last ``seconds`` (oldest first); ``summary``: the bus's
    :class:`~mixbridge.bridge.live.LiveSummary` at stop; ``messages``: the bus's notices; ``xruns``: the rig's
    count (bounds the bus's, see :class:`LoopbackRig`).
    """

    recording: np.ndarray
    callback_ms: np.ndarray
    late_ms: np.ndarray
    summary: Any
    messages: list[str]
    xruns: int


def run_live_bus(server: str, master_params: dict, *, signal: np.ndarray, seconds: float, loop: bool = True,
                 client_name: str = "mb-live-rig", master_model: Any = None, slack_s: float = 30.0) -> LiveRun:
    """Start a :class:`~mixbridge.bridge.live.LiveBus` on ``server`` (no OSC), play ``signal`` (``[2, samples]``,
    looped) through it for ``seconds``, record its output, stop it.

    Args:
        master_params: the bus's master chain, nested schema params (``{"limiter": {"ceiling_dbtp": -1.0}}``).
        master_model: a :class:`~mixbridge.bridge.live_master.MasterModelSettings`, or ``None`` (the fixed chain).
        slack_s: extra seconds to wait for the recording on a loaded machine.

    Raises:
        TimeoutError: the recording did not reach ``seconds`` within ``seconds + slack_s``.
        Whatever :meth:`LiveBus.start` raises (no server, a bad session).
    """
    from .live import LiveBus

    rig = LoopbackRig(server, capacity_s=seconds + 2)
    bus = LiveBus(master_params, jack_server=server, client_name=client_name, osc_port=None, master_model=master_model)
    try:
        bus.start()
        rig.connect(client_name)
        rig.play(signal, loop=loop)
        n = int(seconds * rig.sample_rate)
        rig.wait_recorded(n, seconds + slack_s)
        end = rig.recorded
        times, late = bus.callback_times_ms(last=n // int(rig.player.blocksize))
        messages = bus.poll_messages()
    finally:
        summary = bus.stop()
        rig.close()
    return LiveRun(rig.recording[:, :end].copy(), times, late, summary, messages, rig.xruns)


def _flood_datagrams() -> tuple[bytes, list[bytes]]:
    """The gain message's address and tag (its float follows), and the malformed datagrams :func:`osc_flood`
    sends in turn: a float tag without its bytes, and bypass values the control refuses (NaN, 0.5, -1)."""
    import struct

    def pad(b: bytes) -> bytes:
        return b + b"\0" * (4 - len(b) % 4)

    def msg(address: str, tags: str, data: bytes = b"") -> bytes:
        return pad(address.encode()) + pad(tags.encode()) + data

    bad = [msg("/mixbridge/param/gain/gain_db", ",f"),
           msg("/mixbridge/proxy/bypass", ",f", struct.pack(">f", float("nan"))),
           msg("/mixbridge/proxy/bypass", ",f", struct.pack(">f", 0.5)),
           msg("/mixbridge/proxy/bypass", ",i", struct.pack(">i", -1))]
    return pad(b"/mixbridge/param/gain/gain_db") + pad(b",f"), bad


def osc_flood(port: int, messages: int = 10_000, malformed_every: int = 10, host: str = "127.0.0.1") -> int:
    """Send ``messages`` OSC datagrams to ``host:port`` as fast as one process can: gain changes
    (``/mixbridge/param/gain/gain_db``, -6 .. -15 dB), every ``malformed_every``-th one malformed (see
    :func:`_flood_datagrams`). Hand-encoded bytes, so the malformed ones are exactly malformed. Run it in
    another process (``python -m mixbridge.bridge.jack_rig flood PORT [MESSAGES] [EVERY]``) so the flood
    does not share the bus's interpreter lock. Returns how many malformed ones it sent."""
    import socket
    import struct

    head, bad = _flood_datagrams()
    sent_bad = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i in range(messages):
            if i % malformed_every == malformed_every - 1:
                d = bad[(i // malformed_every) % len(bad)]
                sent_bad += 1
            else:
                d = head + struct.pack(">f", -6.0 - (i % 37) * 0.25)
            s.sendto(d, (host, port))
    return sent_bad


def flood_command(port: int, messages: int = 10_000, malformed_every: int = 10) -> list[str]:
    """The command line that runs :func:`osc_flood` in a new Python process."""
    import sys

    return [sys.executable, "-m", "mixbridge.bridge.jack_rig", "flood", str(port), str(messages), str(malformed_every)]


if __name__ == "__main__":  # python -m mixbridge.bridge.jack_rig flood PORT [MESSAGES] [EVERY]
    import sys

    if len(sys.argv) < 3 or sys.argv[1] != "flood":
        sys.exit("usage: python -m mixbridge.bridge.jack_rig flood PORT [MESSAGES] [MALFORMED_EVERY]")
    counts = [int(a) for a in sys.argv[3:5]] + [10_000, 10][len(sys.argv[3:5]):]
    osc_flood(int(sys.argv[2]), messages=counts[0], malformed_every=counts[1])
