"""The semantic contract (plugins/contract.py): every implementation through the shared classes.

Each ``*Contract`` class (``tests/contracts.py``) measures one row group with the contract's
settings and its tolerances (named once in :mod:`mixbridge.plugins.contract`); a ``Test*``
subclass only says which implementation (or, for :class:`BackendContract`, which render
backend) it runs on. ``known_failures`` lists rows an implementation
fails today, with the reason: such a test is an xfail, and it *fails* once the row
passes, so the entry has to be removed (nothing stays excused silently).

The last part shows that the contract can fail: deliberately wrong renderers (attack x4,
JUCE's 99 % attack time, the octave-bandwidth Q mix-up, a longer reverb, a sample-peak
clipper, a balance pan) are detected.
"""
from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
from scipy.signal import sosfilt

from mixbridge.app.cli import main
from mixbridge.errors import ParamRangeError, UnknownNameError
from mixbridge.plugins import contract as C
from mixbridge.plugins import contract_measures as M
from mixbridge.plugins.dynamics import compress
from mixbridge.plugins.rbj import eq_sections
from mixbridge.plugins.reverb import reverb
from mixbridge.registry import DuplicateNameError
from tests.contracts import BackendContract, CompressorContract, FullContract, LimiterContract, ReverbContract
from tests.support import needs_vst, run_python

SR = 48000


# --------------------------------------------------------------------------- implementations
class TestReference(FullContract):
    """The numpy reference functions themselves (dynamics, rbj, reverb, pan_gains)."""

    implementation = "reference"


class TestBuiltin(BackendContract):
    backend = "builtin"


class TestLiveMasterChain(FullContract):
    implementation = "live"


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="the torch console needs torch==2.13.0")
class TestTorchConsole(FullContract):
    """models/console.py's differentiable console, registered as ``torch`` by its ``register_contract()``
    (the application registers it lazily; the plugins layer never imports models)."""

    implementation = "torch"

    @classmethod
    def setup_class(cls):
        from mixbridge.models.console import register_contract

        register_contract()


_ZAMAXIM = "ZaMaximX2 is a sample-peak limiter: true peak +0.68..+2.05 dB over a -1 dBTP ceiling"


@pytest.mark.vst
@needs_vst
class TestVst(BackendContract):
    """The vst backend with its default maps (zameq2_x2, zamcomp, dragonfly_plate; the master bus's limiter).

    ZamEQ2's wide peaks near Nyquist (Orfanidis designs) are refused, not rendered off the schema:
    the five-band row reads as refused."""

    backend = "vst"
    known_failures: dict[str, str] = {}


@pytest.mark.vst
@needs_vst
class TestMapZamaximX2(LimiterContract):
    """ZaMaximX2 alone: why it is not the vst backend's limiter (the contract catches it)."""

    implementation = "zamaximx2"
    known_failures = {"test_true_peak": _ZAMAXIM}


@pytest.mark.vst
@needs_vst
class TestMapZamCompX2(CompressorContract):
    implementation = "zamcompx2"


@pytest.mark.vst
@needs_vst
class TestMapDragonflyRoom(ReverbContract):
    implementation = "dragonfly_room"
    known_failures = {"rt60_0.5s": "Dragonfly Room's shortest decay is about 1 s (measured 1.02 s for 0.5 s)",
                      "wet_": "Dragonfly Room's wet energy is 5-6 dB under return_db for white noise"}


# --------------------------------------------------------------------------- the measurements' own oracles
def test_schroeder_rt60_of_exponential_noise_is_its_decay():
    """Noise with energy envelope exp(-6 ln10 t / T) decays 60 dB in T: T20 reads T."""
    rng = np.random.default_rng(1)
    for rt60 in (0.4, 2.0):
        n = int(1.5 * rt60 * SR)
        t = np.arange(n) / SR
        h = rng.standard_normal((2, n)) * np.exp(-3.0 * math.log(10.0) * t / rt60)
        assert M.schroeder_rt60(h, SR) == pytest.approx(rt60, rel=0.02)


def test_pan_position_reads_the_constant_power_angle():
    x = np.random.default_rng(2).standard_normal(4800)
    for pan in (-1.0, -0.3, 0.0, 0.8):
        th = (pan + 1.0) * math.pi / 4.0
        assert M.pan_position(np.stack([math.cos(th) * x, math.sin(th) * x])) == pytest.approx(pan, abs=1e-12)


def test_square_wave_has_constant_magnitude():
    x = M.square_wave(0.25, 4801, 44100)
    assert x.shape == (2, 4801) and np.all(np.abs(x) == np.float32(0.25))


