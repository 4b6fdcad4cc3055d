"""The ``mixbridge plugins`` command group: ``list``, ``inspect PLUGIN``, ``calibrate PLUGIN``, ``check TARGET``.

Thin handlers over :mod:`.discovery`, :mod:`.vst`, :mod:`.pluginmap` and :mod:`.contract`; this
module imports only the standard library and :mod:`mixbridge.cli_options` at top level, and the
torch-free registries in :func:`register` (the CLI contract of :mod:`mixbridge.app.cli`). Options
follow the shared vocabulary (``-o/--output``); exit status 0 done, 1 a check failed, 2 a user error.
"""
from __future__ import annotations

import argparse
import json
import sys

from mixbridge.cli_options import EXIT_FAILED, EXIT_OK, EXIT_USAGE, add_output, add_timeout_s


def _add_search_path(parser: argparse.ArgumentParser) -> None:
    """``--path DIR`` (repeatable, dest ``path``): extra folders to search for plugins."""
    parser.add_argument("--path", action="append", default=[], metavar="DIR",
                        help="extra folder to search for plugins (repeatable)")


def _add_probe_timeout(parser: argparse.ArgumentParser) -> None:
    """``--timeout-s SECONDS``: the limit of the sandboxed load of one plugin (default None:
    :func:`.probe.check_timeout_s` takes ``$MIXBRIDGE_PLUGIN_TIMEOUT_S`` or :data:`.probe.DEFAULT_TIMEOUT_S`;
    :mod:`.probe` imports only the standard library and :mod:`mixbridge.errors`)."""
    from .probe import DEFAULT_TIMEOUT_S, TIMEOUT_ENV

    add_timeout_s(parser, default=None,
                  help="seconds one plugin may take to load in the sandbox process before it is killed and "
                       f"reported as hanging (default ${TIMEOUT_ENV}, else {DEFAULT_TIMEOUT_S:g})")


def _plugin_command(sub, name: str, func, **kwargs) -> argparse.ArgumentParser:
    """A subcommand on one plugin: the ``plugin`` argument, ``--path``, ``--timeout-s`` and its handler ``func``."""
    parser = sub.add_parser(name, **kwargs)
    parser.add_argument("plugin", help="plugin name (e.g. ZamEQ2) or path to a .so/.vst3")
    _add_search_path(parser)
    _add_probe_timeout(parser)
    parser.set_defaults(func=func)
    return parser


