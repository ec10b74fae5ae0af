"""Pictures and HTML for a Prediction: score card, contributions, TCF heatmaps, face mesh, audio.

TCF heatmaps are HTML: each map goes through a colormap lookup table straight to a small PNG, and
titles, axis names and colour bars are HTML around it (a matplotlib figure per request cost ~0.45 s
per pair); the panels reflow from four in a row to two on a phone. The audio and timeline figures are
drawn with matplotlib's object API (``Figure`` + Agg canvas, no pyplot global state), so concurrent
requests can render at the same time, and returned as RGB arrays.
"""

from __future__ import annotations

import base64
import html
import textwrap
from functools import lru_cache

import cv2
import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from preprocessing import draw_face_mesh

from mclmcf.model.network import TCF_OPERANDS
from mclmcf.serving.pipeline import Prediction, Segment, user_message
from mclmcf.ui.score import POLARITY_COLOURS, gauge_html, stages_line

# the paper's word for each modality, in everything the visitor reads (code and data say text / audio / vision,
# the model t / a / v)
MODALITY_NAMES = {"text": "text", "audio": "acoustic", "vision": "visual"}
MODEL_LETTERS = {"t": "text", "a": "audio", "v": "vision"}
PAIR_NAMES = {pair: tuple(MODALITY_NAMES[MODEL_LETTERS[m]] for m in operands)      # rows, columns
              for pair, operands in TCF_OPERANDS.items()}
AUDIO_GROUPS = ((0, "MFCC"), (13, "ΔMFCC"), (26, "ΔΔMFCC"), (39, "prosody+\nspectrum"))
SCORE_PLACEHOLDER = ('<div class="score-card score-empty"><p>After <b>Analyse</b>: the sentiment score, its label and '
                     'what each modality (words, voice, face) contributed.</p></div>')
MAP_SIDE = 256          # heatmaps are shown at most this many pixels wide (area-averaged): a panel is ~200 px on screen


def to_rgb(fig: Figure) -> np.ndarray:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


# ---- HTML --------------------------------------------------------------------------------------

def score_card_html(pred: Prediction) -> str:
    """Score, labels, the gauge and the prediction's notices."""
    gauge = gauge_html("sentiment-score", pred.score, pred.sentiment_class, pred.polarity, pred.label_range,
                       f"polarity: {pred.polarity}")
    return f"""
<div class="score-card">
  {gauge}
  {notices_html(pred.notices)}
</div>"""


def notices_html(notices: list[str]) -> str:
    """The prediction's notices (transcript cut, silence, untrusted timing, ...), shown beside the score."""
    items = "".join(f'<li>⚠️ {html.escape(n)}</li>' for n in notices)
    return f'<ul id="score-notices" class="score-notices">{items}</ul>' if notices else ""


def error_html(message: str) -> str:
    """Takes the score's place when a request is refused, so the reason stays on the page."""
    return (f'<div id="analysis-error" class="score-card score-error"><b>Cannot analyse this clip.</b> '
            f'{user_message(message)}<br><small>The previous results were cleared.</small></div>')


def contributions_html(pred: Prediction) -> str:
    """One diverging bar per modality: how much it moved the score (full minus neutralised)."""
    r = pred.label_range
    rows = []
    for key, delta in pred.contributions.items():
        width = 50.0 * min(1.0, abs(delta) / r)
        side = f"left:50%;width:{width:.1f}%" if delta >= 0 else f"left:{50 - width:.1f}%;width:{width:.1f}%"
        colour = POLARITY_COLOURS["positive" if delta >= 0 else "negative"]
        rows.append(f'<div class="contrib-row"><span class="contrib-name">{MODALITY_NAMES[key]}</span>'
                    f'<div class="contrib-track"><div class="contrib-bar" style="{side};background:{colour}"></div></div>'
                    f'<span class="contrib-value">{delta:+.2f}</span></div>')
    without = " · ".join(f"without {MODALITY_NAMES[key]} {pred.score - delta:+.2f}"
                         for key, delta in pred.contributions.items())
    return ('<div class="contrib"><div class="contrib-title">Per-modality contribution '
            '<small>(score − score with that modality neutralised)</small></div>' + "".join(rows) +
            f'<div id="contrib-without" class="contrib-note">Score {pred.score:+.2f}; {without}. The modalities act '
            'together, so the bars need not add up to the score.</div></div>')


