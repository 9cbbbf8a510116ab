"""Where a job runs among the jobs started with it: its slot, the CPU threads it takes, what launched it
(:class:`Launching`), and the job that a process's log lines belong to (a stacked group trains several).
How a stop reaches a sweep's jobs is launch.py's.

No torch import here: every ``run.py`` reads its launcher with it.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
from dataclasses import dataclass
from typing import Iterator, Optional

from lenet_exp.cgroups import cpu_quota
from lenet_exp.launch import LOCAL_SUBMITIT_VARIABLE, USERS_OMP_VARIABLE, launcher_pid

log = logging.getLogger(__name__)

# the job whose work this thread does now, where one process trains several (a stacked group)
_current_job: contextvars.ContextVar[Optional[int]] = contextvars.ContextVar("lenet_exp_job", default=None)


@dataclass
class JobSlot:
    """Where a job sits among the jobs that run at the same time on this machine."""

    number: int = 0  # Hydra's job number (0 for a single run)
    parallel: int = 1  # how many jobs share this machine at once (joblib's n_jobs)
    threads: Optional[int] = None  # cores reserved for this job by its launcher (submitit's cpus_per_task)
    launcher: Optional[int] = None  # pid of the run.py that started this job's process: its exit stops the job

    def cpu_threads(self, asked: Optional[int]) -> int:
        """``device.threads`` if set, else the launcher's reservation (each at most the cores there are), else
        this job's share of the cores (:func:`cores_each`)."""
        cores = available_cores()
        for setting, threads in (("device.threads", asked), ("hydra.launcher's cpus_per_task", self.threads)):
            if threads:
                if threads > cores:  # 1000 threads on 2 cores: an epoch 100x slower
                    log.warning("%s=%d is more than the %d cores this process may use: %d threads instead (more only "
                                "wait for each other).", setting, threads, cores, cores)
                return min(threads, cores)
        return cores_each(self.parallel)


def omp_num_threads() -> Optional[int]:
    """The threads that the user's OMP_NUM_THREADS allows (its first level's, in a list such as ``4,2``), or
    None where it is unset or names no number. torch takes it as its default, which a job's share of the cores
    would otherwise replace: the usual cap of a shared machine, or of a container's CPU quota, is kept. In a
    job that run.py started, run.py's own (joblib sets its workers' to its share of the cores, which a job
    that trains alone there does not keep); a job's ``hydra.job.env_set.OMP_NUM_THREADS`` before either."""
    from hydra.core.hydra_config import HydraConfig

    value = os.environ.get(USERS_OMP_VARIABLE, os.environ.get("OMP_NUM_THREADS", ""))
    if HydraConfig.initialized() and "OMP_NUM_THREADS" in HydraConfig.get().job.env_set:
        value = str(HydraConfig.get().job.env_set.OMP_NUM_THREADS)  # set in the job's environment by Hydra
    first = value.split(",")[0].strip()
    return int(first) if first.isdigit() and int(first) > 0 else None


def available_cores() -> int:
    """The cores this process may use: those it may run on (a cpuset), at most the CPUs its cgroup's CPU quota
    pays for (a container's --cpus, a Kubernetes limit)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
    return min(cores, cpu_quota() or cores)


def cores_each(at_once: int) -> int:
    """The threads of each of ``at_once`` jobs that train together on this machine: its share of the cores,
    at most the user's OMP_NUM_THREADS."""
    share = max(1, available_cores() // max(1, at_once))
    return min(share, omp_num_threads() or share)


def joblib_workers(n_jobs: int) -> int:
    """How many jobs joblib runs at once for its ``n_jobs``: -1 one per core, -2 all but one, and so on (0 it
    refuses)."""
    return n_jobs if n_jobs > 0 else max(1, available_cores() + 1 + n_jobs)


@dataclass(frozen=True)
class Launching:
    """What runs a sweep's jobs, as its ``hydra.launcher`` config says (:meth:`of`)."""

    joblib: bool = False  # joblib's workers, children of run.py (n_jobs of them)
    stacked: bool = False  # the stacked launcher: compatible jobs as one group each
    submitit: Optional[str] = None  # where submitit runs the jobs (or the stacked groups): "local", "slurm" or None

    @classmethod
    def of(cls, launcher) -> "Launching":
        """Read from ``hydra.launcher``: joblib by its ``n_jobs``, the others by their ``_target_``."""
        target = str(launcher.get("_target_", ""))
        if "n_jobs" in launcher:
            return cls(joblib=True)
        for name, cluster in (("LocalLauncher", "local"), ("SlurmLauncher", "slurm")):
            if target.endswith(f"submitit_launcher.{name}"):
                return cls(submitit=cluster)
        if target.endswith(".StackedLauncher"):
            cluster = (launcher.get("submitit") or {}).get("cluster")  # an Enum, or null: the groups train in run.py
            return cls(stacked=True, submitit=getattr(cluster, "name", cluster))
        return cls()  # Hydra's basic launcher, or one this project does not know: nothing is decided by it


def job_slot(hydra_cfg) -> JobSlot:
    """This job's slot, from the launcher's own config: ``n_jobs`` parallel workers that are children
    of run.py (joblib), or ``cpus_per_task`` reserved per job (submitit, or the stacked launcher's submitit
    jobs, in which a job that trains alone runs too); a single run has the machine."""
    from hydra.types import RunMode

    if hydra_cfg.mode != RunMode.MULTIRUN:
        return JobSlot()
    launcher, launching = hydra_cfg.launcher, Launching.of(hydra_cfg.launcher)
    number = hydra_cfg.job.num
    if launching.joblib:
        return JobSlot(number, parallel=joblib_workers(launcher.n_jobs), launcher=launcher_pid())
    if launching.stacked:  # cores reserved for its groups' submitit jobs; none where they train in run.py
        cpus = launcher.submitit.get("cpus_per_task") if launching.submitit else None
    else:
        cpus = launcher.get("cpus_per_task")
    # a submitit_local job watches its run.py as a joblib worker does; a cluster's job is detached by design
    return JobSlot(number, threads=cpus or None,
                   launcher=launcher_pid() if os.environ.get(LOCAL_SUBMITIT_VARIABLE) else None)


@contextlib.contextmanager
def job_context(number: int) -> Iterator[None]:
    """Within this context, log lines belong to job ``number`` (its run.log, its ``[job N]`` prefix)."""
    token = _current_job.set(number)
    try:
        yield
    finally:
        _current_job.reset(token)


def current_job() -> Optional[int]:
    return _current_job.get()


def job_prefix(number: int) -> str:
    """What starts a sweep's job's console lines: its jobs share one terminal."""
    return f"[job {number}] "
