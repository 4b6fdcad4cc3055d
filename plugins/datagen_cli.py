"""The ``mixbridge datagen`` command group: effect | demaster | mixes | verify | info.

Thin handlers over :mod:`mixbridge.plugins.datagen` (STYLE.md point 12); only the
standard library is imported at top level. Generating commands print a progress
bar on stderr and an end-of-run summary on stdout; rerunning the same command
resumes an interrupted dataset.
"""
from __future__ import annotations

import argparse
import json
import sys


def _add_common(p: argparse.ArgumentParser, *, default_n: int) -> None:
    p.add_argument("-o", "--out", required=True, metavar="DATASET", help="dataset folder (created, or resumed)")
    p.add_argument("--n", type=int, default=default_n, help=f"number of examples in all (default {default_n})")
    p.add_argument("--seed", type=int, default=0, help="dataset seed; example i draws from (seed, i) (default 0)")
    p.add_argument("--sample-rate", type=int, default=44100, help="sample rate of the dataset in Hz (default 44100)")
    p.add_argument("--shard-size", type=int, default=None, help="examples per shard")
    p.add_argument("--workers", type=int, default=1,
                   help="local worker processes (0 = in-process, no isolation; default 1)")
    p.add_argument("--timeout-s", type=float, default=120.0, help="per-example time limit in seconds (default 120)")
    p.add_argument("--backend", dest="executor", choices=("local", "ray"), default="local",
                   help="where workers run: local processes or a Ray cluster (default local)")
    p.add_argument("--address", default=None, help="Ray address: auto or HOST:PORT (default: start a local Ray)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _max_failures(p, "the run fails (exit 2, the first distinct reasons listed) when all its examples, or more "
                     "than this fraction of them, failed")


#: The help text's default; the value itself is ``format.DEFAULT_MAX_FAILURE_FRACTION`` (a test compares them).
MAX_FAILURE_FRACTION_HELP = 0.1


def _max_failures(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--max-failure-fraction", type=float, default=None, metavar="F",
                   help=f"{what} (0..1, default {MAX_FAILURE_FRACTION_HELP:g})")


def _render_backend(p: argparse.ArgumentParser) -> None:
    p.add_argument("--render", dest="render_backend", choices=("builtin", "vst"), default=None,
                   help="rendering backend: builtin (pedalboard) or vst (real plugins via DawDreamer); "
                        "default builtin, or vst with --plugin")
    p.add_argument("--param", action="append", default=[], metavar="NAME=fixed:V|uniform:LO:HI",
                   help="per-parameter distribution in real units (repeatable), e.g. compressor.knee_db=fixed:0")


def _run(config: dict, args) -> int:
    from mixbridge.plugins.datagen.runner import generate

    try:
        summary = generate(config, args.out, workers=args.workers, timeout_s=args.timeout_s, executor=args.executor,
                           address=args.address, progress=not args.no_progress,
                           max_failure_fraction=args.max_failure_fraction)
    except BaseException as e:
        if getattr(e, "summary", None) is not None:
            print(e.summary.text(), file=sys.stderr)
        raise
    print(summary.text())
    return 0


def _plugin_maps(args) -> tuple[str, dict, list | None]:
    backend = args.render_backend or ("vst" if args.plugin else "builtin")
    if not args.plugin:
        return backend, {}, None
    from mixbridge.plugins.datagen.effect import plugin_map_processors

    procs, options = plugin_map_processors(args.plugin)
    return "vst", options, procs


def _effect(args) -> int:
    from mixbridge.plugins.datagen.augment import Augmentations
    from mixbridge.plugins.datagen.effect import DEFAULT_SHARD_SIZE, effect_config

    backend, options, procs = _plugin_maps(args)
    aug = Augmentations.none() if args.no_augment else Augmentations()
    config = effect_config(args.source, chain=args.chain, processors=procs, backend=backend, backend_options=options,
                           patch_s=args.patch_s, sample_rate=args.sample_rate, channels=args.channels, seed=args.seed,
                           n=args.n, param_specs=args.param, augmentations=aug,
                           shard_size=args.shard_size or DEFAULT_SHARD_SIZE)
    return _run(config, args)


def _demaster(args) -> int:
    from mixbridge.plugins.datagen.demaster import DEFAULT_SHARD_SIZE, demaster_config

    backend, options, procs = _plugin_maps(args)
    config = demaster_config(args.source, mode=args.mode, backend=backend if args.mode == "plugins" else "builtin",
                             backend_options=options, processors=procs, clip_s=args.clip_s,
                             sample_rate=args.sample_rate, seed=args.seed, n=args.n, param_specs=args.param,
                             images=not args.no_images, shard_size=args.shard_size or DEFAULT_SHARD_SIZE)
    return _run(config, args)


def _mixes(args) -> int:
    from mixbridge.plugins.datagen.mixes import DEFAULT_SHARD_SIZE, mixes_config

    config = mixes_config(args.multitracks, layout=args.layout, backend=args.render_backend or "builtin",
                          clip_s=args.clip_s, sample_rate=args.sample_rate, seed=args.seed, n=args.n,
                          param_specs=args.param, store_stems=args.store_stems,
                          shard_size=args.shard_size or DEFAULT_SHARD_SIZE)
    return _run(config, args)


