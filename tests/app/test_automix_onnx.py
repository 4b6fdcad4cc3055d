"""The torch-less ``dmc`` mixer path of automix (``build_mixer``): an ``.onnx`` checkpoint, or no torch at
all, runs the DMC network through onnxruntime (``OnnxDMCMixer``), and without an export the error says how
to make one. torch is blocked in a child interpreter the way tests/export/test_mixer_onnx.py blocks it."""
from __future__ import annotations

import json

import pytest

from tests.support import run_python

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from mixbridge.export.mixer_onnx import export_mixer_onnx
    from tests.support import torch_threads

    with torch_threads(1):
        return export_mixer_onnx("dmc", tmp_path_factory.mktemp("onnx") / "dmc.onnx", seed=3)


_NO_TORCH = (
    "import sys\n"
    "class NoTorch:  # as if torch were not installed: `import torch` raises ImportError\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] == 'torch':\n"
    "            raise ImportError('torch is not installed')\n"
    "sys.meta_path.insert(0, NoTorch())\n"
)


def test_automix_mixes_with_dmc_where_torch_is_not_installed(exported, multitrack, tmp_path):
    code = _NO_TORCH + (
        "import json\n"
        "import mixbridge.export.mixer_onnx as mo\n"
        "from mixbridge.app.cli import main\n"
        f"stems, tmp, onnx = {str(multitrack)!r}, {str(tmp_path)!r}, {str(exported)!r}\n"
        "common = ['--mixer', 'dmc', '--no-report', '-q']\n"
        "print(main(['automix', stems, '-o', tmp + '/a', '--checkpoint', onnx] + common))\n"
        "mo.SHIPPED_ONNX = mo.Path(tmp) / 'nowhere' / 'dmc.onnx'  # no shipped export yet\n"
        "print(main(['automix', stems, '-o', tmp + '/b'] + common))\n"
        "mo.SHIPPED_ONNX = mo.Path(onnx)  # the shipped export, when there is one\n"
        "print(main(['automix', stems, '-o', tmp + '/c'] + common))\n"
        "print('torch' in sys.modules)\n"
    )
    run = run_python(code)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["0", "2", "0", "False"], (run.stdout, run.stderr)
    assert run.stderr.count("\n") == 1
    assert run.stderr.startswith(f"mixbridge automix: error: {tmp_path / 'nowhere' / 'dmc.onnx'}: no ONNX export of "
                                 "the shipped dmc mixer, and torch is not installed; make it where torch is "
                                 "(`mixbridge export mixer ")
    assert f"models/mixers/dmc.json -o {tmp_path / 'nowhere' / 'dmc.onnx'}`) or install torch" in run.stderr
    assert not (tmp_path / "b").exists()
    a = json.loads((tmp_path / "a" / "session.json").read_text())
    c = json.loads((tmp_path / "c" / "session.json").read_text())
    assert a["provenance"]["mixer"] == "dmc" and a["tracks"] == c["tracks"]


def test_an_onnx_checkpoint_runs_through_onnxruntime_with_torch_installed(exported):
    """With torch present, ``--checkpoint X.onnx`` still names the ONNX runner (the torch loader would
    refuse the file); the decision is the same as the torch mixer's (tests/export/test_mixer_onnx.py)."""
    from mixbridge.app.automix import build_mixer
    from mixbridge.export.mixer_onnx import OnnxDMCMixer

    assert type(build_mixer("dmc", exported)) is OnnxDMCMixer
    assert type(build_mixer("dmc", str(exported) + ".json")) is OnnxDMCMixer


def test_a_torch_checkpoint_without_torch_says_to_export_it(tmp_path):
    code = _NO_TORCH + (
        "from mixbridge.app.cli import main\n"
        f"print(main(['automix', {str(tmp_path)!r} + '/none', '-o', {str(tmp_path)!r} + '/o', '--mixer', 'dmc', "
        "'--checkpoint', 'models/mixers/dmc.json', '-q']))\n"
    )
    run = run_python(code)
    assert run.stdout.split() == ["2"], run.stderr
    assert ("--checkpoint models/mixers/dmc.json: a torch checkpoint, and torch is not installed; export it"
            in run.stderr)
