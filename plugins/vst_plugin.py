"""One VST plugin instance: loading (VST2 through DawDreamer, VST3 through pedalboard), name-based
parameter access and inspection.

:func:`open_plugin` finds a plugin by name or path (:mod:`.discovery`) and loads it as a
:class:`LoadedPlugin`, which gives the normalised value, display text and unit label of each
parameter by index and :meth:`~LoadedPlugin.index` by name (the calibration's
:class:`~.map_calibration.ParamAccess`); :func:`inspect_plugin` lists them for ``mixbridge
plugins inspect``. The render backend that drives plugins through maps is :mod:`.vst`.
"""
from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mixbridge.errors import PluginMapError

from .discovery import import_dawdreamer, plugin_name, quiet_fds, resolve_plugin
from .probe import PluginLoadError, ProbeResult, ensure_loadable

#: Sample rate used to load a plugin only for inspection or calibration (Hz).
INSPECT_SAMPLE_RATE = 48000


class LoadedPlugin:
    """A plugin instance with name-based parameter access (VST2 via DawDreamer, VST3 via pedalboard).

    Attributes:
        name, path, format ("vst2"|"vst3"), inputs, outputs (channel counts),
        sample_rate (Hz), processor (the DawDreamer processor or pedalboard plugin).
    """

    #: DawDreamer's PluginProcessor (VST2) or pedalboard's ExternalPlugin (VST3); None once closed.
    processor: Any

    def __init__(self, path: Path, format: str, sample_rate: int, block_size: int = 512, engine=None,
                 unique_name: str = "plugin", extra_paths: Iterable[str] | None = None, *, probe: bool = True,
                 timeout_s: float | None = None) -> None:
        """Load the plugin at ``path`` (``format`` ``"vst2"``/``"vst3"``) at ``sample_rate`` Hz.

        With ``probe`` (the default) a sandboxed child process loads it first
        (:func:`~.probe.ensure_loadable`, cached per file), so a plugin that crashes or hangs
        raises here instead of killing or hanging this process; ``timeout_s`` is its limit in
        seconds (None: :func:`~.probe.check_timeout_s`'s default). The probe child itself loads with ``probe=False``.

        Raises:
            PluginLoadError: the plugin crashes the probe (naming the signal), does not load
                within ``timeout_s``, or its loader refuses it.
            BackendUnavailableError: DawDreamer (VST2) or pedalboard (VST3) is missing.
        """
        if probe:
            ensure_loadable(path, format, timeout_s)
        with quiet_fds():  # loaders and some plugins print chatter on the C-level stdout/stderr
            self._load(path, format, sample_rate, block_size, engine, unique_name, extra_paths)

    def _load(self, path, format, sample_rate, block_size, engine, unique_name, extra_paths) -> None:
        self.path = Path(path)
        self.format = format
        self.sample_rate = int(sample_rate)
        self.engine = engine
        if format == "vst3":
            try:
                import pedalboard
            except ImportError:  # pragma: no cover - pedalboard is a core dependency
                from mixbridge.errors import BackendUnavailableError

                raise BackendUnavailableError(
                    "VST3 plugins need pedalboard; run `pip install pedalboard==0.9.26`") from None
            try:
                with quiet_fds():
                    self.processor = pedalboard.load_plugin(str(self.path))
            except Exception as e:  # pedalboard raises ImportError/RuntimeError for unloadable files
                raise _load_error(self.path, format, f"fails to load through pedalboard ({e})") from None
            self._params = list(self.processor.parameters.values())
            self.name = plugin_name(self.path)
            self.inputs = self.outputs = self._vst3_main_channels()
        else:
            if self.engine is None:
                daw = import_dawdreamer()
                with quiet_fds():
                    self.engine = daw.RenderEngine(self.sample_rate, int(block_size))
            try:
                with quiet_fds():
                    self.processor = self.engine.make_plugin_processor(unique_name, str(self.path))
            except Exception as e:  # DawDreamer raises RuntimeError("Unable to load plugin.")
                raise _load_error(self.path, format, f"fails to load in DawDreamer ({e})") from None
            self.name = plugin_name(self.path)  # DawDreamer get_name() is our unique processor name
            self.inputs = int(self.processor.get_num_input_channels())
            self.outputs = int(self.processor.get_num_output_channels())
            count = self.processor.get_plugin_parameter_size()
            self._names = [self.processor.get_parameter_name(i) for i in range(count)]
            desc = self.processor.get_parameters_description()
            self._labels = [d.get("label", "") for d in desc]
            self._automatable = [bool(d.get("isAutomatable", True)) for d in desc]

    def _vst3_main_channels(self) -> int:
        """pedalboard exposes no channel counts: probe the main bus with 2, then 1 channel(s)."""
        for ch in (2, 1):
            try:
                with quiet_fds():
                    self.processor.process(np.zeros((ch, 64), np.float32), float(self.sample_rate), reset=True)
                return ch
            except ValueError:  # "does not support 2-channel output"
                continue
        raise PluginMapError(f"{self.path}: the VST3 main bus takes neither 2 nor 1 channels; it cannot be used")

    def close(self) -> None:
        """Release the plugin instance (DawDreamer keeps it in its engine until the engine goes)."""
        self.processor = None
        self._params = []

    # -- ParamAccess
    def param_names(self) -> list[str]:
        """Parameter names, by index."""
        if self.format == "vst3":
            return [p.name for p in self._params]
        return list(self._names)

    def is_automatable(self, index: int) -> bool:
        """False for parameters the host owns (DPF VST3 "Buffer Size", "Sample Rate")."""
        if self.format == "vst3":
            return bool(getattr(self._params[index], "is_automatable", True))
        return bool(self._automatable[index])

    def param_label(self, index: int) -> str:
        """The unit label the plugin shows for parameter ``index`` ("dB", "ms"; may be empty)."""
        if self.format == "vst3":
            return str(getattr(self._params[index], "label", "") or "")
        return str(self._labels[index]).strip()

    def get_normalised(self, index: int) -> float:
        """Parameter ``index``'s normalised value, 0..1."""
        if self.format == "vst3":
            return float(self._params[index].raw_value)
        return float(self.processor.get_parameter(index))

    def set_normalised(self, index: int, value: float) -> None:
        """Set parameter ``index`` to the normalised value ``value`` (0..1)."""
        if self.format == "vst3":
            self._params[index].raw_value = float(value)
        else:
            self.processor.set_parameter(index, float(value))

    def display_text(self, index: int) -> str:
        """The plugin's display text of parameter ``index`` at its current value ("-12.5 dB")."""
        if self.format == "vst3":
            return str(self._params[index].string_value)
        return str(self.processor.get_parameter_text(index))

    def index(self, name: str) -> int:
        """Index of the parameter called ``name``.

        Raises:
            PluginMapError: no such parameter; lists the plugin's parameters.
        """
        names = self.param_names()
        try:
            return names.index(name)
        except ValueError:
            raise PluginMapError(
                f"{self.name} ({self.path}) has no parameter '{name}'; it has: {', '.join(names)}") from None


