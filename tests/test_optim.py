"""Optimizers and per-batch learning-rate schedules from their config groups."""

from __future__ import annotations

import copy
import re

import pytest
import torch
from omegaconf import OmegaConf

from lenet_exp import compose
from lenet_exp.errors import ConfigError, UserError
from lenet_exp.models import build_model
from lenet_exp.models.lenet5 import LeNet5
from lenet_exp.optim import build_optimizer, build_scheduler, load_optimizer_state
from lenet_exp.validation import validate

OPTIMIZER = dict(_target_="torch.optim.Adam", lr=0.01, weight_decay=0.0, betas=[0.9, 0.999])
SCHEDULER = dict(name="none", step_epochs=2, gamma=0.1, min_lr_ratio=0.0, pct_start=0.25)


def lrs(scheduler_changes: dict, epochs: int = 4, steps: int = 10) -> list[float]:
    optimizer = build_optimizer(OmegaConf.create(OPTIMIZER), LeNet5())
    scheduler = build_scheduler(OmegaConf.create({**SCHEDULER, **scheduler_changes}), optimizer, epochs, steps)
    seen = []
    for _ in range(epochs * steps):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    return seen


@pytest.mark.parametrize("name,cls", [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW), ("sgd", torch.optim.SGD)])
def test_optimizer_choice_and_settings(name, cls):
    sgd = ["optimizer.nesterov=true"] if name == "sgd" else []
    cfg = compose(f"optimizer={name}", "optimizer.lr=0.01", "optimizer.weight_decay=1e-4", *sgd)
    optimizer = build_optimizer(cfg.optimizer, LeNet5())
    assert type(optimizer) is cls
    group = optimizer.param_groups[0]
    assert (group["lr"], group["weight_decay"]) == (0.01, 1e-4)
    if name == "sgd":
        assert group["momentum"] == 0.9 and group["nesterov"] is True


def test_an_option_that_sets_fused_itself_keeps_it():  # the fused update is otherwise asked for where there is one
    assert build_optimizer(OmegaConf.create({**OPTIMIZER, "fused": False}), LeNet5()).defaults["fused"] is False


def test_other_arguments_of_the_optimizers_class_are_passed_with_a_plus(tiny_root):
    """docs/configuration.md: `+optimizer.<name>=` adds an argument of the class; the schema refused it as an
    unknown key. A key the class does not take is still refused, with the ones it does."""
    cfg = compose("optimizer=sgd", "+optimizer.dampening=0.1", "optimizer.momentum=0.5")
    validate(cfg)
    assert build_optimizer(cfg.optimizer, LeNet5()).param_groups[0]["dampening"] == 0.1
    with pytest.raises(ConfigError, match=re.escape("optimizer.lrr=0.1 (unknown key; did you mean optimizer.lr?): "
                                                    "expected one of the schema's keys: _target_, lr, weight_decay, "
                                                    "betas, or an argument of torch.optim.Adam (eps, amsgrad,")):
        validate(compose("+optimizer.lrr=0.1"))


