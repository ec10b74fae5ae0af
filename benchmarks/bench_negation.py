"""Negations and contrasts: sign accuracy of the app's weights beside VADER on a held-out sentence set.

    python benchmarks/bench_negation.py [--set contrast|wider] [--weights checkpoints] [--quick] [--name NAME]

Two sets, neither used for training. ``contrast`` (benchmarks/sets/negation_contrast.csv; in issue #32's
choice rule only as a floor) has 72 sentences, 36 positive and 36 negative, in seven constructions. ``wider``
(negation_wider.csv; its rules in negation_wider.md) has 60 in six constructions the first lacks (double
negation, negation at a distance, hedges, "the only X", concessions stated first, questions and sarcasm),
with a ``dev`` part that may inform choices and a ``heldout`` part reported per part and never used for one.
Polarity rules of ``contrast``: the sentence's overall judgement of the film; a negation flips the word it governs ("not bad"
is positive, "not good" negative); after "but" / "yet" / "though" and in the main clause after
"despite" / "although" / "even with" / "for all", the later judgement wins; when expectations are
reversed, the outcome wins over the expectation; "nothing / no / none" + a word counts as the word
negated.

Each sentence is scored as the app scores a typed transcript: through SentimentPipeline.predict on one
generated face clip whose sound is a voice-like tone without words (its audio/visual features are
extracted once and cached), so only the text changes between sentences. A sign is right when the
score has the sentence's sign (a score of exactly 0 counts as wrong). VADER 3.3.2's compound score
is read the same way. Writes benchmarks/results/negation.json or negation_wider.json (``_quick`` appended
with --quick).
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

from common import machine_info, machine_line, print_table, write_json  # also puts the repo on sys.path

SETS = {name: Path(__file__).resolve().parent / "sets" / f"negation_{name}.csv" for name in ("contrast", "wider")}


def load_set(path: Path = SETS["contrast"]) -> list[dict]:
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


def groups(row: dict) -> list[str]:
    """The table rows a sentence counts in: all, its construction and, where the set has parts, its part."""
    return ["all", row["construction"]] + ([f"part: {row['part']}"] if "part" in row else [])


def sign_accuracy(rows: list[dict], scores: list[float]) -> dict[str, float]:
    """Fraction of right signs, over all rows, per construction and per part."""
    right = defaultdict(list)
    for row, score in zip(rows, scores):
        for group in groups(row):
            right[group].append(score * row["polarity"] > 0)
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
    ap.add_argument("--set", choices=sorted(SETS), default="contrast", help="which sentence set (default contrast)")
    ap.add_argument("--weights", default="checkpoints")
    ap.add_argument("--quick", action="store_true", help="the first two sentences of each construction")
    ap.add_argument("--name", help="results file name under benchmarks/results (default: negation for the contrast "
                                   "set, negation_wider for the wider one; _quick appended with --quick)")
    args = ap.parse_args()
    path = SETS[args.set]
    rows = first_of_each(load_set(path), 2) if args.quick else load_set(path)
    sentences = [r["sentence"] for r in rows]
    ours, vader = app_scores(sentences, args.weights), vader_scores(sentences)
    acc_ours, acc_vader = sign_accuracy(rows, ours), sign_accuracy(rows, vader)
    counts = Counter(group for r in rows for group in groups(r))
    info = machine_info()
    print(f"\nsign accuracy on {path.name} ({len(rows)} sentences), app weights {args.weights} vs VADER; "
          f"{machine_line(info)}")
    table = print_table(["construction", "sentences", "app weights", "VADER 3.3.2"],
                        [[k, counts[k], round(acc_ours[k], 3), round(acc_vader[k], 3)]
                         for k in sorted(acc_ours, key=lambda k: (k != "all", not k.startswith("part:")))])
    wrong = [(r["sentence"], round(s, 2)) for r, s in zip(rows, ours) if s * r["polarity"] <= 0]
    print("app weights, wrong sign:", *(f"  {s!r}: {v:+.2f}" for s, v in wrong), sep="\n")
    default_name = "negation" if args.set == "contrast" else f"negation_{args.set}"
    write_json(args.name or default_name + ("_quick" if args.quick else ""),
               dict(machine=info, weights=args.weights, set=path.name, n=len(rows), accuracy_app=acc_ours,
                    accuracy_vader=acc_vader, rows=[dict(r, app=a, vader=v) for r, a, v in zip(rows, ours, vader)],
                    table=table))


if __name__ == "__main__":
    main()
