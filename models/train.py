"""Training a neural proxy ``g(x, p) ~ f(x, p)`` from a mixbridge effect dataset.

:func:`train_proxy` is the library entry point behind ``mixbridge train proxy``.
It follows the thesis recipe (Steinmetz 2020, ch. 4; DESIGN.md §2): Adam at
3e-4, the learning rate halved when the validation loss plateaus
(``ReduceLROnPlateau``), early stopping, and the loss ``L1 + MR-STFT``
(auraloss ``MultiResolutionSTFTLoss`` with the thesis bands: FFT 512/1024/2048,
hops 50/120/240, windows 240/600/1200). The dataset's last ``val_fraction`` of a
seeded permutation of example indices is the validation split (centre crops,
never trained on).

A run folder holds::

    RUN_DIR/train_config.json     the keyword arguments of train_proxy and the dataset identity
    RUN_DIR/last.json|.safetensors|.optim.safetensors   written after every epoch (resumable)
    RUN_DIR/best.json|.safetensors                      the lowest validation loss so far
    RUN_DIR/log.csv               one row per epoch: losses, ESR, learning rate, time, examples/s

Checkpoints record the model's constructor arguments, the progress (epoch,
step, examples seen, best validation loss, epochs without improvement,
training seconds) and the optimizer and scheduler state, so ``resume=True``
continues exactly where the last epoch ended, on CPU or CUDA. A run stopped by
``max_minutes`` saves ``last`` first.

The keyword arguments of :func:`train_proxy` are the whole training config
(STYLE.md point 10); config files bind to them only in the CLI
(:func:`load_train_config`).
"""
from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path
from typing import Any

from mixbridge.errors import MixbridgeError

#: The thesis MR-STFT bands (DESIGN.md §2), also used by :mod:`mixbridge.models.metrics`.
STFT_FFT_SIZES = (512, 1024, 2048)
STFT_HOP_SIZES = (50, 120, 240)
STFT_WIN_LENGTHS = (240, 600, 1200)

LOG_FIELDS = ("epoch", "step", "examples", "train_seconds", "lr", "train_loss", "train_l1", "train_stft",
              "val_loss", "val_l1", "val_stft", "val_esr", "examples_per_s", "best")

#: Keys of train_config.json that may differ when a run is resumed (budgets, not the recipe).
RESUMABLE_KEYS = ("max_epochs", "max_minutes", "max_steps", "device", "progress", "early_stop_patience",
                  "num_threads", "init_from")


class TrainConfigError(ValueError, MixbridgeError):
    """A training config or run folder that cannot be used (the message names the key and the fix)."""


def default_config() -> dict[str, Any]:
    """The training keyword arguments with their defaults (the recipe of :func:`train_proxy`)."""
    import inspect

    sig = inspect.signature(train_proxy)
    return {k: p.default for k, p in sig.parameters.items() if p.kind is p.KEYWORD_ONLY}


def load_train_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML or TOML training config into :func:`train_proxy` keyword arguments.

    Raises:
        TrainConfigError: unreadable file, unknown keys (the known ones are listed),
            or a key that is not a training argument.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise TrainConfigError(f"{path}: cannot read the training config ({e})") from None
    try:
        if path.suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text) or {}
    except Exception as e:
        raise TrainConfigError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'YAML'} ({e})") from None
    if not isinstance(data, dict):
        raise TrainConfigError(f"{path}: a training config is a mapping of train_proxy arguments")
    known = default_config()
    unknown = sorted(set(data) - set(known) - {"description"})
    if unknown:
        raise TrainConfigError(f"{path}: unknown training keys {unknown}; known: {', '.join(sorted(known))}")
    data.pop("description", None)
    return data


