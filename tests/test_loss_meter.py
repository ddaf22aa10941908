"""The loss of a step event is the mean over the steps since the last one, logs too."""

import pytest
import torch

from engine.methods import StepOutput
from engine.train.loss_meter import LossMeter, NonFiniteLoss


def test_the_mean_of_a_window_then_a_new_window() -> None:
    meter = LossMeter(torch.device("cpu"))
    for loss, rate in ((1.0, 0.0), (3.0, 0.5)):
        out = StepOutput(torch.tensor(loss, requires_grad=True), {"mask_rate": torch.tensor(rate)})
        meter.add(out)
    assert meter.mean(2) == (2.0, {"mask_rate": 0.25})
    meter.add(StepOutput(torch.tensor(5.0)))
    assert meter.n == 1 and meter.mean(3) == (5.0, {})


def test_a_nan_loss_says_the_step_and_what_to_try() -> None:
    meter = LossMeter(torch.device("cpu"), advice="Try fp32")
    meter.add(StepOutput(torch.tensor(1.0)))
    meter.add(StepOutput(torch.tensor(float("nan"))))
    with pytest.raises(NonFiniteLoss, match="the loss became nan at step 9. Try fp32"):
        meter.mean(9)
