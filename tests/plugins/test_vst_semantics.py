"""The vst backend renders the schema's meaning (COMPRESSOR_SEMANTICS, REVERB_SEMANTICS) or refuses.

Measured with the semantic contract's functions and tolerances (:mod:`mixbridge.plugins.contract`),
plus oracles the contract rows do not cover: stereo linking, the 44.1 kHz rate, pre-delay, refusals.
"""
from __future__ import annotations

import numpy as np
import pytest

from mixbridge.errors import ParamRangeError
from mixbridge.plugins import contract as C
from mixbridge.plugins import contract_measures as M
from mixbridge.plugins.dynamics import static_reduction_db
from tests.support import needs_vst

pytestmark = [needs_vst, pytest.mark.vst]

SAMPLE_RATES = (48000, 44100)
#: Equal per-sample gains of a linked compressor on both channels: float32 round-off.
LINKED_GAIN_TOLERANCE_DB = 1e-4


def _backend(sample_rate, **maps):
    from mixbridge.plugins.vst import VstBackend

    return VstBackend(sample_rate, maps=maps)


def _renderer(backend, processor):
    return lambda audio, sr, params: backend.process(processor, audio, params, label="contract")


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("comp_map", ["zamcomp", "zamcompx2"])
def test_compressor_maps_meet_the_contract(comp_map, sample_rate):
    """Static curve (knee 0, 4 and 8 dB: the host-made sidechain carries the soft knee) within
    +-0.5 dB and the 63 % attack/release times within +-20 % (no conversion: the knobs ARE the
    time constants on a constant-level step; measured 9.94 ms for 10 ms, 99.4 ms for 100 ms)."""
    b = _backend(sample_rate, compressor=comp_map)
    render = _renderer(b, "compressor")
    settings = M.STATIC_SETTINGS + ((-24.0, 4.0, 8.0, 0.0), (-40.0, 20.0, 0.0, 6.0))
    rows = M.measure_compressor_static(render, sample_rate, settings) + M.measure_compressor_timing(
        render, sample_rate, M.TIMING_SETTINGS + ((50.0, 500.0), (0.5, 10.0)))
    bad = [r for r in rows if r.status != "pass"]
    assert not bad, "\n".join(map(str, bad))


@pytest.mark.parametrize("comp_map", ["zamcomp", "zamcompx2"])
def test_stereo_compressor_is_linked_by_the_peak_of_both_channels(comp_map):
    """COMPRESSOR_SEMANTICS: one gain for both channels, from max_c |x_c| (not an average, not dual mono)."""
    sr = 48000
    b = _backend(sr, compressor=comp_map)
    n = sr // 4
    sq = M.square_wave(1.0, n, sr, channels=1)[0]
    x = np.stack([sq * 10 ** (-6 / 20), sq * 10 ** (-40 / 20)]).astype(np.float32)  # loud L, quiet R
    p = {"threshold_db": -30.0, "ratio": 4.0, "attack_ms": 1.0, "release_ms": 50.0, "knee_db": 0.0, "makeup_db": 0.0}
    for xin in (x, x[::-1].copy()):
        y = b.process("compressor", xin, p)
        g = 20 * np.log10(np.abs(y[:, -2000:]) / np.abs(xin[:, -2000:]))
        assert np.max(np.abs(g[0] - g[1])) <= LINKED_GAIN_TOLERANCE_DB
        want = -static_reduction_db(np.array(-6.0), -30.0, 4.0, 0.0)  # 18 dB, set by the louder channel
        assert np.mean(g) == pytest.approx(float(want), abs=C.STATIC_CURVE_TOL_DB)


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
def test_dragonfly_plate_meets_the_reverb_contract(sample_rate):
    """RT60 (Schroeder T20) within +-15 % over the schema's range and the wet/send energy of white
    noise within +-1 dB of return_db (before this map: -8.9 dB at return 0, decay 0.5 s)."""
    b = _backend(sample_rate)
    render = _renderer(b, "reverb")
    rows = (M.measure_reverb_rt60(render, sample_rate, (0.3, 0.5, 1.2, 3.0, 8.0))
            + M.measure_reverb_level(render, sample_rate, M.WET_LEVEL_SETTINGS + ((0.3, 0.0), (4.0, 3.0))))
    bad = [r for r in rows if r.status != "pass"]
    assert not bad, "\n".join(map(str, bad))


