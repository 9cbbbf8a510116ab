"""hydra-optuna-sweeper's sweeper as ``sweep=optuna`` uses it, with the ends that it lacks:

* a study stopped by a signal (a joblib sweep's run.py collects its stopped jobs: lenet_exp/launch.py)
  ends once the batch that was training has stopped, instead of proposing trials that cannot start;
* a study in which no trial completed (each one failed or diverged), or whose trial's process died, ends
  with the sweep summary and its exit status, instead of a traceback;
* a study kept in a storage (``hydra.sweeper.storage``) and run again goes on from its trials: its
  seeded sampler would otherwise propose the trials of the first run once more, and its jobs are
  numbered as the study numbers its trials. A trial that this run asked for and did not finish
  (stopped, or never started) is failed there, not left running for ever; run again into the same
  sweep folder, a stopped trial (or one a killed run.py left running) resumes there first, and its result
  joins the study as a new trial of the same parameters. A search space that the stored study cannot take
  is refused before any trial starts;
* the sweep's config is saved in its folder (multirun.yaml), as Hydra's basic sweeper saves a grid's: the
  checks that keep a sweep folder to one sweep, ``resume=`` and the summary read it;
* a trial without a result (its job failed or diverged) is logged as such, not as a job that returned no
  number, and optuna's own lines come through Hydra's logging (they came in colour, escape codes and all,
  into a file or a pipe);
* a ``hydra.sweep.subdir`` without the job's number that gives two trials one folder (the study drew the
  same values twice) is refused before the second one's .hydra/ is written over the first's;
* a study file of one's own may choose Optuna's grid sampler, which is made once the sweep knows its space.

hydra-optuna-sweeper is optional (``.[optuna]``): it is imported when a study starts, not with this
module, which Hydra imports in every run.py.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import re
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable, Optional

from hydra.core.utils import JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

# no torch here: Hydra imports this module in every run.py
from lenet_exp.errors import shown
from lenet_exp.files import COMPLETED, FAILED, INTERRUPTED, RUNNING, SWEEP_RECORD
from lenet_exp.launch import sweep_stop_signal
from lenet_exp.sweeps.ending import ending_on_a_dead_job, note_stored_study
from lenet_exp.sweeps.space import JobFolders

log = logging.getLogger(__name__)
# A stored trial's user attribute: the job (and trial) whose stopped run's result it holds, resumed in its folder
RESUMED_JOB = "resumes_job"
# A stored study's user attribute: the settings its sweeps give every trial, which its results are of
FIXED_SETTINGS = "fixed_settings"


GIVE_A_FUNCTION = ("Give the dotted path of a function f(config, trial) that Python can import (its module on "
                   "PYTHONPATH: PYTHONPATH=. for one in the current folder), as hydra-optuna-sweeper's docs show.")


class _Made(functools.partial):
    """A sampler that is made later (``_partial_``, as the grid sampler is), passed to ``then`` once made; it is
    still the partial hydra-optuna-sweeper tells the grid sampler by."""

    def __new__(cls, then: Callable[[Any], Any], making: functools.partial):
        made = super().__new__(cls, making.func, *making.args, **making.keywords)
        made.then = then
        return made

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.then(super().__call__(*args, **kwargs))


class _StudyStopped(Exception):
    """The sweep was stopped: no further batch of trials is launched."""


class _NoReturnValueComplaint(logging.Filter):
    """Drops hydra-optuna-sweeper's warning on a job that returned None, the sweep callback's stand-in for a
    failed or diverged job's NaN (lenet_exp/sweeps/callback.py): it blamed the job's return value. The
    sweeper's launch logs the trial's end instead. Its error on a batch with more such trials than
    ``max_failure_rate`` allows is told in words of the trials."""

    COMPLAINT = "must be float-castable. Got 'None'"

    def filter(self, record: logging.LogRecord) -> bool:
        said = record.getMessage()
        too_many = re.search(r"times out of (\d+) with max_failure_rate=(\S+)\.$", said)
        if too_many:
            record.msg, record.args = (f"More of the batch's {too_many.group(1)} trials failed or diverged than "
                                       f"hydra.sweeper.max_failure_rate={too_many.group(2)} allows (the summary "
                                       f"lists them)."), ()
            return True
        return self.COMPLAINT not in said


class StoppableOptunaSweeper(Sweeper):
    def __init__(self, **optuna_params: Any) -> None:
        import optuna
        from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper

        _check_settings(optuna_params)
        optuna.logging.disable_default_handler()  # colour codes even into a file; Hydra's handlers take its lines
        optuna.logging.enable_propagation()
        sweeper_log = logging.getLogger("hydra_plugins.hydra_optuna_sweeper._impl")
        if not any(isinstance(f, _NoReturnValueComplaint) for f in sweeper_log.filters):
            sweeper_log.addFilter(_NoReturnValueComplaint())
        self.storage = optuna_params.get("storage")
        self.stored_trials = 0  # the trials that the storage holds for this study when the sweep starts
        self.optuna = OptunaSweeper(**optuna_params)
        extend = self.optuna.sweeper.custom_search_space_extender
        if extend is not None:
            self.optuna.sweeper.custom_search_space_extender = _reporting_its_error(
                extend, optuna_params["custom_search_space"])
        self.study: Optional[Any] = None  # optuna.Study, once the sweep asks for its first trial
        self.asked: list[int] = []  # the numbers of the trials that this run asked for
        self.ran: list[int] = []  # and of those it added to the study from jobs of its folder that it resumed

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.optuna.setup(hydra_context=hydra_context, task_function=task_function, config=config)
        self.config = config
        self.sweep_dir = Path(str(config.hydra.sweep.dir))
        self.study_name = str(config.hydra.sweeper.study_name)
        launcher = self.optuna.sweeper.launcher  # the study launches each batch of trials through it
        launch = launcher.launch
        folders = JobFolders(config)

        def launch_unless_stopped(job_overrides: Any, initial_job_idx: int = 0):
            if sweep_stop_signal():  # the batch before was told to the study; this one would not start
                raise _StudyStopped
            # a trial whose drawn values cannot make a config (optimizer=adam with a momentum drawn for sgd) fails
            # alone, as a job with a bad value does: composed by the launcher, it ended the study
            returns, runnable = {}, []
            folders.jobs = initial_job_idx
            for number, overrides in enumerate(job_overrides, start=initial_job_idx):
                try:
                    job_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
                except Exception as error:
                    folders.jobs += 1
                    returns[number] = _trial_without_a_config(config, number, list(overrides), error)
                    continue
                folders.claim(job_config)  # a study may draw one set of values twice: a folder named by them alone
                runnable.append((number, overrides))
            for batch in _consecutive(runnable, number=lambda job: job[0]):
                launched = launch([overrides for _, overrides in batch], initial_job_idx=batch[0][0])
                returns.update(zip((number for number, _ in batch), launched))
            returns = [returns[number] for number in sorted(returns)]
            for number, ret in enumerate(returns, start=initial_job_idx):
                if ret.status == JobStatus.COMPLETED and ret.return_value is None:
                    log.warning(f"Trial {number} has no result{_how_it_ended(ret)}: the study counts it as a "
                                f"failed trial")
            return returns

        launcher.launch = launch_unless_stopped

        if self.storage:
            note_stored_study()
        stored = _stored_study(config.hydra.sweeper) if self.storage else None
        self.stored_trials = stored.n_trials if stored is not None else 0
        if self.stored_trials:
            seed = _seed_past_stored_trials(config.hydra.sweeper, self.stored_trials)
            if seed is not None:
                self.optuna.sweeper.sampler = instantiate(config.hydra.sweeper.sampler, seed=seed)
            self.optuna.sweeper.job_idx = self.stored_trials  # job N is the study's trial N

        # the sweeper keeps its study to itself; its sampler is handed the study at each trial it begins
        def noting_each_trial(sampler: Any) -> Any:
            infer_search_space = sampler.infer_relative_search_space

            def infer_search_space_noting_the_trial(study: Any, trial: Any):
                if self.storage and self.fixed_settings and FIXED_SETTINGS not in study.user_attrs:  # new or old
                    study.set_user_attr(FIXED_SETTINGS, self.fixed_settings)
                self.study = study
                self.asked.append(trial.number)
                return infer_search_space(study, trial)

            sampler.infer_relative_search_space = infer_search_space_noting_the_trial
            return sampler

        sampler = self.optuna.sweeper.sampler
        if isinstance(sampler, functools.partial):  # the grid sampler: made once the sweep knows its search space
            self.optuna.sweeper.sampler = _Made(noting_each_trial, sampler)
        else:
            noting_each_trial(sampler)

    def sweep(self, arguments: list[str]) -> None:
        self.fixed_settings = _fixed_settings(self.config, self.optuna.sweeper, arguments)
        if self.stored_trials:
            _refuse_other_fixed_settings(self.optuna.sweeper, self.fixed_settings)
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, self.sweep_dir / SWEEP_RECORD)
        if self.stored_trials:
            _refuse_a_search_space_the_stored_study_cannot_take(self.optuna.sweeper, arguments)
        try:
            with ending_on_a_dead_job():
                if self.stored_trials:
                    self.resume_stopped_trials()
                self.optuna.sweep(arguments)
            self.say_whose_best()
        except _StudyStopped:
            log.warning("The study was stopped: it proposes no more trials.")
        except ValueError:  # optuna's study.best_trial, in words that depend on the storage
            if self.study is None or self.completed_trials():
                raise
            log.error("No trial of the study completed: the summary says how each one ended.")
        finally:  # a stop in run.py's own job ends the process (SystemExit) through here
            if self.storage and self.study is not None:
                self.fail_unfinished_trials()
            self.save_the_best_so_far()

    def save_the_best_so_far(self) -> None:
        """optimization_results.yaml as the study stands, however the sweep ended: hydra-optuna-sweeper writes it
        at a study's end, so a stopped run of a stored study left an earlier run's best there."""
        if self.study is None or not self.completed_trials():
            return
        best = self.study.best_trial
        results = {"name": "optuna", "best_params": best.params, "best_value": best.value}  # as the sweeper writes it
        with contextlib.suppress(OSError):  # (a full disk): the summary, written next, says more
            OmegaConf.save(OmegaConf.create(results), self.sweep_dir / "optimization_results.yaml")

    def resume_stopped_trials(self) -> None:
        """The stored study's trials that a stop failed, or that a killed run.py left running (SIGKILL, a
        lost node), where this sweep folder holds their jobs and no process holds those: an interrupted or
        killed one resumes in its folder (from its checkpoint, with its own overrides), and one that
        completed before the stop ended its batch (the study was told nothing of the batch) is skipped as
        done. Each result joins the study as a new trial of the same parameters (optuna cannot tell a
        finished trial again), once: it names the job (``RESUMED_JOB``), and new trials are numbered after
        those, as their jobs are. A trial left running is failed first, as a stop would have failed it."""
        import optuna
        from optuna.trial import TrialState, create_trial

        study = optuna.load_study(study_name=self.study_name, storage=self.storage)
        trials = study.get_trials(deepcopy=False)
        taken = {trial.user_attrs.get(RESUMED_JOB) for trial in trials}  # each run into the folder added them again
        failed = {trial.number: trial for trial in trials
                  if trial.state in (TrialState.FAIL, TrialState.RUNNING) and trial.number not in taken}
        found = self._jobs_of(failed)
        for record, _ in found:
            if failed[record.job].state == TrialState.RUNNING:  # as a stop would have left it
                _tell_failed(study, record.job)
        jobs = [record for record, unfinished in found if record.status in (INTERRUPTED, COMPLETED) or unfinished]
        for batch in _consecutive(jobs, number=lambda record: record.job, at_most=self.optuna.sweeper.n_jobs):
            for record in batch:
                log.info(f"Trial {record.job} of study {self.study_name}, stopped before, resumes in {record.run_dir}"
                         if record.status != COMPLETED else
                         f"Trial {record.job} of study {self.study_name} completed in {record.run_dir} before a stop "
                         f"ended its batch: the study takes its result")
            returns = self.optuna.sweeper.launcher.launch([r.overrides for r in batch], initial_job_idx=batch[0].job)
            for record, ret in zip(batch, returns):
                value = ret.return_value if ret.status == JobStatus.COMPLETED else None  # a failed job's would raise
                if isinstance(value, (int, float)) and math.isfinite(value):
                    trial = failed[record.job]
                    with warnings.catch_warnings():  # "experimental" since optuna 2.0, and stable in 3
                        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                        study.add_trial(create_trial(params=trial.params, distributions=trial.distributions,
                                                     values=[float(value)], user_attrs={RESUMED_JOB: record.job}))
                    log.info(f"Trial {record.job} completed: the study holds its result as trial {len(study.trials) - 1}")
                    self.ran.append(len(study.trials) - 1)
            if sweep_stop_signal():  # stopped again: the study asks for nothing new
                raise _StudyStopped
        self.optuna.sweeper.job_idx = len(study.trials)  # job N is the study's trial N

    def say_whose_best(self) -> None:
        """Hydra's "Best value" is the stored study's: it may be of a trial in another sweep's folder."""
        from lenet_exp.sweeps.records import find_job_dirs, job_number

        best = self.study.best_trial if self.stored_trials and self.study is not None else None
        if best is None or best.number in self.asked + self.ran:
            return
        job = best.user_attrs.get(RESUMED_JOB, best.number)  # a resumed trial's result: its job's folder
        if any(job_number(folder, -1) == job for folder in find_job_dirs(self.sweep_dir)):
            return  # an earlier run of this sweep's
        log.info(f"That best is the study's trial {best.number}, which an earlier sweep of the study ran in its "
                 f"own folder; this sweep's best tops its summary.")

    def _jobs_of(self, trials: dict) -> list:
        """This sweep folder's jobs of these trials (by number) that no process holds, in order, each with
        whether it was killed before it could record its end (its metrics.json says running, or is not yet
        written), which a rerun resumes or starts over."""
        from lenet_exp.files import METRICS, folder_holder, read_json
        from lenet_exp.sweeps.records import find_job_dirs, read_job

        jobs = []
        for folder in find_job_dirs(self.sweep_dir):
            record = read_job(folder, 0, final=True)
            if record.job in trials and record.overrides and folder_holder(folder) is None:
                jobs.append((record, (read_json(folder / METRICS) or {"status": RUNNING}).get("status") == RUNNING))
        return sorted(jobs, key=lambda found: found[0].job)

    def completed_trials(self) -> list:
        from optuna.trial import TrialState

        return self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))

    def fail_unfinished_trials(self) -> None:
        from optuna.trial import TrialState

        running = {t.number for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
        for number in sorted(running.intersection(self.asked)):
            _tell_failed(self.study, number)


def _tell_failed(study: Any, number: int) -> None:
    """Trial ``number`` failed, as its study is told once it is stored: the grid sampler then stops a study whose
    grid it has gone through, which outside the study's optimize() is optuna's RuntimeError (a traceback)."""
    from optuna.trial import TrialState

    try:
        study.tell(number, state=TrialState.FAIL)
    except RuntimeError as error:
        if "Study.stop" not in str(error):
            raise


def _trial_without_a_config(config: DictConfig, number: int, overrides: list[str], error: Exception) -> Any:
    """A failed job's record and result for a trial whose values do not compose: a folder holding its
    overrides and a metrics.json that says why (the summary lists it), and no value for the study."""
    from hydra.core.utils import JobReturn

    from lenet_exp.command_line_errors import typo_message
    from lenet_exp.errors import one_line
    from lenet_exp.files import HYDRA_FOLDER, METRICS, SAVED_OVERRIDES, save_json

    message = typo_message(error, overrides) or one_line(error)
    folder = Path(str(config.hydra.sweep.dir)) / str(number)  # named by its number: its values name no folder
    (folder / HYDRA_FOLDER).mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(overrides), folder / SAVED_OVERRIDES)
    save_json(folder / METRICS, {"task": str(config.get("task", "train")), "status": FAILED,
                                        "message": message})
    log.error(f"Trial {number} cannot run: {message.removeprefix('Error: ')} [{folder}]")
    return JobReturn(overrides=overrides, status=JobStatus.COMPLETED, _return_value=None)


