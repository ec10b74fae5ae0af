"""Table 9's TCF backbones (mclmcf/model/tcf_backbones.py): torchvision's ResNets written out, the ViT, MAE's
refusal without the Hub, and the model wired with a stacked-image backbone. Random weights, no download."""

import pytest
import torch

from mclmcf.model import tcf_backbones as tb
from mclmcf.model.config import MCLMCFConfig
from mclmcf.model.network import MCLMCF
from mclmcf.training.synthetic import TINY_MODEL

# torchvision's own counts: the weights metadata "num_params" of ResNet18_Weights / ResNet34_Weights /
# ResNet50_Weights.IMAGENET1K_V1 in torchvision/models/resnet.py (1000-class fc)
TORCHVISION_PARAMS = {"resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032}


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_resnets_match_torchvision_parameter_counts_names_and_shapes(name):
    net = getattr(tb, name)()
    assert sum(p.numel() for p in net.parameters()) == TORCHVISION_PARAMS[name]
    keys = set(net.state_dict())
    assert {"conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
            "layer4.1.bn2.weight", "fc.weight", "fc.bias"} <= keys          # torchvision's names: its state dicts load
    assert ("layer1.0.conv3.weight" in keys) == (name == "resnet50")     # Bottleneck only in ResNet-50
    assert net.eval()(torch.zeros(2, 3, 128, 128)).shape == (2, 1000)


def test_vit_is_128_pixels_patch_16_six_layers():
    vit = tb.vit_128()
    config = vit.model.config
    assert (config.image_size, config.patch_size, config.num_hidden_layers) == (128, 16, 6)
    assert vit.eval()(torch.zeros(2, 3, 128, 128)).shape == (2, 768)


def test_mae_refuses_without_the_hub_instead_of_random_weights(monkeypatch):
    monkeypatch.setattr("preprocessing.hub.hub_reachable", lambda timeout_s=3.0: False)
    with pytest.raises(tb.MAEUnavailableError, match="Random weights would not be MAE"):
        tb.mae_224()
    with pytest.raises(tb.MAEUnavailableError, match="facebook/vit-mae-base"):
        MCLMCF(MCLMCFConfig.from_preset("mosi", **TINY_MODEL, tcf_backbone="mae"))


def test_stacked_backbone_trains_through_level3():
    torch.manual_seed(0)
    model = MCLMCF(MCLMCFConfig.from_preset("mosi", **TINY_MODEL, tcf_backbone="resnet18"))
    b = 4
    out = model(torch.randint(0, 1000, (b, 8)), torch.ones(b, 8, dtype=torch.long), torch.randn(b, 6, 5),
                torch.full((b,), 6), torch.randn(b, 5, 20), torch.full((b,), 5), labels=torch.randn(b), return_maps=True)
    assert torch.isfinite(out.loss_t) and out.loss_t > 0
    assert {k: v.shape for k, v in out.tcf_images.items()} == {p: (b, 32, 32) for p in ("ta", "tv", "av")}
    assert out.tcf_feature_maps == {p: [] for p in ("ta", "tv", "av")}   # the page shows the images alone
    out.loss.backward()
    assert model.tcf.backbone.conv1.weight.grad.abs().sum() > 0          # the image network is trained by L_t
    assert set(model.level3) == {"tcf_t", "tcf_a", "tcf_v"}
    with pytest.raises(ValueError, match="tcf_backbone"):
        MCLMCFConfig(tcf_backbone="resnet101")
