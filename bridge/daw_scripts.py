"""The whole session as a script the DAW runs itself: Lua for Ardour 7, a Lua ReaScript for REAPER.

OSC can set what exists; it cannot create tracks, insert plugins or write automation lanes (REAPER's
OSC cannot insert FX at all). A generated script can. :func:`daw_script` turns a session into one
Lua file that, run inside the DAW, creates what is missing (stereo tracks by name, the mapped
plugins in the DAW map's order, a reverb bus with a post-fader aux send from every track), sets
every mapped value and writes each automation curve as points in the DAW's own automation lanes.

**One conversion.** Every static value is taken from the very push plan
:func:`~mixbridge.bridge.push.plan_push` builds (the DAW profile's strip laws, ACE EQ's and ACE
Compressor's laws from the Ardour map, the host map's normalised values for REAPER's ZamEQ2/ZamComp),
and every automation point from the profile's :meth:`~mixbridge.bridge.profiles.DawProfile.param_messages`
at that point, so a script and a push set the same numbers; this module only says where each number
goes in the DAW's scripting API. Curves are lane points of :mod:`mixbridge.bridge.automation`
(:func:`~mixbridge.bridge.automation.lane_points`: sampled at ``rate_hz`` and at the curve's own
breakpoints, then joined by the longest straight segments that stay within ``resolution`` of the
parameter's normalised range, since a DAW interpolates between lane points).

**Ardour** (Lua of Ardour's own scripting, ``Window > Scripting``, or ``ardour7-lua`` on a saved
session with ``headless=`` set; API as in Ardour 7.3's bundled scripts ``s_fader_automation.lua``,
``s_plugin_automation.lua``, ``send_to_bus.lua``): a route is found with ``Session:route_by_name`` or
created with ``Session:new_audio_track(2, 2, ...)``; a mapped plugin is the route's first processor of
that name, else ``ARDOUR.LuaAPI.new_plugin`` (LV2 URI from the map) at the map's position; values go
through ``ARDOUR.LuaAPI.set_processor_param`` (0-based parameter = the map's 1-based OSC id - 1), the
gain/trim/send controls take gain coefficients (``10^(dB/20)``; Ardour's own ``dB_to_coefficient``), the
pan control Ardour's azimuth (0 left .. 1 right, the inverse of the OSC position), polarity every
input channel's ``set_phase_invert``. Automation: the control's ``alist()`` is cleared, each point added
with ``AutomationList:add(Temporal.timepos_t(sample), value, false, false)`` and the control's state set
to ``ARDOUR.AutoState.Play``. Times are samples from the timeline's origin at the Ardour session's rate;
the script refuses a session whose rate differs from the mix's (the ACE EQ laws use the mix's rate).

**REAPER** (a ReaScript in Lua, ``Actions > Show action list > New action > Load ReaScript``; API names
from REAPER's ReaScript documentation): tracks by ``P_NAME`` or ``InsertTrackAtIndex``; FX found by name
(``TrackFX_GetFXName``, as push finds them) or added with ``TrackFX_AddByName(track, name, false, -1)``;
``TrackFX_SetParamNormalized`` with the host map's normalised values (0-based parameter = OSC ``K`` - 1);
``D_VOL`` (amplitude), ``D_PAN`` (-1 left .. +1 right), ``B_MUTE``, ``B_PHASE``; the bus gets
``CreateTrackSend`` sends (``D_VOL``, ``I_SENDMODE`` 0 = post-fader). Envelopes: ``Volume`` and ``Pan``
(``GetTrackEnvelopeByName``, made visible with actions 40406/40407 when missing), plugin lanes with
``GetFXEnvelope(track, fx, param, true)``; points with ``InsertEnvelopePoint(..., noSort=true)`` then
``Envelope_SortPoints``. A volume point is ``ScaleToEnvelopeMode(GetEnvelopeScalingMode(env), amplitude)``
(volume envelopes may use fader scaling, mode 1; the raw amplitude would then be wrong). The pan
envelope's sign is taken at run time from REAPER's own ``Envelope_FormatValue`` of a +1 point (``"R"`` or
``"L"``), since it is not verified here against a real REAPER.

Nothing is dropped silently: :attr:`DawScript.not_sent` lists every value and curve the script cannot
carry (push's own ``not sent`` lines, the master bus's, and each curve a DAW lane cannot hold), and the
script's header repeats them as comments.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mixbridge.atomic import atomic_write_text
from mixbridge.schema import CHANNEL_STRIP
from mixbridge.session import Automation, Session

from .automation import DEFAULT_RESOLUTION, lane_points
from .errors import BridgeConfigError
from .osc import OscMessage
from .profiles import FADER_PATH, SEND_PATH, DawProfile, get_profile

#: DAWs a script can be generated for.
SCRIPT_DAWS = ("ardour", "reaper")
#: The reverb bus the script creates (or finds) and sends every track to.
DEFAULT_BUS_NAME = "Reverb"
#: Curve sampling rate before thinning (Hz), as ``automate``'s default.
DEFAULT_RATE_HZ = 100.0
#: Ardour's aux-send / fader levels at or below this are gain 0 (``ARDOUR_SEND_OFF_DB`` is sent for "off").
_ARDOUR_ZERO_GAIN_DB = -192.0
#: REAPER actions that show a track's volume / pan envelope (creating it when the track has none).
REAPER_SHOW_ENVELOPE_ACTIONS = {"Volume": 40406, "Pan": 40407}

#: Channel-strip curves each DAW's lanes hold (the rest are listed as not sent).
_ARDOUR_LANES = {"fader.fader_db": "gain", "trim.gain_db": "trim", "pan.pan": "pan", "fader.mute": "mute",
                 SEND_PATH: "send"}
_REAPER_LANES = {"fader.fader_db": "Volume", "pan.pan": "Pan"}
_WHY_NO_LANE = {
    ("ardour", "polarity.invert"): "Ardour's phase control is a per-channel bit mask that mixbridge does not "
                                   "automate; the static value is set",
    ("reaper", "polarity.invert"): "the script sets REAPER's static B_PHASE; polarity is not automated",
    ("reaper", "fader.mute"): "the script writes no REAPER mute envelope; the static B_MUTE is set",
    ("reaper", "trim.gain_db"): "REAPER tracks have no static trim control (the OSC profile maps none)",
    ("reaper", SEND_PATH): "the script writes no REAPER send envelope; the static send level is set",
}


@dataclass
class Lane:
    """One automation lane the script writes: where (``kind``, plugin ``slot`` and 0-based ``param``), the
    session's track and path it comes from, and ``points`` ``[(time_s, DAW value)]``."""

    kind: str
    path: str
    points: list[tuple[float, float]]
    slot: int = 0
    param: int = -1


