"""Shared contract test base classes (STYLE.md point 13): one class per kind of component.

A test file subclasses a base class once per component (a mixer, a backend, a DAW profile) and
pytest runs every inherited test on it, as Neural Amp Modeler's tests do for its models. Each
base class says which attributes a subclass sets. Owners add their class here, one class each.
"""
from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np
import pytest

from mixbridge.plugins import contract_measures as M
from mixbridge.schema import CHANNEL_STRIP, MASTER_BUS
from tests.support import run_python


class MixerContract:
    """Every registered mixer (``mixbridge.models.mixers``): subclass as ``TestXxxMixer`` with
    ``mixer_name`` and, when the mixer needs one, ``config`` (``get_mixer(mixer_name, **config)``).

    A subclass needs a ``stems`` fixture (a :class:`mixbridge.audio.StemSet`); the inherited tests check:
    registered with a plain one-line summary; a session inside the schema's ranges with one track per
    stem and the requested master loudness; the same session twice for one seed; the provenance
    naming the mixer; importing the registry and building the mixer without torch.
    """

    mixer_name: ClassVar[str] = ""
    config: ClassVar[dict[str, Any]] = {}
    #: Longest summary ``mixbridge mixers`` prints on one 100-column line after the name columns.
    MAX_SUMMARY_CHARS = 100
    #: A master target other than the default -14 LUFS, so passing it through is tested.
    TARGET_LUFS = -16.0

    def make(self):
        """The mixer under test."""
        from mixbridge.models.mixers import get_mixer

        return get_mixer(self.mixer_name, **self.config)

    def test_registered_with_a_plain_summary(self):
        from mixbridge.models.mixers import mixer_names, mixer_summary

        assert self.mixer_name in mixer_names()
        summary = mixer_summary(self.mixer_name)
        assert summary and "\n" not in summary and len(summary) <= self.MAX_SUMMARY_CHARS
        assert not any(mark in summary for mark in ("`", ":class:", ":func:", "(see ")), summary
        assert self.make().name == self.mixer_name

    def test_session_is_inside_the_schema(self, stems):
        session = self.make()(stems, seed=0, target_lufs=self.TARGET_LUFS)
        assert [t.name for t in session.tracks] == [s.name for s in stems.stems]
        for track in session.tracks:
            for path, p in CHANNEL_STRIP.flat_params():
                proc, _, name = path.partition(".")
                v = track.params[proc][name]
                assert p.min <= v <= p.max, f"{track.name} {path} = {v} outside {p.range_text()}"
        for path, p in MASTER_BUS.flat_params():
            proc, _, name = path.partition(".")
            assert p.min <= session.master.params[proc][name] <= p.max, path
        assert session.master.params["loudness"]["target_lufs"] == self.TARGET_LUFS
        session.validate()  # the session file's own checks (raises on any violation)
        assert session.provenance["mixer"] == self.mixer_name

    def test_deterministic_with_a_seed(self, stems):
        a = json.dumps(self.make()(stems, seed=7).to_json(), sort_keys=True)
        b = json.dumps(self.make()(stems, seed=7).to_json(), sort_keys=True)
        assert a == b

    def test_registry_and_mixer_import_without_torch(self):
        code = ("import sys; from mixbridge.models.mixers import get_mixer; "
                f"get_mixer({self.mixer_name!r}, **{self.config!r}); "
                "sys.exit(1 if 'torch' in sys.modules else 0)")
        run = run_python(code)
        assert run.returncode == 0, run.stderr


# ============================================================================ render backends and implementations (H3)
#: Sample rate of the semantic-contract classes below (Hz).
CONTRACT_SAMPLE_RATE = 48000


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text).strip("_")


def check_rows(rows, request, known: dict[str, str]) -> None:
    """Assert every contract row passed (or was refused); honour a class's ``known_failures``.

    A test whose id contains a ``known_failures`` key is an xfail with that reason, and it
    *fails* once its rows pass, so the entry has to be removed (nothing stays excused silently).
    """
    from mixbridge.plugins.contract import ContractReport

    assert rows, "the measurement produced no rows"
    table = ContractReport("test", CONTRACT_SAMPLE_RATE, list(rows)).table()
    reason = next((why for key, why in known.items() if key in request.node.name), None)
    ok = all(r.passed for r in rows)
    if reason is not None:
        if ok:
            pytest.fail(f"known failure now passes; remove it from known_failures: {request.node.name}\n{table}")
        pytest.xfail(reason)
    assert ok, table


