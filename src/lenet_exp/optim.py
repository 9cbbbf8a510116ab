"""Optimizer and learning-rate schedule from the optimizer and scheduler config groups.

The optimizer is whatever class ``optimizer._target_`` names (a new torch optimizer is one YAML in
``configs/optimizer/``), built over the model's parameters.

Every schedule is stepped once per batch, so cosine and one-cycle are smooth and ``step`` decays at
epoch boundaries (``scheduler.step_epochs`` epochs of steps).
"""

from __future__ import annotations

import inspect
import logging
import math

import torch
from torch import nn

from lenet_exp.config import as_overridden, named_in_overrides, option_yaml
from lenet_exp.errors import ConfigError, UserError, one_line
from lenet_exp.targets import located_class, options_refused, plain_options
from lenet_exp.validation import optimizer_without_class

log = logging.getLogger(__name__)


def build_optimizer(ocfg, model: nn.Module) -> torch.optim.Optimizer:
    if not ocfg.get("_target_"):
        raise optimizer_without_class()
    expected = "a torch.optim class whose arguments match the optimizer options"
    optimizer_class = located_class("optimizer._target_", ocfg._target_, torch.optim.Optimizer, expected)
    closure = inspect.signature(optimizer_class.step).parameters.get("closure")
    if closure is not None and closure.default is inspect.Parameter.empty:  # LBFGS: it evaluates the model itself
        raise ConfigError("optimizer._target_", ocfg._target_, "an optimizer that steps once per batch",
                          why="its step() needs a closure that evaluates the model again")
    options = plain_options(ocfg, "optimizer")
    check_argument_types(optimizer_class, options)
    optimizer = None
    try:
        if "fused" in inspect.signature(optimizer_class).parameters and "fused" not in options:
            # One fused kernel for the whole update instead of a few per parameter tensor: ~3 % of a
            # CPU epoch here (benchmarks/cpu_knobs.py), and fewer launches on a GPU.
            try:
                optimizer = optimizer_class(model.parameters(), **options, fused=True)
            except RuntimeError:  # "fused is unsupported" on this device or dtype
                pass
        optimizer = optimizer or optimizer_class(model.parameters(), **options)
    except (TypeError, ValueError, RuntimeError) as error:  # an argument it does not take, a value it refuses
        raise options_refused("optimizer", ocfg._target_, options, error) from error
    arguments = {**options, "fused": True} if optimizer.defaults.get("fused") and "fused" not in options else options
    refuse_an_optimizer_that_cannot_step(optimizer_class, arguments, next(model.parameters()), ocfg._target_)
    return optimizer


def refuse_an_optimizer_that_cannot_step(optimizer_class: type, arguments: dict, like: torch.Tensor,
                                         target: str) -> None:
    """SparseAdam (sparse gradients only) and capturable=true on the CPU were built, then failed at the first
    step with a traceback: one step of the same optimizer on a one-number probe of the model's device and
    dtype tells it first."""
    probe = torch.zeros(1, device=like.device, dtype=like.dtype, requires_grad=True)
    probe.grad = torch.zeros_like(probe)
    try:
        optimizer_class([probe], **arguments).step()
    except Exception as error:  # whatever it raises: it cannot train this model here
        raise UserError(f"{target} cannot take a step here ({one_line(error)}) with the optimizer options "
                        f"{arguments}. Choose another optimizer (optimizer=<option>), or other options of "
                        f"it.") from error


