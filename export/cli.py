"""``mixbridge export`` and ``mixbridge compare``: thin CLI over :mod:`.exporter` and :mod:`.compare`.

``mixbridge export CHECKPOINT --format onnx|torchscript -o ARTIFACT_DIR [--seed N]``
exports a checkpoint (``NAME.json`` + ``NAME.safetensors``, or a folder holding
one) or, for tests and demos, an untrained registry model such as ``tcn-tiny``
initialised with ``--seed``. The handler calls
:func:`mixbridge.export.exporter.export_model`, then reloads the artifact with the
torch-free runtime and checks the golden pair.

``mixbridge export mixer CHECKPOINT -o OUT.onnx [--seed N]`` exports a ``dmc`` mixer's network
(a checkpoint such as ``models/mixers/dmc.json``, or ``dmc`` for an untrained one) with
:func:`mixbridge.export.mixer_onnx.export_mixer_onnx`: ``OUT.onnx``, its sidecar ``OUT.onnx.json`` and
golden pair ``OUT.onnx.golden.npz``, checked with the torch-free runner
(:class:`~mixbridge.export.mixer_onnx.OnnxDMCMixer`).

``mixbridge compare --plugin MAP_OR_BUILTIN --proxy CHECKPOINT_OR_ARTIFACT
[--input AUDIO] [--params FILE | --random N] -o REPORT_DIR`` calls
:func:`mixbridge.export.compare.compare_proxy`.

Options follow :mod:`mixbridge.cli_options` (``-o/--output``, old ``--out``). Only the
standard library is imported at module level (STYLE.md point 12), so ``--help`` stays light.
"""
from __future__ import annotations

from mixbridge.cli_options import add_output


def register(sub) -> None:
    """Add the ``export`` and ``compare`` subcommands to the top CLI's ``sub`` (argparse subparsers)."""
    _register_export(sub)
    _register_compare(sub)


def _register_export(sub) -> None:
    p = sub.add_parser(
        "export", help="export a proxy to a streaming ONNX/TorchScript artifact, or a mixer to ONNX",
        description=("Export CHECKPOINT (a checkpoint file or folder, or a registry model name such as "
                     "tcn-tiny for an untrained model) to ARTIFACT_DIR: the model file, golden.npz and "
                     "artifact.json (format version, config, schema, sample rate, latency, checksums). "
                     "`mixbridge export mixer CHECKPOINT -o OUT.onnx` exports a dmc mixer's network "
                     "(CHECKPOINT: a dmc checkpoint, or dmc for an untrained one) to OUT.onnx with its "
                     "sidecar OUT.onnx.json and golden pair OUT.onnx.golden.npz, for `automix --mixer dmc` "
                     "without torch."))
    p.add_argument("checkpoint", metavar="CHECKPOINT",
                   help="a checkpoint (NAME.json or its folder) or a registry model name (tcn-tiny); "
                        "or the word mixer, followed by a dmc checkpoint")
    p.add_argument("mixer_checkpoint", nargs="?", default=None, metavar="MIXER_CHECKPOINT",
                   help="after `mixer`: a dmc checkpoint (models/mixers/dmc.json) or dmc (untrained)")
    p.add_argument("--format", choices=("onnx", "torchscript"), default="onnx",
                   help="artifact format (default: onnx)")
    add_output(p, metavar="ARTIFACT_DIR", help="artifact folder (created); for a mixer, OUT.onnx", old=())
    p.add_argument("--seed", type=int, default=0, help="initialisation seed for a registry model name (default: 0)")
    p.set_defaults(func=_export)


