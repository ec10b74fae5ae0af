"""Facial expression features from mediapipe 0.10.14 face mesh (the visual LSTM's input).

``solutions.face_mesh`` (bundled model, works offline) with ``refine_landmarks=True`` gives 478 3-D
landmarks per face (468 mesh + 10 iris). With several faces the largest one is used. Landmarks are
moved into head coordinates (origin between the outer eye corners, x along the eye line, y down the
forehead->chin line, z into the screen) and divided by the inter-ocular distance, so the features
ignore where the face is and how big it is. 16 columns (``spec.GEOMETRY_FEATURES``), in order:

  0 mouth_open    inner-lip gap (13-14)              8 brow_raise_r  eye top to brow (159-105)
  1 mouth_width   lip corners (61-291)               9 brow_gap      inner brow ends (107-336)
  2 mouth_ratio   open / width                      10 gaze_x        iris offset in the eye, horizontal
  3 smile         corner lift above lip centre      11 gaze_y        iris offset in the eye, vertical
  4 jaw_drop      nose tip to chin (1-152)          12 yaw           head turn (radians, eye line depth)
  5 eye_open_l    lid gap / eye width (386-374)     13 pitch         nod (radians, forehead-chin depth)
  6 eye_open_r    lid gap / eye width (159-145)     14 roll          tilt of the eye line (radians)
  7 brow_raise_l  eye top to brow (386-334)         15 lip_asym      left minus right corner height

Frames without a face get all-zero features and ``False`` in the mask. Version 2 specs append the
expression probabilities (``clip.extract_clip``, from ``FaceTrack.landmarks``).
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass

import numpy as np

from .spec import GEOMETRY_FEATURES, FeatureSpec

# mediapipe face mesh landmark indices ("right"/"left" are the subject's)
EYE_R_OUT, EYE_R_IN, EYE_R_TOP, EYE_R_BOT, IRIS_R = 33, 133, 159, 145, 468
EYE_L_OUT, EYE_L_IN, EYE_L_TOP, EYE_L_BOT, IRIS_L = 263, 362, 386, 374, 473
LIP_TOP, LIP_BOT, LIP_R, LIP_L = 13, 14, 61, 291
BROW_R, BROW_L, BROW_R_IN, BROW_L_IN = 105, 334, 107, 336
NOSE, CHIN, FOREHEAD = 1, 152, 10


@dataclass
class FaceTrack:
    features: np.ndarray    # (Lv, 16) float32 geometry features
    mask: np.ndarray        # (Lv,) bool: a face was found
    landmarks: np.ndarray   # (Lv, 478, 3) float32 in image-normalised coords (x, y in [0,1]); 0 if no face


class FaceMeshExtractor:
    """Owns a mediapipe FaceMesh graph (not picklable, not thread-safe: one per process, calls locked)."""

    def __init__(self, spec: FeatureSpec = FeatureSpec(), max_faces: int = 3):
        self.spec = spec
        self.max_faces = max_faces
        self.mesh = self._new_mesh()
        self.lock = threading.Lock()

    @staticmethod
    def settings(spec: FeatureSpec) -> tuple:
        """What the graph and the features computed from it depend on: specs equal here share a graph."""
        return (spec.min_face_confidence,)

    def _new_mesh(self):
        import mediapipe as mp  # heavy import, only when faces are needed
        return mp.solutions.face_mesh.FaceMesh(
            static_image_mode=False, max_num_faces=self.max_faces, refine_landmarks=True,
            min_detection_confidence=self.spec.min_face_confidence, min_tracking_confidence=0.5)

    def __call__(self, frames: np.ndarray) -> FaceTrack:
        """(Lv, H, W, 3) uint8 RGB frames of one clip, in time order -> FaceTrack."""
        n, h, w = frames.shape[:3]
        feats = np.zeros((n, len(GEOMETRY_FEATURES)), np.float32)
        mask = np.zeros(n, bool)
        marks = np.zeros((n, 478, 3), np.float32)
        with self.lock, warnings.catch_warnings():
            # mediapipe's protobuf use warns about a deprecated API on every frame
            warnings.filterwarnings("ignore", message="SymbolDatabase.GetPrototype", category=UserWarning)
            # closed (evicted from the cache) after the caller got it: a graph for this call only
            mesh = self.mesh or self._new_mesh()
            mesh.reset()   # tracking state must not leak from the previous clip
            try:
                for i, frame in enumerate(frames):
                    result = mesh.process(np.ascontiguousarray(frame))
                    if not result.multi_face_landmarks:
                        continue
                    faces = [np.array([(p.x, p.y, p.z) for p in f.landmark], np.float32)
                             for f in result.multi_face_landmarks]
                    marks[i] = max(faces, key=_area)
                    feats[i] = expression_features(marks[i] * (w, h, w))
                    mask[i] = True
            finally:
                if mesh is not self.mesh:
                    mesh.close()
        return FaceTrack(feats, mask, marks)

    def close(self) -> None:
        """Stop the graph and free its threads; waits for a running call to finish."""
        with self.lock:
            if self.mesh is not None:
                self.mesh.close()
                self.mesh = None


def _area(lm: np.ndarray) -> float:
    span = lm[:, :2].max(0) - lm[:, :2].min(0)
    return float(span[0] * span[1])


def expression_features(p: np.ndarray) -> np.ndarray:
    """(478, 3) landmarks in pixels (z scaled like x) -> (16,) features, see the module docstring."""
    iod = np.linalg.norm(p[EYE_L_OUT] - p[EYE_R_OUT]) + 1e-6
    ex = (p[EYE_L_OUT] - p[EYE_R_OUT]) / iod
    ey = p[CHIN] - p[FOREHEAD]
    ey = ey - ey.dot(ex) * ex
    ey /= np.linalg.norm(ey) + 1e-6
    ez = np.cross(ex, ey)
    q = (p - (p[EYE_L_OUT] + p[EYE_R_OUT]) / 2) @ np.stack([ex, ey, ez]).T / iod

    def dist(a: int, b: int) -> float:
        return float(np.linalg.norm(q[a] - q[b]))

    mouth_open = q[LIP_BOT, 1] - q[LIP_TOP, 1]
    mouth_width = dist(LIP_R, LIP_L)
    smile = (q[LIP_TOP, 1] + q[LIP_BOT, 1]) / 2 - (q[LIP_R, 1] + q[LIP_L, 1]) / 2
    eye_w_l, eye_w_r = dist(EYE_L_IN, EYE_L_OUT) + 1e-6, dist(EYE_R_IN, EYE_R_OUT) + 1e-6
    gaze = []
    for iris, a, b, top, bot, ew in ((IRIS_R, EYE_R_OUT, EYE_R_IN, EYE_R_TOP, EYE_R_BOT, eye_w_r),
                                     (IRIS_L, EYE_L_IN, EYE_L_OUT, EYE_L_TOP, EYE_L_BOT, eye_w_l)):
        gaze.append([(q[iris, 0] - (q[a, 0] + q[b, 0]) / 2) / ew, (q[iris, 1] - (q[top, 1] + q[bot, 1]) / 2) / ew])
    gaze_x, gaze_y = np.mean(gaze, axis=0)
    out = [mouth_open, mouth_width, mouth_open / (mouth_width + 1e-6), smile, dist(NOSE, CHIN),
           dist(EYE_L_TOP, EYE_L_BOT) / eye_w_l, dist(EYE_R_TOP, EYE_R_BOT) / eye_w_r,
           q[EYE_L_TOP, 1] - q[BROW_L, 1], q[EYE_R_TOP, 1] - q[BROW_R, 1], dist(BROW_R_IN, BROW_L_IN),
           gaze_x, gaze_y,
           np.arctan2(ex[2], ex[0]), np.arctan2(ey[2], ey[1]), np.arctan2(ex[1], ex[0]),
           q[LIP_R, 1] - q[LIP_L, 1]]
    return np.nan_to_num(np.asarray(out, np.float32))
