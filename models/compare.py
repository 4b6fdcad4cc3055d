"""How close is a proxy to the plugin it imitates? ``mixbridge compare`` in library form.

:func:`compare_proxy` renders the same input patches with the same parameters
through the real processor chain (a plugin map on the ``vst`` backend, or the
pedalboard built-ins on the ``builtin`` backend) and through the proxy (a
checkpoint, run offline in torch, or an exported artifact, streamed by the
torch-free runtime), then writes ``REPORT_DIR``::

    report.md             metrics overall and per parameter region, notices, the plots below
    metrics.json          the same numbers for machines (overall, per region, per example)
    examples.csv          one row per example: parameters (real units), every metric
    spectrograms.png      plugin, proxy and error spectrograms of the best, median and worst example
    transfer_level.png    compressor: static input/output level curve from a 1 kHz level sweep
    transfer_eq.png       EQ: magnitude response (Welch cross-spectrum of white noise)

Metrics are :mod:`mixbridge.models.metrics` (MAE, ESR, MCD k=25, MR-STFT thesis
bands, loudness difference) computed per example on the whole patch, both
renders starting from a cleared state; the tables show their means (and the
pooled ESR ``sum err^2 / sum target^2`` over all examples). The per-region table
bins every varied parameter's normalised value into ``bins`` equal regions.

Parameters come from a JSON file (a list of ``{"processor.param": value}`` in
real units; missing ones take the schema default) or are drawn uniformly in
each parameter's schema scale over the range the proxy was trained on (its
checkpoint records the dataset's parameter distributions). Values outside the
schema range are refused; values outside the trained range are flagged in the
report and the summary. Input audio at another sample rate is resampled to the
proxy's, with a notice. The default input (no ``--input``) is a built-in test
programme: level-stepped noise bursts and decaying tones.
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from mixbridge.errors import MixbridgeError, ParamRangeError

#: Level sweep of the static compressor curve: input levels in dBFS, seconds per step,
#: and the analysed tail of each step (the detector has settled for release <= 500 ms).
SWEEP_LEVELS_DB = tuple(float(v) for v in range(-60, 1, 3))
SWEEP_STEP_S = 0.6
SWEEP_MEASURE_S = 0.2
SWEEP_TONE_HZ = 1000.0
#: EQ response: white noise RMS level (dBFS) and Welch segment length.
EQ_NOISE_DBFS = -30.0
EQ_NOISE_S = 3.0
EQ_NPERSEG = 4096
#: How many parameter sets the transfer-curve plots show.
N_CURVE_SETS = 3


class CompareError(ValueError, MixbridgeError):
    """A plugin/proxy pair or comparison option that cannot be compared (the message says why)."""


# --------------------------------------------------------------------------- the proxy side
@dataclass
class Proxy:
    """A proxy that renders ``[channels, samples]`` with one parameter set, aligned to its input.

    Built by :func:`load_proxy` from a checkpoint (torch) or an artifact folder (onnxruntime).
    """

    path: str
    kind: str  # "checkpoint" | "artifact"
    sample_rate: int
    entries: list[str]
    param_names: list[str]
    n_inputs: int
    latency_samples: int
    receptive_field: int
    trained_ranges: dict[str, tuple[float, float]]  # normalised bounds per parameter
    record: dict = field(repr=False, default_factory=dict)
    _model: Any = field(repr=False, default=None)
    _session_factory: Any = field(repr=False, default=None)

    def render(self, audio: np.ndarray, norm_params: np.ndarray) -> np.ndarray:
        """``audio [channels, samples]`` float32 -> the proxy's output, same shape, latency removed.

        A mono proxy (``n_inputs == 1``) processes each channel on its own.
        """
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if self._model is not None:
            import torch

            m = self._model
            x = torch.from_numpy(audio)
            x = x.unsqueeze(1) if m.n_inputs == 1 else x.unsqueeze(0)  # [B, n_inputs, S]
            if not m.causal:  # centre-cropped: pad so the output lines up with every input sample
                left = m.center_offset_samples
                x = torch.nn.functional.pad(x, (left, m.receptive_field - 1 - left))
            p = torch.from_numpy(np.asarray(norm_params, np.float32)).unsqueeze(0).expand(x.shape[0], -1)
            with torch.no_grad():
                y = m(x, p.contiguous())
            y = y[:, 0] if m.n_inputs == 1 else y[0]
            return y.numpy().astype(np.float32)
        session = self._session_factory(audio.shape[0])
        return np.array(session.render(audio, np.asarray(norm_params, np.float32), chunk=4096,
                                       compensate_latency=True), dtype=np.float32)


def _trained_ranges(record: dict, names: Sequence[str]) -> dict[str, tuple[float, float]]:
    dists = ((record.get("extra") or {}).get("dataset") or {}).get("param_dists") or {}
    out = {}
    for n in names:
        d = dists.get(n)
        out[n] = (float(d["u_lo"]), float(d["u_hi"])) if d else (0.0, 1.0)
    return out


def load_proxy(path: str | Path, *, expect_sample_rate: int | None = None,
               expect_param_names: Sequence[str] | None = None) -> Proxy:
    """Open a checkpoint (``NAME.json``/``NAME.safetensors``) or an exported artifact folder.

    Raises:
        CheckpointMismatchError: another parameter schema or sample rate than expected.
        CheckpointError / ArtifactError: unreadable, corrupted or unknown-version files.
    """
    path = Path(path)
    if path.is_dir() and (path / "artifact.json").exists():
        from mixbridge.export.artifact import load_artifact
        from mixbridge.export.runtime import open_session

        from .checkpoint import check_compatible

        art = load_artifact(path)
        side = art.sidecar
        rec = {"schema": side["schema"], "sample_rate": art.sample_rate, "extra": side.get("extra") or {}}
        check_compatible(rec, expect_param_names=expect_param_names, expect_sample_rate=expect_sample_rate,
                         where=str(path))
        cache: dict[int, Any] = {}

        def factory(channels: int):
            if channels not in cache:
                cache[channels] = open_session(art, channels=channels)
            return cache[channels]

        return Proxy(str(path), "artifact", art.sample_rate, list(side["schema"]["entries"]), art.param_names,
                     art.n_inputs, art.latency_samples, art.receptive_field, _trained_ranges(rec, art.param_names),
                     record=side, _session_factory=factory)
    from .checkpoint import load_checkpoint

    model, record = load_checkpoint(path, expect_param_names=expect_param_names,
                                    expect_sample_rate=expect_sample_rate)
    return Proxy(record["_path"], "checkpoint", model.sample_rate, list(model.schema), list(model.param_names),
                 model.n_inputs, model.latency_samples, model.receptive_field,
                 _trained_ranges(record, model.param_names), record=record, _model=model)


# --------------------------------------------------------------------------- the plugin side
@dataclass
class PluginChain:
    """The real processors: ``backend`` renders ``processors`` in order (:func:`render_chain`)."""

    label: str
    backend_name: str
    processors: list[str]
    backend: Any

    def render(self, audio: np.ndarray, nested_params: dict) -> np.ndarray:
        from mixbridge.plugins.datagen.effect import render_chain

        return render_chain(self.backend, self.processors, audio, nested_params)


def resolve_plugin(specs: Sequence[str], sample_rate: int) -> PluginChain:
    """``--plugin`` values to a renderable chain.

    Each value is a plugin map (shipped name such as ``zamcomp``, or a JSON path;
    repeat for a chain, in order) or builtin processors (``compressor``,
    ``eq,compressor``, a named datagen chain such as ``eq_comp``).

    Raises:
        CompareError: maps mixed with builtins, or an unknown name (the known ones listed).
        PluginMapError / PluginNotFoundError / BackendUnavailableError: from the vst backend.
    """
    from mixbridge.errors import UnknownNameError
    from mixbridge.plugins.backend import get_backend
    from mixbridge.plugins.datagen.effect import plugin_map_processors, resolve_chain
    from mixbridge.plugins.datagen.errors import DatagenConfigError
    from mixbridge.plugins.pluginmap import load_map

    specs = [s for s in specs if s]
    maps, builtins = [], []
    for s in specs:
        try:
            load_map(s)
            maps.append(s)
        except UnknownNameError:
            builtins.append(s)
    if maps and builtins:
        raise CompareError(f"--plugin mixes plugin maps {maps} with builtin processors {builtins}; "
                           "compare one backend at a time")
    if maps:
        procs, options = plugin_map_processors(maps)
        return PluginChain("+".join(maps) + " (vst)", "vst", list(procs), get_backend("vst", sample_rate, **options))
    procs: list[str] = []
    for s in builtins:
        try:
            procs += list(resolve_chain(s))
        except DatagenConfigError as e:
            raise CompareError(f"--plugin {s}: neither a plugin map nor builtin processors ({e})") from None
    return PluginChain(",".join(procs) + " (builtin)", "builtin", procs, get_backend("builtin", sample_rate))


# --------------------------------------------------------------------------- inputs and parameters
def test_programme(sample_rate: int, seconds: float = 12.0, seed: int = 0) -> np.ndarray:
    """The default input: mono float32 ``[1, samples]`` of level-stepped pink-ish noise bursts
    and decaying tones (-40..-3 dBFS peaks), deterministic for ``seed``."""
    rng = np.random.default_rng([seed, 31337])
    n = int(seconds * sample_rate)
    out = np.zeros(n, np.float32)
    t = np.arange(n) / sample_rate
    pos = 0
    while pos < n:
        length = int(rng.uniform(0.08, 0.7) * sample_rate)
        level = 10 ** (rng.uniform(-40, -3) / 20)
        seg = np.arange(min(length, n - pos))
        if rng.random() < 0.5:
            noise = np.cumsum(rng.standard_normal(seg.size)) * 0.02
            noise = noise - np.convolve(noise, np.ones(64) / 64, mode="same") + rng.standard_normal(seg.size) * 0.3
            burst = noise / (np.max(np.abs(noise)) + 1e-9)
        else:
            f = rng.uniform(50, 2000)
            burst = np.sin(2 * np.pi * f * t[pos:pos + seg.size])
        env = np.exp(-seg / (rng.uniform(0.03, 0.4) * sample_rate))
        out[pos:pos + seg.size] += (level * burst * env).astype(np.float32)
        pos += seg.size + int(rng.uniform(0.0, 0.15) * sample_rate)
    return out[None, :]


def draw_patches(input_path: str | None, n: int, patch_samples: int, sample_rate: int, channels: int,
                 seed: int, echo: Callable[[str], None]) -> tuple[np.ndarray, list[str], list[str]]:
    """``n`` patches ``[n, channels, patch_samples]`` from ``input_path`` (file or folder), or from
    :func:`test_programme`; returns ``(patches, where, notices)``.

    Raises:
        AudioInputError: missing or unreadable audio (from :class:`SourceSet`).
    """
    notices: list[str] = []
    rng = np.random.default_rng([seed, 2718])
    if input_path is None:
        prog = test_programme(sample_rate, seed=seed)
        if channels > 1:
            prog = np.repeat(prog, channels, axis=0)
        starts = rng.integers(0, prog.shape[1] - patch_samples, size=n)
        return (np.stack([prog[:, s:s + patch_samples] for s in starts]),
                [f"test programme @ {s / sample_rate:.2f} s" for s in starts], notices)
    from mixbridge.plugins.datagen.sources import SourceSet

    src = SourceSet(input_path, hash_files=False)
    other = sorted({f.sample_rate for f in src.files if f.sample_rate != sample_rate})
    if other:
        msg = (f"notice: {sum(f.sample_rate != sample_rate for f in src.files)} input file(s) at "
               f"{', '.join(map(str, other))} Hz resampled to the proxy's {sample_rate} Hz")
        notices.append(msg)
        echo(msg)
    patches, where = [], []
    for _ in range(n):
        x, w = src.draw(rng, patch_samples, sample_rate, channels)
        patches.append(x)
        where.append(f"{w['file']} @ {w['start_s']:.2f} s")
    src.close()
    return np.stack(patches).astype(np.float32), where, notices


def _schema(entries: Sequence[str]):
    from .proxy_schema import schema_params

    return schema_params(entries)


def read_params_file(path: str | Path, entries: Sequence[str]) -> list[np.ndarray]:
    """Parameter sets from JSON (a list of flat ``{"processor.param": value}`` or nested
    ``{"processor": {"param": value}}`` dicts in real units) as normalised vectors.

    Raises:
        CompareError: unreadable JSON, not a list of objects, or an unknown parameter name.
        ParamRangeError: a value outside its schema range (named, with the range and unit).
    """
    params = _schema(entries)
    index = {n: i for i, (n, _) in enumerate(params)}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CompareError(f"--params {path}: cannot read the JSON ({e})") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not data or not all(isinstance(d, dict) for d in data):
        raise CompareError(f"--params {path}: expected a non-empty list of {{\"processor.param\": value}} objects")
    out = []
    for k, d in enumerate(data):
        vec = np.array([p.to_normalised(p.default) for _, p in params])
        flat: dict[str, Any] = {}
        for key, value in d.items():
            flat.update({f"{key}.{a}": b for a, b in value.items()} if isinstance(value, dict) else {key: value})
        for key, value in flat.items():
            if key not in index:
                raise CompareError(f"--params {path} set {k}: unknown parameter '{key}'; known: {', '.join(index)}")
            p = params[index[key]][1]
            if not isinstance(value, (int, float)) or not math.isfinite(value) or not p.min <= value <= p.max:
                raise ParamRangeError(f"--params {path} set {k}: {key} = {value!r} is outside {p.range_text()}; "
                                      "give a value inside the schema range")
            vec[index[key]] = p.to_normalised(float(value))
        out.append(vec)
    return out


def random_params(n: int, names: Sequence[str], entries: Sequence[str], ranges: dict[str, tuple[float, float]],
                  seed: int) -> list[np.ndarray]:
    """``n`` normalised vectors, uniform within each parameter's trained normalised range."""
    rng = np.random.default_rng([seed, 1618])
    lo = np.array([ranges[nm][0] for nm in names])
    hi = np.array([ranges[nm][1] for nm in names])
    return [lo + (hi - lo) * rng.random(len(names)) for _ in range(n)]


