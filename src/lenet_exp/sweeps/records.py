"""What a sweep left behind: one record per job directory, the seed groups and the best job.

Only the standard library, OmegaConf, PyYAML and Hydra's override parser: no torch, no matplotlib.
"""

from __future__ import annotations

import math
import os
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from omegaconf import DictConfig, OmegaConf

from lenet_exp.config import EVAL_BATCH_SIZE, STUDY_GROUP, setting_in, where_or_how_fast
from lenet_exp.files import (COMPLETED, FAILED, HYDRA_FOLDER, METRICS, PREDICTION, RUNNING, SAVED_HYDRA,
                             SAVED_OVERRIDES, SUMMARY_JSON, SWEEP_RECORD, folder_holder, held_by_another, hydra_record,
                             read_json, regular_file, room_left)
from lenet_exp.overrides import override_key, override_value, recorded_overrides, unquote
from lenet_exp.runlog import escaped_controls
from lenet_exp.sweeps.space import grid_jobs, linear_intervals, searched_keys, task_overrides

SEED_KEY = "seed"
NOT_STARTED = "not started"  # a grid sweep's job without a folder
MOVED = "moved"  # a job's folder renamed or copied within the sweep's (moved_job)
# in the metrics.json of a completed job: why training it on failed (e.g. its last.pt unreadable). Its
# results stay; the summary lists the job as failed until it completes again, which writes a new metrics.json.
LATER_FAILURE = "later_failure"
# what a job's record is read from, in its folder
JOB_RECORD_FILES = (METRICS, PREDICTION, SAVED_OVERRIDES, SAVED_HYDRA)


@dataclass
class JobRecord:
    job: int
    status: str
    overrides: list[str]
    params: dict[str, str]  # key -> value as given in the job's overrides
    run_dir: str
    val_acc: Optional[float] = None
    test_acc: Optional[float] = None
    val_loss: Optional[float] = None
    test_loss: Optional[float] = None
    epochs_done: Optional[int] = None
    epochs: Optional[int] = None
    best_epoch: Optional[int] = None  # the one selected on val, whose test it is
    test_images: Optional[int] = None  # those tested: fewer than the split's under trainer.limit_batches
    test_split_images: Optional[int] = None
    wall_time_s: Optional[float] = None
    message: str = ""
    prediction: Optional[str] = None  # a task=predict job's: "7 (7 - seven), 0.9991"
    dataset: Optional[str] = None  # the data set it trained on (or tested, an evaluation)


@dataclass
class Summary:
    sweep_dir: str
    jobs: list[JobRecord]
    swept: list[str]
    groups: list[dict[str, Any]]
    counts: dict[str, int] = field(default_factory=dict)
    written_at: str = ""
    unwritten: list[str] = field(default_factory=list)  # the summary files that could not be written
    shared: list[str] = field(default_factory=list)  # what every job was given alike (shared_settings)
    linear: set[str] = field(default_factory=set)  # keys a study drew on a linear scale (plotted so)

    @property
    def bad_jobs(self) -> list[JobRecord]:
        return [record for record in self.jobs if record.status != COMPLETED]

    @property
    def counts_text(self) -> str:
        """``2 completed, 1 failed``: the number of jobs of each status, statuses in alphabetical order."""
        return ", ".join(f"{n} {status}" for status, n in sorted(self.counts.items()))


def _number(value: Any, high: float = math.inf) -> Optional[float]:
    """A finite number in [0, ``high``], or None (missing, null, NaN: JSON and CSV readers get no NaN from here;
    out of range: a metrics.json edited, whose accuracy of 1e308 ranked its job best and drew no axis)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return float(value) if math.isfinite(value) and 0 <= value <= high else None
        except OverflowError:  # an integer of more digits than a float holds: an edit
            return None
    return None


def _fraction(value: Any) -> Optional[float]:
    """An accuracy or a probability (in [0, 1]), or None."""
    return _number(value, high=1)


def _text(value: Any) -> str:
    """A record's text as the summary prints it: control characters written as escapes, so that an edited
    metrics.json cannot move the terminal's cursor, clear it or fake a line of its own."""
    return escaped_controls(str(value), lines_kept=False)


MOST_EPOCHS = 10 ** 9  # more than any run trains: a count beyond it is an edit (of 400 digits, a column as wide)


