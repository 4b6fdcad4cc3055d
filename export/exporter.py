"""Export a proxy to an ONNX or TorchScript streaming artifact (needs torch).

:func:`export_model` takes a model, a checkpoint path or a registry name, wraps
the eval-mode model in the streaming wrapper its architecture registers
(:func:`mixbridge.models.registry.streaming_wrapper`; for ``tcn-film``
:class:`~mixbridge.models.tcn.StreamingTCN`: batch norm folded, explicit state inputs
and outputs) and writes an artifact folder (see :mod:`mixbridge.export.artifact`).
A wrapper provides ``initial_state(batch) -> (input_state, hidden_state)`` and the
graph signature::

    (audio [B, n_inputs, T], params_start [B, P], params_end [B, P],
     input_state [B, n_inputs, S0], hidden_state [B, channels, S1])
      -> (output [B, n_outputs, T], input_state_out, hidden_state_out)

with ``B`` and ``T`` dynamic, so any block size from 1 to 4096 streams. State
goes in and out as two explicit tensors: torch 2.13's ONNX exporter fails on
``forward(x, p, *states)`` with a dynamic block length (DESIGN.md §4). The ONNX
export uses the TorchScript-based exporter (``dynamo=False``; the dynamo exporter
needs onnxscript, which is not a dependency) at opset 17.

The sidecar records ``trained_ranges``: the normalised range of each parameter in the
training data (a checkpoint's ``extra.dataset.param_dists``, as
:mod:`mixbridge.plugins.datagen.params` writes them; ``[0, 1]`` where the data set did not
narrow a parameter, and for a model object or an untrained registry model unless
``trained_ranges`` is given). ``artifact.checksum.json`` (the sidecar's checksum, see
:mod:`mixbridge.export.artifact`) is written last: an artifact without it is incomplete.

The golden pair is a seeded input of ``GOLDEN_SAMPLES`` samples and seeded
parameters run through the torch wrapper in one call from a zero state (for a
causal model this equals the offline model). The exported file is checked
against it before the sidecar is written.
"""
from __future__ import annotations

import copy
import io
import json
import re
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mixbridge import __version__ as mixbridge_version
from mixbridge.atomic import atomic_write_bytes, atomic_write_text
from mixbridge.checksum import sha256_bytes
from mixbridge.errors import MixbridgeError, UnknownNameError
from mixbridge.models import registry
from mixbridge.models.checkpoint import load_checkpoint
from mixbridge.npz import ZIP_EPOCH, npz_bytes
from mixbridge.proxy_schema import schema_record

from .artifact import (
    ARTIFACT_FORMAT_VERSION,
    CHECKSUM_NAME,
    GOLDEN_NAME,
    GOLDEN_TOLERANCE,
    MAX_BLOCK_SIZE,
    MIN_BLOCK_SIZE,
    MODEL_FILES,
    SIDECAR_NAME,
    ArtifactError,
    check_sidecar_values,
    checksum_record,
    file_record,
)

GOLDEN_SAMPLES = 2048
GOLDEN_SEED = 1234
ONNX_OPSET = 17
INPUT_NAMES = ["audio", "params_start", "params_end", "input_state", "hidden_state"]
OUTPUT_NAMES = ["output", "input_state_out", "hidden_state_out"]


class ExportError(ValueError, MixbridgeError):
    """An export that cannot be made or whose file disagrees with the torch model."""


def resolve_model(source: Any, seed: int = 0) -> tuple[Any, dict]:
    """A model and provenance from a model object, a checkpoint path or a registry name.

    A model object is deep-copied (exporting must not move or switch the caller's model).

    Raises:
        UnknownNameError: ``source`` is neither an existing path nor a registry name.
        CheckpointError: see :func:`mixbridge.models.checkpoint.load_checkpoint`.
    """
    model, provenance, _ = _resolve(source, seed)
    return model, provenance


def trained_ranges_of(record: Mapping | None, param_names: Sequence[str]) -> dict[str, list[float]]:
    """``{name: [u_lo, u_hi]}`` for every parameter, normalised: the training data's range from a
    checkpoint record's ``extra.dataset.param_dists`` (``{"kind", "u_lo", "u_hi"}`` per narrowed
    parameter), ``[0, 1]`` for the others (and for every parameter when ``record`` is None).

    Raises:
        ExportError: a recorded range that is not ``0 <= u_lo <= u_hi <= 1``.
    """
    dists = (((record or {}).get("extra") or {}).get("dataset") or {}).get("param_dists") or {}
    out = {}
    for name in param_names:
        d = dists.get(name)
        lo, hi = (float(d["u_lo"]), float(d["u_hi"])) if d else (0.0, 1.0)
        if not 0.0 <= lo <= hi <= 1.0:
            raise ExportError(f"the checkpoint's training range of {name} is [{lo}, {hi}], not inside [0, 1]; "
                              "fix extra.dataset.param_dists in its record")
        out[name] = [lo, hi]
    return out


