"""Where a training process runs: its rank and device (one process or torchrun's several), seeding, the autocast
precision, the gradient average across processes and the Ctrl-C flag."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from mclmcf.training.config import TrainConfig


class TrainingStopped(RuntimeError):
    """Training cannot go on (non-finite losses, bad settings); the message says why."""


@dataclass
class Env:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def log(self, *args) -> None:
        """print, on the main process only; above any progress bar, not inside it."""
        if self.main:
            tqdm.write(" ".join(map(str, args)))


def setup_env(cfg: TrainConfig) -> Env:
    """This process's rank and device; under torchrun (WORLD_SIZE > 1) the process group too."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    use_cuda = cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available())
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    if not use_cuda:
        device = torch.device("cpu")
    elif world > 1 or cfg.device == "auto":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    else:
        device = torch.device(cfg.device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if cfg.precision == "fp16" and device.type != "cuda":
        raise TrainingStopped("--precision fp16 needs a GPU (use bf16 or fp32 on CPU)")
    return Env(rank, world, device)


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def autocast(cfg: TrainConfig, env: Env):
    """--precision: bf16 / fp16 autocast on the run's device, or nothing for fp32."""
    if cfg.precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(env.device.type, dtype=torch.bfloat16 if cfg.precision == "bf16" else torch.float16)


def average_gradients(model: torch.nn.Module) -> None:
    """Mean of every process's gradients, one flat all-reduce. Used instead of DistributedDataParallel:
    with torch 2.13 DDP left this model's gradients unreduced (tests/test_train_ddp.py caught it)."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


class StopFlag:
    """Ctrl-C (SIGINT/SIGTERM) asks the loop to checkpoint at the next step and exit cleanly."""

    def __init__(self):
        self.requested = False
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested = True

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
