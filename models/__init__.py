"""mixbridge.models: mixers, proxies, DMC, mastering models, losses, metrics, training.

Importing this package does not import torch: the torch-free mixer registry
lives in :mod:`mixbridge.models.mixers`; torch models live in their own modules
(``tcn``, ``registry``, ``metrics``, ...) and are imported explicitly.
"""
