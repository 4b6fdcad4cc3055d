"""Demastering pairs: finished masters degraded by random processing (Khoo, DESIGN.md §2).

Each example takes a random clip of a finished stereo master (the target) and
degrades it; a model learns degraded -> master. Two modes:

* ``dsp`` (default, Khoo's recipe), each stage applied with its own probability,
  in this order, all parameters drawn uniformly in the scale given below:

  ===========  ==========================================================  =========
  stage        parameters (range, scale)                                   source
  ===========  ==========================================================  =========
  eq           ``centre_hz`` 60-12000 log, ``q`` 0.5-4 log, ``gain_db``    Khoo:
               -12..12: a Gaussian bell in log-frequency (FWHM = the RBJ    bell per
               bandwidth of that Q) applied to every STFT frame             frame
  compressor   ``threshold_db`` -40..-5, ``ratio`` 1.5-10 log,              threshold,
               ``knee_db`` 0-12, ``attack_ms`` 1-50 log, ``release_ms``      ratio, soft
               20-500 log, ``makeup_db`` 0-12 (Giannoulis et al. 2012       knee,
               soft-knee gain computer, peak detector, 32-sample blocks)    makeup
  reverb       ``rt60_s`` 0.2-3 log, ``wet_db`` -30..-6: stereo noise with  exponential
               an exponential decay of that RT60, added to the dry signal   IR
  echo         ``delay_ms`` 50-500 log, ``gain_db`` -24..-6: one delayed,   delayed,
               attenuated copy                                              attenuated
  ===========  ==========================================================  =========

* ``plugins``: the master goes through a processor chain of the schema
  (``eq, compressor, reverb`` by default) on the ``builtin`` or ``vst`` backend
  with random schema parameters, like :mod:`.effect`.

Stored per example (``N`` examples, ``S`` clip samples, ``F`` mel frames)::

    master, degraded          float32 [N, 2, S]   target and input, as decoded (never clipped:
                              Vorbis/Opus decodes can exceed full scale; see master_peak)
    params_real               float64 [N, P]      exact parameters (config param_names)
    params_norm               float32 [N, P]      normalised 0..1
    applied                   uint8   [N, 4]      dsp: which stage fired (config stages)
    mel_db_master/_degraded   float32 [N, 128, F] mel power spectrograms in dB
    master_peak               float32 [N]         sample peak of the master clip (linear)
    ir_seed                   int64   [N]         seed of the reverb IR noise (numpy default_rng)
    index, seed, source_file, source_start_s

and ``images/<index>_master.png`` / ``_degraded.png``: the mel spectrograms as
images (magma, -100..0 dB, low frequencies at the bottom). Mel settings: 128 bands,
FFT 2048, hop 512, Hann window, HTK mel scale 0 Hz .. Nyquist, power scaled by
1/sum(window)^2 (a full-scale sine's bin reads about -6 dB).
"""
from __future__ import annotations

import io
import math
from typing import Any, Mapping, Sequence

import numpy as np

from mixbridge import __version__
from mixbridge.schema import Param

from .errors import DatagenConfigError
from .effect import plugin_fingerprint
from .job import Example, Job, Spec, example_rngs, register_job
from .params import Dist, flat_params, parse_dists, sample_params
from .sources import SourceSet

DEFAULT_CLIP_S = 5.0
DEFAULT_SHARD_SIZE = 16
N_MELS = 128
N_FFT = 2048
HOP = 512
#: Image colour range of the spectrogram PNGs, dB.
IMAGE_DB_RANGE = (-100.0, 0.0)
STAGES = ("eq", "compressor", "reverb", "echo")
#: Probability that each dsp stage fires.
DEFAULT_STAGE_P = {"eq": 0.8, "compressor": 0.7, "reverb": 0.6, "echo": 0.4}
COMP_BLOCK = 32

DSP_PARAMS: tuple[tuple[str, Param], ...] = tuple((f"{stage}.{p.name}", p) for stage, p in (
    ("eq", Param("centre_hz", "Hz", 60.0, 12000.0, 1000.0, "log")),
    ("eq", Param("q", "", 0.5, 4.0, 1.0, "log")),
    ("eq", Param("gain_db", "dB", -12.0, 12.0, 0.0, "db")),
    ("compressor", Param("threshold_db", "dB", -40.0, -5.0, -20.0, "db")),
    ("compressor", Param("ratio", "", 1.5, 10.0, 4.0, "log")),
    ("compressor", Param("knee_db", "dB", 0.0, 12.0, 6.0, "db")),
    ("compressor", Param("attack_ms", "ms", 1.0, 50.0, 10.0, "log")),
    ("compressor", Param("release_ms", "ms", 20.0, 500.0, 100.0, "log")),
    ("compressor", Param("makeup_db", "dB", 0.0, 12.0, 0.0, "db")),
    ("reverb", Param("rt60_s", "s", 0.2, 3.0, 1.0, "log")),
    ("reverb", Param("wet_db", "dB", -30.0, -6.0, -18.0, "db")),
    ("echo", Param("delay_ms", "ms", 50.0, 500.0, 200.0, "log")),
    ("echo", Param("gain_db", "dB", -24.0, -6.0, -12.0, "db")),
))


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


