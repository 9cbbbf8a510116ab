"""The Hydra callback that checks a run's or sweep's command line and guards its output directory.

Hydra rewrites ``.hydra/`` of the output directory before the task starts, so a directory that holds
another run, or that a running run owns, must be refused here, or the record of how that run was made
would be lost. The folder stays this process's for its life (``files.own_folder``). A sweep's jobs that
recorded nothing of their own get their records back at its end. Before any of it, what the command line
cannot mean is refused (a key no job has, Slurm where there is none, a misused override).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shlex
import shutil
import sys
import traceback
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

from lenet_exp.command_line_errors import a_value_twice, deleted_setting, merged_options, number_as_bool, swept_twice
from lenet_exp.config import (EARLY_STOP_PATIENCE, EPOCHS, SCHEDULES_WITH_AN_END, Change, config_differences, listed,
                              more_patient, refuse_unknown_keys, run_of_other_length, sets_a_preset, shown, validate,
                              where_or_how_fast, without_hydra)
from lenet_exp.errors import UserError, full_errors_wanted, one_line
from lenet_exp.files import (CHECKPOINTS, FULL_BELOW_BYTES, HYDRA_FOLDER, HYDRA_RECORD, METRICS, PREDICTION,
                             REPLACE_THE_LINK, RUN_FILES, SAVED_CONFIG, SAVED_HYDRA, SAVED_OVERRIDES, SWEEP_RECORD,
                             WRITTEN_ENTRIES, last_checkpoint_gone, linked_entry, mount_point, own_folder, read_json,
                             remove_temporary_files, run_events, someone_elses_metrics, write_atomic)
from lenet_exp.launch import Launching
from lenet_exp.overrides import as_written, override_key, override_value
from lenet_exp.resume import configs_read, configs_to_name, hydras_record, resume_command, resumed_run
from lenet_exp.sweeps.ending import note_sweep_dir
from lenet_exp.sweeps.records import LATER_FAILURE, find_job_dirs, jobs_found
from lenet_exp.sweeps.report import SUMMARY_RUN
from lenet_exp.sweeps.space import (grid_jobs, is_a_grid, job_naming, searched_keys, subdir_template,
                                    task_overrides)

log = logging.getLogger(__name__)


A_FOLDER_OF_ITS_OWN = "Give it a hydra.run.dir of its own, or none (a new folder under outputs/runs/)."


def check_writable(directory: Path, override: str) -> None:
    try:
        str(directory).encode("utf-8")
    except UnicodeEncodeError:  # bytes this locale could not decode: TensorBoard names its files in UTF-8
        shown = os.fsencode(directory).decode("utf-8", errors="replace")
        encoding = sys.getfilesystemencoding()
        if encoding.lower().replace("-", "") == "utf8":  # bytes no UTF-8 reads (a name made in Latin-1)
            sys.exit(f"Error: {override}={shown} is no UTF-8 name, and TensorBoard's files are named in UTF-8. "
                     f"Choose a folder named in UTF-8 (or ASCII).")
        sys.exit(f"Error: {override}={shown} holds characters that this locale's encoding ({encoding}) cannot "
                 f"read, and TensorBoard's files are named in UTF-8. Run with PYTHONUTF8=1 (or in a UTF-8 locale, "
                 f"LC_ALL=C.UTF-8), or choose a folder named in ASCII.")
    made = [folder for folder in (directory, *directory.parents) if not folder.exists()]

    def refuse(message: str) -> None:
        for folder in made:  # the folders made for it, empty: a refusal leaves nothing behind
            with contextlib.suppress(OSError):
                folder.rmdir()
        sys.exit(message)

    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".write_test"
        probe.touch()
        probe.unlink()
    except OSError as error:
        how = another_folder(directory, override, kind="writable ", place="a writable place")
        what = in_the_way(directory) or error.strerror or error
        refuse(f"Error: cannot write the output directory {directory} ({what}). {how[0].upper()}{how[1:]}.")
    free = shutil.disk_usage(directory).free
    if free < FULL_BELOW_BYTES:  # Hydra's own first write (.hydra/config.yaml) would fail with a traceback
        refuse(f"Error: No space left on {mount_point(directory)} ({free // 1024} KiB free) for {directory}. "
               f"Free some space, then run the same command again, or "
               f"{another_folder(directory, override, place='another disk')}.")


def in_the_way(directory: Path) -> Optional[str]:
    """A file or a broken symbolic link where ``directory`` or a folder above it should be, which mkdir's "File
    exists" says neither of; None where there is none, or where the path cannot be looked at (too long a name)."""
    with contextlib.suppress(OSError):
        return next((f"{path} is {'a broken link' if path.is_symlink() else 'a file'}"
                     for path in (directory, *directory.parents)
                     if path.is_symlink() and not path.exists() or path.is_file()), None)
    return None


def refuse_odd_entries(run_dir: Path, override: str) -> None:
    """Exits with a message where a run's folder holds a file where .hydra/ should be, or something else than a
    file (a folder, a pipe) where Hydra or the run writes one: Hydra's writes raised tracebacks, and reading a
    pipe hung. Or a link there that leads out of the folder: a folder may come from anyone (it is data)."""
    refuse_links_out(run_dir, WRITTEN_ENTRIES, override)
    odd = odd_entry(run_dir)
    if odd:
        sys.exit(f"Error: {odd}. Move it away, then run the same command again, or "
                 f"{another_folder(run_dir, override)}.")