@dataclass
class ScriptTrack:
    """What the script sets on one DAW track: static values (DAW units) and lanes."""

    name: str
    values: dict[str, float] = field(default_factory=dict)
    #: map slot -> [(0-based parameter, DAW value)]
    plugins: dict[int, list[tuple[int, float]]] = field(default_factory=dict)
    lanes: list[Lane] = field(default_factory=list)


@dataclass
class DawScript:
    """A generated DAW script and what it carries.

    ``text`` is the Lua source; ``not_sent`` every value or curve it cannot carry (``"<track>: <path> = ..
    (why)"`` and ``"master.<path> = .. (why)"``, as push prints them); ``clamped`` values moved into the
    DAW's range (``clamp=True``); ``created`` what the script creates when it is missing (in words).
    """

    daw: str
    text: str
    tracks: list[ScriptTrack]
    not_sent: list[str] = field(default_factory=list)
    clamped: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    master: dict[str, float] = field(default_factory=dict)
    bus: dict[str, float] = field(default_factory=dict)

    @property
    def points(self) -> int:
        """Automation points written, over every lane."""
        return sum(len(lane.points) for t in self.tracks for lane in t.lanes)

    @property
    def lanes(self) -> int:
        """Automation lanes written."""
        return sum(len(t.lanes) for t in self.tracks)

    def summary(self) -> str:
        """One line: DAW, tracks, lanes, points, what is created."""
        return (f"{self.daw} script: {len(self.tracks)} tracks, {self.lanes} automation lanes with {self.points} "
                f"points; creates where missing: {', '.join(self.created)}")


# ------------------------------------------------------------------------------ shared
def _db_to_gain(db: float) -> float:
    """dB -> amplitude coefficient, 0 at or below Ardour's zero-gain level."""
    return 0.0 if db <= _ARDOUR_ZERO_GAIN_DB else 10.0 ** (db / 20.0)


