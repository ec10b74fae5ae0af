"""Evaluation metrics for sentiment intensity regression, in the conventions the MSA literature uses.

CMU-MOSI / MOSEI (labels in [-3, 3]):
  mae, corr (Pearson);
  acc2_has0 / f1_has0: negative (< 0) vs non-negative (>= 0), every sample;
  acc2_non0 / f1_non0: negative vs positive, samples labelled exactly 0 left out;
  acc3 / acc5 / acc7: scores clipped to [-1, 1] / [-2, 2] / [-3, 3], rounded, compared as classes.
CH-SIMS (labels in [-1, 1]), as MMSA computes them: scores clipped to [-1, 1], then binned by
  thresholds: acc2 at 0 ((-1, 0] vs (0, 1]), acc3 at -0.1 / 0.1, acc5 at -0.7 / -0.1 / 0.1 / 0.7.
F1 is support-weighted over the classes (sklearn's average="weighted"). Accuracies are fractions.
"""

from __future__ import annotations

import numpy as np

SIMS_BINS = {"acc2": [0.0], "acc3": [-0.1, 0.1], "acc5": [-0.7, -0.1, 0.1, 0.7]}


def _as_arrays(preds, labels) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(preds, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if p.shape != y.shape:
        raise ValueError(f"{p.size} predictions for {y.size} labels")
    if p.size == 0:
        raise ValueError("no predictions to evaluate")
    if not np.isfinite(p).all():
        raise ValueError(f"{int((~np.isfinite(p)).sum())} of {p.size} predictions are NaN or infinite: "
                         "the model diverged (lower the learning rate or raise the batch size)")
    if not np.isfinite(y).all():
        raise ValueError("labels contain NaN or infinite values")
    return p, y


def pearson(p: np.ndarray, y: np.ndarray) -> float:
    """Pearson r; 0.0 when either side is constant (undefined correlation, reported as no correlation)."""
    p, y = p - p.mean(), y - y.mean()
    denom = np.sqrt((p * p).sum() * (y * y).sum())
    return float((p * y).sum() / denom) if denom > 0 else 0.0


def accuracy(pred_cls: np.ndarray, true_cls: np.ndarray) -> float:
    return float((pred_cls == true_cls).mean())


def weighted_f1(pred_cls: np.ndarray, true_cls: np.ndarray) -> float:
    total = 0.0
    for c in np.unique(true_cls):
        tp = np.sum((pred_cls == c) & (true_cls == c))
        precision_den, recall_den = np.sum(pred_cls == c), np.sum(true_cls == c)
        f1 = 2 * tp / (precision_den + recall_den) if tp else 0.0
        total += f1 * recall_den
    return float(total / true_cls.size)


def rounded_class_accuracy(p: np.ndarray, y: np.ndarray, bound: float) -> float:
    """Acc-(2*bound+1): clip both to [-bound, bound], round to the nearest integer, compare."""
    return accuracy(np.round(np.clip(p, -bound, bound)), np.round(np.clip(y, -bound, bound)))


def mosi_metrics(preds, labels) -> dict[str, float]:
    p, y = _as_arrays(preds, labels)
    out = {"mae": float(np.abs(p - y).mean()), "corr": pearson(p, y)}
    out["acc2_has0"] = accuracy(p >= 0, y >= 0)
    out["f1_has0"] = weighted_f1(p >= 0, y >= 0)
    nonzero = y != 0
    if nonzero.any():
        out["acc2_non0"] = accuracy(p[nonzero] > 0, y[nonzero] > 0)
        out["f1_non0"] = weighted_f1(p[nonzero] > 0, y[nonzero] > 0)
    else:
        out["acc2_non0"] = out["f1_non0"] = float("nan")
    for bound, name in ((1, "acc3"), (2, "acc5"), (3, "acc7")):
        out[name] = rounded_class_accuracy(p, y, bound)
    return out


def sims_metrics(preds, labels) -> dict[str, float]:
    p, y = _as_arrays(preds, labels)
    p, y = np.clip(p, -1, 1), np.clip(y, -1, 1)
    out = {"mae": float(np.abs(p - y).mean()), "corr": pearson(p, y)}
    for name, edges in SIMS_BINS.items():
        # right=True: a value equal to an edge falls in the lower bin, as MMSA's (lo, hi] intervals
        pc, yc = np.digitize(p, edges, right=True), np.digitize(y, edges, right=True)
        out[name] = accuracy(pc, yc)
        if name == "acc2":
            out["f1"] = weighted_f1(pc, yc)
    return out


def compute_metrics(preds, labels, convention: str = "mosi") -> dict[str, float]:
    """All metrics of one convention: "mosi" (also MOSEI and the demo data) or "sims"."""
    if convention == "mosi":
        return mosi_metrics(preds, labels)
    if convention == "sims":
        return sims_metrics(preds, labels)
    raise ValueError(f"unknown metric convention {convention!r}; choose 'mosi' or 'sims'")
