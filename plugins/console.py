"""The mixing console: N tracks -> reverb bus -> stereo sum -> master bus.

Signal flow per track (schema ``channel_strip``)::

    source -> trim.gain_db -> polarity.invert -> eq* -> compressor* -> fader.fader_db
           -> fader.mute -> pan.pan -> stereo sum
                                    \\-> send.send_db (post-fader, post-pan) -> reverb bus

``*`` stages are rendered by the chosen backend (pedalboard built-ins or real
plugins); the others are exact arithmetic done here with numpy, sample-accurate
under automation. The reverb return joins the stereo sum to give the *mix*;
the master bus (EQ -> bus compressor -> gain to the loudness target -> limiter)
gives the *master*: see :mod:`mixbridge.plugins.mastering`.

Pan law (``mixbridge.schema.PAN_SEMANTICS``; Izhaki, *Mixing Audio*, ch. 13), one
law for mono and stereo tracks, theta = (pan + 1) * pi / 4:

* mono track: constant power, L = cos(theta), R = sin(theta) -- each side
  -3.01 dB at the centre;
* stereo track: constant-power balance, L_out = sqrt(2) cos(theta) L_in,
  R_out = sqrt(2) sin(theta) R_in -- unity at the centre, and a stem whose two
  channels are equal lands exactly where a mono stem with the same pan lands,
  at the same power (a plain balance control would move it two- to fourfold
  less than the mixer asked).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from mixbridge.audio import read_audio, resample
from mixbridge.errors import AudioInputError
from mixbridge.loudness import db_to_gain
from mixbridge.session import Automation, Session, Track

from .backend import Backend, automation_curve, get_backend

#: Below this send level the send is off (the schema's -80 dB floor).
SEND_OFF_DB = -80.0


def pan_gains(pan, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Left/right gains for ``pan`` in -1..1 (scalar or per-sample array); see the module docstring.

    Mono input: ``(cos theta, sin theta)``; stereo input: ``sqrt(2)`` times that
    (unity at the centre), theta = (pan + 1) pi / 4.
    """
    theta = (np.asarray(pan, dtype=np.float64) + 1.0) * (math.pi / 4.0)
    scale = 1.0 if channels == 1 else math.sqrt(2.0)
    return scale * np.cos(theta), scale * np.sin(theta)


def _param_signal(track_params: Mapping[str, Mapping[str, float]], automation: Mapping[str, Automation],
                  path: str, n: int, sample_rate: int):
    """A parameter as a scalar, or as a per-sample curve when automated."""
    if path in automation:
        return automation_curve(automation[path], n, sample_rate)
    proc, _, name = path.partition(".")
    return track_params[proc][name]


def _split_automation(automation: Mapping[str, Automation], processor: str) -> dict[str, Automation]:
    prefix = processor + "."
    return {k[len(prefix):]: a for k, a in automation.items() if k.startswith(prefix)}


@dataclass
class TrackRender:
    """What the console measured on one track (for the report)."""

    name: str
    output: np.ndarray | None  # [2, samples] post-pan, pre-sum (kept only when measuring)
    pre_comp_rms_db: np.ndarray  # [frames] short-term RMS before the compressor
    post_comp_rms_db: np.ndarray  # [frames] after the compressor (before makeup)


@dataclass
class ConsoleRender:
    """The console's outputs: ``mix`` float32 ``[2, samples]`` (tracks + reverb return)."""

    mix: np.ndarray
    reverb_return: np.ndarray
    tracks: list[TrackRender]
    sample_rate: int
    notices: list[str] = field(default_factory=list)


def short_term_rms_db(audio: np.ndarray, sample_rate: int, window_s: float = 0.05) -> np.ndarray:
    """RMS in dBFS over non-overlapping windows of ``window_s`` (channels averaged)."""
    hop = max(1, int(window_s * sample_rate))
    n = audio.shape[1] // hop
    if n == 0:
        return np.zeros(0)
    power = (audio[:, : n * hop].astype(np.float64) ** 2).mean(axis=0).reshape(n, hop).mean(axis=1)
    return 10.0 * np.log10(np.maximum(power, 1e-12))


