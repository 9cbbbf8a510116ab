"""The ranges and rules that a config's types cannot check (an lr of 0, Nesterov without momentum, CUDA graphs
without a GPU), checked before any data loads: by run.py's callback, compose(), train() and load_model(). No
torch import here, but where a setting needs it (a GPU, the fused kernel, an optimizer's own arguments)."""

from __future__ import annotations

import dataclasses
import math
import sys
from typing import Any, Callable, Sequence

from lenet_exp.config import (DATASET_SCHEMA, GROUP_SCHEMAS, NATIVE_SIZE, Config, as_overridden,
                              begins_with_its_schema, named_in_overrides, read_by, setting_in)
from lenet_exp.errors import ConfigError, UserError, closest
from lenet_exp.overrides import override_key


def _pair(ok):
    return lambda v: len(v) == 2 and ok(v[0]) and ok(v[1]) and v[0] <= v[1]


# key -> (predicate, what is allowed), for the options with a schema here
RANGES = {
    "optimizer.lr": (lambda v: v > 0, "a number > 0"),
    "optimizer.weight_decay": (lambda v: v >= 0, "a number >= 0"),
    "optimizer.momentum": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "optimizer.betas": (lambda v: len(v) == 2 and all(0 <= beta < 1 for beta in v), "[beta1, beta2], each in [0, 1)"),
    "trainer.epochs": (lambda v: v >= 1, "an integer >= 1"),
    "trainer.batch_size": (lambda v: v >= 1, "an integer >= 1"),
    "trainer.eval_batch_size": (lambda v: v >= 1, "an integer >= 1"),
    "trainer.limit_batches": (lambda v: v is None or v >= 1, "null (HParams' 0) or an integer >= 1"),
    "trainer.checkpoint_every": (lambda v: v >= 1, "an integer >= 1"),
    "trainer.early_stop_patience": (lambda v: v is None or v >= 1, "null (HParams' 0) or an integer >= 1"),
    "trainer.grad_clip_norm": (lambda v: v is None or 0 < v < math.inf, "null (HParams' 0) or a finite number > 0"),
    "trainer.label_smoothing": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "trainer.tta_shift": (lambda v: 0 <= v <= 4, "an integer in [0, 4] (pixels)"),
    "trainer.ema_decay": (lambda v: v is None or 0 < v < 1, "null (HParams' 0) or a number in (0, 1)"),
    # what every record, line and column of the run names it by (an empty one began its lines with ": 256 train")
    "dataset.name": (lambda v: v.strip() != "", "a name (not empty)"),
    "model.name": (lambda v: v.strip() != "", "a name (not empty)"),
    "dataset.val_size": (lambda v: v >= 1, "an integer >= 1"),
    "dataset.train_size": (lambda v: v is None or v >= 1, "null or an integer >= 1"),
    "dataset.num_classes": (lambda v: v >= 2, "an integer >= 2"),
    "dataset.image_size": (lambda v: v >= NATIVE_SIZE, f"an integer >= {NATIVE_SIZE} (the images are "
                                                       f"{NATIVE_SIZE}x{NATIVE_SIZE})"),
    "dataset.mean": (lambda v: v is None or 0 <= v <= 1, "null or a number in [0, 1] (pixels scaled to [0, 1])"),
    "dataset.std": (lambda v: v is None or v > 0, "null or a number > 0"),
    "model.dropout": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "model.conv_channels": (lambda v: len(v) >= 1 and min(v) >= 1, "one or more positive integers"),
    "model.hidden": (lambda v: len(v) >= 1 and min(v) >= 1, "one or more positive integers"),
    "scheduler.step_epochs": (lambda v: v >= 1, "an integer >= 1"),
    "scheduler.gamma": (lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "scheduler.min_lr_ratio": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "scheduler.pct_start": (lambda v: 0 < v < 1, "a number in (0, 1)"),
    "augment.scale": (_pair(lambda v: v > 0), "[min, max] with 0 < min <= max"),
    "augment.degrees": (lambda v: 0 <= v <= 180, "a number in [0, 180]"),
    "augment.translate": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "augment.shear": (lambda v: 0 <= v < 90, "a number in [0, 90) (degrees)"),
    "augment.elastic_alpha": (lambda v: v >= 0, "a number >= 0"),
    "augment.elastic_sigma": (lambda v: 0 < v <= 100, "a number in (0, 100] (pixels)"),
    "augment.erase_p": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "augment.erase_area": (_pair(lambda v: 0 < v <= 1), "[min, max] with 0 < min <= max <= 1"),
    "augment.erase_ratio": (_pair(lambda v: v > 0), "[min, max] with 0 < min <= max"),
    "device.threads": (lambda v: v is None or v >= 1, "null or an integer >= 1"),
    # torch's CPU generator keeps 32 bits of a seed: 2**32 trained exactly as 0, and -1 as 2**32 - 1
    "seed": (lambda v: 0 <= v < 2**32, "an integer in [0, 2**32) (torch's CPU generator keeps 32 bits)"),
    "data_seed": (lambda v: v is None or 0 <= v < 2**32, "null or an integer in [0, 2**32)"),
    "dataset.split_seed": (lambda v: 0 <= v < 2**32, "an integer in [0, 2**32)"),
}


def optimizer_arguments(target: Any) -> list[str]:
    """The keyword arguments of the optimizer class ``target`` names, which ``+optimizer.<name>=`` passes it
    besides its schema's keys; none where it names no class (building the optimizer says so)."""
    import inspect

    from hydra._internal.utils import _locate

    try:
        return [name for name in inspect.signature(_locate(str(target))).parameters if name != "params"]
    except Exception:  # ImportError, ValueError, a value that is no class
        return []


def unknown_keys(cfg: Any, prefix: str = "") -> list[str]:
    """Keys of ``cfg`` that its schema lacks (Hydra's ``+key=value`` adds them to a typed node)."""
    from omegaconf import DictConfig, OmegaConf

    schema_type = OmegaConf.get_type(cfg)
    if not dataclasses.is_dataclass(schema_type):  # an untyped option: its constructor checks its keys
        return []
    known = {f.name for f in dataclasses.fields(schema_type)}
    found = []
    for key, value in cfg.items_ex(resolve=False):  # a ${…} that resolves to nothing is another check's to tell
        if key not in known:
            found.append(f"{prefix}{key}")
        elif isinstance(value, DictConfig):
            found += unknown_keys(value, f"{prefix}{key}.")
    return found


def fits(ok: Callable[[Any], bool], value: Any) -> bool:
    """Whether ``value`` passes a predicate of ``RANGES`` (never an infinity or NaN)."""
    try:
        fine = ok(value)
    except (TypeError, ValueError):  # a list where a number belongs, a string in a list of numbers, ...
        fine = False
    return bool(fine) and not (isinstance(value, float) and not math.isfinite(value))


def _check_range(key: str, value: Any, ok, allowed: str) -> None:
    if not fits(ok, value):
        raise ConfigError(key, value, allowed, key_as_written=as_overridden(key))


def range_checked(cfg: Any, key: str) -> bool:
    """Whether ``validate`` checks the range of ``key`` (one of ``RANGES``) in ``cfg``."""
    from omegaconf import OmegaConf

    # an option without a schema (a new model) is checked by its constructor, except that an optimizer's lr,
    # weight decay, momentum and betas mean the same in every torch.optim class, whose checks let lr=0 through
    # (a class of one's own may take three betas, or lr=None)
    parent = key.rpartition(".")[0]
    torch_optimizer = parent == "optimizer" and str(cfg.optimizer.get("_target_")).startswith("torch.optim.")
    # eval and predict take how to train from the checkpoint: what they do not read is said unused, not checked
    return read_by(str(cfg.task), key) and (torch_optimizer or dataclasses.is_dataclass(
        OmegaConf.get_type(cfg, parent) if parent else Config))


def refuse_unknown_keys(cfg: Any, unchecked: Callable[[str], bool] = lambda key: False) -> list[str]:
    """A ``+key=`` that the schema of its section lacks (``+trainer.epochz=3``), but for the keys ``unchecked``
    leaves to each job; a sweep's config holds its ``hydra`` node besides. Returns the names of the
    ``+optimizer.<argument>=`` keys it let through, which are passed to the optimizer's class."""
    from omegaconf import OmegaConf

    unknown = [key for key in unknown_keys(cfg) if key != "hydra" and not unchecked(key)]
    extra = untaken(cfg, unknown)
    if extra:
        section = extra[0].rpartition(".")[0]
        node = OmegaConf.select(cfg, section) if section else cfg
        known = [f.name for f in dataclasses.fields(OmegaConf.get_type(node))]
        others = [name for name in optimizer_arguments(cfg.optimizer.get("_target_"))
                  if name not in known] if section == "optimizer" else []
        expected = "one of the schema's keys: " + ", ".join(known) + (
            f", or an argument of {cfg.optimizer._target_} ({', '.join(others)})" if others else "")
        close = closest(extra[0].rpartition(".")[2], known + others)
        why = "unknown key" + (f"; did you mean {section + '.' if section else ''}{close}?" if close else "")
        written = OmegaConf.to_container(node, resolve=False)[extra[0].rpartition(".")[2]]  # a ${…} as written
        from lenet_exp.resume import replayed_setting, the_runs_own

        setting = replayed_setting(extra[0])
        if setting:  # resume=<run> optimizer=sgd, where the run passed +optimizer.amsgrad=true to Adam
            raise UserError(the_runs_own(setting, f"which the {section} chosen now does not take",
                                         f"the other {section}"))
        given = as_overridden(extra[0])  # ++optimizer.momentum as written; +… where a YAML of one's own set it
        raise ConfigError(extra[0], written, expected, why=why,
                          fix=f"Leave out {given if given != extra[0] else '+' + given}=… (or correct the key in "
                              f"configs/).")
    return [key.removeprefix("optimizer.") for key in unknown if key.startswith("optimizer.")]


def untaken(cfg: Any, unknown: list[str]) -> list[str]:
    """Of the ``unknown`` keys of ``cfg``, those that no schema has nor its optimizer's class takes."""
    arguments = optimizer_arguments(cfg.optimizer.get("_target_")) if any(
        key.startswith("optimizer.") for key in unknown) else []
    return [key for key in unknown
            if not key.startswith("optimizer.") or key.removeprefix("optimizer.") not in arguments]


def refuse_keys_some_jobs_lack(jobs: Sequence[tuple[Sequence[str], Any]], command_line: Sequence[str]) -> None:
    """A key added to every job of a sweep (``-m optimizer=sgd,adam ++optimizer.momentum=0.9``) that the option
    chosen by some of them lacks: those jobs failed once the others had trained, where without ``++`` the sweep
    is refused before any job. ``jobs``: each one's overrides and config."""
    from lenet_exp.command_line_errors.keys import listed_words

    lacking: dict[str, set[str]] = {}  # a key -> the options of the jobs that lack it
    for overrides, job in jobs:
        for key in untaken(job, [key for key in unknown_keys(job) if key != "hydra"]):
            section = key.rpartition(".")[0]
            lacking.setdefault(key, set()).update(o for o in overrides if "=" in o  # its option, or class
                                                  and override_key(o) in (section, f"{section}._target_"))
    key, options = next(((key, options) for key, options in lacking.items() if options), (None, None))
    if key is None:  # no option of a swept group lacks it: each job says what is wrong with its own
        return
    given = next((o for o in command_line if override_key(o) == key), key)
    sys.exit(f"Error: {given}: {key} is not a setting of {listed_words(sorted(options), 'or')}, whose jobs would "
             f"fail once the others had trained: sweep those apart, without {given.split('=')[0]}.")


NOT_A_RUNS_CONFIG = ("The config is not one of lenet_exp's runs (it lacks the schema of task, model, dataset, …): a "
                     "primary config of one's own (--config-name) begins with `defaults: [config, _self_]`, then sets "
                     "what it changes.")


def validate(cfg: Any) -> None:
    """Check the ranges and rules that the schema's types cannot, before any data is loaded."""
    from omegaconf import OmegaConf

    if OmegaConf.get_type(cfg) is not Config:  # a primary config of one's own without configs/config.yaml's
        raise UserError(NOT_A_RUNS_CONFIG)
    check_every_value_set(cfg)
    check_the_options_kinds(cfg)
    added = {name: cfg.optimizer[name] for name in refuse_unknown_keys(cfg)}
    if added and read_by(str(cfg.task), "optimizer"):  # +optimizer.maximize=true: refused before the run's folder
        from hydra._internal.utils import _locate

        from lenet_exp.optim import check_argument_types  # imports torch: only for options passed to the class

        check_argument_types(_locate(str(cfg.optimizer._target_)), added)
    unset = object()
    for key, (ok, allowed) in RANGES.items():
        value = OmegaConf.select(cfg, key, default=unset)
        if value is not unset and range_checked(cfg, key):
            _check_range(key, value, ok, allowed)
    check_the_rules_between_settings(cfg)


def check_every_value_set(cfg: Any) -> None:
    """Every ``${…}`` resolves (``trainer.epochs=${oops}``), and no ``???`` is left (``~model``, a YAML of one's
    own)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import InterpolationResolutionError

    try:
        OmegaConf.to_container(cfg, resolve=True)
    except InterpolationResolutionError as error:  # `trainer.epochs=${oops}`: the key is not there
        key = str(error.full_key).split("[", 1)[0]  # of a list's item (augment.scale[0]): the list, as one sets it
        written = setting_in(OmegaConf.to_container(cfg, resolve=False), key)
        raise ConfigError(key, written, "a value, or a ${…} that names a key of the config (e.g. "
                          "${seed})", why=str(error.msg).splitlines()[0]) from error
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:  # `~model` removed a group, or a YAML of one's own left a ??? unset
        group = "." not in missing[0]  # the top level's settings that can be unset are the groups
        raise ConfigError(missing[0], "???", "one of its options (`python run.py --help` lists them)" if group
                          else "a value")


def check_the_options_kinds(cfg: Any) -> None:
    """Each option chosen is of a kind that lenet_exp trains with: a scheduler or augmentation of a schema
    (its name the option's), a model with its class, a data set with the data sets' fields."""
    from omegaconf import OmegaConf

    for group in ("scheduler", "augment"):  # its name says which option's schema it holds, and what it does
        node = cfg.get(group)
        schema = OmegaConf.get_type(node) if OmegaConf.is_dict(node) else None
        if OmegaConf.is_dict(node) and not dataclasses.is_dataclass(schema):  # a kind that no code here trains with
            kinds, first = ", ".join(GROUP_SCHEMAS[group]), next(iter(GROUP_SCHEMAS[group]))
            raise ConfigError(f"{group}.name", node.get("name"), f"one of lenet_exp's kinds of {group} ({kinds}): "
                              f"{begins_with_its_schema(group, first, '<kind>')}", why="it has no schema",
                              fix=f"Choose one with {group}=<option>, or give the YAML its kind's schema.")
        option = next((f.default for f in dataclasses.fields(schema) if f.name == "name"),
                      None) if dataclasses.is_dataclass(schema) else None
        if isinstance(option, str) and node.get("name") != option:
            raise ConfigError(f"{group}.name", node.get("name"), f"{option!r}, the option chosen",
                              fix=f"Choose the {group} with {group}=<option> (`python run.py --help` lists them).")
    model = cfg.get("model")
    if read_by(str(cfg.task), "model") and OmegaConf.is_dict(model) and not model.get("_target_"):
        raise model_without_class()  # before the data loads (building the model would find it after)
    optimizer = cfg.get("optimizer")
    if read_by(str(cfg.task), "optimizer") and OmegaConf.is_dict(optimizer) and not optimizer.get("_target_"):
        raise optimizer_without_class()  # before the data loads, as the model's
    dataset = cfg.get("dataset")
    if OmegaConf.is_dict(dataset) and not dataclasses.is_dataclass(OmegaConf.get_type(dataset)):
        # every data set is read alike: an option without the schema lacks its fields (root, val_size, ...)
        raise ConfigError("dataset", dataset.get("name"), DATASET_SCHEMA, why="it has no schema")


def check_the_rules_between_settings(cfg: Any) -> None:
    """What one setting allows of another: CUDA graphs and cuDNN's autotuner need a GPU, the fused kernel its
    layers, determinism no autotuner, Nesterov momentum, eval and predict a checkpoint (and predict an image),
    training neither."""
    device = str(cfg.device.type)  # graphs on a machine without a GPU: refused at once, not once the data has loaded
    task = str(cfg.task)

    def without_a_gpu() -> bool:  # (asked only where a setting needs one: composing a config imports no torch)
        return device == "cpu" or device == "auto" and not _cuda_visible()

    if read_by(task, "trainer.cuda_graphs") and cfg.trainer.cuda_graphs and without_a_gpu():
        raise cuda_graphs_refused("cpu")
    if task == "train" and cfg.trainer.fused_cpu_kernels:
        from lenet_exp.perf import refuse_a_blocked_fused_kernel  # imports torch: only where the kernel is asked for

        refuse_a_blocked_fused_kernel(cfg)
    if read_by(task, "trainer.cudnn_benchmark") and cfg.trainer.cudnn_benchmark and cfg.trainer.deterministic:
        raise ConfigError("trainer.cudnn_benchmark", True, "false or null with trainer.deterministic=true (the "
                          "algorithms cuDNN's autotuner picks may differ from run to run)")
    if read_by(task, "trainer.cudnn_benchmark") and cfg.trainer.cudnn_benchmark and without_a_gpu():  # (was ignored)
        raise ConfigError("trainer.cudnn_benchmark", True, "false or null on this cpu device: cuDNN's autotuner "
                          "times a CUDA GPU's convolutions (null turns it on where it helps)")
    if task == "train" and cfg.optimizer.get("nesterov") and cfg.optimizer.get("momentum") == 0:
        raise ConfigError("optimizer.nesterov", True, "false with optimizer.momentum=0 (Nesterov needs momentum > 0)")
    # (fixes of their own: "fix it … `python run.py ckpt=...`" left task= out, and that command was refused)
    if task in ("eval", "predict") and not cfg.ckpt:
        raise ConfigError("ckpt", cfg.ckpt, f"a checkpoint file for task={task}",
                          fix=f"Give it with task={task}, e.g. ckpt=<run dir>/checkpoints/best.pt.")
    if task == "predict" and not cfg.image:
        raise ConfigError("image", cfg.image, "a PNG or JPEG file for task=predict",
                          fix="Give it with task=predict and ckpt=, e.g. image=digit.png.")
    for key, tasks in (("ckpt", "task=eval or task=predict"), ("image", "task=predict")):
        if task == "train" and cfg[key]:
            raise ConfigError(key, cfg[key], "null for task=train, which starts from scratch",
                              fix=f"Give {tasks} to use it (resume=<run dir> continues a run), or leave {key}= out.")


def model_without_class() -> ConfigError:
    """A model YAML of one's own that names no class: most often a LeNet-5 variant without its schema line (or
    a command line that emptied it: model._target_=)."""
    typed = "model._target_" in named_in_overrides()
    return ConfigError("model._target_", None, "the class of a model of one's own (e.g. _target_: my_models.MyNet), "
                       f"or for a LeNet-5 variant its schema: {begins_with_its_schema('model', 'lenet5', 'lenet5')}",
                       why="the command line names no class" if typed else "the model's YAML names no class",
                       fix="Name one on the command line, or leave model._target_ out." if typed
                       else "Fix it in the model's YAML.")


def optimizer_without_class() -> ConfigError:
    return ConfigError("optimizer._target_", None, "the torch.optim class that the option's YAML names, e.g. "
                       "_target_: torch.optim.RMSprop")


def _cuda_visible() -> bool:
    import torch  # only where a setting needs a GPU: composing a config imports no torch

    return torch.cuda.is_available()


def cuda_graphs_refused(device_type: str) -> ConfigError:
    return ConfigError("trainer.cuda_graphs", True, f"false or null on this {device_type} device: CUDA graphs need a "
                       "CUDA GPU (null turns them on wherever there is one)")