def _resolve(source: Any, seed: int) -> tuple[Any, dict, dict | None]:
    """:func:`resolve_model` plus the checkpoint record (None for a model object or a registry name)."""
    if isinstance(source, torch.nn.Module):
        return copy.deepcopy(source).eval(), {"source": "model object"}, None
    path = Path(str(source))
    if path.exists():
        model, record = load_checkpoint(path)
        return model, {"source": "checkpoint", "model_name": record.get("model_name"),
                       "checkpoint_weights_sha256": record["weights_sha256"],
                       "progress": record.get("progress", {})}, record
    if str(source) in registry.names():
        torch.manual_seed(seed)
        return registry.create(str(source)).eval(), {"source": "registry", "model_name": str(source),
                                                     "seed": seed, "trained": False}, None
    raise UnknownNameError(f"'{source}' is neither a checkpoint path nor a registry model; "
                           f"known models: {', '.join(registry.names())}")


def golden_pair(model: Any, wrapper: Any) -> dict[str, np.ndarray]:
    """The golden pair: ``input [1, n_inputs, GOLDEN_SAMPLES]`` (0.25-scaled normal noise) and
    ``params [1, n_params]`` (uniform 0..1), both seeded with ``GOLDEN_SEED``, and the wrapper's
    ``output`` for them in one call from a zero state."""
    gen = torch.Generator().manual_seed(GOLDEN_SEED)
    x = 0.25 * torch.randn(1, model.n_inputs, GOLDEN_SAMPLES, generator=gen)
    p = torch.rand(1, model.n_params, generator=gen)
    s_in, s_hid = wrapper.initial_state(1)
    with torch.no_grad():
        y, _, _ = wrapper(x, p, p, s_in, s_hid)
    return {"input": x.numpy(), "params": p.numpy(), "output": y.numpy()}


def _onnx_bytes(wrapper: torch.nn.Module, example: tuple) -> bytes:
    dyn = {"audio": {0: "batch", 2: "samples"}, "output": {0: "batch", 2: "samples"}}
    for name in INPUT_NAMES[1:] + OUTPUT_NAMES[1:]:
        dyn[name] = {0: "batch"}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, example, buf,  # type: ignore[arg-type]  # stub: path only; BytesIO works
                          dynamo=False, input_names=INPUT_NAMES,
                          output_names=OUTPUT_NAMES, dynamic_axes=dyn, opset_version=ONNX_OPSET,
                          do_constant_folding=True)
    return buf.getvalue()


#: The streaming wrapper's parameter ramp, recorded in the sidecar (a wrapper may state its own).
FILM_SMOOTHING = "FiLM coefficients ramp linearly from params_start to params_end over the block"
#: The grey-box control graph's file name (beside ``model.onnx``).
CONTROLS_NAME = "controls.onnx"


