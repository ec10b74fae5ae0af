"""mclmcf.serving.explain and mclmcf.ui.words: word attributions with the bundled weights (checkpoints/: mean-pooled
MPNet with adapters; skipped when they or their encoder package are not installed) and with random [CLS]-pooled
weights (conftest's ``loaded``), each method behind attribute_words' switch, and the word card."""

from __future__ import annotations

import json
import re
from importlib import metadata

import numpy as np
import pytest

from mclmcf.ui import words as explain_viz
from mclmcf.ui.style import CSS
from mclmcf.serving.explain import (MEAN_POOLED_MAX_WORDS, METHODS, WordAttribution, WordAttributions,
                                    attribute_words, default_method, word_spans)
from mclmcf.serving.scoring import audio_visual_vectors, score_texts
from mclmcf.serving.voice import summarise_voice
from mclmcf.serving.pipeline import SentimentPipeline
from mclmcf.serving.weights import DEFAULT_DIR, has_weights, load_weights
from preprocessing.encoders import SPLIT_ZIPS
from preprocessing.words import TimedWord

COMPLETENESS_TOLERANCE = 0.05   # score units (the scale is -3 .. 3); docs/demo.md states the same
# (sentence, its clearly positive word, its clearly negative word)
MIXED = [("The food was awful, but the waiter was wonderful.", "wonderful", "awful"),
         ("A boring story, although the soundtrack is beautiful.", "beautiful", "boring"),
         ("The script is terrible, yet the cast is excellent.", "excellent", "terrible"),
         ("I loved the music, but the ending was horrible.", "loved", "horrible"),
         ("A wonderful cast wasted on a stupid plot.", "wonderful", "stupid")]
# words of MIXED that are neither neutral nor the two compared: contrast words and a second sentiment word
NOT_NEUTRAL = {"but", "although", "yet", "wasted"}


def _installed(dist: str) -> bool:
    try:
        return metadata.distribution(dist) is not None
    except metadata.PackageNotFoundError:
        return False


@pytest.fixture(scope="module")
def demo():
    if not has_weights(DEFAULT_DIR) or not all(_installed(p) for p in SPLIT_ZIPS["all-mpnet-base-v2"]["parts"]):
        pytest.skip("the bundled weights or their encoder package (requirements-encoder.txt) are not installed")
    return load_weights(str(DEFAULT_DIR))


@pytest.fixture(scope="module")
def clip(demo, make_clip):
    return SentimentPipeline(demo).features(make_clip("talk.mp4"))[0]


def neutral(model) -> tuple[np.ndarray, np.ndarray]:
    """The training means of the voice and face features (the input the page's ablations call neutral)."""
    return (model.audio_norm.mean.numpy().reshape(1, -1).repeat(40, 0),
            model.vision_norm.mean.numpy().reshape(1, -1).repeat(10, 0))


def attribute(weights, clip, text: str, method: str | None = None) -> WordAttributions:
    return attribute_words(weights.model, weights.tokenizer, text, clip.audio, clip.vision, method=method)


def by_word(result: WordAttributions) -> dict[str, float]:
    """{word, lower-cased: its attribution} (for sentences whose compared words occur once)."""
    return {w.word.lower(): w.attribution for w in result.words}


def units(text: str) -> list[str]:
    return [text[a:b] for a, b in word_spans(text)]


# ---- what the colours must show (issue 38), written before their output was looked at ---------------------
# on the default method (hierarchical since explain_choice_rule.md's second round); token_states, the default
# before, does not meet them: its strongest colour falls on "." or "it" in these sentences.

@pytest.mark.parametrize("text, word, sign", [("I loved it.", "loved", 1), ("What a dull film.", "dull", -1)])
def test_the_sentiment_word_gets_the_strongest_colour(demo, clip, text, word, sign):
    result = attribute(demo, clip, text)
    strongest = max(result.words, key=lambda w: abs(w.attribution))
    assert strongest.word == word and sign * strongest.attribution > 0, result.words
    assert abs(result.remainder) < COMPLETENESS_TOLERANCE


