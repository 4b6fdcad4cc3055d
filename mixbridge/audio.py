"""Audio I/O: reading stems with clear errors, conforming them, atomic WAV writes.

Audio in mixbridge is float32 ``[channels, samples]`` with an explicit
``sample_rate`` in Hz (STYLE.md point 1). Files are read with soundfile.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .errors import AudioInputError

AUDIO_SUFFIXES = (".wav", ".flac", ".aif", ".aiff", ".ogg", ".opus", ".mp3")
#: A stem whose peak is below this is silent (excluded from loudness decisions).
SILENCE_PEAK_DB = -90.0
#: Sources are mono or stereo: every command refuses more channels (README "The main job").
MAX_SOURCE_CHANNELS = 2


def check_channels(channels: int, where: str | Path) -> None:
    """Refuse a source with more than :data:`MAX_SOURCE_CHANNELS` channels (the one rule of every command).

    A multichannel file (5.1, an 8-channel recorder take) has no one meaning as a stem: which
    channels are left and right, which are a centre or an LFE, is not in the file. mixbridge
    never keeps two of them silently.

    Raises:
        AudioInputError: naming the file, its channel count, the limit and the fix.
    """
    if channels > MAX_SOURCE_CHANNELS:
        raise AudioInputError(
            f"{where}: {channels} channels; sources may have at most {MAX_SOURCE_CHANNELS} (mono or stereo); "
            "split it into mono or stereo files, e.g. `sox in.wav out_12.wav remix 1 2`"
        )


def read_audio(path: str | Path, *, allow_overshoot: bool = True) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 ``[channels, samples]`` and its sample rate in Hz.

    Lossy decoders (Vorbis, Opus, MP3) can return samples past full scale; they
    are kept as they are (``allow_overshoot``): mixbridge never clips input.

    Raises:
        AudioInputError: the file is missing, corrupt, unsupported, empty, has more than
            :data:`MAX_SOURCE_CHANNELS` channels, or holds NaN/inf samples; the message names the file.
    """
    import soundfile as sf

    path = Path(path)
    try:
        data, sample_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises LibsndfileError/RuntimeError/TypeError
        raise AudioInputError(
            f"{path}: cannot read audio ({e}); give a WAV/FLAC/OGG file that soundfile can decode"
        ) from None
    if data.shape[0] == 0:
        raise AudioInputError(f"{path}: the file holds no samples")
    check_channels(data.shape[1], path)
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise AudioInputError(f"{path}: {bad} NaN/inf samples; repair or re-export the file")
    if not allow_overshoot and np.abs(data).max() > 1.0:
        raise AudioInputError(f"{path}: samples exceed full scale (peak {np.abs(data).max():.3f})")
    return np.ascontiguousarray(data.T), int(sample_rate)


def write_audio(path: str | Path, audio: np.ndarray, sample_rate: int, subtype: str = "FLOAT") -> Path:
    """Write float ``[channels, samples]`` audio as WAV, atomically (temp file + rename) and reproducibly.

    The same samples always give the same bytes. ``FLOAT`` files (32-bit IEEE float,
    little-endian RIFF) are written by :func:`scipy.io.wavfile.write`: ``fmt `` (tag 3,
    WAVE_FORMAT_IEEE_FLOAT, with ``cbSize`` 0) + ``fact`` + ``data``, nothing else
    (Microsoft's RIFF/WAVE specification, 1991), which libsndfile reads back
    bit-exactly as ``FLOAT``. Not soundfile for them: libsndfile adds a ``PEAK`` chunk
    holding the write time, so identical audio gave different files and checksums
    (switching it off leaves a ``PAD`` chunk). Integer subtypes (``PCM_24``,
    ``PCM_16``) go through soundfile, which writes no time stamp for them.
    ``sample_rate`` is in Hz.

    Raises:
        AudioInputError: the array is not ``[channels, samples]`` or holds NaN/inf samples.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 2 or audio.shape[0] < 1:
        raise AudioInputError(f"{path}: audio must be [channels, samples], got shape {audio.shape}")
    if not np.isfinite(audio).all():
        raise AudioInputError(f"{path}: refusing to write NaN/inf samples")
    with atomic_path(path) as tmp:
        if subtype == "FLOAT":
            from scipy.io import wavfile

            # "<f4": little-endian samples, so scipy writes RIFF (not RIFX) on every host
            wavfile.write(tmp, int(sample_rate), np.ascontiguousarray(audio.T).astype("<f4"))
        else:
            import soundfile as sf

            sf.write(str(tmp), audio.T, int(sample_rate), subtype=subtype, format="WAV")
    return Path(path)


def peak_db(audio: np.ndarray) -> float:
    """Sample peak in dBFS of ``[channels, samples]`` audio (-inf for digital silence)."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return 20.0 * np.log10(peak) if peak > 0 else float("-inf")


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Band-limited polyphase resampling (scipy ``resample_poly``) of ``[channels, samples]``."""
    if from_rate == to_rate:
        return audio
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(int(from_rate), int(to_rate))
    return resample_poly(audio, to_rate // g, from_rate // g, axis=-1).astype(np.float32)


@dataclass
class Stem:
    """One input track: ``audio`` float32 ``[channels, samples]`` at the set's sample rate."""

    name: str
    path: Path
    audio: np.ndarray
    role: str | None = None

    @property
    def silent(self) -> bool:
        """True when the sample peak is below :data:`SILENCE_PEAK_DB` (-90 dBFS)."""
        return peak_db(self.audio) < SILENCE_PEAK_DB


