"""Proxy in the loop (issue 14, item 4): a plugin's compressor -- its grey-box proxy, or the real plugin --
as the torch console's strip compressor.

Oracles: a grey-box proxy whose learned law is the identity (release law ``beta`` at 0, the schema's
peak hold) *is* the schema's compressor, and one whose law doubles the release renders what the schema's
console renders with the release doubled; the shipped ZamComp map renders the schema's compressor (the
contract), so the real plugin inside the console equals the console; gradients reach the mix parameters
and never the frozen proxy.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mixbridge.models.console import TorchConsole, backend_compressor_stage  # noqa: E402
from mixbridge.models.dsp_dynamics import compress  # noqa: E402
from mixbridge.models.proxy_greybox import GreyBoxProxy, proxy_compressor_stage  # noqa: E402
from tests.support import needs_vst  # noqa: E402

SR = 44100
#: float32 round-off of the same equations evaluated through the proxy's float64 control path.
IDENTITY_TOL = 1e-6
#: The shipped ZamComp map inside the console vs the schema's compressor, max abs on unit-scale audio
#: (measured 9.4e-6 on noise bursts: the map drives ZamComp's sidechain with the schema's reduction).
ZAMCOMP_TOL = 1e-4
#: sigmoid(-40) ~ 4e-18: the release law of the schema (peak hold).
BETA_OFF_LOGIT = -40.0
RELEASE_INDEX = 3   # compressor.release_ms in the proxy's parameter order (checked in identity_proxy)


def _bursts(tracks: int = 3, seconds: float = 1.0, seed: int = 0) -> torch.Tensor:
    """Stereo noise bursts (4 Hz on/off, 26 dB apart) ``[tracks, 2, samples]``: the compressor acts and releases."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    env = np.where((np.arange(n) / SR * 4) % 1 < 0.5, 1.0, 0.05)
    x = np.stack([np.stack([rng.standard_normal(n) * env * 0.3, rng.standard_normal(n) * env * 0.2])
                  for _ in range(tracks)])
    return torch.from_numpy(x.astype(np.float32))


def _strip(grad: bool = False) -> dict:
    p = {"compressor.threshold_db": [-30.0, -20.0, -25.0], "compressor.ratio": [4.0, 8.0, 2.0],
         "compressor.attack_ms": [5.0, 10.0, 1.0], "compressor.release_ms": [100.0, 50.0, 200.0],
         "compressor.knee_db": [0.0, 4.0, 8.0], "compressor.makeup_db": [0.0, 2.0, 1.0]}
    out = {k: torch.tensor(v, requires_grad=grad) for k, v in p.items()}
    out["send.send_db"] = -80.0
    return out


def identity_proxy(n_inputs: int) -> GreyBoxProxy:
    proxy = GreyBoxProxy(schema=("compressor",), sample_rate=SR, n_inputs=n_inputs, n_outputs=n_inputs)
    assert proxy.param_names[RELEASE_INDEX] == "compressor.release_ms", proxy.param_names
    with torch.no_grad():
        proxy.map[-1].bias[-1] = BETA_OFF_LOGIT
    return proxy


def test_an_identity_proxy_in_the_console_is_the_schema_compressor():
    x, strip = _bursts(), _strip()
    want = TorchConsole(SR)(x, strip).mix
    got = TorchConsole(SR, compressor=proxy_compressor_stage(identity_proxy(2)))(x, strip).mix
    assert float((got - want).abs().max()) < IDENTITY_TOL


def test_a_mono_proxy_runs_once_per_channel_as_the_vst_backend_runs_a_mono_plugin():
    x = _bursts()
    params = {k.split(".")[1]: v for k, v in _strip().items() if k.startswith("compressor.")}
    got = proxy_compressor_stage(identity_proxy(1))(x, SR, params)
    want = torch.cat([compress(x[:, c:c + 1], SR, **params) for c in range(2)], dim=1)
    linked = compress(x, SR, **params)
    assert float((got - want).abs().max()) < IDENTITY_TOL
    assert float((got - linked).abs().max()) > 100 * IDENTITY_TOL   # independent lanes are not linked