def test_not_bad_taken_together_is_positive(demo, clip):
    values = by_word(attribute(demo, clip, "The acting was not bad at all."))
    assert values["not"] + values["bad"] > 0, values


@pytest.mark.parametrize("text, good, bad", MIXED)
def test_mixed_sentences_put_the_positive_word_above_every_neutral_word_and_the_negative_below(
        demo, clip, text, good, bad):
    result = attribute(demo, clip, text)
    values = by_word(result)
    neutral = {w.word: w.attribution for w in result.words if w.word.lower() not in {good, bad, *NOT_NEUTRAL}}
    assert values[good] > max(neutral.values()) and values[bad] < min(neutral.values()), values
    assert abs(result.remainder) < COMPLETENESS_TOLERANCE, result


def test_attributions_explain_the_pipelines_score_also_over_several_windows(demo, make_clip):
    """F(x) is the score the page shows; a transcript past the encoder's window is attributed per window,
    weighted as the score weights them, and the words still add up to score - baseline score."""
    pipeline = SentimentPipeline(demo)
    short = MIXED[0][0]
    long = " ".join(text for text, _, _ in MIXED * 2)
    for text, windows in ((short, 1), (long, 2)):      # 2 windows of the weights' 64 tokens (3 of 50)
        pred = pipeline.predict(make_clip("talk.mp4"), text)
        assert pred.text_windows == windows
        result = pred.attributions
        assert result.method == default_method(demo.model, len(units(text)))
        assert result.score == pytest.approx(pred.score, abs=1e-4)
        assert [w.word for w in result.words] == units(text)
        assert abs(result.remainder) < COMPLETENESS_TOLERANCE * windows, result.remainder
    # the first sentence, twice in the long text, keeps its order there: "wonderful" above "awful"
    values = [w.attribution for w in result.words if w.word.lower() in ("wonderful", "awful")]
    firsts = [(values[i], values[i + 1]) for i in (0, 3)]                     # (awful, wonderful) of each copy
    assert len(values) == 6 and all(wonderful > awful for awful, wonderful in firsts), values


def test_a_request_with_token_states_colours_runs_the_encoder_once(demo, make_clip):
    """Past MEAN_POOLED_MAX_WORDS the colours are token_states, which reads the last-layer states of the request's
    own encoder pass (#39: one pass of the text encoder per request): the same colours as computed on their own."""
    pipeline = SentimentPipeline(demo)
    video = make_clip("talk.mp4")
    text = " ".join(t for t, _, _ in MIXED * 4)
    assert len(units(text)) > MEAN_POOLED_MAX_WORDS
    pipeline.predict(video, "warm up")                                  # the clip's features, the empty vector
    calls = []
    hook = demo.model.text_encoder.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        pred = pipeline.predict(video, text)
    finally:
        hook.remove()
    assert pred.attributions.method == "token_states" and len(calls) == 1
    alone = attribute_words(demo.model, demo.tokenizer, text, pred.clip.audio, pred.clip.vision,
                            max_length=pipeline.text_window)
    np.testing.assert_allclose([w.attribution for w in pred.attributions.words],
                               [w.attribution for w in alone.words], atol=1e-5)
    assert pred.attributions.score == pytest.approx(pred.score, abs=1e-5)


def test_word_pieces_are_merged_into_words_and_punctuation_stands_apart(demo, clip):
    text = "Unbelievably   overwrought, self-indulgent nonsense!! Don't."
    assert len(demo.tokenizer.tokenize(text)) > len(units(text))          # word pieces
    result = attribute(demo, clip, text)
    assert [w.word for w in result.words] == ["Unbelievably", "overwrought", ",", "self-indulgent", "nonsense", "!!",
                                              "Don't", "."]
    assert [w.spaced for w in result.words] == [True, True, False, True, True, False, True, False]
    assert all(w.attribution != 0 for w in result.words)
    for method in ("token_states", "leave_one_out"):            # every method reads the same units
        audio, vision = clip.audio, clip.vision
        assert [w.word for w in attribute_words(demo.model, demo.tokenizer, text, audio, vision, method=method).words] \
            == [w.word for w in result.words]


