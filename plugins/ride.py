"""Loudness riding by rule: fader automation that moves each track against its own loudness changes.

:func:`ride_automation` gives every track of a session a ``fader.fader_db`` curve, so that
``automix --ride`` writes sessions with automation a user can push into a DAW's own lanes
(``mixbridge daw-script``), play (``automate``) or export (``midi-export``). The rule, per track:

1. the short-term loudness ``L(t)`` of its stem (EBU Tech 3341, ``window_s`` = 3 s, every ``hop_s``:
   :func:`mixbridge.spectrum.short_term_lufs`), each value placed at its window's centre;
2. the frames that carry the track: those whose every 400 ms block (BS.1770's momentary window, the
   same function) is above the absolute gate (-70 LUFS) and within :data:`ACTIVE_RANGE_DB` of the
   track's loudest block, so a window reaching into a pause does not count; ``M`` is their median;
3. the ride ``r(t) = clip(-amount (L(t) - M), -max_ride_db, +max_ride_db)`` dB on the active frames,
   linearly interpolated across inactive ones (held at the ends), so a pause never pulls the fader;
4. a centred moving average over ``smooth_s`` (``scipy.ndimage.uniform_filter1d``, edges held): an
   average of values within +-max_ride_db stays within it, and a plateau longer than the window keeps
   its value exactly;
5. the curve ``fader_db + r(t)`` (clipped to the schema's fader range), simplified: an interior point
   is dropped while every dropped point lies within ``tolerance_db`` of the straight line that replaces
   it (the stored curve is piecewise linear, so this is lossless within ``tolerance_db``); a flat ride
   keeps one point.

What to expect (``amount`` = 1): a stem that holds level ``A`` for most of its length and ``A + s`` dB for
the rest has ``M = A``; the ride is 0 dB on the ``A`` part and ``-min(s, max_ride_db)`` on the louder part,
away from the step by more than ``window_s / 2 + smooth_s / 2``. A steady stem gets one point at
``fader_db``. The ride never leaves ``fader_db +- max_ride_db``. A track that already has a fader curve
is left alone (listed in the provenance). Everything here is numpy/scipy on the core's loudness.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np

from mixbridge.errors import AudioInputError
from mixbridge.loudness import SILENT_LUFS
from mixbridge.schema import CHANNEL_STRIP
from mixbridge.session import Automation, Session
from mixbridge.spectrum import short_term_lufs

#: 400 ms blocks quieter than the track's loudest block by more than this (dB) are inactive (pauses, tails).
ACTIVE_RANGE_DB = 30.0
#: The gating block (s): BS.1770's momentary window.
GATE_BLOCK_S = 0.4
#: Default curve simplification tolerance (dB): below a fader step any DAW shows (0.1 dB).
DEFAULT_TOLERANCE_DB = 0.05
#: Default smoothing window (s) of the ride.
DEFAULT_SMOOTH_S = 2.0
FADER_PATH = "fader.fader_db"


def simplify_curve(times_s: np.ndarray, values: np.ndarray, tolerance: float) -> tuple[list[float], list[float]]:
    """Drop interior points of a piecewise-linear curve while every dropped point lies within ``tolerance``
    of the chord that replaces it (greedy, left to right); first and last points stay, a flat curve keeps
    one point. Returns ``(times_s, values)`` lists."""
    t, v = np.asarray(times_s, float), np.asarray(values, float)
    if len(t) == 0:
        return [], []
    if np.ptp(v) <= tolerance:
        return [float(t[0])], [float(np.mean(v))]
    keep = [0]
    a = 0
    while a < len(t) - 1:
        b = a + 1
        while b + 1 < len(t):
            c = b + 1
            seg = slice(a + 1, c)
            line = v[a] + (v[c] - v[a]) * (t[seg] - t[a]) / (t[c] - t[a])
            if np.max(np.abs(line - v[seg])) > tolerance:
                break
            b = c
        keep.append(b)
        a = b
    return [float(t[i]) for i in keep], [float(v[i]) for i in keep]


def ride_curve(audio: np.ndarray, sample_rate: int, *, window_s: float = 3.0, hop_s: float = 0.5,
               max_ride_db: float = 6.0, smooth_s: float = DEFAULT_SMOOTH_S,
               amount: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The ride of one stem (module docstring, steps 1-4): ``(times_s, ride_db)`` float64 ``[frames]``.

    Args:
        audio: float32 ``[channels, samples]`` (or ``[samples]``).
        sample_rate: Hz.
        window_s, hop_s: the short-term loudness window and hop, s.
        max_ride_db: the most the fader moves either way, dB (> 0).
        smooth_s: the moving-average window, s (0: none).
        amount: the fraction of each loudness deviation the fader corrects (0..1).

    Raises:
        AudioInputError: bad audio, or a limit that is not positive / an amount outside 0..1.
    """
    if not (max_ride_db > 0 and hop_s > 0 and window_s > 0 and smooth_s >= 0 and 0 <= amount <= 1):
        raise AudioInputError(f"ride: max_ride_db = {max_ride_db}, hop_s = {hop_s}, window_s = {window_s}, "
                              f"smooth_s = {smooth_s}, amount = {amount}: give positive max_ride_db, hop_s and "
                              "window_s, smooth_s >= 0 and amount in 0..1")
    ends, lufs = short_term_lufs(audio, sample_rate, hop_s=hop_s, window_s=window_s)
    n = np.asarray(audio).shape[-1]
    win_s = min(window_s, n / sample_rate)
    times = np.maximum(ends - win_s / 2.0, 0.0)
    # a frame counts only if every 400 ms block of its window is active: a window that reaches into a
    # pause reads low because of the pause, not because the track got quieter
    m_ends, m_lufs = short_term_lufs(audio, sample_rate, hop_s=hop_s, window_s=min(GATE_BLOCK_S, win_s))
    gate = max(float(np.max(m_lufs)) - ACTIVE_RANGE_DB, SILENT_LUFS)
    block_ok = m_lufs > gate
    first = min(GATE_BLOCK_S, win_s)
    active = np.array([bool(np.all(block_ok[(m_ends >= e - win_s + first - 1e-9) & (m_ends <= e + 1e-9)]))
                       for e in ends])
    if not active.any():
        return times[:1], np.zeros(1)
    median = float(np.median(lufs[active]))
    ride = np.clip(-amount * (lufs - median), -max_ride_db, max_ride_db)
    ride = np.interp(times, times[active], ride[active])
    width = int(round(smooth_s / hop_s))
    if width > 1:
        from scipy.ndimage import uniform_filter1d

        ride = uniform_filter1d(ride, size=width, mode="nearest")
    return times, np.clip(ride, -max_ride_db, max_ride_db)


