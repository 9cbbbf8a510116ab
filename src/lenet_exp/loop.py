"""One training run: the epochs, divergence, the checkpoint policy, signals, the final test. The same
loop (:func:`train_trials`) trains the N trials of a stacked group, each a run of its own.

Everything the run writes lives in its run directory. Running again into the same directory resumes:
a completed run is skipped, an unfinished one continues from ``checkpoints/last.pt`` with model,
optimizer, scheduler, epoch, best-val and RNG state. The same mechanism serves a single run
(``resume=<run dir>``) and a re-launched sweep (``hydra.sweep.dir=<sweep dir>``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Protocol

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from lenet_exp import checkpoints
from lenet_exp.app import failure_message, report_failure
from lenet_exp.checkpoints import RunState
from lenet_exp.config import (Monitor, composition, config_differences, differences_besides_length, listed,
                              run_of_other_length, to_dict)
from lenet_exp.continuation import completed_as_asked
from lenet_exp.data import class_names
from lenet_exp.device import describe
from lenet_exp.engine import EpochResult, EvalResult, all_finite, evaluate, random_order, train_epoch
from lenet_exp.errors import CheckpointError, FolderInUse, NotThisRunsFolder, UserError, one_line, shown
from lenet_exp.figures import INLINE
from lenet_exp import files
from lenet_exp.files import COMPLETED, DIVERGED, FAILED, INTERRUPTED, RUNNING, SKIPPED, read_json, save_json
from lenet_exp.slots import JobSlot, job_context
from lenet_exp.overrides import recorded_overrides
from lenet_exp.parts import Parts, build_parts, seed_everything
from lenet_exp.provenance import HOW_IT_RAN, earlier_epochs, other_code, provenance, versions
from lenet_exp.record import (Stopwatch, TensorBoardLog, chosen_options, failure_markdown, selected_model_scalars,
                              summary_markdown, training_hparams)
from lenet_exp.resume import CONTINUE_WITH, how_to_go_on
from lenet_exp.signals import StopSignals
from lenet_exp.sweeps.records import LATER_FAILURE

log = logging.getLogger(__name__)
# A mean train loss this many times a uniform guess's (ln of the class count) is no longer training.
EXPLODED_LOSS_FACTOR = 1000
# Images normalised with their own statistics span about -0.4 to 2.8 (MNIST); past this they were not normalised.
NORMALISED_SPAN = 100
STOPPED_EARLY = "stopped early"  # a trial's status between its last epoch and its test (trainer.early_stop_patience)


@dataclass
class Outcome:
    status: str  # completed | diverged | interrupted | skipped | failed
    val_acc: float
    message: str = ""
    signal: Optional[int] = None


def divergence(train_loss: float, val_loss: float, model, num_classes: int) -> Optional[str]:
    """What shows that training diverged, or None: a non-finite or exploded loss (train or val: an SGD run whose
    train loss stayed just below the bound, its val loss at 44,868, completed and was selected), non-finite
    weights or BatchNorm statistics (which a NaN-free loss can hide, and which must never reach a checkpoint)."""
    exploded = EXPLODED_LOSS_FACTOR * math.log(num_classes)
    if not math.isfinite(train_loss):
        return f"train loss {train_loss}"
    if train_loss > exploded:
        return f"train loss {train_loss:.3g}, exploded"
    if not all_finite(model):
        return "non-finite weights or BatchNorm statistics"
    if not math.isfinite(val_loss):
        return f"val loss {val_loss}"
    if val_loss > exploded:
        return f"val loss {val_loss:.3g}, exploded"
    return None


def how_it_ran(parts: Parts) -> dict:
    """What rounds a run's sums otherwise, as metrics.json records it (provenance.HOW_IT_RAN): the device (its
    thread count) and the fast paths that change the order of its operations."""
    return dict(zip(HOW_IT_RAN, (describe(parts.device), parts.fast_paths.fused_cpu_kernels,
                                 parts.fast_paths.channels_last, parts.fast_paths.compile), strict=True))


def checkpoint_note(saved_epoch: int) -> str:
    if saved_epoch:
        return f"the last checkpoint is after epoch {saved_epoch}"
    return "no checkpoint was written yet, so running again starts over"


class Run:
    def __init__(self, cfg: DictConfig, run_dir: Path, slot: Optional[JobSlot] = None,
                 stopwatch: Optional[Stopwatch] = None, on_epoch_end: Optional[Callable[[dict], None]] = None):
        self.cfg = cfg
        self.on_epoch_end = on_epoch_end  # called with each epoch's row of metrics and timings (train(), benchmarks)
        self.config = to_dict(cfg)
        self.dir = run_dir
        self.slot = slot or JobSlot()
        self.stopwatch = stopwatch or Stopwatch()
        self.git = provenance()
        self.metrics_path = run_dir / files.METRICS
        self.last_path = run_dir / files.LAST_CHECKPOINT
        self.best_path = run_dir / files.BEST_CHECKPOINT
        self.resume: Optional[dict] = None  # the checkpoint to continue from (prepare)
        self.previous: Optional[dict] = None  # the metrics.json an earlier invocation left (prepare)
        self.saved_epoch = 0  # the epoch of checkpoints/last.pt (0: none yet)
        self.asked_to_stop = False  # by a KeyboardInterrupt that on_epoch_end raised
        self.resumed_after = 0  # the epoch this invocation trains on from (start)
        self.folder_is_its_own = False  # prepare() found no other task's, sweep's or config's results there
        self.stacked_with: Optional[list[int]] = None  # the job numbers of its stacked group (hydra/launcher=stacked)
        self.figure_workers = INLINE  # who draws its test figures: this process, or its stacked group's workers

    # ----------------------------------------------------------------------------------------- setup
    def previous_outcome(self) -> Optional[Outcome]:
        """A completed run in this directory is not trained again; a folder of something else is refused (run.py
        refuses it before Hydra writes; train() from Python comes here)."""
        previous = self.previous
        foreign = files.someone_elses_metrics(self.dir)
        if foreign:  # run.py refuses it before Hydra writes
            raise UserError(foreign)
        linked = files.linked_entry(self.dir, files.WRITTEN_ENTRIES)
        if linked:
            raise UserError(f"{linked}. {files.REPLACE_THE_LINK}, or choose a new output directory.")
        if (self.dir / files.SWEEP_RECORD).is_file():
            raise UserError(f"{self.dir} holds a sweep (multirun.yaml). A run needs a folder of its own: choose a new "
                            f"output directory.")
        other = (previous or {}).get("task") or ("predict" if (self.dir / files.PREDICTION).is_file() else "train")
        if other != "train":
            raise UserError(f"{self.dir} holds a task={other} run, whose results this run would write over. Choose a "
                            f"new output directory.")
        if not previous or previous.get("status") != COMPLETED or previous.get("task") != "train":
            return None
        if completed_as_asked(previous, self.config):
            patience = run_of_other_length(previous["config"], self.config, previous.get("epochs_done"))  # more
            done = (f"it trained all its {previous['epochs_done']} epochs, as trainer.early_stop_patience="
                    f"{shown(self.cfg.trainer.early_stop_patience)} does: " if patience else "")
            log.info("Already completed in %s: %sskipped (val acc %.4f)", self.dir, done, previous["val"]["acc"])
            if LATER_FAILURE in previous:  # a run of another config failed here since: this one is the run recorded
                save_json(self.metrics_path, {k: v for k, v in previous.items() if k != LATER_FAILURE})
            return Outcome(SKIPPED, previous["val"]["acc"])
        changed = config_differences(previous.get("config", {}), self.config)
        if changed and not run_of_other_length(previous.get("config", {}), self.config, previous.get("epochs_done")):
            raise UserError(f"{self.dir} already holds a completed run with another config ({listed(changed)}). "
                            f"Choose a new output directory.")
        return None  # it goes on from its last epoch

    def load_resume_state(self) -> Optional[dict]:
        gone = files.last_checkpoint_gone(self.dir)
        if gone:  # training from the start would replace best.pt without a word
            raise CheckpointError(gone)
        if not self.last_path.exists():
            return None
        try:
            saved = checkpoints.load_checkpoint(self.last_path, for_training=True)
        except CheckpointError as error:
            raise CheckpointError(
                f"{self.last_path}, the checkpoint to resume from, cannot be used: {error} {files.start_over(self.dir)}"
            ) from error
        changed = config_differences(saved["config"], self.config)
        recorded = self.previous or {}
        trained = max(saved["run_state"]["epoch"], recorded.get("epochs_done") or 0)
        if changed and not run_of_other_length(saved["config"], self.config, trained):  # another length may be
            if "config" in recorded and not differences_besides_length(recorded["config"], self.config):
                # the run is this config (or it trained on), its checkpoint is not: continuing "as it was" would go
                # in circles
                raise CheckpointError(
                    f"{self.last_path} is another run's checkpoint ({listed(changed)}), not this run's. "
                    f"{files.start_over(self.dir)}")
            if not recorded:  # checkpoints alone (copied in): no record that resume= could continue it from
                raise NotThisRunsFolder(
                    f"{self.dir} holds the checkpoints of a run with another config ({listed(changed)}), and no record "
                    f"of it: give its settings to continue it, or choose a new output directory.")
            raise UserError(
                f"{self.dir} holds an unfinished run with another config ({listed(changed)}). "
                f"Continue it as it was ({how_to_go_on(self.dir)}), or choose a new output directory."
            )
        return saved

    def check_best_checkpoint(self, last: dict) -> None:
        """best.pt must hold this run's best epoch so far, which the final test needs. best.pt is written just
        after last.pt: a run stopped between the two lacks its newest best, which last.pt then holds."""
        epoch, best_epoch = last["run_state"]["epoch"], last["run_state"]["best_epoch"]
        try:
            best = checkpoints.load_checkpoint(self.best_path, for_training=True)  # a copy of a last.pt
            found = best["run_state"]["epoch"]
            problem = f"it holds epoch {found}"
            # another run's best.pt (copied in) would be tested as this run's; a run trained on has another length
            changed = differences_besides_length(best["config"], last["config"])
            if changed:
                found, problem = None, f"it is another run's ({listed(changed)})"
        except CheckpointError as error:  # missing or unreadable
            found, problem = None, str(error)
        if found == best_epoch or best_epoch == 0:
            return
        if best_epoch == epoch:
            log.info("Restored checkpoints/best.pt from last.pt (epoch %d, the best so far)", epoch)
            saved = self.last_path.read_bytes()  # as written: ``last`` is as loaded (its config's '${' escaped)
            files.write_atomic(self.best_path, lambda file: file.write(saved))
            return
        raise CheckpointError(
            f"{self.best_path} should hold epoch {best_epoch}, the best so far, which the final test needs, but "
            f"{problem.rstrip('.')}. {files.start_over(self.dir)}")

    def check_same_data(self, saved: dict, parts: Parts) -> None:
        """A resumed run trains on the data it started with (a checkpoint of an older version has no record)."""
        before, now = saved.get("preprocessing", {}).get("data"), parts.data.fingerprint
        if before is not None and before != now:
            raise UserError(
                f"{self.dir} was trained on other data than {self.cfg.dataset.name} in {self.cfg.dataset.root} holds now "
                f"({before['train']} train / {before['test']} test images then, {now['train']} / {now['test']} now, "
                f"or other contents). Point dataset.root at the data it started with, or choose a new output directory.")

    # ------------------------------------------------------------------------------------ training
    def train(self) -> Outcome:
        self.stopwatch.mark("loaded")  # Hydra, torch and these modules imported, the config composed and checked
        already_ours = self.dir.resolve() in files.held_folders()
        lock_was_there = (self.dir / files.LOCK_FILE).exists()
        self.take_the_folder()
        try:
            return self._train()
        finally:
            if not already_ours:  # taken here (the Python entry point, a sweep's job): free it again
                # (a folder it refused stays as it was)
                files.release_folder(self.dir, delete_lock=not lock_was_there and not self.folder_is_its_own)

    def take_the_folder(self) -> None:
        """Make the run directory this process's (:func:`lenet_exp.files.own_folder`), unless another one's."""
        holder = files.own_folder(self.dir)
        if holder:  # a sweep's job has no other folder to choose
            then = ("then run the sweep's command again" if files.sweep_holding(self.dir) else
                    "or choose another output directory")
            raise FolderInUse(f"{self.dir} is in use by another run ({holder}). Wait until it ends, {then}.")

    def _train(self) -> Outcome:
        done = self.prepare()
        if done:
            return done
        seed_everything(self.cfg.seed, self.cfg.trainer.deterministic)
        parts = build_parts(self.cfg, self.slot, self.stopwatch)
        trial = Trial(self.slot.number, self, parts, self.start(parts))
        train_trials([trial], OneModel(parts, self.cfg.trainer), self.slot)
        return trial.outcome

    def prepare(self) -> Optional[Outcome]:
        """Tidy the run directory and read what an earlier invocation left there: the outcome of a
        completed run (not trained again), or the checkpoint to resume from (``self.resume``)."""
        for folder in (self.dir, self.last_path.parent):  # this run owns them: a leftover is a killed write's
            files.remove_temporary_files(folder)
        self.previous = read_json(self.metrics_path)
        done = self.previous_outcome()
        if not done:
            self.resume = self.load_resume_state()
            self.folder_is_its_own = True
        return done

    def start(self, parts: Parts) -> RunState:
        """The run state to train from: new, or restored into ``parts`` from the checkpoint to resume."""
        if not self.resume:
            return RunState()
        self.check_same_data(self.resume, parts)
        self.check_best_checkpoint(self.resume)
        self.stopwatch.resume(self.previous)
        try:
            state = parts.restore(self.resume)
        except torch.cuda.OutOfMemoryError:  # a RuntimeError of the device's, not the file's
            raise
        except (TypeError, ValueError, KeyError, IndexError, AttributeError, RuntimeError) as error:  # its parts
            raise CheckpointError(f"{self.last_path} cannot be resumed from ({one_line(error)}): lenet_exp never "
                                  f"writes such a checkpoint, it was altered. {files.start_over(self.dir)}") from error
        self.saved_epoch = self.resumed_after = state.epoch
        log.info("Resuming %s after epoch %d: %s", self.dir, state.epoch, self.best_so_far(state))
        ran = how_it_ran(parts)
        if self.code_before(ran):  # (another thread count, device or fast path rounds the sums otherwise: not an
            entries = self.earlier_code(ran)  # uninterrupted run's numbers; the last entry is code_before's)
            span = earlier_epochs(entries, len(entries) - 1)
            log.info("Its %s %s trained otherwise: %s (metrics.json keeps it: earlier_code)", span,
                     "was" if span.startswith("epoch ") else "were",
                     other_code(entries[-1], self.git, versions(), ran))
        if (self.previous or {}).get("status") == COMPLETED:  # trained on: its events forget their test now,
            self.write_running(state, parts)  # so killed, it is no completed run
        return state

    def tensorboard(self, state: RunState, parts: Parts) -> TensorBoardLog:
        as_run = {"dataset.train_size": len(parts.data.train), "dataset.mean": parts.data.mean,
                  "dataset.std": parts.data.std, "device.threads": torch.get_num_threads()}
        choices = chosen_options(self.dir) or composition(self.cfg).choices_of(self.cfg)
        hparams = training_hparams(self.config, self.overrides(), choices, as_run)
        return TensorBoardLog(str(self.dir), hparams, first_step=state.epoch + 1, figure_workers=self.figure_workers)

    def overrides(self) -> list[str]:
        """The overrides that made the run's config: run.py's record, or those compose() was given for train()."""
        return recorded_overrides(self.dir) or composition(self.cfg).overrides_of(self.cfg)

    def interrupted_message(self, reason: str, when: str) -> str:
        return (f"Interrupted by {reason} {when}; {checkpoint_note(self.saved_epoch)}. {CONTINUE_WITH}"
                f"{how_to_go_on(self.dir)}.")

    def end_epoch(self, parts: Parts, state: RunState, tb: TensorBoardLog, epoch: int, result: EpochResult,
                  val: EvalResult, lr: float, seconds: float) -> tuple[str, str]:
        """Record the epoch just trained and validated: history, TensorBoard, checkpoints, metrics.json.
        Returns the run's status after it: ``running``, ``diverged`` or ``stopped early``, with the message why."""
        cfg, tcfg = self.cfg, self.cfg.trainer
        problem = divergence(result.loss, val.loss, parts.model, cfg.dataset.num_classes)
        if problem:  # run again as it was, it diverges again: the advice is a new run
            saved = checkpoint_note(self.saved_epoch) if self.saved_epoch else "no checkpoint was written"
            # an optimizer of one's own (RMSprop's alpha of 1.5) may diverge by a setting of its own too, as may an
            # argument added to a schema's (+optimizer.eps=0: Adam divides 0 by 0)
            schema = OmegaConf.get_type(cfg.optimizer)
            known = [f.name for f in dataclasses.fields(schema)] if dataclasses.is_dataclass(schema) else []
            own = [key for key in cfg.optimizer if key not in ("_target_", "lr", "weight_decay", *known)]
            also = f", or check {', '.join(f'optimizer.{key}' for key in own)}," if own else ""
            fix = (f"Lower optimizer.lr (now {cfg.optimizer.get('lr', 'its class default')}){also} and start a new "
                   f"run.")
            span = parts.data.train.images.abs().max().item()
            if not span <= NORMALISED_SPAN:  # dataset.std=1e-30: no learning rate trains on images of 1e30
                fix = (f"The images, normalised with dataset.mean={parts.data.mean:.4g} and dataset.std="
                       f"{parts.data.std:.4g}, reach {span:.3g} where a network's inputs are of order 1: set "
                       f"dataset.mean and dataset.std to the data's own (null computes them) and start a new run.")
            return DIVERGED, f"Training diverged at epoch {epoch} ({problem}); {saved}. {fix}"
        row = {"epoch": epoch, "train/loss": result.loss, "train/acc": result.acc, "train/lr": lr,
               "val/loss": val.loss, "val/acc": val.acc}
        times = self.stopwatch.epoch(epoch, seconds, result.samples,
                                     first_of_invocation=epoch == self.resumed_after + 1)
        state.history.append(row)
        state.epoch = epoch
        improved = self.improves(val, state)
        if improved:
            state.best_val_acc, state.best_epoch = val.acc, epoch
        best = selected_model_scalars(state.row(state.best_epoch))  # so far: their last values are HParams' columns
        tb.scalars({**{k: v for k, v in row.items() if k != "epoch"}, **best, **times}, epoch)
        stopping = self.stopped_early(state)  # why training stops here (trainer.early_stop_patience), or None
        # last.pt also whenever best.pt changes, and first: a resumed run never starts before its best
        if improved or epoch % tcfg.checkpoint_every == 0 or epoch == tcfg.epochs or stopping:
            checkpoints.save_checkpoint(self.last_path, parts.checkpoint(state, self.config),
                                        copies=[self.best_path] if improved else [])
            self.saved_epoch = epoch
        log.info("epoch %d/%d  train loss %.4f acc %.4f | val loss %.4f acc %.4f%s | train %.2f s, %.0f samples/s",
                 epoch, tcfg.epochs, result.loss, result.acc, val.loss, val.acc, " *" if improved else "",
                 seconds, times["time/samples_per_s"])
        self.write_running(state, parts)
        if self.on_epoch_end is not None:
            try:
                self.on_epoch_end({**row, **times})
            except KeyboardInterrupt:  # raised by train()'s caller: the stop a Ctrl-C asks for, its epoch kept
                self.asked_to_stop = True
        if stopping:
            log.info(stopping)
            return STOPPED_EARLY, stopping
        return RUNNING, ""

    def improves(self, val: EvalResult, state: RunState) -> bool:
        """Whether this epoch's val is better than the best epoch's so far, by ``trainer.monitor``."""
        if self.cfg.trainer.monitor == Monitor.val_loss:
            return state.best_epoch == 0 or val.loss < state.row(state.best_epoch).get("val/loss", math.inf)
        return val.acc > state.best_val_acc

    def best_so_far(self, state: RunState) -> str:
        """The best epoch as the log says it: by its val accuracy, or by its loss where that selected it."""
        if self.cfg.trainer.monitor == Monitor.val_loss:
            return (f"best val loss {state.row(state.best_epoch).get('val/loss', math.nan):.4f} (epoch "
                    f"{state.best_epoch}; val acc {state.best_val_acc:.4f})")
        return f"best val acc {state.best_val_acc:.4f} (epoch {state.best_epoch})"

    def stopped_early(self, state: RunState) -> Optional[str]:
        """Why the run trains no further epoch, where trainer.early_stop_patience says so of ``state``: after the
        epoch just recorded, or as restored (a run resumed after its stop, or trained on to more epochs)."""
        tcfg = self.cfg.trainer
        patience = tcfg.early_stop_patience
        if not patience or state.epoch >= tcfg.epochs or state.epoch - state.best_epoch < patience:
            return None
        watched = "val loss" if tcfg.monitor == Monitor.val_loss else "val acc"
        return (f"Stopped early after epoch {state.epoch} of {tcfg.epochs}: no better {watched} in {patience} "
                f"epoch{'s' if patience != 1 else ''} (trainer.early_stop_patience={patience}).")

    def start_test(self, parts: Parts, status: str) -> Optional[int]:
        """For the final test of a completed run, the weights of its best validation epoch into ``parts``;
        returns that epoch (None: no test)."""
        # a first Ctrl-C from here on lets this last second of work finish: the run is complete
        if status != COMPLETED:
            return None
        best = checkpoints.load_checkpoint(self.best_path)
        parts.load_weights(best)
        return best["run_state"]["epoch"]

    def record_test(self, parts: Parts, tb: TensorBoardLog, test: EvalResult, best_epoch: int) -> dict:
        """The final test's scalars, and its figures being drawn (:meth:`finish` waits for them); returns
        the test metrics."""
        classes = class_names(self.cfg.dataset)
        tb.test(test, parts.data.test.images, parts.data.test.labels, classes, step=best_epoch,
                figures=self.cfg.trainer.log_images)
        return {"loss": test.loss, "acc": test.acc, "acc_by_class": test.acc_by_class(parts.data.test.labels, classes),
                "samples": len(test.predictions), "split_samples": len(parts.data.test)}

    def finish(self, parts: Parts, state: RunState, tb: TensorBoardLog, status: str, message: str,
               test: Optional[dict]) -> None:
        """The test's figures, and metrics.json with the run's status."""
        tb.write_figures()
        self.stopwatch.mark("test")
        metrics = self.metrics(status, message, state, parts, test)
        if status in (COMPLETED, DIVERGED):  # on disk before metrics.json says so: a run then found complete
            # (a full disk meanwhile) went without its test's events
            tb.card(summary_markdown(metrics, self.overrides()))
            tb.session_end(failed=status == DIVERGED)
            tb.flush()
        save_json(self.metrics_path, metrics)

    def report(self, state: RunState, test: Optional[dict]) -> None:
        if test is None:
            return
        tcfg = self.cfg.trainer
        limit = tcfg.limit_batches  # a smoke run's: no accuracy to quote. What it cut short of each split is said
        part = ""
        if limit and test["samples"] < test["split_samples"]:
            part = f" on {test['samples']} of {test['split_samples']} test images"
        if limit and limit * tcfg.eval_batch_size < self.cfg.dataset.val_size:
            part += f", val on its first {'batch' if limit == 1 else f'{limit} batches'}"
        part += " (trainer.limit_batches)" if part else ""
        log.info("Done: %s, test acc %.4f, test loss %.4f%s. Artifacts in %s",
                 self.best_so_far(state), test["acc"], test["loss"], part, self.dir)
        t, epochs = self.stopwatch.timings(), state.epoch - self.resumed_after
        log.info("Time: start-up %.1f s (imports and config %.1f, data %.1f, model and the rest %.1f), "
                 "%d epoch%s %.1f s, test %.1f s", t["startup_s"], t["imports_s"], t["data_s"], t["setup_s"],
                 epochs, "" if epochs == 1 else "s", t["epochs_s"], t["test_s"])

    def trained_with(self) -> list[int]:
        """The job numbers of the stacked groups the run trained in: this invocation's and, resumed, the earlier
        ones' (a trial whose final test failed was tested alone at the re-run: its record said [1], not [0, 1])."""
        numbers = set(self.stacked_with or ())
        earlier = (self.previous or {}).get("stacked_with") if self.resume else None
        if isinstance(earlier, list):  # a record is data
            numbers.update(n for n in earlier if isinstance(n, int))
        return sorted(numbers)

    def earlier_code(self, ran: dict) -> list[dict]:
        """The code and device that trained the run's first epochs where they were other than this invocation's (a
        run resumed after a `git pull` or an upgrade of torch, with another thread count or fast path): each such
        earlier invocation's git commit, library versions, device and fast paths, with the epochs done when it
        ended, oldest first."""
        previous = (self.previous or {}) if self.resume else {}
        earlier = previous.get("earlier_code")
        earlier = [entry for entry in earlier if isinstance(entry, dict)] if isinstance(earlier, list) else []  # data
        return earlier + [entry for entry in [self.code_before(ran)] if entry]

    def code_before(self, ran: dict) -> Optional[dict]:
        """The code, device and fast paths of the invocation this one resumes, as an ``earlier_code`` entry, where
        they are not this one's (``ran``: :func:`how_it_ran`; what a record of before a key was kept lacks is not
        compared)."""
        previous = (self.previous or {}) if self.resume else {}
        kept = [key for key in ran if key in previous]
        theirs = {"git": previous.get("git"), "versions": previous.get("versions"), **{k: previous[k] for k in kept}}
        if not previous.get("epochs_done") or theirs == {"git": self.git, "versions": versions(),
                                                         **{key: ran[key] for key in kept}}:
            return None
        return {"epochs_done": previous["epochs_done"], **theirs}

    def write_running(self, state: RunState, parts: Parts) -> None:
        save_json(self.metrics_path, self.metrics(RUNNING, "", state, parts))

    def metrics(self, status: str, message: str, state: RunState, parts: Parts, test: Optional[dict] = None) -> dict:
        """What metrics.json records of the run now."""
        last, best = (state.history[-1] if state.history else {}), state.row(state.best_epoch)
        timing = self.stopwatch.summary(state.epoch)
        return {
            "task": "train",
            "status": status,
            "message": message,
            "epochs_done": state.epoch,
            "epochs": self.cfg.trainer.epochs,
            "best_epoch": state.best_epoch,
            "train": {"loss": last.get("train/loss"), "acc": last.get("train/acc")},
            "val": {"loss": best.get("val/loss"), "acc": best.get("val/acc")},
            "test": test,
            **timing,
            **how_it_ran(parts),
            "cuda_graphs": parts.step.graph is not None,  # full batches were replayed from a captured graph
            **({"stacked_with": groups} if (groups := self.trained_with()) else {}),
            "seed": self.cfg.seed,
            "versions": versions(),
            "git": self.git,
            **({"earlier_code": code} if (code := self.earlier_code(how_it_ran(parts))) else {}),
            "config": self.config,
            # each epoch's metrics with its timings
            "history": [{**row, **self.stopwatch.epoch_times.get(row["epoch"], {})} for row in state.history],
        }


