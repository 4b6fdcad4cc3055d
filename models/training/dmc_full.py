"""``dmc-full`` as a trainer task: random full-strip sessions of the composer songs (Diff-MST's method 1).

:class:`ReferencePairs` makes one example per excerpt of a split: a random full-strip session
(:func:`mixbridge.models.dmc_full.draw_session`, seeded by ``(seed, epoch, index)``; validation
uses epoch 0 always) and two non-overlapping crops of ``crop_s`` seconds of the same excerpt,
A and B. The stems are trimmed to :data:`~mixbridge.models.dmc_full.COMMON_LUFS` (the dataset
stores every stem at the excerpt's ``input_lufs``). Crop B is rendered through the torch console
(:class:`mixbridge.models.console.TorchConsole`, the master at -14 LUFS open loop) with the
session: that is the reference the network reads (:func:`~mixbridge.models.dmc_full.reference_features`).
The network reads crop A's stems (:func:`~mixbridge.models.dmc_full.track_features`) and the reference.

The loss (:meth:`DMCFullTask.losses`), on the centre ``audio_s`` seconds of crop A rendered with
the predicted and with the drawn (target) session (both masters gain-matched to -23 LUFS):

* ``param_weight *`` mean ``|u_pred - u_target|`` over the normalised strip parameters of the valid
  tracks plus the master's;
* ``stft_weight *`` the sum-and-difference MR-STFT (:func:`~mixbridge.models.losses.sum_and_difference_mrstft_loss`);
* ``feature_weight *`` the Diff-MST audio-feature loss (:class:`~mixbridge.models.losses.AudioFeatureLoss`).

Split by song: the dataset's ``train`` split trains, its ``val`` split validates (the
:func:`~.mixing.run_split_training` body, as :mod:`.mixing` does). :func:`train_dmc_full` is the
library entry point behind ``mixbridge train dmc-full``.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data import TrainConfigError, load_recipe, recipe_defaults
from .mixing import composer_identity, composer_model_args, composer_splits, run_split_training
from .trainer import example_weighted_means

#: Both masters are gain-matched to this loudness before the audio losses, LUFS.
LOSS_LUFS = -23.0
#: The audio losses need more samples than this: the Bark spectrum's 32768-point FFT pads by reflection.
MIN_LOSS_SAMPLES = 16384


def at_lufs(x: torch.Tensor, sample_rate: int, lufs: float = LOSS_LUFS) -> torch.Tensor:
    """``x [B, 2, n]`` gain-matched to ``lufs`` (differentiable BS.1770-4, ``models.dsp.integrated_lufs``)."""
    from ..dsp import integrated_lufs

    return x * (10.0 ** ((lufs - integrated_lufs(x, sample_rate)) / 20.0)).to(x.dtype)[:, None, None]


def render_master(console, audio: torch.Tensor, strip_u: torch.Tensor, master_u: torch.Tensor,
                  mask: torch.Tensor, target_lufs: float = -14.0) -> torch.Tensor:
    """The console's master ``[B, 2, n]`` of ``audio [B, T, 2, n]`` with normalised ``strip_u [B, T, S]`` and
    ``master_u [B, M]`` (:data:`~mixbridge.models.dmc_full.STRIP_OUTPUT_PARAMS` / ``MASTER_OUTPUT_PARAMS``);
    trim 0 dB (the audio is already at the common loudness), padded tracks (mask 0) muted."""
    from ..console import denormalise
    from ..dmc_full import MASTER_OUTPUT_PARAMS, STRIP_OUTPUT_PARAMS

    strip = denormalise(STRIP_OUTPUT_PARAMS, strip_u.double(), check=False)
    strip["fader.mute"] = 1.0 - mask.double()
    master: dict[str, Any] = dict(denormalise(MASTER_OUTPUT_PARAMS, master_u.double(), check=False))
    master["loudness.target_lufs"] = float(target_lufs)
    return console(audio, strip, master).master.to(audio.dtype)


class ReferencePairs:
    """Map-style dataset of method-1 pairs of one split's excerpts (see the module docstring).

    Items: ``{"features" [T, n_mels, F], "reference" [2 n_mels, G], "audio" [T, 2, audio_samples],
    "strip_u" [T, S], "master_u" [M], "id"}`` float32. ``console`` renders the references (default: the
    schema's :class:`~mixbridge.models.console.TorchConsole`); the sessions and crops drawn do not depend on it.
    """

    def __init__(self, excerpts: list, model, *, crop_s: float, audio_s: float, seed: int, fixed: bool,
                 console=None) -> None:
        from ..console import TorchConsole

        self.excerpts, self.model = list(excerpts), model
        self.sample_rate = model.sample_rate
        self.crop = int(round(crop_s * self.sample_rate))
        self.audio_samples = min(int(round(audio_s * self.sample_rate)), self.crop)
        if self.crop < model.n_fft or self.audio_samples <= MIN_LOSS_SAMPLES:
            raise TrainConfigError(f"crop_s = {crop_s} s and audio_s = {audio_s} s: crops need at least "
                                   f"{model.n_fft} samples and the loss audio more than {MIN_LOSS_SAMPLES} "
                                   f"({MIN_LOSS_SAMPLES / self.sample_rate:.2f} s); raise them")
        self.seed, self.epoch, self.fixed = int(seed), 0, bool(fixed)
        #: renders the references: the schema's console, or one with a plugin's compressor (proxy or plugin)
        self.console = console if console is not None else TorchConsole(self.sample_rate, check_ranges=False)
        self._frames: dict[int, int] = {}
        self._last: tuple[tuple[int, int], tuple] | None = None

    def __len__(self) -> int:
        return len(self.excerpts)

    def set_epoch(self, epoch: int) -> None:
        """Draw the sessions and crops of ``epoch`` (validation keeps epoch 0's)."""
        self.epoch = int(epoch)

    def _length(self, i: int) -> int:
        if i not in self._frames:
            import soundfile as sf

            ex = self.excerpts[i]
            self._frames[i] = min(sf.info(str(ex.stems_dir / f)).frames for f in ex.track_files)
        return self._frames[i]

    def __getitem__(self, i: int) -> dict:
        from ..dmc_full import reference_features, track_features

        crop_a, ref, strip_u, master_u = self._pair(i)
        m = self.model
        off = (self.crop - self.audio_samples) // 2
        return {"features": track_features(crop_a, self.sample_rate, n_mels=m.n_mels, n_fft=m.n_fft,
                                           hop_length=m.hop_length),
                "reference": reference_features(ref, self.sample_rate, n_mels=m.n_mels, n_fft=m.n_fft,
                                                hop_length=m.hop_length),
                "audio": np.ascontiguousarray(crop_a[..., off:off + self.audio_samples]),
                "strip_u": strip_u, "master_u": master_u, "id": self.excerpts[i].id}

    def reference_audio(self, i: int) -> np.ndarray:
        """Pair ``i``'s reference audio ``[2, crop]`` (crop B rendered with its session, at ``REFERENCE_LUFS``)."""
        return self._pair(i)[1]

    def _pair(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(crop A [T, 2, crop] at COMMON_LUFS, reference [2, crop], strip_u [T, S], master_u [M])``; the last
        pair is kept, so ``self[i]`` then :meth:`reference_audio` renders the reference once."""
        key = (i, 0 if self.fixed else self.epoch)
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        out = self._draw(i)
        self._last = (key, out)
        return out

    def _draw(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        from mixbridge.loudness import SILENT_LUFS, db_to_gain, integrated_lufs

        from ..dmc_full import REFERENCE_LUFS, draw_session
        from ..dmc_mixer import trim_db
        from .mixing import read_excerpt_crop

        ex = self.excerpts[i]
        rng = np.random.default_rng([self.seed, 0 if self.fixed else self.epoch, i])
        n, c = self._length(i), self.crop
        if n >= 2 * c:   # A and B do not overlap; their order is random
            a, b = sorted(rng.choice(n - 2 * c + 1, 2, replace=True))
            starts = (a, b + c) if rng.random() < 0.5 else (b + c, a)
        else:
            starts = (0, max(n - c, 0))
        trim = np.float32(db_to_gain(trim_db(float(ex.input_lufs))))
        crop_a, crop_b = (read_excerpt_crop(ex, s, c) * trim for s in starts)
        strip_u, master_u = draw_session(rng, len(ex.track_files))
        with torch.no_grad():
            ref = render_master(self.console, torch.from_numpy(crop_b)[None], torch.from_numpy(strip_u)[None],
                                torch.from_numpy(master_u)[None], torch.ones(1, crop_b.shape[0]))[0].numpy()
        lufs = integrated_lufs(ref.astype(np.float64), self.sample_rate)
        if lufs > SILENT_LUFS:
            ref = ref * np.float32(10.0 ** ((REFERENCE_LUFS - lufs) / 20.0))
        return crop_a, ref, strip_u, master_u


def collate_pairs(items: list[dict], device: str = "cpu") -> dict[str, torch.Tensor]:
    """Pad the tracks to the most in the batch (``mask [B, T]`` 1 for real tracks), on ``device``."""
    t = max(it["audio"].shape[0] for it in items)
    b = len(items)
    feats = np.full((b, t) + items[0]["features"].shape[1:], -100.0, np.float32)
    audio = np.zeros((b, t) + items[0]["audio"].shape[1:], np.float32)
    strip = np.full((b, t, items[0]["strip_u"].shape[1]), 0.5, np.float32)
    mask = np.zeros((b, t), np.float32)
    for j, it in enumerate(items):
        k = it["audio"].shape[0]
        feats[j, :k], audio[j, :k], strip[j, :k], mask[j, :k] = it["features"], it["audio"], it["strip_u"], 1.0
    out = {"features": feats, "reference": np.stack([it["reference"] for it in items]), "audio": audio,
           "strip_u": strip, "master_u": np.stack([it["master_u"] for it in items]), "mask": mask}
    return {k: torch.from_numpy(v).to(device) for k, v in out.items()}


class DMCFullTask:
    """:class:`~mixbridge.models.dmc_full.DMCFull` on method-1 pairs of a composer dataset (a trainer task).

    Args:
        data: the composer dataset's folder. model_args: ``DMCFull`` keyword arguments.
        crop_s: length of crops A and B, s. audio_s: the centre of crop A the audio losses compare, s.
        param_weight, stft_weight, feature_weight: the loss (module docstring). seed. device.

    Raises:
        TrainConfigError: empty splits, several sample rates, bad lengths.
        ComposerDatasetError: an incomplete dataset.
    """

    model_name = "dmc-full"
    train_keys = ("loss", "param", "stft", "feature")
    val_keys = ("loss", "param", "stft", "feature")

    def __init__(self, data: str | Path, *, model_args: dict | None = None, crop_s: float = 1.5,
                 audio_s: float = 0.5, param_weight: float = 1.0, stft_weight: float = 0.1,
                 feature_weight: float = 0.1, seed: int = 0, device: str = "cpu",
                 compressor_proxy: str | None = None, init_from: str | None = None) -> None:
        from ..losses import AudioFeatureLoss, sum_and_difference_mrstft_loss
        from ..registry import build_architecture

        ds, train, val, self.val_note, rate = composer_splits(data)
        args = composer_model_args(model_args, rate)
        torch.manual_seed(seed)
        self.model = build_architecture("dmc-full", args)
        if init_from is not None:
            self.model.load_state_dict(_init_network(init_from, self.model).state_dict())
        self.forward_model: Any = self.model
        self.sample_rate, self.device = rate, device
        self.console = loop_console(rate, compressor_proxy)
        self.train_data = ReferencePairs(train, self.model, crop_s=crop_s, audio_s=audio_s, seed=seed, fixed=False,
                                         console=self.console)
        self.val_data = ReferencePairs(val, self.model, crop_s=crop_s, audio_s=audio_s, seed=seed, fixed=True,
                                       console=self.console)
        self.identity = composer_identity(data, ds, train, val, self.val_note)
        if compressor_proxy is not None:
            self.identity["compressor_proxy"] = _proxy_identity(compressor_proxy)
        self.weights = {"param": float(param_weight), "stft": float(stft_weight), "feature": float(feature_weight)}
        self.stft = sum_and_difference_mrstft_loss().to(device)
        self.features = AudioFeatureLoss(self.sample_rate)

    def collate(self, items: list[dict]) -> dict[str, torch.Tensor]:
        """:func:`collate_pairs` on the task's device."""
        return collate_pairs(items, self.device)

    def losses(self, batch: dict[str, torch.Tensor], model=None) -> dict[str, torch.Tensor]:
        """``{"loss", "param", "stft", "feature"}`` of a batch (tensors with gradients)."""
        mask = batch["mask"]
        su, mu = (model or self.forward_model)(batch["features"], batch["reference"], mask)
        count = mask.sum().clamp(min=1.0) * su.shape[-1]
        param = ((su - batch["strip_u"]).abs() * mask[..., None]).sum() / count + (mu - batch["master_u"]).abs().mean()
        zero = param.new_zeros(())
        stft = feature = zero
        if self.weights["stft"] or self.weights["feature"]:
            sr = self.sample_rate
            pred = at_lufs(render_master(self.console, batch["audio"], su, mu, mask), sr)
            with torch.no_grad():
                target = at_lufs(render_master(self.console, batch["audio"], batch["strip_u"], batch["master_u"],
                                               mask), sr)
            stft = self.stft(pred, target) if self.weights["stft"] else zero
            feature = self.features(pred, target) if self.weights["feature"] else zero
        w = self.weights
        loss = w["param"] * param + w["stft"] * stft + w["feature"] * feature
        return {"loss": loss, "param": param, "stft": stft, "feature": feature}

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Training losses of a batch (``loss`` first; no backward)."""
        out = self.losses(batch)
        return {k: out[k] for k in self.train_keys}

    def validate(self, batches: Iterable[dict[str, torch.Tensor]]) -> dict[str, float]:
        """Example-weighted means of the losses over the validation split."""
        return example_weighted_means(batches, lambda b: self.losses(b, self.model), self.val_keys,
                                      lambda b: b["mask"].shape[0])


def loop_console(sample_rate: int, compressor_proxy: str | Path | None = None):
    """The torch console the method-1 pairs and losses render with: the schema's, or, given a grey-box
    compressor proxy checkpoint, one whose strip compressor is that proxy
    (:func:`mixbridge.models.proxy_greybox.proxy_compressor_stage`).

    Raises:
        TrainConfigError: a proxy of another architecture, schema or sample rate.
        CheckpointError: an unreadable or corrupted proxy checkpoint.
    """
    from ..checkpoint import load_checkpoint
    from ..console import TorchConsole
    from ..proxy_greybox import GreyBoxProxy, proxy_compressor_stage

    if compressor_proxy is None:
        return TorchConsole(sample_rate, check_ranges=False)
    proxy, _ = load_checkpoint(compressor_proxy, expect_sample_rate=sample_rate)
    if not isinstance(proxy, GreyBoxProxy) or tuple(proxy.schema) != ("compressor",):
        kind = getattr(proxy, "architecture", type(proxy).__name__)
        raise TrainConfigError(f"compressor_proxy {compressor_proxy}: a {kind} proxy of schema "
                               f"{list(getattr(proxy, 'schema', []))}; proxy in the loop takes a grey-box proxy "
                               "of schema ['compressor'] (mixbridge train proxy --config "
                               "models/configs/proxy_greybox.yaml)")
    return TorchConsole(sample_rate, check_ranges=False, compressor=proxy_compressor_stage(proxy))


def _proxy_identity(path: str | Path) -> dict:
    from mixbridge.checksum import sha256_file

    p = Path(path)
    return {"path": str(p), "sha256": sha256_file(p.with_suffix(".safetensors"))}


def _init_network(path: str | Path, model):
    from ..checkpoint import load_mixer_network
    from ..style_transfer import TRAIN_HINT, StyleTransferError

    net = load_mixer_network(path, "dmc_full", "dmc-full", TRAIN_HINT, error=StyleTransferError)
    if net.config() != model.config():
        diff = sorted(k for k in model.config() if net.config().get(k) != model.config()[k])
        raise TrainConfigError(f"init_from {path}: its network differs from the config's in {diff}; use the "
                               "model_args it was trained with")
    return net


def train_dmc_full(data: str | Path, out_dir: str | Path, *,
                   model_args: dict | None = None,
                   batch_size: int = 4,
                   crop_s: float = 1.5,
                   audio_s: float = 0.5,
                   learning_rate: float = 1e-3,
                   lr_factor: float = 0.5,
                   lr_patience: int = 3,
                   early_stop_patience: int = 10,
                   max_epochs: int = 500,
                   epoch_examples: int | None = None,
                   param_weight: float = 1.0,
                   stft_weight: float = 0.1,
                   feature_weight: float = 0.1,
                   seed: int = 0,
                   num_threads: int = 1,
                   max_minutes: float | None = None,
                   max_steps: int | None = None,
                   device: str = "cpu",
                   compressor_proxy: str | None = None,
                   init_from: str | None = None,
                   resume: bool = False,
                   progress: bool = True) -> dict:
    """Train ``dmc-full`` on method-1 pairs of composer dataset ``data``; checkpoints and log.csv go to ``out_dir``.

    Args: as :func:`~.mixing.train_mixer` (the trainer's recipe and budgets), plus ``crop_s`` / ``audio_s``
    (:class:`DMCFullTask`) and the loss weights ``param_weight``, ``stft_weight``, ``feature_weight``.
    ``compressor_proxy``: a grey-box compressor proxy checkpoint (``NAME.json``) of the plugin the mixes will be
    rendered with: the strips' compressor in the references and in the loss renders is that proxy
    (:func:`loop_console`; the seed thesis's proxy in the loop), so the network learns the plugin's law, not
    the schema's. ``init_from``: start from this dmc-full checkpoint's weights (e.g. the shipped
    ``models/mixers/dmc_full.json``; ignored on ``resume``, which loads the run's ``last``).

    Returns:
        The trainer's summary.

    Raises:
        TrainConfigError: a bad value, a run folder conflict, empty splits, CUDA asked for but absent.
        ComposerDatasetError: an incomplete dataset.
    """
    settings = dict(locals())
    return run_split_training(lambda task_device: DMCFullTask(
        data, model_args=model_args, crop_s=crop_s, audio_s=audio_s, param_weight=param_weight,
        stft_weight=stft_weight, feature_weight=feature_weight, seed=seed, device=task_device,
        compressor_proxy=compressor_proxy, init_from=None if resume else init_from),
        out_dir, settings, default_config())


def default_config() -> dict[str, Any]:
    """The keyword arguments of :func:`train_dmc_full` with their defaults (the recipe)."""
    return recipe_defaults(train_dmc_full)


def load_dmc_full_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML or TOML config of :func:`train_dmc_full` keyword arguments.

    Raises:
        TrainConfigError: unreadable or invalid file, or unknown keys (the known ones are listed).
    """
    return load_recipe(path, train_dmc_full)


# --------------------------------------------------------------------------- held-out figures (the card's)
def session_master(console, audio: np.ndarray, session) -> torch.Tensor:
    """The torch console's master ``[1, 2, n]`` of ``audio [tracks, 2, n]`` with every strip and master-bus
    parameter of ``session`` (the master's gain solved open loop to its ``loudness.target_lufs``)."""
    from ..console import MASTER_PARAMS, STRIP_PARAMS

    strip = {path: torch.tensor([float(t.params[path.split(".")[0]][path.split(".")[1]]) for t in session.tracks],
                                dtype=torch.float64) for path, _ in STRIP_PARAMS}
    master = {f"{proc}.{k}": float(v) for proc, d in session.master.params.items() for k, v in d.items()
              if f"{proc}.{k}" in dict(MASTER_PARAMS)}
    with torch.no_grad():
        return console(torch.from_numpy(audio), strip, master).master


def held_out_pair(pairs: ReferencePairs, i: int):
    """Method-1 pair ``i`` of ``pairs`` as the held-out figures use it: ``(raw [T, 2, crop]`` -- crop A's stems at
    the dataset's level, as a mixer receives them --, ``reference [2, crop]``, ``target [1, 2, crop]`` -- crop A
    rendered by ``pairs.console`` with the pair's session, at :data:`LOSS_LUFS` --, a
    :class:`~mixbridge.audio.StemSet` of ``raw``)."""
    from mixbridge.audio import Stem, StemSet
    from mixbridge.loudness import db_to_gain

    from ..dmc_mixer import trim_db

    ex, sr = pairs.excerpts[i], pairs.sample_rate
    item = pairs[i]
    # the stems at the dataset's level (the mixers trim them themselves); the pair's audio is at COMMON_LUFS
    raw = item["audio"] / np.float32(db_to_gain(trim_db(float(ex.input_lufs))))
    ref = pairs.reference_audio(i)
    with torch.no_grad():
        target = at_lufs(render_master(pairs.console, torch.from_numpy(item["audio"])[None],
                                       torch.from_numpy(item["strip_u"])[None],
                                       torch.from_numpy(item["master_u"])[None], torch.ones(1, raw.shape[0])), sr)
    stems = StemSet([Stem(n, ex.stems_dir / f, audio=raw[k])
                     for k, (n, f) in enumerate(zip(ex.track_names, ex.track_files))], sr)
    return raw, ref, target, stems


def evaluate_dmc_full(data: str | Path, *, split: str = "test", checkpoint: str | Path | None = None,
                      crop_s: float = 2.0, refine_steps: int = 10, refine_excerpts: int | None = 6,
                      limit: int | None = None, seed: int = 1, num_threads: int = 1, centre: bool = True) -> dict:
    """The card's held-out figures: on ``split``'s excerpts, method-1 pairs (a random full-strip session drawn
    per excerpt with ``seed``; crop A's stems, the session's render of crop B as the reference, crops of
    ``crop_s`` s) and, for each start -- ``dmc`` (the shipped dmc mixer's session of crop A), ``dmc-full``
    (:func:`mixbridge.models.style_transfer.predict_from_reference`), and each refined by ``refine_steps``
    steps of :func:`~mixbridge.models.style_transfer.match_reference` on ``refine_excerpts`` excerpts evenly
    spread over the split (None: all) -- the Diff-MST feature distance of its master to the reference (as ``automix``
    reports it) and the sum/diff MR-STFT of its master to the target (crop A rendered with the reference's
    session; both at -23 LUFS). ``limit`` takes the first excerpts only. With ``centre``, one more start,
    ``prior centre``: every strip and master parameter at the centre of the training priors
    (:func:`~mixbridge.models.dmc_full.prior_centre`) with dmc-full's loudness trims (not refined).

    Returns:
        ``{"excerpts", "rows": {method: {"feature_distance", "mrstft", "n"}}, "per_excerpt": [...]}``
        (means over the excerpts each method ran on).

    Raises:
        TrainConfigError: an empty split. StyleTransferError: no dmc-full weights (or another architecture).
        CheckpointError: a corrupted checkpoint. ComposerDatasetError: an incomplete dataset.
    """
    from mixbridge.plugins.datagen.composer import read_composer_dataset

    from ..console import TorchConsole
    from ..dmc_full import prior_centre
    from ..dmc_mixer import DMCMixer
    from ..losses import sum_and_difference_mrstft_loss
    from ..style_transfer import console_session, load_dmc_full, match_reference, predict_from_reference

    torch.set_num_threads(int(num_threads))
    ds = read_composer_dataset(data)
    excerpts = ds.split(split)[:limit] if limit else ds.split(split)
    if not excerpts:
        raise TrainConfigError(f"{data}: no excerpts in split {split!r}")
    net = load_dmc_full(checkpoint)
    pairs = ReferencePairs(excerpts, net, crop_s=crop_s, audio_s=crop_s, seed=seed, fixed=True)
    sr = pairs.sample_rate
    console = TorchConsole(sr, check_ranges=False)
    stft = sum_and_difference_mrstft_loss()
    dmc = DMCMixer()

    # the refined rows run on refine_excerpts excerpts evenly spread over the split (its songs are in order)
    picked = set(np.linspace(0, len(excerpts) - 1, min(refine_excerpts or 1, len(excerpts))).round().astype(int))
    per: list[dict] = []
    for i, ex in enumerate(excerpts):
        raw, ref, target, stems = held_out_pair(pairs, i)
        starts = {"dmc": dmc(stems, target_lufs=-14.0)}
        starts["dmc-full"] = predict_from_reference(raw, ref, sr, starts["dmc"], model=net)
        if centre:   # the priors' centre with dmc-full's own loudness trims: what any mid-prior console does
            trims = [t.params["trim"]["gain_db"] for t in starts["dmc-full"].tracks]
            starts["prior centre"] = console_session(starts["dmc"], trims, *prior_centre(len(trims)))
        row: dict[str, Any] = {"id": ex.id}
        refine = refine_steps > 0 and (refine_excerpts is None or i in picked)
        for name, sess in list(starts.items()):
            runs = [(name, sess, 0)] + ([(f"{name} + refine {refine_steps}", sess, refine_steps)]
                                        if refine and name != "prior centre" else [])
            for label, s0, steps in runs:
                out = match_reference(raw, ref, sr, s0, steps, progress=False)
                st = out.provenance["style_transfer"]
                with torch.no_grad():
                    m = float(stft(at_lufs(session_master(console, raw, out).float(), sr), target))
                row[label] = {"feature_distance": st["feature_distance_after"], "mrstft": m}
        per.append(row)
    methods = sorted({k for r in per for k in r if k != "id"}, key=lambda k: (("refine" in k), k))
    rows = {}
    for k in methods:
        vals = [r[k] for r in per if k in r]
        rows[k] = {"feature_distance": float(np.mean([v["feature_distance"] for v in vals])),
                   "mrstft": float(np.mean([v["mrstft"] for v in vals])), "n": len(vals)}
    return {"split": split, "excerpts": len(excerpts), "crop_s": crop_s, "seed": seed, "rows": rows,
            "per_excerpt": per}


def main(argv: list[str] | None = None) -> int:
    """``python -m mixbridge.models.training.dmc_full --data DATASET [--split test] [--crop-s S]
    [--refine-steps N] [--refine-excerpts K] [--limit L] [--checkpoint PATH] [--json OUT]``: the card's table
    (:func:`evaluate_dmc_full`) as markdown on stdout, the whole result as JSON to ``--json``."""
    import argparse
    import json

    from mixbridge.atomic import atomic_write_text

    p = argparse.ArgumentParser(prog="python -m mixbridge.models.training.dmc_full",
                                description="held-out figures of dmc-full (its model card's table)")
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--crop-s", type=float, default=2.0)
    p.add_argument("--refine-steps", type=int, default=10)
    p.add_argument("--refine-excerpts", type=int, default=6)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    r = evaluate_dmc_full(a.data, split=a.split, checkpoint=a.checkpoint, crop_s=a.crop_s,
                          refine_steps=a.refine_steps, refine_excerpts=a.refine_excerpts, limit=a.limit)
    print("| start | excerpts | feature distance to the reference | sum/diff MR-STFT to the target |")
    print("|---|---|---|---|")
    for k, v in r["rows"].items():
        print(f"| {k} | {v['n']} | {v['feature_distance']:.3f} | {v['mrstft']:.3f} |")
    if a.json:
        atomic_write_text(a.json, json.dumps(r, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
