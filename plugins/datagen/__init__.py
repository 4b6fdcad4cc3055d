"""Training data from real plugins: paired effect data, demastering pairs, random console mixes.

Modules: :mod:`.format` (the dataset folder: config, ``.npz`` shards, append-only
manifest, verify/info), :mod:`.runner` (resumable, isolated generation),
:mod:`.effect`, :mod:`.demaster`, :mod:`.mixes` (the three generators),
:mod:`.sources`, :mod:`.params`, :mod:`.augment`, :mod:`.job` (shared pieces) and
:mod:`.ray_backend` (the same jobs on a Ray cluster). Torch-free.
"""
