"""``task=eval`` and ``task=predict``: a trained checkpoint on a test split or on one image file.

The checkpoint carries the model config and the preprocessing it was trained with (input size,
resize or pad, normalisation statistics); both tasks reuse them so inputs match what it learned.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf, ValidationError

from lenet_exp import checkpoints
from lenet_exp.augment import black, test_time_views
from lenet_exp.config import (EVAL_BATCH_SIZE, NATIVE_SIZE, PREPROCESSING_KEYS, TEST_SETTINGS, ResizeMode, as_literal,
                              TRAINING_SPLIT_KEYS, chosen_option, composition, read_by)
from lenet_exp.data import (Split, check_labels, checksum, class_names, dataset_class, prepare_images, raw_folder,
                            read_split, split_files, split_train_val)
from lenet_exp.device import describe, resolve_device
from lenet_exp.ema import averaged_weights
from lenet_exp.engine import EvalResult, evaluate
from lenet_exp.errors import CheckpointError, DataError, UserError, one_line, root_cause, shown
from lenet_exp.files import (CHECKPOINTS, COMPLETED, DIVERGED, FAILED, INTERRUPTED, METRICS, PREDICTION, RUNNING,
                             folder_holder, read_json, save_json)
from lenet_exp.slots import JobSlot
from lenet_exp.models import build_model
from lenet_exp.overrides import recorded_overrides
from lenet_exp.parts import check_testing_fits, footprint
from lenet_exp.provenance import provenance, versions
from lenet_exp.record import (TensorBoardLog, chosen_options, evaluation_markdown, selected_model_scalars,
                              training_hparams)
from lenet_exp.resume import how_to_go_on
from lenet_exp.validation import RANGES

log = logging.getLogger(__name__)


def as_chosen(group: str, cfg: DictConfig, saved: DictConfig, chosen: set[str]) -> DictConfig:
    """The checkpoint's own ``group`` (dataset), or the option the command line chose (``dataset=…``);
    either with the fields the command line set (``dataset.image_size=…``)."""
    node = cfg[group].copy() if group in chosen else saved[group].copy()
    for key in sorted(chosen):
        if key.startswith(group + "."):
            OmegaConf.update(node, key[len(group) + 1:], OmegaConf.select(cfg, key), merge=False)
    return node


def say_unused(cfg: DictConfig, saved: DictConfig, chosen: set[str]) -> None:
    """Name what the command line set that this task does not read: how to train, or a model other than the
    checkpoint's (``model.activation=tanh`` evaluated a model it was not trained as)."""
    def option_of(group: str) -> Optional[str]:  # as Hydra chose it, or compose() (load_model's, outside Hydra)
        return chosen_option(group) or composition(cfg).choices.get(group)

    def written(key: str) -> str:  # trainer.epochs=3; a group's option as chosen (optimizer=sgd, experiment=…)
        value = OmegaConf.select(cfg, key, default=None)
        option = option_of(key)
        if not isinstance(value, DictConfig) and not (value is None and option):
            return f"{key}={value if isinstance(value, str) else shown(value)}"
        return f"{key}={option}" if option else key

    def differs(key: str) -> bool:
        value = OmegaConf.select(cfg, key, default=None)
        if value is None and option_of(key):  # a preset (experiment=…): its settings are no key of its own
            return True
        return value != OmegaConf.select(saved, key, default=None)

    # the val split of another data set is split as the command line says (of the checkpoint's own, as its run's)
    split_read = cfg.task == "eval" and cfg.dataset.get("name") != saved.dataset.get("name")
    unused = [key for key in sorted(chosen)
              if not (read_by(str(cfg.task), key) or split_read and key in TRAINING_SPLIT_KEYS) and differs(key)]
    if unused:
        log.warning("%s not used: task=%s takes %s as it was trained, with its model (%s).",
                    ", ".join(map(written, unused)), cfg.task, cfg.ckpt,
                    saved.model.get("name") or saved.model.get("_target_"))


