"""Finding installed VST2/VST3 plugins on the search paths, and loading them quietly.

Search paths, in order (later duplicates are dropped):

* ``$VST_PATH``, ``$LXVST_PATH``, ``$VST3_PATH`` (colon-separated folder lists),
* ``~/.vst``, ``~/.lxvst``, ``~/.vst3``,
* ``/usr/lib/vst``, ``/usr/lib/lxvst``, ``/usr/lib/vst3``, ``/usr/local/lib/vst``,
  ``/usr/local/lib/lxvst``, ``/usr/local/lib/vst3`` (where Debian and the usual
  Linux installers put them).

A VST2 plugin on Linux is a shared object ``*.so`` (searched recursively, so
``/usr/lib/vst/lsp-plugins/*.so`` is found); a VST3 plugin is a ``*.vst3``
bundle folder (or file). A plugin's *name* is its file name without extension
and without a ``-vst`` suffix (``ZamEQ2-vst.so`` -> ``ZamEQ2``); names match
case-insensitively.

Loading goes through DawDreamer (VST2, as the maps are measured there) or
pedalboard (VST3). Both print loader chatter on the C-level stdout/stderr;
:func:`quiet_fds` silences it around loads so the CLI's output stays readable.
"""
from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from mixbridge.errors import PluginNotFoundError

VST2_SUFFIX = ".so"
VST3_SUFFIX = ".vst3"
ENV_VARS = ("VST_PATH", "LXVST_PATH", "VST3_PATH")
DEFAULT_DIRS = (
    "~/.vst",
    "~/.lxvst",
    "~/.vst3",
    "/usr/lib/vst",
    "/usr/lib/lxvst",
    "/usr/lib/vst3",
    "/usr/local/lib/vst",
    "/usr/local/lib/lxvst",
    "/usr/local/lib/vst3",
)


@dataclass(frozen=True)
class PluginFile:
    """One plugin found on disk: ``name``, ``path`` and ``format`` (``"vst2"`` or ``"vst3"``)."""

    name: str
    path: Path
    format: str


def search_paths(extra: Iterable[str | os.PathLike] | None = None) -> list[Path]:
    """The folders searched for plugins: ``extra`` first, then env vars, then the defaults."""
    dirs: list[Path] = [Path(p).expanduser() for p in (extra or [])]
    for var in ENV_VARS:
        for part in os.environ.get(var, "").split(os.pathsep):
            if part.strip():
                dirs.append(Path(part.strip()).expanduser())
    dirs += [Path(d).expanduser() for d in DEFAULT_DIRS]
    out: list[Path] = []
    for d in dirs:
        if d not in out:
            out.append(d)
    return out


def plugin_name(path: Path) -> str:
    """``ZamEQ2-vst.so`` -> ``ZamEQ2``; ``ZamEQ2.vst3`` -> ``ZamEQ2``."""
    stem = path.name
    for suffix in (VST3_SUFFIX, VST2_SUFFIX):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    for tail in ("-vst2", "-vst", "_vst"):
        if stem.lower().endswith(tail):
            stem = stem[: -len(tail)]
    return stem


def find_plugins(extra_paths: Iterable[str | os.PathLike] | None = None) -> list[PluginFile]:
    """All VST2 (``*.so``) and VST3 (``*.vst3``) plugins on the search paths, sorted by name.

    Folders that do not exist are skipped. Shared objects inside ``.vst3``
    bundles are not listed twice.
    """
    found: dict[Path, PluginFile] = {}
    for root in search_paths(extra_paths):
        if not root.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            here = Path(dirpath)
            for d in list(dirnames):
                if d.endswith(VST3_SUFFIX):
                    p = (here / d).resolve()
                    found.setdefault(p, PluginFile(plugin_name(p), p, "vst3"))
                    dirnames.remove(d)  # do not descend into bundles
            for f in filenames:
                p = (here / f).resolve()
                if f.endswith(VST3_SUFFIX):
                    found.setdefault(p, PluginFile(plugin_name(p), p, "vst3"))
                elif f.endswith(VST2_SUFFIX):
                    found.setdefault(p, PluginFile(plugin_name(p), p, "vst2"))
    return sorted(found.values(), key=lambda pf: (pf.name.lower(), pf.format, str(pf.path)))


