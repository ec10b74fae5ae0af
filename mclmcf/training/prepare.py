"""What a run trains with, before the first step: the data splits, the model built to fit them (feature sizes,
feature spec and text window length come from the data and the run), its optimiser and memory options."""

from __future__ import annotations

import torch

from mclmcf.model import MCLMCF
from mclmcf.model.config import MCLMCFConfig
from mclmcf.training.config import TrainConfig
from mclmcf.training.data import SPLITS, Split, load_dataset, make_split, validate
from mclmcf.training.optim import BF16StateAdam
from mclmcf.training.runtime import TrainingStopped
from preprocessing.encoders import load_tokenizer


def prepare_data(cfg: TrainConfig, model_cfg: MCLMCFConfig, log) -> tuple[dict[str, Split], dict, dict]:
    raw, info = load_dataset(cfg.data, allow_pickle=cfg.allow_pickle)
    replaced = validate(raw, cfg.data, label_range=model_cfg.label_range, nonfinite=cfg.nonfinite_data)
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
    splits = {s: make_split(raw[s], tokenizer, text_source, cfg.max_text_len,
                              cfg.sample_weight if s == "train" else "none") for s in SPLITS}
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
