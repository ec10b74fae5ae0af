"""Datasets for training: the safe format (default), MMSA pickles and MMIM / CMU-SDK pickles -> batches.

    python -m mclmcf.training.data convert IN.pkl OUT_DIR      # MMSA pickle (or an MMIM folder) -> safe format
    python -m mclmcf.training.data info DIR                     # splits, shapes, label range of a dataset

Pickles execute arbitrary code when loaded: read them only from sources you trust, and only with
``allow_pickle=True`` (``--allow-pickle`` on the command line). Convert them once with the command
above; the safe format (preprocessing.dataformat) loads without pickle and is what training reads by default.

In memory a dataset is MMSA-shaped: ``{split: {key: array}}`` with splits train / valid / test and
keys ``audio`` (N, La, Da), ``vision`` (N, Lv, Dv), ``audio_lengths``, ``vision_lengths``,
``regression_labels`` (N,), and text as ``text_bert`` (N, 3, L: ids, mask, segment ids) and/or
``raw_text`` (N,). Every load is validated; problems raise :class:`DataError` naming file and key.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from preprocessing.dataformat import load_safe, save_safe, write_npy
from preprocessing.encoders import cache_dir

SPLITS = ("train", "valid", "test")
MMIM_SPLITS = {"train": "train", "dev": "valid", "test": "test"}
FEATURES = (("audio", "audio_lengths"), ("vision", "vision_lengths"))
REQUIRED = ("audio", "vision", "audio_lengths", "vision_lengths", "regression_labels")


class DataError(ValueError):
    """A dataset file that cannot be used; the message names the file, split and key."""


# ---- reading -------------------------------------------------------------------------------

def load_dataset(path: str | os.PathLike, allow_pickle: bool = False) -> tuple[dict, dict]:
    """Read a dataset: a safe-format directory, or (trusted files only) an MMSA pickle / MMIM folder.

    Returns ``(data, info)``; ``data`` is not validated yet (see :func:`validate`)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    if (path / "meta.json").is_file():
        try:
            return load_safe(path)
        except (OSError, ValueError, KeyError) as err:
            raise DataError(f"{path}: unreadable safe-format dataset: {err}") from err
    is_mmim = path.is_dir() and (path / "train.pkl").is_file()
    if not (is_mmim or path.is_file()):
        raise DataError(f"{path}: neither a safe-format dataset (no meta.json) nor a pickle file")
    if not allow_pickle:
        raise DataError(f"{path}: is a pickle, which can run arbitrary code when loaded. If you trust it, pass "
                        f"--allow-pickle, or convert it once: python -m mclmcf.training.data convert {path} OUT_DIR")
    if is_mmim:
        return from_mmim({split: _unpickle(path / f"{name}.pkl") for name, split in MMIM_SPLITS.items()},
                         path), {"source": str(path), "format": "mmim"}
    obj = _unpickle(path)
    if isinstance(obj, dict):
        return obj, {"source": str(path), "format": "mmsa"}
    if isinstance(obj, list):
        raise DataError(f"{path}: a list of samples (one MMIM split); pass the folder holding "
                        "train.pkl, dev.pkl and test.pkl")
    raise DataError(f"{path}: pickle holds a {type(obj).__name__}, expected an MMSA dict {{split: {{key: array}}}}")


def _unpickle(path: Path) -> Any:
    """Trusted files only (see the module docstring)."""
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except Exception as err:  # a truncated or foreign file fails in many ways
        raise DataError(f"{path}: not a readable pickle ({type(err).__name__}: {err})") from err


def from_mmim(splits: dict[str, list], source: Path) -> dict:
    """MMIM / CMU-SDK samples ``((word_ids, visual, acoustic, words[, v_len, a_len]), label, segment)``
    -> MMSA dict. Sequences are zero-padded to the longest of the whole dataset."""
    rows: dict[str, list] = {}
    for split, samples in splits.items():
        try:
            rows[split] = [(" ".join(map(str, s[0][3])), np.asarray(s[0][1], np.float32),
                            np.asarray(s[0][2], np.float32), float(np.asarray(s[1]).reshape(-1)[0]), str(s[2]),
                            *(s[0][4:6] if len(s[0]) >= 6 else (len(s[0][1]), len(s[0][2]))))
                           for s in samples]
        except (TypeError, IndexError, ValueError) as err:
            raise DataError(f"{source}/{split}: not MMIM samples ((words, visual, acoustic, actual_words"
                            f"[, v_len, a_len]), label, segment): {err}") from err
    lv = max(len(r[1]) for rs in rows.values() for r in rs)
    la = max(len(r[2]) for rs in rows.values() for r in rs)
    data = {}
    for split, rs in rows.items():
        vision = np.zeros((len(rs), lv, rs[0][1].shape[-1]), np.float32)
        audio = np.zeros((len(rs), la, rs[0][2].shape[-1]), np.float32)
        for i, r in enumerate(rs):
            vision[i, :len(r[1])], audio[i, :len(r[2])] = r[1], r[2]
        data[split] = {"raw_text": np.array([r[0] for r in rs], dtype=object), "id": np.array([r[4] for r in rs], dtype=object),
                       "vision": vision, "audio": audio, "regression_labels": np.array([r[3] for r in rs], np.float32),
                       "vision_lengths": np.array([r[5] for r in rs], np.int64),
                       "audio_lengths": np.array([r[6] for r in rs], np.int64)}
    return data


