"""The page's CSS, all of it: the result card (score, gauge, contributions, notices), the TCF panels, the word
colours and the Live tab. app.py hands it to Gradio once."""

CSS = """
.score-card {padding: 12px 16px; border-radius: 12px; background: var(--block-background-fill);}
.score-top {display: flex; align-items: center; gap: 18px;}
.score-value {font-size: 3rem; font-weight: 700; font-variant-numeric: tabular-nums;}
.score-labels {font-size: 1.05rem; line-height: 1.5;}
.gauge {position: relative; height: 14px; margin: 10px 0 4px; border-radius: 7px;
        background: linear-gradient(90deg, #d9485f, #f2c14e 40%, #c9ccd1 50%, #9ad29a 60%, #2f9e6e);}
.gauge-marker {position: absolute; top: -5px; width: 6px; height: 24px; margin-left: -3px; border-radius: 3px;
               background: #111; box-shadow: 0 0 0 2px #fff;}
.gauge-ticks {display: flex; justify-content: space-between; font-size: .8rem; opacity: .75; text-align: center;}
.contrib {padding: 8px 16px;} .contrib-title {font-weight: 600; margin-bottom: 6px;}
.contrib-row {display: grid; grid-template-columns: 72px 1fr 56px; align-items: center; gap: 8px; margin: 4px 0;}
.contrib-track {position: relative; height: 12px; background: var(--background-fill-secondary); border-radius: 6px;}
.contrib-track::after {content: ""; position: absolute; left: 50%; top: -3px; bottom: -3px; width: 1px; background: #888;}
.contrib-bar {position: absolute; top: 0; bottom: 0; border-radius: 6px;}
.contrib-value {font-variant-numeric: tabular-nums; text-align: right;}
.contrib-note {font-size: .85rem; opacity: .85; margin-top: 6px;}
.score-notices {margin: 10px 0 0; padding: 0; list-style: none; font-size: .9rem;} .score-notices li {margin: 3px 0;}
.score-error {border: 2px solid #d9485f;}
.tcf-pair {margin: 4px 0 16px;} .tcf-heading {font-weight: 600; margin-bottom: 6px;}
.tcf-empty p, .score-empty p {margin: 0; padding: 14px; opacity: .75; border: 1px dashed var(--border-color-primary); border-radius: 8px;}
.tcf-pair.tcf-empty {padding: 0 12px;}   /* the same inset as the other placeholders (their blocks keep padding) */
.score-card.score-empty, .words-card.score-empty {padding: 0; background: none;}
.tcf-panels {display: grid; grid-template-columns: repeat(auto-fill, minmax(130px, 1fr)); gap: 12px;}
.tcf-panel {margin: 0; font-size: .8rem; min-width: 0;} .tcf-panel figcaption {font-weight: 600; margin-bottom: 2px;}
.tcf-pair > .tcf-panel > figcaption {font-size: 1rem;}
.tcf-panel figcaption small {display: block; font-weight: 400; font-size: .8rem; opacity: .85;}
.tcf-plot {display: flex; gap: 2px;} .tcf-plot img {flex: 1; min-width: 0; aspect-ratio: 1; image-rendering: pixelated;}
.tcf-ylabel {writing-mode: vertical-rl; transform: rotate(180deg); text-align: center; font-size: .72rem; opacity: .8;}
.tcf-xlabel {text-align: center; font-size: .72rem; opacity: .8; margin-left: 14px;}
.tcf-bar {height: 8px; border-radius: 3px; margin: 4px 0 0 14px;}
.tcf-bar-ticks {display: flex; justify-content: space-between; gap: 8px; margin-left: 14px; font-size: .7rem;
                font-variant-numeric: tabular-nums;}
.tcf-conv {margin-top: 10px; font-size: .85rem;} .tcf-conv summary {cursor: pointer; font-weight: 600;}
.tcf-note {margin: 4px 0 8px; font-size: .75rem; line-height: 1.3; opacity: .9;}
.block.tcf-map .html-container {padding: 0;}
#examples .container.table {width: 56px; height: 56px;}   /* compact rows: the results sit below them */
.block.tcf-map {flex: 1 1 320px !important; min-width: min(320px, 100%) !important;}  /* 3 abreast, 1 on a phone */
.tcf-map .tcf-panels {grid-template-columns: repeat(2, minmax(0, 1fr));}
.block:has(> .html-container > .prose:empty) {display: none;}   /* an empty slot leaves no gap */
/* a loaded clip: the upload / webcam buttons under it stay whole (the block's fixed height would cut them) */
.block:has(video):has(.source-selection) {height: auto !important;}
#transcript-count {font-size: .8rem; opacity: .75; text-align: right; margin-top: -6px;}
#transcript-count.at-limit {color: #d9485f; opacity: 1; font-weight: 600;}
.slot-empty {margin: 0; padding: 14px; opacity: .75; border: 1px dashed var(--border-color-primary); border-radius: 8px;}
.result-figure {margin: 0;} .result-figure figcaption {font-size: .85rem; font-weight: 600; margin-bottom: 6px;}
.result-figure img.face-mesh {display: block; max-width: 100%; max-height: 320px; margin: 0 auto; border-radius: 6px;}
.strip-plot {display: grid; grid-template-columns: 92px minmax(0, 1fr); gap: 3px 6px; align-items: stretch;}
.strip-plot img, .strip-wave {width: 100%; display: block; image-rendering: pixelated;}
.strip-wave {height: 56px;} .strip-features {height: 144px;} .strip-face {height: 12px;} .strip-expressions {height: 126px;}
.strip-name {font-size: .72rem; opacity: .85; text-align: right; align-self: center; line-height: 1.1;}
.strip-groups, .strip-classes {display: flex; flex-direction: column; align-self: stretch;}
.strip-groups span, .strip-classes span {flex: 1; display: flex; align-items: center; justify-content: flex-end;}
.strip-axis, .strip-bar {display: flex; justify-content: space-between; gap: 6px; margin-left: 98px; font-size: .72rem;
                         font-variant-numeric: tabular-nums;}
.strip-bar {justify-content: flex-start; align-items: center; margin-top: 4px;}
.strip-bar-fill {display: inline-block; width: 120px; height: 8px; border-radius: 3px;}
@media (max-width: 520px) {.score-value {font-size: 2.3rem;} .score-top {gap: 12px;}
  #intro h1 {font-size: 1.6rem; margin-bottom: 4px;} #intro p, #weights-banner p {font-size: .85rem; line-height: 1.35;}}

.words-card {padding: 8px 16px;} .words-text {line-height: 2.1; margin: 6px 0;}
.words-text .word {padding: 2px 4px; border-radius: 4px;}
.words-legend {display: grid; grid-template-columns: auto 1fr auto; gap: 8px; align-items: center; font-size: .8rem;}
.words-bar {height: 10px; border-radius: 5px;}
.voice-summary {padding: 4px 16px 12px; font-size: .95rem;}

.live-note {padding: 8px 12px; border-radius: 8px; font-size: .9rem; background: var(--background-fill-secondary);}
.live-blocked {border: 2px solid #d9485f;}
.live-timeline svg {width: 100%; height: 150px;}
.live-words {font-size: 1.1rem; min-height: 1.5em; margin: 8px 0;}
.live-words .none {opacity: .6;}
.live-expr-row {display: grid; grid-template-columns: 70px 1fr 44px; gap: 6px; align-items: center; font-size: .85rem;}
.live-expr-track {height: 8px; border-radius: 4px; background: var(--background-fill-secondary);}
.live-expr-bar {height: 8px; border-radius: 4px; background: #6c7bd9;}
.live-meta {font-size: .8rem; opacity: .75; margin-top: 6px;}
"""
