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

The package, one job per module: :mod:`.loading` (:class:`Proxy`, :func:`load_proxy`,
:class:`CompareError`), :mod:`.chain` (:func:`resolve_plugin`), :mod:`.inputs` (the test
programme, patches, parameter sets), :mod:`.curves` (:func:`level_curve`, :func:`eq_response`),
:mod:`.plots`, :mod:`.report` (metrics and files) and :mod:`.run` (:func:`compare_proxy`).
The CLI is ``mixbridge compare`` in :mod:`mixbridge.export.cli`.
"""
from __future__ import annotations

from .chain import PluginChain, resolve_plugin
from .curves import eq_response, level_curve
from .inputs import draw_patches, nested_real, random_params, read_params_file, test_programme
from .loading import CompareError, Proxy, load_proxy
from .run import compare_proxy

__all__ = ["CompareError", "PluginChain", "Proxy", "compare_proxy", "draw_patches", "eq_response", "level_curve",
           "load_proxy", "nested_real", "random_params", "read_params_file", "resolve_plugin", "test_programme"]
