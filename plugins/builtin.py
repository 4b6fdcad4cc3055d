"""The ``builtin`` backend: pedalboard's built-in EQ and mixbridge's reference compressor, reverb and limiter.

Pure functions ``f(audio, sample_rate, **params)`` (STYLE.md point 2) with the
schema's parameter names, and :class:`BuiltinBackend`, the thin stateful shell
that applies automation block by block.

Mapping to pedalboard (0.9), and what it cannot honour (reported as notices):

* ``eq``: ``LowShelfFilter`` / three ``PeakFilter`` / ``HighShelfFilter``. JUCE's
  ``IIRCoefficients`` follow the RBJ Audio EQ Cookbook (peaking: A = 10^(dB/40),
  alpha = sin(w0)/(2Q); shelves of slope ``SHELF_SLOPE`` through ``shelf_q``).
* ``compressor``: the schema's reference compressor, :func:`mixbridge.plugins.dynamics.compress`
  (numpy: linked peak detector, soft knee of full width ``knee_db``, 63 % time
  constants on the gain reduction). pedalboard's JUCE ``Compressor`` is not used:
  its attack and release are 99 % times on the detector envelope (``attack_ms = 10``
  reached 63 % of its reduction after 2 ms) and it has no knee.
* ``reverb``: the schema's reference reverb, :func:`mixbridge.plugins.reverb.reverb`
  (unit-energy exponentially decaying noise, RT60 = ``decay_s`` exactly, any value of
  the schema's range). JUCE's Freeverb is not used: its RT60 cannot go below 0.61 s
  and its wet energy is not defined by its parameters.
* ``limiter``: the true-peak look-ahead limiter of the one master bus
  (:mod:`mixbridge.plugins.master_bus`, with its EQ flat, compressor at ratio 1 and
  gain 0 dB). JUCE's ``Limiter`` is not used: it is a sample-peak limiter that let a
  true peak of +1.87 dBTP through at a -1 dBTP ceiling.

Automation: EQ bands update their coefficients every ``block_size`` samples with the
filters' state kept; the compressor carries its detector state across blocks
(:class:`~mixbridge.plugins.dynamics.CompressorState`); the reverb's ``return_db`` is
an exact per-sample gain, while ``decay_s`` and ``predelay_ms`` cannot be automated
(a :class:`~mixbridge.errors.ParamRangeError` says so).
"""
from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

import numpy as np

from mixbridge.errors import BackendUnavailableError, ParamRangeError, UnknownNameError
from mixbridge.schema import shelf_q
from mixbridge.session import Automation

from .backend import PLUGIN_PROCESSORS, Backend, Chain, Stage, automation_blocks, automation_curve
from .dynamics import CompressorState, compress
from .reverb import reverb as reference_reverb
from .reverb import reverb_ir

_pb: ModuleType | None
try:
    import pedalboard as _pb
except ImportError:  # pragma: no cover - pedalboard is a core dependency
    _pb = None

def _need_pedalboard() -> ModuleType:
    if _pb is None:
        raise BackendUnavailableError("the builtin backend needs pedalboard: pip install pedalboard")
    return _pb


def eq_board(
    *,
    low_shelf_gain_db: float,
    low_shelf_freq_hz: float,
    peak1_gain_db: float,
    peak1_freq_hz: float,
    peak1_q: float,
    peak2_gain_db: float,
    peak2_freq_hz: float,
    peak2_q: float,
    peak3_gain_db: float,
    peak3_freq_hz: float,
    peak3_q: float,
    high_shelf_gain_db: float,
    high_shelf_freq_hz: float,
    all_bands: bool = False,
):
    """The five-band EQ as a ``pedalboard.Pedalboard``.

    Bands at 0 dB are left out (an exact identity) unless ``all_bands``, which
    keeps the board's layout fixed for block-wise automation.
    """
    pb = _need_pedalboard()
    bands = []
    if low_shelf_gain_db != 0.0 or all_bands:
        bands.append(pb.LowShelfFilter(cutoff_frequency_hz=low_shelf_freq_hz, gain_db=low_shelf_gain_db,
                                         q=shelf_q(low_shelf_gain_db)))
    for g, f, q in ((peak1_gain_db, peak1_freq_hz, peak1_q), (peak2_gain_db, peak2_freq_hz, peak2_q),
                    (peak3_gain_db, peak3_freq_hz, peak3_q)):
        if g != 0.0 or all_bands:
            bands.append(pb.PeakFilter(cutoff_frequency_hz=f, gain_db=g, q=q))
    if high_shelf_gain_db != 0.0 or all_bands:
        bands.append(pb.HighShelfFilter(cutoff_frequency_hz=high_shelf_freq_hz, gain_db=high_shelf_gain_db,
                                          q=shelf_q(high_shelf_gain_db)))
    return pb.Pedalboard(bands)


