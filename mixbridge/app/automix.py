"""The main job: ``automix(stems_dir, out_dir)`` and ``render(session, out)``.

Data flow (DESIGN.md §3): load and validate the stems -> a mixer predicts a
session -> (with ``reference``: the session is refined toward the reference's audio
features, :func:`refine_to_reference`, torch imported then) -> the host renders
the mix through the chosen backend -> the master bus brings it to the loudness
target -> ``mix.wav``, ``master.wav``, ``session.json`` and ``report.html`` are
written. Outputs are written to a
staging folder and moved into place only when complete, so an interrupted run
leaves no half-written results. Imports no torch.

This is the application layer (README "Layout and design"): it joins the core (stems,
session), the host (``mixbridge.plugins``: backends, console, master bus, report) and the
mixer registry (``mixbridge.models.mixers``). The command line (:mod:`mixbridge.app.commands`)
is a thin shell over :func:`automix` and :func:`render`.
"""
from __future__ import annotations

import inspect
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mixbridge.audio import StemSet, load_stems, read_audio, write_audio
from mixbridge.errors import AudioInputError, UnknownNameError
from mixbridge.models.mixers import DEFAULT_MIXER, MIXERS, Mixer, get_mixer, mixer_from_checkpoint, mixer_names
from mixbridge.roles import assign_roles, roles_from_manifest
from mixbridge.schema import MASTER_BUS
from mixbridge.session import Session, load, save


