"""``mixbridge listen results``: read listening-test submissions, check them, and aggregate the ratings.

A submission is the JSON object the page (``listen.js``) downloads as ``ratings.json`` and POSTs to
``listen serve`` (which appends it as one line of a JSONL file): ``format`` :data:`RESULTS_FORMAT`, the
listener id, the page id, the trial order and one entry per trial (item, condition order, ratings 0..100,
the switches with their playback positions). :func:`read_submissions` reads JSONL files, single downloads
or JSON arrays of them and refuses malformed ones naming the file and line; :func:`aggregate` gives

* the mean and the 95 % confidence interval (Student's t, ``n - 1`` degrees of freedom) of the ratings per
  condition and per (item, condition);
* for every pair of conditions the Wilcoxon signed-rank test (:func:`scipy.stats.wilcoxon`, two-sided,
  Wilcoxon 1945) on the ratings paired by (listener, item), with its p value and the Holm (1979)
  step-down adjusted p value over all the pairs;
* MUSHRA post-screening per listener (ITU-R BS.1534-3 section 4.1: a listener who rates the hidden reference
  below :data:`SCREEN_RATING` in more than :data:`SCREEN_FRACTION` of the items), reported, and applied when
  asked (``exclude_screened``).

:func:`write_results` writes ``results.json`` (atomic) and ``ratings.png`` (matplotlib's Agg canvas) and
:func:`format_table` the plain-text table the command prints.
"""
from __future__ import annotations

import json
import math
from collections import defaultdict
from itertools import combinations
from pathlib import Path

from mixbridge.errors import MixbridgeError

RESULTS_FORMAT = "mixbridge-listen-results"
RESULTS_VERSIONS = (1,)
#: BS.1534-3 post-screening: hidden reference rated below this in more than this fraction of the items.
SCREEN_RATING = 90.0
SCREEN_FRACTION = 0.15
#: Confidence level of the intervals.
CONFIDENCE = 0.95
MAX_LISTENER_CHARS = 64


class ListenResultsError(ValueError, MixbridgeError):
    """A submission or results file that is not what the listening page writes."""


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def validate_submission(record, *, config: dict | None = None, where: str = "submission") -> dict:
    """Check one submission (module docstring) and return it; with the page's ``config`` also check that it
    belongs to that page (page id, items, conditions).

    Raises:
        ListenResultsError: naming ``where``, the field, the value and what was expected.
    """
    def bad(msg: str) -> ListenResultsError:
        return ListenResultsError(f"{where}: {msg}; give the ratings.json the listening page wrote, or the "
                                  "results JSONL file of `mixbridge listen serve`")

    if not isinstance(record, dict):
        raise bad(f"a JSON object was expected, got {type(record).__name__}")
    if record.get("format") != RESULTS_FORMAT:
        raise bad(f"'format' is {record.get('format')!r}, expected {RESULTS_FORMAT!r}")
    if record.get("version") not in RESULTS_VERSIONS:
        raise bad(f"'version' {record.get('version')!r} is not one of {list(RESULTS_VERSIONS)}")
    listener = record.get("listener")
    if not isinstance(listener, str) or not 0 < len(listener.strip()) <= MAX_LISTENER_CHARS:
        raise bad(f"'listener' {listener!r} must be text of 1..{MAX_LISTENER_CHARS} characters")
    trials = record.get("trials")
    if not isinstance(trials, list) or not trials:
        raise bad("'trials' must be a non-empty list")
    if not isinstance(record.get("trial_order"), list):
        raise bad("'trial_order' (the order the listener was given) is missing")
    items = conds = None
    if config is not None:
        if record.get("page_id") != config.get("page_id"):
            raise bad(f"page id {record.get('page_id')!r} is not this page's ({config.get('page_id')!r})")
        items = {i["name"] for i in config["items"]}
        conds = {c["name"] for c in config["conditions"]}
    for k, t in enumerate(trials):
        if not isinstance(t, dict) or not isinstance(t.get("item"), str):
            raise bad(f"trial {k}: not an object with an 'item'")
        ratings, order = t.get("ratings"), t.get("condition_order")
        if not isinstance(ratings, dict) or not ratings:
            raise bad(f"trial {k} ({t['item']}): 'ratings' must be an object of condition: rating")
        if not isinstance(order, list) or sorted(order) != sorted(ratings):
            raise bad(f"trial {k} ({t['item']}): 'condition_order' {order!r} does not list the rated conditions")
        for name, v in ratings.items():
            if not _number(v) or not 0 <= v <= 100:
                raise bad(f"trial {k} ({t['item']}): rating of {name!r} is {v!r}; ratings are numbers in 0..100")
        if not isinstance(t.get("switches", []), list):
            raise bad(f"trial {k} ({t['item']}): 'switches' must be a list")
        if items is not None and conds is not None:
            if t["item"] not in items:
                raise bad(f"trial {k}: item {t['item']!r} is not on this page")
            if set(ratings) != conds:
                raise bad(f"trial {k} ({t['item']}): rated {sorted(ratings)}, the page has {sorted(conds)}")
    return record


