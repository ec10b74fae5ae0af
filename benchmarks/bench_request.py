"""One request, the base commit's code beside this tree's, in one run (#39.6); and the text window length (#39.2).

    python benchmarks/bench_request.py [--base d0af692] [--reps 5] [--rounds 2] [--vader-sdist PATH] [--quick]

Request: SentimentPipeline.predict on examples/positive.mp4 (6 s, 10 face frames a second) with its features
cached and a typed 36-word transcript, with word colours (explain=True, as the page asks) and without; this tree
also with the base's colour method, token_states (explain.MEAN_POOLED_DEFAULT set in its worker), so that the two
code versions are compared with the same colours as well as with each one's own. Each code
version runs in a subprocess of its own: the base commit (``git archive`` into a temporary folder, so the
repository's worktrees are left alone) and this working tree, each with its own checkpoints/ (the same weights
file; this tree's config.json may record more). A worker loads the weights (timed), answers one untimed request
(feature extraction, first-call costs), then --reps requests without colours and --reps with; rounds alternate
base, new, base, new, ... so that a change in the machine's load falls on both. Times: the median over every
request of a row, and the fastest (on a shared machine the least disturbed). Encoder positions: the token
positions (windows x padded width) that went through the text encoder in one request, a count the machine's
load does not change. Score difference: the largest |new - base| over the score and the three contributions.

Window length: the bundled weights were trained on 64-token windows (checkpoints/train.json); serving cut at 50
before #39. The validation snippets of the training domains (VADER's sdist, the split of
preprocessing.rated_snippets) that 50-token windows split are scored, with the example clip's voice and face, at
50 and at 64 tokens: MAE against the human rating and sign accuracy for each (skipped without the sdist).

Writes benchmarks/results/request.json (request_quick.json with --quick: 1 rep, 1 round, no window check).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIP = "examples/positive.mp4"
TRANSCRIPT = ("I went to see this film last night with a few friends, and the story was slow at first, but the "
              "acting was wonderful and the ending left all of us smiling on the way home.")
SPLIT_AT = 50      # serving's window length before #39


SAME_COLOURS = "colours, token_states"    # this tree's row with the base's colour method


def worker(root: Path, reps: int) -> dict:
    """Run in a subprocess whose sys.path starts at ``root``: that tree's code answers the requests."""
    import torch
    from mclmcf.serving.pipeline import SentimentPipeline
    from mclmcf.serving.weights import load_weights

    t0 = time.perf_counter()
    weights = load_weights(str(root / "checkpoints"))
    load_s = time.perf_counter() - t0
    pipe = SentimentPipeline(weights, asr_model="none")
    clip = root / CLIP
    first = pipe.predict(clip, TRANSCRIPT)
    positions = []

    def count(module, args, kwargs):
        ids = kwargs.get("input_ids")
        shape = (kwargs.get("inputs_embeds") if ids is None else ids).shape
        positions.append(shape[0] * shape[1])

    weights.model.text_encoder.register_forward_pre_hook(count, with_kwargs=True)
    from mclmcf.serving import explain as explain_module
    default = getattr(explain_module, "MEAN_POOLED_DEFAULT", "token_states")
    kinds = {"no colours": False, "colours": True}
    if default != "token_states":                           # a tree whose own colours are not the base's
        kinds[SAME_COLOURS] = True
    rows = {}
    for kind, explain in kinds.items():
        if kind == SAME_COLOURS:
            explain_module.MEAN_POOLED_DEFAULT = "token_states"
        pipe.predict(clip, TRANSCRIPT, explain=explain)          # a method's first call (its caches) untimed
        runs = []
        for _ in range(reps):
            positions.clear()
            t0 = time.perf_counter()
            pred = pipe.predict(clip, TRANSCRIPT, explain=explain)
            runs.append(dict(request_s=time.perf_counter() - t0, model_s=pred.timings["model"],
                             explain_s=pred.timings.get("explain", 0.0), encoder_positions=sum(positions),
                             method=pred.attributions.method if pred.attributions else None))
        rows[kind] = dict(runs=runs, features_cached=pred.features_cached)
    return dict(load_s=load_s, first_request_s=first.timings["total"], torch_threads=torch.get_num_threads(),
                score=pred.score, contributions=pred.contributions, text_windows=pred.text_windows,
                words=len(TRANSCRIPT.split()), requests=rows)


