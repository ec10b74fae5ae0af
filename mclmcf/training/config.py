"""The training run's choices (TrainConfig), its presets and the level-3 recipes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

# Level-3 (TCF InfoNCE) recipes, chosen at training time (mclmcf.training.cli --level3). "faithful" is the paper's
# level 3 as the authors' code runs it: D x D images and flatten -> Linear(D'^2 -> d) per InfoNCE input
# (~197 M training-only parameters at D = 512). "efficient" changes the level-3 loss only (the prediction
# does not read the TCF output): 4x average-pooled images and the conv output pooled to 16 x 16, for a
# higher training throughput at the same quality (figures: benchmarks/README.md, "Training step").
LEVEL3_RECIPES: dict[str, dict[str, Any]] = {
    "faithful": dict(tcf_backbone="conv3", tcf_head="flatten"),
    "efficient": dict(tcf_backbone="pooled_conv3", tcf_pool=4, tcf_head="pool", tcf_head_pool=16),
}


# The schedule the paper leaves out, from the authors' code (src/config.py): batch 128, up to 200 epochs (the
# paper's Fig. 5 run), the lr halved after 20 epochs without a better validation loss. Their loop never
# stops early and keeps the last epoch; we stop after `patience` epochs without a better validation MAE
# and keep the best (docs/model.md, Fidelity). SIMS is not in their code: the same schedule.
AUTHORS_SCHEDULE = dict(batch_size=128, epochs=200, scheduler="plateau", lr_patience=20)
TRAIN_PRESETS: dict[str, dict[str, Any]] = {"mosi": AUTHORS_SCHEDULE, "mosei": AUTHORS_SCHEDULE, "sims": AUTHORS_SCHEDULE}


GROUPS = ("data", "model", "optimisation", "memory", "output")   # the --help sections, in order


def setting(default: Any, help: str, group: str, choices: tuple[str, ...] = (), **flag: Any) -> Any:
    """A TrainConfig field with what its --flag says: ``help``, its --help ``group`` (GROUPS), the allowed values
    (checked by TrainConfig and offered as argparse ``choices``) and further add_argument keywords (``metavar``)."""
    return field(default=default, metadata={"help": help, "group": group, "choices": choices, **flag})


@dataclass
class TrainConfig:
    """Every training setting. mclmcf.training.cli makes each field a --flag (``batch_size`` -> --batch-size),
    except ``model``, which the model switches and --set fill."""

    # data
    data: str = setting("", "dataset folder (safe format) or, with --allow-pickle, a trusted pickle", "data",
                        metavar="DIR")
    dataset: str = setting("mosi", "paper preset (also picks the metric convention)", "data", tuple(sorted(TRAIN_PRESETS)))
    allow_pickle: bool = setting(False, "read pickles (they run code: trusted files only)", "data")
    text_source: str = setting("auto", "auto: text_bert when the data has it, else tokenize raw_text; file: "
                               "text_bert only; tokenize: raw_text only", "data", ("auto", "file", "tokenize"))
    max_text_len: int = setting(50, "tokens per text, [CLS] and [SEP] included (longer texts are cut)", "data")
    sample_weight: str = setting("none", "agreement: weight each sample's L1 loss by how much its raters agreed "
                                 "(needs rater_sd)", "data", ("none", "agreement"))
    standardize: bool = setting(True, "per-feature standardisation with the training split's statistics", "data")
    nonfinite_data: str = setting("replace", "NaN/inf in the features: replace them by 0 (counted) or stop", "data",
                                  ("replace", "error"))
    num_workers: int = setting(0, "DataLoader worker processes (0: batches made in the training process)", "data")
    # model
    level3: str = setting("efficient", "level-3 recipe (LEVEL3_RECIPES): efficient (pooled TCF images and head) or "
                          "faithful (the paper's)", "model", tuple(sorted(LEVEL3_RECIPES)))
    model: dict = field(default_factory=dict)   # MCLMCFConfig overrides (win over the level-3 recipe); CLI: --set etc.
    # optimisation (paper Sec. 5.3)
    epochs: int = setting(40, "most epochs to train", "optimisation")
    batch_size: int = setting(32, "training batch size (per process under torchrun)", "optimisation")
    lr: float = setting(1e-4, "Adam learning rate outside the text encoder", "optimisation")
    bert_lr: float = setting(5e-5, "the text encoder's (or its adapters') learning rate", "optimisation")
    weight_decay: float = setting(1e-4, "Adam weight decay", "optimisation")
    grad_clip: float = setting(1.0, "clip the gradients' global norm to this", "optimisation")
    patience: int = setting(10, "early stopping: epochs without a better validation MAE", "optimisation")
    accumulate: int = setting(1, "gradient accumulation steps", "optimisation")
    length_buckets: int = setting(0, ">0: batches of similar text length, sorted within runs of this many",
                                  "optimisation")
    scheduler: str = setting("none", "plateau: halve the lr when the validation MAE stalls", "optimisation",
                             ("none", "plateau"))
    lr_patience: int = setting(20, "plateau: epochs without a better validation MAE before halving", "optimisation")
    seed: int = setting(1111, "seed of the initialisation, batch order and dropout", "optimisation")
    deterministic: bool = setting(False, "deterministic kernels (slower)", "optimisation")
    on_nonfinite: str = setting("skip", "NaN/inf loss: skip the step, or stop with a message", "optimisation",
                                ("skip", "stop"))
    max_nonfinite: int = setting(20, "stop after this many skipped steps in a row", "optimisation")
    # memory and device
    precision: str = setting("fp32", "autocast dtype (fp32: exact; fp16: GPU only)", "memory", ("fp32", "bf16", "fp16"))
    gradient_checkpointing: bool = setting(False, "recompute the text encoder's activations in backward: less "
                                           "memory, ~1 more encoder forward", "memory")
    optimizer_state: str = setting("fp32", "dtype of Adam's two moments (bf16: half the memory; "
                                   "mclmcf.training.optim)", "memory", ("fp32", "bf16"))
    eval_batch_size: int = setting(64, "batch size of validation and test", "memory")
    device: str = setting("auto", "auto, cpu, cuda, cuda:1, ...", "memory")
    # output
    out: str = setting("checkpoints/run", "run directory: checkpoints, metrics.json, curves.png, model/", "output",
                       metavar="DIR")
    resume: bool = setting(False, "continue the run in --out from its last checkpoint", "output")
    init_from: str | None = setting(None, "warm start: begin at the weights of this from_pretrained folder (e.g. "
                                    "checkpoints/); the model settings must match its config", "output", metavar="DIR")
    checkpoint_every: int = setting(0, "also checkpoint every N optimizer steps (0: per epoch only)", "output")
    stop_after_steps: int = setting(0, "testing: simulate a crash after N optimizer steps, no save", "output")
    tensorboard: bool = setting(False, "log to OUT/tensorboard", "output")
    push_to_hub: str | None = setting(None, "upload OUT/model to the Hugging Face Hub", "output", metavar="REPO_ID")
    progress: bool = setting(True, "progress bars", "output")

    def __post_init__(self):
        for f in fields(self):
            allowed = f.metadata.get("choices")
            if allowed and getattr(self, f.name) not in allowed:
                raise ValueError(f"{f.name}={getattr(self, f.name)!r}; choose one of {allowed}")
        if self.accumulate < 1 or self.batch_size < 1 or self.length_buckets < 0:
            raise ValueError("batch_size and accumulate must be >= 1, length_buckets >= 0")

    def to_dict(self) -> dict:
        return asdict(self)

    def model_overrides(self) -> dict:
        """MCLMCFConfig overrides on top of the dataset preset: the level-3 recipe, then ``model`` (wins)."""
        return {**LEVEL3_RECIPES[self.level3], **self.model}
