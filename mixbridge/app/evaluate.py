"""``mixbridge evaluate``: score a mix against a reference, or every mixer on a dataset's test split.

Two forms, one library each (STYLE.md point 12):

* ``mixbridge evaluate MIX.wav --reference REF.wav [--stems DIR] [--json OUT.json]``: the scores of
  :func:`mixbridge.models.evaluation.evaluate_mix` (both loudness-normalised first), printed as an
  aligned plain-text table (:func:`format_report`) and optionally written as JSON.
* ``mixbridge evaluate --dataset DIR [--split test] [--mixers all|a,b] [--backend builtin] [--limit N]
  [-o OUT_DIR]``: :func:`evaluate_dataset`. For each excerpt of the split (read by
  :func:`mixbridge.plugins.datagen.composer.read_composer_dataset`), each mixer (``random`` with seeds
  0, 1, 2) mixes the excerpt's input stems, its session's console is rendered by the chosen backend
  (:func:`mixbridge.plugins.console.render_console`, the function :func:`mixbridge.app.automix.render_session`
  uses, without the master bus: the target ``target/mix.wav`` is a pre-master console mix) and the mix is
  scored against the target with the stems (a direct mixer, ``dae`` or ``mixwaveunet``, is scored on the audio it
writes, which is pre-master too, with no render). Rows go to ``OUT_DIR/results.jsonl`` as they are made (one
  per mixer run x excerpt; a rerun skips the rows it has, so an interrupted batch resumes), the means per
  run and per song to ``OUT_DIR/summary.json``, and the markdown table of :func:`markdown_table` is printed.

A mixer that cannot run (its module or checkpoint is missing, or it raises a
:class:`~mixbridge.errors.MixbridgeError`) is skipped with its reason printed and kept in the summary.
Imports no torch at module level.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from mixbridge.cli_options import EXIT_OK, add_backend, add_output, add_quiet
from mixbridge.errors import MixbridgeError

#: The seeds the ``random`` mixer is run with.
RANDOM_SEEDS = (0, 1, 2)
#: The five scores of the batch table, in column order: (key, header, format).
TABLE_COLUMNS = (("sum_difference_mrstft", "sum/diff MR-STFT", "{:.3f}"), ("level_rmse_db", "level RMSE dB", "{:.2f}"),
                 ("time_level_rmse_db", "time level RMSE dB", "{:.2f}"),
                 ("pan_mae", "pan MAE", "{:.3f}"), ("feature_distance", "feature distance", "{:.3f}"))
RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"


class EvaluateUsageError(ValueError, MixbridgeError):
    """An ``evaluate`` call that mixes the two forms, misses an input or names unknown mixers."""


# --- one mix against one reference ---------------------------------------------------------------

def evaluate_files(mix_path: str | Path, reference_path: str | Path, stems_dir: str | Path | None = None) -> dict:
    """:func:`~mixbridge.models.evaluation.evaluate_mix` of two audio files (and a stem folder).

    The reference is resampled to the mix's rate when it differs (a notice); stems are loaded with
    :func:`mixbridge.audio.load_stems` at the mix's rate (its notices are kept). The result gains
    ``mix_path``, ``reference_path`` and ``stems_dir``.

    Raises:
        AudioInputError: an unreadable file or stem folder. EvaluationInputError: audio that cannot be scored.
    """
    from mixbridge.audio import load_stems, read_audio
    from mixbridge.models.evaluation import evaluate_mix

    mix, rate = read_audio(mix_path)
    ref, ref_rate = read_audio(reference_path)
    stems = names = None
    stem_notices: list[str] = []
    if stems_dir is not None:
        ss = load_stems(stems_dir, sample_rate=rate)
        stems, names, stem_notices = [s.audio for s in ss.stems], [s.name for s in ss.stems], list(ss.notices)
    res = evaluate_mix(mix, ref, rate, stems, reference_sample_rate=ref_rate, track_names=names)
    res["notices"] = stem_notices + res["notices"]
    res.update(mix_path=str(mix_path), reference_path=str(reference_path),
               stems_dir=None if stems_dir is None else str(stems_dir))
    return res


def _fmt(v, spec: str = "{:.3f}", none: str = "undefined") -> str:
    return none if v is None else spec.format(v)


def format_report(res: dict) -> str:
    """The plain-text table ``mixbridge evaluate MIX --reference REF`` prints for an :func:`evaluate_mix` result."""
    lines = [f"mix vs reference at {res['sample_rate']} Hz, {res['n_samples'] / res['sample_rate']:.3f} s, "
             f"both normalised to {res['normalised_lufs']:g} LUFS" + (" (compared as mono)" if res["mono"] else "")]
    rows = [("sum/difference MR-STFT", _fmt(res["mrstft"]["sum_difference"])),
            ("  sum (L+R) MR-STFT", _fmt(res["mrstft"]["sum"])),
            ("  difference (L-R) MR-STFT", _fmt(res["mrstft"]["difference"])),
            ("feature distance", _fmt(res["feature_distances"]["total"]))]
    fm, fr = res["features"]["mix"], res["features"]["reference"]
    for name in ("rms", "crest_factor_db", "stereo_width", "stereo_imbalance", "bark_spectrum"):
        if name in ("rms", "crest_factor_db"):
            vals = f"mix {' '.join(f'{v:.3f}' for v in fm[name])}  ref {' '.join(f'{v:.3f}' for v in fr[name])}"
        elif name == "bark_spectrum":
            vals = "(24 bands x mid/side)"
        else:
            vals = f"mix {_fmt(fm[name])}  ref {_fmt(fr[name])}"
        rows.append((f"  {name}", f"{_fmt(res['feature_distances'][name], '{:.4g}')}   {vals}"))
    for who in ("mix", "reference"):
        c = res["compliance"][who]
        ok = "" if who == "reference" else (f" (target {c['target_lufs']:g} +-{c['lufs_tolerance_lu']:g}: "
                                            f"{'ok' if c['lufs_ok'] else 'off'})")
        tp_ok = "" if who == "reference" else (f" (ceiling {c['ceiling_dbtp']:g}: "
                                               f"{'ok' if c['true_peak_ok'] else 'over'})")
        rows.append((f"{who} loudness", f"{c['lufs']:.2f} LUFS{ok}, true peak "
                                        f"{_fmt(c['true_peak_dbtp'], '{:.2f}', '-inf')} dBTP{tp_ok}"))
    width = max(len(k) for k, _ in rows)
    lines += [f"  {k:<{width}}  {v}" for k, v in rows]
    ob = res["octave_bands"]
    cells = [(f"{f:g}", _fmt(d, "{:+.2f}", "-")) for f, d in zip(ob["nominal_hz"], ob["difference_db"])]
    lines.append("  octave bands, mix - reference (dB):")
    lines.append("    " + " ".join(f"{a:>7}" for a, _ in cells) + "  Hz")
    lines.append("    " + " ".join(f"{b:>7}" for _, b in cells))
    t = res.get("tracks")
    if t:
        w = max(len(n) for n in t["names"] + ["track"])
        lines.append("  tracks (least squares):")
        lines.append(f"    {'track':<{w}}  {'level dB mix':>12} {'ref':>7}  {'pan mix':>8} {'ref':>7}")
        for i, nm in enumerate(t["names"]):
            pm = _fmt(None if t["mix_pan"] is None else t["mix_pan"][i], "{:+.3f}", "-")
            pr = _fmt(None if t["reference_pan"] is None else t["reference_pan"][i], "{:+.3f}", "-")
            mark = "  (skipped)" if nm in t["skipped"] else ""
            lines.append(f"    {nm:<{w}}  {t['mix_level_db'][i]:>12.2f} {t['reference_level_db'][i]:>7.2f}  "
                         f"{pm:>8} {pr:>7}{mark}")
        lines.append(f"  level RMSE {_fmt(t['level_rmse_db'], '{:.2f}')} dB (mean difference removed), "
                     f"pan MAE {_fmt(t['pan_mae'])}")
    lines += [f"  notice: {n}" for n in res["notices"]]
    return "\n".join(lines)


# --- the batch over a dataset ---------------------------------------------------------------------

def _runs(mixers) -> list[tuple[str, int]]:
    """``(mixer, seed)`` runs of the named mixers (``"all"``, a comma list, or a list): random gets every seed.

    Raises:
        UnknownNameError: an unknown mixer name (the message lists the known mixers).
    """
    from mixbridge.errors import UnknownNameError
    from mixbridge.models.mixers import mixer_names

    known = mixer_names()
    if isinstance(mixers, str):
        names = known if mixers.strip() == "all" else [m.strip() for m in mixers.split(",") if m.strip()]
    else:
        names = list(mixers)
    unknown = [m for m in names if m not in known]
    if unknown or not names:
        raise UnknownNameError(f"unknown mixer(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(known)} "
                               "(--mixers all or a comma list of these)")
    return [(m, s) for m in names for s in (RANDOM_SEEDS if m == "random" else (0,))]


def run_name(mixer: str, seed: int) -> str:
    """The name of one mixer run in the rows and the summary: ``mixer``, or ``random#seed`` for ``random``."""
    return f"{mixer}#{seed}" if mixer == "random" else mixer


