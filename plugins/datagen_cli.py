"""The ``mixbridge datagen`` command group: effect | demaster | premaster | mixes | composer | verify | info.

Thin handlers over :mod:`mixbridge.plugins.datagen` (STYLE.md point 12); at registration
only the standard library, :mod:`mixbridge.cli_options` and the backend registry
(:mod:`mixbridge.plugins.backend`, for ``--backend``'s choices; no pedalboard) are
imported. Generating commands print a progress bar on stderr and an end-of-run summary on
stdout (``-q`` neither); rerunning the same command resumes an interrupted dataset.

Options follow the shared vocabulary (:mod:`mixbridge.cli_options`): ``--backend`` is the
render backend, ``--executor local|ray`` where the workers run, ``-o/--output``,
``-q/--quiet``, ``--timeout-s``, ``--workers``. The first release's spellings still work
for one release, with a deprecation line on stderr: ``--render X`` (now ``--backend X``),
``--backend local|ray`` (now ``--executor``), ``--out``, ``--no-progress``.
Exit status: 0 done; 1 ``verify`` found a problem; 2 a user error or a failed job
(a :class:`~mixbridge.errors.MixbridgeError`, one line on stderr).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from mixbridge.cli_options import (
    EXECUTORS,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    add_executor,
    add_output,
    add_quiet,
    add_timeout_s,
    add_workers,
)

#: The help text's default of ``--timeout-s``; the value is ``runner.DEFAULT_TIMEOUT_S`` (a test compares them).
TIMEOUT_S_HELP = 120.0
#: The help text's default; the value itself is ``format.DEFAULT_MAX_FAILURE_FRACTION`` (a test compares them).
MAX_FAILURE_FRACTION_HELP = 0.1


class _BackendOption(argparse.Action):
    """``--backend NAME`` (the render backend), also reading the first release's spellings.

    ``--render NAME`` is the old spelling of ``--backend NAME``; ``--backend local|ray`` named
    the executor and now sets ``--executor``. Both print one deprecation line on stderr.
    """

    def __init__(self, option_strings, dest, backends: Sequence[str] = (), **kwargs):
        self.backends = tuple(backends)
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        """Store the backend, or the executor for the old ``--backend local|ray``; refuse unknown names."""
        warn = f"{parser.prog}: warning: {option_string} {values} is deprecated and goes in the next release; use"
        if option_string == "--backend" and values in EXECUTORS and values not in self.backends:
            print(f"{warn} --executor {values} (--backend now names the render backend: "
                  f"{', '.join(self.backends)})", file=sys.stderr)
            namespace.executor = values
            return
        if values not in self.backends:
            raise argparse.ArgumentError(self, f"invalid choice: {values!r} (choose from "
                                               f"{', '.join(self.backends)}; executors go to --executor)")
        if option_string == "--render":
            print(f"{warn} --backend {values}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def _add_backend(p: argparse.ArgumentParser, default_help: str) -> None:
    """``--backend`` (old ``--render``, and ``--backend local|ray`` for ``--executor``) and ``--param``."""
    from mixbridge.plugins.backend import backend_names

    names = backend_names()
    p.add_argument("--backend", "--render", dest="backend", action=_BackendOption, backends=names, default=None,
                   metavar="{" + ",".join(names) + "}",
                   help=f"render backend from the backend registry ({default_help}; --render: old spelling, "
                        "deprecated)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=fixed:V|uniform:LO:HI",
                   help="per-parameter distribution in real units (repeatable), e.g. compressor.knee_db=fixed:0")


def _add_common(p: argparse.ArgumentParser, *, default_n: int) -> None:
    """The options every generator shares: output, size, seed, rate, sharding, workers, executor, failures."""
    add_output(p, metavar="DATASET", help="dataset folder (created, or resumed)")
    p.add_argument("--n", type=int, default=default_n, help=f"number of examples in all (default {default_n})")
    p.add_argument("--seed", type=int, default=0, help="dataset seed; example i draws from (seed, i) (default 0)")
    p.add_argument("--sample-rate", type=int, default=44100, help="sample rate of the dataset in Hz (default 44100)")
    p.add_argument("--shard-size", type=int, default=None, help="examples per shard")
    add_workers(p, default=1, old=(), help="worker processes (0 = in-process, no isolation; Ray: tasks in "
                                           "flight; default 1)")
    add_timeout_s(p, default=TIMEOUT_S_HELP, help=f"per-example time limit in seconds (default {TIMEOUT_S_HELP:g})")
    add_executor(p)
    p.add_argument("--address", default=None, help="--executor ray: Ray address, auto or HOST:PORT "
                                                   "(default: start a local Ray)")
    p.add_argument("--force", action="store_true", help="discard a dataset of another configuration or source "
                                                        "in the output folder and start over")
    add_quiet(p, help="no progress bar and no end-of-run summary (errors are still printed)")
    _max_failures(p, "the run fails (exit 2, the first distinct reasons listed) when all its examples, or more "
                     "than this fraction of them, failed")
    from mixbridge.plugins.datagen.results import EARLY_STOP_FAILURES

    p.add_argument("--stop-after-failures", type=int, default=None, metavar="N",
                   help=f"stop when the run's first N examples all failed, naming the first failure (0: never; "
                        f"default {EARLY_STOP_FAILURES})")


def _max_failures(p: argparse.ArgumentParser, what: str) -> None:
    """``--max-failure-fraction F`` (0..1; None: the library's default)."""
    p.add_argument("--max-failure-fraction", type=float, default=None, metavar="F",
                   help=f"{what} (0..1, default {MAX_FAILURE_FRACTION_HELP:g})")


def _add_generator_tail(p: argparse.ArgumentParser, *, default_n: int, backend_help: str,
                        clip_s: float | None = None) -> None:
    """The options after a generator's own: ``--clip-s`` (when it has clips), backend, common ones."""
    if clip_s is not None:
        p.add_argument("--clip-s", type=float, default=clip_s, help=f"clip length in seconds (default {clip_s:g})")
    _add_backend(p, backend_help)
    _add_common(p, default_n=default_n)


def _run(config: dict, args: argparse.Namespace) -> int:
    """Generate ``config`` into ``args.output``; print the summary (on stderr too when the run stops)."""
    from mixbridge.plugins.datagen.runner import generate

    try:
        summary = generate(config, args.output, workers=args.workers, timeout_s=args.timeout_s,
                           executor=args.executor, address=args.address, progress=not args.quiet,
                           max_failure_fraction=args.max_failure_fraction, force=args.force,
                           early_stop_failures=getattr(args, "stop_after_failures", None))
    except BaseException as e:
        stopped = getattr(e, "summary", None)
        if stopped is not None:
            print(stopped.text(), file=sys.stderr)
        raise
    if not args.quiet:
        print(summary.text())
    return EXIT_OK


def _plugin_maps(args: argparse.Namespace) -> tuple[str, dict, list | None]:
    """``(backend, backend options, processors)`` from ``--backend`` and ``--plugin`` (maps imply vst)."""
    backend = args.backend or ("vst" if args.plugin else "builtin")
    if not args.plugin:
        return backend, {}, None
    from mixbridge.plugins.datagen.effect import plugin_map_processors

    procs, options = plugin_map_processors(args.plugin)
    return "vst", options, procs


def _effect(args: argparse.Namespace) -> int:
    """``datagen effect``: :func:`~mixbridge.plugins.datagen.effect.effect_config`, then generate."""
    from mixbridge.plugins.datagen.augment import Augmentations
    from mixbridge.plugins.datagen.effect import effect_config

    backend, options, procs = _plugin_maps(args)
    aug = Augmentations.none() if args.no_augment else Augmentations()
    config = effect_config(args.source, chain=args.chain, processors=procs, backend=backend, backend_options=options,
                           patch_s=args.patch_s, sample_rate=args.sample_rate, channels=args.channels, seed=args.seed,
                           n=args.n, param_specs=args.param, augmentations=aug,
                           shard_size=args.shard_size)
    return _run(config, args)


def _demaster(args: argparse.Namespace) -> int:
    """``datagen demaster``: :func:`~mixbridge.plugins.datagen.demaster.demaster_config`, then generate."""
    from mixbridge.plugins.datagen.demaster import demaster_config

    backend, options, procs = _plugin_maps(args)
    config = demaster_config(args.source, mode=args.mode, backend=backend if args.mode == "plugins" else "builtin",
                             backend_options=options, processors=procs, clip_s=args.clip_s,
                             sample_rate=args.sample_rate, seed=args.seed, n=args.n, param_specs=args.param,
                             images=not args.no_images, shard_size=args.shard_size)
    return _run(config, args)


def _premaster(args: argparse.Namespace) -> int:
    """``datagen premaster``: :func:`~mixbridge.plugins.datagen.premaster.premaster_config`, then generate."""
    from mixbridge.plugins.datagen.premaster import premaster_config

    config = premaster_config(args.source, split_counts=args.split_counts, hard=args.hard, clip_s=args.clip_s,
                              sample_rate=args.sample_rate, seed=args.seed, shard_size=args.shard_size)
    return _run(config, args)


def _mixes(args: argparse.Namespace) -> int:
    """``datagen mixes``: :func:`~mixbridge.plugins.datagen.mixes.mixes_config`, then generate."""
    from mixbridge.plugins.datagen.mixes import mixes_config

    config = mixes_config(args.multitracks, layout=args.layout, backend=args.backend or "builtin",
                          clip_s=args.clip_s, sample_rate=args.sample_rate, seed=args.seed, n=args.n,
                          param_specs=args.param, store_stems=args.store_stems,
                          shard_size=args.shard_size)
    return _run(config, args)


def _composer(args: argparse.Namespace) -> int:
    """``datagen composer``: :func:`~mixbridge.plugins.datagen.composer.build.build_composer`, then a summary."""
    from mixbridge.plugins.datagen.composer.build import build_composer, resolve_settings

    settings = resolve_settings(songs=args.songs, pick=args.pick, excerpts_per_song=args.excerpts_per_song,
                                excerpt_s=args.excerpt_s, tail_s=args.tail_s, seed=args.seed)
    log = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr))
    summary = build_composer(args.output, settings, force=args.force, jobs=args.workers, progress=not args.quiet,
                             log=log)
    if not args.quiet:
        t = summary["tracks_per_excerpt"]
        print(f"{summary['root']}: {summary['excerpts']} excerpts of {summary['songs_used']} songs "
              f"({summary['songs_skipped']} skipped), per split {summary['per_split']}, tracks per excerpt "
              f"{t['min']}..{t['max']} (mean {t['mean']}); rendered {len(summary['rendered'])}, reused "
              f"{len(summary['reused'])}, {summary['seconds']:g} s")
    return EXIT_OK