def details_markdown(pred: Prediction, source: str, device: str, trained_on: str) -> str:
    cached = " (acoustic/visual features re-used from the cache: no decoding or feature extraction)" if pred.features_cached else ""
    lines = [f"**Weights:** `{html.escape(source)}` on **{device}** · **trained on:** {html.escape(trained_on)}",
             f"**Time per stage:** {stages_line(pred.timings)}{cached}",
             f"**Clip:** {pred.clip.duration_s:.1f} s · face in {pred.clip.face_fraction:.0%} of "
             f"{len(pred.clip.face_mask)} sampled frames ({pred.clip.spec.video_fps:g} fps)"]
    source = "speech recognition" if pred.transcript_source == "asr" else "typed"
    lines.append(f"**Transcript ({source}, {pred.text_windows} encoder window{'s' * (pred.text_windows > 1)}):** "
                 f"{html.escape(pred.transcript)}")
    return "\n\n".join(lines)


# ---- figures -----------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def colour_table(cmap: str) -> np.ndarray:
    """(256, 3) uint8 RGB lookup table of a matplotlib colormap."""
    return (matplotlib.colormaps[cmap](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)


def heatmap_png(values: np.ndarray, cmap: str, vmin: float, vmax: float) -> str:
    """2-D array -> PNG data URI: area-averaged to at most MAP_SIDE, then mapped through the colormap."""
    h, w = values.shape
    scale = min(1.0, MAP_SIDE / max(h, w))
    if scale < 1:
        values = cv2.resize(values.astype(np.float32), (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    index = np.clip((values - vmin) / ((vmax - vmin) or 1.0) * 255, 0, 255).astype(np.uint8)
    rgb = colour_table(cmap)[index]
    ok, png = cv2.imencode(".png", rgb[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 1])
    return "data:image/png;base64," + base64.b64encode(png.tobytes()).decode()


def _panel(title: str, values: np.ndarray, cmap: str, vmin: float, vmax: float, y_name: str, x_name: str) -> str:
    stops = ", ".join(f"rgb{tuple(int(c) for c in colour_table(cmap)[i])}" for i in range(0, 256, 51))
    h, w = values.shape
    return (f'<figure class="tcf-panel"><figcaption>{title}</figcaption>'
            f'<div class="tcf-plot"><span class="tcf-ylabel">{y_name} 0–{h - 1} ↓</span>'
            f'<img src="{heatmap_png(values, cmap, vmin, vmax)}" alt="{title}"></div>'
            f'<div class="tcf-xlabel">{x_name} 0–{w - 1} →</div>'
            f'<div class="tcf-bar" style="background:linear-gradient(90deg, {stops})"></div>'
            f'<div class="tcf-bar-ticks"><span>{vmin:.3g}</span><span>{vmax:.3g}</span></div></figure>')


def tcf_html(pair: str, image: np.ndarray, maps: list[np.ndarray]) -> str:
    """The pair's outer-product image and each Conv2d+ReLU output (channel mean), each with its title,
    axis names and colour bar. The image gets diverging colours on a symmetric range when it has both
    signs (fusion_activation="none") and a sequential map from 0 when it is non-negative (the default)."""
    first, second = PAIR_NAMES[pair]
    lim = float(np.abs(image).max()) or 1.0
    cmap, vmin = ("RdBu_r", -lim) if image.min() < 0 else ("viridis", 0.0)
    panels = [_panel(f"{first} × {second} image ({image.shape[0]}²)", image, cmap, vmin, lim,
                     f"{first} h′ index", f"{second} h′ index")]
    for i, fmap in enumerate(maps, start=1):
        mean = fmap.mean(axis=0)
        title = f"conv{i} + ReLU ({fmap.shape[0]} ch{', mean' if fmap.shape[0] > 1 else ''})"
        panels.append(_panel(title, mean, "magma", float(mean.min()), float(mean.max()), "y px", "x px"))
    return (f'<div class="tcf-pair" data-pair="{pair}"><div class="tcf-heading">{first} × {second}</div>'
            f'<div class="tcf-panels">{"".join(panels)}</div></div>')


def tcf_placeholder(pair: str) -> str:
    first, second = PAIR_NAMES[pair]
    return (f'<div class="tcf-pair tcf-empty" data-pair="{pair}"><div class="tcf-heading">{first} × {second}</div>'
            f'<p>After <b>Analyse</b>: the {first} × {second} image (outer product of the two modalities&#8217; expanded vectors) '
            f'and its three Conv2d feature maps.</p></div>')


def face_mesh_image(pred: Prediction) -> np.ndarray:
    return draw_face_mesh(pred.clip.key_frame, pred.clip.key_landmarks)


def audio_figure(pred: Prediction) -> np.ndarray:
    """Waveform, the acoustic feature strip (each feature z-scored over the clip), face presence."""
    clip = pred.clip
    fig = Figure(figsize=(9.0, 4.2), dpi=90, layout="constrained")
    ax_wave, ax_feat, ax_face = fig.subplots(3, 1, sharex=True, height_ratios=[1.1, 2.0, 0.25])
    t = np.arange(len(clip.waveform)) / clip.sample_rate
    ax_wave.plot(t, clip.waveform, lw=0.4, color="#4c6ef5")
    ax_wave.set_ylabel("amplitude", fontsize=8)
    feats = clip.audio
    z = (feats - feats.mean(0)) / (feats.std(0) + 1e-6)
    im = ax_feat.imshow(z.T, aspect="auto", cmap="coolwarm", vmin=-3, vmax=3, interpolation="nearest",
                        extent=(0, len(feats) / clip.spec.audio_fps, feats.shape[1], 0))
    ax_feat.set_yticks([row for row, _ in AUDIO_GROUPS], [name for _, name in AUDIO_GROUPS], fontsize=7, va="top")
    ax_feat.set_ylabel("feature", fontsize=8)
    fig.colorbar(im, ax=ax_feat, label="z-score", shrink=0.9)
    ax_face.imshow(clip.face_mask[None, :].astype(float), aspect="auto", cmap="Greens", vmin=0, vmax=1.3,
                   extent=(0, clip.duration_s, 1, 0), interpolation="nearest")
    ax_face.set_yticks([0.5], ["face"], fontsize=7)
    ax_face.set_xlabel("time (s)", fontsize=8)
    for ax in (ax_wave, ax_feat, ax_face):
        ax.tick_params(labelsize=7)
    return to_rgb(fig)


def timeline_figure(segments: list[Segment], label_range: float) -> np.ndarray:
    """Score per window; below it, each window's words (unless every window shares one text)."""
    shared = len({s.text for s in segments}) == 1
    fig = Figure(figsize=(9.0, 2.4 if shared else 3.2), dpi=90, layout="constrained")
    if shared:
        ax = fig.subplots()
    else:
        ax, ax_words = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
        total = segments[-1].end_s
        for seg in segments:   # ~120 characters of this font fit across the axes
            width = max(6, int(120 * (seg.end_s - seg.start_s) / total))
            ax_words.text((seg.start_s + seg.end_s) / 2, 0.5, textwrap.fill(seg.text or "(no words)", width),
                          ha="center", va="center", fontsize=6.5, color="#333" if seg.text else "#999")
            ax_words.axvline(seg.start_s, color="#ccc", lw=0.6)
        ax_words.set_yticks([])
        ax_words.set_ylabel("words", fontsize=8)
        ax_words.set_xlabel("time (s)", fontsize=8)
        ax_words.tick_params(labelsize=7)
    for seg in segments:
        colour = POLARITY_COLOURS["positive" if seg.score >= 0 else "negative"]
        ax.hlines(seg.score, seg.start_s, seg.end_s, colors=colour, lw=3)
    mids = [(s.start_s + s.end_s) / 2 for s in segments]
    ax.plot(mids, [s.score for s in segments], "o--", color="#555", lw=0.8, ms=3)
    ax.axhline(0, color="#aaa", lw=0.8)
    ax.set_ylim(-label_range, label_range)
    if shared:
        ax.set_xlabel("time (s)", fontsize=8)
    ax.set_ylabel("score", fontsize=8)
    words = "the full transcript (no word times)" if shared else "the words spoken in it"
    ax.set_title(f"Score per window: its voice, its face and {words}", fontsize=9)
    ax.tick_params(labelsize=7)
    return to_rgb(fig)
