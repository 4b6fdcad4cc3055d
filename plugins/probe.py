"""Loading plugins in a sandbox: a child process with a time limit, and a cache of what it found.

A plugin is foreign machine code: a truncated ``.so`` kills the process that maps it (SIGBUS),
a buggy one segfaults, and one may hang in its entry point. So nothing loads a plugin in the
calling process before a child process has loaded it first:

* :func:`probe_plugins` loads each plugin file in one reused child process (``python -c``,
  :data:`CHILD_CODE`) and reads its I/O and parameter count. A child that dies (a signal) or
  does not answer within ``timeout_s`` seconds (it is killed, with its process group) costs that
  one plugin a failed :class:`ProbeResult` naming the file, the signal or the limit; a fresh
  child takes the next plugin. ``mixbridge plugins list`` shows one row per plugin this way.
* :func:`inspect_in_child` runs ``plugins inspect`` (every parameter's name and display range)
  in the child and returns the rows; a crash or a hang is one :class:`PluginLoadError`.
* :func:`ensure_loadable` is what :class:`~.vst_plugin.LoadedPlugin` calls before loading in
  this process (render, calibrate): the probe (cached) must have succeeded, otherwise it raises
  :class:`PluginLoadError`, one line naming the file, the signal or the limit, and the fix.

Results are cached per file, keyed by its resolved path, size and modification time (a VST3
bundle folder: the total size and newest mtime of its files), in memory and in
``$MIXBRIDGE_CACHE_DIR/plugin-probe.json`` (default ``$XDG_CACHE_HOME/mixbridge``, else
``~/.cache/mixbridge``), so a plugin is probed once per change of its file, not once per
command. Successful loads and the plugin's own failures (a load error, a crash by SIGBUS,
SIGSEGV, ...) are cached; kills from outside (SIGKILL, SIGTERM, SIGINT: the OOM killer, a user)
are not. A timeout is cached with its limit and reused only by a listing with the same or a
smaller limit (``plugins list`` marks it cached; ``--rescan`` or a larger ``--timeout-s`` tries
again); loading for use (:func:`ensure_loadable`) always tries again, since a loaded machine may
have caused it. An unwritable cache folder only disables the file cache.

The child dies with its parent (``PR_SET_PDEATHSIG``); its stdout/stderr (plugin chatter,
a Python traceback) go to a temporary file whose last line is quoted when the child exits
with a status. Results travel over a dedicated pipe as JSON lines.
"""
from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from mixbridge.errors import BackendUnavailableError, MixbridgeError, PluginNotFoundError

from .discovery import PluginFile, plugin_name

#: Seconds one plugin may take to load (and, for inspection, to list its parameters) in the child
#: before it is killed (``--timeout-s``). Of the 173 Debian plugins (zam, lsp, dragonfly) the slowest
#: load measured 1.0 s on a busy 2-core machine (ZamVerb VST2); one is far slower: pedalboard's
#: parameter sweep of the ZamVerb VST3 reloads its convolution preset per step (286 s), so it is
#: reported as not loading within the limit.
DEFAULT_TIMEOUT_S = 30.0
#: Environment variable that sets the default limit for every command (``automix``, ``datagen``, ``render``...).
TIMEOUT_ENV = "MIXBRIDGE_PLUGIN_TIMEOUT_S"
#: Largest ``--timeout-s`` accepted, in seconds.
MAX_TIMEOUT_S = 3600.0
#: Seconds the child may take to start (Python, numpy, mixbridge imports) before it answers "ready".
STARTUP_TIMEOUT_S = 120.0
#: Environment variable naming the cache folder.
CACHE_ENV = "MIXBRIDGE_CACHE_DIR"
#: File name of the probe cache inside the cache folder.
CACHE_FILE = "plugin-probe.json"
CACHE_FORMAT = "mixbridge-plugin-probe-cache"
CACHE_VERSION = 1
#: Signals that may come from outside the plugin (OOM killer, a user): such a result is not cached.
OUTSIDE_SIGNALS = ("SIGKILL", "SIGTERM", "SIGINT", "SIGHUP")
#: Characters of the child's last log line quoted in an error.
LOG_TAIL_CHARS = 200

