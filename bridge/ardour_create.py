"""``push --create`` and ``pull --ardour-session`` for Ardour: the whole session through a saved ``.ardour`` file.

Ardour's OSC surface sets what exists; it cannot create a track, insert a plugin or write an automation
lane. Ardour's own Lua can: :func:`create_in_ardour` generates the headless script of
:func:`~mixbridge.bridge.daw_scripts.daw_script` (the same numbers a push sends, from the same push plan;
every curve as events in Ardour's own lanes), runs it with ``ardour7-lua`` on the saved session (which must
not be open in an Ardour at the same time: the probe refuses when Ardour answers on the OSC port), switches
the session's OSC surface on, and verifies the result by reading the saved XML back
(:func:`~mixbridge.bridge.ardour_session.read_ardour_session`) and comparing it with the session
(:func:`~mixbridge.bridge.roundtrip.compare_sessions`). Values then go over OSC as usual once the session is
open (``mixbridge push``).

:func:`pull_ardour_session` is the pull that keeps automation: it asks a running Ardour to save
(``/save_state``) and reads the saved session, lanes included; with no Ardour answering it reads the file as
last saved.
"""
from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mixbridge.session import Session

from .ardour import ARDOUR_LUA, enable_osc, run_ardour_lua
from .ardour_session import read_ardour_session, save_ardour_state
from .daw_scripts import DEFAULT_BUS_NAME, DEFAULT_RATE_HZ, DawScript, daw_script
from .errors import ArdourError, BridgeConfigError, DawUnreachableError
from .profile_ardour import ArdourProfile, ardour_list_strips
from .roundtrip import SessionDiff, compare_sessions
from .transport import LOCALHOST, OscUdpClient

if TYPE_CHECKING:
    from .push import PullReport

#: Longest headless run of a create script (s): 64 tracks with two plugins each took ~20 s on 2 busy cores.
CREATE_RUN_TIMEOUT_S = 600.0
#: How long the probe waits for a running Ardour to answer before a headless create (s).
PROBE_TIMEOUT_S = 1.0
#: A static value read back from the saved session is off beyond this fraction of its magnitude (at least 1):
#: Ardour saves gains as doubles and plugin controls as float32 (6e-8 relative).
CREATE_VERIFY_REL = 1e-4
_SUMMARY = re.compile(r"mixbridge: (\d+) tracks \((\d+) created\), (\d+) plugins inserted, (\d+) automation points")


@dataclass
class CreateReport:
    """What ``push --create`` did: the script (what it carries, ``not_sent``, ``clamped``), the counts the Lua
    run printed (``tracks``, ``created``, ``plugins``, ``points``), the run's wall time (s) and the verification
    of the saved session (None: skipped)."""

    script: DawScript
    tracks: int
    created: int
    plugins: int
    points: int
    elapsed_s: float
    diff: SessionDiff | None = None
    lines: list[str] = field(default_factory=list)


def _check_file(session_file: str | Path) -> Path:
    p = Path(session_file).expanduser().resolve()
    if p.suffix != ".ardour" or not p.is_file():
        raise BridgeConfigError(f"--ardour-session {session_file}: give an existing Ardour session file "
                                "(<folder>/<name>.ardour; Session > New in Ardour makes an empty one)")
    return p


