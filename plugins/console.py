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
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np

from mixbridge.audio import AudioReader, WavArray, read_audio, resample
from mixbridge.errors import AudioInputError
from mixbridge.loudness import LoudnessMeter, db_to_gain
from mixbridge.session import Automation, Session, Track

from .backend import Backend, Chain, automation_curve, get_backend

#: Below this send level the send is off (the schema's -80 dB floor).
SEND_OFF_DB = -80.0
#: Frames per block of :func:`render_console` when every stage streams (2^16: 1.5 s at 44.1 kHz, a
#: multiple of every power-of-two host block size up to it, so block-rate automation lands on the same
#: samples as in a whole-track render). A track's working set is a few times this, whatever its length.
RENDER_BLOCK = 1 << 16


def pan_gains(pan, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Left/right gains for ``pan`` in -1..1 (scalar or per-sample array); see the module docstring.

    Mono input: ``(cos theta, sin theta)``; stereo input: ``sqrt(2)`` times that
    (unity at the centre), theta = (pan + 1) pi / 4.
    """
    theta = (np.asarray(pan, dtype=np.float64) + 1.0) * (math.pi / 4.0)
    scale = 1.0 if channels == 1 else math.sqrt(2.0)
    return scale * np.cos(theta), scale * np.sin(theta)


def _param_signal(track_params: Mapping[str, Mapping[str, float]], automation: Mapping[str, Automation],
                  path: str, n: int, sample_rate: int, start: int = 0):
    """A parameter as a scalar, or, when automated, as its per-sample curve on samples ``start .. start + n``."""
    if path in automation:
        if start == 0:
            return automation_curve(automation[path], n, sample_rate)
        a = automation[path]
        t = np.arange(start, start + n, dtype=np.float64) / float(sample_rate)
        return np.interp(t, np.asarray(a.times_s, dtype=np.float64), np.asarray(a.values, dtype=np.float64))
    proc, _, name = path.partition(".")
    return track_params[proc][name]


def _split_automation(automation: Mapping[str, Automation], processor: str) -> dict[str, Automation]:
    prefix = processor + "."
    return {k[len(prefix):]: a for k, a in automation.items() if k.startswith(prefix)}


@dataclass
class TrackRender:
    """What the console measured on one track (for the report)."""

    name: str
    output: np.ndarray | None  # [2, samples] post-pan, pre-sum (render_track only; render_console keeps none)
    pre_comp_rms_db: np.ndarray  # [frames] short-term RMS before the compressor
    post_comp_rms_db: np.ndarray  # [frames] after the compressor (before makeup)
    #: Integrated loudness of the post-fader, post-pan track, LUFS (measured when measuring; else NaN).
    lufs: float = float("nan")


@dataclass
class ConsoleRender:
    """The console's outputs: ``mix`` float32 ``[2, samples]`` (tracks + reverb return).

    ``reverb_return`` float32 ``[2, samples]`` is None when :func:`render_console` was not asked to
    keep it (``keep_return``; by default not when it read the tracks from their files).
    """

    mix: np.ndarray  # or a WavArray on disk (render_console's mix_out), read by slices like the array
    reverb_return: np.ndarray | None
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


def trim_stage(track: Track, audio: np.ndarray, sample_rate: int, start: int = 0) -> np.ndarray:
    """The strip's first stage: trim gain and polarity of ``audio [channels, n]``, samples ``start ..`` of
    ``track`` (its automation read at those samples, ``sample_rate`` Hz): float32 ``[channels, n]``.
    The console's render and the direct mixers' trainer share it."""
    p, auto = track.params, track.automation
    trim = _param_signal(p, auto, "trim.gain_db", audio.shape[1], sample_rate, start)
    sign = -1.0 if p["polarity"]["invert"] >= 0.5 else 1.0
    if np.ndim(trim) == 0 and trim == 0.0 and sign == 1.0:
        return np.ascontiguousarray(audio, dtype=np.float32)
    return audio * (sign * db_to_gain(trim)).astype(np.float32)


def fader_stage(track: Track, x: np.ndarray, sample_rate: int, start: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """The strip's last stage: fader, mute, pan (the schema's pan law, :func:`pan_gains`) and post-fader send of
    ``x [channels, n]``, samples ``start ..`` of ``track``: ``(out [2, n], send [2, n] or None)`` float32
    (``None`` without a send)."""
    p, auto = track.params, track.automation
    n = x.shape[1]
    fader = db_to_gain(_param_signal(p, auto, "fader.fader_db", n, sample_rate, start))
    mute = _param_signal(p, auto, "fader.mute", n, sample_rate, start)
    fader = fader * (1.0 - np.round(np.asarray(mute, dtype=np.float64)))
    left, right = pan_gains(_param_signal(p, auto, "pan.pan", n, sample_rate, start), x.shape[0])
    src_l, src_r = (x[0], x[0]) if x.shape[0] == 1 else (x[0], x[1])
    gain_l, gain_r = fader * left, fader * right
    if np.ndim(gain_l) == 0:
        out = np.empty((2, n), dtype=np.float32)
        np.multiply(src_l, np.float32(gain_l), out=out[0])
        np.multiply(src_r, np.float32(gain_r), out=out[1])
    else:
        out = np.stack([src_l * gain_l.astype(np.float32), src_r * gain_r.astype(np.float32)])
    send_db = _param_signal(p, auto, "send.send_db", n, sample_rate, start)
    if np.ndim(send_db) == 0:
        send = None if send_db <= SEND_OFF_DB else out * np.float32(db_to_gain(send_db))
    else:
        send_gain = np.where(np.asarray(send_db) <= SEND_OFF_DB, 0.0, db_to_gain(send_db))
        send = out * send_gain.astype(np.float32) if np.any(send_gain > 0) else None
    return out, send


def _makeup_db(track: Track) -> float:
    """The compressor makeup the post-compressor RMS is measured without (0 when it is automated)."""
    return track.params["compressor"]["makeup_db"] if "compressor.makeup_db" not in track.automation else 0.0


def render_track(track: Track, audio: np.ndarray, backend: Backend, sample_rate: int,
                 measure: bool = True) -> tuple[TrackRender, np.ndarray | None]:
    """Render one channel strip whole; returns its measurements and its post-fader, post-pan send ``[2, samples]``.

    The whole-signal form of what :func:`render_console` does block by block (its oracle in the
    tests). Static gains are folded into one scalar per output channel; automated ones become
    per-sample curves.

    Args:
        audio: float32 ``[channels, samples]``, channels 1 or 2.
        measure: also measure short-term RMS around the compressor (for reports).
    """
    p, auto = track.params, track.automation
    label = f"track '{track.name}'"
    x = trim_stage(track, audio, sample_rate)
    comp_params = p["compressor"]
    if measure:  # the report needs the level between EQ and compressor
        x = backend.process("eq", x, p["eq"], _split_automation(auto, "eq"), label=label)
        pre = short_term_rms_db(x, sample_rate)
        x = backend.process("compressor", x, comp_params, _split_automation(auto, "compressor"), label=label)
        post = short_term_rms_db(x, sample_rate) - _makeup_db(track)
    else:
        pre = post = np.zeros(0)
        x = backend.process_chain([("eq", p["eq"], _split_automation(auto, "eq")),
                                   ("compressor", comp_params, _split_automation(auto, "compressor"))], x, label=label)
    out, send = fader_stage(track, x, sample_rate)
    return TrackRender(track.name, out, pre, post), send


class _RmsFrames:
    """:func:`short_term_rms_db` of a signal fed block by block (the same frames, the same values)."""

    def __init__(self, sample_rate: int, window_s: float = 0.05) -> None:
        self.hop = max(1, int(window_s * sample_rate))
        self._rest: np.ndarray | None = None
        self._frames: list[np.ndarray] = []

    def update(self, x: np.ndarray) -> None:
        if self._rest is not None and self._rest.shape[1]:
            x = np.concatenate([self._rest, x], axis=1)
        n = x.shape[1] // self.hop
        if n:
            power = (x[:, : n * self.hop].astype(np.float64) ** 2).mean(axis=0).reshape(n, self.hop).mean(axis=1)
            self._frames.append(10.0 * np.log10(np.maximum(power, 1e-12)))
        self._rest = x[:, n * self.hop:].copy()

    def result(self) -> np.ndarray:
        return np.concatenate(self._frames) if self._frames else np.zeros(0)


class _Source:
    """One track's source at the session's rate, read block by block and zero-padded past its end.

    A file at the session's rate is read from disk per block (:class:`~mixbridge.audio.AudioReader`,
    checked against its header); one at another rate is read whole and resampled (band-limited
    resampling needs the whole signal), and so is an array given in memory.
    """

    def __init__(self, label: str, *, audio: np.ndarray | None = None, path=None, sample_rate: int = 0) -> None:
        self.label, self.path, self._audio = label, path, audio
        self._reader: AudioReader | None = None
        self.sample_rate = int(sample_rate)
        if audio is not None:
            self.frames, self.channels = int(audio.shape[1]), int(audio.shape[0])
            return
        if not path.exists():
            raise AudioInputError(f"{label}: source file {path} not found; fix 'source' in the session")
        with AudioReader(path) as r:
            frames, rate, self.channels = r.frames, r.sample_rate, r.channels
        if frames == 0:
            raise AudioInputError(f"{path}: the file holds no samples")
        self._rate = rate
        # resample_poly's output length: ceil(frames * up / down)
        self.frames = frames if rate == self.sample_rate else -(-frames * self.sample_rate // rate)

    def open(self, spill_dir: Path | None = None) -> None:
        """Get ready to read: open the file, or read and resample it whole when its rate differs
        (``spill_dir``: then write the resampled signal to a float32 WAV there and read that block by
        block, so that one resampled track at a time is in memory, not every one)."""
        if self._audio is not None or self._reader is not None:
            return
        if self._rate == self.sample_rate:
            self._reader = AudioReader(self.path)
            return
        audio, rate = read_audio(self.path)
        audio = resample(audio, rate, self.sample_rate)
        if spill_dir is None or not WavArray.fits(audio.shape[0], audio.shape[1], self.sample_rate):
            self._audio = audio
            return
        spilled = spill_dir / f"{len(list(spill_dir.iterdir()))}.wav"
        tmp = WavArray(spilled, audio.shape[0], audio.shape[1], self.sample_rate)
        for a in range(0, audio.shape[1], RENDER_BLOCK):
            tmp[:, a:a + RENDER_BLOCK] = audio[:, a:a + RENDER_BLOCK]
        tmp.close()
        del audio
        self._reader = AudioReader(spilled)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``start .. stop`` float32 ``[channels, stop - start]``, zeros past the source's end.

        Raises:
            AudioInputError: a decode error, a truncated file, or NaN/inf samples (naming the file).
        """
        if self._audio is not None:
            x = self._audio[:, start:stop]
        else:
            assert self._reader is not None
            x = self._reader.read(start, stop - start)
            if not np.isfinite(x).all():
                bad = int((~np.isfinite(x)).sum())
                raise AudioInputError(f"{self.path}: {bad} NaN/inf samples in frames {start}..{stop}; "
                                      "repair or re-export the file")
        if x.shape[1] < stop - start:
            x = np.pad(x, ((0, 0), (0, stop - start - x.shape[1])))
        return x

    def close(self) -> None:
        """Close the file and drop a resampled copy."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self.path is not None:
            self._audio = None


def _sources(session: Session, audio: Mapping[str, np.ndarray] | None) -> dict[str, _Source]:
    """Every track's :class:`_Source` (headers only: nothing is read yet)."""
    out = {}
    for t in session.tracks:
        label = f"track '{t.name}'"
        if audio is not None:
            out[t.name] = _Source(label, audio=audio[t.name], sample_rate=session.sample_rate)
        else:
            out[t.name] = _Source(label, path=session.source_path(t), sample_rate=session.sample_rate)
    return out


