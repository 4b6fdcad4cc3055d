"""The thesis TCN proxy ``g(x, p)`` with FiLM conditioning, offline and streaming.

A neural proxy learns ``g(x, p) ~ f(x, p)`` for an effect ``f`` over a dense sampling of its normalised parameters
``p`` (Steinmetz, *Learning to mix with neural audio effects in the waveform domain*, MSc thesis 2020, ch. 4; the
``micro-tcn`` code of Steinmetz & Reiss, "Efficient neural networks ..." AES 2022). Each block is::

    conv1d(kernel k, dilation d) -> BatchNorm1d(affine=False) -> FiLM(p) -> PReLU
    + residual: a learned per-channel gain (1x1 depthwise conv) of the block input

with dilations ``growth ** (i mod blocks_per_stack)`` (1..512 for ten blocks per
stack), so TCN-10/20/30 are 1/2/3 stacks. The parameters go through a small MLP
shared by all blocks (``n_params -> 16 -> 32 -> cond_dim``, ReLU); each block has
its own linear adaptor to ``2 * channels`` FiLM scales and shifts (Perez et al.,
"FiLM", AAAI 2018).

Two variants share one class (the ``causal`` flag):

* **non-causal** (the thesis's): no padding, the residual is centre-cropped, the
  offline output is ``receptive_field - 1`` samples shorter than the input and
  sample ``n`` is centred on input sample ``n + center_offset_samples``;
* **causal**: every layer is left-padded with zeros, the output has the input's
  length and depends only on past and present input.

Both stream block by block through :class:`StreamingTCN`, which carries each
layer's last ``(k - 1) * d`` input samples as state (packed into two tensors so
the ONNX graph has a fixed signature: DESIGN.md §4 — ``forward(x, p, *states)``
does not export in torch 2.13). Streaming is defined for eval mode, where batch
norm is a fixed per-channel affine map; the wrapper folds it into the FiLM
coefficients. A causal model streamed from a zero state equals its offline
output; a non-causal model streamed equals its offline output delayed by
``latency_samples`` once ``receptive_field - 1`` samples have gone in.

Audio is ``float32 [batch, channels, samples]``; parameters are normalised 0..1
``float32 [batch, n_params]`` in the order of :func:`schema_param_names`.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from mixbridge.errors import AudioInputError, MixbridgeError, ParamRangeError
from mixbridge.proxy_schema import schema_param_names, schema_params  # noqa: F401  (re-exported)

#: Output nonlinearities. ``tanh`` is micro-tcn's; ``linear`` (default) keeps gains
#: above 0 dB (trim, makeup) representable without soft clipping.
OUTPUT_ACTIVATIONS = ("linear", "tanh")


class ModelConfigError(ValueError, MixbridgeError):
    """A model constructor argument that cannot build a model (the message says why)."""


# --------------------------------------------------------------------------- blocks
class FiLM(nn.Module):
    """Batch norm without affine, then a feature-wise affine map from the condition.

    ``y = gamma(c) * BN(x) + beta(c)`` with ``[gamma, beta] = W c + b``
    (Perez et al. 2018; micro-tcn ``FiLM``).

    Shapes: ``x [batch, channels, samples]``, ``cond [batch, cond_dim]``.
    """

    def __init__(self, cond_dim: int, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.bn = nn.BatchNorm1d(channels, affine=False)
        self.adaptor = nn.Linear(cond_dim, 2 * channels)

    def coefficients(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``gamma, beta`` as ``[batch, channels, 1]``."""
        gb = self.adaptor(cond).unsqueeze(-1)
        return gb[:, : self.channels], gb[:, self.channels :]

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``gamma(cond) * BN(x) + beta(cond)``: ``x [batch, channels, samples]``, ``cond [batch, cond_dim]``."""
        gamma, beta = self.coefficients(cond)
        return self.bn(x) * gamma + beta

    def eval_norm(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Eval-mode batch norm as a per-channel affine map ``BN(y) = y * scale + shift``.

        Returns ``(scale, shift)``, each ``[channels]``: ``scale = 1 / sqrt(running_var + eps)``,
        ``shift = -running_mean * scale``.

        Raises:
            ModelConfigError: the batch norm keeps no running statistics (it always does here:
                it is built with ``track_running_stats=True``).
        """
        mean, var = self.bn.running_mean, self.bn.running_var
        if mean is None or var is None:
            raise ModelConfigError("FiLM batch norm has no running statistics to fold")
        scale = torch.rsqrt(var + self.bn.eps)
        return scale, -mean * scale


