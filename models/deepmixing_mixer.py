"""The ``deepmixing`` mixer: a trained :mod:`DeepMixing <mixbridge.models.deepmixing>` network writes fader automation.

``DeepMixingMixer()`` opens the shipped weights ``models/mixers/deepmixing.safetensors`` + ``.json``;
``checkpoint=PATH`` opens another (a run's ``best.json``), ``model=`` takes a network object (tests).

For each call the mixer

1. resamples the stems to the network's rate when they differ (features only) and trims every audible
   stem to :data:`~mixbridge.models.dmc_mixer.COMMON_LUFS` by its whole-stem integrated loudness
   (BS.1770-4; the composer dataset's convention, as the ``dmc`` mixer does); silent stems take no
   part, stay at unity and get no automation;
2. runs the network on the trimmed stems and takes the Dirichlet mean ``a_ti`` per chunk of
   ``chunk_s`` seconds (400 ms for the shipped weights) as the track gains, in dB relative to the mean
   over the tracks (:func:`~mixbridge.models.deepmixing.gains_to_db`): ``g_ti``;
3. writes, per audible track, the static gain ``trim_i + mean_t g_ti`` over trim and fader, the trim
   first (:func:`~mixbridge.models.mix_session.split_gain` with ``first="trim"``: the fader stays near 0 dB,
   pushable to a DAW) and the **fader automation**
   ``Track.automation["fader.fader_db"]``: one point per chunk at its centre ``(t + 1/2) chunk_s`` (s),
   value ``fader_i + g_ti - mean_t g_ti`` dB (piecewise linear between points, the first and last
   held: :func:`mixbridge.plugins.backend.automation_curve`), clamped to the fader's -48..+12 dB
   with a note when it had to be.

The time resolution (``chunk_s``) is recorded in the provenance (``deepmixing.chunk_s``). Importing
this module imports no torch.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mixbridge.audio import StemSet, resample
from mixbridge.errors import AudioInputError, MixbridgeError
from mixbridge.loudness import SILENT_LUFS, db_to_gain, integrated_lufs
from mixbridge.schema import CHANNEL_STRIP
from mixbridge.session import Automation, Session

from .dmc_mixer import COMMON_LUFS, trim_db
from .mix_session import build_session, master_defaults, split_gain

#: The shipped weights (``deepmixing.json`` + ``deepmixing.safetensors`` + the card ``deepmixing.md``).
SHIPPED_CHECKPOINT = Path(__file__).resolve().parent / "mixers" / "deepmixing.json"
#: How to train the weights (quoted when they are missing).
TRAIN_HINT = ("mixbridge train deepmixing --method pg --data COMPOSER_DATASET --config models/configs/deepmixing.yaml "
              "-o RUN_DIR")
#: The most tracks one call takes.
MAX_TRACKS = 256
#: Decimals of the emitted automation values (dB) and times (s).
VALUE_DECIMALS, TIME_DECIMALS = 3, 6


class DeepMixingMixerError(ValueError, MixbridgeError):
    """A ``deepmixing`` mixer without weights, with a network that is not DeepMixing, or with too many tracks."""


class DeepMixingMixer:
    """The ``deepmixing`` mixer (see the module docstring).

    Args:
        checkpoint: a ``deepmixing`` checkpoint (``NAME.json``); default the shipped one.
        model: instead, a :class:`~mixbridge.models.deepmixing.DeepMixing` object (e.g. untrained, for tests).

    Raises:
        DeepMixingMixerError: (on the first call) no shipped weights, or a network that is not DeepMixing.
        CheckpointError: (on the first call) see :func:`mixbridge.models.checkpoint.load_checkpoint`.
    """

    name = "deepmixing"

    def __init__(self, checkpoint: str | Path | None = None, model: Any = None) -> None:
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        self._net = model
        self._source = self.checkpoint or (type(model).__name__ if model is not None else str(SHIPPED_CHECKPOINT))

    def network(self):
        """The network, opened on first use (torch is imported here).

        Raises:
            DeepMixingMixerError, CheckpointError: see the class docstring.
        """
        from .checkpoint import load_mixer_network

        self._net = load_mixer_network(self.checkpoint, self.name, "deepmixing", TRAIN_HINT,
                                       error=DeepMixingMixerError, model=self._net)
        return self._net

    def predict(self, stems: StemSet) -> dict[str, Any]:
        """The decision for ``stems``: ``{"trim_db" [T], "gain_db" [T, K] (relative per chunk, 0 for silent
        stems), "lufs" [T], "chunk_s", "audible" [T] bool}`` (float64 arrays).

        Raises:
            DeepMixingMixerError: more than :data:`MAX_TRACKS` tracks. AudioInputError: no stems or bad audio.
        """
        import torch

        from .deepmixing import chunk_count

        n_tracks = len(stems.stems)
        if n_tracks < 1:
            raise AudioInputError("the deepmixing mixer needs at least one stem")
        if n_tracks > MAX_TRACKS:
            raise DeepMixingMixerError(f"{n_tracks} tracks; the deepmixing mixer takes at most {MAX_TRACKS}; "
                                       "submix some stems first")
        net = self.network()
        rate = net.sample_rate
        audios, lufs = [], []
        for s in stems.stems:
            a = np.asarray(s.audio, dtype=np.float32)
            if stems.sample_rate != rate:
                a = np.asarray(resample(a, stems.sample_rate, rate), dtype=np.float32)
            level = integrated_lufs(a, rate)
            lufs.append(level)
            audios.append(a.mean(axis=0, keepdims=True) * np.float32(db_to_gain(trim_db(level))))
        lufs_a = np.asarray(lufs, dtype=np.float64)
        audible = lufs_a > SILENT_LUFS
        trim = np.asarray([trim_db(v) for v in lufs])
        k = chunk_count(min(a.shape[-1] for a in audios), rate, net.chunk_s)
        gain = np.zeros((n_tracks, k))
        if audible.any():
            n = min(a.shape[-1] for a in audios)
            x = np.stack([a[:, :n] for a, keep in zip(audios, audible) if keep])
            f = net.features(x, rate)
            from .deepmixing import gains_to_db

            with torch.no_grad():
                alpha = net(torch.from_numpy(f["track_db"]), torch.from_numpy(f["mix_mfcc"]))
                g = gains_to_db(net.mean_gains(alpha).double()).numpy()  # [K, audible]
            gain[audible] = g.T
        return {"trim_db": trim, "gain_db": gain, "lufs": lufs_a, "chunk_s": net.chunk_s, "audible": audible}

    def __call__(self, stems: StemSet, *, seed: int = 0, target_lufs: float = -14.0,
                 source_base: Path | None = None) -> Session:
        """The session of ``stems`` with fader automation (deterministic: the Dirichlet mean), the master at
        ``target_lufs``.

        Raises:
            DeepMixingMixerError, CheckpointError, AudioInputError: see :meth:`predict` and the class docstring.
        """
        d = self.predict(stems)
        fp = CHANNEL_STRIP.param("fader.fader_db")
        notes: list[str] = []
        params: list[dict] = []
        curves: list[list[float] | None] = []
        times = [round((i + 0.5) * d["chunk_s"], TIME_DECIMALS) for i in range(d["gain_db"].shape[1])]
        for i, s in enumerate(stems.stems):
            if not d["audible"][i]:
                notes.append(f"{s.name}: silent; no loudness trim and no automation")
                params.append({})
                curves.append(None)
                continue
            g = d["gain_db"][i]
            p = split_gain(float(d["trim_db"][i] + g.mean()), notes, s.name, first="trim")
            values = p["fader"]["fader_db"] + g - g.mean()
            if values.min() < fp.min or values.max() > fp.max:
                notes.append(f"{s.name}: automation {values.min():+.1f}..{values.max():+.1f} dB clamped to the "
                             f"fader's {fp.min:g}..{fp.max:+g} dB")
            params.append(p)
            curves.append([round(float(v), VALUE_DECIMALS) for v in np.clip(values, fp.min, fp.max)])
        extra = {"mixer_model": self._source, "mixer_notes": notes,
                 "deepmixing": {"common_lufs": COMMON_LUFS, "chunk_s": d["chunk_s"],
                                "automation": "fader.fader_db, one point per chunk at its centre (dB)"}}
        session = build_session(stems, self.name, params, master_defaults(target_lufs), seed, source_base, extra)
        for track, values in zip(session.tracks, curves):
            if values is not None:
                track.automation["fader.fader_db"] = Automation(list(times), values)
        return session.validate()