def _controls_bytes(module: torch.nn.Module, params: np.ndarray) -> bytes:
    """ONNX bytes of a control graph ``params [batch, n_params] -> controls [batch, n_params + 1]``."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.from_numpy(params),), buf,  # type: ignore[arg-type]
                          dynamo=False, input_names=["params"], output_names=["controls"],
                          dynamic_axes={"params": {0: "batch"}, "controls": {0: "batch"}}, opset_version=ONNX_OPSET,
                          do_constant_folding=True)
    return buf.getvalue()


def _torchscript_bytes(wrapper: torch.nn.Module) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.script is deprecated in torch 2.13 but works
        torch.jit.save(torch.jit.script(wrapper), buf)
    return canonical_torchscript(buf.getvalue())


_FINAL_LINE = re.compile(r"^  \w+ : Final\[.*\] = .*$")


def canonical_torchscript(data: bytes) -> bytes:
    """Make a ``torch.jit.save`` archive reproducible: the same module gives the same bytes.

    torch 2.13 writes a random ``.data/serialization_id`` and emits a class's
    ``Final`` constants in set order (which varies with ``PYTHONHASHSEED``). This
    sorts each run of ``Final`` lines (same lines, same total length, so the debug
    source ranges of the methods below stay valid) and replaces the id with a
    digest of the other entries. Entry order and ZIP_STORED are kept.
    """
    src = zipfile.ZipFile(io.BytesIO(data))
    entries = []
    for info in src.infolist():
        body = src.read(info)
        if info.filename.endswith(".py") and "/code/" in info.filename:
            lines = body.decode("utf-8").split("\n")
            out, run = [], []
            for line in lines + [None]:
                if line is not None and _FINAL_LINE.match(line):
                    run.append(line)
                    continue
                out.extend(sorted(run))
                run = []
                if line is not None:
                    out.append(line)
            body = "\n".join(out).encode("utf-8")
        entries.append((info.filename, body))
    digest = sha256_bytes(b"".join(name.encode() + body for name, body in entries
                                   if not name.endswith("serialization_id")), prefixed=False)
    result = io.BytesIO()
    with zipfile.ZipFile(result, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, body in entries:
            if name.endswith(".data/serialization_id"):
                body = str(int(digest[:32], 16)).encode()
            zf.writestr(zipfile.ZipInfo(name, date_time=ZIP_EPOCH), body)
    return result.getvalue()


def _stream_exported(path: Path, fmt: str, golden: dict, block_size: int,
                     state_shapes: tuple[list[int], list[int]]) -> np.ndarray:
    """Run the golden input through the written file in blocks (checks state passing too);
    ``state_shapes`` are the wrapper's ``(input_state, hidden_state)`` shapes without the batch."""
    x, p = golden["input"], golden["params"]
    if fmt == "onnx":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        shapes = {i.name: i.shape for i in sess.get_inputs()}
        s_in = np.zeros([1] + shapes["input_state"][1:], np.float32)
        s_hid = np.zeros([1] + shapes["hidden_state"][1:], np.float32)
        outs = []
        for start in range(0, x.shape[-1], block_size):
            y, s_in, s_hid = sess.run(None, {"audio": x[..., start:start + block_size], "params_start": p,
                                             "params_end": p, "input_state": s_in, "hidden_state": s_hid})
            outs.append(y)
        return np.concatenate(outs, axis=-1)
    module = torch.jit.load(str(path))
    outs = []
    state = None
    with torch.no_grad():
        pt = torch.from_numpy(p)
        for start in range(0, x.shape[-1], block_size):
            xb = torch.from_numpy(np.ascontiguousarray(x[..., start:start + block_size]))
            if state is None:
                state = (torch.zeros(1, *state_shapes[0]), torch.zeros(1, *state_shapes[1]))
            y, a, b = module(xb, pt, pt, *state)
            state = (a, b)
            outs.append(y.numpy())
    return np.concatenate(outs, axis=-1)


