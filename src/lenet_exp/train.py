"""One training run: data and model on the device, the epoch loop, checkpoints, metrics, TensorBoard.

Everything the run writes lives in its run directory. Running again into the same directory resumes:
a completed run is skipped, an unfinished one continues from ``checkpoints/last.pt`` with model,
optimizer, scheduler, epoch, best-val and RNG state. The same mechanism serves a single run
(``resume=<run dir>``) and a re-launched sweep (``hydra.sweep.dir=<sweep dir>``).
"""

from __future__ import annotations

import logging
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from lenet_exp import checkpoint as ckpt, fused_cpu
from lenet_exp.files import read_json, save_json
from lenet_exp.augment import build_augment, test_time_views
from lenet_exp.data import Data, load_data
from lenet_exp.device import JobSlot, describe, resolve_device
from lenet_exp.ema import ExponentialMovingAverage
from lenet_exp.engine import TrainStep, evaluate, train_epoch
from lenet_exp.errors import CheckpointError, ConfigError, DeviceError, UserError
from lenet_exp.model import LeNet5, build_model
from lenet_exp.optim import build_optimizer, build_scheduler
from lenet_exp.signals import StopSignals
from lenet_exp.schema import config_differences, flatten
from lenet_exp.tracking import TensorBoardLog

log = logging.getLogger(__name__)

@dataclass
class Outcome:
    status: str  # completed | diverged | interrupted | skipped
    val_acc: float
    message: str = ""
    signal: Optional[int] = None


@dataclass
class RunState:
    """What a checkpoint must carry so a resumed run continues exactly where it stopped."""

    epoch: int = 0
    best_epoch: int = 0
    best_val_acc: float = -1.0
    history: list[dict[str, float]] = field(default_factory=list)
    warmup_epochs: list[int] = field(default_factory=list)  # each invocation's first: warm-up, capture, compilation


def seed_everything(seed: int, deterministic: bool) -> None:
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        # cuBLAS needs a fixed workspace for reproducible matrix products; read when CUDA starts
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    # set both ways: a joblib worker runs several jobs, and one job's setting must not outlive it
    torch.use_deterministic_algorithms(deterministic, warn_only=False)
    torch.backends.cudnn.deterministic = deterministic


def versions() -> dict[str, str]:
    import hydra
    import omegaconf
    import torchvision

    return {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "hydra": hydra.__version__, "omegaconf": omegaconf.__version__}


@dataclass
class Parts:
    """Everything a run trains with, built from the config."""

    device: torch.device
    data: Data
    model: torch.nn.Module
    forward_model: torch.nn.Module  # the model, compiled when trainer.compile is on
    eval_model: torch.nn.Module  # the EMA copy when trainer.ema_decay is set
    optimizer: torch.optim.Optimizer
    scheduler: Optional[torch.optim.lr_scheduler.LRScheduler]
    ema: Optional[ExponentialMovingAverage]
    generator: torch.Generator  # shuffling and augmentation, on the device
    step: TrainStep  # forward and backward of one batch, eager or a CUDA graph
    eval_views: list  # test-time augmentation: the views whose predictions val and test average
    steps_per_epoch: int
    preprocessing: dict[str, Any]

    def checkpoint(self, state: RunState, config: dict) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state(), "generator": self.generator.get_state(), "device_type": self.device.type}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
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
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(saved["scheduler"])
        if self.ema is not None:
            self.ema.load_state_dict(saved["ema"])
        torch.set_rng_state(saved["rng"]["torch"])
        if saved["rng"]["device_type"] == self.device.type:  # another device's RNG state does not apply
            self.generator.set_state(saved["rng"]["generator"])
            if self.device.type == "cuda":
                torch.cuda.set_rng_state(saved["rng"]["cuda"], self.device)
        # a checkpoint of an older version lacks warmup_epochs: its run began with a warm-up epoch too
        return RunState(**{"warmup_epochs": [1], **saved["run_state"]})