# ---- validation and cleaning ---------------------------------------------------------------

def validate(data: dict, source: str | os.PathLike, label_range: float | None = None,
             nonfinite: str = "replace") -> dict[str, int]:
    """Check every split and key; replace (or, with nonfinite="error", reject) NaN/inf feature values in
    place. Returns the number of replaced values per ``split/key``."""
    def fail(msg: str):
        raise DataError(f"{source}: {msg}")

    if not isinstance(data, dict):
        fail(f"expected {{split: {{key: array}}}}, got {type(data).__name__}")
    dims: dict[str, int] = {}
    replaced: dict[str, int] = {}
    for split in SPLITS:
        if split not in data:
            fail(f"missing split {split!r} (has {sorted(data)})")
        d = data[split]
        missing = [k for k in REQUIRED if k not in d] + ([] if {"text_bert", "raw_text"} & set(d) else ["text_bert or raw_text"])
        if missing:
            fail(f"split {split!r}: missing key(s) {missing}")
        try:
            labels = d["regression_labels"] = np.asarray(d["regression_labels"], np.float32).reshape(-1)
        except (TypeError, ValueError) as err:
            fail(f"{split}/regression_labels: not numeric ({err})")
        n = labels.shape[0]
        if not np.isfinite(labels).all():
            fail(f"{split}/regression_labels: {int((~np.isfinite(labels)).sum())} NaN/inf label(s)")
        if label_range is not None and n and np.abs(labels).max() > label_range + 1e-4:
            fail(f"{split}/regression_labels: values in [{labels.min():.3g}, {labels.max():.3g}] outside "
                 f"[-{label_range}, {label_range}] (wrong dataset preset?)")
        for key, len_key in FEATURES:
            x = np.asarray(d[key])
            if x.dtype.kind not in "biuf" or x.ndim != 3 or x.shape[0] != n:
                fail(f"{split}/{key}: expected a numeric (N={n}, L, D) array, got {x.dtype} {x.shape}")
            if dims.setdefault(key, x.shape[2]) != x.shape[2]:
                fail(f"{split}/{key}: feature size {x.shape[2]} differs from {dims[key]} in an earlier split")
            x = d[key] = x.astype(np.float32, copy=False)
            lengths = np.asarray(d[len_key])
            if lengths.shape != (n,) or lengths.dtype.kind not in "biuf":
                fail(f"{split}/{len_key}: expected {n} lengths, got {lengths.dtype} {lengths.shape}")
            if n and (lengths.min() < 0 or lengths.max() > x.shape[1]):
                fail(f"{split}/{len_key}: lengths in [{lengths.min()}, {lengths.max()}] outside [0, {x.shape[1]}]")
            d[len_key] = lengths.astype(np.int64)
            bad = ~np.isfinite(x)
            if bad.any():
                if nonfinite == "error":
                    fail(f"{split}/{key}: {int(bad.sum())} NaN/inf value(s)")
                x[bad] = 0.0  # MMSA's convention for COVAREP's -inf
                replaced[f"{split}/{key}"] = int(bad.sum())
        if "text_bert" in d:
            tb = np.asarray(d["text_bert"])
            if tb.ndim != 3 or tb.shape[:2] != (n, 3) or tb.dtype.kind not in "biuf":
                fail(f"{split}/text_bert: expected (N={n}, 3, L) token ids/mask/segments, got {tb.dtype} {tb.shape}")
        if "raw_text" in d and len(d["raw_text"]) != n:
            fail(f"{split}/raw_text: {len(d['raw_text'])} texts for {n} labels")
    return replaced


