"""HTML for mclmcf.serving.explain: the transcript with each word coloured by its attribution, and the voice line.

Colours: a blue (pushed the score up) / orange (pushed it down) diverging scale, safe for red-green
colour blindness, from white at 0 to the full colour at the largest |attribution| of the transcript;
text stays near-black, and even the full colours keep a contrast of at least 4.5:1 with it (WCAG AA).
Each word's value is in its tooltip, so the sign is readable without telling colours apart.
"""

from __future__ import annotations

import html

import numpy as np

from mclmcf.serving.explain import BASELINES, WordAttributions
from mclmcf.serving.voice import VoiceSummary

TEXT_COLOUR = "#111111"
UP, DOWN = "#5aa0dc", "#eb8a5c"        # full colours at the largest |attribution|
LOOSE_SUM = 0.1        # |completeness error| above which the page says the colours are only approximate
METHOD_LABELS = {"token_states": "Integrated Gradients over the text encoder's output",
                 "layer": "Integrated Gradients at the text encoder's middle layer",
                 "embedding": "Integrated Gradients over the word embeddings",
                 "leave_one_out": "each word left out in turn"}
WORDS_PLACEHOLDER = ('<div class="words-card score-empty"><p>After <b>Analyse</b>: the transcript with each word '
                     'coloured by how much it moved the score.</p></div>')


def _mix(colour: str, t: float) -> str:
    """White blended towards ``colour`` by t in [0, 1], as #rrggbb."""
    rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
    return "#" + "".join(f"{round(c):02x}" for c in 255 + t * (rgb - 255))


def word_colour(attribution: float, scale: float) -> str:
    return _mix(UP if attribution >= 0 else DOWN, min(1.0, abs(attribution) / scale) if scale > 0 else 0.0)


def words_html(attributions: WordAttributions) -> str:
    words = attributions.words
    if not words:
        return '<div id="word-attributions" class="words-card"><p>No words to attribute: the transcript is empty.</p></div>'
    scale = max(abs(w.attribution) for w in words)
    spans = " ".join(f'<span class="word" style="background:{word_colour(w.attribution, scale)};color:{TEXT_COLOUR}" '
                     f'title="{w.attribution:+.3f}">{html.escape(w.word)}</span>' for w in words)
    total = sum(w.attribution for w in words)
    method = attributions.method or "embedding"
    return (f'<div id="word-attributions" class="words-card"><div class="contrib-title">Which words moved the score '
            f'<small>({METHOD_LABELS[method]}; voice and face held fixed)</small></div>'
            f'<p class="words-text">{spans}</p>'
            f'<div class="words-legend"><span>−{scale:.2f} pushed it down</span>'
            f'<div class="words-bar" style="background:linear-gradient(90deg, {DOWN}, #ffffff, {UP})"></div>'
            f'<span>+{scale:.2f} pushed it up</span></div>'
            f'<div class="contrib-note">The words add up to {total:+.2f}, {_fit(attributions)} the score '
            f'{attributions.score:+.2f} minus {attributions.baseline_score:+.2f}, the score of {BASELINES[method]}. '
            f'They explain what moved this model, not what the speaker felt or meant. Hover a word for its value.'
            f'</div></div>')


def _fit(attributions: WordAttributions) -> str:
    """How well the words' sum matches the score's change: a method that does not add up by construction (e.g.
    embedding-path Integrated Gradients on weights whose score is steep along the path) can miss it by more than
    LOOSE_SUM, and the page says so."""
    if abs(attributions.completeness_error) <= LOOSE_SUM:
        return "about"
    return ("<b>only roughly</b> (these weights' score changes too abruptly for Integrated Gradients to add up "
            "here: read the strongest colours, not the exact values) against")


def voice_html(voice: VoiceSummary) -> str:
    return f'<div id="voice-summary" class="voice-summary">{html.escape(voice.line())}</div>'
