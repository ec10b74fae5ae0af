"""Pictures and HTML for a Prediction: score card, contributions, TCF heatmaps, face mesh, audio.

TCF heatmaps and the acoustic-feature figure are HTML: each map goes through a colormap lookup table
straight to a small PNG, and titles, axis names and colour bars are HTML around it, so their text reads
at any screen width (a matplotlib figure per request cost ~0.45 s per pair); each TCF image is shown first,
on one colour scale shared by the clip's three, and its conv maps folded away below it. The timeline figure is drawn with matplotlib's object API (``Figure`` + Agg canvas, no pyplot
global state), so concurrent requests can render at the same time, and returned as an RGB array.
Pictures travel inside the HTML as data URIs: no file per request on the server's disk.
"""

from __future__ import annotations

import base64
import html
import string
import textwrap
from functools import lru_cache

import cv2
import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from preprocessing import draw_face_mesh

from mclmcf.model.network import TCF_OPERANDS
from mclmcf.serving.messages import user_message
from mclmcf.serving.prediction import Prediction, Segment
from mclmcf.ui.score import POLARITY_COLOURS, gauge_html, stages_line

# the paper's word for each modality, in everything the visitor reads (code and data say text / audio / vision,
# the model t / a / v)
MODALITY_NAMES = {"text": "text", "audio": "acoustic", "vision": "visual"}
MODEL_LETTERS = {"t": "text", "a": "audio", "v": "vision"}
SENSES = {"text": "the words", "acoustic": "the voice", "visual": "the face"}
# one modality order everywhere the visitor reads a pair (text, acoustic, visual): the model builds the
# acoustic-visual image as visual x acoustic (the authors' order), so that one is shown transposed
SHOWN_OPERANDS = {pair: tuple(sorted(operands, key="tav".index)) for pair, operands in TCF_OPERANDS.items()}
TRANSPOSED = {pair for pair, operands in TCF_OPERANDS.items() if operands != SHOWN_OPERANDS[pair]}
PAIR_NAMES = {pair: tuple(MODALITY_NAMES[MODEL_LETTERS[m]] for m in operands)      # rows, columns
              for pair, operands in SHOWN_OPERANDS.items()}
AUDIO_GROUPS = (("MFCC", 13), ("ΔMFCC", 13), ("ΔΔMFCC", 13), ("prosody, spectrum", 9))   # rows of the 48 features
SCORE_PLACEHOLDER = ('<div class="score-card score-empty"><p>After <b>Analyse</b>: the sentiment score, its label and '
                     'what each modality (words, voice, face) contributed.</p></div>')
MAP_SIDE = 256          # heatmaps are shown at most this many pixels wide (area-averaged): a panel is ~200 px on screen
STRIP_COLUMNS = 600     # time columns of the waveform and feature strips (a 60 s clip has 3000 feature frames)
FACE_COLOURS = np.array([[217, 217, 217], [64, 160, 90]], np.uint8)      # face strip: none, found
ZERO_MAP = ("Blank: every value of this filter pass came out negative for this clip, and the pass turns negative "
            "values into zero. The score does not use it.")


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
            f'together, so the bars need not add up to the score.{silent_branches_note(pred)}</div></div>')


def silent_branches_note(pred: Prediction) -> str:
    """Names the TCF pictures whose last filter pass came out blank (all zero), in plain words."""
    silent = [" × ".join(PAIR_NAMES[pair]) for pair, maps in pred.tcf_feature_maps.items() if maps and not maps[-1].any()]
    if not silent:
        return ""
    names = " and ".join([", ".join(silent[:-1]), silent[-1]] if len(silent) > 1 else silent)
    return (f" The training-only filters on the {names} picture{'s' * (len(silent) > 1)} came out blank for this "
            "clip; the score does not use them, so these bars do not depend on it.")


def plain_markdown(text: str) -> str:
    """``text`` shown as typed inside Markdown: every ASCII punctuation mark backslash-escaped, so links,
    images, HTML tags and emphasis from a weights repo stay text (and "http\\://" is never auto-linked)."""
    return "".join(f"\\{c}" if c in string.punctuation else c for c in text)


def details_markdown(pred: Prediction, source: str, device: str, trained_on: str | None) -> str:
    """``trained_on``: None where the page's banner already says it."""
    cached = " (acoustic/visual features re-used from the cache: no decoding or feature extraction)" if pred.features_cached else ""
    trained = f" · **trained on:** {plain_markdown(trained_on)}" if trained_on is not None else ""
    lines = [f"**Weights:** `{html.escape(source)}` on **{device}**{trained}",
             f"**Time per stage:** {stages_line(pred.timings)}{cached}",
             f"**Clip:** {pred.clip.duration_s:.1f} s · face in {pred.clip.face_fraction:.0%} of "
             f"{len(pred.clip.face_mask)} sampled frames ({pred.clip.spec.video_fps:g} fps)"]
    source = "speech recognition" if pred.transcript_source == "asr" else "typed"
    lines.append(f"**Transcript ({source}, {pred.text_windows} encoder window{'s' * (pred.text_windows > 1)}):** "
                 f"{plain_markdown(pred.transcript)}")
    return "\n\n".join(lines)


