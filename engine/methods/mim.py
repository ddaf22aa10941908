"""Masked image modelling: hide part of an image and reconstruct its pixels.

Two styles (``auto``, the default: MAE on a ViT, SimMIM on a CNN):

- ``simmim``: Xie et al. 2021, "SimMIM", https://arxiv.org/abs/2111.09886. Hidden patches
  are replaced by a learned mask token and the encoder sees every position. On a ViT a linear
  head predicts the pixels (L1 loss). On a CNN (``small_cnn``, the ResNets) the hidden squares
  are painted with a learned colour before the first convolution and a small conv decoder
  predicts their pixels from the last feature map, the CNN form of SimMIM studied by A2MIM
  (Li et al. 2022, https://arxiv.org/abs/2205.13943).
- ``mae``: He et al. 2021, "Masked Autoencoders Are Scalable Vision Learners",
  https://arxiv.org/abs/2111.06377. ViT only: the encoder sees only the visible patches
  (cheap: a quarter of the tokens at ratio 0.75); a small decoder fills in mask tokens and
  predicts the pixels of the hidden patches.

The loss counts hidden patches only. ``h`` for the map and kNN is the backbone's pooled
feature of the whole, unmasked image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.methods.base import METHODS, Batch, Method, StepOutput, param
from engine.models.backbones import feature_map
from engine.models.vit import Block, ViT, sincos_position_embedding


@dataclass
class MIMConfig:
    style: str = param(
        "auto", "simmim: hidden patches become mask tokens and the encoder sees every "
        "position (any backbone). mae: encode only the visible patches and decode with a small "
        "transformer (ViT only). auto: mae on a ViT, simmim on a CNN.",
        choices=("auto", "simmim", "mae"))
    mask_ratio: float = param(
        0.6, "Fraction of patches hidden per image. SimMIM: 0.6; MAE: 0.75.", 0.05, 0.95)
    mask_patch: int = param(
        0, "Side in pixels of each hidden square, a multiple of the network's stride (CNN) or "
        "patch (ViT). 0 = twice the stride on a CNN (8 px for small_cnn), one patch on a ViT.",
        0, 256)
    norm_pix_loss: bool = param(
        True, "Reconstruct each patch standardised by its own mean and std (MAE's better "
        "target: it stresses edges and shape over flat colour).")
    conv_decoder_layers: int = param(
        1, "CNN: 3x3 conv layers (with BN and ReLU) between the last feature map and the "
        "pixels. 0 = a 1x1 linear head, SimMIM's ViT head: the encoder's last stage then "
        "becomes the pixel predictor and h learns less (shapes, one-cell squares, 180 s: kNN "
        "+0.009 against +0.081 with one layer; 8-px squares, 120 s: +0.053 against +0.071).",
        0, 4)
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


def _square_mask(
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


@METHODS.register("mim")
class MaskedImageModelling(Method):
    name = "mim"
    Config = MIMConfig
    summary = "Generative: reconstruct hidden image patches (SimMIM on a CNN or ViT, MAE on a ViT)."
    paper = "https://arxiv.org/abs/2111.09886"
    default_preset = "crop_flip"
    #: the usual causes of a collapse of this method, by kind (complete | dimensional)
    collapse_causes = {
        "dimensional": [
            "Masked image modelling has no term that spreads h: unlike the joint-embedding "
            "methods nothing in its loss keeps dimensions apart, so a low effective rank is "
            "common here and says less. Judge the run by its kNN accuracy and reconstructions.",
            "Hidden patches as small as one feature cell (method.mask_patch set to the "
            "backbone's stride): the visible neighbours suffice to fill them in and the "
            "features stay local.",
        ],
    }
    # A network trained from scratch wants a longer warm-up (MAE: 40 epochs of 800). On
    # shapes, 180 s, MAE on vit_tiny: kNN +0.08 with 1 epoch against +0.06 with 0.1; the
    # CNN runs that chose SimMIM's decoder and squares all used 1 epoch (BENCHMARKS.md)
    train_defaults = {"warmup_epochs": 1.0}

    def __init__(self, backbone: nn.Module, cfg: MIMConfig, num_classes: int) -> None:
        super().__init__(backbone, cfg, num_classes)
        self.vit = isinstance(backbone, ViT)
        self.style = cfg.style if cfg.style != "auto" else "mae" if self.vit else "simmim"
        if self.vit:
            self._build_vit(backbone, cfg)
        else:
            self._build_cnn(backbone, cfg)

    def _build_vit(self, vit: ViT, cfg: MIMConfig) -> None:
        d, p = vit.out_dim, vit.patch_size
        pixels = vit.in_channels * p**2
        self.patch = p  # pixels per side of each predicted patch
        side = cfg.mask_patch or p
        self.block = side // p
        if side % p or vit.grid % self.block:
            raise ValueError(
                f"on this ViT method.mask_patch must be a multiple of its {p}-px patch that "
                f"divides the image (got {cfg.mask_patch})"
            )
        blocks = (vit.grid // self.block) ** 2
        if blocks < 2:
            raise ValueError(f"method.mask_patch {cfg.mask_patch} leaves one square: use less")
        keep = max(1, min(blocks - 1, round(blocks * (1 - cfg.mask_ratio))))
        self.n_keep = keep * self.block**2  # visible patches, the same in every image
        if self.style == "mae":
            dd = cfg.decoder_dim - cfg.decoder_dim % 4
            self.mask_token = nn.Parameter(torch.zeros(1, 1, dd))
            self.decoder_embed = nn.Linear(d, dd)
            pos = sincos_position_embedding(vit.grid, dd)[None]
            self.register_buffer("decoder_pos", pos)
            heads = 4 if dd % 4 == 0 and dd >= 16 else 1
            self.decoder = nn.Sequential(*(Block(dd, heads) for _ in range(cfg.decoder_depth)))
            self.decoder_norm = nn.LayerNorm(dd)
            self.head = nn.Linear(dd, pixels)
        else:
            self.mask_token = nn.Parameter(torch.zeros(1, 1, d))
            self.head = nn.Linear(d, pixels)
        nn.init.normal_(self.mask_token, std=0.02)

    def _build_cnn(self, cnn: nn.Module, cfg: MIMConfig) -> None:
        stride = getattr(cnn, "stride", None)
        if stride is None:
            raise ValueError(
                "masked image modelling needs a backbone with a feature map: small_cnn, a "
                "ResNet or vit_tiny"
            )
        if self.style == "mae":
            raise ValueError(
                "MAE encodes only the visible patches, which a CNN cannot: set "
                "method.style=simmim, or model.backbone=vit_tiny"
            )
        self.patch = stride  # each cell of the feature map predicts its stride x stride pixels
        self.mask_patch = cfg.mask_patch or 2 * stride
        if self.mask_patch % stride:
            raise ValueError(
                f"method.mask_patch must be a multiple of the backbone's stride {stride} "
                f"(got {self.mask_patch})"
            )
        d, channels = cnn.out_dim, cnn.in_channels
        layers: list[nn.Module] = []
        for _ in range(cfg.conv_decoder_layers):
            layers += [nn.Conv2d(d, d, 3, padding=1), nn.BatchNorm2d(d), nn.ReLU(inplace=True)]
        self.decoder = nn.Sequential(*layers, nn.Conv2d(d, channels * stride**2, 1))
        self.mask_token = nn.Parameter(torch.zeros(1, channels, 1, 1))  # a learned colour

    def training_step(self, batch: Batch) -> StepOutput:
        pred, target, hidden, _ = self._step(batch.view(0), batch.generator)
        loss = _masked_reconstruction(
            pred, target, hidden, self.cfg.norm_pix_loss, l1=self.vit and self.style == "simmim"
        )
        return StepOutput(loss)

    def _step(self, x: torch.Tensor, g: torch.Generator) -> tuple:
        """Mask, encode, decode normalised images x (B, C, H, W). Returns the predicted and
        the true pixels of each patch (B, N, C*p*p), ``hidden`` (B, N), 1 = hidden, and, for a
        CNN, the images as the encoder was shown them (B, C, H, W; None for a ViT)."""
        return self._vit_step(x, g) if self.vit else self._cnn_step(x, g)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Normalised images x (B, C, H, W) -> (3, B, C, H, W): the images, what the encoder
        sees, and the images with their hidden patches as the network predicts them (with a
        per-patch normalised target, put back at each true patch's mean and spread, as MAE's
        figures do)."""
        pred, target, hidden, shown = self._step(x, generator)
        pred = pred.float()
        if self.cfg.norm_pix_loss:
            mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
            pred = pred * (var + 1e-6).sqrt() + mean
        p = self.patch
        rows, cols = x.shape[2] // p, x.shape[3] // p

        def image(patches: torch.Tensor) -> torch.Tensor:  # (B, N, C*p*p) -> x with them in
            out = x.clone()
            folded = F.fold(patches.transpose(1, 2), (rows * p, cols * p), p, stride=p)
            out[:, :, : rows * p, : cols * p] = folded.to(x.dtype)
            return out

        hidden = hidden[:, :, None] > 0
        if shown is None:  # the ViT: hidden patches at 0, the data set's mean colour
            shown = image(torch.where(hidden, 0.0, target))
        return torch.stack([x, shown, image(torch.where(hidden, pred, target))])

    def _vit_step(self, x: torch.Tensor, g: torch.Generator) -> tuple:
        vit: ViT = self.backbone  # type: ignore[assignment]
        b, grid = x.shape[0], vit.grid
        hidden = _square_mask(b, grid, grid, self.block, self.cfg.mask_ratio, g, x.device)
        hidden = hidden.flatten(1)  # (B, N) in patch order
        tokens = vit.patchify(x)  # (B, N, D)
        if self.style == "mae":
            shuffle = hidden.argsort(dim=1, stable=True)  # visible patches first
            restore = shuffle.argsort(dim=1)
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
        return pred, _patches(x, vit.patch_size), hidden, None

    def _cnn_step(self, x: torch.Tensor, g: torch.Generator) -> tuple:
        b, _, height, width = x.shape
        s, block = self.patch, self.mask_patch // self.patch
        rows, cols = height // s, width // s  # feature-map cells
        if -(-rows // block) * -(-cols // block) < 2:
            raise ValueError(
                f"a {height} x {width} image holds one {self.mask_patch}-px mask square: "
                f"set method.mask_patch to {s} or use larger images"
            )
        hidden = _square_mask(b, rows, cols, block, self.cfg.mask_ratio, g, x.device)
        hidden = hidden[:, None]  # (B, 1, H/s, W/s), 1 = hidden cell
        pixels = hidden.repeat_interleave(s, 2).repeat_interleave(s, 3)
        pixels = F.pad(pixels, (0, width - cols * s, 0, height - rows * s))  # (B, 1, H, W)
        x_masked = torch.where(pixels > 0, self.mask_token.to(x.dtype), x)
        pred = self.decoder(feature_map(self.backbone, x_masked))[:, :, :rows, :cols]
        return pred.flatten(2).transpose(1, 2), _patches(x, s), hidden.flatten(1), x_masked

    def embed(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"h": self.backbone(x)}  # pooled features of the unmasked image
