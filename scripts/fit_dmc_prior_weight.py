"""Choose the ``dmc`` mixer's family-prior weight and pan scale on the composer dataset's validation split.

The ``dmc`` mixer can move each track's relative gain part of the way to the ``prior`` mixer's family
level (:meth:`mixbridge.models.dmc_mixer.DMCMixer.blend_prior`). This script runs the network once per
excerpt of ``--split`` (default ``val``: never the test split), scores every weight of a grid by the
level RMSE against the composer's labels (dB, gains relative to their mean, averaged over excerpts, as
the model card's "figures from the labels" table), and every factor on the network's pans
(:meth:`~mixbridge.models.dmc_mixer.DMCMixer.pan_scale`, 0 = centred) by the pan MAE against the labels; prints
both grids, and with ``--write`` stores the best of each in the checkpoint record (``extra.prior_blend``:
``weight``, ``pan_scale``; written atomically), where the mixer reads them.

    .venv/bin/python scripts/fit_dmc_prior_weight.py --data /work/data/composer [--write]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from mixbridge.atomic import atomic_write_text
from mixbridge.audio import load_stems
from mixbridge.loudness import SILENT_LUFS
from mixbridge.models.dmc_mixer import SHIPPED_CHECKPOINT, DMCMixer
from mixbridge.plugins.datagen.composer import read_composer_dataset

GRID = [round(0.05 * i, 2) for i in range(21)]
PAN_GRID = [round(0.1 * i, 1) for i in range(11)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="a composer dataset (mixbridge datagen composer)")
    p.add_argument("--split", default="val", choices=("train", "val"), help="where the weight is chosen")
    p.add_argument("--checkpoint", default=str(SHIPPED_CHECKPOINT), help="the dmc checkpoint record (NAME.json)")
    p.add_argument("--write", action="store_true", help="store the chosen weight in the checkpoint record")
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    ds = read_composer_dataset(a.data)
    mixer = DMCMixer(checkpoint=a.checkpoint, prior_weight=0.0, pan_scale=1.0)
    rows, pan_rows = [], []
    for ex in ds.split(a.split):
        stems = load_stems(ex.stems_dir)
        d = mixer.predict(stems)
        order = [s.name for s in stems.stems]
        idx = [order.index(n) for n in ex.track_names]
        audible = d["lufs"] > SILENT_LUFS
        target = ex.target_gain_db - ex.target_gain_db.mean()
        errs = []
        for w in GRID:
            g = np.zeros(len(order))
            g[audible] = mixer.blend_prior(stems, audible, d["gain_db"][audible], w)
            got = g[idx]
            errs.append(float(np.sqrt(np.mean(((got - got.mean()) - target) ** 2))))
        rows.append(errs)
        pan = d["pan"][idx]
        pan_rows.append([float(np.mean(np.abs(f * pan - ex.target_pan))) for f in PAN_GRID])
    mean = np.mean(rows, axis=0)
    best = GRID[int(np.argmin(mean))]
    print(f"{a.split} split, {len(rows)} excerpts: level RMSE (dB) by prior weight")
    for w, e in zip(GRID, mean):
        print(f"  {w:.2f}  {e:.3f}{'  <- chosen' if w == best else ''}")
    pan_mean = np.mean(pan_rows, axis=0)
    best_pan = PAN_GRID[int(np.argmin(pan_mean))]
    print(f"{a.split} split: pan MAE by the factor on the network's pans (0: centred)")
    for f, e in zip(PAN_GRID, pan_mean):
        print(f"  {f:.1f}  {e:.5f}{'  <- chosen' if f == best_pan else ''}")
    if a.write:
        path = Path(a.checkpoint)
        record = json.loads(path.read_text())
        record.setdefault("extra", {})["prior_blend"] = {
            "weight": best, "chosen_on": a.split, "excerpts": len(rows),
            "level_rmse_db_by_weight": {f"{w:.2f}": round(float(e), 4) for w, e in zip(GRID, mean)},
            "pan_scale": best_pan,
            "pan_mae_by_scale": {f"{f:.1f}": round(float(e), 5) for f, e in zip(PAN_GRID, pan_mean)},
            "table": "models/mixers/prior.json", "command": "scripts/fit_dmc_prior_weight.py --write"}
        atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True) + "\n")
        print(f"wrote extra.prior_blend.weight = {best}, pan_scale = {best_pan} to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
