"""The ``mixbridge plugins`` command group: ``list``, ``inspect PLUGIN``, ``calibrate PLUGIN``, ``check TARGET``.

Thin handlers over :mod:`.discovery`, :mod:`.vst`, :mod:`.pluginmap` and :mod:`.contract`; this
module imports only the standard library at top level (the CLI contract of
:mod:`mixbridge.cli`).
"""
from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    p = subparsers.add_parser("plugins", help="list, inspect, calibrate and check (against the schema) installed VST plugins")
    sub = p.add_subparsers(dest="plugins_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    pl = sub.add_parser("list", help="installed plugins on the search paths, with format and I/O")
    pl.add_argument("pattern", nargs="?", default="", help="only names containing this text (case-insensitive)")
    pl.add_argument("--no-probe", action="store_true", help="do not load each plugin to read its I/O (fast)")
    pl.add_argument("--path", action="append", default=[], metavar="DIR", help="extra folder to search (repeatable)")
    pl.set_defaults(func=_list)

    pi = sub.add_parser("inspect", help="every parameter of one plugin: name, label, default, range of the display")
    pi.add_argument("plugin", help="plugin name (e.g. ZamEQ2) or path to a .so/.vst3")
    pi.add_argument("--path", action="append", default=[], metavar="DIR", help="extra folder to search")
    pi.add_argument("--json", action="store_true", help="print JSON instead of a table")
    pi.set_defaults(func=_inspect)

    pc = sub.add_parser(
        "calibrate",
        help="measure a plugin's value curves (sweep normalised values, parse the display text)",
        description="Measure every parameter's curve normalised 0..1 <-> display value and write it as JSON. "
        "If MAP.json exists and is a plugin map using this plugin, its curves and identity are updated in place "
        "(stages kept); otherwise a calibration document is written.",
    )
    pc.add_argument("plugin", help="plugin name or path")
    pc.add_argument("-o", "--output", metavar="MAP.json", help="file to write (default: print to stdout)")
    pc.add_argument("--points", type=int, default=None, help="sweep points before refinement (default 101)")
    pc.add_argument("--path", action="append", default=[], metavar="DIR", help="extra folder to search")
    pc.set_defaults(func=_calibrate)

    pk = sub.add_parser(
        "check",
        help="measure an implementation, plugin map or plugin against the schema's meaning (the semantic contract)",
        description="Render test signals through TARGET and print the measured-vs-schema table: compressor static "
        "curve and 63 %% time constants, EQ magnitude vs the RBJ design, limiter true peak, reverb RT60 and wet level, "
        "pan position. TARGET is an implementation (reference, builtin, vst, live, torch, or one registered later), a "
        "shipped plugin map (e.g. zamcomp), a map .json path, or a plugin name a shipped map uses (e.g. ZamComp). "
        "Exit 0 when every row passes or is refused with a stated range, 1 otherwise.",
    )
    pk.add_argument("target", metavar="MAP_OR_IMPLEMENTATION", help="implementation, map name, map .json or plugin name")
    pk.add_argument("--sample-rate", type=int, default=48000, help="Hz (default 48000)")
    pk.add_argument("--rows", default=None, metavar="GROUPS",
                    help="comma-separated row groups to measure: compressor,eq,limiter,reverb,pan (default: all supported)")
    pk.set_defaults(func=_check)


def _silence_vst3_teardown(loaded_format: str) -> None:
    """DPF VST3 modules print "DPF warning: asked to delete component..." from C++ destructors
    after Python has finished; in the CLI process, point fd 2 at /dev/null at exit when a VST3 was loaded."""
    if loaded_format != "vst3":
        return
    import atexit
    import os

    def _quiet() -> None:
        import sys

        sys.stderr.flush()
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 2)

    atexit.register(_quiet)