#: What the child runs: ``python -c CHILD_CODE RESULT_FD PARENT_PID``.
CHILD_CODE = ("import sys; from mixbridge.plugins.probe import child_main; "
              "child_main(int(sys.argv[1]), int(sys.argv[2]))")


class PluginLoadError(PluginNotFoundError):
    """A plugin file that crashes, hangs or fails to load (found by the sandboxed probe).

    Attributes:
        path: the plugin file or bundle.
        reason: what happened (``"killed by SIGBUS (Bus error) while loading"``).
        signal: the signal's name (``"SIGBUS"``) when the probe process died of one, else None.
    """

    def __init__(self, message: str, *, path: Path | str, reason: str, signal: str | None = None) -> None:
        super().__init__(message)
        self.path = Path(path)
        self.reason = reason
        self.signal = signal

    def __str__(self) -> str:  # FileNotFoundError would format (errno, strerror)
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class ProbeResult:
    """What the child found for one plugin file.

    Attributes:
        path: the plugin file or bundle; format: ``"vst2"`` or ``"vst3"``.
        status: ``"ok"``, ``"error"`` (the loader refused it), ``"crash"`` (the child died) or
            ``"timeout"`` (no answer within the limit; killed).
        inputs, outputs: main-bus channel counts (None unless ok); n_params: parameter count.
        reason: empty when ok, else what happened, naming the signal or the limit.
        signal: the signal name for a crash (``"SIGBUS"``), else None.
        seconds: wall time of the load in the child (or until the crash/timeout), in seconds.
        limit_s: the time limit it ran under, in seconds.
        cached: True when this result came from the cache.
    """

    path: Path
    format: str
    status: str
    inputs: int | None = None
    outputs: int | None = None
    n_params: int | None = None
    reason: str = ""
    signal: str | None = None
    seconds: float = 0.0
    limit_s: float = DEFAULT_TIMEOUT_S
    cached: bool = False

    @property
    def ok(self) -> bool:
        """True when the plugin loaded in the child."""
        return self.status == "ok"

    def summary(self) -> str:
        """One short cell: ``"2 in / 2 out, 3 params"`` or ``"failed: killed by SIGBUS ..."``."""
        if self.ok:
            return f"{self.inputs} in / {self.outputs} out, {self.n_params} params"
        return f"failed: {self.reason}" + (" [cached: --rescan tries again]" if self.cached else "")

    def error(self) -> PluginLoadError:
        """The one-line error for a failed result (naming the file, the signal or limit, and the fix)."""
        if self.status == "timeout":
            fix = (f"if the machine is just busy raise the limit (--timeout-s of `mixbridge plugins`, or "
                   f"${TIMEOUT_ENV} for every command), otherwise remove or reinstall the plugin")
        else:
            fix = "reinstall the plugin, or move it off the search path (VST_PATH, VST3_PATH, --path)"
        return PluginLoadError(f"plugin {self.path} {self.reason}; {fix}", path=self.path, reason=self.reason,
                               signal=self.signal)


def check_timeout_s(timeout_s: float | None) -> float:
    """The plugin load limit in seconds: ``timeout_s``, or when None ``$MIXBRIDGE_PLUGIN_TIMEOUT_S``
    (:data:`TIMEOUT_ENV`), else :data:`DEFAULT_TIMEOUT_S`; it must lie in (0, :data:`MAX_TIMEOUT_S`].

    Raises:
        ParamRangeError: out of range, NaN, or an environment value that is not a number; names
            the value, the range and where it came from.
    """
    from mixbridge.errors import ParamRangeError

    source = "--timeout-s"
    if timeout_s is None:
        env = os.environ.get(TIMEOUT_ENV, "").strip()
        if not env:
            return DEFAULT_TIMEOUT_S
        source = f"${TIMEOUT_ENV}"
        try:
            timeout_s = float(env)
        except ValueError:
            raise ParamRangeError(f"{source}={env!r} is not a number of seconds; give one in (0, {MAX_TIMEOUT_S:g}] "
                                  f"or unset it (default {DEFAULT_TIMEOUT_S:g})", param="timeout_s") from None
    t = float(timeout_s)
    if not (0.0 < t <= MAX_TIMEOUT_S):  # also refuses NaN
        raise ParamRangeError(f"{source} {t:g} is outside (0, {MAX_TIMEOUT_S:g}] s; give the seconds one "
                              f"plugin may take to load (default {DEFAULT_TIMEOUT_S:g})",
                              param="timeout_s", value=t, reachable=(0.0, MAX_TIMEOUT_S))
    return t


