"""The learned mixer's network: per-stem features -> normalised channel-strip parameters (torch).

:class:`ParamMixerNet` is a small MLP applied to every stem on its own (a shared "track
encoder" with a parameter head, the per-track half of Steinmetz et al.'s differentiable
mixing console, ICASSP 2021, without the context pooling): ``features [tracks, n_features]``
(:func:`mixbridge.models.learned_mixer.stem_features`) -> ``u [tracks, n_params]`` in 0..1
(sigmoid), in ``CHANNEL_STRIP.flat_params()`` order. The mixer turns ``u`` into a session with
:func:`mixbridge.models.mix_session.session_from_vectors`; a training task can render ``u``
through :class:`mixbridge.models.console.TorchConsole` via
:func:`~mixbridge.models.console.denormalise`, so the whole path is differentiable.

Its keyword arguments are its config (checkpoints record them; STYLE.md point 10), and it is
the ``mixer-mlp`` architecture of :data:`mixbridge.models.registry.ARCHITECTURES`.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mixbridge.proxy_schema import schema_param_names

from .tcn import ModelConfigError

#: How many features :func:`mixbridge.models.learned_mixer.stem_features` gives per stem.
N_FEATURES = 19


class ParamMixerNet(nn.Module):
    """Features of one stem -> its normalised channel-strip parameters.

    Args:
        n_features: input features per stem (:data:`N_FEATURES`).
        hidden: width of every hidden layer.
        n_layers: hidden layers (Linear -> ReLU each), >= 1.
        schema: the parameters predicted (processor or chain names, default the whole strip).
        sample_rate: the rate the stems' features were measured at, Hz.

    Shapes: ``forward(features [tracks, n_features]) -> [tracks, n_params]``, values in (0, 1).

    Raises:
        ModelConfigError: a non-positive size, or a schema with no parameters.
        UnknownNameError: an unknown schema entry.
    """

    architecture = "mixer-mlp"
    #: A mixer looks at whole stems: it neither streams nor delays (checkpoint records store None).
    receptive_field = None
    latency_samples = None

    def __init__(self, *, n_features: int = N_FEATURES, hidden: int = 32, n_layers: int = 2,
                 schema: Sequence[str] = ("channel_strip",), sample_rate: int = 48000) -> None:
        super().__init__()
        for label, v in (("n_features", n_features), ("hidden", hidden), ("n_layers", n_layers),
                         ("sample_rate", sample_rate)):
            if int(v) != v or v < 1:
                raise ModelConfigError(f"ParamMixerNet {label} = {v!r} must be a positive integer")
        self.schema = tuple(schema)
        self.param_names = schema_param_names(self.schema)
        if not self.param_names:
            raise ModelConfigError("ParamMixerNet schema has no parameters; name a processor or chain")
        self.n_features, self.hidden, self.n_layers = int(n_features), int(hidden), int(n_layers)
        self.sample_rate = int(sample_rate)
        self.n_params = len(self.param_names)
        layers: list[nn.Module] = []
        width = self.n_features
        for _ in range(self.n_layers):
            layers += [nn.Linear(width, self.hidden), nn.ReLU()]
            width = self.hidden
        layers.append(nn.Linear(width, self.n_params))
        self.net = nn.Sequential(*layers)

    def config(self) -> dict:
        """The constructor arguments as JSON-able data (``ParamMixerNet(**config)`` rebuilds it)."""
        return {"n_features": self.n_features, "hidden": self.hidden, "n_layers": self.n_layers,
                "schema": list(self.schema), "sample_rate": self.sample_rate}

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``features [tracks, n_features]`` -> normalised parameters ``[tracks, n_params]`` (sigmoid).

        Raises:
            ModelConfigError: a last dimension other than ``n_features``.
        """
        if features.shape[-1] != self.n_features:
            raise ModelConfigError(f"ParamMixerNet takes {self.n_features} features per stem, "
                                   f"got shape {tuple(features.shape)}")
        return torch.sigmoid(self.net(features))
