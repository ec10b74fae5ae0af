"""Word attribution (mclmcf.serving.explain): cost per analysis and the completeness error of Integrated Gradients.

    python benchmarks/bench_explain.py [--quick] [--words 10 30 60 120] [--steps 16 32 64] [--reps 7] [--threads N]
                                       [--weights DIR ...]

Weights: the bundled demo weights (checkpoints/), or each of --weights in turn (e.g. the previous demo
weights beside the current ones: the text encoder sets the cost). Audio and face:
one 2 s synthetic clip (preprocessing.synthetic), held fixed as in the app; the cost does not depend on the
clip's length (its voice and face vectors are computed once per call).
  cost        attribute_words() on transcripts of 10, 30, 60 and 120 words (1, 1, 2 and 3 encoder windows):
              median and minimum wall time of --reps calls after one warm-up, and the process CPU time
              (both threads) of the median call; the machine may be shared, so the load average is printed
  error       |sum of word attributions - (score - baseline score)| over SENTENCES, per step count
  path        why the error can be large: along the straight path from the blanked sentence to the sentence
              (200 steps, as attribute_words takes it), the largest single step of the text encoder's
              mean-pooled output, as a share of its whole change (0.005 if it moved evenly), over SENTENCES
Writes benchmarks/results/explain.json (explain_threadsN.json with --threads N; explain_quick.json with --quick:
30 words, the default steps, 1 rep, two sentences).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from common import machine_info, machine_line, print_table, write_json

SENTENCES = ["The food was awful, but the waiter was wonderful.",
             "A boring story, although the soundtrack is beautiful.",
             "The script is terrible, yet the cast is excellent.",
             "I loved the music, but the ending was horrible.",
             "A wonderful cast wasted on a stupid plot.",
             "The hotel was dirty and noisy, but the view was amazing.",
             "I really enjoyed this movie, it was great.",
             "A dull, lifeless mess. The worst film I have seen in years."]
# 34 words; transcript(n) cuts or repeats it to n words
REVIEW = ("The plot was dull and tedious, but the acting was brilliant, and honestly I loved every minute of the "
          "soundtrack even if the ending felt rushed and a little bit too predictable for me.")


def transcript(n_words: int) -> str:
    words = (REVIEW.split() * n_words)[:n_words]
    return " ".join(words)


def encoder_windows(weights, text: str) -> int:
    from preprocessing.text import tokenize_windows
    return len(tokenize_windows(text, weights.tokenizer)["input_ids"])


def measure(weights, clip, text: str, steps: int, reps: int) -> dict:
    from mclmcf.serving.explain import attribute_words

    def call():
        return attribute_words(weights.model, weights.tokenizer, text, clip.audio, clip.vision, steps=steps)

    call()
    runs = []
    for _ in range(reps):
        wall, cpu = time.perf_counter(), time.process_time()
        result = call()
        runs.append((time.perf_counter() - wall, time.process_time() - cpu))
    walls = [w for w, _ in runs]
    median_cpu = sorted(runs)[len(runs) // 2][1]
    return dict(words=len(text.split()), steps=steps, wall_median_s=statistics.median(walls), wall_min_s=min(walls),
                cpu_s=median_cpu, completeness_error=result.completeness_error)


def largest_path_step(weights, text: str, points: int = 201) -> float:
    """The largest move of the encoder's mean-pooled output between neighbouring points of the attribution
    path (mclmcf.serving.explain.embedding_path, first window), over the whole move."""
    import torch
    from mclmcf.serving.explain import embedding_path
    p = embedding_path(weights.model, weights.tokenizer, text)
    alphas = torch.linspace(0, 1, points)[:, None, None]
    with torch.no_grad():
        pooled = weights.model.text_encoder(inputs_embeds=p.blank[0] + alphas * (p.words[0] - p.blank[0]),
                                            attention_mask=p.mask[:1].expand(points, -1)).last_hidden_state.mean(1)
    return float((pooled.diff(dim=0).norm(dim=-1) / (pooled[-1] - pooled[0]).norm()).max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke test: 30 words, the default steps, one rep")
    ap.add_argument("--words", type=int, nargs="+", default=[10, 30, 60, 120], help="transcript lengths")
    ap.add_argument("--steps", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's, one per core)")
    ap.add_argument("--weights", nargs="+", help="weight directories to measure in turn (default: checkpoints/)")
    args = ap.parse_args()
    import torch
    from mclmcf.serving.explain import STEPS, attribute_words
    from mclmcf.serving.pipeline import SentimentPipeline
    from mclmcf.serving.weights import DEFAULT_DIR, load_weights
    from preprocessing.synthetic import make_face_clip

    if args.threads:
        torch.set_num_threads(args.threads)
    info = machine_info()
    lengths, steps, reps = ([30], [STEPS], 1) if args.quick else (args.words, args.steps, args.reps)
    sentences = SENTENCES[:2] if args.quick else SENTENCES + [REVIEW]
    cost, errors, path = [], [], []
    for source in args.weights or [str(DEFAULT_DIR)]:
        weights = load_weights(source)
        label = f"{source} ({weights.model.config.text_encoder})"
        pipeline = SentimentPipeline(weights)
        with tempfile.TemporaryDirectory() as tmp:
            clip = pipeline.features(make_face_clip(Path(tmp) / "clip.mp4", 2.0, fps=10, size=(320, 180)))[0]
        for n in lengths:
            text = transcript(n)
            for s in steps:
                cost.append(dict(measure(weights, clip, text, s, reps), windows=encoder_windows(weights, text),
                                 weights=label))
                print(f"  {label}: {n} words, {s} steps: {cost[-1]['wall_median_s']:.3f} s", flush=True)
        for s in steps:
            errs = [abs(attribute_words(weights.model, weights.tokenizer, t, clip.audio, clip.vision, steps=s)
                        .completeness_error) for t in sentences]
            errors.append(dict(weights=label, steps=s, sentences=len(errs), max_abs_error=max(errs),
                               median_abs_error=statistics.median(errs)))
        steps_taken = [largest_path_step(weights, t) for t in sentences]
        path.append(dict(weights=label, sentences=len(steps_taken), max_step=max(steps_taken),
                         median_step=statistics.median(steps_taken)))

    print(f"\nword attribution (Integrated Gradients) on {weights.device}; {machine_line(info)}")
    table = print_table(["weights", "words", "windows", "steps", "wall s (median)", "wall s (min)", "CPU s (median call)",
                         "|completeness error|"],
                        [[r["weights"], r["words"], r["windows"], r["steps"], r["wall_median_s"], r["wall_min_s"],
                          r["cpu_s"], abs(r["completeness_error"])] for r in cost])
    error_table = print_table(["weights", "steps", "sentences", "max |error|", "median |error|"],
                              [[e["weights"], e["steps"], e["sentences"], e["max_abs_error"], e["median_abs_error"]]
                               for e in errors])
    path_table = print_table(["weights", "sentences", "largest path step (max)", "largest path step (median)"],
                             [[p["weights"], p["sentences"], p["max_step"], p["median_step"]] for p in path])
    write_json("explain_quick" if args.quick else f"explain_threads{args.threads}" if args.threads else "explain",
               dict(machine=dict(info, torch_threads=torch.get_num_threads()), quick=args.quick, default_steps=STEPS,
                    reps=reps, cost=cost, completeness=errors, table=table, error_table=error_table,
                    path=path, path_table=path_table))


if __name__ == "__main__":
    main()
