"""What the learned mastering model reads from a mix: a short, fixed vector of level, spectrum and dynamics.

:func:`master_features` (numpy/scipy only, no torch) turns a stereo window ``[2, samples]`` of at
least :data:`MIN_WINDOW_S` seconds into float32 ``[N_FEATURES]`` in :data:`FEATURE_NAMES` order:

* ``lufs``: integrated loudness (BS.1770-4, :func:`mixbridge.loudness.integrated_lufs`), LUFS;
* ``true_peak_dbtp``: 4x true peak (:func:`mixbridge.loudness.true_peak_dbtp`), dBTP;
* ``plr_db``: peak-to-loudness ratio, true peak minus loudness, dB;
* ``crest_db``: sample peak over RMS, all channels (:func:`mixbridge.spectrum.crest_factor_db`), dB;
* ``peak_p99_db``, ``peak_p999_db``: the 99th and 99.9th percentile of ``|x|`` relative to the
  sample peak, dB (a limited master has many samples near its peak: both near 0 dB);
* ``st_p10_lu``, ``st_p50_lu``, ``st_p90_lu``: percentiles of the loudness of
  :data:`SHORT_WINDOW_S`-second windows every :data:`SHORT_HOP_S` s
  (:func:`mixbridge.spectrum.short_term_lufs`, a 1 s window instead of EBU's 3 s so that a 3 s
  window still has a spread), relative to ``lufs``, LU;
* ``side_mid_db``: side over mid energy (stereo width), dB;
* ``band_<fc>_db``: the long-term octave-band spectrum, each band's power over the total power of
  the bands, dB, for the ten octave bands 31.5 Hz .. 16 kHz (:data:`OCTAVE_NOMINAL_HZ`;
  :func:`octave_band_levels_db`); a band above Nyquist reads :data:`BAND_FLOOR_DB`.

Every feature is a level difference or an absolute level of a normalised quantity, so it does not
depend on the window length (a test checks 3 s against 10 s of a stationary signal) and repeats
exactly for the same input. The live bus runs it on a sliding 3-10 s window
(:class:`mixbridge.export.master_onnx.OnnxMasterPredictor`).
"""
from __future__ import annotations

import numpy as np

from mixbridge.errors import AudioInputError
from mixbridge.loudness import SILENT_LUFS, integrated_lufs, true_peak_dbtp
from mixbridge.spectrum import OCTAVE_NOMINAL_HZ, crest_factor_db, octave_band_levels_db, short_term_lufs

__all__ = ["BAND_FLOOR_DB", "FEATURE_NAMES", "MIN_WINDOW_S", "N_FEATURES", "band_shape_db", "master_features"]

#: Shortest window the features are defined on, seconds (the live bus's smallest window).
MIN_WINDOW_S = 3.0
#: Short-term loudness windows: length and hop, seconds.
SHORT_WINDOW_S = 1.0
SHORT_HOP_S = 0.25
#: Level given to an empty or above-Nyquist octave band, dB relative to the total.
BAND_FLOOR_DB = -80.0
#: Floor of powers and amplitudes before a log (digital silence reads a finite level).
_POWER_FLOOR = 1e-20

#: Feature names, in vector order.
FEATURE_NAMES: tuple[str, ...] = (
    "lufs", "true_peak_dbtp", "plr_db", "crest_db", "peak_p99_db", "peak_p999_db",
    "st_p10_lu", "st_p50_lu", "st_p90_lu", "side_mid_db",
) + tuple(f"band_{fc:g}_db" for fc in OCTAVE_NOMINAL_HZ)
N_FEATURES = len(FEATURE_NAMES)


def band_shape_db(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """The long-term octave-band shape float64 ``[10]``: each band's power over the bands' total, dB.

    :func:`octave_band_levels_db` (``rfft`` power per octave band, channels summed) minus the
    level of the sum of the bands, so it is independent of the signal's length and level; bands
    above Nyquist, or below :data:`BAND_FLOOR_DB`, read :data:`BAND_FLOOR_DB`.
    """
    levels = octave_band_levels_db(audio, sample_rate)
    power = np.array([0.0 if v is None else 10.0 ** (v / 10.0) for v in levels])
    total = max(float(power.sum()), _POWER_FLOOR)
    with np.errstate(divide="ignore"):
        shape = 10.0 * np.log10(np.maximum(power, _POWER_FLOOR) / total)
    return np.maximum(shape, BAND_FLOOR_DB)


def _check(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim == 1:
        x = np.stack([x, x])
    if x.ndim != 2 or x.shape[0] not in (1, 2):
        raise AudioInputError(f"master_features takes audio [2, samples] (or [1, samples]), got shape {x.shape}")
    if x.shape[0] == 1:
        x = np.concatenate([x, x])
    if int(sample_rate) != sample_rate or sample_rate < 8000:
        raise AudioInputError(f"sample_rate = {sample_rate!r} Hz; give an integer rate of at least 8000 Hz")
    need = int(np.ceil(MIN_WINDOW_S * sample_rate))
    if x.shape[1] < need:
        raise AudioInputError(f"master_features needs at least {MIN_WINDOW_S:g} s ({need} samples at "
                              f"{sample_rate} Hz), got {x.shape[1]} samples; give a longer window")
    if not np.all(np.isfinite(x)):
        raise AudioInputError("master_features: the audio holds NaN or inf; clean the mix first")
    return x


def master_features(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """The feature vector float32 ``[N_FEATURES]`` (:data:`FEATURE_NAMES` order) of a stereo window.

    Args:
        audio: float ``[2, samples]`` (``[1, samples]`` or ``[samples]`` is taken as dual mono), at
            least :data:`MIN_WINDOW_S` seconds.
        sample_rate: Hz.

    Returns:
        The features (see the module docstring for each one's meaning and unit). A silent window
        reads ``lufs`` = -70 (:data:`mixbridge.loudness.SILENT_LUFS`) and floors elsewhere; no error.

    Raises:
        AudioInputError: another shape, a window shorter than :data:`MIN_WINDOW_S`, NaN/inf, a bad rate.
    """
    x = _check(audio, sample_rate)
    lufs = integrated_lufs(x, sample_rate)
    tp = true_peak_dbtp(x, sample_rate)
    tp = max(tp, -120.0) if np.isfinite(tp) else -120.0
    mid, side = 0.5 * (x[0] + x[1]), 0.5 * (x[0] - x[1])
    mag = np.abs(x).ravel()
    peak = max(float(mag.max()), 1e-6)
    crest = crest_factor_db(x)
    p99, p999 = np.quantile(mag, [0.99, 0.999], method="inverted_cdf")
    peak_p99 = 20.0 * np.log10(max(float(p99), 1e-6) / peak)
    peak_p999 = 20.0 * np.log10(max(float(p999), 1e-6) / peak)
    _, short = short_term_lufs(x, sample_rate, hop_s=SHORT_HOP_S, window_s=SHORT_WINDOW_S)
    short = short[short > SILENT_LUFS]
    if lufs <= SILENT_LUFS or short.size == 0:
        st = np.zeros(3)
    else:
        st = np.percentile(short, [10.0, 50.0, 90.0]) - lufs
    side_mid = 10.0 * np.log10(max(float(np.sum(side ** 2)), _POWER_FLOOR) / max(float(np.sum(mid ** 2)), _POWER_FLOOR))
    side_mid = float(np.clip(side_mid, -60.0, 20.0))
    bands = band_shape_db(x, sample_rate)
    head = [lufs, tp, tp - lufs, crest, peak_p99, peak_p999, *st, side_mid]
    return np.asarray(head + list(bands), dtype=np.float32)
