"""The knowledge-based mixer (the default): published mixing practice, rule by rule, per track role.

``knowledge`` sets a loudness balance with role offsets, a pan spread that keeps kick, snare,
bass and lead centred, a shelving high-pass on non-bass tracks, gentle compression set from
each track's measured level, and reverb sends. Sources for the rules: Izhaki, *Mixing Audio*
(3rd ed.), chs. 13-16 and 22; Owsinski, *The Mixing Engineer's Handbook*; De Man & Reiss, "A
knowledge-engineered autonomous mixing system" (AES 135, 2013).

Every mixer chooses ``pan.pan`` with the console's one law for mono and stereo stems
(``mixbridge.schema.PAN_SEMANTICS``: a stereo stem is a constant-power balance that puts its
centred image exactly where a mono stem with the same pan goes), so a role's pan means the
same position whatever the stem's channel count. Roles come from :data:`mixbridge.roles.ROLES`;
:func:`mixbridge.roles.guess_role` finds the role of a stem that has none.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mixbridge.audio import StemSet
from mixbridge.loudness import SILENT_LUFS, integrated_lufs_blocks
from mixbridge.roles import ROLES, guess_role
from mixbridge.session import Session

from .mix_session import build_session, master_defaults, split_gain

#: Loudness of each role relative to the lead, in LU (Izhaki ch. 22 level hierarchy: the lead,
#: kick, snare and bass carry the mix; time-keepers and pads sit lower).
ROLE_LEVEL_LU = {
    "lead": 0.0, "kick": -1.5, "snare": -2.5, "bass": -2.0, "hihat": -11.0, "toms": -7.0,
    "cymbals": -12.0, "percussion": -11.0, "guitar": -5.0, "keys": -6.0, "pad": -9.0,
    "strings": -7.0, "brass": -6.0, "other": -7.0,
}
#: Pan position of the first track of each role; later tracks of a role alternate sides
#: (audience perspective). Kick, snare, bass and lead stay centred (Izhaki ch. 13).
ROLE_PAN = {
    "lead": 0.0, "kick": 0.0, "snare": 0.0, "bass": 0.0, "hihat": 0.35, "toms": -0.4,
    "cymbals": -0.5, "percussion": 0.55, "guitar": -0.6, "keys": 0.45, "pad": -0.3,
    "strings": 0.3, "brass": -0.4, "other": 0.25,
}
#: Roles that stay centred whatever their count.
CENTRED_ROLES = ("lead", "kick", "snare", "bass")
#: Corner of the shelving high-pass (low shelf at -12 dB) per role, Hz; None = no cut (bass instruments).
ROLE_HIGHPASS_HZ = {
    "kick": None, "bass": None, "snare": 90.0, "toms": 60.0, "hihat": 300.0, "cymbals": 300.0,
    "percussion": 200.0, "lead": 120.0, "guitar": 110.0, "keys": 90.0, "pad": 150.0,
    "strings": 90.0, "brass": 110.0, "other": 100.0,
}
#: Compressor (ratio, attack_ms, release_ms, gain reduction aimed at on loud passages in dB) per role.
ROLE_COMPRESSION = {
    "kick": (4.0, 15.0, 80.0, 4.0), "snare": (4.0, 10.0, 100.0, 4.0), "toms": (3.0, 15.0, 120.0, 3.0),
    "hihat": (2.0, 5.0, 100.0, 2.0), "cymbals": (1.5, 10.0, 200.0, 1.5), "percussion": (2.5, 10.0, 120.0, 3.0),
    "bass": (4.0, 10.0, 120.0, 5.0), "lead": (3.0, 5.0, 150.0, 4.0), "guitar": (2.5, 10.0, 150.0, 3.0),
    "keys": (2.0, 15.0, 200.0, 2.0), "pad": (1.5, 30.0, 300.0, 1.5), "strings": (2.0, 20.0, 250.0, 2.0),
    "brass": (2.5, 10.0, 150.0, 3.0), "other": (2.0, 15.0, 150.0, 2.0),
}
#: Reverb send per role, dB (-80 = off): no reverb on kick, bass and cymbals keeps the low end dry.
ROLE_SEND_DB = {
    "kick": -80.0, "bass": -80.0, "cymbals": -80.0, "hihat": -80.0, "snare": -14.0, "toms": -16.0,
    "percussion": -16.0, "lead": -12.0, "guitar": -15.0, "keys": -12.0, "pad": -10.0,
    "strings": -10.0, "brass": -14.0, "other": -15.0,
}
#: Where the lead sits, before mastering; leaves headroom for the bus compressor.
LEAD_LUFS = -24.0
#: Compressor knee of every track and the bus, dB.
KNEE_DB = 4.0


def loud_passage_db(audio: np.ndarray, sample_rate: int) -> float:
    """Level of the loud passages of ``audio [channels, samples]`` in dBFS: the 90th percentile of
    50 ms peak levels (-120 for silence)."""
    return loud_passage_db_blocks([audio], sample_rate)


def loud_passage_db_blocks(blocks, sample_rate: int) -> float:
    """:func:`loud_passage_db` of a signal given as consecutive ``[channels, n]`` blocks (the same
    50 ms frames and value; one block and the frame peaks are held)."""
    hop = max(1, int(0.05 * sample_rate))
    frames: list[np.ndarray] = []
    rest: np.ndarray | None = None
    for x in blocks:
        if rest is not None and rest.shape[1]:
            x = np.concatenate([rest, x], axis=1)
        n = x.shape[1] // hop
        if n:
            frames.append(np.abs(x[:, : n * hop]).max(axis=0).reshape(n, hop).max(axis=1))
        rest = x[:, n * hop:]
    if not frames:
        return -120.0
    peaks = np.concatenate(frames)
    peaks = peaks[peaks > 1e-6]
    if peaks.size == 0:
        return -120.0
    return float(20.0 * np.log10(np.percentile(peaks, 90)))


class KnowledgeMixer:
    """Published mixing practice by track role: loudness balance, pan spread, high-pass, compression, reverb.

    The rules and their sources are in the module docstring; the role tables above are the
    numbers. No config: ``get_mixer("knowledge")``.
    """

    name = "knowledge"

    def __call__(self, stems: StemSet, *, seed: int = 0, target_lufs: float = -14.0,
                 source_base: Path | None = None) -> Session:
        """The session of ``stems``; a stem's role comes from the loader, else from its file name
        (:func:`mixbridge.roles.guess_role`). Silent stems stay at unity and are noted in the provenance."""
        sr = stems.sample_rate
        notes: list[str] = []
        params: list[dict] = []
        seen_roles: dict[str, int] = {}
        for s in stems.stems:
            role = s.role if s.role in ROLES else guess_role(s.name)
            s.role = role
            p: dict = {}
            lufs = integrated_lufs_blocks(s.blocks(), sr, s.channels)  # block by block: never the whole stem
            if lufs <= SILENT_LUFS:
                notes.append(f"{s.name}: silent, left at unity and excluded from the balance")
                params.append(p)
                continue
            gain_db = LEAD_LUFS + ROLE_LEVEL_LU[role] - lufs
            p.update(split_gain(gain_db, notes, s.name))
            # pan: centred roles stay put; other roles alternate sides per occurrence
            k = seen_roles.get(role, 0)
            seen_roles[role] = k + 1
            pan = 0.0 if role in CENTRED_ROLES else ROLE_PAN[role] * (1 if k % 2 == 0 else -1)
            p["pan"] = {"pan": pan}
            # shelving high-pass: a -12 dB low shelf at the role's corner
            hp = ROLE_HIGHPASS_HZ[role]
            if hp is not None:
                p["eq"] = {"low_shelf_gain_db": -12.0, "low_shelf_freq_hz": hp}
            # gentle compression, threshold set from the loud passages after trim
            ratio, attack, release, gr = ROLE_COMPRESSION[role]
            loud = loud_passage_db_blocks(s.blocks(), sr) + p["trim"]["gain_db"]
            if ratio > 1.0 and loud > -60.0:
                # GR on a peak at `loud` dBFS is (loud - T)(1 - 1/R): solve for T
                threshold = loud - gr / (1.0 - 1.0 / ratio)
                threshold = min(max(threshold, -60.0), 0.0)
                makeup = min(gr / 2.0, 12.0)
                p["compressor"] = {"threshold_db": round(threshold, 2), "ratio": ratio, "attack_ms": attack,
                                   "release_ms": release, "knee_db": KNEE_DB, "makeup_db": round(makeup, 2)}
                p["fader"]["fader_db"] = round(min(max(p["fader"]["fader_db"] - makeup, -48.0), 12.0), 3)
            p["send"] = {"send_db": ROLE_SEND_DB[role]}
            params.append(p)
        master = master_defaults(
            target_lufs,
            compressor={"threshold_db": -16.0, "ratio": 2.0, "attack_ms": 30.0, "release_ms": 200.0,
                        "knee_db": KNEE_DB, "makeup_db": 0.0},
            reverb={"decay_s": 1.4, "predelay_ms": 20.0, "return_db": 0.0},
        )
        return build_session(stems, self.name, params, master, seed, source_base,
                        {"mixer_notes": notes, "roles": {s.name: s.role for s in stems.stems}})