@dataclass
class Trial:
    """A run that :func:`train_trials` trains: its config, its run directory's bookkeeping, how it ended."""

    number: int  # Hydra's job number (0 for a single run)
    run: Run
    parts: Optional[Parts] = None
    state: Optional[RunState] = None  # where it starts: new, or restored from its checkpoint
    tb: Optional[TensorBoardLog] = None
    status: str = RUNNING
    message: str = ""
    outcome: Optional[Outcome] = None
    owned: bool = False  # its run directory is taken by this process (a stacked group's)

    @property
    def cfg(self) -> DictConfig:
        return self.run.cfg


class Engine(Protocol):
    """How the trials' models train, an epoch at a time: one model (:class:`OneModel`), or N stacked
    into one grouped model (:class:`lenet_exp.stack.group.StackedModels`)."""

    def train_epoch(self, stop_requested: Callable[[], bool], on_step: Callable[[], None],
                    max_batches: Optional[int]) -> Optional[list[EpochResult]]:
        """One epoch of every trial, each in its own data order; None when a stop was asked for."""

    def sync(self, running: list[int]) -> None:
        """Give these trials' own models, EMAs and optimizers the weights and state the epoch left."""

    def freeze(self, i: int) -> None:
        """Trial ``i`` diverged, failed or stopped early: it trains no further, and the others go on."""

    def evaluate(self, indices: list[int], split: str) -> list[EvalResult]:
        """These trials' own eval models (weights, or EMA) on their data's ``split`` (val, test)."""


