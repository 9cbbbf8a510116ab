"""``SweepSummary``: the Hydra callback listed under ``hydra.callbacks`` in configs/config.yaml.

* ``on_multirun_start`` refuses an interval to a grid sweep, applies the search space rule and names
  the job folders by what varies (lenet_exp/sweeps/space.py); a joblib or submitit_local sweep's run.py
  then collects its jobs when stopped (lenet_exp/launch.py).
* ``on_job_end`` hands a failed or diverged Optuna trial to the study as failed.
* ``on_multirun_end`` writes the summary into the sweep directory (lenet_exp/sweeps/report.py), prints
  the table sorted by validation accuracy with mean +- std of test accuracy over seeds, and then exits
  with status 1 if any job failed, diverged or died, or with 128 + N if a signal N stopped the sweep.
"""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path
from typing import Any, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, read_write

from lenet_exp.launch import (collect_stopped_jobs, prepare_local_controllers, start_joblibs_trackers_deaf_to_hang_ups,
                               sweep_stop_signal)
from lenet_exp.slots import Launching, available_cores, cores_each, joblib_workers
from lenet_exp.sweeps.ending import interrupted_status, jobs_left_running, sweep_cut_short
from lenet_exp.sweeps.records import every_job_completed
from lenet_exp.sweeps.report import write_summary_whole
from lenet_exp.sweeps.space import (apply_search_space_rule, grid_jobs, name_jobs_by_what_varies,
                                    refuse_a_space_that_draws_wrong, refuse_an_empty_grid, refuse_intervals_in_a_grid,
                                    refuse_studies_swept)

EXIT_JOBS_FAILED = 1
log = logging.getLogger(__name__)


def refuse_plugin_settings(hydra: DictConfig) -> None:
    """Exits with a message on a launcher's or sweeper's setting that it or its jobs would meet with a
    traceback."""
    launcher, sweeper = hydra.launcher, hydra.sweeper
    if launcher.get("n_jobs") == 0:  # joblib's own error is a traceback
        sys.exit("Error: hydra.launcher.n_jobs=0: give how many jobs run at once (1 or more; -1: one per core).")
    for key in ("cpus_per_task", "submitit.cpus_per_task"):  # submitit's, the stacked launcher's groups'
        cpus = OmegaConf.select(launcher, key, default=None)
        if cpus is not None and (not isinstance(cpus, int) or cpus < 1):  # torch.set_num_threads fails in each job
            sys.exit(f"Error: hydra.launcher.{key}={cpus!r}: give how many cores each job reserves (1 or more), "
                     f"or null for the launcher's default.")
    for key in ("mem_gb", "gpus_per_node", "gpus_per_task", "submitit.mem_gb", "submitit.gpus_per_node"):
        amount = OmegaConf.select(launcher, key, default=None)
        if amount is not None and amount < 0:  # taken without a word where submitit runs jobs here
            sys.exit(f"Error: hydra.launcher.{key}={amount!r}: give what each job reserves (0 or more), or null for "
                     f"the launcher's default.")
    seed = OmegaConf.select(sweeper, "sampler.seed", default=None)  # before Hydra makes the sampler from it
    if seed is not None and not 0 <= seed < 2 ** 32:  # optuna's ValueError, over several lines
        sys.exit(f"Error: hydra.sweeper.sampler.seed={seed!r}: give a seed from 0 to 2**32 - 1, or null for a new "
                 f"one each study.")
    for key in ("tasks_per_node", "submitit.tasks_per_node"):  # each would train the job (or group) at once
        tasks = OmegaConf.select(launcher, key, default=None)
        if tasks is not None and tasks != 1:
            sys.exit(f"Error: hydra.launcher.{key}={tasks!r}: a job trains in one process, so 1 (more would each "
                     f"train the same job at once). Leave it out.")
    for key in ("timeout_min", "submitit.timeout_min"):  # submitit kills a job at once that has none left
        minutes = OmegaConf.select(launcher, key, default=None)
        if minutes is not None and (not isinstance(minutes, int) or minutes < 1):
            group = "group" if key.startswith("submitit.") else "job"
            sys.exit(f"Error: hydra.launcher.{key}={minutes!r}: give the minutes each {group} may run before it is "
                     f"stopped (1 or more).")


def jobs_per_batch(config: DictConfig) -> Optional[int]:
    """How many jobs the sweeper hands its launcher at once: a grid's jobs (at most ``max_batch_size``), an
    Optuna study's ``n_jobs`` (at most ``n_trials``); None where a sweep lists its jobs only as it runs."""
    jobs, sweeper = grid_jobs(config), config.hydra.sweeper
    if jobs is None:
        trials, at_once = sweeper.get("n_trials"), sweeper.get("n_jobs")
        return min(trials, at_once) if isinstance(trials, int) and isinstance(at_once, int) else at_once
    return min(len(jobs), sweeper.get("max_batch_size") or len(jobs))


