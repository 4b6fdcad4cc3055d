"""Importing the core, the host or the bridge must not import torch (checked in a fresh interpreter)."""
from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", [
    "mixbridge", "mixbridge.schema", "mixbridge.session", "mixbridge.cli", "mixbridge.commands",
    "mixbridge.plugins", "mixbridge.plugins.backend", "mixbridge.plugins.builtin", "mixbridge.plugins.console",
    "mixbridge.plugins.mastering", "mixbridge.models", "mixbridge.models.mixers", "mixbridge.models.automix",
    "mixbridge.bridge", "mixbridge.export", "mixbridge.export.runtime", "mixbridge.export.artifact", "mixbridge.plugins.master_bus",
    "mixbridge.bridge.live", "mixbridge.bridge.plugin_maps", "mixbridge.plugins.contract", "mixbridge.plugins.dynamics",
    "mixbridge.plugins.reverb", "mixbridge.plugins.map_laws", "mixbridge.plugins.pluginmap",
    "mixbridge.models.registry", "mixbridge.models.proxy_schema",
])
def test_no_torch_import(module):
    code = f"import sys, {module}; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0, f"{module} imported torch"


def test_cli_help_does_not_import_torch():
    code = ("import sys; from mixbridge.cli import build_parser; build_parser(); "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
