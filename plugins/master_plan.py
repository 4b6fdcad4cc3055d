"""A mastering model's decision, :class:`MasterPlan` (torch-free, in the plugins layer).

It lives here, not in :mod:`mixbridge.models.masterers`, so that mastering models of the plugins
layer (:mod:`.master_rules`) and the live bus (:mod:`mixbridge.bridge`) can build and read plans
without importing the models layer; the registry re-exports it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["MasterPlan"]


@dataclass
class MasterPlan:
    """A mastering model's decision: ``master_bus`` parameters in real units, and what it noticed.

    ``params``: ``{"eq": {...}, "compressor": {...}, "limiter": {...}, "loudness": {...}}``;
    ``notices``: plain sentences for the user (e.g. a reference the model cannot use);
    ``info``: what the model measured or predicted on the way (JSON-able), for the report.
    """

    params: dict[str, dict[str, float]]
    notices: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
