"""The paper's tables and figures, one command each, our numbers beside the published ones.

    python -m mclmcf.experiments NAME --data DIR [--dataset mosi] [--seeds 1 2 3] --out DIR [train flags]
    python -m mclmcf.experiments NAME --quick --out /tmp/paper     # synthetic data, tiny model, seconds
    python -m mclmcf.experiments paper ...                          # every NAME in turn
    python -m mclmcf.experiments seeds --data DIR --seeds 1 2 3     # the full model over seeds

NAME: table3 (main results), table4 (CH-SIMS, paired t-test), table5 (ablations), fig3 (t-SNE of the fused
vectors), fig4 (loss weights), fig5 (losses over training), table6 (case study), table8 (pair designs),
fig6 (lr and batch size), fig7 (3-class confusion), table9 (TCF backbones). Each writes OUT/NAME.json (a list
of rows, each with a name and the metric keys of metrics.json), OUT/NAME.md and, for a figure, OUT/NAME.png.
Every training run lives in OUT/runs/ and is reused by any command that needs the same run. Unknown flags go
to python -m mclmcf.train (e.g. --epochs 5 --precision bf16); several GPUs: torchrun --nproc_per_node N -m
mclmcf.experiments ... (docs/paper.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from mclmcf.training import paper
from mclmcf.training import paper_figures as figures
from mclmcf.training.cli import config_from_args
from mclmcf.training.config import TRAIN_PRESETS, TrainConfig
from mclmcf.training.synthetic import TINY_MODEL, SyntheticSpec, generate

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("table3", "table4", "table5", "fig3", "fig4", "fig5", "table6", "table8", "fig6", "fig7", "table9")
# the datasets the paper runs each NAME on (the first is the default --dataset)
DATASETS = {"table3": ("mosi", "mosei"), "table4": ("sims",), "fig6": ("mosi", "mosei", "sims"),
            "fig7": ("mosi", "mosei", "sims")}
ABLATIONS = {"MCL-MCF": {}, "w/o MCL-F": {"use_mcl_f": False}, "w/o MCL-S": {"use_mcl_s": False},
             "w/o MCL-T": {"use_mcl_t": False}, "w/o MCL": {"use_mcl_f": False, "use_mcl_s": False, "use_mcl_t": False},
             "w/o MCF": {"fusion": "linear"}}
OFF = {"use_mcl_f": False, "use_mcl_s": False, "use_mcl_t": False}
# Fig. 3 (a)-(f): every panel keeps MCF; the MCL levels on in each
FIG3_PANELS = {"(a) no MCL": OFF, "(b) L_f": {**OFF, "use_mcl_f": True}, "(c) w/o MCL-F": {"use_mcl_f": False},
               "(d) w/o MCL-S": {"use_mcl_s": False}, "(e) L_f + L_s": {"use_mcl_t": False}, "(f) MCL-MCF": {}}
BACKBONES = {"TSLC": "conv3", "ResNet18": "resnet18", "ResNet34": "resnet34", "ResNet50": "resnet50", "ViT": "vit",
             "MAE": "mae"}
SWEEPS = {"full": {"weights": (0.01, 0.02, 0.05, 0.1, 0.2, 0.5), "lr": (1e-5, 5e-5, 1e-4, 5e-4, 1e-3),
                   "batch_size": (8, 16, 32, 64, 128)},
          "quick": {"weights": (0.05, 0.5), "lr": (1e-4, 1e-3), "batch_size": (8, 32)}}


class ExperimentRuns:
    """The runs of one command: a base TrainConfig, its seeds, OUT, and a cache of finished runs in OUT/runs."""

    def __init__(self, base: TrainConfig, seeds: list[int], out: Path, quick: bool, synthetic: bool):
        self.base, self.seeds, self.out, self.quick, self.synthetic = base, seeds, out, quick, synthetic
        self.sweeps = SWEEPS["quick" if quick else "full"]

    def config(self, seed: int, model: dict | None = None, **train) -> TrainConfig:
        cfg = replace(self.base, seed=seed, model={**self.base.model, **(model or {})}, **train)
        key = json.dumps({**cfg.to_dict(), "out": ""}, sort_keys=True, default=str)
        return replace(cfg, out=str(self.out / "runs" / hashlib.sha1(key.encode()).hexdigest()[:12]))

    def train(self, cfg: TrainConfig) -> dict:
        """metrics.json of the run (trained now, or earlier with the same config); a diverged run gives
        {"diverged": why} and NaN metrics, as the paper shows such runs."""
        from mclmcf.training.loop import run
        from mclmcf.training.runtime import TrainingStopped
        done = Path(cfg.out) / "metrics.json"
        if done.is_file():
            return json.loads(done.read_text())
        try:
            return run(cfg)
        except TrainingStopped as err:
            return {"diverged": str(err), "test": {k: float("nan") for k in paper.metric_keys(cfg.dataset)}}

    def row(self, name: str, model: dict | None = None, **train) -> dict:
        results = [self.train(self.config(seed, model, **train)) for seed in self.seeds]
        row = paper.summarise(name, [r["test"] for r in results], self.seeds)
        diverged = [r["diverged"] for r in results if "diverged" in r]
        return {**row, "diverged": diverged[0]} if diverged else row

    def baseline(self) -> dict:
        """Predicting the training split's mean label for every test clip, in the same metrics."""
        from mclmcf.training.data import load_dataset
        from mclmcf.training.evaluate import metric_convention
        from mclmcf.training.metrics import compute_metrics
        data, _ = load_dataset(self.base.data, allow_pickle=self.base.allow_pickle)
        labels = np.asarray(data["test"]["regression_labels"], float)
        mean = float(np.mean(data["train"]["regression_labels"]))
        metrics = compute_metrics(np.full_like(labels, mean), labels, metric_convention(self.base.dataset))
        return {"name": "predict-the-mean", "n": 1, **metrics}

    def test_outputs(self, cfg: TrainConfig) -> dict:
        """The trained run's test predictions, fused vectors (the head's input) and labels, ids and texts."""
        from mclmcf.model import MCLMCF
        from mclmcf.training.data import load_dataset
        from mclmcf.training.evaluate import eval_batches, predict
        from mclmcf.training.prepare import prepare_data
        from mclmcf.training.runtime import Env
        self.train(cfg)
        model = MCLMCF.from_pretrained(str(Path(cfg.out) / "model")).eval()
        split = prepare_data(cfg, model.config, log=lambda *a: None)[0]["test"]
        fused = []      # one array per batch, in predict's batch order
        hook = model.head.register_forward_hook(lambda module, inputs, output: fused.append(inputs[0].float()))
        try:
            preds = predict(model, split, cfg, Env())
        finally:
            hook.remove()
        vectors = np.zeros((len(split), fused[0].shape[1]), np.float32)
        vectors[np.concatenate(eval_batches(split, cfg.eval_batch_size))] = np.concatenate([f.numpy() for f in fused])
        raw = load_dataset(cfg.data, allow_pickle=cfg.allow_pickle)[0]["test"]
        return {"preds": preds, "fused": vectors, "labels": split.labels,
                "ids": [str(i) for i in raw["id"]], "texts": [str(t) for t in raw.get("raw_text", [""] * len(split))]}


