"""The typed schema of the whole configuration: one home for each default and each choice.

Hydra merges the YAML files of ``configs/`` on top of these dataclasses, so an unknown key, a value of
the wrong type or a choice outside an Enum fails at composition (run.py puts Hydra's error in one line:
lenet_exp/command_line_errors/). The rule for where a value lives:

- a setting outside the config groups (``trainer.*``, ``seed``, ``task``): here, as the field default;
- a config group option (``model/lenet5.yaml``, ``optimizer/sgd.yaml``, ...): in its YAML file, which
  names its schema here in its defaults list (``/schema_optimizer_adam@_here_``); a default shared by
  every option of a group (``dataset.val_size``) is the schema's field default instead.

A YAML option without a schema (a new torch optimizer, a new model) composes untyped and is checked
when it is instantiated. Ranges that a type cannot express are checked by :func:`lenet_exp.validation.validate`
before any data is loaded. This module must not import torch: ``python run.py --help`` and ``--cfg job`` need it.
"""

from __future__ import annotations

import dataclasses
from collections import abc
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar, Collection, List, Mapping, NamedTuple, Optional, Sequence

from omegaconf import MISSING

from lenet_exp.errors import shown
from lenet_exp.overrides import as_written, override_key


class Choice(str, Enum):
    """An Enum whose members equal their names as strings (``Activation.relu == "relu"``)."""

    def __str__(self) -> str:
        return self.value


class Activation(Choice):
    relu = "relu"
    tanh = "tanh"


class Pooling(Choice):
    max = "max"
    avg = "avg"


class ResizeMode(Choice):
    resize = "resize"  # bilinear 28 -> 32, the tutorial's
    pad = "pad"  # LeCun's zero border


class DeviceType(Choice):
    auto = "auto"  # CUDA when a GPU is visible, otherwise the CPU
    cpu = "cpu"
    cuda = "cuda"  # a CUDA GPU, or a clear error (never a silent fallback to the CPU)


class Precision(Choice):
    fp32 = "fp32"
    bf16 = "bf16"


class Monitor(Choice):
    val_acc = "val_acc"  # the highest
    val_loss = "val_loss"  # the lowest


class Task(Choice):
    train = "train"
    eval = "eval"
    predict = "predict"


# A setting added to a schema after runs were saved without it: its field's metadata names the value that does
# what those runs did (null's goes without saying), or those runs cannot go on (config_differences).
AS_BEFORE = "as_before_it_existed"


def as_before_it_existed(value: Any) -> dict:
    return {AS_BEFORE: value}


# ------------------------------------------------------------------------------- config groups
LENET5_CLASS = "lenet_exp.models.lenet5.LeNet5"


@dataclass
class LeNet5Config:  # configs/model/lenet5*.yaml
    _target_: str = LENET5_CLASS
    name: str = MISSING
    activation: Activation = MISSING
    pooling: Pooling = MISSING
    batch_norm: bool = MISSING
    conv_channels: List[int] = MISSING
    hidden: List[int] = MISSING
    dropout: float = 0.0


# torchvision's data sets read exactly as MNIST is: its four IDX files, one label per image. (EMNIST needs a
# split, QMNIST has other files and eight label columns.)
READ_AS_MNIST = ("MNIST", "FashionMNIST", "KMNIST")
NATIVE_SIZE = 28  # the side of every image of the MNIST (IDX) family, in pixels


@dataclass
class IdxDatasetConfig:  # configs/dataset/*.yaml: a torchvision data set of the MNIST (IDX) family
    name: str = MISSING
    torchvision_class: str = MISSING  # e.g. MNIST: read from <root>/MNIST/raw/
    num_classes: int = MISSING
    # Pixel statistics in [0, 1]; null computes them from the training images (val excluded).
    mean: Optional[float] = MISSING
    std: Optional[float] = MISSING
    root: str = "${oc.env:LENET_EXP_DATA,data}"  # the folder holding <torchvision_class>/raw/
    download: bool = True
    val_size: int = 5000
    # train on the first N of the images left after val, in the split's seeded order (null: all of them): a
    # learning curve's smaller sets, each within the larger
    train_size: Optional[int] = None
    split_seed: int = 0  # the val split stays the same across training seeds
    image_size: int = 32
    resize_mode: ResizeMode = ResizeMode.resize


