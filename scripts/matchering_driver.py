"""Run matchering 2.0 on a list of (target, reference) WAV pairs; the benchmark's subprocess (no mixbridge import).

    MATCHERING_PYTHON scripts/matchering_driver.py JOBS.json RESULTS.json

``JOBS.json``: ``[{"id", "target", "reference", "result"}, ...]`` (WAV paths). Each pair goes through
``matchering.process(target, reference, results=[Result(result, "FLOAT", use_limiter=True,
normalize=True)])`` -- matchering's defaults: its own limiter and normalisation, as its users run it.
``RESULTS.json``: ``[{"id", "result", "cpu_s"} | {"id", "error"}, ...]``, ``cpu_s`` the process CPU time of
the ``process`` call (``time.process_time``). It runs in its own interpreter because matchering's
dependencies are not the project's (scripts/bench_mastering.py ``--matchering-python``).
"""
from __future__ import annotations

import json
import sys
import time


def main(argv: list[str]) -> int:
    import matchering as mg

    jobs_path, results_path = argv
    with open(jobs_path) as f:
        jobs = json.load(f)
    out = []
    for job in jobs:
        t0 = time.process_time()
        try:
            mg.process(target=job["target"], reference=job["reference"],
                       results=[mg.Result(job["result"], subtype="FLOAT", use_limiter=True, normalize=True)])
        except Exception as e:  # reported per pair; the others still run
            out.append({"id": job["id"], "error": f"{type(e).__name__}: {e}"})
            continue
        out.append({"id": job["id"], "result": job["result"], "cpu_s": time.process_time() - t0})
    with open(results_path, "w") as f:
        json.dump(out, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
