"""Facial expression features from mediapipe 0.10.14 face mesh (the visual LSTM's input).

``solutions.face_mesh`` (bundled model, works offline) with ``refine_landmarks=True`` gives 478 3-D
landmarks per face (468 mesh + 10 iris), on the whole frame and tracked from frame to frame, as always
for a close-up. Its own detector is short-range: it misses a face under about a fifth of the frame height
(a person at a table 2-3 m from the camera). Such a face is found with the full-range detector
(``solutions.face_detection``, ``model_selection=1``) on square tiles of the frame, and a second mesh
reads a ``CROP_PX`` square crop around it, where it is a close-up; the crop then follows the face's
landmarks, the detector runs again when the face is lost and every ``COUNT_EVERY`` frames.

Several faces: the largest face found first is analysed, then the same face is followed (the one nearest
its last place, within its size) even when another grows larger or comes nearer; ``FaceTrack.faces_seen``
says how many were seen in one frame at most. Landmarks are
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

import cv2
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
    faces_seen: int = 0     # the most faces seen in one frame (mesh or detector); the track follows one of them


CROP_PX = 256         # side of the square the second mesh reads: a close-up for its short-range detector
CROP_SCALE = 2.0      # crop side / the face's size (the larger side of its landmarks' or detection's box)
DETECTION_SIZE = 1.25   # landmark span / the full-range detector's box side (so a crop frames both alike)
SMALL_FACE = 0.2      # a followed face smaller than this share of the frame's shorter side is read in a crop
COUNT_EVERY = 20      # frames between detector runs while a small face is followed, to count the faces in view
                      # (2 s at 10 fps; each run costs 2.5 crop-mesh frames: 3 tiles of a 640x360 frame)
SMALLEST_FACE_PX = 24   # smaller faces are not looked for (an 8 % face in a 640x360 frame is 29 px tall): in frames
                        # whose shorter side is under SMALLEST_FACE_PX / SMALL_FACE (120 px), the mesh alone looks


def tiles(width: int, height: int) -> list[tuple[int, int, int]]:
    """(x, y, side) squares of the frame's shorter side covering it, overlapping by at least a third: the
    full-range detector squeezes its input to 192 x 192, where a whole 16:9 frame would leave a 12 % face
    13 px tall, too small; a square tile keeps it at 23 px (it finds faces down to about 15 px)."""
    side, long = min(width, height), max(width, height)
    n = 1 + int(np.ceil(2 * (long - side) / side))
    offsets = np.linspace(0, long - side, n).round().astype(int)
    return [(int(o), 0, side) if width >= height else (0, int(o), side) for o in offsets]


class Graphs:
    """The mediapipe graphs: the whole-frame face mesh, and the full-range detector and crop mesh, built the
    first time a frame shows no face the whole-frame mesh finds (each graph holds ~20 MB and threads)."""

    def __init__(self, confidence: float, max_faces: int):
        import mediapipe as mp  # heavy import, only when faces are needed
        self.solutions, self.confidence = mp.solutions, confidence
        self.mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=False, max_num_faces=max_faces, refine_landmarks=True,
            min_detection_confidence=confidence, min_tracking_confidence=0.5)
        self._small = None

    def small(self) -> tuple:
        """(detector, crop mesh)."""
        if self._small is None:
            detector = self.solutions.face_detection.FaceDetection(model_selection=1,
                                                                  min_detection_confidence=self.confidence)
            # static: each crop is searched afresh (the crop follows the face); two faces, to keep the centred one
            crop_mesh = self.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=2,
                                                          refine_landmarks=True, min_detection_confidence=self.confidence)
            self._small = detector, crop_mesh
        return self._small

    def close(self) -> None:
        for graph in (self.mesh, *(self._small or ())):
            graph.close()


class FaceMeshExtractor:
    """Owns the mediapipe graphs (not picklable, not thread-safe: one per process, calls locked)."""

    def __init__(self, spec: FeatureSpec = FeatureSpec(), max_faces: int = 3):
        self.spec = spec
        self.max_faces = max_faces
        self.graphs = self._new_graphs()
        self.lock = threading.Lock()

    @staticmethod
    def settings(spec: FeatureSpec) -> tuple:
        """What the graph and the features computed from it depend on: specs equal here share a graph."""
        return (spec.min_face_confidence,)

    def _new_graphs(self) -> Graphs:
        return Graphs(self.spec.min_face_confidence, self.max_faces)

    def __call__(self, frames: np.ndarray) -> FaceTrack:
        """(Lv, H, W, 3) uint8 RGB frames of one clip, in time order -> FaceTrack."""
        n, h, w = frames.shape[:3]
        feats = np.zeros((n, len(GEOMETRY_FEATURES)), np.float32)
        mask = np.zeros(n, bool)
        marks = np.zeros((n, 478, 3), np.float32)
        seen, followed, last = 0, None, None   # followed: (cx, cy, size) px of the face in the previous frame
        with self.lock, warnings.catch_warnings():
            # mediapipe's protobuf use warns about a deprecated API on every frame
            warnings.filterwarnings("ignore", message="SymbolDatabase.GetPrototype", category=UserWarning)
            # closed (evicted from the cache) after the caller got it: graphs for this call only
            graphs = self.graphs or self._new_graphs()
            graphs.mesh.reset()   # tracking state must not leak from the previous clip
            try:
                for i, frame in enumerate(frames):
                    frame = np.ascontiguousarray(frame)
                    found = None
                    if followed is None or followed[2] >= SMALL_FACE * min(h, w):
                        faces = [f * (w, h, w) for f in mesh_faces(graphs.mesh, frame)]
                        seen = max(seen, len(faces))
                        if faces:
                            boxes = [landmark_box(f) for f in faces]
                            found = faces[boxes.index(choose(boxes, followed or last))]
                    if found is None and SMALL_FACE * min(h, w) > SMALLEST_FACE_PX:
                        found, count = small_face(*graphs.small(), frame, followed, last, i % COUNT_EVERY == 0)
                        seen = max(seen, count)
                    if found is None:
                        last, followed = followed or last, None
                        continue
                    marks[i] = found / (w, h, w)
                    feats[i] = expression_features(found)
                    mask[i] = True
                    followed = last = landmark_box(found)
            finally:
                if graphs is not self.graphs:
                    graphs.close()
        return FaceTrack(feats, mask, marks, seen)

    def close(self) -> None:
        """Stop the graphs and free their threads; waits for a running call to finish."""
        with self.lock:
            if self.graphs is not None:
                self.graphs.close()
                self.graphs = None


def mesh_faces(mesh, image: np.ndarray) -> list[np.ndarray]:
    """Every face the mesh finds in ``image``: (478, 3) landmarks normalised to it (z scaled like x)."""
    result = mesh.process(image)
    return [np.array([(p.x, p.y, p.z) for p in f.landmark], np.float32) for f in result.multi_face_landmarks or []]


def small_face(detector, crop_mesh, frame: np.ndarray, followed, last, recount: bool) -> tuple:
    """(landmarks in frame pixels or None, faces the detector saw) for a face too small for the whole-frame
    mesh: the crop follows ``followed``; the detector runs when there is none, when ``recount``, and when the
    followed face is lost."""
    boxes = detect(detector, frame) if followed is None or recount else None
    target = followed or (choose(boxes, last) if boxes else None)
    found = None if target is None else mesh_in_crop(crop_mesh, frame, target)
    if found is None and boxes is None:      # the followed face is lost: look again before giving up
        boxes = detect(detector, frame)
        target = choose(boxes, followed) if boxes else None
        found = None if target is None else mesh_in_crop(crop_mesh, frame, target)
    return found, len(boxes or [])


def detect(detector, frame: np.ndarray) -> list[tuple[float, float, float]]:
    """Faces the full-range detector finds on the frame's tiles, as (cx, cy, size) px in the size of a landmark
    span, duplicates from overlapping tiles merged (the larger kept)."""
    h, w = frame.shape[:2]
    boxes = []
    for x, y, side in tiles(w, h):
        result = detector.process(frame[y:y + side, x:x + side])
        for d in result.detections or []:
            b = d.location_data.relative_bounding_box
            boxes.append((x + (b.xmin + b.width / 2) * side, y + (b.ymin + b.height / 2) * side,
                          DETECTION_SIZE * max(b.width, b.height) * side))
    boxes.sort(key=lambda b: -b[2])      # merged into the larger of two overlapping boxes
    kept = []
    for b in boxes:
        if all(np.hypot(b[0] - k[0], b[1] - k[1]) > 0.5 * max(b[2], k[2]) for k in kept):
            kept.append(b)
    return kept


def choose(boxes: list[tuple[float, float, float]], last: tuple[float, float, float] | None):
    """The face to follow among (cx, cy, size) boxes: the one nearest where the followed face was last (within
    its size), else the largest."""
    if last is not None:
        near = min(boxes, key=lambda b: np.hypot(b[0] - last[0], b[1] - last[1]))
        if np.hypot(near[0] - last[0], near[1] - last[1]) < max(near[2], last[2]):
            return near
    return max(boxes, key=lambda b: b[2])


def landmark_box(points: np.ndarray) -> tuple[float, float, float]:
    """(cx, cy, size) px of a face's mesh points: their bounding box's centre and larger side."""
    lo, hi = points[:468, :2].min(0), points[:468, :2].max(0)
    return float((lo[0] + hi[0]) / 2), float((lo[1] + hi[1]) / 2), float(max(hi - lo))


def mesh_in_crop(crop_mesh, frame: np.ndarray, face: tuple[float, float, float]) -> np.ndarray | None:
    """The (478, 3) landmarks in frame pixels (z scaled like x) of the face the mesh finds nearest the centre of
    a CROP_PX square around ``face``, or None."""
    cx, cy, size = face
    side = CROP_SCALE * size
    k = CROP_PX / side
    crop = cv2.warpAffine(frame, np.float32([[k, 0, CROP_PX / 2 - k * cx], [0, k, CROP_PX / 2 - k * cy]]),
                          (CROP_PX, CROP_PX), flags=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT)
    faces = mesh_faces(crop_mesh, crop)
    if not faces:
        return None
    centred = min(faces, key=lambda f: float(np.hypot(*(f[:468, :2].mean(0) - 0.5))))
    return (centred * CROP_PX - (CROP_PX / 2, CROP_PX / 2, 0)) / k + (cx, cy, 0)


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