class OneModel:
    """The engine of one trial: its own model, optimizer, schedule and EMA, trained in place."""

    def __init__(self, parts: Parts, tcfg: DictConfig):
        self.parts, self.tcfg = parts, tcfg

    def train_epoch(self, stop_requested, on_step, max_batches) -> Optional[list[EpochResult]]:
        p, max_norm = self.parts, self.tcfg.grad_clip_norm  # read once: a config's lookup costs microseconds
        return train_epoch(p.step, p.optimizer, random_order(p.step, p.generator),
                           before_step=lambda: p.before_step(max_norm), after_step=p.after_step,
                           on_step=on_step, stop_requested=stop_requested, max_batches=max_batches)

    def sync(self, running: list[int]) -> None:
        pass  # the epoch trained the trial's own model and optimizer

    def freeze(self, i: int) -> None:
        pass  # the only trial: no epoch follows

    def evaluate(self, indices: list[int], split: str) -> list[EvalResult]:
        return [evaluate_trial(self.parts, self.tcfg, split) for _ in indices]


def evaluate_trial(parts: Parts, tcfg: DictConfig, split: str) -> EvalResult:
    """A trial's own eval model (its weights, or their EMA) on its data's ``split`` (val, test)."""
    return evaluate(parts.eval_model, getattr(parts.data, split), tcfg.eval_batch_size, tcfg.precision,
                    parts.eval_views, max_batches=tcfg.limit_batches)


