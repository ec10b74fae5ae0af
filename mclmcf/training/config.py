"""The training run's choices (TrainConfig), its presets and the level-3 recipes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Level-3 (TCF InfoNCE) recipes, chosen at training time (mclmcf.training.cli --level3). "faithful" is the paper's
# level 3 as the authors' code runs it: D x D images and flatten -> Linear(D'^2 -> d) per InfoNCE input
# (~197 M training-only parameters at D = 512). "efficient" changes the level-3 loss only (the prediction
# does not read the TCF output): 4x average-pooled images and the conv output pooled to 16 x 16; 4-7x
# the training throughput on CPU, same quality (README "Performance" has the figures).
LEVEL3_RECIPES: dict[str, dict[str, Any]] = {
    "faithful": dict(tcf_backbone="conv3", tcf_head="flatten"),
    "efficient": dict(tcf_backbone="pooled_conv3", tcf_pool=4, tcf_head="pool", tcf_head_pool=16),
}


# The schedule the paper leaves out, from the authors' code (src/config.py): batch 128, up to 200 epochs (the
# paper's Fig. 5 run), the lr halved after 20 epochs without a better validation loss. Their loop never
# stops early and keeps the last epoch; we stop after `patience` epochs without a better validation MAE
# and keep the best (README Fidelity). SIMS is not in their code: the same schedule.
AUTHORS_SCHEDULE = dict(batch_size=128, epochs=200, scheduler="plateau", lr_patience=20)
TRAIN_PRESETS: dict[str, dict[str, Any]] = {"mosi": AUTHORS_SCHEDULE, "mosei": AUTHORS_SCHEDULE, "sims": AUTHORS_SCHEDULE}


@dataclass
class TrainConfig:
    data: str = ""                        # dataset directory (safe format) or trusted pickle
    out: str = "checkpoints/run"
    dataset: str = "mosi"                 # preset: mosi / mosei / sims (also picks the metric convention)
    allow_pickle: bool = False
    text_source: str = "auto"             # auto (text_bert if present) / file / tokenize (raw_text)
    max_text_len: int = 50
    sample_weight: str = "none"           # none / agreement: weight the L1 loss by rater agreement (rater_sd)
    standardize: bool = True              # per-feature standardisation, training-split statistics
    nonfinite_data: str = "replace"       # NaN/inf in features: replace by 0 (counted) or error
    level3: str = "efficient"             # level-3 recipe (mclmcf.training.config.LEVEL3_RECIPES): efficient / faithful
    model: dict = field(default_factory=dict)   # MCLMCFConfig overrides (win over the level-3 recipe)
    # optimisation (paper Sec. 5.3)
    epochs: int = 40
    batch_size: int = 32
    eval_batch_size: int = 64
    lr: float = 1e-4
    bert_lr: float = 5e-5
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    patience: int = 10                    # early stopping on validation MAE
    accumulate: int = 1                   # gradient accumulation steps
    length_buckets: int = 0               # >0: batches of similar text length, sorted within runs of this many
    scheduler: str = "none"               # none / plateau (halve the lr when valid MAE stalls)
    lr_patience: int = 20                 # plateau: epochs without a better valid MAE before halving
    precision: str = "fp32"               # fp32 / bf16 / fp16 autocast (fp16: GPU only); fp32 is exact
    gradient_checkpointing: bool = False  # recompute the text encoder's activations in backward (less memory)
    optimizer_state: str = "fp32"         # fp32 / bf16: Adam's moments stored in bf16 (mclmcf.training.optim)
    device: str = "auto"
    seed: int = 1111
    deterministic: bool = False
    on_nonfinite: str = "skip"            # NaN/inf loss: skip the step, or stop with a message
    max_nonfinite: int = 20               # stop after this many skipped steps in a row
    checkpoint_every: int = 0             # also checkpoint every N optimizer steps (0: per epoch only)
    stop_after_steps: int = 0             # testing: simulate a crash after N optimizer steps, no save
    resume: bool = False
    tensorboard: bool = False
    push_to_hub: str | None = None
    num_workers: int = 0
    progress: bool = True

    def __post_init__(self):
        checks = {"text_source": ("auto", "file", "tokenize"), "nonfinite_data": ("replace", "error"),
                  "sample_weight": ("none", "agreement"),
                  "scheduler": ("none", "plateau"), "precision": ("fp32", "bf16", "fp16"),
                  "optimizer_state": ("fp32", "bf16"), "on_nonfinite": ("skip", "stop"), "level3": tuple(LEVEL3_RECIPES)}
        for name, allowed in checks.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r}; choose one of {allowed}")
        if self.accumulate < 1 or self.batch_size < 1 or self.length_buckets < 0:
            raise ValueError("batch_size and accumulate must be >= 1, length_buckets >= 0")

    def to_dict(self) -> dict:
        return asdict(self)

    def model_overrides(self) -> dict:
        """MCLMCFConfig overrides on top of the dataset preset: the level-3 recipe, then ``model`` (wins)."""
        return {**LEVEL3_RECIPES[self.level3], **self.model}