def render_track(track: Track, audio: np.ndarray, backend: Backend, sample_rate: int,
                 measure: bool = True) -> tuple[TrackRender, np.ndarray | None]:
    """Render one channel strip; returns its measurements and its post-fader, post-pan send ``[2, samples]``.

    Static gains are folded into one scalar per output channel; automated ones
    become per-sample curves.

    Args:
        audio: float32 ``[channels, samples]``, channels 1 or 2.
        measure: also measure short-term RMS around the compressor (for reports).
    """
    p, auto = track.params, track.automation
    n = audio.shape[1]
    label = f"track '{track.name}'"
    trim = _param_signal(p, auto, "trim.gain_db", n, sample_rate)
    sign = -1.0 if p["polarity"]["invert"] >= 0.5 else 1.0
    if np.ndim(trim) == 0 and trim == 0.0 and sign == 1.0:
        x = np.ascontiguousarray(audio, dtype=np.float32)
    else:
        x = audio * (sign * db_to_gain(trim)).astype(np.float32)
    comp_params = p["compressor"]
    if measure:  # the report needs the level between EQ and compressor
        x = backend.process("eq", x, p["eq"], _split_automation(auto, "eq"), label=label)
        pre = short_term_rms_db(x, sample_rate)
        x = backend.process("compressor", x, comp_params, _split_automation(auto, "compressor"), label=label)
    else:
        pre = np.zeros(0)
        x = backend.process_chain([("eq", p["eq"], _split_automation(auto, "eq")),
                                   ("compressor", comp_params, _split_automation(auto, "compressor"))], x, label=label)
    if measure:
        makeup = comp_params["makeup_db"] if "compressor.makeup_db" not in auto else 0.0
        post = short_term_rms_db(x, sample_rate) - makeup
    else:
        post = np.zeros(0)
    fader = db_to_gain(_param_signal(p, auto, "fader.fader_db", n, sample_rate))
    mute = _param_signal(p, auto, "fader.mute", n, sample_rate)
    fader = fader * (1.0 - np.round(np.asarray(mute, dtype=np.float64)))
    left, right = pan_gains(_param_signal(p, auto, "pan.pan", n, sample_rate), x.shape[0])
    src_l, src_r = (x[0], x[0]) if x.shape[0] == 1 else (x[0], x[1])
    gain_l, gain_r = fader * left, fader * right
    if np.ndim(gain_l) == 0:
        out = np.empty((2, n), dtype=np.float32)
        np.multiply(src_l, np.float32(gain_l), out=out[0])
        np.multiply(src_r, np.float32(gain_r), out=out[1])
    else:
        out = np.stack([src_l * gain_l.astype(np.float32), src_r * gain_r.astype(np.float32)])
    send_db = _param_signal(p, auto, "send.send_db", n, sample_rate)
    if np.ndim(send_db) == 0:
        send = None if send_db <= SEND_OFF_DB else out * np.float32(db_to_gain(send_db))
    else:
        send_gain = np.where(np.asarray(send_db) <= SEND_OFF_DB, 0.0, db_to_gain(send_db))
        send = out * send_gain.astype(np.float32) if np.any(send_gain > 0) else None
    return TrackRender(track.name, out, pre, post), send


def load_session_audio(session: Session) -> dict[str, np.ndarray]:
    """Read every track's source at the session's sample rate, padded to the longest.

    Raises:
        AudioInputError: a missing or unreadable source, naming the track.
    """
    out = {}
    for t in session.tracks:
        path = session.source_path(t)
        if not path.exists():
            raise AudioInputError(f"track '{t.name}': source file {path} not found; fix 'source' in the session")
        audio, rate = read_audio(path)
        if rate != session.sample_rate:
            audio = resample(audio, rate, session.sample_rate)
        out[t.name] = audio
    n = max(a.shape[1] for a in out.values())
    return {k: (np.pad(a, ((0, 0), (0, n - a.shape[1]))) if a.shape[1] < n else a) for k, a in out.items()}


def render_console(
    session: Session,
    backend: Backend | str = "builtin",
    audio: Mapping[str, np.ndarray] | None = None,
    progress: Callable[[str], None] | None = None,
    measure: bool = False,
) -> ConsoleRender:
    """Render all tracks and the reverb bus of ``session`` into the stereo mix.

    Args:
        session: a validated session.
        backend: a :class:`Backend` or its name (``builtin``, ``vst``).
        audio: optional ``{track name: [channels, samples]}``; read from the
            sources when omitted.
        progress: optional callback called with each track's name.
        measure: keep per-track short-term RMS around the compressor (reports).

    Returns:
        :class:`ConsoleRender` with ``mix`` float32 ``[2, samples]``.
    """
    sr = session.sample_rate
    be = get_backend(backend, sr) if isinstance(backend, str) else backend
    audio = dict(audio) if audio is not None else load_session_audio(session)
    n = max(a.shape[1] for a in audio.values())
    mix = np.zeros((2, n), dtype=np.float32)
    bus = np.zeros((2, n), dtype=np.float32)
    renders = []
    any_send = False
    for t in session.tracks:
        if progress:
            progress(t.name)
        a = audio[t.name]
        if a.shape[1] < n:
            a = np.pad(a, ((0, 0), (0, n - a.shape[1])))
        tr, send = render_track(t, a, be, sr, measure=measure)
        mix += tr.output
        if send is not None:
            bus += send
            any_send = True
        if not measure:
            tr.output = None  # do not hold N full-length tracks in memory
        renders.append(tr)
    if any_send:
        rv = session.master.params["reverb"]
        ret = be.process("reverb", bus, rv, _split_automation(session.master.automation, "reverb"), label="reverb bus")
    else:
        ret = np.zeros_like(bus)
    mix += ret
    return ConsoleRender(mix, ret, renders, sr, list(be.notices))
