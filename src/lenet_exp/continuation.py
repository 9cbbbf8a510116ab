"""Whether a command continues the run or sweep already in its output folder, or is refused before Hydra writes
over its record.

A run goes on with the config it was made with, more epochs where its schedule allows them, or more patience; a
sweep with the same jobs, or jobs added after its own. Anything else that would change results already written
exits with a message that says how to continue the run as it was made, or to run the new config elsewhere.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf

from lenet_exp.config import (EARLY_STOP_PATIENCE, EPOCHS, SCHEDULES_WITH_AN_END, Change, config_differences, flatten,
                              listed, more_patient, run_of_other_length, sets_a_preset, setting_in,
                              where_or_how_fast)
from lenet_exp.errors import shown
from lenet_exp.files import (CHECKPOINTS, COMPLETED, FAILED, METRICS, PREDICTION, SAVED_CONFIG, SAVED_OVERRIDES,
                             SWEEP_RECORD, hydra_record, last_checkpoint_gone, read_json, run_events, stopped_early)
from lenet_exp.overrides import as_written, override_key, override_value
from lenet_exp.provenance import provenance
from lenet_exp.resume import configs_read, configs_to_name, hydras_record, resume_command, typed_setting
from lenet_exp.sweeps.records import find_job_dirs, jobs_found
from lenet_exp.sweeps.space import grid_jobs, is_a_grid, job_naming, searched_keys, task_overrides

log = logging.getLogger(__name__)


A_FOLDER_OF_ITS_OWN = "Give it a hydra.run.dir of its own, or none (a new folder under outputs/runs/)."


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
    refuse_another_study(sweep_dir, saved, config)
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
            if EPOCHS in lengthened:  # what it was given: a job stopped or not started has trained less
                given = saved.trainer.epochs
                log.info("Sweep %s was given %d epoch%s: its jobs go on to %d, each from where it stopped%s.",
                         sweep_dir, given, "s" if given != 1 else "", config.trainer.epochs,
                         "" if EARLY_STOP_PATIENCE in lengthened else stopping_again(sweep_dir))
            if EARLY_STOP_PATIENCE in lengthened:
                log.info("Sweep %s: its jobs that %s=%s stopped early go on with %s=%s.", sweep_dir,
                         EARLY_STOP_PATIENCE, shown(saved.trainer.early_stop_patience), EARLY_STOP_PATIENCE,
                         shown(config.trainer.early_stop_patience))
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
    respelled = numbers_written_otherwise(jobs_before, jobs_now)
    if respelled:  # model.dropout=0 then, 0.0 now (range(0,1,step=0.25)): one value, in a folder named otherwise
        sys.exit(f"Error: {sweep_dir} holds this sweep with {respelled}: the same number, written otherwise, which "
                 f"names its job's folder otherwise (the job would start over in a new one). Write it as the sweep "
                 f"did to continue it, or choose a new hydra.sweep.dir.")
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


# what decides the trials a study draws, besides its search space (compared as the sweep's overrides); a storage
# only as kept or not: one moved elsewhere holds the same study
STUDY_SETTINGS = ("sampler", "storage", "study_name", "direction", "custom_search_space")
STORAGE = "hydra.sweeper.storage"


def refuse_another_study(sweep_dir: Path, saved: DictConfig, config: DictConfig) -> None:
    """Exits with a message where a study continued in its folder draws with other settings (another sampler
    seed, storage or study name): it drew other trials under its jobs' numbers, and the folder held two of each."""
    if is_a_grid(saved) or is_a_grid(config):  # a grid and a study: told as another sweep
        return
    def study_settings(sweep: DictConfig) -> dict:
        sweeper = OmegaConf.to_container(sweep.hydra.sweeper, resolve=False)
        return flatten({key: value for key, value in sweeper.items() if key in STUDY_SETTINGS}, "hydra.sweeper.")

    before, now = study_settings(saved), study_settings(config)
    changed = [Change(key, before.get(key), now.get(key)) for key in sorted(set(before) | set(now))
               if before.get(key) != now.get(key) and (key != STORAGE or None in (before.get(key), now.get(key)))]
    if changed:
        sys.exit(f"Error: {sweep_dir} holds a study drawn with other settings ({listed(changed)}): this one would draw "
                 f"other trials under its jobs' numbers. Give them as the study had them to continue it, or choose a "
                 f"new hydra.sweep.dir.")


