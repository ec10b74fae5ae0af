"""The paper's published numbers and the tables that print ours beside them: mean +- std over seeds with n,
the paired t-test where the paper uses one, the predict-the-mean baseline, and how long a command takes.

Accuracies and F1 are fractions; Table 4's CH-SIMS MAE and Corr (printed x100 in the paper) are divided by 100.
Numbers that exist only as plots (Figs. 3-7) are not transcribed: those columns print "-".
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

MOSI_KEYS = ("mae", "corr", "acc2_has0", "acc2_non0", "f1_has0", "f1_non0")
SIMS_KEYS = ("mae", "corr", "acc2", "f1")


def _row(mae, corr, acc2, f1):
    """A MOSI-convention row from the paper's 'has0 / non0' pairs."""
    return {"mae": mae, "corr": corr, "acc2_has0": acc2[0], "acc2_non0": acc2[1], "f1_has0": f1[0], "f1_non0": f1[1]}


# Table 3 (MCL-MCF and the MMIM baseline its dagger is tested against) and Table 5 (CMU-MOSI ablations)
TABLE3 = {
    "mosi": {"MCL-MCF": _row(0.692, 0.799, (0.849, 0.873), (0.847, 0.872)),
             "MMIM": _row(0.738, 0.781, (0.830, 0.851), (0.829, 0.850))},
    "mosei": {"MCL-MCF": _row(0.536, 0.767, (0.842, 0.864), (0.844, 0.863)),
              "MMIM": _row(0.547, 0.752, (0.819, 0.851), (0.823, 0.850))},
}
TABLE4 = {"MCL-MCF": {"mae": 0.4100, "corr": 0.5888, "acc2": 0.8184, "f1": 0.8182},
          "Self-MM": {"mae": 0.4250, "corr": 0.5952, "acc2": 0.8004, "f1": 0.8044}}
TABLE5 = {
    "MCL-MCF": TABLE3["mosi"]["MCL-MCF"],
    "w/o MCL-F": _row(0.720, 0.782, (0.836, 0.859), (0.834, 0.858)),
    "w/o MCL-S": _row(0.727, 0.783, (0.8418, 0.862), (0.839, 0.862)),
    "w/o MCL-T": _row(0.721, 0.783, (0.838, 0.8581), (0.836, 0.857)),
    "w/o MCL": _row(0.727, 0.791, (0.833, 0.855), (0.832, 0.854)),
    "w/o MCF": _row(0.717, 0.793, (0.841, 0.862), (0.838, 0.861)),
}
TABLE8 = {"A": TABLE3["mosi"]["MCL-MCF"], "B": _row(0.728, 0.798, (0.846, 0.867), (0.844, 0.865)),
          "C": _row(0.769, 0.790, (0.839, 0.862), (0.838, 0.862))}
# Table 9: its "TFLOPs/M" column matches multiply-accumulates (torchvision's ResNet-18 at 128 x 128: 593 M MACs
# = 1186 M FLOPs as torch.utils.flop_counter counts them), so it is compared with our FLOPs / 2.
TABLE9 = {
    "TSLC": {**_row(0.735, 0.794, (0.8338, 0.8613), (0.8308, 0.8594)), "macs_m": 26.52, "params_m": 24.77},
    "ResNet18": {**_row(0.834, 0.773, (0.8484, 0.8659), (0.8471, 0.8651)), "macs_m": 596.08, "params_m": 11.82},
    "ResNet34": {**_row(0.765, 0.789, (0.8469, 0.8643), (0.8465, 0.8644)), "macs_m": 1201.69, "params_m": 21.93},
    "ResNet50": {**_row(0.777, 0.776, (0.8382, 0.8613), (0.8364, 0.8603)), "macs_m": 1351.30, "params_m": 25.69},
    "ViT": {**_row(0.825, 0.763, (0.8294, 0.8552), (0.8267, 0.8535)), "macs_m": 11921.54, "params_m": 184.34},
    "MAE": {**_row(1.125, 0.491, (0.7216, 0.7500), (0.7126, 0.7437)), "macs_m": 20331.97, "params_m": 329.34},
}
# Table 6: the four CMU-MOSI clips, MCL-MCF's and MMIM's predictions beside the label
TABLE6 = [
    {"text": "Its completely different from anything we've ever seen him do before", "label": 0.4,
     "mcl_mcf": 0.4004, "mmim": -0.0637},
    {"text": "And she was kind of wierd during twilight", "label": -1.0, "mcl_mcf": -1.0004, "mmim": -0.6119},
    {"text": "And I was pretty open to to it being good", "label": 0.6, "mcl_mcf": 0.5996, "mmim": 1.4106},
    {"text": "Because I sure didn't see the end coming", "label": 0.0, "mcl_mcf": 0.0002, "mmim": -0.1139},
]
# Fig. 6: which settings the paper reports as NaN (its caption)
FIG6_NAN = {"lr": {"mosi": [1e-3], "mosei": [1e-3]}, "batch_size": {"mosei": [8, 16]}}
# Table 2: training-split sizes, for the time estimates
TRAIN_SIZES = {"mosi": 1284, "mosei": 16326, "sims": 1368}


