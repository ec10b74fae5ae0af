"""The training loop behind ``python -m mclmcf.train`` (settings: mclmcf.training.config; flags: mclmcf.training.cli).

One process or several (torchrun; gradients averaged across processes by one all-reduce). Batches
are a pure function of (seed, epoch), so a checkpoint needs only the position inside the epoch to resume exactly; RNG,
optimizer, scheduler and grad-scaler state travel in the checkpoint (mclmcf.training.checkpoint).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import threading
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from mclmcf.training import data as D
from mclmcf.training.checkpoint import (load_checkpoint, load_init_weights, load_model_state, read_state,
                                        remove_stale_temp_files, save_checkpoint, save_model_state, saved_epoch)
from mclmcf.model.config import ArchRevisionError, MCLMCFConfig
from mclmcf.training.config import TrainConfig
from mclmcf.training.metrics import compute_metrics
from mclmcf.model import MCLMCF
from mclmcf.training.optim import BF16StateAdam
from mclmcf.training.report import plot_curves, push_to_hub, write_model_dir
from preprocessing.dataformat import atomic_write
from preprocessing.encoders import load_tokenizer

# The run's files, each written atomically, in this order (a crash between any two leaves a resumable run):
# 1. checkpoint.safetensors at each epoch's end, then best.safetensors (tagged with its epoch) when the epoch is the
#    best so far: a checkpoint is never behind best.safetensors, and when best.safetensors is behind the checkpoint's
#    best epoch, that checkpoint is the end of the best epoch and resume rewrites best.safetensors from its weights;
# 2. at the end, model/ (staged, renamed into place), curves.png, then metrics.json: metrics.json means all is written.
CHECKPOINT, BEST = "checkpoint.safetensors", "best.safetensors"
METRICS, CURVES, MODEL_DIR = "metrics.json", "curves.png", "model"


class TrainingStopped(RuntimeError):
    """Training cannot go on (non-finite losses, bad settings); the message says why."""


class InjectedStop(RuntimeError):
    """--stop-after-steps: a simulated crash for resume tests (nothing is saved)."""


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
    world = int(os.environ.get("WORLD_SIZE", "1"))
    use_cuda = cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available())
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    if use_cuda:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if world > 1 or cfg.device == "auto" \
            else torch.device(cfg.device)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
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


def prepare_data(cfg: TrainConfig, model_cfg: MCLMCFConfig, log) -> tuple[dict[str, D.Split], dict, dict]:
    raw, info = D.load_dataset(cfg.data, allow_pickle=cfg.allow_pickle)
    replaced = D.validate(raw, cfg.data, label_range=model_cfg.label_range, nonfinite=cfg.nonfinite_data)
    if info.get("synthetic"):
        log("SYNTHETIC dataset (planted signal): figures below are not results on real data")
    if replaced:
        planted = info.get("synthetic") and info.get("spec", {}).get("quirks")
        log(f"replaced non-finite feature values by 0: {replaced}"
            + (" (planted on purpose: the synthetic set copies the public files' -inf COVAREP values)"
               if planted else ""))
    tokenizer = load_tokenizer(model_cfg.text_encoder)
    text_source, tokenized_for = cfg.text_source, info.get("text_encoder")
    if tokenized_for and tokenized_for != model_cfg.text_encoder and text_source != "tokenize":
        if text_source == "file":
            raise TrainingStopped(f"{cfg.data}: text_bert holds {tokenized_for!r} tokens, the model's text encoder is "
                                  f"{model_cfg.text_encoder!r}: use --text-source tokenize (raw_text) or re-extract")
        log(f"{cfg.data}: text_bert holds {tokenized_for!r} tokens; tokenizing raw_text for {model_cfg.text_encoder!r}")
        text_source = "tokenize"
    splits = {s: D.make_split(raw[s], tokenizer, text_source, cfg.max_text_len,
                              cfg.sample_weight if s == "train" else "none") for s in D.SPLITS}
    return splits, raw["train"], {**info, "nonfinite_replaced": replaced}


def build_model(cfg: TrainConfig, train: dict, data_info: dict | None = None) -> MCLMCF:
    """Feature sizes come from the data; a preset or --set value that disagrees is an error. The feature
    extractor the data was made with (preprocessing.extract records it) goes into the weights, so the app
    can check it, and so does the text window length (max_text_len), so the app cuts transcripts where training did."""
    overrides = cfg.model_overrides()
    spec = (data_info or {}).get("feature_spec")
    made_with = f" (feature spec version {spec.get('version')})" if spec else ""
    for key, field_name in (("audio", "audio_dim"), ("vision", "visual_dim")):
        dim = int(train[key].shape[2])
        if overrides.get(field_name, dim) != dim:
            raise TrainingStopped(f"{field_name}={overrides[field_name]} but {cfg.data} has {key} features of size "
                                  f"{dim}{made_with}; drop {field_name} from the model settings (it is taken from the data)")
        overrides[field_name] = dim
    if spec is not None:
        if overrides.get("feature_spec", spec) != spec:
            raise TrainingStopped(f"the model's feature_spec differs from the one {cfg.data} was extracted with; "
                                  "drop feature_spec from the model settings (it is taken from the data)")
        overrides["feature_spec"] = spec
    if overrides.get("max_text_len", cfg.max_text_len) != cfg.max_text_len:
        raise TrainingStopped(f"the model's max_text_len ({overrides['max_text_len']}) differs from the training's "
                              f"({cfg.max_text_len}); drop it from the model settings (it is taken from --max-text-len)")
    overrides["max_text_len"] = cfg.max_text_len   # serving cuts transcripts into windows of the length trained on
    return MCLMCF(MCLMCFConfig.from_preset(cfg.dataset, **overrides))


def make_optimizer(model: MCLMCF, cfg: TrainConfig, fused: bool = True) -> torch.optim.Optimizer:
    """Adam, BERT at its own (lower) learning rate; frozen parameters are left out. fused: one kernel over
    all parameters (CPU and CUDA), the same update; False leaves torch's default (for-each on CUDA).
    cfg.optimizer_state="bf16": the same update with its two moments stored in bf16 (mclmcf.training.optim)."""
    bert = [p for n, p in model.named_parameters() if n.startswith("text_encoder.") and p.requires_grad]
    rest = [p for n, p in model.named_parameters() if not n.startswith("text_encoder.") and p.requires_grad]
    groups = [{"params": rest, "lr": cfg.lr}] + ([{"params": bert, "lr": cfg.bert_lr}] if bert else [])
    if cfg.optimizer_state == "bf16":
        return BF16StateAdam(groups, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(groups, weight_decay=cfg.weight_decay, fused=fused or None)


def enable_gradient_checkpointing(model: MCLMCF) -> None:
    """--gradient-checkpointing: the text encoder keeps only each layer's input for backward and runs the
    layer again there (one more encoder forward per step) instead of holding its activations. Same loss
    and gradients: the recomputation replays the dropout masks."""
    if model.config.text_output_fixed:
        raise TrainingStopped("--gradient-checkpointing needs a trained text encoder: a frozen one keeps no "
                              "activations for backward")
    model.text_encoder.activation_checkpointing_enable()   # transformers' name for gradient_checkpointing_enable


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


def loader(split: D.Split, batches: list[list[int]], cfg: TrainConfig) -> DataLoader:
    # own generator: creating an iterator must not consume the global RNG (resume would drift)
    return DataLoader(D.IndexDataset(split), batch_sampler=batches, collate_fn=partial(D.collate, split),
                      num_workers=cfg.num_workers, generator=torch.Generator())


@torch.no_grad()
def predict(model: MCLMCF, split: D.Split, cfg: TrainConfig, env: Env, progress: bool = False) -> np.ndarray:
    """Scores in the split's order. Batches hold texts of similar length (less padding, so less work); every
    sample's score is computed with its own lengths, so the order does not change it."""
    model.eval()
    order = np.argsort(split.attention_mask.sum(1), kind="stable")
    batches = [order[i:i + cfg.eval_batch_size].tolist() for i in range(0, len(split), cfg.eval_batch_size)]
    scores = np.zeros(len(split), np.float32)
    for indices, batch in zip(batches, tqdm(loader(split, batches, cfg), "predict", len(batches), disable=not progress)):
        batch.pop("labels")
        with autocast(cfg, env):
            scores[indices] = model(**D.to_device(batch, env.device)).score.float().cpu().numpy()
    return scores


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


