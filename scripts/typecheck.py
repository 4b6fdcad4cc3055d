"""Type-check the library as the one package it installs as: ``mypy -p mixbridge``.

    .venv/bin/python scripts/typecheck.py            # mypy over every mixbridge.* module
    .venv/bin/python scripts/typecheck.py --summary  # plus error counts per package and code

The five source folders install as one namespace (pyproject ``[tool.setuptools] package-dir``:
``plugins/`` is ``mixbridge.plugins``, ``models/`` is ``mixbridge.models`` and so on). mypy finds
modules by folder, not through the editable install's import hook, so this script lays the folders
out as that namespace, a tree of symbolic links under ``build/typecheck/`` rebuilt on every run
(new files are seen at once), runs mypy there with the project's ``[tool.mypy]`` configuration,
and prints each error with its real path (``plugins/vst.py:115``, not ``mixbridge/plugins/...``).
Exit status: mypy's (0 clean, 1 type errors, 2 usage error).
"""
from __future__ import annotations

import argparse
import fcntl
import os
import re
import shutil
import sys
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TREE = ROOT / "build" / "typecheck"


def package_dirs() -> dict[str, str]:
    """``{"mixbridge.plugins": "plugins", ...}`` from pyproject ``[tool.setuptools] package-dir``."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["tool"]["setuptools"]["package-dir"]


def build_tree(tree: Path = TREE) -> Path:
    """Lay the source folders out as ``tree/mixbridge/...`` (symbolic links, ``tree`` emptied first);
    return ``tree``."""
    if tree.exists():
        shutil.rmtree(tree)
    top = tree / "mixbridge"
    top.mkdir(parents=True)
    dirs = package_dirs()
    for entry in sorted((ROOT / dirs["mixbridge"]).iterdir()):
        if entry.name != "__pycache__":
            os.symlink(entry, top / entry.name)
    for package, folder in sorted(dirs.items()):
        if package != "mixbridge":
            # mixbridge.plugins -> build/typecheck/mixbridge/plugins -> <repo>/plugins
            os.symlink(ROOT / folder, tree.joinpath(*package.split(".")))
    return tree


def real_paths(text: str) -> str:
    """Rewrite ``mixbridge/plugins/x.py`` in mypy's output back to the source path ``plugins/x.py``."""
    for package, folder in package_dirs().items():
        if package != "mixbridge":
            text = re.sub(rf"(?m)^{re.escape(package.replace('.', '/'))}/", f"{folder}/", text)
    return text


def summary(text: str) -> str:
    """Error counts per source folder and per mypy error code, most frequent first."""
    folders: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    for line in text.splitlines():
        m = re.match(r"^([^:]+):\d+: error: .*\[([a-z-]+)\]$", line)
        if m:
            folders[m.group(1).split("/")[0]] += 1
            codes[m.group(2)] += 1
    lines = ["errors per folder: " + ", ".join(f"{k} {v}" for k, v in folders.most_common())]
    lines.append("errors per code:   " + ", ".join(f"{k} {v}" for k, v in codes.most_common()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run mypy over ``mixbridge.*``; return its exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary", action="store_true", help="print error counts per folder and code")
    args = parser.parse_args(argv)
    from mypy import api

    TREE.parent.mkdir(parents=True, exist_ok=True)
    cwd = os.getcwd()
    # one run at a time: a second one would rebuild the tree under the first one's feet
    with open(TREE.parent / "typecheck.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        tree = build_tree()
        os.chdir(tree)
        try:
            out, err, status = api.run(["-p", "mixbridge", "--config-file", str(ROOT / "pyproject.toml"),
                                        "--python-executable", sys.executable,
                                        "--cache-dir", str(ROOT / "build" / "mypy_cache")])
        finally:
            os.chdir(cwd)
    out = real_paths(out)
    sys.stdout.write(out)
    sys.stderr.write(err)
    if args.summary:
        print(summary(out))
    return status


if __name__ == "__main__":
    sys.exit(main())
