"""The mastering benchmark of issue 13 (``scripts/bench_mastering.py``): held-out inputs, methods, table.

Every method masters the same held-out inputs to one loudness target and true-peak ceiling, and
:func:`mixbridge.models.master_metrics.score_master` scores each output against the finished master
the input was made from. Inputs come two ways, both from the **test** albums only
(:func:`mixbridge.plugins.datagen.masters.master_files`, ``split="test"``; never tuned on):

* **independent** (:func:`independent_items`): one excerpt of each test master, degraded by
  :func:`degrade_independent` -- a family of processing that is *not* the pre-master generator's
  (:mod:`mixbridge.plugins.datagen.premaster`) and not the master bus's own, so a model that only learnt
  to invert that generator is caught:

  ==========================  ======================================================================
  stage                       definition (each draw uniform, ``log`` in log scale; seeded per item)
  ==========================  ======================================================================
  low shelf                   first-order shelf, bilinear transform of ``H(s) = (s + G w) / (s + w)``
                              (DC gain ``G``, unity at Nyquist), gain -4..+4 dB, corner 80-400 Hz log
  high shelf                  first-order shelf ``H(s) = (G s + w) / (s + w)`` (unity at DC, ``G`` at
                              Nyquist), gain -4..+4 dB, corner 2-8 kHz log
  transient expansion         linked gain ``amount * clip(10 log10(P_fast / P_slow), 0, 12) dB`` with
                              ``P`` one-pole averages (time constants 2 ms and 60 ms, both starting at
                              the first sample's value) of the per-sample peak power ``max_c x_c^2``:
                              onsets are raised, a steady level is kept;
                              ``amount`` 0.3-0.8
  level                       a gain to :data:`INDEPENDENT_LUFS` (-24 LUFS, BS.1770-4)
  ==========================  ======================================================================

* **premaster** (:func:`premaster_items`): the ``test`` split of a ``mixbridge datagen premaster`` dataset
  (invertible pairs, the hard set left out).

The methods (:data:`METHODS`), each timed in CPU seconds of this process (``time.process_time``) for
its whole path (plan and render; scoring excluded); every output that is not a finished master of the
method's own goes through the one master bus (:func:`mixbridge.plugins.mastering.master`):

=====================  =================================================================================
key                    what
=====================  =================================================================================
``input``              the input, untouched (no CPU time)
``gain-limiter``       the one master bus with neutral EQ and compressor: the solved gain and the
                       true-peak limiter (:func:`mixbridge.models.master_unet.neutral_master_params`)
``rules``              ``get_masterer("rules")``'s plan rendered by the master bus
``learned``            ``get_masterer("learned")``'s plan rendered by the master bus
``learned-reference``  the same with another test master (the next item's original) as reference
``learned-original``   the same with the input's own original master as reference (what matchering gets)
``unet``               the seed's mel U-Net + Griffin-Lim (:mod:`mixbridge.models.master_unet`), then gain +
                       limiter
``matchering``         matchering 2.0 with the true original as its reference, its own limiter (run in
                       a separate interpreter: ``--matchering-python``; CPU time of its ``process`` call)
``matchering-bus``     matchering's output, then gain + limiter (its CPU time plus the bus's)
=====================  =================================================================================

A method that cannot run here (not built yet, no weights, no matchering interpreter) is reported as
missing with its reason; an item a method fails on is counted and named, and the rest still run.
"""
from __future__ import annotations

import json
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mixbridge.errors import MixbridgeError
from mixbridge.loudness import db_to_gain, integrated_lufs

from .master_metrics import COLUMNS, aggregate_scores, score_master