def autocast(cfg: TrainConfig, env: Env):
    if cfg.precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(env.device.type, dtype=torch.bfloat16 if cfg.precision == "bf16" else torch.float16)


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


def resumed_config(cfg: TrainConfig) -> TrainConfig:
    """--resume: the run continues with the settings in its checkpoint; only where it lives (a moved run
    directory) and how this process behaves may change."""
    ckpt_path = Path(cfg.out) / CHECKPOINT
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
class TrainingJob:
    """What one run trains with: settings, data, model, optimiser state, and ``state``, the loop's position and
    history (epoch, batch_in_epoch, step, best_mae, best_epoch, bad_epochs, history, nonfinite_skipped)."""
    cfg: TrainConfig
    env: Env
    splits: dict[str, D.Split]
    data_info: dict
    model: MCLMCF
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau | None
    scaler: torch.amp.GradScaler
    state: dict
    writer: Any = None          # tensorboard SummaryWriter

    @property
    def out(self) -> Path:
        return Path(self.cfg.out)

    @property
    def convention(self) -> str:
        """The metric convention (mclmcf.training.metrics): SIMS's, or MOSI's for MOSI and MOSEI."""
        return "sims" if self.cfg.dataset == "sims" else "mosi"

    def checkpoint(self) -> None:
        if self.env.main:
            save_checkpoint(self.out / CHECKPOINT, self.model, self.optimizer, {
                "loop": self.state, "train_config": self.cfg.to_dict(), "model_config": self.model.config.to_dict(),
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
        D.set_standardization(model, raw_train)
    if cfg.init_from and not cfg.resume:   # on --resume the checkpoint holds the weights
        try:
            fresh = load_init_weights(Path(cfg.init_from), model)
        except ValueError as err:
            raise TrainingStopped(str(err)) from None
        env.log(f"warm start from {cfg.init_from}" + (f"; {len(fresh)} training-only tensors start fresh" if fresh else ""))
    model.to(env.device)
    if model.config.text_output_fixed:   # the encoder's output never changes: compute it once
        for split in splits.values():
            D.attach_text_vectors(split, model, cfg.eval_batch_size, progress=cfg.progress and env.main)
    if cfg.gradient_checkpointing:
        enable_gradient_checkpointing(model)
    optimizer = make_optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=cfg.lr_patience) \
        if cfg.scheduler == "plateau" else None
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.precision == "fp16")
    state = {"epoch": 0, "batch_in_epoch": 0, "step": 0, "best_mae": math.inf, "best_epoch": -1, "bad_epochs": 0,
             "history": [], "nonfinite_skipped": 0}
    job = TrainingJob(cfg, env, splits, data_info, model, optimizer, scheduler, scaler, state)
    if cfg.resume:
        meta = load_checkpoint(job.out / CHECKPOINT, model, optimizer)
        state.update(meta["loop"])
        if scheduler is not None:
            scheduler.load_state_dict(meta["scheduler"])
        scaler.load_state_dict(meta["scaler"])
        env.log(f"resumed {job.out} at epoch {state['epoch']}, batch {state['batch_in_epoch']}, step {state['step']}")
        at_best_epoch_end = state["epoch"] == state["best_epoch"] + 1 and state["batch_in_epoch"] == 0
        if env.main and at_best_epoch_end and saved_epoch(job.out / BEST) != state["best_epoch"]:
            save_model_state(job.out / BEST, model, state["best_epoch"])   # the crash fell between the two writes
            env.log(f"rewrote {BEST} (epoch {state['best_epoch']}) from the checkpoint")
    job.out.mkdir(parents=True, exist_ok=True)
    outputs = (CHECKPOINT, BEST, METRICS, CURVES, MODEL_DIR)
    for stale in remove_stale_temp_files(*(job.out / name for name in outputs)) if env.main else []:
        env.log(f"removed {stale.name}, left by an interrupted write")
    if cfg.tensorboard and env.main:
        from torch.utils.tensorboard import SummaryWriter
        job.writer = SummaryWriter(str(job.out / "tensorboard"))
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
        while job.state["epoch"] < cfg.epochs and job.state["bad_epochs"] < cfg.patience:
            interrupted = train_epoch(job, stop)
            if interrupted:
                break
            end_epoch(job)
    if job.writer:
        job.writer.close()
    if interrupted:
        job.checkpoint()
        env.log(f"interrupted: checkpoint saved; continue with python -m mclmcf.train --out {job.out} --resume")
        return {"interrupted": True, **job.state}
    return finish(job, time.time() - t_start)