# ---- figures -----------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def colour_table(cmap: str) -> np.ndarray:
    """(256, 3) uint8 RGB lookup table of a matplotlib colormap."""
    return (matplotlib.colormaps[cmap](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)


def png_uri(rgb: np.ndarray) -> str:
    """(H, W, 3) uint8 RGB -> PNG data URI."""
    ok, png = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    return "data:image/png;base64," + base64.b64encode(png.tobytes()).decode()


def coloured(values: np.ndarray, cmap: str, vmin: float, vmax: float) -> np.ndarray:
    """2-D array -> (H, W, 3) uint8 RGB through the colormap's lookup table."""
    index = np.clip((values - vmin) / ((vmax - vmin) or 1.0) * 255, 0, 255).astype(np.uint8)
    return colour_table(cmap)[index]


def shrunk(values: np.ndarray, max_rows: int, max_columns: int) -> np.ndarray:
    """Area-average a 2-D array down to at most max_rows x max_columns (never up)."""
    h, w = values.shape
    size = (min(w, max_columns), min(h, max_rows))
    return values if size == (w, h) else cv2.resize(values.astype(np.float32), size, interpolation=cv2.INTER_AREA)


def heatmap_png(values: np.ndarray, cmap: str, vmin: float, vmax: float) -> str:
    """2-D array -> PNG data URI: area-averaged to at most MAP_SIDE (keeping its aspect), then coloured."""
    scale = min(1.0, MAP_SIDE / max(values.shape))
    rows, columns = round(values.shape[0] * scale), round(values.shape[1] * scale)
    return png_uri(coloured(shrunk(values, rows, columns), cmap, vmin, vmax))


def gradient_css(cmap: str) -> str:
    return "linear-gradient(90deg, " + ", ".join(f"rgb{tuple(int(c) for c in colour_table(cmap)[i])}"
                                                 for i in range(0, 256, 51)) + ")"


def tcf_scale(images: dict[str, np.ndarray]) -> float:
    """The colour scale's top shared by a clip's TCF images: its largest |product|."""
    return max((float(np.abs(x).max()) for x in images.values()), default=0.0) or 1.0


def _panel(title: str, values: np.ndarray, cmap: str, vmin: float, vmax: float, y_name: str, x_name: str,
           ticks: tuple[str, str], note: str = "", subtitle: str = "") -> str:
    extra = f'<p class="tcf-note">{note}</p>' if note else ""
    sub = f"<small>{subtitle}</small>" if subtitle else ""
    return (f'<figure class="tcf-panel"><figcaption>{title}{sub}</figcaption>'
            f'<div class="tcf-plot"><span class="tcf-ylabel">{y_name}</span>'
            f'<img src="{heatmap_png(values, cmap, vmin, vmax)}" alt="{title}"></div>'
            f'<div class="tcf-xlabel">{x_name}</div>'
            f'<div class="tcf-bar" style="background:{gradient_css(cmap)}"></div>'
            f'<div class="tcf-bar-ticks"><span>{ticks[0]}</span><span>{ticks[1]}</span></div>{extra}</figure>')


def tcf_html(pair: str, image: np.ndarray, maps: list[np.ndarray], top: float | None = None) -> str:
    """The pair's outer-product image, then (folded away) each Conv2d+ReLU output (channel mean). ``top``: the
    colour scale's top shared by the clip's three images (tcf_scale); default this image's own largest |value|.
    A non-negative image (ReLU expansions, the default) goes from dark 0 up; a signed one (fusion_activation
    "none") gets diverging colours around 0. Each conv map has its own scale: their ranges differ widely."""
    first, second = PAIR_NAMES[pair]
    if pair in TRANSPOSED:
        image, maps = image.T, [m.transpose(0, 2, 1) for m in maps]
    top = top or float(np.abs(image).max()) or 1.0
    rows, columns = image.shape
    if image.min() < 0:
        cmap, vmin, ticks = "RdBu_r", -top, (f"{-top:.3g} opposite signs", f"{top:.3g} same sign")
    else:
        cmap, vmin, ticks = "viridis", 0.0, ("0: one of the two is off", f"{top:.3g}: both strongly on")
    picture = _panel(f"{first} × {second}", image, cmap, vmin, top,
                     f"rows: {first} features 1–{rows} ({SENSES[first]}), 1 at the top",
                     f"columns: {second} features 1–{columns} ({SENSES[second]}), 1 at the left", ticks,
                     subtitle=f"each cell: one {first} feature × one {second} feature")
    conv = []
    for i, fmap in enumerate(maps, start=1):
        mean = fmap.mean(axis=0)
        title = f"pass {i}: {fmap.shape[0]} filter{'s, averaged' if fmap.shape[0] > 1 else ''}"
        low, high = float(mean.min()), float(mean.max())
        conv.append(_panel(title, mean, "magma", low, high, f"{first} side", f"{second} side",
                           (f"{low:.3g}", f"{high:.3g}"), ZERO_MAP if not mean.any() else ""))
    folded = (f'<details class="tcf-conv"><summary>What training\'s {len(maps)} filter passes make of it</summary>'
              f'<p class="tcf-note">In training, small 3×3 filters slide over the picture in {len(maps)} passes; a '
              'contrastive loss compares their output across clips. Each map has its own colour scale (darkest = its smallest '
              'value, brightest = its largest), because their ranges differ widely (on one scale most would be '
              'black): compare shapes, not brightness, between maps. Each pass trims one cell off every edge.</p>'
              f'<div class="tcf-panels">{"".join(conv)}</div></details>') if maps else ""
    return (f'<div class="tcf-pair" data-pair="{pair}">{picture}{folded}</div>')


def tcf_placeholder(pair: str) -> str:
    first, second = PAIR_NAMES[pair]
    return (f'<div class="tcf-pair tcf-empty" data-pair="{pair}"><div class="tcf-heading">{first} × {second}</div>'
            f'<p>After <b>Analyse</b>: the {first} × {second} picture of this clip, each cell one {first} feature '
            f'times one {second} feature.</p></div>')


def face_mesh_image(pred: Prediction) -> np.ndarray:
    return draw_face_mesh(pred.clip.key_frame, pred.clip.key_landmarks)


def face_mesh_html(pred: Prediction) -> str:
    ok, jpeg = cv2.imencode(".jpg", face_mesh_image(pred)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
    uri = "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode()
    return (f'<figure class="result-figure"><figcaption>Face mesh on a key frame</figcaption>'
            f'<img class="face-mesh" src="{uri}" alt="the face mesh drawn on a key frame of the clip"></figure>')


def picture_placeholder(what: str) -> str:
    """A picture slot before the first analysis (or after a refusal): what it will show, in words."""
    return f'<p class="slot-empty">After <b>Analyse</b>: {what}.</p>'


def time_axis(start_s: float, end_s: float) -> str:
    return (f'<div class="strip-axis"><span>{start_s:.1f}</span><span>time (s)</span>'
            f'<span>{end_s:.1f}</span></div>')


def colour_bar(cmap: str, low: str, high: str, name: str) -> str:
    return (f'<div class="strip-bar"><span>{low}</span><span class="strip-bar-fill" style="background:'
            f'{gradient_css(cmap)}"></span><span>{high}</span><span>{name}</span></div>')


def waveform_svg(wave: np.ndarray) -> str:
    """The waveform as its min/max envelope over at most STRIP_COLUMNS columns, scaled to its peak."""
    step = max(1, len(wave) // STRIP_COLUMNS)
    cols = wave[:len(wave) // step * step].reshape(-1, step)
    peak = float(np.abs(cols).max()) or 1.0
    top, bottom = 50 - 48 * cols.max(1) / peak, 50 - 48 * cols.min(1) / peak
    points = [f"{i},{y:.1f}" for i, y in enumerate(top)] + [f"{i},{y:.1f}" for i, y in reversed(list(enumerate(bottom)))]
    return (f'<svg class="strip-wave" viewBox="0 0 {max(len(cols) - 1, 1)} 100" preserveAspectRatio="none">'
            f'<polygon points="{" ".join(points)}" fill="#4c6ef5"/></svg>')


def audio_html(pred: Prediction) -> str:
    """Waveform, the acoustic features the model reads (each z-scored over the clip) and where a face was found,
    on one time axis; names, ticks and the colour bar are HTML."""
    clip = pred.clip
    feats = clip.audio
    z = (feats - feats.mean(0)) / (feats.std(0) + 1e-6)
    strip = png_uri(coloured(shrunk(z.T, z.shape[1], STRIP_COLUMNS), "coolwarm", -3, 3))
    face = png_uri(FACE_COLOURS[clip.face_mask.astype(np.uint8)][None])
    groups = "".join(f'<span style="flex:{rows}">{name}</span>' for name, rows in AUDIO_GROUPS)
    return (f'<figure class="result-figure strip-figure"><figcaption>Waveform, the {feats.shape[1]} acoustic features '
            'the model reads (each z-scored over the clip: blue below its mean, red above) and where a face was found'
            '</figcaption><div class="strip-plot">'
            f'<span class="strip-name">amplitude</span>{waveform_svg(clip.waveform)}'
            f'<span class="strip-name strip-groups">{groups}</span>'
            f'<img class="strip-features" src="{strip}" alt="acoustic features over time">'
            f'<span class="strip-name">face</span><img class="strip-face" src="{face}" alt="face found per frame">'
            f'</div>{time_axis(0.0, clip.duration_s)}{colour_bar("coolwarm", "−3", "+3", "z-score")}</figure>')


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
                          ha="center", va="center", fontsize=6.5, color="#333" if seg.text else "#999",
                          parse_math=False)   # a visitor's "$x^$" is text, not mathtext to parse
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
