"""REAPER's DAW profile: its default OSC pattern set (``Default.ReaperOSC``), queries and pull.

Source: REAPER's shipped ``Default.ReaperOSC`` pattern file (REAPER > Preferences >
Control/OSC/web > OSC; DESIGN.md §4). REAPER listens on 8000 and sends feedback to the device
port 9000. Tracks are 1-based within a bank; track 0 is the master; ``/device/track/count N``
widens the bank so tracks 1..N are addressable and ``/device/track/bank/select 1`` selects the
first bank. ``/track/N/volume/db`` takes raw dB (float), ``/track/N/pan`` 0..1 (0 left, 1
right), ``/track/0/volume/db`` the master's volume in dB (a push sends the solved master gain there),
``/track/N/mute`` 0/1, ``/track/N/fx/M/fxparam/K/value`` the normalised 0..1 plugin
value, ``/track/N/name`` a string. ``/action 41743`` ("Control surface: refresh all surfaces")
makes REAPER send its whole state, which :meth:`ReaperProfile.query_tracks` and
:meth:`ReaperProfile.pull_tracks` read.

**Plugin slots by name.** The refresh reports each FX's name (``FX_NAME s/track/@/fx/@/name`` in
``Default.ReaperOSC``, e.g. ``"VST: ZamEQ2 (Damien Zammit)"``). :func:`reaper_slot_layout` finds each
plugin of the map (``plugins/maps/daw/reaper.json``: the very plugins the host renders with) by name
on each track, in the map's order (the first "ZamEQ2" of the map is the first FX whose name holds
"ZamEQ2", the second the next one), so a chain with another plugin in front of it, or in another
order, is still driven at the right slots, and a mapped plugin that is not on the track is reported
as not sent instead of driving whatever sits at its slot. A track whose refresh reports no FX name
(``--no-query``, or a REAPER whose pattern file lacks FX_NAME) keeps the map's slots. Parameters are
addressed by the plugin's own parameter order (REAPER's ``fxparam/K``); ``FX_PARAM_NAME`` is
reported only for the focused FX, so it is not used.

A refresh reports every slot of the widened bank, also those past the last track: REAPER names an
empty slot "Track N" and reports it at its -inf level (-150 dB). :func:`reaper_tracks` drops the
trailing run of such slots (default name, fader at -150 dB or unreported, no FX feedback), so a push
lists no phantom tracks and a pull creates none; :func:`reaper_empty_slots` names them for the report.
A real track inside the bank is never dropped, whatever it is called. REAPER's OSC reports no sample
rate: a pull takes ``--sample-rate`` (default 48 kHz).
"""
from __future__ import annotations

from collections.abc import Sequence

from .osc import OscMessage
from .profiles import (
    FADER_PATH,
    DawProfile,
    DawTrack,
    FeedbackState,
    PulledTracks,
    StripLayout,
    fits,
    read_plugin,
    store_fader,
    store_value,
)
from .transport import OscUdpClient