def build_model_from_config(model: str, model_args: dict | None, *, schema, sample_rate: int, channels: int):
    """The registry model ``model`` with ``model_args``, sized for a dataset.

    ``schema``, ``sample_rate``, ``n_inputs`` and ``n_outputs`` come from the
    dataset; ``model_args`` may not set them differently.

    Raises:
        TrainConfigError: ``model_args`` contradicts the dataset.
        UnknownNameError: an unknown registry name.
    """
    from . import registry

    args = dict(model_args or {})
    fixed = {"schema": tuple(schema), "sample_rate": int(sample_rate), "n_inputs": int(channels),
             "n_outputs": int(channels)}
    for key, value in fixed.items():
        if key in args and (tuple(args[key]) if key == "schema" else args[key]) != value:
            raise TrainConfigError(f"model_args.{key} = {args[key]!r} but the dataset needs {value!r}; "
                                   f"remove {key} from model_args (it comes from the dataset)")
        args[key] = value
    return registry.create(model, **args)


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """``(train, val)`` positions of a seeded permutation of ``range(n)``; at least one of each when n >= 2.

    Raises:
        TrainConfigError: ``val_fraction`` outside [0, 0.5] or fewer than 2 examples.
    """
    import numpy as np

    if not 0.0 <= val_fraction <= 0.5:
        raise TrainConfigError(f"val_fraction = {val_fraction} must be in 0..0.5")
    if n < 2:
        raise TrainConfigError(f"the dataset has {n} example(s); training needs at least 2 (one for validation)")
    perm = np.random.default_rng([int(seed), 7919]).permutation(n)
    n_val = max(1, int(round(n * val_fraction)))
    return sorted(perm[n_val:].tolist()), sorted(perm[:n_val].tolist())


class ProxyLoss:
    """``l1_weight * L1 + stft_weight * MR-STFT`` (auraloss, thesis bands) on ``[batch, channels, samples]``.

    ``warmup_samples`` leading output samples are left out of the loss (the
    proxy's state before a random crop is unknown). Returns ``(loss, l1, stft)``
    as tensors.
    """

    def __init__(self, *, l1_weight: float = 1.0, stft_weight: float = 1.0, warmup_samples: int = 0,
                 device: str = "cpu") -> None:
        import auraloss

        self.l1_weight, self.stft_weight = float(l1_weight), float(stft_weight)
        self.warmup_samples = int(warmup_samples)
        self.stft = auraloss.freq.MultiResolutionSTFTLoss(
            fft_sizes=list(STFT_FFT_SIZES), hop_sizes=list(STFT_HOP_SIZES),
            win_lengths=list(STFT_WIN_LENGTHS)).to(device)

    def __call__(self, output, target):
        w = self.warmup_samples if output.shape[-1] > 2 * self.warmup_samples else 0
        output, target = output[..., w:], target[..., w:]
        l1 = (output - target).abs().mean()
        stft = self.stft(output, target) if self.stft_weight else l1.new_zeros(())
        return self.l1_weight * l1 + self.stft_weight * stft, l1, stft


def align_target(model, target):
    """Crop ``target [B, C, S]`` to the model's offline output (centre-cropped models are shorter)."""
    n_out = model.output_length(target.shape[-1])
    off = model.center_offset_samples
    return target[..., off:off + n_out]


def _dataset_identity(ds) -> dict:
    cfg = ds.config
    return {"root": str(ds.root), "kind": cfg.get("kind"), "processors": cfg.get("processors"),
            "backend": cfg.get("backend"), "plugin_maps": sorted((cfg.get("plugin_maps") or {}).keys()),
            "seed": cfg.get("seed"), "sample_rate": cfg.get("sample_rate"), "channels": cfg.get("channels"),
            "patch_samples": cfg.get("patch_samples"), "param_names": cfg.get("param_names"),
            "param_dists": cfg.get("param_dists") or {}, "augmentations": cfg.get("augmentations"),
            "sources": sorted({s["path"].split("/")[0] for s in cfg.get("sources", [])}),
            "n_examples": len(ds)}


