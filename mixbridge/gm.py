"""The General MIDI volume law, shared by the composer labels and the bridge's MIDI export.

General MIDI (GM Level 1, MMA RP-003; the "GM volume law" of the MMA's recommended
practice RP-036) maps CC7 channel volume ``v`` (0..127) to an amplitude of
``(v / 127) ** 2``, i.e. ``gain_db = 40 log10(v / 127)``: 127 is 0 dB, 100 (the GM
reset value) -4.15 dB, 64 -11.9 dB, 1 -84.1 dB, 0 silence. The same law holds for a
14-bit CC7/CC39 pair on its 0..16383 scale. Nothing above 0 dB can be expressed.
"""
from __future__ import annotations

import math

#: The largest 7-bit controller value, and the largest 14-bit (MSB/LSB pair) one.
CC_MAX_7BIT = 127
CC_MAX_14BIT = 16383
#: What :func:`cc7_gain_db` gives for CC7 = 0 (no finite dB): far below the quietest value, 40 log10(1/127) = -84.1 dB.
CC7_OFF_DB = -120.0


def cc7_gain_db(value: float, full_scale: int = CC_MAX_7BIT) -> float:
    """The GM volume law: CC7 ``value`` (0..``full_scale``) as a gain in dB, ``40 log10(value / full_scale)``;
    :data:`CC7_OFF_DB` for 0."""
    return 40.0 * math.log10(value / full_scale) if value > 0 else CC7_OFF_DB


def gain_db_to_cc7(gain_db: float, full_scale: int = CC_MAX_7BIT) -> float:
    """The inverse of :func:`cc7_gain_db`, unrounded: ``full_scale * 10 ** (gain_db / 40)``, 0 for ``-inf``.

    Raises:
        ValueError: ``gain_db`` above 0 dB (the law's top, CC7 = ``full_scale``) or NaN.
    """
    if not gain_db <= 0.0:
        raise ValueError(f"gain {gain_db:g} dB is above the GM volume law's 0 dB (CC7 = {full_scale}); "
                         "move the excess to another gain stage")
    return 0.0 if gain_db == -math.inf else full_scale * 10.0 ** (gain_db / 40.0)
