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


def header_frames(path: str | Path) -> int | None:
    """Frames the container's header declares, or None when the format has no such count.

    Read from the header bytes themselves, not from libsndfile, which shortens its count to
    what the file holds and so hides a file cut short (an interrupted copy or export):

    * WAV (``RIFF``/``RIFX``): the ``data`` chunk's byte size over the ``fmt `` chunk's block
      align (Microsoft's RIFF/WAVE specification, 1991); ``RF64``: the ``ds64`` chunk's data
      size (EBU Tech 3306). A size of 0 or 0xFFFFFFFF (a stream still being written) is unknown.
    * AIFF/AIFC: ``COMM``'s ``numSampleFrames`` (Apple's AIFF 1.3, 1989).
    * FLAC: ``STREAMINFO``'s total samples (36 bits; 0 is unknown) (RFC 9639, section 8.2).

    Lossy formats (Ogg, Opus, MP3) give None. Unreadable or malformed headers give None too:
    :func:`read_audio` then reports libsndfile's own error.
    """
    import struct

    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            if len(head) < 12:
                return None
            if head[:4] == b"fLaC":
                block = head[4:8]
                if block[0] & 0x7F != 0:  # STREAMINFO must be the first metadata block
                    return None
                info = head[8:12] + fh.read(30)
                if len(info) < 18:
                    return None
                total = int.from_bytes(info[13:18], "big") & ((1 << 36) - 1)
                return total or None
            riff, big = head[:4], head[:4] == b"RIFX"
            if riff in (b"RIFF", b"RIFX", b"RF64") and head[8:12] == b"WAVE":
                return _wav_frames(fh, ">" if big else "<", riff == b"RF64")
            if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
                while True:
                    ck = fh.read(8)
                    if len(ck) < 8:
                        return None
                    size = struct.unpack(">I", ck[4:])[0]
                    if ck[:4] == b"COMM":
                        body = fh.read(6)
                        return struct.unpack(">I", body[2:6])[0] if len(body) == 6 else None
                    fh.seek(size + (size & 1), 1)
    except OSError:
        return None
    return None


#: WAV format tags with one frame per block align: PCM, IEEE float, A-law, mu-law, extensible.
_WAV_LINEAR_TAGS = (0x0001, 0x0003, 0x0006, 0x0007, 0xFFFE)


def _wav_frames(fh, order: str, rf64: bool) -> int | None:
    """The WAV ``data`` chunk's frames, walking the chunks after the 12-byte RIFF header."""
    import struct

    block_align = data_bytes = None
    ds64_data = None
    while data_bytes is None:
        ck = fh.read(8)
        if len(ck) < 8:
            return None
        cid, size = ck[:4], struct.unpack(order + "I", ck[4:])[0]
        if cid == b"ds64":
            body = fh.read(size)
            if len(body) >= 16:
                ds64_data = struct.unpack("<Q", body[8:16])[0]
            if size & 1:
                fh.seek(1, 1)
            continue
        if cid == b"fmt ":
            body = fh.read(size)
            if len(body) < 14:
                return None
            if struct.unpack(order + "H", body[0:2])[0] not in _WAV_LINEAR_TAGS:
                return None  # ADPCM & co.: the block align is not one frame
            block_align = struct.unpack(order + "H", body[12:14])[0]
            if size & 1:
                fh.seek(1, 1)
            continue
        if cid == b"data":
            data_bytes = ds64_data if (rf64 and size == 0xFFFFFFFF) else size
            break
        fh.seek(size + (size & 1), 1)
    if not block_align or not data_bytes or data_bytes == 0xFFFFFFFF:
        return None
    return int(data_bytes) // int(block_align)


def truncated_error(path: str | Path, expected: int, got: int, sample_rate: int) -> AudioInputError:
    """The one error for a file that holds fewer frames than its header declares (never zero-padded)."""
    return AudioInputError(
        f"{path}: truncated: expected {expected} frames ({expected / sample_rate:.2f} s at {sample_rate} Hz, "
        f"from its header), got {got} ({got / sample_rate:.2f} s); the file was cut short (an interrupted "
        "copy, download or export): copy or export it again")


