"""mclmcf.viz renders every part of a real prediction."""

from __future__ import annotations

import numpy as np
import pytest

from mclmcf import viz
from mclmcf.pipeline import SentimentPipeline


@pytest.fixture(scope="module")
def prediction(loaded, make_clip):
    return SentimentPipeline(loaded).predict(make_clip("talk.mp4"), "a wonderful, moving film", timeline_window_s=1)


def is_picture(x: np.ndarray) -> bool:
    return x.ndim == 3 and x.shape[2] == 3 and x.dtype == np.uint8 and x.std() > 0


def test_figures_are_rgb_pictures(prediction):
    for pair in viz.PAIR_NAMES:
        image = viz.tcf_figure(pair, prediction.tcf_images[pair], prediction.tcf_feature_maps[pair])
        assert is_picture(image) and image.shape[1] > 2 * image.shape[0]     # one wide strip per pair
    assert is_picture(viz.audio_figure(prediction))
    assert is_picture(viz.timeline_figure(prediction.timeline, prediction.label_range))
    mesh = viz.face_mesh_image(prediction)
    assert mesh.shape == prediction.clip.key_frame.shape and not np.array_equal(mesh, prediction.clip.key_frame)


def test_html_and_details(prediction):
    card = viz.score_card_html(prediction)
    assert f"{prediction.score:+.2f}" in card and prediction.sentiment_class in card
    assert viz.contributions_html(prediction).count("contrib-row") == 3
    details = viz.details_markdown(prediction, "checkpoints/", "cpu", "random weights")
    assert "checkpoints/" in details and "cpu" in details and "model" in details


def test_timeline_marks_each_windows_words():
    from mclmcf.pipeline import Segment
    own = [Segment(0.0, 2.0, 1.5, "What a wonderful film."), Segment(2.0, 3.0, 0.1, ""), Segment(3.0, 5.0, -2.0, "I hated it.")]
    shared = [Segment(s.start_s, s.end_s, s.score, "the whole transcript") for s in own]
    with_words, without = viz.timeline_figure(own, 3.0), viz.timeline_figure(shared, 3.0)
    assert is_picture(with_words) and is_picture(without)
    assert with_words.shape[0] > without.shape[0]          # the extra strip with each window's words
