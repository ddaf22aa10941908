"""BYOL from lightly, trained with Lightning, watched in SSL Studio through its callback.

    .venv/bin/pip install -r examples/requirements.txt
    PYTHONPATH=. .venv/bin/python examples/lightly_byol.py --runs-dir runs --epochs 5
    make run      # the run is on the Train page while it trains, then on Runs, Explore, Compare

The data is the app's built-in ``shapes`` set (offline). The module is lightly's BYOL, written
as lightly's examples write it, with two additions for the callback: ``training_step`` returns
the two views' online projections beside the loss, and ``embed`` gives ``h`` and ``z`` of
images for the map (see ``engine.track.lightning`` for the contract).
"""

from __future__ import annotations

import argparse
import copy

import lightning.pytorch as pl
import torch
from lightly.loss import NegativeCosineSimilarity
from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.utils.scheduler import cosine_schedule
from torchvision.transforms import v2

from engine.config import DataConfig
from engine.data import load_dataset
from engine.models import build_backbone
from engine.track.lightning import SSLStudioCallback


class BYOL(pl.LightningModule):
    """lightly's BYOL on the engine's small CNN (h of 128)."""

    def __init__(self, max_epochs: int, lr: float = 0.06) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.backbone = build_backbone("small_cnn", 3, 32, 16)
        self.projection_head = BYOLProjectionHead(128, 512, 128)
        self.prediction_head = BYOLPredictionHead(128, 512, 128)
        self.backbone_momentum = copy.deepcopy(self.backbone)
        self.projection_head_momentum = copy.deepcopy(self.projection_head)
        deactivate_requires_grad(self.backbone_momentum)
        deactivate_requires_grad(self.projection_head_momentum)
        self.criterion = NegativeCosineSimilarity()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.projection_head(self.backbone(x))
        return z, self.prediction_head(z)

    def forward_momentum(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection_head_momentum(self.backbone_momentum(x)).detach()

    def embed(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.backbone(x)
        return {"h": h, "z": self.projection_head(h)}

    def training_step(self, batch: tuple, batch_idx: int) -> dict[str, torch.Tensor]:
        m = cosine_schedule(self.current_epoch, self.hparams.max_epochs, 0.99, 1.0)
        update_momentum(self.backbone, self.backbone_momentum, m=m)
        update_momentum(self.projection_head, self.projection_head_momentum, m=m)
        x0, x1 = batch
        z0, p0 = self.forward(x0)
        z1, p1 = self.forward(x1)
        loss = 0.5 * (self.criterion(p0, self.forward_momentum(x1))
                      + self.criterion(p1, self.forward_momentum(x0)))
        # the callback's contract: the loss, and two views' embeddings for the diagnostics
        return {"loss": loss, "z0": z0.detach(), "z1": z1.detach(),
                "momentum": torch.tensor(m)}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)


class TwoViews(torch.utils.data.Dataset):
    """Two augmented views of each uint8 image, normalised."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images
        self.augment = v2.Compose([
            v2.RandomResizedCrop(32, scale=(0.3, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
            v2.RandomGrayscale(p=0.2),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize([0.5] * 3, [0.25] * 3),
        ])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.augment(self.images[i]), self.augment(self.images[i])


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, 32, 32) -> the module's input, as the views are normalised."""
    return (images.float() / 255 - 0.5) / 0.25


def main(argv: list[str] | None = None) -> str:
    """Train and return the tracked run's id."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs-dir", default=None)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--train-size", type=int, default=2048)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--name", default="lightly BYOL (Lightning)")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    ds = load_dataset(DataConfig(name="shapes", image_size=32, train_size=args.train_size,
                                 test_size=512))
    loader = torch.utils.data.DataLoader(TwoViews(ds.train.images), batch_size=args.batch_size,
                                         shuffle=True, drop_last=True)
    callback = SSLStudioCallback(
        args.name, runs_dir=args.runs_dir, method="byol", class_names=list(ds.class_names),
        images=ds.test.images, labels=ds.test.labels, transform=normalise, views_every=5,
        embed_every=50)
    trainer = pl.Trainer(max_epochs=args.epochs, accelerator="cpu", devices=1,
                         callbacks=[callback], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(BYOL(args.epochs), loader)
    return callback.run.id


if __name__ == "__main__":
    print(main())
