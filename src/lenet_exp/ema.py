"""Exponential moving average of a model's weights, updated without reading anything back to the host.

``torch.optim.swa_utils.AveragedModel`` tests ``n_averaged == 0`` in Python on every update: two
device-to-host syncs per training step, which stall a GPU. This average starts from the model's
weights when it is made (timm's ModelEmaV2 does the same) and updates with one fused lerp.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class ExponentialMovingAverage(nn.Module):
    """``ema = decay * ema + (1 - decay) * weights`` for parameters and floating-point buffers
    (BatchNorm's running statistics); integer buffers (``num_batches_tracked``) are copied."""

    def __init__(self, model: nn.Module, decay: float):
        super().__init__()
        self.module = copy.deepcopy(model).requires_grad_(False)  # state_dict keys: module.<name>
        self.decay = decay

    def _pairs(self, model: nn.Module):
        averaged = list(self.module.parameters()) + list(self.module.buffers())
        current = list(model.parameters()) + list(model.buffers())
        return averaged, current

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        averaged, current = self._pairs(model)
        floats = [(a, c) for a, c in zip(averaged, current, strict=True) if a.is_floating_point()]
        torch._foreach_lerp_([a for a, _ in floats], [c.detach() for _, c in floats], 1.0 - self.decay)
        for a, c in zip(averaged, current, strict=True):
            if not a.is_floating_point():
                a.copy_(c)
