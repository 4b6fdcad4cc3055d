"""The registries of learned models (STYLE.md point 11, the convention of :mod:`mixbridge.registry`).

Two registries, both of config-taking factories:

* :data:`MODELS` -- named model sizes: ``register(name, factory)`` adds one (a duplicate
  name raises :class:`~mixbridge.registry.DuplicateNameError`), ``create(name, **overrides)``
  builds one (overrides are constructor keyword arguments, e.g. ``schema=("eq", "compressor")``
  or ``sample_rate=44100``), ``names()`` lists them;
* :data:`ARCHITECTURES` -- the ``architecture`` string a checkpoint or an artifact records
  (``tcn-film``, ``mixer-mlp``, ``dmc``) -> the model class, with the streaming wrapper the exporter
  uses (:func:`register_architecture`, :func:`build_architecture`, :func:`streaming_wrapper`).
  Checkpoints and export dispatch on it, so a new architecture is one registration.

Importing this module does not import torch: factories import their model module when called.

Built-in model entries (all untrained; weights come from checkpoints):

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
``mixer-tiny`` is the untrained learned mixer (:mod:`mixbridge.models.mixer_net`:
per-stem features -> MLP -> channel-strip parameters) that the mixer tests run.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mixbridge.registry import DuplicateNameError, Registry, RegistryError

__all__ = ["ARCHITECTURES", "MODELS", "STREAMING", "DuplicateNameError", "RegistryError", "build_architecture",
           "create", "describe", "names", "register", "register_architecture", "streaming_wrapper"]

#: Named model sizes: ``factory(**overrides) -> nn.Module``.
MODELS: Registry[Any] = Registry("model")
#: Architecture names recorded in checkpoints -> ``factory(**config) -> nn.Module``.
ARCHITECTURES: Registry[Any] = Registry("architecture")
#: Architecture names -> ``factory(model=model) -> streaming wrapper`` (see :mod:`mixbridge.export.exporter`).
STREAMING: Registry[Any] = Registry("streaming architecture")


def register(name: str, factory: Callable[..., Any], description: str = "") -> None:
    """Add ``factory`` to :data:`MODELS` under ``name``; ``factory(**overrides)`` must return a model.

    Raises:
        DuplicateNameError: ``name`` is already registered (a :class:`RegistryError`).
    """
    MODELS.register(name, factory, description)


def names() -> list[str]:
    """Registered model names, sorted."""
    return sorted(MODELS.names())


def describe(name: str) -> str:
    """The one-line description of model ``name``.

    Raises:
        UnknownNameError: ``name`` is not registered; the message lists the known names.
    """
    return MODELS.summary(name)


def create(name: str, **overrides: Any):
    """Build the registered model ``name`` with constructor ``overrides``.

    Raises:
        UnknownNameError: ``name`` is not registered; the message lists the known names.
        ModelConfigError: an override that cannot build the model.
    """
    return MODELS.create(name, **overrides)


def register_architecture(architecture: str, factory: Callable[..., Any],
                          streaming: Callable[..., Any] | None = None, summary: str = "") -> None:
    """Register the model class of ``architecture`` (``factory(**config)`` rebuilds a recorded
    config) and, when it streams, ``streaming(model=model)`` -> the exporter's wrapper.

    Raises:
        DuplicateNameError: ``architecture`` is already registered.
    """
    ARCHITECTURES.register(architecture, factory, summary)
    if streaming is not None:
        STREAMING.register(architecture, streaming, summary)


def build_architecture(architecture: str, config: dict):
    """The model of a checkpoint record: ``architecture``'s class built from ``config``.

    Raises:
        UnknownNameError: an architecture this version does not know (the known ones listed).
        ModelConfigError: a config the class refuses.
    """
    return ARCHITECTURES.create(architecture, **config)


def streaming_wrapper(model):
    """The streaming wrapper of ``model`` (its ``architecture`` attribute picks it), e.g.
    :class:`~mixbridge.models.tcn.StreamingTCN` for ``tcn-film``.

    Raises:
        UnknownNameError: the architecture has no streaming export; the message lists those that have.
    """
    return STREAMING.create(getattr(model, "architecture", type(model).__name__), model=model)


def _tcn(**defaults: Any) -> Callable[..., Any]:
    def factory(**overrides: Any):
        from .tcn import TCN

        return TCN(**{**defaults, **overrides})

    return factory


def _streaming_tcn(model):
    from .tcn import StreamingTCN

    return StreamingTCN(model)


def _mixer_net(**defaults: Any) -> Callable[..., Any]:
    def factory(**overrides: Any):
        from .mixer_net import ParamMixerNet

        return ParamMixerNet(**{**defaults, **overrides})

    return factory


def _dmc(**config: Any):
    from .dmc import DMC

    return DMC(**config)


register_architecture("tcn-film", _tcn(), _streaming_tcn,
                      "the thesis TCN with FiLM conditioning (mixbridge.models.tcn)")
register_architecture("mixer-mlp", _mixer_net(),
                      summary="per-stem features to channel-strip parameters (mixbridge.models.mixer_net)")
register_architecture("dmc", _dmc,
                      summary="differentiable mixing console: log-mel tracks to gain and pan (mixbridge.models.dmc)")


def _master_unet(**config: Any):
    from .master_unet import MelUNet

    return MelUNet(**config)


def _master_net(**config: Any):
    from .learned_master import MasterNet

    return MasterNet(**config)


def _dae(**config: Any):
    from .dae import DAE

    return DAE(**config)


def _mixwaveunet(**config: Any):
    from .mixwaveunet import MixWaveUNet

    return MixWaveUNet(**config)


register_architecture("dae", _dae,
                      summary="deep autoencoder direct mixer: magnitude frames per group (mixbridge.models.dae)")
register_architecture("mixwaveunet", _mixwaveunet,
                      summary="multichannel Wave-U-Net direct mixer (mixbridge.models.mixwaveunet)")


def _deepmixing(**config: Any):
    from .deepmixing import DeepMixing

    return DeepMixing(**config)


register_architecture("deepmixing", _deepmixing,
                      summary="DeepMixing: Dirichlet gain automation per 400 ms chunk (mixbridge.models.deepmixing)")


def _greybox(**config: Any):
    from .proxy_greybox import GreyBoxProxy

    return GreyBoxProxy(**config)


def _streaming_greybox(model):
    from .proxy_greybox import StreamingGreyBox

    return StreamingGreyBox(model)


register_architecture("greybox", _greybox, _streaming_greybox,
                      "grey-box proxy: the schema's EQ/compressor, a learned knob law (mixbridge.models.proxy_greybox)")
def _dmc_full(**config: Any):
    from .dmc_full import DMCFull

    return DMCFull(**config)


register_architecture("dmc-full", _dmc_full,
                      summary="stems + reference to every strip and the master bus (mixbridge.models.dmc_full)")
register_architecture("master-mlp", _master_net,
                      summary="mix features to master-chain parameters (mixbridge.models.learned_master)")
register_architecture("master-unet", _master_unet,
                      summary="the seed's mel U-Net mastering baseline (mixbridge.models.master_unet)")

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
register("greybox", _greybox, "grey-box compressor (or EQ -> compressor) proxy with a learned knob law; "
         "streams at 0 latency")
register("mixer-tiny", _mixer_net(hidden=8, n_layers=1),
         "untrained learned mixer, one hidden layer of 8; for fast tests")
