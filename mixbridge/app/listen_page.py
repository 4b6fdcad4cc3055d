"""``mixbridge listen build``: a self-contained listening-test page (MUSHRA or APE style) from folders of mixes.

Each stimulus folder is one *condition* (a mixer, a version); its *items* (songs) are matched by name
across the conditions (:func:`find_items`): ``DIR/<item>/master.wav`` (an ``automix``/``master`` output
folder; ``mix.wav`` when it has no master; a composer dataset excerpt's ``target/mix.wav``), or
``DIR/<item>.wav`` (``.flac`` too). For every item the same excerpt (the loudest ``excerpt_s`` window of the
reference, or of the first condition without one) is read from every condition, given 10 ms raised-cosine
fades and loudness-normalised to ``lufs`` (:mod:`mixbridge.app.listen_stimuli`), and written as 16-bit WAV into
``PAGE_DIR/stimuli/`` under opaque names (the file name does not tell the condition). MUSHRA (ITU-R
BS.1534-3) adds the open reference, a hidden reference (a copy of it among the conditions) and, with
``anchor``, the low-pass anchor (:func:`lowpass_anchor`, 3.5 kHz). ``config.json`` lists the conditions,
the items, every file with its SHA-256 and the loudness figures; ``index.html``, ``listen.js`` and
``listen.css`` (package data, ``listen_assets/``, no framework, no network resource) run the test from any
static server. The order of the trials and of the conditions within each trial is shuffled per listener
by the page with a seed derived from the listener id (:func:`mixbridge.app.listen_order.listener_orders` is
the same shuffle in Python, so a test can re-derive what a listener was shown).

The page is staged in a temporary sibling folder and swapped in whole; an existing ``PAGE_DIR`` is replaced
only when it is an earlier listening page without collected results.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from mixbridge.app.listen_stimuli import (
    ANCHOR_CUTOFF_HZ,
    ListenInputError,
    fade,
    loudest_start_s,
    lowpass_anchor,
    normalise,
    read_excerpts,
)
from mixbridge.errors import RecordFormatError

#: ``config.json``'s ``format`` and the versions this mixbridge reads.
PAGE_FORMAT = "mixbridge-listen-page"
PAGE_VERSIONS = (1,)
STYLES = ("mushra", "ape")
#: The files an item folder may hold, in order of preference: ``automix``/``master`` outputs, then a composer
#: dataset excerpt's target mix (``mixbridge datagen composer``: ``excerpts/<name>/target/mix.wav``).
STIMULUS_FILES = ("master.wav", "mix.wav", "target/mix.wav")
#: Suffixes of an item given as a file (``DIR/<item>.wav``).
ITEM_SUFFIXES = (".wav", ".flac")
#: Names the page gives the hidden reference and the anchor (a condition folder may not use them).
HIDDEN_REFERENCE = "reference"
ANCHOR = "anchor35"
#: The asset files copied into every page (``mixbridge/app/listen_assets``).
ASSET_FILES = ("index.html", "listen.js", "listen.css")
RESULTS_FILE = "results.jsonl"
#: Loudness range the page accepts as ``--lufs`` (LUFS): quieter is below typical listening, louder clips 16 bits.
LUFS_RANGE = (-40.0, -10.0)


@dataclass(frozen=True)
class Condition:
    """One condition of the test: its ``name`` (shown nowhere to the listener) and its stimulus ``folder``."""

    name: str
    folder: Path


def parse_condition(spec: str) -> Condition:
    """``NAME=DIR`` or ``DIR`` (the name is the folder's name) as a :class:`Condition`.

    Raises:
        ListenInputError: an empty name or a folder that does not exist.
    """
    name, sep, folder = spec.partition("=")
    if not sep:
        folder, name = spec, Path(spec.rstrip("/")).name
    if not name or any(c in name for c in "/\\\"<>"):
        raise ListenInputError(f"--stimuli {spec!r}: condition name {name!r} is empty or holds / \\ \" < >; "
                               "give NAME=DIR with a plain name")
    path = Path(folder)
    if not path.is_dir():
        raise ListenInputError(f"--stimuli {spec!r}: {path} is not a folder; give a folder of item folders "
                               f"(<item>/{STIMULUS_FILES[0]}) or item files (<item>.wav)")
    return Condition(name, path)


def find_items(folder: str | Path, file: str | None = None) -> dict[str, Path]:
    """``{item name: audio file}`` of one condition folder (module docstring for the layout); ``file`` names the
    one file to take from each item folder (default: the first of :data:`STIMULUS_FILES` it holds).

    Hidden entries are ignored. Raises:
        ListenInputError: an item given both as a folder and as a file, or a folder with no item.
    """
    folder = Path(folder)
    items: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        found = None
        if p.is_dir():
            found = next((p / f for f in ((file,) if file else STIMULUS_FILES) if (p / f).is_file()), None)
            name = p.name
        elif p.suffix.lower() in ITEM_SUFFIXES:
            found, name = p, p.stem
        if found is None:
            continue
        if name in items:
            raise ListenInputError(f"{folder}: item {name!r} is given twice ({items[name].relative_to(folder)} and "
                                   f"{found.relative_to(folder)}); keep one of them")
        items[name] = found
    if not items:
        raise ListenInputError(f"{folder}: no items; put one folder per song holding "
                               f"{file or ' or '.join(STIMULUS_FILES)} "
                               f"(an automix output), or one <song>.wav per song, into it")
    return items


def match_items(conditions: list[Condition], reference: Path | None,
                file: str | None = None) -> tuple[list[str], dict[str, dict[str, Path]]]:
    """The items of the conditions, sorted, and ``{condition: {item: file}}`` (the reference under
    :data:`HIDDEN_REFERENCE`). Every condition must hold every item any of them holds; the reference must hold
    them too and may hold more (a whole dataset). ``file``: :func:`find_items`'s, for the conditions only.

    Raises:
        ListenInputError: an item missing from a condition or the reference (named, with the folder and the fix).
    """
    found = {c.name: find_items(c.folder, file) for c in conditions}
    folders = {c.name: c.folder for c in conditions}
    every = sorted(set().union(*found.values()))
    if reference is not None:
        found[HIDDEN_REFERENCE] = find_items(reference)
        folders[HIDDEN_REFERENCE] = reference
    for name, items in found.items():
        missing = [i for i in every if i not in items]
        if missing:
            others = [n for n in found if missing[0] in found[n]]
            raise ListenInputError(
                f"condition {name!r} ({folders[name]}) has no item {missing[0]!r}"
                f"{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''}, which {', '.join(others)} "
                f"hold; every condition must hold every item: add {missing[0]}/{STIMULUS_FILES[0]} there or "
                "remove the item from the other folders")
    return every, {name: {i: items[i] for i in every} for name, items in found.items()}


def _check_options(style: str, reference, anchor: bool, items: int | None, lufs: float, excerpt_s: float,
                   conditions: list[Condition]) -> None:
    if style not in STYLES:
        raise ListenInputError(f"--style {style!r}: unknown; give one of {', '.join(STYLES)}")
    if style == "mushra" and reference is None:
        raise ListenInputError("--style mushra needs --reference DIR (the open and the hidden reference, "
                               "ITU-R BS.1534-3); give it, or use --style ape")
    if anchor and reference is None:
        raise ListenInputError("--anchor low-passes the reference: give --reference DIR too")
    if not conditions:
        raise ListenInputError("no --stimuli: give at least one condition folder")
    names = [c.name for c in conditions]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise ListenInputError(f"--stimuli: condition name {dup!r} is given twice; name them NAME=DIR")
    for n in names:
        if n in (HIDDEN_REFERENCE, ANCHOR):
            raise ListenInputError(f"--stimuli: the name {n!r} is the page's own (hidden reference or anchor); "
                                   "rename the condition with NAME=DIR")
    if len(names) + (reference is not None) + anchor < 2:
        raise ListenInputError("one condition and nothing to compare it with: give two --stimuli folders or a "
                               "--reference")
    if items is not None and items < 1:
        raise ListenInputError(f"--items {items}: give at least 1")
    if not LUFS_RANGE[0] <= lufs <= LUFS_RANGE[1]:
        raise ListenInputError(f"--lufs {lufs:g}: outside {LUFS_RANGE[0]:g}..{LUFS_RANGE[1]:g} LUFS; -23 is EBU R 128")
    if not excerpt_s > 0.5:
        raise ListenInputError(f"--excerpt-s {excerpt_s:g}: give more than 0.5 s")


def build_page(stimuli: list[str], output: str | Path, *, style: str = "mushra", reference: str | Path | None = None,
               anchor: bool = False, items: int | None = None, seed: int = 0, lufs: float = -23.0,
               excerpt_s: float = 10.0, title: str = "Listening test", file: str | None = None) -> dict:
    """Build a listening-test page into ``output`` (module docstring) and return its config.

    Args:
        stimuli: condition folders, ``DIR`` or ``NAME=DIR``. reference: the reference folder (MUSHRA: required).
        style: ``"mushra"`` (one slider per condition, 0..100, open + hidden reference) or ``"ape"`` (all
            conditions on one axis, 0..100). anchor: add the 3.5 kHz low-pass anchor of the reference.
        items: keep this many items, drawn with ``seed`` (default all). seed: item draw, file names, and the
            base of every listener's seed. lufs: loudness of every stimulus (LUFS). excerpt_s: excerpt length (s).
        file: the file to take from every condition's item folders (e.g. ``"mix.wav"`` to compare automix's
            pre-master mixes with a composer dataset's target mixes; default the first of :data:`STIMULUS_FILES`).

    Returns:
        The ``config.json`` written, with ``notices`` (resampling, length cuts).

    Raises:
        ListenInputError: bad options, a missing item, a silent or clipping stimulus, or an ``output`` that is not
            an earlier page, or holds collected results. AudioInputError: an unreadable stimulus.
    """
    from mixbridge.audio import write_audio
    from mixbridge.checksum import sha256_bytes, sha256_file

    conditions = [parse_condition(s) for s in stimuli]
    ref_dir = None if reference is None else Path(reference)
    _check_options(style, ref_dir, anchor, items, lufs, excerpt_s, conditions)
    if ref_dir is not None and not ref_dir.is_dir():
        raise ListenInputError(f"--reference {ref_dir}: not a folder; give a folder laid out as the --stimuli ones")
    output = Path(output)
    _check_output(output)
    names, found = match_items(conditions, ref_dir, file)
    rng = np.random.default_rng(seed)
    if items is not None and items < len(names):
        names = sorted(rng.choice(names, size=items, replace=False).tolist())
    cond_names = [c.name for c in conditions] + ([HIDDEN_REFERENCE] if ref_dir is not None else []) + \
        ([ANCHOR] if anchor else [])
    notices: list[str] = []
    output.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{output.name}.listen-", dir=output.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(stage, 0o777 & ~umask)  # mkdtemp makes it 0700; a page folder is a normal folder
        (stage / "stimuli").mkdir()
        item_rows: list[dict] = []
        rate: int | None = None
        for k, item in enumerate(names):
            basis = HIDDEN_REFERENCE if ref_dir is not None else conditions[0].name
            audio, rate, start_s = read_excerpts({c: found[c][item] for c in found}, basis, item, excerpt_s, rate,
                                                  notices)
            if anchor:
                audio[ANCHOR] = lowpass_anchor(audio[HIDDEN_REFERENCE], rate)
            n = audio[basis].shape[1]
            row: dict = {"name": item, "start_s": start_s, "duration_s": n / rate, "stimuli": {}}
            keys = cond_names + (["open_reference"] if style == "mushra" else [])
            tokens = {key: sha256_bytes(f"{seed}:{item}:{key}".encode(), prefixed=False)[:10] for key in keys}
            for key in keys:
                cond = HIDDEN_REFERENCE if key == "open_reference" else key
                x = fade(audio[cond], rate)
                x, before, gain_db = normalise(x, rate, lufs, f"item {item!r}, condition {cond!r}")
                rel = f"stimuli/{k:02d}-{tokens[key]}.wav"
                write_audio(stage / rel, x, rate, subtype="PCM_16")
                source = None if cond == ANCHOR else str(found[cond][item])
                entry = {"file": rel, "sha256": sha256_file(stage / rel), "source": source,
                         "source_lufs": round(before, 3), "gain_db": round(gain_db, 3)}
                if key == "open_reference":
                    row["reference"] = entry
                else:
                    row["stimuli"][key] = entry
            item_rows.append(row)
        config = {
            "format": PAGE_FORMAT, "version": PAGE_VERSIONS[-1], "title": title, "style": style,
            "seed": int(seed), "lufs": float(lufs), "excerpt_s": float(excerpt_s), "sample_rate": int(rate or 0),
            "anchor_cutoff_hz": ANCHOR_CUTOFF_HZ if anchor else None,
            "conditions": [{"name": c.name, "source": str(c.folder), "role": "condition"} for c in conditions]
            + ([{"name": HIDDEN_REFERENCE, "source": str(ref_dir), "role": "hidden_reference"}] if ref_dir else [])
            + ([{"name": ANCHOR, "source": None, "role": "anchor"}] if anchor else []),
            "items": item_rows, "training_item": item_rows[0]["name"], "scale": [0, 100],
        }
        config["page_id"] = sha256_bytes(json.dumps(config, sort_keys=True).encode(), prefixed=False)[:16]
        (stage / "config.json").write_text(json.dumps(config, indent=1) + "\n")
        assets = resources.files("mixbridge.app") / "listen_assets"
        for name in ASSET_FILES:
            (stage / name).write_bytes((assets / name).read_bytes())
        _swap_in(stage, output)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    config["notices"] = notices
    return config


def _check_output(output: Path) -> None:
    """Refuse an ``output`` that is a file, a folder that is not an earlier page, or one that holds results."""
    if output.exists() and not output.is_dir():
        raise ListenInputError(f"-o {output}: a file is in the way; give a folder path")
    if output.is_dir() and any(output.iterdir()):
        if not (output / "config.json").is_file():
            raise ListenInputError(f"-o {output}: a folder that is not a listening page holds files; give a new or "
                                   "empty folder (an earlier page is replaced)")
        if (output / RESULTS_FILE).exists():
            raise ListenInputError(f"-o {output}: holds collected ratings ({RESULTS_FILE}); move them away first or "
                                   "build into another folder")


def _swap_in(stage: Path, output: Path) -> None:
    """Replace ``output`` by ``stage`` (two renames; the old page is removed after)."""
    old = None
    if output.exists():
        old = output.with_name(f".{output.name}.old-{stage.name[-8:]}")
        output.rename(old)
    stage.rename(output)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def read_page_config(page_dir: str | Path) -> dict:
    """A page's ``config.json`` (:data:`PAGE_FORMAT`).

    Raises:
        ListenPageError: not a page, unreadable, or of another version.
    """
    from mixbridge.records import read_record

    path = Path(page_dir) / "config.json"
    return read_record(path, format=PAGE_FORMAT, versions=PAGE_VERSIONS, what="mixbridge listening page",
                       missing=f"{page_dir}: not a listening page (no config.json); make one with "
                               "`mixbridge listen build --stimuli DIR_A DIR_B -o PAGE_DIR`",
                       fix="rebuild it with this mixbridge's `listen build`", error=ListenPageError)


class ListenPageError(RecordFormatError):
    """A page folder without a readable ``config.json`` of a supported version."""


__all__ = ["build_page", "read_page_config", "find_items", "match_items", "parse_condition", "lowpass_anchor",
           "loudest_start_s", "ListenInputError", "ListenPageError", "Condition"]
