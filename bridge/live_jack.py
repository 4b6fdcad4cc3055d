"""JACK port latency for the live bus: libjack's latency API through cffi (JACK-Client 0.5.7 lacks it).

JACK-Client 0.5.7 wraps neither ``jack_set_latency_callback`` nor
``jack_port_{get,set}_latency_range``. This module declares those four libjack
functions with cffi in ABI mode and calls them on the same ``libjack`` that
JACK-Client loaded (``dlopen`` of a loaded library returns the same handle), with
the client and port pointers JACK-Client holds (``client._ptr``, ``port._ptr``,
cast through ``uintptr_t``).

What the live bus reports (the JACK latency API, jack/types.h,
``JackLatencyCallback``): a processing client adds its own delay ``L`` to the
ranges flowing through it. In capture mode the output ports get the capture
range of the matching input port plus ``L``; in playback mode the input ports get
the playback range of the matching output port plus ``L``. A client without a
latency callback gets JACK's default (the maximum range of its ports, no delay).

Imports cffi and JACK-Client lazily; every function here runs outside the
process callback (JACK calls the latency callback from its notification thread).
"""
from __future__ import annotations

import ctypes.util
from collections.abc import Sequence
from typing import Any

CAPTURE = 0   # JackCaptureLatency
PLAYBACK = 1  # JackPlaybackLatency

_CDEF = """
typedef uint32_t jack_nframes_t;
typedef struct { jack_nframes_t min; jack_nframes_t max; } jack_latency_range_t;
typedef void (*JackLatencyCallback)(int mode, void *arg);
int jack_set_latency_callback(void *client, JackLatencyCallback latency_callback, void *arg);
void jack_port_get_latency_range(void *port, int mode, jack_latency_range_t *range);
void jack_port_set_latency_range(void *port, int mode, jack_latency_range_t *range);
int jack_recompute_total_latencies(void *client);
"""

_state: dict[str, Any] = {}


class LatencyApiUnavailable(RuntimeError):
    """cffi or libjack's latency functions are missing (the bus runs, but reports no latency)."""


def _api():
    if "lib" not in _state:
        try:
            from cffi import FFI
        except ImportError as e:  # cffi comes with JACK-Client
            raise LatencyApiUnavailable(f"cffi is not installed ({e})") from None
        name = ctypes.util.find_library("jack")
        if name is None:
            raise LatencyApiUnavailable("libjack not found")
        ffi = FFI()
        ffi.cdef(_CDEF)
        try:
            lib = ffi.dlopen(name)
            lib.jack_port_set_latency_range  # noqa: B018 - resolve the symbols now
            lib.jack_set_latency_callback  # noqa: B018
        except (OSError, AttributeError) as e:
            raise LatencyApiUnavailable(f"libjack has no latency API ({e})") from None
        _state["ffi"], _state["lib"] = ffi, lib
    return _state["ffi"], _state["lib"]


def _ptr(obj: Any):
    """JACK-Client's ``_ptr`` (client or port) as a ``void *`` of this module's FFI."""
    import jack

    ffi, _ = _api()
    return ffi.cast("void *", int(jack._ffi.cast("uintptr_t", obj._ptr)))


def port_latency_range(port: Any, mode: int) -> tuple[int, int]:
    """``(min, max)`` latency in frames of a JACK-Client ``Port`` (any client's) for ``CAPTURE`` or ``PLAYBACK``."""
    ffi, lib = _api()
    rng = ffi.new("jack_latency_range_t *")
    lib.jack_port_get_latency_range(_ptr(port), int(mode), rng)
    return int(rng.min), int(rng.max)


class LatencyReporter:
    """Registers a latency callback that adds ``latency_samples`` between paired ports.

    Create it before ``client.activate()``; keep it alive as long as the client.
    ``calls`` counts callback invocations (a test reads it).
    """

    def __init__(self, client: Any, inports: Sequence[Any], outports: Sequence[Any], latency_samples: int) -> None:
        ffi, lib = _api()
        self.latency_samples = int(latency_samples)
        self.calls = 0
        self._lib, self._ffi = lib, ffi
        self._client = _ptr(client)
        self._pairs = [(_ptr(i), _ptr(o)) for i, o in zip(inports, outports)]
        self._range = ffi.new("jack_latency_range_t *")
        self._callback = ffi.callback("void(int, void *)", self._on_latency)
        rc = lib.jack_set_latency_callback(self._client, self._callback, ffi.NULL)
        if rc != 0:
            raise LatencyApiUnavailable(f"jack_set_latency_callback returned {rc}")

    def _on_latency(self, mode: int, _arg: Any) -> None:
        try:
            self.calls += 1
            rng, lat, lib = self._range, self.latency_samples, self._lib
            for inp, out in self._pairs:
                if mode == CAPTURE:
                    lib.jack_port_get_latency_range(inp, CAPTURE, rng)
                    rng.min += lat
                    rng.max += lat
                    lib.jack_port_set_latency_range(out, CAPTURE, rng)
                else:
                    lib.jack_port_get_latency_range(out, PLAYBACK, rng)
                    rng.min += lat
                    rng.max += lat
                    lib.jack_port_set_latency_range(inp, PLAYBACK, rng)
        except Exception:  # never raise into libjack
            pass

    def recompute(self) -> None:
        """Ask JACK to recompute every latency (after :attr:`latency_samples` changes)."""
        self._lib.jack_recompute_total_latencies(self._client)
