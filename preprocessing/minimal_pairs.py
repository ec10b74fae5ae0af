"""Minimal pairs: training snippets rewritten into negations, hedged embeddings and sarcastic frames.

    python -m preprocessing.minimal_pairs --data data/rated_snippets --out data/rated_snippets_pairs [--workers 2]

Each eligible *training* snippet of the movie and nyt domains gets two rewrites by different rules (--per-source);
its rated original stays in the set, so the model sees the pairs. The new dataset is the old one with the rewrites added to the training split;
valid, test and Amazon are copied unchanged. OUT/pairs.csv lists every rewrite beside its source, for reading.

Eligible: a single sentence of 4-25 words, rated clearly (|label| >= 0.75 on [-3, 3]), starting with a subject
word ("the", "this", "it", ...) and holding a finite verb (so that it embeds as a clause), without negation,
contrast word, question or quotation. Tweets are left out:
their emoticons and hashtags carry sentiment that a rewrite of the words does not change.

Rules (``label`` is the source's rating on [-3, 3]; the rules of a source are drawn uniformly among those that apply):

  negated_embedding   "I don't think the plot is clever."           -0.5 x label
  affirmed_embedding  "I'd say the plot is clever."                  label       (control: same frame, no negation)
  negated_copula      "The plot is not clever."                      -0.5 x label  (needs is/was/are/were; no superlative)
  double_negation     "I can't say that the plot is not clever."      0.5 x label  (same condition)
  sarcastic_frame     "Oh great, the plot is a mess."                label       (negative movie sources only)
  only_good_thing     "The only good thing about it is that the      -0.5 x label  (positive movie sources only)
                       photography is lovely."

Why these labels: a negated judgement flips and weakens (VADER's rule scales a negated word by -0.74; raters
score "not good" milder than "bad"); 0.5 is the round figure this set uses for every flip. A double negation
weakens without flipping; a sarcastic opener does not change what the sentence says; "the only good thing is X"
concedes X and condemns the rest.
"""

from __future__ import annotations

import argparse
import csv
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .dataformat import load_safe, pad_sequences, save_safe
from .rated_snippets import voice_all

DOMAINS = ("movie", "nyt")
MIN_ABS_LABEL = 0.75
WORDS = (4, 25)
FLIP, DOUBLE = -0.5, 0.5
SEED = 32
PER_SOURCE = 2

NEGATION = re.compile(r"\b(not|no|never|nothing|nobody|none|neither|nor|hardly|barely|scarcely|without|cannot)\b"
                      r"|n't\b", re.I)
CONTRAST = re.compile(r"\b(but|although|though|yet|however|despite|while|whereas)\b", re.I)
SUBJECT = re.compile(r"^(the|this|it|it's|its|he|she|they|these|those|that|there|his|her|their)\b", re.I)
# a finite verb, so that the snippet embeds as a clause ("I don't think the plot works"), not a fragment
FINITE_VERB = re.compile(r"\b(is|was|are|were|has|have|had|will|would|can|could|may|might|must|should|does|did|"
                         r"it's|that's|there's|he's|she's|they're|seems|feels|looks|makes|gives|lacks|offers|"
                         r"remains|becomes|manages|tries|works|needs|takes|comes|goes|gets|keeps|falls|turns|"
                         r"proves|plays|tells|shows|leaves|wants|delivers|succeeds|fails)\b", re.I)
COPULA = re.compile(r"\b(is|was|are|were)\b")
SUPERLATIVE = re.compile(r"\b(best|worst|most|least|greatest|finest|funniest|ever)\b", re.I)
SECOND_SENTENCE = re.compile(r"[.!?;:]\s+\S")

NEGATING_FRAMES = ("I don't think", "I don't believe", "I wouldn't say", "Nobody could honestly say",
                   "I can't agree that", "It isn't true that", "I doubt that", "No one I know would say")
AFFIRMING_FRAMES = ("I think", "I believe", "I'd say", "Everyone I know would say", "It's true that",
                    "I have no doubt that")
DOUBLE_FRAMES = ("I can't say that", "It isn't true that", "Nobody would claim that")
SARCASTIC_FRAMES = ("Oh great,", "Oh wonderful,", "What a treat:", "Just what I wanted:", "Lovely,")
ONLY_FRAMES = ("The only good thing about it is that", "Its one redeeming feature is that")


@dataclass(frozen=True)
class Rewrite:
    rule: str
    text: str
    label: float


def eligible(text: str, label: float) -> bool:
    text = text.strip()
    return (abs(label) >= MIN_ABS_LABEL and WORDS[0] <= len(text.split()) <= WORDS[1]
            and not NEGATION.search(text) and not CONTRAST.search(text) and "?" not in text
            and not SECOND_SENTENCE.search(text) and '"' not in text and SUBJECT.match(text) is not None
            and FINITE_VERB.search(text) is not None)


def clause(text: str) -> str:
    """The sentence as an embedded clause: first letter lowered, end punctuation dropped."""
    text = text.strip().rstrip(".!")
    return text[0].lower() + text[1:]


