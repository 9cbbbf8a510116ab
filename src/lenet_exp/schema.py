"""Typed schema of the whole configuration, registered in Hydra's ConfigStore.

Hydra merges every YAML file on top of these dataclasses, so an unknown key or a value of the wrong
type fails at composition with Hydra's own message. Ranges and choices that a type cannot express
are checked by :func:`validate` before any data is loaded.

This module must not import torch: ``python run.py --help`` and ``--cfg job`` only need it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Mapping, Optional

from lenet_exp.errors import ConfigError


@dataclass
class ModelConfig:
    name: str = "lenet5"
    activation: str = "relu"  # relu | tanh
    pooling: str = "max"  # max | avg
    batch_norm: bool = True
    conv_channels: List[int] = field(default_factory=lambda: [6, 16])
    hidden: List[int] = field(default_factory=lambda: [120, 84])
    dropout: float = 0.0


@dataclass
class DatasetConfig:
    name: str = "mnist"  # mnist | fashion_mnist
    root: str = "data"
    download: bool = True
    num_classes: int = 10
    val_size: int = 5000
    split_seed: int = 0  # the val split stays the same across training seeds
    image_size: int = 32
    resize_mode: str = "resize"  # resize (bilinear, the tutorial's) | pad (LeCun's zero border)
    # Pixel statistics in [0, 1]; null computes them from the training images (val excluded).
    mean: Optional[float] = None
    std: Optional[float] = None


@dataclass
class OptimizerConfig:
    name: str = "adam"  # adam | adamw | sgd
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    momentum: float = 0.9  # sgd only
    nesterov: bool = False  # sgd only


@dataclass
class SchedulerConfig:
    name: str = "none"  # none | cosine | step | onecycle
    step_epochs: int = 10  # step: decay every this many epochs
    gamma: float = 0.1  # step: decay factor
    min_lr_ratio: float = 0.0  # cosine: final lr as a fraction of optimizer.lr
    pct_start: float = 0.25  # onecycle: fraction of steps spent warming up


@dataclass
class AugmentConfig:
    name: str = "none"  # none | affine | elastic
    hflip: bool = False  # mirror half of the images left-right (clothing, not digits)
    degrees: float = 0.0  # affine: max rotation
    translate: float = 0.0  # affine: max shift as a fraction of the image side
    scale: List[float] = field(default_factory=lambda: [1.0, 1.0])  # affine: zoom range
    shear: float = 0.0  # affine: max shear in degrees
    elastic_alpha: float = 0.0  # elastic: scale of the random field before smoothing, in pixels (Simard: 34)
    elastic_sigma: float = 4.0  # elastic: smoothness of the displacement field in pixels
    erase_p: float = 0.0  # random erasing (Zhong et al. 2017): share of images with a rectangle of noise
    erase_area: List[float] = field(default_factory=lambda: [0.02, 0.4])  # its area, as a share of the image
    erase_ratio: List[float] = field(default_factory=lambda: [0.3, 3.3])  # its height / width


@dataclass
class DeviceConfig:
    type: str = "auto"  # auto | cpu | cuda
    threads: Optional[int] = None  # CPU threads; null: cores divided among parallel jobs


@dataclass
class TrainerConfig:
    epochs: int = 10
    batch_size: int = 64
    eval_batch_size: int = 1000
    label_smoothing: float = 0.0
    tta_hflip: bool = False  # val and test predictions average the image and its mirror image
    tta_shift: int = 0  # ... and its four shifts by this many pixels (0: none)
    ema_decay: Optional[float] = None  # e.g. 0.999: evaluate an exponential moving average of weights
    deterministic: bool = False
    channels_last: Optional[bool] = None  # NHWC weights; null: on for CUDA (0-3 % faster there), off on the CPU
    compile: bool = False  # torch.compile the model
    cuda_graphs: Optional[bool] = None  # replay each training step from a CUDA graph; null: on for CUDA without compile
    cudnn_benchmark: bool = False  # CUDA: time cuDNN's algorithms per shape (no faster for LeNet on an H200)
    fused_cpu_kernels: Optional[bool] = None  # CPU: BatchNorm+max-pool+ReLU in one C++ kernel; null: on where it builds
    precision: str = "fp32"  # fp32 | bf16 (autocast; on the CPU it is slower for this model)
    progress: bool = True  # a progress bar per epoch on the console
    log_images: bool = True  # confusion matrix and misclassified test images in TensorBoard
    checkpoint_every: int = 1  # write checkpoints/last.pt every N epochs, on a new best val acc and at the end


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    seed: int = 0
    task: str = "train"  # train | eval | predict
    ckpt: Optional[str] = None  # eval / predict: the checkpoint file to load
    image: Optional[str] = None  # predict: a PNG or JPEG image


def register_configs() -> None:
    """Store the schema so that configs/config.yaml can list it first in its defaults."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="lenet_exp_schema", node=Config)


CHOICES = {
    "model.activation": ("relu", "tanh"),
    "model.pooling": ("max", "avg"),
    "dataset.name": ("mnist", "fashion_mnist"),
    "dataset.resize_mode": ("resize", "pad"),
    "optimizer.name": ("adam", "adamw", "sgd"),
    "scheduler.name": ("none", "cosine", "step", "onecycle"),
    "augment.name": ("none", "affine", "elastic"),
    "device.type": ("auto", "cpu", "cuda"),
    "trainer.precision": ("fp32", "bf16"),
    "task": ("train", "eval", "predict"),
}

