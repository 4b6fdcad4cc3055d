"""Proxy checkpoints: safetensors weights plus a JSON record of how to rebuild them.

A checkpoint is two files side by side, ``NAME.safetensors`` (the state dict) and
``NAME.json``::

    {"format": "mixbridge-checkpoint", "format_version": 1,
     "architecture": "tcn-film", "model_name": "tcn-tiny" | null,
     "config": {...constructor kwargs...},
     "schema": {"entries": ["compressor"], "param_names": ["compressor.threshold_db", ...],
                "params": {"compressor.threshold_db": {"unit": "dB", "min": -60.0, ...}}},
     "sample_rate": 48000, "receptive_field": 31, "latency_samples": 15,
     "weights_file": "NAME.safetensors", "weights_sha256": "...",
     "progress": {...epoch, step, best loss...}, "extra": {...},
     "training_state": null | {"optimizer": "Adam", "optimizer_file": "NAME.optim.safetensors",
                               "optimizer_sha256": "...", "optimizer_plain": {...},
                               "scheduler": "ReduceLROnPlateau", "scheduler_state": {...}}}

Both are written atomically (:mod:`mixbridge.atomic`). Loading never unpickles:
weights go through safetensors, and the loader refuses unknown format versions,
a weights file whose checksum does not match, a schema that no longer matches
:mod:`mixbridge.schema`, and (when asked) a different parameter schema or
sample rate than the caller expects.

:func:`load_mixer_network` is the one "shipped-or-given weights, checked architecture" step of the
learned mixers (``models/mixers/NAME.json``, :data:`SHIPPED_MIXERS_DIR`).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from mixbridge.atomic import atomic_write_bytes, atomic_write_text
from mixbridge.checksum import sha256_bytes
from mixbridge.proxy_schema import schema_differences, schema_record
from mixbridge.records import RecordFormatError, read_record

from .registry import build_architecture

CHECKPOINT_FORMAT = "mixbridge-checkpoint"
CHECKPOINT_VERSION = 1
SUPPORTED_VERSIONS = (1,)


class CheckpointError(RecordFormatError):
    """A checkpoint that is missing, malformed, of an unknown version or corrupted."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint for another parameter schema or sample rate than the caller's."""


def checkpoint_record(model: Any, model_name: str | None = None) -> dict:
    """The JSON-able description of ``model`` (no weights, no checksum): a model of a registered
    architecture, with ``architecture``, ``config()``, ``schema``, ``sample_rate``,
    ``receptive_field`` and ``latency_samples`` (None where it neither streams nor delays)."""
    return {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "architecture": model.architecture,
        "model_name": model_name,
        "config": model.config(),
        "schema": schema_record(model.schema),
        "sample_rate": model.sample_rate,
        "receptive_field": model.receptive_field,
        "latency_samples": model.latency_samples,
    }


def save_checkpoint(model: torch.nn.Module, path: str | Path, *, model_name: str | None = None,
                    progress: dict | None = None, extra: dict | None = None,
                    optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None,
                    weights_dtype: str | None = None) -> Path:
    """Write ``PATH.safetensors`` and ``PATH.json``; returns the JSON path.

    ``weights_dtype="float16"`` stores the floating-point weights as IEEE half floats (half the file; a
    relative rounding of at most 2^-11 per weight), recorded as ``weights_dtype``; :func:`load_checkpoint`
    copies them into the model's own float32 parameters. Only for shipping a large model: training
    checkpoints keep float32 (``None``).

    ``path`` may end in ``.safetensors``, ``.json`` or have no suffix.
    ``progress`` (epoch, step, losses...) and ``extra`` must be JSON-able. With
    ``optimizer`` (and ``scheduler``, e.g. ``ReduceLROnPlateau``) the training state
    is saved too, for :func:`load_training_state`: optimizer tensors in
    ``PATH.optim.safetensors`` (checksummed), hyper-parameters and the scheduler's
    state in the JSON record. Nothing is pickled.
    """
    if weights_dtype not in (None, "float16"):
        raise CheckpointError(f"weights_dtype = {weights_dtype!r}; give None (float32) or 'float16'")
    base = _base(Path(path))
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if weights_dtype == "float16":
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    data = st_save(state)
    weights = _with(base, ".safetensors")
    record = checkpoint_record(model, model_name)
    record.update(weights_file=weights.name, weights_sha256=sha256_bytes(data, prefixed=False),
                  progress=progress or {}, extra=extra or {}, training_state=None)
    if weights_dtype is not None:
        record["weights_dtype"] = weights_dtype
    if optimizer is not None:
        tensors, plain = _flatten_optimizer(optimizer)
        optim_data = st_save(tensors)
        optim_path = _with(base, ".optim.safetensors")
        record["training_state"] = {
            "optimizer": type(optimizer).__name__, "optimizer_file": optim_path.name,
            "optimizer_sha256": sha256_bytes(optim_data, prefixed=False), "optimizer_plain": plain,
            "scheduler": type(scheduler).__name__ if scheduler is not None else None,
            "scheduler_state": scheduler.state_dict() if scheduler is not None else None,
        }
        atomic_write_bytes(optim_path, optim_data)
    atomic_write_bytes(weights, data)
    json_path = _with(base, ".json")
    try:
        text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    except TypeError as e:
        raise CheckpointError(f"progress, extra and scheduler state must be JSON-able: {e}") from None
    atomic_write_text(json_path, text)
    return json_path


