"""Rendering with the fluidsynth command line: one part, one stem (its parts summed).

fluidsynth (LGPL-2.1, ``fluidsynth`` Debian package) plays a MIDI file through a
SoundFont 2 into a 32-bit float WAV; reverb and chorus are off, so the stems are
dry. Audio comes back as float32 ``[2, samples]`` at the asked ``sample_rate`` in Hz.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from .errors import DemoRenderError, DemoSourceMissingError
from .plan import PartPlan, StemPlan
from .sources import DEFAULT_SYNTH_GAIN, RENDER_TIMEOUT_S


def fluidsynth_path() -> Path:
    """The ``fluidsynth`` program.

    Raises:
        DemoSourceMissingError: it is not on ``PATH``; the fix is to install it.
    """
    found = shutil.which("fluidsynth")
    if not found:
        raise DemoSourceMissingError("fluidsynth: program not found on PATH; "
                                     "install it with `apt-get install fluidsynth`")
    return Path(found)


#: fluidsynth warnings that are expected and harmless (the AVL fonts have no GM drum bank).
_HARMLESS_WARNINGS = (re.compile(r"No preset found on channel 9 \[bank=128 prog=0\]"),)


def render_part(part: PartPlan, sample_rate: int, synth_gain: float = DEFAULT_SYNTH_GAIN,
                workdir: str | Path | None = None) -> tuple[np.ndarray, list[str]]:
    """Render one part with the fluidsynth command line (DATA.md's invocation).

    ``fluidsynth -ni -q -g GAIN -r RATE -R 0 -C 0 -T wav -O float -F OUT FONT IN.mid``:
    reverb and chorus off, 32-bit float WAV. Renders are bit-identical when repeated.

    Returns:
        (audio, warnings): float32 ``[2, samples]`` at ``sample_rate`` Hz, and the
        warnings fluidsynth printed (harmless ones dropped).

    Raises:
        DemoSourceMissingError: fluidsynth or the soundfont is missing.
        DemoRenderError: fluidsynth failed, timed out, or wrote no or non-finite audio.
    """
    exe = fluidsynth_path()
    if not Path(part.soundfont).is_file():
        raise DemoSourceMissingError(
            f"{part.soundfont}: soundfont not found; install fluid-soundfont-gm and avldrums.lv2-soundfont"
        )
    with tempfile.TemporaryDirectory(prefix="mixbridge-demo-", dir=workdir) as tmp:
        mid_path = Path(tmp) / "part.mid"
        wav_path = Path(tmp) / "part.wav"
        mid_path.write_bytes(part.midi)
        cmd = [str(exe), "-ni", "-q", "-g", f"{synth_gain:g}", "-r", str(int(sample_rate)), "-R", "0", "-C", "0",
               "-T", "wav", "-O", "float", "-F", str(wav_path), str(part.soundfont), str(mid_path)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RENDER_TIMEOUT_S,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise DemoRenderError(f"fluidsynth ran past {RENDER_TIMEOUT_S:g} s on {part.soundfont.name}") from None
        if proc.returncode != 0 or not wav_path.is_file():
            raise DemoRenderError(
                f"fluidsynth failed (exit {proc.returncode}) rendering with {part.soundfont}: "
                f"{(proc.stderr or proc.stdout).strip()[-500:]}"
            )
        errors = [line.strip() for line in (proc.stderr or "").splitlines()
                  if "error" in line.lower() or "not a soundfont" in line.lower()]
        if errors:
            raise DemoRenderError(f"fluidsynth could not render with {part.soundfont}: {' '.join(errors)[-500:]}")
        audio, rate = sf.read(str(wav_path), dtype="float32", always_2d=True)
    if rate != sample_rate:
        raise DemoRenderError(f"fluidsynth wrote {rate} Hz audio, {sample_rate} Hz was asked")
    if not np.isfinite(audio).all():
        raise DemoRenderError(f"fluidsynth wrote NaN/inf samples rendering with {part.soundfont}")
    warnings = [line.strip() for line in (proc.stderr or "").splitlines()
                if line.strip() and not any(p.search(line) for p in _HARMLESS_WARNINGS)]
    return np.ascontiguousarray(audio.T), warnings


def render_stem(plan: StemPlan, n_samples: int, sample_rate: int, synth_gain: float = DEFAULT_SYNTH_GAIN,
                workdir: str | Path | None = None) -> tuple[np.ndarray, list[str]]:
    """Render and sum ``plan``'s parts, padded with zeros or cut to ``n_samples``.

    Returns:
        (audio, warnings): float32 ``[2, n_samples]``, and fluidsynth's warnings.
    """
    total = np.zeros((2, n_samples), dtype=np.float32)
    warnings: list[str] = []
    for part in plan.parts:
        audio, w = render_part(part, sample_rate, synth_gain, workdir)
        warnings.extend(w)
        if audio.shape[0] == 1:
            audio = np.repeat(audio, 2, axis=0)
        n = min(n_samples, audio.shape[1])
        total[:, :n] += audio[:2, :n]
    return total, warnings



def fluidsynth_version() -> str | None:
    """The installed fluidsynth's version string (``"2.3.4"``), or None when it cannot be asked."""
    try:
        out = subprocess.run([str(fluidsynth_path()), "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired, DemoSourceMissingError):
        return None
    m = re.search(r"version\s+(\S+)", out.stdout)
    return m.group(1) if m else None
