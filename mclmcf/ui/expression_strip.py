"""The expression-over-time strip shown below the face mesh: one row per FER2013 expression, one column per
sampled frame, colour = the classifier's probability; frames without a face are left grey.

The probabilities are preprocessing.expression's reading of each frame's face crop; they are model inputs
only for weights trained on feature spec version 2 (the last 7 visual columns), and the title says which.
The strip is a colour-lookup PNG inside HTML, so the title and the names read at any screen width.
"""

from __future__ import annotations

import numpy as np

from preprocessing.expression import CLASSES

from mclmcf.serving.prediction import Prediction
from mclmcf.ui.result import coloured, colour_bar, png_uri, time_axis

NO_FACE = (217, 217, 217)


def frame_edges(times: np.ndarray, fps: float) -> np.ndarray:
    """Column edges in seconds: halfway between sampled frames, half a sampling step beyond the first and last."""
    half = 0.5 / fps
    return np.concatenate([[times[0] - half], (times[1:] + times[:-1]) / 2, [times[-1] + half]])


def strip_rgb(expressions: np.ndarray, face_mask: np.ndarray) -> np.ndarray:
    """(classes, frames, 3) RGB: each probability through viridis, frames without a face grey."""
    rgb = coloured(expressions.T, "viridis", 0.0, 1.0)
    rgb[:, ~face_mask] = NO_FACE
    return rgb


def expression_strip(pred: Prediction) -> str:
    """The strip for a prediction's clip, as HTML."""
    clip = pred.clip
    edges = frame_edges(clip.frame_times, clip.spec.video_fps)
    role = "an input of the score" if clip.spec.has_expressions else "not an input of the score"
    names = "".join(f"<span>{name}</span>" for name in CLASSES)
    return (f'<figure class="result-figure strip-figure"><figcaption>Facial expression per frame: a FER2013 model\'s '
            f'reading of the face, {role} (not what the person feels; grey: no face found)</figcaption>'
            f'<div class="strip-plot"><span class="strip-name strip-classes">{names}</span>'
            f'<img class="strip-expressions" src="{png_uri(strip_rgb(clip.expressions, clip.face_mask))}" '
            f'alt="facial expression probabilities per frame"></div>'
            f'{time_axis(max(0.0, edges[0]), edges[-1])}{colour_bar("viridis", "0", "1", "probability")}</figure>')
