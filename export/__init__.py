"""mixbridge.export: versioned ONNX/TorchScript artifacts and the torch-free streaming runtime.

* :mod:`mixbridge.export.artifact` — the artifact folder format, checksums, :func:`load_artifact`
  (numpy only);
* :mod:`mixbridge.export.runtime` — :class:`StreamingSession` (numpy + onnxruntime, never torch)
  and :class:`TorchScriptSession` (imports torch lazily);
* :mod:`mixbridge.export.exporter` — :func:`export_model` (needs torch);
* :mod:`mixbridge.export.cli` — ``mixbridge export``.

Importing this package imports nothing from them, and never torch.
"""
