"""The seed's mastering baseline (issue 13 item 5): a small mel U-Net with Griffin-Lim reconstruction.

Khoo's demastering thesis (DESIGN.md §2) mapped the mel spectrogram of a degraded master to the mel
spectrogram of the finished one with a U-Net (plus an LSTM) and rebuilt audio with Griffin-Lim. This
module is that design at < 1 M parameters, trained on the same pre-master pairs as the learned
master, so the benchmark (``scripts/bench_mastering.py``) can show what predicting a spectrogram
costs against predicting master-chain parameters rendered by real DSP.

* **Features** (:func:`mel_db`): per channel, ``torch.stft`` (``n_fft`` 2048, hop 512, periodic Hann,
  centred), power ``|X|^2``, the HTK-mel filters of :func:`mixbridge.mel.mel_filterbank`
  (``n_mels`` 64, 0 Hz .. Nyquist), ``10 log10(max(mel, 1e-10))``.
* **Network** (:class:`MelUNet`): the input mel in dB minus its mean over bands and frames (so the net
  sees the balance, not the level) -> a 2-D U-Net over (mel, frame): three levels of two 3x3
  convolutions with PReLU (``channels`` 16/32/64), average pooling down, nearest upsampling and
  skip concatenation up; at the bottleneck a bidirectional LSTM over frames (Khoo's recurrent
  part) adds its projection residually; a zero-initialised 1x1 head gives the change in dB, added to
  the input (so the untrained model is the identity). The left and right channels are run as two
  items of one batch (the same network).
* **Loss**: L1 between the predicted and the target master's mel dB, each minus its own mean
  (the level is the master bus's job; a constant offset costs nothing), plus ``ltas_weight`` times the L1
  of the same difference averaged over the frames (the crop's band balance, what the tonal error scores).
* **Reconstruction** (:func:`griffin_lim`): the predicted mel power is spread back to the STFT bins
  through the filterbank's transpose normalised by each filter's area (a flat spectrum maps to
  itself), its square root is the magnitude, and fast Griffin-Lim (Perraudin, Balazs and
  Søndergaard, "A fast Griffin-Lim algorithm", WASPAA 2013; momentum 0.99, as torchaudio) runs
  ``griffin_lim_iters`` iterations of ``torch.stft``/``torch.istft`` from the *pre-master's* phase (the
  most favourable start this baseline has; Khoo started from random phase).

The output's level is arbitrary: the benchmark (and :meth:`UNetMasterer.master`) brings it to the
target through the one master bus with a neutral EQ and compressor (its gain and true-peak limiter),
as every method in the table.

Training: ``mixbridge train master-unet --data PREMASTER_DIR -o RUN_DIR`` (:func:`train_unet`; the
project's :class:`~mixbridge.models.training.trainer.Trainer` through
:class:`~mixbridge.models.training.mixing.SplitTrainer`, on the dataset's ``train`` split, validating
on its ``val`` split, by album). The shipped weights are ``models/masterers/unet.{json,safetensors}``
with the card ``unet.md``; :func:`ship_unet` copies a run's best checkpoint there.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mixbridge.errors import AudioInputError
from mixbridge.mel import mel_filterbank

from .master_unet_cli import SHIPPED, add_unet_command
from .training.data import TrainConfigError, load_recipe, recipe_defaults

__all__ = ["ARCHITECTURE", "SHIPPED", "MelUNet", "PairCrops", "PremasterPair", "UNetMasterer", "UNetTask",
           "add_unet_command", "default_config", "griffin_lim", "load_unet_config", "neutral_master_params",
           "parameter_count", "premaster_pairs", "ship_unet", "train_unet"]

ARCHITECTURE = "master-unet"
#: Power floor before the log of the mel spectrogram (-100 dB).
MEL_POWER_FLOOR = 1e-10
#: Fast Griffin-Lim momentum (Perraudin et al. 2013; torchaudio's default).
GRIFFIN_LIM_MOMENTUM = 0.99
#: The U-Net pools twice by 2 in both axes: frames and bands are padded to a multiple of this.
POOL_MULTIPLE = 4


class _Block(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.PReLU(c_out),
                                 nn.Conv2d(c_out, c_out, 3, padding=1), nn.PReLU(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MelUNet(nn.Module):
    """Mel dB of a pre-master channel -> mel dB of its master (module docstring).

    Args:
        sample_rate: the audio rate it reads, Hz.
        n_fft, hop_length: the STFT, samples.
        n_mels: mel bands (a multiple of 4).
        channels: the three U-Net levels' widths.
        lstm_hidden: hidden size per direction of the bottleneck LSTM (0: none).
        griffin_lim_iters: Griffin-Lim iterations of :meth:`render`.

    Raises:
        TrainConfigError: a size that is not a positive integer, or ``n_mels`` not a multiple of 4.
    """

    architecture = ARCHITECTURE
    #: It predicts audio, not schema parameters.
    schema: tuple[str, ...] = ()
    param_names: list[str] = []
    receptive_field = None
    latency_samples = None
    #: Buffers (not saved): the mel filters ``[n_mels, bins]``, their area-normalised transpose, the window.
    filterbank: torch.Tensor
    spread: torch.Tensor
    window: torch.Tensor

    def __init__(self, *, sample_rate: int = 48000, n_fft: int = 2048, hop_length: int = 512, n_mels: int = 64,
                 channels: tuple[int, int, int] | list[int] = (16, 32, 64), lstm_hidden: int = 64,
                 griffin_lim_iters: int = 32) -> None:
        super().__init__()
        for key, v in (("sample_rate", sample_rate), ("n_fft", n_fft), ("hop_length", hop_length),
                       ("n_mels", n_mels), ("griffin_lim_iters", griffin_lim_iters), *(
                           (f"channels[{i}]", c) for i, c in enumerate(channels))):
            if int(v) != v or v < 1:
                raise TrainConfigError(f"master-unet: {key} = {v!r} must be a positive integer")
        if n_mels % POOL_MULTIPLE or len(channels) != 3:
            raise TrainConfigError(f"master-unet: n_mels = {n_mels} must be a multiple of {POOL_MULTIPLE} and "
                                   f"channels = {list(channels)} three widths")
        if int(lstm_hidden) != lstm_hidden or lstm_hidden < 0:
            raise TrainConfigError(f"master-unet: lstm_hidden = {lstm_hidden!r} must be an integer >= 0")
        self.sample_rate, self.n_fft, self.hop_length, self.n_mels = int(sample_rate), int(n_fft), int(hop_length), \
            int(n_mels)
        self.channels = tuple(int(c) for c in channels)
        self.lstm_hidden, self.griffin_lim_iters = int(lstm_hidden), int(griffin_lim_iters)
        c1, c2, c3 = self.channels
        self.enc1, self.enc2, self.enc3 = _Block(1, c1), _Block(c1, c2), _Block(c2, c3)
        self.dec2, self.dec1 = _Block(c3 + c2, c2), _Block(c2 + c1, c1)
        self.head = nn.Conv2d(c1, 1, 1)
        nn.init.zeros_(self.head.weight)
        if self.head.bias is not None:
            nn.init.zeros_(self.head.bias)
        bottleneck = c3 * (self.n_mels // POOL_MULTIPLE)
        if self.lstm_hidden:
            self.lstm_in = nn.Linear(bottleneck, 2 * self.lstm_hidden)
            self.lstm = nn.LSTM(2 * self.lstm_hidden, self.lstm_hidden, batch_first=True, bidirectional=True)
            self.lstm_out = nn.Linear(2 * self.lstm_hidden, bottleneck)
        fb = mel_filterbank(self.sample_rate, self.n_fft, self.n_mels)
        self.register_buffer("filterbank", torch.as_tensor(fb, dtype=torch.float32), persistent=False)
        area = fb.sum(axis=1, keepdims=True)
        self.register_buffer("spread", torch.as_tensor((fb / np.maximum(area, 1e-12)).T, dtype=torch.float32),
                             persistent=False)
        self.register_buffer("window", torch.hann_window(self.n_fft, periodic=True), persistent=False)

    def config(self) -> dict:
        """The constructor arguments (what a checkpoint records)."""
        return {"sample_rate": self.sample_rate, "n_fft": self.n_fft, "hop_length": self.hop_length,
                "n_mels": self.n_mels, "channels": list(self.channels), "lstm_hidden": self.lstm_hidden,
                "griffin_lim_iters": self.griffin_lim_iters}

    # --- spectra ---
    def stft(self, x: torch.Tensor) -> torch.Tensor:
        """Complex STFT ``[..., bins, frames]`` of ``x [..., samples]`` (centred, periodic Hann)."""
        lead = x.shape[:-1]
        spec = torch.stft(x.reshape(-1, x.shape[-1]), self.n_fft, self.hop_length, window=self.window,
                          center=True, return_complex=True)
        return spec.reshape(*lead, *spec.shape[-2:])

    def istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """Inverse of :meth:`stft`, ``[..., length]``."""
        lead = spec.shape[:-2]
        x = torch.istft(spec.reshape(-1, *spec.shape[-2:]), self.n_fft, self.hop_length, window=self.window,
                        center=True, length=length)
        return x.reshape(*lead, length)

    def mel_db(self, x: torch.Tensor) -> torch.Tensor:
        """Mel power in dB ``[..., n_mels, frames]`` of audio ``[..., samples]``."""
        power = self.stft(x).abs() ** 2
        return 10.0 * torch.log10(torch.clamp(self.filterbank @ power, min=MEL_POWER_FLOOR))

    # --- the network ---
    def forward(self, mel_db: torch.Tensor) -> torch.Tensor:
        """Predicted master mel dB ``[N, n_mels, frames]`` from pre-master mel dB ``[N, n_mels, frames]``."""
        n, m, f = mel_db.shape
        if m != self.n_mels:
            raise AudioInputError(f"master-unet: {m} mel bands in, the model has {self.n_mels}")
        offset = mel_db.mean(dim=(1, 2), keepdim=True)
        x = (mel_db - offset) / 20.0
        pad = (-f) % POOL_MULTIPLE
        x = nn.functional.pad(x, (0, pad), mode="replicate")[:, None]
        e1 = self.enc1(x)
        e2 = self.enc2(nn.functional.avg_pool2d(e1, 2))
        e3 = self.enc3(nn.functional.avg_pool2d(e2, 2))
        if self.lstm_hidden:
            b, c, mm, ff = e3.shape
            seq = e3.permute(0, 3, 1, 2).reshape(b, ff, c * mm)
            h, _ = self.lstm(self.lstm_in(seq))
            e3 = e3 + self.lstm_out(h).reshape(b, ff, c, mm).permute(0, 2, 3, 1)
        d2 = self.dec2(torch.cat([nn.functional.interpolate(e3, scale_factor=2.0, mode="nearest"), e2], dim=1))
        d1 = self.dec1(torch.cat([nn.functional.interpolate(d2, scale_factor=2.0, mode="nearest"), e1], dim=1))
        delta_db = 20.0 * self.head(d1)[:, 0, :, :f]
        return mel_db + delta_db

    # --- audio ---
    @torch.no_grad()
    def render(self, audio: np.ndarray) -> np.ndarray:
        """The master's audio float32 ``[channels, samples]`` (arbitrary level) of ``audio [channels, samples]``
        at the model's rate: predicted mel -> spread magnitude -> :func:`griffin_lim` from the input's phase."""
        x = torch.as_tensor(np.asarray(audio, dtype=np.float32))
        spec = self.stft(x)
        mel_in = 10.0 * torch.log10(torch.clamp(self.filterbank @ (spec.abs() ** 2), min=MEL_POWER_FLOOR))
        mel_out = self(mel_in)
        magnitude = torch.sqrt(torch.clamp(self.spread @ (10.0 ** (mel_out / 10.0)), min=0.0))
        y = griffin_lim(self, magnitude, x.shape[-1], n_iter=self.griffin_lim_iters, init=spec)
        return y.numpy().astype(np.float32)


def griffin_lim(model: MelUNet, magnitude: torch.Tensor, length: int, *, n_iter: int,
                init: torch.Tensor | None = None, momentum: float = GRIFFIN_LIM_MOMENTUM) -> torch.Tensor:
    """Fast Griffin-Lim (Perraudin et al., WASPAA 2013): audio ``[..., length]`` whose STFT magnitude
    approaches ``magnitude [..., bins, frames]``, starting from the phase of ``init`` (complex, same shape;
    ``None``: zero phase), with ``model``'s STFT. ``n_iter`` 0 returns ``istft(magnitude * phase(init))``."""
    phase = (torch.ones_like(magnitude, dtype=torch.complex64) if init is None
             else init / torch.clamp(init.abs(), min=1e-16))
    previous = torch.zeros_like(phase)
    for _ in range(int(n_iter)):
        rebuilt = model.stft(model.istft(magnitude * phase, length))
        phase = rebuilt - (momentum / (1.0 + momentum)) * previous
        phase = phase / torch.clamp(phase.abs(), min=1e-16)
        previous = rebuilt
    return model.istft(magnitude * phase, length)