def _how_it_ended(ret: Any) -> str:
    """`` (failed)``, `` (diverged)``…: the status in the job's metrics.json, where its JobReturn names its
    folder (one that a stacked group refused or stopped before it started does not)."""
    from lenet_exp.sweeps.records import read_job

    folder = OmegaConf.select(ret.hydra_cfg, "hydra.runtime.output_dir") if ret.hydra_cfg is not None else None
    return f" ({read_job(Path(folder), 0, final=True).status})" if folder else ""


def _consecutive(items: list, number: Callable[[Any], int], at_most: float = math.inf) -> list[list]:
    """``items`` in batches of consecutive job numbers (``number(item)``), at most ``at_most`` each: a batch is
    launched as jobs numbered so, as the study launched them."""
    batches: list[list] = []
    for item in items:
        if batches and number(batches[-1][-1]) + 1 == number(item) and len(batches[-1]) < at_most:
            batches[-1].append(item)
        else:
            batches.append([item])
    return batches


def _check_settings(params: dict) -> None:
    """Exits with a message on a setting that optuna or the sweeper would meet with a traceback."""
    for key, what in (("n_trials", "how many trials the study runs"),
                      ("n_jobs", "how many trials it asks for at once")):
        value = params.get(key)
        if not isinstance(value, int) or value < 1:
            sys.exit(f"Error: hydra.sweeper.{key}={shown(value)}: give {what} (1 or more).")
    if params.get("storage") and not params.get("study_name"):  # optuna names it anew each time: no study goes on
        sys.exit(f"Error: hydra.sweeper.study_name={shown(params.get('study_name'))} with a storage: give the study "
                 f"a name (e.g. hydra.sweeper.study_name=lenet_exp), by which the same command continues it later.")
    rate = params.get("max_failure_rate")
    if not 0 <= rate <= 1:  # the sweeper's bare AssertionError
        sys.exit(f"Error: hydra.sweeper.max_failure_rate={rate!r}: give the share of a batch's trials that may fail "
                 f"before the study stops, from 0 to 1 (1: it never stops for failures).")
    _check_custom_search_space(params.get("custom_search_space"))
    direction = params.get("direction")
    written = OmegaConf.to_container(direction) if isinstance(direction, ListConfig) else direction
    # minimize looked for the worst model; two objectives need two numbers
    if written not in ("maximize", ["maximize"]):
        sys.exit(f"Error: hydra.sweeper.direction={written!r}: give maximize. Each trial returns one number, its best "
                 f"val accuracy, which the study maximises.")