def check_argument_types(optimizer_class: type, options: dict) -> None:
    """A ``+optimizer.<name>=`` of the type its default has: torch checks few at construction, and a fused
    update fails only at its first step, with a traceback (``+optimizer.amsgrad=1``)."""
    parameters = inspect.signature(optimizer_class).parameters
    for name, value in options.items():
        default = parameters[name].default if name in parameters else None
        fix = f"Fix it on the command line, e.g. `python run.py {as_overridden(f'optimizer.{name}')}=...`, or in " \
              f"{option_yaml('optimizer')}."
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ConfigError(f"optimizer.{name}", value, "true or false", fix=fix)
        if type(default) in (int, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ConfigError(f"optimizer.{name}", value, "a number", fix=fix)
        if name == "differentiable" and value:
            raise ConfigError("optimizer.differentiable", value, "false (nothing here differentiates through a "
                              "step)", fix=fix)
        if name == "maximize" and value:  # it climbs the loss, and the run ends "diverged", blamed on the lr
            raise ConfigError("optimizer.maximize", value, "false (training lowers the loss, which maximize "
                              "would raise)", fix=fix)


# the per-parameter states of torch's optimizers (Adam, AdamW, SGD) that have their parameter's shape, and
# the numbers of a parameter group
PARAMETER_SHAPED = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer")
GROUP_NUMBERS = ("lr", "eps", "weight_decay", "momentum", "dampening")


def finite(value) -> bool:
    """Whether ``value`` is a finite number, or a tensor of finite numbers (a learning rate may be one)."""
    if torch.is_tensor(value):
        return not value.is_floating_point() or bool(torch.isfinite(value).all())
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def load_optimizer_state(optimizer: torch.optim.Optimizer, saved: dict) -> None:
    """``optimizer.load_state_dict(saved)``, each state tensor then in its parameter's memory layout.

    A checkpoint keeps the layout it was trained in (channels_last, a stacked group's) and torch loads
    it as it is, while its fused CPU Adam walks state and parameter in memory order: a run resumed in
    another layout would pair moments with the wrong weights. A moment of another shape (an altered
    checkpoint) is refused (ValueError): fused Adam would read and write past its end.
    """
    optimizer.load_state_dict(saved)
    for group in optimizer.param_groups:
        odd = next((f"{key}={group[key]!r}" for key in GROUP_NUMBERS
                    if group.get(key) is not None and not finite(group[key])), None)
        betas = group.get("betas", (0.0, 0.0))
        if odd or not (isinstance(betas, (tuple, list)) and len(betas) == 2 and all(map(finite, betas))):
            raise ValueError(f"an optimizer parameter group of {odd or f'betas={betas!r}'}")
    for param, state in optimizer.state.items():
        if not isinstance(param, torch.Tensor):
            raise ValueError(f"an optimizer state of {param!r}, which is no parameter")
        for name, value in state.items():
            if name in PARAMETER_SHAPED and value is not None and not (  # SGD without momentum: None
                    torch.is_tensor(value) and value.shape == param.shape):
                shape = list(value.shape) if torch.is_tensor(value) else type(value).__name__
                raise ValueError(f"an optimizer {name} of shape {shape} for a parameter of shape {list(param.shape)}")
            if name == "step" and not (finite(value) and (not torch.is_tensor(value) or value.numel() == 1)):
                raise ValueError(f"an optimizer step of shape {list(value.shape) if torch.is_tensor(value) else value}")
            if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                state[name] = torch.empty_like(param.detach()).copy_(value)  # empty_like keeps the layout


def say_the_momentum_is_the_schedules(optimizer: torch.optim.Optimizer) -> None:
    """One-cycle moves the momentum (Adam's beta1) itself: a value the command line gives is not used, and a
    sweep over it trains one run several times."""
    named = {key.split(".")[1] for key in named_in_overrides() if key.startswith("optimizer.")}  # betas of betas.0
    if "momentum" in named:
        given = f"optimizer.momentum={optimizer.defaults['momentum']} is"
    elif "betas" in named:
        given = f"beta1 of optimizer.betas={list(optimizer.defaults['betas'])} is"  # its beta2 is used
    else:
        return
    log.warning("%s not used: scheduler=onecycle moves the momentum between 0.95 and 0.85 against the learning "
                "rate (another scheduler keeps it).", given)


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
            steps = math.ceil(2 / scfg.pct_start)  # 2e+30 of a pct_start of 1e-30, not its 31 digits
            longer = (f"a run of at least {steps if steps < 10**9 else f'{steps:.0e}'} steps: more trainer.epochs, "
                      f"more batches an epoch (dataset.train_size, trainer.limit_batches) or a smaller "
                      f"trainer.batch_size")
            shorter = f"pct_start >= {math.ceil(200 / total) / 100:.2f}, or " if total >= 3 else ""  # < 1 for 3 steps
            raise ConfigError("scheduler.pct_start", scfg.pct_start, f"a value that gives the warm-up at least 2 of "
                              f"the run's {total} steps ({shorter}{longer})")
        base = optimizer.param_groups[0]["lr"]
        # momentum (Adam's beta1) moves against the learning rate where the optimizer has some; one without
        # (Adagrad), or set to none (SGD's momentum 0), keeps its own
        cycle = "betas" in optimizer.defaults or bool(optimizer.defaults.get("momentum"))
        if cycle:
            say_the_momentum_is_the_schedules(optimizer)
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=base, total_steps=total, pct_start=scfg.pct_start,
                                                   cycle_momentum=cycle)
    raise ValueError(f"unknown scheduler {scfg.name}")  # validate() lets none through
