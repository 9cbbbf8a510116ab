"""Adam, AdamW and SGD over a group's stacked parameters, with each trial's own hyperparameters.

Each trial keeps the torch optimizer and LR scheduler a single run of it would build
(``parts.trial_parts``). They are never stepped on weights: they hold the trial's hyperparameters, its
schedule moves them as in a single run, and :class:`StackedOptimizer` reads them as [N, 1] tensors and
applies torch's own update rule to every trial at once. A trial's optimizer state goes back into its
torch optimizer for its checkpoint, so a stacked trial's ``last.pt`` resumes as a single run and back.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from lenet_exp.ema import ExponentialMovingAverage
from lenet_exp.stack.model import copy_trials, state_tensors, stateful_parameters, trial_block, trial_rows

ADAM, ADAMW, SGD = "adam", "adamw", "sgd"


def rule_of(optimizer: torch.optim.Optimizer) -> Optional[str]:
    """The update rule a stacked group can apply for this optimizer, or None (then it trains alone)."""
    group = optimizer.param_groups[0]
    if group.get("maximize") or group.get("differentiable"):
        return None
    if isinstance(optimizer, torch.optim.AdamW) or (type(optimizer) is torch.optim.Adam
                                                    and group.get("decoupled_weight_decay")):
        return ADAMW if not group.get("amsgrad") else None
    if type(optimizer) is torch.optim.Adam:
        return ADAM if not group.get("amsgrad") else None
    if type(optimizer) is torch.optim.SGD:
        return SGD if not group.get("dampening") else None
    return None


class StackedOptimizer:
    """One update of every trial per step: ``optimizers[i]`` holds trial i's hyperparameters and state."""

    def __init__(self, group_model: nn.Module, models: Sequence[nn.Module], optimizers: Sequence[torch.optim.Optimizer]):
        self.n = len(optimizers)
        self.rule = rule_of(optimizers[0])
        if self.rule is None:  # the launcher plans such jobs alone; a caller that did not is told why
            group = optimizers[0].param_groups[0]
            raise ValueError(f"{type(optimizers[0]).__name__} with these options (amsgrad={group.get('amsgrad')}, "
                             f"maximize={group.get('maximize')}) has no stacked update: train it alone")
        self.params = stateful_parameters(group_model)
        # the same parameter of each trial's model, in the group's order: where each trial's state lives
        self.trial_params = [stateful_parameters(m) for m in models]
        self.optimizers = list(optimizers)
        self.group_model = group_model
        self.device = self.params[0].device
        flags = [bool(o.param_groups[0].get("nesterov")) for o in optimizers]
        # SGD's Nesterov momentum: on or off for all trials, or [N, 1] where they differ
        self.nesterov = flags[0] if len(set(flags)) == 1 else torch.tensor(flags, device=self.device).view(-1, 1)
        self.active = torch.ones(self.n, 1, dtype=torch.float64, device=self.device)  # 0: a frozen (diverged) trial
        self.step_count = 0
        self._hyper: dict[str, tuple[list, torch.Tensor]] = {}  # key -> (values, tensor): rebuilt when they change
        zeros = [torch.zeros_like(p) for p in self.params]
        self.state = {"exp_avg": zeros, "exp_avg_sq": [torch.zeros_like(p) for p in self.params]} \
            if self.rule != SGD else {"momentum_buffer": zeros}

    # ------------------------------------------------------------------ hyperparameters, per trial
    def hyper(self, key: str, index: Optional[int] = None) -> torch.Tensor:
        """Each trial's value of a hyperparameter now, [N, 1] (its schedule may have moved it)."""
        values = [o.param_groups[0][key] if index is None else o.param_groups[0][key][index] for o in self.optimizers]
        cached = self._hyper.get(f"{key}{index}")
        if cached is None or cached[0] != values:
            # float64, as torch's optimizers compute their scalars (1 - beta2 ** step loses digits in float32)
            host = torch.tensor(values, dtype=torch.float64).view(-1, 1)
            if self.device.type == "cuda":  # a schedule changes them every step: copy without waiting for the GPU
                host = host.pin_memory()
            cached = values, host.to(self.device, non_blocking=True)
            self._hyper[f"{key}{index}"] = cached
        return cached[1]

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.group_model.zero_grad(set_to_none=set_to_none)

    def freeze(self, trial: int) -> None:
        """Stop updating a trial (it diverged): its weights and state are zeroed, so no NaN lingers."""
        self.active[trial] = 0
        with torch.no_grad():
            for tensors in (self.params, *self.state.values()):
                for t in tensors:
                    trial_rows(t, self.n)[trial].zero_()

    @torch.no_grad()
    def step(self) -> None:
        self.step_count += 1
        lr = self.hyper("lr") * self.active
        decay = self.hyper("weight_decay")
        if self.rule == SGD:
            self._sgd(lr, decay, self.hyper("momentum"))
        else:
            self._adam(lr, decay, self.hyper("betas", 0), self.hyper("betas", 1), self.hyper("eps"))

    def _adam(self, lr, decay, beta1, beta2, eps) -> None:
        bias_correction2_sqrt = (1 - beta2 ** self.step_count).sqrt().float()
        step_size = (lr / (1 - beta1 ** self.step_count)).float()
        lr, decay, beta1, beta2, eps = (h.float() for h in (lr, decay, beta1, beta2, eps))
        for p, m, v in zip(self.params, self.state["exp_avg"], self.state["exp_avg_sq"]):
            if p.grad is None:
                continue
            p2, g, m2, v2 = (trial_rows(t, self.n) for t in (p, p.grad, m, v))
            if self.rule == ADAMW:
                p2.mul_(1 - lr * decay)
            else:
                g = g + decay * p2
            m2.lerp_(g, 1 - beta1)
            v2.mul_(beta2).add_((1 - beta2) * g * g)
            p2.sub_(m2 / (v2.sqrt() / bias_correction2_sqrt + eps) * step_size)

    def _sgd(self, lr, decay, momentum) -> None:
        lr, decay, momentum = lr.float(), decay.float(), momentum.float()
        first = self.step_count == 1
        for p, buf in zip(self.params, self.state["momentum_buffer"]):
            if p.grad is None:
                continue
            p2, b2 = trial_rows(p, self.n), trial_rows(buf, self.n)
            g = trial_rows(p.grad, self.n) + decay * p2
            if first:
                b2.copy_(g)
            else:
                b2.mul_(momentum).add_(g)
            if isinstance(self.nesterov, torch.Tensor):
                update = torch.where(self.nesterov, g + momentum * b2, b2)
            else:
                update = g + momentum * b2 if self.nesterov else b2
            p2.sub_(lr * update)

    # ------------------------------------------------------------------ state in and out of trials
    def trial_state(self, i: int) -> None:
        """Trial i's torch optimizer holds its state, as if it had taken every step itself."""
        optimizer = self.optimizers[i]
        for index, trial_param in enumerate(self.trial_params[i]):
            # in the trial's own layout (a group may train in another): its fused torch optimizer needs it
            state = {name: torch.empty_like(trial_param.detach()).copy_(trial_block(tensors[index], self.n, i,
                                                                                     trial_param.shape))
                     for name, tensors in self.state.items()}
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
                for name, tensors in self.state.items():
                    trial_block(tensors[index], self.n, i, trial_param.shape).copy_(state[name])
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