class ImplementationContract:
    """Base of the semantic-contract classes: subclass with ``implementation``, a name that
    :func:`mixbridge.plugins.contract.resolve_implementation` knows (a registered implementation,
    a shipped map, a map path), and ``known_failures`` ``{substring of the test id: reason}``.

    The measurements and tolerances are the contract's own (:mod:`mixbridge.plugins.contract_measures`,
    :mod:`mixbridge.plugins.contract`): a test here only picks the settings.
    """

    implementation: ClassVar[str] = ""
    known_failures: ClassVar[dict[str, str]] = {}

    @pytest.fixture(scope="class")
    @classmethod
    def impl(cls):
        from mixbridge.plugins.contract import resolve_implementation

        impls = resolve_implementation(cls.implementation, CONTRACT_SAMPLE_RATE)
        assert len(impls) == 1
        yield impls[0]
        impls[0].close()

    def renderer(self, impl, group):
        """The implementation's renderer of row group ``group`` (skips when it renders none)."""
        if group not in impl.rows:
            pytest.skip(f"{impl.name} does not render {group}")
        return impl.renderers[group]


class CompressorContract(ImplementationContract):
    """Compressor static curve and 63 % time constants vs the schema (``STATIC_SETTINGS``, ``TIMING_SETTINGS``
    of :mod:`mixbridge.plugins.contract_measures`)."""

    @pytest.mark.parametrize("setting", M.STATIC_SETTINGS, ids=lambda s: "static_T{:g}_R{:g}_W{:g}_M{:g}".format(*s))
    def test_static_curve(self, impl, setting, request):
        check_rows(M.measure_compressor_static(self.renderer(impl, "compressor"), CONTRACT_SAMPLE_RATE, [setting]),
                   request, self.known_failures)

    @pytest.mark.parametrize("setting", M.TIMING_SETTINGS, ids=lambda s: "attack{:g}_release{:g}".format(*s))
    def test_time_constants(self, impl, setting, request):
        check_rows(M.measure_compressor_timing(self.renderer(impl, "compressor"), CONTRACT_SAMPLE_RATE, [setting]),
                   request, self.known_failures)


class EqContract(ImplementationContract):
    """EQ magnitude vs the RBJ design, 20 Hz - 16 kHz."""

    @pytest.mark.parametrize("setting", M.EQ_SETTINGS, ids=lambda s: _slug(s[0]))
    def test_magnitude_matches_rbj(self, impl, setting, request):
        check_rows(M.measure_eq(self.renderer(impl, "eq"), CONTRACT_SAMPLE_RATE, [setting]), request,
                   self.known_failures)


class LimiterContract(ImplementationContract):
    """Limiter output true peak (BS.1770-4) under its ceiling."""

    @pytest.mark.parametrize("setting", M.LIMITER_SETTINGS, ids=lambda s: f"{s[1]}_{s[2]:g}")
    def test_true_peak_under_ceiling(self, impl, setting, request):
        check_rows(M.measure_limiter(self.renderer(impl, "limiter"), CONTRACT_SAMPLE_RATE, [setting]), request,
                   self.known_failures)


class ReverbContract(ImplementationContract):
    """Reverb RT60 (Schroeder T20) vs ``decay_s`` and wet loudness vs ``return_db``."""

    @pytest.mark.parametrize("decay_s", M.RT60_SETTINGS, ids=lambda d: f"rt60_{d:g}s")
    def test_rt60(self, impl, decay_s, request):
        check_rows(M.measure_reverb_rt60(self.renderer(impl, "reverb"), CONTRACT_SAMPLE_RATE, [decay_s]), request,
                   self.known_failures)

    @pytest.mark.parametrize("setting", M.WET_LEVEL_SETTINGS, ids=lambda s: "wet_{:g}s_{:g}dB".format(*s))
    def test_wet_level(self, impl, setting, request):
        check_rows(M.measure_reverb_level(self.renderer(impl, "reverb"), CONTRACT_SAMPLE_RATE, [setting]), request,
                   self.known_failures)


class PanContract(ImplementationContract):
    """Pan position and constant power of a mono and a dual-mono track."""

    def test_pan_position_and_power(self, impl, request):
        check_rows(M.measure_pan(self.renderer(impl, "pan"), CONTRACT_SAMPLE_RATE), request, self.known_failures)


class FullContract(CompressorContract, EqContract, LimiterContract, ReverbContract, PanContract):
    """Every row group (a subclass skips the groups its implementation does not render)."""


