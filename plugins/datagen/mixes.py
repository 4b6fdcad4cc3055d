"""Random console mixes: random sessions of real multitracks and their rendered mixes.

The data for training mixing models without human mixes (Diff-MST's "method 1",
DESIGN.md §2): each example picks a song and a clip window, draws a channel
strip for every track (the schema's ``channel_strip``) and the master reverb
bus, renders the console (:func:`mixbridge.plugins.console.render_console`) and
stores the mix with the session and its parameters.

Parameter ranges default to a "plausible mix" subset of the schema, uniform in
each parameter's scale (override any with ``--param``); ``MIX_DEFAULT_SPECS``:
faders -12..+6 dB, pan -1..1, EQ gains +-6 dB, threshold -30..0 dB, ratio 1-6,
makeup 0-6 dB, sends -50..-10 dB; trim 0 dB, polarity and mute off. Other
parameters span their schema range, cut to what the backend renders as requested
(config ``renderable_ranges``); an example the backend refuses or renders with
another value fails as ``unrenderable`` instead of being stored.

Stored per example (``N`` examples, ``T`` = most tracks of any song, ``P`` strip params)::

    mix               float32 [N, 2, S]    the console's stereo mix (tracks + reverb return)
    params_real       float64 [N, T, P]    real units (config param_names); NaN rows past the song's tracks
    params_norm       float32 [N, T, P]    normalised 0..1; NaN padded likewise
    track_mask        uint8   [N, T]       1 for a real track
    master_params_real/norm [N, 3]         the reverb bus (decay_s, predelay_ms, return_db)
    session_json      str     [N]          the session file (v1) of the example; its provenance
                                           holds the clip window (start_s, duration_s)
    song, clip_start_s, index, seed
    stems             float32 [N, T, 2, S] only with --store-stems (the clipped tracks)
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mixbridge import __version__
from mixbridge.schema import CHANNEL_STRIP, MASTER_BUS, REVERB

from .effect import plugin_fingerprint
from .errors import DatagenConfigError
from .job import Example, Job, Spec, example_rngs, register_job
from .params import Dist, check_run_numbers, parse_dists, renderable_limits, restrict_dists, sample_params
from .sources import conform_channels

DEFAULT_CLIP_S = 5.0
DEFAULT_SHARD_SIZE = 16
#: The largest ``--shard-size`` (examples per shard).
MAX_SHARD_SIZE = 10000
MIX_DEFAULT_SPECS = {
    "trim.gain_db": "fixed:0", "polarity.invert": "fixed:0", "fader.mute": "fixed:0",
    "fader.fader_db": "uniform:-12:6",
    "eq.low_shelf_gain_db": "uniform:-6:6", "eq.peak1_gain_db": "uniform:-6:6", "eq.peak2_gain_db": "uniform:-6:6",
    "eq.peak3_gain_db": "uniform:-6:6", "eq.high_shelf_gain_db": "uniform:-6:6",
    "compressor.threshold_db": "uniform:-30:0", "compressor.ratio": "uniform:1:6",
    "compressor.makeup_db": "uniform:0:6", "send.send_db": "uniform:-50:-10",
}
STRIP_PARAMS = CHANNEL_STRIP.flat_params()
BUS_PARAMS = [(f"reverb.{p.name}", p) for p in REVERB.params]
#: A clip whose mix of raw stems peaks below this is redrawn (up to MAX_CLIP_DRAWS times).
SILENT_CLIP_PEAK = 1e-3
MAX_CLIP_DRAWS = 8


def _read(path: Path, start_s: float, n_samples: int, sample_rate: int) -> np.ndarray:
    """``n_samples`` at ``sample_rate`` Hz from ``start_s`` s of one stem, float32 ``[channels, n_samples]``.

    Read through :func:`mixbridge.audio.read_audio` (the frames checked against the header: a
    truncated stem is an error, never zeros); past the stem's end (rounding of a resampled
    clip) the clip is zero-padded.

    Raises:
        AudioInputError: an unreadable, truncated or multichannel stem (named).
    """
    from mixbridge.audio import AudioReader, resample

    with AudioReader(path) as reader:
        rate = reader.sample_rate
        start = int(round(start_s * rate))
        want = n_samples if rate == sample_rate else int(np.ceil(n_samples * rate / sample_rate)) + 64
        data = reader.read(start, want)
    audio = resample(data, rate, sample_rate)[:, :n_samples]
    if audio.shape[1] < n_samples:
        audio = np.pad(audio, ((0, 0), (0, n_samples - audio.shape[1])))
    return audio.astype(np.float32)


def mixes_config(multitracks: str, *, layout: str = "folders", backend: str = "builtin",
                 backend_options: Mapping[str, Any] | None = None, clip_s: float = DEFAULT_CLIP_S,
                 sample_rate: int = 44100, seed: int = 0, n: int = 1000,
                 param_specs: Sequence[str] | Mapping[str, str] = (), store_stems: bool = False,
                 shard_size: int | None = None) -> dict:
    """Config of a random-mix dataset; loads the layout and fingerprints every stem.

    Raises:
        AudioInputError / LayoutError: no songs, unreadable stems (named).
        DatagenConfigError: a bad clip length or --param spec.
    """
    from mixbridge.audio import AudioReader
    from mixbridge.checksum import sha256_file
    from mixbridge.errors import AudioInputError

    from ..layouts import load_layout

    if not 0.5 <= clip_s <= 120.0:  # also refuses NaN
        raise DatagenConfigError(f"--clip-s {clip_s:g} is outside [0.5, 120] s")
    shard_size = check_run_numbers(n=n, seed=seed, sample_rate=sample_rate, shard_size=shard_size,
                                   default_shard_size=DEFAULT_SHARD_SIZE, max_shard_size=MAX_SHARD_SIZE)
    songs = load_layout(multitracks, layout)
    root = Path(multitracks).resolve()
    specs = dict(MIX_DEFAULT_SPECS)
    user = dict(param_specs.items()) if isinstance(param_specs, Mapping) else dict(
        s.split("=", 1) for s in param_specs if "=" in s)
    bad = [s for s in (param_specs if not isinstance(param_specs, Mapping) else []) if "=" not in s]
    if bad:
        raise DatagenConfigError(f"--param {bad[0]}: use NAME=fixed:V or NAME=uniform:LO:HI")
    specs.update(user)
    strip_specs = {k: v for k, v in specs.items() if not k.startswith("reverb.")}
    bus_specs = {k: v for k, v in specs.items() if k.startswith("reverb.")}
    dists = parse_dists(strip_specs, STRIP_PARAMS)
    bus_dists = parse_dists(bus_specs, BUS_PARAMS)
    limits = renderable_limits(backend, sample_rate, backend_options, STRIP_PARAMS + BUS_PARAMS)
    strip_limits = {k: v for k, v in limits.items() if not k.startswith("reverb.")}
    dists = restrict_dists(backend, STRIP_PARAMS, dists, strip_limits, user)
    bus_limits = {k: v for k, v in limits.items() if k not in strip_limits}
    bus_dists = restrict_dists(backend, BUS_PARAMS, bus_dists, bus_limits, user)
    out_songs: list[dict[str, Any]] = []
    for s in songs:
        stems: list[dict[str, Any]] = []
        for name, path in sorted(s.stems.items()):
            with AudioReader(path) as info:  # refuses unreadable, truncated and multichannel stems (named)
                pass
            stems.append({"name": name, "path": str(Path(path).resolve().relative_to(root)) if
                          Path(path).resolve().is_relative_to(root) else str(Path(path).resolve()),
                          "role": s.roles.get(name), "frames": int(info.frames), "sample_rate": int(info.sample_rate),
                          "channels": int(info.channels), "sha256": sha256_file(path)})
        duration = min(st["frames"] / st["sample_rate"] for st in stems)
        if duration >= clip_s:
            out_songs.append({"name": s.name, "duration_s": duration, "stems": stems})
    if not out_songs:
        raise AudioInputError(f"{multitracks}: no song is at least {clip_s:g} s long; give longer multitracks "
                              "or a shorter --clip-s")
    return {
        "kind": "mixes", "mixbridge_version": __version__, "layout": layout, "n": int(n), "seed": int(seed),
        "sample_rate": int(sample_rate), "clip_samples": int(round(clip_s * sample_rate)), "channels": 2,
        "backend": backend, "backend_options": dict(backend_options or {}),
        "plugin_maps": plugin_fingerprint(backend, dict(backend_options or {}), ("eq", "compressor", "reverb")),
        "param_names": [p for p, _ in STRIP_PARAMS], "param_units": [p.unit for _, p in STRIP_PARAMS],
        "master_param_names": [p for p, _ in BUS_PARAMS],
        "param_dists": {k: d.to_json() for k, d in sorted(dists.items())},
        "master_param_dists": {k: d.to_json() for k, d in sorted(bus_dists.items())},
        "renderable_ranges": limits,
        "max_tracks": max(len(s["stems"]) for s in out_songs), "store_stems": bool(store_stems),
        "shard_size": int(shard_size), "source_root": str(root), "songs": out_songs,
    }


class MixesJob(Job):
    """Random console sessions of one song's clipped stems, rendered to a stereo mix.

    Shard arrays per example (``T`` = the largest song's track count; missing tracks are NaN
    with ``track_mask`` 0): ``mix`` float32 ``[2, clip_samples]``, ``params_real`` float64 and
    ``params_norm`` float32 ``[T, n_strip_params]``, ``track_mask`` uint8 ``[T]``,
    ``master_params_real/norm`` ``[n_bus_params]``, ``session_json`` (the replayable session),
    ``song``, ``clip_start_s`` (seconds), ``index``, ``seed``; with ``store_stems`` also
    ``stems`` float32 ``[T, 2, clip_samples]``.
    """

    kind = "mixes"
    finite_keys = ("mix", "stems")

    def __init__(self, config, faults=None):
        super().__init__(config, faults)
        self.dists = {k: Dist(**v) for k, v in config.get("param_dists", {}).items()}
        self.bus_dists = {k: Dist(**v) for k, v in config.get("master_param_dists", {}).items()}
        self.root = Path(config["source_root"])
        self.n_samples = int(config["clip_samples"])
        self.T = int(config["max_tracks"])

    def setup(self) -> None:
        """Open the backend and load its EQ, compressor and reverb once (errors: :meth:`make_backend`)."""
        self.backend = self.make_backend()
        self.warm_up(("eq", "compressor", "reverb"), 2)

    def plan(self, index: int) -> Spec:
        """Draw a song, a clip that is not silent, and every strip's and the bus's parameters."""
        r_song, r_params = example_rngs(self.seed, index, 2)
        songs = self.config["songs"]
        for _ in range(MAX_CLIP_DRAWS):
            si = int(r_song.integers(len(songs)))
            song = songs[si]
            start_s = round(float(r_song.uniform(0.0, song["duration_s"] - self.n_samples / self.sample_rate)), 6)
            clips = {st["name"]: _read(self.root / st["path"], start_s, self.n_samples, self.sample_rate)
                     for st in song["stems"]}
            if max(float(np.abs(c).max()) for c in clips.values()) > SILENT_CLIP_PEAK:
                break
        tracks = []
        for st in song["stems"]:
            nested, real, norm = sample_params(r_params, STRIP_PARAMS, self.dists)
            tracks.append((st, nested, real, norm))
        bus, bus_real, bus_norm = sample_params(r_params, BUS_PARAMS, self.bus_dists)
        params = {"tracks": {st["name"]: nested for st, nested, _, _ in tracks}, "master": bus}
        return Spec(index, {"params": params, "song": song["name"], "clip_start_s": start_s},
                    {"song": si, "start_s": start_s, "clips": clips, "tracks": tracks, "bus": bus,
                     "bus_real": bus_real, "bus_norm": bus_norm})

    def session(self, spec: Spec):
        """The example's :class:`~mixbridge.session.Session` (sources relative to the multitrack root)."""
        from mixbridge.session import Master, Session, Track

        d = spec.data
        tracks = [Track(st["name"], st["path"], CHANNEL_STRIP.validate(nested, f"track '{st['name']}'"),
                        role=st.get("role")) for st, nested, _, _ in d["tracks"]]
        master = MASTER_BUS.defaults()
        master["reverb"] = dict(d["bus"]["reverb"])
        prov = {"generator": "mixbridge datagen mixes", "mixbridge_version": __version__, "seed": self.seed,
                "index": spec.index, "song": spec.params["song"],
                "clip": {"start_s": d["start_s"], "duration_s": self.n_samples / self.sample_rate},
                "inputs": {st["path"]: st["sha256"] for st, _, _, _ in d["tracks"]}}
        return Session(self.sample_rate, tracks, Master(MASTER_BUS.validate(master, "master")), prov, self.root)

    def render(self, spec: Spec) -> Example:
        """Render the example's session with :func:`~mixbridge.plugins.console.render_console`."""
        from mixbridge.plugins.console import render_console

        d = spec.data
        session = self.session(spec)
        render = render_console(session, self.need_backend(), audio=d["clips"])
        P = len(STRIP_PARAMS)
        real = np.full((self.T, P), np.nan)
        norm = np.full((self.T, P), np.nan, dtype=np.float32)
        mask = np.zeros(self.T, dtype=np.uint8)
        for t, (_, _, r, n_) in enumerate(d["tracks"]):
            real[t], norm[t], mask[t] = r, n_, 1
        arrays = {
            "mix": render.mix.astype(np.float32), "params_real": real, "params_norm": norm, "track_mask": mask,
            "master_params_real": d["bus_real"].astype(np.float64),
            "master_params_norm": d["bus_norm"].astype(np.float32),
            "session_json": np.array(json.dumps(session.to_json(), sort_keys=True)),
            "song": np.int32(d["song"]), "clip_start_s": np.float64(d["start_s"]),
            "index": np.int64(spec.index), "seed": np.int64(self.seed),
        }
        if self.config.get("store_stems"):
            stems = np.zeros((self.T, 2, self.n_samples), dtype=np.float32)
            for t, st in enumerate(d["tracks"]):
                stems[t] = conform_channels(d["clips"][st[0]["name"]], 2)
            arrays["stems"] = stems
        return Example(spec.index, arrays)


register_job("mixes", MixesJob)
