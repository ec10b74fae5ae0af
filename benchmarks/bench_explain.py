"""Word attribution (mclmcf.serving.explain): the methods side by side, same sentences, same run.

    python benchmarks/bench_explain.py [--quick] [--part all|timing|faithfulness] [--weights DIR ...]
                                       [--methods M ...] [--sentences 80] [--development] [--draws 5] [--words 30 60 120]
                                       [--reps 2] [--threads N] [--vader-sdist PATH]

Weights: each of --weights in turn (default: checkpoints/, the demo's weights). Voice and face: the
training means (the neutral input the page's ablations use), held fixed. Methods: every one in
mclmcf.serving.explain.METHODS that applies to the weights (token_states needs mean pooling).

  timing        attribute_words() on transcripts of 30, 60 and 120 words (1, 2 and 3 encoder windows):
                median wall time of --reps calls after one warm-up per method (the reps go round the
                methods in turn), with the 1-minute load average just before the calls (os.getloadavg():
                the 2 cores may be shared, so read the load beside it) and the process's CPU time (all
                threads), which sharing inflates far less
  faithfulness  on --sentences snippets of the validation split of the training domains (movie, tweets, NYT;
                preprocessing.rated_snippets, Hutto & Gilbert 2014, from the vaderSentiment 3.3.2 sdist:
                never trained on; never Amazon), drawn with seed 0 among those of 6 to 20 words that hold a
                word of VADER's lexicon with |valence| >= 1.5 and no negation or contrast word (VADER's NEGATE
                list, CONTRAST), words being explain.word_spans' units:
                plausibility  the share of sentences whose strongest word (largest |attribution|) is such a
                              lexicon word with the sign of its attribution; "chance": the mean share of
                              such words among a sentence's words (a word picked at random, sign aside).
                              Also the share whose strongest word is punctuation. VADER's lexicon only
                              scores here; it never colours a word.
                completeness  |sum of word attributions - (score - baseline score)|, max and median
                deletion      ERASER's comprehensiveness and sufficiency (DeYoung et al., ACL 2020), in score
                              units and signed so that "toward the empty transcript" counts positive. With s
                              the sentence's score, s0 the empty transcript's (same voice and face) and
                              sigma = sign(s - s0), the words are ranked by sigma * attribution (those that
                              pushed the score away from s0 first); for the top k = max(1, round(f n)) of its
                              n words, f = 10 / 20 / 50 %:
                                comprehensiveness = sigma * (s - s(sentence without the k words))
                                sufficiency       = sigma * (s - s(only the k words, in order))
                              Larger comprehensiveness and smaller sufficiency are more faithful. "random":
                              the same k words drawn at random, --draws times, averaged. Texts are the
                              remaining words joined by spaces. AOPC: the mean over 10/20/50 %. The curves (0 and 100 % from their
                              definitions) go to benchmarks/results/explain_deletion.png.
--part timing / faithfulness runs one part and keeps the other part of an existing explain_methods.json.
--quick: checkpoints/ alone, the default method and token_states, 30 words, one rep, two hand-written
sentences, one random draw (explain_quick.json). The choice rule: benchmarks/explain_choice_rule.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from common import RESULTS, ROOT, machine_info, machine_line, print_table, write_json

QUICK_SENTENCES = ["The food was awful, but the waiter was wonderful.",
                   "A boring story, although the soundtrack is beautiful."]
# 34 words; transcript(n) cuts or repeats it to n words
REVIEW = ("The plot was dull and tedious, but the acting was brilliant, and honestly I loved every minute of the "
          "soundtrack even if the ending felt rushed and a little bit too predictable for me.")
FRACTIONS = (0.1, 0.2, 0.5)
WORD_RANGE = (6, 20)
DRAWN, REPORT = 140, 80            # sentences drawn; the first REPORT are reported, the rest are for development
STRONG = 1.5                       # |valence| of a lexicon word that counts as a sentiment word
CONTRAST = {"but", "although", "though", "however", "yet"}
DEFAULT_WEIGHTS = [str(ROOT / "checkpoints")]


def transcript(n_words: int) -> str:
    return " ".join((REVIEW.split() * n_words)[:n_words])


def lexicon() -> dict[str, float]:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    return SentimentIntensityAnalyzer().lexicon


def strong_words(words: list[str], valence: dict[str, float]) -> list[float]:
    """Each word's lexicon valence if |valence| >= STRONG, else 0."""
    return [v if abs(v := valence.get(w.lower(), 0.0)) >= STRONG else 0.0 for w in words]


