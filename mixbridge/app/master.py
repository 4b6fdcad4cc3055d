"""``mixbridge master IN.wav -o OUT_DIR``: master a finished stereo mix (issue 13), and its library call.

:func:`master_file` is the library function (the handler only parses and prints, STYLE.md point 12):

1. read the mix with the project's reader (:func:`mixbridge.audio.read_audio`); a mono file is made stereo
   (both channels the same) with a notice; silence or near-silence is refused (:class:`MasterInputError`);
2. read the references the same way, resampled to the mix's rate with a notice
   (:func:`mixbridge.audio.resample`);
3. a mastering model of :mod:`mixbridge.models.masterers` (``--model``, default
   :data:`~mixbridge.models.masterers.DEFAULT_MASTERER`) plans the master bus; ``--intensity`` moves the plan
   toward the neutral chain (:func:`mixbridge.plugins.master_rules.apply_intensity`);
4. the plan is rendered through the one master bus and the one gain solver
   (:func:`mixbridge.plugins.mastering.master`): EQ -> compressor -> solved gain -> true-peak limiter.
   The master bus is one numpy implementation for every backend, so the command has no ``--backend``:
   ``mixbridge render OUT_DIR/session.json --backend vst`` re-renders the session (its one track is the
   mix at a neutral strip) through the VST strip and the same master bus;
5. outputs, staged beside ``OUT_DIR`` and put in place in one rename (automix's
   :func:`~mixbridge.app.automix.staging_folder`): ``mix.wav`` (the stereo mix that was mastered),
   ``master.wav``, ``session.json`` (one track ``mix`` -> ``mix.wav`` at a neutral strip, and the master
   block: the plan's parameters in real units and ``solved_gain_db``, so ``mixbridge render`` gives the
   same master and ``mixbridge push`` carries the solved gain to a DAW's master fader and lists the rest)
   and ``report.html`` (:mod:`mixbridge.plugins.master_report`).

Exit status 2 (a :class:`~mixbridge.errors.MixbridgeError`) for every bad input.
"""
from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mixbridge.cli_options import add_output, add_quiet
from mixbridge.models.masterers import DEFAULT_MASTERER, masterer_names

__all__ = ["MasterJobResult", "master_file", "register"]


@dataclass
class MasterJobResult:
    """What :func:`master_file` wrote and measured (loudness in LUFS, peaks in dBTP, gains in dB)."""

    out_dir: Path
    model: str
    params: dict[str, dict[str, float]]
    gain_db: float
    pre_lufs: float
    pre_true_peak_dbtp: float
    lufs: float
    true_peak_dbtp: float
    target_lufs: float
    ceiling_dbtp: float
    limiter_gr_db: float
    seconds: float
    notices: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    report: bool = True

    def summary(self) -> str:
        """The lines the command prints: outputs, model, loudness and peak, the chain, notices."""
        eq = self.params["eq"]
        c = self.params["compressor"]
        gains = ", ".join(f"{eq[k]:+.1f}" for k in ("low_shelf_gain_db", "peak1_gain_db", "peak2_gain_db",
                                                      "peak3_gain_db", "high_shelf_gain_db"))
        lines = [
            f"wrote {self.out_dir}/: mix.wav, master.wav, session.json{', report.html' if self.report else ''} "
            f"({self.seconds:.1f} s)",
            f"  model {self.model}: mix {self.pre_lufs:.2f} LUFS, {self.pre_true_peak_dbtp:.2f} dBTP -> master "
            f"{self.lufs:.2f} LUFS (target {self.target_lufs:g}), true peak {self.true_peak_dbtp:.2f} dBTP "
            f"(ceiling {self.ceiling_dbtp:g})",
            f"  EQ gains [{gains}] dB; compressor {c['threshold_db']:.1f} dB, {c['ratio']:.2f}:1; gain "
            f"{self.gain_db:+.2f} dB; limiter at most {self.limiter_gr_db:.1f} dB",
        ]
        lines += [f"  notice: {n}" for n in self.notices]
        return "\n".join(lines)


def _jsonable(value: Any) -> Any:
    """``value`` with numpy arrays and scalars made plain lists and numbers (a plan's ``info`` goes into
    the session's provenance, which is JSON)."""
    import json

    import numpy as np

    def default(o: Any) -> Any:
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, np.generic):
            return o.item()
        return str(o)

    return json.loads(json.dumps(value, default=default))


