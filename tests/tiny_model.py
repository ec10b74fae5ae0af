"""A tiny but real BERT-architecture MCL-MCF for fast tests (mclmcf.training.synthetic.TINY_MODEL), and its inputs."""

from __future__ import annotations

import torch

from mclmcf.model.config import MCLMCFConfig
from mclmcf.training.synthetic import TINY_BERT, TINY_MODEL
from preprocessing.encoders import load_tokenizer


def tiny_config(dataset: str = "mosi", **overrides) -> MCLMCFConfig:
    return MCLMCFConfig.from_preset(dataset, **{**TINY_MODEL, "text_encoder_config": dict(TINY_BERT), **overrides})


SENTENCES = ["a wonderful, moving film", "the plot was dull and far too long", "it was fine i guess",
             "terrible acting", "loved every minute", "not my thing"]


def make_batch(config: MCLMCFConfig, batch_size: int = 4, seed: int = 0) -> dict:
    """Inputs for ``model(**batch)``: audio and vision of different lengths within and across modalities."""
    g = torch.Generator().manual_seed(seed)
    texts = [SENTENCES[i % len(SENTENCES)] for i in range(batch_size)]
    enc = load_tokenizer(config.text_encoder)(texts, padding=True, return_tensors="pt")
    la, lv = 9, 5
    return dict(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                token_type_ids=enc["token_type_ids"],
                audio=torch.randn(batch_size, la, config.audio_dim, generator=g),
                audio_lengths=torch.randint(1, la + 1, (batch_size,), generator=g),
                vision=torch.randn(batch_size, lv, config.visual_dim, generator=g),
                vision_lengths=torch.randint(1, lv + 1, (batch_size,), generator=g),
                labels=(torch.rand(batch_size, generator=g) * 6 - 3))
