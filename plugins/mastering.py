"""Mastering a mix with the one master bus, and the one gain solver.

The master bus is :mod:`mixbridge.plugins.master_bus` (EQ -> bus compressor ->
gain -> true-peak look-ahead limiter), the same chain for the builtin and the vst
backend, for ``render`` and for the live JACK bus. Its gain stage is solved here,
once, by :func:`solve_master_gain`: secant steps on the integrated loudness
(ITU-R BS.1770-4) of the chain's own output until it is within
``SOLVE_TOLERANCE_LU`` of ``loudness.target_lufs`` (``LOUDNESS_TOLERANCE_LU`` is what a
render accepts). A session stores the result
(``master.solved_gain_db``) and every later render applies that one value, so the
same session gives the same master in every path; :func:`master` reports, and never
hides, a stored gain that no longer meets the target (e.g. after the tracks changed).

The limiter's ceiling is a true-peak ceiling by construction (its detector is the
4x interpolator of BS.1770-4 Annex 2); the result's ``true_peak_dbtp`` is measured
with :func:`mixbridge.loudness.true_peak_dbtp`.

Memory: each render of the chain writes into one output buffer and is measured block by block
while it renders (the block meters of :mod:`mixbridge.loudness`), so
mastering a mix holds the mix and one or two outputs of its size, never float64 copies of them.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from mixbridge.errors import ParamRangeError
from mixbridge.loudness import SILENT_LUFS, LoudnessMeter, integrated_lufs, true_peak_dbtp
from mixbridge.schema import GAIN, MAX_MASTER_GAIN_DB
from mixbridge.session import Automation

from .master_bus import OFFLINE_CHUNK, StreamingMaster

#: Accepted distance from the loudness target, in LU (a stored gain that misses by more is stale).
LOUDNESS_TOLERANCE_LU = 0.1
#: The solver aims closer than that, so that the same gain on another backend's render of the
#: session (the vst mix is 0.03-0.05 LU from the builtin one on the demo songs) stays within it.
SOLVE_TOLERANCE_LU = 0.02
#: Secant iterations before the solver gives up (it converges in 2-4 on music).
MAX_ITERATIONS = 12
__all__ = ["MasterResult", "master", "solve_master_gain", "chain_params", "LOUDNESS_TOLERANCE_LU",
           "MAX_MASTER_GAIN_DB"]


@dataclass
class MasterResult:
    """The mastered audio float32 ``[2, samples]`` and what was measured on the way.

    ``gain_db`` is the gain stage's value (solved, or the stored one);
    ``solved`` says which; ``lufs``/``true_peak_dbtp`` are measured on ``audio``;
    ``pre_lufs``/``pre_true_peak_dbtp`` on the mix that went in.
    """

    audio: np.ndarray
    gain_db: float
    lufs: float
    true_peak_dbtp: float
    pre_lufs: float
    pre_true_peak_dbtp: float
    iterations: int
    solved: bool = True
    notices: list[str] = field(default_factory=list)


def chain_params(params: Mapping[str, Mapping[str, float]], gain_db: float) -> dict[str, dict[str, float]]:
    """The master chain's parameters (:data:`mixbridge.schema.MASTER_RENDER`) from ``master_bus`` values."""
    return {"eq": dict(params["eq"]), "compressor": dict(params["compressor"]), "gain": {"gain_db": float(gain_db)},
            "limiter": dict(params["limiter"])}


