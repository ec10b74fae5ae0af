"""The Analyse tab's outputs as one table, and the page's words about the weights.

Each Slot is one output of the Analyse button: where it sits, its component as the page first shows it, its
value for a Prediction and its value after a refused request. app.py places the slots area by area (within an
area in SLOTS order) and wires the button to them in SLOTS order, so adding an output is one row here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from mclmcf.serving.pipeline import SentimentPipeline
from mclmcf.serving.prediction import Prediction
from mclmcf.serving.weights import DEFAULT_DIR, LoadedWeights
from mclmcf.ui import result, words
from mclmcf.ui.expression_strip import expression_strip

INTRO = ("# MCL-MCF multimodal sentiment\n**[Try an example ↓](#examples)**, or upload or record a short clip of "
         "someone speaking, type what they say (or leave the box empty: speech recognition fills it in) and press "
         "**Analyse**: the model rates the sentiment from the words, the voice and the face.")
TRANSCRIPT_LABELS = {False: "Transcript", True: "Transcript (from speech recognition: correct it and analyse again)"}
TCF_HEADING = (
    "### How the model pairs up words, voice and face (the TCF images)\n"
    "The model sums up each sense of the clip (the words, the voice, the face) in a list of features it learned: "
    "numbers without names, in no meaningful order. Each picture multiplies two of these lists: **the cell in row i, "
    "column j is feature i of the first sense times feature j of the second** (in *text × acoustic*, one text feature "
    "times one voice feature of this clip). **Bright:** both features strongly on at once; **dark:** at least one of "
    "them is off. That is why the pictures look striped: a bright row is one strongly-on feature of the first sense, "
    "a bright column one of the second. The three pictures share one colour scale, so their brightness compares.\n\n"
    "**Why the model builds them:** for training, so that the three senses agree: a contrastive loss (the paper's "
    "level 3) pulls the three pictures of one clip together and pushes other clips' apart. **What they are not:** "
    "they do not set the score. The score is computed from the same feature lists joined end to end (not multiplied), "
    "never from these pictures; the pictures only shaped those features while the model trained.")
TRANSCRIPT_MAX_CHARS = 2000      # SentimentPipeline's max_transcript_chars (a test holds them equal)
COUNTER_JS = """
const count = () => {
  const n = document.querySelector('#transcript textarea')?.value.length ?? 0;
  const text = `${n.toLocaleString('en')} / ${(LIMIT).toLocaleString('en')} characters` + (n >= LIMIT ? ': the limit' : '');
  if (element.textContent !== text) element.textContent = text;
  element.classList.toggle('at-limit', n >= LIMIT);
};
document.addEventListener('input', count);
setInterval(count, 400);   // values set by the page itself (an example, speech recognition) fire no input event
count();
"""
BANNER_SOURCES: set[str] = set()   # weights whose training the banner already states: the details do not repeat it
PICTURES = {"face": "the face mesh the model reads, drawn on a key frame of the clip",
            "expressions": "the facial expressions per frame, as a FER2013 model reads the face",
            "audio": "the waveform and the acoustic features the model reads, on one time axis with where a face was found"}


@dataclass(frozen=True)
class Slot:
    name: str
    area: str                                           # "inputs", "beside" the inputs, "tcf" and "below" them, "raw" (JSON)
    build: Callable[[], gr.components.Component]        # called where the page layout places it
    fill: Callable[[Prediction, LoadedWeights], Any]
    clear: Callable[[str], Any]                         # the refusal's reason -> the slot's value; nothing stale stays


def tcf_slot(pair: str) -> Slot:
    return Slot(f"tcf_{pair}", "tcf",                   # side by side on a desktop, one under another on a phone
                lambda: gr.HTML(result.tcf_placeholder(pair), elem_classes="tcf-map"),
                lambda pred, w: result.tcf_html(pair, pred.tcf_images[pair], pred.tcf_feature_maps[pair],
                                                result.tcf_scale(pred.tcf_images)),
                lambda reason: result.tcf_placeholder(pair))


def picture_slot(name: str, area: str, elem_id: str, fill: Callable[[Prediction], str]) -> Slot:
    """A picture drawn as HTML; before the first analysis and after a refusal it says what it will show."""
    placeholder = result.picture_placeholder(PICTURES[name])
    return Slot(name, area, lambda: gr.HTML(placeholder, elem_id=elem_id), lambda pred, w: fill(pred),
                lambda reason: placeholder)


def transcript_box() -> gr.Textbox:
    """The transcript box, at most TRANSCRIPT_MAX_CHARS long (the browser stops typing there), and under it a
    character counter kept in the browser (it follows typing, pasting, the examples and speech recognition)."""
    box = gr.Textbox(label=TRANSCRIPT_LABELS[False], lines=2, max_lines=8, max_length=TRANSCRIPT_MAX_CHARS,
                     elem_id="transcript", placeholder="What is said in the clip; leave empty to have it transcribed")
    gr.HTML(f"0 / {TRANSCRIPT_MAX_CHARS:,} characters", elem_id="transcript-count", padding=False,
            js_on_load=COUNTER_JS.replace("LIMIT", str(TRANSCRIPT_MAX_CHARS)))
    return box


def timeline_update(pred: Prediction, w: LoadedWeights) -> dict:
    """The score-over-time figure, shown only when the visitor asked for windows."""
    figure = result.timeline_figure(pred.timeline, pred.label_range) if pred.timeline else None
    return gr.update(value=figure, visible=figure is not None)


SLOTS = (
    Slot("transcript", "inputs", transcript_box,
         lambda pred, w: gr.update(value=pred.transcript, label=TRANSCRIPT_LABELS[pred.transcript_source == "asr"]),
         lambda reason: gr.update()),                   # a refusal keeps what the visitor typed
    Slot("score", "beside", lambda: gr.HTML(result.SCORE_PLACEHOLDER, label="Sentiment", elem_id="result-score"),
         lambda pred, w: result.score_card_html(pred), result.error_html),     # the reason takes the score's place
    Slot("contributions", "beside", gr.HTML, lambda pred, w: result.contributions_html(pred), lambda reason: ""),
    Slot("words", "beside", lambda: gr.HTML(words.WORDS_PLACEHOLDER),
         lambda pred, w: words.words_html(pred.attributions), lambda reason: words.WORDS_PLACEHOLDER),
    *(tcf_slot(pair) for pair in result.PAIR_NAMES),
    picture_slot("face", "beside", "face-mesh", result.face_mesh_html),
    picture_slot("expressions", "beside", "expression-strip", expression_strip),
    picture_slot("audio", "below", "audio-features", result.audio_html),
    Slot("voice", "below", gr.HTML, lambda pred, w: words.voice_html(pred.voice), lambda reason: ""),
    Slot("timeline", "below", lambda: gr.Image(label="Score over time", show_label=False, interactive=False, visible=False),
         timeline_update, lambda reason: gr.update(value=None, visible=False)),
    Slot("details", "below", gr.Markdown,
         lambda pred, w: result.details_markdown(pred, w.source, w.device.type,
                                                 None if w.source in BANNER_SOURCES else w.trained_on),
         lambda reason: ""),
    Slot("result", "raw", lambda: gr.JSON(label="result"), lambda pred, w: pred.to_json(), lambda reason: None),
)


def place(area: str) -> dict[str, gr.components.Component]:
    """Build the slots of ``area`` at this point of the page layout: name -> component."""
    return {slot.name: slot.build() for slot in SLOTS if slot.area == area}


def filled(pred: Prediction) -> tuple:
    """Every slot's value for a prediction, in SLOTS order."""
    return tuple(slot.fill(pred, pred.weights) for slot in SLOTS)


def cleared(reason: str) -> tuple:
    """Every slot's value after a refused request, in SLOTS order."""
    return tuple(slot.clear(reason) for slot in SLOTS)


def weights_banner(pipeline: SentimentPipeline) -> str:
    """The weights serving, where they run, what they were trained on (the repo's words, shown as plain text) and
    their notices; then speech recognition."""
    w = pipeline.weights
    BANNER_SOURCES.add(w.source)
    notices = "".join(f"\n\n⚠️ {n}" for n in w.notices)
    return (f"Model: `{w.source}` on **{w.device.type}** · trained on: {result.plain_markdown(w.trained_on)}{notices}"
            f"\n\n{pipeline.asr_status}")


def no_weights_banner(reason: str) -> str:
    return f"⚠️ **No usable model weights.** {reason}"


def weights_placeholder(source: str | None) -> str:
    """What the Weights box shows when empty: never a path on the server."""
    if not source:
        return "none"
    if not os.path.isdir(source):
        return source                                   # a Hub repo id is public
    same = Path(source).resolve() == DEFAULT_DIR.resolve()
    return "bundled demo weights" if same else "the server's default weights"
