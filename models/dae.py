"""The deep-autoencoder direct mixer ``dae`` (Martinez-Ramirez and Reiss, "Deep learning and intelligent
audio mixing", WIMP 2017).

Each track is processed on its own, frame by frame, in the magnitude-STFT domain:

* the stem is brought to :data:`~mixbridge.models.direct_mixers.COMMON_LUFS` (BS.1770-4), its mid
  (mean of the channels) is cut into Hann frames of :data:`N_FFT` = 2048 samples every
  :data:`HOP_LENGTH` = 1024 (:func:`stft_frames`), and each frame's magnitude ``m`` (amplitude units:
  ``|STFT| / (sum(window) / 2)``, a full-scale sine at a bin centre reads 1) goes through
  :class:`DAE`: the log magnitude ``(log10(m + log_floor) + 3) / 2`` concatenated with the track's
  **instrument group** (a one-hot of its mixing role, :data:`mixbridge.roles.ROLES`, 14 groups) -> 3 hidden
  layers of 1024 (ReLU, dropout 0.2) -> ``2 x 1025`` per-bin gains ``softplus(z) / ln 2`` (1 at ``z = 0``)
  that multiply ``m``: the processed **left and right** magnitude frames. The stereo placement (pan) is
  the network's own L/R gains;
* each output is rebuilt with the raw track's phase (the mid's STFT phase, for both channels) by the
  inverse STFT (:func:`istft_frames`, overlap-add), and the mix is the sum of the processed tracks.

The training target of a track (:mod:`mixbridge.models.training.direct`) is that track as it sits in
the composer's mix (its gain and pan from ``target/session.json`` through the console's trim and
fader stages), times the stem's trim to the common level; loss: the mean absolute error of the
L/R magnitude frames (MAE, the paper's). Training examples are the excerpts (9 s, where the paper
takes each song's 10 loudest seconds), loudness-normalised, with pitch-shift augmentation by
+-4 semitones in 50-cent steps (pedalboard's ``PitchShift`` on the input; the target is rendered
from the shifted input).

Differences from the paper: the paper trains one autoencoder per instrument; here one network is
shared by all groups and reads the group as a one-hot input (14 separate networks of this size
would be 14 x 21 MB of weights); the output is two magnitude frames (L, R) instead of one, so the
network pans; the network reads log magnitudes and outputs per-bin gains on the input frame instead
of the frame itself (measured on the composer data, 150 Adam steps at 3e-4 on the same 12 batches:
a network that outputs the frame directly, from linear or peak-normalised input, stays at the MAE of
an all-zero output, 3.64e-4 on 19 validation pairs; the gain output reaches 1.25e-4, below the
1.75e-4 of the unprocessed input). Importing this module imports no torch (the network class is built on first access).
"""
from __future__ import annotations

import math

import numpy as np

from mixbridge.audio import StemSet, resample
from mixbridge.roles import ROLES

from .direct_mixers import COMMON_LUFS, DirectMixer, role_index, stereo_stems

#: The STFT of the paper: 2048-sample Hann frames every 1024 samples.
N_FFT, HOP_LENGTH = 2048, 1024
#: The hidden layers of the paper: 3 of 1024 units, ReLU, dropout 0.2.
HIDDEN, N_LAYERS, DROPOUT = 1024, 3, 0.2
#: Frames run through the network at once when mixing (bounds the memory of long stems).
FRAME_CHUNK = 4096
TRAIN_HINT = "mixbridge train dae --data COMPOSER_DATASET --config models/configs/dae.yaml -o RUN_DIR"


def stft_frames(x, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH):
    """The complex STFT ``[..., n_fft // 2 + 1, frames]`` of ``x [..., samples]`` (torch tensor), Hann window,
    centred frames, scaled to amplitude units (divided by ``sum(window) / 2``)."""
    import torch

    window = torch.hann_window(n_fft, dtype=x.dtype, device=x.device)
    lead = x.shape[:-1]
    spec = torch.stft(x.reshape(-1, x.shape[-1]), n_fft, hop_length, window=window, center=True,
                      return_complex=True)
    return (spec / (window.sum() / 2)).reshape(*lead, *spec.shape[-2:])


def istft_frames(spec, length: int, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH):
    """The inverse of :func:`stft_frames`: ``[..., bins, frames]`` complex -> ``[..., length]`` samples."""
    import torch

    window = torch.hann_window(n_fft, dtype=spec.real.dtype, device=spec.device)
    lead = spec.shape[:-2]
    x = torch.istft((spec * (window.sum() / 2)).reshape(-1, *spec.shape[-2:]), n_fft, hop_length, window=window,
                    center=True, length=length)
    return x.reshape(*lead, length)