def eq(audio: np.ndarray, sample_rate: int, **params: float) -> np.ndarray:
    """RBJ five-band EQ of float32 ``[channels, samples]``; params are ``EQ``'s (dB, Hz, Q)."""
    return eq_board(**params, all_bands=False)(np.ascontiguousarray(audio, dtype=np.float32), sample_rate)


def compressor(audio: np.ndarray, sample_rate: int, *, threshold_db: float, ratio: float, attack_ms: float,
               release_ms: float, knee_db: float, makeup_db: float) -> np.ndarray:
    """Feed-forward compressor of ``[channels, samples]`` (dB, ms, ratio): :func:`~.dynamics.compress`."""
    return compress(audio, sample_rate, threshold_db=threshold_db, ratio=ratio, attack_ms=attack_ms,
                    release_ms=release_ms, knee_db=knee_db, makeup_db=makeup_db)


def reverb(audio: np.ndarray, sample_rate: int, *, decay_s: float, predelay_ms: float, return_db: float) -> np.ndarray:
    """Wet-only stereo reverb return of a stereo send ``[2, samples]``: :func:`~.reverb.reverb`."""
    return reference_reverb(audio, sample_rate, decay_s=decay_s, predelay_ms=predelay_ms, return_db=return_db)


def limiter(audio: np.ndarray, sample_rate: int, *, ceiling_dbtp: float, release_ms: float) -> np.ndarray:
    """True-peak look-ahead limiter at ``ceiling_dbtp`` (the master bus's limiter stage alone)."""
    from .master_bus import render_master

    return render_master(audio, sample_rate, {"limiter": {"ceiling_dbtp": ceiling_dbtp, "release_ms": release_ms}})


#: The pure functions by processor name; a test checks their signatures against the schema.
FUNCTIONS = {"eq": eq, "compressor": compressor, "reverb": reverb, "limiter": limiter}


