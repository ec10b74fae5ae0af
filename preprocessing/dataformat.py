"""The safe on-disk dataset format: arrays in safetensors, everything else in JSON.

An MMSA-style dataset is ``{split: {key: array or list}}``. Pickles of that dict run code when
loaded, so this project stores datasets as a directory instead:

    DIR/meta.json             {"format": "mclmcf-dataset", "version": 1, "splits": [...],
                               "info": {...},                 # free-form provenance, feature spec
                               "lists": {split: {key: [...]}}}  # string lists: id, raw_text
    DIR/{split}.safetensors   every numeric array of that split under its MMSA key

Loading never unpickles anything.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

FORMAT_NAME = "mclmcf-dataset"
FORMAT_VERSION = 1


def save_safe(data: dict[str, dict[str, Any]], out_dir: str | os.PathLike, info: dict | None = None) -> Path:
    """Write ``{split: {key: array | list[str]}}`` to ``out_dir`` in the safe format."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lists: dict[str, dict[str, list]] = {}
    for split, fields in data.items():
        arrays, split_lists = {}, {}
        for key, value in fields.items():
            if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
                arrays[key] = np.ascontiguousarray(value)
            else:
                split_lists[key] = [str(v) for v in np.asarray(value, dtype=object).reshape(-1)]
        atomic_write(out / f"{split}.safetensors", lambda p, a=arrays: save_file(a, p))
        lists[split] = split_lists
    meta = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "splits": list(data),
            "info": info or {}, "lists": lists}
    atomic_write(out / "meta.json", lambda p: Path(p).write_text(json.dumps(meta, indent=1)))
    return out


def load_safe(path: str | os.PathLike) -> tuple[dict[str, dict[str, Any]], dict]:
    """Read a dataset written by :func:`save_safe`; returns ``(data, info)``."""
    root = Path(path)
    meta_path = root / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{root}: not a safe-format dataset (no meta.json). "
                                "Convert a pickle with `python -m mclmcf.training.data convert IN.pkl OUT_DIR`.")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != FORMAT_NAME or meta.get("version") != FORMAT_VERSION:
        raise ValueError(f"{meta_path}: format {meta.get('format')!r} v{meta.get('version')!r} is not "
                         f"{FORMAT_NAME!r} v{FORMAT_VERSION}")
    data = {}
    for split in meta["splits"]:
        arrays = load_file(str(root / f"{split}.safetensors"))
        fields: dict[str, Any] = dict(arrays)
        fields.update({k: np.asarray(v, dtype=object) for k, v in meta["lists"].get(split, {}).items()})
        data[split] = fields
    return data, meta.get("info", {})


def umask() -> int:
    """The process's umask, read without changing it (os.umask can only read by setting, which would open
    a window in which another thread's new files get the wrong mode)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration):   # not Linux
        mask = os.umask(0o022)
        os.umask(mask)
        return mask


def usual_mode(path: str | os.PathLike) -> None:
    """Give ``path`` the mode open() or mkdir() would: 0o666 (files) or 0o777 (folders) less the umask.
    mkstemp, mkdtemp and safetensors' save_file (it writes through a private temp file) make them 0600 / 0700,
    and a dataset, checkpoint or weights folder is meant to be read by other users (a Docker image, a server)."""
    os.chmod(path, (0o777 if os.path.isdir(path) else 0o666) & ~umask())


def atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename: never a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:   # on disk before the rename: after a power cut, the old file or the new one
            os.fsync(f.fileno())
        usual_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_npy(path: Path, array: np.ndarray) -> None:
    """``np.save`` through :func:`atomic_write` (given a name, np.save would append ".npy" to the temp file's)."""
    def write(tmp):
        with open(tmp, "wb") as f:
            np.save(f, array)
    atomic_write(path, write)


def pad_sequences(seqs: list[np.ndarray], length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Variable-length (L_i, ...) arrays -> one zero-padded (N, length, ...) array and the N kept lengths.
    ``length`` defaults to the longest; longer sequences are cut to it. An empty list gives (0, 1, ...)."""
    lengths = np.array([min(len(s), length or len(s)) for s in seqs], np.int64)
    length = length or int(lengths.max(initial=1))
    first = seqs[0] if seqs else np.zeros((0, 0), np.float32)
    out = np.zeros((len(seqs), length, *first.shape[1:]), first.dtype)
    for i, s in enumerate(seqs):
        out[i, : lengths[i]] = s[:length]
    return out, lengths