class TCNBlock(nn.Module):
    """One block: dilated conv -> BN -> FiLM -> PReLU, plus a learned residual gain.

    ``causal`` left-pads the conv input with ``(k - 1) * dilation`` zeros (output
    length = input length); otherwise no padding (output shorter by
    ``(k - 1) * dilation``) and the residual is cropped by ``crop_left`` samples
    on the left and the rest on the right.
    """

    def __init__(self, in_channels: int, channels: int, kernel_size: int, dilation: int,
                 cond_dim: int, causal: bool) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.channels = channels
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.causal = causal
        self.span = (kernel_size - 1) * dilation  # samples of history the conv needs
        self.crop_left = 0 if causal else self.span // 2
        # samples between the residual tap and the newest input when streaming
        self.lookahead = 0 if causal else self.span - self.crop_left
        self.conv = nn.Conv1d(in_channels, channels, kernel_size, dilation=dilation, bias=True)
        self.film = FiLM(cond_dim, channels)
        self.act = nn.PReLU(channels)
        # learned residual gain: one weight per channel (depthwise 1x1, micro-tcn ``res``)
        self.res = nn.Conv1d(in_channels, channels, 1, groups=in_channels, bias=False)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``x [batch, in_channels, samples]`` -> ``[batch, channels, samples]``, ``span`` shorter unless causal."""
        if self.causal:
            y = self.conv(F.pad(x, (self.span, 0)))
            res = self.res(x)
        else:
            y = self.conv(x)
            res = self.res(x[..., self.crop_left : self.crop_left + y.shape[-1]])
        return self.act(self.film(y, cond)) + res


class TCN(nn.Module):
    """The TCN proxy with FiLM conditioning (thesis ch. 4); see the module docstring.

    The keyword arguments are the whole config; :meth:`config` returns them and
    checkpoints record them (STYLE.md point 10).

    Args:
        schema: processor or chain names whose parameters form ``p`` (see
            :func:`schema_params`), e.g. ``("compressor",)`` or ``("eq", "compressor")``.
        sample_rate: audio rate in Hz the model is trained for.
        n_inputs, n_outputs: audio channels in and out.
        channels: hidden channels of every block.
        kernel_size: conv kernel (15 in the thesis).
        n_blocks: total blocks; ``blocks_per_stack`` per stack (10 -> dilations 1..512).
        dilation_growth: dilation of block ``i`` is ``growth ** (i % blocks_per_stack)``.
        cond_dim: width of the shared conditioning MLP's output.
        causal: causal (left-padded) variant instead of the centre-cropped one.
        output_activation: ``"linear"`` or ``"tanh"`` after the 1x1 output conv.

    Raises:
        ModelConfigError: a non-positive size, a schema with no parameters, or an
            unknown ``output_activation``.
        UnknownNameError: an unknown schema entry.
    """

    architecture = "tcn-film"

    def __init__(self, *, schema: Sequence[str] = ("compressor",), sample_rate: int = 48000,
                 n_inputs: int = 1, n_outputs: int = 1, channels: int = 32, kernel_size: int = 15,
                 n_blocks: int = 10, blocks_per_stack: int = 10, dilation_growth: int = 2,
                 cond_dim: int = 32, causal: bool = False, output_activation: str = "linear") -> None:
        super().__init__()
        for label, v in (("sample_rate", sample_rate), ("n_inputs", n_inputs), ("n_outputs", n_outputs),
                         ("channels", channels), ("kernel_size", kernel_size), ("n_blocks", n_blocks),
                         ("blocks_per_stack", blocks_per_stack), ("dilation_growth", dilation_growth),
                         ("cond_dim", cond_dim)):
            if int(v) != v or v < 1:
                raise ModelConfigError(f"TCN {label} = {v!r} must be a positive integer")
        if output_activation not in OUTPUT_ACTIVATIONS:
            raise ModelConfigError(
                f"TCN output_activation = {output_activation!r}; known: {', '.join(OUTPUT_ACTIVATIONS)}")
        self.schema = tuple(schema)
        self.param_names = schema_param_names(self.schema)
        if not self.param_names:
            raise ModelConfigError("TCN schema has no parameters; name at least one processor")
        self.sample_rate = int(sample_rate)
        self.n_inputs, self.n_outputs = int(n_inputs), int(n_outputs)
        self.channels, self.kernel_size = int(channels), int(kernel_size)
        self.n_blocks, self.blocks_per_stack = int(n_blocks), int(blocks_per_stack)
        self.dilation_growth, self.cond_dim = int(dilation_growth), int(cond_dim)
        self.causal = bool(causal)
        self.output_activation = output_activation
        self.n_params = len(self.param_names)

        self.cond = nn.Sequential(
            nn.Linear(self.n_params, 16), nn.ReLU(),
            nn.Linear(16, 32), nn.ReLU(),
            nn.Linear(32, self.cond_dim), nn.ReLU(),
        )
        self.blocks = nn.ModuleList(
            TCNBlock(self.n_inputs if i == 0 else self.channels, self.channels, self.kernel_size,
                     self.dilation_growth ** (i % self.blocks_per_stack), self.cond_dim, self.causal)
            for i in range(self.n_blocks)
        )
        self.output = nn.Conv1d(self.channels, self.n_outputs, 1)

    # ---------------------------------------------------------------- contract
    def config(self) -> dict:
        """The constructor arguments as JSON-able data (``TCN(**config)`` rebuilds it)."""
        return {
            "schema": list(self.schema), "sample_rate": self.sample_rate, "n_inputs": self.n_inputs,
            "n_outputs": self.n_outputs, "channels": self.channels, "kernel_size": self.kernel_size,
            "n_blocks": self.n_blocks, "blocks_per_stack": self.blocks_per_stack,
            "dilation_growth": self.dilation_growth, "cond_dim": self.cond_dim,
            "causal": self.causal, "output_activation": self.output_activation,
        }

    @property
    def block_list(self) -> list[TCNBlock]:
        """The blocks in order, typed as :class:`TCNBlock` (``nn.ModuleList`` yields plain ``Module``)."""
        return [cast(TCNBlock, b) for b in self.blocks]

    @property
    def dilations(self) -> list[int]:
        """Each block's dilation, in order (``growth ** (i % blocks_per_stack)``)."""
        return [b.dilation for b in self.block_list]

    @property
    def receptive_field(self) -> int:
        """Input samples that one output sample depends on: ``1 + sum (k - 1) d_i``."""
        return 1 + sum(b.span for b in self.block_list)

    @property
    def center_offset_samples(self) -> int:
        """Non-causal offline output ``n`` is centred on input ``n + center_offset_samples``
        (0 for the causal variant, whose output ``n`` ends at input ``n``)."""
        return sum(b.crop_left for b in self.block_list)

    @property
    def latency_samples(self) -> int:
        """Delay in samples of the streamed output behind the input: 0 when causal,
        the look-ahead ``sum (span_i - crop_left_i)`` (``(receptive_field - 1) / 2`` for
        odd kernels) for the centre-cropped variant."""
        return sum(b.lookahead for b in self.block_list)

    @property
    def n_weights(self) -> int:
        """Number of trainable weights."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def output_length(self, input_length: int) -> int:
        """Offline output length in samples for ``input_length`` input samples."""
        return input_length if self.causal else input_length - self.receptive_field + 1

    # ---------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """Offline processing.

        Args:
            x: audio ``[batch, n_inputs, samples]``, float32.
            p: normalised parameters ``[batch, n_params]`` in 0..1.

        Returns:
            ``[batch, n_outputs, output_length(samples)]``.

        Raises:
            AudioInputError: ``x`` is not ``[batch, n_inputs, samples]``, or (non-causal)
                it is shorter than the receptive field.
            ParamRangeError: ``p`` is not ``[batch, n_params]``.
        """
        if x.dim() != 3 or x.shape[1] != self.n_inputs:
            raise AudioInputError(f"x must be [batch, {self.n_inputs}, samples], got {tuple(x.shape)}")
        if p.dim() != 2 or p.shape[1] != self.n_params or p.shape[0] != x.shape[0]:
            raise ParamRangeError(f"p must be [{x.shape[0]}, {self.n_params}] ({', '.join(self.param_names)}), "
                             f"got {tuple(p.shape)}")
        if not self.causal and x.shape[-1] < self.receptive_field:
            raise AudioInputError(f"input of {x.shape[-1]} samples is shorter than the receptive field "
                             f"({self.receptive_field} samples); pad it or use the causal variant")
        cond = self.cond(p)
        for block in self.blocks:
            x = block(x, cond)
        y = self.output(x)
        return torch.tanh(y) if self.output_activation == "tanh" else y


# --------------------------------------------------------------------------- streaming
class StreamingTCN(nn.Module):
    """A block-by-block view of an eval-mode :class:`TCN` with explicit state.

    ``forward(x, p_start, p_end, input_state, hidden_state) -> (y, input_state,
    hidden_state)``. The states hold every layer's last ``span_i = (k - 1) d_i``
    input samples: ``input_state [batch, n_inputs, span_0]`` for the first layer,
    ``hidden_state [batch, channels, sum_{i>0} span_i]`` for the rest, concatenated
    in layer order (two tensors, so the signature does not depend on the depth;
    DESIGN.md §4). Start from zeros (:meth:`initial_state`).

    FiLM scales and shifts are computed for ``p_start`` and ``p_end`` and ramped
    linearly over the block, sample ``t`` of ``T`` getting weight ``(t + 1) / T`` on
    ``p_end``: a parameter change glides instead of stepping (no zipper noise).
    When ``p_start == p_end`` this is exactly the offline model.

    Built for a small graph (few ONNX nodes, since per-node overhead dominates
    small blocks; DESIGN.md §4): eval batch norm is folded into the FiLM adaptors,
    all blocks' adaptors are one linear layer, every slice is static, and the
    residual gains are one multiply per block. The wrapper is therefore a
    snapshot: rebuild it after changing the model's weights. Works in TorchScript
    (:func:`torch.jit.script`) and exports to ONNX.

    Output ``y [batch, n_outputs, T]`` lags the input by ``latency_samples``.
    """

    def __init__(self, model: TCN) -> None:
        super().__init__()
        if model.n_blocks < 2:
            raise ModelConfigError("streaming needs n_blocks >= 2 (state is packed per layer)")
        # batch norm is folded from its running statistics below, so the wrapper is the
        # eval-mode model whatever ``model.training`` is (the model itself is not changed)
        c = model.channels
        blocks = model.block_list
        self.cond = model.cond
        self.convs = nn.ModuleList(b.conv for b in blocks)
        self.acts = nn.ModuleList(b.act for b in blocks)
        self.res0 = blocks[0].res
        self.output = model.output
        self.channels = c
        self.n_inputs = model.n_inputs
        self.causal = model.causal
        self.spans = [b.span for b in blocks]
        self.crops = [b.crop_left for b in blocks]
        self.backs = [b.lookahead for b in blocks]
        offsets = [0]
        for span in self.spans[1:]:
            offsets.append(offsets[-1] + span)
        self.hidden_offsets = offsets[:-1]
        self.hidden_length = offsets[-1]
        self.use_tanh = model.output_activation == "tanh"
        with torch.no_grad():
            weights, biases = [], []
            for b in blocks:
                s, t = b.film.eval_norm()  # BN(y) = y * s + t
                w, bias = b.film.adaptor.weight, b.film.adaptor.bias
                w_g, w_b, b_g, b_b = w[:c], w[c:], bias[:c], bias[c:]
                # gamma * (y s + t) + beta = y * (gamma s) + (gamma t + beta); both linear in cond
                weights += [w_g * s[:, None], w_g * t[:, None] + w_b]
                biases += [b_g * s, b_g * t + b_b]
            self.film = nn.Linear(model.cond_dim, 2 * c * model.n_blocks)
            self.film.weight.copy_(torch.cat(weights, 0))
            self.film.bias.copy_(torch.cat(biases, 0))
            self.res_gain: torch.Tensor  # [n_blocks - 1, channels, 1], the buffer registered next
            self.register_buffer("res_gain", torch.stack([b.res.weight.detach().reshape(c, 1)
                                                          for b in blocks[1:]]).clone())
        self.latency_samples = model.latency_samples
        self.receptive_field = model.receptive_field

    def initial_state(self, batch: int = 1, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero states: ``([batch, n_inputs, span_0], [batch, channels, hidden_length])``."""
        return (torch.zeros(batch, self.n_inputs, self.spans[0], dtype=dtype),
                torch.zeros(batch, self.channels, self.hidden_length, dtype=dtype))

    def forward(self, x: torch.Tensor, p_start: torch.Tensor, p_end: torch.Tensor,
                input_state: torch.Tensor, hidden_state: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Process one block with the parameters ramped linearly from ``p_start`` to ``p_end``.

        ``x`` is ``[batch, n_inputs, block]`` audio, ``p_start``/``p_end`` ``[batch, n_params]``
        normalised 0..1 parameters, and the states are those of :meth:`initial_state` (or of the
        previous call). Returns ``(y [batch, n_outputs, block], input_state, hidden_state)``; the
        output lags the input by ``latency_samples``.
        """
        n = x.shape[-1]
        ramp = (torch.arange(n, dtype=x.dtype, device=x.device) + 1.0) / n  # [T]
        f0 = self.film(self.cond(p_start)).unsqueeze(-1)  # [B, n_blocks * 2C, 1]
        f1 = self.film(self.cond(p_end)).unsqueeze(-1)
        coef = f0 + (f1 - f0) * ramp  # [B, n_blocks * 2C, T]
        c = self.channels
        new_hidden: list[torch.Tensor] = []
        new_input = input_state
        i = 0
        for conv, act in zip(self.convs, self.acts):
            span = self.spans[i]
            if i == 0:
                buf = torch.cat([input_state, x], dim=-1)
                new_input = buf[:, :, -span:]
            else:
                off = self.hidden_offsets[i - 1]
                buf = torch.cat([hidden_state[:, :, off:off + span], x], dim=-1)
                new_hidden.append(buf[:, :, -span:])
            if self.causal or self.backs[i] == 0:
                r = x
            else:
                r = buf[:, :, self.crops[i]:-self.backs[i]]
            if i == 0:
                r = self.res0(r)
            else:
                r = r * self.res_gain[i - 1]
            scale = coef[:, 2 * c * i: 2 * c * i + c]
            shift = coef[:, 2 * c * i + c: 2 * c * (i + 1)]
            x = act(conv(buf) * scale + shift) + r
            i += 1
        out = self.output(x)
        if self.use_tanh:
            out = torch.tanh(out)
        return out, new_input, torch.cat(new_hidden, dim=-1)


# StreamingTCN's source text and line numbers are part of every TorchScript artifact (its debug
# info): editing anything above this point changes model.ts bytes, though not what it computes;
# re-exports with the same code stay byte-identical (tests/export/test_export.py).


def stream(model: nn.Module, x: torch.Tensor, p: torch.Tensor, block_size: int) -> torch.Tensor:
    """Run ``model`` block by block from a zero state through its registered streaming wrapper
    (:func:`mixbridge.models.registry.streaming_wrapper`: :class:`StreamingTCN`, or the grey-box
    proxy's); the reference for tests and benchmarks.

    Shapes: ``x [batch, n_inputs, samples]``, ``p [batch, n_params]``; returns
    ``[batch, n_outputs, samples]`` lagging the input by ``model.latency_samples``.
    """
    from .registry import streaming_wrapper

    wrapper = streaming_wrapper(model)
    s_in, s_hid = wrapper.initial_state(x.shape[0], x.dtype)
    outs = []
    with torch.no_grad():
        for start in range(0, x.shape[-1], block_size):
            y, s_in, s_hid = wrapper(x[..., start:start + block_size], p, p, s_in, s_hid)
            outs.append(y)
    return torch.cat(outs, dim=-1)