def train_epoch(job: TrainingJob, stop: StopFlag) -> bool:
    """One epoch from ``state['batch_in_epoch']`` on; returns True when interrupted by a signal."""
    cfg, env, state, split = job.cfg, job.env, job.state, job.splits["train"]
    model, optimizer, scaler = job.model, job.optimizer, job.scaler
    batches = epoch_batches(split.attention_mask.sum(1), cfg, env, state["epoch"])
    start = state["batch_in_epoch"]
    totals = state.setdefault("epoch_stats_partial", {"loss": 0.0, "loss_reg": 0.0, "n": 0})
    model.train()
    bar = tqdm(loader(split, batches[start:], cfg), total=len(batches) - start, initial=0,
               desc=f"epoch {state['epoch']}", disable=not (cfg.progress and env.main), leave=False)
    in_window, consecutive_bad = 0, 0
    for i, batch in enumerate(bar, start=start):
        batch = D.to_device(batch, env.device)
        last_in_window = (in_window + 1 == cfg.accumulate) or i == len(batches) - 1
        with autocast(cfg, env):
            output = model(**batch)
        finite = torch.isfinite(output.loss.detach()).float()
        if env.world > 1:  # every process must skip together, or the gradient all-reduce hangs
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        if not finite.item():
            consecutive_bad += 1
            state["nonfinite_skipped"] += 1
            if cfg.on_nonfinite == "stop" or consecutive_bad >= cfg.max_nonfinite:
                raise TrainingStopped(f"non-finite loss at epoch {state['epoch']} batch {i} (skipped "
                                      f"{state['nonfinite_skipped']} so far): the model diverged; lower --lr or "
                                      "raise --batch-size (the paper sees NaN at lr 1e-3 and batch 8/16 on MOSEI)")
            optimizer.zero_grad(set_to_none=True)
            in_window = 0
            continue
        consecutive_bad = 0
        scaler.scale(output.loss / cfg.accumulate).backward()
        in_window += 1
        totals["loss"] += output.loss.item()
        totals["loss_reg"] += output.loss_reg.item()
        for level in ("loss_f", "loss_s", "loss_t"):     # each MCL level's InfoNCE, for the paper's Fig. 5
            if getattr(output, level) is not None:
                totals[level] = totals.get(level, 0.0) + getattr(output, level).item()
        totals["n"] += 1
        bar.set_postfix(loss=f"{output.loss.item():.4f}", l1=f"{output.loss_reg.item():.4f}")
        if not last_in_window:
            continue
        if env.world > 1:
            average_gradients(model)
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        in_window = 0
        state["step"] += 1
        state["batch_in_epoch"] = i + 1
        if job.writer:
            job.writer.add_scalar("step/loss", output.loss.item(), state["step"])
        if cfg.stop_after_steps and state["step"] >= cfg.stop_after_steps:
            raise InjectedStop(f"--stop-after-steps {cfg.stop_after_steps}: simulated crash")
        if stop.requested:
            return True
        if cfg.checkpoint_every and state["step"] % cfg.checkpoint_every == 0 and i + 1 < len(batches):
            job.checkpoint()
    bar.close()
    n = max(state.pop("epoch_stats_partial")["n"], 1)
    state["epoch_stats"] = {f"train_{k}": v / n for k, v in totals.items() if k != "n"}
    return False


