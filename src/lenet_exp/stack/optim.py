"""Adam, AdamW and SGD over a group's stacked parameters, with each trial's own hyperparameters.

Each trial keeps the torch optimizer and LR scheduler a single run of it would build
(``parts.trial_parts``). They are never stepped on weights: they hold the trial's hyperparameters, its
schedule moves them as in a single run, and :class:`StackedOptimizer` reads them as [N, 1] tensors and
applies torch's own update rule to every trial at once. A trial's optimizer state goes back into its
torch optimizer for its checkpoint, so a stacked trial's ``last.pt`` resumes as a single run and back.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import nn

from lenet_exp.ema import ExponentialMovingAverage, step_decay
from lenet_exp.stack.model import copy_trials, row_as_trial, state_tensors, stateful_parameters, trial_rows

ADAM, ADAMW, SGD = "adam", "adamw", "sgd"


def rule_of(optimizer: torch.optim.Optimizer) -> Optional[str]:
    """The update rule a stacked group can apply for this optimizer, or None. The launcher's plan sends a job
    with such an optimizer alone (``grouping.why_alone``); this says it again to a caller that did not plan.
    (``maximize`` and ``differentiable`` never get here: ``optim.build_optimizer`` refuses them.)"""
    group = optimizer.param_groups[0]
    if isinstance(optimizer, torch.optim.AdamW):  # torch's AdamW holds decoupled_weight_decay=True in newer torch
        return ADAMW if not group.get("amsgrad") else None
    if type(optimizer) is torch.optim.Adam:
        return ADAM if not (group.get("amsgrad") or group.get("decoupled_weight_decay")) else None
    if type(optimizer) is torch.optim.SGD:
        return SGD if not group.get("dampening") else None
    return None


class StackedOptimizer:
    """One update of every trial per step: ``optimizers[i]`` holds trial i's hyperparameters and state.

    The state (Adam's moments, SGD's momentum buffer) is one [N, K] tensor of each kind: row i holds trial
    i's K parameter elements, each parameter's in columns of its own. A step gathers the parameters and
    gradients into that layout and updates all of them at once: about 30 operators for LeNet-5's 12
    parameter tensors, where an update of one tensor after another ran 194 (on a GPU each is a kernel
    launch, and the group's forward and backward one graph replay: benchmarks/README.md). Every parameter
    gets a gradient at every step: the group's layers all take part in its forward pass."""

    def __init__(self, group_model: nn.Module, models: Sequence[nn.Module], optimizers: Sequence[torch.optim.Optimizer],
                 max_norms: Sequence[Optional[float]] = ()):
        self.n = len(optimizers)
        self.rule = rule_of(optimizers[0])
        if self.rule is None:  # the launcher plans such jobs alone; a caller that did not is told why
            raise ValueError(f"{type(optimizers[0]).__name__} with these options ({optimizers[0].defaults}) has no "
                             f"stacked update: train it alone")
        self.params = stateful_parameters(group_model)
        # the same parameter of each trial's model, in the group's order: where each trial's state lives
        self.trial_params = [stateful_parameters(m) for m in models]
        self.optimizers = list(optimizers)
        self.group_model = group_model
        self.device = self.params[0].device
        flags = [bool(o.param_groups[0].get("nesterov")) for o in optimizers]
        # SGD's Nesterov momentum: on or off for all trials, or [N, 1] where they differ
        self.nesterov = flags[0] if len(set(flags)) == 1 else torch.tensor(flags, device=self.device).view(-1, 1)
        self.active = [1.0] * self.n  # 0: a frozen trial (diverged, or stopped early), whose learning rate is 0
        # each trial's trainer.grad_clip_norm (inf: none), [N, 1]; None where no trial clips
        clipped = [norm for norm in max_norms if norm is not None]
        self.max_norms = self.per_trial([math.inf if norm is None else norm for norm in max_norms])[0] \
            if clipped else None
        self.step_count = 0
        self.sizes = [p.numel() // self.n for p in self.params]  # each parameter's columns, in order
        self.starts = [sum(self.sizes[:j]) for j in range(len(self.sizes))]
        names = ("exp_avg", "exp_avg_sq") if self.rule != SGD else ("momentum_buffer",)
        self.state = {name: torch.zeros(self.n, sum(self.sizes), dtype=self.params[0].dtype, device=self.device)
                      for name in names}

    # ------------------------------------------------------------------ hyperparameters, per trial
    def values(self, key: str, index: Optional[int] = None) -> list[float]:
        """Each trial's value of a hyperparameter now (its schedule may have moved it)."""
        return [o.param_groups[0][key] if index is None else o.param_groups[0][key][index] for o in self.optimizers]

    def per_trial(self, *columns: Sequence[float]) -> list[torch.Tensor]:
        """Each column of per-trial scalars as an [N, 1] float32 tensor on the device, all in one copy.
        Computed in float64 on the host, as torch's optimizers compute their scalars (1 - float32(0.999)
        is 1.3e-5 off)."""
        host = torch.tensor(columns, dtype=torch.float64).float().view(len(columns), self.n, 1)
        if self.device.type == "cuda":  # a schedule changes them every step: copy without waiting for the GPU
            host = host.pin_memory()
        return list(host.to(self.device, non_blocking=True).unbind(0))

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.group_model.zero_grad(set_to_none=set_to_none)

    def freeze(self, trial: int) -> None:
        """Stop updating a trial (it diverged, or stopped early): its weights and state here are zeroed, so no NaN
        lingers (its checkpoints hold what it trained)."""
        self.active[trial] = 0.0
        with torch.no_grad():
            for p in self.params:
                trial_rows(p, self.n)[trial].zero_()
            for state in self.state.values():
                state[trial].zero_()

    @torch.no_grad()
    def step(self) -> None:
        missing = [j for j, p in enumerate(self.params) if p.grad is None]
        if missing:  # torch's optimizers would skip it, and Adam count its own steps: the trials would differ
            raise ValueError(f"parameters {missing} of the stacked model got no gradient; a stacked group updates "
                             f"every parameter at every step, so a model with layers no loss reaches cannot be "
                             f"stacked: train it with the basic launcher")
        self.step_count += 1
        params = [trial_rows(p, self.n) for p in self.params]
        weights = torch.cat(params, 1)
        gradients = torch.cat([trial_rows(p.grad, self.n) for p in self.params], 1)
        if self.max_norms is not None:  # each trial's gradients scaled as torch's clip_grad_norm_ scales a model's
            norms = torch.linalg.vector_norm(gradients, dim=1, keepdim=True)
            gradients = gradients * (self.max_norms / (norms + 1e-6)).clamp(max=1.0)
        if self.rule == SGD:
            self._sgd(weights, gradients)
        else:
            self._adam(weights, gradients)
        torch._foreach_copy_(params, weights.split(self.sizes, 1))

    def _adam(self, p: torch.Tensor, g: torch.Tensor) -> None:
        """Adam's or AdamW's update of the [N, K] weights ``p`` and moments, in place."""
        t = self.step_count
        lr = [rate * active for rate, active in zip(self.values("lr"), self.active)]
        decay, beta1, beta2 = self.values("weight_decay"), self.values("betas", 0), self.values("betas", 1)
        decay, beta2, eps, keep, new1, new2, bias_correction2_sqrt, step_size = self.per_trial(
            decay, beta2, self.values("eps"), [1 - a * b for a, b in zip(lr, decay)], [1 - b for b in beta1],
            [1 - b for b in beta2], [math.sqrt(1 - b ** t) for b in beta2], [a / (1 - b ** t) for a, b in zip(lr, beta1)])
        m, v = self.state["exp_avg"], self.state["exp_avg_sq"]
        if self.rule == ADAMW:
            p.mul_(keep)
        else:
            g = g + decay * p
        m.lerp_(g, new1)
        v.mul_(beta2).add_(new2 * g * g)
        p.sub_(m / (v.sqrt() / bias_correction2_sqrt + eps) * step_size)

    def _sgd(self, p: torch.Tensor, g: torch.Tensor) -> None:
        """SGD's update of the [N, K] weights ``p`` and momentum buffer, in place."""
        lr = [rate * active for rate, active in zip(self.values("lr"), self.active)]
        lr, decay, momentum = self.per_trial(lr, self.values("weight_decay"), self.values("momentum"))
        buf = self.state["momentum_buffer"]
        g = g + decay * p
        if self.step_count == 1:
            buf.copy_(g)
        else:
            buf.mul_(momentum).add_(g)
        if isinstance(self.nesterov, torch.Tensor):
            update = torch.where(self.nesterov, g + momentum * buf, buf)
        else:
            update = g + momentum * buf if self.nesterov else buf
        p.sub_(lr * update)

    # ------------------------------------------------------------------ state in and out of trials
    def store_trial_state(self, i: int) -> None:
        """Trial i's torch optimizer holds its state, as if it had taken every step itself."""
        optimizer = self.optimizers[i]
        if self.rule == SGD and optimizer.param_groups[0]["momentum"] == 0:
            return  # torch's SGD keeps no momentum buffer at momentum 0 (its row here is just the last gradient)
        for index, trial_param in enumerate(self.trial_params[i]):
            # in the trial's own layout (a group may train in another): its fused torch optimizer needs it
            state = {name: torch.empty_like(trial_param.detach()).copy_(self._trial_part(stacked, i, index))
                     for name, stacked in self.state.items()}
            if self.rule != SGD:
                state["step"] = torch.tensor(float(self.step_count))
            optimizer.state[trial_param] = state

    def load_trial_states(self) -> None:
        """The group's state := each trial's torch optimizer's (restored from its checkpoint)."""
        steps = set()
        for i, optimizer in enumerate(self.optimizers):
            for index, trial_param in enumerate(self.trial_params[i]):
                state = optimizer.state.get(trial_param)
                if not state:
                    continue
                for name, stacked in self.state.items():
                    self._trial_part(stacked, i, index).copy_(state[name])
                if "step" in state:
                    steps.add(int(state["step"]))
                elif self.rule == SGD:
                    steps.add(1)  # a momentum buffer exists: the first step is behind
        if len(steps) > 1:
            raise ValueError(f"the trials' optimizer states are at different steps ({sorted(steps)})")
        if steps and self.rule != SGD:
            self.step_count = steps.pop()
        elif steps:
            self.step_count = max(self.step_count, 1)

    def _trial_part(self, state: torch.Tensor, i: int, index: int) -> torch.Tensor:
        """Trial i's state of parameter ``index`` in ``state`` ([N, K]), shaped as the trial's own parameter."""
        row = state[i, self.starts[index]:self.starts[index] + self.sizes[index]]
        return row_as_trial(row, self.params[index], self.trial_params[i][index].shape)


class StackedEMA:
    """Each trial's exponential moving average of its weights, with its own decay and count of updates
    (lenet_exp.ema); a trial without one (decay None) has its average follow its weights, unread."""

    TABLE_STEPS = 1024  # steps whose weights are made at once: one copy to the device each, not one a step

    def __init__(self, group_model: nn.Module, decays: Sequence[Optional[float]]):
        self.n = len(decays)
        self.current = state_tensors(group_model)
        self.averages = [t.detach().clone() for t in self.current]
        self.decays = [0.0 if decay is None else decay for decay in decays]
        self.updates = [0] * self.n  # each trial's before this group's first update
        self.done = 0  # this group's updates
        self.table: Optional[torch.Tensor] = None  # [TABLE_STEPS, N, 1]: the lerp weights of the steps from done
        self.table_start = 0

    def _weight(self) -> torch.Tensor:
        """The trials' lerp weights of this update, [N, 1]."""
        if self.table is None or self.done - self.table_start >= len(self.table):
            steps = torch.arange(1, self.TABLE_STEPS + 1, dtype=torch.float64).unsqueeze(1)  # [steps, 1]
            updates = torch.tensor(self.updates, dtype=torch.float64) + self.done + steps  # [steps, N]
            decays = torch.tensor(self.decays, dtype=torch.float64)
            weights = 1.0 - step_decay(decays, updates)
            self.table = weights.float().unsqueeze(-1).to(self.averages[0].device)
            self.table_start = self.done
        return self.table[self.done - self.table_start]

    @torch.no_grad()
    def update(self) -> None:
        weight = self._weight()
        self.done += 1
        for average, current in zip(self.averages, self.current):
            if average.is_floating_point():
                trial_rows(average, self.n).lerp_(trial_rows(current, self.n), weight)
            else:
                average.copy_(current)

    def load(self, emas: Sequence[Optional[ExponentialMovingAverage]]) -> None:
        """The group's averages := each trial's EMA model's (restored from its checkpoint)."""
        copy_trials(self.averages, self.n, self._trials(emas), into_stack=True)
        self.updates = [0 if ema is None else ema.updates - self.done for ema in emas]
        self.table = None

    def unstack_into(self, emas: Sequence[Optional[ExponentialMovingAverage]]) -> None:
        copy_trials(self.averages, self.n, self._trials(emas), into_stack=False)
        for ema, updates in zip(emas, self.updates):
            if ema is not None:
                ema.updates = updates + self.done

    @staticmethod
    def _trials(emas: Sequence[Optional[ExponentialMovingAverage]]) -> list[Optional[list[torch.Tensor]]]:
        return [None if ema is None else state_tensors(ema.module) for ema in emas]