@dataclass
class AdamConfig:  # configs/optimizer/adam.yaml, adamw.yaml
    _target_: str = MISSING
    lr: float = MISSING
    weight_decay: float = MISSING
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])


@dataclass
class SGDConfig:  # configs/optimizer/sgd.yaml
    _target_: str = "torch.optim.SGD"  # (a YAML of one's own that names this schema may leave it out)
    lr: float = MISSING
    weight_decay: float = MISSING
    momentum: float = MISSING
    nesterov: bool = MISSING


# Each schedule says whether its learning rate at a step depends on trainer.epochs (spreads over them): a run of
# one that does not may go on to more epochs (run_of_other_length). A kind without the flag fails at import.
@dataclass
class NoScheduleConfig:
    spreads_over_epochs: ClassVar[bool] = False
    name: str = "none"


@dataclass
class CosineConfig:  # from optimizer.lr to optimizer.lr * min_lr_ratio over all training steps
    spreads_over_epochs: ClassVar[bool] = True
    name: str = "cosine"
    min_lr_ratio: float = MISSING


@dataclass
class StepConfig:  # lr * gamma every step_epochs epochs
    spreads_over_epochs: ClassVar[bool] = False
    name: str = "step"
    step_epochs: int = MISSING
    gamma: float = MISSING


@dataclass
class OneCycleConfig:  # warm-up to optimizer.lr over pct_start of the steps, then anneal
    spreads_over_epochs: ClassVar[bool] = True
    name: str = "onecycle"
    pct_start: float = MISSING


@dataclass
class NoAugmentConfig:
    name: str = "none"


@dataclass
class AffineConfig:  # configs/augment/affine.yaml
    name: str = "affine"
    hflip: bool = False  # mirror half of the images left-right: true for clothing (mirror-symmetric), not digits
    degrees: float = MISSING  # max rotation
    translate: float = MISSING  # max shift as a fraction of the image side
    scale: List[float] = MISSING  # zoom range
    shear: float = MISSING  # max shear in degrees
    erase_p: float = 0.0  # random erasing (Zhong et al. 2017): share of images with a rectangle of noise, e.g. 0.5
    erase_area: List[float] = field(default_factory=lambda: [0.02, 0.4])  # its area, as a share of the image
    erase_ratio: List[float] = field(default_factory=lambda: [0.3, 3.3])  # its height / width


@dataclass
class ElasticConfig(AffineConfig):  # configs/augment/elastic.yaml: Simard et al. (2003) on top of affine
    name: str = "elastic"
    elastic_alpha: float = MISSING  # scale of the random field before smoothing, in pixels
    elastic_sigma: float = MISSING  # smoothness of the displacement field in pixels


@dataclass
class DeviceConfig:  # configs/device/*.yaml
    type: DeviceType = MISSING
    threads: Optional[int] = None  # CPU threads; null: the cores divided among jobs running at once


# what a data set's YAML needs (configs/dataset/): the schema gives it every field, and checks its keys
def schema_name(group: str, kind: str) -> str:
    """The name that a YAML of ``group`` gives its schema in its defaults list: ``schema_optimizer_adam``."""
    return f"schema_{group}_{kind}"


def begins_with_its_schema(group: str, option: str, kind: str) -> str:
    """How a YAML of one's own names its schema: as ``configs/<group>/<option>.yaml`` does."""
    return (f"a YAML that begins as configs/{group}/{option}.yaml does, with "
            f"`defaults: [/{schema_name(group, kind)}@_here_, _self_]`")


DATASET_SCHEMA = begins_with_its_schema("dataset", "mnist", "idx")


