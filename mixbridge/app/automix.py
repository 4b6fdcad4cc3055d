"""The main job: ``automix(stems_dir, out_dir)`` and ``render(session, out)``.

Data flow (DESIGN.md §3): load and validate the stems -> a mixer predicts a
session -> (with ``reference``: the session is refined toward the reference's audio
features, :func:`refine_to_reference`, torch imported then) -> the host renders
the mix through the chosen backend -> the master bus brings it to the loudness
target -> ``mix.wav``, ``master.wav``, ``session.json`` and ``report.html`` are
written. A **direct** mixer (``dae``, ``mixwaveunet``: :mod:`mixbridge.models.direct_mixers`) writes the
mix audio itself: it becomes ``mix.wav`` without a render, goes through the same master bus to
``master.wav``, and its session (tracks only, ``provenance["direct"]``) is refused by :func:`render`;
no ``report.html`` then. The console and the master bus render block by block straight into ``mix.wav`` and
``master.wav`` (:class:`~mixbridge.audio.WavArray`), so memory does not grow with the length of
the session (README "Long sessions"); the ``vst`` backend renders in a child process, so a plugin
that crashes on audio is one error line naming it and the signal. The outputs are written into
one staging folder beside the output folder (:func:`publish_outputs`), which then becomes the
output folder in one rename, so a reader sees the old set or the new set, never a mix of both; an
interrupted run leaves only its staging folder, which the next run into the same folder removes
with a notice. Imports no torch.

This is the application layer (README "Layout and design"): it joins the core (stems,
session), the host (``mixbridge.plugins``: backends, console, master bus, report) and the
mixer registry (``mixbridge.models.mixers``). The command line (:mod:`mixbridge.app.commands`)
is a thin shell over :func:`automix` and :func:`render`.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import inspect
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mixbridge.atomic import atomic_path
from mixbridge.audio import StemSet, WavArray, check_finite_blocks, load_stems, read_audio, write_audio
from mixbridge.errors import AudioInputError, MixbridgeError, UnknownNameError
from mixbridge.models.direct_mixers import is_direct
from mixbridge.models.mixers import DEFAULT_MIXER, MIXERS, Mixer, get_mixer, mixer_from_checkpoint, mixer_names
from mixbridge.roles import assign_roles, roles_from_manifest
from mixbridge.schema import MASTER_BUS
from mixbridge.session import DirectSessionError, Session, load, refuse_direct, save


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
        report: whether ``report.html`` was written.
    """

    out_dir: Path
    session: Session
    mix_lufs: float
    master_lufs: float
    master_true_peak_dbtp: float
    seconds: float
    notices: list[str] = field(default_factory=list)
    report: bool = True

    def summary(self) -> str:
        """The few lines the ``automix`` command prints: outputs, mixer, loudness, notices."""
        prov = self.session.provenance
        how = ("direct: its audio is mix.wav, no render" if prov.get("direct") else f"backend {prov.get('backend')}")
        lines = [
            f"wrote {self.out_dir}/: mix.wav, master.wav, session.json{', report.html' if self.report else ''} "
            f"({self.seconds:.1f} s)",
            f"  mixer {prov.get('mixer')}, {how}, {len(self.session.tracks)} tracks at {self.session.sample_rate} Hz",
            f"  mix {self.mix_lufs:.2f} LUFS -> master {self.master_lufs:.2f} LUFS, "
            f"true peak {self.master_true_peak_dbtp:.2f} dBTP",
        ]
        lines += [f"  notice: {n}" for n in self.notices]
        return "\n".join(lines)


def _progress(enabled: bool, total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="track", disable=not enabled, leave=False)


#: Render backends that run foreign machine code (plugins): :func:`render_session` renders them in a child
#: process, so a plugin that loads fine but crashes on audio is one error naming it and the signal.
SANDBOXED_BACKENDS = ("vst",)


class RenderCrashError(RuntimeError, MixbridgeError):
    """The render's child process died of a signal while no plugin was rendering (or from outside)."""


