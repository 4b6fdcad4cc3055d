"""``mixbridge reverse``: fit a session to a mix of known stems, render it, report the fit (issue 12, item 3).

:func:`reverse` loads the stems (:func:`mixbridge.audio.load_stems`) and the mix
(:func:`mixbridge.audio.read_audio`, resampled to the stems' rate with a notice), starts from
``dmc-full``'s reading of the mix (the mix as its reference) when its weights are there, else mixer ``dmc``,
else a neutral console (:func:`mixbridge.models.reverse.default_init`), fits the channel strips by gradient descent
through the torch console (:func:`mixbridge.models.reverse.fit_session`; the master bus is
bypassed: the fit compares pre-master mixes), renders the fitted session through the chosen
real backend with the app's one renderer (:func:`mixbridge.app.automix.render_session`) and
writes ``session.json`` (pushable with ``mixbridge push``), ``mix.wav`` (the fitted pre-master
mix) and ``fit_report.json``. A mix that is not made of the stems is reported as a poor fit
(residual above :data:`mixbridge.models.reverse.POOR_FIT_DB`), and the command exits 1.
This module imports no torch at import time.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mixbridge.audio import load_stems, read_audio, resample, write_audio
from mixbridge.checksum import sha256_file
from mixbridge.cli_options import EXIT_FAILED, EXIT_OK, add_backend, add_output, add_quiet
from mixbridge.errors import AudioInputError
from mixbridge.roles import assign_roles, roles_from_manifest

#: The CLI's default Adam steps and Levenberg-Marquardt iterations (mirrors mixbridge.models.reverse,
#: which imports torch).
DEFAULT_STEPS, DEFAULT_POLISH_STEPS = 60, 20


@dataclass
class ReverseResult:
    """What :func:`reverse` wrote and measured.

    Attributes:
        out_dir: holds ``session.json``, ``mix.wav`` and ``fit_report.json``.
        fit: the :class:`mixbridge.models.reverse.FitResult`.
        rendered_residual_db: residual of the backend's render of the fitted session against the mix, over
            the whole length, dB (10 log10 of residual energy over mix energy).
        report: the ``fit_report.json`` content.
        seconds: wall-clock time of the run, s.
        notices: loader, resampling, fit and render notices, one line each.
    """

    out_dir: Path
    fit: object
    rendered_residual_db: float
    report: dict
    seconds: float
    notices: list[str] = field(default_factory=list)

    @property
    def poor_fit(self) -> bool:
        """Whether the fit or its render is above the poor-fit threshold."""
        return bool(self.report["poor_fit"])

    def summary(self) -> str:
        """The short table the command prints: residuals, then per-track gain and pan."""
        r = self.report
        lines = [f"wrote {self.out_dir}/: session.json, mix.wav, fit_report.json ({self.seconds:.1f} s)",
                 f"  init {r['init']}, {r['steps']} Adam steps, backend {r['backend']}; residual "
                 f"{r['residual_db']:.1f} dB (torch fit), {r['rendered_residual_db']:.1f} dB (rendered)"
                 + ("  POOR FIT" if r["poor_fit"] else ""),
                 f"  {'track':<20}{'gain dB':>9}{'pan':>8}{'share dB':>10}"]
        for t in r["tracks"]:
            lines.append(f"  {t['name'][:19]:<20}{t['gain_db']:>+9.2f}{t['pan']:>+8.2f}{t['share_db']:>10.1f}")
        lines += [f"  notice: {n}" for n in self.notices]
        return "\n".join(lines)


def _residual_db(estimate: np.ndarray, target: np.ndarray) -> float:
    n = min(estimate.shape[-1], target.shape[-1])
    err = np.sum((estimate[:, :n].astype(np.float64) - target[:, :n]) ** 2)
    return float(10 * np.log10(max(err, 1e-30) / max(np.sum(target[:, :n].astype(np.float64) ** 2), 1e-30)))


def reverse(stems_dir: str | Path, mix_path: str | Path, out_dir: str | Path, *, backend: str = "builtin",
            steps: int = DEFAULT_STEPS, polish_steps: int = DEFAULT_POLISH_STEPS, init: str = "auto",
            progress: bool = True, clamp: bool = False) -> ReverseResult:
    """Fit the console to ``mix_path`` from the stems in ``stems_dir``, render it, write the results.

    Args:
        stems_dir: the folder of stems (as for ``automix``).
        mix_path: the mix to reverse engineer (stereo or mono audio file; resampled to the stems' rate).
        out_dir: where ``session.json``, ``mix.wav`` and ``fit_report.json`` go (created; replaced atomically).
        backend: the render backend of the fitted session (builtin, vst).
        steps: Adam steps; polish_steps: Levenberg-Marquardt iterations after them.
        init: ``"auto"`` (dmc-full, else dmc, else neutral) or ``"neutral"``.
        progress: progress bars. clamp: see :func:`mixbridge.app.automix.render_session`.

    Returns:
        A :class:`ReverseResult` (``poor_fit`` when the mix is not explained by the stems).

    Raises:
        AudioInputError: bad stems or mix. ReverseFitError: inputs that cannot be fitted.
        UnknownNameError, BackendUnavailableError: the backend.
    """
    from mixbridge.models.reverse import POOR_FIT_DB, default_init, fit_session
    from mixbridge.plugins.backend import get_backend

    from .automix import render_session

    t0 = time.perf_counter()
    stems_dir, mix_path, out_dir = Path(stems_dir), Path(mix_path), Path(out_dir)
    get_backend(backend, 44100)  # fail fast on an unknown or unavailable backend
    if init not in ("auto", "neutral"):
        raise AudioInputError(f"init = {init!r}; use 'auto' or 'neutral'")
    if not mix_path.is_file():
        raise AudioInputError(f"{mix_path}: no such file; give the mix to reverse engineer (a WAV file)")
    stems = load_stems(stems_dir, roles=roles_from_manifest(stems_dir))
    stems.notices.extend(assign_roles(stems.stems))
    notices = list(stems.notices)
    mix, rate = read_audio(mix_path)
    if mix.shape[0] > 2:
        raise AudioInputError(f"{mix_path}: {mix.shape[0]} channels; give a stereo (or mono) mix")
    if rate != stems.sample_rate:
        notices.append(f"{mix_path.name}: resampled from {rate} Hz to {stems.sample_rate} Hz (the stems' rate)")
        mix = resample(mix, rate, stems.sample_rate)
    start, init_name = None, "neutral"
    if init == "auto":
        start, init_name, init_notes = default_init(stems, mix)
        notices += init_notes
    out_dir.mkdir(parents=True, exist_ok=True)
    fit = fit_session(stems, mix, stems.sample_rate, init=start, init_name=init_name, steps=steps,
                      polish_steps=polish_steps, progress=progress, source_base=out_dir)
    notices += fit.notices
    session = fit.session
    session.provenance["backend"] = backend
    session.provenance["reverse"]["mix"] = {"path": str(mix_path.resolve()), "sha256": sha256_file(mix_path)}
    console, mres, _ = render_session(session, backend, progress=progress, clamp=clamp)
    mix2 = np.repeat(mix, 2, axis=0) if mix.shape[0] == 1 else mix
    rendered = _residual_db(console.mix, mix2)
    notices += list(console.notices)
    report = dict(fit.to_json(), rendered_residual_db=round(rendered, 3), backend=backend,
                  mix={"path": str(mix_path.resolve()), "sha256": sha256_file(mix_path)},
                  stems_dir=str(stems_dir.resolve()), notices=notices)
    report["poor_fit"] = bool(fit.poor_fit or rendered > POOR_FIT_DB)
    session.provenance["reverse"]["rendered_residual_db"] = round(rendered, 3)
    session.provenance["master"] = {"lufs": round(mres.lufs, 3), "true_peak_dbtp": round(mres.true_peak_dbtp, 3),
                                    "backend": backend}
    staging = Path(tempfile.mkdtemp(prefix=".reverse-", dir=out_dir))
    try:
        from mixbridge.session import save

        write_audio(staging / "mix.wav", console.mix, session.sample_rate)
        save(session, staging / "session.json")
        report["seconds"] = round(time.perf_counter() - t0, 2)
        (staging / "fit_report.json").write_text(json.dumps(report, indent=2) + "\n")
        for f in staging.iterdir():
            f.replace(out_dir / f.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    session.base_dir = out_dir.resolve()
    return ReverseResult(out_dir, fit, rendered, report, time.perf_counter() - t0, notices)


def _reverse(args: argparse.Namespace) -> int:
    """``mixbridge reverse``: :func:`reverse`; exit 1 (outputs written) on a poor fit."""
    res = reverse(args.stems_dir, args.mix, args.output, backend=args.backend, steps=args.steps,
                  polish_steps=args.polish_steps, init=args.init, progress=not args.quiet, clamp=args.clamp)
    if not args.quiet:
        print(res.summary())
    if res.poor_fit:
        print(f"mixbridge reverse: poor fit (residual {res.report['residual_db']:.1f} dB, rendered "
              f"{res.rendered_residual_db:.1f} dB): {args.mix} is probably not a mix of these stems; "
              f"see {res.out_dir / 'fit_report.json'}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def register(sub) -> None:
    """Add ``reverse`` to the top CLI's subparsers ``sub``."""
    from mixbridge.plugins.backend import backend_names

    p = sub.add_parser("reverse", help="fit a session (gains, pans, EQ) to a mix of known stems", description=(
        "Reverse engineer MIX.wav from the stems in STEMS_DIR: fit the console's track gains, pans and EQ band "
        "gains by gradient descent through the torch console (master bus bypassed), render the fitted session "
        "through the backend and write session.json, mix.wav and fit_report.json to OUT_DIR. Exits 1 when the "
        "mix is not explained by the stems (poor fit)."))
    p.add_argument("stems_dir", metavar="STEMS_DIR")
    p.add_argument("mix", metavar="MIX.wav")
    add_output(p, metavar="OUT_DIR", old=(), help="folder for session.json, mix.wav and fit_report.json")
    add_backend(p, choices=backend_names(), default="builtin", help="render backend of the fitted session")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, metavar="N",
                   help=f"Adam steps (default: {DEFAULT_STEPS})")
    p.add_argument("--polish-steps", type=int, default=DEFAULT_POLISH_STEPS, metavar="N",
                   help=f"Levenberg-Marquardt iterations after Adam (default: {DEFAULT_POLISH_STEPS})")
    p.add_argument("--init", choices=("auto", "neutral"), default="auto",
                   help="start from the mixer dmc-full, else dmc, else neutral (auto), or neutral")
    p.add_argument("--clamp", action="store_true", help="move values the backend cannot render into its range")
    add_quiet(p, help="no progress bar and no table")
    p.set_defaults(func=_reverse)
