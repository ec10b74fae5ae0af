"""Which weights the app runs: a Hub repo id (optionally ``@revision``) or a local directory.

Resolution order: the explicit argument (``--weights``), then ``$MCLMCF_WEIGHTS``, then the bundled
``checkpoints/`` directory when it holds weights. When the Hub cannot be reached a repo revision
already in the cache is used; otherwise the operator's repo falls back to ``checkpoints/`` (a visitor's
is refused). Either way it says so. Only safetensors are ever loaded (``MCLMCF.from_pretrained``).

A value typed by a visitor (the page's Weights field, the API's ``weights``) is not trusted: what it may name,
the bounds on a visitor's repo and the checks every weights folder passes before a model is built live in
mclmcf.serving.untrusted. From a Hub repo only the exact files it lists are fetched (config, weights, four
tokenizer files at the root).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import HTTPError
from transformers import AutoTokenizer

from preprocessing import FeatureSpec
from preprocessing.encoders import load_tokenizer
from preprocessing.hub import hub_reachable

from mclmcf.model import MCLMCF
from mclmcf.model.lora import merge_lora
from mclmcf.model.text_encoder import VisitorEncoderRefused, is_packaged
from mclmcf.serving.untrusted import (CONFIG_FILE, TOKENIZER_FILES, WEIGHTS_FILE, WeightsError, check_download_sizes,
                                      checked_config, evict_least_recent, parse_repo_id, visitor_cache_dir)

log = logging.getLogger(__name__)

ENV_VAR = "MCLMCF_WEIGHTS"
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "checkpoints"
_download_slot = threading.Lock()   # one visitor repo downloaded at a time: the cache bound holds between them


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
    except (OSError, HTTPError) as err:   # network errors and missing repos alike (huggingface_hub's own names)
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
    if visitor:
        check_download_sizes(label, sizes, wanted)
    with _download_slot if visitor else contextlib.nullcontext():
        paths = [hf_hub_download(repo_id, name, revision=revision, cache_dir=cache_dir) for name in wanted]
        if visitor:
            evict_least_recent(Path(cache_dir), keep=Path(paths[0]).parents[2])
    return str(Path(paths[0]).parent)


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

