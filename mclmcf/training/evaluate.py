"""A model's scores on a split and the metrics of its dataset's convention: what the loop validates and tests
with, what distillation labels with and what the paper's experiments read."""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from mclmcf.model import MCLMCF
from mclmcf.training import data
from mclmcf.training.config import TrainConfig
from mclmcf.training.metrics import compute_metrics
from mclmcf.training.runtime import Env, autocast


def metric_convention(dataset: str) -> str:
    """The metric convention (mclmcf.training.metrics) of a dataset preset: SIMS's, or MOSI's for MOSI and MOSEI."""
    return "sims" if dataset == "sims" else "mosi"


def eval_batches(split: data.Split, batch_size: int) -> list[list[int]]:
    """The evaluation batches, texts of similar length together (less padding, so less work)."""
    order = np.argsort(split.attention_mask.sum(1), kind="stable")
    return [order[i:i + batch_size].tolist() for i in range(0, len(split), batch_size)]


@torch.no_grad()
def predict(model: MCLMCF, split: data.Split, cfg: TrainConfig, env: Env, progress: bool = False) -> np.ndarray:
    """Scores in the split's order, model run in the batches of :func:`eval_batches`. Every sample's score is
    computed with its own lengths, so the batching does not change it."""
    model.eval()
    batches = eval_batches(split, cfg.eval_batch_size)
    scores = np.zeros(len(split), np.float32)
    loader = data.batch_loader(split, batches, cfg.num_workers)
    for indices, batch in zip(batches, tqdm(loader, "predict", len(batches), disable=not progress)):
        batch.pop("labels")
        with autocast(cfg, env):
            scores[indices] = model(**data.to_device(batch, env.device)).score.float().cpu().numpy()
    return scores


def evaluate(model: MCLMCF, split: data.Split, cfg: TrainConfig, env: Env) -> dict[str, float]:
    """The split's metrics in the convention of cfg.dataset."""
    return compute_metrics(predict(model, split, cfg, env), split.labels, metric_convention(cfg.dataset))
