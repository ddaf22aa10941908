"""Backbones: an image batch ``(B, C, H, W)`` in, a feature ``h`` of shape ``(B, out_dim)`` out.

- ``small_cnn``: a fast 4-stage conv net for CPUs and workshops (about 0.3 M parameters).
- ``resnet18_cifar``: ResNet-18 with the CIFAR stem (3x3 conv, no max-pool), as in SimCLR's
  CIFAR experiments (https://arxiv.org/abs/2002.05709, appendix B.9).
- ``resnet18`` / ``resnet50``: torchvision's ImageNet ResNets for larger images (random init).
- ``vit_tiny``: a small Vision Transformer (https://arxiv.org/abs/2010.11929) for masked
  image modelling; see ``engine.models.vit``.
- ``pixels``: the flattened raw image, no parameters: the baseline every method must beat.

The CNNs also give the feature map before their global pooling (``feature_map``, one cell per
``backbone.stride`` pixels), which masked image modelling decodes into pixels.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from engine.registry import Registry

#: name -> factory ``fn(in_channels, image_size, width) -> nn.Module`` with an ``out_dim``.
BACKBONES: Registry[Callable[..., nn.Module]] = Registry("backbone")


def build_backbone(name: str, in_channels: int, image_size: int, width: int = 0) -> nn.Module:
    """Build a registered backbone; the module has an integer attribute ``out_dim``."""
    return BACKBONES.get(name)(in_channels=in_channels, image_size=image_size, width=width)


def _conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    """Four conv-BN-ReLU stages with max-pooling, then global average pooling.

    Widths ``w, 2w, 4w, 8w`` (default ``w=16``: 128-d ``h``; ``w=32`` doubles the features
    and quadruples the cost). Fast enough to train on a laptop CPU in minutes at 32 px.
    """

    def __init__(self, in_channels: int = 3, width: int = 16) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _conv_bn(in_channels, w),
            _conv_bn(w, 2 * w),
            nn.MaxPool2d(2),
            _conv_bn(2 * w, 4 * w),
            nn.MaxPool2d(2),
            _conv_bn(4 * w, 8 * w),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.in_channels = in_channels
        self.out_dim = 8 * w
        self.stride = 4  # pixels per cell of the last feature map (two 2x max-pools)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, 8w)
        return self.features(x)


class Pixels(nn.Module):
    """The raw image, flattened: ``(B, C, H, W) -> (B, C*H*W)``. No parameters to train."""

    def __init__(self, in_channels: int, image_size: int) -> None:
        super().__init__()
        self.out_dim = in_channels * image_size * image_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def _torchvision_resnet(name: str, in_channels: int, cifar_stem: bool) -> nn.Module:
    import torchvision

    net = getattr(torchvision.models, name)(weights=None)
    if cifar_stem:
        net.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        net.maxpool = nn.Identity()
    elif in_channels != 3:
        net.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
    net.in_channels = in_channels
    net.out_dim = net.fc.in_features
    net.stride = 8 if cifar_stem else 32  # pixels per cell of the last feature map
    net.fc = nn.Identity()
    return net


def feature_map(backbone: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The last features before global pooling of a CNN backbone (``small_cnn``, the ResNets):
    (B, C, H, W) -> (B, out_dim, H/s, W/s), ``s = backbone.stride``."""
    if isinstance(backbone, SmallCNN):
        return backbone.features[:-2](x)
    net = backbone  # a torchvision ResNet
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    return net.layer4(net.layer3(net.layer2(net.layer1(x))))


@BACKBONES.register("small_cnn")
def small_cnn(in_channels: int, image_size: int, width: int = 0) -> nn.Module:
    return SmallCNN(in_channels, width or 16)


@BACKBONES.register("resnet18_cifar")
def resnet18_cifar(in_channels: int, image_size: int, width: int = 0) -> nn.Module:
    return _torchvision_resnet("resnet18", in_channels, cifar_stem=True)


@BACKBONES.register("resnet18")
def resnet18(in_channels: int, image_size: int, width: int = 0) -> nn.Module:
    return _torchvision_resnet("resnet18", in_channels, cifar_stem=False)


@BACKBONES.register("resnet50")
def resnet50(in_channels: int, image_size: int, width: int = 0) -> nn.Module:
    return _torchvision_resnet("resnet50", in_channels, cifar_stem=False)


@BACKBONES.register("pixels")
def pixels(in_channels: int, image_size: int, width: int = 0) -> nn.Module:
    return Pixels(in_channels, image_size)