def share_the_cores(config: DictConfig) -> None:
    """The jobs that run at once share the cores. submitit_local starts a batch's jobs at once, and each took
    every core (6-14x slower on 2 cores); without a cpus_per_task of the user's, each job gets its share. joblib's
    jobs divide the cores among its workers, but 3 jobs with ``n_jobs=-1`` on 16 cores run 3 at once, not 16.
    Passed on as a Hydra override, as the job folders' names are (space.py)."""
    launcher, launching, batch = config.hydra.launcher, Launching.of(config.hydra.launcher), jobs_per_batch(config)
    if not isinstance(batch, int):  # a sweep listed only as it runs
        return
    if launching.joblib:
        if not 1 <= batch < joblib_workers(launcher.n_jobs):
            return
        name, setting = "joblib", f"hydra.launcher.n_jobs={batch}"
    else:
        local = launching.submitit == "local" and not launching.stacked  # whose groups share the cores themselves
        if not local or launcher.get("cpus_per_task") or batch < 2:  # one job has the machine
            return
        name, setting = "submitit_local", f"hydra.launcher.cpus_per_task={cores_each(batch)}"
    log.info("%s runs %d job%s at once: %d of the %d cores each (%s).", name, batch, "s" if batch > 1 else "",
             cores_each(batch), available_cores(), setting)
    with read_write(config.hydra.overrides):
        config.hydra.overrides.hydra.append(setting)


class SweepSummary(Callback):
    """Hydra callback: search space rule at the start of a sweep, summary and exit status at its end."""

    def __init__(self, plot: bool = True, tensorboard: bool = True, fail_on_error: bool = True) -> None:
        for name, value in {"plot": plot, "tensorboard": tensorboard, "fail_on_error": fail_on_error}.items():
            if not isinstance(value, bool):  # Hydra passes what was written: `tensorboard=off` would be truthy
                sys.exit(f"Error: hydra.callbacks.sweep_summary.{name}={value}: expected true or false.")
        self.plot = plot
        self.tensorboard = tensorboard
        self.fail_on_error = fail_on_error

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        refuse_studies_swept(config)
        refuse_intervals_in_a_grid(config)
        refuse_a_space_that_draws_wrong(config)
        apply_search_space_rule(config)
        refuse_an_empty_grid(config)
        name_jobs_by_what_varies(config)
        refuse_plugin_settings(config.hydra)
        launching = Launching.of(config.hydra.launcher)
        if launching.joblib or launching.submitit == "local":  # local workers: they save their state on a stop
            collect_stopped_jobs()
        if launching.joblib:
            start_joblibs_trackers_deaf_to_hang_ups()
        if launching.submitit == "local":
            prepare_local_controllers()
        share_the_cores(config)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        """Hand a failed or diverged trial to Optuna as failed instead of crashing the whole study.

        The task returns NaN for a job that failed or diverged. hydra-optuna-sweeper 1.3.0 (optuna
        2.10) then crashes: optuna rejects NaN and the sweeper's fallback ``study.tell(state=FAIL,
        values=[nan])`` raises too (facebookresearch/hydra#2237, fixed only in the 1.4 pre-releases).
        A return value that is no number takes the sweeper's working path: the trial is told FAIL
        (values=None), logged as a trial without a result (hydra_plugins/lenet_exp_optuna_sweeper), and the
        study goes on. The job's metrics.json keeps the
        status. Other sweepers get the NaN unchanged.
        """
        from hydra.core.utils import JobStatus

        target = str(OmegaConf.select(config, "hydra.sweeper._target_", default="") or "")
        if "optuna" not in target or job_return.status != JobStatus.COMPLETED:
            return
        value = job_return.return_value
        if isinstance(value, float) and math.isnan(value):
            job_return.return_value = None

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        # Hydra turns an exception raised here into a warning; SystemExit is not an Exception and passes.
        sweep_dir = Path(config.hydra.sweep.dir)
        left_running = jobs_left_running()  # a job still marked running is not known to be killed then
        summary, held = write_summary_whole(sweep_dir, config, final=not left_running, plot=self.plot,
                                            tensorboard=self.tensorboard)
        stopped = sweep_stop_signal()  # its jobs have saved their state and stopped
        if stopped or held:
            sys.stdout.flush()  # the table before the last line
            sys.exit(interrupted_status(stopped or held, every_job_completed(summary, config),
                                        after_the_jobs=not stopped))
        if not self.fail_on_error:
            return
        if summary is not None and summary.bad_jobs:
            print(f"{len(summary.bad_jobs)} of {len(summary.jobs)} jobs did not complete: exit status "
                  f"{EXIT_JOBS_FAILED}.", file=sys.stderr)
            sys.stdout.flush()
        # a job that died is still "running"; an unwritten summary was said above, with why
        if (summary is None or not summary.jobs or summary.bad_jobs or summary.unwritten or left_running
                or sweep_cut_short()):
            sys.exit(EXIT_JOBS_FAILED)
