"""The live bus: ``mixbridge live``, streaming mastering (and an exported proxy) in a JACK client.

:class:`LiveBus` is a JACK client (JACK-Client) with ``channels`` input and output
ports (``in_1``.., ``out_1``..). In the JACK process callback each period is copied from
the ports into a preallocated ``[channels, frames]`` float32 buffer and run through
:class:`~mixbridge.bridge.live_chain.LiveChain` (input guard, the optional exported proxy
:class:`~mixbridge.export.runtime.StreamingSession` with its bypass fallback, the streaming
master chain :class:`~mixbridge.plugins.master_bus.StreamingMaster`, output guard and clip
to full scale) in chunks of at most 4096 samples. A proxy failure only sets a flag in the
callback; :meth:`LiveBus.poll_messages` (outside the callback) says so.

The callback never raises (everything is caught and counted; the output is then
silence), never blocks (parameter changes arrive through a lock-free deque and
plain attribute writes), never parses or validates a control message, does bounded
work per period (at most one queued value per master parameter: the control
coalesces and posts once per period) and allocates only numpy view headers and the
few block-sized arrays of scipy's filter kernels and onnxruntime's binding.

**Latency** ``latency_samples = proxy latency + master latency`` (81 samples at
48 kHz with the default 1.5 ms look-ahead) is reported to JACK as port latency
ranges through libjack's latency callback (:mod:`mixbridge.bridge.live_jack`;
JACK-Client 0.5.7 does not wrap that API). **Xruns** are counted with JACK-Client's
``set_xrun_callback``.

**Adaptive mastering** (``master_model``, ``mixbridge live --master-model learned|rules``): a
:class:`~mixbridge.bridge.live_master.MasterTap` in front of the master chain copies each block
into a preallocated lock-free ring (shared memory when the model runs in its worker process, the
default); :class:`~mixbridge.bridge.live_master.LiveMaster` predicts the chain from the latest
window, solves the gain for the target and glides the parameters toward it at a bounded rate
through :meth:`LiveBus.post_master_params`'s path. The callback never waits for it; the limiter
keeps the user's ceiling. The callback's wall times and start lateness of the latest
:data:`CALLBACK_HISTORY` periods are kept for :meth:`LiveBus.callback_times_ms`.

**Control**: :mod:`mixbridge.bridge.live_control` (OSC on the bridge's own router, strict
decoding, 127.0.0.1 by default) parses and validates on its receiving thread
(:meth:`LiveBus.check_master_param`), coalesces master changes and posts them once per
period (:meth:`LiveBus.post_master_params`), and calls :meth:`LiveBus.set_proxy_param` and
:meth:`LiveBus.set_proxy_bypass`; its notices are rate-limited. The bus starts it after
activation when ``osc_port`` is not ``None``. The command line loop (``mixbridge live``:
notices while it runs, SIGINT/SIGTERM, the summary) is ``run_live`` in
:mod:`mixbridge.bridge.cli`; the summary's counts and text are
:class:`~mixbridge.bridge.live_summary.LiveSummary`. This module never imports torch.
"""
from __future__ import annotations

import gc
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from .errors import BridgeConfigError, LiveBusError
from .live_chain import MAX_BLOCK, LiveChain
from .live_control import DEFAULT_OSC_PORT, LiveControl
from .live_master import (
    CEILING,
    GAIN,
    RING_MARGIN_S,
    STEERED,
    TARGET,
    LiveMaster,
    MasterModelSettings,
    MasterTap,
    WindowRing,
)
from .live_summary import LiveSummary

__all__ = ["DEFAULT_OSC_PORT", "LiveBus", "LiveBusError"]

