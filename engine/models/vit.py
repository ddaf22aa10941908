"""A small Vision Transformer for masked image modelling on small images.

Dosovitskiy et al. 2020, "An Image is Worth 16x16 Words", https://arxiv.org/abs/2010.11929.
Pre-norm blocks, no class token: ``h`` is the mean of the final tokens (as in MAE's linear
probe variant, https://arxiv.org/abs/2111.06377), fixed 2-D sine-cosine position embeddings
(they need no training, which matters for short runs on small data).

The patch side is picked so the image is cut into about 8 x 8 patches: 4 px at 32 px, 12 px
at 96 px, 4 px (a 7 x 7 grid) at 28 px.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.backbones import BACKBONES


def patch_size_for(image_size: int, grid: int = 8) -> int:
    """The divisor of ``image_size`` whose grid (image_size / p) is closest to ``grid``."""
    divisors = [p for p in range(1, image_size + 1) if image_size % p == 0]
    return min(divisors, key=lambda p: (abs(math.log(image_size / p / grid)), -p))


def sincos_position_embedding(grid: int, dim: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine embedding (grid*grid, dim): half the channels encode the row,
    half the column (MAE's ``get_2d_sincos_pos_embed``)."""
    if dim % 4:
        raise ValueError(f"the ViT width must be a multiple of 4 (got {dim})")
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float32) / (dim // 4))
    pos = torch.arange(grid, dtype=torch.float32)
    rows, cols = torch.meshgrid(pos, pos, indexing="ij")

    def encode(p: torch.Tensor) -> torch.Tensor:
        angles = p.flatten()[:, None] * omega[None, :]  # (N, dim/4)
        return torch.cat([angles.sin(), angles.cos()], dim=1)  # (N, dim/2)

    return torch.cat([encode(rows), encode(cols)], dim=1)  # (N, dim)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"ViT width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, D) -> (B, N, D)
        b, n, d = x.shape
        qkv = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, heads, N, D/heads)
        attn = F.scaled_dot_product_attention(q, k, v)
        x = x + self.proj(attn.transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """Patch embedding, transformer blocks, final LayerNorm; ``forward`` mean-pools tokens.

    The pieces are public for masked image modelling: ``patchify`` (no position yet),
    ``pos_embed``, ``encode`` (blocks + norm on any subset of tokens).
    """

    def __init__(
        self, in_channels: int, image_size: int, dim: int = 128, depth: int = 6, heads: int = 4
    ) -> None:
        super().__init__()
        self.patch_size = patch_size_for(image_size)
        self.grid = image_size // self.patch_size
        self.in_channels = in_channels
        self.out_dim = dim
        self.patch_embed = nn.Conv2d(in_channels, dim, self.patch_size, self.patch_size)
        self.register_buffer("pos_embed", sincos_position_embedding(self.grid, dim)[None])
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.apply(_init)

    @property
    def num_patches(self) -> int:
        return self.grid * self.grid

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """Patch embeddings without position: (B, C, H, W) -> (B, N, D)."""
        return self.patch_embed(x).flatten(2).transpose(1, 2)

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Transformer blocks and final norm on position-embedded tokens (B, n, D)."""
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, D)
        return self.encode(self.patchify(x) + self.pos_embed).mean(dim=1)


def _init(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


@BACKBONES.register("vit_tiny")
def vit_tiny(in_channels: int, image_size: int, width: int = 0) -> nn.Module:
    """A 6-block ViT of width 128 with 4 heads (``model.width`` overrides; a multiple of 4)."""
    return ViT(in_channels, image_size, dim=width or 128, depth=6, heads=4)
