"""Adam with its moments stored in bf16 (mclmcf.training.cli --optimizer-state bf16): half the optimizer memory.

torch.optim.Adam keeps exp_avg and exp_avg_sq in the parameter's dtype: 8 bytes per fp32 parameter, 0.82 GiB
for BERT-base. Here they take 4 bytes; each step reads them into fp32, runs torch.optim.Adam's update in fp32
(same formula, L2 weight decay on the gradient) and stores them back with stochastic rounding. Rounding to
nearest would stall exp_avg_sq: its change per step (1 - beta2 = 0.1%) is under half a bf16 step (0.2-0.4%),
so it would stop following the gradients; stochastic rounding is unbiased, so it follows them on average.
Parameters and gradients stay fp32. The random bits are drawn once per step (2 x CHUNK numbers) and shared by
every chunk: one draw per element would cost seconds per BERT-base step on a CPU core (torch's CPU generator).
Each element's rounding stays unbiased; within a step, elements at the same offset of different
chunks round alike, which moves the step's update by less than a bf16 step (0.4%).
"""

from __future__ import annotations

import math

import torch

CHUNK = 1 << 20   # elements updated at a time: bounds the fp32 temporaries (BERT's embedding is 23 M)


def round_to_bf16(x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """fp32 -> bf16, rounding away from zero with probability equal to the part dropped (unbiased) when
    ``noise`` (int32, x's shape) is uniform in [0, 2^16): added below bf16's last bit, then truncated.
    Overwrites x (a temporary here: one pass fewer than a copy)."""
    return x.view(torch.int32).add_(noise).bitwise_and_(-65536).view(torch.float32).bfloat16()  # exact: low bits 0


class BF16StateAdam(torch.optim.Optimizer):
    """torch.optim.Adam's update (no amsgrad) with exp_avg / exp_avg_sq stored in bf16."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        noise = {}   # device -> (2, CHUNK) random bits for this step, from torch's RNG (checkpointed with it)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, dtype=torch.bfloat16, memory_format=torch.contiguous_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, dtype=torch.bfloat16, memory_format=torch.contiguous_format)
                state["step"] += 1
                # torch's sqrt(v) / sqrt(bias2) + eps, with sqrt(bias2) moved into the step size: one pass fewer
                bias2_sqrt = math.sqrt(1 - beta2 ** state["step"])
                step_size = group["lr"] * bias2_sqrt / (1 - beta1 ** state["step"])
                if p.device not in noise:
                    noise[p.device] = torch.randint(0, 1 << 16, (2, CHUNK), dtype=torch.int32, device=p.device)
                bits_m, bits_v = noise[p.device]
                pieces = (t.view(-1).split(CHUNK) for t in (p, p.grad, state["exp_avg"], state["exp_avg_sq"]))
                for param, grad, m16, v16 in zip(*pieces):
                    grad = grad.float()
                    if group["weight_decay"]:
                        grad = grad.add(param, alpha=group["weight_decay"])
                    m = m16.float().lerp_(grad, 1 - beta1)
                    v = v16.float().mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                    param.addcdiv_(m, v.sqrt().add_(group["eps"] * bias2_sqrt), value=-step_size)
                    m16.copy_(round_to_bf16(m, bits_m[:m.numel()]))
                    v16.copy_(round_to_bf16(v, bits_v[:v.numel()]))
        return loss

    def load_state_dict(self, state_dict: dict) -> None:
        # torch casts loaded state to each parameter's dtype (fp32): put the moments back in bf16
        super().load_state_dict(state_dict)
        for state in self.state.values():
            for key in ("exp_avg", "exp_avg_sq"):
                state[key] = state[key].to(torch.bfloat16)
