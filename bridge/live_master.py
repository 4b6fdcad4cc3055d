"""Streaming mastering that adapts on the live bus: ``mixbridge live --master-model learned|rules``.

A mastering predictor (a callable ``audio [2, S] -> master_bus parameters``) runs in a worker
process over a sliding window of the audio that enters the bus's master chain, and the master
chain's parameters glide toward its prediction at a bounded rate. Three parts:

1. **The tap** (:class:`MasterTap`, in the JACK process callback). It stands in front of the
   :class:`~mixbridge.plugins.master_bus.StreamingMaster` inside
   :class:`~mixbridge.bridge.live_chain.LiveChain` (so it sees what the master chain sees: after
   the input guard and the proxy) and copies each block into :class:`WindowRing`, a preallocated
   single-producer ring. The callback takes no lock, allocates nothing but numpy view headers
   and Python ints, never waits for the worker and never raises (a failing copy is counted in
   :attr:`WindowRing.write_errors`); the master chain, its limiter and its true-peak ceiling run
   unchanged after it.
2. **The predictor** (every ``hop_s``, default :data:`DEFAULT_HOP_S`), by default in a worker
   process (``python -m mixbridge.bridge.live_master``, spawned at start, JSON lines over its
   stdin/stdout, the ring in a ``/dev/shm`` file both map): CPython's callback needs the
   interpreter lock, and a predictor thread in the bus's process holds it in numpy and scipy calls
   (measured on a loaded 2-core machine, 256-frame periods: with the thread the callback starts 8-12 ms
   late at the 99th percentile and 40-117 xruns per 10 s against 2-19 idle; with the process
   0.33-0.40 ms and 1-5 xruns, within the idle runs' spread). A thread
   of the bus's process asks the worker every hop and waits on the pipe (the lock free meanwhile);
   ``worker="thread"`` runs any callable in that thread instead (tests' stand-ins). The worker
   copies the latest ``window_s`` seconds (default :data:`DEFAULT_WINDOW_S`,
   :data:`MIN_WINDOW_S`-:data:`MAX_WINDOW_S`) out of the ring without a lock
   (:meth:`WindowRing.read_latest` re-reads the write index after the copy and discards a window
   the callback overwrote meanwhile), runs the predictor on it (:func:`plan_window`), and
   solves the gain stage for the target with the one gain solver
   :func:`mixbridge.plugins.mastering.solve_master_gain` (secant steps on the integrated loudness
   of the window rendered through the one master bus with the predicted parameters). A window
   that is silent (below -70 LUFS) is skipped. A predictor that raises, returns NaN/inf or an
   unknown parameter, or a gain solve that fails, is counted in :attr:`LiveMaster.failures` and
   reported; the bus keeps its last good parameters.
3. **The glide thread** (every :data:`GLIDE_TICK_S`): moves each applied parameter toward the
   latest prediction by at most ``max_rate_db_per_s * dt`` (parameters on a dB or linear scale:
   gains, thresholds, knee, makeup) or ``max_rate_oct_per_s * dt`` octaves (log-scale parameters:
   ratio, attack and release times, frequencies, Q), ``dt`` capped at :data:`MAX_GLIDE_DT_S` so a
   late tick never takes a larger step, and posts the moved values through the bus's own path
   (:meth:`~mixbridge.bridge.live.LiveBus.post_master_params` -> ``StreamingMaster.post``, whose
   one-pole smoothing then ramps them within the JACK periods). A new prediction replaces a goal
   only when it moved by more than :data:`DEADBAND_DB` / :data:`DEADBAND_OCT`
   (:data:`GAIN_DEADBAND_DB` for the gain), so a steady input leaves the chain still (moving
   compressor or EQ parameters cost the callback their redesign every period).

**Ceiling.** The model never moves ``limiter.ceiling_dbtp``: the limiter runs at the user's
ceiling (the session's, ``--ceiling-dbtp`` or OSC), and the predictor is asked for a plan at that
ceiling. **Target.** ``loudness.target_lufs`` (``--target-lufs`` or OSC) is the worker's target;
changing it shifts the gain goal at once by the change (then the next prediction re-solves it).
**OSC on a steered parameter** holds it at the user's value for the rest of the run
(:meth:`LiveMaster.hold`). Standard library and numpy at import time; the solver, the loudness
meter and the predictors are imported when used; never torch.
"""
from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from mixbridge.schema import MASTER_BUS, MASTER_RENDER, flatten_params

from .errors import BridgeConfigError

__all__ = ["DEFAULT_HOP_S", "DEFAULT_MAX_RATE_DB_PER_S", "DEFAULT_MAX_RATE_OCT_PER_S", "DEFAULT_WINDOW_S",
           "MASTER_MODELS", "LiveMaster", "MasterModelSettings", "MasterPredictor", "MasterTap",
           "PredictorOutputError", "WindowRing", "load_predictor"]

