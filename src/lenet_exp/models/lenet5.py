"""LeNet-5 in its two common forms, chosen by the config rather than by copies of the code.

- ``lenet5``: the tutorial's variant. conv 1->6 5x5, BN, ReLU, max-pool 2; conv 6->16 5x5, BN, ReLU,
  max-pool 2; fc 400->120->84->classes with ReLU. (Each ReLU runs after its max-pool: the same function.)
- ``lenet5_classic``: LeCun et al. (1998) in spirit: tanh, average pooling, no BatchNorm.

A plain ``nn.Module``: the fast paths (the fused CPU kernel, channels_last, compile) are decided and
swapped in by ``perf.py``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}
POOLINGS = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}
KERNEL = 5


class LeNet5(nn.Module):
    def __init__(
        self,
        num_classes: int = 10,
        image_size: int = 32,
        activation: str = "relu",
        pooling: str = "max",
        batch_norm: bool = True,
        conv_channels: Sequence[int] = (6, 16),
        hidden: Sequence[int] = (120, 84),
        dropout: float = 0.0,
    ):
        super().__init__()
        act, pool = ACTIVATIONS[activation], POOLINGS[pooling]
        layers: list[nn.Module] = []
        in_channels, side = 1, image_size
        for out_channels in conv_channels:
            # A bias before BatchNorm is cancelled by its mean subtraction: leave it out.
            layers.append(nn.Conv2d(in_channels, out_channels, KERNEL, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            # Max-pooling commutes with a non-decreasing activation (relu(max) == max(relu), gradients
            # included): pooling first activates 4x fewer values, ~8 % of a CPU step. Not so for averages.
            layers += [pool(2), act()] if pooling == "max" else [act(), pool(2)]
            in_channels, side = out_channels, (side - KERNEL + 1) // 2
        self.features = nn.Sequential(*layers)

        widths = [in_channels * side * side, *hidden]  # 16 * 5 * 5 = 400 for 32x32 inputs
        head: list[nn.Module] = [nn.Flatten()]
        for width_in, width_out in zip(widths, widths[1:]):
            head += [nn.Linear(width_in, width_out), act()]
            if dropout:
                head.append(nn.Dropout(dropout))
        head.append(nn.Linear(widths[-1], num_classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
