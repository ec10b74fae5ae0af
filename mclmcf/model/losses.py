"""Symmetric InfoNCE (paper Algorithm 1 / the authors' Clip), with negatives gathered across processes.

With several processes each one gathers every process's features *with* gradients
(torch.distributed.nn.functional.all_gather), so the contrastive batch is the global batch. Every
process then computes the same global loss; the all-gather backward sums the W identical gradient
copies and the training loop's gradient averaging (mclmcf.training.runtime.average_gradients) divides by W
again, so parameters receive exactly the gradient of one process that saw the combined batch (the
argument open_clip's ClipLoss relies on).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F


def gather_across_processes(t: torch.Tensor) -> torch.Tensor:
    """Concatenate ``t`` from all processes along dim 0, keeping the autograd graph."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return t
    if t.requires_grad:
        return torch.cat(torch.distributed.nn.functional.all_gather(t), dim=0)
    parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, t.contiguous())
    return torch.cat(parts, dim=0)


def sentiment_class(labels: torch.Tensor) -> torch.Tensor:
    """Polarity used by pair designs B and C: -1, 0 or 1."""
    return torch.sign(labels.detach()).long()


def symmetric_infonce(x: torch.Tensor, y: torch.Tensor, scale: torch.Tensor | float,
                      labels: torch.Tensor | None = None, design: str = "A") -> torch.Tensor:
    """Symmetric contrastive loss between row-aligned features x (B, D) and y (B, D).

    design "A": positive = the other modality of the same sample, negatives = every other sample.
    design "B": as A, but other samples of the same sentiment polarity are left out of the negatives.
    design "C": positives = all samples of the same polarity (supervised-contrastive style),
                negatives = samples of another polarity.
    """
    logits = x @ y.T * scale                                    # (B, B)
    if design == "A":
        target = torch.arange(x.shape[0], device=x.device)
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    if labels is None:
        raise ValueError(f"pair design {design!r} needs sentiment labels")
    polarity = sentiment_class(labels)
    same = polarity[:, None] == polarity[None, :]               # (B, B), symmetric
    eye = torch.eye(x.shape[0], dtype=torch.bool, device=x.device)
    if design == "B":
        logits = logits.masked_fill(same & ~eye, float("-inf"))
        target = torch.arange(x.shape[0], device=x.device)
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    if design == "C":
        def mean_positive_log_prob(m: torch.Tensor) -> torch.Tensor:
            log_prob = m.log_softmax(dim=1)
            return (log_prob * same).sum(1) / same.sum(1)
        return -(mean_positive_log_prob(logits) + mean_positive_log_prob(logits.T)).mean() / 2
    raise ValueError(f"unknown pair design {design!r}; choose A, B or C")


class InfoNCE(nn.Module):
    """Project two feature sets to a shared space and contrast them.

    variant "authors_code" (default): the authors' ``Clip(x, y)``: x -> project -> L2-normalise;
        y -> L2-normalise -> project, not normalised again. Operand order matters.
    variant "paper": Algorithm 1: both projected, then both L2-normalised.
    """

    def __init__(self, dim_x: int, dim_y: int, out_dim: int = 128, variant: str = "authors_code"):
        super().__init__()
        self.project_x = nn.Linear(dim_x, out_dim)
        self.project_y = nn.Linear(dim_y, out_dim)
        self.variant = variant

    def forward(self, x: torch.Tensor, y: torch.Tensor, scale: torch.Tensor | float,
                labels: torch.Tensor | None = None, design: str = "A") -> torch.Tensor:
        x = F.normalize(self.project_x(x), dim=-1)
        if self.variant == "authors_code":
            y = self.project_y(F.normalize(y, dim=-1))
        else:
            y = F.normalize(self.project_y(y), dim=-1)
        x, y = gather_across_processes(x), gather_across_processes(y)
        if labels is not None:
            labels = gather_across_processes(labels)
        return symmetric_infonce(x, y, scale, labels, design)


class LogitScale(nn.Module):
    """The factor logits are multiplied by: the authors' fixed log(1/0.07) ("authors_code"), or Algorithm 1's
    exp(tau) with tau learnable, initialised at log(1/0.07) as in CLIP and clamped at 100 ("paper")."""

    MAX_SCALE = 100.0

    def __init__(self, variant: str, init: float):
        super().__init__()
        self.learnable = variant == "paper"
        if self.learnable:
            self.log_scale = nn.Parameter(torch.tensor(init))
        else:
            self.register_buffer("value", torch.tensor(init), persistent=False)

    def forward(self) -> torch.Tensor:
        if self.learnable:
            return self.log_scale.exp().clamp(max=self.MAX_SCALE)
        return self.value
