"""The ``stacked`` Hydra launcher: a sweep's compatible jobs trained as one batched model, in one process.

    python run.py -m hydra/launcher=stacked optimizer.lr=3e-4,1e-3,3e-3 seed=0,1,2,3

Each job still gets what the basic launcher gives it: its own run directory (``.hydra/``, run.log,
metrics.json, a TensorBoard run, checkpoints that ``task=eval`` and ``resume=`` take), callbacks
(the sweep summary), and one ``JobReturn``, so Hydra's sweepers, Optuna included, work unchanged.
Jobs are grouped by what must be equal to share a training step (``lenet_exp.stack.grouping``); the
log says which setting split a group. A job that cannot be stacked, or a group of one, runs exactly as
with the basic launcher. Groups train one after another in this process, or each as a submitit job
(``hydra.launcher.submitit.cluster``: local ones one per GPU, or a Slurm job each); ``max_stack`` caps a
group's size.
"""


import copy
import logging
import math
import os
import sys
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Collection, Dict, Optional, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import (JobReturn, JobRuntime, JobStatus, _save_config, configure_log, env_override,
                              filter_overrides, run_job, setup_globals)
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import OmegaConfBaseException

from lenet_exp.config import without_hydra
from lenet_exp.files import COMPLETED, SKIPPED
from lenet_exp.runlog import prefix_console_lines
from lenet_exp.launch import take_ctrl_c_back  # no torch: in every run.py
from lenet_exp.slots import available_cores, cores_each, current_job, job_prefix
from lenet_exp.overrides import as_written
from lenet_exp.sweeps.space import job_folder

from hydra_plugins.lenet_exp_stacked_launcher.job_configs import JobConfigs

log = logging.getLogger(__name__)


def resolved_as_its_own(task_config: DictConfig) -> None:
    """Resolve a job's task config in place, under its own Hydra config (HydraConfig set to it): each
    ${hydra:…} takes the job's value. One that cannot resolve stays as written: its run says why."""
    try:
        OmegaConf.resolve(task_config)
    except OmegaConfBaseException:
        pass


def environment_of(config: DictConfig) -> dict[str, str]:
    """The variables that Hydra's run_job sets for this job (hydra.job.env_set), resolved as it resolves them: each
    ${hydra:…} as the job's own (HydraConfig is set to it), and in order, an ${oc.env:…} of one set before it taking
    its value. Raises where one cannot be resolved (Hydra's run_job then fails, and the sweep ends)."""
    if not config.hydra.job.env_set:  # most jobs: no copy of the Hydra config to set (a group's jobs each need some)
        return {}
    HydraConfig.instance().set_config(config)
    env: dict[str, str] = {}
    for key in config.hydra.job.env_set:
        with env_override(env):
            env[str(key)] = str(config.hydra.job.env_set[key])
    return env


def job_log_file(config: DictConfig, handler: logging.FileHandler) -> Path:
    """Where this job's own logging config puts ``handler``'s file (``${hydra.job.num}`` in its name the job's; a
    relative name in the job's folder under hydra.job.chdir, where a lone job runs), or the file's name in the
    job's folder where its config does not say."""
    HydraConfig.instance().set_config(config)
    try:
        filename = OmegaConf.select(config, f"hydra.job_logging.handlers.{handler.get_name()}.filename")
    except OmegaConfBaseException:
        filename = None
    folder = Path(config.hydra.runtime.output_dir)
    if not filename:
        return folder / Path(handler.baseFilename).name
    return folder / str(filename) if config.hydra.job.chdir else Path(str(filename))


def job_dir_of(config: DictConfig) -> Path:
    """A sweep job's folder: hydra.sweep.dir / hydra.sweep.subdir (its ``${hydra:…}`` resolved as Hydra's own)."""
    return Path(str(config.hydra.sweep.dir), job_folder(config))


class Cluster(Enum):
    """Where submitit runs each group (its AutoExecutor's cluster)."""

    local = "local"  # a subprocess of this machine
    slurm = "slurm"


