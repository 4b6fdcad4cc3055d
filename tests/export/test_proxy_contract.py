"""The semantic contract on a proxy (``proxy:PATH``) and beside its plugin in ``compare``: a grey-box
proxy built to be the builtin compressor plus exactly 1 dB of makeup must read +1 dB on every
static row and the plugin's own attack and release times."""
from __future__ import annotations

import pytest
import torch

from mixbridge.models.checkpoint import save_checkpoint
from mixbridge.models.proxy_greybox import CORRECTION_DB, GreyBoxProxy

SR = 44100
#: The map runs in float32 and the contract reads settled levels to 0.01 dB.
DEV_TOL_DB = 0.02
#: The proxy's ballistics are the reference's (beta ~ 1e-18): times agree to the contract's interpolation.
TIME_TOL = 0.01


@pytest.fixture(scope="module")
def plus_one_db(tmp_path_factory):
    m = GreyBoxProxy(schema=("compressor",), sample_rate=SR).eval()
    with torch.no_grad():
        m.map[-1].bias[m.param_names.index("compressor.makeup_db")] = 1.0 / CORRECTION_DB
        m.map[-1].bias[-1] = -40.0  # beta ~ 0: the schema's release law
    return save_checkpoint(m, tmp_path_factory.mktemp("px") / "plus1", model_name="greybox")


def test_compare_puts_each_side_against_its_own_expected_values(plus_one_db):
    from mixbridge.export.compare.chain import resolve_plugin
    from mixbridge.export.compare.loading import load_proxy
    from mixbridge.export.compare.run import contract_rows

    rows = contract_rows(resolve_plugin(["compressor"], SR), load_proxy(plus_one_db))
    static = [r for r in rows if "proxy_dev" in r]
    times = [r for r in rows if "relative" in r]
    assert len(static) == 3 and len(times) == 4
    for r in static:
        assert r["plugin_dev"] == pytest.approx(0.0, abs=DEV_TOL_DB)
        assert r["proxy_dev"] == pytest.approx(1.0, abs=DEV_TOL_DB)
    for r in times:
        assert r["relative"] == pytest.approx(0.0, abs=TIME_TOL)


def test_plugins_check_runs_on_a_proxy_and_refuses_another_rate(plus_one_db):
    from mixbridge.app.cli import register_implementations
    from mixbridge.plugins.contract import run_contract

    register_implementations()
    report = run_contract(f"proxy:{plus_one_db}", sample_rate=SR)
    static = [r for r in report.rows if r.quantity == "compressor static gain"]
    assert static and all(abs(r.measured - r.expected - 1.0) <= DEV_TOL_DB for r in static)
    refused = run_contract(f"proxy:{plus_one_db}", sample_rate=48000)
    assert refused.rows[0].status == "error" and "--sample-rate 44100" in refused.rows[0].note
