"""Multi-seed runs and the paper's tables, our numbers beside the published ones.

    python -m mclmcf.experiments seeds --data DIR --seeds 1 2 3 --out runs/seeds [train flags]
    python -m mclmcf.experiments paper --data DIR --dataset mosi --out runs/paper [--seeds 1 2 3] [train flags]
    python -m mclmcf.experiments paper --quick --out /tmp/paper   # synthetic data, tiny model, 1 epoch

``paper`` trains the full model (Table 3 of the paper: MOSI / MOSEI main results) and the ablations of
Table 5 (w/o MCL-F, w/o MCL-S, w/o MCL-T, w/o MCL, w/o MCF), every one for each seed, and prints
mean +- std next to the paper. Unknown flags go to python -m mclmcf.train (e.g. --epochs 5).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from mclmcf.training.config import TrainConfig
from mclmcf.training.cli import config_from_args
from mclmcf.training.synthetic import TINY_MODEL, SyntheticSpec, generate

# Paper Table 3 (MCL-MCF row) and Table 5 (ablations, CMU-MOSI); accuracies as fractions.
PAPER_MAIN = {
    "mosi": {"mae": 0.692, "corr": 0.799, "acc2_has0": 0.849, "acc2_non0": 0.873, "f1_has0": 0.847, "f1_non0": 0.872},
    "mosei": {"mae": 0.536, "corr": 0.767, "acc2_has0": 0.842, "acc2_non0": 0.864, "f1_has0": 0.844, "f1_non0": 0.863},
}
PAPER_ABLATIONS_MOSI = {
    "w/o MCL-F": {"mae": 0.720, "corr": 0.782, "acc2_has0": 0.836, "acc2_non0": 0.859, "f1_has0": 0.834, "f1_non0": 0.858},
    "w/o MCL-S": {"mae": 0.727, "corr": 0.783, "acc2_has0": 0.8418, "acc2_non0": 0.862, "f1_has0": 0.839, "f1_non0": 0.862},
    "w/o MCL-T": {"mae": 0.721, "corr": 0.783, "acc2_has0": 0.838, "acc2_non0": 0.8581, "f1_has0": 0.836, "f1_non0": 0.857},
    "w/o MCL": {"mae": 0.727, "corr": 0.791, "acc2_has0": 0.833, "acc2_non0": 0.855, "f1_has0": 0.832, "f1_non0": 0.854},
    "w/o MCF": {"mae": 0.717, "corr": 0.793, "acc2_has0": 0.841, "acc2_non0": 0.862, "f1_has0": 0.838, "f1_non0": 0.861},
}
VARIANTS = {
    "MCL-MCF": {},
    "w/o MCL-F": {"use_mcl_f": False},
    "w/o MCL-S": {"use_mcl_s": False},
    "w/o MCL-T": {"use_mcl_t": False},
    "w/o MCL": {"use_mcl_f": False, "use_mcl_s": False, "use_mcl_t": False},
    "w/o MCF": {"fusion": "linear"},
}
TABLE_KEYS = ("mae", "corr", "acc2_has0", "acc2_non0", "f1_has0", "f1_non0")


def run_seeds(base: TrainConfig, seeds: list[int], out: Path, model_overrides: dict | None = None) -> dict:
    """Train once per seed; returns {"runs": [test metrics], "mean": {...}, "std": {...}}."""
    from mclmcf.training.loop import run
    runs = []
    for seed in seeds:
        cfg = replace(base, seed=seed, out=str(out / f"seed{seed}"), model={**base.model, **(model_overrides or {})})
        runs.append(run(cfg)["test"])
    keys = runs[0].keys()
    return {"seeds": seeds, "runs": runs,
            "mean": {k: float(np.mean([r[k] for r in runs])) for k in keys},
            "std": {k: float(np.std([r[k] for r in runs])) for k in keys}}


def format_table(results: dict[str, dict], paper: dict[str, dict], synthetic: bool) -> str:
    head = "| variant | " + " | ".join(f"{k} ours | {k} paper" for k in TABLE_KEYS) + " |"
    lines = [head, "|" + "---|" * (1 + 2 * len(TABLE_KEYS))]
    for name, r in results.items():
        cells = []
        for k in TABLE_KEYS:
            ours = f"{r['mean'][k]:.3f} ± {r['std'][k]:.3f}" if k in r["mean"] else "-"
            theirs = f"{paper[name][k]:.3f}" if name in paper else "-"
            cells += [ours, theirs]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if synthetic:
        lines.append("\nOurs: SYNTHETIC planted-signal data — not comparable with the paper's columns.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m mclmcf.experiments", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=("seeds", "paper"))
    p.add_argument("--data", help="dataset directory (safe format); --quick without it makes synthetic data")
    p.add_argument("--dataset", default="mosi", help="preset: mosi / mosei / sims")
    p.add_argument("--out", default="runs/experiments")
    p.add_argument("--seeds", type=int, nargs="+", default=[1111])
    p.add_argument("--quick", action="store_true", help="tiny model, 1 epoch (tests, smoke runs)")
    args, train_flags = p.parse_known_args(argv)
    out = Path(args.out)
    data = args.data
    if data is None:
        if not args.quick:
            p.error("--data is required (or --quick for a synthetic smoke run)")
        from preprocessing.dataformat import save_safe
        data = str(out / "synthetic-data")
        synthetic_data, info = generate(SyntheticSpec(n=64, max_audio_len=12, max_vision_len=8))
        save_safe(synthetic_data, data, info=info)
    base = config_from_args(["--data", data, "--dataset", args.dataset, *train_flags])
    if args.quick:
        base = replace(base, epochs=1, batch_size=16, progress=False, model={**TINY_MODEL, **base.model})
    from mclmcf.training.data import load_dataset
    synthetic = bool(load_dataset(data, allow_pickle=base.allow_pickle)[1].get("synthetic"))

    variants = VARIANTS if args.mode == "paper" else {"MCL-MCF": {}}
    results = {name: run_seeds(base, args.seeds, out / name.replace("/", "").replace(" ", "_"), overrides)
               for name, overrides in variants.items()}
    paper = {"MCL-MCF": PAPER_MAIN[args.dataset]} if args.dataset in PAPER_MAIN else {}
    if args.dataset == "mosi":
        paper.update(PAPER_ABLATIONS_MOSI)
    table = format_table(results, paper, synthetic)
    title = ("SYNTHETIC data — " if synthetic else "") + f"{args.dataset}, seeds {args.seeds}, test mean ± std"
    print(f"\n{title}\n{table}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"synthetic": synthetic, "data": data, "results": results,
                                                  "paper": paper}, indent=1))
    (out / "results.md").write_text(f"{title}\n\n{table}\n")
