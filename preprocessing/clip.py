"""One clip -> model-ready features: the single entry point shared by the app and the extraction CLI."""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .audio import audio_features
from .errors import NoFaceError
from .expression import frame_expressions
from .media import load_media
from .spec import FeatureSpec
from .visual import FaceMeshExtractor

DEFAULT_MAX_DURATION_S = 60.0


@dataclass
class ClipFeatures:
    audio: np.ndarray            # (La, spec.audio_dim) float32
    vision: np.ndarray           # (Lv, spec.visual_dim) float32, zero rows where no face
    face_mask: np.ndarray        # (Lv,) bool
    face_fraction: float         # share of sampled frames with a face
    waveform: np.ndarray         # (n,) float32 at sample_rate
    sample_rate: int
    duration_s: float
    frame_times: np.ndarray      # (Lv,) float32 seconds
    key_frame: np.ndarray        # (H, W, 3) uint8 RGB: a frame with a face, for display
    key_landmarks: np.ndarray    # (478, 3) float32, x and y normalised to the key frame
    expressions: np.ndarray | None   # (Lv, 7) float32 expression probabilities (expression.CLASSES), zero rows where
                                     # no face; None when neither asked for nor part of the spec. Shown to the
                                     # visitor; the model reads them only as vision's last 7 columns (spec version 2)
    spec: FeatureSpec
    timings: dict[str, float] = field(default_factory=dict)   # seconds per stage: decode, audio, visual, [expression,] total
    notices: list[str] = field(default_factory=list)          # what the user should know about the file (media.py)
    sound_track: bool = True     # False: the file has none; ``waveform`` is silence (media.py)
    faces_seen: int = 0          # the most faces seen in one frame; the features follow one (visual.py)


MAX_FACE_GRAPHS = 2   # each FaceMesh graph holds ~20 MB and two threads of its own
_graphs: OrderedDict[tuple, FaceMeshExtractor] = OrderedDict()
_graphs_lock = threading.Lock()


def face_extractor(spec: FeatureSpec) -> FaceMeshExtractor:
    """The process's FaceMesh graph for ``spec`` (building one takes ~100 ms; they cannot be pickled).
    Keyed by the settings the graph uses, not the frame rate, so any number of fps values share one;
    at most MAX_FACE_GRAPHS are kept, the least recently used is closed."""
    key = FaceMeshExtractor.settings(spec)
    with _graphs_lock:
        if key not in _graphs:
            _graphs[key] = FaceMeshExtractor(spec)
        _graphs.move_to_end(key)
        extractor = _graphs[key]
        evicted = [_graphs.popitem(last=False)[1] for _ in range(len(_graphs) - MAX_FACE_GRAPHS)]
    for old in evicted:
        old.close()
    return extractor


def extract_clip(path: str | os.PathLike, spec: FeatureSpec = FeatureSpec(),
                 max_duration_s: float | None = DEFAULT_MAX_DURATION_S, require_face: bool = True,
                 expressions: bool = True) -> ClipFeatures:
    """Decode ``path`` and compute its audio and visual features, and with ``expressions`` the facial
    expression probabilities of every sampled frame with a face (for display). A spec with expression
    columns (version 2) computes them anyway, appends them to the geometry in ``vision`` and returns them
    in ``expressions`` too.
    Raises a ``MediaError`` subclass with a user-facing message for anything wrong with the file
    (``NoFaceError`` if no sampled frame shows a face and ``require_face``)."""
    t0 = time.perf_counter()
    media = load_media(path, fps=spec.video_fps, sample_rate=spec.sample_rate, max_duration_s=max_duration_s)
    t1 = time.perf_counter()
    audio = audio_features(media.waveform, spec)
    t2 = time.perf_counter()
    track = face_extractor(spec)(media.frames)
    t3 = time.perf_counter()
    faces = np.flatnonzero(track.mask)
    if require_face and len(faces) == 0:
        raise NoFaceError(Path(path).name, len(track.mask))
    timings = {"decode": t1 - t0, "audio": t2 - t1, "visual": t3 - t2}
    probabilities, vision = None, track.features
    if expressions or spec.has_expressions:
        probabilities = frame_expressions(media.frames, track.landmarks, track.mask)
        timings["expression"] = time.perf_counter() - t3
    if spec.has_expressions:
        vision = np.concatenate([track.features, probabilities], axis=1)
    key = int(faces[len(faces) // 2]) if len(faces) else len(track.mask) // 2
    notices = media.notices + ([several_faces_notice(track.faces_seen, track.landmarks[key])]
                               if track.faces_seen > 1 and len(faces) else [])
    return ClipFeatures(
        audio=audio, vision=vision, face_mask=track.mask, face_fraction=float(track.mask.mean()),
        waveform=media.waveform, sample_rate=media.sample_rate, duration_s=media.duration_s,
        # copies: views would keep every decoded frame (~1 GB for a minute at 25 fps) alive in caches
        frame_times=media.frame_times, key_frame=media.frames[key].copy(), key_landmarks=track.landmarks[key].copy(),
        expressions=probabilities, spec=spec, timings={**timings, "total": time.perf_counter() - t0},
        notices=notices, sound_track=media.sound_track, faces_seen=track.faces_seen)


def several_faces_notice(n_faces: int, landmarks: np.ndarray) -> str:
    """Which face the analysis follows when the picture shows more than one (the rule is visual.py's)."""
    x = float(landmarks[:, 0].mean())
    where = "on the left" if x < 1 / 3 else "on the right" if x > 2 / 3 else "in the middle"
    return (f"{n_faces} faces are in the picture: the analysis follows the one {where} (the largest when a face "
            "was first found) and stays with that face in every frame; the face mesh shows which.")


def draw_face_mesh(image: np.ndarray, landmarks: np.ndarray, color: tuple[int, int, int] = (0, 220, 255)) -> np.ndarray:
    """Copy of RGB ``image`` with the face mesh drawn: thin tesselation, bold eyes/brows/lips/irises."""
    from mediapipe.python.solutions import face_mesh_connections as fmc
    out = np.ascontiguousarray(image).copy()
    if not np.any(landmarks):
        return out
    h, w = out.shape[:2]
    pts = np.round(landmarks[:, :2] * (w, h)).astype(np.int32)
    thick = max(1, round(max(h, w) / 400))
    for edges, col, t in ((fmc.FACEMESH_TESSELATION, (200, 200, 200), 1), (fmc.FACEMESH_CONTOURS, color, thick),
                          (fmc.FACEMESH_IRISES, (255, 80, 80), thick)):
        lines = [pts[[a, b]] for a, b in edges]
        cv2.polylines(out, lines, isClosed=False, color=col, thickness=t, lineType=cv2.LINE_AA)
    return out