def _register_compare(sub) -> None:
    from .compare.run import DEFAULT_RANDOM_SETS  # numpy and the schema, never torch

    c = sub.add_parser(
        "compare", help="compare a proxy with the real plugin it imitates (metrics, plots, report)",
        description=("Render the same inputs and parameters through the real plugin (a plugin map name or "
                     "JSON, or a builtin chain such as compressor or eq,compressor) and the proxy (a "
                     "checkpoint or an exported artifact); write REPORT_DIR/report.md with metrics overall "
                     "and per parameter region, spectrograms, and static transfer curves."))
    c.add_argument("--plugin", required=True, action="append", metavar="MAP_OR_BUILTIN",
                   help="plugin map name/JSON (repeat for a chain) or builtin processors (eq,compressor)")
    c.add_argument("--proxy", required=True, metavar="CHECKPOINT_OR_ARTIFACT",
                   help="a checkpoint (NAME.json) or an exported artifact folder")
    c.add_argument("--input", metavar="AUDIO", help="an audio file or folder (default: a built-in test programme "
                   "of level-stepped noise bursts and decaying tones)")
    g = c.add_mutually_exclusive_group()
    g.add_argument("--params", metavar="FILE", help="JSON: a list of {\"processor.param\": real value} dicts")
    g.add_argument("--random", type=int, default=None, metavar="N",
                   help=f"N parameter sets drawn uniformly over the proxy's trained ranges "
                        f"(default: {DEFAULT_RANDOM_SETS} when no --params is given)")
    c.add_argument("--patch-s", type=float, default=1.48, metavar="SECONDS",
                   help="patch length in seconds (default: 1.48)")
    c.add_argument("--seed", type=int, default=0, help="seed of the patches and random parameters (default: 0)")
    c.add_argument("--sample-rate", type=int, default=None, metavar="HZ",
                   help="refuse a proxy trained at another rate (default: render at the proxy's rate)")
    c.add_argument("--no-curves", action="store_true", help="skip the static transfer curves")
    c.add_argument("--no-contract", action="store_true",
                   help="skip the semantic contract on the plugin and the proxy (static curve, attack and release, "
                        "EQ magnitude)")
    c.add_argument("--bins", type=int, default=3, help="regions per parameter in the per-region table (default: 3)")
    add_output(c, metavar="REPORT_DIR", help="report folder (created)")
    c.set_defaults(func=_compare, command="compare")


def _export(args) -> int:
    if args.mixer_checkpoint is not None or args.checkpoint == "mixer":
        return _export_mixer(args)
    from .artifact import load_artifact
    from .exporter import export_model
    from .torchscript import open_session

    sidecar_path = export_model(args.checkpoint, args.format, args.output, seed=args.seed)
    artifact = load_artifact(sidecar_path.parent)
    err = open_session(artifact).verify(block_size=64)
    s = artifact.sidecar
    print(f"wrote {artifact.path} ({s['artifact_format']}, {s['architecture']}, "
          f"{s['config']['n_blocks']} blocks, {'causal' if s['causal'] else 'centre-cropped'}): "
          f"sample_rate {s['sample_rate']} Hz, latency {s['latency_samples']} samples, receptive field "
          f"{s['receptive_field']} samples, blocks {s['block_sizes']['min']}..{s['block_sizes']['max']}, "
          f"golden max error {err:.2g}")
    return 0


def _export_mixer(args) -> int:
    from mixbridge.errors import UnknownNameError

    if args.checkpoint != "mixer" or args.mixer_checkpoint is None:
        raise UnknownNameError(f"`mixbridge export {args.checkpoint} {args.mixer_checkpoint or ''}`: two "
                               "positional arguments are `mixer CHECKPOINT`; write `mixbridge export mixer "
                               "CHECKPOINT -o OUT.onnx` for a mixer, `mixbridge export CHECKPOINT -o DIR` for a proxy")
    if args.format != "onnx":
        raise UnknownNameError(f"--format {args.format}: a mixer exports to onnx only; drop --format")
    from .mixer_onnx import OnnxDMCMixer, export_mixer_onnx

    path = export_mixer_onnx(args.mixer_checkpoint, args.output, seed=args.seed)
    runner = OnnxDMCMixer(path)
    err = runner.verify()
    c = runner.sidecar["config"]
    print(f"wrote {path} (+ {path.name}.json, {path.name}.golden.npz): dmc mixer, "
          f"{c['n_mels']} mel bands at {c['sample_rate']} Hz, dynamic tracks and frames, {path.stat().st_size} bytes, "
          f"golden max error {err:.2g}")
    return 0


def _compare(args) -> int:
    from .compare import compare_proxy

    compare_proxy(args.plugin, args.proxy, args.output, input_path=args.input, params_file=args.params,
                  n_random=args.random, patch_s=args.patch_s, seed=args.seed, bins=args.bins,
                  sample_rate=args.sample_rate, curves=not args.no_curves, contract=not args.no_contract,
                  echo=print)
    return 0