#: Sliding window the predictor reads, seconds (default, and the range ``--master-window-s`` takes).
DEFAULT_WINDOW_S = 6.0
MIN_WINDOW_S = 3.0
MAX_WINDOW_S = 10.0
#: How often the predictor runs on the latest window, seconds (each run costs the worker about
#: 0.1 s of CPU per 6 s of window and gain-solver render, measured on this machine).
DEFAULT_HOP_S = 1.0
MIN_HOP_S = 0.25
#: Largest glide of parameters on a dB or linear scale (gains, thresholds, knee, makeup), dB per second.
DEFAULT_MAX_RATE_DB_PER_S = 6.0
#: Largest glide of log-scale parameters (ratio, attack/release times, frequencies, Q), octaves
#: (factors of 2) per second.
DEFAULT_MAX_RATE_OCT_PER_S = 1.0
#: The glide thread's tick, seconds (the master chain's 20 ms smoothing ramps each step).
GLIDE_TICK_S = 0.02
#: A late tick glides as if this much time had passed, at most (the rate bound holds for every post).
MAX_GLIDE_DT_S = 2 * GLIDE_TICK_S
#: A new prediction moves a goal only by more than this (dB / octaves; the gain's is finer, since
#: 1 dB of gain is 1 LU of loudness and moving the gain costs the callback almost nothing).
DEADBAND_DB = 0.25
DEADBAND_OCT = 0.05
GAIN_DEADBAND_DB = 0.05
#: Room in the ring beyond the window, seconds: the predictor thread's copy of the window must end
#: before the callback writes this much more, or the window is discarded and read again.
RING_MARGIN_S = 1.0
#: Largest block the tap is given (the live chain's block limit).
MAX_TAP_BLOCK = 4096
#: Bytes before the frames in a shared ring's file (the int64 count of frames written, padded).
_RING_HEADER_BYTES = 64
#: Nice value of the worker process, so the OS runs JACK and the bus first. The bus's own threads (the
#: glide, and the one that waits for the worker) keep the normal priority: they take the interpreter
#: lock the callback needs, and a thread preempted while it holds the lock makes the callback wait.
WORKER_NICE = 10
#: Environment variables that limit the worker's libraries to one compute thread.
WORKER_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
#: Names ``--master-model`` takes, and where the predictor may run (``--master-worker``).
MASTER_MODELS = ("learned", "rules")
WORKERS = ("process", "thread")
#: The parameter the model never moves (the limiter keeps the user's ceiling).
CEILING = "limiter.ceiling_dbtp"
GAIN = "gain.gain_db"
TARGET = "loudness.target_lufs"
#: Parameters the model steers: the master chain's, less the ceiling.
STEERED = tuple(name for name, _ in MASTER_RENDER.flat_params() if name != CEILING)
_LOG = frozenset(name for name, p in MASTER_RENDER.flat_params() if p.scale == "log")
#: Predictor outputs that are not master-chain parameters and are ignored (the plan's loudness
#: target is the worker's own; a finished mix feeds no reverb).
_IGNORED_PROCESSORS = ("loudness", "reverb")


class PredictorOutputError(ValueError):
    """A predictor's plan the live master cannot apply (NaN/inf, an unknown parameter, not a mapping)."""


class MasterPredictor(Protocol):
    """``predict(audio, sample_rate, *, target_lufs, ceiling_dbtp) -> master_bus params`` (nested or flat,
    real units), the interface of :class:`mixbridge.export.master_runtime.OnnxMasterPredictor`."""

    def __call__(self, audio: np.ndarray, sample_rate: int, *, target_lufs: float,
                 ceiling_dbtp: float) -> Mapping[str, Any]:
        """The plan for ``audio`` float32 ``[2, samples]`` at ``sample_rate`` Hz."""
        ...


