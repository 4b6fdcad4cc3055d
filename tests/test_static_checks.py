"""``scripts/typecheck.py``: mypy sees the five source folders as the one package ``mixbridge.*``."""
from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def typecheck():
    spec = importlib.util.spec_from_file_location("typecheck", ROOT / "scripts" / "typecheck.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_package_dirs_are_pyprojects(typecheck):
    with open(ROOT / "pyproject.toml", "rb") as f:
        want = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    assert typecheck.package_dirs() == want and want["mixbridge.plugins"] == "plugins"


def test_tree_lays_every_folder_out_under_its_package_name(typecheck, tmp_path):
    tree = typecheck.build_tree(tmp_path / "tree")
    for package, folder in typecheck.package_dirs().items():
        laid = tree.joinpath(*package.split("."), "__init__.py")
        assert laid.resolve() == (ROOT / folder / "__init__.py").resolve(), package
    # a module of the core folder and one of a mapped folder, as mypy will find them
    assert (tree / "mixbridge" / "session.py").resolve() == (ROOT / "mixbridge" / "session.py").resolve()
    assert (tree / "mixbridge" / "plugins" / "backend.py").resolve() == (ROOT / "plugins" / "backend.py").resolve()
    typecheck.build_tree(tree)  # rebuilt from scratch: a second run neither fails nor nests links
    assert not (tree / "mixbridge" / "plugins" / "plugins").exists()


def test_error_paths_are_the_source_paths(typecheck):
    out = ("mixbridge/plugins/vst.py:115: error: x  [attr-defined]\n"
           "mixbridge/session.py:9: error: y  [arg-type]\n"
           "mixbridge/models/tcn.py:1: note: z\n")
    assert typecheck.real_paths(out) == ("plugins/vst.py:115: error: x  [attr-defined]\n"
                                         "mixbridge/session.py:9: error: y  [arg-type]\n"
                                         "models/tcn.py:1: note: z\n")
    assert typecheck.summary(typecheck.real_paths(out)).splitlines() == [
        "errors per folder: plugins 1, mixbridge 1", "errors per code:   attr-defined 1, arg-type 1"]
