"""Masked image modelling on a ViT: MAE (the encoder sees only the visible patches, a small
transformer decoder fills in mask tokens; He et al. 2021, https://arxiv.org/abs/2111.06377) or
SimMIM (hidden patches become a learned mask token, the encoder sees every position, a linear
head predicts the pixels; Xie et al. 2021, https://arxiv.org/abs/2111.09886).

``build`` adds the form's modules to the method; ``step`` masks, encodes and decodes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from engine.methods.masking import patches, square_mask
from engine.models.vit import Block, ViT, sincos_position_embedding

if TYPE_CHECKING:
    from engine.methods.mim import MaskedImageModelling, MIMConfig


def build(method: MaskedImageModelling, vit: ViT, cfg: MIMConfig) -> None:
    """The ViT form's mask token, head and (MAE) decoder, on ``method``."""
    d, p = vit.out_dim, vit.patch_size
    pixels = vit.in_channels * p**2
    method.patch = p  # pixels per side of each predicted patch
    side = cfg.mask_patch or p
    method.block = side // p
    if side % p or vit.grid % method.block:
        raise ValueError(
            f"on this ViT method.mask_patch must be a multiple of its {p}-px patch that "
            f"divides the image (got {cfg.mask_patch})"
        )
    blocks = (vit.grid // method.block) ** 2
    if blocks < 2:
        raise ValueError(f"method.mask_patch {cfg.mask_patch} leaves one square: use less")
    keep = max(1, min(blocks - 1, round(blocks * (1 - cfg.mask_ratio))))
    method.n_keep = keep * method.block**2  # visible patches, the same in every image
    if method.style == "mae":
        dd = cfg.decoder_dim - cfg.decoder_dim % 4
        method.mask_token = nn.Parameter(torch.zeros(1, 1, dd))
        method.decoder_embed = nn.Linear(d, dd)
        pos = sincos_position_embedding(vit.grid, dd)[None]
        method.register_buffer("decoder_pos", pos)
        heads = 4 if dd % 4 == 0 and dd >= 16 else 1
        method.decoder = nn.Sequential(*(Block(dd, heads) for _ in range(cfg.decoder_depth)))
        method.decoder_norm = nn.LayerNorm(dd)
        method.head = nn.Linear(dd, pixels)
    else:
        method.mask_token = nn.Parameter(torch.zeros(1, 1, d))
        method.head = nn.Linear(d, pixels)
    nn.init.normal_(method.mask_token, std=0.02)



def step(method: MaskedImageModelling, x: torch.Tensor, g: torch.Generator) -> tuple:
    """See :meth:`MaskedImageModelling._step`."""
    vit: ViT = method.backbone  # type: ignore[assignment]
    b, grid = x.shape[0], vit.grid
    hidden = square_mask(b, grid, grid, method.block, method.cfg.mask_ratio, g, x.device)
    hidden = hidden.flatten(1)  # (B, N) in patch order
    tokens = vit.patchify(x)  # (B, N, D)
    if method.style == "mae":
        shuffle = hidden.argsort(dim=1, stable=True)  # visible patches first
        restore = shuffle.argsort(dim=1)
        keep = shuffle[:, : method.n_keep, None]
        visible = (tokens + vit.pos_embed).gather(1, keep.expand(-1, -1, tokens.shape[2]))
        latent = method.decoder_embed(vit.encode(visible))  # (B, n_keep, Dd)
        fill = method.mask_token.expand(b, tokens.shape[1] - method.n_keep, -1)
        full = torch.cat([latent, fill], dim=1)  # shuffled order
        full = full.gather(1, restore[:, :, None].expand(-1, -1, full.shape[2]))
        pred = method.head(method.decoder_norm(method.decoder(full + method.decoder_pos)))
    else:
        tokens = torch.where(hidden[:, :, None] > 0, method.mask_token.to(tokens.dtype), tokens)
        pred = method.head(vit.encode(tokens + vit.pos_embed))  # (B, N, C*p*p)
    return pred, patches(x, vit.patch_size), hidden, None