def register(subparsers) -> None:
    """Add ``mixbridge plugins list|inspect|calibrate|check`` to ``subparsers``.

    The ``check`` help lists the contract's implementations (:func:`.contract.implementation_names`,
    lazy ones included) and the shipped maps (:func:`.map_loader.builtin_map_names`) from their
    registries; neither imports pedalboard, DawDreamer or torch.
    """
    from .contract import ROW_GROUPS, implementation_names
    from .map_laws import CONVERSIONS
    from .map_loader import builtin_map_names
    from .pluginmap import MAP_PROCESSORS

    p = subparsers.add_parser(
        "plugins", help="list, inspect, calibrate and check (against the schema) installed VST plugins")
    sub = p.add_subparsers(dest="plugins_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), EXIT_USAGE)[1])

    pl = sub.add_parser("list", help="installed plugins on the search paths, with format and I/O")
    pl.add_argument("pattern", nargs="?", default="", help="only names containing this text (case-insensitive)")
    pl.add_argument("--no-probe", action="store_true", help="do not load each plugin to read its I/O (fast)")
    pl.add_argument("--rescan", action="store_true",
                    help="load every plugin again instead of using the cached results (cached per file size "
                         "and mtime)")
    _add_search_path(pl)
    _add_probe_timeout(pl)
    pl.set_defaults(func=_list)

    pi = _plugin_command(sub, "inspect", _inspect,
                         help="every parameter of one plugin: name, label, default, range of the display")
    pi.add_argument("--json", action="store_true", help="print JSON instead of a table")

    pc = _plugin_command(
        sub, "calibrate", _calibrate,
        help="measure a plugin's value curves (sweep normalised values, parse the display text)",
        description="Measure every parameter's curve normalised 0..1 <-> display value and write it as JSON. "
        "If MAP.json exists and is a plugin map using this plugin, its curves and identity are updated in place "
        "(stages kept); with --processor, a whole plugin map is written from --set/--fixed bindings and checked "
        "(it must load: every schema parameter driven or handled elsewhere, its whole range reachable). A map's "
        "fresh_instance_per_call and deterministic are measured by rendering through it (does the plugin keep "
        "state from one render to the next; do fresh instances agree). Otherwise a calibration document is "
        "written.",
    )
    add_output(pc, help="file to write (default: print to stdout)", metavar="MAP.json", required=False, old=())
    pc.add_argument("--points", type=int, default=None, help="sweep points before refinement (default 101)")
    pc.add_argument("--continuous", action="append", default=[], metavar="PARAM",
                    help="a parameter known to be a continuous knob whose display is too coarse to show values "
                         "between its sweep steps (calibration probes between them and keeps a knob continuous "
                         "wherever it shows new values there); repeatable")
    pc.add_argument("--processor", choices=sorted(MAP_PROCESSORS), default=None,
                    help="write a plugin map for this schema processor (with --set, --fixed, --range, "
                         "--handled-elsewhere) instead of a calibration document")
    pc.add_argument("--set", action="append", default=[], metavar="SCHEMA=PARAM[:CONVERT]", dest="sets",
                    help="--processor: schema parameter SCHEMA drives plugin parameter PARAM, optionally through a "
                         f"named conversion ({', '.join(CONVERSIONS)}); repeatable, e.g. --set threshold_db=al")
    pc.add_argument("--fixed", action="append", default=[], metavar="PARAM=VALUE",
                    help="--processor: plugin parameter PARAM held at VALUE (display value, or a choice's text); "
                         "repeatable, e.g. --fixed cm=Down")
    pc.add_argument("--range", action="append", default=[], metavar="SCHEMA=LO:HI", dest="ranges",
                    help="--processor: the part of SCHEMA's range the plugin renders (values outside are refused; "
                         "datagen samples inside it)")
    pc.add_argument("--handled-elsewhere", action="append", default=[], metavar="SCHEMA=WHY",
                    help="--processor: a schema parameter the plugin does not carry, and who applies it")

    pk = sub.add_parser(
        "check",
        help="measure an implementation, plugin map or plugin against the schema's meaning (the semantic contract)",
        description="Render test signals through TARGET and print the measured-vs-schema table: compressor static "
        "curve and 63 % time constants, EQ magnitude vs the RBJ design, limiter true peak, reverb RT60 and wet level, "
        f"pan position. TARGET is an implementation ({', '.join(implementation_names(include_lazy=True))}), a "
        f"shipped plugin map ({', '.join(builtin_map_names())}), a map .json path, or a plugin name a shipped map "
        "uses (e.g. ZamComp). Exit 0 when every row passes or is refused with a stated range, 1 when a row fails, "
        "2 for an unknown TARGET or row group.",
    )
    pk.add_argument("target", metavar="MAP_OR_IMPLEMENTATION",
                    help="implementation, map name, map .json or plugin name")
    pk.add_argument("--sample-rate", type=int, default=48000, metavar="HZ",
                    help="sample rate of the test signals, Hz (default 48000)")
    pk.add_argument("--rows", default=None, metavar="GROUPS",
                    help=f"comma-separated row groups to measure: {','.join(ROW_GROUPS)} (default: all supported)")
    pk.set_defaults(func=_check)


def _silence_vst3_teardown(loaded_format: str) -> None:
    """DPF VST3 modules print "DPF warning: asked to delete component..." from C++ destructors
    after Python has finished; in the CLI process, point fd 2 at /dev/null at exit when a VST3 was loaded."""
    if loaded_format != "vst3":
        return
    import atexit
    import os

    def _quiet() -> None:
        sys.stderr.flush()
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 2)

    atexit.register(_quiet)


def _list(args: argparse.Namespace) -> int:
    """One row per plugin: name, format, I/O (read in the sandboxed probe) or how it failed, path."""
    from .discovery import find_plugins

    found = [pf for pf in find_plugins(args.path) if args.pattern.lower() in pf.name.lower()]
    if not found:
        matching = f" matching {args.pattern!r}" if args.pattern else ""
        print(f"no plugins{matching} on the search paths", file=sys.stderr)
        return EXIT_USAGE  # nothing to list: the pattern or the search paths are wrong
    if args.no_probe:
        io = ["-"] * len(found)
        failed = 0
    else:
        from .probe import probe_plugins

        results = probe_plugins(found, args.timeout_s, use_cache=not args.rescan)
        io = [r.summary() for r in results]
        failed = sum(not r.ok for r in results)
    rows = [(pf.name, pf.format, cell, str(pf.path)) for pf, cell in zip(found, io)]
    w = max(len(r[0]) for r in rows)
    wio = max(len(r[2]) for r in rows)
    for name, fmt, cell, path in rows:
        print(f"{name:<{w}}  {fmt:<4}  {cell:<{wio}}  {path}")
    print(f"{len(rows)} plugin(s)" + (f", {failed} failed to load" if failed else ""))
    return EXIT_OK