def _verify(args) -> int:
    from mixbridge.plugins.datagen.format import verify

    report = verify(args.dataset, allow_incomplete=args.allow_incomplete,
                    max_failure_fraction=args.max_failure_fraction)
    print(report.text())
    return 0 if report.ok else 1


def _info(args) -> int:
    from mixbridge.plugins.datagen.format import info

    d = info(args.dataset)
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    print(f"{d['root']}: {d['kind']} dataset, {d['n_examples']} examples of {d['n_requested']} requested "
          f"({'complete' if d['complete'] else 'incomplete'}), {d['n_failures']} failures "
          f"{d['failures_by_kind'] or ''}")
    print(f"  {d['n_shards']} shards, {d['bytes'] / 1e6:.1f} MB, sample rate {d['sample_rate']} Hz, seed {d['seed']}, "
          f"backend {d['backend']}, processors {d['processors']}, format version {d['version']}")
    for r in d["failure_reasons"]:
        print(f"  failure reason: {r}")
    for k, (lo, hi) in d["renderable_ranges"].items():
        print(f"  {k}: sampled in [{lo:g}, {hi:g}], the range the {d['backend']} backend renders")
    if d["legacy_problem"]:
        print(f"  warning: format version 1: {d['legacy_problem']}; regenerate it with this mixbridge")
    for k, a in d["arrays"].items():
        print(f"  {k:16s} {a['dtype']:8s} per example {a['shape_per_example']}")
    return 0


def register(sub) -> None:
    g = sub.add_parser("datagen", help="generate training data from real plugins (effect, demaster, mixes)",
                       description="Generate paired training data; rerun the same command to resume.")
    gs = g.add_subparsers(dest="datagen_command", metavar="SUBCOMMAND")
    g.set_defaults(func=lambda a: (g.print_help(), 2)[1])

    p = gs.add_parser("effect", help="paired input/output patches through an effect chain with random parameters")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--chain", help="eq | compressor | reverb | limiter | eq_comp | eq_comp_reverb | master, "
                                     "or a comma list such as eq,compressor")
    src.add_argument("--plugin", metavar="MAP", action="append",
                     help="a real plugin through its plugin map (name or JSON path; repeat for a chain, in order; "
                          "implies --render vst), e.g. --plugin zameq2_x2 --plugin zamcomp --plugin dragonfly_room")
    p.add_argument("--source", required=True, metavar="AUDIO_DIR", help="folder of source audio (searched recursively)")
    p.add_argument("--patch-s", type=float, default=1.48, help="patch length in seconds (default 1.48)")
    p.add_argument("--channels", type=int, choices=(1, 2), default=2, help="channels per patch (default 2)")
    p.add_argument("--no-augment", action="store_true", help="switch the input augmentations off")
    _render_backend(p)
    _add_common(p, default_n=1000)
    p.set_defaults(func=_effect)

    p = gs.add_parser("demaster", help="degraded/finished master pairs with exact parameters and mel images")
    p.add_argument("--source", required=True, metavar="MASTERS_DIR", help="folder of finished masters")
    p.add_argument("--mode", choices=("dsp", "plugins"), default="dsp",
                   help="dsp: random EQ/compression/reverb/echo (Khoo); plugins: a plugin chain (default dsp)")
    p.add_argument("--plugin", metavar="MAP", action="append", default=None,
                   help="--mode plugins: plugin maps in chain order (default: the vst backend's default maps "
                        "for eq, compressor, reverb)")
    p.add_argument("--clip-s", type=float, default=5.0, help="clip length in seconds (default 5)")
    p.add_argument("--no-images", action="store_true", help="do not write spectrogram PNGs")
    _render_backend(p)
    _add_common(p, default_n=500)
    p.set_defaults(func=_demaster)

    p = gs.add_parser("mixes", help="random console sessions of multitracks and their rendered mixes")
    p.add_argument("--multitracks", required=True, metavar="DIR", help="folder of songs (one stem folder each)")
    p.add_argument("--layout", default="folders",
                   help="folders | medleydb | enst | musdb | cambridge (default folders)")
    p.add_argument("--clip-s", type=float, default=5.0, help="clip length in seconds (default 5)")
    p.add_argument("--store-stems", action="store_true", help="also store the clipped stems of each example")
    _render_backend(p)
    _add_common(p, default_n=1000)
    p.set_defaults(func=_mixes)

    p = gs.add_parser("verify", help="check a dataset's shards, checksums, manifest and completeness")
    p.add_argument("dataset")
    p.add_argument("--allow-incomplete", action="store_true", help="pass a dataset that is still being generated")
    _max_failures(p, "fail when no example succeeded or more than this fraction of the generated indices are "
                     "recorded failures")
    p.set_defaults(func=_verify)

    p = gs.add_parser("info", help="summarise a dataset")
    p.add_argument("dataset")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_info)
