"""preprocessing.minimal_pairs: which snippets are rewritten, each rule's text and label, and the dataset it
writes (rewrites voiced by espeak-ng, the source's face features, the other splits untouched).

The snippets are written here in the style of the rated set (the real one needs `pip download`)."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest

from preprocessing.dataformat import load_safe, save_safe
from preprocessing.minimal_pairs import build, candidates, eligible, negate_copula, rewrite_split
from preprocessing.spec import FeatureSpec

POSITIVE = "The plot is clever and the cast is superb."
NEGATIVE = "The jokes are stale."


def by_rule(text, label, domain="movie"):
    return {r.rule: r for r in candidates(text, label, domain, np.random.default_rng(0))}


def test_only_clear_single_clauses_without_negation_are_rewritten():
    assert eligible(POSITIVE, 2.0) and eligible(NEGATIVE, -1.5)
    assert not eligible(POSITIVE, 0.5)                                   # too mild to flip reliably
    assert not eligible("The plot is not clever at all.", 2.0)           # already negated
    assert not eligible("The cast is superb but the plot is thin.", 1.0)  # a contrast decides it already
    assert not eligible("The most charming romantic comedy of the year.", 2.0)   # a fragment: no clause to embed
    assert not eligible('It is "the best" film.', 2.0)                    # quotations do not embed cleanly
    assert not eligible("Is the plot clever?", 2.0)


def test_each_rule_writes_its_construction_with_its_label():
    rules = by_rule(POSITIVE, 2.0)
    assert set(rules) == {"negated_embedding", "affirmed_embedding", "negated_copula", "double_negation",
                          "only_good_thing"}
    assert rules["negated_embedding"].text.endswith(" the plot is clever and the cast is superb.")
    assert rules["negated_embedding"].label == -1.0 and rules["affirmed_embedding"].label == 2.0
    assert rules["negated_copula"].text == "The plot is not clever and the cast is superb."
    assert rules["negated_copula"].label == -1.0
    assert rules["double_negation"].text.endswith(" the plot is not clever and the cast is superb.")
    assert rules["double_negation"].label == 1.0
    assert rules["only_good_thing"].label == -1.0
    negative = by_rule(NEGATIVE, -1.5)
    assert "only_good_thing" not in negative and negative["sarcastic_frame"].label == -1.5
    assert negative["negated_embedding"].label == 0.75
    assert "sarcastic_frame" not in by_rule(NEGATIVE, -1.5, domain="nyt")   # editorials are not sarcastic films


def test_copula_negation_only_in_the_main_clause_and_not_of_superlatives():
    assert negate_copula("It's clear the ending is rushed.") is None     # first verb is not is/was/are/were
    assert negate_copula("The cast is the best this year.") is None      # "not the best" is a hedge, not a flip
    assert negate_copula("The songs were lovely.") == "The songs were not lovely."


def test_two_different_rules_per_source_and_tweets_left_alone():
    split = {"raw_text": np.array([POSITIVE, NEGATIVE, "This is the happiest day :)"], object),
             "regression_labels": np.array([2.0, -1.5, 2.5], np.float32),
             "domain": np.array(["movie", "nyt", "tweets"], object)}
    sources, rewrites = rewrite_split(split, seed=1)
    assert sources == [0, 0, 1, 1]
    assert rewrites[0].rule != rewrites[1].rule and rewrites[2].rule != rewrites[3].rule


def split_of(texts, labels, domains, rng, frames=9):
    n = len(texts)
    spec = FeatureSpec()
    return {"id": [f"s{i}" for i in range(n)], "domain": domains, "raw_text": texts,
            "audio": rng.normal(size=(n, frames, spec.audio_dim)).astype(np.float32),
            "audio_lengths": np.full(n, frames, np.int64),
            "vision": rng.normal(size=(n, 4, spec.visual_dim)).astype(np.float32),
            "vision_lengths": np.array([4, 3, 2][:n] + [4] * max(0, n - 3), np.int64),
            "regression_labels": np.array(labels, np.float32),
            "rater_sd": np.full(n, 0.5, np.float32), "n_raters": np.full(n, 20, np.int64)}


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt-get install espeak-ng)")
def test_the_dataset_gains_voiced_rewrites_in_train_only(tmp_path):
    rng = np.random.default_rng(0)
    data = {"train": split_of([POSITIVE, NEGATIVE, "so happy today :)"], [2.0, -1.5, 2.5], ["movie", "movie", "tweets"], rng),
            "valid": split_of([NEGATIVE], [-1.5], ["movie"], rng), "test": split_of([POSITIVE], [2.0], ["movie"], rng)}
    save_safe(data, tmp_path / "data", info={"name": "written for this test"})
    build(tmp_path / "data", tmp_path / "pairs", workers=1)
    out, info = load_safe(tmp_path / "pairs")
    train = out["train"]
    assert len(train["raw_text"]) == 3 + 4 and info["minimal_pairs"]["rewrites"] == 4
    assert [i.split("_", 1)[0] for i in train["id"][3:]] == ["s0", "s0", "s1", "s1"]
    spoken = train["audio_lengths"][3:]
    assert (spoken > 20).all() and np.isfinite(train["audio"][3:]).all()   # espeak spoke each rewrite
    np.testing.assert_array_equal(train["vision"][3, :4], data["train"]["vision"][0, :4])   # the source's face
    assert train["vision_lengths"][5] == 3 and (train["rater_sd"][3:] == 0.5).all()
    np.testing.assert_array_equal(out["valid"]["audio"], data["valid"]["audio"])
    with open(tmp_path / "pairs" / "pairs.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["source"] for r in rows] == [POSITIVE, POSITIVE, NEGATIVE, NEGATIVE]
    assert all(float(r["label"]) == pytest.approx(float(t)) for r, t in zip(rows, train["regression_labels"][3:]))