def end_epoch(job: TrainingJob) -> None:
    """After an epoch: validation metrics into the history, the best weights kept, the early-stopping count
    and the lr schedule moved on, the log and tensorboard written; then the next epoch's checkpoint."""
    state, env = job.state, job.env
    valid = compute_metrics(predict(job.model, job.splits["valid"], job.cfg, env), job.splits["valid"].labels,
                            job.convention)
    epoch_stats = state.pop("epoch_stats")
    state["history"].append({"epoch": state["epoch"], **epoch_stats, "lr": job.optimizer.param_groups[0]["lr"],
                             **{f"valid_{k}": v for k, v in valid.items()}})
    improved = valid["mae"] < state["best_mae"]
    if improved:
        state.update(best_mae=valid["mae"], best_epoch=state["epoch"], bad_epochs=0)
    else:
        state["bad_epochs"] += 1
    if job.scheduler is not None:
        job.scheduler.step(valid["mae"])
    if job.writer:
        for k, v in state["history"][-1].items():
            job.writer.add_scalar(f"epoch/{k}", v, state["epoch"])
    env.log(f"epoch {state['epoch']}: train loss {epoch_stats['train_loss']:.4f}  valid "
            + "  ".join(f"{k} {v:.4f}" for k, v in valid.items()))
    state.update(epoch=state["epoch"] + 1, batch_in_epoch=0)
    job.checkpoint()   # before best.safetensors: the order the comment at CHECKPOINT explains
    if improved and env.main:
        save_model_state(job.out / BEST, job.model, state["best_epoch"])


