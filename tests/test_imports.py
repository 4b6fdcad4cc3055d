"""Importing the core, the host, the bridge, the app or the CLI parser does not import torch
(checked in a fresh interpreter, so nothing an earlier test imported can hide it).

tests/test_layers.py checks the same from the source (every import edge, lazy ones included);
this file checks what really happens at import time, registries and their side effects included.
"""
from __future__ import annotations

import pytest

from tests.support import run_python
from tests.test_layers import TORCH_FREE, layer, library_files, module_name

#: Entry points a user imports by name; each is checked in its own interpreter. The torch-free
#: parts of ``models`` (the mixer registry and the rule-based mixers) are here because the CLI
#: reads their names at ``--help`` time.
ENTRY_POINTS = [
    "mixbridge", "mixbridge.schema", "mixbridge.session", "mixbridge.records", "mixbridge.proxy_schema",
    "mixbridge.app", "mixbridge.app.cli", "mixbridge.app.commands", "mixbridge.app.automix",
    "mixbridge.plugins", "mixbridge.plugins.backend", "mixbridge.plugins.builtin", "mixbridge.plugins.console",
    "mixbridge.plugins.mastering", "mixbridge.plugins.master_bus", "mixbridge.plugins.contract",
    "mixbridge.plugins.datagen.demo",
    "mixbridge.models", "mixbridge.models.mixers", "mixbridge.models.registry",
    "mixbridge.export", "mixbridge.export.runtime", "mixbridge.export.artifact",
    "mixbridge.bridge", "mixbridge.bridge.push", "mixbridge.bridge.live",
]


def _torch_free_modules() -> list[str]:
    """Every library module of a torch-free layer (core, plugins, bridge, runtime) and of the app."""
    return sorted(m for m in map(module_name, library_files()) if layer(m) in TORCH_FREE | {"app"})


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_no_torch_import(module):
    code = f"import sys, {module}; sys.exit(1 if 'torch' in sys.modules else 0)"
    run = run_python(code)
    assert run.returncode == 0, f"{module} imported torch {run.stderr}"


def test_every_torch_free_module_imports_without_torch():
    """One fresh interpreter imports every module of the torch-free layers and the app in turn;
    the first one after which torch is loaded is named."""
    modules = _torch_free_modules()
    assert "mixbridge.app.cli" in modules and "mixbridge.bridge.push" in modules
    code = ("import importlib, sys\n"
            f"for m in {modules!r}:\n"
            "    importlib.import_module(m)\n"
            "    if 'torch' in sys.modules:\n"
            "        sys.exit('torch imported by ' + m)\n")
    run = run_python(code)
    assert run.returncode == 0, run.stderr.strip().splitlines()[-1]


def test_cli_help_does_not_import_torch():
    """``mixbridge --help`` and ``mixbridge automix --help`` read the registries but load no torch."""
    code = ("import sys\nfrom mixbridge.app.cli import main\n"
            "assert main(['--help']) == 0 and main(['automix', '--help']) == 0\n"
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    run = run_python(code)
    assert run.returncode == 0, run.stderr
