"""Headless Ardour 7 for tests, benchmarks and demos: create a session, run it with OSC on.

Facts used (DESIGN.md §4): ``ardour7-lua`` (luasession) drives Ardour without a
GUI; the "None (Dummy)" audio backend is shown when the isolated
``$XDG_CONFIG_HOME/ardour7/config`` sets ``hide-dummy-backend=0``; the OSC
surface is switched on per session in the ``.ardour`` XML (``<Protocol
name="Open Sound Control (OSC)" active="1"/>``) and listens on the ``osc-port``
option of that config (default 3819). Start to ready takes a few seconds.

:class:`HeadlessArdour` keeps every file under one work folder (config, data,
cache and the session), runs Ardour in its own process group and kills that
group on :meth:`stop`, so nothing is left running.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from .errors import ArdourError
from .transport import LOCALHOST, OscUdpClient, free_udp_port

ARDOUR_LUA = "ardour7-lua"
#: Creating an 8-track session takes ~2 s here, starting one ~3 s; allow for a busy machine.
CREATE_TIMEOUT_S = 120.0
START_TIMEOUT_S = 60.0
READY_MARK = "MIXBRIDGE-READY"
#: Measured: a mute sent just before /save_state was missing from the XML; 0.5 s later it was there.
SETTLE_S = 0.5

_CREATE_LUA = """
AudioEngine:set_backend("None (Dummy)", "", "")
local s = create_session("{folder}", "{name}", {sample_rate})
assert(s, "create_session failed")
for i = 1, {n_tracks} do
  local tl = Session:new_audio_track(1, 2, nil, 1, "{prefix}" .. i, ARDOUR.PresentationInfo.max_order,
                                     ARDOUR.TrackMode.Normal, true)
  local r = tl:front()
  {plugins}
end
{bus}
Session:save_state("", false, false, false, false, false)
close_session()
print("MIXBRIDGE-CREATED")
"""
_PLUGIN_LUA = """
  do
    local p = ARDOUR.LuaAPI.new_plugin(Session, "{uri}", ARDOUR.PluginType.LV2, "")
    assert(not p:isnil(), "plugin {uri} not found")
    r:add_processor_by_index(p, {index}, nil, true)
  end"""
#: A bus after the tracks and a post-fader aux send from every track to it (``send.send_db``).
_BUS_LUA = """
local bus = Session:new_audio_route(2, 2, nil, 1, "{bus_name}", ARDOUR.PresentationInfo.Flag.AudioBus,
                                    ARDOUR.PresentationInfo.max_order):front()
local senders = ARDOUR.RouteListPtr()
for t in Session:get_tracks():iter() do senders:push_back(t) end
Session:add_internal_sends(bus, ARDOUR.Placement.PostFader, senders)
"""
_RUN_LUA = """
AudioEngine:set_backend("None (Dummy)", "", "")
local s = load_session("{folder}", "{name}")
assert(s, "load_session failed")
print("{ready}")
io.stdout:flush()
while true do ARDOUR.LuaAPI.usleep(100000) end
"""
#: The plugins every created track gets, in strip order (ids in plugin_maps.ARDOUR_MAP).
DEFAULT_PLUGINS = ("urn:ardour:a-eq", "urn:ardour:a-comp")


def headless_env(workdir: str | Path, *, osc_port: int | None = None) -> dict[str, str]:
    """The environment of a headless Ardour run kept under ``workdir``: its own config, data, cache and home
    (the user's Ardour settings are never read or written), the Dummy backend shown
    (``hide-dummy-backend=0``) and, where given, the OSC surface's port."""
    workdir = Path(workdir).resolve()
    env = dict(os.environ)
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"), ("XDG_CACHE_HOME", "cache"),
                     ("HOME", "home")):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(workdir / sub)
    cfg = workdir / "config" / "ardour7"
    cfg.mkdir(parents=True, exist_ok=True)
    port = f'    <Option name="osc-port" value="{osc_port}"/>\n' if osc_port is not None else ""
    (cfg / "config").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<Ardour>\n  <Config>\n'
        '    <Option name="hide-dummy-backend" value="0"/>\n'
        f"{port}"
        "  </Config>\n</Ardour>\n"
    )
    return env


