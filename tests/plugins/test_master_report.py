"""The mastering report's gain-reduction traces (``plugins/master_report.py``): a stage that is a known
gain reads that gain; the compressor's trace from the bus's own stages never reads a gain above 0 dB."""
from __future__ import annotations

import math

import numpy as np
import pytest

from mixbridge.plugins.master_report import gain_reduction_db
from mixbridge.plugins.master_rules import probe_render
from mixbridge.schema import MASTER_BUS

SR = 48000


def test_a_constant_gain_reads_its_db():
    x = np.random.default_rng(0).standard_normal((2, SR)).astype(np.float32) * 0.1
    t, g = gain_reduction_db(x, x * np.float32(0.5), SR)
    assert len(t) == 20 and t[0] == pytest.approx(0.025)
    np.testing.assert_allclose(g, 20 * math.log10(0.5), atol=1e-5)  # -6.02 dB


def test_silent_blocks_are_left_out_and_compression_only_reduces():
    t = np.arange(2 * SR) / SR
    x = np.stack([np.sin(2 * np.pi * 200 * t) * np.where(t < 1.0, 0.9, 0.0)] * 2).astype(np.float32)
    p = MASTER_BUS.defaults()
    p["compressor"] = dict(p["compressor"], threshold_db=-20.0, ratio=4.0, attack_ms=1.0, release_ms=50.0)
    eq_stage, comp_stage = probe_render(x, SR, p, "eq"), probe_render(x, SR, p, "compressor")
    _, g = gain_reduction_db(eq_stage, comp_stage, SR)
    assert np.isnan(g[-5:]).all()  # the silent second half has no trace
    assert np.nanmax(g) <= 1e-6 and np.nanmin(g) < -10.0  # 0.9 peak, 19 dB over -20 dB at 4:1: ~14 dB
