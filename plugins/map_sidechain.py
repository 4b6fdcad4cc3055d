"""Host-made sidechain signals of plugin maps: :data:`SIDECHAIN_SIGNALS` (torch-free).

A map stage can name a ``sidechain`` signal (``{"input": k, "signal": name}``): the host computes
it from the processor's input and feeds it to the plugin's input ``k``. The one signal so far is
:func:`schema_reduction_drive`, the drive that makes ZamComp/ZamCompX2 render the schema's
compressor (:mod:`mixbridge.plugins.dynamics`). The unit conversions of a map are
:mod:`.map_laws`; the map model that checks a stage's sidechain is :mod:`.pluginmap`.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def _constant_runs(params: Mapping[str, Any], names: Sequence[str], n: int) -> list[tuple[int, int, dict[str, float]]]:
    """``[(start, stop, {name: float})]``: the runs over which every named value is constant."""
    arrays = {k: np.broadcast_to(np.asarray(params[k], np.float64), (n,)) for k in names if np.ndim(params[k])}
    if not arrays:
        return [(0, n, {k: float(params[k]) for k in names})]
    change = np.zeros(n, bool)
    change[0] = True
    for v in arrays.values():
        change[1:] |= v[1:] != v[:-1]
    starts = np.flatnonzero(change)
    stops = np.append(starts[1:], n)
    return [(int(a), int(b), {k: float(arrays[k][a]) if k in arrays else float(params[k]) for k in names})
            for a, b in zip(starts, stops)]


#: What :func:`schema_reduction_drive` assumes about the plugin: its parameters fixed at these
#: display values (Knee 0: the hard knee; Slew 1: no extra attack on the knee) ...
DRIVE_REQUIRES_FIXED = {"Knee": 0.0, "Slew": 1.0}
#: ... and these plugin parameters driven by these schema parameters, unconverted.
DRIVE_REQUIRES_SET = {"Threshold": "threshold_db", "Ratio": "ratio", "Attack": "attack_ms", "Release": "release_ms"}
#: Sidechain level (dB below threshold) that asks the plugin for no reduction at all.
DRIVE_IDLE_BELOW_DB = 10.0
#: A negative drive smaller than this (dB) is float64 round-off, not a reduction falling faster
#: than the plugin's release: it is clamped to 0 instead of tracked.
DRIVE_NEGATIVE_TOL_DB = 1e-9


def schema_reduction_drive(audio: np.ndarray, params: Mapping[str, Any], sample_rate: int) -> np.ndarray:
    """Sidechain that makes ZamComp/ZamCompX2 apply exactly the schema compressor's gain reduction.

    The schema's reduction ``Y`` (:func:`mixbridge.plugins.dynamics.gain_reduction_db`:
    stereo-linked peak level, soft knee, instant-attack peak hold with exponential release,
    then a one-pole attack) cannot come from the plugins' own detector. Read in zam-plugins
    4.x (``ZamCompPlugin.cpp``/``ZamCompX2Plugin.cpp`` ``run()``) and measured here (a 10 dB
    reduction released with Release 50 ms reads 3.6788 dB 50 ms later: one pole, no attack
    pole; reductions alternating 10/0 dB per sample settle at 1.65 dB for Attack 5,
    Release 1), their ballistics are a *branching* one-pole on the reduction ``x`` of their
    hard knee: ``y[n] = a y[n-1] + (1 - a) x[n]``, ``a = exp(-1000/(Attack sr))`` while
    ``x[n] > y[n-1]``, ``exp(-1000/(Release sr))`` while ``x[n] < y[n-1]``. Without a hold
    they ride the waveform (1 kHz sine, attack 10 ms: 63 % after 16 ms; gated-noise kick
    bursts: 4.5 LU louder than the schema's).

    So the host inverts that one-pole: with Attack = ``attack_ms`` and Release = ``release_ms``
    it asks for ``x[n] = (Y[n] - a Y[n-1]) / (1 - a)``, ``a`` the coefficient of the branch
    ``Y`` takes (the attack one while ``Y`` rises, where ``x[n]`` is the schema's held
    reduction, so the plugin's attack does the schema's attack; the release one while it
    falls, where ``x[n] >= 0`` because the schema's reduction never falls faster than its
    release pole, so the plugin's release does the decay and ``x`` only adds the lag of
    the schema's attack pole). Then the plugin's ``y`` is ``Y`` up to float32 rounding. The
    sidechain level is the one whose hard-knee reduction is ``x``:
    ``T + x / (1 - 1/ratio)`` dB (``DRIVE_IDLE_BELOW_DB`` below ``T`` where ``x = 0``), the
    same for every channel (linked). The plugin still computes the gain from that level,
    runs its ballistics and applies the gain and makeup. The map must fix
    :data:`DRIVE_REQUIRES_FIXED` and drive :data:`DRIVE_REQUIRES_SET` (checked at load).

    Args:
        audio: float ``[channels, samples]``, the compressor's input.
        params: the schema's compressor values in real units (floats, or per-sample arrays
            that hold the value the plugin sees: the host holds automation per block).
        sample_rate: Hz.

    Returns:
        float32 ``[samples]`` (> 0): the sidechain signal.
    """
    from .dynamics import CompressorState, gain_reduction_db

    audio = np.asarray(audio)
    n = audio.shape[1]
    names = ("threshold_db", "ratio", "attack_ms", "release_ms", "knee_db")
    state = CompressorState()
    y = np.empty(n, np.float64)
    a_att, a_rel, t, slope = (np.empty(n, np.float64) for _ in range(4))
    for start, stop, p in _constant_runs(params, names, n):
        y[start:stop] = gain_reduction_db(audio[:, start:stop], sample_rate, threshold_db=p["threshold_db"],
                                          ratio=p["ratio"], attack_ms=p["attack_ms"], release_ms=p["release_ms"],
                                          knee_db=p["knee_db"], state=state)
        a_att[start:stop] = math.exp(-1000.0 / (p["attack_ms"] * sample_rate))
        a_rel[start:stop] = math.exp(-1000.0 / (p["release_ms"] * sample_rate))
        t[start:stop] = p["threshold_db"]
        slope[start:stop] = 1.0 - 1.0 / p["ratio"]
    # the plugin's reduction before the first sample is 0 (its activate()); x inverts its one-pole
    y_prev = np.concatenate([[0.0], y[:-1]])
    a = np.where(y > y_prev, a_att, a_rel)
    x = (y - a * y_prev) / (1.0 - a)
    # Where automation raises release_ms (or changes attack_ms) between blocks, Y can fall faster
    # than the plugin's new release allows (x < 0): send 0 there and follow the plugin's own state
    # (a float64 model of its one-pole) until it can be put back on Y. Measured residual: 0.022 dB
    # for release_ms ramped 20 -> 300 ms over 2 s (the plugin lags Y through that release tail).
    # Static parameters give x >= 0 but for float64 round-off (about -1e-16 dB), clamped below.
    neg = np.flatnonzero(x < -DRIVE_NEGATIVE_TOL_DB)
    i = 0
    while i < neg.size:
        k = int(neg[i])
        yp = y_prev[k]
        while k < n:
            ak = a_att[k] if y[k] > yp else a_rel[k]
            xk = (y[k] - ak * yp) / (1.0 - ak)
            if xk >= 0.0:
                x[k] = xk
                break  # the plugin is back on Y: the open-loop x from k+1 on is right again
            x[k] = max(xk, 0.0)
            yp = ak * yp + (1.0 - ak) * x[k]
            k += 1
        i = int(np.searchsorted(neg, k + 1))  # the open-loop x after k is unchanged
    x = np.maximum(x, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        level = np.where((x > 0.0) & (slope > 0.0), t + x / np.where(slope > 0.0, slope, 1.0), t - DRIVE_IDLE_BELOW_DB)
    return np.power(10.0, level / 20.0).astype(np.float32)


@dataclass(frozen=True)
class SidechainSignal:
    """A sidechain signal the host computes from a processor's input (``func(audio, params, sample_rate)``).

    ``requires_fixed``: plugin parameters the stage must fix at these display values;
    ``requires_set``: plugin parameters the stage must drive from these schema parameters,
    unconverted (what the signal assumes about the plugin; checked when a map is loaded).
    """

    name: str
    func: Callable[..., np.ndarray]
    uses: tuple[str, ...]
    source: str
    requires_fixed: Mapping[str, float] = field(default_factory=dict)
    requires_set: Mapping[str, str] = field(default_factory=dict)


SIDECHAIN_SIGNALS: dict[str, SidechainSignal] = {
    "schema_reduction_drive": SidechainSignal(
        "schema_reduction_drive", schema_reduction_drive,
        ("threshold_db", "ratio", "attack_ms", "release_ms", "knee_db"),
        "schema COMPRESSOR_SEMANTICS (mixbridge.plugins.dynamics) through the inverse of the branching one-pole "
        "of zam-plugins 4.x ZamCompPlugin.cpp/ZamCompX2Plugin.cpp run(); "
        "measured in tests/plugins/test_vst_semantics.py",
        requires_fixed=DRIVE_REQUIRES_FIXED, requires_set=DRIVE_REQUIRES_SET,
    ),
}
