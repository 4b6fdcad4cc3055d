"""General MIDI tables: program names, the mixing role of each program, the drum-note groups.

The General MIDI 1 sound set (MIDI Manufacturers Association, 1991) numbers 128
programs in 16 families of 8 and puts percussion on channel 10 (index 9), one
drum sound per note. :func:`gm_role` maps a program to a role of
:data:`mixbridge.roles.ROLES`; :func:`drum_group` maps a drum note to a stem
of a multi-miked kit (:data:`DRUM_GROUPS`); :data:`GM_TO_AVL_NOTE` maps GM drum
notes onto the AVL 4-piece kits' layout.
"""
from __future__ import annotations

import re

#: The 128 GM program names, indexed by program number 0..127.
GM_PROGRAM_NAMES = (
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano",
    "Electric Piano 1", "Electric Piano 2", "Harpsichord", "Clavinet",
    "Celesta", "Glockenspiel", "Music Box", "Vibraphone",
    "Marimba", "Xylophone", "Tubular Bells", "Dulcimer",
    "Drawbar Organ", "Percussive Organ", "Rock Organ", "Church Organ",
    "Reed Organ", "Accordion", "Harmonica", "Tango Accordion",
    "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)", "Electric Guitar (jazz)", "Electric Guitar (clean)",
    "Electric Guitar (muted)", "Overdriven Guitar", "Distortion Guitar", "Guitar Harmonics",
    "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)", "Fretless Bass",
    "Slap Bass 1", "Slap Bass 2", "Synth Bass 1", "Synth Bass 2",
    "Violin", "Viola", "Cello", "Contrabass",
    "Tremolo Strings", "Pizzicato Strings", "Orchestral Harp", "Timpani",
    "String Ensemble 1", "String Ensemble 2", "Synth Strings 1", "Synth Strings 2",
    "Choir Aahs", "Voice Oohs", "Synth Voice", "Orchestra Hit",
    "Trumpet", "Trombone", "Tuba", "Muted Trumpet",
    "French Horn", "Brass Section", "Synth Brass 1", "Synth Brass 2",
    "Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax",
    "Oboe", "English Horn", "Bassoon", "Clarinet",
    "Piccolo", "Flute", "Recorder", "Pan Flute",
    "Blown Bottle", "Shakuhachi", "Whistle", "Ocarina",
    "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)",
    "Lead 5 (charang)", "Lead 6 (voice)", "Lead 7 (fifths)", "Lead 8 (bass + lead)",
    "Pad 1 (new age)", "Pad 2 (warm)", "Pad 3 (polysynth)", "Pad 4 (choir)",
    "Pad 5 (bowed)", "Pad 6 (metallic)", "Pad 7 (halo)", "Pad 8 (sweep)",
    "FX 1 (rain)", "FX 2 (soundtrack)", "FX 3 (crystal)", "FX 4 (atmosphere)",
    "FX 5 (brightness)", "FX 6 (goblins)", "FX 7 (echoes)", "FX 8 (sci-fi)",
    "Sitar", "Banjo", "Shamisen", "Koto",
    "Kalimba", "Bagpipe", "Fiddle", "Shanai",
    "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock",
    "Taiko Drum", "Melodic Tom", "Synth Drum", "Reverse Cymbal",
    "Guitar Fret Noise", "Breath Noise", "Seashore", "Bird Tweet",
    "Telephone Ring", "Helicopter", "Applause", "Gunshot",
)
#: Mixing role of each GM family of 8 programs: piano, chromatic percussion, organ,
#: guitar, bass, strings, ensemble, brass, reed, pipe, synth lead, synth pad, synth
#: effects, ethnic, percussive, sound effects. Reeds and pipes play melodies in these
#: songs, so they count as leads.
GM_FAMILY_ROLES = (
    "keys", "keys", "keys", "guitar", "bass", "strings", "strings", "brass",
    "lead", "lead", "lead", "pad", "other", "other", "percussion", "other",
)
#: Programs whose role differs from their family's: timpani, the choirs (sustained
#: pads here) and the orchestra hit.
GM_PROGRAM_ROLES = {47: "percussion", 52: "pad", 53: "pad", 54: "pad", 55: "other"}

#: GM drum notes of each drum stem (DATA.md); notes in none of them go to ``percussion``.
DRUM_GROUPS: dict[str, tuple[int, ...]] = {
    "kick": (35, 36),
    "snare": (37, 38, 40),
    "hihat": (42, 44, 46),
    "toms": (41, 43, 45, 47, 48, 50),
    "cymbals": (49, 51, 52, 53, 55, 57, 59),
}
DRUM_STEM_ORDER = ("kick", "snare", "hihat", "toms", "cymbals", "percussion")

#: GM drum note -> AVL kit note (the AVL kits are one melodic preset, bank 0 program 0,
#: with a 4-piece layout: 36 kick, 37 side stick, 38 snare, 39 clap, 40 snare edge,
#: 41 floor tom, 42/44/46/48 hi-hat closed/pedal/semi-open/swish, 43/47 tom edges,
#: 45 rack tom, 49/57 crashes, 50/52/58 chokes, 51/59 ride, 53 bell, 54 tambourine,
#: 55 splash, 56 cowbell, 60 china, 61 maracas; read from the kits' sample names).
#: The 4-piece kit has two toms: GM's low toms go to the floor tom, the higher ones
#: to the rack tom. GM notes absent here are rendered with FluidR3_GM's drum kit.
GM_TO_AVL_NOTE = {
    35: 36, 36: 36,
    37: 37, 38: 38, 40: 38,
    42: 42, 44: 44, 46: 46,
    41: 41, 43: 41, 45: 45, 47: 45, 48: 45, 50: 45,
    49: 49, 51: 51, 52: 60, 53: 53, 55: 55, 57: 57, 59: 59,
    39: 39, 54: 54, 56: 56, 70: 61,
}
#: The GM percussion channel, 0-based (channel 10 as musicians count).
GM_DRUM_CHANNEL = 9
#: Controllers removed from every rendered stem: 7 volume, 10 pan (mixing is our job) and
#: 0/32 bank select (the soundfonts hold only the GM banks); also 8 balance. Only the
#: stem renders drop them: a parsed song keeps every controller event
#: (:attr:`~mixbridge.plugins.datagen.demo.midi.Song.channel_events`).
STRIPPED_CONTROLLERS = frozenset({0, 7, 8, 10, 32})


def gm_role(program: int) -> str:
    """Mixing role of GM ``program`` (0..127): kick/snare/... for drums are set elsewhere."""
    return GM_PROGRAM_ROLES.get(program, GM_FAMILY_ROLES[program // 8])


def slug(text: str) -> str:
    """A file-name-safe form of ``text``: ``"Electric Bass (finger)"`` -> ``"electric_bass_finger"``
    (``"untitled"`` when nothing is left)."""
    s = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return s or "untitled"


def drum_group(note: int) -> str:
    """The drum stem of GM drum ``note``: kick, snare, hihat, toms, cymbals or percussion."""
    for group, notes in DRUM_GROUPS.items():
        if note in notes:
            return group
    return "percussion"

