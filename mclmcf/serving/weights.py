"""Which weights the app runs: a Hub repo id (optionally ``@revision``) or a local directory.

Resolution order: the explicit argument (``--weights``), then ``$MCLMCF_WEIGHTS``, then the bundled
``checkpoints/`` directory when it holds weights. When the Hub cannot be reached a repo revision
already in the Hugging Face cache is used; otherwise the app falls back to ``checkpoints/``. Either
way it says so. Only safetensors are ever loaded (``MCLMCF.from_pretrained``).

A value typed by a visitor (the page's Weights field, the API's ``weights``) is not trusted: it may
name a Hub repo, never looked up on disk, and a local directory only when the operator named it (the
command line / ``$MCLMCF_WEIGHTS`` source, or one inside ``$MCLMCF_ALLOWED_WEIGHT_DIRS``). Anything
else gets the same message whatever exists on the server's disk (``check_visitor_source``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from huggingface_hub import constants, snapshot_download
from huggingface_hub.utils import validate_repo_id
from transformers import AutoTokenizer

from preprocessing import FeatureSpec, FeatureSpecMismatch
from preprocessing.encoders import load_tokenizer
from preprocessing.hub import hub_reachable

from mclmcf.model import MCLMCF
from mclmcf.model.lora import merge_lora

ENV_VAR = "MCLMCF_WEIGHTS"
ALLOWED_DIRS_ENV = "MCLMCF_ALLOWED_WEIGHT_DIRS"   # os.pathsep-separated directories visitors may load from
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "checkpoints"
WEIGHTS_FILE = constants.SAFETENSORS_SINGLE_FILE
HUB_FILES = ["config.json", WEIGHTS_FILE, "tokenizer*", "vocab.txt", "special_tokens_map.json"]
REVISION = re.compile(r"[\w.\-/]{1,100}")


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


def check_visitor_source(source: str, operator_dirs: tuple[str, ...] = ()) -> bool:
    """Whether a visitor's weights value is a local directory (True) or a Hub repo id (False). Local
    directories count only inside ``operator_dirs`` (the sources the operator started the app with) or
    ``$MCLMCF_ALLOWED_WEIGHT_DIRS``; the check reads no file, so every other value, an existing system
    directory, a file or a missing path alike, gets the same WeightsError."""
    if parse_repo_id(source):
        return False
    try:
        path = os.path.realpath(os.path.expanduser(source))
    except ValueError:   # a NUL byte or a lone surrogate: no path at all
        path = None
    roots = [os.path.realpath(d) for d in operator_dirs if d and os.path.isdir(d)] + allowed_dirs()
    if path and any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots):
        return True
    shown = source if len(source) <= 100 else source[:100] + "…"
    raise WeightsError(f"'{shown}' is not a weights source this server accepts. Enter a Hugging Face Hub repo id "
                       "(owner/name or owner/name@revision), or leave the field empty for the default weights.")


def load_weights(source: str | None = None, device: torch.device | None = None,
                 local: bool | None = None) -> LoadedWeights:
    """Load ``source`` (local dir or ``repo_id[@revision]``; None = :func:`default_source`) for inference.
    ``local``: whether ``source`` is a directory (None: whether one exists, for the operator's own
    sources; a visitor's value is classified by :func:`check_visitor_source` instead).
    Raises WeightsError (nothing usable) or FeatureSpecMismatch (weights need another extractor)."""
    device = device or pick_device()
    source = source or default_source()
    if not source:
        raise WeightsError(f"No model weights found. Put config.json + {WEIGHTS_FILE} in {DEFAULT_DIR}, "
                           f"or start the app with --weights <Hub repo id or directory> (or set ${ENV_VAR}).")
    notices: list[str] = []
    if os.path.isdir(source) if local is None else local:
        if not has_weights(source):
            raise WeightsError(f"'{source}' holds no config.json + {WEIGHTS_FILE} (only safetensors are loaded).")
        directory, label = source, _short(source)
    else:
        repo = parse_repo_id(source)
        if repo is None:
            raise WeightsError(f"'{source}' is neither a local directory nor a Hub repo id (owner/name[@revision]).")
        online = hub_reachable()
        try:   # offline, a copy of this revision in the Hugging Face cache still serves
            # downloaded first, then loaded from the snapshot: from_pretrained(repo_id) would look for
            # a local directory of that name before the Hub
            directory = snapshot_download(repo[0], revision=repo[1], allow_patterns=HUB_FILES,
                                          local_files_only=not online)
            if not has_weights(directory):
                raise FileNotFoundError(f"the repo has no config.json + {WEIGHTS_FILE}")
            label = source
            if not online:
                notices.append(f"The Hugging Face Hub cannot be reached; using the cached copy of '{source}'.")
        except (OSError, ConnectionError) as err:   # network errors and missing repos alike
            if not has_weights(DEFAULT_DIR):
                raise WeightsError(f"Could not download '{source}' ({err}) and {DEFAULT_DIR} has no weights "
                                   "to fall back to.") from err
            notices.append(f"Could not download '{source}' from the Hub ({type(err).__name__}); "
                           f"using the local weights in {_short(DEFAULT_DIR)} instead.")
            directory, label = str(DEFAULT_DIR), _short(DEFAULT_DIR)
    model = MCLMCF.from_pretrained(directory)
    config = model.config
    if not config.feature_spec:
        raise WeightsError(f"'{label}' does not record the feature extractor it was trained on "
                           "(config.feature_spec): it cannot be used on raw video.")
    # the installed extractor's spec of the checkpoint's version (older versions keep loading), checked compatible
    spec = FeatureSpec.matching(config.feature_spec, what=f"weights '{label}'")
    # inference only: adapters merged into their layers, and no parameter needs a gradient (word attribution
    # asks for its input's alone: cheaper backward)
    merge_lora(model.text_encoder)
    return LoadedWeights(model=model.to(device).eval().requires_grad_(False), tokenizer=_tokenizer(directory, config.text_encoder),
                         spec=spec, source=label, device=device, notices=notices)


def _tokenizer(directory: str, text_encoder: str):
    """The tokenizer saved with the weights; else the one of the config's text encoder."""
    try:
        return AutoTokenizer.from_pretrained(directory)
    except (OSError, ValueError):
        return load_tokenizer(text_encoder)


def _short(path: str | os.PathLike) -> str:
    """A path relative to the working directory when inside it (shorter to display)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd())) + "/"
    except ValueError:
        return str(path)


__all__ = ["LoadedWeights", "WeightsError", "FeatureSpecMismatch", "load_weights", "default_source",
           "has_weights", "pick_device", "hub_reachable", "check_visitor_source", "parse_repo_id", "ENV_VAR",
           "ALLOWED_DIRS_ENV", "DEFAULT_DIR"]