def test_an_empty_transcript_has_no_words_and_nothing_to_explain(demo, clip):
    result = attribute(demo, clip, "")
    assert result.words == [] and result.score == pytest.approx(result.baseline_score)


def test_api_result_has_words_and_voice(loaded, make_clip):
    pipeline = SentimentPipeline(loaded)
    text = "a wonderful, moving film"
    result = json.loads(json.dumps(pipeline.predict(make_clip("talk.mp4"), text).to_json()))
    assert [w["word"] for w in result["words"]] == ["a", "wonderful", ",", "moving", "film"]
    assert all(isinstance(w["attribution"], float) for w in result["words"])
    total = sum(w["attribution"] for w in result["words"])
    assert total == pytest.approx(result["score"] - result["words_baseline_score"], abs=COMPLETENESS_TOLERANCE)
    assert set(result["voice"]) == {"pitch_median_hz", "pitch_low_hz", "pitch_high_hz", "pitch_range_semitones",
                                    "speaking_rate_wpm", "loudness_dbfs", "voiced_fraction"}
    quiet = pipeline.predict(make_clip("talk.mp4"), text, explain=False).to_json()
    assert quiet["words"] is None and "explain" not in quiet["timings_s"]


# ---- the methods on the default, mean-pooled MPNet weights ----------------------------------------------

def test_the_default_method_follows_the_pooling(demo, loaded):
    assert default_method(demo.model) == "hierarchical" and demo.model.config.text_pooling == "mean"
    assert default_method(demo.model, MEAN_POOLED_MAX_WORDS + 1) == "token_states"      # its cost does not grow
    assert default_method(loaded.model) == "embedding" and loaded.model.config.text_pooling == "cls"
    audio, vision = neutral(loaded.model)
    for method in ("token_states", "propagation"):
        with pytest.raises(ValueError, match="mean-pooled"):
            attribute_words(loaded.model, loaded.tokenizer, "fine", audio, vision, method=method)
    with pytest.raises(ValueError, match="unknown attribution method"):
        attribute_words(demo.model, demo.tokenizer, "fine", audio, vision, method="lime")


def test_shapley_values_of_two_words_are_exact_and_every_sampled_set_adds_up(demo):
    """Two words: an order and its reverse are all the orders, so the sample is the exact Shapley value, checked
    against the pipeline's own scoring; longer transcripts add up to score - baseline to float rounding."""
    audio, vision = neutral(demo.model)
    pipeline = SentimentPipeline(demo)
    score = {t: pipeline.score(t, audio, vision) for t in ("", "truly", "awful", "truly awful")}
    result = attribute_words(demo.model, demo.tokenizer, "truly awful", audio, vision, method="shapley")
    truly, awful = (w.attribution for w in result.words)
    assert truly == pytest.approx((score["truly"] - score[""] + score["truly awful"] - score["awful"]) / 2, abs=1e-4)
    assert awful == pytest.approx((score["awful"] - score[""] + score["truly awful"] - score["truly"]) / 2, abs=1e-4)
    long = " ".join(text for text, _, _ in MIXED[:3])              # in windows of 16 tokens: the masked texts too
    result = attribute_words(demo.model, demo.tokenizer, long, audio, vision, method="shapley", max_length=16)
    h_av = audio_visual_vectors(demo.model, audio, vision)
    assert result.score == pytest.approx(score_texts(demo.model, demo.tokenizer, [long], h_av, 16)[0], abs=1e-4)
    assert abs(result.remainder) < 1e-4