def _read(path: Path, what: str, notices: list[str]):
    """A stereo float32 ``[2, samples]`` read of ``path`` and its rate (mono duplicated, with a notice)."""
    import numpy as np

    from mixbridge.audio import read_audio

    if not path.is_file():
        from mixbridge.errors import AudioInputError

        raise AudioInputError(f"{path}: no such file; give the {what} (a WAV/FLAC/... file)")
    audio, sr = read_audio(path)
    if audio.shape[0] == 1:
        notices.append(f"{path.name}: mono; mastered as stereo (both channels the same)")
        audio = np.concatenate([audio, audio])
    return np.ascontiguousarray(audio, dtype=np.float32), sr


def master_file(input_path: str | Path, out_dir: str | Path, *, model: str = DEFAULT_MASTERER,
                target_lufs: float | None = None, ceiling_dbtp: float | None = None,
                references: Sequence[str | Path] = (), intensity: float = 1.0, max_limiter_db: float | None = None,
                eq_strength: float | None = None, report: bool = True,
                model_config: dict[str, Any] | None = None) -> MasterJobResult:
    """Master one finished mix into ``out_dir`` (see the module docstring).

    Args:
        input_path: the mix (mono or stereo audio file).
        out_dir: the output folder: new, empty or a previous run's (automix's rules: replaced as a whole).
        model: a registered mastering model (:func:`mixbridge.models.masterers.masterer_names`).
        target_lufs: integrated loudness target (default the schema's -14 LUFS).
        ceiling_dbtp: true-peak ceiling (default the schema's -1 dBTP).
        references: masters whose tone and dynamics to aim at (resampled to the mix's rate, with a notice).
        intensity: 0..1; 0 is the neutral chain (only gain and limiter), 1 the model's plan.
        max_limiter_db: the cap on the limiter's gain reduction, dB (default 6; every model:
            :func:`mixbridge.plugins.master_rules.cap_limiter` lowers the target to keep it).
        eq_strength: the ``rules`` model's EQ toward the training mean without references, 0..1 (default 0).
        report: also write ``report.html``.
        model_config: more keyword arguments for the model's factory.

    Returns:
        A :class:`MasterJobResult`.

    Raises:
        AudioInputError (MasterInputError): a missing, unreadable, silent or near-silent mix or reference.
        ParamRangeError: a target, ceiling or intensity out of range. UnknownNameError: an unknown model.
        OutputFolderError: an ``out_dir`` that cannot be replaced in one step, or one holding the input.
    """

    from mixbridge.audio import resample, write_audio
    from mixbridge.checksum import sha256_file
    from mixbridge.loudness import integrated_lufs, true_peak_dbtp
    from mixbridge.models.masterers import get_masterer
    from mixbridge.plugins.master_bus import LIMITER_MARGIN_DB
    from mixbridge.plugins.master_rules import (
        MAX_LIMITER_GR_DB,
        NEAR_SILENT_LUFS,
        MasterInputError,
        apply_intensity,
        cap_limiter,
        probe_render,
    )
    from mixbridge.plugins.mastering import master
    from mixbridge.schema import CHANNEL_STRIP, LIMITER, LOUDNESS, MASTER_BUS
    from mixbridge.session import Master, Session, Track, save

    from .automix import OutputFolderError, check_output_folder, remove_stale_staging, staging_folder

    t0 = time.perf_counter()
    input_path, out_dir = Path(input_path), Path(out_dir)
    target = LOUDNESS.param("target_lufs")
    target_lufs = target.default if target_lufs is None else target.validate(target_lufs, "--target-lufs")
    ceiling = LIMITER.param("ceiling_dbtp")
    ceiling_dbtp = ceiling.default if ceiling_dbtp is None else ceiling.validate(ceiling_dbtp, "--ceiling-dbtp")
    apply_intensity(MASTER_BUS.defaults(), intensity)  # validates --intensity before any work
    config = dict(model_config or {})
    if max_limiter_db is not None and model == "rules":
        config["max_limiter_db"] = max_limiter_db
    for key, value in (("eq_strength", eq_strength),):
        if value is None:
            continue
        if model != "rules":
            from mixbridge.errors import ParamRangeError

            flag = "--" + key.replace("_", "-")
            raise ParamRangeError(f"{flag} {value:g}: only the rules model takes it (--model {model} sets its own "
                                  "chain); drop it or use --model rules")
        config[key] = value
    masterer = get_masterer(model, **config)
    check_output_folder(out_dir)
    real_out = Path(os.path.realpath(out_dir))
    for p in (input_path, *map(Path, references)):
        rp = Path(os.path.realpath(p))
        if rp == real_out or real_out in rp.parents:
            raise OutputFolderError(f"{p}: is inside the output folder {out_dir}, which is replaced as a whole; "
                                    "give another -o OUT_DIR")

    notices: list[str] = []
    mix, sr = _read(input_path, "mix to master", notices)
    pre_lufs = integrated_lufs(mix, sr)
    if pre_lufs <= NEAR_SILENT_LUFS:
        raise MasterInputError(
            f"{input_path}: silent or near-silent ({pre_lufs:.1f} LUFS, {mix.shape[1] / sr:.2f} s; mastering needs "
            f"more than {NEAR_SILENT_LUFS:g} LUFS over at least 0.4 s): nothing to master; give the mix itself")
    refs = []
    for r in map(Path, references):
        ref, rsr = _read(r, "reference master", notices)
        if rsr != sr:
            notices.append(f"{r.name}: {rsr} Hz, resampled to the mix's {sr} Hz")
            ref = resample(ref, rsr, sr)
        refs.append(ref)

    plan = masterer(mix, sr, target_lufs=target_lufs, ceiling_dbtp=ceiling_dbtp, references=tuple(refs))
    notices += plan.notices
    params = apply_intensity(plan.params, intensity)
    if intensity < 1.0:
        notices.append(f"intensity {intensity:g}: the {model} plan moved toward the neutral chain (EQ gains, ratio, "
                       "threshold and makeup scaled; 0 = only gain and limiter)")
    if "max_limiter_db" not in plan.info:  # a model that does not cap its limiter itself: the one cap
        cap_db = MAX_LIMITER_GR_DB if max_limiter_db is None else float(max_limiter_db)
        params, cap_notices, _ = cap_limiter(mix, sr, params, max_limiter_db=cap_db, who=model, input_lufs=pre_lufs)
        notices += cap_notices
        plan.info["max_limiter_db"] = cap_db
    mres = master(mix, params, sr)
    notices += mres.notices
    # the limiter's largest reduction: the pre-limiter true peak (EQ + compressor at the solved gain) over the ceiling
    comp_stage = probe_render(mix, sr, params, "compressor")
    pre_limiter_tp = true_peak_dbtp(comp_stage, sr) + mres.gain_db
    limiter_gr = max(0.0, pre_limiter_tp - (float(params["limiter"]["ceiling_dbtp"]) - LIMITER_MARGIN_DB))
    cap = plan.info.get("max_limiter_db")
    if cap is not None and limiter_gr > float(cap) + 0.5:
        notices.append(f"the limiter reduced peaks by up to {limiter_gr:.1f} dB, more than the {float(cap):g} dB cap "
                       "the plan aimed at")

    master_params = MASTER_BUS.defaults()
    for proc in ("eq", "compressor", "limiter", "loudness"):
        master_params[proc] = {k: float(v) for k, v in params[proc].items()}
    prov: dict[str, Any] = {
        "command": "master", "masterer": model, "backend": "builtin",
        "input": {"path": str(input_path), "sha256": sha256_file(input_path)},
        "references": [{"path": str(r), "sha256": sha256_file(r)} for r in map(Path, references)],
        "intensity": float(intensity), "target_lufs_asked": float(target_lufs), "ceiling_dbtp": float(ceiling_dbtp),
        "plan": _jsonable(plan.info), "render_notices": list(mres.notices), "notices": list(notices),
        "master": {"lufs": round(mres.lufs, 3), "true_peak_dbtp": round(mres.true_peak_dbtp, 3),
                   "limiter_gr_db": round(limiter_gr, 3), "backend": "builtin"},
    }
    session = Session(sr, [Track("mix", "mix.wav", CHANNEL_STRIP.defaults(), role="other")],
                      Master(master_params, {}, float(mres.gain_db)), prov)
    cleaned = remove_stale_staging(out_dir)
    with staging_folder(out_dir) as staging:
        write_audio(staging / "mix.wav", mix, sr)
        session.provenance["inputs"] = {"mix.wav": sha256_file(staging / "mix.wav")}
        write_audio(staging / "master.wav", mres.audio, sr)
        save(session, staging / "session.json")
        if report:
            from mixbridge.plugins.master_report import write_master_report

            write_master_report(staging / "report.html", mix=mix, master_audio=mres.audio, sample_rate=sr,
                                params=params, result=mres, comp_stage=comp_stage,
                                eq_stage=probe_render(mix, sr, params, "eq"), info=plan.info, model=model,
                                notices=cleaned + notices, target_lufs=target_lufs)
    return MasterJobResult(out_dir, model, params, float(mres.gain_db), float(mres.pre_lufs),
                           float(mres.pre_true_peak_dbtp), float(mres.lufs), float(mres.true_peak_dbtp),
                           float(target_lufs), float(ceiling_dbtp), float(limiter_gr), time.perf_counter() - t0,
                           cleaned + notices, dict(plan.info), report)


