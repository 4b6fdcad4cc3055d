"""automix's output folder (issue 10 items 9, 10 and the CLI's one error path).

The outputs are written into one staging folder beside ``OUT_DIR`` that becomes ``OUT_DIR`` in one rename;
a ``kill -9`` in the write phase leaves the previous set untouched and only a staging folder, which the next
run removes with a notice. ``--no-report`` skips report.html. A user error is one line and exit 2; any other
exception one line saying it is internal, exit 70, and its traceback only with ``mixbridge --debug``."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mixbridge.app.automix import OutputFolderError, automix, remove_stale_staging
from mixbridge.app.cli import EXIT_INTERNAL, main
from mixbridge.cli_options import EXIT_USAGE

#: A cheap mixer: these tests are about the files, not the mix.
MIXER = "mono_sum"


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _staging(parent: Path) -> list[Path]:
    return sorted(p for p in parent.rglob(".automix-*") if p.is_dir())


#: A real automix process that stops for good in its write phase: report.html is written into the staging
#: folder, then it says so on a flag file and sleeps until it is killed.
_CHILD = """
import sys, time
from pathlib import Path
import mixbridge.plugins.report as report
from mixbridge.app.automix import automix

write = report.write_report
def write_then_hang(path, *args, **kwargs):
    out = write(path, *args, **kwargs)
    Path(sys.argv[3]).write_text(str(path))
    time.sleep(120)
    return out
