"""Benchmark every registered mixer on one 16-track, 3-minute session (issue 12, item 5), CPU.

    .venv/bin/python scripts/bench_mixers.py [--tracks 16] [--seconds 180] [--repeats 3]
        [--mixers knowledge,prior,...] [--demo SONG_DIR] [--onnx DMC.onnx] [--threads 1]

Times the mixer call only, ``mixer(stems, seed=0)`` -> Session, on stems already loaded (reading
the files and rendering the session are outside the timing): CPU seconds of the process
(``time.process_time``, every thread) and wall seconds, the median of ``--repeats`` runs after
one untimed warm-up call (which opens a network's weights). The issue's aim: ``dmc`` at most 1 s.

The stems are 44.1 kHz stereo float32 WAVs written to a temporary folder with a demo-style
``manifest.json`` (``kind``, ``gm_program``), so the ``prior`` mixer finds GM families:

* default: synthesised per track -- a GM instrument family's register (a harmonic tone of
  notes on a seeded random melody, or a noise-burst drum piece), seeded, deterministic;
* ``--demo SONG_DIR``: a demo song's stems (and manifest) tiled to ``--seconds``, the first
  ``--tracks`` of them repeated as needed.

A mixer that cannot run here (no weights: ``learned``, ``dmc`` before training) is listed as
skipped with its one-line reason; without shipped ``dmc`` weights the same network is also timed
untrained (``dmc (untrained weights)``: the cost does not depend on the weights). ``--onnx`` adds
the torch-free ONNX DMC runner (:class:`mixbridge.export.mixer_onnx.OnnxDMCMixer`).

Every mixer ends in :func:`mixbridge.models.mix_session.build_session`, which records the sha256
of each input file in the session's provenance (0.7 s for 16 x 3 min of float32 WAV here). That is
provenance, not the mixer's decision, the same for every mixer, and hashed once per file and process
(:func:`mixbridge.checksum.sha256_file_memo`): the untimed warm-up call hashes, the timed calls look
the digests up. Its cost is timed once on its own (uncached) and printed under the table; a whole
``automix`` run pays it once. ``--with-hashing`` clears the memo (:func:`mixbridge.checksum.clear_memo`)
before every timed call instead.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SAMPLE_RATE = 44100
#: The synthetic session: (name, kind, GM program or None, fundamental Hz) cycled to ``--tracks``.
SYNTH_TRACKS = (
    ("kick", "drums", None, 55.0), ("snare", "drums", None, 180.0), ("hihat", "drums", None, 6000.0),
    ("electric_bass_finger", "pitched", 33, 55.0), ("acoustic_grand_piano", "pitched", 0, 262.0),
    ("overdriven_guitar", "pitched", 29, 196.0), ("string_ensemble_1", "pitched", 48, 330.0),
    ("trumpet", "pitched", 56, 440.0), ("lead_2_sawtooth", "pitched", 81, 523.0),
    ("pad_2_warm", "pitched", 89, 220.0), ("drawbar_organ", "pitched", 16, 262.0),
    ("flute", "pitched", 73, 660.0), ("cymbals", "drums", None, 8000.0), ("toms", "drums", None, 110.0),
    ("vibraphone", "pitched", 11, 392.0), ("alto_sax", "pitched", 65, 349.0),
)


def synth_stem(kind: str, f0_hz: float, seconds: float, seed: int) -> np.ndarray:
    """A stereo float32 ``[2, samples]`` stem: a melody of harmonic notes or a drum-like burst pattern."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    out = np.zeros(n, np.float32)
    note_s = 0.25 if kind == "drums" else 0.5
    note_n = int(note_s * SAMPLE_RATE)
    t = np.arange(note_n) / SAMPLE_RATE
    env = np.exp(-t / (0.05 if kind == "drums" else 0.3)).astype(np.float32)
    for start in range(0, n - note_n, note_n):
        if rng.random() < 0.2:
            continue
        if kind == "drums":
            tone = np.sin(2 * np.pi * f0_hz * t) + 0.5 * rng.standard_normal(note_n)
        else:
            f = f0_hz * 2 ** (rng.integers(-5, 8) / 12)
            tone = sum(np.sin(2 * np.pi * f * k * t) / k for k in range(1, 5))
        out[start:start + note_n] += (0.2 * env * tone).astype(np.float32)
    pan = rng.uniform(0.3, 0.7)
    return np.stack([out * np.sqrt(1 - pan), out * np.sqrt(pan)]).astype(np.float32)


