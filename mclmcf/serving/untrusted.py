"""What a weights source from outside may be, before anything of it is built: the policy for a visitor's value and
the checks every weights folder passes.

A visitor's value (the page's Weights field, the API's ``weights``) may name a Hub repo (``parse_repo_id``) or a
local directory inside ``$MCLMCF_ALLOWED_WEIGHT_DIRS`` (``check_visitor_source``); a Hub repo's files are sized
through the Hub API before download (``check_download_sizes``) into a cache folder of their own, kept within
``VISITOR_CACHE_BYTES`` (``evict_least_recent``). Whoever named the weights, the config is read and bounded and
the tensors it would build (on PyTorch's meta device: no memory) must be exactly those of the safetensors header,
which safetensors refuses when the file is truncated or the header does not describe it (``checked_config``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import torch
from huggingface_hub import constants, scan_cache_dir
from huggingface_hub.utils import validate_repo_id
from safetensors import SafetensorError, safe_open

from preprocessing.encoders import cache_dir

from mclmcf.model import MCLMCF, MCLMCFConfig
from mclmcf.model.lora import is_lora_key
from mclmcf.model.text_encoder import check_visitor_encoder

ALLOWED_DIRS_ENV = "MCLMCF_ALLOWED_WEIGHT_DIRS"   # os.pathsep-separated directories visitors may load from
WEIGHTS_FILE = constants.SAFETENSORS_SINGLE_FILE
CONFIG_FILE = "config.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")
# largest size of each file fetched from a Hub repo: a fine-tuned 110 M-parameter encoder is ~440 MB
MAX_FILE_BYTES = {CONFIG_FILE: 256_000, WEIGHTS_FILE: 600_000_000, **{f: 32_000_000 for f in TOKENIZER_FILES}}
VISITOR_CACHE_BYTES = 1_500_000_000   # disk kept for visitors' repos (the largest repo fits twice)
MAX_HEADER_BYTES = 4_000_000          # a safetensors header (JSON): ~100 bytes per tensor
# upper bounds of the config's sizes, checked before anything is built (the demo weights: 512 / 64 / 768 / 12)
MAX_CONFIG_DIMS = dict(audio_dim=4096, visual_dim=4096, lstm_hidden=4096, unimodal_dim=4096, contrastive_dim=4096,
                       level2_dim=4096, tcf_dim=1024, fusion_dim=4096, head_hidden=4096, text_encoder_lora_rank=256,
                       tcf_pool=64, tcf_head_pool=64)
MAX_ENCODER_DIMS = dict(hidden_size=4096, num_hidden_layers=48, num_attention_heads=64, intermediate_size=16384,
                        vocab_size=500_000, max_position_embeddings=8192)
REVISION = re.compile(r"[\w.\-/]{1,100}")


class WeightsError(ValueError):
    """No usable weights: the message says what to do."""


def parse_repo_id(source: str) -> tuple[str, str | None] | None:
    """``owner/name[@revision]`` -> (repo id, revision or None); None when ``source`` is not one."""
    repo_id, at, revision = source.partition("@")
    try:
        validate_repo_id(repo_id)
    except ValueError:
        return None
    if repo_id.count("/") != 1 or (at and (not REVISION.fullmatch(revision) or ".." in revision)):
        return None
    return repo_id, revision or None


def allowed_dirs() -> list[str]:
    return [os.path.realpath(d) for d in os.environ.get(ALLOWED_DIRS_ENV, "").split(os.pathsep) if d.strip()]


def check_visitor_source(source: str) -> str | None:
    """The real path of a visitor's weights value when it names a local directory (None when it is a Hub repo
    id): every spelling of a directory (``./w``, ``w/.``, ``../app/w``) gives one path, loaded once. Local
    directories count only inside ``$MCLMCF_ALLOWED_WEIGHT_DIRS``, the operator's own source included (a visitor
    reaches that one with an empty field): the check reads no file, so every other value, an existing system
    directory, the install's own folders, a file or a missing path alike, gets the same WeightsError."""
    if parse_repo_id(source):
        return None
    try:
        path = os.path.realpath(os.path.expanduser(source))
    except ValueError:   # a NUL byte or a lone surrogate: no path at all
        path = None
    if path and any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in allowed_dirs()):
        return path
    shown = source if len(source) <= 100 else source[:100] + "…"
    raise WeightsError(f"'{shown}' is not a weights source this server accepts. Enter a Hugging Face Hub repo id "
                       "(owner/name or owner/name@revision), or leave the field empty for the default weights.")


def check_download_sizes(label: str, sizes: dict[str, int | None], wanted: list[str]) -> None:
    """WeightsError when a file of a visitor's Hub repo, sized by the Hub API, is of unknown size or past
    ``MAX_FILE_BYTES``: checked before anything is downloaded."""
    for name in wanted:
        if sizes[name] is None or sizes[name] > MAX_FILE_BYTES[name]:
            shown = "of unknown size" if sizes[name] is None else f"{sizes[name] / 1e6:,.1f} MB"
            raise WeightsError(f"'{label}': {name} is {shown}; this server loads at most "
                               f"{MAX_FILE_BYTES[name] / 1e6:,.1f} MB. Use smaller weights, or run the app yourself.")


def visitor_cache_dir() -> Path:
    return cache_dir() / "visitor-weights"


