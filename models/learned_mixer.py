"""The learned mixer: a trained :class:`~mixbridge.models.mixer_net.ParamMixerNet` sets every strip.

``get_mixer("learned", checkpoint=PATH)`` (or :func:`mixbridge.models.mixers.mixer_from_checkpoint`)
opens a ``mixer-mlp`` checkpoint; ``model=`` takes a network object or a registry name (the
untrained ``mixer-tiny``, seeded with ``seed``, is what the tests run). Each stem is described by
:func:`stem_features`, the network predicts its normalised channel-strip vector, and
:func:`mixbridge.models.mix_session.session_from_vectors` builds the session; the master keeps
its defaults at the requested loudness target.

This module imports no torch at import time: the network is opened on the mixer's first call,
so listing mixers stays light.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mixbridge.audio import StemSet
from mixbridge.errors import MixbridgeError
from mixbridge.loudness import SILENT_LUFS, integrated_lufs
from mixbridge.roles import ROLES, guess_role
from mixbridge.session import Session

from .knowledge_mixer import loud_passage_db
from .mix_session import session_from_vectors

#: Feature scaling: loudness and levels map -70..0 dB to 0..1, crest factor 0..30 dB, the spectral
#: centroid log2(f / 20 Hz) over the ten octaves 20 Hz..20 kHz.
LEVEL_FLOOR_DB = -70.0
CREST_MAX_DB = 30.0
CENTROID_OCTAVES = 10.0


class LearnedMixerError(ValueError, MixbridgeError):
    """A learned mixer without a network, or with one that does not predict channel strips."""


def stem_features(audio: np.ndarray, sample_rate: int, role: str | None = None) -> np.ndarray:
    """The :data:`~mixbridge.models.mixer_net.N_FEATURES` features of one stem ``[channels, samples]``.

    In order, each scaled to about 0..1: integrated loudness (BS.1770-4, LUFS), loud-passage
    level (90th percentile of 50 ms peaks, dBFS), crest factor (peak over RMS, dB), spectral
    centroid (octaves above 20 Hz), stereo (1 for two channels), then a one-hot of the role over
    :data:`mixbridge.roles.ROLES` (``other`` when unknown).
    """
    audio = np.asarray(audio, dtype=np.float32)
    lufs = max(integrated_lufs(audio, sample_rate), LEVEL_FLOOR_DB)
    loud = max(loud_passage_db(audio, sample_rate), LEVEL_FLOOR_DB)
    mono = audio.mean(axis=0, dtype=np.float64)
    rms = float(np.sqrt(np.mean(mono ** 2))) if mono.size else 0.0
    peak = float(np.max(np.abs(mono))) if mono.size else 0.0
    crest_db = 20.0 * np.log10(peak / rms) if rms > 0 and peak > 0 else 0.0
    spectrum = np.abs(np.fft.rfft(mono)) if mono.size else np.zeros(1)
    freqs = np.fft.rfftfreq(mono.size, 1.0 / sample_rate) if mono.size else np.zeros(1)
    power = float(spectrum.sum())
    centroid_hz = float((freqs * spectrum).sum() / power) if power > 0 else 20.0
    octaves = np.log2(max(centroid_hz, 20.0) / 20.0) / CENTROID_OCTAVES
    onehot = np.zeros(len(ROLES))
    onehot[ROLES.index(role if role in ROLES else "other")] = 1.0
    level = [(lufs - LEVEL_FLOOR_DB) / -LEVEL_FLOOR_DB, (loud - LEVEL_FLOOR_DB) / -LEVEL_FLOOR_DB,
             min(crest_db, CREST_MAX_DB) / CREST_MAX_DB, min(octaves, 1.0), float(audio.shape[0] == 2)]
    return np.concatenate([np.clip(level, 0.0, 1.0), onehot]).astype(np.float32)


class LearnedMixer:
    """A trained network sets every channel strip from the stems' features.

    Args:
        checkpoint: a ``mixer-mlp`` checkpoint (``NAME.json`` or its folder), or None.
        model: instead, a network object or a registry model name (``mixer-tiny``: untrained,
            initialised from ``torch.manual_seed(seed)`` of the first call).
        seed: the initialisation seed of a registry ``model``.

    Raises:
        LearnedMixerError: (on the first call) neither ``checkpoint`` nor ``model``, or a network
            that does not predict the whole channel strip.
        CheckpointError: (on the first call) see :func:`mixbridge.models.checkpoint.load_checkpoint`.
    """

    name = "learned"

    def __init__(self, checkpoint: str | Path | None = None, model: Any = None, seed: int = 0) -> None:
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        self._model_spec = model
        self.seed = int(seed)
        self._net = None

    def network(self):
        """The network, opened on first use (torch is imported here).

        Raises:
            LearnedMixerError, CheckpointError: see the class docstring.
        """
        if self._net is not None:
            return self._net
        import torch

        from mixbridge.schema import CHANNEL_STRIP

        if self.checkpoint is not None:
            from .checkpoint import load_checkpoint

            net, _ = load_checkpoint(self.checkpoint)
        elif isinstance(self._model_spec, str):
            from . import registry

            torch.manual_seed(self.seed)
            net = registry.create(self._model_spec)
        elif self._model_spec is not None:
            net = self._model_spec
        else:
            raise LearnedMixerError("the learned mixer needs a trained network: pass its checkpoint "
                                    "(`mixbridge automix ... --mixer learned --checkpoint PATH`, or "
                                    "get_mixer('learned', checkpoint=PATH) in Python); 'mixer-tiny' (model=) "
                                    "is untrained")
        names = [n for n, _ in CHANNEL_STRIP.flat_params()]
        if list(getattr(net, "param_names", [])) != names:
            raise LearnedMixerError(f"the learned mixer's network predicts {getattr(net, 'param_names', None)}, "
                                    f"not the channel strip ({len(names)} parameters)")
        self._net = net.eval()
        return self._net

    def __call__(self, stems: StemSet, *, seed: int = 0, target_lufs: float = -14.0,
                 source_base: Path | None = None) -> Session:
        """The session of ``stems``: the network's strip for each stem, the master's defaults at
        ``target_lufs`` (deterministic: the network is fixed and the features are measured)."""
        import torch

        net = self.network()
        roles = [s.role if s.role in ROLES else guess_role(s.name) for s in stems.stems]
        feats = np.stack([stem_features(s.audio, stems.sample_rate, r) for s, r in zip(stems.stems, roles)])
        with torch.no_grad():
            u = net(torch.from_numpy(feats)).double().numpy()
        silent = [s.name for s in stems.stems if integrated_lufs(s.audio, stems.sample_rate) <= SILENT_LUFS]
        extra = {"mixer_model": self.checkpoint or (self._model_spec if isinstance(self._model_spec, str)
                                                    else type(net).__name__),
                 "roles": dict(zip((s.name for s in stems.stems), roles)),
                 "mixer_notes": [f"{n}: silent" for n in silent]}
        return session_from_vectors(stems, u, mixer=self.name, seed=seed, target_lufs=target_lufs,
                                    source_base=source_base, extra=extra)