def by_name(*kinds: type) -> dict[str, type]:
    """Schemas of a group whose options each hold the name of their kind (scheduler, augment), by that name."""
    return {kind.name: kind for kind in kinds}


GROUP_SCHEMAS = {
    "model": {"lenet5": LeNet5Config},
    "dataset": {"idx": IdxDatasetConfig},
    "optimizer": {"adam": AdamConfig, "sgd": SGDConfig},
    "scheduler": by_name(NoScheduleConfig, CosineConfig, StepConfig, OneCycleConfig),
    "augment": by_name(NoAugmentConfig, AffineConfig, ElasticConfig),
    "device": {"device": DeviceConfig},
}
PRESETS = "experiment"  # the group whose options set keys of every other (# @package _global_)
# The groups whose option each training run's HParams show, as Hydra chose it (a preset has no setting of its own)
CHOSEN_IN_HPARAMS = ("model", "dataset", "optimizer", "scheduler", "augment", PRESETS)
STUDY_GROUP = "sweep"  # the group whose options are search spaces (configs/sweep/)


def shown_in_hparams(group: str) -> bool:
    """Whether HParams shows the option Hydra chose of ``group``: of those above, and of a group of one's own
    (``+trial=a,b``: a sweep of chosen combinations); not the device, the search space nor Hydra's own."""
    return group in CHOSEN_IN_HPARAMS or group not in (*GROUP_SCHEMAS, STUDY_GROUP) and not group.startswith("hydra/")


class Composed(NamedTuple):
    """What compose() made a config of, which a run of train() has no .hydra/ record of (its HParams and card
    show them): the option of each config group that Hydra chose, the overrides as given, and the config as
    it made it (a caller may change it before train())."""
    choices: dict[str, Optional[str]]
    overrides: list[str]
    made: dict

    def overrides_of(self, config: Any) -> list[str]:
        """The overrides that make ``config``: those compose() was given, then each setting changed since."""
        changed = config_differences(self.made, to_dict(config)) if self.made else []
        return [*self.overrides, *(f"{change.key}={shown(change.new)}" for change in changed)]

    def choices_of(self, config: Any) -> dict[str, Optional[str]]:
        """The option of each config group of ``config``: Hydra's choice, where the group's node is still the one
        it chose (not another option's put in its place), else as the node shows it (:func:`options_shown`), else
        by its name or class (a node of an option of one's own, or of a class that no option names)."""
        shown_now, made = options_shown(config), self.made or {}
        kept = {group: option for group, option in self.choices.items()
                if option_of(made.get(group)) == option_of(config.get(group))}
        named = {group: option_of(config.get(group)) for group in self.choices if option_of(config.get(group))}
        return {**named, **shown_now, **kept}


def option_of(node: Any) -> Optional[str]:
    """What tells a group's options apart in its node: its name (model, dataset, scheduler, augment), or its class
    (an optimizer)."""
    if not isinstance(node, abc.Mapping):
        return None
    return node.get("name") or node.get("_target_")


def options_shown(config: Any) -> dict[str, str]:
    """Each config group's option as ``config`` shows it, for a config without compose()'s record (a copy, a merge:
    the record is kept by the object): its name, or the option of configs/optimizer/ that names its class."""
    from lenet_exp import CONFIGS

    shown_options = {group: str(config[group]["name"]) for group in ("model", "dataset", "scheduler", "augment")
                     if isinstance(config.get(group), abc.Mapping) and config[group].get("name")}
    target = option_of(config.get("optimizer"))
    named = [path.stem for path in sorted((Path(CONFIGS) / "optimizer").glob("*.yaml"))
             if f"_target_: {target}\n" in path.read_text()] if target else []
    return {**shown_options, **({"optimizer": named[0]} if len(named) == 1 else {})}


_COMPOSED: dict[int, Composed] = {}  # id of a config that compose() made -> how, for as long as it lives


def remember_composition(config: Any, composed: Composed) -> None:
    import weakref

    _COMPOSED[id(config)] = composed
    weakref.finalize(config, _COMPOSED.pop, id(config), None)


