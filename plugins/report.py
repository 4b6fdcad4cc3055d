"""The automix report: one self-contained HTML file with embedded PNG plots.

Plots: per-track loudness before and after the console, pan positions, the EQ
curves (RBJ design of the session's settings), compressor gain reduction over
time, and mix vs master spectra (Welch PSD); a table gives the master's
integrated loudness and true peak against the target.
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

from mixbridge.atomic import atomic_write_text
from mixbridge.loudness import integrated_lufs
from mixbridge.session import Session

from .rbj import eq_response_db


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


#: A matplotlib figure as a PNG ``data:`` URI (closes the figure): the one figure encoder of the HTML reports.
png_data_uri = _png


#: Welch segment length of the report's spectra, samples (hop: half of it).
WELCH_NPERSEG = 4096
#: Segments per block of :func:`welch_blocks` (2^8 x 2048 hops: 0.5 M samples, 4 MB of float64).
WELCH_SEGMENTS_PER_BLOCK = 256


def welch_blocks(audio: np.ndarray, sample_rate: int, nperseg: int = WELCH_NPERSEG):
    """``scipy.signal.welch(audio.mean(axis=0), fs=sample_rate, nperseg=nperseg)`` of ``[channels, samples]``
    computed over blocks of whole segments: ``(freqs_hz, psd)``.

    Welch's estimate is the mean of the periodograms of segments that start every ``nperseg // 2``
    samples; a block of ``k`` hops plus one segment's overlap holds exactly the segments starting in
    it, so the count-weighted mean of the blocks' estimates is the whole signal's (to float64
    rounding), with a few MB of memory instead of a float64 copy of every segment of the signal.
    """
    from scipy.signal import welch

    hop = nperseg // 2
    n = audio.shape[1]
    if n <= nperseg:
        return welch(audio.mean(axis=0), fs=sample_rate, nperseg=nperseg)
    segments = (n - nperseg) // hop + 1
    total = None
    freqs = None
    for first in range(0, segments, WELCH_SEGMENTS_PER_BLOCK):
        count = min(WELCH_SEGMENTS_PER_BLOCK, segments - first)
        a = first * hop
        x = audio[:, a:a + (count - 1) * hop + nperseg].mean(axis=0)
        freqs, pxx = welch(x, fs=sample_rate, nperseg=nperseg)
        total = pxx * count if total is None else total + pxx * count
    assert total is not None
    return freqs, total / segments


def write_report(path: str | Path, session: Session, console, mres) -> Path:
    """Write ``report.html`` for a rendered session (``console``: ConsoleRender, ``mres``: MasterResult)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sr = session.sample_rate
    names = [t.name for t in session.tracks]
    imgs: list[tuple[str, str]] = []

    # per-track levels (measured by the console while it rendered; a whole output when one is given)
    post = [integrated_lufs(tr.output, sr) if tr.output is not None else float(tr.lufs) for tr in console.tracks]
    fig, ax = plt.subplots(figsize=(9, 3.2))
    x = np.arange(len(names))
    ax.bar(x, [p + 70 for p in post], bottom=-70, color="#4c72b0")
    ax.set_xticks(x, names, rotation=45, ha="right")
    ax.set_ylabel("LUFS (post-fader)")
    ax.set_title("Track loudness in the mix")
    imgs.append(("Per-track levels", _png(fig)))

    # pan positions
    fig, ax = plt.subplots(figsize=(9, 0.4 * len(names) + 1))
    pans = [t.params["pan"]["pan"] for t in session.tracks]
    ax.scatter(pans, x, color="#dd8452")
    ax.set_yticks(x, names)
    ax.set_xlim(-1.05, 1.05)
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_xlabel("pan (-1 left, +1 right)")
    ax.set_title("Pan positions")
    imgs.append(("Pan", _png(fig)))

    # EQ curves
    freqs = np.geomspace(20, min(20000, sr / 2 * 0.95), 400)
    fig, ax = plt.subplots(figsize=(9, 3.5))
    for t in session.tracks:
        ax.semilogx(freqs, eq_response_db(t.params["eq"], freqs, sr), label=t.name, lw=1)
    ax.semilogx(freqs, eq_response_db(session.master.params["eq"], freqs, sr), "k--", label="master", lw=1.5)
    ax.set_xlabel("Hz")
    ax.set_ylabel("dB")
    ax.set_ylim(-15, 15)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6, ncol=4)
    ax.set_title("EQ curves (RBJ design of the settings)")
    imgs.append(("EQ", _png(fig)))

    # compressor gain reduction
    fig, ax = plt.subplots(figsize=(9, 3.2))
    for tr in console.tracks:
        gr = np.minimum(tr.post_comp_rms_db - tr.pre_comp_rms_db, 0.0)
        active = tr.pre_comp_rms_db > -80
        gr = np.where(active, gr, np.nan)
        ax.plot(np.arange(len(gr)) * 0.05, gr, lw=0.8, label=tr.name)
    ax.set_xlabel("s")
    ax.set_ylabel("dB")
    ax.set_title("Compressor gain reduction (50 ms RMS, before makeup)")
    ax.legend(fontsize=6, ncol=4)
    imgs.append(("Gain reduction", _png(fig)))

    # spectra
    fig, ax = plt.subplots(figsize=(9, 3.5))
    for sig, label in ((console.mix, "mix"), (mres.audio, "master")):
        f, pxx = welch_blocks(sig, sr)
        ax.semilogx(f[1:], 10 * np.log10(pxx[1:] + 1e-20), label=label)
    ax.set_xlabel("Hz")
    ax.set_ylabel("dB/Hz")
    ax.legend()
    ax.set_title("Spectrum before and after the master bus")
    imgs.append(("Spectra", _png(fig)))

    mp = session.master.params
    target, ceiling = mp["loudness"]["target_lufs"], mp["limiter"]["ceiling_dbtp"]
    rows = [
        ("Mix integrated loudness", f"{mres.pre_lufs:.2f} LUFS"),
        ("Mix true peak", f"{mres.pre_true_peak_dbtp:.2f} dBTP"),
        ("Master integrated loudness", f"{mres.lufs:.2f} LUFS (target {target:g})"),
        ("Master true peak", f"{mres.true_peak_dbtp:.2f} dBTP (ceiling {ceiling:g})"),
        ("Solved master gain", f"{mres.gain_db:+.2f} dB"),
        ("Mixer / backend", f"{session.provenance.get('mixer')} / {session.provenance.get('backend')}"),
    ]
    track_rows = "".join(
        f"<tr><td>{html.escape(t.name)}</td><td>{html.escape(str(t.role or ''))}</td>"
        f"<td>{t.params['trim']['gain_db']:+.1f}</td><td>{t.params['fader']['fader_db']:+.1f}</td>"
        f"<td>{t.params['pan']['pan']:+.2f}</td><td>{t.params['eq']['low_shelf_gain_db']:+.0f} dB @ "
        f"{t.params['eq']['low_shelf_freq_hz']:.0f} Hz</td><td>{t.params['compressor']['threshold_db']:.1f} dB, "
        f"{t.params['compressor']['ratio']:.1f}:1</td><td>{t.params['send']['send_db']:.0f}</td></tr>"
        for t in session.tracks
    )
    notices = (session.provenance.get("notices") or []) + (session.provenance.get("render_notices") or []) \
        + (session.provenance.get("mixer_notes") or [])
    body = [
        "<!doctype html><html><head><meta charset='utf-8'><title>mixbridge automix report</title>",
        "<style>body{font-family:sans-serif;max-width:1000px;margin:auto}td,th{padding:2px 8px;text-align:left}"
        "table{border-collapse:collapse}tr:nth-child(even){background:#f3f3f3}</style></head><body>",
        "<h1>mixbridge automix report</h1>",
        "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
        + "</table>",
        "<h2>Tracks</h2><table><tr><th>track</th><th>role</th><th>trim dB</th><th>fader dB</th><th>pan</th>"
        "<th>low shelf</th><th>compressor</th><th>send dB</th></tr>" + track_rows + "</table>",
    ]
    for title, src in imgs:
        body.append(f"<h2>{html.escape(title)}</h2><img src='{src}' style='max-width:100%'>")
    if notices:
        body.append("<h2>Notices</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notices) + "</ul>")
    body.append("</body></html>")
    return atomic_write_text(path, "\n".join(body))
