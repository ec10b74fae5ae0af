"""The training loop behind ``python -m mclmcf.train`` (settings: mclmcf.training.config; flags: mclmcf.training.cli).

One process or several (torchrun; gradients averaged across processes by one all-reduce: mclmcf.training.runtime).
Batches are a pure function of (seed, epoch), so a checkpoint needs only the position inside the epoch to resume
exactly; RNG, optimizer, scheduler and grad-scaler state travel in the checkpoint, whose folder's files and write
order are mclmcf.training.checkpoint's.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler
from tqdm import tqdm

from mclmcf.model import MCLMCF
from mclmcf.model.config import ArchRevisionError, MCLMCFConfig
from mclmcf.training.checkpoint import RunDirectory, load_checkpoint, load_init_weights, read_state
from mclmcf.training.config import TrainConfig
from mclmcf.training.data import Split, attach_text_vectors, batch_loader, set_standardization, to_device
from mclmcf.training.evaluate import evaluate
from mclmcf.training.prepare import build_model, enable_gradient_checkpointing, make_optimizer, prepare_data
from mclmcf.training.report import push_to_hub, small_run_note
from mclmcf.training.runtime import Env, StopFlag, TrainingStopped, autocast, average_gradients, seed_everything, setup_env

LOSS_LEVELS = ("loss_f", "loss_s", "loss_t")     # each MCL level's InfoNCE, for the paper's Fig. 5


class InjectedStop(RuntimeError):
    """--stop-after-steps: a simulated crash for resume tests (nothing is saved)."""


def epoch_batches(text_lengths: np.ndarray, cfg: TrainConfig, env: Env, epoch: int) -> list[list[int]]:
    """This process's batches of one epoch: a function of (seed, epoch) only, so resume can skip to any one.

    length_buckets = K > 0: each run of K batches of the shuffled order is sorted by text length before it
    is cut, and the batches are shuffled again, so a batch pads its text to similar lengths (BERT's cost).
    """
    sampler = DistributedSampler(range(len(text_lengths)), num_replicas=env.world, rank=env.rank, shuffle=True,
                                 seed=cfg.seed)
    sampler.set_epoch(epoch)
    order = list(sampler)
    size = cfg.batch_size
    if not cfg.length_buckets:
        return [order[i:i + size] for i in range(0, len(order), size)]
    chunk = size * cfg.length_buckets
    batches = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start:start + chunk], key=lambda i: int(text_lengths[i]))
        batches += [part[i:i + size] for i in range(0, len(part), size)]
    np.random.default_rng([cfg.seed, epoch]).shuffle(batches)
    return batches


def resumed_config(cfg: TrainConfig) -> TrainConfig:
    """--resume: the run continues with the settings in its checkpoint; only where it lives (a moved run
    directory) and how this process behaves may change."""
    ckpt_path = RunDirectory(cfg.out).checkpoint
    if not ckpt_path.is_file():
        raise TrainingStopped(f"--resume: no checkpoint at {ckpt_path}")
    saved_state = read_state(ckpt_path)
    try:
        MCLMCFConfig.from_dict(saved_state["model_config"])
    except ArchRevisionError as err:
        raise TrainingStopped(f"--resume {ckpt_path}: {err}") from err
    saved = TrainConfig(**saved_state["train_config"])
    return TrainConfig(**{**saved.to_dict(), "out": cfg.out, "resume": True, "progress": cfg.progress,
                          "stop_after_steps": cfg.stop_after_steps, "push_to_hub": cfg.push_to_hub or saved.push_to_hub})


@dataclass
class LoopState:
    """The loop's position and history: all a checkpoint needs (with the weights, optimiser and RNG) to resume."""
    epoch: int = 0
    batch_in_epoch: int = 0
    step: int = 0                  # optimiser steps
    best_mae: float = math.inf     # best validation MAE so far, and its epoch
    best_epoch: int = -1
    bad_epochs: int = 0            # epochs since the best one (early stopping)
    history: list[dict] = field(default_factory=list)
    nonfinite_skipped: int = 0
    epoch_stats_partial: dict | None = None   # the running loss sums of an epoch checkpointed halfway


@dataclass
class TrainingJob:
    """What one run trains with: settings, data, model, optimiser state, the loop's state and its folder."""
    cfg: TrainConfig
    env: Env
    splits: dict[str, Split]
    data_info: dict
    model: MCLMCF
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau | None
    scaler: torch.amp.GradScaler
    state: LoopState
    run_dir: RunDirectory
    writer: Any = None          # tensorboard SummaryWriter

    def checkpoint(self) -> None:
        if self.env.main:
            self.run_dir.save_checkpoint(self.model, self.optimizer, {
                "loop": asdict(self.state), "train_config": self.cfg.to_dict(),
                "model_config": self.model.config.to_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler else None,
                "scaler": self.scaler.state_dict()})
        if self.env.world > 1:
            dist.barrier()


def set_up(cfg: TrainConfig, env: Env) -> TrainingJob:
    """Data, model and optimiser, in the order that fixes the RNG draws; on --resume, the checkpoint's state."""
    model_cfg = MCLMCFConfig.from_preset(cfg.dataset, **cfg.model_overrides())
    splits, raw_train, data_info = prepare_data(cfg, model_cfg, env.log)
    model = build_model(cfg, raw_train, data_info)
    if cfg.standardize:
        set_standardization(model, raw_train)
    if cfg.init_from and not cfg.resume:   # on --resume the checkpoint holds the weights
        try:
            fresh = load_init_weights(Path(cfg.init_from), model)
        except ValueError as err:
            raise TrainingStopped(str(err)) from None
        env.log(f"warm start from {cfg.init_from}" + (f"; {len(fresh)} training-only tensors start fresh" if fresh else ""))
    model.to(env.device)
    if model.config.text_output_fixed:   # the encoder's output never changes: compute it once
        for split in splits.values():
            attach_text_vectors(split, model, cfg.eval_batch_size, progress=cfg.progress and env.main)
    if cfg.gradient_checkpointing:
        enable_gradient_checkpointing(model)
    optimizer = make_optimizer(model, cfg)
    scheduler = None
    if cfg.scheduler == "plateau":
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=cfg.lr_patience)
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.precision == "fp16")
    run_dir = RunDirectory(cfg.out)
    job = TrainingJob(cfg, env, splits, data_info, model, optimizer, scheduler, scaler, LoopState(), run_dir)
    if cfg.resume:
        meta = load_checkpoint(run_dir.checkpoint, model, optimizer)
        job.state = state = LoopState(**meta["loop"])
        if scheduler is not None:
            scheduler.load_state_dict(meta["scheduler"])
        scaler.load_state_dict(meta["scaler"])
        env.log(f"resumed {run_dir.path} at epoch {state.epoch}, batch {state.batch_in_epoch}, step {state.step}")
        if env.main and run_dir.repair_best(model, state.epoch, state.batch_in_epoch, state.best_epoch):
            env.log(f"rewrote best.safetensors (epoch {state.best_epoch}) from the checkpoint")
    for stale in run_dir.prepare() if env.main else []:
        env.log(f"removed {stale.name}, left by an interrupted write")
    if cfg.tensorboard and env.main:
        from torch.utils.tensorboard import SummaryWriter
        job.writer = SummaryWriter(str(run_dir.path / "tensorboard"))
    return job


