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


#: Frames per block when a float WAV is written (2^16: 0.5 MB for stereo).
WRITE_BLOCK = 1 << 16
#: Largest ``data`` chunk a RIFF WAV holds (its 32-bit sizes); larger files go to scipy whole.
_RIFF_LIMIT = 2**32 - 64


def _float_wav_header(channels: int, frames: int, sample_rate: int) -> bytes | None:
    """The header :func:`scipy.io.wavfile.write` writes for ``frames`` frames of ``channels`` ``"<f4"``
    channels (``RIFF``/``WAVE``, ``fmt `` tag 3 with ``cbSize`` 0, ``fact``, ``data``), or None for a
    scipy whose layout is not this one or a ``data`` chunk past :data:`_RIFF_LIMIT`.

    scipy's own header for one frame with its three sizes set for ``frames`` frames: the RIFF size,
    the ``fact`` frame count and the ``data`` byte count (Microsoft's RIFF/WAVE specification, 1991).
    """
    import io
    import struct

    from scipy.io import wavfile

    data_bytes = 4 * channels * frames
    if data_bytes >= _RIFF_LIMIT:
        return None
    probe = io.BytesIO()
    wavfile.write(probe, sample_rate, np.zeros((1, channels), "<f4"))
    head = bytearray(probe.getvalue()[: -4 * channels])
    if head[-8:-4] != b"data" or head[-20:-16] != b"fact":
        return None
    struct.pack_into("<I", head, 4, len(head) - 8 + data_bytes)
    struct.pack_into("<I", head, len(head) - 12, frames)
    struct.pack_into("<I", head, len(head) - 4, data_bytes)
    return bytes(head)


def _write_float_wav_blocks(path: Path, audio, sample_rate: int) -> None:
    """Write float32 ``[channels, samples]`` as the bytes :func:`scipy.io.wavfile.write` writes for
    ``audio.T`` as ``"<f4"``, block by block (no transposed copy of the whole signal); ``audio`` is an
    array or a :class:`WavArray` (read a block at a time)."""
    channels, frames = audio.shape
    head = _float_wav_header(channels, frames, sample_rate)
    if head is None:  # a scipy whose layout is not this one
        from scipy.io import wavfile

        wavfile.write(path, sample_rate, np.ascontiguousarray(audio[:, :].T).astype("<f4"))
        return
    with open(path, "wb") as fh:
        fh.write(head)
        for a in range(0, frames, WRITE_BLOCK):
            fh.write(np.ascontiguousarray(audio[:, a:a + WRITE_BLOCK].T).astype("<f4", copy=False).tobytes())