def _render_measured(mix: np.ndarray, sample_rate: int, chain: Mapping[str, Mapping[str, float]],
                     out: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """:func:`~.master_bus.render_master` of ``mix`` with ``chain`` (the same samples: the same chunks
    of :data:`~.master_bus.OFFLINE_CHUNK` and latency compensation) into ``out`` (float32 of the
    mix's shape; made when None), without its padded copy of the mix; returns ``(out, integrated
    LUFS of the output)``, measured chunk by chunk while rendering."""
    channels, n = mix.shape
    m = StreamingMaster(sample_rate, chain, channels=channels, max_block=OFFLINE_CHUNK)
    pad = m.latency_samples
    if out is None:
        out = np.empty((channels, n), np.float32)
    meter = LoudnessMeter(sample_rate, channels)
    tail_dtype = mix.dtype if mix.dtype.kind == "f" else np.float32
    for start in range(0, n + pad, OFFLINE_CHUNK):
        stop = min(start + OFFLINE_CHUNK, n + pad)
        if stop <= n:
            block = mix[:, start:stop]
        else:  # render_master's zeros after the signal, which flush the look-ahead
            block = np.concatenate([mix[:, start:min(stop, n)],
                                    np.zeros((channels, stop - max(start, n)), tail_dtype)], axis=1)
        y = m.process(block)
        a = max(start, pad)
        if stop > a:
            piece = y[:, a - start:stop - start]
            meter.update(piece)
            out[:, a - pad:stop - pad] = piece
    return out, meter.integrated_lufs()


def solve_master_gain(mix: np.ndarray, sample_rate: int, params: Mapping[str, Mapping[str, float]],
                      start_gain_db: float | None = None, out=None) -> tuple[float, float, np.ndarray, int]:
    """The gain stage value that brings ``mix`` to ``params["loudness"]["target_lufs"]`` through the master bus.

    Args:
        mix: float ``[2, samples]`` pre-master mix.
        sample_rate: Hz.
        params: ``master_bus`` values (``eq``, ``compressor``, ``limiter``, ``loudness``).
        start_gain_db: first guess; default the target minus the loudness after EQ and compressor.
        out: the buffer every render writes into (float32 of the mix's shape, or anything that takes
            ``out[:, a:b] = block``: a :class:`mixbridge.audio.WavArray` on disk); made when None.

    Returns:
        ``(gain_db, lufs, audio, iterations)``: the gain, the loudness it reaches, the
        mastered audio float32 ``[2, samples]`` and the renders it took. ``lufs`` is
        ``SILENT_LUFS`` for a silent mix (gain 0 dB). Every render writes into one buffer and
        is measured while it renders; when an earlier render came closer to the target than
        the last one, that gain is rendered once more (not counted in ``iterations``).
    """
    target = float(params["loudness"]["target_lufs"])
    lo, hi = GAIN.param("gain_db").min, GAIN.param("gain_db").max
    # every render goes into this one buffer
    if start_gain_db is None:
        out, pre = _render_measured(mix, sample_rate, chain_params(params, 0.0), out)
        if pre <= SILENT_LUFS:
            return 0.0, SILENT_LUFS, out, 1
        start_gain_db = target - pre
    gain = float(np.clip(start_gain_db, lo, hi))
    prev: tuple[float, float] | None = None
    best: tuple[float, float] | None = None
    it = 0
    for it in range(1, MAX_ITERATIONS + 1):  # noqa: B007 - the count of renders is returned
        out, lufs = _render_measured(mix, sample_rate, chain_params(params, gain), out)
        if best is None or abs(lufs - target) < abs(best[1] - target):
            best = (gain, lufs)
        if abs(lufs - target) <= SOLVE_TOLERANCE_LU or lufs <= SILENT_LUFS:
            break
        slope = 1.0
        if prev is not None and gain != prev[0] and abs(lufs - prev[1]) > 1e-3:
            slope = float(np.clip((lufs - prev[1]) / (gain - prev[0]), 0.05, 1.0))
        prev = (gain, lufs)
        nxt = float(np.clip(gain + (target - lufs) / slope, lo, hi))
        if nxt == gain:  # pinned at the gain range
            break
        gain = nxt
    assert best is not None and out is not None
    if best[0] != gain:  # an earlier render came closer than the last: render it again (rare)
        out, _ = _render_measured(mix, sample_rate, chain_params(params, best[0]), out)
    return best[0], best[1], out, it


def master(mix: np.ndarray, params: Mapping[str, Mapping[str, float]], sample_rate: int, *,
           gain_db: float | None = None, automation: Mapping[str, Automation] | None = None,
           resolve_stale: bool = True, verify: bool = True, out=None) -> MasterResult:
    """Master a stereo ``mix`` float32 ``[2, samples]`` with the ``master_bus`` ``params``.

    Args:
        gain_db: a stored solved gain (``session.master.solved_gain_db``) to apply; if it
            misses the target by more than ``LOUDNESS_TOLERANCE_LU`` (the mix or the target
            was edited) it is re-solved, with a notice that says by how much it missed.
            ``None`` solves it.
        resolve_stale: re-solve a stored gain that misses the target (else only report it).
        verify: measure the mix and the master (integrated loudness, true peak) and check the
            target; ``False`` (with a stored ``gain_db``) only renders: the measured fields are
            NaN and nothing is checked (batch renders that trust the stored gain; the benchmark).
        automation: master-bus automation; only ``reverb.*`` (rendered by the console's
            reverb bus) is allowed.
        out: the buffer the master is rendered into (see :func:`solve_master_gain`); made when None.

    Returns:
        :class:`MasterResult`; ``notices`` explain a target that was not met (a silent mix,
        a loudness the limiter cannot reach, a stored gain that misses the target).

    Raises:
        ParamRangeError: automation of a master-chain parameter, which the one master bus does
            not render (it would be silently dropped otherwise); a stored gain out of range.
    """
    automated = sorted(k for k in (automation or {}) if not k.startswith("reverb."))
    if automated:
        raise ParamRangeError(
            f"master automation of {', '.join(automated)} cannot be rendered: the master bus takes static "
            "eq/compressor/limiter/loudness values; remove those curves from master.automation")
    notices: list[str] = []
    if not verify and gain_db is not None:
        gain = GAIN.param("gain_db").validate(gain_db, "master.solved_gain_db")
        out, _ = _render_measured(mix, sample_rate, chain_params(params, gain), out)
        nan = float("nan")
        return MasterResult(out, float(gain), nan, nan, nan, nan, 1, False, notices)
    target = float(params["loudness"]["target_lufs"])
    ceiling = float(params["limiter"]["ceiling_dbtp"])
    pre_lufs = integrated_lufs(mix, sample_rate)
    pre_tp = true_peak_dbtp(mix)
    if gain_db is None:
        gain, lufs, out, it = solve_master_gain(mix, sample_rate, params, out=out)
        solved = True
    else:
        gain = GAIN.param("gain_db").validate(gain_db, "master.solved_gain_db")
        out, lufs = _render_measured(mix, sample_rate, chain_params(params, gain), out)
        it, solved = 1, False
        if resolve_stale and pre_lufs > SILENT_LUFS and abs(lufs - target) > LOUDNESS_TOLERANCE_LU:
            stale = (f"master: the stored master.solved_gain_db {gain:+.2f} dB gave {lufs:.2f} LUFS, "
                     f"{lufs - target:+.2f} LU from the {target:g} LUFS target (the mix or the target changed)")
            gain, lufs, out, more = solve_master_gain(mix, sample_rate, params, start_gain_db=gain + (target - lufs),
                                                      out=out)  # the stale render's buffer
            it, solved = it + more, True
            notices.append(f"{stale}; re-solved to {gain:+.2f} dB")
    tp = true_peak_dbtp(out)
    if pre_lufs <= SILENT_LUFS:
        notices.append("master: the mix is silent (below -70 LUFS); no loudness gain applied")
    elif abs(lufs - target) > LOUDNESS_TOLERANCE_LU:
        notices.append(f"master: reached {lufs:.2f} LUFS, {lufs - target:+.2f} LU from the {target:g} LUFS target "
                       f"(ceiling {ceiling:g} dBTP, gain {gain:+.2f} dB of +-{MAX_MASTER_GAIN_DB:g}); "
                       "lower target_lufs or raise ceiling_dbtp")
    if tp > ceiling:
        notices.append(f"master: true peak {tp:.2f} dBTP exceeds the {ceiling:g} dBTP ceiling")
    return MasterResult(out, float(gain), float(lufs), float(tp), float(pre_lufs), float(pre_tp), it, solved, notices)
