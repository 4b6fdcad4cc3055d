"""The ``mixbridge master`` report: one HTML file with embedded PNG plots and loudness-matched A/B players.

Plots (matplotlib, embedded by :mod:`.report`'s PNG helper):

* before/after long-term spectra: third-octave LTAS relative to integrated loudness
  (:func:`mixbridge.spectrum.ltas_db`) of the mix, the master and the model's target, with the EQ's
  RBJ magnitude (:func:`.rbj.eq_response_db`);
* short-term loudness (EBU 3 s, :func:`mixbridge.spectrum.short_term_lufs`) of the mix and the master,
  against the target;
* gain reduction over time of the compressor and of the limiter, measured on the one master bus's own
  stages (:func:`.master_rules.probe_render`): per 50 ms block, ``10 log10`` of the power ratio of the
  compressor stage to the EQ stage (minus makeup), and of the master to the compressor stage at the
  solved gain (both stages are one time-varying gain on the stage before, so the ratio is that gain,
  power-weighted over the block).

The A/B players link ``mix.wav`` and ``master.wav`` beside the report (relative links, no copy) and set
the louder one's ``volume`` so both play at the same integrated loudness (the level difference in dB,
``volume = 10^(-dB/20)``): what is heard is the tone and dynamics, not the level.
"""
from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mixbridge.atomic import atomic_write_text
from mixbridge.loudness import integrated_lufs
from mixbridge.spectrum import THIRD_OCTAVE_CENTRES_HZ, crest_factor_db, ltas_db, short_term_lufs

from .rbj import eq_response_db
from .report import png_data_uri

__all__ = ["write_master_report", "gain_reduction_db", "GR_BLOCK_S"]

#: Block of the gain-reduction traces, s.
GR_BLOCK_S = 0.05
#: Blocks whose stage-input power is this far below the loudest block are left out of the traces, dB.
GR_FLOOR_DB = -60.0


def gain_reduction_db(before: np.ndarray, after: np.ndarray, sample_rate: int,
                      block_s: float = GR_BLOCK_S) -> tuple[np.ndarray, np.ndarray]:
    """Per-block gain of a stage, dB, from its input ``before`` and output ``after`` (``[channels, samples]``,
    aligned): ``10 log10(sum after^2 / sum before^2)`` per block of ``block_s``; NaN where ``before`` is more
    than :data:`GR_FLOOR_DB` below its loudest block. Returns ``(times_s, gain_db)`` (block centres)."""
    n = min(before.shape[1], after.shape[1])
    hop = max(1, int(round(block_s * sample_rate)))
    m = n // hop
    if m == 0:
        return np.zeros(0), np.zeros(0)
    b = np.sum(before[:, :m * hop].astype(np.float64) ** 2, axis=0).reshape(m, hop).sum(axis=1)
    a = np.sum(after[:, :m * hop].astype(np.float64) ** 2, axis=0).reshape(m, hop).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = 10.0 * np.log10(a / b)
        ok = b > b.max() * 10.0 ** (GR_FLOOR_DB / 10.0)
    return (np.arange(m) + 0.5) * hop / sample_rate, np.where(ok, g, np.nan)


def _fmt(v: Any, unit: str = "", digits: int = 2) -> str:
    return f"{v:.{digits}f}{unit}" if isinstance(v, (int, float)) else html.escape(str(v))