def soft_knee_gain_db(level_db: np.ndarray, threshold_db: float, ratio: float, knee_db: float) -> np.ndarray:
    """Static gain (<= 0 dB) of a soft-knee compressor (Giannoulis, Massberg & Reiss, JAES 2012, eq. 4)."""
    over = level_db - threshold_db
    out = np.where(over <= -knee_db / 2, level_db, threshold_db + over / ratio)
    if knee_db > 0:
        knee = np.abs(over) < knee_db / 2
        out = np.where(knee, level_db + (1 / ratio - 1) * (over + knee_db / 2) ** 2 / (2 * knee_db), out)
    return out - level_db


def compress(x: np.ndarray, sample_rate: int, *, threshold_db: float, ratio: float, knee_db: float,
             attack_ms: float, release_ms: float, makeup_db: float) -> np.ndarray:
    """Feed-forward stereo-linked compressor on ``[channels, samples]``.

    Peak level per block of ``COMP_BLOCK`` samples, soft-knee gain computer, then
    attack/release smoothing of the gain (one-pole, branching) at block rate,
    linearly interpolated to samples; makeup gain last.
    """
    n = x.shape[1]
    nb = -(-n // COMP_BLOCK)
    pad = np.pad(np.abs(x).max(axis=0), (0, nb * COMP_BLOCK - n))
    level_db = 20 * np.log10(np.maximum(pad.reshape(nb, COMP_BLOCK).max(axis=1), 1e-9))
    target = soft_knee_gain_db(level_db, threshold_db, ratio, knee_db)
    block_s = COMP_BLOCK / sample_rate
    a_att = math.exp(-block_s / (attack_ms / 1000.0))
    a_rel = math.exp(-block_s / (release_ms / 1000.0))
    g = np.empty(nb)
    state = 0.0
    for i, t in enumerate(target.tolist()):
        a = a_att if t < state else a_rel
        state = a * state + (1 - a) * t
        g[i] = state
    centres = (np.arange(nb) + 0.5) * COMP_BLOCK
    gain_db = np.interp(np.arange(n), centres, g) + makeup_db
    return (x * (10 ** (gain_db / 20.0))[None, :]).astype(np.float32)


def exp_reverb(x: np.ndarray, sample_rate: int, rng: np.random.Generator, *, rt60_s: float, wet_db: float) -> np.ndarray:
    """Dry + wet: convolution with stereo Gaussian noise decaying 60 dB in ``rt60_s`` (unit-energy IR)."""
    from scipy.signal import fftconvolve

    length = int(min(rt60_s * 1.2, 4.0) * sample_rate)
    t = np.arange(length) / sample_rate
    ir = rng.standard_normal((x.shape[0], length)) * np.exp(-3.0 * math.log(10.0) * t / rt60_s)[None, :]
    ir /= np.sqrt((ir ** 2).sum(axis=1, keepdims=True))
    wet = fftconvolve(x, ir, axes=-1)[:, : x.shape[1]]
    return (x + wet * 10 ** (wet_db / 20.0)).astype(np.float32)


def echo(x: np.ndarray, sample_rate: int, *, delay_ms: float, gain_db: float) -> np.ndarray:
    """Dry + one copy delayed by ``delay_ms`` at ``gain_db``."""
    d = int(round(delay_ms * sample_rate / 1000.0))
    y = x.copy()
    if d < x.shape[1]:
        y[:, d:] += x[:, : x.shape[1] - d] * np.float32(10 ** (gain_db / 20.0))
    return y


def mel_filterbank(sample_rate: int, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """Triangular HTK-mel filters from 0 Hz to Nyquist: float64 ``[n_mels, n_fft // 2 + 1]`` (peak 1)."""
    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10 ** (np.asarray(m) / 2595.0) - 1.0)

    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(0.0, hz_to_mel(sample_rate / 2), n_mels + 2))
    fb = np.zeros((n_mels, freqs.size))
    for m in range(n_mels):
        lo, c, hi = edges[m], edges[m + 1], edges[m + 2]
        fb[m] = np.maximum(0.0, np.minimum((freqs - lo) / (c - lo), (hi - freqs) / (hi - c)))
    return fb