def checkpoint_note(saved_epoch: int) -> str:
    if saved_epoch:
        return f"the last checkpoint is after epoch {saved_epoch}"
    return "no checkpoint was written yet, so running again starts over"


def use_cuda_graphs(tcfg, device: torch.device) -> bool:
    """``trainer.cuda_graphs``: null means on for a CUDA device unless ``trainer.compile`` is on."""
    if tcfg.cuda_graphs is None:
        return device.type == "cuda" and not tcfg.compile
    if tcfg.cuda_graphs and device.type != "cuda":
        raise ConfigError("trainer.cuda_graphs", True, f"false or null on this {device.type} device: CUDA graphs need "
                          "a CUDA GPU (null turns them on wherever there is one)")
    return tcfg.cuda_graphs


def use_fused_cpu_kernels(tcfg, model: LeNet5, device: torch.device) -> bool:
    """``trainer.fused_cpu_kernels``: null means on for CPU training wherever the kernel compiles."""
    wanted = tcfg.fused_cpu_kernels
    if wanted is False:
        return False
    blocker = (f"this {device.type} device: the kernel is for CPU training" if device.type != "cpu"
               else "this model: it fuses conv -> BatchNorm -> max-pool -> ReLU blocks" if not model.fusable()
               else "trainer.compile=true, which compiles the blocks itself" if tcfg.compile
               else "trainer.precision=bf16: the kernel is float32" if tcfg.precision != "fp32"
               else None)
    if blocker:
        if wanted:
            raise ConfigError("trainer.fused_cpu_kernels", True, f"false or null with {blocker}")
        return False
    try:
        fused_cpu.load_kernel()
    except fused_cpu.KernelUnavailable as error:
        if wanted:
            raise DeviceError(f"The fused CPU kernel could not be compiled here ({error}). Install g++ and ninja, "
                              f"or train without it: trainer.fused_cpu_kernels=false.") from error
        log.warning("The fused CPU kernel could not be compiled here (%s); training with the standard layers. "
                    "trainer.fused_cpu_kernels=false skips the attempt.", error)
        return False
    return True


def build_parts(cfg: DictConfig, slot: JobSlot, clock: Optional[dict[str, float]] = None) -> Parts:
    """Everything the run trains with; ``clock["data"]`` gets the time the data set was on its device."""
    tcfg = cfg.trainer
    device = resolve_device(cfg.device, slot)
    cuda_graphs = use_cuda_graphs(tcfg, device)
    if device.type == "cuda":
        # fixed shapes, so cuDNN could time its algorithms once per shape (never when deterministic)
        torch.backends.cudnn.benchmark = tcfg.cudnn_benchmark and not tcfg.deterministic
    data = load_data(cfg.dataset, tcfg.batch_size, device)
    if clock is not None:
        clock["data"] = time.perf_counter()
    log.info("%s: %d train / %d val / %d test images on %s (normalised with mean %.4f, std %.4f)",
             cfg.dataset.name, len(data.train), len(data.val), len(data.test), describe(device), data.mean, data.std)
    model = build_model(cfg.model, cfg.dataset.num_classes, cfg.dataset.image_size).to(device)
    if tcfg.channels_last or (tcfg.channels_last is None and device.type == "cuda"):
        model = model.to(memory_format=torch.channels_last)
    if use_fused_cpu_kernels(tcfg, model, device):
        model.fuse_cpu_blocks()
        log.info("Fused CPU kernels: each conv block's BatchNorm, max-pool and ReLU train in one pass")
    optimizer = build_optimizer(cfg.optimizer, model)
    steps_per_epoch = math.ceil(len(data.train) / tcfg.batch_size)
    scheduler = build_scheduler(cfg.scheduler, optimizer, tcfg.epochs, steps_per_epoch)
    ema = ExponentialMovingAverage(model, tcfg.ema_decay) if tcfg.ema_decay else None
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    forward_model = torch.compile(model) if tcfg.compile else model
    background = -data.mean / data.std  # a black pixel, normalised: what shifted-in borders show
    step = TrainStep(forward_model, data.train, tcfg.batch_size, label_smoothing=tcfg.label_smoothing,
                     augment=build_augment(cfg.augment, background, generator, pixel_scale=1 / data.std),
                     precision=tcfg.precision, cuda_graph=cuda_graphs, graph_fallback=tcfg.cuda_graphs is None,
                     generator=generator)
    if cuda_graphs:
        log.info("CUDA graphs: each full training batch replays one captured graph")
    return Parts(
        device=device, data=data, model=model, forward_model=forward_model,
        eval_model=ema.module if ema is not None else forward_model,
        optimizer=optimizer, scheduler=scheduler, ema=ema, generator=generator, step=step,
        eval_views=test_time_views(tcfg.tta_hflip, tcfg.tta_shift, background),
        steps_per_epoch=steps_per_epoch,
        preprocessing={"image_size": cfg.dataset.image_size, "resize_mode": cfg.dataset.resize_mode,
                       "mean": data.mean, "std": data.std},
    )


