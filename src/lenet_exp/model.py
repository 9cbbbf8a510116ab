"""LeNet-5 in its two common forms, chosen by the config rather than by copies of the code.

- ``lenet5``: the tutorial's variant. conv 1->6 5x5, BN, ReLU, max-pool 2; conv 6->16 5x5, BN, ReLU,
  max-pool 2; fc 400->120->84->classes with ReLU. (Each ReLU runs after its max-pool: the same function.)
- ``lenet5_classic``: LeCun et al. (1998) in spirit: tanh, average pooling, no BatchNorm.

With :meth:`LeNet5.fuse_cpu_blocks`, CPU training runs each conv block's BatchNorm, max-pool and ReLU
as one C++ kernel (``fused_cpu.py``); the modules, parameters and checkpoints stay the same.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from lenet_exp import fused_cpu

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
        # every conv block is then conv -> BatchNorm -> 2x2 max-pool -> ReLU, which the CPU kernel fuses
        self._fusable = batch_norm and pooling == "max" and activation == "relu"
        self.fused_cpu_blocks = False

    def fusable(self) -> bool:
        return self._fusable

    def fuse_cpu_blocks(self, enabled: bool = True) -> None:
        if enabled and not self.fusable():
            raise ValueError("only conv -> BatchNorm -> max-pool -> ReLU blocks can be fused")
        self.fused_cpu_blocks = enabled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.fused_cpu_blocks:
            return self.classifier(self.features(x))
        layers = self.features
        for i in range(0, len(layers), 4):
            conv, bn, pool, act = layers[i], layers[i + 1], layers[i + 2], layers[i + 3]
            x = conv(x)
            # eval mode, bf16 autocast and torch.compile take the modules
            x = fused_cpu.bn_pool_relu(x, bn) if fused_cpu.applies(x, bn) else act(pool(bn(x)))
        return self.classifier(x)


def build_model(mcfg, num_classes: int, image_size: int) -> LeNet5:
    return LeNet5(
        num_classes=num_classes,
        image_size=image_size,
        activation=mcfg.activation,
        pooling=mcfg.pooling,
        batch_norm=mcfg.batch_norm,
        conv_channels=list(mcfg.conv_channels),
        hidden=list(mcfg.hidden),
        dropout=mcfg.dropout,
    )
