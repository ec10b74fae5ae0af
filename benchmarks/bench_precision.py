"""Serving precision of the text encoder: fp32 beside dynamic int8 and bf16, on the app's weights.

    python benchmarks/bench_precision.py [--weights checkpoints] [--vader-sdist FILE] [--snippets N] [--quick]

Variants (the rest of the network stays fp32 in all three):
  fp32   the text encoder as the app serves it
  int8   torch.ao.quantization.quantize_dynamic on the text encoder's nn.Linear layers: qint8 weights with one
         scale per tensor (its default) or per output channel, each activation quantized on the fly per batch
  bf16   the text encoder's weights and activations in bfloat16, its token states handed back in fp32; only
         where the CPU has bf16 arithmetic (avx512_bf16 or AMX: torch.ops.mkldnn._is_mkldnn_bf16_supported)
Sets: the validation split of the demo's rated snippets (preprocessing.rated_snippets: movie reviews, tweets,
NYT editorials, 1,999 snippets; the vaderSentiment sdist is fetched with pip unless --vader-sdist) and every
sentence of both negation sets (benchmarks/sets/negation_contrast.csv, negation_wider.csv). Each text is scored
as bench_negation scores a typed transcript: one generated face clip whose sound is a voice-like tone (features
extracted once), the text tokenized by the weights' tokenizer up to preprocessing.text's window length (one
window; longer snippets are cut there), in batches of 32 texts of similar length.
Columns: largest and mean |score - fp32 score| per set (scores on [-3, 3]), negation sentences whose sign
differs from fp32's, sign accuracy on the negation sets, seconds to score the validation split, and the median
time of one request's text pass (a 36-word transcript, batch 1, 10 runs after a warm-up, the variants
taking turns). Issue #39's rule: a
variant ships only with |difference| <= 0.02 on every set and every negation sign kept.
--snippets N scores every (1,999 // N)-th validation snippet from the start, N in all (movie reviews come first,
NYT editorials last), --quick 200 of them.
Writes benchmarks/results/precision.json (``precision_quick.json`` with --quick).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

from bench_negation import SETS, load_set
from common import ROOT, machine_info, machine_line, print_table, write_json
from preprocessing.text import DEFAULT_MAX_LENGTH

MAX_DIFF = 0.02
BATCH = 32
REQUEST = ("I went in expecting very little, and honestly the first half dragged, but the ending was moving "
           "and the two leads were wonderful together, so I left the cinema happier than I have been in weeks.")


def validation_snippets(sdist: Path | None, limit: int | None) -> list[str]:
    from preprocessing import rated_snippets as R
    with tempfile.TemporaryDirectory() as tmp:
        sdist = sdist or R.fetch_sdist(Path(tmp))
        texts = []
        for domain in R.TRAINING_DOMAINS:
            snippets = R.read_domain(sdist, domain)
            split = R.assign_splits(len(snippets.texts))
            texts += [t for t, s in zip(snippets.texts, split) if s == "valid"]
    return texts[::max(1, len(texts) // limit)][:limit] if limit else texts   # a subset spaced out over the domains


class BF16Encoder(torch.nn.Module):
    """A text encoder with weights and activations in bfloat16, its token states handed back in float32."""

    def __init__(self, encoder: torch.nn.Module):
        super().__init__()
        self.encoder, self.config = encoder.to(torch.bfloat16), encoder.config

    def forward(self, **kwargs):
        out = self.encoder(**kwargs)
        out.last_hidden_state = out.last_hidden_state.float()
        return out


def variants(model) -> dict:
    """name -> model with the text encoder in that precision (deep copies: the fp32 model is left as it is)."""
    out = {"fp32": model}
    for name, qconfig in (("int8 per tensor", default_dynamic_qconfig), ("int8 per channel", per_channel_dynamic_qconfig)):
        out[name] = copy.deepcopy(model)
        out[name].text_encoder = quantize_dynamic(out[name].text_encoder, {torch.nn.Linear: qconfig})
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():
        bf16 = copy.deepcopy(model)
        bf16.text_encoder = BF16Encoder(bf16.text_encoder)
        out["bf16"] = bf16
    return out


class Scorer:
    """Scores of texts on one clip's features, as the app scores a typed transcript."""

    def __init__(self, weights, clip_path: Path):
        from preprocessing import extract_clip
        clip = extract_clip(clip_path, weights.spec, expressions=False)
        self.tokenizer, self.max_length = weights.tokenizer, DEFAULT_MAX_LENGTH
        self.audio = torch.as_tensor(clip.audio, dtype=torch.float32)[None]
        self.vision = torch.as_tensor(clip.vision, dtype=torch.float32)[None]

    def __call__(self, model, texts: list[str], batch: int = BATCH) -> np.ndarray:
        lengths = [len(self.tokenizer(t, truncation=True, max_length=self.max_length)["input_ids"]) for t in texts]
        order = np.argsort(lengths, kind="stable")          # similar lengths together: little padding
        scores = np.empty(len(texts))
        for start in range(0, len(texts), batch):
            idx = order[start:start + batch]
            tokens = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                    max_length=self.max_length, return_tensors="pt")
            n = len(idx)
            with torch.inference_mode():
                out = model(tokens["input_ids"], tokens["attention_mask"], self.audio.expand(n, -1, -1),
                            torch.tensor([self.audio.shape[1]] * n), self.vision.expand(n, -1, -1),
                            torch.tensor([self.vision.shape[1]] * n), token_type_ids=tokens.get("token_type_ids"))
            scores[idx] = out.score.float().numpy()
        return scores