#: Loudness of the independent degradation's inputs, LUFS (the issue's -24).
INDEPENDENT_LUFS = -24.0
#: Shelf gain range of the independent degradation, dB.
SHELF_DB = 4.0
#: Corner ranges of the first-order shelves, Hz.
LOW_SHELF_HZ = (80.0, 400.0)
HIGH_SHELF_HZ = (2000.0, 8000.0)
#: Transient expansion: detector time constants (s), the amount range and the largest boost, dB.
FAST_TAU_S, SLOW_TAU_S = 0.002, 0.060
EXPANSION_AMOUNT = (0.3, 0.8)
EXPANSION_MAX_DB = 12.0
#: Share of a master file at each end where no independent excerpt starts (intros and fades).
EXCERPT_MARGIN = 0.1
#: Longest a matchering run may take for all items, s.
MATCHERING_TIMEOUT_S = 3600.0


# --------------------------------------------------------------------------- the independent degradation
def first_order_shelf(gain_db: float, corner_hz: float, sample_rate: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """``(b, a)`` of a first-order shelf by the bilinear transform with the corner pre-warped.

    ``kind="low"``: ``H(s) = (s + G w) / (s + w)``, gain ``G = 10^(gain_db/20)`` at DC and 1 at Nyquist;
    ``kind="high"``: ``H(s) = (G s + w) / (s + w)``, 1 at DC and ``G`` at Nyquist (both exact: the bilinear
    transform maps s = 0 to z = 1 and s = inf to z = -1).

    Raises:
        ValueError: ``kind`` other than low/high, or a corner outside (0, Nyquist).
    """
    from scipy.signal import bilinear

    if not 0.0 < corner_hz < sample_rate / 2.0:
        raise ValueError(f"corner_hz = {corner_hz} must be inside (0, {sample_rate / 2.0}) Hz")
    g = float(db_to_gain(gain_db))
    w = 2.0 * sample_rate * np.tan(np.pi * corner_hz / sample_rate)  # pre-warped, rad/s
    if kind == "low":
        num, den = [1.0, g * w], [1.0, w]
    elif kind == "high":
        num, den = [g, w], [1.0, w]
    else:
        raise ValueError(f"kind = {kind!r}; use 'low' or 'high'")
    b, a = bilinear(num, den, fs=sample_rate)
    return np.asarray(b, np.float64), np.asarray(a, np.float64)


def transient_gain_db(audio: np.ndarray, sample_rate: int, amount: float) -> np.ndarray:
    """The transient expander's gain in dB per sample, float64 ``[samples]`` (module table)."""
    from scipy.signal import lfilter

    power = np.max(np.asarray(audio, np.float64) ** 2, axis=0)
    envs = []
    for tau in (FAST_TAU_S, SLOW_TAU_S):
        alpha = float(np.exp(-1.0 / (tau * sample_rate)))
        # the state starts at the first sample's power: an excerpt's first sample is not an onset
        envs.append(lfilter([1.0 - alpha], [1.0, -alpha], power, zi=[alpha * power[0]])[0])
    fast, slow = (np.maximum(e, 1e-20) for e in envs)
    return float(amount) * np.clip(10.0 * np.log10(fast / slow), 0.0, EXPANSION_MAX_DB)


def draw_independent(rng: np.random.Generator) -> dict[str, float]:
    """One draw of the independent degradation's parameters (module table)."""
    def log_uniform(lo: float, hi: float) -> float:
        return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))

    return {"low_shelf_db": float(rng.uniform(-SHELF_DB, SHELF_DB)), "low_shelf_hz": log_uniform(*LOW_SHELF_HZ),
            "high_shelf_db": float(rng.uniform(-SHELF_DB, SHELF_DB)), "high_shelf_hz": log_uniform(*HIGH_SHELF_HZ),
            "expansion_amount": float(rng.uniform(*EXPANSION_AMOUNT))}


