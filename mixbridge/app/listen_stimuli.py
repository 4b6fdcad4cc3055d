"""The stimuli of a listening page: the excerpt, its fades, its loudness, the MUSHRA anchor.

* :func:`loudest_start_s`: where the excerpt starts (the loudest window of the reference, or of the first
  condition), found block by block; :func:`read_excerpts` reads only that excerpt of every condition's file,
  at one sample rate, stereo, of one length.
* :func:`fade`: 10 ms raised-cosine fades at both ends (the page loops a trial: the loop point must not click).
* :func:`normalise`: to a loudness in LUFS (ITU-R BS.1770-4, :func:`mixbridge.loudness.integrated_lufs`),
  refusing a silent excerpt or one that would pass full scale (nothing is clipped or limited).
* :func:`lowpass_anchor`: the 3.5 kHz low-pass anchor of ITU-R BS.1534-3.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mixbridge.errors import MixbridgeError

#: ITU-R BS.1534-3 section 5.1: the mandatory low-pass anchor's cut-off (Hz).
ANCHOR_CUTOFF_HZ = 3500.0
#: Order of the anchor's Butterworth low-pass; run forward and backward (sosfiltfilt: zero phase, so the
#: anchor stays time-aligned with the other stimuli; the effective order is twice this, -6 dB at the cut-off).
ANCHOR_ORDER = 8
#: Raised-cosine fade at both ends of an excerpt (s): the page loops a trial, so the loop point must not click.
FADE_S = 0.01
#: Grid on which the loudest excerpt is searched (s).
EXCERPT_HOP_S = 0.1


class ListenInputError(ValueError, MixbridgeError):
    """Stimulus folders, items or options that cannot make a listening page."""


def lowpass_anchor(audio: np.ndarray, sample_rate: int, cutoff_hz: float = ANCHOR_CUTOFF_HZ) -> np.ndarray:
    """The MUSHRA low-pass anchor of ``audio [channels, samples]`` (ITU-R BS.1534-3 section 5.1): a
    zero-phase Butterworth low-pass at ``cutoff_hz`` (order :data:`ANCHOR_ORDER` each way; -6 dB at the cut-off,
    1 kHz passes within 0.01 dB, 7 kHz is down by more than 90 dB). float32 out."""
    from scipy.signal import butter, sosfiltfilt

    sos = butter(ANCHOR_ORDER, cutoff_hz, btype="low", fs=sample_rate, output="sos")
    return sosfiltfilt(sos, np.asarray(audio, np.float64), axis=-1).astype(np.float32)


def loudest_start_s(path: str | Path, excerpt_s: float) -> float:
    """Start (s) of the loudest ``excerpt_s`` window of the audio file ``path``: the largest mean square, on a
    :data:`EXCERPT_HOP_S` grid, read block by block (an hour-long mix is never held); 0 when the file is not
    longer than the window.

    Raises:
        AudioInputError: an unreadable or truncated file.
    """
    from mixbridge.audio import AudioReader

    with AudioReader(path) as reader:
        rate, frames = reader.sample_rate, reader.frames
        n = int(round(excerpt_s * rate))
        if frames <= n:
            return 0.0
        hop = max(1, int(EXCERPT_HOP_S * rate))
        hops = []
        for a in range(0, frames, 64 * hop):
            e = np.sum(reader.read(a, 64 * hop).astype(np.float64) ** 2, axis=0)
            hops.append(np.pad(e, (0, (-e.size) % hop)).reshape(-1, hop).sum(axis=1))
    c = np.concatenate([[0.0], np.cumsum(np.concatenate(hops))])
    j = np.arange((frames - n) // hop + 1)
    w = max(1, n // hop)
    return float(j[np.argmax(c[j + w] - c[j])] * hop / rate)


def fade(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    n = min(int(FADE_S * sample_rate), audio.shape[-1] // 2)
    if n < 1:
        return audio
    ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)).astype(np.float32)
    out = audio.copy()
    out[:, :n] *= ramp
    out[:, -n:] *= ramp[::-1]
    return out


def normalise(audio: np.ndarray, sample_rate: int, lufs: float, where: str) -> tuple[np.ndarray, float, float]:
    """``audio`` at ``lufs`` LUFS; also its loudness before and the gain in dB.

    Raises:
        ListenInputError: a silent excerpt, or one whose samples would pass full scale at ``lufs``.
    """
    from mixbridge.loudness import SILENT_LUFS, db_to_gain, integrated_lufs

    before = float(integrated_lufs(audio, sample_rate))
    if before <= SILENT_LUFS:
        raise ListenInputError(f"{where}: the excerpt is silent ({before:.1f} LUFS); give a stimulus with signal "
                               "or a longer --excerpt-s")
    gain_db = lufs - before
    out = (audio * float(db_to_gain(gain_db))).astype(np.float32)
    peak = float(np.max(np.abs(out)))
    if peak >= 1.0:
        peak_db = 20 * np.log10(peak)
        raise ListenInputError(f"{where}: at {lufs:g} LUFS its peak is {peak_db:+.2f} dBFS, past the full scale of a "
                               f"16-bit WAV; give a lower --lufs (e.g. {lufs - 3 - peak_db:.0f})")
    return out, before, gain_db


def read_excerpts(files: dict[str, Path], basis: str, item: str, excerpt_s: float, rate: int | None,
                   notices: list[str]) -> tuple[dict[str, np.ndarray], int, float]:
    """Every condition's excerpt of ``item`` (the loudest window of ``basis``'s file, :func:`loudest_start_s`),
    stereo float32 ``[2, n]`` at one rate (``rate``, or the files' most common rate), one length; also the rate
    and the start (s). Only the excerpt is read from each file."""
    from mixbridge.audio import AudioReader, read_audio, resample

    info = {}
    for cond, f in files.items():
        with AudioReader(f) as reader:
            info[cond] = (reader.frames, reader.sample_rate)
    if rate is None:
        rates = [sr for _, sr in info.values()]
        rate = max(set(rates), key=lambda r: (rates.count(r), r))
    seconds = {c: frames / sr for c, (frames, sr) in info.items()}
    shortest, longest = min(seconds.values()), max(seconds.values())
    if longest - shortest > 1.0 / rate:
        notices.append(f"{item}: the conditions differ in length ({shortest:.2f}..{longest:.2f} s); the excerpt "
                       "lies within the shortest")
    start_s = min(loudest_start_s(files[basis], excerpt_s), max(0.0, shortest - excerpt_s))
    n = int(round(min(excerpt_s, shortest - start_s) * rate))
    out = {}
    for cond, f in files.items():
        sr = info[cond][1]
        x, _ = read_audio(f, start=int(round(start_s * sr)), frames=int(np.ceil(n * sr / rate)) + 1)
        if sr != rate:
            notices.append(f"{item}/{cond}: resampled from {sr} Hz to {rate} Hz")
            x = resample(x, sr, rate)
        if x.shape[0] == 1:
            x = np.repeat(x, 2, axis=0)
        out[cond] = np.pad(x, ((0, 0), (0, max(0, n - x.shape[1]))))[:, :n]  # a frame short only by rounding
    return out, int(rate), start_s


__all__ = ["lowpass_anchor", "loudest_start_s", "read_excerpts", "fade", "normalise", "ListenInputError",
           "ANCHOR_CUTOFF_HZ", "FADE_S", "EXCERPT_HOP_S"]
