"""The ``dmc`` mixer: a trained :mod:`DMC <mixbridge.models.dmc>` network sets each track's gain and pan.

``get_mixer("dmc")`` opens the shipped weights ``models/mixers/dmc.safetensors`` + ``dmc.json``
(:mod:`mixbridge.models.checkpoint`); ``checkpoint=PATH`` opens another (a run's ``best.json``),
``model=`` takes a network object (the tests' untrained one).

The level convention is the composer dataset's: the training stems were loudness-normalised to one
common level and the labels are relative gains. So the mixer

1. resamples every stem to the network's rate (features only) and takes the part the network reads
   (:func:`~mixbridge.models.dmc.select_windows`: the whole stem up to ``max_windows * window_s``
   seconds, else ``max_windows`` evenly spaced windows of ``window_s`` s, concatenated);
2. measures the integrated loudness ``L_i`` (BS.1770-4, :mod:`mixbridge.loudness`) of that part,
   the audio the network reads, and trims the stem to :data:`COMMON_LUFS` (:func:`trim_db`):
   ``trim_i = COMMON_LUFS - L_i`` (stems silent there, at -70 LUFS, get no trim, no network
   prediction and a note). Up to ``max_windows * window_s`` seconds (16 s for the shipped weights:
   every composer excerpt) the part is the whole stem. A longer stem is trimmed by its windows'
   loudness when they represent it -- their mean square (unweighted, ungated: one pass over the
   stem, about 1/50 of the K-weighted meter's cost) is within :data:`WINDOWS_MATCH_DB` of the whole
   stem's -- and else by the whole stem's loudness, measured as before (a fill that plays between
   the windows, a solo inside them: never trimmed by the tens of dB the windows alone would ask).
   Measuring 16 s instead of 3 min of each stem is what keeps a 16-track, 3-minute prediction
   under 1 s of CPU (``scripts/bench_mixers.py``);
3. predicts each track's gain and pan from the trimmed audio's log-mel
   (:func:`~mixbridge.models.dmc.dmc_features`) and removes the gains' mean over the tracks;
   with a prior weight ``w`` (the checkpoint record's ``extra.prior_blend.weight``, chosen on the
   validation split by ``scripts/fit_dmc_prior_weight.py``; 0 without one), each track whose GM family
   is in the ``prior`` mixer's table (:class:`~mixbridge.models.prior_mixer.PriorMixer`: the family's mean
   level over the training songs) has its relative gain moved ``w`` of the way to that family level --
   shrinkage of the network's reading towards what the role alone predicts; tracks without a family
   (no ``manifest.json`` with GM programs) keep the network's gain. Pans are the network's times a
   factor ``s`` (``extra.prior_blend.pan_scale``, chosen on the validation split by the same script; 1 without
   one): the shipped record's 0 centres every track, because on the composer data no role has a side (left
   and right are about even in every GM family of the training songs) and a centred track is what minimises
   the pan error when the side is not in the audio;
4. builds the session (:func:`mixbridge.models.mix_session.build_session`): track gain
   ``trim_i + g_i - mean(g)`` spread over fader and trim by
   :func:`~mixbridge.models.mix_session.split_gain`, pan, everything else default; the master's
   defaults at the requested loudness target.

So scaling a stem by ``k`` dB changes only its trim, by ``-k`` dB: the mix is the same.
At most :data:`MAX_TRACKS` tracks. Importing this module imports no torch.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from mixbridge.audio import StemSet, resample
from mixbridge.errors import AudioInputError, MixbridgeError
from mixbridge.loudness import SILENT_LUFS, db_to_gain, integrated_lufs, integrated_lufs_blocks
from mixbridge.session import Session

from .dmc import dmc_features, select_windows, window_starts
from .mix_session import build_session, master_defaults, split_gain

#: The common loudness every stem is trimmed to before the network reads it (the middle of the
#: composer dataset's -30..-18 LUFS range of input levels).
COMMON_LUFS = -24.0


def trim_db(level_lufs: float) -> float:
    """The loudness trim, dB, that brings a stem measured at ``level_lufs`` (BS.1770-4 integrated
    loudness, LUFS) to :data:`COMMON_LUFS`: ``COMMON_LUFS - level_lufs``, or 0 dB for a silent stem
    (``level_lufs <= SILENT_LUFS``, -70 LUFS, or NaN). The linear gain is
    :func:`mixbridge.loudness.db_to_gain` of it.

    The one definition of the per-stem trim the learned mixers (dmc, dmc-full, direct, deepmixing,
    style transfer) and their training tasks apply before a network reads the stems. Never raises.
    """
    level = float(level_lufs)
    return COMMON_LUFS - level if level > SILENT_LUFS else 0.0


#: The most tracks one call takes (the features and the network grow linearly with the count).
MAX_TRACKS = 256
#: The shipped weights (``dmc.json`` + ``dmc.safetensors`` + the card ``dmc.md``).
SHIPPED_CHECKPOINT = Path(__file__).resolve().parent / "mixers" / "dmc.json"
#: The command that trains the weights (quoted when the shipped ones are missing).
TRAIN_HINT = "mixbridge train mixer --data COMPOSER_DATASET --config models/configs/dmc.yaml -o RUN_DIR"


def stem_windows(stem, sample_rate: int, window_s: float, max_windows: int) -> np.ndarray:
    """:func:`~mixbridge.models.dmc.select_windows` of a stem, reading only those windows
    (float32 ``[channels, samples]``; the stem is at ``sample_rate``)."""
    win = int(round(window_s * sample_rate))
    if win < 1 or int(max_windows) != max_windows or max_windows < 1:
        raise AudioInputError(f"window_s = {window_s} s and max_windows = {max_windows} must be positive")
    starts = window_starts(stem.n_samples, win, int(max_windows))
    if starts == [0]:
        return np.asarray(stem.read(0, stem.n_samples), dtype=np.float32)
    return np.concatenate([np.asarray(stem.read(s, win), dtype=np.float32) for s in starts], axis=-1)


#: A long stem's windows represent it when their mean square is within this of the whole stem's (dB);
#: else the whole stem's loudness sets the trim.
WINDOWS_MATCH_DB = 1.0


def _mean_square_db(blocks) -> float:
    """10 log10 of the mean square over every sample and channel of ``[channels, n]`` blocks
    (-inf for silence)."""
    total, count = 0.0, 0
    for b in blocks:
        for row in np.asarray(b, dtype=np.float32):  # a channel of a block is contiguous: no copy
            total += float(np.dot(row, row))
            count += row.size
    return 10.0 * np.log10(total / count) if total > 0.0 and count else -np.inf


def trim_lufs(part: np.ndarray, sample_rate: int, n_samples: int, whole_blocks: Callable[[], Iterable],
              channels: int) -> float:
    """The loudness (LUFS) that sets a stem's trim (``SILENT_LUFS`` for silence).

    Args:
        part: float32 ``[channels, samples]``, the audio the network reads, at ``sample_rate`` (Hz).
        n_samples: the whole stem's length at ``sample_rate``.
        whole_blocks: called to iterate the whole stem as ``[channels, n]`` blocks at ``sample_rate``.

    Returns:
        The integrated loudness of ``part`` when it is the whole stem or represents it (mean square
        within :data:`WINDOWS_MATCH_DB` of the whole stem's); else the whole stem's.
    """
    if part.shape[-1] == n_samples:
        return integrated_lufs(part, sample_rate)
    gap = abs(_mean_square_db([part]) - _mean_square_db(whole_blocks()))
    if gap <= WINDOWS_MATCH_DB:  # both silent gives nan: not taken
        return integrated_lufs(part, sample_rate)
    return integrated_lufs_blocks(whole_blocks(), sample_rate, channels)


def _record_blend(checkpoint_json: str | Path, key: str, default: float) -> float:
    import json

    path = Path(checkpoint_json)
    path = path / "best.json" if path.is_dir() else path.with_suffix(".json")
    try:
        blend = (json.loads(path.read_text()).get("extra") or {}).get("prior_blend") or {}
        w = float(blend.get(key, default))
    except (OSError, ValueError, AttributeError, TypeError):
        return default
    return w if 0.0 <= w <= 1.0 else default


def record_prior_weight(checkpoint_json: str | Path) -> float:
    """``extra.prior_blend.weight`` of a dmc checkpoint record (``NAME.json``; a ``.safetensors`` path or a
    folder's ``best.json`` is read the same way), 0 when the record has none or cannot be read (the load of
    the weights reports a bad record)."""
    return _record_blend(checkpoint_json, "weight", 0.0)


def record_pan_scale(checkpoint_json: str | Path) -> float:
    """``extra.prior_blend.pan_scale`` of a dmc checkpoint record (read as :func:`record_prior_weight`), 1 (the
    network's pans as they are) when the record has none or cannot be read."""
    return _record_blend(checkpoint_json, "pan_scale", 1.0)


class DMCMixerError(ValueError, MixbridgeError):
    """A ``dmc`` mixer without weights, with a network that is not a DMC, or with too many tracks."""


class DMCMixer:
    """The ``dmc`` mixer (see the module docstring).

    Args:
        checkpoint: a ``dmc`` checkpoint (``NAME.json``, its weights or folder); default the shipped one.
        model: instead, a :class:`~mixbridge.models.dmc.DMC` object (e.g. untrained, for tests).
        prior_weight: the family prior's weight in the gains, 0..1 (module docstring, step 3); default the
            checkpoint record's.
        pan_scale: the factor on the network's pans, 0..1 (0: every track centred; module docstring, step 3);
            default the checkpoint record's.

    Raises:
        DMCMixerError: a ``prior_weight`` or ``pan_scale`` outside 0..1; (on the first call) no weights at the
            default path, or a network that is not a DMC.
        CheckpointError: (on the first call) see :func:`mixbridge.models.checkpoint.load_checkpoint`.
    """

    name = "dmc"

    def __init__(self, checkpoint: str | Path | None = None, model: Any = None,
                 prior_weight: float | None = None, pan_scale: float | None = None) -> None:
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        self._net = model
        self._source = self.checkpoint or (type(model).__name__ if model is not None else str(SHIPPED_CHECKPOINT))
        if prior_weight is not None and not 0.0 <= float(prior_weight) <= 1.0:
            raise DMCMixerError(f"prior_weight = {prior_weight}; give a weight in 0..1 (0: the network alone)")
        self._prior_weight = None if prior_weight is None else float(prior_weight)
        if pan_scale is not None and not 0.0 <= float(pan_scale) <= 1.0:
            raise DMCMixerError(f"pan_scale = {pan_scale}; give a factor in 0..1 (1: the network's pans, 0: centred)")
        self._pan_scale = None if pan_scale is None else float(pan_scale)
        if model is not None and checkpoint is None:   # a network object has no record to read them from
            self._prior_weight = 0.0 if self._prior_weight is None else self._prior_weight
            self._pan_scale = 1.0 if self._pan_scale is None else self._pan_scale
        self._prior: Any = None   # the prior mixer (its table), opened on the first blend

    def prior_weight(self) -> float:
        """The weight of the family prior in the gains (module docstring, step 3): the one given, else the
        checkpoint record's ``extra.prior_blend.weight`` (the shipped record's by default), else 0 (a
        network object, or a record without one). Reads the JSON only."""
        if self._prior_weight is None:
            self._prior_weight = record_prior_weight(self.checkpoint or SHIPPED_CHECKPOINT)
        return self._prior_weight

    def pan_scale(self) -> float:
        """The factor on the network's pans (module docstring, step 3): the one given, else the checkpoint
        record's ``extra.prior_blend.pan_scale``, else 1. Reads the JSON only."""
        if self._pan_scale is None:
            self._pan_scale = record_pan_scale(self.checkpoint or SHIPPED_CHECKPOINT)
        return self._pan_scale

    def blend_prior(self, stems: StemSet, audible: np.ndarray, rel_db: np.ndarray, weight: float) -> np.ndarray:
        """``rel_db [audible tracks]`` (mean 0) moved ``weight`` of the way to the prior table's family levels
        on the tracks that have a family entry, mean removed again (module docstring, step 3)."""
        from .prior_mixer import PriorMixer

        if weight <= 0.0:
            return rel_db
        if self._prior is None:
            self._prior = PriorMixer()
        keys = [k for k, a in zip(self._prior.stem_keys(stems), audible) if a]
        names = [s.name for s, a in zip(stems.stems, audible) if a]
        table = [self._prior.lookup(key, role, name) for (key, role), name in zip(keys, names)]
        known = np.array([src == "family" for _, _, src, _ in table])
        if not known.any():
            return rel_db
        tab = np.array([g for g, _, _, _ in table])
        prior = tab - tab[known].mean() + rel_db[known].mean()   # the prior on the network's level, known tracks
        out = np.where(known, (1.0 - weight) * rel_db + weight * prior, rel_db)
        return out - out.mean()

    def network(self):
        """The network, opened on first use (torch is imported here).

        Raises:
            DMCMixerError, CheckpointError: see the class docstring.
        """
        from .checkpoint import load_mixer_network

        self._net = load_mixer_network(self.checkpoint, "dmc", "dmc", TRAIN_HINT, error=DMCMixerError,
                                       model=self._net)
        return self._net

    def geometry(self) -> tuple[int, float, int, dict[str, int]]:
        """``(sample_rate, window_s, max_windows, feature settings)`` of the network the mixer runs."""
        net = self.network()
        return (net.sample_rate, net.window_s, net.max_windows,
                {"n_mels": net.n_mels, "n_fft": net.n_fft, "hop_length": net.hop_length})

    def run_network(self, features: np.ndarray) -> np.ndarray:
        """The network's normalised outputs float64 ``[tracks, 2]`` (0..1, :data:`OUTPUT_PARAMS` order)
        for ``features [tracks, n_mels, frames]`` (torch here; the ONNX runner overrides this)."""
        import torch

        with torch.no_grad():
            return self.network()(torch.from_numpy(np.ascontiguousarray(features))).double().numpy()

    def predict(self, stems: StemSet) -> dict[str, np.ndarray]:
        """The mixer's decision for ``stems`` in real units: ``{"trim_db", "gain_db", "pan", "lufs"}``
        (``[tracks]`` float64 each; ``gain_db`` relative, mean 0; ``lufs`` the loudness each trim levels,
        :func:`trim_lufs`: of the whole stem up to ``max_windows * window_s`` seconds, else of its windows
        or, when they do not represent it, of the whole stem).

        Raises:
            DMCMixerError: more than :data:`MAX_TRACKS` tracks. AudioInputError: no stems or bad audio.
        """
        from .dmc import OUTPUT_PARAMS

        n_tracks = len(stems.stems)
        if n_tracks < 1:
            raise AudioInputError("the dmc mixer needs at least one stem")
        if n_tracks > MAX_TRACKS:
            raise DMCMixerError(f"{n_tracks} tracks; the dmc mixer takes at most {MAX_TRACKS}; "
                                "submix some stems first")
        rate, window_s, max_windows, settings = self.geometry()
        mids, lufs, trims = [], [], []
        for s in stems.stems:
            if stems.sample_rate == rate:
                part = stem_windows(s, rate, window_s, max_windows)  # only the windows are read
                level = trim_lufs(part, rate, s.n_samples, s.blocks, s.channels)
            else:
                audio = np.asarray(resample(s.audio, stems.sample_rate, rate), dtype=np.float32)
                s.release()
                part = select_windows(audio, rate, window_s=window_s, max_windows=max_windows)
                level = trim_lufs(part, rate, audio.shape[-1], partial(iter, (audio,)), audio.shape[0])
                del audio
            trims.append(trim_db(level))
            lufs.append(level)
            mids.append(part.mean(axis=0) * np.float32(db_to_gain(trims[-1])))
        lufs_a = np.asarray(lufs, dtype=np.float64)
        audible = lufs_a > SILENT_LUFS
        trim = np.asarray(trims, dtype=np.float64)
        gain, pan = np.zeros(n_tracks), np.zeros(n_tracks)
        if audible.any():
            # Silent stems take no part: the network (and its context) sees the audible ones only, and
            # a silent stem stays at unity, centred. The stems of a set have one length, so their
            # windows too: one feature call for all.
            x = dmc_features(np.stack([m for m, a in zip(mids, audible) if a])[:, None], rate,
                             window_s=window_s, max_windows=max_windows, **settings)
            u = np.clip(self.run_network(x), 0.0, 1.0)
            vals = {name: np.array([param.from_normalised(float(v)) for v in u[:, i]])
                    for i, (name, param) in enumerate(OUTPUT_PARAMS)}
            g = vals["fader.fader_db"]
            gain[audible] = self.blend_prior(stems, audible, g - g.mean(), self.prior_weight())
            pan[audible] = self.pan_scale() * vals["pan.pan"]
        return {"trim_db": trim, "gain_db": gain, "pan": pan, "lufs": lufs_a}

    def __call__(self, stems: StemSet, *, seed: int = 0, target_lufs: float = -14.0,
                 source_base: Path | None = None) -> Session:
        """The session of ``stems`` (deterministic: the network is fixed), the master at ``target_lufs``.

        Raises:
            DMCMixerError, CheckpointError, AudioInputError: see :meth:`predict` and the class docstring.
        """
        d = self.predict(stems)
        notes: list[str] = []
        params = []
        for i, s in enumerate(stems.stems):
            if d["lufs"][i] <= SILENT_LUFS:
                notes.append(f"{s.name}: silent (in the part the network reads); no loudness trim")
            p = split_gain(float(d["trim_db"][i] + d["gain_db"][i]), notes, s.name)
            p["pan"] = {"pan": round(float(np.clip(d["pan"][i], -1.0, 1.0)), 4)}
            params.append(p)
        extra = {"mixer_model": self._source, "mixer_notes": notes,
                 "dmc": {"common_lufs": COMMON_LUFS, "prior_weight": self.prior_weight(),
                         "pan_scale": self.pan_scale(),
                         "gain_db": [round(float(g), 3) for g in d["gain_db"]]}}
        return build_session(stems, self.name, params, master_defaults(target_lufs), seed, source_base, extra)
