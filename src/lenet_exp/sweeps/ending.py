"""How run.py ends a sweep that stopped, or whose job died: its summary of what it has done, how to go on
(running the same command into its folder continues it), and the exit status. A sweep folder refused
before its first job began is removed. No torch import."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Iterator, Optional

from lenet_exp.files import FREE_SOME_SPACE, LOCK_FILE, SWEEP_RECORD, disk_full_error, release_folder
from lenet_exp.launch import (EXIT_SIGNAL_BASE, LOCAL_SUBMITIT_VARIABLE, STOP_FILE_VARIABLE, ask_jobs_to_stop,
                              stopped_job_returns, wait_for_jobs_to_stop)

log = logging.getLogger(__name__)

_sweep_dir: Optional[Path] = None  # this run.py's sweep folder, once Hydra has started the sweep


_stored_study = False  # the sweep is an Optuna study kept in a storage, which fails a stopped trial


def note_sweep_dir(folder: Optional[Path]) -> None:
    """Called as run.py starts its run (None) or sweep: where a stopped sweep continues."""
    global _sweep_dir, _stored_study
    _sweep_dir, _stored_study = folder, False


def the_same_command() -> str:
    """What continues this sweep: its command run again into its folder."""
    return f"the same command with hydra.sweep.dir={shlex.quote(str(_sweep_dir))}"


def note_stored_study() -> None:
    """Called by the Optuna sweeper of a study kept in a storage: a stopped trial is failed there, and run
    again into its sweep folder it resumes, its result added to the study as a new trial."""
    global _stored_study
    _stored_study = True


def interrupted_status(signum: int, completed: bool = False, after_the_jobs: bool = False) -> int:
    """For a stop that ends run.py (Hydra composing, a sweep's launcher waiting for its jobs, a sweep whose
    jobs stopped, or one that came ``after_the_jobs`` had ended, as the summary was written): say how to go on,
    where a sweep has not ``completed`` each of its jobs; returns the exit status."""
    how = ""
    if completed:
        how = "; every job of the sweep had completed"
    elif _sweep_dir:
        how = f"; running {the_same_command()} continues the sweep"
        if _stored_study and not after_the_jobs:
            how += (": its stopped trials resume first (the study holds them as failed, and each one's result "
                    "as a new trial), then new ones")
    stop = (f"Stopped by signal {signum} after the sweep's jobs ended" if after_the_jobs else
            f"Interrupted by signal {signum}")
    print(f"{stop}{how}.", file=sys.stderr)
    return EXIT_SIGNAL_BASE + signum


def forget_a_sweep_that_never_began() -> None:
    """A sweep refused once its folder was made (a typo in its first job's config, a launcher's setting): the
    folder holds its multirun.yaml and lock alone. Removed, as a refused run leaves no folder; a folder with
    anything else in it stays."""
    if _sweep_dir is None or not _sweep_dir.is_dir():
        return
    if {path.name for path in _sweep_dir.iterdir()} <= {SWEEP_RECORD, LOCK_FILE}:
        (_sweep_dir / SWEEP_RECORD).unlink(missing_ok=True)
        release_folder(_sweep_dir, delete_lock=True)
        _sweep_dir.rmdir()


def end_stopped_sweep(signum: int) -> int:
    """A sweep whose stopped job ends run.py (the basic launcher's, a stacked group's): its summary of what it
    has done, as a joblib sweep ends, then how to go on; returns the exit status."""
    from lenet_exp.sweeps.records import every_job_completed, find_job_dirs, load_sweep_config, not_started

    summary = None
    config = load_sweep_config(_sweep_dir) if _sweep_dir else None
    # none where the stop came before the first job began, and the sweep lists no jobs (a study draws them)
    if _sweep_dir and (find_job_dirs(_sweep_dir) or not_started([], config)):
        from lenet_exp.sweeps.report import summary_settings, write_summary_whole

        # a stop meanwhile is this one said again: the sweep ends as it asked
        summary, _ = write_summary_whole(_sweep_dir, config, **summary_settings(config))
        sys.stdout.flush()  # the table before the last line
    if threading.current_thread() is threading.main_thread():  # the sweep has ended: a Ctrl-C more only printed
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a traceback of torch's exit handlers
    return interrupted_status(signum, every_job_completed(summary, config))


_left_running = False  # a submitit job died: the sweep ended while others may still run (on a cluster)
_cut_short = False  # the disk filled up: the sweep ended before each of its jobs had run


@contextlib.contextmanager
def ending_on_a_dead_job() -> Iterator[None]:
    """Within a sweeper's sweep: a job whose process died without a result ends the sweep as a failed job
    does, with its summary, instead of its launcher's traceback. joblib's TerminatedWorkerError (the
    out-of-memory killer, a kill -9, a crash): joblib has ended the sweep's other jobs. submitit's
    UncompletedJobError (killed, out of memory, a lost node): the other jobs run on by themselves on a
    cluster, and stop with run.py here (submitit_local's watch it).
    Likewise a full disk, where Hydra writes a job's ``.hydra/`` before the job can catch anything."""
    global _left_running, _cut_short
    _left_running = _cut_short = False  # this sweep's
    try:
        yield
    except Exception as error:
        kind = type(error).__name__
        full = disk_full_error(error)
        if full:
            _cut_short = True
            log.error("%s: Hydra could not write the config or log of the sweep's next job; the jobs before it keep "
                      "what they wrote. %s, then run %s to continue the sweep.", full.strerror, FREE_SOME_SPACE,
                      the_same_command())
            return
        if kind == "FailedJobError" and "failed during processing" not in str(error):  # sbatch refused to submit
            said = [line.strip() for line in str(error).splitlines() if line.strip()]
            sys.exit(f"Error: Slurm refused the sweep's jobs: {said[-1] if said else kind}. Fix the launcher's Slurm "
                     f"settings (hydra.launcher.partition, account, qos, ...; the stacked launcher's "
                     f"hydra.launcher.submitit.slurm_*), then run the same command again.")
        if kind == "TerminatedWorkerError":
            codes = re.search(r"exit codes of the workers are \{(.*?)\}", str(error))
            how = f"its worker ended with {codes.group(1)}" if codes else "its worker ended"
            others = "joblib ended the sweep's other jobs"
        elif kind == "UncompletedJobError":
            how = str(error).splitlines()[0]  # "Job 123 (task: 0) with path .../123_0_result.pkl"
            # this machine's jobs (submitit_local) are asked to stop, and the summary waits for them: none is
            # listed as running when run.py ends; a cluster's run on by themselves
            stopped = False
            if os.environ.get(LOCAL_SUBMITIT_VARIABLE) and ask_jobs_to_stop(signal.SIGTERM):
                stopped = wait_for_jobs_to_stop(_sweep_dir)
                # asked by the sweep, not by the user: it ends as a sweep with a failed job, not a stopped one
                Path(os.environ[STOP_FILE_VARIABLE]).unlink(missing_ok=True)
            if stopped:
                others = "the sweep's other jobs stopped, each at its last checkpoint"
            else:
                others = (f"the sweep's other jobs run on by themselves (`python -m lenet_exp.sweeps "
                          f"{shlex.quote(str(_sweep_dir))}` summarises them again)")
                _left_running = True
        else:
            raise
        log.error("A job's process died without a result (%s: out of memory, killed, or crashed); %s. Running %s "
                  "continues the sweep.", how, others, the_same_command())


def jobs_left_running() -> bool:
    """Whether the sweep ended at a dead submitit job, while its other jobs may still run."""
    return _left_running


def sweep_cut_short() -> bool:
    """Whether the sweep ended before each of its jobs had run (a full disk)."""
    return _cut_short


def end_the_sweep_if_stopped_in_run_py(signum: int) -> None:
    """A job stopped in run.py itself (the basic launcher's, a stacked group's) ends the sweep there: its summary,
    how to go on, the exit; one in a process of its own returns, for its launcher's run.py to end the sweep."""
    if not stopped_job_returns():
        sys.exit(end_stopped_sweep(signum))
