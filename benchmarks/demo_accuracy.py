"""Demo weights vs the VADER rule-based analyser on every held-out domain of the demo's training data.

    python benchmarks/demo_accuracy.py [--weights checkpoints] [--data data/rated_snippets] [--split valid] [--out FILE]

Rows: each training domain's test split (movie reviews, tweets, NYT editorials), then the Amazon split,
which no training run or choice has seen (the untouched cross-domain check). Ours and VADER on the same
samples, same metrics; one table, JSON in benchmarks/results/demo_accuracy.json. VADER's compound score lies
in [-1, 1]; it is multiplied by 3 to share the labels' [-3, 3] scale (MAE and the Acc-k depend on that
choice, Corr and Acc-2 do not). `--split valid`: each domain's validation split instead, without the Amazon
split, for choosing between candidate weights (the test splits stay unseen until the choice is made).
Build the data first: python -m preprocessing.rated_snippets
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from common import RESULTS, machine_info, machine_line, print_table  # also puts the repo on sys.path
from mclmcf.training import data as D
from mclmcf.training.config import TrainConfig
from mclmcf.training.metrics import compute_metrics
from mclmcf.model import MCLMCF
from preprocessing.encoders import load_tokenizer
from mclmcf.training.evaluate import predict
from mclmcf.training.runtime import Env

METRICS = ("mae", "corr", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc3", "acc5", "acc7")
HELD_OUT = "amazon"


def vader_predictions(texts) -> np.ndarray:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    analyser = SentimentIntensityAnalyzer()
    return np.array([3 * analyser.polarity_scores(str(t))["compound"] for t in texts])


def evaluation_sets(dataset: dict, split: str = "test") -> dict[str, dict]:
    """{name: samples}: ``split`` per domain (all of it when it names no domains), then, after the test
    split, the held-out split."""
    samples = dataset[split]
    domains = np.asarray(samples.get("domain", [split] * len(samples["regression_labels"])), dtype=object)
    sets = {f"{d} {split}": {k: (np.asarray(v, dtype=object) if isinstance(v, list) else np.asarray(v))[domains == d]
                             for k, v in samples.items()} for d in dict.fromkeys(domains)}
    if split == "test" and HELD_OUT in dataset:
        sets[f"{HELD_OUT} (never trained on)"] = dataset[HELD_OUT]
    return sets


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="checkpoints")
    parser.add_argument("--data", default="data/rated_snippets")
    parser.add_argument("--split", choices=("test", "valid"), default="test")
    parser.add_argument("--out", type=Path, default=RESULTS / "demo_accuracy.json")
    args = parser.parse_args(argv)

    dataset, info = D.load_dataset(args.data)
    model = MCLMCF.from_pretrained(args.weights)
    tokenizer = load_tokenizer(model.config.text_encoder)
    rows, results, seconds, n = [], {}, 0.0, 0
    for name, samples in evaluation_sets(dataset, args.split).items():
        labels = np.asarray(samples["regression_labels"], np.float64)
        split = D.make_split(samples, tokenizer, "tokenize", max_text_len=64)   # the model's own tokenizer
        t0 = time.perf_counter()
        ours = predict(model, split, TrainConfig(eval_batch_size=64), Env())    # fp32, CPU
        seconds, n = seconds + time.perf_counter() - t0, n + len(labels)
        results[name] = {"n": len(labels), "MCL-MCF (these weights)": compute_metrics(ours, labels),
                         "VADER 3.3.2 (compound x 3)": compute_metrics(vader_predictions(samples["raw_text"]), labels)}
        rows += [[name, len(labels), model_name, *(float(m[k]) for k in METRICS)]
                 for model_name, m in results[name].items() if model_name != "n"]

    machine = machine_info()
    print(f"{args.data}: {info.get('name', '')}; weights {args.weights}")
    table = print_table(["set", "n", "model", *METRICS], rows)
    print(f"model inference: {seconds:.1f} s for {n} samples; {machine_line(machine)}")
    result = {"weights": str(args.weights), "data": str(args.data), "sets": results, "inference_seconds": seconds,
              "machine": machine, "table": table}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
