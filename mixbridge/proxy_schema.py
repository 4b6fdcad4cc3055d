"""Which schema parameters a proxy's normalised vector ``p`` holds (torch-free).

A proxy names its parameters by processor or chain names of :mod:`mixbridge.schema`
(``("compressor",)``, ``("eq", "compressor")``, ``("channel_strip",)``); the vector
``p`` holds their normalised 0..1 values in that order. Checkpoints and export
sidecars record the resolved names and ranges (:func:`schema_record`) so a loader
can refuse a model whose parameters no longer mean what they meant in training.
This module imports only the standard library and :mod:`mixbridge.schema`, so the
torch-free runtime can use it.
"""
from __future__ import annotations

from collections.abc import Sequence

from mixbridge.errors import UnknownNameError
from mixbridge.schema import CHAINS, Param


def _processor(name: str):
    for chain in CHAINS.values():
        for proc in chain.processors:
            if proc.name == name:
                return proc
    return None


def schema_params(schema: Sequence[str]) -> list[tuple[str, Param]]:
    """Resolve a proxy's parameter schema to ``("processor.param", Param)`` pairs.

    ``schema`` is a sequence of processor names (``"eq"``, ``"compressor"``) or
    chain names (``"channel_strip"``), concatenated in order; this is the order of
    the normalised parameter vector ``p``.

    Raises:
        UnknownNameError: a name that is neither a processor nor a chain of
            :mod:`mixbridge.schema`; the message lists the known names.
    """
    out: list[tuple[str, Param]] = []
    for name in schema:
        if name in CHAINS:
            out.extend(CHAINS[name].flat_params())
            continue
        proc = _processor(name)
        if proc is None:
            procs = sorted({p.name for c in CHAINS.values() for p in c.processors})
            raise UnknownNameError(
                f"unknown schema entry '{name}'; known processors: {', '.join(procs)}; "
                f"known chains: {', '.join(CHAINS)}"
            )
        out.extend((f"{proc.name}.{p.name}", p) for p in proc.params)
    return out


def schema_param_names(schema: Sequence[str]) -> list[str]:
    """The ``"processor.param"`` names of :func:`schema_params`, in vector order."""
    return [name for name, _ in schema_params(schema)]


def schema_record(schema: Sequence[str]) -> dict:
    """JSON-able record: ``{"entries", "param_names", "params": {name: {unit, min, max,
    default, scale, kind}}}`` — what sidecars store and loaders compare."""
    params = schema_params(schema)
    return {
        "entries": list(schema),
        "param_names": [n for n, _ in params],
        "params": {
            n: {"unit": p.unit, "min": p.min, "max": p.max, "default": p.default,
                "scale": p.scale, "kind": p.kind}
            for n, p in params
        },
    }


def schema_differences(record: dict) -> list[str]:
    """Human-readable differences between a stored :func:`schema_record` and today's schema
    (empty when they agree). Unknown entries are reported, not raised."""
    try:
        current = schema_record(record.get("entries", []))
    except UnknownNameError as e:
        return [str(e)]
    diffs = []
    if list(record.get("param_names", [])) != current["param_names"]:
        diffs.append(f"parameters {list(record.get('param_names', []))} != {current['param_names']}")
    for name, spec in (record.get("params") or {}).items():
        now = current["params"].get(name)
        if now is None:
            continue
        for key in ("unit", "min", "max", "scale", "kind"):
            if key in spec and spec[key] != now[key]:
                diffs.append(f"{name}.{key} was {spec[key]!r}, is now {now[key]!r}")
    return diffs
