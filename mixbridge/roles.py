"""The mixing roles a stem can have: one vocabulary for mixers, dataset layouts and the demo.

A role says what a stem is to a mix engineer (its level, pan and EQ habits), not
which instrument plays it: ``kick`` ... ``percussion`` are the pieces of a
multi-miked drum kit; ``lead`` is whatever carries the melody (a voice, a
saxophone, a synth lead); ``other`` is everything else. The knowledge-based mixer
(:mod:`mixbridge.models.mixers`), the dataset layouts
(:mod:`mixbridge.plugins.layouts`) and the demo builder
(:mod:`mixbridge.plugins.datagen.demo`) all draw their roles from :data:`ROLES`.
"""
from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import MixbridgeError

#: Every role, drum pieces first, in the order mixers and reports list them.
ROLES: tuple[str, ...] = ("kick", "snare", "hihat", "toms", "cymbals", "percussion", "bass", "guitar", "keys",
                          "lead", "pad", "strings", "brass", "other")


#: Whole-word keywords of a stem name -> role, first match wins. Phrases of two words come
#: first ("bass drum" is a kick, not a bass); ``strings`` comes before ``synth`` so that
#: ``synth_strings`` is strings. A word also matches without a trailing ``s`` (``toms``, ``keys``).
ROLE_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("bass drum", "kick"), ("hi hat", "hihat"), ("kick", "kick"), ("bd", "kick"), ("bassdrum", "kick"),
    ("snare", "snare"), ("sd", "snare"), ("snr", "snare"), ("hihat", "hihat"), ("hh", "hihat"), ("hat", "hihat"),
    ("tom", "toms"), ("overhead", "cymbals"), ("oh", "cymbals"), ("cymbal", "cymbals"), ("crash", "cymbals"),
    ("ride", "cymbals"), ("room", "percussion"), ("drum", "percussion"), ("perc", "percussion"),
    ("percussion", "percussion"), ("shaker", "percussion"), ("tambourine", "percussion"), ("tamb", "percussion"),
    ("conga", "percussion"), ("bongo", "percussion"), ("clap", "percussion"), ("cowbell", "percussion"),
    ("bass", "bass"), ("vocal", "lead"), ("vox", "lead"), ("voice", "lead"), ("singer", "lead"), ("lead", "lead"),
    ("melody", "lead"), ("solo", "lead"), ("guitar", "guitar"), ("gtr", "guitar"), ("string", "strings"),
    ("violin", "strings"), ("viola", "strings"), ("cello", "strings"), ("piano", "keys"), ("key", "keys"),
    ("organ", "keys"), ("rhodes", "keys"), ("synth", "keys"), ("pad", "pad"), ("brass", "brass"),
    ("trumpet", "brass"), ("trombone", "brass"), ("horn", "brass"), ("sax", "brass"),
)


class RoleError(ValueError, MixbridgeError):
    """A role that is not one of :data:`ROLES` (in ``roles.json`` or given by a caller)."""


def name_words(name: str) -> list[str]:
    """The lower-case words of a stem name: split at case changes, digits and punctuation.

    ``"LeadVox_02"`` -> ``["lead", "vox"]``; ``"OH_L"`` -> ``["oh", "l"]``.
    """
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)
    return [w for w in re.split(r"[^a-z]+", spaced.lower()) if w]


def guess_role_word(name: str) -> tuple[str, str | None]:
    """``(role, keyword)`` guessed from the whole words of ``name``; ``("other", None)`` when none matches.

    Only whole words count (:data:`ROLE_KEYWORDS`): ``bassoon`` is not a bass, ``tomatoes`` not toms.
    """
    words = name_words(name)
    singles = set(words) | {w[:-1] for w in words if len(w) > 3 and w.endswith("s")}
    phrase = f" {' '.join(words)} "
    for key, role in ROLE_KEYWORDS:
        if (f" {key} " in phrase) if " " in key else (key in singles):
            return role, key
    return "other", None


def guess_role(name: str) -> str:
    """The role guessed from the whole words of a stem name or instrument label (``other`` if none)."""
    return guess_role_word(name)[0]


def check_role(role: Any, where: str) -> str:
    """``role`` if it is one of :data:`ROLES`.

    Raises:
        RoleError: naming ``where``, the value, the closest role and every known role.
    """
    if isinstance(role, str) and role in ROLES:
        return role
    close = difflib.get_close_matches(str(role).lower(), ROLES, n=1, cutoff=0.5)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise RoleError(f"{where}: {role!r} is not a role; {hint}use one of {', '.join(ROLES)}")


def read_roles_json(path: str | Path) -> dict[str, str]:
    """``{stem name: role}`` from a ``roles.json`` file, every role checked against :data:`ROLES`.

    Raises:
        RoleError: the file is not a JSON object of strings, or names an unknown role.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise RoleError(f"{path}: cannot read it as JSON ({e}); write {{\"stem name\": \"role\"}}") from e
    if not isinstance(data, dict):
        raise RoleError(f"{path}: expected a JSON object {{\"stem name\": \"role\"}}, got {type(data).__name__}")
    return {str(k): check_role(v, f"{path} stem {k!r}") for k, v in data.items()}


def roles_from_manifest(folder: str | Path) -> dict[str, str]:
    """Roles given for a stem folder: its ``roles.json`` if there is one, else the roles recorded
    by ``mixbridge demo build`` in the folder's (or its parent's) ``manifest.json``.

    Raises:
        RoleError: ``roles.json`` names an unknown role (see :func:`read_roles_json`).
    """
    folder = Path(folder)
    if (folder / "roles.json").exists():
        return read_roles_json(folder / "roles.json")
    roles: dict[str, str] = {}
    for manifest in (folder / "manifest.json", folder.parent / "manifest.json"):
        if not manifest.exists():
            continue
        try:
            data = json.loads(manifest.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        _walk_manifest(data, manifest, folder, roles)
        if roles:
            break
    return roles


def _walk_manifest(node: Any, manifest: Path, folder: Path, roles: dict[str, str]) -> None:
    if isinstance(node, dict):
        role = node.get("role")
        ref = node.get("path") or node.get("file") or node.get("name")
        if isinstance(role, str) and isinstance(ref, str) and role in ROLES:
            p = Path(ref)
            if p.suffix and ((manifest.parent / p).parent.resolve() == folder.resolve()
                             or p.parent == Path(".") and manifest.parent.resolve() == folder.resolve()):
                roles[p.stem] = role
        for v in node.values():
            _walk_manifest(v, manifest, folder, roles)
    elif isinstance(node, list):
        for v in node:
            _walk_manifest(v, manifest, folder, roles)


def assign_roles(stems: Iterable[Any]) -> list[str]:
    """Give every stem without a known role the role guessed from its name; one notice per guess.

    ``stems`` are :class:`~mixbridge.audio.Stem` (``name``, ``role``); their ``role`` is set in place.
    Returns the notices, e.g. ``"'kick_in': role 'kick' guessed from the word 'kick' of its name"``.
    """
    notices = []
    for s in stems:
        if s.role in ROLES:
            continue
        role, key = guess_role_word(s.name)
        s.role = role
        if key is None:
            notices.append(f"'{s.name}': no role given and none in its name; mixed as 'other' "
                           "(set its role in roles.json in the stem folder)")
        else:
            notices.append(f"'{s.name}': role '{role}' guessed from the word '{key}' of its name "
                           "(set it in roles.json to choose)")
    return notices