@dataclass
class AutomixResult:
    """What :func:`automix` wrote and measured.

    Attributes:
        out_dir: the folder holding ``mix.wav``, ``master.wav``, ``session.json`` (and ``report.html``).
        session: the mixed session, as saved (``base_dir`` is ``out_dir``).
        mix_lufs: integrated loudness of the pre-master mix, LUFS (BS.1770-4).
        master_lufs: integrated loudness of the master, LUFS.
        master_true_peak_dbtp: true peak of the master, dBTP (BS.1770-4 Annex 2).
        seconds: wall-clock time of the whole run, s.
        notices: what was conformed, clamped or decided on the way, one line each.
    """

    out_dir: Path
    session: Session
    mix_lufs: float
    master_lufs: float
    master_true_peak_dbtp: float
    seconds: float
    notices: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """The few lines the ``automix`` command prints: outputs, mixer, loudness, notices."""
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
    """Render a session's console and master bus through the render backend named ``backend``.

    The master applies the session's stored ``master.solved_gain_db`` (the one master
    gain, the same for every backend and the live bus); it is solved when the session
    has none or ``resolve_gain`` is set, and then stored in ``session.master``.

    ``clamp``: values the backend cannot render are moved into its range and listed in the
    notices, instead of stopping the render with an error naming the track, parameter, value
    and range. ``progress`` shows a bar per track; ``on_track(name)`` is called after each track;
    ``measure`` keeps per-track measurements for the report.

    Returns:
        ``(console_render, master_result, backend_instance)``: the
        :class:`~mixbridge.plugins.console.ConsoleRender` (``mix`` is float32 ``[2, samples]``),
        the :class:`~mixbridge.plugins.mastering.MasterResult` and the backend that rendered them.

    Raises:
        UnknownNameError: unknown backend. BackendUnavailableError: its library or plugins are missing.
        ParamRangeError: a value the backend cannot render (unless ``clamp``).
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


#: Default steps of the reference refinement (``automix --refine-steps``; mirrors
#: ``mixbridge.models.style_transfer.DEFAULT_REFINE_STEPS``, which imports torch).
DEFAULT_REFINE_STEPS = 25


def refine_to_reference(session: Session, stems: StemSet, reference: str | Path, steps: int = DEFAULT_REFINE_STEPS,
                        progress: bool = False) -> tuple[Session, list[str]]:
    """Mixing style transfer: ``session`` refined so that its master's audio features match ``reference``'s.

    :func:`mixbridge.models.style_transfer.match_reference` (torch, imported here): the track gains, pans and
    EQ band gains and the master EQ and bus compressor are optimised through the torch console for ``steps``
    Adam steps (0: the mixer's session unchanged, the distance only measured). A reference at another sample
    rate is resampled and a mono one skips the stereo features, each with a notice. The reference's path and
    sha256 and the feature distance before and after go into ``provenance["reference"]``.

    Returns:
        ``(refined session, notices)``.

    Raises:
        AudioInputError: a missing, unreadable or more-than-stereo reference.
        StyleTransferError: a silent or too short reference, ``steps < 0``.
    """
    from mixbridge.checksum import sha256_file
    from mixbridge.models.style_transfer import match_reference

    reference = Path(reference)
    audio, rate = read_audio(reference)
    if audio.shape[0] > 2:
        raise AudioInputError(f"{reference}: {audio.shape[0]} channels; give a mono or stereo reference")
    refined = match_reference(stems, audio, stems.sample_rate, session, steps, reference_rate=rate,
                              progress=progress)
    st = refined.provenance["style_transfer"]
    refined.provenance["reference"] = {
        "path": str(reference.resolve()), "sha256": sha256_file(reference), "refine_steps": int(steps),
        "feature_distance_before": st["feature_distance_before"],
        "feature_distance_after": st["feature_distance_after"],
    }
    notices = [f"reference {reference.name}: " + n for n in st["notices"]]
    notices.append(f"reference {reference.name}: feature distance {st['feature_distance_before']:.4f} -> "
                   f"{st['feature_distance_after']:.4f} after {steps} refinement steps")
    return refined, notices


def _takes_checkpoint(name: str) -> bool:
    """Whether mixer ``name``'s factory accepts a ``checkpoint`` keyword."""
    params = inspect.signature(MIXERS.get(name)).parameters.values()
    return any(p.name == "checkpoint" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def build_mixer(name: str, checkpoint: str | Path | None = None) -> Mixer:
    """Mixer ``name`` from the registry, from ``checkpoint`` when one is given (a trained mixer).

    Raises:
        UnknownNameError: an unknown mixer, or a ``checkpoint`` for a mixer that takes none (the
            message names the mixers that do).
    """
    if checkpoint is None:
        return get_mixer(name)
    if not _takes_checkpoint(name):
        takers = [n for n in mixer_names() if _takes_checkpoint(n)]
        raise UnknownNameError(f"mixer '{name}' takes no checkpoint; mixers that do: {', '.join(takers) or 'none'}"
                               + (f" (--mixer {takers[0]})" if takers else ""))
    return mixer_from_checkpoint(checkpoint, name)


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
    checkpoint: str | Path | None = None,
    reference: str | Path | None = None,
    refine_steps: int = DEFAULT_REFINE_STEPS,
) -> AutomixResult:
    """Mix and master a folder of stems.

    Args:
        stems_dir: folder of mono/stereo audio files, one per track.
        out_dir: where ``mix.wav``, ``master.wav``, ``session.json`` and
            ``report.html`` go (created; existing files are replaced atomically).
        mixer: a registered mixer name (``mixbridge.models.mixers.mixer_names()``).
        backend: a registered render backend (``mixbridge.plugins.backend.backend_names()``: builtin, vst).
        target_lufs: integrated loudness target; default the schema's -14 LUFS.
        seed: seed of the random mixers.
        progress: show a progress bar per track.
        report: also write ``report.html`` (and measure every track for it).
        clamp: move values the backend cannot render into its range (listed in the notices)
            instead of stopping with an error.
        checkpoint: a trained mixer's checkpoint (``learned``: a ``mixer-mlp`` checkpoint), see
            :func:`build_mixer`.
        reference: a reference mix whose audio features the mix should match: the mixer's session is
            refined by :func:`refine_to_reference` (needs torch).
        refine_steps: the refinement's Adam steps (0: the mixer's session, the distance only measured).

    Returns:
        An :class:`AutomixResult`.

    Raises:
        AudioInputError: bad stems. UnknownNameError: unknown mixer/backend, or a checkpoint for a
        mixer that takes none. CheckpointError: (on the mixer's call) a bad checkpoint.
        ParamRangeError: ``target_lufs`` outside the schema range. StyleTransferError: an unusable reference.
    """
    t0 = time.perf_counter()
    stems_dir, out_dir = Path(stems_dir), Path(out_dir)
    mx = build_mixer(mixer, checkpoint)  # fail fast on an unknown mixer
    from mixbridge.plugins.backend import get_backend

    get_backend(backend, 44100)  # fail fast on an unknown or unavailable backend
    if reference is not None and not Path(reference).is_file():
        raise AudioInputError(f"{reference}: no such file; give the reference mix (--reference REF.wav)")
    if refine_steps < 0:
        raise AudioInputError(f"refine_steps = {refine_steps}; give 0 or more (--refine-steps N)")
    tp = MASTER_BUS.param("loudness.target_lufs")
    target = tp.default if target_lufs is None else tp.validate(target_lufs, "--target-lufs")
    stems = load_stems(stems_dir, roles=roles_from_manifest(stems_dir))
    stems.notices.extend(assign_roles(stems.stems))
    out_dir.mkdir(parents=True, exist_ok=True)
    session = mx(stems, seed=seed, target_lufs=target, source_base=out_dir)
    ref_notices: list[str] = []
    if reference is not None:
        session, ref_notices = refine_to_reference(session, stems, reference, refine_steps, progress=progress)
    session.provenance["backend"] = backend
    console, mres, _ = render_session(session, backend, progress=progress, measure=report, clamp=clamp)
    notices = list(stems.notices) + list(console.notices) + list(mres.notices)
    notices += session.provenance.get("mixer_notes", []) + ref_notices
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

    Args:
        session_path: a session file (``session.json``); its sources resolve against its folder.
        out_path: the mastered WAV to write.
        backend: a registered render backend (builtin, vst).
        progress: show a progress bar per track.
        mix_out: also write the pre-master mix here.
        resolve_gain: solve the master gain again instead of applying the stored one.
        clamp: move values the backend cannot render into its range (listed in the notices).

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


__all__ = ["automix", "render", "render_session", "build_mixer", "refine_to_reference", "AutomixResult"]
