"""The fixtures every test folder shares (plain helpers live in ``tests/support.py``).

* ``multitrack``: the five-stem synthetic multitrack of ``support.write_multitrack``, written once
  per session; ``multitrack_copy`` is a per-test copy that a test may modify.
* ``composer_e1m9_x0_root`` / ``composer_e1m9_x0``: a one-excerpt composer dataset of the demo song D_E1M9
  (its first excerpt ``e1m9_x0``, a test-split song, identical to the full dataset's), built once per
  session for the model-card re-checks; skipped where ``support.HAVE_DEMO_SOURCES`` is false.
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

from tests.support import HAVE_DEMO_SOURCES, VST_SKIP_REASON, torch_threads, write_multitrack


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


@pytest.fixture(scope="session")
def composer_e1m9_x0_root(tmp_path_factory) -> Path:
    """The folder of a composer dataset holding only ``e1m9_x0`` (read-only; built once per session)."""
    if not HAVE_DEMO_SOURCES:
        pytest.skip("needs fluidsynth, freedoom, fluid-soundfont-gm and avldrums.lv2-soundfont (apt packages)")
    from mixbridge.plugins.datagen.composer.build import build_composer, resolve_settings

    root = tmp_path_factory.mktemp("composer_e1m9") / "ds"
    build_composer(root, resolve_settings(pick=["D_E1M9"], excerpts_per_song=1), jobs=1, progress=False,
                   log=lambda _: None)
    return root


@pytest.fixture(scope="session")
def composer_e1m9_x0(composer_e1m9_x0_root):
    """The excerpt ``e1m9_x0`` of ``composer_e1m9_x0_root`` (a test-split song), checked to be that one."""
    from mixbridge.plugins.datagen.composer import read_composer_dataset

    (excerpt,) = read_composer_dataset(composer_e1m9_x0_root).excerpts
    assert excerpt.id == "e1m9_x0" and excerpt.split == "test", (excerpt.id, excerpt.split)
    return excerpt


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
