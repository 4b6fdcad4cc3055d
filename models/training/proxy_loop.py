"""Proxy in the loop, measured: which dmc-full matches a real plugin's mixes better (issue 14, item 4).

The seed thesis trains the mixer through a neural proxy of the plugin that will render its decisions,
so that the network learns that plugin's knob law instead of the schema's. ``mixbridge train dmc-full
--compressor-proxy PROXY.json`` does this for the strips' compressor
(:func:`mixbridge.models.training.dmc_full.loop_console`); :func:`evaluate_proxy_in_loop` measures it.

Per excerpt of a split, with the real plugin (a ``vst`` backend with the plugin's map) as the strips'
compressor inside the torch console (:func:`mixbridge.models.console.backend_compressor_stage`; every
other stage is the schema's, so the compressor is the only difference measured):

* a method-1 pair (:class:`~.dmc_full.ReferencePairs`, sessions and crops fixed by ``seed``): crop B
  rendered with a random full-strip session *by the plugin* is the reference; crop A rendered the same
  way with the same session is the target;
* each checkpoint predicts a session from crop A's stems and the reference
  (:func:`mixbridge.models.style_transfer.predict_from_reference`, no refinement); crop A is rendered with
  it by the plugin, and scored against the target (sum-and-difference MR-STFT, both at -23 LUFS) and the
  reference (Diff-MST feature distance, :class:`~mixbridge.models.style_transfer.FeatureDistance`);
* the render fidelity of each training-time console: the predicted sessions rendered by the schema's
  console and by the proxy's, against the plugin's render of the same session (ESR and MR-STFT, both at
  -23 LUFS): what each training loop believed it heard.

``python -m mixbridge.models.training.proxy_loop --data DATASET --plugin MAP.json --proxy PROXY.json
--checkpoint console=A.json --checkpoint proxy=B.json`` prints the table; ``--json OUT`` keeps it all.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data import TrainConfigError

__all__ = ["evaluate_proxy_in_loop", "main"]


def _esr(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Error-to-signal ratio ``sum (y - t)^2 / sum t^2`` (Wright et al. 2019, no pre-emphasis)."""
    return float(((pred - target) ** 2).sum() / (target ** 2).sum().clamp(min=1e-20))


def evaluate_proxy_in_loop(data: str | Path, *, checkpoints: Mapping[str, str | Path | None], plugin_map: str | Path,
                           proxy: str | Path, split: str = "test", crop_s: float = 2.0, seed: int = 1,
                           limit: int | None = None, num_threads: int = 1, progress: bool = True) -> dict:
    """The proxy-in-the-loop table (module docstring) on ``split``'s excerpts of composer dataset ``data``.

    Args:
        checkpoints: ``{label: dmc-full checkpoint}`` (None: the shipped weights), e.g. one trained through
            the schema's console and one through ``proxy``.
        plugin_map: the compressor map of the plugin (``plugins calibrate ... -o MAP.json``), rendered by the
            ``vst`` backend.
        proxy: the grey-box compressor proxy of that plugin (the one the proxy-trained checkpoint used).
        crop_s: crop length, s (both crops). seed: the method-1 draw. limit: the first excerpts only.

    Returns:
        ``{"rows": {label: {"mrstft", "feature_distance", "n"}}, "fidelity": {"schema console" | "proxy":
        {"esr", "mrstft"}}, "per_excerpt": [...], ...}``; means over the excerpts.

    Raises:
        TrainConfigError: an empty split or no checkpoints; a proxy :func:`~.dmc_full.loop_console` refuses.
        PluginMapError, PluginNotFoundError: a bad map or a plugin that is not installed.
    """
    from mixbridge.plugins.backend import get_backend
    from mixbridge.plugins.datagen.composer import read_composer_dataset

    from ..console import TorchConsole, backend_compressor_stage
    from ..dmc_full import REFERENCE_LUFS
    from ..dmc_mixer import DMCMixer
    from ..losses import sum_and_difference_mrstft_loss
    from ..style_transfer import FeatureDistance, load_dmc_full, predict_from_reference
    from .dmc_full import ReferencePairs, at_lufs, held_out_pair, loop_console, session_master

    if not checkpoints:
        raise TrainConfigError("evaluate_proxy_in_loop: give at least one checkpoint ({label: path})")
    torch.set_num_threads(int(num_threads))
    ds = read_composer_dataset(data)
    excerpts = ds.split(split)[:limit] if limit else ds.split(split)
    if not excerpts:
        raise TrainConfigError(f"{data}: no excerpts in split {split!r}")
    nets = {label: load_dmc_full(path) for label, path in checkpoints.items()}
    first = next(iter(nets.values()))
    sr = int(first.sample_rate)
    backend = get_backend("vst", sr, maps={"compressor": str(plugin_map)})
    plugin = TorchConsole(sr, check_ranges=False, compressor=backend_compressor_stage(backend))
    consoles = {"schema console": TorchConsole(sr, check_ranges=False), "proxy": loop_console(sr, proxy)}
    pairs = ReferencePairs(excerpts, first, crop_s=crop_s, audio_s=crop_s, seed=seed, fixed=True, console=plugin)
    stft = sum_and_difference_mrstft_loss()
    dmc = DMCMixer()
    per: list[dict[str, Any]] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(excerpts), desc="proxy in the loop", unit="excerpt")
    for i, ex in enumerate(excerpts):
        raw, ref, target, stems = held_out_pair(pairs, i)
        distance = FeatureDistance(sr, torch.from_numpy(ref)[None].float(), stereo=True)
        init = dmc(stems, target_lufs=-14.0)
        row: dict[str, Any] = {"id": ex.id}
        for label, net in nets.items():
            session = predict_from_reference(raw, ref, sr, init, model=net)
            with torch.no_grad():
                real = session_master(plugin, raw, session).float()
                real23 = at_lufs(real, sr)
                score: dict[str, Any] = {"mrstft": float(stft(real23, target)),
                         "feature_distance": float(distance(at_lufs(real, sr, REFERENCE_LUFS)))}
                for cname, con in consoles.items():
                    heard = at_lufs(session_master(con, raw, session).float(), sr)
                    score[cname] = {"esr": _esr(heard, real23), "mrstft": float(stft(heard, real23))}
            row[label] = score
        per.append(row)
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    rows = {label: {"mrstft": float(np.mean([r[label]["mrstft"] for r in per])),
                    "feature_distance": float(np.mean([r[label]["feature_distance"] for r in per])), "n": len(per)}
            for label in nets}
    fidelity = {c: {"esr": float(np.mean([r[label][c]["esr"] for r in per for label in nets])),
                    "mrstft": float(np.mean([r[label][c]["mrstft"] for r in per for label in nets]))}
                for c in consoles}
    return {"split": split, "excerpts": len(excerpts), "crop_s": crop_s, "seed": seed,
            "plugin_map": str(plugin_map), "proxy": str(proxy),
            "checkpoints": {k: (str(v) if v is not None else "shipped") for k, v in checkpoints.items()},
            "rows": rows, "fidelity": fidelity, "per_excerpt": per}


