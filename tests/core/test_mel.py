"""The one mel filterbank (:func:`mixbridge.mel.mel_filterbank`) against the HTK mel formula."""
from __future__ import annotations

import numpy as np

from mixbridge.mel import hz_to_mel, mel_filterbank, mel_to_hz

SAMPLE_RATE = 48000
N_FFT = 2048


def test_mel_scale_anchor_and_inverse() -> None:
    # 1000 Hz is 1000 mel on the HTK scale: 2595 log10(1 + 1000/700) = 999.99
    assert abs(float(hz_to_mel(1000.0)) - 999.9855) < 1e-3
    f = np.array([0.0, 100.0, 4000.0, 20000.0])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(f)), f, rtol=1e-12, atol=1e-9)


def test_triangles_peak_at_their_centres_and_overlap_to_one() -> None:
    n_mels = 40
    fb = mel_filterbank(SAMPLE_RATE, N_FFT, n_mels)
    assert fb.shape == (n_mels, N_FFT // 2 + 1) and fb.min() >= 0.0 and fb.max() <= 1.0
    freqs = np.linspace(0.0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    edges = mel_to_hz(np.linspace(0.0, hz_to_mel(SAMPLE_RATE / 2), n_mels + 2))
    # a bin between two centres is shared by two neighbouring triangles summing to 1 (linear in Hz)
    inside = (freqs > edges[1]) & (freqs < edges[-2])
    np.testing.assert_allclose(fb.sum(axis=0)[inside], 1.0, atol=1e-12)
    # each triangle is largest at the bin nearest its centre
    for m in range(2, n_mels):
        assert abs(freqs[np.argmax(fb[m])] - edges[m + 1]) <= SAMPLE_RATE / N_FFT
