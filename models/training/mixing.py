"""Learned mixing as a trainer task: the DMC (:mod:`mixbridge.models.dmc`) on the composer dataset.

:class:`MixingTask` reads a composer dataset (``mixbridge datagen composer``; through
:func:`mixbridge.plugins.datagen.composer.read_composer_dataset`) and trains on its ``train``
split, validating on its ``val`` split (by song, as the dataset's config fixes it; a dataset
without val songs, such as a small development set, holds its last training song out instead
and records that in the run's identity). :class:`SplitTrainer` makes the
:class:`~.trainer.Trainer` use those splits instead of its seeded split of one dataset. An
example is a crop of ``crop_s`` seconds of all tracks of one excerpt (random per epoch for
training, seeded by ``(seed, epoch, index)``; the centre for validation; :class:`ExcerptCrops`);
a batch pads the tracks with a mask (:func:`collate_crops`).

The loss (:meth:`MixingTask.losses`), weights from the config:

* a parameter loss: ``gain_weight * mean |Δg| / gain_scale_db`` with ``Δg`` the gain error in dB
  after removing each excerpt's mean over its tracks (the labels are relative), plus
  ``pan_weight * mean |Δpan|``;
* ``stft_weight *`` the sum-and-difference MR-STFT (:func:`~mixbridge.models.losses.sum_and_difference_mrstft_loss`)
  between the console's mix of the predicted gains and pans and the console's mix of the target ones
  on the same audio (the centre ``stft_s`` seconds of the crop, to bound the cost), both
  loudness-normalised to :data:`MIX_REF_LUFS` (:func:`mixbridge.models.dsp.integrated_lufs`). The mixes are
  :func:`mixbridge.models.console.render_strips` summed over the tracks: the torch console's
  pre-master mix with only ``fader.fader_db`` and ``pan.pan`` set (the dataset's ``target/mix.wav``
  is pre-master too; the master bus would only add its limiter's cost). Measured at 44.1 kHz,
  one thread, a batch of 8 excerpts of 12 tracks: 1 s of mix costs 0.1 s to render and 2.5 s
  of MR-STFT forward and backward; 4 s cost 14 s, hence ``stft_s``.

Validation reports the loss and its parts, ``level_rmse_db`` (RMS of ``Δg`` over every valid track of
the split) and ``pan_mae``. :func:`train_mixer` is the library entry point behind
``mixbridge train mixer``; its keyword arguments are the whole training config.

Shared with the other models trained on a dataset's own splits (:mod:`.mastering`,
:mod:`mixbridge.models.master_unet`, :mod:`.direct`, :mod:`.deepmixing`, :mod:`.dmc_full`):
:func:`run_split_training`, the one body of their ``train_*`` (threads, process group, task,
:class:`SplitTrainer`, run or resume), and :func:`ship_mixer`, their one shipping step. Shared by every task
on the composer dataset: :func:`composer_splits` (train/val by song, the val hold-out of a dataset without val
songs, the one sample rate), :func:`composer_model_args` (``sample_rate`` from the data),
:func:`composer_identity` (the run's dataset identity) and :func:`read_crop` / :func:`read_excerpt_crop`
(a crop of stem files: zero past the ends, mono duplicated).
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from mixbridge.mel import LOG_MEL_FLOOR_DB, log_mel_spectrogram

from .data import TrainConfigError, load_recipe, recipe_defaults
from .trainer import Trainer

#: The loudness both mixes are normalised to before the MR-STFT, LUFS.
MIX_REF_LUFS = -23.0


class ComposerSplits(NamedTuple):
    """A composer dataset's training splits (:func:`composer_splits`); unpacks as ``ds, train, val, note, rate``."""

    ds: Any          #: the :class:`~mixbridge.plugins.datagen.composer.ComposerDataset`
    train: list      #: training excerpts
    val: list        #: validation excerpts
    note: str        #: where val comes from (the run's identity records it)
    rate: int        #: the one sample rate of all excerpts, Hz