def describe_signal(signum: int) -> tuple[str, str]:
    """``(name, text)`` of a signal number: ``(“SIGBUS”, “killed by SIGBUS (Bus error)”)``."""
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    text = signal.strsignal(signum) or name
    return name, f"killed by {name} ({text})"


# --------------------------------------------------------------------------- cache
def cache_path() -> Path:
    """The probe cache file (:data:`CACHE_FILE`) in ``$MIXBRIDGE_CACHE_DIR``, else in
    ``$XDG_CACHE_HOME/mixbridge``, else in ``~/.cache/mixbridge``."""
    folder = os.environ.get(CACHE_ENV)
    if not folder:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        folder = os.path.join(base, "mixbridge")
    return Path(folder) / CACHE_FILE


def file_signature(path: Path) -> tuple[int, int]:
    """``(size in bytes, mtime in ns)`` of a plugin file; for a bundle folder, the total size and the
    newest mtime of everything inside it (a rebuilt inner ``.so`` changes the signature).

    Raises:
        OSError: the path cannot be read.
    """
    st = path.stat()
    if not path.is_dir():
        return st.st_size, st.st_mtime_ns
    size, mtime = 0, st.st_mtime_ns
    for dirpath, _dirs, files in os.walk(path):
        mtime = max(mtime, os.stat(dirpath).st_mtime_ns)
        for f in files:
            try:
                fs = os.stat(os.path.join(dirpath, f))
            except OSError:
                continue
            size += fs.st_size
            mtime = max(mtime, fs.st_mtime_ns)
    return size, mtime


_MEMO: dict[tuple[str, str, int, int], ProbeResult] = {}


def _cacheable(res: ProbeResult) -> bool:
    return res.status in ("ok", "error", "timeout") or (res.status == "crash" and res.signal is not None
                                                        and res.signal not in OUTSIDE_SIGNALS)


def _reusable(res: ProbeResult | None, timeout_s: float, reuse_timeouts: bool) -> ProbeResult | None:
    """A cached result, unless it is a timeout that this call should try again."""
    if res is not None and res.status == "timeout" and (not reuse_timeouts or timeout_s > res.limit_s):
        return None
    return res


def _read_cache_file(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict) or doc.get("format") != CACHE_FORMAT or doc.get("version") != CACHE_VERSION:
        return {}
    entries = doc.get("plugins")
    return entries if isinstance(entries, dict) else {}


def _result_from_entry(entry: Any, path: Path, fmt: str, sig: tuple[int, int]) -> ProbeResult | None:
    if not isinstance(entry, dict) or entry.get("format") != fmt or entry.get("signature") != list(sig):
        return None
    try:
        return ProbeResult(path=path, format=fmt, status=str(entry["status"]), inputs=entry.get("inputs"),
                           outputs=entry.get("outputs"), n_params=entry.get("n_params"),
                           reason=str(entry.get("reason", "")), signal=entry.get("signal"),
                           seconds=float(entry.get("seconds", 0.0)),
                           limit_s=float(entry.get("limit_s", DEFAULT_TIMEOUT_S)), cached=True)
    except (KeyError, TypeError, ValueError):
        return None


def _write_cache(results: Sequence[tuple[ProbeResult, tuple[int, int]]]) -> None:
    """Merge ``results`` into the cache file (atomic replace; a failure to write only loses the cache)."""
    keep = [(r, s) for r, s in results if _cacheable(r)]
    if not keep:
        return
    from mixbridge.atomic import atomic_write_text

    path = cache_path()
    entries = _read_cache_file(path)
    for r, s in keep:
        d = asdict(r)
        d.pop("cached")
        d.pop("path")
        d["signature"] = list(s)
        entries[str(r.path)] = d
    doc = {"format": CACHE_FORMAT, "version": CACHE_VERSION, "plugins": entries}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(doc, indent=0, sort_keys=True) + "\n")
    except OSError:
        pass


