"""How much of a mixer's sum/difference MR-STFT the pans alone cost on the composer dataset: the composer's own
session (its gains, exactly) rendered with every track centred, scored against the composer's mix as
``mixbridge evaluate --dataset`` scores a mixer (:func:`mixbridge.app.evaluate.score_run`: same render, same
loudness normalisation, same measures).

A mixer that cannot know whether a part goes left or right (the side is not in the audio: in every GM family
of the training songs the off-centre parts go left and right about evenly) centres it, and then this is the
floor of its MR-STFT even with perfect gains; the composer's session as it is scores 0 (a check the script
prints too).

    .venv/bin/python scripts/composer_pan_floor.py --data /work/data/composer --split test   # ~1 min
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np

from mixbridge.app.evaluate import score_run
from mixbridge.audio import load_stems
from mixbridge.plugins.datagen.composer import read_composer_dataset
from mixbridge.roles import roles_from_manifest
from mixbridge.session import load

COLUMNS = ("sum_difference_mrstft", "mrstft_sum", "mrstft_difference", "level_rmse_db", "pan_mae")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="a composer dataset (mixbridge datagen composer)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--backend", default="builtin")
    a = p.parse_args(argv)
    ds = read_composer_dataset(a.data)
    rows: dict[str, list[list[float]]] = {"composer's session": [], "composer's gains, every track centred": []}
    for ex in ds.split(a.split):
        stems = load_stems(ex.stems_dir, roles=roles_from_manifest(ex.stems_dir))
        target = ex.load_target_mix()
        session = load(ex.target_session_path)
        for t in session.tracks:   # the stems, wherever the dataset is now
            t.source = str(Path(ex.stems_dir) / Path(t.source).name)
        for name, out in rows.items():
            s = copy.deepcopy(session)
            if "centred" in name:
                for t in s.tracks:
                    t.params["pan"]["pan"] = 0.0
            r = score_run(lambda stems, seed=0, source_base=None, s=s: s, 0, ex, stems, target, a.backend)
            out.append([float(r[c]) for c in COLUMNS])
    n = len(next(iter(rows.values())))
    print(f"{a.split} split of {a.data}: {n} excerpts, backend {a.backend}\n")
    print("| session | sum/diff MR-STFT | MR-STFT sum | MR-STFT difference | level RMSE dB | pan MAE |")
    print("|---|---|---|---|---|---|")
    for name, out in rows.items():
        m = np.mean(out, axis=0)
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in m) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