@dataclass
class MasterModelSettings:
    """What :class:`~mixbridge.bridge.live.LiveBus` needs to run a master model (``--master-*`` options).

    ``predictor``: the callable (see :class:`MasterPredictor`); ``name``: what the summary calls it;
    ``target_lufs``: ``None`` takes the session's target (else the schema default, -14 LUFS);
    ``worker``: where the predictor runs: "process" (default: a worker process, which rebuilds it
    with :func:`load_predictor` from ``model = (name, onnx_path)``, so the callback never waits for
    the interpreter lock while the model computes) or "thread" (a thread of the bus's process: any
    callable, e.g. a test's stand-in; measured here it raises the xruns, see the README).
    """

    predictor: MasterPredictor
    name: str
    window_s: float = DEFAULT_WINDOW_S
    hop_s: float = DEFAULT_HOP_S
    max_rate_db_per_s: float = DEFAULT_MAX_RATE_DB_PER_S
    max_rate_oct_per_s: float = DEFAULT_MAX_RATE_OCT_PER_S
    target_lufs: float | None = None
    worker: str = "process"
    model: tuple[str, str | None] | None = None

    def __post_init__(self) -> None:
        def finite(x: Any) -> bool:
            return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

        if not (finite(self.window_s) and MIN_WINDOW_S <= self.window_s <= MAX_WINDOW_S):
            raise BridgeConfigError(f"--master-window-s {self.window_s!r} must lie in [{MIN_WINDOW_S:g}, "
                                    f"{MAX_WINDOW_S:g}] s (the predictor's sliding window)")
        if not (finite(self.hop_s) and MIN_HOP_S <= self.hop_s <= self.window_s):
            raise BridgeConfigError(f"--master-hop-s {self.hop_s!r} must lie in [{MIN_HOP_S:g}, window "
                                    f"{self.window_s:g}] s")
        for flag, value in (("--master-max-rate-db-per-s", self.max_rate_db_per_s),
                            ("--master-max-rate-oct-per-s", self.max_rate_oct_per_s)):
            if not (finite(value) and value > 0):
                raise BridgeConfigError(f"{flag} {value!r} must be a finite rate > 0")
        if self.target_lufs is not None:
            self.target_lufs = MASTER_BUS.param(TARGET).validate(self.target_lufs, "--target-lufs")
        if self.worker not in WORKERS:
            raise BridgeConfigError(f"--master-worker {self.worker!r} is not one of {', '.join(WORKERS)}")
        if self.worker == "process" and self.model is None:
            raise BridgeConfigError("a worker process rebuilds the model by name: give model=(name, onnx_path), "
                                    "or worker='thread' for a callable of your own")

    def describe(self) -> str:
        """One phrase for the ready line and the summary."""
        return (f"{self.name} (in a worker {self.worker}; window {self.window_s:g} s, every {self.hop_s:g} s; glide <= "
                f"{self.max_rate_db_per_s:g} dB/s, {self.max_rate_oct_per_s:g} oct/s)")


def load_predictor(name: str, *, onnx_path: str | None = None) -> MasterPredictor:
    """The predictor ``--master-model name`` means, torch-free.

    * ``learned``: :class:`mixbridge.export.master_runtime.OnnxMasterPredictor` (onnxruntime), from
      ``onnx_path`` or its shipped export; its ``predict`` is the callable;
    * ``rules``: the rules masterer (:class:`mixbridge.plugins.master_rules.RulesMasterer`, numpy);
      the callable returns its plan's params.

    Raises:
        BridgeConfigError: an unknown name; the model's module is missing (with what to install or build).
        Whatever the model's constructor raises for a bad file.
    """
    if name == "learned":
        try:
            from mixbridge.export.master_runtime import OnnxMasterPredictor
        except ImportError as e:
            raise BridgeConfigError(f"--master-model learned needs mixbridge.export.master_runtime ({e}); "
                                    "use --master-model rules meanwhile") from None
        model = OnnxMasterPredictor(onnx_path) if onnx_path else OnnxMasterPredictor()
        return model.predict
    if onnx_path:
        raise BridgeConfigError(f"--master-onnx is for --master-model learned, not {name!r}")
    if name == "rules":
        try:
            from mixbridge.plugins.master_rules import RulesMasterer
        except ImportError as e:
            raise BridgeConfigError(f"--master-model rules needs mixbridge.plugins.master_rules ({e}); "
                                    "it is not installed in this checkout") from None
        masterer = RulesMasterer()

        def predict(audio: np.ndarray, sample_rate: int, *, target_lufs: float,
                    ceiling_dbtp: float) -> Mapping[str, Any]:
            return masterer(audio, sample_rate, target_lufs=target_lufs, ceiling_dbtp=ceiling_dbtp).params

        return predict
    raise BridgeConfigError(f"--master-model {name!r} is not one of {', '.join(MASTER_MODELS)}")


