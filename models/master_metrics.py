"""Scoring a master against the original master it should recover: the columns of the mastering table.

:func:`score_master` compares a mastered ``output`` float ``[2, samples]`` with the finished
``target_master`` ``[2, samples]`` that was degraded to make its input (issue 13's benchmark),
at one ``sample_rate``; :func:`aggregate_scores` turns one score per file into a table row.

==========================  ==============================================================================
column                      definition and source
==========================  ==============================================================================
``lufs_error_lu``           ``|L(output) - target_lufs|``, ``L`` the integrated loudness of ITU-R BS.1770-4
                            (K-weighting, 400 ms blocks, -70 LUFS / -10 LU gates;
                            :func:`mixbridge.loudness.integrated_lufs`, pyloudnorm)
``true_peak_dbtp``          the output's true peak, BS.1770-4 Annex 2: the largest magnitude of the signal
                            oversampled 4x (:func:`mixbridge.loudness.true_peak_dbtp`)
``over_ceiling``            ``true_peak_dbtp > ceiling_dbtp`` (strictly; no tolerance: the limiter's
                            contract is the ceiling itself)
``mrstft``                  the MR-STFT distance of the output to the target after both are brought to
                            :data:`~mixbridge.models.evaluation.NORMALISED_LUFS` (so the level never counts):
                            auraloss ``MultiResolutionSTFTLoss`` on L and R with the thesis bands
                            (:func:`mixbridge.models.metrics.mrstft`; Yamamoto et al., ICASSP 2020;
                            Steinmetz & Reiss, auraloss, 2020)
``tonal_error_db``          the mean over octave bands of ``|(B_k(out) - L(out)) - (B_k(tgt) - L(tgt))|``:
                            each band level ``B_k`` (nominal 31.5 Hz .. 16 kHz, numpy ``rfft`` power
                            per band, :func:`mixbridge.spectrum.octave_band_levels_db`) relative to the
                            signal's own integrated loudness, so only the balance of the bands counts.
                            Bands above Nyquist, and bands more than :data:`BAND_SKIP_DB` below the
                            loudest band in *both* signals (nothing to match there), are left out
                            (:func:`mixbridge.spectrum.band_level_error_db`)
``plr_error_db``            ``|PLR(out) - PLR(tgt)|``, the peak-to-loudness ratio ``PLR = true peak (dBTP)
                            - integrated loudness (LUFS)`` (AES TD1004.1.15-10, "Recommendations for
                            loudness of audio streaming and network file playback"; EBU R128 s1), from
                            the same meters (what :func:`mixbridge.spectrum.plr_db` computes)
``crest_error_db``          ``|C(out) - C(tgt)|``, ``C`` the crest factor ``20 log10(sample peak / RMS)`` over
                            both channels, dB (:func:`mixbridge.spectrum.crest_factor_db`; Diff-MST's
                            feature, Steinmetz et al., ISMIR 2024)
==========================  ==============================================================================

Closed forms the tests check: identical signals score 0 in every column but ``lufs_error_lu``
(which is ``|L(tgt) - target_lufs|``); a pure gain of ``g`` dB moves ``lufs_error_lu`` by
exactly ``g`` and ``true_peak_dbtp`` by ``g`` and leaves every other column at 0; a frequency-domain
shelf of ``s`` dB on the bands above an octave edge gives ``tonal_error_db = mean_k |s_k - ΔL|``
with ``ΔL`` the loudness change it causes.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mixbridge.loudness import SILENT_LUFS, db_to_gain, integrated_lufs, true_peak_dbtp
from mixbridge.spectrum import OCTAVE_CENTRES_HZ, band_level_error_db, crest_factor_db, octave_band_levels_db

__all__ = ["BAND_SKIP_DB", "COLUMNS", "aggregate_scores", "band_levels_rel_db", "score_master"]

#: A band more than this far below the loudest band of both signals is left out of the tonal error, dB.
BAND_SKIP_DB = -60.0
#: The table's columns (``aggregate_scores`` keys), in the issue's order, with their units.
COLUMNS = (("lufs_error_lu", "LUFS error (LU)"), ("worst_true_peak_dbtp", "worst true peak (dBTP)"),
           ("mrstft", "MR-STFT"), ("tonal_error_db", "tonal error (dB)"), ("plr_error_db", "PLR error (dB)"),
           ("crest_error_db", "crest error (dB)"), ("over_ceiling", "over ceiling"))


def _stereo(x, what: str) -> np.ndarray:
    from .evaluation import EvaluationInputError

    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != 2:
        raise EvaluationInputError(f"{what} has shape {tuple(np.shape(x))}; give stereo [2, samples] audio")
    if not np.all(np.isfinite(a)):
        raise EvaluationInputError(f"{what} holds NaN or inf samples; give finite audio")
    return a


def _loudness(a: np.ndarray, sample_rate: int, what: str) -> float:
    from .evaluation import EvaluationInputError

    lufs = integrated_lufs(a, sample_rate)
    if lufs <= SILENT_LUFS:
        raise EvaluationInputError(f"{what} is silent ({lufs:.1f} LUFS, at the {SILENT_LUFS:g} LUFS absolute gate) "
                                   "or shorter than one 400 ms block; give audio with signal to score")
    return lufs


def band_levels_rel_db(audio: np.ndarray, sample_rate: int, lufs: float) -> list[float | None]:
    """Octave-band levels of ``audio`` minus its integrated loudness ``lufs``, dB (``None`` above Nyquist)."""
    return [None if b is None else b - lufs for b in octave_band_levels_db(audio, sample_rate)]


def score_master(output: np.ndarray, target_master: np.ndarray, sample_rate: int, *, target_lufs: float,
                 ceiling_dbtp: float) -> dict:
    """Score a master ``output`` against the original ``target_master`` (the module's table).

    Args:
        output: the mastered audio, float ``[2, samples]``.
        target_master: the finished master that was degraded to make the input, ``[2, samples]``,
            same length and rate as ``output`` (trim both beforehand; a method that delays its output
            must be aligned by the caller).
        sample_rate: Hz.
        target_lufs: the loudness target the output was mastered to, LUFS.
        ceiling_dbtp: the true-peak ceiling it was mastered to, dBTP.

    Returns:
        A JSON-ready dict: the columns ``lufs_error_lu``, ``true_peak_dbtp``, ``over_ceiling``, ``mrstft``,
        ``tonal_error_db``, ``plr_error_db``, ``crest_error_db``; the measurements behind them
        (``lufs``, ``target_master_lufs``, ``plr_db``, ``target_plr_db``, ``crest_db``, ``target_crest_db``,
        ``octave_bands`` with ``centre_hz``, ``output_rel_db``, ``target_rel_db``,
        ``difference_db`` and ``used``), and ``target_lufs``, ``ceiling_dbtp``, ``sample_rate``, ``n_samples``.

    Raises:
        EvaluationInputError: not stereo, shapes that differ, NaN/inf, a silent output or target,
            or a length under :data:`~mixbridge.models.evaluation.MIN_DURATION_S`.
    """
    from . import metrics
    from .evaluation import MIN_DURATION_S, NORMALISED_LUFS, EvaluationInputError

    sample_rate = int(sample_rate)
    out, tgt = _stereo(output, "output"), _stereo(target_master, "target_master")
    if out.shape != tgt.shape:
        raise EvaluationInputError(f"output has shape {out.shape} and target_master {tgt.shape}; trim both to the "
                                   "same length (and align a delayed output) before scoring")
    n = out.shape[1]
    if n < MIN_DURATION_S * sample_rate:
        raise EvaluationInputError(f"{n / sample_rate:.3f} s is below the {MIN_DURATION_S} s minimum; "
                                   "score at least that much audio")
    l_out, l_tgt = _loudness(out, sample_rate, "output"), _loudness(tgt, sample_rate, "target_master")
    tp_out, tp_tgt = float(true_peak_dbtp(out, sample_rate)), float(true_peak_dbtp(tgt, sample_rate))

    out_n = out * float(db_to_gain(NORMALISED_LUFS - l_out))
    tgt_n = tgt * float(db_to_gain(NORMALISED_LUFS - l_tgt))
    mrstft = metrics.mrstft(out_n.astype(np.float32), tgt_n.astype(np.float32))

    b_out, b_tgt = band_levels_rel_db(out, sample_rate, l_out), band_levels_rel_db(tgt, sample_rate, l_tgt)
    tonal, diff, used = band_level_error_db(b_out, b_tgt, skip_below_db=BAND_SKIP_DB)

    plr_out, plr_tgt = tp_out - l_out, tp_tgt - l_tgt
    c_out, c_tgt = crest_factor_db(out), crest_factor_db(tgt)
    return {
        "lufs_error_lu": abs(l_out - float(target_lufs)),
        "true_peak_dbtp": tp_out,
        "over_ceiling": bool(tp_out > float(ceiling_dbtp)),
        "mrstft": float(mrstft),
        "tonal_error_db": tonal,
        "plr_error_db": abs(plr_out - plr_tgt),
        "crest_error_db": abs(c_out - c_tgt),
        "lufs": l_out, "target_master_lufs": l_tgt, "target_master_true_peak_dbtp": tp_tgt,
        "plr_db": plr_out, "target_plr_db": plr_tgt,
        "crest_db": c_out, "target_crest_db": c_tgt,
        "octave_bands": {"centre_hz": list(OCTAVE_CENTRES_HZ), "output_rel_db": b_out, "target_rel_db": b_tgt,
                         "difference_db": diff, "used": used},
        "target_lufs": float(target_lufs), "ceiling_dbtp": float(ceiling_dbtp),
        "sample_rate": sample_rate, "n_samples": int(n),
    }


def aggregate_scores(scores: Sequence[dict]) -> dict:
    """One table row from per-file :func:`score_master` results.

    Means of ``lufs_error_lu``, ``mrstft``, ``tonal_error_db``, ``plr_error_db`` and ``crest_error_db``;
    ``worst_true_peak_dbtp`` the largest true peak; ``over_ceiling`` the count of files over the ceiling
    and ``files`` the number of files. Empty ``scores`` give ``{"files": 0}`` only.
    """
    if not scores:
        return {"files": 0}
    row: dict = {"files": len(scores)}
    for key in ("lufs_error_lu", "mrstft", "tonal_error_db", "plr_error_db", "crest_error_db"):
        row[key] = float(np.mean([s[key] for s in scores]))
    row["worst_true_peak_dbtp"] = float(max(s["true_peak_dbtp"] for s in scores))
    row["over_ceiling"] = int(sum(bool(s["over_ceiling"]) for s in scores))
    if not all(math.isfinite(row[k]) for k in row if k != "files"):
        raise ValueError(f"non-finite aggregate {row}; a score holds NaN or inf")
    return row