def validation_sentences(count: int, sdist: str | None, development: bool = False) -> list[tuple[str, str]]:
    """(id, text) of ``count`` validation snippets of the training domains that fit the plausibility test
    (module docstring): DRAWN of them drawn with seed 0, the report sentences being the first REPORT and the
    development sentences the rest (``development``; explain_choice_rule.md: never reported)."""
    from vaderSentiment.vaderSentiment import NEGATE
    from mclmcf.serving.explain import word_spans
    from preprocessing.rated_snippets import TRAINING_DOMAINS, assign_splits, fetch_sdist, read_domain
    valence, refuse = lexicon(), {w.lower() for w in NEGATE} | CONTRAST
    fits = []
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(sdist) if sdist else fetch_sdist(Path(tmp))
        for domain in TRAINING_DOMAINS:
            snippets = read_domain(source, domain)
            for i in np.flatnonzero(assign_splits(len(snippets.texts)) == "valid"):
                text = snippets.texts[i]
                words = [text[a:b] for a, b in word_spans(text)]
                lower = {w.lower() for w in words} | {w.lower() for w in text.split()}
                if (WORD_RANGE[0] <= len(text.split()) <= WORD_RANGE[1] and any(strong_words(words, valence))
                        and not lower & refuse and "n't" not in text.lower()):
                    fits.append((f"{domain}/{snippets.ids[i]}", text))
    drawn = np.random.default_rng(0).choice(len(fits), DRAWN, replace=False)     # drawn order: domains mixed
    chosen = drawn[REPORT:] if development else drawn[:REPORT]
    if count > len(chosen):
        raise SystemExit(f"--sentences {count}: there are {len(chosen)} {'development' if development else 'report'} "
                         "sentences")
    return [fits[i] for i in chosen[:count]]


def neutral_clip(model):
    """The training means of the voice and face features, a few frames long."""
    audio, vision = (norm.mean.float().cpu().numpy().reshape(1, -1).repeat(frames, 0)
                     for norm, frames in ((model.audio_norm, 100), (model.vision_norm, 20)))
    return audio, vision


def methods_for(model, wanted) -> list[str]:
    from mclmcf.serving.explain import METHODS, default_method
    mean_only = {"token_states", "propagation"}
    usable = [m for m in METHODS if m not in mean_only or model.config.text_pooling == "mean"]
    first = default_method(model)       # the default first: --quick's tests read the first row
    return sorted((m for m in usable if not wanted or m in wanted), key=lambda m: m != first)


def timing(weights, label, methods, audio, vision, lengths, reps) -> list[dict]:
    """Each method's wall and CPU time per length; the reps go round the methods in turn, so a slow minute of a
    shared machine falls on all of them."""
    from mclmcf.serving.explain import attribute_words
    rows = []
    for method in methods:
        attribute_words(weights.model, weights.tokenizer, transcript(lengths[0]), audio, vision, method=method)  # warm-up
    for n in lengths:
        text = transcript(n)
        load = os.getloadavg()[0]
        walls, cpus = ({m: [] for m in methods} for _ in range(2))
        results = {}                       # method -> its last WordAttributions
        for _ in range(reps):
            for method in methods:
                start, cpu = time.perf_counter(), time.process_time()
                results[method] = attribute_words(weights.model, weights.tokenizer, text, audio, vision, method=method)
                walls[method].append(time.perf_counter() - start)
                cpus[method].append(time.process_time() - cpu)
        for method in methods:
            rows.append(dict(weights=label, method=method, words=n, wall_median_s=statistics.median(walls[method]),
                             wall_min_s=min(walls[method]), cpu_median_s=statistics.median(cpus[method]),
                             load_1min=load, load_1min_after=os.getloadavg()[0],
                             completeness_error=results[method].remainder))
            print(f"  {label} {method}: {n} words {rows[-1]['wall_median_s']:.2f} s, "
                  f"CPU {rows[-1]['cpu_median_s']:.2f} s (load {load:.1f})", flush=True)
    return rows


def deletion_texts(words: list[str], ranked: list[int], k: int) -> tuple[str, str]:
    """(the sentence without the words ``ranked[:k]``, only those words), both in the sentence's order."""
    top = set(ranked[:k])
    return (" ".join(w for i, w in enumerate(words) if i not in top),
            " ".join(w for i, w in enumerate(words) if i in top))