def _list(args: argparse.Namespace) -> int:
    from mixbridge.errors import MixbridgeError

    from .discovery import find_plugins

    found = [pf for pf in find_plugins(args.path) if args.pattern.lower() in pf.name.lower()]
    if not found:
        print(f"no plugins{' matching ' + repr(args.pattern) if args.pattern else ''} on the search paths")
        return 1
    rows = []
    for pf in found:
        io = "-"
        if not args.no_probe:
            try:
                from .vst import open_plugin

                lp = open_plugin(pf.path, plugin_paths=args.path)
                io = f"{lp.inputs} in / {lp.outputs} out, {len(lp.param_names())} params"
                _silence_vst3_teardown(lp.format)
            except MixbridgeError as e:
                io = f"fails to load ({type(e).__name__})"
        rows.append((pf.name, pf.format, io, str(pf.path)))
    w = max(len(r[0]) for r in rows)
    wio = max(len(r[2]) for r in rows)
    for name, fmt, io, path in rows:
        print(f"{name:<{w}}  {fmt:<4}  {io:<{wio}}  {path}")
    print(f"{len(rows)} plugin(s)")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from .vst import inspect_plugin, open_plugin

    lp = open_plugin(args.plugin, plugin_paths=args.path)
    _silence_vst3_teardown(lp.format)
    rows = inspect_plugin(lp)
    if args.json:
        print(json.dumps({
            "name": lp.name, "path": str(lp.path), "format": lp.format, "inputs": lp.inputs, "outputs": lp.outputs,
            "parameters": [r.__dict__ for r in rows],
        }, indent=2))
        return 0
    print(f"{lp.name}  ({lp.format}, {lp.inputs} in / {lp.outputs} out, {len(rows)} parameters)  {lp.path}")
    wn = max([len(r.name) for r in rows] + [4])
    print(f"{'#':>3}  {'name':<{wn}}  {'label':<5}  {'default':>8}  {'display':>12}  range (display at 0 .. 1)")
    for r in rows:
        print(f"{r.index:>3}  {r.name:<{wn}}  {r.label:<5}  {r.default_normalised:8.4f}  {r.default_text:>12}  "
              f"{r.text_at_0} .. {r.text_at_1}")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from mixbridge.atomic import atomic_write_text
    from mixbridge.errors import PluginMapError

    from .pluginmap import DEFAULT_POINTS, MAP_FORMAT, calibration_dict, map_from_dict, measure_curves, merge_calibration
    from .vst import open_plugin

    points = args.points if args.points is not None else DEFAULT_POINTS
    if points < 2:
        raise PluginMapError(f"--points {points} is too few; give at least 2 (default {DEFAULT_POINTS})")
    lp = open_plugin(args.plugin, plugin_paths=args.path)
    _silence_vst3_teardown(lp.format)
    curves = measure_curves(lp, points)
    doc = calibration_dict(lp, curves, points)
    n_pts = sum(len(c.normalised) for c in curves.values() if hasattr(c, "normalised"))
    summary = f"{lp.name}: {len(curves)} parameter curves ({n_pts} points)"
    if not args.output:
        print(json.dumps(doc, indent=1))
        print(summary, file=sys.stderr)
        return 0
    out = Path(args.output)
    if out.exists():
        try:
            existing = json.loads(out.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise PluginMapError(f"{out} exists but is not valid JSON ({e.msg} at line {e.lineno}); move it away") from None
        if existing.get("format") == MAP_FORMAT:
            merged, keys = merge_calibration(existing, doc)
            if not keys:
                raise PluginMapError(f"map {out} uses no plugin named {lp.name}; write the calibration to a new file")
            map_from_dict(merged, out.stem, out)  # refuse to write a map that no longer validates
            doc = merged
            summary += f"; updated plugins {', '.join(keys)} of map {out}"
    atomic_write_text(out, json.dumps(doc, indent=1) + "\n")
    print(f"{summary} -> {out}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from .contract import run_contract

    rows = [g.strip() for g in args.rows.split(",") if g.strip()] if args.rows else None
    report = run_contract(args.target, sample_rate=args.sample_rate, rows=rows)
    print(report.table())
    return 0 if report.passed else 1
