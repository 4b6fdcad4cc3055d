"""The session file, format version 1: the hand-off between model, host and bridge.

A session is versioned JSON (DESIGN.md §3)::

    {
      "format": "mixbridge-session",
      "version": 1,
      "sample_rate": 44100,
      "tracks": [
        {"name": "kick", "source": "kick.wav", "role": "kick",
         "params": {"trim": {"gain_db": 0.0}, "eq": {...}, "compressor": {...},
                    "send": {...}, "fader": {...}, "pan": {...}, "polarity": {...}},
         "automation": {"fader.fader_db": {"times_s": [0, 5], "values": [-6, 0]}}}
      ],
      "master": {"params": {"eq": {...}, "compressor": {...}, "reverb": {...},
                            "limiter": {...}, "loudness": {...}},
                 "automation": {}, "solved_gain_db": 3.36},
      "provenance": {"mixer": "knowledge", "mixbridge_version": "0.1.0",
                     "created_utc": "...", "inputs": {"kick.wav": "sha256:..."}}
    }

Parameters are in real units (the schema's). Automation curves are piecewise
linear in ``times_s`` (seconds, strictly increasing) and hold their first and
last value outside that span. ``master.solved_gain_db`` (optional) is the one
master gain that the gain solver found for ``loudness.target_lufs``
(:func:`mixbridge.plugins.mastering.solve_master_gain`); every path that renders
the master (builtin, vst, the live bus) applies it. ``source`` paths are relative to the session
file's folder unless absolute.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .atomic import atomic_write_text
from .errors import MixbridgeError, ParamRangeError, SessionError, SessionVersionError, UnknownParamError
from .records import read_record
from .schema import CHANNEL_STRIP, MASTER_BUS, Chain

#: The provenance key that marks a direct mixer's session (:attr:`Session.is_direct`).
DIRECT_KEY = "direct"

FORMAT_NAME = "mixbridge-session"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
SAMPLE_RATE_RANGE_HZ = (8000, 384000)


@dataclass
class Automation:
    """A piecewise-linear curve of one parameter: ``times_s`` [n], ``values`` [n] in real units."""

    times_s: list[float]
    values: list[float]

    def to_json(self) -> dict:
        """``{"times_s": [...], "values": [...]}`` as the session file stores it."""
        return {"times_s": list(map(float, self.times_s)), "values": list(map(float, self.values))}


@dataclass
class Track:
    """One channel strip: ``name`` (unique in the session), ``source`` (an audio file path,
    relative to the session file unless absolute), ``params`` ``{processor: {param: value}}``
    of :data:`~mixbridge.schema.CHANNEL_STRIP` in real units, ``automation`` by
    ``"processor.param"`` path, and the mixing ``role`` (:data:`mixbridge.roles.ROLES`) or None."""

    name: str
    source: str
    params: dict[str, dict[str, float]] = field(default_factory=CHANNEL_STRIP.defaults)
    automation: dict[str, Automation] = field(default_factory=dict)
    role: str | None = None

    def to_json(self) -> dict:
        """The track as the session file stores it (``role`` only when set)."""
        out: dict[str, Any] = {"name": self.name, "source": self.source}
        if self.role:
            out["role"] = self.role
        out["params"] = self.params
        out["automation"] = {k: a.to_json() for k, a in self.automation.items()}
        return out


@dataclass
class Master:
    """The master bus: ``master_bus`` parameters, automation, and the one solved gain (dB) or None."""

    params: dict[str, dict[str, float]] = field(default_factory=MASTER_BUS.defaults)
    automation: dict[str, Automation] = field(default_factory=dict)
    solved_gain_db: float | None = None

    def to_json(self) -> dict:
        """The master as the session file stores it (``solved_gain_db`` only when set)."""
        out: dict[str, Any] = {"params": self.params,
                               "automation": {k: a.to_json() for k, a in self.automation.items()}}
        if self.solved_gain_db is not None:
            out["solved_gain_db"] = float(self.solved_gain_db)
        return out


@dataclass
class Session:
    """A whole mix: tracks with channel strips, a master bus, a sample rate, provenance.

    ``base_dir`` is where relative ``source`` paths resolve (the session file's
    folder once loaded); it is not written to the file.
    """

    sample_rate: int
    tracks: list[Track] = field(default_factory=list)
    master: Master = field(default_factory=Master)
    provenance: dict[str, Any] = field(default_factory=dict)
    base_dir: Path | None = None

    def source_path(self, track: Track) -> Path:
        """The path of ``track``'s audio: ``source`` resolved against :attr:`base_dir` when relative."""
        p = Path(track.source)
        if not p.is_absolute() and self.base_dir is not None:
            p = self.base_dir / p
        return p

    def track(self, name: str) -> Track:
        """The track called ``name``; SessionError (listing the track names) when there is none."""
        for t in self.tracks:
            if t.name == name:
                return t
        raise SessionError(f"session has no track '{name}'; tracks: {', '.join(t.name for t in self.tracks)}")

    def to_json(self) -> dict:
        """The whole session as the file stores it (``format``, ``version`` first; no ``base_dir``)."""
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "sample_rate": int(self.sample_rate),
            "tracks": [t.to_json() for t in self.tracks],
            "master": self.master.to_json(),
            "provenance": self.provenance,
        }

    @property
    def is_direct(self) -> bool:
        """Whether a *direct* mixer wrote this session (provenance ``direct: true``): a network that wrote the
        mix audio itself, so the strips are defaults that describe nothing (see :func:`refuse_direct`)."""
        return bool(self.provenance.get(DIRECT_KEY))

    def validate(self) -> Session:
        """Check every value against the schema (in place: fills defaults).

        Raises:
            SessionError / ParamRangeError / UnknownParamError: with the track,
                processor and parameter named.
        """
        data = self.to_json()
        checked = from_dict(data, base_dir=self.base_dir)
        self.tracks, self.master = checked.tracks, checked.master
        return self


