"""Adding things is small: a torch optimizer is one YAML, an IDX data set one YAML, a model one module and
one YAML. Each is added to a copy of configs/ and trained end to end through the Python entry point."""

from __future__ import annotations

import logging
import re
import shutil
import textwrap
from pathlib import Path

import pytest
import torch
import torchvision

from conftest import fast_overrides, run_main
from idx import write_dataset
from lenet_exp import CONFIGS, compose, load_model, train
from lenet_exp.errors import CheckpointError, ConfigError, UserError


@pytest.fixture
def configs(tmp_path) -> Path:
    copy = tmp_path / "configs"
    shutil.copytree(CONFIGS, copy)
    return copy


def add_yaml(configs: Path, group: str, name: str, text: str) -> None:
    (configs / group / f"{name}.yaml").write_text(textwrap.dedent(text))


def test_a_new_torch_optimizer_is_one_yaml(configs, tiny_root, tmp_path):
    add_yaml(configs, "optimizer", "rmsprop", """\
        _target_: torch.optim.RMSprop
        lr: 2e-3
        weight_decay: 0.0
        alpha: 0.9
        """)
    cfg = compose(*fast_overrides(tiny_root), "optimizer=rmsprop", config_dir=configs)
    metrics = train(cfg, run_dir=tmp_path / "run")
    assert metrics["status"] == "completed" and metrics["config"]["optimizer"]["alpha"] == 0.9
    saved = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert saved["optimizer"]["param_groups"][0]["alpha"] == 0.9  # an RMSprop trained it
    assert "square_avg" in next(iter(saved["optimizer"]["state"].values()))
    # an argument of RMSprop that its YAML leaves out: added with + (optimizer=sgd has one, which it named)
    with pytest.raises(UserError, match=re.escape("optimizer.momentum is not a setting of this optimizer's YAML: "
                                                  "+optimizer.momentum=… passes it to torch.optim.RMSprop.")):
        compose("optimizer=rmsprop", "optimizer.momentum=0.9", config_dir=configs)


def test_a_torch_optimizers_learning_rate_and_decay_are_checked_as_the_schemas_are(configs, fast, tmp_path):
    """RMSprop took optimizer.lr=0 and trained nothing without a word (torch's check allows 0), and a value of the
    wrong type was met once the data had loaded, with a fix that wrote `+optimizer.lr=`, which adds a key its YAML
    already has; a key the command line added with a plus gets the plus in the fix."""
    add_yaml(configs, "optimizer", "rmsprop", """\
        _target_: torch.optim.RMSprop
        lr: 2e-3
        """)
    for override, expected in [("optimizer.lr=0", "optimizer.lr=0: expected a number > 0"),
                               ("optimizer.lr=abc", "optimizer.lr='abc': expected a number > 0"),
                               ("+optimizer.weight_decay=-1", "optimizer.weight_decay=-1: expected a number >= 0"),
                               ("+optimizer.momentum=1.5", "optimizer.momentum=1.5: expected a number in [0, 1)")]:
        result = run_main(["--config-dir", str(configs), *fast, "optimizer=rmsprop", override], cwd=tmp_path)
        key = override.split("=")[0]
        assert result.returncode == 1 and (f"Invalid config value {expected}. Fix it on the command line, e.g. "
                                           f"`python run.py {key}=...`") in result.stderr, (override, result.stderr)
        assert "images on" not in result.stdout + result.stderr  # refused before the data was read
    amsgrad = run_main(["--config-dir", str(configs), *fast, "optimizer=adam", "+optimizer.amsgrad=1"], cwd=tmp_path)
    assert amsgrad.returncode == 1 and ("optimizer.amsgrad=1: expected true or false. Fix it on the command line, e.g. "
                                        "`python run.py +optimizer.amsgrad=...`") in amsgrad.stderr, amsgrad.stderr