def finish(job: TrainingJob, wall_s: float) -> dict:
    """Best weights -> test metrics, metrics.json, curves.png and the from_pretrained directory."""
    cfg, env, model, splits, state, out = job.cfg, job.env, job.model, job.splits, job.state, job.out
    if (out / BEST).is_file():
        load_model_state(out / BEST, model)
    test = compute_metrics(predict(model, splits["test"], cfg, env), splits["test"].labels, job.convention)
    baseline = float(np.abs(splits["test"].labels - splits["train"].labels.mean()).mean())
    result = {"test": test, "best_epoch": state["best_epoch"], "best_valid_mae": state["best_mae"],
              "baseline_mean_mae": baseline, "epochs_run": state["epoch"], "steps": state["step"],
              "nonfinite_skipped": state["nonfinite_skipped"], "wall_s_this_process": wall_s,
              "synthetic": bool(job.data_info.get("synthetic")), "data": cfg.data, "data_info": job.data_info,
              "train_config": cfg.to_dict(), "model_config": model.config.to_dict(), "history": state["history"]}
    if env.main:   # metrics.json last (the order the comment at CHECKPOINT explains)
        model_dir = write_model_dir(model, out / MODEL_DIR, result)
        plot_curves(state["history"], out / CURVES, synthetic=result["synthetic"])
        atomic_write(out / METRICS, lambda p: Path(p).write_text(json.dumps(result, indent=1, default=str)))
        print(("SYNTHETIC data — " if result["synthetic"] else "") + f"test (best epoch {state['best_epoch']}): "
              + "  ".join(f"{k} {v:.4f}" for k, v in test.items()) + f"  | predict-the-mean MAE {baseline:.4f}")
        print(f"wrote {out}/metrics.json, curves.png, model/ (MCLMCF.from_pretrained('{model_dir}'))")
        if cfg.push_to_hub:
            print(f"pushed to {push_to_hub(model_dir, cfg.push_to_hub)}")
    if env.world > 1:
        dist.barrier()
    return result