def render_session(session: Session, backend: str = "builtin", progress: bool = False,
                   on_track: Callable[[str], None] | None = None, measure: bool = False,
                   resolve_gain: bool = False, clamp: bool = False, mix_out: str | Path | None = None,
                   master_out: str | Path | None = None):
    """Render a session's console and master bus through the render backend named ``backend``.

    The master applies the session's stored ``master.solved_gain_db`` (the one master
    gain, the same for every backend and the live bus); it is solved when the session
    has none or ``resolve_gain`` is set, and then stored in ``session.master``.

    ``clamp``: values the backend cannot render are moved into its range and listed in the
    notices, instead of stopping the render with an error naming the track, parameter, value
    and range. ``progress`` shows a bar per track; ``on_track(name)`` is called after each track;
    ``measure`` keeps per-track measurements for the report.

    ``mix_out`` / ``master_out``: float32 WAV files the mix and the master are rendered into block by
    block (README "Long sessions"); then ``console.mix`` / ``master_result.audio`` are
    :class:`~mixbridge.audio.WavArray` s on those files, which the caller closes
    (:func:`close_renders`). None: arrays in memory.

    Returns:
        ``(console_render, master_result, backend_instance)``: the
        :class:`~mixbridge.plugins.console.ConsoleRender` (``mix`` is float32 ``[2, samples]``),
        the :class:`~mixbridge.plugins.mastering.MasterResult` and the backend that rendered them.

    A backend in :data:`SANDBOXED_BACKENDS` (``vst``) renders in a child process forked from this one
    (:func:`_render_in_child`): the mix and the master come back through their files, the rest through
    a pipe, and the returned backend is a fresh instance holding the child's notices.

    Raises:
        UnknownNameError: unknown backend. BackendUnavailableError: its library or plugins are missing.
        ParamRangeError: a value the backend cannot render (unless ``clamp``).
        DirectSessionError: a direct mixer's session (:func:`mixbridge.session.refuse_direct`: it holds no
            parameters; its ``mix.wav`` is the output).
        PluginLoadError: (sandboxed backends) a plugin killed the render process: names the plugin file,
            the track and processor it was rendering, and the signal. RenderCrashError: the render
            process died of a signal while no plugin was rendering.
    """
    refuse_direct(session, "render")
    if backend in SANDBOXED_BACKENDS:
        return _render_in_child(session, backend, progress, on_track, measure, resolve_gain, clamp, mix_out,
                                master_out)
    return _render_here(session, backend, progress, on_track, measure, resolve_gain, clamp, mix_out, master_out)


def _render_here(session: Session, backend: str, progress: bool, on_track: Callable[[str], None] | None,
                 measure: bool, resolve_gain: bool, clamp: bool, mix_out: str | Path | None,
                 master_out: str | Path | None, on_plugin: Callable | None = None):
    """:func:`render_session` in this process (``on_plugin``: set as the backend's ``on_plugin`` hook)."""
    from mixbridge.plugins.backend import get_backend
    from mixbridge.plugins.console import render_console
    from mixbridge.plugins.mastering import master

    be = get_backend(backend, session.sample_rate, clamp=clamp)
    if on_plugin is not None and hasattr(be, "on_plugin"):
        be.on_plugin = on_plugin
    bar = _progress(progress, len(session.tracks) + 1, f"render ({backend})")

    def tick(name: str) -> None:
        bar.set_postfix_str(name)
        bar.update(1)
        if on_track:
            on_track(name)

    console = render_console(session, be, progress=tick, measure=measure, mix_out=mix_out)
    bar.set_postfix_str("master bus")
    stored = None if resolve_gain else session.master.solved_gain_db
    channels, frames = console.mix.shape
    kw: dict[str, Any] = {}
    if master_out is not None and WavArray.fits(channels, frames, session.sample_rate):
        kw["out"] = WavArray(master_out, channels, frames, session.sample_rate)
    try:
        mres = master(console.mix, session.master.params, session.sample_rate, gain_db=stored,
                      automation=session.master.automation, **kw)
    except BaseException:
        close_renders(console, kw.get("out"))
        raise
    if mres.solved:
        session.master.solved_gain_db = float(mres.gain_db)
    bar.update(1)
    bar.close()
    return console, mres, be


def _detach(audio):
    """A render's audio for the pipe: a :class:`WavArray` as ``("wav", path, shape, sample_rate)`` (closed
    here, reopened by :func:`_attach`), an array as it is."""
    if isinstance(audio, WavArray):
        audio.flush()
        audio.close()
        return ("wav", str(audio.path), audio.shape, audio.sample_rate)
    return audio


def _attach(audio, keep_file: bool):
    """The inverse of :func:`_detach`: the :class:`WavArray` reopened, or (``keep_file`` False: a temporary
    file) read into an array."""
    if not (isinstance(audio, tuple) and audio and audio[0] == "wav"):
        return audio
    _, path, shape, rate = audio
    wa = WavArray(path, shape[0], shape[1], rate, create=False)
    if keep_file:
        return wa
    try:
        return wa[:, :]
    finally:
        wa.close()


