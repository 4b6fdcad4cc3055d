"""Grey-box proxies: the schema's EQ and compressor with a learned map from the knobs to the DSP.

After Wright and Välimäki, "Grey-box modelling of dynamic range compression" (DAFx 2022):
instead of asking a black-box network to *grow* a compressor's envelope follower out of
convolutions (the TCN proxies of :mod:`.tcn`, which ended up acting as a fixed gain), the
proxy keeps the structure of a digital feed-forward compressor and learns what the plugin's
knobs do to it. ``g(x, p)``:

1. ``p`` (normalised 0..1, in :func:`~mixbridge.proxy_schema.schema_param_names` order) is
   denormalised to the schema's real units (:func:`mixbridge.models.console.denormalise`);
2. a small MLP of ``p`` (``n_params -> hidden -> hidden -> n_params + 1``, tanh, last layer
   zero-initialised, so an untrained proxy *is* the schema) corrects each value in its own
   scale: dB values move by ``CORRECTION_DB`` per unit output, frequencies, Q and times are
   multiplied by ``exp(out)``, ``ratio - 1`` is multiplied by ``exp(out)``, the knee stays
   >= 0; its last output sets ``beta`` (``sigmoid``), the release law between the schema's
   peak hold (0) and Giannoulis et al.'s smooth decoupled detector (1), see
   :func:`~mixbridge.models.dsp_dynamics.decoupled_release`;
3. the corrected values drive the torch console's own stages: the five RBJ biquads of
   :func:`~mixbridge.models.dsp_eq.eq` (for an ``eq`` schema entry), then the compressor
   (peak detector, stereo-linked over the model's input channels; quadratic soft knee,
   :func:`~mixbridge.models.dsp_dynamics.static_reduction_db`; release; one-pole attack;
   makeup).

Everything the network learns is a knob law, so it stays interpretable (the card prints the
learned corrections) and the state that holds the envelope is the compressor's own:
``receptive_field`` is the memory of the slowest release the schema allows
(:data:`MEMORY_TAU` time constants of ``compressor.release_ms``'s maximum).

:class:`StreamingGreyBox` runs the same equations block by block with explicit state
(the one-pole values, the held reduction, each biquad's last two inputs and outputs) as a
graph of matrix products over the block (lower-triangular ``[T, T]`` kernels), which exports
to ONNX and streams in :class:`mixbridge.export.runtime.StreamingSession` for blocks of
1..:data:`MAX_STREAM_BLOCK` samples.

Audio is ``float32 [batch, n_inputs, samples]``; the proxy is causal with 0 latency.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from mixbridge.errors import AudioInputError, ParamRangeError
from mixbridge.plugins.dynamics import LEVEL_FLOOR, TINY
from mixbridge.proxy_schema import schema_param_names, schema_params

from .dsp import LN10_OVER_20
from .dsp_dynamics import REDUCTION_FLOOR_DB, decoupled_release, one_pole, static_reduction_db
from .dsp_eq import EQ_NAMES, eq, peaking_coefs, shelf_coefs
from .tcn import ModelConfigError

#: dB moved per unit of the map's output for dB-valued parameters.
CORRECTION_DB = 6.0
#: Where the compressor's release and attack act: on the gain reduction in dB (the schema's, Giannoulis
#: et al.'s "log domain, after the gain computer") or on the linear detector level before the gain
#: computer (an envelope follower, e.g. LSP's compressors, whose 63 % times in dB then differ).
BALLISTICS = ("reduction", "level")
#: The chains a grey-box proxy can model, in signal order.
GREYBOX_ENTRIES = ("eq", "compressor")
#: ``receptive_field`` covers this many time constants of the slowest release (e^-7 ~ -61 dB of the held reduction).
MEMORY_TAU = 7.0
#: Largest block :class:`StreamingGreyBox` takes in one graph call (its kernels are ``[T, T]``).
MAX_STREAM_BLOCK = 512
#: Bounds the corrected values are kept in (a learned law may not leave the DSP's valid domain).
MIN_TIME_MS, MIN_Q, MIN_FREQ_HZ = 0.01, 0.05, 10.0


class GreyBoxProxy(nn.Module):
    """The grey-box proxy ``g(x, p)`` of an EQ and/or compressor (see the module docstring).

    Args:
        schema: ``("compressor",)``, ``("eq",)`` or ``("eq", "compressor")``.
        sample_rate: Hz. n_inputs, n_outputs: audio channels (equal; the compressor links them).
        hidden: width of the map's two hidden layers.
        ballistics: ``"reduction"`` (release and attack on the gain reduction in dB, the schema's) or
            ``"level"`` (on the linear detector level before the gain computer; :data:`BALLISTICS`).

    Raises:
        ModelConfigError: another schema or ballistics, unequal channel counts or a non-positive size.
    """

    architecture = "greybox"
    causal = True
    law_lo: torch.Tensor
    law_span: torch.Tensor
    law_log: torch.Tensor
    law_kind: torch.Tensor
    law_floor: torch.Tensor
    law_ceil: torch.Tensor
    law_min: torch.Tensor
    law_max: torch.Tensor
    center_offset_samples = 0
    latency_samples = 0

    def __init__(self, *, schema: Sequence[str] = ("compressor",), sample_rate: int = 44100, n_inputs: int = 1,
                 n_outputs: int = 1, hidden: int = 32, ballistics: str = "reduction") -> None:
        super().__init__()
        schema = tuple(schema)
        if not schema or list(schema) != [e for e in GREYBOX_ENTRIES if e in schema]:
            raise ModelConfigError(f"grey-box schema {list(schema)}: use a subsequence of {list(GREYBOX_ENTRIES)} "
                                   "in that order")
        for label, v in (("sample_rate", sample_rate), ("n_inputs", n_inputs), ("hidden", hidden)):
            if int(v) != v or v < 1:
                raise ModelConfigError(f"GreyBoxProxy {label} = {v!r} must be a positive integer")
        if ballistics not in BALLISTICS:
            raise ModelConfigError(f"GreyBoxProxy ballistics = {ballistics!r}; known: {', '.join(BALLISTICS)}")
        if n_outputs != n_inputs:
            raise ModelConfigError(f"GreyBoxProxy n_outputs = {n_outputs} must equal n_inputs = {n_inputs}")
        self.schema = schema
        self.param_names = schema_param_names(schema)
        self._flat = schema_params(schema)
        self.n_params = len(self.param_names)
        self.sample_rate, self.n_inputs, self.n_outputs = int(sample_rate), int(n_inputs), int(n_outputs)
        self.hidden = int(hidden)
        self.ballistics = ballistics
        last = nn.Linear(self.hidden, self.n_params + 1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.map = nn.Sequential(nn.Linear(self.n_params, self.hidden), nn.Tanh(),
                                 nn.Linear(self.hidden, self.hidden), nn.Tanh(), last)
        self._law_buffers()

    # ---------------------------------------------------------------- contract
    def config(self) -> dict:
        """The constructor arguments as JSON-able data (``GreyBoxProxy(**config)`` rebuilds it)."""
        return {"schema": list(self.schema), "sample_rate": self.sample_rate, "n_inputs": self.n_inputs,
                "n_outputs": self.n_outputs, "hidden": self.hidden, "ballistics": self.ballistics}

    @property
    def receptive_field(self) -> int:
        """Samples of memory: :data:`MEMORY_TAU` time constants of the slowest release (1 without a compressor)."""
        if "compressor" not in self.schema:
            return 1
        rel = dict(self._flat)["compressor.release_ms"]
        return 1 + int(math.ceil(MEMORY_TAU * rel.max * 1e-3 * self.sample_rate))

    @property
    def n_weights(self) -> int:
        """Number of trainable weights."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def output_length(self, input_length: int) -> int:
        """Causal: as long as the input."""
        return input_length

    # ---------------------------------------------------------------- the learned law
    def _law_buffers(self) -> None:
        """Per-parameter constants of the denormalisation and the correction, as vectors (a small graph)."""
        lo, span, log, kind, floor, ceil = [], [], [], [], [], []
        for name, prm in self._flat:
            leaf = name.split(".", 1)[1]
            is_log = prm.scale == "log"
            lo.append(prm.min)
            span.append(math.log(prm.max / prm.min) if is_log else prm.max - prm.min)
            log.append(1.0 if is_log else 0.0)
            k = 2.0 if leaf == "ratio" else (0.0 if prm.unit == "dB" else 1.0)
            kind.append(k)
            fl = {"ms": MIN_TIME_MS, "Hz": MIN_FREQ_HZ}.get(prm.unit, MIN_Q)
            floor.append(0.0 if leaf == "knee_db" else (-1e9 if prm.unit == "dB" else (1.0 if k == 2.0 else fl)))
            ceil.append(0.45 * self.sample_rate if prm.unit == "Hz" else 1e9)
        for key, vals in (("law_lo", lo), ("law_span", span), ("law_log", log), ("law_kind", kind),
                          ("law_floor", floor), ("law_ceil", ceil), ("law_min", [p.min for _, p in self._flat]),
                          ("law_max", [p.max for _, p in self._flat])):
            self.register_buffer(key, torch.tensor(vals, dtype=torch.float64), persistent=False)

    def control_vector(self, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(values [batch, n_params] float64 in real units after the learned law, beta [batch])``.

        The schema's denormalisation (:meth:`mixbridge.schema.Param.from_normalised`, clamped to
        the range) followed by the correction of the module docstring, as vector operations.

        Raises:
            ParamRangeError: ``p`` is not ``[batch, n_params]``.
        """
        if p.dim() != 2 or p.shape[1] != self.n_params:
            raise ParamRangeError(f"p must be [batch, {self.n_params}] ({', '.join(self.param_names)}), "
                                  f"got {tuple(p.shape)}")
        u = p.to(torch.float64)
        lo, span = self.law_lo, self.law_span
        base = torch.where(self.law_log > 0, lo * torch.exp(u * span), lo + u * span)
        base = torch.minimum(torch.maximum(base, self.law_min), self.law_max)
        out = self.map(p.to(next(self.map.parameters()).dtype)).to(torch.float64)
        d = out[:, :self.n_params]
        mult = torch.exp(d)
        vals = torch.where(self.law_kind == 0, base + CORRECTION_DB * d,
                           torch.where(self.law_kind == 2, 1.0 + (base - 1.0) * mult, base * mult))
        vals = torch.minimum(torch.maximum(vals, self.law_floor), self.law_ceil)
        return vals, torch.sigmoid(out[:, -1])

    def controls(self, p: torch.Tensor) -> dict[str, torch.Tensor]:
        """:meth:`control_vector` by name: ``{"processor.param": float64 [batch]}``, plus
        ``"compressor.beta"`` (0..1) with a compressor.

        Raises:
            ParamRangeError: ``p`` is not ``[batch, n_params]``.
        """
        vals, beta = self.control_vector(p)
        out = {name: vals[:, i] for i, name in enumerate(self.param_names)}
        if "compressor" in self.schema:
            out["compressor.beta"] = beta
        return out

    def learned_law(self, p: torch.Tensor) -> dict[str, list[float]]:
        """``{"processor.param": [schema value, proxy value]}`` for one parameter vector ``p [n_params]``
        (what the model card prints)."""
        from .console import denormalise

        with torch.no_grad():
            base = denormalise(self._flat, p.reshape(1, -1).to(torch.float64), check=False)
            c = self.controls(p.reshape(1, -1))
        return {k: [float(base[k][0]) if k in base else float("nan"), float(v[0])] for k, v in c.items()}

    # ---------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """Offline processing from rest.

        Args:
            x: audio ``[batch, n_inputs, samples]``, float32.
            p: normalised parameters ``[batch, n_params]`` in 0..1.

        Returns:
            ``[batch, n_outputs, samples]`` float32.

        Raises:
            AudioInputError: ``x`` is not ``[batch, n_inputs, samples]``.
            ParamRangeError: ``p`` is not ``[batch, n_params]``.
        """
        if x.dim() != 3 or x.shape[1] != self.n_inputs:
            raise AudioInputError(f"x must be [batch, {self.n_inputs}, samples], got {tuple(x.shape)}")
        if p.shape[0] != x.shape[0]:
            raise ParamRangeError(f"p has {p.shape[0]} rows for a batch of {x.shape[0]}")
        c = self.controls(p)
        y = x
        if "eq" in self.schema:
            y = eq(y, self.sample_rate, **{k: c["eq." + k] for k in EQ_NAMES})
        if "compressor" in self.schema:
            level = torch.amax(torch.abs(y), dim=1).to(torch.float64)
            if self.ballistics == "level":  # an envelope follower on the level, then the gain computer
                level = one_pole(decoupled_release(level, c["compressor.release_ms"], c["compressor.beta"],
                                                   self.sample_rate), c["compressor.attack_ms"], self.sample_rate)
            level_db = 20.0 * torch.log10(torch.clamp(level, min=LEVEL_FLOOR))
            gr = static_reduction_db(level_db, c["compressor.threshold_db"], c["compressor.ratio"],
                                     c["compressor.knee_db"])
            if self.ballistics == "level":
                red = gr
            else:
                held = decoupled_release(gr, c["compressor.release_ms"], c["compressor.beta"], self.sample_rate)
                red = one_pole(held, c["compressor.attack_ms"], self.sample_rate)
            gain = torch.exp((c["compressor.makeup_db"][:, None] - red) * LN10_OVER_20)
            y = y * gain[:, None, :].to(y.dtype)
        return y


# --------------------------------------------------------------------------- streaming
def _lower(n: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(idx [T], lag [T, T] = n - k, mask [T, T] = k <= n)`` for a block of ``n`` samples, float64 lag."""
    idx = torch.arange(n, device=device)
    lag = (idx[:, None] - idx[None, :]).to(torch.float64)
    return idx, lag, lag >= 0


def _one_pole_block(v: torch.Tensor, rate: torch.Tensor, state: torch.Tensor, idx, lag, mask) -> torch.Tensor:
    """``y[n] = a y[n-1] + (1 - a) v[n]``, ``a = exp(-rate)``, over ``v [B, T]`` from ``y[-1] = state [B]``."""
    r = rate[:, None, None]
    kernel = torch.where(mask, torch.exp(-r * lag.clamp(min=0.0)), torch.zeros_like(lag)) * (1.0 - torch.exp(-r))
    decay = torch.exp(-rate[:, None] * (idx.to(torch.float64) + 1.0))
    return torch.matmul(kernel, v[:, :, None])[:, :, 0] + decay * state[:, None]


def _all_pole_response(a1: torch.Tensor, a2: torch.Tensor, length: int) -> torch.Tensor:
    """Impulse response ``h [B, length]`` of ``1 / (1 + a1 z^-1 + a2 z^-2)`` (doubling the companion's powers)."""
    batch = a1.shape[0]
    zero, one = torch.zeros_like(a1), torch.ones_like(a1)
    comp = torch.stack([torch.stack([-a1, -a2], -1), torch.stack([one, zero], -1)], -2)  # [B, 2, 2]
    vec = torch.stack([one, zero], -1)[:, None, :]  # v_0 = e1, rows are v_m^T
    power = comp
    while vec.shape[1] < length:
        vec = torch.cat([vec, torch.matmul(vec, power.transpose(-1, -2))], dim=1)
        power = torch.matmul(power, power)
    return vec[:, :length, 0].reshape(batch, length)


class StreamingGreyBox(nn.Module):
    """A block-by-block view of a :class:`GreyBoxProxy` with explicit state (exports to ONNX).

    ``forward(x, p_start, p_end, input_state, hidden_state) -> (y, input_state, hidden_state)``
    with ``x [batch, n_inputs, T]``, ``T`` in 1..:data:`MAX_STREAM_BLOCK` in the exported graph
    (longer blocks run in pieces in eager torch). The DSP's values are those of ``p_end``
    (held for the block; the runtime's smoother glides them from block to block). States,
    float32, zero = rest: ``input_state [batch, n_inputs, 20]`` (per channel, each of the five
    biquads' ``x[-1], x[-2], y[-1], y[-2]``) and ``hidden_state [batch, 1, 3]`` (the release
    low-pass ``P``, the held value ``M`` and the attack output: dB of reduction, or the linear level
    with ``ballistics="level"``). With constant
    parameters the streamed output equals :meth:`GreyBoxProxy.forward` to float32 round-off.
    """

    max_block_size = MAX_STREAM_BLOCK
    #: Silence in gives exactly 0 out from rest, so the runtime needs no silence run.
    silent_at_rest = True
    params_smoothing = "the DSP takes params_end's values for the whole block (the runtime glides them block to block)"
    #: Export formats (TorchScript cannot script the dict-valued control map).
    formats = ("onnx",)

    def __init__(self, model: GreyBoxProxy) -> None:
        super().__init__()
        self.model = model
        self.n_inputs = model.n_inputs
        self.sample_rate = model.sample_rate
        self.has_eq = "eq" in model.schema
        self.has_comp = "compressor" in model.schema
        self.latency_samples = 0
        self.receptive_field = model.receptive_field

    def controls_module(self) -> ControlGraph | None:
        """The knob law alone (:class:`ControlGraph`), which the exporter writes as ``controls.onnx`` for the
        CPU DSP path; None for ``ballistics="level"``, which that path does not have (the block graph runs)."""
        return ControlGraph(self.model).eval() if self.model.ballistics == "reduction" else None

    def initial_state(self, batch: int = 1, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero states: ``([batch, n_inputs, 20], [batch, 1, 3])``."""
        return torch.zeros(batch, self.n_inputs, 20, dtype=dtype), torch.zeros(batch, 1, 3, dtype=dtype)

    def forward(self, x: torch.Tensor, p_start: torch.Tensor, p_end: torch.Tensor, input_state: torch.Tensor,
                hidden_state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Process one block (see the class docstring); ``p_start`` is accepted for the common signature."""
        p_end = p_end + 0.0 * p_start  # keeps p_start a graph input (ONNX drops unused inputs)
        if x.shape[-1] <= MAX_STREAM_BLOCK:
            return self._block(x, p_end, input_state, hidden_state)
        outs = []
        for start in range(0, x.shape[-1], MAX_STREAM_BLOCK):
            y, input_state, hidden_state = self._block(x[..., start:start + MAX_STREAM_BLOCK], p_end,
                                                       input_state, hidden_state)
            outs.append(y)
        return torch.cat(outs, dim=-1), input_state, hidden_state

    def _block(self, x: torch.Tensor, p: torch.Tensor, input_state: torch.Tensor, hidden_state: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c = self.model.controls(p)
        n = x.shape[-1]
        idx, lag, mask = _lower(n, x.device)
        y = x.to(torch.float64)
        eq_state = input_state.to(torch.float64)
        new_eq = eq_state
        if self.has_eq:
            y, new_eq = self._eq(y, c, eq_state, idx, lag, mask)
        comp_state = hidden_state.to(torch.float64)[:, 0, :]
        new_comp = comp_state
        if self.has_comp:
            y, new_comp = self._compressor(y, c, comp_state, idx, lag, mask)
        return (y.to(torch.float32), new_eq.to(torch.float32), new_comp[:, None, :].to(torch.float32))

    def _eq(self, y, c, state, idx, lag, mask):
        sr = self.sample_rate
        sections = [shelf_coefs("low", c["eq.low_shelf_freq_hz"], c["eq.low_shelf_gain_db"], sr)]
        for band in ("peak1", "peak2", "peak3"):
            sections.append(peaking_coefs(c[f"eq.{band}_freq_hz"], c[f"eq.{band}_gain_db"], c[f"eq.{band}_q"], sr))
        sections.append(shelf_coefs("high", c["eq.high_shelf_freq_hz"], c["eq.high_shelf_gain_db"], sr))
        new_states = []
        pos = idx + 1
        for i, (b, a) in enumerate(sections):
            x1, x2, y1, y2 = (state[:, :, 4 * i + j] for j in range(4))  # [B, C]
            xe = torch.cat([x2[..., None], x1[..., None], y], dim=-1)  # [B, C, T + 2]
            w = (b[:, 0, None, None] * xe[..., 2:] + b[:, 1, None, None] * xe[..., 1:-1]
                 + b[:, 2, None, None] * xe[..., :-2])
            h = _all_pole_response(a[:, 1], a[:, 2], MAX_STREAM_BLOCK + 1)  # [B, L]
            hp = torch.cat([torch.zeros_like(h[:, :1]), h], dim=1)  # hp[m + 1] = h[m], hp[0] = h[-1] = 0
            toeplitz = torch.where(mask, hp[:, (lag.clamp(min=0.0).long() + 1)], torch.zeros_like(lag))  # [B, T, T]
            c0 = -(a[:, 1, None] * y1 + a[:, 2, None] * y2)  # [B, C]
            c1 = -(a[:, 2, None] * y1)
            out = (torch.matmul(w, toeplitz.transpose(-1, -2)) + c0[..., None] * hp[:, None, pos]
                   + c1[..., None] * hp[:, None, idx])
            ye = torch.cat([y2[..., None], y1[..., None], out], dim=-1)
            new_states.append(torch.stack([xe[..., -1], xe[..., -2], ye[..., -1], ye[..., -2]], dim=-1))
            y = out
        return y, torch.cat(new_states, dim=-1)

    def _compressor(self, y, c, state, idx, lag, mask):
        level = torch.amax(torch.abs(y), dim=1)
        if self.model.ballistics == "level":
            level, new = self._ballistics(level, c, state, idx, lag, mask)
            level_db = 20.0 * torch.log10(torch.clamp(level, min=LEVEL_FLOOR))
            red = static_reduction_db(level_db, c["compressor.threshold_db"], c["compressor.ratio"],
                                      c["compressor.knee_db"])
        else:
            level_db = 20.0 * torch.log10(torch.clamp(level, min=LEVEL_FLOOR))
            gr = static_reduction_db(level_db, c["compressor.threshold_db"], c["compressor.ratio"],
                                     c["compressor.knee_db"])
            red, new = self._ballistics(gr, c, state, idx, lag, mask)
        gain = torch.exp((c["compressor.makeup_db"][:, None] - red) * LN10_OVER_20)
        return y * gain[:, None, :], new

    def _ballistics(self, gr, c, state, idx, lag, mask):
        """Release law then one-pole attack over the block, from ``state [B, 3]``; ``(out [B, T], new state)``."""
        sr = self.sample_rate
        rel = 1.0 / (c["compressor.release_ms"] * (1e-3 * sr))
        att = 1.0 / (c["compressor.attack_ms"] * (1e-3 * sr))
        beta = c["compressor.beta"][:, None]
        low = _one_pole_block(gr, rel, state[:, 0], idx, lag, mask)
        u = torch.clamp(gr - beta * low, min=0.0)
        cand = torch.log(torch.clamp(u, min=TINY))[:, None, :] - rel[:, None, None] * lag
        cand = torch.where(mask, cand, torch.full_like(cand, math.log(TINY)))
        carried = torch.log(torch.clamp(state[:, 1], min=TINY))[:, None] - rel[:, None] * (idx.to(torch.float64) + 1.0)
        log_held = torch.maximum(torch.amax(cand, dim=-1), carried)
        held = torch.where(log_held > math.log(REDUCTION_FLOOR_DB), torch.exp(log_held), torch.zeros_like(log_held))
        red = _one_pole_block(beta * low + held, att, state[:, 2], idx, lag, mask)
        return red, torch.stack([low[:, -1], held[:, -1], red[:, -1]], dim=-1)


class ControlGraph(nn.Module):
    """``params [batch, n_params] -> controls [batch, n_params + 1]`` (float64): the proxy's learned knob
    law as a graph of its own (:meth:`GreyBoxProxy.control_vector`, then beta), which the CPU runtime
    (:mod:`mixbridge.export.greybox_dsp`) runs when the parameters move."""

    def __init__(self, model: GreyBoxProxy) -> None:
        super().__init__()
        self.model = model

    def forward(self, params: torch.Tensor) -> torch.Tensor:
        vals, beta = self.model.control_vector(params)
        return torch.cat([vals, beta[:, None]], dim=-1)



# --------------------------------------------------------------------------- proxy in the loop
def proxy_compressor_stage(proxy: GreyBoxProxy):
    """The grey-box compressor proxy of a plugin as the torch console's strip compressor
    (:data:`mixbridge.models.console.CompressorStage`): the seed thesis's *proxy in the loop*, so a
    mixer trained through ``TorchConsole(sr, compressor=proxy_compressor_stage(proxy))`` learns the
    settings that plugin needs, not the schema's.

    The stage normalises the schema's real-unit values (:func:`mixbridge.models.console.normalise`,
    kept in 0..1) and runs ``proxy``. A proxy with as many inputs as the audio has channels runs
    linked; a one-input proxy of a mono plugin runs once per channel, as the ``vst`` backend runs a
    mono plugin on a stereo track (independent lanes). The proxy's weights are frozen (``eval`` and
    ``requires_grad_(False)``): gradients reach the parameters, not the proxy.

    Args:
        proxy: a trained :class:`GreyBoxProxy` whose schema is ``("compressor",)``.

    Returns:
        The stage ``(audio [batch, C, samples], sample_rate, {name: Tensor[batch]}) -> [batch, C, samples]``.

    Raises:
        ModelConfigError: a proxy of another schema. AudioInputError (when called): a channel count the proxy
        cannot take, or another sample rate than the proxy's.
    """
    from .console import normalise

    if tuple(proxy.schema) != ("compressor",):
        raise ModelConfigError(f"proxy in the loop: the proxy's schema is {list(proxy.schema)}; the strip's "
                               "compressor stage takes a proxy of schema ['compressor']")
    proxy.eval()
    proxy.requires_grad_(False)
    flat = schema_params(("compressor",))
    dtype = next(proxy.parameters()).dtype

    def stage(x: torch.Tensor, sample_rate: int, params) -> torch.Tensor:
        if int(sample_rate) != proxy.sample_rate:
            raise AudioInputError(f"proxy in the loop: the console runs at {sample_rate} Hz, the proxy was trained "
                                  f"at {proxy.sample_rate} Hz; train a proxy at the console's rate")
        batch, ch, n = x.shape
        u = normalise(flat, {f"compressor.{k}": v for k, v in params.items()})
        u = torch.broadcast_to(u, (batch, u.shape[-1])).clamp(0.0, 1.0).to(dtype)
        if proxy.n_inputs == ch:
            return proxy(x, u)
        if proxy.n_inputs != 1:
            raise AudioInputError(f"proxy in the loop: a {proxy.n_inputs}-input proxy on {ch}-channel audio; "
                                  "use a proxy of 1 or of the audio's channels")
        y = proxy(x.reshape(batch * ch, 1, n), u.repeat_interleave(ch, dim=0))
        return y.reshape(batch, ch, n)

    return stage
