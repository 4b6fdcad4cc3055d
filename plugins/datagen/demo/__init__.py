"""The demo multitrack: real composed music rendered per part from real recorded samples.

General MIDI songs of the Freedoom project become multitracks, one WAV stem per
instrument (the drum part split into kit pieces), rendered by fluidsynth with
FluidR3_GM and the AVL acoustic drum kits, with a manifest of every file's
source, licence, attribution and checksum (see ``../shared/DATA.md``).

Modules, in the order a build uses them: :mod:`.sources` (the installed source
files, licences, defaults), :mod:`.wad` (Doom WAD lumps), :mod:`.midi` (songs
read with mido), :mod:`.gm` (General MIDI tables and roles), :mod:`.plan`
(excerpt choice, stem plans, the song catalogue), :mod:`.render` (fluidsynth),
:mod:`.build` (``build_demo``), :mod:`.manifest` (the manifest, ``verify_demo``),
:mod:`.errors` and :mod:`.cli` (``mixbridge demo build|list|verify``).
Audio is float32 ``[channels, samples]`` with an explicit ``sample_rate`` in Hz.
"""
