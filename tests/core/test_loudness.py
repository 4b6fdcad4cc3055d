"""Loudness (BS.1770-4 via pyloudnorm) and the 4x-oversampled true-peak meter."""
from __future__ import annotations

import numpy as np
import pytest

from mixbridge.loudness import SILENT_LUFS, db_to_gain, integrated_lufs, true_peak_dbtp

SR = 48000
#: BS.1770-4: a 997 Hz sine at 0 dBFS on one channel (of a stereo pair, the other silent) reads -3.01 LUFS.
LUFS_TOL = 0.05
#: 4x oversampling with a long polyphase FIR recovers inter-sample peaks to well within this.
TP_TOL_DB = 0.05


def test_997hz_full_scale_sine_reads_minus_3_lufs():
    t = np.arange(SR * 3) / SR
    x = np.stack([np.sin(2 * np.pi * 997 * t), np.zeros_like(t)])
    assert integrated_lufs(x, SR) == pytest.approx(-3.01, abs=LUFS_TOL)


def test_true_peak_finds_inter_sample_peak():
    # fs/4 sine with a 45 degree phase: every sample sits at +-0.7071 (-3.01 dBFS)
    # but the waveform peaks at 1.0 between samples: 0 dBTP
    # (fades of 4096 samples keep the truncation edges from ringing past the body's peak)
    n = np.arange(SR)
    fade = np.ones(SR)
    ramp = np.sin(np.linspace(0, np.pi / 2, 4096)) ** 2
    fade[:4096], fade[-4096:] = ramp, ramp[::-1]
    x = (np.sin(2 * np.pi * n / 4 + np.pi / 4) * fade)[None, :]
    assert 20 * np.log10(np.abs(x).max()) == pytest.approx(-3.01, abs=0.01)
    assert true_peak_dbtp(x, SR) == pytest.approx(0.0, abs=TP_TOL_DB)


def test_minus_6_02_db_halves_loudness_by_6_02_lu():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, SR * 2)) * 0.1
    assert integrated_lufs(x * 0.5, SR) == pytest.approx(integrated_lufs(x, SR) - 6.0206, abs=1e-6)


def test_silence():
    assert integrated_lufs(np.zeros((2, SR)), SR) == -70.0
    assert true_peak_dbtp(np.zeros((2, SR))) == float("-inf")


def test_true_peak_meter_equals_scipy_resample_poly_oversampling():
    """The polyphase meter computes exactly resample_poly(x, 4, 1)'s samples (odd lengths, edges, mono)."""
    from scipy.signal import resample_poly

    rng = np.random.default_rng(4)
    for channels, n in ((1, 1), (2, 2), (1, 5), (2, 17), (2, 4801), (1, 70001)):
        x = rng.standard_normal((channels, n))
        up = resample_poly(x, 4, 1, axis=-1)
        want = 20 * np.log10(max(np.abs(up).max(), np.abs(x).max()))
        assert true_peak_dbtp(x, 48000) == pytest.approx(want, abs=1e-12)


def test_db_to_gain_halves_at_minus_6_02_db_and_keeps_the_shape():
    assert float(db_to_gain(-20 * np.log10(2.0))) == pytest.approx(0.5, rel=1e-15)
    assert float(db_to_gain(-np.inf)) == 0.0 and float(db_to_gain(0.0)) == 1.0
    g = db_to_gain(np.array([[0.0, 20.0], [-40.0, 6.0]]))
    assert g.shape == (2, 2) and g.dtype == np.float64
    np.testing.assert_allclose(g, [[1.0, 10.0], [0.01, 10 ** 0.3]], rtol=1e-15)


def test_silence_and_too_short_signals_read_the_absolute_gate():
    """One silence rule for every caller (the metrics' loudness too): gated out or < 400 ms -> -70 LUFS."""
    assert integrated_lufs(np.zeros((2, SR)), SR) == SILENT_LUFS == -70.0
    short = np.sin(2 * np.pi * 997 * np.arange(int(0.3 * SR)) / SR)[None]
    assert integrated_lufs(short, SR) == SILENT_LUFS
