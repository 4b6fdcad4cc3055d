"""The Mix-Wave-U-Net direct mixer ``mixwaveunet`` (Martinez-Ramirez, Stoller and Moffat, "A deep learning
approach to intelligent drum mixing with the Wave-U-Net", JAES 69(3), 2021; Stoller et al.'s Wave-U-Net, ISMIR 2018).

A multichannel Wave-U-Net from a **fixed number of tracks** to the stereo mix, in the time domain:

* **the slots**: the stems are placed into :data:`N_SLOTS` = 8 slots by their mixing role
  (:data:`SLOTS`, in this order): ``kick``; ``snare``; the other drum pieces (``hihat``, ``toms``,
  ``cymbals``, ``percussion``); ``bass``; ``guitar``; ``keys``; the ensemble (``pad``, ``strings``,
  ``brass``); ``lead`` and ``other``. Each stem is first brought to
  :data:`~mixbridge.models.direct_mixers.COMMON_LUFS`; the stems of one slot are summed into it (so two
  guitars keep their unity balance inside the guitar slot); an empty slot is zeros. The input is
  ``[batch, 2 * N_SLOTS = 16, samples]`` (each slot stereo, left then right).
* **the network** (:class:`MixWaveUNet`): ``n_levels`` downsampling blocks (a convolution of kernel
  ``down_kernel`` = 15, LeakyReLU, then decimation by 2), a bottleneck convolution, ``n_levels`` upsampling
  blocks (linear interpolation by 2, concatenation with the skip of the same level, a convolution of
  kernel ``up_kernel`` = 5, LeakyReLU), then the input is concatenated and a 1x1 convolution gives the
  stereo mix ``[batch, 2, samples]`` (linear output). Level ``i`` has ``base_channels * (i + 1)``
  channels, as the Wave-U-Net grows by a fixed count per level. Convolutions are zero-padded
  ("same"), the input is zero-padded to a multiple of ``2 ** n_levels`` and cut back.

Differences from the paper: 5 levels of 16..80 channels instead of 10 levels of 24..240 (so it trains
on a 2-core CPU in 15 minutes), 8 slots of role groups for the whole mix instead of 8 drum pieces,
"same" padding instead of the context-cropping variant; loss L1 on the waveform plus the MR-STFT
(:mod:`mixbridge.models.training.direct`). Importing this module imports no torch.
"""
from __future__ import annotations

import numpy as np

from mixbridge.audio import StemSet, resample

from .direct_mixers import COMMON_LUFS, DirectMixer, stereo_stems

#: The slots, in input order: the roles each one takes (every role of mixbridge.roles.ROLES is in one).
SLOTS: tuple[tuple[str, ...], ...] = (("kick",), ("snare",), ("hihat", "toms", "cymbals", "percussion"), ("bass",),
                                      ("guitar",), ("keys",), ("pad", "strings", "brass"), ("lead", "other"))
N_SLOTS = len(SLOTS)
#: Samples run through the network at once when mixing (a long song goes in chunks with overlap).
CHUNK_SAMPLES, CHUNK_OVERLAP = 441_000, 8192
TRAIN_HINT = "mixbridge train mixwaveunet --data COMPOSER_DATASET --config models/configs/mixwaveunet.yaml -o RUN_DIR"


def slot_of_role(role: str | None) -> int:
    """The slot (index into :data:`SLOTS`) of a stem of mixing role ``role`` (``lead``/``other`` for None)."""
    for i, roles in enumerate(SLOTS):
        if role in roles:
            return i
    return N_SLOTS - 1


def slot_input(audio: np.ndarray, roles: list[str | None]) -> np.ndarray:
    """The network's input float32 ``[2 * N_SLOTS, samples]`` from ``audio [tracks, 2, samples]`` (already at the
    common level) and each track's role: the tracks of one slot summed, empty slots zero."""
    x = np.zeros((N_SLOTS, 2, audio.shape[-1]), np.float32)
    for a, r in zip(audio, roles):
        x[slot_of_role(r)] += a
    return x.reshape(2 * N_SLOTS, -1)


