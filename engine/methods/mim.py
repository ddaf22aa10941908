"""Masked image modelling: hide most patches of an image and reconstruct their pixels.

Two styles on the same small ViT (``model.backbone=vit_tiny``):

- ``mae``: He et al. 2021, "Masked Autoencoders Are Scalable Vision Learners",
  https://arxiv.org/abs/2111.06377. The encoder sees only the visible patches (cheap: a
  quarter of the tokens at ratio 0.75); a small decoder fills in mask tokens and predicts the
  pixels of the hidden patches.
- ``simmim``: Xie et al. 2021, "SimMIM", https://arxiv.org/abs/2111.09886. Hidden patches are
  replaced by a learned mask token, the encoder sees every position, and a linear head
  predicts the pixels (L1 loss).

The loss counts hidden patches only. ``h`` for the map and kNN is the encoder's mean-pooled
tokens of the whole, unmasked image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.methods.base import METHODS, Batch, Method, StepOutput, param
from engine.models.vit import Block, ViT, sincos_position_embedding


@dataclass
class MIMConfig:
    style: str = param(
        "mae", "mae: encode only the visible patches, decode with a small transformer. simmim: "
        "encode all positions with mask tokens, predict pixels with a linear head.",
        choices=("mae", "simmim"))
    mask_ratio: float = param(
        0.75, "Fraction of patches hidden per image. MAE: 0.75; SimMIM: 0.6.", 0.05, 0.95)
    norm_pix_loss: bool = param(
        True, "Reconstruct each patch standardised by its own mean and std (MAE's better "
        "target: it stresses edges and shape over flat colour).")
    decoder_dim: int = param(64, "MAE decoder width (units). Paper: 512.", 8, 1024)
    decoder_depth: int = param(2, "MAE decoder transformer blocks. Paper: 8.", 1, 8)


def _patches(x: torch.Tensor, p: int) -> torch.Tensor:
    """Pixels of each non-overlapping p x p patch: (B, C, H, W) -> (B, N, C*p*p)."""
    return F.unfold(x, kernel_size=p, stride=p).transpose(1, 2)


def _masked_reconstruction(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, norm_pix: bool, l1: bool
) -> torch.Tensor:
    """Mean per-pixel error over hidden patches; pred, target (B, N, P), mask (B, N) in {0, 1}."""
    pred, target = pred.float(), target.float()
    if norm_pix:
        mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
        target = (target - mean) / (var + 1e-6).sqrt()
    err = (pred - target).abs() if l1 else (pred - target).pow(2)
    return (err.mean(-1) * mask).sum() / mask.sum().clamp_min(1)


@METHODS.register("mim")
class MaskedImageModelling(Method):
    name = "mim"
    Config = MIMConfig
    summary = "Generative: reconstruct hidden image patches with a small ViT (MAE / SimMIM)."
    paper = "https://arxiv.org/abs/2111.06377"
    default_preset = "crop_flip"
    default_backbone = "vit_tiny"
    # A ViT trained from scratch wants a longer warm-up (MAE: 40 epochs of 800). On shapes,
    # 180 s: kNN +0.08 with 1 epoch against +0.06 with 0.1 (BENCHMARKS.md)
    train_defaults = {"warmup_epochs": 1.0}

    def __init__(self, backbone: nn.Module, cfg: MIMConfig, num_classes: int) -> None:
        super().__init__(backbone, cfg, num_classes)
        if not isinstance(backbone, ViT):
            raise ValueError("masked image modelling needs a ViT: set model.backbone=vit_tiny")
        d, n = backbone.out_dim, backbone.num_patches
        pixels = backbone.in_channels * backbone.patch_size**2
        self.n_keep = max(1, min(n - 1, round(n * (1 - cfg.mask_ratio))))
        if cfg.style == "mae":
            dd = cfg.decoder_dim - cfg.decoder_dim % 4
            self.mask_token = nn.Parameter(torch.zeros(1, 1, dd))
            self.decoder_embed = nn.Linear(d, dd)
            pos = sincos_position_embedding(backbone.grid, dd)[None]
            self.register_buffer("decoder_pos", pos)
            heads = 4 if dd % 4 == 0 and dd >= 16 else 1
            self.decoder = nn.Sequential(*(Block(dd, heads) for _ in range(cfg.decoder_depth)))
            self.decoder_norm = nn.LayerNorm(dd)
            self.head = nn.Linear(dd, pixels)
        else:
            self.mask_token = nn.Parameter(torch.zeros(1, 1, d))
            self.head = nn.Linear(d, pixels)
        nn.init.normal_(self.mask_token, std=0.02)

    def _mask(self, b: int, device: torch.device, g: torch.Generator) -> tuple:
        """A random permutation of patches per image; the first ``n_keep`` stay visible."""
        n = self.backbone.num_patches
        shuffle = torch.rand(b, n, device=device, generator=g).argsort(dim=1)  # (B, N)
        restore = shuffle.argsort(dim=1)
        hidden = torch.ones(b, n, device=device)
        hidden[:, : self.n_keep] = 0
        hidden = hidden.gather(1, restore)  # (B, N), 1 = hidden, in patch order
        return shuffle, restore, hidden

    def training_step(self, batch: Batch) -> StepOutput:
        vit: ViT = self.backbone  # type: ignore[assignment]
        x = batch.view(0)  # (B, C, H, W)
        b = x.shape[0]
        shuffle, restore, hidden = self._mask(b, x.device, batch.generator)
        tokens = vit.patchify(x)  # (B, N, D)
        if self.cfg.style == "mae":
            keep = shuffle[:, : self.n_keep, None]
            visible = (tokens + vit.pos_embed).gather(1, keep.expand(-1, -1, tokens.shape[2]))
            latent = self.decoder_embed(vit.encode(visible))  # (B, n_keep, Dd)
            fill = self.mask_token.expand(b, tokens.shape[1] - self.n_keep, -1)
            full = torch.cat([latent, fill], dim=1)  # shuffled order
            full = full.gather(1, restore[:, :, None].expand(-1, -1, full.shape[2]))
            pred = self.head(self.decoder_norm(self.decoder(full + self.decoder_pos)))
        else:
            tokens = torch.where(hidden[:, :, None] > 0, self.mask_token.to(tokens.dtype), tokens)
            pred = self.head(vit.encode(tokens + vit.pos_embed))  # (B, N, C*p*p)
        target = _patches(x, vit.patch_size)
        loss = _masked_reconstruction(
            pred, target, hidden, self.cfg.norm_pix_loss, l1=self.cfg.style == "simmim"
        )
        return StepOutput(loss)

    def embed(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"h": self.backbone(x)}  # mean-pooled tokens of the unmasked image
