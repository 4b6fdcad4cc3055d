"""The direct mixers as trainer tasks: ``dae`` (:mod:`mixbridge.models.dae`) and ``mixwaveunet``
(:mod:`mixbridge.models.mixwaveunet`) on the composer dataset.

Both read a composer dataset (:func:`mixbridge.plugins.datagen.composer.read_composer_dataset`), train on
its ``train`` split and validate on its ``val`` split (by song, the dataset's fixed split), and run through
:func:`~.mixing.run_split_training` like the DMC. The level convention is the direct mixers': every stem
is brought to :data:`~mixbridge.models.direct_mixers.COMMON_LUFS` by the trim ``COMMON_LUFS - L_i``, with
``L_i`` the stem's BS.1770-4 loudness as the excerpt manifest records it (``target.input_lufs``).

The target of track ``i`` is that track as it sits in the composer's mix: the trimmed stem through the
console's trim and fader stages (:mod:`mixbridge.plugins.console`: trim, fader with its automation, pan
law) set from ``target/session.json`` (whose EQ, compressor and send are at their identity; checked), so
the sum of the targets is ``target/mix.wav`` times the trim. Crops keep their start sample, so automated
faders (CC7 ramps) are read at the right time.

* :class:`DAETask`: an example is one (excerpt, track) pair: ``frames`` STFT frames of the track (random
  start for training, the centre for validation), pitch-shifted for training by a semitone count drawn
  from -4..+4 in 0.5 steps (pedalboard's ``PitchShift`` on the input; the target is rendered from the
  shifted input); loss: MAE of the L/R magnitude frames (the paper's). Validation: the same MAE.
* :class:`WaveUNetTask`: an example is ``crop_s`` seconds of all tracks of an excerpt in the 8 slots
  (:func:`mixbridge.models.mixwaveunet.slot_input`); loss: ``l1_weight * L1(waveform) + stft_weight *
  MR-STFT`` (auraloss, :func:`mixbridge.models.losses.mrstft_loss`). Validation: the same terms.

:func:`train_dae` and :func:`train_mixwaveunet` are the library entry points behind ``mixbridge train dae``
and ``mixbridge train mixwaveunet`` (:mod:`mixbridge.models.direct_cli`); their keyword arguments are the
whole recipe (configs ``models/configs/dae.yaml``, ``mixwaveunet.yaml``).
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..direct_mixers import role_index
from .data import TrainConfigError, load_recipe, recipe_defaults
from .mixing import (
    composer_identity,
    composer_model_args,
    composer_splits,
    read_crop,
    read_excerpt_crop,
    run_split_training,
)
from .trainer import example_weighted_means

#: Pitch-shift augmentation of the DAE: -4..+4 semitones in 50-cent steps (17 values, 0 included).
PITCH_STEPS_SEMITONES = tuple(np.arange(-8, 9) * 0.5)
#: Extra samples read on each side of a crop before a pitch shift (its edge effects fall there).
SHIFT_MARGIN = 4096


class TargetTracks:
    """The composer's target tracks of excerpts, read once each: ``render(ex, k, audio, start)`` is track
    ``k`` of ``ex`` as it sits in the target mix (module docstring), for ``audio [2, n]`` starting at
    sample ``start`` of the excerpt.

    Raises:
        TrainConfigError: (on first use of an excerpt) a target track with EQ, compression or a send.
    """

    def __init__(self) -> None:
        self._sessions: dict[str, Any] = {}

    def track(self, ex, k: int):
        """Track ``k`` of ``ex``'s ``target/session.json``.

        Raises:
            TrainConfigError: a target track with EQ, compression, a send or other automation.
            SessionError: an unreadable or invalid ``target/session.json``.
        """
        if ex.id not in self._sessions:
            from mixbridge.session import load

            s = load(ex.target_session_path)
            for t in s.tracks:
                p = t.params
                if (any(v for k2, v in p["eq"].items() if k2.endswith("gain_db")) or p["compressor"]["ratio"] != 1.0
                        or p["send"]["send_db"] > -80.0 or set(t.automation) - {"fader.fader_db", "pan.pan",
                                                                                 "trim.gain_db"}):
                    raise TrainConfigError(f"{ex.target_session_path}: track {t.name} uses EQ, compression, a send "
                                           "or other automation; the direct mixers' targets take trim, fader and "
                                           "pan only (rebuild the dataset with this mixbridge)")
            self._sessions[ex.id] = s
        return self._sessions[ex.id].tracks[k]

    def render(self, ex, k: int, audio: np.ndarray, start: int) -> np.ndarray:
        """``[2, n]`` float32: ``audio`` through track ``k``'s trim and fader stages at excerpt sample ``start``."""
        from mixbridge.plugins.console import fader_stage, trim_stage

        track = self.track(ex, k)
        out, _ = fader_stage(track, trim_stage(track, audio, ex.sample_rate, start), ex.sample_rate, start)
        return out


