"""The grey-box proxies' CPU streaming path: the artifact's control graph plus the numpy reference DSP.

A grey-box artifact (:mod:`mixbridge.models.proxy_greybox`) holds two ONNX graphs: ``model.onnx``,
the whole proxy as a block graph (what :class:`~mixbridge.export.runtime.StreamingSession` runs on a
GPU provider and what ``verify`` checks), and ``controls.onnx``, its learned knob law alone
(``params [1, n_params]`` normalised -> ``controls [1, n_params + 1]``: the DSP's real-unit values in
``param_names`` order, then ``beta``). On the CPU the block graph costs about 250 small nodes per
block; :class:`GreyBoxDSP` instead runs the control graph only when the parameters move and renders
the project's numpy reference stages, which the torch model mirrors
(``tests/models/test_proxy_greybox.py``), block by block:

* EQ: the five biquads of :func:`mixbridge.plugins.rbj.eq_sections` as one second-order-section
  cascade, state carried;
* compressor: the equations of :func:`mixbridge.plugins.dynamics.compress` (Giannoulis, Massberg
  and Reiss, JAES 2012: linked peak detector, soft-knee gain computer, the release law with the
  learned ``beta``, the one-pole attack), state carried.

**Hot path without allocation.** Every buffer is allocated at construction for the largest block
(``max_block``), as the live master chain (:class:`~mixbridge.plugins.master_bus.StreamingMaster`)
does; a block works in place on views of them (made once per block size, or up front with
:meth:`GreyBoxDSP.prepare`), and every recursion (the EQ cascade, the release low-pass, the attack
one-pole) runs through scipy's compiled in-place second-order-section kernel
(:func:`mixbridge.plugins.master_kernels.compiled_filters`), skipping the 20-40 us of argument
checks per call of ``scipy.signal.sosfilt``/``lfilter``. The detector, the gain computer and the
release peak hold (the max-plus form of :func:`mixbridge.plugins.dynamics.peak_release`, one
``np.maximum.accumulate``) are the live master chain's in-place kernels
(:func:`~mixbridge.plugins.master_kernels.peak_level_db_`,
:func:`~mixbridge.plugins.master_kernels.static_reduction_db_`,
:func:`~mixbridge.plugins.master_kernels.release_`). The output
equals the reference functions run on the whole signal (``tests/export/test_greybox_stream.py``:
blocks of 1, 64 and 512 samples, and no traced allocation over 1000 blocks). When the parameters
move, the control graph and the biquad design run again for that block (they allocate: a glide
costs that on each block until it lands).

**Live-thread safety.** :meth:`GreyBoxDSP.process` never raises on audio and never warns: an input
block with a sample that is NaN, infinite or beyond +-:data:`~mixbridge.export.runtime.GUARD_LIMIT`
(+60 dBFS, the runtime's own guard) is processed as silence (``refused_blocks``); an output block
like that (a state gone wrong) becomes silence and every state restarts (``nonfinite_blocks``);
output beyond ``ceiling`` (linear; default :data:`DEFAULT_CEILING`, None: no clip) is clipped to it
and counted in ``clipped_samples``. Filter states and reductions below :data:`FLUSH_BELOW` are set
to 0 after each block, so silence after a signal costs no more than the signal (no subnormal floats).
The live bus leaves ``ceiling`` at None: its master chain follows the proxy and clips the bus at full
scale last (:mod:`mixbridge.bridge.live_chain`), so clipping before the master's gain would distort
what the master turns down.

Torch-free (numpy, scipy, onnxruntime), like the runtime that uses it.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from mixbridge.errors import AudioInputError, MixbridgeError, ParamRangeError
from mixbridge.plugins.master_kernels import compiled_filters, peak_level_db_, release_, static_reduction_db_
from mixbridge.plugins.rbj import eq_sections

from .artifact import MAX_BLOCK_SIZE, ArtifactError, _check_file
from .runtime import _within_guard

#: The compressor's real-unit arguments, in the schema's order.
COMPRESSOR_LEAVES = ("threshold_db", "ratio", "attack_ms", "release_ms", "knee_db", "makeup_db")
#: Biquad sections of the schema's EQ.
EQ_SECTIONS = 5
#: Default output ceiling: None, no clip (the live bus clips after its master chain). A host that plays
#: the proxy's output directly passes ``ceiling=1.0`` (0 dBFS): samples beyond it are clipped and counted.
DEFAULT_CEILING: float | None = None
#: Filter states and gain reductions below this magnitude are set to 0 after each block. A decaying
#: tail (silence after a signal) otherwise reaches subnormal floats, which cost 10-100x on x86 (the
#: eqcomp proxy's block went from 0.021 to 0.061 of a core on silence); 1e-30 is -600 dB of audio in
#: the EQ states, and a reduction of 1e-30 dB gives a gain of exactly 1.0 in float64.
FLUSH_BELOW = 1e-30
_LN10_20 = math.log(10.0) / 20.0


class GreyBoxConfigError(ValueError, MixbridgeError):
    """A :class:`GreyBoxDSP` asked for sizes it cannot be built for (``max_block``, ``batch``, ``channels``):
    a configuration value, not audio."""


class _Views:
    """Views of :class:`GreyBoxDSP`'s preallocated buffers for one block size ``n`` (no data of their own)."""

    __slots__ = ("x", "x3", "absx", "level", "gr", "low", "tmp")

    def __init__(self, buffers: dict[str, np.ndarray], batch: int, channels: int, n: int) -> None:
        bc = batch * channels
        self.x = buffers["x"][:bc * n].reshape(bc, n)          # C-contiguous, as the sos kernel needs
        self.x3 = self.x.reshape(batch, channels, n)
        self.absx = buffers["absx"][:bc * n].reshape(batch, channels, n)
        self.level, self.gr, self.low, self.tmp = (buffers[k][:batch * n].reshape(batch, n)
                                                   for k in ("level", "gr", "low", "tmp"))


