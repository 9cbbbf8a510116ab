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
        check_arguments(image_size, activation, pooling, batch_norm, conv_channels, hidden, dropout)
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


def check_arguments(image_size: int, activation: str, pooling: str, batch_norm: bool, conv_channels: Sequence[int],
                    hidden: Sequence[int], dropout: float) -> None:
    """The schema's checks, for a model YAML without it: a string "false" built BatchNorm and was recorded as
    false, and a third conv block left nothing of the image, found at the first step with a traceback."""
    def positive_integers(values: Sequence[int]) -> bool:
        return all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values)

    for name, value, choices in (("activation", activation, ACTIVATIONS), ("pooling", pooling, POOLINGS)):
        if value not in choices:
            raise ValueError(f"{name} {value!r}: expected one of {', '.join(choices)}")
    if not isinstance(batch_norm, bool):
        raise TypeError(f"batch_norm {batch_norm!r}: expected true or false")
    for name, values in (("conv_channels", conv_channels), ("hidden", hidden)):
        if not values or not positive_integers(values):
            raise ValueError(f"{name} {list(values)}: expected one or more positive integers")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout {dropout}: expected a number in [0, 1)")
    side = image_size
    for blocks in range(1, len(conv_channels) + 1):
        side = (side - KERNEL + 1) // 2
        if side < 1:
            raise ValueError(f"conv_channels {list(conv_channels)}: {len(conv_channels)} conv blocks leave nothing of "
                             f"a {image_size}x{image_size} input (each takes {KERNEL - 1} pixels off, then halves it); "
                             f"{blocks - 1} fit: fewer, or a larger dataset.image_size")
