"""The mixing roles a stem can have: one vocabulary for mixers, dataset layouts and the demo.

A role says what a stem is to a mix engineer (its level, pan and EQ habits), not
which instrument plays it: ``kick`` ... ``percussion`` are the pieces of a
multi-miked drum kit; ``lead`` is whatever carries the melody (a voice, a
saxophone, a synth lead); ``other`` is everything else. The knowledge-based mixer
(:mod:`mixbridge.models.mixers`), the dataset layouts
(:mod:`mixbridge.plugins.layouts`) and the demo builder
(:mod:`mixbridge.plugins.datagen.demo`) all draw their roles from :data:`ROLES`.
"""
from __future__ import annotations

#: Every role, drum pieces first, in the order mixers and reports list them.
ROLES: tuple[str, ...] = ("kick", "snare", "hihat", "toms", "cymbals", "percussion", "bass", "guitar", "keys",
                          "lead", "pad", "strings", "brass", "other")
