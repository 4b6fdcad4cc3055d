"""Training DeepMixing (:mod:`mixbridge.models.deepmixing`) on the composer dataset, two ways.

Targets. The composer dataset's ``target/mix.wav`` and ``target/session.json`` are **static**: a ramping
CC7 is labelled by its power mean. The curve itself is kept in ``stems/manifest.json``
(``target.cc7_curve``, ``[[t_s, gain_db]]`` steps from the excerpt start), so the time-varying target gain
of track ``i`` in chunk ``t`` is (:func:`excerpt_gain_curves_db`)::

    G_it = gain_db_i + (power mean over chunk t of the cc7 curve_i) - cc7_gain_db_i        (dB)

(``gain_db_i`` the static label, ``cc7_gain_db_i`` the curve's power mean over the excerpt), and the
target Dirichlet point is ``p_t = 10^(G_t/20) / sum 10^(G_t/20)`` (a balance: each chunk's overall level is
free). :func:`automated_target_session` writes the same curves as fader automation, the reference the
time-resolved level error is scored against.

Methods (``method=``), both on the house :class:`~.trainer.Trainer` through
:func:`~.mixing.run_split_training` (train split for training, val for selection, by song):

* ``pg`` -- the seed's policy gradient: per excerpt, ``samples`` gain draws per chunk from
  ``Dirichlet(alpha_t)``; reward :func:`~mixbridge.models.deepmixing.reward` against the target mix's MFCCs
  (``mfcc(sum_i p_ti^2 P_ti)``, the same uncorrelated-sum model); REINFORCE with the draws' mean reward per
  chunk as the baseline, plus the reward's pathwise gradient through its smoothness factor (the reward
  depends on ``alpha`` itself through ``exp(-rho KL)``): ``loss = -mean(sg(R - mean R) * log Dir(g | alpha))
  - mean(R)`` (``sg`` stops the gradient; ``g`` is a draw, so ``-mean(R)`` differentiates only the KL factor).
  Validation ``loss`` is ``1 - reward`` of the mean gains (:func:`pg_loss`).
* ``direct`` -- the Dirichlet mean gains through the torch console
  (:func:`~.mixing.console_mix`, chunk by chunk, the target pans in both mixes) against the console's
  mix of the target gains, by the sum-and-difference MR-STFT, plus the same smoothness term
  ``rho * KL(Dir(alpha_t) || Dir(alpha_t+1))`` (mean over chunks). The MR-STFT reads ``audio_chunks``
  consecutive chunks of each excerpt (random per epoch, seeded; the centre for validation).

Both report ``level_rmse_db`` on validation: the RMSE of ``gains_to_db(mean) - gains_to_db(p)`` over the
(chunk, track) pairs whose target is within 60 dB of the chunk's loudest, each chunk's mean removed --
the gain-domain counterpart of :func:`mixbridge.models.evaluation.time_level_errors`. It is what chooses
the shipped method.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from mixbridge.loudness import db_to_gain

from ..dmc_mixer import trim_db
from ..evaluation import TRACK_SKIP_DB
from .data import TrainConfigError, load_recipe, recipe_defaults
from .mixing import (
    composer_identity,
    composer_model_args,
    composer_splits,
    console_mix,
    read_excerpt_crop,
    run_split_training,
)

#: The training methods.
METHODS = ("pg", "direct")
#: Targets this far below a chunk's loudest track are left out of ``level_rmse_db``: the evaluation's rule
#: (:data:`mixbridge.models.evaluation.TRACK_SKIP_DB`), one number for both, dB.
SKIP_DB = TRACK_SKIP_DB
#: Floor of a target gain whose CC7 is 0 in a whole chunk (a fade to silence), dB relative.
SILENT_GAIN_DB = -100.0


def chunk_power_mean_db(curve, duration_s: float, chunk_s: float, n_chunks: int) -> np.ndarray:
    """Power mean per chunk ``[n_chunks]`` (dB) of a step curve ``[[t_s, value_db], ...]`` (each value holds from
    its time to the next, the last to ``duration_s``; before the first point the first value holds)."""
    pts = sorted((float(t), float(v)) for t, v in curve)
    if not pts:
        raise TrainConfigError("an empty cc7 curve; rebuild the composer dataset")
    times = np.array([0.0] + [t for t, _ in pts[1:]] + [max(duration_s, n_chunks * chunk_s)])
    power = 10.0 ** (np.array([v for _, v in pts]) / 10.0)
    out = np.empty(n_chunks)
    for k in range(n_chunks):
        c0, c1 = k * chunk_s, (k + 1) * chunk_s
        overlap = np.clip(np.minimum(times[1:], c1) - np.maximum(times[:-1], c0), 0.0, None)
        p = float(overlap @ power) / chunk_s
        out[k] = 10.0 * np.log10(p) if p > 0 else -np.inf
    return out


def excerpt_gain_curves_db(excerpt, chunk_s: float, n_chunks: int) -> np.ndarray:
    """The time-varying target gains ``G [tracks, n_chunks]`` in dB of a composer excerpt (module docstring)."""
    duration = float(excerpt.stems_manifest["duration_s"])
    rows = []
    for static, tgt in zip(excerpt.target_gain_db, excerpt.targets):
        dev = chunk_power_mean_db(tgt["cc7_curve"], duration, chunk_s, n_chunks) - float(tgt["cc7_gain_db"])
        rows.append(np.maximum(static + dev, SILENT_GAIN_DB))
    return np.stack(rows)


def target_fractions(gain_db: np.ndarray) -> np.ndarray:
    """The target Dirichlet points ``[chunks, tracks]`` of gains ``[tracks, chunks]`` dB: amplitudes over their sum."""
    a = 10.0 ** ((gain_db - gain_db.max(axis=0, keepdims=True)) / 20.0)
    return (a / a.sum(axis=0, keepdims=True)).T


def automated_target_session(excerpt, chunk_s: float = 0.4):
    """The composer's mix with its CC7 ramps as fader automation: ``target/session.json`` plus, on every ramping
    track, ``fader.fader_db`` points at the chunk centres ``(k + 1/2) chunk_s`` of ``fader + G_ik - gain_db_i``
    (:func:`excerpt_gain_curves_db`; clamped to the fader's range). Sources resolve from ``target/``."""
    from mixbridge.schema import CHANNEL_STRIP
    from mixbridge.session import Automation
    from mixbridge.session import load as load_session

    session = load_session(excerpt.target_session_path)
    n = int(excerpt.stems_manifest["samples"])
    k = -(-n // int(round(chunk_s * excerpt.sample_rate)))
    curves = excerpt_gain_curves_db(excerpt, chunk_s, k)
    fp = CHANNEL_STRIP.param("fader.fader_db")
    times = [round((i + 0.5) * chunk_s, 6) for i in range(k)]
    for track, tgt, g, static in zip(session.tracks, excerpt.targets, curves, excerpt.target_gain_db):
        if tgt.get("cc7_ramped"):
            base = track.params["fader"]["fader_db"]
            track.automation["fader.fader_db"] = Automation(
                times, [float(np.clip(base + v - static, fp.min, fp.max)) for v in g])
    return session.validate()


class ExcerptChunks:
    """Map-style dataset of whole composer excerpts as DeepMixing inputs and chunk targets.

    The features read the stems trimmed to :data:`~mixbridge.models.dmc_mixer.COMMON_LUFS` (what the mixer
    feeds the network); the console's audio (``direct``) is the stored stems (its mixes are loudness-normalised).

    Items: ``{"track_db" [T, K, M] float32, "mix_mfcc" [K, 13], "power" [T, K, M] float64, "target" [K, T]
    (Dirichlet points), "target_mfcc" [K, 13], "pan" [T], "audio" [K_a, T, 2, chunk] float32 or None, "id"}``;
    features are computed once per excerpt and kept. With ``audio_chunks`` > 0, ``audio`` holds that many
    consecutive chunks (random start per epoch, seeded by ``(seed, epoch, index)``, else the centre) and
    ``chunk0`` their first chunk index.
    """

    def __init__(self, excerpts: list, model, *, audio_chunks: int = 0, random_crop: bool = False, seed: int = 0):
        from ..deepmixing import mfcc

        self._mfcc = mfcc
        self.excerpts, self.model = list(excerpts), model
        self.audio_chunks, self.random_crop, self.seed, self.epoch = int(audio_chunks), bool(random_crop), int(seed), 0
        self._cache: dict[int, dict] = {}

    def __len__(self) -> int:
        return len(self.excerpts)

    def set_epoch(self, epoch: int) -> None:
        """Draw the audio crops of ``epoch``."""
        self.epoch = int(epoch)

    def _base(self, i: int) -> dict:
        if i not in self._cache:
            ex = self.excerpts[i]
            # the mixer's level convention: every stem at COMMON_LUFS (the stored stems share the excerpt's
            # input loudness, so one gain brings them all there)
            trim = np.float32(db_to_gain(trim_db(ex.input_lufs)))
            stems = np.asarray(ex.load_stems(), dtype=np.float32) * trim
            f = self.model.features(stems, ex.sample_rate)
            k = f["power"].shape[1]
            target = target_fractions(excerpt_gain_curves_db(ex, self.model.chunk_s, k))
            tp = np.einsum("kt,tkm->km", target ** 2, f["power"])
            self._cache[i] = {"track_db": f["track_db"], "mix_mfcc": f["mix_mfcc"], "power": f["power"],
                              "target": target, "target_mfcc": self._mfcc(tp).astype(np.float32),
                              "pan": np.asarray(ex.target_pan, dtype=np.float32), "id": ex.id}
        return self._cache[i]

    def __getitem__(self, i: int) -> dict:
        item = dict(self._base(i))
        item["audio"], item["chunk0"] = None, 0
        if self.audio_chunks:
            ex = self.excerpts[i]
            k = item["power"].shape[1]
            n_a = min(self.audio_chunks, k)
            c0 = (int(np.random.default_rng([self.seed, self.epoch, i]).integers(0, k - n_a + 1))
                  if self.random_crop else (k - n_a) // 2)
            chunk = int(round(self.model.chunk_s * ex.sample_rate))
            audio = read_excerpt_crop(ex, c0 * chunk, n_a * chunk)
            item["audio"] = np.ascontiguousarray(
                audio.reshape(len(ex.track_files), 2, n_a, chunk).transpose(2, 0, 1, 3))
            item["chunk0"] = c0
        return item


def chunk_level_errors_db(gains: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Errors ``[n]`` of ``gains_to_db(gains) - gains_to_db(target)`` (``[K, T]`` each) over the (chunk, track) pairs
    whose target is within :data:`SKIP_DB` of the chunk's loudest, each chunk's mean error removed."""
    from ..deepmixing import gains_to_db

    d = gains_to_db(gains) - gains_to_db(target)
    tdb = 20.0 * torch.log10(target.clamp(min=1e-12))
    keep = tdb - tdb.amax(dim=-1, keepdim=True) >= SKIP_DB
    mean = (d * keep).sum(dim=-1, keepdim=True) / keep.sum(dim=-1, keepdim=True).clamp(min=1)
    return (d - mean)[keep]


def pg_loss(alpha: torch.Tensor, draws: torch.Tensor, power: torch.Tensor, target_mfcc: torch.Tensor,
            rho: float) -> torch.Tensor:
    """The ``pg`` method's loss of one excerpt: minus a one-sample-per-draw estimate of ``mean_t E[r_t]``.

    ``E_{g ~ Dir(alpha)}[r(g, alpha)]`` (:func:`~mixbridge.models.deepmixing.reward`) has two gradients: the score
    term through the draws' density (REINFORCE, with the draws' mean reward per chunk as the baseline) and the
    pathwise one through the reward's own ``alpha``, its smoothness factor ``exp(-rho KL(alpha_t || alpha_t+1))``.
    Without the second, ``rho`` would only rescale the advantage and smooth nothing::

        loss = -mean(sg(R - mean_S R) * log Dir(g | alpha)) - mean(R)      (sg: no gradient; g: fixed draws)

    Args:
        alpha: concentrations ``[K, T]`` (chunks, tracks), with gradient.
        draws: ``[S, K, T]`` draws from ``Dir(alpha)`` (no gradient).
        power, target_mfcc, rho: as :func:`~mixbridge.models.deepmixing.reward`.
    """
    from torch.distributions import Dirichlet

    from ..deepmixing import reward

    r = reward(draws, alpha, power, target_mfcc, rho)                                    # [S, K]
    adv = (r - r.mean(dim=0, keepdim=True)).detach()
    return -(adv * Dirichlet(alpha).log_prob(draws)).mean() - r.mean()


class DeepMixingTask:
    """DeepMixing on a composer dataset (a :class:`~.trainer.Task`; module docstring).

    Args:
        data: the composer dataset's folder.
        method: ``pg`` or ``direct``.
        model_args: :class:`~mixbridge.models.deepmixing.DeepMixing` keyword arguments (``sample_rate`` from the data).
        samples: Dirichlet draws per chunk (``pg``). rho: the smoothness weight.
        audio_chunks: chunks of audio the MR-STFT reads per excerpt (``direct``).
        seed: initialisation, draw and crop seed. device: ``cpu`` or ``cuda``.

    Raises:
        TrainConfigError: an unknown method, a bad value, empty splits or several sample rates.
    """

    model_name = "deepmixing"
    train_keys = ("loss", "reward", "kl")
    val_keys = ("loss", "reward", "kl", "level_rmse_db")

    def __init__(self, data: str | Path, *, method: str = "pg", model_args: dict | None = None, samples: int = 16,
                 rho: float = 0.01, audio_chunks: int = 5, seed: int = 0, device: str = "cpu") -> None:
        from ..losses import sum_and_difference_mrstft_loss
        from ..registry import build_architecture

        if method not in METHODS:
            raise TrainConfigError(f"method = {method!r} is unknown; use one of {', '.join(METHODS)}")
        if int(samples) != samples or samples < 2 or rho < 0 or int(audio_chunks) != audio_chunks or audio_chunks < 1:
            raise TrainConfigError(f"samples = {samples} must be an integer >= 2, rho = {rho} >= 0 and "
                                   f"audio_chunks = {audio_chunks} a positive integer")
        ds, train, val, self.val_note, rate = composer_splits(data)
        args = composer_model_args(model_args, rate)
        torch.manual_seed(seed)
        self.model = build_architecture("deepmixing", args)
        self.forward_model: Any = self.model
        self.method, self.samples, self.rho, self.device = method, int(samples), float(rho), device
        self.sample_rate, self.seed = rate, int(seed)
        n_audio = int(audio_chunks) if method == "direct" else 0
        self.train_data = ExcerptChunks(train, self.model, audio_chunks=n_audio, random_crop=True, seed=seed)
        self.val_data = ExcerptChunks(val, self.model, audio_chunks=n_audio, random_crop=False, seed=seed)
        self.identity = composer_identity(data, ds, train, val, self.val_note) | {"method": method}
        self.stft = sum_and_difference_mrstft_loss().to(device) if method == "direct" else None
        self._draws = 0

    def collate(self, items: list[dict]) -> list[dict]:
        """The items as tensors on the task's device (a list: excerpts differ in track count)."""
        out = []
        for it in items:
            t = {k: (torch.as_tensor(v).to(self.device) if isinstance(v, np.ndarray) else v) for k, v in it.items()}
            t["power"] = t["power"].float()
            out.append(t)
        return out

    def _kl(self, alpha: torch.Tensor) -> torch.Tensor:
        from torch.distributions import Dirichlet, kl_divergence

        if alpha.shape[0] < 2:
            return alpha.new_zeros(())
        return kl_divergence(Dirichlet(alpha[:-1]), Dirichlet(alpha[1:])).mean()

    def item_losses(self, it: dict, model, train: bool) -> dict[str, torch.Tensor]:
        """``{"loss", "reward", "kl", "gains"}`` of one excerpt (``gains`` the Dirichlet mean ``[K, T]``)."""
        from torch.distributions import Dirichlet

        from ..deepmixing import gains_to_db, reward

        alpha = model(it["track_db"], it["mix_mfcc"])                       # [K, T]
        mean = self.model.mean_gains(alpha)                                 # [K, T], the mixer's gains
        kl = self._kl(alpha)
        with torch.no_grad():
            r_mean = reward(mean, alpha, it["power"], it["target_mfcc"], self.rho).mean()
        if self.method == "pg":
            if train:
                g = Dirichlet(alpha.detach()).sample((self.samples,))              # [S, K, T]
                loss = pg_loss(alpha, g, it["power"], it["target_mfcc"], self.rho)
            else:
                loss = 1.0 - r_mean
        else:
            c0, n_a = it["chunk0"], it["audio"].shape[0]
            t = mean.shape[-1]
            ones = torch.ones(n_a, t, device=mean.device)
            pan = it["pan"][None].expand(n_a, t)
            pred = console_mix(it["audio"], gains_to_db(mean[c0:c0 + n_a]), pan, ones, self.sample_rate)
            with torch.no_grad():
                target = console_mix(it["audio"], gains_to_db(it["target"][c0:c0 + n_a].float()), pan, ones,
                                     self.sample_rate)
            assert self.stft is not None  # built for the direct method
            loss = self.stft(pred, target) + self.rho * kl
        return {"loss": loss, "reward": r_mean, "kl": kl.detach(), "gains": mean.detach()}

    def step(self, batch: list[dict]) -> dict[str, torch.Tensor]:
        """Training losses, the mean over the batch's excerpts (``loss`` first; no backward)."""
        outs = [self.item_losses(it, self.forward_model, True) for it in batch]
        return {k: torch.stack([o[k] for o in outs]).mean() for k in self.train_keys}

    def validate(self, batches) -> dict[str, float]:
        """Means over the excerpts of ``loss``, ``reward``, ``kl``; ``level_rmse_db`` over all kept (chunk, track)."""
        sums = dict.fromkeys(("loss", "reward", "kl"), 0.0)
        errs = []
        n = 0
        for batch in batches:
            for it in batch:
                with torch.no_grad():
                    out = self.item_losses(it, self.model, False)
                for k in sums:
                    sums[k] += float(out[k])
                errs.append(chunk_level_errors_db(out["gains"].double(), it["target"].double()))
                n += 1
        e = torch.cat(errs) if errs else torch.zeros(1)
        return {k: v / max(n, 1) for k, v in sums.items()} | {"level_rmse_db": float(torch.sqrt((e ** 2).mean()))}


def train_deepmixing(data: str | Path, out_dir: str | Path, *,
                     method: str = "pg",
                     model_args: dict | None = None,
                     batch_size: int = 4,
                     samples: int = 16,
                     rho: float = 0.01,
                     audio_chunks: int = 5,
                     learning_rate: float = 1e-3,
                     lr_factor: float = 0.5,
                     lr_patience: int = 4,
                     early_stop_patience: int = 12,
                     max_epochs: int = 500,
                     epoch_examples: int | None = None,
                     seed: int = 0,
                     num_threads: int = 1,
                     max_minutes: float | None = None,
                     max_steps: int | None = None,
                     device: str = "cpu",
                     resume: bool = False,
                     progress: bool = True) -> dict:
    """Train DeepMixing on composer dataset ``data`` by ``method`` (``pg`` or ``direct``; module docstring).

    Args:
        data: a composer dataset; train split for training, val split for selection.
        out_dir: the run folder (created; with ``resume`` it must hold ``last``).
        method: ``pg`` (REINFORCE with a baseline, the seed's reward) or ``direct`` (MR-STFT through the console).
        model_args: :class:`~mixbridge.models.deepmixing.DeepMixing` constructor arguments.
        batch_size: excerpts per step. samples: Dirichlet draws per chunk (``pg``). rho: smoothness weight.
        audio_chunks: chunks of audio per excerpt the MR-STFT reads (``direct``).
        learning_rate, lr_factor, lr_patience, early_stop_patience, max_epochs, epoch_examples: the recipe.
        seed, num_threads, max_minutes, max_steps, device, resume, progress: as :func:`~.mixing.train_mixer`.

    Returns:
        The trainer's summary (see :meth:`~.trainer.Trainer.run`).

    Raises:
        TrainConfigError: a bad value, a run folder conflict, too few excerpts, or CUDA asked for but absent.
        ComposerDatasetError: an incomplete dataset. CheckpointError: a corrupted ``last``.
    """
    settings = dict(locals())
    return run_split_training(lambda task_device: DeepMixingTask(
        data, method=method, model_args=model_args, samples=samples, rho=rho, audio_chunks=audio_chunks, seed=seed,
        device=task_device), out_dir, settings, default_config())


def default_config() -> dict[str, Any]:
    """The keyword arguments of :func:`train_deepmixing` with their defaults (the recipe)."""
    return recipe_defaults(train_deepmixing)


def load_deepmixing_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML or TOML config of :func:`train_deepmixing` keyword arguments.

    Raises:
        TrainConfigError: unreadable or invalid file, or unknown keys (the known ones are listed).
    """
    return load_recipe(path, train_deepmixing)


def score_against_automated_target(excerpts, mixers: dict, *, backend: str = "builtin") -> list[dict]:
    """Score mixers on excerpts against the **automated** target (:func:`automated_target_session` rendered by
    ``backend``, pre-master) with :func:`mixbridge.models.evaluation.evaluate_mix`; one row per (mixer, excerpt):
    ``{"mixer", "excerpt", "ramped", "level_rmse_db", "time_level_rmse_db", "sum_difference_mrstft"}``.

    ``mixers`` maps a name to a mixer object (``mixer(stems) -> Session``). The stems are the excerpt's stored
    ones; each mixer's session is rendered by the same backend without its master (as ``mixbridge evaluate``
    does against ``target/mix.wav``).
    """
    from mixbridge.audio import load_stems
    from mixbridge.plugins.backend import get_backend
    from mixbridge.plugins.console import render_console

    from ..evaluation import evaluate_mix

    rows = []
    for ex in excerpts:
        stems = load_stems(ex.stems_dir)
        audio = {s.name: s.audio for s in stems.stems}
        be = get_backend(backend, stems.sample_rate)
        target = render_console(automated_target_session(ex), be, audio=audio).mix
        ramped = any(t.get("cc7_ramped") for t in ex.targets)
        for name, mixer in mixers.items():
            session = mixer(stems, source_base=Path(ex.stems_dir))
            mix = render_console(session, be, audio=audio).mix
            res = evaluate_mix(mix, target, stems.sample_rate, [s.audio for s in stems.stems],
                               track_names=[s.name for s in stems.stems])
            rows.append({"mixer": name, "excerpt": ex.id, "ramped": ramped,
                         "level_rmse_db": res["scores"]["level_rmse_db"],
                         "time_level_rmse_db": res["scores"]["time_level_rmse_db"],
                         "sum_difference_mrstft": res["scores"]["sum_difference_mrstft"]})
    return rows
