"""The learned mastering model: a small network predicts the master chain from a mix's features.

:class:`MasterNet` (architecture ``master-mlp``, 145 182 parameters) maps the features of
:func:`mixbridge.master_features.master_features` plus the user's ``target_lufs`` and
``ceiling_dbtp`` (:data:`INPUT_NAMES`, standardised by buffers fitted on the training set) through
an MLP to

* ``params`` ``[batch, 20]``: the ``master_bus`` parameters :data:`OUTPUT_NAMES` (EQ, bus compressor,
  limiter release) normalised to 0..1 (sigmoid), read in real units with the schema's own mapping
  (:func:`params_from_normalised`; :func:`mixbridge.models.console.denormalise` in training). The
  ceiling and the loudness target are the user's, never predicted. The output bias starts at the
  schema defaults, so an untrained network predicts a neutral chain;
* ``band_delta_db`` ``[batch, 10]``: the master's octave-band shape minus the input's
  (:func:`mixbridge.master_features.band_shape_db`), dB: the tone the model aims at.

The torch-free half of that contract (names, :func:`params_from_normalised`, the inference
intensities :func:`inference_settings` / :func:`scale_plan`) lives in
:mod:`mixbridge.plugins.learned_master_io`, which the ONNX runtime shares; it is re-exported here.

:class:`LearnedMasterer` (the ``learned`` entry of :mod:`mixbridge.models.masterers`) runs the
shipped weights (``models/masterers/learned.json`` + ``.safetensors``) with the intensities their
record carries, and then refines the EQ with a few renders through the real chain
(:func:`refine_eq`): each render is the one master bus with the one gain solver
(:func:`mixbridge.plugins.mastering.solve_master_gain`), so loudness is always the solver's; the
octave-band shape of the render is measured, and the five EQ gains and frequencies take a damped
Gauss-Newton step toward the target shape using the RBJ responses' band sensitivities
(:func:`eq_band_jacobian`). The target is, with ``references``, the mean band shape of the
references, else the model's (input shape + ``band_delta_db``; the shipped record turns that off:
it did not help on the validation albums, see ``models/masterers/learned.md``). The best render
(lowest tonal error) wins.

Importing this module needs no torch; :class:`MasterNet` is built on first access (PEP 562).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mixbridge.errors import AudioInputError
from mixbridge.master_features import MIN_WINDOW_S, band_shape_db, master_features
from mixbridge.plugins.learned_master_io import (
    INPUT_NAMES,
    OUTPUT_NAMES,
    OUTPUT_PARAMS,
    LearnedMasterError,
    default_normalised,
    inference_settings,
    network_inputs,
    params_from_normalised,
    scale_plan,
)
from mixbridge.schema import MASTER_BUS

__all__ = ["BAND_CENTRES_HZ", "EQ_FREQS", "EQ_GAINS", "INPUT_NAMES", "LearnedMasterer", "LearnedMasterError",
           "OUTPUT_NAMES", "OUTPUT_PARAMS",
           "SHIPPED_CHECKPOINT", "eq_band_jacobian", "inference_settings", "network_inputs", "params_from_normalised",
           "refine_eq", "scale_plan",
           "tonal_error_db"]

#: Octave-band centres of ``band_delta_db`` and of :func:`band_shape_db`, Hz.
BAND_CENTRES_HZ = tuple(1000.0 * 2.0 ** k for k in range(-5, 5))
N_BANDS = len(BAND_CENTRES_HZ)
#: The five EQ gains the refinement moves.
EQ_GAINS = ("low_shelf_gain_db", "peak1_gain_db", "peak2_gain_db", "peak3_gain_db", "high_shelf_gain_db")
#: The five EQ corner/centre frequencies the refinement may move (``move_freqs``).
EQ_FREQS = ("low_shelf_freq_hz", "peak1_freq_hz", "peak2_freq_hz", "peak3_freq_hz", "high_shelf_freq_hz")
#: Bands quieter than this (relative to the total, dB) in the target are left out of the tonal error.
QUIET_BAND_DB = -60.0
#: The shipped weights.
SHIPPED_CHECKPOINT = Path(__file__).resolve().parent / "masterers" / "learned.json"
#: Recommended analysis window of the live bus, seconds.
DEFAULT_WINDOW_S = 6.0
#: Length of the windows the refinement renders of a long mix, seconds.
REFINE_WINDOW_S = 4.0


# --------------------------------------------------------------------------- refinement through the real chain
def _band_grid(sample_rate: int, per_band: int = 9) -> list[np.ndarray]:
    """Log-spaced frequencies inside each octave band below Nyquist (empty above it)."""
    nyq = sample_rate / 2.0
    out = []
    for fc in BAND_CENTRES_HZ:
        lo, hi = fc / math.sqrt(2.0), min(fc * math.sqrt(2.0), 0.999 * nyq)
        out.append(np.geomspace(lo, hi, per_band) if lo < hi else np.zeros(0))
    return out


def eq_band_response_db(eq: Mapping[str, float], sample_rate: int) -> np.ndarray:
    """The EQ's gain in each octave band float64 ``[10]``, dB: the power mean of its RBJ response
    (:func:`mixbridge.plugins.rbj.eq_response_db`) over log-spaced frequencies in the band (0 above Nyquist)."""
    from mixbridge.plugins.rbj import eq_response_db

    grid = _band_grid(sample_rate)
    flat = np.concatenate([g for g in grid if g.size])
    resp = eq_response_db(eq, flat, sample_rate)
    out, i = np.zeros(N_BANDS), 0
    for b, g in enumerate(grid):
        if g.size:
            out[b] = 10.0 * np.log10(np.mean(10.0 ** (resp[i:i + g.size] / 10.0)))
            i += g.size
    return out


def eq_band_jacobian(eq: Mapping[str, float], sample_rate: int, step_db: float = 0.5, *, freqs: bool = False,
                     step_oct: float = 0.05) -> np.ndarray:
    """``d(band gain dB) / d(EQ gain dB)`` float64 ``[10, 5]`` (central differences of
    :func:`eq_band_response_db` in each of :data:`EQ_GAINS`); with ``freqs``, ``[10, 10]``: then also
    ``d(band gain dB) / d(octaves)`` of each of :data:`EQ_FREQS` (``f -> f 2^d``)."""
    cols = []
    for name in EQ_GAINS:
        up, down = dict(eq), dict(eq)
        up[name] = eq[name] + step_db
        down[name] = eq[name] - step_db
        cols.append((eq_band_response_db(up, sample_rate) - eq_band_response_db(down, sample_rate)) / (2 * step_db))
    for name in EQ_FREQS if freqs else ():
        up, down = dict(eq), dict(eq)
        up[name] = eq[name] * 2.0 ** step_oct
        down[name] = eq[name] * 2.0 ** -step_oct
        cols.append((eq_band_response_db(up, sample_rate) - eq_band_response_db(down, sample_rate)) / (2 * step_oct))
    return np.stack(cols, axis=1)


def tonal_error_db(shape_db: np.ndarray, target_db: np.ndarray) -> float:
    """Mean absolute octave-band difference, dB, after removing the mean difference, over the bands where
    the target is louder than :data:`QUIET_BAND_DB` (both are :func:`band_shape_db` shapes)."""
    s, t = np.asarray(shape_db, float), np.asarray(target_db, float)
    use = t > QUIET_BAND_DB
    if not np.any(use):
        return 0.0
    d = s[use] - t[use]
    return float(np.mean(np.abs(d - d.mean())))


def refine_eq(mix: np.ndarray, sample_rate: int, params: Mapping[str, Mapping[str, float]],
              target_shape_db: np.ndarray, *, steps: int = 3, damping: float = 0.1, move_freqs: bool = True,
              freq_damping: float = 0.5, max_step_db: float = 6.0,
              max_step_oct: float = 1.0) -> tuple[dict[str, dict[str, float]], list[float]]:
    """Move the EQ of ``params`` so the real master of ``mix`` has octave-band shape ``target_shape_db``.

    Each iteration renders ``mix`` through the one master bus with the one gain solver
    (:func:`mixbridge.plugins.mastering.solve_master_gain`, started from the previous iteration's gain),
    measures the band shape of the render (:func:`band_shape_db`) and takes a damped least-squares
    (Levenberg-Marquardt) step
    ``(J^T J + D) d = J^T e`` on the five gains (dB) and, with ``move_freqs``, the five
    frequencies (octaves), ``J`` = :func:`eq_band_jacobian` (mean over the used bands removed),
    ``e`` the band error, ``D`` = ``damping`` for a gain and ``freq_damping`` for a frequency; steps
    are clipped to ``max_step_db`` / ``max_step_oct`` and values to the schema's ranges. Returns
    ``(best params, tonal errors per render)``: the params of the render with the lowest
    :func:`tonal_error_db` (``steps`` + 1 renders at most, each a gain solve).
    """
    from mixbridge.plugins.mastering import solve_master_gain

    target = np.asarray(target_shape_db, dtype=np.float64)
    use = target > QUIET_BAND_DB
    names = EQ_GAINS + (EQ_FREQS if move_freqs else ())
    ranges = [MASTER_BUS.param(f"eq.{n}") for n in names]
    diag = np.array([damping] * len(EQ_GAINS) + [freq_damping] * (len(names) - len(EQ_GAINS)))
    limit = np.array([max_step_db] * len(EQ_GAINS) + [max_step_oct] * (len(names) - len(EQ_GAINS)))
    current = {k: dict(v) for k, v in params.items()}
    best, best_err, errors = current, math.inf, []
    gain = None
    for it in range(int(steps) + 1):
        gain, _, audio, _ = solve_master_gain(mix, sample_rate, current, start_gain_db=gain)
        shape = band_shape_db(audio, sample_rate)
        err = tonal_error_db(shape, target)
        errors.append(err)
        if err < best_err:
            best, best_err = {k: dict(v) for k, v in current.items()}, err
        if it == steps or not np.any(use):
            break
        e = (target - shape)[use]
        e = e - e.mean()
        jac = eq_band_jacobian(current["eq"], sample_rate, freqs=move_freqs)[use]
        jac = jac - jac.mean(axis=0, keepdims=True)
        delta = np.clip(np.linalg.solve(jac.T @ jac + np.diag(diag), jac.T @ e), -limit, limit)
        nxt = {k: dict(v) for k, v in current.items()}
        for name, p, d in zip(names, ranges, delta):
            value = current["eq"][name] + d if name in EQ_GAINS else current["eq"][name] * 2.0 ** d
            nxt["eq"][name] = float(np.clip(value, p.min, p.max))
        current = nxt
    return best, errors


# --------------------------------------------------------------------------- the network (torch)
def _network_class():
    """Define :class:`MasterNet` (torch is imported here, so that the rest of the module needs none)."""
    import torch
    from torch import nn

    from mixbridge.proxy_schema import schema_param_names

    from .tcn import ModelConfigError

    class MasterNet(nn.Module):
        """Features -> normalised master-chain parameters and the target band shape (module docstring).

        Args:
            hidden: width of the hidden layers. n_layers: hidden layers (>= 1).
            sample_rate: the rate the model was trained at, Hz (features are rate-independent
                but the record keeps it for the host).
            window_s: the recommended analysis window of the live bus, seconds (>= 3).

        Shapes: ``forward(x [batch, len(INPUT_NAMES)]) -> (params [batch, 20] in (0, 1),
        band_delta_db [batch, 10])``. Buffers ``input_mean``, ``input_std`` standardise ``x``
        (fitted on the training set by :func:`fit_standardisation`).

        Raises:
            ModelConfigError: a non-positive size or a window under 3 s.
        """

        architecture = "master-mlp"
        receptive_field = None
        latency_samples = None
        schema = ("eq", "compressor", "limiter")
        input_names = INPUT_NAMES
        output_names = OUTPUT_NAMES

        def __init__(self, *, hidden: int = 256, n_layers: int = 3, sample_rate: int = 44100,
                     window_s: float = DEFAULT_WINDOW_S) -> None:
            super().__init__()
            for label, v in (("hidden", hidden), ("n_layers", n_layers), ("sample_rate", sample_rate)):
                if int(v) != v or v < 1:
                    raise ModelConfigError(f"MasterNet {label} = {v!r} must be a positive integer")
            if not window_s >= MIN_WINDOW_S:
                raise ModelConfigError(f"MasterNet window_s = {window_s} s must be at least {MIN_WINDOW_S:g} s")
            self.hidden, self.n_layers, self.sample_rate = int(hidden), int(n_layers), int(sample_rate)
            self.window_s = float(window_s)
            self.param_names = schema_param_names(self.schema)
            n_in = len(INPUT_NAMES)
            self.register_buffer("input_mean", torch.zeros(n_in))
            self.register_buffer("input_std", torch.ones(n_in))
            layers: list[nn.Module] = []
            width = n_in
            for _ in range(self.n_layers):
                layers += [nn.Linear(width, self.hidden), nn.GELU()]
                width = self.hidden
            self.body = nn.Sequential(*layers)
            self.params_head = nn.Linear(width, len(OUTPUT_NAMES))
            self.bands_head = nn.Linear(width, N_BANDS)
            with torch.no_grad():
                self.params_head.weight.zero_()  # a neutral chain (the schema defaults) until trained
                u0 = torch.as_tensor(default_normalised(), dtype=torch.float32)
                self.params_head.bias.copy_(torch.log(u0 / (1 - u0)))
                self.bands_head.weight.zero_()
                self.bands_head.bias.zero_()

        def config(self) -> dict:
            """The constructor arguments as JSON-able data (``MasterNet(**config)`` rebuilds it)."""
            return {"hidden": self.hidden, "n_layers": self.n_layers, "sample_rate": self.sample_rate,
                    "window_s": self.window_s}

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            """``(params in (0, 1) [batch, 20], band_delta_db [batch, 10])`` of inputs ``x [batch, 22]``.

            Raises:
                ModelConfigError: inputs of another shape.
            """
            if x.ndim != 2 or x.shape[-1] != len(INPUT_NAMES):
                raise ModelConfigError(f"MasterNet takes inputs [batch, {len(INPUT_NAMES)}] (INPUT_NAMES), "
                                       f"got {tuple(x.shape)}")
            h = self.body((x - self.get_buffer("input_mean")) / self.get_buffer("input_std"))
            return torch.sigmoid(self.params_head(h)), self.bands_head(h)

    return MasterNet


def fit_standardisation(model: Any, inputs: np.ndarray) -> None:
    """Set ``model.input_mean`` / ``input_std`` from training inputs ``[n, 22]`` (std floored at 0.1)."""
    import torch

    x = np.asarray(inputs, dtype=np.float64)
    with torch.no_grad():
        model.input_mean.copy_(torch.as_tensor(x.mean(axis=0), dtype=torch.float32))
        model.input_std.copy_(torch.as_tensor(np.maximum(x.std(axis=0), 0.1), dtype=torch.float32))


def _register() -> None:
    """Register ``master-mlp`` in :data:`mixbridge.models.registry.ARCHITECTURES` (idempotent), so
    checkpoints rebuild it."""
    from .registry import ARCHITECTURES, register_architecture

    if "master-mlp" not in ARCHITECTURES.names():
        register_architecture("master-mlp", lambda **c: _network_class()(**c),
                              summary="mix features to master-chain parameters (mixbridge.models.learned_master)")


_register()


def __getattr__(name: str):
    """``MasterNet`` is built on first access (PEP 562), so importing this module needs no torch."""
    if name == "MasterNet":
        cls = _network_class()
        globals()["MasterNet"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------- the masterer
def _stereo(audio: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] != 2:
        raise AudioInputError(f"{what} must be float32 [2, samples] (make mono stereo first), got shape {x.shape}")
    return x


class LearnedMasterer:
    """The ``learned`` mastering model (the :class:`~mixbridge.models.masterers.Masterer` protocol).

    Args:
        checkpoint: a ``master-mlp`` checkpoint (``NAME.json`` + ``NAME.safetensors``), default the
            shipped :data:`SHIPPED_CHECKPOINT`; or a :class:`MasterNet` object.
        refine_steps: EQ refinement steps through the real chain (0: the network's plan as is).
        refine_max_s: the refinement renders at most this many seconds of the mix (evenly spaced
            windows of :data:`REFINE_WINDOW_S` s concatenated when longer), so its cost is bounded.
        eq_intensity, compressor_intensity: how much of the network's EQ (and tone target) and
            compressor to apply, 0..1 (:func:`scale_plan`); default the checkpoint's
            ``extra["inference"]`` (the shipped model's were chosen on the validation albums), else 1.
            Without references and at ``eq_intensity`` 0 there is no tone to aim at: no refinement;
            nor when the record's ``extra["inference"]["refine_without_reference"]`` is false.

    Raises:
        LearnedMasterError: no shipped weights (train them: ``mixbridge train master``).
        CheckpointError: a corrupted or foreign checkpoint.
    """

    name = "learned"

    def __init__(self, checkpoint: Any = None, *, refine_steps: int = 3, refine_max_s: float = 12.0,
                 eq_intensity: float | None = None, compressor_intensity: float | None = None) -> None:
        import torch

        from .checkpoint import load_checkpoint

        extra: dict = {}
        if isinstance(checkpoint, torch.nn.Module):
            self.model, self.source = checkpoint.eval(), "model object"
        else:
            path = Path(checkpoint) if checkpoint is not None else SHIPPED_CHECKPOINT
            if not path.exists():
                raise LearnedMasterError(f"{path}: no learned mastering weights; train them with "
                                         "`mixbridge train master --data DIR -o RUN_DIR` or use --model rules")
            self.model, record = load_checkpoint(path)
            self.source, extra = path.name, record.get("extra") or {}
        settings = inference_settings(extra)
        for key, value in (("eq_intensity", eq_intensity), ("compressor_intensity", compressor_intensity)):
            if value is not None:
                settings[key] = float(value)
            if not 0.0 <= settings[key] <= 1.0:
                raise LearnedMasterError(f"{key} = {settings[key]} must lie in 0..1")
        self.settings = settings
        #: Whether to refine toward the model's own tone target when no reference is given (the shipped
        #: model's record says no: on the validation albums it did not lower the tonal error).
        self.refine_without_reference = bool((extra.get("inference") or {}).get("refine_without_reference", True))
        if getattr(self.model, "architecture", None) != "master-mlp":
            raise LearnedMasterError(f"{checkpoint}: architecture {getattr(self.model, 'architecture', None)!r} "
                                     "is not a learned mastering model ('master-mlp')")
        self.refine_steps, self.refine_max_s = int(refine_steps), float(refine_max_s)

    def predict(self, audio: np.ndarray, sample_rate: int, *, target_lufs: float,
                ceiling_dbtp: float) -> tuple[dict[str, dict[str, float]], np.ndarray, np.ndarray]:
        """The network's plan, no refinement: ``(master_bus params, input band shape, band_delta_db)``, with the
        EQ (and the tone head's change) scaled by ``eq_intensity`` and the compressor by ``compressor_intensity``."""
        import torch

        x = _stereo(audio, "audio")
        feats = master_features(x, sample_rate)
        inp = network_inputs(feats, target_lufs, ceiling_dbtp)
        with torch.no_grad():
            u, delta = self.model(torch.from_numpy(inp)[None])
        params = scale_plan(params_from_normalised(u[0].numpy(), target_lufs=target_lufs, ceiling_dbtp=ceiling_dbtp),
                            **self.settings)
        delta_db = delta[0].numpy().astype(np.float64) * self.settings["eq_intensity"]
        return params, band_shape_db(x, sample_rate), delta_db

    def _excerpt(self, x: np.ndarray, sample_rate: int) -> np.ndarray:
        """What the refinement renders: all of ``x`` when it is at most ``refine_max_s`` long, else
        :data:`REFINE_WINDOW_S`-second windows evenly spaced over it, concatenated (``refine_max_s`` in all)."""
        limit = int(self.refine_max_s * sample_rate)
        if x.shape[1] <= limit:
            return x
        win = int(REFINE_WINDOW_S * sample_rate)
        starts = np.linspace(0, x.shape[1] - win, max(1, limit // win)).astype(int)
        return np.concatenate([x[:, s:s + win] for s in starts], axis=1)

    def __call__(self, audio: np.ndarray, sample_rate: int, *, target_lufs: float, ceiling_dbtp: float,
                 references: Sequence[np.ndarray] = ()) -> Any:
        """The plan for ``audio`` float32 ``[2, samples]`` (see the class docstring).

        Raises:
            AudioInputError: audio or a reference that is not ``[2, samples]`` of at least 3 s.
        """
        from .masterers import MasterPlan

        x = _stereo(audio, "audio")
        params, _, delta = self.predict(x, sample_rate, target_lufs=target_lufs, ceiling_dbtp=ceiling_dbtp)
        excerpt = self._excerpt(x, sample_rate)
        notices: list[str] = []
        if references:
            shapes = [band_shape_db(_stereo(r, f"reference {i + 1}"), sample_rate) for i, r in enumerate(references)]
            power = np.mean([10.0 ** (s / 10.0) for s in shapes], axis=0)
            target = 10.0 * np.log10(np.maximum(power, 1e-20))
            aim = f"the mean octave-band shape of {len(shapes)} reference(s)"
        else:
            target = band_shape_db(excerpt, sample_rate) + delta
            aim = "the model's target octave-band shape"
        info: dict[str, Any] = {"model": self.source, "settings": dict(self.settings),
                                "network_params": {k: dict(v) for k, v in params.items()},
                                "target_band_shape_db": [round(float(v), 3) for v in target], "aim": aim}
        if self.refine_steps > 0 and (references or (self.refine_without_reference
                                                     and self.settings["eq_intensity"] > 0.0)):
            params, errors = refine_eq(excerpt, sample_rate, params, target,
                                       steps=self.refine_steps)
            info["refine_tonal_error_db"] = [round(e, 4) for e in errors]
        return MasterPlan(params=params, notices=notices, info=info)
