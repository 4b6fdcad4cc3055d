"""Demastering pairs: finished masters degraded by random processing (Khoo, DESIGN.md §2).

Each example takes a random clip of a finished stereo master (the target) and
degrades it; a model learns degraded -> master. Two modes:

* ``dsp`` (default, Khoo's recipe), each stage applied with its own probability,
  in this order, all parameters drawn uniformly in their scale. The stages are the
  schema's demastering processors (``mixbridge.schema.DEMASTER``: their own names,
  ranges and meanings, so no label shares a name with a console parameter of
  another range), each rendered by the one implementation of its concept:

  ======================  ================================================  ==============================
  stage                   parameters (range, scale)                         rendered by
  ======================  ================================================  ==============================
  ``demaster_eq``         ``centre_hz`` 60-12000 log, ``q`` 0.5-4 log,       :func:`bell_eq`: a Gaussian bell
                          ``gain_db`` -12..12                               in log-frequency per STFT frame
                                                                            (FWHM = the RBJ bandwidth of Q)
  ``demaster_compressor`` ``threshold_db`` -40..-5, ``ratio`` 1.5-10 log,    :func:`mixbridge.plugins.dynamics.compress`
                          ``knee_db`` 0-12, ``attack_ms`` 1-50 log,          (COMPRESSOR_SEMANTICS: linked peak
                          ``release_ms`` 20-500 log, ``makeup_db`` 0-12      detector, soft knee, 63 % times)
  ``demaster_reverb``     ``decay_s`` 0.2-3 log (RT60), ``return_db``        :func:`reverb_insert`: dry +
                          -30..-6                                           :func:`mixbridge.plugins.reverb.reverb`
                                                                            with this example's noise seed
  ``demaster_echo``       ``delay_ms`` 50-500 log, ``gain_db`` -24..-6       :func:`echo`: one delayed,
                                                                            attenuated copy
  ======================  ================================================  ==============================

* ``plugins``: the master goes through a processor chain of the schema
  (``eq, compressor, reverb`` by default) on the ``builtin`` or ``vst`` backend
  with random schema parameters, like :mod:`.effect`.

Stored per example (``N`` examples, ``S`` clip samples, ``F`` mel frames)::

    master, degraded          float32 [N, 2, S]   target and input, as decoded (never clipped:
                              Vorbis/Opus decodes can exceed full scale; see master_peak)
    params_real               float64 [N, P]      exact parameters (config param_names, e.g.
                                                  demaster_reverb.decay_s), the values rendered
    params_norm               float32 [N, P]      normalised 0..1
    applied                   uint8   [N, 4]      dsp: which stage fired (config processors)
    mel_db_master/_degraded   float32 [N, 128, F] mel power spectrograms in dB
    master_peak               float32 [N]         sample peak of the master clip (linear)
    ir_seed                   int64   [N]         seed of the reverb IR noise
                                                  (mixbridge.plugins.reverb.reverb_noise(c, n, ir_seed))
    index, seed, source_file, source_start_s

and ``images/<index>_master.png`` / ``_degraded.png``: the mel spectrograms as
images (magma, -100..0 dB, low frequencies at the bottom). Mel settings: 128 bands,
FFT 2048, hop 512, Hann window, HTK mel scale 0 Hz .. Nyquist, power scaled by
1/sum(window)^2 (a full-scale sine's bin reads about -6 dB).
"""
from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mixbridge import __version__
from mixbridge.mel import mel_filterbank
from mixbridge.plugins.dynamics import compress
from mixbridge.plugins.reverb import reverb
from mixbridge.schema import DEMASTER, Param

from .effect import plugin_fingerprint
from .errors import DatagenConfigError
from .job import Example, Job, Spec, example_rngs, register_job
from .params import (
    Dist,
    check_run_numbers,
    flat_params,
    parse_dists,
    renderable_limits,
    restrict_dists,
    sample_params,
)
from .sources import SourceSet

DEFAULT_CLIP_S = 5.0
DEFAULT_SHARD_SIZE = 16
#: The largest ``--shard-size`` (examples per shard; an example holds seconds of stereo audio and images).
MAX_SHARD_SIZE = 10000
N_MELS = 128
N_FFT = 2048
HOP = 512
#: Image colour range of the spectrogram PNGs, dB.
IMAGE_DB_RANGE = (-100.0, 0.0)
#: The dsp stages in order: the schema's ``DEMASTER`` chain.
STAGES: tuple[str, ...] = DEMASTER.processor_names
#: Probability that each dsp stage fires.
DEFAULT_STAGE_P = {"demaster_eq": 0.8, "demaster_compressor": 0.7, "demaster_reverb": 0.6, "demaster_echo": 0.4}