class WindowRing:
    """A preallocated ring of the latest ``capacity`` frames, ``float32 [channels, capacity]``; one writer
    (the JACK callback), one reader (the predictor thread, or the worker process), no lock.

    The count of frames written so far is published in a one-element int64 header after each copy,
    so a reader that sees it knows those frames are in place (x86's stores are seen in order; on a
    weaker memory model the newest block of a window may be stale, never the audio itself).
    :meth:`read_latest` re-reads the header after its own copy and refuses the window if the writer
    may have reached the frames it copied. With ``path`` the header and the frames live in that file
    (memory-mapped; under ``/dev/shm`` it is shared memory), so another process can read them
    (:meth:`attach`); the mapping is never closed while arrays view it (it goes with the last view).
    """

    def __init__(self, channels: int, capacity: int, max_block: int = MAX_TAP_BLOCK, *,
                 path: str | None = None, readonly: bool = False) -> None:
        if capacity <= max_block:
            raise BridgeConfigError(f"ring of {capacity} frames must hold more than one {max_block}-frame block")
        self.channels = int(channels)
        self.capacity = int(capacity)
        self.max_block = int(max_block)
        self.path = path
        frames = self.channels * self.capacity
        if path is None:
            self._header = np.zeros(1, np.int64)
            self.buffer = np.zeros((self.channels, self.capacity), np.float32)
        else:
            import mmap

            size = _RING_HEADER_BYTES + 4 * frames
            with open(path, "rb" if readonly else "r+b") as f:
                if not readonly:
                    f.truncate(size)
                mapped = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ if readonly else mmap.ACCESS_WRITE)
            self._header = np.frombuffer(mapped, np.int64, 1, 0)
            self.buffer = np.frombuffer(mapped, np.float32, frames, _RING_HEADER_BYTES).reshape(
                self.channels, self.capacity)
        self._written = int(self._header[0])
        #: Blocks the writer could not copy (wrong shape or size): counted, never raised.
        self.write_errors = 0
        #: Windows the reader discarded because the writer overtook its copy.
        self.torn_reads = 0

    @classmethod
    def create_shared(cls, channels: int, capacity: int, max_block: int = MAX_TAP_BLOCK) -> WindowRing:
        """A ring in a new file under ``/dev/shm`` (the temporary folder where there is none); the
        creator removes it with :meth:`unlink`."""
        import tempfile

        folder = "/dev/shm" if os.path.isdir("/dev/shm") else None
        fd, path = tempfile.mkstemp(prefix="mixbridge-live-ring-", dir=folder)
        os.close(fd)
        return cls(channels, capacity, max_block, path=path)

    @classmethod
    def attach(cls, path: str, channels: int, capacity: int, max_block: int = MAX_TAP_BLOCK) -> WindowRing:
        """The reader's view of a ring made by :meth:`create_shared` (read-only)."""
        return cls(channels, capacity, max_block, path=path, readonly=True)

    def unlink(self) -> None:
        """Remove the ring's file (the mapping stays valid until its last view goes)."""
        if self.path is not None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    @property
    def written(self) -> int:
        """Frames written so far, as published to readers."""
        return int(self._header[0])

    def write(self, block: np.ndarray) -> None:
        """Copy ``block`` ``[channels, n]`` (``n <= max_block``) in after the latest frames (the callback;
        never raises, allocates only view headers)."""
        try:
            n = block.shape[1]
            if block.shape[0] != self.channels or not 0 < n <= self.max_block:
                self.write_errors += 1
                return
            cap, buf = self.capacity, self.buffer
            pos = self._written % cap
            first = cap - pos
            if n <= first:
                buf[:, pos:pos + n] = block
            else:
                buf[:, pos:] = block[:, :first]
                buf[:, :n - first] = block[:, first:]
            self._written += n
            self._header[0] = self._written   # publish after the copy
        except Exception:
            self.write_errors += 1

    def read_latest(self, out: np.ndarray) -> bool:
        """Copy the latest ``out.shape[1]`` frames into ``out`` (``[channels, w]``, ``w <= capacity -
        max_block``); ``False`` when fewer have been written or the writer overtook the copy."""
        w, cap = out.shape[1], self.capacity
        if w > cap - self.max_block:
            raise BridgeConfigError(f"window of {w} frames does not fit a ring of {cap} (less one block)")
        end = self.written
        if end < w:
            return False
        start = end - w
        pos = start % cap
        first = min(w, cap - pos)
        out[:, :first] = self.buffer[:, pos:pos + first]
        if first < w:
            out[:, first:] = self.buffer[:, :w - first]
        # the writer may be copying one block past what it published: frames [after, after + max_block)
        # land on those of [after - cap, after + max_block - cap), which must all be older than ``start``
        after = self.written
        if after + self.max_block - cap > start:
            self.torn_reads += 1
            return False
        return True


class MasterTap:
    """The master chain with the ring's copy in front: what :class:`~mixbridge.bridge.live_chain.LiveChain`
    calls in place of the :class:`~mixbridge.plugins.master_bus.StreamingMaster` (``process``,
    ``prepare``, ``latency_samples``); every other attribute is the master's."""

    def __init__(self, master: Any, ring: WindowRing) -> None:
        self.master = master
        self.ring = ring
        self.latency_samples = int(master.latency_samples)

    def prepare(self, sizes: Sequence[int]) -> None:
        """The master's buffers for these block sizes (outside the callback)."""
        self.master.prepare(sizes)

    def process(self, block: np.ndarray) -> np.ndarray:
        """Copy ``block`` into the ring (never raises), then the master chain's output for it."""
        self.ring.write(block)
        return self.master.process(block)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.master, name)


def _clip(path: str, value: float) -> float:
    p = MASTER_RENDER.param(path)
    return float(min(max(value, p.min), p.max))


def checked_plan(raw: Any) -> tuple[dict[str, float], int]:
    """A predictor's plan as the steered parameters, flat, finite and clipped into the schema's ranges;
    returns ``(params, clipped_count)``. The ceiling, ``loudness.*`` and ``reverb.*`` are left out.

    Raises:
        PredictorOutputError: not a mapping, an unknown parameter, a value that is not a finite number.
    """
    if not isinstance(raw, Mapping):
        raise PredictorOutputError(f"the predictor returned {type(raw).__name__}, not a mapping of parameters")
    flat: dict[str, float] = {}
    clipped = 0
    for path, value in flatten_params(raw).items():
        proc = path.partition(".")[0]
        if proc in _IGNORED_PROCESSORS or path == CEILING:
            continue
        if path not in STEERED or path == GAIN:
            raise PredictorOutputError(f"the predictor returned unknown parameter '{path}'; the live master "
                                       f"takes {', '.join(p for p in STEERED if p != GAIN)}")
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise PredictorOutputError(f"{path} = {value!r} is not a number") from None
        if not math.isfinite(v):
            raise PredictorOutputError(f"{path} = {v} is not finite")
        c = _clip(path, v)
        clipped += c != v
        flat[path] = c
    return flat, clipped


