"""Scoring a mix against a reference mix: the measurements of ``mixbridge evaluate``.

:func:`evaluate_mix` compares a stereo mix ``[2, samples]`` with a reference ``[2, samples]``
(or ``[1, samples]``) at one sample rate, after bringing **both** to
:data:`NORMALISED_LUFS` (ITU-R BS.1770-4 integrated loudness, :func:`mixbridge.loudness.integrated_lufs`),
so that overall level never counts:

===========================  ===============================================================
measurement                  definition and source
===========================  ===============================================================
sum/difference MR-STFT       :func:`mixbridge.models.losses.sum_and_difference_mrstft_loss`
                             (auraloss, thesis bands): ``(MR-STFT(L+R) + MR-STFT(L-R)) / 2``,
                             and its two halves (Steinmetz et al., ICASSP 2021)
audio features               Diff-MST's (Steinmetz et al., ISMIR 2024): RMS, crest factor (dB),
                             stereo width, stereo imbalance, Bark spectrum (the functions of
                             :mod:`mixbridge.models.losses`) of each; their distances are the
                             terms of :class:`~mixbridge.models.losses.AudioFeatureLoss`
                             (MSE per feature, weight 1) and ``feature_distance`` their sum
octave bands                 level per octave band (nominal centres 31.5 Hz .. 16 kHz, exact
                             centres ``1000 * 2^k`` Hz, edges ``fc / sqrt 2 .. fc * sqrt 2``, the
                             top edge cut at Nyquist): ``10 log10`` of the numpy ``rfft`` power
                             summed over the band's bins and the channels; ``mix - reference`` dB
compliance                   of the mix as given: integrated LUFS against the schema's master
                             target (-14 LUFS, +-:data:`LUFS_TOLERANCE_LU`), true peak (dBTP,
                             BS.1770-4 Annex 2, :func:`mixbridge.loudness.true_peak_dbtp`)
                             against the limiter's default ceiling (-1 dBTP)
track levels and pans        with the stems: :func:`track_levels_pans` on both normalised mixes;
                             ``level_rmse_db`` is the RMSE over tracks of the level difference
                             after removing its mean (overall level is free), ``pan_mae`` the
                             mean absolute pan difference (-1..1); a track more than 60 dB
                             below the loudest track in both mixes is left out of both
time-resolved level error    with the stems: :func:`time_level_errors`, each track's level in
                             every :data:`TIME_WINDOW_S` window (least squares of the stems over
                             that window); ``time_level_rmse_db`` the RMSE over all (window,
                             track) pairs of the level difference after removing each window's
                             mean (a balance error, so a mix that is only louder or quieter in a
                             window scores 0 there), pairs where the track is more than 60 dB
                             under the window's loudest in both mixes left out
===========================  ===============================================================

Input that differs is conformed with a notice (``result["notices"]``): a reference of another
length is trimmed with the mix to the shorter (stems too); a reference at another rate is
resampled (:func:`mixbridge.audio.resample`); a mono reference (or mix) is compared as mono,
the mix downmixed to ``(L + R) / 2``, and every stereo-only value (difference MR-STFT, stereo
width and imbalance, side Bark spectrum, pans) is reported as ``None`` ("undefined").

Least squares (:func:`track_levels_pans`): per output channel ``c``, ``mix_c ~ sum_i a_ci stem_ic``
(normal equations in float64; a mono stem feeds both channels); then per track the pan whose
gains from THE pan law (:func:`mixbridge.plugins.console.pan_gains`) have the angle of
``(|a_Li|, |a_Ri|)`` is found by root finding (scipy ``brentq``), and the level is the gain
``g`` that best fits ``g * pan_gains(pan)`` to ``(|a_Li|, |a_Ri|)``, in dB. A mix rendered by the
console from these stems with gains and pans only is recovered to float64 precision.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mixbridge.audio import resample
from mixbridge.errors import MixbridgeError
from mixbridge.loudness import SILENT_LUFS, db_to_gain, integrated_lufs, true_peak_dbtp
from mixbridge.plugins.console import pan_gains
from mixbridge.schema import MASTER_BUS
from mixbridge.spectrum import (  # noqa: F401 - re-exported: they moved to mixbridge.spectrum
    BAND_POWER_FLOOR,
    OCTAVE_CENTRES_HZ,
    OCTAVE_NOMINAL_HZ,
    octave_band_edges_hz,
    octave_band_levels_db,
)

#: Both mix and reference are brought to this integrated loudness before scoring (EBU R128's level).
NORMALISED_LUFS = -23.0
#: The master's loudness target the mix is checked against (the schema's default).
TARGET_LUFS = float(MASTER_BUS.param("loudness.target_lufs").default)
#: The true-peak ceiling the mix is checked against (the schema's limiter default).
CEILING_DBTP = float(MASTER_BUS.param("limiter.ceiling_dbtp").default)
#: How far from the target the integrated loudness may be and still comply, LU.
LUFS_TOLERANCE_LU = 1.0
#: Tracks quieter than this relative to the loudest track, in both mixes, are left out of the level/pan scores, dB.
TRACK_SKIP_DB = -60.0
#: Reported level of a track the least squares gives no gain (instead of -inf, which JSON cannot hold), dB.
LEVEL_FLOOR_DB = -200.0
#: Shortest signal scored: one 400 ms loudness block plus one sample at 8 kHz is far below this; 0.5 s keeps
#: every meter (BS.1770 gating, MR-STFT's 2048-sample FFT) meaningful.
MIN_DURATION_S = 0.5
#: Longest FFT of the Bark spectrum (the Diff-MST setting); shorter for signals under twice its length.
BARK_N_FFT = 32768
#: The window of the time-resolved level error, seconds (one BS.1770 block; DeepMixing's chunk).
TIME_WINDOW_S = 0.4
#: Stereo-only features (``None`` for a mono comparison).
STEREO_ONLY_FEATURES = ("stereo_width", "stereo_imbalance")


class EvaluationInputError(ValueError, MixbridgeError):
    """Audio that cannot be scored: wrong shape, too short, silent, NaN/inf (the message names the fix)."""


def _as_audio(x, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[0] not in (1, 2):
        raise EvaluationInputError(f"{what} has shape {tuple(np.shape(x))}; give [channels, samples] audio with "
                                   "1 or 2 channels")
    if not np.all(np.isfinite(a)):
        raise EvaluationInputError(f"{what} holds NaN or inf samples; give finite audio")
    return a


def _invert_pan(gain_left: float, gain_right: float, channels: int) -> float:
    """The pan in -1..1 whose :func:`pan_gains` have the angle of ``(gain_left, gain_right)`` (both >= 0)."""
    from scipy.optimize import brentq

    target = math.atan2(gain_right, gain_left)

    def angle(p: float) -> float:
        left, right = pan_gains(p, channels)
        return math.atan2(float(right), float(left)) - target

    lo, hi = angle(-1.0), angle(1.0)
    if lo >= 0.0:
        return -1.0
    if hi <= 0.0:
        return 1.0
    return float(brentq(angle, -1.0, 1.0, xtol=1e-14, rtol=1e-15, maxiter=200))


def _stem_list(stems) -> list[np.ndarray]:
    if isinstance(stems, np.ndarray):
        if stems.ndim != 3 or stems.shape[1] not in (1, 2):
            raise EvaluationInputError(f"stems have shape {stems.shape}; give [tracks, channels, samples] with "
                                       "1 or 2 channels")
        return [np.asarray(s, dtype=np.float64) for s in stems]
    out = [_as_audio(s, f"stem {i}") for i, s in enumerate(stems)]
    if not out:
        raise EvaluationInputError("no stems given; give at least one [channels, samples] stem")
    return out


def least_squares_gains(mix: np.ndarray, stems) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel, the gains ``a [2, tracks]`` of ``mix_c ~ sum_i a_ci stem_ic`` and the fit's residual.

    ``mix`` is ``[2, samples]``; ``stems`` ``[tracks, channels, samples]`` (or a list of ``[channels, samples]``,
    channels 1 or 2; a mono stem feeds both output channels), all of ``mix``'s length. Solved by the normal
    equations in float64 (``numpy.linalg.lstsq`` on the Gram matrix: a silent or duplicated stem gets the
    minimum-norm share). Returns ``(a, residual_db [2])``, the residual energy relative to the channel's energy
    in dB (``-inf``-free: floored at -300 dB).

    Raises:
        EvaluationInputError: not stereo, or lengths that differ.
    """
    m = _as_audio(mix, "mix")
    if m.shape[0] != 2:
        raise EvaluationInputError(f"least squares needs a stereo mix [2, samples], got {m.shape[0]} channel(s)")
    sl = _stem_list(stems)
    for i, s in enumerate(sl):
        if s.shape[1] != m.shape[1]:
            raise EvaluationInputError(f"stem {i} has {s.shape[1]} samples, the mix {m.shape[1]}; give stems of the "
                                       "mix's length (evaluate_mix trims or pads them)")
    gains = np.zeros((2, len(sl)))
    residual_db = np.zeros(2)
    for c in range(2):
        basis = np.stack([s[min(c, s.shape[0] - 1)] for s in sl])  # [tracks, samples]
        gram, rhs = basis @ basis.T, basis @ m[c]
        a = np.linalg.lstsq(gram, rhs, rcond=None)[0]
        gains[c] = a
        energy = float(m[c] @ m[c])
        res = max(energy - 2.0 * float(a @ rhs) + float(a @ gram @ a), 0.0)
        residual_db[c] = 10.0 * math.log10(max(res / energy, 1e-30)) if energy > 0 else -300.0
    return gains, residual_db


