"""The master bus: EQ -> bus compressor -> gain to the loudness target -> true-peak limiter.

The gain stage is solved, not guessed: starting from the loudness of the
compressed mix, mixbridge renders the limiter, measures integrated loudness
(ITU-R BS.1770-4) and true peak (Annex 2, 4x oversampling), and corrects the
gain (secant steps on loudness) and the limiter's internal sample-peak ceiling
(lowered by the measured true-peak overshoot) until the master is within
``LOUDNESS_TOLERANCE_LU`` of ``target_lufs`` and at or below ``ceiling_dbtp``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from mixbridge.loudness import SILENT_LUFS, integrated_lufs, true_peak_dbtp
from mixbridge.session import Automation

from .backend import Backend

#: Accepted distance from the loudness target after solving, in LU.
LOUDNESS_TOLERANCE_LU = 0.1
#: Margin kept under the true-peak ceiling, in dB (the meter's own accuracy).
TRUE_PEAK_MARGIN_DB = 0.05
MAX_ITERATIONS = 12
#: Largest gain the solver applies before the limiter, in dB.
MAX_MASTER_GAIN_DB = 36.0


@dataclass
class MasterResult:
    """The mastered audio ``[2, samples]`` and what was measured on the way."""

    audio: np.ndarray
    gain_db: float
    limiter_ceiling_db: float
    lufs: float
    true_peak_dbtp: float
    pre_lufs: float
    pre_true_peak_dbtp: float
    iterations: int
    notices: list[str] = field(default_factory=list)


def _split(automation: Mapping[str, Automation], processor: str) -> dict[str, Automation]:
    prefix = processor + "."
    return {k[len(prefix):]: a for k, a in automation.items() if k.startswith(prefix)}


def master(mix: np.ndarray, params: Mapping[str, Mapping[str, float]], backend: Backend,
           automation: Mapping[str, Automation] | None = None) -> MasterResult:
    """Master a stereo ``mix`` float32 ``[2, samples]`` with the ``master_bus`` ``params``.

    Returns:
        :class:`MasterResult`; ``notices`` explain a target that could not be met
        (a silent mix, or a loudness the limiter cannot reach).
    """
    sr = backend.sample_rate
    automation = automation or {}
    notices: list[str] = []
    x = backend.process_chain([("eq", params["eq"], _split(automation, "eq")),
                               ("compressor", params["compressor"], _split(automation, "compressor"))],
                              mix, label="master")
    target = params["loudness"]["target_lufs"]
    ceiling = params["limiter"]["ceiling_dbtp"]
    release = params["limiter"]["release_ms"]
    pre_lufs = integrated_lufs(mix, sr)
    pre_tp = true_peak_dbtp(mix, sr)
    start_lufs = integrated_lufs(x, sr)
    if start_lufs <= SILENT_LUFS:
        notices.append("master: the mix is silent (below -70 LUFS); no loudness gain applied")
        return MasterResult(x, 0.0, ceiling, SILENT_LUFS, true_peak_dbtp(x, sr), pre_lufs, pre_tp, 0, notices)
    gain_db = target - start_lufs
    limit_db = ceiling - TRUE_PEAK_MARGIN_DB
    prev: tuple[float, float] | None = None
    out, lufs, tp = x, start_lufs, pre_tp
    it = 0
    used_gain_db, used_limit_db = gain_db, limit_db  # the settings that produced `out`
    for it in range(1, MAX_ITERATIONS + 1):
        gain_db = float(np.clip(gain_db, -MAX_MASTER_GAIN_DB, MAX_MASTER_GAIN_DB))
        driven = x * np.float32(10.0 ** (gain_db / 20.0))
        out = backend.process("limiter", driven, {"ceiling_dbtp": limit_db, "release_ms": release}, label="master")
        used_gain_db, used_limit_db = gain_db, limit_db
        lufs = integrated_lufs(out, sr)
        tp = true_peak_dbtp(out, sr)
        ok_tp = tp <= ceiling
        ok_lufs = abs(lufs - target) <= LOUDNESS_TOLERANCE_LU
        if ok_tp and ok_lufs:
            break
        if not ok_tp:
            limit_db -= (tp - ceiling) + TRUE_PEAK_MARGIN_DB
        err = target - lufs
        if prev is not None and abs(lufs - prev[1]) > 1e-3:
            slope = (lufs - prev[1]) / (gain_db - prev[0]) if gain_db != prev[0] else 1.0
            slope = float(np.clip(slope, 0.05, 1.0))
        else:
            slope = 1.0
        prev = (gain_db, lufs)
        if abs(gain_db) >= MAX_MASTER_GAIN_DB and np.sign(err) == np.sign(gain_db):
            break
        gain_db += err / slope
    if abs(lufs - target) > LOUDNESS_TOLERANCE_LU:
        notices.append(
            f"master: reached {lufs:.2f} LUFS, {lufs - target:+.2f} LU from the {target:g} LUFS target "
            f"(ceiling {ceiling:g} dBTP); lower target_lufs or raise ceiling_dbtp"
        )
    if tp > ceiling:
        notices.append(f"master: true peak {tp:.2f} dBTP exceeds the {ceiling:g} dBTP ceiling")
    return MasterResult(out, used_gain_db, used_limit_db, lufs, tp, pre_lufs, pre_tp, it, notices)
