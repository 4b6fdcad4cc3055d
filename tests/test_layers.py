"""The package layers hold: an AST walk of every library module's imports, lazy ones included.

Layers, bottom to top (README "Layout and design"):

* ``core`` -- ``mixbridge.*`` (schema, session, audio, loudness, errors, records): numpy/scipy only;
* ``plugins`` -- the host, the backends, the reference DSP, datagen and the demo builder: core;
* ``models`` -- mixers, torch models, losses, the trainer: core and plugins;
* ``export`` -- artifacts, the exporter, the streaming runtime, ``compare``: everything below;
* ``bridge`` -- DAWs, OSC/MIDI, the live JACK bus: core, plugins and the torch-free runtime
  (``export.runtime``, ``export.artifact``, ``export.master_runtime``), never models or torch, not even
  transitively;
* ``app`` -- ``mixbridge.app``: ``automix``, ``render``, ``master`` and the CLI, on top of all.

An import counts wherever it stands (module level, inside a function, under ``TYPE_CHECKING``),
and so does a string constant naming a mixbridge module (``importlib.import_module`` by name).
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Source folder -> package name (pyproject.toml ``package-dir``).
PACKAGE_DIRS = {"mixbridge": "mixbridge", "plugins": "mixbridge.plugins", "models": "mixbridge.models",
                "export": "mixbridge.export", "bridge": "mixbridge.bridge"}
#: Which layers each layer may import.
ALLOWED = {
    "core": {"core"},
    "plugins": {"core", "plugins"},
    "models": {"core", "plugins", "models"},
    "export": {"core", "plugins", "models", "runtime", "export"},
    "bridge": {"core", "plugins", "bridge", "runtime"},
    "runtime": {"core", "plugins", "runtime"},
    "app": {"core", "plugins", "models", "export", "runtime", "bridge", "app"},
}
#: The torch-free streaming runtime the bridge may use: a layer of its own inside ``export``.
RUNTIME_MODULES = {"mixbridge.export.runtime", "mixbridge.export.artifact", "mixbridge.export.master_runtime",
                   "mixbridge.export.onnx_session", "mixbridge.export.greybox_dsp"}
#: Layers that must never import torch (the bridge, the host and the core run without it).
TORCH_FREE = {"core", "plugins", "bridge", "runtime"}


def module_name(path: Path) -> str:
    """``plugins/datagen/runner.py`` -> ``mixbridge.plugins.datagen.runner``."""
    rel = path.relative_to(ROOT).with_suffix("")
    base = PACKAGE_DIRS[rel.parts[0]]
    rest = [p for p in rel.parts[1:] if p != "__init__"]
    return ".".join([base, *rest])


def layer(module: str) -> str | None:
    """The layer of a mixbridge module, ``"torch"`` for torch, None for anything else."""
    if module == "torch" or module.startswith("torch."):
        return "torch"
    if module in RUNTIME_MODULES:
        return "runtime"
    for prefix, name in (("mixbridge.app", "app"), ("mixbridge.plugins", "plugins"), ("mixbridge.models", "models"),
                         ("mixbridge.export", "export"), ("mixbridge.bridge", "bridge")):
        if module == prefix or module.startswith(prefix + "."):
            return name
    if module == "mixbridge" or module.startswith("mixbridge."):
        return "core"
    return None


def library_files() -> list[Path]:
    """Every library source file (the five package folders)."""
    return sorted(p for d in PACKAGE_DIRS for p in (ROOT / d).rglob("*.py"))


def imports_of(path: Path, source: str | None = None) -> set[str]:
    """Every module ``path`` (or ``source``, read as if it stood at ``path``) imports, wherever the
    import stands, resolved to absolute names."""
    mod = module_name(path)
    package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text() if source is None else source, str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            out.add(target)
            # ``from pkg import mod`` imports the submodule when there is one.
            out.update(f"{target}.{a.name}" for a in node.names if _is_module(f"{target}.{a.name}"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _is_module(node.value):
            out.add(node.value)
    return {m for m in out if m}


def _is_module(name: str) -> bool:
    if not name.startswith("mixbridge"):
        return False
    return name in _MODULES


_MODULES = {module_name(p) for p in library_files()}


def import_graph() -> dict[str, set[str]]:
    """``{module: modules it imports}`` over the whole library."""
    return {module_name(p): imports_of(p) for p in library_files()}


def violations() -> list[str]:
    """Every import edge that breaks :data:`ALLOWED` or :data:`TORCH_FREE`, plus bridge modules that
    reach models or torch through any chain of imports."""
    graph = import_graph()
    bad = []
    for mod, deps in sorted(graph.items()):
        src = layer(mod)
        for dep in sorted(deps):
            dst = layer(dep)
            if dst is None or dst == src:
                continue
            if dst == "torch":
                if src in TORCH_FREE:
                    bad.append(f"{mod} -> {dep} (the {src} layer never imports torch)")
            elif dst not in ALLOWED[src]:
                bad.append(f"{mod} -> {dep} ({src} may import only {', '.join(sorted(ALLOWED[src]))})")
    reach: dict[str, set[str]] = defaultdict(set)
    for mod in graph:
        if layer(mod) not in ("bridge", "runtime"):
            continue
        seen, todo = set(), [mod]
        while todo:
            m = todo.pop()
            for dep in graph.get(m, ()):
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        reach[mod] = {d for d in seen if layer(d) in ("models", "torch")}
        if reach[mod]:
            bad.append(f"{mod} reaches {', '.join(sorted(reach[mod]))} through its imports")
    return bad


def test_walker_sees_lazy_relative_and_string_imports():
    """The walker is not blind: a lazy import, a relative import and an import by name are edges."""
    src = ("def f():\n    import torch\n    from ..models import tcn\n"
           "MODS = ('mixbridge.models.checkpoint',)\n")
    deps = imports_of(ROOT / "plugins" / "_layer_probe.py", source=src)
    assert {"torch", "mixbridge.models", "mixbridge.models.tcn", "mixbridge.models.checkpoint"} <= deps


def test_layers_hold():
    bad = violations()
    assert not bad, "layer violations:\n  " + "\n  ".join(bad)


@pytest.mark.parametrize("name,expected", [
    ("mixbridge.schema", "core"), ("mixbridge.app.cli", "app"), ("mixbridge.plugins.vst", "plugins"),
    ("mixbridge.export.runtime", "runtime"), ("mixbridge.export.exporter", "export"), ("torch.nn", "torch"),
    ("numpy", None),
])
def test_layer_names(name, expected):
    assert layer(name) == expected
