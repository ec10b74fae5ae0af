"""InfoNCE against hand-computed values; metrics on small hand-computed cases and edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mclmcf.model.config import AUTHORS_TEMPERATURE
from mclmcf.model.losses import InfoNCE, LogitScale, symmetric_infonce
from mclmcf.training.metrics import compute_metrics, weighted_f1


def test_infonce_identity_3x3_closed_form():
    # logits = s * I: every row's cross-entropy is log(1 + 2 exp(-s)), in both directions.
    s = AUTHORS_TEMPERATURE
    loss = symmetric_infonce(torch.eye(3), torch.eye(3), s)
    assert loss.item() == pytest.approx(math.log(1 + 2 * math.exp(-s)), abs=1e-6)


def test_infonce_3x3_by_hand():
    x = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    y = torch.tensor([[0.8, 0.6], [0.0, 1.0], [1.0, 0.0]])
    s = 2.0
    m = [[s * sum(a * b for a, b in zip(xi, yj)) for yj in y.tolist()] for xi in x.tolist()]

    def ce_rows(mat):
        return sum(-mat[i][i] + math.log(sum(math.exp(v) for v in mat[i])) for i in range(3)) / 3

    transposed = [[m[j][i] for j in range(3)] for i in range(3)]
    expected = (ce_rows(m) + ce_rows(transposed)) / 2
    assert symmetric_infonce(x, y, s).item() == pytest.approx(expected, abs=1e-6)
    # by hand: rows [1.6, 0, 2], [1.92, 1.6, 1.2], [1.2, 2, 0] give CE 0.991, 1.114, 2.460 (columns the same)
    assert expected == pytest.approx(1.5219, abs=1e-3)


def test_infonce_design_b_drops_same_sentiment_negatives():
    x = torch.eye(3)
    labels = torch.tensor([1.0, 2.0, -1.0])     # samples 0 and 1 share positive polarity
    s = 1.0
    loss = symmetric_infonce(x, x, s, labels, "B")
    # rows 0 and 1 keep only themselves and sample 2; row 2 keeps all three
    expected = (2 * math.log(1 + math.exp(-s)) + math.log(1 + 2 * math.exp(-s))) / 3
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_infonce_design_c_counts_all_same_sentiment_positives():
    x = torch.eye(2)
    labels = torch.tensor([1.0, 1.0])            # both positive: every pair is a positive
    loss = symmetric_infonce(x, x, 1.0, labels, "C")
    expected = -(math.log(math.e / (math.e + 1)) + math.log(1 / (math.e + 1))) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="needs sentiment labels"):
        symmetric_infonce(x, x, 1.0, None, "C")


def test_infonce_module_projects_and_normalises():
    torch.manual_seed(0)
    head = InfoNCE(5, 7, out_dim=4)         # default: the authors' Clip
    x, y = torch.randn(3, 5), torch.randn(3, 7)
    px = torch.nn.functional.normalize(head.project_x(x), dim=-1)
    py_authors = head.project_y(torch.nn.functional.normalize(y, dim=-1))
    torch.testing.assert_close(head(x, y, 2.5), symmetric_infonce(px, py_authors, 2.5))
    head.variant = "paper"
    py = torch.nn.functional.normalize(head.project_y(y), dim=-1)
    torch.testing.assert_close(head(x, y, 2.5), symmetric_infonce(px, py, 2.5))


def test_infonce_batch_of_one_is_zero():
    assert symmetric_infonce(torch.ones(1, 3), torch.ones(1, 3), 2.0).item() == pytest.approx(0.0)


def test_logit_scale_fixed_and_learnable_clamped():
    fixed = LogitScale("authors_code", AUTHORS_TEMPERATURE)
    assert fixed().item() == pytest.approx(2.6593, abs=1e-4) and not list(fixed.parameters())
    learnable = LogitScale("paper", AUTHORS_TEMPERATURE)
    assert learnable().item() == pytest.approx(1 / 0.07, rel=1e-5)
    with torch.no_grad():
        learnable.log_scale.fill_(10.0)
    assert learnable().item() == LogitScale.MAX_SCALE


def test_mosi_metrics_hand_case():
    labels = np.array([-3.0, -1.0, 0.0, 0.0, 1.4, 2.6])
    preds = np.array([-2.0, 0.5, -0.2, 0.3, 1.6, 3.9])
    m = compute_metrics(preds, labels)
    assert m["mae"] == pytest.approx((1 + 1.5 + 0.2 + 0.3 + 0.2 + 1.3) / 6)
    # has-0: truth >= 0 -> [F, F, T, T, T, T]; preds >= 0 -> [F, T, F, T, T, T]: 4 of 6 right
    assert m["acc2_has0"] == pytest.approx(4 / 6)
    # non-0: zeros dropped -> truth > 0 [F, F, T, T]; preds > 0 [F, T, T, T]: 3 of 4
    assert m["acc2_non0"] == pytest.approx(3 / 4)
    # acc7: clip to [-3, 3] and round: truth [-3, -1, 0, 0, 1, 3], preds [-2, 0, -0, 0, 2, 3] -> 3 of 6
    assert m["acc7"] == pytest.approx(3 / 6)
    # acc3: clip to [-1, 1] and round: truth [-1, -1, 0, 0, 1, 1], preds [-1, 0, 0, 0, 1, 1] -> 5 of 6
    assert m["acc3"] == pytest.approx(5 / 6)
    assert m["corr"] == pytest.approx(np.corrcoef(preds, labels)[0, 1])


def test_weighted_f1_hand_case():
    truth = np.array([1, 1, 1, 0])
    pred = np.array([1, 1, 0, 0])
    # class 1: p=1, r=2/3, f1=0.8 (support 3); class 0: p=0.5, r=1, f1=2/3 (support 1)
    assert weighted_f1(pred, truth) == pytest.approx((0.8 * 3 + 2 / 3) / 4)


def test_sims_metrics_thresholds():
    labels = np.array([-1.0, -0.4, 0.0, 0.05, 0.6, 1.0])
    preds = np.array([-0.8, -0.05, 0.0, 0.2, 0.9, 1.5])
    m = compute_metrics(preds, labels, "sims")
    # acc2: (-1, 0] vs (0, 1]: truth [0,0,0,1,1,1], preds [0,0,0,1,1,1]
    assert m["acc2"] == 1.0 and m["f1"] == 1.0
    # acc3 edges -0.1 / 0.1: truth [0,0,1,1,2,2], preds [0,1,1,2,2,2]: 4 of 6
    assert m["acc3"] == pytest.approx(4 / 6)
    # acc5 edges -0.7/-0.1/0.1/0.7: truth [0,1,2,2,3,4], preds [0,2,2,3,4,4]: 3 of 6
    assert m["acc5"] == pytest.approx(3 / 6)
    assert m["mae"] == pytest.approx(np.abs(np.clip(preds, -1, 1) - labels).mean())


def test_metrics_edge_cases():
    with pytest.raises(ValueError, match="NaN"):
        compute_metrics([0.1, float("nan")], [0.0, 1.0])
    with pytest.raises(ValueError, match="predictions for"):
        compute_metrics([0.1], [0.0, 1.0])
    with pytest.raises(ValueError, match="convention"):
        compute_metrics([0.1], [0.0], "iemocap")
    constant = compute_metrics([0.5, 0.5, 0.5], [1.0, -1.0, 2.0])
    assert constant["corr"] == 0.0
    all_zero = compute_metrics([0.5, -0.5], [0.0, 0.0])
    assert math.isnan(all_zero["acc2_non0"]) and all_zero["acc2_has0"] == 0.5