def run_worker(root: Path, reps: int) -> dict:
    code = ("import json, sys; from pathlib import Path; root = Path(sys.argv[1]); sys.path.insert(0, str(root)); "
            "sys.path.insert(1, sys.argv[3]); import bench_request as b; "
            "print('RESULT ' + json.dumps(b.worker(root, int(sys.argv[2]))))")
    proc = subprocess.run([sys.executable, "-c", code, str(root), str(reps), str(ROOT / "benchmarks")], cwd=root,
                          capture_output=True, text=True, timeout=1800)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise SystemExit(f"worker in {root} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


def base_tree(commit: str, into: Path) -> Path:
    """The base commit's files (``git archive``), without touching the repository's worktrees."""
    archive = subprocess.run(["git", "archive", "--format=tar", commit], cwd=ROOT, capture_output=True, check=True)
    into.mkdir(parents=True)
    with tarfile.open(fileobj=__import__("io").BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


def window_check(sdist: Path) -> dict:
    """The validation snippets 50-token windows split, scored at 50 and at 64 tokens (module docstring)."""
    import numpy as np
    from mclmcf.serving.pipeline import SentimentPipeline
    from mclmcf.serving.scoring import audio_visual_vectors, score_texts
    from mclmcf.serving.weights import load_weights
    from preprocessing.rated_snippets import assign_splits, read_domain
    from preprocessing.text import count_windows

    weights = load_weights(str(ROOT / "checkpoints"))
    model, tok = weights.model, weights.tokenizer
    texts, labels = [], []
    for domain in ("movie", "tweets", "nyt"):
        snippets = read_domain(sdist, domain)
        for text, rating, split in zip(snippets.texts, snippets.ratings, assign_splits(len(snippets.texts))):
            if split == "valid" and count_windows(text, tok, SPLIT_AT) > 1:
                texts.append(text)
                labels.append(0.75 * float(rating))      # [-4, 4] -> MOSI's [-3, 3], as rated_snippets does
    clip = SentimentPipeline(weights, asr_model="none").features(ROOT / CLIP)[0]
    h_av = audio_visual_vectors(model, clip.audio, clip.vision)
    labels = np.array(labels)
    out = dict(snippets=len(texts), trained_max_text_len=model.config.max_text_len, rows=[])
    for length in (SPLIT_AT, 64):
        scores = score_texts(model, tok, texts, h_av, length)
        out["rows"].append(dict(max_text_len=length, mae=float(np.abs(scores - labels).mean()),
                                sign_accuracy=float(np.mean(np.sign(scores) == np.sign(labels))),
                                split_snippets=sum(count_windows(t, tok, length) > 1 for t in texts)))
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="d0af692", help="the commit to compare against")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--vader-sdist", type=Path, help="vaderSentiment-3.3.2.tar.gz (default: pip download it)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.reps, args.rounds = 1, 1
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from common import machine_info, machine_line, print_table, write_json

    info = machine_info()
    print(machine_line(info))
    with tempfile.TemporaryDirectory() as tmp:
        trees = {f"base {args.base}": base_tree(args.base, Path(tmp) / "base"), "this tree": ROOT}
        results = {name: [] for name in trees}
        for _ in range(args.rounds):
            for name, tree in trees.items():
                results[name].append(run_worker(tree, args.reps))
    rows, table = [], []
    for name, rounds in results.items():
        for kind in rounds[-1]["requests"]:
            runs = [r for result in rounds for r in result["requests"][kind]["runs"]]
            row = dict(code=name, word_colours=runs[-1]["method"] or "off", requests=len(runs),
                       request_s=statistics.median(r["request_s"] for r in runs),
                       fastest_request_s=min(r["request_s"] for r in runs),
                       encoder_positions=runs[-1]["encoder_positions"],
                       model_s=statistics.median(r["model_s"] for r in runs),
                       explain_s=statistics.median(r["explain_s"] for r in runs),
                       load_s=statistics.median(r["load_s"] for r in rounds), score=rounds[-1]["score"])
            rows.append(row)
            table.append([name, row["word_colours"], row["request_s"], row["fastest_request_s"],
                          row["encoder_positions"], row["model_s"], row["explain_s"], row["load_s"], row["score"]])
    base, new = (results[name][-1] for name in trees)
    differences = [abs(new["score"] - base["score"])] + [abs(new["contributions"][m] - base["contributions"][m])
                                                         for m in base["contributions"]]
    text = print_table(["code", "word colours", "request s", "fastest s", "encoder positions", "model stage s",
                        "colours s", "load s", "score"], table)
    base_rows = {r["word_colours"]: r for r in rows if r["code"] != "this tree"}   # off, token_states
    ratio = {}
    for row in rows:
        if row["code"] == "this tree":          # each row against the base's row without colours or with its own
            base = base_rows["off" if row["word_colours"] == "off" else "token_states"]
            for stat in ("request_s", "fastest_request_s"):
                ratio[f"{row['word_colours']} / base {base['word_colours']}, {stat}"] = row[stat] / base[stat]
    print("this tree / base request time: " + ", ".join(f"{k} {v:.2f}" for k, v in ratio.items())
          + f"; largest score difference {max(differences):.2e}")
    payload = dict(machine=info, clip=CLIP, transcript=TRANSCRIPT, reps=args.reps, rounds=args.rounds, rows=rows,
                   raw=results, max_score_difference=max(differences), new_over_base=ratio, table=text)
    if not args.quick:
        sdist = args.vader_sdist
        if sdist is None:
            from preprocessing.rated_snippets import fetch_sdist
            sdist = fetch_sdist(Path(tempfile.mkdtemp()))
        check = window_check(sdist)
        print_table(["window tokens", "snippets split", "MAE", "sign accuracy"],
                    [[r["max_text_len"], r["split_snippets"], r["mae"], r["sign_accuracy"]] for r in check["rows"]])
        print(f"{check['snippets']} validation snippets longer than one {SPLIT_AT}-token window")
        payload["window_check"] = check
    write_json("request_quick" if args.quick else "request", payload)
    return payload


if __name__ == "__main__":
    main()