def refuse_links_out(folder: Path, entries: Iterable[str], override: str) -> None:
    """Exits with a message where one of the ``entries`` that the command writes in ``folder`` is a link that leads
    out of it."""
    linked = linked_entry(folder, entries)
    if linked:  # a copy of the folder (cp -r) keeps the link: another folder is no way out for a resumed run
        sys.exit(f"Error: {linked}. {REPLACE_THE_LINK}, then run the same command again"
                 f"{'' if is_resumed(folder) else ', or ' + another_folder(folder, override)}.")


def odd_entry(run_dir: Path) -> Optional[str]:
    if (run_dir / HYDRA_FOLDER).exists() and not (run_dir / HYDRA_FOLDER).is_dir():
        return f"{run_dir / HYDRA_FOLDER} is a file where a folder should be"
    for path in (run_dir / name for name in RUN_FILES):
        if path.exists() and not path.is_file():
            return f"{path} is {'a folder' if path.is_dir() else 'no regular file'} where a file should be"
    return None


def another_folder(directory: Path, override: str, kind: str = "", place: str = "another place") -> str:
    """How to go on elsewhere: ``choose another folder with hydra.run.dir=<dir>``; a run that resume= continues
    (in its own folder, which the command cannot change) goes on in a copy of it at ``place``."""
    if is_resumed(directory):
        return f"copy the folder to {place} and resume the copy (resume=<copy>)"
    return f"choose another {kind}folder with {override}=<dir>"


def is_resumed(directory: Path) -> bool:
    """Whether ``directory`` is the run that the command's resume= continues."""
    resumed = resumed_run()
    return resumed is not None and resumed.resolve() == directory.resolve()


def enclosing_record(folder: Path) -> Optional[tuple[Path, str]]:
    """The nearest folder above ``folder`` that is a sweep's (multirun.yaml) or a run's (.hydra/config.yaml, or
    the metrics.json of a run that lenet_exp.train() made), and which: its summary, its jobs and its
    TensorBoard would take in what is written below it. Above the folder as named, else as its symbolic links
    lead."""
    for path in (os.path.abspath(folder), os.path.realpath(folder)):
        for above in Path(path).parents:
            if (above / SWEEP_RECORD).is_file():
                return above, "sweep"
            if (above / SAVED_CONFIG).is_file() or "task" in (read_json(above / METRICS) or {}):
                return above, "run"
    return None


def refuse_if_owned(directory: Path, what: str, override: str) -> None:
    holder = own_folder(directory)
    if holder:
        how = ("then run the same command again" if is_resumed(directory)
               else f"or {another_folder(directory, override)}")
        sys.exit(f"Error: {directory} is in use by another {what} ({holder}). Wait until it ends, {how}.")


def task_config(config: DictConfig) -> dict:
    return {key: value for key, value in OmegaConf.to_container(config, resolve=False).items() if key != "hydra"}


def resolved_task_config(config: DictConfig) -> dict:
    """:func:`task_config` as the run will read it (``${oc.env:MYLR}`` taken now), to compare with the config a
    run recorded in its metrics.json; as written where a ``${...}`` cannot be resolved yet."""
    try:
        task = OmegaConf.masked_copy(config, [key for key in config if key != "hydra"])
        return OmegaConf.to_container(task, resolve=True)
    except Exception:  # one that names Hydra's runtime, or that the job's own checks report
        return task_config(config)