def fail(trial: Trial, error: Exception) -> None:
    """Report a trial's failure and record it in its metrics.json; a group's other trials go on."""
    with job_context(trial.number):
        message = report_failure(trial.run.dir, trial.cfg, error)
    trial.status, trial.message, trial.outcome = FAILED, message, Outcome(FAILED, float("nan"), message)


@contextlib.contextmanager
def trial_alone(trial: Trial, isolate: bool) -> Iterator[None]:
    """Work on one trial's own files (its checkpoint, metrics, test): in a group (``isolate``) an error
    there fails that trial alone; a single run's ends the run."""
    try:
        with job_context(trial.number):
            yield
    except Exception as error:
        if not isolate:
            raise
        fail(trial, error)


def train_trials(trials: list[Trial], engine: Engine, slot: JobSlot) -> None:
    """Train trials that start from the same epoch, each validated, selected on val, checkpointed,
    recorded and tested in its own run directory; sets each one's ``outcome``. A single run is the
    case of one trial; a stacked group (``hydra/launcher=stacked``) trains N through one engine."""
    isolate = len(trials) > 1
    # a bar on a terminal (tqdm's None), but none in parallel workers: they would overwrite each other's line, nor
    # on a terminal that cannot redraw one (TERM=dumb: Emacs' shell), which showed each of its updates
    show_bar = (any(t.cfg.trainer.progress for t in trials) and slot.parallel == 1
                and os.environ.get("TERM") != "dumb")
    try:
        for i, trial in enumerate(trials):
            with trial_alone(trial, isolate):
                trial.tb = trial.run.tensorboard(trial.state, trial.parts)
                stopped = trial.run.stopped_early(trial.state) if trial.status == RUNNING else None
                if stopped:  # restored after its stop (killed before its test, or trained on): tested at once
                    trial.status, trial.message = STOPPED_EARLY, stopped
                    log.info(stopped)
            trial.run.stopwatch.mark("setup")  # model, kernels, optimizer, TensorBoard: the start-up is over
            if trial.status in (FAILED, STOPPED_EARLY):
                engine.freeze(i)
                trial.run.stopwatch.mark("epochs")  # none to train
        with StopSignals(slot.launcher) as stop:
            train_epochs(trials, engine, stop, isolate, show_bar)
            for trial in trials:  # the epochs are over for those still training; they are tested together
                trial.run.stopwatch.mark("epochs", again=False)
            end_with_the_tests(trials, engine, stop, isolate)
    except (Exception, SystemExit) as error:  # a single run's error (a group's trials fail alone, in trial_alone);
        for trial in trials:  # a sys.exit() of train()'s on_epoch_end
            if trial.outcome is None:
                trial.status, trial.message = FAILED, failure_message(error)
        raise
    finally:
        for trial in trials:
            if trial.tb is not None:
                if trial.status == FAILED:  # HParams' Status column: Failure, not Unknown as a running run's
                    trial.tb.card(failure_markdown(trial.message))
                    trial.tb.session_end(failed=True)
                trial.tb.close()


