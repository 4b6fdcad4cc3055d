"""Source audio for data generation: scanning a folder, fingerprinting it, reading patches.

A :class:`SourceSet` lists every audio file under a folder (recursively) with its
length, rate and channel count, read from the file header only; patches are read
on demand with a seek (``soundfile``), so folders of hours of masters never sit
in memory. Patches are float32 ``[channels, samples]`` at the dataset's
``sample_rate`` (band-limited resampling when a file's rate differs). Lossy
decodes (Vorbis, Opus) can exceed full scale: samples are kept as decoded, never
clipped, and the peak is reported by the caller when it matters.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mixbridge.audio import AUDIO_SUFFIXES, AudioReader, check_channels, resample
from mixbridge.checksum import sha256_file
from mixbridge.errors import AudioInputError

#: A patch whose peak is below this is treated as silence and drawn again.
SILENT_PATCH_PEAK_DB = -60.0
#: How many draws before a silent patch is accepted (the flag ``silent`` is then set).
MAX_PATCH_DRAWS = 16

#: Provenance of the Debian music packages this project uses (DATA.md).
KNOWN_PROVENANCE = (
    ("/usr/share/games/wesnoth/", {"package": "wesnoth-1.16-music", "licence": "GPL-2+",
                                    "attribution": "The Battle for Wesnoth project, music by its composers"}),
    ("/usr/share/games/warzone2100/", {"package": "warzone2100-music", "licence": "GPL-2+ / CC-BY-SA-3.0",
                                        "attribution": "Warzone 2100 project, music by its composers"}),
)


@dataclass(frozen=True)
class SourceFile:
    """One source audio file: its path, path relative to the source root, length in frames,
    sample rate in Hz, channel count and ``"sha256:<hex>"`` checksum."""

    path: Path
    rel: str
    frames: int
    sample_rate: int
    channels: int
    sha256: str

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate


def provenance(path: Path) -> dict:
    """Package, licence and attribution of a file when it is known Debian music, else {}."""
    s = str(path.resolve())
    for prefix, prov in KNOWN_PROVENANCE:
        if s.startswith(prefix):
            return dict(prov)
    return {}


def demo_provenance(root: Path) -> dict[str, dict]:
    """``{relative stem path: {source, licence, attribution}}`` from a demo ``manifest.json`` (or {})."""
    from mixbridge.errors import MixbridgeError

    from .demo.manifest import load_manifest

    try:
        data = load_manifest(root)
    except MixbridgeError:  # no demo manifest, or not one this mixbridge reads
        return {}
    try:
        out = {}
        for song in data.get("songs", []):
            for stem in song.get("stems", []):
                out[f"{song['folder']}/{stem['file']}"] = {
                    "source": stem.get("source"), "licence": stem.get("license"),
                    "attribution": stem.get("attribution")}
        return out
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


class SourceSet:
    """Every readable audio file under ``root``; patches drawn by duration.

    Args:
        root: a folder (searched recursively) or one audio file.
        min_duration_s: files shorter than this are skipped (and counted).
        hash_files: fingerprint each file by sha256 (stored in the dataset config).

    Raises:
        AudioInputError: ``root`` is missing, holds no audio file, holds no file
            long enough, or a file's header cannot be read (the path is named).
    """

    def __init__(self, root: str | Path, *, min_duration_s: float = 0.0, hash_files: bool = True):
        root = Path(root)
        if not root.exists():
            raise AudioInputError(f"{root}: source not found; give a folder of audio files")
        if root.is_file():
            paths, base = [root], root.parent
        else:
            paths = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
                           and not any(part.startswith(".") for part in p.relative_to(root).parts))
            base = root
        if not paths:
            raise AudioInputError(f"{root}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in the source; "
                                  "give a folder of stems or masters")
        files, self.skipped = [], []
        for p in paths:
            with AudioReader(p) as inf:  # refuses unreadable, truncated and multichannel files (named)
                frames, rate, chans = inf.frames, inf.sample_rate, inf.channels
            if frames <= 0 or frames / rate < min_duration_s:
                self.skipped.append(p.relative_to(base).as_posix())
                continue
            files.append(SourceFile(p, p.relative_to(base).as_posix(), frames, rate, chans,
                                    sha256_file(p) if hash_files else ""))
        if not files:
            raise AudioInputError(f"{root}: no audio file is at least {min_duration_s:g} s long "
                                  f"({len(self.skipped)} too short); give longer sources or a shorter --patch-s")
        self.root = root
        self.files: list[SourceFile] = files
        self._weights = np.array([f.duration_s for f in files], dtype=np.float64)
        self._weights /= self._weights.sum()

    @classmethod
    def from_fingerprint(cls, root: str | Path, files: list[dict]) -> SourceSet:
        """Rebuild the set a config recorded (same files, same order, no rescan or hashing).

        Raises:
            AudioInputError: a recorded file is gone (named).
        """
        root = Path(root)
        self = cls.__new__(cls)
        self.root, self.skipped = root, []
        base = root if root.is_dir() else root.parent
        self.files = []
        for d in files:
            path = base / d["path"]
            if not path.is_file():
                raise AudioInputError(f"{path}: a source file of this dataset is missing; restore it to resume")
            self.files.append(SourceFile(path, d["path"], int(d["frames"]), int(d["sample_rate"]),
                                         int(d["channels"]), d.get("sha256", "")))
        self._weights = np.array([f.duration_s for f in self.files], dtype=np.float64)
        self._weights /= self._weights.sum()
        return self

    def _handle(self, file_index: int) -> AudioReader:
        """An open :class:`~mixbridge.audio.AudioReader` per file, kept for the set's lifetime (no re-open
        per patch); a file whose length is not the recorded one is refused (it changed since it was indexed)."""
        handles = self.__dict__.setdefault("_handles", {})
        if file_index not in handles:
            f = self.files[file_index]
            reader = AudioReader(f.path)
            if (reader.frames, reader.sample_rate, reader.channels) != (f.frames, f.sample_rate, f.channels):
                reader.close()
                raise AudioInputError(
                    f"{f.path}: holds {reader.frames} frames at {reader.sample_rate} Hz, {reader.channels} channel(s); "
                    f"this dataset recorded {f.frames} frames at {f.sample_rate} Hz, {f.channels} channel(s): the "
                    "source changed; restore it, or generate into a new output folder")
            handles[file_index] = reader
        return handles[file_index]

    def close(self) -> None:
        """Close the open sound files (a set reopens them on the next read)."""
        for h in self.__dict__.pop("_handles", {}).values():
            h.close()

    def fingerprint(self) -> list[dict]:
        """JSON-able list of the files (relative path, frames, rate, channels, sha256, provenance).

        Provenance (package, licence, attribution) comes from a mixbridge demo
        ``manifest.json`` at the source root when there is one, else from the
        known Debian music packages.
        """
        demo = demo_provenance(self.root) if self.root.is_dir() else {}
        out = []
        for f in self.files:
            d = {"path": f.rel, "frames": f.frames, "sample_rate": f.sample_rate, "channels": f.channels,
                 "sha256": f.sha256}
            prov = demo.get(f.rel) or provenance(f.path)
            if prov:
                d["provenance"] = prov
            out.append(d)
        return out

    def read(self, file_index: int, start_s: float, n_samples: int, sample_rate: int) -> np.ndarray:
        """Read ``n_samples`` at ``sample_rate`` from file ``file_index`` starting at ``start_s``.

        Returns float32 ``[channels, n_samples]``; a patch that runs past the file's end (a file
        shorter than the patch) is zero-padded there. A file that holds fewer frames than its
        header declares is refused (:class:`~mixbridge.audio.AudioReader`), never padded.

        Raises:
            AudioInputError: the file cannot be decoded, is truncated or changed since it was indexed (named).
        """
        f = self.files[file_index]
        start = int(round(start_s * f.sample_rate))
        want = (n_samples if f.sample_rate == sample_rate
                else int(math.ceil(n_samples * f.sample_rate / sample_rate)) + 64)
        audio = self._handle(file_index).read(min(start, f.frames), want)
        if f.sample_rate != sample_rate:
            audio = resample(audio, f.sample_rate, sample_rate)
        if audio.shape[1] < n_samples:
            audio = np.pad(audio, ((0, 0), (0, n_samples - audio.shape[1])))
        audio = audio[:, :n_samples]
        if not np.isfinite(audio).all():
            raise AudioInputError(f"{f.path}: NaN/inf samples near {start_s:.2f} s; repair the file")
        return audio.astype(np.float32, copy=False)

    def draw(self, rng: np.random.Generator, n_samples: int, sample_rate: int, channels: int,
             reject_silence: bool = True) -> tuple[np.ndarray, dict]:
        """Draw a random patch (file chosen by duration, start uniform); silent patches are redrawn.

        Returns ``(audio [channels, n_samples], where)`` with ``where`` =
        ``{"file": rel, "start_s": float, "silent": bool}``. Mono files are
        duplicated to stereo; stereo files are averaged when ``channels`` is 1.
        """
        dur_s = n_samples / sample_rate
        audio, where = np.zeros((channels, n_samples), dtype=np.float32), {}
        for _ in range(MAX_PATCH_DRAWS):
            fi = int(rng.choice(len(self.files), p=self._weights))
            f = self.files[fi]
            span = max(0.0, f.duration_s - dur_s)
            start_s = float(rng.uniform(0.0, span))
            audio = conform_channels(self.read(fi, start_s, n_samples, sample_rate), channels)
            peak = float(np.max(np.abs(audio))) if audio.size else 0.0
            silent = peak <= 10 ** (SILENT_PATCH_PEAK_DB / 20.0)
            where = {"file": f.rel, "file_index": fi, "start_s": round(start_s, 6), "silent": silent}
            if not (silent and reject_silence):
                break
        return audio, where


def conform_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    """Mono -> duplicated stereo; stereo -> mean for mono; the same channel count unchanged.

    Raises:
        AudioInputError: a patch of more than two channels (never silently cut to two).
    """
    if audio.shape[0] == channels:
        return audio
    if channels == 2 and audio.shape[0] == 1:
        return np.repeat(audio, 2, axis=0)
    if channels == 1:
        return audio.mean(axis=0, keepdims=True).astype(np.float32)
    check_channels(audio.shape[0], "a source patch")  # Sources refuses such files when it indexes them
    raise AudioInputError(f"cannot conform a {audio.shape[0]}-channel patch to {channels} channels")
