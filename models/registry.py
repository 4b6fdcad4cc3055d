"""An explicit registry of proxy models (STYLE.md point 11).

``register(name, factory)`` adds an entry and raises on duplicates;
``create(name, **overrides)`` builds one (overrides are constructor keyword
arguments, e.g. ``schema=("eq", "compressor")`` or ``sample_rate=44100``);
``names()`` lists them. Importing this module does not import torch: factories
import :mod:`mixbridge.models.tcn` when called.

Built-in entries (all untrained; weights come from checkpoints):

===================  ======  ======  ======  ======  ================  =========
name                 causal  blocks  kernel  chans   receptive field   note
===================  ======  ======  ======  ======  ================  =========
tcn-tiny             no      4       3       8       31                fast tests
tcn-tiny-causal      yes     4       3       8       31                fast tests
tcn-10 / -causal     no/yes  10      15      32      14 323 (298 ms)   thesis TCN-10
tcn-20 / -causal     no/yes  20      15      32      28 645 (597 ms)   thesis TCN-20
tcn-30               no      30      15      32      42 967 (895 ms)   thesis TCN-30
tcn-rt               yes     10      3       16      2 047 (42.6 ms)   streaming size
===================  ======  ======  ======  ======  ================  =========

(receptive fields in samples; milliseconds at 48 kHz.) ``tcn-rt`` is the
size meant for a live bus: a causal 1-stack TCN small enough to run in real time
on one CPU core with onnxruntime (see ``scripts/bench_streaming.py``).
"""
from __future__ import annotations

from typing import Any, Callable

from mixbridge.errors import MixbridgeError, UnknownNameError


class RegistryError(ValueError, MixbridgeError):
    """A registry entry that clashes with an existing one."""


_FACTORIES: dict[str, Callable[..., Any]] = {}
_DESCRIPTIONS: dict[str, str] = {}


def register(name: str, factory: Callable[..., Any], description: str = "") -> None:
    """Add ``factory`` under ``name``; ``factory(**overrides)`` must return a model.

    Raises:
        RegistryError: ``name`` is already registered.
    """
    if name in _FACTORIES:
        raise RegistryError(f"model '{name}' is already registered; pick another name")
    _FACTORIES[name] = factory
    _DESCRIPTIONS[name] = description


def names() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_FACTORIES)


def describe(name: str) -> str:
    _check(name)
    return _DESCRIPTIONS[name]


def _check(name: str) -> None:
    if name not in _FACTORIES:
        raise UnknownNameError(f"unknown model '{name}'; known models: {', '.join(names())}")


def create(name: str, **overrides: Any):
    """Build the registered model ``name`` with constructor ``overrides``.

    Raises:
        UnknownNameError: ``name`` is not registered; the message lists the known names.
        ModelConfigError: an override that cannot build the model.
    """
    _check(name)
    return _FACTORIES[name](**overrides)


def architecture_class(architecture: str):
    """The model class for an ``architecture`` string recorded in a checkpoint.

    Raises:
        UnknownNameError: an architecture this version does not know.
    """
    from .tcn import TCN

    classes = {TCN.architecture: TCN}
    try:
        return classes[architecture]
    except KeyError:
        raise UnknownNameError(
            f"unknown architecture '{architecture}'; known: {', '.join(classes)}") from None


def _tcn(**defaults: Any) -> Callable[..., Any]:
    def factory(**overrides: Any):
        from .tcn import TCN

        return TCN(**{**defaults, **overrides})

    return factory


_TINY = dict(channels=8, kernel_size=3, n_blocks=4, cond_dim=16)
_THESIS = dict(channels=32, kernel_size=15, blocks_per_stack=10)

register("tcn-tiny", _tcn(**_TINY), "4 blocks, kernel 3, 8 channels, centre-cropped; for fast tests")
register("tcn-tiny-causal", _tcn(**_TINY, causal=True), "causal tcn-tiny; for fast streaming tests")
register("tcn-10", _tcn(**_THESIS, n_blocks=10), "thesis TCN-10: 1 stack, dilations 1..512, kernel 15")
register("tcn-10-causal", _tcn(**_THESIS, n_blocks=10, causal=True), "causal TCN-10")
register("tcn-20", _tcn(**_THESIS, n_blocks=20), "thesis TCN-20: 2 stacks")
register("tcn-20-causal", _tcn(**_THESIS, n_blocks=20, causal=True), "causal TCN-20")
register("tcn-30", _tcn(**_THESIS, n_blocks=30), "thesis TCN-30: 3 stacks")
register("tcn-rt", _tcn(channels=16, kernel_size=3, n_blocks=10, causal=True),
         "causal, 10 blocks, kernel 3, 16 channels: the live-bus size")