def trusted_model_class(cfg: DictConfig, saved: DictConfig) -> None:
    """A checkpoint is data: the class its config names is imported (which runs its module's code) only where
    it is one of lenet_exp's models, or the one the command line's own model names."""
    target = str(saved.model.get("_target_"))
    if not target.startswith("lenet_exp.models.") and target != str(cfg.model.get("_target_")):
        raise CheckpointError(
            f"{cfg.ckpt} names the model class {target}, which is not one of lenet_exp.models: name the model "
            f"option it was trained with (model=<option>, with the --config-dir it came from) to have its class "
            f"imported.")


def load_trained_model(cfg: DictConfig, chosen: set[str],
                       device: torch.device) -> tuple[torch.nn.Module, dict, float | None]:
    """The checkpoint's model, its state, and the decay of the weight average it holds the model's weights
    from (None: the weights themselves), as :func:`averaged_weights_decay` chooses."""
    state = checkpoints.load_checkpoint(cfg.ckpt)
    saved = OmegaConf.create(state["config"])
    say_if_still_training(cfg.ckpt, state)
    say_unused(cfg, saved, chosen)
    trusted_model_class(cfg, saved)
    try:  # first without memory: layers altered to sizes its weights do not have were allocated, maybe terabytes
        shapes = build_model(saved.model, saved.dataset.num_classes, saved.dataset.image_size, shapes_only=True)
    except Exception as error:
        target = str(saved.model.get("_target_"))
        changed = "it was altered" if target.startswith("lenet_exp.models.") else f"it or {target} changed since"
        raise CheckpointError(f"{cfg.ckpt} holds a model config that {target} cannot build ({root_cause(error)}); "
                              f"{changed}, and it is not used.") from error
    checkpoints.check_weights_fit(shapes, state, cfg.ckpt)
    model = build_model(saved.model, saved.dataset.num_classes, saved.dataset.image_size)
    checkpoints.load_model_weights(model, state, cfg.ckpt)
    ema_decay = averaged_weights_decay(cfg, state, chosen)
    if ema_decay is not None:
        model.load_state_dict(averaged_weights(state["ema"]))
    return model.to(device).eval(), state, ema_decay


def say_if_still_training(path: str, state: dict) -> None:
    """A checkpoint of a run that trains on (its folder held, an epoch still to come), or that was interrupted,
    killed or failed, is of an epoch so far: its result will change; one of a run that diverged, of the epochs
    before it did."""
    folder = Path(path).expanduser().resolve().parent
    trainer = state["config"].get("trainer")  # a checkpoint is data: read, not trusted
    epochs = trainer.get("epochs") if isinstance(trainer, dict) else None
    epoch = checkpoints.checkpoint_epoch(state)
    if folder.name != CHECKPOINTS or (isinstance(epochs, int) and isinstance(epoch, int) and epoch >= epochs):
        return  # not in a run's folder, or the run is in its final test
    holder = folder_holder(folder.parent)
    if holder:
        log.warning("%s is of a run still training (%s): it holds its weights after epoch %s%s. Run this again "
                    "when the run ends for its final ones.", path, holder, epoch, f" of {epochs}" if epochs else "")
        return
    record = read_json(folder.parent / METRICS) or {}
    status = record.get("status")
    done = record.get("epochs_done") if isinstance(record.get("epochs_done"), int) else epoch
    # "running" in a folder no process here holds: killed outright (or running on another machine)
    ended = {INTERRUPTED: "interrupted", RUNNING: "killed (or running elsewhere)", FAILED: "that failed"}
    if status in ended:  # of its best epoch so far (best.pt), or of its last (last.pt)
        log.warning("%s is of a run %s after epoch %s%s: %s trains it on.", path, ended[status], done,
                    f" of {epochs}" if epochs else "", how_to_go_on(folder.parent))
    elif status == DIVERGED:  # its message says when, and which weights its checkpoints hold
        log.warning("%s is of a run that diverged: %s", path, record.get("message", "see its metrics.json"))


