"""Negations and contrasts: sign accuracy of the app's weights beside VADER on a held-out sentence set.

    python benchmarks/bench_negation.py [--weights checkpoints] [--quick] [--name negation_other]

The set (benchmarks/sets/negation_contrast.csv, written for this check; never used for training or
model selection) has 72 sentences, 36 positive and 36 negative, in seven constructions. Polarity
rules: the sentence's overall judgement of the film; a negation flips the word it governs ("not bad"
is positive, "not good" negative); after "but" / "yet" / "though" and in the main clause after
"despite" / "although" / "even with" / "for all", the later judgement wins; when expectations are
reversed, the outcome wins over the expectation; "nothing / no / none" + a word counts as the word
negated.

Each sentence is scored as the app scores a typed transcript: through SentimentPipeline.predict on one
generated face clip whose sound is a voice-like tone without words (its audio/visual features are
extracted once and cached), so only the text changes between sentences. A sign is right when the
score has the sentence's sign (a score of exactly 0 counts as wrong). VADER 3.3.2's compound score
is read the same way. Writes benchmarks/results/negation.json (negation_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

from common import machine_info, machine_line, print_table, write_json  # also puts the repo on sys.path

SET = Path(__file__).resolve().parent / "sets" / "negation_contrast.csv"


def load_set(path: Path = SET) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return [dict(row, polarity=int(row["polarity"])) for row in csv.DictReader(f)]


def app_scores(sentences: list[str], weights: str) -> list[float]:
    from mclmcf.serving.pipeline import SentimentPipeline
    from mclmcf.serving.weights import load_weights
    from preprocessing.synthetic import make_face_clip

    pipe = SentimentPipeline(load_weights(weights))
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_face_clip(Path(tmp) / "neutral.mp4", 2.0, fps=10, size=(320, 180), audio="tone")
        return [pipe.predict(clip, s, explain=False).score for s in sentences]


def vader_scores(sentences: list[str]) -> list[float]:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    analyser = SentimentIntensityAnalyzer()
    return [analyser.polarity_scores(s)["compound"] for s in sentences]


def sign_accuracy(rows: list[dict], scores: list[float]) -> dict[str, float]:
    """Fraction of right signs, over all rows and per construction."""
    right = defaultdict(list)
    for row, score in zip(rows, scores):
        ok = score * row["polarity"] > 0
        right["all"].append(ok)
        right[row["construction"]].append(ok)
    return {k: sum(v) / len(v) for k, v in right.items()}


def first_of_each(rows: list[dict], k: int) -> list[dict]:
    """The first ``k`` rows of every construction, in file order."""
    seen = Counter()
    kept = []
    for row in rows:
        seen[row["construction"]] += 1
        if seen[row["construction"]] <= k:
            kept.append(row)
    return kept


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default="checkpoints")
    ap.add_argument("--quick", action="store_true", help="the first two sentences of each construction")
    ap.add_argument("--name", help="results file name under benchmarks/results (default: negation, or "
                                   "negation_quick with --quick), e.g. negation_mpnet for other weights")
    args = ap.parse_args()
    rows = first_of_each(load_set(), 2) if args.quick else load_set()
    sentences = [r["sentence"] for r in rows]
    ours, vader = app_scores(sentences, args.weights), vader_scores(sentences)
    acc_ours, acc_vader = sign_accuracy(rows, ours), sign_accuracy(rows, vader)
    counts = Counter(r["construction"] for r in rows) + Counter(all=len(rows))
    info = machine_info()
    print(f"\nsign accuracy on {SET.name} ({len(rows)} sentences), app weights {args.weights} vs VADER; "
          f"{machine_line(info)}")
    table = print_table(["construction", "sentences", "app weights", "VADER 3.3.2"],
                        [[k, counts[k], round(acc_ours[k], 3), round(acc_vader[k], 3)] for k in acc_ours])
    wrong = [(r["sentence"], round(s, 2)) for r, s in zip(rows, ours) if s * r["polarity"] <= 0]
    print("app weights, wrong sign:", *(f"  {s!r}: {v:+.2f}" for s, v in wrong), sep="\n")
    write_json(args.name or ("negation_quick" if args.quick else "negation"),
               dict(machine=info, weights=args.weights, set=str(SET.name), n=len(rows), accuracy_app=acc_ours,
                    accuracy_vader=acc_vader, rows=[dict(r, app=a, vader=v) for r, a, v in zip(rows, ours, vader)],
                    table=table))


if __name__ == "__main__":
    main()
