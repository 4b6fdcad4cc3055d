"""Reading a composer dataset without torch: the excerpts, their labels, stems and target mixes.

:func:`read_composer_dataset` checks ``config.json`` and ``manifest.json`` (whose presence
means the build is complete), that every listed file lies inside the dataset folder and,
with ``verify=True``, that every file matches its SHA-256. Each excerpt's
``stems/manifest.json`` gives the track order, kinds, GM programs, roles and labels.
Audio comes back as float32 numpy arrays: stems ``[tracks, 2, samples]``, mixes ``[2, samples]``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mixbridge.audio import read_audio
from mixbridge.checksum import sha256_file
from mixbridge.records import read_record

from .build import DATASET_FORMAT, DATASET_VERSION, EXCERPT_FORMAT, MANIFEST_FORMAT, MANIFEST_VERSION
from .errors import ComposerDatasetError
from .split import SPLITS


def _inside(root: Path, rel: str, what: str) -> Path:
    """``root / rel`` resolved, refusing absolute paths and paths (or links) that leave ``root``."""
    if not isinstance(rel, str) or not rel or Path(rel).is_absolute():
        raise ComposerDatasetError(f"{root}: {what} path {rel!r} is not relative; the dataset is corrupt, rebuild it")
    path = (root / rel).resolve()
    try:
        path.relative_to(root.resolve())
    except ValueError:
        raise ComposerDatasetError(f"{root}: {what} {rel!r} lies outside the dataset folder; refusing it "
                                   "(rebuild the dataset)") from None
    return path


@dataclass(frozen=True)
class ComposerExcerpt:
    """One excerpt: its song, split and kit, its tracks (manifest order) and their labels.

    ``target_gain_db`` (dB) and ``target_pan`` (-1..1) are float64 ``[tracks]``;
    ``gm_programs`` ``[tracks]`` (None for drum stems), ``kinds`` ``"pitched"``/``"drums"``.
    """

    id: str
    lump: str
    song: str
    split: str
    kit: str
    sample_rate: int
    folder: Path
    track_names: list[str]
    track_files: list[str]
    target_gain_db: np.ndarray
    target_pan: np.ndarray
    gm_programs: list[int | None]
    kinds: list[str]
    roles: list[str]
    input_lufs: float
    stems_manifest: dict[str, Any] = field(repr=False)

    @property
    def stems_dir(self) -> Path:
        """The folder of input stems (``automix`` and ``load_stems`` read it as it is)."""
        return self.folder / "stems"

    @property
    def target_mix_path(self) -> Path:
        """``target/mix.wav``: the composer's mix (builtin console, pre-master)."""
        return self.folder / "target" / "mix.wav"

    @property
    def target_session_path(self) -> Path:
        """``target/session.json``: the composer's mix as a mixbridge session."""
        return self.folder / "target" / "session.json"

    @property
    def targets(self) -> list[dict]:
        """Each track's full ``target`` record (cc7, cc10, cc7_ramped, cc7_curve, raw_lufs, ...)."""
        return [s["target"] for s in self.stems_manifest["stems"]]

    def load_stems(self) -> np.ndarray:
        """The input stems as float32 ``[tracks, 2, samples]``, in :attr:`track_names` order.

        Raises:
            AudioInputError: a stem is missing or unreadable.
            ComposerDatasetError: a stem is not stereo at the excerpt's rate, or lengths differ.
        """
        arrays = []
        for f in self.track_files:
            audio, rate = read_audio(self.stems_dir / f)
            if rate != self.sample_rate or audio.shape[0] != 2:
                raise ComposerDatasetError(f"{self.stems_dir / f}: {audio.shape[0]} channels at {rate} Hz; the "
                                           f"manifest says 2 at {self.sample_rate} Hz; rebuild the dataset")
            arrays.append(audio)
        if len({a.shape[1] for a in arrays}) != 1:
            raise ComposerDatasetError(f"{self.stems_dir}: stems of different lengths; rebuild the dataset")
        return np.stack(arrays).astype(np.float32, copy=False)

    def load_target_mix(self) -> np.ndarray:
        """The composer's mix as float32 ``[2, samples]``.

        Raises:
            AudioInputError: the file is missing or unreadable.
        """
        audio, _ = read_audio(self.target_mix_path)
        return audio


@dataclass(frozen=True)
class ComposerDataset:
    """A complete composer dataset: ``root``, its ``config`` (settings, split, label rules) and ``excerpts``."""

    root: Path
    config: dict
    excerpts: list[ComposerExcerpt]

    def split(self, name: str) -> list[ComposerExcerpt]:
        """The excerpts of split ``name`` (``train``, ``val``, ``test``: by song, fixed).

        Raises:
            ComposerDatasetError: an unknown split name (the known ones listed).
        """
        if name not in SPLITS:
            raise ComposerDatasetError(f"split {name!r} is unknown; use one of {', '.join(SPLITS)}")
        return [e for e in self.excerpts if e.split == name]