class Run:
    def __init__(self, cfg: DictConfig, run_dir: Path, slot: JobSlot, started: float):
        self.cfg = cfg
        self.started = started  # when this job began (perf_counter): its wall time counts from here
        self.config = OmegaConf.to_container(cfg, resolve=True)
        self.dir = run_dir
        self.slot = slot
        self.metrics_path = run_dir / "metrics.json"
        self.last_path = run_dir / "checkpoints" / "last.pt"
        self.best_path = run_dir / "checkpoints" / "best.pt"
        self.earlier_wall_s = 0.0  # wall time of the earlier invocations of a resumed run
        self.timings: dict[str, float] = {}

    # ----------------------------------------------------------------------------------------- setup
    def previous_outcome(self) -> Optional[Outcome]:
        """A completed run in this directory is not trained again."""
        previous = read_json(self.metrics_path)
        if previous and previous.get("status") == "completed" and previous.get("task") == "train":
            changed = config_differences(previous.get("config", {}), self.config)
            if changed:
                raise UserError(f"{self.dir} already holds a completed run with another config ({'; '.join(changed[:3])}). "
                                f"Choose a new output directory.")
            log.info("Already completed in %s: skipped (val acc %.4f)", self.dir, previous["val"]["acc"])
            return Outcome("skipped", previous["val"]["acc"])
        return None

    def load_resume_state(self) -> Optional[dict]:
        if not self.last_path.exists():
            return None
        state = ckpt.load_checkpoint(self.last_path)
        changed = config_differences(state["config"], self.config)
        if changed:
            raise UserError(
                f"{self.dir} holds an unfinished run with another config ({'; '.join(changed[:3])}). "
                f"Resume it with the same overrides (`python run.py resume={self.dir}`), or choose a new output directory."
            )
        return state

    def complete_best_checkpoint(self, last: dict) -> None:
        """best.pt is written just after last.pt: a run stopped between the two still lacks its newest best."""
        run_state = last["run_state"]
        if run_state["best_epoch"] != run_state["epoch"]:
            return
        try:
            best_epoch = ckpt.load_checkpoint(self.best_path)["run_state"]["epoch"]
        except CheckpointError:  # missing or unreadable: written from last.pt below
            best_epoch = None
        if best_epoch != run_state["epoch"]:
            log.info("Restored checkpoints/best.pt from last.pt (epoch %d, the best so far)", run_state["epoch"])
            ckpt.save_checkpoint(self.best_path, last)

    # -------------------------------------------------------------------------------------- the loop
    def train(self) -> Outcome:
        loaded = time.perf_counter()  # Hydra, torch and these modules imported, the config composed and checked
        done = self.previous_outcome()
        if done:
            return done
        resume = self.load_resume_state()
        seed_everything(self.cfg.seed, self.cfg.trainer.deterministic)
        clock: dict[str, float] = {}
        parts = build_parts(self.cfg, self.slot, clock)
        self.timings = {"imports_s": loaded - self.started, "data_s": clock["data"] - loaded}
        state = RunState()
        if resume:
            self.earlier_wall_s = (read_json(self.metrics_path) or {}).get("wall_time_s") or 0.0
            state = parts.restore(resume)
            self.complete_best_checkpoint(resume)
            log.info("Resuming %s after epoch %d (best val acc %.4f at epoch %d)",
                     self.dir, state.epoch, state.best_val_acc, state.best_epoch)
        tb = TensorBoardLog(str(self.dir), flatten(self.config), first_step=state.epoch + 1)
        try:
            outcome = self.epochs(parts, state, tb)
        finally:
            tb.close()
        return outcome

    def epochs(self, parts: Parts, state: RunState, tb: TensorBoardLog) -> Outcome:
        cfg, tcfg = self.cfg, self.cfg.trainer
        status, message = "completed", ""
        started = time.perf_counter()
        startup_s = started - self.started  # everything before epoch 1; its parts:
        self.timings = {"startup_s": startup_s, **self.timings,  # imports; device and data;
                        "setup_s": startup_s - sum(self.timings.values())}  # model, kernels, optimizer, TensorBoard
        resumed_after = saved = state.epoch  # saved: the epoch of checkpoints/last.pt (0: none yet)
        with StopSignals(self.slot.launcher) as stop:
            for epoch in range(state.epoch + 1, tcfg.epochs + 1):
                bar = tqdm(total=parts.steps_per_epoch, desc=f"epoch {epoch}/{tcfg.epochs}", leave=False,
                           disable=None if tcfg.progress else True)
                lr = parts.optimizer.param_groups[0]["lr"]  # the epoch's first step's (schedules step per batch)
                if epoch == resumed_after + 1:
                    state.warmup_epochs.append(epoch)
                epoch_start = time.perf_counter()
                result = train_epoch(parts.step, parts.optimizer, parts.generator, scheduler=parts.scheduler,
                                     ema=parts.ema, on_step=bar.update, stop_requested=stop.requested)
                seconds = time.perf_counter() - epoch_start  # train_epoch ends with a device sync
                bar.close()
                if result.interrupted:
                    status = "interrupted"
                    message = (f"Interrupted by {stop.reason()} during epoch {epoch}; {checkpoint_note(saved)}. "
                               f"Continue with `python run.py resume={self.dir}`.")
                    break
                if not math.isfinite(result.loss):
                    status = "diverged"
                    message = (f"Training diverged at epoch {epoch} (train loss {result.loss}); {checkpoint_note(saved)}. "
                               f"Lower optimizer.lr (now {cfg.optimizer.lr}).")
                    break
                val = evaluate(parts.eval_model, parts.data.val, tcfg.eval_batch_size, tcfg.precision, parts.eval_views)
                row = {"epoch": epoch, "train/loss": result.loss, "train/acc": result.acc, "val/loss": val.loss,
                       "val/acc": val.acc, "lr": lr, "time/epoch_s": seconds,
                       "time/samples_per_s": result.samples / seconds}
                tb.scalars({k: v for k, v in row.items() if k != "epoch"}, epoch)
                state.history.append(row)
                state.epoch = epoch
                improved = val.acc > state.best_val_acc
                if improved:
                    state.best_val_acc, state.best_epoch = val.acc, epoch
                # last.pt also whenever best.pt changes, and first: a resumed run never starts before its best
                if improved or epoch % tcfg.checkpoint_every == 0 or epoch == tcfg.epochs:
                    checkpoint = parts.checkpoint(state, self.config)
                    ckpt.save_checkpoint(self.last_path, checkpoint)
                    saved = epoch
                    if improved:
                        ckpt.save_checkpoint(self.best_path, checkpoint)
                log.info("epoch %d/%d  train loss %.4f acc %.4f | val loss %.4f acc %.4f%s | %.2f s, %.0f samples/s",
                         epoch, tcfg.epochs, result.loss, result.acc, val.loss, val.acc, " *" if improved else "",
                         seconds, row["time/samples_per_s"])
                self.write_metrics("running", "", state, parts)

            self.timings["epochs_s"] = time.perf_counter() - started  # training, validation and checkpoints
            # a first Ctrl-C from here on lets this last second of work finish: the run is complete
            test = self.test_best(parts, tb) if status == "completed" else None
            self.timings["test_s"] = time.perf_counter() - started - self.timings["epochs_s"]  # with its figures
            self.write_metrics(status, message, state, parts, test)
        if status == "completed":
            tb.session_end()
            log.info("Done: best val acc %.4f (epoch %d), test acc %.4f, test loss %.4f. Artifacts in %s",
                     state.best_val_acc, state.best_epoch, test["acc"], test["loss"], self.dir)
            t = self.timings
            log.info("Time: start-up %.1f s (imports %.1f, data %.1f, model and the rest %.1f), %d epochs %.1f s, "
                     "test %.1f s", t["startup_s"], t["imports_s"], t["data_s"], t["setup_s"],
                     state.epoch - resumed_after, t["epochs_s"], t["test_s"])
        # the signal that stopped the run, or came during its final test (the run completes, the caller stops)
        return Outcome(status, state.best_val_acc, message, stop.signal)

    def test_best(self, parts: Parts, tb: TensorBoardLog) -> dict[str, float]:
        """Evaluate the test split once, with the weights of the best validation epoch."""
        best = ckpt.load_checkpoint(self.best_path)
        parts.model.load_state_dict(best["model"])
        if parts.ema is not None:
            parts.ema.load_state_dict(best["ema"])
        test_split = parts.data.test
        test = evaluate(parts.eval_model, test_split, self.cfg.trainer.eval_batch_size, self.cfg.trainer.precision,
                        parts.eval_views)
        step = best["run_state"]["epoch"]
        tb.scalars({"test/loss": test.loss, "test/acc": test.acc}, step)
        if self.cfg.trainer.log_images:
            tb.confusion_matrix(test_split.labels, test.predictions, self.cfg.dataset.num_classes, step)
            tb.misclassified(test_split.images, test_split.labels, test.predictions, step)
        return {"loss": test.loss, "acc": test.acc}

    def write_metrics(self, status: str, message: str, state: RunState, parts: Parts,
                      test: Optional[dict] = None) -> None:
        history = state.history
        last = history[-1] if history else {}
        best = next((row for row in history if row["epoch"] == state.best_epoch), {})
        # the first epoch of each invocation pays for warm-up: the medians leave those out (if any are left)
        steady = [row for row in history if row["epoch"] not in state.warmup_epochs] or history
        save_json(self.metrics_path, {
            "task": "train",
            "status": status,
            "message": message,
            "epochs_done": state.epoch,
            "epochs": self.cfg.trainer.epochs,
            "best_epoch": state.best_epoch,
            "train": {"loss": last.get("train/loss"), "acc": last.get("train/acc")},
            "val": {"loss": best.get("val/loss"), "acc": best.get("val/acc")},
            "test": test,
            "median_epoch_s": statistics.median(row["time/epoch_s"] for row in steady) if steady else None,
            "samples_per_s": statistics.median(row["time/samples_per_s"] for row in steady) if steady else None,
            "wall_time_s": self.earlier_wall_s + time.perf_counter() - self.started,  # every invocation
            "timings": self.timings,  # this invocation's
            "device": describe(parts.device),
            "cuda_graphs": parts.step.graph is not None,  # full batches were replayed from a captured graph
            "fused_cpu_kernels": parts.model.fused_cpu_blocks,
            "seed": self.cfg.seed,
            "versions": versions(),
            "config": self.config,
            "history": history,
        })
