"""The live bus: ``mixbridge live``, streaming mastering (and an exported proxy) in a JACK client.

:class:`LiveBus` is a JACK client (JACK-Client) with ``channels`` input and output
ports (``in_1``.., ``out_1``..). In the JACK process callback each period runs:

1. the input copied from the ports into a preallocated ``[channels, frames]``
   float32 buffer; non-finite input samples become 0 (counted);
2. the optional exported proxy, :class:`~mixbridge.export.runtime.StreamingSession`
   (onnxruntime, 1 thread, IOBinding buffers). If it raises or outputs NaN/inf,
   the bus falls back to bypass for good (until ``/mixbridge/proxy/bypass 0``
   re-arms it): the callback only sets a flag, and :meth:`LiveBus.poll_messages`
   (outside the callback) says so. The bypass path is delayed by the proxy's
   ``latency_samples`` so the reported latency stays true;
3. the streaming master chain, :class:`~mixbridge.plugins.master_bus.StreamingMaster`
   (EQ -> bus compressor -> gain -> true-peak look-ahead limiter to ``ceiling_dbtp``,
   with its own sample-peak guard);
4. a last guard: a block that is still not finite is replaced by silence
   (counted) and every sample is clipped to full scale (+-1.0).

The callback never raises (everything is caught and counted; the output is then
silence), never blocks (parameter changes arrive through a lock-free deque and
plain attribute writes) and allocates only numpy view headers and the few
block-sized arrays of scipy's filter kernels and onnxruntime's binding.

**Latency** ``latency_samples = proxy latency + master latency`` (81 samples at
48 kHz with the default 1.5 ms look-ahead) is reported to JACK as port latency
ranges through libjack's latency callback (:mod:`mixbridge.bridge.live_jack`;
JACK-Client 0.5.7 does not wrap that API). **Xruns** are counted with JACK-Client's
``set_xrun_callback``.

**OSC** (a UDP thread bound to 127.0.0.1 by default), values in real units,
validated against the schema; invalid messages are counted and reported, never
raised in the callback:

* ``/mixbridge/param/<processor>/<param> value`` -- the master chain:
  ``eq``, ``compressor``, ``gain/gain_db``, ``limiter``, and ``loudness/target_lufs``
  (shifts the gain by the change of target, from a session's solved gain);
* ``/mixbridge/proxy/<processor>/<param> value`` -- the proxy's parameters;
* ``/mixbridge/proxy/bypass 0|1`` -- bypass the proxy, or re-arm it after a failure;
* ``/mixbridge/status`` -- replies to the sender with ``/mixbridge/status`` and
  ``blocks xruns osc_applied osc_invalid proxy_active latency_samples clipped_samples``.

:func:`run_live` starts a bus, prints its notices while it runs, and stops it on
SIGINT/SIGTERM (or after ``duration_s``) with a summary: blocks processed, xruns,
callback times. This module never imports torch.
"""
from __future__ import annotations

import math
import select
import signal
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, TextIO

import numpy as np

from mixbridge.errors import MixbridgeError

from .errors import BridgeConfigError, OscParseError
from .osc import OscMessage, decode, encode_message, iter_messages

#: Default UDP port of the live bus's OSC input (REAPER uses 8000/9000, AbletonOSC 11000/11001,
#: Ardour 3819: this one collides with none of them).
DEFAULT_OSC_PORT = 9310
DEFAULT_CLIENT_NAME = "mixbridge-live"
#: Largest chunk the chain processes at once (the runtime's and master's block limit).
MAX_BLOCK = 4096
#: Last-stage clip level (digital full scale).
FULL_SCALE = 1.0
#: OSC datagrams buffered per receive; the socket's receive buffer, bytes.
OSC_RCVBUF_BYTES = 1 << 20
#: Notices kept for :meth:`LiveBus.poll_messages` between polls.
MAX_PENDING_NOTICES = 256


class LiveBusError(RuntimeError, MixbridgeError):
    """The live bus cannot start: no JACK server, a sample-rate or channel mismatch, a busy OSC port."""