def _check_custom_search_space(path: Optional[str]) -> None:
    """Exits with a message where ``hydra.sweeper.custom_search_space`` names no function (Hydra's lines of its
    instantiation of the sweeper)."""
    from hydra._internal.utils import _locate

    if not path:
        return
    try:
        found = _locate(str(path))
    except Exception as error:
        reason = str(error.__cause__ or error).splitlines()[0]
        sys.exit(f"Error: hydra.sweeper.custom_search_space={path} cannot be imported ({reason}). {GIVE_A_FUNCTION}")
    if not callable(found):
        sys.exit(f"Error: hydra.sweeper.custom_search_space={path} is a {type(found).__name__}, not a function. "
                 f"{GIVE_A_FUNCTION}")


def _reporting_its_error(extend: Callable[[DictConfig, Any], None], path: str) -> Callable[[DictConfig, Any], None]:
    """The study's ``custom_search_space`` function, ending the sweep with one line where it raises (a traceback
    through Hydra's and optuna's frames)."""
    def extending(config: DictConfig, trial: Any) -> None:
        try:
            extend(config, trial)
        except Exception as error:
            # the line of the function's own code that raised (none for a builtin: not Hydra's call of it)
            import hydra

            hydras = str(Path(hydra.__file__).parent)
            frames = [frame for frame in traceback.extract_tb(error.__traceback__)[1:]
                      if not frame.filename.startswith(hydras)]
            where = f" ({frames[-1].filename}, line {frames[-1].lineno})" if frames else ""
            sys.exit(f"Error: hydra.sweeper.custom_search_space={path} raised {type(error).__name__}: {error}{where} "
                     f"as trial {trial.number} began. Correct it, and run the command again.")

    return extending