@dataclass
class WindowPlan:
    """What one prediction gave: ``status`` "ok" (``params``: steered parameters with the solved gain,
    flat), "silent" (the window is below -70 LUFS), "notready" (the window is not full, or was
    overwritten while copied) or "failed" (``error``); ``lufs``: the loudness the solve reached;
    ``seconds`` and ``cpu_s``: wall and CPU time it took."""

    status: str
    params: dict[str, float] | None = None
    lufs: float | None = None
    error: str | None = None
    clamped: int = 0
    seconds: float = 0.0
    cpu_s: float = 0.0


def plan_window(predictor: MasterPredictor, window: np.ndarray, sample_rate: int, *, target_lufs: float,
                ceiling_dbtp: float, start_gain_db: float | None = None) -> WindowPlan:
    """Run ``predictor`` on ``window`` float32 ``[2, S]`` and solve the gain stage for ``target_lufs``
    at ``ceiling_dbtp`` with the one gain solver (:func:`mixbridge.plugins.mastering.solve_master_gain`,
    from ``start_gain_db``). Never raises: a failure is a plan with status "failed"."""
    from mixbridge.loudness import SILENT_LUFS, integrated_lufs
    from mixbridge.plugins.mastering import solve_master_gain

    t0 = time.perf_counter()
    try:
        if integrated_lufs(window, sample_rate) <= SILENT_LUFS:
            return WindowPlan("silent", seconds=time.perf_counter() - t0)
        raw = predictor(window, sample_rate, target_lufs=target_lufs, ceiling_dbtp=ceiling_dbtp)
        flat, clipped = checked_plan(raw)
        nested: dict[str, dict[str, float]] = {"eq": {}, "compressor": {}, "limiter": {}}
        for path, value in flat.items():
            proc, _, name = path.partition(".")
            nested[proc][name] = value
        nested["limiter"]["ceiling_dbtp"] = float(ceiling_dbtp)
        nested["loudness"] = {"target_lufs": float(target_lufs)}
        gain, lufs, _, _ = solve_master_gain(window, sample_rate, nested, start_gain_db=start_gain_db)
        if not (math.isfinite(gain) and math.isfinite(lufs)):
            raise PredictorOutputError(f"the gain solver returned gain {gain} dB, loudness {lufs} LUFS")
    except Exception as e:
        return WindowPlan("failed", error=f"{type(e).__name__}: {e}", seconds=time.perf_counter() - t0)
    flat[GAIN] = float(gain)
    return WindowPlan("ok", flat, float(lufs), clamped=clipped, seconds=time.perf_counter() - t0)


def _worker_main(argv: Sequence[str] | None = None) -> int:
    """The worker process (``python -m mixbridge.bridge.live_master CONFIG_JSON``): load the model, say
    ``{"status": "ready"}`` (or ``"fatal"``), then answer each request line
    ``{"target_lufs", "ceiling_dbtp", "start_gain_db"}`` on stdin with the :class:`WindowPlan` of the
    ring's latest window as one JSON line on stdout, until stdin closes. JSON both ways (no pickle)."""
    import json
    import sys

    config = json.loads((argv if argv is not None else sys.argv[1:])[0])
    out = sys.stdout

    def say(obj: Mapping[str, Any]) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    try:
        os.nice(WORKER_NICE)
    except OSError:
        pass
    try:
        predictor = load_predictor(config["model"], onnx_path=config["onnx_path"])
        ring = WindowRing.attach(config["ring"], config["channels"], config["capacity"], config["max_block"])
    except Exception as e:
        say({"status": "fatal", "error": f"{type(e).__name__}: {e}"})
        return 1
    window = np.zeros((ring.channels, int(config["window_frames"])), np.float32)
    # warm the model up on noise (onnxruntime's first run costs ~1 s), so the first real window is quick
    warm = np.random.default_rng(0).standard_normal(window.shape).astype(np.float32) * np.float32(0.05)
    plan_window(predictor, warm, int(config["sample_rate"]), target_lufs=-14.0, ceiling_dbtp=-1.0)
    say({"status": "ready"})
    for line in sys.stdin:
        request = json.loads(line)
        c0 = time.process_time()
        if ring.read_latest(window):
            plan = plan_window(predictor, window, int(config["sample_rate"]), target_lufs=request["target_lufs"],
                               ceiling_dbtp=request["ceiling_dbtp"], start_gain_db=request["start_gain_db"])
        else:
            plan = WindowPlan("notready")
        plan.cpu_s = time.process_time() - c0
        say({"status": "plan", "plan": asdict(plan)})
    return 0