def faithfulness(weights, label, methods, audio, vision, sentences, draws, stop_at: float | None = None) -> dict:
    """Plausibility, completeness and deletion (module docstring) of each method on ``sentences`` [(id, text)],
    in order; ``stop_at`` (time.time()): no sentence is started after it, and the result covers those done."""
    from mclmcf.serving.explain import attribute_words
    from mclmcf.serving.scoring import audio_visual_vectors, score_texts
    model, tokenizer = weights.model, weights.tokenizer
    h_av = audio_visual_vectors(model, audio, vision)
    valence = lexicon()
    rng = np.random.default_rng(0)
    errors, plausible, punctuation = ({m: [] for m in methods} for _ in range(3))
    chance = []
    comp = {m: {f: [] for f in FRACTIONS} for m in [*methods, "random"]}
    suff = {m: {f: [] for f in FRACTIONS} for m in [*methods, "random"]}
    full = []
    for number, (_, text) in enumerate(sentences):
        if stop_at and time.time() > stop_at:
            sentences = sentences[:number]
            break
        orders = {}
        for method in methods:
            result = attribute_words(model, tokenizer, text, audio, vision, method=method)
            words = [w.word for w in result.words]
            values = np.array([w.attribution for w in result.words])
            errors[method].append(abs(result.remainder))
            top = int(np.argmax(np.abs(values)))
            plausible[method].append(bool(strong_words([words[top]], valence)[0] * values[top] > 0))
            punctuation[method].append(not any(c.isalnum() for c in words[top]))
            orders[method] = values
        strong = strong_words(words, valence)
        chance.append(float(np.mean(np.array(strong) != 0)))
        orders["random"] = [list(rng.permutation(len(words))) for _ in range(draws)]
        score, nothing = score_texts(model, tokenizer, [text, ""], h_av)
        sigma = 1.0 if score >= nothing else -1.0
        full.append(sigma * (score - nothing))
        texts, slots = [], []
        for method, order in orders.items():
            rankings = order if method == "random" else [list(np.argsort(-sigma * order, kind="stable"))]
            for f in FRACTIONS:
                k = max(1, round(f * len(words)))
                for ranked in rankings:
                    texts += deletion_texts(words, ranked, k)
                    slots.append((method, f))
        scores = score_texts(model, tokenizer, texts, h_av).reshape(-1, 2)
        for method in orders:
            for f in FRACTIONS:
                rows = [i for i, slot in enumerate(slots) if slot == (method, f)]
                comp[method][f].append(float(np.mean(sigma * (score - scores[rows, 0]))))
                suff[method][f].append(float(np.mean(sigma * (score - scores[rows, 1]))))
        print(f"  {label}: {number + 1}/{len(sentences)} sentences", end="\r", flush=True)
    print()
    rows = []
    for method in [*methods, "random"]:
        row = dict(weights=label, method=method, sentences=len(sentences),
                   **{f"comprehensiveness_{f:.0%}": float(np.mean(comp[method][f])) for f in FRACTIONS},
                   **{f"sufficiency_{f:.0%}": float(np.mean(suff[method][f])) for f in FRACTIONS})
        row["comprehensiveness_mean"] = float(np.mean([row[f"comprehensiveness_{f:.0%}"] for f in FRACTIONS]))
        row["sufficiency_mean"] = float(np.mean([row[f"sufficiency_{f:.0%}"] for f in FRACTIONS]))
        if method == "random":
            row.update(plausibility=float(np.mean(chance)))
        else:
            row.update(max_abs_error=max(errors[method]), median_abs_error=statistics.median(errors[method]),
                       plausibility=float(np.mean(plausible[method])),
                       strongest_is_punctuation=float(np.mean(punctuation[method])),
                       beats_random=all(row[f"comprehensiveness_{f:.0%}"] > np.mean(comp["random"][f])
                                        for f in FRACTIONS))
        rows.append(row)
    return dict(rows=rows, move_to_empty_mean=float(np.mean(full)), sentences=[i for i, _ in sentences])