def refuse_another_sweep(sweep_dir: Path, saved: DictConfig, config: DictConfig) -> None:
    """Exits with a message unless this sweep is the one in ``sweep_dir``, or that one with jobs added after
    its own (each job keeps its number, and so its folder); logs how many jobs it adds. As with a run, the
    data's folder, the device and how fast it runs there may change where they are not swept, and more
    epochs (where its schedule does not spread over trainer.epochs) or more patience continue each job."""
    searched = searched_keys(saved) | searched_keys(config)
    before_task, now_task = task_config(saved), task_config(config)
    changed = config_differences(before_task, now_task)
    refuse_edited_config_files(sweep_dir, changed, saved, config, searched)
    lengthened = {change.key for change in changed}
    longer = (run_of_other_length(before_task, now_task) and not lengthened & searched
              and not (EPOCHS in lengthened and "scheduler" in searched))  # a swept schedule may spread over them

    def kept(key: str) -> bool:
        return key in searched or not (where_or_how_fast(key, now_task.get("trainer", {}).get("limit_batches"))
                                       or (longer and key in lengthened))

    def what_it_runs(overrides) -> list[str]:
        return sorted(o for o in overrides if kept(override_key(o)))

    found = jobs_found(sweep_dir)

    def listed_jobs(sweep: DictConfig) -> Optional[list[tuple[str, ...]]]:  # numbered as the folders found are
        jobs = grid_jobs(sweep, found)
        return None if jobs is None else [tuple(what_it_runs(job)) for job in jobs]

    before, now = (what_it_runs(task_overrides(sweep)) for sweep in (saved, config))
    jobs_before, jobs_now = listed_jobs(saved), listed_jobs(config)
    naming_before, naming_now = job_naming(saved, kept), job_naming(config, kept)
    if jobs_before is None or jobs_now is None:  # jobs not listed here (a study draws them): only the same sweep
        if before == now and naming_before == naming_now:
            return
    elif (set(jobs_before) <= set(jobs_now) and naming_before == naming_now
          and all(jobs_now[number] == jobs_before[number] for number, _ in found
                  if number < min(len(jobs_before), len(jobs_now)))):
        # each job it ran keeps its number (its folder); values added to any key add the others
        added = [number for number, job in enumerate(jobs_now) if job not in set(jobs_before)]
        if longer:
            for job_dir in find_job_dirs(sweep_dir):  # nested too (hydra.sweep.subdir=s_${seed}/${hydra.job.num})
                gone = last_checkpoint_gone(job_dir)
                if gone:  # refused here, before Hydra writes the longer sweep's multirun.yaml and .hydra/
                    sys.exit(f"Error: {gone}")
            if EPOCHS in lengthened:
                trained = saved.trainer.epochs
                log.info("Sweep %s trained for %d epoch%s: its jobs go on to %d.", sweep_dir, trained,
                         "s" if trained != 1 else "", config.trainer.epochs)
            if EARLY_STOP_PATIENCE in lengthened:
                log.info("Sweep %s: its jobs that %s=%s stopped early go on with %s.", sweep_dir, EARLY_STOP_PATIENCE,
                         shown(saved.trainer.early_stop_patience), shown(config.trainer.early_stop_patience))
        if added:
            which = (f"job {added[0]}" if len(added) == 1 else f"jobs {added[0]} to {added[-1]}"
                     if added == list(range(added[0], added[-1] + 1)) else f"jobs {', '.join(map(str, added))}")
            log.info("Sweep %s had %d jobs; this one adds %s.", sweep_dir, len(jobs_before), which)
        return
    if before == now and naming_before != naming_now:  # e.g. hydra.sweep.subdir=…: the same jobs, other folders
        had, given = ("; ".join(n for n in naming if n not in other) or "the config's own"
                      for naming, other in ((naming_before, naming_now), (naming_now, naming_before)))
        sys.exit(f"Error: {sweep_dir} holds this sweep with its job folders named otherwise ({had} then, {given} "
                 f"now): its jobs would start over in new folders. Name them as before to continue it, or choose a "
                 f"new hydra.sweep.dir.")
    if before == now:  # the same values, in another order: Hydra numbers the jobs (and names their folders) by it
        its_order = [o for o in task_overrides(saved) if kept(override_key(o))]
        sys.exit(f"Error: {sweep_dir} holds this sweep with its values in another order, which numbers its jobs "
                 f"otherwise: its jobs would start over in new folders. Give them in its order ({' '.join(its_order)}) "
                 f"to continue it, or choose a new hydra.sweep.dir.")
    why = "" if EPOCHS in searched else why_not_longer(before_task, now_task, changed,
                                                                 schedule_swept="scheduler" in searched)
    if not is_a_grid(saved):  # a study draws its jobs
        instead = "or raise hydra.sweeper.n_trials for more trials, or choose a new hydra.sweep.dir"
    else:
        instead = ("or add values to its swept keys (the jobs it has keep their numbers), or choose a new "
                   "hydra.sweep.dir")
    ran, gives = ([o for o in ours if o not in theirs] for ours, theirs in ((before, now), (now, before)))
    differences = "; ".join(filter(None, (f"it ran {' '.join(ran)}" if ran else "",
                                          f"this command gives {' '.join(gives)}" if gives else "")))
    sys.exit(f"Error: {sweep_dir} holds another sweep ({differences}){why}. Run it with its own overrides to "
             f"continue it, {instead}.")


def refuse_edited_config_files(sweep_dir: Path, changed: list[Change], saved: DictConfig, config: DictConfig,
                               searched: set[str]) -> None:
    """Exits with a message where the sweep's config differs in what no override changed: a config file or
    a default did. Hydra writes each job's .hydra/ before the job could refuse such a config itself."""
    from_files = not_made_by_overrides(changed, task_overrides(saved), task_overrides(config), searched)
    if from_files:
        sys.exit(f"Error: {sweep_dir} holds a sweep made with another config ({listed(from_files)}), which no "
                 f"override of this command sets: a config file or a default changed since. Restore it to continue "
                 f"the sweep (its config: {sweep_dir / SWEEP_RECORD}), or choose a new hydra.sweep.dir.")


def not_made_by_overrides(changed: list[Change], before: list[str], now: list[str],
                          searched=frozenset()) -> list[Change]:
    """The differences of a config that no override changed between the command lines
    ``before`` and ``now`` (nor a searched key sets): a config file or a default changed them."""
    changed_overrides = {override_key(override) for override in set(before) ^ set(now)}
    if any(sets_a_preset(key) for key in changed_overrides):
        return []  # another preset, or none: it may have set any of them (a swept one is the same)
    keys = changed_overrides | set(searched)
    if "seed" in keys:  # a null data_seed draws from seed (config.drawn_as_it_is): seed=5 changes it too
        keys.add("data_seed")
    return [change for change in changed if not any(change.key == key or change.key.startswith(f"{key}.")
                                                    for key in keys)]


