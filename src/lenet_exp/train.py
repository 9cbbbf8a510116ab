"""One training run: data and model on the device, the epoch loop, checkpoints, metrics, TensorBoard.

Everything the run writes lives in its run directory. Running again into the same directory resumes:
a completed run is skipped, an unfinished one continues from ``checkpoints/last.pt`` with model,
optimizer, scheduler, epoch, best-val and RNG state. The same mechanism serves a single run
(``resume=<run dir>``) and a re-launched sweep (``hydra.sweep.dir=<sweep dir>``).
"""

from __future__ import annotations

import logging
import math
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from lenet_exp import checkpoint as ckpt
from lenet_exp.files import read_json, save_json
from lenet_exp.augment import build_augment
from lenet_exp.data import load_data
from lenet_exp.device import JobSlot, describe, resolve_device
from lenet_exp.engine import evaluate, train_epoch
from lenet_exp.errors import UserError
from lenet_exp.model import build_model
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


def seed_everything(seed: int, deterministic: bool) -> None:
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=False)
        torch.backends.cudnn.benchmark = False


def versions() -> dict[str, str]:
    import hydra
    import omegaconf
    import torchvision

    return {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "hydra": hydra.__version__, "omegaconf": omegaconf.__version__}


class Run:
    def __init__(self, cfg: DictConfig, run_dir: Path, slot: JobSlot):
        self.cfg = cfg
        self.config = OmegaConf.to_container(cfg, resolve=True)
        self.dir = run_dir
        self.slot = slot
        self.metrics_path = run_dir / "metrics.json"
        self.last_path = run_dir / "checkpoints" / "last.pt"
        self.best_path = run_dir / "checkpoints" / "best.pt"

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

    # -------------------------------------------------------------------------------------- the loop
    def train(self) -> Outcome:
        done = self.previous_outcome()
        if done:
            return done
        cfg, tcfg = self.cfg, self.cfg.trainer
        resume = self.load_resume_state()
        seed_everything(cfg.seed, tcfg.deterministic)
        device = resolve_device(cfg.device, self.slot)
        data = load_data(cfg.dataset, tcfg.batch_size, device)
        log.info("%s: %d train / %d val / %d test images on %s (normalised with mean %.4f, std %.4f)",
                 cfg.dataset.name, len(data.train), len(data.val), len(data.test), describe(device), data.mean, data.std)

        model = build_model(cfg.model, cfg.dataset.num_classes, cfg.dataset.image_size).to(device)
        if tcfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        optimizer = build_optimizer(cfg.optimizer, model)
        steps_per_epoch = math.ceil(len(data.train) / tcfg.batch_size)
        scheduler = build_scheduler(cfg.scheduler, optimizer, tcfg.epochs, steps_per_epoch)
        ema = None
        if tcfg.ema_decay:
            ema = torch.optim.swa_utils.AveragedModel(
                model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(tcfg.ema_decay), use_buffers=True)
        generator = torch.Generator(device=device).manual_seed(cfg.seed)
        augment = build_augment(cfg.augment, background=-data.mean / data.std, generator=generator)
        forward_model = torch.compile(model) if tcfg.compile else model
        eval_model = ema.module if ema is not None else forward_model

        state = RunState()
        if resume:
            model.load_state_dict(resume["model"])
            optimizer.load_state_dict(resume["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(resume["scheduler"])
            if ema is not None:
                ema.load_state_dict(resume["ema"])
            state = RunState(**resume["run_state"])
            torch.set_rng_state(resume["rng"]["torch"])
            if resume["rng"]["device_type"] == device.type:
                generator.set_state(resume["rng"]["generator"])
                if device.type == "cuda":
                    torch.cuda.set_rng_state(resume["rng"]["cuda"], device)
            log.info("Resuming %s after epoch %d (best val acc %.4f at epoch %d)",
                     self.dir, state.epoch, state.best_val_acc, state.best_epoch)

        def checkpoint_state() -> dict[str, Any]:
            rng = {"torch": torch.get_rng_state(), "generator": generator.get_state(), "device_type": device.type}
            if device.type == "cuda":
                rng["cuda"] = torch.cuda.get_rng_state(device)
            return {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "ema": ema.state_dict() if ema is not None else None,
                "run_state": vars(state),
                "rng": rng,
                "config": self.config,
                "preprocessing": {"image_size": cfg.dataset.image_size, "resize_mode": cfg.dataset.resize_mode,
                                  "mean": data.mean, "std": data.std},
            }

        tb = TensorBoardLog(str(self.dir), flatten(self.config), first_step=state.epoch + 1)
        status, message, caught = "completed", "", None
        started = time.perf_counter()
        with StopSignals() as stop:
            for epoch in range(state.epoch + 1, tcfg.epochs + 1):
                bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch}/{tcfg.epochs}", leave=False,
                           disable=None if tcfg.progress else True)
                epoch_start = time.perf_counter()
                result = train_epoch(
                    forward_model, optimizer, data.train, tcfg.batch_size, generator, scheduler=scheduler,
                    label_smoothing=tcfg.label_smoothing, augment=augment, ema=ema, precision=tcfg.precision,
                    on_step=bar.update, stop_requested=stop.requested)
                seconds = time.perf_counter() - epoch_start  # train_epoch ends with a device sync
                bar.close()
                if result.interrupted:
                    status, caught = "interrupted", stop.signal
                    message = (f"Interrupted by signal {stop.signal} during epoch {epoch}; the last checkpoint is "
                               f"after epoch {state.epoch}. Continue with `python run.py resume={self.dir}`.")
                    break
                if not math.isfinite(result.loss):
                    status = "diverged"
                    message = (f"Training diverged at epoch {epoch} (train loss {result.loss}). The last good checkpoint "
                               f"is after epoch {state.epoch}. Lower optimizer.lr (now {cfg.optimizer.lr}).")
                    break
                val = evaluate(eval_model, data.val, tcfg.eval_batch_size, tcfg.precision)
                row = {"epoch": epoch, "train/loss": result.loss, "train/acc": result.acc, "val/loss": val.loss,
                       "val/acc": val.acc, "lr": optimizer.param_groups[0]["lr"], "time/epoch_s": seconds,
                       "time/samples_per_s": result.samples / seconds}
                tb.scalars({k: v for k, v in row.items() if k != "epoch"}, epoch)
                state.history.append(row)
                state.epoch = epoch
                improved = val.acc > state.best_val_acc
                if improved:
                    state.best_val_acc, state.best_epoch = val.acc, epoch
                    ckpt.save_checkpoint(self.best_path, checkpoint_state())
                if epoch % tcfg.checkpoint_every == 0 or epoch == tcfg.epochs:
                    ckpt.save_checkpoint(self.last_path, checkpoint_state())
                log.info("epoch %d/%d  train loss %.4f acc %.4f | val loss %.4f acc %.4f%s | %.2f s, %.0f samples/s",
                         epoch, tcfg.epochs, result.loss, result.acc, val.loss, val.acc, " *" if improved else "",
                         seconds, row["time/samples_per_s"])
                self.write_metrics("running", "", state, device, started)

        test = None
        if status == "completed":
            test = self.test_best(eval_model, model, ema, data, tb, device)
        self.write_metrics(status, message, state, device, started, test)
        tb.close(status_ok=status == "completed")
        if status == "completed":
            log.info("Done: best val acc %.4f (epoch %d), test acc %.4f, test loss %.4f. Artifacts in %s",
                     state.best_val_acc, state.best_epoch, test["acc"], test["loss"], self.dir)
        return Outcome(status, state.best_val_acc, message, caught)

    def test_best(self, eval_model, model, ema, data, tb: TensorBoardLog, device) -> dict[str, float]:
        """Evaluate the test split once, with the weights of the best validation epoch."""
        best = ckpt.load_checkpoint(self.best_path)
        model.load_state_dict(best["model"])
        if ema is not None:
            ema.load_state_dict(best["ema"])
        test = evaluate(eval_model, data.test, self.cfg.trainer.eval_batch_size, self.cfg.trainer.precision)
        step = best["run_state"]["epoch"]
        tb.scalars({"test/loss": test.loss, "test/acc": test.acc}, step)
        if self.cfg.trainer.log_images:
            tb.confusion_matrix(data.test.labels, test.predictions, self.cfg.dataset.num_classes, step)
            tb.misclassified(data.test.images, data.test.labels, test.predictions, step)
        return {"loss": test.loss, "acc": test.acc}

    def write_metrics(self, status: str, message: str, state: RunState, device: torch.device, started: float,
                      test: Optional[dict] = None) -> None:
        history = state.history
        last = history[-1] if history else {}
        best = next((row for row in history if row["epoch"] == state.best_epoch), {})
        epoch_seconds = [row["time/epoch_s"] for row in history]
        steady = epoch_seconds[1:] or epoch_seconds  # the first epoch pays for warm-up
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
            "median_epoch_s": statistics.median(steady) if steady else None,
            "samples_per_s": statistics.median(row["time/samples_per_s"] for row in history[1:] or history) if history else None,
            "wall_time_s": time.perf_counter() - started,
            "device": describe(device),
            "seed": self.cfg.seed,
            "versions": versions(),
            "config": self.config,
            "history": history,
        })
