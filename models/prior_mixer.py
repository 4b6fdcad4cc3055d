"""The ``prior`` mixer: each GM family's mean level and pan in the composer dataset's training songs.

The simplest learned baseline of issue 12. :func:`fit_prior` reads the composer dataset
(:func:`mixbridge.plugins.datagen.composer.read_composer_dataset`, its **training split only**) and
averages the labels (``target_gain_db``: the composer's level relative to the excerpt's mean, dB;
``target_pan``: -1..1) over every track of every training excerpt, per key:

* a pitched part's key is its GM family, ``gm:<family>`` with the family ``program // 8`` named by
  :data:`GM_FAMILIES` (General MIDI 1, MMA 1991: 16 families of 8 programs);
* a drum stem's key is its kit piece, ``drums:<piece>`` (``drums:kick``, ``drums:snare`` ...; the
  pieces of :data:`mixbridge.plugins.datagen.demo.gm.DRUM_STEM_ORDER`).

The same averages are taken per role (:data:`mixbridge.roles.ROLES`) and over all tracks. The table
(``models/mixers/prior.json``, :data:`PRIOR_FORMAT` version :data:`PRIOR_VERSION`) records its
dataset, split and counts.

**Level convention** (the composer dataset's, and the ``dmc``'s): the dataset's input stems are
loudness-normalised to one common LUFS and its labels are relative gains. So the mixer first brings
every non-silent stem to one common loudness (trim ``common_lufs - lufs_i``, BS.1770-4 integrated
loudness by :func:`mixbridge.loudness.integrated_lufs`; ``common_lufs`` defaults to the mean of the
stems' loudness, so that on dataset inputs the trims are ~0), adds the table's gain of the stem's key,
removes the mean of those gains over the non-silent stems, and sets the pan to the key's mean pan.
The total gain goes through :func:`~mixbridge.models.mix_session.split_gain` (fader, then trim;
rounded to 1 mdB), the master keeps its defaults at the loudness target. Silent stems stay at unity,
centred, and are noted.

**Keys at mixing time** come from the stem folder's ``manifest.json`` (a demo song's or a composer
excerpt's: ``stems[].file``, ``kind``, ``gm_program``). A stem without GM information (a user's
folder), or whose key the training songs never had, falls back to the table of its role, then to the
overall mean, each with a notice in the provenance's ``mixer_notes``.

``mixbridge train prior --data DATASET -o models/mixers/prior.json`` (:func:`add_prior_command`)
fits and writes the table. This module imports numpy and mixbridge's torch-free layers only.
"""
from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mixbridge.atomic import atomic_write_text
from mixbridge.audio import StemSet
from mixbridge.checksum import sha256_file
from mixbridge.errors import MixbridgeError, RecordFormatError
from mixbridge.loudness import SILENT_LUFS, integrated_lufs
from mixbridge.plugins.datagen.demo.gm import DRUM_STEM_ORDER
from mixbridge.records import read_record
from mixbridge.roles import ROLES, guess_role
from mixbridge.session import Session

from .mix_session import build_session, master_defaults, split_gain

#: Format and version of the fitted table (a :func:`mixbridge.records.read_record` record).
PRIOR_FORMAT = "mixbridge-prior-table"
PRIOR_VERSION = 1
#: Where the shipped table lives (``get_mixer("prior")`` reads it).
DEFAULT_TABLE = Path(__file__).resolve().parent / "mixers" / "prior.json"
#: The split the table is fitted on (never val or test).
FIT_SPLIT = "train"
#: The 16 General MIDI 1 instrument families, program // 8 (MMA, *General MIDI System Level 1*, 1991;
#: the same order as :data:`mixbridge.plugins.datagen.demo.gm.GM_FAMILY_ROLES`).
GM_FAMILIES: tuple[str, ...] = (
    "piano", "chromatic_percussion", "organ", "guitar", "bass", "strings", "ensemble", "brass",
    "reed", "pipe", "synth_lead", "synth_pad", "synth_effects", "ethnic", "percussive", "sound_effects",
)
#: Pans go into the session rounded to this many decimals (as the dmc mixer's; gains: split_gain's 1 mdB).
PAN_DECIMALS = 4
#: The kind of a drum stem in a demo/composer manifest (``kind``), as opposed to ``pitched``.
DRUM_KIND = "drums"


