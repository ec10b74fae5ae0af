"""The one path every transcript score takes: the page's score and its ablations, the timeline, live mode and
the word colours.

A text is cut into consecutive encoder windows of at most ``max_length`` tokens (preprocessing.text.tokenize_windows;
serving passes the weights' ``config.max_text_len``). Each window goes through the text encoder once, packed end to
end with the other windows of the call into rows of PACKED_TOKENS tokens, each window attending only to itself and
counting its positions from its own start (a block-diagonal mask), so that the text vector is the one a window
padded to ``max_length`` gives, to float rounding, and no padding goes through the encoder but the rows' tails. The
windows' text vectors h_t are then scored with a clip's acoustic and visual vectors by the fusion and the head
(``MCLMCF.score_from_vectors``), which costs far less than the encoder, so one h_t serves several clips (the
voice and face ablations); a text's score is its windows' scores weighted by preprocessing.text.window_weights.
A text given several times is encoded once, and the empty transcript's vector (the text ablation of every request)
is kept per loaded model.

API (``model``: an MCLMCF in eval mode; ``tokenizer``: its tokenizer; ``tokenizer_lock``: a lock around the
tokenizer, which is not thread-safe):

    vectors = text_vectors(model, tokenizer, texts, max_length, tokenizer_lock)    # TextVectors, one batched pass
    h_av = audio_visual_vectors(model, audio, vision)                              # one clip: {"a", "v"} (1, 64)
    scores = score_texts(model, tokenizer, texts, h_av, max_length, tokenizer_lock)  # (len(texts),)
    scores = score_items(model, tokenizer, [(text, audio, vision), ...], ...)      # each text with its own clip
    vectors.combine(score_vectors(model, vectors.vectors, h_av))                   # the same as score_texts
    units = word_tokens(tokenizer, text, spans, tokenizer_lock)           # the words' token ids, or None
    scores = score_word_subsets(model, units, masks, h_av, max_length)    # (len(masks),)

The word colours score hundreds of transcripts that keep some of the words (``score_word_subsets``). With a
tokenizer that cuts at whitespace and punctuation (WordPiece: a word's tokens do not depend on its neighbours),
a subset's windows are built from the transcript's own token ids, no tokenizer call per subset; ``word_tokens``
checks that property on the transcript itself and returns None where it does not hold (then the subsets are
joined with spaces and tokenized, ``score_texts``).
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from dataclasses import dataclass

import numpy as np
import torch

from preprocessing.dataformat import pad_sequences
from preprocessing.text import DEFAULT_MAX_LENGTH, tokenize_windows, window_weights

from mclmcf.model import MCLMCF

# tokens per packed row of the encoder's batch (the windows of many texts end to end): a row's attention costs its
# width squared, the masked-out part included, and the word colours' windows are mostly under 10 tokens
PACKED_TOKENS = 64

_empty_vectors: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # model -> {max_length: (1, Dt)}
_empty_lock = threading.Lock()


@dataclass
class TextVectors:
    """Texts as the score reads them: one text vector per encoder window, texts' windows in order."""
    vectors: torch.Tensor      # (W, Dt)
    owner: np.ndarray          # (W,) the index of the text each window belongs to
    weights: np.ndarray        # (W,) each window's share of its text's score (window_weights; a text's sum to 1)
    states: list | None = None  # where asked (keep_states): each window's last-layer token states (tokens, Dt),
                                # None for the empty transcript's cached vector

    @property
    def n_texts(self) -> int:
        return int(self.owner.max()) + 1 if len(self.owner) else 0

    def windows(self, i: int) -> int:
        """How many encoder windows text ``i`` was cut into."""
        return int((self.owner == i).sum())

    def combine(self, per_window: np.ndarray) -> np.ndarray:
        """Per-window scores (W,) -> per-text scores (texts,): each text's window-weighted mean."""
        return np.bincount(self.owner, weights=self.weights * per_window, minlength=self.n_texts)


@dataclass
class WordTokens:
    """A transcript's content token ids, word by word (the words being character spans, explain.word_spans)."""
    ids: list[np.ndarray]      # per word: its tokens' ids, in order
    cls_id: int
    sep_id: int


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _encode_windows(model: MCLMCF, rows: list[tuple[np.ndarray, np.ndarray]]) -> torch.Tensor:
    """Text vectors (N, Dt) of unpadded windows (ids, token types), in the given order (``_encode_window_states``)."""
    return _encode_window_states(model, rows)[0]


