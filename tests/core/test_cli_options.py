"""The shared CLI vocabulary: one spelling per option, old spellings kept with a notice."""
from __future__ import annotations

import argparse

import pytest

from mixbridge.cli_options import add_output, add_quiet, add_timeout_s, add_workers


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mixbridge x")
    add_output(p, help="where")
    add_quiet(p)
    add_timeout_s(p, default=30.0, help="per job")
    add_workers(p, default=1, help="processes")
    return p


def test_new_spellings_parse_without_notice(capsys):
    a = _parser().parse_args(["-o", "out", "-q", "--timeout-s", "2.5", "--workers", "3"])
    assert (a.output, a.quiet, a.timeout_s, a.workers) == ("out", True, 2.5, 3)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("argv,field,value,new", [
    (["--out", "x"], "output", "x", "-o/--output"),
    (["-o", "y", "--no-progress"], "quiet", True, "-q/--quiet"),
    (["-o", "y", "--timeout", "4"], "timeout_s", 4.0, "--timeout-s"),
    (["-o", "y", "--jobs", "2"], "workers", 2, "--workers"),
])
def test_old_spelling_sets_the_same_value_and_says_the_new_one(capsys, argv, field, value, new):
    a = _parser().parse_args(argv)
    assert getattr(a, field) == value
    err = capsys.readouterr().err
    assert "deprecated" in err and new in err and err.count("\n") == 1


def test_help_marks_old_spellings_deprecated():
    text = " ".join(_parser().format_help().split())
    assert "--no-progress: old spelling, deprecated" in text and "--jobs: old spelling, deprecated" in text


def test_required_output_accepts_the_old_spelling_and_refuses_neither():
    assert _parser().parse_args(["--out", "z"]).output == "z"
    with pytest.raises(SystemExit):
        _parser().parse_args([])
