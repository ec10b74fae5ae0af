"""The pipeline with speech recognition: an empty transcript is transcribed, timeline windows are
scored with their own words, long transcripts are scored in windows. Real clips with espeak-ng
speech, the packaged Whisper tiny.en, the small random checkpoint (conftest) and the demo weights."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from mclmcf.serving.pipeline import InputError, SentimentPipeline
from mclmcf.serving.weights import DEFAULT_DIR, load_weights
from preprocessing.synthetic import AUDIO_RATE, speak
from preprocessing.text import tokenize_windows
from preprocessing.words import normalise, word_error_rate

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
SPOKEN = "I really enjoyed this movie, it was great."
POSITIVE = "What a wonderful, brilliant film. I loved every minute of it."
NEGATIVE = "A dull, lifeless mess. The worst film I have seen in years."


def spoken_length_s(text: str) -> float:
    return len(speak(text)) / AUDIO_RATE


@pytest.fixture(scope="module")
def demo_pipeline() -> SentimentPipeline:
    """The bundled demo weights, whose scores follow the text (checkpoints/README.md)."""
    return SentimentPipeline(load_weights(str(DEFAULT_DIR)), asr_model="")


@pytest.fixture(scope="module")
def turn_clip(make_clip):
    """Positive speech, then negative speech: 'POSITIVE NEGATIVE' spoken in one go, face talking."""
    text = f"{POSITIVE} {NEGATIVE}"
    return make_clip("turn.mp4", duration_s=round(spoken_length_s(text) + 0.5, 1), text=text), text


def test_empty_transcript_is_transcribed_and_scored(loaded, make_clip):
    pipe = SentimentPipeline(loaded, asr_model="")
    clip = make_clip("asr-spoken.mp4", duration_s=3.5, text=SPOKEN)
    pred = pipe.predict(clip, "   ")
    assert pred.transcript_source == "asr" and word_error_rate(SPOKEN, pred.transcript) <= 0.25, pred.transcript
    assert normalise(" ".join(w.text for w in pred.words)) == normalise(pred.transcript)
    assert "asr" in pred.timings and any("speech recognition" in n for n in pred.notices)
    typed = pipe.predict(clip, pred.transcript)           # the visitor re-runs the filled box unchanged
    assert typed.transcript_source == "typed" and typed.features_cached
    assert typed.score == pytest.approx(pred.score, abs=1e-5)
    out = pred.to_json()
    assert out["transcript"] == pred.transcript and out["transcript_source"] == "asr" and out["text_windows"] == 1


def test_clip_without_speech_gets_the_no_speech_message(loaded, make_clip):
    pipe = SentimentPipeline(loaded, asr_model="")
    with pytest.raises(InputError, match="No speech was found in the clip"):
        pipe.predict(make_clip("asr-tone.mp4", duration_s=3.0, audio="tone"), "")
    assert np.isfinite(pipe.predict(make_clip("asr-tone.mp4"), "a typed transcript still works").score)


def test_without_a_recogniser_typing_is_required_and_windows_share_the_transcript(loaded, make_clip):
    pipe = SentimentPipeline(loaded, asr_model="none")
    assert pipe.asr is None and "off" in pipe.asr_status
    clip = make_clip("asr-spoken.mp4", duration_s=3.5, text=SPOKEN)
    with pytest.raises(InputError, match="transcript is empty: type what the speaker says"):
        pipe.predict(clip, "")
    pred = pipe.predict(clip, SPOKEN, timeline_window_s=1.0)
    assert pred.transcript_source == "typed" and pred.words is None and "asr" not in pred.timings
    assert len(pred.timeline) >= 3 and all(s.text == SPOKEN for s in pred.timeline)
    assert any(n.startswith("Timeline windows share the full transcript") for n in pred.notices)


def test_timeline_follows_the_words_from_positive_to_negative(demo_pipeline, turn_clip):
    clip, text = turn_clip
    pred = demo_pipeline.predict(clip, "", timeline_window_s=3.0)
    assert pred.transcript_source == "asr" and word_error_rate(text, pred.transcript) <= 0.25, pred.transcript
    scores = [s.score for s in pred.timeline]
    texts = [s.text for s in pred.timeline]
    assert scores[0] > 0.5 and scores[-1] < -0.5, list(zip(texts, scores))
    assert "wonderful" in texts[0].lower() and "worst" in " ".join(texts[-2:]).lower()
    assert normalise(" ".join(texts)) == normalise(pred.transcript)       # every word in exactly one window


def test_typed_transcript_is_timed_by_the_recogniser(demo_pipeline, turn_clip):
    """The typed text is scored as typed; its words take the recognised words' times for the timeline."""
    clip, text = turn_clip
    pred = demo_pipeline.predict(clip, text, timeline_window_s=3.0)
    assert pred.transcript_source == "typed" and pred.transcript == text
    texts = [s.text for s in pred.timeline]
    assert " ".join(t for t in texts if t) == text
    assert pred.timeline[0].score > 0.5 and pred.timeline[-1].score < -0.5


def test_long_transcript_is_scored_in_token_windows(loaded, make_clip):
    """A 3-window transcript: the score is the token-weighted mean of its windows' scores, computed
    here window by window through the model, and its end still matters (it is not cut)."""
    pipe = SentimentPipeline(loaded, asr_model="none")
    clip = make_clip("talk.mp4")
    long_text = " ".join(["the film was long and the story wandered from one place to another"] * 6)
    pred = pipe.predict(clip, long_text + " but I loved it")
    assert pred.text_windows > 1 and any("windows" in n for n in pred.notices)
    tokens = tokenize_windows(long_text + " but I loved it", loaded.tokenizer)
    model, c = loaded.model, pred.clip
    audio, vision = torch.from_numpy(c.audio)[None], torch.from_numpy(c.vision)[None]
    scores, weights = [], []
    for ids, mask, types in zip(*(torch.from_numpy(tokens[k]) for k in ("input_ids", "attention_mask", "token_type_ids"))):
        with torch.no_grad():
            scores.append(float(model(ids[None], mask[None], audio, torch.tensor([audio.shape[1]]), vision,
                                      torch.tensor([vision.shape[1]]), token_type_ids=types[None]).score[0]))
        weights.append(int(mask.sum()) - 2)
    assert len(scores) == pred.text_windows
    assert pred.score == pytest.approx(np.average(scores, weights=weights), abs=1e-5)
    assert pipe.predict(clip, long_text + " and I hated it").score != pytest.approx(pred.score, abs=1e-6)