def numbers_written_otherwise(jobs_before: Optional[list[tuple[str, ...]]],
                               jobs_now: Optional[list[tuple[str, ...]]]) -> str:
    """``model.dropout=0 where this command gives 0.0``: where the jobs of a sweep (``jobs_before``) are among those of
    this command (``jobs_now``) once their numbers are read as numbers, but not as written; else ""."""
    def as_number(override: str) -> str:
        key, _, value = override.partition("=")
        try:
            return f"{key}={float(value)!r}" if value.strip().lower() not in ("nan", "inf", "-inf") else override
        except ValueError:
            return override

    if not jobs_before or not jobs_now or set(jobs_before) <= set(jobs_now):
        return ""
    if not {tuple(map(as_number, job)) for job in jobs_before} <= {tuple(map(as_number, job)) for job in jobs_now}:
        return ""
    now = {as_number(o): o for job in jobs_now for o in job}
    then = sorted({o for job in jobs_before for o in job if o != now.get(as_number(o), o)})
    return "; ".join(f"{o} where this command gives {override_value(now[as_number(o)])}" for o in then)


def refuse_edited_config_files(sweep_dir: Path, changed: list[Change], saved: DictConfig, config: DictConfig,
                               searched: set[str]) -> None:
    """Exits with a message where the sweep's config differs in what no override changed: a config file or
    a default did. Hydra writes each job's .hydra/ before the job could refuse such a config itself."""
    from_files = not_made_by_overrides(changed, task_overrides(saved), task_overrides(config), searched)
    if from_files:
        made_at = next(filter(None, (made_at_another_commit(job) for job in find_job_dirs(sweep_dir))), "")
        sys.exit(f"Error: {sweep_dir} holds a sweep made with another config ({listed(from_files)}), which no "
                 f"override of this command sets: a config file or a default changed since{made_at}. Restore it to "
                 f"continue the sweep (its config: {sweep_dir / SWEEP_RECORD}), or choose a new hydra.sweep.dir.")


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
             f"override of this command sets: a config file or a default changed "
             f"since{made_at_another_commit(run_dir)}. "
             f"Restore it to continue the run (its config: {run_dir / SAVED_CONFIG}), or run this config in a new "
             f"hydra.run.dir.")


def made_at_another_commit(run_dir: Path) -> str:
    """`` (made at git commit X, and this checkout is at Y: …)`` where the run in ``run_dir`` recorded another commit
    than this checkout's: an upgrade of lenet_exp changed its configs or defaults. Else ""."""
    record = read_json(run_dir / METRICS) or {}
    if "versions" in record and "git" not in record:  # written before runs recorded their commit
        return " (made by an early version of lenet_exp, which recorded no git commit)"
    made, now = record.get("git"), provenance()
    if not (isinstance(made, dict) and isinstance(made.get("commit"), str) and now) or made["commit"] == now["commit"]:
        return ""
    return (f" (made at git commit {made['commit'][:12]}, and this checkout is at {now['commit'][:12]}: `git checkout "
            f"{made['commit'][:12]}` gives back the code it was made with)")


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
        # a prediction's record is its .hydra/ (beside prediction.json, which no other task writes)
        written = ".hydra/ record" if "predict" in tasks else "metrics.json and TensorBoard run"
        sys.exit(f"Error: {run_dir} holds a task={tasks[0]} run, whose {written} task={tasks[1]} would "
                 f"write over. {A_FOLDER_OF_ITS_OWN}")
    changed = config_differences(before, now)
    if tasks[1] != "train":  # an evaluation or a prediction is run again as it was, or elsewhere
        started_in = started_in_folder(run_dir)
        changed += [Change(key, before.get(key), now.get(key)) for key in ("ckpt", "image")
                    if as_read(before.get(key), started_in) != as_read(now.get(key), os.getcwd())]
        # one that failed (a checkpoint it could not read) has no result to lose: the fixed command takes its folder
        # (but a prediction of an earlier attempt, whose prediction.json the failure left)
        lost = metrics.get("status") != FAILED or (run_dir / PREDICTION).is_file()
        if changed and results and lost:
            sys.exit(f"Error: {run_dir} holds a task={tasks[1]} run with other settings "
                     f"({listed(changed)}), whose results this one would write over. "
                     f"{A_FOLDER_OF_ITS_OWN}")
    if not (changed and has_trained):
        return changed
    trained = metrics.get("epochs_done")  # None: not trained yet
    given, epochs = before["trainer"]["epochs"], now["trainer"]["epochs"]
    if (isinstance(recorded, dict) and all(change.key == EPOCHS for change in changed)
            and on_disk.get("trainer", {}).get("epochs") == epochs and typed_setting(EPOCHS) is None
            and recorded_after_hydra(run_dir)):
        # .hydra/'s epochs replayed, not the train() call's since: a run completed at 4 went on to .hydra/'s 30
        sys.exit(f"Error: {run_dir} was trained to {given} epochs from Python (lenet_exp.train()), which its .hydra/ "
                 f"does not record (it says {epochs}): continue it with `{resume_command(run_dir)} "
                 f"trainer.epochs={given}` (or another number to train it on to), or with train() again.")
    if run_of_other_length(before, now, trained) and sweep is None:
        gone = last_checkpoint_gone(run_dir)
        if gone:  # refused here, before Hydra writes the other length's .hydra/
            sys.exit(f"Error: {gone}")
        log.info(other_length_note(run_dir, before, now, metrics))
        return []
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
    cwd = hydra_record(run_dir, "runtime", "cwd")
    return cwd if isinstance(cwd, str) else os.getcwd()  # else an older or damaged record


