"""Why this score: the model's score over the transcript's words.

Every method explains F, the model's full multimodal score with the clip's voice and face held fixed, as a
function of the transcript, and returns each word's share in score units with F(x) and the baseline score
F(x'), the score of the same clip with an empty transcript (for ``embedding``: with every word blanked).

Words are the units the page shows (``word_spans``): a run of letters and digits, with inner apostrophes and
hyphens ("don't", "self-indulgent"), or a run of punctuation, which is its own unit, never part of the word
it touches. A word's sub-word tokens are summed into it through the tokenizer's character offsets.

  hierarchical   Shapley values down a binary split of the transcript, each span's two parts scored on their
                 own, each cut where the two words either side of it interact least (mclmcf.serving.word_removal):
                 the words add up exactly. About 2.5n mostly one- or two-word transcripts in two encoder calls.
  shapley        Shapley values of the words (Shapley 1953) for the game "score of the transcript holding only
                 these words, in order": a word's mean marginal contribution over random orders of adding
                 the words to the empty transcript. Sampled with ``steps`` antithetic pairs of permutations
                 (each order and its reverse), one masked transcript per prefix, all scored in batches. Each
                 permutation's contributions telescope to F(x) - F(x'), so the words add up exactly.
  propagation    gradient x input at the word embeddings through the encoder with the attention
                 probabilities, the LayerNorm scale and the GELU gate held constant in the backward pass
                 (Ali et al., ICML 2022; Achtibat et al., ICML 2024), started from the exact split at the
                 pooled text vector: the head's path-averaged gradient g (Integrated Gradients from the empty
                 transcript's pooled vector p0 to the sentence's p, Gauss-Legendre) gives F(x) - F(x') =
                 g . (p - p0), and each word gets x_i . d(g . p)/dx_i. What the biases, the position
                 embeddings and [CLS]/[SEP] carry goes to no word: ``remainder``. One forward and one backward
                 (MPNet encoders only). Written here without lxt; lxt's README says LRP is a patented technology
                 free of charge only for personal and scientific use (its code is BSD-3: the copyright licence
                 grants no patent right), and writing the rule ourselves does not change that, so a commercial
                 user of this MIT project could need a patent licence for this method: it is never the default.
  token_states   the same g . (p - p0) split over the last-layer token states: token t gets g . (s_t - p0) / n
                 (mean pooling), [CLS]/[SEP] shared evenly over the word pieces. Adds up, but every last-layer
                 state carries the whole sentence, so the shares come out nearly even (issue 38).
  embedding      Integrated Gradients at the input word embeddings (captum), baseline every transcript token
                 replaced by [PAD]; steps doubled from STEPS["embedding"] until captum's convergence delta
                 is <= CONVERGED or the steps reach EMBEDDING_MAX_STEPS (``remainder`` shows what is left).
  leave_one_out  a reference, not a decomposition: word i gets F(transcript) - F(transcript without word i).

The default (``default_method``) for mean-pooled weights is MEAN_POOLED_DEFAULT, chosen by the rule written
beforehand in benchmarks/explain_choice_rule.md from benchmarks/bench_explain.py
(benchmarks/results/explain_methods.json); [CLS]-pooled weights keep ``embedding``. Long transcripts are scored
in encoder windows, the score being the windows' weighted mean (preprocessing.text.window_weights): the
word-removal methods (hierarchical, shapley, leave_one_out) score their transcripts with mclmcf.serving.scoring,
the page's own scorer; the gradient methods attribute each window on its own and weight it the same way.

The attributions explain this model's score, not what the speaker felt or meant.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

import numpy as np
import torch
from captum.attr import IntegratedGradients

from preprocessing.text import DEFAULT_MAX_LENGTH, tokenize_windows, window_weights

from mclmcf.model import MCLMCF
from mclmcf.serving.scoring import audio_visual_vectors, empty_text_vector
from mclmcf.serving.word_removal import hierarchical, leave_one_out, shapley, subset_scorer

METHODS = ("hierarchical", "shapley", "propagation", "token_states", "embedding", "leave_one_out")
# quadrature points of the gradient methods; shapley: antithetic permutation pairs
STEPS = {"shapley": 2, "propagation": 16, "token_states": 16, "embedding": 32}
EMBEDDING_MAX_STEPS = 64
CONVERGED = 0.05           # |convergence delta| the embedding path aims for, score units
MEAN_POOLED_DEFAULT = "hierarchical"   # explain_choice_rule.md, second and fourth rounds (2026-12-07)
MEAN_POOLED_MAX_WORDS = 120   # words up to which MEAN_POOLED_DEFAULT is used (about 2 s on 2 cores); beyond, token_states
# what each method's baseline score is the score of, in a visitor's words (the page says it beside the words)
BASELINES = {**{m: "the same clip with an empty transcript" for m in METHODS},
             "embedding": "the same clip with every word replaced by the [PAD] token"}
WORD = re.compile(r"\w+(?:['’-]\w+)*|[^\w\s]+")


def default_method(model: MCLMCF, n_words: int = 0) -> str:
    """The method the page uses for ``n_words`` words: a word-removal method's cost grows with the words, so a
    transcript of more than MEAN_POOLED_MAX_WORDS gets token_states, whose cost does not (the card names the
    method)."""
    if model.config.text_pooling != "mean":
        return "embedding"
    return "token_states" if n_words > MEAN_POOLED_MAX_WORDS else MEAN_POOLED_DEFAULT


def word_spans(text: str) -> list[tuple[int, int]]:
    """The page's words: runs of letters/digits (inner ' and - kept) and runs of punctuation, as character spans."""
    return [m.span() for m in WORD.finditer(text)]


@dataclass
class WordAttribution:
    word: str
    attribution: float                 # score units: how much this word moved the score from the baseline's
    spaced: bool = True                # whitespace comes before it in the transcript (the page keeps the layout)


@dataclass
class WordAttributions:
    words: list[WordAttribution]       # the transcript's words (word_spans), in order
    score: float                       # F(x): the model's score for the transcript
    baseline_score: float              # F(x'): the method's baseline (module docstring, BASELINES)
    method: str | None = None          # one of METHODS

    @property
    def remainder(self) -> float:
        """The part of score - baseline score that no word carries (0 for a method that adds up exactly)."""
        return self.score - self.baseline_score - sum(w.attribution for w in self.words)

    @property
    def completeness_error(self) -> float:
        return self.remainder


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


def _with_av(text_vector: torch.Tensor, h_av: dict) -> dict:
    return {"t": text_vector, **{m: x.expand(len(text_vector), -1) for m, x in h_av.items()}}


# ---- the gradient methods: (model, windows, the empty transcript's text vector p0 (1, Dt), h_av, steps, the
# windows' last-layer states if known) -> per token, per window ------------------------------------------------

def _pooled_gradient(model: MCLMCF, win: Windows, p0: torch.Tensor, h_av: dict, steps: int, known=None):
    """The last-layer states s (W, width, Dt) (``known``: each window's, unpadded, from the request's pass), the
    head's path-averaged gradient g (W, Dt) from the empty transcript's pooled vector p0 to each window's p
    (Gauss-Legendre), F(x) (W,) and F(x') (W,)."""
    if model.config.text_pooling != "mean":
        raise ValueError("this attribution splits a mean-pooled text vector over its tokens; these weights "
                         f"pool with {model.config.text_pooling!r}: use method='embedding'")
    with torch.no_grad():
        states = (model.text_token_states(win.mask, win.ids, win.types) if known is None else
                  torch.nn.utils.rnn.pad_sequence(known, batch_first=True)[:, :win.mask.shape[1]])
        p = model.pool_text(states, win.mask)
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    alphas = torch.as_tensor((nodes + 1) / 2, dtype=p.dtype)[:, None, None]
    path = (p0 + alphas * (p - p0)).reshape(-1, p.shape[-1]).requires_grad_()        # (steps * W, Dt)
    grad, = torch.autograd.grad(model.score_from_vectors(_with_av(path, h_av)).sum(), path)
    g = torch.einsum("k,kwd->wd", torch.as_tensor(weights / 2, dtype=p.dtype), grad.reshape(steps, *p.shape))
    with torch.no_grad():
        ends = model.score_from_vectors(_with_av(torch.cat([p, p0]), h_av)).float().cpu().numpy()
    return states, p0, g, ends[:-1], np.full(len(p), ends[-1])


def _token_states(model: MCLMCF, win: Windows, p0: torch.Tensor, h_av: dict, steps: int, known=None):
    states, p0, g, score, baseline = _pooled_gradient(model, win, p0, h_av, steps, known)
    n = win.mask.sum(1, keepdim=True).to(states.dtype)
    per_token = torch.einsum("wtd,wd->wt", states - p0[:, None], g) / n * win.mask
    return _spread_special(per_token.float().cpu().numpy(), win), score, baseline


def _spread_special(values: np.ndarray, win: Windows) -> np.ndarray:
    """Give each window's [CLS]/[SEP] attributions to its word pieces, evenly."""
    special = (win.mask.cpu().numpy() > 0) & ~win.content
    n_content = np.maximum(win.content.sum(1, keepdims=True), 1)
    return np.where(win.content, values + (values * special).sum(1, keepdims=True) / n_content, 0.0)


@contextlib.contextmanager
def _linear_backward(encoder: torch.nn.Module):
    """Hold the attention probabilities, the LayerNorm scale and the GELU gate constant in the backward pass
    (the forward values are unchanged), so that gradient x input conserves through the encoder."""
    attentions = [m for m in encoder.modules() if type(m).__name__ == "MPNetSelfAttention"]
    if not attentions or encoder.config.hidden_act != "gelu":
        raise ValueError("propagation knows the MPNet encoder (softmax attention, GELU); these weights use "
                         f"{type(encoder).__name__}: use method='embedding'")

    def norm(m, inputs, _):
        x = inputs[0]
        centred = x - x.mean(-1, keepdim=True)
        scale = (centred.pow(2).mean(-1, keepdim=True) + m.eps).rsqrt().detach()
        return centred * scale * m.weight + m.bias

    def gelu(_, inputs, __):
        x = inputs[0]
        return x * (0.5 * (1 + torch.erf(x / 2 ** 0.5))).detach()

    hooks = [m.dropout.register_forward_hook(lambda _, __, probs: probs.detach()) for m in attentions]
    hooks += [m.register_forward_hook(norm) for m in encoder.modules() if isinstance(m, torch.nn.LayerNorm)]
    hooks += [m.intermediate.intermediate_act_fn.register_forward_hook(gelu) for m in encoder.encoder.layer]
    try:
        yield
    finally:
        for h in hooks:
            h.remove()


def _propagation(model: MCLMCF, win: Windows, p0: torch.Tensor, h_av: dict, steps: int, known=None):
    _, _, g, score, baseline = _pooled_gradient(model, win, p0, h_av, steps, known)
    inputs = []           # the first layer's input: word + position embeddings, normalised
    hook = model.text_encoder.embeddings.register_forward_hook(
        lambda _, __, out: inputs.append(out.detach().requires_grad_()) or inputs[-1])
    try:
        with torch.enable_grad(), _linear_backward(model.text_encoder):
            p = model.encode_text(win.mask, win.ids, win.types)
            grad, = torch.autograd.grad((p * g).sum(), inputs[0])
    finally:
        hook.remove()
    per_token = (inputs[0] * grad).sum(-1).detach().float().cpu().numpy()
    return np.where(win.content, per_token, 0.0), score, baseline       # [CLS]/[SEP]: the remainder


def _embedding_score(model: MCLMCF, h_av: dict):
    def f(embeds, mask, types):
        return model.score_from_vectors(_with_av(model.encode_text(mask, token_type_ids=types, inputs_embeds=embeds),
                                                 h_av))
    return f


def _embedding(model: MCLMCF, win: Windows, p0: torch.Tensor, h_av: dict, steps: int, known=None):
    embed = model.text_encoder.get_input_embeddings()
    with torch.no_grad():
        x = embed(win.ids)
        blank = torch.where(torch.as_tensor(win.content, device=x.device)[..., None], embed.weight[win.blank_id], x)
    f = _embedding_score(model, h_av)
    while True:                    # double the steps until the quadrature converges (or the cap)
        attr, delta = IntegratedGradients(f).attribute(
            x, baselines=blank, additional_forward_args=(win.mask, win.types), n_steps=steps,
            method="gausslegendre", internal_batch_size=64, return_convergence_delta=True)
        if abs(float(win.weights @ delta.detach().cpu().numpy())) <= CONVERGED or steps >= EMBEDDING_MAX_STEPS:
            break
        steps *= 2
    with torch.no_grad():
        both = f(torch.cat([x, blank]), *(torch.cat([a, a]) for a in (win.mask, win.types))).float().cpu().numpy()
    return np.where(win.content, attr.sum(-1).detach().float().cpu().numpy(), 0.0), both[:len(x)], both[len(x):]


TOKEN_METHODS = {"propagation": _propagation, "token_states": _token_states, "embedding": _embedding}


def _to_words(spans: list[tuple[int, int]], win: Windows, token_values: np.ndarray) -> np.ndarray:
    """Per-token values of each window -> per word (``spans``), each window weighted as the score weights it."""
    totals = np.zeros(len(spans))
    starts = np.array([s for s, _ in spans])
    owner = np.searchsorted(starts, win.spans[..., 0][win.content], side="right") - 1
    np.add.at(totals, owner, (win.weights[:, None] * token_values)[win.content])
    return totals


def attribute_words(model: MCLMCF, tokenizer, text: str, audio: np.ndarray, vision: np.ndarray,
                    method: str | None = None, steps: int | None = None, max_length: int = DEFAULT_MAX_LENGTH,
                    tokenizer_lock=contextlib.nullcontext(), states: list[torch.Tensor] | None = None,
                    score: float | None = None) -> WordAttributions:
    """The score over the transcript's words (``word_spans``) by ``method`` (one of METHODS; default:
    ``default_method`` for this many words); ``steps``: STEPS[method] by default. ``audio`` and ``vision``: the clip's
    (frames, features) arrays, held fixed. ``states``: each encoder window's last-layer token states (tokens, Dt),
    where the caller's request has them (scoring.text_vectors' keep_states): the methods that split the pooled
    vector (token_states, propagation) read them instead of running the encoder again for it. ``score``: the
    transcript's score with this clip, where the caller's request has it: the word-removal methods take it as F(x)
    instead of scoring the whole transcript again."""
    spans = word_spans(text)
    method = method or default_method(model, len(spans))
    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; one of {METHODS}")
    steps = steps or STEPS.get(method, 0)
    words = [text[s:e] for s, e in spans]
    spaced = [s == 0 or text[s - 1].isspace() for s, _ in spans]
    h_av = audio_visual_vectors(model, audio, vision)
    if method in TOKEN_METHODS:
        win = tokenized(model, tokenizer, text, max_length, tokenizer_lock)
        p0 = empty_text_vector(model, tokenizer, max_length, tokenizer_lock)
        values, scores, baselines = TOKEN_METHODS[method](model, win, p0, h_av, steps, states)
        shares, score, nothing = _to_words(spans, win, values), win.weights @ scores, win.weights @ baselines
    else:
        score_subsets = subset_scorer(model, tokenizer, text, spans, h_av, max_length, tokenizer_lock, score)
        shares, score, nothing = (hierarchical(score_subsets, len(words)) if method == "hierarchical"
                                  else shapley(score_subsets, len(words), steps) if method == "shapley"
                                  else leave_one_out(score_subsets, len(words)))
    return WordAttributions([WordAttribution(w, float(a), sp) for w, a, sp in zip(words, shares, spaced)],
                            float(score), float(nothing), method)