def _render_child(conn, session: Session, backend: str, progress: bool, measure: bool, resolve_gain: bool,
                  clamp: bool, mix_file: Path, master_file: Path) -> None:
    """The render child (forked by :func:`_render_in_child`): renders, then sends ``("done", ...)`` or
    ``("error", ...)``; before each plugin call it sends ``("plugin", paths, what)``, after each track
    ``("track", name)``."""
    import faulthandler
    import traceback

    faulthandler.disable()  # a plugin's crash is the parent's one error line, not a stack dump here
    try:
        console, mres, be = _render_here(
            session, backend, progress, lambda name: conn.send(("track", name)), measure, resolve_gain, clamp,
            mix_file, master_file, on_plugin=lambda paths, what: conn.send(("plugin", [str(p) for p in paths], what)))
        console.mix = _detach(console.mix)
        mres.audio = _detach(mres.audio)
        conn.send(("done", console, mres, list(be.notices), session.master.solved_gain_db))
    except BaseException as e:  # every error goes back to the parent, which raises it
        conn.send(("error", type(e), e.args, dict(getattr(e, "__dict__", {})), traceback.format_exc()))
    finally:
        conn.close()


def _rebuild_error(cls, args, attrs: dict, child_traceback: str) -> BaseException:
    """The child's exception, rebuilt without calling its ``__init__`` (keyword-only constructors)."""
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(attrs)
    exc.add_note("raised in the render process:\n" + child_traceback.rstrip())
    return exc


def _render_in_child(session: Session, backend: str, progress: bool, on_track: Callable[[str], None] | None,
                     measure: bool, resolve_gain: bool, clamp: bool, mix_out: str | Path | None,
                     master_out: str | Path | None):
    """:func:`render_session` in a forked child process; a child killed by a signal becomes one error.

    The child writes the mix and the master into ``mix_out`` / ``master_out`` (or temporary files, read
    back into arrays here) and sends the rest through a pipe, announcing every plugin call first, so the
    last announcement names the plugin that was running when the child died.
    """
    import multiprocessing

    from mixbridge.plugins.backend import get_backend
    from mixbridge.plugins.probe import PluginLoadError, describe_signal

    be = get_backend(backend, session.sample_rate, clamp=clamp)  # fails fast here on an unknown backend
    ctx = multiprocessing.get_context("fork")
    with tempfile.TemporaryDirectory(prefix="mixbridge-render-") as tmp:
        mix_file = Path(mix_out) if mix_out is not None else Path(tmp) / "mix.wav"
        master_file = Path(master_out) if master_out is not None else Path(tmp) / "master.wav"
        recv, send = ctx.Pipe(duplex=False)
        child = ctx.Process(target=_render_child, args=(send, session, backend, progress, measure, resolve_gain,
                                                         clamp, mix_file, master_file), daemon=True)
        child.start()
        send.close()
        plugin: tuple[list[str], str] | None = None
        answer = None
        try:
            while answer is None:
                try:
                    msg = recv.recv()
                except EOFError:
                    break
                if msg[0] == "plugin":
                    plugin = (msg[1], msg[2])
                elif msg[0] == "track":
                    if on_track:
                        on_track(msg[1])
                else:
                    answer = msg
            child.join()
        finally:
            if child.is_alive():
                child.kill()
                child.join()
            recv.close()
        code = child.exitcode
        if answer is None or (code is not None and code < 0):
            name, text = describe_signal(-code) if code is not None and code < 0 else ("", f"exit status {code}")
            if plugin is not None and name not in ("SIGKILL", "SIGTERM", "SIGINT", "SIGHUP"):
                paths, what = plugin
                where = paths[0] if len(paths) == 1 else " or ".join(paths)
                raise PluginLoadError(
                    f"plugin {where} {text} while rendering {what}: it loads but crashes on audio; reinstall "
                    "it, move it off the search path (VST_PATH, VST3_PATH), or render with --backend builtin",
                    path=paths[0], reason=f"{text} while rendering", signal=name or None)
            cause = (f" while {plugin[1]} was rendering" if plugin is not None else "")
            raise RenderCrashError(
                f"the {backend} render process was {text}{cause} (a signal from outside, e.g. the OOM killer, "
                f"when it is SIGKILL); run again, with more memory free, or with --backend builtin")
        if answer[0] == "error":
            _, cls, args, attrs, tb = answer
            raise _rebuild_error(cls, args, attrs, tb)
        _, console, mres, notices, solved_gain_db = answer
        console.mix = _attach(console.mix, keep_file=mix_out is not None)
        mres.audio = _attach(mres.audio, keep_file=master_out is not None)
    if mres.solved:
        session.master.solved_gain_db = solved_gain_db
    be.notices[:] = notices
    return console, mres, be


def close_renders(*renders) -> None:
    """Close the :class:`~mixbridge.audio.WavArray` s of :func:`render_session`'s results (a
    ``ConsoleRender``'s mix, a ``MasterResult``'s audio, or a ``WavArray``); arrays are left alone."""
    for r in renders:
        for a in (r, getattr(r, "mix", None), getattr(r, "audio", None)):
            if isinstance(a, WavArray):
                a.close()