def _network_class():
    """Define :class:`MixWaveUNet` (torch is imported here)."""
    import torch
    from torch import nn

    from .tcn import ModelConfigError

    class MixWaveUNet(nn.Module):
        """The multichannel Wave-U-Net (module docstring).

        Args:
            in_channels: input channels (``2 * N_SLOTS``). n_levels: downsampling levels.
            base_channels: channels added per level. down_kernel, up_kernel: odd kernel sizes.
            sample_rate: the rate it was trained at, Hz.

        Shapes: ``forward(x [batch, in_channels, samples]) -> [batch, 2, samples]``.

        Raises:
            ModelConfigError: a non-positive size or an even kernel.
        """

        architecture = "mixwaveunet"
        receptive_field = None
        latency_samples = None
        schema = ()

        def __init__(self, *, in_channels: int = 2 * N_SLOTS, n_levels: int = 5, base_channels: int = 16,
                     down_kernel: int = 15, up_kernel: int = 5, sample_rate: int = 44100) -> None:
            super().__init__()
            for label, v in (("in_channels", in_channels), ("n_levels", n_levels), ("base_channels", base_channels),
                             ("down_kernel", down_kernel), ("up_kernel", up_kernel), ("sample_rate", sample_rate)):
                if int(v) != v or v < 1:
                    raise ModelConfigError(f"MixWaveUNet {label} = {v!r} must be a positive integer")
            if down_kernel % 2 == 0 or up_kernel % 2 == 0:
                raise ModelConfigError(f"MixWaveUNet kernels must be odd, got down {down_kernel}, up {up_kernel}")
            self.in_channels, self.n_levels, self.base_channels = int(in_channels), int(n_levels), int(base_channels)
            self.down_kernel, self.up_kernel, self.sample_rate = int(down_kernel), int(up_kernel), int(sample_rate)
            ch = [self.base_channels * (i + 1) for i in range(self.n_levels + 1)]
            self.down = nn.ModuleList()
            width = self.in_channels
            for i in range(self.n_levels):
                self.down.append(nn.Conv1d(width, ch[i], self.down_kernel, padding=self.down_kernel // 2))
                width = ch[i]
            self.bottleneck = nn.Conv1d(width, ch[-1], self.down_kernel, padding=self.down_kernel // 2)
            self.up = nn.ModuleList()
            width = ch[-1]
            for i in reversed(range(self.n_levels)):
                self.up.append(nn.Conv1d(width + ch[i], ch[i], self.up_kernel, padding=self.up_kernel // 2))
                width = ch[i]
            self.out = nn.Conv1d(width + self.in_channels, 2, 1)
            self.act = nn.LeakyReLU(0.2)

        def config(self) -> dict:
            """The constructor arguments (``MixWaveUNet(**config)`` rebuilds it)."""
            return {"in_channels": self.in_channels, "n_levels": self.n_levels, "base_channels": self.base_channels,
                    "down_kernel": self.down_kernel, "up_kernel": self.up_kernel, "sample_rate": self.sample_rate}

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            """The stereo mix ``[batch, 2, samples]`` of the slot input ``x [batch, in_channels, samples]``.

            Raises:
                ModelConfigError: input of the wrong shape.
            """
            if x.ndim != 3 or x.shape[1] != self.in_channels:
                raise ModelConfigError(f"MixWaveUNet takes [batch, {self.in_channels}, samples], got {tuple(x.shape)}")
            n = x.shape[-1]
            step = 2 ** self.n_levels
            pad = (-n) % step
            h = nn.functional.pad(x, (0, pad))
            inp, skips = h, []
            for conv in self.down:
                h = self.act(conv(h))
                skips.append(h)
                h = h[..., ::2]
            h = self.act(self.bottleneck(h))
            for conv, skip in zip(self.up, reversed(skips)):
                h = nn.functional.interpolate(h, size=skip.shape[-1], mode="linear", align_corners=False)
                h = self.act(conv(torch.cat([h, skip], dim=1)))
            return self.out(torch.cat([h, inp], dim=1))[..., :n]

    return MixWaveUNet


def __getattr__(name: str):
    """``MixWaveUNet`` is built on first access (PEP 562): importing this module needs no torch."""
    if name == "MixWaveUNet":
        cls = _network_class()
        globals()["MixWaveUNet"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")



def run_chunked(net, x: np.ndarray) -> np.ndarray:
    """``net`` over ``x [in_channels, samples]`` in chunks of :data:`CHUNK_SAMPLES` overlapping by
    :data:`CHUNK_OVERLAP` (cross-faded linearly), so memory stays bounded: float32 ``[2, samples]``."""
    import torch

    n = x.shape[-1]
    if n <= CHUNK_SAMPLES:
        with torch.no_grad():
            return net(torch.from_numpy(np.ascontiguousarray(x))[None])[0].numpy()
    out = np.zeros((2, n), np.float32)
    weight = np.zeros(n, np.float32)
    hop = CHUNK_SAMPLES - CHUNK_OVERLAP
    for start in range(0, n, hop):
        stop = min(start + CHUNK_SAMPLES, n)
        with torch.no_grad():
            y = net(torch.from_numpy(np.ascontiguousarray(x[:, start:stop]))[None])[0].numpy()
        w = np.ones(stop - start, np.float32)
        ramp = min(CHUNK_OVERLAP, stop - start)
        if start > 0:
            w[:ramp] = np.linspace(0.0, 1.0, ramp, endpoint=False, dtype=np.float32)
        if stop < n:
            w[-ramp:] = np.minimum(w[-ramp:], np.linspace(1.0, 0.0, ramp, endpoint=False, dtype=np.float32))
        out[:, start:stop] += y * w
        weight[start:stop] += w
        if stop == n:
            break
    return out / np.maximum(weight, 1e-6)


class MixWaveUNetMixer(DirectMixer):
    """The ``mixwaveunet`` direct mixer (module docstring): writes audio, no parameters.

    Args:
        checkpoint: a ``mixwaveunet`` checkpoint; default the shipped ``models/mixers/mixwaveunet.json``.
        model: instead, a :class:`MixWaveUNet` object (e.g. untrained, for tests).

    Raises:
        DirectMixerError: (on the first call) no shipped weights or a foreign network.
        CheckpointError: (on the first call) a bad checkpoint.
    """

    name = "mixwaveunet"
    architecture = "mixwaveunet"
    train_hint = TRAIN_HINT

    def mix_audio(self, stems: StemSet) -> tuple[np.ndarray, dict]:
        """The network's stereo mix float32 ``[2, samples]`` at ``stems.sample_rate``.

        Raises:
            AudioInputError: no stems. DirectMixerError: the network gives NaN or inf.
        """
        net = self.network()
        audio, trims = stereo_stems(stems, net.sample_rate)
        roles = [s.role for s in stems.stems]
        mix = run_chunked(net, slot_input(audio, roles))
        if net.sample_rate != stems.sample_rate:
            mix = resample(mix, net.sample_rate, stems.sample_rate)
        extra = {"mixer_model": self._source,
                 "mixwaveunet": {"common_lufs": COMMON_LUFS, "trim_db": [round(t, 3) for t in trims],
                                 "slots": [slot_of_role(r) for r in roles]}}
        return self.check_output(mix), extra