def composer_splits(data: str | Path) -> ComposerSplits:
    """The train and val excerpts of composer dataset ``data``, split by song as the dataset fixes it.

    A dataset without val songs (a small development set) holds its last training song (by name) out for
    validation and says so in ``note``.

    Raises:
        TrainConfigError: fewer than 2 training or 1 validation excerpt, or excerpts at several sample rates.
        ComposerDatasetError: an incomplete or malformed dataset.
    """
    from mixbridge.plugins.datagen.composer import read_composer_dataset

    ds = read_composer_dataset(data)
    train, val = ds.split("train"), ds.split("val")
    note = "the dataset's val split"
    if not val and len({ex.lump for ex in train}) >= 2:
        held = sorted({ex.lump for ex in train})[-1]
        val, train = [ex for ex in train if ex.lump == held], [ex for ex in train if ex.lump != held]
        note = f"no val split: song {held} held out of the train split for validation"
    if len(train) < 2 or not val:
        raise TrainConfigError(f"{data}: the train split has {len(train)} excerpt(s) and val {len(val)}; "
                               "training needs at least 2 and 1 (build the dataset with more songs)")
    rates = sorted({int(ex.sample_rate) for ex in train + val})
    if len(rates) != 1:
        raise TrainConfigError(f"{data}: excerpts at several sample rates {rates} Hz; rebuild the dataset")
    return ComposerSplits(ds, train, val, note, rates[0])


def composer_model_args(model_args: Mapping[str, Any] | None, rate: int) -> dict[str, Any]:
    """A copy of ``model_args`` with ``sample_rate`` set to the dataset's ``rate`` (Hz).

    Raises:
        TrainConfigError: ``model_args`` names another ``sample_rate``.
    """
    args = dict(model_args or {})
    if args.get("sample_rate", rate) != rate:
        raise TrainConfigError(f"model_args.sample_rate = {args['sample_rate']} but the dataset is at {rate} Hz; "
                               "remove sample_rate from model_args")
    args["sample_rate"] = int(rate)
    return args


def composer_identity(data: str | Path, ds, train: list, val: list, note: str) -> dict[str, Any]:
    """The dataset identity a run records (and compares on resume) for composer dataset ``data``.

    ``{"root", "format", "version", "sample_rate", "train", "val", "val_source", "excerpts_sha256"}``: the
    counts of the splits actually used, ``note`` (:func:`composer_splits`) and the sha256 of the sorted
    ``id:split`` list of all excerpts. (Not :func:`.proxy.dataset_identity`, which identifies an effect dataset.)
    """
    listing = " ".join(sorted(f"{ex.id}:{ex.split}" for ex in ds.excerpts))
    return {"root": str(Path(data).resolve()), "format": ds.config.get("format"), "version": ds.config.get("version"),
            "sample_rate": int(train[0].sample_rate), "train": len(train), "val": len(val), "val_source": note,
            "excerpts_sha256": hashlib.sha256(listing.encode()).hexdigest()}


def read_crop(path: str | Path, start: int, n: int) -> np.ndarray:
    """Samples ``start .. start + n`` of a stem file as float32 ``[2, n]``: zero before sample 0 and past the end
    (``start`` may be negative), a mono file duplicated, channels past 2 dropped."""
    import soundfile as sf

    out = np.zeros((2, n), np.float32)
    lo, stop = max(int(start), 0), int(start) + int(n)
    if stop <= lo:
        return out
    data, _ = sf.read(path, start=lo, stop=stop, dtype="float32", always_2d=True)
    data = data.T if data.shape[1] >= 2 else np.repeat(data.T, 2, axis=0)
    out[:, lo - start:lo - start + data.shape[1]] = data[:2]
    return out


def read_excerpt_crop(excerpt, start: int, n: int) -> np.ndarray:
    """:func:`read_crop` of every stem of a composer excerpt: float32 ``[tracks, 2, n]`` (the stored stems)."""
    return np.stack([read_crop(excerpt.stems_dir / f, start, n) for f in excerpt.track_files])


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x [batch, tracks]`` over the tracks where ``mask`` is 1: ``[batch, 1]``."""
    return (x * mask).sum(dim=1, keepdim=True) / mask.sum(dim=1, keepdim=True).clamp(min=1.0)


def relative_db(gain_db: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``gain_db [batch, tracks]`` minus its mean over the valid tracks (0 on padded ones)."""
    return (gain_db - masked_mean(gain_db, mask)) * mask