report.write_report = write_then_hang
automix(sys.argv[1], sys.argv[2], mixer=sys.argv[4], progress=False)
"""


def test_kill_9_in_the_write_phase_leaves_the_old_set_and_the_next_run_cleans_up(multitrack, tmp_path):
    out = tmp_path / "out"
    automix(multitrack, out, mixer=MIXER, progress=False, report=False)
    before = _digests(out)
    assert sorted(before) == ["master.wav", "mix.wav", "session.json"]

    flag = tmp_path / "writing"
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(multitrack), str(out), str(flag), MIXER])
    try:
        deadline = time.monotonic() + 240
        while not flag.exists():
            assert child.poll() is None, "the automix child ended before its write phase"
            assert time.monotonic() < deadline, "the automix child never reached its write phase"
            time.sleep(0.05)
        staged = Path(flag.read_text()).parent
        assert sorted(p.name for p in staged.iterdir()) == ["master.wav", "mix.wav", "report.html", "session.json"]
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    # the old set, byte for byte and nothing else; the staging folder beside it, not inside
    assert _digests(out) == before
    assert _staging(tmp_path) == [staged] and staged.parent == tmp_path
    assert staged.name.startswith(".automix-out-")

    res = automix(multitrack, out, mixer=MIXER, progress=False)
    assert [n for n in res.notices if n.startswith("removed ")] == [
        next(n for n in res.notices if n.startswith(f"removed {staged}/ ("))]
    assert "the staging folder of an interrupted automix run" in res.summary()
    assert _staging(tmp_path) == []
    assert sorted(_digests(out)) == ["master.wav", "mix.wav", "report.html", "session.json"]


def test_the_set_is_replaced_in_one_step(multitrack, tmp_path):
    """The folder is swapped as a whole: a report.html of an earlier run does not survive a --no-report
    run (no mixed set), a staging folder of an older version inside OUT_DIR is removed with a notice, and
    a staging folder that a live run holds is left alone."""
    out = tmp_path / "out"
    automix(multitrack, out, mixer=MIXER, progress=False)
    assert (out / "report.html").exists()
    legacy = out / ".automix-k3j2h1g0"  # what a killed run of an older mixbridge left inside OUT_DIR
    legacy.mkdir()
    (legacy / "mix.wav").write_bytes(b"\0" * 1000)
    live = tmp_path / ".automix-out-abcd1234"  # another run's staging, still being written
    live.mkdir()
    fd = os.open(live, os.O_RDONLY | os.O_DIRECTORY)
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        ino = out.stat().st_ino
        assert main(["automix", str(multitrack), "-o", str(out), "--mixer", MIXER, "--no-report"]) == 0
        assert sorted(p.name for p in out.iterdir()) == ["master.wav", "mix.wav", "session.json"]
        assert out.stat().st_ino != ino  # a new folder took the name
        assert live.is_dir() and not legacy.exists()
    finally:
        os.close(fd)
    assert remove_stale_staging(out) == [f"removed {live}/ (0.0 MB): the staging folder of an interrupted "
                                         "automix run"]


def test_no_report_is_printed_and_skips_the_report(multitrack, tmp_path, capsys):
    assert main(["automix", str(multitrack), "-o", str(tmp_path / "o"), "--mixer", MIXER, "--no-report"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(f"wrote {tmp_path / 'o'}/: mix.wav, master.wav, session.json (")
    assert not (tmp_path / "o" / "report.html").exists()


def test_an_output_folder_holding_other_files_is_refused_untouched(multitrack, tmp_path, capsys):
    """The folder is replaced as a whole, so one holding the user's files is refused before any work."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(OutputFolderError, match=r"holds 1 entries automix did not write \(notes.txt\)"):
        automix(multitrack, out, mixer=MIXER, progress=False)
    (tmp_path / "afile").write_text("x")
    assert main(["automix", str(multitrack), "-o", str(tmp_path / "afile"), "-q"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "afile: is a file, not a folder; give a folder" in err
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and _staging(tmp_path) == []


# ----------------------------------------------------------------------------- one error path
def test_a_user_error_from_the_os_is_one_line_exit_2(multitrack, tmp_path, capsys):
    """A path through a file (the OS refuses it) is the user's to fix, not a traceback."""
    automix(multitrack, tmp_path / "o", mixer=MIXER, progress=False, report=False)
    (tmp_path / "f").write_text("x")
    assert main(["render", str(tmp_path / "o" / "session.json"), "-o", str(tmp_path / "f" / "m.wav"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"mixbridge render: error: {tmp_path / 'f'}: ") and "give a path through folders" in err


def test_an_internal_error_is_one_line_and_its_traceback_needs_debug(multitrack, tmp_path, capsys, monkeypatch):
    """Any exception that is not a user error: one line naming it as internal and how to see the
    traceback, exit 70; ``mixbridge --debug`` prints the traceback too. The user-error path beside it
    runs for real (the tests above); the bug is injected here."""
    import mixbridge.plugins.report as report

    def bug(*args, **kwargs):
        raise ZeroDivisionError("float division by zero\nsecond line")

    monkeypatch.setattr(report, "write_report", bug)
    argv = ["automix", str(multitrack), "-o", str(tmp_path / "o"), "--mixer", MIXER, "-q"]
    assert main(argv) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err == ("mixbridge automix: internal error: ZeroDivisionError: float division by zero second line; this "
                   "is a bug in mixbridge, not in your input: rerun as `mixbridge --debug automix ...` for the "
                   "traceback and report it\n")
    assert not (tmp_path / "o").exists() and _staging(tmp_path) == []
    assert main(["--debug", *argv]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and 'raise ZeroDivisionError("float division' in err
    assert err.splitlines()[-1].startswith("mixbridge automix: internal error: ZeroDivisionError")


def test_debug_also_shows_a_user_errors_traceback(tmp_path, capsys):
    assert main(["--debug", "render", str(tmp_path / "none.json"), "-o", str(tmp_path / "m.wav")]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "Traceback" in err and err.splitlines()[-1].startswith("mixbridge render: error: ")


def test_a_symlinked_output_folder_keeps_its_link(multitrack, tmp_path):
    """``-o LINK`` to a folder elsewhere: the folder the link names is replaced, the link stays."""
    real = tmp_path / "disk" / "mixes"
    real.mkdir(parents=True)
    link = tmp_path / "out"
    link.symlink_to(real)
    automix(multitrack, link, mixer=MIXER, progress=False, report=False)
    assert link.is_symlink() and os.path.realpath(link) == str(real)
    assert sorted(p.name for p in real.iterdir()) == ["master.wav", "mix.wav", "session.json"]
    assert _staging(tmp_path) == []
    from mixbridge.session import load

    session = load(link / "session.json")
    assert all(session.source_path(t).is_file() for t in session.tracks)