def clear_memo() -> None:
    """Forget the in-memory results (the file cache stays)."""
    _MEMO.clear()


# --------------------------------------------------------------------------- the child process
class _Timeout(Exception):
    pass


class _Child:
    """One probe child: requests on its stdin, JSON answers on a dedicated pipe."""

    def __init__(self) -> None:
        self.owner = os.getpid()
        self.log = tempfile.TemporaryFile()
        r, w = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", CHILD_CODE, str(w), str(os.getpid())],
                stdin=subprocess.PIPE, stdout=self.log, stderr=self.log, pass_fds=(w,), start_new_session=True,
                close_fds=True,
            )
        except BaseException:
            os.close(r)
            os.close(w)
            self.log.close()
            raise
        os.close(w)
        self.fd = r
        self.buf = b""
        msg = self._answer(time.monotonic() + STARTUP_TIMEOUT_S)
        if msg is None or not msg.get("ready"):
            why = self.exit_reason()
            self.kill()
            raise MixbridgeError(f"the plugin probe process did not start: {why}; check that `{sys.executable} -c "
                                 "'import mixbridge.plugins.vst_plugin'` works")

    def _answer(self, deadline: float) -> dict | None:
        """The next JSON line, None on EOF (the child died); raises _Timeout past ``deadline``."""
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Timeout
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def request(self, req: dict, timeout_s: float) -> dict | None:
        """Send ``req``; its answer, None when the child died; raises _Timeout (the child is then killed)."""
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return None
        try:
            return self._answer(time.monotonic() + timeout_s)
        except _Timeout:
            self.kill()
            raise

    def exit_reason(self) -> str:
        """How the child ended: ``"killed by SIGBUS (Bus error)"`` or ``"exited with status 1 (last log line)"``."""
        try:
            code = self.proc.wait(timeout=10.0)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.returncode
        if code is not None and code < 0:
            return describe_signal(-code)[1]
        tail = ""
        try:
            self.log.seek(0)
            lines = [ln for ln in self.log.read().decode("utf-8", "replace").splitlines() if ln.strip()]
            tail = lines[-1][-LOG_TAIL_CHARS:] if lines else ""
        except OSError:
            pass
        return f"exited with status {code}" + (f" ({tail.strip()})" if tail else "")

    def signal_name(self) -> str | None:
        code = self.proc.returncode
        return describe_signal(-code)[0] if code is not None and code < 0 else None

    def alive(self) -> bool:
        return self.proc.poll() is None and self.owner == os.getpid()

    def kill(self) -> None:
        """Kill the child and its process group; release the pipe and the log."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                self.proc.kill()
        try:
            self.proc.wait(timeout=10.0)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL did not end it
            pass
        for f in (self.proc.stdin,):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self.log.close()

    def close(self) -> None:
        """End the child normally (EOF on its stdin), killing it if it does not go."""
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(timeout=5.0)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


_SHARED: list[_Child] = []  # the child this process reuses (at most one)
_LOCK = threading.RLock()  # one request at a time on the shared child (render threads may load plugins)


def _shared_child() -> _Child:
    while _SHARED and not _SHARED[-1].alive():
        stale = _SHARED.pop()
        if stale.owner == os.getpid():  # a child forked from this process's parent is not ours to kill
            stale.kill()
    if not _SHARED:
        _SHARED.append(_Child())
    return _SHARED[-1]


def _drop_shared(child: _Child) -> None:
    if child in _SHARED:
        _SHARED.remove(child)


@atexit.register
def close_children() -> None:
    """End the reused probe child (registered with :mod:`atexit`)."""
    with _LOCK:
        _close_all()


def _close_all() -> None:
    while _SHARED:
        c = _SHARED.pop()
        if c.owner == os.getpid():
            c.close()


def _run(req: dict, path: Path, fmt: str, timeout_s: float) -> tuple[ProbeResult, dict | None]:
    """Run one request in the shared child: ``(result, the child's answer or None)``.

    A child killed by a signal from outside (:data:`OUTSIDE_SIGNALS`: the OOM killer, or
    ``PR_SET_PDEATHSIG`` when the thread that started it ended) gets the request once more in a
    fresh child, so such a kill is not blamed on the plugin.
    """
    with _LOCK:
        res, ans = _run_once(req, path, fmt, timeout_s)
        if res.status == "crash" and res.signal in OUTSIDE_SIGNALS:
            res, ans = _run_once(req, path, fmt, timeout_s)
        return res, ans


def _run_once(req: dict, path: Path, fmt: str, timeout_s: float) -> tuple[ProbeResult, dict | None]:
    child = _shared_child()
    t0 = time.monotonic()
    try:
        ans = child.request(req, timeout_s)
    except _Timeout:
        _drop_shared(child)
        return ProbeResult(path, fmt, "timeout", reason=f"did not load within {timeout_s:g} s (the probe process "
                           "was killed)", seconds=time.monotonic() - t0, limit_s=timeout_s), None
    dt = time.monotonic() - t0
    if ans is None:
        why = child.exit_reason()
        sig = child.signal_name()
        _drop_shared(child)
        child.kill()
        return ProbeResult(path, fmt, "crash", reason=f"{why} while loading", signal=sig, seconds=dt,
                           limit_s=timeout_s), None
    if not ans.get("ok") and "unavailable" in ans:
        raise BackendUnavailableError(str(ans["unavailable"]))
    if not ans.get("ok"):
        return ProbeResult(path, fmt, "error", reason=str(ans.get("reason", "fails to load")), seconds=dt,
                           limit_s=timeout_s), ans
    return ProbeResult(path, fmt, "ok", inputs=int(ans["inputs"]), outputs=int(ans["outputs"]),
                       n_params=int(ans["n_params"]), seconds=dt, limit_s=timeout_s), ans


def probe_plugins(plugins: Iterable[PluginFile], timeout_s: float | None = None, *, use_cache: bool = True,
                  reuse_timeouts: bool = True,
                  on_result: Callable[[ProbeResult], None] | None = None) -> list[ProbeResult]:
    """Load each plugin in the sandbox child and report its I/O, or how it failed (see the module docstring).

    Args:
        plugins: the files to probe (:func:`~.discovery.find_plugins` rows).
        timeout_s: seconds one plugin may take to load before the child is killed.
        use_cache: read results from the cache (False: probe again); results are written to it either way.
        reuse_timeouts: take a cached timeout (one under a limit >= ``timeout_s``) as the answer;
            False tries such a plugin again.
        on_result: called with each result as it comes (progress).

    Returns:
        One :class:`ProbeResult` per plugin, in order. Never raises for a plugin's own failure.

    Raises:
        ParamRangeError: ``timeout_s`` outside (0, :data:`MAX_TIMEOUT_S`].
        MixbridgeError: the probe process itself cannot start.
        BackendUnavailableError: DawDreamer (VST2) or pedalboard (VST3) is missing.
    """
    timeout_s = check_timeout_s(timeout_s)
    disk = _read_cache_file(cache_path()) if use_cache else {}
    out: list[ProbeResult] = []
    fresh: list[tuple[ProbeResult, tuple[int, int]]] = []
    for pf in plugins:
        path = Path(pf.path)
        try:
            sig = file_signature(path)
        except OSError as e:
            unreadable = ProbeResult(path, pf.format, "error", reason=f"cannot be read ({e.strerror})")
            out.append(unreadable)
            if on_result:
                on_result(unreadable)
            continue
        key = (str(path), pf.format, *sig)
        res: ProbeResult | None
        res = _reusable(_MEMO.get(key), timeout_s, reuse_timeouts) if use_cache else None
        if res is None and use_cache:
            res = _reusable(_result_from_entry(disk.get(str(path)), path, pf.format, sig), timeout_s, reuse_timeouts)
        if res is None:
            res, _ = _run({"op": "probe", "path": str(path), "format": pf.format}, path, pf.format, timeout_s)
            fresh.append((res, sig))
        if _cacheable(res):
            _MEMO[key] = replace(res, cached=True)
        out.append(res)
        if on_result:
            on_result(res)
    _write_cache(fresh)
    return out


def probe_plugin(path: str | os.PathLike, format: str, timeout_s: float | None = None, *,
                 use_cache: bool = True, reuse_timeouts: bool = True) -> ProbeResult:
    """:func:`probe_plugins` for one file (``format`` ``"vst2"`` or ``"vst3"``)."""
    p = Path(path)
    return probe_plugins([PluginFile(plugin_name(p), p, format)], timeout_s, use_cache=use_cache,
                         reuse_timeouts=reuse_timeouts)[0]


def ensure_loadable(path: str | os.PathLike, format: str, timeout_s: float | None = None) -> ProbeResult:
    """Check in the sandbox (cached) that a plugin loads before this process loads it.

    Returns:
        The successful :class:`ProbeResult`.

    Raises:
        PluginLoadError: the plugin crashes the probe (naming the signal), hangs past ``timeout_s``
            seconds, or its loader refuses it; one line naming the file and the fix.
    """
    res = probe_plugin(path, format, timeout_s, reuse_timeouts=False)
    if not res.ok:
        raise res.error()
    return res


def inspect_in_child(path: str | os.PathLike, format: str, timeout_s: float | None = None,
                     sample_rate: int | None = None) -> dict:
    """Every parameter of one plugin (``plugins inspect``), read in the sandbox child.

    Returns:
        ``{"name", "path", "format", "inputs", "outputs", "parameters": [ParamInfo fields...]}``.

    Raises:
        PluginLoadError: the plugin crashes, hangs past ``timeout_s`` seconds or fails to load.
        ParamRangeError: ``timeout_s`` out of range.
    """
    from .vst_plugin import INSPECT_SAMPLE_RATE

    timeout_s = check_timeout_s(timeout_s)
    p = Path(path)
    req = {"op": "inspect", "path": str(p), "format": format, "sample_rate": int(sample_rate or INSPECT_SAMPLE_RATE)}
    res, ans = _run(req, p, format, timeout_s)
    if not res.ok or ans is None:
        raise res.error()
    return ans["inspect"]


# --------------------------------------------------------------------------- inside the child
def _serve(req: dict) -> dict:
    from .vst_plugin import INSPECT_SAMPLE_RATE, LoadedPlugin, inspect_plugin

    path = Path(req["path"])
    lp = LoadedPlugin(path, req["format"], int(req.get("sample_rate", INSPECT_SAMPLE_RATE)), probe=False)
    try:
        ans: dict[str, Any] = {"ok": True, "inputs": lp.inputs, "outputs": lp.outputs,
                               "n_params": len(lp.param_names())}
        if req.get("op") == "inspect":
            ans["inspect"] = {"name": lp.name, "path": str(lp.path), "format": lp.format, "inputs": lp.inputs,
                              "outputs": lp.outputs, "parameters": [asdict(r) for r in inspect_plugin(lp)]}
        return ans
    finally:
        lp.close()
        lp.engine = None


def child_main(result_fd: int, parent_pid: int) -> None:
    """The probe child's loop (run through :data:`CHILD_CODE`): one JSON request per stdin line, one
    JSON answer per line on ``result_fd``; ends at EOF. Dies with the parent (``PR_SET_PDEATHSIG``)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl
        os._exit(1)
    out = os.fdopen(result_fd, "w", buffering=1)
    import mixbridge.plugins.vst_plugin  # noqa: F401 - import once, before "ready"

    out.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            ans = _serve(json.loads(line))
        except PluginLoadError as e:
            ans = {"ok": False, "reason": e.reason}
        except BackendUnavailableError as e:  # not the plugin's fault: the parent raises it, uncached
            ans = {"ok": False, "unavailable": str(e)}
        except MixbridgeError as e:
            ans = {"ok": False, "reason": f"fails to load ({type(e).__name__}: {e})"}
        except Exception as e:  # a loader's own exception: the plugin's failure, reported as one line
            ans = {"ok": False, "reason": f"fails to load ({type(e).__name__}: {e})"}
        out.write(json.dumps(ans) + "\n")