@dataclass
class GroupJobConf:
    """Where each group trains: in this process (``cluster: null``), or as one submitit job per group."""

    cluster: Optional[Cluster] = None  # null: here, one group after another; local: a subprocess each; slurm
    timeout_min: int = 120  # per group
    cpus_per_task: Optional[int] = None
    gpus_per_node: Optional[int] = None  # slurm: 1, so that each group trains on a GPU of its own
    tasks_per_node: int = 1
    mem_gb: Optional[int] = None
    slurm_partition: Optional[str] = None
    slurm_account: Optional[str] = None
    slurm_additional_parameters: Dict[str, Any] = field(default_factory=dict)


# Trials per group where a trial trains fastest, for max_stack=null. On the 2-vCPU VM a trial's step costs
# least at N = 8 and 6-11 % more at 16-32, and 32 trials train 1.17x as fast in 4 groups of 8 as in one;
# on an H200 a group of 32 costs least per trial (benchmarks/README.md).
CPU_STACK, GPU_STACK = 8, 32


@dataclass
class StackedLauncherConf:
    _target_: str = "hydra_plugins.lenet_exp_stacked_launcher.stacked_launcher.StackedLauncher"
    # trials per group at most (null: 8 on the CPU, 32 on a GPU); a larger sweep trains as several groups in turn
    max_stack: Optional[int] = None
    submitit: GroupJobConf = field(default_factory=GroupJobConf)


ConfigStore.instance().store(group="hydra/launcher", name="stacked", node=StackedLauncherConf, provider="lenet_exp")


def local_gpus() -> list[int]:
    """This machine's GPUs that jobs may use: CUDA_VISIBLE_DEVICES's numbers, else every one torch sees.
    Submitit gives a local job GPUs by number only: GPUs named otherwise (UUIDs, MIG) are shared."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        names = [name.strip() for name in visible.split(",") if name.strip()]
        if all(name.lstrip("-").isdigit() for name in names):
            numbers = [int(name) for name in names]
            hidden = next((i for i, number in enumerate(numbers) if number < 0), len(numbers))
            return numbers[:hidden]  # as CUDA reads it: up to the first invalid number ("-1": no GPU)
        log.warning("CUDA_VISIBLE_DEVICES=%s names GPUs other than by number: the groups share them instead of "
                    "taking one each. Set it to GPU numbers (e.g. 0,1) for one group per GPU.", visible)
        return []
    import torch

    return list(range(torch.cuda.device_count()))


def gpu_waves(units: int, gpus: list[int]) -> list[list[tuple[int, Optional[int]]]]:
    """(unit, GPU) pairs in waves that run at once: one unit per GPU, a wave after the one before it;
    without GPUs, every unit in one wave."""
    if not gpus:
        return [[(index, None) for index in range(units)]]
    return [[(index, gpus[index - start]) for index in range(start, min(units, start + len(gpus)))]
            for start in range(0, units, len(gpus))]


class JobLines(logging.Filter):
    """A job's run.log takes its own lines, and the group's shared ones (data, device) while it trains in the
    group (``shared(number)``): not the others' lines, nor a group's that it never joined or has left. A log file
    that several jobs' configs name takes each of their lines, and a shared one once."""

    def __init__(self, numbers: Collection[int], shared: Callable[[int], bool]):
        super().__init__()
        self.numbers, self.shared = set(numbers), shared

    def filter(self, record: logging.LogRecord) -> bool:
        job = current_job()
        return job in self.numbers if job is not None else any(map(self.shared, self.numbers))


def line_prefix() -> str:
    """Console lines start with the job they belong to, as in any sweep (``[job 3] epoch 1/10 ...``), or with
    ``[stack] `` where they are the group's."""
    number = current_job()
    return "[stack] " if number is None else job_prefix(number)


