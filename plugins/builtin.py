"""The ``builtin`` backend: the schema's processors as pedalboard's built-in JUCE DSP.

Pure functions ``f(audio, sample_rate, **params)`` (STYLE.md point 2) with the
schema's parameter names, and :class:`BuiltinBackend`, the thin stateful shell
that applies automation block by block.

Mapping to pedalboard (0.9), and what it cannot honour (reported as notices):

* ``eq``: ``LowShelfFilter`` / three ``PeakFilter`` / ``HighShelfFilter``. JUCE's
  ``IIRCoefficients`` follow the RBJ Audio EQ Cookbook (peaking: A = 10^(dB/40),
  alpha = sin(w0)/(2Q); shelves of slope ``SHELF_SLOPE`` through ``shelf_q``).
* ``compressor``: ``Compressor`` (hard knee, peak ballistics) then ``Gain`` for
  ``makeup_db``. ``knee_db`` > 0 cannot be honoured: rendered as a hard knee.
* ``reverb``: ``Delay`` (pre-delay) then ``Reverb`` (JUCE Freeverb), wet only.
  ``decay_s`` maps to ``room_size`` through Freeverb's comb feedback
  g = 0.7 + 0.28 * room_size and the RT60 of a feedback comb,
  RT60 = -3 D / (sample_rate * log10 g) with D the mean comb delay
  (1378 samples at 44.1 kHz, JUCE ``Reverb`` tunings). Decays outside the
  reachable 0.61-10.7 s are reported and set to the nearest reachable value.
* ``limiter``: JUCE ``Limiter`` at threshold 0 dB followed by
  ``Gain(ceiling_dbtp)``. JUCE's limiter is two compressors (a 4:1 stage above
  -10 dBFS, then a fast limiting stage) with make-up to 0 dBFS and a final clip:
  its output never passes 0 dBFS, but it is not transparent below the ceiling
  (a -20 dBFS sine comes out about +3.75 dB louder). The mastering stage
  solves the input gain with this limiter in the loop, so the loudness target
  still holds, and closes the loop on true peak.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from mixbridge.errors import BackendUnavailableError, UnknownNameError
from mixbridge.schema import shelf_q
from mixbridge.session import Automation

from .backend import PLUGIN_PROCESSORS, Backend, automation_blocks

try:
    import pedalboard as _pb
except ImportError:  # pragma: no cover - pedalboard is a core dependency
    _pb = None

#: Mean comb delay of JUCE's Freeverb at 44.1 kHz, in samples (tunings 1116..1617).
FREEVERB_MEAN_COMB_SAMPLES = (1116 + 1188 + 1277 + 1356 + 1422 + 1491 + 1557 + 1617) / 8.0
FREEVERB_ROOM_SCALE = 0.28
FREEVERB_ROOM_OFFSET = 0.7
FREEVERB_DAMPING = 0.5


def _need_pedalboard():
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
    for g, f, q in ((peak1_gain_db, peak1_freq_hz, peak1_q), (peak2_gain_db, peak2_freq_hz, peak2_q), (peak3_gain_db, peak3_freq_hz, peak3_q)):
        if g != 0.0 or all_bands:
            bands.append(pb.PeakFilter(cutoff_frequency_hz=f, gain_db=g, q=q))
    if high_shelf_gain_db != 0.0 or all_bands:
        bands.append(pb.HighShelfFilter(cutoff_frequency_hz=high_shelf_freq_hz, gain_db=high_shelf_gain_db,
                                          q=shelf_q(high_shelf_gain_db)))
    return pb.Pedalboard(bands)


def eq(audio: np.ndarray, sample_rate: int, **params: float) -> np.ndarray:
    """RBJ five-band EQ of float32 ``[channels, samples]``; params are ``EQ``'s (dB, Hz, Q)."""
    return eq_board(**params)(np.ascontiguousarray(audio, dtype=np.float32), sample_rate)


def compressor_board(*, threshold_db: float, ratio: float, attack_ms: float, release_ms: float, knee_db: float, makeup_db: float):
    """``Compressor`` + makeup ``Gain`` (``knee_db`` is not supported by JUCE: hard knee)."""
    pb = _need_pedalboard()
    return pb.Pedalboard([
        pb.Compressor(threshold_db=threshold_db, ratio=ratio, attack_ms=attack_ms, release_ms=release_ms),
        pb.Gain(gain_db=makeup_db),
    ])


def compressor(audio: np.ndarray, sample_rate: int, **params: float) -> np.ndarray:
    """Feed-forward compressor of ``[channels, samples]`` (dB, ms, ratio); hard knee."""
    return compressor_board(**params)(np.ascontiguousarray(audio, dtype=np.float32), sample_rate)


def freeverb_room_size(decay_s: float, sample_rate: int) -> float:
    """``room_size`` (may lie outside 0..1) whose low-frequency RT60 is ``decay_s``.

    Source: Freeverb (Jezar, 2000) as in JUCE ``Reverb``: comb feedback
    g = 0.7 + 0.28 * room_size; a comb of delay D samples decays 20 log10 g dB
    per pass, so RT60 = -3 D / (sample_rate * log10 g).
    """
    delay = FREEVERB_MEAN_COMB_SAMPLES * sample_rate / 44100.0
    g = 10.0 ** (-3.0 * delay / (sample_rate * decay_s))
    return (g - FREEVERB_ROOM_OFFSET) / FREEVERB_ROOM_SCALE


