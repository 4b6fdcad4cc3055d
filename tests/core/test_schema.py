"""The parameter schema: ranges, normalised mapping, typed errors, agreement with processors."""
from __future__ import annotations

import inspect
import math

import pytest

from mixbridge.errors import ParamRangeError, UnknownNameError, UnknownParamError
from mixbridge.schema import CHANNEL_STRIP, MASTER_BUS, Param, get_chain, schema_dict

ROUND_TRIP_TOL = 1e-9


def test_channel_strip_has_the_issue_processors():
    assert CHANNEL_STRIP.processor_names == ("trim", "polarity", "eq", "compressor", "send", "fader", "pan")
    assert set(CHANNEL_STRIP.processor("compressor").param_names) == {
        "threshold_db", "ratio", "attack_ms", "release_ms", "knee_db", "makeup_db"}
    eq = CHANNEL_STRIP.processor("eq").param_names
    for band in ("low_shelf", "peak1", "peak2", "peak3", "high_shelf"):
        assert f"{band}_gain_db" in eq and f"{band}_freq_hz" in eq
    pan = CHANNEL_STRIP.param("pan.pan")
    assert (pan.min, pan.max, pan.default) == (-1.0, 1.0, 0.0)


def test_master_bus_has_limiter_ceiling_and_target():
    assert CHANNEL_STRIP.param("send.send_db").unit == "dB"
    assert MASTER_BUS.param("limiter.ceiling_dbtp").default == -1.0
    assert MASTER_BUS.param("loudness.target_lufs").default == -14.0
    assert {"eq", "compressor", "limiter", "loudness"} <= set(MASTER_BUS.processor_names)


@pytest.mark.parametrize("path,param", CHANNEL_STRIP.flat_params() + MASTER_BUS.flat_params())
def test_normalised_round_trip_and_ends(path, param: Param):
    assert param.from_normalised(0.0) == pytest.approx(param.min)
    assert param.from_normalised(1.0) == pytest.approx(param.max)
    if param.kind == "float":
        for u in (0.0, 0.25, 0.5, 0.9, 1.0):
            assert param.to_normalised(param.from_normalised(u)) == pytest.approx(u, abs=ROUND_TRIP_TOL)
    # every unit-bearing name carries its unit
    suffix = {"dB": "_db", "Hz": "_hz", "ms": "_ms", "s": "_s", "dBTP": "_dbtp", "LUFS": "_lufs"}
    if param.unit in suffix:
        assert param.name.endswith(suffix[param.unit]), path


def test_log_scale_is_geometric():
    q = CHANNEL_STRIP.param("eq.peak1_q")
    assert q.scale == "log"
    mid = q.from_normalised(0.5)
    assert mid == pytest.approx(math.sqrt(q.min * q.max), rel=1e-12)


def test_out_of_range_error_names_param_value_range_unit_and_fix():
    with pytest.raises(ParamRangeError) as e:
        CHANNEL_STRIP.validate({"compressor": {"threshold_db": 5.0}}, "track 'kick'")
    msg = str(e.value)
    assert "track 'kick'.compressor.threshold_db" in msg and "5" in msg
    assert "[-60, 0] dB" in msg and "set it between" in msg
    assert isinstance(e.value, ValueError)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "loud", None])
def test_non_numbers_are_refused(bad):
    with pytest.raises(ParamRangeError):
        CHANNEL_STRIP.param("fader.fader_db").validate(bad)


def test_unknown_names_list_the_known_ones():
    with pytest.raises(UnknownParamError, match="known: threshold_db"):
        CHANNEL_STRIP.validate({"compressor": {"treshold_db": -10}})
    with pytest.raises(UnknownParamError, match="known: trim"):
        CHANNEL_STRIP.validate({"chorus": {}})
    with pytest.raises(UnknownNameError, match="channel_strip"):
        get_chain("nope")


def test_bool_params_take_only_0_or_1():
    with pytest.raises(ParamRangeError, match="0 or 1"):
        CHANNEL_STRIP.param("fader.mute").validate(0.5)


def test_vector_round_trip():
    values = CHANNEL_STRIP.defaults()
    values["compressor"]["ratio"] = 4.0
    values["pan"]["pan"] = -0.5
    back = CHANNEL_STRIP.from_vector(CHANNEL_STRIP.to_vector(values))
    for proc, params in values.items():
        for k, v in params.items():
            assert back[proc][k] == pytest.approx(v, abs=1e-9)


def test_schema_dict_is_json_ready():
    import json

    d = json.loads(json.dumps(schema_dict()))
    assert d["channel_strip"]["compressor"]["ratio"]["scale"] == "log"


def test_builtin_functions_agree_with_schema():
    """Each builtin processor function takes exactly the schema's parameter names (STYLE.md point 3)."""
    from mixbridge.plugins.builtin import FUNCTIONS
    from mixbridge.schema import COMPRESSOR, EQ, LIMITER, REVERB

    for proc in (EQ, COMPRESSOR, REVERB, LIMITER):
        fn = FUNCTIONS[proc.name]
        sig = inspect.signature(fn)
        if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
            # eq/compressor forward **params to their *_board builder: check that one
            from mixbridge.plugins import builtin

            sig = inspect.signature(getattr(builtin, f"{proc.name}_board"))
        names = {n for n, p in sig.parameters.items() if p.kind is p.KEYWORD_ONLY and n != "all_bands"}
        assert names == set(proc.param_names), proc.name


def test_a_boolean_is_not_a_number_for_a_continuous_parameter():
    """JSON ``true`` for ``fader_db`` must not become 1 dB; on/off parameters still take it."""
    from mixbridge.errors import ParamRangeError
    from mixbridge.schema import CHANNEL_STRIP

    fader = CHANNEL_STRIP.processor("fader")
    with pytest.raises(ParamRangeError, match="boolean, not a number"):
        fader.param("fader_db").validate(True)
    assert fader.param("mute").validate(True) == 1.0
