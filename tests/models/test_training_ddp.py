"""The trainer under ``torchrun``: two CPU processes on gloo train one model (torch DDP).

The physical expectation: DDP averages the ranks' gradients, so after one step the
gradient on every rank equals the mean of the single-process gradients of the ranks'
batches (each rank takes every second example of a global batch, :func:`shard_batches`),
and both ranks hold the same weights and buffers. Run as a script, this file is the worker
that ``torch.distributed.run`` starts.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from safetensors.torch import load_file, save_file  # noqa: E402

from mixbridge.models.training import ProxyTask, Trainer, epoch_order, setup, shard_batches, split_indices  # noqa: E402

WORLD_SIZE = 2
#: Per-rank batch; the global batch is WORLD_SIZE times this.
BATCH = 2
VAL_FRACTION = 0.25
PATCH = 4096
#: With one thread here as in the workers, each rank's gradient repeats this process's
#: arithmetic; DDP halves and sums the two (exact in binary), so only the all-reduce's
#: bucketing may differ: a few float32 ulps of the largest gradient.
GRAD_TOL = 1e-6
#: The torchrun launch, two interpreters importing torch, a tiny model: well under this.
LAUNCH_TIMEOUT_S = 300


def _task(data: Path) -> ProxyTask:
    return ProxyTask(data, model="tcn-tiny-causal", patch_samples=PATCH, seed=0)


@pytest.fixture(scope="module")
def comp_ds(tmp_path_factory) -> Path:
    """The training tests' compressor dataset (8 mono 0.1 s examples)."""
    from tests.models.test_train import compressor_dataset

    return compressor_dataset(tmp_path_factory.mktemp("ddp"))


def _worker(data: Path, out: Path) -> None:
    """One rank: one optimizer step through the Trainer, then this rank's gradients and state to ``out``."""
    torch.set_num_threads(1)
    world = setup("cpu")
    task = _task(data)
    Trainer(task, out / "run", recipe={"test": "ddp"}, batch_size=BATCH, val_fraction=VAL_FRACTION, seed=0,
            max_steps=1, progress=False, world=world).run()
    grads = {f"grad.{k}": p.grad.contiguous() for k, p in task.model.named_parameters()}
    state = {f"state.{k}": v.contiguous() for k, v in task.model.state_dict().items()}
    save_file(grads | state, str(out / f"rank{world.rank}.safetensors"))


@pytest.mark.slow
@pytest.mark.skipif(not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
                    reason="torch built without distributed/gloo")
def test_two_gloo_ranks_average_their_gradients_and_agree(comp_ds, tmp_path):
    from tests.support import torch_threads  # not at the top: torchrun runs this file as a script

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(WORLD_SIZE),
           __file__, str(comp_ds), str(tmp_path)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-4000:]
    ranks = [load_file(str(tmp_path / f"rank{r}.safetensors")) for r in range(WORLD_SIZE)]
    for k in ranks[0]:
        if k.startswith("state."):  # one optimizer step on the same averaged gradient; rank 0's buffers
            assert torch.equal(ranks[0][k], ranks[1][k]), k
    assert (tmp_path / "run" / "last.json").exists() and not list(tmp_path.glob("run/*rank*"))

    # the expectation, in this process: the mean of the gradients of each rank's batch
    with torch_threads(1):  # the workers' arithmetic (a multi-threaded conv sums in another order)
        expected = _expected_gradient(comp_ds)
    scale = max(float(g.abs().max()) for g in expected.values())
    assert scale > 0.0
    for k, g in expected.items():
        for rank in ranks:
            assert float((rank[f"grad.{k}"] - g).abs().max()) <= GRAD_TOL * scale, k


def _expected_gradient(comp_ds: Path) -> dict:
    """The mean over ranks of the single-process gradient of each rank's first batch."""
    task = _task(comp_ds)
    train, _ = split_indices(len(task.train_data), VAL_FRACTION, seed=0)
    order = epoch_order(train, len(train), seed=0, epoch=0)
    task.train_data.set_epoch(0)
    task.model.train()
    expected = {k: torch.zeros_like(p) for k, p in task.model.named_parameters()}
    for r in range(WORLD_SIZE):
        positions = shard_batches(order, BATCH, r, WORLD_SIZE)[0]
        task.model.zero_grad()
        task.step(task.collate([task.train_data[j] for j in positions]))["loss"].backward()
        for k, p in task.model.named_parameters():
            expected[k] += p.grad / WORLD_SIZE
    return expected


if __name__ == "__main__":
    _worker(Path(sys.argv[1]), Path(sys.argv[2]))
