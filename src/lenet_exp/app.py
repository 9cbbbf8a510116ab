"""The Hydra task function's body: validate, dispatch to train / eval / predict, report errors.

A single run that fails prints one short message and exits non-zero (the full traceback with
HYDRA_FULL_ERROR=1). In a multirun a failing job is recorded in its metrics.json and the sweep goes
on; the sweep summary callback exits non-zero at the end.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from lenet_exp.config import STUDY_GROUP, settings_named, to_dict
from lenet_exp.errors import (CheckpointError, ConfigError, FolderInUse, NotThisRunsFolder, UserError,
                              full_errors_wanted, one_line)
from lenet_exp.files import (COMPLETED, DIVERGED, FAILED, FREE_SOME_SPACE, INTERRUPTED, LAST_CHECKPOINT, METRICS,
                             RUNNING, SKIPPED, DiskFull, disk_full_error, held_by_another, mount_point, over_a_limit,
                             read_json, run_events, save_json)
from lenet_exp.launch import (EXIT_SIGNAL_BASE, ignore_ctrl_c_between_jobs, kill_signals_stop, launcher_gone, stops_held,
                              sweep_stop_signal, take_ctrl_c_back)
from lenet_exp.slots import JobSlot, job_prefix, job_slot
from lenet_exp.overrides import TASK_PATH_KEYS, as_written, override_key
from lenet_exp.runlog import leave_the_run_log, prefix_console_lines, show
from lenet_exp.resume import CONTINUE_WITH, how_to_go_on
from lenet_exp.sweeps.ending import end_the_sweep_if_stopped_in_run_py
from lenet_exp.sweeps.records import LATER_FAILURE, NOT_STARTED
from lenet_exp.validation import validate

log = logging.getLogger("lenet_exp")
EXIT_ERROR = 1


def report_failure(run_dir: Path, cfg: DictConfig, error: Exception) -> str:
    """Log a job's error (one line; a traceback only for what is no user error) and record it in its
    metrics.json; returns the message."""
    full = disk_full_error(error) if not isinstance(error, UserError) else None  # (which says where and what to do)
    if full:  # a write outside files.write_atomic (TensorBoard's)
        error = DiskFull(f"No space left on {mount_point(run_dir)} writing the files of {run_dir} "
                         f"({full.strerror}). {FREE_SOME_SPACE}, then run the same command again to continue.")
    limit = over_a_limit(error) if not isinstance(error, UserError) else None
    if limit:  # a write outside files.write_atomic (TensorBoard's) past the file size limit: a traceback
        error = UserError(f"Cannot write the files of {run_dir} ({one_line(error)}): {limit}, then run the same "
                          f"command again to continue.")
    missing = os.fsdecode(error.filename) if isinstance(error, FileNotFoundError) and error.filename else ""
    if missing.startswith(f"{run_dir.resolve()}{os.sep}"):  # e.g. TensorBoard's events, its folder deleted
        error = UserError(f"{missing} went missing while the run wrote it: was {run_dir}, or a file in it, deleted "
                          f"or moved meanwhile? Run the same command again.")
    message = failure_message(error)
    log.error("Error: %s", message, exc_info=not isinstance(error, UserError))
    if isinstance(error, (FolderInUse, NotThisRunsFolder)):  # its metrics.json and events are another run's
        return message
    # a last.pt that cannot be read is what failed: the run is no longer "interrupted", told to go on from it
    unreadable = isinstance(error, CheckpointError) and LAST_CHECKPOINT in str(error)
    try:
        record_failure(run_dir, cfg, message, resumable=not unreadable)
    except (OSError, UserError) as failure:  # e.g. the full disk that ended the run
        log.error("(%s could not record the failure either: %s)", run_dir / METRICS, failure)
    record_failed_session(run_dir, cfg, message)
    return message


def failure_message(error: Exception) -> str:
    """What a job's failure is reported and recorded as: a user error's message (a sweep job's value fixed on a
    sweep's command line: "`python run.py -m optimizer.lr=...`"), or the error in one line."""
    if not isinstance(error, UserError):
        return one_line(error)
    if isinstance(error, ConfigError) and HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        error = error.for_a_sweep()
    return str(error)


def record_failed_session(run_dir: Path, cfg: DictConfig, message: str) -> None:
    """A training job that failed before its TensorBoard run began (a bad value, its data): an HParams
    session of its settings that ended as a failure, and a card that says why, so that the HParams tab lists
    it with the value it was given (it had no row at all). One that had begun ended its own (loop.train_trials)."""
    if str(cfg.get("task")) != "train":
        return
    try:  # (a run that failed for want of file handles cannot list its folder either)
        if run_events(run_dir):
            return
        from lenet_exp.config import composition
        from lenet_exp.overrides import recorded_overrides
        from lenet_exp.record import TensorBoardLog, chosen_options, failure_markdown, training_hparams

        overrides = recorded_overrides(run_dir) or composition(cfg).overrides_of(cfg)
        choices = chosen_options(run_dir) or composition(cfg).choices_of(cfg)
        tb = TensorBoardLog(str(run_dir), training_hparams(to_dict(cfg), overrides, choices, {}), before_training=True)
        tb.card(failure_markdown(message))
        tb.session_end(failed=True)
        tb.close()
    except Exception as error:  # a config that does not resolve, a full disk: metrics.json says it already
        log.debug("no TensorBoard session for the failed run in %s: %s", run_dir, one_line(error))


def record_interruption(run_dir: Path, cfg: DictConfig, signum: int, again: str) -> None:
    """Log and record a stop that came before the run could save its state (imports, data, a second Ctrl-C);
    ``again`` says what runs it again where it has no checkpoint (a new folder, for a run.py run named by time)."""
    if cfg.task == "train" and (run_dir / LAST_CHECKPOINT).is_file():  # (a stop in its final test too)
        message = (f"Interrupted by signal {signum} before the run could save its state; its last checkpoint stays. "
                   f"{CONTINUE_WITH}{how_to_go_on(run_dir)}.")
    elif cfg.task == "train":
        message = (f"Interrupted by signal {signum} before the run could save its state; no checkpoint was written "
                   f"yet, so {again} starts over.")
    else:
        message = f"Interrupted by signal {signum} before task={cfg.task} ended; {again} runs it."
    log.warning("%s", message)
    record_failure(run_dir, cfg, message, status=INTERRUPTED)


def record_failure(run_dir: Path, cfg: DictConfig, message: str, status: str = FAILED, resumable: bool = True) -> None:
    """List a failed (or stopped) job in the sweep summary without overwriting what an earlier run wrote there:
    its completed results, or its own record of a stop where it was stopped again (or not started) before it
    could save anything. An earlier failure's or stop's message gives way to this one, and its status too,
    but where a stopped run's checkpoint is there to resume from (an Optuna study resumes only stopped trials), and
    ``resumable``: not the one that failed to be read."""
    path = run_dir / METRICS
    metrics = read_json(path)
    previous = metrics.get("status") if metrics is not None else None  # (a hand-made record may have none)
    if metrics is None:
        try:
            config = to_dict(cfg)
        except Exception:  # an interpolation that cannot resolve: keep it as written
            from omegaconf import OmegaConf
            config = OmegaConf.to_container(cfg, resolve=False, enum_to_str=True)
        metrics = {"task": str(cfg.get("task", "train")), "config": config}  # a config of one's own may lack it
    elif previous == COMPLETED:  # its results stay, and the sweep summary lists the failure
        if status == FAILED:
            save_json(path, {**metrics, LATER_FAILURE: message})
        return
    elif previous != RUNNING and (status == NOT_STARTED or status == previous == INTERRUPTED):
        return  # not started this time, or stopped again before it saved: its earlier record says more
    elif resumable and previous == INTERRUPTED and (run_dir / LAST_CHECKPOINT).is_file():
        status = INTERRUPTED  # a resume that failed before it trained: the run goes on as its record says
        if CONTINUE_WITH not in message:
            message = f"{message.rstrip('.')}. {CONTINUE_WITH}{how_to_go_on(run_dir)}."
    metrics.update(status=status, message=message)
    save_json(path, metrics)


def run_task(cfg: DictConfig) -> float:
    """``@hydra.main``'s function (run.py): one job of a run or a sweep."""
    take_ctrl_c_back()
    try:
        return run_job_of_task(cfg)
    finally:
        ignore_ctrl_c_between_jobs()  # a joblib worker, until its next job


def run_job_of_task(cfg: DictConfig) -> float:
    hydra_cfg = HydraConfig.get()
    slot = job_slot(hydra_cfg)
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    chosen = settings_named(as_written(hydra_cfg.overrides.task))
    if multirun:
        prefix_console_lines(lambda: job_prefix(slot.number))  # a parallel sweep's jobs share one terminal
    if hydra_cfg.job.chdir:  # Hydra runs the job in its folder: a relative path was meant from where run.py ran
        paths_from_the_original_folder(cfg)
    if multirun and held_by_another(run_dir):  # a `resume=` of this job trains there: the job is refused (Run.train),
        leave_the_run_log(run_dir)  # its lines not written among that run's
    # first, where it is written and what differs from the defaults: nothing to wait for until the end
    say_where_it_runs(run_dir, as_written(hydra_cfg.overrides.task))
    if not multirun:
        warn_of_sweep_settings(hydra_cfg, chosen)
    stopped = sweep_stop_signal()
    if stopped:  # the sweep was stopped before this job started
        message = f"the sweep was stopped by signal {stopped} first; running the sweep again runs the rest"
        log.warning("Not started: %s.", message)
        record_failure(run_dir, cfg, message, status=NOT_STARTED)  # as a job of a sweep that ended before it
        return float("nan")
    try:
        with kill_signals_stop():
            with stops_held():  # seconds of imports (torch, torchvision), in which a signal must stop cleanly too
                import lenet_exp.loop  # noqa: F401
                from lenet_exp.record import Stopwatch
            return run_job(cfg, run_dir, slot, multirun, chosen, Stopwatch.for_job())
    except KeyboardInterrupt as interrupt:  # before the loop took the signals over, or a second Ctrl-C
        signum = getattr(interrupt, "signum", signal.SIGINT)
        record_interruption(run_dir, cfg, signum, "running the same command again")
        return end_stopped(signum, multirun, float("nan"))
    finally:
        if launcher_gone(slot.launcher):  # nobody left to take this worker's result: it would wait for ever
            logging.shutdown()
            os._exit(EXIT_SIGNAL_BASE + signal.SIGTERM)


def say_where_it_runs(run_dir: Path, overrides: list[str]) -> None:
    """A job's first line: where it is written, and what differs from the defaults."""
    log.info("Run in %s with %s", run_dir, " ".join(overrides) or "the default config")


def warn_of_sweep_settings(hydra_cfg, chosen: set[str]) -> None:
    """A single run whose command line names a study, a launcher or a sweeper: each says how a sweep runs."""
    study = hydra_cfg.runtime.choices.get(STUDY_GROUP)  # None after ~sweep
    if study and STUDY_GROUP in chosen:
        log.warning("%s=%s is the search space of a sweep: this is one run. Add -m to sweep.", STUDY_GROUP, study)
    for group in ("hydra/launcher", "hydra/sweeper"):
        if any(override_key(str(override)) == group for override in hydra_cfg.overrides.hydra):
            log.warning("%s=%s says how a sweep runs: this is one run. Add -m to sweep.", group,
                        hydra_cfg.runtime.choices.get(group))


def paths_from_the_original_folder(cfg: DictConfig) -> None:
    """ckpt=, image= and dataset.root= made absolute from the folder run.py ran in (Hydra keeps it)."""
    from hydra.utils import to_absolute_path
    from omegaconf import OmegaConf

    for key in TASK_PATH_KEYS:
        value = OmegaConf.select(cfg, key)
        if isinstance(value, str) and value:
            OmegaConf.update(cfg, key, to_absolute_path(os.path.expanduser(value)))


def end_stopped(signum: int, multirun: bool, result: float) -> float:
    """A stopped job's end: in a sweep's process of its own, ``result`` for its launcher; otherwise the
    process ends, a sweep's saying how to continue it (its jobs' messages name only their own folders)."""
    if not multirun:
        sys.exit(EXIT_SIGNAL_BASE + signum)
    end_the_sweep_if_stopped_in_run_py(signum)
    return result


def run_job(cfg: DictConfig, run_dir: Path, slot: JobSlot, multirun: bool, chosen: set[str], stopwatch) -> float:
    """The job's result for the sweeper; exits (SystemExit) where a single run must end non-zero."""
    try:
        validate(cfg)
        if cfg.task == "eval":
            from lenet_exp.inference import run_eval
            evaluated = run_eval(cfg, run_dir, slot, chosen)  # a study's value: val where it has one, as ranked
            return (evaluated["val"] or evaluated["test"])["acc"]
        if cfg.task == "predict":
            from lenet_exp.inference import prediction_line, run_predict
            prediction = run_predict(cfg, run_dir, slot, chosen)
            show(job_prefix(slot.number) * multirun + prediction_line(prediction))  # as the job's log lines
            return prediction["probability"]

        from lenet_exp.loop import Run
        outcome = Run(cfg, run_dir, slot, stopwatch).train()
    except Exception as error:
        if not multirun:  # a sweep's jobs get theirs back as the sweep ends
            from lenet_exp.callbacks import put_back_the_runs_record
            put_back_the_runs_record(run_dir, not_its_folder=isinstance(error, NotThisRunsFolder))
        if full_errors_wanted():
            raise
        report_failure(run_dir, cfg, error)
        if multirun:
            return float("nan")  # the sweep goes on; sweepers treat NaN as a failed trial
        sys.exit(EXIT_ERROR)

    if outcome.status == SKIPPED and not multirun:  # completed already: the record stays the run's own
        from lenet_exp.callbacks import put_back_the_runs_record
        put_back_the_runs_record(run_dir)
    say_how_it_ended(outcome)
    # a sweep stops too, the user asked for it: at once, or once run.py has its stopped jobs' results
    if outcome.status == INTERRUPTED:
        return end_stopped(outcome.signal or signal.SIGINT, multirun, float("nan"))
    if outcome.status == COMPLETED and outcome.signal:  # the signal came during the final test
        return end_stopped(outcome.signal, multirun, outcome.val_acc)
    if outcome.status == DIVERGED:
        if not multirun:
            sys.exit(EXIT_ERROR)
        return float("nan")
    return outcome.val_acc


def say_how_it_ended(outcome) -> None:
    """A stopped or diverged run's message, in its log (a failure's is logged where it is caught)."""
    if outcome.status == INTERRUPTED:
        log.warning("%s", outcome.message)
    elif outcome.status == COMPLETED and outcome.signal:
        log.warning("Stopped by signal %d after the run completed.", outcome.signal)
    elif outcome.status == DIVERGED:
        log.error("Error: %s", outcome.message)