def read_submissions(paths) -> list[dict]:
    """Every submission in ``paths`` (JSONL files, single ``ratings.json`` downloads, or JSON arrays), checked.

    Raises:
        ListenResultsError: a missing, empty or malformed file (named, with the line), or no submission at all.
    """
    out: list[dict] = []
    for path in map(Path, paths):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ListenResultsError(f"{path}: cannot read it ({e}); give a results file of the listening "
                                     "page") from None
        try:
            whole = json.loads(text)
        except json.JSONDecodeError:
            whole = None
        if isinstance(whole, dict):
            out.append(validate_submission(whole, where=str(path)))
            continue
        if isinstance(whole, list):
            out += [validate_submission(r, where=f"{path}: entry {k}") for k, r in enumerate(whole)]
            continue
        lines = [(n, s) for n, s in enumerate(text.splitlines(), 1) if s.strip()]
        if not lines:
            raise ListenResultsError(f"{path}: empty; no listener has submitted yet")
        for n, line in lines:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ListenResultsError(f"{path}:{n}: not JSON ({e.msg} at column {e.colno}); the file is not a "
                                         "results JSONL file, or the line was cut: remove it") from None
            out.append(validate_submission(rec, where=f"{path}:{n}"))
    if not out:
        raise ListenResultsError("no submissions: give at least one results file")
    return out


def mean_ci(values) -> dict:
    """``{"n", "mean", "sd", "ci95"}`` of ``values``: ``ci95`` is the half width ``t(0.975, n-1) * sd / sqrt(n)``
    (sd with ``n - 1``); ``sd`` and ``ci95`` are None for one value."""
    from scipy.stats import t as student_t

    vals = [float(v) for v in values]
    n = len(vals)
    mean = sum(vals) / n
    if n < 2:
        return {"n": n, "mean": mean, "sd": None, "ci95": None}
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1))
    t_crit = float(student_t.ppf(0.5 + CONFIDENCE / 2, n - 1))
    return {"n": n, "mean": mean, "sd": sd, "ci95": t_crit * sd / math.sqrt(n)}