def train_proxy(data: str | Path, out_dir: str | Path, *,
                model: str = "tcn-rt",
                model_args: dict | None = None,
                batch_size: int = 4,
                patch_samples: int = 32768,
                val_fraction: float = 0.1,
                learning_rate: float = 3e-4,
                lr_factor: float = 0.5,
                lr_patience: int = 2,
                early_stop_patience: int = 6,
                max_epochs: int = 200,
                epoch_examples: int | None = None,
                l1_weight: float = 1.0,
                stft_weight: float = 1.0,
                warmup_samples: int = 0,
                seed: int = 0,
                num_threads: int = 1,
                max_minutes: float | None = None,
                max_steps: int | None = None,
                device: str = "cpu",
                init_from: str | None = None,
                resume: bool = False,
                progress: bool = True) -> dict:
    """Train a proxy of the effect in dataset ``data``; checkpoints and logs go to ``out_dir``.

    Args:
        data: a mixbridge ``effect`` dataset (``mixbridge datagen effect``); its
            processors, parameter names, sample rate and channels define the proxy.
        out_dir: the run folder (created; with ``resume`` it must hold ``last``).
        model: registry name (``tcn-rt``, ``tcn-10-causal``, ...); ``model_args``
            override its constructor arguments (not schema/sample_rate/channels).
        batch_size: examples per step.
        patch_samples: random crop length in samples (validation uses centre crops).
        val_fraction: share of examples held out for validation (seeded split).
        learning_rate: Adam's rate (3e-4, the thesis's); ``lr_factor`` and
            ``lr_patience`` (epochs) drive ``ReduceLROnPlateau`` on the validation loss.
        early_stop_patience: stop after this many epochs without a better validation loss.
        max_epochs: at most this many epochs; ``epoch_examples`` (default: the
            training split) is the number of examples between validations.
        l1_weight, stft_weight: loss weights of L1 and MR-STFT.
        warmup_samples: leading output samples left out of the loss.
        seed: initialisation, split, crop and shuffle seed.
        num_threads: torch CPU threads (``torch.set_num_threads``).
        max_minutes: wall-clock budget of this call; the run stops and saves ``last``.
        max_steps: total optimizer steps (over all resumptions) after which the run stops.
        device: ``cpu`` or ``cuda``.
        init_from: start a new run from this checkpoint's weights (e.g. a shipped proxy, to
            continue its training on a GPU); its constructor arguments must equal the
            config's model. The optimizer starts fresh.
        resume: continue from ``out_dir/last`` (weights, optimizer, scheduler, progress, log).
        progress: show tqdm progress bars.

    Returns:
        A summary dict: ``stopped`` (why), ``epoch``, ``step``, ``examples``,
        ``train_seconds``, ``best_val_loss``, ``best_val_esr``, ``examples_per_s`` and
        the checkpoint paths.

    Raises:
        TrainConfigError: a bad value, a dataset that is not an effect dataset, an
            existing run without ``resume``, ``resume`` without a run, a resumed run
            whose recipe differs (the keys are named), or CUDA asked for but absent.
        CheckpointError: a corrupted ``last`` checkpoint.
    """
    import numpy as np
    import torch
    from tqdm import tqdm

    from .checkpoint import load_checkpoint, load_training_state, save_checkpoint
    from .dataset import MixbridgeDataset
    from .metrics import esr as esr_metric  # noqa: F401  (documented metric; batch ESR below)

    recipe = {k: v for k, v in locals().items() if k in default_config()}
    recipe["model_args"] = dict(model_args or {})
    out_dir = Path(out_dir)
    for key, value in (("batch_size", batch_size), ("patch_samples", patch_samples), ("max_epochs", max_epochs),
                       ("num_threads", num_threads), ("lr_patience", lr_patience),
                       ("early_stop_patience", early_stop_patience)):
        if int(value) != value or value < (0 if key.endswith("patience") else 1):
            raise TrainConfigError(f"{key} = {value!r} must be a positive integer")
    if not learning_rate > 0 or not 0 < lr_factor < 1:
        raise TrainConfigError(f"learning_rate = {learning_rate} must be > 0 and lr_factor = {lr_factor} in (0, 1)")
    if device not in ("cpu", "cuda"):
        raise TrainConfigError(f"device = {device!r}; use cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise TrainConfigError("device = 'cuda' but torch sees no CUDA device; use --device cpu")
    torch.set_num_threads(int(num_threads))

    ds = MixbridgeDataset(data, patch_samples=patch_samples, random_patch=True, seed=seed)
    if ds.kind != "effect":
        raise TrainConfigError(f"{data}: a {ds.kind!r} dataset; proxies train on effect datasets "
                               "(mixbridge datagen effect)")
    val_ds = MixbridgeDataset(data, patch_samples=patch_samples, random_patch=False, seed=seed)
    identity = _dataset_identity(ds)
    processors = list(ds.config["processors"])

    config_path = out_dir / "train_config.json"
    last = out_dir / "last.json"
    if resume:
        if not last.exists() or not config_path.exists():
            raise TrainConfigError(f"{out_dir}: nothing to resume (no last.json / train_config.json); "
                                   "drop --resume to start a new run")
        saved = json.loads(config_path.read_text())
        diff = sorted(k for k in set(saved["recipe"]) | set(recipe)
                      if k not in RESUMABLE_KEYS and k != "resume" and saved["recipe"].get(k) != recipe.get(k))
        if diff:
            raise TrainConfigError(f"{out_dir}: the run was started with other values for {diff}; "
                                   "resume with the same config (only budgets such as max_minutes may change)")
        ident_diff = sorted(k for k in identity if k != "root" and k in saved["dataset"]
                            and saved["dataset"][k] != identity[k])
        if ident_diff:
            raise TrainConfigError(f"{data}: not the dataset this run was trained on (differs in {ident_diff})")
    elif last.exists():
        raise TrainConfigError(f"{out_dir}: already holds a run (last.json); pass --resume to continue it, "
                               "or choose another output folder")

    torch.manual_seed(seed)
    net = build_model_from_config(model, model_args, schema=processors, sample_rate=ds.sample_rate,
                                  channels=int(ds.config.get("channels", 1)))
    if list(net.param_names) != list(ds.param_names):
        raise TrainConfigError(f"{data}: dataset parameters {ds.param_names} differ from the proxy schema "
                               f"{net.param_names}; regenerate the dataset with this mixbridge")
    if net.output_length(patch_samples) < 1 or patch_samples <= 2 * warmup_samples:
        raise TrainConfigError(f"patch_samples = {patch_samples} is too short for the receptive field "
                               f"({net.receptive_field}) or warmup_samples ({warmup_samples})")
    if init_from is not None and not resume:
        init, _ = load_checkpoint(init_from, expect_param_names=net.param_names, expect_sample_rate=net.sample_rate)
        if init.config() != net.config():
            diff = sorted(k for k in net.config() if init.config().get(k) != net.config()[k])
            raise TrainConfigError(f"init_from {init_from}: its model differs from the config's in {diff}; "
                                   "use the config the checkpoint was trained with")
        net.load_state_dict(init.state_dict())
    opt = torch.optim.Adam(net.parameters(), lr=learning_rate)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=lr_factor, patience=lr_patience)
    state = {"epoch": 0, "step": 0, "examples": 0, "train_seconds": 0.0, "best_val_loss": math.inf,
             "best_val_esr": None, "bad_epochs": 0, "best_epoch": None}
    if resume:
        loaded, _ = load_checkpoint(last, expect_param_names=net.param_names, expect_sample_rate=net.sample_rate)
        net.load_state_dict(loaded.state_dict())
        state.update(load_training_state(last, opt, sched))
        if state.get("best_val_loss") is None:
            state["best_val_loss"] = math.inf
    else:
        out_dir.mkdir(parents=True, exist_ok=True)
        config_path.write_text(json.dumps({"recipe": recipe, "dataset": identity,
                                           "model_name": model}, indent=2, sort_keys=True) + "\n")
    net.to(device)
    loss_fn = ProxyLoss(l1_weight=l1_weight, stft_weight=stft_weight, warmup_samples=warmup_samples, device=device)
    train_idx, val_idx = split_indices(len(ds), val_fraction, seed)
    per_epoch = int(epoch_examples or len(train_idx))
    log_path = out_dir / "log.csv"
    if not log_path.exists():
        with open(log_path, "w", newline="") as f:
            csv.writer(f).writerow(LOG_FIELDS)

    def batches(indices, dataset):
        for i in range(0, len(indices), batch_size):
            items = [dataset[j] for j in indices[i:i + batch_size]]
            yield (torch.stack([it["input"] for it in items]).to(device),
                   torch.stack([it["target"] for it in items]).to(device),
                   torch.stack([it["params"] for it in items]).to(device))

    def validate() -> dict:
        net.eval()
        tot = {"loss": 0.0, "l1": 0.0, "stft": 0.0}
        err = ref = 0.0
        n = 0
        with torch.no_grad():
            for x, y, p in batches(val_idx, val_ds):
                out = net(x, p)
                y = align_target(net, y)
                loss, l1, stft = loss_fn(out, y)
                b = x.shape[0]
                tot["loss"] += float(loss) * b
                tot["l1"] += float(l1) * b
                tot["stft"] += float(stft) * b
                err += float(((out - y) ** 2).sum())
                ref += float((y ** 2).sum())
                n += b
        net.train()
        return {k: v / n for k, v in tot.items()} | {"esr": err / max(ref, 1e-12)}

    def checkpoint(name: str, opt_state: bool) -> Path:
        extra = {"train_config": recipe, "dataset": identity, "model_name": model}
        return save_checkpoint(net, out_dir / name, model_name=model, progress=dict(state), extra=extra,
                               optimizer=opt if opt_state else None, scheduler=sched if opt_state else None)

    t_call = time.monotonic()
    stopped = None
    net.train()
    while stopped is None:
        if state["epoch"] >= max_epochs:
            stopped = "max_epochs"
            break
        if early_stop_patience and state["bad_epochs"] >= early_stop_patience:
            stopped = "early_stopping"
            break
        ds.set_epoch(state["epoch"])
        # an epoch: ``per_epoch`` examples from permutations of the training split, seeded by
        # (seed, epoch) so a resumed run draws exactly what an uninterrupted one would
        rng = np.random.default_rng([seed, 104729, state["epoch"]])
        epoch_order: list[int] = []
        while len(epoch_order) < per_epoch:
            epoch_order.extend(np.asarray(train_idx)[rng.permutation(len(train_idx))].tolist())
        epoch_order = epoch_order[:per_epoch]
        sums = {"loss": 0.0, "l1": 0.0, "stft": 0.0}
        seen = 0
        t0 = time.monotonic()
        bar = tqdm(total=len(epoch_order), desc=f"epoch {state['epoch'] + 1}", unit="ex", disable=not progress,
                   leave=False)
        for x, y, p in batches(epoch_order, ds):
            out = net(x, p)
            loss, l1, stft = loss_fn(out, align_target(net, y))
            if not torch.isfinite(loss):
                raise TrainConfigError(f"training diverged at step {state['step']} (loss {loss.item()}); "
                                       "lower learning_rate or check the dataset for NaN")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            b = x.shape[0]
            state["step"] += 1
            state["examples"] += b
            seen += b
            sums["loss"] += loss.item() * b
            sums["l1"] += l1.item() * b
            sums["stft"] += stft.item() * b
            bar.update(b)
            bar.set_postfix(loss=f"{loss.item():.4f}")
            if max_minutes is not None and time.monotonic() - t_call > 60.0 * max_minutes:
                stopped = "max_minutes"
                break
            if max_steps is not None and state["step"] >= max_steps:
                stopped = "max_steps"
                break
        bar.close()
        dt = time.monotonic() - t0
        state["train_seconds"] += dt
        if seen == 0:
            break
        val = validate()
        complete = seen == len(epoch_order)
        state["epoch"] += 1 if complete else 0  # a cut-short epoch is not counted (resume redoes it)
        improved = val["loss"] < state["best_val_loss"]
        if improved:
            state.update(best_val_loss=val["loss"], best_val_esr=val["esr"], bad_epochs=0,
                         best_epoch=state["epoch"])
        else:
            state["bad_epochs"] += 1
        sched.step(val["loss"])
        if improved:
            checkpoint("best", opt_state=False)
        checkpoint("last", opt_state=True)
        row = {"epoch": state["epoch"], "step": state["step"], "examples": state["examples"],
               "train_seconds": round(state["train_seconds"], 2), "lr": opt.param_groups[0]["lr"],
               "train_loss": sums["loss"] / seen, "train_l1": sums["l1"] / seen, "train_stft": sums["stft"] / seen,
               "val_loss": val["loss"], "val_l1": val["l1"], "val_stft": val["stft"], "val_esr": val["esr"],
               "examples_per_s": round(seen / max(dt, 1e-9), 3), "best": int(improved)}
        with open(log_path, "a", newline="") as f:
            csv.writer(f).writerow([row[k] for k in LOG_FIELDS])
        if progress:
            tqdm.write(f"epoch {state['epoch']}: train {row['train_loss']:.4f} val {val['loss']:.4f} "
                       f"(L1 {val['l1']:.5f}, MR-STFT {val['stft']:.4f}, ESR {val['esr']:.4f}) "
                       f"lr {row['lr']:.2e} {row['examples_per_s']:.2f} ex/s{' *' if improved else ''}")
    return {"stopped": stopped, "epoch": state["epoch"], "step": state["step"], "examples": state["examples"],
            "train_seconds": state["train_seconds"], "best_val_loss": state["best_val_loss"],
            "best_val_esr": state["best_val_esr"],
            "examples_per_s": state["examples"] / max(state["train_seconds"], 1e-9),
            "best": str(out_dir / "best.json"), "last": str(out_dir / "last.json")}


