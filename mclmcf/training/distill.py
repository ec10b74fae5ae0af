"""The demo's training set relabelled by a teacher model, plus teacher-labelled variants (distillation).

    python -m mclmcf.training.distill --teacher checkpoints [--data data/rated_snippets]
        [--out data/distilled_snippets] [--alpha 0.5] [--variants 8000] [--workers 2] [--speech-cache DIR]

Why: the low-rank-adapted MPNet weights (checkpoints/, the default) read text better than a fine-tuned
MiniLM, at about four times the encoder cost. A small student learns more from a
large teacher when it sees the teacher's answers, also on text nobody rated (Hinton et al. 2015; Tang et
al. 2019, "Distilling Task-Specific Knowledge from BERT into Simple Neural Networks", label rule-made
variants of the training sentences with the teacher).

Only the train split changes:
  rated snippets  target = (1 - alpha) x human rating + alpha x teacher score. One blended target rather
                  than a blend of two L1 losses, whose minimum sits at whichever label weighs more.
  variants        target = teacher score. Made from training snippets by three generic, seeded rules:
                  span (a contiguous run of 50-90 % of the words), drop (each word left out with
                  probability 0.15), join (the snippet followed by another of its domain). No rule looks
                  for negations or contrasts, and the negation/contrast set (benchmarks/sets) is not read.
                  Voiced like every snippet (rated_snippets.voice_all); the visual stream is the source
                  snippet's face clip; rater_sd is the train split's median, so under --sample-weight
                  agreement a variant weighs as much as a snippet of median rater agreement.
Validation, test and Amazon splits are copied unchanged: choices and reports stay on human ratings.
Every train sample keeps ``teacher_score`` and ``origin`` (rated / span / drop / join).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from mclmcf.model import MCLMCF
from mclmcf.training.config import TrainConfig
from mclmcf.training.data import load_dataset, make_split, validate
from mclmcf.training.evaluate import predict
from mclmcf.training.runtime import Env
from preprocessing.dataformat import pad_sequences, save_safe
from preprocessing.encoders import load_tokenizer
from preprocessing.rated_snippets import padded_rows, voice_all

RULES = ("span", "drop", "join")
DROP_PROBABILITY = 0.15
SPAN_FRACTION = (0.5, 0.9)
MAX_JOINED_WORDS = 40          # two snippets together stay well inside max_text_len = 64 tokens
MAX_TEXT_LEN = 64              # the demo weights' training setting (checkpoints/train.json)
SEED = 0


def make_variants(texts: list[str], domains: np.ndarray, n: int, seed: int = SEED) -> list[tuple[int, str, str]]:
    """``n`` new texts (source index, rule, text), each different from every snippet and every other variant."""
    rng = np.random.default_rng(seed)
    words = [t.split() for t in texts]
    same_domain = {d: np.flatnonzero(domains == d) for d in set(domains)}
    seen, variants = set(texts), []
    for _ in range(50 * n):
        if len(variants) == n:
            break
        i, rule = int(rng.integers(len(texts))), RULES[int(rng.integers(len(RULES)))]
        w = words[i]
        if rule == "span":
            lo, hi = (math.ceil(f * len(w)) for f in SPAN_FRACTION)
            size = int(rng.integers(lo, hi + 1)) if len(w) >= 4 else 0
            start = int(rng.integers(0, len(w) - size + 1))
            new = w[start:start + size] if size < len(w) else []
        elif rule == "drop":
            keep = rng.random(len(w)) >= DROP_PROBABILITY
            new = [x for x, k in zip(w, keep) if k] if 2 <= keep.sum() < len(w) else []
        else:
            j = int(rng.choice(same_domain[domains[i]]))
            new = w + words[j] if j != i and len(w) + len(words[j]) <= MAX_JOINED_WORDS else []
        text = " ".join(new)
        if new and text not in seen:
            seen.add(text)
            variants.append((i, rule, text))
    if len(variants) < n:
        raise ValueError(f"made only {len(variants)} distinct variants of {len(texts)} snippets; ask for fewer")
    return variants


def teacher_scores(teacher: MCLMCF, samples: dict, progress: bool = True) -> np.ndarray:
    """The teacher's score for every sample, as the trainer's evaluation computes it (fp32)."""
    split = make_split(samples, load_tokenizer(teacher.config.text_encoder), "tokenize", MAX_TEXT_LEN)
    return predict(teacher, split, TrainConfig(eval_batch_size=64), Env(), progress=progress)


def distilled_train(train: dict, teacher: MCLMCF, alpha: float, n_variants: int, speech_cache: Path,
                    workers: int, seed: int = SEED) -> dict:
    texts, domains = [str(t) for t in train["raw_text"]], np.asarray(train["domain"], dtype=object)
    variants = make_variants(texts, domains, n_variants, seed)
    src = np.array([v[0] for v in variants], np.int64)
    audio, lengths = padded_rows(voice_all([v[2] for v in variants], speech_cache, workers), train["audio"].shape[2])
    made = {"audio": audio, "audio_lengths": lengths, "vision": train["vision"][src],
            "vision_lengths": train["vision_lengths"][src], "raw_text": [v[2] for v in variants],
            "regression_labels": np.zeros(len(variants), np.float32)}
    rated_scores, made_scores = teacher_scores(teacher, train), teacher_scores(teacher, made)
    human = np.asarray(train["regression_labels"], np.float32)
    return {
        "id": [*map(str, train["id"]), *(f"{train['id'][i]}~{rule}{k}" for k, (i, rule, _) in enumerate(variants))],
        "domain": [*domains, *domains[src]], "raw_text": [*texts, *made["raw_text"]],
        "origin": ["rated"] * len(texts) + [v[1] for v in variants],
        # the snippets' and the variants' padded audio, padded again to the longer of the two
        "audio": pad_sequences([*train["audio"], *audio])[0],
        "audio_lengths": np.concatenate([train["audio_lengths"], lengths]),
        "vision": np.concatenate([train["vision"], made["vision"]]),     # the variants' rows are train rows
        "vision_lengths": np.concatenate([train["vision_lengths"], made["vision_lengths"]]),
        "regression_labels": np.concatenate([(1 - alpha) * human + alpha * rated_scores, made_scores]).astype(np.float32),
        "teacher_score": np.concatenate([rated_scores, made_scores]).astype(np.float32),
        "rater_sd": np.concatenate([train["rater_sd"], np.full(len(variants), np.median(train["rater_sd"]))]
                                   ).astype(np.float32),
        "n_raters": np.concatenate([train["n_raters"], np.zeros(len(variants), np.int64)]),
    }


def build(teacher_dir: str, data_dir: Path, out: Path, alpha: float, n_variants: int, workers: int,
          speech_cache: Path) -> Path:
    if not 0 <= alpha <= 1:
        raise SystemExit(f"--alpha {alpha}: the teacher's share of the target must lie in [0, 1]")
    data, info = load_dataset(data_dir)
    validate(data, data_dir)
    if "raw_text" not in data["train"] or "domain" not in data["train"]:
        raise SystemExit(f"{data_dir}: needs raw_text and domain per sample (python -m preprocessing.rated_snippets)")
    teacher = MCLMCF.from_pretrained(teacher_dir)
    if info.get("feature_spec") and teacher.config.feature_spec and info["feature_spec"] != teacher.config.feature_spec:
        raise SystemExit(f"{teacher_dir} was trained on other acoustic/visual features than {data_dir} holds "
                         "(feature_spec differs): rebuild the data with the teacher's spec version, or pick another teacher")
    data["train"] = distilled_train(data["train"], teacher, alpha, n_variants, speech_cache, workers)
    origins = data["train"]["origin"]
    info = {**info, "name": f"{info.get('name', data_dir)}; train split relabelled by a teacher",
            "distillation": {"teacher": str(teacher_dir), "teacher_text_encoder": teacher.config.text_encoder,
                             "alpha": alpha, "variant_seed": SEED,
                             "counts": {o: origins.count(o) for o in ("rated", *RULES)},
                             "targets": "rated: (1 - alpha) x human + alpha x teacher; variants: teacher"}}
    return save_safe(data, out, info=info)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", required=True, help="weights directory of the teacher (e.g. checkpoints)")
    parser.add_argument("--data", type=Path, default=Path("data/rated_snippets"))
    parser.add_argument("--out", type=Path, default=Path("data/distilled_snippets"))
    parser.add_argument("--alpha", type=float, default=0.5, help="the teacher's share of a rated snippet's target")
    parser.add_argument("--variants", type=int, default=8000, help="teacher-labelled variants to add")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--speech-cache", type=Path, help="voiced-feature cache (default DATA/speech_cache)")
    args = parser.parse_args(argv)
    out = build(args.teacher, args.data, args.out, args.alpha, args.variants, args.workers,
                args.speech_cache or args.data / "speech_cache")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
