"""The benchmark scripts run end to end in --quick mode and write their JSON (times are not checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
    for text in (proc.stdout, train["table"]):
        assert "| configuration" in text
