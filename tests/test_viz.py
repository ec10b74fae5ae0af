"""mclmcf.ui.result renders every part of a real prediction; mclmcf.ui.page fills the Analyse tab from it."""

from __future__ import annotations

import base64
import dataclasses
import html
import re

import cv2
import numpy as np
import pytest

from mclmcf.ui import result as viz
from mclmcf.ui.score import stages_line
from mclmcf.serving.pipeline import SentimentPipeline


@pytest.fixture(scope="module")
def prediction(loaded, make_clip):
    return SentimentPipeline(loaded).predict(make_clip("talk.mp4"), "a wonderful, moving film", timeline_window_s=1)


def is_picture(x: np.ndarray) -> bool:
    return x.ndim == 3 and x.shape[2] == 3 and x.dtype == np.uint8 and x.std() > 0


def png(uri: str) -> np.ndarray:
    """Decode a heatmap's PNG data URI back to an RGB array."""
    assert uri.startswith("data:image/png;base64,")
    return cv2.imdecode(np.frombuffer(base64.b64decode(uri.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)[..., ::-1]


def test_tcf_html_shows_the_image_first_and_folds_the_conv_maps_away(prediction):
    """Each pair: its image with the cell, the axes and the colour scale in words, then its conv maps inside a
    closed <details>; the acoustic-visual image (visual x acoustic in the model) is shown transposed, as acoustic x visual."""
    top = viz.tcf_scale(prediction.tcf_images)
    for pair, (first, second) in viz.PAIR_NAMES.items():
        image, maps = prediction.tcf_images[pair], prediction.tcf_feature_maps[pair]
        page = viz.tcf_html(pair, image, maps, top)
        uris = re.findall(r'src="(data:image/png;base64,[^"]+)"', page)
        assert len(uris) == 1 + len(maps) == page.count('class="tcf-bar"') == page.count("<figcaption>")
        shown, folded = page.split('<details class="tcf-conv">')
        assert shown.count("<img") == 1 and folded.count("<img") == len(maps) and "<details open" not in page
        assert f"{first} × {second}<small>each cell: one {first} feature × one {second} feature</small>" in shown
        assert f"rows: {first} features 1–{image.shape[0]}" in shown and f"columns: {second} features 1–" in shown
        assert "0: one of the two is off" in shown and f"{top:.3g}: both strongly on" in shown
        assert all(f"pass {i}:" in folded for i in range(1, len(maps) + 1)) and "own colour scale" in folded
        pictures = [png(u) for u in uris]
        assert [p.shape[:2] for p in pictures] == [image.shape] + [m.shape[1:] for m in maps]   # 64 px: not downscaled
        assert all(is_picture(p) for p in pictures)
        shown_values = image.T if pair in viz.TRANSPOSED else image
        expected = viz.coloured(shown_values, "viridis", 0.0, top)
        assert np.abs(pictures[0].astype(int) - expected).max() <= 3, pair
    assert viz.TRANSPOSED == {"av"}


def test_the_three_images_share_one_colour_scale(prediction, loaded):
    """The page fills the three slots with one scale: 0 to the largest product among the clip's three images."""
    from mclmcf.ui import page
    shown = dict(zip([slot.name for slot in page.SLOTS], page.filled(prediction)))
    top = max(float(np.abs(x).max()) for x in prediction.tcf_images.values())
    assert all(f"{top:.3g}: both strongly on" in shown[f"tcf_{pair}"] for pair in viz.PAIR_NAMES)


def test_the_score_does_not_read_the_tcf_images(loaded, make_clip):
    """What the page says: the score comes from the expanded vectors joined end to end, not from the TCF images
    or their convolutions (those feed only training's level-3 loss). Scrambling every TCF conv leaves the score as it
    was; scrambling the expansions (the images' operands) changes it."""
    import torch
    from mclmcf.serving.pipeline import SentimentPipeline
    pipeline = SentimentPipeline(loaded)
    clip = pipeline.features(make_clip("talk.mp4"))[0]
    model = loaded.model
    before = pipeline.score("a wonderful, moving film", clip.audio, clip.vision)
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        with torch.no_grad():
            for p in model.tcf.parameters():
                p.normal_()
            assert pipeline.score("a wonderful, moving film", clip.audio, clip.vision) == before
            for p in model.expand.parameters():
                p.normal_()
            assert pipeline.score("a wonderful, moving film", clip.audio, clip.vision) != before
    finally:
        model.load_state_dict(saved)


def test_heatmap_colours_follow_the_values():
    """Lowest value -> the colormap's first colour, highest -> its last; large maps are area-averaged."""
    values = np.tile(np.linspace(-1, 1, 600, dtype=np.float32), (300, 1))
    picture = png(viz.heatmap_png(values, "RdBu_r", -1, 1))
    table = viz.colour_table("RdBu_r")
    assert picture.shape == (128, 256, 3)
    assert np.abs(picture[:, 0].astype(int) - table[0]).max() <= 3 and np.abs(picture[:, -1].astype(int) - table[-1]).max() <= 3


def test_tcf_image_range_follows_its_signs():
    """The default (ReLU) images are non-negative: a sequential map from 0. Signed images
    (fusion_activation="none") keep a diverging map centred on 0."""
    maps = [np.ones((4, 8, 8), np.float32)]
    ticks = r'<div class="tcf-bar-ticks"><span>([^<]+)</span><span>([^<]+)</span>'
    non_negative = np.outer(np.arange(8.0), np.arange(8.0)).astype(np.float32)
    assert re.search(ticks, viz.tcf_html("tv", non_negative, maps)).groups() == ("0: one of the two is off",
                                                                                 "49: both strongly on")
    assert re.search(ticks, viz.tcf_html("tv", non_negative - 10, maps)).groups() == ("-39 opposite signs",
                                                                                      "39 same sign")


def test_other_figures_are_rgb_pictures(prediction):
    assert is_picture(viz.timeline_figure(prediction.timeline, prediction.label_range))
    mesh = viz.face_mesh_image(prediction)
    assert mesh.shape == prediction.clip.key_frame.shape and not np.array_equal(mesh, prediction.clip.key_frame)
    assert 'class="face-mesh" src="data:image/jpeg;base64,' in viz.face_mesh_html(prediction)


def test_audio_figure_is_html_text_around_colour_lookup_pictures(prediction):
    """Title, row names, time ticks and colour bar are page text (readable at a phone's width); the feature strip is
    one PNG row per acoustic feature, at most STRIP_COLUMNS columns; the waveform an SVG envelope."""
    page = viz.audio_html(prediction)
    clip = prediction.clip
    assert "<figcaption>Waveform, the 48 acoustic features" in page and "time (s)" in page and "z-score" in page
    assert all(f"{name}</span>" in page for name, _ in viz.AUDIO_GROUPS) and sum(r for _, r in viz.AUDIO_GROUPS) == 48
    assert f"<span>{clip.duration_s:.1f}</span>" in page and "<svg" in page and "<polygon" in page
    strip, face = (png(u) for u in re.findall(r'src="(data:image/png;base64,[^"]+)"', page))
    assert strip.shape[0] == 48 and strip.shape[1] == min(len(clip.audio), viz.STRIP_COLUMNS) and is_picture(strip)
    assert face.shape[:2] == (1, len(clip.face_mask))


def test_expression_strip_is_html_text_around_one_picture(prediction):
    from mclmcf.ui.expression_strip import expression_strip
    from preprocessing.expression import CLASSES
    page = expression_strip(prediction)
    assert "<figcaption>Facial expression per frame" in page and "time (s)" in page and "probability" in page
    assert all(f"<span>{name}</span>" in page for name in CLASSES)
    (uri,) = re.findall(r'src="(data:image/png;base64,[^"]+)"', page)
    assert png(uri).shape[:2] == (len(CLASSES), len(prediction.clip.face_mask))


def test_an_all_zero_feature_map_says_so_on_its_panel_and_by_the_contributions(prediction):
    """A filter pass whose output is zero everywhere for this input (a black map, colour scale 0-0) is explained in
    plain words on its panel; the per-modality contribution line names the picture, without jargon, and says that
    the score does not use it."""
    maps = [np.ones((4, 8, 8), np.float32), np.zeros((4, 6, 6), np.float32)]
    page = viz.tcf_html("av", np.ones((10, 10), np.float32), maps)
    panels = page.split('<figure class="tcf-panel">')[1:]
    assert viz.ZERO_MAP not in panels[1] and viz.ZERO_MAP in panels[2]
    assert "The score does not use it" in viz.ZERO_MAP

    def contributions(*zero_pairs):
        maps = {pair: [np.full((4, 6, 6), 0.0 if pair in zero_pairs else 0.5, np.float32)] for pair in viz.PAIR_NAMES}
        return viz.contributions_html(dataclasses.replace(prediction, tcf_feature_maps=maps))
    assert "The training-only filters on the acoustic × visual picture came out blank for this clip; the score " \
           "does not use them" in contributions("av")
    assert "on the text × acoustic and acoustic × visual pictures came out blank" in contributions("ta", "av")
    assert "blank" not in contributions()
    assert not any(jargon in contributions("av") for jargon in ("ReLU", "conv", "level-3", "branch"))


MARKUP = '[x](http://e) ![p](http://e/p.png) <img src=http://e/i.png> **bold** www.example.com'


def test_weights_notes_render_as_plain_text():
    """A repo's notes.trained_on goes into Markdown (the weights banner, the details): escaped, it renders as the
    same characters, with no link, image, HTML element or emphasis (CommonMark, as markdown-it renders it)."""
    from types import SimpleNamespace

    from markdown_it import MarkdownIt

    from mclmcf.ui.page import weights_banner
    weights = SimpleNamespace(source="owner/repo", device=SimpleNamespace(type="cpu"), trained_on=MARKUP, notices=[])
    banner = weights_banner(SimpleNamespace(weights=weights, asr_status="Speech recognition: none."))
    for markdown in (viz.plain_markdown(MARKUP), banner):
        rendered = MarkdownIt("commonmark").render(markdown)
        assert "<a" not in rendered and "<img" not in rendered and html.escape(MARKUP, quote=False) in rendered, rendered
        assert "://" not in markdown and "www." not in markdown          # nothing for a linkifier to find


def test_html_and_details(prediction):
    card = viz.score_card_html(prediction)
    assert f"{prediction.score:+.2f}" in card and prediction.sentiment_class in card
    contributions = viz.contributions_html(prediction)
    assert contributions.count("contrib-row") == 3
    without_text = prediction.score - prediction.contributions["text"]
    assert f"without text {without_text:+.2f}" in contributions and "need not add up" in contributions
    details = viz.details_markdown(prediction, "checkpoints/", "cpu", "random weights")
    assert "checkpoints/" in details and "cpu" in details and "model" in details


def test_notices_sit_in_the_score_card_escaped(prediction):
    pred = dataclasses.replace(prediction, notices=["Only the first 38 of 85 words were used <b>"])
    card = viz.score_card_html(pred)
    assert "first 38 of 85 words were used &lt;b&gt;" in card
    assert "score-notices" not in viz.score_card_html(dataclasses.replace(prediction, notices=[]))
    assert "&lt;script&gt;" in viz.error_html("bad <script>")


def test_timeline_marks_each_windows_words():
    from mclmcf.serving.prediction import Segment
    own = [Segment(0.0, 2.0, 1.5, "What a wonderful film."), Segment(2.0, 3.0, 0.1, ""), Segment(3.0, 5.0, -2.0, "I hated it.")]
    shared = [Segment(s.start_s, s.end_s, s.score, "the whole transcript") for s in own]
    with_words, without = viz.timeline_figure(own, 3.0), viz.timeline_figure(shared, 3.0)
    assert is_picture(with_words) and is_picture(without)
    assert with_words.shape[0] > without.shape[0]          # the extra strip with each window's words


def test_the_page_names_each_modality_with_the_papers_word(prediction):
    """text / acoustic / visual wherever the visitor reads a modality's name; the data keep text / audio / vision."""
    assert viz.PAIR_NAMES == {"ta": ("text", "acoustic"), "tv": ("text", "visual"), "av": ("acoustic", "visual")}
    contributions = viz.contributions_html(prediction)
    assert re.findall(r'class="contrib-name">([^<]+)<', contributions) == ["text", "acoustic", "visual"]
    assert "without acoustic" in contributions and "without vision" not in contributions
    assert stages_line({"decode": 0.01, "audio": 0.02, "visual": 0.03}) == "decode 10 ms · acoustic 20 ms · visual 30 ms"


def test_both_tabs_draw_the_same_gauge(prediction):
    from mclmcf.serving.live import LiveUpdate
    from mclmcf.ui import live
    update = LiveUpdate(end_s=4.0, score=prediction.score, label_range=prediction.label_range,
                        sentiment_class=prediction.sentiment_class, polarity=prediction.polarity, words="",
                        attributions=None, face_fraction=0.0, expressions=None, timings={}, history=[])
    gauge = re.compile(r'<div class="gauge">.*?</div></div>\s*<div class="gauge-ticks">.*?</div>', re.S)
    assert gauge.search(viz.score_card_html(prediction)).group() == gauge.search(live.panel_html(update, 4.0, 60.0)).group()


def test_every_output_slot_has_a_value_for_a_prediction_and_for_a_refusal(prediction, loaded):
    from mclmcf.ui import page, words
    names = [slot.name for slot in page.SLOTS]
    filled, cleared = page.filled(prediction), page.cleared("bad <clip>")
    assert len(filled) == len(cleared) == len(set(names))
    assert {slot.area for slot in page.SLOTS} == {"inputs", "beside", "tcf", "below", "raw"}
    shown, refused = dict(zip(names, filled)), dict(zip(names, cleared))
    assert shown["score"] == viz.score_card_html(prediction) and shown["result"] == prediction.to_json()
    assert "bad &lt;clip&gt;" in refused["score"] and 'id="sentiment-score"' not in refused["score"]
    assert all(refused[f"tcf_{pair}"] == viz.tcf_placeholder(pair) for pair in viz.PAIR_NAMES)
    assert all(refused[name].startswith('<p class="slot-empty">After <b>Analyse</b>')
               for name in ("face", "expressions", "audio"))
    assert refused["words"] == words.WORDS_PLACEHOLDER == page.SLOTS[[s.name for s in page.SLOTS].index("words")].build().value


def test_the_trained_on_sentence_is_shown_once(prediction, loaded):
    """The banner says what the weights were trained on; the details under a result repeat it only for other weights."""
    from types import SimpleNamespace
    from mclmcf.ui import page
    page.weights_banner(SimpleNamespace(weights=loaded, asr_status="Speech recognition: none."))
    details = dict(zip([slot.name for slot in page.SLOTS], page.filled(prediction)))["details"]
    assert "trained on" not in details and f"`{loaded.source}`" in details
    other = dataclasses.replace(loaded, source="owner/other-weights")
    assert "**trained on:**" in dict(zip([slot.name for slot in page.SLOTS], page.filled(dataclasses.replace(prediction, weights=other))))["details"]


def test_the_transcript_box_stops_at_the_pipelines_limit():
    import inspect
    from mclmcf.ui import page
    assert page.TRANSCRIPT_MAX_CHARS == inspect.signature(SentimentPipeline).parameters["max_transcript_chars"].default
