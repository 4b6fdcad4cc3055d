"""How readable the house is, in numbers: long files, docstring coverage, layer violations, tests.

    .venv/bin/python scripts/house_report.py            # the table, as Markdown
    .venv/bin/python scripts/house_report.py --no-tests # skip collecting the tests (faster)

Counts, per library package (``mixbridge`` core and app, ``plugins``, ``models``, ``export``,
``bridge``): source files and lines, files over 400 and over 450 lines, and the share of public
definitions (modules, classes, functions and methods whose names do not start with ``_``, in
modules whose names do not start with ``_``) that carry a docstring. The layer violations come
from the import-graph walk of ``tests/test_layers.py``; the tests are counted by
``pytest --collect-only`` per folder of ``tests/``. Duplicate code is measured by the separate
``duplicates`` command, not here.
"""
from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_layers import PACKAGE_DIRS, library_files, violations  # noqa: E402

#: Line counts the issue measures against ("no library file over about 450 lines").
LONG_LINES = (400, 450)


def _public_defs(tree: ast.Module):
    """Yield ``(name, has_docstring)`` for the module and its public classes, functions, methods."""
    yield "<module>", ast.get_docstring(tree) is not None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            yield node.name, ast.get_docstring(node) is not None
            if isinstance(node, ast.ClassDef):
                for sub in node.body:
                    if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)) and not sub.name.startswith("_"):
                        yield f"{node.name}.{sub.name}", ast.get_docstring(sub) is not None


def package_table() -> list[dict]:
    """One row per package folder: files, lines, long files, docstring coverage."""
    rows = []
    for folder in PACKAGE_DIRS:
        files = [p for p in library_files() if p.relative_to(ROOT).parts[0] == folder]
        lines = {p: len(p.read_text().splitlines()) for p in files}
        documented = total = 0
        for p in files:
            if p.name.startswith("_") and p.name != "__init__.py":
                continue
            for _, has in _public_defs(ast.parse(p.read_text())):
                total += 1
                documented += has
        rows.append({
            "package": folder, "files": len(files), "lines": sum(lines.values()),
            **{f"over_{n}": sorted(f"{p.relative_to(ROOT)} ({c})" for p, c in lines.items() if c > n)
               for n in LONG_LINES},
            "documented": documented, "public": total,
        })
    return rows


def test_counts() -> Counter:
    """Collected test items per folder of ``tests/`` (a flat file counts under its own name)."""
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
                         cwd=ROOT, capture_output=True, text=True).stdout
    counts: Counter = Counter()
    for line in out.splitlines():
        if "::" not in line:
            continue
        parts = Path(line.split("::", 1)[0]).parts
        counts[parts[1] if len(parts) > 2 else parts[-1]] += 1
    return counts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-tests", action="store_true", help="do not collect the tests")
    args = ap.parse_args(argv)
    print("| package | files | lines | files > 400 lines | files > 450 lines | public definitions documented |")
    print("|---|---|---|---|---|---|")
    for r in package_table():
        share = 100.0 * r["documented"] / max(r["public"], 1)
        print(f"| {r['package']} | {r['files']} | {r['lines']} | {len(r['over_400'])} | {len(r['over_450'])} | "
              f"{r['documented']}/{r['public']} ({share:.0f} %) |")
    long = [f for r in package_table() for f in r["over_450"]]
    print(f"\nfiles over 450 lines: {', '.join(long) or 'none'}")
    bad = violations()
    print(f"\nlayer violations: {len(bad)}")
    for b in bad:
        print(f"  {b}")
    if not args.no_tests:
        counts = test_counts()
        print(f"\ntests collected: {sum(counts.values())}")
        for area, n in sorted(counts.items()):
            print(f"  {area}: {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