def refuse_a_config_not_made_by_overrides(run_dir: Path, from_files: list[Change], config: DictConfig) -> None:
    """Exit: the run's config differs in ``from_files``, which no change of override
    explains. Its own override of a key reads something else now (``${oc.env:MYLR}``), or was edited by hand;
    the command reads other configs (``--config-name``); otherwise a config file or a default changed."""
    written = {override_key(o): override_value(o) for o in saved_task_overrides(run_dir) if "=" in o}
    read_now = [change for change in from_files if "${" in written.get(change.key, "")]
    if read_now:
        now = "; ".join(f"{key}={written[key]} gives {shown(new)} now, {shown(old)} when the run was made"
                        for key, old, new in read_now[:3])
        sys.exit(f"Error: {run_dir} holds a run made with another config: {now}. Set what it reads as it was to "
                 f"continue the run, or run this config in a new hydra.run.dir.")
    edited = [change for change in from_files if change.key in written]
    if edited:  # a value that the run's own override sets, and yet its config does not have
        sets = "; ".join(f"{key}={shown(new)} where the run's config.yaml has {shown(old)}"
                         for key, old, new in edited[:3])
        sys.exit(f"Error: {run_dir / SAVED_OVERRIDES} sets {sets}: it was edited after the run was "
                 f"made. Put it back as it was to continue the run, or run this config in a new hydra.run.dir.")
    read, made_with = configs_read(OmegaConf.to_container(config.hydra, resolve=False)), configs_read(
        hydras_record(run_dir))
    if read != made_with:
        sys.exit(f"Error: {run_dir} holds a run made with other configs ({listed(from_files)}): this command "
                 f"reads {' '.join(read) or 'configs/ alone'}, and the run was made with "
                 f"{' '.join(made_with) or 'configs/ alone'}. Continue it with `{resume_command(run_dir)}`, or run "
                 f"this config in a new hydra.run.dir.")
    # any one of them: resuming the run as it was made would be refused for it too
    sys.exit(f"Error: {run_dir} holds a run made with another config ({listed(from_files)}), which no "
             f"override of this command sets: a config file or a default changed since. Restore it to continue "
             f"the run (its config: {run_dir / SAVED_CONFIG}), or run this config in a new "
             f"hydra.run.dir.")


def changes_to_a_run(run_dir: Path, config: DictConfig, sweep: Optional[Path]) -> list[Change]:
    """The changes that this command makes to the run in ``run_dir`` (a job of ``sweep``),
    where no result of it is lost to them (it never trained); or exits with a message where they are refused.
    More epochs of a run whose schedule allows them are no change: it goes on."""
    on_disk = OmegaConf.to_container(load_record(run_dir / SAVED_CONFIG, "hydra.run.dir"))
    metrics = read_json(run_dir / METRICS) or {}
    # what the run was, as it resolved it: its .hydra/ would not tell ${oc.env:MYLR} of 0.02 from one of 0.5
    recorded = metrics.get("config")
    before, now = recorded if isinstance(recorded, dict) else on_disk, resolved_task_config(config)
    tasks = str(before.get("task", "train")), str(now.get("task", "train"))
    has_trained = trained_anything(run_dir)
    results = has_trained or any((run_dir / name).is_file() for name in (METRICS, PREDICTION))
    if tasks[0] != tasks[1] and results:
        written = ".hydra/ record" if tasks[1] == "predict" else "metrics.json and TensorBoard run"
        sys.exit(f"Error: {run_dir} holds a task={tasks[0]} run, whose {written} task={tasks[1]} would "
                 f"write over. {A_FOLDER_OF_ITS_OWN}")
    changed = config_differences(before, now)
    if tasks[1] != "train":  # an evaluation or a prediction is run again as it was, or elsewhere
        started_in = started_in_folder(run_dir)
        changed += [Change(key, before.get(key), now.get(key)) for key in ("ckpt", "image")
                    if as_read(before.get(key), started_in) != as_read(now.get(key), os.getcwd())]
        if changed and results:
            sys.exit(f"Error: {run_dir} holds a task={tasks[1]} run with other settings "
                     f"({listed(changed)}), whose results this one would write over. "
                     f"{A_FOLDER_OF_ITS_OWN}")
    if not (changed and has_trained):
        return changed
    trained = metrics.get("epochs_done")  # None: not trained yet
    given, epochs = before["trainer"]["epochs"], now["trainer"]["epochs"]
    if run_of_other_length(before, now, trained) and sweep is None:
        gone = last_checkpoint_gone(run_dir)
        if gone:  # refused here, before Hydra writes the other length's .hydra/
            sys.exit(f"Error: {gone}")
        log.info(how_it_goes_on(run_dir, before, now, metrics))
        return []
    if (isinstance(recorded, dict) and all(change.key == EPOCHS for change in changed)
            and on_disk.get("trainer", {}).get("epochs") == now["trainer"]["epochs"]):  # .hydra/ as the command
        sys.exit(f"Error: {run_dir} was trained on to {given} epochs from Python (lenet_exp.train()), which its "
                 f".hydra/ does not record: continue it with `{resume_command(run_dir)} trainer.epochs={given}`, or "
                 f"with train() again.")
    from_files = not_made_by_overrides(changed, saved_task_overrides(run_dir), task_overrides(config))
    if from_files:
        refuse_a_config_not_made_by_overrides(run_dir, from_files, config)
    lengths = [change for change in changed if change.key in (EPOCHS, EARLY_STOP_PATIENCE)]
    if (sweep is not None and run_of_other_length(before, now, trained)
            and (epochs > max(given, trained or 0) or any(change.key == EARLY_STOP_PATIENCE for change in lengths))):
        job = shlex.quote(str(run_dir))
        configs = "".join(f"{shlex.quote(flag)} " for flag in configs_to_name(run_dir))
        length = " ".join(f"{change.key}={shown(change.new)}" for change in lengths)
        sys.exit(f"Error: {run_dir} is a job of the sweep {sweep}, whose jobs all train for its epochs and patience. "
                 f"Train the sweep on (its command with hydra.sweep.dir={shlex.quote(str(sweep))} {length}), or this "
                 f"job alone in a copy of its folder: `cp -r {job} <new folder> && python run.py {configs}resume=<new "
                 f"folder> {length}`.")
    patience = next((change for change in lengths if change.key == EARLY_STOP_PATIENCE), None)
    if patience and not more_patient(patience.old, patience.new) and len(lengths) == len(changed):
        sys.exit(f"Error: {run_dir} holds a run trained with {EARLY_STOP_PATIENCE}={shown(patience.old)}: "
                 f"{shown(patience.new)} might have stopped it sooner, so it is another run. Train it on with as much "
                 f"patience or more, or run this config in a new hydra.run.dir.")
    why = why_not_longer(before, now, changed, in_a_sweep=sweep is not None, trained=trained)
    command = resume_command(run_dir)
    longer = {**before, "trainer": {**before["trainer"], "epochs": epochs,
                                    "early_stop_patience": now["trainer"].get("early_stop_patience")}}
    if sweep is None and len(lengths) < len(changed) and run_of_other_length(before, longer, trained):
        # its length alone would be trained on: the others are what is refused
        changed = [change for change in changed if change not in lengths]
        command += "".join(f" {change.key}={shown(change.new)}" for change in lengths)
    sys.exit(f"Error: {run_dir} holds a run with another config ({listed(changed)}){why}. Continue it as "
             f"it was made with `{command}` (no override that changes its results), or run this config in a new "
             f"hydra.run.dir.")