def as_read(path: Any, folder: str) -> Any:
    """A ``ckpt=`` or ``image=`` path as a job started in ``folder`` read it (resume= gives it absolute)."""
    if not isinstance(path, str) or not path:
        return path
    return os.path.normpath(Path(folder) / Path(path).expanduser())


def saved_task_overrides(run_dir: Path) -> list[str]:
    path = run_dir / SAVED_OVERRIDES
    return as_written(load_record(path, "hydra.run.dir")) if path.is_file() else []


def completed_as_asked(previous: dict, config: dict) -> bool:
    """Whether a run folder's record (its metrics.json) holds the training run of ``config``, completed: the
    command skips it. So is a run given more patience that trained all its epochs; not one given more epochs,
    or more patience after it stopped early (it goes on), nor one of another config (refused)."""
    saved = previous.get("config")
    if previous.get("status") != COMPLETED or previous.get("task") != "train" or not isinstance(saved, dict):
        return False
    if run_of_other_length(saved, config, previous.get("epochs_done")):
        return trained_all_its_epochs(previous, config)
    return not config_differences(saved, config)


def trained_all_its_epochs(previous: dict, config: dict) -> bool:
    """Whether a run recorded completed trained all the epochs ``config`` gives it, which it was given then
    too: more patience, the only other change it may go on with, has nothing to train."""
    return previous.get("epochs_done") == config["trainer"]["epochs"] == previous["config"]["trainer"]["epochs"]


def trained_anything(run_dir: Path) -> bool:
    """Whether a run folder holds what a run trained: a checkpoint, or TensorBoard events (written from
    the first epoch's start; a failure before it leaves only its HParams session)."""
    return any((run_dir / CHECKPOINTS).glob("*.pt")) or bool(run_events(run_dir))


def stopping_again(sweep_dir: Path) -> str:
    """``; the 2 that stopped early stop there again …``: a job that early stopping ended stops at once with the
    patience it had (its own, where the sweep sweeps it), whatever its epochs: only more patience trains it on."""
    patiences = []
    for job_dir in find_job_dirs(sweep_dir):
        metrics = read_json(job_dir / METRICS) or {}
        if stopped_early(metrics):
            patiences.append(setting_in(metrics.get("config"), EARLY_STOP_PATIENCE))
    if not patiences:
        return ""
    more = (f"{EARLY_STOP_PATIENCE}=N, N > {patiences[0]}" if len(set(map(str, patiences))) == 1 else
            f"a larger {EARLY_STOP_PATIENCE}")
    one = len(patiences) == 1
    return (f"; the {len(patiences)} that stopped early stop{'s' * one} there again: more patience trains "
            f"{'it' if one else 'them'} on ({more})")


def recorded_after_hydra(run_dir: Path) -> bool:
    """Whether the run's metrics.json was written after its .hydra/ record: by a train() that trained it since
    (run.py writes .hydra/ first). Not where .hydra/ is the newer: a run.py resume to other epochs, killed before
    it recorded anything, whose command is the one to go on with."""
    try:
        return (run_dir / METRICS).stat().st_mtime > (run_dir / SAVED_CONFIG).stat().st_mtime
    except OSError:
        return False


def other_length_note(run_dir: Path, before: dict, now: dict, metrics: dict) -> str:
    """What a run given another length (:func:`run_of_other_length`) trains: the log line that says so."""
    trained, given, epochs = metrics.get("epochs_done"), before["trainer"]["epochs"], now["trainer"]["epochs"]
    patience, more = before["trainer"].get("early_stop_patience"), now["trainer"].get("early_stop_patience")
    if metrics.get("status") == COMPLETED and trained is not None and trained < given and patience:
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