class BuiltinBackend(Backend):
    """pedalboard built-in EQ and the reference compressor, reverb and limiter (see the module docstring)."""

    name = "builtin"

    def __init__(self, sample_rate: int, block_size: int = 512, clamp: bool = False) -> None:
        _need_pedalboard()
        super().__init__(sample_rate, block_size, clamp)  # renders the whole schema range: nothing to clamp

    def open_chain(self, stages: list[Stage], *, label: str = "") -> Chain:
        """A streaming :class:`~.backend.Chain` of eq/compressor/reverb stages (a limiter stage: the
        non-streaming default). Block by block it renders what :meth:`process` renders on the whole
        signal: the EQ bit for bit, the compressor and the reverb to float32 rounding."""
        if all(p in ("eq", "compressor", "reverb") for p, _, _ in stages):
            return _BuiltinChain(self, stages, label)
        return Chain(self, stages, label)

    def _static(self, processor: str, audio: np.ndarray, params: Mapping[str, float]) -> np.ndarray:
        sr = self.sample_rate
        if processor == "eq":
            return eq(audio, sr, **params)
        if processor == "compressor":
            return compressor(audio, sr, **params)
        if processor == "reverb":
            return reverb(audio, sr, **params)
        if processor == "limiter":
            return limiter(audio, sr, **params)
        raise UnknownNameError(f"unknown processor '{processor}'; known: {', '.join(PLUGIN_PROCESSORS)}")

    def process(self, processor: str, audio: np.ndarray, params: Mapping[str, float],
                automation: Mapping[str, Automation] | None = None, *, label: str = "") -> np.ndarray:
        """Render one processor (see :meth:`.Backend.process`): float32 ``[channels, samples]``.

        Automation runs block by block (:func:`~.backend.automation_blocks`, ``block_size``
        samples) with the EQ's and the compressor's state carried; only ``reverb.return_db``
        can be automated on the reverb (an exact gain on the wet return).

        Raises:
            UnknownNameError: an unknown processor name.
            ParamRangeError: automation of a reverb or limiter parameter this backend keeps static.
        """
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if processor not in PLUGIN_PROCESSORS:
            raise UnknownNameError(f"unknown processor '{processor}'; known: {', '.join(PLUGIN_PROCESSORS)}")
        if not automation:
            return self._static(processor, audio, params)
        n, sr = audio.shape[1], self.sample_rate
        where = f"{label}: " if label else ""
        if processor in ("reverb", "limiter"):
            fixed = sorted(k for k in automation if k != "return_db") if processor == "reverb" else sorted(automation)
            if fixed:
                raise ParamRangeError(
                    f"{where}{processor}.{fixed[0]} cannot be automated on the builtin backend "
                    f"(only reverb.return_db can); remove that curve or use a static value")
            wet = self._static(processor, audio, {**params, "return_db": 0.0})
            curve = automation_curve(automation["return_db"], n, sr)
            return (wet * np.power(10.0, curve / 20.0)).astype(np.float32)
        out = np.empty_like(audio)
        if processor == "compressor":
            state = CompressorState()
            for start, stop, p in automation_blocks(params, automation, n, sr, self.block_size):
                out[:, start:stop] = compress(audio[:, start:stop], sr, state=state, **p)
            return out
        board = None
        for start, stop, p in automation_blocks(params, automation, n, sr, self.block_size):
            fresh = eq_board(**p, all_bands=True)
            if board is None:
                board = fresh
            else:  # keep the filters' state: update their coefficients in place
                for old, new in zip(board, fresh):
                    for attr in ("cutoff_frequency_hz", "gain_db", "q"):
                        setattr(old, attr, getattr(new, attr))
            out[:, start:stop] = board(audio[:, start:stop], sr, reset=False)
        return out


def _value_at(automation: Automation, sample: int, sample_rate: int) -> float:
    """An automation curve's value at one sample (the same value as ``automation_curve(...)[sample]``)."""
    t = np.arange(sample, sample + 1, dtype=np.float64) / float(sample_rate)
    return float(np.interp(t, np.asarray(automation.times_s, dtype=np.float64),
                           np.asarray(automation.values, dtype=np.float64))[0])


class _EqStream:
    """The EQ with its filters' state carried across blocks (pedalboard with ``reset=False``)."""

    def __init__(self, backend: BuiltinBackend, params: Mapping[str, float], automation) -> None:
        self.sr, self.bs = backend.sample_rate, backend.block_size
        self.params, self.automation = dict(params), dict(automation or {})
        self.board: Any = None if self.automation else eq_board(**self.params, all_bands=False)

    def _params_at(self, sample: int) -> dict:
        p = dict(self.params)
        for k, a in self.automation.items():
            p[k] = _value_at(a, sample, self.sr)
        return p

    def process(self, x: np.ndarray, start: int) -> np.ndarray:
        if not self.automation:
            assert self.board is not None
            return self.board(x, self.sr, reset=False)
        out = np.empty_like(x)
        for a, b, first in _host_blocks(start, x.shape[1], self.bs):
            if first:  # a host block starts here: its parameters, read at its first sample
                fresh = eq_board(**self._params_at(start + a), all_bands=True)
                if self.board is None:
                    self.board = fresh
                else:  # keep the filters' state: update their coefficients in place
                    for old, new in zip(self.board, fresh):
                        for attr in ("cutoff_frequency_hz", "gain_db", "q"):
                            setattr(old, attr, getattr(new, attr))
            assert self.board is not None
            out[:, a:b] = self.board(np.ascontiguousarray(x[:, a:b]), self.sr, reset=False)
        return out