def mel_db(x: np.ndarray, sample_rate: int, fb: np.ndarray | None = None) -> np.ndarray:
    """Mel power spectrogram in dB of ``[channels, samples]`` (channels averaged): ``[128, frames]``.

    Centred frames (reflect padding), Hann window, FFT 2048, hop 512;
    frames = 1 + samples // 512.
    """
    fb = mel_filterbank(sample_rate) if fb is None else fb
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
                 format="png", metadata={"Software": None})
    return buf.getvalue()


# --------------------------------------------------------------------------- config and job
def demaster_config(source: str, *, mode: str = "dsp", backend: str = "builtin",
                    backend_options: Mapping[str, Any] | None = None, processors: Sequence[str] | None = None,
                    clip_s: float = DEFAULT_CLIP_S, sample_rate: int = 44100, seed: int = 0, n: int = 500,
                    param_specs: Sequence[str] | Mapping[str, str] = (), stage_p: Mapping[str, float] | None = None,
                    images: bool = True, shard_size: int = DEFAULT_SHARD_SIZE) -> dict:
    """Config of a demastering dataset; scans and fingerprints the masters.

    Raises:
        AudioInputError: an empty or unreadable source folder.
        DatagenConfigError: a bad mode, clip length, stage probability or --param spec.
    """
    if mode not in ("dsp", "plugins"):
        raise DatagenConfigError(f"--mode {mode!r}: use dsp or plugins")
    if not 0.5 <= clip_s <= 60.0:
        raise DatagenConfigError(f"--clip-s {clip_s:g} is outside [0.5, 60] s")
    if not 1 <= shard_size <= 10000:
        raise DatagenConfigError(f"--shard-size {shard_size} is outside [1, 10000]")
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
    src = SourceSet(source, min_duration_s=clip_s)
    return {
        "kind": "demaster", "mixbridge_version": __version__, "mode": mode, "n": int(n), "seed": int(seed),
        "sample_rate": int(sample_rate), "clip_samples": int(round(clip_s * sample_rate)), "channels": 2,
        "backend": backend if mode == "plugins" else "builtin", "backend_options": dict(backend_options or {}),
        "plugin_maps": plugin_fingerprint(backend, dict(backend_options or {}), procs) if mode == "plugins" else {},
        "processors": procs, "param_names": [p for p, _ in params], "param_units": [p.unit for _, p in params],
        "param_dists": {k: d.to_json() for k, d in sorted(dists.items())},
        "stage_p": probs if mode == "dsp" else {}, "images": bool(images),
        "mel": {"n_mels": N_MELS, "n_fft": N_FFT, "hop": HOP, "scale": "htk", "window": "hann"},
        "shard_size": int(shard_size), "source_root": str(src.root.resolve()), "sources": src.fingerprint(),
    }


class DemasterJob(Job):
    kind = "demaster"
    finite_keys = ("master", "degraded", "mel_db_master", "mel_db_degraded")

    def __init__(self, config, faults=None):
        super().__init__(config, faults)
        self.mode = config["mode"]
        self.params = list(DSP_PARAMS) if self.mode == "dsp" else flat_params(config["processors"])
        self.dists = {k: Dist(**v) for k, v in config.get("param_dists", {}).items()}
        self.n_samples = int(config["clip_samples"])
        self.fb = mel_filterbank(self.sample_rate)

    def setup(self) -> None:
        self.sources = SourceSet.from_fingerprint(self.config["source_root"], self.config["sources"])
        # the backend renders in plugins mode; in dsp mode it only carries injected faults
        self.backend = self.make_backend()
        if self.mode == "plugins":
            self.warm_up(self.config["processors"], 2)

    def plan(self, index: int) -> Spec:
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

            self.backend.process("eq", x[:, :64], EQ.defaults())
        for s in stages:
            p = params[s]
            if s == "eq":
                x = bell_eq(x, self.sample_rate, **p)
            elif s == "compressor":
                x = compress(x, self.sample_rate, **p)
            elif s == "reverb":
                x = exp_reverb(x, self.sample_rate, np.random.default_rng(ir_seed), **p)
            elif s == "echo":
                x = echo(x, self.sample_rate, **p)
        return x.astype(np.float32)

    def render(self, spec: Spec) -> Example:
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