def feature_stats(x: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std over valid time steps only (padding would bias both toward 0)."""
    valid = np.arange(x.shape[1])[None, :] < lengths[:, None]               # (N, L)
    steps = x[valid].astype(np.float64)                                     # (valid steps, D)
    if steps.size == 0:
        return np.zeros(x.shape[2], np.float32), np.ones(x.shape[2], np.float32)
    std = steps.std(0)
    return steps.mean(0).astype(np.float32), np.where(std > 1e-6, std, 1.0).astype(np.float32)


def set_standardization(model: torch.nn.Module, train: dict) -> None:
    """Training-split statistics into the model's buffers: saved with the weights, reused at inference."""
    for key, len_key, norm in (("audio", "audio_lengths", model.audio_norm), ("vision", "vision_lengths", model.vision_norm)):
        mean, std = feature_stats(train[key], train[len_key])
        norm.mean.copy_(torch.from_numpy(mean))
        norm.std.copy_(torch.from_numpy(std))


# ---- batches -------------------------------------------------------------------------------

@dataclass
class Split:
    """One split as padded arrays; tokens come from text_bert or from raw_text via the tokenizer."""
    input_ids: np.ndarray       # (N, L)
    attention_mask: np.ndarray  # (N, L)
    token_type_ids: np.ndarray  # (N, L)
    audio: np.ndarray
    audio_lengths: np.ndarray
    vision: np.ndarray
    vision_lengths: np.ndarray
    labels: np.ndarray
    weights: np.ndarray | None = None        # (N,) per-sample loss weights, mean 1 over the split
    text_vectors: np.ndarray | None = None   # (N, Dt) a frozen encoder's output, computed once (attach_text_vectors)

    def __len__(self) -> int:
        return len(self.labels)


def agreement_weights(rater_sd: np.ndarray) -> np.ndarray:
    """Loss weights from rater agreement: 1 / (1 + sd^2 / median(sd^2)), normalised to mean 1. A label the
    raters agreed on (sd -> 0) counts up to twice the median; one they split on counts less, never zero."""
    var = np.asarray(rater_sd, np.float64) ** 2
    w = 1.0 / (1.0 + var / max(float(np.median(var)), 1e-6))
    return (w / w.mean()).astype(np.float32)


def make_split(d: dict, tokenizer=None, text_source: str = "auto", max_text_len: int = 50,
               sample_weight: str = "none") -> Split:
    """text_source: "file" uses text_bert, "tokenize" runs ``tokenizer`` on raw_text, "auto" prefers the file.
    sample_weight: "none", or "agreement" (needs the dataset's per-sample ``rater_sd``)."""
    use_file = text_source == "file" or (text_source == "auto" and "text_bert" in d)
    if use_file:
        if "text_bert" not in d:
            raise DataError("text_source='file' but the dataset has no text_bert")
        ids, mask, seg = (np.asarray(d["text_bert"][:, i]).astype(np.int64) for i in range(3))
    else:
        if "raw_text" not in d or tokenizer is None:
            raise DataError("tokenizing needs raw_text in the dataset and a tokenizer")
        enc = tokenizer([str(t) for t in d["raw_text"]], padding="max_length", truncation=True,
                        max_length=max_text_len, return_tensors="np")
        ids, mask = enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)
        seg = enc.get("token_type_ids", np.zeros_like(ids)).astype(np.int64)
    weights = None
    if sample_weight == "agreement":
        if "rater_sd" not in d:
            raise DataError("--sample-weight agreement needs a per-sample rater_sd in the dataset "
                            "(preprocessing.rated_snippets writes it)")
        weights = agreement_weights(d["rater_sd"])
    elif sample_weight != "none":
        raise DataError(f"sample_weight={sample_weight!r}; choose none or agreement")
    return Split(ids, mask, seg, d["audio"], d["audio_lengths"], d["vision"], d["vision_lengths"],
                 d["regression_labels"].astype(np.float32), weights)


@torch.no_grad()
def attach_text_vectors(split: Split, model, batch_size: int = 64, progress: bool = True) -> None:
    """Run a frozen text encoder once over the split: training then reads ``split.text_vectors`` instead of
    running the encoder every epoch (the same vectors: a frozen encoder is always in eval mode). The vectors
    are kept in the cache (preprocessing.encoders.cache_dir), keyed by the encoder's weights hash, the pooling
    and the tokens, so another run on the same texts does not compute them again."""
    cached = None
    if model.config.text_encoder_sha256:    # an encoder known by its weights hash (not a random one)
        key = hashlib.sha256(f"{model.config.text_encoder_sha256}|{model.config.text_pooling}|".encode()
                             + split.input_ids.tobytes() + split.attention_mask.tobytes()).hexdigest()
        cached = cache_dir() / "text_vectors" / f"{key}.npy"
    if cached is not None and cached.is_file():
        split.text_vectors = np.load(cached)
        return
    device = next(model.parameters()).device
    order = np.argsort(split.attention_mask.sum(1))          # similar lengths together: less padding
    out = np.zeros((len(split), model.text_encoder.config.hidden_size), np.float32)
    for start in tqdm(range(0, len(split), batch_size), desc="text vectors", disable=not progress, leave=False):
        idx = order[start:start + batch_size]
        width = max(int(split.attention_mask[idx].sum(1).max()), 1)
        tokens = {k: torch.from_numpy(getattr(split, k)[idx, :width]).to(device)
                  for k in ("input_ids", "attention_mask", "token_type_ids")}
        out[idx] = model.encode_text(**tokens).float().cpu().numpy()
    split.text_vectors = out
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        write_npy(cached, out)