def _inspect(args: argparse.Namespace) -> int:
    """Every parameter of one plugin, read in the sandboxed probe process (a crash or hang is one error line)."""
    from types import SimpleNamespace

    from .discovery import resolve_plugin
    from .probe import inspect_in_child

    pf = resolve_plugin(args.plugin, args.path)
    doc = inspect_in_child(pf.path, pf.format, args.timeout_s)
    if args.json:
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    rows = [SimpleNamespace(**r) for r in doc["parameters"]]
    print(f"{doc['name']}  ({doc['format']}, {doc['inputs']} in / {doc['outputs']} out, {len(rows)} parameters)  "
          f"{doc['path']}")
    wn = max([len(r.name) for r in rows] + [4])
    print(f"{'#':>3}  {'name':<{wn}}  {'label':<5}  {'default':>8}  {'display':>12}  range (display at 0 .. 1)")
    for r in rows:
        print(f"{r.index:>3}  {r.name:<{wn}}  {r.label:<5}  {r.default_normalised:8.4f}  {r.default_text:>12}  "
              f"{r.text_at_0} .. {r.text_at_1}")
    return EXIT_OK


def _calibrate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mixbridge.atomic import atomic_write_text
    from mixbridge.errors import PluginMapError

    from .map_calibration import (
        DEFAULT_POINTS,
        calibration_dict,
        map_document,
        measure_curves,
        measure_render_state,
        merge_calibration,
        plugin_renderer,
        with_render_state,
    )
    from .pluginmap import MAP_FORMAT, MAP_PROCESSORS, map_from_dict
    from .vst_plugin import open_plugin

    points = args.points if args.points is not None else DEFAULT_POINTS
    if points < 2:
        raise PluginMapError(f"--points {points} is too few; give at least 2 (default {DEFAULT_POINTS})")
    bindings = args.sets or args.fixed or args.ranges or args.handled_elsewhere
    if bindings and not args.processor:
        raise PluginMapError("--set/--fixed/--range/--handled-elsewhere write a plugin map: give --processor "
                             f"({', '.join(sorted(MAP_PROCESSORS))}) too")
    if args.processor and not args.output:
        raise PluginMapError("--processor writes a plugin map: give -o MAP.json")
    lp = open_plugin(args.plugin, plugin_paths=args.path, timeout_s=args.timeout_s)
    _silence_vst3_teardown(lp.format)
    search = [*args.path, str(Path(lp.path).parent)]  # where the map's renders find this plugin again
    curves = measure_curves(lp, points, continuous=args.continuous, render=plugin_renderer(lp))
    doc = calibration_dict(lp, curves, points)
    n_pts = sum(len(c.normalised) for c in curves.values() if hasattr(c, "normalised"))
    choices = [k for k, c in curves.items() if not hasattr(c, "normalised")]
    summary = (f"{lp.name}: {len(curves)} parameter curves ({n_pts} points; {len(curves) - len(choices)} numeric, "
               f"{len(choices)} choices: {', '.join(choices) or 'none'})")
    if not args.output:
        print(json.dumps(doc, indent=1))
        print(summary, file=sys.stderr)
        return EXIT_OK
    out = Path(args.output)
    if args.processor:
        doc = map_document(doc, args.processor, name=out.stem, sets=args.sets, fixed=args.fixed, ranges=args.ranges,
                           handled_elsewhere=args.handled_elsewhere,
                           notes=f"written by `mixbridge plugins calibrate {args.plugin} --processor {args.processor}`")
        pm = map_from_dict(doc, out.stem, out)  # refuse to write a map that does not load (reach, schema coverage)
        # does the plugin keep state from one render to the next (and do fresh instances agree)?
        state = measure_render_state(pm, int(lp.sample_rate), plugin_paths=search)
        doc = with_render_state(doc, state)
        map_from_dict(doc, out.stem, out)
        summary += (f"; plugin map for '{args.processor}' ({len(args.sets)} set, {len(args.fixed)} fixed; "
                    f"{_state_text(state)})")
    elif out.exists():
        try:
            existing = json.loads(out.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise PluginMapError(
                f"{out} exists but is not valid JSON ({e.msg} at line {e.lineno}); move it away") from None
        if existing.get("format") == MAP_FORMAT:
            merged, keys = merge_calibration(existing, doc)
            if not keys:
                raise PluginMapError(f"map {out} uses no plugin named {lp.name}; write the calibration to a new file")
            pm = map_from_dict(merged, out.stem, out)  # refuse to write a map that no longer validates
            state = measure_render_state(pm, int(lp.sample_rate), plugin_paths=search)
            doc = with_render_state(merged, state)
            summary += f"; updated plugins {', '.join(keys)} of map {out} ({_state_text(state)})"
    atomic_write_text(out, json.dumps(doc, indent=1) + "\n")
    print(f"{summary} -> {out}")
    return EXIT_OK


def _state_text(state) -> str:
    """The summary's words for a :class:`~.map_calibration.RenderState`."""
    return (("keeps state from one render to the next, so the host loads a fresh instance per call"
             if state.carries_state else "clears its state between renders")
            + ("" if state.deterministic else "; its renders differ between fresh instances"))


def _check(args: argparse.Namespace) -> int:
    from .contract import run_contract

    rows = [g.strip() for g in args.rows.split(",") if g.strip()] if args.rows else None
    report = run_contract(args.target, sample_rate=args.sample_rate, rows=rows)
    print(report.table())
    return EXIT_OK if report.passed else EXIT_FAILED