def _excerpt(root: Path, entry: dict, verify: bool) -> ComposerExcerpt:
    if not isinstance(entry, dict):
        raise ComposerDatasetError(f"{root}/manifest.json: an excerpt entry is not an object; rebuild the dataset")
    try:
        eid, rel, files = entry["id"], entry["folder"], entry["files"]
        split = entry["split"]
    except KeyError as e:
        raise ComposerDatasetError(f"{root}/manifest.json: an excerpt lacks {e}; rebuild the dataset") from None
    if split not in SPLITS:
        raise ComposerDatasetError(f"{root}: excerpt {eid}: split {split!r} is not one of {', '.join(SPLITS)}")
    folder = _inside(root, rel, f"excerpt {eid} folder")
    for frel, digest in files.items():
        path = _inside(folder, frel, f"excerpt {eid} file")
        if not path.is_file():
            raise ComposerDatasetError(f"{path}: listed in the manifest but missing; rerun "
                                       f"`mixbridge datagen composer -o {root}` to repair it")
        if verify and sha256_file(path) != digest:
            raise ComposerDatasetError(f"{path}: checksum differs from the manifest ({digest[:19]}...); the file "
                                       f"was changed or corrupted; rerun `mixbridge datagen composer -o {root}`")
    stems = read_record(folder / "stems" / "manifest.json", format=EXCERPT_FORMAT, versions=(DATASET_VERSION,),
                        what="composer excerpt manifest", fix="rebuild the dataset", error=ComposerDatasetError)
    tracks = stems.get("stems") or []
    for s in tracks:
        _inside(folder / "stems", s["file"], f"excerpt {eid} stem")
    return ComposerExcerpt(
        id=eid, lump=entry["lump"], song=entry["song"], split=split, kit=entry["kit"],
        sample_rate=int(stems["sample_rate"]), folder=folder,
        track_names=[s["name"] for s in tracks], track_files=[s["file"] for s in tracks],
        target_gain_db=np.array([s["target"]["gain_db"] for s in tracks], dtype=np.float64),
        target_pan=np.array([s["target"]["pan"] for s in tracks], dtype=np.float64),
        gm_programs=[s.get("gm_program") for s in tracks], kinds=[s["kind"] for s in tracks],
        roles=[s.get("role") for s in tracks], input_lufs=float(stems["input_lufs"]), stems_manifest=stems)


def read_composer_dataset(root: str | Path, *, verify: bool = False) -> ComposerDataset:
    """Open the composer dataset in ``root`` (built by ``mixbridge datagen composer``).

    Args:
        verify: also check every file against its SHA-256 in ``manifest.json`` (reads all audio).

    Raises:
        ComposerDatasetError: no ``config.json`` (not a dataset) or no ``manifest.json`` (the
            build is incomplete: rerun it), a record of another format or version, a path
            outside ``root``, a listed file missing, or (``verify``) a checksum mismatch.
    """
    root = Path(root)
    config = read_record(root / "config.json", format=DATASET_FORMAT, versions=(DATASET_VERSION,),
                         what="composer dataset config", fix="rebuild it with this mixbridge",
                         missing=f"{root}: not a composer dataset (no config.json); build one with "
                                 f"`mixbridge datagen composer -o {root}`", error=ComposerDatasetError)
    if not (root / "manifest.json").is_file():
        raise ComposerDatasetError(f"{root}: incomplete composer dataset (no manifest.json: the build is running "
                                   f"or was interrupted); rerun `mixbridge datagen composer -o {root}` to finish it")
    manifest = read_record(root / "manifest.json", format=MANIFEST_FORMAT, versions=(MANIFEST_VERSION,),
                           what="composer dataset manifest", fix="rebuild it with this mixbridge",
                           error=ComposerDatasetError)
    entries = manifest.get("excerpts")
    if not isinstance(entries, list):
        raise ComposerDatasetError(f"{root}/manifest.json: 'excerpts' is not a list; rebuild the dataset")
    excerpts = [_excerpt(root, e, verify) for e in entries]
    return ComposerDataset(root, config, excerpts)


def excerpt_labels_json(excerpt: ComposerExcerpt) -> str:
    """One excerpt's track names and labels as compact JSON (for people and logs)."""
    return json.dumps({"id": excerpt.id, "tracks": excerpt.track_names,
                       "gain_db": excerpt.target_gain_db.round(2).tolist(),
                       "pan": excerpt.target_pan.round(3).tolist()})
