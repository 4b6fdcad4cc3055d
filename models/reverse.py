"""Reverse engineering a mix: fit the console's parameters to a mix of known stems (issue 12, item 3).

:func:`fit_session` finds the channel strips that turn ``stems`` ``[tracks, C, samples]`` into
``mix`` ``[2, samples]`` through the differentiable console
(:class:`mixbridge.models.console.TorchConsole`), in two stages:

1. **Closed form.** Each track's strip output at fader 0 dB and centre pan (its trim, EQ and
   compressor as initialised) is rendered once; ordinary least squares of the mix's left and
   right channels on those outputs gives two coefficients per track, ``c_L = sqrt(2) g cos(th)``
   and ``c_R = sqrt(2) g sin(th)`` under the one pan law (:func:`mixbridge.plugins.console.pan_gains`,
   ``th = (pan + 1) pi / 4``; the same for mono and stereo tracks), hence a gain ``g`` and a pan.
   This is also the fitted overall gain: the fitted track gains are absolute, so the fitted
   session's ``mix.wav`` has the given mix's level.
2. **Gradient descent** (Adam, cosine-decayed step, ``steps`` steps) of the loss
   ``ESR(mix_hat, mix) + stft_weight * SD-MRSTFT(mix_hat, mix)``
   (:func:`mixbridge.models.losses.esr`, :func:`~mixbridge.models.losses.sum_and_difference_mrstft_loss`)
   over the parameters named in ``params``: ``"gain"`` (the fader, in dB, unconstrained inside
   the fader+trim range), ``"pan"`` and ``"eq"`` (the five EQ band gains) through
   :func:`~mixbridge.models.console.denormalise` of ``sigmoid(z)``, and optionally ``"send"``;
   then ``polish_steps`` Levenberg-Marquardt iterations on the time-domain residual, which resolve the
   nearly degenerate direction "track gain up, all its EQ bands down" that first-order steps crawl
   along (Adam alone stalls near -30 dB of residual on four tracks).

**The master bus is bypassed**: the console's pre-master ``mix`` (tracks plus reverb return) is
compared with the given mix; the fitted session carries the init's master (or the defaults at
-14 LUFS). Parameters that are not fitted (EQ frequencies and Qs, compressor, polarity) are held
at the init session's values (schema defaults without one).

The residual is ``10 log10(sum (mix - mix_hat)^2 / sum mix^2)`` in dB; above
:data:`POOR_FIT_DB` the fit is flagged ``poor_fit`` with a warning: the mix is probably not made
of these stems (or holds processing the fitted parameters cannot express). Mixes longer than
``max_fit_s`` are fitted on their loudest window of that length (static parameters; stated in
the notices). Imports torch.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from mixbridge import __version__
from mixbridge.audio import StemSet
from mixbridge.errors import AudioInputError, MixbridgeError
from mixbridge.schema import CHANNEL_STRIP, MASTER_BUS
from mixbridge.session import Master, Session, Track

from .console import STRIP_PARAMS, TorchConsole, denormalise, normalise
from .losses import esr, sum_and_difference_mrstft_loss

#: A fit whose residual (dB of residual energy over mix energy) is above this is flagged ``poor_fit``.
#: -10 dB: a tenth of the mix's energy unexplained; the stems' own mix fits far below (-40 dB and lower
#: on a console render), a mix of other material stays near 0 dB.
POOR_FIT_DB = -10.0
#: Default number of Adam steps (at most: see ADAM_STOP_DB and ADAM_PATIENCE).
DEFAULT_STEPS = 60
#: Default number of Levenberg-Marquardt iterations that polish the Adam result.
DEFAULT_POLISH_STEPS = 20
#: The parameters :func:`fit_session` can fit.
FIT_PARAMS = ("gain", "pan", "eq", "send")
#: Fitted by default.
DEFAULT_FIT_PARAMS = ("gain", "pan", "eq")
#: The EQ band gains fitted under ``"eq"``.
EQ_BAND_GAINS = ("eq.low_shelf_gain_db", "eq.peak1_gain_db", "eq.peak2_gain_db", "eq.peak3_gain_db",
                 "eq.high_shelf_gain_db")
#: Weight of the sum-and-difference MR-STFT term next to the ESR (whose scale is 0..1).
DEFAULT_STFT_WEIGHT = 0.1
#: Longest stretch fitted, s (the loudest window of this length; parameters are static).
DEFAULT_MAX_FIT_S = 6.0
#: A band whose +6 dB boost touches less than this fraction of a track's energy "carries no energy":
#: its fitted gain is not identifiable from the mix (reported, not trusted).
BAND_ENERGY_MIN = 0.05
#: Adam step size in the unconstrained space (logits; the gain column in units of GAIN_UNIT_DB).
LR_LOGIT = 0.08
#: The gain column of the unconstrained parameters is ``gain_db / GAIN_UNIT_DB`` (an Adam step of 0.08 moves
#: a gain by about 0.16 dB and a +-12 dB EQ band gain by up to 0.5 dB).
GAIN_UNIT_DB = 2.0
#: Levenberg-Marquardt: forward-difference step (unconstrained units), first damping, tries per
#: iteration, and the relative improvement below which it stops.
LM_STEP, LM_LAMBDA0, LM_TRIES, LM_RTOL = 1e-6, 1e-3, 8, 1e-6
#: Levenberg-Marquardt works on the loudest window of at most this length inside the fitted one, s (its
#: Jacobian holds parameters x tracks x 2 x samples float64 values: 16 tracks, 4 s: about 0.3 GB).
LM_MAX_S = 4.0
#: Levenberg-Marquardt stops once the residual is below this, dB (float64 round-off is near -150 dB).
LM_STOP_DB = -100.0
#: Adam stops once the residual is below this, dB (the Levenberg-Marquardt polish takes it from there).
ADAM_STOP_DB = -50.0
#: Adam also stops when its best loss has not fallen by ADAM_MIN_GAIN (relative) in ADAM_PATIENCE steps.
ADAM_PATIENCE, ADAM_MIN_GAIN = 10, 1e-3
#: Where a fitted send starts when the init has it off (-80 dB has no gradient).
SEND_START_DB = -30.0
#: Normalised values are kept this far inside (0, 1) when taking logits of an init.
_LOGIT_EPS = 1e-3

_FADER, _TRIM = CHANNEL_STRIP.param("fader.fader_db"), CHANNEL_STRIP.param("trim.gain_db")


class ReverseFitError(ValueError, MixbridgeError):
    """Inputs :func:`fit_session` cannot fit (the message names the value, the limit and the fix)."""


@dataclass
class FitResult:
    """What :func:`fit_session` found.

    Attributes:
        session: the fitted session (real units; pushable, renderable by ``mixbridge render``).
        residual_db: ``10 log10(residual energy / mix energy)`` of the torch console's fit over the fitted
            window, dB.
        poor_fit: ``residual_db > POOR_FIT_DB``.
        tracks: one dict per track: ``name``, ``gain_db`` (trim + fader), ``fader_db``, ``trim_db``, ``pan``,
            ``eq_gain_db`` and ``eq_band_energy`` (fraction of the track's energy each band touches) by band,
            ``identifiable_bands``, ``send_db``, ``share_db`` (the track's energy in the fitted mix relative to
            the mix, dB).
        init: where the start came from (``"dmc-full"``, ``"dmc"``, ``"neutral"`` or the init session's mixer).
        steps: Adam steps run (fewer than asked when the residual fell below ``ADAM_STOP_DB`` or stopped
            improving, ``ADAM_PATIENCE``).
        loss_start, loss_end: the loss (ESR + weighted SD-MRSTFT) at the closed-form start and at the end.
        window_s: ``(start, end)`` of the fitted window, s.
        notices: what was decided on the way (windowing, length mismatch, poor fit), one line each.
    """

    session: Session
    residual_db: float
    poor_fit: bool
    tracks: list[dict]
    init: str
    steps: int
    loss_start: float
    loss_end: float
    window_s: tuple[float, float]
    notices: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        """The fit report as plain JSON data (what ``fit_report.json`` holds, without the render)."""
        return {"residual_db": round(self.residual_db, 3), "poor_fit": self.poor_fit,
                "poor_fit_threshold_db": POOR_FIT_DB, "init": self.init, "steps": self.steps,
                "loss_start": self.loss_start, "loss_end": self.loss_end,
                "window_s": [round(self.window_s[0], 3), round(self.window_s[1], 3)],
                "master": "bypassed: the pre-master console mix is compared with the given mix",
                "tracks": self.tracks, "notices": list(self.notices)}


# --------------------------------------------------------------------------- helpers
def loudest_window(audio: np.ndarray, sample_rate: int, length: int) -> int:
    """Start sample of the ``length``-sample window of ``audio`` ``[C, n]`` with the most energy (1 s hop)."""
    n = audio.shape[-1]
    if n <= length:
        return 0
    energy = np.concatenate([[0.0], np.cumsum((audio.astype(np.float64) ** 2).sum(axis=0))])
    hop = max(1, sample_rate)
    starts = np.arange(0, n - length + 1, hop)
    return int(starts[np.argmax(energy[starts + length] - energy[starts])])


#: A track "plays" in a window whose energy is within this factor of its best window's (-30 dB).
PLAYS_FRACTION = 1e-3


def fit_window(stems: np.ndarray, mix: np.ndarray, sample_rate: int, length: int) -> tuple[int, np.ndarray]:
    """The fitted window: ``(start sample, plays [tracks] bool)``.

    Among the ``length``-sample windows (1 s hop), the one where the most tracks of ``stems``
    ``[tracks, C, n]`` play (energy within :data:`PLAYS_FRACTION` of that track's best window), then
    the one with the most mix energy: a track silent in the window would tell the fit nothing about
    its gain (a tom fill, a part that enters late).
    """
    n = mix.shape[-1]
    if n <= length:
        e = (stems.astype(np.float64) ** 2).sum(axis=(1, 2))
        return 0, e > 0
    hop = max(1, sample_rate)
    starts = np.arange(0, n - length + 1, hop)
    per_track = np.stack([np.concatenate([[0.0], np.cumsum((a.astype(np.float64) ** 2).sum(axis=0))])
                          for a in stems])  # [tracks, n + 1]
    e = per_track[:, starts + length] - per_track[:, starts]  # [tracks, windows]
    best = e.max(axis=1, keepdims=True)
    plays = (e > PLAYS_FRACTION * best) & (best > 0)
    mix_energy = np.concatenate([[0.0], np.cumsum((mix.astype(np.float64) ** 2).sum(axis=0))])
    m = mix_energy[starts + length] - mix_energy[starts]
    k = int(np.lexsort((-m, -plays.sum(axis=0)))[0])
    return int(starts[k]), plays[:, k]


def band_energy_fractions(audio: np.ndarray, sample_rate: int, eq: dict) -> dict[str, float]:
    """The fraction of ``audio`` ``[C, n]``'s energy that each EQ band acts on, by band gain name.

    For each band, ``sum_f |S(f)|^2 w(f) / sum_f |S(f)|^2`` with ``w`` the band's response in dB at a
    +6 dB setting (the others at 0 dB, frequencies and Qs from ``eq``) divided by 6: 1 where the band
    acts fully, 0 where it does not act. ``S`` is the mean power spectrum over 8192-point Hann frames.
    """
    from scipy.signal import welch

    from mixbridge.plugins.rbj import eq_response_db

    mono = audio.astype(np.float64).mean(axis=0)
    nper = min(8192, mono.size)
    freqs, power = welch(mono, fs=sample_rate, nperseg=nper)
    total = float(power.sum())
    out = {}
    for path in EQ_BAND_GAINS:
        name = path.split(".", 1)[1]
        p = {k: (6.0 if k == name else (0.0 if k.endswith("gain_db") else v)) for k, v in eq.items()}
        w = np.clip(eq_response_db(p, np.maximum(freqs, 1e-3), sample_rate) / 6.0, 0.0, 1.0)
        out[name] = float((power * w).sum() / total) if total > 0 else 0.0
    return out


def _logit(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, _LOGIT_EPS, 1.0 - _LOGIT_EPS)
    return np.log(u / (1.0 - u))


def split_gain_tensor(gain_db: torch.Tensor, trim0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(fader_db, trim_db)``: the fader takes the fitted gain inside its range, the trim (from its init
    value) what the fader cannot; exact when the compressor is the identity (ratio 1)."""
    fader = torch.clamp(gain_db, _FADER.min, _FADER.max)
    trim = torch.clamp(trim0 + gain_db - fader, _TRIM.min, _TRIM.max)
    return fader, trim


def _stack_stems(stems: np.ndarray | Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stems ``[tracks, C, n]`` (or a list of ``[C_i, n]``) -> float32 ``[tracks, 2, n]`` and the mono flags."""
    arrs = [np.asarray(s, dtype=np.float32) for s in stems]
    if not arrs:
        raise ReverseFitError("no stems: give at least one track")
    n = {a.shape[-1] for a in arrs}
    if len(n) != 1 or any(a.ndim != 2 or a.shape[0] not in (1, 2) for a in arrs):
        raise AudioInputError(f"stems must be [tracks, 1|2, samples] of one length, got shapes "
                              f"{sorted({a.shape for a in arrs})}; load them with mixbridge.audio.load_stems")
    mono = torch.tensor([a.shape[0] == 1 for a in arrs])
    x = torch.from_numpy(np.stack([np.repeat(a, 2, axis=0) if a.shape[0] == 1 else a for a in arrs]))
    return x, mono


def default_init(stems: StemSet, mix: np.ndarray | None = None) -> tuple[Session | None, str, list[str]]:
    """The start of a fit: ``dmc-full``'s reading of the mix, else mixer ``dmc``'s session, else none (neutral).

    With ``mix`` (``[C, samples]`` at the stems' rate) and dmc-full's weights, the mix is the reference
    dmc-full reads (:func:`mixbridge.models.style_transfer.predict_from_reference`), and the start takes from
    its prediction what the fit moves -- each track's trim and fader, pan and the five EQ band gains; the
    rest (EQ frequencies and Qs, compressor, send, the master) stays at ``dmc``'s session (the schema's
    defaults), because the fit holds those fixed and a predicted compressor that the mix does not have
    would be frozen in. A mixer that is not registered, or whose weights are missing (it raises a
    :class:`~mixbridge.errors.MixbridgeError` or ``ImportError``), is skipped with a notice.

    Returns:
        ``(session or None, "dmc-full" | "dmc" | "neutral", notices)``.
    """
    from .mix_session import build_session, master_defaults
    from .mixers import get_mixer, mixer_names

    notices: list[str] = []
    start: Session | None = None
    name = "neutral"
    if "dmc" in mixer_names():
        try:
            start, name = get_mixer("dmc")(stems, seed=0), "dmc"
        except (MixbridgeError, ImportError, OSError) as e:
            notices.append(f"init: mixer dmc unavailable ({str(e).splitlines()[0][:160]}); trying the next")
    if mix is None:
        return start, name, notices
    from .style_transfer import predict_from_reference

    base = start if start is not None else build_session(stems, "neutral", [{} for _ in stems.stems],
                                                          master_defaults(-14.0), 0)
    try:
        full = predict_from_reference(stems, np.asarray(mix, dtype=np.float32), stems.sample_rate, base)
    except (MixbridgeError, ImportError, OSError) as e:
        notices.append(f"init: dmc-full unavailable ({str(e).splitlines()[0][:160]}); starting from {name}")
        return start, name, notices
    out = copy.deepcopy(base)
    for t, f in zip(out.tracks, full.tracks):
        for path in ("trim.gain_db", "fader.fader_db", "pan.pan") + EQ_BAND_GAINS:
            proc, leaf = path.split(".")
            t.params[proc][leaf] = f.params[proc][leaf]
    out.provenance["mixer"] = "dmc-full"
    return out, "dmc-full", notices


# --------------------------------------------------------------------------- the fit
def fit_session(stems, mix: np.ndarray, sample_rate: int, *, init: Session | None = None,
                steps: int = DEFAULT_STEPS, params: Sequence[str] = DEFAULT_FIT_PARAMS,
                progress: bool = True, names: Sequence[str] | None = None,
                stft_weight: float = DEFAULT_STFT_WEIGHT, max_fit_s: float = DEFAULT_MAX_FIT_S,
                init_name: str | None = None, seed: int = 0,
                polish_steps: int = DEFAULT_POLISH_STEPS, source_base=None) -> FitResult:
    """Fit channel strips so that ``stems`` mix to ``mix`` (see the module docstring).

    Args:
        stems: a :class:`~mixbridge.audio.StemSet` (its names and paths go into the session), or float
            ``[tracks, C, samples]`` (C = 1 or 2; or a list of ``[C_i, samples]``) with ``names``.
        mix: the mix to explain, float ``[2, samples]`` (or ``[1, samples]``, duplicated), at ``sample_rate``;
            a length other than the stems' is cut or zero-padded (a notice).
        sample_rate: Hz, of stems and mix.
        init: a session of these stems to start from (its track order must match); None: neutral.
        steps: at most this many Adam steps (0: none).
        params: what to fit, a subset of :data:`FIT_PARAMS`.
        progress: a tqdm bar over the steps.
        names: track names for array stems (default ``track1``...).
        stft_weight: weight of the SD-MRSTFT term.
        max_fit_s: longest stretch fitted, s (the loudest window).
        init_name: how to name the start in the report (default: the init's mixer, or ``neutral``).
        seed: ``torch.manual_seed`` for the run (the fit itself draws nothing random).
        polish_steps: Levenberg-Marquardt iterations after Adam (0: none).
        source_base: the session's stem paths are relative to this folder (a stem set; absolute when None).

    Returns:
        A :class:`FitResult`.

    Raises:
        ReverseFitError: unknown ``params``, ``steps < 0``, an init whose tracks do not match, a silent mix.
        AudioInputError: stems or mix of the wrong shape.
    """
    unknown = sorted(set(params) - set(FIT_PARAMS))
    if unknown or not params:
        raise ReverseFitError(f"params {list(params)}: fit a non-empty subset of {', '.join(FIT_PARAMS)}")
    if steps < 0:
        raise ReverseFitError(f"steps = {steps}; give 0 or more Adam steps")
    torch.manual_seed(seed)
    stem_set = stems if isinstance(stems, StemSet) else None
    if stem_set is not None:
        names = [s.name for s in stem_set.stems]
        x, mono = _stack_stems([s.audio for s in stem_set.stems])
    else:
        x, mono = _stack_stems(stems)
        names = list(names) if names is not None else [f"track{i + 1}" for i in range(x.shape[0])]
    tracks, _, n = x.shape
    if len(names) != tracks:
        raise ReverseFitError(f"{len(names)} names for {tracks} stems; give one name per stem")
    notices: list[str] = []
    mix = np.asarray(mix, dtype=np.float32)
    if mix.ndim != 2 or mix.shape[0] not in (1, 2):
        raise AudioInputError(f"mix must be [2, samples] (or mono [1, samples]), got {mix.shape}")
    if mix.shape[0] == 1:
        mix = np.repeat(mix, 2, axis=0)
        notices.append("the mix is mono: fitted against its one channel on both sides")
    if mix.shape[1] != n:
        notices.append(f"the mix has {mix.shape[1]} samples, the stems {n}: the mix is "
                       f"{'cut' if mix.shape[1] > n else 'zero-padded'} to {n} (no time alignment is fitted)")
        mix = mix[:, :n] if mix.shape[1] > n else np.pad(mix, ((0, 0), (0, n - mix.shape[1])))
    if not np.isfinite(mix).all():
        raise AudioInputError("the mix holds NaN or inf samples; give a valid audio file")
    if float(np.sum(mix.astype(np.float64) ** 2)) <= 0.0:
        raise ReverseFitError("the mix is digital silence: nothing to fit; give the mix of these stems")
    # window
    length = min(n, max(int(max_fit_s * sample_rate), 1))
    start, plays = fit_window(x.numpy(), mix, sample_rate, length)
    if length < n:
        notices.append(f"fitted on {length / sample_rate:.1f} s of {n / sample_rate:.1f} s "
                       f"({start / sample_rate:.1f}-{(start + length) / sample_rate:.1f} s, where "
                       f"{int(plays.sum())} of {tracks} tracks play; parameters are static)")
    if not plays.all():
        notices.append("tracks that do not play in the fitted window keep their starting gain and pan "
                       f"({init_name or ('the init session' if init is not None else 'neutral')}): "
                       + ", ".join(nm for nm, pl in zip(names, plays) if not pl))
    # float64 audio: in float32 the loss's round-off (about 1e-6 of the mix energy) hides the
    # nearly degenerate directions below -40 dB of residual
    xw = x[..., start:start + length].double()
    target = torch.from_numpy(np.ascontiguousarray(mix[:, start:start + length])).double()[None]

    # initial parameters (real units) per track
    if init is not None:
        if [t.name for t in init.tracks] != list(names):
            raise ReverseFitError(f"init session tracks {[t.name for t in init.tracks]} do not match the stems "
                                  f"{list(names)}; pass the session of these stems, in their order")
        init_params = [t.params for t in init.tracks]
        init_name = init_name or str(init.provenance.get("mixer", "session"))
    else:
        init_params = [CHANNEL_STRIP.defaults() for _ in names]
        init_name = init_name or "neutral"
    base = {path: torch.tensor([float(p[path.split(".")[0]][path.split(".")[1]]) for p in init_params],
                               dtype=torch.float64) for path, _ in STRIP_PARAMS}
    if bool((base["fader.mute"] >= 0.5).any()):
        notices.append("init: muted tracks are unmuted for the fit (a muted track's level cannot be fitted): "
                       + ", ".join(nm for nm, m in zip(names, base["fader.mute"]) if m >= 0.5))
    base["fader.mute"] = torch.zeros(tracks, dtype=torch.float64)
    console = TorchConsole(sample_rate)

    # stage 1: closed form gains and pans from the centred strip outputs
    gain0 = base["fader.fader_db"].clone()
    pan0 = base["pan.pan"].clone()
    if "gain" in params or "pan" in params:
        centred = dict(base, **{"fader.fader_db": torch.zeros(tracks, dtype=torch.float64),
                                "pan.pan": torch.zeros(tracks, dtype=torch.float64),
                                "send.send_db": torch.full((tracks,), -80.0, dtype=torch.float64),
                                "fader.mute": torch.zeros(tracks, dtype=torch.float64)})
        with torch.no_grad():
            y = console(xw[:, None], {k: v[:, None] for k, v in centred.items()}, mono=mono[:, None]).mix
        y = y.double().numpy()  # [tracks, 2, n]
        t = target[0].double().numpy()
        c = np.zeros((2, tracks))
        for ch in range(2):
            a = y[:, ch].T  # [n, tracks]
            c[ch] = np.linalg.lstsq(a, t[ch], rcond=None)[0]
        c = np.clip(c, 0.0, None)
        g = np.sqrt(c[0] ** 2 + c[1] ** 2) / math.sqrt(2.0)
        theta = np.arctan2(c[1], c[0])
        # a track that plays in the window and gets no least-squares gain is not in the mix; one that
        # does not play there keeps its starting values (the window says nothing about it)
        dead = (g < 10 ** ((_FADER.min + _TRIM.min) / 20)) & plays
        if "gain" in params:
            gdb = 20 * np.log10(np.maximum(g, 1e-12))
            trim0 = base["trim.gain_db"].numpy()
            gdb = np.clip(gdb, _FADER.min + _TRIM.min - trim0, _FADER.max + _TRIM.max - trim0)
            gain0 = torch.tensor(np.where(dead, _FADER.min, np.where(plays, gdb, base["fader.fader_db"].numpy())),
                                 dtype=torch.float64)
            if dead.any():
                notices.append("tracks with no least-squares contribution to the mix (started at the fader's "
                               f"minimum): {', '.join(nm for nm, d in zip(names, dead) if d)}")
        if "pan" in params:
            pan0 = torch.tensor(np.where(dead, 0.0, np.where(plays, np.clip(4 * theta / math.pi - 1, -1, 1),
                                                             base["pan.pan"].numpy())), dtype=torch.float64)

    # stage 2: one unconstrained matrix P [tracks, K]: the fader-equivalent gain in units of
    # GAIN_UNIT_DB (so that one Adam step size suits every column), then the logits of the
    # normalised pan / EQ band gains / send (real units through denormalise of sigmoid(P))
    logit_paths: list[str] = []
    if "pan" in params:
        logit_paths.append("pan.pan")
    if "eq" in params:
        logit_paths += list(EQ_BAND_GAINS)
    if "send" in params:
        logit_paths.append("send.send_db")
        base["send.send_db"] = torch.clamp(base["send.send_db"], min=SEND_START_DB)
    sub = [(p, CHANNEL_STRIP.param(p)) for p in logit_paths]
    start_vals = dict(base, **{"pan.pan": pan0})
    fit_gain = "gain" in params
    cols = [(gain0 / GAIN_UNIT_DB)[:, None]] if fit_gain else []
    if sub:
        u0 = normalise(sub, {p: start_vals[p] for p in logit_paths}).numpy()  # [tracks, k]
        cols.append(torch.tensor(_logit(u0), dtype=torch.float64))
    P = torch.cat(cols, dim=1).clone().requires_grad_(True)

    def strip_values(P: torch.Tensor) -> dict[str, torch.Tensor]:
        vals = dict(start_vals)
        g = P[:, 0] * GAIN_UNIT_DB if fit_gain else gain0
        fader, trim = split_gain_tensor(g, base["trim.gain_db"])
        vals["fader.fader_db"], vals["trim.gain_db"] = fader, trim
        if sub:
            vals.update(denormalise(sub, torch.sigmoid(P[:, int(fit_gain):]), check=False))
        return vals

    def per_track(P: torch.Tensor, xs: torch.Tensor = xw) -> torch.Tensor:
        """Each track's console output alone, [tracks, 2, n] (the mix is their sum: the console is linear
        in its tracks, the reverb included)."""
        vals = strip_values(P)
        return console(xs[:, None], {k: v[:, None] for k, v in vals.items()}, mono=mono[:, None]).mix

    stft = sum_and_difference_mrstft_loss() if stft_weight > 0 else None

    def loss_of(P: torch.Tensor, xs: torch.Tensor = xw, tgt: torch.Tensor = target):
        out = console(xs, strip_values(P), mono=mono).mix
        e = esr(out, tgt)
        total = e + (stft_weight * stft(out, tgt) if stft is not None else 0.0)
        return total, e

    with torch.no_grad():
        loss_start = float(loss_of(P)[0])
    steps_run = 0
    if steps > 0:
        from tqdm import tqdm

        # Adam in float32 (first-order steps need no more); the best parameters seen are kept, and it
        # stops once the residual is below ADAM_STOP_DB (Adam's first steps move every parameter by
        # about its step size, which spoils an exact closed-form start)
        x32, t32 = xw.float(), target.float()
        opt = torch.optim.Adam([P], lr=LR_LOGIT)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=0.05 * LR_LOGIT)
        best, best_P, since = math.inf, P.detach().clone(), 0
        bar = tqdm(range(steps), desc="reverse fit", unit="step", disable=not progress, leave=False)
        for _ in bar:
            opt.zero_grad()
            total, e = loss_of(P, x32, t32)
            e_db = 10 * math.log10(max(e.item(), 1e-30))
            if total.item() < best * (1 - ADAM_MIN_GAIN):
                since = 0
            else:
                since += 1
            if total.item() < best:
                best, best_P = total.item(), P.detach().clone()
            bar.set_postfix_str(f"residual {e_db:.1f} dB")
            if e_db < ADAM_STOP_DB or since >= ADAM_PATIENCE:
                break
            total.backward()
            opt.step()
            sched.step()
            steps_run += 1
        bar.close()
        P = best_P
    P = P.detach()
    if polish_steps > 0:
        lm_len = min(length, max(int(LM_MAX_S * sample_rate), 1))
        a = loudest_window(target[0].numpy(), sample_rate, lm_len)
        xs = xw[..., a:a + lm_len]
        P = _levenberg_marquardt(lambda P: per_track(P, xs), P, target[0, :, a:a + lm_len], polish_steps)
    with torch.no_grad():
        vals = strip_values(P)
        total, e = loss_of(P)
        loss_end = float(total)
        residual_db = 10 * math.log10(max(float(e), 1e-30))
        tracks_out = per_track(P)
        share = (tracks_out ** 2).sum(dim=(-1, -2)) / (tracks_out.sum(0) ** 2).sum().clamp(min=1e-30)

    # the session and the report
    track_params, report = [], []
    for i, nm in enumerate(names):
        p = {proc: dict(v) for proc, v in init_params[i].items()}
        for path in ["fader.fader_db", "trim.gain_db"] + logit_paths:
            proc, name = path.split(".")
            p[proc][name] = round(float(vals[path][i]), 4)
        p = CHANNEL_STRIP.validate(p, f"track '{nm}'")
        track_params.append(p)
        bands = band_energy_fractions(xw[i].numpy(), sample_rate, p["eq"])
        report.append({
            "name": nm, "gain_db": round(p["trim"]["gain_db"] + p["fader"]["fader_db"], 3),
            "fader_db": p["fader"]["fader_db"], "trim_db": p["trim"]["gain_db"], "pan": round(p["pan"]["pan"], 4),
            "eq_gain_db": {b.split(".")[1]: round(p["eq"][b.split(".")[1]], 3) for b in EQ_BAND_GAINS},
            "eq_band_energy": {k: round(v, 4) for k, v in bands.items()},
            "identifiable_bands": [k for k, v in bands.items() if v >= BAND_ENERGY_MIN],
            "send_db": p["send"]["send_db"],
            "share_db": round(10 * math.log10(max(float(share[i]), 1e-12)), 2),
        })
    poor = residual_db > POOR_FIT_DB
    if poor:
        notices.append(f"warning: poor fit: residual {residual_db:.1f} dB is above {POOR_FIT_DB:g} dB; the mix is "
                       "probably not made of these stems (or holds processing the fitted parameters cannot "
                       "express); do not trust the fitted session")
    extra = {"reverse": {"residual_db": round(residual_db, 3), "poor_fit": poor, "init": init_name,
                         "steps": steps_run, "params": list(params)}}
    master = init.master.params if init is not None else None
    session = _session(stem_set, names, track_params, master, sample_rate, extra, init, source_base)
    return FitResult(session, residual_db, poor, report, init_name, steps_run, loss_start, loss_end,
                     (start / sample_rate, (start + length) / sample_rate), notices)


def _levenberg_marquardt(per_track, P: torch.Tensor, target: torch.Tensor, iters: int) -> torch.Tensor:
    """Levenberg-Marquardt on the time-domain residual ``target - sum_i y_i(P_i)`` (target ``[2, n]``).

    The Jacobian is block diagonal by track (track ``i``'s parameters move only ``y_i``), so one
    forward difference per column of ``P`` (all tracks at once, :data:`LM_STEP`) gives it in
    ``K + 1`` renders; the damped normal equations ``(J^T J + lam diag(J^T J)) d = J^T r`` are
    solved in float64, a step is kept only when it lowers the residual energy (Marquardt, SIAM
    J. Appl. Math. 11, 1963; Nocedal & Wright, Numerical Optimization, ch. 10).
    """
    tracks, k = P.shape
    lam = LM_LAMBDA0
    with torch.no_grad():
        y = per_track(P)
        r = target - y.sum(0)
        cost = float((r ** 2).sum())
        floor = float((target ** 2).sum()) * 10 ** (LM_STOP_DB / 10)
        for _ in range(iters):
            if cost <= floor:
                break
            cols = []
            for j in range(k):
                Pj = P.clone()
                Pj[:, j] += LM_STEP
                cols.append(((per_track(Pj) - y) / LM_STEP).reshape(tracks, -1))
            D = torch.stack(cols, 0).reshape(k * tracks, -1)  # row j * tracks + i
            G = D @ D.T
            g = D @ r.reshape(-1)
            diag = torch.diagonal(G).clamp(min=1e-12 * float(torch.diagonal(G).max()) + 1e-30)
            improved = False
            for _ in range(LM_TRIES):
                delta = torch.linalg.solve(G + lam * torch.diag(diag), g)
                Pn = P + delta.reshape(k, tracks).T
                yn = per_track(Pn)
                rn = target - yn.sum(0)
                cn = float((rn ** 2).sum())
                if cn < cost:
                    P, y, r, improved = Pn, yn, rn, True
                    lam = max(lam / 3.0, 1e-9)
                    done = cost - cn < LM_RTOL * cost
                    cost = cn
                    break
                lam *= 4.0
            if not improved or done:
                break
    return P


def _session(stem_set: StemSet | None, names, track_params, master, sample_rate, extra, init,
             source_base=None) -> Session:
    """The fitted session: through :func:`~mixbridge.models.mix_session.build_session` for a stem set,
    else with sources ``<name>.wav`` (array stems, e.g. in tests)."""
    from .mix_session import build_session, master_defaults

    master = master if master is not None else master_defaults(-14.0)
    if stem_set is not None:
        return build_session(stem_set, "reverse", track_params, master, 0, source_base, extra=extra)
    tracks = [Track(nm, f"{nm}.wav", p, role=(init.tracks[i].role if init is not None else None))
              for i, (nm, p) in enumerate(zip(names, track_params))]
    prov = {"mixer": "reverse", "mixbridge_version": __version__, "seed": 0, "inputs": {}, "notices": []}
    prov.update(extra)
    return Session(int(sample_rate), tracks, Master(MASTER_BUS.validate(master, "master")), prov, None)


__all__ = ["fit_session", "FitResult", "default_init", "band_energy_fractions", "loudest_window", "fit_window",
           "ReverseFitError", "POOR_FIT_DB", "DEFAULT_STEPS", "FIT_PARAMS", "EQ_BAND_GAINS"]