class PriorTableError(RecordFormatError):
    """A prior table that is missing, unreadable, of another format or version, or malformed."""


class PriorFitError(ValueError, MixbridgeError):
    """A composer dataset the prior cannot be fitted on (no training tracks)."""


def gm_family_key(program: int) -> str:
    """The table key of GM ``program`` (0..127): ``gm:<family>`` of family ``program // 8``.

    Raises:
        PriorFitError: ``program`` outside 0..127 (a GM program number, 0-based).
    """
    p = int(program)
    if not 0 <= p <= 127:
        raise PriorFitError(f"GM program {program} is outside 0..127; give the 0-based General MIDI program")
    return f"gm:{GM_FAMILIES[p // 8]}"


def drum_key(piece: str) -> str:
    """The table key of a drum stem: ``drums:<piece>`` (``drums:kick``)."""
    return f"{DRUM_KIND}:{piece}"


def track_key(kind: str | None, gm_program: int | None, name: str, role: str | None) -> str | None:
    """The table key of one track, or None when it carries no GM information.

    A drum stem (``kind == "drums"``) is keyed by its kit piece: its role when that is a drum role,
    else its name; a pitched part by its GM family; anything else has no key.
    """
    if kind == DRUM_KIND:
        return drum_key(role if role in DRUM_STEM_ORDER else name)
    if gm_program is not None:
        return gm_family_key(gm_program)
    return None


def _stats(gains_db: Sequence[float], pans: Sequence[float]) -> dict[str, float | int]:
    g = np.asarray(gains_db, dtype=np.float64)
    p = np.asarray(pans, dtype=np.float64)
    return {"gain_db": float(np.mean(g)), "pan": float(np.mean(p)), "n": int(g.size),
            "gain_std_db": float(np.std(g)), "pan_std": float(np.std(p))}


