"""Paired effect data: random source patches through a processor chain with dense random parameters.

Each example (DESIGN.md §2, neural proxies): a random patch of ``patch_samples``
from the source audio (silent patches redrawn), augmented (:mod:`.augment`),
rendered through the chain by the chosen backend (``builtin`` reference DSP or
``vst`` real plugins) with parameters drawn uniformly in each parameter's schema
scale (:mod:`.params`), inside the range the backend renders as requested
(``Backend.renderable_range``; config ``renderable_ranges``). An example whose
render the backend refused or changed fails as ``unrenderable``: the stored
parameters are the rendered ones. Stored per example (shard arrays, ``N`` examples)::

    input        float32 [N, channels, samples]   the augmented patch
    output       float32 [N, channels, samples]   the chain's output
    params_real  float64 [N, P]                   real units (config ``param_names``), exact
    params_norm  float32 [N, P]                   normalised 0..1 in the schema scale
    aug_applied  uint8   [N, 6]                   which augmentation fired (``AUG_NAMES``)
    aug_values   float32 [N, 6]                   its value (dB, dBFS, fraction)
    index        int64   [N]                      example index
    seed         int64   [N]                      the dataset seed (examples draw from
                                                  SeedSequence([seed, index]))
    source_file  int32   [N]                      index into config ``sources``
    source_start_s float64 [N]                    patch start in that file, seconds

Chains are named (``--chain``) or given as a comma list of processors; the
reverb is an insert here: output = dry + wet return (``return_db`` sets the wet
level), mono datasets take the mean of the stereo wet return.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mixbridge import __version__

from .augment import AUG_NAMES, Augmentations, augment
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

#: Named effect chains (``--chain``); the thesis chain is ``eq_comp_reverb``.
CHAINS: dict[str, tuple[str, ...]] = {
    "eq": ("eq",),
    "compressor": ("compressor",),
    "reverb": ("reverb",),
    "limiter": ("limiter",),
    "eq_comp": ("eq", "compressor"),
    "eq_comp_reverb": ("eq", "compressor", "reverb"),
    "master": ("eq", "compressor", "limiter"),
}
DEFAULT_PATCH_S = 1.48
DEFAULT_SHARD_SIZE = 64
#: The largest ``--shard-size`` (examples per shard).
MAX_SHARD_SIZE = 100000


def resolve_chain(chain: str) -> tuple[str, ...]:
    """A chain name or ``"eq,compressor"`` to a tuple of processors.

    Raises:
        DatagenConfigError: unknown name or processor (the message lists them).
    """
    if chain in CHAINS:
        return CHAINS[chain]
    from .params import PROCESSORS

    procs = tuple(p.strip() for p in chain.split(",") if p.strip())
    if not procs or any(p not in PROCESSORS for p in procs):
        raise DatagenConfigError(f"unknown chain '{chain}'; named chains: {', '.join(CHAINS)}, "
                                 f"or a comma list of {', '.join(PROCESSORS)}")
    return procs


def plugin_map_processors(maps: Sequence[str]) -> tuple[list[str], dict]:
    """Processors and ``vst`` backend options for plugin maps given in chain order.

    Returns ``(processors, {"maps": {processor: map}})``.

    Raises:
        UnknownNameError / PluginMapError: an unknown or invalid map.
        DatagenConfigError: two maps for the same processor.
    """
    from mixbridge.plugins.map_loader import load_map

    procs: list[str] = []
    chosen: dict[str, str] = {}
    for m in maps:
        pm = load_map(m)
        if pm.processor in chosen:
            raise DatagenConfigError(f"--plugin {m}: a second map for processor '{pm.processor}' "
                                     f"(already {chosen[pm.processor]}); give one map per processor")
        procs.append(pm.processor)
        chosen[pm.processor] = str(Path(m).resolve()) if Path(m).suffix == ".json" else str(m)
    return procs, {"maps": chosen}


def plugin_fingerprint(backend: str, options: Mapping[str, Any], processors: Sequence[str]) -> dict:
    """For the ``vst`` backend: ``{processor: {map, sha256 of the map file}}`` (part of the dataset identity)."""
    if backend != "vst":
        return {}
    from mixbridge.checksum import sha256_file
    from mixbridge.plugins.map_loader import load_map
    from mixbridge.plugins.pluginmap import DEFAULT_MAPS

    out = {}
    for proc in processors:
        if proc not in DEFAULT_MAPS:
            continue
        name = dict(options.get("maps", {})).get(proc, DEFAULT_MAPS[proc])
        pm = load_map(name)
        out[proc] = {"map": pm.name, "sha256": sha256_file(pm.path) if pm.path else "sha256:",
                     "plugins": sorted(s.identity.name for s in pm.plugins.values()),
                     "deterministic": bool(pm.deterministic)}
    return out


def render_chain(backend, processors: Sequence[str], audio: np.ndarray,
                 params: Mapping[str, Mapping[str, float]]) -> np.ndarray:
    """Render ``audio`` float32 ``[channels, samples]`` through ``processors`` in order.

    ``reverb`` is an insert: dry + the backend's wet return (stereo send; mean for mono).
    Returns float32 ``[channels, samples]``.
    """
    x = np.ascontiguousarray(audio, dtype=np.float32)
    for proc in processors:
        if proc == "reverb":
            send = x if x.shape[0] == 2 else np.repeat(x, 2, axis=0)
            wet = backend.process("reverb", send, params[proc])
            x = x + (wet if x.shape[0] == 2 else wet.mean(axis=0, keepdims=True)).astype(np.float32)
        else:
            x = backend.process(proc, x, params[proc])
    return np.asarray(x, dtype=np.float32)


def effect_config(source: str, *, chain: str = "eq_comp_reverb", backend: str = "builtin",
                  backend_options: Mapping[str, Any] | None = None, patch_s: float = DEFAULT_PATCH_S,
                  sample_rate: int = 44100, channels: int = 2, seed: int = 0, n: int = 1000,
                  param_specs: Sequence[str] | Mapping[str, str] = (), augmentations: Augmentations | None = None,
                  shard_size: int | None = None, reject_silence: bool = True,
                  processors: Sequence[str] | None = None) -> dict:
    """Build (and validate) the config of an effect dataset; scans and fingerprints the source.

    Raises:
        AudioInputError: empty or unreadable source.
        DatagenConfigError: a bad chain, patch length, channel count or --param spec, or a
            --param range that the backend cannot render (named with the range it renders).
    """
    if not 0.01 <= patch_s <= 60.0:  # also refuses NaN
        raise DatagenConfigError(f"--patch-s {patch_s:g} is outside [0.01, 60] s")
    if channels not in (1, 2):
        raise DatagenConfigError(f"--channels {channels} must be 1 or 2")
    shard_size = check_run_numbers(n=n, seed=seed, sample_rate=sample_rate, shard_size=shard_size,
                                   default_shard_size=DEFAULT_SHARD_SIZE, max_shard_size=MAX_SHARD_SIZE)
    procs = tuple(processors) if processors else resolve_chain(chain)
    params = flat_params(procs)
    dists = parse_dists(param_specs, params)
    limits = renderable_limits(backend, sample_rate, backend_options, params)
    dists = restrict_dists(backend, params, dists, limits, dists)
    patch_samples = int(round(patch_s * sample_rate))
    src = SourceSet(source)
    return {
        "kind": "effect",
        "mixbridge_version": __version__,
        "n": int(n),
        "seed": int(seed),
        "sample_rate": int(sample_rate),
        "channels": int(channels),
        "patch_samples": patch_samples,
        "backend": backend,
        "backend_options": dict(backend_options or {}),
        "plugin_maps": plugin_fingerprint(backend, dict(backend_options or {}), procs),
        "processors": list(procs),
        "param_names": [p for p, _ in params],
        "param_units": [p.unit for _, p in params],
        "param_dists": {k: d.to_json() for k, d in sorted(dists.items())},
        "renderable_ranges": limits,
        "augmentations": (augmentations or Augmentations()).to_json(),
        "aug_names": list(AUG_NAMES),
        "reject_silence": bool(reject_silence),
        "shard_size": int(shard_size),
        "source_root": str(src.root.resolve()),
        "sources": src.fingerprint(),
    }


class EffectJob(Job):
    """Paired effect data: a source patch, augmented, through the processor chain.

    Shard arrays per example: ``input`` and ``output`` float32 ``[channels, patch_samples]``,
    ``params_real`` float64 ``[n_params]`` (real units, :func:`~.params.flat_params` order),
    ``params_norm`` float32 ``[n_params]`` (0..1), ``aug_applied`` / ``aug_values``, ``index``,
    ``seed``, ``source_file``, ``source_start_s`` (seconds).
    """

    kind = "effect"
    finite_keys = ("input", "output")

    def __init__(self, config, faults=None):
        super().__init__(config, faults)
        self.processors = tuple(config["processors"])
        self.params = flat_params(self.processors)
        self.dists = {k: Dist(**v) for k, v in config.get("param_dists", {}).items()}
        self.aug = Augmentations.from_json(config["augmentations"])
        self.channels = int(config["channels"])
        self.n_samples = int(config["patch_samples"])

    def setup(self) -> None:
        """Open the sources and the backend, load each plugin once.

        Errors: those of :meth:`open_sources` and :meth:`make_backend`.
        """
        self.open_sources()
        self.backend = self.make_backend()
        self.warm_up(self.processors, self.channels)

    def plan(self, index: int) -> Spec:
        """Draw renderable parameters, a non-silent patch and its augmentations for ``index``."""
        r_params, r_patch, r_aug = example_rngs(self.seed, index, 3)
        nested, real, norm = self._renderable_draw(r_params, index)
        x, where = self.sources.draw(r_patch, self.n_samples, self.sample_rate, self.channels,
                                     self.config.get("reject_silence", True))
        x, applied, values = augment(
            x, r_aug, self.aug,
            lambda: self.sources.draw(r_patch, self.n_samples, self.sample_rate, self.channels)[0])
        return Spec(index, {"params": nested, "source": where},
                    {"input": x, "real": real, "norm": norm, "applied": applied, "values": values, "where": where})

    def _renderable_draw(self, rng, index: int):
        """Draw parameters the backend renders as asked: a draw it would refuse is drawn again
        (from the example's own generator, so the dataset stays a pure function of its seed),
        up to ``MAX_REDRAWS`` times; then the last refusal fails the example as ``unrenderable``.
        The labels' distribution is thereby the sampling distribution restricted to what the
        backend can render (e.g. no wide ZamEQ2 peaks near Nyquist with ``--backend vst``)."""
        from mixbridge.errors import ParamRangeError

        for attempt in range(MAX_REDRAWS + 1):
            nested, real, norm = sample_params(rng, self.params, self.dists)
            try:
                for proc in self.processors:
                    if proc in nested and self.backend is not None:
                        self.backend.check_renderable(proc, nested[proc], label=f"example {index}")
            except ParamRangeError:
                if attempt == MAX_REDRAWS:
                    break
                continue
            break
        return nested, real, norm

    def render(self, spec: Spec) -> Example:
        """Render the augmented patch through the chain with the planned parameters."""
        d = spec.data
        y = render_chain(self.backend, self.processors, d["input"], spec.params["params"])
        return Example(spec.index, {
            "input": d["input"], "output": y,
            "params_real": d["real"].astype(np.float64), "params_norm": d["norm"].astype(np.float32),
            "aug_applied": d["applied"], "aug_values": d["values"],
            "index": np.int64(spec.index), "seed": np.int64(self.seed),
            "source_file": np.int32(d["where"]["file_index"]), "source_start_s": np.float64(d["where"]["start_s"]),
        })


#: Redraws of an example's parameters that the backend would refuse, before it fails as ``unrenderable``.
MAX_REDRAWS = 32

register_job("effect", EffectJob)