def stem_trim(ex, k: int) -> float:
    """The gain (linear) that brings stem ``k`` of ``ex`` to :data:`COMMON_LUFS`: ``db_to_gain`` of
    :func:`mixbridge.models.dmc_mixer.trim_db` of its manifest loudness (``target.input_lufs``)."""
    from mixbridge.loudness import db_to_gain

    from ..dmc_mixer import trim_db

    return float(db_to_gain(trim_db(float(ex.targets[k].get("input_lufs", ex.input_lufs)))))


def excerpt_samples(ex) -> int:
    """The length of ``ex``'s stems in samples (its manifest's ``samples``, else the first stem's header)."""
    n = ex.stems_manifest.get("samples")
    if n:
        return int(n)
    import soundfile as sf

    return int(sf.info(str(ex.stems_dir / ex.track_files[0])).frames)


# --------------------------------------------------------------------------------------------- DAE
class TrackFrames:
    """Map-style dataset of (excerpt, track) pairs for the DAE (module docstring).

    Items: ``{"mag" [frames + 1, bins], "target" [frames + 1, 2, bins], "group" int}`` float32 (amplitude
    units, :func:`mixbridge.models.dae.stft_frames` of a crop of ``frames * hop`` samples), the crop's
    ``start`` sample and its pitch shift ``semitones``.
    """

    def __init__(self, excerpts: list, *, frames: int, n_fft: int, hop_length: int, random_crop: bool,
                 pitch_shift: bool, seed: int) -> None:
        self.pairs = [(ex, k) for ex in excerpts for k in range(len(ex.track_files))]
        self.frames, self.n_fft, self.hop = int(frames), int(n_fft), int(hop_length)
        self.random_crop, self.pitch_shift, self.seed, self.epoch = bool(random_crop), bool(pitch_shift), int(seed), 0
        self.targets = TargetTracks()

    def __len__(self) -> int:
        return len(self.pairs)

    def set_epoch(self, epoch: int) -> None:
        """Draw the crops and shifts of ``epoch`` (a pure function of ``(seed, epoch, index)``)."""
        self.epoch = int(epoch)

    def __getitem__(self, i: int) -> dict:
        from ..dae import stft_frames

        ex, k = self.pairs[i]
        n = self.frames * self.hop
        total = excerpt_samples(ex)
        rng = np.random.default_rng([self.seed, self.epoch, i])
        start = int(rng.integers(0, max(total - n, 0) + 1)) if self.random_crop else max(total - n, 0) // 2
        semis = float(rng.choice(PITCH_STEPS_SEMITONES)) if self.pitch_shift else 0.0
        margin = SHIFT_MARGIN if semis else 0
        x = read_crop(ex.stems_dir / ex.track_files[k], start - margin, n + 2 * margin) * np.float32(stem_trim(ex, k))
        if semis:
            import pedalboard

            x = pedalboard.PitchShift(semitones=semis).process(x, ex.sample_rate)[:, margin:margin + n]
            x = np.ascontiguousarray(x, dtype=np.float32)
        y = self.targets.render(ex, k, x, start)
        spec_in = stft_frames(torch.from_numpy(x.mean(axis=0)), self.n_fft, self.hop).abs().T
        spec_out = stft_frames(torch.from_numpy(np.ascontiguousarray(y)), self.n_fft, self.hop).abs().permute(2, 0, 1)
        return {"mag": spec_in.float(), "target": spec_out.float(), "group": role_index(ex.roles[k]), "start": start,
                "semitones": semis}