def test_hierarchical_shares_are_the_two_player_shapley_values_and_add_up_over_windows(demo):
    """Two words are one cut: each word's share is its Shapley value in the two-word game, checked against the
    pipeline's own scoring. Over several windows (16 tokens) the shares add up to score - baseline exactly."""
    audio, vision = neutral(demo.model)
    pipeline = SentimentPipeline(demo)
    score = {t: pipeline.score(t, audio, vision) for t in ("", "truly", "awful", "truly awful")}
    truly, awful = (w.attribution for w in attribute_words(demo.model, demo.tokenizer, "truly awful", audio, vision,
                                                           method="hierarchical").words)
    assert truly == pytest.approx((score["truly"] - score[""] + score["truly awful"] - score["awful"]) / 2, abs=1e-4)
    assert awful == pytest.approx((score["awful"] - score[""] + score["truly awful"] - score["truly"]) / 2, abs=1e-4)
    long = " ".join(text for text, _, _ in MIXED[:3])
    result = attribute_words(demo.model, demo.tokenizer, long, audio, vision, method="hierarchical", max_length=16)
    h_av = audio_visual_vectors(demo.model, audio, vision)
    assert result.score == pytest.approx(score_texts(demo.model, demo.tokenizer, [long], h_av, 16)[0], abs=1e-4)
    assert abs(result.remainder) < 1e-4 and len(result.words) == len(units(long))


def test_a_request_hands_its_score_to_the_word_removal_methods(demo, monkeypatch):
    """The page's request has the transcript's score already: the words split that score, and the transcript that
    keeps every word is not scored again."""
    from mclmcf.serving import word_removal
    audio, vision = neutral(demo.model)
    h_av = audio_visual_vectors(demo.model, audio, vision)
    text = "A truly awful film."
    full, nothing = score_texts(demo.model, demo.tokenizer, [text, ""], h_av)
    asked = []
    encode = word_removal.score_word_subsets
    monkeypatch.setattr(word_removal, "score_word_subsets",
                        lambda model, units, masks, *rest: asked.extend(masks) or encode(model, units, masks, *rest))
    result = attribute_words(demo.model, demo.tokenizer, text, audio, vision, method="hierarchical", score=full)
    assert asked and not any(mask.all() for mask in asked)
    assert result.score == full and result.baseline_score == pytest.approx(nothing, abs=1e-5)
    assert sum(w.attribution for w in result.words) == pytest.approx(full - result.baseline_score, abs=1e-9)


def test_hierarchical_cuts_a_span_where_its_parts_interact_least():
    """With a game whose only interaction joins words 1 and 2, every cut keeps them together, and their
    shares are the pair's value split evenly; the other words get their own values; the whole adds up."""
    from mclmcf.serving.word_removal import cuts, hierarchical
    own = np.array([0.5, 0.0, 0.0, -0.25, 0.0, 1.0])

    def score(masks):     # word 1 and word 2 are worth 2.0 together and nothing apart
        return np.array([own[m].sum() + 2.0 * (m[1] and m[2]) for m in masks])

    shares, full, nothing = hierarchical(score, 6)
    np.testing.assert_allclose(shares, [0.5, 1.0, 1.0, -0.25, 0.0, 1.0], atol=1e-12)
    assert full - nothing == pytest.approx(shares.sum())
    assert cuts(0, 6) == [2, 3] and cuts(3, 6) == [4, 5] and cuts(0, 3) == [1, 2] and cuts(0, 2) == [1]


def test_hierarchical_scores_words_and_pairs_then_the_tree_in_two_calls():
    """Every word and neighbouring pair in the first call, the tree's longer parts in the second, no transcript
    twice; the shares add up; without interactions every word gets exactly its own value, whatever the tree."""
    from mclmcf.serving.word_removal import hierarchical
    rng = np.random.default_rng(0)
    own, pair = rng.normal(size=23), rng.normal(size=22)
    calls = []

    def score(masks):     # each word's own value plus interactions of neighbours
        calls.append([m.tobytes() for m in masks])
        return np.array([own[m].sum() + (pair * (m[:-1] & m[1:])).sum() for m in masks])

    shares, full, nothing = hierarchical(score, 23)
    asked = [key for call in calls for key in call]
    assert len(calls) == 2 and len(asked) == len(set(asked)), "a transcript was scored twice"
    assert len(calls[0]) == 2 + 23 + 22 and all(np.frombuffer(k, bool).sum() > 2 for k in calls[1])
    assert shares.sum() == pytest.approx(full - nothing, abs=1e-12)
    pair[:] = 0
    calls.clear()
    np.testing.assert_allclose(hierarchical(score, 23)[0], own, atol=1e-12)