def track_levels_pans(mix: np.ndarray, stems) -> tuple[np.ndarray, np.ndarray]:
    """Each track's level (dB) and pan (-1..1) in ``mix [2, samples]``, estimated by least squares.

    ``stems`` ``[tracks, channels, samples]`` (or a list of ``[channels, samples]``), the mix's length. The
    per-channel gains of :func:`least_squares_gains` are turned into a pan by inverting THE pan law
    (:func:`mixbridge.plugins.console.pan_gains`, the stem's channel count) numerically, and a level
    ``20 log10 g`` with ``g`` the least-squares fit of ``g * pan_gains(pan)`` to ``(|a_L|, |a_R|)``
    (polarity is ignored). A track with no gain reads :data:`LEVEL_FLOOR_DB` and pan 0.

    Returns:
        ``(level_db [tracks], pan [tracks])`` float64.

    Raises:
        EvaluationInputError: see :func:`least_squares_gains`.
    """
    sl = _stem_list(stems)
    gains, _ = least_squares_gains(mix, sl)
    level_db, pan = np.zeros(len(sl)), np.zeros(len(sl))
    for i, s in enumerate(sl):
        al, ar = abs(float(gains[0, i])), abs(float(gains[1, i]))
        if al == 0.0 and ar == 0.0:
            level_db[i], pan[i] = LEVEL_FLOOR_DB, 0.0
            continue
        p = _invert_pan(al, ar, s.shape[0])
        gl, gr = (float(v) for v in pan_gains(p, s.shape[0]))
        g = (al * gl + ar * gr) / (gl * gl + gr * gr)
        level_db[i] = max(20.0 * math.log10(g), LEVEL_FLOOR_DB) if g > 0 else LEVEL_FLOOR_DB
        pan[i] = p
    return level_db, pan