def ardour_answers(host: str, port: int, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """True if an Ardour OSC surface answers ``/strip/list`` on ``host:port`` within ``timeout_s``."""
    try:
        with OscUdpClient(host, port, timeout_s=timeout_s) as c:
            ardour_list_strips(c)
        return True
    except DawUnreachableError:
        return False


def _skips(session: Session, not_sent: list[str]) -> set[str]:
    """``"<track>: <path>"`` for every value or curve a script lists as not sent."""
    out = set()
    for u in not_sent:
        for t in session.tracks:
            prefix = f"{t.name}: "
            if u.startswith(prefix):
                rest = u[len(prefix):]
                path = rest.split()[1] if rest.startswith("automation ") else rest.split(" = ", 1)[0]
                out.add(f"{t.name}: {path}")
    return out


def create_in_ardour(session: Session, session_file: str | Path, *, host: str = LOCALHOST,
                     port: int | None = None, clamp: bool = False, rate_hz: float = DEFAULT_RATE_HZ,
                     bus_name: str = DEFAULT_BUS_NAME, verify: bool = True, nice: int = 0) -> CreateReport:
    """Build ``session`` in the saved Ardour session ``session_file`` from whatever it holds (an empty
    session included): the missing tracks by name, the mapped plugins, the reverb bus with a post-fader
    send from every track, every mapped value, the solved master gain, and every curve as a lane in Play.

    Args:
        session: the mix (validated).
        session_file: the saved ``.ardour`` file; it is rewritten (Ardour keeps its own ``.bak``).
        host, port: where a running Ardour would answer OSC (default port 3819); if one answers, nothing runs.
        clamp, rate_hz, bus_name: as :func:`~mixbridge.bridge.daw_scripts.daw_script`.
        verify: read the saved session back and compare it with ``session`` (``CreateReport.diff``).
        nice: run ``ardour7-lua`` at this niceness.

    Raises:
        BridgeConfigError: no such ``.ardour`` file, or an Ardour answers on ``host:port`` (close it first).
        ArdourError: ``ardour7-lua`` is missing, failed or ran past :data:`CREATE_RUN_TIMEOUT_S`.
        DawRangeError: a value Ardour cannot take (unless ``clamp``).
    """
    path = _check_file(session_file)
    port = ArdourProfile.default_port if port is None else port
    script = daw_script(session, "ardour", clamp=clamp, rate_hz=rate_hz, bus_name=bus_name, headless_session=path)
    if ardour_answers(host, port):
        raise BridgeConfigError(
            f"an Ardour answers OSC on {host}:{port}: --create edits the saved session with Ardour's headless Lua, "
            "which must not run while Ardour has it open; save and close the session (Session > Close) and run "
            "again, or run `mixbridge daw-script --daw ardour` in Ardour's Window > Scripting")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mixbridge-ardour-") as work:
        lua = Path(work) / "create.lua"
        lua.write_text(script.text)
        res = run_ardour_lua(lua, work, timeout_s=CREATE_RUN_TIMEOUT_S, nice=nice)
    elapsed = time.perf_counter() - t0
    m = _SUMMARY.search(res.stdout)
    if "MIXBRIDGE-SCRIPT-DONE" not in res.stdout or m is None:
        tail = "\n".join(line for line in (res.stdout + res.stderr).splitlines() if "lilv" not in line)[-2000:]
        raise ArdourError(f"{ARDOUR_LUA} did not finish building the session in {path} (exit {res.returncode}); "
                          f"its output ends:\n{tail}")
    enable_osc(path)
    rep = CreateReport(script, int(m[1]), int(m[2]), int(m[3]), int(m[4]), elapsed)
    if verify:
        back = read_ardour_session(path, clamp=True)
        got = Session(back.sample_rate, back.tracks, back.master)
        rep.diff = compare_sessions(session, got, paths=ArdourProfile().mapped_paths(), static_rel=CREATE_VERIFY_REL,
                                    rate_hz=rate_hz, skip=_skips(session, script.not_sent))
    rep.lines = [f"created in {path}: {rep.tracks} tracks ({rep.created} new), {rep.plugins} plugins inserted, "
                 f"{rep.points} automation points in {sum(len(t.lanes) for t in script.tracks)} lanes, "
                 f"in {elapsed:.1f} s (ardour7-lua)"]
    if rep.diff is not None:
        rep.lines.append(rep.diff.summary())
        rep.lines += [f"off: {o}" for o in rep.diff.off]
    return rep


def pull_ardour_session(session_file: str | Path, *, host: str = LOCALHOST, port: int | None = None,
                        clamp: bool = False, timeout_s: float = 2.0, sample_rate: int | None = None) -> PullReport:
    """Pull from a saved Ardour session, automation lanes included (:func:`read_ardour_session`): a running
    Ardour on ``host:port`` is first asked to save (``/save_state``); with none answering the file is read as
    last saved (``PullReport.ignored`` says so).

    Raises:
        BridgeConfigError: no such ``.ardour`` file, or ``sample_rate`` differs from the session's.
        ArdourError: Ardour answered but did not rewrite this file (it has another session open).
        DawRangeError: a value outside the schema range (unless ``clamp``).
    """
    from .push import PullReport, _new_session

    path = _check_file(session_file)
    port = ArdourProfile.default_port if port is None else port
    notes = []
    if ardour_answers(host, port, timeout_s):
        save_ardour_state(path, host=host, port=port, timeout_s=max(10.0, timeout_s))
    else:
        notes.append(f"no Ardour answered on {host}:{port}: read {path.name} as last saved")
    back = read_ardour_session(path, clamp=clamp)
    if sample_rate is not None and sample_rate != back.sample_rate:
        raise BridgeConfigError(f"--sample-rate {sample_rate} differs from the {back.sample_rate} Hz of {path.name}; "
                                "drop --sample-rate (the session's rate is used)")
    s = _new_session("ardour", host, port, back.tracks, back.sample_rate)
    s.master = back.master
    s.provenance["ardour_session"] = str(path)
    s.validate()
    from .routing import RouterStats

    return PullReport(s, back.not_read, back.clamped, RouterStats(), back.silenced, notes, "ardour")