class AudioReader:
    """An open audio file whose reads are checked against its header (the one reader of mixbridge).

    Opening reads the header: libsndfile's frame count, rate and channels, and the frames the
    container itself declares (:func:`header_frames`); a file that holds fewer frames than it
    declares is refused at once. Every :meth:`read` then checks that it got the frames the
    file holds in that range. :func:`read_audio` reads a whole file (or a range) through it;
    the data generators keep one open per source file and read patches with a seek.

    Attributes:
        path: the file; frames: its length in frames; sample_rate: Hz; channels: 1 or 2.

    Raises:
        AudioInputError: the file is missing, unreadable or unsupported, has more than
            :data:`MAX_SOURCE_CHANNELS` channels, or is truncated (header frames vs frames held).
    """

    def __init__(self, path: str | Path):
        import soundfile as sf

        self.path = Path(path)
        try:
            self._fh = sf.SoundFile(str(self.path))
        except Exception as e:  # soundfile raises LibsndfileError/RuntimeError/TypeError
            raise AudioInputError(
                f"{self.path}: cannot read audio ({e}); give a WAV/FLAC/OGG file that soundfile can decode"
            ) from None
        self.frames = int(self._fh.frames)
        self.sample_rate = int(self._fh.samplerate)
        self.channels = int(self._fh.channels)
        try:
            check_channels(self.channels, self.path)
            declared = header_frames(self.path)
            #: The frames the header declares (None: a format without a count); every read is checked against it.
            self.declared_frames = declared
            if declared is not None and declared > self.frames:
                raise truncated_error(self.path, declared, self.frames, self.sample_rate)
        except BaseException:
            self._fh.close()
            raise

    def read(self, start: int = 0, frames: int | None = None) -> np.ndarray:
        """Read ``frames`` frames (None: to the end) from frame ``start``, float32 ``[channels, n]``.

        ``n`` is ``frames`` clipped to what the file holds past ``start`` (a range past the end
        gives fewer frames, never zeros); getting fewer than that is a truncated file.

        Raises:
            AudioInputError: a decode error, or fewer frames than the header promised (truncated).
        """
        start = max(0, min(int(start), self.frames))
        want = self.frames - start if frames is None else max(0, int(frames))
        expect = min(want, self.frames - start)
        try:
            self._fh.seek(start)
            data = self._fh.read(want, dtype="float32", always_2d=True)
        except Exception as e:
            raise AudioInputError(f"{self.path}: cannot decode frames {start}..{start + want} ({e}); "
                                  "the file is corrupt: export it again") from None
        if data.shape[0] < expect and self.declared_frames is not None:
            raise truncated_error(self.path, start + expect, start + data.shape[0], self.sample_rate)
        return np.ascontiguousarray(data.T)

    def close(self) -> None:
        """Close the file."""
        self._fh.close()

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_audio(path: str | Path, *, allow_overshoot: bool = True, start: int = 0,
               frames: int | None = None) -> tuple[np.ndarray, int]:
    """Read an audio file (or ``frames`` frames from frame ``start``) as float32 ``[channels, samples]``
    and its sample rate in Hz.

    The frames read are checked against the header (:class:`AudioReader`): a file cut short is
    an error naming the frames expected and got, never zero-padded. Lossy decoders (Vorbis,
    Opus, MP3) can return samples past full scale; they are kept as they are
    (``allow_overshoot``): mixbridge never clips input.

    Raises:
        AudioInputError: the file is missing, corrupt, truncated, unsupported, empty, has more than
            :data:`MAX_SOURCE_CHANNELS` channels, or holds NaN/inf samples; the message names the file.
    """
    path = Path(path)
    with AudioReader(path) as reader:
        audio, sample_rate = reader.read(start, frames), reader.sample_rate
    if audio.shape[1] == 0 and frames is None:
        raise AudioInputError(f"{path}: the file holds no samples")
    if not np.isfinite(audio).all():
        bad = int((~np.isfinite(audio)).sum())
        raise AudioInputError(f"{path}: {bad} NaN/inf samples; repair or re-export the file")
    if not allow_overshoot and audio.size and np.abs(audio).max() > 1.0:
        raise AudioInputError(f"{path}: samples exceed full scale (peak {np.abs(audio).max():.3f})")
    return audio, int(sample_rate)


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


#: The shortest stem set mixbridge mixes, s: one BS.1770-4 gating block (400 ms). Anything shorter has no
#: integrated loudness (:func:`mixbridge.loudness.integrated_lufs` reports it silent), so no level decision
#: and no loudness-normalised master can be made from it.
MIN_STEM_DURATION_S = 0.4


def load_stems(folder: str | Path, sample_rate: int | None = None, roles: dict[str, str] | None = None) -> StemSet:
    """Load every audio file of ``folder`` as a stem set of equal length and rate.

    Stems at another sample rate are resampled (to ``sample_rate``, or the most
    common rate) and shorter stems are zero-padded to the longest, each with a
    notice. Mono and stereo stems may be mixed: each keeps its channel count
    (mono tracks are panned by the console). Silent stems are kept and flagged.

    Raises:
        AudioInputError: the folder is missing or holds no audio file, a file is
            corrupt or holds NaN/inf, or a file has more than 2 channels, or the longest stem is not
            longer than :data:`MIN_STEM_DURATION_S` (one 400 ms loudness block).
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
    min_samples = int(MIN_STEM_DURATION_S * sample_rate) + 1  # the loudness meter's first full block
    if n < min_samples:
        longest = max(stems, key=lambda s: s.audio.shape[1])
        raise AudioInputError(
            f"{folder}: the longest stem ({longest.path.name}) has {n} samples ({n / sample_rate * 1000:.1f} ms at "
            f"{sample_rate} Hz); mixbridge needs more than {MIN_STEM_DURATION_S * 1000:.0f} ms ({min_samples} "
            "samples, one BS.1770 loudness block) to measure and set levels: give longer stems")
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
