"""The reference compressor of the schema, in numpy: what ``compressor.*`` means, rendered.

One feed-forward compressor (``mixbridge.schema.COMPRESSOR_SEMANTICS``) after
Giannoulis, Massberg and Reiss, "Digital Dynamic Range Compressor Design -- A
Tutorial and Analysis", JAES 60(6), 2012:

* detector: ``level_db[n] = 20 log10 max_c |x_c[n]|`` (peak, stereo-linked);
* gain computer (:func:`static_reduction_db`): quadratic soft knee of full width
  ``knee_db`` centred on ``threshold_db`` (their eq. 4), written as the gain
  reduction ``gr = s clip(L - T + W/2, 0, W)^2 / (2W) + s max(L - T - W/2, 0)``,
  ``s = 1 - 1/ratio``; ``gr = s max(L - T, 0)`` for ``W = 0``; ``ratio = 1`` gives 0;
* ballistics on ``gr`` (their eq. 17, smooth decoupled peak detector) in a form that
  vectorises:

  1. release (:func:`peak_release`): ``y1[n] = max(gr[n], aR y1[n-1])``,
     ``aR = exp(-1 / (release_ms/1000 sample_rate))``. ``log y1`` is a max-plus
     recursion, so it is ``cummax(log gr[k] + k/tau) - n/tau``: one
     ``np.maximum.accumulate``;
  2. attack: ``y[n] = aA y[n-1] + (1 - aA) y1[n]``, ``aA = exp(-1 / (attack_ms/1000 sample_rate))``
     (``scipy.signal.lfilter``).

  A level step that raises the static reduction reaches 63 % of it after exactly
  ``attack_ms``; one that removes it decays through both poles, so its 37 % time is
  ``release_ms`` plus at most 0.2 ``release_ms`` for ``release_ms >= 4 attack_ms``
  (the contract's +-20 %; :mod:`mixbridge.plugins.contract` measures it).
* output: ``x * 10^((makeup_db - y) / 20)``.

The streaming master chain (:mod:`mixbridge.plugins.master_bus`) runs the same
equations block by block with preallocated buffers; a test checks that both agree.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from mixbridge.errors import AudioInputError

#: Levels below this (-240 dBFS) count as silence in the detector.
LEVEL_FLOOR = 1e-12
#: Floor of the gain-reduction detector in dB (10^(-1e-300/20) is exactly 1.0 in float64).
TINY = 1e-300


def static_reduction_db(level_db: np.ndarray, threshold_db, ratio, knee_db) -> np.ndarray:
    """Static gain reduction in dB (>= 0) of the soft-knee gain computer (Giannoulis et al. 2012, eq. 4).

    Args:
        level_db: detector level in dBFS, any shape.
        threshold_db: knee centre, dBFS. ratio: >= 1. knee_db: full knee width, >= 0 dB.
            Each a float or an array that broadcasts against ``level_db`` (per-sample
            automation); ``knee_db = 0`` (anywhere) is the hard knee there.

    Returns:
        float64 array of the broadcast shape of the arguments (``level_db``'s for scalars).
    """
    level_db = np.asarray(level_db, dtype=np.float64)
    if np.ndim(threshold_db) == 0 and np.ndim(ratio) == 0 and np.ndim(knee_db) == 0:
        threshold_db, ratio, knee_db = float(threshold_db), float(ratio), float(knee_db)
        slope = 1.0 - 1.0 / ratio
        if knee_db > 0.0:
            inside = np.clip(level_db - (threshold_db - knee_db / 2.0), 0.0, knee_db)
            above = np.maximum(level_db - (threshold_db + knee_db / 2.0), 0.0)
            return slope * (inside * inside / (2.0 * knee_db) + above)
        return slope * np.maximum(level_db - threshold_db, 0.0)
    t = np.asarray(threshold_db, dtype=np.float64)
    w = np.asarray(knee_db, dtype=np.float64)
    slope = 1.0 - 1.0 / np.asarray(ratio, dtype=np.float64)
    inside = np.clip(level_db - (t - w / 2.0), 0.0, w)
    soft = inside * inside / (2.0 * np.where(w > 0.0, w, 1.0)) + np.maximum(level_db - (t + w / 2.0), 0.0)
    return slope * np.where(w > 0.0, soft, np.maximum(level_db - t, 0.0))


def peak_release(reduction_db: np.ndarray, release_ms: float, sample_rate: int,
                 state: float = -math.inf) -> tuple[np.ndarray, float]:
    """Instant-attack peak hold with exponential release: ``y[n] = max(g[n], aR y[n-1])``.

    Args:
        reduction_db: ``[samples]`` gain reduction, dB, >= 0.
        release_ms: 63 % time constant, ms. sample_rate: Hz.
        state: natural log of the value before the first sample (``-inf``: none).

    Returns:
        ``(y [samples] float64, new_state)``.
    """
    step = 1.0 / (release_ms * 1e-3 * sample_rate)
    ramp = np.arange(reduction_db.shape[-1], dtype=np.float64) * step
    logv = np.log(np.maximum(reduction_db, TINY)) + ramp
    np.maximum.accumulate(logv, out=logv)
    np.maximum(logv, state - step, out=logv)
    logv -= ramp
    return np.exp(logv), float(logv[-1]) if logv.size else state


@dataclass
class CompressorState:
    """What the compressor carries from one block to the next (for block-wise automation).

    ``release_log``: natural log of the held reduction before the block; ``attack_last``: the
    attack one-pole's last output (dB), so a block whose ``attack_ms`` differs continues from
    it with its own coefficient; ``low_last``: the release low-pass's last output (dB, used
    when ``beta > 0``).
    """

    release_log: float = -math.inf
    attack_last: float = 0.0
    low_last: float = 0.0  # the release low-pass of a beta > 0 release law (:func:`gain_reduction_db`)


def gain_reduction_db(audio: np.ndarray, sample_rate: int, *, threshold_db: float, ratio: float,
                      attack_ms: float, release_ms: float, knee_db: float,
                      state: CompressorState | None = None, beta: float = 0.0) -> np.ndarray:
    """The smoothed gain reduction in dB (>= 0) for ``audio`` ``[channels, samples]``: float64 ``[samples]``.

    ``state`` (updated in place) continues a previous block; ``None`` starts from rest.
    ``beta`` (0..1) is the release law of the grey-box proxies (:mod:`mixbridge.models.proxy_greybox`):
    ``y1[n] = max(gr[n], aR y1[n-1] + beta (1 - aR) gr[n])``, 0 (the schema's) being the peak hold
    above and 1 Giannoulis et al.'s smooth decoupled detector (their eq. 17), computed as
    ``beta P + peak_release(max(gr - beta P, 0))`` with ``P`` the release one-pole of ``gr``.
    """
    level = np.max(np.abs(np.asarray(audio, dtype=np.float64)), axis=0)
    level_db = 20.0 * np.log10(np.maximum(level, LEVEL_FLOOR))
    gr = static_reduction_db(level_db, threshold_db, ratio, knee_db)
    st = state if state is not None else CompressorState()
    if beta > 0.0:
        ar = math.exp(-1.0 / (release_ms * 1e-3 * sample_rate))
        low, _ = lfilter([1.0 - ar], [1.0, -ar], gr, zi=np.array([ar * st.low_last]))
        if low.size:
            st.low_last = float(low[-1])
        held, st.release_log = peak_release(np.maximum(gr - beta * low, 0.0), release_ms, sample_rate, st.release_log)
        held += beta * low
    else:
        held, st.release_log = peak_release(gr, release_ms, sample_rate, st.release_log)
    a = math.exp(-1.0 / (attack_ms * 1e-3 * sample_rate))
    out, _ = lfilter([1.0 - a], [1.0, -a], held, zi=np.array([a * st.attack_last]))
    if out.size:
        st.attack_last = float(out[-1])
    return out


def compress(audio: np.ndarray, sample_rate: int, *, threshold_db: float, ratio: float, attack_ms: float,
             release_ms: float, knee_db: float, makeup_db: float, state: CompressorState | None = None,
             beta: float = 0.0) -> np.ndarray:
    """Compress float ``[channels, samples]`` audio; returns float32 of the same shape.

    Parameters are the schema's ``compressor`` (dB, ms, ratio), already validated; ``state``
    continues a previous block (see :class:`CompressorState`); ``beta`` is the release law of
    :func:`gain_reduction_db` (0, the schema's, unless a grey-box proxy runs it).

    Raises:
        AudioInputError: audio that is not 2-D (a ValueError).
    """
    audio = np.asarray(audio)
    if audio.ndim != 2:
        raise AudioInputError(f"audio must be [channels, samples], got shape {audio.shape}")
    gr = gain_reduction_db(audio, sample_rate, threshold_db=threshold_db, ratio=ratio, attack_ms=attack_ms,
                           release_ms=release_ms, knee_db=knee_db, state=state, beta=beta)
    gain = np.power(10.0, (makeup_db - gr) / 20.0)
    return (audio * gain).astype(np.float32)