def console_mix(audio: torch.Tensor, rel_gain_db: torch.Tensor, pan: torch.Tensor, mask: torch.Tensor,
                sample_rate: int) -> torch.Tensor:
    """The console's pre-master mix ``[batch, 2, samples]`` of ``audio [batch, tracks, C, samples]``.

    Each track's fader is ``rel_gain_db`` minus the batch item's loudest valid track (clamped to
    the fader's range), its pan ``pan``; padded tracks (mask 0) are muted. The mix is then
    normalised to :data:`MIX_REF_LUFS` (differentiable BS.1770-4).
    """
    from ..console import STRIP_PARAMS, render_strips, resolve_params
    from ..dmc import OUTPUT_PARAMS
    from ..dsp import integrated_lufs

    fp = OUTPUT_PARAMS[0][1]
    b, t, c, n = audio.shape
    top = torch.where(mask > 0, rel_gain_db, torch.full_like(rel_gain_db, -1e9)).amax(dim=1, keepdim=True)
    fader = torch.clamp(rel_gain_db - top.detach(), fp.min, fp.max)
    sp = resolve_params(STRIP_PARAMS, {"fader.fader_db": fader, "pan.pan": pan.clamp(-1.0, 1.0),
                                       "fader.mute": 1.0 - mask}, (b, t), audio.device, check=False)
    out, _ = render_strips(audio.reshape(b * t, c, n), sample_rate, {k: v.reshape(-1) for k, v in sp.items()})
    mix = out.reshape(b, t, 2, n).sum(dim=1)
    lufs = integrated_lufs(mix, sample_rate)
    return mix * (10.0 ** ((MIX_REF_LUFS - lufs) / 20.0)).to(mix.dtype)[:, None, None]