def table_rows(kit: ExperimentRuns, variants: dict) -> list[dict]:
    return [kit.row(name, overrides) for name, overrides in variants.items()]


def run_table3(kit: ExperimentRuns) -> list[dict]:
    return table_rows(kit, {"MCL-MCF": {}})


def run_table4(kit: ExperimentRuns) -> list[dict]:
    """MCL-MCF and, for the paired t-test over seeds, the strongest baseline this package runs (w/o MCL):
    the paper tests against Self-MM, which is not implemented here."""
    rows = table_rows(kit, {"MCL-MCF": {}, "w/o MCL": ABLATIONS["w/o MCL"]})
    ours, other = rows
    rows[0]["paired_ttest_vs_wo_mcl"] = {k: paper.paired_ttest([r[k] for r in ours["runs"]], [r[k] for r in other["runs"]])
                                         for k in paper.SIMS_KEYS}
    return rows


def run_table5(kit: ExperimentRuns) -> list[dict]:
    return table_rows(kit, ABLATIONS)


def run_table8(kit: ExperimentRuns) -> list[dict]:
    return table_rows(kit, {design: {"pair_design": design} for design in "ABC"})


def tcf_cost(model_config) -> dict:
    """Trainable parameters and forward FLOPs for one sample of the TCF part alone (the paper's "after the
    encoding process"), measured with torch.utils.flop_counter."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from mclmcf.model.network import PAIRS, TCFStack
    from mclmcf.model.tcf_backbones import StackedImageTCF
    c = model_config
    d = c.tcf_dim
    if c.tcf_stacked:
        module = StackedImageTCF(c.tcf_backbone).eval()
    else:
        pool = c.tcf_pool if c.tcf_backbone == "pooled_conv3" else 1
        module = torch.nn.ModuleList(TCFStack(c.tcf_channels, pool) for _ in PAIRS).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        if c.tcf_stacked:
            module([torch.rand(1, d, d) for _ in PAIRS])
        else:
            for stack in module:
                stack(torch.rand(1, d), torch.rand(1, d))
    return {"params": sum(p.numel() for p in module.parameters() if p.requires_grad),
            "flops": int(counter.get_total_flops())}


def run_table9(kit: ExperimentRuns) -> list[dict]:
    from mclmcf.model.config import MCLMCFConfig
    from mclmcf.model.tcf_backbones import MAEUnavailableError
    rows = []
    for name, backbone in BACKBONES.items():
        overrides = {"tcf_backbone": backbone}
        model_config = MCLMCFConfig.from_preset(kit.base.dataset, **{**kit.base.model_overrides(), **overrides})
        try:
            cost = tcf_cost(model_config)
            row = kit.row(name, overrides)
        except MAEUnavailableError as err:
            rows.append({"name": name, "error": str(err)})
            continue
        rows.append({**row, **cost, "params_m": round(cost["params"] / 1e6, 4),
                     "macs_m": round(cost["flops"] / 2e6, 2)})
    return rows


def run_fig3(kit: ExperimentRuns) -> list[dict]:
    rows, panels = [], {}
    for name, overrides in FIG3_PANELS.items():
        rows.append(kit.row(name, overrides))
        panels[name] = kit.test_outputs(kit.config(kit.seeds[0], overrides))
    figures.tsne_panels(panels, kit.out / "fig3.png", kit.synthetic)
    return rows


def run_fig4(kit: ExperimentRuns) -> list[dict]:
    rows = []
    for weight in ("alpha", "beta", "gamma"):
        for value in kit.sweeps["weights"]:
            others = {w: 0.05 for w in ("alpha", "beta", "gamma") if w != weight}
            rows.append({**kit.row(f"{weight}={value:g}", {**others, weight: value}), "weight": weight, "value": value})
    figures.weight_curves(rows, kit.out / "fig4.png", kit.synthetic)
    return rows


def run_fig5(kit: ExperimentRuns) -> list[dict]:
    """One run of the full model, no early stopping (the paper shows 200 epochs), each loss per epoch."""
    epochs = kit.base.epochs
    result = kit.train(kit.config(kit.seeds[0], patience=epochs + 1))
    rows = [{"name": f"epoch {h['epoch']}", **h} for h in result.get("history", [])]
    figures.loss_curves(rows, kit.out / "fig5.png", kit.synthetic)
    return rows


def normalised(text: str) -> str:
    return " ".join(text.lower().replace("’", "'").split())


def run_table6(kit: ExperimentRuns) -> list[dict]:
    """The paper's four clips where the test split has them (matched by text), else the first four test clips."""
    out = kit.test_outputs(kit.config(kit.seeds[0]))
    where = {normalised(t): i for i, t in enumerate(out["texts"])}
    picked = [(where[normalised(c["text"])], c) for c in paper.TABLE6 if normalised(c["text"]) in where]
    picked += [(i, {}) for i in range(len(out["ids"])) if i not in {j for j, _ in picked}][:4 - len(picked)]
    return [{"name": out["ids"][i], "text": out["texts"][i], "label": float(out["labels"][i]),
             "prediction": float(out["preds"][i]), "paper_mcl_mcf": case.get("mcl_mcf"), "paper_mmim": case.get("mmim")}
            for i, case in picked]