def run_ardour_lua(script: str | Path, workdir: str | Path, *, timeout_s: float, nice: int = 0,
                   osc_port: int | None = None) -> subprocess.CompletedProcess:
    """Run a Lua file with ``ardour7-lua`` in :func:`headless_env` (its own process group, ``nice`` niceness).

    Raises:
        ArdourError: ``ardour7-lua`` is not installed, or did not finish within ``timeout_s``.
    """
    cmd = ([*("nice", "-n", str(nice))] if nice else []) + [ARDOUR_LUA, str(script)]
    try:
        return subprocess.run(cmd, env=headless_env(workdir, osc_port=osc_port), cwd=workdir, capture_output=True,
                              text=True, timeout=timeout_s, start_new_session=True)
    except FileNotFoundError:
        raise ArdourError(f"{ARDOUR_LUA} not found; install Debian's 'ardour' package") from None
    except subprocess.TimeoutExpired:
        raise ArdourError(f"{ARDOUR_LUA} {Path(script).name} did not finish within {timeout_s:g} s") from None


def ardour_available() -> bool:
    """True if Ardour's headless Lua session runner (``ardour7-lua``) is on PATH."""
    return shutil.which(ARDOUR_LUA) is not None


class HeadlessArdour:
    """One headless Ardour session under ``workdir`` with its OSC surface on ``osc_port``.

    ``send_bus``: also create a bus of that name after the tracks, fed by a post-fader aux
    send from every track (sends start silent, as Ardour makes them). ``nice``: run Ardour at that
    niceness (tests on a shared machine).
    """

    def __init__(self, workdir: str | Path, *, n_tracks: int = 8, name: str = "mixbridge",
                 track_prefix: str = "T", osc_port: int | None = None, sample_rate: int = 48000,
                 plugins: tuple[str, ...] = DEFAULT_PLUGINS, send_bus: str | None = None, nice: int = 0):
        if not re.fullmatch(r"[A-Za-z0-9_-]+", name) or not re.fullmatch(r"[A-Za-z0-9_ -]*", track_prefix):
            raise ArdourError(f"session name {name!r} / track prefix {track_prefix!r}: use letters, digits, _ and -")
        if send_bus is not None and not re.fullmatch(r"[A-Za-z0-9_-]+", send_bus):
            raise ArdourError(f"send bus name {send_bus!r}: use letters, digits, _ and -")
        self.workdir = Path(workdir).resolve()
        self.n_tracks, self.name, self.track_prefix = n_tracks, name, track_prefix
        self.osc_port = osc_port or free_udp_port()
        self.sample_rate = sample_rate
        self.plugins = plugins
        self.send_bus = send_bus
        self.nice = nice
        self.folder = self.workdir / "session"
        self.proc: subprocess.Popen | None = None
        self.log_path = self.workdir / "ardour.log"

    @property
    def session_file(self) -> Path:
        """The session's ``.ardour`` XML file."""
        return self.folder / f"{self.name}.ardour"

    def _env(self) -> dict[str, str]:
        return headless_env(self.workdir, osc_port=self.osc_port)

    def _lua(self, script: str, timeout_s: float, tag: str) -> subprocess.CompletedProcess:
        path = self.workdir / f"{tag}.lua"
        path.write_text(script)
        return run_ardour_lua(path, self.workdir, timeout_s=timeout_s, nice=self.nice, osc_port=self.osc_port)

    def create(self) -> Path:
        """Create the session (tracks ``T1..Tn`` with the plugins, the send bus), enable OSC in its XML."""
        if self.folder.exists():
            shutil.rmtree(self.folder)
        self.workdir.mkdir(parents=True, exist_ok=True)
        plugins = "".join(_PLUGIN_LUA.format(uri=u, index=i) for i, u in enumerate(self.plugins))
        bus = _BUS_LUA.format(bus_name=self.send_bus) if self.send_bus else ""
        res = self._lua(_CREATE_LUA.format(folder=self.folder, name=self.name, sample_rate=self.sample_rate,
                                           n_tracks=self.n_tracks, prefix=self.track_prefix, plugins=plugins,
                                           bus=bus), CREATE_TIMEOUT_S, "create")
        if "MIXBRIDGE-CREATED" not in res.stdout or not self.session_file.exists():
            tail = "\n".join((res.stdout + res.stderr).splitlines()[-15:])
            raise ArdourError(f"creating the Ardour session failed (exit {res.returncode}):\n{tail}")
        enable_osc(self.session_file)
        return self.session_file

    def start(self) -> HeadlessArdour:
        """Run the session headless and wait until its OSC surface answers ``/strip/list``."""
        if not self.session_file.exists():
            self.create()
        script = self.workdir / "run.lua"
        script.write_text(_RUN_LUA.format(folder=self.folder, name=self.name, ready=READY_MARK))
        log = open(self.log_path, "w")
        try:
            cmd = ([*("nice", "-n", str(self.nice))] if self.nice else []) + [ARDOUR_LUA, str(script)]
            self.proc = subprocess.Popen(cmd, env=self._env(), cwd=self.workdir, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        except FileNotFoundError:
            raise ArdourError(f"{ARDOUR_LUA} not found; install Debian's 'ardour' package") from None
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ArdourError(f"Ardour exited with {self.proc.returncode} while starting; log:\n{self.log_tail()}")
            if READY_MARK in self.log_path.read_text(errors="replace") and self.ping():
                return self
            time.sleep(0.2)
        self.stop()
        raise ArdourError(f"Ardour's OSC surface did not answer on port {self.osc_port} within {START_TIMEOUT_S:g} s")

    def ping(self, timeout_s: float = 3.0) -> bool:
        """True if the OSC surface answers ``/strip/list`` with at least one strip within ``timeout_s`` seconds."""
        from .profile_ardour import ardour_list_strips

        try:
            with OscUdpClient(LOCALHOST, self.osc_port, timeout_s=timeout_s) as c:
                return len(ardour_list_strips(c)) >= 1
        except Exception:
            return False

    def save_state(self, timeout_s: float = 10.0, settle_s: float = SETTLE_S) -> ET.Element:
        """Ask Ardour to ``/save_state`` and return the re-read session XML root
        (:func:`~mixbridge.bridge.ardour_session.save_ardour_state`, which waits ``settle_s`` first).

        Raises:
            ArdourError: the file was not rewritten within ``timeout_s``.
        """
        from .ardour_session import save_ardour_state

        save_ardour_state(self.session_file, port=self.osc_port, timeout_s=timeout_s, settle_s=settle_s)
        return ET.parse(self.session_file).getroot()

    def log_tail(self, n: int = 20) -> str:
        """The last ``n`` lines of Ardour's log (lilv noise left out), for error messages."""
        try:
            lines = [line for line in self.log_path.read_text(errors="replace").splitlines() if "lilv" not in line]
        except FileNotFoundError:
            return ""
        return "\n".join(lines[-n:])

    def stop(self) -> None:
        """Kill Ardour's process group (SIGTERM, then SIGKILL after 5 s)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        except ProcessLookupError:
            pass

    def __enter__(self) -> HeadlessArdour:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def enable_osc(session_file: str | Path) -> None:
    """Switch the OSC control protocol on in a saved ``.ardour`` session XML (in place)."""
    path = Path(session_file)
    tree = ET.parse(path)
    protos = tree.getroot().find("ControlProtocols")
    if protos is None:
        raise ArdourError(f"{path} has no <ControlProtocols>; is it an Ardour 7 session?")
    node = next((p for p in protos.findall("Protocol") if p.get("name") == "Open Sound Control (OSC)"), None)
    if node is None:
        node = ET.SubElement(protos, "Protocol", {"name": "Open Sound Control (OSC)"})
    node.set("active", "1")
    tree.write(path, encoding="UTF-8", xml_declaration=True)


def read_routes(root: ET.Element) -> dict[str, dict[str, float]]:
    """Mixer values from a saved session XML: per route name, gain/trim (dB), mute, polarity,
    azimuth (0 left .. 1 right), the first aux send's level (``send_db``) and every plugin
    control as ``"<plugin>/<control name>"``."""
    import math

    out: dict[str, dict[str, float]] = {}
    for route in root.iter("Route"):
        name = route.get("name", "")
        vals: dict[str, float] = {}
        for c in route.findall("Controllable"):
            if c.get("name") == "mute":
                vals["mute"] = float(c.get("value", "0"))
            if c.get("name") == "phase":
                vals["polarity"] = float(c.get("value", "0"))
        pan = route.find("Pannable")
        if pan is not None:
            for c in pan.findall("Controllable"):
                if c.get("name") == "pan-azimuth":
                    vals["azimuth"] = float(c.get("value", "0.5"))
        for proc in route.findall("Processor"):
            ptype = proc.get("type")
            for c in proc.findall("Controllable"):
                if ptype == "amp" and c.get("name") == "gaincontrol":
                    g = float(c.get("value", "1"))
                    vals["gain_db"] = 20 * math.log10(g) if g > 0 else float("-inf")
                elif ptype == "trim" and c.get("name") == "trimcontrol":
                    g = float(c.get("value", "1"))
                    vals["trim_db"] = 20 * math.log10(g) if g > 0 else float("-inf")
                elif ptype == "intsend" and c.get("name") == "gaincontrol" and "send_db" not in vals:
                    g = float(c.get("value", "1"))
                    vals["send_db"] = 20 * math.log10(g) if g > 0 else float("-inf")
                elif ptype == "lv2" and c.get("parameter") is not None:
                    vals[f"{proc.get('name')}/{c.get('name')}"] = float(c.get("value", "nan"))
        out[name] = vals
    return out