def _run_summary(run_dir: Path) -> dict:
    with open(run_dir / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise TrainConfigError(f"{run_dir}: log.csv has no epoch yet")
    saved = json.loads((run_dir / "train_config.json").read_text())
    last = rows[-1]
    best = min(rows, key=lambda r: float(r["val_loss"]))
    return {"run": run_dir.name, "recipe": saved["recipe"], "epochs_logged": len(rows), "steps": int(last["step"]),
            "examples": int(last["examples"]), "train_seconds": float(last["train_seconds"]),
            "best_epoch": int(best["epoch"]), "best_val_loss": float(best["val_loss"]),
            "best_val_esr": float(best["val_esr"]), "final_lr": float(last["lr"])}


def ship_proxy(run_dir: str | Path, data: str | Path, dest: str | Path, *, description: str = "",
               earlier_runs: tuple = ()) -> Path:
    """Copy a run's best checkpoint to ``dest`` (``NAME.json`` + ``NAME.safetensors``) for shipping.

    The copy has no optimizer state (small), and its record's ``extra`` holds the
    training recipe, the dataset identity with its parameter distributions (the
    trained ranges :mod:`mixbridge.models.compare` flags against), and a training
    summary from ``log.csv`` (epochs, steps, examples, training seconds, best
    validation loss and ESR).

    ``earlier_runs`` are the run folders this run continued from (``init_from``),
    in order; their summaries are recorded as earlier ``phases``, and the totals
    (steps, examples, training seconds) count every phase.

    Raises:
        TrainConfigError: no best checkpoint or log in ``run_dir``.
        CheckpointError: a corrupted checkpoint.
    """
    from .checkpoint import load_checkpoint, save_checkpoint
    from .dataset import MixbridgeDataset

    run_dir = Path(run_dir)
    best, log_path = run_dir / "best.json", run_dir / "log.csv"
    if not best.exists() or not log_path.exists():
        raise TrainConfigError(f"{run_dir}: no best.json / log.csv; train first (mixbridge train proxy)")
    model, record = load_checkpoint(best)
    saved = json.loads((run_dir / "train_config.json").read_text())
    ds = MixbridgeDataset(data)
    identity = _dataset_identity(ds)
    identity["root"] = Path(identity["root"]).name
    phases = [_run_summary(Path(r)) for r in earlier_runs] + [_run_summary(run_dir)]
    summary = {"steps": sum(p["steps"] for p in phases), "examples": sum(p["examples"] for p in phases),
               "train_seconds": sum(p["train_seconds"] for p in phases),
               "best_epoch": record["progress"].get("best_epoch"),
               "best_val_loss": record["progress"].get("best_val_loss"),
               "best_val_esr": record["progress"].get("best_val_esr"), "phases": phases}
    extra = {"train_config": saved["recipe"], "dataset": identity, "training": summary,
             "model_name": saved.get("model_name"), "description": description}
    return save_checkpoint(model, dest, model_name=record.get("model_name"), progress=record["progress"], extra=extra)