def parameter_count(model: nn.Module) -> int:
    """Trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --------------------------------------------------------------------------- inference
class UNetMasterer:
    """The trained U-Net as a mastering method: ``render`` (audio, arbitrary level) and ``master`` (through the bus).

    Args:
        path: a checkpoint (``NAME.json`` + ``NAME.safetensors``); default the shipped ``models/masterers/unet``.

    Raises:
        CheckpointError: missing or corrupted weights (train and ship them: see the module docstring).
    """

    name = "unet"

    def __init__(self, path: str | Path | None = None) -> None:
        from .checkpoint import load_checkpoint

        self.path = Path(path) if path is not None else SHIPPED.with_suffix(".json")
        self.model, self.record = load_checkpoint(self.path)

    def render(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """The U-Net's audio float32 ``[2, samples]`` for ``audio [2, samples]`` at ``sample_rate`` (resampled to the
        model's rate and back when they differ; the length is kept)."""
        from mixbridge.audio import resample

        a = np.asarray(audio, dtype=np.float32)
        rate = self.model.sample_rate
        x = a if int(sample_rate) == rate else np.asarray(resample(a, int(sample_rate), rate), np.float32)
        y = self.model.render(x)
        if int(sample_rate) != rate:
            y = np.asarray(resample(y, rate, int(sample_rate)), np.float32)
        n = a.shape[1]
        return np.pad(y, ((0, 0), (0, max(0, n - y.shape[1]))))[:, :n]

    def master(self, audio: np.ndarray, sample_rate: int, *, target_lufs: float, ceiling_dbtp: float):
        """:meth:`render`, then the one master bus with neutral EQ and compressor to ``target_lufs`` under
        ``ceiling_dbtp`` (:func:`mixbridge.plugins.mastering.master`); returns its ``MasterResult``."""
        from mixbridge.plugins.mastering import master

        return master(self.render(audio, sample_rate), neutral_master_params(target_lufs, ceiling_dbtp),
                      int(sample_rate))


