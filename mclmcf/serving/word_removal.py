"""Word colours from scoring the transcript with words removed (mclmcf.serving.explain's ``hierarchical``,
``shapley`` and ``leave_one_out``).

Each method sees the model through one function, ``score(masks)``: boolean masks over the transcript's words ->
the scores of the transcripts that keep those words, in order, joined by spaces, the clip's voice and face held
fixed (``subset_scorer``). The empty mask is the empty transcript, the baseline the page shows.

  hierarchical   The transcript is split in two, each part in two again, down to single words. A span S is cut
                 at one of the two cuts at its middle (``cuts``): the one whose two neighbouring words interact
                 least as the model scores them, |v(w w') - v(w) - v(w') + v()| with v the score of some words
                 alone, so that "not bad" stays together when cutting it apart would change what its words mean.
                 Its two parts A and B then play the two-player game of S on its own: A gets its Shapley value
                 (v(A) - v() + v(S) - v(B)) / 2, B likewise, and the two add up to v(S) - v(). What S was given
                 from above differs from v(S) - v() by what S does with the words around it; A and B share that
                 difference evenly. Every word ends with a share, and the shares add up exactly to F(x) - F(x').
                 Two encoder calls: every word alone and every neighbouring pair (the whole tree follows from
                 them), then the tree's longer parts; 30 words: about 75 transcripts, most of them one or two words.
                 Explaining down a hierarchy of the input's parts is Owen's idea (1977), used by shap's Partition
                 explainer; cutting where the parts interact least is HEDGE's (Chen et al., ACL 2020); scoring
                 each span on its own, without the words around it, and choosing the cut by the two words either
                 side of it are this project's choices, for cost (benchmarks/explain_choice_rule.md, fourth round).
  shapley        Shapley values by antithetic permutation sampling (explain's docstring).
  leave_one_out  word i gets F(x) - F(x without word i): a reference, not a decomposition.
"""

from __future__ import annotations

import contextlib

import numpy as np

from mclmcf.serving.scoring import score_texts, score_word_subsets, word_tokens


def subset_scorer(model, tokenizer, text: str, spans: list[tuple[int, int]], h_av: dict, max_length: int,
                  tokenizer_lock=contextlib.nullcontext(), whole: float | None = None):
    """``score(masks)`` for the transcript ``text`` and its words ``spans``: from the transcript's own token
    ids where the tokenizer allows (scoring.word_tokens), else by tokenizing each subset's text. ``whole``: the
    transcript's own score where the caller has it (the page's request), given for the mask that keeps every word
    instead of scoring the transcript again."""
    units = word_tokens(tokenizer, text, spans, tokenizer_lock)
    words = [text[a:b] for a, b in spans]

    def encoded(masks):
        if units is not None:
            return score_word_subsets(model, units, masks, h_av, max_length)
        texts = [text if m.all() else " ".join(w for w, keep in zip(words, m) if keep) for m in masks]
        return score_texts(model, tokenizer, texts, h_av, max_length, tokenizer_lock)

    if whole is None:
        return encoded

    def score(masks):
        rest = [m for m in masks if not m.all()]
        values = iter(encoded(rest) if rest else [])
        return np.array([whole if m.all() else next(values) for m in masks])
    return score


def cuts(lo: int, hi: int) -> list[int]:
    """Where the span of words [lo, hi) may be cut in two: at its middle and one word before it. Two neighbouring
    cuts are enough to keep any two neighbouring words together ("not bad"), as only one of the two separates them."""
    middle = lo + (hi - lo + 1) // 2
    return [i for i in (middle - 1, middle) if lo < i < hi]


def split_tree(n: int, across: dict[int, float]) -> dict[tuple[int, int], int]:
    """The tree over n words: each span of two or more words -> where it is cut, parents before children. A span
    takes the cut (of ``cuts``) with the smallest |across[c]|, the interaction of the words c - 1 and c."""
    tree: dict[tuple[int, int], int] = {}
    level = [(0, n)] if n > 1 else []
    while level:
        for lo, hi in level:
            tree[(lo, hi)] = min(cuts(lo, hi), key=lambda c: abs(across[c]))
        level = [part for lo, hi in level for part in ((lo, tree[(lo, hi)]), (tree[(lo, hi)], hi)) if part[1] - part[0] > 1]
    return tree


def hierarchical(score, n: int) -> tuple[np.ndarray, float, float]:
    """Each of the n words' shares (module docstring), F(x) and F(x'): every word and neighbouring pair in one
    call, the tree from their interactions, its longer parts in a second call, the shares down the tree."""
    value: dict[tuple[int, int], float] = {}
    index = np.arange(n)

    def scored(spans):
        new = [s for s in dict.fromkeys(spans) if s not in value]
        value.update(zip(new, score([(index >= lo) & (index < hi) for lo, hi in new]) if new else []))

    scored([(0, 0), (0, n), *((i, i + 1) for i in range(n)), *((i, i + 2) for i in range(n - 1))])
    nothing = value[(0, 0)]
    across = {c: value[(c - 1, c + 1)] - value[(c - 1, c)] - value[(c, c + 1)] + nothing for c in range(1, n)}
    tree = split_tree(n, across)
    scored([part for (lo, hi), c in tree.items() for part in ((lo, c), (c, hi))])
    given = {(0, n): value[(0, n)] - nothing} if n else {}
    for (lo, hi), c in tree.items():
        whole, a, b = (value[span] - nothing for span in ((lo, hi), (lo, c), (c, hi)))
        context = (given.pop((lo, hi)) - whole) / 2
        given[(lo, c)] = (a + whole - b) / 2 + context
        given[(c, hi)] = (b + whole - a) / 2 + context
    shares = np.zeros(n)
    for (lo, _), share in given.items():
        shares[lo] = share
    return shares, value[(0, n)], nothing


def shapley(score, n: int, pairs: int) -> tuple[np.ndarray, float, float]:
    """Antithetic permutation sampling of the words' Shapley values, F(x) and F(x')."""
    rng = np.random.default_rng(0)           # the same transcript gets the same colours
    orders = [rng.permutation(n) for _ in range(pairs)]
    orders += [o[::-1] for o in orders]
    masks = {}
    for order in orders:
        for k in range(1, n):
            mask = np.zeros(n, bool)
            mask[order[:k]] = True
            masks.setdefault(mask.tobytes(), mask)
    full, empty = np.ones(n, bool), np.zeros(n, bool)
    values = dict(zip([full.tobytes(), empty.tobytes(), *masks], score([full, empty, *masks.values()])))
    phi = np.zeros(n)
    for order in orders:
        mask = np.zeros(n, bool)
        before = values[mask.tobytes()]
        for i in order:
            mask[i] = True
            after = values[mask.tobytes()]
            phi[i] += after - before
            before = after
    return phi / len(orders), values[full.tobytes()], values[empty.tobytes()]


def leave_one_out(score, n: int) -> tuple[np.ndarray, float, float]:
    """F(x) - F(x without word i) for each word i, F(x) and F(x')."""
    full, nothing, *without = score([np.ones(n, bool), np.zeros(n, bool), *(np.arange(n) != i for i in range(n))])
    return full - np.array(without), full, nothing
