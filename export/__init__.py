"""mixbridge.export: versioned ONNX/TorchScript artifacts and the torch-free streaming runtime.

* :mod:`mixbridge.export.artifact` — the artifact folder format, checksums, :func:`load_artifact`
  (numpy only);
* :mod:`mixbridge.export.runtime` — :class:`StreamingSession` (numpy + onnxruntime, never torch);
* :mod:`mixbridge.export.torchscript` — :class:`TorchScriptSession` (imports torch lazily) and
  :func:`open_session` (either session, by the artifact's format);
* :mod:`mixbridge.export.exporter` — :func:`export_model` (needs torch), dispatching on the
  model's architecture (:func:`mixbridge.models.registry.streaming_wrapper`);
* :mod:`mixbridge.export.compare` — :func:`compare_proxy`: a proxy (checkpoint or artifact) against
  the real plugin it imitates, one module per stage;
* :mod:`mixbridge.export.cli` — ``mixbridge export`` and ``mixbridge compare``.

Importing this package imports nothing from them, and never torch.
"""
