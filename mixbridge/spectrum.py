"""Spectrum and dynamics measurements of a finished stereo mix (numpy/scipy, torch-free).

The one place for band levels and the measurements mastering decides from and is scored with:

======================================  ===========================================================
measurement                             definition and source
======================================  ===========================================================
:func:`octave_band_levels_db`           level per octave band (nominal centres 31.5 Hz .. 16 kHz,
                                        exact centres ``1000 * 2^k`` Hz, edges ``fc / sqrt 2 ..
                                        fc * sqrt 2``, the top edge cut at Nyquist): ``10 log10`` of
                                        the numpy ``rfft`` power summed over the band's bins and the
                                        channels, over the number of samples (``mixbridge evaluate``'s)
:func:`ltas_db`                         long-term average spectrum in octave or third-octave bands
                                        (IEC 61260 base-2 centres, ``1000 * 2^(k/3)`` Hz for thirds),
                                        **relative to the integrated loudness**: ``10 log10`` of the
                                        band power of a Welch PSD (scipy, Hann, 8192 samples, 50 %
                                        overlap, channels summed) minus the BS.1770-4 integrated
                                        loudness, so a gain change leaves it unchanged
:func:`crest_factor_db`                 sample peak over RMS (all channels), dB
:func:`plr_db`                          peak-to-loudness ratio: true peak (dBTP, BS.1770-4 Annex 2)
                                        minus integrated loudness (LUFS), dB (EBU Tech 3342 / R128's PLR)
:func:`short_term_lufs`                 short-term loudness (EBU Tech 3341: 3 s window, K-weighting of
                                        BS.1770-4 by pyloudnorm's filters) every ``hop_s``
:func:`band_level_error_db`             mean ``|a_k - b_k|`` of two signals' band levels over the bands
                                        both have, optionally leaving out bands far below the loudest
                                        in both (the pre-master round trip's octave error and the
                                        mastering table's tonal error)
======================================  ===========================================================

``octave_band_levels_db`` and ``octave_band_edges_hz`` moved here from
:mod:`mixbridge.models.evaluation` (which re-exports them). Every function takes float
``[channels, samples]`` audio (1-D is read as mono) and its ``sample_rate`` in Hz.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import AudioInputError
from .loudness import SILENT_LUFS, integrated_lufs, true_peak_dbtp

__all__ = ["OCTAVE_CENTRES_HZ", "OCTAVE_NOMINAL_HZ", "THIRD_OCTAVE_CENTRES_HZ", "BAND_POWER_FLOOR", "LTAS_NFFT",
           "band_edges_hz", "octave_band_edges_hz", "octave_band_levels_db", "ltas_db", "band_centres_hz",
           "crest_factor_db", "plr_db", "short_term_lufs", "band_level_error_db"]

#: Exact octave-band centres ``1000 * 2^k`` Hz, k = -5..4 (nominal 31.5, 63, 125, ..., 16000 Hz).
OCTAVE_CENTRES_HZ = tuple(1000.0 * 2.0 ** k for k in range(-5, 5))
#: The nominal names of the octave bands (IEC 61260).
OCTAVE_NOMINAL_HZ = (31.5, 63, 125, 250, 500, 1000, 2000, 4000, 8000, 16000)
#: Exact third-octave centres ``1000 * 2^(k/3)`` Hz, k = -15..13 (nominal 31.5 Hz .. 20 kHz, IEC 61260 base 2).
THIRD_OCTAVE_CENTRES_HZ = tuple(1000.0 * 2.0 ** (k / 3.0) for k in range(-15, 14))
#: Floor of band powers before the log (digital silence reads a finite level).
BAND_POWER_FLOOR = 1e-30
#: Welch segment of :func:`ltas_db`, samples (5.4 Hz bins at 44.1 kHz: 4 bins in the 31.5 Hz third).
LTAS_NFFT = 8192
#: :func:`ltas_db` runs Welch over chunks of this many samples and averages them (bounded memory on
#: a whole album track: one chunk's segments at a time).
LTAS_CHUNK = 1 << 20
#: Short-term loudness window, s (EBU Tech 3341).
SHORT_TERM_WINDOW_S = 3.0
_BANDS = {"octave": (OCTAVE_CENTRES_HZ, 1.0), "third": (THIRD_OCTAVE_CENTRES_HZ, 1.0 / 3.0)}


def _as_audio(x, what: str = "audio") -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise AudioInputError(f"{what} has shape {tuple(np.shape(x))}; give [channels, samples] audio")
    if not np.all(np.isfinite(a)):
        raise AudioInputError(f"{what} holds NaN or inf samples; give finite audio")
    return a


def band_centres_hz(bands: str) -> tuple[float, ...]:
    """The exact centres of ``bands`` (``"octave"`` or ``"third"``), Hz.

    Raises:
        AudioInputError: another name (the message lists both).
    """
    if bands not in _BANDS:
        raise AudioInputError(f"bands = {bands!r}; use 'octave' or 'third'")
    return _BANDS[bands][0]


def band_edges_hz(centres_hz, fraction: float, sample_rate: int) -> list[tuple[float, float] | None]:
    """``(low, high)`` Hz of fractional-octave bands ``fc * 2^(-fraction/2) .. fc * 2^(fraction/2)``, the high
    edge cut at Nyquist; ``None`` for a band whose low edge is at or above Nyquist."""
    nyquist = sample_rate / 2.0
    half = 2.0 ** (fraction / 2.0)
    out: list[tuple[float, float] | None] = []
    for fc in centres_hz:
        lo, hi = fc / half, fc * half
        out.append(None if lo >= nyquist else (lo, min(hi, nyquist)))
    return out


def octave_band_edges_hz(sample_rate: int) -> list[tuple[float, float] | None]:
    """``(low, high)`` Hz of each band of :data:`OCTAVE_CENTRES_HZ`: ``fc / sqrt 2 .. fc * sqrt 2``, the high edge
    cut at Nyquist; ``None`` for a band whose low edge is at or above Nyquist."""
    nyquist = sample_rate / 2.0
    out: list[tuple[float, float] | None] = []
    for fc in OCTAVE_CENTRES_HZ:
        lo, hi = fc / math.sqrt(2.0), fc * math.sqrt(2.0)
        out.append(None if lo >= nyquist else (lo, min(hi, nyquist)))
    return out


def _band_sums(power: np.ndarray, freqs: np.ndarray, edges, nyquist: float) -> list[float | None]:
    out: list[float | None] = []
    for e in edges:
        if e is None:
            out.append(None)
            continue
        lo, hi = e
        sel = (freqs >= lo) & ((freqs < hi) | ((hi >= nyquist) & (freqs <= hi)))
        out.append(float(power[sel].sum()))
    return out


def octave_band_levels_db(audio: np.ndarray, sample_rate: int) -> list[float | None]:
    """Level in dB of each octave band of ``audio [channels, samples]``: ``10 log10`` of the power of the numpy
    ``rfft`` bins with ``low <= f < high`` (:func:`octave_band_edges_hz`; ``high`` included for a band cut at
    Nyquist), summed over the channels and divided by the number of samples (so a full-scale sine reads
    about ``20 log10(n / 2) - 10 log10 n``; only differences are used). ``None`` above Nyquist.

    Raises:
        AudioInputError: audio that is not ``[channels, samples]`` or holds NaN/inf.
    """
    a = _as_audio(audio)
    n = a.shape[1]
    power = np.sum(np.abs(np.fft.rfft(a, axis=-1)) ** 2, axis=0) / n
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    sums = _band_sums(power, freqs, octave_band_edges_hz(sample_rate), sample_rate / 2.0)
    return [None if s is None else float(10.0 * np.log10(max(s, BAND_POWER_FLOOR))) for s in sums]


def band_level_error_db(levels_a, levels_b, *, skip_below_db: float | None = None
                        ) -> tuple[float, list[float | None], list[bool]]:
    """The mean absolute difference of two signals' band levels, dB, with the per-band differences.

    Args:
        levels_a, levels_b: band levels in dB, one per band, in the same bands (e.g.
            :func:`octave_band_levels_db` of each signal, or those minus each signal's loudness); ``None``
            (or NaN) where a signal has no such band (above Nyquist).
        skip_below_db: where given (a negative dB figure), a band more than ``-skip_below_db`` dB below the
            loudest band of its signal in *both* signals (``a_k - max a <= skip_below_db`` and likewise for
            ``b``) is left out: nothing to match there. ``None``: every band both signals have counts.

    Returns:
        ``(error_db, difference_db, used)``: the mean of ``|a_k - b_k|`` over the used bands (NaN when none
        is), ``a_k - b_k`` per band (``None`` where either level is missing), and which bands were used.

    Raises:
        AudioInputError: ``levels_a`` and ``levels_b`` of different lengths (not the same bands).
    """
    def level(x) -> float | None:
        return None if x is None or not math.isfinite(x) else float(x)

    a, b = [level(x) for x in levels_a], [level(x) for x in levels_b]
    if len(a) != len(b):
        raise AudioInputError(f"{len(a)} and {len(b)} band levels; give both signals' levels in the same bands")
    top_a = max((x for x in a if x is not None), default=0.0)
    top_b = max((y for y in b if y is not None), default=0.0)
    diff: list[float | None] = []
    used: list[bool] = []
    for x, y in zip(a, b):
        diff.append(None if x is None or y is None else x - y)
        used.append(x is not None and y is not None
                    and (skip_below_db is None or x - top_a > skip_below_db or y - top_b > skip_below_db))
    kept = [abs(d) for d, u in zip(diff, used) if u and d is not None]
    return (float(np.mean(kept)) if kept else math.nan), diff, used


def _welch_psd(a: np.ndarray, sample_rate: int, nfft: int) -> tuple[np.ndarray, np.ndarray]:
    """Channel-summed Welch PSD (power per Hz) of ``a [channels, samples]``, averaged over chunks of
    :data:`LTAS_CHUNK` samples weighted by their segment counts."""
    from scipy.signal import welch

    n = a.shape[1]
    nperseg = min(nfft, n)
    step = max(LTAS_CHUNK, nperseg)
    total = None
    weight = 0.0
    freqs = None
    for start in range(0, n, step):
        chunk = a[:, start:start + step]
        if chunk.shape[1] < nperseg:
            if total is not None:
                break  # a short tail: already covered by the segments before it
        seg = min(nperseg, chunk.shape[1])
        freqs, pxx = welch(chunk, fs=sample_rate, window="hann", nperseg=seg, noverlap=seg // 2, axis=-1)
        w = float(max(1, (chunk.shape[1] - seg) // (seg - seg // 2) + 1))
        p = pxx.sum(axis=0) * w
        total = p if total is None else total + p
        weight += w
    assert total is not None and freqs is not None
    return freqs, total / weight


def ltas_db(audio: np.ndarray, sample_rate: int, *, bands: str = "third", relative: bool = True,
            nfft: int = LTAS_NFFT) -> np.ndarray:
    """Long-term average spectrum of ``audio`` in ``bands`` (``"octave"``: :data:`OCTAVE_CENTRES_HZ`,
    ``"third"``: :data:`THIRD_OCTAVE_CENTRES_HZ`), dB, float64 ``[bands]``.

    Each band's level is ``10 log10`` of the Welch PSD (Hann, ``nfft`` samples, 50 % overlap, channels
    summed) integrated over the band's bins (edges ``fc * 2^(+-1/2)`` octave or ``2^(+-1/6)``); with
    ``relative`` the BS.1770-4 integrated loudness (LUFS) is subtracted, so the result does not depend on
    the level: it is the tonal balance a mastering EQ aims at. Bands above Nyquist are NaN.

    Raises:
        AudioInputError: bad audio; a silent or too short signal when ``relative`` (no loudness to refer to).
    """
    a = _as_audio(audio)
    centres, fraction = band_centres_hz(bands), _BANDS[bands][1]
    freqs, psd = _welch_psd(a, sample_rate, nfft)
    df = float(freqs[1] - freqs[0]) if freqs.size > 1 else float(sample_rate)
    sums = _band_sums(psd * df, freqs, band_edges_hz(centres, fraction, sample_rate), sample_rate / 2.0)
    out = np.array([np.nan if s is None else 10.0 * math.log10(max(s, BAND_POWER_FLOOR)) for s in sums])
    if relative:
        lufs = integrated_lufs(a, sample_rate)
        if lufs <= SILENT_LUFS:
            raise AudioInputError(f"the audio is silent or shorter than one 400 ms loudness block "
                                  f"({a.shape[1] / sample_rate:.2f} s, {lufs:.1f} LUFS); its spectrum relative to "
                                  "its loudness is undefined: give audible audio")
        out -= lufs
    return out


def crest_factor_db(audio: np.ndarray) -> float:
    """Crest factor of ``audio [channels, samples]``: ``20 log10(sample peak / RMS)`` over all channels, dB
    (0 dB for digital silence).

    Raises:
        AudioInputError: bad audio.
    """
    a = _as_audio(audio)
    peak = float(np.max(np.abs(a)))
    rms = float(np.sqrt(np.mean(a * a)))
    return 20.0 * math.log10(peak / rms) if peak > 0 and rms > 0 else 0.0


def plr_db(audio: np.ndarray, sample_rate: int) -> float:
    """Peak-to-loudness ratio: :func:`~mixbridge.loudness.true_peak_dbtp` minus
    :func:`~mixbridge.loudness.integrated_lufs`, dB (EBU R128 s1's PLR).

    Raises:
        AudioInputError: bad audio, or silent audio (no loudness).
    """
    a = _as_audio(audio)
    lufs = integrated_lufs(a, sample_rate)
    if lufs <= SILENT_LUFS:
        raise AudioInputError(f"the audio is silent ({lufs:.1f} LUFS); its PLR is undefined: give audible audio")
    return float(true_peak_dbtp(a, sample_rate) - lufs)


def short_term_lufs(audio: np.ndarray, sample_rate: int, *, hop_s: float = 0.1,
                    window_s: float = SHORT_TERM_WINDOW_S) -> tuple[np.ndarray, np.ndarray]:
    """Short-term loudness (EBU Tech 3341): ``-0.691 + 10 log10`` of the channel sum of the K-weighted mean
    square over a ``window_s`` window (BS.1770-4's K-weighting: pyloudnorm's two filters), every ``hop_s``.

    Returns:
        ``(times_s, lufs)`` float64 ``[frames]``: each window's end time in s (the first at
        ``window_s``, or at the end of a shorter signal) and its loudness, floored at
        :data:`~mixbridge.loudness.SILENT_LUFS`.

    Raises:
        AudioInputError: bad audio, or ``hop_s``/``window_s`` not positive.
    """
    import pyloudnorm as pyln

    if not (hop_s > 0 and window_s > 0):
        raise AudioInputError(f"hop_s = {hop_s}, window_s = {window_s}: give positive durations in s")
    a = _as_audio(audio)
    meter = pyln.Meter(int(sample_rate))
    k = a.copy()
    for stage in meter._filters.values():  # the K-weighting of BS.1770-4 (pre-filter, RLB high-pass)
        for ch in range(k.shape[0]):
            k[ch] = stage.apply_filter(k[ch])
    power = np.concatenate([[0.0], np.cumsum(np.sum(k * k, axis=0))])
    n = a.shape[1]
    win = min(n, max(1, int(round(window_s * sample_rate))))
    hop = max(1, int(round(hop_s * sample_rate)))
    ends = np.arange(win, n + 1, hop)
    ms = (power[ends] - power[ends - win]) / win
    with np.errstate(divide="ignore"):
        lufs = -0.691 + 10.0 * np.log10(np.maximum(ms, 0.0))
    return ends / float(sample_rate), np.maximum(lufs, SILENT_LUFS)