class DirectSessionError(ValueError, MixbridgeError):
    """A direct mixer's session given to something that needs channel-strip parameters (render, push, automate)."""


def refuse_direct(session: Session, action: str = "render") -> None:
    """Raise :class:`DirectSessionError` when ``session`` is a direct mixer's (:attr:`Session.is_direct`).

    A direct mixer (``dae``, ``mixwaveunet``) outputs audio, not parameters: its session keeps every channel
    strip at its defaults, so rendering or pushing it would silently give the unity sum. Every consumer of a
    session's parameters (``render``, ``push``, ``automate``, ``midi-export``) runs this check.

    Args:
        action: what was asked (``render``, ``push`` ...), named in the message.
    """
    if session.is_direct:
        mixer = session.provenance.get("mixer", "?")
        raise DirectSessionError(
            f"cannot {action} this session: it was written by the direct mixer '{mixer}', which outputs audio and no "
            "parameters (every channel strip is at its defaults, so this would give the unity sum); its mix.wav is "
            f"the output. To get a session you can {action}, automix with a parameter mixer (--mixer dmc)")


def _not_a_bool(value: Any, label: str, fix: str) -> None:
    """Refuse a JSON ``true``/``false`` where a number belongs (Python's ``float(True)`` is 1.0, so it would
    otherwise pass as the number 1).

    Raises:
        ParamRangeError: ``value`` is a bool; the message names ``label`` and the ``fix``.
    """
    if isinstance(value, bool):
        raise ParamRangeError(f"{label} = {json.dumps(value)} is a JSON boolean, not a number; {fix}")


def _refuse_bools(raw: Any, chain: Chain, where: str) -> None:
    """Refuse JSON booleans among a ``{processor: {param: value}}`` object's values, except for the schema's
    on/off parameters (``kind="bool"``: mute, invert), where ``true``/``false`` mean 1/0.

    Raises:
        ParamRangeError: naming the parameter, its range and the fix.
    """
    if not isinstance(raw, Mapping):
        return
    for proc, values in raw.items():
        if not isinstance(values, Mapping):
            continue
        for key, value in values.items():
            if not isinstance(value, bool):
                continue
            try:
                param = chain.param(f"{proc}.{key}")
            except MixbridgeError:
                continue  # the schema's validation names the unknown parameter
            if param.kind != "bool":
                _not_a_bool(value, f"{where}.{proc}.{key}",
                            f"give a number in {param.range_text()} (default {param.default:g})")


def _automation(raw: Any, chain: Chain, where: str) -> dict[str, Automation]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise SessionError(f"{where}.automation must be an object of 'processor.param' -> curve")
    out: dict[str, Automation] = {}
    for path, curve in raw.items():
        param = chain.param(path)  # raises UnknownParamError naming the path
        if not isinstance(curve, Mapping) or "times_s" not in curve or "values" not in curve:
            raise SessionError(f"{where}.automation['{path}'] needs 'times_s' and 'values' lists")
        times, values = list(curve["times_s"]), list(curve["values"])
        param_fix = f"give numbers in {param.range_text()}"
        for i, t in enumerate(times):
            _not_a_bool(t, f"{where}.automation['{path}'].times_s[{i}]", "give times in seconds (numbers >= 0)")
        if param.kind != "bool":
            for i, v in enumerate(values):
                _not_a_bool(v, f"{where}.automation['{path}'].values[{i}]", param_fix)
        if len(times) != len(values) or not times:
            raise SessionError(
                f"{where}.automation['{path}']: times_s has {len(times)} points and values {len(values)}; "
                "give the same non-zero number of each"
            )
        ts = [float(t) for t in times]
        if any(not math.isfinite(t) or t < 0 for t in ts):
            raise SessionError(f"{where}.automation['{path}']: times_s must be finite and >= 0 s")
        if any(b <= a for a, b in zip(ts, ts[1:])):
            raise SessionError(f"{where}.automation['{path}']: times_s must be strictly increasing")
        vs = [param.validate(v, f"{where}.automation['{path}']") for v in values]
        out[path] = Automation(ts, vs)
    return out