#: Default steps of the reference refinement (``automix --refine-steps``; mirrors
#: ``mixbridge.models.style_transfer.DEFAULT_REFINE_STEPS``, which imports torch).
DEFAULT_REFINE_STEPS = 25


def refine_to_reference(session: Session, stems: StemSet, reference: str | Path, steps: int = DEFAULT_REFINE_STEPS,
                        progress: bool = False, predict: bool = True) -> tuple[Session, list[str]]:
    """Mixing style transfer: ``session`` refined so that its master's audio features match ``reference``'s.

    First, with ``predict``, the session is the one ``dmc-full`` predicts from the stems and the reference
    (:func:`mixbridge.models.style_transfer.predict_from_reference`: every track's strip and the master's EQ,
    bus compressor and reverb; of the mixer's session only the track list, polarity, mute and the delivery
    settings, limiter and loudness target, survive). Then
    :func:`mixbridge.models.style_transfer.match_reference` (torch, imported here): the track gains, pans and
    EQ band gains and the master EQ and bus compressor are optimised through the torch console for ``steps``
    Adam steps (0: the distance only measured). A reference at another sample rate is resampled and a mono
    one skips the stereo features, each with a notice. The reference's path and sha256 and the feature
    distance before and after go into ``provenance["reference"]``.

    Returns:
        ``(refined session, notices)``.

    Raises:
        AudioInputError: a missing, unreadable or more-than-stereo reference.
        StyleTransferError: a silent or too short reference, ``steps < 0``; with ``predict``, no shipped dmc-full
            weights (the message names the train command).
    """
    from mixbridge.checksum import sha256_file
    from mixbridge.models.style_transfer import match_reference, predict_from_reference

    reference = Path(reference)
    audio, rate = read_audio(reference)
    if audio.shape[0] > 2:
        raise AudioInputError(f"{reference}: {audio.shape[0]} channels; give a mono or stereo reference")
    pre_notices: list[str] = []
    if predict:
        session = predict_from_reference(stems, audio, stems.sample_rate, session, reference_rate=rate)
        pre_notices = [f"reference {reference.name}: dmc-full predicted the strips and the master bus"]
        pre_notices += [f"reference {reference.name}: " + n for n in session.provenance["dmc_full"]["notices"]]
    refined = match_reference(stems, audio, stems.sample_rate, session, steps, reference_rate=rate,
                              progress=progress)
    st = refined.provenance["style_transfer"]
    refined.provenance["reference"] = {
        "path": str(reference.resolve()), "sha256": sha256_file(reference), "refine_steps": int(steps),
        "feature_distance_before": st["feature_distance_before"],
        "feature_distance_after": st["feature_distance_after"],
    }
    notices = pre_notices + [f"reference {reference.name}: " + n for n in st["notices"]]
    notices.append(f"reference {reference.name}: feature distance {st['feature_distance_before']:.4f} -> "
                   f"{st['feature_distance_after']:.4f} after {steps} refinement steps")
    return refined, notices