def main(argv: list[str] | None = None) -> int:
    """The command line of the module docstring."""
    import argparse
    import json

    from mixbridge.atomic import atomic_write_text

    p = argparse.ArgumentParser(prog="python -m mixbridge.models.training.proxy_loop",
                                description="dmc-full trained through the schema's console vs through a plugin's "
                                            "proxy, both rendered with the real plugin")
    p.add_argument("--data", required=True, help="a composer dataset (mixbridge datagen composer)")
    p.add_argument("--plugin", required=True, help="the compressor map of the plugin (plugins calibrate -o)")
    p.add_argument("--proxy", required=True, help="the plugin's grey-box compressor proxy (NAME.json)")
    p.add_argument("--checkpoint", action="append", required=True, metavar="LABEL=PATH",
                   help="a dmc-full checkpoint to score (repeat; PATH 'shipped' for models/mixers/dmc_full.json)")
    p.add_argument("--split", default="test")
    p.add_argument("--crop-s", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--json", default=None)
    p.add_argument("-q", "--quiet", action="store_true")
    a = p.parse_args(argv)
    checkpoints: dict[str, str | None] = {}
    for spec in a.checkpoint:
        label, sep, path = spec.partition("=")
        if not sep or not label or not path:
            p.error(f"--checkpoint {spec!r}: write LABEL=PATH, e.g. proxy=runs/loop/best.json")
        checkpoints[label] = None if path == "shipped" else path
    r = evaluate_proxy_in_loop(a.data, checkpoints=checkpoints, plugin_map=a.plugin, proxy=a.proxy, split=a.split,
                               crop_s=a.crop_s, seed=a.seed, limit=a.limit, progress=not a.quiet)
    print(f"rendered with the plugin ({r['excerpts']} {r['split']} excerpts)")
    print("| dmc-full trained through | sum/diff MR-STFT to the plugin's target | feature distance to the reference |")
    print("|---|---|---|")
    for k, v in r["rows"].items():
        print(f"| {k} | {v['mrstft']:.4f} | {v['feature_distance']:.4f} |")
    print("\n| training-time render vs the plugin's (same sessions) | ESR | sum/diff MR-STFT |")
    print("|---|---|---|")
    for k, v in r["fidelity"].items():
        print(f"| {k} | {v['esr']:.5f} | {v['mrstft']:.4f} |")
    if a.json:
        atomic_write_text(a.json, json.dumps(r, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
