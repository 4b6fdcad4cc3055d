"""Build a :class:`~mixbridge.session.Session` from what a mixer chose: one place for every mixer.

* :func:`build_session` -- per-track parameter dicts in the schema's real units
  (``{"fader": {"fader_db": -3.0}, ...}``, partial; validated and filled with defaults);
* :func:`session_from_vectors` -- normalised parameter vectors, the output of a model head
  (``strip [tracks, n_strip]`` in ``CHANNEL_STRIP.flat_params()`` order, optionally
  ``master [n_master]`` in ``MASTER_BUS.flat_params()`` order, values in 0..1) mapped through
  :meth:`mixbridge.schema.Param.from_normalised`; a torch console's parameters go in as
  ``tensor.detach().cpu().numpy()``, or through :func:`mixbridge.models.console.normalise`
  when they are in real units;
* :func:`master_defaults`, :func:`split_gain` -- helpers every mixer shares (``split_gain`` fills the
  fader first, or the trim first for mixers that automate the fader).

The provenance records the mixer, mixbridge's version, the seed, the sha256 of every input
stem and the loader's notices. This module imports no torch.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mixbridge import __version__
from mixbridge.audio import StemSet
from mixbridge.checksum import sha256_file_memo
from mixbridge.errors import ParamRangeError
from mixbridge.schema import CHANNEL_STRIP, MASTER_BUS, Chain
from mixbridge.session import Master, Session, Track


def _source(stem_path: Path, base: Path | None) -> str:
    if base is None:
        return str(stem_path.resolve())
    return os.path.relpath(stem_path.resolve(), Path(base).resolve())


def build_session(stems: StemSet, mixer: str, params: Sequence[dict], master: dict, seed: int,
                  source_base: Path | None = None, extra: dict | None = None) -> Session:
    """The session of ``stems`` with track ``i`` set to ``params[i]`` and the master to ``master``.

    Args:
        stems: the loaded stems (their paths are hashed into the provenance).
        mixer: the mixer's name, recorded in the provenance.
        params: one ``{processor: {param: real value}}`` dict per stem (partial; defaults filled).
        master: ``{processor: {param: real value}}`` of the master bus.
        seed: recorded in the provenance.
        source_base: stem paths are stored relative to this folder (absolute when None).
        extra: more provenance entries (``mixer_notes``, ``roles``...).

    Raises:
        ParamRangeError, UnknownParamError: a value outside its schema range, or an unknown name.
    """
    tracks = []
    for s, p in zip(stems.stems, params):
        tracks.append(Track(s.name, _source(s.path, source_base), CHANNEL_STRIP.validate(p, f"track '{s.name}'"),
                            role=s.role))
    prov = {
        "mixer": mixer,
        "mixbridge_version": __version__,
        "seed": seed,
        "inputs": {s.path.name: sha256_file_memo(s.path) for s in stems.stems},
        "notices": list(stems.notices),
    }
    if extra:
        prov.update(extra)
    return Session(stems.sample_rate, tracks, Master(MASTER_BUS.validate(master, "master")), prov, source_base)


def vector_to_params(chain: Chain, u: Sequence[float], where: str = "") -> dict[str, dict[str, float]]:
    """A normalised vector ``u [n_params]`` (``chain.flat_params()`` order, 0..1) -> nested real units.

    Raises:
        ParamRangeError: the wrong length, or an entry outside [0, 1] or not finite.
    """
    flat = chain.flat_params()
    vec = np.asarray(u, dtype=np.float64).reshape(-1)
    if vec.size != len(flat):
        raise ParamRangeError(f"{where or chain.name}: {len(flat)} normalised values needed "
                              f"({chain.name}.flat_params() order), got {vec.size}")
    out: dict[str, dict[str, float]] = {}
    for v, (name, p) in zip(vec, flat):
        if not (np.isfinite(v) and 0.0 <= v <= 1.0):
            raise ParamRangeError(f"{where or chain.name}: normalised {name} = {v} is outside [0, 1]; "
                                  "squash the model's output (e.g. sigmoid)")
        proc, _, param = name.partition(".")
        out.setdefault(proc, {})[param] = p.from_normalised(float(v))
    return out


def session_from_vectors(stems: StemSet, strip, master=None, *, mixer: str, seed: int = 0,
                         target_lufs: float = -14.0, source_base: Path | None = None,
                         extra: dict | None = None) -> Session:
    """The session a model head describes: normalised vectors in, a validated session out.

    Args:
        stems: the stems, one row of ``strip`` each.
        strip: ``[tracks, n_strip]`` normalised channel-strip parameters (array-like, 0..1,
            ``CHANNEL_STRIP.flat_params()`` order).
        master: ``[n_master]`` normalised master-bus parameters, or None for
            :func:`master_defaults` at ``target_lufs``.
        mixer, seed, source_base, extra: see :func:`build_session`.
        target_lufs: the master's loudness target when ``master`` is None, in LUFS.

    Raises:
        ParamRangeError: a vector of the wrong shape, or an entry outside [0, 1].
    """
    rows = np.asarray(strip, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[0] != len(stems.stems):
        raise ParamRangeError(f"strip must be [tracks = {len(stems.stems)}, {len(CHANNEL_STRIP.flat_params())}] "
                              f"normalised values, got shape {tuple(rows.shape)}")
    params = [vector_to_params(CHANNEL_STRIP, row, f"track '{s.name}'") for s, row in zip(stems.stems, rows)]
    master_params = master_defaults(target_lufs) if master is None else vector_to_params(MASTER_BUS, master, "master")
    return build_session(stems, mixer, params, master_params, seed, source_base, extra)


def master_defaults(target_lufs: float, **over: dict) -> dict:
    """The master bus's defaults with ``loudness.target_lufs`` set and ``over`` merged per processor
    (``compressor={"ratio": 2.0}``)."""
    m = MASTER_BUS.defaults()
    m["loudness"]["target_lufs"] = target_lufs
    for k, v in over.items():
        m[k].update(v)
    return m


#: The orders :func:`split_gain` fills the two gain stages in.
GAIN_ORDERS = ("fader", "trim")


def split_gain(total_db: float, notes: list[str], name: str, *, first: str = "fader") -> dict:
    """Spread a static gain ``total_db`` (dB) over the fader (-48..+12 dB) and the trim (-24..+24 dB).

    ``first="fader"`` (the rule-based and dmc mixers): the fader takes what it can, the trim the rest.
    ``first="trim"`` (mixers that automate the fader, e.g. ``deepmixing``): the trim takes what it can, so the
    fader stays near 0 dB, inside every DAW's fader range (Ardour's tops out at +6.02 dB). A gain beyond both
    ranges together is limited and said so in ``notes`` (``"NAME: wanted ..."``), never dropped silently.

    Returns:
        ``{"fader": {"fader_db"}, "trim": {"gain_db"}}``, each rounded to 1 mdB.

    Raises:
        ValueError: ``first`` is not one of :data:`GAIN_ORDERS` (a programming error).
    """
    fp, tp = CHANNEL_STRIP.param("fader.fader_db"), CHANNEL_STRIP.param("trim.gain_db")
    if first == "fader":
        fader = min(max(total_db, fp.min), fp.max)
        trim = min(max(total_db - fader, tp.min), tp.max)
    elif first == "trim":
        trim = min(max(total_db, tp.min), tp.max)
        fader = min(max(total_db - trim, fp.min), fp.max)
    else:
        raise ValueError(f"split_gain(first={first!r}): use one of {', '.join(GAIN_ORDERS)}")
    if abs(fader + trim - total_db) > 1e-9:
        stages = "fader and trim" if first == "fader" else "trim and fader"
        notes.append(f"{name}: wanted {total_db:+.1f} dB of gain, limited to {fader + trim:+.1f} dB "
                     f"by the {stages} ranges")
    return {"fader": {"fader_db": round(fader, 3)}, "trim": {"gain_db": round(trim, 3)}}