class StackedLauncher(Launcher):
    def __init__(self, max_stack: Optional[int] = None, submitit: Optional[Dict[str, Any]] = None) -> None:
        self.max_stack = max_stack
        settings = (OmegaConf.to_container(submitit, resolve=True, enum_to_str=True) if OmegaConf.is_config(submitit)
                    else submitit)
        # submitit's AutoExecutor parameters that are set (slurm_* ones apply to Slurm only)
        self.submitit = {key: value for key, value in (settings or {}).items() if value not in (None, {})}
        self.config: Optional[DictConfig] = None
        self.task_function: Optional[TaskFunction] = None
        self.hydra_context: Optional[HydraContext] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function
        if not isinstance(hydra_context.config_loader, JobConfigs):  # the sweeper's context is this one
            hydra_context.config_loader = JobConfigs(hydra_context.config_loader)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from lenet_exp.stack.grouping import plan

        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        if self.max_stack is not None and self.max_stack < 1:  # (the schema takes integers only)
            sys.exit(f"Error: hydra.launcher.max_stack={self.max_stack!r}: give an integer >= 1 (trials per group), "
                     f"or null for {CPU_STACK} on the CPU and {GPU_STACK} on a GPU.")
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        configs = {}
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            sweep_config = self.hydra_context.config_loader.job_config(self.config, list(overrides))
            with open_dict(sweep_config):
                sweep_config.hydra.job.id = sweep_config.hydra.job.num = idx
            with read_write(sweep_config.hydra.runtime), open_dict(sweep_config.hydra.runtime):  # as run_job sets it
                sweep_config.hydra.runtime.output_dir = os.path.abspath(job_dir_of(sweep_config))  # (planned by it)
            configs[idx] = sweep_config
        jobs = [self._as_planned(idx, cfg) for idx, cfg in configs.items()]
        completed = [job for job in jobs if job.completed]
        groups, notes = plan([job for job in jobs if not job.completed], self._cap)
        caps = sorted({self._cap(job.config) for job in jobs})
        if groups:
            log.info("Launching %d job%s%s in %d group%s (stacked where they can share a step, at most %s per group)",
                     len(jobs), "s" if len(jobs) != 1 else "",
                     f" ({len(completed)} completed already, skipped)" if completed else "", len(groups),
                     "s" if len(groups) != 1 else "", " or ".join(map(str, caps)))
        else:
            log.info("Launching %d job%s: completed already, skipped", len(jobs), "s" if len(jobs) != 1 else "")
        for note in notes:
            log.info(note)
        for group in groups:
            for job in group:
                log.info("\t#%d : %s", job.number, " ".join(filter_overrides(job_overrides[job.number - initial_job_idx])))
        returns: dict[int, JobReturn] = {}
        for job in completed:  # each skipped here, as the basic launcher skips it: no group, cores or cluster job
            returns.update(self._run_here([configs[job.number]]))
        units = [[configs[job.number] for job in group] for group in groups]
        if self.submitit.get("cluster"):
            for result in self._submit(units):
                returns.update(result)
        else:
            for unit in units:
                returns.update(self._run_here(unit))
        self.hydra_context.config_loader.kept.clear()  # a batch's: none is asked for again
        return [returns[idx] for idx in configs]

    def _cap(self, config: DictConfig) -> int:
        """The most trials in a group of this job: ``max_stack``, or where its device trains them fastest."""
        if self.max_stack is not None:
            return self.max_stack
        return GPU_STACK if self._trains_on_a_gpu(config) else CPU_STACK

    def _trains_on_a_gpu(self, config: DictConfig) -> bool:
        kind = str(OmegaConf.select(config, "device.type", default="auto"))
        if kind == "auto" and self.submitit.get("cluster") == "slurm":  # a node of the cluster's, not this machine
            return bool(self.submitit.get("gpus_per_node"))
        if kind != "auto":
            return kind == "cuda"
        from lenet_exp.launch import stops_held

        # imports torch: only where this machine's GPUs decide. A Ctrl-C in those seconds waits for the import:
        # torch half-imported met the summary with "partially initialized module 'torch'" errors
        with stops_held():
            from lenet_exp.device import wants_cuda

        return wants_cuda(kind)

    def _run_unit(self, configs: list) -> dict:
        """A group, or a job alone exactly as the basic launcher runs it."""
        if len(configs) > 1:
            return self._run_group(configs)
        return {configs[0].hydra.job.num: run_job(hydra_context=self.hydra_context, task_function=self.task_function,
                                                  config=configs[0], job_dir_key="hydra.sweep.dir",
                                                  job_subdir_key="hydra.sweep.subdir")}

    def _run_here(self, configs: list) -> dict:
        """A unit in this process; then the sweeper's lines bare again, as the basic launcher leaves them after
        each job (after a batch of skipped jobs, Optuna's "Best value" carried the last job's number)."""
        try:
            return self._run_unit(configs)
        finally:
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)

    def __call__(self, configs: list, singleton_state: Dict[type, Singleton]) -> dict:
        """A unit in a submitit job (its own process, on a cluster node or here)."""
        take_ctrl_c_back()  # first thing, as a job alone does (lenet_exp.app.run_task)
        Singleton.set_state(singleton_state)
        setup_globals()
        return self._run_unit(configs)

    def _submit(self, units: list) -> list:
        """Each unit as one submitit job; their results once all have ended (a failed job: its jobs failed)."""
        try:
            import submitit
        except ImportError:
            sys.exit("Error: hydra.launcher.submitit.cluster needs submitit: pip install submitit (it comes with "
                     "the .[dev] extra), or leave the cluster null to train the groups in this process.")

        params = dict(self.submitit)
        cluster = params.pop("cluster", None)
        folder = Path(str(self.config.hydra.sweep.dir)) / ".submitit" / "%j"
        executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
        executor.update_parameters(**params)
        # local jobs with a GPU each: one per GPU at once (submitit would give each job the same GPUs)
        gpus = local_gpus() if executor.cluster == "local" and params.get("gpus_per_node") else []
        if executor.cluster == "local" and not params.get("cpus_per_task"):
            self._share_the_cores(units, at_once=min(len(units), len(gpus) or len(units)))
        results = []
        for wave in gpu_waves(len(units), gpus):
            jobs = []
            for index, gpu in wave:
                if gpu is not None:
                    # the local executor's own setting: AutoExecutor refuses `visible_gpus` (no such generic one)
                    executor._executor.update_parameters(gpus_per_node=1, visible_gpus=[gpu])
                jobs.append(executor.submit(self, units[index], Singleton.get_state()))
            log.info("Submitted %d submitit job%s (%s)%s: logs in %s", len(jobs), "s" if len(jobs) != 1 else "",
                     executor.cluster, f", one on each of GPUs {[gpu for _, gpu in wave]}" if gpus else "",
                     folder.parent)
            results += [self._result(units[index], job) for (index, _), job in zip(wave, jobs)]
        return results

    @staticmethod
    def _share_the_cores(units: list, at_once: int) -> None:
        """Local groups that train at once share the cores (each took every one), as joblib's workers do."""
        if at_once < 2:  # one group has the machine
            return
        share = cores_each(at_once)
        log.info("%d groups train at once here: %d of the %d cores each (hydra.launcher.submitit.cpus_per_task)",
                 at_once, share, available_cores())
        for config in (config for unit in units for config in unit):
            with read_write(config.hydra.launcher), open_dict(config.hydra.launcher):
                config.hydra.launcher.submitit.cpus_per_task = share  # what the group's job_slot reads

    def _result(self, unit: list, job) -> dict:
        """A submitted unit's JobReturns; a failed or killed job's jobs have none, and count as failed."""
        try:
            return job.result()
        except Exception as error:
            # a killed job's error ends with the tail of its log, which says nothing of why it ended
            why = ("its process died without a result: out of memory, killed, or crashed"
                   if type(error).__name__ == "UncompletedJobError" else (str(error).strip().splitlines() or [""])[-1])
            log.error("Submitit job %s (jobs %s) failed: %s", job.job_id, ", ".join(str(c.hydra.job.num) for c in unit),
                      why)
            return self._returns_without_a_value(unit)

    def _returns_without_a_value(self, configs: list) -> dict:
        """JobReturns for jobs that did not get to end themselves, as a failed trial's: no value for the
        sweeper (Optuna's callback then tells it "failed"); the summary reads each run folder."""
        returns = {}
        for c in configs:
            returns[c.hydra.job.num] = ret = JobReturn(overrides=as_written(c.hydra.overrides.task),
                                                       cfg=without_hydra(c), status=JobStatus.COMPLETED)
            ret.return_value = math.nan
            self._hand_back(c, ret)
        return returns

    def _hand_back(self, config: DictConfig, ret: JobReturn) -> None:
        """A job's return to the sweeper, through the callbacks' on_job_end under the job's own Hydra config."""
        HydraConfig.instance().set_config(config)
        self.hydra_context.callbacks.on_job_end(config=config, job_return=ret)

    def _as_planned(self, number: int, config: DictConfig):
        """The job as the plan reads it: its task config, with each ${hydra:…} and ${oc.env:…} resolved as its run
        resolves it (`dataset.root=${hydra:runtime.cwd}/data`: unresolved, every job trained alone), and its
        environment (jobs of one group train in one)."""
        from lenet_exp.stack.grouping import Job, as_found

        task = without_hydra(config)
        HydraConfig.instance().set_config(config)  # its ${hydra:…} as its own
        try:
            environment = environment_of(config)
        except OmegaConfBaseException:  # it trains alone, where Hydra's run_job says why and ends the sweep
            environment = None
        with env_override(environment or {}):
            resolved_as_its_own(task)
        options = {group: str(option) for group, option in config.hydra.runtime.choices.items()
                   if option is not None and not group.startswith("hydra")}
        return as_found(Job(number, task, options=options, environment=environment),
                        Path(config.hydra.runtime.output_dir))

    def _start_job(self, config: DictConfig) -> JobReturn:
        """What Hydra's run_job does before calling the task: the job's folder, .hydra/ and on_job_start."""
        output_dir = Path(config.hydra.runtime.output_dir)
        HydraConfig.instance().set_config(config)
        ret = JobReturn(overrides=as_written(config.hydra.overrides.task), cfg=without_hydra(config),
                        hydra_cfg=copy.deepcopy(HydraConfig.instance().cfg), working_dir=os.getcwd(),
                        task_name=JobRuntime.instance().get("name"))
        output_dir.mkdir(parents=True, exist_ok=True)
        if config.hydra.output_subdir is not None:
            hydra_output = Path(config.hydra.runtime.output_dir) / str(config.hydra.output_subdir)
            _save_config(ret.cfg, "config.yaml", hydra_output)
            _save_config(ret.hydra_cfg, "hydra.yaml", hydra_output)
            _save_config(config.hydra.overrides.task, "overrides.yaml", hydra_output)
        self.hydra_context.callbacks.on_job_start(config=config, task_function=self.task_function)
        # its ${hydra:…} as its own (data_seed=${hydra:job.num}): the group trains under the last job's Hydra config
        with env_override(environment_of(config)):
            resolved_as_its_own(ret.cfg)
        if config.hydra.job.chdir:  # its group runs where run.py ran: its relative paths meant from there, as alone
            from lenet_exp.app import paths_from_the_original_folder

            paths_from_the_original_folder(ret.cfg)
        return ret

    def _route_logs(self, configs: list[DictConfig]) -> None:
        """One process, several jobs: each job's lines go to its own run.log and show its number."""
        from lenet_exp.files import held_by_another
        from lenet_exp.stack.group import takes_shared_lines

        here = os.getcwd()
        if configs[0].hydra.job.chdir:  # a relative file name opens where a lone job would, not where run.py ran
            os.chdir(configs[0].hydra.runtime.output_dir)
        try:
            configure_log(configs[0].hydra.job_logging, configs[0].hydra.verbose)
        finally:
            os.chdir(here)
        root = logging.getLogger()
        for handler in list(root.handlers):
            if isinstance(handler, logging.FileHandler):  # the first job's run.log: one per job instead
                root.removeHandler(handler)
                handler.close()
                jobs_of: dict[Path, list[int]] = {}
                for config in configs:
                    jobs_of.setdefault(job_log_file(config, handler), []).append(config.hydra.job.num)
                for path, numbers in jobs_of.items():
                    if held_by_another(path.parent):  # a `resume=` of the job trains there: its run.log is that run's
                        continue
                    job_handler = type(handler)(path, mode=handler.mode, encoding=handler.encoding)
                    job_handler.setFormatter(handler.formatter)
                    job_handler.setLevel(handler.level)
                    job_handler.addFilter(JobLines(numbers, takes_shared_lines))
                    root.addHandler(job_handler)
        prefix_console_lines(line_prefix)

    def _run_group(self, configs: list) -> dict:
        from lenet_exp.app import record_interruption, say_how_it_ended, say_where_it_runs
        from lenet_exp.validation import validate
        from lenet_exp.launch import kill_signals_stop, stops_held
        from lenet_exp.slots import JobSlot, job_context, job_slot
        from lenet_exp.sweeps.ending import end_the_sweep_if_stopped_in_run_py

        configs_by_number = {config.hydra.job.num: config for config in configs}
        started, returns = [], {}  # the jobs whose folder the launcher began to write, and those it wrote
        trials = []
        try:
            # the environment Hydra's run_job gives each job (hydra.job.env_set), which the group's jobs share
            with kill_signals_stop(), env_override(environment_of(configs[0])):
                with stops_held():  # seconds of imports (torch), in which a signal must stop cleanly too
                    from lenet_exp.loop import Run, Trial, fail
                    from lenet_exp.record import Stopwatch
                    from lenet_exp.stack.group import train_group
                for number, config in configs_by_number.items():
                    started.append(number)
                    returns[number] = self._start_job(config)
                self._route_logs(configs)
                group_started = Stopwatch.for_job().started  # each trial's wall time is its group's, imports too
                for config in configs:
                    number, ret = config.hydra.job.num, returns[config.hydra.job.num]
                    trial = Trial(number, Run(ret.cfg, Path(config.hydra.runtime.output_dir), JobSlot(number),
                                              Stopwatch(started=group_started)))
                    with job_context(number):
                        say_where_it_runs(trial.run.dir, ret.overrides)
                    try:
                        HydraConfig.instance().set_config(config)  # its messages name its own options and overrides
                        validate(ret.cfg)
                    except Exception as error:
                        fail(trial, error)
                    trials.append(trial)
                train_group(trials, job_slot(configs[0].hydra))  # a submitit job's cpus_per_task, as a lone job's
        except KeyboardInterrupt as interrupt:  # before the loop took the signals over (imports, data), or a second one
            signum = getattr(interrupt, "signum", 2)
            trained = {trial.number: trial for trial in trials}
            for number in started:  # each job with a folder, stopped before it could end
                trial, job_dir = trained.get(number), Path(configs_by_number[number].hydra.runtime.output_dir)
                if (trial is None or trial.outcome is None) and job_dir.is_dir():  # from its last checkpoint, if any
                    cfg = returns[number].cfg if number in returns else without_hydra(configs_by_number[number])
                    with job_context(number):
                        record_interruption(job_dir, cfg, signum, "running the sweep again")
            end_the_sweep_if_stopped_in_run_py(signum)  # a submitit job hands back its results
            return self._returns_without_a_value(configs)
        signal = None
        for trial in trials:
            ret, outcome = returns[trial.number], trial.outcome
            with job_context(trial.number):
                say_how_it_ended(outcome)
            ret.status = JobStatus.COMPLETED
            ret.return_value = outcome.val_acc if outcome.status in (COMPLETED, SKIPPED) else math.nan
            self._hand_back(configs_by_number[trial.number], ret)
            signal = signal or outcome.signal  # a stop during training, or during a completed trial's test
        if signal:  # a submitit job hands back its results
            end_the_sweep_if_stopped_in_run_py(signal)
        return returns