def run(cfg: TrainConfig) -> dict:
    """Train, early-stop on validation MAE, test the best weights, write OUT. Returns metrics.json's content."""
    if cfg.resume:
        cfg = resumed_config(cfg)
    env = setup_env(cfg)
    seed_everything(cfg.seed, cfg.deterministic)
    t_start = time.time()
    job = set_up(cfg, env)
    interrupted = False
    with StopFlag() as stop:
        while job.state.epoch < cfg.epochs and job.state.bad_epochs < cfg.patience:
            stats = train_epoch(job, stop)
            interrupted = stats is None
            if interrupted:
                break
            end_epoch(job, stats)
    if job.writer:
        job.writer.close()
    if interrupted:
        job.checkpoint()
        env.log(f"interrupted: checkpoint saved; continue with python -m mclmcf.train --out {cfg.out} --resume")
        return {"interrupted": True, **asdict(job.state)}
    return finish(job, time.time() - t_start)


def train_epoch(job: TrainingJob, stop: StopFlag) -> dict[str, float] | None:
    """One epoch from ``state.batch_in_epoch`` on. Returns the epoch's mean losses (train_loss, train_loss_reg and
    each MCL level's), or None when a stop signal cut it short."""
    cfg, env, state, split = job.cfg, job.env, job.state, job.splits["train"]
    batches = epoch_batches(split.attention_mask.sum(1), cfg, env, state.epoch)
    start = state.batch_in_epoch
    if state.epoch_stats_partial is None:
        state.epoch_stats_partial = {"loss": 0.0, "loss_reg": 0.0, "n": 0}
    totals = state.epoch_stats_partial
    job.model.train()
    bar = tqdm(batch_loader(split, batches[start:], cfg.num_workers), total=len(batches) - start, initial=0,
               desc=f"epoch {state.epoch}", disable=not (cfg.progress and env.main), leave=False)
    in_window, consecutive_bad = 0, 0
    for i, batch in enumerate(bar, start=start):
        with autocast(cfg, env):
            output = job.model(**to_device(batch, env.device))
        if not loss_is_finite(output.loss, env):
            consecutive_bad += 1
            state.nonfinite_skipped += 1
            if cfg.on_nonfinite == "stop" or consecutive_bad >= cfg.max_nonfinite:
                raise TrainingStopped(f"non-finite loss at epoch {state.epoch} batch {i} (skipped "
                                      f"{state.nonfinite_skipped} so far): the model diverged; lower --lr or "
                                      "raise --batch-size (the paper sees NaN at lr 1e-3 and batch 8/16 on MOSEI)")
            job.optimizer.zero_grad(set_to_none=True)
            in_window = 0
            continue
        consecutive_bad = 0
        job.scaler.scale(output.loss / cfg.accumulate).backward()
        in_window += 1
        add_losses(totals, output)
        bar.set_postfix(loss=f"{output.loss.item():.4f}", l1=f"{output.loss_reg.item():.4f}")
        if in_window < cfg.accumulate and i < len(batches) - 1:
            continue
        optimizer_step(job)
        in_window = 0
        state.step += 1
        state.batch_in_epoch = i + 1
        if job.writer:
            job.writer.add_scalar("step/loss", output.loss.item(), state.step)
        if cfg.stop_after_steps and state.step >= cfg.stop_after_steps:
            raise InjectedStop(f"--stop-after-steps {cfg.stop_after_steps}: simulated crash")
        if stop.requested:
            return None
        if cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0 and i + 1 < len(batches):
            job.checkpoint()
    bar.close()
    state.epoch_stats_partial = None
    n = max(totals["n"], 1)
    return {f"train_{k}": v / n for k, v in totals.items() if k != "n"}


