"""The generator with real plugins (DawDreamer + Debian zam-plugins): determinism, parameters that
re-render the stored output, and a plugin map that does not match the installed plugin."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mixbridge.app.cli import main
from mixbridge.errors import PluginMapError
from mixbridge.plugins.datagen.effect import effect_config, render_chain
from mixbridge.plugins.datagen.format import Dataset
from mixbridge.plugins.datagen.runner import generate
from mixbridge.plugins.datagen.verify import verify

try:
    import mixbridge.plugins.vst  # noqa: F401
    from tests.support import vst_available

    HAVE_VST = vst_available()
except Exception:  # the vst backend missing or failing to import
    HAVE_VST = False

pytestmark = [pytest.mark.vst, pytest.mark.skipif(not HAVE_VST, reason="needs mixbridge.plugins.vst, dawdreamer "
                                                                        "and the Debian zam-plugins VST2s")]
SAMPLE_RATE = 44100
#: ZamEQ2 and ZamComp are measured bit-identical between renders (plugins/vst.py); allow float noise.
RERENDER_TOL = 1e-6


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("vstsrc")
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    x = 0.4 * np.sin(2 * np.pi * 150 * t) * (1 + np.sin(2 * np.pi * 4 * t)) / 2
    sf.write(folder / "a.wav", np.stack([x, x]).T.astype(np.float32), SAMPLE_RATE, subtype="FLOAT")
    return folder


def test_real_plugins_are_deterministic_and_reproducible_from_parameters(src, tmp_path):
    cfg = effect_config(str(src), chain="eq,compressor", backend="vst", n=4, seed=3, patch_s=0.2, shard_size=4)
    assert set(cfg["plugin_maps"]) == {"eq", "compressor"}
    assert cfg["plugin_maps"]["compressor"]["plugins"] == ["ZamComp"]
    s = generate(cfg, tmp_path / "a", workers=1, progress=False)
    assert s.examples_ok == 4 and verify(tmp_path / "a").ok
    generate(cfg, tmp_path / "b", workers=0, progress=False)
    name = "shards/shard-00000000-00000004.npz"
    assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    ds = Dataset.open(tmp_path / "a")
    arrays = ds.load_shard(ds.records[0])
    from mixbridge.plugins.backend import get_backend

    backend = get_backend("vst", SAMPLE_RATE)
    for row in range(4):
        params: dict = {}
        for pname, v in zip(ds.config["param_names"], arrays["params_real"][row]):
            proc, _, p = pname.partition(".")
            params.setdefault(proc, {})[p] = float(v)
        y = render_chain(backend, ["eq", "compressor"], arrays["input"][row], params)
        assert np.max(np.abs(y - arrays["output"][row])) <= RERENDER_TOL
    backend.close()


def test_a_map_that_does_not_match_the_installed_plugin_stops_the_job(src, tmp_path, capsys):
    from importlib import resources

    data = json.loads(resources.files("mixbridge.plugins.maps").joinpath("zamcomp.json").read_text())
    data["plugins"]["zamcomp"]["identity"]["num_params"] = 99
    bad = tmp_path / "zamcomp_wrong.json"
    bad.write_text(json.dumps(data))
    cfg = effect_config(str(src), processors=["compressor"], backend="vst",
                        backend_options={"maps": {"compressor": str(bad)}}, n=2, patch_s=0.1)
    with pytest.raises(PluginMapError, match="99"):
        generate(cfg, tmp_path / "c", workers=1, progress=False)
    rc = main(["datagen", "effect", "--plugin", str(bad), "--source", str(src), "--n", "2", "--patch-s", "0.1",
               "-q", "-o", str(tmp_path / "d")])
    assert rc == 2 and "99" in capsys.readouterr().err
