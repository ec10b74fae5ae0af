"""Tokenisation for the checkpoint's text encoder (BERT input).

Names resolve in preprocessing.encoders, as the model's text encoder does, so the extractor and the
checkpoint always agree on the tokenizer.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .encoders import load_tokenizer

DEFAULT_MAX_LENGTH = 50   # MMSA's text_bert length for MOSI / MOSEI


def tokenize(texts: str | Sequence[str], tokenizer, max_length: int = DEFAULT_MAX_LENGTH) -> dict[str, np.ndarray]:
    """Texts -> {"input_ids", "attention_mask", "token_type_ids"}, each (N, max_length) int64.
    ``tokenizer`` is a tokenizer object or a name / directory for :func:`load_tokenizer`."""
    tok = load_tokenizer(tokenizer) if isinstance(tokenizer, str) else tokenizer
    texts = [texts] if isinstance(texts, str) else list(texts)
    enc = tok(texts, padding="max_length", truncation=True, max_length=max_length,
              return_token_type_ids=True, return_attention_mask=True, return_tensors="np")
    return {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}


def text_bert(texts: str | Sequence[str], tokenizer, max_length: int = DEFAULT_MAX_LENGTH) -> np.ndarray:
    """MMSA's ``text_bert`` layout: (N, 3, L) int64 stacking ids, mask, segment ids."""
    enc = tokenize(texts, tokenizer, max_length)
    return np.stack([enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]], axis=1)


def tokenize_windows(text: str, tokenizer, max_length: int = DEFAULT_MAX_LENGTH,
                     offsets: bool = False) -> dict[str, np.ndarray]:
    """One text -> consecutive, non-overlapping windows of at most ``max_length`` tokens, each a full
    encoder input ([CLS] ... [SEP]), padded to the longest window ((W, width) each, width <= max_length);
    a text that fits (or an empty one) is one window. Windows are cut at token boundaries. ``offsets``:
    also "offset_mapping" (W, width, 2), each token's character span in ``text`` ((0, 0) for special
    tokens and padding)."""
    tok = load_tokenizer(tokenizer) if isinstance(tokenizer, str) else tokenizer
    enc = tok([text], padding="longest", truncation=True, max_length=max_length, return_overflowing_tokens=True,
              stride=0, return_token_type_ids=True, return_attention_mask=True, return_offsets_mapping=offsets,
              return_tensors="np")
    keys = ("input_ids", "attention_mask", "token_type_ids") + (("offset_mapping",) if offsets else ())
    return {k: enc[k].astype(np.int64) for k in keys}


def count_windows(text: str, tokenizer, max_length: int = DEFAULT_MAX_LENGTH) -> int:
    """How many windows :func:`tokenize_windows` cuts ``text`` into, from its token count alone (no padded
    arrays: the bound on a request's encoder work is checked with it before any)."""
    tok = load_tokenizer(tokenizer) if isinstance(tokenizer, str) else tokenizer
    n_tokens = len(tok(text, add_special_tokens=False, verbose=False)["input_ids"])   # verbose: no "too long" warning
    return max(1, -(-n_tokens // (max_length - tok.num_special_tokens_to_add(pair=False))))


def window_weights(attention_mask: np.ndarray) -> np.ndarray:
    """How much each window of :func:`tokenize_windows` counts in the text's score: its share of the content
    tokens ([CLS] and [SEP] left out; an empty window counts as one token). (W, L) mask -> (W,) summing to 1."""
    n_tokens = np.maximum(np.asarray(attention_mask).sum(1) - 2, 1).astype(np.float64)
    return n_tokens / n_tokens.sum()
