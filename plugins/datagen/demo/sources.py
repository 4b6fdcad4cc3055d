"""What the demo is built from: the installed source files, their licences, and the build defaults.

The sources are Debian packages (see ``../shared/DATA.md``): Freedoom's WADs
(``freedoom``, BSD-3-Clause) hold the General MIDI songs, FluidR3_GM
(``fluid-soundfont-gm``, MIT) plays the pitched parts and the AVL acoustic kits
(``avldrums.lv2-soundfont``, CC-BY-SA-3.0) the drums. :func:`source_entry`
describes one source file for the manifest, with the installed package version.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

FREEDOOM_WADS = (
    Path("/usr/share/games/doom/freedoom1.wad"),
    Path("/usr/share/games/doom/freedoom2.wad"),
)
GM_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
DRUM_KITS = {
    "black_pearl": Path("/usr/share/sounds/sf2/Black_Pearl_4_LV2.sf2"),
    "red_zeppelin": Path("/usr/share/sounds/sf2/Red_Zeppelin_4_LV2.sf2"),
}

#: Debian package, licence (SPDX) and attribution of every kind of source file.
SOURCE_PACKAGES: dict[str, dict[str, str]] = {
    "freedoom": {
        "package": "freedoom",
        "license": "BSD-3-Clause",
        "attribution": (
            "Music from Freedoom (https://freedoom.github.io), Copyright (c) 2001-2019 "
            "Contributors to the Freedoom project; the composers are listed in "
            "/usr/share/doc/freedoom/CREDITS"
        ),
        "url": "https://github.com/freedoom/freedoom",
    },
    "fluid-soundfont-gm": {
        "package": "fluid-soundfont-gm",
        "license": "MIT",
        "attribution": "FluidR3_GM soundfont, Copyright (c) 2000-2002, 2008 Frank Wen, 2008 Toby Smithe (MIT)",
        "url": "https://packages.debian.org/fluid-soundfont-gm",
    },
    "avldrums.lv2-soundfont": {
        "package": "avldrums.lv2-soundfont",
        "license": "CC-BY-SA-3.0",
        "attribution": (
            "AVL Drumkits (Black Pearl 4pc, Red Zeppelin 4pc), Copyright (c) 2015 Glen MacArthur, "
            "CC BY-SA 3.0; soundfonts packaged by Robin Gareus in avldrums.lv2"
        ),
        "url": "https://github.com/x42/avldrums.lv2",
    },
}

#: Songs in the order ``--songs N`` takes them. Each gives a full band (drums with at
#: least 4 of the 5 kit stems, bass, guitars or keys, a lead) of 10-16 stems in its
#: best 30 s excerpt; the first three differ in tempo (90/105/140 bpm) and style
#: (metal, rock with keys, funk rock with percussion). ``mixbridge demo list`` shows all.
CURATED_SONGS: tuple[str, ...] = (
    "D_E1M9", "D_E2M3", "D_E3M4", "D_ROMERO", "D_E1M1", "D_TENSE", "D_E3M7", "D_RUNNI2",
)
DEFAULT_N_SONGS = 3
#: Excerpt length in seconds (issue 2 asks for songs of at least 30 s).
DEFAULT_EXCERPT_S = 30.0
#: Seconds after the excerpt's end during which releases ring out (stems last excerpt + tail).
DEFAULT_TAIL_S = 2.0
DEFAULT_SAMPLE_RATE = 44100
#: fluidsynth's master gain (``-g``), as in DATA.md: keeps summed parts below full scale.
DEFAULT_SYNTH_GAIN = 0.5
#: A stem needs this many note onsets inside the excerpt to be kept.
MIN_NOTES_PER_STEM = 4
#: A rendered stem whose peak is below this is reported as silent and left out.
SILENT_PEAK_DB = -80.0
#: Minimum number of stems a song must give; fewer is an error naming the song.
MIN_STEMS_PER_SONG = 6
#: Minimum excerpt length in seconds (issue 2: songs of at least 30 s).
MIN_EXCERPT_S = 30.0
MAX_EXCERPT_S = 600.0
#: fluidsynth wall-clock limit per part, in seconds.
RENDER_TIMEOUT_S = 300.0
WAV_SUBTYPES = ("FLOAT", "PCM_24", "PCM_16")


def package_version(package: str) -> str | None:
    """The installed Debian version of ``package`` (``dpkg-query``), or None where dpkg is absent."""
    if not shutil.which("dpkg-query"):
        return None
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def source_entry(path: Path, kind: str) -> dict:
    """The manifest's record of source file ``path`` of ``kind`` (a key of :data:`SOURCE_PACKAGES`):
    path, package, installed version, licence (SPDX), attribution and URL."""
    info = SOURCE_PACKAGES[kind]
    return {"path": str(path), "package": info["package"], "package_version": package_version(info["package"]),
            "license": info["license"], "attribution": info["attribution"], "url": info["url"]}
