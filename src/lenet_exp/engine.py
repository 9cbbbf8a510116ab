"""One training epoch and one evaluation pass over device-resident tensors.

Neither reads a value back to the host inside its loop: loss and correct counts are summed on the
device and read once at the end, so a GPU never waits for Python between steps.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from lenet_exp.data import Split


@dataclass
class EpochResult:
    loss: float
    acc: float
    samples: int
    interrupted: bool = False


@dataclass
class EvalResult:
    loss: float
    acc: float
    predictions: torch.Tensor  # predicted class per sample, on the device


def autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    split: Split,
    batch_size: int,
    generator: torch.Generator,
    *,
    scheduler=None,
    label_smoothing: float = 0.0,
    augment: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
    ema: Optional[torch.optim.swa_utils.AveragedModel] = None,
    precision: str = "fp32",
    on_step: Callable[[], None] = lambda: None,
    stop_requested: Callable[[], bool] = lambda: False,
) -> EpochResult:
    """Train on every sample once, in a fresh random order drawn on the data's device."""
    model.train()
    device = split.labels.device
    order = torch.randperm(len(split), device=device, generator=generator)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = 0
    for start in range(0, len(split), batch_size):
        if stop_requested():
            return EpochResult(float("nan"), float("nan"), seen, interrupted=True)
        # gather each batch by its slice of the order: as fast as one epoch-wide gather, without
        # a second copy of the training set in memory (benchmarks/cpu_knobs.py: -215 MiB)
        batch = order[start:start + batch_size]
        x, y = split.images.index_select(0, batch), split.labels.index_select(0, batch)
        if augment is not None:
            x = augment(x)
        with autocast(device, precision):
            logits = model(x)
            loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if ema is not None:
            ema.update_parameters(model)
        loss_sum += loss.detach() * len(y)
        correct += (logits.argmax(1) == y).sum()
        seen += len(y)
        on_step()
    return EpochResult(loss_sum.item() / seen, correct.item() / seen, seen)


@torch.inference_mode()
def evaluate(model: nn.Module, split: Split, batch_size: int, precision: str = "fp32") -> EvalResult:
    """Mean cross-entropy and accuracy in eval mode (BatchNorm uses its running statistics)."""
    was_training = model.training
    model.eval()
    device = split.labels.device
    loss_sum = torch.zeros((), device=device)
    predictions = []
    for start in range(0, len(split), batch_size):
        x, y = split.images[start:start + batch_size], split.labels[start:start + batch_size]
        with autocast(device, precision):
            logits = model(x)
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
        predictions.append(logits.argmax(1))
    model.train(was_training)
    predicted = torch.cat(predictions)
    n = len(split)
    return EvalResult(loss_sum.item() / n, (predicted == split.labels).sum().item() / n, predicted)
