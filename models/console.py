"""The differentiable console: the schema's ``channel_strip`` and ``master_bus`` in torch (issue 9, item 6).

:class:`TorchConsole` renders stems ``[tracks, channels, samples]`` (one song) or
``[songs, tracks, channels, samples]`` with parameters in the schema's real units into
the stereo mix and the master, with the signal flow of :mod:`mixbridge.plugins.console`::

    stem -> trim -> polarity -> EQ -> compressor -> fader -> mute -> pan -> stereo sum
                                                           \\-> send (post-fader, post-pan) -> reverb bus
    mix = stereo sum + reverb return;  master = EQ -> bus compressor -> gain -> true-peak limiter (mix)

The stages are the pure functions of :mod:`mixbridge.models.dsp` and its stage modules
(:mod:`~mixbridge.models.dsp_eq`, :mod:`~mixbridge.models.dsp_dynamics`,
:mod:`~mixbridge.models.dsp_reverb`; their docstrings give each stage's source and its
deviation from the numpy reference). Measured against
the numpy references (``tests/models/test_torch_console.py``, 44.1 kHz):

* linear stages (trim, polarity, fader, mute, pan, send, sum) vs ``render_console`` /
  ``render_track`` with the builtin backend: max abs error <= 1e-6 (float32 round-off);
* EQ: the response on the FFT grid is the RBJ design to 1e-10 dB; filtering equals
  ``sosfilt`` within 1e-6 of a unit-scale signal;
* compressor vs :func:`mixbridge.plugins.dynamics.compress`: max abs error about 1e-7
  (gain reduction within 1e-9 dB);
* reverb vs :func:`mixbridge.plugins.reverb.reverb` (mono-summed send, stereo return): 1.2e-7 max abs
  error at integer-sample pre-delays; at fractional ones the torch return is the exact (band-limited) delay, not the
  rounded one (the error then is the sub-sample shift, e.g. -2.3 dB relative error energy for
  a 0.44-sample difference, with the return energy equal within 0.001 dB);
* master bus vs ``render_master``: max abs error about 2e-7; the output's true peak stays
  under ``limiter.ceiling_dbtp``.

``polarity.invert`` and ``fader.mute`` act as continuous gains ``1 - 2 invert`` and
``1 - mute`` (exact at 0 and 1), so every parameter has a gradient.

The master gain: ``gain.gain_db`` (the session's solved gain, ``MASTER_RENDER``) when given;
otherwise, when ``loudness.target_lufs`` is given, ``target - L`` with ``L`` the BS.1770-4
integrated loudness (:func:`mixbridge.models.dsp.integrated_lufs`) of the signal entering the
gain stage -- the open-loop solve, which ignores what the limiter takes off (the numpy solver,
:func:`mixbridge.plugins.mastering.solve_master_gain`, closes that loop); otherwise 0 dB.

The normalised mapping for model heads, :func:`denormalise` and :func:`normalise`, is
:meth:`mixbridge.schema.Param.from_normalised` / ``to_normalised`` on tensors, in
``Chain.flat_params()`` order.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from mixbridge.errors import AudioInputError, ParamRangeError, UnknownParamError
from mixbridge.plugins.master_bus import DEFAULT_LOOKAHEAD_MS
from mixbridge.schema import CHANNEL_STRIP, GAIN, MASTER_BUS, Chain, Param, flatten_params

from . import dsp, dsp_dynamics, dsp_eq, dsp_reverb

#: The master parameters the console takes: ``master_bus``'s, then the gain stage.
MASTER_PARAMS: list[tuple[str, Param]] = MASTER_BUS.flat_params() + [("gain.gain_db", GAIN.param("gain_db"))]
STRIP_PARAMS: list[tuple[str, Param]] = CHANNEL_STRIP.flat_params()


def _flat(chain) -> list[tuple[str, Param]]:
    return chain.flat_params() if isinstance(chain, Chain) else list(chain)


# --------------------------------------------------------------------------- normalised mapping
def denormalise(chain: Chain | Sequence[tuple[str, Param]], u: torch.Tensor, *, check: bool = True,
                bool_mode: str = "straight_through") -> dict[str, torch.Tensor]:
    """Normalised ``u`` ``[..., n_params]`` -> ``{"processor.param": Tensor[...]}`` in real units.

    :meth:`Param.from_normalised` on tensors: ``linear``/``db``: ``min + u (max - min)``;
    ``log``: ``min (max/min)^u``; results clamped to ``[min, max]``. Booleans are
    ``1 if u >= 0.5 else 0`` as in the schema; ``bool_mode="straight_through"`` passes the
    gradient of ``u`` through the rounding, ``"relaxed"`` returns ``u`` itself (a continuous
    mute/polarity the console renders as a gain), ``"round"`` gives no gradient.

    Raises:
        ParamRangeError: wrong last dimension; with ``check``, an entry outside [0, 1] or not finite.
    """
    flat = _flat(chain)
    if u.shape[-1] != len(flat):
        raise ParamRangeError(f"{len(flat)} normalised values needed in the last dimension, got shape {tuple(u.shape)}")
    if check:
        bad = ~(torch.isfinite(u) & (u >= 0) & (u <= 1))
        if bool(bad.any()):
            i = int(bad.nonzero()[0, -1])
            raise ParamRangeError(f"{flat[i][0]}: normalised value {float(u[bad][0])} is outside [0, 1]; "
                                  "squash the head's output (e.g. sigmoid)")
    if bool_mode not in ("straight_through", "relaxed", "round"):
        raise ParamRangeError(f"bool_mode = {bool_mode!r}; use 'straight_through', 'relaxed' or 'round'")
    out = {}
    for i, (path, p) in enumerate(flat):
        ui = u[..., i]
        if p.kind == "bool":
            hard = (ui >= 0.5).to(ui.dtype)
            v = {"straight_through": ui + (hard - ui).detach(), "relaxed": ui, "round": hard}[bool_mode]
        elif p.scale == "log":
            v = p.min * torch.exp(ui * math.log(p.max / p.min))
        else:
            v = p.min + ui * (p.max - p.min)
        out[path] = torch.clamp(v, p.min, p.max)
    return out


def normalise(chain: Chain | Sequence[tuple[str, Param]], values: Mapping) -> torch.Tensor:
    """Real values ``{"processor.param": Tensor[...]}`` (or nested) -> ``[..., n_params]`` in 0..1.

    :meth:`Param.to_normalised` on tensors (no range check; missing parameters take their default).

    Raises:
        UnknownParamError: a key that is not a parameter of ``chain``.
    """
    flat = _flat(chain)
    vals = _flatten(values, [p for p, _ in flat])
    ref = next((v for v in vals.values() if isinstance(v, torch.Tensor)), None)
    cols = []
    for path, p in flat:
        v = vals.get(path, p.default)
        v = v if isinstance(v, torch.Tensor) else torch.tensor(float(v), dtype=torch.float64)
        if p.scale == "log":
            cols.append(torch.log(v / p.min) / math.log(p.max / p.min))
        else:
            cols.append((v - p.min) / (p.max - p.min))
    if ref is not None:
        cols = [c.to(ref.dtype).expand(ref.shape) if c.ndim == 0 else c for c in cols]
    return torch.stack(torch.broadcast_tensors(*cols), dim=-1)


def _flatten(values: Mapping, known: Sequence[str]) -> dict:
    flat = flatten_params(values)
    unknown = [k for k in flat if k not in known]
    if unknown:
        raise UnknownParamError(f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return flat


def resolve_params(flat: Sequence[tuple[str, Param]], values, shape: tuple[int, ...], device=None,
                   check: bool = True) -> dict[str, torch.Tensor]:
    """Parameters as float64 tensors of ``shape`` (defaults filled).

    ``values``: ``None``; a mapping (flat ``"processor.param"`` or nested) of scalars or tensors
    broadcastable to ``shape``; or a tensor ``[*shape, n_params]`` of real values in ``flat`` order.

    Raises:
        UnknownParamError: an unknown name. ParamRangeError: a tensor of the wrong shape, or
        (``check``) a value outside its range or not finite.
    """
    names = [p for p, _ in flat]
    if isinstance(values, torch.Tensor):
        if values.shape[-1] != len(flat):
            raise ParamRangeError(f"a parameter tensor needs {len(flat)} values in its last dimension "
                                  f"({', '.join(names)}), got shape {tuple(values.shape)}")
        values = {n: values[..., i] for i, n in enumerate(names)}
    vals = _flatten(values or {}, names)
    out = {}
    for path, p in flat:
        v = vals.get(path, p.default)
        t = v if isinstance(v, torch.Tensor) else torch.tensor(float(v))
        t = t.to(dtype=torch.float64, device=device)
        try:
            t = torch.broadcast_to(t, shape)
        except RuntimeError:
            raise ParamRangeError(f"{path}: a tensor of shape {tuple(t.shape)} does not fit {shape}") from None
        if check:
            d = t.detach()
            bad = ~torch.isfinite(d) | (d < p.min) | (d > p.max)
            if bool(bad.any()):
                raise ParamRangeError(f"{path} = {float(d[bad][0]):g} is outside {p.range_text()}; "
                                      f"keep it between {p.min:g} and {p.max:g} (e.g. via denormalise)")
        out[path] = t
    return out


# --------------------------------------------------------------------------- the console
@dataclass
class ConsoleOutput:
    """``mix``, ``master``, ``reverb_return``, ``bus`` (the reverb send bus): ``[songs, 2, samples]``."""

    mix: torch.Tensor
    master: torch.Tensor
    reverb_return: torch.Tensor
    bus: torch.Tensor


def _group(p: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of ``p`` named ``prefix.<name>``, keyed by ``<name>``."""
    n = len(prefix) + 1
    return {k[n:]: v for k, v in p.items() if k.startswith(prefix + ".")}