def metric_keys(dataset: str) -> tuple[str, ...]:
    return SIMS_KEYS if dataset == "sims" else MOSI_KEYS


def summarise(name: str, runs: list[dict], seeds: list[int]) -> dict:
    """One table row: the mean of each metric at the top level (the keys metrics.json uses), the sample std
    (ddof 1; None for one seed), n and the per-seed values."""
    keys = runs[0].keys() if runs else ()
    values = {k: np.array([r[k] for r in runs], float) for k in keys}
    return {"name": name, "n": len(runs), "seeds": seeds, **{k: float(v.mean()) for k, v in values.items()},
            "std": {k: float(v.std(ddof=1)) if len(v) > 1 else None for k, v in values.items()}, "runs": runs}


def paired_ttest(a: list[float], b: list[float]) -> dict:
    """Two-sided paired t-test over seeds (the same seeds for both): t, p and n; p None below two pairs."""
    from scipy.stats import ttest_rel
    if len(a) < 2:
        return {"n": len(a), "t": None, "p": None}
    t, p = ttest_rel(a, b)
    return {"n": len(a), "t": float(t), "p": float(p) if np.isfinite(p) else None}


def cell(row: dict, key: str) -> str:
    """'0.692 +- 0.010' for several seeds, '0.692' for one (n is its own column), 'NaN' for a diverged run."""
    value = row.get(key)
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    std = (row.get("std") or {}).get(key)
    return f"{value:.3f} ± {std:.3f}" if std is not None else f"{value:.3f}"


def format_table(title: str, rows: list[dict], paper: dict[str, dict], keys: tuple[str, ...],
                 extra: tuple[str, ...] = ()) -> str:
    """Markdown: one row per variant, 'ours | paper' per metric; ``extra`` columns are printed as they are."""
    head = "| variant | n | " + " | ".join(f"{k} ours | {k} paper" for k in keys) + "".join(f" | {k}" for k in extra)
    lines = [f"{title}\n", head + " |", "|" + "---|" * (2 + 2 * len(keys) + len(extra))]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['name']} | 0 | not run: {row['error']} |")
            continue
        theirs = paper.get(row["name"], {})
        cells = []
        for k in keys:
            cells += [cell(row, k), f"{theirs[k]:.3f}" if k in theirs else "-"]
        cells += [str(row.get(k, "-")) for k in extra]
        lines.append(f"| {row['name']} | {row.get('n', '-')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def measured_rate(root: Path) -> tuple[float | None, str]:
    """Training samples/s: benchmarks/results/gpu_check.json's when a GPU was measured, else the CPU
    measurement of benchmarks/results/train_step.json (batch 32, the efficient recipe), and where it is from."""
    gpu = root / "benchmarks" / "results" / "gpu_check.json"
    if gpu.is_file():
        rows = [r for r in json.loads(gpu.read_text()).get("training", [])
                if r.get("config") == "efficient" and r.get("batch") == 32 and r.get("precision") == "fp32"]
        if rows:
            return rows[0]["samples_per_s"], "GPU, benchmarks/results/gpu_check.json (efficient, batch 32, fp32)"
    cpu = root / "benchmarks" / "results" / "train_step.json"
    if cpu.is_file():
        data = json.loads(cpu.read_text())
        rows = [r for r in data["results"] if r.get("config") == "efficient" and r.get("batch") == 32]
        if rows:
            cores = data.get("machine", {}).get("cores")
            return rows[0]["samples_per_s"], (f"no measured GPU step rate; CPU ({cores} cores), "
                                              "benchmarks/results/train_step.json (efficient, batch 32, frozen "
                                              "BERT-base: fine-tuning it is slower)")
    return None, "no measured step rate"


def time_estimate(n_runs: int, dataset: str, epochs: int, root: Path) -> str:
    """How long n_runs training runs of up to ``epochs`` epochs take at the measured rate (training samples only)."""
    rate, source = measured_rate(root)
    samples = n_runs * epochs * TRAIN_SIZES.get(dataset, 0)
    if rate is None or not samples:
        return f"{n_runs} runs x up to {epochs} epochs: not measured ({source})"
    return (f"{n_runs} runs x up to {epochs} epochs of {TRAIN_SIZES[dataset]} samples: at most "
            f"{samples / rate / 3600:.1f} h at {rate:.1f} samples/s ({source}); early stopping usually ends sooner")