def negate_copula(text: str) -> str | None:
    """"not" after the sentence's first verb when that verb is is/was/are/were (so the main clause is negated,
    not a subordinate one); None otherwise or when a superlative would make the negation a mere hedge."""
    verb = FINITE_VERB.search(text)
    if SUPERLATIVE.search(text) or verb is None or not COPULA.fullmatch(verb.group()):
        return None
    return COPULA.sub(lambda m: f"{m.group(1)} not", text, count=1)


def candidates(text: str, label: float, domain: str, rng: np.random.Generator) -> list[Rewrite]:
    """Every rule that applies to one eligible snippet, each with its frame drawn by ``rng``."""
    pick = lambda frames: frames[rng.integers(len(frames))]  # noqa: E731
    embedded = clause(text)
    out = [Rewrite("negated_embedding", f"{pick(NEGATING_FRAMES)} {embedded}.", FLIP * label),
           Rewrite("affirmed_embedding", f"{pick(AFFIRMING_FRAMES)} {embedded}.", label)]
    negated = negate_copula(text)
    if negated is not None:
        out += [Rewrite("negated_copula", negated.strip().rstrip(".!") + ".", FLIP * label),
                Rewrite("double_negation", f"{pick(DOUBLE_FRAMES)} {clause(negated)}.", DOUBLE * label)]
    if domain == "movie":
        out.append(Rewrite("sarcastic_frame", f"{pick(SARCASTIC_FRAMES)} {embedded}.", label) if label < 0 else
                   Rewrite("only_good_thing", f"{pick(ONLY_FRAMES)} {embedded}.", FLIP * label))
    return out


def rewrite_split(split: dict, seed: int = SEED, per_source: int = PER_SOURCE) -> tuple[list[int], list[Rewrite]]:
    """(source row, rewrite) for every eligible row of a training split, ``per_source`` different rules per row
    (fewer where fewer apply)."""
    rng = np.random.default_rng(seed)
    sources, rewrites = [], []
    for i, (text, label, domain) in enumerate(zip(split["raw_text"], split["regression_labels"], split["domain"])):
        if domain in DOMAINS and eligible(str(text), float(label)):
            options = candidates(str(text), float(label), str(domain), rng)
            for k in rng.permutation(len(options))[:per_source]:
                sources.append(i)
                rewrites.append(options[k])
    return sources, rewrites


def rows(array: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    return [array[i, :n] for i, n in enumerate(lengths)]


def build(data: Path, out: Path, workers: int, seed: int = SEED, per_source: int = PER_SOURCE,
          speech_cache: Path | None = None) -> Path:
    dataset, info = load_safe(data)
    train = dataset["train"]
    sources, rewrites = rewrite_split(train, seed, per_source)
    if not rewrites:
        raise SystemExit(f"{data}: no eligible training snippet in the domains {DOMAINS}")
    voiced = voice_all([r.text for r in rewrites], speech_cache or data / "speech_cache", workers)
    audio, audio_lengths = pad_sequences(rows(train["audio"], train["audio_lengths"]) + voiced)
    faces = rows(train["vision"], train["vision_lengths"])
    vision, vision_lengths = pad_sequences(faces + [faces[i] for i in sources])   # a rewrite keeps its source's face
    src = np.asarray(sources)
    dataset["train"] = {
        "id": [*train["id"], *(f"{train['id'][i]}_{r.rule}" for i, r in zip(sources, rewrites))],
        "domain": [*train["domain"], *train["domain"][src]],
        "raw_text": [*train["raw_text"], *(r.text for r in rewrites)],
        "audio": audio, "audio_lengths": audio_lengths, "vision": vision, "vision_lengths": vision_lengths,
        "regression_labels": np.concatenate([train["regression_labels"],
                                             np.array([r.label for r in rewrites], np.float32)]),
        "rater_sd": np.concatenate([train["rater_sd"], train["rater_sd"][src]]),   # the source's agreement
        "n_raters": np.concatenate([train["n_raters"], train["n_raters"][src]]),
    }
    counts = dict(Counter(r.rule for r in rewrites))
    info = {**info, "minimal_pairs": {"source": str(data), "seed": seed, "per_source": per_source,
                                      "rewrites": len(rewrites),
                                      "by_rule": counts, "rules": "preprocessing/minimal_pairs.py"}}
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "pairs.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["source_id", "rule", "source_label", "label", "source", "rewrite"])
        for i, r in zip(sources, rewrites):
            writer.writerow([train["id"][i], r.rule, f"{train['regression_labels'][i]:.2f}", f"{r.label:.2f}",
                             train["raw_text"][i], r.text])
    return save_safe(dataset, out, info=info)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data/rated_snippets"))
    parser.add_argument("--out", type=Path, default=Path("data/rated_snippets_pairs"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--per-source", type=int, default=PER_SOURCE, help="rewrites per eligible snippet (rules differ)")
    parser.add_argument("--speech-cache", type=Path, help="voiced features cache (default DATA/speech_cache)")
    args = parser.parse_args(argv)
    out = build(args.data, args.out, args.workers, args.seed, args.per_source, args.speech_cache)
    print(f"wrote {out}; read a sample of the rewrites in {out / 'pairs.csv'}")


if __name__ == "__main__":
    main()
