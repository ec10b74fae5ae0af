"""Which weights the app runs: a Hub repo id (optionally ``@revision``) or a local directory.

Resolution order: the explicit argument (``--weights``), then ``$MCLMCF_WEIGHTS``, then the bundled
``checkpoints/`` directory when it holds weights. When the Hub cannot be reached a repo revision
already in the cache is used; otherwise the operator's repo falls back to ``checkpoints/`` (a visitor's
is refused). Either way it says so. Only safetensors are ever loaded (``MCLMCF.from_pretrained``).

A value typed by a visitor (the page's Weights field, the API's ``weights``) is not trusted: it may
name a Hub repo, never looked up on disk, and a local directory only inside ``$MCLMCF_ALLOWED_WEIGHT_DIRS``,
resolved to its real path so that every spelling loads it once. Anything else, the install's own folders
included, gets the same message whatever exists on the server's disk (``check_visitor_source``).

From a Hub repo only the exact files below are fetched (config, weights, four tokenizer files at the root).
Bounds on a visitor's repo: the Hub API's file sizes are checked before anything is downloaded, into a cache
folder of their own that keeps at most ``VISITOR_CACHE_BYTES`` (least recently used repos deleted first), and
the config's sizes are bounded. Before any model is built (``checked_config``), the shapes the config would
build (on PyTorch's meta device: no memory) must be exactly those in the safetensors header, whose length
must match the file's (a truncated file is refused, not loaded), whoever named the weights.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import torch
from huggingface_hub import HfApi, constants, hf_hub_download
from huggingface_hub.utils import validate_repo_id
from transformers import AutoTokenizer

from preprocessing import FeatureSpec, FeatureSpecMismatch
from preprocessing.encoders import cache_dir, load_tokenizer
from preprocessing.hub import hub_reachable

from mclmcf.model import MCLMCF, MCLMCFConfig
from mclmcf.model.lora import is_lora_key, merge_lora
from mclmcf.model.text_encoder import VisitorEncoderRefused, check_visitor_encoder, is_packaged

log = logging.getLogger(__name__)

ENV_VAR = "MCLMCF_WEIGHTS"
ALLOWED_DIRS_ENV = "MCLMCF_ALLOWED_WEIGHT_DIRS"   # os.pathsep-separated directories visitors may load from
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "checkpoints"
WEIGHTS_FILE = constants.SAFETENSORS_SINGLE_FILE
CONFIG_FILE = "config.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")
# largest size of each file fetched from a Hub repo: a fine-tuned 110 M-parameter encoder is ~440 MB
MAX_FILE_BYTES = {CONFIG_FILE: 256_000, WEIGHTS_FILE: 600_000_000, **{f: 32_000_000 for f in TOKENIZER_FILES}}
VISITOR_CACHE_BYTES = 1_500_000_000   # disk kept for visitors' repos (the largest repo fits twice)
MAX_HEADER_BYTES = 4_000_000          # a safetensors header (JSON): ~100 bytes per tensor
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
# upper bounds of the config's sizes, checked before anything is built (the demo weights: 512 / 64 / 768 / 12)
MAX_CONFIG_DIMS = dict(audio_dim=4096, visual_dim=4096, lstm_hidden=4096, unimodal_dim=4096, contrastive_dim=4096,
                       level2_dim=4096, tcf_dim=1024, fusion_dim=4096, head_hidden=4096, text_encoder_lora_rank=256,
                       tcf_pool=64, tcf_head_pool=64)
MAX_ENCODER_DIMS = dict(hidden_size=4096, num_hidden_layers=48, num_attention_heads=64, intermediate_size=16384,
                        vocab_size=500_000, max_position_embeddings=8192)
REVISION = re.compile(r"[\w.\-/]{1,100}")
_download_slot = threading.Lock()   # one visitor repo downloaded at a time: the cache bound holds between them


class WeightsError(ValueError):
    """No usable weights: the message says what to do."""


@dataclass
class LoadedWeights:
    model: MCLMCF
    tokenizer: object
    spec: FeatureSpec                  # the extractor settings these weights expect
    source: str                        # what was loaded, for display ("checkpoints/", "user/repo@rev")
    device: torch.device
    notices: list[str] = field(default_factory=list)   # fallbacks and warnings to show the user

    @property
    def trained_on(self) -> str:
        notes = self.model.config.notes or {}
        return str(notes.get("trained_on") or "not stated in the checkpoint (config.notes['trained_on'])")


def has_weights(directory: str | os.PathLike) -> bool:
    return (Path(directory) / WEIGHTS_FILE).is_file() and (Path(directory) / "config.json").is_file()


def default_source() -> str | None:
    """``$MCLMCF_WEIGHTS``, else ``checkpoints/`` if it has weights, else None."""
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR]
    return str(DEFAULT_DIR) if has_weights(DEFAULT_DIR) else None


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


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


def load_weights(source: str | None = None, device: torch.device | None = None, local: bool | None = None,
                 visitor: bool = False) -> LoadedWeights:
    """Load ``source`` (local dir or ``repo_id[@revision]``; None = :func:`default_source`) for inference.
    ``local``: whether ``source`` is a directory (None: whether one exists, for the operator's own
    sources; a visitor's value is classified by :func:`check_visitor_source` instead). ``visitor``: a value
    typed on the page (no fallback to other weights, the visitor cache, the visitor encoder rule).
    Raises WeightsError (nothing usable) or FeatureSpecMismatch (weights need another extractor)."""
    directory, label, notices = locate_weights(source, local, visitor)
    return build_weights(directory, label, notices, device, visitor)


def locate_weights(source: str | None, local: bool | None = None, visitor: bool = False) -> tuple[str, str, list[str]]:
    """(directory holding config.json + model.safetensors, label to display, notices): the download step of
    :func:`load_weights`, nothing built. A visitor's Hub repo never falls back to other weights."""
    source = source or default_source()
    if not source:
        raise WeightsError(f"No model weights found. Put config.json + {WEIGHTS_FILE} in checkpoints/, "
                           f"or start the app with --weights <Hub repo id or directory> (or set ${ENV_VAR}).")
    if os.path.isdir(source) if local is None else local:
        if not has_weights(source):
            raise WeightsError(f"'{_label(source)}' holds no config.json + {WEIGHTS_FILE} "
                               "(only safetensors are loaded).")
        return source, _label(source), []
    repo = parse_repo_id(source)
    if repo is None:
        raise WeightsError(f"'{source}' is neither a local directory nor a Hub repo id (owner/name[@revision]).")
    online = hub_reachable()
    try:   # offline, a copy of this revision in the cache still serves
        directory = fetch_hub_weights(*repo, online=online, visitor=visitor)
        if not has_weights(directory):
            raise FileNotFoundError(f"the repo has no config.json + {WEIGHTS_FILE}")
    except (OSError, httpx2.HTTPError) as err:   # network errors and missing repos alike
        log.info("could not download %r: %r", source, err)
        what = type(err).__name__
        if visitor:
            # no cause named: an exception's name would tell a visitor whether the server can reach the Hub
            raise WeightsError(f"Could not download '{source}' from the Hugging Face Hub. Check the repo id (a public "
                               f"repo with {CONFIG_FILE} and {WEIGHTS_FILE} at its root), or leave the field empty "
                               "for the default weights.") from err
        if not has_weights(DEFAULT_DIR):
            raise WeightsError(f"Could not download '{source}' ({what}) and checkpoints/ has no weights "
                               "to fall back to.") from err
        return str(DEFAULT_DIR), _label(DEFAULT_DIR), [
            f"Could not download '{source}' from the Hub ({what}); using the local weights in "
            f"{_label(DEFAULT_DIR)} instead."]
    notices = [] if online else [f"The Hugging Face Hub cannot be reached; using the cached copy of '{source}'."]
    return directory, source, notices


def build_weights(directory: str, label: str, notices: list[str], device: torch.device | None = None,
                  visitor: bool = False) -> LoadedWeights:
    """The model and tokenizer of a located directory, for inference: config and weights file checked
    against each other first (:func:`checked_config`), then built. Raises WeightsError or FeatureSpecMismatch."""
    device = device or pick_device()
    config = checked_config(directory, label, visitor)
    if not config.feature_spec:
        raise WeightsError(f"'{label}' does not record the feature extractor it was trained on "
                           "(config.feature_spec): it cannot be used on raw video.")
    # the installed extractor's spec of the checkpoint's version (older versions keep loading), checked compatible
    spec = FeatureSpec.matching(config.feature_spec, what=f"weights '{label}'")
    try:
        model = MCLMCF.from_pretrained(directory)
        tokenizer = _tokenizer(directory, config.text_encoder, visitor)
    except OSError as err:
        log.warning("weights %r: %r (cause: %r)", label, err, err.__cause__)
        if visitor:
            raise VisitorEncoderRefused() from err
        raise WeightsError(f"'{label}' could not be loaded: {err}") from err
    # inference only: adapters merged into their layers, and no parameter needs a gradient (word attribution
    # asks for its input's alone: cheaper backward)
    merge_lora(model.text_encoder)
    return LoadedWeights(model=model.to(device).eval().requires_grad_(False), tokenizer=tokenizer,
                         spec=spec, source=label, device=device, notices=notices)


def visitor_cache_dir() -> Path:
    return cache_dir() / "visitor-weights"


def fetch_hub_weights(repo_id: str, revision: str | None, online: bool, visitor: bool = False) -> str:
    """The snapshot directory of a Hub weights repo, holding only config.json, model.safetensors and the
    tokenizer files among ``TOKENIZER_FILES`` the repo has; offline, the cached copy. A visitor's repo:
    sizes checked against ``MAX_FILE_BYTES`` with the Hub API before anything is downloaded, into the
    visitor cache (bounded to ``VISITOR_CACHE_BYTES`` after each download); the operator's: the Hugging
    Face cache."""
    cache_dir = str(visitor_cache_dir()) if visitor else None
    if not online:
        return str(Path(hf_hub_download(repo_id, CONFIG_FILE, revision=revision, cache_dir=cache_dir,
                                        local_files_only=True)).parent)
    info = HfApi().model_info(repo_id, revision=revision, files_metadata=True, timeout=30)
    sizes = {s.rfilename: s.size for s in info.siblings or []}
    label = repo_id if revision is None else f"{repo_id}@{revision}"
    if CONFIG_FILE not in sizes or WEIGHTS_FILE not in sizes:
        raise WeightsError(f"'{label}' has no {CONFIG_FILE} + {WEIGHTS_FILE} at its root "
                           "(only safetensors are loaded).")
    wanted = [f for f in (CONFIG_FILE, WEIGHTS_FILE, *TOKENIZER_FILES) if f in sizes]
    for name in wanted if visitor else []:
        if sizes[name] is None or sizes[name] > MAX_FILE_BYTES[name]:
            shown = "of unknown size" if sizes[name] is None else f"{sizes[name] / 1e6:,.1f} MB"
            raise WeightsError(f"'{label}': {name} is {shown}; this server loads at most "
                               f"{MAX_FILE_BYTES[name] / 1e6:,.1f} MB. Use smaller weights, or run the app yourself.")
    with _download_slot if visitor else contextlib.nullcontext():
        paths = [hf_hub_download(repo_id, name, revision=revision, cache_dir=cache_dir) for name in wanted]
        if visitor:
            evict_least_recent(Path(cache_dir), keep=Path(paths[0]).parents[2])
    return str(Path(paths[0]).parent)


def evict_least_recent(root: Path, keep: Path, limit: int | None = None) -> list[Path]:
    """Delete whole repos (``models--owner--name``) from a Hugging Face cache folder, least recently used
    first, until it holds at most ``limit`` bytes (``VISITOR_CACHE_BYTES``); ``keep`` (just used) stays.
    Returns the deleted folders."""
    limit = VISITOR_CACHE_BYTES if limit is None else limit
    os.utime(keep)   # a repo's folder time says when it was last used
    repos = sorted((p for p in root.glob("models--*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
    sizes = {p: sum(f.lstat().st_size for f in p.rglob("*") if f.is_file() and not f.is_symlink()) for p in repos}
    total, deleted = sum(sizes.values()), []
    for repo in repos:
        if total <= limit:
            break
        if repo != keep:
            shutil.rmtree(repo, ignore_errors=True)
            total -= sizes[repo]
            deleted.append(repo)
    return deleted


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
    (truncated, or a header that does not describe it)."""
    damaged = (f"'{label}': {WEIGHTS_FILE} is truncated or damaged (an interrupted copy or download?). "
               "Copy or download the weights again.")
    size = path.stat().st_size
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8).ljust(8, b"\xff"), "little")
        if n > min(MAX_HEADER_BYTES, size - 8):
            raise WeightsError(damaged)
        try:
            header = json.loads(f.read(n))
            header.pop("__metadata__", None)
            shapes = {k: tuple(int(d) for d in t["shape"]) for k, t in header.items()}
            whole = all(end - begin == math.prod(shapes[k]) * DTYPE_BYTES[t["dtype"]]
                        for k, t in header.items() for begin, end in [t["data_offsets"]])
            ends = [int(t["data_offsets"][1]) for t in header.values()]
        except (ValueError, TypeError, KeyError, AttributeError, IndexError):
            raise WeightsError(damaged) from None
    if not whole or 8 + n + max(ends, default=0) != size:
        raise WeightsError(damaged)
    return shapes


def _tokenizer(directory: str, text_encoder: str, visitor: bool = False):
    """The tokenizer saved with the weights; else the one of the config's text encoder (for a visitor's
    weights, a packaged one only: any other name would be looked up on disk or downloaded)."""
    try:
        return AutoTokenizer.from_pretrained(directory)
    except (OSError, ValueError):
        if visitor and not is_packaged(text_encoder):
            raise VisitorEncoderRefused() from None
        return load_tokenizer(text_encoder)


def _label(path: str | os.PathLike) -> str:
    """A local directory as the page shows it: its name alone (the server's paths are not shown to visitors)."""
    return Path(path).resolve().name + "/"


__all__ = ["LoadedWeights", "WeightsError", "FeatureSpecMismatch", "load_weights", "locate_weights", "build_weights",
           "checked_config", "fetch_hub_weights", "visitor_cache_dir", "default_source",
           "has_weights", "pick_device", "hub_reachable", "check_visitor_source", "parse_repo_id", "ENV_VAR",
           "ALLOWED_DIRS_ENV", "DEFAULT_DIR"]
