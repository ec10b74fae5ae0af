"""The model computes the authors' function (GitHub Zhudogsi/MCL-MCF, src/model.py + src/modules/encoders.py).

Each check restates the authors' code independently (their Clip, their concatenation and operand
orders, their SubNet) on our model's own weights and compares, or tests a property that separates
the readings (MCF is non-linear only with the authors' ReLUs).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mclmcf.model.config import AUTHORS_TEMPERATURE, ArchRevisionError, MCLMCFConfig
from mclmcf.model.losses import InfoNCE, LogitScale
from mclmcf.model import MCLMCF
from tiny_model import make_batch, tiny_config


def authors_clip(clip: InfoNCE, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The authors' Clip.forward, line for line, with our module's two Linear layers."""
    x = clip.project_x(x)
    logit_scale = torch.ones([]) * np.log(1 / 0.07)
    x = x / x.norm(dim=1, keepdim=True)
    y = y / y.norm(dim=1, keepdim=True)
    y = clip.project_y(y)
    logits = logit_scale * torch.mm(x, y.T)
    labels = torch.arange(x.shape[0])
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2.0


def conv1d(layer: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """Their nn.Conv1d(kernel_size=1) on x.unsqueeze(2), with our layer's weights."""
    return F.conv1d(x.unsqueeze(2), layer.weight, layer.bias).squeeze(2)


def authors_tcf(model: MCLMCF, pair: str, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """torch.bmm outer product -> Conv2d + ReLU x 3 -> Flatten (their conv_tfn_*)."""
    x = torch.bmm(u.unsqueeze(2), v.unsqueeze(1)).unsqueeze(1)
    for conv in model.tcf[pair].convs:
        x = F.relu(conv(x))
    return x.flatten(1)


def unimodal(model: MCLMCF, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    text = model.text_encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                              token_type_ids=batch["token_type_ids"]).last_hidden_state[:, 0]
    acoustic = model.audio_encoder(model.audio_norm(batch["audio"]), batch["audio_lengths"])
    visual = model.vision_encoder(model.vision_norm(batch["vision"]), batch["vision_lengths"])
    return text, acoustic, visual


def record_outputs(modules: dict[str, nn.Module]) -> tuple[dict, list]:
    seen, handles = {}, []
    for name, module in modules.items():
        handles.append(module.register_forward_hook(lambda m, args, out, name=name: seen.__setitem__(name, out)))
    return seen, handles


def test_each_of_the_ten_infonce_calls_is_the_authors_clip_on_their_operands():
    torch.manual_seed(0)
    config = tiny_config()          # faithful level 3: conv3 backbone, flatten head
    model = MCLMCF(config).eval()   # eval: BERT's own dropout off, so both passes see the same vectors
    batch = make_batch(config, 6)
    heads = {f"level1.{k}": m for k, m in model.level1.items()}
    heads |= {f"level2.{k}": m for k, m in model.level2.items()}
    heads |= {f"level3.{k}": m for k, m in model.level3.items()}
    seen, handles = record_outputs(heads)
    with torch.no_grad():
        out = model(**batch)
        text, acoustic, visual = unimodal(model, batch)
        # massagehub_*: 1x1 convs over the authors' concatenations, no activation
        fuse = model.level2_fuse
        hub_tv = conv1d(fuse["tv"], torch.cat([text, visual], 1))
        hub_va = conv1d(fuse["va"], torch.cat([visual, acoustic], 1))
        hub_ta = conv1d(fuse["ta"], torch.cat([text, acoustic], 1))
        hub_tav = conv1d(fuse["tav"], torch.cat([text, visual, acoustic], 1))
        # res, res2, res3: Conv1d + ReLU expansions; tfn_*: the three TCF branches
        res, res2, res3 = (F.relu(conv1d(model.expand[m][0], x)) for m, x in (("t", text), ("v", visual), ("a", acoustic)))
        tfn_text_visual = authors_tcf(model, "tv", res, res2)
        tfn_text_acoustic = authors_tcf(model, "ta", res, res3)
        tfn_visual_acoustic = authors_tcf(model, "av", res2, res3)
        expected = {
            "level1.ta": authors_clip(model.level1["ta"], text, acoustic),
            "level1.tv": authors_clip(model.level1["tv"], text, visual),
            "level1.va": authors_clip(model.level1["va"], visual, acoustic),
            "level2.t_va": authors_clip(model.level2["t_va"], text, hub_va),
            "level2.v_ta": authors_clip(model.level2["v_ta"], visual, hub_ta),
            "level2.a_tv": authors_clip(model.level2["a_tv"], acoustic, hub_tv),
            "level2.a_tav": authors_clip(model.level2["a_tav"], acoustic, hub_tav),
            "level3.tv_ta": authors_clip(model.level3["tv_ta"], tfn_text_visual, tfn_text_acoustic),
            "level3.tv_av": authors_clip(model.level3["tv_av"], tfn_text_visual, tfn_visual_acoustic),
            "level3.ta_av": authors_clip(model.level3["ta_av"], tfn_text_acoustic, tfn_visual_acoustic),
        }
    for handle in handles:
        handle.remove()
    assert sorted(seen) == sorted(expected)
    for name, value in expected.items():
        torch.testing.assert_close(seen[name], value, rtol=1e-5, atol=1e-6, msg=name)
    torch.testing.assert_close(out.loss_f, sum(expected[k] for k in expected if k.startswith("level1")))
    torch.testing.assert_close(out.loss_s, sum(expected[k] for k in expected if k.startswith("level2")))
    torch.testing.assert_close(out.loss_t, sum(expected[k] for k in expected if k.startswith("level3")))
    # the restatement can tell operand orders apart: swapping a call's sides changes its value
    swapped = authors_clip(model.level1["va"], acoustic, visual)
    assert abs(swapped.item() - expected["level1.va"].item()) > 1e-4


def test_prediction_is_the_authors_mcf_and_subnet():
    torch.manual_seed(0)
    config = tiny_config()
    model = MCLMCF(config).eval()
    batch = make_batch(config, 4)
    batch.pop("labels")
    with torch.no_grad():
        text, acoustic, visual = unimodal(model, batch)
        qwer = F.relu(conv1d(model.fuse_shallow[0], torch.cat([text, acoustic, visual], 1)))
        res, res2, res3 = (F.relu(conv1d(model.expand[m][0], x)) for m, x in (("t", text), ("v", visual), ("a", acoustic)))
        res_mm = conv1d(model.fuse_deep, torch.cat([res, res2, res3, qwer], 1))      # conv_res: no activation
        drop, linear_1, _, linear_2, _, linear_3 = model.head
        y_1 = torch.tanh(linear_1(drop(res_mm)))
        preds = linear_3(torch.tanh(linear_2(y_1))).squeeze(1)
        torch.testing.assert_close(model(**batch).score, preds)


def test_head_is_the_authors_subnet():
    config = tiny_config(fusion_dim=32, head_hidden=16, dropout=0.1)
    head = MCLMCF(config).head
    assert [type(m) for m in head] == [nn.Dropout, nn.Linear, nn.Tanh, nn.Linear, nn.Tanh, nn.Linear]
    assert [(m.in_features, m.out_features) for m in head if isinstance(m, nn.Linear)] == [(32, 16), (16, 16), (16, 1)]
    assert head[0].p == 0.1


def test_defaults_are_the_authors_widths_and_dropout():
    config = MCLMCFConfig.from_preset("mosi")
    assert (config.level2_dim, config.contrastive_dim, config.head_hidden, config.fusion_dim) == (64, 128, 128, 512)
    assert (config.infonce_variant, config.fusion_activation) == ("authors_code", "relu")
    model = MCLMCF(tiny_config()).train()
    dropouts = [n for n, m in model.named_modules() if isinstance(m, nn.Dropout) and not n.startswith("text_encoder")]
    assert dropouts == ["head.0"]        # none on [CLS], none on the 1-layer LSTMs' outputs


def nonlinearity(model: MCLMCF, seed: int = 0) -> float:
    """|f(0.3x + 0.7y) - (0.3 f(x) + 0.7 f(y))| / |f(0.3x + 0.7y)| for f = unimodal vectors -> the head's input."""
    g = torch.Generator().manual_seed(seed)
    dims = {"t": model.text_encoder.config.hidden_size, "a": model.config.unimodal_dim, "v": model.config.unimodal_dim}
    x, y = ({m: torch.randn(8, d, generator=g) for m, d in dims.items()} for _ in range(2))

    def f(h):
        return model.fuse(h, model.expansions(h))

    with torch.no_grad():
        mix = f({m: 0.3 * x[m] + 0.7 * y[m] for m in dims})
        return ((mix - (0.3 * f(x) + 0.7 * f(y))).norm() / mix.norm()).item()


@pytest.mark.parametrize("overrides, linear", [
    ({}, False),                                     # MCF with the authors' ReLUs
    ({"fusion": "linear"}, True),                    # Table 5's w/o MCF
    ({"fusion_activation": "none"}, True),           # eqs. 19-21 as printed: MCF collapses to one affine map
])
def test_mcf_is_nonlinear_and_the_linear_readings_are_affine(overrides, linear):
    torch.manual_seed(0)
    model = MCLMCF(tiny_config(**overrides)).eval()
    value = nonlinearity(model)
    assert (value < 1e-5) if linear else (value > 1e-2), value


def test_tcf_images_are_non_negative_with_the_authors_relus():
    config = tiny_config()
    model = MCLMCF(config).eval()
    batch = make_batch(config, 3)
    batch.pop("labels")
    with torch.no_grad():
        images = model(**batch, return_maps=True).tcf_images
    assert all(float(image.min()) >= 0 for image in images.values())
    assert all(float(image.max()) > 0 for image in images.values())


def perfect_pairs(variant: str, batch: int, gain: float) -> tuple[InfoNCE, torch.Tensor]:
    """An InfoNCE head whose projections are identity (x) and gain * identity (y), fed matching one-hot rows."""
    head = InfoNCE(batch, batch, out_dim=batch, variant=variant)
    with torch.no_grad():
        head.project_x.weight.copy_(torch.eye(batch))
        head.project_y.weight.copy_(gain * torch.eye(batch))
        head.project_x.bias.zero_()
        head.project_y.bias.zero_()
    return head, torch.eye(batch)


@pytest.mark.parametrize("gain", [1.0, 3.0])
def test_loss_floor_authors_code_has_none(gain):
    # The authors' y side is not renormalised after its projection: logits grow with the projection's
    # norm, so the loss can approach 0. A both-normalised loss at a fixed 2.659 could not go below its
    # simplex optimum (off-diagonal cosines -1/31): log(1 + 31 e^(-2.659 * 32/31)) = 1.10 at batch 32.
    head, x = perfect_pairs("authors_code", 32, gain)
    scale = LogitScale("authors_code", AUTHORS_TEMPERATURE)()
    expected = math.log(1 + 31 * math.exp(-gain * AUTHORS_TEMPERATURE))
    assert head(x, x, scale).item() == pytest.approx(expected, rel=1e-4)
    hybrid_floor = math.log(1 + 31 * math.exp(-AUTHORS_TEMPERATURE * 32 / 31))
    assert hybrid_floor == pytest.approx(1.10, abs=0.01)
    if gain > 1:
        assert expected < 0.02 < hybrid_floor


def test_loss_floor_paper_variant_is_set_by_the_learnable_scale():
    # Algorithm 1: both sides unit vectors, logits bounded by exp(tau): 1/0.07 at initialisation
    # (floor log(1 + 31 e^-14.29) at batch 32, whatever the projections), at most 100 once learnt.
    head, x = perfect_pairs("paper", 32, 10.0)
    scale = LogitScale("paper", AUTHORS_TEMPERATURE)
    assert head(x, x, scale()).item() == pytest.approx(math.log(1 + 31 * math.exp(-1 / 0.07)), rel=1e-2)   # float32
    with torch.no_grad():
        scale.log_scale.fill_(50.0)
    assert head(x, x, scale()).item() == pytest.approx(math.log(1 + 31 * math.exp(-LogitScale.MAX_SCALE)), abs=1e-12)


def test_checkpoint_of_an_older_architecture_is_refused(tmp_path):
    config = tiny_config()
    MCLMCF(config).for_inference().save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["arch_revision"] == 2
    MCLMCF.from_pretrained(tmp_path)                    # the current revision loads
    del saved["arch_revision"]                          # as written by mclmcf at 115a5c7 and before
    (tmp_path / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ArchRevisionError, match=r"revision 1.*Retrain them"):
        MCLMCF.from_pretrained(tmp_path)