@dataclass
class LiveSummary:
    """What a live run did (counts since start; times in ms)."""

    client_name: str
    server_name: str | None
    sample_rate: int
    block_size: int
    latency_samples: int
    blocks: int = 0
    frames: int = 0
    xruns: int = 0
    callback_mean_ms: float = 0.0
    callback_max_ms: float = 0.0
    callback_cpu_mean_ms: float = 0.0
    callback_errors: int = 0
    osc_applied: int = 0
    osc_invalid: int = 0
    proxy: str = "none"
    nonfinite_input_blocks: int = 0
    output_guard_blocks: int = 0
    clipped_samples: int = 0
    notices: list[str] = field(default_factory=list)

    @property
    def block_ms(self) -> float:
        return 1e3 * self.block_size / self.sample_rate

    def text(self) -> str:
        seconds = self.frames / self.sample_rate if self.sample_rate else 0.0
        load = self.callback_mean_ms / self.block_ms if self.block_ms else 0.0
        cpu_load = self.callback_cpu_mean_ms / self.block_ms if self.block_ms else 0.0
        return "\n".join([
            f"live summary: {self.blocks} blocks ({seconds:.2f} s of audio) at {self.sample_rate} Hz, "
            f"{self.block_size}-sample periods ({self.block_ms:.2f} ms)",
            f"  xruns: {self.xruns}",
            f"  callback: mean {self.callback_mean_ms:.3f} ms, max {self.callback_max_ms:.3f} ms "
            f"({load:.3f} of a period on average); CPU time mean {self.callback_cpu_mean_ms:.3f} ms "
            f"({cpu_load:.3f} of a core); errors caught: {self.callback_errors}",
            f"  latency: {self.latency_samples} samples ({1e3 * self.latency_samples / self.sample_rate:.2f} ms)",
            f"  proxy: {self.proxy}",
            f"  OSC: {self.osc_applied} applied, {self.osc_invalid} invalid",
            f"  guards: {self.nonfinite_input_blocks} blocks with non-finite input, "
            f"{self.output_guard_blocks} non-finite output blocks silenced, "
            f"{self.clipped_samples} samples clipped at the ceiling",
        ])


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

    def reset(self) -> None:
        self._ext.fill(0.0)


