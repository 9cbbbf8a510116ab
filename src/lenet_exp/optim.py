"""Optimizer and learning-rate schedule from the optimizer and scheduler config groups.

Every schedule is stepped once per batch, so cosine and one-cycle are smooth and ``step`` decays at
epoch boundaries (``scheduler.step_epochs`` epochs of steps).
"""

from __future__ import annotations

import torch
from torch import nn

from lenet_exp.errors import ConfigError


def build_optimizer(ocfg, model: nn.Module) -> torch.optim.Optimizer:
    # One fused kernel for the whole update instead of a few per parameter tensor: ~3 % of a CPU
    # epoch here (benchmarks/cpu_knobs.py), and fewer launches on a GPU.
    params = model.parameters()
    if ocfg.name == "sgd":
        return torch.optim.SGD(params, lr=ocfg.lr, momentum=ocfg.momentum, nesterov=ocfg.nesterov,
                               weight_decay=ocfg.weight_decay, fused=True)
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[ocfg.name]
    return cls(params, lr=ocfg.lr, betas=tuple(ocfg.betas), weight_decay=ocfg.weight_decay, fused=True)


def build_scheduler(scfg, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int):
    """A per-batch LR scheduler, or None for a constant learning rate."""
    total = epochs * steps_per_epoch
    if scfg.name == "none":
        return None
    if scfg.name == "cosine":
        base = optimizer.param_groups[0]["lr"]
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total, eta_min=base * scfg.min_lr_ratio)
    if scfg.name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=scfg.step_epochs * steps_per_epoch, gamma=scfg.gamma)
    if scfg.name == "onecycle":
        if scfg.pct_start * total < 2:  # torch divides by the warm-up length minus one
            raise ConfigError("scheduler.pct_start", scfg.pct_start,
                              f"a value that gives the warm-up at least 2 of the run's {total} steps")
        base = optimizer.param_groups[0]["lr"]
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=base, total_steps=total, pct_start=scfg.pct_start)
    raise ValueError(f"unknown scheduler {scfg.name}")  # validate() lets none through
