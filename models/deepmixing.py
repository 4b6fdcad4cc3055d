"""DeepMixing: learned gain automation, per-chunk track gains drawn from a Dirichlet.

The design of the DeepMixing seed (issue 16): the time axis is cut into chunks of ``chunk_s``
seconds (400 ms by default) and for every chunk the network gives a Dirichlet over the tracks
whose draws are that chunk's track gains (they sum to 1: a balance, the overall level is free).

* each **track** is read by a bidirectional LSTM over its per-chunk log-mel band powers
  (:func:`chunk_mel_power`, ``n_mels`` HTK-mel bands, dB);
* the **current mix** -- the unity sum of the (loudness-normalised) stems, i.e. the mix before
  the model acts -- is read by a unidirectional LSTM over its 13 MFCCs per chunk (:func:`mfcc`);
* **attention over time positions within each track**: at chunk ``t`` the mix state queries the
  track's Bi-LSTM outputs at every chunk ``s`` (scaled dot product, softmax over ``s``);
* **attention over tracks**: a score per track from ``[track state, its time context, mix state]``,
  softmax over the tracks -> ``a_t`` (sums to 1); the Dirichlet's concentration is
  ``alpha_t = kappa_t * n_tracks * a_t`` with a learned precision ``kappa_t > 0`` (softplus of the
  mix state), so the Dirichlet **mean is the attention over tracks**.

Training samples gains from ``torch.distributions.Dirichlet(alpha_t)`` (policy gradient,
:mod:`mixbridge.models.training.deepmixing`); deterministic inference uses the mean ``a_t``.
Gains are amplitudes applied to the loudness-normalised stems; as fader values they are
``20 log10 a_ti`` minus the mean over the tracks (:func:`gains_to_db`).

The seed's reward (:func:`reward`): ``exp(-||MFCC(mix_t) - MFCC(target_t)||^2 - rho * KL(Dir(alpha_t) ||
Dir(alpha_t+1)))``, ``rho = 0.01``, the squared norm taken as the mean over the 13 coefficients of
the natural-log mel cepstrum. The mix's mel power for a gain vector is the **uncorrelated-sum
approximation** ``P_mix = sum_i g_i^2 P_i`` of the per-track chunk powers (:func:`mix_power`): exact
for tracks with no common spectral content, and what lets thousands of gain draws be scored
without rendering audio.

Differences from the seed: the "current mix" is the unity sum, not the mix of the gains chosen so
far (no autoregression, so a whole excerpt is one forward pass); the networks are small (hidden 32).
Numpy features need no torch; the network is built on first access (PEP 562).
"""
from __future__ import annotations

import math

import numpy as np

from mixbridge.errors import AudioInputError
from mixbridge.mel import log_mel_spectrogram

#: Chunk length (the time resolution of the gains and of the emitted automation), seconds.
CHUNK_S = 0.4
#: Mel bands of the per-chunk track features; MFCCs kept (the seed's 13).
N_MELS, N_MFCC = 32, 13
#: FFT size and hop of the frames averaged within a chunk (46 / 23 ms at 44.1 kHz).
N_FFT, HOP_LENGTH = 2048, 1024
#: Power floor added before the log of the cepstrum (-100 dB: the log-mel floor).
POWER_FLOOR = 1e-10
#: Smoothness weight of the reward (the seed's rho).
RHO = 0.01