def test_a_learned_law_is_rendered_in_the_loop():
    proxy = identity_proxy(2)
    with torch.no_grad():
        proxy.map[-1].bias[RELEASE_INDEX] = math.log(2.0)   # the law: release x 2
    x, strip = _bursts(), _strip()
    doubled = dict(strip, **{"compressor.release_ms": strip["compressor.release_ms"] * 2.0})
    want = TorchConsole(SR)(x, doubled).mix
    got = TorchConsole(SR, compressor=proxy_compressor_stage(proxy))(x, strip).mix
    assert float((got - want).abs().max()) < IDENTITY_TOL
    assert float((got - TorchConsole(SR)(x, strip).mix).abs().max()) > 100 * IDENTITY_TOL


def test_gradients_reach_the_mix_parameters_and_not_the_frozen_proxy():
    proxy = identity_proxy(1)
    strip = _strip(grad=True)
    mix = TorchConsole(SR, compressor=proxy_compressor_stage(proxy))(_bursts(), strip).mix
    mix.pow(2).mean().backward()
    for name in ("compressor.threshold_db", "compressor.ratio", "compressor.release_ms"):
        g = strip[name].grad
        assert g is not None and bool(torch.isfinite(g).all()) and float(g.abs().max()) > 0, name
    assert all(p.grad is None and not p.requires_grad for p in proxy.parameters())


def test_loop_console_refuses_a_proxy_that_is_not_a_compressor(tmp_path):
    from mixbridge.models.checkpoint import save_checkpoint
    from mixbridge.models.training.data import TrainConfigError
    from mixbridge.models.training.dmc_full import loop_console

    path = save_checkpoint(GreyBoxProxy(schema=("eq", "compressor"), sample_rate=SR), tmp_path / "eqcomp")
    with pytest.raises(TrainConfigError, match=r"schema \['eq', 'compressor'\].*\['compressor'\]"):
        loop_console(SR, path)
    with pytest.raises(Exception, match="48000|44100"):
        loop_console(48000, save_checkpoint(identity_proxy(1), tmp_path / "comp"))


def test_train_dmc_full_takes_the_proxy_and_the_starting_weights():
    import argparse

    from mixbridge.models.dmc_full_cli import add_dmc_full_command

    top = argparse.ArgumentParser()
    add_dmc_full_command(top.add_subparsers())
    a = top.parse_args(["dmc-full", "--data", "D", "-o", "R", "--compressor-proxy", "P.json",
                        "--init-from", "models/mixers/dmc_full.json"])
    assert (a.compressor_proxy, a.init_from) == ("P.json", "models/mixers/dmc_full.json")


@needs_vst
def test_the_real_plugin_inside_the_console_renders_the_contract():
    from mixbridge.plugins.backend import get_backend

    x, strip = _bursts(), _strip()
    want = TorchConsole(SR)(x, strip).mix
    got = TorchConsole(SR, compressor=backend_compressor_stage(get_backend("vst", SR)))(x, strip).mix
    assert float((got - want).abs().max()) < ZAMCOMP_TOL


@needs_vst
def test_evaluate_on_a_held_out_excerpt_with_the_plugin_that_is_the_schema(composer_e1m9_x0_root, tmp_path):
    """With ZamComp's map (which renders the schema) and an identity proxy, both training-time consoles hear
    what the plugin renders: the ESR of each against the plugin is round-off."""
    from mixbridge.models.checkpoint import save_checkpoint
    from mixbridge.models.training.proxy_loop import evaluate_proxy_in_loop
    from mixbridge.plugins.pluginmap import DEFAULT_MAPS

    proxy = save_checkpoint(identity_proxy(2), tmp_path / "identity")
    r = evaluate_proxy_in_loop(composer_e1m9_x0_root, checkpoints={"shipped": None},
                               plugin_map=DEFAULT_MAPS["compressor"], proxy=proxy, limit=1, crop_s=1.0,
                               progress=False)
    assert r["excerpts"] == 1 and r["rows"]["shipped"]["n"] == 1
    assert np.isfinite(r["rows"]["shipped"]["mrstft"]) and r["rows"]["shipped"]["feature_distance"] > 0
    assert r["fidelity"]["schema console"]["esr"] < 1e-6, r["fidelity"]
    assert r["fidelity"]["proxy"]["esr"] < 1e-6, r["fidelity"]
