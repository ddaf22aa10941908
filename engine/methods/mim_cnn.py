"""Masked image modelling on a CNN (``small_cnn``, the ResNets): SimMIM's recipe as A2MIM
studies it (Li et al. 2022, https://arxiv.org/abs/2205.13943): hidden squares are painted with a
learned colour before the first convolution, the encoder sees the whole image, and a small conv
decoder predicts each hidden cell's pixels from the last feature map.

``build`` adds the form's modules to the method; ``step`` masks, encodes and decodes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from engine.methods.masking import patches, square_mask
from engine.models.backbones import feature_map

if TYPE_CHECKING:
    from engine.methods.mim import MaskedImageModelling, MIMConfig


def build(method: MaskedImageModelling, cnn: nn.Module, cfg: MIMConfig) -> None:
    """The CNN form's mask colour and conv decoder, on ``method``."""
    stride = getattr(cnn, "stride", None)
    if stride is None:
        raise ValueError(
            "masked image modelling needs a backbone with a feature map: small_cnn, a "
            "ResNet or vit_tiny"
        )
    if method.style == "mae":
        raise ValueError(
            "MAE encodes only the visible patches, which a CNN cannot: set "
            "method.style=simmim, or model.backbone=vit_tiny"
        )
    method.patch = stride  # each cell of the feature map predicts its stride x stride pixels
    method.mask_patch = cfg.mask_patch or 2 * stride
    if method.mask_patch % stride:
        raise ValueError(
            f"method.mask_patch must be a multiple of the backbone's stride {stride} "
            f"(got {method.mask_patch})"
        )
    d, channels = cnn.out_dim, cnn.in_channels
    layers: list[nn.Module] = []
    for _ in range(cfg.conv_decoder_layers):
        layers += [nn.Conv2d(d, d, 3, padding=1), nn.BatchNorm2d(d), nn.ReLU(inplace=True)]
    method.decoder = nn.Sequential(*layers, nn.Conv2d(d, channels * stride**2, 1))
    method.mask_token = nn.Parameter(torch.zeros(1, channels, 1, 1))  # a learned colour



def step(method: MaskedImageModelling, x: torch.Tensor, g: torch.Generator) -> tuple:
    """See :meth:`MaskedImageModelling._step`."""
    b, _, height, width = x.shape
    s, block = method.patch, method.mask_patch // method.patch
    rows, cols = height // s, width // s  # feature-map cells
    if -(-rows // block) * -(-cols // block) < 2:
        raise ValueError(
            f"a {height} x {width} image holds one {method.mask_patch}-px mask square: "
            f"set method.mask_patch to {s} or use larger images"
        )
    hidden = square_mask(b, rows, cols, block, method.cfg.mask_ratio, g, x.device)
    hidden = hidden[:, None]  # (B, 1, H/s, W/s), 1 = hidden cell
    pixels = hidden.repeat_interleave(s, 2).repeat_interleave(s, 3)
    pixels = F.pad(pixels, (0, width - cols * s, 0, height - rows * s))  # (B, 1, H, W)
    x_masked = torch.where(pixels > 0, method.mask_token.to(x.dtype), x)
    pred = method.decoder(feature_map(method.backbone, x_masked))[:, :, :rows, :cols]
    return pred.flatten(2).transpose(1, 2), patches(x, s), hidden.flatten(1), x_masked