def loss_is_finite(loss: torch.Tensor, env: Env) -> bool:
    """Whether this step's loss is finite on every process: all skip together, or the gradient all-reduce hangs."""
    finite = torch.isfinite(loss.detach()).float()
    if env.world > 1:
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
    return bool(finite.item())


def add_losses(totals: dict, output) -> None:
    """One batch's losses into the epoch's running sums."""
    totals["loss"] += output.loss.item()
    totals["loss_reg"] += output.loss_reg.item()
    for level in LOSS_LEVELS:
        if getattr(output, level) is not None:
            totals[level] = totals.get(level, 0.0) + getattr(output, level).item()
    totals["n"] += 1


def optimizer_step(job: TrainingJob) -> None:
    """The accumulated gradients averaged across processes, unscaled (fp16), clipped, applied, then cleared."""
    if job.env.world > 1:
        average_gradients(job.model)
    job.scaler.unscale_(job.optimizer)
    torch.nn.utils.clip_grad_norm_(job.model.parameters(), job.cfg.grad_clip)
    job.scaler.step(job.optimizer)
    job.scaler.update()
    job.optimizer.zero_grad(set_to_none=True)


def end_epoch(job: TrainingJob, epoch_stats: dict[str, float]) -> None:
    """After an epoch: validation metrics into the history, the best weights kept, the early-stopping count
    and the lr schedule moved on, the log and tensorboard written; then the next epoch's checkpoint."""
    state, env = job.state, job.env
    valid = evaluate(job.model, job.splits["valid"], job.cfg, env)
    state.history.append({"epoch": state.epoch, **epoch_stats, "lr": job.optimizer.param_groups[0]["lr"],
                          **{f"valid_{k}": v for k, v in valid.items()}})
    improved = valid["mae"] < state.best_mae
    if improved:
        state.best_mae, state.best_epoch, state.bad_epochs = valid["mae"], state.epoch, 0
    else:
        state.bad_epochs += 1
    if job.scheduler is not None:
        job.scheduler.step(valid["mae"])
    if job.writer:
        for k, v in state.history[-1].items():
            job.writer.add_scalar(f"epoch/{k}", v, state.epoch)
    env.log(f"epoch {state.epoch}: train loss {epoch_stats['train_loss']:.4f}  valid "
            + "  ".join(f"{k} {v:.4f}" for k, v in valid.items()))
    state.epoch, state.batch_in_epoch = state.epoch + 1, 0
    job.checkpoint()   # before best.safetensors: the order mclmcf.training.checkpoint explains
    if improved and env.main:
        job.run_dir.save_best(job.model, state.best_epoch)


def finish(job: TrainingJob, wall_s: float) -> dict:
    """Best weights -> test metrics, then the run's outputs (model/, curves.png, metrics.json)."""
    cfg, env, model, splits, state = job.cfg, job.env, job.model, job.splits, job.state
    job.run_dir.load_best(model)
    test = evaluate(model, splits["test"], cfg, env)
    baseline = float(np.abs(splits["test"].labels - splits["train"].labels.mean()).mean())
    result = {"test": test, "best_epoch": state.best_epoch, "best_valid_mae": state.best_mae,
              "baseline_mean_mae": baseline, "epochs_run": state.epoch, "steps": state.step,
              "nonfinite_skipped": state.nonfinite_skipped, "wall_s_this_process": wall_s,
              "synthetic": bool(job.data_info.get("synthetic")), "data": cfg.data, "data_info": job.data_info,
              "train_config": cfg.to_dict(), "model_config": model.config.to_dict(), "history": state.history}
    if env.main:
        model_dir = job.run_dir.write_outputs(model, result)
        print(("SYNTHETIC data — " if result["synthetic"] else "") + f"test (best epoch {state.best_epoch}): "
              + "  ".join(f"{k} {v:.4f}" for k, v in test.items()) + f"  | predict-the-mean MAE {baseline:.4f}")
        print(f"wrote {cfg.out}/metrics.json, curves.png, model/ (MCLMCF.from_pretrained('{model_dir}'))")
        print(job.run_dir.describe())
        note = small_run_note(result, len(splits["train"]))
        if note:
            print(note)
        if cfg.push_to_hub:
            print(f"pushed to {push_to_hub(model_dir, cfg.push_to_hub)}")
    if env.world > 1:
        dist.barrier()
    return result