# ----------------------------------------------------------------------------- the command
def register(sub) -> None:
    """Add ``master`` to the top CLI's subparsers ``sub``."""
    p = sub.add_parser(
        "master", help="master a finished stereo mix to a loudness target",
        description=("Master IN (a finished mono or stereo mix): a mastering model sets the one master bus (EQ -> "
                     "bus compressor -> solved gain -> true-peak limiter), which renders it to the loudness target "
                     "under the true-peak ceiling. Writes mix.wav, master.wav, session.json (the master bus in real "
                     "units with its solved gain: `mixbridge render` and `mixbridge push` read it) and report.html "
                     "to OUT_DIR, staged beside it and put in place in one rename (OUT_DIR must be new, empty or a "
                     "previous run's). The master bus is the same numpy chain on every backend, so there is no "
                     "--backend; `mixbridge render OUT_DIR/session.json --backend vst` re-renders the session."))
    p.add_argument("input", metavar="IN", help="the mix to master (WAV, FLAC, ...; mono is mastered as stereo)")
    add_output(p, metavar="OUT_DIR", old=(), help="folder for mix.wav, master.wav, session.json and report.html")
    p.add_argument("--model", choices=masterer_names(), default=DEFAULT_MASTERER,
                   help=f"mastering model (default: {DEFAULT_MASTERER}; rules: measured loudness, spectrum and PLR "
                        "set the chain; learned: a network predicts it)")
    p.add_argument("--target-lufs", type=float, default=None, metavar="LUFS",
                   help="integrated loudness target, -30..-6 (default: -14)")
    p.add_argument("--ceiling-dbtp", type=float, default=None, metavar="DBTP",
                   help="true-peak ceiling, -6..0 (default: -1)")
    p.add_argument("--reference", action="append", default=[], metavar="REF.wav",
                   help="a master whose spectrum and peak-to-loudness ratio to aim at (repeat for several: their "
                        "mean); resampled to IN's rate")
    p.add_argument("--intensity", type=float, default=1.0, metavar="0..1",
                   help="1: the model's chain; 0: neutral (only gain and limiter); between: every EQ gain, ratio, "
                        "threshold and makeup interpolated toward neutral (default: 1)")
    p.add_argument("--max-limiter-db", type=float, default=None, metavar="DB",
                   help="the most gain reduction the limiter may do, for every model (default: 6); a target that needs "
                        "more is lowered to what this allows, with a notice")
    p.add_argument("--eq-strength", type=float, default=None, metavar="0..1",
                   help="rules model without --reference: how far the EQ moves toward the training masters' mean "
                        "spectrum (default: 0, the validation album's best; the whole way is 1)")
    p.add_argument("--no-report", action="store_true", help="skip report.html")
    add_quiet(p, help="no summary")
    p.set_defaults(func=_master, command="master")


def _master(args) -> int:
    res = master_file(args.input, args.output, model=args.model, target_lufs=args.target_lufs,
                      ceiling_dbtp=args.ceiling_dbtp, references=args.reference, intensity=args.intensity,
                      max_limiter_db=args.max_limiter_db, eq_strength=args.eq_strength, report=not args.no_report)
    if not args.quiet:
        print(res.summary())
    return 0