def export_model(source: Any, format: str = "onnx", out_dir: str | Path = "artifact", *,
                 seed: int = 0, trained_ranges: Mapping[str, Sequence[float]] | None = None) -> Path:
    """Write a streaming artifact for ``source`` to ``out_dir``; returns the sidecar path.

    Args:
        source: a model (an ``nn.Module`` whose ``architecture`` streams, such as a
            :class:`~mixbridge.models.tcn.TCN`), a checkpoint path (file or folder) or a
            registry name (an untrained model seeded with ``seed``).
        format: ``"onnx"`` or ``"torchscript"``.
        out_dir: the artifact folder (created; existing artifact files are replaced).
        trained_ranges: ``{name: (u_lo, u_hi)}`` normalised, overriding the checkpoint's
            (parameters not named keep theirs).

    Raises:
        ExportError: unknown format, a trained range outside 0..1 or for an unknown
            parameter, or the written file does not reproduce the torch golden output
            within ``GOLDEN_TOLERANCE`` when streamed in blocks.
        UnknownNameError, CheckpointError: see :func:`resolve_model`; or an architecture
            without a streaming wrapper.
    """
    if format not in MODEL_FILES:
        raise ExportError(f"unknown export format '{format}'; known: {', '.join(MODEL_FILES)}")
    model, provenance, record = _resolve(source, seed)
    model = model.cpu().float().eval()
    ranges = trained_ranges_of(record, list(model.param_names))
    for name, pair in (trained_ranges or {}).items():
        if name not in ranges:
            raise ExportError(f"trained_ranges names '{name}', not a parameter of this model; "
                              f"known: {', '.join(ranges)}")
        lo, hi = (float(v) for v in pair)
        if not 0.0 <= lo <= hi <= 1.0:
            raise ExportError(f"trained range of {name} = [{lo}, {hi}] must satisfy 0 <= u_lo <= u_hi <= 1")
        ranges[name] = [lo, hi]
    wrapper = registry.streaming_wrapper(model).eval()
    formats = tuple(getattr(wrapper, "formats", MODEL_FILES))
    if format not in formats:
        raise ExportError(f"a {model.architecture} model exports to {', '.join(formats)} only, not {format}; "
                          f"use --format {formats[0]}")
    s_in0, s_hid0 = wrapper.initial_state(1)
    state_shapes = (list(s_in0.shape[1:]), list(s_hid0.shape[1:]))
    golden = golden_pair(model, wrapper)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in (CHECKSUM_NAME, SIDECAR_NAME):  # a half-replaced folder must not look valid
        if (out / name).exists():
            (out / name).unlink()
    s_in, s_hid = wrapper.initial_state(1)
    example = (torch.from_numpy(golden["input"][..., :64]), torch.from_numpy(golden["params"]),
               torch.from_numpy(golden["params"]), s_in, s_hid)
    data = _onnx_bytes(wrapper, example) if format == "onnx" else _torchscript_bytes(wrapper)
    model_path = atomic_write_bytes(out / MODEL_FILES[format], data)
    golden_path = atomic_write_bytes(out / GOLDEN_NAME, npz_bytes(golden))

    check_block = 257  # odd and not a power of two: exercises state hand-over
    streamed = _stream_exported(model_path, format, golden, check_block, state_shapes)
    err = float(np.max(np.abs(streamed - golden["output"])))
    if not err <= GOLDEN_TOLERANCE:
        raise ExportError(f"{model_path}: streamed output differs from the torch golden output by {err:.3g} "
                          f"(> {GOLDEN_TOLERANCE}); the export is wrong, please report it")

    extra_files, dsp = {}, None
    controls = wrapper.controls_module() if hasattr(wrapper, "controls_module") else None
    if controls is not None:  # grey-box: the knob law alone, for the CPU DSP path
        controls_path = atomic_write_bytes(out / CONTROLS_NAME, _controls_bytes(controls, golden["params"]))
        extra_files["controls"] = file_record(controls_path)
        dsp = {"kind": "greybox", "entries": list(model.schema),
               "controls": "params [1, n_params] normalised -> controls [1, n_params + 1]: real-unit values "
                           "in param_names order, then the release law beta"}
    sidecar = {
        "format_version": ARTIFACT_FORMAT_VERSION,
        "artifact_format": format,
        "architecture": model.architecture,
        "model_name": provenance.get("model_name"),
        "config": model.config(),
        "schema": schema_record(model.schema),
        "sample_rate": model.sample_rate,
        "latency_samples": model.latency_samples,
        "receptive_field": model.receptive_field,
        "causal": model.causal,
        "block_sizes": {"min": MIN_BLOCK_SIZE, "max": int(getattr(wrapper, "max_block_size", MAX_BLOCK_SIZE))},
        "io": {
            "inputs": INPUT_NAMES, "outputs": OUTPUT_NAMES,
            "input_state_shape": state_shapes[0],
            "hidden_state_shape": state_shapes[1],
            "params_smoothing": getattr(wrapper, "params_smoothing", FILM_SMOOTHING),
            "silent_at_rest": bool(getattr(wrapper, "silent_at_rest", False)),
            "opset": ONNX_OPSET if format == "onnx" else None,
        },
        "golden": {"samples": GOLDEN_SAMPLES, "seed": GOLDEN_SEED, "tolerance": GOLDEN_TOLERANCE,
                   "export_check_block_size": check_block, "export_check_max_abs_error": err},
        "files": {"model": file_record(model_path), "golden": file_record(golden_path), **extra_files},
        **({"dsp": dsp} if dsp else {}),
        "trained_ranges": ranges,
        "provenance": {"mixbridge": mixbridge_version, "torch": torch.__version__.split("+")[0],
                       "state_dict_sha256": _state_sha(model), **provenance},
    }
    try:
        sidecar = json.loads(json.dumps(sidecar))  # JSON types exactly as a loader will see them
        text = json.dumps(sidecar, indent=2, sort_keys=True) + "\n"
        check = json.dumps(checksum_record(sidecar), indent=2, sort_keys=True) + "\n"
    except (TypeError, ValueError) as e:
        raise ArtifactError(f"cannot write the sidecar: {e}") from None
    check_sidecar_values(sidecar, out / SIDECAR_NAME)
    path = atomic_write_text(out / SIDECAR_NAME, text)
    atomic_write_text(out / CHECKSUM_NAME, check)  # last: its presence marks a complete artifact
    return path


def _state_sha(model: torch.nn.Module) -> str:
    from safetensors.torch import save as st_save

    return sha256_bytes(st_save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}),
                        prefixed=False)