def train_epochs(trials: list[Trial], engine: Engine, stop: StopSignals, isolate: bool, show_bar: bool) -> None:
    """The trials' epochs, each validated and recorded: a trial that diverges or fails is frozen while the
    others go on, and a stop ends the epochs of all as interrupted."""
    tcfg = trials[0].cfg.trainer
    for epoch in range(trials[0].state.epoch + 1, tcfg.epochs + 1):
        running = [i for i, trial in enumerate(trials) if trial.status == RUNNING]
        if not running:
            return
        lrs = [t.parts.optimizer.param_groups[0]["lr"] for t in trials]  # the epoch's first step's
        # as wide as the terminal is at each update: one narrowed meanwhile left a line of each
        bar = tqdm(total=trials[0].parts.steps_per_epoch, desc=f"epoch {epoch}/{tcfg.epochs}", leave=False,
                   disable=None if show_bar else True, dynamic_ncols=True)
        first_weights = {i: weights_of(trials[i].parts.model) for i in running} if epoch == 1 else {}
        # (asked before it began: by on_epoch_end's KeyboardInterrupt, or a signal while the last was recorded)
        when = (f"during epoch {epoch}" if not stop.requested() else f"after epoch {epoch - 1}" if epoch > 1
                else "before epoch 1")
        started = time.perf_counter()
        results = engine.train_epoch(stop.requested, bar.update, tcfg.limit_batches)
        seconds = time.perf_counter() - started  # an epoch ends with a device sync
        bar.close()
        if results is None:
            for i in running:
                trials[i].status = INTERRUPTED
                trials[i].message = trials[i].run.interrupted_message(stop.reason(), when)
            return
        engine.sync(running)
        vals = engine.evaluate(running, "val")
        with stop.records_kept_whole():
            for i, val in zip(running, vals):
                trial = trials[i]
                with trial_alone(trial, isolate):
                    trial.status, trial.message = trial.run.end_epoch(
                        trial.parts, trial.state, trial.tb, epoch, results[i], val, lrs[i], seconds)
                if trial.status in (DIVERGED, FAILED, STOPPED_EARLY):
                    engine.freeze(i)
                    trial.run.stopwatch.mark("epochs")  # its own, while its group trains on
                if trial.run.asked_to_stop:
                    stop.ask(signal.SIGINT, "a KeyboardInterrupt from on_epoch_end")
        for i, weights in first_weights.items():
            if trials[i].status == RUNNING and unchanged(weights, weights_of(trials[i].parts.model)):
                say_unchanged(trials[i])
        # a trial that diverged while others train on: told now, not once the group has ended
        if epoch < tcfg.epochs and any(trials[i].status == RUNNING for i in running):
            for i in (i for i in running if trials[i].status == DIVERGED):
                with job_context(trials[i].number):
                    log.warning("epoch %d/%d  %s Its group trains on without it.", epoch, tcfg.epochs,
                                trials[i].message)


