"""Distillation data: teacher-labelled variants follow their rules; targets blend human and teacher as stated."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from mclmcf.training import data as D
from preprocessing.dataformat import save_safe
from mclmcf.model import MCLMCF
from preprocessing.encoders import load_tokenizer
from mclmcf.training.distill import MAX_JOINED_WORDS, build, make_variants
from preprocessing.rated_snippets import voice_all
from preprocessing.spec import FeatureSpec
from tiny_model import tiny_config

TEXTS = ["the film was a quiet delight from start to finish", "dull and far too long for its own good",
         "a cast that never finds its footing", "great fun", "I laughed, I cried, I bought the soundtrack",
         "what a waste of a good director", "thin plot but lovely pictures all the way", "ok"]
DOMAINS = np.array(["movie", "movie", "movie", "tweets", "tweets", "nyt", "nyt", "nyt"], dtype=object)


def test_variants_follow_their_rules_and_are_new():
    variants = make_variants(TEXTS, DOMAINS, 40, seed=3)
    assert variants == make_variants(TEXTS, DOMAINS, 40, seed=3)
    assert variants != make_variants(TEXTS, DOMAINS, 40, seed=4)
    assert len({v[2] for v in variants}) == 40 and not {v[2] for v in variants} & set(TEXTS)
    assert {v[1] for v in variants} == {"span", "drop", "join"}
    for source, rule, text in variants:
        src, new = TEXTS[source].split(), text.split()
        if rule == "span":      # a contiguous run of 50-90 % of the words
            assert 0.5 * len(src) <= len(new) < len(src)
            assert any(src[k:k + len(new)] == new for k in range(len(src)))
        elif rule == "drop":    # words left out, order kept, at least two left
            assert 2 <= len(new) < len(src)
            rest = iter(src)
            assert all(word in rest for word in new)
        else:                   # followed by another snippet of the same domain
            assert new[:len(src)] == src and len(new) <= MAX_JOINED_WORDS
            tail = " ".join(new[len(src):])
            assert any(tail == t and d == DOMAINS[source] for t, d in zip(TEXTS, DOMAINS) if t != TEXTS[source])


def test_too_many_variants_asked_of_too_little_text_is_an_error():
    with pytest.raises(ValueError, match="ask for fewer"):
        make_variants(["ok", "fine"], np.array(["movie", "movie"], dtype=object), 50)


def _rated_set(path, rng):
    """Laid out as preprocessing.rated_snippets writes it. SYNTHETIC ratings and random acoustic/visual
    features (the real set takes ~20 min to voice)."""
    spec = FeatureSpec()

    def split(n):
        return {"id": [f"s{i}" for i in range(n)], "raw_text": [TEXTS[i % len(TEXTS)] for i in range(n)],
                "domain": [DOMAINS[i % len(TEXTS)] for i in range(n)],
                "regression_labels": rng.uniform(-3, 3, n).astype(np.float32),
                "rater_sd": rng.uniform(0.2, 1.5, n).astype(np.float32), "n_raters": np.full(n, 20),
                "audio": rng.normal(size=(n, 7, spec.audio_dim)).astype(np.float32), "audio_lengths": np.full(n, 7),
                "vision": rng.normal(size=(n, 5, spec.visual_dim)).astype(np.float32), "vision_lengths": np.full(n, 5)}

    return save_safe({"train": split(len(TEXTS)), "valid": split(4), "test": split(4), "amazon": split(3)}, path,
                     info={"name": "miniature (synthetic)", "feature_spec": spec.to_dict()})


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt-get install espeak-ng)")
def test_teacher_relabels_the_train_split_only(tmp_path):
    spec = FeatureSpec()
    torch.manual_seed(0)
    teacher_dir = tmp_path / "teacher"
    MCLMCF(tiny_config(audio_dim=spec.audio_dim, visual_dim=spec.visual_dim)).for_inference().save_pretrained(teacher_dir)
    source = _rated_set(tmp_path / "rated", np.random.default_rng(0))
    out = build(str(teacher_dir), source, tmp_path / "distilled", alpha=0.25, n_variants=6, workers=1,
                speech_cache=tmp_path / "speech")
    before, _ = D.load_dataset(source)
    after, info = D.load_dataset(out)
    assert D.validate(after, out) == {}
    for split in ("valid", "test", "amazon"):
        assert all(np.array_equal(np.asarray(before[split][k]), np.asarray(after[split][k])) for k in before[split])

    train, n = after["train"], len(TEXTS)
    assert list(train["origin"][:n]) == ["rated"] * n and len(train["origin"]) == n + 6
    assert set(train["origin"][n:]) <= {"span", "drop", "join"}
    assert info["distillation"]["counts"]["rated"] == n and info["distillation"]["alpha"] == 0.25

    # the teacher's score, recomputed sample by sample with the teacher's own forward pass
    teacher = MCLMCF.from_pretrained(teacher_dir).eval()
    tokenizer = load_tokenizer(teacher.config.text_encoder)
    split = D.make_split(train, tokenizer, "tokenize", 64)
    with torch.no_grad():
        own = np.array([teacher(**{k: v for k, v in D.collate(split, [i]).items() if k != "labels"}).score.item()
                        for i in range(len(split))])
    np.testing.assert_allclose(train["teacher_score"], own, atol=1e-5)
    human = before["train"]["regression_labels"]
    np.testing.assert_allclose(train["regression_labels"][:n], 0.75 * human + 0.25 * own[:n], atol=1e-5)
    np.testing.assert_allclose(train["regression_labels"][n:], own[n:], atol=1e-5)

    # variants: their own voice, their source's face, a median-agreement weight
    for k in range(n, n + 6):
        voiced = voice_all([train["raw_text"][k]], tmp_path / "speech", workers=1)[0]
        assert train["audio_lengths"][k] == len(voiced)
        np.testing.assert_array_equal(train["audio"][k, :len(voiced)], voiced)
        src = int(train["id"][k].split("~")[0][1:])
        np.testing.assert_array_equal(train["vision"][k], before["train"]["vision"][src])
        assert train["domain"][k] == before["train"]["domain"][src]
    assert np.all(train["rater_sd"][n:] == np.median(before["train"]["rater_sd"]))
    weights = D.make_split(train, tokenizer, "tokenize", 64, sample_weight="agreement").weights
    assert weights.shape == (n + 6,) and np.isclose(weights.mean(), 1)


def test_a_teacher_of_other_features_is_refused(tmp_path):
    torch.manual_seed(0)
    spec_v1 = FeatureSpec.of_version(1)
    config = tiny_config(audio_dim=spec_v1.audio_dim, visual_dim=spec_v1.visual_dim, feature_spec=spec_v1.to_dict())
    MCLMCF(config).for_inference().save_pretrained(tmp_path / "teacher")
    source = _rated_set(tmp_path / "rated", np.random.default_rng(0))          # spec version 2
    with pytest.raises(SystemExit, match="feature_spec differs"):
        build(str(tmp_path / "teacher"), source, tmp_path / "out", 0.5, 2, 1, tmp_path / "speech")