class ReaperProfile(DawProfile):
    """REAPER's default OSC pattern set (``Default.ReaperOSC``; see the module docstring)."""

    name = "reaper"
    default_port = 8000
    reply_port = 9000
    honours_timetags = False
    strip_paths = ("fader.fader_db", "fader.mute", "pan.pan")
    #: REAPER's fader range in dB (its volume control tops out at +12 dB).
    FADER_RANGE_DB = (-150.0, 12.0)
    #: REAPER reports a fader at -inf (and an empty bank slot) as -150 dB.
    fader_off_db = -150.0
    #: "Control surface: refresh all surfaces": REAPER then sends its whole state.
    REFRESH_ACTION = 41743
    unreachable_hint = ("REAPER: Preferences > Control/OSC/web > OSC, mode 'Configure device IP+local port', "
                        "device IP 127.0.0.1; or push with --no-query")
    ports_hint = "local listen port {port} (--port), device port {reply_port} (--reply-port)"

    def setup_messages(self, n_tracks: int) -> list[OscMessage]:
        """Widen the bank to ``n_tracks`` (at least 1) and select the first bank."""
        return [OscMessage("/device/track/count", (int(max(n_tracks, 1)),)),
                OscMessage("/device/track/bank/select", (1,))]

    def strip_messages(self, position, path, value, *, where="", clamp=False, clamped=None):
        """``/track/N/volume/db`` (dB), ``/track/N/mute`` (0/1), ``/track/N/pan`` (0 left .. 1 right)."""
        n = position + 1
        if path == "fader.fader_db":
            v = fits(value, *self.FADER_RANGE_DB, path, where, clamp, clamped, "lower the fader")
            return [OscMessage(f"/track/{n}/volume/db", (float(v),))]
        if path == "fader.mute":
            return [OscMessage(f"/track/{n}/mute", (1.0 if value >= 0.5 else 0.0,))]
        if path == "pan.pan":
            return [OscMessage(f"/track/{n}/pan", ((float(value) + 1.0) / 2.0,))]
        raise KeyError(path)

    master_gain_carrier = "REAPER's master track volume (/track/0/volume/db)"
    master_gain_range_db = FADER_RANGE_DB

    def master_gain_messages(self, gain_db):
        """``/track/0/volume/db`` (raw dB): track 0 is the master in ``Default.ReaperOSC``'s
        ``TRACK_VOLUME f/track/@/volume/db`` pattern."""
        return [OscMessage("/track/0/volume/db", (float(gain_db),))]

    def plugin_message(self, position, slot, index, wire_value):
        """``/track/N/fx/M/fxparam/K/value`` with the normalised (0..1) value."""
        return OscMessage(f"/track/{position + 1}/fx/{slot}/fxparam/{index}/value", (float(wire_value),))

    def refresh_message(self) -> OscMessage:
        """``/action 41743``: refresh all surfaces (REAPER sends every track's state)."""
        return OscMessage("/action", (self.REFRESH_ACTION,))

    def refresh(self, client: OscUdpClient, n_tracks: int) -> FeedbackState:
        """Widen the bank to ``n_tracks``, trigger "refresh all surfaces" and collect REAPER's feedback.

        Raises:
            DawUnreachableError: nothing came back within the client's timeout.
        """
        state = FeedbackState()
        with client.router.routed("/**", state):
            client.query(self.setup_messages(n_tracks) + [self.refresh_message()], lambda: False,
                         what="/action 41743 (refresh all surfaces)", timeout_s=client.timeout_s)
        return state

    def query_tracks(self, client, *, max_tracks=64):
        """The named tracks of REAPER's refresh feedback (``/track/N/name``), in order; the feedback is kept
        for :meth:`strip_layouts`."""
        self._feedback = self.refresh(client, max_tracks)
        return reaper_tracks(self._feedback)

    def strip_layouts(self, client, tracks):
        """Each track's mapped plugins found by FX name in the last refresh (:func:`reaper_slot_layout`);
        tracks whose refresh named no FX are left out (they keep the map's slots)."""
        state = getattr(self, "_feedback", None) or FeedbackState()
        layouts = {}
        for d in tracks:
            names = reaper_fx_names(state, d.position + 1)
            if names:
                layouts[d.position] = StripLayout(reaper_slot_layout(names, self.plugin_map.slots))
        return layouts

    def pull_tracks(self, client, feedback, *, max_tracks=64, clamp=False, sample_rate=48000):
        """Volume, pan, mute and every mapped plugin value from one refresh of all surfaces."""
        state = self.refresh(client, max_tracks)
        pulled = PulledTracks(ignored=reaper_empty_slots(state))
        for d in reaper_tracks(state):
            n = d.position + 1
            where = f"track '{d.name}' "
            t = self.new_track(d.name)
            for path, address, conv in (
                (FADER_PATH, f"/track/{n}/volume/db", float),
                ("pan.pan", f"/track/{n}/pan", lambda v: 2.0 * float(v) - 1.0),
                ("fader.mute", f"/track/{n}/mute", float),
            ):
                rows = state.by_address.get(address)
                if not rows or not rows[-1]:
                    pulled.not_read.append(f"{d.name}: {path}")
                    continue
                if path == FADER_PATH:
                    store_fader(t.params, conv(rows[-1][0]), self.fader_off_db, where, clamp, pulled)
                else:
                    store_value(t.params, path, conv(rows[-1][0]), where, clamp, pulled.clamped)
            fx_names = reaper_fx_names(state, n)
            slots = reaper_slot_layout(fx_names, self.plugin_map.slots) if fx_names else {}
            for plug in self.plugin_map.plugins:
                slot = slots.get(plug.slot, plug.slot)
                if slot is None:  # the plugin is not on this track: nothing to read
                    pulled.not_read.extend(f"{d.name}: {path} (plugin '{plug.name}' not on the REAPER track)"
                                           for path in plug.paths)
                    continue
                wire = {}
                for pname, p in plug.params.items():
                    rows = state.by_address.get(f"/track/{n}/fx/{slot}/fxparam/{p.index}/value")
                    if rows and rows[-1]:
                        wire[pname] = float(rows[-1][0])
                read_plugin(t, plug, wire, d.name, where, pulled, clamp, sample_rate)
            pulled.add(t)
        return pulled


