"""HTML for mclmcf.serving.explain: the transcript with each word coloured by its attribution, and the voice line.

Colours: a blue (pushed the score up) / orange (pushed it down) diverging scale, safe for red-green
colour blindness, from white at 0 to the full colour at the largest |attribution| of the transcript;
text stays near-black, and even the full colours keep a contrast of at least 4.5:1 with it (WCAG AA).
Each word's value is in its tooltip, so the sign is readable without telling colours apart. Punctuation is
its own item, set against the word it follows as in the transcript. What no word carries (a method that does
not add up exactly) is shown as its own item after the words, never spread over them.
"""

from __future__ import annotations

import html

import numpy as np

from mclmcf.serving.explain import BASELINES, WordAttributions
from mclmcf.serving.voice import VoiceSummary

TEXT_COLOUR = "#111111"
UP, DOWN = "#5aa0dc", "#eb8a5c"        # full colours at the largest |attribution|
SHOWN_REMAINDER = 0.005    # |score units| of the remainder from which the page shows it as its own item
LOOSE_SUM = 0.1            # |remainder| above which the page says the colours are only approximate
METHOD_LABELS = {"hierarchical": "the transcript halved and halved again, each part scored on its own",
                 "shapley": "each word's average effect over many orders of adding the words",
                 "propagation": "gradient x input through the text encoder",
                 "token_states": "Integrated Gradients over the text encoder's output",
                 "embedding": "Integrated Gradients over the word embeddings",
                 "leave_one_out": "each word left out in turn"}
WORDS_PLACEHOLDER = ('<div class="words-card score-empty"><p>After <b>Analyse</b>: the transcript with each word '
                     'coloured by how much it moved the score.</p></div>')
# the bar takes a row of its own, the two labels share the next (a phone has no room for all three on one)
LEGEND_STYLE = "display:flex;flex-wrap:wrap;justify-content:space-between;gap:2px 12px"
BAR_STYLE = "flex:1 0 100%;background:linear-gradient(90deg, {down}, #ffffff, {up})"
TIGHT = ";padding-left:1px;margin-left:-3px"     # punctuation set against the word before it


def _mix(colour: str, t: float) -> str:
    """White blended towards ``colour`` by t in [0, 1], as #rrggbb."""
    rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
    return "#" + "".join(f"{round(c):02x}" for c in 255 + t * (rgb - 255))


def word_colour(attribution: float, scale: float) -> str:
    return _mix(UP if attribution >= 0 else DOWN, min(1.0, abs(attribution) / scale) if scale > 0 else 0.0)


def coloured_words(attributions: WordAttributions) -> str:
    """The words as spans coloured by their attributions (full colour at the largest |attribution|), each
    value in its tooltip: the word card's text and live mode's words heard."""
    words = attributions.words
    scale = max((abs(w.attribution) for w in words), default=0.0)
    return "".join((" " if w.spaced and i else "")
                   + f'<span class="word" style="background:{word_colour(w.attribution, scale)};color:{TEXT_COLOUR}'
                   f'{"" if w.spaced else TIGHT}" title="{w.attribution:+.3f}">{html.escape(w.word)}</span>'
                   for i, w in enumerate(words))


def words_html(attributions: WordAttributions) -> str:
    words = attributions.words
    if not words:
        return '<div id="word-attributions" class="words-card"><p>No words to attribute: the transcript is empty.</p></div>'
    remainder = attributions.remainder
    scale = max(abs(w.attribution) for w in words)
    spans = coloured_words(attributions)
    if abs(remainder) >= SHOWN_REMAINDER:
        spans += (f' <span class="words-remainder" style="border:1px dashed {TEXT_COLOUR};padding:0 4px;'
                  f'border-radius:4px" title="{remainder:+.3f}">in no word: {remainder:+.2f}</span>')
    method = attributions.method or "embedding"
    return (f'<div id="word-attributions" class="words-card"><div class="contrib-title">Which words moved the score '
            f'<small>({METHOD_LABELS[method]}; voice and face held fixed)</small></div>'
            f'<p class="words-text" style="overflow-wrap:anywhere">{spans}</p>'
            f'<div class="words-legend" style="{LEGEND_STYLE}">'
            f'<div class="words-bar" style="{BAR_STYLE.format(down=DOWN, up=UP)}"></div>'
            f'<span>orange: pushed the score down</span><span>blue: pushed it up</span>'
            f'<span style="flex:1 0 100%;text-align:center">full colour: ±{scale:.2f}</span></div>'
            f'<div class="contrib-note">A colour says how far that word moved this score compared with '
            f'{BASELINES[method]}: the deeper the colour, the bigger the move. {_sum_line(attributions)} '
            f'They explain what moved this model, not what the speaker felt or meant. Hover a word for its value.'
            f'</div></div>')


def _sum_line(attributions: WordAttributions) -> str:
    """How the words' sum meets the score's change, the remainder named when there is one."""
    total = sum(w.attribution for w in attributions.words)
    change = (f"the score {attributions.score:+.2f} minus {attributions.baseline_score:+.2f}, the score of "
              f"{BASELINES[attributions.method or 'embedding']}")
    remainder = attributions.remainder
    if abs(remainder) < SHOWN_REMAINDER:
        return f"The words add up to {total:+.2f}, {change}."
    note = (f"The words add up to {total:+.2f}; with the {remainder:+.2f} that no word carries (the last item) "
            f"that is {change}.")
    if abs(remainder) > LOOSE_SUM:
        note += " The colours are <b>only roughly</b> right here: read the strongest, not the exact values."
    return note


def voice_html(voice: VoiceSummary) -> str:
    return f'<div id="voice-summary" class="voice-summary">{html.escape(voice.line())}</div>'