def _stored_study(sweeper: DictConfig) -> Any:
    """The summary of the study that the storage holds under the sweep's study name (None: none yet), once it
    is clear that this sweep can go on with it."""
    import optuna

    try:
        summaries = optuna.get_all_study_summaries(sweeper.storage)
    except Exception as error:  # a URL that sqlalchemy cannot parse, a database it cannot reach or load
        reason = re.sub(r"^\(\S+\) ", "", str(error).splitlines()[0])  # without "(sqlite3.OperationalError) "
        sys.exit(f"Error: hydra.sweeper.storage={sweeper.storage!r} cannot be opened ({reason}). Give a database "
                 "URL such as sqlite:///optuna.db (a file in the current folder), or null for a study in memory.")
    stored = next((s for s in summaries if s.study_name == sweeper.study_name), None)
    wanted = sweeper.direction if isinstance(sweeper.direction, (list, ListConfig)) else [sweeper.direction]
    if stored is not None and [d.name.lower() for d in stored.directions] != [str(d) for d in wanted]:
        had = ", ".join(d.name.lower() for d in stored.directions)
        sys.exit(f"Error: study {sweeper.study_name} in {sweeper.storage} is one to {had}; "
                 f"hydra.sweeper.direction={sweeper.direction} cannot change that. Name a new study "
                 f"(hydra.sweeper.study_name=...) or another storage.")
    return stored