class GreyBoxDSP:
    """Stream a grey-box artifact's DSP for ``batch`` independent signals of ``channels`` channels each.

    Args:
        folder: the artifact folder; ``sidecar``: its checked sidecar (``dsp`` and ``files.controls``).
        batch: independent signals (a mono proxy runs each channel as its own signal);
            ``channels``: channels of each signal (the compressor links them).
        sample_rate: Hz.
        max_block: the largest block in samples (buffers are allocated for it at construction).
        ceiling: output clip level, linear (1.0 = 0 dBFS), or None for no clip.

    Raises:
        ArtifactError: no ``dsp`` record or a missing/corrupted ``controls.onnx``.
        GreyBoxConfigError: ``max_block`` outside 1..4096, or ``batch``/``channels`` below 1.
        ParamRangeError: a ``ceiling`` that is not a finite level above 0.
    """

    def __init__(self, folder: str | Path, sidecar: dict, batch: int, channels: int, sample_rate: int,
                 max_block: int = MAX_BLOCK_SIZE, ceiling: float | None = DEFAULT_CEILING) -> None:
        import onnxruntime as ort

        rec = sidecar.get("dsp") or {}
        if rec.get("kind") != "greybox" or "controls" not in (sidecar.get("files") or {}):
            raise ArtifactError(f"{folder}: not a grey-box artifact (no dsp record or controls graph); re-export it")
        if not 1 <= int(max_block) <= MAX_BLOCK_SIZE:
            raise GreyBoxConfigError(f"max_block = {max_block} samples is outside 1..{MAX_BLOCK_SIZE}; "
                                     "pass the largest block the host will send")
        if int(batch) < 1 or int(channels) < 1:
            raise GreyBoxConfigError(f"batch = {batch} and channels = {channels} must both be >= 1")
        if ceiling is not None and not (math.isfinite(float(ceiling)) and float(ceiling) > 0.0):
            raise ParamRangeError(f"ceiling = {ceiling} must be a finite linear level > 0 (1.0 = 0 dBFS), "
                                  "or None for no clip")
        path = _check_file(Path(folder), sidecar["files"]["controls"], "controls")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.entries = list(rec["entries"])
        self._eq, self._compressor = "eq" in self.entries, "compressor" in self.entries
        self.param_names = list(sidecar["schema"]["param_names"])
        self.sample_rate = int(sample_rate)
        self.batch, self.channels = int(batch), int(channels)
        self.max_block = int(max_block)
        self.ceiling = None if ceiling is None else float(ceiling)
        #: Output samples clipped to ``ceiling`` since construction.
        self.clipped_samples = 0
        #: Input blocks with a sample that is NaN, infinite or beyond +-GUARD_LIMIT, processed as silence.
        self.refused_blocks = 0
        #: Output blocks that were not finite or beyond +-GUARD_LIMIT (silence out, the states restarted).
        self.nonfinite_blocks = 0
        self._sosfilt = compiled_filters()[0]
        self._last = np.full(len(self.param_names), np.nan, np.float32)  # NaN: no controls computed yet
        self._changed = np.zeros(len(self.param_names), bool)
        self._values: dict[str, float] = {}
        self._comp: dict[str, float] = {}
        self._beta = 0.0
        self._sos = np.zeros((EQ_SECTIONS, 6))
        # one-pole sections [1 - a, 0, 0, 1, -a, 0] of the release low-pass and of the attack
        self._low_sos = np.zeros((1, 6))
        self._attack_sos = np.zeros((1, 6))
        self._release_step = 0.0
        self._knee = self._slope = self._thr = self._makeup = 0.0
        b, bc, m = self.batch, self.batch * self.channels, self.max_block
        self._buffers = {
            "x": np.zeros(bc * m), "absx": np.zeros(bc * m),
            "level": np.zeros(b * m), "gr": np.zeros(b * m), "low": np.zeros(b * m), "tmp": np.zeros(b * m),
            "ramp": np.zeros(m), "index": np.arange(m, dtype=np.float64),
        }
        self._views: dict[int, _Views] = {}
        # state, carried from block to block (reset() clears it in place)
        # the filter states, views of one buffer (flushed in one go, see FLUSH_BELOW)
        sizes = (bc * EQ_SECTIONS * 2, b * 2, b * 2)
        self._states = np.zeros(sum(sizes))
        self._zi = self._states[:sizes[0]].reshape(bc, EQ_SECTIONS, 2)               # EQ cascade, per channel
        self._low_zi = self._states[sizes[0]:sizes[0] + sizes[1]].reshape(b, 1, 2)   # release low-pass, per signal
        self._attack_zi = self._states[sizes[0] + sizes[1]:].reshape(b, 1, 2)        # attack one-pole, per signal
        self._release_log: list[float] = [-math.inf] * b  # log of the held reduction, per signal
        self._flush_scratch = (np.zeros(self._states.shape), np.zeros(self._states.shape, bool))
        self._mask = np.zeros(b * m, bool)
        self._clip_mask = np.zeros(bc * m, bool)
        self.prepare([self.max_block])
        self.reset()

    def prepare(self, block_sizes) -> None:
        """Make the buffer views for these block sizes now, not on their first call (outside the audio thread).

        Raises:
            AudioInputError: a size outside 1..``max_block``.
        """
        for n in block_sizes:
            self._views_for(int(n))

    def _views_for(self, n: int) -> _Views:
        v = self._views.get(n)
        if v is None:
            if not 1 <= n <= self.max_block:
                raise AudioInputError(f"block of {n} samples; this DSP was built for 1..{self.max_block}")
            v = self._views[n] = _Views(self._buffers, self.batch, self.channels, n)
        return v

    def reset(self) -> None:
        """Every signal at rest: compressor and EQ states cleared (in place: no allocation)."""
        self._states.fill(0.0)
        for b in range(self.batch):
            self._release_log[b] = -math.inf

    def controls(self, params: np.ndarray) -> dict[str, float]:
        """The DSP values for normalised ``params [n_params]`` (the control graph, run when they change):
        ``{"processor.param": value, "compressor.beta": beta}``."""
        p = np.asarray(params, np.float32).reshape(-1)
        np.not_equal(p, self._last, out=self._changed)
        if self._changed.any():
            out = np.asarray(self.session.run(None, {"params": np.ascontiguousarray(p).reshape(1, -1)})[0],
                             np.float64)[0]
            vals = dict(zip(self.param_names, out[:-1].tolist()))
            if self._eq:
                eq = {name.split(".", 1)[1]: v for name, v in vals.items() if name.startswith("eq.")}
                for i, (b, a) in enumerate(eq_sections(eq, self.sample_rate)):
                    self._sos[i, :3], self._sos[i, 3:] = b, a
            if self._compressor:
                c = self._comp = {leaf: vals[f"compressor.{leaf}"] for leaf in COMPRESSOR_LEAVES}
                self._beta = float(out[-1])
                ar = math.exp(-1.0 / (c["release_ms"] * 1e-3 * self.sample_rate))
                aa = math.exp(-1.0 / (c["attack_ms"] * 1e-3 * self.sample_rate))
                self._low_sos[0] = (1.0 - ar, 0.0, 0.0, 1.0, -ar, 0.0)
                self._attack_sos[0] = (1.0 - aa, 0.0, 0.0, 1.0, -aa, 0.0)
                self._release_step = 1.0 / (c["release_ms"] * 1e-3 * self.sample_rate)
                self._thr, self._knee = float(c["threshold_db"]), float(c["knee_db"])
                self._slope, self._makeup = 1.0 - 1.0 / float(c["ratio"]), float(c["makeup_db"])
            self._values = {**vals, "compressor.beta": float(out[-1])}
            self._last[:] = p
        return self._values

    def process(self, signals: np.ndarray, params: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Render ``signals [batch, channels, n]`` at normalised ``params [n_params]`` into ``out`` (same
        shape, float32); returns it. ``n`` is 1..``max_block`` samples.

        Raises:
            AudioInputError: a block size outside 1..``max_block`` (the only error; the audio itself
                never raises, see the module docstring).
        """
        self.controls(params)
        n = signals.shape[-1]
        v = self._views_for(n)
        x = v.x
        np.copyto(v.x3, signals, casting="unsafe")
        if not _within_guard(x):  # NaN, inf or beyond +-GUARD_LIMIT: not audio; silence for this block
            self.refused_blocks += 1
            x.fill(0.0)
        if self._eq:
            self._sosfilt(self._sos, x, self._zi)
        if self._compressor:
            self._compress(v, n)
        mag, small = self._flush_scratch
        np.abs(self._states, out=mag)
        np.less(mag, FLUSH_BELOW, out=small)
        np.copyto(self._states, 0.0, where=small)
        if not _within_guard(x):  # a state that went wrong: this block is silence and the states restart
            self.nonfinite_blocks += 1
            x.fill(0.0)
            self.reset()
        if self.ceiling is not None:
            np.abs(v.x3, out=v.absx)
            if float(np.maximum.reduce(v.absx, axis=None)) > self.ceiling:
                over = self._clip_mask[:v.absx.size].reshape(v.absx.shape)
                np.greater(v.absx, self.ceiling, out=over)
                self.clipped_samples += int(np.count_nonzero(over))
                np.clip(x, -self.ceiling, self.ceiling, out=x)
        np.copyto(out, v.x3, casting="same_kind")
        return out

    def _compress(self, v: _Views, n: int) -> None:
        """In place on ``v.x``: :func:`mixbridge.plugins.dynamics.compress` for each signal, state carried."""
        mx = np.maximum
        level, gr = v.level, v.gr
        # detector and gain computer, the master chain's kernels: linked peak level in dB per signal,
        # then the reduction in dB (>= 0) of dynamics.static_reduction_db
        peak_level_db_(v.x3, v.absx, level)
        static_reduction_db_(level, self._thr, self._knee, self._slope, gr, v.tmp)
        # release law (dynamics.gain_reduction_db): beta P + peak_release(max(gr - beta P, 0))
        beta = self._beta
        if beta > 0.0:
            low = v.low
            low[...] = gr
            self._sosfilt(self._low_sos, low, self._low_zi)
            low *= beta
            np.subtract(gr, low, out=gr)
            mx(gr, 0.0, out=gr)
            self._peak_release(gr, n)
            gr += low
        else:
            self._peak_release(gr, n)
        # attack one-pole (on a reduction with its subnormal-prone tiny values at 0: FLUSH_BELOW),
        # then the gain 10^((makeup - reduction) / 20) on every channel
        small = self._mask[:gr.size].reshape(gr.shape)
        np.less(gr, FLUSH_BELOW, out=small)
        np.copyto(gr, 0.0, where=small)
        self._sosfilt(self._attack_sos, gr, self._attack_zi)
        np.subtract(self._makeup, gr, out=gr)
        gr *= _LN10_20
        np.exp(gr, out=gr)
        np.multiply(v.x3, gr[:, None, :], out=v.x3)

    def _peak_release(self, values: np.ndarray, n: int) -> None:
        """In place on ``values [batch, n]``: ``y[n] = max(g[n], aR y[n-1])`` from each signal's carried
        state (:func:`mixbridge.plugins.master_kernels.release_`, row by row)."""
        ramp, index, state = self._buffers["ramp"][:n], self._buffers["index"][:n], self._release_log
        for b in range(self.batch):
            state[b] = release_(values[b], ramp, index, self._release_step, state[b])
