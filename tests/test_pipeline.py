"""mclmcf.serving.pipeline and mclmcf.serving.weights without a browser: real clips, a small random checkpoint (conftest)."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from mclmcf.serving import weights as weights_mod
from mclmcf.serving.cache import LRUCache
from mclmcf.serving.messages import sentiment_labels
from mclmcf.serving.pipeline import InputError, SentimentPipeline, sound_notice
from mclmcf.serving.registry import PipelineRegistry
from mclmcf.serving.weights import WeightsError, load_weights
from preprocessing import FeatureSpec, FeatureSpecMismatch, NoFaceError, TooLongError, UnreadableMediaError
from preprocessing.audio import audio_features
from random_weights import save_random_weights

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

@pytest.fixture
def pipeline(loaded) -> SentimentPipeline:
    return SentimentPipeline(loaded, max_duration_s=10.0)


def test_prediction_score_maps_and_contributions(pipeline, make_clip):
    pred = pipeline.predict(make_clip("talk.mp4"), "I really enjoyed this movie, it was great.")
    assert math.isfinite(pred.score) and pred.label_range == 3.0
    assert sentiment_labels(pred.score, 3.0) == (pred.sentiment_class, pred.polarity)
    config = pipeline.weights.model.config
    side = config.tcf_dim
    for pair in ("ta", "tv", "av"):
        assert pred.tcf_images[pair].shape == (side, side)
        shapes = [m.shape for m in pred.tcf_feature_maps[pair]]
        assert shapes == [(c_out, side - 2 * (i + 1), side - 2 * (i + 1)) for i, (_, c_out) in enumerate(config.tcf_channels)]
    assert set(pred.contributions) == {"text", "audio", "vision"}
    assert all(math.isfinite(v) for v in pred.contributions.values())
    assert json.loads(json.dumps(pred.to_json()))["score"] == pytest.approx(pred.score, abs=1e-4)
    assert {"decode", "audio", "visual", "model", "total"} <= set(pred.timings)
    assert pipeline.weights.spec == FeatureSpec() and pred.clip.vision.shape[1] == config.visual_dim == 23


def test_version_1_weights_get_version_1_features(make_clip, tmp_path):
    """Weights trained on version-1 features (16 geometry columns, like the demo weights of a9b9c3b)
    keep loading, and the pipeline computes their version's features, not the newest version's."""
    loaded = load_weights(str(save_random_weights(tmp_path / "v1", tcf_dim=64, spec=FeatureSpec.of_version(1))))
    assert loaded.spec == FeatureSpec.of_version(1) and loaded.model.config.visual_dim == 16
    pred = SentimentPipeline(loaded, max_duration_s=10.0).predict(make_clip("talk.mp4"), "I really enjoyed it.")
    assert math.isfinite(pred.score) and pred.clip.spec.version == 1
    assert pred.clip.vision.shape[1] == 16 and pred.clip.expressions.shape[1] == 7   # expressions still shown


@pytest.mark.parametrize("name", ["positive.mp4", "negative.mp4"])
def test_bundled_examples_are_read_frame_by_frame(pipeline, name):
    """6 s clips at 10 sampled frames per second: ~60 face frames, not the one frame broken timestamps gave."""
    pred = pipeline.predict(EXAMPLES / name, "a clip")
    assert len(pred.clip.face_mask) >= 55 and pred.clip.face_fraction > 0.9
    assert not any("timestamps" in n for n in pred.notices)


def test_silent_sound_track_is_flagged(pipeline, make_clip):
    silent = pipeline.predict(make_clip("silent.mp4", audio="silence"), "I really enjoyed this movie")
    assert any("sound track is silent" in n for n in silent.to_json()["notices"])
    spoken = pipeline.predict(make_clip("talk.mp4"), "I really enjoyed this movie")
    assert not any("silent" in n or "No voice" in n for n in spoken.notices)


def test_sound_without_a_voice_is_flagged(pipeline, make_clip):
    """Breath-like noise at speech level: loud enough, but not voiced."""
    clip = pipeline.features(make_clip("talk.mp4"))[0]
    noise = (0.1 * np.random.default_rng(0).standard_normal(len(clip.waveform))).astype(np.float32)
    noisy = dataclasses.replace(clip, waveform=noise, audio=audio_features(noise, clip.spec))
    assert "No voice was heard" in sound_notice(noisy)
    assert sound_notice(clip) is None


def test_contribution_is_score_change_when_modality_neutralised(pipeline, make_clip):
    """Recompute two ablations by hand through the model: text -> empty transcript, audio -> training mean."""
    text = "the plot was dull and far too long"
    pred = pipeline.predict(make_clip("talk.mp4"), text)
    model, clip = pipeline.weights.model, pred.clip
    tok = pipeline.weights.tokenizer
    audio = torch.from_numpy(clip.audio)[None]
    vision = torch.from_numpy(clip.vision)[None]
    la, lv = torch.tensor([audio.shape[1]]), torch.tensor([vision.shape[1]])

    def score(sentence: str, a: torch.Tensor) -> float:
        enc = tok([sentence], padding="max_length", truncation=True, max_length=50, return_tensors="pt")
        with torch.no_grad():
            return float(model(enc["input_ids"], enc["attention_mask"], a, la, vision, lv,
                               token_type_ids=enc["token_type_ids"]).score[0])

    assert score(text, audio) == pytest.approx(pred.score, abs=1e-5)
    assert pred.score - score("", audio) == pytest.approx(pred.contributions["text"], abs=1e-5)
    assert pred.score - score(text, model.audio_norm.mean.expand_as(audio)) == pytest.approx(pred.contributions["audio"], abs=1e-5)


def test_editing_the_transcript_reuses_the_extracted_features(pipeline, make_clip):
    clip = make_clip("talk.mp4")
    first = pipeline.predict(clip, "I loved every minute of it")
    second = pipeline.predict(clip, "terrible acting, I hated it")
    assert pipeline.extractions == 1
    assert not first.features_cached and second.features_cached
    assert "visual" in first.timings and "visual" not in second.timings
    assert second.clip is first.clip
    assert second.score != first.score


def test_cache_is_keyed_by_extractor_settings_and_bounded(loaded, make_clip):
    pipe = SentimentPipeline(loaded, cache_size=1)
    a, b = make_clip("talk.mp4"), make_clip("still.mp4", motion="still")
    pipe.features(a)
    pipe.features(a, fps=5)             # another frame rate is another feature set
    assert pipe.extractions == 2
    pipe.features(b)
    pipe.features(a)                    # evicted by b (cache of one)
    assert pipe.extractions == 4


def test_lru_cache_drops_the_least_recently_used_and_makes_each_value_once():
    cache = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1          # "a" is now the most recent: "b" goes first
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    made = []
    assert cache.get_or_make("a", lambda: made.append("a")) == 1 and not made
    assert cache.get_or_make("d", lambda: made.append("d") or 4) == 4 and made == ["d"]
    assert cache.get("c") is None       # "a" and "d" were used since


def test_timeline_windows_cover_the_clip(pipeline, make_clip):
    pred = pipeline.predict(make_clip("talk.mp4"), "it was fine", timeline_window_s=1.0)
    assert [s.start_s for s in pred.timeline] == [0.0, 1.0]
    assert pred.timeline[-1].end_s == pytest.approx(pred.clip.duration_s, abs=1e-3)
    assert all(math.isfinite(s.score) for s in pred.timeline)
    assert pipeline.predict(make_clip("talk.mp4"), "it was fine", timeline_window_s=1.5).timeline is None


@pytest.mark.parametrize("score, label_range, expected", [
    (2.8, 3.0, ("strongly positive", "positive")), (9.0, 3.0, ("strongly positive", "positive")),
    (0.6, 3.0, ("weakly positive", "positive")), (-0.4, 3.0, ("neutral", "neutral")),
    (-1.7, 3.0, ("negative", "negative")), (-0.9, 1.0, ("strongly negative", "negative")),
    (0.2, 1.0, ("weakly positive", "positive")),
])
def test_sentiment_labels(score, label_range, expected):
    assert sentiment_labels(score, label_range) == expected


def test_file_size_limit_is_one_number_in_bytes_and_never_reads_as_the_limit(loaded, tmp_path):
    """The app gives Gradio and the pipeline the same byte count (MAX_FILE_BYTES); a file just over it is
    refused with a size that does not read like the limit ("is 50 MB; the limit is 50 MB")."""
    from mclmcf.serving.messages import megabytes
    from mclmcf.serving.pipeline import MAX_FILE_BYTES
    assert MAX_FILE_BYTES == 50_000_000
    assert megabytes(MAX_FILE_BYTES) == "50 MB" and megabytes(51_000_000) == "51 MB" and megabytes(450_000) == "0.5 MB"
    pipe = SentimentPipeline(loaded)
    for size, shown in ((MAX_FILE_BYTES + 1, "50,000,001 bytes"), (50_040_000, "50,040,000 bytes"),
                        (50_400_000, "50.4 MB"), (51_000_000, "51 MB")):
        big = tmp_path / "big.mp4"
        with open(big, "wb") as f:
            f.truncate(size)                              # sparse: no real 50 MB written
        with pytest.raises(InputError) as err:
            pipe.predict(big, "hello")
        assert str(err.value).startswith(f"'big.mp4' is {shown}; the limit is 50 MB."), err.value
    exact = tmp_path / "exact.mp4"
    with open(exact, "wb") as f:
        f.truncate(MAX_FILE_BYTES)
    with pytest.raises(ValueError) as err:               # at the limit: read (and refused as unreadable), not too big
        pipe.predict(exact, "hello")
    assert "the limit is" not in str(err.value)


def test_bad_inputs_raise_user_facing_errors(loaded, make_clip, tmp_path):
    pipe = SentimentPipeline(loaded, max_duration_s=1.0, max_file_bytes=1000)
    good = make_clip("talk.mp4")
    with pytest.raises(InputError, match="No video"):
        pipe.predict(None, "hello")
    with pytest.raises(InputError, match="the limit is"):
        pipe.predict(good, "hello")                       # larger than 1 kB
    pipe = SentimentPipeline(loaded, max_duration_s=1.0)
    with pytest.raises(TooLongError):
        pipe.predict(good, "hello")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    with pytest.raises(UnreadableMediaError, match="Could not read"):
        pipe.predict(corrupt, "hello")
    pipe = SentimentPipeline(loaded)
    with pytest.raises(NoFaceError):
        pipe.predict(make_clip("wall.mp4", face=False), "hello")


def test_weights_missing_or_for_another_extractor(checkpoint, tmp_path, monkeypatch):
    monkeypatch.delenv(weights_mod.ENV_VAR, raising=False)
    monkeypatch.setattr(weights_mod, "DEFAULT_DIR", tmp_path / "empty")
    with pytest.raises(WeightsError, match="No model weights found"):
        load_weights(None)
    with pytest.raises(WeightsError, match="no config.json"):
        load_weights(str(tmp_path))
    other = shutil.copytree(checkpoint, tmp_path / "other")
    config = json.loads((other / "config.json").read_text())
    config["feature_spec"]["video_fps"] = 5.0
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(FeatureSpecMismatch, match="video_fps"):
        load_weights(str(other))
    config["feature_spec"].update(video_fps=10.0, version=99)     # made by a newer mclmcf
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(FeatureSpecMismatch, match=r"version: weights '.*' has 99; this extractor knows versions 1-2"):
        load_weights(str(other))
    config["feature_spec"] = None
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsError, match="feature_spec"):
        load_weights(str(other))


def test_unreachable_hub_falls_back_to_local_weights(checkpoint, tmp_path, monkeypatch):
    monkeypatch.setattr(weights_mod, "hub_reachable", lambda timeout_s=3.0: False)
    monkeypatch.setattr(weights_mod, "DEFAULT_DIR", checkpoint)
    loaded = load_weights("someone/mclmcf-demo@v1")
    assert loaded.source.rstrip("/").endswith("tiny")
    assert "someone/mclmcf-demo@v1" in loaded.notices[0]
    monkeypatch.setattr(weights_mod, "DEFAULT_DIR", tmp_path)
    with pytest.raises(WeightsError, match="no weights to fall back to"):
        load_weights("someone/mclmcf-demo")


def test_registry_loads_each_source_once(checkpoint):
    registry = PipelineRegistry(str(checkpoint))
    assert registry.get() is registry.get("")   # a visitor cannot name the operator's folder by path (#37)
    assert np.isclose(registry.get().label_range, 3.0)
