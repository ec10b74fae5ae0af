"""What the visitor reads: error messages made safe to show, file sizes, and the score's labels."""

from __future__ import annotations

import html

import numpy as np

SEVEN_CLASSES = ("strongly negative", "negative", "weakly negative", "neutral", "weakly positive",
                 "positive", "strongly positive")


def sentiment_labels(score: float, label_range: float) -> tuple[str, str]:
    """(7-class label, polarity): clip to the scale, map it onto [-3, 3], round (MOSI's Acc-7 rule;
    Acc-3's "neutral" is the same |score| < 0.5 band on MOSI's scale)."""
    k = int(np.round(np.clip(score, -label_range, label_range) * 3.0 / label_range))
    return SEVEN_CLASSES[k + 3], ("negative", "neutral", "positive")[int(np.sign(k)) + 1]


def user_message(err: BaseException | str) -> str:
    """An error's message as the page shows it: HTML-escaped (Gradio renders error messages as HTML and
    they quote what the visitor sent) and encodable (a lone surrogate would break the JSON reply)."""
    return html.escape(str(err), quote=False).encode("utf-8", "replace").decode("utf-8")


def shown(value) -> str:
    """A setting as an error message quotes it: numbers as numbers, anything else quoted and short."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:g}"
    return repr(str(value)[:40])


def megabytes(n: int) -> str:
    """Bytes in MB (10^6 bytes), with one decimal only where it is not zero: "50 MB", "0.5 MB"."""
    return f"{n / 1e6:.1f}".removesuffix(".0") + " MB"


def size_over(size: int, limit: int) -> str:
    """A file size past ``limit``, written so that it never reads the same as the limit."""
    return megabytes(size) if megabytes(size) != megabytes(limit) else f"{size:,} bytes"
