"""The learned mastering network's input/output contract, torch-free (numpy; no model code).

What the network (:class:`mixbridge.models.learned_master.MasterNet`) reads and writes, shared by the
torch masterer and the torch-free ONNX runtime (:mod:`mixbridge.export.master_runtime`, which may import
only the core and the plugins): the input names (:data:`INPUT_NAMES`: the features of
:func:`mixbridge.master_features.master_features`, then ``target_lufs`` and ``ceiling_dbtp``), the output
parameters (:data:`OUTPUT_NAMES`, ``master_bus`` EQ, compressor and limiter release, in the schema's
normalised mapping), their reading in real units (:func:`params_from_normalised`), and the inference
intensities a shipped model carries (:func:`inference_settings`, :func:`scale_plan`).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mixbridge.errors import MixbridgeError
from mixbridge.master_features import FEATURE_NAMES
from mixbridge.schema import MASTER_BUS

__all__ = ["INPUT_NAMES", "OUTPUT_NAMES", "OUTPUT_PARAMS", "LearnedMasterError", "default_normalised",
           "inference_settings", "network_inputs", "params_from_normalised", "scale_plan"]

#: The network's inputs: the features, then the two user settings it is conditioned on.
INPUT_NAMES: tuple[str, ...] = FEATURE_NAMES + ("target_lufs", "ceiling_dbtp")
#: What the network predicts, in its output order (the ceiling and the target are the user's).
OUTPUT_NAMES: tuple[str, ...] = tuple(n for n, _ in MASTER_BUS.flat_params()
                                      if n.split(".")[0] in ("eq", "compressor")) + ("limiter.release_ms",)
OUTPUT_PARAMS = [(n, MASTER_BUS.param(n)) for n in OUTPUT_NAMES]
#: Normalised values the untrained output bias starts from are kept this far inside 0..1.
_BIAS_MARGIN = 0.02


class LearnedMasterError(ValueError, MixbridgeError):
    """The learned mastering model cannot run: missing weights, or an input it cannot read."""


def network_inputs(features: np.ndarray, target_lufs: float, ceiling_dbtp: float) -> np.ndarray:
    """The network's input float32 ``[len(INPUT_NAMES)]``: ``features`` then the two user settings."""
    f = np.asarray(features, dtype=np.float32).reshape(-1)
    if f.size != len(FEATURE_NAMES):
        raise LearnedMasterError(f"{len(FEATURE_NAMES)} features expected (master_features), got {f.size}")
    return np.concatenate([f, np.array([target_lufs, ceiling_dbtp], np.float32)])


def default_normalised() -> np.ndarray:
    """The schema defaults of :data:`OUTPUT_NAMES` normalised, kept inside ``[0.02, 0.98]``."""
    u = np.array([p.to_normalised(p.default) for _, p in OUTPUT_PARAMS])
    return np.clip(u, _BIAS_MARGIN, 1.0 - _BIAS_MARGIN)


def params_from_normalised(u: np.ndarray, *, target_lufs: float, ceiling_dbtp: float) -> dict[str, dict[str, float]]:
    """``master_bus`` values in real units (``eq``, ``compressor``, ``limiter``, ``loudness``) from the
    network's normalised ``u [20]`` (:meth:`mixbridge.parameters.Param.from_normalised`), with the user's
    ceiling and target.

    Raises:
        ParamRangeError: ``u`` outside 0..1, or a ceiling/target outside the schema's range.
    """
    u = np.asarray(u, dtype=np.float64).reshape(-1)
    if u.size != len(OUTPUT_NAMES):
        raise LearnedMasterError(f"{len(OUTPUT_NAMES)} normalised outputs expected, got {u.size}")
    out: dict[str, dict[str, float]] = {"eq": {}, "compressor": {}, "limiter": {}, "loudness": {}}
    for (name, p), v in zip(OUTPUT_PARAMS, u):
        proc, key = name.split(".")
        out[proc][key] = float(p.from_normalised(float(np.clip(v, 0.0, 1.0))))
    out["limiter"]["ceiling_dbtp"] = float(MASTER_BUS.param("limiter.ceiling_dbtp").validate(ceiling_dbtp))
    out["loudness"]["target_lufs"] = float(MASTER_BUS.param("loudness.target_lufs").validate(target_lufs))
    return out


def scale_plan(params: Mapping[str, Mapping[str, float]], *, eq_intensity: float,
               compressor_intensity: float) -> dict[str, dict[str, float]]:
    """``params`` with its EQ moved toward neutral by ``eq_intensity`` and its compressor by
    ``compressor_intensity`` (each 0..1, 1 = unchanged), with the one intensity law
    (:func:`mixbridge.plugins.master_rules.apply_intensity`). The shipped model's values were chosen
    on the validation albums and travel in its checkpoint record (:func:`inference_settings`; its card)."""
    from mixbridge.plugins.master_rules import apply_intensity

    out = {k: dict(v) for k, v in params.items()}
    out["eq"] = apply_intensity(params, eq_intensity)["eq"]
    out["compressor"] = apply_intensity(params, compressor_intensity)["compressor"]
    return out


def inference_settings(record_extra: Mapping[str, Any] | None) -> dict[str, float]:
    """The inference intensities a checkpoint (its record's ``extra["inference"]``) or an export's sidecar
    carries: ``{"eq_intensity", "compressor_intensity"}``; 1.0 (the network as is) where absent."""
    given = dict((record_extra or {}).get("inference") or {})
    return {k: float(given.get(k, 1.0)) for k in ("eq_intensity", "compressor_intensity")}
