"""Everything a run trains with, built from the config: device, data, model, optimizer, schedule, EMA,
the training step; and the checkpoint of their states."""

from __future__ import annotations

import logging
import math
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

import torch
from omegaconf import DictConfig

from lenet_exp import perf
from lenet_exp.augment import black, build_augment, test_time_views
from lenet_exp.checkpoints import RunState
from lenet_exp.data import Data, load_data
from lenet_exp.device import (MEMORY_HEADROOM, check_fits, describe, free_bytes, give_freed_memory_back,
                              resolve_device)
from lenet_exp.ema import ExponentialMovingAverage
from lenet_exp.errors import UserError, root_cause
from lenet_exp.engine import TrainStep
from lenet_exp.slots import JobSlot
from lenet_exp.models import build_model
from lenet_exp.optim import build_optimizer, build_scheduler, load_optimizer_state

log = logging.getLogger(__name__)


@contextmanager
def torch_settings_kept() -> Iterator[None]:
    """Gradients on, and the process-wide settings a run changes (its threads, determinism, cuDNN's, how the C
    library keeps freed memory) as they were before it: a notebook's own code after ``lenet_exp.train()`` ran
    with the run's threads, failed on an operation without a deterministic implementation, or kept every array
    it freed. (The random generators stay seeded, as after ``torch.manual_seed``.) A run computes in torch's
    defaults whatever a notebook set before it: float32 tensors (``set_default_dtype(torch.float64)`` failed its
    first step) and float32 matrix products in full precision (``set_float32_matmul_precision("medium")``
    changed its results, without a record of it), on the device its config names (``set_default_device("meta")``
    failed as it moved the model)."""
    threads, workspace = torch.get_num_threads(), os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    deterministic = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    dtype, matmul = torch.get_default_dtype(), torch.get_float32_matmul_precision()
    device = torch.get_default_device()
    try:
        torch.set_default_device(None)
        torch.set_default_dtype(torch.float32)
        torch.set_float32_matmul_precision("highest")
        # gradients on whatever the caller's mode (a notebook's torch.no_grad(): "element 0 of tensors does not
        # require grad" at the first step), theirs again after
        with torch.inference_mode(False), torch.enable_grad():
            yield
    finally:
        torch.set_default_device(device if device != torch.device("cpu") else None)  # (cpu: as none was set)
        torch.set_default_dtype(dtype)
        torch.set_float32_matmul_precision(matmul)
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = cudnn
        if workspace is None:  # seed_everything's, for the run
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
        give_freed_memory_back()


def seed_everything(seed: int, deterministic: bool) -> None:
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        # cuBLAS needs a fixed workspace for reproducible matrix products; read when CUDA starts
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    # set both ways: a joblib worker runs several jobs, and one job's setting must not outlive it
    torch.use_deterministic_algorithms(deterministic, warn_only=False)
    torch.backends.cudnn.deterministic = deterministic