def evict_least_recent(root: Path, keep: Path, limit: int | None = None) -> list[Path]:
    """Delete whole repos from a Hugging Face cache folder (huggingface_hub's cache scan and deletion), least
    recently used first, until it holds at most ``limit`` bytes (``VISITOR_CACHE_BYTES``); ``keep`` (the repo
    folder just used) stays. Returns the deleted repo folders."""
    limit = VISITOR_CACHE_BYTES if limit is None else limit
    os.utime(keep)   # a repo folder's time says when it was last used (file access times are not kept everywhere)
    cache = scan_cache_dir(root)
    total, doomed = cache.size_on_disk, []
    for repo in sorted(cache.repos, key=lambda r: r.repo_path.stat().st_mtime):
        if total <= limit:
            break
        if repo.repo_path != keep:
            doomed.append(repo)
            total -= repo.size_on_disk
    cache.delete_revisions(*(rev.commit_hash for repo in doomed for rev in repo.revisions)).execute()
    for repo in doomed:   # what the deletion leaves of a repo (refs, empty folders) goes too
        shutil.rmtree(repo.repo_path, ignore_errors=True)
    return [repo.repo_path for repo in doomed]


def checked_config(directory: str | os.PathLike, label: str, visitor: bool = False) -> MCLMCFConfig:
    """The config of a weights directory, checked before anything is built: readable; for a ``visitor``'s
    weights, a text encoder they may name (else VisitorEncoderRefused) and sizes within ``MAX_CONFIG_DIMS`` /
    ``MAX_ENCODER_DIMS``; and the tensors it would build (on the meta device: no memory) exactly those of
    the safetensors header, whose size must match the file's. Raises WeightsError."""
    path = Path(directory) / CONFIG_FILE
    if path.stat().st_size > MAX_FILE_BYTES[CONFIG_FILE]:
        raise WeightsError(f"'{label}': {CONFIG_FILE} is larger than {MAX_FILE_BYTES[CONFIG_FILE] // 1000} kB.")
    try:
        config = MCLMCFConfig.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError, AttributeError, RecursionError) as err:   # JSON, keys, types, an old revision
        raise WeightsError(f"'{label}': {CONFIG_FILE} is not a usable mclmcf config: {str(err)[:300]}") from None
    encoder = config.text_encoder_config
    if not isinstance(encoder, dict):
        raise WeightsError(f"'{label}': {CONFIG_FILE} does not record its text encoder's architecture "
                           "(text_encoder_config): save the weights again with MCLMCF.save_pretrained.")
    if visitor:
        check_visitor_encoder(config)
        check_visitor_sizes(config, label)
    stored = safetensors_shapes(Path(directory) / WEIGHTS_FILE, label)
    built = _built_shapes(config, label)
    differ = sorted(k for k in stored.keys() | built.keys() if stored.get(k) != built.get(k))
    if differ:
        k = differ[0]
        raise WeightsError(f"'{label}': {WEIGHTS_FILE} does not fit {CONFIG_FILE}: {len(differ)} tensor(s) differ, "
                           f"e.g. {k[:80]}: {stored.get(k, 'missing')} in the file, {built.get(k, 'none')} in the "
                           "config. Save the weights again with MCLMCF.save_pretrained.")
    return config


def check_visitor_sizes(config: MCLMCFConfig, label: str) -> None:
    """WeightsError when a size in the config is past ``MAX_CONFIG_DIMS`` / ``MAX_ENCODER_DIMS`` or the TCF
    stack is larger than 8 layers of 64 channels."""
    encoder = config.text_encoder_config
    for values, limits, where in ((vars(config), MAX_CONFIG_DIMS, ""),
                                  (encoder, MAX_ENCODER_DIMS, "text_encoder_config.")):
        for key, limit in limits.items():
            value = values.get(key, 1)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
                raise WeightsError(f"'{label}': {CONFIG_FILE} sets {where}{key} = {str(value)[:20]}; this server "
                                   f"builds models with {where}{key} up to {limit}.")
    layers = config.tcf_channels
    if len(layers) > 8 or not all(isinstance(layer, (list, tuple)) and len(layer) == 2 and
                                  all(isinstance(c, int) and 0 < c <= 64 for c in layer) for layer in layers):
        raise WeightsError(f"'{label}': {CONFIG_FILE} sets tcf_channels = {str(config.tcf_channels)[:60]}; this server "
                           "builds at most 8 layers of at most 64 channels.")


def _built_shapes(config: MCLMCFConfig, label: str) -> dict[str, tuple[int, ...]]:
    """Shape of every tensor a checkpoint of ``config`` stores, from a model built on the meta device (the
    text encoder from its recorded architecture: nothing resolved or downloaded)."""
    try:
        with torch.device("meta"):
            skeleton = MCLMCF(config.replace(text_encoder_sha256=None))
    except Exception as err:   # whatever an untrusted config makes the constructors raise: nothing was allocated
        raise WeightsError(f"'{label}': {CONFIG_FILE} does not describe a model this server can build "
                           f"({type(err).__name__}).") from None
    by_reference = config.text_encoder_by_reference
    return {k: tuple(v.shape) for k, v in skeleton.state_dict().items()
            if not (by_reference and k.startswith("text_encoder.") and not is_lora_key(k))}


def safetensors_shapes(path: Path, label: str) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape from a safetensors file's header alone; WeightsError when the file is not whole
    (safetensors refuses a truncated file, or a header that does not describe it). The header's length is bounded
    first: the 8 bytes that give it come from whoever wrote the file."""
    damaged = (f"'{label}': {WEIGHTS_FILE} is truncated or damaged (an interrupted copy or download?). "
               "Copy or download the weights again.")
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8).ljust(8, b"\xff"), "little")
    if n > min(MAX_HEADER_BYTES, path.stat().st_size - 8):
        raise WeightsError(damaged)
    try:
        with safe_open(path, framework="pt") as tensors:
            return {k: tuple(tensors.get_slice(k).get_shape()) for k in tensors.keys()}
    except SafetensorError:
        raise WeightsError(damaged) from None