def request_seconds(models: dict, tokenizer, reps: int = 10) -> dict[str, float]:
    """Median time of each model's text encoder pass over one 36-word transcript (batch 1); the models take
    turns, so that a shared machine's load weighs on all of them alike."""
    tokens = tokenizer([REQUEST], truncation=True, max_length=DEFAULT_MAX_LENGTH, return_tensors="pt")
    times = {name: [] for name in models}
    with torch.inference_mode():
        for rep in range(reps + 1):
            for name, model in models.items():
                start = time.perf_counter()
                model.encode_text(tokens["attention_mask"], input_ids=tokens["input_ids"],
                                  token_type_ids=tokens.get("token_type_ids"))
                if rep:                                   # the first turn is the warm-up
                    times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=str(ROOT / "checkpoints"))
    ap.add_argument("--vader-sdist", type=Path, help="vaderSentiment-3.3.2.tar.gz (else fetched with pip download)")
    ap.add_argument("--snippets", type=int, help="score this many validation snippets, spaced out (default: all)")
    ap.add_argument("--quick", action="store_true", help="200 validation snippets")
    args = ap.parse_args()
    from mclmcf.serving.weights import load_weights
    from preprocessing.synthetic import make_face_clip

    info = machine_info()
    weights = load_weights(args.weights)
    sets = {"validation snippets": validation_snippets(args.vader_sdist, 200 if args.quick else args.snippets)}
    negation = {f"negation {name}": load_set(path) for name, path in SETS.items()}
    sets |= {name: [row["sentence"] for row in rows] for name, rows in negation.items()}
    with tempfile.TemporaryDirectory() as tmp:
        scorer = Scorer(weights, make_face_clip(Path(tmp) / "neutral.mp4", 2.0, fps=10, size=(320, 180), audio="tone"))
    models = variants(weights.model)
    results = {name: {"request_s": seconds, "sets": {}} for name, seconds in
               request_seconds(models, weights.tokenizer).items()}
    for name, model in models.items():
        r = results[name]
        for set_name, texts in sets.items():
            start = time.perf_counter()
            r["sets"][set_name] = {"scores": scorer(model, texts).tolist(), "seconds": time.perf_counter() - start}

    rows, ship = [], []
    for name, r in results.items():
        diffs = {s: np.abs(np.subtract(v["scores"], results["fp32"]["sets"][s]["scores"])) for s, v in r["sets"].items()}
        flipped = sum(int(np.sum(np.sign(r["sets"][s]["scores"]) != np.sign(results["fp32"]["sets"][s]["scores"])))
                      for s in negation)
        right = [np.mean([np.sign(score) == row["polarity"] for score, row in zip(r["sets"][s]["scores"], rows_)])
                 for s, rows_ in negation.items()]
        worst = max(float(d.max()) for d in diffs.values())
        r |= {"max_abs_diff": {s: float(d.max()) for s, d in diffs.items()},
              "mean_abs_diff": {s: float(d.mean()) for s, d in diffs.items()},
              "negation_signs_flipped": flipped, "negation_sign_accuracy": dict(zip(negation, map(float, right))),
              "meets_rule": name != "fp32" and worst <= MAX_DIFF and flipped == 0}
        if r["meets_rule"]:
            ship.append(name)
        rows.append([name, r["request_s"], r["sets"]["validation snippets"]["seconds"],
                     *(r["max_abs_diff"][s] for s in sets), r["mean_abs_diff"]["validation snippets"], flipped,
                     *(r["negation_sign_accuracy"][s] for s in negation)])
    n = {s: len(t) for s, t in sets.items()}
    print(f"\ntext encoder precision, weights {args.weights}; {machine_line(info)}")
    table = print_table(["variant", "request text pass s", f"validation ({n['validation snippets']}) s",
                         *(f"max |diff| {s} ({n[s]})" for s in sets), "mean |diff| validation",
                         "negation signs flipped", *(f"sign acc {s}" for s in negation)], rows)
    print(f"rule: max |diff| <= {MAX_DIFF} on every set and no negation sign flipped -> "
          f"{', '.join(ship) if ship else 'none meets it: fp32 stays'}")
    write_json("precision_quick" if args.quick else "precision",
               dict(machine=info, weights=args.weights, max_diff=MAX_DIFF, sets=n, variants=results, meets_rule=ship,
                    table=table))


if __name__ == "__main__":
    main()