def time_level_errors(mix: np.ndarray, reference: np.ndarray, stems, sample_rate: int, *,
                      window_s: float = TIME_WINDOW_S) -> dict:
    """The time-resolved level error of ``mix`` against ``reference`` (both ``[channels, samples]``, one rate).

    The signals are cut into windows of ``round(window_s * sample_rate)`` samples (a last partial window is
    scored when it is at least half a window). In each window, each track's level in each mix is its
    least-squares gain there (:func:`track_levels_pans` on stereo mixes, one channel without pan law when
    either is mono) plus the stem's RMS level in that window (dB): the track's level **in the mix**. The
    difference mix - reference (which equals the gain difference) has the window's mean over its kept
    tracks removed; a (window, track) pair is kept unless the track is more than :data:`TRACK_SKIP_DB` under
    the window's loudest track in both mixes (a silent stem in a window reads :data:`LEVEL_FLOOR_DB`).

    Args:
        mix, reference: ``[1|2, samples]`` of one length (evaluate_mix conforms them first).
        stems: ``[tracks, channels, samples]`` (or a list of ``[channels, samples]``), the same length.
        sample_rate: Hz. window_s: the window, seconds.

    Returns:
        ``{"time_level_rmse_db": float or None (no pair kept), "window_s", "windows": int,
        "per_track_rmse_db": [tracks] (None where no pair kept), "pairs": kept pairs}``.

    Raises:
        EvaluationInputError: shapes or lengths that differ, a window under one sample.
    """
    m, r = _as_audio(mix, "mix"), _as_audio(reference, "reference")
    sl = _stem_list(stems)
    n = m.shape[1]
    if r.shape[1] != n or any(s.shape[1] != n for s in sl):
        raise EvaluationInputError(f"time_level_errors needs mix, reference and stems of one length, got {n}, "
                                   f"{r.shape[1]} and {sorted({s.shape[1] for s in sl})}; trim them first")
    win = int(round(window_s * sample_rate))
    if win < 1:
        raise EvaluationInputError(f"window_s = {window_s} s is under one sample at {sample_rate} Hz; give a "
                                   "longer window")
    stereo = m.shape[0] == 2 and r.shape[0] == 2
    if not stereo:
        m = m.mean(axis=0, keepdims=True)
        r = r.mean(axis=0, keepdims=True)
        sl = [s.mean(axis=0, keepdims=True) for s in sl]
    starts = [s for s in range(0, n, win) if n - s >= max(1, win // 2)]
    sq = np.zeros(len(sl))
    count = np.zeros(len(sl))
    for s0 in starts:
        seg = slice(s0, min(s0 + win, n))
        parts = [s[:, seg] for s in sl]
        rms = np.array([math.sqrt(float(np.mean(p * p))) for p in parts])
        if stereo:
            gm, _ = track_levels_pans(m[:, seg], parts)
            gr, _ = track_levels_pans(r[:, seg], parts)
        else:
            gm, gr = _mono_levels(m[:, seg], parts), _mono_levels(r[:, seg], parts)
        with np.errstate(divide="ignore"):
            rms_db = np.where(rms > 0, 20.0 * np.log10(np.maximum(rms, 1e-300)), LEVEL_FLOOR_DB)
        lm = np.where((gm > LEVEL_FLOOR_DB) & (rms > 0), gm + rms_db, LEVEL_FLOOR_DB)
        lr = np.where((gr > LEVEL_FLOOR_DB) & (rms > 0), gr + rms_db, LEVEL_FLOOR_DB)
        keep = ~((lm - lm.max() < TRACK_SKIP_DB) & (lr - lr.max() < TRACK_SKIP_DB))
        if not keep.any():
            continue
        d = lm[keep] - lr[keep]
        sq[keep] += (d - d.mean()) ** 2
        count[keep] += 1
    total = int(count.sum())
    return {"time_level_rmse_db": float(math.sqrt(sq.sum() / total)) if total else None, "window_s": float(window_s),
            "windows": len(starts), "pairs": total,
            "per_track_rmse_db": [float(math.sqrt(a / c)) if c else None for a, c in zip(sq, count)]}


def _features(x, sample_rate: int, stereo: bool, n_fft: int) -> dict:
    """Diff-MST features of ``x`` (torch ``[1, C, n]``) as plain lists; stereo-only ones None when mono."""
    import torch

    from . import losses

    if stereo:
        bark = losses.bark_spectrum(x, sample_rate, n_fft=n_fft)[0]  # [bands, 2]
        return {"rms": losses.rms(x)[0].tolist(), "crest_factor_db": losses.crest_factor_db(x)[0].tolist(),
                "stereo_width": float(losses.stereo_width(x)[0]),
                "stereo_imbalance": float(losses.stereo_imbalance(x)[0]),
                "bark_spectrum": bark.tolist()}
    # mono: the Bark spectrum of the signal itself as the "mid" column (x + 0); no side
    mid = losses.bark_spectrum(torch.cat([x, torch.zeros_like(x)], dim=1), sample_rate, n_fft=n_fft)[0][:, :1]
    return {"rms": losses.rms(x)[0].tolist(), "crest_factor_db": losses.crest_factor_db(x)[0].tolist(),
            "stereo_width": None, "stereo_imbalance": None, "bark_spectrum": mid.tolist()}


def _feature_distances(fm: dict, fr: dict) -> dict:
    """MSE per feature (AudioFeatureLoss's terms at weight 1) from the feature lists; None where undefined."""
    out: dict = {}
    for name in ("rms", "crest_factor_db", "stereo_width", "stereo_imbalance", "bark_spectrum"):
        a, b = fm[name], fr[name]
        out[name] = None if a is None or b is None else float(np.mean((np.asarray(a) - np.asarray(b)) ** 2))
    out["total"] = float(sum(v for v in out.values() if v is not None))
    return out


def _compliance(audio: np.ndarray, sample_rate: int) -> dict:
    lufs = float(integrated_lufs(audio, sample_rate))
    tp = float(true_peak_dbtp(audio, sample_rate))
    tp_json = tp if math.isfinite(tp) else None
    return {"lufs": lufs, "true_peak_dbtp": tp_json, "target_lufs": TARGET_LUFS, "lufs_tolerance_lu": LUFS_TOLERANCE_LU,
            "ceiling_dbtp": CEILING_DBTP, "lufs_ok": bool(abs(lufs - TARGET_LUFS) <= LUFS_TOLERANCE_LU),
            "true_peak_ok": bool(tp <= CEILING_DBTP)}


def _normalise(audio: np.ndarray, sample_rate: int, what: str) -> tuple[np.ndarray, float]:
    lufs = integrated_lufs(audio, sample_rate)
    if lufs <= SILENT_LUFS:
        raise EvaluationInputError(f"{what} is silent ({lufs:.1f} LUFS, at the {SILENT_LUFS:g} LUFS absolute gate); "
                                   "give audio with signal to score")
    return audio * float(db_to_gain(NORMALISED_LUFS - lufs)), lufs


def _conform_stems(stems, n: int, notices: list[str]) -> list[np.ndarray]:
    out = []
    for i, s in enumerate(_stem_list(stems)):
        if s.shape[1] > n:
            notices.append(f"stem {i}: {s.shape[1]} samples, trimmed to {n} (the scored length)")
            s = s[:, :n]
        elif s.shape[1] < n:
            notices.append(f"stem {i}: {s.shape[1]} samples, zero-padded to {n} (the scored length)")
            s = np.pad(s, ((0, 0), (0, n - s.shape[1])))
        out.append(s)
    return out


def evaluate_mix(mix: np.ndarray, reference: np.ndarray, sample_rate: int, stems=None, *,
                 reference_sample_rate: int | None = None, track_names: Sequence[str] | None = None) -> dict:
    """Score ``mix [2, samples]`` against ``reference [2 or 1, samples]`` at ``sample_rate`` Hz (module table).

    Args:
        mix: the mix to score, float ``[2, samples]`` (``[1, samples]`` is scored as mono).
        reference: the reference mix, ``[2, samples]`` or mono ``[1, samples]``.
        sample_rate: the mix's sample rate, Hz.
        stems: optional ``[tracks, channels, samples]`` (or list of ``[channels, samples]``) at ``sample_rate``:
            then each track's level and pan in both mixes, ``level_rmse_db``/``pan_mae`` and the
            time-resolved ``time_level_rmse_db`` (:func:`time_level_errors`) are reported.
        reference_sample_rate: the reference's rate when it differs (resampled, with a notice).
        track_names: names of the stems for the report (default ``track0``, ``track1`` ...).

    Returns:
        A JSON-ready dict: ``scores`` (``sum_difference_mrstft``, ``feature_distance``, ``level_rmse_db``,
        ``pan_mae``, ``time_level_rmse_db``: what the batch table shows), ``time_levels``
        (:func:`time_level_errors`, or None without stems), ``mrstft``, ``features``, ``feature_distances``,
        ``octave_bands``, ``compliance`` (mix and reference as given), ``tracks`` (or None), ``notices``,
        ``normalised_lufs``, ``sample_rate``, ``n_samples``, ``mono``. Undefined values are ``None``.

    Raises:
        EvaluationInputError: wrong shapes, NaN/inf, shorter than :data:`MIN_DURATION_S`, silent audio.
    """
    import torch

    from . import losses

    notices: list[str] = []
    sample_rate = int(sample_rate)
    m, r = _as_audio(mix, "mix"), _as_audio(reference, "reference")
    if reference_sample_rate is not None and int(reference_sample_rate) != sample_rate:
        notices.append(f"reference resampled from {int(reference_sample_rate)} Hz to {sample_rate} Hz (the mix's rate)")
        r = np.asarray(resample(r, int(reference_sample_rate), sample_rate), dtype=np.float64)
    if m.shape[1] != r.shape[1]:
        n = min(m.shape[1], r.shape[1])
        notices.append(f"mix has {m.shape[1]} samples, reference {r.shape[1]}: both trimmed to the shorter, {n} "
                       f"({n / sample_rate:.3f} s)")
        m, r = m[:, :n], r[:, :n]
    n = m.shape[1]
    if n < MIN_DURATION_S * sample_rate:
        raise EvaluationInputError(f"the scored length is {n / sample_rate:.3f} s, below the {MIN_DURATION_S} s "
                                   "minimum; give a mix and a reference of at least that length")
    compliance = {"mix": _compliance(m, sample_rate), "reference": _compliance(r, sample_rate)}
    stereo = m.shape[0] == 2 and r.shape[0] == 2
    if not stereo:
        who = "reference" if r.shape[0] == 1 else "mix"
        notices.append(f"mono {who}: compared as mono (the stereo one downmixed to (L + R) / 2); stereo-only values "
                       "(difference MR-STFT, stereo width and imbalance, side Bark spectrum, pans) are undefined")
    mono_m = m if m.shape[0] == 1 else 0.5 * (m[:1] + m[1:])
    mono_r = r if r.shape[0] == 1 else 0.5 * (r[:1] + r[1:])
    cm, cr = (m, r) if stereo else (mono_m, mono_r)
    cm, lufs_m = _normalise(cm, sample_rate, "mix")
    cr, lufs_r = _normalise(cr, sample_rate, "reference")

    tm = torch.as_tensor(cm, dtype=torch.float32)[None]
    tr = torch.as_tensor(cr, dtype=torch.float32)[None]
    mrstft: dict[str, float | None]
    with torch.no_grad():
        if stereo:
            total, s_loss, d_loss = losses.sum_and_difference_mrstft_loss(output="full")(tm, tr)
            mrstft = {"sum_difference": float(total), "sum": float(s_loss), "difference": float(d_loss)}
        else:
            mrstft = {"sum_difference": None, "sum": float(losses.mrstft_loss()(tm, tr)), "difference": None}
        n_fft = min(BARK_N_FFT, 2 ** int(math.floor(math.log2(n))))
        fm = _features(tm, sample_rate, stereo, n_fft)
        fr = _features(tr, sample_rate, stereo, n_fft)
    dists = _feature_distances(fm, fr)

    bands_m, bands_r = octave_band_levels_db(cm, sample_rate), octave_band_levels_db(cr, sample_rate)
    octave = {"centre_hz": list(OCTAVE_CENTRES_HZ), "nominal_hz": list(OCTAVE_NOMINAL_HZ),
              "mix_db": bands_m, "reference_db": bands_r,
              "difference_db": [None if a is None or b is None else a - b for a, b in zip(bands_m, bands_r)],
              "method": "numpy rfft power summed per band, fc/sqrt2 <= f < fc*sqrt2"}

    tracks = time_levels = None
    if stems is not None:
        conformed = _conform_stems(stems, n, notices)
        tracks = _track_scores(cm, cr, conformed, stereo, track_names, notices)
        time_levels = time_level_errors(cm, cr, conformed, sample_rate)
    return {
        "scores": {"sum_difference_mrstft": mrstft["sum_difference"], "feature_distance": dists["total"],
                   "level_rmse_db": None if tracks is None else tracks["level_rmse_db"],
                   "pan_mae": None if tracks is None else tracks["pan_mae"],
                   "time_level_rmse_db": None if time_levels is None else time_levels["time_level_rmse_db"]},
        "time_levels": time_levels,
        "mrstft": mrstft, "features": {"mix": fm, "reference": fr}, "feature_distances": dists,
        "octave_bands": octave, "compliance": compliance, "tracks": tracks, "notices": notices,
        "normalised_lufs": NORMALISED_LUFS, "input_lufs": {"mix": lufs_m, "reference": lufs_r},
        "sample_rate": sample_rate, "n_samples": int(n), "mono": not stereo,
    }


def _track_scores(cm: np.ndarray, cr: np.ndarray, stems: list[np.ndarray], stereo: bool,
                  names: Sequence[str] | None, notices: list[str]) -> dict:
    """Levels and pans of every stem in the normalised mix ``cm`` and reference ``cr`` and their errors."""
    names = list(names) if names is not None else [f"track{i}" for i in range(len(stems))]
    if len(names) != len(stems):
        raise EvaluationInputError(f"{len(names)} track names for {len(stems)} stems; give one name per stem")
    pm: np.ndarray | None
    pr: np.ndarray | None
    if stereo:
        lm, pm = track_levels_pans(cm, stems)
        lr, pr = track_levels_pans(cr, stems)
    else:  # mono: one channel, no pan; the stems downmixed the same way
        mono = [s.mean(axis=0, keepdims=True) for s in stems]
        lm = _mono_levels(cm, mono)
        lr = _mono_levels(cr, mono)
        pm = pr = None
    keep = ~((lm - lm.max() < TRACK_SKIP_DB) & (lr - lr.max() < TRACK_SKIP_DB))
    skipped = [nm for nm, k in zip(names, keep) if not k]
    if skipped:
        notices.append(f"{len(skipped)} track(s) more than {-TRACK_SKIP_DB:g} dB below the loudest in both mixes, "
                       f"left out of the level and pan scores: {', '.join(skipped)}")
    level_rmse: float | None = None
    pan_mae: float | None = None
    if keep.any():
        d = lm[keep] - lr[keep]
        level_rmse = float(np.sqrt(np.mean((d - d.mean()) ** 2)))
        if pm is not None and pr is not None:
            pan_mae = float(np.mean(np.abs(pm[keep] - pr[keep])))
    return {"names": names, "mix_level_db": lm.tolist(), "reference_level_db": lr.tolist(),
            "mix_pan": None if pm is None else pm.tolist(), "reference_pan": None if pr is None else pr.tolist(),
            "skipped": skipped, "level_rmse_db": level_rmse, "pan_mae": pan_mae,
            "skip_below_db": TRACK_SKIP_DB}


def _mono_levels(mix: np.ndarray, stems: list[np.ndarray]) -> np.ndarray:
    """Level (dB) of each mono stem in a mono mix by least squares (one channel, no pan law)."""
    basis = np.stack([s[0] for s in stems])
    a = np.linalg.lstsq(basis @ basis.T, basis @ mix[0], rcond=None)[0]
    with np.errstate(divide="ignore"):
        return np.maximum(20.0 * np.log10(np.abs(a)), LEVEL_FLOOR_DB)


__all__ = ["evaluate_mix", "track_levels_pans", "time_level_errors", "TIME_WINDOW_S", "least_squares_gains",
           "octave_band_levels_db",
           "octave_band_edges_hz", "EvaluationInputError", "NORMALISED_LUFS"]