@pytest.mark.parametrize("method", ["token_states", "embedding", "propagation"])
def test_the_gradient_methods_report_what_no_word_carries(demo, method):
    """token_states adds up to its quadrature error; the others' remainder is what the page shows on its own."""
    audio, vision = neutral(demo.model)
    result = attribute_words(demo.model, demo.tokenizer, MIXED[0][0], audio, vision, method=method)
    assert [w.word for w in result.words] == units(MIXED[0][0]) and result.method == method
    assert result.remainder == pytest.approx(result.score - result.baseline_score
                                             - sum(w.attribution for w in result.words))
    if method == "token_states":
        assert abs(result.remainder) < COMPLETENESS_TOLERANCE


def test_token_states_baseline_is_the_empty_transcript_and_windows_add_up(demo):
    audio, vision = neutral(demo.model)
    h_av = audio_visual_vectors(demo.model, audio, vision)
    long = " ".join(text for text, _, _ in MIXED * 2)
    result = attribute_words(demo.model, demo.tokenizer, long, audio, vision, method="token_states")
    score, nothing = score_texts(demo.model, demo.tokenizer, [long, ""], h_av)
    assert result.score == pytest.approx(score, abs=1e-4) and result.baseline_score == pytest.approx(nothing, abs=1e-4)
    assert abs(result.remainder) < COMPLETENESS_TOLERANCE


def test_leave_one_out_is_the_score_difference_it_claims(demo):
    """Checked against the pipeline's own scoring, not explain's."""
    audio, vision = neutral(demo.model)
    pipeline = SentimentPipeline(demo)
    text = "A wonderful cast wasted on a stupid plot."
    result = attribute_words(demo.model, demo.tokenizer, text, audio, vision, method="leave_one_out")
    words = units(text)
    assert result.score == pytest.approx(pipeline.score(text, audio, vision), abs=1e-4)
    assert result.baseline_score == pytest.approx(pipeline.score("", audio, vision), abs=1e-4)
    for i, w in enumerate(result.words):
        without = " ".join(words[:i] + words[i + 1:])
        assert w.attribution == pytest.approx(result.score - pipeline.score(without, audio, vision), abs=1e-4)
    assert set(METHODS) == {"hierarchical", "shapley", "propagation", "token_states", "embedding", "leave_one_out"}


# ---- the voice ---------------------------------------------------------------------------------

def test_voice_summary_of_a_steady_tone_and_a_glide(loaded, make_clip):
    pipeline = SentimentPipeline(loaded)
    steady = pipeline.features(make_clip("tone220.mp4", audio="tone", pitch_hz=220.0))[0]
    voice = summarise_voice(steady, n_words=5)
    assert voice.pitch_median_hz == pytest.approx(220, rel=0.03) and voice.pitch_range_semitones < 1
    assert voice.voiced_fraction > 0.8 and -40 < voice.loudness_dbfs < 0
    speaking_s = 5 * 60 / voice.speaking_rate_wpm                          # the voiced span: nearly the 2 s clip
    assert 1.6 < speaking_s <= steady.duration_s + 0.05
    glide = summarise_voice(pipeline.features(make_clip("glide.mp4", audio="tone", pitch_hz=(150.0, 300.0)))[0], 5)
    # 10th..90th percentile of a 150 -> 300 Hz glide: about 165..285 Hz, 9.5 semitones
    assert 155 < glide.pitch_low_hz < 180 and 270 < glide.pitch_high_hz < 295 and 8 < glide.pitch_range_semitones < 11
    line = glide.line()
    assert line.startswith("Voice: pitch") and f"{glide.pitch_low_hz:.0f}–{glide.pitch_high_hz:.0f} Hz" in line


def test_voice_summary_of_silence_and_of_timed_words(loaded, make_clip):
    pipeline = SentimentPipeline(loaded)
    silent = summarise_voice(pipeline.features(make_clip("silent.mp4", audio="silence"))[0], n_words=4)
    assert silent.pitch_median_hz is None and silent.speaking_rate_wpm is None and silent.voiced_fraction == 0
    assert "no voiced speech" in silent.line() and silent.to_json()["pitch_range_semitones"] is None
    clip = pipeline.features(make_clip("talk.mp4"))[0]
    words = [TimedWord("so", 0.25, 0.5), TimedWord("good", 1.0, 1.75)]     # 1.5 s of speaking, 2 words
    assert summarise_voice(clip, 2, words).speaking_rate_wpm == pytest.approx(80)
    assert summarise_voice(clip, 0).speaking_rate_wpm is None


