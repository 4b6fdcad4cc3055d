"""``compare_proxy``: one comparison run, from the two renderers to the written report.

The stages live in their own modules: :mod:`.loading` (the proxy), :mod:`.chain` (the real
plugin chain), :mod:`.inputs` (patches and parameter sets), :mod:`.curves` (static transfer
curves), :mod:`.plots` and :mod:`.report` (metrics and files). This module runs them in order.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np

from mixbridge.proxy_schema import schema_params

from .chain import PluginChain, resolve_plugin
from .curves import N_CURVE_SETS, eq_response, level_curve
from .inputs import draw_patches, nested_real, random_params, read_params_file
from .loading import CompareError, Proxy, load_proxy
from .plots import plot_curves, plot_spectrograms
from .report import METRIC_KEYS, example_metrics, overall_table, write_files

#: ``--random`` when neither a parameter file nor a count is given.
DEFAULT_RANDOM_SETS = 32
#: Slack on the trained-range test of a normalised value (float32 round-off of the stored bounds).
RANGE_SLACK = 1e-6
#: The static-curve comparison's lower end (the proxies issue: "within 1 dB from -40 to 0 dBFS").
STATIC_FROM_DBFS = -40.0


def contract_rows(chain: PluginChain, prx: Proxy) -> list[dict]:
    """The semantic contract on the plugin chain and on the proxy, row by row.

    Each row: ``group``, ``quantity``, ``setting``, ``unit``, ``expected`` (the schema's value),
    ``plugin`` and ``proxy`` (measured), ``proxy_minus_plugin`` and, for times, ``relative``
    (proxy over plugin minus 1), plus each side's contract ``status``. A static-curve or EQ row reports
    each side at its own worst level or frequency ("worst at" in its setting), so it carries
    ``plugin_dev`` and ``proxy_dev`` (each side's measured minus its own expected value; the proxy's
    is ``proxy_expected``) instead; the proxy-versus-plugin curves
    themselves are the report's level-curve and magnitude comparisons. Only the processors the
    proxy models are measured (at the proxy's rate).
    """
    from mixbridge.plugins.contract import run_implementation
    from mixbridge.plugins.contract_implementations import backend_implementation

    from .contract import proxy_implementation

    sr = prx.sample_rate
    groups = [g for g in ("eq", "compressor") if g in prx.entries]
    plugin_impl = backend_implementation(chain.label, chain.backend, processors=groups, pan=False)
    proxy_impl = proxy_implementation(prx.path, sr)
    ours = run_implementation(plugin_impl, sr, groups).rows
    theirs = run_implementation(proxy_impl, sr, groups).rows
    out = []
    for a, b in zip(ours, theirs):
        row = {"group": a.group, "quantity": a.quantity, "setting": a.setting, "unit": a.unit,
               "expected": a.expected, "plugin": a.measured, "proxy": b.measured,
               "plugin_status": a.status, "proxy_status": b.status}
        finite = all(v is not None and math.isfinite(v) for v in (a.measured, b.measured, a.expected))
        if finite and "worst at" in a.setting:
            # each side reports its worst level, so the two values are at different levels: compare deviations
            row["proxy_expected"] = b.expected
            row["plugin_dev"], row["proxy_dev"] = a.measured - a.expected, b.measured - b.expected
        elif finite:
            row["proxy_minus_plugin"] = b.measured - a.measured
            if a.unit == "ms" and a.measured:
                row["relative"] = b.measured / a.measured - 1.0
        out.append(row)
    return out


def compare_proxy(plugin: Sequence[str] | str, proxy: str | Path, out_dir: str | Path, *,
                  input_path: str | None = None, params_file: str | None = None, n_random: int | None = None,
                  patch_s: float = 1.48, seed: int = 0, bins: int = 3, sample_rate: int | None = None,
                  curves: bool = True, contract: bool = True, echo: Callable[[str], None] | None = None) -> dict:
    """Compare ``proxy`` with the real ``plugin`` chain; write the report to ``out_dir``.

    Args:
        plugin: ``--plugin`` values (see :func:`~.chain.resolve_plugin`).
        proxy: a checkpoint (``NAME.json``/``.safetensors``) or an exported artifact folder.
        out_dir: report folder (created).
        input_path: audio file or folder (patches drawn at random, silent ones redrawn);
            None: :func:`~.inputs.test_programme`.
        params_file: JSON parameter sets (real units); else ``n_random`` (default :data:`DEFAULT_RANDOM_SETS`)
            sets drawn within the trained ranges. Example ``i`` pairs set ``i`` with patch ``i``.
        patch_s: patch length in seconds.
        seed: patches and random parameters.
        bins: regions per parameter in the per-region table.
        sample_rate: the rate the caller needs; a proxy trained at another rate is refused.
        curves: also measure and plot the static transfer curves.
        contract: also run the semantic contract (:mod:`mixbridge.plugins.contract`) on the plugin
            chain and on the proxy, side by side (:func:`contract_rows`).
        echo: where the summary table and notices go (``print``), or None.

    Returns:
        The summary written to ``metrics.json``: ``overall`` (mean metrics, pooled ESR,
        ``n``), ``regions``, ``examples``, ``flagged`` (examples outside the trained
        range), ``notices``, ``plugin``, ``proxy``.

    Raises:
        CompareError: the plugin's processors differ from the proxy's schema, or a bad option.
        CheckpointMismatchError: the proxy is for another sample rate than ``sample_rate``.
        ParamRangeError: a ``params_file`` value outside its schema range.
        AudioInputError: unreadable input audio.
    """
    say = echo or (lambda s: None)
    out_dir = Path(out_dir)
    if bins < 1 or not 0.05 <= patch_s <= 60:
        raise CompareError(f"bins = {bins} must be >= 1 and patch_s = {patch_s} in 0.05..60 s")
    prx = load_proxy(proxy, expect_sample_rate=sample_rate)
    sr = prx.sample_rate
    chain = resolve_plugin([plugin] if isinstance(plugin, str) else list(plugin), sr)
    if list(chain.processors) != list(prx.entries):
        raise CompareError(f"the proxy {prx.path} imitates {prx.entries} but --plugin gives {chain.processors}; "
                           "compare a proxy with the processors it was trained on")
    notices: list[str] = []
    if params_file:
        sets = read_params_file(params_file, prx.entries)
    else:
        n = DEFAULT_RANDOM_SETS if n_random is None else int(n_random)
        if n < 1:
            raise CompareError(f"--random {n} must be >= 1")
        sets = random_params(n, prx.param_names, prx.entries, prx.trained_ranges, seed)
    channels = prx.n_inputs
    patch_samples = int(round(patch_s * sr))
    patches, where, nts = draw_patches(input_path, len(sets), patch_samples, sr, channels, seed, say)
    notices += nts
    if prx.kind == "artifact":
        notices.append("proxy run by the torch-free streaming runtime (onnxruntime), 4096-sample blocks")

    examples, flagged, pooled_esr, keep = _run_examples(chain, prx, sets, patches, where)
    if chain.backend.notices:
        notices += [f"backend: {t}" for t in chain.backend.notices]
    if flagged:
        msg = (f"notice: {len(flagged)} example(s) use parameters outside the proxy's trained range "
               f"({sorted({p for f in flagged for p in f['params']})}); their metrics are flagged")
        notices.append(msg)
        say(msg)
    overall = {k: _mean(examples, k) for k in METRIC_KEYS}
    overall["esr_median"] = float(np.median([r["esr"] for r in examples]))
    overall["esr_pooled"] = pooled_esr
    overall["n"] = len(examples)
    in_range = [r for r in examples if not r["outside_trained_range"]]
    if flagged and in_range:
        overall["esr_in_trained_range"] = _mean(in_range, "esr")
    regions = _regions(prx, examples, bins)

    out_dir.mkdir(parents=True, exist_ok=True)
    keep.sort(key=lambda t: t[0])
    picks_idx = [keep[0], keep[len(keep) // 2], keep[-1]] if len(keep) >= 3 else keep
    plot_spectrograms(out_dir / "spectrograms.png",
                      [(f"{lbl} ESR {e:.3g} (example {i})", t, o)
                       for lbl, (e, i, t, o) in zip(("best", "median", "worst"), picks_idx)], sr)
    plots = [("spectrograms.png", "Spectrograms of the plugin, the proxy and their difference "
                                  "(best, median and worst example by ESR)")]
    curve_data: dict[str, list] = {}
    if curves:
        curve_data, curve_plots = _transfer_curves(chain, prx, sets[:N_CURVE_SETS], out_dir, seed)
        plots += curve_plots

    contract_table = contract_rows(chain, prx) if contract else []
    summary = {"plugin": chain.label, "proxy": prx.path, "proxy_kind": prx.kind, "sample_rate": sr,
               "input": input_path or "built-in test programme", "patch_s": patch_s, "seed": seed,
               "params": params_file or f"{len(sets)} random sets within the trained range",
               "overall": overall, "regions": regions, "flagged": flagged, "notices": notices,
               "curves": {k: [{"set": r["set"], "max_abs_diff_db": r["max_abs_diff_db"],
                               **({"max_abs_diff_db_above_-40": r["max_abs_diff_db_above_-40"]}
                                  if "max_abs_diff_db_above_-40" in r else {})} for r in v]
                          for k, v in curve_data.items()},
               "contract": contract_table,
               "examples": examples}
    write_files(out_dir, summary, plots, prx.param_names)
    say(overall_table(summary))
    say(f"report: {out_dir / 'report.md'}")
    return summary


def _mean(rows: list[dict], key: str) -> float:
    """Mean of the finite ``row[key]`` values; NaN when there are none."""
    vals = [r[key] for r in rows if r[key] is not None and math.isfinite(r[key])]
    return float(np.mean(vals)) if vals else float("nan")


def _run_examples(chain: PluginChain, prx: Proxy, sets: list[np.ndarray], patches: np.ndarray,
                  where: list[str]) -> tuple[list[dict], list[dict], float, list]:
    """Render every (parameter set, patch) pair through both sides; returns the example rows, the
    flagged ones, the pooled ESR ``sum err^2 / sum target^2`` and ``(esr, i, target, output)`` per example."""
    flagged, examples, keep = [], [], []
    pooled_err = pooled_ref = 0.0
    for i, (vec, x) in enumerate(zip(sets, patches)):
        nested, flat = nested_real(vec, prx.entries)
        outside = [nm for nm, v in zip(prx.param_names, vec)
                   if not prx.trained_ranges[nm][0] - RANGE_SLACK <= v <= prx.trained_ranges[nm][1] + RANGE_SLACK]
        if outside:
            flagged.append({"example": i, "params": outside})
        target = chain.render(x, nested)
        output = prx.render(x, vec)
        m = example_metrics(output, target, prx.sample_rate)
        pooled_err += float(np.sum((output.astype(np.float64) - target) ** 2))
        pooled_ref += float(np.sum(target.astype(np.float64) ** 2))
        examples.append({"example": i, "source": where[i], "params": flat,
                         "params_norm": [float(v) for v in vec], "outside_trained_range": outside, **m})
        keep.append((m["esr"], i, target[0], output[0]))
    return examples, flagged, pooled_err / max(pooled_ref, 1e-30), keep


def _regions(prx: Proxy, examples: list[dict], bins: int) -> list[dict]:
    """The per-region table: each varied parameter's normalised range cut into ``bins`` equal regions."""
    params = dict(schema_params(prx.entries))
    regions = []
    for j, name in enumerate(prx.param_names):
        lo, hi = prx.trained_ranges[name]
        vals = np.array([r["params_norm"][j] for r in examples])
        if hi - lo < 1e-9 or np.ptp(vals) < 1e-9:
            continue  # a fixed parameter has one region: the overall row
        p = params[name]
        edges = np.linspace(min(lo, vals.min()), max(hi, vals.max()), bins + 1)
        for b in range(bins):
            sel = [r for r, v in zip(examples, vals)
                   if edges[b] <= v < edges[b + 1] or (b == bins - 1 and v == edges[-1])]
            if not sel:
                continue
            a_real, b_real = p.from_normalised(float(edges[b])), p.from_normalised(float(edges[b + 1]))
            regions.append({"param": name, "unit": p.unit, "from": a_real, "to": b_real, "n": len(sel),
                            **{k: _mean(sel, k) for k in ("mae", "esr", "mrstft", "mcd_db")}})
    return regions


def _transfer_curves(chain: PluginChain, prx: Proxy, curve_sets: list[np.ndarray], out_dir: Path,
                     seed: int) -> tuple[dict[str, list], list[tuple[str, str]]]:
    """Measure and plot the static curves of ``curve_sets`` on both sides: the level curve when the
    chain holds a compressor, the magnitude response when it holds an EQ."""
    sr, channels = prx.sample_rate, prx.n_inputs
    curve_data: dict[str, list] = {}
    plots = []
    if "compressor" in prx.entries:
        rows = []
        for k, vec in enumerate(curve_sets):
            nested, _ = nested_real(vec, prx.entries)
            xi, yp = level_curve(partial(chain.render, nested_params=nested), sr, channels)
            _, yq = level_curve(partial(prx.render, norm_params=vec), sr, channels)
            upper = xi >= STATIC_FROM_DBFS
            rows.append({"set": k, "x": xi.tolist(), "plugin": yp.tolist(), "proxy": yq.tolist(),
                         "max_abs_diff_db": float(np.max(np.abs(yp - yq))),
                         "max_abs_diff_db_above_-40": float(np.max(np.abs(yp[upper] - yq[upper])))})
        plot_curves(out_dir / "transfer_level.png", rows, "level")
        curve_data["level"] = rows
        plots.append(("transfer_level.png", "Static input/output level curves of the first "
                                            f"{len(rows)} parameter sets (solid: plugin, dashed: proxy)"))
    if "eq" in prx.entries:
        rows = []
        for k, vec in enumerate(curve_sets):
            nested, _ = nested_real(vec, prx.entries)
            f, hp = eq_response(partial(chain.render, nested_params=nested), sr, channels, seed)
            _, hq = eq_response(partial(prx.render, norm_params=vec), sr, channels, seed)
            band = (f >= 30) & (f <= 16000)
            rows.append({"set": k, "x": f.tolist(), "plugin": hp.tolist(), "proxy": hq.tolist(),
                         "max_abs_diff_db": float(np.max(np.abs(hp[band] - hq[band])))})
        plot_curves(out_dir / "transfer_eq.png", rows, "eq")
        curve_data["eq"] = rows
        plots.append(("transfer_eq.png", "Magnitude responses of the first "
                                         f"{len(rows)} parameter sets (solid: plugin, dashed: proxy)"))
    return curve_data, plots
