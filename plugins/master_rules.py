"""The ``rules`` mastering model: measured loudness, long-term spectrum and peak-to-loudness ratio set the chain.

:class:`RulesMasterer` (registered as ``rules`` in :mod:`mixbridge.models.masterers`) reads a stereo mix
and sets the one master bus (:mod:`.master_bus`) in the schema's real units; ``mixbridge master``
renders the plan with the one gain solver (:func:`.mastering.master`). Its decisions, in order:

1. **EQ toward a target long-term spectrum.** The target is the mean third-octave long-term average
   spectrum relative to integrated loudness (:func:`mixbridge.spectrum.ltas_db`) of the training-split
   masters (:func:`.datagen.masters.master_files`, ``split="train"``), shipped as
   ``models/masterers/rules.json`` (:func:`fit_rules_target`, ``mixbridge train master-rules``), or the
   mean of the references' spectra when references are given. The difference ``target - input`` over
   :data:`FIT_RANGE_HZ` (plus a free level offset) is fitted, weighted least squares on the RBJ
   magnitude (:func:`.rbj.eq_response_db`; each band weighted by ``1 / std^2`` of the masters' levels there),
   by the gains of the master bus's five RBJ bands at fixed corners (:data:`EQ_LAYOUT`), bounded to
   ``+-max_eq_db``, then scaled by ``eq_strength``. Without references a band's difference first shrinks
   by :data:`EQ_DEADBAND_STD` standard deviations of the masters' levels there, and the default strength
   is 0 (:data:`EQ_STRENGTH`: on the validation album every strength toward the training mean raised the
   tonal error, since songs differ from the mean more than pre-mastering moves them); with references
   the whole difference is fitted and applied.
2. **Compressor threshold relative to the measured loudness**: ``threshold_db = L + threshold_over_lufs_db``
   where ``L`` is the integrated loudness after the EQ (so a mix 10 dB quieter gets a threshold 10 dB
   lower: the same compression at any input level, unlike a fixed -16 dBFS before the gain).
   The ratio is solved (secant steps on measured renders of the bus, at most :data:`RATIO_STEPS`) so
   that the compressed mix's PLR (true peak minus loudness) reaches ``min(target PLR + margin, headroom +
   max_limiter_db)`` (``margin``: the masters' PLR spread, see ``plr_margin_db``) where
   ``headroom = ceiling_dbtp - target_lufs``: the limiter then takes the rest.
3. **Limiter gain reduction capped** at ``max_limiter_db`` (6 dB): the limiter's largest reduction at
   the target is the compressed mix's true peak at the solved gain minus the ceiling (predicted from the
   PLR, then checked with up to :data:`CAP_STEPS` runs of the one gain solver, since limiting dense peaks
   lowers the loudness and the solver adds gain); if the ratio cannot bring it under the cap, the plan's
   loudness target is lowered to what the cap allows and a notice names the target, the level planned
   and the cap. A mix louder than the target is turned down
   by the gain solver: its threshold follows its loudness, so it is not compressed or limited harder.

Measuring renders (:func:`probe_render`) are renders of the one master bus with the gain stage at
``-PROBE_DB`` and the ceiling at 0 dBTP, so that the limiter does nothing and the output is exactly the
EQ (and compressor) stage scaled by a known gain; the report uses the same taps to draw gain reduction.
:func:`apply_intensity` moves any plan's parameters toward the neutral chain (``--intensity``).
Imports numpy, scipy and mixbridge's torch-free layers only.
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mixbridge.errors import AudioInputError, MixbridgeError, ParamRangeError, RecordFormatError
from mixbridge.loudness import SILENT_LUFS, integrated_lufs, true_peak_dbtp
from mixbridge.records import read_record
from mixbridge.schema import COMPRESSOR, EQ, LIMITER, LOUDNESS, MASTER_BUS
from mixbridge.spectrum import THIRD_OCTAVE_CENTRES_HZ, ltas_db

from .master_bus import LIMITER_MARGIN_DB, render_master
from .master_plan import MasterPlan
from .mastering import chain_params, solve_master_gain

__all__ = ["RulesMasterer", "RulesTargetError", "MasterInputError", "apply_intensity", "fit_eq_gains",
           "fit_rules_target", "load_rules_target", "cap_limiter", "probe_render", "neutral_params",
           "DEFAULT_TARGET", "RULES_FORMAT", "RULES_VERSION", "MAX_LIMITER_GR_DB"]

#: Format and version of the target table (a :func:`mixbridge.records.read_record` record).
RULES_FORMAT = "mixbridge-master-rules"
RULES_VERSION = 1
#: The shipped target table (``models/masterers/rules.json``; the same relative place in an installed package).
DEFAULT_TARGET = Path(__file__).resolve().parent.parent / "models" / "masterers" / "rules.json"
#: The split the table is fitted on (never val or test).
FIT_SPLIT = "train"
#: Bands the EQ fit looks at, Hz: below 40 Hz and above 16 kHz the masters' spectra vary most and the
#: five bands have the least authority.
FIT_RANGE_HZ = (40.0, 16000.0)
#: Corners and Qs of the five bands the fit sets the gains of (the schema's defaults, with wider bells).
EQ_LAYOUT = {"low_shelf_freq_hz": 100.0, "peak1_freq_hz": 400.0, "peak1_q": 0.7, "peak2_freq_hz": 1500.0,
             "peak2_q": 0.7, "peak3_freq_hz": 5000.0, "peak3_q": 0.7, "high_shelf_freq_hz": 8000.0}
EQ_GAINS = ("low_shelf_gain_db", "peak1_gain_db", "peak2_gain_db", "peak3_gain_db", "high_shelf_gain_db")
#: Bands are weighted by ``1 / std^2`` of the training masters' levels (std floored here, dB): the top and
#: bottom thirds vary by 8-14 dB between masters (lossy codecs' low-pass, sub-bass), the mids by 2.5-3.5 dB.
MIN_STD_DB = 1.5
#: Ridge weight of the EQ fit per dB of gain (keeps neighbouring bands from fighting).
EQ_RIDGE = 0.05
#: Largest EQ gain the fit sets, dB (the issue's pre-master tilts and bells are within +-6 dB).
MAX_EQ_DB = 6.0
#: Fraction of the fitted correction applied without references (with references: 1). Chosen on the
#: validation album (4 pre-master clips, mean octave-band tonal error against the originals; gain + limiter
#: 1.71 dB): with the PLR margin at 1 std, no EQ 1.60 dB, a fraction of the correction toward the training
#: mean 1.82 dB (0.15), 2.08 dB (0.3), 2.85 dB (0.6); at 2 std, no EQ 1.65 dB, the whole correction outside
#: 1, 1.5, 2 std of the masters 2.89, 2.56, 2.39 dB, half of it outside 1.5 std 2.07 dB.
#: A song's bands lie 4.9 dB from the training mean on average there (3.8 dB within the training albums),
#: more than a +-6 dB pre-master EQ moves them, so the mean is a worse guess than the mix itself: the
#: default leaves the tone alone unless a reference says where to go (``eq_strength`` turns it on).
EQ_STRENGTH = 0.0
#: With ``eq_strength > 0`` and no references, a band moves only by what its distance from the target
#: exceeds this many standard deviations of the training masters' levels there (a soft threshold).
EQ_DEADBAND_STD = 2.0
#: Without references the compressor leaves a PLR up to the masters' mean plus this many standard deviations
#: (validation album: 1 std gave 1.50 dB PLR error, 2 std 0.95 dB, none 0.89 dB with a worse tone).
PLR_MARGIN_STD = 2.0
#: Compressor threshold above the measured integrated loudness, dB (its detector is the sample peak).
THRESHOLD_OVER_LUFS_DB = 8.0
#: Bounds of the solved ratio.
MAX_RATIO = 6.0
#: Secant steps of the ratio solve (each is one render of the bus).
RATIO_STEPS = 3
#: The solved PLR is accepted this close to its goal, dB.
PLR_TOLERANCE_DB = 0.3
#: Compressor time constants and knee of the plan. The attack is fast: the detector is the sample peak and
#: the aim is the peak-to-loudness ratio, which a 20 ms attack raises rather than lowers (transients pass
#: while the body is turned down; measured on validation-album pre-masters, ratio 1.5-4).
ATTACK_MS, RELEASE_MS, KNEE_DB = 1.0, 100.0, 6.0
#: The limiter's largest gain reduction by default, dB (the issue's cap).
MAX_LIMITER_GR_DB = 6.0
#: Solver runs that check the cap (each is one :func:`~.mastering.solve_master_gain`), and the excess accepted, dB.
CAP_STEPS, CAP_TOLERANCE_DB = 3, 0.3
#: Gain stage of the measuring renders, dB below 0: the limiter (at 0 dBTP) then never acts on a
#: compressed mix whose true peak is below +PROBE_DB dBTP (checked).
PROBE_DB = 30.0
#: A mix this quiet or quieter is refused as near-silent (integrated loudness, LUFS).
NEAR_SILENT_LUFS = -60.0


class MasterInputError(AudioInputError):
    """A mix (or reference) that cannot be mastered: silent or near-silent, wrong shape, NaN/inf."""


class RulesTargetError(RecordFormatError):
    """A rules target table that cannot be read or lacks a field (the message names the fix)."""


# ----------------------------------------------------------------------------- neutral and intensity
def neutral_params(params: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """``params`` with the EQ and the compressor neutral (EQ gains 0 dB, ratio 1, threshold 0 dB, makeup
    0 dB): the chain that is only the solved gain and the limiter."""
    return apply_intensity(params, 0.0)


def apply_intensity(params: Mapping[str, Mapping[str, float]], intensity: float) -> dict[str, dict[str, float]]:
    """Every parameter of a mastering plan interpolated toward the neutral chain (``--intensity``).

    ``intensity`` 1 keeps ``params``; 0 gives the neutral chain (only the solved gain and the limiter):
    EQ gains ``* intensity`` (toward 0 dB), ratio ``1 + (ratio - 1) * intensity`` (toward 1:1),
    threshold ``threshold * intensity`` (toward 0 dBFS), makeup ``* intensity`` (toward 0 dB). The
    corners, Qs and time constants stay (they do nothing at 0 dB / 1:1); the limiter and the loudness
    target are the user's and stay too.

    Raises:
        ParamRangeError: ``intensity`` outside [0, 1].
    """
    if not (isinstance(intensity, (int, float)) and math.isfinite(intensity) and 0.0 <= intensity <= 1.0):
        raise ParamRangeError(f"intensity = {intensity!r} must lie in [0, 1] (0: only gain and limiter, 1: the "
                              "model's chain); give --intensity 0..1")
    k = float(intensity)
    out = {proc: dict(values) for proc, values in params.items()}
    for g in EQ_GAINS:
        out["eq"][g] = float(out["eq"][g]) * k
    c = out["compressor"]
    c["ratio"] = 1.0 + (float(c["ratio"]) - 1.0) * k
    c["threshold_db"] = float(c["threshold_db"]) * k
    c["makeup_db"] = float(c["makeup_db"]) * k
    return out


# ----------------------------------------------------------------------------- measuring renders
def probe_render(mix: np.ndarray, sample_rate: int, params: Mapping[str, Mapping[str, float]],
                 stage: str = "compressor") -> np.ndarray:
    """The master bus's output after its EQ (``stage="eq"``) or its compressor (``"compressor"``), float32
    ``[2, samples]`` at the mix's level: one render of the one bus with the gain stage at ``-PROBE_DB`` and
    the ceiling at 0 dBTP (so the limiter does nothing), scaled back by ``+PROBE_DB``.

    Raises:
        ParamRangeError: an unknown ``stage``.
        MixbridgeError: the stage's true peak reaches ``PROBE_DB`` dBTP (the limiter would have acted).
    """
    if stage not in ("eq", "compressor"):
        raise ParamRangeError(f"stage = {stage!r}; use 'eq' or 'compressor'")
    p = {proc: dict(v) for proc, v in params.items()}
    if stage == "eq":
        p["compressor"] = dict(p["compressor"], ratio=1.0, makeup_db=0.0)
    p["limiter"] = dict(p["limiter"], ceiling_dbtp=0.0)
    out = render_master(mix, sample_rate, chain_params(p, -PROBE_DB))
    if float(np.max(np.abs(out))) >= 10.0 ** (-(LIMITER_MARGIN_DB + 0.05) / 20.0):
        raise MixbridgeError(f"probe_render: the {stage} stage's output peaks near +{PROBE_DB:g} dBFS; the mix is "
                             "far too loud to measure (turn it down)")
    return (out.astype(np.float64) * 10.0 ** (PROBE_DB / 20.0)).astype(np.float32)


# ----------------------------------------------------------------------------- the EQ fit
def fit_eq_gains(desired_db: np.ndarray, centres_hz: Sequence[float] | np.ndarray, sample_rate: int, *,
                 max_eq_db: float = MAX_EQ_DB, weights: np.ndarray | None = None) -> tuple[dict[str, float], float]:
    """The five band gains (dB, at the corners of :data:`EQ_LAYOUT`) whose RBJ magnitude plus a free
    offset best fits ``desired_db`` at ``centres_hz`` (NaN bands ignored): bounded least squares
    (scipy ``least_squares``, trust-region reflective) with a ridge of :data:`EQ_RIDGE` per dB.

    Returns:
        ``(eq_params, offset_db)``: the schema's ``eq`` values (layout corners, fitted gains) and the offset.
    """
    from scipy.optimize import least_squares

    from .rbj import eq_response_db

    d = np.asarray(desired_db, dtype=np.float64)
    f = np.asarray(centres_hz, dtype=np.float64)
    ok = np.isfinite(d) & (f < 0.45 * sample_rate)
    d, f = d[ok], f[ok]
    w = np.ones_like(d) if weights is None else np.asarray(weights, dtype=np.float64)[ok]
    sw = np.sqrt(w / w.sum())

    def params_of(g: np.ndarray) -> dict[str, float]:
        return {**EQ.defaults(), **EQ_LAYOUT, **{name: float(v) for name, v in zip(EQ_GAINS, g)}}

    def residual(x: np.ndarray) -> np.ndarray:
        g, c = x[:5], x[5]
        r = sw * (eq_response_db(params_of(g), f, sample_rate) + c - d)
        return np.concatenate([r, math.sqrt(EQ_RIDGE / len(EQ_GAINS)) * g / max(max_eq_db, 1e-9)])

    lo = np.array([-max_eq_db] * 5 + [-60.0])
    hi = np.array([max_eq_db] * 5 + [60.0])
    x0 = np.zeros(6)
    x0[5] = float(np.sum(w * d) / np.sum(w))
    sol = least_squares(residual, x0, bounds=(lo, hi), method="trf", xtol=1e-10, ftol=1e-10)
    return params_of(sol.x[:5]), float(sol.x[5])


# ----------------------------------------------------------------------------- the target table
def _file_stats(audio: np.ndarray, sample_rate: int) -> dict[str, Any]:
    lufs = integrated_lufs(audio, sample_rate)
    tp = true_peak_dbtp(audio, sample_rate)
    return {"lufs": lufs, "true_peak_dbtp": tp, "plr_db": tp - lufs,
            "ltas_db": ltas_db(audio, sample_rate, bands="third")}


def _excerpt(path: Path, max_seconds: float | None) -> tuple[np.ndarray, int]:
    """The middle ``max_seconds`` of a file (the whole file for None), through the project's reader."""
    from mixbridge.audio import AudioReader, read_audio

    if max_seconds is None:
        return read_audio(path)
    with AudioReader(path) as r:
        n = int(max_seconds * r.sample_rate)
        start = max(0, (r.frames - n) // 2)
        frames = min(n, r.frames - start)
    return read_audio(path, start=start, frames=frames)


def fit_rules_target(out_path: str | Path, *, root: str | Path | None = None, max_seconds: float | None = None,
                     command: str = "", progress: bool = False) -> dict[str, Any]:
    """Fit and write the rules target table: the mean third-octave LTAS relative to loudness, PLR and
    loudness of the training-split masters (:func:`~mixbridge.plugins.datagen.masters.master_files`).

    Args:
        out_path: the JSON table to write (atomically), e.g. ``models/masterers/rules.json``.
        root: a folder of the user's own masters (default: the shipped catalogue).
        max_seconds: analyse only the middle ``max_seconds`` of each file (None: the whole file).
        command: the command line that made it, for the provenance.

    Returns:
        The table written (``format``, ``version``, ``centres_hz``, ``ltas_db``, ``ltas_std_db``,
        ``plr_db``, ``plr_std_db``, ``lufs``, ``provenance``).

    Files at or below :data:`NEAR_SILENT_LUFS` are skipped (listed in the provenance).

    Raises:
        AudioInputError: no masters (run scripts/setup.sh) or an unreadable one.
    """
    from mixbridge import __version__
    from mixbridge.atomic import atomic_write_text

    from .datagen.masters import master_files

    t0 = time.perf_counter()
    files = master_files(root, split=FIT_SPLIT)
    rows = []
    skipped: list[str] = []
    for i, f in enumerate(files):
        audio, sr = _excerpt(f.path, max_seconds)
        if audio.shape[0] == 1:
            audio = np.concatenate([audio, audio])
        if integrated_lufs(audio, sr) <= NEAR_SILENT_LUFS:  # e.g. wesnoth's silence.ogg: no tone to learn
            skipped.append(str(f.path))
            if progress:
                print(f"  [{i + 1}/{len(files)}] {f.path.name}: near-silent, skipped", flush=True)
            continue
        s = _file_stats(audio, sr)
        rows.append(s)
        if progress:
            print(f"  [{i + 1}/{len(files)}] {f.path.name}: {s['lufs']:.2f} LUFS, PLR {s['plr_db']:.2f} dB", flush=True)
    ltas = np.array([r["ltas_db"] for r in rows])
    plr = np.array([r["plr_db"] for r in rows])
    table = {
        "format": RULES_FORMAT, "version": RULES_VERSION, "bands": "third",
        "centres_hz": [float(c) for c in THIRD_OCTAVE_CENTRES_HZ],
        "ltas_db": [round(float(v), 3) for v in np.nanmean(ltas, axis=0)],
        "ltas_std_db": [round(float(v), 3) for v in np.nanstd(ltas, axis=0)],
        "plr_db": round(float(plr.mean()), 3), "plr_std_db": round(float(plr.std()), 3),
        "lufs": round(float(np.mean([r["lufs"] for r in rows])), 3),
        "provenance": {
            "split": FIT_SPLIT, "albums": sorted({f.album for f in files}), "files": len(rows),
            "skipped_near_silent": skipped,
            "max_seconds": max_seconds, "root": None if root is None else str(root),
            "command": command, "mixbridge_version": __version__,
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seconds": round(time.perf_counter() - t0, 1),
            "method": "mixbridge.spectrum.ltas_db (Welch 8192, Hann, third octaves) minus BS.1770-4 integrated "
                      "loudness, averaged in dB over files; PLR = true peak (dBTP) - integrated loudness",
        },
    }
    atomic_write_text(Path(out_path), json.dumps(table, indent=1) + "\n")
    return table


def load_rules_target(path: str | Path | Mapping[str, Any] = DEFAULT_TARGET) -> dict[str, Any]:
    """Read a rules target table (:func:`fit_rules_target`).

    Raises:
        RulesTargetError: missing, unreadable, another format or version, or a field missing.
    """
    fix = "make it with `mixbridge train master-rules -o models/masterers/rules.json`"
    missing = f"{path}: no rules target table; {fix}" if not isinstance(path, Mapping) else None
    table = read_record(path, format=RULES_FORMAT, versions=(RULES_VERSION,), what="mixbridge master-rules table",
                        fix=fix, missing=missing, error=RulesTargetError)
    for key in ("centres_hz", "ltas_db", "plr_db"):
        if key not in table:
            raise RulesTargetError(f"{path}: the rules table has no '{key}'; {fix}")
    if len(table["centres_hz"]) != len(table["ltas_db"]):
        raise RulesTargetError(f"{path}: {len(table['centres_hz'])} centres but {len(table['ltas_db'])} levels; {fix}")
    return table


# ----------------------------------------------------------------------------- the masterer
def _check_audio(audio: np.ndarray, sample_rate: int, what: str) -> tuple[np.ndarray, float]:
    a = np.asarray(audio)
    if a.ndim != 2 or a.shape[0] != 2:
        raise MasterInputError(f"{what} has shape {a.shape}; give stereo float32 [2, samples] (mono: duplicate it)")
    if not np.all(np.isfinite(a)):
        raise MasterInputError(f"{what} holds NaN/inf samples; repair or re-export it")
    lufs = integrated_lufs(a, sample_rate)
    if lufs <= NEAR_SILENT_LUFS:
        raise MasterInputError(
            f"{what} is silent or near-silent ({'below -70' if lufs <= SILENT_LUFS else f'{lufs:.1f}'} LUFS, "
            f"{a.shape[1] / sample_rate:.2f} s; mastering needs more than {NEAR_SILENT_LUFS:g} LUFS and at least "
            "0.4 s): there is nothing to master; give the mix itself")
    return a, lufs


def _measure(x: np.ndarray, sample_rate: int) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) of ``x``."""
    return integrated_lufs(x, sample_rate), true_peak_dbtp(x, sample_rate)


def cap_limiter(mix: np.ndarray, sample_rate: int, params: Mapping[str, Mapping[str, float]], *,
                max_limiter_db: float = MAX_LIMITER_GR_DB, who: str = "master",
                input_lufs: float | None = None) -> tuple[dict[str, dict[str, float]], list[str], float]:
    """Cap the limiter's gain reduction of a plan: lower ``loudness.target_lufs`` until the limiter reduces
    peaks by at most ``max_limiter_db`` (dB), for any mastering model's plan.

    The limiter's largest reduction at the target is the pre-limiter true peak (the EQ and compressor
    stages' output, :func:`probe_render`, at the solved gain) over the ceiling: predicted from that
    stage's PLR, then checked with up to :data:`CAP_STEPS` runs of the one gain solver (limiting dense
    peaks lowers the loudness, so the solver adds gain). A mix louder than the target is turned down by the
    solved gain, never limited harder; that is said in a notice.

    Args:
        mix: float32 ``[2, samples]``; params: ``master_bus`` values (not modified).
        who: the model's name, for the notices.
        input_lufs: the mix's integrated loudness if already measured.

    Returns:
        ``(params, notices, limiter_gr_db)``: a copy of ``params`` with the target lowered where the cap
        needs it, plain sentences naming the target, what is aimed at and the fix, and the expected
        largest limiter reduction (dB).
    """
    out: dict[str, dict[str, float]] = {proc: dict(v) for proc, v in params.items()}
    params = out
    notices: list[str] = []
    target_lufs = float(params["loudness"]["target_lufs"])
    ceiling_dbtp = float(params["limiter"]["ceiling_dbtp"])
    in_lufs = integrated_lufs(mix, sample_rate) if input_lufs is None else float(input_lufs)
    comp_lufs, comp_stage_tp = _measure(probe_render(mix, sample_rate, params, "compressor"), sample_rate)
    comp_plr = comp_stage_tp - comp_lufs
    limiter_gr = comp_plr - (ceiling_dbtp - target_lufs) + LIMITER_MARGIN_DB
    lo_target = LOUDNESS.param("target_lufs").min
    if limiter_gr > max_limiter_db:
        reached_target = float(np.clip(ceiling_dbtp - LIMITER_MARGIN_DB + max_limiter_db - comp_plr,
                                       lo_target, target_lufs))
        for _ in range(CAP_STEPS):
            out["loudness"]["target_lufs"] = round(reached_target, 3)
            gain_db = solve_master_gain(mix, sample_rate, out)[0]
            limiter_gr = comp_stage_tp + gain_db - ceiling_dbtp + LIMITER_MARGIN_DB
            if limiter_gr <= max_limiter_db + CAP_TOLERANCE_DB or reached_target <= lo_target:
                break
            reached_target = max(lo_target, reached_target - (limiter_gr - max_limiter_db))
        ratio = float(params["compressor"]["ratio"])
        notices.append(
            f"{who}: {target_lufs:g} LUFS under a {ceiling_dbtp:g} dBTP ceiling needs more than "
            f"{max_limiter_db:g} dB of limiter gain reduction (the compressed mix's PLR is {comp_plr:.1f} dB, "
            f"compressor at {ratio:.2f}:1); the cap is {max_limiter_db:g} dB, so the master aims at "
            f"{reached_target:.2f} LUFS ({reached_target - target_lufs:+.2f} LU, limiter at most {limiter_gr:.1f} dB); "
            "raise --max-limiter-db or lower --target-lufs")
        out["loudness"]["target_lufs"] = round(reached_target, 3)
    if in_lufs > target_lufs:
        notices.append(f"{who}: the mix ({in_lufs:.2f} LUFS) is louder than the {target_lufs:g} LUFS target; it is "
                       f"turned down by about {in_lufs - target_lufs:.1f} dB, not limited harder")
    return out, notices, float(limiter_gr)


class RulesMasterer:
    """The rules mastering model (see the module docstring); a :class:`~mixbridge.models.masterers.Masterer`.

    Args:
        target: the target table (a path or a loaded table; default the shipped ``rules.json``).
        max_limiter_db: the limiter's largest gain reduction, dB (default 6).
        eq_strength: fraction of the fitted EQ correction toward the training mean applied, 0..1
            (default :data:`EQ_STRENGTH`, 0, chosen on the validation album; with references it is 1).
        max_eq_db: bound of each fitted EQ gain, dB.
        threshold_over_lufs_db: compressor threshold above the measured loudness, dB.
        plr_margin_db: the compressor leaves a PLR up to the target PLR plus this alone, dB (default:
            :data:`PLR_MARGIN_STD` times the training masters' PLR standard deviation, 3.8 dB: a mix inside
            their range is not compressed toward their mean; with references 0).
        eq_deadband_std: see :data:`EQ_DEADBAND_STD` (0: the whole difference; with references 0).

    Raises:
        RulesTargetError: the table cannot be read. ParamRangeError: a setting out of range.
    """

    name = "rules"

    def __init__(self, *, target: str | Path | Mapping[str, Any] | None = None,
                 max_limiter_db: float = MAX_LIMITER_GR_DB, eq_strength: float = EQ_STRENGTH,
                 max_eq_db: float = MAX_EQ_DB, threshold_over_lufs_db: float = THRESHOLD_OVER_LUFS_DB,
                 plr_margin_db: float | None = None, eq_deadband_std: float = EQ_DEADBAND_STD) -> None:
        for label, v, lo, hi in (("max_limiter_db", max_limiter_db, 0.0, 36.0), ("eq_strength", eq_strength, 0.0, 1.0),
                                 ("max_eq_db", max_eq_db, 0.0, 12.0),
                                 ("threshold_over_lufs_db", threshold_over_lufs_db, -20.0, 30.0)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and lo <= v <= hi):
                raise ParamRangeError(f"{label} = {v!r} must lie in [{lo:g}, {hi:g}]")
        self.table = load_rules_target(DEFAULT_TARGET if target is None else target)
        self.max_limiter_db = float(max_limiter_db)
        self.eq_strength = float(eq_strength)
        self.max_eq_db = float(max_eq_db)
        self.threshold_over_lufs_db = float(threshold_over_lufs_db)
        if not (math.isfinite(eq_deadband_std) and 0.0 <= eq_deadband_std <= 5.0):
            raise ParamRangeError(f"eq_deadband_std = {eq_deadband_std!r} must lie in [0, 5]")
        self.eq_deadband_std = float(eq_deadband_std)
        if plr_margin_db is not None and not (math.isfinite(plr_margin_db) and 0.0 <= plr_margin_db <= 12.0):
            raise ParamRangeError(f"plr_margin_db = {plr_margin_db!r} must lie in [0, 12] dB")
        self.plr_margin_db = (PLR_MARGIN_STD * float(self.table.get("plr_std_db", 0.0)) if plr_margin_db is None
                              else float(plr_margin_db))

    def __call__(self, audio: np.ndarray, sample_rate: int, *, target_lufs: float, ceiling_dbtp: float,
                 references: Sequence[np.ndarray] = ()) -> MasterPlan:
        """The plan for ``audio`` float32 ``[2, samples]`` at ``sample_rate`` Hz (deterministic).

        Raises:
            MasterInputError: silent/near-silent, non-stereo or non-finite audio or references.
            ParamRangeError: a target or ceiling outside the schema's range.
        """
        target_lufs = LOUDNESS.param("target_lufs").validate(target_lufs, "target_lufs")
        ceiling_dbtp = LIMITER.param("ceiling_dbtp").validate(ceiling_dbtp, "ceiling_dbtp")
        x, in_lufs = _check_audio(audio, sample_rate, "the mix")
        notices: list[str] = []
        centres = np.asarray(self.table["centres_hz"], dtype=np.float64)
        strength = self.eq_strength
        weights = None
        deadband: np.ndarray | float = 0.0
        if references:
            stats = [_file_stats(_check_audio(r, sample_rate, f"reference {i + 1}")[0], sample_rate)
                     for i, r in enumerate(references)]
            target_ltas = np.nanmean([s["ltas_db"] for s in stats], axis=0)
            centres = np.asarray(THIRD_OCTAVE_CENTRES_HZ)
            target_plr = float(np.mean([s["plr_db"] for s in stats]))
            strength = 1.0
            margin = 0.0
            aim = f"the mean spectrum and PLR ({target_plr:.1f} dB) of {len(stats)} reference(s)"
        else:
            target_ltas = np.asarray(self.table["ltas_db"], dtype=np.float64)
            target_plr = float(self.table["plr_db"])
            margin = self.plr_margin_db
            if "ltas_std_db" in self.table:  # bands where the masters disagree count less, and move less
                std = np.maximum(np.asarray(self.table["ltas_std_db"], dtype=np.float64), MIN_STD_DB)
                weights = 1.0 / std ** 2
                deadband = self.eq_deadband_std * std
            prov = self.table.get("provenance", {})
            aim = (f"the mean spectrum and PLR ({target_plr:.1f} dB) of {prov.get('files', '?')} training masters "
                   f"({', '.join(prov.get('albums', []))})")

        # 1. EQ toward the target spectrum
        in_ltas = ltas_db(x, sample_rate, bands="third", relative=False) - in_lufs
        in_at = np.interp(np.log(centres), np.log(np.asarray(THIRD_OCTAVE_CENTRES_HZ)), in_ltas)
        diff = target_ltas - in_at
        diff = diff - np.nanmedian(diff)  # the level is free (the gain solver sets it)
        diff = np.sign(diff) * np.maximum(np.abs(diff) - deadband, 0.0)  # inside the masters' spread: leave it
        desired = np.where((centres >= FIT_RANGE_HZ[0]) & (centres <= FIT_RANGE_HZ[1]), diff, np.nan)
        eq, _ = fit_eq_gains(desired, centres, sample_rate, max_eq_db=self.max_eq_db, weights=weights)
        fitted = {g: eq[g] for g in EQ_GAINS}
        for g in EQ_GAINS:
            eq[g] = round(eq[g] * strength, 3)
        params: dict[str, dict[str, float]] = MASTER_BUS.defaults()
        params.pop("reverb", None)
        params["eq"] = eq
        params["limiter"]["ceiling_dbtp"] = ceiling_dbtp
        params["loudness"]["target_lufs"] = target_lufs
        params["compressor"] = dict(COMPRESSOR.defaults(), ratio=1.0, attack_ms=ATTACK_MS, release_ms=RELEASE_MS,
                                    knee_db=KNEE_DB, makeup_db=0.0)
        eq_lufs, eq_tp = _measure(probe_render(x, sample_rate, params, "eq"), sample_rate)

        # 2. compressor: threshold relative to the loudness, ratio solved on the measured PLR
        thr_p = COMPRESSOR.param("threshold_db")
        threshold = eq_lufs + self.threshold_over_lufs_db
        if not thr_p.min <= threshold <= thr_p.max:
            notices.append(f"rules: compressor threshold {threshold:.1f} dB (loudness {eq_lufs:.1f} LUFS + "
                           f"{self.threshold_over_lufs_db:g} dB) is outside {thr_p.range_text()}; set to the "
                           "nearest end")
            threshold = float(np.clip(threshold, thr_p.min, thr_p.max))
        params["compressor"]["threshold_db"] = round(threshold, 3)
        headroom = ceiling_dbtp - target_lufs
        plr_goal = min(target_plr + margin, headroom + self.max_limiter_db)
        eq_plr = eq_tp - eq_lufs
        comp_lufs, comp_tp, ratio = eq_lufs, eq_tp, 1.0
        tried: list[tuple[float, float]] = [(1.0, eq_plr)]
        if eq_plr > plr_goal + PLR_TOLERANCE_DB:
            # first guess: a peak PLR above the threshold shrinks by (1 - 1/ratio) of its excess
            excess = max(eq_plr - self.threshold_over_lufs_db, 1e-3)
            reduce = min(eq_plr - plr_goal, 0.95 * excess)
            ratio = float(np.clip(1.0 / (1.0 - reduce / excess), 1.0, MAX_RATIO))
            for _ in range(RATIO_STEPS):
                params["compressor"]["ratio"] = round(ratio, 4)
                comp_lufs, comp_tp = _measure(probe_render(x, sample_rate, params, "compressor"), sample_rate)
                tried.append((ratio, comp_tp - comp_lufs))
                if abs(tried[-1][1] - plr_goal) <= PLR_TOLERANCE_DB or (ratio >= MAX_RATIO and tried[-1][1] > plr_goal):
                    break
                (r0, p0), (r1, p1) = tried[-2], tried[-1]
                if r1 == r0 or p1 >= p0:
                    break  # more compression did not lower the PLR: keep the best tried
                # secant on PLR against log ratio (compression acts in dB)
                slope = (p1 - p0) / (math.log(r1) - math.log(r0))
                ratio = float(np.clip(math.exp(math.log(r1) + (plr_goal - p1) / slope), 1.0, MAX_RATIO))
                if any(abs(ratio - r) < 1e-3 for r, _ in tried):
                    break
            best = min(tried, key=lambda t: abs(t[1] - plr_goal))
            if best[0] != params["compressor"]["ratio"]:
                params["compressor"]["ratio"] = round(best[0], 4)
                comp_lufs, comp_tp = (eq_lufs, eq_tp) if best[0] == 1.0 else _measure(
                    probe_render(x, sample_rate, params, "compressor"), sample_rate)
        comp_plr = comp_tp - comp_lufs

        # 3. the limiter's cap (one function for every model: :func:`cap_limiter`)
        params, cap_notices, limiter_gr = cap_limiter(x, sample_rate, params, max_limiter_db=self.max_limiter_db,
                                                      who="rules", input_lufs=in_lufs)
        notices += cap_notices
        info = {
            "aim": aim, "input_lufs": round(in_lufs, 3), "eq_lufs": round(eq_lufs, 3),
            "input_plr_db": round(eq_plr, 3), "plr_goal_db": round(plr_goal, 3),
            "compressed_plr_db": round(comp_plr, 3),
            "target_plr_db": round(target_plr, 3), "threshold_over_lufs_db": self.threshold_over_lufs_db,
            "ratio_tries": [[round(r, 3), round(p, 3)] for r, p in tried],
            "expected_limiter_gr_db": round(max(0.0, limiter_gr), 3), "max_limiter_db": self.max_limiter_db,
            "eq_fitted_db": {g: round(v, 3) for g, v in fitted.items()}, "eq_strength": strength,
            "target_lufs_asked": target_lufs, "target_lufs_planned": params["loudness"]["target_lufs"],
            "centres_hz": [round(float(c), 2) for c in centres],
            "target_ltas_db": [None if not math.isfinite(v) else round(float(v), 3) for v in target_ltas],
            "input_ltas_db": [round(float(v), 3) for v in in_at],
        }
        return MasterPlan(params, notices, info)

