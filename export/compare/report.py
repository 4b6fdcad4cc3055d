"""The written side of ``compare``: per-example metrics, and the report files
(``metrics.json``, ``examples.csv``, ``report.md``) with the summary table.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

#: The per-example metrics, in table order (:mod:`mixbridge.models.metrics`).
METRIC_KEYS = ("mae", "esr", "mrstft", "mcd_db", "loudness_diff_db")
#: BS.1770 gating needs at least one 400 ms block; shorter patches get no loudness difference.
LOUDNESS_MIN_S = 0.4


def example_metrics(output: np.ndarray, target: np.ndarray, sample_rate: int) -> dict[str, float]:
    """The :data:`METRIC_KEYS` of one example, ``output`` and ``target`` ``[channels, samples]``:
    :mod:`mixbridge.models.metrics` MAE, ESR, MR-STFT, MCD (dB) and the loudness difference (LU,
    proxy minus plugin), NaN when a patch is shorter than ``LOUDNESS_MIN_S`` or silent (no finite
    integrated loudness)."""
    from mixbridge.models import metrics

    m = {"mae": metrics.mae(output, target), "esr": metrics.esr(output, target),
         "mrstft": metrics.mrstft(output, target), "mcd_db": metrics.mcd(output, target, sample_rate)}
    loud = float("nan")
    if target.shape[-1] >= LOUDNESS_MIN_S * sample_rate:
        with np.errstate(divide="ignore"):
            loud = metrics.loudness_difference_db(output, target, sample_rate)
    m["loudness_diff_db"] = loud if math.isfinite(loud) else float("nan")
    return m


def _fmt(v: float) -> str:
    if v is None or not math.isfinite(v):
        return "n/a"
    return f"{v:.4g}"


def overall_table(s: dict) -> str:
    """The one-row Markdown table of a summary's ``overall`` means (printed and in ``report.md``)."""
    o = s["overall"]
    head = "| n | MAE | ESR (mean) | ESR (median) | ESR (pooled) | MR-STFT | MCD (dB) | loudness diff (LU) |"
    row = (f"| {o['n']} | {_fmt(o['mae'])} | {_fmt(o['esr'])} | {_fmt(o['esr_median'])} | {_fmt(o['esr_pooled'])} "
           f"| {_fmt(o['mrstft'])} | {_fmt(o['mcd_db'])} | {_fmt(o['loudness_diff_db'])} |")
    return "\n".join([head, "|" + "---|" * 8, row])


