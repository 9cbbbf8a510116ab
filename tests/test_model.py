"""LeNet-5's two variants have the layers the tutorial and LeCun et al. describe."""

import inspect

import pytest
import torch
from torch import nn

from lenet_exp.models.lenet5 import LeNet5


def layer_types(module):
    return [type(m) for m in module.modules() if not isinstance(m, (nn.Sequential, LeNet5))]


def test_tutorial_variant_layers_and_shapes():
    model = LeNet5()
    assert layer_types(model) == [
        nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.ReLU, nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.ReLU,
        nn.Flatten, nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [(1, 6, (5, 5)), (6, 16, (5, 5))]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(400, 120), (120, 84), (84, 10)]
    assert model(torch.randn(3, 1, 32, 32)).shape == (3, 10)


def test_classic_variant_uses_tanh_and_average_pooling_without_batchnorm():
    model = LeNet5(activation="tanh", pooling="avg", batch_norm=False)
    types = layer_types(model)
    assert nn.BatchNorm2d not in types and nn.ReLU not in types and nn.MaxPool2d not in types
    assert types.count(nn.Tanh) == 4 and types.count(nn.AvgPool2d) == 2
    assert all(c.bias is not None for c in model.modules() if isinstance(c, nn.Conv2d))


def test_eval_mode_uses_running_statistics():
    torch.manual_seed(0)
    model = LeNet5()
    x = torch.randn(8, 1, 32, 32)
    model.train()
    model(x * 3 + 1)  # moves BatchNorm's running statistics
    model.eval()
    single = model(x[:1])
    batch = model(x)[:1]
    assert torch.allclose(single, batch, atol=1e-5)  # no dependence on the batch in eval mode


def test_relu_after_max_pool_is_the_tutorials_conv_bn_relu_pool_exactly():
    torch.manual_seed(0)
    model = LeNet5()
    f = model.features  # conv, bn, pool, relu, conv, bn, pool, relu
    reference = nn.Sequential(f[0], f[1], nn.ReLU(), nn.MaxPool2d(2), f[4], f[5], nn.ReLU(), nn.MaxPool2d(2))
    x = torch.randn(16, 1, 32, 32)
    ours, theirs = f(x), reference(x)
    assert torch.equal(ours, theirs)
    ours.square().sum().backward()
    ours_grads = [p.grad.clone() for p in f.parameters()]
    f.zero_grad()
    theirs.square().sum().backward()
    assert all(torch.equal(a, p.grad) for a, p in zip(ours_grads, f.parameters()))


def test_a_model_yaml_without_the_schema_is_checked_as_the_schema_checks_it(tmp_path):
    """A string "false" built BatchNorm, recorded as false; a third conv block left nothing of a 32x32 image and
    failed at the first step with a traceback. Told when the model is built, with the option to fix."""
    from omegaconf import OmegaConf

    from lenet_exp.errors import UserError
    from lenet_exp.models import build_model

    base = {"_target_": "lenet_exp.models.lenet5.LeNet5", "activation": "relu", "pooling": "max", "batch_norm": True,
            "conv_channels": [6, 16], "hidden": [84]}
    for changes, said, named in [
            ({"batch_norm": "false"}, "batch_norm 'false': expected true or false", "batch_norm"),
            ({"conv_channels": [6, 16, 32]}, "conv_channels [6, 16, 32]: 3 conv blocks leave nothing of a 32x32 "
                                             "input (each takes 4 pixels off, then halves it); 2 fit", "conv_channels"),
            ({"activation": "gelu"}, "activation 'gelu': expected one of relu, tanh", "activation"),
            ({"hidden": [84, 0]}, "hidden [84, 0]: expected one or more positive integers", "hidden"),
            ({"dropout": 1.5}, "dropout 1.5: expected a number in [0, 1)", "dropout")]:
        with pytest.raises(UserError) as refused:
            build_model(OmegaConf.create({**base, **changes}), 10, 32)
        assert said in str(refused.value) and f"(e.g. model.{named}=…)" in str(refused.value), str(refused.value)
    deeper = build_model(OmegaConf.create({**base, "conv_channels": [6, 16, 32]}), 10, 64)
    assert deeper(torch.zeros(2, 1, 64, 64)).shape == (2, 10)  # three blocks fit a 64x64 input


def test_the_python_defaults_build_the_default_configs_model():
    """``LeNet5()`` (the Python API's) and ``python run.py`` (configs/model/lenet5.yaml) state the tutorial's
    model each: they must not drift apart."""
    from lenet_exp import compose

    cfg = compose()
    defaults = {name: p.default for name, p in inspect.signature(LeNet5).parameters.items()}
    configured = {**{key: cfg.model[key] for key in defaults if key in cfg.model},
                  "num_classes": cfg.dataset.num_classes, "image_size": cfg.dataset.image_size}
    assert set(configured) == set(defaults)
    assert {key: list(v) if isinstance(v, tuple) else v for key, v in defaults.items()} == {
        key: list(v) if key in ("conv_channels", "hidden") else v for key, v in configured.items()}


def test_the_lenet5_option_takes_as_many_conv_blocks_as_its_class(fast, tmp_path):
    """The schema said two conv blocks where LeNet5 builds any number that fits: a third one on 64x64 inputs
    trains (stacked too, as one group); on 32x32 it is refused, saying how many fit."""
    from conftest import run_main

    deeper = ["model.conv_channels=[6,16,32]", "dataset.image_size=64", *fast]
    result = run_main(["-m", "hydra/launcher=stacked", "seed=0,1", *deeper, f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                      cwd=tmp_path)
    assert result.returncode == 0 and "Training jobs 0, 1 stacked" in result.stderr, result.stderr[-2000:]
    refused = run_main(["model.conv_channels=[6,16,32]", *fast], cwd=tmp_path)
    assert refused.returncode == 1 and "3 conv blocks leave nothing of a 32x32 input" in refused.stderr
    assert "2 fit: fewer, or a larger dataset.image_size" in refused.stderr