def reverb_board(sample_rate: int, *, decay_s: float, predelay_ms: float, return_db: float):
    pb = _need_pedalboard()
    room = min(max(freeverb_room_size(decay_s, sample_rate), 0.0), 1.0)
    board = []
    if predelay_ms > 0:
        board.append(pb.Delay(delay_seconds=predelay_ms / 1000.0, feedback=0.0, mix=1.0))
    board.append(pb.Reverb(room_size=room, damping=FREEVERB_DAMPING, wet_level=1.0, dry_level=0.0, width=1.0))
    board.append(pb.Gain(gain_db=return_db))
    return pb.Pedalboard(board)


def reverb(audio: np.ndarray, sample_rate: int, *, decay_s: float, predelay_ms: float, return_db: float) -> np.ndarray:
    """Wet-only stereo reverb return of a stereo send ``[2, samples]``."""
    return reverb_board(sample_rate, decay_s=decay_s, predelay_ms=predelay_ms, return_db=return_db)(
        np.ascontiguousarray(audio, dtype=np.float32), sample_rate
    )


def limiter_board(*, ceiling_dbtp: float, release_ms: float):
    pb = _need_pedalboard()
    return pb.Pedalboard([pb.Limiter(threshold_db=0.0, release_ms=release_ms), pb.Gain(gain_db=ceiling_dbtp)])


def limiter(audio: np.ndarray, sample_rate: int, *, ceiling_dbtp: float, release_ms: float) -> np.ndarray:
    """Brick-wall limiter with a sample-peak ceiling at ``ceiling_dbtp`` dBFS."""
    return limiter_board(ceiling_dbtp=ceiling_dbtp, release_ms=release_ms)(
        np.ascontiguousarray(audio, dtype=np.float32), sample_rate
    )


#: The pure functions by processor name; a test checks their signatures against the schema.
FUNCTIONS = {"eq": eq, "compressor": compressor, "reverb": reverb, "limiter": limiter}


class BuiltinBackend(Backend):
    """pedalboard built-ins. Automation is applied every ``block_size`` samples."""

    name = "builtin"

    def __init__(self, sample_rate: int, block_size: int = 512) -> None:
        _need_pedalboard()
        super().__init__(sample_rate, block_size)

    def _board(self, processor: str, params: Mapping[str, float], label: str, automated: bool = False):
        if processor == "eq":
            return eq_board(**params, all_bands=automated)
        if processor == "compressor":
            if params.get("knee_db", 0.0) > 0.0:
                self.notice(
                    "builtin backend: pedalboard.Compressor has a hard knee; knee_db > 0 was rendered as 0 dB "
                    "(use --backend vst for ZamComp's soft knee)"
                )
            return compressor_board(**params)
        if processor == "reverb":
            room = freeverb_room_size(params["decay_s"], self.sample_rate)
            if not 0.0 <= room <= 1.0:
                lo = -3.0 * FREEVERB_MEAN_COMB_SAMPLES / 44100.0 / math.log10(FREEVERB_ROOM_OFFSET)
                hi = -3.0 * FREEVERB_MEAN_COMB_SAMPLES / 44100.0 / math.log10(FREEVERB_ROOM_OFFSET + FREEVERB_ROOM_SCALE)
                self.notice(
                    f"builtin backend: reverb decay_s={params['decay_s']:g} s is outside Freeverb's reachable "
                    f"{lo:.2f}-{hi:.1f} s; rendered at the nearest reachable decay"
                )
            return reverb_board(self.sample_rate, **params)
        if processor == "limiter":
            return limiter_board(**params)
        raise UnknownNameError(f"unknown processor '{processor}'; known: {', '.join(PLUGIN_PROCESSORS)}")

    def process_chain(self, stages, audio, *, label: str = "") -> np.ndarray:
        """Fuse unautomated stages into one ``Pedalboard`` call (identical output, one pass)."""
        if any(auto for _, _, auto in stages):
            return super().process_chain(stages, audio, label=label)
        boards = [self._board(proc, params, label) for proc, params, _ in stages]
        fused = _need_pedalboard().Pedalboard([plugin for board in boards for plugin in board])
        return fused(np.ascontiguousarray(audio, dtype=np.float32), self.sample_rate)

    def process(
        self,
        processor: str,
        audio: np.ndarray,
        params: Mapping[str, float],
        automation: Mapping[str, Automation] | None = None,
        *,
        label: str = "",
    ) -> np.ndarray:
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        n = audio.shape[1]
        if not automation:
            return self._board(processor, params, label)(audio, self.sample_rate)
        out = np.empty_like(audio)
        board = None
        for start, stop, p in automation_blocks(params, automation, n, self.sample_rate, self.block_size):
            fresh = self._board(processor, p, label, automated=True)
            if board is None:
                board = fresh
            else:  # keep the processors' state: update parameters in place
                for old, new in zip(board, fresh):
                    for attr in ("cutoff_frequency_hz", "gain_db", "q", "threshold_db", "ratio", "attack_ms",
                                 "release_ms", "room_size", "delay_seconds"):
                        if hasattr(new, attr):
                            setattr(old, attr, getattr(new, attr))
            out[:, start:stop] = board(audio[:, start:stop], self.sample_rate, reset=False)
        return out