def chunk_count(n_samples: int, sample_rate: int, chunk_s: float = CHUNK_S) -> int:
    """Chunks covering ``n_samples`` (the last one zero-padded): ``ceil(n / round(chunk_s * rate))``, >= 1."""
    chunk = int(round(chunk_s * sample_rate))
    if chunk < 1:
        raise AudioInputError(f"chunk_s = {chunk_s} s is under one sample at {sample_rate} Hz; give chunk_s > 0")
    return max(1, -(-int(n_samples) // chunk))


def chunk_mel_power(audio: np.ndarray, sample_rate: int, *, chunk_s: float = CHUNK_S, n_mels: int = N_MELS,
                    n_fft: int = N_FFT, hop_length: int = HOP_LENGTH) -> np.ndarray:
    """Mean mel power per chunk, float64 ``[..., chunks, n_mels]`` of mono ``audio [..., samples]``.

    The signal is zero-padded to :func:`chunk_count` whole chunks of ``round(chunk_s * sample_rate)``
    samples; each chunk's frames (:func:`mixbridge.mel.log_mel_spectrogram`, ``n_fft``/``hop_length``,
    HTK mel 20 Hz..16 kHz, a full-scale sine reads 0 dB) are averaged in power.

    Raises:
        AudioInputError: NaN/inf samples or a chunk shorter than ``n_fft``.
    """
    x = np.asarray(audio, dtype=np.float32)
    if not np.all(np.isfinite(x)):
        raise AudioInputError("deepmixing features: the audio holds NaN or inf; clean the stems first")
    chunk = int(round(chunk_s * sample_rate))
    if chunk < n_fft:
        raise AudioInputError(f"chunk_s = {chunk_s} s is {chunk} samples, under one {n_fft}-sample frame; "
                              "give a longer chunk_s or a smaller n_fft")
    k = chunk_count(x.shape[-1], sample_rate, chunk_s)
    x = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, k * chunk - x.shape[-1])])
    lead = x.shape[:-1]
    rows = x.reshape(-1, k, chunk)
    out = np.empty((rows.shape[0], k, n_mels))
    for i, row in enumerate(rows):  # one signal at a time: the frames of a long song stay in memory once
        db = log_mel_spectrogram(row, sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels)
        out[i] = (10.0 ** (db.astype(np.float64) / 10.0)).mean(axis=-1)
    return out.reshape(*lead, k, n_mels)


def deepmixing_features(stems: np.ndarray, sample_rate: int, *, chunk_s: float = CHUNK_S,
                        n_mels: int = N_MELS) -> dict[str, np.ndarray]:
    """The network's inputs for ``stems [tracks, channels, samples]`` (loudness-normalised, one rate).

    Returns ``{"power": [tracks, chunks, n_mels] float64`` (each track's mid, :func:`chunk_mel_power`),
    ``"track_db": [tracks, chunks, n_mels] float32`` (its dB), ``"mix_mfcc": [chunks, 13] float32``
    (:func:`mfcc` of the unity sum's chunk powers)}.

    Raises:
        AudioInputError: not ``[tracks, 1|2, samples]``, or see :func:`chunk_mel_power`.
    """
    x = np.asarray(stems, dtype=np.float32)
    if x.ndim != 3 or x.shape[1] not in (1, 2) or x.shape[0] < 1:
        raise AudioInputError(f"deepmixing features take stems [tracks, 1|2, samples], got shape {tuple(x.shape)}")
    mid = x.mean(axis=1)
    power = chunk_mel_power(mid, sample_rate, chunk_s=chunk_s, n_mels=n_mels)
    mix_power = chunk_mel_power(mid.sum(axis=0), sample_rate, chunk_s=chunk_s, n_mels=n_mels)
    return {"power": power, "track_db": (10.0 * np.log10(power + POWER_FLOOR)).astype(np.float32),
            "mix_mfcc": np.asarray(mfcc(mix_power), dtype=np.float32)}


def dct_matrix(n_mels: int, n_mfcc: int = N_MFCC):
    """The orthonormal DCT-II ``[n_mfcc, n_mels]`` as a matrix (the first ``n_mfcc`` rows of scipy's
    ``dct(eye(n_mels), type=2, norm="ortho", axis=0)``), float64 numpy."""
    from scipy.fft import dct

    return dct(np.eye(n_mels), type=2, norm="ortho", axis=0)[:n_mfcc]


def mfcc(power, n_mfcc: int = N_MFCC):
    """MFCCs ``[..., n_mfcc]`` of mel power ``[..., n_mels]``: orthonormal DCT-II of ``ln(power + POWER_FLOOR)``.

    Numpy in, numpy out; a torch tensor in, a differentiable torch tensor out.
    """
    if isinstance(power, np.ndarray) or not hasattr(power, "detach"):
        p = np.asarray(power, dtype=np.float64)
        return np.log(p + POWER_FLOOR) @ dct_matrix(p.shape[-1], n_mfcc).T
    import torch

    d = torch.as_tensor(dct_matrix(power.shape[-1], n_mfcc), dtype=power.dtype, device=power.device)
    return torch.log(power + POWER_FLOOR) @ d.T


def mix_power(gains, power):
    """Mel power of the mix ``[..., chunks, n_mels]`` of gains ``[..., chunks, tracks]`` (amplitudes) and
    track powers ``[tracks, chunks, n_mels]``: the uncorrelated sum ``sum_i g_ti^2 P_tim`` (torch)."""
    import torch

    return torch.einsum("...kt,tkm->...km", gains ** 2, power)