def averaged_weights_decay(cfg: DictConfig, state: dict, chosen: set[str]) -> float | None:
    """The decay of the weight average a checkpoint is taken with, where the run kept one (as its own test took
    it) and the command line does not ask for the weights themselves (``trainer.ema_decay=null``); None for
    the weights. An average of another decay would have had to be kept during training."""
    kept = state["config"]["trainer"].get("ema_decay") if state.get("ema") else None
    asked = cfg.trainer.ema_decay if "trainer.ema_decay" in chosen else kept
    if asked is None:
        if kept is not None:
            log.info("trainer.ema_decay=null: %s is evaluated with its weights, not their average.", cfg.ckpt)
        return None
    if asked != kept:
        held = (f"the average of its weights with decay {kept}" if kept is not None
                else "no average of its weights (its run had trainer.ema_decay=null), only the weights")
        log.warning("trainer.ema_decay=%s not used: %s holds %s, which task=%s takes.", asked, cfg.ckpt, held, cfg.task)
    return kept


def test_settings(cfg: DictConfig, saved: dict, chosen: set[str]) -> DictConfig:
    """``trainer`` with the run's own test-time augmentation and precision, and under ``limit_batches`` (a test of
    the first N x eval_batch_size images) its eval batch size, but for those the command line set."""
    tcfg = cfg.trainer.copy()
    # the batch size is a speed setting otherwise, of this machine's; predict reads none
    taken = (*TEST_SETTINGS, "eval_batch_size") if cfg.task == "eval" and tcfg.limit_batches else TEST_SETTINGS
    for key in taken:
        if f"trainer.{key}" not in chosen and key in saved.get("trainer", {}):
            altered = CheckpointError(f"{cfg.ckpt} holds trainer.{key}={shown(saved['trainer'][key])}, which lenet_exp "
                                      f"never writes: it was altered and is not used.")
            try:  # a checkpoint is data: read, not trusted
                tcfg[key] = saved["trainer"][key]
            except ValidationError as error:
                raise altered from error
            in_range, _ = RANGES.get(f"trainer.{key}", (lambda value: True, ""))
            if not in_range(tcfg[key]):
                raise altered
    return tcfg


def dataset_for_eval(cfg: DictConfig, saved: dict, chosen: set[str]) -> DictConfig:
    """The data set the command line named, or else the one the checkpoint was trained on."""
    dataset = as_chosen("dataset", cfg, OmegaConf.create(saved), chosen)
    dataset.root, dataset.download = as_literal(cfg.dataset.root), cfg.dataset.download  # paths are this machine's
    if dataset.num_classes != saved["dataset"]["num_classes"]:
        how = ("Leave out dataset.num_classes=, which the checkpoint's model sets" if "dataset.num_classes" in chosen
               else "Evaluate it on a data set with the same classes")
        raise CheckpointError(
            f"{cfg.ckpt} predicts {saved['dataset']['num_classes']} classes but dataset={dataset.name} has "
            f"{dataset.num_classes}. {how}.")
    return dataset


def preprocessing_of(state: dict, cfg: DictConfig, chosen: set[str]) -> dict:
    """The checkpoint's preprocessing, which eval and predict use whatever the command line says of it: a
    model takes inputs prepared as it was trained on them. A setting of it named there is said to be unused."""
    pre = state["preprocessing"]
    check_preprocessing(pre, state["config"]["dataset"]["image_size"], cfg.ckpt)

    # (predict reads no data set: its option chosen is said to be unused as a whole)
    own = set_by_the_option_chosen("dataset") if "dataset" in chosen and read_by(str(cfg.task), "dataset") else set()

    def asked_otherwise(key: str) -> bool:  # by the command line, or by a dataset option that prepares otherwise
        value = OmegaConf.select(cfg, f"dataset.{key}")
        return f"dataset.{key}" in chosen or key in own and value is not None and not (
            math.isclose(value, pre[key], rel_tol=1e-3) if isinstance(value, float) else value == pre[key])

    named = [f"dataset.{key}" for key in PREPROCESSING_KEYS if asked_otherwise(key)]
    if named:
        used = ", ".join(f"{key} {pre[key]:.4g}" if isinstance(pre[key], float) else f"{key} {pre[key]}"
                         for key in PREPROCESSING_KEYS)
        log.warning("%s not used: %s takes its inputs prepared as it was trained (%s).",
                    " and ".join(f"{key}={OmegaConf.select(cfg, key)}" for key in named), cfg.ckpt, used)
    return pre