def _stem_audio(stems: Any, name: str, index: int) -> np.ndarray | None:
    """A track's audio from a ``{name: array}`` mapping, a sequence in track order, or a StemSet."""
    if isinstance(stems, Mapping):
        return None if name not in stems else np.asarray(stems[name])
    items = getattr(stems, "stems", stems)
    for s in items:
        if getattr(s, "name", None) == name:
            return s.read(0, s.n_samples) if hasattr(s, "read") and hasattr(s, "n_samples") else s.audio
    if not hasattr(stems, "stems") and index < len(items):
        return np.asarray(items[index])
    return None


def ride_automation(session: Session, stems: Any, *, window_s: float = 3.0, hop_s: float = 0.5,
                    max_ride_db: float = 6.0, smooth_s: float = DEFAULT_SMOOTH_S, amount: float = 1.0,
                    tolerance_db: float = DEFAULT_TOLERANCE_DB) -> Session:
    """A copy of ``session`` whose tracks ride their faders against their own loudness (module docstring).

    Args:
        session: the mix; its sample rate is the stems'.
        stems: ``{track name: float32 [channels, samples]}``, a list in track order, or a
            :class:`~mixbridge.audio.StemSet` (stems matched by name, read one at a time, none kept).
        window_s, hop_s, max_ride_db, smooth_s, amount: as :func:`ride_curve`.
        tolerance_db: the curve simplification tolerance, dB.

    Returns:
        A new session: each track with a stem and no fader curve gets ``automation["fader.fader_db"]``;
        ``provenance["ride"]`` records the settings, the tracks ridden (with their largest move in dB)
        and the tracks left alone (and why).

    Raises:
        AudioInputError: bad audio or settings (:func:`ride_curve`).
    """
    out = copy.deepcopy(session)
    fader = CHANNEL_STRIP.param(FADER_PATH)
    ridden: dict[str, float] = {}
    skipped: dict[str, str] = {}
    for i, track in enumerate(out.tracks):
        if FADER_PATH in track.automation:
            skipped[track.name] = "it already has a fader curve"
            continue
        audio = _stem_audio(stems, track.name, i)
        if audio is None:
            skipped[track.name] = "no stem given for it"
            continue
        times, ride = ride_curve(audio, out.sample_rate, window_s=window_s, hop_s=hop_s, max_ride_db=max_ride_db,
                                 smooth_s=smooth_s, amount=amount)
        static = float(track.params["fader"]["fader_db"])
        values = np.clip(static + ride, fader.min, fader.max)
        ts, vs = simplify_curve(times, values, tolerance_db)
        track.automation[FADER_PATH] = Automation(ts, vs)
        ridden[track.name] = round(float(np.max(np.abs(values - static))), 3)
    out.provenance["ride"] = {"rule": "short-term loudness against its median", "window_s": window_s,
                              "hop_s": hop_s, "max_ride_db": max_ride_db, "smooth_s": smooth_s, "amount": amount,
                              "tolerance_db": tolerance_db, "largest_move_db": ridden, "left_alone": skipped}
    return out