class _RemoteWorker:
    """The bus's end of the worker process: a ``python -m mixbridge.bridge.live_master`` subprocess that
    reads the shared ring and answers over its stdin/stdout (a subprocess, not a fork: forking a process
    with JACK's threads is unsafe; not multiprocessing: that re-imports the caller's main module)."""

    #: Longest wait for the process to import and load its model, and for one plan, seconds.
    START_TIMEOUT_S = 120.0
    PLAN_TIMEOUT_S = 60.0

    def __init__(self, model: tuple[str, str | None], ring: WindowRing, sample_rate: int, window_frames: int,
                 stop: threading.Event) -> None:
        import json
        import subprocess
        import sys

        assert ring.path is not None, "a shared ring"
        self._stop = stop
        config = {"model": model[0], "onnx_path": model[1], "ring": ring.path, "channels": ring.channels,
                  "capacity": ring.capacity, "max_block": ring.max_block, "sample_rate": int(sample_rate),
                  "window_frames": int(window_frames)}
        # one compute thread (numpy's BLAS, onnxruntime): a background worker must not fill every core the
        # audio thread needs, however low its priority
        env = {**os.environ, **{k: "1" for k in WORKER_THREAD_VARS}}
        self.process = subprocess.Popen([sys.executable, "-m", "mixbridge.bridge.live_master", json.dumps(config)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True, env=env)
        self._buffer = b""
        self._spawned_at = time.monotonic()
        #: Seconds from the spawn to the model loaded and warmed up in the process (None before).
        self.ready_s: float | None = None
        self.ready = False
        self._closed = False
        self.dead: str | None = None

    def _receive(self, timeout_s: float) -> dict | None:
        """The next message; None when the bus stops meanwhile."""
        import json
        import select

        stdout = self.process.stdout
        assert stdout is not None
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buffer:
            if self._stop.is_set():
                return None
            if time.monotonic() > deadline:
                raise TimeoutError(f"the worker process did not answer within {timeout_s:g} s")
            ready, _, _ = select.select([stdout], [], [], 0.1)   # the interpreter lock is free meanwhile
            if ready:
                chunk = os.read(stdout.fileno(), 1 << 16)
                if not chunk:
                    raise RuntimeError(f"the worker process exited (status {self.process.wait(timeout=5)})")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def request(self, target: float, ceiling: float, start_gain: float | None) -> WindowPlan:
        """The plan of the latest window (a "failed" plan when the process is gone, slow or broken)."""
        import json

        if self.dead is not None:
            return WindowPlan("notready")
        try:
            if not self.ready:
                msg = self._receive(self.START_TIMEOUT_S)
                if msg is None:
                    return WindowPlan("notready")
                if msg.get("status") != "ready":
                    raise RuntimeError(f"the worker process could not load the model: {msg.get('error')}")
                self.ready = True
                self.ready_s = time.monotonic() - self._spawned_at
            stdin = self.process.stdin
            assert stdin is not None
            stdin.write((json.dumps({"target_lufs": target, "ceiling_dbtp": ceiling,
                                     "start_gain_db": start_gain}) + "\n").encode())
            stdin.flush()
            msg = self._receive(self.PLAN_TIMEOUT_S)
            if msg is None:
                return WindowPlan("notready")
            return WindowPlan(**msg["plan"])
        except Exception as e:
            self.dead = f"{type(e).__name__}: {e}"
            self.close()
            return WindowPlan("failed", error=f"worker process: {self.dead}; no more predictions this run")

    def close(self) -> None:
        """Close its stdin (it exits); terminate it if it has not within 5 s (idempotent)."""
        import subprocess

        if self._closed:
            return
        self._closed = True
        try:
            if self.process.stdin is not None:
                self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            self.process.wait(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()


class LiveMaster:
    """The predictor and glide threads of one live bus (see the module docstring).

    Args:
        settings: the model and its window, hop and glide limits.
        ring: the tap's ring (the audio entering the master chain).
        sample_rate: Hz.
        initial: the master chain's parameters at start, flat ``{"processor.param": value}`` (real units).
        target_lufs: loudness target, LUFS.
        ceiling_dbtp: the user's limiter ceiling, dBTP (the model never moves it).
        post: posts ``[(path, value), ...]`` to the master chain (``LiveBus.post_master_params``'s path).
        notify: queues a notice for the user (``LiveBus.notify``).
        progress: the bus's period count (``LiveBus.blocks``): the glide posts only after the callback
            has run since its last post (like the OSC control), so a stalled callback's queue stays bounded.
        clock: monotonic seconds (tests).
    """

    def __init__(self, settings: MasterModelSettings, ring: WindowRing, *, sample_rate: int,
                 initial: Mapping[str, float], target_lufs: float, ceiling_dbtp: float,
                 post: Callable[[list[tuple[str, float]]], None], notify: Callable[[str], None],
                 progress: Callable[[], int] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.predictor = settings.predictor
        self.ring = ring
        self.sample_rate = int(sample_rate)
        self.window_frames = int(round(settings.window_s * self.sample_rate))
        if self.window_frames > ring.capacity - ring.max_block:
            raise BridgeConfigError(f"the ring ({ring.capacity} frames) is too small for a {settings.window_s:g} s "
                                    "window")
        self.target_lufs = float(target_lufs)
        self.ceiling_dbtp = float(ceiling_dbtp)
        self._post, self._notify, self._clock, self._progress = post, notify, clock, progress
        self._posted_at: int | None = None
        self.applied: dict[str, float] = {k: float(initial[k]) for k in STEERED}
        #: The latest prediction's goals (flat, with the solved gain), or None before the first.
        self.goal: dict[str, float] | None = None
        self.held: set[str] = set()
        self._window = np.zeros((ring.channels, self.window_frames), np.float32)
        self._lock = threading.Lock()        # goals, held set and posting (worker threads and OSC; never the callback)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._last_gain: float | None = None
        self._last_tick: float | None = None
        # counts (read by the summary from another thread: plain numbers)
        self.predictions = 0
        self.values_applied = 0
        self.failures = 0
        self.skipped_silent = 0
        self.clamped_values = 0
        self.last_error: str | None = None
        self.last_lufs: float | None = None
        self.first_prediction_s: float | None = None
        self.cpu_s = 0.0
        self.predict_s = 0.0
        self._started_at: float | None = None
        self._stopped_at: float | None = None
        self._remote: _RemoteWorker | None = None

    # ------------------------------------------------------------------ threads
    def start(self) -> LiveMaster:
        """Start the predictor and glide threads (daemons)."""
        self._stop.clear()
        self._started_at = self._clock()
        if self.settings.worker == "process":
            assert self.settings.model is not None, "checked by MasterModelSettings"
            self._remote = _RemoteWorker(self.settings.model, self.ring, self.sample_rate, self.window_frames,
                                         self._stop)
        self._threads = [threading.Thread(target=self._predict_loop, name="live-master-predict", daemon=True),
                         threading.Thread(target=self._glide_loop, name="live-master-glide", daemon=True)]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        """Stop both threads (idempotent; waits for a prediction in progress, up to 10 s)."""
        self._stop.set()
        for t in self._threads:
            if t.is_alive():
                t.join(timeout=10)
        self._threads = []
        if self._remote is not None:
            self._remote.close()
        if self._stopped_at is None and self._started_at is not None:
            self._stopped_at = self._clock()

    @property
    def elapsed_s(self) -> float:
        """Seconds the threads ran (so far)."""
        if self._started_at is None:
            return 0.0
        return (self._stopped_at or self._clock()) - self._started_at

    def _predict_loop(self) -> None:
        hop = self.settings.hop_s
        nxt = time.monotonic()
        while not self._stop.wait(max(0.0, nxt - time.monotonic())):
            nxt += hop
            try:
                self.predict_once()
            except Exception as e:  # pragma: no cover - predict_once catches the predictor's errors
                self._fail(f"worker: {type(e).__name__}: {e}")
            if time.monotonic() > nxt:   # a prediction longer than the hop: start the next one from now
                nxt = time.monotonic()

    def _glide_loop(self) -> None:
        while not self._stop.wait(GLIDE_TICK_S):
            c0 = time.thread_time()
            try:
                self.glide_once()
            except Exception as e:  # pragma: no cover - a bug must not kill the thread silently
                self._fail(f"glide: {type(e).__name__}: {e}")
            self.cpu_s += time.thread_time() - c0

    # ------------------------------------------------------------------ one prediction
    def predict_once(self) -> bool:
        """Plan the latest window (in the worker process, or here without one) and take its goals;
        returns whether new goals were set.

        Never raises for the predictor's or the solver's errors: they are counted in :attr:`failures`,
        reported, and the goals stay as they were.
        """
        target, ceiling = self.target_lufs, self.ceiling_dbtp
        if self._remote is not None:
            plan = self._remote.request(target, ceiling, self._last_gain)
        else:
            if not self.ring.read_latest(self._window):
                return False
            c0 = time.thread_time()
            plan = plan_window(self.predictor, self._window, self.sample_rate, target_lufs=target,
                               ceiling_dbtp=ceiling, start_gain_db=self._last_gain)
            plan.cpu_s = time.thread_time() - c0
        self.cpu_s += plan.cpu_s
        self.predict_s += plan.seconds
        self.clamped_values += plan.clamped
        if plan.status == "silent":
            self.skipped_silent += 1
        if plan.status == "failed":
            self._fail(plan.error or "unknown error")
        if plan.status != "ok" or plan.params is None:
            return False
        flat = dict(plan.params)
        with self._lock:
            if target != self.target_lufs:   # the target moved during the solve: shift by the change
                flat[GAIN] = _clip(GAIN, flat[GAIN] + self.target_lufs - target)
            self._set_goal(flat)
        self._last_gain = float(plan.params[GAIN])
        self.last_lufs = plan.lufs
        self.predictions += 1
        if self.first_prediction_s is None:
            self.first_prediction_s = self.elapsed_s
        return True

    def _set_goal(self, flat: Mapping[str, float]) -> None:
        """Take new goals, each only past its deadband (call with the lock held)."""
        goal = dict(self.goal) if self.goal is not None else dict(self.applied)
        for path, value in flat.items():
            old = goal[path]
            if path in _LOG:
                moved = abs(math.log2(value / old)) > DEADBAND_OCT
            else:
                moved = abs(value - old) > (GAIN_DEADBAND_DB if path == GAIN else DEADBAND_DB)
            if moved or self.goal is None:
                goal[path] = value
        self.goal = goal

    def _fail(self, text: str) -> None:
        self.failures += 1
        self.last_error = text
        n = self.failures
        if n == 1 or n % 10 == 0:
            self._notify(f"master model {self.settings.name}: prediction failed ({n} so far), the bus keeps its last "
                         f"good parameters: {text}")

    # ------------------------------------------------------------------ glide
    def glide_once(self, dt: float | None = None) -> list[tuple[str, float]]:
        """Move the applied parameters toward the goals by at most the rate limits over ``dt`` seconds
        (default: since the last call, at most :data:`MAX_GLIDE_DT_S`) and post them; returns what was posted."""
        now = self._clock()
        if dt is None:
            dt = GLIDE_TICK_S if self._last_tick is None else now - self._last_tick
        self._last_tick = now
        dt = min(max(float(dt), 0.0), MAX_GLIDE_DT_S)
        if self._progress is not None:
            periods = self._progress()
            if periods == self._posted_at:   # the callback has not taken the last post yet: wait
                return []
            self._posted_at = periods
        step_db = self.settings.max_rate_db_per_s * dt
        step_oct = self.settings.max_rate_oct_per_s * dt
        with self._lock:
            goal = self.goal
            if goal is None:
                return []
            items: list[tuple[str, float]] = []
            for path in STEERED:
                if path in self.held:
                    continue
                cur, want = self.applied[path], goal[path]
                if cur == want:
                    continue
                if path in _LOG:
                    octaves = math.log2(want / cur)
                    new = want if abs(octaves) <= step_oct else cur * 2.0 ** math.copysign(step_oct, octaves)
                else:
                    new = want if abs(want - cur) <= step_db else cur + math.copysign(step_db, want - cur)
                new = _clip(path, new)
                self.applied[path] = new
                items.append((path, new))
            if items:
                try:
                    self._post(items)
                except Exception as e:  # a bus that stopped meanwhile
                    self._fail(f"posting {len(items)} value(s): {type(e).__name__}: {e}")
                    return []
                self.values_applied += len(items)
        return items

    # ------------------------------------------------------------------ control (OSC thread)
    def set_target(self, target_lufs: float) -> None:
        """A new loudness target, LUFS: the gain goal shifts by the change at once (glided)."""
        with self._lock:
            delta = float(target_lufs) - self.target_lufs
            self.target_lufs = float(target_lufs)
            if self.goal is not None:
                self.goal = {**self.goal, GAIN: _clip(GAIN, self.goal[GAIN] + delta)}
            if self._last_gain is not None:
                self._last_gain = _clip(GAIN, self._last_gain + delta)

    def set_ceiling(self, ceiling_dbtp: float) -> None:
        """The user's new ceiling, dBTP (the bus posts it itself; the next prediction plans for it)."""
        self.ceiling_dbtp = float(ceiling_dbtp)

    def hold(self, path: str, value: float, post: Callable[[], object]) -> bool:
        """Hold steered parameter ``path`` at the user's ``value`` for the rest of the run; ``post`` (the
        bus's post of that value) runs under the glide's lock, so no glided value overtakes it.
        Returns True the first time ``path`` is held."""
        with self._lock:
            first = path not in self.held
            self.held.add(path)
            self.applied[path] = float(value)
            post()
        return first

    def summary_text(self) -> str:
        """The summary's words for the model: predictions, values applied, failures, worker CPU."""
        load = self.cpu_s / self.elapsed_s if self.elapsed_s > 0 else 0.0
        per = self.predict_s / self.predictions if self.predictions else 0.0
        held = f"; held by OSC: {', '.join(sorted(self.held))}" if self.held else ""
        error = f"; last failure: {self.last_error}" if self.last_error else ""
        first = f"first at {self.first_prediction_s:.2f} s, " if self.first_prediction_s is not None else ""
        ready = self._remote.ready_s if self._remote is not None else None
        worker = f"worker process ready after {ready:.2f} s; " if ready is not None else ""
        return (f"{self.settings.describe()}: {worker}{self.predictions} predictions ({first}{per * 1e3:.0f} ms each "
                f"with the gain "
                f"solve), {self.values_applied} parameter values applied, {self.failures} predictor failures, "
                f"{self.skipped_silent} silent windows skipped, {self.clamped_values} values clipped to the schema, "
                f"{self.ring.torn_reads} windows re-read; worker CPU {self.cpu_s:.2f} s ({load:.3f} of a core); "
                f"target {self.target_lufs:g} LUFS, ceiling {self.ceiling_dbtp:g} dBTP{held}{error}")


if __name__ == "__main__":
    raise SystemExit(_worker_main())