def write_synth(folder: Path, tracks: int, seconds: float) -> None:
    """Write ``tracks`` synthesised stems and their demo-style manifest into ``folder``."""
    from mixbridge.audio import write_audio

    stems = []
    for i in range(tracks):
        name, kind, program, f0 = SYNTH_TRACKS[i % len(SYNTH_TRACKS)]
        fname = f"{name}.wav" if i < len(SYNTH_TRACKS) else f"{name}_{i // len(SYNTH_TRACKS) + 1}.wav"
        write_audio(folder / fname, synth_stem(kind, f0, seconds, seed=i), SAMPLE_RATE)
        stems.append({"file": fname, "name": Path(fname).stem, "kind": kind, "gm_program": program,
                      "role": name if kind == "drums" else None})
    (folder / "manifest.json").write_text(json.dumps({"stems": stems}, indent=1))


def write_tiled_demo(song_dir: Path, folder: Path, tracks: int, seconds: float) -> None:
    """Tile a demo song's stems to ``seconds`` (first ``tracks``, repeated as needed) into ``folder``."""
    from mixbridge.audio import read_audio, resample, write_audio

    manifest = json.loads((song_dir / "manifest.json").read_text())
    src = manifest["stems"]
    stems = []
    for i in range(tracks):
        entry = dict(src[i % len(src)])
        audio, rate = read_audio(song_dir / entry["file"])
        audio = resample(audio, rate, SAMPLE_RATE)
        if audio.shape[0] == 1:
            audio = np.repeat(audio, 2, axis=0)
        n = int(seconds * SAMPLE_RATE)
        audio = np.tile(audio, (1, -(-n // audio.shape[1])))[:, :n]
        stem = Path(entry["file"]).stem if i < len(src) else f"{Path(entry['file']).stem}_{i // len(src) + 1}"
        entry["file"], entry["name"] = f"{stem}.wav", stem
        write_audio(folder / entry["file"], audio, SAMPLE_RATE)
        stems.append(entry)
    (folder / "manifest.json").write_text(json.dumps({"stems": stems}, indent=1))


def time_mixer(mixer, stems, repeats: int, before=None) -> tuple[float, float, float, float]:
    """(median CPU s, median wall s, min CPU s, max CPU s) of ``mixer(stems, seed=0)`` over ``repeats``
    runs after a warm-up; ``before()``, if given, runs untimed before each timed call."""
    mixer(stems, seed=0)
    cpu, wall = [], []
    for _ in range(repeats):
        if before is not None:
            before()
        c0, w0 = time.process_time(), time.perf_counter()
        mixer(stems, seed=0)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return statistics.median(cpu), statistics.median(wall), min(cpu), max(cpu)


def hashing_cpu_s(stems) -> float:
    """CPU seconds of the provenance sha256 of every input, uncached (:func:`mixbridge.checksum.sha256_file`)."""
    from mixbridge.checksum import sha256_file

    c0 = time.process_time()
    for s in stems.stems:
        sha256_file(s.path)
    return time.process_time() - c0


def main(argv: list[str] | None = None) -> int:
    """Parse the options, build the session's stems, time each mixer and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tracks", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per mixer (the median is shown)")
    ap.add_argument("--mixers", default=None, help="comma-separated mixer names (default: every registered one)")
    ap.add_argument("--demo", type=Path, default=None, metavar="SONG_DIR", help="tile a demo song's stems")
    ap.add_argument("--onnx", type=Path, default=None, metavar="DMC.onnx", help="also time the ONNX DMC runner")
    ap.add_argument("--threads", type=int, default=1, help="torch and onnxruntime intra-op threads (default 1)")
    ap.add_argument("--with-hashing", action="store_true",
                    help="clear the provenance sha256 memo before every timed call, so each call hashes its inputs")
    args = ap.parse_args(argv)

    import os

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    from mixbridge.audio import load_stems
    from mixbridge.errors import MixbridgeError
    from mixbridge.models.mixers import get_mixer, mixer_names
    from mixbridge.roles import assign_roles, roles_from_manifest

    names = args.mixers.split(",") if args.mixers else mixer_names()
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-mixers-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        if args.demo:
            write_tiled_demo(args.demo, folder, args.tracks, args.seconds)
        else:
            write_synth(folder, args.tracks, args.seconds)
        stems = load_stems(folder, roles=roles_from_manifest(folder))
        assign_roles(stems.stems)
        print(f"session: {len(stems.stems)} tracks x {stems.n_samples / stems.sample_rate:.0f} s, "
              f"{stems.sample_rate} Hz stereo ({'demo ' + str(args.demo) if args.demo else 'synthesised'}), "
              f"prepared in {time.perf_counter() - t0:.1f} s; median of {args.repeats} runs", flush=True)
        if any(n in names for n in ("dmc", "learned", "dmc-full")):
            try:
                import torch

                torch.set_num_threads(args.threads)
            except ImportError:
                pass
        mixers = []
        for name in names:
            try:
                mixers.append((name, get_mixer(name)))
            except (MixbridgeError, ImportError) as e:
                rows.append((name, f"skipped: {str(e).splitlines()[0]}"))
        from mixbridge.models.dmc_mixer import SHIPPED_CHECKPOINT

        if "dmc" in names and not SHIPPED_CHECKPOINT.exists():
            try:  # no shipped weights yet: time the same network untrained (the cost does not depend on training)
                import torch

                from mixbridge.models.dmc import DMC
                from mixbridge.models.dmc_mixer import DMCMixer

                torch.manual_seed(0)
                mixers.append(("dmc (untrained weights)", DMCMixer(model=DMC().eval())))
            except ImportError as e:
                rows.append(("dmc (untrained weights)", f"skipped: {e}"))
        if args.onnx:
            try:
                from mixbridge.export.mixer_onnx import OnnxDMCMixer

                mixers.append((f"dmc (onnx {args.onnx.name})", OnnxDMCMixer(args.onnx, num_threads=args.threads)))
            except (MixbridgeError, ImportError) as e:
                rows.append(("dmc (onnx)", f"skipped: {str(e).splitlines()[0]}"))
        from mixbridge import checksum

        hash_s = hashing_cpu_s(stems)
        clear = checksum.clear_memo if args.with_hashing else None
        for name, mixer in mixers:
            try:
                cpu, wall, lo, hi = time_mixer(mixer, stems, args.repeats, before=clear)
            except (MixbridgeError, ImportError) as e:
                rows.append((name, f"skipped: {str(e).splitlines()[0]}"))
                continue
            rows.append((name, f"{cpu:8.3f} {wall:8.3f}   {lo:.3f}..{hi:.3f}"))
            print(f"  {name}: {cpu:.3f} CPU s, {wall:.3f} wall s", flush=True)
    width = max(len(n) for n, _ in rows)
    print()
    print(f"{'mixer':<{width}}  {'CPU s':>8} {'wall s':>8}   CPU spread")
    for name, cell in rows:
        print(f"{name:<{width}}  {cell}")
    where = ("inside every call above" if args.with_hashing else
             "once per process, in the untimed warm-up call; a whole automix run adds it")
    print(f"\n(provenance: build_session's sha256 of the {len(stems.stems)} inputs takes {hash_s:.3f} CPU s, {where}; "
          "issue 12 aims at dmc <= 1 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