def run_fig6(kit: ExperimentRuns) -> list[dict]:
    rows = [{**kit.row(f"lr={lr:g}", lr=lr), "sweep": "lr", "value": lr} for lr in kit.sweeps["lr"]]
    rows += [{**kit.row(f"batch={b}", batch_size=b), "sweep": "batch_size", "value": b}
             for b in kit.sweeps["batch_size"]]
    figures.sweep_curves(rows, kit.out / "fig6.png", kit.synthetic, paper.FIG6_NAN, kit.base.dataset)
    return rows


def run_fig7(kit: ExperimentRuns) -> list[dict]:
    out = kit.test_outputs(kit.config(kit.seeds[0]))
    matrix = figures.three_class_confusion(out["preds"], out["labels"], kit.base.dataset)
    figures.confusion_plot(matrix, kit.out / "fig7.png", kit.synthetic, kit.base.dataset)
    return [{"name": "MCL-MCF", "seed": kit.seeds[0], "classes": ["negative", "neutral", "positive"],
             "confusion": matrix.tolist(), "acc3": float(np.trace(matrix) / max(matrix.sum(), 1))}]


RUNNERS = {name: globals()[f"run_{name}"] for name in NAMES}
RUNS_PER_SEED = {"table3": 1, "table4": 2, "table5": 6, "fig3": 6, "fig4": 18, "fig5": 1, "table6": 1, "table8": 3,
                 "fig6": 10, "fig7": 1, "table9": 6}