def _encode_window_states(model: MCLMCF, rows: list[tuple[np.ndarray, np.ndarray]]
                          ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Text vectors (N, Dt) of unpadded windows (ids, token types), in the given order, and each window's last-layer
    token states (its tokens, Dt). The windows are packed end to end into rows of up to PACKED_TOKENS tokens (a
    longer window has a row of its own), each window attending only to itself (a block-diagonal mask) with its own
    position ids, so no padding goes through the encoder but the rows' tails; each window is then pooled over its
    own tokens."""
    encoder = model.text_encoder
    dev = _device(model)
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i][0]))
    packed: list[list[int]] = []                  # windows per row, first fit by decreasing length
    room: list[int] = []
    for i in order:
        n = len(rows[i][0])
        row = next((r for r, free in enumerate(room) if free >= n), None)
        if row is None:
            packed.append([])
            room.append(max(PACKED_TOKENS, n))
            row = len(packed) - 1
        packed[row].append(i)
        room[row] -= n
    width = max(sum(len(rows[i][0]) for i in row) for row in packed)
    ids = np.zeros((len(packed), width), np.int64)
    types, positions = np.zeros_like(ids), np.zeros_like(ids)
    segment = np.full((len(packed), width), -1)
    first_position = getattr(encoder.embeddings, "padding_idx", -1) + 1   # MPNet/RoBERTa count from 2
    where = {}
    for r, row in enumerate(packed):
        start = 0
        for i in row:
            n = len(rows[i][0])
            ids[r, start:start + n], types[r, start:start + n] = rows[i]
            positions[r, start:start + n] = first_position + np.arange(n)
            segment[r, start:start + n] = i
            where[i] = (r, start, n)
            start += n
    same = torch.as_tensor((segment[:, :, None] == segment[:, None, :]) & (segment[:, :, None] >= 0), device=dev)
    # the encoder dtype's lowest value: float32's is -inf in half precision, where a row's padded tail, which attends
    # to nothing, would turn NaN and spread through the next layer's attention (0 x NaN)
    mask = torch.where(same, 0.0, torch.finfo(encoder.dtype).min)[:, None].to(encoder.dtype)  # (rows, 1, width, width)
    kwargs = {"token_type_ids": torch.as_tensor(types, device=dev)} if model._takes_token_types else {}
    states = encoder(input_ids=torch.as_tensor(ids, device=dev), attention_mask=mask,
                     position_ids=torch.as_tensor(positions, device=dev), **kwargs).last_hidden_state
    per_window = [states[r, start:start + n] for r, start, n in (where[i] for i in range(len(rows)))]
    return torch.stack([model.pool_text(s[None], torch.ones(1, len(s), device=dev))[0] for s in per_window]), per_window


@torch.no_grad()
def empty_text_vector(model: MCLMCF, tokenizer, max_length: int = DEFAULT_MAX_LENGTH,
                      tokenizer_lock=contextlib.nullcontext()) -> torch.Tensor:
    """The empty transcript's text vector (1, Dt), computed once per loaded model (its weights do not change
    while it serves) and window length."""
    with _empty_lock:
        cached = _empty_vectors.setdefault(model, {})
        if max_length not in cached:
            with tokenizer_lock:
                enc = tokenize_windows("", tokenizer, max_length)
            n = int(enc["attention_mask"][0].sum())
            cached[max_length] = _encode_windows(model, [(enc["input_ids"][0, :n], enc["token_type_ids"][0, :n])])
        return cached[max_length]


@torch.no_grad()
def text_vectors(model: MCLMCF, tokenizer, texts: list[str], max_length: int = DEFAULT_MAX_LENGTH,
                 tokenizer_lock=contextlib.nullcontext(), keep_states: bool = False) -> TextVectors:
    """Every text's windows' vectors in one batched pass of the encoder (windows packed end to end into rows,
    no padding between them): repeated texts encoded once, the empty one from the cache. ``keep_states``: also the
    windows' last-layer token states (the word colours' token_states reads them)."""
    unique = list(dict.fromkeys(texts))
    windows: dict[str, tuple[list, np.ndarray]] = {}      # text -> ([(ids, types) per window], window weights)
    with tokenizer_lock:
        for text in unique:
            if text:
                enc = tokenize_windows(text, tokenizer, max_length)
                lengths = enc["attention_mask"].sum(1)
                windows[text] = ([(ids[:n], types[:n]) for ids, types, n in
                                  zip(enc["input_ids"], enc["token_type_ids"], lengths)],
                                 window_weights(enc["attention_mask"]))
    rows = [row for text in unique if text for row in windows[text][0]]
    encoded, states = _encode_window_states(model, rows) if rows else (None, [])
    empty = empty_text_vector(model, tokenizer, max_length, tokenizer_lock) if "" in unique else None
    per_text, start = {}, 0            # text -> (vectors, window weights, states)
    for text in unique:
        if text:
            n = len(windows[text][0])
            per_text[text] = (encoded[start:start + n], windows[text][1], states[start:start + n])
            start += n
        else:
            per_text[text] = (empty, np.ones(1), [None])
    return TextVectors(torch.cat([per_text[t][0] for t in texts]),
                       np.concatenate([np.full(len(per_text[t][1]), i) for i, t in enumerate(texts)]),
                       np.concatenate([per_text[t][1] for t in texts]),
                       [s for t in texts for s in per_text[t][2]] if keep_states else None)


@torch.no_grad()
def audio_visual_batch(model: MCLMCF, clips: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    """The acoustic and visual vectors {"a", "v"} (N, 64) of N clips' (frames, features) arrays, in one batch."""
    dev = _device(model)
    audio, la = pad_sequences([a for a, _ in clips])
    vision, lv = pad_sequences([v for _, v in clips])
    return model.encode_audio_visual(torch.as_tensor(audio, dtype=torch.float32, device=dev), torch.as_tensor(la, device=dev),
                                     torch.as_tensor(vision, dtype=torch.float32, device=dev), torch.as_tensor(lv, device=dev))


