"""Low-rank adapters (Hu et al. 2021, "LoRA") on a frozen text encoder.

Every nn.Linear inside the encoder's transformer layers computes W x + b + (alpha / r) B A x, with W and b
the pretrained weights (frozen, stored by reference: name + SHA-256) and A (r x in), B (out x r) trained.
B starts at zero, so training starts from the pretrained encoder exactly. A checkpoint holds A and B alone:
for all-mpnet-base-v2 at rank 8, 1.3 M numbers instead of the encoder's 109.5 M.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

ALPHA_OVER_RANK = 2.0      # alpha = 2 r, the common choice: the update's scale does not change with the rank


class LoRALinear(nn.Module):
    """A frozen nn.Linear plus a trained low-rank update. Keys: ``base.*`` (frozen), ``lora_a``, ``lora_b``."""

    def __init__(self, base: nn.Linear, rank: int):
        super().__init__()
        self.base = base
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))      # nn.Linear's own init, as in the paper's code
        self.scale = ALPHA_OVER_RANK

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the update folded into the weight: cheaper than two more matmuls over every token, and it still
        # passes gradients to A and B (training) and to x (word attribution)
        return F.linear(x, self.base.weight + self.scale * self.lora_b @ self.lora_a, self.base.bias)


def add_lora(encoder: nn.Module, rank: int) -> None:
    """Wrap every nn.Linear under the encoder's ``encoder`` stack (attention and feed-forward; the embeddings
    hold none) in a LoRALinear, in place."""
    stack = getattr(encoder, "encoder", None)
    if stack is None:
        raise ValueError(f"{type(encoder).__name__} has no .encoder stack of transformer layers to adapt")
    targets = [(parent, name, child) for parent in stack.modules() for name, child in parent.named_children()
               if isinstance(child, nn.Linear)]
    for parent, name, child in targets:
        setattr(parent, name, LoRALinear(child, rank))


def merge_lora(encoder: nn.Module) -> int:
    """Serving: replace every LoRALinear by a plain nn.Linear holding W + (alpha / r) B A, in place, so a forward
    costs what the pretrained encoder's does and no folded copy of W is made per call. Same function; the
    result can no longer be trained or saved as adapters. Returns the number of layers merged."""
    targets = [(parent, name, child) for parent in encoder.modules() for name, child in parent.named_children()
               if isinstance(child, LoRALinear)]
    for parent, name, child in targets:
        # built on the meta device, then given the merged tensors: no random init and no copy (start-up time)
        merged = nn.Linear(child.base.in_features, child.base.out_features, bias=child.base.bias is not None,
                           device="meta")
        with torch.no_grad():
            merged.weight = nn.Parameter(child.base.weight + child.scale * child.lora_b @ child.lora_a,
                                         requires_grad=False)
            if child.base.bias is not None:
                merged.bias = nn.Parameter(child.base.bias.detach(), requires_grad=False)
        setattr(parent, name, merged)
    return len(targets)


def is_lora_key(key: str) -> bool:
    return key.endswith((".lora_a", ".lora_b"))
