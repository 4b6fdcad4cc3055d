"""Pre-master pairs the master bus can invert: finished masters degraded only in ways it undoes.

``mixbridge datagen premaster -o DIR`` (issue 13 item 3, DESIGN.md "Mastering pairs the chain can
invert"). Each example is a clip of a finished stereo master (the target) and a *pre-master* made
from it by three invertible stages, in this order, each the exact inverse of one stage of the one
master bus (:mod:`mixbridge.plugins.master_bus`: EQ -> compressor -> gain -> limiter), so that the
stored label -- master bus parameters in real units -- renders the master back. A clip whose lossy
decode is over -0.1 dBTP (a third of the shipped clips) is first turned down to -0.1 dBTP
(:func:`target_master`, gain only, ``master_gain_db``): that is the target, since no limiter with
a ceiling at or under 0 dBTP could leave it untouched.

1. **Expansion** (:func:`expand`): the exact inverse of the schema compressor
   (``COMPRESSOR_SEMANTICS``; Giannoulis, Massberg & Reiss, JAES 60(6), 2012: peak detector
   linked over the channels, quadratic soft knee, eq. 17 ballistics) with threshold ``T`` (dBFS of
   the master clip), ratio 1.5-4, attack/release and knee in the schema's ranges. It is a
   *feedback* expander: per sample it solves for the level whose compression gives the master's
   level, with the compressor's own detector state, so ``compress(expand(m)) == m`` to float
   round-off, ballistics included (a static-curve expander with its detector on its input only
   inverts the static curve). Variant ``expander`` (attack 1-30 ms, threshold 2-10 dB under the
   clip's peak) restores dynamics; variant ``delimiter`` (attack 0.1-1 ms, release 10-100 ms,
   threshold 1-4 dB under the peak) undoes peak limiting.
2. **EQ** (:func:`rbj_eq`): the schema's five-band RBJ EQ (:func:`mixbridge.plugins.rbj.eq_sections`,
   the master bus's own design) with gains within +-6 dB -- a tilt of the two shelves and three
   bells -- and the whole response kept within +-6 dB. For RBJ peaking bands and slope-form shelves
   ``H(z; -g) = 1 / H(z; g)`` (same frequency and Q; the shelf Q of ``shelf_q`` is even in the
   gain), so the label EQ is the same bands with negated gains.
3. **Level** (``level_db``): a gain that puts the pre-master at a loudness drawn uniformly in
   -30..-18 LUFS with sample and true peak at or below -3 dBFS (:mod:`mixbridge.loudness`); a draw
   that cannot meet both is redrawn with half the expansion depth.

The label (:func:`inverse_plan`): ``eq`` = the degradation's bands with negated gains; ``compressor``
= the expander's curve with ``threshold_db = T + level_db`` (the compressor sees the level-changed
signal), ``makeup_db = 0``; ``limiter.ceiling_dbtp`` at or above the original clip's true peak (so
it does not act, unless the lossy decode of the master itself is over 0 dBTP); ``loudness.target_lufs``
= the original clip's loudness. The one gain solver then finds ``gain.gain_db = -level_db``, stored
as ``label_gain_db``. :func:`mixbridge.plugins.mastering.master` of (pre, label) gives back the master
to the figures :func:`round_trip_error` measures: the ceiling any model can reach.

``--hard`` adds :func:`~.demaster.reverb_insert` and/or :func:`~.demaster.echo` (the demastering
generator's own, parameters from the schema's ``DEMASTER``) after stage 2 and before the level, flagged
per example; the label stays the invertible part.

Sources: the shipped catalogue (:func:`~.masters.master_files`, split by album) or ``--source DIR``
(albums by folder). Example indices are laid out by split (``train`` first, then ``val``, then
``test``) and an example of a split draws its clip only from that split's files.

Stored per example (``S`` clip samples)::

    pre, master                 float32 [N, 2, S]  pre-master (input) and master (target), as rendered
                                                   (see AUDIO_DTYPE for why float32); master is
                                                   target_master() of the decoded clip
    master_gain_db              float64 [N]        gain that turned an over-0-dBTP clip down (<= 0)
    label                       float64 [N, 22]    the inverse plan, LABEL_NAMES order, real units
    label_norm                  float32 [N, 22]    the same, normalised 0..1 in the schema's scale
    label_gain_db               float64 [N]        the gain stage value that completes the inverse
    degradation_json            str     [N]        what was rendered (draw_degradation's dict)
    split_id                    uint8   [N]        0 train, 1 val, 2 test (SPLITS)
    source_file                 int32   [N]        index into config["sources"] (album, split there)
    source_start_s              float64 [N]
    pre_lufs, pre_true_peak_dbtp, master_lufs, master_true_peak_dbtp   float64 [N]
    hard, reverb, echo          uint8   [N]        hard-set flags
    index, seed                 int64   [N]

:func:`read_premaster_dataset` reads it back without torch.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mixbridge import __version__
from mixbridge.errors import AudioInputError, ParamRangeError
from mixbridge.loudness import db_to_gain, integrated_lufs, true_peak_dbtp
from mixbridge.schema import DEMASTER, EQ, MASTER_BUS, Param

from .errors import DatagenConfigError
from .job import Example, Job, Spec, example_rngs, register_job
from .masters import SPLITS, master_files
from .params import check_run_numbers

# --------------------------------------------------------------------------- constants
#: Loudness range of the pre-masters, LUFS (issue 13 item 3).
PRE_LUFS_RANGE = (-30.0, -18.0)
#: Highest sample and true peak of a pre-master, dBFS / dBTP.
PRE_PEAK_MAX_DB = -3.0
#: The pre-master is aimed this far inside its loudness and peak bounds (BS.1770's gate and the
#: float32/int16 storage move them by hundredths of a dB).
BOUND_MARGIN_DB = 0.05
#: Largest magnitude of any band gain and of the whole degradation EQ's response, dB.
EQ_MAX_DB = 6.0
#: Where the EQ's response is checked against EQ_MAX_DB: 256 log-spaced frequencies, Hz.
EQ_CHECK_HZ = (20.0, 20000.0)
#: Ranges the degradation draws from (all inside the schema's ``eq`` ranges; log-uniform).
EQ_DRAW = {"low_shelf_freq_hz": (40.0, 400.0), "peak1_freq_hz": (200.0, 1200.0), "peak2_freq_hz": (800.0, 4000.0),
           "peak3_freq_hz": (2500.0, 9000.0), "high_shelf_freq_hz": (3000.0, 12000.0), "q": (0.5, 3.0)}
#: The expander's variants: ratio, attack_ms, release_ms (log-uniform), knee_db (uniform), depth of
#: the threshold under the clip's sample peak in dB (uniform), and the probability of the variant.
EXPANDER_VARIANTS: dict[str, dict[str, Any]] = {
    "expander": {"p": 0.7, "ratio": (1.5, 4.0), "attack_ms": (1.0, 30.0), "release_ms": (30.0, 500.0),
                 "knee_db": (0.0, 6.0), "depth_db": (2.0, 10.0)},
    "delimiter": {"p": 0.3, "ratio": (2.0, 4.0), "attack_ms": (0.1, 1.0), "release_ms": (10.0, 100.0),
                  "knee_db": (0.0, 2.0), "depth_db": (1.0, 4.0)},
}
#: Draws of the expansion depth (halved each time) before an example is given up as infeasible.
MAX_DEPTH_DRAWS = 6
#: Draws of a clip before giving up on finding one whose loudness is a valid label target.
MAX_CLIP_DRAWS = 16
#: Hard set: probability of the reverb and of the echo (at least one is applied).
HARD_P = {"reverb": 0.7, "echo": 0.5}
#: The label limiter's ceiling sits this far above the original clip's true peak (the limiter aims
#: LIMITER_MARGIN_DB = 0.05 dB under its ceiling), rounded up to 0.01 dB, within the schema's -6..0 dBTP.
CEILING_HEADROOM_DB = 0.1
#: A master clip whose true peak is above this is turned down to it first (:func:`target_master`), dBTP:
#: the label ceiling (true peak + CEILING_HEADROOM_DB) then stays at or under 0 dBTP, the schema's top.
MASTER_TRUE_PEAK_MAX_DBTP = -CEILING_HEADROOM_DB
#: The label limiter's release, ms (it does not act; the schema default).
LABEL_LIMITER_RELEASE_MS = 50.0
#: Audio is stored as float32, as rendered: the pair is exact only then. Measured on the shipped
#: masters, int16 with a per-clip peak scale (96 dB under each clip's peak, half the bytes) adds
#: 0.03-0.12 to the round trip's MR-STFT (quantisation noise fills the bands the lossy decodes left
#: empty, where a log-magnitude loss is most sensitive) against 1e-5 in float32; float16 (11 bits)
#: is worse. The default dataset is 660 x 2 x 2.8 MB = 3.7 GB for it.
AUDIO_DTYPE = "float32"
DEFAULT_CLIP_S = 8.0
DEFAULT_SPLIT_COUNTS = {"train": 480, "val": 60, "test": 120}
DEFAULT_SHARD_SIZE = 16
MAX_SHARD_SIZE = 4096
DATASET_KIND = "premaster"

#: ``("eq.low_shelf_gain_db", Param)``... : the master bus's parameters without the reverb, in schema order.
LABEL_PARAMS: tuple[tuple[str, Param], ...] = tuple((n, p) for n, p in MASTER_BUS.flat_params()
                                                    if not n.startswith("reverb."))
#: The names of :func:`label_vector`'s entries.
LABEL_NAMES: tuple[str, ...] = tuple(n for n, _ in LABEL_PARAMS)
#: The label's processors, in the master bus's order.
LABEL_PROCESSORS = ("eq", "compressor", "limiter", "loudness")
_EQ_GAINS = tuple(n for n in EQ.param_names if n.endswith("_gain_db"))


# --------------------------------------------------------------------------- pure DSP
def rbj_eq(audio: np.ndarray, sample_rate: int, params: Mapping[str, float]) -> np.ndarray:
    """The schema's five-band RBJ EQ (:func:`mixbridge.plugins.rbj.eq_sections`) of ``[channels, samples]``.

    The master bus's EQ design, run by ``scipy.signal.sosfilt`` from rest in float64; returns float64.
    """
    from scipy.signal import sosfilt

    from mixbridge.plugins.rbj import eq_sections

    sos = np.array([np.concatenate([b, a]) for b, a in eq_sections(params, sample_rate)])
    return sosfilt(sos, np.asarray(audio, dtype=np.float64), axis=-1)


def negate_eq(params: Mapping[str, float]) -> dict[str, float]:
    """The same EQ bands with every gain negated: the exact inverse of an RBJ EQ (``H(-g) = 1/H(g)``)."""
    return {k: (-float(v) if k in _EQ_GAINS else float(v)) for k, v in params.items()}


def expand(audio: np.ndarray, sample_rate: int, *, threshold_db: float, ratio: float, attack_ms: float,
           release_ms: float, knee_db: float) -> np.ndarray:
    """The exact inverse of :func:`mixbridge.plugins.dynamics.compress` (``makeup_db = 0``).

    For ``m`` float ``[channels, samples]`` returns ``u`` (float64, same shape) with
    ``compress(u, ...) == m`` to float round-off: per sample, knowing the compressor's detector
    state (the held reduction ``y1`` and the attack pole's ``y``), it solves for the level
    ``L`` of ``u`` whose compressed level is the level of ``m``. The compressed level
    ``L - aA y[n-1] - (1 - aA) max(S(L), aR y1[n-1])`` is strictly increasing in ``L`` (the
    static reduction ``S`` has slope ``1 - 1/ratio < 1``), so the solution is unique and is found in
    closed form on each piece (hold, linear, or quadratic knee). ``u = m * 10^(y/20)``, one gain
    for all channels (linked detector). Parameters as the schema's ``compressor`` (dB, ms).

    Raises:
        AudioInputError: audio that is not 2-D.
        ParamRangeError: ``ratio < 1``, a negative knee, or non-positive times.
    """
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim != 2:
        raise AudioInputError(f"audio must be [channels, samples], got shape {x.shape}")
    if not (ratio >= 1.0 and knee_db >= 0.0 and attack_ms > 0.0 and release_ms > 0.0):
        raise ParamRangeError(f"expand: ratio {ratio:g} must be >= 1, knee_db {knee_db:g} >= 0 dB, attack_ms "
                              f"{attack_ms:g} and release_ms {release_ms:g} > 0 ms")
    from mixbridge.plugins.dynamics import LEVEL_FLOOR

    level = 20.0 * np.log10(np.maximum(np.max(np.abs(x), axis=0), LEVEL_FLOOR))
    s = 1.0 - 1.0 / float(ratio)
    a_att = math.exp(-1.0 / (attack_ms * 1e-3 * sample_rate))
    a_rel = math.exp(-1.0 / (release_ms * 1e-3 * sample_rate))
    b = 1.0 - a_att
    t, w = float(threshold_db), float(knee_db)
    lo_knee, hi_knee = t - w / 2.0, t + w / 2.0
    k = b * s / (2.0 * w) if w > 0.0 else 0.0
    one_bs = 1.0 - b * s
    gr = np.empty(level.shape[0])
    y_prev = y1_prev = 0.0
    for n, lo in enumerate(level.tolist()):
        a = a_att * y_prev
        c = a_rel * y1_prev
        lev = lo + a + b * c  # the level if the held reduction dominates
        if lev <= lo_knee:
            stat = 0.0
        elif w > 0.0 and lev < hi_knee:
            v = lev - lo_knee
            stat = s * v * v / (2.0 * w)
        else:
            stat = s * (lev - t)
        if stat > c:  # the static reduction dominates: solve L - b S(L) = lo + a on its piece
            r = lo + a
            lev = (r - b * s * t) / one_bs
            if w > 0.0 and lev < hi_knee:
                cc = r - lo_knee  # k v^2 - v + cc = 0, v = L - lo_knee in [0, w]: the smaller root
                v = 2.0 * cc / (1.0 + math.sqrt(max(1.0 - 4.0 * k * cc, 0.0)))
                stat = s * v * v / (2.0 * w)
            else:
                stat = s * (lev - t)
            y1 = stat
        else:
            y1 = c
        y = a + b * y1
        gr[n] = y
        y_prev, y1_prev = y, y1
    return x * np.power(10.0, gr / 20.0)[None, :]


# --------------------------------------------------------------------------- the degradation
def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def eq_response_db(params: Mapping[str, float], sample_rate: int) -> np.ndarray:
    """The EQ's magnitude response in dB on 256 log-spaced frequencies over :data:`EQ_CHECK_HZ` (below Nyquist)."""
    from mixbridge.plugins.rbj import eq_response_db as rbj_response

    top = min(EQ_CHECK_HZ[1], 0.45 * sample_rate)
    return rbj_response(params, np.geomspace(EQ_CHECK_HZ[0], top, 256), sample_rate)


def draw_eq(rng: np.random.Generator, sample_rate: int) -> dict[str, float]:
    """A degradation EQ: shelves and bells with gains uniform in +-6 dB, response within +-6 dB.

    Frequencies and Q log-uniform in :data:`EQ_DRAW`; when the bands add up beyond
    :data:`EQ_MAX_DB` every gain is scaled down until they do not. Values rounded to 4 decimals
    (what is stored is what is rendered).
    """
    p: dict[str, float] = {}
    for name in EQ.param_names:
        if name.endswith("_gain_db"):
            p[name] = float(rng.uniform(-EQ_MAX_DB, EQ_MAX_DB))
        elif name.endswith("_q"):
            p[name] = _log_uniform(rng, *EQ_DRAW["q"])
        else:
            p[name] = _log_uniform(rng, *EQ_DRAW[name])
    for _ in range(20):
        peak = float(np.max(np.abs(eq_response_db(p, sample_rate))))
        if peak <= EQ_MAX_DB:
            break
        for g in _EQ_GAINS:
            p[g] *= 0.98 * EQ_MAX_DB / peak
    return {k: round(v, 4) for k, v in p.items()}


def _levels(x: np.ndarray, sample_rate: int) -> dict[str, float]:
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return {"lufs": round(float(integrated_lufs(x, sample_rate)), 4),
            "true_peak_dbtp": round(float(true_peak_dbtp(x)), 4),
            "peak_dbfs": round(20.0 * math.log10(peak), 4) if peak > 0 else -math.inf}


def _stages_before_level(master: np.ndarray, sample_rate: int, degradation: Mapping[str, Any]) -> np.ndarray:
    """Expansion, EQ and (hard set) reverb/echo of ``master``: float64 ``[2, samples]``."""
    from .demaster import echo, reverb_insert

    x = expand(master, sample_rate, **degradation["expander"])
    x = rbj_eq(x, sample_rate, degradation["eq"])
    rv, ec = degradation.get("reverb"), degradation.get("echo")
    if rv:
        x = reverb_insert(x.astype(np.float32), sample_rate, decay_s=rv["decay_s"], return_db=rv["return_db"],
                          seed=int(rv["ir_seed"])).astype(np.float64)
    if ec:
        x = echo(x, sample_rate, delay_ms=ec["delay_ms"], gain_db=ec["gain_db"])
    return x


def target_master(master: np.ndarray, degradation: Mapping[str, Any]) -> np.ndarray:
    """The pair's target: ``master`` turned down by ``master_gain_db`` (<= 0 dB), float32 ``[2, samples]``.

    A clip whose (lossy) decode has a true peak above :data:`MASTER_TRUE_PEAK_MAX_DBTP` is turned down
    to it (a gain only: the loudness-normalised MR-STFT, the tonal balance, PLR and crest do not
    change), so that a limiter whose ceiling cannot exceed 0 dBTP can leave it untouched and the
    label stays exact. The others pass unchanged (gain 0 dB).
    """
    gain_db = float(degradation.get("master_gain_db", 0.0))
    x = np.asarray(master, np.float32)
    return x if gain_db == 0.0 else (x * np.float32(db_to_gain(gain_db))).astype(np.float32)


def degrade(master: np.ndarray, sample_rate: int, degradation: Mapping[str, Any]) -> np.ndarray:
    """The pre-master of ``master`` float ``[2, samples]`` under ``degradation`` (from :func:`draw_degradation`).

    ``master_gain_db`` (:func:`target_master`) -> expansion -> EQ -> (hard set: reverb, echo) ->
    ``level_db``. Returns float32 ``[2, samples]``; the label inverts it back to ``target_master``.
    """
    x = _stages_before_level(target_master(master, degradation), sample_rate, degradation)
    return (x * db_to_gain(degradation["level_db"])).astype(np.float32)


def premaster_pair(rng: np.random.Generator, master: np.ndarray, sample_rate: int, *,
                   hard: bool = False) -> tuple[dict, np.ndarray]:
    """Draw a degradation of ``master`` and render it: ``(degradation, pre-master float32 [2, samples])``.

    What :func:`draw_degradation` does, returning the rendered pre-master as well (one render).

    Raises:
        ParamRangeError: no expansion depth gives a pre-master within the loudness and peak bounds
            (after :data:`MAX_DEPTH_DRAWS` halvings), or the clip's loudness is not a valid
            ``loudness.target_lufs`` (-30..-6 LUFS) -- the job redraws the clip then.
    """
    master = np.asarray(master, dtype=np.float32)
    if master.ndim != 2 or master.shape[0] != 2:
        raise AudioInputError(f"master must be stereo [2, samples], got shape {master.shape}")
    over = float(true_peak_dbtp(master)) - MASTER_TRUE_PEAK_MAX_DBTP
    master_gain_db = -math.ceil(over * 1e4) / 1e4 if over > 0 else 0.0
    master = target_master(master, {"master_gain_db": master_gain_db})
    orig = _levels(master, sample_rate)
    target = MASTER_BUS.param("loudness.target_lufs")
    if not target.min <= orig["lufs"] <= target.max:
        raise ParamRangeError(f"the master clip's loudness {orig['lufs']:.2f} LUFS is outside loudness.target_lufs's "
                              f"{target.range_text()}: it cannot be a label; draw another clip")
    names = list(EXPANDER_VARIANTS)
    variant = names[int(rng.choice(len(names), p=[float(EXPANDER_VARIANTS[v]["p"]) for v in names]))]
    vr = EXPANDER_VARIANTS[variant]
    expander = {"ratio": round(_log_uniform(rng, *vr["ratio"]), 4),
                "attack_ms": round(_log_uniform(rng, *vr["attack_ms"]), 4),
                "release_ms": round(_log_uniform(rng, *vr["release_ms"]), 4),
                "knee_db": round(float(rng.uniform(*vr["knee_db"])), 4)}
    depth = float(rng.uniform(*vr["depth_db"]))
    eq = draw_eq(rng, sample_rate)
    pre_target = float(rng.uniform(*PRE_LUFS_RANGE))
    rv = ec = None
    if hard:
        fire = rng.random(2) < np.array([HARD_P["reverb"], HARD_P["echo"]])
        if not fire.any():
            fire[int(rng.integers(0, 2))] = True
        rparams = DEMASTER.processor("demaster_reverb")
        eparams = DEMASTER.processor("demaster_echo")
        ir_seed = int(rng.integers(0, 2**62))
        if fire[0]:
            rv = {"decay_s": round(rparams.param("decay_s").from_normalised(rng.random()), 4),
                  "return_db": round(rparams.param("return_db").from_normalised(rng.random()), 4), "ir_seed": ir_seed}
        if fire[1]:
            ec = {"delay_ms": round(eparams.param("delay_ms").from_normalised(rng.random()), 4),
                  "gain_db": round(eparams.param("gain_db").from_normalised(rng.random()), 4)}
    comp_t = MASTER_BUS.param("compressor.threshold_db")
    why = ""
    for _ in range(MAX_DEPTH_DRAWS):
        deg: dict[str, Any] = {
            "variant": variant, "hard": bool(hard), "master_gain_db": master_gain_db,
            "expander": {"threshold_db": round(orig["peak_dbfs"] - depth, 4), **expander},
            "eq": eq, "reverb": rv, "echo": ec}
        body = _stages_before_level(master, sample_rate, deg)
        lufs = integrated_lufs(body, sample_rate)
        tp = true_peak_dbtp(body)
        pk = 20.0 * math.log10(max(float(np.max(np.abs(body))), 1e-12))
        # the level: aim at the drawn loudness, then lower it until both peaks are under the bound
        level = min(pre_target - lufs, PRE_PEAK_MAX_DB - BOUND_MARGIN_DB - max(tp, pk))
        level = round(level, 4)
        pre = (body * db_to_gain(level)).astype(np.float32)
        got = _levels(pre, sample_rate)
        label_t = deg["expander"]["threshold_db"] + level
        ok_lufs = PRE_LUFS_RANGE[0] + BOUND_MARGIN_DB / 2 <= got["lufs"] <= PRE_LUFS_RANGE[1]
        ok_peak = max(got["true_peak_dbtp"], got["peak_dbfs"]) <= PRE_PEAK_MAX_DB
        ok_t = comp_t.min <= label_t <= comp_t.max
        if ok_lufs and ok_peak and ok_t:
            deg.update({"level_db": level, "depth_db": round(depth, 4), "pre_target_lufs": round(pre_target, 4),
                        "master": orig, "pre": got})
            return deg, pre
        why = (f"pre-master at {got['lufs']:.2f} LUFS, peaks {got['true_peak_dbtp']:.2f} dBTP / "
               f"{got['peak_dbfs']:.2f} dBFS, label threshold {label_t:.1f} dB with {depth:.2f} dB expansion depth")
        depth /= 2.0
    raise ParamRangeError(f"no pre-master within {PRE_LUFS_RANGE[0]:g}..{PRE_LUFS_RANGE[1]:g} LUFS and peaks <= "
                          f"{PRE_PEAK_MAX_DB:g} dBFS after {MAX_DEPTH_DRAWS} expansion depths (last: {why}); "
                          "draw another clip")


def draw_degradation(rng: np.random.Generator, master: np.ndarray, sample_rate: int, *,
                     hard: bool = False) -> dict:
    """Draw the degradation of ``master`` float ``[2, samples]`` (stereo) at ``sample_rate`` Hz: a JSON-able dict.

    Keys: ``variant`` (``expander``/``delimiter``), ``hard``, ``master_gain_db`` (:func:`target_master`);
    ``expander`` {threshold_db (dBFS),
    ratio, attack_ms, release_ms, knee_db}; ``eq`` (the schema's 13 EQ values, the pre-master's
    EQ); ``reverb`` {decay_s, return_db, ir_seed} / ``echo`` {delay_ms, gain_db} (hard set, else
    None); ``level_db``; ``depth_db`` (threshold under the clip's peak), ``pre_target_lufs`` (the
    drawn loudness); ``master`` and ``pre`` {lufs, true_peak_dbtp, peak_dbfs} measured on the clip
    (the target) and on the rendered pre-master. It renders the pre-master to choose ``level_db``
    (:func:`premaster_pair` returns both).

    Raises:
        ParamRangeError: see :func:`premaster_pair`.
    """
    return premaster_pair(rng, master, sample_rate, hard=hard)[0]


def inverse_plan(degradation: Mapping[str, Any], *, target_lufs: float | None = None,
                 ceiling_dbtp: float | None = None) -> dict[str, dict[str, float]]:
    """The master bus parameters that undo ``degradation``: ``{"eq", "compressor", "limiter", "loudness"}``.

    ``eq`` = the degradation's bands with negated gains; ``compressor`` = the expander's
    ``ratio``, ``attack_ms``, ``release_ms``, ``knee_db`` with ``threshold_db`` moved by
    ``level_db``, ``makeup_db = 0``; ``limiter`` = ``ceiling_dbtp`` (default: the clip's true peak +
    :data:`CEILING_HEADROOM_DB`, rounded up to 0.01 dB, within -6..0 dBTP) and a 50 ms release;
    ``loudness.target_lufs`` (default: the clip's loudness). With the defaults this is the exact
    inverse; the gain stage's value is ``-level_db`` (the solver finds it). Validated against the
    schema ``MASTER_BUS`` (real units).

    Raises:
        ParamRangeError: a value outside the schema's range (named).
    """
    if target_lufs is None:
        target_lufs = float(degradation["master"]["lufs"])
    if ceiling_dbtp is None:
        lim = MASTER_BUS.param("limiter.ceiling_dbtp")
        tp = float(degradation["master"]["true_peak_dbtp"]) + CEILING_HEADROOM_DB
        ceiling_dbtp = min(max(math.ceil(tp * 100.0) / 100.0, lim.min), lim.max)
    ex = degradation["expander"]
    plan = {
        "eq": negate_eq(degradation["eq"]),
        "compressor": {"threshold_db": round(float(ex["threshold_db"]) + float(degradation["level_db"]), 4),
                       "ratio": float(ex["ratio"]), "attack_ms": float(ex["attack_ms"]),
                       "release_ms": float(ex["release_ms"]), "knee_db": float(ex["knee_db"]), "makeup_db": 0.0},
        "limiter": {"ceiling_dbtp": float(ceiling_dbtp), "release_ms": LABEL_LIMITER_RELEASE_MS},
        "loudness": {"target_lufs": float(target_lufs)},
    }
    for proc in LABEL_PROCESSORS:
        plan[proc] = MASTER_BUS.processor(proc).validate(plan[proc], f"inverse plan {proc}")
    return plan


def label_vector(plan: Mapping[str, Mapping[str, float]], *, normalised: bool = False) -> np.ndarray:
    """A plan as a float64 vector in :data:`LABEL_NAMES` order (real units, or 0..1 in the schema's scale)."""
    out = []
    for name, p in LABEL_PARAMS:
        proc, _, key = name.partition(".")
        v = float(plan[proc][key])
        out.append(p.to_normalised(v) if normalised else v)
    return np.array(out, dtype=np.float64)


def plan_from_vector(vector: Sequence[float] | np.ndarray, *, normalised: bool = False) -> dict[str, dict[str, float]]:
    """The inverse of :func:`label_vector`: a nested plan ``{"eq", "compressor", "limiter", "loudness"}``.

    Raises:
        ParamRangeError: a vector of another length than :data:`LABEL_NAMES`.
    """
    vec = np.asarray(vector, dtype=np.float64).reshape(-1)
    if vec.shape[0] != len(LABEL_PARAMS):
        raise ParamRangeError(f"a label vector has {len(LABEL_PARAMS)} entries ({', '.join(LABEL_NAMES[:3])}...), "
                              f"got {vec.shape[0]}")
    plan: dict[str, dict[str, float]] = {p: {} for p in LABEL_PROCESSORS}
    for (name, p), v in zip(LABEL_PARAMS, vec.tolist()):
        proc, _, key = name.partition(".")
        plan[proc][key] = p.from_normalised(v) if normalised else float(v)
    return plan


# --------------------------------------------------------------------------- round trip
@dataclass(frozen=True)
class RoundTrip:
    """How close ``master(pre, label)`` comes to the original master (torch-free measures; the MR-STFT
    and the benchmark's other columns are in ``scripts/premaster_ceiling.py``): LUFS error (LU),
    octave-band level error (mean |dB| over :func:`mixbridge.spectrum.octave_band_levels_db`'s bands),
    largest sample error (linear), the gain the solver found (dB) and the master's notices."""

    lufs_error_lu: float
    octave_error_db: float
    max_abs_error: float
    gain_db: float
    audio: np.ndarray
    notices: tuple[str, ...] = ()


def round_trip_error(pre: np.ndarray, master_audio: np.ndarray, plan: Mapping[str, Mapping[str, float]],
                     sample_rate: int) -> RoundTrip:
    """Master ``pre`` with ``plan`` through :func:`mixbridge.plugins.mastering.master` and compare with
    ``master_audio`` (both float ``[2, samples]``); ``audio`` is the mastered result."""
    from mixbridge.plugins.mastering import master
    from mixbridge.spectrum import band_level_error_db, octave_band_levels_db

    res = master(np.asarray(pre, np.float32), plan, sample_rate)
    out = res.audio
    ref = np.asarray(master_audio, np.float32)
    octave_error_db = band_level_error_db(octave_band_levels_db(out, sample_rate),
                                          octave_band_levels_db(ref, sample_rate))[0]
    return RoundTrip(float(res.lufs - integrated_lufs(ref, sample_rate)), octave_error_db,
                     float(np.max(np.abs(out - ref))), res.gain_db, out, tuple(res.notices))


# --------------------------------------------------------------------------- config and job
def parse_split_counts(spec: str | Mapping[str, int] | None) -> dict[str, int]:
    """``"train=480,val=60,test=120"`` (or a mapping; None: :data:`DEFAULT_SPLIT_COUNTS`) -> counts per split.

    Splits not named get 0.

    Raises:
        DatagenConfigError: an unknown split name, a malformed entry or a negative count; all zero.
    """
    if spec is None:
        return dict(DEFAULT_SPLIT_COUNTS)
    items: list[tuple[str, Any]]
    if isinstance(spec, str):
        items = []
        for part in (s.strip() for s in spec.split(",") if s.strip()):
            name, eq_, value = part.partition("=")
            if not eq_:
                raise DatagenConfigError(f"--split-counts entry {part!r}: write SPLIT=N, "
                                         "e.g. train=480,val=60,test=120")
            items.append((name.strip(), value.strip()))
    else:
        items = list(spec.items())
    counts = {s: 0 for s in SPLITS}
    for name, value in items:
        if name not in SPLITS:
            raise DatagenConfigError(f"--split-counts: unknown split {name!r}; the splits are {', '.join(SPLITS)}")
        try:
            n = int(value)
        except (TypeError, ValueError):
            raise DatagenConfigError(f"--split-counts {name}={value!r}: give a whole number of examples") from None
        if n < 0:
            raise DatagenConfigError(f"--split-counts {name}={n}: a count must be >= 0")
        counts[name] = n
    if sum(counts.values()) == 0:
        raise DatagenConfigError("--split-counts: every split has 0 examples; ask for at least one")
    return counts


def split_of_index(index: int, split_counts: Mapping[str, int]) -> str:
    """The split of example ``index``: indices run through ``train``, then ``val``, then ``test``."""
    start = 0
    for s in SPLITS:
        start += int(split_counts.get(s, 0))
        if index < start:
            return s
    raise DatagenConfigError(f"example index {index} is beyond the {start} examples of the split counts")


def _source_entries(source: str | Path | None, clip_s: float) -> tuple[Path, list[dict], list[dict]]:
    """``(root, entries, skipped)``: the masters (catalogue or folder) fingerprinted relative to their common root.

    Each entry is :meth:`SourceSet.fingerprint`'s (path, frames, rate, channels, sha256, provenance)
    plus ``album`` and ``split``; files shorter than ``clip_s`` are listed in ``skipped``.
    """
    import os

    from .sources import SourceSet

    files = master_files(source)
    base = Path(source) if source is not None else Path(os.path.commonpath([str(f.path.parent) for f in files]))
    entries, skipped = [], []
    for f in files:
        one = SourceSet(f.path)  # the header read (unreadable files refused, named) and sha256 of sources.py
        if one.files[0].duration_s < clip_s:
            skipped.append({"path": f.path.relative_to(base).as_posix(), "reason": f"shorter than {clip_s:g} s"})
            continue
        d = one.fingerprint()[0]
        d["path"] = f.path.relative_to(base).as_posix()
        d["album"], d["split"] = f.album, f.split
        entries.append(d)
    if not entries:
        raise AudioInputError(f"{base}: no master is at least {clip_s:g} s long; give longer masters or a "
                              "shorter --clip-s")
    return base, entries, skipped


def premaster_config(source: str | Path | None = None, *, split_counts: str | Mapping[str, int] | None = None,
                     hard: bool = False, clip_s: float = DEFAULT_CLIP_S, sample_rate: int = 44100, seed: int = 0,
                     shard_size: int | None = None) -> dict:
    """Config of a pre-master dataset; scans and fingerprints the masters (sha256 of every file).

    Args:
        source: a folder of the user's masters (albums by folder, split by album name:
            :func:`~.masters.split_of_album`); None: the shipped catalogue.
        split_counts: examples per split (:func:`parse_split_counts`); ``n`` is their sum.
        hard: add reverb/echo (the hard set).

    Raises:
        AudioInputError: no masters (the Debian packages are not installed, or an empty folder).
        DatagenConfigError: a bad split count, clip length or run number; a split asked for
            examples but holds no master (its albums named).
    """
    if not 1.0 <= clip_s <= 60.0:
        raise DatagenConfigError(f"--clip-s {clip_s:g} is outside [1, 60] s")
    counts = parse_split_counts(split_counts)
    n = sum(counts.values())
    shard_size = check_run_numbers(n=n, seed=seed, sample_rate=sample_rate, shard_size=shard_size,
                                   default_shard_size=DEFAULT_SHARD_SIZE, max_shard_size=MAX_SHARD_SIZE)
    root, entries, skipped = _source_entries(source, clip_s)
    for s in SPLITS:
        if counts[s] and not any(e["split"] == s for e in entries):
            names = sorted({f"{e['album']} ({e['split']})" for e in entries})
            raise DatagenConfigError(
                f"--split-counts asks for {counts[s]} {s} examples but no master of {root} is in split {s} "
                f"(albums: {', '.join(names)}); give {s}=0, or add albums (a folder each) that hash into {s}")
    albums: dict[str, dict] = {}
    for i, e in enumerate(entries):
        a = albums.setdefault(e["album"], {"split": e["split"], "files": []})
        a["files"].append(i)
    return {
        "kind": DATASET_KIND, "mixbridge_version": __version__, "n": int(n), "seed": int(seed),
        "sample_rate": int(sample_rate), "clip_samples": int(round(clip_s * sample_rate)), "channels": 2,
        "backend": "builtin", "backend_options": {}, "processors": list(LABEL_PROCESSORS),
        "param_names": list(LABEL_NAMES), "param_units": [p.unit for _, p in LABEL_PARAMS],
        "split_counts": counts, "split_order": list(SPLITS), "hard": bool(hard),
        "catalogue": source is None, "albums": albums, "skipped_sources": skipped,
        "pre_lufs_range": list(PRE_LUFS_RANGE), "pre_peak_max_db": PRE_PEAK_MAX_DB, "eq_max_db": EQ_MAX_DB,
        "expander_variants": EXPANDER_VARIANTS, "hard_p": HARD_P if hard else {},
        "audio_dtype": AUDIO_DTYPE,
        "shard_size": int(shard_size), "source_root": str(root.resolve()), "sources": entries,
    }


class PremasterJob(Job):
    """Pre-master pairs: a master clip of the index's split, its invertible degradation, and the inverse.

    Plans draw the clip (only from the split's files; clips whose loudness is no valid target,
    or that no expansion depth fits into the bounds, are redrawn, at most
    :data:`MAX_CLIP_DRAWS` times); rendering stores the shard arrays of the module docstring.
    """

    kind = DATASET_KIND
    finite_keys = ("pre", "master", "label", "label_norm")

    def __init__(self, config, faults=None):
        super().__init__(config, faults)
        self.n_samples = int(config["clip_samples"])
        self.counts = dict(config["split_counts"])
        self.hard = bool(config.get("hard", False))

    def setup(self) -> None:
        """Reopen the masters, one source set per split (no rescan or hashing)."""
        from .sources import SourceSet

        self.open_sources()
        entries = self.config["sources"]
        self.by_split: dict[str, tuple[SourceSet, list[int]]] = {}
        for s in SPLITS:
            idx = [i for i, e in enumerate(entries) if e["split"] == s]
            if idx:
                self.by_split[s] = (SourceSet.from_fingerprint(self.config["source_root"], [entries[i] for i in idx]),
                                    idx)

    def plan(self, index: int) -> Spec:
        """Draw the clip of ``index``'s split and its degradation (renders the pre-master: it sets the level)."""
        split = split_of_index(index, self.counts)
        if split not in self.by_split:
            raise DatagenConfigError(f"example {index} is in split {split}, which holds no master")
        sources, global_idx = self.by_split[split]
        r_clip, r_deg = example_rngs(self.seed, index, 2)
        last = ""
        for _ in range(MAX_CLIP_DRAWS):
            clip, where = sources.draw(r_clip, self.n_samples, self.sample_rate, 2)
            try:
                deg, pre = premaster_pair(r_deg, clip, self.sample_rate, hard=self.hard)
            except ParamRangeError as e:
                last = str(e)
                continue
            fi = global_idx[int(where["file_index"])]
            src = {"file": where["file"], "file_index": fi, "start_s": where["start_s"],
                   "album": self.config["sources"][fi]["album"], "split": split}
            return Spec(index, {"split": split, "source": src, "degradation": deg},
                        {"master": clip, "pre": pre, "degradation": deg, "source": src})
        raise ParamRangeError(f"example {index} ({split}): no usable clip in {MAX_CLIP_DRAWS} draws; last: {last}")

    def render(self, spec: Spec) -> Example:
        """Store the pair (float32), the label vectors and the measurements."""
        d = spec.data
        deg, src = d["degradation"], d["source"]
        plan = inverse_plan(deg)
        return Example(spec.index, {
            "pre": np.asarray(d["pre"], np.float32), "master": target_master(d["master"], deg),
            "master_gain_db": np.float64(deg["master_gain_db"]),
            "label": label_vector(plan), "label_norm": label_vector(plan, normalised=True).astype(np.float32),
            "label_gain_db": np.float64(-deg["level_db"]),
            "degradation_json": np.str_(json.dumps(deg, sort_keys=True)),
            "split_id": np.uint8(SPLITS.index(src["split"])), "source_file": np.int32(src["file_index"]),
            "source_start_s": np.float64(src["start_s"]),
            "pre_lufs": np.float64(deg["pre"]["lufs"]), "pre_true_peak_dbtp": np.float64(deg["pre"]["true_peak_dbtp"]),
            "master_lufs": np.float64(deg["master"]["lufs"]),
            "master_true_peak_dbtp": np.float64(deg["master"]["true_peak_dbtp"]),
            "hard": np.uint8(deg["hard"]), "reverb": np.uint8(deg["reverb"] is not None),
            "echo": np.uint8(deg["echo"] is not None),
            "index": np.int64(spec.index), "seed": np.int64(self.seed),
        })


register_job(DATASET_KIND, PremasterJob)


# --------------------------------------------------------------------------- reading
@dataclass
class PremasterDataset:
    """A pre-master dataset's examples (optionally one split), in index order, without torch.

    Arrays over the ``N`` stored examples: ``labels`` float64 ``[N, 22]`` (real units,
    :attr:`label_names`), ``labels_norm`` float32 ``[N, 22]``, ``gain_db`` float64 ``[N]`` (the
    gain stage's value), ``indices`` int64, ``splits`` / ``albums`` / ``source_files`` (str, per
    example), ``hard`` bool, ``pre_lufs``, ``master_lufs`` float64; ``degradations`` (dicts). Audio
    is read on demand from the memory-mapped shards: :meth:`pair`, :meth:`audio`, :meth:`batches`.
    """

    root: Path
    config: dict
    label_names: tuple[str, ...]
    sample_rate: int
    labels: np.ndarray
    labels_norm: np.ndarray
    gain_db: np.ndarray
    indices: np.ndarray
    splits: list[str]
    albums: list[str]
    source_files: list[str]
    hard: np.ndarray
    pre_lufs: np.ndarray
    master_lufs: np.ndarray
    degradations: list[dict]
    _rows: list[tuple[str, int]]

    def __len__(self) -> int:
        """The number of examples."""
        return len(self._rows)

    def _maps(self, shard: str) -> dict[str, np.ndarray]:
        from .format import inside
        from .shards import shard_memmaps

        cache = self.__dict__.setdefault("_cache", {})
        if shard not in cache:
            cache.clear()  # one shard at a time: examples are read in index order
            cache[shard] = shard_memmaps(inside(self.root, shard, "shard"))
        return cache[shard]

    def pair(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(pre, master)`` of example ``i`` (0-based position here), float32 ``[2, samples]`` each.

        ``master`` is the target (:func:`target_master` of the decoded clip): ``master(pre, plan(i))``
        renders it back. (:func:`degrade` takes the decoded clip, so ``degrade(master, ...)`` equals
        ``pre`` only where ``master_gain_db`` is 0.)
        """
        shard, row = self._rows[i]
        a = self._maps(shard)
        return np.array(a["pre"][row], np.float32), np.array(a["master"][row], np.float32)

    def audio(self) -> tuple[np.ndarray, np.ndarray]:
        """Every ``(pre, master)`` as float32 ``[N, 2, samples]`` (2.8 MB each per example at 8 s, 44.1 kHz)."""
        n, s = len(self), int(self.config["clip_samples"])
        pre = np.empty((n, 2, s), np.float32)
        mas = np.empty((n, 2, s), np.float32)
        for i in range(n):
            pre[i], mas[i] = self.pair(i)
        return pre, mas

    def batches(self, batch_size: int) -> Iterator[dict[str, np.ndarray]]:
        """Consecutive batches: ``pre``, ``master`` float32 ``[B, 2, samples]``, ``label``, ``label_norm``,
        ``gain_db``, ``index``."""
        for start in range(0, len(self), batch_size):
            stop = min(start + batch_size, len(self))
            pairs = [self.pair(i) for i in range(start, stop)]
            yield {"pre": np.stack([p for p, _ in pairs]), "master": np.stack([m for _, m in pairs]),
                   "label": self.labels[start:stop], "label_norm": self.labels_norm[start:stop],
                   "gain_db": self.gain_db[start:stop], "index": self.indices[start:stop]}

    def plan(self, i: int) -> dict[str, dict[str, float]]:
        """Example ``i``'s label as a nested master bus plan (:func:`plan_from_vector`)."""
        return plan_from_vector(self.labels[i])


def read_premaster_dataset(root: str | Path, split: str | None = None, *, verify: bool = False) -> PremasterDataset:
    """Open the pre-master dataset in ``root`` (``mixbridge datagen premaster``), optionally one ``split``.

    Args:
        split: ``train``, ``val`` or ``test`` (by album); None: every example.
        verify: first run :func:`~.verify.verify` (every shard's checksum and arrays, completeness).

    Raises:
        DatasetFormatError: not a dataset, or a dataset of another kind.
        DatagenConfigError: an unknown split name.
        DatasetIntegrityError: ``verify`` found a problem (listed), or a shard outside the folder.
    """
    from .errors import DatasetFormatError, DatasetIntegrityError
    from .format import Dataset

    if split is not None and split not in SPLITS:
        raise DatagenConfigError(f"split {split!r} is unknown; use one of {', '.join(SPLITS)}")
    ds = Dataset.open(root)
    if ds.config.get("kind") != DATASET_KIND:
        raise DatasetFormatError(f"{root}: a {ds.config.get('kind')!r} dataset, not a pre-master one; build one with "
                                 f"`mixbridge datagen premaster -o {root}`")
    if verify:
        from .verify import verify as verify_dataset

        report = verify_dataset(root)
        if not report.ok:
            raise DatasetIntegrityError(f"{root}: {'; '.join(report.problems[:5])}; rerun the same "
                                        "`mixbridge datagen premaster` command to repair it")
    cols: dict[str, list] = {k: [] for k in ("label", "label_norm", "label_gain_db", "index", "split_id", "source_file",
                                              "hard", "pre_lufs", "master_lufs", "degradation_json")}
    rows: list[tuple[str, int]] = []
    want = None if split is None else SPLITS.index(split)
    for rec in ds.example_records():
        if not rec.indices:
            continue
        maps = _small_arrays(ds, rec.shard, cols)
        for row in range(len(rec.indices)):
            if want is not None and int(maps["split_id"][row]) != want:
                continue
            rows.append((rec.shard, row))
            for k in cols:
                cols[k].append(maps[k][row])
    sources = ds.config["sources"]
    files = [int(f) for f in cols["source_file"]]
    return PremasterDataset(
        root=ds.root, config=ds.config, label_names=tuple(ds.config["param_names"]),
        sample_rate=int(ds.config["sample_rate"]),
        labels=np.array(cols["label"], np.float64).reshape(-1, len(LABEL_NAMES)),
        labels_norm=np.array(cols["label_norm"], np.float32).reshape(-1, len(LABEL_NAMES)),
        gain_db=np.array(cols["label_gain_db"], np.float64), indices=np.array(cols["index"], np.int64),
        splits=[SPLITS[int(s)] for s in cols["split_id"]], albums=[sources[f]["album"] for f in files],
        source_files=[sources[f]["path"] for f in files], hard=np.array(cols["hard"], bool),
        pre_lufs=np.array(cols["pre_lufs"], np.float64), master_lufs=np.array(cols["master_lufs"], np.float64),
        degradations=[json.loads(str(s)) for s in cols["degradation_json"]], _rows=rows)


def _small_arrays(ds: Any, shard: str, cols: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The per-example label and metadata arrays of one shard (the audio stays on disk)."""
    from .shards import shard_memmaps

    maps = shard_memmaps(ds.path(shard))
    return {k: np.array(maps[k]) for k in cols}


__all__ = ["LABEL_NAMES", "LABEL_PARAMS", "PremasterDataset", "PremasterJob", "RoundTrip", "degrade", "target_master",
           "draw_degradation", "expand", "inverse_plan", "label_vector", "negate_eq", "plan_from_vector",
           "premaster_config", "premaster_pair", "rbj_eq", "read_premaster_dataset", "round_trip_error"]
