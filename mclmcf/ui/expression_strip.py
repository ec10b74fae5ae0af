"""The expression-over-time strip shown below the face mesh: one row per FER2013 expression, one column per
sampled frame, colour = the classifier's probability; frames without a face are left grey.

The probabilities are preprocessing.expression's reading of each frame's face crop; they are model inputs
only for weights trained on feature spec version 2 (the last 7 visual columns), and the title says which.
"""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from preprocessing.expression import CLASSES

from mclmcf.serving.pipeline import Prediction
from mclmcf.ui.result import to_rgb

NO_FACE = "#d9d9d9"


def frame_edges(times: np.ndarray, fps: float) -> np.ndarray:
    """Column edges in seconds: halfway between sampled frames, half a sampling step beyond the first and last."""
    half = 0.5 / fps
    return np.concatenate([[times[0] - half], (times[1:] + times[:-1]) / 2, [times[-1] + half]])


def expression_strip(pred: Prediction) -> np.ndarray:
    """RGB image of the strip for a prediction's clip."""
    clip = pred.clip
    values = np.ma.masked_array(clip.expressions.T, mask=np.broadcast_to(~clip.face_mask, clip.expressions.T.shape))
    fig = Figure(figsize=(6.4, 2.5), dpi=90, layout="constrained")
    ax = fig.subplots()
    colours = matplotlib.colormaps["viridis"].with_extremes(bad=NO_FACE)
    mesh = ax.pcolormesh(frame_edges(clip.frame_times, clip.spec.video_fps), np.arange(len(CLASSES) + 1), values,
                         cmap=colours, vmin=0, vmax=1)
    ax.set_yticks(np.arange(len(CLASSES)) + 0.5, CLASSES, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("time (s)", fontsize=8)
    ax.tick_params(labelsize=7)
    role = "an input of the score" if clip.spec.has_expressions else "not an input of the score"
    ax.set_title(f"Facial expression per frame: a FER2013 model's reading of the face, {role}\n"
                 "(not what the person feels; grey: no face found)", fontsize=8)
    fig.colorbar(mesh, ax=ax, label="probability", shrink=0.9).ax.tick_params(labelsize=7)
    return to_rgb(fig)