def weights_of(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])  # a copy (channels-last ones too)


def unchanged(before: torch.Tensor, after: torch.Tensor) -> bool:
    """No weight moved by more than float32's rounding of the largest (a zero bias moved to 1e-30 did move)."""
    return bool((after - before).abs().max() <= torch.finfo(torch.float32).eps * before.abs().max())


def say_unchanged(trial: Trial) -> None:
    """optimizer.lr=1e-30 trained a run at chance accuracy to its end without a word: its steps were below what
    float32 weights can hold."""
    with job_context(trial.number):
        log.warning("Epoch 1 changed none of the model's weights: the steps of optimizer.lr=%s were too small for "
                    "float32 weights, or the gradients were 0. Choose a larger optimizer.lr (1e-3 trains the "
                    "default model).", trial.cfg.optimizer.get("lr", "(its class default)"))


def end_with_the_tests(trials: list[Trial], engine: Engine, stop: StopSignals, isolate: bool) -> None:
    """Each trial that did not fail tested at its best epoch (all together), recorded, reported, and given its
    outcome."""
    best_epochs = {}
    for i, trial in enumerate(trials):
        trial.run.stopwatch.mark("testing")  # (a trial stopped early waited for its group's epochs since)
        if trial.status in (RUNNING, STOPPED_EARLY):
            trial.status = COMPLETED
        if trial.status != FAILED:  # a failed one's outcome says why
            with trial_alone(trial, isolate):
                best_epochs[i] = trial.run.start_test(trial.parts, trial.status)
    testing = [i for i, epoch in best_epochs.items() if epoch is not None]
    tests = dict.fromkeys(range(len(trials)))
    for i, result in zip(testing, engine.evaluate(testing, "test")):
        trial = trials[i]  # its figures are drawn (by a group's workers) while the next ones are asked for
        with trial_alone(trial, isolate):
            tests[i] = trial.run.record_test(trial.parts, trial.tb, result, best_epochs[i])
    for i, trial in enumerate(trials):
        if trial.status == FAILED:
            continue
        with trial_alone(trial, isolate):
            test = tests[i]
            trial.run.finish(trial.parts, trial.state, trial.tb, trial.status, trial.message, test)
            trial.run.report(trial.state, test)
            # the signal that stopped the run, or came during its final test (it completes, the caller stops)
            trial.outcome = Outcome(trial.status, trial.state.best_val_acc, trial.message, stop.signal)
