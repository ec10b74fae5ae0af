"""The paper kit (python -m mclmcf.experiments NAME --quick): every NAME writes its JSON rows (and its PNG
for a figure) on the SYNTHETIC planted-signal set with the tiny model (no real dataset exists offline).
One output directory is shared, so runs needed by several NAMEs (the full model) are trained once."""

import json
import math

import numpy as np
import pytest

from mclmcf.training import paper
from mclmcf.training.experiments import main as experiments_main

FAST = ("table3", "table5", "table8", "table6", "fig7", "fig5")
FIGURES = {"fig3", "fig4", "fig5", "fig6", "fig7"}


@pytest.fixture(scope="module")
def kit_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("paper")
    for name in FAST:
        experiments_main([name, "--quick", "--out", str(out)])
    return out


def rows_of(out, name):
    return json.loads((out / f"{name}.json").read_text())


def check_outputs(out, name, keys=paper.MOSI_KEYS):
    rows = rows_of(out, name)
    assert rows and all("name" in r for r in rows)
    if name not in ("fig5", "fig7", "table6"):
        assert all(k in r for r in rows if "error" not in r for k in keys)
    assert (out / f"{name}.png").is_file() == (name in FIGURES)
    return rows


@pytest.mark.parametrize("name", FAST)
def test_quick_name_writes_rows_and_figure(kit_out, name):
    check_outputs(kit_out, name)


def test_quick_tables_are_labelled_synthetic_with_the_mean_baseline(kit_out):
    text = (kit_out / "table5.md").read_text()
    assert "SYNTHETIC" in text and "NOT a reproduction" in text
    assert "| w/o MCF | 1 |" in text and "0.692" in text            # n shown; the paper's MOSI MAE beside ours
    assert "±" not in text                                          # one seed: no "+- 0.000"
    baseline = next(line for line in text.splitlines() if line.startswith("| predict-the-mean"))
    from mclmcf.training.data import load_dataset
    splits, _ = load_dataset(str(kit_out / "synthetic-data"))
    labels = splits["test"]["regression_labels"]
    expected = np.abs(labels - splits["train"]["regression_labels"].mean()).mean()
    assert f"| {expected:.3f} |" in baseline


def test_table6_and_fig7_and_fig5_hold_what_the_paper_shows(kit_out):
    cases = rows_of(kit_out, "table6")
    assert len(cases) == 4 and all(math.isfinite(c["prediction"]) and "text" in c for c in cases)
    (confusion,) = rows_of(kit_out, "fig7")
    assert np.array(confusion["confusion"]).sum() == len(load_test_labels(kit_out))
    epochs = rows_of(kit_out, "fig5")
    assert len(epochs) == 5 and all({"train_loss_f", "train_loss_s", "train_loss_t", "train_loss_reg"} <= set(e)
                                    for e in epochs)


def load_test_labels(out):
    from mclmcf.training.data import load_dataset
    return load_dataset(str(out / "synthetic-data"))[0]["test"]["regression_labels"]


def test_mean_std_n_and_paired_ttest():
    one = paper.summarise("x", [{"mae": 0.7}], [1])
    assert one["n"] == 1 and one["std"]["mae"] is None and paper.cell(one, "mae") == "0.700"
    two = paper.summarise("x", [{"mae": 0.7}, {"mae": 0.8}], [1, 2])
    assert paper.cell(two, "mae") == f"0.750 ± {np.std([0.7, 0.8], ddof=1):.3f}"
    a, b = [0.70, 0.72, 0.69, 0.71], [0.74, 0.73, 0.75, 0.76]
    d = np.subtract(a, b)
    t = d.mean() / (d.std(ddof=1) / np.sqrt(len(d)))
    test = paper.paired_ttest(a, b)
    assert test["t"] == pytest.approx(t) and 0 < test["p"] < 0.05
    assert paper.paired_ttest([0.7], [0.8])["p"] is None
    assert paper.cell({"mae": float("nan")}, "mae") == "NaN"


def test_a_name_refuses_a_dataset_the_paper_does_not_run_it_on(tmp_path, capsys):
    with pytest.raises(SystemExit):
        experiments_main(["table4", "--data", str(tmp_path), "--dataset", "mosi", "--out", str(tmp_path)])
    assert "table4 is a sims experiment" in capsys.readouterr().err


def test_a_synthetic_run_does_not_announce_the_real_data(tmp_path):
    """Issue #41, point 12: `table3 --quick` began with "table3 on the real mosi data: ... at most 5.7 h"."""
    from mclmcf.training.config import TrainConfig
    from mclmcf.training.experiments import ExperimentRuns, announcement
    quick = announcement("table3", ExperimentRuns(TrainConfig(epochs=1), [1], tmp_path, quick=True, synthetic=True))
    first, second = quick.splitlines()
    assert first.startswith("table3 --quick: SYNTHETIC planted-signal data, tiny model, 1 run(s) of up to 1 epoch(s)")
    assert "real" not in first and second.startswith("(the real command, --data with the mosi features: ")
    real = announcement("table3", ExperimentRuns(TrainConfig(epochs=200), [1, 2], tmp_path, quick=False,
                                                 synthetic=False))
    assert real.startswith("table3: 2 runs x up to 200 epochs") and "SYNTHETIC" not in real


@pytest.mark.slow
@pytest.mark.parametrize("name", ("fig3", "fig4", "fig6"))
def test_quick_slow_names(kit_out, name):
    experiments_main([name, "--quick", "--out", str(kit_out)])
    rows = check_outputs(kit_out, name)
    if name == "fig6":
        assert {r["sweep"] for r in rows} == {"lr", "batch_size"}


@pytest.mark.slow
def test_quick_table4_paired_test_over_two_seeds(kit_out):
    experiments_main(["table4", "--quick", "--seeds", "1", "2", "--out", str(kit_out)])
    rows = check_outputs(kit_out, "table4", paper.SIMS_KEYS)
    assert rows[0]["n"] == 2 and rows[0]["paired_ttest_vs_wo_mcl"]["mae"]["n"] == 2
    assert "±" in (kit_out / "table4.md").read_text()


@pytest.mark.slow
def test_quick_table9_measures_params_and_flops_and_refuses_mae_offline(kit_out, monkeypatch):
    monkeypatch.setattr("preprocessing.hub.hub_reachable", lambda timeout_s=3.0: False)
    experiments_main(["table9", "--quick", "--out", str(kit_out)])
    rows = {r["name"]: r for r in check_outputs(kit_out, "table9")}
    assert rows["ResNet18"]["params"] == 11_689_512 and rows["ResNet50"]["params"] == 25_557_032
    assert 1.1e9 < rows["ResNet18"]["flops"] < 1.3e9          # ~593 M multiply-accumulates at 128 x 128
    assert "Hub" in rows["MAE"]["error"] and "mae" not in rows["MAE"]
