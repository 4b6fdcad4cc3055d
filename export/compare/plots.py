"""The figures of a ``compare`` report (matplotlib, Agg): spectrograms of plugin, proxy and error,
and the transfer curves of :mod:`.curves`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .curves import EQ_NOISE_DBFS, SWEEP_LEVELS_DB, SWEEP_STEP_S, SWEEP_TONE_HZ


def plot_spectrograms(path: Path, picks: list[tuple[str, np.ndarray, np.ndarray]], sample_rate: int) -> None:
    """Write a PNG with one row per ``(title, plugin [samples], proxy [samples])`` pick: the plugin's,
    the proxy's and the error's spectrogram (1024-point FFT, -140..-20 dB, up to 16 kHz)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = plt.get_cmap("magma")
    cmap = base.with_extremes(bad=base(0.0), under=base(0.0))  # digital silence (-inf dB): the floor colour
    fig, axes = plt.subplots(len(picks), 3, figsize=(13, 3.2 * len(picks)), squeeze=False)
    for row, (title, target, output) in enumerate(picks):
        for col, (name, sig) in enumerate((("plugin", target), ("proxy", output), ("error (plugin - proxy)",
                                                                                      target - output))):
            ax = axes[row][col]
            with np.errstate(divide="ignore"):
                ax.specgram(sig, NFFT=1024, Fs=sample_rate, noverlap=768, cmap=cmap, vmin=-140,
                            vmax=-20, scale="dB")
            ax.set_ylim(0, min(16000, sample_rate / 2))
            ax.set_title(f"{title}: {name}", fontsize=9)
            ax.set_xlabel("s")
            ax.set_ylabel("Hz")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_curves(path: Path, curves: list[dict], kind: str) -> None:
    """Write a PNG of transfer curves: each ``{"set", "x", "plugin", "proxy"}`` row solid (plugin) and
    dashed (proxy); ``kind`` ``"level"`` (dB in/out, with the unity line) or ``"eq"`` (dB over log Hz)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, c in enumerate(curves):
        col = colours[i % len(colours)]
        ax.plot(c["x"], c["plugin"], color=col, lw=2, label=f"plugin, set {c['set']}")
        ax.plot(c["x"], c["proxy"], color=col, lw=1.5, ls="--", label=f"proxy, set {c['set']}")
    if kind == "level":
        ax.plot(SWEEP_LEVELS_DB, SWEEP_LEVELS_DB, color="grey", lw=0.8, ls=":", label="unity")
        ax.set_xlabel("input level (dB re full-scale sine)")
        ax.set_ylabel("output level (dB re full-scale sine)")
        ax.set_title(f"static level curve ({SWEEP_TONE_HZ:g} Hz tone, {SWEEP_STEP_S:g} s steps)")
    else:
        ax.set_xscale("log")
        ax.set_xlabel("Hz")
        ax.set_ylabel("dB")
        ax.set_title(f"magnitude response (white noise at {EQ_NOISE_DBFS:g} dBFS RMS)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