def fit_prior_table(tracks: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The three tables of mean labels from training tracks.

    Args:
        tracks: one mapping per track of every training excerpt, with ``key`` (str or None),
            ``role`` (str), ``gain_db`` (relative level, dB) and ``pan`` (-1..1).

    Returns:
        ``{"family": {key: stats}, "role": {role: stats}, "overall": stats}`` where stats are
        ``gain_db`` and ``pan`` (the means), ``n`` (tracks), ``gain_std_db`` and ``pan_std``
        (population standard deviations). Keys are sorted.

    Raises:
        PriorFitError: no tracks.
    """
    if not tracks:
        raise PriorFitError("no training tracks to fit the prior on; give a composer dataset with a train split")
    by_key: dict[str, tuple[list[float], list[float]]] = {}
    by_role: dict[str, tuple[list[float], list[float]]] = {}
    for t in tracks:
        for table, k in ((by_key, t["key"]), (by_role, t["role"])):
            if k is None:
                continue
            g, p = table.setdefault(str(k), ([], []))
            g.append(float(t["gain_db"]))
            p.append(float(t["pan"]))
    return {
        "family": {k: _stats(*by_key[k]) for k in sorted(by_key)},
        "role": {k: _stats(*by_role[k]) for k in sorted(by_role)},
        "overall": _stats([float(t["gain_db"]) for t in tracks], [float(t["pan"]) for t in tracks]),
    }


def fit_prior(dataset_root: str | Path, out_path: str | Path) -> dict:
    """Fit the prior on the composer dataset's training split and write it to ``out_path`` atomically.

    Args:
        dataset_root: a complete composer dataset (``mixbridge datagen composer``).
        out_path: the table's JSON file (``models/mixers/prior.json``); written atomically.

    Returns:
        The table written: ``format``, ``version``, ``data`` (root as given, the folder's name,
        ``manifest.json``'s sha256, the
        training songs and excerpts, the label rules of the dataset's config), ``split``, ``counts``
        (excerpts, songs, tracks, tracks without a key), ``key_rule``, ``family``, ``role``, ``overall``
        (see :func:`fit_prior_table`) and ``fitted_utc``.

    Raises:
        ComposerDatasetError: an incomplete or bad dataset (from H1's reader).
        PriorFitError: the training split holds no tracks.
    """
    from mixbridge.plugins.datagen.composer import read_composer_dataset

    ds = read_composer_dataset(dataset_root)
    excerpts = ds.split(FIT_SPLIT)
    tracks: list[dict[str, Any]] = []
    for ex in excerpts:
        gains, pans = np.asarray(ex.target_gain_db, np.float64), np.asarray(ex.target_pan, np.float64)
        for i, name in enumerate(ex.track_names):
            role = ex.roles[i] if ex.roles[i] in ROLES else guess_role(name)
            tracks.append({"key": track_key(ex.kinds[i], ex.gm_programs[i], name, role), "role": role,
                           "gain_db": float(gains[i]), "pan": float(pans[i])})
    tables = fit_prior_table(tracks)
    root = Path(ds.root)
    manifest = root / "manifest.json"
    labels = ds.config.get("labels", {}) if isinstance(ds.config, Mapping) else {}
    table = {
        "format": PRIOR_FORMAT,
        "version": PRIOR_VERSION,
        "data": {
            "root": str(dataset_root),
            "name": root.resolve().name,
            "manifest_sha256": sha256_file(manifest) if manifest.is_file() else None,
            "songs": sorted({ex.lump for ex in excerpts}),
            "excerpts": sorted(ex.id for ex in excerpts),
            "labels": labels,
        },
        "split": FIT_SPLIT,
        "counts": {"excerpts": len(excerpts), "songs": len({ex.lump for ex in excerpts}), "tracks": len(tracks),
                   "tracks_without_key": sum(t["key"] is None for t in tracks),
                   "keys": len(tables["family"]), "roles": len(tables["role"])},
        "key_rule": ("pitched: gm:<family of program // 8> (GM_FAMILIES); drums: drums:<kit piece>; "
                     "stats are means over every training track of gain_db (relative to the excerpt's mean) "
                     "and pan"),
        **tables,
        "fitted_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    atomic_write_text(out_path, json.dumps(table, indent=1) + "\n")
    return table


def load_prior_table(path: str | Path = DEFAULT_TABLE) -> dict:
    """Read a fitted prior table (format :data:`PRIOR_FORMAT`, version :data:`PRIOR_VERSION`).

    Raises:
        PriorTableError: the file is missing (the fix: ``mixbridge train prior``), unreadable, of another
            format or version, or lacks its ``family``/``role``/``overall`` tables.
    """
    path = Path(path)
    fix = f"fit it with `mixbridge train prior --data DATASET -o {path}`"
    table = read_record(path, format=PRIOR_FORMAT, versions=(PRIOR_VERSION,), what="mixbridge prior table",
                        fix=fix, missing=f"{path}: no prior table; {fix}", error=PriorTableError)
    for part in ("family", "role", "overall"):
        if not isinstance(table.get(part), Mapping):
            raise PriorTableError(f"{path}: the prior table has no '{part}' table; {fix}")
    for k in ("gain_db", "pan"):
        if not isinstance(table["overall"].get(k), (int, float)):
            raise PriorTableError(f"{path}: the prior table's overall '{k}' is missing; {fix}")
    return table


def stem_gm_info(folder: str | Path) -> dict[str, dict[str, Any]]:
    """``{stem name: {"kind", "gm_program"}}`` from a stem folder's demo-style ``manifest.json``.

    The manifest of a demo song or a composer excerpt lists ``stems`` with ``file``, ``kind`` and
    ``gm_program``; a folder without one (a user's stems), or one that cannot be read, gives ``{}``.
    """
    path = Path(folder) / "manifest.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    stems = data.get("stems") if isinstance(data, Mapping) else None
    out: dict[str, dict[str, Any]] = {}
    for s in stems if isinstance(stems, list) else ():
        if not isinstance(s, Mapping) or not isinstance(s.get("file") or s.get("name"), str):
            continue
        program = s.get("gm_program")
        out[Path(s.get("file") or s["name"]).stem] = {
            "kind": s.get("kind") if isinstance(s.get("kind"), str) else None,
            "gm_program": int(program) if isinstance(program, int) and 0 <= program <= 127 else None,
        }
    return out


class PriorMixer:
    """Level and pan of each stem from the mean of its GM family (or drum piece, role) in training songs.

    Args:
        table: a fitted table's path (default :data:`DEFAULT_TABLE`) or the table itself (a dict as
            :func:`fit_prior` returns).
        common_lufs: the loudness every stem is first brought to, LUFS; None (default): the mean of the
            non-silent stems' loudness (the master sets the final level either way).

    Raises:
        PriorTableError: a missing or bad table (see :func:`load_prior_table`).
    """

    name = "prior"

    def __init__(self, table: str | Path | Mapping[str, Any] | None = None, common_lufs: float | None = None) -> None:
        if isinstance(table, Mapping):
            self.table = read_record(table, format=PRIOR_FORMAT, versions=(PRIOR_VERSION,),
                                     what="mixbridge prior table", error=PriorTableError)
        else:
            self.table = load_prior_table(DEFAULT_TABLE if table is None else table)
        self.common_lufs = None if common_lufs is None else float(common_lufs)

    def lookup(self, key: str | None, role: str | None, name: str) -> tuple[float, float, str, str | None]:
        """``(gain_db, pan, source, notice)`` for a stem: its key's entry, else its role's, else overall.

        ``source`` is ``"family"``, ``"role"`` or ``"overall"``; ``notice`` says why a fallback was taken.
        """
        fam, roles = self.table["family"], self.table["role"]
        if key is not None and key in fam:
            e = fam[key]
            return float(e["gain_db"]), float(e["pan"]), "family", None
        why = (f"its key '{key}' is not in the prior table (no training song has it)" if key is not None
               else "no GM program (no manifest.json with gm_program in its folder)")
        if role in roles:
            e = roles[role]
            return (float(e["gain_db"]), float(e["pan"]), "role",
                    f"{name}: {why}; level and pan of role '{role}' (n={e.get('n', '?')})")
        e = self.table["overall"]
        return (float(e["gain_db"]), float(e["pan"]), "overall",
                f"{name}: {why}, and role '{role}' is not in the table either; the overall mean level and pan")

    def stem_keys(self, stems: StemSet) -> list[tuple[str | None, str | None]]:
        """``(key, role)`` of each stem: its GM family or drum-piece key (:func:`track_key`, from the
        ``manifest.json`` beside it) and its role (given, else guessed from the name)."""
        folders: dict[Path, dict[str, dict[str, Any]]] = {}
        out: list[tuple[str | None, str | None]] = []
        for s in stems.stems:
            folder = Path(s.path).parent
            if folder not in folders:
                folders[folder] = stem_gm_info(folder)
            info = folders[folder].get(s.name, {})
            role = s.role if s.role in ROLES else guess_role(s.name)
            out.append((track_key(info.get("kind"), info.get("gm_program"), s.name, role), role))
        return out

    def decide(self, stems: StemSet) -> dict[str, Any]:
        """The mixer's decision before rounding: per stem ``lufs``, ``key``, ``source``, ``table_gain_db``,
        ``relative_gain_db`` (the table gain minus its mean over the non-silent stems), ``trim_db``
        (``common_lufs - lufs``), ``gain_db`` (their sum, the total strip gain) and ``pan``; plus
        ``common_lufs`` and ``notes``. Silent stems get ``gain_db`` 0 and ``pan`` 0 (``source`` "silent")."""
        sr = stems.sample_rate
        notes: list[str] = []
        lufs = [integrated_lufs(s.audio, sr) for s in stems.stems]
        live = [x > SILENT_LUFS for x in lufs]
        rows: list[dict[str, Any]] = []
        for s, x, ok, (key, role) in zip(stems.stems, lufs, live, self.stem_keys(stems)):
            if not ok:
                notes.append(f"{s.name}: silent, left at unity, centred, and excluded from the balance")
                rows.append({"name": s.name, "lufs": x, "key": key, "source": "silent", "table_gain_db": 0.0,
                             "pan": 0.0})
                continue
            g, p, source, notice = self.lookup(key, role, s.name)
            if notice:
                notes.append(notice)
            rows.append({"name": s.name, "lufs": x, "key": key, "source": source, "table_gain_db": g, "pan": p})
        live_lufs = [x for x, ok in zip(lufs, live) if ok]
        common = self.common_lufs if self.common_lufs is not None else (
            float(np.mean(live_lufs)) if live_lufs else SILENT_LUFS)
        mean_gain = float(np.mean([r["table_gain_db"] for r, ok in zip(rows, live) if ok])) if live_lufs else 0.0
        for r, ok in zip(rows, live):
            r["relative_gain_db"] = r["table_gain_db"] - mean_gain if ok else 0.0
            r["trim_db"] = common - r["lufs"] if ok else 0.0
            r["gain_db"] = r["trim_db"] + r["relative_gain_db"]
        return {"common_lufs": common, "tracks": rows, "notes": notes}

    def __call__(self, stems: StemSet, *, seed: int = 0, target_lufs: float = -14.0,
                 source_base: Path | None = None) -> Session:
        """The session of ``stems``: strip gain ``common_lufs - lufs_i + table gain - mean`` (via
        :func:`~mixbridge.models.mix_session.split_gain`) and the table's pan per stem (rounded to
        :data:`PAN_DECIMALS`); the master at its defaults aiming at ``target_lufs``. The decision
        (:meth:`decide`) is kept in the provenance (``prior``), the fallbacks in ``mixer_notes``.
        ``seed`` is recorded only (the mixer is deterministic)."""
        d = self.decide(stems)
        notes = list(d["notes"])
        params: list[dict] = []
        for r in d["tracks"]:
            if r["source"] == "silent":
                params.append({})
                continue
            p = split_gain(r["gain_db"], notes, r["name"])
            p["pan"] = {"pan": round(r["pan"], PAN_DECIMALS)}
            params.append(p)
        prov = {"common_lufs": d["common_lufs"], "table": self.table.get("data", {}).get("root"),
                "table_split": self.table.get("split"), "table_fitted_utc": self.table.get("fitted_utc"),
                "tracks": {r["name"]: {k: r[k] for k in ("key", "source", "lufs", "relative_gain_db", "gain_db",
                                                         "pan")} for r in d["tracks"]}}
        return build_session(stems, self.name, params, master_defaults(target_lufs), seed, source_base,
                             {"mixer_notes": notes, "prior": prov,
                              "roles": {s.name: (s.role if s.role in ROLES else guess_role(s.name))
                                        for s in stems.stems}})


def add_prior_command(tsub) -> None:
    """Add ``prior`` to the ``mixbridge train`` subparsers ``tsub``:
    ``mixbridge train prior --data DATASET -o models/mixers/prior.json``."""
    from mixbridge.cli_options import add_output

    p = tsub.add_parser(
        "prior", help="fit the prior mixer's table (mean level and pan per GM family) on a composer dataset",
        description=("Average the composer dataset's labels (relative level in dB, pan) over its training "
                     "songs per GM family (program // 8) and drum kit piece, per role and overall, and write "
                     "the table the `prior` mixer reads (models/mixers/prior.json by default location)."))
    p.add_argument("--data", required=True, metavar="DATASET", help="a composer dataset (mixbridge datagen composer)")
    add_output(p, metavar="TABLE_JSON", help="the table to write (atomically), e.g. models/mixers/prior.json")
    p.set_defaults(func=_train_prior, command="train prior")


def _train_prior(args) -> int:
    t = fit_prior(args.data, args.output)
    c = t["counts"]
    print(f"wrote {args.output}: {c['keys']} family/drum keys, {c['roles']} roles from {c['tracks']} tracks of "
          f"{c['excerpts']} excerpts of {c['songs']} training songs ({c['tracks_without_key']} tracks without a key)")
    return 0


__all__ = ["PriorMixer", "fit_prior", "fit_prior_table", "load_prior_table", "add_prior_command", "stem_gm_info",
           "track_key", "gm_family_key", "drum_key", "GM_FAMILIES", "PriorTableError", "PriorFitError",
           "DEFAULT_TABLE"]