def draw_curves(faith: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mclmcf.serving.explain import METHODS
    colours = {**{m: f"C{i}" for i, m in enumerate(METHODS)}, "random": "grey"}
    labels = list(faith)
    fig, axes = plt.subplots(len(labels), 2, figsize=(11, 3.8 * len(labels)), squeeze=False)
    xs = [0.0, *FRACTIONS, 1.0]
    for (ax_c, ax_s), label in zip(axes, labels):
        whole = faith[label]["move_to_empty_mean"]     # removing every word (or keeping none) reaches s0
        for row in faith[label]["rows"]:
            style = dict(color=colours[row["method"]], linestyle="--" if row["method"] == "random" else "-")
            ax_c.plot(xs, [0.0, *(row[f"comprehensiveness_{f:.0%}"] for f in FRACTIONS), whole], marker="o",
                      label=row["method"], **style)
            ax_s.plot(xs, [whole, *(row[f"sufficiency_{f:.0%}"] for f in FRACTIONS), 0.0], marker="o",
                      label=row["method"], **style)
        ax_c.set(title=f"comprehensiveness (higher is better)\n{label}", xlabel="share of words removed (top first)",
                 ylabel="score moved toward s(empty)")
        ax_s.set(title=f"sufficiency (lower is better)\n{label}", xlabel="share of words kept (top first)",
                 ylabel="score moved toward s(empty)")
        ax_c.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke test: checkpoints/, 30 words, one rep, two sentences")
    ap.add_argument("--part", choices=("all", "timing", "faithfulness"), default="all")
    ap.add_argument("--weights", nargs="+", help="weight directories (default: checkpoints/)")
    ap.add_argument("--methods", nargs="+", help="a subset of mclmcf.serving.explain.METHODS")
    ap.add_argument("--sentences", type=int, default=REPORT)
    ap.add_argument("--development", action="store_true",
                    help="the development sentences instead of the report sentences (explain_choice_rule.md)")
    ap.add_argument("--draws", type=int, default=5, help="random draws per sentence and share")
    ap.add_argument("--words", type=int, nargs="+", default=[30, 60, 120], help="transcript lengths (timing)")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's, one per core)")
    ap.add_argument("--vader-sdist", help="the vaderSentiment 3.3.2 sdist (default: pip download)")
    ap.add_argument("--minutes", type=float, help="start no sentence after this many minutes (the result says how "
                                                  "many were done)")
    args = ap.parse_args()
    import torch
    from mclmcf.serving.explain import default_method
    from mclmcf.serving.weights import load_weights

    if args.threads:
        torch.set_num_threads(args.threads)
    info = machine_info()
    sources = [DEFAULT_WEIGHTS[0]] if args.quick else args.weights or DEFAULT_WEIGHTS
    lengths, reps, draws = ([30], 1, 1) if args.quick else (args.words, args.reps, args.draws)
    sentences = (list(enumerate(QUICK_SENTENCES)) if args.quick
                 else validation_sentences(args.sentences, args.vader_sdist, args.development) if args.part != "timing" else [])
    cost, faith = [], {}
    for source in sources:
        weights = load_weights(source)
        where = Path(source).resolve()
        label = f"{where.relative_to(ROOT) if where.is_relative_to(ROOT) else source} ({weights.model.config.text_encoder})"
        methods = methods_for(weights.model, args.methods or (["token_states", default_method(weights.model)]
                                                              if args.quick else None))
        audio, vision = neutral_clip(weights.model)
        if args.part != "faithfulness":
            cost += timing(weights, label, methods, audio, vision, lengths, reps)
        if args.part != "timing":
            stop_at = time.time() + 60 * args.minutes if args.minutes else None
            faith[label] = dict(faithfulness(weights, label, methods, audio, vision, sentences, draws, stop_at),
                                machine=info)

    name = "explain_quick" if args.quick else "explain_methods"
    # one part alone keeps the other part, and what an earlier run measured for other weights
    kept = RESULTS / f"{name}.json"
    previous = json.loads(kept.read_text()) if args.part != "all" and kept.exists() else {}
    out = dict(previous, quick=args.quick)
    if cost:
        cost = [r for r in previous.get("cost", []) if r["weights"] not in {c["weights"] for c in cost}] + cost
    if faith:
        faith = {**previous.get("faithfulness", {}), **faith}
    print(f"\nword attribution methods on {machine_line(info)}")
    if cost:
        out.update(timing_machine=dict(info, torch_threads=torch.get_num_threads()), reps=reps, cost=cost,
                   cost_table=print_table(
                       ["method", "words", "wall s (median)", "wall s (min)", "CPU s (median)", "load (1 min)"],
                       [[r["method"], r["words"], r["wall_median_s"], r["wall_min_s"], r["cpu_median_s"],
                         r["load_1min"]] for r in cost]))
    if faith:
        rows = [r for f in faith.values() for r in f["rows"]]
        out.update(draws=draws, faithfulness=faith,
                   completeness=[r for r in rows if r["method"] != "random"],
                   faithfulness_table=print_table(
                       ["method", "plausible", "top is punct.", "max |error|", "median |error|"]
                       + [f"comp. {f:.0%}" for f in FRACTIONS] + ["AOPC comp."]
                       + [f"suff. {f:.0%}" for f in FRACTIONS] + ["AOPC suff."],
                       [[r["method"], r["plausibility"], r.get("strongest_is_punctuation"), r.get("max_abs_error"),
                         r.get("median_abs_error")]
                        + [r[f"comprehensiveness_{f:.0%}"] for f in FRACTIONS] + [r["comprehensiveness_mean"]]
                        + [r[f"sufficiency_{f:.0%}"] for f in FRACTIONS] + [r["sufficiency_mean"]] for r in rows]))
        if not args.quick:
            draw_curves(faith, RESULTS / "explain_deletion.png")
    write_json(name, out)


if __name__ == "__main__":
    main()