def neutral_master_params(target_lufs: float, ceiling_dbtp: float) -> dict[str, dict[str, float]]:
    """``master_bus`` values with the schema's neutral EQ (0 dB) and compressor (ratio 1), the given loudness
    target and ceiling: the one master bus as "gain + true-peak limiter"."""
    from mixbridge.schema import MASTER_BUS

    params = {k: dict(v) for k, v in MASTER_BUS.defaults().items() if k != "reverb"}
    params["loudness"]["target_lufs"] = float(target_lufs)
    params["limiter"]["ceiling_dbtp"] = float(ceiling_dbtp)
    MASTER_BUS.validate({**params, "reverb": MASTER_BUS.defaults()["reverb"]}, "neutral master")
    return params


# --------------------------------------------------------------------------- training
class PairCrops:
    """Map-style dataset of ``crop_s``-second crops of (pre-master, master) pairs.

    ``pairs``: objects with ``load() -> (premaster [2, S], master [2, S], sample_rate)``. Training crops
    start at a random sample seeded by ``(seed, epoch, index)`` (``set_epoch``); validation crops are the
    centre. Items ``{"premaster": [2, n], "master": [2, n]}`` float32; a pair shorter than the crop is
    zero-padded. Audio is read on each access (a dataset's shards are memory-mapped; nothing is kept).
    """

    def __init__(self, pairs: list, *, crop_samples: int, random_crop: bool, seed: int) -> None:
        self.pairs, self.crop, self.random_crop, self.seed, self.epoch = list(pairs), int(crop_samples), \
            bool(random_crop), int(seed), 0

    def __len__(self) -> int:
        return len(self.pairs)

    def set_epoch(self, epoch: int) -> None:
        """Draw the crops of ``epoch``."""
        self.epoch = int(epoch)

    def __getitem__(self, i: int) -> dict:
        pre, mas, _ = self.pairs[i].load()
        pre, mas = np.asarray(pre, np.float32), np.asarray(mas, np.float32)
        n = min(pre.shape[1], mas.shape[1])
        if n <= self.crop:
            pad = ((0, 0), (0, self.crop - n))
            return {"premaster": np.pad(pre[:, :n], pad), "master": np.pad(mas[:, :n], pad)}
        start = (int(np.random.default_rng([self.seed, self.epoch, i]).integers(0, n - self.crop + 1))
                 if self.random_crop else (n - self.crop) // 2)
        return {"premaster": pre[:, start:start + self.crop], "master": mas[:, start:start + self.crop]}


class UNetTask:
    """The mel U-Net on a pre-master dataset (a :class:`~mixbridge.models.training.trainer.Task`).

    Args:
        data: a ``mixbridge datagen premaster`` dataset folder.
        model_args: :class:`MelUNet` keyword arguments (``sample_rate`` comes from the data).
        crop_s: crop length, seconds. seed: initialisation and crop seed. device: ``cpu`` or ``cuda``.

    Raises:
        TrainConfigError: an empty split, several sample rates, or ``model_args`` that contradict the data.
    """

    model_name = "unet"
    train_keys = ("loss",)
    val_keys = ("loss",)

    def __init__(self, data: str | Path, *, model_args: dict | None = None, crop_s: float = 2.0,
                 ltas_weight: float = 0.0, seed: int = 0, device: str = "cpu") -> None:
        train, val, rate, identity = premaster_pairs(data)
        args = dict(model_args or {})
        if args.get("sample_rate", rate) != rate:
            raise TrainConfigError(f"model_args.sample_rate = {args['sample_rate']} but the dataset is at {rate} Hz; "
                                   "remove sample_rate from model_args")
        args["sample_rate"] = rate
        if not crop_s > 0 or ltas_weight < 0:
            raise TrainConfigError(f"crop_s = {crop_s} must be > 0 s and ltas_weight = {ltas_weight} >= 0")
        self.ltas_weight = float(ltas_weight)
        torch.manual_seed(seed)
        self.model = MelUNet(**args)
        self.forward_model: Any = self.model
        self.device = device
        crop = int(round(crop_s * rate))
        if crop < self.model.n_fft:
            raise TrainConfigError(f"crop_s = {crop_s} s is shorter than one STFT frame ({self.model.n_fft} samples)")
        self.train_data = PairCrops(train, crop_samples=crop, random_crop=True, seed=seed)
        self.val_data = PairCrops(val, crop_samples=crop, random_crop=False, seed=seed)
        self.identity = identity

    def collate(self, items: list[dict]) -> dict[str, torch.Tensor]:
        """``premaster`` and ``master`` ``[B, 2, n]`` on the task's device."""
        return {k: torch.from_numpy(np.stack([it[k] for it in items])).to(self.device)
                for k in ("premaster", "master")}

    def loss(self, batch: dict[str, torch.Tensor], model=None) -> torch.Tensor:
        """L1 between predicted and target mel dB, each minus its mean, plus ``ltas_weight`` times the L1 of their
        means over the frames (the crop's long-term band balance; module docstring)."""
        m = self.model
        x = m.mel_db(batch["premaster"]).flatten(0, 1)
        with torch.no_grad():
            t = m.mel_db(batch["master"]).flatten(0, 1)
        y = (model or self.forward_model)(x)
        d = (y - y.mean(dim=(1, 2), keepdim=True)) - (t - t.mean(dim=(1, 2), keepdim=True))
        loss = torch.mean(torch.abs(d))
        if self.ltas_weight:
            loss = loss + self.ltas_weight * torch.mean(torch.abs(d.mean(dim=2)))
        return loss

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``{"loss"}`` of a training batch (no backward)."""
        return {"loss": self.loss(batch)}

    def validate(self, batches: Iterable[dict[str, torch.Tensor]]) -> dict[str, float]:
        """The example-weighted mean loss over ``batches``."""
        total, n = 0.0, 0
        for batch in batches:
            b = batch["premaster"].shape[0]
            total += float(self.loss(batch, self.model)) * b
            n += b
        return {"loss": total / max(n, 1)}


class PremasterPair:
    """Example ``i`` of a pre-master dataset split, read from its memory-mapped shard on demand."""

    def __init__(self, ds: Any, i: int) -> None:
        self.ds, self.i = ds, int(i)

    def load(self) -> tuple[np.ndarray, np.ndarray, int]:
        """``(premaster [2, S], master [2, S], sample_rate)`` float32."""
        pre, mas = self.ds.pair(self.i)
        return pre, mas, int(self.ds.sample_rate)


def premaster_pairs(data: str | Path, *, include_hard: bool = False) -> tuple[list, list, int, dict]:
    """``(train, val, sample_rate, identity)`` of a ``mixbridge datagen premaster`` dataset (its own album split).

    Each pair is a :class:`PremasterPair`; the hard set (reverb/echo, flagged per example) is left out
    unless ``include_hard``.

    Raises:
        TrainConfigError: no train or val pairs.
        DatasetFormatError: not a pre-master dataset.
    """
    from mixbridge.plugins.datagen.premaster import read_premaster_dataset

    out: dict[str, list] = {}
    for split in ("train", "val"):
        ds = read_premaster_dataset(data, split)
        out[split] = [PremasterPair(ds, i) for i in range(len(ds)) if include_hard or not bool(ds.hard[i])]
        rate = int(ds.sample_rate)
        ids = [int(ds.indices[p.i]) for p in out[split]]
        out[split + "_ids"] = ids
    if len(out["train"]) < 2 or not out["val"]:
        raise TrainConfigError(f"{data}: {len(out['train'])} train and {len(out['val'])} val pairs; "
                               "training needs at least 2 and 1 (generate more with mixbridge datagen premaster)")
    identity = {"root": str(Path(data).resolve()), "sample_rate": rate, "train": len(out["train"]),
                "val": len(out["val"]), "include_hard": bool(include_hard),
                "pairs_sha256": hashlib.sha256(" ".join(
                    f"{s}:{i}" for s in ("train", "val") for i in out[s + "_ids"]).encode()).hexdigest()}
    return out["train"], out["val"], rate, identity


def train_unet(data: str | Path, out_dir: str | Path, *,
               model_args: dict | None = None,
               batch_size: int = 4,
               crop_s: float = 2.0,
               ltas_weight: float = 0.0,
               learning_rate: float = 1e-3,
               lr_factor: float = 0.5,
               lr_patience: int = 2,
               early_stop_patience: int = 6,
               max_epochs: int = 200,
               epoch_examples: int | None = None,
               seed: int = 0,
               num_threads: int = 1,
               max_minutes: float | None = None,
               max_steps: int | None = None,
               device: str = "cpu",
               resume: bool = False,
               progress: bool = True) -> dict:
    """Train the mel U-Net on pre-master dataset ``data``; checkpoints and log.csv go to ``out_dir``.

    Args:
        data: a ``mixbridge datagen premaster`` dataset (train split for training, val for validation).
        out_dir: the run folder (with ``resume`` it must hold ``last``).
        model_args: :class:`MelUNet` constructor arguments. batch_size: pairs per step. crop_s: crop seconds.
        ltas_weight: weight of the loss on the crop's band means (:meth:`UNetTask.loss`; 0: Khoo's frame loss only).
        learning_rate, lr_factor, lr_patience, early_stop_patience, max_epochs: the trainer's recipe.
        epoch_examples: examples between validations (default: the train split).
        seed, num_threads, max_minutes, max_steps, device, resume, progress: as :func:`train_mixer`'s.

    Returns:
        The trainer's summary dict.

    Raises:
        TrainConfigError: a bad value, a run-folder conflict, a dataset without train/val pairs.
    """
    settings = dict(locals())
    from .training.mixing import run_split_training

    return run_split_training(lambda task_device: UNetTask(
        data, model_args=model_args, crop_s=crop_s, ltas_weight=ltas_weight, seed=seed, device=task_device),
        out_dir, settings, default_config())


def default_config() -> dict[str, Any]:
    """The keyword arguments of :func:`train_unet` with their defaults (the recipe)."""
    return recipe_defaults(train_unet)


def load_unet_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML/TOML config of :func:`train_unet` arguments (:func:`~.training.data.load_recipe`)."""
    return load_recipe(path, train_unet)


def ship_unet(run_dir: str | Path, dest: str | Path = SHIPPED, *, description: str = "") -> Path:
    """Copy a run's best checkpoint to ``dest`` (``models/masterers/unet``), as ``ship_mixer`` does."""
    from .training.mixing import ship_mixer

    return ship_mixer(run_dir, dest, description=description)
