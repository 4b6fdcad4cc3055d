"""Proxy training as a trainer task: a neural proxy ``g(x, p) ~ f(x, p)`` of the effect in an effect dataset.

:class:`ProxyTask` opens a mixbridge ``effect`` dataset (``mixbridge datagen effect``)
twice, with random crops for training and centre crops for validation, builds the
registry model sized for it (:func:`build_model_from_config`), and computes
:class:`~mixbridge.models.losses.ProxyLoss` (``L1 + MR-STFT``, thesis bands) between the
proxy's output and the real effect's, cropped to the model's offline output
(:func:`align_target`). Validation adds the ESR of the whole validation split.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from ..losses import ProxyLoss, esr_parts
from .data import TrainConfigError


def build_model_from_config(model: str, model_args: dict | None, *, schema, sample_rate: int, channels: int):
    """The registry model ``model`` with ``model_args``, sized for a dataset.

    ``schema`` (processor names), ``sample_rate`` (Hz) and ``channels`` (``n_inputs`` and
    ``n_outputs``) come from the dataset; ``model_args`` may not set them differently.

    Raises:
        TrainConfigError: ``model_args`` contradicts the dataset.
        UnknownNameError: an unknown registry name.
    """
    from .. import registry

    args = dict(model_args or {})
    fixed = {"schema": tuple(schema), "sample_rate": int(sample_rate), "n_inputs": int(channels),
             "n_outputs": int(channels)}
    for key, value in fixed.items():
        if key in args and (tuple(args[key]) if key == "schema" else args[key]) != value:
            raise TrainConfigError(f"model_args.{key} = {args[key]!r} but the dataset needs {value!r}; "
                                   f"remove {key} from model_args (it comes from the dataset)")
        args[key] = value
    return registry.create(model, **args)


def align_target(model, target: torch.Tensor) -> torch.Tensor:
    """Crop ``target [batch, channels, samples]`` to the model's offline output (centre-cropped models are shorter)."""
    n_out = model.output_length(target.shape[-1])
    off = model.center_offset_samples
    return target[..., off:off + n_out]


def dataset_identity(ds) -> dict:
    """What identifies an effect dataset for a run: kind, processors, backend, seeds, rates, distributions, size."""
    cfg = ds.config
    return {"root": str(ds.root), "kind": cfg.get("kind"), "processors": cfg.get("processors"),
            "backend": cfg.get("backend"), "plugin_maps": sorted((cfg.get("plugin_maps") or {}).keys()),
            "seed": cfg.get("seed"), "sample_rate": cfg.get("sample_rate"), "channels": cfg.get("channels"),
            "patch_samples": cfg.get("patch_samples"), "param_names": cfg.get("param_names"),
            "param_dists": cfg.get("param_dists") or {}, "augmentations": cfg.get("augmentations"),
            "sources": sorted({s["path"].split("/")[0] for s in cfg.get("sources", [])}),
            "n_examples": len(ds)}