class LiveBus:
    """The live bus as a JACK client (see the module docstring).

    Args:
        master_params: live master chain parameters (:data:`~mixbridge.plugins.master_bus.MASTER_RENDER`,
            nested or flat, real units); ``None`` takes the schema defaults (a flat EQ,
            a ratio-1 compressor, 0 dB gain, a -1 dBTP limiter).
        reference: ``{"gain_db", "target_lufs"}`` so ``loudness.target_lufs`` can be set live.
        artifact: an exported ONNX proxy to run before the master chain.
        proxy: an already built proxy with the :class:`StreamingSession` interface (tests).
        proxy_params: the proxy's initial parameters, real units (``{"compressor.threshold_db": -20}``).
        channels: audio channels (ports ``in_1..``, ``out_1..``).
        client_name: JACK client name.
        jack_server: JACK server name (``jackd -n NAME``); ``None`` is the default server.
        osc_port: UDP port for OSC (0 picks a free one; ``None`` disables OSC).
        osc_host: address the OSC socket binds (default 127.0.0.1: loopback only).
        lookahead_ms, smoothing_ms: see :class:`~mixbridge.plugins.master_bus.StreamingMaster`.
        auto_connect: connect the physical capture ports to the inputs and the outputs to the
            physical playback ports.
        notices: messages to report at start (e.g. from :func:`master_params_from_session`).
        source_sample_rate: the session's sample rate, Hz; a notice says so when JACK runs at another.
        provider: onnxruntime provider for an artifact (default CPU: a GPU round trip per
            64-256-sample period costs more than the proxy; ``None`` picks CUDA when available).
    """

    def __init__(self, master_params: Mapping[str, Any] | None = None, *, reference: Mapping[str, float] | None = None,
                 artifact: str | Path | None = None, proxy: Any = None,
                 proxy_params: Mapping[str, Any] | None = None, channels: int = 2,
                 client_name: str = DEFAULT_CLIENT_NAME, jack_server: str | None = None,
                 osc_port: int | None = DEFAULT_OSC_PORT, osc_host: str = "127.0.0.1",
                 lookahead_ms: float | None = None, smoothing_ms: float | None = None,
                 auto_connect: bool = False, notices: tuple[str, ...] | list[str] = (),
                 source_sample_rate: int | None = None, provider: str | None = "CPUExecutionProvider") -> None:
        if not (isinstance(channels, int) and 1 <= channels <= 64):
            raise BridgeConfigError(f"channels = {channels!r} must be an integer in 1..64")
        if osc_port is not None and not (isinstance(osc_port, int) and 0 <= osc_port <= 65535):
            raise BridgeConfigError(f"OSC port {osc_port!r} is outside 0..65535 (0 picks a free port)")
        if artifact is not None and proxy is not None:
            raise BridgeConfigError("give either an artifact or a proxy object, not both")
        self.master_params = master_params
        self.reference = reference
        self.artifact = artifact
        self.proxy = proxy
        self.proxy_params = dict(proxy_params or {})
        self.channels = channels
        self.client_name = client_name
        self.jack_server = jack_server
        self.osc_port = osc_port
        self.osc_host = osc_host
        self.lookahead_ms = lookahead_ms
        self.smoothing_ms = smoothing_ms
        self.auto_connect = auto_connect
        self.source_sample_rate = source_sample_rate
        self.provider = provider
        self._notices: deque[str] = deque(list(notices), maxlen=MAX_PENDING_NOTICES)
        self.client = None
        self.master = None
        self.latency_samples = 0
        self.latency_reporting = "not started"
        # counters written by the callbacks (plain ints/floats: no locks on the audio thread)
        self.blocks = 0
        self.frames = 0
        self.xruns = 0
        self.callback_errors = 0
        self.callback_sum_s = 0.0
        self.callback_max_s = 0.0
        self.callback_cpu_sum_s = 0.0
        self.nonfinite_input_blocks = 0
        self.output_guard_blocks = 0
        self.osc_applied = 0
        self.osc_invalid = 0
        self.proxy_bypassed = False
        self.proxy_failed = False
        self._proxy_failure: tuple[int, str, BaseException | None] | None = None
        self._proxy_failure_reported = False
        self._reset_proxy = False
        self._last_error: BaseException | None = None
        self._error_reported = 0
        self._server_gone: str | None = None
        self._stop_osc = threading.Event()
        self._osc_thread: threading.Thread | None = None
        self._osc_sock: socket.socket | None = None
        self._started = False

    # ------------------------------------------------------------------ set-up
    def start(self) -> "LiveBus":
        """Connect to JACK, build the chain at the server's sample rate, register ports and
        callbacks, report latency, activate, and start OSC.

        Raises:
            LiveBusError: no JACK server / JACK-Client, a sample-rate or channel mismatch,
                the OSC port in use. ArtifactError: a bad artifact (see ``load_artifact``).
        """
        try:
            import jack
        except (ImportError, OSError) as e:
            raise LiveBusError(f"the live bus needs JACK-Client and libjack ({e}); "
                               "pip install JACK-Client and apt-get install jackd2") from None
        from mixbridge.plugins.master_bus import StreamingMaster

        self._jack = jack
        try:
            client = jack.Client(self.client_name, servername=self.jack_server, no_start_server=True)
        except jack.JackOpenError:
            where = f"'{self.jack_server}'" if self.jack_server else "(default)"
            hint = f"jackd -n {self.jack_server or 'NAME'} -d dummy -r 48000 -p 256"
            raise LiveBusError(f"cannot connect to the JACK server {where}; is it running? "
                               f"Start one without a sound card with `{hint}`") from None
        self.client = client
        try:
            self._build(client, StreamingMaster)
            self._register(client)
            client.activate()
            self._started = True
            if self.auto_connect:
                self._connect_physical(client)
            if self.osc_port is not None:
                self._start_osc()
        except BaseException:
            self._close_client()
            raise
        return self

    def _build(self, client: Any, master_cls: Callable) -> None:
        self.sample_rate = int(client.samplerate)
        self.block_size = int(client.blocksize)
        if self.source_sample_rate and int(self.source_sample_rate) != self.sample_rate:
            self._notices.append(f"the session is at {self.source_sample_rate} Hz and JACK at {self.sample_rate} Hz: "
                                 "the master chain is designed at JACK's rate (its parameters are in Hz, ms and dB, "
                                 "so they carry over)")
        if self.artifact is not None:
            from mixbridge.export.runtime import StreamingSession

            self.proxy = StreamingSession(self.artifact, provider=self.provider, num_threads=1,
                                          channels=self.channels)
            err = self.proxy.verify()
            self._notices.append(f"proxy {self.proxy.artifact.sidecar.get('model_name', self.artifact)}: golden "
                                 f"pair verified (max error {err:.2g}), provider {self.proxy.provider}")
        if self.proxy is not None:
            if int(self.proxy.sample_rate) != self.sample_rate:
                raise LiveBusError(
                    f"the proxy runs at {self.proxy.sample_rate} Hz but the JACK server at {self.sample_rate} Hz; "
                    f"start jackd with -r {self.proxy.sample_rate} or export a model trained at {self.sample_rate} Hz")
            if int(getattr(self.proxy, "out_channels", self.channels)) != self.channels:
                raise LiveBusError(f"the proxy outputs {self.proxy.out_channels} channels for {self.channels} "
                                   "input channels; use --channels to match")
            if self.proxy_params:
                self.proxy.set_params(self.proxy_params)
            self.proxy_latency = int(self.proxy.latency_samples)
        else:
            self.proxy_latency = 0
        kwargs = {}
        if self.lookahead_ms is not None:
            kwargs["lookahead_ms"] = self.lookahead_ms
        if self.smoothing_ms is not None:
            kwargs["smoothing_ms"] = self.smoothing_ms
        self.master = master_cls(self.sample_rate, self.master_params, channels=self.channels, max_block=MAX_BLOCK,
                                 reference=self.reference, **kwargs)
        self.latency_samples = self.proxy_latency + self.master.latency_samples
        self._dry = _Delay(self.channels, self.proxy_latency, MAX_BLOCK)
        self._inbuf = np.zeros(self.channels * MAX_BLOCK, np.float32)
        self._views: dict[int, np.ndarray] = {}
        self._prepare(self.block_size)

    def _prepare(self, frames: int) -> None:
        """Views and buffers for periods of ``frames`` samples (outside the process callback)."""
        sizes = {min(frames, MAX_BLOCK)}
        if frames > MAX_BLOCK and frames % MAX_BLOCK:
            sizes.add(frames % MAX_BLOCK)
        for n in sizes:
            self._views.setdefault(n, self._inbuf[:self.channels * n].reshape(self.channels, n))
            self.master.prepare([n])
            if self.proxy is not None and hasattr(self.proxy, "prepare"):
                self.proxy.prepare([n])

    def _register(self, client: Any) -> None:
        self.inports = [client.inports.register(f"in_{i + 1}") for i in range(self.channels)]
        self.outports = [client.outports.register(f"out_{i + 1}") for i in range(self.channels)]
        client.set_process_callback(self._process)
        client.set_xrun_callback(self._on_xrun)
        client.set_shutdown_callback(self._on_shutdown)
        client.set_blocksize_callback(self._on_blocksize)
        try:
            from .live_jack import LatencyReporter

            self._latency = LatencyReporter(client, self.inports, self.outports, self.latency_samples)
            self.latency_reporting = "port latency ranges (jack_set_latency_callback via cffi)"
        except Exception as e:  # the bus still runs; the latency is printed instead
            self._latency = None
            self.latency_reporting = f"not reported to JACK ({e})"
            self._notices.append(f"latency: cannot report it to JACK ({e}); it is {self.latency_samples} samples")

    def _connect_physical(self, client: Any) -> None:
        captures = client.get_ports(is_physical=True, is_output=True, is_audio=True)
        playbacks = client.get_ports(is_physical=True, is_input=True, is_audio=True)
        for src, dst in zip(captures, self.inports):
            client.connect(src, dst)
        for src, dst in zip(self.outports, playbacks):
            client.connect(src, dst)

    # ------------------------------------------------------------------ JACK callbacks
    def _on_xrun(self, delayed_usecs: float) -> None:
        self.xruns += 1

    def _on_shutdown(self, status: Any, reason: str) -> None:
        self._server_gone = str(reason) or "the JACK server shut down"

    def _on_blocksize(self, blocksize: int) -> None:
        try:
            self.block_size = int(blocksize)
            self._prepare(int(blocksize))
        except Exception as e:  # pragma: no cover - never raise into JACK
            self._last_error = e

    def _process(self, frames: int) -> None:
        t0, c0 = time.perf_counter(), time.thread_time()
        outs = None
        try:
            ins = [p.get_array() for p in self.inports]
            outs = [p.get_array() for p in self.outports]
            pos = 0
            while pos < frames:
                n = frames - pos if frames - pos <= MAX_BLOCK else MAX_BLOCK
                x = self._views.get(n)
                if x is None:  # an unprepared size (should not happen): allocate once
                    x = self._views[n] = self._inbuf[:self.channels * n].reshape(self.channels, n)
                for i, a in enumerate(ins):
                    x[i] = a[pos:pos + n]
                y = self._chain(x, n)
                for i, a in enumerate(outs):
                    a[pos:pos + n] = y[i]
                pos += n
            self.blocks += 1
            self.frames += frames
        except Exception as e:
            self.callback_errors += 1
            self._last_error = e
            try:
                for a in outs or [p.get_array() for p in self.outports]:
                    a.fill(0.0)
            except Exception:
                pass
        dt = time.perf_counter() - t0
        self.callback_cpu_sum_s += time.thread_time() - c0
        self.callback_sum_s += dt
        if dt > self.callback_max_s:
            self.callback_max_s = dt

    def _chain(self, x: np.ndarray, n: int) -> np.ndarray:
        s = float(np.add.reduce(x, axis=None))
        if not math.isfinite(s):
            self.nonfinite_input_blocks += 1
            np.nan_to_num(x, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        dry = self._dry.process(x, n)
        y = dry
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
                    self._fail_proxy("output NaN or inf", None)
            except Exception as e:
                self._fail_proxy("raised", e)
        out = self.master.process(y)
        self._dry.advance(n)
        s = float(np.add.reduce(out, axis=None))
        if not math.isfinite(s):
            self.output_guard_blocks += 1
            out.fill(0.0)
        np.clip(out, -FULL_SCALE, FULL_SCALE, out=out)
        return out

    def _fail_proxy(self, what: str, error: BaseException | None) -> None:
        self.proxy_failed = True
        self._proxy_failure = (self.blocks, what, error)
        self._proxy_failure_reported = False

    # ------------------------------------------------------------------ OSC
    def _start_osc(self) -> None:
        if self.osc_host not in ("127.0.0.1", "localhost", "::1"):
            self._notices.append(f"OSC: listening on {self.osc_host}, not loopback: any host that reaches it "
                                 "can change the master bus")
        family = socket.AF_INET6 if ":" in self.osc_host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, OSC_RCVBUF_BYTES)
        try:
            sock.bind((self.osc_host if self.osc_host != "localhost" else "127.0.0.1", self.osc_port))
        except OSError as e:
            sock.close()
            raise LiveBusError(f"cannot listen for OSC on {self.osc_host}:{self.osc_port}: {e.strerror}; "
                               "choose another --osc-port (0 picks a free one)") from None
        self._osc_sock = sock
        self.osc_port = sock.getsockname()[1]
        self._osc_thread = threading.Thread(target=self._osc_loop, name="mixbridge-live-osc", daemon=True)
        self._osc_thread.start()

    def _osc_loop(self) -> None:
        sock = self._osc_sock
        while not self._stop_osc.is_set():
            try:
                ready, _, _ = select.select([sock], [], [], 0.1)
                if not ready:
                    continue
                data, addr = sock.recvfrom(65536)
            except OSError:
                return
            self.handle_datagram(data, addr)

    def handle_datagram(self, data: bytes, addr: Any = None) -> None:
        """Decode one OSC datagram and apply its messages (the OSC thread calls this; never raises)."""
        try:
            packet = decode(data)
        except OscParseError as e:
            self._invalid(str(e))
            return
        for _, msg in iter_messages(packet):
            try:
                self._handle(msg, addr)
            except Exception as e:  # a bug in a handler must not kill the OSC thread
                self._invalid(f"{msg.address}: {e}")

    def _invalid(self, text: str) -> None:
        self.osc_invalid += 1
        self._notices.append(f"osc: invalid: {text}")

    def _handle(self, msg: OscMessage, addr: Any) -> None:
        parts = msg.address.strip("/").split("/")
        if parts == ["mixbridge", "status"]:
            if addr is not None and self._osc_sock is not None:
                reply = OscMessage("/mixbridge/status", (
                    int(self.blocks), int(self.xruns), int(self.osc_applied), int(self.osc_invalid),
                    int(self.proxy is not None and not self.proxy_bypassed and not self.proxy_failed),
                    int(self.latency_samples), int(self.master.clipped_samples if self.master else 0)))
                self._osc_sock.sendto(encode_message(reply), addr)
            return
        if len(parts) >= 3 and parts[:3] == ["mixbridge", "proxy", "bypass"] and len(parts) == 3:
            value = self._number(msg)
            if value is None:
                return
            if self.proxy is None:
                self._invalid(f"{msg.address}: no proxy model is loaded (start with --artifact)")
                return
            self.proxy_bypassed = bool(value)
            if not self.proxy_bypassed and self.proxy_failed:
                self._reset_proxy = True
                self.proxy_failed = False
                self._notices.append("proxy: re-armed after its failure (state reset)")
            self.osc_applied += 1
            self._notices.append(f"proxy: {'bypassed' if self.proxy_bypassed else 'active'}")
            return
        if len(parts) != 4 or parts[0] != "mixbridge" or parts[1] not in ("param", "proxy"):
            self._invalid(f"unknown address {msg.address}; use /mixbridge/param/<processor>/<param>, "
                          "/mixbridge/proxy/<processor>/<param>, /mixbridge/proxy/bypass or /mixbridge/status")
            return
        value = self._number(msg)
        if value is None:
            return
        path = f"{parts[2]}.{parts[3]}"
        try:
            if parts[1] == "param":
                applied = self.master.post(path, value)
            else:
                if self.proxy is None:
                    self._invalid(f"{msg.address}: no proxy model is loaded (start with --artifact)")
                    return
                self.proxy.set_params({path: value})
                applied = value
        except (MixbridgeError, ValueError, KeyError) as e:
            self._invalid(f"{msg.address} {value:g}: {e}")
            return
        self.osc_applied += 1
        self._notices.append(f"osc: {parts[1]} {path} = {applied:g}")

    def _number(self, msg: OscMessage) -> float | None:
        if len(msg.args) != 1 or isinstance(msg.args[0], bool) or not isinstance(msg.args[0], (int, float)):
            self._invalid(f"{msg.address} needs one number (int or float), got {msg.typetags or 'no arguments'}")
            return None
        return float(msg.args[0])

    # ------------------------------------------------------------------ monitoring and shutdown
    def poll_messages(self) -> list[str]:
        """Notices since the last call (model failure, OSC changes, callback errors); call it outside
        the audio thread."""
        out: list[str] = []
        if self._proxy_failure is not None and not self._proxy_failure_reported:
            block, what, error = self._proxy_failure
            detail = f": {type(error).__name__}: {error}" if error is not None else ""
            out.append(f"proxy FAILED at block {block} ({what}{detail}); the bus bypasses the proxy, the master "
                       "chain and limiter keep running. Send /mixbridge/proxy/bypass 0 to re-arm it")
            self._proxy_failure_reported = True
        if self.callback_errors > self._error_reported:
            out.append(f"callback error ({self.callback_errors} so far; the output was silenced for those "
                       f"periods): {type(self._last_error).__name__}: {self._last_error}")
            self._error_reported = self.callback_errors
        while self._notices:
            out.append(self._notices.popleft())
        return out

    @property
    def server_gone(self) -> str | None:
        """Why the JACK server went away, or ``None``."""
        return self._server_gone

    def summary(self) -> LiveSummary:
        proxy = "none"
        if self.proxy is not None:
            state = "failed -> bypass" if self.proxy_failed else ("bypassed" if self.proxy_bypassed else "active")
            proxy = f"{type(self.proxy).__name__} ({state}, latency {self.proxy_latency} samples)"
        return LiveSummary(
            client_name=self.client_name, server_name=self.jack_server,
            sample_rate=getattr(self, "sample_rate", 0), block_size=getattr(self, "block_size", 0),
            latency_samples=self.latency_samples, blocks=self.blocks, frames=self.frames, xruns=self.xruns,
            callback_mean_ms=1e3 * self.callback_sum_s / self.blocks if self.blocks else 0.0,
            callback_max_ms=1e3 * self.callback_max_s, callback_errors=self.callback_errors,
            callback_cpu_mean_ms=1e3 * self.callback_cpu_sum_s / self.blocks if self.blocks else 0.0,
            osc_applied=self.osc_applied, osc_invalid=self.osc_invalid, proxy=proxy,
            nonfinite_input_blocks=self.nonfinite_input_blocks, output_guard_blocks=self.output_guard_blocks,
            clipped_samples=self.master.clipped_samples if self.master else 0)

    def stop(self) -> LiveSummary:
        """Stop OSC, deactivate and close the JACK client; returns the summary."""
        self._stop_osc.set()
        if self._osc_thread is not None:
            self._osc_thread.join(timeout=2.0)
        if self._osc_sock is not None:
            self._osc_sock.close()
            self._osc_sock = None
        self._close_client()
        return self.summary()

    def _close_client(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            if self._started:
                client.deactivate()
        except Exception:
            pass
        try:
            client.close()
        except Exception:
            pass
        self._started = False

    def ready_text(self) -> str:
        """One line saying the bus runs, with its ports, latency and OSC address."""
        osc = f"OSC on {self.osc_host}:{self.osc_port}" if self.osc_port is not None else "OSC off"
        return (f"live: ready: client '{self.client.name if self.client else self.client_name}' on JACK server "
                f"'{self.jack_server or 'default'}' at {self.sample_rate} Hz, {self.block_size}-sample periods; "
                f"ports {', '.join(p.name for p in self.inports)} -> {', '.join(p.name for p in self.outports)}; "
                f"latency {self.latency_samples} samples ({1e3 * self.latency_samples / self.sample_rate:.2f} ms; "
                f"{self.latency_reporting}); {osc}")

    def __enter__(self) -> "LiveBus":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def bus_from_files(*, session: str | Path | None = None, artifact: str | Path | None = None,
                   proxy_params: Mapping[str, Any] | None = None, **kwargs: Any) -> LiveBus:
    """A :class:`LiveBus` for a session's master bus and/or an exported proxy (at least one).

    Raises:
        BridgeConfigError: neither given. SessionError etc.: a bad session file.
    """
    if session is None and artifact is None:
        raise BridgeConfigError("give --session SESSION (its master bus) and/or --artifact ART (a proxy)")
    params = reference = source_rate = None
    notices: list[str] = []
    if session is not None:
        from mixbridge.plugins.master_bus import master_params_from_session
        from mixbridge.session import load

        loaded = load(session)
        params, reference, notices = master_params_from_session(loaded)
        source_rate = loaded.sample_rate
    else:
        notices.append("no session: the master chain runs at the schema defaults (flat EQ, ratio-1 compressor, "
                       "0 dB gain, limiter at -1 dBTP)")
    return LiveBus(params, reference=reference, artifact=artifact, proxy_params=proxy_params, notices=notices,
                   source_sample_rate=source_rate, **kwargs)


def run_live(bus: LiveBus, *, duration_s: float | None = None, out: TextIO | None = None,
             install_signals: bool = True, poll_s: float = 0.1) -> LiveSummary:
    """Start ``bus``, print its notices while it runs, stop it on SIGINT/SIGTERM, after ``duration_s``
    or when the JACK server goes away; print and return the summary."""
    out = out or sys.stdout
    stop = threading.Event()
    previous: dict[int, Any] = {}
    if install_signals and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda signum, frame: stop.set())
    try:
        bus.start()
        print(bus.ready_text(), file=out, flush=True)
        deadline = None if duration_s is None else time.monotonic() + float(duration_s)
        reason = "stopped"
        while True:
            for line in bus.poll_messages():
                print(f"live: {line}", file=out, flush=True)
            if stop.wait(poll_s):
                reason = "signal received"
                break
            if bus.server_gone:
                reason = f"JACK server gone: {bus.server_gone}"
                break
            if deadline is not None and time.monotonic() >= deadline:
                reason = f"duration of {duration_s:g} s reached"
                break
        summary = bus.stop()
        for line in bus.poll_messages():
            print(f"live: {line}", file=out, flush=True)
        print(f"live: {reason}; shutting down", file=out)
        print(summary.text(), file=out, flush=True)
        return summary
    finally:
        if bus.client is not None:
            bus.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