@contextlib.contextmanager
def failing_closed(override: str) -> Iterator[None]:
    """An unforeseen error in the checks of an output folder ends the run with a message."""
    try:
        yield
    except InterpolationResolutionError as error:  # a ${...} in the folder's name that names nothing
        sys.exit(f"Error: {override} cannot be resolved: {one_line(error)}. Correct or leave out the ${{...}} in it.")
    except UserError as error:  # it says what is wrong and what to do
        sys.exit(f"Error: {error}")
    except Exception as error:
        sys.exit(f"Error: could not check the output folder ({override}) before writing to it: {one_line(error)}")


def load_record(path: Path, override: str) -> DictConfig:
    """A config that Hydra saved in an output folder, or exit with a message where it cannot be read."""
    try:
        if not path.read_text().strip():  # Hydra writes it in place: a run killed meanwhile leaves it empty
            raise ValueError("it is empty")
        return OmegaConf.load(path)
    except Exception as error:  # a file cut short (a full disk), or edited by hand
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        sys.exit(f"Error: {path} cannot be read ({reason}), so it is unclear what this folder holds. Move that file "
                 f"away to use the folder anyway, or choose another {override}.")


def started_in_folder(run_dir: Path) -> str:
    """The folder a run was started in (its relative paths were read from there), or the current one."""
    try:
        return str(OmegaConf.load(run_dir / SAVED_HYDRA).hydra.runtime.cwd)
    except Exception:  # an older or damaged record
        return os.getcwd()


def as_read(path: Any, folder: str) -> Any:
    """A ``ckpt=`` or ``image=`` path as a job started in ``folder`` read it (resume= gives it absolute)."""
    if not isinstance(path, str) or not path:
        return path
    return os.path.normpath(Path(folder) / Path(path).expanduser())


def saved_task_overrides(run_dir: Path) -> list[str]:
    path = run_dir / SAVED_OVERRIDES
    return as_written(load_record(path, "hydra.run.dir")) if path.is_file() else []


def trained_anything(run_dir: Path) -> bool:
    """Whether a run folder holds what a run trained: a checkpoint, or TensorBoard events (written from
    the first epoch's start; a failure before it leaves only its HParams session)."""
    return any((run_dir / CHECKPOINTS).glob("*.pt")) or bool(run_events(run_dir))


def how_it_goes_on(run_dir: Path, before: dict, now: dict, metrics: dict) -> str:
    """What a run given another length (:func:`run_of_other_length`) trains: the log line that says so."""
    trained, given, epochs = metrics.get("epochs_done"), before["trainer"]["epochs"], now["trainer"]["epochs"]
    patience, more = before["trainer"].get("early_stop_patience"), now["trainer"].get("early_stop_patience")
    if metrics.get("status") == "completed" and trained is not None and trained < given and patience:
        stopped = f"{run_dir} stopped early after epoch {trained} of {given} ({EARLY_STOP_PATIENCE}={patience})"
        if more == patience:
            return (f"{stopped}: it stops there again with {epochs}. More patience trains it on "
                    f"({EARLY_STOP_PATIENCE}=N, N > {patience}).")
        return f"{stopped}: it goes on with {EARLY_STOP_PATIENCE}={shown(more)}, up to epoch {epochs}."
    if epochs > given and (trained is None or trained >= given):
        return f"{run_dir} trained for {given} epoch{'s' if given != 1 else ''}: it goes on to {epochs}."
    if epochs == given and (trained is None or trained >= given):  # more patience alone
        return f"{run_dir} trained all its {given} epochs, as {EARLY_STOP_PATIENCE}={shown(more)} does."
    # stopped before the end: more epochs, or fewer (down to those it has), or more patience
    return (f"{run_dir} has trained {trained} of the {given} epochs it was last given: it "
            f"{'ends after' if epochs < given else 'goes on to'} {epochs}.")


