"""The differentiable mixing console's network (DMC; Steinmetz, Pons, Pascual, Serrà, ICASSP 2021).

:class:`DMC` maps the log-mel spectrograms of any number of tracks to each track's normalised
gain and pan, permutation equivariantly:

* a shared **encoder** reads one track's log-mel ``[n_mels, frames]`` (1-D convolutions over time
  with the mel bands as channels, GELU, strided) and mean-pools over time to an embedding;
* the **context** is the mean of the embeddings over the valid tracks (a ``mask`` drops padding);
* a shared **post-processor** MLP maps ``[embedding, context]`` to the track's normalised
  parameters in 0..1 (sigmoid), in :data:`OUTPUT_NAMES` order (``fader.fader_db``, ``pan.pan``),
  read in real units with :func:`mixbridge.models.console.denormalise` over :data:`OUTPUT_PARAMS`.

Differences from the paper: the encoder is a small 1-D CNN on log-mel frames instead of a
pretrained VGGish, and there are no normalisation layers (no batch statistics, so a padded
track cannot influence a real one). :func:`dmc_features` (numpy/scipy only, no torch) makes the
input, so a torch-free runtime can compute it before an exported network.

Level convention (the composer dataset's): every input stem is loudness-normalised to one
common level first; the network's gains are relative (their mean over the tracks is free).
The ``dmc`` mixer (:mod:`mixbridge.models.dmc_mixer`) applies the trim and removes the mean.
"""
from __future__ import annotations

import numpy as np

from mixbridge.errors import AudioInputError
from mixbridge.mel import log_mel_spectrogram
from mixbridge.schema import CHANNEL_STRIP

#: The two parameters the network predicts per track, in its output order.
OUTPUT_NAMES = ("fader.fader_db", "pan.pan")
#: ``(name, Param)`` pairs of :data:`OUTPUT_NAMES` (what :func:`~mixbridge.models.console.denormalise` takes).
OUTPUT_PARAMS = [(n, CHANNEL_STRIP.param(n)) for n in OUTPUT_NAMES]

#: Feature defaults: 64 mel bands 20 Hz..16 kHz, 2048-sample frames every 1024 samples (23 ms at 44.1 kHz).
N_MELS, N_FFT, HOP_LENGTH = 64, 2048, 1024
#: Windowing of long stems: at most this many windows of ``window_s`` seconds, evenly spaced.
WINDOW_S, MAX_WINDOWS = 4.0, 4


def window_starts(n_samples: int, window_samples: int, max_windows: int) -> list[int]:
    """Start samples of the windows :func:`select_windows` takes (``[0]`` when the signal fits).

    A signal of at most ``max_windows * window_samples`` samples is taken whole; a longer one
    gives ``max_windows`` windows whose starts are evenly spaced from 0 to ``n - window``.
    """
    if n_samples <= max_windows * window_samples:
        return [0]
    return [int(round(s)) for s in np.linspace(0, n_samples - window_samples, max_windows)]


def select_windows(audio: np.ndarray, sample_rate: int, *, window_s: float = WINDOW_S,
                   max_windows: int = MAX_WINDOWS) -> np.ndarray:
    """The part of ``audio [..., samples]`` the DMC reads: all of it when it is at most
    ``max_windows * window_s`` seconds long, else ``max_windows`` evenly spaced windows of
    ``window_s`` seconds concatenated in time (``[..., max_windows * window_samples]``).

    Raises:
        AudioInputError: a non-positive window or window count.
    """
    win = int(round(window_s * sample_rate))
    if win < 1 or int(max_windows) != max_windows or max_windows < 1:
        raise AudioInputError(f"window_s = {window_s} s and max_windows = {max_windows} must be positive")
    n = audio.shape[-1]
    starts = window_starts(n, win, int(max_windows))
    if starts == [0]:
        return audio
    return np.concatenate([audio[..., s:s + win] for s in starts], axis=-1)


def dmc_features(audio: np.ndarray, sample_rate: int, *, n_mels: int = N_MELS, n_fft: int = N_FFT,
                 hop_length: int = HOP_LENGTH, window_s: float = WINDOW_S,
                 max_windows: int = MAX_WINDOWS) -> np.ndarray:
    """The DMC's input: float32 ``[tracks, n_mels, frames]`` log-mel (dB) of ``audio [tracks, C, samples]``.

    Each track's channels are averaged (mid), long tracks are windowed by :func:`select_windows`
    (at most ``max_windows`` evenly spaced windows of ``window_s`` s, concatenated), then
    :func:`mixbridge.mel.log_mel_spectrogram` (``n_fft``, ``hop_length``, ``n_mels`` bands
    20 Hz..16 kHz). Numpy/scipy only (no torch). Feed audio at the model's ``sample_rate``.

    Raises:
        AudioInputError: audio that is not ``[tracks, 1|2, samples]`` or holds NaN/inf.
    """
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 3 or x.shape[1] not in (1, 2) or x.shape[0] < 1:
        raise AudioInputError(f"dmc_features takes audio [tracks, 1|2, samples], got shape {tuple(x.shape)}")
    if not np.all(np.isfinite(x)):
        raise AudioInputError("dmc_features: the audio holds NaN or inf; clean the stems first")
    mid = select_windows(x.mean(axis=1), sample_rate, window_s=window_s, max_windows=max_windows)
    return log_mel_spectrogram(mid, sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels)