# key -> (predicate, what is allowed)
RANGES = {
    "optimizer.lr": (lambda v: v > 0, "a number > 0"),
    "optimizer.weight_decay": (lambda v: v >= 0, "a number >= 0"),
    "optimizer.momentum": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "optimizer.betas": (lambda v: len(v) == 2 and all(0 <= beta < 1 for beta in v), "[beta1, beta2], each in [0, 1)"),
    "trainer.epochs": (lambda v: v >= 1, "an integer >= 1"),
    "trainer.batch_size": (lambda v: v >= 1, "an integer >= 1"),
    "trainer.eval_batch_size": (lambda v: v >= 1, "an integer >= 1"),
    "trainer.checkpoint_every": (lambda v: v >= 1, "an integer >= 1"),
    "trainer.label_smoothing": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "trainer.tta_shift": (lambda v: 0 <= v <= 4, "an integer in [0, 4] (pixels)"),
    "trainer.ema_decay": (lambda v: v is None or 0 < v < 1, "null or a number in (0, 1)"),
    "dataset.val_size": (lambda v: v >= 1, "an integer >= 1"),
    "dataset.num_classes": (lambda v: v >= 2, "an integer >= 2"),
    "dataset.image_size": (lambda v: v >= 28, "an integer >= 28 (the images are 28x28)"),
    "dataset.std": (lambda v: v is None or v > 0, "null or a number > 0"),
    "model.dropout": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "model.conv_channels": (lambda v: len(v) == 2 and min(v) >= 1, "two positive integers"),
    "model.hidden": (lambda v: len(v) >= 1 and min(v) >= 1, "one or more positive integers"),
    "scheduler.step_epochs": (lambda v: v >= 1, "an integer >= 1"),
    "scheduler.gamma": (lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "scheduler.min_lr_ratio": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "scheduler.pct_start": (lambda v: 0 < v < 1, "a number in (0, 1)"),
    "augment.scale": (lambda v: len(v) == 2 and 0 < v[0] <= v[1], "[min, max] with 0 < min <= max"),
    "augment.degrees": (lambda v: v >= 0, "a number >= 0"),
    "augment.translate": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "augment.shear": (lambda v: v >= 0, "a number >= 0"),
    "augment.elastic_alpha": (lambda v: v >= 0, "a number >= 0"),
    "augment.elastic_sigma": (lambda v: v > 0, "a number > 0"),
    "augment.erase_p": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "augment.erase_area": (lambda v: len(v) == 2 and 0 < v[0] <= v[1] <= 1, "[min, max] with 0 < min <= max <= 1"),
    "augment.erase_ratio": (lambda v: len(v) == 2 and 0 < v[0] <= v[1], "[min, max] with 0 < min <= max"),
    "device.threads": (lambda v: v is None or v >= 1, "null or an integer >= 1"),
}


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, int | float | str | bool]:
    """Nested config -> {"optimizer.lr": 0.001, ...} with the value types the HParams plugin takes."""
    flat: dict[str, int | float | str | bool] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:  # None, lists
            flat[name] = str(value)
    return flat


# Keys that may differ when a run is continued: where the data lives, which device and how fast it
# runs there (not precision, which changes the arithmetic), what is shown.
RESUMABLE_CHANGES = ("dataset.root", "dataset.download", "device.", "trainer.progress", "trainer.log_images",
                     "trainer.eval_batch_size", "trainer.checkpoint_every", "trainer.cuda_graphs",
                     "trainer.channels_last", "trainer.cudnn_benchmark", "trainer.compile",
                     "trainer.fused_cpu_kernels")


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``key: old -> new`` for each setting that differs and would change the run's results."""
    saved_flat, current_flat = flatten(saved), flatten(current)
    return [
        f"{key}: {saved_flat.get(key)!r} -> {current_flat.get(key)!r}"
        for key in sorted(set(saved_flat) | set(current_flat))
        if saved_flat.get(key) != current_flat.get(key) and not key.startswith(RESUMABLE_CHANGES)
    ]


def unknown_keys(cfg: Any, schema: Any, prefix: str = "") -> list[str]:
    """Keys of ``cfg`` that the schema lacks (Hydra lets ``+key=value`` add them)."""
    from omegaconf import DictConfig

    found = []
    for key in cfg:
        if key not in schema:
            found.append(f"{prefix}{key}")
        elif isinstance(cfg[key], DictConfig) and isinstance(schema[key], DictConfig):
            found += unknown_keys(cfg[key], schema[key], f"{prefix}{key}.")
    return found


def validate(cfg: Any) -> None:
    """Check the ranges and choices that the schema's types cannot, before any data is loaded."""
    from omegaconf import OmegaConf

    schema = OmegaConf.structured(Config)
    extra = unknown_keys(cfg, schema)
    if extra:
        section = extra[0].rpartition(".")[0]
        known = OmegaConf.select(schema, section) if section else schema
        raise ConfigError(extra[0], OmegaConf.select(cfg, extra[0]), "one of the schema's keys: " + ", ".join(known),
                          why="unknown key")
    for key, allowed in CHOICES.items():
        value = OmegaConf.select(cfg, key)
        if value not in allowed:
            raise ConfigError(key, value, "one of " + ", ".join(allowed))
    for key, (ok, allowed) in RANGES.items():
        value = OmegaConf.select(cfg, key)
        if not ok(value):
            raise ConfigError(key, value, allowed)
    if cfg.optimizer.name == "sgd" and cfg.optimizer.nesterov and cfg.optimizer.momentum == 0:
        raise ConfigError("optimizer.nesterov", True, "false with optimizer.momentum=0 (Nesterov needs momentum > 0)")
    if cfg.task in ("eval", "predict") and not cfg.ckpt:
        raise ConfigError("ckpt", cfg.ckpt, f"a checkpoint file for task={cfg.task}, e.g. ckpt=<run dir>/checkpoints/best.pt")
    if cfg.task == "predict" and not cfg.image:
        raise ConfigError("image", cfg.image, "a PNG or JPEG file for task=predict, e.g. image=digit.png")

