"""The fixtures every test folder shares (plain helpers live in ``tests/support.py``).

* ``multitrack``: the five-stem synthetic multitrack of ``support.write_multitrack``, written once
  per session; ``multitrack_copy`` is a per-test copy that a test may modify.
* Every test that ``support.needs_vst`` skips also carries the ``vst`` marker (``-m "not vst"``
  deselects them).

Markers (declared in pyproject ``[tool.pytest.ini_options]``, ``--strict-markers``): ``vst``,
``jack``, ``ardour`` (need those programs) and ``slow`` (over 20 s on a 2-core CPU; ``make test``
runs them, ``-m "not slow"`` leaves them out).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support import VST_SKIP_REASON, torch_threads, write_multitrack


@pytest.fixture(scope="session")
def multitrack(tmp_path_factory) -> Path:
    """The session's 6 s multitrack folder (read-only: copy it with ``multitrack_copy`` to modify)."""
    return write_multitrack(tmp_path_factory.mktemp("stems") / "song")


@pytest.fixture
def multitrack_copy(multitrack, tmp_path) -> Path:
    """A private copy of ``multitrack`` in the test's ``tmp_path``."""
    dst = tmp_path / "song"
    shutil.copytree(multitrack, dst)
    return dst


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch intra-op thread for a whole module (``pytest.mark.usefixtures("one_torch_thread")``):
    tiny tensors run faster, and far faster on a busy 2-core box."""
    with torch_threads(1):
        yield


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give every test that ``needs_vst`` guards the ``vst`` marker too."""
    for item in items:
        if any(m.kwargs.get("reason") == VST_SKIP_REASON for m in item.iter_markers("skipif")):
            item.add_marker(pytest.mark.vst)