#: A strip compressor stage: ``(audio [batch, C, samples], sample_rate, {"threshold_db": Tensor[batch], ...})``
#: (the schema's compressor parameters in real units) -> ``[batch, C, samples]``.
CompressorStage = Callable[[torch.Tensor, int, Mapping[str, torch.Tensor]], torch.Tensor]


def render_strips(x: torch.Tensor, sample_rate: int, p: Mapping[str, torch.Tensor],
                  mono: torch.Tensor | None = None, compressor: CompressorStage | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Channel strips of ``x`` ``[batch, 1|2, samples]`` with ``channel_strip`` params ``[batch]``.

    Returns ``(out, send)``, each ``[batch, 2, samples]``: post-fader post-pan output and its send.
    ``mono`` ``[batch]`` bool renders a 2-channel item from its channel 0 with the mono law.
    ``compressor`` replaces the schema's compressor stage (:func:`mixbridge.models.dsp_dynamics.compress`),
    e.g. by a plugin's proxy (:func:`mixbridge.models.proxy_greybox.proxy_compressor_stage`).
    """
    batch, ch, _ = x.shape
    if mono is not None and ch == 2 and bool(mono.any()):
        x = torch.where(mono[:, None, None], x[:, :1].expand_as(x), x)
    x = dsp.trim(x, p["trim.gain_db"])
    x = dsp.polarity(x, p["polarity.invert"])
    x = dsp_eq.eq(x, sample_rate, **_group(p, "eq"))
    if compressor is None:
        x = dsp_dynamics.compress(x, sample_rate, **_group(p, "compressor"))
    else:
        x = compressor(x, sample_rate, _group(p, "compressor"))
    out = dsp.fader_pan(x, p["fader.fader_db"], p["fader.mute"], p["pan.pan"], mono)
    send = out * dsp.send_gain(p["send.send_db"], batch, x.device).to(out.dtype)[:, None, None]
    return out, send


def backend_compressor_stage(backend) -> CompressorStage:
    """A :data:`CompressorStage` that renders each item through ``backend``'s compressor (e.g. the ``vst``
    backend with a plugin's map): the real plugin inside the torch console, for measuring; no gradient.

    Args:
        backend: a :class:`mixbridge.plugins.backend.Backend` at the console's sample rate.

    Raises:
        ParamRangeError: (when called) another sample rate than the backend's.
    """
    import numpy as np

    def stage(x: torch.Tensor, sample_rate: int, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if int(sample_rate) != int(backend.sample_rate):
            raise ParamRangeError(f"compressor stage: the console runs at {sample_rate} Hz, the backend at "
                                  f"{backend.sample_rate} Hz; build both at one rate")
        audio = x.detach().cpu().numpy().astype(np.float32)
        vals = {k: torch.broadcast_to(torch.as_tensor(v), (x.shape[0],)).detach().cpu().numpy()
                for k, v in params.items()}
        out = np.stack([backend.process("compressor", audio[i], {k: float(v[i]) for k, v in vals.items()},
                                        label=f"torch console item {i}") for i in range(x.shape[0])])
        return torch.from_numpy(out).to(device=x.device, dtype=x.dtype)

    return stage


class TorchConsole(nn.Module):
    """The differentiable console (see the module docstring). No learnable weights.

    Args:
        sample_rate: Hz.
        lookahead_ms: the master limiter's look-ahead (the master bus's default).
        check_ranges: refuse parameter values outside the schema's ranges.
        compressor: the strips' compressor stage (:data:`CompressorStage`); None: the schema's
            (:func:`mixbridge.models.dsp_dynamics.compress`). A plugin's proxy here is the thesis's "proxy in
            the loop": the console then renders what that plugin would (the master bus keeps the schema's).

    Raises:
        ParamRangeError: a bad sample rate.
    """

    def __init__(self, sample_rate: int, *, lookahead_ms: float = DEFAULT_LOOKAHEAD_MS,
                 check_ranges: bool = True, compressor: CompressorStage | None = None) -> None:
        super().__init__()
        self.sample_rate = dsp.check_rate(sample_rate)
        self.lookahead_ms = float(lookahead_ms)
        self.check_ranges = check_ranges
        self.compressor = compressor

    def forward(self, stems: torch.Tensor, strip=None, master=None, mono: torch.Tensor | None = None) -> ConsoleOutput:
        """Render ``stems`` ``[tracks, C, samples]`` or ``[songs, tracks, C, samples]`` (C = 1 or 2).

        Args:
            strip: ``channel_strip`` parameters per track (``[tracks]`` / ``[songs, tracks]`` tensors
                or scalars, by ``"processor.param"`` or nested; or a tensor ``[..., 25]`` in
                ``CHANNEL_STRIP.flat_params()`` order).
            master: ``master_bus`` parameters per song, plus ``gain.gain_db`` (:data:`MASTER_PARAMS`).
            mono: bool ``[tracks]`` / ``[songs, tracks]``: 2-channel items that hold a mono stem in
                channel 0 (rendered with the mono pan law). Default: ``C == 1``.

        Returns:
            :class:`ConsoleOutput` of ``[songs, 2, samples]`` tensors (songs = 1 for 3-D stems).

        Raises:
            AudioInputError: stems of another shape. ParamRangeError, UnknownParamError: bad parameters.
        """
        if not isinstance(stems, torch.Tensor) or stems.ndim not in (3, 4) or stems.shape[-2] not in (1, 2):
            shape = tuple(stems.shape) if isinstance(stems, torch.Tensor) else type(stems).__name__
            raise AudioInputError(f"stems must be [tracks, 1|2, samples] or [songs, tracks, 1|2, samples], got {shape}")
        if stems.ndim == 3:
            stems = stems[None]
        songs, tracks, ch, n = stems.shape
        dev = stems.device
        sp = resolve_params(STRIP_PARAMS, strip, (songs, tracks), dev, self.check_ranges)
        mp = resolve_params(MASTER_PARAMS, master, (songs,), dev, self.check_ranges)
        sp = {k: v.reshape(-1) for k, v in sp.items()}
        if mono is not None:
            mono = torch.broadcast_to(torch.as_tensor(mono, dtype=torch.bool, device=dev), (songs, tracks)).reshape(-1)
        out, send = render_strips(stems.reshape(songs * tracks, ch, n), self.sample_rate, sp, mono,
                                  self.compressor)
        dry = out.reshape(songs, tracks, 2, n).sum(dim=1)
        bus = send.reshape(songs, tracks, 2, n).sum(dim=1)
        sends_on = bool((sp["send.send_db"] > dsp.SEND_OFF_DB).any())
        if sends_on:
            rv = _group(mp, "reverb")
            ret = dsp_reverb.reverb(bus, self.sample_rate, decay_s=rv["decay_s"], predelay_ms=rv["predelay_ms"],
                                    return_db=rv["return_db"])
        else:
            ret = torch.zeros_like(bus)
        mix = dry + ret
        master_out = self.master(mix, mp, master)
        return ConsoleOutput(mix, master_out, ret, bus)

    def master(self, mix: torch.Tensor, mp: Mapping[str, torch.Tensor], given=None) -> torch.Tensor:
        """The master bus of ``mix`` ``[songs, 2, samples]`` with resolved parameters ``mp``."""
        x = dsp_eq.eq(mix, self.sample_rate, **_group(mp, "eq"))
        x = dsp_dynamics.compress(x, self.sample_rate, **_group(mp, "compressor"))
        names = set(_flatten(given, [p for p, _ in MASTER_PARAMS])) if isinstance(given, Mapping) else set()
        if isinstance(given, torch.Tensor) or "gain.gain_db" in names or "loudness.target_lufs" not in names:
            gain_db = mp["gain.gain_db"]
        else:
            gain_db = mp["loudness.target_lufs"] - dsp.integrated_lufs(x, self.sample_rate)
        x = dsp.trim(x, gain_db)
        return dsp_dynamics.limiter(x, self.sample_rate, **_group(mp, "limiter"), lookahead_ms=self.lookahead_ms)


# --------------------------------------------------------------------------- the semantic contract
def contract_implementation(sample_rate: int):
    """The torch console as a :class:`mixbridge.plugins.contract.Implementation` (rows eq, compressor,
    limiter, reverb, pan), each stage run through the functions above on float32 tensors."""
    import numpy as np

    from mixbridge.plugins.contract import Implementation

    def wrap(fn):
        def render(audio, sr, params):
            with torch.no_grad():
                x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None]
                return fn(x, sr, params)[0].numpy()
        return render

    def pan(x, sr, params):
        p = resolve_params(STRIP_PARAMS, {"pan.pan": float(params["pan"])}, (1,), check=True)
        return render_strips(x, sr, p)[0]

    return Implementation("torch", {
        "compressor": wrap(lambda x, sr, p: dsp_dynamics.compress(x, sr, **p)),
        "eq": wrap(lambda x, sr, p: dsp_eq.eq(x, sr, **p)),
        "limiter": wrap(lambda x, sr, p: dsp_dynamics.limiter(x, sr, **p)),
        "reverb": wrap(lambda x, sr, p: dsp_reverb.reverb(x, sr, **p)),
        "pan": wrap(pan),
    })


def register_contract() -> None:
    """Register :func:`contract_implementation` as the contract's ``torch`` implementation (idempotent)."""
    from mixbridge.plugins import contract

    if "torch" not in contract.implementation_names():
        contract.register_implementation("torch", contract_implementation)