def test_an_optimizer_is_refused_for_what_it_cannot_do_here():
    """LBFGS was accepted and failed at its first step ("missing 1 required positional argument: 'closure'"); a
    value the class refuses was blamed on its _target_."""
    with pytest.raises(ConfigError, match=re.escape("optimizer._target_='torch.optim.LBFGS' (its step() needs a "
                                                    "closure that evaluates the model again): expected an optimizer "
                                                    "that steps once per batch.")):
        build_optimizer(OmegaConf.create({"_target_": "torch.optim.LBFGS", "lr": 1.0}), LeNet5())
    with pytest.raises(UserError, match=re.escape("torch.optim.RMSprop refuses the optimizer options {'lr': -1.0}: "
                                                  "Invalid learning rate: -1.0. Fix the value")):
        build_optimizer(OmegaConf.create({"_target_": "torch.optim.RMSprop", "lr": -1.0}), LeNet5())
    # a value of the wrong type (checked against the argument's default: a fused update took amsgrad=1, then
    # failed at its first step with a traceback), an argument it does not take: the options named, not the class
    for argument, value, written, expected in [
            ("eps", "abc", "'abc'", "a number"), ("amsgrad", 1, "1", "true or false"),
            ("maximize", "yes", "'yes'", "true or false"),
            ("maximize", True, "true", "false (training lowers the loss, which maximize would raise)"),  # (not True)
            ("differentiable", True, "true", "false (nothing here differentiates through a step)")]:
        # without a command line (the plus of one: test_extending), the key as the config holds it
        with pytest.raises(ConfigError, match=re.escape(f"optimizer.{argument}={written}: expected {expected}. Fix it "
                                                        f"on the command line, e.g. `python run.py "
                                                        f"optimizer.{argument}")):
            build_optimizer(OmegaConf.create({"_target_": "torch.optim.Adam", "lr": 1e-3, argument: value}), LeNet5())
    with pytest.raises(UserError, match=re.escape("torch.optim.Adam refuses the optimizer options {'lr': 0.001, 'fused': "
                                                  "True, 'foreach': True}: `fused` and `foreach` cannot be `True` "
                                                  "together. Fix the value")):  # a RuntimeError: a traceback
        build_optimizer(OmegaConf.create({"_target_": "torch.optim.Adam", "lr": 1e-3, "fused": True, "foreach": True}),
                        LeNet5())
    # the example names the option refused, not the first one ("Invalid epsilon value: -1 … e.g. optimizer.lr=…")
    for options, named in [({"lr": 1e-3, "eps": -1.0}, "eps"), ({"lr": 1e-3, "weight_decay": -0.5}, "weight_decay"),
                           ({"lr": 1e-3, "betas": [1.5, 0.9]}, "betas"), ({"weight_decay": 0.0, "lr": -1.0}, "lr"),
                           # "Invalid lr_decay value" named lr, a part of its name
                           ({"lr": 1e-2, "lr_decay": -1.0, "_target_": "torch.optim.Adagrad"}, "lr_decay"),
                           # "Nesterov momentum requires a momentum": named lr, the first option
                           ({"lr": 1e-2, "nesterov": True, "_target_": "torch.optim.SGD"}, "nesterov")]:
        with pytest.raises(UserError, match=re.escape(f"Fix the value on the command line (e.g. optimizer.{named}=…)")):
            build_optimizer(OmegaConf.create({"_target_": "torch.optim.Adam", **options}), LeNet5())
    # built, then failed at the first step with a traceback
    for options, said in [({"_target_": "torch.optim.SparseAdam"}, "SparseAdam does not support dense gradients"),
                          ({"capturable": True, "foreach": True}, "If capturable=True, params and state_steps must "
                                                                  "be on supported devices")]:
        with pytest.raises(UserError, match=re.escape("cannot take a step here (") + ".*" + re.escape(said)):
            build_optimizer(OmegaConf.create({"_target_": "torch.optim.Adam", "lr": 1e-3, **options}), LeNet5())
    with pytest.raises(UserError, match=re.escape("optimizer.bogus=3: torch.optim.Adam takes no argument bogus.")):
        build_optimizer(OmegaConf.create({"_target_": "torch.optim.Adam", "lr": 1e-3, "bogus": 3}), LeNet5())
    with pytest.raises(UserError, match=re.escape("model.bogus=1: lenet_exp.models.lenet5.LeNet5 takes no argument")):
        build_model(OmegaConf.create({"_target_": "lenet_exp.models.lenet5.LeNet5", "bogus": 1}), 10, 32)


@pytest.mark.parametrize("optimizer, moves", [
    (dict(_target_="torch.optim.Adagrad", lr=0.01), None),  # torch refused it: "optimizer must support momentum"
    ({**OPTIMIZER, "_target_": "torch.optim.SGD", "momentum": 0.0, "betas": None}, None),  # it kept none: stays
    ({**OPTIMIZER, "_target_": "torch.optim.SGD", "momentum": 0.9, "betas": None}, "momentum"),
    (OPTIMIZER, "betas"),
])
def test_onecycle_moves_momentum_only_where_the_optimizer_has_some(optimizer, moves):
    options = {key: value for key, value in optimizer.items() if value is not None}
    built = build_optimizer(OmegaConf.create(options), LeNet5())
    before = copy.deepcopy(built.param_groups[0])
    build_scheduler(OmegaConf.create({**SCHEDULER, "name": "onecycle"}), built, 4, 10)
    changed = {key for key in ("momentum", "betas") if key in before and built.param_groups[0][key] != before[key]}
    assert changed == ({moves} if moves else set())


