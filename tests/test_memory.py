"""Training memory options: gradient checkpointing of the text encoder, Adam with bf16 moments, bf16 autocast."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from mclmcf.training.checkpoint import load_checkpoint, save_checkpoint
from mclmcf.model.config import MCLMCFConfig
from mclmcf.training.config import TrainConfig
from mclmcf.training.synthetic import TINY_MODEL
from mclmcf.model import MCLMCF
from mclmcf.training.optim import BF16StateAdam, round_to_bf16
from mclmcf.training.cli import config_from_args
from mclmcf.training.loop import InjectedStop, run
from mclmcf.training.prepare import enable_gradient_checkpointing, make_optimizer
from mclmcf.training.runtime import TrainingStopped


def tiny_model(**overrides) -> MCLMCF:
    torch.manual_seed(0)
    return MCLMCF(MCLMCFConfig.from_preset("mosi", **{**TINY_MODEL, **overrides})).train()


def tiny_batch(config, n: int = 8) -> dict:
    g = torch.Generator().manual_seed(1)
    return dict(input_ids=torch.randint(1000, 30522, (n, 12), generator=g),
                attention_mask=torch.ones(n, 12, dtype=torch.long),
                audio=torch.randn(n, 10, config.audio_dim, generator=g), audio_lengths=torch.full((n,), 10),
                vision=torch.randn(n, 9, config.visual_dim, generator=g), vision_lengths=torch.full((n,), 9),
                labels=torch.rand(n, generator=g) * 6 - 3)


def loss_and_grads(model: MCLMCF, batch: dict) -> tuple[float, dict]:
    torch.manual_seed(5)                                       # the same dropout masks for both runs
    loss = model(**batch).loss
    loss.backward()
    return loss.item(), {n: p.grad for n, p in model.named_parameters() if p.grad is not None}


def test_gradient_checkpointing_same_loss_and_gradients():
    plain, checkpointed = tiny_model(), tiny_model()
    enable_gradient_checkpointing(checkpointed)
    assert checkpointed.text_encoder.encoder.layer[0].gradient_checkpointing
    batch = tiny_batch(plain.config)
    loss, grads = loss_and_grads(plain, batch)                 # train mode: dropout on, replayed in backward
    loss_ckpt, grads_ckpt = loss_and_grads(checkpointed, batch)
    assert loss_ckpt == loss
    assert grads_ckpt.keys() == grads.keys() and any(n.startswith("text_encoder.") for n in grads)
    for name in grads:                                         # recomputation runs the same kernels: 1e-6 relative
        torch.testing.assert_close(grads_ckpt[name], grads[name], rtol=1e-6, atol=1e-9, msg=name)


def test_gradient_checkpointing_refuses_a_frozen_encoder():
    with pytest.raises(TrainingStopped, match="trained text encoder"):
        enable_gradient_checkpointing(tiny_model(freeze_text_encoder=True))


def test_stochastic_rounding_is_unbiased():
    torch.manual_seed(0)
    x = torch.tensor([1 + 2 ** -10, -(3 + 2 ** -8), 1e-6 + 1e-9]).repeat(200_000, 1)
    rounded = round_to_bf16(x.clone(), torch.randint(0, 1 << 16, x.shape, dtype=torch.int32))
    assert rounded.dtype == torch.bfloat16
    # each value lands on one of its two bf16 neighbours; the mean error is within 5 standard errors of 0
    for col in range(3):
        values = rounded[:, col].float()
        assert values.unique().numel() == 2
        err = (values.mean() - x[0, col]).abs()
        assert err < 5 * values.std() / len(values) ** 0.5, (col, err)
    # rounding to nearest would give 1.0 for 1 + 2^-10: the part below bf16's last bit would be lost
    assert x[0, 0].bfloat16().item() == 1.0


def test_bf16_state_adam_follows_fp32_adam():
    torch.manual_seed(0)
    reference = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    model.load_state_dict(reference.state_dict())
    start = [p.detach().clone() for p in reference.parameters()]
    opt_ref = torch.optim.Adam(reference.parameters(), lr=1e-2, weight_decay=1e-4)
    opt = BF16StateAdam(model.parameters(), lr=1e-2, weight_decay=1e-4)
    x, y = torch.randn(64, 16), torch.randn(64, 1)
    for _ in range(20):
        for m, o in ((reference, opt_ref), (model, opt)):
            o.zero_grad()
            torch.nn.functional.mse_loss(m(x), y).backward()
            o.step()
    for state in opt.state.values():
        assert state["exp_avg"].dtype == state["exp_avg_sq"].dtype == torch.bfloat16 and state["step"] == 20
    assert all(p.dtype == torch.float32 for p in model.parameters())
    # after 20 steps the parameters differ from fp32 Adam's by under 2% of the distance they travelled
    for p, ref, p0 in zip(model.parameters(), reference.parameters(), start):
        travelled = (ref - p0).norm()
        assert (p - ref).norm() < 0.02 * travelled, ((p - ref).norm() / travelled).item()
    with torch.no_grad():
        loss, loss_ref = (torch.nn.functional.mse_loss(m(x), y).item() for m in (model, reference))
    assert abs(loss - loss_ref) < 0.01 * loss_ref


def test_optimizer_state_option_and_checkpoint_roundtrip(tmp_path):
    model = tiny_model()
    cfg = TrainConfig(optimizer_state="bf16", lr=1e-3, bert_lr=1e-3)
    opt = make_optimizer(model, cfg)
    assert isinstance(opt, BF16StateAdam) and isinstance(make_optimizer(model, TrainConfig()), torch.optim.Adam)
    assert [g["lr"] for g in opt.param_groups] == [1e-3, 1e-3]
    batch = tiny_batch(model.config)
    model(**batch).loss.backward()
    opt.step()
    save_checkpoint(tmp_path / "c.safetensors", model, opt, {"loop": {}})
    model2 = tiny_model()
    opt2 = make_optimizer(model2, cfg)
    load_checkpoint(tmp_path / "c.safetensors", model2, opt2)
    s1, s2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert s1.keys() == s2.keys() and len(s1) == sum(p.requires_grad for p in model.parameters())
    for i in s1:
        assert s2[i]["step"] == s1[i]["step"] == 1
        for key in ("exp_avg", "exp_avg_sq"):                  # still bf16 after loading, the same values
            assert s2[i][key].dtype == torch.bfloat16 and torch.equal(s2[i][key], s1[i][key])


def test_cli_flags_reach_the_config():
    cfg = config_from_args(["--gradient-checkpointing", "--optimizer-state", "bf16", "--precision", "bf16"])
    assert (cfg.gradient_checkpointing, cfg.optimizer_state, cfg.precision) == (True, "bf16", "bf16")
    default = config_from_args([])
    assert (default.gradient_checkpointing, default.optimizer_state, default.precision) == (False, "fp32", "fp32")
    with pytest.raises(SystemExit):
        config_from_args(["--optimizer-state", "int8"])
    with pytest.raises(ValueError, match="optimizer_state"):
        TrainConfig(optimizer_state="fp16")


def test_all_options_train_and_resume_exactly(synth_dir, tmp_path):
    """bf16 autocast on CPU + checkpointing + bf16 moments: a run trains, and a crash and --resume
    reproduce the uninterrupted run (the moments and the RNG their rounding draws from are checkpointed)."""
    cfg = TrainConfig(data=synth_dir, out=str(tmp_path / "a"), epochs=2, batch_size=16, lr=1e-3, bert_lr=1e-3,
                      progress=False, seed=7, model=dict(TINY_MODEL), checkpoint_every=3, precision="bf16",
                      gradient_checkpointing=True, optimizer_state="bf16")
    reference = run(cfg)
    assert reference["steps"] == 8 and reference["test"]["mae"] < 10
    crashed = replace(cfg, out=str(tmp_path / "b"), stop_after_steps=7)
    with pytest.raises(InjectedStop):
        run(crashed)                                           # last save at step 6
    resumed = run(replace(crashed, resume=True, stop_after_steps=0))
    assert resumed["train_config"]["optimizer_state"] == "bf16" and resumed["train_config"]["gradient_checkpointing"]
    assert resumed["test"] == reference["test"] and resumed["history"] == reference["history"]