class WavArray:
    """A float32 WAV file on disk used as a float32 ``[channels, frames]`` array, one block at a time.

    Long renders (``automix``, ``render``) write the mix and the master here instead of holding them:
    ``x[:, a:b] = block`` writes frames ``a .. b`` into the file (``pwrite``), ``x[:, a:b]`` reads them
    back (``pread``), so the process holds one block and the kernel's page cache the rest. The file is
    created at its full size (frames never written read as zeros) with the header
    :func:`write_audio` writes, so once filled it holds the bytes :func:`write_audio` writes for the
    same samples (a test checks it); :func:`write_audio` to its own path only checks its samples.

    Args:
        path: the file to create (replaced). channels, frames: its shape. sample_rate: Hz.
        create: False: open the existing file a :class:`WavArray` of this shape made (its size is checked).

    Raises:
        ValueError: a ``data`` chunk past the RIFF limit (4 GiB: 3.3 h of stereo at 44.1 kHz) or a
            scipy whose header layout is unknown (:meth:`fits` says beforehand);
            IndexError: a key other than ``[:, a:b]`` or ``[a:b]`` with step 1;
            OSError: a write refused by the OS (a full disk), naming the file.
    """

    dtype = np.dtype(np.float32)
    ndim = 2

    def __init__(self, path: str | Path, channels: int, frames: int, sample_rate: int, *, create: bool = True) -> None:
        import os

        self.path, self.sample_rate = Path(path), int(sample_rate)
        self.shape = (int(channels), int(frames))
        head = _float_wav_header(self.shape[0], self.shape[1], self.sample_rate)
        if head is None:
            raise ValueError(f"{path}: {frames} frames of {channels} float32 channels do not fit one RIFF WAV "
                             "(or this scipy writes another header); keep the signal in memory")
        self._offset = len(head)
        size = self._offset + 4 * self.shape[0] * self.shape[1]
        if not create:
            self._fd = os.open(self.path, os.O_RDWR)
            if os.fstat(self._fd).st_size != size:
                os.close(self._fd)
                raise ValueError(f"{path}: {os.path.getsize(self.path)} bytes, not the {size} of a WavArray of "
                                 f"{channels} x {frames} frames")
            return
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            os.write(self._fd, head)
            os.ftruncate(self._fd, size)
        except OSError as e:
            os.close(self._fd)
            raise OSError(e.errno, e.strerror, str(self.path)) from None
        except BaseException:
            os.close(self._fd)
            raise

    @staticmethod
    def fits(channels: int, frames: int, sample_rate: int) -> bool:
        """Whether a :class:`WavArray` of this shape can be made (see Raises)."""
        return _float_wav_header(int(channels), int(frames), int(sample_rate)) is not None

    @property
    def size(self) -> int:
        """Samples in all channels."""
        return self.shape[0] * self.shape[1]

    def __len__(self) -> int:
        return self.shape[0]

    def _range(self, key) -> tuple[int, int]:
        if isinstance(key, tuple):
            if len(key) != 2 or key[0] != slice(None):
                raise IndexError(f"WavArray takes [:, a:b] or [a:b] (all channels, a frame range), not {key!r}")
            key = key[1]
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise IndexError(f"WavArray takes a frame range a:b with step 1, not {key!r}")
        a, b, _ = key.indices(self.shape[1])
        return a, max(a, b)

    def __getitem__(self, key) -> np.ndarray:
        """Frames ``a .. b`` as float32 ``[channels, b - a]`` (a new array)."""
        import os

        a, b = self._range(key)
        want, pos, parts = 4 * self.shape[0] * (b - a), self._offset + 4 * self.shape[0] * a, []
        while want > 0:
            chunk = os.pread(self._fd, min(want, 1 << 30), pos)
            if not chunk:
                raise OSError(f"{self.path}: short read at byte {pos}")
            parts.append(chunk)
            want, pos = want - len(chunk), pos + len(chunk)
        data = np.frombuffer(b"".join(parts), dtype="<f4").reshape(b - a, self.shape[0])
        return np.ascontiguousarray(data.T, dtype=np.float32)

    def __setitem__(self, key, value) -> None:
        """Write frames ``a .. b`` from ``value`` (broadcast to float32 ``[channels, b - a]``)."""
        import os

        a, b = self._range(key)
        block = np.broadcast_to(np.asarray(value, dtype=np.float32), (self.shape[0], b - a))
        view = np.ascontiguousarray(block.T).astype("<f4", copy=False).data.cast("B")
        pos = self._offset + 4 * self.shape[0] * a
        try:
            while len(view):
                n = os.pwrite(self._fd, view, pos)
                view, pos = view[n:], pos + n
        except OSError as e:  # a full disk: name the file (the CLI prints path, reason and fix)
            raise OSError(e.errno, e.strerror, str(self.path)) from None

    def blocks(self, frames: int = WRITE_BLOCK):
        """Yield consecutive float32 ``[channels, <= frames]`` blocks of the whole file."""
        for a in range(0, self.shape[1], int(frames)):
            yield self[:, a:a + int(frames)]

    def flush(self) -> None:
        """fsync the file."""
        import os

        os.fsync(self._fd)

    def close(self) -> None:
        """Close the file (it stays on disk)."""
        import os

        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:  # pragma: no cover - a safety net; callers close
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"WavArray({str(self.path)!r}, channels={self.shape[0]}, frames={self.shape[1]})"


def check_finite_blocks(path, audio) -> None:
    """Refuse NaN/inf samples in float ``[channels, samples]`` ``audio`` (an array or a :class:`WavArray`),
    checked block by block.

    Raises:
        AudioInputError: naming ``path`` (the file they were to be written to).
    """
    if not all(np.isfinite(audio[:, a:a + WRITE_BLOCK]).all() for a in range(0, audio.shape[1], WRITE_BLOCK)):
        raise AudioInputError(f"{path}: refusing to write NaN/inf samples")