def lua_string(text: str) -> str:
    """``text`` as a Lua 5.x double-quoted string literal (backslash, quote and control bytes escaped as
    ``\\ddd``, so any track name round-trips)."""
    out = []
    for byte in text.encode("utf-8"):
        ch = chr(byte)
        if ch in '"\\' or byte < 32 or byte >= 127:
            out.append(f"\\{byte:03d}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def lua_number(x: float) -> str:
    """A float as a Lua numeral that reads back as the same double (Python's shortest repr)."""
    x = float(x)
    if not math.isfinite(x):
        raise BridgeConfigError(f"value {x} cannot be written to a DAW script; give finite values")
    r = repr(x)
    return r


def _thinned(curve: Automation, path: str, rate_hz: float, resolution: float) -> list[tuple[float, float]]:
    """The curve's lane points ``[(time_s, schema value)]`` (:func:`~mixbridge.bridge.automation.lane_points`)."""
    return lane_points(curve, CHANNEL_STRIP.param(path), rate_hz, resolution)


def _plugin_lanes(profile: DawProfile, track, rate_hz: float, resolution: float, sample_rate: int,
                  clamp: bool, clamped: list[str]) -> list[Lane]:
    """Lanes of the mapped plugin parameters that a curve drives.

    Per processor: the union of the thinned times of its automated paths; at each time every automated
    path takes its curve's value, the others their static value, and the profile's
    :meth:`~mixbridge.bridge.profiles.DawProfile.param_messages` gives each dependent plugin parameter's
    DAW value (ACE EQ's shelf frequency depends on the shelf gain, so a gain curve moves both)."""
    dm = profile.plugin_map
    carried = set(dm.paths)
    where = f"track '{track.name}' "
    by_proc: dict[str, list[str]] = {}
    for path in track.automation:
        if path in carried:
            by_proc.setdefault(path.split(".")[0], []).append(path)
    lanes: dict[tuple[int, int], Lane] = {}
    for proc, paths in by_proc.items():
        times = sorted({t for p in paths for t, _ in _thinned(track.automation[p], p, rate_hz, resolution)})
        for t in times:
            ctx = dict(track.params[proc])
            for p in paths:
                c = track.automation[p]
                ctx[p.split(".")[1]] = float(np.interp(t, c.times_s, c.values))
            for p in paths:
                name = p.split(".")[1]
                for m in profile.param_messages(0, p, ctx[name], where=where, clamp=clamp, clamped=clamped,
                                                context=ctx, sample_rate=sample_rate):
                    slot, index, value = _plugin_target(profile, m)
                    lane = lanes.setdefault((slot, index), Lane("plugin", p, [], slot, index - dm.index_base))
                    if not lane.points or lane.points[-1][0] != t:
                        lane.points.append((t, value))
    return list(lanes.values())


def _plugin_target(profile: DawProfile, m: OscMessage) -> tuple[int, int, float]:
    """``(map slot, 1-based parameter index, value)`` of a profile's plugin message."""
    if profile.name == "ardour":  # /strip/plugin/parameter ssid piid id value
        _ssid, slot, index, value = m.args
        return int(slot), int(index), float(value)
    parts = m.address.split("/")  # /track/N/fx/M/fxparam/K/value
    return int(parts[4]), int(parts[6]), float(m.args[0])


def _master_not_sent(plan_master_unmapped: Iterable[str], carried: set[str]) -> list[str]:
    return [u for u in plan_master_unmapped if u.split(" = ", 1)[0] not in carried]


# ------------------------------------------------------------------------------ the plan -> DAW values
def _collect(session: Session, daw: str, *, clamp: bool, rate_hz: float, resolution: float,
             bus_name: str) -> DawScript:
    from .push import plan_push

    profile = get_profile(daw)
    plan = plan_push(session, profile, daw_tracks=None, match="order", clamp=clamp)
    clamped = list(plan.clamped)
    not_sent: list[str] = []
    script_carries = {"ardour": set(), "reaper": {"polarity.invert", SEND_PATH}}[daw]
    tracks: list[ScriptTrack] = []
    strips = {name: strip for name, _, strip in plan.strips}
    for track in session.tracks:
        strip = strips[track.name]
        st = ScriptTrack(track.name)
        for u in strip.unmapped:
            path = u[len(track.name) + 2:].split(" = ", 1)[0]
            if path not in script_carries:
                not_sent.append(u)
        for m in strip.messages:
            _store_static(daw, profile, st, m)
        if daw == "reaper":  # what a ReaScript carries beyond REAPER's OSC
            st.values["D_PAN"] = float(track.params["pan"]["pan"])
            st.values["B_PHASE"] = 1.0 if track.params["polarity"]["invert"] >= 0.5 else 0.0
            send_db = float(track.params["send"]["send_db"])
            st.values["send"] = 0.0 if send_db <= CHANNEL_STRIP.param(SEND_PATH).min else 10.0 ** (send_db / 20.0)
        lanes_for = _ARDOUR_LANES if daw == "ardour" else _REAPER_LANES
        where = f"track '{track.name}' "
        carried_plugins = set(profile.plugin_map.paths)
        for path, curve in track.automation.items():
            if path in lanes_for:
                pts = []
                for t, v in _thinned(curve, path, rate_hz, resolution):
                    msgs = profile.param_messages(0, path, v, where=where, clamp=clamp, clamped=clamped,
                                                  sample_rate=session.sample_rate)
                    pts.append((t, _lane_value(daw, path, v, msgs)))
                st.lanes.append(Lane(lanes_for[path], path, pts))
            elif path not in carried_plugins:
                proc, name = path.split(".")
                why = _WHY_NO_LANE.get((daw, path)) or next(
                    (p.not_carried[name] for p in profile.plugin_map.plugins
                     if p.processor.name == proc and name in p.not_carried), f"no {daw} mapping")
                not_sent.append(f"{track.name}: automation {path} ({len(curve.times_s)} points) ({why})")
        st.lanes.extend(_plugin_lanes(profile, track, rate_hz, resolution, session.sample_rate, clamp, clamped))
        for path in track.automation:  # a curve on a carried plugin path whose plugin parameter is not mapped
            if path in carried_plugins and not any(lane.path == path for lane in st.lanes):
                not_sent.append(f"{track.name}: automation {path} (drives no {daw} plugin parameter)")
        tracks.append(st)

    # the master bus: the solved gain as push sends it; reverb.return_db on the bus fader; the rest listed
    master: dict[str, float] = {}
    for m in plan.master.messages:
        if m.address in ("/master/gain", "/track/0/volume/db"):
            master["gain"] = _db_to_gain(float(m.args[0]))
        elif m.address == "/master/trimdB":
            master["trim"] = _db_to_gain(float(m.args[0]))
    return_db = float(session.master.params["reverb"]["return_db"])
    bus = {"gain": _db_to_gain(return_db)}
    mp = session.master
    not_sent += _master_not_sent(plan.master.unmapped, {"master.reverb.return_db"})
    not_sent.append(f"{bus_name} bus: no reverb plugin is created (no {daw} DAW map names one); insert a 100 % wet "
                    f"reverb there for master.reverb.decay_s = {mp.params['reverb']['decay_s']:g} s, predelay_ms = "
                    f"{mp.params['reverb']['predelay_ms']:g} ms; its fader carries master.reverb.return_db = "
                    f"{return_db:g} dB")
    for path, curve in mp.automation.items():
        not_sent.append(f"master: automation {path} ({len(curve.times_s)} points) (no master-bus lane is written)")
    created = [f"{len(session.tracks)} stereo tracks by name", "the mapped plugins in the map's order "
               f"({', '.join(n for _, n in profile.plugin_map.slots)})",
               f"a '{bus_name}' bus with a post-fader send from every track"]
    return DawScript(daw, "", tracks, not_sent, clamped, created, master, bus)


def _store_static(daw: str, profile: DawProfile, st: ScriptTrack, m: OscMessage) -> None:
    """One push-plan message -> the DAW value the script sets."""
    a = m.address
    if a == "/strip/plugin/parameter" or "/fxparam/" in a:
        slot, index, value = _plugin_target(profile, m)
        st.plugins.setdefault(slot, []).append((index - profile.plugin_map.index_base, value))
    elif a == "/strip/gain":
        st.values["gain"] = _db_to_gain(float(m.args[1]))
    elif a == "/strip/trimdB":
        st.values["trim"] = _db_to_gain(float(m.args[1]))
    elif a == "/strip/pan_stereo_position":
        st.values["azimuth"] = 1.0 - float(m.args[1])
    elif a == "/strip/mute":
        st.values["mute"] = float(m.args[1])
    elif a == "/strip/polarity":
        st.values["invert"] = float(m.args[1])
    elif a == "/strip/send/gain":
        st.values["send"] = _db_to_gain(float(m.args[2]))
    elif a.endswith("/volume/db"):
        st.values["D_VOL"] = 10.0 ** (float(m.args[0]) / 20.0)
    elif a.endswith("/mute"):
        st.values["B_MUTE"] = float(m.args[0])
    elif a.endswith("/pan"):
        pass  # D_PAN is the schema pan itself (-1 left .. +1 right), set from the session
    else:  # pragma: no cover - a new profile message this module does not place yet
        raise BridgeConfigError(f"{daw} script: no place for push message {m}; extend daw_scripts._store_static")


def _lane_value(daw: str, path: str, value: float, msgs: Sequence[OscMessage]) -> float:
    """The DAW lane value of one point, from the profile's message for it."""
    m = msgs[0]
    if daw == "ardour":
        if path in (FADER_PATH, "trim.gain_db"):
            return _db_to_gain(float(m.args[1]))
        if path == SEND_PATH:
            return _db_to_gain(float(m.args[2]))
        if path == "pan.pan":
            return 1.0 - float(m.args[1])
        return float(m.args[1])  # mute 0/1
    if path == FADER_PATH:
        return 10.0 ** (float(m.args[0]) / 20.0)  # amplitude; the script scales it to the envelope's mode
    return float(value)  # pan: -1 left .. +1 right; the script applies REAPER's envelope sign


# ------------------------------------------------------------------------------ Lua text
def _points_lua(points: Sequence[tuple[float, float]]) -> str:
    return "{" + ", ".join(f"{{{lua_number(t)}, {lua_number(v)}}}" for t, v in points) + "}"


def _header(script: DawScript, session: Session, how: str) -> list[str]:
    lines = [f"-- mixbridge daw-script for {script.daw}: {len(script.tracks)} tracks at {session.sample_rate} Hz",
             f"-- {how}", "-- Creates what is missing: " + "; ".join(script.created)]
    if script.not_sent:
        lines.append(f"-- Not carried ({len(script.not_sent)}):")
        lines += ["--   not sent: " + u.replace("\n", " ") for u in script.not_sent]
    for c in script.clamped:
        lines.append(f"--   clamped: {c}")
    return lines


_ARDOUR_BODY = r"""
local NG = PBD.GroupControlDisposition.NoGroup
local function mb_apply(MB)
  local sr = Session:nominal_sample_rate()
  if math.abs(sr - MB.sample_rate) > 0.5 then
    error(string.format("mixbridge: this Ardour session runs at %d Hz, the mix at %d Hz; the ACE EQ laws use the "
      .. "mix's rate: set the session to %d Hz or re-render the mix at %d Hz", sr, MB.sample_rate, MB.sample_rate, sr))
  end
  local made = {tracks = 0, plugins = 0, sends = 0, points = 0}
  local function pos(t) return Temporal.timepos_t(math.floor(t * sr + 0.5)) end
  local function write_lane(ac, points)
    local al = ac:alist()
    al:clear_list()
    for _, p in ipairs(points) do al:add(pos(p[1]), p[2], false, false) end
    ac:set_automation_state(ARDOUR.AutoState.Play)
    made.points = made.points + #points
  end
  local bus = Session:route_by_name(MB.bus.name)
  if bus:isnil() then
    bus = Session:new_audio_route(2, 2, nil, 1, MB.bus.name, ARDOUR.PresentationInfo.Flag.AudioBus,
                                  ARDOUR.PresentationInfo.max_order):front()
  end
  bus:gain_control():set_value(MB.bus.gain, NG)
  for _, t in ipairs(MB.tracks) do
    local r = Session:route_by_name(t.name)
    if r:isnil() then
      r = Session:new_audio_track(2, 2, nil, 1, t.name, ARDOUR.PresentationInfo.max_order,
                                  ARDOUR.TrackMode.Normal, true):front()
      made.tracks = made.tracks + 1
    end
    local procs = {}
    for k, p in ipairs(t.plugins) do
      local seen, i, found = 0, 0, nil
      while true do
        local proc = r:nth_plugin(i)
        if proc:isnil() then break end
        if proc:name() == p.name then
          seen = seen + 1
          if seen == p.nth then found = proc; break end
        end
        i = i + 1
      end
      if found == nil then
        found = ARDOUR.LuaAPI.new_plugin(Session, p.uri, ARDOUR.PluginType.LV2, "")
        if found:isnil() then error("mixbridge: Ardour has no plugin " .. p.uri .. " (" .. p.name .. ")") end
        r:add_processor_by_index(found, k - 1, nil, true)
        made.plugins = made.plugins + 1
      end
      procs[p.slot] = found
      for _, pv in ipairs(p.params) do ARDOUR.LuaAPI.set_processor_param(found, pv[1], pv[2]) end
    end
    r:gain_control():set_value(t.gain, NG)
    r:trim_control():set_value(t.trim, NG)
    r:pan_azimuth_control():set_value(t.azimuth, NG)
    r:mute_control():set_value(t.mute, NG)
    for c = 0, r:n_inputs():n_audio() - 1 do r:phase_control():set_phase_invert(c, t.invert >= 0.5) end
    local senders = ARDOUR.RouteListPtr()
    senders:push_back(r)
    Session:add_internal_sends(bus, ARDOUR.Placement.PostFader, senders)  -- none if one exists already
    local send = nil
    local i = 0
    while true do
      local s = r:nth_send(i)
      if s:isnil() then break end
      local is = s:to_internalsend()
      if not is:isnil() and is:target_route():name() == MB.bus.name then send = r:send_level_controllable(i); break end
      i = i + 1
    end
    if send == nil then error("mixbridge: no aux send from '" .. t.name .. "' to '" .. MB.bus.name .. "'") end
    send:set_value(t.send, NG)
    for _, lane in ipairs(t.lanes) do
      local ac
      if lane.kind == "gain" then ac = r:gain_control()
      elseif lane.kind == "trim" then ac = r:trim_control()
      elseif lane.kind == "pan" then ac = r:pan_azimuth_control()
      elseif lane.kind == "mute" then ac = r:mute_control()
      elseif lane.kind == "send" then ac = send
      else
        ac = procs[lane.slot]:to_automatable():automation_control(
          Evoral.Parameter(ARDOUR.AutomationType.PluginAutomation, 0, lane.param), false)
      end
      write_lane(ac, lane.points)
    end
  end
  if MB.master.gain ~= nil then
    local mst = Session:master_out()
    mst:gain_control():set_value(MB.master.gain, NG)
    mst:trim_control():set_value(MB.master.trim, NG)
  end
  print(string.format("mixbridge: %d tracks (%d created), %d plugins inserted, %d automation points written",
                      #MB.tracks, made.tracks, made.plugins, made.points))
end
"""


def _ardour_text(script: DawScript, session: Session, bus_name: str, headless: tuple[str, str] | None) -> str:
    profile = get_profile("ardour")
    dm = profile.plugin_map
    how = ("run headless: ardour7-lua THIS.lua (opens, edits and saves the session named below)" if headless else
           "run in Ardour 7: Window > Scripting, load or paste this file, press Run; then save the session")
    lines = _header(script, session, how)
    lines.append("local MB = {")
    lines.append(f"  sample_rate = {int(session.sample_rate)},")
    lines.append(f"  bus = {{name = {lua_string(bus_name)}, gain = {lua_number(script.bus['gain'])}}},")
    if script.master:
        lines.append(f"  master = {{gain = {lua_number(script.master['gain'])}, "
                     f"trim = {lua_number(script.master.get('trim', 1.0))}}},")
    else:
        lines.append("  master = {},  -- the session has no solved master gain: the master fader is left alone")
    lines.append("  tracks = {")
    for st in script.tracks:
        v = st.values
        lines.append(f"    {{name = {lua_string(st.name)}, gain = {lua_number(v['gain'])}, "
                     f"trim = {lua_number(v['trim'])}, azimuth = {lua_number(v['azimuth'])}, "
                     f"mute = {lua_number(v['mute'])}, invert = {lua_number(v['invert'])}, "
                     f"send = {lua_number(v['send'])},")
        plugs = []
        count: dict[str, int] = {}
        for plug in dm.plugins:
            count[plug.name] = count.get(plug.name, 0) + 1
            params = ", ".join(f"{{{i}, {lua_number(x)}}}" for i, x in st.plugins.get(plug.slot, []))
            plugs.append(f"{{slot = {plug.slot}, name = {lua_string(plug.name)}, uri = {lua_string(plug.uri)}, "
                         f"nth = {count[plug.name]}, params = {{{params}}}}}")
        lines.append("      plugins = {" + ", ".join(plugs) + "},")
        lines.append("      lanes = {")
        for lane in st.lanes:
            lines.append(f"        {{kind = {lua_string(lane.kind)}, slot = {lane.slot}, param = {lane.param}, "
                         f"path = {lua_string(lane.path)}, points = {_points_lua(lane.points)}}},")
        lines.append("      }},")
    lines.append("  },")
    lines.append("}")
    lines.append(_ARDOUR_BODY)
    if headless:
        folder, name = headless
        lines += ['if AudioEngine:set_backend("None (Dummy)", "", ""):isnil() then',
                  '  error("mixbridge: Ardour has no None (Dummy) audio backend; run this from Window > Scripting")',
                  "end",
                  f"local s = load_session({lua_string(folder)}, {lua_string(name)})",
                  'assert(s, "mixbridge: load_session failed")',
                  "mb_apply(MB)",
                  # control changes reach the route in the next process cycles: let them land before saving
                  "ARDOUR.LuaAPI.usleep(500000)",
                  'Session:save_state("", false, false, false, false, false)',
                  "close_session()",
                  'print("MIXBRIDGE-SCRIPT-DONE")']
    else:
        lines += ["mb_apply(MB)"]
    return "\n".join(lines) + "\n"


_REAPER_BODY = r"""
local function mb_track(name)
  for i = 0, reaper.CountTracks(0) - 1 do
    local tr = reaper.GetTrack(0, i)
    local _, n = reaper.GetSetMediaTrackInfo_String(tr, "P_NAME", "", false)
    if n == name then return tr, false end
  end
  local idx = reaper.CountTracks(0)
  reaper.InsertTrackAtIndex(idx, true)
  local tr = reaper.GetTrack(0, idx)
  reaper.GetSetMediaTrackInfo_String(tr, "P_NAME", name, true)
  return tr, true
end

local function mb_fx(tr, name, nth)
  local seen = 0
  for i = 0, reaper.TrackFX_GetCount(tr) - 1 do
    local _, fxname = reaper.TrackFX_GetFXName(tr, i, "")
    if fxname:find(name, 1, true) then
      seen = seen + 1
      if seen == nth then return i, false end
    end
  end
  local idx = reaper.TrackFX_AddByName(tr, name, false, -1)
  if idx < 0 then error("mixbridge: REAPER found no FX named '" .. name .. "'; install zam-plugins (VST2)") end
  return idx, true
end

local function mb_send(tr, bus)
  for s = 0, reaper.GetTrackNumSends(tr, 0) - 1 do
    if reaper.GetTrackSendInfo_Value(tr, 0, s, "P_DESTTRACK") == bus then return s end
  end
  return reaper.CreateTrackSend(tr, bus)
end

local function mb_envelope(tr, name, action)
  local env = reaper.GetTrackEnvelopeByName(tr, name)
  if not env then
    reaper.SetOnlyTrackSelected(tr)
    reaper.Main_OnCommand(action, 0)
    env = reaper.GetTrackEnvelopeByName(tr, name)
  end
  if not env then error("mixbridge: REAPER made no '" .. name .. "' envelope") end
  return env
end

local function mb_points(env, points, convert)
  reaper.DeleteEnvelopePointRange(env, -1.0e9, 1.0e9)
  for _, p in ipairs(points) do
    reaper.InsertEnvelopePoint(env, p[1], convert(p[2]), 0, 0, false, true)
  end
  reaper.Envelope_SortPoints(env)
  return #points
end

local function mb_apply(MB)
  local made = {tracks = 0, fx = 0, points = 0}
  local bus = mb_track(MB.bus.name)
  reaper.SetMediaTrackInfo_Value(bus, "D_VOL", MB.bus.vol)
  for _, t in ipairs(MB.tracks) do
    local tr, new = mb_track(t.name)
    if new then made.tracks = made.tracks + 1 end
    local fx = {}
    for _, f in ipairs(t.fx) do
      local idx, added = mb_fx(tr, f.name, f.nth)
      if added then made.fx = made.fx + 1 end
      fx[f.slot] = idx
      for _, pv in ipairs(f.params) do reaper.TrackFX_SetParamNormalized(tr, idx, pv[1], pv[2]) end
    end
    reaper.SetMediaTrackInfo_Value(tr, "D_VOL", t.vol)
    reaper.SetMediaTrackInfo_Value(tr, "D_PAN", t.pan)
    reaper.SetMediaTrackInfo_Value(tr, "B_MUTE", t.mute)
    reaper.SetMediaTrackInfo_Value(tr, "B_PHASE", t.phase)
    local s = mb_send(tr, bus)
    reaper.SetTrackSendInfo_Value(tr, 0, s, "D_VOL", t.send)
    reaper.SetTrackSendInfo_Value(tr, 0, s, "I_SENDMODE", 0)
    for _, lane in ipairs(t.lanes) do
      if lane.kind == "Volume" then
        local env = mb_envelope(tr, "Volume", 40406)
        local mode = reaper.GetEnvelopeScalingMode(env)
        local scale = function(v) return reaper.ScaleToEnvelopeMode(mode, v) end
        made.points = made.points + mb_points(env, lane.points, scale)
      elseif lane.kind == "Pan" then
        local env = mb_envelope(tr, "Pan", 40407)
        local sign = 1.0
        local shown = reaper.Envelope_FormatValue(env, 1.0)
        if shown:find("L") then sign = -1.0 end  -- REAPER shows +1 as left: its pan envelope is inverted
        made.points = made.points + mb_points(env, lane.points, function(v) return sign * v end)
      else
        local env = reaper.GetFXEnvelope(tr, fx[lane.slot], lane.param, true)
        made.points = made.points + mb_points(env, lane.points, function(v) return v end)
      end
    end
  end
  if MB.master.vol ~= nil then
    reaper.SetMediaTrackInfo_Value(reaper.GetMasterTrack(0), "D_VOL", MB.master.vol)
  end
  reaper.ShowConsoleMsg(string.format("mixbridge: %d tracks (%d created), %d FX inserted, %d envelope points\n",
                                      #MB.tracks, made.tracks, made.fx, made.points))
end

reaper.Undo_BeginBlock()
reaper.PreventUIRefresh(1)
local ok, err = pcall(mb_apply, MB)
reaper.PreventUIRefresh(-1)
reaper.TrackList_AdjustWindows(false)
reaper.UpdateArrange()
reaper.Undo_EndBlock("mixbridge: apply session", -1)
if not ok then reaper.ShowMessageBox(tostring(err), "mixbridge", 0) end
"""


def _reaper_text(script: DawScript, session: Session, bus_name: str) -> str:
    dm = get_profile("reaper").plugin_map
    lines = _header(script, session, "run in REAPER: Actions > Show action list > New action > Load ReaScript, "
                                     "pick this file, Run (one undo step)")
    lines.append(f"-- Set the REAPER project to {int(session.sample_rate)} Hz: ZamEQ2's bandwidth law uses the mix's "
                 "rate. ZamEQ2/ZamComp are mono: give each channel its own chain with the pin connector.")
    lines.append("local MB = {")
    lines.append(f"  bus = {{name = {lua_string(bus_name)}, vol = {lua_number(script.bus['gain'])}}},")
    lines.append(f"  master = {{vol = {lua_number(script.master['gain'])}}}," if script.master else
                 "  master = {},  -- the session has no solved master gain: the master fader is left alone")
    lines.append("  tracks = {")
    for st in script.tracks:
        v = st.values
        lines.append(f"    {{name = {lua_string(st.name)}, vol = {lua_number(v['D_VOL'])}, "
                     f"pan = {lua_number(v['D_PAN'])}, mute = {lua_number(v['B_MUTE'])}, "
                     f"phase = {lua_number(v['B_PHASE'])}, send = {lua_number(v['send'])},")
        fxs = []
        count: dict[str, int] = {}
        for plug in dm.plugins:
            count[plug.name] = count.get(plug.name, 0) + 1
            params = ", ".join(f"{{{i}, {lua_number(x)}}}" for i, x in st.plugins.get(plug.slot, []))
            fxs.append(f"{{slot = {plug.slot}, name = {lua_string(plug.name)}, nth = {count[plug.name]}, "
                       f"params = {{{params}}}}}")
        lines.append("      fx = {" + ", ".join(fxs) + "},")
        lines.append("      lanes = {")
        for lane in st.lanes:
            lines.append(f"        {{kind = {lua_string(lane.kind)}, slot = {lane.slot}, param = {lane.param}, "
                         f"path = {lua_string(lane.path)}, points = {_points_lua(lane.points)}}},")
        lines.append("      }},")
    lines.append("  },")
    lines.append("}")
    lines.append(_REAPER_BODY)
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ API
def daw_script(session: Session, daw: str, *, clamp: bool = False, rate_hz: float = DEFAULT_RATE_HZ,
               resolution: float = DEFAULT_RESOLUTION, bus_name: str = DEFAULT_BUS_NAME,
               headless_session: str | Path | None = None) -> DawScript:
    """Generate the Lua script that builds ``session`` in ``daw`` (``"ardour"`` or ``"reaper"``).

    Args:
        session: the mix (validated).
        daw: one of :data:`SCRIPT_DAWS`.
        clamp: move values the DAW cannot take to its nearest limit (listed in ``clamped``) instead of failing.
        rate_hz, resolution: the curve sampling rate (Hz) and the thinning step (fraction of each
            parameter's normalised range), as :func:`~mixbridge.bridge.automation.schedule_session`.
        bus_name: the reverb bus to find or create.
        headless_session: Ardour only: a saved ``.ardour`` file the script opens, edits and saves, for
            ``ardour7-lua``; None: a script for Ardour's scripting window (the open session).

    Raises:
        BridgeConfigError: an unknown DAW, a headless session for REAPER or a bad ``rate_hz``.
        DawRangeError: a value the DAW cannot take (unless ``clamp``), as push raises it.
    """
    if daw not in SCRIPT_DAWS:
        raise BridgeConfigError(f"--daw {daw!r}: scripts are generated for {', '.join(SCRIPT_DAWS)} "
                                "(Ableton Live: use push; AbletonOSC cannot create tracks or devices)")
    if headless_session is not None and daw != "ardour":
        raise BridgeConfigError("--ardour-session is for Ardour scripts only; drop it for REAPER")
    session.validate()
    if any(t.name == bus_name for t in session.tracks):
        raise BridgeConfigError(f"a session track is named '{bus_name}', the reverb bus's name; pass another bus name "
                                "(--bus NAME)")
    script = _collect(session, daw, clamp=clamp, rate_hz=rate_hz, resolution=resolution, bus_name=bus_name)
    if daw == "ardour":
        headless = None
        if headless_session is not None:
            p = Path(headless_session).resolve()
            if p.suffix != ".ardour":
                raise BridgeConfigError(f"--ardour-session {p}: give the session's .ardour file")
            headless = (str(p.parent), p.stem)
        script.text = _ardour_text(script, session, bus_name, headless)
    else:
        script.text = _reaper_text(script, session, bus_name)
    return script


def write_daw_script(session: Session, daw: str, path: str | Path, **kwargs) -> DawScript:
    """:func:`daw_script`, written atomically to ``path`` (keyword arguments as there)."""
    script = daw_script(session, daw, **kwargs)
    atomic_write_text(path, script.text)
    return script