PAPER_ROWS = {"table4": paper.TABLE4, "table5": paper.TABLE5, "table8": paper.TABLE8, "table9": paper.TABLE9,
              "fig3": {"(f) MCL-MCF": paper.TABLE5["MCL-MCF"], "(a) no MCL": {}}}


def report(name: str, rows: list[dict], kit: ExperimentRuns) -> str:
    dataset = kit.base.dataset
    published = paper.TABLE3.get(dataset, {}) if name == "table3" else PAPER_ROWS.get(name, {})
    if name == "fig4":
        published = {f"{w}=0.05": paper.TABLE5["MCL-MCF"] for w in ("alpha", "beta", "gamma")}
    what = f"SYNTHETIC planted-signal data, tiny model — NOT a reproduction; {name}" if kit.synthetic else f"{name}, {dataset}"
    spread = "mean ± sample std over the seeds" if len(kit.seeds) > 1 else "metrics of one seed (n=1: no std)"
    title = f"{what}, seeds {kit.seeds}, test {spread}"
    keys = paper.metric_keys(dataset)
    if name == "fig5":
        return f"{title}\n\n" + "\n".join(f"{r['name']}: " + "  ".join(f"{k} {v:.4f}" for k, v in r.items()
                                          if k.startswith("train_loss")) for r in rows)
    if name == "table6":
        head = "| clip | text | label | ours | paper MCL-MCF | paper MMIM |\n|---|---|---|---|---|---|"
        dash = lambda value: "-" if value is None else value   # noqa: E731
        cases = "\n".join(f"| {r['name']} | {r['text']} | {r['label']:.3f} | {r['prediction']:.3f} | "
                           f"{dash(r['paper_mcl_mcf'])} | {dash(r['paper_mmim'])} |" for r in rows)
        return f"{title}\n\n{head}\n{cases}"
    if name == "fig7":
        return f"{title}\n\nconfusion (rows: true negative / neutral / positive): {rows[0]['confusion']}, acc3 {rows[0]['acc3']:.3f}"
    extra = ("params_m", "macs_m") if name == "table9" else ()
    text = paper.format_table(title, rows + [kit.baseline()], published, keys, extra)
    if name == "table9":
        theirs = ", ".join(f"{k} {v['params_m']} / {v['macs_m']}" for k, v in paper.TABLE9.items())
        text += ("\n\nparams_m / macs_m: the TCF part's trainable parameters and multiply-accumulates (FLOPs / 2) "
                 f"per sample, ours; the paper's TPs/M and TFLOPs/M: {theirs}")
    if name == "table4":
        tests = rows[0]["paired_ttest_vs_wo_mcl"]
        text += "\n\npaired t-test over seeds, MCL-MCF vs w/o MCL (Self-MM is not implemented here): " + ", ".join(
            f"{k} p={t['p']:.3g}" if t["p"] is not None else f"{k}: needs >= 2 seeds" for k, t in tests.items())
    if name == "fig6":
        text += f"\n\npaper: NaN at {paper.FIG6_NAN}"
    return text


