"""Demo weights vs the VADER rule-based analyser on the held-out movie-review test split.

    python benchmarks/demo_accuracy.py [--weights checkpoints] [--data data/movie_reviews]

Prints one table (ours beside VADER, same samples, same metrics) and writes
benchmarks/results/demo_accuracy.json. VADER's compound score lies in [-1, 1]; it is multiplied by 3
to share the labels' [-3, 3] scale (MAE and the Acc-k depend on that choice, Corr and Acc-2 do not).
Build the data first: python -m preprocessing.movie_reviews --out data/movie_reviews
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from common import RESULTS, machine_info, machine_line, print_table  # also puts the repo on sys.path
from mclmcf import data as D
from mclmcf.metrics import compute_metrics
from mclmcf.model import MCLMCF
from mclmcf.config import TrainConfig
from mclmcf.trainer import Env, predict

METRICS = ("mae", "corr", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc3", "acc5", "acc7")


def vader_predictions(texts) -> np.ndarray:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    analyser = SentimentIntensityAnalyzer()
    return np.array([3 * analyser.polarity_scores(str(t))["compound"] for t in texts])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="checkpoints")
    parser.add_argument("--data", default="data/movie_reviews")
    parser.add_argument("--split", default="test")
    parser.add_argument("--out", type=Path, default=RESULTS / "demo_accuracy.json")
    args = parser.parse_args(argv)

    dataset, info = D.load_dataset(args.data)
    raw = dataset[args.split]
    labels = raw["regression_labels"].astype(np.float64)
    model = MCLMCF.from_pretrained(args.weights)
    t0 = time.perf_counter()
    ours = predict(model, D.make_split(raw), TrainConfig(eval_batch_size=64), Env())   # fp32, CPU
    seconds = time.perf_counter() - t0
    rows = {"MCL-MCF (these weights)": compute_metrics(ours, labels),
            "VADER 3.3.2 (compound x 3)": compute_metrics(vader_predictions(raw["raw_text"]), labels)}

    machine = machine_info()
    print(f"{args.split} split of {args.data}: {len(labels)} snippets ({info.get('name', '')})")
    table = print_table(["model", *METRICS], [[name, *(float(m[k]) for k in METRICS)] for name, m in rows.items()])
    print(f"model inference: {seconds:.1f} s for {len(labels)} samples; {machine_line(machine)}")

    result = {"weights": str(args.weights), "data": str(args.data), "split": args.split, "n": len(labels),
              "metrics": rows, "inference_seconds": seconds, "machine": machine, "table": table}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