#: The plate's output onset after removing its measured 55.9 ms delay: within 0.2 ms of predelay_ms
#: (its Predelay 0 still starts 4 samples late; 44.1 kHz rounds the delay 2 samples early).
PREDELAY_TOLERANCE_MS = 0.2


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("predelay_ms", [0.0, 10.0, 50.0, 100.0])
def test_plate_predelay_is_the_onset_delay(sample_rate, predelay_ms):
    b = _backend(sample_rate)
    x = np.zeros((2, sample_rate // 2), np.float32)
    x[:, 0] = 1.0
    y = b.process("reverb", x, {"decay_s": 1.0, "predelay_ms": predelay_ms, "return_db": 0.0})
    m = np.max(np.abs(y), axis=0)
    onset_ms = np.argmax(m > 1e-3 * m.max()) / sample_rate * 1e3
    assert onset_ms == pytest.approx(predelay_ms, abs=PREDELAY_TOLERANCE_MS)


@pytest.mark.parametrize("decay_s", [0.1, 9.0])
def test_decay_the_plate_cannot_reach_is_refused_naming_bus_value_and_range(decay_s):
    b = _backend(48000)
    x = np.zeros((2, 4800), np.float32)
    with pytest.raises(ParamRangeError,
                       match=rf"reverb bus: .*reverb.decay_s: {decay_s:g} s is outside what the plugin "
                             r"reaches, \[0.1421, 8.819\] s"):
        b.process("reverb", x, {"decay_s": decay_s, "predelay_ms": 0.0, "return_db": 0.0}, label="reverb bus")


def test_out_of_range_compressor_value_names_the_track():
    b = _backend(48000)
    with pytest.raises(ParamRangeError,
                       match=r"track 'kick': .*compressor.release_ms: plugin parameter 'Release' = 600 ms "
                             r"is outside the plugin's range \[1, 500\] ms"):
        b.process("compressor", np.zeros((1, 256), np.float32), {"release_ms": 600.0}, label="track 'kick'")


# --------------------------------------------------------------------------- the compressor on real material
#: Integrated loudness of the vst compressor vs the reference (the issue's 0.1 LU for one session's renders).
LOUDNESS_TOL_LU = 0.1
#: Per-sample gain of the vst compressor vs the reference: the plugin's float32 arithmetic (measured
#: at most 1.2e-3 dB over gated noise, sine steps and the demo's kick/snare/bass stems).
SAMPLE_GAIN_TOL_DB = 0.01
#: Settings the material tests use: (threshold_db, ratio, attack_ms, release_ms, knee_db, makeup_db).
MATERIAL_SETTINGS = (
    (-24.0, 4.0, 5.0, 80.0, 4.0, 3.0),
    (-18.0, 3.0, 20.0, 200.0, 0.0, 0.0),
    (-30.0, 10.0, 0.5, 20.0, 8.0, 6.0),
    (-12.0, 2.0, 50.0, 500.0, 2.0, 0.0),
)


def _material(kind: str, sample_rate: int) -> np.ndarray:
    """Non-stationary test material, float32 [channels, 3 s]."""
    n = 3 * sample_rate
    t = np.arange(n) / sample_rate
    steps = np.repeat([0.05, 0.5, 0.1, 0.8, 0.02, 0.9], n // 6 + 1)[:n]
    if kind == "gated noise":  # kick-like bursts: 80 ms gates decaying with 30 ms, twice a second
        gate = ((t % 0.5) < 0.08) * np.exp(-(t % 0.5) / 0.03)
        return (np.random.default_rng(1).standard_normal((2, n)) * 0.5 * gate).astype(np.float32)
    if kind == "55 Hz sine steps":
        return (np.sin(2 * np.pi * 55.0 * t) * steps)[None].astype(np.float32)
    # stereo 1 kHz, the channels' levels stepping in opposite order (the link follows the louder)
    return np.stack([np.sin(2 * np.pi * 1000.0 * t) * steps, 0.5 * np.sin(2 * np.pi * 1000.0 * t + 1.0) * steps[::-1]]
                    ).astype(np.float32)


def _compare_with_reference(y: np.ndarray, x: np.ndarray, sample_rate: int, setting) -> None:
    from mixbridge.loudness import integrated_lufs
    from mixbridge.plugins.dynamics import compress

    t, r, a, rel, k, m = setting
    ref = compress(x, sample_rate, threshold_db=t, ratio=r, attack_ms=a, release_ms=rel, knee_db=k, makeup_db=m)

    def lufs(z):
        return integrated_lufs(z if z.shape[0] == 2 else np.vstack([z, z]), sample_rate)

    assert lufs(y) == pytest.approx(lufs(ref), abs=LOUDNESS_TOL_LU)
    audible = np.abs(x) > 1e-4
    gain_err = 20 * np.log10(np.abs(y[audible]) / np.abs(ref[audible]))
    assert np.max(np.abs(gain_err)) <= SAMPLE_GAIN_TOL_DB


@pytest.mark.parametrize("comp_map", ["zamcomp", "zamcompx2"])
@pytest.mark.parametrize("kind", ["gated noise", "55 Hz sine steps", "stereo 1 kHz sine steps"])
def test_compressor_renders_the_reference_on_non_stationary_material(comp_map, kind):
    """The plugin's gain equals dynamics.compress sample by sample, not only on constant-level steps.
    Before the sidechain carried the schema's peak hold, ZamComp's own one-pole rode the waveform:
    gated noise 1.5-3.2 LU louder than the reference, the sine steps 0.3-1.0 LU off."""
    sr = 48000
    b = _backend(sr, compressor=comp_map)
    x = _material(kind, sr)
    for setting in MATERIAL_SETTINGS:
        p = dict(zip(("threshold_db", "ratio", "attack_ms", "release_ms", "knee_db", "makeup_db"), setting))
        _compare_with_reference(b.process("compressor", x, p), x, sr, setting)


def _demo_stems() -> list:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "demo"
    return sorted(p for p in root.glob("*/*.wav") if any(k in p.stem for k in ("kick", "snare", "bass")))


@pytest.mark.skipif(not _demo_stems(), reason="needs the demo/ stems")
def test_compressor_renders_the_reference_on_the_demo_drum_and_bass_stems():
    """Real kick, snare and bass stems (10 s of each, 44.1 kHz): before, 0.3-2.9 LU louder than the reference."""
    import soundfile as sf

    sr = 44100
    b = _backend(sr)
    for path in _demo_stems()[:6]:
        x, file_sr = sf.read(path, dtype="float32", always_2d=True)
        assert file_sr == sr
        x = np.ascontiguousarray(x.T[:, : 10 * sr])
        for setting in MATERIAL_SETTINGS[:2]:
            p = dict(zip(("threshold_db", "ratio", "attack_ms", "release_ms", "knee_db", "makeup_db"), setting))
            _compare_with_reference(b.process("compressor", x, p), x, sr, setting)


#: Automated release_ms raised 20 -> 300 ms over 2 s: where the reference's reduction falls faster for a few
#: ms after a block's new release than the plugin's new Release allows, the plugin lags (measured 0.022 dB).
RELEASE_AUTOMATION_TOL_DB = 0.03


def test_automated_compressor_follows_the_builtin_reference():
    """Block-rate automation (the plugin sees each host block's first value; so does the builtin)."""
    from mixbridge.plugins.builtin import BuiltinBackend
    from mixbridge.session import Automation

    sr = 48000
    x = _material("gated noise", sr)
    p = {"threshold_db": -24.0, "ratio": 4.0, "attack_ms": 5.0, "release_ms": 80.0, "knee_db": 4.0, "makeup_db": 3.0}
    audible = np.abs(x) > 1e-4
    for auto, tol in (({"threshold_db": Automation(times_s=[0.0, 3.0], values=[-30.0, -10.0])}, SAMPLE_GAIN_TOL_DB),
                      ({"release_ms": Automation(times_s=[0.0, 2.0], values=[20.0, 300.0])},
                       RELEASE_AUTOMATION_TOL_DB)):
        ref = BuiltinBackend(sr).process("compressor", x, p, auto)
        y = _backend(sr).process("compressor", x, p, auto)
        assert np.max(np.abs(20 * np.log10(np.abs(y[audible]) / np.abs(ref[audible])))) <= tol


# --------------------------------------------------------------------------- ZamEQ2 peaks vs RBJ
#: The closed-form ZamEQ2 peak (map_laws.zameq2_peak_sections) vs the plugin's measured response.
ZAMEQ2_CLOSED_FORM_TOL_DB = 0.01


def _eq_params(**over):
    from mixbridge.plugins.pluginmap import MAP_PROCESSORS

    p = MAP_PROCESSORS["eq"].defaults()
    p.update(over)
    return p


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("band,freq_hz,q,gain_db", [
    ("peak3", 6000.0, 0.5, 6.0), ("peak3", 10000.0, 2.0, -6.0), ("peak2", 1000.0, 0.7, 12.0),
    ("peak1", 400.0, 0.2, -9.0),
])
def test_zameq2_peak_closed_form_is_what_the_plugin_renders(monkeypatch, sample_rate, band, freq_hz, q, gain_db):
    """The refusal's deviation comes from a closed form; the real plugin (refusal switched off) must render it."""
    import dataclasses

    from mixbridge.plugins import map_laws
    from mixbridge.plugins.map_laws import _biquad_db, zameq2_peak_sections

    name = "zameq2_bandwidth_from_rbj_q"
    monkeypatch.setitem(map_laws.CONVERSIONS, name, dataclasses.replace(map_laws.CONVERSIONS[name], refuse=None))
    b = _backend(sample_rate)
    x = np.zeros((2, M.EQ_RESPONSE_SAMPLES), np.float32)
    x[:, 0] = M.EQ_IMPULSE_AMPLITUDE
    y = b.process("eq", x, _eq_params(**{f"{band}_freq_hz": freq_hz, f"{band}_q": q, f"{band}_gain_db": gain_db}))
    bins = M.eq_frequencies(sample_rate)
    freqs = bins * sample_rate / M.EQ_RESPONSE_SAMPLES
    measured = 20 * np.log10(np.abs(np.fft.rfft(y[0] / M.EQ_IMPULSE_AMPLITUDE))[bins])
    zb, za = zameq2_peak_sections(freq_hz, q, gain_db, sample_rate)
    assert np.max(np.abs(measured - _biquad_db(zb, za, freqs, sample_rate))) <= ZAMEQ2_CLOSED_FORM_TOL_DB


def test_peak_zameq2_renders_off_rbj_is_refused_naming_track_value_and_reachable_q():
    """The contract's 'five bands' peak 3 (Q 0.5 at 6 kHz, +6 dB) is 0.49 dB off RBJ at 16 kHz: refused,
    with the Q range ZamEQ2 renders there; the lower end of that range renders within the contract."""
    import re

    sr = 48000
    b = _backend(sr)
    x = np.zeros((2, M.EQ_RESPONSE_SAMPLES), np.float32)
    x[:, 0] = M.EQ_IMPULSE_AMPLITUDE
    over = {"peak3_freq_hz": 6000.0, "peak3_q": 0.5, "peak3_gain_db": 6.0}
    with pytest.raises(ParamRangeError,
                       match=r"track 'pad': .*eq\.peak3_q: 0\.5 at 6000 Hz, \+6 dB renders 0\.49 dB off "
                             r"the RBJ design .*renders peak3_q (\S+) to 10 within it") as err:
        b.process("eq", x, _eq_params(**over), label="track 'pad'")
    q_lo = float(re.search(r"renders peak3_q (\S+) to", str(err.value)).group(1))
    rows = M.measure_eq(_renderer(b, "eq"), sr, [("reachable", {**over, "peak3_q": q_lo * 1.01})])
    assert rows[0].status == "pass", str(rows[0])
