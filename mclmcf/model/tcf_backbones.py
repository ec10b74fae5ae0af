"""Table 9's TCF backbones: the three TCF images stacked into one 3-channel image for an image network.

The paper (Sec. 6.6) sends the stacked image to "the built-in ResNet series models in PyTorch" at
128 x 128 x 3, to a ViT (128 x 128, patch 16, 6 layers) and to "a pre-trained MAE-based model"
(224 x 224, patch 16). The ResNets here are torchvision's, written out (torchvision's wheel for this torch
does not import on CPU): same module and parameter names, so a torchvision state dict loads. Where the
paper is silent, the choices are:

- pretraining of the ResNets and the ViT: none named; they start from their own random init (torchvision's
  and transformers'), not the Xavier init of the rest of the model. MAE is pre-trained by definition:
  facebook/vit-mae-base from the Hub, refused (never random weights) when the Hub cannot be reached.
- the head after the backbone: each ResNet keeps torchvision's 1000-way fc, whose output is the embedding
  (the paper's TPs match torchvision's counts plus one Linear(1000, 128) InfoNCE projection); the ViT and
  MAE give their [CLS] state (768-d). The level-3 InfoNCE then contrasts that one embedding with each
  expansion h'_t, h'_a, h'_v (mclmcf.model.network), since a stacked image has no per-pair outputs.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from mclmcf.model.config import STACKED_TCF_BACKBONES

MAE_CHECKPOINT = "facebook/vit-mae-base"
IMAGE_SIDE = {"resnet18": 128, "resnet34": 128, "resnet50": 128, "vit": 128, "mae": 224}


class MAEUnavailableError(RuntimeError):
    """The MAE backbone needs its pre-trained weights from the Hub; random weights would not be MAE."""


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    """torchvision's ResNet v1.5 bottleneck: the stride sits on the 3x3 conv."""
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class ResNet(nn.Module):
    """torchvision.models.ResNet: 7x7 stem, max-pool, four stages, global average pool, fc."""

    def __init__(self, block: type, layers: list[int], num_classes: int = 1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        for m in self.modules():   # torchvision's init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, block: type, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18(num_classes: int = 1000) -> ResNet:
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes)


def resnet34(num_classes: int = 1000) -> ResNet:
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes)


def resnet50(num_classes: int = 1000) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes)


class ClsEncoder(nn.Module):
    """A transformers ViT-style model (ViTModel, ViTMAEModel) -> its last layer's [CLS] state."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=x).last_hidden_state[:, 0]


def vit_128() -> ClsEncoder:
    """The paper's ViT: 128 x 128 input, 16 x 16 patches, 6 layers; width and heads of ViT-Base (the paper
    gives no width). Random init."""
    from transformers import ViTConfig, ViTModel
    config = ViTConfig(image_size=128, patch_size=16, num_channels=3, num_hidden_layers=6, hidden_size=768,
                       num_attention_heads=12, intermediate_size=3072)
    return ClsEncoder(ViTModel(config, add_pooling_layer=False))


def mae_224() -> ClsEncoder:
    """facebook/vit-mae-base's encoder (224 x 224, patch 16), with masking off so every patch is seen."""
    from preprocessing.hub import hub_reachable
    if not hub_reachable():
        raise MAEUnavailableError(
            f"tcf_backbone='mae' needs the pre-trained {MAE_CHECKPOINT} weights from the Hugging Face Hub, which "
            "cannot be reached from here; connect to the Hub (or set HF_ENDPOINT to a mirror) and run again. "
            "Random weights would not be MAE, so none are used.")
    from transformers import ViTMAEModel
    return ClsEncoder(ViTMAEModel.from_pretrained(MAE_CHECKPOINT, mask_ratio=0.0, use_safetensors=True))


BUILDERS = {"resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50, "vit": vit_128, "mae": mae_224}
assert set(BUILDERS) == set(STACKED_TCF_BACKBONES)


class StackedImageTCF(nn.Module):
    """The three TCF images (B, D, D) as one (B, 3, S, S) image, bilinearly resized to the backbone's side S,
    -> the backbone -> one embedding (B, out_dim)."""

    def __init__(self, name: str):
        super().__init__()
        self.side = IMAGE_SIDE[name]
        self.backbone = BUILDERS[name]()
        with torch.no_grad():
            self.out_dim = self.backbone.eval()(torch.zeros(1, 3, self.side, self.side)).shape[-1]
        self.backbone.train()

    def forward(self, images: list[torch.Tensor]) -> torch.Tensor:
        x = torch.stack(images, dim=1)                                           # (B, 3, D, D)
        if x.shape[-1] != self.side:
            x = F.interpolate(x, size=(self.side, self.side), mode="bilinear", align_corners=False)
        return self.backbone(x)
