"""Why this score: word attributions.

Every method explains F, the model's full multimodal score with the clip's voice and face held fixed, as
a function of the transcript, and returns the words' attributions in score units with F(x) and the
baseline score F(x'). The Integrated Gradients methods (Sundararajan et al. 2017) give token i

    IG_i = (x_i - x'_i) . integral_0^1 dF(x' + a (x - x')) / dx_i da

(captum.attr, the integral by quadrature) and so add up: sum_i IG_i = F(x) - F(x') up to the quadrature
error (``WordAttributions.completeness_error``). They differ in where x lives and what x' is:

  token_states   x: the encoder's last-layer token states; F pools them (the masked mean) and runs the
                 fusion and head. Baseline: the pooled text vector of an empty transcript, every token state
                 replaced by it, so their mean is that vector and F(x') is the score of the clip with no
                 words. Only the pooling and the small head lie on the path: one encoder forward, then a
                 batched head pass. The [CLS]/[SEP] states change with the words too (they summarise the
                 window), and their share is spread evenly over the window's word pieces. Mean pooling only:
                 with [CLS] pooling the split over tokens is not defined, and the method refuses.
  layer          x: the output of the encoder's middle layer (6 of 12), through captum's
                 LayerIntegratedGradients; the layers above, the pooling and the head lie on the path.
                 Baseline: that layer's states for the input of ``embedding``'s baseline, the [PAD]-blanked
                 sentence. [CLS]/[SEP] shares spread as in token_states.
  embedding      x: the input word embeddings (position and token-type embeddings are added inside the
                 encoder). Baseline: every transcript token's word embedding replaced by [PAD]'s; [CLS],
                 [SEP] and the attention mask kept, "a sentence of this length with no words in it". The
                 whole encoder lies on the path, which is steep in places, so it needs many points.
  leave_one_out  a reference, not a decomposition: word i gets F(transcript) - F(transcript without word i),
                 exactly; the baseline is the empty transcript's score, and the words need not add up to
                 the difference.

The default (``default_method``) for mean-pooled weights is token_states, chosen by the rule written
beforehand in benchmarks/explain_choice_rule.md from the comparison in benchmarks/bench_explain.py
(benchmarks/results/explain_methods.json: completeness, cost, and faithfulness by deletion): the only one
that adds up within the page's 0.05. [CLS]-pooled weights keep ``embedding``.
Word pieces are summed into the transcript's whitespace-separated words (punctuation stays with its word)
through the tokenizer's character offsets. Long transcripts are scored in encoder windows, the score being
the windows' weighted mean (preprocessing.text.window_weights); each window is attributed on its own and
weighted the same way, so the words' sum still equals score - baseline score of the whole transcript.

The attributions explain this model's score, not what the speaker felt or meant.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

import numpy as np
import torch
from captum.attr import IntegratedGradients, LayerIntegratedGradients

from preprocessing.text import DEFAULT_MAX_LENGTH, tokenize_windows, window_weights

from mclmcf.model import MCLMCF

METHODS = ("token_states", "layer", "embedding", "leave_one_out")
# quadrature points of the IG methods, and their rules: completeness error and cost in benchmarks/bench_explain.py
STEPS = {"token_states": 32, "layer": 32, "embedding": 32}
RULES = {"token_states": "gausslegendre", "layer": "gausslegendre", "embedding": "riemann_middle"}
MEAN_POOLED_DEFAULT = "token_states"       # benchmarks/explain_choice_rule.md applied to explain_methods.json
SCORE_BATCH = 64                            # encoder windows per forward when scoring many texts
# what each method's baseline score is the score of, in a visitor's words (the page says it beside the words)
BASELINES = {"token_states": "the same clip with an empty transcript",
             "layer": "the same clip with every word replaced by the [PAD] token",
             "embedding": "the same clip with every word replaced by the [PAD] token",
             "leave_one_out": "the same clip with an empty transcript"}


def default_method(model: MCLMCF) -> str:
    return MEAN_POOLED_DEFAULT if model.config.text_pooling == "mean" else "embedding"


@dataclass
class WordAttribution:
    word: str
    attribution: float                 # score units: how much this word moved the score from the baseline's


@dataclass
class WordAttributions:
    words: list[WordAttribution]       # the transcript's words, in order
    score: float                       # F(x): the model's score for the transcript
    baseline_score: float              # F(x'): the method's baseline (module docstring, BASELINES)
    method: str | None = None          # one of METHODS

    @property
    def completeness_error(self) -> float:
        return self.score - self.baseline_score - sum(w.attribution for w in self.words)


@dataclass
class Windows:
    """A transcript as the score reads it: encoder windows (tokenize_windows), padding beyond the longest
    window dropped (the mask keeps it out of every token's state)."""
    ids: torch.Tensor          # (windows, width) token ids
    mask: torch.Tensor         # (windows, width)
    types: torch.Tensor        # (windows, width)
    spans: np.ndarray          # (windows, width, 2) character offsets into the transcript
    content: np.ndarray        # (windows, width) transcript tokens, not [CLS]/[SEP]/[PAD]
    weights: np.ndarray        # (windows,) each window's share of the score (window_weights)
    blank_id: int              # [PAD]: the embedding baseline's token


def tokenized(model: MCLMCF, tokenizer, text: str, max_length: int = DEFAULT_MAX_LENGTH,
              tokenizer_lock=contextlib.nullcontext()) -> Windows:
    dev = next(model.parameters()).device
    with tokenizer_lock:
        enc = tokenize_windows(text, tokenizer, max_length, offsets=True)
    width = max(int(enc["attention_mask"].sum(1).max()), 2)
    ids, mask, types = (torch.as_tensor(enc[k][:, :width], device=dev)
                        for k in ("input_ids", "attention_mask", "token_type_ids"))
    spans = enc["offset_mapping"][:, :width]
    return Windows(ids, mask, types, spans, spans[..., 1] > spans[..., 0], window_weights(enc["attention_mask"]),
                   tokenizer.pad_token_id)


@torch.no_grad()
def audio_visual_vectors(model: MCLMCF, audio: np.ndarray, vision: np.ndarray) -> dict:
    """The clip's acoustic and visual vectors {"a", "v"} (1, 64) from its (frames, features) arrays."""
    dev = next(model.parameters()).device
    return model.encode_audio_visual(torch.as_tensor(audio[None], device=dev), torch.tensor([len(audio)], device=dev),
                                     torch.as_tensor(vision[None], device=dev), torch.tensor([len(vision)], device=dev))


def _with_av(text_vector: torch.Tensor, h_av: dict) -> dict:
    return {"t": text_vector, **{m: x.expand(len(text_vector), -1) for m, x in h_av.items()}}


@torch.no_grad()
def score_texts(model: MCLMCF, tokenizer, texts: list[str], h_av: dict, max_length: int = DEFAULT_MAX_LENGTH,
                tokenizer_lock=contextlib.nullcontext()) -> np.ndarray:
    """The model's score of each text with the clip's vectors ``h_av``, its windows weighted as the score weights
    them: (len(texts),)."""
    windows = [tokenized(model, tokenizer, t, max_length, tokenizer_lock) for t in texts]
    per_window = []
    for w in windows:                                  # batch the windows of many texts, SCORE_BATCH at a time
        per_window.extend(zip(w.ids, w.mask, w.types))
    scores = []
    for i in range(0, len(per_window), SCORE_BATCH):
        chunk = per_window[i:i + SCORE_BATCH]
        width = max(len(ids) for ids, _, _ in chunk)
        ids, mask, types = (torch.stack([torch.nn.functional.pad(row[k], (0, width - len(row[k]))) for row in chunk])
                            for k in range(3))
        scores.append(model.score_from_vectors(_with_av(model.encode_text(mask, ids, types), h_av)))
    scores = torch.cat(scores).float().cpu().numpy()
    ends = np.cumsum([len(w.ids) for w in windows])
    return np.array([float(w.weights @ scores[end - len(w.ids):end]) for w, end in zip(windows, ends)])


# ---- the methods: (model, windows, the empty transcript's windows, h_av, steps) -> per token, per window -------

def _spread_special(values: np.ndarray, win: Windows) -> np.ndarray:
    """Give each window's [CLS]/[SEP] attributions to its word pieces, evenly (module docstring)."""
    special = (win.mask.cpu().numpy() > 0) & ~win.content
    n_content = np.maximum(win.content.sum(1, keepdims=True), 1)
    return np.where(win.content, values + (values * special).sum(1, keepdims=True) / n_content, 0.0)


def _ends(f, x: torch.Tensor, baseline: torch.Tensor, *args) -> tuple[np.ndarray, np.ndarray]:
    """F(x) and F(x') per window, in one batch."""
    with torch.no_grad():
        both = f(torch.cat([x, baseline]), *(torch.cat([a, a]) for a in args)).float().cpu().numpy()
    return both[:len(x)], both[len(x):]


def _token_states(model: MCLMCF, win: Windows, empty: Windows, h_av: dict, steps: int):
    if model.config.text_pooling != "mean":
        raise ValueError("token_states attribution splits a mean-pooled text vector over its tokens; these weights "
                         f"pool with {model.config.text_pooling!r}: use method='embedding'")
    width = win.ids.shape[1]
    ids, mask, types = (torch.cat([a, torch.nn.functional.pad(b, (0, width - b.shape[1]))])
                        for a, b in ((win.ids, empty.ids), (win.mask, empty.mask), (win.types, empty.types)))
    with torch.no_grad():                      # the windows and the empty transcript in one forward
        states = model.text_token_states(mask, ids, types)                                  # (W + 1, width, Dt)
        states, nothing = states[:-1], model.pool_text(states[-1:], mask[-1:])              # (W, width, Dt), (1, Dt)
    baseline = nothing[:, None].expand_as(states).contiguous()

    def f(s, mask):
        return model.score_from_vectors(_with_av(model.pool_text(s, mask), h_av))

    attr = IntegratedGradients(f).attribute(states, baselines=baseline, additional_forward_args=(win.mask,),
                                            n_steps=steps, method=RULES["token_states"])
    return attr.sum(-1).float().cpu().numpy(), *_ends(f, states, baseline, win.mask)


def _blanked(model: MCLMCF, win: Windows) -> tuple[torch.Tensor, torch.Tensor]:
    """The word embeddings x and the baseline x' ([PAD] for every transcript token)."""
    embed = model.text_encoder.get_input_embeddings()
    with torch.no_grad():
        words = embed(win.ids)
        content = torch.as_tensor(win.content, device=words.device)[..., None]
        return words, torch.where(content, embed.weight[win.blank_id], words)


def _embedding_score(model: MCLMCF, h_av: dict):
    def f(embeds, mask, types):
        return model.score_from_vectors(_with_av(model.encode_text(mask, token_type_ids=types, inputs_embeds=embeds),
                                                 h_av))
    return f


def _layer(model: MCLMCF, win: Windows, empty: Windows, h_av: dict, steps: int):
    x, blank = _blanked(model, win)
    f = _embedding_score(model, h_av)
    layers = model.text_encoder.encoder.layer
    attr = LayerIntegratedGradients(f, layers[len(layers) // 2 - 1]).attribute(
        x, baselines=blank, additional_forward_args=(win.mask, win.types), n_steps=steps, method=RULES["layer"])
    attr = attr[0] if isinstance(attr, (tuple, list)) else attr               # layers that return a tuple
    return attr.sum(-1).float().cpu().numpy(), *_ends(f, x, blank, win.mask, win.types)


def _embedding(model: MCLMCF, win: Windows, empty: Windows, h_av: dict, steps: int):
    x, blank = _blanked(model, win)
    f = _embedding_score(model, h_av)
    attr = IntegratedGradients(f).attribute(x, baselines=blank, additional_forward_args=(win.mask, win.types),
                                            n_steps=steps, method=RULES["embedding"])
    return attr.sum(-1).float().cpu().numpy(), *_ends(f, x, blank, win.mask, win.types)


TOKEN_METHODS = {"token_states": _token_states, "layer": _layer, "embedding": _embedding}


def _to_words(text: str, win: Windows, token_values: np.ndarray) -> list[WordAttribution]:
    """Per-token values of each window -> the transcript's words, each window weighted as the score weights it."""
    words = [(m.start(), m.group()) for m in re.finditer(r"\S+", text)]
    totals = np.zeros(len(words))
    starts = np.array([s for s, _ in words])
    owner = np.searchsorted(starts, win.spans[..., 0][win.content], side="right") - 1
    np.add.at(totals, owner, (win.weights[:, None] * token_values)[win.content])
    return [WordAttribution(word, float(a)) for (_, word), a in zip(words, totals)]


def attribute_words(model: MCLMCF, tokenizer, text: str, audio: np.ndarray, vision: np.ndarray,
                    method: str | None = None, steps: int | None = None, max_length: int = DEFAULT_MAX_LENGTH,
                    tokenizer_lock=contextlib.nullcontext()) -> WordAttributions:
    """The score over the transcript's words by ``method`` (one of METHODS; default: ``default_method``),
    ``steps`` quadrature points for the IG methods (default STEPS[method]). ``audio`` and ``vision``: the
    clip's (frames, features) arrays, held fixed."""
    method = method or default_method(model)
    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; one of {METHODS}")
    h_av = audio_visual_vectors(model, audio, vision)
    if method == "leave_one_out":
        words = text.split()
        without = [" ".join(words[:i] + words[i + 1:]) for i in range(len(words))]
        score, nothing, *rest = score_texts(model, tokenizer, [text, "", *without], h_av, max_length, tokenizer_lock)
        return WordAttributions([WordAttribution(w, float(score - s)) for w, s in zip(words, rest)],
                                float(score), float(nothing), method)
    win = tokenized(model, tokenizer, text, max_length, tokenizer_lock)
    empty = tokenized(model, tokenizer, "", max_length, tokenizer_lock)
    values, scores, baselines = TOKEN_METHODS[method](model, win, empty, h_av, steps or STEPS[method])
    return WordAttributions(_to_words(text, win, _spread_special(values, win)), float(win.weights @ scores),
                            float(win.weights @ baselines), method)