def load_session_audio(session: Session) -> dict[str, np.ndarray]:
    """Read every track's source at the session's sample rate, padded to the longest (all in memory:
    :func:`render_console` reads them block by block instead).

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


def _render_track_blocks(track: Track, src: _Source, n: int, be: Backend, sr: int, measure: bool,
                         mix: np.ndarray, bus: list, block: int) -> TrackRender:
    """Render ``track`` block by block into ``mix`` (and its send into ``bus[0]``, made on first use)."""
    p, auto = track.params, track.automation
    label = f"track '{track.name}'"
    eq_stage = ("eq", p["eq"], _split_automation(auto, "eq"))
    comp_stage = ("compressor", p["compressor"], _split_automation(auto, "compressor"))
    chains: list[Chain] = [be.open_chain([eq_stage], label=label), be.open_chain([comp_stage], label=label)] \
        if measure else [be.open_chain([eq_stage, comp_stage], label=label)]
    if not all(c.streaming for c in chains):
        block = n  # a backend that renders a processor in one call only: the whole track at once
    pre, post = _RmsFrames(sr), _RmsFrames(sr)
    meter = LoudnessMeter(sr, 2) if measure else None
    src.open()
    try:
        for start in range(0, n, block):
            stop = min(start + block, n)
            x = trim_stage(track, src.read(start, stop), sr, start)
            if measure:
                x = chains[0].process(x, start)
                pre.update(x)
                x = chains[1].process(x, start)
                post.update(x)
            else:
                x = chains[0].process(x, start)
            out, send = fader_stage(track, x, sr, start)
            mix[:, start:stop] += out
            if send is not None:
                if bus[0] is None:
                    bus[0] = np.zeros_like(mix)
                bus[0][:, start:stop] += send
            if meter is not None:
                meter.update(out)
    finally:
        src.close()
    if not measure:
        return TrackRender(track.name, None, np.zeros(0), np.zeros(0))
    return TrackRender(track.name, None, pre.result(), post.result() - _makeup_db(track),
                       meter.integrated_lufs() if meter is not None else float("nan"))


class _Strip:
    """One track's open chains, source and meters while :func:`render_console` renders block by block."""

    def __init__(self, track: Track, src: _Source, be: Backend, sr: int, measure: bool) -> None:
        p, auto = track.params, track.automation
        label = f"track '{track.name}'"
        eq_stage = ("eq", p["eq"], _split_automation(auto, "eq"))
        comp_stage = ("compressor", p["compressor"], _split_automation(auto, "compressor"))
        self.track, self.src, self.sr, self.measure = track, src, sr, measure
        self.chains: list[Chain] = [be.open_chain([eq_stage], label=label),
                                    be.open_chain([comp_stage], label=label)] \
            if measure else [be.open_chain([eq_stage, comp_stage], label=label)]
        self.streaming = all(c.streaming for c in self.chains)
        self.pre, self.post = _RmsFrames(sr), _RmsFrames(sr)
        self.meter = LoudnessMeter(sr, 2) if measure else None

    def sends(self) -> bool:
        """Whether the track may send to the reverb bus anywhere (a superset: an automated send counts
        when any of its points is above the floor)."""
        p, auto = self.track.params, self.track.automation
        if "send.send_db" in auto:
            return any(float(v) > SEND_OFF_DB for v in auto["send.send_db"].values)
        return float(p["send"]["send_db"]) > SEND_OFF_DB

    def render(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Samples ``start .. stop`` through the strip: ``(out [2, n], send [2, n] or None)`` float32."""
        x = trim_stage(self.track, self.src.read(start, stop), self.sr, start)
        if self.measure:
            x = self.chains[0].process(x, start)
            self.pre.update(x)
            x = self.chains[1].process(x, start)
            self.post.update(x)
        else:
            x = self.chains[0].process(x, start)
        out, send = fader_stage(self.track, x, self.sr, start)
        if self.meter is not None:
            self.meter.update(out)
        return out, send

    def result(self) -> TrackRender:
        if not self.measure:
            return TrackRender(self.track.name, None, np.zeros(0), np.zeros(0))
        return TrackRender(self.track.name, None, self.pre.result(), self.post.result() - _makeup_db(self.track),
                           self.meter.integrated_lufs() if self.meter is not None else float("nan"))


def _as_mix(mix: np.ndarray | WavArray) -> np.ndarray:
    """``mix`` typed as the array it stands for: a :class:`~mixbridge.audio.WavArray` is read like one by
    every reader of a mix (``mix.shape``, ``mix[:, a:b]``: the master bus, the meters, the writer)."""
    return cast(np.ndarray, mix)


def _mix_buffer(mix_out, n: int, sr: int) -> np.ndarray | WavArray:
    """The mix's buffer: float32 zeros ``[2, n]`` in memory, or a :class:`~mixbridge.audio.WavArray` at
    ``mix_out`` (in memory when the mix does not fit one RIFF WAV)."""
    if mix_out is not None and WavArray.fits(2, n, sr):
        return WavArray(mix_out, 2, n, sr)
    return np.zeros((2, n), dtype=np.float32)


def render_console(
    session: Session,
    backend: Backend | str = "builtin",
    audio: Mapping[str, np.ndarray] | None = None,
    progress: Callable[[str], None] | None = None,
    measure: bool = False,
    keep_return: bool | None = None,
    block_size: int = RENDER_BLOCK,
    mix_out: str | os.PathLike | None = None,
) -> ConsoleRender:
    """Render all tracks and the reverb bus of ``session`` into the stereo mix, block by block.

    Block ``k`` of the mix is made whole before block ``k + 1``: every track's next ``block_size``
    frames are read from its source file, rendered through its strip with every processor's state
    carried from block to block (:meth:`~mixbridge.plugins.backend.Backend.open_chain`) and summed
    (in track order, the same float32 sums as one track after the other), the tracks' reverb sends
    are summed into the bus block, the reverb renders that block and its return joins the mix
    block, which is written to the mix. Memory: a few blocks per track and the mix, whatever the
    length when the mix goes to a file (``mix_out``). A backend that can only render a processor in
    one call (``vst``: DawDreamer re-prepares its plugins every render) gets each track whole, one
    track at a time, into a mix and a send bus held in memory.

    Args:
        session: a validated session.
        backend: a :class:`Backend` or its name (``builtin``, ``vst``).
        audio: optional ``{track name: [channels, samples]}``; read from the
            sources when omitted.
        progress: optional callback called with each track's name (block by block: after the
            last block).
        measure: measure each track for the report: short-term RMS around the compressor and the
            post-fader integrated loudness (:attr:`TrackRender.lufs`).
        keep_return: also keep the reverb return in :attr:`ConsoleRender.reverb_return` (one more
            mix-sized array); None: keep it when ``audio`` is given (the caller holds every track
            in memory already), not when the tracks are read from their files.
        block_size: frames per block (tests render with odd sizes; the result is the same).
        mix_out: write the mix into this float32 WAV (created; the bytes
            :func:`~mixbridge.audio.write_audio` writes) and return it as a
            :class:`~mixbridge.audio.WavArray` in :attr:`ConsoleRender.mix` (the caller closes it);
            None: the mix is an array in memory.

    Returns:
        :class:`ConsoleRender` with ``mix`` float32 ``[2, samples]`` (an array or a ``WavArray``).

    Raises:
        AudioInputError: a missing, unreadable, truncated or non-finite source, naming it.
    """
    sr = session.sample_rate
    be = get_backend(backend, sr) if isinstance(backend, str) else backend
    if keep_return is None:
        keep_return = audio is not None
    sources = _sources(session, audio)
    n = max(s.frames for s in sources.values())
    block = int(block_size)
    strips = [_Strip(t, sources[t.name], be, sr, measure) for t in session.tracks]
    sending = any(s.sends() for s in strips)
    reverb = None
    if sending:
        rv = session.master.params["reverb"]
        reverb = be.open_chain([("reverb", rv, _split_automation(session.master.automation, "reverb"))],
                               label="reverb bus")
    if not all(s.streaming for s in strips) or (reverb is not None and not reverb.streaming):
        return _render_whole_tracks(session, be, sources, n, progress, measure, keep_return, block, mix_out)
    mix = _mix_buffer(mix_out, n, sr)
    ret = np.zeros((2, n), dtype=np.float32) if keep_return else None
    with tempfile.TemporaryDirectory(prefix="mixbridge-console-") as spill:
        try:
            for s in strips:
                s.src.open(spill_dir=Path(spill) if mix_out is not None else None)
            for start in range(0, n, block):
                stop = min(start + block, n)
                mixed = np.zeros((2, stop - start), dtype=np.float32)
                bus = np.zeros_like(mixed) if reverb is not None else None
                for s in strips:
                    out, send = s.render(start, stop)
                    mixed += out
                    if send is not None:
                        assert bus is not None, "a send the pre-scan missed"
                        bus += send
                if reverb is not None and bus is not None:
                    wet = reverb.process(bus, start)
                    mixed += wet
                    if ret is not None:
                        ret[:, start:stop] = wet
                mix[:, start:stop] = mixed
        except BaseException:
            if isinstance(mix, WavArray):
                mix.close()
            raise
        finally:
            for s in strips:
                s.src.close()
    if progress:
        for t in session.tracks:
            progress(t.name)
    return ConsoleRender(_as_mix(mix), ret, [s.result() for s in strips], sr, list(be.notices))


def _render_whole_tracks(session: Session, be: Backend, sources: Mapping[str, _Source], n: int,
                         progress: Callable[[str], None] | None, measure: bool, keep_return: bool, block: int,
                         mix_out) -> ConsoleRender:
    """:func:`render_console` for a backend that renders a processor in one call only: one track after
    the other, each whole, into a mix and a send bus held in memory (``mix_out``: then copied there)."""
    sr = session.sample_rate
    mix = np.zeros((2, n), dtype=np.float32)
    bus: list[np.ndarray | None] = [None]
    renders = []
    for t in session.tracks:
        if progress:
            progress(t.name)
        renders.append(_render_track_blocks(t, sources[t.name], n, be, sr, measure, mix, bus, block))
    ret = None
    if bus[0] is not None:
        send_bus = bus[0]
        rv = session.master.params["reverb"]
        chain = be.open_chain([("reverb", rv, _split_automation(session.master.automation, "reverb"))],
                              label="reverb bus")
        step = block if chain.streaming else n
        ret = np.empty_like(mix) if keep_return else None
        for start in range(0, n, step):
            stop = min(start + step, n)
            wet = chain.process(send_bus[:, start:stop], start)
            mix[:, start:stop] += wet
            if ret is not None:
                ret[:, start:stop] = wet
        del send_bus
        bus[0] = None
    elif keep_return:
        ret = np.zeros_like(mix)
    if mix_out is not None and WavArray.fits(2, n, sr):
        on_disk = WavArray(mix_out, 2, n, sr)
        for a in range(0, n, block):
            on_disk[:, a:a + block] = mix[:, a:a + block]
        del mix
        return ConsoleRender(_as_mix(on_disk), ret, renders, sr, list(be.notices))
    return ConsoleRender(mix, ret, renders, sr, list(be.notices))