def _takes_checkpoint(name: str) -> bool:
    """Whether mixer ``name``'s factory accepts a ``checkpoint`` keyword."""
    params = inspect.signature(MIXERS.get(name)).parameters.values()
    return any(p.name == "checkpoint" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _torch_importable() -> bool:
    """Whether ``import torch`` would find torch (without importing it)."""
    import importlib.util

    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def _is_onnx(checkpoint: str | Path | None) -> bool:
    return checkpoint is not None and str(checkpoint).endswith((".onnx", ".onnx.json"))


def _onnx_dmc(checkpoint: str | Path | None) -> Mixer:
    """The ``dmc`` mixer run by onnxruntime (:class:`mixbridge.export.mixer_onnx.OnnxDMCMixer`): from
    ``checkpoint`` (``OUT.onnx`` or its sidecar) or the shipped ``models/mixers/dmc.onnx``.

    Raises:
        BackendUnavailableError: torch is missing and there is no ONNX export to run (the message gives the
            command that makes one), or a torch checkpoint was given where torch is missing.
        MixerExportError: a changed or foreign ONNX file or sidecar.
    """
    from mixbridge.errors import BackendUnavailableError
    from mixbridge.export.mixer_onnx import SHIPPED_ONNX, OnnxDMCMixer
    from mixbridge.models.dmc_mixer import SHIPPED_CHECKPOINT

    if checkpoint is not None and not _is_onnx(checkpoint):
        raise BackendUnavailableError(
            f"--checkpoint {checkpoint}: a torch checkpoint, and torch is not installed; export it where torch is "
            f"(`mixbridge export mixer {checkpoint} -o OUT.onnx`) and pass --checkpoint OUT.onnx, or install torch")
    path = Path(checkpoint) if checkpoint is not None else Path(SHIPPED_ONNX)
    if checkpoint is None and not path.is_file():
        raise BackendUnavailableError(
            f"{path}: no ONNX export of the shipped dmc mixer, and torch is not installed; make it where torch is "
            f"(`mixbridge export mixer {SHIPPED_CHECKPOINT} -o {path}`) or install torch")
    return OnnxDMCMixer(path)


def build_mixer(name: str, checkpoint: str | Path | None = None) -> Mixer:
    """Mixer ``name`` from the registry, from ``checkpoint`` when one is given (a trained mixer).

    The ``dmc`` mixer runs through onnxruntime (:class:`~mixbridge.export.mixer_onnx.OnnxDMCMixer`, called
    like :class:`~mixbridge.models.dmc_mixer.DMCMixer`) when ``checkpoint`` is an ONNX export (``.onnx``
    or its ``.onnx.json`` sidecar) or when torch is not installed (then from the shipped
    ``models/mixers/dmc.onnx`` unless ``checkpoint`` names one).

    Raises:
        UnknownNameError: an unknown mixer, or a ``checkpoint`` for a mixer that takes none (the
            message names the mixers that do).
        BackendUnavailableError: ``dmc`` without torch and without an ONNX export (the message says how
            to make one).
    """
    if name == "dmc" and (_is_onnx(checkpoint) or not _torch_importable()):
        return _onnx_dmc(checkpoint)
    if checkpoint is None:
        return get_mixer(name)
    if not _takes_checkpoint(name):
        takers = [n for n in mixer_names() if _takes_checkpoint(n)]
        raise UnknownNameError(f"mixer '{name}' takes no checkpoint; mixers that do: {', '.join(takers) or 'none'}"
                               + (f" (--mixer {takers[0]})" if takers else ""))
    return mixer_from_checkpoint(checkpoint, name)


# ----------------------------------------------------------------------------- the output folder
#: The files automix writes into its output folder (``report.html`` unless ``report=False``).
OUTPUT_FILES = ("mix.wav", "master.wav", "session.json", "report.html")
#: Prefix of automix's staging folders: ``.automix-OUT-XXXXXXXX`` beside the output folder ``OUT`` (and,
#: from runs of older versions, ``.automix-XXXXXXXX`` inside it).
STAGING_PREFIX = ".automix-"
#: ``renameat2``'s flag that swaps two paths atomically (Linux 3.15+, glibc 2.28+).
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


class OutputFolderError(ValueError, MixbridgeError):
    """An output folder that automix cannot fill in one step: a file, a folder holding other files, the
    current folder, or one whose parent folder is not writable."""


def _staging_re(out_dir: Path):
    import re

    return re.compile(re.escape(f"{STAGING_PREFIX}{out_dir.name}-") + r"[a-z0-9_]{8}$")


def _try_lock(path: Path) -> int | None:
    """An open descriptor of folder ``path`` holding an exclusive ``flock``; None while another process
    (a live automix staging there) holds it. The kernel drops the lock when its holder dies, even by
    ``kill -9``, so an unlockable staging folder belongs to a live run and a lockable one is stale."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def remove_stale_staging(out_dir: str | Path) -> list[str]:
    """Remove the staging folders that interrupted automix runs into ``out_dir`` left behind.

    Those are ``.automix-OUT-XXXXXXXX`` beside ``out_dir`` and ``.automix-XXXXXXXX`` inside it (older
    versions staged there) whose ``flock`` no live process holds; a running automix's staging folder is
    left alone.

    Returns:
        One notice per folder removed, naming it and its size in MB.
    """
    out_dir = Path(os.path.realpath(out_dir))
    pattern = _staging_re(out_dir)
    found = []
    if out_dir.parent.is_dir():
        found += [p for p in out_dir.parent.iterdir() if pattern.match(p.name) and p.is_dir()]
    if out_dir.is_dir():
        found += [p for p in out_dir.iterdir() if p.name.startswith(STAGING_PREFIX) and p.is_dir()]
    notices = []
    for path in found:
        try:
            fd = _try_lock(path)
        except OSError:
            continue
        if fd is None:
            continue
        try:
            size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            shutil.rmtree(path, ignore_errors=True)
        finally:
            os.close(fd)
        notices.append(f"removed {path}/ ({size / 1e6:.1f} MB): the staging folder of an interrupted automix run")
    return notices


def check_output_folder(out_dir: str | Path) -> None:
    """Check that automix can put its outputs into ``out_dir`` in one step (see :func:`publish_outputs`).

    ``out_dir`` may be missing, empty, or hold a previous automix's outputs (:data:`OUTPUT_FILES` and
    staging folders); the whole folder is replaced, so it must hold nothing else.

    Raises:
        OutputFolderError: ``out_dir`` is a file, holds other entries (the first three named), or is the
            current folder or one above it.
    """
    given, out_dir = Path(out_dir), Path(os.path.realpath(out_dir))
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputFolderError(f"{given}: is a file, not a folder; give a folder for automix's outputs (-o OUT_DIR)")
    cwd = Path.cwd()
    if out_dir == cwd or out_dir in cwd.parents:
        raise OutputFolderError(f"{given}: is the current folder (or holds it); automix replaces its output folder "
                                "as a whole: give a subfolder (-o out)")
    if out_dir.is_dir():
        foreign = sorted(p.name for p in out_dir.iterdir()
                         if p.name not in OUTPUT_FILES and not p.name.startswith(STAGING_PREFIX))
        if foreign:
            more = ", ..." if len(foreign) > 3 else ""
            raise OutputFolderError(
                f"{given}: holds {len(foreign)} entries automix did not write ({', '.join(foreign[:3])}{more}); "
                "automix replaces its output folder as a whole: give a new or empty folder (-o NEW_DIR) or one "
                "holding only a previous automix's outputs")


def _exchange(a: Path, b: Path) -> bool:
    """Swap the paths ``a`` and ``b`` in one step (``renameat2(RENAME_EXCHANGE)``); False where the C
    library, the kernel or the filesystem cannot. Raises OSError for any other failure."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def staging_folder(out_dir: str | Path):
    """Yield a fresh, ``flock``-ed staging folder ``.automix-OUT-XXXXXXXX`` beside ``out_dir``; on success
    it becomes ``out_dir`` (:func:`publish_outputs`), on an error it is removed.

    Beside and not inside ``out_dir``: a folder cannot be swapped with one inside it, and only a swap of
    the whole folder puts the set of outputs in place in one step. At the same depth as ``out_dir``, the
    session's relative ``source`` paths are the same from either.

    Raises:
        OutputFolderError: the parent folder is not writable (named, with the OS's reason).
    """
    given, out_dir = Path(out_dir), Path(os.path.realpath(out_dir))
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{out_dir.name}-", dir=out_dir.parent))
    except OSError as e:
        raise OutputFolderError(f"{given}: cannot create a staging folder in {out_dir.parent}/ ({e.strerror}); "
                                "automix stages its outputs beside OUT_DIR: give an OUT_DIR in a writable folder"
                                ) from None
    umask = os.umask(0)
    os.umask(umask)
    mode = (out_dir.stat().st_mode & 0o7777) if out_dir.is_dir() else (0o777 & ~umask)
    os.chmod(staging, mode)  # mkdtemp makes 0700; the output folder keeps its mode, or gets a normal one
    fd = _try_lock(staging)
    try:
        yield staging
        publish_outputs(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # an error before the swap; after it, the old outputs
        if fd is not None:
            os.close(fd)


def publish_outputs(staging: Path, out_dir: Path) -> None:
    """Put the complete ``staging`` folder in place as ``out_dir`` in one step.

    A missing ``out_dir``: one ``rename``. An existing one: swapped with the staging folder by
    ``renameat2(RENAME_EXCHANGE)`` (the old outputs land at the staging path and are removed there), or,
    where the system cannot swap, renamed aside first (a crash then leaves no ``out_dir`` for a moment,
    never a mixed set). Both are atomic within one filesystem; the parent folder is fsynced after.

    Raises:
        OutputFolderError: the rename failed (e.g. ``out_dir`` is a mount point), with the OS's reason.
    """
    _fsync_dir(staging)
    try:
        if not out_dir.exists():
            os.rename(staging, out_dir)
        elif not _exchange(staging, out_dir):
            aside = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{out_dir.name}-", dir=out_dir.parent))
            os.rename(out_dir, aside)  # replaces the empty folder just made
            os.rename(staging, out_dir)
            shutil.rmtree(aside, ignore_errors=True)
    except OSError as e:
        raise OutputFolderError(f"{out_dir}: cannot put the outputs in place ({e.strerror}); give an OUT_DIR "
                                "on the same filesystem as its parent folder, not a mount point") from None
    _fsync_dir(out_dir.parent)


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
    reference_start: str = "dmc-full",
    ride: bool = False,
    max_ride_db: float = 6.0,
) -> AutomixResult:
    """Mix and master a folder of stems.

    Args:
        stems_dir: folder of mono/stereo audio files, one per track.
        out_dir: the folder for ``mix.wav``, ``master.wav``, ``session.json`` and ``report.html``: missing,
            empty or holding a previous automix's outputs (:func:`check_output_folder`). The outputs are
            staged beside it and the staging folder becomes ``out_dir`` in one rename
            (:func:`staging_folder`); staging folders of interrupted runs are removed, with a notice.
        mixer: a registered mixer name (``mixbridge.models.mixers.mixer_names()``); a direct mixer's audio is
            ``mix.wav`` itself (:func:`_automix_direct`).
        backend: a registered render backend (``mixbridge.plugins.backend.backend_names()``: builtin, vst).
        target_lufs: integrated loudness target; default the schema's -14 LUFS.
        seed: seed of the random mixers.
        progress: show a progress bar per track.
        report: also write ``report.html`` (and measure every track for it); False skips both
            (``--no-report``).
        clamp: move values the backend cannot render into its range (listed in the notices)
            instead of stopping with an error.
        checkpoint: a trained mixer's checkpoint (``learned``: a ``mixer-mlp`` checkpoint), see
            :func:`build_mixer`.
        reference: a reference mix whose audio features the mix should match: the mixer's session is
            refined by :func:`refine_to_reference` (needs torch).
        refine_steps: the refinement's Adam steps (0: the start session, the distance only measured).
        reference_start: with ``reference``, the session the refinement starts from: ``"dmc-full"`` (the
            session dmc-full predicts from the stems and the reference; an error when its weights are missing)
            or ``"mixer"`` (the mixer's session).
        ride: give every track a loudness-riding fader curve by rule
            (:func:`mixbridge.plugins.ride.ride_automation`), within +-``max_ride_db`` dB, before the render,
            so the mix and the solved master gain include it.

    Returns:
        An :class:`AutomixResult`.

    Raises:
        AudioInputError: bad stems. OutputFolderError: an ``out_dir`` that cannot be replaced in one step.
        UnknownNameError: unknown mixer/backend, or a checkpoint for a
        mixer that takes none. CheckpointError: (on the mixer's call) a bad checkpoint.
        ParamRangeError: ``target_lufs`` outside the schema range. StyleTransferError: an unusable reference.
        DirectSessionError: ``reference`` or ``ride`` with a direct mixer (it sets no parameters to refine).
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
    if reference_start not in ("dmc-full", "mixer"):
        raise AudioInputError(f"reference_start = {reference_start!r}; use 'dmc-full' or 'mixer'")
    tp = MASTER_BUS.param("loudness.target_lufs")
    target = tp.default if target_lufs is None else tp.validate(target_lufs, "--target-lufs")
    direct = is_direct(mx)
    if direct and (reference is not None or ride):
        raise DirectSessionError(f"mixer '{mixer}' is a direct mixer: it writes audio and sets no parameters, so "
                                 f"{'--reference' if reference is not None else '--ride'} has nothing to refine; "
                                 "use a parameter mixer (--mixer dmc)")
    check_output_folder(out_dir)  # fail fast, before the mixing
    # lazy: the stems are checked now and read block by block by the mixer and the console, so
    # memory does not grow with the number of tracks or their length (README "Long sessions")
    stems = load_stems(stems_dir, roles=roles_from_manifest(stems_dir), lazy=True)
    stems.notices.extend(assign_roles(stems.stems))
    cleaned = remove_stale_staging(out_dir)
    if direct:
        return _automix_direct(mx, stems, out_dir, seed, target, backend, cleaned, report, t0)
    with staging_folder(out_dir) as staging:
        session = mx(stems, seed=seed, target_lufs=target, source_base=out_dir)
        # sources are relative to out_dir, which may not exist yet; the staging folder sits at its depth
        session.base_dir = staging
        ref_notices: list[str] = []
        if reference is not None:
            session, ref_notices = refine_to_reference(session, stems, reference, refine_steps, progress=progress,
                                                       predict=reference_start == "dmc-full")
        if ride:
            from mixbridge.plugins.ride import ride_automation

            session = ride_automation(session, stems, max_ride_db=max_ride_db)
        session.provenance["backend"] = backend
        # the mix and the master are rendered into their files in the staging folder, block by block
        console, mres, _ = render_session(session, backend, progress=progress, measure=report, clamp=clamp,
                                          mix_out=staging / "mix.wav", master_out=staging / "master.wav")
        try:
            notices = _write_outputs(staging, session, console, mres, backend, cleaned, stems.notices,
                                     ref_notices, report)
        finally:
            close_renders(console, mres)
    session.base_dir = out_dir.resolve()
    return AutomixResult(out_dir, session, mres.pre_lufs, mres.lufs, mres.true_peak_dbtp,
                         time.perf_counter() - t0, notices, report)


def _automix_direct(mx, stems: StemSet, out_dir: Path, seed: int, target: float, backend: str, cleaned: list[str],
                    report: bool, t0: float) -> AutomixResult:
    """:func:`automix` with a direct mixer (:mod:`mixbridge.models.direct_mixers`): its audio is ``mix.wav``.

    No console render: the mixer's audio goes through the one master bus (:func:`mixbridge.plugins.mastering.master`,
    the master's defaults: flat EQ, compressor at ratio 1, the gain solved for ``target``, the true-peak
    limiter at its ceiling) to ``master.wav``; the session records the tracks, the solved master gain and
    ``provenance["direct"] = True`` (it cannot be rendered or pushed). ``report.html`` is not written
    (there are no channel strips to report); the render backend is not used (both said in the notices).
    """
    from mixbridge.plugins.mastering import master

    notices = cleaned + list(stems.notices)
    if backend != "builtin":
        notices.append(f"backend {backend} not used: the direct mixer {mx.name} writes the mix audio itself")
    if report:
        notices.append(f"report.html not written: the direct mixer {mx.name} sets no channel strips to report")
    with staging_folder(out_dir) as staging:
        dm = mx.mix(stems, seed=seed, target_lufs=target, source_base=out_dir)
        session = dm.session
        mres = master(dm.audio, session.master.params, dm.sample_rate)
        session.master.solved_gain_db = float(mres.gain_db)
        notices += session.provenance.get("mixer_notes", []) + list(mres.notices)
        session.provenance["backend"] = None
        session.provenance["master"] = {"lufs": round(mres.lufs, 3), "true_peak_dbtp": round(mres.true_peak_dbtp, 3),
                                        "backend": None}
        session.provenance["render_notices"] = list(mres.notices)
        write_audio(staging / "mix.wav", dm.audio, dm.sample_rate)
        write_audio(staging / "master.wav", mres.audio, dm.sample_rate)
        session.base_dir = staging
        save(session, staging / "session.json")
    session.base_dir = out_dir.resolve()
    return AutomixResult(out_dir, session, mres.pre_lufs, mres.lufs, mres.true_peak_dbtp, time.perf_counter() - t0,
                         notices, False)


def _write_outputs(staging: Path, session: Session, console, mres, backend: str, cleaned: list[str],
                   stem_notices: list[str], ref_notices: list[str], report: bool) -> list[str]:
    """Write automix's outputs into ``staging``; returns the run's notices."""
    notices = cleaned + list(stem_notices) + list(console.notices) + list(mres.notices)
    notices += session.provenance.get("mixer_notes", []) + ref_notices
    session.provenance["master"] = {
        "lufs": round(mres.lufs, 3),
        "true_peak_dbtp": round(mres.true_peak_dbtp, 3),
        "backend": backend,
    }
    session.provenance["render_notices"] = list(console.notices) + list(mres.notices)
    write_audio(staging / "mix.wav", console.mix, session.sample_rate)
    write_audio(staging / "master.wav", mres.audio, session.sample_rate)
    save(session, staging / "session.json")
    if report:
        from mixbridge.plugins.report import write_report

        write_report(staging / "report.html", session, console, mres)
    return notices


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
        The :class:`~mixbridge.plugins.mastering.MasterResult`; its ``audio`` is the array, or (where the
        master bus renders into a file: README "Long sessions") a closed
        :class:`~mixbridge.audio.WavArray` naming ``out_path``: read the file.

    Raises:
        SessionError and friends: an invalid session. AudioInputError: missing sources.
        DirectSessionError: a direct mixer's session (no parameters; its ``mix.wav`` is the output).
    """
    session = load(session_path)
    refuse_direct(session, "render")  # before any file is made: a direct mixer's mix.wav is its output
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    mix_ctx = atomic_path(mix_out) if mix_out else contextlib.nullcontext(None)
    # rendered into temporary files beside the outputs, block by block, renamed into place at the end;
    # without --mix-output the mix goes to a temporary file there too, removed at the end
    with atomic_path(out_path) as tmp_master, mix_ctx as tmp_mix, \
            tempfile.TemporaryDirectory(prefix=".mixbridge-render-", dir=out_path.parent) as scratch:
        console, mres, _ = render_session(session, backend, progress=progress, resolve_gain=resolve_gain,
                                          clamp=clamp, mix_out=tmp_mix if tmp_mix is not None else
                                          Path(scratch) / "mix.wav", master_out=tmp_master)
        try:
            check_finite_blocks(out_path, mres.audio)
            write_audio(tmp_master, mres.audio, session.sample_rate)
            if tmp_mix is not None:
                check_finite_blocks(mix_out, console.mix)
                write_audio(tmp_mix, console.mix, session.sample_rate)
        finally:
            close_renders(console, mres)
    if isinstance(mres.audio, WavArray):  # closed: it names the file it became
        mres.audio.path = Path(out_path)
    mres.notices = list(console.notices) + list(mres.notices)
    return mres


__all__ = ["automix", "render", "render_session", "build_mixer", "refine_to_reference", "AutomixResult",
           "OutputFolderError", "check_output_folder", "close_renders", "remove_stale_staging", "staging_folder",
           "publish_outputs"]
