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

import numpy as np

from mixbridge.errors import BackendUnavailableError, ParamRangeError, UnknownNameError
from mixbridge.schema import shelf_q
from mixbridge.session import Automation

from .backend import PLUGIN_PROCESSORS, Backend, automation_blocks, automation_curve
from .dynamics import CompressorState, compress
from .reverb import reverb as reference_reverb

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