def _read_record(source: Any) -> dict:
    """Check a session's format and version (:func:`mixbridge.records.read_record`)."""
    return read_record(source, format=FORMAT_NAME, versions=SUPPORTED_VERSIONS, what="mixbridge session",
                       fix="upgrade mixbridge or re-save the session with it", error=SessionError,
                       version_error=SessionVersionError)


def from_dict(data: Mapping[str, Any], base_dir: Path | None = None) -> Session:
    """Build and validate a session from parsed JSON.

    Raises:
        SessionVersionError: missing/unknown ``format`` or ``version``.
        SessionError: structural problems (missing fields, duplicate track names).
        UnknownParamError, ParamRangeError: parameter problems, naming the track.
    """
    data = _read_record(data)
    sr = data.get("sample_rate")
    if not isinstance(sr, int) or isinstance(sr, bool) or not SAMPLE_RATE_RANGE_HZ[0] <= sr <= SAMPLE_RATE_RANGE_HZ[1]:
        raise SessionError(
            f"sample_rate = {sr!r} must be an integer in [{SAMPLE_RATE_RANGE_HZ[0]}, {SAMPLE_RATE_RANGE_HZ[1]}] Hz"
        )
    raw_tracks = data.get("tracks")
    if not isinstance(raw_tracks, list) or not raw_tracks:
        raise SessionError("a session needs a non-empty 'tracks' list")
    tracks: list[Track] = []
    seen: set[str] = set()
    for i, rt in enumerate(raw_tracks):
        if not isinstance(rt, Mapping):
            raise SessionError(f"tracks[{i}] must be an object")
        name = rt.get("name")
        if not isinstance(name, str) or not name:
            raise SessionError(f"tracks[{i}] needs a non-empty 'name'")
        if name in seen:
            raise SessionError(f"track name '{name}' appears twice; track names must be unique")
        seen.add(name)
        source = rt.get("source")
        if not isinstance(source, str) or not source:
            raise SessionError(f"track '{name}' needs a 'source' audio file path")
        where = f"track '{name}'"
        _refuse_bools(rt.get("params"), CHANNEL_STRIP, where)
        params = CHANNEL_STRIP.validate(rt.get("params") or {}, where)
        automation = _automation(rt.get("automation"), CHANNEL_STRIP, where)
        tracks.append(Track(name, source, params, automation, rt.get("role")))
    rm = data.get("master") or {}
    if not isinstance(rm, Mapping):
        raise SessionError("'master' must be an object")
    solved = rm.get("solved_gain_db")
    if solved is not None:
        from .schema import GAIN

        _not_a_bool(solved, "master.solved_gain_db", f"give a number in {GAIN.param('gain_db').range_text()} "
                    "or leave it out (render solves it)")
        solved = GAIN.param("gain_db").validate(solved, "master.solved_gain_db")
    _refuse_bools(rm.get("params"), MASTER_BUS, "master")
    master = Master(MASTER_BUS.validate(rm.get("params") or {}, "master"),
                    _automation(rm.get("automation"), MASTER_BUS, "master"),
                    solved)
    prov = data.get("provenance") or {}
    if not isinstance(prov, Mapping):
        raise SessionError("'provenance' must be an object")
    return Session(sr, tracks, master, dict(prov), base_dir)


def load(path: str | Path) -> Session:
    """Load and validate a session file.

    Raises:
        SessionError: unreadable file or invalid JSON (with line and column).
        SessionVersionError, UnknownParamError, ParamRangeError: see :func:`from_dict`.
    """
    path = Path(path)
    data = _read_record(path)
    return from_dict(data, base_dir=path.resolve().parent)


def save(session: Session, path: str | Path) -> Path:
    """Validate and write a session atomically (temp file + rename); returns the path."""
    session.validate()
    path = Path(path)
    atomic_write_text(path, json.dumps(session.to_json(), indent=2) + "\n")
    return path


def validate_report(path: str | Path) -> tuple[bool, str]:
    """Validate a session file and return ``(ok, human-readable report)``; never raises on bad files."""
    try:
        s = load(path)
    except (MixbridgeError, ParamRangeError, UnknownParamError) as e:
        return False, f"INVALID {path}\n  {e}"
    lines = [f"OK {path}: format version {FORMAT_VERSION}, {len(s.tracks)} tracks at {s.sample_rate} Hz"]
    for t in s.tracks:
        src = s.source_path(t)
        exists = "" if src.exists() else "  (source file not found)"
        n_auto = f", {len(t.automation)} automation curves" if t.automation else ""
        lines.append(
            f"  {t.name:<16} fader {t.params['fader']['fader_db']:+6.1f} dB  "
            f"pan {t.params['pan']['pan']:+5.2f}{n_auto}{exists}"
        )
    lp = s.master.params
    lines.append(
        f"  master: target {lp['loudness']['target_lufs']:g} LUFS, ceiling {lp['limiter']['ceiling_dbtp']:g} dBTP"
    )
    missing = [t.name for t in s.tracks if not s.source_path(t).exists()]
    if missing:
        lines.append(f"WARNING: {len(missing)} source file(s) missing: {', '.join(missing)}")
    return True, "\n".join(lines)
