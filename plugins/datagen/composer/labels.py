"""The composer's mixing decisions as labels: CC7 channel volume -> level, CC10 pan -> pan.

General MIDI fixes both laws (GM Level 1, MMA RP-003; the "GM volume law" of the
MMA's recommended practice RP-036): CC7 value ``v`` scales amplitude by
``(v / 127) ** 2``, i.e. ``40 log10(v / 127)`` dB; a part that never sends CC7 plays
at the GM reset value 100. CC10 maps 0 -> hard left, 64 -> centre, 127 -> hard right;
this module maps it linearly on each side, ``(v - 64) / 64`` below the centre and
``(v - 64) / 63`` above, to mixbridge's ``pan`` in -1..1.

Over an excerpt, a CC7 that changes (a ramp, a fade) is labelled by its power mean:
the time-weighted mean of ``(v / 127) ** 4`` (power) over the excerpt, in dB; the
curve is kept for time-varying models. A changing CC10 is labelled by the
time-weighted mean of its pan. The drum kit's stems share channel 10's CC7/CC10.
CC11 (expression) is left in the stem renders, so it is not counted here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mixbridge.gm import CC7_OFF_DB, cc7_gain_db  # noqa: F401  (the one GM volume law; re-exported)

#: The GM reset value of CC7 (channel volume) for a part that never sends it.
GM_DEFAULT_CC7 = 100
#: The GM reset value of CC10 (pan): the centre.
GM_DEFAULT_CC10 = 64
CC7_CONTROL = 7
CC10_CONTROL = 10

#: The label rules as ``config.json`` records them (COMMON.md, issue 12).
GAIN_RULE = ("gain_db_i = 40*log10(cc7_i/127) + raw_lufs_i - input_lufs_i, minus the mean of that over the "
             "excerpt's tracks; cc7_i is the CC7 value in force on the stem's MIDI channel at the excerpt start "
             "(GM default 100 when none was sent), or, when it changes inside the excerpt (cc7_ramped), the "
             "time-weighted power mean 127*(mean((v/127)**4))**(1/4) over the excerpt; the drum stems share "
             "channel 10's CC7; raw_lufs_i is the stem's BS.1770-4 loudness as rendered (CC7/CC10 stripped, "
             "CC11 kept), input_lufs_i that of the stored, loudness-normalised stem; stems with cc7 0 are excluded")
PAN_RULE = ("pan_i = (v-64)/64 for v<64, (v-64)/63 for v>=64, v the CC10 value in force on the stem's MIDI "
            "channel (GM default 64 -> 0); when it changes inside the excerpt, the time-weighted mean of that pan "
            "over the excerpt; the drum stems share channel 10's CC10")


def cc10_pan(value: float) -> float:
    """CC10 ``value`` (0..127) as mixbridge ``pan`` (-1 left .. +1 right): ``(v-64)/64`` below 64,
    ``(v-64)/63`` from 64 up (0 -> -1, 64 -> 0, 127 -> +1)."""
    return (value - 64.0) / 64.0 if value < 64 else (value - 64.0) / 63.0


@dataclass(frozen=True)
class ControllerSegments:
    """A controller over an excerpt: ``values[k]`` holds from ``times_s[k]`` (seconds from the excerpt
    start) to the next time, the last to ``duration_s``; ``changes`` is whether it changes inside."""

    times_s: tuple[float, ...]
    values: tuple[int, ...]
    duration_s: float

    @property
    def changes(self) -> bool:
        """True when the controller takes more than one value inside the excerpt."""
        return len(set(self.values)) > 1

    def weights(self) -> np.ndarray:
        """Each segment's share of the excerpt's duration (sums to 1)."""
        ends = list(self.times_s[1:]) + [self.duration_s]
        w = np.array([max(e - s, 0.0) for s, e in zip(self.times_s, ends)], dtype=np.float64)
        total = w.sum()
        if total <= 0:  # a zero-length excerpt: the value at its start
            w = np.zeros(len(self.values))
            w[0] = 1.0
            return w
        return w / total


def controller_segments(curve: list[tuple[int, int]], start_tick: int, end_tick: int, seconds_at,
                        default: int) -> ControllerSegments:
    """The values of one controller over ``[start_tick, end_tick)``.

    Args:
        curve: ``[(tick, value)]`` in time order (``midi.Song.controller_curve``).
        seconds_at: tick -> seconds from the song start (``midi.Song.seconds_at``).
        default: the value in force before the first event (the GM reset value).
    """
    value = default
    for tick, v in curve:
        if tick > start_tick:
            break
        value = v
    t0 = seconds_at(start_tick)
    times, values = [0.0], [int(value)]
    for tick, v in curve:
        if start_tick < tick < end_tick and v != values[-1]:
            times.append(seconds_at(tick) - t0)
            values.append(int(v))
    return ControllerSegments(tuple(times), tuple(values), seconds_at(end_tick) - t0)


@dataclass(frozen=True)
class ChannelLabel:
    """The composer's level and pan of one MIDI channel over an excerpt.

    ``cc7`` is the value in force (static) or the power mean (``cc7_ramped``), as a float
    0..127; ``cc7_gain_db`` its GM gain in dB (-inf when 0); ``cc7_curve`` ``[[t_s, gain_db]]``
    from the excerpt start; ``cc10`` the value in force at the excerpt start, ``pan`` the
    (time-weighted mean) pan, ``cc10_ramped`` whether CC10 changes inside the excerpt.
    """

    cc7: float
    cc7_gain_db: float
    cc7_ramped: bool
    cc7_curve: tuple[tuple[float, float], ...]
    cc10: int
    pan: float
    cc10_ramped: bool


def channel_label(song, channel: int, start_tick: int, end_tick: int) -> ChannelLabel:
    """The :class:`ChannelLabel` of 0-based MIDI ``channel`` of ``song`` (a ``midi.Song``) over
    ``[start_tick, end_tick)``: CC7 by the GM volume law (power mean when it changes), CC10 pan."""
    vol = controller_segments(song.controller_curve(channel, CC7_CONTROL), start_tick, end_tick, song.seconds_at,
                              GM_DEFAULT_CC7)
    pan = controller_segments(song.controller_curve(channel, CC10_CONTROL), start_tick, end_tick, song.seconds_at,
                              GM_DEFAULT_CC10)
    if vol.changes:
        power = float(np.dot(vol.weights(), (np.asarray(vol.values, dtype=np.float64) / 127.0) ** 4))
        cc7 = 127.0 * power ** 0.25
        gain_db = 10.0 * math.log10(power) if power > 0 else -math.inf
    else:
        cc7 = float(vol.values[0])
        gain_db = cc7_gain_db(cc7) if cc7 > 0 else -math.inf
    if pan.changes:
        pan_value = float(np.dot(pan.weights(), [cc10_pan(v) for v in pan.values]))
    else:
        pan_value = cc10_pan(pan.values[0])
    curve = tuple((round(t, 6), round(cc7_gain_db(v), 6)) for t, v in zip(vol.times_s, vol.values))
    return ChannelLabel(cc7, gain_db, vol.changes, curve, pan.values[0], pan_value, pan.changes)


def relative_gains_db(cc7_gain_db: np.ndarray, raw_lufs: np.ndarray, input_lufs: np.ndarray) -> np.ndarray:
    """The per-track gain labels in dB, ``[tracks]``: ``cc7_gain_db + raw_lufs - input_lufs``, minus its mean.

    Applying ``gain_db[i]`` to the loudness-normalised input stem ``i`` gives the rendered stem
    scaled by its CC7 gain, up to one common factor (the mix's overall level is free).
    """
    g = np.asarray(cc7_gain_db, dtype=np.float64) + np.asarray(raw_lufs, dtype=np.float64) - np.asarray(
        input_lufs, dtype=np.float64)
    return g - g.mean()