def why_not_longer(before: dict, now: dict, changed: list[Change], in_a_sweep: bool = False,
                   schedule_swept: bool = False, trained: Optional[int] = None) -> str:
    """Why a run (or a sweep) given another trainer.epochs, and nothing else (more patience besides), does not
    go on (empty where more changed); ``trained``: the epochs a run has trained."""
    changed = [change for change in changed
               if not (change.key == EARLY_STOP_PATIENCE and more_patient(change.old, change.new))]
    if len(changed) == 1 and changed[0].key == EARLY_STOP_PATIENCE:
        return f" ({changed[0]}: less patience might have stopped sooner)"
    if len(changed) != 1 or changed[0].key != EPOCHS:
        return ""
    epochs, given = now["trainer"]["epochs"], before["trainer"]["epochs"]
    if trained is not None and epochs < trained:
        return f" (fewer than the {trained} epochs it has trained)"
    if in_a_sweep:
        return " (a sweep's job keeps its sweep's epochs)"
    if trained is None and epochs < given:  # a sweep's jobs
        return f" (fewer than the {given} epochs it was last given)"
    if schedule_swept:
        return (f" (its jobs sweep scheduler, and {' and '.join(SCHEDULES_WITH_AN_END)} spread their learning rates "
                f"over trainer.epochs)")
    schedule = (now.get("scheduler") or {}).get("name")
    how = "more" if epochs > given else "fewer"
    return f" (scheduler={schedule} spreads its learning rates over trainer.epochs: {how} epochs make another run)"


def refuse_misused_overrides(config: DictConfig) -> None:
    """Exits with a message on ``model=[lenet5,lenet5_classic]``, ``~seed`` or ``trainer.deterministic=2``, which
    compose (command_line_errors)."""
    overrides = task_overrides(config)
    misused = (merged_options(overrides) or swept_twice(overrides) or a_value_twice(overrides)
               or deleted_setting(overrides) or number_as_bool(overrides, config))
    if misused:
        sys.exit(f"Error: {misused}")


def refuse_a_key_no_job_has(config: DictConfig) -> None:
    """``-m +trainer.epochz=3 seed=0,1``: a key that its section's schema lacks fails every job alike, each
    leaving a folder of a failed job; refused once, before the first, where no swept option or preset could
    give the job another schema or class (``optimizer=sgd,adam +optimizer.dampening=0.1`` fails adam's jobs
    alone)."""
    searched = searched_keys(config)
    if any(sets_a_preset(key) for key in searched):  # a preset swept: each job's keys its own
        return

    def swept_apart(key: str) -> bool:  # its option, or its class (optimizer._target_=…,…), differs by job
        section = key.split(".")[0]
        return section in searched or f"{section}._target_" in searched

    try:
        refuse_unknown_keys(config, unchecked=swept_apart)
    except UserError as error:  # a ConfigError, or the resumed run's own setting that it cannot keep
        sys.exit(f"Error: {error}")


def refuse_a_run_it_would_refuse(config: DictConfig) -> None:
    """A value out of its range (``optimizer.lr=0``), a ``task=eval`` without its ``ckpt=``, ...: refused before
    Hydra makes the run's folder, which held only the refusal (a sweep's jobs are checked each in its own)."""
    from hydra.core.hydra_config import HydraConfig

    HydraConfig.instance().set_config(config)  # as the job has it: a ${hydra:runtime.cwd} in its config resolves
    try:
        validate(without_hydra(config))
    except UserError as error:
        if full_errors_wanted():
            traceback.print_exc()  # raised, Hydra would turn it into a warning and skip the folder checks
        sys.exit(f"Error: {error}")
    except Exception:  # unforeseen: the job's own validate() reports it, in its folder, after the folder checks
        pass


def refuse_another_record_folder(config: DictConfig) -> None:
    """Exits with a message where Hydra is told to keep no .hydra/ (``hydra.output_subdir=null``) or another."""
    if config.hydra.output_subdir != HYDRA_FOLDER:
        written = "null" if config.hydra.output_subdir is None else config.hydra.output_subdir
        sys.exit(f"Error: hydra.output_subdir={written}: each run keeps Hydra's record of its config in .hydra/, "
                 f"which resume=, the sweep summary and the checks that keep a folder to one config read. Leave "
                 f"hydra.output_subdir as it is.")


def refuse_slurm_where_there_is_none(config: DictConfig) -> None:
    """Exits with a message where the launcher submits to Slurm and this machine has no ``srun``, which
    submitit raises as a RuntimeError with a traceback."""
    if Launching.of(config.hydra.launcher).submitit == "slurm" and shutil.which("srun") is None:
        chosen = OmegaConf.select(config, "hydra.runtime.choices", default={}).get("hydra/launcher", "slurm")
        if chosen == "stacked":  # its groups sent to Slurm by a setting: the launcher is not what to change
            sys.exit("Error: hydra.launcher.submitit.cluster=slurm submits the sweep's groups to Slurm, and this "
                     "machine has no srun (no Slurm client here). Start the sweep on the cluster's login node, or "
                     "leave that setting out to train the groups here.")
        sys.exit(f"Error: hydra/launcher={chosen} submits the sweep to Slurm, and this machine has no srun (no Slurm "
                 f"client here). Start the sweep on the cluster's login node, or run it here: hydra/launcher=stacked, "
                 f"joblib or submitit_local.")


def warn_of_unread_configs(config: DictConfig) -> None:
    """A config of one's own (``--config-dir``, ``hydra.searchpath``) named as one of configs/ is never read:
    Hydra takes the first file of a name on its search path, and configs/ comes first; nor is any config of a
    search path folder that does not exist. Said, not left silent."""
    found = OmegaConf.select(config, "hydra.runtime.config_sources", default=None) or []
    sources = [(str(source.provider), Path(str(source.path))) for source in found if source.schema == "file"]
    main = next((path for provider, path in sources if provider == "main"), None)
    for provider, folder in sources if main else ():
        if provider != "main" and not folder.is_dir():  # Hydra's own warning is filtered: its source line, no fix
            log.warning("%s (%s) is no folder: none of its configs is read.", folder, provider)
        if provider == "main" or not folder.is_dir():
            continue
        for message in unread_configs(main, folder):
            log.warning("%s", message)


