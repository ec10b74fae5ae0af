"""Data-parallel training: 2 gloo processes on CPU = one process with the combined batch.

Each process sees half the batch; InfoNCE gathers the other half's features with gradients
(mclmcf.model.losses), so the mean of the two processes' losses and DDP's averaged gradients must equal the
loss and gradients of one process on all 8 samples. Eval mode: no dropout, so both sides are exact.
This file is also the worker script: the test runs it in a subprocess (spawned workers need an
importable __main__).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

BATCH = 8


def build():
    from mclmcf.model import MCLMCF
    from tiny_model import make_batch, tiny_config
    torch.manual_seed(0)
    model = MCLMCF(tiny_config()).eval()
    return model, make_batch(model.config, BATCH, seed=1)


def grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def worker(rank: int, world: int, tmp: str) -> None:
    import torch.distributed as dist
    from safetensors.torch import save_file
    from mclmcf.training.runtime import average_gradients
    dist.init_process_group("gloo", rank=rank, world_size=world, init_method=f"file://{tmp}/rendezvous")
    model, batch = build()
    share = BATCH // world
    part = {k: v[rank * share:(rank + 1) * share] for k, v in batch.items()}
    out = model(**part)
    out.loss.backward()
    average_gradients(model)                # what the trainer does after each backward under torchrun
    loss = out.loss.detach().clone()
    dist.all_reduce(loss)
    if rank == 0:
        save_file({"loss": (loss / world).reshape(1), **{f"grad.{n}": g for n, g in grads(model).items()}},
                  f"{tmp}/ddp.safetensors")
    dist.barrier()              # as the trainer ends: no rank tears the group down while the other still uses it
    dist.destroy_process_group()


def test_two_processes_equal_one_with_combined_batch(tmp_path):
    from safetensors.torch import load_file
    here = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(here.parent), str(here), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}   # a worker that aborts prints where it was
    proc = subprocess.run([sys.executable, __file__, str(tmp_path)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = load_file(str(tmp_path / "ddp.safetensors"))

    model, batch = build()
    out = model(**batch)
    out.loss.backward()
    assert out.loss_f is not None and out.loss_s is not None and out.loss_t is not None
    torch.testing.assert_close(ddp["loss"][0], out.loss.detach(), rtol=1e-5, atol=1e-6)
    single = grads(model)
    assert set(single) == {k[5:] for k in ddp if k.startswith("grad.")}
    for name, g in single.items():
        torch.testing.assert_close(ddp[f"grad.{name}"], g, rtol=1e-4, atol=1e-6, msg=lambda m, n=name: f"{n}: {m}")


if __name__ == "__main__":
    torch.multiprocessing.spawn(worker, args=(2, sys.argv[1]), nprocs=2, join=True)