def _read_rows(path: Path) -> list[dict]:
    """The complete rows of a ``results.jsonl``; a torn last line (an interrupted write) is cut off the file."""
    if not path.exists():
        return []
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        with open(path, "r+b") as f:
            f.truncate(cut)
        data = data[:cut]
    rows = []
    for line in data.decode("utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _append_row(path: Path, row: dict) -> None:
    import os

    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None]
    return float(sum(vals) / len(vals)) if vals else None


def _aggregate(rows: list[dict]) -> dict:
    return {"n_excerpts": len(rows), **{k: _mean(r[k] for r in rows) for k, _, _ in TABLE_COLUMNS}}


def _is_direct_mixer(name: str) -> bool:
    """Whether registered mixer ``name`` is a direct mixer (False for unknown names or ones that cannot be built)."""
    from mixbridge.models.direct_mixers import is_direct
    from mixbridge.models.mixers import get_mixer, mixer_names

    if name not in mixer_names():
        return False
    try:
        return is_direct(get_mixer(name))
    except (MixbridgeError, ImportError):
        return False


def markdown_table(summary: dict) -> str:
    """The README's markdown table of a :func:`evaluate_dataset` summary: one row per mixer (``random``: the
    range of its seeds' means), columns :data:`TABLE_COLUMNS`, each the mean over the split's excerpts. A row
    is labelled ``mixer, backend``, or ``mixer, direct`` for a direct mixer (scored on its own audio)."""
    runs = summary["runs"]
    head = "| mixer | " + " | ".join(h for _, h, _ in TABLE_COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(TABLE_COLUMNS) + 1)]
    done: set[str] = set()
    for name in runs:
        mixer = runs[name]["mixer"]
        if mixer in done:
            continue
        done.add(mixer)
        group = [runs[n] for n in runs if runs[n]["mixer"] == mixer]
        direct = _is_direct_mixer(mixer)   # scored on its own audio: no backend rendered it
        label = (f"{mixer}, direct" if direct else f"{mixer}, {summary['backend']}") + (
            f" ({len(group)} seeds)" if mixer == "random" else "")
        cells = []
        for key, _, spec in TABLE_COLUMNS:
            vals = [g[key] for g in group if g[key] is not None]
            if not vals:
                cells.append("-")
            elif len(vals) == 1:
                cells.append(spec.format(vals[0]))
            else:
                cells.append(f"{spec.format(min(vals))}-{spec.format(max(vals))}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _load_dataset(root):
    """The dataset: ``root`` itself when it already is one (has ``split``), else H1's reader on the folder."""
    if hasattr(root, "split") and hasattr(root, "excerpts"):
        return root
    from mixbridge.plugins.datagen.composer import read_composer_dataset

    return read_composer_dataset(root)


def score_run(mixer, seed: int, ex, stems, target, backend: str) -> dict:
    """Mix, render (console, no master) and score one excerpt with one mixer run; the row's measurements.

    ``mixer``: any callable ``mixer(stems, seed=, source_base=) -> Session`` (a registered mixer, or a
    script's own, e.g. the composer's session with its pans centred: ``scripts/composer_pan_floor.py``);
    ``ex``: a composer excerpt; ``stems``: its :class:`~mixbridge.audio.StemSet`; ``target``: its target mix
    float32 ``[2, samples]``; ``backend``: ``builtin`` or ``vst``.

    A direct mixer (:func:`mixbridge.models.direct_mixers.is_direct`) is scored on its own audio (its
    ``mix``, pre-master like the target), with no render; the backend does not apply to it."""
    import numpy as np

    from mixbridge.models.direct_mixers import is_direct
    from mixbridge.models.evaluation import evaluate_mix
    from mixbridge.plugins.backend import get_backend
    from mixbridge.plugins.console import render_console

    t0 = time.perf_counter()
    if is_direct(mixer):  # a direct mixer's audio is its mix: nothing to render
        mix, render_notices = mixer.mix(stems, seed=seed, source_base=Path(ex.stems_dir)).audio, []
    else:
        session = mixer(stems, seed=seed, source_base=Path(ex.stems_dir))
        be = get_backend(backend, stems.sample_rate)
        console = render_console(session, be, audio={s.name: s.audio for s in stems.stems})
        mix, render_notices = console.mix, list(console.notices)
    t_mix = time.perf_counter() - t0
    res = evaluate_mix(mix, target, stems.sample_rate, [s.audio for s in stems.stems],
                       track_names=[s.name for s in stems.stems])
    tr = res["tracks"]
    return {**res["scores"], "mrstft_sum": res["mrstft"]["sum"], "mrstft_difference": res["mrstft"]["difference"],
            "feature_terms": {k: v for k, v in res["feature_distances"].items() if k != "total"},
            "octave_difference_db": res["octave_bands"]["difference_db"],
            "mix_level_db": tr["mix_level_db"], "reference_level_db": tr["reference_level_db"],
            "mix_pan": tr["mix_pan"], "reference_pan": tr["reference_pan"], "track_names": tr["names"],
            "render_notices": render_notices, "notices": res["notices"],
            "mix_lufs": res["compliance"]["mix"]["lufs"], "n_tracks": len(stems.stems),
            "peak": float(np.max(np.abs(mix))), "mix_render_s": round(t_mix, 3),
            "seconds": round(time.perf_counter() - t0, 3)}


def evaluate_dataset(root, mixers="all", split: str = "test", backend: str = "builtin",
                     out_dir: str | Path | None = None, limit: int | None = None, progress: bool = True,
                     log=None) -> dict:
    """Score every mixer run on every excerpt of a composer dataset's ``split`` (module docstring).

    Args:
        root: the dataset folder (or an already-read dataset object with ``split()``).
        mixers: ``"all"`` (every registered mixer), a comma list, or a list of names; ``random`` runs with
            :data:`RANDOM_SEEDS`.
        split: ``train``, ``val`` or ``test``.
        backend: the render backend (``builtin``, ``vst``).
        out_dir: where ``results.jsonl`` (appended row by row; rows already there are not recomputed) and
            ``summary.json`` go; nothing is written when None.
        limit: score only the first ``limit`` excerpts of the split (manifest order).
        progress: a tqdm bar over mixer runs x excerpts.
        log: ``log(line)`` for the skipped mixers' reasons (default: print to stderr).

    Returns:
        The summary: ``runs`` ``{run: {mixer, seed, n_excerpts, <TABLE_COLUMNS keys>}}`` (means over excerpts),
        ``per_song`` ``{run: {song: {...}}}``, ``skipped`` ``{mixer: reason}``, ``excerpts`` (ids), ``table``
        (:func:`markdown_table`), ``dataset``, ``split``, ``backend``, ``seconds``.

    Raises:
        ComposerDatasetError: an incomplete or bad dataset. UnknownNameError: unknown mixers or backend.
        EvaluateUsageError: an empty split, a ``limit`` below 1, or an ``out_dir`` holding another dataset's rows.
    """
    from tqdm import tqdm

    from mixbridge.app.automix import build_mixer
    from mixbridge.audio import load_stems
    from mixbridge.plugins.backend import get_backend
    from mixbridge.roles import assign_roles, roles_from_manifest

    log = log or (lambda line: print(line, file=sys.stderr))
    t0 = time.perf_counter()
    runs = _runs(mixers)
    get_backend(backend, 44100)  # fail fast on an unknown or unavailable backend
    if limit is not None and int(limit) < 1:
        raise EvaluateUsageError(f"--limit {limit} must be at least 1 (or left out for every excerpt)")
    ds = _load_dataset(root)
    dataset_id = str(Path(getattr(ds, "root", root)).resolve())
    excerpts = list(ds.split(split))
    if not excerpts:
        raise EvaluateUsageError(f"split '{split}' of {getattr(ds, 'root', root)} holds no excerpts; "
                                 "use --split train|val|test with excerpts in it")
    if limit is not None:
        excerpts = excerpts[: int(limit)]
    rows_path = None
    have: dict[tuple[str | None, str | None, str | None], dict] = {}  # rows read back may lack a key
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        rows_path = out / RESULTS_FILE
        for r in _read_rows(rows_path):
            if r.get("dataset") not in (None, dataset_id):
                raise EvaluateUsageError(f"{rows_path} holds rows of dataset {r.get('dataset')}, not {dataset_id}; "
                                         "give another -o/--output folder (or remove it) to score this one")
            have[(r.get("run"), r.get("excerpt"), r.get("backend"))] = r
    built: dict[str, object] = {}
    skipped: dict[str, str] = {}
    for name in dict.fromkeys(m for m, _ in runs):
        try:
            built[name] = build_mixer(name)
        except (MixbridgeError, ImportError) as e:
            skipped[name] = f"{type(e).__name__}: {e}"
            log(f"mixbridge evaluate: skipping mixer {name}: {skipped[name]}")
    rows: list[dict] = []
    bar = tqdm(total=len(excerpts) * len(runs), desc=f"evaluate ({split})", unit="mix", disable=not progress)
    try:
        for ex in excerpts:
            stems = target = None
            for mixer_name, seed in runs:
                key = (run_name(mixer_name, seed), ex.id, backend)
                bar.update(1)
                if key in have:
                    rows.append(have[key])
                    continue
                if mixer_name in skipped:
                    continue
                if stems is None:
                    stems = load_stems(ex.stems_dir, roles=roles_from_manifest(ex.stems_dir))
                    stems.notices.extend(assign_roles(stems.stems))
                    target = ex.load_target_mix()
                bar.set_postfix_str(f"{ex.id} {key[0]}")
                try:
                    measured = score_run(built[mixer_name], seed, ex, stems, target, backend)
                except (MixbridgeError, ImportError) as e:
                    skipped[mixer_name] = f"{type(e).__name__} on {ex.id}: {e}"
                    log(f"mixbridge evaluate: skipping mixer {mixer_name}: {skipped[mixer_name]}")
                    continue
                row = {"run": key[0], "mixer": mixer_name, "seed": seed, "excerpt": ex.id, "song": ex.song,
                       "lump": ex.lump, "split": split, "backend": backend, "dataset": dataset_id, **measured}
                rows.append(row)
                if rows_path is not None:
                    _append_row(rows_path, row)
    finally:
        bar.close()
    # a mixer that failed part-way is reported as skipped, not averaged over the excerpts it managed
    summary = summarise([r for r in rows if r["mixer"] not in skipped], runs)
    summary.update(dataset=dataset_id, split=split, backend=backend, skipped=skipped,
                   excerpts=[ex.id for ex in excerpts], seconds=round(time.perf_counter() - t0, 2))
    summary["table"] = markdown_table(summary)
    if out_dir is not None:
        from mixbridge.atomic import atomic_write_text

        atomic_write_text(Path(out_dir) / SUMMARY_FILE, json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def summarise(rows: list[dict], runs: list[tuple[str, int]] | None = None) -> dict:
    """Means per run (over excerpts) and per run and song of result rows: ``{"runs": ..., "per_song": ...}``.

    ``runs`` fixes the order (default: the rows' order)."""
    order = [run_name(m, s) for m, s in runs] if runs else list(dict.fromkeys(r["run"] for r in rows))
    out_runs, per_song = {}, {}
    for name in order:
        mine = [r for r in rows if r["run"] == name]
        if not mine:
            continue
        out_runs[name] = {"mixer": mine[0]["mixer"], "seed": mine[0]["seed"], **_aggregate(mine)}
        songs = dict.fromkeys(r["song"] for r in mine)
        per_song[name] = {s: _aggregate([r for r in mine if r["song"] == s]) for s in songs}
    return {"runs": out_runs, "per_song": per_song}


# --- the command line ------------------------------------------------------------------------------

def _evaluate(args: argparse.Namespace) -> int:
    """``mixbridge evaluate``: one of the two forms (module docstring)."""
    if args.dataset is not None:
        if args.mix is not None or args.reference is not None or args.stems is not None:
            raise EvaluateUsageError("give either MIX.wav --reference REF.wav [--stems DIR] or --dataset DIR, "
                                     "not both")
        summary = evaluate_dataset(args.dataset, args.mixers, split=args.split, backend=args.backend,
                                   out_dir=args.output, limit=args.limit, progress=not args.quiet,
                                   log=(lambda line: None) if args.quiet else None)  # listed below anyway
        if args.json:
            from mixbridge.atomic import atomic_write_text

            atomic_write_text(args.json, json.dumps(summary, indent=2, sort_keys=True) + "\n")
        n = len(summary["excerpts"])
        print(f"{args.split} split of {summary['dataset']}: {n} excerpt(s), backend {args.backend}, "
              f"every file loudness-normalised before scoring ({summary['seconds']:.1f} s)")
        print(summary["table"])
        for name, why in summary["skipped"].items():
            print(f"skipped {name}: {why}")
        return EXIT_OK
    if args.mix is None or args.reference is None:
        raise EvaluateUsageError("give MIX.wav and --reference REF.wav (or --dataset DIR for the batch form)")
    if args.output is not None:
        raise EvaluateUsageError("-o/--output is the batch form's folder; for one mix use --json OUT.json")
    res = evaluate_files(args.mix, args.reference, args.stems)
    if args.json:
        from mixbridge.atomic import atomic_write_text

        atomic_write_text(args.json, json.dumps(res, indent=2, sort_keys=True) + "\n")
    if not args.quiet:
        print(format_report(res))
    return EXIT_OK


def register(sub) -> None:
    """Add ``evaluate`` to the top CLI's subparsers ``sub``."""
    from mixbridge.plugins.backend import backend_names

    p = sub.add_parser("evaluate", help="score a mix against a reference, or every mixer on a dataset split",
                       description=(
                           "Score MIX.wav against --reference REF.wav after loudness-normalising both: "
                           "sum/difference MR-STFT, Diff-MST audio features and their distance, octave-band "
                           "levels, loudness and true peak, and with --stems each track's level and pan by least "
                           "squares. With --dataset DIR, score every mixer on a composer dataset's split and "
                           "print the markdown table."))
    p.add_argument("mix", nargs="?", default=None, metavar="MIX.wav", help="the mix to score")
    p.add_argument("--reference", default=None, metavar="REF.wav", help="the reference mix")
    p.add_argument("--stems", default=None, metavar="DIR", help="the stems of the mix (track levels and pans)")
    p.add_argument("--json", default=None, metavar="OUT.json", help="also write the full result as JSON")
    p.add_argument("--dataset", default=None, metavar="DIR", help="batch form: a composer dataset folder")
    p.add_argument("--split", default="test", choices=("train", "val", "test"),
                   help="batch form: the split to score (default: test)")
    p.add_argument("--mixers", default="all", metavar="all|a,b",
                   help="batch form: mixers to score (default: all registered; random runs seeds 0, 1, 2)")
    add_backend(p, choices=backend_names(), default="builtin", help="batch form: render backend")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="batch form: only the first N excerpts")
    add_output(p, metavar="OUT_DIR", old=(), required=False,
               help="batch form: folder for results.jsonl (resumable) and summary.json")
    add_quiet(p, help="no progress bar (and, for one mix, no table)")
    p.set_defaults(func=_evaluate)


__all__ = ["evaluate_files", "evaluate_dataset", "format_report", "markdown_table", "summarise", "run_name",
           "EvaluateUsageError", "register"]
