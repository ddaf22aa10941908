"""SplitBatchNorm: one pass equals batch norm applied slice by slice (MoCo's shuffle-BN)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from engine.models.split_batchnorm import SplitBatchNorm


def slice_by_slice(bn: nn.Module, x: torch.Tensor, groups: int) -> torch.Tensor:
    return torch.cat([bn(s) for s in x.tensor_split(groups)])


@pytest.mark.parametrize(
    ("make", "shape", "channels_last"),
    [
        (nn.BatchNorm2d, (12, 5, 6, 7), False),
        (nn.BatchNorm2d, (12, 5, 6, 7), True),
        (nn.BatchNorm1d, (12, 5), False),
    ],
)
def test_one_pass_equals_slice_by_slice(make, shape, channels_last: bool) -> None:  # noqa: ANN001
    torch.manual_seed(0)
    plain = make(shape[1])
    with torch.no_grad():
        plain.weight.uniform_(0.5, 2.0)
        plain.bias.uniform_(-1.0, 1.0)
    split = SplitBatchNorm.convert(copy.deepcopy(plain), groups=3)
    assert isinstance(split, SplitBatchNorm)
    x = torch.randn(shape) * 3 + 1
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = slice_by_slice(plain, xa, 3), split(xb)
    assert torch.allclose(ya, yb, atol=1e-5)
    w = torch.randn_like(ya)
    (ya * w).sum().backward()
    (yb * w).sum().backward()
    assert torch.allclose(xa.grad, xb.grad, atol=1e-5)
    assert torch.allclose(plain.weight.grad, split.weight.grad, atol=1e-4)
    assert torch.allclose(plain.bias.grad, split.bias.grad, atol=1e-4)


def test_whole_batch_statistics_differ_from_slices() -> None:
    """The check above would pass for plain batch norm if slices had equal statistics."""
    torch.manual_seed(0)
    x = torch.randn(12, 4, 3, 3) + torch.arange(12.0).view(12, 1, 1, 1)  # slices differ
    bn = nn.BatchNorm2d(4)
    assert not torch.allclose(bn(x), SplitBatchNorm.convert(copy.deepcopy(bn), 3)(x), atol=1e-2)


def test_running_statistics_move_slice_after_slice() -> None:
    torch.manual_seed(0)
    x = torch.randn(8, 3, 4, 4) * 2 + 5
    split = SplitBatchNorm.convert(nn.BatchNorm2d(3, momentum=0.5), groups=2)
    split(x)
    first, second = x[:4], x[4:]
    mean = [h.mean(dim=(0, 2, 3)) for h in (first, second)]
    var = [h.var(dim=(0, 2, 3), correction=1) for h in (first, second)]
    assert torch.allclose(split.running_mean, 0.25 * mean[0] + 0.5 * mean[1], atol=1e-5)
    assert torch.allclose(split.running_var, 0.25 + 0.25 * var[0] + 0.5 * var[1], atol=1e-5)
    assert int(split.num_batches_tracked) == 2


def test_uneven_and_tiny_batches_and_eval_mode() -> None:
    torch.manual_seed(0)
    plain = nn.BatchNorm1d(3)
    split = SplitBatchNorm.convert(copy.deepcopy(plain), groups=4)
    x = torch.randn(10, 3)  # 10 images in 4 slices: 3, 3, 2, 2
    assert torch.allclose(split(x), slice_by_slice(plain, x, 4), atol=1e-5)
    x3 = torch.randn(3, 3)  # too few for 4 slices of 2: one slice
    assert torch.allclose(split(x3), plain(x3), atol=1e-5)
    split.eval(), plain.eval()
    assert torch.allclose(split(x), plain(x), atol=1e-6)


def test_convert_keeps_parameters_and_state_dict() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.Sequential(nn.Flatten(), nn.Linear(4, 5), nn.BatchNorm1d(5)))
    keys = set(net.state_dict())
    weight = net[1].weight
    SplitBatchNorm.convert(net, groups=2)
    assert isinstance(net[1], SplitBatchNorm) and isinstance(net[3][2], SplitBatchNorm)
    assert net[1].weight is weight
    assert set(net.state_dict()) == keys
    net.load_state_dict(net.state_dict())