def unread_configs(main: Path, folder: Path) -> Iterator[str]:
    """What to say of each config in ``folder`` (one's own) that one of ``main`` (configs/) keeps from being read,
    having its name."""
    for own in sorted([*folder.glob("*.yaml"), *folder.glob("*/*.yaml")]):
        shipped = main / own.relative_to(folder)
        if shipped.is_file() and own.resolve() != shipped.resolve():
            chosen = f"{own.parent.name}=<that name>" if own.parent != folder else "--config-name <that name>"
            yield (f"{own} is not read: {shipped}, first on Hydra's search path, has its name. Give yours another "
                   f"name, then choose it with {chosen}.")


def job_records(job_dirs: Iterable[Path]) -> dict[Path, tuple[dict[str, bytes], Optional[dict]]]:
    """Each run or job folder's .hydra/ files as the command finds them, and what its metrics.json says it
    trained."""
    records = {}
    for job_dir in job_dirs:
        files = {name: (job_dir / name).read_bytes() for name in HYDRA_RECORD if (job_dir / name).is_file()}
        if files:
            records[job_dir] = (files, what_it_trained(job_dir))
    return records


def what_it_trained(job_dir: Path) -> Optional[dict]:
    """The job's metrics.json without what a refused job records of itself (its status, why)."""
    metrics = read_json(job_dir / METRICS)
    return None if metrics is None else {key: value for key, value in metrics.items()
                                         if key not in ("status", "message", LATER_FAILURE)}


def put_back_the_records_of_jobs_that_recorded_nothing(records: dict) -> None:
    """Hydra rewrites a job's .hydra/ before the job can refuse its folder (a run of another config there) or
    fail before it trains (a run given more epochs whose data is gone): a run or job that trained nothing gets
    its own record back, which resume= and its sweep read."""
    for job_dir, (files, trained) in records.items():
        if what_it_trained(job_dir) != trained:
            continue
        for name, content in files.items():
            path = job_dir / name
            with contextlib.suppress(OSError):  # a record that cannot be put back stays as Hydra wrote it
                if path.read_bytes() != content:
                    write_atomic(path, lambda file, content=content: file.write(content))


_records_found: dict[Path, tuple[dict[str, bytes], Optional[dict]]] = {}  # a run's record as its command found it


def put_back_the_runs_record(run_dir: Path) -> None:
    """A run that trained nothing, as it ended with an error (its data gone) or was completed already, gets its
    .hydra/ record back: Hydra had written this command's over it (``resume=<run> trainer.epochs=3``, ``resume=<run>
    device=cuda``), which a plain resume= then replayed."""
    found = {folder: record for folder, record in _records_found.items()
             if folder.resolve() == Path(run_dir).resolve()}
    _records_found.clear()
    put_back_the_records_of_jobs_that_recorded_nothing(found)


EACH_JOBS_OWN = ("hydra.job.num", "hydra.job.id", "hydra.job.override_dirname")  # Hydra's keys that differ by job