def session_renderer(backend, processor: str):
    """A contract renderer (:data:`mixbridge.plugins.contract.Renderer`) through a whole session.

    Each call renders a one-track session (the test audio as its stereo source; ``processor``'s
    parameters set, everything else neutral: centre pan, fader 0 dB, send off) with
    :func:`mixbridge.plugins.console.render_console` on ``backend`` and returns the mix
    ``[2, samples]``: the console's path, not only ``backend.process``.
    """
    from mixbridge.plugins.console import render_console
    from mixbridge.schema import MASTER_BUS
    from mixbridge.session import Master, Session, Track

    def render(audio, sample_rate, params):
        track = Track("contract", "contract.wav")
        track.params[processor].update({k: float(v) for k, v in params.items()})
        session = Session(int(sample_rate), [track], Master(MASTER_BUS.defaults()))
        stereo = np.ascontiguousarray(np.broadcast_to(audio, (2, audio.shape[1])) if audio.shape[0] == 1 else audio,
                                      dtype=np.float32)
        return render_console(session, backend, audio={"contract": stereo}).mix

    return render


class BackendContract(FullContract):
    """Every render backend (``mixbridge.plugins.backend``: builtin, vst, ...): subclass with ``backend``.

    Inherits the semantic contract on the backend's processors (:class:`FullContract`, through the
    contract's implementation of the same name) and adds the session path: the same measurements on
    a one-track session rendered by the console (:func:`session_renderer`), and a neutral
    two-track session whose mix is the pan law's sum of the sources (closed form).
    """

    backend: ClassVar[str] = ""
    #: EQ and compressor settings measured through a whole session (the first of each: the console's
    #: path adds no processing, so one setting of each shows it keeps the meaning).
    SESSION_EQ_SETTINGS = M.EQ_SETTINGS[:2]
    SESSION_STATIC_SETTINGS = M.STATIC_SETTINGS[:1]
    #: A neutral strip (0 dB EQ, ratio-1 compressor) is the identity up to float32 round-off in each
    #: stage (<= 1e-6 per stage on both backends); the console's fader and pan are float32 products.
    NEUTRAL_SESSION_TOL = 1e-5

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.backend:
            cls.implementation = cls.backend

    @pytest.fixture(scope="class")
    @classmethod
    def session_backend(cls):
        from mixbridge.plugins.backend import get_backend

        be = get_backend(cls.backend, CONTRACT_SAMPLE_RATE)
        yield be
        be.close()

    @pytest.mark.parametrize("setting", SESSION_EQ_SETTINGS, ids=lambda s: "session_" + _slug(s[0]))
    def test_session_eq_magnitude(self, session_backend, setting, request):
        check_rows(M.measure_eq(session_renderer(session_backend, "eq"), CONTRACT_SAMPLE_RATE, [setting]), request,
                   self.known_failures)

    @pytest.mark.parametrize("setting", SESSION_STATIC_SETTINGS, ids=lambda s: f"session_static_T{s[0]:g}")
    def test_session_compressor_static_curve(self, session_backend, setting, request):
        check_rows(M.measure_compressor_static(session_renderer(session_backend, "compressor"), CONTRACT_SAMPLE_RATE,
                                               [setting]), request, self.known_failures)

    def test_neutral_session_mix_is_the_pan_law_sum(self, session_backend):
        """A mono and a stereo track, neutral strips, faders -6 and +3 dB, pans -0.5 and 0.7, sends off:
        ``mix = sum_t 10^(fader_t/20) (L_t, R_t)`` with the console's pan law
        (:func:`mixbridge.plugins.console.pan_gains`)."""
        from mixbridge.plugins.console import pan_gains, render_console
        from mixbridge.schema import MASTER_BUS
        from mixbridge.session import Master, Session, Track

        sr = CONTRACT_SAMPLE_RATE
        rng = np.random.default_rng(11)
        audio = {"mono": (0.1 * rng.standard_normal((1, sr // 4))).astype(np.float32),
                 "stereo": (0.1 * rng.standard_normal((2, sr // 4))).astype(np.float32)}
        settings = {"mono": (-6.0, -0.5), "stereo": (3.0, 0.7)}
        tracks = []
        for name, (fader_db, pan) in settings.items():
            t = Track(name, f"{name}.wav")
            t.params["fader"]["fader_db"] = fader_db
            t.params["pan"]["pan"] = pan
            tracks.append(t)
        mix = render_console(Session(sr, tracks, Master(MASTER_BUS.defaults())), session_backend, audio=audio).mix
        want = np.zeros((2, sr // 4))
        for name, (fader_db, pan) in settings.items():
            x = audio[name].astype(np.float64)
            left, right = pan_gains(pan, x.shape[0])
            g = 10.0 ** (fader_db / 20.0)
            want += g * np.stack([left * x[0], right * x[-1]])
        assert np.max(np.abs(mix - want)) <= self.NEUTRAL_SESSION_TOL


# ============================================================================ streaming processors (H3)
class StreamingProcessorContract:
    """Every streaming processor (``process(block [channels, n]) -> [channels, n]``, ``reset()``,
    ``latency_samples``): block by block equals offline after the reported latency (STYLE.md point 7).

    A subclass defines :meth:`make` (a fresh processor), :meth:`offline` (the offline render of
    ``x [channels, samples]``, aligned with the input) and :meth:`signal`, and sets ``stream_tol``
    (the float error between the two paths, with its reason).
    """

    #: Block sizes streamed: 1, around a power of two, and the largest usual host buffers.
    BLOCK_SIZES: ClassVar[tuple[int, ...]] = (1, 63, 64, 65, 512, 4096)
    #: Samples streamed at block size 1 (one Python call per sample: keep it short).
    SHORT_SAMPLES: ClassVar[int] = 6000
    stream_tol: ClassVar[float] = 0.0

    def make(self):
        """A fresh processor under test."""
        raise NotImplementedError

    def offline(self, x: np.ndarray) -> np.ndarray:
        """The offline render of ``x`` ``[channels, samples]``, aligned with the input."""
        raise NotImplementedError

    def signal(self) -> np.ndarray:
        """The test input ``[channels, samples]`` (float32)."""
        raise NotImplementedError

    @staticmethod
    def stream(proc, x: np.ndarray, block_size: int) -> np.ndarray:
        """``x`` through ``proc`` in blocks of ``block_size`` (each output copied: processors may reuse buffers)."""
        return np.concatenate([np.array(proc.process(x[:, i:i + block_size]), copy=True)
                               for i in range(0, x.shape[1], block_size)], axis=1)

    def aligned_stream(self, proc, x: np.ndarray, block_size: int, n: int) -> np.ndarray:
        """The first ``n`` output samples aligned with the input: ``x`` plus ``latency_samples`` zeros streamed,
        the first ``latency_samples`` dropped."""
        lat = int(proc.latency_samples)
        padded = np.concatenate([x, np.zeros((x.shape[0], lat), x.dtype)], axis=1)[:, :n + lat]
        return self.stream(proc, padded, block_size)[:, lat:lat + n]

    @pytest.fixture(scope="class")
    @classmethod
    def offline_pair(cls):
        proc = cls()
        x = proc.signal()
        return x, proc.offline(x)

    @pytest.mark.parametrize("block_size", BLOCK_SIZES)
    def test_streamed_equals_offline_after_latency(self, offline_pair, block_size):
        x, want = offline_pair
        n = min(self.SHORT_SAMPLES, x.shape[1]) if block_size == 1 else x.shape[1]
        got = self.aligned_stream(self.make(), x, block_size, n)
        assert got.shape == want[:, :n].shape
        assert np.max(np.abs(got - want[:, :n])) <= self.stream_tol

    def test_reset_clears_tails(self, offline_pair):
        x, want = offline_pair
        proc = self.make()
        self.stream(proc, x, 512)
        proc.reset()
        assert np.max(np.abs(self.aligned_stream(proc, x, 512, x.shape[1]) - want)) <= self.stream_tol
        self.stream(proc, x[:, :4096], 4096)
        proc.reset()
        assert not np.any(proc.process(np.zeros((x.shape[0], 512), np.float32))), "a tail survived reset()"


# ============================================================================ DAW profiles (H1)
class DawProfileContract:
    """Every registered DAW profile (``mixbridge.bridge.profiles``): subclass as ``TestXxxProfile`` with
    ``daw`` and ``documented``, a dict ``{(schema path, value): (OSC address, args)}`` of the messages the
    DAW's own documentation gives for track 1 (REAPER's ``Default.ReaperOSC``, the AbletonOSC README,
    Ardour's OSC manual), so the laws are checked against the DAW, not against their own inverse.

    The inherited tests check: registered under its name, a fresh instance per lookup; every channel-strip
    path either mapped or reported unmapped, never both; the documented messages exactly; every strip
    parameter at both schema extremes either sent or refused with a DawRangeError naming the range, and
    with ``clamp`` sent and listed, never moved silently; a default session's push plan addresses every
    matched track and every mapped plugin slot; an absent DAW raises DawUnreachableError within its timeout
    plus :attr:`UNREACHABLE_SLACK_S`, naming what to check; the profile loads without torch.
    """

    daw: ClassVar[str] = ""
    documented: ClassVar[dict[tuple[str, float], tuple[str, tuple]]] = {}
    #: Query timeout for the unreachable check, and what may come on top (socket set-up, a loaded machine).
    UNREACHABLE_TIMEOUT_S = 0.3
    UNREACHABLE_SLACK_S = 1.5

    def make(self):
        """A fresh profile under test."""
        from mixbridge.bridge.profiles import get_profile

        return get_profile(self.daw)

    def test_registered_under_its_name(self):
        from mixbridge.bridge.profiles import profile_names

        assert self.daw in profile_names()
        a, b = self.make(), self.make()
        assert a.name == self.daw and a is not b
        assert a.plugin_map.daw == self.daw

    def test_every_path_is_mapped_or_reported(self):
        profile = self.make()
        mapped, unmapped = set(profile.mapped_paths()), set(profile.unmapped_paths())
        assert not mapped & unmapped
        assert mapped | unmapped == {p for p, _ in CHANNEL_STRIP.flat_params()}
        assert set(profile.strip_paths) <= mapped

    def test_documented_messages(self):
        from mixbridge.bridge.osc import OscMessage

        assert self.documented, "give the documented messages of this DAW"
        profile = self.make()
        for (path, value), (address, args) in self.documented.items():
            got = profile.param_messages(0, path, value)
            # str() carries the type tags, so an int sent where the DAW documents a float fails
            assert [str(m) for m in got] == [str(OscMessage(address, args))], (path, value, got)

    def test_strip_extremes_are_sent_or_refused_never_silently_moved(self):
        from mixbridge.bridge.errors import DawRangeError

        profile = self.make()
        for path in profile.strip_paths:
            p = CHANNEL_STRIP.param(path)
            for value in (p.min, p.max):
                try:
                    msgs = profile.strip_messages(0, path, value)
                except DawRangeError as e:
                    assert f"{value:g}" in str(e) and "[" in str(e), str(e)
                    clamped: list[str] = []
                    assert profile.strip_messages(0, path, value, clamp=True, clamped=clamped)
                    assert len(clamped) == 1 and path in clamped[0]
                else:
                    assert len(msgs) == 1

    def test_default_plan_addresses_every_track_and_plugin_slot(self):
        from mixbridge.bridge.push import plan_push
        from mixbridge.session import Session, Track

        session = Session(48000, [Track(f"t{i}", f"t{i}.wav") for i in range(3)])
        session.validate()
        plan = plan_push(session, self.daw)
        assert [(name, pos) for name, pos, _ in plan.strips] == [("t0", 0), ("t1", 1), ("t2", 2)]
        profile = self.make()
        for _, pos, strip in plan.strips:
            assert not strip.unmapped and not strip.clamped
            for slot, _name in profile.plugin_map.slots:
                plug = profile.plugin_map.plugin(slot)
                want = {profile.plugin_message(pos, slot, p.index, 0.0).address for p in plug.params.values()}
                assert want & {m.address for m in strip.messages}, (pos, slot)

    def test_absent_daw_is_reported_within_the_timeout(self):
        import time

        from mixbridge.bridge.errors import DawUnreachableError
        from mixbridge.bridge.transport import free_udp_port

        profile = self.make()
        t0 = time.monotonic()
        with pytest.raises(DawUnreachableError) as err:
            with profile.open_client("127.0.0.1", free_udp_port(), self.UNREACHABLE_TIMEOUT_S, 0) as client:
                profile.query_tracks(client)
        assert time.monotonic() - t0 <= self.UNREACHABLE_TIMEOUT_S + self.UNREACHABLE_SLACK_S
        assert profile.unreachable_hint and profile.unreachable_hint in str(err.value)

    def test_profile_loads_without_torch(self):
        code = ("import sys; from mixbridge.bridge.profiles import get_profile; "
                f"get_profile({self.daw!r}).plugin_map; sys.exit(1 if 'torch' in sys.modules else 0)")
        run = run_python(code)
        assert run.returncode == 0, run.stderr
