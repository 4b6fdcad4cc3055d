"""The ``mixbridge demo`` command group: build, list and verify the demo multitrack.

``register(subparsers)`` adds ``demo build``, ``demo list`` and ``demo verify``.
Only the standard library (and :mod:`mixbridge.cli_options`) is imported here; the
handlers import the builder (numpy, soundfile, mido) when they run. Options follow the
CLI's one vocabulary: ``-o/--output``, ``-q/--quiet``, ``--duration-s``, ``--workers``
(``--jobs``: old spelling, deprecated).
"""
from __future__ import annotations

import argparse

from mixbridge.cli_options import add_duration_s, add_output, add_quiet, add_workers

#: Where ``mixbridge demo build`` writes when no ``-o`` is given (git-ignored ``/demo/``).
DEFAULT_OUT_DIR = "demo"


def parse_song_list(text: str) -> tuple[tuple[str, str], ...]:
    """``"e1m9,D_E2M3:red_zeppelin"`` -> ``(("D_E1M9", kit 0), ("D_E2M3", "red_zeppelin"))``;
    songs without ``:KIT`` get alternating kits (Black Pearl, Red Zeppelin, ...)."""
    from .build import default_kit

    songs = []
    for i, item in enumerate(x.strip() for x in text.split(",") if x.strip()):
        lump, _, kit = item.partition(":")
        lump = lump.upper()
        if not lump.startswith("D_"):
            lump = "D_" + lump
        songs.append((lump, kit or default_kit(i)))
    return tuple(songs)


def _build(args: argparse.Namespace) -> int:
    from .build import DemoSettings, build_demo, default_songs

    settings = DemoSettings(
        songs=parse_song_list(args.pick) if args.pick else default_songs(args.songs),
        excerpt_s=args.duration_s,
        tail_s=args.tail_s,
        sample_rate=args.sample_rate,
        subtype=args.subtype,
    )
    manifest = build_demo(args.output, settings, force=args.force, jobs=args.workers, progress=not args.quiet)
    for song in manifest["songs"]:
        print(f"{args.output}/{song['folder']}: {len(song['stems'])} stems, {song['duration_s']:.1f} s, "
              f"{song['sample_rate']} Hz ({', '.join(s['name'] for s in song['stems'])})")
    print(f"{args.output}/manifest.json: source, licence and attribution of every file")
    return 0


def _list(args: argparse.Namespace) -> int:
    from .plan import list_songs
    from .sources import CURATED_SONGS, DEFAULT_N_SONGS

    defaults = set(CURATED_SONGS[:DEFAULT_N_SONGS])
    for row in list_songs():
        if "error" in row:
            print(f" {row['lump']:<10} {row['wad']:<14} unreadable: {row['error']}")
            continue
        mark = "*" if row["lump"] in defaults else ("+" if row["lump"] in CURATED_SONGS else " ")
        title = f" \"{row['title']}\"" if row["title"] else ""
        print(f"{mark}{row['lump']:<10} {row['wad']:<14} {row['duration_s']:6.1f} s{title}: "
              f"drums [{', '.join(row['drum_stems'])}]; {', '.join(row['pitched_stems'])}")
    print("* built by default, + taken next by --songs N. "
          "Build any with `mixbridge demo build --pick E1M1,D_RUNNIN:red_zeppelin`.")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from .manifest import load_manifest, verify_demo

    problems = verify_demo(args.out_dir)
    if problems:
        for p in problems:
            print(f"problem: {p}")
        print(f"{args.out_dir}: {len(problems)} problem(s); "
              f"rebuild with `mixbridge demo build --force -o {args.out_dir}`")
        return 1
    manifest = load_manifest(args.out_dir)
    n = sum(len(s["stems"]) for s in manifest["songs"])
    print(f"{args.out_dir}: ok, {len(manifest['songs'])} songs, {n} stems match the manifest")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` command group to the ``mixbridge`` CLI."""
    demo = subparsers.add_parser(
        "demo", help="build the demo multitrack (Freedoom songs rendered per instrument)",
        description="Real composed music (Freedoom's General MIDI songs) rendered per instrument "
                    "with real sampled instruments (FluidR3_GM, AVL acoustic drum kits).",
    )
    demo_sub = demo.add_subparsers(dest="demo_command", metavar="ACTION")
    demo.set_defaults(func=lambda a: (demo.print_help(), 2)[1])

    build = demo_sub.add_parser("build", help="render the demo songs' stems and their manifest")
    add_output(build, required=False, default=DEFAULT_OUT_DIR, metavar="OUT_DIR", old=(),
               help=f"output folder (default {DEFAULT_OUT_DIR})")
    build.add_argument("--songs", type=int, default=3, metavar="N",
                       help="how many of the curated songs to build (1..8, default 3)")
    build.add_argument("--pick", metavar="LUMP[:KIT],...",
                       help="build these songs instead, e.g. E1M1,D_RUNNIN:red_zeppelin "
                            "(kits: black_pearl, red_zeppelin; see `mixbridge demo list`)")
    add_duration_s(build, default=30.0, help="excerpt length in seconds (30..600, default 30)")
    build.add_argument("--tail-s", type=float, default=2.0,
                       help="release tail after the excerpt in seconds (0..10, default 2)")
    build.add_argument("--sample-rate", type=int, default=44100, help="sample rate in Hz (default 44100)")
    build.add_argument("--subtype", default="FLOAT", choices=("FLOAT", "PCM_24", "PCM_16"), help="WAV sample format")
    add_workers(build, default=None, help="fluidsynth processes at once (default 2)")
    build.add_argument("--force", action="store_true", help="rebuild even when the folder is up to date")
    add_quiet(build, help="no progress bars")
    build.set_defaults(func=_build)

    lst = demo_sub.add_parser("list", help="list the Freedoom MIDI songs and the stems each would give")
    lst.set_defaults(func=_list)

    verify = demo_sub.add_parser("verify", help="check a built demo against its manifest (checksums, lengths)")
    verify.add_argument("out_dir", nargs="?", default=DEFAULT_OUT_DIR, help=f"demo folder (default {DEFAULT_OUT_DIR})")
    verify.set_defaults(func=_verify)