def _network_class():
    """Define :class:`DAE` (torch is imported here)."""
    from torch import nn

    from .tcn import ModelConfigError

    class DAE(nn.Module):
        """The frame autoencoder (module docstring).

        Args:
            n_fft, hop_length: the STFT (bins ``n_fft // 2 + 1``).
            hidden, n_layers, dropout: the hidden layers (ReLU, dropout after each).
            n_groups: instrument groups of the one-hot input (``len(ROLES)``).
            log_floor: added to the magnitude before its log (amplitude units; -120 dB).
            sample_rate: the rate the network was trained at, Hz (stems are resampled to it).

        Shapes: ``forward(magnitude [frames, bins], group [frames] int64) -> [frames, 2, bins]`` (L, R),
        non-negative.

        Raises:
            ModelConfigError: a non-positive size, or a dropout outside [0, 1).
        """

        architecture = "dae"
        receptive_field = None
        latency_samples = None
        schema = ()

        def __init__(self, *, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH, hidden: int = HIDDEN,
                     n_layers: int = N_LAYERS, dropout: float = DROPOUT, n_groups: int = len(ROLES),
                     log_floor: float = 1e-6, sample_rate: int = 44100) -> None:
            super().__init__()
            for label, v in (("n_fft", n_fft), ("hop_length", hop_length), ("hidden", hidden),
                             ("n_layers", n_layers), ("n_groups", n_groups), ("sample_rate", sample_rate)):
                if int(v) != v or v < 1:
                    raise ModelConfigError(f"DAE {label} = {v!r} must be a positive integer")
            if not 0.0 <= dropout < 1.0 or not log_floor > 0:
                raise ModelConfigError(f"DAE dropout = {dropout} must be in [0, 1) and log_floor = {log_floor} > 0")
            self.n_fft, self.hop_length, self.hidden, self.n_layers = int(n_fft), int(hop_length), int(hidden), \
                int(n_layers)
            self.dropout, self.n_groups, self.log_floor = float(dropout), int(n_groups), float(log_floor)
            self.sample_rate = int(sample_rate)
            self.bins = self.n_fft // 2 + 1
            layers: list[nn.Module] = []
            width = self.bins + self.n_groups
            for _ in range(self.n_layers):
                layers += [nn.Linear(width, self.hidden), nn.ReLU(), nn.Dropout(self.dropout)]
                width = self.hidden
            layers += [nn.Linear(width, 2 * self.bins), nn.Softplus()]
            self.net = nn.Sequential(*layers)

        def config(self) -> dict:
            """The constructor arguments (``DAE(**config)`` rebuilds it)."""
            return {"n_fft": self.n_fft, "hop_length": self.hop_length, "hidden": self.hidden,
                    "n_layers": self.n_layers, "dropout": self.dropout, "n_groups": self.n_groups,
                    "log_floor": self.log_floor, "sample_rate": self.sample_rate}

        def forward(self, magnitude, group):
            """Processed ``[frames, 2, bins]`` L/R magnitudes of ``magnitude [frames, bins]`` in ``group [frames]``.

            Raises:
                ModelConfigError: shapes that do not fit.
            """
            import torch

            if magnitude.ndim != 2 or magnitude.shape[-1] != self.bins or group.shape != magnitude.shape[:1]:
                raise ModelConfigError(f"the DAE takes magnitude [frames, {self.bins}] and group [frames], got "
                                       f"{tuple(magnitude.shape)} and {tuple(group.shape)}")
            onehot = torch.nn.functional.one_hot(group.long(), self.n_groups).to(magnitude.dtype)
            feature = (torch.log10(magnitude + self.log_floor) + 3.0) / 2.0
            gain = self.net(torch.cat([feature, onehot], dim=-1)).reshape(-1, 2, self.bins) / math.log(2.0)
            return gain * magnitude[:, None, :]

        def process_track(self, audio, group: int):
            """One track through the network: ``audio [2, samples]`` (torch, at the common level) ->
            ``[2, samples]``, the L/R magnitudes with the mid's phase (no gradient needed; eval mode)."""
            import torch

            mid = audio.mean(dim=0)
            spec = stft_frames(mid, self.n_fft, self.hop_length)                  # [bins, frames]
            mag, phase = spec.abs().T, torch.angle(spec)                           # [frames, bins]
            outs = [self(mag[i:i + FRAME_CHUNK], torch.full((min(FRAME_CHUNK, mag.shape[0] - i),), group,
                                                              dtype=torch.long))
                    for i in range(0, mag.shape[0], FRAME_CHUNK)]
            out = torch.cat(outs).permute(1, 2, 0)                                 # [2, bins, frames]
            return istft_frames(torch.polar(out, phase.expand_as(out)), audio.shape[-1], self.n_fft,
                                self.hop_length)

    return DAE


def __getattr__(name: str):
    """``DAE`` is built on first access (PEP 562), so ``import mixbridge.models.dae`` needs no torch."""
    if name == "DAE":
        cls = _network_class()
        globals()["DAE"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")



class DAEMixer(DirectMixer):
    """The ``dae`` direct mixer (module docstring): writes audio, no parameters.

    Args:
        checkpoint: a ``dae`` checkpoint (a run's ``best.json``); default the shipped ``models/mixers/dae.json``.
        model: instead, a :class:`DAE` object (e.g. untrained, for tests).

    Raises:
        DirectMixerError: (on the first call) no shipped weights or a foreign network.
        CheckpointError: (on the first call) a bad checkpoint.
    """

    name = "dae"
    architecture = "dae"
    train_hint = TRAIN_HINT

    def mix_audio(self, stems: StemSet) -> tuple[np.ndarray, dict]:
        """The sum of the processed tracks, float32 ``[2, samples]`` at ``stems.sample_rate``.

        Raises:
            AudioInputError: no stems. DirectMixerError: the network gives NaN or inf.
        """
        import torch

        net = self.network()
        audio, trims = stereo_stems(stems, net.sample_rate)
        groups = [role_index(s.role) for s in stems.stems]
        with torch.no_grad():
            x = torch.from_numpy(audio)
            mix = sum(net.process_track(x[i], g) for i, g in enumerate(groups)).numpy()
        if net.sample_rate != stems.sample_rate:
            mix = resample(mix, net.sample_rate, stems.sample_rate)
        extra = {"mixer_model": self._source,
                 "dae": {"common_lufs": COMMON_LUFS, "trim_db": [round(t, 3) for t in trims],
                         "groups": [ROLES[g] for g in groups]}}
        return self.check_output(mix), extra
