"""The mel filterbank: triangular filters equally spaced on the HTK mel scale.

``mel = 2595 log10(1 + f / 700)`` (O'Shaughnessy 1987, as HTK and ``librosa``'s
``htk=True`` use it). Each of the ``n_mels`` triangles rises from the centre of
its lower neighbour to its own centre and falls to the centre of its upper one,
with peak 1 (no area normalisation). The demastering dataset's spectrogram
(:mod:`mixbridge.plugins.datagen.demaster`) and the mel cepstral distortion
metric (:mod:`mixbridge.models.metrics`) both use it.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

#: FFT size and band count when none are given (librosa's defaults).
DEFAULT_N_FFT = 2048
DEFAULT_N_MELS = 128


def hz_to_mel(freq_hz: float | np.ndarray) -> np.ndarray:
    """HTK mel of a frequency in Hz: ``2595 log10(1 + f / 700)``."""
    return 2595.0 * np.log10(1.0 + np.asarray(freq_hz) / 700.0)


def mel_to_hz(mel: float | np.ndarray) -> np.ndarray:
    """Frequency in Hz of an HTK mel value (the inverse of :func:`hz_to_mel`)."""
    return 700.0 * (10.0 ** (np.asarray(mel) / 2595.0) - 1.0)


def mel_filterbank(sample_rate: int, n_fft: int = DEFAULT_N_FFT, n_mels: int = DEFAULT_N_MELS,
                   fmin_hz: float = 0.0, fmax_hz: float | None = None) -> np.ndarray:
    """Triangular HTK-mel filters, float64 ``[n_mels, n_fft // 2 + 1]``, peak 1.

    The band edges are ``n_mels + 2`` points equally spaced in mel from ``fmin_hz`` to
    ``fmax_hz`` (default: Nyquist, ``sample_rate / 2``); the FFT bins are the
    ``n_fft // 2 + 1`` frequencies from 0 Hz to Nyquist. Apply it to a power
    spectrogram ``[bins, frames]`` as ``fb @ power``.
    """
    fmax_hz = sample_rate / 2 if fmax_hz is None else fmax_hz
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin_hz), hz_to_mel(fmax_hz), n_mels + 2))
    freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    fb = np.zeros((n_mels, freqs.size))
    for m in range(n_mels):
        lo, centre, hi = edges[m], edges[m + 1], edges[m + 2]
        up = (freqs - lo) / max(centre - lo, 1e-9)
        down = (hi - freqs) / max(hi - centre, 1e-9)
        fb[m] = np.clip(np.minimum(up, down), 0.0, None)
    return fb


#: Floor of :func:`log_mel_spectrogram`'s power before the log, in dB (silence reads this value).
LOG_MEL_FLOOR_DB = -100.0


def log_mel_spectrogram(audio: np.ndarray, sample_rate: int, *, n_fft: int = DEFAULT_N_FFT,
                        hop_length: int = 1024, n_mels: int = 64, fmin_hz: float = 20.0,
                        fmax_hz: float | None = 16000.0, floor_db: float = LOG_MEL_FLOOR_DB) -> np.ndarray:
    """Log-mel power spectrogram in dB, float32 ``[..., n_mels, frames]`` of ``audio [..., samples]`` (no torch).

    Frames of ``n_fft`` samples every ``hop_length`` (no centre padding: ``frames = 1 +
    (samples - n_fft) // hop_length``; a signal shorter than ``n_fft`` is zero-padded to one
    frame), a periodic Hann window, power ``|X|^2 / (sum w / 2)^2`` (a full-scale sine at a
    bin centre reads 0 dB in its bin), the HTK-mel filters of :func:`mel_filterbank` from
    ``fmin_hz`` to ``fmax_hz`` (capped at Nyquist), then ``10 log10(max(power, 10^(floor_db/10)))``.
    Leading dimensions (tracks, channels) are kept; average channels beforehand for a mono view.

    Raises:
        ValueError: a non-positive size or rate.
    """
    for label, v in (("sample_rate", sample_rate), ("n_fft", n_fft), ("hop_length", hop_length), ("n_mels", n_mels)):
        if int(v) != v or v < 1:
            raise ValueError(f"log_mel_spectrogram: {label} = {v!r} must be a positive integer")
    x = np.asarray(audio, dtype=np.float32)
    if x.shape[-1] < n_fft:
        x = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, n_fft - x.shape[-1])])
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft, axis=-1)[..., ::hop_length, :]
    window = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    from scipy import fft as sp_fft

    spec = sp_fft.rfft(frames * window, axis=-1)
    power = (spec.real ** 2 + spec.imag ** 2) / np.float32((window.sum() / 2.0) ** 2)
    fmax = sample_rate / 2 if fmax_hz is None else min(float(fmax_hz), sample_rate / 2)
    fb = _filterbank32(int(sample_rate), int(n_fft), int(n_mels), float(fmin_hz), float(fmax))
    mel = np.swapaxes(power.astype(np.float32) @ fb.T, -1, -2)
    return (10.0 * np.log10(np.maximum(mel, np.float32(10.0 ** (floor_db / 10.0))))).astype(np.float32)


@lru_cache(maxsize=16)
def _filterbank32(sample_rate: int, n_fft: int, n_mels: int, fmin_hz: float, fmax_hz: float) -> np.ndarray:
    """:func:`mel_filterbank` as float32, cached (read-only)."""
    fb = mel_filterbank(sample_rate, n_fft, n_mels, fmin_hz, fmax_hz).astype(np.float32)
    fb.setflags(write=False)
    return fb
