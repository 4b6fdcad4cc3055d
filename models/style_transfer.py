"""Mixing style transfer at inference time: refine a session so its master's audio features match a reference.

:func:`match_reference` starts from a mixer's session and optimises, through the differentiable
console (:class:`mixbridge.models.console.TorchConsole`), the track gains (the fader, the trim
held), pans, the five EQ band gains of every track, and on the master bus its five EQ band
gains and the bus compressor's threshold and ratio, so that the Diff-MST audio features
(:class:`mixbridge.models.losses.AudioFeatureLoss`: RMS, crest factor, stereo width, stereo
imbalance, Bark spectrum; Steinmetz et al., "Diff-MST", ISMIR 2024) of the master match the
reference's. This is Diff-MST's loss used as an inference-time optimisation (its
"optimisation" baseline), not a trained predictor.

:func:`predict_from_reference` is the trained predictor: ``dmc-full``
(:class:`mixbridge.models.dmc_full.DMCFull`, Diff-MST's method 1) reads the stems and the reference
and sets every track's strip and the master bus in one forward pass; ``automix --reference`` uses its
session as the start of the optional refinement.

Levels: the console's master, up to its limiter (EQ, bus compressor, the open-loop gain to the
session's ``loudness.target_lufs``, BS.1770-4 in torch; the limiter is left out as Diff-MST's console
has none, so that an unlimited reference's crest factor can be matched), is compared with the
reference gain-matched to the same integrated loudness: only the balance, spectrum, dynamics and
image are matched.

Windows: both signals are cut to their loudest ``max_fit_s`` window (the features are global
statistics; the windows need not align). A mono reference has no stereo image: stereo width,
stereo imbalance and the side Bark spectrum are undefined, skipped (a notice), and the pans are
held. Imports torch.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from mixbridge.audio import StemSet, resample
from mixbridge.errors import AudioInputError, MixbridgeError
from mixbridge.loudness import SILENT_LUFS, db_to_gain, integrated_lufs
from mixbridge.schema import CHANNEL_STRIP, MASTER_BUS
from mixbridge.session import Session

from .console import MASTER_PARAMS, STRIP_PARAMS, TorchConsole, denormalise, normalise
from .losses import AudioFeatureLoss, bark_spectrum
from .reverse import EQ_BAND_GAINS, _logit, _stack_stems, loudest_window, split_gain_tensor

#: Default refinement steps (``automix --refine-steps``).
DEFAULT_REFINE_STEPS = 25
#: Adam step size in the unconstrained space (logits; gains in units of GAIN_UNIT_DB).
LR = 0.05
#: The gain column is ``gain_db / GAIN_UNIT_DB``: an Adam step moves a gain by up to 0.3 dB (the balance
#: must be able to move by 10 dB and more within 100 steps; EQ bands move by up to 0.3 dB per step).
GAIN_UNIT_DB = 6.0
#: Longest window compared, s.
DEFAULT_MAX_FIT_S = 6.0
#: The master-bus parameters refined (plus the five EQ band gains).
MASTER_FIT = EQ_BAND_GAINS + ("compressor.threshold_db", "compressor.ratio")
#: How far inside (0, 1) the master compressor's normalised threshold and ratio start (ratio 1.16, -3 dB).
MASTER_COMP_MARGIN = 0.05
#: The features that need a stereo reference.
STEREO_FEATURES = ("stereo_width", "stereo_imbalance")

_MASTER_PARAM = dict(MASTER_PARAMS)
_TRIM = CHANNEL_STRIP.param("trim.gain_db")


class StyleTransferError(ValueError, MixbridgeError):
    """Inputs :func:`match_reference` cannot use (the message names the value, the limit and the fix)."""


class FeatureDistance(torch.nn.Module):
    """The Diff-MST feature distance of ``[1, 2, n]`` audio to a fixed reference, mono-aware.

    Stereo reference: :class:`AudioFeatureLoss` with all features. Mono reference (given as its one
    channel on both sides): RMS and crest factor through :class:`AudioFeatureLoss` plus the MSE of the
    mid Bark spectrum; stereo width, imbalance and the side spectrum are left out.
    """

    def __init__(self, sample_rate: int, reference: torch.Tensor, stereo: bool) -> None:
        super().__init__()
        self.stereo = stereo
        self.sample_rate = sample_rate
        weights = None if stereo else {"rms": 1.0, "crest_factor_db": 1.0}
        self.loss = AudioFeatureLoss(sample_rate, weights)
        self.reference = reference
        if not stereo:
            self.ref_mid = bark_spectrum(reference, sample_rate)[..., 0]

    def terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The weighted terms, ``{feature: scalar}``."""
        out = self.loss.terms(x, self.reference)
        if not self.stereo:
            out["bark_spectrum_mid"] = torch.nn.functional.mse_loss(bark_spectrum(x, self.sample_rate)[..., 0],
                                                                    self.ref_mid)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The sum of :meth:`terms`."""
        return sum(self.terms(x).values(), torch.zeros((), dtype=x.dtype))


def match_reference(stems, reference: np.ndarray, sample_rate: int, init_session: Session,
                    steps: int = DEFAULT_REFINE_STEPS, *, reference_rate: int | None = None,
                    progress: bool = True, max_fit_s: float = DEFAULT_MAX_FIT_S, seed: int = 0) -> Session:
    """Refine ``init_session`` so that its master's audio features match ``reference``'s.

    Args:
        stems: a :class:`~mixbridge.audio.StemSet` or float ``[tracks, C, samples]`` (the session's tracks,
            in its order).
        reference: the reference mix, float ``[C, samples]`` (C = 1 or 2).
        sample_rate: Hz of the stems (and of the reference unless ``reference_rate``).
        init_session: the start (a mixer's session of these stems); it is not modified.
        steps: Adam steps (0: only measure the distance).
        reference_rate: the reference's rate when it differs (resampled, with a notice).
        progress: a tqdm bar. max_fit_s: longest window compared, s. seed: ``torch.manual_seed``.

    Returns:
        A new session: the refined parameters, and ``provenance["style_transfer"]`` with the feature
        distance before and after (and per feature), the steps, the window and the notices.

    Raises:
        StyleTransferError: a reference that is silent, too short (under 0.5 s) or of more than 2 channels;
            a session whose tracks do not match the stems; ``steps < 0``.
    """
    if steps < 0:
        raise StyleTransferError(f"steps = {steps}; give 0 or more refinement steps")
    torch.manual_seed(seed)
    notices: list[str] = []
    arrs = [s.audio for s in stems.stems] if isinstance(stems, StemSet) else list(stems)
    if len(arrs) != len(init_session.tracks):
        raise StyleTransferError(f"{len(arrs)} stems for a session of {len(init_session.tracks)} tracks; "
                                 "pass the session of these stems")
    x, mono = _stack_stems(arrs)
    ref = np.asarray(reference, dtype=np.float32)
    if ref.ndim == 1:
        ref = ref[None]
    if ref.ndim != 2 or ref.shape[0] not in (1, 2):
        raise StyleTransferError(f"reference must be [1|2, samples], got {ref.shape}; give a mono or stereo file")
    if reference_rate is not None and reference_rate != sample_rate:
        notices.append(f"reference resampled from {reference_rate} Hz to {sample_rate} Hz")
        ref = resample(ref, reference_rate, sample_rate)
    if not np.isfinite(ref).all():
        raise AudioInputError("the reference holds NaN or inf samples; give a valid audio file")
    stereo = ref.shape[0] == 2
    if not stereo:
        notices.append("mono reference: stereo width, stereo imbalance and the side Bark spectrum are undefined "
                       "and skipped; pans are held")
        ref = np.repeat(ref, 2, axis=0)
    if ref.shape[1] < sample_rate // 2:
        raise StyleTransferError(f"reference of {ref.shape[1]} samples; give at least 0.5 s "
                                 f"({sample_rate // 2} samples at {sample_rate} Hz)")
    master_p = init_session.master.params
    target_lufs = float(master_p["loudness"]["target_lufs"])
    # windows of one length
    length = min(x.shape[-1], ref.shape[1], max(int(max_fit_s * sample_rate), sample_rate // 2))
    mix_guess = x.sum(0).numpy()
    s0 = loudest_window(mix_guess, sample_rate, length)
    r0 = loudest_window(ref, sample_rate, length)
    refw = ref[:, r0:r0 + length].astype(np.float64)
    ref_lufs = integrated_lufs(refw, sample_rate)
    if not np.isfinite(ref_lufs) or ref_lufs <= SILENT_LUFS:
        raise StyleTransferError("the reference is silent (below -70 LUFS); give a mix to match")
    refw = refw * 10 ** ((target_lufs - ref_lufs) / 20)
    ref_t = torch.from_numpy(refw)[None]
    xw = x[..., s0:s0 + length].double()
    distance = FeatureDistance(sample_rate, ref_t, stereo)

    # parameters: per track [gain, pan?, 5 EQ gains] and master [5 EQ gains, threshold, ratio]
    strip_paths = (["pan.pan"] if stereo else []) + list(EQ_BAND_GAINS)
    strip_sub = [(p, CHANNEL_STRIP.param(p)) for p in strip_paths]
    master_sub = [(p, _MASTER_PARAM[p]) for p in MASTER_FIT]
    base = {path: torch.tensor([float(t.params[path.split(".")[0]][path.split(".")[1]])
                                for t in init_session.tracks], dtype=torch.float64) for path, _ in STRIP_PARAMS}
    mbase = {f"{proc}.{k}": float(v) for proc, d in master_p.items() for k, v in d.items()}
    gain0 = base["fader.fader_db"]
    u_strip = normalise(strip_sub, {p: base[p] for p in strip_paths}).numpy()
    u_master = normalise(master_sub, {p: torch.tensor(mbase[p], dtype=torch.float64) for p in MASTER_FIT}).numpy()
    P = torch.tensor(np.concatenate([(gain0.numpy() / GAIN_UNIT_DB)[:, None], _logit(u_strip)], 1),
                     requires_grad=True)
    # the master compressor starts a little inside its range (ratio 1 and threshold 0 dB are the ends of
    # their ranges, where the sigmoid's slope vanishes); with steps = 0 nothing is changed
    u_master[len(EQ_BAND_GAINS):] = np.clip(u_master[len(EQ_BAND_GAINS):], MASTER_COMP_MARGIN, 1 - MASTER_COMP_MARGIN)
    M = torch.tensor(_logit(u_master), requires_grad=True)
    console = TorchConsole(sample_rate)
    master_fixed = {k: v for k, v in mbase.items() if k in dict(MASTER_PARAMS) and k not in MASTER_FIT}

    def render(P: torch.Tensor, M: torch.Tensor) -> tuple[torch.Tensor, dict, dict]:
        vals = dict(base)
        fader, trim = split_gain_tensor(P[:, 0] * GAIN_UNIT_DB, base["trim.gain_db"])
        vals["fader.fader_db"], vals["trim.gain_db"] = fader, trim
        vals.update(denormalise(strip_sub, torch.sigmoid(P[:, 1:]), check=False))
        mvals: dict[str, float | torch.Tensor] = dict(master_fixed)
        mvals.update(denormalise(master_sub, torch.sigmoid(M), check=False))
        mvals.pop("gain.gain_db", None)
        mix = console(xw, vals, mvals, mono=mono).mix
        return _pre_limiter_master(mix, sample_rate, mvals), vals, mvals

    with torch.no_grad():
        before_terms = {k: float(v) for k, v in distance.terms(render(P, M)[0]).items()}
    if steps > 0:
        from tqdm import tqdm

        opt = torch.optim.Adam([P, M], lr=LR)
        bar = tqdm(range(steps), desc="reference match", unit="step", disable=not progress, leave=False)
        for _ in bar:
            opt.zero_grad()
            d = distance(render(P, M)[0])
            d.backward()
            opt.step()
            bar.set_postfix_str(f"feature distance {d.item():.4f}")
        bar.close()
    with torch.no_grad():
        out, vals, mvals = render(P, M)
        after_terms = {k: float(v) for k, v in distance.terms(out).items()}

    session = copy.deepcopy(init_session)
    for i, t in enumerate(session.tracks if steps > 0 else []):
        p = {proc: dict(v) for proc, v in t.params.items()}
        for path in ["fader.fader_db", "trim.gain_db"] + strip_paths:
            proc, name = path.split(".")
            p[proc][name] = round(float(vals[path][i]), 4)
        t.params = CHANNEL_STRIP.validate(p, f"track '{t.name}'")
    mp = {proc: dict(v) for proc, v in session.master.params.items()}
    for path in MASTER_FIT if steps > 0 else ():
        proc, name = path.split(".")
        mp[proc][name] = round(float(mvals[path]), 4)
    session.master.params = MASTER_BUS.validate(mp, "master")
    if steps > 0:
        session.master.solved_gain_db = None  # the master changed: solve its gain again on render
    before, after = sum(before_terms.values()), sum(after_terms.values())
    session.provenance["style_transfer"] = {
        "method": "inference-time optimisation of the Diff-MST audio-feature loss through the torch console",
        "steps": steps, "feature_distance_before": round(before, 6), "feature_distance_after": round(after, 6),
        "features_before": _rounded(before_terms), "features_after": _rounded(after_terms),
        "stereo_features": stereo, "window_s": round(length / sample_rate, 3), "notices": notices,
    }
    return session


def _pre_limiter_master(mix: torch.Tensor, sample_rate: int,
                        mvals: Mapping[str, float | torch.Tensor]) -> torch.Tensor:
    """The master bus of ``mix`` ``[1, 2, n]`` up to the limiter: EQ -> bus compressor -> gain to
    ``loudness.target_lufs`` (open loop, BS.1770-4 in torch), as :meth:`TorchConsole.master` without its
    last stage: Diff-MST's console has no limiter, and a limiter would cap the crest factor at its ceiling
    whatever the reference's (an unlimited pre-master reference could then not be matched)."""
    from . import dsp, dsp_dynamics, dsp_eq

    def group(prefix: str) -> dict:
        return {k.split(".", 1)[1]: v for k, v in mvals.items() if k.startswith(prefix + ".")}

    x = dsp_eq.eq(mix, sample_rate, **group("eq"))
    x = dsp_dynamics.compress(x, sample_rate, **group("compressor"))
    return dsp.trim(x, mvals["loudness.target_lufs"] - dsp.integrated_lufs(x, sample_rate))


def _rounded(d: Mapping[str, float]) -> dict[str, float]:
    return {k: round(v, 6) if math.isfinite(v) else v for k, v in d.items()}


#: The shipped dmc-full checkpoint (``models/mixers/dmc_full.json`` + ``.safetensors``).
DMC_FULL_CHECKPOINT = Path(__file__).resolve().parent / "mixers" / "dmc_full.json"
#: The command that trains dmc-full (quoted when its weights are missing).
TRAIN_HINT = ("mixbridge train dmc-full --data COMPOSER_DATASET --config models/configs/full_dmc.yaml -o RUN_DIR")
#: Longest window of the stems and of the reference dmc-full reads (their loudest), s.
PREDICT_WINDOW_S = 6.0


def load_dmc_full(checkpoint: str | Path | None = None):
    """The dmc-full network of ``checkpoint`` (default :data:`DMC_FULL_CHECKPOINT`), in eval mode
    (:func:`mixbridge.models.checkpoint.load_mixer_network`).

    Raises:
        StyleTransferError: no weights at the default path, or a checkpoint of another architecture.
        CheckpointError: a corrupted checkpoint.
    """
    from .checkpoint import load_mixer_network

    return load_mixer_network(checkpoint, "dmc_full", "dmc-full", TRAIN_HINT, error=StyleTransferError)


def console_session(init_session: Session, trims_db, strip_u: np.ndarray, master_u: np.ndarray) -> Session:
    """A copy of ``init_session`` with dmc-full's parameters: per track the loudness trim ``trims_db`` (dB,
    within the trim's range) and the normalised strip values ``strip_u [tracks, S]``; the master's ``master_u [M]``
    (:data:`mixbridge.models.dmc_full.STRIP_OUTPUT_PARAMS` / ``MASTER_OUTPUT_PARAMS`` order). Polarity, mute,
    the limiter and the loudness target stay ``init_session``'s; its other strip values are replaced."""
    from .dmc_full import MASTER_OUTPUT_PARAMS, STRIP_OUTPUT_PARAMS

    session = copy.deepcopy(init_session)
    for i, t in enumerate(session.tracks):
        p = {proc: dict(v) for proc, v in t.params.items()}
        for j, (path, param) in enumerate(STRIP_OUTPUT_PARAMS):
            proc, name = path.split(".")
            p[proc][name] = round(float(param.from_normalised(float(strip_u[i, j]))), 4)
        p["trim"]["gain_db"] = round(float(trims_db[i]), 4)
        t.params = CHANNEL_STRIP.validate(p, f"track '{t.name}'")
    mp = {proc: dict(v) for proc, v in session.master.params.items()}
    for j, (path, param) in enumerate(MASTER_OUTPUT_PARAMS):
        proc, name = path.split(".")
        mp[proc][name] = round(float(param.from_normalised(float(master_u[j]))), 4)
    session.master.params = MASTER_BUS.validate(mp, "master")
    session.master.solved_gain_db = None
    return session


def predict_from_reference(stems, reference: np.ndarray, sample_rate: int, init_session: Session, *,
                           reference_rate: int | None = None, model=None,
                           checkpoint: str | Path | None = None, window_s: float = PREDICT_WINDOW_S) -> Session:
    """The session ``dmc-full`` predicts for ``stems`` so that their mix matches ``reference`` (no optimisation).

    Each stem is trimmed to :data:`mixbridge.models.dmc_mixer.COMMON_LUFS` (its loudness over the window
    read, :func:`mixbridge.models.dmc_mixer.trim_db`; a silent stem keeps 0 dB; a trim beyond its range is
    limited to it, with a notice) and the reference gain-matched to ``REFERENCE_LUFS``; the network reads
    the loudest ``window_s`` seconds of the stems' sum and of the reference (the windows need not align;
    it was trained on 1.5 s crops, its encoders mean-pool over time). It sets every track's strip but
    polarity and mute (from ``init_session``) and the master's EQ, bus compressor and reverb; the
    limiter and the loudness target stay ``init_session``'s.

    Args:
        stems: a :class:`~mixbridge.audio.StemSet` or float ``[tracks, C, samples]`` in the session's track order.
        reference: float ``[C, samples]`` (C = 1 or 2; a mono one has a silent side).
        sample_rate: Hz of the stems (and of the reference unless ``reference_rate``); both are resampled
            to the network's rate when it differs.
        init_session: the session whose tracks and delivery settings are kept (not modified).
        model / checkpoint: the network, else its checkpoint (default the shipped one).

    Returns:
        A new session with ``provenance["dmc_full"]`` (checkpoint, windows, notices).

    Raises:
        StyleTransferError: tracks that do not match the session, a reference that is not ``[1|2, samples]``,
            silent or shorter than 0.5 s, no shipped weights.
        AudioInputError: stems of several lengths or shapes, or a reference with NaN/inf samples.
    """
    from .dmc_full import REFERENCE_LUFS, reference_features, track_features
    from .dmc_mixer import trim_db

    net = model if model is not None else load_dmc_full(checkpoint)
    rate = int(net.sample_rate)
    notices: list[str] = []
    arrs = [s.audio for s in stems.stems] if isinstance(stems, StemSet) else list(stems)
    if len(arrs) != len(init_session.tracks):
        raise StyleTransferError(f"{len(arrs)} stems for a session of {len(init_session.tracks)} tracks; "
                                 "pass the session of these stems")
    # only the loudest window of the stems is stacked (and resampled): no copy of whole long stems
    lengths = {np.shape(a)[-1] for a in arrs}
    if len(lengths) != 1:
        raise AudioInputError(f"stems must have one length, got {sorted(lengths)}; load them with "
                              "mixbridge.audio.load_stems")
    total = np.zeros(lengths.pop(), np.float32)
    for a in arrs:
        total += np.asarray(a, dtype=np.float32).reshape(-1, total.shape[0]).mean(axis=0)
    src_win = max(int(window_s * sample_rate), int(net.n_fft * sample_rate / rate) + 1)
    a0 = loudest_window(total[None], sample_rate, min(src_win, total.shape[0]))
    x = _stack_stems([np.asarray(a)[..., a0:a0 + src_win] for a in arrs])[0].numpy()
    if sample_rate != rate:
        notices.append(f"stems resampled from {sample_rate} Hz to {rate} Hz for dmc-full")
        x = np.asarray(resample(x, sample_rate, rate), dtype=np.float32)
    ref = np.asarray(reference, dtype=np.float32)
    ref = ref[None] if ref.ndim == 1 else ref
    if ref.ndim != 2 or ref.shape[0] not in (1, 2):
        raise StyleTransferError(f"reference must be [1|2, samples], got {ref.shape}; give a mono or stereo file")
    ref_rate = reference_rate or sample_rate
    if ref_rate != rate:
        notices.append(f"reference resampled from {ref_rate} Hz to {rate} Hz for dmc-full")
        ref = np.asarray(resample(ref, ref_rate, rate), dtype=np.float32)
    if not np.isfinite(ref).all():
        raise AudioInputError("the reference holds NaN or inf samples; give a valid audio file")
    if ref.shape[1] < rate // 2:
        raise StyleTransferError(f"reference of {ref.shape[1]} samples; give at least 0.5 s ({rate // 2} samples)")
    win = max(int(window_s * rate), net.n_fft)
    xw = np.array(x[..., :win])
    r0 = loudest_window(ref, rate, min(win, ref.shape[1]))
    refw = ref[:, r0:r0 + win].astype(np.float64)
    ref_lufs = integrated_lufs(refw, rate)
    if not np.isfinite(ref_lufs) or ref_lufs <= SILENT_LUFS:
        raise StyleTransferError("the reference is silent (below -70 LUFS); give a mix to match")
    refw = (refw * 10 ** ((REFERENCE_LUFS - ref_lufs) / 20)).astype(np.float32)
    trims = []
    for k in range(xw.shape[0]):
        want = trim_db(integrated_lufs(xw[k].astype(np.float64), rate))
        # a stem nearly silent in the window read would need more than the trim's range: it is limited, and
        # said so (boosting it further would only raise its noise; dmc-full was trained on stems at one level)
        trim = min(max(want, _TRIM.min), _TRIM.max)
        if trim != want:
            notices.append(f"stem {k + 1}: a loudness trim of {want:+.1f} dB is outside {_TRIM.range_text()}; "
                           f"limited to {trim:+.1f} dB (the stem is nearly silent in the window read)")
        trims.append(trim)
        xw[k] = xw[k] * np.float32(db_to_gain(trim))
    feats = track_features(xw, rate, n_mels=net.n_mels, n_fft=net.n_fft, hop_length=net.hop_length)
    rfeat = reference_features(refw, rate, n_mels=net.n_mels, n_fft=net.n_fft, hop_length=net.hop_length)
    with torch.no_grad():
        su, mu = net(torch.from_numpy(feats)[None], torch.from_numpy(rfeat)[None])
    su, mu = su[0].double().clamp(0, 1).numpy(), mu[0].double().clamp(0, 1).numpy()
    session = console_session(init_session, trims, su, mu)
    session.provenance["dmc_full"] = {
        "method": "dmc-full: stems + reference -> strips and master bus (Diff-MST method 1)",
        "checkpoint": str(checkpoint or (DMC_FULL_CHECKPOINT if model is None else type(model).__name__)),
        "stems_window_s": round(xw.shape[-1] / rate, 3), "reference_window_s": round(refw.shape[-1] / rate, 3),
        "notices": notices,
    }
    return session


__all__ = ["match_reference", "predict_from_reference", "load_dmc_full", "FeatureDistance", "StyleTransferError",
           "DEFAULT_REFINE_STEPS", "MASTER_FIT", "DMC_FULL_CHECKPOINT"]