def _slot_names(state: FeedbackState) -> dict[int, str]:
    names: dict[int, str] = {}
    for address, rows in state.by_address.items():
        parts = address.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "track" and parts[2] == "name" and parts[1].isdigit() and int(parts[1]) > 0:
            names[int(parts[1])] = str(rows[-1][0]) if rows and rows[-1] else ""
    return names


def _looks_empty(state: FeedbackState, n: int, name: str) -> bool:
    """Slot ``n`` carries nothing a real track would: the default name, the -inf fader, no FX feedback."""
    if name not in ("", f"Track {n}"):
        return False
    rows = state.by_address.get(f"/track/{n}/volume/db")
    if rows and rows[-1] and float(rows[-1][0]) > ReaperProfile.fader_off_db:
        return False
    return not any(a.startswith(f"/track/{n}/fx/") for a in state.by_address)


def _empty_tail(state: FeedbackState) -> tuple[dict[int, str], set[int]]:
    names = _slot_names(state)
    empty: set[int] = set()
    for n in sorted(names, reverse=True):
        if not _looks_empty(state, n, names[n]):
            break
        empty.add(n)
    return names, empty


def reaper_tracks(state: FeedbackState) -> list[DawTrack]:
    """The tracks of REAPER's feedback: every ``/track/N/name`` with N >= 1 and a non-empty name, less the
    trailing empty bank slots (see the module docstring)."""
    names, empty = _empty_tail(state)
    return [DawTrack(n - 1, names[n]) for n in sorted(names) if names[n] and n not in empty]


def reaper_empty_slots(state: FeedbackState) -> list[str]:
    """One line naming the empty bank slots a refresh reported and :func:`reaper_tracks` dropped ([] if none)."""
    _, empty = _empty_tail(state)
    if not empty:
        return []
    return [f"{len(empty)} empty REAPER bank slots ({min(empty)}..{max(empty)}: default name, -inf fader, no FX) "
            "are not tracks"]


def reaper_fx_names(state: FeedbackState, n: int) -> dict[int, str]:
    """``{fx slot: name}`` that REAPER's refresh reported for track ``n`` (``/track/N/fx/M/name``; {} if none)."""
    out: dict[int, str] = {}
    prefix = f"/track/{n}/fx/"
    for address, rows in state.by_address.items():
        if address.startswith(prefix) and address.endswith("/name") and rows and rows[-1]:
            slot = address[len(prefix):-len("/name")]
            if slot.isdigit() and str(rows[-1][0]).strip():
                out[int(slot)] = str(rows[-1][0])
    return out


def reaper_slot_layout(fx_names: dict[int, str], mapped: Sequence[tuple[int, str]]) -> dict[int, int | None]:
    """Map slot -> REAPER FX slot for each ``(map slot, plugin name)`` in map order (None: not on the track).

    Each mapped plugin takes the lowest FX slot not taken yet whose reported name contains the plugin's
    name (case-insensitive), so two "ZamEQ2" entries take the first and the second ZamEQ2 of the track.
    """
    taken: set[int] = set()
    layout: dict[int, int | None] = {}
    for map_slot, name in mapped:
        want = name.casefold()
        found = next((s for s in sorted(fx_names) if s not in taken and want in fx_names[s].casefold()), None)
        if found is not None:
            taken.add(found)
        layout[map_slot] = found
    return layout