def write_audio(path: str | Path, audio, sample_rate: int, subtype: str = "FLOAT") -> Path:
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

    ``audio`` may be a :class:`WavArray`: it is copied block by block, and a :class:`WavArray`
    that already is ``path`` (a render that wrote its output in place) is only checked and
    fsynced (it holds these bytes already).

    Raises:
        AudioInputError: the array is not ``[channels, samples]`` or holds NaN/inf samples.
    """
    if isinstance(audio, WavArray):
        check_finite_blocks(path, audio)
        if Path(path).resolve() == audio.path.resolve():
            audio.flush()
            return Path(path)
        if subtype != "FLOAT":
            audio = audio[:, :]
    else:
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 2 or audio.shape[0] < 1:
            raise AudioInputError(f"{path}: audio must be [channels, samples], got shape {audio.shape}")
        check_finite_blocks(path, audio)
    with atomic_path(path) as tmp:
        if subtype == "FLOAT":
            # "<f4": little-endian samples, so scipy writes RIFF (not RIFX) on every host
            _write_float_wav_blocks(tmp, audio, int(sample_rate))
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


#: Frames per block when a stem is read or scanned block by block (2^16: 1.5 s at 44.1 kHz, 0.5 MB stereo).
STEM_BLOCK = 1 << 16


class Stem:
    """One input track at its set's sample rate: float32 ``[channels, samples]``, held or read from ``path``.

    A stem made with ``audio`` holds that array. A stem from ``load_stems(..., lazy=True)`` holds no
    samples until :attr:`audio` is first read (then it reads, resamples and zero-pads the file to the
    set's length, and keeps it); :meth:`blocks` and :meth:`read` give the same samples a block at a
    time and never keep them, so analyses of long material (the mixers' loudness and level
    measurements) hold one block, not the stem.

    Attributes:
        name, path, role: as given; channels: 1 or 2; n_samples: samples at the set's rate.
    """

    def __init__(self, name: str, path: Path, audio: np.ndarray | None = None, role: str | None = None, *,
                 sample_rate: int | None = None, n_samples: int | None = None, channels: int | None = None,
                 source_rate: int | None = None, peak: float | None = None) -> None:
        self.name, self.path, self.role = name, path, role
        self._audio = audio
        self._sample_rate, self._source_rate = sample_rate, source_rate
        self._n_samples = n_samples
        self._channels = channels
        self._peak = peak
        if audio is None and (sample_rate is None or n_samples is None or channels is None or source_rate is None):
            raise ValueError("a stem without audio needs sample_rate, n_samples, channels and source_rate")

    def __repr__(self) -> str:
        return f"Stem(name={self.name!r}, path={self.path!r}, role={self.role!r}, " \
               f"{'held' if self._audio is not None else 'on disk'})"

    @property
    def audio(self) -> np.ndarray:
        """The whole stem float32 ``[channels, n_samples]`` (a lazy stem reads it now and keeps it)."""
        if self._audio is None:
            self._audio = self._read_whole()
        return self._audio

    @audio.setter
    def audio(self, value: np.ndarray) -> None:
        self._audio = value
        self._peak = None

    @property
    def held(self) -> bool:
        """Whether the samples are in memory (else they are read from ``path`` when needed)."""
        return self._audio is not None

    @property
    def channels(self) -> int:
        """1 or 2."""
        return int(self._audio.shape[0]) if self._audio is not None else int(self._channels or 0)

    @property
    def n_samples(self) -> int:
        """Samples at the set's rate (after zero-padding to the set's length)."""
        return int(self._audio.shape[1]) if self._audio is not None else int(self._n_samples or 0)

    def _read_whole(self) -> np.ndarray:
        audio, rate = read_audio(self.path)
        if self._sample_rate is not None and rate != self._sample_rate:
            audio = resample(audio, rate, self._sample_rate)
        n = self.n_samples
        if audio.shape[1] < n:
            audio = np.pad(audio, ((0, 0), (0, n - audio.shape[1])))
        return audio

    def blocks(self, block_frames: int = STEM_BLOCK):
        """Yield the stem as consecutive float32 ``[channels, <= block_frames]`` blocks (none kept).

        A lazy stem at its set's rate is read from disk block by block; one that needs resampling is
        read whole and resampled (band-limited resampling needs the whole signal), then sliced.
        """
        n, block_frames = self.n_samples, int(block_frames)
        if self._audio is None and self._source_rate != self._sample_rate:
            whole = self._read_whole()
            for a in range(0, n, block_frames):
                yield whole[:, a:a + block_frames]
            return
        if self._audio is not None:
            for a in range(0, n, block_frames):
                yield self._audio[:, a:a + block_frames]
            return
        with AudioReader(self.path) as reader:
            for a in range(0, n, block_frames):
                x = reader.read(a, min(block_frames, n - a))
                if x.shape[1] < min(block_frames, n - a):
                    x = np.pad(x, ((0, 0), (0, min(block_frames, n - a) - x.shape[1])))
                yield x

    def read(self, start: int, frames: int) -> np.ndarray:
        """Samples ``start .. start + frames`` (clipped to the stem), float32 ``[channels, k]``; nothing kept."""
        start = max(0, min(int(start), self.n_samples))
        stop = min(self.n_samples, start + max(0, int(frames)))
        if self._audio is not None:
            return self._audio[:, start:stop]
        if self._source_rate != self._sample_rate:
            return self._read_whole()[:, start:stop]
        with AudioReader(self.path) as reader:
            x = reader.read(start, stop - start)
        if x.shape[1] < stop - start:
            x = np.pad(x, ((0, 0), (0, stop - start - x.shape[1])))
        return x

    def release(self) -> None:
        """Drop samples read by :attr:`audio` from a lazy stem (a stem made with ``audio`` keeps them)."""
        if self._source_rate is not None:
            self._audio = None

    @property
    def peak(self) -> float:
        """The sample peak (linear), measured block by block once."""
        if self._peak is None:
            self._peak = max((float(np.max(np.abs(b))) for b in self.blocks() if b.size), default=0.0)
        return self._peak

    @property
    def silent(self) -> bool:
        """True when the sample peak is below :data:`SILENCE_PEAK_DB` (-90 dBFS)."""
        peak = self.peak
        return (20.0 * np.log10(peak) if peak > 0 else float("-inf")) < SILENCE_PEAK_DB


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
        return self.stems[0].n_samples


#: The shortest stem set mixbridge mixes, s: one BS.1770-4 gating block (400 ms). Anything shorter has no
#: integrated loudness (:func:`mixbridge.loudness.integrated_lufs` reports it silent), so no level decision
#: and no loudness-normalised master can be made from it.
MIN_STEM_DURATION_S = 0.4


def _scan_file(path: Path) -> tuple[int, int, int, float]:
    """``(frames, sample_rate, channels, peak)`` of an audio file read block by block, with
    :func:`read_audio`'s checks (header, truncation, channels, empty, NaN/inf), holding one block."""
    with AudioReader(path) as reader:
        if reader.frames == 0:
            raise AudioInputError(f"{path}: the file holds no samples")
        peak, bad = 0.0, 0
        for a in range(0, reader.frames, STEM_BLOCK):
            x = reader.read(a, STEM_BLOCK)
            finite = np.isfinite(x)
            if not finite.all():
                bad += int((~finite).sum())
            elif x.size:
                peak = max(peak, float(np.max(np.abs(x))))
        if bad:
            raise AudioInputError(f"{path}: {bad} NaN/inf samples; repair or re-export the file")
        return reader.frames, reader.sample_rate, reader.channels, peak