def composition(config: Any) -> Composed:
    """:func:`remember_composition`'s record of ``config``; an empty one for another config (run.py's)."""
    return _COMPOSED.get(id(config), Composed({}, [], {}))


# ------------------------------------------------------------------------------ outside groups
@dataclass
class TrainerConfig:
    epochs: int = 10
    batch_size: int = 64
    eval_batch_size: int = 1000
    limit_batches: Optional[int] = None  # at most this many batches per epoch, val and test: a smoke run
    label_smoothing: float = 0.0
    tta_hflip: bool = False  # val and test predictions also average the mirror image (clothing, not digits)
    tta_shift: int = 0  # ... and the four shifts by this many pixels (0: none)
    ema_decay: Optional[float] = None  # e.g. 0.999: evaluate an exponential moving average of the weights
    deterministic: bool = False
    channels_last: Optional[bool] = None  # NHWC weights; null: a CUDA run's, the fused CPU kernel's, a CPU group's
    compile: bool = False  # torch.compile the model (pays ~30 s or more to compile)
    cuda_graphs: Optional[bool] = None  # replay each training step from one CUDA graph; null: on for CUDA unless compile
    # CUDA: time cuDNN's algorithms per shape; null: for a stacked group (its sweep 0.89x the wall time at
    # N = 16 on an H200), not for a single run (no faster there, and it costs start-up time)
    cudnn_benchmark: Optional[bool] = None
    # CPU training: BatchNorm+max-pool+ReLU of each block in one C++ kernel (1.2x per step);
    # null: on where it compiles (g++, ninja; ~30 s once per machine)
    fused_cpu_kernels: Optional[bool] = None
    precision: Precision = Precision.fp32  # bf16: autocast (on the CPU slower for this model)
    progress: bool = True  # a progress bar per epoch on the console
    log_images: bool = True  # confusion matrix and misclassified test images in TensorBoard
    checkpoint_every: int = 1  # write checkpoints/last.pt every N epochs, on a new best epoch and at the end
    # selects the best epoch (best.pt, tested); early stopping waits on it
    monitor: Monitor = field(default=Monitor.val_acc, metadata=as_before_it_existed(Monitor.val_acc.value))
    early_stop_patience: Optional[int] = None  # end training after N epochs without a better monitor (null: never)
    grad_clip_norm: Optional[float] = None  # scale each step's gradients to at most this L2 norm (null: never)


@dataclass
class Config:
    # the groups: typed by their option's schema, untyped for an option without one
    model: Any = MISSING
    dataset: Any = MISSING
    optimizer: Any = MISSING
    scheduler: Any = MISSING
    augment: Any = MISSING
    device: Any = MISSING
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    seed: int = 0
    # the data order's and augmentation's seed (null: seed's): trials of a stacked group with one data order
    # share each batch and its first layer's input (docs/usage.md#stacked-sweeps)
    data_seed: Optional[int] = None
    task: Task = Task.train  # train | eval (needs ckpt=...) | predict (needs ckpt=... image=...)
    ckpt: Optional[str] = None  # eval / predict: the checkpoint file to load
    image: Optional[str] = None  # predict: a PNG or JPEG image


TOP_LEVEL = tuple(f.name for f in dataclasses.fields(Config))  # every run's sections and run settings


def sets_a_preset(key: str) -> bool:
    """Whether an override's top-level ``key`` chooses a preset (experiment=…) or a group of one's own (+extra=foo):
    no setting of the run's, but one that may set any of them."""
    return "." not in key and key not in TOP_LEVEL


ROOT_SCHEMA = "lenet_exp_schema"  # configs/config.yaml's first default


