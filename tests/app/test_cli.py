"""The top command line (mixbridge/app/cli.py, mixbridge/app/commands.py): one exit rule, choices
from the registries, plain-text mixer summaries, and ``automix --push`` through the bridge library."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from mixbridge.app.cli import main
from mixbridge.bridge.profiles import profile_names
from mixbridge.cli_options import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from mixbridge.models.mixers import DEFAULT_MIXER, mixer_names, mixer_summary
from mixbridge.plugins.backend import backend_names
from tests.support import run_python


@pytest.mark.parametrize("argv,status", [
    ([], EXIT_USAGE),                          # no command: usage on stderr
    (["--version"], EXIT_OK),
    (["--help"], EXIT_OK),
    (["no-such-command"], EXIT_USAGE),
    (["automix"], EXIT_USAGE),                 # missing STEMS_DIR and -o
    (["render", "x.json"], EXIT_USAGE),        # missing -o
    (["automix", "d", "-o", "o", "--mixer", "magic"], EXIT_USAGE),
    (["render", "x.json", "-o", "y.wav", "--backend", "protools"], EXIT_USAGE),
])
def test_main_returns_the_exit_status_instead_of_exiting(argv, status, capsys):
    assert main(argv) == status
    if status == EXIT_USAGE:
        assert "usage: mixbridge" in capsys.readouterr().err


def test_a_mixbridge_error_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["render", str(tmp_path / "missing.json"), "-o", str(tmp_path / "m.wav"), "-q"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("mixbridge render: error: ") and err.count("\n") == 1
    assert "missing.json" in err and "Traceback" not in err


def test_session_validate_separates_a_failed_check_from_a_missing_file(tmp_path, capsys):
    """An invalid session is a check that failed (1); a path that is no file is a user error (2)."""
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "mixbridge-session", "version": 1}')
    assert main(["session", "validate", str(bad)]) == EXIT_FAILED
    assert "INVALID" in capsys.readouterr().err
    assert main(["session", "validate", str(tmp_path / "none.json")]) == EXIT_USAGE
    assert capsys.readouterr().err == f"mixbridge session: error: {tmp_path / 'none.json'}: no such file; " \
        "name a session file (automix writes OUT_DIR/session.json)\n"


@pytest.mark.parametrize("command", ["automix", "render"])
def test_backend_and_mixer_choices_come_from_the_registries(command):
    from mixbridge.app.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command").choices[command]
    by_dest = {a.dest: a for a in sub._actions}
    assert list(by_dest["backend"].choices) == backend_names() and by_dest["backend"].default == "builtin"
    assert by_dest["output"].required and by_dest["quiet"].option_strings[:2] == ["-q", "--quiet"]
    if command == "automix":
        assert list(by_dest["mixer"].choices) == mixer_names() and by_dest["mixer"].default == DEFAULT_MIXER
        assert list(by_dest["push"].choices) == profile_names()


def test_the_app_names_the_torch_contract_lazily():
    """The app tells the contract about its ``torch`` implementation without importing torch
    (``mixbridge plugins check torch`` imports it when asked; tests/plugins/test_contract.py runs that)."""
    code = ("import sys\nfrom mixbridge.app.cli import register_implementations\n"
            "register_implementations()\n"
            "from mixbridge.plugins.contract import implementation_names\n"
            "assert 'torch' in implementation_names(include_lazy=True)\n"
            "sys.exit(1 if 'torch' in sys.modules else 0)\n")
    run = run_python(code)
    assert run.returncode == 0, run.stderr


def test_mixers_prints_one_plain_line_per_registered_mixer(capsys):
    assert main(["mixers"]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == mixer_names()
    assert [name for name, line in zip(mixer_names(), lines) if "(default)" in line] == [DEFAULT_MIXER]
    for name, line in zip(mixer_names(), lines):
        assert line.endswith(mixer_summary(name)) and mixer_summary(name)
        assert "(see" not in line and "``" not in line and ":class:" not in line


def test_automix_push_calls_the_bridge_library(multitrack, tmp_path, monkeypatch, capsys):
    """``automix --push`` hands the mixed session to :func:`mixbridge.bridge.push.push`, not to a second ``main``."""
    import mixbridge.app.cli as cli
    import mixbridge.bridge.push as bridge_push

    calls = []

    def fake_push(session, daw, **kw):
        calls.append((session, daw, kw))
        match = SimpleNamespace(unmatched_session=[], unmatched_daw=["Click"])
        plan = SimpleNamespace(match=match, strips=[None] * len(session.tracks), unmapped=[])
        return SimpleNamespace(plan=plan, sent=42, elapsed_s=0.01)

    def no_reentry(argv=None):
        raise AssertionError(f"main re-entered with {argv}")

    monkeypatch.setattr(bridge_push, "push", fake_push)
    monkeypatch.setattr(cli, "main", no_reentry)  # `main` here is the one imported before the patch
    assert main(["automix", str(multitrack), "-o", str(tmp_path / "o"), "--mixer", "mono_sum", "--push", "reaper"]) == 0
    (session, daw, _), = calls
    assert daw == "reaper" and {t.name for t in session.tracks} == {p.stem for p in multitrack.glob("*.wav")}
    out = capsys.readouterr().out
    assert f"pushed {len(session.tracks)} tracks to reaper: 42 messages" in out and "1 DAW tracks unmatched" in out
