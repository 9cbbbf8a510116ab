"""The exponential moving average of the weights."""

from __future__ import annotations

import torch
from torch import nn

from lenet_exp.ema import ExponentialMovingAverage


def test_average_follows_the_weights_and_copies_integer_buffers():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    ema = ExponentialMovingAverage(model, decay=0.9)
    start = {k: v.clone() for k, v in ema.module.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model(torch.randn(8, 3))  # a training-mode forward moves BatchNorm's statistics and its step counter
    ema.update(model)
    current = model.state_dict()
    for name, averaged in ema.module.state_dict().items():
        if averaged.is_floating_point():
            assert torch.allclose(averaged, 0.9 * start[name] + 0.1 * current[name]), name
        else:  # num_batches_tracked
            assert torch.equal(averaged, current[name]), name
    assert not any(p.requires_grad for p in ema.module.parameters())
    # checkpoints and inference read the averaged weights under module.<name>
    assert set(ema.state_dict()) == {f"module.{k}" for k in current}
