"""The mel filterbank: triangular filters equally spaced on the HTK mel scale.

``mel = 2595 log10(1 + f / 700)`` (O'Shaughnessy 1987, as HTK and ``librosa``'s
``htk=True`` use it). Each of the ``n_mels`` triangles rises from the centre of
its lower neighbour to its own centre and falls to the centre of its upper one,
with peak 1 (no area normalisation). The demastering dataset's spectrogram
(:mod:`mixbridge.plugins.datagen.demaster`) and the mel cepstral distortion
metric (:mod:`mixbridge.models.metrics`) both use it.
"""
from __future__ import annotations

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
