"""GPU check, ready to run the first time one CUDA GPU is available (about 5 minutes on an H100):

    python benchmarks/gpu_check.py [--batches 32 128] [--reps 5]

1. Training steps (forward + backward + clip + Adam, bench_train's worker, each run in a fresh process):
   the paper's configuration ("faithful": BERT-base-sized text encoder fine-tuned, 512 x 512 TCF images,
   the authors' level-3 heads) and the training default ("efficient"), batch 32 and 128, fp32 and bf16
   (torch.autocast, as mclmcf.training.cli --precision bf16 runs it); samples/s and torch.cuda.max_memory_allocated.
   The text encoder has random weights (throughput and memory do not depend on them; no Hub needed).
2. The app's pipeline on CUDA for a generated 10 s clip (bench_inference's measurement: decode, features,
   model with maps and ablations, heatmap figures).
3. The same weights on GPU and on CPU: score, per-modality contributions and TCF maps of that clip agree.
Writes benchmarks/results/gpu_check.json and prints the tables for benchmarks/README.md. Without CUDA
it says so and exits with status 2 (nothing is measured).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from common import MOSI_LENGTHS, ROOT, machine_info, machine_line, print_table, run_worker, worker_main, write_json

CONFIGS = ("faithful", "efficient")
PRECISIONS = ("fp32", "bf16")
TRANSCRIPT = "I really enjoyed this movie, it was great."
TOLERANCE = dict(score=1e-3, maps_rtol=1e-3)     # TF32 is off by default in torch: fp32 on both sides


def measure(spec: dict) -> dict:
    """Worker: bench_train's training step; options carry --precision (bf16 autocast needs no grad scaler)."""
    from bench_train import measure as training_step
    return training_step(spec)


def training_rows(batches: list[int], reps: int) -> list[dict]:
    results = []
    for batch in batches:
        for precision in PRECISIONS:
            for name in CONFIGS:
                spec = dict(config=name, batch=batch, precision=precision, options=dict(precision=precision),
                            device="cuda", text="bert-base",
                            frozen=False, tcf_dim=None, lengths=MOSI_LENGTHS, warmup=2, reps=reps, threads=None)
                r = run_worker(ROOT / "benchmarks" / "gpu_check.py", spec, timeout=300)
                print(f"  {name:<10} batch {batch:>3} {precision}: {r['samples_per_s']:.1f} samples/s, "
                      f"{r['peak_mib'] / 1024:.2f} GiB", flush=True)
                results.append(r)
    return results


def pipeline_and_agreement(tmp: Path, device: str = "cuda") -> dict:
    import numpy as np
    import torch
    from bench_inference import measure_clip
    from mclmcf.serving.pipeline import SentimentPipeline
    from mclmcf.serving.weights import load_weights
    from random_weights import save_random_weights   # tests/ is on sys.path via bench_inference
    from preprocessing.synthetic import make_face_clip

    weights_dir = save_random_weights(tmp / "weights", tcf_dim=512)
    clip = make_face_clip(tmp / "clip10.mp4", 10.0, fps=25, size=(640, 360), motion="sway", mouth="talk")
    gpu = load_weights(str(weights_dir), device=torch.device(device))
    timing = measure_clip(gpu, clip, 10.0, reps=3)
    on_gpu = SentimentPipeline(gpu).predict(clip, TRANSCRIPT)
    on_cpu = SentimentPipeline(load_weights(str(weights_dir), device=torch.device("cpu"))).predict(clip, TRANSCRIPT)
    score_diff = abs(on_gpu.score - on_cpu.score)
    contribution_diff = max(abs(on_gpu.contributions[m] - on_cpu.contributions[m]) for m in on_cpu.contributions)
    map_diff = max(float(np.max(np.abs(on_gpu.tcf_images[p] - on_cpu.tcf_images[p]))
                         / (np.max(np.abs(on_cpu.tcf_images[p])) + 1e-12)) for p in on_cpu.tcf_images)
    agree = score_diff <= TOLERANCE["score"] and contribution_diff <= TOLERANCE["score"] and \
        map_diff <= TOLERANCE["maps_rtol"]
    return dict(pipeline=timing, agreement=dict(score_gpu=on_gpu.score, score_cpu=on_cpu.score, score_abs_diff=score_diff,
                                                contribution_max_abs_diff=contribution_diff,
                                                tcf_map_max_rel_diff=map_diff, tolerance=TOLERANCE, agree=agree))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[32, 128])
    ap.add_argument("--reps", type=int, default=5, help="measured training steps per run (after 2 warm-up steps)")
    args = ap.parse_args()
    import torch
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU is visible (torch.cuda.is_available() is False). This check needs one "
              "NVIDIA GPU and a CUDA build of torch; nothing was measured.", file=sys.stderr)
        return 2
    info = machine_info()
    print(f"GPU check on {machine_line(info)}", flush=True)
    results = training_rows(args.batches, args.reps)
    with tempfile.TemporaryDirectory() as tmp:
        app = pipeline_and_agreement(Path(tmp))

    base = {(r["batch"], r["precision"]): r for r in results if r["config"] == "faithful"}
    print("\ntraining step, MOSI dims, BERT-base-sized text encoder fine-tuned, TCF 512 (faithful level 3 "
          "or the efficient recipe)")
    table = print_table(["configuration", "batch", "precision", "samples/s", "s/step", "peak GiB", "x speed",
                         "x memory"],
                        [[r["config"], r["batch"], r["precision"], r["samples_per_s"], r["step_s"], r["peak_mib"] / 1024,
                          r["samples_per_s"] / base[r["batch"], r["precision"]]["samples_per_s"],
                          r["peak_mib"] / base[r["batch"], r["precision"]]["peak_mib"]] for r in results])
    p, a = app["pipeline"], app["agreement"]
    print(f"\napp pipeline on CUDA, 10 s clip: {p['pipeline_s']:.2f} s ({p['pipeline_x']:.3f} x clip), forward "
          f"{p['forward_s'] * 1000:.1f} ms; stages " + ", ".join(f"{k} {v:.2f}" for k, v in p["stages_s"].items()))
    print(f"GPU vs CPU, same weights: score {a['score_gpu']:.5f} vs {a['score_cpu']:.5f} (|diff| "
          f"{a['score_abs_diff']:.2e}), contributions max |diff| {a['contribution_max_abs_diff']:.2e}, TCF maps max "
          f"rel. diff {a['tcf_map_max_rel_diff']:.2e}: {'AGREE' if a['agree'] else 'DISAGREE'}")
    write_json("gpu_check", dict(machine=info, results=results, table=table, **app))
    return 0 if a["agree"] else 1


if __name__ == "__main__":
    if not worker_main(measure):
        sys.exit(main())
