"""The exponential moving average of the weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lenet_exp.ema import ExponentialMovingAverage, step_decay
from lenet_exp.errors import CheckpointError
from lenet_exp.models.lenet5 import LeNet5
from lenet_exp.stack.model import GroupedModel, stack_into
from lenet_exp.stack.optim import StackedEMA


def test_average_is_of_the_steps_weights_only_and_copies_integer_buffers():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    ema = ExponentialMovingAverage(model, decay=0.9)
    seen = []  # the weights after each step
    for _ in range(3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        model(torch.randn(8, 3))  # a training-mode forward moves BatchNorm's statistics and its step counter
        ema.update(model)
        seen.append({k: v.clone() for k, v in model.state_dict().items()})
    # each step's weights weighted by 0.9 ** its age, the first weights (the untrained model's) by nothing: a
    # plain average from them kept 0.9 ** 3 = 73 % of them
    ages = [0.81, 0.9, 1.0]
    for name, averaged in ema.module.state_dict().items():
        if averaged.is_floating_point():
            expected = sum(a * w[name] for a, w in zip(ages, seen)) / sum(ages)
            assert torch.allclose(averaged, expected, atol=1e-6), name
        else:  # num_batches_tracked
            assert torch.equal(averaged, seen[-1][name]), name
    assert not any(p.requires_grad for p in ema.module.parameters())
    # checkpoints and inference read the averaged weights under module.<name>
    assert set(ema.state_dict()) == {f"module.{k}" for k in seen[-1]} | {"_extra_state"}


def test_a_checkpoint_keeps_the_count_of_updates_and_an_older_one_goes_on_at_its_decay():
    model = nn.Linear(3, 2)
    ema = ExponentialMovingAverage(model, decay=0.9)
    ema.update(model)
    ema.update(model)
    resumed = ExponentialMovingAverage(model, decay=0.9)
    resumed.load_state_dict(ema.state_dict())
    with torch.no_grad():
        model.weight.add_(1.0)
    for average in (ema, resumed):  # the third update: decay 0.9 * 0.19 / 0.271, not 0.9
        average.update(model)
    assert resumed.updates == ema.updates == 3
    assert torch.equal(resumed.module.weight, ema.module.weight)
    older = ExponentialMovingAverage(model, decay=0.9)  # a checkpoint of lenet_exp before the count
    older.load_state_dict({k: v for k, v in ema.state_dict().items() if k.startswith("module.")})
    assert step_decay(0.9, older.updates + 1) == 0.9
    with pytest.raises(CheckpointError, match="holds -1 updates, a count that lenet_exp never writes"):
        older.load_state_dict({**ema.state_dict(), "_extra_state": {"updates": -1}})  # step_decay divided by 0


def test_each_stacked_trials_average_is_its_own_runs(monkeypatch):
    """Three trials (decays 0.9, 0.5 and none) stacked, across the tables of step weights and a reload
    mid-way (a resumed group), against each one's own average."""
    monkeypatch.setattr(StackedEMA, "TABLE_STEPS", 2)
    torch.manual_seed(0)
    models = [LeNet5() for _ in range(3)]
    decays = [0.9, 0.5, None]
    own = [ExponentialMovingAverage(m, d) if d else None for m, d in zip(models, decays)]
    group = GroupedModel(LeNet5(), 3, [0.0] * 3)
    stack_into(group, models)
    stacked = StackedEMA(group, decays)
    stacked.load(own)
    for step in range(5):
        with torch.no_grad():
            for m in models:
                for p in m.parameters():
                    p.add_(torch.randn_like(p))
        stack_into(group, models)
        stacked.update()
        for m, e in zip(models, own):
            if e is not None:
                e.update(m)
        if step == 2:  # the group saved into its trials' checkpoints, and read back (its own copies: the
            saved = [ExponentialMovingAverage(m, d) if d else None for m, d in zip(models, decays)]  # reference stays
            stacked.unstack_into(saved)
            stacked.load(saved)
    shadows = [ExponentialMovingAverage(m, 0.9) for m in models]  # the trials' averages, out of the group
    stacked.unstack_into(shadows[:2] + [None])
    for e, shadow in zip(own[:2], shadows):
        assert shadow.updates == e.updates == 5
        for (name, a), b in zip(e.module.state_dict().items(), shadow.module.state_dict().values()):
            assert torch.allclose(a, b, atol=1e-6), name