@dataclass
class Parts:
    """Everything a run trains with, built from the config."""

    device: torch.device
    data: Data
    model: torch.nn.Module
    eval_model: torch.nn.Module  # the EMA copy when trainer.ema_decay is set, else the (compiled) model
    optimizer: torch.optim.Optimizer
    scheduler: Optional[torch.optim.lr_scheduler.LRScheduler]
    ema: Optional[ExponentialMovingAverage]
    generator: torch.Generator  # shuffling and augmentation, on the device
    augment: Optional[Callable[[torch.Tensor], torch.Tensor]]  # a training batch's augmentation (None: none)
    step: TrainStep  # forward and backward of one batch, eager or a CUDA graph
    eval_views: list  # test-time augmentation: the views whose predictions val and test average
    steps_per_epoch: int
    fast_paths: perf.FastPaths
    preprocessing: dict[str, Any]
    # a stacked trial's dropout masks, on the device (a single run's come from torch's own RNG there); its
    # checkpoint keeps it in that RNG's place, so that the trial resumes, alone or stacked, as it trained
    dropout_generator: Optional[torch.Generator] = None

    def before_step(self, max_norm: Optional[float]) -> None:
        """What comes before each optimizer step: the gradients scaled to at most ``max_norm`` (their L2 norm
        all together, torch's clip_grad_norm_), where it is set."""
        if max_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm, foreach=True)

    def after_step(self) -> None:
        """What follows each optimizer step: the schedule's step and the EMA's update."""
        if self.scheduler is not None:
            self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.step.model)

    def checkpoint(self, state: RunState, config: dict) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state(), "generator": self.generator.get_state(), "device_type": self.device.type}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        if self.dropout_generator is not None:
            rng[self.dropout_rng_key] = self.dropout_generator.get_state()
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "run_state": vars(state),
            "rng": rng,
            "config": config,
            "preprocessing": self.preprocessing,
        }

    def restore(self, saved: dict) -> RunState:
        self.load_weights(saved)
        load_optimizer_state(self.optimizer, saved["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["rng"]["torch"])
        if saved["rng"]["device_type"] == self.device.type:  # another device's RNG state does not apply
            self.generator.set_state(saved["rng"]["generator"])
            if self.device.type == "cuda":
                torch.cuda.set_rng_state(saved["rng"]["cuda"], self.device)
        if self.dropout_generator is not None and self.dropout_rng_key in saved["rng"]:
            self.dropout_generator.set_state(saved["rng"][self.dropout_rng_key])
        return RunState(**saved["run_state"])

    @property
    def dropout_rng_key(self) -> str:
        """Where a checkpoint keeps the RNG state that dropout draws from."""
        return "cuda" if self.device.type == "cuda" else "torch"

    def load_weights(self, saved: dict) -> None:
        """The weights (and EMA) of a checkpoint, e.g. the best epoch's for the final test."""
        self.model.load_state_dict(saved["model"])
        if self.ema is not None:
            self.ema.load_state_dict(saved["ema"])


def footprint(cfg: DictConfig, batch_size: int) -> tuple[int, int]:
    """The model's parameter count and the elements its layers output for one training batch, found on
    the meta device: shapes only, nothing allocated. A model that reads its tensors' values (a meta tensor has
    none) is measured on two images on the CPU instead. One that fails on its input is refused."""
    side = cfg.dataset.image_size

    def measured(model: torch.nn.Module, images: int) -> tuple[int, int]:
        sizes: list[int] = []
        for module in model.modules():
            if not list(module.children()):
                module.register_forward_hook(lambda module, inputs, output: sizes.append(output.numel()))
        with torch.no_grad():
            model(torch.zeros(images, 1, side, side))  # on the meta device where called in its context
        return sum(p.numel() for p in model.parameters()), sum(sizes)

    args = (cfg.model, cfg.dataset.num_classes, side)
    with torch.random.fork_rng(devices=[]):  # a model built for real draws its weights: not from the run's seed
        model = build_model(*args, shapes_only=True)
        if next(model.parameters(), torch.empty(0, device="meta")).is_meta:
            try:
                with torch.device("meta"):
                    return measured(model, batch_size)
            except Exception:  # it reads a value in forward
                model = build_model(*args)
        try:  # its output's sizes from two images (a BatchNorm1d needs more than one)
            parameters, activations = measured(model.cpu(), 2)
        except Exception as error:
            raise UserError(f"The model {cfg.model._target_} fails on a batch of images [N, 1, {side}, {side}] "
                            f"(dataset.image_size={side}): {root_cause(error)}. Fix the class, or its settings "
                            f"(model.*).") from error
    return parameters, activations // 2 * batch_size


def load_run_data(cfg: DictConfig, device: torch.device, stopwatch=None, trials: int = 1) -> Data:
    """The data set on ``device``, once it is clear that the model's training fits there too (``trials``
    copies of it: a stacked group)."""
    tcfg = cfg.trainer
    data = load_data(cfg.dataset, tcfg.batch_size, device)
    if stopwatch is not None:
        stopwatch.mark("data")
    log.info("%s: %d train / %d val / %d test images on %s (normalised with mean %.4g, std %.4g)",
             cfg.dataset.name, len(data.train), len(data.val), len(data.test), describe(device), data.mean, data.std)
    parameters, activations = footprint(cfg, tcfg.batch_size)
    # float32 weights, gradients, two optimizer moments and an EMA copy; each layer's output kept for
    # the backward pass and its gradient
    weights = parameters * 4 * 5
    per_trial = weights + activations * 4 * 2
    what = f"the model ({parameters:,} parameters, {activations:,} activations per batch)"
    smaller = "smaller layers (model.*), a smaller dataset.image_size or trainer.batch_size"
    fix = f"Choose {smaller}."
    if trials > 1:
        what = f"{trials} stacked trials of {what}"
        fitting = int(MEMORY_HEADROOM * (free_bytes(device) or 0) // per_trial)
        if fitting:
            fix = f"Stack at most {fitting} (hydra.launcher.max_stack={fitting}), or choose {smaller}."
    check_fits(trials * per_trial, device, f"Training {what}", fix)
    # its val and test batches after it, which a group's trials share: checked now, not met in the final test
    check_testing_fits(tcfg.eval_batch_size, activations // tcfg.batch_size, max(len(data.val), len(data.test)),
                       trials * weights, device)
    return data


def check_testing_fits(eval_batch_size: int, activations_per_image: int, images: int, model_bytes: int,
                       device: torch.device) -> None:
    """Refuse an eval batch (``trainer.eval_batch_size``, at most the ``images`` of the largest split it tests)
    whose layers' outputs, beside ``model_bytes`` not yet allocated, cannot fit: 10,000 images at once in a
    1 GiB container trained each epoch and were killed in the final test."""
    batch = min(eval_batch_size, images)
    need = model_bytes + activations_per_image * batch * 4  # no gradients: one batch's outputs, float32
    check_fits(need, device, f"Testing {batch:,} images at a time (trainer.eval_batch_size={eval_batch_size}; "
               f"{activations_per_image * batch:,} activations)",
               "Choose a smaller trainer.eval_batch_size (the default is 1000).")


def build_parts(cfg: DictConfig, slot: JobSlot, stopwatch=None) -> Parts:
    """Everything the run trains with; ``stopwatch`` (optional) marks when the data was on its device."""
    device = resolve_device(cfg.device, slot)
    data = load_run_data(cfg, device, stopwatch)
    model = build_model(cfg.model, cfg.dataset.num_classes, cfg.dataset.image_size).to(device)
    fast_paths = perf.decide(cfg.trainer, model, device)
    model, forward_model = perf.apply(fast_paths, model)
    return trial_parts(cfg, device, data, model, fast_paths, forward_model)


def trial_parts(cfg: DictConfig, device: torch.device, data: Data, model: torch.nn.Module,
                fast_paths: perf.FastPaths, forward_model: Optional[torch.nn.Module] = None) -> Parts:
    """The parts of one trial around its (built) model: optimizer, schedule, EMA, generator, training
    step. A stacked group builds each of its trials' parts so, and gives them its own step instead."""
    tcfg = cfg.trainer
    forward_model = forward_model if forward_model is not None else model  # a compiled module has no truth value
    optimizer = build_optimizer(cfg.optimizer, model)
    steps_per_epoch = math.ceil(len(data.train) / tcfg.batch_size)
    if tcfg.limit_batches:
        steps_per_epoch = min(steps_per_epoch, tcfg.limit_batches)
    scheduler = build_scheduler(cfg.scheduler, optimizer, tcfg.epochs, steps_per_epoch)
    ema = ExponentialMovingAverage(model, tcfg.ema_decay) if tcfg.ema_decay else None
    generator = torch.Generator(device=device).manual_seed(cfg.seed if cfg.data_seed is None else cfg.data_seed)
    background = black(data.mean, data.std)
    augment = build_augment(cfg.augment, background, generator, pixel_scale=1 / data.std)
    step = TrainStep(forward_model, data.train, tcfg.batch_size, label_smoothing=tcfg.label_smoothing,
                     augment=augment, precision=tcfg.precision, cuda_graph=fast_paths.cuda_graphs,
                     graph_fallback=fast_paths.graph_fallback, generators=[generator])
    return Parts(
        device=device, data=data, model=model, eval_model=ema.module if ema is not None else forward_model,
        optimizer=optimizer, scheduler=scheduler, ema=ema, generator=generator, augment=augment, step=step,
        eval_views=test_time_views(tcfg.tta_hflip, tcfg.tta_shift, background),
        steps_per_epoch=steps_per_epoch, fast_paths=fast_paths,
        preprocessing={"image_size": cfg.dataset.image_size, "resize_mode": str(cfg.dataset.resize_mode),
                       "mean": data.mean, "std": data.std, "data": data.fingerprint},
    )