def _search_space(sweeper: Any, arguments: list[str]) -> tuple[dict, dict]:
    """The sweep's (searched, fixed) overrides, as the sweeper reads them: its params, then the command line's
    (a fixed value is no search)."""
    from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides

    return create_params_from_overrides([f"{k}={v}" for k, v in (sweeper.params or {}).items()] + list(arguments))


def _refuse_a_search_space_the_stored_study_cannot_take(sweeper: Any, arguments: list[str]) -> None:
    """Exits with a message where a parameter is drawn otherwise than the stored study drew it: optuna's
    ValueError would come as a traceback at the first trial, and names no parameter."""
    import optuna

    searched, fixed = _search_space(sweeper, arguments)
    study = optuna.load_study(study_name=sweeper.study_name, storage=sweeper.storage)
    drawn: dict[str, Any] = {}
    for trial in study.get_trials(deepcopy=False):
        for name, distribution in trial.distributions.items():
            drawn.setdefault(name, distribution)
    for name, distribution in searched.items():
        if name in fixed or name not in drawn:
            continue
        try:
            optuna.distributions.check_distribution_compatibility(drawn[name], distribution)
        except ValueError:
            sys.exit(f"Error: {name} is searched as {_as_searched(distribution)}, but study {sweeper.study_name} "
                     f"in {sweeper.storage} drew it from {_as_searched(drawn[name])}; a stored study keeps how "
                     "each parameter is drawn. Search it as before, or name a new study "
                     "(hydra.sweeper.study_name=...) or another storage.")


