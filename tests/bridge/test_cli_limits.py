"""Numeric options of the bridge commands are range-checked: each bad value is one line on stderr naming
the value, the limit and the fix, with exit status 2, before anything is sent, written or started
(issue 10, item 5). The unreachable-DAW hint names the ports this command actually used."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from mixbridge.app.cli import main
from mixbridge.bridge.automation import MAX_RATE_HZ
from mixbridge.bridge.transport import free_udp_port

#: A refusal is immediate: well under this, seconds (``--rate-hz 1e7`` used to run past 120 s).
REFUSAL_S = 10.0


def _session(tmp_path: Path, automation: bool = False) -> Path:
    track = {"name": "vox", "source": "vox.wav"}
    if automation:
        track["automation"] = {"fader.fader_db": {"times_s": [0.0, 240.0], "values": [-10.0, 0.0]}}
    path = tmp_path / "session.json"
    path.write_text(json.dumps({"format": "mixbridge-session", "version": 1, "sample_rate": 48000,
                                "tracks": [track]}))
    return path


def _one_line_error(capsys, argv: list[str], *needles: str) -> str:
    t0 = time.monotonic()
    rc = main(argv)
    elapsed = time.monotonic() - t0
    err = capsys.readouterr().err
    assert rc == 2, (rc, err)
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)
    assert elapsed < REFUSAL_S
    return err


def test_midi_export_of_a_long_curve_is_bounded_by_the_7bit_steps(tmp_path, capsys):
    """midi-export has no sampling rate to abuse: a 240 s ramp writes one CC per 7-bit step it crosses, at
    its exact tick, immediately (it used to sample at --rate-hz, which 1e7 turned into 2.4 G samples)."""
    from mixbridge.bridge.midi import cc_value, read_smf_curves

    out = tmp_path / "auto.mid"
    t0 = time.monotonic()
    assert main(["midi-export", str(_session(tmp_path, automation=True)), "-o", str(out), "-q"]) == 0
    assert time.monotonic() - t0 < REFUSAL_S
    points = read_smf_curves(out)[("vox", 7)]
    assert len(points) == cc_value("fader.fader_db", 0.0) - cc_value("fader.fader_db", -10.0) + 1


def test_automate_refuses_the_same_rate(tmp_path, capsys):
    _one_line_error(capsys, ["automate", str(_session(tmp_path, automation=True)), "--daw", "reaper",
                             "--rate-hz", "1e7", "--dry-run"], f"(0, {MAX_RATE_HZ:g}] Hz")


@pytest.mark.parametrize("port", ["0", "-1", "65536"])
def test_push_refuses_a_port_outside_1_to_65535(tmp_path, capsys, port):
    _one_line_error(capsys, ["push", str(_session(tmp_path)), "--daw", "ardour", "--port", port,
                             "--timeout-s", "0.2"], f"--port {port}", "1..65535")


@pytest.mark.parametrize("timeout", ["-1", "0", "nan", "inf"])
def test_push_and_pull_refuse_a_timeout_that_is_not_positive(tmp_path, capsys, timeout):
    _one_line_error(capsys, ["push", str(_session(tmp_path)), "--daw", "reaper", "--timeout-s", timeout],
                    "--timeout-s", "> 0")
    _one_line_error(capsys, ["pull", "--daw", "reaper", "--timeout-s", timeout, "-o", str(tmp_path / "p.json")],
                    "--timeout-s", "> 0")


def test_the_old_timeout_spelling_is_refused_alike(tmp_path, capsys):
    rc = main(["push", str(_session(tmp_path)), "--daw", "reaper", "--timeout", "-1"])
    err = capsys.readouterr().err
    assert rc == 2 and "deprecated" in err and "--timeout-s -1.0 must be a number of seconds > 0" in err


@pytest.mark.parametrize("duration", ["-1", "0", "nan"])
def test_live_refuses_a_duration_that_is_not_positive(tmp_path, capsys, duration):
    # refused before any JACK server is looked for (none is named or running here)
    _one_line_error(capsys, ["live", "--session", str(_session(tmp_path)), "--no-osc", "--jack-server",
                             "mixbridge-no-such-server", "--duration-s", duration], "--duration-s", "> 0")


@pytest.mark.parametrize("daw", ["reaper", "ardour", "ableton"])
def test_the_unreachable_daw_hint_names_the_ports_used(tmp_path, capsys, daw):
    port, reply = free_udp_port(), free_udp_port()
    err = _one_line_error(capsys, ["push", str(_session(tmp_path)), "--daw", daw, "--port", str(port),
                                   "--reply-port", str(reply), "--timeout-s", "0.3"], f"127.0.0.1:{port}")
    hint = err.split("within 0.3 s", 1)[1]
    assert f"{port} (" in hint, err       # the port it sent to, in the hint itself
    if daw != "ardour":                   # Ardour answers to the sender's port
        assert f"{reply} (--reply-port)" in hint, err
    for default in ("8000", "3819", "9000"):
        assert default not in hint or default in (str(port), str(reply)), err
