"""Training data from real plugins: paired effect data, demastering pairs, random console mixes.

Modules: :mod:`.format` (the dataset folder: config, manifest, commits), :mod:`.shards`
(deterministic ``.npz`` shard files, memory maps), :mod:`.verify` (``verify``/``info``),
:mod:`.runner` (resumable generation: which indices, which executor, the failure rule),
:mod:`.workers` (isolated local worker processes), :mod:`.results` (shard assembly and the
run summary), :mod:`.ray_backend` (the same jobs on a Ray cluster); :mod:`.effect`,
:mod:`.demaster`, :mod:`.mixes` (the three generators) and :mod:`.sources`,
:mod:`.params`, :mod:`.augment`, :mod:`.job` (their shared pieces). Torch-free.
"""