# ---- the page ----------------------------------------------------------------------------------

def luminance(hex_colour: str) -> float:
    c = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255
    c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(c @ [0.2126, 0.7152, 0.0722])


def test_words_html_colours_by_sign_escapes_and_keeps_contrast():
    result = WordAttributions([WordAttribution("<b>great</b>", 0.8), WordAttribution("&", 0.0),
                               WordAttribution("awful", -0.4), WordAttribution("!", 0.0, spaced=False)],
                              score=0.5, baseline_score=0.1)
    page = explain_viz.words_html(result)
    assert "&lt;b&gt;great&lt;/b&gt;" in page and "<b>great" not in page and ">&amp;<" in page
    assert 'awful</span><span class="word"' in page                # punctuation set against its word
    colours = re.findall(r'background:(#[0-9a-f]{6});color:(#[0-9a-f]{6})[^"]*" title="([^"]+)"', page)
    assert [c[2] for c in colours] == ["+0.800", "+0.000", "-0.400", "+0.000"]
    (up, _, _), (zero, _, _), (down, _, _), _ = colours
    assert up == explain_viz.UP and zero == "#ffffff" and down == explain_viz._mix(explain_viz.DOWN, 0.5)
    for background, text, _ in colours:                  # WCAG AA for normal text
        assert (luminance(background) + 0.05) / (luminance(text) + 0.05) >= 4.5
    for full in (explain_viz.UP, explain_viz.DOWN):
        assert (luminance(full) + 0.05) / (luminance(explain_viz.TEXT_COLOUR) + 0.05) >= 4.5
    assert "full colour: ±0.80" in page and "pushed it up" in page and "add up to +0.40" in page
    assert "how far that word moved this score" in page and "not what the speaker felt" in page
    assert "in no word" not in page and "only roughly" not in page
    missed = explain_viz.words_html(WordAttributions(result.words, score=1.0, baseline_score=0.1))   # 0.4, not 0.9
    assert "in no word: +0.50" in missed and "only roughly" in missed       # the remainder is its own item
    assert "transcript is empty" in explain_viz.words_html(WordAttributions([], 0.2, 0.2))


def test_word_card_on_a_phone_keeps_the_legend_bar_and_wraps_a_very_long_word(tmp_path):
    """At 412 px the legend bar keeps most of the card's width (#41: it was squeezed to ~4 px between its labels),
    and a 1,990-character word breaks inside the card instead of running out of it (#37)."""
    from test_app import chromium
    from selenium.webdriver.common.by import By
    words = [WordAttribution("so", 0.3), WordAttribution("a" * 1990, -0.2), WordAttribution("good", 0.5),
             WordAttribution(".", 0.01, spaced=False)]
    card = explain_viz.words_html(WordAttributions(words, score=0.61, baseline_score=0.0))
    page = tmp_path / "card.html"
    page.write_text(f"<html><head><meta name='viewport' content='width=device-width'><style>{CSS}</style></head>"
                    f"<body style='margin:0'>{card}</body></html>")
    with chromium("word-card-phone.png", width=412, height=900) as driver:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",          # headless windows are >= 500 px wide
                               {"width": 412, "height": 900, "deviceScaleFactor": 1, "mobile": True})
        driver.get(page.as_uri())
        assert driver.execute_script("return window.innerWidth") == 412
        card_box = driver.find_element(By.ID, "word-attributions").rect
        bar = driver.find_element(By.CSS_SELECTOR, ".words-bar").rect
        assert bar["width"] > card_box["width"] / 2, (bar, card_box)
        for span in driver.find_elements(By.CSS_SELECTOR, "#word-attributions .word"):
            assert span.rect["x"] + span.rect["width"] <= card_box["x"] + card_box["width"] + 1, span.rect
        assert driver.execute_script("return document.documentElement.scrollWidth") <= 412
