"""The registry of mastering models (the convention of :mod:`mixbridge.registry`).

A mastering model reads a finished stereo mix and sets the one master bus
(:mod:`mixbridge.plugins.master_bus`: EQ -> bus compressor -> solved gain -> true-peak limiter) in
the schema's real units. It never renders audio itself: ``mixbridge master`` renders its plan
through the one master bus and the one gain solver (:func:`mixbridge.plugins.mastering.master`),
so a plan means the same sound in every path (offline, the live bus, a DAW's master bus).

``masterer(audio, sample_rate, *, target_lufs, ceiling_dbtp, references=()) -> MasterPlan``:

* ``audio`` float32 ``[2, samples]``, the mix to master (mono is made stereo by the caller);
* ``references``: zero or more float32 ``[2, samples]`` masters at ``sample_rate`` whose tone and
  dynamics to aim at (models that cannot use them say so in :attr:`MasterPlan.notices`);
* the plan's ``params`` are ``master_bus`` values ``{"eq": {...}, "compressor": {...},
  "limiter": {...}, "loudness": {"target_lufs": ...}}`` (:data:`mixbridge.schema.MASTER_BUS`
  without the reverb, which a finished mix does not feed).

==============  =========================================================  =====================================
name            what                                                       module
==============  =========================================================  =====================================
``rules``       measured loudness, spectrum and crest set the chain        :mod:`mixbridge.plugins.master_rules`
``learned``     a network predicts the chain from the mix's features       :mod:`.learned_master`
==============  =========================================================  =====================================

Importing this module imports no torch and no scipy: a factory imports its model when called.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from mixbridge.plugins.master_plan import MasterPlan  # re-exported: the plugins layer builds plans
from mixbridge.registry import Registry

__all__ = ["DEFAULT_MASTERER", "MASTERERS", "MasterPlan", "Masterer", "get_masterer", "masterer_names",
           "masterer_summary", "register_masterer"]


class Masterer(Protocol):
    """What every registered mastering model is: a named callable from a stereo mix to a :class:`MasterPlan`."""

    name: str

    def __call__(self, audio: np.ndarray, sample_rate: int, *, target_lufs: float, ceiling_dbtp: float,
                 references: Sequence[np.ndarray] = ()) -> MasterPlan:
        """The plan for ``audio`` float32 ``[2, samples]`` at ``sample_rate`` Hz (deterministic)."""
        ...


#: Mastering model names -> ``factory(**config) -> Masterer``.
MASTERERS: Registry[Masterer] = Registry("mastering model")
#: The model ``mixbridge master`` uses when none is named: ``learned`` beats ``rules`` and gain + limiter
#: on the held-out album (MR-STFT 0.442 against 0.475 and 0.469; models/masterers/learned.md).
DEFAULT_MASTERER = "learned"


def register_masterer(name: str, factory: Callable[..., Masterer], summary: str = "") -> None:
    """Register ``factory(**config) -> Masterer`` under ``name`` with a plain one-line ``summary``.

    Raises:
        DuplicateNameError: the name is taken.
    """
    MASTERERS.register(name, factory, summary)


def masterer_names() -> list[str]:
    """Registered mastering model names, in registration order (the ``--model`` choices)."""
    return MASTERERS.names()


def masterer_summary(name: str) -> str:
    """The plain one-line summary of mastering model ``name``.

    Raises:
        UnknownNameError: the name is unknown; the message lists the known models.
    """
    return MASTERERS.summary(name)


def get_masterer(name: str, **config: Any) -> Masterer:
    """Build mastering model ``name`` with ``config`` (its factory's keyword arguments).

    Raises:
        UnknownNameError: the name is unknown; the message lists the known models.
    """
    return MASTERERS.create(name, **config)


def _rules(**config: Any) -> Masterer:
    from mixbridge.plugins.master_rules import RulesMasterer

    return RulesMasterer(**config)


def _learned(**config: Any) -> Masterer:
    from .learned_master import LearnedMasterer

    return LearnedMasterer(**config)


register_masterer("rules", _rules, "Measured loudness, long-term spectrum and crest factor set the master chain.")
register_masterer("learned", _learned, "A network predicts the master chain from the mix's features.")
