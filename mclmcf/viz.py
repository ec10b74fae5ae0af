"""Pictures and HTML for a Prediction: score gauge, contributions, TCF heatmaps, face mesh, audio.

Figures are drawn with matplotlib's object API (``Figure`` + Agg canvas, no pyplot global state),
so concurrent requests can render at the same time, and returned as RGB arrays.
"""

from __future__ import annotations

import html
import textwrap

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from preprocessing import draw_face_mesh

from .pipeline import Prediction, Segment

PAIR_NAMES = {"ta": ("text", "acoustic"), "tv": ("text", "visual"), "av": ("acoustic", "visual")}
POLARITY_COLOURS = {"negative": "#d9485f", "neutral": "#8a8f98", "positive": "#2f9e6e"}
AUDIO_GROUPS = ((0, "MFCC"), (13, "ΔMFCC"), (26, "ΔΔMFCC"), (39, "prosody+\nspectrum"))


def to_rgb(fig: Figure) -> np.ndarray:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


# ---- HTML --------------------------------------------------------------------------------------

def score_card_html(pred: Prediction) -> str:
    """Score, labels and a gauge from -range to +range with a marker at the (clipped) score."""
    r = pred.label_range
    pos = 50.0 * (1 + np.clip(pred.score, -r, r) / r)
    colour = POLARITY_COLOURS[pred.polarity]
    return f"""
<div class="score-card">
  <div class="score-top">
    <span id="sentiment-score" class="score-value" style="color:{colour}">{pred.score:+.2f}</span>
    <span class="score-labels"><b style="color:{colour}">{pred.sentiment_class}</b><br>
      polarity: {pred.polarity} · scale −{r:g} … +{r:g}</span>
  </div>
  <div class="gauge"><div class="gauge-marker" style="left:{pos:.1f}%"></div></div>
  <div class="gauge-ticks"><span>−{r:g}<br>negative</span><span>0<br>neutral</span><span>+{r:g}<br>positive</span></div>
</div>"""


def contributions_html(pred: Prediction) -> str:
    """One diverging bar per modality: how much it moved the score (full minus neutralised)."""
    r = pred.label_range
    rows = []
    for name, delta in pred.contributions.items():
        width = 50.0 * min(1.0, abs(delta) / r)
        side = f"left:50%;width:{width:.1f}%" if delta >= 0 else f"left:{50 - width:.1f}%;width:{width:.1f}%"
        colour = POLARITY_COLOURS["positive" if delta >= 0 else "negative"]
        rows.append(f'<div class="contrib-row"><span class="contrib-name">{name}</span>'
                    f'<div class="contrib-track"><div class="contrib-bar" style="{side};background:{colour}"></div></div>'
                    f'<span class="contrib-value">{delta:+.2f}</span></div>')
    return ('<div class="contrib"><div class="contrib-title">Per-modality contribution '
            '<small>(score − score with that modality neutralised)</small></div>' + "".join(rows) + "</div>")


def details_markdown(pred: Prediction, source: str, device: str, trained_on: str) -> str:
    stages = " · ".join(f"{k} {v * 1000:.0f} ms" for k, v in pred.timings.items())
    cached = " (audio/visual features re-used from the cache: no decoding or feature extraction)" if pred.features_cached else ""
    lines = [f"**Weights:** `{html.escape(source)}` on **{device}** · **trained on:** {html.escape(trained_on)}",
             f"**Time per stage:** {stages}{cached}",
             f"**Clip:** {pred.clip.duration_s:.1f} s · face in {pred.clip.face_fraction:.0%} of "
             f"{len(pred.clip.face_mask)} sampled frames ({pred.clip.spec.video_fps:g} fps)"]
    source = "speech recognition" if pred.transcript_source == "asr" else "typed"
    lines.append(f"**Transcript ({source}, {pred.text_windows} encoder window{'s' * (pred.text_windows > 1)}):** "
                 f"{html.escape(pred.transcript)}")
    lines += [f"⚠️ {html.escape(n)}" for n in pred.notices]
    return "\n\n".join(lines)


# ---- figures -----------------------------------------------------------------------------------

def tcf_figure(pair: str, image: np.ndarray, maps: list[np.ndarray]) -> np.ndarray:
    """The pair's outer-product image and each Conv2d+ReLU output (channel mean), with colour bars."""
    first, second = PAIR_NAMES[pair]
    fig = Figure(figsize=(3.1 * (1 + len(maps)), 3.0), dpi=90, layout="constrained")
    axes = fig.subplots(1, 1 + len(maps))
    lim = float(np.abs(image).max()) or 1.0
    im = axes[0].imshow(image, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    axes[0].set_title(f"{first} × {second} image ({image.shape[0]}²)", fontsize=9)
    axes[0].set_ylabel(f"{first} h′ index", fontsize=8)
    axes[0].set_xlabel(f"{second} h′ index", fontsize=8)
    fig.colorbar(im, ax=axes[0], shrink=0.8)
    for i, (ax, fmap) in enumerate(zip(axes[1:], maps), start=1):
        im = ax.imshow(fmap.mean(axis=0), cmap="magma", interpolation="nearest")
        ax.set_title(f"conv{i} + ReLU ({fmap.shape[0]} ch{', mean' if fmap.shape[0] > 1 else ''})", fontsize=9)
        ax.set_xlabel("x (px)", fontsize=8)
        ax.set_ylabel("y (px)", fontsize=8)
        fig.colorbar(im, ax=ax, shrink=0.8)
    for ax in axes:
        ax.tick_params(labelsize=7)
    return to_rgb(fig)


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
    ax_wave.set_title("Audio waveform and the acoustic features the model reads", fontsize=9)
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
    ax.set_title(f"Score per window: its audio, its face and {words}", fontsize=9)
    ax.tick_params(labelsize=7)
    return to_rgb(fig)