def degrade_independent(master: np.ndarray, sample_rate: int, params: dict[str, float], *,
                        target_lufs: float = INDEPENDENT_LUFS) -> tuple[np.ndarray, dict[str, float]]:
    """Degrade ``master [2, samples]`` with ``params`` (:func:`draw_independent`): shelves, transient
    expansion, then the level to ``target_lufs``. Returns float32 audio and ``params`` plus ``level_db``.

    Raises:
        AudioInputError: a silent master (no level to set).
    """
    from scipy.signal import lfilter

    from mixbridge.errors import AudioInputError

    x = np.asarray(master, np.float64)
    for kind in ("low", "high"):
        b, a = first_order_shelf(params[f"{kind}_shelf_db"], params[f"{kind}_shelf_hz"], sample_rate, kind)
        x = lfilter(b, a, x, axis=-1)
    x = x * db_to_gain(transient_gain_db(x, sample_rate, params["expansion_amount"]))[None]
    lufs = integrated_lufs(x, sample_rate)
    if lufs <= -70.0:
        raise AudioInputError("the master excerpt is silent; it cannot be degraded to a loudness")
    level_db = float(target_lufs - lufs)
    return (x * float(db_to_gain(level_db))).astype(np.float32), {**params, "level_db": level_db}


# --------------------------------------------------------------------------- the held-out items
@dataclass
class BenchItem:
    """One held-out input: ``input`` and the ``master`` it should become, float32 ``[2, samples]``."""

    id: str
    set: str
    input: np.ndarray
    master: np.ndarray
    sample_rate: int
    source: str
    degradation: dict = field(default_factory=dict)


