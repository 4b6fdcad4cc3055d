"""The semantic contract's built-in implementations: the reference, the backends, the live chain, one map.

* ``reference`` -- the numpy reference functions (:mod:`.dynamics`, :mod:`.rbj`, :mod:`.reverb`,
  :func:`.console.pan_gains`) themselves;
* ``builtin`` and ``vst`` -- the render backends (:func:`.backend.get_backend`) through
  :func:`backend_implementation`, pan through the console (:func:`console_pan_renderer`);
* ``live`` -- the streaming master chain (:func:`.master_bus.render_master`);
* :func:`map_implementation` -- one plugin map on a :class:`~.vst.VstBackend`, its processor only.

:func:`register_builtin` puts the first four in :mod:`.contract`'s registry.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from mixbridge.errors import MixbridgeError

from .contract import Implementation, Renderer, register_implementation


def _reference(sample_rate: int) -> Implementation:
    """The numpy reference functions themselves (compressor, EQ, reverb, pan)."""
    from scipy.signal import sosfilt

    from .console import pan_gains
    from .dynamics import compress
    from .rbj import eq_sections
    from .reverb import reverb

    def eq(audio, sr, params):
        sos = np.array([np.concatenate([b, a]) for b, a in eq_sections(params, sr)])
        return sosfilt(sos, np.asarray(audio, np.float64), axis=1).astype(np.float32)

    def pan(audio, sr, params):
        left, right = pan_gains(params["pan"], audio.shape[0])
        src = (audio[0], audio[0]) if audio.shape[0] == 1 else (audio[0], audio[1])
        return np.stack([src[0] * np.float32(left), src[1] * np.float32(right)])

    return Implementation("reference", {"compressor": lambda a, sr, p: compress(a, sr, **p), "eq": eq,
                                        "reverb": lambda a, sr, p: reverb(a, sr, **p), "pan": pan})


def console_pan_renderer(backend) -> Renderer:
    """A renderer of one track through :func:`.console.render_track` (defaults but ``pan``) on ``backend``."""
    from mixbridge.session import Track

    from .console import render_track

    def pan(audio, sr, params):
        track = Track("contract", "contract.wav")
        track.params["pan"]["pan"] = float(params["pan"])
        tr, _ = render_track(track, np.ascontiguousarray(audio, np.float32), backend, sr, measure=False)
        return tr.output

    return pan


def backend_implementation(name: str, backend, processors: Iterable[str] = ("eq", "compressor", "reverb", "limiter"),
                           pan: bool = True) -> Implementation:
    """Wrap a :class:`~.backend.Backend`: ``backend.process(processor, audio, params)`` per group."""

    def proc(p):
        def render(audio, sr, params):
            if sr != backend.sample_rate:
                raise ValueError(f"the backend runs at {backend.sample_rate} Hz, the contract asked for {sr} Hz")
            return backend.process(p, audio, params, label="contract")
        return render

    renderers = {p: proc(p) for p in processors}
    if pan:
        renderers["pan"] = console_pan_renderer(backend)
    return Implementation(name, renderers, notices=lambda: list(backend.notices), close=backend.close)


def _builtin(sample_rate: int) -> Implementation:
    from .backend import get_backend

    return backend_implementation("builtin", get_backend("builtin", sample_rate))


def _vst(sample_rate: int) -> Implementation:
    from .backend import get_backend

    return backend_implementation("vst", get_backend("vst", sample_rate))


#: The live adapter runs the EQ and compressor with the gain stage at -LIVE_HEADROOM_DB and scales
#: the output back exactly, so the chain's limiter (ceiling 0 dBTP) never acts on those rows.
LIVE_HEADROOM_DB = 24.0


def _live(sample_rate: int) -> Implementation:
    from . import master_bus as m

    neutral_comp = {"ratio": 1.0}
    back = 10.0 ** (LIVE_HEADROOM_DB / 20.0)

    def through(processor):
        def render(audio, sr, params):
            p = {"eq": {}, "compressor": dict(neutral_comp), "gain": {"gain_db": -LIVE_HEADROOM_DB},
                 "limiter": {"ceiling_dbtp": 0.0}}
            p[processor] = dict(params)
            return (m.render_master(audio, sr, p).astype(np.float64) * back).astype(np.float32)
        return render

    def limiter(audio, sr, params):
        return m.render_master(audio, sr, {"compressor": dict(neutral_comp), "gain": {"gain_db": 0.0},
                                           "limiter": dict(params)})

    return Implementation("live", {"eq": through("eq"), "compressor": through("compressor"), "limiter": limiter})


def register_builtin() -> None:
    """Register ``reference``, ``builtin``, ``vst`` and ``live`` (:func:`.contract.register_implementation`);
    the contract's registry calls this once, on its first use."""
    for name, factory in (("reference", _reference), ("builtin", _builtin), ("vst", _vst), ("live", _live)):
        register_implementation(name, factory)


def map_implementation(map_name_or_path: Any, sample_rate: int,
                       plugin_paths: Iterable[str] | None = None) -> Implementation:
    """One plugin map as an implementation: ``VstBackend(sample_rate, maps={processor: map})``, its rows only."""
    from .map_loader import load_map
    from .vst import VstBackend

    pm = load_map(map_name_or_path)
    backend = VstBackend(sample_rate, maps={pm.processor: pm}, plugin_paths=plugin_paths)
    return backend_implementation(f"map {pm.name} ({pm.processor})", backend, processors=(pm.processor,), pan=False)


def maps_using_plugin(name: str) -> list[str]:
    """The shipped maps whose plugins include ``name`` (the plugin's name or file name, case-insensitive)."""
    from .map_loader import builtin_map_names, load_map

    hits = []
    for m in builtin_map_names():
        try:
            pm = load_map(m)
        except MixbridgeError:
            continue
        if any(spec.identity.name.lower() == name.lower() or spec.identity.file.lower() == name.lower()
               for spec in pm.plugins.values()):
            hits.append(m)
    return hits