def register_configs() -> None:
    """Store the schemas: the root one that configs/config.yaml lists first, and one per group option
    (``/schema_<group>_<name>``) for the YAML files of ``configs/<group>/`` to name. They are configs
    of the root, not options of a group, so that ``--help`` lists only the groups a user chooses from."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(name=ROOT_SCHEMA, node=Config)
    for group, schemas in GROUP_SCHEMAS.items():
        for name, node in schemas.items():
            store.store(name=schema_name(group, name), node=node)


# ------------------------------------------------------------------------ what each task reads
PREPROCESSING_KEYS = ("image_size", "resize_mode", "mean", "std")  # of a checkpoint's "preprocessing"
# How a run's final test saw its model besides the weights: eval and predict do the same unless told otherwise
TEST_SETTINGS = ("tta_hflip", "tta_shift", "precision")
# What each task reads of the command line (a key or its group); the rest says how to train, and is said unused.
# The model is the checkpoint's, and dataset.image_size & co. are said unused with the values used instead.
READ_BY = {
    "eval": ("task", "ckpt", "dataset", "device", "trainer.eval_batch_size", "trainer.limit_batches",
             "trainer.log_images", "trainer.progress", "trainer.ema_decay",
             *(f"trainer.{key}" for key in TEST_SETTINGS)),
    "predict": ("task", "ckpt", "image", "device", "trainer.progress", "trainer.ema_decay",
                *(f"trainer.{key}" for key in TEST_SETTINGS), *(f"dataset.{key}" for key in PREPROCESSING_KEYS)),
}


# which of the train split's images a run trains and validates on: no test reads them
TRAINING_SPLIT_KEYS = ("dataset.val_size", "dataset.train_size", "dataset.split_seed")


def read_by(task: str, key: str) -> bool:
    """Whether ``task`` reads ``key`` (train reads every setting)."""
    if task not in READ_BY:
        return True
    return key not in TRAINING_SPLIT_KEYS and any(key == read or key.startswith(read + ".") for read in READ_BY[task])


# ------------------------------------------------------- flat settings: which change results, which do not

def setting_in(config: Any, key: str) -> Any:
    """``key`` (``optimizer.lr``) of a config as plain dicts hold it (a record's, or one unresolved); None where it
    has none."""
    for part in key.split("."):
        config = config.get(part) if isinstance(config, Mapping) else None
    return config


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, int | float | str | bool | None]:
    """Nested config -> {"optimizer.lr": 0.001, ...} with the value types the HParams plugin takes, and None."""
    flat: dict[str, int | float | str | bool | None] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, Enum):
            flat[name] = str(value.value)
        elif value is None or isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:  # lists
            flat[name] = str(value)
    return flat


# Keys that say where the data is, not which data: `dataset.root=...` keeps a checkpoint's data set.
LOCATION_KEYS = ("dataset.root", "dataset.download")


def settings_named(overrides: Sequence[str]) -> set[str]:
    """The config keys that ``overrides`` choose, e.g. {"dataset", "ckpt", "model.dropout"}: those that an
    evaluation takes instead of its checkpoint's (not where the checkpoint's own data set is: LOCATION_KEYS)."""
    return {override_key(o) for o in overrides} - set(LOCATION_KEYS)


EVAL_BATCH_SIZE = "trainer.eval_batch_size"
# how long a run trains, the settings it may change and go on from the epochs it has (run_of_other_length)
EPOCHS = "trainer.epochs"
EARLY_STOP_PATIENCE = "trainer.early_stop_patience"
# Settings (key prefixes) that do not change what a job computes: where the data lives, which device
# and how fast it runs there (not precision, which changes the arithmetic), and what is shown. A run or
# a sweep may be continued with other values of these.
HOW_FAST = ("device.", "trainer.cuda_graphs", "trainer.channels_last", "trainer.cudnn_benchmark", "trainer.compile",
            "trainer.fused_cpu_kernels")
WHERE_AND_HOW_FAST = (*LOCATION_KEYS, *HOW_FAST, "trainer.progress", "trainer.log_images", EVAL_BATCH_SIZE,
                      "trainer.checkpoint_every")
# ... nor a run's results, which is also true of what the eval / predict tasks read: TensorBoard's HParams
# leave these out. (But for the eval batch size where trainer.limit_batches caps validation and test at that
# many batches: it then says which images a run is selected and tested on.)
NOT_RESULTS = (*WHERE_AND_HOW_FAST, "task", "ckpt", "image")


def where_or_how_fast(key: str, limit_batches: Optional[int] = None) -> bool:
    """Whether an override's key (``device``, ``device.threads``, ``dataset.root``) sets WHERE_AND_HOW_FAST,
    in a config of this ``trainer.limit_batches``."""
    if key == EVAL_BATCH_SIZE and limit_batches is not None:
        return False
    return f"{key}.".startswith(WHERE_AND_HOW_FAST)  # the dot: the group `device` is its keys' prefix


def result_settings(config: Mapping[str, Any],
                    named: Collection[str] = ()) -> dict[str, int | float | str | bool | None]:
    """The flattened settings that can change a run's results (its HParams), and the speed settings among the
    keys (or groups) ``named`` by the run's overrides: a sweep of them compares their speed."""
    flat = flatten(config)
    capped = flat.get("trainer.limit_batches") is not None

    def named_speed_setting(key: str) -> bool:
        return key.startswith(HOW_FAST) and any(key == name or key.startswith(f"{name}.") for name in named)

    return {key: value for key, value in flat.items()
            if not key.startswith(NOT_RESULTS) or (capped and key == EVAL_BATCH_SIZE) or named_speed_setting(key)}