class ExcerptCrops:
    """Map-style dataset of crops of all tracks of composer excerpts (see the module docstring).

    Items: ``{"features" [tracks, n_mels, frames] float32, "audio" [tracks, 2, audio_samples] float32,
    "gain_db" [tracks], "pan" [tracks], "id"}``. A crop starts on a feature frame (a multiple of
    the model's ``hop_length``), so its features are the frames of the whole excerpt's
    :func:`~mixbridge.models.dmc.dmc_features` from that frame on -- exactly what the crop's own
    audio gives, computed once per excerpt and kept (about 1 MB an excerpt). ``audio`` is the
    centre ``audio_samples`` of the crop (0: none), read from the stem files on each access.
    ``set_epoch(e)`` re-seeds the random crops. With ``track_dropout`` p, each track of an
    excerpt with more than two is left out with probability p (seeded like the crops; at least
    two stay; the labels stay valid because the losses compare gains relative to the tracks present).
    """

    def __init__(self, excerpts: list, model, *, crop_s: float, random_crop: bool, seed: int,
                 audio_s: float = 0.0, track_dropout: float = 0.0) -> None:
        self.excerpts, self.model = list(excerpts), model
        self.crop = int(round(crop_s * model.sample_rate))
        if self.crop < model.n_fft:
            raise TrainConfigError(f"crop_s = {crop_s} s is shorter than one feature frame ({model.n_fft} samples)")
        self.crop_frames = 1 + (self.crop - model.n_fft) // model.hop_length
        self.audio_samples = min(int(round(audio_s * model.sample_rate)), self.crop)
        self.random_crop, self.seed, self.epoch = bool(random_crop), int(seed), 0
        if not 0.0 <= track_dropout < 1.0:
            raise TrainConfigError(f"track_dropout = {track_dropout} must be in [0, 1)")
        self.track_dropout = float(track_dropout)
        self._features: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.excerpts)

    def set_epoch(self, epoch: int) -> None:
        """Draw the crops of ``epoch`` (a pure function of ``(seed, epoch, index)``)."""
        self.epoch = int(epoch)

    def _excerpt_features(self, i: int) -> np.ndarray:
        if i not in self._features:
            audio = np.asarray(self.excerpts[i].load_stems(), dtype=np.float32)
            # the model reads the whole excerpt unwindowed: crops are cut from its frames
            self._features[i] = log_mel_spectrogram(audio.mean(axis=1), self.model.sample_rate,
                                                    n_fft=self.model.n_fft, hop_length=self.model.hop_length,
                                                    n_mels=self.model.n_mels)
        return self._features[i]

    def __getitem__(self, i: int) -> dict:
        ex = self.excerpts[i]
        feats = self._excerpt_features(i)
        total, want = feats.shape[-1], self.crop_frames
        if total <= want:
            f0 = 0
            crop = np.pad(feats, ((0, 0), (0, 0), (0, want - total)), constant_values=LOG_MEL_FLOOR_DB)
        else:
            f0 = (int(np.random.default_rng([self.seed, self.epoch, i]).integers(0, total - want + 1))
                  if self.random_crop else (total - want) // 2)
            crop = feats[..., f0:f0 + want]
        start = f0 * self.model.hop_length + (self.crop - self.audio_samples) // 2
        audio = (read_excerpt_crop(ex, start, self.audio_samples) if self.audio_samples
                 else np.zeros((feats.shape[0], 2, 0), np.float32))
        keep = np.arange(feats.shape[0])
        if self.track_dropout and keep.size > 2:
            drop = np.random.default_rng([self.seed, self.epoch, i, 1]).random(keep.size) < self.track_dropout
            if keep.size - drop.sum() >= 2:
                keep = keep[~drop]
        return {"features": np.ascontiguousarray(crop[keep]), "audio": np.ascontiguousarray(audio[keep]),
                "gain_db": np.asarray(ex.target_gain_db, dtype=np.float32)[keep],
                "pan": np.asarray(ex.target_pan, dtype=np.float32)[keep], "id": ex.id}


def collate_crops(items: list[dict], device: str = "cpu") -> dict[str, torch.Tensor]:
    """Pad the tracks of ``items`` to the most in the batch: ``features [B, T, M, F]``, ``audio [B, T, 2, n]``,
    ``gain_db``, ``pan`` and ``mask`` ``[B, T]`` (1 for real tracks), on ``device``."""
    t = max(it["audio"].shape[0] for it in items)
    b = len(items)
    m, f = items[0]["features"].shape[1:]
    n = items[0]["audio"].shape[-1]
    feats = np.zeros((b, t, m, f), np.float32)
    audio = np.zeros((b, t, 2, n), np.float32)
    gain, pan, mask = (np.zeros((b, t), np.float32) for _ in range(3))
    for j, it in enumerate(items):
        k = it["audio"].shape[0]
        feats[j, :k], audio[j, :k] = it["features"], it["audio"]
        gain[j, :k], pan[j, :k], mask[j, :k] = it["gain_db"], it["pan"], 1.0
    out = {"features": feats, "audio": audio, "gain_db": gain, "pan": pan, "mask": mask}
    return {k: torch.from_numpy(v).to(device) for k, v in out.items()}


class MixingTask:
    """The DMC trained on a composer dataset (a :class:`~.trainer.Task`; see the module docstring).

    Args:
        data: the composer dataset's folder.
        model_args: :class:`~mixbridge.models.dmc.DMC` keyword arguments (``sample_rate`` comes from the data).
        crop_s: crop length in seconds (the features read it all).
        stft_s: the centre part of the crop the MR-STFT compares, seconds (0: the whole crop); the
            crops carry only that audio, and none when ``stft_weight`` is 0.
        gain_weight, gain_scale_db, pan_weight, stft_weight: the loss (module docstring).
        track_dropout: the probability of leaving a track out of a training example (:class:`ExcerptCrops`).
        seed: initialisation and crop seed. device: ``cpu`` or ``cuda``.

    Raises:
        TrainConfigError: an empty train or val split, or ``model_args`` that contradict the data.
        ComposerDatasetError: an incomplete or malformed dataset.
    """

    model_name = "dmc"
    train_keys = ("loss", "gain", "pan", "stft")
    val_keys = ("loss", "gain", "pan", "stft", "level_rmse_db", "pan_mae")

    def __init__(self, data: str | Path, *, model_args: dict | None = None, crop_s: float = 4.0,
                 stft_s: float = 1.0, gain_weight: float = 1.0, gain_scale_db: float = 6.0, pan_weight: float = 1.0,
                 stft_weight: float = 0.1, track_dropout: float = 0.0, seed: int = 0, device: str = "cpu") -> None:
        from ..losses import sum_and_difference_mrstft_loss
        from ..registry import build_architecture

        ds, train, val, self.val_note, rate = composer_splits(data)
        args = composer_model_args(model_args, rate)
        if not crop_s > 0 or stft_s < 0 or gain_scale_db <= 0:
            raise TrainConfigError(f"crop_s = {crop_s}, stft_s = {stft_s} and gain_scale_db = {gain_scale_db} "
                                   "must be positive (stft_s may be 0)")
        torch.manual_seed(seed)
        self.model = build_architecture("dmc", args)
        self.forward_model: Any = self.model
        self.sample_rate, self.device = rate, device
        audio_s = (stft_s or crop_s) if stft_weight else 0.0
        self.train_data = ExcerptCrops(train, self.model, crop_s=crop_s, random_crop=True, seed=seed, audio_s=audio_s,
                                       track_dropout=track_dropout)
        self.val_data = ExcerptCrops(val, self.model, crop_s=crop_s, random_crop=False, seed=seed, audio_s=audio_s)
        self.identity = composer_identity(data, ds, train, val, self.val_note)
        self.weights = {"gain": float(gain_weight), "pan": float(pan_weight), "stft": float(stft_weight)}
        self.gain_scale_db = float(gain_scale_db)
        self.stft = sum_and_difference_mrstft_loss().to(device)

    def collate(self, items: list[dict]) -> dict[str, torch.Tensor]:
        """:func:`collate_crops` on the task's device."""
        return collate_crops(items, self.device)

    def predict(self, batch: dict[str, torch.Tensor], model=None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(gain_db, pan)`` ``[B, T]`` in real units from the network's normalised output."""
        from ..console import denormalise
        from ..dmc import OUTPUT_PARAMS

        u = (model or self.forward_model)(batch["features"], batch["mask"])
        vals = denormalise(OUTPUT_PARAMS, u, check=False)
        return vals["fader.fader_db"].to(u.dtype), vals["pan.pan"].to(u.dtype)

    def losses(self, batch: dict[str, torch.Tensor], model=None) -> dict[str, torch.Tensor]:
        """``{"loss", "gain", "pan", "stft", "gain_err_db" [B, T]}`` of a batch (tensors with gradients)."""
        mask = batch["mask"]
        gain_db, pan = self.predict(batch, model)
        err = relative_db(gain_db, mask) - relative_db(batch["gain_db"], mask)
        count = mask.sum().clamp(min=1.0)
        gain_term = (err.abs() * mask).sum() / count / self.gain_scale_db
        pan_term = ((pan - batch["pan"]).abs() * mask).sum() / count
        stft = gain_term.new_zeros(())
        if self.weights["stft"]:
            audio = batch["audio"]   # the centre stft_s of each crop (ExcerptCrops)
            pred = console_mix(audio, relative_db(gain_db, mask), pan, mask, self.sample_rate)
            with torch.no_grad():
                target = console_mix(audio, relative_db(batch["gain_db"], mask), batch["pan"], mask, self.sample_rate)
            stft = self.stft(pred, target)
        w = self.weights
        loss = w["gain"] * gain_term + w["pan"] * pan_term + w["stft"] * stft
        return {"loss": loss, "gain": gain_term, "pan": pan_term, "stft": stft, "gain_err_db": err.detach()}

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Training losses of a batch (``loss`` first; no backward)."""
        out = self.losses(batch)
        return {k: out[k] for k in self.train_keys}

    def validate(self, batches: Iterable[dict[str, torch.Tensor]]) -> dict[str, float]:
        """Example-weighted means of the losses, ``level_rmse_db`` and ``pan_mae`` over all valid tracks."""
        sums = dict.fromkeys(("loss", "gain", "pan", "stft"), 0.0)
        sq = ab = tracks = 0.0
        n = 0
        for batch in batches:
            with torch.no_grad():
                out = self.losses(batch, self.model)
                gain_db, pan = self.predict(batch, self.model)
            b = batch["mask"].shape[0]
            for k in sums:
                sums[k] += float(out[k]) * b
            mask = batch["mask"]
            sq += float((out["gain_err_db"] ** 2 * mask).sum())
            ab += float(((pan - batch["pan"]).abs() * mask).sum())
            tracks += float(mask.sum())
            n += b
        figures = {k: v / max(n, 1) for k, v in sums.items()}
        return figures | {"level_rmse_db": float(np.sqrt(sq / max(tracks, 1.0))), "pan_mae": ab / max(tracks, 1.0)}


class SplitTrainer(Trainer):
    """A :class:`~.trainer.Trainer` that trains on all of ``task.train_data`` and validates on all of
    ``task.val_data`` (a dataset's own split, e.g. by song) instead of its seeded split of one dataset.

    Same arguments as the trainer, without ``val_fraction``.
    """

    def __init__(self, task, out_dir, *, epoch_examples: int | None = None, **kwargs: Any) -> None:
        if len(task.train_data) < 2 or len(task.val_data) < 1:
            raise TrainConfigError(f"{len(task.train_data)} training and {len(task.val_data)} validation "
                                   "examples; training needs at least 2 and validation 1")
        super().__init__(task, out_dir, epoch_examples=epoch_examples, val_fraction=0.0, **kwargs)
        self.train_idx, self.val_idx = list(range(len(task.train_data))), list(range(len(task.val_data)))
        self.per_epoch = int(epoch_examples or len(self.train_idx))


#: The :class:`SplitTrainer` keyword arguments a ``train_*`` entry point passes through unchanged.
TRAINER_KEYS = ("batch_size", "seed", "epoch_examples", "learning_rate", "lr_factor", "lr_patience",
                "early_stop_patience", "max_epochs", "max_steps", "max_minutes", "resume", "progress")


def run_split_training(make_task: Callable[[str], Any], out_dir: str | Path, settings: Mapping[str, Any],
                       recipe_keys: Iterable[str]) -> dict:
    """Train (or, with ``settings["resume"]``, resume) a task on its own train/val splits: the one body of
    :func:`train_mixer`, :func:`~.mastering.train_master` and :func:`mixbridge.models.master_unet.train_unet`.

    Args:
        make_task: ``device -> task`` (the process group's device: ``cpu`` or this rank's ``cuda:N``), with
            ``train_data`` and ``val_data`` (:class:`SplitTrainer`).
        out_dir: the run folder (created; with ``resume`` it must hold ``last``).
        settings: the entry point's keyword arguments (its ``locals()`` on entry): ``num_threads``,
            ``device``, ``model_args`` and :data:`TRAINER_KEYS`.
        recipe_keys: the keys of ``settings`` that make the run's recipe (its ``default_config()``), compared
            on resume; ``model_args`` is recorded as a dict (``{}`` for ``None``).

    Returns:
        :meth:`~.trainer.Trainer.run`'s summary.

    Raises:
        TrainConfigError: ``num_threads`` not a positive integer, CUDA asked for but absent, a run folder
            conflict or a resumed run whose recipe differs; and what ``make_task`` raises.
    """
    from . import distributed

    keys = set(recipe_keys)
    recipe = {k: v for k, v in settings.items() if k in keys}
    recipe["model_args"] = dict(settings.get("model_args") or {})
    num_threads = settings["num_threads"]
    if int(num_threads) != num_threads or num_threads < 1:
        raise TrainConfigError(f"num_threads = {num_threads!r} must be a positive integer")
    world = distributed.setup(settings["device"])
    torch.set_num_threads(int(num_threads))
    task = make_task(world.device)
    trainer = SplitTrainer(task, out_dir, recipe=recipe, world=world, **{k: settings[k] for k in TRAINER_KEYS})
    return trainer.run()


# --------------------------------------------------------------------------- entry point
def train_mixer(data: str | Path, out_dir: str | Path, *,
                model_args: dict | None = None,
                batch_size: int = 8,
                crop_s: float = 4.0,
                stft_s: float = 1.0,
                learning_rate: float = 1e-3,
                lr_factor: float = 0.5,
                lr_patience: int = 3,
                early_stop_patience: int = 10,
                max_epochs: int = 500,
                epoch_examples: int | None = None,
                gain_weight: float = 1.0,
                gain_scale_db: float = 6.0,
                pan_weight: float = 1.0,
                stft_weight: float = 0.1,
                track_dropout: float = 0.0,
                seed: int = 0,
                num_threads: int = 1,
                max_minutes: float | None = None,
                max_steps: int | None = None,
                device: str = "cpu",
                resume: bool = False,
                progress: bool = True) -> dict:
    """Train the DMC on composer dataset ``data``; checkpoints and log.csv go to ``out_dir``.

    Args:
        data: a composer dataset (``mixbridge datagen composer``); train split for training,
            val split for validation.
        out_dir: the run folder (created; with ``resume`` it must hold ``last``).
        model_args: :class:`~mixbridge.models.dmc.DMC` constructor arguments.
        batch_size: excerpts per step. crop_s, stft_s: see :class:`MixingTask`.
        learning_rate, lr_factor, lr_patience, early_stop_patience, max_epochs: the trainer's recipe
            (Adam, plateau halving and early stopping on the validation loss).
        epoch_examples: examples between validations (default: the train split).
        gain_weight, gain_scale_db, pan_weight, stft_weight: the loss weights.
        track_dropout: probability of leaving a track out of a training example (augmentation).
        seed: initialisation, crop and order seed. num_threads: torch CPU threads.
        max_minutes, max_steps: budgets (wall clock of this call; optimizer steps in all).
        device: ``cpu`` or ``cuda``. resume: continue ``out_dir/last``. progress: tqdm bars.

    Returns:
        The trainer's summary (``stopped``, ``epoch``, ``step``, ``examples``, ``train_seconds``,
        ``best_val_loss``, ``examples_per_s``, ``best``, ``last``).

    Raises:
        TrainConfigError: a bad value, a run folder conflict, a dataset without train/val excerpts,
            or CUDA asked for but absent.
        ComposerDatasetError: an incomplete dataset. CheckpointError: a corrupted ``last``.
    """
    settings = dict(locals())
    return run_split_training(lambda task_device: MixingTask(
        data, model_args=model_args, crop_s=crop_s, stft_s=stft_s, gain_weight=gain_weight,
        gain_scale_db=gain_scale_db, pan_weight=pan_weight, stft_weight=stft_weight, track_dropout=track_dropout,
        seed=seed, device=task_device), out_dir, settings, default_config())


def default_config() -> dict[str, Any]:
    """The keyword arguments of :func:`train_mixer` with their defaults (the recipe)."""
    return recipe_defaults(train_mixer)


def load_mixer_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML or TOML config of :func:`train_mixer` keyword arguments (:func:`.data.load_recipe`).

    Raises:
        TrainConfigError: unreadable or invalid file, or unknown keys (the known ones are listed).
    """
    return load_recipe(path, train_mixer)


def ship_mixer(run_dir: str | Path, dest: str | Path, *, description: str = "",
               extra: Mapping[str, Any] | None = None, weights_dtype: str | None = None) -> Path:
    """Copy a run's best checkpoint to ``dest`` (``NAME.json`` + ``NAME.safetensors``, e.g. ``models/mixers/dmc``).

    The copy has no optimizer state; its record's ``extra`` holds the recipe, the dataset identity
    (its root reduced to the folder name) and a summary of ``log.csv`` (epochs, steps, examples,
    training seconds, the best epoch's validation figures), then the keys of ``extra`` (a model's own
    settings, e.g. :func:`~.mastering.ship_master`'s ``inference``). Every trained-on-splits model ships
    through here (``ship_master``, :func:`mixbridge.models.master_unet.ship_unet`). ``weights_dtype``:
    see :func:`~mixbridge.models.checkpoint.save_checkpoint` (``"float16"`` for the large ``dae``).

    Raises:
        TrainConfigError: no best checkpoint or log in ``run_dir``.
        CheckpointError: a corrupted checkpoint.
    """
    import csv
    import json

    from ..checkpoint import load_checkpoint, save_checkpoint

    run_dir = Path(run_dir)
    best, log_path = run_dir / "best.json", run_dir / "log.csv"
    if not best.exists() or not log_path.exists():
        raise TrainConfigError(f"{run_dir}: no best.json / log.csv; train first (mixbridge train mixer)")
    model, record = load_checkpoint(best)
    with open(log_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise TrainConfigError(f"{run_dir}: log.csv has no epoch yet")
    saved = json.loads((run_dir / "train_config.json").read_text())
    dataset = dict(saved["dataset"])
    dataset["root"] = Path(dataset["root"]).name
    top = min(rows, key=lambda r: float(r["val_loss"]))
    summary = {"epochs_logged": len(rows), "steps": int(rows[-1]["step"]), "examples": int(rows[-1]["examples"]),
               "train_seconds": float(rows[-1]["train_seconds"]), "best_epoch": int(top["epoch"]),
               "best_row": {k: float(v) for k, v in top.items() if k.startswith("val_")}}
    shipped = {"train_config": saved["recipe"], "dataset": dataset, "training": summary,
               "model_name": saved.get("model_name"), "description": description} | dict(extra or {})
    return save_checkpoint(model, dest, model_name=record.get("model_name"), progress=record["progress"],
                           extra=shipped, weights_dtype=weights_dtype)