def nested_real(vec: np.ndarray, entries: Sequence[str]) -> tuple[dict, dict]:
    """Normalised vector -> (``{processor: {param: real}}``, ``{"processor.param": real}``)."""
    nested: dict[str, dict[str, float]] = {}
    flat = {}
    for v, (name, p) in zip(vec, _schema(entries)):
        real = p.from_normalised(float(min(max(v, 0.0), 1.0)))
        proc, _, pn = name.partition(".")
        nested.setdefault(proc, {})[pn] = real
        flat[name] = real
    return nested, flat


# --------------------------------------------------------------------------- transfer curves
def level_curve(render: Callable[[np.ndarray], np.ndarray], sample_rate: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Static compressor curve: a 1 kHz tone stepping through ``SWEEP_LEVELS_DB`` (peak dBFS);
    returns ``(input_db, output_db)``, both as RMS dB re a full-scale sine of the analysed tail."""
    step = int(SWEEP_STEP_S * sample_rate)
    tail = int(SWEEP_MEASURE_S * sample_rate)
    t = np.arange(step) / sample_rate
    tone = np.sin(2 * np.pi * SWEEP_TONE_HZ * t).astype(np.float32)
    x = np.concatenate([tone * 10 ** (lv / 20) for lv in SWEEP_LEVELS_DB])[None, :].astype(np.float32)
    x = np.repeat(x, channels, axis=0)
    y = render(x)
    ref = math.sqrt(0.5)
    ins, outs = [], []
    for i, _ in enumerate(SWEEP_LEVELS_DB):
        a, b = (i + 1) * step - tail, (i + 1) * step
        ins.append(20 * math.log10(np.sqrt(np.mean(x[0, a:b] ** 2)) / ref + 1e-12))
        outs.append(20 * math.log10(np.sqrt(np.mean(y[0, a:b] ** 2)) / ref + 1e-12))
    return np.array(ins), np.array(outs)


def eq_response(render: Callable[[np.ndarray], np.ndarray], sample_rate: int, channels: int,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Magnitude response in dB from white noise at ``EQ_NOISE_DBFS`` RMS: ``|S_xy / S_xx|``
    (Welch, ``EQ_NPERSEG``); returns ``(freqs_hz, magnitude_db)``."""
    from scipy.signal import csd, welch

    rng = np.random.default_rng([seed, 4242])
    n = int(EQ_NOISE_S * sample_rate)
    x = (rng.standard_normal(n) * 10 ** (EQ_NOISE_DBFS / 20)).astype(np.float32)[None, :]
    x = np.repeat(x, channels, axis=0)
    y = render(x)
    skip = int(0.5 * sample_rate)  # let the compressor's detector settle
    f, pxx = welch(x[0, skip:], fs=sample_rate, nperseg=EQ_NPERSEG)
    _, pxy = csd(x[0, skip:], y[0, skip:], fs=sample_rate, nperseg=EQ_NPERSEG)
    return f[1:], 20 * np.log10(np.abs(pxy[1:]) / np.maximum(pxx[1:], 1e-30) + 1e-12)


# --------------------------------------------------------------------------- plots
def _plot_spectrograms(path: Path, picks: list[tuple[str, np.ndarray, np.ndarray]], sample_rate: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = plt.get_cmap("magma")
    cmap = base.with_extremes(bad=base(0.0), under=base(0.0))  # digital silence (-inf dB): the floor colour
    fig, axes = plt.subplots(len(picks), 3, figsize=(13, 3.2 * len(picks)), squeeze=False)
    for row, (title, target, output) in enumerate(picks):
        for col, (name, sig) in enumerate((("plugin", target), ("proxy", output), ("error (plugin - proxy)",
                                                                                      target - output))):
            ax = axes[row][col]
            with np.errstate(divide="ignore"):
                ax.specgram(sig, NFFT=1024, Fs=sample_rate, noverlap=768, cmap=cmap, vmin=-140,
                            vmax=-20, scale="dB")
            ax.set_ylim(0, min(16000, sample_rate / 2))
            ax.set_title(f"{title}: {name}", fontsize=9)
            ax.set_xlabel("s")
            ax.set_ylabel("Hz")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _plot_curves(path: Path, curves: list[dict], kind: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, c in enumerate(curves):
        col = colours[i % len(colours)]
        ax.plot(c["x"], c["plugin"], color=col, lw=2, label=f"plugin, set {c['set']}")
        ax.plot(c["x"], c["proxy"], color=col, lw=1.5, ls="--", label=f"proxy, set {c['set']}")
    if kind == "level":
        ax.plot(SWEEP_LEVELS_DB, SWEEP_LEVELS_DB, color="grey", lw=0.8, ls=":", label="unity")
        ax.set_xlabel("input level (dB re full-scale sine)")
        ax.set_ylabel("output level (dB re full-scale sine)")
        ax.set_title(f"static level curve ({SWEEP_TONE_HZ:g} Hz tone, {SWEEP_STEP_S:g} s steps)")
    else:
        ax.set_xscale("log")
        ax.set_xlabel("Hz")
        ax.set_ylabel("dB")
        ax.set_title(f"magnitude response (white noise at {EQ_NOISE_DBFS:g} dBFS RMS)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


# --------------------------------------------------------------------------- the comparison
METRIC_KEYS = ("mae", "esr", "mrstft", "mcd_db", "loudness_diff_db")
#: BS.1770 gating needs at least one 400 ms block; shorter patches get no loudness difference.
LOUDNESS_MIN_S = 0.4


def _metrics(output: np.ndarray, target: np.ndarray, sample_rate: int) -> dict[str, float]:
    """:func:`mixbridge.models.metrics.all_metrics`, with the loudness difference NaN when a
    patch is shorter than ``LOUDNESS_MIN_S`` or silent (no finite integrated loudness)."""
    from . import metrics

    m = {"mae": metrics.mae(output, target), "esr": metrics.esr(output, target),
         "mrstft": metrics.mrstft(output, target), "mcd_db": metrics.mcd(output, target, sample_rate)}
    loud = float("nan")
    if target.shape[-1] >= LOUDNESS_MIN_S * sample_rate:
        with np.errstate(divide="ignore"):
            loud = metrics.loudness_difference_db(output, target, sample_rate)
    m["loudness_diff_db"] = loud if math.isfinite(loud) else float("nan")
    return m


def _fmt(v: float) -> str:
    if v is None or not math.isfinite(v):
        return "n/a"
    return f"{v:.4g}"


def compare_proxy(plugin: Sequence[str] | str, proxy: str | Path, out_dir: str | Path, *,
                  input_path: str | None = None, params_file: str | None = None, n_random: int | None = None,
                  patch_s: float = 1.48, seed: int = 0, bins: int = 3, sample_rate: int | None = None,
                  curves: bool = True, echo: Callable[[str], None] | None = None) -> dict:
    """Compare ``proxy`` with the real ``plugin`` chain; write the report to ``out_dir``.

    Args:
        plugin: ``--plugin`` values (see :func:`resolve_plugin`).
        proxy: a checkpoint (``NAME.json``/``.safetensors``) or an exported artifact folder.
        out_dir: report folder (created).
        input_path: audio file or folder (patches drawn at random, silent ones redrawn);
            None: :func:`test_programme`.
        params_file: JSON parameter sets (real units); else ``n_random`` (default 32)
            sets drawn within the trained ranges. Example ``i`` pairs set ``i`` with patch ``i``.
        patch_s: patch length in seconds.
        seed: patches and random parameters.
        bins: regions per parameter in the per-region table.
        sample_rate: the rate the caller needs; a proxy trained at another rate is refused.
        curves: also measure and plot the static transfer curves.
        echo: where the summary table and notices go (``print``), or None.

    Returns:
        The summary written to ``metrics.json``: ``overall`` (mean metrics, pooled ESR,
        ``n``), ``regions``, ``examples``, ``flagged`` (examples outside the trained
        range), ``notices``, ``plugin``, ``proxy``.

    Raises:
        CompareError: the plugin's processors differ from the proxy's schema, or a bad option.
        CheckpointMismatchError: the proxy is for another sample rate than ``sample_rate``.
        ParamRangeError: a ``params_file`` value outside its schema range.
        AudioInputError: unreadable input audio.
    """
    say = echo or (lambda s: None)
    out_dir = Path(out_dir)
    if bins < 1 or not 0.05 <= patch_s <= 60:
        raise CompareError(f"bins = {bins} must be >= 1 and patch_s = {patch_s} in 0.05..60 s")
    prx = load_proxy(proxy, expect_sample_rate=sample_rate)
    sr = prx.sample_rate
    chain = resolve_plugin([plugin] if isinstance(plugin, str) else list(plugin), sr)
    if list(chain.processors) != list(prx.entries):
        raise CompareError(f"the proxy {prx.path} imitates {prx.entries} but --plugin gives {chain.processors}; "
                           "compare a proxy with the processors it was trained on")
    notices: list[str] = []
    if params_file:
        sets = read_params_file(params_file, prx.entries)
    else:
        n = 32 if n_random is None else int(n_random)
        if n < 1:
            raise CompareError(f"--random {n} must be >= 1")
        sets = random_params(n, prx.param_names, prx.entries, prx.trained_ranges, seed)
    channels = prx.n_inputs
    patch_samples = int(round(patch_s * sr))
    patches, where, nts = draw_patches(input_path, len(sets), patch_samples, sr, channels, seed, say)
    notices += nts
    if prx.kind == "artifact":
        notices.append("proxy run by the torch-free streaming runtime (onnxruntime), 4096-sample blocks")

    flagged = []
    examples = []
    pooled_err = pooled_ref = 0.0
    keep: list[tuple[float, int, np.ndarray, np.ndarray]] = []
    for i, (vec, x) in enumerate(zip(sets, patches)):
        nested, flat = nested_real(vec, prx.entries)
        outside = [nm for nm, v in zip(prx.param_names, vec)
                   if not prx.trained_ranges[nm][0] - 1e-6 <= v <= prx.trained_ranges[nm][1] + 1e-6]
        if outside:
            flagged.append({"example": i, "params": outside})
        target = chain.render(x, nested)
        output = prx.render(x, vec)
        m = _metrics(output, target, sr)
        pooled_err += float(np.sum((output.astype(np.float64) - target) ** 2))
        pooled_ref += float(np.sum(target.astype(np.float64) ** 2))
        examples.append({"example": i, "source": where[i], "params": flat,
                         "params_norm": [float(v) for v in vec], "outside_trained_range": outside, **m})
        keep.append((m["esr"], i, target[0], output[0]))
    if not chain.backend.notices == []:
        notices += [f"backend: {t}" for t in chain.backend.notices]
    if flagged:
        msg = (f"notice: {len(flagged)} example(s) use parameters outside the proxy's trained range "
               f"({sorted({p for f in flagged for p in f['params']})}); their metrics are flagged")
        notices.append(msg)
        say(msg)

    def mean(rows, key):
        vals = [r[key] for r in rows if r[key] is not None and math.isfinite(r[key])]
        return float(np.mean(vals)) if vals else float("nan")

    overall = {k: mean(examples, k) for k in METRIC_KEYS}
    overall["esr_median"] = float(np.median([r["esr"] for r in examples]))
    overall["esr_pooled"] = pooled_err / max(pooled_ref, 1e-30)
    overall["n"] = len(examples)
    in_range = [r for r in examples if not r["outside_trained_range"]]
    if flagged and in_range:
        overall["esr_in_trained_range"] = mean(in_range, "esr")

    regions = []
    for j, name in enumerate(prx.param_names):
        lo, hi = prx.trained_ranges[name]
        vals = np.array([r["params_norm"][j] for r in examples])
        if hi - lo < 1e-9 or np.ptp(vals) < 1e-9:
            continue  # a fixed parameter has one region: the overall row
        p = dict(_schema(prx.entries))[name]
        edges = np.linspace(min(lo, vals.min()), max(hi, vals.max()), bins + 1)
        for b in range(bins):
            sel = [r for r, v in zip(examples, vals)
                   if edges[b] <= v < edges[b + 1] or (b == bins - 1 and v == edges[-1])]
            if not sel:
                continue
            a_real, b_real = p.from_normalised(float(edges[b])), p.from_normalised(float(edges[b + 1]))
            regions.append({"param": name, "unit": p.unit, "from": a_real, "to": b_real, "n": len(sel),
                            **{k: mean(sel, k) for k in ("mae", "esr", "mrstft", "mcd_db")}})

    out_dir.mkdir(parents=True, exist_ok=True)
    plots = []
    keep.sort(key=lambda t: t[0])
    picks_idx = [keep[0], keep[len(keep) // 2], keep[-1]] if len(keep) >= 3 else keep
    _plot_spectrograms(out_dir / "spectrograms.png",
                       [(f"{lbl} ESR {e:.3g} (example {i})", t, o)
                        for lbl, (e, i, t, o) in zip(("best", "median", "worst"), picks_idx)], sr)
    plots.append(("spectrograms.png", "Spectrograms of the plugin, the proxy and their difference "
                                      "(best, median and worst example by ESR)"))
    curve_data: dict[str, list] = {}
    if curves:
        curve_sets = sets[:N_CURVE_SETS]
        if "compressor" in prx.entries:
            rows = []
            for k, vec in enumerate(curve_sets):
                nested, _ = nested_real(vec, prx.entries)
                xi, yp = level_curve(lambda a: chain.render(a, nested), sr, channels)
                _, yq = level_curve(lambda a: prx.render(a, vec), sr, channels)
                rows.append({"set": k, "x": xi.tolist(), "plugin": yp.tolist(), "proxy": yq.tolist(),
                             "max_abs_diff_db": float(np.max(np.abs(yp - yq)))})
            _plot_curves(out_dir / "transfer_level.png", rows, "level")
            curve_data["level"] = rows
            plots.append(("transfer_level.png", "Static input/output level curves of the first "
                                                f"{len(rows)} parameter sets (solid: plugin, dashed: proxy)"))
        if "eq" in prx.entries:
            rows = []
            for k, vec in enumerate(curve_sets):
                nested, _ = nested_real(vec, prx.entries)
                f, hp = eq_response(lambda a: chain.render(a, nested), sr, channels, seed)
                _, hq = eq_response(lambda a: prx.render(a, vec), sr, channels, seed)
                band = (f >= 30) & (f <= 16000)
                rows.append({"set": k, "x": f.tolist(), "plugin": hp.tolist(), "proxy": hq.tolist(),
                             "max_abs_diff_db": float(np.max(np.abs(hp[band] - hq[band])))})
            _plot_curves(out_dir / "transfer_eq.png", rows, "eq")
            curve_data["eq"] = rows
            plots.append(("transfer_eq.png", "Magnitude responses of the first "
                                             f"{len(rows)} parameter sets (solid: plugin, dashed: proxy)"))

    summary = {"plugin": chain.label, "proxy": prx.path, "proxy_kind": prx.kind, "sample_rate": sr,
               "input": input_path or "built-in test programme", "patch_s": patch_s, "seed": seed,
               "params": params_file or f"{len(sets)} random sets within the trained range",
               "overall": overall, "regions": regions, "flagged": flagged, "notices": notices,
               "curves": {k: [{"set": r["set"], "max_abs_diff_db": r["max_abs_diff_db"]} for r in v]
                          for k, v in curve_data.items()},
               "examples": examples}
    (out_dir / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    with open(out_dir / "examples.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["example", "source", *prx.param_names, *METRIC_KEYS, "outside_trained_range"])
        for r in examples:
            w.writerow([r["example"], r["source"], *[f"{r['params'][n]:.6g}" for n in prx.param_names],
                        *[f"{r[k]:.6g}" for k in METRIC_KEYS], ";".join(r["outside_trained_range"])])
    _write_report(out_dir / "report.md", summary, plots)
    table = _overall_table(summary)
    say(table)
    say(f"report: {out_dir / 'report.md'}")
    return summary


def _overall_table(s: dict) -> str:
    o = s["overall"]
    head = "| n | MAE | ESR (mean) | ESR (median) | ESR (pooled) | MR-STFT | MCD (dB) | loudness diff (LU) |"
    row = (f"| {o['n']} | {_fmt(o['mae'])} | {_fmt(o['esr'])} | {_fmt(o['esr_median'])} | {_fmt(o['esr_pooled'])} "
           f"| {_fmt(o['mrstft'])} | {_fmt(o['mcd_db'])} | {_fmt(o['loudness_diff_db'])} |")
    return "\n".join([head, "|" + "---|" * 8, row])


def _write_report(path: Path, s: dict, plots: list[tuple[str, str]]) -> None:
    lines = [f"# Proxy vs plugin: {s['plugin']}", "",
             f"- proxy: `{s['proxy']}` ({s['proxy_kind']})",
             f"- input: {s['input']}; {s['overall']['n']} patches of {s['patch_s']} s at {s['sample_rate']} Hz, "
             f"seed {s['seed']}",
             f"- parameters: {s['params']}", "",
             "Metrics: mean over examples (each on the whole patch, both renders from a cleared state); "
             "ESR pooled is sum of squared errors over sum of squared targets across all examples. "
             "Lower is better; loudness difference is signed (proxy minus plugin).", "",
             "## Overall", "", _overall_table(s), ""]
    if "esr_in_trained_range" in s["overall"]:
        lines += [f"Mean ESR of the examples inside the trained range: {_fmt(s['overall']['esr_in_trained_range'])}", ""]
    if s["notices"]:
        lines += ["## Notices", ""] + [f"- {n}" for n in s["notices"]] + [""]
    if s["regions"]:
        lines += ["## Per parameter region", "", "| parameter | region | n | MAE | ESR | MR-STFT | MCD (dB) |",
                  "|---|---|---|---|---|---|---|"]
        for r in s["regions"]:
            unit = f" {r['unit']}" if r["unit"] else ""
            lines.append(f"| {r['param']} | {r['from']:.4g}..{r['to']:.4g}{unit} | {r['n']} | {_fmt(r['mae'])} "
                         f"| {_fmt(r['esr'])} | {_fmt(r['mrstft'])} | {_fmt(r['mcd_db'])} |")
        lines.append("")
    for kind, rows in s["curves"].items():
        what = "level curve" if kind == "level" else "magnitude response (30 Hz..16 kHz)"
        lines += [f"Static {what}: largest plugin/proxy difference per set: "
                  + ", ".join(f"set {r['set']} {r['max_abs_diff_db']:.2f} dB" for r in rows), ""]
    for name, caption in plots:
        lines += [f"![{caption}]({name})", "", f"*{caption}*", ""]
    if s["flagged"]:
        lines += ["## Flagged examples (parameters outside the trained range)", ""]
        lines += [f"- example {f['example']}: {', '.join(f['params'])}" for f in s["flagged"]] + [""]
    lines += ["## Examples", "", "| # | source | ESR | MAE | MR-STFT | flagged |", "|---|---|---|---|---|---|"]
    for r in s["examples"]:
        lines.append(f"| {r['example']} | {r['source']} | {_fmt(r['esr'])} | {_fmt(r['mae'])} | {_fmt(r['mrstft'])} "
                     f"| {'yes' if r['outside_trained_range'] else ''} |")
    path.write_text("\n".join(lines) + "\n")
