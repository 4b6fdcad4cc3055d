"""Direct mixers: networks that write the mix audio itself, with no channel-strip parameters.

A **direct mixer** (``dae``: :mod:`.dae`, ``mixwaveunet``: :mod:`.mixwaveunet`) maps the stems to
the stereo mix audio. There is nothing to render, edit or push to a DAW: the audio *is* the result.
The protocol (:class:`DirectMixer`):

* ``mixer.mix(stems, *, seed, target_lufs, source_base) -> DirectMix``: ``audio`` float32
  ``[channels = 2, samples]`` at ``stems.sample_rate`` (pre-master) and the session;
* ``mixer(stems, ...) -> Session`` (the registry's :class:`~mixbridge.models.mixers.Mixer` protocol):
  that session alone;
* the session (:func:`direct_session`) records only what the mixer is: the tracks and their sources
  with every channel strip at its defaults (no parameter touched), the master's defaults at the
  loudness target, and the provenance ``{"mixer": name, "direct": True, "output": ..., ...}``.
  :func:`mixbridge.session.refuse_direct` (re-exported here) is the one check every consumer of a
  session's parameters runs: such a session cannot be rendered (``mixbridge render``) or pushed, since
  its defaults would give the unity sum, not the mixer's mix; the error says that ``mix.wav`` is the output.

Their checkpoint architectures (``dae``, ``mixwaveunet``) are registered in :mod:`mixbridge.models.registry`.
Shared by both models: the loudness trim every stem gets before a network reads it
(:func:`trim_to_common`, to :data:`COMMON_LUFS`, the DMC mixer's level convention), the role
vocabulary (:data:`mixbridge.roles.ROLES`) as the instrument groups; the weights load through
:func:`mixbridge.models.checkpoint.load_mixer_network`. Importing this module imports no torch.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mixbridge.audio import StemSet, resample
from mixbridge.errors import AudioInputError, MixbridgeError
from mixbridge.loudness import db_to_gain, integrated_lufs
from mixbridge.roles import ROLES
from mixbridge.session import DIRECT_KEY, DirectSessionError, Session, refuse_direct

from .dmc_mixer import COMMON_LUFS, trim_db
from .mix_session import build_session, master_defaults

#: What a direct session says about its output (provenance ``output``).
DIRECT_OUTPUT_NOTE = ("mix.wav is the output of a direct mixer: it wrote the audio itself; the session records "
                      "the tracks only (every channel strip at its defaults), not a mix to render or push")
#: The folder of shipped weights.
MIXERS_DIR = Path(__file__).resolve().parent / "mixers"

__all__ = ["COMMON_LUFS", "DIRECT_KEY", "DirectMix", "DirectMixer", "DirectMixerError", "DirectSessionError",
           "ROLES", "direct_session", "is_direct", "refuse_direct",
           "role_index", "stereo_stems", "trim_to_common"]


class DirectMixerError(ValueError, MixbridgeError):
    """A direct mixer without weights, with a foreign network, or given stems it cannot mix."""


@dataclass
class DirectMix:
    """A direct mixer's result: ``audio`` float32 ``[2, samples]`` (pre-master, at ``sample_rate`` Hz) and
    the :func:`direct_session` that records it."""

    audio: np.ndarray
    sample_rate: int
    session: Session


def is_direct(obj: Any) -> bool:
    """Whether ``obj`` (a mixer or a :class:`~mixbridge.session.Session`) is a direct mixer or its session."""
    return obj.is_direct if isinstance(obj, Session) else bool(getattr(obj, "direct", False))


def direct_session(stems: StemSet, mixer: str, seed: int, target_lufs: float, source_base: Path | None = None,
                   extra: dict | None = None) -> Session:
    """The session of a direct mixer's mix: one default strip per stem, the master's defaults at ``target_lufs``,
    provenance ``mixer``, ``direct: True``, ``output`` (:data:`DIRECT_OUTPUT_NOTE`) and ``extra``.

    Raises:
        ParamRangeError: ``target_lufs`` outside the schema's range.
    """
    prov = {DIRECT_KEY: True, "output": DIRECT_OUTPUT_NOTE} | dict(extra or {})
    return build_session(stems, mixer, [{} for _ in stems.stems], master_defaults(target_lufs), seed, source_base,
                         prov)


def role_index(role: str | None) -> int:
    """The index of ``role`` in :data:`mixbridge.roles.ROLES` (``other`` for None or an unknown role)."""
    return ROLES.index(role) if role in ROLES else ROLES.index("other")


def trim_to_common(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, float]:
    """``(audio * trim, trim_db)``: ``audio [channels, samples]`` brought to :data:`COMMON_LUFS` (BS.1770-4) by
    :func:`mixbridge.models.dmc_mixer.trim_db` (0 dB for a silent stem)."""
    t = trim_db(integrated_lufs(audio, sample_rate))
    return np.asarray(audio, np.float32) * np.float32(db_to_gain(t)), float(t)


def stereo_stems(stems: StemSet, sample_rate: int) -> tuple[np.ndarray, list[float]]:
    """Every stem at ``sample_rate``, stereo (mono duplicated), trimmed to :data:`COMMON_LUFS`:
    float32 ``[tracks, 2, samples]`` and the trims in dB.

    Raises:
        AudioInputError: no stems.
    """
    if not stems.stems:
        raise AudioInputError("a direct mixer needs at least one stem")
    out, trims = [], []
    for s in stems.stems:
        a = np.asarray(s.audio, np.float32)
        if stems.sample_rate != sample_rate:
            a = resample(a, stems.sample_rate, sample_rate)
        if a.shape[0] == 1:
            a = np.repeat(a, 2, axis=0)
        a, t = trim_to_common(a[:2], sample_rate)
        out.append(a)
        trims.append(t)
    n = min(a.shape[-1] for a in out)
    return np.stack([a[:, :n] for a in out]), trims


class DirectMixer:
    """Base of the direct mixers: subclasses set ``name``, ``architecture``, ``train_hint`` and implement
    :meth:`mix_audio`.

    ``direct = True`` marks them (:func:`is_direct`); :meth:`mix` wraps the audio and the session,
    ``__call__`` gives the session only (the registry's protocol).

    Args:
        checkpoint: a checkpoint of the mixer's ``architecture`` (a run's ``best.json``); default the shipped
            ``models/mixers/<name>.json``.
        model: instead, a network object (e.g. untrained, for tests).

    Raises:
        DirectMixerError: (on the first call) no shipped weights or a foreign network.
        CheckpointError: (on the first call) a bad checkpoint.
    """

    name = "direct"
    architecture = ""
    train_hint = ""
    direct = True

    def __init__(self, checkpoint: str | Path | None = None, model: Any = None) -> None:
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        self._net = model
        self._source = self.checkpoint or (type(model).__name__ if model is not None
                                           else str(MIXERS_DIR / f"{self.name}.json"))

    def network(self):
        """The network in eval mode, opened on first use (torch imported here;
        :func:`mixbridge.models.checkpoint.load_mixer_network`).

        Raises:
            DirectMixerError: no shipped weights, or a network of another architecture.
            CheckpointError: a missing, corrupted or unknown-version checkpoint.
        """
        from .checkpoint import load_mixer_network

        self._net = load_mixer_network(self.checkpoint, self.name, self.architecture, self.train_hint,
                                       error=DirectMixerError, model=self._net)
        return self._net

    def check_output(self, mix: np.ndarray) -> np.ndarray:
        """``mix`` as float32, or :class:`DirectMixerError` when the network gave NaN or inf."""
        if not np.all(np.isfinite(mix)):
            raise DirectMixerError(f"the {self.name} network ({self._source}) gives non-finite output on these "
                                   "stems; retrain it or use --mixer dmc")
        return mix.astype(np.float32)

    def mix_audio(self, stems: StemSet) -> tuple[np.ndarray, dict]:
        """The mix float32 ``[2, samples]`` at ``stems.sample_rate`` and provenance extras (subclasses)."""
        raise NotImplementedError

    def mix(self, stems: StemSet, *, seed: int = 0, target_lufs: float = -14.0,
            source_base: Path | None = None) -> DirectMix:
        """The mix audio and its session (deterministic: the network is fixed; ``seed`` is recorded only).

        Raises:
            DirectMixerError, CheckpointError, AudioInputError: see the subclass.
        """
        audio, extra = self.mix_audio(stems)
        session = direct_session(stems, self.name, seed, target_lufs, source_base, extra)
        return DirectMix(np.ascontiguousarray(audio, dtype=np.float32), stems.sample_rate, session)

    def __call__(self, stems: StemSet, *, seed: int = 0, target_lufs: float = -14.0,
                 source_base: Path | None = None) -> Session:
        """:meth:`mix`'s session alone (use :meth:`mix` for the audio, which is the output)."""
        return self.mix(stems, seed=seed, target_lufs=target_lufs, source_base=source_base).session