def set_by_the_option_chosen(group: str) -> set[str]:
    """The keys that the YAML of ``group``'s option this run chose sets itself (not its schema's defaults)."""
    from lenet_exp.command_line_errors.keys import option_config

    option = chosen_option(group)
    return set(option_config(group, option) or ()) if option else set()


def check_preprocessing(pre: dict, image_size: int, path: str) -> None:
    """A checkpoint's preprocessing as training writes it: for its model's input size, a resize mode there is,
    and finite statistics (a checkpoint is data, and may have been altered)."""
    def number(value) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    fits = {"image_size": lambda value: value == image_size,
            "resize_mode": lambda value: isinstance(value, str) and value in {mode.value for mode in ResizeMode},
            "mean": number, "std": lambda value: number(value) and value > 0}
    wrong = next((key for key, fit in fits.items() if not fit(pre.get(key))), None)
    if wrong:
        held = f"{wrong} {pre[wrong]!r}" if wrong in pre else f"no {wrong}"
        raise CheckpointError(f"{path} holds preprocessing that lenet_exp never writes ({held}, for a model of input "
                              f"size {image_size}); it was altered and is not used.")


def say_if_other_data(cfg: DictConfig, state: dict, dataset: DictConfig, images: torch.Tensor, labels: torch.Tensor,
                      split: str = "test") -> None:
    """Where the checkpoint's own data set is read, a warning if its ``split`` is not the one the run read (its
    record of it): the test, or the val split's, accuracy is then not the run's own (a test set changed on purpose
    may be the point)."""
    read = state["preprocessing"].get("data")
    if state["config"]["dataset"].get("name") != dataset.name or not isinstance(read, dict):
        return
    if (read.get(split), read.get(f"{split}_checksum")) != (len(labels), checksum(images, labels)):
        used, accuracy = ("tested on", "this accuracy") if split == "test" else ("trained on", "its val accuracy")
        log.warning("%s's %s files in %s differ from those %s was %s (%s images then, %d now, or other contents): "
                    "%s is not its run's.", dataset.name, split, dataset.root, cfg.ckpt, used, read.get(split),
                    len(labels), accuracy)


