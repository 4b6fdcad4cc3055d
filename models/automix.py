"""The main job: ``automix(stems_dir, out_dir)`` and ``render(session, out)``.

Data flow (DESIGN.md §3): load and validate the stems -> a mixer predicts a
session -> the host renders the mix through the chosen backend -> the master
bus brings it to the loudness target -> ``mix.wav``, ``master.wav``,
``session.json`` and ``report.html`` are written. Outputs are written to a
staging folder and moved into place only when complete, so an interrupted run
leaves no half-written results. Imports no torch.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mixbridge.audio import load_stems, write_audio
from mixbridge.errors import ParamRangeError
from mixbridge.loudness import integrated_lufs, true_peak_dbtp
from mixbridge.schema import MASTER_BUS
from mixbridge.session import Session, load, save

from .mixers import DEFAULT_MIXER, get_mixer, roles_from_manifest


@dataclass
class AutomixResult:
    out_dir: Path
    session: Session
    mix_lufs: float
    master_lufs: float
    master_true_peak_dbtp: float
    seconds: float
    notices: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [
            f"wrote {self.out_dir}/: mix.wav, master.wav, session.json, report.html ({self.seconds:.1f} s)",
            f"  mixer {self.session.provenance.get('mixer')}, backend {self.session.provenance.get('backend')}, "
            f"{len(self.session.tracks)} tracks at {self.session.sample_rate} Hz",
            f"  mix {self.mix_lufs:.2f} LUFS -> master {self.master_lufs:.2f} LUFS, "
            f"true peak {self.master_true_peak_dbtp:.2f} dBTP",
        ]
        lines += [f"  notice: {n}" for n in self.notices]
        return "\n".join(lines)


def _progress(enabled: bool, total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="track", disable=not enabled, leave=False)


def render_session(session: Session, backend: str = "builtin", progress: bool = False,
                   on_track: Callable[[str], None] | None = None, measure: bool = False,
                   resolve_gain: bool = False, clamp: bool = False):
    """Render a session's console and master bus.

    The master applies the session's stored ``master.solved_gain_db`` (the one master
    gain, the same for every backend and the live bus); it is solved when the session
    has none or ``resolve_gain`` is set, and then stored in ``session.master``.

    ``clamp``: values the backend cannot render are moved into its range and listed in the
    notices, instead of stopping the render with an error naming the track, parameter, value
    and range.

    Returns:
        ``(console_render, master_result, backend_instance)``.
    """
    from mixbridge.plugins.backend import get_backend
    from mixbridge.plugins.console import render_console
    from mixbridge.plugins.mastering import master

    be = get_backend(backend, session.sample_rate, clamp=clamp)
    bar = _progress(progress, len(session.tracks) + 1, f"render ({backend})")

    def tick(name: str) -> None:
        bar.set_postfix_str(name)
        bar.update(1)
        if on_track:
            on_track(name)

    console = render_console(session, be, progress=tick, measure=measure)
    bar.set_postfix_str("master bus")
    stored = None if resolve_gain else session.master.solved_gain_db
    mres = master(console.mix, session.master.params, session.sample_rate, gain_db=stored,
                  automation=session.master.automation)
    if mres.solved:
        session.master.solved_gain_db = float(mres.gain_db)
    bar.update(1)
    bar.close()
    return console, mres, be


def automix(
    stems_dir: str | Path,
    out_dir: str | Path,
    mixer: str = DEFAULT_MIXER,
    backend: str = "builtin",
    target_lufs: float | None = None,
    seed: int = 0,
    progress: bool = True,
    report: bool = True,
    clamp: bool = False,
) -> AutomixResult:
    """Mix and master a folder of stems.

    Args:
        stems_dir: folder of mono/stereo audio files, one per track.
        out_dir: where ``mix.wav``, ``master.wav``, ``session.json`` and
            ``report.html`` go (created; existing files are replaced atomically).
        mixer: a registered mixer name (``mixbridge.models.mixers.mixer_names()``).
        backend: ``builtin`` or ``vst``.
        target_lufs: integrated loudness target; default the schema's -14 LUFS.
        clamp: move values the backend cannot render into its range (listed in the notices)
            instead of stopping with an error.

    Raises:
        AudioInputError: bad stems. UnknownNameError: unknown mixer/backend.
        ParamRangeError: ``target_lufs`` outside the schema range.
    """
    t0 = time.perf_counter()
    stems_dir, out_dir = Path(stems_dir), Path(out_dir)
    mx = get_mixer(mixer)  # fail fast on an unknown mixer
    from mixbridge.plugins.backend import get_backend

    get_backend(backend, 44100)  # fail fast on an unknown or unavailable backend
    tp = MASTER_BUS.param("loudness.target_lufs")
    target = tp.default if target_lufs is None else tp.validate(target_lufs, "--target-lufs")
    stems = load_stems(stems_dir, roles=roles_from_manifest(stems_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    session = mx(stems, seed=seed, target_lufs=target, source_base=out_dir)
    session.provenance["backend"] = backend
    console, mres, be = render_session(session, backend, progress=progress, measure=report, clamp=clamp)
    notices = list(stems.notices) + list(console.notices) + list(mres.notices)
    notices += session.provenance.get("mixer_notes", [])
    session.provenance["master"] = {
        "lufs": round(mres.lufs, 3),
        "true_peak_dbtp": round(mres.true_peak_dbtp, 3),
        "backend": backend,
    }
    session.provenance["render_notices"] = list(console.notices) + list(mres.notices)
    staging = Path(tempfile.mkdtemp(prefix=".automix-", dir=out_dir))
    try:
        write_audio(staging / "mix.wav", console.mix, session.sample_rate)
        write_audio(staging / "master.wav", mres.audio, session.sample_rate)
        save(session, staging / "session.json")
        if report:
            from mixbridge.plugins.report import write_report

            write_report(staging / "report.html", session, console, mres)
        for f in staging.iterdir():
            f.replace(out_dir / f.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    session.base_dir = out_dir.resolve()
    return AutomixResult(out_dir, session, mres.pre_lufs, mres.lufs, mres.true_peak_dbtp,
                         time.perf_counter() - t0, notices)


def render(session_path: str | Path, out_path: str | Path, backend: str = "builtin",
           progress: bool = True, mix_out: str | Path | None = None, resolve_gain: bool = False,
           clamp: bool = False):
    """Re-render a (possibly edited) session file to a mastered WAV.

    The master applies the session's stored ``master.solved_gain_db``; ``resolve_gain``
    (or a session without one) solves it again for this render (the file is not changed).

    Returns:
        The :class:`~mixbridge.plugins.mastering.MasterResult`.

    Raises:
        SessionError and friends: an invalid session. AudioInputError: missing sources.
    """
    session = load(session_path)
    console, mres, _ = render_session(session, backend, progress=progress, resolve_gain=resolve_gain, clamp=clamp)
    write_audio(out_path, mres.audio, session.sample_rate)
    if mix_out:
        write_audio(mix_out, console.mix, session.sample_rate)
    mres.notices = list(console.notices) + list(mres.notices)
    return mres


__all__ = ["automix", "render", "render_session", "AutomixResult", "integrated_lufs", "true_peak_dbtp",
           "ParamRangeError"]