#: ``("demaster_eq.centre_hz", Param)``... in ``DEMASTER`` order: the dsp mode's labels.
DSP_PARAMS: tuple[tuple[str, Param], ...] = tuple(DEMASTER.flat_params())


# --------------------------------------------------------------------------- pure DSP
def bell_eq(x: np.ndarray, sample_rate: int, *, centre_hz: float, q: float, gain_db: float) -> np.ndarray:
    """Gaussian bell in log-frequency applied to every STFT frame of ``[channels, samples]``.

    The bell's full width at half maximum (in octaves) is the RBJ bandwidth of
    ``q``: BW = 2 asinh(1 / (2 q)) / ln 2. Hann STFT (N_FFT, hop N_FFT/4) and
    overlap-add resynthesis: a 0 dB bell returns the input (to float round-off).
    """
    from scipy.signal import istft, stft

    bw_oct = 2.0 * math.asinh(1.0 / (2.0 * q)) / math.log(2.0)
    sigma = bw_oct / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    n = x.shape[1]
    f, _, z = stft(x, fs=sample_rate, window="hann", nperseg=N_FFT, noverlap=N_FFT - N_FFT // 4, axis=-1)
    octaves = np.log2(np.maximum(f, 1.0) / centre_hz)
    gain = 10.0 ** (gain_db * np.exp(-0.5 * (octaves / sigma) ** 2) / 20.0)
    _, y = istft(z * gain[None, :, None], fs=sample_rate, window="hann", nperseg=N_FFT,
                 noverlap=N_FFT - N_FFT // 4)
    y = y[:, :n]
    if y.shape[1] < n:
        y = np.pad(y, ((0, 0), (0, n - y.shape[1])))
    return y.astype(np.float32)


def reverb_insert(x: np.ndarray, sample_rate: int, *, decay_s: float, return_db: float, seed: int) -> np.ndarray:
    """Dry + the reference reverb's wet return (no pre-delay) of ``[2, samples]``; float32.

    :func:`mixbridge.plugins.reverb.reverb` (REVERB_SEMANTICS: RT60 = ``decay_s``; wet energy =
    dry energy x 10^(return_db/10) for white noise independent on the two channels) with the
    noise realisation ``seed``, one per example, so that a model never sees one fixed IR.
    """
    wet = reverb(x, sample_rate, decay_s=decay_s, predelay_ms=0.0, return_db=return_db, seed=seed)
    return (x + wet).astype(np.float32)


def echo(x: np.ndarray, sample_rate: int, *, delay_ms: float, gain_db: float) -> np.ndarray:
    """Dry + one copy delayed by ``delay_ms`` at ``gain_db``."""
    d = int(round(delay_ms * sample_rate / 1000.0))
    y = x.copy()
    if d < x.shape[1]:
        y[:, d:] += x[:, : x.shape[1] - d] * np.float32(10 ** (gain_db / 20.0))
    return y


def mel_db(x: np.ndarray, sample_rate: int, fb: np.ndarray | None = None) -> np.ndarray:
    """Mel power spectrogram in dB of ``[channels, samples]`` (channels averaged): ``[128, frames]``.

    Centred frames (reflect padding), Hann window, FFT 2048, hop 512;
    frames = 1 + samples // 512.
    """
    fb = mel_filterbank(sample_rate, N_FFT, N_MELS) if fb is None else fb
    mono = x.astype(np.float64).mean(axis=0)
    padded = np.pad(mono, (N_FFT // 2, N_FFT // 2), mode="reflect")
    frames = 1 + (padded.size - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(frames)[:, None]
    win = np.hanning(N_FFT + 1)[:-1]
    spec = np.fft.rfft(padded[idx] * win, axis=1) / win.sum()
    power = (np.abs(spec) ** 2).T
    return (10.0 * np.log10(np.maximum(fb @ power, 1e-12))).astype(np.float32)


def mel_png(m_db: np.ndarray) -> bytes:
    """A mel spectrogram ``[bands, frames]`` as PNG bytes (magma, ``IMAGE_DB_RANGE``, low bands at the bottom)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import image

    buf = io.BytesIO()
    image.imsave(buf, m_db, cmap="magma", vmin=IMAGE_DB_RANGE[0], vmax=IMAGE_DB_RANGE[1], origin="lower",
                 format="png", metadata={"Software": None})  # type: ignore[dict-item]  # None drops the key
    return buf.getvalue()


# --------------------------------------------------------------------------- config and job
def demaster_config(source: str, *, mode: str = "dsp", backend: str = "builtin",
                    backend_options: Mapping[str, Any] | None = None, processors: Sequence[str] | None = None,
                    clip_s: float = DEFAULT_CLIP_S, sample_rate: int = 44100, seed: int = 0, n: int = 500,
                    param_specs: Sequence[str] | Mapping[str, str] = (), stage_p: Mapping[str, float] | None = None,
                    images: bool = True, shard_size: int | None = None) -> dict:
    """Config of a demastering dataset; scans and fingerprints the masters.

    Raises:
        AudioInputError: an empty or unreadable source folder.
        DatagenConfigError: a bad mode, clip length, stage probability or --param spec.
    """
    if mode not in ("dsp", "plugins"):
        raise DatagenConfigError(f"--mode {mode!r}: use dsp or plugins")
    if not 0.5 <= clip_s <= 60.0:
        raise DatagenConfigError(f"--clip-s {clip_s:g} is outside [0.5, 60] s")
    shard_size = check_run_numbers(n=n, seed=seed, sample_rate=sample_rate, shard_size=shard_size,
                                   default_shard_size=DEFAULT_SHARD_SIZE, max_shard_size=MAX_SHARD_SIZE)
    probs = dict(DEFAULT_STAGE_P, **(stage_p or {}))
    for k, v in probs.items():
        if k not in STAGES or not 0.0 <= v <= 1.0:
            raise DatagenConfigError(f"stage probability {k}={v}: stages are {', '.join(STAGES)}, p in [0, 1]")
    if mode == "dsp":
        params = list(DSP_PARAMS)
        procs = list(STAGES)
    else:
        procs = list(processors or ("eq", "compressor", "reverb"))
        params = flat_params(procs)
    dists = parse_dists(param_specs, params)
    limits = renderable_limits(backend, sample_rate, backend_options, params) if mode == "plugins" else {}
    dists = restrict_dists(backend, params, dists, limits, dists)
    src = SourceSet(source, min_duration_s=clip_s)
    return {
        "kind": "demaster", "mixbridge_version": __version__, "mode": mode, "n": int(n), "seed": int(seed),
        "sample_rate": int(sample_rate), "clip_samples": int(round(clip_s * sample_rate)), "channels": 2,
        "backend": backend if mode == "plugins" else "builtin", "backend_options": dict(backend_options or {}),
        "plugin_maps": plugin_fingerprint(backend, dict(backend_options or {}), procs) if mode == "plugins" else {},
        "processors": procs, "param_names": [p for p, _ in params], "param_units": [p.unit for _, p in params],
        "param_dists": {k: d.to_json() for k, d in sorted(dists.items())}, "renderable_ranges": limits,
        "stage_p": probs if mode == "dsp" else {}, "images": bool(images),
        "mel": {"n_mels": N_MELS, "n_fft": N_FFT, "hop": HOP, "scale": "htk", "window": "hann"},
        "shard_size": int(shard_size), "source_root": str(src.root.resolve()), "sources": src.fingerprint(),
    }


class DemasterJob(Job):
    """Demastering pairs (Khoo): a finished master's clip and its degraded version, with the labels.

    Shard arrays per example: ``master`` and ``degraded`` float32 ``[2, clip_samples]``,
    ``params_real`` float64 / ``params_norm`` float32 ``[n_params]``, ``applied`` uint8
    ``[len(STAGES)]`` (which stages fired, dsp mode), ``mel_db_master`` / ``mel_db_degraded``
    (dB, :data:`N_MELS` bands x frames of hop :data:`HOP`), ``master_peak``, ``ir_seed``,
    ``index``, ``seed``, ``source_file``, ``source_start_s`` (seconds); side files: the two
    mel images as PNG unless ``images`` is off.
    """

    kind = "demaster"
    finite_keys = ("master", "degraded", "mel_db_master", "mel_db_degraded")

    def __init__(self, config, faults=None):
        super().__init__(config, faults)
        self.mode = config["mode"]
        self.params = list(DSP_PARAMS) if self.mode == "dsp" else flat_params(config["processors"])
        self.dists = {k: Dist(**v) for k, v in config.get("param_dists", {}).items()}
        self.n_samples = int(config["clip_samples"])
        self.fb = mel_filterbank(self.sample_rate, N_FFT, N_MELS)

    def setup(self) -> None:
        """Open the masters and the backend; plugins mode loads each plugin once.

        Errors: those of :meth:`open_sources` and :meth:`make_backend`.
        """
        self.open_sources()
        # the backend renders in plugins mode; in dsp mode it only carries injected faults
        self.backend = self.make_backend()
        if self.mode == "plugins":
            self.warm_up(self.config["processors"], 2)

    def plan(self, index: int) -> Spec:
        """Draw the parameters, a stereo clip of a master, which stages fire and the reverb's IR seed."""
        r_params, r_clip, r_stage = example_rngs(self.seed, index, 3)
        nested, real, norm = sample_params(r_params, self.params, self.dists)
        master, where = self.sources.draw(r_clip, self.n_samples, self.sample_rate, 2)
        fire = r_stage.random(len(STAGES))
        applied = np.array([fire[i] < self.config["stage_p"].get(s, 1.0) for i, s in enumerate(STAGES)],
                           dtype=np.uint8) if self.mode == "dsp" else np.ones(len(STAGES), dtype=np.uint8)
        ir_seed = int(r_stage.integers(0, 2**63))
        stages = [s for s, a in zip(STAGES, applied) if a] if self.mode == "dsp" else list(self.config["processors"])
        return Spec(index, {"params": nested, "stages": stages, "source": where},
                    {"master": master, "real": real, "norm": norm, "applied": applied, "ir_seed": ir_seed,
                     "where": where})

    def degrade(self, master: np.ndarray, params: Mapping[str, Mapping[str, float]], stages: Sequence[str],
                ir_seed: int) -> np.ndarray:
        """Degrade ``master`` [2, samples] with the given stages and parameters (dsp or plugin chain)."""
        if self.mode == "plugins":
            from .effect import render_chain

            return render_chain(self.backend, stages, master, params)
        x = master
        if self.faults:  # run injected faults inside a "processor", as in the plugin path
            from mixbridge.schema import EQ

            self.need_backend().process("eq", x[:, :64], EQ.defaults())
        for s in stages:
            p: Mapping[str, Any] = params[s]
            if s == "demaster_eq":
                x = bell_eq(x, self.sample_rate, **p)
            elif s == "demaster_compressor":
                x = compress(x, self.sample_rate, **p)
            elif s == "demaster_reverb":
                x = reverb_insert(x, self.sample_rate, seed=ir_seed, **p)
            elif s == "demaster_echo":
                x = echo(x, self.sample_rate, **p)
            else:
                raise DatagenConfigError(f"unknown demastering stage '{s}'; known: {', '.join(STAGES)}")
        return x.astype(np.float32)

    def render(self, spec: Spec) -> Example:
        """Degrade the clip, then compute both mel spectrograms (and their PNGs)."""
        d = spec.data
        master = d["master"]
        degraded = self.degrade(master, spec.params["params"], spec.params["stages"], d["ir_seed"])
        m_master, m_degr = mel_db(master, self.sample_rate, self.fb), mel_db(degraded, self.sample_rate, self.fb)
        files = {}
        if self.config.get("images", True):
            files = {f"images/{spec.index:08d}_master.png": mel_png(m_master),
                     f"images/{spec.index:08d}_degraded.png": mel_png(m_degr)}
        return Example(spec.index, {
            "master": master, "degraded": degraded,
            "params_real": d["real"].astype(np.float64), "params_norm": d["norm"].astype(np.float32),
            "applied": d["applied"], "mel_db_master": m_master, "mel_db_degraded": m_degr,
            "master_peak": np.float32(np.abs(master).max()), "ir_seed": np.int64(d["ir_seed"]),
            "index": np.int64(spec.index), "seed": np.int64(self.seed),
            "source_file": np.int32(d["where"]["file_index"]), "source_start_s": np.float64(d["where"]["start_s"]),
        }, files)


register_job("demaster", DemasterJob)