def load_stems(folder: str | Path, sample_rate: int | None = None, roles: dict[str, str] | None = None,
               lazy: bool = False) -> StemSet:
    """Load every audio file of ``folder`` as a stem set of equal length and rate.

    ``lazy``: read each file once to check it (block by block) and keep no samples: each
    :class:`Stem` reads its file when asked (:meth:`Stem.blocks`, :meth:`Stem.read`, :attr:`Stem.audio`).
    What is checked, refused and noticed is the same.

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
    if lazy:
        return _load_lazy(folder, files, sample_rate, roles)
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
    _min_length_check(folder, n, int(sample_rate), max(stems, key=lambda s: s.audio.shape[1]).path)
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


def _min_length_check(folder: Path, n: int, sample_rate: int, longest: Path) -> None:
    min_samples = int(MIN_STEM_DURATION_S * sample_rate) + 1  # the loudness meter's first full block
    if n < min_samples:
        raise AudioInputError(
            f"{folder}: the longest stem ({longest.name}) has {n} samples ({n / sample_rate * 1000:.1f} ms at "
            f"{sample_rate} Hz); mixbridge needs more than {MIN_STEM_DURATION_S * 1000:.0f} ms ({min_samples} "
            "samples, one BS.1770 loudness block) to measure and set levels: give longer stems")


def _load_lazy(folder: Path, files: list[Path], sample_rate: int | None, roles: dict[str, str] | None) -> StemSet:
    """:func:`load_stems` with ``lazy=True``: the same checks and notices, no samples kept."""
    scanned = [(f, *_scan_file(f)) for f in files]
    notices: list[str] = []
    if sample_rate is None:
        rates = [r for _, _, r, _, _ in scanned]
        sample_rate = max(set(rates), key=lambda r: (rates.count(r), r))
    sample_rate = int(sample_rate)
    lengths = []
    for f, frames, rate, _, _ in scanned:
        if rate != sample_rate:
            notices.append(f"{f.name}: resampled from {rate} Hz to {sample_rate} Hz")
            frames = -(-frames * sample_rate // rate)  # resample_poly's output length
        lengths.append(frames)
    n = max(lengths)
    _min_length_check(folder, n, sample_rate, scanned[lengths.index(n)][0])
    stems = []
    for (f, _, rate, channels, peak), k in zip(scanned, lengths):
        if k < n:
            notices.append(f"{f.name}: {k} samples, zero-padded to {n} to match the longest stem")
        stems.append(Stem(f.stem, f, None, (roles or {}).get(f.stem), sample_rate=sample_rate, n_samples=n,
                          channels=channels, source_rate=rate, peak=peak if rate == sample_rate else None))
    if len({s.channels for s in stems}) > 1:
        notices.append("mono and stereo stems mixed: mono stems are panned, stereo stems balanced")
    for s in stems:
        if s.silent:
            notices.append(f"{s.path.name}: silent (peak below {SILENCE_PEAK_DB:g} dBFS); "
                           "excluded from loudness decisions")
    return StemSet(stems, sample_rate, notices)
