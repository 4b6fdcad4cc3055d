"""``dmc-full``: the reference-to-console predictor (Diff-MST's method 1; Vanka, Steinmetz et al., ISMIR 2024).

:class:`DMCFull` reads the STEMS and a REFERENCE mix and predicts the whole console -- every
track's channel strip and the master bus -- so that the stems' mix matches the reference:

* a **track encoder**: :class:`mixbridge.models.dmc.LogMelEncoder` (the DMC's encoder: log-mel CNN, time
  mean-pooled), shared over the tracks;
* a **reference encoder**: the same kind of CNN on the reference's log-mel of mid and side
  stacked as ``2 * n_mels`` bands (:func:`reference_features`);
* the **context** ``[mean track embedding, reference embedding]``;
* a shared per-track MLP on ``[track embedding, context]`` -> the normalised strip parameters
  :data:`STRIP_OUTPUT_NAMES` (sigmoid, 0..1), and a master MLP on the context -> the normalised
  master-bus parameters :data:`MASTER_OUTPUT_NAMES`; real units with
  :func:`mixbridge.models.console.denormalise` over :data:`STRIP_OUTPUT_PARAMS` /
  :data:`MASTER_OUTPUT_PARAMS`.

Not predicted: ``trim.gain_db`` (the loudness trim levels the stems to one common
loudness first, :data:`mixbridge.models.dmc_mixer.COMMON_LUFS`), ``polarity.invert`` and
``fader.mute`` (off), and the master's limiter and loudness target (the user's delivery settings).

Training data (:func:`draw_session`): random full-strip sessions from the datagen priors
(:data:`mixbridge.plugins.datagen.mixes.MIX_DEFAULT_SPECS` for the strips, :data:`MASTER_SPECS` for
the bus), drawn with :func:`mixbridge.plugins.datagen.params.sample_params`.

The features (:func:`track_features`, :func:`reference_features`) are numpy/scipy only.
"""
from __future__ import annotations

import numpy as np

from mixbridge.errors import AudioInputError
from mixbridge.mel import log_mel_spectrogram
from mixbridge.schema import CHANNEL_STRIP, MASTER_BUS

from .dmc import HOP_LENGTH, N_FFT, N_MELS
from .dmc_mixer import COMMON_LUFS  # noqa: F401  (re-exported: the level the stems are trimmed to)

#: Strip parameters the network predicts, in output order (all but trim, polarity and mute).
STRIP_OUTPUT_NAMES = tuple(n for n, _ in CHANNEL_STRIP.flat_params()
                           if n not in ("trim.gain_db", "polarity.invert", "fader.mute"))
STRIP_OUTPUT_PARAMS = [(n, CHANNEL_STRIP.param(n)) for n in STRIP_OUTPUT_NAMES]
#: Master-bus parameters it predicts (EQ, bus compressor, reverb; not the limiter or loudness target).
MASTER_OUTPUT_NAMES = tuple(n for n, _ in MASTER_BUS.flat_params()
                            if n.split(".")[0] in ("eq", "compressor", "reverb"))
MASTER_OUTPUT_PARAMS = [(n, p) for n, p in MASTER_BUS.flat_params() if n in MASTER_OUTPUT_NAMES]
#: The loudness the reference is gain-matched to before its features, LUFS.
REFERENCE_LUFS = -14.0
#: Training priors of the master bus (datagen ``--param`` spec strings; the others span their range).
MASTER_SPECS = {
    "eq.low_shelf_gain_db": "uniform:-6:6", "eq.peak1_gain_db": "uniform:-6:6", "eq.peak2_gain_db": "uniform:-6:6",
    "eq.peak3_gain_db": "uniform:-6:6", "eq.high_shelf_gain_db": "uniform:-6:6",
    "compressor.threshold_db": "uniform:-20:0", "compressor.ratio": "uniform:1:4", "compressor.makeup_db": "fixed:0",
    "reverb.return_db": "uniform:-20:0",
}


