"""One master bus, one stored gain: builtin, vst and the live chain meet the target with it.

The session is solved once (builtin), its ``master.solved_gain_db`` is stored, and every
other path renders the master with that one value: the vst backend (real plugins on the
tracks and the reverb bus, the shared master chain) and the live bus's streaming chain on a
dummy JACK server. Each must land within ``LOUDNESS_TOLERANCE_LU`` of the target without
re-solving (``MasterResult.solved`` stays False).
"""
from __future__ import annotations

import numpy as np
import pytest

from mixbridge.loudness import integrated_lufs, true_peak_dbtp
from mixbridge.plugins.mastering import LOUDNESS_TOLERANCE_LU
from mixbridge.schema import CHANNEL_STRIP, MASTER_BUS
from mixbridge.session import Master, Session, Track
from tests.support import needs_vst

SAMPLE_RATE = 48000
TARGET_LUFS = -14.0
CEILING_DBTP = -1.0


def _stems(seconds: float = 6.0) -> dict[str, np.ndarray]:
    """Three decorrelated, level-modulated noise stems (one mono, two stereo): drum-, bass- and pad-like."""
    rng = np.random.default_rng(7)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    hits = (np.sin(2 * np.pi * 2.0 * t) > 0.7).astype(np.float32)  # 2 Hz bursts drive the compressors
    kick = (rng.standard_normal(n) * hits * 0.4).astype(np.float32)[None, :]
    bass = np.stack([np.sin(2 * np.pi * 55 * t), np.sin(2 * np.pi * 55 * t + 0.3)]).astype(np.float32) * 0.3
    pad = (rng.standard_normal((2, n)) * 0.05 * (1 + 0.5 * np.sin(2 * np.pi * 0.25 * t))).astype(np.float32)
    return {"kick": kick, "bass": bass, "pad": pad}


def _session() -> Session:
    tracks = []
    settings = {
        "kick": {"eq": {"peak1_gain_db": 4.0, "peak1_freq_hz": 800.0, "peak1_q": 1.0},
                 "compressor": {"threshold_db": -24.0, "ratio": 4.0, "attack_ms": 5.0, "release_ms": 80.0,
                                "knee_db": 4.0, "makeup_db": 3.0},
                 "pan": {"pan": -0.2}, "send": {"send_db": -12.0}},
        "bass": {"eq": {"low_shelf_gain_db": 3.0, "low_shelf_freq_hz": 120.0},
                 "compressor": {"threshold_db": -18.0, "ratio": 3.0, "attack_ms": 20.0, "release_ms": 200.0},
                 "fader": {"fader_db": -3.0}},
        "pad": {"eq": {"high_shelf_gain_db": -4.0, "high_shelf_freq_hz": 6000.0},
                "pan": {"pan": 0.4}, "send": {"send_db": -6.0}},
    }
    for name, p in settings.items():
        tracks.append(Track(name, f"{name}.wav", CHANNEL_STRIP.validate(p, name)))
    master = MASTER_BUS.validate({"compressor": {"threshold_db": -20.0, "ratio": 2.0, "attack_ms": 30.0,
                                                 "release_ms": 200.0, "knee_db": 6.0},
                                  "reverb": {"decay_s": 1.5, "predelay_ms": 20.0, "return_db": -3.0},
                                  "limiter": {"ceiling_dbtp": CEILING_DBTP},
                                  "loudness": {"target_lufs": TARGET_LUFS}}, "master")
    return Session(SAMPLE_RATE, tracks, Master(master))


def _render(session: Session, backend: str, audio):
    from mixbridge.plugins.console import render_console
    from mixbridge.plugins.mastering import master

    mix = render_console(session, backend, audio=audio).mix
    return mix, master(mix, session.master.params, SAMPLE_RATE, gain_db=session.master.solved_gain_db)


@pytest.fixture(scope="module")
def solved():
    from mixbridge.plugins.console import render_console
    from mixbridge.plugins.mastering import master

    session, audio = _session(), _stems()
    mix = render_console(session, "builtin", audio=audio).mix
    res = master(mix, session.master.params, SAMPLE_RATE)
    session.master.solved_gain_db = res.gain_db
    return session, audio, mix, res


def test_builtin_solve_meets_target(solved):
    _, _, _, res = solved
    assert res.solved and abs(res.lufs - TARGET_LUFS) <= LOUDNESS_TOLERANCE_LU
    assert res.true_peak_dbtp <= CEILING_DBTP


def test_stored_gain_reproduces_builtin_without_resolving(solved):
    session, audio, _, first = solved
    _, again = _render(session, "builtin", audio)
    assert not again.solved
    np.testing.assert_array_equal(again.audio, first.audio)


@pytest.mark.vst
@needs_vst
def test_vst_meets_target_with_the_stored_gain(solved):
    session, audio, _, _ = solved
    _, res = _render(session, "vst", audio)
    assert not res.solved, res.notices
    assert abs(res.lufs - TARGET_LUFS) <= LOUDNESS_TOLERANCE_LU, res.notices
    assert res.true_peak_dbtp <= CEILING_DBTP


def test_live_chain_meets_target_with_the_stored_gain(solved):
    """The live bus's chain is the master chain: streamed at a JACK-like period it gives the same loudness."""
    from mixbridge.plugins.master_bus import StreamingMaster, master_params_from_session

    session, _, mix, res = solved
    params, _, _ = master_params_from_session(session)
    m = StreamingMaster(SAMPLE_RATE, params, channels=2, max_block=256)
    pad = np.zeros((2, m.latency_samples), np.float32)
    src = np.concatenate([mix, pad], axis=1)
    out = np.concatenate([m.process(src[:, i:i + 256]).copy() for i in range(0, src.shape[1], 256)], axis=1)
    live = out[:, m.latency_samples:]
    assert abs(integrated_lufs(live, SAMPLE_RATE) - TARGET_LUFS) <= LOUDNESS_TOLERANCE_LU
    assert true_peak_dbtp(live, SAMPLE_RATE) <= CEILING_DBTP
    np.testing.assert_allclose(live, res.audio, atol=1e-6)
