"""The score as both tabs show it: its polarity colours, the big number over a gauge, and the time-per-stage line."""

from __future__ import annotations

import numpy as np

POLARITY_COLOURS = {"negative": "#d9485f", "neutral": "#8a8f98", "positive": "#2f9e6e"}
STAGE_NAMES = {"audio": "acoustic", "explain": "word colours"}   # stages named as the page names them


def gauge_html(value_id: str, score: float, sentiment_class: str, polarity: str, label_range: float,
               context: str) -> str:
    """The signed score (element ``value_id``) with its class and ``context`` beside it, over a gauge from
    -range to +range with a marker at the (clipped) score."""
    r = label_range
    pos = 50.0 * (1 + np.clip(score, -r, r) / r)
    colour = POLARITY_COLOURS[polarity]
    return f"""<div class="score-top">
    <span id="{value_id}" class="score-value" style="color:{colour}">{score:+.2f}</span>
    <span class="score-labels"><b style="color:{colour}">{sentiment_class}</b><br>
      {context} · scale −{r:g} … +{r:g}</span>
  </div>
  <div class="gauge"><div class="gauge-marker" style="left:{pos:.1f}%"></div></div>
  <div class="gauge-ticks"><span>−{r:g}<br>negative</span><span>0<br>neutral</span><span>+{r:g}<br>positive</span></div>"""


def stages_line(timings: dict[str, float]) -> str:
    """Seconds per stage -> "decode 41 ms · acoustic 85 ms · ..."."""
    return " · ".join(f"{STAGE_NAMES.get(stage, stage)} {s * 1000:.0f} ms" for stage, s in timings.items())