def test_isp_signal_true_peak_is_3_db_over_its_samples():
    from mixbridge.loudness import true_peak_dbtp

    x = M.limiter_signal("isp", -1.0, SR)
    assert 20 * math.log10(np.max(np.abs(x))) == pytest.approx(0.0, abs=1e-3)
    assert true_peak_dbtp(x, SR) >= 3.0  # sqrt(2) between the samples (+ the interpolator's onset ripple)


# --------------------------------------------------------------------------- the contract can fail
def _comp(**change):
    def render(audio, sample_rate, params):
        p = dict(params)
        for k, f in change.items():
            p[k] = f(p[k])
        return compress(audio, sample_rate, **p)
    return render


def test_attack_four_times_too_slow_fails():
    rows = M.measure_compressor_timing(_comp(attack_ms=lambda v: 4 * v), SR, [(10.0, 100.0)])
    attack = [r for r in rows if "attack" in r.quantity][0]
    assert attack.status == "fail" and attack.measured == pytest.approx(40.0, rel=0.05)


def test_juce_compressor_with_attack_in_ms_fails():
    """pedalboard.Compressor's attack is JUCE's 99 % time: tau = attack / ln(100) = attack / 4.6."""
    import pedalboard as pb

    def render(audio, sample_rate, p):
        board = pb.Compressor(threshold_db=p["threshold_db"], ratio=p["ratio"], attack_ms=p["attack_ms"],
                              release_ms=p["release_ms"])
        return board(np.ascontiguousarray(audio, np.float32), sample_rate)

    rows = M.measure_compressor_timing(render, SR, [(10.0, 100.0)])
    attack = [r for r in rows if "attack" in r.quantity][0]
    assert attack.status == "fail" and attack.measured < 0.5 * attack.expected


def test_hard_knee_where_a_soft_knee_was_asked_fails():
    rows = M.measure_compressor_static(_comp(knee_db=lambda v: 0.0), SR, [M.STATIC_SETTINGS[1]])
    assert rows[0].status == "fail" and "worst at -30 dBFS" in rows[0].setting


def test_eq_with_octave_bandwidth_passed_as_q_fails():
    """The cookbook mix-up: BW in octaves from 1/Q = 2 sinh(ln2/2 BW), then sent as if it were Q."""

    def render(audio, sample_rate, params):
        p = dict(params)
        for k in ("peak1_q", "peak2_q", "peak3_q"):
            p[k] = 2.0 / math.log(2.0) * math.asinh(1.0 / (2.0 * p[k]))
        sos = np.array([np.concatenate([b, a]) for b, a in eq_sections(p, sample_rate)])
        return sosfilt(sos, audio, axis=1).astype(np.float32)

    rows = M.measure_eq(render, SR, M.EQ_SETTINGS[:3])
    assert [r.status for r in rows] == ["fail"] * 3


def test_reverb_too_long_and_too_loud_fails():
    def render(audio, sample_rate, p):
        return reverb(audio, sample_rate, decay_s=1.5 * p["decay_s"], predelay_ms=p["predelay_ms"],
                      return_db=p["return_db"] + 3.0)

    assert M.measure_reverb_rt60(render, SR, [0.5])[0].status == "fail"
    assert M.measure_reverb_level(render, SR, [(0.5, 0.0)])[0].status == "fail"


def test_sample_peak_clipper_fails_the_true_peak_ceiling():
    def render(audio, sample_rate, p):
        c = 10.0 ** (p["ceiling_dbtp"] / 20.0)
        return np.clip(audio, -c, c)

    rows = M.measure_limiter(render, SR, [M.LIMITER_SETTINGS[1]])
    assert rows[0].status == "fail" and rows[0].measured > rows[0].expected + 2.0


def test_plain_balance_on_stereo_tracks_fails():
    """A balance control (far side closes, near side stays at unity) moves a stereo image too little."""

    def render(audio, sample_rate, p):
        pan = p["pan"]
        if audio.shape[0] == 1:
            th = (pan + 1.0) * math.pi / 4.0
            return np.stack([math.cos(th) * audio[0], math.sin(th) * audio[0]])
        return np.stack([min(1.0, 1.0 - pan) * audio[0], min(1.0, 1.0 + pan) * audio[1]])

    rows = M.measure_pan(render, SR, [-0.6])
    status = {r.setting: r.status for r in rows}
    assert status["mono track, pan -0.6"] == "pass"
    assert status["stereo (dual mono) track, pan -0.6"] == "fail"


# --------------------------------------------------------------------------- errors, refusals, registry, CLI
def test_a_crashing_setting_is_an_error_row_and_the_others_go_on():
    calls = []

    def render(audio, sample_rate, p):
        calls.append(p["decay_s"])
        if p["decay_s"] == 1.2:
            raise RuntimeError("plugin crashed")
        return reverb(audio, sample_rate, **p)

    rows = M.measure_reverb_rt60(render, SR)
    assert [r.status for r in rows] == ["pass", "error", "pass"]
    assert "plugin crashed" in rows[1].note and calls == list(M.RT60_SETTINGS)