def _flatten_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    plain_state: dict[str, dict] = {}
    for idx, st in sd["state"].items():
        for key, value in st.items():
            if torch.is_tensor(value):
                tensors[f"state.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                plain_state.setdefault(str(idx), {})[key] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"state": plain_state, "param_groups": groups}


def load_training_state(path: str | Path, optimizer: torch.optim.Optimizer, scheduler: Any = None) -> dict:
    """Restore the optimizer (and scheduler) state saved with :func:`save_checkpoint`;
    returns the record's ``progress`` so a run can resume where it stopped.

    Raises:
        CheckpointError: no training state in the checkpoint, another optimizer or
            scheduler type, or a checksum mismatch of the optimizer file.
    """
    record = read_checkpoint_record(path)
    ts = record.get("training_state")
    json_path = Path(record["_path"])
    if not ts:
        raise CheckpointError(f"{json_path}: no training state saved; pass optimizer= to save_checkpoint")
    if ts["optimizer"] != type(optimizer).__name__:
        raise CheckpointError(f"{json_path}: saved a {ts['optimizer']} state, got a {type(optimizer).__name__}")
    optim_path = json_path.parent / Path(ts["optimizer_file"]).name
    try:
        data = optim_path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{optim_path}: cannot read the optimizer state ({e})") from None
    if sha256_bytes(data, prefixed=False) != ts["optimizer_sha256"]:
        raise CheckpointError(f"{optim_path}: checksum mismatch; the file is corrupted or truncated")
    state: dict[int, dict] = {}
    for key, value in st_load(data).items():
        _, idx, name = key.split(".", 2)
        state.setdefault(int(idx), {})[name] = value
    for idx, extra in ts["optimizer_plain"]["state"].items():
        state.setdefault(int(idx), {}).update(extra)
    optimizer.load_state_dict({"state": state, "param_groups": ts["optimizer_plain"]["param_groups"]})
    if scheduler is not None:
        if ts.get("scheduler") != type(scheduler).__name__:
            raise CheckpointError(f"{json_path}: saved scheduler {ts.get('scheduler')}, got {type(scheduler).__name__}")
        scheduler.load_state_dict(ts["scheduler_state"])
    return record.get("progress", {})


def _with(base: Path, suffix: str) -> Path:
    """``base`` plus ``suffix`` (unlike ``with_suffix``, keeps dots in the name: ``ck.best``)."""
    return base.parent / (base.name + suffix)


def _base(path: Path) -> Path:
    if path.suffix in (".safetensors", ".json"):
        return path.with_suffix("")
    return path


def resolve_checkpoint(path: str | Path) -> Path:
    """The JSON file of a checkpoint given as its JSON, its weights or a folder holding one.

    Raises:
        CheckpointError: nothing usable at ``path``.
    """
    p = Path(path)
    if p.is_dir():
        found = sorted(j for j in p.glob("*.json") if j.with_suffix(".safetensors").exists())
        if len(found) != 1:
            raise CheckpointError(
                f"{p}: expected exactly one checkpoint (NAME.json + NAME.safetensors), found {len(found)}")
        return found[0]
    json_path = _with(_base(p), ".json")
    if not json_path.exists():
        raise CheckpointError(f"{p}: no checkpoint record {json_path.name} found; "
                              "a checkpoint is NAME.safetensors plus NAME.json")
    return json_path


def read_checkpoint_record(path: str | Path) -> dict:
    """Read and check a checkpoint's JSON record (not the weights).

    Raises:
        CheckpointError: unreadable JSON, wrong format or unknown version.
    """
    json_path = resolve_checkpoint(path)
    record = read_record(json_path, format=CHECKPOINT_FORMAT, versions=SUPPORTED_VERSIONS, what="mixbridge checkpoint",
                         version_key="format_version", fix="upgrade mixbridge or re-save the checkpoint",
                         error=CheckpointError)
    record["_path"] = str(json_path)
    return record


def check_compatible(record: dict, *, expect_param_names: Sequence[str] | None = None,
                     expect_sample_rate: int | None = None, where: str = "checkpoint") -> None:
    """Refuse a record whose schema or sample rate differs from what the caller needs.

    Raises:
        CheckpointMismatchError: the record's parameter names or sample rate differ
            from the expected ones, or its schema no longer matches :mod:`mixbridge.schema`.
    """
    names = list(record["schema"]["param_names"])
    diffs = schema_differences(record["schema"])
    if diffs:
        raise CheckpointMismatchError(
            f"{where}: its parameter schema no longer matches mixbridge's schema for "
            f"{record['schema']['entries']} ({'; '.join(diffs)}); retrain or convert the checkpoint")
    if expect_param_names is not None and list(expect_param_names) != names:
        raise CheckpointMismatchError(
            f"{where}: trained for parameters {names}, but {list(expect_param_names)} were expected; "
            "use a checkpoint trained for this processor chain")
    if expect_sample_rate is not None and int(expect_sample_rate) != int(record["sample_rate"]):
        raise CheckpointMismatchError(
            f"{where}: trained at {record['sample_rate']} Hz, but {expect_sample_rate} Hz was expected; "
            "resample the audio or use a checkpoint trained at this sample rate")


def load_checkpoint(path: str | Path, *, expect_param_names: Sequence[str] | None = None,
                    expect_sample_rate: int | None = None, map_location: str = "cpu"):
    """Rebuild the model of a checkpoint; returns ``(model, record)`` with the model in eval mode.

    Raises:
        CheckpointError: missing files, truncated JSON, unknown version, a weights
            checksum mismatch, or weights that do not fit the recorded config.
        CheckpointMismatchError: see :func:`check_compatible`.
        UnknownNameError: an architecture that is not registered
            (:data:`mixbridge.models.registry.ARCHITECTURES`; the known ones are listed).
    """
    record = read_checkpoint_record(path)
    json_path = Path(record["_path"])
    check_compatible(record, expect_param_names=expect_param_names,
                     expect_sample_rate=expect_sample_rate, where=str(json_path))
    # only a bare file name next to the record is honoured (no paths from the JSON)
    default_weights = _with(json_path.with_suffix(""), ".safetensors").name
    weights = json_path.parent / Path(str(record.get("weights_file") or default_weights)).name
    try:
        data = weights.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{weights}: cannot read the weights ({e})") from None
    digest = sha256_bytes(data, prefixed=False)
    if digest != record.get("weights_sha256"):
        raise CheckpointError(f"{weights}: checksum mismatch (sha256 {digest[:12]}... != recorded "
                              f"{str(record.get('weights_sha256'))[:12]}...); the file is corrupted or truncated")
    model = build_architecture(record["architecture"], record["config"])
    try:
        state = st_load(data)
        model.load_state_dict(state, strict=True)
    except Exception as e:  # safetensors header errors, missing/unexpected keys, shape mismatch
        raise CheckpointError(f"{weights}: weights do not fit the recorded config ({e})") from None
    model.to(map_location).eval()
    return model, record


#: Where the shipped mixers' weights live (``NAME.json`` + ``NAME.safetensors`` + the card ``NAME.md``).
SHIPPED_MIXERS_DIR = Path(__file__).resolve().parent / "mixers"


def load_mixer_network(checkpoint: str | Path | None, default_name: str, architecture: str, train_hint: str, *,
                       error: type[Exception] = CheckpointMismatchError, model: Any = None):
    """The network a learned mixer runs, in eval mode: ``model`` if given, else ``checkpoint`` (e.g. a run's
    ``best.json``), else the shipped ``models/mixers/<default_name>.json``; checked to be ``architecture``.

    The one loader of every learned mixer (``dmc``, ``deepmixing``, the direct mixers, ``dmc-full``).

    Args:
        checkpoint: a checkpoint path (``NAME.json``), or None for the shipped weights.
        default_name: the mixer's name, also the shipped weights' file name.
        architecture: the registered architecture the mixer runs (``net.architecture``).
        train_hint: the command that trains the weights, quoted when they are missing.
        error: the mixer's own error class (a ``ValueError, MixbridgeError`` subclass taking one message),
            raised for missing shipped weights and for another architecture.
        model: a network object instead of a file (tests, untrained networks); checked the same way.

    Raises:
        error: no shipped weights (the message gives ``train_hint``), or a network of another architecture.
        CheckpointError: a missing, corrupted or unknown-version checkpoint file.
    """
    if model is not None:
        net, where = model, f"the given {type(model).__name__}"
    else:
        path = Path(checkpoint) if checkpoint is not None else SHIPPED_MIXERS_DIR / f"{default_name}.json"
        if checkpoint is None and not path.exists():
            raise error(f"{path}: no shipped {default_name} weights; train them ({train_hint}) and pass "
                        "checkpoint=RUN_DIR/best.json (--checkpoint), or ship them (--ship)")
        net, _ = load_checkpoint(path)
        where = str(path)
    if getattr(net, "architecture", None) != architecture:
        raise error(f"{where}: the {default_name} mixer runs a '{architecture}' network, got "
                    f"{getattr(net, 'architecture', None)!r}; pass a {architecture} checkpoint")
    return net.eval()