def test_an_optimizer_class_of_ones_own_is_not_held_to_torch_optims_ranges(configs, tiny_root, tmp_path, monkeypatch):
    """lr=None (a class that finds its own learning rate) was refused as "expected a number > 0"."""
    (tmp_path / "own_optimizers.py").write_text(textwrap.dedent("""\
        import torch

        class AutoLR(torch.optim.SGD):
            def __init__(self, params, lr=None, weight_decay=0.0):
                super().__init__(params, lr=0.01 if lr is None else lr, weight_decay=weight_decay)
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    add_yaml(configs, "optimizer", "auto", """\
        _target_: own_optimizers.AutoLR
        lr: null
        """)
    metrics = train(compose(*fast_overrides(tiny_root), "optimizer=auto", config_dir=configs), run_dir=tmp_path / "run")
    assert metrics["status"] == "completed" and metrics["config"]["optimizer"]["lr"] is None


def test_an_optimizer_on_its_default_learning_rate_diverges_with_its_message(configs, tiny_root, tmp_path):
    """The divergence message read optimizer.lr, which a YAML of one's own need not set: ConfigAttributeError."""
    add_yaml(configs, "optimizer", "rprop_up", """\
        _target_: torch.optim.Rprop
        etas: [0.5, 50.0]
        step_sizes: [1.0e-06, 1.0e+09]
        """)
    metrics = train(compose(*fast_overrides(tiny_root), "optimizer=rprop_up", "trainer.epochs=3", config_dir=configs),
                    run_dir=tmp_path / "run")
    assert metrics["status"] == "diverged", metrics.get("message")
    # and of its own settings, which may be what diverged (RMSprop's alpha of 1.5 was blamed on the lr alone)
    assert metrics["message"].endswith("Lower optimizer.lr (now its class default), or check optimizer.etas, "
                                       "optimizer.step_sizes, and start a new run.")
    # an argument added to Adam's (a zero eps divides 0 by 0 where a gradient is 0)
    metrics = train(compose(*fast_overrides(tiny_root), "+optimizer.eps=0"), run_dir=tmp_path / "eps")
    assert metrics["status"] == "diverged" and metrics["message"].endswith(
        "Lower optimizer.lr (now 0.001), or check optimizer.eps, and start a new run."), metrics.get("message")


def test_a_new_idx_data_set_is_one_yaml(configs, tiny_root, tmp_path, caplog):
    write_dataset(tiny_root, "KMNIST", n_train=400, n_test=100, seed=2)  # other sizes than MNIST's: seen below
    add_yaml(configs, "dataset", "kmnist", """\
        # Kuzushiji-MNIST: torchvision's reader, LeCun's IDX files in <root>/KMNIST/raw/.
        defaults:
          - /schema_dataset_idx@_here_
          - _self_
        name: kmnist
        torchvision_class: KMNIST
        num_classes: 10
        mean: null
        std: null
        """)
    cfg = compose(*fast_overrides(tiny_root), "dataset=kmnist", config_dir=configs)
    with caplog.at_level(logging.INFO):
        metrics = train(cfg, run_dir=tmp_path / "run")
    assert metrics["status"] == "completed" and metrics["config"]["dataset"]["torchvision_class"] == "KMNIST"
    assert "kmnist: 300 train / 100 val / 100 test images" in caplog.text
    # torchvision's relatives that are not read as MNIST is: said at once, not blamed on their files
    for other in ("QMNIST", "EMNIST"):
        with pytest.raises(ConfigError, match=re.escape(f"dataset.torchvision_class='{other}': expected a "
                                                        "torchvision data set read as MNIST is: MNIST, FashionMNIST, "
                                                        "KMNIST")):
            train(compose(*fast_overrides(tiny_root), "dataset=kmnist", f"dataset.torchvision_class={other}",
                          config_dir=configs), run_dir=tmp_path / other)


def test_a_new_model_is_one_module_and_one_yaml(configs, tiny_root, tmp_path, monkeypatch):
    (tmp_path / "tiny_models.py").write_text(textwrap.dedent("""\
        from torch import nn

        class Perceptron(nn.Module):
            def __init__(self, num_classes, image_size, hidden):
                super().__init__()
                self.net = nn.Sequential(nn.Flatten(), nn.Linear(image_size ** 2, hidden), nn.ReLU(),
                                         nn.Linear(hidden, num_classes))

            def forward(self, x):
                return self.net(x)
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    add_yaml(configs, "model", "perceptron", """\
        _target_: tiny_models.Perceptron
        name: perceptron
        hidden: 32
        """)
    cfg = compose(*fast_overrides(tiny_root), "model=perceptron", "trainer.epochs=2", config_dir=configs)
    metrics = train(cfg, run_dir=tmp_path / "run")
    assert metrics["status"] == "completed" and metrics["fused_cpu_kernels"] is False  # nothing of LeNet's to fuse
    assert metrics["test"]["acc"] > 0.5  # it learned the tiny data set
    saved = torch.load(tmp_path / "run" / "checkpoints" / "best.pt", weights_only=True)
    assert set(saved["model"]) == {"net.1.weight", "net.1.bias", "net.3.weight", "net.3.bias"}
    # from Python as task=eval takes it: its class imported where its option is named
    best = tmp_path / "run" / "checkpoints" / "best.pt"
    with pytest.raises(CheckpointError, match="names the model class tiny_models.Perceptron"):
        load_model(best)
    model = load_model(best, "model=perceptron", config_dir=configs)
    test = torchvision.datasets.MNIST(tiny_root, train=False)
    assert (model(test.data).argmax(1) == test.targets).sum().item() / len(test.targets) == metrics["test"]["acc"]


def test_a_model_that_reads_its_tensors_values_trains_and_one_that_fails_on_its_input_is_named(configs, tiny_root,
                                                                                               tmp_path, monkeypatch):
    """The model's size is measured on the meta device, where a tensor has no value: a class that checks its input
    (``if x.isnan().any()``) or computes a constant with torch as it builds failed there, with a traceback, and its
    checkpoint was said to be "altered"; a class that does not fit its input ended in a traceback too."""
    (tmp_path / "own_models.py").write_text(textwrap.dedent("""\
        import torch
        from torch import nn

        class Checked(nn.Module):
            def __init__(self, num_classes, image_size, inputs=None):
                super().__init__()
                self.scale = float(torch.tensor(2.0).rsqrt())  # a value, as it builds
                self.net = nn.Sequential(nn.Flatten(), nn.Linear(inputs or image_size ** 2, num_classes))

            def forward(self, x):
                if x.isnan().any():  # a value, in forward
                    raise ValueError("NaN input")
                return self.net(x * self.scale)
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    add_yaml(configs, "model", "checked", """\
        _target_: own_models.Checked
        name: checked
        inputs: null
        """)
    cfg = compose(*fast_overrides(tiny_root), "model=checked", config_dir=configs)
    assert train(cfg, run_dir=tmp_path / "run")["status"] == "completed"
    model = load_model(tmp_path / "run" / "checkpoints" / "best.pt", "model=checked", config_dir=configs)
    assert model(torch.zeros(3, 28, 28, dtype=torch.uint8)).shape == (3, 10)
    # measured on the CPU, it draws no number of the run's seeded ones (its weights would differ from a class alike)
    from lenet_exp.parts import footprint
    before = torch.random.get_rng_state()
    footprint(cfg, 64)
    assert torch.equal(torch.random.get_rng_state(), before)
    misfit = compose(*fast_overrides(tiny_root), "model=checked", "model.inputs=784", config_dir=configs)
    with pytest.raises(UserError, match=re.escape("The model own_models.Checked fails on a batch of images "
                                                  "[N, 1, 32, 32] (dataset.image_size=32): RuntimeError: mat1 and "
                                                  "mat2 shapes cannot be multiplied")):
        train(misfit, run_dir=tmp_path / "misfit")
    # one that raises as it builds: its error, not its options blamed for it ("Fix the value … e.g. model.lr=…")
    (tmp_path / "raising_models.py").write_text(textwrap.dedent("""\
        from torch import nn

        class Raising(nn.Module):
            def __init__(self, num_classes, image_size):
                raise RuntimeError("boom")
        """))
    add_yaml(configs, "model", "raising", "_target_: raising_models.Raising\nname: raising\n")
    with pytest.raises(UserError, match=re.escape("raising_models.Raising raised RuntimeError: boom as it was built "
                                                  "(with num_classes=10, image_size=32 and its options {})")):
        train(compose(*fast_overrides(tiny_root), "model=raising", config_dir=configs), run_dir=tmp_path / "raising")


def test_a_model_module_that_fails_to_import_says_why(configs, tiny_root, tmp_path, monkeypatch):
    """Not that it lacks the class (as a module that imports without it is told): its own error."""
    (tmp_path / "needs_more.py").write_text("import a_package_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    add_yaml(configs, "model", "more", "_target_: needs_more.Net\nname: more\n")
    with pytest.raises(ConfigError, match=re.escape("model._target_='needs_more.Net': expected a model class whose "
                                                    "arguments match configs/model/ (ModuleNotFoundError: No module "
                                                    "named 'a_package_not_installed')")):
        train(compose(*fast_overrides(tiny_root), "model=more", config_dir=configs), run_dir=tmp_path / "run")


def test_a_model_option_that_does_not_fit_its_class_is_named(configs, tiny_root, tmp_path):
    add_yaml(configs, "model", "broken", """\
        _target_: lenet_exp.models.lenet5.LeNet5
        name: broken
        depth: 3
        """)
    cfg = compose(*fast_overrides(tiny_root), "model=broken", config_dir=configs)
    with pytest.raises(UserError, match=re.escape("model.depth=3: lenet_exp.models.lenet5.LeNet5 takes no argument "
                                                  "depth. Leave it out")):  # it blamed model._target_
        train(cfg, run_dir=tmp_path / "run")
