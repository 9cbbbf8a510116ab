"""Exponential moving average of a model's weights, updated without reading anything back to the host.

``torch.optim.swa_utils.AveragedModel`` tests ``n_averaged == 0`` in Python on every update: two
device-to-host syncs per training step, which stall a GPU. This average counts its updates on the host
and updates with one fused lerp.

An average started from the model's first weights (timm's ModelEmaV2) keeps ``decay ** t`` of them after t
steps: at 0.999, 42 % after an epoch of 860 steps, and a short run evaluated its untrained model, at chance.
Adam's bias correction in each step's decay (:func:`step_decay`) gives the first weights no share: the
average is of the weights the steps made, each weighted by ``decay`` to the power of its age.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from lenet_exp.errors import CheckpointError

# a checkpoint written before the updates were counted: an average long under way, which goes on at its decay
UPDATES_NOT_RECORDED = 10**9


def averaged_weights(ema_state: dict) -> dict:
    """The averaged model's weights in an average's state_dict, named as the model's (less the ``module.`` of
    :class:`ExponentialMovingAverage`'s copy; its count of updates left out)."""
    return {str(key).removeprefix("module."): value for key, value in ema_state.items()
            if str(key).startswith("module.")}


def step_decay(decay: float, updates: int) -> float:
    """The decay of update number ``updates`` (1, 2, ...) that averages only the steps' weights: 0 at the
    first, which takes the weights as they are, then rising to ``decay`` (numbers, or tensors of them)."""
    return decay * (1 - decay ** (updates - 1)) / (1 - decay ** updates)


class ExponentialMovingAverage(nn.Module):
    """``ema = d * ema + (1 - d) * weights`` for parameters and floating-point buffers (BatchNorm's running
    statistics), ``d`` the step's decay (:func:`step_decay`); integer buffers (``num_batches_tracked``) are
    copied."""

    def __init__(self, model: nn.Module, decay: float):
        super().__init__()
        self.module = copy.deepcopy(model).requires_grad_(False)  # state_dict keys: module.<name>
        self.decay = decay
        self.updates = 0  # kept in the state_dict (its _extra_state): a resumed run goes on where it was

    def _pairs(self, model: nn.Module):
        averaged = list(self.module.parameters()) + list(self.module.buffers())
        current = list(model.parameters()) + list(model.buffers())
        return averaged, current

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        averaged, current = self._pairs(model)
        floats = [(a, c) for a, c in zip(averaged, current, strict=True) if a.is_floating_point()]
        torch._foreach_lerp_([a for a, _ in floats], [c.detach() for _, c in floats],
                             1.0 - step_decay(self.decay, self.updates))
        for a, c in zip(averaged, current, strict=True):
            if not a.is_floating_point():
                a.copy_(c)

    def get_extra_state(self) -> dict:
        return {"updates": self.updates}

    def set_extra_state(self, state: dict) -> None:
        updates = state.get("updates") if isinstance(state, dict) else None
        if not isinstance(updates, int) or updates < 0:  # a checkpoint is data: step_decay would divide by 0
            raise CheckpointError(f"the checkpoint's average of the weights holds {updates!r} updates, a count that "
                                  f"lenet_exp never writes; it was altered and is not used.")
        self.updates = updates

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        state_dict.setdefault(f"{prefix}_extra_state", {"updates": UPDATES_NOT_RECORDED})
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