def write_files(out_dir: Path, summary: dict, plots: list[tuple[str, str]], param_names: list[str]) -> None:
    """Write ``metrics.json`` (the summary), ``examples.csv`` (one row per example: real-unit
    parameters in ``param_names`` order, every metric, the out-of-range names) and ``report.md``."""
    (out_dir / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    with open(out_dir / "examples.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["example", "source", *param_names, *METRIC_KEYS, "outside_trained_range"])
        for r in summary["examples"]:
            w.writerow([r["example"], r["source"], *[f"{r['params'][n]:.6g}" for n in param_names],
                        *[f"{r[k]:.6g}" for k in METRIC_KEYS], ";".join(r["outside_trained_range"])])
    write_report(out_dir / "report.md", summary, plots)


def contract_table(rows: list[dict]) -> list[str]:
    """Markdown lines of the contract run on both sides (:func:`~.run.contract_rows`)."""
    lines = ["## Semantic contract, plugin and proxy", "",
             "The contract's test signals (`mixbridge plugins check`) on the plugin chain and on the proxy; "
             "expected is the schema's value, the last column the proxy's deviation from the plugin "
             "(relative for times).", "",
             "| quantity | setting | expected | plugin | proxy | proxy - plugin | plugin / proxy |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        unit = f" {r['unit']}" if r["unit"] else ""
        if "proxy_dev" in r:
            dev = f"worst deviations from expected: plugin {r['plugin_dev']:+.3f}, proxy {r['proxy_dev']:+.3f}{unit}"
        elif "proxy_minus_plugin" in r:
            dev = f"{100 * r['relative']:+.1f} %" if "relative" in r else f"{r['proxy_minus_plugin']:+.3f}{unit}"
        else:
            dev = "n/a"
        lines.append(f"| {r['quantity']} | {r['setting']} | {_fmt(r['expected'])}{unit} | {_fmt(r['plugin'])}{unit} "
                     f"| {_fmt(r['proxy'])}{unit} | {dev} | {r['plugin_status']} / {r['proxy_status']} |")
    return lines + [""]


def write_report(path: Path, s: dict, plots: list[tuple[str, str]]) -> None:
    """Write ``report.md`` from a summary: set-up, overall table, notices, per-region table, curve
    differences, the ``(file, caption)`` plots, flagged examples and one row per example."""
    lines = [f"# Proxy vs plugin: {s['plugin']}", "",
             f"- proxy: `{s['proxy']}` ({s['proxy_kind']})",
             f"- input: {s['input']}; {s['overall']['n']} patches of {s['patch_s']} s at {s['sample_rate']} Hz, "
             f"seed {s['seed']}",
             f"- parameters: {s['params']}", "",
             "Metrics: mean over examples (each on the whole patch, both renders from a cleared state); "
             "ESR pooled is sum of squared errors over sum of squared targets across all examples. "
             "Lower is better; loudness difference is signed (proxy minus plugin).", "",
             "## Overall", "", overall_table(s), ""]
    if "esr_in_trained_range" in s["overall"]:
        in_range = _fmt(s["overall"]["esr_in_trained_range"])
        lines += [f"Mean ESR of the examples inside the trained range: {in_range}", ""]
    if s["notices"]:
        lines += ["## Notices", ""] + [f"- {n}" for n in s["notices"]] + [""]
    if s["regions"]:
        lines += ["## Per parameter region", "", "| parameter | region | n | MAE | ESR | MR-STFT | MCD (dB) |",
                  "|---|---|---|---|---|---|---|"]
        for r in s["regions"]:
            unit = f" {r['unit']}" if r["unit"] else ""
            lines.append(f"| {r['param']} | {r['from']:.4g}..{r['to']:.4g}{unit} | {r['n']} | {_fmt(r['mae'])} "
                         f"| {_fmt(r['esr'])} | {_fmt(r['mrstft'])} | {_fmt(r['mcd_db'])} |")
        lines.append("")
    for kind, rows in s["curves"].items():
        what = "level curve" if kind == "level" else "magnitude response (30 Hz..16 kHz)"
        lines += [f"Static {what}: largest plugin/proxy difference per set: "
                  + ", ".join(f"set {r['set']} {r['max_abs_diff_db']:.2f} dB" for r in rows), ""]
    for rows in s["curves"].values():
        above = [r["max_abs_diff_db_above_-40"] for r in rows if "max_abs_diff_db_above_-40" in r]
        if above:
            lines += [f"Static level curve from -40 to 0 dBFS: largest plugin/proxy difference {max(above):.2f} dB "
                      f"over {len(above)} sets.", ""]
    if s.get("contract"):
        lines += contract_table(s["contract"])
    for name, caption in plots:
        lines += [f"![{caption}]({name})", "", f"*{caption}*", ""]
    if s["flagged"]:
        lines += ["## Flagged examples (parameters outside the trained range)", ""]
        lines += [f"- example {f['example']}: {', '.join(f['params'])}" for f in s["flagged"]] + [""]
    lines += ["## Examples", "", "| # | source | ESR | MAE | MR-STFT | flagged |", "|---|---|---|---|---|---|"]
    for r in s["examples"]:
        lines.append(f"| {r['example']} | {r['source']} | {_fmt(r['esr'])} | {_fmt(r['mae'])} | {_fmt(r['mrstft'])} "
                     f"| {'yes' if r['outside_trained_range'] else ''} |")
    path.write_text("\n".join(lines) + "\n")
