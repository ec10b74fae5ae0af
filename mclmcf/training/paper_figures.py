"""The paper's figures from our runs (PNG, matplotlib's Agg backend): Figs. 3-7 of the paper kit
(mclmcf.training.experiments). A synthetic run says so in every figure's title."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

CLASSES = ("negative", "neutral", "positive")


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: Path, title: str, synthetic: bool) -> None:
    fig.suptitle(("SYNTHETIC data, tiny model (not a reproduction): " if synthetic else "") + title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)


def tsne_panels(panels: dict[str, dict], path: Path, synthetic: bool) -> None:
    """Fig. 3: t-SNE of the head's input (the fused vector) on the test split, one panel per MCL ablation,
    coloured by the label's polarity."""
    from sklearn.manifold import TSNE
    plt = _pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(12, 7.5))
    for ax, (name, out) in zip(axes.flat, panels.items()):
        fused, labels = out["fused"], out["labels"]
        perplexity = max(2.0, min(30.0, (len(fused) - 1) / 3))
        xy = TSNE(2, perplexity=perplexity, init="pca", random_state=0).fit_transform(fused)
        for sign, colour, label in ((-1, "tab:red", "negative"), (0, "tab:gray", "neutral"), (1, "tab:blue", "positive")):
            pick = np.sign(labels) == sign
            ax.scatter(xy[pick, 0], xy[pick, 1], s=8, c=colour, label=label)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    axes.flat[0].legend(fontsize=8)
    _save(fig, path, "Fig. 3: t-SNE of the fused representation, MCL ablations (all with MCF)", synthetic)


def weight_curves(rows: list[dict], path: Path, synthetic: bool) -> None:
    """Fig. 4 (a)-(c): Acc-2 over alpha, beta and gamma, the other two at 0.05."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, weight in zip(axes, ("alpha", "beta", "gamma")):
        mine = [r for r in rows if r["weight"] == weight]
        for key in ("acc2_has0", "acc2_non0"):
            ax.plot([r["value"] for r in mine], [r.get(key, math.nan) for r in mine], marker="o", label=key)
        ax.set_xscale("log")
        ax.set_xlabel(weight)
        ax.set_title(f"{weight} (others 0.05)", fontsize=9)
    axes[0].set_ylabel("test accuracy")
    axes[0].legend(fontsize=8)
    _save(fig, path, "Fig. 4: accuracy over the loss weights", synthetic)


def loss_curves(rows: list[dict], path: Path, synthetic: bool) -> None:
    """Fig. 5: each level's contrastive loss, the label (L1) loss and the total, per training epoch."""
    plt = _pyplot()
    names = {"train_loss_f": "first loss (L_f)", "train_loss_s": "second loss (L_s)",
             "train_loss_t": "third loss (L_t)", "train_loss_reg": "label loss (L1)", "train_loss": "all losses"}
    fig, axes = plt.subplots(1, len(names), figsize=(3 * len(names), 3.2))
    epochs = [r["epoch"] for r in rows]
    for ax, (key, label) in zip(axes, names.items()):
        ax.plot(epochs, [r.get(key, math.nan) for r in rows], marker=".")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("epoch")
    _save(fig, path, "Fig. 5: losses over training", synthetic)


def sweep_curves(rows: list[dict], path: Path, synthetic: bool, paper_nan: dict, dataset: str) -> None:
    """Fig. 6 (c), (d): Acc-2, Corr and MAE over the learning rate and the batch size. A diverged run is drawn
    as the paper does: no point, and "NaN" written where it would be."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, sweep in zip(axes, ("lr", "batch_size")):
        mine = [r for r in rows if r["sweep"] == sweep]
        values = [r["value"] for r in mine]
        for key in ("acc2_has0", "corr", "mae"):
            ys = [r.get(key, math.nan) for r in mine]
            ax.plot(values, ys, marker="o", label=key)
        for r in mine:
            if math.isnan(r.get("mae", math.nan)):
                ax.annotate("NaN", (r["value"], 0.5), xycoords=("data", "axes fraction"), ha="center", color="red")
        ax.set_xscale("log")
        ax.set_xlabel(sweep)
        nan_at = paper_nan.get(sweep, {}).get(dataset)
        ax.set_title(f"{sweep}" + (f" (paper: NaN at {nan_at})" if nan_at else ""), fontsize=9)
    axes[0].legend(fontsize=8)
    _save(fig, path, "Fig. 6: learning rate and batch size", synthetic)


def three_class_confusion(preds: np.ndarray, labels: np.ndarray, dataset: str) -> np.ndarray:
    """3 x 3 counts, rows the true class. Classes as the metrics' acc3: CMU-MOSI / MOSEI round the score
    clipped to [-1, 1]; CH-SIMS cuts at -0.1 and 0.1 (mclmcf.training.metrics)."""
    def classes(x):
        x = np.asarray(x, float)
        if dataset == "sims":
            return np.digitize(np.clip(x, -1, 1), [-0.1, 0.1], right=True)
        return np.round(np.clip(x, -1, 1)).astype(int) + 1
    matrix = np.zeros((3, 3), int)
    np.add.at(matrix, (classes(labels), classes(np.nan_to_num(preds))), 1)
    return matrix


def confusion_plot(matrix: np.ndarray, path: Path, synthetic: bool, dataset: str) -> None:
    """Fig. 7: the three-class confusion matrix, each row normalised to the share of its true class."""
    plt = _pyplot()
    shares = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(4.4, 4))
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(3):
        for j in range(3):
            ax.text(j, i, f"{shares[i, j]:.2f}\n({matrix[i, j]})", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(3), CLASSES)
    ax.set_yticks(range(3), CLASSES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    _save(fig, path, f"Fig. 7: three-class confusion, {dataset}", synthetic)
