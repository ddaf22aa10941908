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

The two forms live in ``mim_vit.py`` and ``mim_cnn.py``, what they share in ``masking.py``.
The loss counts hidden patches only. ``h`` for the map and kNN is the backbone's pooled
feature of the whole, unmasked image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engine.methods import mim_cnn, mim_vit
from engine.methods.base import METHODS, Batch, Method, StepOutput, param
from engine.methods.masking import masked_reconstruction
from engine.models.vit import ViT


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
    # 1: on shapes, one-cell squares, 180 s: kNN +0.009 with the 1x1 head against +0.081 with
    # one layer; 8-px squares, 120 s: +0.053 against +0.071 (BENCHMARKS.md)
    conv_decoder_layers: int = param(
        1, "CNN: 3x3 conv layers (with BN and ReLU) between the last feature map and the "
        "pixels. 0 = a 1x1 linear head, SimMIM's ViT head: the encoder's last stage then "
        "becomes the pixel predictor and h learns less (measurements: BENCHMARKS.md).", 0, 4)
    decoder_dim: int = param(64, "MAE decoder width (units). Paper: 512.", 8, 1024)
    decoder_depth: int = param(2, "MAE decoder transformer blocks. Paper: 8.", 1, 8)


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
    # CNN runs that chose SimMIM's decoder and squares all used 1 epoch. The learning rate is
    # the CNN form's (SimMIM on small_cnn, the default backbone): the README's CLI line, 180 s
    # on shapes, gains +0.088 shape kNN at 2e-3, +0.099 at 4e-3, +0.114 at 8e-3. MAE on a ViT
    # was measured at 2e-3 only (BENCHMARKS.md): set train.lr for it.
    train_defaults = {"warmup_epochs": 1.0, "lr": 8e-3}

    def __init__(self, backbone: nn.Module, cfg: MIMConfig, num_classes: int) -> None:
        super().__init__(backbone, cfg, num_classes)
        self.vit = isinstance(backbone, ViT)
        self.style = cfg.style if cfg.style != "auto" else "mae" if self.vit else "simmim"
        self.form.build(self, backbone, cfg)

    @property
    def form(self) -> Any:
        """The module of this network's form: :mod:`mim_vit` or :mod:`mim_cnn`."""
        return mim_vit if self.vit else mim_cnn

    def training_step(self, batch: Batch) -> StepOutput:
        pred, target, hidden, _ = self._step(batch.view(0), batch.generator)
        loss = masked_reconstruction(
            pred, target, hidden, self.cfg.norm_pix_loss, l1=self.vit and self.style == "simmim"
        )
        return StepOutput(loss)

    def _step(self, x: torch.Tensor, g: torch.Generator) -> tuple:
        """Mask, encode, decode normalised images x (B, C, H, W). Returns the predicted and
        the true pixels of each patch (B, N, C*p*p), ``hidden`` (B, N), 1 = hidden, and, for a
        CNN, the images as the encoder was shown them (B, C, H, W; None for a ViT)."""
        return self.form.step(self, x, g)

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

    def embed(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"h": self.backbone(x)}  # pooled features of the unmasked image