def announcement(name: str, kit: ExperimentRuns) -> str:
    """What is about to run. The measured-rate estimate is for the paper's dataset, so on synthetic data it is
    only offered as what the real command would take."""
    dataset, runs = kit.base.dataset, RUNS_PER_SEED[name] * len(kit.seeds)
    if not kit.synthetic:
        return f"{name}: " + paper.time_estimate(runs, dataset, kit.base.epochs, ROOT)
    what = (f"{name}{' --quick' if kit.quick else ''}: SYNTHETIC planted-signal data"
            + (", tiny model" if kit.quick else "") + f", {runs} run(s) of up to {kit.base.epochs} epoch(s): "
            "checks the pipeline, not a result")
    real = paper.time_estimate(runs, dataset, TRAIN_PRESETS[dataset]["epochs"], ROOT)
    return f"{what}\n(the real command, --data with the {dataset} features: {real})"


def run_name(name: str, kit: ExperimentRuns) -> list[dict]:
    print(announcement(name, kit))
    rows = RUNNERS[name](kit)
    if os.environ.get("RANK", "0") != "0":     # under torchrun every process trains; one writes the results
        return rows
    text = report(name, rows, kit)
    print(f"\n{text}\n")
    kit.out.mkdir(parents=True, exist_ok=True)
    (kit.out / f"{name}.json").write_text(json.dumps(rows, indent=1, default=str))
    (kit.out / f"{name}.md").write_text(text + "\n")
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m mclmcf.experiments", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=(*NAMES, "paper", "seeds"))
    p.add_argument("--data", help="dataset directory (safe format); --quick without it makes synthetic data")
    p.add_argument("--dataset", help="preset: mosi / mosei / sims (default: the paper's dataset for NAME)")
    p.add_argument("--out", default="runs/experiments")
    p.add_argument("--seeds", type=int, nargs="+", default=[1111])
    p.add_argument("--quick", action="store_true", help="synthetic data, tiny model, 1 epoch (tests, trying it out)")
    args, train_flags = p.parse_known_args(argv)
    out = Path(args.out)
    data = args.data
    if data is None:
        if not args.quick:
            p.error("--data is required (or --quick for a synthetic smoke run)")
        from preprocessing.dataformat import save_safe
        data = str(out / "synthetic-data")
        if not Path(data).is_dir():
            synthetic_data, info = generate(SyntheticSpec(n=120, max_audio_len=12, max_vision_len=8))
            save_safe(synthetic_data, data, info=info)
    names = NAMES if args.name == "paper" else ("table3",) if args.name == "seeds" else (args.name,)
    if args.name == "paper" and not args.quick:   # one data directory: the NAMEs the paper runs on its dataset
        names = tuple(n for n in NAMES if (args.dataset or "mosi") in DATASETS.get(n, ("mosi",)))
    for name in names:
        allowed = DATASETS.get(name, ("mosi",))
        dataset = args.dataset or allowed[0]
        if not args.quick and dataset not in allowed:
            p.error(f"{name} is a {' / '.join(allowed)} experiment in the paper; --dataset {dataset} does not fit it")
        base = config_from_args(["--data", data, "--dataset", dataset, *train_flags])
        if args.quick:
            quick_model = {**TINY_MODEL, "label_range": 3.0}     # synthetic labels span [-3, 3], also for sims
            base = replace(base, epochs=5 if name == "fig5" else 1, batch_size=16, progress=False,
                           model={**quick_model, **base.model})
        from mclmcf.training.data import load_dataset
        synthetic = bool(load_dataset(data, allow_pickle=base.allow_pickle)[1].get("synthetic"))
        run_name(name, ExperimentRuns(base, args.seeds, out, args.quick, synthetic))
