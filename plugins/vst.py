"""The ``vst`` backend: real third-party plugins driven through plugin maps.

VST2 plugins (the Debian ``zam-plugins`` and ``dragonfly-reverb-vst``) run in
DawDreamer; a map whose plugins are VST3 (``.vst3``) runs through pedalboard's
``load_plugin``. Each schema processor is rendered by its map
(:mod:`.pluginmap`, defaults in :data:`~.pluginmap.DEFAULT_MAPS`):

========== ======================================= =========================================
processor  default map                             plugins
========== ======================================= =========================================
eq         ``zameq2_x2``                           two ZamEQ2 in series (the 2nd carries peak3)
compressor ``zamcomp``                             ZamComp (sidechain: host-made schema reduction drive)
reverb     ``dragonfly_plate``                     DragonflyPlateReverb, dry 0 % (wet only), measured RT60/gain
limiter    none: the master bus's true-peak limiter  ``zamaximx2`` on request (it fails the contract)
========== ======================================= =========================================

**Channels.** A plugin whose input or output has fewer channels than the
signal (ZamEQ2 1 -> 1, ZamComp 2 -> 1 where input 2 is the sidechain) runs as
one instance per channel ("lane"): left and right are processed independently.
Each lane's plugin input is the lane's signal repeated over the plugin's input
channels, except the input a map stage's ``sidechain`` names: it gets the
host-made signal (:data:`~.map_sidechain.SIDECHAIN_SIGNALS`), the same in every lane.
The compressor maps feed ZamComp's sidechain with
:func:`~.map_sidechain.schema_reduction_drive`: the level that makes the plugin's own
hard knee and attack/release one-pole produce the schema's gain reduction (stereo
linked, soft knee, peak hold), so a stereo compressor is *linked* (one gain) and
renders the reference (:mod:`.dynamics`) on any material, not only on steps
(measured: gated-noise bursts 1.5-3.2 LU louder than the reference before,
within 0.001 LU after). A stereo plugin on a mono signal gets the signal on both
inputs and the first output is kept. The sidechain signal sees automated values
held per host block, as the plugin does.

**Automation** is converted through the map to per-sample normalised curves
and handed to DawDreamer's ``set_automation``; DawDreamer applies them at the
start of each host block of ``block_size`` samples (block-rate, like
:func:`~.backend.automation_blocks`). VST3 maps render block by block.

**State and latency.** One RenderEngine and one set of plugin instances is
kept per (processor, channels) and reused across calls; every render
re-prepares the plugins (which clears their filter and delay state), so two
identical calls give identical output, whatever was rendered in between
(measured bit-identical for ZamEQ2, ZamComp, ZaMaximX2). The Dragonfly reverbs
do not clear their delay lines when re-prepared (a render starts with the
previous render's tail: measured max |diff| 0.16 between two identical 0.5 s
noise renders), so their maps set ``fresh_instance_per_call`` and get a new
instance every call (a Plate load costs about 0.12 s); Dragonfly Room is not
reproducible even then (its late tail differs between fresh instances) and
raises a notice. LSP's compressors keep their gain reduction across a re-prepare
too (a -60 dBFS tone after a 0 dBFS one starts 12 dB down); ``plugins calibrate``
measures this for any plugin and writes the flag into the map it makes. Plugin latency (``get_latency_samples``,
ZaMaximX2: 480 samples at 48 kHz), plus a map's measured unreported onset delay
(``delay_ms``: the Plate's 55.9 ms), is compensated: the input is padded and the
first ``latency`` output samples are dropped, so output sample ``i`` lines up
with input sample ``i``.

**Reverb** is rendered wet only (the map fixes the dry level at 0 %); the map's
measured ``output_gain`` (the Plate's wet energy over its Decay knob, negated)
and then the schema's ``return_db`` are applied by this backend as exact gains on
the wet output (also automatable), because the plugin's own wet level tops out
at 0 dB. ``decay_s`` is the RT60: the Decay knob comes from the map's measured
RT60 table; a value outside it raises ``ParamRangeError`` (never clamped).
The output has the input's length; the tail past it is cut.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from mixbridge.errors import AudioInputError, PluginMapError, UnknownNameError
from mixbridge.session import Automation

from .backend import PLUGIN_PROCESSORS, Backend, automation_curve
from .discovery import import_dawdreamer, plugin_not_found, quiet_fds
from .map_loader import check_identity, load_map
from .map_sidechain import SIDECHAIN_SIGNALS
from .pluginmap import DEFAULT_MAPS, MAP_PROCESSORS, PluginMap
from .probe import check_timeout_s
from .vst_plugin import LoadedPlugin, seed_libc_rand


class _Rig:
    """Plugin instances of one map for one channel count, reused across calls.

    ``lanes`` is a list of (lane channel indices, [LoadedPlugin per stage]).
    """

    def __init__(self, backend: VstBackend, pmap: PluginMap, channels: int) -> None:
        self.pmap = pmap
        self.channels = channels
        self.sample_rate = backend.sample_rate
        self.block_size = backend.block_size
        first = pmap.plugins[pmap.stages[0].plugin].identity
        self.format = first.format
        # Lanes: a plugin whose input or output is narrower than the signal runs per channel.
        width = min(min(pmap.plugins[st.plugin].identity.outputs for st in pmap.stages), first.inputs)
        if width >= channels:
            lane_sets = [tuple(range(channels))]
        else:
            lane_sets = [(c,) for c in range(channels)]
        self.lanes: list[tuple[tuple[int, ...], list[LoadedPlugin]]] = []
        self.engine = None
        if self.format == "vst2":
            daw = import_dawdreamer()
            with quiet_fds():
                self.engine = daw.RenderEngine(self.sample_rate, self.block_size)
        self.playbacks = []
        graph: list[tuple[Any, list[str | None]]] = []  # (DawDreamer processor, its input names)
        for li, chans in enumerate(lane_sets):
            instances: list[LoadedPlugin] = []
            prev = None
            if self.engine is not None:
                silence = np.zeros((self._in_channels(pmap, 0), 1), np.float32)
                pb = self.engine.make_playback_processor(f"in{li}", silence)
                self.playbacks.append(pb)
                graph.append((pb, []))
                prev = f"in{li}"
            for si, st in enumerate(pmap.stages):
                spec = pmap.plugins[st.plugin]
                path = backend.plugin_path(spec)
                lp = LoadedPlugin(path, spec.identity.format, self.sample_rate, self.block_size, self.engine,
                                  f"l{li}s{si}", backend.plugin_paths, timeout_s=backend.plugin_timeout_s)
                check_identity(spec, lp, f"plugin map '{pmap.name}' stage {si} ({spec.identity.name})")
                if self.engine is not None:
                    if si + 1 < len(pmap.stages):
                        nxt = pmap.plugins[pmap.stages[si + 1].plugin].identity
                        if nxt.inputs != lp.outputs:
                            raise PluginMapError(
                                f"plugin map '{pmap.name}': stage {si} outputs {lp.outputs} channel(s) but stage "
                                f"{si + 1} takes {nxt.inputs}; chain plugins with matching I/O"
                            )
                    lp.processor.record = si + 1 == len(pmap.stages)
                    graph.append((lp.processor, [prev]))
                    prev = f"l{li}s{si}"
                instances.append(lp)
            self.lanes.append((chans, instances))
        self.latency = 0
        if self.engine is not None:
            with quiet_fds():
                self.engine.load_graph(graph)
            # prepare once so the plugins report their latency
            self._render_vst2([np.zeros((self._in_channels(pmap, 0), self.block_size), np.float32)] * len(self.lanes),
                              {}, self.block_size)
            self.latency = max(sum(int(lp.processor.get_latency_samples()) for lp in inst) for _, inst in self.lanes)
        self.reported_latency = self.latency
        # an onset delay the plugin does not report (map 'delay_ms', measured) is removed the same way
        self.latency += int(round(pmap.delay_ms * 1e-3 * self.sample_rate))

    @staticmethod
    def _in_channels(pmap: PluginMap, stage: int) -> int:
        return pmap.plugins[pmap.stages[stage].plugin].identity.inputs

    def _lane_input(self, audio: np.ndarray, chans: tuple[int, ...], n_in: int, pad: int,
                    sidechain: tuple[int, np.ndarray] | None = None) -> np.ndarray:
        """The plugin input of one lane: its channels repeated over the inputs; a host-made
        ``sidechain`` ``(input index, [samples])`` takes its input instead."""
        sig = audio[list(chans)]
        sc_in = sidechain[0] if sidechain is not None else -1
        main = [i for i in range(n_in) if i != sc_in]
        reps: list[np.ndarray | None] = [None] * n_in  # every input is filled below
        for k, i in enumerate(main):
            reps[i] = sig[k % len(chans)]
        if sidechain is not None:
            reps[sc_in] = sidechain[1]
        x = np.stack(cast(list[np.ndarray], reps)).astype(np.float32, copy=False)
        if pad:
            x = np.concatenate([x, np.zeros((n_in, pad), np.float32)], axis=1)
        return np.ascontiguousarray(x)

    def _render_vst2(self, inputs: Sequence[np.ndarray], values: Mapping[int, Mapping[str, Any]], n: int):
        for pb, x in zip(self.playbacks, inputs):
            pb.set_data(x)
        for _, instances in self.lanes:
            for si, lp in enumerate(instances):
                for pname, v in (values.get(si) or {}).items():
                    idx = lp.index(pname)
                    if np.ndim(v):
                        lp.processor.set_automation(idx, np.ascontiguousarray(v, dtype=np.float32))
                    else:
                        lp.processor.set_parameter(idx, float(v))
        seed_libc_rand()
        assert self.engine is not None  # a vst2 rig always has its engine (__init__)
        self.engine.render((n + 0.5) / self.sample_rate)
        outs = []
        for chans, instances in self.lanes:
            y = instances[-1].processor.get_audio()
            if y.shape[1] != n:
                raise RuntimeError(f"DawDreamer rendered {y.shape[1]} samples where {n} were asked")  # pragma: no cover
            outs.append(y[: len(chans)])
        return outs

    def render(self, audio: np.ndarray, stage_values: list[dict[str, Any]],
               sidechain: tuple[int, np.ndarray] | None = None) -> np.ndarray:
        """Render ``audio`` [channels, samples] with per-stage normalised values (floats or per-sample arrays).

        ``sidechain``: ``(input index, float32 [samples])`` fed to that input of the first stage in every lane.
        """
        n = audio.shape[1]
        L = self.latency
        total = n + L
        vals: dict[int, dict[str, Any]] = {}
        for si, sv in enumerate(stage_values):
            d = {}
            for k, v in sv.items():
                if np.ndim(v):
                    v = np.asarray(v, dtype=np.float64)
                    if L:
                        v = np.concatenate([v, np.full(L, v[-1])])
                d[k] = v
            vals[si] = d
        out = np.zeros((self.channels, n), np.float32)
        if self.format == "vst2":
            n_in = self._in_channels(self.pmap, 0)
            inputs = [self._lane_input(audio, chans, n_in, L, sidechain) for chans, _ in self.lanes]
            outs = self._render_vst2(inputs, vals, total)
            for (chans, _), y in zip(self.lanes, outs):
                out[list(chans)] = y[:, L:L + n]
            return out
        return self._render_vst3(audio, vals, sidechain)

    def _render_vst3(self, audio: np.ndarray, vals: Mapping[int, Mapping[str, Any]],
                     sidechain: tuple[int, np.ndarray] | None = None) -> np.ndarray:
        n = audio.shape[1]
        automated = any(np.ndim(v) for sv in vals.values() for v in sv.values())
        out = np.zeros((self.channels, n), np.float32)
        for chans, instances in self.lanes:
            x = self._lane_input(audio, chans, instances[0].inputs, 0, sidechain)
            step = self.block_size if automated else n
            y_parts = []
            for start in range(0, n, step):
                stop = min(start + step, n)
                blk = x[:, start:stop]
                for si, lp in enumerate(instances):
                    for pname, v in (vals.get(si) or {}).items():
                        lp.set_normalised(lp.index(pname), float(v[start]) if np.ndim(v) else float(v))
                    blk = lp.processor.process(blk, float(self.sample_rate), buffer_size=self.block_size,
                                               reset=(start == 0))
                y_parts.append(np.asarray(blk, np.float32))
            y = np.concatenate(y_parts, axis=1)
            out[list(chans)] = y[: len(chans)]
        return out


class VstBackend(Backend):
    """Renders schema processors through real plugins (see the module docstring).

    Args:
        sample_rate: in Hz.
        block_size: host block in samples (also the automation update rate).
        maps: ``{processor: map name, JSON path or PluginMap}`` overriding
            :data:`~.pluginmap.DEFAULT_MAPS`.
        plugin_paths: extra folders searched for plugins before the defaults.
        plugin_timeout_s: seconds a plugin may take to load in the sandboxed probe
            (:mod:`.probe`) before it counts as hanging; None: ``$MIXBRIDGE_PLUGIN_TIMEOUT_S``,
            else :data:`~.probe.DEFAULT_TIMEOUT_S`.

    Raises:
        BackendUnavailableError: DawDreamer is not installed (only when a map
            needs VST2).
        UnknownNameError: a processor in ``maps`` that is not eq/compressor/reverb/limiter.
        PluginMapError: a map that fails validation, or one whose processor differs
            from its key.
        PluginNotFoundError: (at first use of a processor) a plugin that is not
            installed, listing the plugins found.
        PluginLoadError: (a PluginNotFoundError, at first use) a plugin that crashes the probe
            process (naming the file and the signal), hangs past ``plugin_timeout_s`` or fails to
            load; this process never loads it.
    """

    name = "vst"

    def __init__(self, sample_rate: int, block_size: int = 512, maps: Mapping[str, Any] | None = None,
                 plugin_paths: Iterable[str | os.PathLike] | None = None, clamp: bool = False,
                 plugin_timeout_s: float | None = None) -> None:
        super().__init__(sample_rate, block_size, clamp)
        self.plugin_paths = [str(p) for p in (plugin_paths or [])]
        self.plugin_timeout_s = check_timeout_s(plugin_timeout_s)
        chosen = dict(DEFAULT_MAPS)
        for proc, m in (maps or {}).items():
            if proc not in MAP_PROCESSORS:
                raise UnknownNameError(f"maps: unknown processor '{proc}'; known: {', '.join(MAP_PROCESSORS)}")
            chosen[proc] = m
        self.maps: dict[str, PluginMap] = {}
        for proc, m in chosen.items():
            pm = load_map(m)
            if pm.processor != proc:
                raise PluginMapError(
                    f"maps['{proc}'] is map '{pm.name}' for processor '{pm.processor}'; give a '{proc}' map")
            self.maps[proc] = pm
        if any(spec.identity.format == "vst2" for pm in self.maps.values() for spec in pm.plugins.values()):
            import_dawdreamer()  # fail early with the install hint
        self._rigs: dict[tuple[str, int], _Rig] = {}
        self._paths: dict[str, Path] = {}
        #: Called with ``(plugin paths, what)`` before plugins are loaded or render audio in this process
        #: (``what``: ``"track 'kick' (eq, plugin map 'zameq2_x2')"``), so that a process watching this
        #: one (:func:`mixbridge.app.automix.render_session`) can name the plugin that killed it.
        self.on_plugin: Callable[[list[Path], str], None] | None = None

    def plugin_path(self, spec) -> Path:
        """Where the plugin of a map entry is installed (by its file name, then its name).

        Raises:
            PluginNotFoundError: not on the search paths; lists what was found.
        """
        ident = spec.identity
        if ident.file in self._paths:
            return self._paths[ident.file]
        from .discovery import find_plugins

        found = find_plugins(self.plugin_paths)
        hit = [pf for pf in found if pf.path.name == ident.file and pf.format == ident.format]
        if not hit:
            hit = [pf for pf in found if pf.name.lower() == ident.name.lower() and pf.format == ident.format]
        if not hit:
            raise plugin_not_found(f"{ident.name} ({ident.file}, {ident.format})", self.plugin_paths)
        self._paths[ident.file] = hit[0].path
        return hit[0].path

    def renderable_range(self, processor: str, param: str) -> tuple[float, float]:
        """``(lo, hi)``: the schema range, narrowed by the ``range`` a map's bindings declare
        (:meth:`~.pluginmap.PluginMap.renderable_range`).

        Raises:
            UnknownParamError: an unknown processor or parameter name.
        """
        if processor in self.maps:
            return self.maps[processor].renderable_range(param)
        return super().renderable_range(processor, param)

    def check_renderable(self, processor: str, params: Mapping[str, float], *, label: str = "") -> None:
        """Evaluate the plugin map for ``params`` (no audio): raises what :meth:`process` would refuse."""
        if processor not in self.maps:
            return
        pmap = self.maps[processor]
        values = {**MAP_PROCESSORS[processor].defaults(), **{k: float(v) for k, v in params.items()}}
        for st in pmap.stages:
            pmap.stage_values(st, values, self.sample_rate, label=label or processor)

    def latency_samples(self, processor: str, channels: int = 2) -> int:
        """Latency the plugins of ``processor`` report (compensated by :meth:`process`); 0 without a map."""
        if processor not in self.maps:
            return 0
        return self._rig(processor, channels).latency

    def _rig(self, processor: str, channels: int) -> _Rig:
        key = (processor, channels)
        if key not in self._rigs:
            rig = _Rig(self, self.maps[processor], channels)
            if rig.reported_latency:
                self.notice(f"{processor}: plugin latency {rig.reported_latency} samples, compensated")
            if not self.maps[processor].deterministic:
                self.notice(
                    f"{processor}: map '{self.maps[processor].name}' is not reproducible (the plugin's output "
                    "differs between identical renders)"
                )
            self._rigs[key] = rig
        return self._rigs[key]

    def process(self, processor: str, audio: np.ndarray, params: Mapping[str, float],
                automation: Mapping[str, Automation] | None = None, *, label: str = "") -> np.ndarray:
        """Render one processor through its plugin map.

        Args:
            processor: ``eq``, ``compressor``, ``reverb`` or ``limiter``.
            audio: float32 ``[channels, samples]``, channels 1 or 2 (``reverb``: 2).
            params: real-unit schema values (missing ones take schema defaults).
            automation: optional ``{param: Automation}`` in real units.
            label: where the call comes from, for messages.

        Returns:
            float32 ``[channels, samples]`` (``reverb``: ``[2, samples]``, wet only,
            scaled by ``return_db``).

        Raises:
            UnknownNameError: unknown processor.
            AudioInputError: audio of the wrong shape (a ValueError).
            ParamRangeError: a value the plugin cannot reach.
            PluginNotFoundError / PluginMapError: see the class docstring.
        """
        if processor not in PLUGIN_PROCESSORS:
            raise UnknownNameError(
                f"unknown processor '{processor}'; the vst backend renders {', '.join(PLUGIN_PROCESSORS)}")
        audio = np.asarray(audio)
        if audio.ndim != 2 or audio.shape[0] not in (1, 2) or audio.shape[1] < 1:
            raise AudioInputError(
                f"{label or processor}: audio must be float32 [channels 1|2, samples >= 1], got shape {audio.shape}")
        if processor == "reverb" and audio.shape[0] != 2:
            raise AudioInputError(
                f"{label or 'reverb'}: the reverb takes the stereo send bus [2, samples], got {audio.shape}")
        audio = audio.astype(np.float32, copy=False)
        if processor not in self.maps:  # no map for it (the limiter by default): the shared reference
            from .builtin import BuiltinBackend

            return BuiltinBackend(self.sample_rate, self.block_size).process(processor, audio, params, automation,
                                                                             label=label)
        pmap = self.maps[processor]
        schema = MAP_PROCESSORS[processor]
        values: dict[str, Any] = schema.defaults()
        values.update({k: float(v) for k, v in params.items()})
        n = audio.shape[1]
        auto = dict(automation or {})
        for k in auto:
            schema.param(k)  # UnknownParamError for a name the processor lacks
        for k, a in auto.items():
            values[k] = automation_curve(a, n, self.sample_rate)
        if pmap.fresh_instance_per_call:
            self._rigs.pop((processor, audio.shape[0]), None)
        def evaluate(v: dict) -> list[dict[str, Any]]:
            values.update(v)
            return [pmap.stage_values(st, values, self.sample_rate, label=label or processor) for st in pmap.stages]

        stage_values = self.with_clamp(processor, {k: v for k, v in values.items() if k not in auto}, evaluate,
                                       label=label)
        if self.on_plugin is not None:
            self.on_plugin([self.plugin_path(spec) for spec in pmap.plugins.values()],
                           f"{label or processor} ({processor}, plugin map '{pmap.name}')")
        rig = self._rig(processor, audio.shape[0])
        sidechain = None
        if pmap.stages[0].sidechain is not None:
            sc_input, signal = pmap.stages[0].sidechain
            # the plugin sees automation at the start of each host block: the signal must assume the same values
            held = {k: _block_held(v, self.block_size) if np.ndim(v) else v for k, v in values.items()}
            sidechain = (sc_input, SIDECHAIN_SIGNALS[signal].func(audio, held, self.sample_rate))
        y = rig.render(audio, stage_values, sidechain)
        gain_db = pmap.output_gain_db(stage_values)
        if processor == "reverb":
            gain_db = gain_db + np.asarray(values["return_db"], dtype=np.float64)
        if np.ndim(gain_db) or gain_db != 0.0:
            y = (y * np.power(10.0, np.asarray(gain_db, dtype=np.float64) / 20.0)).astype(np.float32)
        return y

    def close(self) -> None:
        """Drop the plugin instances and engines."""
        self._rigs.clear()


def _block_held(curve: np.ndarray, block_size: int) -> np.ndarray:
    """``curve`` [samples] with each host block holding its first sample's value (what a plugin sees)."""
    curve = np.asarray(curve, dtype=np.float64)
    return np.repeat(curve[::block_size], block_size)[: curve.shape[0]]
