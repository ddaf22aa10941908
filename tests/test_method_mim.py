"""Masked image modelling: MAE and SimMIM on the small ViT, SimMIM on CNNs (``small_cnn``, the
ResNets): what is hidden, what the encoder sees, what is predicted and shown, and the errors
for settings that cannot work."""

from __future__ import annotations

import pytest
import torch

from engine.models import build_backbone
from engine.models.vit import ViT, patch_size_for
from tests.fixtures.method_batches import SIZE, B, batch_for, make


def tiny_vit() -> ViT:
    return ViT(3, SIZE, dim=32, depth=2, heads=4)  # vit_tiny's design, two blocks


def test_vit_backbone() -> None:
    assert patch_size_for(32) == 4 and patch_size_for(96) == 12 and patch_size_for(28) == 4
    vit = build_backbone("vit_tiny", 3, 32, 32)
    assert isinstance(vit, ViT) and vit.num_patches == 64
    assert vit(torch.randn(2, 3, 32, 32)).shape == (2, 32)


def test_mim_picks_its_style_from_the_backbone_and_says_what_cannot_work() -> None:
    assert make("mim").style == "simmim" and make("mim", tiny_vit()).style == "mae"
    with pytest.raises(ValueError, match="method.style=simmim"):
        make("mim", style="mae")  # MAE drops patches: a CNN cannot
    with pytest.raises(ValueError, match="feature map"):
        make("mim", build_backbone("pixels", 3, SIZE))
    with pytest.raises(ValueError, match="multiple of the backbone's stride 4"):
        make("mim", mask_patch=6)
    method = make("mim", mask_patch=16)  # one square covers the whole 16-px image
    with pytest.raises(ValueError, match="mask_patch to 4"):
        method.training_step(batch_for(method))


@pytest.mark.parametrize("style", ["mae", "simmim"])
def test_mim_on_a_vit_reconstructs_only_hidden_patches(style: str) -> None:
    method = make("mim", tiny_vit(), style=style, mask_ratio=0.5)
    method.train()
    pred, target, hidden, _ = method._step(batch_for(method).view(0), torch.Generator())
    n = method.backbone.num_patches
    assert pred.shape == target.shape == (B, n, 3 * method.backbone.patch_size**2)
    assert torch.all(hidden.sum(1) == n - method.n_keep)
    assert torch.isfinite(method.training_step(batch_for(method)).loss)


@pytest.mark.parametrize("style", ["mae", "simmim"])
def test_mim_on_a_vit_can_hide_squares_of_patches(style: str) -> None:
    method = make("mim", tiny_vit(), style=style, mask_patch=4)  # 2 x 2 patches of 2 px
    hidden = method._step(torch.randn(B, 3, SIZE, SIZE), torch.Generator())[2].view(B, 8, 8)
    squares = hidden[:, ::2, ::2]
    assert torch.equal(hidden, squares.repeat_interleave(2, 1).repeat_interleave(2, 2))
    assert squares.sum((1, 2)).tolist() == [16 - round(16 * 0.4)] * B
    with pytest.raises(ValueError, match="multiple of its 2-px patch"):
        make("mim", tiny_vit(), mask_patch=3)
    with pytest.raises(ValueError, match="leaves one square"):
        make("mim", tiny_vit(), mask_patch=16)


@pytest.mark.parametrize("size", [32, 28])
def test_mim_on_a_cnn_paints_hidden_squares_and_predicts_their_pixels(size: int) -> None:
    """8-px squares of 2 x 2 feature cells (stride 4). At 32 px: 16 squares, 6 stay visible
    (round(16 * 0.4)), 10 x 4 = 40 of 64 cells hidden; at 28 px the grid of squares
    overhangs the 7 x 7 cells and is cropped."""
    method = make("mim", build_backbone("small_cnn", 3, size, 8))
    seen = []
    method.backbone.features[0].register_forward_hook(lambda m, i, o: seen.append(i[0]))
    x = torch.randn(B, 3, size, size)
    pred, target, hidden, shown = method._step(x, torch.Generator().manual_seed(0))
    cells = (size // 4) ** 2
    assert pred.shape == target.shape == (B, cells, 3 * 4 * 4)
    assert hidden.shape == (B, cells)
    # what the CNN saw: the learned mask colour on hidden cells, the image elsewhere
    hidden_pixels = hidden.view(B, 1, size // 4, size // 4).repeat_interleave(4, 2)
    hidden_pixels = hidden_pixels.repeat_interleave(4, 3).expand(-1, 3, -1, -1) > 0
    colour = method.mask_token.detach().expand(B, -1, size, size)
    assert torch.equal(seen[0][hidden_pixels], colour[hidden_pixels])
    assert torch.equal(seen[0][~hidden_pixels], x[~hidden_pixels])
    assert torch.equal(shown, seen[0])
    if size == 32:
        assert hidden.sum(1).tolist() == [40] * B
    assert 0.3 < hidden.mean() < 0.8


@pytest.mark.parametrize("vit", [False, True], ids=["cnn", "vit"])
def test_mim_shows_the_hidden_patches_it_fills_in(vit: bool) -> None:
    """``reconstruct``: the images, what the encoder saw, and the images with the network's
    prediction in the hidden patches only (what the live panel shows)."""
    method = make("mim", tiny_vit() if vit else None).eval()
    p = method.backbone.patch_size if vit else method.backbone.stride
    x = torch.randn(B, 3, SIZE, SIZE)
    images, shown, filled = method.reconstruct(x, torch.Generator().manual_seed(0))
    hidden = method._step(x, torch.Generator().manual_seed(0))[2]
    hidden = hidden.view(B, 1, SIZE // p, SIZE // p).repeat_interleave(p, 2)
    hidden = hidden.repeat_interleave(p, 3).expand_as(x) > 0
    assert torch.equal(images, x)
    assert torch.equal(shown[~hidden], x[~hidden]) and torch.equal(filled[~hidden], x[~hidden])
    assert not torch.allclose(filled[hidden], x[hidden])
    assert not torch.allclose(shown[hidden], x[hidden])


@pytest.mark.parametrize("layers", [0, 2])
def test_mim_conv_decoder_depth(layers: int) -> None:
    method = make("mim", conv_decoder_layers=layers)
    convs = [m for m in method.decoder if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(3, 3)] * layers + [(1, 1)]
    assert torch.isfinite(method.training_step(batch_for(method)).loss)


def test_mim_on_a_resnet_reads_its_last_feature_map() -> None:
    method = make("mim", build_backbone("resnet18_cifar", 3, 32))  # stride 8: 16-px squares
    pred, target, hidden, _ = method._step(torch.randn(2, 3, 32, 32), torch.Generator())
    assert pred.shape == target.shape == (2, 16, 3 * 8 * 8) and hidden.sum(1).tolist() == [8, 8]