DEFAULT_CLIENT_NAME = "mixbridge-live"
#: Notices kept for :meth:`LiveBus.poll_messages` between polls.
MAX_PENDING_NOTICES = 256
#: CPython's thread switch interval while the bus runs, seconds (see ``LiveBus._tune_interpreter``,
#: which also freezes the garbage collector's view of the objects built at start).
SWITCH_INTERVAL_S = 0.0002
#: Callback wall times kept for :meth:`LiveBus.callback_times_ms` (the latest ones; 44 s of 256-sample periods).
CALLBACK_HISTORY = 8192


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
        master_model: run a mastering predictor on the audio entering the master chain and glide the
            chain toward its prediction (:mod:`mixbridge.bridge.live_master`); ``None``: the fixed chain.
    """

    def __init__(self, master_params: Mapping[str, Any] | None = None, *, reference: Mapping[str, float] | None = None,
                 artifact: str | Path | None = None, proxy: Any = None,
                 proxy_params: Mapping[str, Any] | None = None, channels: int = 2,
                 client_name: str = DEFAULT_CLIENT_NAME, jack_server: str | None = None,
                 osc_port: int | None = DEFAULT_OSC_PORT, osc_host: str = "127.0.0.1",
                 lookahead_ms: float | None = None, smoothing_ms: float | None = None,
                 auto_connect: bool = False, notices: tuple[str, ...] | list[str] = (),
                 source_sample_rate: int | None = None, provider: str | None = "CPUExecutionProvider",
                 master_model: MasterModelSettings | None = None) -> None:
        if not (isinstance(channels, int) and 1 <= channels <= 64):
            raise BridgeConfigError(f"channels = {channels!r} must be an integer in 1..64")
        if osc_port is not None and not (isinstance(osc_port, int) and 0 <= osc_port <= 65535):
            raise BridgeConfigError(f"OSC port {osc_port!r} is outside 0..65535 (0 picks a free port)")
        if artifact is not None and proxy is not None:
            raise BridgeConfigError("give either an artifact or a proxy object, not both")
        if master_model is not None and channels != 2:
            raise BridgeConfigError(f"--master-model masters a stereo bus; --channels is {channels}, use 2")
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
        self.master_model = master_model
        #: The master model's worker (:class:`~mixbridge.bridge.live_master.LiveMaster`) once started.
        self.live_master: LiveMaster | None = None
        self._ring: WindowRing | None = None
        self._notices: deque[str] = deque(list(notices), maxlen=MAX_PENDING_NOTICES)
        self.client = None
        self.master = None
        self.chain: LiveChain | None = None
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
        #: The latest start of the callback within its period, frames (JACK's frames_since_cycle_start):
        #: what the callback waited for (the interpreter lock, the CPU) before its first line ran.
        self.callback_start_max_frames = 0
        #: The latest callbacks' wall times, s (a ring: entry ``timed % CALLBACK_HISTORY``).
        self.callback_times = np.zeros(CALLBACK_HISTORY)
        #: ... and how late each started within its period, frames (JACK's frames_since_cycle_start).
        self.callback_late_frames = np.zeros(CALLBACK_HISTORY, np.int64)
        self.timed = 0
        self._switch_interval: float | None = None
        self._gc_frozen = False
        self._failure_reported: tuple | None = None
        self._last_error: BaseException | None = None
        self._error_reported = 0
        self._server_gone: str | None = None
        self.control: LiveControl | None = None
        self._started = False

    # ------------------------------------------------------------------ set-up
    def start(self) -> LiveBus:
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
        self._jack_client = client
        try:
            self._build(client, StreamingMaster)
            self._register(client)
            self._tune_interpreter()
            client.activate()
            self._started = True
            if self.master_model is not None:
                self._start_master_model()
            if self.auto_connect:
                self._connect_physical(client)
            if self.osc_port is not None:
                self.control = LiveControl(self, host=self.osc_host, port=self.osc_port).start()
                self.osc_port = self.control.port
        except BaseException:
            self._close_client()
            raise
        return self

    def _tune_interpreter(self) -> None:
        """Lower CPython's thread switch interval to :data:`SWITCH_INTERVAL_S` and freeze the objects
        built so far out of the garbage collector's view while the bus runs (both undone by :meth:`stop`).

        The JACK callback is Python and needs the interpreter lock; a thread holding it (the OSC
        receiver under a flood, the notice printer) keeps it until it blocks or until the callback
        has waited one switch interval, 5 ms by default: a whole 5.33 ms period. The interval only
        matters while a thread waits for the lock, so this costs nothing when the bus is idle.
        A full collection walks every object (numpy, scipy, onnxruntime: ~70 000, 21 ms measured)
        holding the lock, in whichever thread allocates; after ``gc.freeze()`` it walks only what
        was made since (microseconds).
        """
        current = sys.getswitchinterval()
        if current > SWITCH_INTERVAL_S:
            self._switch_interval = current
            sys.setswitchinterval(SWITCH_INTERVAL_S)
        gc.collect()
        gc.freeze()
        self._gc_frozen = True

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
        kwargs = {}
        if self.lookahead_ms is not None:
            kwargs["lookahead_ms"] = self.lookahead_ms
        if self.smoothing_ms is not None:
            kwargs["smoothing_ms"] = self.smoothing_ms
        self.master = master_cls(self.sample_rate, self.master_params, channels=self.channels, max_block=MAX_BLOCK,
                                 reference=self.reference, **kwargs)
        master: Any = self.master
        if self.master_model is not None:
            frames = int(round((self.master_model.window_s + RING_MARGIN_S) * self.sample_rate)) + MAX_BLOCK
            if self.master_model.worker == "process":
                self._ring = WindowRing.create_shared(self.channels, frames, MAX_BLOCK)
            else:
                self._ring = WindowRing(self.channels, frames, MAX_BLOCK)
            master = MasterTap(self.master, self._ring)
        self.chain = LiveChain(master, self.proxy, channels=self.channels, max_block=MAX_BLOCK)
        self.latency_samples = self.chain.latency_samples
        self._inbuf = np.zeros(self.channels * MAX_BLOCK, np.float32)
        self._views: dict[int, np.ndarray] = {}
        self._prepare(self.block_size)

    def _prepare(self, frames: int) -> None:
        """Views and buffers for periods of ``frames`` samples (outside the process callback)."""
        sizes = {min(frames, MAX_BLOCK)}
        if frames > MAX_BLOCK and frames % MAX_BLOCK:
            sizes.add(frames % MAX_BLOCK)
        chain = self.chain
        assert chain is not None, "built in _build"
        for n in sizes:
            self._views.setdefault(n, self._inbuf[:self.channels * n].reshape(self.channels, n))
            chain.prepare([n])

    def _start_master_model(self) -> None:
        """Start the master model's worker on the ring (after activation: the ring fills from now)."""
        settings, master, ring = self.master_model, self.master, self._ring
        assert settings is not None and master is not None and ring is not None, "built in _build"
        from mixbridge.schema import MASTER_BUS, flatten_params

        initial = flatten_params(master.params)
        target = settings.target_lufs
        if target is None:
            target = float(self.reference["target_lufs"]) if self.reference else \
                float(MASTER_BUS.param(TARGET).default)
        self.live_master = LiveMaster(settings, ring, sample_rate=self.sample_rate, initial=initial,
                                      target_lufs=target, ceiling_dbtp=float(initial[CEILING]),
                                      post=self._post_to_master, notify=self.notify,
                                      progress=lambda: self.blocks).start()
        self._notices.append(f"master model: {settings.describe()}; first prediction once {settings.window_s:g} s "
                             f"of audio have arrived; target {target:g} LUFS, ceiling {initial[CEILING]:g} dBTP "
                             "(the model never moves the ceiling)")

    def _post_to_master(self, items: Sequence[tuple[str, float]]) -> None:
        master = self.master
        if master is None:
            raise LiveBusError("the live bus is not started")
        for path, value in items:
            master.post(path, value)

    def _register(self, client: Any) -> None:
        self.inports = [client.inports.register(f"in_{i + 1}") for i in range(self.channels)]
        self.outports = [client.outports.register(f"out_{i + 1}") for i in range(self.channels)]
        client.set_process_callback(self._process)
        client.set_xrun_callback(self._on_xrun)
        client.set_shutdown_callback(self._on_shutdown)
        client.set_blocksize_callback(self._on_blocksize)
        try:
            from .live_jack import LatencyReporter

            self._latency: LatencyReporter | None = LatencyReporter(client, self.inports, self.outports,
                                                                    self.latency_samples)
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
        chain = self.chain
        late = 0
        try:
            late = self._jack_client.frames_since_cycle_start  # frames of the period gone before we ran
            if late > self.callback_start_max_frames:
                self.callback_start_max_frames = late
            assert chain is not None, "the callback is registered after _build"  # caught below, never raised
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
                y = chain.process(x, n)
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
        slot = self.timed % CALLBACK_HISTORY
        self.callback_times[slot] = dt
        self.callback_late_frames[slot] = late
        self.timed += 1
        self.callback_sum_s += dt
        if dt > self.callback_max_s:
            self.callback_max_s = dt

    # ------------------------------------------------------------------ control (outside the callback)
    def notify(self, text: str) -> None:
        """Queue a notice for :meth:`poll_messages` (any thread; the oldest are dropped past 256)."""
        self._notices.append(text)

    def set_master_param(self, path: str, value: float) -> float:
        """Set master chain parameter ``path`` (``"gain.gain_db"``, real units) from now on, smoothed.

        Returns the value applied. Raises: ParamRangeError / UnknownParamError (from the master
        chain): a value outside the schema range or an unknown name; LiveBusError: not started.
        """
        if self.master is None:
            raise LiveBusError("the live bus is not started")
        return self.master.post(path, value)

    def check_master_param(self, path: str, value: float) -> float:
        """Validate master chain parameter ``path`` = ``value`` (real units) without applying it; returns
        the value it sets (for ``loudness.target_lufs``: the gain in dB it means). Runs outside the callback.

        Raises: ParamRangeError / UnknownParamError (from the master chain's schema); LiveBusError: not started.
        """
        if self.master is None:
            raise LiveBusError("the live bus is not started")
        if path == TARGET and self.live_master is not None:   # the master model's target
            from mixbridge.schema import MASTER_BUS

            return MASTER_BUS.param(TARGET).validate(value, "master.loudness")
        return self.master.resolve(path, value)[1]

    def post_master_params(self, items: Sequence[tuple[str, float]]) -> None:
        """Queue validated master changes ``[(path, value), ...]`` for the next period, in order.

        The control calls it at most once per period with at most one value per parameter, so the
        callback drains a bounded queue. With a master model running, ``loudness.target_lufs`` sets the
        model's target, ``limiter.ceiling_dbtp`` the user's ceiling (posted as well), and a parameter
        the model steers is held at the given value from now on (with a notice). Raises what
        :meth:`set_master_param` raises.
        """
        lm = self.live_master
        for path, value in items:
            if lm is None:
                self.set_master_param(path, value)
            elif path == TARGET:
                lm.set_target(self.check_master_param(path, value))
                self.notify(f"master model: target {value:g} LUFS")
            elif path in STEERED:
                if lm.hold(path, value, partial(self.set_master_param, path, value)):
                    why = "; the loudness target is no longer kept" if path == GAIN else ""
                    self.notify(f"master model: {path} is held at the value sent over OSC for the rest of the run "
                                f"(the model no longer steers it{why})")
            else:
                applied = self.set_master_param(path, value)
                if path == CEILING:
                    lm.set_ceiling(applied)

    def set_proxy_param(self, path: str, value: float) -> float:
        """Set proxy parameter ``path`` (real units) from the next period; returns ``value``.

        Raises: BridgeConfigError: no proxy is loaded; the proxy's own range errors.
        """
        if self.proxy is None:
            raise BridgeConfigError("no proxy model is loaded (start with --artifact)")
        self.proxy.set_params({path: value})
        return value

    def set_proxy_bypass(self, bypass: bool) -> None:
        """Bypass the proxy (``True``) or run it again (``False``: re-arms it after a failure, state reset).

        Raises: BridgeConfigError: no proxy is loaded.
        """
        if self.proxy is None:
            raise BridgeConfigError("no proxy model is loaded (start with --artifact)")
        if self.chain is None:
            raise LiveBusError("the live bus is not started")
        if self.chain.set_bypass(bypass):
            self.notify("proxy: re-armed after its failure (state reset)")
        self.notify(f"proxy: {'bypassed' if bypass else 'active'}")

    @property
    def proxy_active(self) -> bool:
        """True while a proxy runs in the chain (loaded, not bypassed, not failed)."""
        return self.chain is not None and self.chain.proxy_active

    @property
    def proxy_bypassed(self) -> bool:
        """True while the proxy is bypassed on request (``/mixbridge/proxy/bypass 1``)."""
        return self.chain is not None and self.chain.proxy_bypassed

    @property
    def proxy_failed(self) -> bool:
        """True once the proxy raised or output NaN/inf (until it is re-armed)."""
        return self.chain is not None and self.chain.proxy_failed

    @property
    def proxy_latency(self) -> int:
        """The proxy's latency in samples (0 without a proxy or before start)."""
        return self.chain.proxy_latency if self.chain is not None else 0

    @property
    def clipped_samples(self) -> int:
        """Samples the master chain's last guard clipped at the ceiling so far."""
        return int(self.master.clipped_samples) if self.master is not None else 0

    @property
    def osc_applied(self) -> int:
        """OSC messages applied (0 without OSC control)."""
        return self.control.applied if self.control is not None else 0

    @property
    def osc_invalid(self) -> int:
        """OSC messages refused and reported (0 without OSC control)."""
        return self.control.invalid if self.control is not None else 0

    @property
    def osc_coalesced(self) -> int:
        """OSC master values superseded by a later one before they were posted (0 without OSC control)."""
        return self.control.coalesced if self.control is not None else 0

    @property
    def osc_dropped(self) -> int:
        """OSC datagrams the kernel dropped because the socket buffer was full (0 without OSC control)."""
        return self.control.dropped if self.control is not None else 0

    # ------------------------------------------------------------------ monitoring and shutdown
    def poll_messages(self) -> list[str]:
        """Notices since the last call (model failure, OSC changes, callback errors); call it outside
        the audio thread."""
        out: list[str] = []
        failure = self.chain.failure if self.chain is not None else None
        if failure is not None and failure is not self._failure_reported:
            block, what, error = failure
            detail = f": {type(error).__name__}: {error}" if error is not None else ""
            out.append(f"proxy FAILED at block {block} ({what}{detail}); the bus bypasses the proxy, the master "
                       "chain and limiter keep running. Send /mixbridge/proxy/bypass 0 to re-arm it")
            self._failure_reported = failure
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
        """Counts since start (see :class:`LiveSummary`)."""
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
            callback_start_max_ms=1e3 * self.callback_start_max_frames / self.sample_rate
            if getattr(self, "sample_rate", 0) else 0.0,
            callback_cpu_mean_ms=1e3 * self.callback_cpu_sum_s / self.blocks if self.blocks else 0.0,
            osc_applied=self.osc_applied, osc_invalid=self.osc_invalid, osc_coalesced=self.osc_coalesced,
            osc_dropped=self.osc_dropped, proxy=proxy,
            nonfinite_input_blocks=self.chain.nonfinite_input_blocks if self.chain else 0,
            output_guard_blocks=self.chain.output_guard_blocks if self.chain else 0,
            clipped_samples=self.clipped_samples,
            master_model=self.live_master.summary_text() if self.live_master is not None else
            ("starting" if self.master_model is not None else "off (the fixed chain)"),
            master_predictions=self.live_master.predictions if self.live_master is not None else 0,
            master_values_applied=self.live_master.values_applied if self.live_master is not None else 0,
            master_failures=self.live_master.failures if self.live_master is not None else 0)

    def callback_times_ms(self, last: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The latest callbacks' wall times and how late each started in its period (at most
        :data:`CALLBACK_HISTORY`, oldest first), both in ms; ``last`` keeps only that many. Call it
        outside the callback (it copies)."""
        n = min(self.timed, CALLBACK_HISTORY)
        if last is not None:
            n = min(n, int(last))
        idx = np.arange(self.timed - n, self.timed) % CALLBACK_HISTORY
        rate = getattr(self, "sample_rate", 0) or 1
        return 1e3 * self.callback_times[idx], 1e3 * self.callback_late_frames[idx] / rate

    def stop(self) -> LiveSummary:
        """Stop OSC, deactivate and close the JACK client; returns the summary."""
        if self.control is not None:
            self.control.stop()
        if self.live_master is not None:
            self.live_master.stop()
        self._close_client()
        return self.summary()

    def _close_client(self) -> None:
        if self.live_master is not None:
            self.live_master.stop()
        if self._ring is not None:
            self._ring.unlink()
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
            self._switch_interval = None
        if self._gc_frozen:
            gc.unfreeze()
            self._gc_frozen = False
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

    def __enter__(self) -> LiveBus:
        """Start the bus (:meth:`start`)."""
        return self.start()

    def __exit__(self, *exc) -> None:
        """Stop the bus (:meth:`stop`)."""
        self.stop()