def write_master_report(path: str | Path, *, mix: np.ndarray, master_audio: np.ndarray, sample_rate: int,
                        params: Mapping[str, Mapping[str, float]], result: Any, eq_stage: np.ndarray,
                        comp_stage: np.ndarray, info: Mapping[str, Any], model: str, notices: Sequence[str],
                        target_lufs: float) -> Path:
    """Write ``report.html`` of one mastering run.

    Args:
        mix, master_audio: float ``[2, samples]``, before and after the master bus.
        params: the master-bus values that were rendered (real units).
        result: the :class:`~mixbridge.plugins.mastering.MasterResult` of the render.
        eq_stage, comp_stage: the bus's EQ and compressor stages of ``mix``
            (:func:`~mixbridge.plugins.master_rules.probe_render`).
        info: the plan's ``info`` (its target spectrum, when it has one, is drawn).
        target_lufs: the loudness asked for.

    Returns:
        ``path`` (written atomically).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sr = sample_rate
    imgs: list[tuple[str, str]] = []
    centres = np.asarray(THIRD_OCTAVE_CENTRES_HZ)

    # spectra
    fig, ax = plt.subplots(figsize=(9, 3.8))
    ax.semilogx(centres, ltas_db(mix, sr), "o-", ms=3, label="mix")
    ax.semilogx(centres, ltas_db(master_audio, sr), "o-", ms=3, label="master")
    tgt = info.get("target_ltas_db")
    if tgt:
        tc = np.asarray(info.get("centres_hz", centres), dtype=np.float64)
        ax.semilogx(tc, [np.nan if v is None else v for v in tgt], "k--", lw=1, label="target")
    ax.set_xlabel("Hz (third-octave centres)")
    ax.set_ylabel("dB re integrated loudness")
    ax.grid(True, which="both", alpha=0.3)
    ax2 = ax.twinx()
    freqs = np.geomspace(20, min(20000, sr / 2 * 0.95), 300)
    ax2.semilogx(freqs, eq_response_db(params["eq"], freqs, sr), color="#c44e52", lw=1, alpha=0.7)
    ax2.set_ylim(-15, 15)
    ax2.set_ylabel("EQ (red), dB", color="#c44e52")
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("Long-term spectrum before and after (level-independent), and the EQ")
    imgs.append(("Spectra", png_data_uri(fig)))

    # short-term loudness
    fig, ax = plt.subplots(figsize=(9, 3.2))
    for sig, label in ((mix, "mix"), (master_audio, "master")):
        t, lufs = short_term_lufs(sig, sr, hop_s=0.25)
        ax.plot(t, lufs, lw=1, label=label)
    ax.axhline(target_lufs, color="k", ls="--", lw=0.8, label=f"target {target_lufs:g} LUFS (integrated)")
    ax.set_xlabel("s")
    ax.set_ylabel("LUFS (short-term, 3 s)")
    ax.legend(fontsize=8)
    ax.set_title("Short-term loudness")
    imgs.append(("Short-term loudness", png_data_uri(fig)))

    # gain reduction
    gain_lin = 10.0 ** (float(result.gain_db) / 20.0)
    makeup = float(params["compressor"]["makeup_db"])
    tc_, comp_gr = gain_reduction_db(eq_stage, comp_stage, sr)
    tl_, lim_gr = gain_reduction_db(comp_stage * np.float32(gain_lin), master_audio, sr)
    fig, ax = plt.subplots(figsize=(9, 3.2))
    ax.plot(tc_, comp_gr - makeup, lw=0.8, label="compressor")
    ax.plot(tl_, lim_gr, lw=0.8, label="limiter")
    with np.errstate(all="ignore"):
        lowest = np.nanmin(np.concatenate([comp_gr - makeup, lim_gr, [0.0]]))
    ax.set_ylim(min(-1.0, float(lowest) - 0.5), 0.5)
    ax.set_xlabel("s")
    ax.set_ylabel("dB")
    ax.legend(fontsize=8)
    ax.set_title(f"Gain reduction ({GR_BLOCK_S * 1000:.0f} ms blocks, before makeup)")
    imgs.append(("Gain reduction", png_data_uri(fig)))

    # A/B players, loudness-matched by the louder one's volume
    diff = float(result.lufs - result.pre_lufs)
    vol_mix, vol_master = (1.0, 10.0 ** (-diff / 20.0)) if diff > 0 else (10.0 ** (diff / 20.0), 1.0)
    players = (
        "<h2>A/B (loudness-matched)</h2><p>Both play at the same integrated loudness: the louder one's volume is "
        f"lowered by {abs(diff):.1f} dB, so what differs is tone and dynamics.</p>"
        "<table><tr><th>before (mix.wav)</th><td><audio id='a' controls preload='none' src='mix.wav'></audio></td></tr>"
        "<tr><th>after (master.wav)</th><td><audio id='b' controls preload='none' src='master.wav'></audio></td></tr>"
        f"</table><script>document.getElementById('a').volume={vol_mix:.6f};"
        f"document.getElementById('b').volume={vol_master:.6f};</script>"
    )

    eq, c, lim = params["eq"], params["compressor"], params["limiter"]
    with np.errstate(all="ignore"):
        max_comp = float(np.nanmax(makeup - comp_gr)) if np.isfinite(comp_gr).any() else 0.0
        max_lim = float(np.nanmax(-lim_gr)) if np.isfinite(lim_gr).any() else 0.0
    rows = [
        ("Model", model),
        ("Aim", info.get("aim", "")),
        ("Mix", f"{result.pre_lufs:.2f} LUFS, true peak {result.pre_true_peak_dbtp:.2f} dBTP, PLR "
                f"{result.pre_true_peak_dbtp - result.pre_lufs:.2f} dB, crest {crest_factor_db(mix):.2f} dB"),
        ("Master", f"{result.lufs:.2f} LUFS (asked {target_lufs:g}, planned {params['loudness']['target_lufs']:g}), "
                   f"true peak {result.true_peak_dbtp:.2f} dBTP (ceiling {lim['ceiling_dbtp']:g}), PLR "
                   f"{result.true_peak_dbtp - result.lufs:.2f} dB, crest {crest_factor_db(master_audio):.2f} dB"),
        ("Solved gain", f"{result.gain_db:+.2f} dB"),
        ("EQ", ", ".join(f"{k.replace('_gain_db', '')} {eq[k]:+.2f} dB @ {eq[k.replace('gain_db', 'freq_hz')]:.0f} Hz"
                         for k in ("low_shelf_gain_db", "peak1_gain_db", "peak2_gain_db", "peak3_gain_db",
                                   "high_shelf_gain_db"))),
        ("Compressor", f"threshold {c['threshold_db']:.1f} dB, ratio {c['ratio']:.2f}:1, attack {c['attack_ms']:g} ms, "
                       f"release {c['release_ms']:g} ms, knee {c['knee_db']:g} dB, makeup {c['makeup_db']:g} dB"),
        ("Limiter", f"ceiling {lim['ceiling_dbtp']:g} dBTP, release {lim['release_ms']:g} ms"),
        ("Largest gain reduction (50 ms blocks)", f"compressor {max_comp:.1f} dB, limiter {max_lim:.1f} dB"),
        ("Integrated loudness check", f"{integrated_lufs(master_audio, sr):.2f} LUFS"),
    ]
    body = [
        "<!doctype html><html><head><meta charset='utf-8'><title>mixbridge master report</title>",
        "<style>body{font-family:sans-serif;max-width:1000px;margin:auto}td,th{padding:2px 8px;text-align:left}"
        "table{border-collapse:collapse}tr:nth-child(even){background:#f3f3f3}</style></head><body>",
        "<h1>mixbridge master report</h1>",
        "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{_fmt(v)}</td></tr>" for k, v in rows) + "</table>",
        players,
    ]
    for title, src in imgs:
        body.append(f"<h2>{html.escape(title)}</h2><img src='{src}' style='max-width:100%'>")
    if notices:
        body.append("<h2>Notices</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notices) + "</ul>")
    body.append("</body></html>")
    return atomic_write_text(path, "\n".join(body))