def draw_session(rng: np.random.Generator, n_tracks: int) -> tuple[np.ndarray, np.ndarray]:
    """A random full-strip session: normalised ``(strip [n_tracks, len(STRIP_OUTPUT_NAMES)],
    master [len(MASTER_OUTPUT_NAMES)])`` float32, each parameter drawn by the datagen's
    :func:`~mixbridge.plugins.datagen.params.sample_params` under ``MIX_DEFAULT_SPECS`` / :data:`MASTER_SPECS`."""
    from mixbridge.plugins.datagen.mixes import MIX_DEFAULT_SPECS
    from mixbridge.plugins.datagen.params import parse_dists, sample_params

    sd = parse_dists({k: v for k, v in MIX_DEFAULT_SPECS.items() if k in STRIP_OUTPUT_NAMES}, STRIP_OUTPUT_PARAMS)
    md = parse_dists(MASTER_SPECS, MASTER_OUTPUT_PARAMS)
    strip = np.stack([sample_params(rng, STRIP_OUTPUT_PARAMS, sd)[2] for _ in range(n_tracks)]).astype(np.float32)
    master = sample_params(rng, MASTER_OUTPUT_PARAMS, md)[2].astype(np.float32)
    return strip, master


def prior_centre(n_tracks: int) -> tuple[np.ndarray, np.ndarray]:
    """The session at the centre of :func:`draw_session`'s priors: normalised ``(strip [n_tracks, S], master [M])``
    float32, each parameter at the middle of its prior's normalised range (0.5 for a full-range one)."""
    from mixbridge.plugins.datagen.mixes import MIX_DEFAULT_SPECS
    from mixbridge.plugins.datagen.params import parse_dists

    sd = parse_dists({k: v for k, v in MIX_DEFAULT_SPECS.items() if k in STRIP_OUTPUT_NAMES}, STRIP_OUTPUT_PARAMS)
    md = parse_dists(MASTER_SPECS, MASTER_OUTPUT_PARAMS)

    def mid(params, dists):
        return np.array([(dists[n].u_lo + dists[n].u_hi) / 2 if n in dists else 0.5 for n, _ in params], np.float32)

    return np.tile(mid(STRIP_OUTPUT_PARAMS, sd), (int(n_tracks), 1)), mid(MASTER_OUTPUT_PARAMS, md)


def track_features(stems: np.ndarray, sample_rate: int, *, n_mels: int = N_MELS, n_fft: int = N_FFT,
                   hop_length: int = HOP_LENGTH) -> np.ndarray:
    """float32 ``[tracks, n_mels, frames]`` log-mel (dB) of the mid of ``stems [tracks, 1|2, samples]``.

    Raises:
        AudioInputError: audio that is not ``[tracks, 1|2, samples]`` or holds NaN/inf.
    """
    x = np.asarray(stems, dtype=np.float32)
    if x.ndim != 3 or x.shape[1] not in (1, 2) or x.shape[0] < 1 or not np.isfinite(x).all():
        raise AudioInputError(f"track_features takes finite audio [tracks, 1|2, samples], got {tuple(x.shape)}")
    return log_mel_spectrogram(x.mean(axis=1), sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels)


def reference_features(reference: np.ndarray, sample_rate: int, *, n_mels: int = N_MELS, n_fft: int = N_FFT,
                       hop_length: int = HOP_LENGTH) -> np.ndarray:
    """float32 ``[2 * n_mels, frames]``: log-mel (dB) of the mid then the side of ``reference [1|2, samples]``
    (a mono reference has a silent side). Gain-match it to :data:`REFERENCE_LUFS` first.

    Raises:
        AudioInputError: audio that is not ``[1|2, samples]`` or holds NaN/inf.
    """
    r = np.asarray(reference, dtype=np.float32)
    if r.ndim != 2 or r.shape[0] not in (1, 2) or not np.isfinite(r).all():
        raise AudioInputError(f"reference_features takes finite audio [1|2, samples], got {tuple(r.shape)}")
    mid = r.mean(axis=0)
    side = 0.5 * (r[0] - r[1]) if r.shape[0] == 2 else np.zeros_like(mid)
    m = log_mel_spectrogram(np.stack([mid, side]), sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels)
    return np.concatenate([m[0], m[1]], axis=0)