@dataclass
class Trained:
    """A checkpoint made ready for eval or predict: its model on the device, and how it takes its inputs."""
    model: torch.nn.Module
    state: dict
    ema_decay: Optional[float]  # of the weight average it holds the weights from; None: the weights themselves
    device: torch.device
    pre: dict  # the checkpoint's preprocessing
    tcfg: DictConfig  # trainer, with the run's own test-time settings
    views: list  # the test-time views, whose probabilities are averaged

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images as the model was trained on them: resized, or padded, and normalised, on its device."""
        pre = self.pre
        return prepare_images(images.to(self.device), pre["image_size"], pre["resize_mode"], pre["mean"], pre["std"])

    def record(self, cfg: DictConfig) -> dict:
        """What a task's record says of the checkpoint and of how it was used (its ``.hydra/`` holds the command's
        config, whose model, preprocessing and training settings are the defaults it did not use), and of the
        code that used it."""
        return {"ckpt": absolute(cfg.ckpt), "ckpt_epoch": checkpoints.checkpoint_epoch(self.state),
                "ema_decay": self.ema_decay, "precision": self.tcfg.precision,
                "tta": {"hflip": self.tcfg.tta_hflip, "shift": self.tcfg.tta_shift},
                "preprocessing": {key: self.pre[key] for key in PREPROCESSING_KEYS},
                "versions": versions(), "git": provenance()}


def load_trained(cfg: DictConfig, chosen: set[str], device: torch.device) -> Trained:
    model, state, ema_decay = load_trained_model(cfg, chosen, device)
    pre = preprocessing_of(state, cfg, chosen)
    tcfg = test_settings(cfg, state["config"], chosen)
    views = test_time_views(tcfg.tta_hflip, tcfg.tta_shift, background=black(pre["mean"], pre["std"]))
    return Trained(model, state, ema_decay, device, pre, tcfg, views)


def validation(cfg: DictConfig, trained: Trained, dataset: DictConfig) -> Optional[EvalResult]:
    """The checkpoint's val loss and accuracy as this evaluation tests it: on the data set's val split, with the
    weights, views and precision of this evaluation, which may differ from its run's. Of the checkpoint's own
    data set, its run's val split (another one named on the command line would hold images it trained on); of
    another, as a run of that one splits it. What an evaluation sweep is ranked by (test-time augmentation chosen
    on val, not on test). None where the train split is not there (an evaluation needs only the test split:
    nothing is downloaded for it) or its record names no val split (a checkpoint is data)."""
    saved = trained.state["config"]["dataset"]
    folder = raw_folder(dataset)
    missing = [name for name in split_files("train") if not (folder / name).is_file()]
    if missing:
        log.warning("No val accuracy: %s has no %s (an evaluation needs only the test files, and downloads none for "
                    "its val split).", folder, " or ".join(missing))
        return None
    try:
        images, labels = read_split(dataset, train=True)
        check_labels(labels, dataset.num_classes, f"{dataset.name} train")
    except DataError as error:  # damaged files: the test's result stands
        log.warning("No val accuracy: %s", error)
        return None
    read = trained.state["preprocessing"].get("data")
    # its own files under another name (a data set option of one's own) are its own too: another split would test
    # it on images it trained on
    own = dataset.name == saved.get("name") or (isinstance(read, dict) and (
        read.get("train"), read.get("train_checksum")) == (len(labels), checksum(images, labels)))
    split_of = saved if own else dataset
    val_size, seed = split_of.get("val_size"), split_of.get("split_seed")
    if own and dataset.name != saved.get("name") and (dataset.val_size, dataset.split_seed) != (val_size, seed):
        log.warning("%s's train files are those %s was trained on: its val split is its run's (dataset.val_size=%s, "
                    "dataset.split_seed=%s), which holds no image it trained on.", dataset.name, cfg.ckpt, val_size,
                    seed)
    if not (isinstance(val_size, int) and isinstance(seed, int) and 1 <= val_size < len(labels)):
        log.warning("No val accuracy: the checkpoint's dataset.val_size=%r and dataset.split_seed=%r name no val "
                    "split of the %d training images.", val_size, seed, len(labels))
        return None
    say_if_other_data(cfg, trained.state, dataset, images, labels, "train")
    _, val_index = split_train_val(len(labels), val_size, seed)
    split = Split(trained.prepare(images[val_index]), labels[val_index].to(trained.device))
    return evaluate(trained.model, split, trained.tcfg.eval_batch_size, trained.tcfg.precision, trained.views,
                    max_batches=trained.tcfg.limit_batches)


def images_trained_on(state: dict) -> Optional[int]:
    """How many images the checkpoint's run trained on (a null dataset.train_size: all that its val split left),
    as its record of the data it read says; None where it does not."""
    read, val_size = (state.get("preprocessing") or {}).get("data") or {}, state["config"]["dataset"].get("val_size")
    total = read.get("train") if isinstance(read, dict) else None
    return total - val_size if isinstance(total, int) and isinstance(val_size, int) else None


def run_eval(cfg: DictConfig, run_dir: Path, slot: JobSlot, chosen: set[str]) -> dict:
    trained = load_trained(cfg, chosen, resolve_device(cfg.device, slot))
    state, tcfg = trained.state, trained.tcfg
    dataset = dataset_for_eval(cfg, state["config"], chosen)
    images, labels = read_split(dataset, train=False)
    check_labels(labels, dataset.num_classes, f"{dataset.name} t10k")
    say_if_other_data(cfg, state, dataset, images, labels)
    split = Split(trained.prepare(images), labels.to(trained.device))
    check_testing_fits(tcfg.eval_batch_size, footprint(OmegaConf.create(state["config"]), 1)[1], len(split), 0,
                       trained.device)
    # trainer.limit_batches caps it as it caps a run's final test: a smoke check of seconds
    result = evaluate(trained.model, split, tcfg.eval_batch_size, tcfg.precision, trained.views,
                      max_batches=tcfg.limit_batches)
    samples, classes = len(result.predictions), class_names(dataset)
    val = validation(cfg, trained, dataset)
    metrics = {"task": "eval", "status": COMPLETED, **trained.record(cfg), "dataset": dataset.name,
               "device": describe(trained.device),
               "val": {"loss": val.loss, "acc": val.acc, "samples": len(val.predictions)} if val else None,
               "test": {"loss": result.loss, "acc": result.acc,
                        "acc_by_class": result.acc_by_class(split.labels, classes), "samples": samples,
                        "split_samples": len(labels)}}
    # its own TensorBoard run: an evaluation sweep's HParams tab then shows each checkpoint's val and test accuracy
    # what test/acc is of: the checkpoint (as it was given) and the run that trained it, in a training run's
    # columns (parallel coordinates leave out a run that lacks a column ticked: one TensorBoard of both showed
    # none), the data, and how it was tested (an evaluation sweep of trainer.ema_decay=null,0.999 or of
    # precision gave rows of the same settings)
    trained_in = Path(str(cfg.ckpt)).expanduser().resolve().parent.parent  # <run>/checkpoints/best.pt: its record
    its_run = training_hparams(state["config"], recorded_overrides(trained_in), chosen_options(trained_in),
                               {"dataset.train_size": images_trained_on(state), "dataset.mean": trained.pre["mean"],
                                "dataset.std": trained.pre["std"]})
    # at the checkpoint's epoch, where its run's own test point is (not apart from it, at 0)
    step = metrics["ckpt_epoch"] if isinstance(metrics["ckpt_epoch"], int) else 0
    tb = TensorBoardLog(str(run_dir), {**its_run,
                                       "ckpt": str(cfg.ckpt), "dataset": dataset.name,
                                       "trainer.tta_hflip": tcfg.tta_hflip, "trainer.tta_shift": tcfg.tta_shift,
                                       "trainer.precision": tcfg.precision,
                                       # the weights themselves as 0 (record.OFF_AS_ZERO), not left out: an
                                       # evaluation sweep over checkpoints with and without EMA showed one value
                                       "trainer.ema_decay": trained.ema_decay,
                                       "trainer.limit_batches": tcfg.limit_batches,
                                       # under the limit, which images were tested
                                       EVAL_BATCH_SIZE: tcfg.eval_batch_size if tcfg.limit_batches else None},
                  first_step=step)
    try:
        trained_classes = class_names(OmegaConf.create(state["config"]["dataset"])) if tcfg.log_images else None
        tb.test(result, split.images, split.labels, classes, step=step, figures=tcfg.log_images,
                predicted_classes=trained_classes)
        if val:  # HParams' first columns, as a training run's: a view of both then draws both
            tb.scalars(selected_model_scalars({"epoch": step, "val/acc": val.acc, "val/loss": val.loss}), step)
        tb.card(evaluation_markdown(metrics, state["config"]["dataset"]["name"]))
        tb.session_end()
    finally:
        tb.close()
    save_json(run_dir / METRICS, metrics)  # last: a stop while its figures were drawn left it "completed"
    trained_on = state["config"]["dataset"]["name"]
    other = f", a model trained on {trained_on}" if trained_on != dataset.name else ""
    validated = f"val acc {val.acc:.4f}, " if val else ""
    log.info("%s on %s: %stest acc %.4f, test loss %.4f (%d images%s)", cfg.ckpt, dataset.name, validated,
             result.acc, result.loss, samples, other)
    return metrics


def absolute(path: str) -> str:
    """A path as the task read it (``~`` is the home folder), made absolute for its record."""
    return str(Path(path).expanduser().resolve())


def grayscale(image) -> torch.Tensor:
    """uint8 [1, H, W] of a PIL image in any mode: 16-bit grayscale scaled (not clipped) to 8 bits, 32-bit and
    float grayscale (of no fixed range) from its darkest value (black; a pixel that is no number too) to its
    lightest (white), colours weighted as PIL's "L" does, transparent pixels shown as the data sets' background
    (black). Only dark strokes on a transparent canvas (a browser canvas's drawing) are read as light ink instead."""
    from torchvision.transforms.v2.functional import pil_to_tensor

    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = torch.from_numpy(np.asarray(image, dtype=np.float64))
        if image.mode.startswith("I;16"):  # as an 8-bit image of the same picture reads
            return (values / 65535 * 255).round().to(torch.uint8).unsqueeze(0)
        finite = values[values.isfinite()]  # a negative or NaN float image was blank
        low, high = (float(finite.min()), float(finite.max())) if finite.numel() else (0.0, 0.0)
        scaled = ((values - low) / (high - low) * 255).nan_to_num(0.0) if high > low else torch.zeros_like(values)
        return scaled.round().clamp(0, 255).to(torch.uint8).unsqueeze(0)
    if "A" not in image.getbands() and "transparency" not in image.info:
        return pil_to_tensor(image.convert("L"))
    rgba = image.convert("RGBA")
    luminance = pil_to_tensor(rgba.convert("L")).float()
    alpha = pil_to_tensor(rgba.getchannel("A")).float() / 255
    visible = alpha > 0.5
    if visible.any() and not visible.all() and luminance[visible].max() < 128:  # no light ink anywhere
        log.info("The image's dark strokes on a transparent background are read as its ink: light on black, as "
                 "the data sets' images are.")
        luminance = 255 - luminance
    return (alpha * luminance).round().to(torch.uint8)  # over black


LARGEST_SIDE = 4096  # an image's longest side, in pixels, as it is made square (a larger one is shrunk first)


def read_image(path: str, on_the_command_line: bool = True) -> torch.Tensor:
    """An image file (PNG, JPEG, or another that Pillow reads) as uint8 grayscale [1, 28, 28], the data sets' native
    form; one that is no file is said to be as ``image=`` on the command line, or as an argument in Python."""
    from PIL import Image, ImageOps, UnidentifiedImageError
    from torchvision.transforms.v2.functional import pad, resize

    file = Path(path).expanduser()
    if not file.is_file():
        pattern = any(c in str(path) for c in "*?[") and not file.exists()
        if on_the_command_line:
            fix = "Pass image=<a PNG or JPEG file>" + (
                f"; a pattern is not expanded: -m task=predict image=\"$(ls {path} | paste -sd,)\" predicts each file"
                if pattern else "")
        else:
            fix = "Pass the path of a PNG or JPEG file" + ("; a pattern is not expanded: glob.glob(pattern) lists its "
                                                           "files" if pattern else "")
        what = "is a folder" if file.is_dir() else "is no regular file" if file.exists() else "does not exist"
        raise UserError(f"Image {file} {what}. {fix}.")
    try:
        with warnings.catch_warnings(record=True) as said:  # PIL's, with their source lines: said as ours
            warnings.simplefilter("ignore")
            warnings.simplefilter("always", UserWarning)  # "Corrupt EXIF data"
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # over PIL's limit, within twice it
            with Image.open(file) as image:
                gray = grayscale(ImageOps.exif_transpose(image))  # as it is shown: a phone's photo stores it turned
        for warning in said:  # "Corrupt EXIF data": read all the same
            log.warning("%s: %s", file, one_line(warning.message))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise UserError(f"{file} is too large to be a digit or a garment ({error}). Pass a smaller image, "
                        f"e.g. 28x28 pixels.") from error
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise UserError(f"{file} is not a readable PNG or JPEG image ({error}).") from error
    height, width = gray.shape[-2:]
    if max(height, width) > LARGEST_SIDE:  # a long strip (200000x1) was padded to a square of 40 GB
        scale = LARGEST_SIDE / max(height, width)
        height, width = max(1, round(height * scale)), max(1, round(width * scale))
        gray = resize(gray, [height, width], antialias=True)
    if height != width:  # made square with its own background, not stretched: the data sets' shapes keep theirs
        side, background = max(height, width), int(border(gray).median())
        left, top = (side - width) // 2, (side - height) // 2
        gray = pad(gray, [left, top, side - width - left, side - height - top], fill=background)
    return resize(gray, [NATIVE_SIZE, NATIVE_SIZE], antialias=True)


def say_if_odd(image: torch.Tensor, path: str) -> None:
    """A warning where an image file's prediction means little: one colour, or dark on a light background."""
    brightness = border_brightness(image)
    if image.min() == image.max():  # all transparent, or one colour: the model answers all the same
        log.warning("%s is blank (every pixel %d of 255): its prediction means nothing.", path, int(image[0, 0, 0]))
    elif brightness > 127:  # the model has only seen light shapes on black: its answer means little
        log.warning("%s looks dark on a light background (its border averages %.0f of 255), and the data sets' "
                    "images are light on black: invert it for a meaningful prediction (e.g. ImageMagick's "
                    "`convert IN -negate OUT`).", path, brightness)


def border(gray: torch.Tensor) -> torch.Tensor:
    """The outermost pixels of a [1, H, W] image."""
    return torch.cat([gray[0, 0], gray[0, -1], gray[0, 1:-1, 0], gray[0, 1:-1, -1]])


def border_brightness(gray: torch.Tensor) -> float:
    """Mean of the outermost pixels of a uint8 [1, H, W] image, 0 to 255: MNIST's and FashionMNIST's are
    black (0), a digit drawn in a paint program's white canvas is near 255."""
    return float(border(gray).float().mean())


def run_predict(cfg: DictConfig, run_dir: Path, slot: JobSlot, chosen: set[str]) -> dict:
    from lenet_exp.classifier import Classifier  # (which builds on this module)

    trained = load_trained(cfg, chosen, resolve_device(cfg.device, slot))
    image = read_image(str(cfg.image))
    say_if_odd(image, str(cfg.image))
    probabilities = Classifier(trained)(image)[0]  # as load_model() answers: the run's test-time views averaged
    label = int(probabilities.argmax())
    name = dataset_class(OmegaConf.create(trained.state["config"]["dataset"])).classes[label]
    prediction = {"task": "predict", "status": COMPLETED, "image": absolute(cfg.image), **trained.record(cfg),
                  "class": label, "name": name,
                  "probability": float(probabilities[label]), "probabilities": probabilities.tolist()}
    save_json(run_dir / PREDICTION, prediction)
    (run_dir / METRICS).unlink(missing_ok=True)  # an earlier try's failure or stop, which the summary would list
    return prediction


def prediction_line(prediction: dict) -> str:
    """What predict prints: ``7 (7 - seven) with probability 0.9991``."""
    return f"{prediction['class']} ({prediction['name']}) with probability {prediction['probability']:.4f}"