@dataclass
class StemSet:
    """Stems of one song, all at ``sample_rate`` Hz and of the same length; ``notices`` says what
    :func:`load_stems` changed to get there (resampled, padded, silent)."""

    stems: list[Stem]
    sample_rate: int
    notices: list[str] = field(default_factory=list)

    @property
    def n_samples(self) -> int:
        """Samples per stem (every stem has the same length)."""
        return self.stems[0].audio.shape[1]


def load_stems(folder: str | Path, sample_rate: int | None = None, roles: dict[str, str] | None = None) -> StemSet:
    """Load every audio file of ``folder`` as a stem set of equal length and rate.

    Stems at another sample rate are resampled (to ``sample_rate``, or the most
    common rate) and shorter stems are zero-padded to the longest, each with a
    notice. Mono and stereo stems may be mixed: each keeps its channel count
    (mono tracks are panned by the console). Silent stems are kept and flagged.

    Raises:
        AudioInputError: the folder is missing or holds no audio file, a file is
            corrupt or holds NaN/inf, or a file has more than 2 channels.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise AudioInputError(f"{folder}: not a folder; give a folder of stem audio files")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise AudioInputError(
            f"{folder}: no audio files ({', '.join(AUDIO_SUFFIXES)}); put one file per stem in the folder"
        )
    loaded = []
    for f in files:
        audio, rate = read_audio(f)
        if audio.shape[0] > 2:
            raise AudioInputError(f"{f}: {audio.shape[0]} channels; mixbridge takes mono or stereo stems")
        loaded.append((f, audio, rate))
    notices: list[str] = []
    if sample_rate is None:
        rates = [r for _, _, r in loaded]
        sample_rate = max(set(rates), key=lambda r: (rates.count(r), r))
    stems = []
    for f, audio, rate in loaded:
        if rate != sample_rate:
            notices.append(f"{f.name}: resampled from {rate} Hz to {sample_rate} Hz")
            audio = resample(audio, rate, sample_rate)
        stems.append(Stem(f.stem, f, audio, (roles or {}).get(f.stem)))
    n = max(s.audio.shape[1] for s in stems)
    for s in stems:
        if s.audio.shape[1] < n:
            notices.append(f"{s.path.name}: {s.audio.shape[1]} samples, zero-padded to {n} to match the longest stem")
            s.audio = np.pad(s.audio, ((0, 0), (0, n - s.audio.shape[1])))
    chans = {s.audio.shape[0] for s in stems}
    if len(chans) > 1:
        notices.append("mono and stereo stems mixed: mono stems are panned, stereo stems balanced")
    for s in stems:
        if s.silent:
            notices.append(f"{s.path.name}: silent (peak below {SILENCE_PEAK_DB:g} dBFS); "
                           "excluded from loudness decisions")
    return StemSet(stems, int(sample_rate), notices)
