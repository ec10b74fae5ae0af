"""A run's folder and its checkpoints. Checkpoints hold no pickle: every tensor in one safetensors file,
everything else as JSON in its header, written atomically (temp file + rename), so a kill at any moment
leaves the last good one. RunDirectory names the folder's files and the order they are written in.

Tensors: ``model.*`` (state dict), ``optim.{param index}.{key}`` (optimizer state), ``rng.*`` (torch,
CUDA and numpy generator states). JSON (metadata key "trainer"): loop position, history, the
optimizer's param groups and scalar state, scheduler / grad-scaler state, Python's RNG state, configs.
"""

from __future__ import annotations

import glob
import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from mclmcf.training.report import plot_curves, write_model_dir
from preprocessing.dataformat import atomic_write

# The run's files, each written atomically, in this order (a crash between any two leaves a resumable run):
# 1. checkpoint.safetensors at each epoch's end, then best.safetensors (tagged with its epoch) when the epoch is the
#    best so far: a checkpoint is never behind best.safetensors, and when best.safetensors is behind the checkpoint's
#    best epoch, that checkpoint is the end of the best epoch and resume rewrites best.safetensors from its weights;
# 2. at the end, model/ (staged, renamed into place), curves.png, then metrics.json: metrics.json means all is written.
CHECKPOINT, BEST = "checkpoint.safetensors", "best.safetensors"
METRICS, CURVES, MODEL_DIR = "metrics.json", "curves.png", "model"


def rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    tensors = {"rng.torch": torch.get_rng_state(), "rng.numpy": torch.from_numpy(keys.astype(np.int64))}
    if torch.cuda.is_available():
        tensors.update({f"rng.cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    py = random.getstate()
    return tensors, {"python": [py[0], list(py[1]), py[2]], "numpy": [kind, pos, has_gauss, gauss]}


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k.split(".")[-1]))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    py = meta["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, pos, has_gauss, gauss = meta["numpy"]
    np.random.set_state((kind, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, gauss))


def _kept_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state a checkpoint keeps (a frozen pretrained text encoder is stored by reference: MCLMCF.stored_state_dict)."""
    return model.stored_state_dict() if hasattr(model, "stored_state_dict") else model.state_dict()


def stored_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone().contiguous() for k, v in _kept_state(model).items()}


def restore_tensors(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Load exactly the tensors :func:`stored_tensors` would write for ``model`` (no more, no fewer)."""
    expected = set(_kept_state(model))
    if set(tensors) != expected:
        raise RuntimeError(f"checkpoint does not match the model: missing {sorted(expected - set(tensors))[:8]}, "
                           f"unexpected {sorted(set(tensors) - expected)[:8]}")
    model.load_state_dict(tensors, strict=False)


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """``state``: JSON-able loop state (position, history, scheduler/scaler state, configs)."""
    tensors = {f"model.{k}": v for k, v in stored_tensors(model).items()}
    opt = optimizer.state_dict()
    scalars: dict[str, dict] = {}
    for idx, s in opt["state"].items():
        for k, v in s.items():
            if torch.is_tensor(v):
                tensors[f"optim.{idx}.{k}"] = v.detach().cpu().clone().contiguous()
            else:
                scalars.setdefault(str(idx), {})[k] = v
    rng_tensors, rng_meta = rng_state()
    tensors.update(rng_tensors)
    meta = {**state, "optimizer": {"param_groups": opt["param_groups"], "scalars": scalars}, "rng": rng_meta}
    atomic_write(path, lambda p: save_file(tensors, p, metadata={"trainer": json.dumps(meta)}))


def load_checkpoint(path: Path, model: torch.nn.Module | None = None,
                    optimizer: torch.optim.Optimizer | None = None, restore_rng: bool = True) -> dict:
    """Restore what is given (model, optimizer, RNG); returns the JSON state. Reading runs no code."""
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["trainer"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if model is not None:
        restore_tensors(model, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    if optimizer is not None:
        state: dict[int, dict] = {}
        for k, v in tensors.items():
            if k.startswith("optim."):
                _, idx, name = k.split(".", 2)
                state.setdefault(int(idx), {})[name] = v
        for idx, s in meta["optimizer"]["scalars"].items():
            state.setdefault(int(idx), {}).update(s)
        optimizer.load_state_dict({"state": state, "param_groups": meta["optimizer"]["param_groups"]})
    if restore_rng:
        set_rng_state(tensors, meta["rng"])
    return meta


def remove_stale_temp_files(*paths: Path) -> list[Path]:
    """Delete the temp files that interrupted writes of ``paths`` left (a kill during a write leaves a
    whole checkpoint's worth). Only ours: ``.{name}.XXXXXXXX.tmp`` beside the file, as atomic_write
    (mkstemp) and write_model_dir (mkdtemp) name them. Call before this run writes: an out directory has one
    writer."""
    patterns = [str(path.parent / f".{glob.escape(path.name)}.{'?' * 8}.tmp") for path in paths]
    stale = [Path(p) for pattern in patterns for p in glob.glob(pattern)]
    for p in stale:   # a folder: the model/ directory staged by report.write_model_dir
        shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    return stale


def read_state(path: Path) -> dict:
    """The JSON part only (configs, history) without touching tensors."""
    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()["trainer"])


def save_model_state(path: Path, model: torch.nn.Module, epoch: int) -> None:
    """The model's weights, tagged with the epoch they are from (:func:`saved_epoch`)."""
    tensors = stored_tensors(model)
    atomic_write(path, lambda p: save_file(tensors, p, metadata={"epoch": str(epoch)}))


def saved_epoch(path: Path) -> int | None:
    """The epoch :func:`save_model_state` tagged ``path`` with; None without a file or a tag."""
    if not path.is_file():
        return None
    with safe_open(str(path), framework="pt") as f:
        epoch = (f.metadata() or {}).get("epoch")
    return None if epoch is None else int(epoch)


# config fields a warm start may change: free-form notes, and the training-only heads a model/ folder drops
WARM_START_FREE = ("notes", "with_contrastive_heads")


def load_init_weights(directory: Path, model: torch.nn.Module) -> list[str]:
    """Warm start from a from_pretrained folder (config.json + model.safetensors, e.g. the demo's checkpoints/):
    its architecture must be the run's (every config field but WARM_START_FREE). Everything the folder holds is
    loaded, the feature standardisation included (the weights were trained on it). Returns the run's tensors it
    lacks: the training-only contrastive heads, which an inference folder does not keep and which start fresh."""
    config_path, weights_path = directory / "config.json", directory / "model.safetensors"
    if not (config_path.is_file() and weights_path.is_file()):
        raise ValueError(f"{directory}: a warm start needs config.json and model.safetensors there")
    as_json = lambda config: json.loads(json.dumps(config.to_dict(), default=str))  # noqa: E731 (tuples, int keys)
    saved, ours = as_json(type(model.config).from_dict(json.loads(config_path.read_text()))), as_json(model.config)
    differ = sorted(k for k in set(saved) | set(ours) if k not in WARM_START_FREE and saved.get(k) != ours.get(k))
    if differ:
        raise ValueError(f"{directory}: its weights are for another architecture ({', '.join(differ)} differ from "
                         "this run's settings); give the run the same model settings, or start from scratch")
    with safe_open(str(weights_path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    kept = _kept_state(model)
    wrong = sorted(k for k, v in tensors.items() if k not in kept or kept[k].shape != v.shape)
    if wrong:
        raise ValueError(f"{weights_path}: tensors that do not fit this model: {wrong[:8]}")
    model.load_state_dict(tensors, strict=False)
    return sorted(set(kept) - set(tensors))


def load_model_state(path: Path, model: torch.nn.Module) -> None:
    with safe_open(str(path), framework="pt") as f:
        restore_tensors(model, {k: f.get_tensor(k) for k in f.keys()})


class RunDirectory:
    """One run's folder (--out) and the protocol of its files (the comment at CHECKPOINT)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    def prepare(self) -> list[Path]:
        """Create the folder; remove the temp files an interrupted write left (returned). One writer per folder."""
        self.path.mkdir(parents=True, exist_ok=True)
        return remove_stale_temp_files(*(self.path / name for name in (CHECKPOINT, BEST, METRICS, CURVES, MODEL_DIR)))

    def save_checkpoint(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
        save_checkpoint(self.checkpoint, model, optimizer, state)

    def save_best(self, model: torch.nn.Module, epoch: int) -> None:
        """After the epoch's checkpoint, never before it."""
        save_model_state(self.path / BEST, model, epoch)

    def repair_best(self, model: torch.nn.Module, epoch: int, batch_in_epoch: int, best_epoch: int) -> bool:
        """On resume, with ``model`` at the checkpoint's weights: when the checkpoint is the end of the best epoch
        and best.safetensors is not of that epoch (the crash fell between the two writes), write it. True if it did."""
        at_best_epoch_end = epoch == best_epoch + 1 and batch_in_epoch == 0
        if at_best_epoch_end and saved_epoch(self.path / BEST) != best_epoch:
            self.save_best(model, best_epoch)
            return True
        return False

    def load_best(self, model: torch.nn.Module) -> None:
        """The best weights into ``model``, when there are any."""
        if (self.path / BEST).is_file():
            load_model_state(self.path / BEST, model)

    def write_outputs(self, model: torch.nn.Module, result: dict) -> Path:
        """model/, curves.png, then metrics.json (last: it means the outputs are whole). Returns model/."""
        model_dir = write_model_dir(model, self.path / MODEL_DIR, result)
        plot_curves(result["history"], self.path / CURVES, synthetic=result["synthetic"])
        atomic_write(self.path / METRICS, lambda p: Path(p).write_text(json.dumps(result, indent=1, default=str)))
        return model_dir

    def describe(self) -> str:
        """The folder's files, their sizes and what each is for (a fine-tuned text encoder makes them large)."""
        purposes = {MODEL_DIR: "the weights to use: from_pretrained, the app, --init-from",
                    BEST: "the best epoch's weights with the training-only heads",
                    CHECKPOINT: "the last epoch's weights and Adam's two moments (3x the weights), for --resume"}
        lines = [f"  {name + ('/' if name == MODEL_DIR else ''):24} {megabytes(self.path / name):>8}  {why}"
                 for name, why in purposes.items() if (self.path / name).exists()]
        return "\n".join([f"{self.path}:", *lines, f"  once the run is done, {MODEL_DIR}/ alone is needed; the other "
                           "two may be deleted (--resume needs the checkpoint)"])


def megabytes(path: Path) -> str:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return f"{sum(p.stat().st_size for p in files) / 1e6:.0f} MB"