class OutputDirCheck(Callback):
    """Checks the command line and the output folder before Hydra writes into it. Hydra turns a callback's
    exception into a warning and goes on, so an unforeseen error here ends the run instead of skipping the
    checks."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        warn_of_unread_configs(config)
        with failing_closed("hydra.run.dir"):
            refuse_misused_overrides(config)
            refuse_a_key_no_job_has(config)
        refuse_a_run_it_would_refuse(config)  # not failing closed: an unforeseen error is the job's to report
        with failing_closed("hydra.run.dir"):
            refuse_another_record_folder(config)
            self.check_run_dir(config)
            _records_found.clear()  # of an earlier command in this process (a notebook's, the tests')
            _records_found.update(job_records([Path(config.hydra.run.dir)]))

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        warn_of_unread_configs(config)
        with failing_closed("hydra.sweep.dir"):
            refuse_misused_overrides(config)
            refuse_a_key_no_job_has(config)
            refuse_another_record_folder(config)
            refuse_slurm_where_there_is_none(config)
            self.check_sweep_dir(config)
            self.records = job_records(find_job_dirs(Path(config.hydra.sweep.dir)))  # nested ones too

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:  # before the summary, which reads them
        put_back_the_records_of_jobs_that_recorded_nothing(getattr(self, "records", {}))

    @staticmethod
    def check_run_dir(config: DictConfig) -> None:
        if not str(config.hydra.run.dir).strip():
            sys.exit("Error: hydra.run.dir is empty, which would write the run into the current folder. "
                     "Name a folder, e.g. hydra.run.dir=outputs/runs/mine.")
        run_dir = Path(config.hydra.run.dir)
        if (run_dir / SWEEP_RECORD).is_file():  # its summary and TensorBoard would take the run for a sweep's
            sys.exit(f"Error: {run_dir} holds a sweep (multirun.yaml). A run needs a folder of its own: choose "
                     f"another hydra.run.dir, or resume one of the sweep's jobs with resume=<its job folder>.")
        saved = run_dir / SAVED_CONFIG
        enclosing = enclosing_record(run_dir)
        sweep = enclosing[0] if enclosing and enclosing[1] == "sweep" else None
        # a job's folder (hydra.sweep.subdir may nest it), or one to be: a new one just inside the sweep's
        in_a_sweep = sweep is not None and (saved.is_file() or Path(os.path.abspath(run_dir)).parent == sweep)
        if enclosing and not in_a_sweep:  # a sweep's summary would list it, or a run's TensorBoard show it
            sys.exit(f"Error: {run_dir} is inside the {enclosing[1]} folder {enclosing[0]}: a run needs a folder of "
                     f"its own. Choose a hydra.run.dir outside it.")
        if in_a_sweep and not saved.is_file():  # a job to come of a running sweep, or one its summary would list
            sys.exit(f"Error: {run_dir} is in the folder of the sweep {sweep}, whose jobs' folders are there: a run "
                     f"needs a folder of its own. Choose a hydra.run.dir outside it.")
        if in_a_sweep and not is_resumed(run_dir):  # Hydra would write this command over the job's .hydra/ record
            sys.exit(f"Error: {run_dir} is a job of the sweep {sweep}: the sweep's own command runs it "
                     f"(hydra.sweep.dir=), or `{resume_command(run_dir)}` continues it "
                     f"alone. Run anything else in a hydra.run.dir outside the sweep's folder.")
        foreign = someone_elses_metrics(run_dir)
        if foreign:
            sys.exit(f"Error: {foreign}")
        # first: a folder that cannot be run in, or one in use, whose contents change while it trains
        check_writable(run_dir, "hydra.run.dir")
        refuse_odd_entries(run_dir, "hydra.run.dir")
        refuse_if_owned(run_dir, "run", "hydra.run.dir")
        # continuing a run: only with the config it was started with, or more epochs of it
        changed = changes_to_a_run(run_dir, config, sweep if in_a_sweep else None) if saved.is_file() else []
        if changed and in_a_sweep:  # resumed with another config: refused before it trained, it is the sweep's
            sys.exit(f"Error: {run_dir} is a job of the sweep {sweep}, with another config "
                     f"({listed(changed)}): the sweep's own command runs it. Run this config in a "
                     f"hydra.run.dir outside the sweep's folder.")
        if changed:  # a run refused before it trained (a typo, no data): the fixed command may start over
            log.info("%s holds a run that ended before it trained, with another config (%s): this one starts over "
                     "there.", run_dir, listed(changed))
        note_sweep_dir(None)

    @staticmethod
    def check_sweep_dir(config: DictConfig) -> None:
        if not str(config.hydra.sweep.dir).strip():
            sys.exit("Error: hydra.sweep.dir is empty, which would write the sweep into the current folder. "
                     "Name a folder, e.g. hydra.sweep.dir=outputs/sweeps/mine.")
        written = str(OmegaConf.to_container(config.hydra.sweep, resolve=False).get("dir"))
        searched = searched_keys(config)
        varying = next((key for key in re.findall(r"\$\{([\w.]+)\}", written) if key in EACH_JOBS_OWN
                        or any(f"{key}.".startswith(f"{s}.") or s.startswith(f"{key}.") for s in searched)), None)
        if varying:  # each job's would be another folder: sweeps of one job each, without the others' summary
            named = "${hydra.job.override_dirname}" if varying in EACH_JOBS_OWN else f"${{{varying}}}"
            sys.exit(f"Error: hydra.sweep.dir={written} names {varying}, which differs from job to job: each job would "
                     f"be a sweep of its own. Name it in each job's folder instead, e.g. "
                     f"hydra.sweep.subdir='${{hydra.job.num}}_{named}'.")
        subdir = subdir_template(config)
        if Path(subdir).is_absolute() or ".." in Path(subdir).parts:
            sys.exit(f"Error: hydra.sweep.subdir={subdir} puts the jobs outside hydra.sweep.dir, where the summary and "
                     f"the sweep's command run again do not look for them. Name a folder inside it, e.g. "
                     f"hydra.sweep.subdir='${{hydra.job.num}}_${{seed}}'.")
        sweep_dir = Path(config.hydra.sweep.dir)
        enclosing = enclosing_record(sweep_dir)
        if enclosing and enclosing[1] == "run":  # its TensorBoard would show this sweep's runs as its own
            sys.exit(f"Error: {sweep_dir} is inside the {enclosing[1]} folder {enclosing[0]}: a sweep needs a folder "
                     f"of its own. Choose a hydra.sweep.dir outside it.")
        if (sweep_dir / HYDRA_FOLDER).is_dir():  # a run's folder, or one of a sweep's jobs
            sys.exit(f"Error: {sweep_dir} holds a run (.hydra/). A sweep needs a folder of its own: choose another "
                     f"hydra.sweep.dir.")
        saved = sweep_dir / SWEEP_RECORD
        # continuing a sweep: only the same sweep, or one with jobs added after its own. One that ended before
        # its first job began (stopped as it started) holds nothing: the next command may start there.
        if saved.is_file():
            record = load_record(saved, "hydra.sweep.dir")
            if find_job_dirs(sweep_dir):
                refuse_another_sweep(sweep_dir, record, config)
        check_writable(sweep_dir, "hydra.sweep.dir")
        jobs = (path.name for path in sweep_dir.iterdir() if (path / HYDRA_FOLDER).is_dir())
        refuse_links_out(sweep_dir, [SWEEP_RECORD, SUMMARY_RUN, *jobs], "hydra.sweep.dir")
        for job_dir in (path for path in sweep_dir.iterdir() if path.is_dir()):
            refuse_odd_entries(job_dir, "hydra.sweep.dir")
        refuse_if_owned(sweep_dir, "sweep", "hydra.sweep.dir")
        remove_temporary_files(sweep_dir)  # a summary's, of a sweep killed as it wrote it: now this one's folder
        note_sweep_dir(sweep_dir)  # for run.py's message if a stop reaches it