def _count(value: Any) -> Optional[int]:
    """A whole number of epochs, or None (missing, or a metrics.json edited into something else)."""
    plausible = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MOST_EPOCHS
    return value if plausible else None


def as_float(value: str) -> Optional[float]:
    """A swept value (as its override gave it) as a finite number, or None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def job_number(job_dir: Path, fallback: int) -> int:
    """From its hydra.yaml (a ``hydra.sweep.subdir`` of one's own may begin with another number:
    ``${seed}_${optimizer.lr}``), else from the folder's name (``3_optimizer.lr=0.003``; a job resumed with
    ``resume=`` in its folder recorded no number), else the order found on disk."""
    num = hydra_record(job_dir, "job", "num")
    if isinstance(num, int) and not isinstance(num, bool):
        return num
    number = job_dir.name.split("_", 1)[0]
    return int(number) if number.isdigit() else fallback


def moved_job(job_dir: Path, sweep_dir: Path) -> Optional[str]:
    """The folder (in the sweep's) that a job recorded as its own where it is in another now: renamed or copied,
    its job would be trained again in its own folder and counted twice. None where it is in its place (the
    sweep's folder moved as a whole or not), or its record does not say."""
    recorded = hydra_record(job_dir, "runtime", "output_dir")
    place = job_dir.relative_to(sweep_dir).parts
    if not isinstance(recorded, str) or len(Path(recorded).parts) <= len(place):
        return None
    name = Path(recorded).parts[-len(place):]
    return None if name == place else str(Path(*name))


def find_job_dirs(sweep_dir: Path) -> list[Path]:
    """Job directories under a sweep directory: those holding ``.hydra/overrides.yaml`` (a job folder of one's
    own may be nested, ``hydra.sweep.subdir=lr_${optimizer.lr}/${seed}``), but not the jobs of another sweep
    kept in it (its own folder with a multirun.yaml, e.g. an evaluation sweep of its checkpoints)."""
    jobs = {path.parent.parent for path in sweep_dir.rglob(SAVED_OVERRIDES)}
    return sorted(job for job in jobs if not any((sweep_dir / folder / SWEEP_RECORD).is_file()
                                                 for folder in job.relative_to(sweep_dir).parents[:-1]))


def jobs_found(sweep_dir: Path) -> list[tuple[int, list[str]]]:
    """Each job folder's number and overrides, by which a grid sweep run into its folder again numbers its jobs
    (space.numbered_as_found)."""
    if not Path(sweep_dir).is_dir():
        return []
    found = [(job_number(job_dir, -1), recorded_overrides(job_dir)) for job_dir in find_job_dirs(Path(sweep_dir))]
    return [(number, overrides) for number, overrides in found if number >= 0]


def unreadable_record(sweep_dir: Path) -> Optional[OSError]:
    """The first error of reading the folders that may hold the sweep's jobs, or the jobs' records (a job folder
    of another user's, kept private), or None: a job that cannot be read would be summarised as not started,
    or failed. Not below a job's folder (its checkpoints), in submitit's logs or in a sweep kept inside."""
    errors: list[OSError] = []
    for folder, subfolders, names in os.walk(sweep_dir, onerror=errors.append):
        if HYDRA_FOLDER in subfolders:  # a job's folder: the files its record is read from
            for record in JOB_RECORD_FILES:
                path = Path(folder) / record
                try:
                    if path.exists():
                        regular_file(path).open("rb").close()
                except OSError as error:
                    errors.append(error)
            subfolders.clear()
        elif SWEEP_RECORD in names and Path(folder) != sweep_dir:
            subfolders.clear()  # another sweep's, which the summary leaves out
        else:
            subfolders[:] = [name for name in subfolders if name != ".submitit"]
    return errors[0] if errors else None


def overridden(overrides: Iterable[str]) -> dict[str, str]:
    """key -> value as a job's overrides give it."""
    return {override_key(o): unquote(override_value(o)) for o in overrides}


# why a job's record says less than how it ended, where its disk is full
FULL_DISK_SAYS = ("its disk is full, so it could not record how it ended; free some space, then the sweep's command "
                  "with its hydra.sweep.dir= resumes it")


def read_job(job_dir: Path, fallback_number: int, final: bool) -> JobRecord:
    overrides = [_text(override) for override in recorded_overrides(job_dir)]
    params = overridden(overrides)
    record = JobRecord(job=job_number(job_dir, fallback_number), status=FAILED, overrides=overrides,
                       params=params, run_dir=str(job_dir))
    metrics = read_json(job_dir / METRICS)
    prediction = read_json(job_dir / PREDICTION) if metrics is None else None  # a predict job's result
    if prediction is not None:
        record.status = _text(prediction.get("status", FAILED))
        record.prediction = _text(f"{prediction.get('class')} ({prediction.get('name')}), "
                                  f"{_fraction(prediction.get('probability')) or 0.0:.4f}")
        return record
    if metrics is None:
        if not final and folder_holder(job_dir):  # a live process has it: the job is starting up
            record.status, record.message = RUNNING, "starting: no epoch recorded yet"
        else:
            record.message = ("no metrics.json: the job was killed or crashed before writing it"
                              if not (job_dir / METRICS).exists() else
                              "metrics.json cannot be read as a JSON object (empty, cut short or edited)")
            if room_left(job_dir):
                record.message = f"{record.message.split(':')[0]}: {FULL_DISK_SAYS}"
        return record
    for key, value in params.items():  # optimizer.lr=${oc.env:LR}: the value it gave the job, as its record has it
        # (not ${hydra:job.num} & co., each job's own by design: kept as written, as the command gave it)
        given = setting_in(metrics.get("config"), key) if "${" in value and "${hydra:" not in value else None
        if isinstance(given, (str, int, float, bool)):
            params[key] = _text(given)
    if metrics.get("task") == "eval" and "dataset" not in params and metrics.get("dataset"):
        # what it was tested on, its checkpoint's own data set: a column where the checkpoints differ in it
        # (a failed evaluation's is unknown: no column for it)
        params["dataset"] = _text(metrics["dataset"])
    status = _text(metrics.get("status", FAILED))
    record.message = _text(metrics.get("message") or "")
    holder = held_by_another(job_dir) if status == RUNNING else None
    if status == RUNNING and final and holder:  # a `resume=` of the job's, which the sweep's run again met
        done = metrics.get("epochs_done", 0)
        record.message = (f"{done} epoch{'s' if done != 1 else ''} done by another process ({holder}), which holds "
                          f"its folder; once it ends, the sweep's command with its hydra.sweep.dir= takes the job up")
    elif status == RUNNING and final:
        # The sweep is over, so nothing runs here any more: the job was killed before it could say so, or its disk
        # had no room for the record of its end
        stopped = f"stopped while running after epoch {metrics.get('epochs_done', 0)}"
        record.message = (f"{stopped} (killed?); the sweep's command with its hydra.sweep.dir= resumes it"
                          if not room_left(job_dir) else f"{stopped}: {FULL_DISK_SAYS}")
        status = FAILED
    elif status == RUNNING:  # a summary while the sweep runs, or after its launcher lost a dead job
        done = metrics.get("epochs_done", 0)
        record.message = (f"{done} epoch{'s' if done != 1 else ''} done ({holder})" if holder else
                          # killed, or a job that runs on another machine (Slurm)
                          f"after epoch {done} when last recorded (or its process died since)")
    if status == COMPLETED and metrics.get(LATER_FAILURE):
        status = FAILED
        record.message = f"{_text(metrics[LATER_FAILURE])} (metrics.json keeps the earlier, completed run's results)"
    record.status = status
    val, test = (metrics.get(split) if isinstance(metrics.get(split), dict) else {} for split in ("val", "test"))
    record.val_acc, record.val_loss = _fraction(val.get("acc")), _number(val.get("loss"))
    record.test_acc, record.test_loss = _fraction(test.get("acc")), _number(test.get("loss"))
    record.epochs_done, record.epochs, record.best_epoch = (_count(metrics.get(key))
                                                            for key in ("epochs_done", "epochs", "best_epoch"))
    if metrics.get("task") == "eval":  # its checkpoint's: one of a run still training, or of its last epoch, is told
        record.best_epoch = _count(metrics.get("ckpt_epoch"))
    record.test_images, record.test_split_images = _count(test.get("samples")), _count(test.get("split_samples"))
    evaluation = metrics.get("task") == "eval"
    name = metrics.get("dataset") if evaluation else setting_in(metrics.get("config"), "dataset.name")
    record.dataset = _text(name) if isinstance(name, str) else None
    record.wall_time_s = _number(metrics.get("wall_time_s"))
    return record


def shared_settings(config: Optional[DictConfig], swept: Iterable[str], records: list[JobRecord]) -> list[str]:
    """What every job of a training sweep was given alike, as overrides: its data set and epochs where its jobs'
    records agree on them (a swept preset may set them), and the command line's settings that it does not sweep
    (a table's context, which its columns leave out); none of where or how fast the jobs ran."""
    if config is None or OmegaConf.select(config, "task", default=None) != "train":
        return []
    swept = {*swept, *searched_keys(config), STUDY_GROUP}  # (sweep=…: the study, whose keys are swept)
    limit = OmegaConf.select(config, "trainer.limit_batches", default=None)
    last = {override_key(o): o for o in task_overrides(config)}  # a key given twice: its last value is the jobs'
    given = [o for o in last.values() if override_key(o) not in swept and not o.startswith("~")
             and not where_or_how_fast(override_key(o), limit)]
    named = {override_key(o) for o in given} | swept
    datasets, epochs = ({value for value in values if value is not None}
                        for values in ([r.dataset for r in records], [r.epochs for r in records]))
    return [*([f"dataset={datasets.pop()}"] if len(datasets) == 1 and "dataset" not in named else []),
            *([f"trainer.epochs={epochs.pop()}"] if len(epochs) == 1 and "trainer.epochs" not in named else []),
            *given]


def swept_keys(records: list[JobRecord], searched: Iterable[str] = ()) -> list[str]:
    """Keys that differ between the jobs that have them, or that the sweep searched, in the order the jobs
    name them."""
    searched = set(searched)
    keys: list[str] = []
    for record in records:
        keys.extend(key for key in record.params if key not in keys)
    return [key for key in keys
            if key in searched or len({record.params[key] for record in records if key in record.params}) > 1]


def ranking_metric(jobs: list[JobRecord]) -> Optional[str]:
    """What ranks a sweep's jobs: the val accuracy of each one's best epoch (by its trainer.monitor), or of each
    checkpoint evaluated (task=eval); test accuracy where no job has one (an evaluation without its data set's
    train files, or of an older version); None where no job has either (task=predict)."""
    for metric in ("val_acc", "test_acc"):
        if any(getattr(r, metric) is not None for r in jobs):
            return metric
    return None


def by_accuracy(metric: Optional[str]) -> Callable[[JobRecord], tuple]:
    """Completed jobs first (an unfinished job's val accuracy is a partial best), then by ``metric``."""
    def key(record: JobRecord) -> tuple:
        value = getattr(record, metric) if metric else None
        return (record.status != COMPLETED, value is None, -(value or 0.0), record.job)
    return key


def best_job(jobs: list[JobRecord]) -> Optional[JobRecord]:
    """The completed job first by :func:`ranking_metric`, if any."""
    metric = ranking_metric(jobs)
    completed = [r for r in jobs if r.status == COMPLETED and metric and getattr(r, metric) is not None]
    return min(completed, key=by_accuracy(metric)) if completed else None


def _mean_std(values: list[float]) -> tuple[Optional[float], Optional[float]]:
    """Mean and sample std; no std for a single value (zero would claim a spread that was never seen)."""
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def setting_keys(keys: Iterable[str]) -> list[str]:
    """The swept keys that make jobs different settings: not the seed (its jobs are repeats), nor where or how
    fast a job ran (a sweep continued on another device, from another data path, with other threads: its
    jobs are the same settings' all the same). But the eval batch size, which decides the images validated
    and tested on where trainer.limit_batches caps them (a job's record does not say whether it did)."""
    return [key for key in keys if key != SEED_KEY and (key == EVAL_BATCH_SIZE or not where_or_how_fast(key))]


def once_a_seed(records: list[JobRecord]) -> list[JobRecord]:
    """A setting's jobs, the first of each seed: one seed run again on another device or with other threads
    (a sweep over them) is the same run again, not another sample of the setting."""
    first: dict[Optional[str], JobRecord] = {}
    for record in records:
        first.setdefault(record.params.get(SEED_KEY), record)
    return list(first.values())


def seed_groups(records: list[JobRecord], keys: list[str]) -> list[dict[str, Any]]:
    """Mean +- std of test (and val) accuracy of completed jobs, grouped by the :func:`setting_keys` of the
    swept ``keys``."""
    group_keys = setting_keys(keys)
    groups: dict[tuple, list[JobRecord]] = {}
    for record in records:
        groups.setdefault(tuple(record.params.get(key) for key in group_keys), []).append(record)
    rows = []
    for values, members in groups.items():
        done = once_a_seed([r for r in members if r.status == COMPLETED and r.test_acc is not None])
        test_mean, test_std = _mean_std([r.test_acc for r in done])
        val_mean, val_std = _mean_std([r.val_acc for r in done if r.val_acc is not None])
        rows.append({
            "params": dict(zip(group_keys, values)),
            "n": len(done),
            "n_jobs": len(once_a_seed(members)),
            "seeds": [r.params.get(SEED_KEY) for r in done] if SEED_KEY in keys else [],
            "jobs": [r.job for r in members],
            "test_acc_mean": test_mean,
            "test_acc_std": test_std,
            "val_acc_mean": val_mean,
            "val_acc_std": val_std,
        })
    key = f"{ranking_metric(records) or 'test_acc'}_mean"  # ranked as the jobs are: a setting is chosen on val
    rows.sort(key=lambda row: (row[key] is None, -(row[key] or 0.0)))
    return rows


def load_sweep_config(sweep_dir: Path) -> Optional[DictConfig]:
    """The sweep's own config as the BasicSweeper saved it (multirun.yaml), if there is one."""
    try:
        return OmegaConf.load(sweep_dir / SWEEP_RECORD)
    except Exception:
        return None


def not_started(records: list[JobRecord], config: Optional[DictConfig], runner: Optional[str] = None) -> list[JobRecord]:
    """The jobs of a grid sweep that have no folder: the sweep ended before them (a stop, a killed worker),
    or it still runs (``runner``: who runs it)."""
    grid = grid_jobs(config, [(record.job, record.overrides) for record in records]) if config is not None else None
    present = {record.job for record in records}
    why = (f"not yet: the sweep still runs ({runner})" if runner else
           "the sweep ended first; running the sweep again runs the rest")
    return [JobRecord(job=number, status=NOT_STARTED, overrides=list(overrides), params=overridden(overrides),
                      run_dir="", message=why)
            for number, overrides in enumerate(grid or ()) if number not in present]


def every_job_completed(summary: Optional[Summary], config: Optional[DictConfig]) -> bool:
    """Whether each job of a grid sweep has completed: nothing is left to continue (a study's trials to come
    are not known here)."""
    return (summary is not None and bool(summary.jobs) and not summary.bad_jobs and config is not None
            and grid_jobs(config) is not None)


def summarize(sweep_dir: Path, final: bool = True, config: Optional[DictConfig] = None,
              runner: Optional[str] = None) -> Summary:
    """Every job of the sweep. ``final``: the sweep is over, so a job still marked running was killed;
    ``runner``: who runs it still (a summary written meanwhile)."""
    records = [read_job(job_dir, i, final) for i, job_dir in enumerate(find_job_dirs(sweep_dir))]
    for record in records:
        moved = moved_job(Path(record.run_dir), sweep_dir)
        if moved:
            record.status, record.message = MOVED, (
                f"a copy of {moved}: its results are left out. Move it out of the sweep's folder, or delete it"
                if (sweep_dir / moved).is_dir() else
                f"its folder was {moved} when it ran (renamed since): its results are left out. Rename it back, or "
                f"move it out of the sweep's folder")
    again = config is None  # summarised again later, from what the sweep left
    config = config if config is not None else load_sweep_config(sweep_dir)
    records += not_started(records, config, runner)
    records.sort(key=lambda record: record.job)
    searched = searched_keys(config)
    if again:  # keep the columns the sweep's own summary had
        earlier = (read_json(sweep_dir / SUMMARY_JSON) or {}).get("swept")
        if isinstance(earlier, list):  # a file edited by hand: only its keys' names
            searched.update(key for key in earlier if isinstance(key, str))
    keys = swept_keys(records, searched)
    counts = dict(Counter(record.status for record in records))
    groups = seed_groups([record for record in records if record.status != MOVED], keys)
    return Summary(str(sweep_dir), records, keys, groups, counts,
                   datetime.now().astimezone().isoformat(timespec="seconds"), linear=linear_intervals(config),
                   shared=shared_settings(config, keys, records))
