"""The plugin side of ``compare``: ``--plugin`` values (plugin maps on the ``vst`` backend, or
builtin processors and named datagen chains on the ``builtin`` backend) resolved to a
renderable :class:`PluginChain`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .loading import CompareError


@dataclass
class PluginChain:
    """The real processors: ``backend`` renders ``processors`` in order (:func:`render_chain`)."""

    label: str
    backend_name: str
    processors: list[str]
    backend: Any

    def render(self, audio: np.ndarray, nested_params: dict) -> np.ndarray:
        """``audio [channels, samples]`` through the chain with ``{processor: {param: real}}``, from a
        cleared state (:func:`mixbridge.plugins.datagen.effect.render_chain`)."""
        from mixbridge.plugins.datagen.effect import render_chain

        return render_chain(self.backend, self.processors, audio, nested_params)


def resolve_plugin(specs: Sequence[str], sample_rate: int) -> PluginChain:
    """``--plugin`` values to a renderable chain.

    Each value is a plugin map (shipped name such as ``zamcomp``, or a JSON path;
    repeat for a chain, in order) or builtin processors (``compressor``,
    ``eq,compressor``, a named datagen chain such as ``eq_comp``).

    Raises:
        CompareError: maps mixed with builtins, or an unknown name (the known ones listed).
        PluginMapError / PluginNotFoundError / BackendUnavailableError: from the vst backend.
    """
    from mixbridge.errors import UnknownNameError
    from mixbridge.plugins.backend import get_backend
    from mixbridge.plugins.datagen.effect import plugin_map_processors, resolve_chain
    from mixbridge.plugins.datagen.errors import DatagenConfigError
    from mixbridge.plugins.map_loader import load_map

    specs = [s for s in specs if s]
    maps, builtins = [], []
    for s in specs:
        try:
            load_map(s)
            maps.append(s)
        except UnknownNameError:
            builtins.append(s)
    if maps and builtins:
        raise CompareError(f"--plugin mixes plugin maps {maps} with builtin processors {builtins}; "
                           "compare one backend at a time")
    if maps:
        map_procs, options = plugin_map_processors(maps)
        return PluginChain("+".join(maps) + " (vst)", "vst", list(map_procs),
                           get_backend("vst", sample_rate, **options))
    procs: list[str] = []
    for s in builtins:
        try:
            procs += list(resolve_chain(s))
        except DatagenConfigError as e:
            raise CompareError(f"--plugin {s}: neither a plugin map nor builtin processors ({e})") from None
    return PluginChain(",".join(procs) + " (builtin)", "builtin", procs, get_backend("builtin", sample_rate))
