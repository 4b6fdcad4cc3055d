"""The mixer registry: every registered mixer passes :class:`tests.contracts.MixerContract`; the
registry's convention (duplicates refused, unknown names listed, config-taking factories); the
public session builder from normalised vectors; a learned mixer from a checkpoint."""
from __future__ import annotations

import numpy as np
import pytest

from mixbridge.audio import load_stems
from mixbridge.errors import MixbridgeError, ParamRangeError, UnknownNameError
from mixbridge.models.mix_session import session_from_vectors
from mixbridge.models.mixers import MIXERS, RandomMix, get_mixer, mixer_from_checkpoint, mixer_names, register_mixer
from mixbridge.registry import DuplicateNameError
from mixbridge.schema import CHANNEL_STRIP
from tests.contracts import MixerContract


@pytest.fixture(scope="module")
def stems(multitrack):
    return load_stems(multitrack)


class TestKnowledgeMixer(MixerContract):
    mixer_name = "knowledge"


class TestMonoSumMixer(MixerContract):
    mixer_name = "mono_sum"


class TestRandomMixer(MixerContract):
    mixer_name = "random"


class TestEqualLoudnessMixer(MixerContract):
    mixer_name = "equal_loudness"


class TestLearnedMixer(MixerContract):
    """The learned mixer on its tiny untrained network (``mixer-tiny``, seeded)."""

    mixer_name = "learned"
    config = {"model": "mixer-tiny", "seed": 0}


def test_every_registered_mixer_has_a_contract_test():
    # The contract classes of the mixers with their own test modules, imported so that this test
    # also holds when run alone.
    from tests.models import test_dae, test_deepmixing, test_dmc, test_mixwaveunet, test_prior_mixer  # noqa: F401

    tested = {c.mixer_name for c in MixerContract.__subclasses__()}
    assert set(mixer_names()) == tested


def test_duplicates_are_refused_and_unknown_names_listed():
    with pytest.raises(DuplicateNameError, match="mixer 'random' is already registered") as e:
        register_mixer("random", RandomMix)
    assert isinstance(e.value, MixbridgeError)
    with pytest.raises(UnknownNameError, match="known mixers: knowledge, mono_sum, random"):
        get_mixer("nope")
    assert len(MIXERS) == len(mixer_names())


def test_factories_take_a_config(stems):
    """``random`` with a 0 dB range leaves every fader at exactly 0 dB; an out-of-range config is refused."""
    session = get_mixer("random", gain_range_db=0.0)(stems, seed=3)
    assert all(t.params["fader"]["fader_db"] == 0.0 for t in session.tracks)
    with pytest.raises(ParamRangeError, match="gain_range_db"):
        get_mixer("random", gain_range_db=20.0)
    quiet = get_mixer("equal_loudness", track_lufs=-30.0)(stems)
    loud = get_mixer("equal_loudness")(stems)
    for a, b in zip(quiet.tracks, loud.tracks):  # 4 dB less gain per track, split over fader and trim
        total = lambda t: t.params["fader"]["fader_db"] + t.params["trim"]["gain_db"]  # noqa: E731
        assert total(a) - total(b) == pytest.approx(-4.0, abs=2e-3)


def test_session_from_vectors_maps_through_the_schema(stems):
    """u = 0 is every parameter's minimum, u = 1 its maximum (booleans on), in real units."""
    n = len(stems.stems)
    flat = CHANNEL_STRIP.flat_params()
    for u, pick in ((0.0, lambda p: p.min), (1.0, lambda p: p.max)):
        s = session_from_vectors(stems, np.full((n, len(flat)), u), mixer="test", target_lufs=-20.0)
        for path, p in flat:
            proc, _, name = path.partition(".")
            assert s.tracks[0].params[proc][name] == pytest.approx(pick(p), rel=1e-12, abs=1e-12), path
        assert s.master.params["loudness"]["target_lufs"] == -20.0
    with pytest.raises(ParamRangeError, match="outside \\[0, 1\\]"):
        session_from_vectors(stems, np.full((n, len(flat)), 1.5), mixer="test")
    with pytest.raises(ParamRangeError, match="strip must be"):
        session_from_vectors(stems, np.zeros((n + 1, len(flat))), mixer="test")


def test_learned_mixer_from_a_checkpoint_equals_its_network(stems, tmp_path):
    torch = pytest.importorskip("torch")
    from mixbridge.models import registry
    from mixbridge.models.checkpoint import save_checkpoint

    torch.manual_seed(5)
    net = registry.create("mixer-tiny")
    path = save_checkpoint(net, tmp_path / "mixer", model_name="mixer-tiny")
    direct = get_mixer("learned", model=net)(stems, seed=1).to_json()
    loaded = mixer_from_checkpoint(path)(stems, seed=1).to_json()
    assert loaded["tracks"] == direct["tracks"]
    with pytest.raises(MixbridgeError, match="needs a trained network"):
        get_mixer("learned")(stems)
