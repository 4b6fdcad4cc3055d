"""mixbridge.models: the automatic mixers and the torch side (console, neural proxies, training).

Mixers (torch-free unless noted):

* :mod:`.mixers` -- the mixer registry (``--mixer`` choices, :func:`~.mixers.get_mixer`);
* :mod:`.knowledge_mixer` -- the rule-based default; :mod:`.baseline_mixers` -- mono sum,
  random, equal loudness; :mod:`.learned_mixer` -- a trained :mod:`.mixer_net` network (torch,
  loaded on first use); :mod:`.mix_session` -- one place that turns a mixer's choice into a session.

Torch:

* :mod:`.console` -- the schema's channel strip and master bus as one differentiable console,
  built from the stages in :mod:`.dsp`, :mod:`.dsp_eq`, :mod:`.dsp_dynamics`, :mod:`.dsp_reverb`;
* :mod:`.tcn` -- the TCN proxy with FiLM conditioning, offline and streaming;
  :mod:`.registry` -- the named learned models; :mod:`.checkpoint` -- safetensors + JSON checkpoints;
  ``proxies/`` -- the shipped proxies with their model cards;
* :mod:`.losses` -- the audio losses; :mod:`.metrics` -- the proxy evaluation metrics;
* :mod:`.training` -- the trainer (tasks, budgets, resume, DDP); :mod:`.train` -- proxy training's
  config and entry point; :mod:`.dataset` -- a torch ``Dataset`` over mixbridge datasets;
  :mod:`.cli` -- ``mixbridge train proxy``; ``configs/`` -- the training configs.

Importing this package does not import torch: each module above is imported explicitly,
and the mixer registry loads torch only when a learned mixer is built.
"""
