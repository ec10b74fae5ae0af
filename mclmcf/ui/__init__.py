"""What the page shows: the Analyse tab's outputs (page), the score both tabs draw (score), the analysis result,
word colours, the expression strip, the Live tab, and all of the CSS (style)."""
