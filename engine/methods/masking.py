"""What both forms of masked image modelling share: patches, the mask of hidden squares, and
the reconstruction loss on hidden patches only (SimMIM, https://arxiv.org/abs/2111.09886;
MAE, https://arxiv.org/abs/2111.06377)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def patches(x: torch.Tensor, p: int) -> torch.Tensor:
    """Pixels of each non-overlapping p x p patch: (B, C, H, W) -> (B, N, C*p*p)."""
    return F.unfold(x, kernel_size=p, stride=p).transpose(1, 2)


def masked_reconstruction(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, norm_pix: bool, l1: bool
) -> torch.Tensor:
    """Mean per-pixel error over hidden patches; pred, target (B, N, P), mask (B, N) in {0, 1}."""
    pred, target = pred.float(), target.float()
    if norm_pix:
        mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
        target = (target - mean) / (var + 1e-6).sqrt()
    err = (pred - target).abs() if l1 else (pred - target).pow(2)
    return (err.mean(-1) * mask).sum() / mask.sum().clamp_min(1)


def square_mask(
    b: int, rows: int, cols: int, block: int, ratio: float, g: torch.Generator,
    device: torch.device,
) -> torch.Tensor:
    """Hide ``ratio`` of the ``block`` x ``block`` squares of a rows x cols grid of patches,
    drawn afresh per image (squares overhanging the grid are cropped; at least one square
    stays visible and one hidden). Returns (B, rows, cols), 1 = hidden."""
    block_rows, block_cols = -(-rows // block), -(-cols // block)
    n = block_rows * block_cols
    n_keep = max(1, min(n - 1, round(n * (1 - ratio))))
    rank = torch.rand(b, n, device=device, generator=g).argsort(dim=1).argsort(dim=1)
    hidden = (rank >= n_keep).float().view(b, block_rows, block_cols)
    hidden = hidden.repeat_interleave(block, 1).repeat_interleave(block, 2)
    return hidden[:, :rows, :cols]