def _load_error(path: Path, format: str, reason: str) -> PluginLoadError:
    """The one-line error of a loader that refused ``path`` (the same text the probe reports)."""
    return ProbeResult(Path(path), format, "error", reason=reason).error()


def open_plugin(plugin: str | os.PathLike, sample_rate: int = INSPECT_SAMPLE_RATE,
                plugin_paths: Iterable[str] | None = None,
                format: str | None = None, timeout_s: float | None = None) -> LoadedPlugin:
    """Find and load one plugin by name or path (for inspection and calibration), after the
    sandboxed probe (:func:`~.probe.ensure_loadable`, limit ``timeout_s`` seconds) has loaded it.

    Raises:
        PluginNotFoundError: not found; lists the plugins found.
        PluginLoadError: (a PluginNotFoundError) it crashes, hangs or fails to load; names the file
            and the signal or the limit.
        BackendUnavailableError: DawDreamer is missing (VST2).
    """
    pf = resolve_plugin(plugin, plugin_paths, format)
    return LoadedPlugin(pf.path, pf.format, sample_rate, extra_paths=plugin_paths, timeout_s=timeout_s)


@dataclass
class ParamInfo:
    """One row of ``plugins inspect``."""

    index: int
    name: str
    label: str
    default_normalised: float
    default_text: str
    text_at_0: str
    text_at_1: str


def inspect_plugin(loaded: LoadedPlugin) -> list[ParamInfo]:
    """Every parameter's name, label, default (normalised and display) and display at 0 and 1.

    The parameter values are restored afterwards.
    """
    rows = []
    for i, name in enumerate(loaded.param_names()):
        u0 = loaded.get_normalised(i)
        t0 = loaded.display_text(i)
        loaded.set_normalised(i, 0.0)
        lo = loaded.display_text(i)
        loaded.set_normalised(i, 1.0)
        hi = loaded.display_text(i)
        loaded.set_normalised(i, u0)
        rows.append(ParamInfo(i, name, loaded.param_label(i), u0, t0, lo, hi))
    return rows


_LIBC = None


def seed_libc_rand() -> None:
    """Seed C ``rand()`` (glibc ``srand(1)``) so plugins that draw from it (the Dragonfly reverbs) render
    reproducibly; a no-op where libc cannot be loaded."""
    global _LIBC
    try:
        if _LIBC is None:
            _LIBC = ctypes.CDLL(None)
        _LIBC.srand(1)
    except (OSError, AttributeError):  # pragma: no cover - non-glibc platforms
        pass