def _signals(args: argparse.Namespace) -> int:
    """``datagen signals``: :func:`~mixbridge.plugins.datagen.signals.write_signals` (plus composer stems)."""
    from mixbridge.plugins.datagen.signals import link_composer_stems, write_signals

    paths = write_signals(args.output, per_kind=args.per_kind, seconds=args.seconds, seed=args.seed,
                          sample_rate=args.sample_rate)
    stems = link_composer_stems(args.output, args.stems_from, args.split) if args.stems_from else []
    if not args.quiet:
        print(f"{args.output}: {len(paths)} signal files ({args.per_kind} per kind, {args.seconds:g} s, seed "
              f"{args.seed})" + (f", {len(stems)} {args.split} stems from {args.stems_from}" if stems else ""))
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    """``datagen verify``: print the report; exit 1 when it found a problem."""
    from mixbridge.plugins.datagen.verify import verify

    report = verify(args.dataset, allow_incomplete=args.allow_incomplete,
                    max_failure_fraction=args.max_failure_fraction)
    print(report.text())
    return EXIT_OK if report.ok else EXIT_FAILED


def _info(args: argparse.Namespace) -> int:
    """``datagen info``: the summary for people, or ``--json``."""
    from mixbridge.plugins.datagen.verify import info

    d = info(args.dataset)
    if args.json:
        print(json.dumps(d, indent=2))
        return EXIT_OK
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
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``datagen`` and its subcommands to the top CLI's ``sub`` (``mixbridge datagen --help``)."""
    g = sub.add_parser("datagen", help="generate training data from real plugins (effect, demaster, premaster, mixes)",
                       description="Generate paired training data; rerun the same command to resume.")
    gs = g.add_subparsers(dest="datagen_command", metavar="SUBCOMMAND")
    g.set_defaults(func=lambda a: (g.print_help(), EXIT_USAGE)[1])

    p = gs.add_parser("effect", help="paired input/output patches through an effect chain with random parameters")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--chain", help="eq | compressor | reverb | limiter | eq_comp | eq_comp_reverb | master, "
                                     "or a comma list such as eq,compressor")
    src.add_argument("--plugin", metavar="MAP", action="append",
                     help="a real plugin through its plugin map (name or JSON path; repeat for a chain, in order; "
                          "implies --backend vst), e.g. --plugin zameq2_x2 --plugin zamcomp --plugin dragonfly_room")
    p.add_argument("--source", required=True, metavar="AUDIO_DIR", help="folder of source audio (searched recursively)")
    p.add_argument("--patch-s", type=float, default=1.48, help="patch length in seconds (default 1.48)")
    p.add_argument("--channels", type=int, choices=(1, 2), default=2, help="channels per patch (default 2)")
    p.add_argument("--no-augment", action="store_true", help="switch the input augmentations off")
    _add_generator_tail(p, default_n=1000, backend_help="default builtin, or vst with --plugin")
    p.set_defaults(func=_effect)

    p = gs.add_parser("demaster", help="degraded/finished master pairs with exact parameters and mel images")
    p.add_argument("--source", required=True, metavar="MASTERS_DIR", help="folder of finished masters")
    p.add_argument("--mode", choices=("dsp", "plugins"), default="dsp",
                   help="dsp: random EQ/compression/reverb/echo (Khoo); plugins: a plugin chain (default dsp)")
    p.add_argument("--plugin", metavar="MAP", action="append", default=None,
                   help="--mode plugins: plugin maps in chain order (default: the vst backend's default maps "
                        "for eq, compressor, reverb)")
    p.add_argument("--no-images", action="store_true", help="do not write spectrogram PNGs")
    _add_generator_tail(p, default_n=500, clip_s=5.0,
                        backend_help="--mode plugins only: default builtin, or vst with --plugin")
    p.set_defaults(func=_demaster)

    p = gs.add_parser("premaster", help="pre-master/master pairs the master bus inverts exactly, the inverse "
                                        "master-bus parameters as the label",
                      description="Degrade clips of finished masters by expansion, EQ (+-6 dB) and level (pre-masters "
                                  "at -30..-18 LUFS, peaks <= -3 dBFS); each example stores the master bus parameters "
                                  "that undo it. Split by album; rerun the same command to resume.")
    add_output(p, metavar="DATASET", help="dataset folder (created, or resumed)")
    p.add_argument("--source", default=None, metavar="MASTERS_DIR",
                   help="folder of your own finished stereo masters, one folder per album (default: the shipped "
                        "catalogue of Debian game soundtracks, split by album)")
    p.add_argument("--split-counts", default=None, metavar="train=N,val=N,test=N",
                   help="examples per split (default train=480,val=60,test=120; a split not named gets 0)")
    p.add_argument("--hard", action="store_true",
                   help="the hard set: also add reverb and/or echo (not invertible; flagged per example, the label "
                        "stays the invertible part)")
    p.add_argument("--clip-s", type=float, default=8.0, help="clip length in seconds (default 8)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed; example i draws from (seed, i) (default 0)")
    p.add_argument("--sample-rate", type=int, default=44100, help="sample rate of the dataset in Hz (default 44100)")
    p.add_argument("--shard-size", type=int, default=None, help="examples per shard (default 16)")
    add_workers(p, default=1, old=(), help="worker processes (0 = in-process, no isolation; Ray: tasks in "
                                           "flight; default 1)")
    add_timeout_s(p, default=TIMEOUT_S_HELP, help=f"per-example time limit in seconds (default {TIMEOUT_S_HELP:g})")
    add_executor(p)
    p.add_argument("--address", default=None, help="--executor ray: Ray address, auto or HOST:PORT")
    p.add_argument("--force", action="store_true", help="discard a dataset of another configuration or source "
                                                        "in the output folder and start over")
    add_quiet(p, help="no progress bar and no end-of-run summary (errors are still printed)")
    _max_failures(p, "the run fails (exit 2) when all its examples, or more than this fraction of them, failed")
    p.set_defaults(func=_premaster)

    p = gs.add_parser("mixes", help="random console sessions of multitracks and their rendered mixes")
    p.add_argument("--multitracks", required=True, metavar="DIR", help="folder of songs (one stem folder each)")
    p.add_argument("--layout", default="folders",
                   help="folders | medleydb | enst | musdb | cambridge (default folders)")
    p.add_argument("--store-stems", action="store_true", help="also store the clipped stems of each example")
    _add_generator_tail(p, default_n=1000, clip_s=5.0, backend_help="default builtin")
    p.set_defaults(func=_mixes)

    p = gs.add_parser("composer", help="Freedoom excerpts as unmixed stems with the composers' own levels and "
                                       "pans (CC7/CC10) as the target",
                      description="Render every Freedoom song's excerpts as loudness-normalised stems plus the "
                                  "composer's mix (session and console render); rerun to resume.")
    add_output(p, metavar="DATASET", help="dataset folder (created, or resumed)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--songs", type=int, default=None, metavar="N",
                       help="the first N songs in WAD order (default: every song)")
    which.add_argument("--pick", nargs="+", metavar="LUMP", help="these songs (e.g. D_E1M9 E2M3)")
    p.add_argument("--excerpts-per-song", type=int, default=3, help="excerpts per song (default 3)")
    p.add_argument("--excerpt-s", type=float, default=8.0, help="excerpt length in seconds (default 8)")
    p.add_argument("--tail-s", type=float, default=1.0, help="release tail after each excerpt in seconds (default 1)")
    add_workers(p, default=2, help="excerpts rendered at once, one fluidsynth each (default 2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the input loudness draws (default 0)")
    p.add_argument("--force", action="store_true", help="rebuild from scratch, also over other settings")
    add_quiet(p, help="no progress bar and no summary (errors are still printed)")
    p.set_defaults(func=_composer)

    p = gs.add_parser("signals", help="synthetic dynamics signals (level steps, sweeps, noise bursts, drums, "
                                      "-50..0 dBFS) as a proxy's source folder",
                      description="Write level-stepped sines, level-ramped sweeps, pink-noise bursts and synthetic "
                                  "drums (mixbridge.plugins.datagen.signals) to a folder that `datagen effect "
                                  "--source` reads; --stems-from adds a composer dataset's stems of one split.")
    add_output(p, metavar="DIR", help="folder to write (created; a complete set is kept)")
    p.add_argument("--per-kind", type=int, default=40, help="files per kind (default 40)")
    p.add_argument("--seconds", type=float, default=4.0, help="length of each file in seconds (default 4)")
    p.add_argument("--seed", type=int, default=0, help="seed (another seed gives a held-out set; default 0)")
    p.add_argument("--sample-rate", type=int, default=44100, help="Hz (default 44100)")
    p.add_argument("--stems-from", metavar="COMPOSER", default=None,
                   help="also link the stems of this composer dataset (mixbridge datagen composer)")
    p.add_argument("--split", choices=("train", "val", "test"), default="train",
                   help="which composer split's songs to link (default train)")
    add_quiet(p, help="no summary")
    p.set_defaults(func=_signals)

    p = gs.add_parser("verify", help="check a dataset's shards, checksums, manifest and completeness (exit 1 "
                                     "on any problem)")
    p.add_argument("dataset")
    p.add_argument("--allow-incomplete", action="store_true", help="pass a dataset that is still being generated")
    _max_failures(p, "fail when no example succeeded or more than this fraction of the generated indices are "
                     "recorded failures")
    p.set_defaults(func=_verify)

    p = gs.add_parser("info", help="summarise a dataset")
    p.add_argument("dataset")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_info)
