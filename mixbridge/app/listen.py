"""``mixbridge listen build|serve|results``: listening tests of mixes in a browser (a thin CLI, STYLE.md point 12).

* ``listen build --stimuli DIR_A DIR_B ... -o PAGE_DIR``: :func:`mixbridge.app.listen_page.build_page`;
* ``listen serve PAGE_DIR``: :func:`mixbridge.app.listen_server.make_server`, served until interrupted;
* ``listen results FILE... [-o OUT_DIR]``: :func:`mixbridge.app.listen_results.read_submissions`,
  :func:`~mixbridge.app.listen_results.aggregate`, the table, and with ``-o`` ``results.json`` and the plot.

Imports only the standard library at module level (``mixbridge --help`` stays light).
"""
from __future__ import annotations

import argparse
import sys

from mixbridge.cli_options import EXIT_OK, add_output, add_quiet


def _build(args: argparse.Namespace) -> int:
    from .listen_page import build_page

    cfg = build_page(args.stimuli, args.output, style=args.style, reference=args.reference, anchor=args.anchor,
                     items=args.items, seed=args.seed, lufs=args.lufs, excerpt_s=args.excerpt_s, title=args.title,
                     file=args.file)
    if not args.quiet:
        for n in cfg["notices"]:
            print(f"notice: {n}")
        n_files = sum(len(i["stimuli"]) + ("reference" in i) for i in cfg["items"])
        print(f"wrote {args.output}/: {cfg['style'].upper()}-style page, {len(cfg['items'])} items x "
              f"{len(cfg['conditions'])} conditions ({', '.join(c['name'] for c in cfg['conditions'])}), {n_files} "
              f"stimuli at {cfg['lufs']:g} LUFS, {cfg['sample_rate']} Hz; serve it with "
              f"`mixbridge listen serve {args.output}`")
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    from .listen_server import make_server

    server = make_server(args.page_dir, host=args.host, port=args.port, results=args.results, quiet=args.quiet)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"listen serve: warning: --host {args.host} lets other machines reach the page and POST /submit; "
              "the default 127.0.0.1 keeps it on this machine", file=sys.stderr)
    print(f"serving {args.page_dir} at {server.url} ; submissions go to {server.results} (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("listen serve: stopped", file=sys.stderr)
    finally:
        server.server_close()
    return EXIT_OK


def _results(args: argparse.Namespace) -> int:
    from .listen_results import aggregate, format_table, read_submissions, write_results

    summary = aggregate(read_submissions(args.files), exclude_screened=args.exclude_screened)
    print(format_table(summary))
    if args.output:
        paths = write_results(summary, args.output)
        print(f"wrote {paths['json']} and {paths['plot']}")
    return EXIT_OK


def register(sub) -> None:
    """Add ``listen build|serve|results`` to the top CLI's subparsers ``sub``."""
    p = sub.add_parser("listen", help="listening tests: build a MUSHRA/APE page, serve it, aggregate the ratings",
                       description="Listening tests of mixes in a browser (README: \"Listening tests\").")
    lsub = p.add_subparsers(dest="listen_command", metavar="build|serve|results", required=True)

    b = lsub.add_parser("build", help="make a listening-test page from folders of mixes",
                        description="Each --stimuli folder is one condition (NAME=DIR, or DIR named after the folder); "
                                    "its items are DIR/<song>/master.wav (or mix.wav: automix outputs) or "
                                    "DIR/<song>.wav, matched by name across the conditions.")
    b.add_argument("--stimuli", nargs="+", required=True, metavar="DIR", help="condition folders (NAME=DIR or DIR)")
    add_output(b, metavar="PAGE_DIR", old=(), help="the page folder to write (an earlier page is replaced)")
    b.add_argument("--style", choices=("mushra", "ape"), default="mushra",
                   help="mushra: a slider per condition, open + hidden reference (ITU-R BS.1534-3); ape: all "
                        "conditions on one axis (default: mushra)")
    b.add_argument("--reference", default=None, metavar="DIR",
                   help="the reference, laid out as the --stimuli folders (required by mushra)")
    b.add_argument("--anchor", action="store_true", help="add the reference low-passed at 3.5 kHz (BS.1534-3 anchor)")
    b.add_argument("--items", type=int, default=None, metavar="N", help="use N items drawn with --seed (default all)")
    b.add_argument("--seed", type=int, default=0, help="item draw and the base of each listener's order (default 0)")
    b.add_argument("--lufs", type=float, default=-23.0, help="loudness of every stimulus, LUFS (default -23)")
    b.add_argument("--excerpt-s", dest="excerpt_s", type=float, default=10.0,
                   help="excerpt length in s: the loudest window of the reference or first condition (default 10)")
    b.add_argument("--title", default="Listening test", help="the page's title")
    b.add_argument("--file", default=None, metavar="NAME",
                   help="the file to take from every --stimuli item folder, e.g. mix.wav (default: master.wav, else "
                        "mix.wav, else target/mix.wav); the --reference folder always uses that default order")
    add_quiet(b)
    b.set_defaults(func=_build)

    s = lsub.add_parser("serve", help="serve a page on 127.0.0.1 and collect submissions into a JSONL file")
    s.add_argument("page_dir", metavar="PAGE_DIR")
    s.add_argument("--port", type=int, default=8000, help="port; 0 picks a free one (default 8000)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    s.add_argument("--results", default=None, metavar="FILE", help="JSONL file (default PAGE_DIR/results.jsonl)")
    add_quiet(s, help="no request log")
    s.set_defaults(func=_serve)

    r = lsub.add_parser("results", help="mean, 95 %% CI and paired Wilcoxon tests of collected ratings")
    r.add_argument("files", nargs="+", metavar="FILE", help="results JSONL files or ratings.json downloads")
    add_output(r, metavar="OUT_DIR", old=(), required=False, help="also write results.json and ratings.png here")
    r.add_argument("--exclude-screened", action="store_true",
                   help="drop listeners who fail the BS.1534-3 post-screening (hidden reference < 90 in > 15 %% "
                        "of the items)")
    r.set_defaults(func=_results)


__all__ = ["register"]