def resolve_plugin(
    plugin: str | os.PathLike,
    extra_paths: Iterable[str | os.PathLike] | None = None,
    format: str | None = None,
) -> PluginFile:
    """Find one plugin by path or by name.

    Args:
        plugin: an existing file/bundle path, or a plugin name such as ``"ZamEQ2"``
            (case-insensitive; a ``-vst`` suffix is ignored).
        extra_paths: more folders to search first.
        format: ``"vst2"`` or ``"vst3"`` to pick one when a name exists in both;
            by default VST2 wins (the maps are measured through DawDreamer's VST2 host).

    Raises:
        PluginNotFoundError: nothing matches; the message lists the plugins found
            and the folders searched, and says how to add a folder.
    """
    p = Path(plugin).expanduser()
    if p.exists():
        fmt = "vst3" if p.name.endswith(VST3_SUFFIX) else "vst2"
        return PluginFile(plugin_name(p), p.resolve(), fmt)
    if os.sep in str(plugin) or str(plugin).endswith((VST2_SUFFIX, VST3_SUFFIX)):
        found = find_plugins(extra_paths)
        close = closest_plugins(plugin_name(p), found)
        near = ", ".join(f"{pf.name} ({pf.format}) [in {pf.path.parent}]" for pf in close) or "none named alike"
        raise PluginNotFoundError(
            f"plugin file {plugin} does not exist; give an existing .so/.vst3 path or a plugin name "
            f"({len(found)} plugin(s) found; closest: {near})"
        )
    wanted = plugin_name(Path(str(plugin))).lower()
    candidates = [pf for pf in find_plugins(extra_paths) if pf.name.lower() == wanted]
    if format is not None:
        candidates = [pf for pf in candidates if pf.format == format]
    if not candidates:
        raise plugin_not_found(str(plugin), extra_paths)
    candidates.sort(key=lambda pf: (pf.format != "vst2", str(pf.path)))
    return candidates[0]


#: How many installed plugins a "not found" error names (the closest to the name asked for).
CLOSEST_LIMIT = 5
#: difflib similarity (0..1) a name needs to count as close to the one asked for.
CLOSEST_CUTOFF = 0.5


def closest_plugins(name: str, found: Sequence[PluginFile], limit: int = CLOSEST_LIMIT) -> list[PluginFile]:
    """The installed plugins whose names look most like ``name`` (case-insensitive), best first.

    Names that contain the one asked for, or that it contains, come first (shortest
    first), then :func:`difflib.get_close_matches` (ratio >= :data:`CLOSEST_CUTOFF`). At most
    ``limit`` plugins; empty when nothing is close.
    """
    import difflib

    wanted = plugin_name(Path(str(name))).lower()
    by_name: dict[str, list[PluginFile]] = {}
    for pf in found:
        by_name.setdefault(pf.name.lower(), []).append(pf)
    contains = sorted((n for n in by_name if wanted and (wanted in n or n in wanted)), key=lambda n: (len(n), n))
    similar = difflib.get_close_matches(wanted, list(by_name), n=max(limit, 1) * 2, cutoff=CLOSEST_CUTOFF)
    order: list[str] = []
    for n in contains + similar:
        if n not in order:
            order.append(n)
    out: list[PluginFile] = []
    for n in order:
        out.extend(by_name[n])
    return out[:limit]


def plugin_not_found(
    plugin: str, extra_paths: Iterable[str | os.PathLike] | None = None, reason: str = "is not installed"
) -> PluginNotFoundError:
    """Build the error for a plugin that is missing or fails to load.

    The message names the number of plugins found and the (at most :data:`CLOSEST_LIMIT`)
    installed plugins closest to the name asked for (:func:`closest_plugins`), with their
    folders, then the folders searched and the fix. ``plugin`` may be a name, a path, or
    ``"Name (file, format)"``.
    """
    found = find_plugins(extra_paths)
    searched = ", ".join(str(d) for d in search_paths(extra_paths))
    query = plugin_name(Path(str(plugin).split(" (")[0]))
    close = closest_plugins(query, found)
    if close:
        near = "; ".join(f"{pf.name} ({pf.format}) [in {pf.path.parent}]" for pf in close)
        listing = f"Closest to '{query}' of the {len(found)} plugin(s) found on the search paths: {near}"
    else:
        listing = f"None of the {len(found)} plugin(s) found on the search paths is named like '{query}'"
    return PluginNotFoundError(
        f"plugin '{plugin}' {reason}. {listing}. "
        f"Searched: {searched}. Install it (Debian: zam-plugins, dragonfly-reverb-vst) or add its folder "
        f"to VST_PATH / VST3_PATH (or plugin_paths=...); `mixbridge plugins list` shows every plugin found"
    )


@contextlib.contextmanager
def quiet_fds() -> Iterator[None]:
    """Silence C-level stdout/stderr (file descriptors 1 and 2) inside the block.

    Plugin loaders print chatter ("Attempting to load VST: ...") straight to the
    descriptors, bypassing Python. Python-level output is flushed first.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        saved = [os.dup(1), os.dup(2)]
    except OSError:  # pragma: no cover - no descriptors to redirect
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def import_dawdreamer():
    """Import DawDreamer quietly.

    Raises:
        BackendUnavailableError: DawDreamer is not installed; the message names the fix.
    """
    from mixbridge.errors import BackendUnavailableError

    try:
        with quiet_fds():
            import dawdreamer
    except ImportError:
        raise BackendUnavailableError(
            "the 'vst' backend needs DawDreamer, which is not installed; "
            "run `pip install dawdreamer==0.9.0` (or `pip install mixbridge[vst]`), or use --backend builtin"
        ) from None
    return dawdreamer