# --------------------------------------------------------------------------- the network (torch)
def _network_class():
    import torch
    from torch import nn

    from mixbridge.proxy_schema import schema_param_names

    from .dmc import LogMelEncoder
    from .tcn import ModelConfigError

    class DMCFull(nn.Module):
        """Track encoder + reference encoder + per-track and master heads (see the module docstring).

        Args:
            n_mels, channels, n_layers, embed_dim: the two encoders (each a
                :class:`~mixbridge.models.dmc.LogMelEncoder`; the reference's reads ``2 * n_mels`` bands).
            hidden: width of the heads' two hidden layers.
            sample_rate, n_fft, hop_length: the feature settings, Hz / samples.
            feature_offset_db, feature_scale_db: the encoders read ``(x - offset) / scale``.

        Shapes: ``forward(features [B, T, n_mels, F], reference [B, 2 n_mels, G], mask [B, T] | None)
        -> (strip [B, T, len(STRIP_OUTPUT_NAMES)], master [B, len(MASTER_OUTPUT_NAMES)])`` in (0, 1).
        Permuting the tracks permutes the strip outputs and leaves the master's unchanged.

        Raises:
            ModelConfigError: a non-positive size, or inputs of the wrong shape.
        """

        architecture = "dmc-full"
        receptive_field = None
        latency_samples = None
        schema = ("channel_strip", "master_bus")
        strip_names = STRIP_OUTPUT_NAMES
        master_names = MASTER_OUTPUT_NAMES

        def __init__(self, *, n_mels: int = N_MELS, channels: int = 64, n_layers: int = 4, embed_dim: int = 64,
                     hidden: int = 128, sample_rate: int = 44100, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH,
                     feature_offset_db: float = -60.0, feature_scale_db: float = 20.0) -> None:
            super().__init__()
            common = dict(channels=channels, n_layers=n_layers, embed_dim=embed_dim,
                          feature_offset_db=feature_offset_db, feature_scale_db=feature_scale_db)
            for label, v in (("hidden", hidden), ("sample_rate", sample_rate), ("n_fft", n_fft),
                             ("hop_length", hop_length)):
                if int(v) != v or v < 1:
                    raise ModelConfigError(f"DMCFull {label} = {v!r} must be a positive integer")
            self.tracks = LogMelEncoder(n_mels=n_mels, **common)
            self.ref = LogMelEncoder(n_mels=2 * int(n_mels), **common)
            self.n_mels, self.channels, self.n_layers = int(n_mels), int(channels), int(n_layers)
            self.embed_dim, self.hidden, self.sample_rate = int(embed_dim), int(hidden), int(sample_rate)
            self.n_fft, self.hop_length = int(n_fft), int(hop_length)
            self.feature_offset_db, self.feature_scale_db = float(feature_offset_db), float(feature_scale_db)
            self.param_names = schema_param_names(self.schema)
            d, h = self.embed_dim, self.hidden
            self.strip_head = nn.Sequential(nn.Linear(3 * d, h), nn.GELU(), nn.Linear(h, h), nn.GELU(),
                                            nn.Linear(h, len(STRIP_OUTPUT_NAMES)))
            self.master_head = nn.Sequential(nn.Linear(2 * d, h), nn.GELU(), nn.Linear(h, h), nn.GELU(),
                                             nn.Linear(h, len(MASTER_OUTPUT_NAMES)))

        def config(self) -> dict:
            """The constructor arguments (``DMCFull(**config)`` rebuilds it)."""
            return {"n_mels": self.n_mels, "channels": self.channels, "n_layers": self.n_layers,
                    "embed_dim": self.embed_dim, "hidden": self.hidden, "sample_rate": self.sample_rate,
                    "n_fft": self.n_fft, "hop_length": self.hop_length,
                    "feature_offset_db": self.feature_offset_db, "feature_scale_db": self.feature_scale_db}

        def forward(self, features: torch.Tensor, reference: torch.Tensor,
                    mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
            """Normalised ``(strip, master)`` parameters (class docstring for shapes)."""
            if features.ndim != 4 or features.shape[-2] != self.n_mels:
                raise ModelConfigError(f"dmc-full takes features [batch, tracks, {self.n_mels}, frames], "
                                       f"got {tuple(features.shape)}")
            if reference.ndim != 3 or reference.shape[-2] != 2 * self.n_mels or reference.shape[0] != features.shape[0]:
                raise ModelConfigError(f"dmc-full takes reference [batch, {2 * self.n_mels}, frames], "
                                       f"got {tuple(reference.shape)}")
            b, t = features.shape[:2]
            m = (torch.ones(b, t, dtype=features.dtype, device=features.device) if mask is None
                 else mask.to(features.dtype))
            e = self.tracks.embed(features)                                                  # [b, t, d]
            mean = (e * m[..., None]).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)[:, None]     # [b, d]
            ctx = torch.cat([mean, self.ref.embed(reference)], dim=-1)                       # [b, 2d]
            z = torch.cat([e, ctx[:, None, :].expand(b, t, 2 * self.embed_dim)], dim=-1)
            return torch.sigmoid(self.strip_head(z)), torch.sigmoid(self.master_head(ctx))

    return DMCFull


def __getattr__(name: str):
    """``DMCFull`` is built on first access (PEP 562), so importing this module needs no torch."""
    if name == "DMCFull":
        cls = _network_class()
        globals()["DMCFull"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