def test_constant_learning_rate_without_a_schedule():
    assert set(lrs({"name": "none"})) == {0.01}


def test_cosine_decays_smoothly_to_the_floor():
    seen = lrs({"name": "cosine", "min_lr_ratio": 0.1})
    assert seen[0] == pytest.approx(0.01) and seen[-1] == pytest.approx(0.001, rel=0.05)
    assert all(a >= b for a, b in zip(seen, seen[1:]))


def test_step_decays_at_epoch_boundaries():
    seen = lrs({"name": "step", "step_epochs": 2, "gamma": 0.1})
    assert seen[19] == pytest.approx(0.01) and seen[20] == pytest.approx(0.001)


@pytest.mark.parametrize("steps, instead", [
    (5, "(pct_start >= 0.40, or a run of at least 8 steps: more trainer.epochs, more batches an epoch "
        "(dataset.train_size, trainer.limit_batches) or a smaller trainer.batch_size)"),
    (2, "(a run of at least 8 steps: more trainer.epochs, more batches an epoch (dataset.train_size, "
        "trainer.limit_batches) or a smaller trainer.batch_size)"),  # no pct_start < 1 would do
])
def test_a_onecycle_warm_up_under_two_steps_says_what_would_do(steps, instead):
    """(Of a pct_start of 1e-30, in a number that reads: "2e+30", not its 31 digits.)"""
    optimizer = build_optimizer(OmegaConf.create(OPTIMIZER), LeNet5())
    with pytest.raises(ConfigError, match=re.escape(f"at least 2 of the run's {steps} steps {instead}")):
        build_scheduler(OmegaConf.create({**SCHEDULER, "name": "onecycle"}), optimizer, 1, steps)
    with pytest.raises(ConfigError, match=re.escape("a run of at least 2e+30 steps: more")):
        build_scheduler(OmegaConf.create({**SCHEDULER, "name": "onecycle", "pct_start": 1e-30}), optimizer, 1, steps)


def test_onecycle_peaks_at_the_learning_rate_after_warm_up():
    seen = lrs({"name": "onecycle", "pct_start": 0.25})
    assert max(seen) == pytest.approx(0.01) and seen.index(max(seen)) == 9
    assert seen[0] < 0.001 and seen[-1] < 1e-4


def test_onecycle_too_short_to_warm_up_is_a_config_error():
    with pytest.raises(ConfigError, match="scheduler.pct_start"):
        lrs({"name": "onecycle", "pct_start": 0.25}, epochs=1, steps=4)


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_an_optimizer_state_saved_in_channels_last_resumes_in_nchw_as_it_would_have_gone_on(name):
    """A checkpoint of a channels_last run (a stacked group's trial, a CPU run with the fused kernel) resumed
    in NCHW: torch's fused optimizers walk state and weights in memory order, so the state must be put in
    the weights' layout, or the update pairs moments with the wrong weights."""
    def one_step(model, optimizer, seed):
        for i, p in enumerate(model.parameters()):  # the same gradients, in each weight's own layout
            p.grad = torch.empty_like(p).copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(seed + i)))
        optimizer.step()

    ocfg = compose(f"optimizer={name}", "optimizer.lr=0.01").optimizer
    torch.manual_seed(0)
    trained = LeNet5().to(memory_format=torch.channels_last)
    optimizer = build_optimizer(ocfg, trained)
    one_step(trained, optimizer, seed=1)
    # copies, as from a checkpoint file: a state_dict holds the live tensors
    saved_weights, saved_state = copy.deepcopy(trained.state_dict()), copy.deepcopy(optimizer.state_dict())
    conv2 = [i for i, p in enumerate(trained.parameters()) if p.dim() == 4][1]
    assert not any(v.is_contiguous() for k, v in saved_state["state"][conv2].items() if k != "step")

    resumed = LeNet5()  # NCHW
    resumed.load_state_dict(saved_weights)
    resumed_optimizer = build_optimizer(ocfg, resumed)
    load_optimizer_state(resumed_optimizer, saved_state)
    one_step(trained, optimizer, seed=2)
    one_step(resumed, resumed_optimizer, seed=2)
    for (key, went_on), back in zip(trained.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(went_on, back, atol=1e-6), key