def _fixed_settings(config: DictConfig, sweeper: Any, arguments: list[str]) -> Optional[dict]:
    """What the sweep gives every trial: the settings that change results (not where or how fast it runs) of its
    config, and the keys its search space draws (a group drawn: its settings too), which those leave out; None
    where the config does not resolve here (a ${hydra:job.…} of each job's)."""
    from lenet_exp.config import result_settings, to_dict, without_hydra

    searched, fixed = _search_space(sweeper, arguments)
    drawn = sorted(key.lstrip("+~") for key in searched if key not in fixed)  # a fixed value wins over a space
    try:
        settings = result_settings(to_dict(without_hydra(config)))
    except Exception:
        return None
    return {"settings": {key: value for key, value in settings.items() if not _drawn(key, drawn)}, "searched": drawn}


def _drawn(key: str, searched: list[str]) -> bool:
    return any(key == drawn or key.startswith(f"{drawn}.") for drawn in searched)


def _refuse_other_fixed_settings(sweeper: Any, fixed: Optional[dict]) -> None:
    """Exits with a message where the stored study's earlier sweeps fixed a setting otherwise (another data set,
    more epochs): their results and this sweep's would not compare, and the sampler would learn from both. A
    setting that either draws is no matter: a space narrowed or widened still asks the same question."""
    import optuna

    study = optuna.load_study(study_name=sweeper.study_name, storage=sweeper.storage)
    before = study.user_attrs.get(FIXED_SETTINGS)
    if fixed is None or not isinstance(before, dict) or not isinstance(before.get("settings"), dict):
        return  # stored before the attribute was, or of an earlier form
    drawn = [*fixed["searched"], *before.get("searched", [])]
    then, now = before["settings"], fixed["settings"]
    differs = [key for key in now if key in then and then[key] != now[key] and not _drawn(key, drawn)]
    if differs:
        key = differs[0]
        sys.exit(f"Error: study {sweeper.study_name} in {sweeper.storage} was run with {key}={then[key]}, and this "
                 f"sweep has {key}={now[key]}: their trials' results would not compare. Run it with the settings "
                 "its trials had, or name a new study (hydra.sweeper.study_name=...) or another storage.")


def _as_searched(distribution: Any) -> str:
    """An optuna distribution in the words of the sweep's grammar: choice(...) or [tag(log, )][int(]interval()."""
    if hasattr(distribution, "choices"):
        return f"choice({', '.join(map(str, distribution.choices))})"
    kind = type(distribution).__name__
    searched = f"interval({distribution.low}, {distribution.high})"
    if "Int" in kind:
        searched = f"int({searched})"
    return f"tag(log, {searched})" if "Log" in kind else searched


def _seed_past_stored_trials(sweeper: DictConfig, stored: int) -> Optional[int]:
    """The sampler's seed offset by the trials that the stored study already holds, so that each run of a
    study draws new trials (and the same study, run again, the same ones); None: the sampler has no seed."""
    seed = sweeper.sampler.get("seed")
    if seed is None:
        return None
    trials = "trial" if stored == 1 else "trials"
    log.info(f"Study {sweeper.study_name} holds {stored} {trials} in {sweeper.storage}: "
             f"the sampler goes on with seed {seed} + {stored}")
    return seed + stored