def drawn_as_it_is(flat: dict) -> dict:
    """Flat settings with ``data_seed`` null (or absent, in a run saved before it existed) as ``seed``, which
    the data order then draws from: the two are one run."""
    if flat.get("data_seed") is None and "seed" in flat:
        return {**flat, "data_seed": flat["seed"]}
    return flat


class Change(NamedTuple):
    """A setting that differs between a run's config and another: ``key: old -> new`` in messages."""
    key: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.key}: {shown(self.old)} -> {shown(self.new)}"


def listed(changes: Sequence[Change], most: int = 3) -> str:
    """The first ``most`` changes, as a message lists them."""
    return "; ".join(map(str, changes[:most]))


# settings added since some runs were saved, at the value that does what those runs did (besides null's)
AS_BEFORE_IT_EXISTED = {prefix + setting.name: setting.metadata[AS_BEFORE]
                        for prefix, schema in [("", Config), ("trainer.", TrainerConfig),
                                               *((f"{group}.", kind) for group, kinds in GROUP_SCHEMAS.items()
                                                 for kind in kinds.values())]
                        for setting in dataclasses.fields(schema) if AS_BEFORE in setting.metadata}


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[Change]:
    """Each setting that differs and would change the run's results. A setting added since the run was
    saved, left at what the run did without it (null, as ``data_seed``'s; :data:`AS_BEFORE_IT_EXISTED`), is
    no difference."""
    saved_flat, current_flat = (drawn_as_it_is(result_settings(config)) for config in (saved, current))
    if EVAL_BATCH_SIZE not in saved_flat.keys() & current_flat.keys():  # capped on one side: limit_batches differs
        saved_flat.pop(EVAL_BATCH_SIZE, None)
        current_flat.pop(EVAL_BATCH_SIZE, None)
    saved_flat = {**{key: value for key, value in AS_BEFORE_IT_EXISTED.items() if key in current_flat}, **saved_flat}
    added_null = {key for key, value in current_flat.items() if key not in saved_flat and value is None}
    return [
        Change(key, saved_flat.get(key), current_flat.get(key))
        for key in sorted(set(saved_flat) | set(current_flat))
        if saved_flat.get(key) != current_flat.get(key) and key not in added_null
    ]