def _host_blocks(start: int, n: int, block_size: int):
    """Split samples ``start .. start + n`` at the host-block boundaries (multiples of ``block_size``):
    yields ``(a, b, first)`` offsets into the block, ``first`` when a host block begins at ``a``."""
    a = 0
    while a < n:
        g = start + a
        b = min(n, a + block_size - g % block_size)
        yield a, b, g % block_size == 0
        a = b


class _CompressorStream:
    """The reference compressor with its detector state carried across blocks."""

    def __init__(self, backend: BuiltinBackend, params: Mapping[str, float], automation) -> None:
        self.sr, self.bs = backend.sample_rate, backend.block_size
        self.params, self.automation = dict(params), dict(automation or {})
        self.state = CompressorState()
        self._p = dict(self.params)  # the values of the host block being rendered

    def process(self, x: np.ndarray, start: int) -> np.ndarray:
        if not self.automation:
            return compress(x, self.sr, state=self.state, **self.params)
        out = np.empty_like(x)
        for a, b, first in _host_blocks(start, x.shape[1], self.bs):
            if first:  # a host block starts here: its parameters, read at its first sample
                self._p = dict(self.params)
                for k, c in self.automation.items():
                    self._p[k] = _value_at(c, start + a, self.sr)
            out[:, a:b] = compress(x[:, a:b], self.sr, state=self.state, **self._p)
        return out


class _ReverbStream:
    """The reference reverb (:func:`~.reverb.reverb`) by overlap-add: each block's convolution with the
    impulse response, plus the tail the blocks before left (float64), so consecutive blocks give the
    whole render's return to float32 rounding (the FFT sizes differ)."""

    def __init__(self, backend: BuiltinBackend, params: Mapping[str, float], automation, label: str) -> None:
        fixed = sorted(k for k in (automation or {}) if k != "return_db")
        if fixed:
            where = f"{label}: " if label else ""
            raise ParamRangeError(f"{where}reverb.{fixed[0]} cannot be automated on the builtin backend "
                                  "(only reverb.return_db can); remove that curve or use a static value")
        self.sr = backend.sample_rate
        self.curve = (automation or {}).get("return_db")
        self.gain = 1.0 if self.curve is not None else 10.0 ** (float(params["return_db"]) / 20.0)
        self.ir = reverb_ir(self.sr, decay_s=params["decay_s"], predelay_ms=params["predelay_ms"], channels=2)
        self.tail = np.zeros((2, self.ir.shape[1] - 1))

    def process(self, x: np.ndarray, start: int) -> np.ndarray:
        import math

        from scipy.signal import oaconvolve

        n = x.shape[1]
        mono = x.astype(np.float64).sum(axis=0, keepdims=True) / math.sqrt(x.shape[0])
        y = oaconvolve(mono, self.ir, mode="full", axes=1)
        m = self.tail.shape[1]
        y[:, :m] += self.tail
        self.tail = y[:, n:].copy()
        wet = (y[:, :n] * self.gain).astype(np.float32)
        if self.curve is None:
            return wet
        t = np.arange(start, start + n, dtype=np.float64) / float(self.sr)
        c = np.interp(t, np.asarray(self.curve.times_s, dtype=np.float64),
                      np.asarray(self.curve.values, dtype=np.float64))
        return (wet * np.power(10.0, c / 20.0)).astype(np.float32)


class _BuiltinChain(Chain):
    """The builtin processors in series, each carrying its state across blocks (streaming)."""

    streaming = True

    def __init__(self, backend: BuiltinBackend, stages: list[Stage], label: str = "") -> None:
        super().__init__(backend, stages, label)
        self._streams: list = []
        for processor, params, automation in stages:
            if processor == "eq":
                self._streams.append(_EqStream(backend, params, automation))
            elif processor == "compressor":
                self._streams.append(_CompressorStream(backend, params, automation))
            elif processor == "reverb":
                self._streams.append(_ReverbStream(backend, params, automation, label))
            else:
                raise UnknownNameError(f"processor '{processor}' has no block-wise form on the builtin backend "
                                       "(eq, compressor, reverb); render it with process()")

    def process(self, block: np.ndarray, start: int = 0) -> np.ndarray:
        x = np.ascontiguousarray(block, dtype=np.float32)
        for s in self._streams:
            x = s.process(x, start)
        return x