class IndexDataset(torch.utils.data.Dataset):
    """Items are indices; :func:`collate` slices the arrays for a whole batch at once."""

    def __init__(self, split: Split):
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> int:
        return i


def collate(split: Split, indices: list[int]) -> dict[str, torch.Tensor]:
    """A batch for ``model(**batch)``: padding trimmed to the longest text / audio / video in the batch."""
    idx = np.asarray(indices)
    la, lv = (max(int(split.audio_lengths[idx].max()), 1), max(int(split.vision_lengths[idx].max()), 1))
    batch = {"audio": torch.from_numpy(split.audio[idx, :la]), "audio_lengths": torch.from_numpy(split.audio_lengths[idx]),
             "vision": torch.from_numpy(split.vision[idx, :lv]), "vision_lengths": torch.from_numpy(split.vision_lengths[idx]),
             "labels": torch.from_numpy(split.labels[idx])}
    if split.text_vectors is not None:
        batch.update(input_ids=None, attention_mask=None, text_vector=torch.from_numpy(split.text_vectors[idx]))
    else:
        mask = split.attention_mask[idx]
        lt = max(int(mask.sum(1).max()), 1)
        batch.update(input_ids=torch.from_numpy(split.input_ids[idx, :lt]), attention_mask=torch.from_numpy(mask[:, :lt]),
                     token_type_ids=torch.from_numpy(split.token_type_ids[idx, :lt]))
    if split.weights is not None:
        batch["sample_weight"] = torch.from_numpy(split.weights[idx])
    return batch


def batch_loader(split: Split, batches: list[list[int]], num_workers: int = 0) -> torch.utils.data.DataLoader:
    """Collated batches of ``split``, one per list of indices, in the given order."""
    # own generator: creating an iterator must not consume the global RNG (resume would drift)
    return torch.utils.data.DataLoader(IndexDataset(split), batch_sampler=batches, collate_fn=partial(collate, split),
                                       num_workers=num_workers, generator=torch.Generator())


def to_device(batch: dict, device) -> dict:
    """A collated batch on ``device`` (None stands for token inputs a cached text vector replaces)."""
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def _storable(v: Any) -> bool:
    if isinstance(v, np.ndarray) and v.dtype.kind in "biuf":
        return True
    return np.asarray(v, dtype=object).ndim == 1


# ---- command line ----------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m mclmcf.training.data", description=__doc__.split("\n\n")[0],
                                epilog="Pickles run code when loaded: convert only files you trust.")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert", help="trusted MMSA pickle or MMIM folder (train/dev/test.pkl) -> safe format")
    c.add_argument("src")
    c.add_argument("out_dir")
    i = sub.add_parser("info", help="describe a dataset")
    i.add_argument("path")
    i.add_argument("--allow-pickle", action="store_true", help="read a pickle (trusted files only)")
    args = p.parse_args(argv)
    if args.cmd == "convert":
        data, info = load_dataset(args.src, allow_pickle=True)
        replaced = validate(data, args.src)
        # numeric arrays and 1-D string lists (raw_text, id, annotations) carry over; anything else is dropped
        keep = {s: {k: v for k, v in data[s].items() if _storable(v)} for s in SPLITS}
        save_safe(keep, args.out_dir, info={**info, "converted_from": str(args.src), "nonfinite_replaced": replaced})
        print(f"wrote {args.out_dir} ({', '.join(f'{s}: {len(keep[s][REQUIRED[-1]])}' for s in SPLITS)}); "
              f"non-finite values replaced: {replaced or 'none'}")
    else:
        data, info = load_dataset(args.path, allow_pickle=args.allow_pickle)
        replaced = validate(data, args.path)
        if info.get("synthetic"):
            print("SYNTHETIC dataset (planted signal), not real data")
        for s in SPLITS:
            y = data[s]["regression_labels"]
            print(f"{s}: n={len(y)} audio {data[s]['audio'].shape} vision {data[s]['vision'].shape} "
                  f"labels [{y.min():.2f}, {y.max():.2f}] mean {y.mean():.3f}")
        print(f"non-finite values (replaced by 0 on load): {replaced or 'none'}; info: {info}")


if __name__ == "__main__":
    main()