class ProxyTask:
    """Train a proxy of the effect in dataset ``data`` (a :class:`~mixbridge.models.training.trainer.Task`).

    Args:
        data: a mixbridge ``effect`` dataset; its processors, parameter names, sample rate
            and channels define the proxy.
        model, model_args: registry name and constructor arguments (not schema,
            sample_rate or channels, which come from the dataset).
        patch_samples: crop length in samples (random for training, centred for validation).
        l1_weight, stft_weight, esr_weight, pre_emphasis, warmup_samples: the
            :class:`~mixbridge.models.losses.ProxyLoss`.
        seed: model initialisation (``torch.manual_seed``) and crop seed.
        device: torch device of the batches and the loss.
        init_from: start from this checkpoint's weights (its constructor arguments must
            equal the model's); ignored when ``resume`` (the trainer loads ``last``).

    Raises:
        TrainConfigError: not an effect dataset, parameters that differ from the proxy
            schema, a patch too short for the receptive field or warmup, or an
            ``init_from`` checkpoint of another model.
        CheckpointError: a corrupted ``init_from`` checkpoint.
    """

    train_keys: Sequence[str] = ("loss", "l1", "stft", "esr_term")
    val_keys: Sequence[str] = ("loss", "l1", "stft", "esr_term", "esr")
    model_name: str | None

    def __init__(self, data: str | Path, *, model: str = "tcn-rt", model_args: dict | None = None,
                 patch_samples: int = 32768, l1_weight: float = 1.0, stft_weight: float = 1.0,
                 esr_weight: float = 0.0, pre_emphasis: float = 0.0, warmup_samples: int = 0, seed: int = 0,
                 device: str = "cpu", init_from: str | None = None, resume: bool = False) -> None:
        from ..checkpoint import load_checkpoint
        from ..dataset import MixbridgeDataset

        self.train_data = MixbridgeDataset(data, patch_samples=patch_samples, random_patch=True, seed=seed)
        if self.train_data.kind != "effect":
            raise TrainConfigError(f"{data}: a {self.train_data.kind!r} dataset; proxies train on effect datasets "
                                   "(mixbridge datagen effect)")
        self.val_data = MixbridgeDataset(data, patch_samples=patch_samples, random_patch=False, seed=seed)
        self.identity = dataset_identity(self.train_data)
        self.model_name = model
        self.device = device
        ds = self.train_data
        torch.manual_seed(seed)
        net = build_model_from_config(model, model_args, schema=list(ds.config["processors"]),
                                      sample_rate=ds.sample_rate, channels=int(ds.config.get("channels", 1)))
        if list(net.param_names) != list(ds.param_names):
            raise TrainConfigError(f"{data}: dataset parameters {ds.param_names} differ from the proxy schema "
                                   f"{net.param_names}; regenerate the dataset with this mixbridge")
        if net.output_length(patch_samples) < 1 or patch_samples <= 2 * warmup_samples:
            raise TrainConfigError(f"patch_samples = {patch_samples} is too short for the receptive field "
                                   f"({net.receptive_field}) or warmup_samples ({warmup_samples})")
        if init_from is not None and not resume:
            init, _ = load_checkpoint(init_from, expect_param_names=net.param_names,
                                      expect_sample_rate=net.sample_rate)
            if init.config() != net.config():
                diff = sorted(k for k in net.config() if init.config().get(k) != net.config()[k])
                raise TrainConfigError(f"init_from {init_from}: its model differs from the config's in {diff}; "
                                       "use the config the checkpoint was trained with")
            net.load_state_dict(init.state_dict())
        self.model = net
        self.forward_model: Any = net
        self.loss = ProxyLoss(l1_weight=l1_weight, stft_weight=stft_weight, esr_weight=esr_weight,
                              pre_emphasis=pre_emphasis, warmup_samples=warmup_samples,
                              sample_rate=ds.sample_rate, device=device)

    def collate(self, items: list[dict]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(input [B, C, S], target [B, C, S], params [B, P])`` on the task's device."""
        return (torch.stack([it["input"] for it in items]).to(self.device),
                torch.stack([it["target"] for it in items]).to(self.device),
                torch.stack([it["params"] for it in items]).to(self.device))

    def step(self, batch) -> dict[str, torch.Tensor]:
        """``{"loss", "l1", "stft", "esr_term"}`` of the proxy's output on a training batch (tensors with gradients)."""
        x, y, p = batch
        t = self.loss.terms(self.forward_model(x, p), align_target(self.model, y))
        return {"loss": t["loss"], "l1": t["l1"], "stft": t["stft"], "esr_term": t["esr"]}

    def validate(self, batches: Iterable) -> dict[str, float]:
        """Example-weighted means of the loss terms, and the ESR of the whole split (no pre-emphasis)."""
        tot = {"loss": 0.0, "l1": 0.0, "stft": 0.0, "esr_term": 0.0}
        err = ref = 0.0
        n = 0
        for x, y, p in batches:
            out = self.model(x, p)
            y = align_target(self.model, y)
            t = self.loss.terms(out, y)
            b = x.shape[0]
            for key, name in (("loss", "loss"), ("l1", "l1"), ("stft", "stft"), ("esr_term", "esr")):
                tot[key] += float(t[name]) * b
            e, r = esr_parts(out, y)
            err += float(e)
            ref += float(r)
            n += b
        return {k: v / n for k, v in tot.items()} | {"esr": err / max(ref, 1e-12)}
