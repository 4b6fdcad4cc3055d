"""Learned mastering as a trainer task: :class:`~mixbridge.models.learned_master.MasterNet` on pre-master pairs.

:class:`MasteringTask` reads a pre-master dataset (``mixbridge datagen premaster``; through
:func:`mixbridge.plugins.datagen.premaster.read_premaster_dataset`): pairs of a finished master and a
pre-master made from it by an invertible degradation, each with the exact inverse (``master_bus``
values that turn the pre-master back into the master) as its label, split by album. It trains on
the ``train`` split and validates on ``val`` with :class:`~.mixing.SplitTrainer` (the project's
trainer: Adam, plateau halving, early stopping, budgets, checkpoints, resume).

An example is one *view* of a pair: a window of ``min_window_s`` .. ``max_window_s`` seconds of the
pre-master (drawn once per pair and view, seeded; ``views`` per pair, the training split cycling
through them by epoch, validation always view 0). For each view the task computes once, at start
(numpy, cached in ``RUN_DIR/cache``): the network input (:func:`mixbridge.master_features.master_features`
of the window, the label's target and ceiling) and the band target (the master's octave-band shape
minus the pre-master's over the window). Audio for the chain loss, the centre ``chain_s`` seconds
of the window of both signals, is read per step.

The loss (weights from the config):

* ``param``: mean ``|u - u*|`` over the normalised outputs (the label ``u*``), each output weighted:
  EQ gains 1; a band's frequency and Q by ``min(1, |gain*| / 3 dB)`` (meaningless at 0 dB); the
  compressor's threshold, attack, release and knee by ``min(1, (ratio* - 1) / 0.5)`` (meaningless at
  ratio 1), ratio 1, makeup 0.1 (the gain solver sets the level after it), limiter release 0.3. It
  keeps the prediction on the label and guards against the seed's collapse toward zero;
* ``eq``: the exact spectral loss of the EQ: mean ``|20 log10 |H(f)| - 20 log10 |H*(f)||`` / 6 dB over
  the RBJ responses (:func:`mixbridge.models.dsp_eq.eq_response`) on log-spaced weights 20 Hz .. 20 kHz;
* ``bands``: mean ``|band_delta_db - target|`` / 3 dB, the tone head;
* ``chain``: the sum-and-difference MR-STFT between the torch master chain
  (:func:`mixbridge.models.dsp_dynamics.master_chain`: EQ -> compressor -> gain -> true-peak limiter) of the
  pre-master crop with the predicted parameters and the master crop, both at
  :data:`~.mixing.MIX_REF_LUFS` (the chain's gain is the open-loop solve to the master crop's loudness).

:func:`train_master` is the library entry point behind ``mixbridge train master``
(:mod:`mixbridge.models.learned_master_cli`, torch-free, so ``mixbridge --help`` loads no torch); its
keyword arguments are the whole training config (``models/configs/master.yaml``).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data import TrainConfigError, load_recipe, recipe_defaults
from .mixing import MIX_REF_LUFS, run_split_training

#: The FFT size of the exact EQ loss's response grid.
EQ_LOSS_NFFT = 4096
#: FFT sizes of the chain loss's sum-and-difference MR-STFT (auraloss), with hops of a quarter FFT: the
#: thesis bands (:data:`mixbridge.models.losses.MRSTFT_FFT_SIZES`, hops 50-240) cost 10x more on this CPU
#: (7 s vs 0.7 s forward for 16 one-second crops); the evaluation keeps the thesis bands.
CHAIN_FFT_SIZES = (512, 1024, 2048)
#: Scales of the loss terms (a typical error maps to about 1).
EQ_SCALE_DB = 6.0
BAND_SCALE_DB = 3.0


@dataclass(frozen=True)
class MasterPair:
    """One pre-master pair: ``load() -> (premaster, master)`` float32 ``[2, samples]`` at ``sample_rate``,
    its ``split`` and ``album``, and ``label``: the inverse as ``master_bus`` values
    (``eq``, ``compressor``, ``limiter``, ``loudness``)."""

    id: str
    split: str
    album: str
    sample_rate: int
    n_samples: int
    label: Mapping[str, Mapping[str, float]]
    load: Callable[[], tuple[np.ndarray, np.ndarray]]


def read_pairs(data: str | Path, *, include_hard: bool = False) -> tuple[list[MasterPair], dict]:
    """The pairs of pre-master dataset ``data`` (:func:`~mixbridge.plugins.datagen.premaster.read_premaster_dataset`)
    and its identity (format, version, seed; the task adds the counts and a digest of the pairs it uses). The hard set
    (reverb/echo, which no chain undoes) is left out unless ``include_hard``.

    Raises:
        DatasetFormatError: not a pre-master dataset.
    """
    from mixbridge.plugins.datagen.premaster import read_premaster_dataset

    ds = read_premaster_dataset(data)
    pairs = []
    for i in range(len(ds)):
        if bool(ds.hard[i]) and not include_hard:
            continue
        pairs.append(MasterPair(id=str(int(ds.indices[i])), split=ds.splits[i], album=ds.albums[i],
                                sample_rate=ds.sample_rate, n_samples=int(ds.config["clip_samples"]),
                                label=ds.plan(i), load=partial(ds.pair, i)))
    identity = {"root": str(Path(data).resolve()), "format": ds.config.get("format"),
                "version": ds.config.get("version"), "kind": ds.config.get("kind"), "seed": ds.config.get("seed"),
                "include_hard": bool(include_hard)}
    return pairs, identity


def label_normalised(label: Mapping[str, Mapping[str, float]]) -> tuple[np.ndarray, np.ndarray]:
    """``(u*, weights)`` float32 ``[20]`` of a label (the parameter loss's target and per-output weights)."""
    from ..learned_master import OUTPUT_PARAMS

    u, w = np.zeros(len(OUTPUT_PARAMS), np.float32), np.zeros(len(OUTPUT_PARAMS), np.float32)
    eq, comp = label["eq"], label["compressor"]
    ratio_w = min(1.0, max(0.0, (float(comp.get("ratio", 1.0)) - 1.0) / 0.5))
    for i, (name, p) in enumerate(OUTPUT_PARAMS):
        proc, key = name.split(".")
        value = float(label[proc].get(key, p.default))
        u[i] = float(np.clip(p.to_normalised(float(np.clip(value, p.min, p.max))), 0.0, 1.0))
        if proc == "eq":
            if key.endswith("gain_db"):
                w[i] = 1.0
            else:
                band = key.rsplit("_", 2)[0] if key.endswith("_freq_hz") else key[: -len("_q")]
                w[i] = min(1.0, abs(float(eq.get(f"{band}_gain_db", 0.0))) / 3.0)
        elif proc == "compressor":
            w[i] = {"ratio": 1.0, "makeup_db": 0.1}.get(key, ratio_w)
        else:
            w[i] = 0.3
    return u, w


class PairViews:
    """Map-style dataset of views of pairs (see the module docstring); ``set_epoch(e)`` picks the view.

    Items: ``{"inputs" [22], "u" [20], "w" [20], "label_eq" [13] (real, EQ order), "bands" [10],
    "ceiling", "pre" [2, n], "master" [2, n]}`` with ``n`` = ``chain_s`` seconds (0: no audio).
    """

    def __init__(self, pairs: list[MasterPair], *, views: int, min_window_s: float, max_window_s: float,
                 chain_s: float, seed: int, train: bool, cache: Path | None = None, progress: bool = False) -> None:
        self.pairs, self.views, self.train, self.epoch = list(pairs), int(views), bool(train), 0
        self.min_window_s, self.max_window_s, self.chain_s, self.seed = (float(min_window_s), float(max_window_s),
                                                                          float(chain_s), int(seed))
        self.windows = [[self._window(i, k) for k in range(self.views)] for i in range(len(self.pairs))]
        self.table = self._precompute(cache, progress)

    def __len__(self) -> int:
        return len(self.pairs)

    def set_epoch(self, epoch: int) -> None:
        """Use view ``epoch % views`` of each pair in training (validation always uses view 0)."""
        self.epoch = int(epoch)

    def _window(self, i: int, k: int) -> tuple[int, int]:
        p = self.pairs[i]
        rng = np.random.default_rng([self.seed, 31337, int(hashlib.sha256(p.id.encode()).hexdigest()[:8], 16), k])
        sr, n = p.sample_rate, p.n_samples
        step = max(1, sr // 2)  # lengths on a 0.5 s grid: FFT-friendly sizes (a prime length is 10x slower)
        length = min(n, int(rng.uniform(self.min_window_s, self.max_window_s) * 2) * step)
        start = int(rng.integers(0, n - length + 1))
        return start, length

    def _precompute(self, cache: Path | None, progress: bool) -> dict[str, np.ndarray]:
        from mixbridge.master_features import band_shape_db, master_features

        from ..learned_master import network_inputs

        key = hashlib.sha256(json.dumps([[p.id for p in self.pairs], self.windows]).encode()).hexdigest()[:16]
        path = None if cache is None else cache / f"views-{key}.npz"
        if path is not None and path.is_file():
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        inputs = np.zeros((len(self.pairs), self.views, 22), np.float32)
        bands = np.zeros((len(self.pairs), self.views, 10), np.float32)
        it: Iterable[int] = range(len(self.pairs))
        if progress:
            from tqdm import tqdm

            it = tqdm(it, desc="features", unit="pair", leave=False)
        for i in it:
            p = self.pairs[i]
            pre, mas = p.load()
            for k, (s, n) in enumerate(self.windows[i]):
                a, b = pre[:, s:s + n], mas[:, s:s + n]
                inputs[i, k] = network_inputs(master_features(a, p.sample_rate),
                                              float(p.label["loudness"]["target_lufs"]),
                                              float(p.label["limiter"]["ceiling_dbtp"]))
                bands[i, k] = band_shape_db(b, p.sample_rate) - band_shape_db(a, p.sample_rate)
        table = {"inputs": inputs, "bands": bands}
        if path is not None:
            from mixbridge.atomic import atomic_write_bytes
            from mixbridge.npz import npz_bytes

            atomic_write_bytes(path, npz_bytes(table))
        return table

    def __getitem__(self, i: int) -> dict:
        from ..learned_master import OUTPUT_NAMES

        p = self.pairs[i]
        k = self.epoch % self.views if self.train else 0
        u, w = label_normalised(p.label)
        label_eq = np.array([float(p.label["eq"].get(n.split(".")[1], 0.0)) for n in OUTPUT_NAMES
                             if n.startswith("eq.")])
        item = {"inputs": self.table["inputs"][i, k], "bands": self.table["bands"][i, k], "u": u, "w": w,
                "label_eq": label_eq, "ceiling": float(p.label["limiter"]["ceiling_dbtp"])}
        n = int(self.chain_s * p.sample_rate)
        if n:
            s, length = self.windows[i][k]
            start = s + max(0, (length - n) // 2)
            pre, mas = p.load()
            item["pre"] = np.ascontiguousarray(pre[:, start:start + n], dtype=np.float32)
            item["master"] = np.ascontiguousarray(mas[:, start:start + n], dtype=np.float32)
        return item


def collate_views(items: list[dict], device: str = "cpu") -> dict[str, torch.Tensor]:
    """Stack :class:`PairViews` items into tensors on ``device`` (audio cut to the shortest in the batch)."""
    out = {k: torch.as_tensor(np.stack([it[k] for it in items])).to(device)
           for k in ("inputs", "bands", "u", "w", "label_eq")}
    out["ceiling"] = torch.tensor([it["ceiling"] for it in items], dtype=torch.float64, device=device)
    if "pre" in items[0]:
        n = min(it["pre"].shape[-1] for it in items)
        out["pre"] = torch.as_tensor(np.stack([it["pre"][:, :n] for it in items])).to(device)
        out["master"] = torch.as_tensor(np.stack([it["master"][:, :n] for it in items])).to(device)
    return out


def _log_weights(sample_rate: int, n_fft: int) -> torch.Tensor:
    """Weights ``[n_fft//2+1]`` summing to 1 over 20 Hz .. min(20 kHz, Nyquist), each bin ``1/f`` (log spacing)."""
    f = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    w = np.where((f >= 20.0) & (f <= min(20000.0, 0.499 * sample_rate)), 1.0 / np.maximum(f, 1.0), 0.0)
    return torch.as_tensor(w / w.sum())


class MasteringTask:
    """:class:`~mixbridge.models.learned_master.MasterNet` trained on a pre-master dataset (a :class:`~.trainer.Task`).

    Args:
        data: the dataset's folder. pairs, identity: instead of ``data``, pairs and their identity
            (tests and development sets).
        model_args: :class:`MasterNet` keyword arguments (``sample_rate`` comes from the data).
        views, min_window_s, max_window_s, chain_s: the examples (module docstring).
        param_weight, eq_weight, band_weight, chain_weight: the loss.
        seed: initialisation and view seed. device: ``cpu`` or ``cuda``. cache: where the views'
            features are cached (None: not cached).

    Raises:
        TrainConfigError: an empty train or val split, several sample rates, bad window lengths.
    """

    model_name = "learned"
    train_keys = ("loss", "param", "eq", "bands", "chain")
    val_keys = ("loss", "param", "eq", "bands", "chain", "eq_mae_db", "band_mae_db")

    def __init__(self, data: str | Path | None = None, *, pairs: list[MasterPair] | None = None,
                 identity: dict | None = None, model_args: dict | None = None, views: int = 4,
                 min_window_s: float = 3.0, max_window_s: float = 10.0, chain_s: float = 1.0,
                 param_weight: float = 1.0, eq_weight: float = 1.0, band_weight: float = 0.5,
                 chain_weight: float = 0.2, seed: int = 0, device: str = "cpu", cache: Path | None = None,
                 progress: bool = False) -> None:
        from mixbridge.master_features import MIN_WINDOW_S

        from ..learned_master import MasterNet, fit_standardisation

        if pairs is None:
            if data is None:
                raise TrainConfigError("give a pre-master dataset folder (mixbridge datagen premaster)")
            pairs, identity = read_pairs(data)
        train = [p for p in pairs if p.split == "train"]
        val = [p for p in pairs if p.split == "val"]
        if len(train) < 2 or not val:
            raise TrainConfigError(f"{data}: the train split has {len(train)} pair(s) and val {len(val)}; "
                                   "training needs at least 2 and 1 (build the dataset with more masters)")
        rates = sorted({p.sample_rate for p in train + val})
        if len(rates) != 1:
            raise TrainConfigError(f"{data}: pairs at several sample rates {rates}; rebuild the dataset at one rate")
        if not MIN_WINDOW_S <= min_window_s <= max_window_s or chain_s < 0 or int(views) != views or views < 1:
            raise TrainConfigError(f"min_window_s = {min_window_s} must be >= {MIN_WINDOW_S:g} s and <= max_window_s "
                                   f"= {max_window_s}; chain_s = {chain_s} >= 0; views = {views} a positive integer")
        args = dict(model_args or {})
        if args.get("sample_rate", rates[0]) != rates[0]:
            raise TrainConfigError(f"model_args.sample_rate = {args['sample_rate']} but the data is at {rates[0]} Hz; "
                                   "remove sample_rate from model_args")
        args["sample_rate"] = rates[0]
        torch.manual_seed(seed)
        self.model = MasterNet(**args)
        self.forward_model: Any = self.model
        self.sample_rate, self.device = rates[0], device
        audio_s = chain_s if chain_weight else 0.0
        common: dict[str, Any] = dict(views=views, min_window_s=min_window_s, max_window_s=max_window_s,
                                      chain_s=audio_s, seed=seed, cache=cache, progress=progress)
        self.train_data = PairViews(train, train=True, **common)
        self.val_data = PairViews(val, train=False, **common)
        fit_standardisation(self.model, self.train_data.table["inputs"].reshape(-1, 22))
        digest = hashlib.sha256(" ".join(f"{p.id}:{p.split}:{p.album}" for p in train + val).encode()).hexdigest()
        self.identity = dict(identity or {}) | {"sample_rate": rates[0], "train": len(train), "val": len(val),
                                                "pairs_sha256": digest}
        self.weights = {"param": float(param_weight), "eq": float(eq_weight), "bands": float(band_weight),
                        "chain": float(chain_weight)}
        self.log_w = _log_weights(self.sample_rate, EQ_LOSS_NFFT).to(device)
        import auraloss

        self.stft = auraloss.freq.SumAndDifferenceSTFTLoss(
            fft_sizes=list(CHAIN_FFT_SIZES), hop_sizes=[n // 4 for n in CHAIN_FFT_SIZES],
            win_lengths=list(CHAIN_FFT_SIZES)).to(device)

    def collate(self, items: list[dict]) -> dict[str, torch.Tensor]:
        """:func:`collate_views` on the task's device."""
        return collate_views(items, self.device)

    def real_params(self, u: torch.Tensor) -> dict[str, torch.Tensor]:
        """Normalised outputs ``[B, 20]`` -> ``{"eq.x": [B], ...}`` float64 in real units (differentiable)."""
        from ..console import denormalise
        from ..learned_master import OUTPUT_PARAMS

        return {k: v.double() for k, v in denormalise(OUTPUT_PARAMS, u, check=False).items()}

    def _eq_db(self, eq: Mapping[str, torch.Tensor]) -> torch.Tensor:
        from ..dsp_eq import eq_response

        h = eq_response(self.sample_rate, EQ_LOSS_NFFT, **eq)
        return 20.0 * torch.log10(h.abs().clamp(min=1e-9))

    def losses(self, batch: dict[str, torch.Tensor], model=None) -> dict[str, torch.Tensor]:
        """``{"loss", "param", "eq", "bands", "chain", "eq_err_db", "band_err_db"}`` of a batch."""
        from ..dsp import integrated_lufs
        from ..dsp_dynamics import master_chain
        from ..learned_master import OUTPUT_NAMES

        u, delta = (model or self.forward_model)(batch["inputs"])
        param = (batch["w"] * (u - batch["u"]).abs()).sum() / batch["w"].sum().clamp(min=1.0)
        real = self.real_params(u)
        eq_pred = {k.split(".")[1]: v for k, v in real.items() if k.startswith("eq.")}
        eq_names = [n.split(".")[1] for n in OUTPUT_NAMES if n.startswith("eq.")]
        eq_label = {n: batch["label_eq"][:, j].double() for j, n in enumerate(eq_names)}
        eq_err = ((self._eq_db(eq_pred) - self._eq_db(eq_label)).abs() * self.log_w).sum(dim=-1)
        band_err = (delta - batch["bands"]).abs().mean(dim=-1)
        chain = param.new_zeros(())
        if self.weights["chain"] and "pre" in batch:
            pre, mas = batch["pre"].double(), batch["master"].double()
            comp = {k.split(".")[1]: v for k, v in real.items() if k.startswith("compressor.")}
            lim = {"ceiling_dbtp": batch["ceiling"], "release_ms": real["limiter.release_ms"]}
            with torch.no_grad():
                target_lufs = integrated_lufs(mas, self.sample_rate)
                pre_lufs = integrated_lufs(pre, self.sample_rate)
            gain = (target_lufs - pre_lufs).detach()  # open loop on the input; the EQ/compressor change it a little
            out = master_chain(pre, self.sample_rate, eq_pred, comp, gain, lim)
            lo = integrated_lufs(out, self.sample_rate)
            out_n = out * (10.0 ** ((MIX_REF_LUFS - lo) / 20.0))[:, None, None]
            mas_n = mas * (10.0 ** ((MIX_REF_LUFS - target_lufs) / 20.0))[:, None, None]
            chain = self.stft(out_n.float(), mas_n.float())
        w = self.weights
        eq_term, band_term = eq_err.mean() / EQ_SCALE_DB, band_err.mean() / BAND_SCALE_DB
        loss = (w["param"] * param + w["eq"] * eq_term.float() + w["bands"] * band_term
                + w["chain"] * chain.float())
        return {"loss": loss, "param": param, "eq": eq_term.float(), "bands": band_term, "chain": chain.float(),
                "eq_err_db": eq_err.detach(), "band_err_db": band_err.detach()}

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Training losses of a batch (``loss`` first; no backward)."""
        out = self.losses(batch)
        return {k: out[k] for k in self.train_keys}

    def validate(self, batches: Iterable[dict[str, torch.Tensor]]) -> dict[str, float]:
        """Example-weighted means of the losses, ``eq_mae_db`` (the EQ curve error) and ``band_mae_db``."""
        sums = dict.fromkeys(self.train_keys, 0.0)
        eq_sum = band_sum = 0.0
        n = 0
        for batch in batches:
            with torch.no_grad():
                out = self.losses(batch, self.model)
            b = batch["inputs"].shape[0]
            for k in sums:
                sums[k] += float(out[k]) * b
            eq_sum += float(out["eq_err_db"].sum())
            band_sum += float(out["band_err_db"].sum())
            n += b
        return {k: v / max(n, 1) for k, v in sums.items()} | {"eq_mae_db": eq_sum / max(n, 1),
                                                              "band_mae_db": band_sum / max(n, 1)}


# --------------------------------------------------------------------------- entry point
def train_master(data: str | Path, out_dir: str | Path, *,
                 model_args: dict | None = None,
                 batch_size: int = 16,
                 views: int = 4,
                 min_window_s: float = 3.0,
                 max_window_s: float = 10.0,
                 chain_s: float = 1.0,
                 learning_rate: float = 1e-3,
                 lr_factor: float = 0.5,
                 lr_patience: int = 3,
                 early_stop_patience: int = 10,
                 max_epochs: int = 200,
                 epoch_examples: int | None = None,
                 param_weight: float = 1.0,
                 eq_weight: float = 1.0,
                 band_weight: float = 0.5,
                 chain_weight: float = 0.2,
                 seed: int = 0,
                 num_threads: int = 1,
                 max_minutes: float | None = None,
                 max_steps: int | None = None,
                 device: str = "cpu",
                 resume: bool = False,
                 progress: bool = True,
                 pairs: list[MasterPair] | None = None,
                 identity: dict | None = None) -> dict:
    """Train the learned mastering model on pre-master dataset ``data``; checkpoints and log.csv go to ``out_dir``.

    Args:
        data: a pre-master dataset (``mixbridge datagen premaster``): train split for training, val
            split for validation (by album).
        out_dir: the run folder (created; with ``resume`` it must hold ``last``). The views' features are
            cached in ``out_dir/cache``.
        model_args: :class:`~mixbridge.models.learned_master.MasterNet` arguments.
        batch_size: pairs per step. views, min_window_s, max_window_s, chain_s: see :class:`MasteringTask`.
        learning_rate, lr_factor, lr_patience, early_stop_patience, max_epochs, epoch_examples: the trainer's recipe.
        param_weight, eq_weight, band_weight, chain_weight: the loss weights.
        seed, num_threads, max_minutes, max_steps, device, resume, progress: as ``train_mixer``.
        pairs, identity: pairs given directly instead of read from ``data`` (tests; not part of the recipe).

    Returns:
        The trainer's summary (``stopped``, ``epoch``, ``step``, ``examples``, ``train_seconds``,
        ``best_val_loss``, ``examples_per_s``, ``best``, ``last``).

    Raises:
        TrainConfigError: a bad value, a run folder conflict, a dataset without train/val pairs, or CUDA
            asked for but absent. CheckpointError: a corrupted ``last``.
    """
    settings = dict(locals())
    return run_split_training(lambda task_device: MasteringTask(
        data, pairs=pairs, identity=identity, model_args=model_args, views=views, min_window_s=min_window_s,
        max_window_s=max_window_s, chain_s=chain_s, param_weight=param_weight, eq_weight=eq_weight,
        band_weight=band_weight, chain_weight=chain_weight, seed=seed, device=task_device,
        cache=Path(out_dir) / "cache", progress=progress), out_dir, settings, default_config())


def default_config() -> dict[str, Any]:
    """The recipe keys of :func:`train_master` with their defaults (``pairs``/``identity`` excluded)."""
    return {k: v for k, v in recipe_defaults(train_master).items() if k not in ("pairs", "identity")}


def load_master_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML or TOML config of :func:`train_master` keyword arguments (:func:`.data.load_recipe`).

    Raises:
        TrainConfigError: unreadable or invalid file, or unknown keys (the known ones are listed).
    """
    cfg = load_recipe(path, train_master)
    for key in ("pairs", "identity"):
        if key in cfg:
            raise TrainConfigError(f"{path}: {key} is not a config key (give --data)")
    return cfg


def ship_master(run_dir: str | Path, dest: str | Path, *, eq_intensity: float = 1.0, compressor_intensity: float = 1.0,
                refine_without_reference: bool = True, chosen_on: str = "") -> Path:
    """Ship a run's best checkpoint as ``dest`` (``NAME.json`` + ``NAME.safetensors``, e.g.
    ``models/masterers/learned``) with its inference settings; returns the JSON path. Export the ONNX
    file after it (``python -m mixbridge.export.master_onnx NAME.json NAME.onnx``: models never import
    the export layer).

    :func:`~.mixing.ship_mixer` (no optimizer state; the recipe, data identity and a log summary in
    ``extra``) plus ``extra["inference"]``: ``eq_intensity``, ``compressor_intensity``,
    ``refine_without_reference`` (read by :class:`~mixbridge.models.learned_master.LearnedMasterer`
    and copied into the ONNX sidecar) and ``chosen_on`` (where they were chosen: the val split, never test).

    Raises:
        TrainConfigError: no best checkpoint or log in ``run_dir``; an intensity outside 0..1.
    """
    from .. import learned_master  # noqa: F401 - registers the master-mlp architecture the loader rebuilds
    from .mixing import ship_mixer

    for key, value in (("eq_intensity", eq_intensity), ("compressor_intensity", compressor_intensity)):
        if not 0.0 <= value <= 1.0:
            raise TrainConfigError(f"{key} = {value} must lie in 0..1")
    return ship_mixer(run_dir, dest, description="learned mastering model (master-mlp); see its card",
                      extra={"inference": {"eq_intensity": float(eq_intensity),
                                           "compressor_intensity": float(compressor_intensity),
                                           "refine_without_reference": bool(refine_without_reference),
                                           "chosen_on": chosen_on}})