def test_a_refused_value_counts_as_passed_and_states_the_range():
    def render(audio, sample_rate, p):
        if p["knee_db"] > 0:
            raise ParamRangeError(f"knee_db = {p['knee_db']} is outside the range this backend renders, [0, 0] dB")
        return compress(audio, sample_rate, **p)

    impl = C.Implementation("hard-knee only", {"compressor": render})
    report = C.run_implementation(impl, SR, rows=["compressor"])
    assert [r.status for r in report.rows[:3]] == ["pass", "refused", "refused"]
    assert report.passed and "[0, 0] dB" in report.table()


def test_registry_refuses_duplicates_and_lists_known_names():
    with pytest.raises(DuplicateNameError, match="already registered"):
        C.register_implementation("builtin", lambda sample_rate: None)
    with pytest.raises(UnknownNameError,
                       match=r"implementations: reference, builtin, vst, live.*shipped maps: .*zamcomp"):
        C.run_contract("no-such-thing", SR)
    with pytest.raises(UnknownNameError, match="known: compressor, eq"):
        C.run_contract("reference", SR, rows=["eqq"])


def test_a_lazy_implementation_is_loaded_on_first_use_only():
    """``register_lazy``: the name is listed at once, the loader runs when the name is asked for."""
    name, calls = "contract-test-lazy", []

    def loader():
        calls.append(name)
        C.register_implementation(name, lambda sample_rate: C.Implementation(name, {"compressor": _comp()}))

    C.register_lazy(name, loader)
    C.register_lazy(name, lambda: calls.append("second loader"))  # idempotent: the first entry stays
    assert name in C.implementation_names(include_lazy=True) and name not in C.implementation_names()
    assert calls == []
    assert C.run_contract(name, SR, rows=["compressor"]).passed
    assert calls == [name] and name in C.implementation_names()
    with pytest.raises(DuplicateNameError):
        C.register_implementation(name, lambda sample_rate: None)


def test_a_lazy_implementation_whose_library_is_missing_is_one_error_row():
    name = "contract-test-lazy-missing"

    def loader():
        raise ImportError("No module named 'torch'")

    C.register_lazy(name, loader)
    report = C.run_contract(name, SR)
    assert not report.passed and report.rows[0].status == "error"
    assert "BackendUnavailableError" in report.rows[0].note and "torch" in report.rows[0].note


def test_an_implementation_that_fails_to_build_is_one_error_row():
    name = "contract-test-broken"
    if name not in C.implementation_names():
        C.register_implementation(name, lambda sample_rate: (_ for _ in ()).throw(ImportError("no such library")))
    report = C.run_contract(name, SR)
    assert not report.passed and report.rows[0].status == "error" and "no such library" in report.rows[0].note


def test_cli_check_prints_the_table_and_exit_status(capsys):
    assert main(["plugins", "check", "reference", "--rows", "pan"]) == 0
    out = capsys.readouterr().out
    assert "pan position" in out and "PASS" in out and "FAIL" not in out
    name = "contract-test-slow-attack"
    if name not in C.implementation_names():
        slow = _comp(attack_ms=lambda v: 4 * v)
        C.register_implementation(name, lambda sample_rate: C.Implementation(name, {"compressor": slow}))
    assert main(["plugins", "check", name]) == 1
    out = capsys.readouterr().out
    assert "compressor attack (63 %)" in out and "FAIL" in out
    assert main(["plugins", "check", "no-such-thing"]) == 2
    assert "implementations: reference" in capsys.readouterr().err


def test_backend_registry_refuses_duplicates_and_lists_names_without_plugin_libraries():
    """``backend_names()`` (every ``--backend``'s choices) and ``plugins --help`` import neither pedalboard,
    DawDreamer nor torch; a taken backend name is refused with a MixbridgeError."""

    from mixbridge.plugins.backend import backend_names, register_backend

    assert backend_names()[:2] == ["builtin", "vst"]
    with pytest.raises(DuplicateNameError, match="already registered; registered: builtin, vst"):
        register_backend("vst", lambda sample_rate, **kw: None)
    code = ("import argparse, sys\n"
            "from mixbridge.plugins.backend import backend_names\n"
            "from mixbridge.plugins import cli\n"
            "assert backend_names()[:2] == ['builtin', 'vst']\n"
            "cli.register(argparse.ArgumentParser().add_subparsers())\n"
            "sys.exit(','.join(m for m in ('pedalboard', 'dawdreamer', 'torch') if m in sys.modules) or 0)")
    run = run_python(code)
    assert run.returncode == 0, run.stderr