def _excerpt(path: Path, seconds: float, rng: np.random.Generator) -> tuple[np.ndarray, int, float]:
    import soundfile as sf

    from mixbridge.audio import read_audio

    info = sf.info(str(path))
    rate, total = int(info.samplerate), int(info.frames)
    n = min(total, int(round(seconds * rate)))
    lo, hi = int(EXCERPT_MARGIN * total), max(int((1.0 - EXCERPT_MARGIN) * total) - n, 0)
    start = int(rng.integers(lo, hi + 1)) if hi > lo else max(0, (total - n) // 2)
    audio, rate = read_audio(path, start=start, frames=n)
    if audio.shape[0] == 1:
        audio = np.repeat(audio, 2, axis=0)
    return np.asarray(audio[:2], np.float32), rate, start / rate


def independent_items(files: Sequence[str | Path] | None = None, *, seconds: float = 20.0, seed: int = 0,
                      limit: int | None = None) -> list[BenchItem]:
    """One ``seconds`` excerpt of each test master (default: the catalogue's test albums), degraded by
    :func:`degrade_independent` with a draw seeded by ``(seed, file index)``."""
    if files is None:
        from mixbridge.plugins.datagen.masters import master_files

        files = [f.path for f in master_files(split="test")]
    items = []
    for i, path in enumerate(list(files)[:limit]):
        rng = np.random.default_rng([int(seed), 9133, i])
        master, rate, start_s = _excerpt(Path(path), seconds, rng)
        degraded, params = degrade_independent(master, rate, draw_independent(rng))
        items.append(BenchItem(f"independent/{Path(path).stem}@{start_s:.1f}s", "independent", degraded, master, rate,
                               str(path), params))
    return items


def synthetic_items(n: int = 2, *, seconds: float = 4.0, sample_rate: int = 44100, seed: int = 0) -> list[BenchItem]:
    """``n`` synthetic "masters" (decaying noise hits over a two-tone bed, stereo, ~-14 LUFS), degraded by
    :func:`degrade_independent`: the benchmark's offline smoke input."""
    items = []
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    for i in range(n):
        rng = np.random.default_rng([int(seed), 77, i])
        hits = np.exp(-(t % 0.5) / 0.04) * rng.standard_normal((2, t.size)) * 0.3
        bed = 0.2 * np.sin(2 * np.pi * (110 + 30 * i) * t) + 0.1 * np.sin(2 * np.pi * 1760 * t)
        master = (hits + bed[None]).astype(np.float64)
        master *= float(db_to_gain(-14.0 - integrated_lufs(master, sample_rate)))
        degraded, params = degrade_independent(master, sample_rate, draw_independent(rng))
        items.append(BenchItem(f"synthetic/{i}", "independent", degraded, master.astype(np.float32), sample_rate,
                               "synthetic", params))
    return items


def premaster_items(data: str | Path, *, limit: int | None = None) -> list[BenchItem]:
    """The ``test`` split of a pre-master dataset (``mixbridge datagen premaster``), without the hard set;
    with ``limit``, that many examples evenly spaced over the split (its examples draw their files at random,
    so the spacing spreads them over the album)."""
    from mixbridge.plugins.datagen.premaster import read_premaster_dataset

    ds = read_premaster_dataset(data, "test")
    keep = [i for i in range(len(ds)) if not bool(ds.hard[i])]
    if limit is not None and len(keep) > limit:
        keep = [keep[int(j)] for j in np.linspace(0, len(keep) - 1, int(limit)).round()]
    items = []
    for i in keep:
        pre, mas = ds.pair(i)
        items.append(BenchItem(f"premaster/{int(ds.indices[i])}", "premaster", pre, mas, int(ds.sample_rate),
                               str(ds.source_files[i]), dict(ds.degradations[i])))
    return items


# --------------------------------------------------------------------------- the methods
class MethodUnavailable(Exception):
    """A method that cannot run here; the message is the reason the table prints."""


@dataclass
class Method:
    """A benchmark row: ``key``, its table ``label`` and ``build(context) -> run(item, reference) -> (audio,
    notices)`` (raising :class:`MethodUnavailable` when it cannot run)."""

    key: str
    label: str
    build: Callable[[dict], Callable[[BenchItem, np.ndarray], tuple[np.ndarray, list[str]]]]


def _bus(audio: np.ndarray, sample_rate: int, params: dict) -> tuple[np.ndarray, list[str]]:
    from mixbridge.plugins.mastering import master

    params = {k: dict(v) for k, v in params.items()}
    res = master(np.asarray(audio, np.float32), params, sample_rate)
    return res.audio, list(res.notices)


def _neutral(ctx: dict) -> dict:
    from .master_unet import neutral_master_params

    return neutral_master_params(ctx["target_lufs"], ctx["ceiling_dbtp"])


def _build_input(ctx: dict):
    return lambda item, ref: (item.input, [])


def _build_gain_limiter(ctx: dict):
    return lambda item, ref: _bus(item.input, item.sample_rate, _neutral(ctx))


def _build_masterer(name: str, reference: str | None):
    """``reference``: None (no reference), ``"other"`` (another test master) or ``"original"`` (the input's own
    original master, as matchering gets)."""
    def build(ctx: dict):
        from .masterers import get_masterer

        try:
            model = get_masterer(name)
        except (ImportError, OSError, MixbridgeError) as e:
            raise MethodUnavailable(f"get_masterer({name!r}) failed: {type(e).__name__}: {e}") from None

        def run(item: BenchItem, ref: np.ndarray):
            plan = model(item.input, item.sample_rate, target_lufs=ctx["target_lufs"], ceiling_dbtp=ctx["ceiling_dbtp"],
                         references=() if reference is None else (item.master,) if reference == "original" else (ref,))
            out, notices = _bus(item.input, item.sample_rate, plan.params)
            return out, list(plan.notices) + notices

        return run

    return build


def _build_unet(ctx: dict):
    try:
        from .master_unet import UNetMasterer

        model = UNetMasterer(ctx.get("unet_path"))
    except (ImportError, OSError, MixbridgeError) as e:
        raise MethodUnavailable(f"no U-Net weights ({type(e).__name__}: {e}); train and ship them with "
                                "`mixbridge train master-unet --data DIR -o RUN --ship`") from None
    return lambda item, ref: _bus(model.render(item.input, item.sample_rate), item.sample_rate, _neutral(ctx))


def _build_matchering(through_bus: bool):
    def build(ctx: dict):
        outputs = ctx.get("matchering")
        if outputs is None:
            raise MethodUnavailable(ctx.get("matchering_reason", "skipped"))

        def run(item: BenchItem, ref: np.ndarray):
            got = outputs.get(item.id)
            if got is None or "error" in got:
                raise RuntimeError(f"matchering failed on {item.id}: {(got or {}).get('error', 'no output')}")
            audio = got["audio"]
            ctx["extra_cpu_s"] = got["cpu_s"]
            if through_bus:
                return _bus(audio, item.sample_rate, _neutral(ctx))
            return audio, []

        return run

    return build


#: The benchmark's rows, in the table's order.
METHODS: tuple[Method, ...] = (
    Method("input", "input, untouched", _build_input),
    Method("gain-limiter", "gain + limiter (the master bus, neutral EQ/compressor)", _build_gain_limiter),
    Method("rules", "rules", _build_masterer("rules", None)),
    Method("learned", "learned", _build_masterer("learned", None)),
    Method("learned-reference", "learned, with another test master as reference", _build_masterer("learned", "other")),
    Method("learned-original", "learned, the true original as reference (as matchering)",
           _build_masterer("learned", "original")),
    Method("unet", "mel U-Net + Griffin-Lim (the seed's design), then gain + limiter", _build_unet),
    Method("matchering", "matchering 2.0, the true original as reference", _build_matchering(False)),
    Method("matchering-bus", "matchering 2.0, then gain + limiter", _build_matchering(True)),
)
METHOD_KEYS = tuple(m.key for m in METHODS)


def run_matchering(items: Sequence[BenchItem], python: str | Path, *, workdir: Path,
                   timeout_s: float = MATCHERING_TIMEOUT_S) -> dict[str, dict]:
    """Run matchering 2.0 on every item in one subprocess of ``python`` (a venv that has it), the item's
    original master as the reference. Returns ``{item id: {"audio" [2, S] at the item's rate, "cpu_s"}}`` or
    ``{"error"}`` per item.

    Raises:
        MethodUnavailable: the interpreter is missing, has no matchering, or the run failed as a whole.
    """
    from mixbridge.audio import read_audio, resample, write_audio

    python = Path(python)
    if not python.exists():
        raise MethodUnavailable(f"--matchering-python {python} does not exist; create it with "
                                "`python3 -m venv /work/data/bench/mvenv && /work/data/bench/mvenv/bin/pip install "
                                "matchering`")
    driver = Path(__file__).resolve().parents[1] / "scripts" / "matchering_driver.py"
    jobs = []
    for k, item in enumerate(items):
        target, reference, result = (workdir / f"{k}_{name}.wav" for name in ("target", "reference", "result"))
        write_audio(target, item.input, item.sample_rate)
        write_audio(reference, item.master, item.sample_rate)
        jobs.append({"id": item.id, "target": str(target), "reference": str(reference), "result": str(result)})
    job_file, result_file = workdir / "jobs.json", workdir / "results.json"
    job_file.write_text(json.dumps(jobs))
    try:
        proc = subprocess.run([str(python), str(driver), str(job_file), str(result_file)], capture_output=True,
                              text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise MethodUnavailable(f"matchering took over {timeout_s:g} s for {len(items)} items") from None
    if proc.returncode != 0 or not result_file.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise MethodUnavailable(f"matchering's interpreter {python} failed (exit {proc.returncode}): "
                                f"{' | '.join(tail)}")
    out: dict[str, dict] = {}
    by_id = {item.id: item for item in items}
    for r in json.loads(result_file.read_text()):
        item = by_id[r["id"]]
        if "error" in r:
            out[item.id] = {"error": r["error"]}
            continue
        audio, rate = read_audio(r["result"])
        if rate != item.sample_rate:
            audio = resample(audio, rate, item.sample_rate)
        audio = np.asarray(audio, np.float32)
        if audio.shape[0] == 1:
            audio = np.repeat(audio, 2, axis=0)
        n = item.input.shape[1]
        audio = np.pad(audio[:2, :n], ((0, 0), (0, max(0, n - audio.shape[1]))))
        out[item.id] = {"audio": audio, "cpu_s": float(r["cpu_s"])}
    return out


def _reference_for(items: Sequence[BenchItem], k: int) -> np.ndarray:
    """Another test master for item ``k``: the next item's original from a different source file (else the next)."""
    n = len(items)
    for step in range(1, n):
        other = items[(k + step) % n]
        if other.source != items[k].source:
            return other.master
    return items[(k + 1) % n].master


def item_target_lufs(item: BenchItem, target_lufs: float | None) -> float:
    """The loudness target of ``item``: ``target_lufs``, or (``None``) its original master's integrated loudness,
    kept inside the schema's ``loudness.target_lufs`` range."""
    from mixbridge.schema import MASTER_BUS

    if target_lufs is not None:
        return float(target_lufs)
    p = MASTER_BUS.param("loudness.target_lufs")
    return float(np.clip(integrated_lufs(item.master, item.sample_rate), p.min, p.max))


def run_bench(items: Sequence[BenchItem], methods: Sequence[str] = METHOD_KEYS, *, target_lufs: float | None = None,
              ceiling_dbtp: float = -1.0, matchering_python: str | Path | None = None,
              unet_path: str | Path | None = None, progress: Callable[[str], None] | None = None,
              previous: dict | None = None) -> dict:
    """Master and score every item with every method; returns the JSON-ready results.

    ``target_lufs``: one loudness target for every item, or ``None`` (the default) for each item's original
    master's own loudness (:func:`item_target_lufs`): the benchmark asks every method to *recover* the master, so
    PLR and crest compare like with like (a fixed -14 LUFS on masters made at -18 LUFS would charge every method
    the limiting that the louder target needs).

    ``{"target_lufs", "ceiling_dbtp", "items": [{id, set, source, seconds, degradation}], "methods":
    {key: {"label", "status": "ok"|"missing", "reason", "rows": {set or "all": aggregate_scores row +
    "cpu_s_per_min"}, "failures": [...], "scores": [per item]}}}``.

    ``previous``: the results of an earlier call (its ``bench.json``); a method it holds complete (status ok, no
    failures) for the same items, targets and ceiling is copied with ``"reused": true`` instead of run again
    (``--resume``: a long bench on a shared CPU can be finished in several calls).

    Raises:
        ValueError: an unknown method key (the known ones are listed), or no items.
    """
    unknown = sorted(set(methods) - set(METHOD_KEYS))
    if unknown:
        raise ValueError(f"unknown methods {unknown}; known: {', '.join(METHOD_KEYS)}")
    if not items:
        raise ValueError("no held-out items to score")
    say = progress or (lambda s: None)
    targets = [item_target_lufs(it, target_lufs) for it in items]
    ctx: dict[str, Any] = {"target_lufs": targets[0], "ceiling_dbtp": float(ceiling_dbtp), "unet_path": unet_path}
    results: dict[str, Any] = {
        "target_lufs": "original" if target_lufs is None else float(target_lufs), "ceiling_dbtp": float(ceiling_dbtp),
        "items": [{"id": it.id, "set": it.set, "source": it.source, "seconds": it.input.shape[1] / it.sample_rate,
                   "sample_rate": it.sample_rate, "target_lufs": t, "degradation": it.degradation}
                  for it, t in zip(items, targets)],
        "methods": {}}
    reusable: dict[str, dict] = {}
    if previous is not None:
        same = ([(i["id"], i["target_lufs"]) for i in previous.get("items", [])]
                == [(i["id"], i["target_lufs"]) for i in results["items"]]
                and previous.get("ceiling_dbtp") == results["ceiling_dbtp"])
        if same:
            reusable = {k: {**e, "reused": True} for k, e in previous.get("methods", {}).items()
                        if e.get("status") == "ok" and not e.get("failures") and len(e.get("scores", [])) == len(items)}
    if any(m.startswith("matchering") and m not in reusable for m in methods):
        if matchering_python is None:
            ctx["matchering_reason"] = ("skipped: no --matchering-python (a venv with `pip install matchering`, kept "
                                        "apart from the project's torch pin)")
        else:
            say(f"matchering: {len(items)} items in {matchering_python}")
            with tempfile.TemporaryDirectory(prefix="mixbridge-matchering-") as tmp:
                try:
                    ctx["matchering"] = run_matchering(items, matchering_python, workdir=Path(tmp))
                except MethodUnavailable as e:
                    ctx["matchering_reason"] = str(e)
    for method in METHODS:
        if method.key not in methods:
            continue
        if method.key in reusable:
            results["methods"][method.key] = reusable[method.key]
            say(f"{method.key}: reused from the earlier call")
            continue
        entry: dict[str, Any] = {"label": method.label, "status": "ok", "reason": "", "failures": [], "scores": []}
        results["methods"][method.key] = entry
        try:
            run = method.build(ctx)
        except MethodUnavailable as e:
            entry.update(status="missing", reason=str(e))
            say(f"{method.key}: missing ({e})")
            continue
        cpu: dict[str, float] = {}
        minutes: dict[str, float] = {}
        for k, item in enumerate(items):
            ctx["extra_cpu_s"], ctx["target_lufs"] = 0.0, targets[k]
            t0 = time.process_time()
            try:
                audio, notices = run(item, _reference_for(items, k))
                spent = time.process_time() - t0 + ctx["extra_cpu_s"]
                score = score_master(audio, item.master, item.sample_rate, target_lufs=targets[k],
                                     ceiling_dbtp=ceiling_dbtp)
            except Exception as e:  # one item's failure is reported, the bench goes on
                entry["failures"].append({"id": item.id, "error": f"{type(e).__name__}: {e}"})
                say(f"{method.key}: {item.id} failed: {type(e).__name__}: {e}")
                continue
            score.pop("octave_bands")
            entry["scores"].append({"id": item.id, "set": item.set, "cpu_s": spent, "notices": notices, **score})
            for s in (item.set, "all"):
                cpu[s] = cpu.get(s, 0.0) + spent
                minutes[s] = minutes.get(s, 0.0) + item.input.shape[1] / item.sample_rate / 60.0
            say(f"{method.key}: {item.id} lufs_err {score['lufs_error_lu']:.2f} tp {score['true_peak_dbtp']:.2f} "
                f"mrstft {score['mrstft']:.3f} tonal {score['tonal_error_db']:.2f} ({spent:.1f} s cpu)")
        rows = {}
        for s in sorted({sc["set"] for sc in entry["scores"]}) + ["all"]:
            chosen = [sc for sc in entry["scores"] if s == "all" or sc["set"] == s]
            if chosen:
                rows[s] = {**aggregate_scores(chosen),
                           "cpu_s_per_min": None if method.key == "input" else cpu[s] / max(minutes[s], 1e-12)}
        entry["rows"] = rows
    return results


def format_table(results: dict, set_name: str = "all") -> str:
    """The markdown table of ``results`` (:func:`run_bench`) for one input set (``all``, ``independent``,
    ``premaster``): the issue's columns, missing methods with their reason."""
    head = ["method"] + [label for _, label in COLUMNS[:-1]] + [f"over {results['ceiling_dbtp']:g} dBTP",
                                                               "CPU s per minute"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes = []
    for entry in results["methods"].values():
        if entry["status"] != "ok":
            lines.append(f"| {entry['label']} | " + " | ".join(["missing"] * (len(head) - 1)) + " |")
            notes.append(f"- {entry['label']}: {entry['reason']}")
            continue
        row = entry["rows"].get(set_name)
        if row is None:
            continue
        cpu = "-" if row["cpu_s_per_min"] is None else f"{row['cpu_s_per_min']:.2f}"
        cells = [f"{row['lufs_error_lu']:.2f}", f"{row['worst_true_peak_dbtp']:+.2f}", f"{row['mrstft']:.3f}",
                 f"{row['tonal_error_db']:.2f}", f"{row['plr_error_db']:.2f}", f"{row['crest_error_db']:.2f}",
                 f"{row['over_ceiling']}/{row['files']}", cpu]
        lines.append(f"| {entry['label']}{' (reused)' if entry.get('reused') else ''} | " + " | ".join(cells) + " |")
        for f in entry["failures"]:
            notes.append(f"- {entry['label']}: failed on {f['id']}: {f['error']}")
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n"