def audio_visual_vectors(model: MCLMCF, audio: np.ndarray, vision: np.ndarray) -> dict:
    """One clip's acoustic and visual vectors {"a", "v"} (1, 64)."""
    return audio_visual_batch(model, [(audio, vision)])


@torch.no_grad()
def score_vectors(model: MCLMCF, h_t: torch.Tensor, h_av: dict) -> np.ndarray:
    """Scores (W,) of text vectors (W, Dt) with acoustic and visual vectors {"a", "v"}, each (W, 64) or one
    clip's (1, 64) for every row."""
    h = {"t": h_t, **{m: x.expand(len(h_t), -1) for m, x in h_av.items()}}
    return model.score_from_vectors(h).float().cpu().numpy().astype(np.float64)


def score_texts(model: MCLMCF, tokenizer, texts: list[str], h_av: dict, max_length: int = DEFAULT_MAX_LENGTH,
                tokenizer_lock=contextlib.nullcontext()) -> np.ndarray:
    """Each text's score (len(texts),) with one clip's vectors ``h_av`` (audio_visual_vectors)."""
    vectors = text_vectors(model, tokenizer, texts, max_length, tokenizer_lock)
    return vectors.combine(score_vectors(model, vectors.vectors, h_av))


def score_items(model: MCLMCF, tokenizer, items: list[tuple[str, np.ndarray, np.ndarray]],
                max_length: int = DEFAULT_MAX_LENGTH, tokenizer_lock=contextlib.nullcontext()) -> np.ndarray:
    """Scores (N,) of (text, audio frames, face frames) items, each text with its own clip (the timeline, live)."""
    vectors = text_vectors(model, tokenizer, [text for text, _, _ in items], max_length, tokenizer_lock)
    h_av = audio_visual_batch(model, [(audio, vision) for _, audio, vision in items])
    return vectors.combine(score_vectors(model, vectors.vectors, {m: x[vectors.owner] for m, x in h_av.items()}))


def word_tokens(tokenizer, text: str, spans: list[tuple[int, int]],
                tokenizer_lock=contextlib.nullcontext()) -> WordTokens | None:
    """The token ids of each word (``spans``, character spans covering the text's non-space characters), or None
    if the tokenizer's cut depends on the neighbours: the words' ids in order must equal both the text's and the
    words joined by spaces (the text every subset of the words is scored as)."""
    words = [text[a:b] for a, b in spans]
    with tokenizer_lock:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        joined = tokenizer(" ".join(words), add_special_tokens=False, verbose=False)["input_ids"]
    ids, starts = np.asarray(enc["input_ids"], np.int64), np.array([a for a, _ in enc["offset_mapping"]])
    owner = np.searchsorted(np.array([a for a, _ in spans]), starts, side="right") - 1
    per_word = [ids[owner == i] for i in range(len(spans))]
    ordered = np.concatenate(per_word) if per_word else np.zeros(0, np.int64)
    if not (np.array_equal(ordered, ids) and np.array_equal(ordered, joined)) or (owner < 0).any():
        return None
    return WordTokens(per_word, tokenizer.cls_token_id, tokenizer.sep_token_id)


@torch.no_grad()
def score_word_subsets(model: MCLMCF, units: WordTokens, masks: list[np.ndarray], h_av: dict,
                       max_length: int = DEFAULT_MAX_LENGTH) -> np.ndarray:
    """Scores (len(masks),) of the transcripts that keep the words where a boolean mask (words,) is True, each
    cut into windows as tokenize_windows cuts the kept words joined by spaces (the empty one: [CLS] [SEP]), in one
    batched encoder pass (repeated masks encoded once)."""
    keys = [m.tobytes() for m in masks]
    first = {k: m for k, m in zip(keys, masks)}
    rows, owner, weights = [], [], []
    room = max_length - 2
    for i, mask in enumerate(first.values()):
        content = np.concatenate([units.ids[j] for j in np.flatnonzero(mask)] or [np.zeros(0, np.int64)])
        pieces = [content[s:s + room] for s in range(0, len(content), room)] or [content]
        rows += [(np.concatenate([[units.cls_id], piece, [units.sep_id]]), np.zeros(len(piece) + 2, np.int64))
                 for piece in pieces]
        owner += [i] * len(pieces)
        weights += [len(piece) / len(content) if len(content) else 1.0 for piece in pieces]
    per_window = TextVectors(_encode_windows(model, rows), np.array(owner), np.array(weights))
    scores = per_window.combine(score_vectors(model, per_window.vectors, h_av))
    index = {key: i for i, key in enumerate(first)}
    return scores[[index[k] for k in keys]]