class StackedEMA:
    """Each trial's exponential moving average of its weights, with its own decay; a trial without one (decay
    None) has its average follow its weights, unread."""

    def __init__(self, group_model: nn.Module, decays: Sequence[Optional[float]]):
        self.n = len(decays)
        self.current = state_tensors(group_model)
        self.averages = [t.detach().clone() for t in self.current]
        decays = [0.0 if decay is None else decay for decay in decays]
        self.weight = (1 - torch.tensor(decays, dtype=torch.float32)).view(-1, 1).to(self.averages[0].device)

    @torch.no_grad()
    def update(self) -> None:
        for average, current in zip(self.averages, self.current):
            if average.is_floating_point():
                trial_rows(average, self.n).lerp_(trial_rows(current, self.n), self.weight)
            else:
                average.copy_(current)

    def load(self, emas: Sequence[Optional[ExponentialMovingAverage]]) -> None:
        """The group's averages := each trial's EMA model's (restored from its checkpoint)."""
        copy_trials(self.averages, self.n, self._trials(emas), into_stack=True)

    def unstack_into(self, emas: Sequence[Optional[ExponentialMovingAverage]]) -> None:
        copy_trials(self.averages, self.n, self._trials(emas), into_stack=False)

    @staticmethod
    def _trials(emas: Sequence[Optional[ExponentialMovingAverage]]) -> list[Optional[list[torch.Tensor]]]:
        return [None if ema is None else state_tensors(ema.module) for ema in emas]
