"""Words with times: text normalisation, word error rate, and giving a typed transcript the times of
the words speech recognition heard.

    word_error_rate("I loved it.", "i love it")      # 1/3: one substitution in three reference words
    align_words("I loved it", asr_words)             # the typed words, timed from the matching ASR words
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import numpy as np

_NOT_WORD = re.compile(r"[^a-z0-9' ]+")


@dataclass(frozen=True)
class TimedWord:
    text: str          # as written (punctuation kept), no surrounding spaces
    start_s: float
    end_s: float

    @property
    def mid_s(self) -> float:
        return (self.start_s + self.end_s) / 2


def normalise(text: str) -> list[str]:
    """Lower-case words without punctuation ("Great, isn't it?" -> ["great", "isn't", "it"]);
    hyphens and slashes split words, as speech recognisers write them either way."""
    text = text.lower().replace("’", "'").replace("-", " ").replace("/", " ")
    return [w.strip("'") for w in _NOT_WORD.sub(" ", text).split() if w.strip("'")]


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    """Word-level Levenshtein distance: substitutions + deletions + insertions."""
    row = np.arange(len(hypothesis) + 1)
    for i, ref in enumerate(reference, start=1):
        prev, row = row, np.empty_like(row)
        row[0] = i
        for j, hyp in enumerate(hypothesis, start=1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ref != hyp))
    return int(row[-1])


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(S + D + I) / N over normalised words; N = reference words (an empty reference: 0 or 1)."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    if not ref:
        return float(bool(hyp))
    return edit_distance(ref, hyp) / len(ref)


def align_words(text: str, heard: list[TimedWord]) -> list[TimedWord]:
    """The words of ``text`` (a typed transcript) with times taken from ``heard`` (ASR words).

    Words are matched on their normalised form (difflib's longest matching blocks); a typed word
    that matches takes its ASR word's times, the others share the gap between their matched
    neighbours evenly (before the first match the gap starts at the first heard word, after the
    last it ends at the last heard word). Returns [] when ``heard`` or ``text`` is empty."""
    typed = text.split()
    if not heard or not typed:
        return []
    key = [" ".join(normalise(w)) for w in typed]
    heard_key = [" ".join(normalise(w.text)) for w in heard]
    times: list[tuple[float, float] | None] = [None] * len(typed)
    for block in difflib.SequenceMatcher(None, key, heard_key, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            w = heard[block.b + k]
            times[block.a + k] = (w.start_s, w.end_s)
    _fill_gaps(times, heard[0].start_s, heard[-1].end_s)
    return [TimedWord(w, round(s, 3), round(e, 3)) for w, (s, e) in zip(typed, times)]


def _fill_gaps(times: list, first_s: float, last_s: float) -> None:
    """Give each run of unmatched words equal slices of the time between its matched neighbours."""
    i = 0
    while i < len(times):
        if times[i] is not None:
            i += 1
            continue
        j = i
        while j < len(times) and times[j] is None:
            j += 1
        lo = times[i - 1][1] if i > 0 else first_s
        hi = times[j][0] if j < len(times) else last_s
        if hi <= lo:   # matched neighbours touch: the run squeezes into a point between them
            hi = lo
        step = (hi - lo) / (j - i)
        for k in range(i, j):
            times[k] = (lo + (k - i) * step, lo + (k - i + 1) * step)
        i = j


def words_in_span(words: list[TimedWord], start_s: float, end_s: float) -> str:
    """The words whose middle lies in [start_s, end_s), joined: the text spoken in that window."""
    return " ".join(w.text for w in words if start_s <= w.mid_s < end_s)
