"""Every option of every config group composes against the schema; bad values are refused early."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ValidationError

from lenet_exp.errors import ConfigError
from lenet_exp.models import build_model
from lenet_exp.optim import build_optimizer, build_scheduler
from lenet_exp.config import register_configs
from lenet_exp.validation import validate

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
GROUPS = ["model", "dataset", "optimizer", "scheduler", "augment", "device"]

register_configs()


def compose_with(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))


def test_default_recipe_is_the_tutorials():
    cfg = compose_with()
    assert (cfg.model.name, cfg.model.activation, cfg.model.pooling, cfg.model.batch_norm) == ("lenet5", "relu", "max", True)
    assert (cfg.dataset.name, cfg.dataset.image_size, cfg.dataset.val_size) == ("mnist", 32, 5000)
    assert (cfg.dataset.mean, cfg.dataset.std) == (0.1307, 0.3081)  # train statistics, for val and test too
    assert (cfg.optimizer._target_, cfg.optimizer.lr, cfg.trainer.batch_size, cfg.trainer.epochs) == ("torch.optim.Adam", 1e-3, 64, 10)
    assert (cfg.scheduler.name, cfg.augment.name, cfg.trainer.label_smoothing, cfg.trainer.ema_decay) == ("none", "none", 0.0, None)
    assert cfg.seed == 0
    validate(cfg)


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_group_option_composes_and_validates(group, option):
    cfg = compose_with(f"{group}={option}")
    validate(cfg)
    identity = cfg[group].get("name") or cfg[group].get("type") or cfg[group]._target_.rpartition(".")[2].lower()
    assert identity == option
    model = build_model(cfg.model, cfg.dataset.num_classes, cfg.dataset.image_size)
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 10)
    # and what the run builds of it: a schedule's code missing was a traceback once the data had loaded
    scheduler = build_scheduler(cfg.scheduler, build_optimizer(cfg.optimizer, model), cfg.trainer.epochs, 100)
    assert (scheduler is None) == (cfg.scheduler.name == "none")


def test_each_group_has_options():
    assert {g: len(options(g)) for g in GROUPS} == {
        "model": 2, "dataset": 2, "optimizer": 3, "scheduler": 4, "augment": 3, "device": 3}


def test_data_root_reads_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LENET_EXP_DATA", str(tmp_path))
    assert compose_with().dataset.root == str(tmp_path)
    monkeypatch.delenv("LENET_EXP_DATA")
    assert compose_with().dataset.root == "data"


def test_unknown_key_fails_at_composition():
    with pytest.raises(ConfigCompositionException):
        compose_with("trainer.epochz=3")


def test_added_key_fails_validation():
    with pytest.raises(ConfigError, match="model.depth"):  # `+key=` slips past Hydra's struct check
        validate(compose_with("+model.depth=3"))


@pytest.mark.parametrize("overrides, chosen", [
    (["scheduler.name=cosine"], "none"), (["scheduler=cosine", "scheduler.name=none"], "cosine"),
    (["augment=elastic", "augment.name=affine"], "elastic"),
])
def test_a_name_other_than_its_options_is_refused(overrides, chosen):
    """scheduler.name=cosine crashed on the schema's missing keys; augment=elastic augment.name=affine trained
    affine alone, recorded as elastic."""
    key = overrides[-1].split("=")[0]
    with pytest.raises(ConfigError, match=f"{key}='.*': expected '{chosen}', the option chosen. Choose the "):
        validate(compose_with(*overrides))


@pytest.mark.parametrize("override", ["trainer.epochs=three", "optimizer.lr=fast", "model.batch_norm=maybe"])
def test_wrong_type_fails_at_composition(override):
    with pytest.raises((ConfigCompositionException, ValidationError)):
        compose_with(override)


@pytest.mark.parametrize("override,options", [
    ("model.activation=gelu", "relu, tanh"), ("model.pooling=min", "max, avg"), ("trainer.precision=fp16", "fp32, bf16"),
    ("dataset.resize_mode=crop", "resize, pad"), ("device.type=tpu", "auto, cpu, cuda"), ("task=fit", "train, eval, predict"),
])
def test_a_choice_outside_its_enum_fails_at_composition_listing_the_options(override, options):
    with pytest.raises(ConfigCompositionException) as caught:
        compose_with(override)
    assert f"expected one of [{options}]" in str(caught.value.__cause__ or caught.value)


def test_the_schema_and_the_entry_point_import_no_torch():
    modules = "lenet_exp.config, lenet_exp.launch, lenet_exp.slots, lenet_exp.overrides, lenet_exp.resume"
    code = f"import sys, {modules}; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("override,key", [
    ("optimizer.lr=0", "optimizer.lr"),
    ("optimizer.lr=-1e-3", "optimizer.lr"),
    ("trainer.batch_size=0", "trainer.batch_size"),
    ("trainer.epochs=0", "trainer.epochs"),
    ("dataset.val_size=0", "dataset.val_size"),
    ("trainer.label_smoothing=1.5", "trainer.label_smoothing"),
    ("trainer.grad_clip_norm=0", "trainer.grad_clip_norm"),
    ("trainer.early_stop_patience=0", "trainer.early_stop_patience"),
    ("dataset.train_size=0", "dataset.train_size"),
    ("task=eval", "ckpt"),
])
def test_out_of_range_values_name_the_key_value_and_allowed(override, key):
    with pytest.raises(ConfigError) as caught:
        validate(compose_with(override))
    message = str(caught.value)
    assert key in message and "expected" in message


@pytest.mark.parametrize("experiment,dataset", [("mnist_best", "mnist"), ("fashion_best", "fashion_mnist")])
def test_experiment_presets_override_the_default_recipe(experiment, dataset):
    cfg = compose_with(f"experiment={experiment}")
    validate(cfg)
    assert cfg.dataset.name == dataset and cfg.augment.name != "none" and cfg.trainer.epochs <= 30
    assert (cfg.model.conv_channels, cfg.model.hidden) == ([6, 16], [120, 84])  # LeNet-5's layer sizes
    assert compose_with(f"experiment={experiment}", "trainer.epochs=2").trainer.epochs == 2  # still overridable


def test_a_resumed_run_may_change_where_and_how_fast_it_runs_but_not_what_it_computes():
    from lenet_exp.config import config_differences as changes

    def config_differences(saved, current):  # as messages show them
        return list(map(str, changes(saved, current)))

    saved = {"dataset": {"root": "a"}, "trainer": {"cuda_graphs": None, "channels_last": None, "compile": False,
                                                   "cudnn_benchmark": False, "precision": "fp32", "epochs": 10}}
    faster = {"dataset": {"root": "b"}, "trainer": {"cuda_graphs": False, "channels_last": True, "compile": True,
                                                    "cudnn_benchmark": True, "fused_cpu_kernels": False,
                                                    "precision": "fp32", "epochs": 10}}
    assert config_differences(saved, faster) == []
    other = {**faster, "trainer": {**faster["trainer"], "precision": "bf16", "epochs": 20}}
    assert config_differences(saved, other) == ["trainer.epochs: 10 -> 20", "trainer.precision: 'fp32' -> 'bf16'"]
    # a run saved before data_seed existed trained as data_seed=null does; not as another data_seed
    assert config_differences(saved, {**faster, "data_seed": None}) == []
    assert config_differences(saved, {**faster, "data_seed": 3}) == ["data_seed: null -> 3"]
    # data_seed=null draws the data order from seed: naming that seed is the same run (it was refused)
    seeded = {**saved, "seed": 3, "data_seed": None}
    assert config_differences(seeded, {**faster, "seed": 3, "data_seed": 3}) == []
    assert config_differences({**saved, "seed": 3}, {**faster, "seed": 3, "data_seed": 3}) == []
    assert config_differences(seeded, {**faster, "seed": 3, "data_seed": 4}) == ["data_seed: 3 -> 4"]
    # the eval batch size is a speed setting, but under trainer.limit_batches it says which images are validated
    # and tested (the first N batches'): a resumed run validated its epochs on two sets and selected among them
    assert config_differences({"trainer": {"eval_batch_size": 1000}}, {"trainer": {"eval_batch_size": 500}}) == []
    capped = {"trainer": {"limit_batches": 4, "eval_batch_size": 1000}}
    assert config_differences(capped, {"trainer": {"limit_batches": 4, "eval_batch_size": 500}}) == [
        "trainer.eval_batch_size: 1000 -> 500"]
    assert config_differences(capped, {"trainer": {"limit_batches": None, "eval_batch_size": 1000}}) == [
        "trainer.limit_batches: 4 -> null"]  # not the eval batch size, the same on both sides


def test_a_key_as_the_command_line_wrote_it_is_read_without_resolving_the_overrides():
    """A ``${…}`` among the overrides of the command Hydra ran last in the process (``data_seed=${oops}``, refused)
    was resolved as they were read: the next command's message for an unknown key became "hydra.run.dir cannot be
    resolved"."""
    from hydra.core.hydra_config import HydraConfig

    from lenet_exp import CONFIGS
    from lenet_exp.config import as_overridden

    with initialize_config_dir(config_dir=str(CONFIGS), version_base=None):
        cfg = compose("config", overrides=["data_seed=${oops}", "optimizer=sgd", "++optimizer.momentum=0.5"],
                      return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    try:
        assert as_overridden("optimizer.momentum") == "++optimizer.momentum"
        assert as_overridden("trainer.epochs") == "trainer.epochs"
    finally:
        HydraConfig.instance().cfg = None


def test_a_config_error_pickles_as_it_was_said():
    """A joblib worker's error comes back pickled: ConfigError's own arguments could not be made again."""
    import pickle

    error = pickle.loads(pickle.dumps(ConfigError("optimizer.lr", -1.0, "a number > 0")))
    assert isinstance(error, ConfigError) and str(error).startswith("Invalid config value optimizer.lr=-1.0: expected")
    assert str(error.for_python()).endswith("Compose it with another value, e.g. compose('optimizer.lr=...').")
