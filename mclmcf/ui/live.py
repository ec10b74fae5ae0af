"""HTML for the Live tab: the running score's gauge, the last minute's timeline (inline SVG: no figure to
render each second), the words heard coloured as the word card colours them, the facial-expression evidence, and
the busy / permission notes."""

from __future__ import annotations

import html

import numpy as np

from mclmcf.serving.live import LiveUpdate
from mclmcf.ui.score import POLARITY_COLOURS, gauge_html, stages_line
from mclmcf.ui.words import coloured_words

PLACEHOLDER = ('<div class="score-card score-empty"><p>Start the <b>microphone</b> (and the camera) above: the '
               'running score appears here about a second after you start talking.</p></div>')
PERMISSIONS = """
<div id="live-permissions" class="live-note">The browser asks to use the <b>camera</b> and the <b>microphone</b>:
allow both for this site. If you said no, click the camera or lock icon in the address bar, allow them, and reload
the page. They only work on <b>https://</b> pages (or on localhost).</div>"""
# Run when the Live tab opens: says at once what the browser will not allow, instead of a silent dead stream
PERMISSIONS_CHECK_JS = """
async () => {
  if (!window.isSecureContext || !navigator.mediaDevices)
    return '<div id="live-blocked" class="live-note live-blocked">This page is not served over <b>https://</b>, so the ' +
           'browser offers no camera or microphone here. Open it through https:// (Hugging Face Spaces does) or on localhost.</div>';
  const blocked = [];
  for (const name of ['microphone', 'camera']) {
    try { if ((await navigator.permissions.query({name})).state === 'denied') blocked.push(name); } catch (e) {}
  }
  if (!blocked.length) return '';
  return '<div id="live-blocked" class="live-note live-blocked">The browser blocks the <b>' + blocked.join('</b> and the <b>') +
         '</b> for this site: click the camera or lock icon in the address bar, allow ' +
         (blocked.length > 1 ? 'them' : 'it') + ', and reload the page.' +
         (blocked.includes('microphone') ? ' The live score needs the microphone (the words drive it).' : '') + '</div>';
}
"""
TIMELINE_W, TIMELINE_H = 600, 150


def panel_html(update: LiveUpdate | str, window_s: float, history_s: float) -> str:
    """Score gauge, the last minute's timeline, the words and the expression evidence of one update
    (or, for a string, what went wrong)."""
    if isinstance(update, str):
        return ended_html(update)
    if update.words is None:
        words = ('<span class="none">(speech recognition is off on this server: the score rests on the voice and '
                 'the face)</span>')
    elif update.attributions is not None and update.attributions.words:
        words = (f'<span id="live-words-text">{coloured_words(update.attributions)}</span>'
                 '<br><small class="live-words-legend">blue: pushed the score up · orange: pushed it down, compared '
                 'with the same voice and face and no words</small>')
    elif update.words:
        words = f'<span id="live-words-text">{html.escape(update.words)}</span>'
    else:
        words = f'<span class="none">(no words heard in the last {window_s:g} s)</span>'
    gauge = gauge_html("live-score", update.score, update.sentiment_class, update.polarity, update.label_range,
                       f"the last {window_s:g} s")
    return f"""
<div id="live-panel" class="score-card" data-score="{update.score:.4f}" data-end="{update.end_s:.2f}">
  {gauge}
  <div id="live-words" class="live-words"><small>Heard:</small> {words}</div>
  {timeline_svg(update.history, update.end_s, update.label_range, history_s)}
  {expressions_html(update.expressions, update.face_fraction)}
  <div class="live-meta">at {update.end_s:.1f} s · {stages_line(update.timings)}</div>
</div>"""


def timeline_svg(history: list[tuple[float, float]], now_s: float, label_range: float, history_s: float) -> str:
    """The scores of the last history_s seconds against time before now; green above zero, red below."""
    def x(t: float) -> float:
        return TIMELINE_W * (1 - (now_s - t) / history_s)

    def y(s: float) -> float:
        return TIMELINE_H / 2 * (1 - np.clip(s, -label_range, label_range) / label_range)

    points = " ".join(f"{x(t):.1f},{y(s):.1f}" for t, s in history)
    dots = "".join(f'<circle cx="{x(t):.1f}" cy="{y(s):.1f}" r="2.5" '
                   f'fill="{POLARITY_COLOURS["positive" if s >= 0 else "negative"]}"/>' for t, s in history)
    ticks = "".join(f'<text x="{x(now_s - a):.0f}" y="{TIMELINE_H - 3}" font-size="10" fill="#888" '
                    f'text-anchor="middle">−{a:g} s</text>' for a in np.arange(10, history_s, 10))
    return f"""
<div id="live-timeline" class="live-timeline"><svg viewBox="0 0 {TIMELINE_W} {TIMELINE_H}" preserveAspectRatio="none"
  role="img" aria-label="score over the last {history_s:g} seconds">
  <line x1="0" y1="{TIMELINE_H / 2}" x2="{TIMELINE_W}" y2="{TIMELINE_H / 2}" stroke="#aaa" stroke-width="1"/>
  {ticks}<polyline points="{points}" fill="none" stroke="#555" stroke-width="1.5"/>{dots}
  <text x="4" y="12" font-size="10" fill="#888">+{label_range:g}</text>
  <text x="4" y="{TIMELINE_H - 14}" font-size="10" fill="#888">−{label_range:g}</text>
</svg></div>"""


def expressions_html(expressions: dict[str, float] | None, face_fraction: float) -> str:
    """Mean expression probabilities over the window's faces (the FER2013 model's reading, not a feeling)."""
    if expressions is None:
        return ('<div id="live-expressions" class="live-meta">No face in view (camera off, or no face in the frames '
                'it sent): the score rests on the words and the voice.</div>')
    rows = "".join(f'<div class="live-expr-row"><span>{name}</span><div class="live-expr-track">'
                   f'<div class="live-expr-bar" style="width:{100 * p:.0f}%"></div></div><span>{p:.0%}</span></div>'
                   for name, p in sorted(expressions.items(), key=lambda kv: -kv[1])[:4])
    return (f'<div id="live-expressions"><div class="live-meta">Facial expression (face in {face_fraction:.0%} of the '
            f'window)</div>{rows}</div>')


def busy_html(max_sessions: int) -> str:
    return (f'<div id="live-busy" class="score-card score-error"><b>Live mode is busy.</b> This server scores '
            f'{max_sessions} live stream{"s" * (max_sessions > 1)} at a time and they are all taken. Keep this tab '
            'open: it joins as soon as one frees up (a stream lasts at most 10 minutes), or analyse a recorded clip in '
            'the first tab meanwhile.</div>')


def ended_html(reason: str) -> str:
    return f'<div id="live-ended" class="score-card score-empty"><p>{html.escape(reason)}</p></div>'