def gains_to_db(gains):
    """Fader values ``[..., tracks]``: ``20 log10 g`` minus its mean over the tracks (dB; torch or numpy)."""
    if hasattr(gains, "detach"):
        import torch

        tdb = 20.0 * torch.log10(gains.clamp(min=1e-12))
        return tdb - tdb.mean(dim=-1, keepdim=True)
    ndb = 20.0 * np.log10(np.maximum(np.asarray(gains, dtype=np.float64), 1e-12))
    return ndb - ndb.mean(axis=-1, keepdims=True)


def reward(gains, alpha, power, target_mfcc, rho: float = RHO):
    """The seed's per-chunk reward ``[..., chunks]`` (module docstring), torch.

    Args:
        gains: track gains ``[..., chunks, tracks]`` (a Dirichlet draw or its mean).
        alpha: the Dirichlet concentrations ``[..., chunks, tracks]`` (``KL(Dir(alpha_t) || Dir(alpha_t+1))``;
            the last chunk has no successor and gets no KL term).
        power: track mel powers ``[tracks, chunks, n_mels]`` (:func:`chunk_mel_power`).
        target_mfcc: the target mix's MFCCs ``[chunks, 13]``.
        rho: the smoothness weight.
    """
    import torch
    from torch.distributions import Dirichlet, kl_divergence

    d = ((mfcc(mix_power(gains, power)) - target_mfcc) ** 2).mean(dim=-1)
    kl = torch.zeros_like(d)
    if alpha.shape[-2] > 1:
        kl[..., :-1] = kl_divergence(Dirichlet(alpha[..., :-1, :]), Dirichlet(alpha[..., 1:, :]))
    return torch.exp(-d - rho * kl)