# --------------------------------------------------------------------------- the network (torch)
def _network_class():
    """Define :class:`LogMelEncoder` and :class:`DMC` (torch is imported here, so that the features above need
    no torch)."""
    import torch
    from torch import nn

    from mixbridge.proxy_schema import schema_param_names

    from .tcn import ModelConfigError

    class LogMelEncoder(nn.Module):
        """A track encoder: a log-mel CNN, mean-pooled over time, then a linear projection.

        ``embed(features [..., n_mels, frames]) -> [..., embed_dim]``: the input is read as
        ``(x - feature_offset_db) / feature_scale_db``, then ``n_layers`` 1-D convolutions of ``channels``
        channels (kernel 3; the first stride 1, the others stride 2; GELU), the time mean, the projection.
        :class:`DMC` is one with its post-processor; ``dmc-full`` (:mod:`mixbridge.models.dmc_full`) uses two
        (tracks, and the reference's mid and side). Its weights are ``encoder.*`` and ``project.*``.

        Raises:
            ModelConfigError: a non-positive size or ``feature_scale_db``.
        """

        def __init__(self, *, n_mels: int = N_MELS, channels: int = 64, n_layers: int = 4, embed_dim: int = 64,
                     feature_offset_db: float = -60.0, feature_scale_db: float = 20.0) -> None:
            super().__init__()
            for label, v in (("n_mels", n_mels), ("channels", channels), ("n_layers", n_layers),
                             ("embed_dim", embed_dim)):
                if int(v) != v or v < 1:
                    raise ModelConfigError(f"DMC {label} = {v!r} must be a positive integer")
            if not feature_scale_db > 0:
                raise ModelConfigError(f"DMC feature_scale_db = {feature_scale_db} must be > 0")
            self.n_mels, self.channels, self.n_layers = int(n_mels), int(channels), int(n_layers)
            self.embed_dim = int(embed_dim)
            self.feature_offset_db, self.feature_scale_db = float(feature_offset_db), float(feature_scale_db)
            layers: list[nn.Module] = []
            width = self.n_mels
            for i in range(self.n_layers):
                layers += [nn.Conv1d(width, self.channels, 3, stride=1 if i == 0 else 2, padding=1), nn.GELU()]
                width = self.channels
            self.encoder = nn.Sequential(*layers)
            self.project = nn.Linear(self.channels, self.embed_dim)

        def embed(self, features: torch.Tensor) -> torch.Tensor:
            """Track embeddings ``[..., embed_dim]`` of ``features [..., n_mels, frames]`` (time mean-pooled)."""
            lead = features.shape[:-2]
            x = features.reshape(-1, self.n_mels, features.shape[-1])
            x = (x - self.feature_offset_db) / self.feature_scale_db
            h = self.encoder(x).mean(dim=-1)
            return self.project(h).reshape(*lead, self.embed_dim)

    class DMC(LogMelEncoder):
        """Shared track encoder, mean context and shared post-processor (see the module docstring).

        Args:
            n_mels: mel bands of the input (:func:`dmc_features`).
            channels: convolution channels of the encoder.
            n_layers: convolution layers (kernel 3; the first stride 1, the others stride 2), >= 1.
            embed_dim: track embedding size.
            hidden: width of the post-processor's two hidden layers.
            sample_rate: the rate the features are computed at, Hz (stems are resampled to it).
            n_fft, hop_length, window_s, max_windows: the feature settings (:func:`dmc_features`).
            feature_offset_db, feature_scale_db: the encoder reads ``(x - offset) / scale``.

        Shapes: ``forward(features [batch, tracks, n_mels, frames] or [tracks, n_mels, frames],
        mask [batch, tracks] | [tracks] | None) -> [batch, tracks, 2] | [tracks, 2]`` in (0, 1),
        :data:`OUTPUT_NAMES` order. Permuting the tracks permutes the outputs; padded tracks
        (mask 0) do not change the outputs of the real ones.

        Raises:
            ModelConfigError: a non-positive size.
        """

        architecture = "dmc"
        #: A mixer reads whole stems: it neither streams nor delays (checkpoint records store None).
        receptive_field = None
        latency_samples = None
        #: The schema entries the outputs belong to (checkpoint records store their ranges).
        schema = ("fader", "pan")
        output_names = OUTPUT_NAMES

        def __init__(self, *, n_mels: int = N_MELS, channels: int = 64, n_layers: int = 4, embed_dim: int = 64,
                     hidden: int = 128, sample_rate: int = 44100, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH,
                     window_s: float = WINDOW_S, max_windows: int = MAX_WINDOWS, feature_offset_db: float = -60.0,
                     feature_scale_db: float = 20.0) -> None:
            super().__init__(n_mels=n_mels, channels=channels, n_layers=n_layers, embed_dim=embed_dim,
                             feature_offset_db=feature_offset_db, feature_scale_db=feature_scale_db)
            for label, v in (("hidden", hidden), ("sample_rate", sample_rate), ("n_fft", n_fft),
                             ("hop_length", hop_length), ("max_windows", max_windows)):
                if int(v) != v or v < 1:
                    raise ModelConfigError(f"DMC {label} = {v!r} must be a positive integer")
            if not window_s > 0:
                raise ModelConfigError(f"DMC window_s = {window_s} must be > 0")
            self.hidden, self.sample_rate = int(hidden), int(sample_rate)
            self.n_fft, self.hop_length = int(n_fft), int(hop_length)
            self.window_s, self.max_windows = float(window_s), int(max_windows)
            self.param_names = schema_param_names(self.schema)
            self.post = nn.Sequential(nn.Linear(2 * self.embed_dim, self.hidden), nn.GELU(),
                                      nn.Linear(self.hidden, self.hidden), nn.GELU(),
                                      nn.Linear(self.hidden, len(OUTPUT_NAMES)))

        def config(self) -> dict:
            """The constructor arguments as JSON-able data (``DMC(**config)`` rebuilds it)."""
            return {"n_mels": self.n_mels, "channels": self.channels, "n_layers": self.n_layers,
                    "embed_dim": self.embed_dim, "hidden": self.hidden, "sample_rate": self.sample_rate,
                    "n_fft": self.n_fft, "hop_length": self.hop_length, "window_s": self.window_s,
                    "max_windows": self.max_windows, "feature_offset_db": self.feature_offset_db,
                    "feature_scale_db": self.feature_scale_db}

        def features(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
            """:func:`dmc_features` of ``audio [tracks, C, samples]`` with this model's settings.

            Raises:
                AudioInputError: bad audio, or ``sample_rate`` other than the model's (resample first).
            """
            if int(sample_rate) != self.sample_rate:
                raise AudioInputError(f"the DMC reads {self.sample_rate} Hz audio, got {sample_rate} Hz; "
                                      "resample the stems (mixbridge.audio.resample)")
            return dmc_features(audio, sample_rate, n_mels=self.n_mels, n_fft=self.n_fft, hop_length=self.hop_length,
                                window_s=self.window_s, max_windows=self.max_windows)

        def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
            """Normalised ``[fader_db, pan]`` per track in (0, 1) (see the class docstring for shapes).

            Raises:
                ModelConfigError: features of the wrong shape, or a mask that does not fit them.
            """
            if features.ndim not in (3, 4) or features.shape[-2] != self.n_mels:
                raise ModelConfigError(f"the DMC takes features [batch, tracks, {self.n_mels}, frames] or "
                                       f"[tracks, {self.n_mels}, frames], got {tuple(features.shape)}")
            single = features.ndim == 3
            if single:
                features = features[None]
                mask = None if mask is None else mask[None]
            b, t = features.shape[:2]
            m = (torch.ones(b, t, dtype=features.dtype, device=features.device) if mask is None
                 else mask.to(features.dtype))
            if m.shape != (b, t):
                raise ModelConfigError(f"mask {tuple(m.shape)} does not fit features {tuple(features.shape)}")
            e = self.embed(features)                                                    # [b, t, d]
            context = (e * m[..., None]).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)[:, None]  # [b, d]
            z = torch.cat([e, context[:, None, :].expand(b, t, self.embed_dim)], dim=-1)
            u = torch.sigmoid(self.post(z))
            return u[0] if single else u

    return DMC, LogMelEncoder


def __getattr__(name: str):
    """``DMC`` and ``LogMelEncoder`` are built on first access (PEP 562), so ``import mixbridge.models.dmc``
    needs no torch."""
    if name in ("DMC", "LogMelEncoder"):
        globals()["DMC"], globals()["LogMelEncoder"] = _network_class()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def parameter_count(model) -> int:
    """Number of trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
