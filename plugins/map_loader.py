"""Plugin map files: the shipped maps, the one map-file reader, loading, and the installed plugin's identity check.

:func:`read_map_json` reads any map file (the host's plugin maps and the bridge's DAW maps
alike) by shipped name (``mixbridge/plugins/maps/[folder/]NAME.json``) or path;
:func:`load_map` builds a validated :class:`~.pluginmap.PluginMap`; :func:`check_identity`
refuses an installed plugin that is not the one a map was measured on (name, parameter
count, I/O, a missing parameter name, or a display range that moved) with
:class:`~mixbridge.errors.PluginMapError`.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from mixbridge.errors import PluginMapError, UnknownNameError

from .map_curves import Curve, parse_display
from .pluginmap import PluginMap, PluginSpec, map_from_dict

#: Display ranges at u=0 and u=1 must agree with the map's curve within this fraction
#: of the span, else the installed plugin is not the one the map was measured on.
IDENTITY_RANGE_TOLERANCE = 1e-3


def builtin_map_names() -> list[str]:
    """Names of the maps shipped in ``mixbridge.plugins.maps``."""
    root = resources.files("mixbridge.plugins.maps")
    return sorted(p.name[: -len(".json")] for p in root.iterdir() if p.name.endswith(".json"))


def read_map_json(name_or_path: str | Path, *, folder: str = "", what: str = "plugin map",
                  error: type[Exception] = PluginMapError, unknown: type[Exception] = UnknownNameError,
                  shipped: Callable[[], list[str]] | None = None) -> tuple[dict, str, Path]:
    """Read a map's JSON by shipped name (``mixbridge/plugins/maps/[folder/]NAME.json``) or by path.

    The one reader of every map file, the host's plugin maps and the bridge's DAW maps alike.

    Returns:
        ``(data, name, path)``.

    Raises:
        ``unknown``: a name that is not shipped (the message lists ``shipped()``).
        ``error``: a file that cannot be read or is not valid JSON (line and column named).
    """
    p = Path(name_or_path)
    if p.suffix == ".json" or p.exists():
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise error(f"cannot read {what} {p}: {e.strerror or e}") from None
        name = p.stem
    else:
        name = str(name_or_path)
        root = resources.files("mixbridge.plugins.maps")
        res = (root.joinpath(folder) if folder else root).joinpath(f"{name}.json")
        if not res.is_file():
            known = ", ".join(shipped()) if shipped else ""
            raise unknown(f"unknown {what} '{name}'; shipped: {known}")
        text = res.read_text(encoding="utf-8")
        p = Path(str(res))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{what} {p}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    return data, name, p


def load_map(name_or_path: str | Path | PluginMap) -> PluginMap:
    """Load a map by shipped name (``"zameq2_x2"``) or by JSON path.

    Raises:
        UnknownNameError: an unknown name; lists the shipped maps.
        PluginMapError: a file that is not valid JSON or fails validation.
    """
    if isinstance(name_or_path, PluginMap):
        return name_or_path
    data, name, p = read_map_json(name_or_path, shipped=builtin_map_names)
    return map_from_dict(data, name, p)


def check_identity(spec: PluginSpec, loaded, where: str = "") -> None:
    """Refuse a loaded plugin that is not the one ``spec`` was measured on.

    ``loaded`` is a :class:`~mixbridge.plugins.vst_plugin.LoadedPlugin`. Compares the
    plugin name, parameter count, input/output channels, that every parameter
    with a curve exists by name, and that each numeric curve's display at u=0
    and u=1 still matches (within :data:`IDENTITY_RANGE_TOLERANCE` of the span).

    Raises:
        PluginMapError: naming the field, both values and the fix (re-calibrate).
    """
    ident = spec.identity
    label = where or f"plugin map entry '{spec.key}'"
    fix = f"re-run `mixbridge plugins calibrate {loaded.path}` and update the map"
    got = {"name": loaded.name, "num_params": len(loaded.param_names()), "inputs": loaded.inputs,
           "outputs": loaded.outputs}
    for fld, val in got.items():
        want = getattr(ident, fld)
        if want != val:
            raise PluginMapError(
                f"{label}: the map was measured on {ident.name} with {fld} = {want}, "
                f"but {loaded.path} has {fld} = {val}; {fix}"
            )
    names = loaded.param_names()
    for pname, curve in spec.curves.items():
        if pname not in names:
            raise PluginMapError(f"{label}: {loaded.path} has no parameter named '{pname}'; {fix}")
        if isinstance(curve, Curve):
            i = names.index(pname)
            original = loaded.get_normalised(i)
            try:
                ends = []
                for u in (curve.normalised[0], curve.normalised[-1]):
                    loaded.set_normalised(i, u)
                    ends.append(parse_display(loaded.display_text(i)))
            finally:
                loaded.set_normalised(i, original)
            span = abs(curve.display[-1] - curve.display[0])
            for want, have in zip((curve.display[0], curve.display[-1]), ends):
                if have is None or abs(have - want) > IDENTITY_RANGE_TOLERANCE * span:
                    raise PluginMapError(
                        f"{label}: '{pname}' of {loaded.path} shows {have} where the map measured {want:g} "
                        f"{curve.unit}; the plugin's range changed; {fix}"
                    )