# --------------------------------------------------------------------------- the network (torch)
def _network_class():
    """Define :class:`DeepMixing` (torch is imported here, so the features above need no torch)."""
    import torch
    from torch import nn

    from mixbridge.proxy_schema import schema_param_names

    from .tcn import ModelConfigError

    class DeepMixing(nn.Module):
        """Track Bi-LSTM, mix Uni-LSTM, attention over time and over tracks, Dirichlet gains (module docstring).

        Args:
            n_mels: mel bands of the track features. n_mfcc: MFCCs of the mix (13).
            hidden: LSTM state size (the Bi-LSTM has ``hidden`` per direction).
            attn_dim: query/key size of both attentions.
            sample_rate: the rate the features are computed at, Hz. chunk_s: the chunk, s.
            init_precision: the precision ``kappa`` the untrained network starts near.
            feature_offset_db, feature_scale_db: the track LSTM reads ``(dB - offset) / scale``.

        Shapes: ``forward(track_db [tracks, chunks, n_mels] or [batch, tracks, chunks, n_mels],
        mix_mfcc [chunks, 13] or [batch, chunks, 13]) -> alpha [chunks, tracks] | [batch, chunks, tracks]``
        (concentrations > 0); :meth:`mean_gains` gives the Dirichlet mean (sums to 1 over the tracks).
        Every track of a call is real (no padding: the trainer feeds one excerpt at a time).
        Permuting the tracks permutes the outputs.

        Raises:
            ModelConfigError: a non-positive size, or inputs of the wrong shape.
        """

        architecture = "deepmixing"
        receptive_field = None
        latency_samples = None
        schema = ("fader",)
        output_names = ("fader.fader_db",)

        def __init__(self, *, n_mels: int = N_MELS, n_mfcc: int = N_MFCC, hidden: int = 32, attn_dim: int = 32,
                     sample_rate: int = 44100, chunk_s: float = CHUNK_S, init_precision: float = 30.0,
                     feature_offset_db: float = -60.0, feature_scale_db: float = 20.0) -> None:
            super().__init__()
            for label, v in (("n_mels", n_mels), ("n_mfcc", n_mfcc), ("hidden", hidden), ("attn_dim", attn_dim),
                             ("sample_rate", sample_rate)):
                if int(v) != v or v < 1:
                    raise ModelConfigError(f"DeepMixing {label} = {v!r} must be a positive integer")
            if not chunk_s > 0 or not init_precision > 0 or not feature_scale_db > 0:
                raise ModelConfigError(f"DeepMixing chunk_s = {chunk_s}, init_precision = {init_precision} and "
                                       f"feature_scale_db = {feature_scale_db} must be > 0")
            self.n_mels, self.n_mfcc, self.hidden, self.attn_dim = int(n_mels), int(n_mfcc), int(hidden), int(attn_dim)
            self.sample_rate, self.chunk_s = int(sample_rate), float(chunk_s)
            self.init_precision = float(init_precision)
            self.feature_offset_db, self.feature_scale_db = float(feature_offset_db), float(feature_scale_db)
            self.param_names = schema_param_names(self.schema)
            h, a = self.hidden, self.attn_dim
            self.track_lstm = nn.LSTM(self.n_mels, h, batch_first=True, bidirectional=True)
            self.mix_lstm = nn.LSTM(self.n_mfcc, h, batch_first=True)
            self.query, self.key = nn.Linear(h, a), nn.Linear(2 * h, a)
            self.score = nn.Sequential(nn.Linear(4 * h + h, a), nn.Tanh(), nn.Linear(a, 1))
            self.precision = nn.Linear(h, 1)
            with torch.no_grad():  # softplus(bias) = init_precision at the start
                self.precision.weight.zero_()
                self.precision.bias.fill_(float(init_precision + math.log(-math.expm1(-init_precision))))

        def config(self) -> dict:
            """The constructor arguments as JSON-able data (``DeepMixing(**config)`` rebuilds it)."""
            return {"n_mels": self.n_mels, "n_mfcc": self.n_mfcc, "hidden": self.hidden, "attn_dim": self.attn_dim,
                    "sample_rate": self.sample_rate, "chunk_s": self.chunk_s, "init_precision": self.init_precision,
                    "feature_offset_db": self.feature_offset_db, "feature_scale_db": self.feature_scale_db}

        def features(self, stems: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
            """:func:`deepmixing_features` with this model's settings.

            Raises:
                AudioInputError: bad audio, or ``sample_rate`` other than the model's (resample first).
            """
            if int(sample_rate) != self.sample_rate:
                raise AudioInputError(f"DeepMixing reads {self.sample_rate} Hz audio, got {sample_rate} Hz; "
                                      "resample the stems (mixbridge.audio.resample)")
            return deepmixing_features(stems, sample_rate, chunk_s=self.chunk_s, n_mels=self.n_mels)

        def forward(self, track_db: torch.Tensor, mix_mfcc: torch.Tensor) -> torch.Tensor:
            """Dirichlet concentrations ``alpha`` (see the class docstring for shapes)."""
            single = track_db.ndim == 3
            if single:
                track_db, mix_mfcc = track_db[None], mix_mfcc[None]
            if (track_db.ndim != 4 or track_db.shape[-1] != self.n_mels or mix_mfcc.ndim != 3
                    or mix_mfcc.shape[-1] != self.n_mfcc
                    or mix_mfcc.shape[:2] != (track_db.shape[0], track_db.shape[2])):
                raise ModelConfigError(f"DeepMixing takes track_db [batch, tracks, chunks, {self.n_mels}] and mix_mfcc "
                                       f"[batch, chunks, {self.n_mfcc}], got {tuple(track_db.shape)} and "
                                       f"{tuple(mix_mfcc.shape)}")
            b, t, k, _ = track_db.shape
            x = (track_db - self.feature_offset_db) / self.feature_scale_db
            hs, _ = self.track_lstm(x.reshape(b * t, k, self.n_mels))                 # [b*t, k, 2h]
            hs = hs.reshape(b, t, k, 2 * self.hidden)
            m, _ = self.mix_lstm(mix_mfcc)                                              # [b, k, h]
            q = self.query(m)                                                           # [b, k, a]
            keys = self.key(hs)                                                         # [b, t, k, a]
            w = torch.softmax(torch.einsum("bqa,btsa->btqs", q, keys) / math.sqrt(self.attn_dim), dim=-1)
            ctx = torch.einsum("btqs,btsh->btqh", w, hs)                                # [b, t, k, 2h]
            z = torch.cat([hs, ctx, m[:, None].expand(b, t, k, self.hidden)], dim=-1)
            att = torch.softmax(self.score(z)[..., 0].transpose(1, 2), dim=-1)          # [b, k, t] over tracks
            kappa = nn.functional.softplus(self.precision(m))                           # [b, k, 1]
            alpha = (kappa * t * att).clamp(min=1e-4)
            return alpha[0] if single else alpha

        @staticmethod
        def mean_gains(alpha: torch.Tensor) -> torch.Tensor:
            """The Dirichlet mean ``alpha / sum(alpha)`` over the tracks (the deterministic gains)."""
            return alpha / alpha.sum(dim=-1, keepdim=True)

    return DeepMixing


def __getattr__(name: str):
    """``DeepMixing`` is built on first access (PEP 562), so importing this module needs no torch."""
    if name == "DeepMixing":
        cls = _network_class()
        globals()["DeepMixing"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