def holm(pvalues: list[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p values (None stays None), capped at 1 and kept monotone."""
    idx = sorted((p, k) for k, p in enumerate(pvalues) if p is not None)
    out: list[float | None] = [None] * len(pvalues)
    m, running = len(idx), 0.0
    for rank, (p, k) in enumerate(idx):
        running = max(running, min(1.0, (m - rank) * p))
        out[k] = running
    return out


def paired_test(a: list[float], b: list[float]) -> dict:
    """Wilcoxon signed-rank test (two-sided) of paired ratings ``a`` and ``b``: n, median of ``a - b``, the
    statistic and p; p is None (with a ``reason``) with no pairs or when every difference is zero."""
    from scipy.stats import wilcoxon

    diffs = sorted(x - y for x, y in zip(a, b))
    n = len(diffs)
    res: dict = {"n": n, "median_difference": None, "statistic": None, "p": None, "reason": None}
    if n == 0:
        res["reason"] = "no listener rated both on one item"
        return res
    res["median_difference"] = (diffs[(n - 1) // 2] + diffs[n // 2]) / 2
    if all(d == 0 for d in diffs):
        res["reason"] = "every paired difference is zero"
        return res
    w = wilcoxon(a, b)
    res.update(statistic=float(w.statistic), p=float(w.pvalue))
    return res


def aggregate(submissions: list[dict], *, exclude_screened: bool = False) -> dict:
    """Aggregate checked submissions (module docstring); returns the ``results.json`` content.

    Ratings a listener gave one (item, condition) in several submissions are averaged (a notice says so).
    """
    notices: list[str] = []
    cell: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    styles = {s.get("style") for s in submissions}
    pages = {s.get("page_id") for s in submissions}
    if len(pages) > 1:
        notices.append(f"the submissions come from {len(pages)} different pages (page ids {sorted(map(str, pages))})")
    for s in submissions:
        for t in s["trials"]:
            for cond, v in t["ratings"].items():
                cell[(s["listener"], t["item"], cond)].append(float(v))
    for key, vs in cell.items():
        if len(vs) > 1:
            notices.append(f"listener {key[0]!r} rated {key[1]}/{key[2]} {len(vs)} times: the mean is used")
    ratings = {k: sum(v) / len(v) for k, v in cell.items()}
    screening = _screening(ratings)
    excluded = sorted(x["listener"] for x in screening if x["fails"]) if exclude_screened else []
    ratings = {k: v for k, v in ratings.items() if k[0] not in excluded}
    if not ratings:
        raise ListenResultsError("every listener failed the post-screening; rerun without --exclude-screened")
    conditions = sorted({c for _, _, c in ratings})
    items = sorted({i for _, i, _ in ratings})
    per_condition = {c: mean_ci([v for (_, _, cc), v in ratings.items() if cc == c]) for c in conditions}
    per_item = {i: {c: mean_ci([v for (_, ii, cc), v in ratings.items() if ii == i and cc == c])
                    for c in conditions if any(ii == i and cc == c for _, ii, cc in ratings)} for i in items}
    pairs = []
    for a, b in combinations(conditions, 2):
        keys = sorted({(lst, i) for lst, i, c in ratings if c == a} & {(lst, i) for lst, i, c in ratings if c == b})
        test = paired_test([ratings[(*k, a)] for k in keys], [ratings[(*k, b)] for k in keys])
        pairs.append({"a": a, "b": b, **test})
    for pr, adj in zip(pairs, holm([p["p"] for p in pairs])):
        pr["p_holm"] = adj
    return {"format": "mixbridge-listen-summary", "version": 1, "style": sorted(map(str, styles)),
            "listeners": sorted({k[0] for k in ratings}), "items": items, "conditions": conditions,
            "submissions": len(submissions), "confidence": CONFIDENCE, "per_condition": per_condition,
            "per_item": per_item, "pairs": pairs, "screening": screening, "excluded_listeners": excluded,
            "notices": notices}


def _screening(ratings: dict[tuple[str, str, str], float]) -> list[dict]:
    """BS.1534-3 post-screening per listener, on the hidden reference (condition ``reference``)."""
    from mixbridge.app.listen_page import HIDDEN_REFERENCE

    out = []
    for listener in sorted({k[0] for k in ratings}):
        ref = [v for (lst, _, c), v in ratings.items() if lst == listener and c == HIDDEN_REFERENCE]
        if not ref:
            continue
        low = sum(v < SCREEN_RATING for v in ref)
        out.append({"listener": listener, "items": len(ref), "reference_below_90": low,
                    "fails": low / len(ref) > SCREEN_FRACTION})
    return out


def _f(v, spec="{:.1f}") -> str:
    return "-" if v is None else spec.format(v)


def format_table(summary: dict) -> str:
    """The plain-text tables ``listen results`` prints: per condition, per item, and the paired tests."""
    lines = [f"{len(summary['listeners'])} listeners, {len(summary['items'])} items, {summary['submissions']} "
             f"submissions; mean rating and {summary['confidence']:.0%} confidence interval (t)", ""]
    w = max(len(c) for c in summary["conditions"] + ["condition"])
    lines.append(f"{'condition':<{w}}  {'n':>4}  {'mean':>6}  {'95% CI':>7}")
    for c, s in sorted(summary["per_condition"].items(), key=lambda kv: -kv[1]["mean"]):
        lines.append(f"{c:<{w}}  {s['n']:>4}  {s['mean']:>6.1f}  {'±' + _f(s['ci95']):>7}")
    iw = max(len(i) for i in summary["items"] + ["item"])
    lines += ["", f"{'item':<{iw}}  {'condition':<{w}}  {'n':>4}  {'mean':>6}  {'95% CI':>7}"]
    for i, per in summary["per_item"].items():
        for c, s in per.items():
            lines.append(f"{i:<{iw}}  {c:<{w}}  {s['n']:>4}  {s['mean']:>6.1f}  {'±' + _f(s['ci95']):>7}")
    lines += ["", f"Wilcoxon signed-rank, paired by listener x item (Holm-adjusted over {len(summary['pairs'])} pairs)",
              f"{'pair':<{2 * w + 4}}  {'n':>4}  {'median diff':>11}  {'p':>7}  {'p Holm':>7}"]
    for p in summary["pairs"]:
        pair = f"{p['a']} vs {p['b']}"
        lines.append(f"{pair:<{2 * w + 4}}  {p['n']:>4}  {_f(p['median_difference']):>11}  {_f(p['p'], '{:.4f}'):>7}  "
                     f"{_f(p['p_holm'], '{:.4f}'):>7}" + (f"  ({p['reason']})" if p["reason"] else ""))
    for s in summary["screening"]:
        if s["fails"]:
            lines.append(f"post-screening: {s['listener']} rated the hidden reference below {SCREEN_RATING:g} in "
                         f"{s['reference_below_90']} of {s['items']} items"
                         + (" (excluded)" if s["listener"] in summary["excluded_listeners"] else ""))
    lines += [f"notice: {n}" for n in summary["notices"]]
    return "\n".join(lines)


def plot(summary: dict, path: str | Path) -> Path:
    """``path`` (PNG): mean and 95 % CI per condition, and per item; matplotlib's Agg canvas, written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from mixbridge.atomic import atomic_path

    conds = summary["conditions"]
    fig = Figure(figsize=(4 + 1.4 * len(summary["items"]), 4.2))
    FigureCanvasAgg(fig)
    ax, bx = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, max(1, len(summary["items"]))]})
    pc = summary["per_condition"]
    ax.errorbar(range(len(conds)), [pc[c]["mean"] for c in conds], yerr=[pc[c]["ci95"] or 0 for c in conds],
                fmt="o", capsize=4)
    ax.set_xticks(range(len(conds)), conds, rotation=30, ha="right")
    ax.set_ylim(0, 100)
    ax.set_ylabel("rating (mean, 95 % CI)")
    ax.set_title("all items")
    width = 0.8 / max(1, len(conds))
    for k, c in enumerate(conds):
        xs = [j + (k - (len(conds) - 1) / 2) * width for j in range(len(summary["items"]))]
        stats = [summary["per_item"][i].get(c) for i in summary["items"]]
        bx.errorbar(xs, [s["mean"] if s else math.nan for s in stats],
                    yerr=[(s["ci95"] or 0) if s else 0 for s in stats], fmt="o", capsize=3, label=c)
    bx.set_xticks(range(len(summary["items"])), summary["items"], rotation=30, ha="right")
    bx.set_ylim(0, 100)
    bx.set_title("per item")
    bx.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path


def write_results(summary: dict, out_dir: str | Path) -> dict[str, Path]:
    """``OUT_DIR/results.json`` and ``OUT_DIR/ratings.png``; returns their paths."""
    from mixbridge.atomic import atomic_write_text

    out_dir = Path(out_dir)
    paths = {"json": out_dir / "results.json", "plot": out_dir / "ratings.png"}
    atomic_write_text(paths["json"], json.dumps(summary, indent=1) + "\n")
    plot(summary, paths["plot"])
    return paths


__all__ = ["read_submissions", "validate_submission", "aggregate", "mean_ci", "paired_test", "holm", "format_table",
           "plot", "write_results", "ListenResultsError", "RESULTS_FORMAT"]