class DAETask:
    """The DAE on a composer dataset (a :class:`~.trainer.Task`; module docstring).

    Args:
        data: the composer dataset's folder. model_args: :class:`~mixbridge.models.dae.DAE` arguments
            (``sample_rate`` comes from the data). frames: STFT frames per example (plus one).
        pitch_shift: the augmentation on training examples. seed: initialisation and crop seed. device: cpu/cuda.

    Raises:
        TrainConfigError: an empty split, several rates, model_args that contradict the data.
    """

    model_name = "dae"
    train_keys = ("loss",)
    val_keys = ("loss",)

    def __init__(self, data: str | Path, *, model_args: dict | None = None, frames: int = 16, pitch_shift: bool = True,
                 seed: int = 0, device: str = "cpu") -> None:
        from ..registry import build_architecture

        ds, train, val, note, rate = composer_splits(data)
        args = composer_model_args(model_args, rate)
        if int(frames) != frames or frames < 1:
            raise TrainConfigError(f"frames = {frames} must be a positive integer")
        torch.manual_seed(seed)
        self.model = build_architecture("dae", args)
        self.forward_model: Any = self.model
        self.device = device
        kw = dict(frames=frames, n_fft=self.model.n_fft, hop_length=self.model.hop_length, seed=seed)
        self.train_data = TrackFrames(train, random_crop=True, pitch_shift=pitch_shift, **kw)
        self.val_data = TrackFrames(val, random_crop=False, pitch_shift=False, **kw)
        self.identity = composer_identity(data, ds, train, val, note)

    def collate(self, items: list[dict]) -> dict[str, torch.Tensor]:
        """The items' frames stacked: ``mag [N, bins]``, ``target [N, 2, bins]``, ``group [N]`` on the device."""
        mag = torch.cat([it["mag"] for it in items])
        target = torch.cat([it["target"] for it in items])
        group = torch.cat([torch.full((it["mag"].shape[0],), it["group"], dtype=torch.long) for it in items])
        return {"mag": mag.to(self.device), "target": target.to(self.device), "group": group.to(self.device)}

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``{"loss"}``: the MAE of the L/R magnitude frames (amplitude units)."""
        pred = self.forward_model(batch["mag"], batch["group"])
        return {"loss": (pred - batch["target"]).abs().mean()}

    def validate(self, batches: Iterable[dict[str, torch.Tensor]]) -> dict[str, float]:
        """The frame-weighted MAE over the val split."""
        total = count = 0.0
        for batch in batches:
            with torch.no_grad():
                err = (self.model(batch["mag"], batch["group"]) - batch["target"]).abs()
            total += float(err.sum())
            count += err.numel()
        return {"loss": total / max(count, 1.0)}


def train_dae(data: str | Path, out_dir: str | Path, *,
              model_args: dict | None = None,
              batch_size: int = 16,
              frames: int = 16,
              pitch_shift: bool = True,
              learning_rate: float = 1e-4,
              lr_factor: float = 0.5,
              lr_patience: int = 3,
              early_stop_patience: int = 10,
              max_epochs: int = 500,
              epoch_examples: int | None = None,
              seed: int = 0,
              num_threads: int = 1,
              max_minutes: float | None = None,
              max_steps: int | None = None,
              device: str = "cpu",
              resume: bool = False,
              progress: bool = True) -> dict:
    """Train the DAE on composer dataset ``data`` (train split; val split for validation) into ``out_dir``.

    Args:
        model_args: :class:`~mixbridge.models.dae.DAE` arguments. batch_size: (excerpt, track) pairs per step.
        frames, pitch_shift: see :class:`DAETask`. The rest: the trainer's recipe and budgets, as
            :func:`~.mixing.train_mixer`'s.

    Returns:
        The trainer's summary.

    Raises:
        TrainConfigError: a bad value or run folder; ComposerDatasetError: an incomplete dataset.
    """
    settings = dict(locals())
    return run_split_training(lambda dev: DAETask(data, model_args=model_args, frames=frames, pitch_shift=pitch_shift,
                                                  seed=seed, device=dev), out_dir, settings, recipe_defaults(train_dae))


# --------------------------------------------------------------------------------------------- Mix-Wave-U-Net
class SlotCrops:
    """Map-style dataset of excerpt crops for the Mix-Wave-U-Net: ``{"x" [16, n], "y" [2, n]}`` float32 and the
    crop's ``start`` sample in the excerpt."""

    def __init__(self, excerpts: list, *, crop_s: float, random_crop: bool, seed: int) -> None:
        self.excerpts = list(excerpts)
        self.crop = int(round(crop_s * excerpts[0].sample_rate))
        self.random_crop, self.seed, self.epoch = bool(random_crop), int(seed), 0
        self.targets = TargetTracks()

    def __len__(self) -> int:
        return len(self.excerpts)

    def set_epoch(self, epoch: int) -> None:
        """Draw the crops of ``epoch``."""
        self.epoch = int(epoch)

    def __getitem__(self, i: int) -> dict:
        from ..mixwaveunet import slot_input

        ex, n = self.excerpts[i], self.crop
        total = excerpt_samples(ex)
        start = (int(np.random.default_rng([self.seed, self.epoch, i]).integers(0, max(total - n, 0) + 1))
                 if self.random_crop else max(total - n, 0) // 2)
        trims = np.array([stem_trim(ex, k) for k in range(len(ex.track_files))], np.float32)
        tracks = read_excerpt_crop(ex, start, n) * trims[:, None, None]
        y = sum(self.targets.render(ex, k, tracks[k], start) for k in range(len(tracks)))
        return {"x": torch.from_numpy(slot_input(tracks, list(ex.roles))), "y": torch.from_numpy(y), "start": start}


class WaveUNetTask:
    """The Mix-Wave-U-Net on a composer dataset (a :class:`~.trainer.Task`; module docstring).

    Args:
        data: the dataset folder. model_args: :class:`~mixbridge.models.mixwaveunet.MixWaveUNet` arguments.
        crop_s: example length, s. l1_weight, stft_weight: the loss. seed, device: as :class:`DAETask`.

    Raises:
        TrainConfigError: as :class:`DAETask`; a crop shorter than 0.1 s.
    """

    model_name = "mixwaveunet"
    train_keys = ("loss", "l1", "stft")
    val_keys = ("loss", "l1", "stft")

    def __init__(self, data: str | Path, *, model_args: dict | None = None, crop_s: float = 0.75,
                 l1_weight: float = 1.0, stft_weight: float = 0.1, seed: int = 0, device: str = "cpu") -> None:
        from ..losses import mrstft_loss
        from ..registry import build_architecture

        ds, train, val, note, rate = composer_splits(data)
        args = composer_model_args(model_args, rate)
        if not crop_s >= 0.1:
            raise TrainConfigError(f"crop_s = {crop_s} s must be at least 0.1 s")
        torch.manual_seed(seed)
        self.model = build_architecture("mixwaveunet", args)
        self.forward_model: Any = self.model
        self.device = device
        self.train_data = SlotCrops(train, crop_s=crop_s, random_crop=True, seed=seed)
        self.val_data = SlotCrops(val, crop_s=crop_s, random_crop=False, seed=seed)
        self.identity = composer_identity(data, ds, train, val, note)
        self.weights = {"l1": float(l1_weight), "stft": float(stft_weight)}
        self.stft = mrstft_loss().to(device)

    def collate(self, items: list[dict]) -> dict[str, torch.Tensor]:
        """``x [B, 16, n]`` and ``y [B, 2, n]`` on the device."""
        return {"x": torch.stack([it["x"] for it in items]).to(self.device),
                "y": torch.stack([it["y"] for it in items]).to(self.device)}

    def _losses(self, model, batch) -> dict[str, torch.Tensor]:
        pred = model(batch["x"])
        l1 = (pred - batch["y"]).abs().mean()
        stft = self.stft(pred, batch["y"]) if self.weights["stft"] else l1.new_zeros(())
        return {"loss": self.weights["l1"] * l1 + self.weights["stft"] * stft, "l1": l1, "stft": stft}

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``{"loss", "l1", "stft"}`` of a batch (with gradients)."""
        return self._losses(self.forward_model, batch)

    def validate(self, batches: Iterable[dict[str, torch.Tensor]]) -> dict[str, float]:
        """Example-weighted means of the loss terms over the val split."""
        return example_weighted_means(batches, lambda b: self._losses(self.model, b), self.val_keys,
                                      lambda b: b["x"].shape[0])


def train_mixwaveunet(data: str | Path, out_dir: str | Path, *,
                      model_args: dict | None = None,
                      batch_size: int = 4,
                      crop_s: float = 0.75,
                      l1_weight: float = 1.0,
                      stft_weight: float = 0.1,
                      learning_rate: float = 1e-3,
                      lr_factor: float = 0.5,
                      lr_patience: int = 3,
                      early_stop_patience: int = 10,
                      max_epochs: int = 500,
                      epoch_examples: int | None = None,
                      seed: int = 0,
                      num_threads: int = 1,
                      max_minutes: float | None = None,
                      max_steps: int | None = None,
                      device: str = "cpu",
                      resume: bool = False,
                      progress: bool = True) -> dict:
    """Train the Mix-Wave-U-Net on composer dataset ``data`` into ``out_dir`` (see :class:`WaveUNetTask`;
    the other arguments as :func:`train_dae`'s).

    Returns:
        The trainer's summary.

    Raises:
        TrainConfigError: a bad value or run folder; ComposerDatasetError: an incomplete dataset.
    """
    settings = dict(locals())
    return run_split_training(lambda dev: WaveUNetTask(data, model_args=model_args, crop_s=crop_s, l1_weight=l1_weight,
                                                       stft_weight=stft_weight, seed=seed, device=dev),
                              out_dir, settings, recipe_defaults(train_mixwaveunet))


def load_dae_config(path: str | Path) -> dict[str, Any]:
    """A YAML/TOML config of :func:`train_dae` keyword arguments (:func:`.data.load_recipe`)."""
    return load_recipe(path, train_dae)


def load_mixwaveunet_config(path: str | Path) -> dict[str, Any]:
    """A YAML/TOML config of :func:`train_mixwaveunet` keyword arguments (:func:`.data.load_recipe`)."""
    return load_recipe(path, train_mixwaveunet)