def differences_besides_length(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[Change]:
    """:func:`config_differences` but trainer.epochs and the patience: those of one run trained on to another
    length."""
    return [change for change in config_differences(saved, current) if change.key not in (EPOCHS, EARLY_STOP_PATIENCE)]


# schedules whose learning rate at a step does not depend on trainer.epochs: their epochs so far are those
# of the same run given more epochs, which may therefore go on from them
SCHEDULES_WITHOUT_AN_END = tuple(name for name, kind in GROUP_SCHEMAS["scheduler"].items()
                                 if not kind.spreads_over_epochs)
SCHEDULES_WITH_AN_END = tuple(name for name, kind in GROUP_SCHEMAS["scheduler"].items() if kind.spreads_over_epochs)


def more_patient(saved: Optional[int], patience: Optional[int]) -> bool:
    """Whether trainer.early_stop_patience ``patience`` stops a run no sooner than ``saved`` did, whatever its
    val: null (never), or as many epochs or more."""
    return patience is None or (saved is not None and patience >= saved)


def run_of_other_length(saved: Mapping[str, Any], current: Mapping[str, Any], trained: Optional[int] = None) -> bool:
    """Whether ``current`` is the run ``saved`` given another length and nothing else, so that the epochs it
    trained are those of the other run, which goes on from them (``python run.py resume=<run dir>
    trainer.epochs=20``): another trainer.epochs with a schedule that does not spread over them, more epochs
    or fewer down to the ``trained`` epochs the run has (a train-on stopped early goes back to the run it was);
    and more trainer.early_stop_patience (a run stopped early goes on), which stops it no sooner."""
    changed = {change.key: change for change in config_differences(saved, current)}
    if not changed or not changed.keys() <= {EPOCHS, EARLY_STOP_PATIENCE}:
        return False
    patience = changed.get(EARLY_STOP_PATIENCE)
    if patience and not more_patient(patience.old, patience.new):
        return False
    epochs = current["trainer"]["epochs"]
    return EPOCHS not in changed or (
        (epochs > saved["trainer"]["epochs"] or (trained is not None and epochs >= trained))
        and (current.get("scheduler") or {}).get("name") in SCHEDULES_WITHOUT_AN_END)


def as_literal(value: Any) -> Any:
    """``value`` (a config's plain values) with each '${' of its strings escaped: OmegaConf takes a string put
    into a config for an interpolation, and a folder's name may hold '${' (run.py quotes such a path)."""
    if isinstance(value, dict):
        return {key: as_literal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_literal(item) for item in value]
    return value.replace("${", "\\${") if isinstance(value, str) else value


def job_overrides() -> list[str]:
    """This job's command-line overrides as written (none where no Hydra runs: the Python API's cfg)."""
    from hydra.core.hydra_config import HydraConfig

    return as_written(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def named_in_overrides() -> set[str]:
    """The keys that this job's command line sets."""
    return {override_key(o) for o in job_overrides()}


def as_overridden(key: str) -> str:
    """``key`` as this job's command line wrote it: ``+optimizer.momentum`` where a plus added it to the
    option's YAML (and the fix needs the plus again), else ``key``."""
    return next((written for written in (o.split("=", 1)[0] for o in job_overrides()) if written.lstrip("+") == key),
                key)


def chosen_option(group: str) -> Optional[str]:
    """The option of ``group`` that this job chose (``sgd``); None where Hydra does not say (the Python API)."""
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get().runtime.choices.get(group) if HydraConfig.initialized() else None


def option_yaml(group: str) -> str:
    """The YAML of ``group``'s option this job chose, e.g. ``optimizer/rms.yaml`` (in configs/, or in a
    --config-dir of one's own); ``configs/<group>/`` where Hydra does not say (the Python API)."""
    choice = chosen_option(group)
    return f"{group}/{choice}.yaml" if choice else f"configs/{group}/"


def without_hydra(config: Any) -> Any:
    """A copy of a composed config without its ``hydra`` node, the task's config as a job gets it (the node,
    most of the config, is not copied: an empty one stands in for it, then goes)."""
    import copy

    from omegaconf import DictConfig, open_dict, read_write

    task = copy.deepcopy(config, memo={id(config._get_node("hydra")): DictConfig({})})
    with read_write(task), open_dict(task):
        del task["hydra"]
    return task


def to_dict(cfg: Any) -> dict:
    """The resolved config as plain Python values (Enums as their names): what files record."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
