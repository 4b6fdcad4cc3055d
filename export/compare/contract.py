"""A proxy as one more implementation of the semantic contract (issue: "the contract applies to proxies").

:func:`proxy_implementation` wraps a proxy checkpoint or exported artifact (:func:`.loading.load_proxy`)
as a :class:`mixbridge.plugins.contract.Implementation`: one renderer per schema processor the proxy
models (``compressor``, ``eq``). A renderer takes that processor's real-unit parameters; the proxy's
other processors sit at their neutral settings (:data:`NEUTRAL`: a flat EQ, a compressor at ratio 1
and 0 dB makeup), so an EQ -> compressor proxy is measured stage by stage, as the plugins are. The
contract's static curve, 63 % attack and release times and EQ magnitude then run on it exactly as
on the plugin it imitates (``mixbridge plugins check proxy:PATH``), and ``compare`` puts both tables
in its report.
"""
from __future__ import annotations

import numpy as np

from mixbridge.plugins.contract import Implementation
from mixbridge.proxy_schema import schema_params

from .loading import CompareError, load_proxy

#: Values that make a processor an identity, for the stages a contract row does not measure.
NEUTRAL = {"compressor": {"ratio": 1.0, "makeup_db": 0.0},
           "eq": {k: 0.0 for k in ("low_shelf_gain_db", "peak1_gain_db", "peak2_gain_db", "peak3_gain_db",
                                   "high_shelf_gain_db")}}


def proxy_implementation(path: str, sample_rate: int) -> Implementation:
    """The proxy at ``path`` as a contract implementation named ``proxy:<path>``.

    Args:
        path: a proxy checkpoint (``NAME.json``) or artifact folder.
        sample_rate: the contract's rate in Hz; it must be the proxy's (``mixbridge plugins check
            proxy:PATH --sample-rate R``).

    Raises:
        CompareError: another sample rate than the proxy's.
        CheckpointError / ArtifactError: an unreadable proxy.
    """
    proxy = load_proxy(path)
    if int(sample_rate) != proxy.sample_rate:
        raise CompareError(f"proxy {path} runs at {proxy.sample_rate} Hz, the contract asked for {sample_rate} Hz; "
                           f"use --sample-rate {proxy.sample_rate}")
    flat = schema_params(proxy.entries)
    processors = [e for e in ("eq", "compressor") if any(n.startswith(e + ".") for n, _ in flat)]

    def renderer(processor: str):
        def render(audio, sr, params):
            if sr != proxy.sample_rate:
                raise CompareError(f"the proxy runs at {proxy.sample_rate} Hz, not {sr} Hz")
            values = []
            for name, prm in flat:
                proc, leaf = name.split(".", 1)
                if proc == processor:
                    v = params.get(leaf, prm.default)
                else:
                    v = NEUTRAL.get(proc, {}).get(leaf, prm.default)
                values.append(prm.to_normalised(float(v)))
            return proxy.render(np.asarray(audio, np.float32), np.asarray(values, np.float32))
        return render

    return Implementation(f"proxy:{path}", {p: renderer(p) for p in processors})
