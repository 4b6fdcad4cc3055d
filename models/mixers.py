"""The registry of automatic mixers (the convention of :mod:`mixbridge.registry`).

A mixer maps a :class:`~mixbridge.audio.StemSet` to a :class:`~mixbridge.session.Session`
in the schema's real units: ``mixer(stems, *, seed=0, target_lufs=-14.0, source_base=None)``.
A mixer is registered with a **config-taking factory** (``factory(**config) -> Mixer``) and a
plain one-line summary; :func:`get_mixer` builds one, :func:`mixer_names` gives the CLI its
``--mixer`` choices, :func:`mixer_summary` the line ``mixbridge mixers`` prints, and
:func:`mixer_from_checkpoint` opens a trained mixer. Registered here:

==================  ================================================  ========================
name                what                                              module
==================  ================================================  ========================
``dmc``             a network reads each track's audio (the default)  :mod:`.dmc_mixer`
``knowledge``       published practice by track role                  :mod:`.knowledge_mixer`
``mono_sum``        every track at unity, centred                     :mod:`.baseline_mixers`
``random``          random faders and pans, seeded                    :mod:`.baseline_mixers`
``equal_loudness``  every track at the same loudness                  :mod:`.baseline_mixers`
``learned``         a network predicts each channel strip (torch)     :mod:`.learned_mixer`
``prior``           mean level and pan per GM family (or role)        :mod:`.prior_mixer`
``deepmixing``      fader automation per 400 ms chunk (learned)       :mod:`.deepmixing_mixer`
``dae``             direct: a deep autoencoder writes each track      :mod:`.dae`
``mixwaveunet``     direct: a Wave-U-Net writes the mix from 8 slots  :mod:`.mixwaveunet`
==================  ================================================  ========================

The two **direct** mixers (:mod:`.direct_mixers`) write the mix audio themselves: their
``mix(stems, ...)`` gives the audio and a session that records only the tracks (every strip at its
defaults, provenance ``direct: true``); such a session cannot be rendered or pushed to a DAW.

Importing this module imports no torch: the learned mixer loads its network on first use.
Sessions are built by :func:`mixbridge.models.mix_session.build_session` (real units) or
:func:`~mixbridge.models.mix_session.session_from_vectors` (normalised vectors, a model's output).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from mixbridge.audio import StemSet
from mixbridge.registry import Registry
from mixbridge.session import Session

from .baseline_mixers import EqualLoudness, MonoSum, RandomMix
from .knowledge_mixer import KnowledgeMixer


class Mixer(Protocol):
    """What every registered mixer is: a named callable from stems to a session."""

    name: str

    def __call__(self, stems: StemSet, *, seed: int = 0, target_lufs: float = -14.0,
                 source_base: Path | None = None) -> Session:
        """The session of ``stems`` (deterministic for ``seed``), the master aiming at ``target_lufs``."""
        ...


#: Mixer names -> ``factory(**config) -> Mixer``.
MIXERS: Registry[Mixer] = Registry("mixer")
#: The mixer ``automix`` uses when none is named: ``dmc`` beats ``knowledge`` (and every baseline)
#: on the composer dataset's test split (models/mixers/dmc.md), which makes it the default.
DEFAULT_MIXER = "dmc"


def register_mixer(name: str, factory: Callable[..., Mixer], summary: str = "") -> None:
    """Register ``factory(**config) -> Mixer`` under ``name`` with a plain one-line ``summary``.

    Raises:
        DuplicateNameError: the name is taken (a :class:`~mixbridge.errors.MixbridgeError`).
    """
    MIXERS.register(name, factory, summary)


def mixer_names() -> list[str]:
    """Registered mixer names, in registration order (the ``--mixer`` choices)."""
    return MIXERS.names()


def mixer_summary(name: str) -> str:
    """The plain one-line summary of mixer ``name`` (what ``mixbridge mixers`` prints).

    Raises:
        UnknownNameError: the name is unknown; the message lists the known mixers.
    """
    return MIXERS.summary(name)


def get_mixer(name: str, **config: Any) -> Mixer:
    """Build mixer ``name`` with ``config`` (its factory's keyword arguments).

    Raises:
        UnknownNameError: the name is unknown; the message lists the known mixers.
        MixbridgeError: a config the mixer refuses (e.g. ``ParamRangeError``).
    """
    return MIXERS.create(name, **config)


def mixer_from_checkpoint(path: str | Path, name: str = "learned", **config: Any) -> Mixer:
    """A trained mixer: mixer ``name`` built with ``checkpoint=path`` (and ``config``).

    The checkpoint is a :mod:`mixbridge.models.checkpoint` pair whose architecture the mixer
    runs (``mixer-mlp`` for ``learned``); it is opened, checked and its weights verified on
    the mixer's first call.

    Raises:
        UnknownNameError: an unknown mixer name.
        CheckpointError: (on first use) a missing, corrupted or unknown-version checkpoint.
    """
    return get_mixer(name, checkpoint=str(path), **config)


def _learned(**config: Any) -> Mixer:
    from .learned_mixer import LearnedMixer

    return LearnedMixer(**config)


def _prior(table: Any = None, common_lufs: float | None = None) -> Mixer:
    from .prior_mixer import PriorMixer

    return PriorMixer(table=table, common_lufs=common_lufs)


def _deepmixing(checkpoint: str | None = None, model: Any = None) -> Mixer:
    from .deepmixing_mixer import DeepMixingMixer

    return DeepMixingMixer(checkpoint=checkpoint, model=model)


def _dmc(checkpoint: str | None = None, model: Any = None) -> Mixer:
    from .dmc_mixer import DMCMixer

    return DMCMixer(checkpoint=checkpoint, model=model)


register_mixer("knowledge", KnowledgeMixer,
               "Published mixing practice by track role: balance, pan spread, high-pass, compression, reverb.")
register_mixer("mono_sum", MonoSum, "Every track at unity gain, centred, no processing (a baseline).")
register_mixer("random", RandomMix, "Random faders within +-12 dB and random pans, seeded (a baseline).")
register_mixer("equal_loudness", EqualLoudness,
               "Every track brought to the same integrated loudness, centred (a baseline).")
register_mixer("learned", _learned,
               "A trained network sets every channel strip from the stems' features (needs a checkpoint).")
register_mixer("prior", _prior,
               "The mean level and pan of each GM family (or role) in the composer dataset's training songs.")
register_mixer("dmc", _dmc,
               "Differentiable mixing console: a network reads every track's audio and sets its gain and pan.")
register_mixer("deepmixing", _deepmixing,
               "Learned gain automation (DeepMixing): fader curves per 400 ms from a Dirichlet over the tracks.")


def _dae(checkpoint: str | None = None, model: Any = None) -> Mixer:
    from .dae import DAEMixer

    return DAEMixer(checkpoint=checkpoint, model=model)


def _mixwaveunet(checkpoint: str | None = None, model: Any = None) -> Mixer:
    from .mixwaveunet import MixWaveUNetMixer

    return MixWaveUNetMixer(checkpoint=checkpoint, model=model)


register_mixer("dae", _dae,
               "Deep autoencoder per track group (direct: writes audio, no parameters, cannot be pushed to a DAW)")
register_mixer("mixwaveunet", _mixwaveunet,
               "Wave-U-Net from 8 track slots (direct: writes audio, no parameters, cannot be pushed to a DAW)")
