"""The Hydra callback that checks a run's or sweep's command line and guards its output directory.

Hydra rewrites ``.hydra/`` of the output directory before the task starts, so a directory that holds
another run, or that a running run owns, must be refused here (or a command that does not continue the run
or sweep it holds: ``continuation``), or the record of how that run was made would be lost. The folder stays
this process's for its life (``files.own_folder``). A sweep's jobs that recorded nothing of their own get their
records back at its end. Before any of it, what the command line cannot mean is refused (a key no job has,
Slurm where there is none, a misused override).
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
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import InterpolationResolutionError

from lenet_exp.command_line_errors.keys import config_repository, swept_options
from lenet_exp.command_line_errors.misused import (a_value_twice, deleted_setting, glob_of_a_setting, merged_options,
                                                   number_as_bool, swept_twice)
from lenet_exp.config import PREPROCESSING_KEYS, TRAINING_SPLIT_KEYS, listed, read_by, sets_a_preset, without_hydra
from lenet_exp.continuation import changes_to_a_run, load_record, refuse_another_sweep
from lenet_exp.errors import UserError, full_errors_wanted, one_line
from lenet_exp.files import (FREE_SOME_SPACE, HYDRA_FOLDER, HYDRA_RECORD, METRICS, REPLACE_THE_LINK, RUN_FILES,
                             SAVED_CONFIG, SWEEP_RECORD, WRITTEN_ENTRIES, linked_entry, mount_point, own_folder,
                             read_json, remove_temporary_files, room_left, someone_elses_metrics, up_from_a_link,
                             write_atomic)
from lenet_exp.folders import around_another, enclosing_record, inside_another, record_below
from lenet_exp.overrides import as_written, override_key
from lenet_exp.slots import Launching
from lenet_exp.resume import resume_command, resumed_run
from lenet_exp.sweeps.ending import note_sweep_dir
from lenet_exp.sweeps.records import LATER_FAILURE, find_job_dirs, moved_job
from lenet_exp.sweeps.report import SUMMARY_RUN
from lenet_exp.sweeps.space import searched_keys, subdir_template, sweep_overrides, task_overrides
from lenet_exp.validation import refuse_unknown_keys, validate

log = logging.getLogger(__name__)


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
    left = room_left(directory)
    if left:  # Hydra's own first write (.hydra/config.yaml) would fail with a traceback
        refuse(f"Error: No space left on {mount_point(directory)} ({left}) for {directory}. {FREE_SOME_SPACE}, then "
               f"run the same command again, or {another_folder(directory, override, place='another disk')}.")


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


def refuse_moved_jobs(sweep_dir: Path) -> None:
    """Exits with a message where a job's folder was renamed or copied within the sweep's: the sweep would train its
    job again in the folder it recorded, and the summary list it twice."""
    for job_dir in find_job_dirs(sweep_dir):
        recorded = moved_job(job_dir, sweep_dir)
        if recorded and (sweep_dir / recorded).is_dir():
            sys.exit(f"Error: {job_dir} is a copy of the sweep's job folder {recorded}, which its summary would list "
                     f"twice. Move the copy out of {sweep_dir}, or delete it.")
        if recorded:
            sys.exit(f"Error: {job_dir} holds a job of the sweep that ran in {recorded}: a job folder renamed, whose "
                     f"job this sweep would train again there. Rename it back to {recorded}, or move it out of "
                     f"{sweep_dir}.")


def refuse_up_from_a_link(directory: Path, override: str) -> None:
    """Exits where ``directory`` goes up from a symbolic link: Hydra made the system's folder and logged into the
    one it read (a traceback)."""
    system = up_from_a_link(directory)
    if system:
        sys.exit(f"Error: {override}={directory} goes up (..) from a symbolic link, which the system takes to {system} "
                 f"and Hydra to {os.path.abspath(directory)}. Name the folder without '..', e.g. "
                 f"{override}={shlex.quote(str(system))}.")


# the bytes a run's deepest file adds to its folder's path: checkpoints/.best.pt.<8 random>.tmp, or TensorBoard's
# events.out.tfevents.<time>.<host name, at most 64>.<pid>.<n>
DEEPEST_FILE_BYTES = 160


def refuse_too_long(directory: Path, override: str, sweep: bool = False) -> None:
    """Exits where a name in ``directory`` is longer than its file system takes, or where the path of a file a run
    (a sweep's job, in a folder of its own) writes in it would be longer than the system takes: at its first write
    (a traceback)."""
    existing = next(parent for parent in Path(os.path.abspath(directory)).parents if os.path.isdir(parent))  # no raise
    limits = {}
    for limit, usual in (("PC_NAME_MAX", 255), ("PC_PATH_MAX", 4096)):
        try:
            limits[limit] = os.pathconf(existing, limit)
        except (OSError, ValueError):
            limits[limit] = usual
    shown = str(directory) if len(str(directory)) <= 80 else f"{str(directory)[:80]}…"
    name = next((part for part in directory.parts if len(os.fsencode(part)) > limits["PC_NAME_MAX"]), None)
    if name:
        sys.exit(f"Error: {override}={shown} holds a folder name of {len(os.fsencode(name))} bytes, and its file "
                 f"system ({mount_point(existing)}) takes at most {limits['PC_NAME_MAX']}. Choose a shorter name.")
    length = len(os.fsencode(os.path.abspath(directory)))
    deepest = DEEPEST_FILE_BYTES + (limits["PC_NAME_MAX"] + 1 if sweep else 0)  # a job's folder name
    if length + deepest >= limits["PC_PATH_MAX"]:
        sys.exit(f"Error: {override}={shown} is a path of {length} bytes, and those of the files a "
                 f"{'sweep' if sweep else 'run'} writes in it (up to {deepest} bytes more) would pass the system's "
                 f"limit of {limits['PC_PATH_MAX']}. Choose a shorter path.")


def refuse_if_owned(directory: Path, what: str, override: str) -> None:
    holder = own_folder(directory)
    if holder:  # a run resumed, a sweep continued or extended: its own folder, as it will be once the other ends
        goes_on = is_resumed(directory) or (what == "sweep" and find_job_dirs(directory))
        how = "then run the same command again" if goes_on else f"or {another_folder(directory, override)}"
        sys.exit(f"Error: {directory} is in use by another {what} ({holder}). Wait until it ends, {how}.")


@contextlib.contextmanager
def failing_closed(override: str) -> Iterator[None]:
    """An unforeseen error in the checks of an output folder ends the run with a message."""
    try:
        yield
    except InterpolationResolutionError as error:  # a ${...} in the folder's name that names nothing
        if "HydraConfig was not set" in str(error):  # a sweep's folder: Hydra sets its ${hydra:…} for each job only
            sys.exit(f"Error: {override} cannot use ${{hydra:…}}, which Hydra resolves in each job's config, not in "
                     f"the sweep's: write ${{hydra.…}} instead (e.g. ${{hydra.runtime.choices.optimizer}}).")
        sys.exit(f"Error: {override} cannot be resolved: {one_line(error)}. Correct or leave out the ${{...}} in it.")
    except UserError as error:  # it says what is wrong and what to do
        sys.exit(f"Error: {error}")
    except Exception as error:
        sys.exit(f"Error: could not check the output folder ({override}) before writing to it: {one_line(error)}")


def commands_configs(config: DictConfig):
    """The configs the command reads, its hydra.searchpath's too; None where Hydra has not started (any key may
    then be a group)."""
    return config_repository([*as_written(config.hydra.overrides.hydra), *task_overrides(config)])


def refuse_misused_overrides(config: DictConfig) -> None:
    """Exits with a message on ``model=[lenet5,lenet5_classic]``, ``~seed`` or ``trainer.deterministic=2``, which
    compose (command_line_errors)."""
    overrides = task_overrides(config)
    repository = commands_configs(config)
    given = {override_key(override) for override in overrides}  # the study's values of a key the command gives: not run
    space = [*overrides, *(override for override in sweep_overrides(config) if override_key(override) not in given)]
    misused = (merged_options(overrides) or swept_twice(overrides) or a_value_twice(space)
               or deleted_setting(overrides) or number_as_bool(overrides, config) or glob_of_a_setting(overrides, repository))
    if misused:
        sys.exit(f"Error: {misused}")


def refuse_a_key_no_job_has(config: DictConfig) -> None:
    """``-m +trainer.epochz=3 seed=0,1``: a key that its section's schema lacks fails every job alike, each
    leaving a folder of a failed job; refused once, before the first, where no swept option or preset could
    give the job another schema or class (``optimizer=sgd,adam +optimizer.dampening=0.1``: the sweeper checks
    each job's, validation.refuse_keys_some_jobs_lack)."""
    searched, overrides, repository = searched_keys(config), task_overrides(config), commands_configs(config)
    if any(sets_a_preset(key) and (repository is None or repository.group_exists(key)) for key in searched):
        return  # a preset swept (or a group of one's own): each job's keys its own

    def swept_apart(key: str) -> bool:  # its option, or its class (optimizer._target_=…,…), differs by job
        section = key.split(".")[0]
        return (section in searched and section != key) or f"{section}._target_" in searched

    try:
        refuse_unknown_keys(with_the_keys_a_sweep_adds(config, overrides, repository), unchecked=swept_apart)
    except UserError as error:  # a ConfigError, or the resumed run's own setting that it cannot keep
        sys.exit(f"Error: {error}")


def refuse_a_sweep_of_what_its_task_ignores(config: DictConfig) -> None:
    """``-m task=eval ckpt=… experiment=a,b``: eval and predict take the checkpoint's model and preprocessing as it
    was trained, so jobs that differ only in what they do not use would be alike, each saying its setting is unused.
    (The training split's keys are read where eval tests a data set the command line names, which may be another
    than the checkpoint's; where a sweep's tasks differ, a key is refused that none of them reads.)"""
    overrides, searched = task_overrides(config), searched_keys(config)
    tasks = set(swept_options("task", overrides)) if "task" in searched else {str(config.task)}
    if not tasks or "train" in tasks:
        return
    preprocessing = {f"dataset.{key}" for key in PREPROCESSING_KEYS}
    another_data_set = "eval" in tasks and any(override_key(o) == "dataset" for o in overrides)

    def unused(key: str, task: str) -> bool:
        if key in TRAINING_SPLIT_KEYS:
            return task == "predict" or not another_data_set
        return key in preprocessing or not read_by(task, key)

    ignored = sorted(key for key in searched if all(unused(key, task) for task in tasks))
    if ignored:
        named = "task=" + ",".join(sorted(tasks))
        reads = "ckpt= or image=" if tasks == {"predict"} else "ckpt= or dataset="
        sys.exit(f"Error: {named} does not use {' or '.join(ignored)} (it takes the checkpoint's model and "
                 f"preprocessing as it was trained), so the sweep's jobs would be alike. Sweep what it reads, e.g. "
                 f"{reads}, or drop {named} to train a model for each value.")


def with_the_keys_a_sweep_adds(config: DictConfig, overrides: list[str], repository) -> DictConfig:
    """``config`` with each key that the sweep's ``+key=a,b`` adds, at its first value, as its first job has it (the
    sweep's own config has none of them): ``-m +trainer.epochz=1,2`` failed every job alike. A group of one's own
    (in ``repository``, the command's configs) is no key."""
    import copy

    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import OverrideType

    added = [override for override in OverridesParser.create().parse_overrides(overrides)
             if override.is_sweep_override() and override.type in (OverrideType.ADD, OverrideType.FORCE_ADD)]
    first = copy.deepcopy(config) if added else config
    for override in added:
        key = override.key_or_group
        if override.package or (repository and repository.group_exists(key)):  # an option of a group, or a package
            continue
        try:
            value = next(iter(override.sweep_iterator()))
        except Exception:  # glob(), of groups only; an empty range, refused on its own
            continue
        with open_dict(first):
            OmegaConf.update(first, key, value, force_add=True)
    return first


def refuse_a_run_it_would_refuse(config: DictConfig) -> None:
    """A value out of its range (``optimizer.lr=0``), a ``task=eval`` without its ``ckpt=``, ...: refused before
    Hydra makes the run's folder, which held only the refusal (a sweep's jobs are checked each in its own)."""
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
        # its settings given: "not a setting of the launcher chosen" next, which said to choose a Slurm one
        settings = [o for o in as_written(config.hydra.overrides.hydra)
                    if override_key(o).startswith("hydra.launcher.")]
        drop = f" (without {' '.join(settings)}, which it may not have)" if settings else ""
        sys.exit(f"Error: hydra/launcher={chosen} submits the sweep to Slurm, and this machine has no srun (no Slurm "
                 f"client here). Start the sweep on the cluster's login node, or run it here: hydra/launcher=stacked, "
                 f"joblib or submitit_local{drop}.")


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


def warn_of_unread_configs_when_printing(arguments: list[str]) -> None:
    """``--cfg``, ``--help`` and ``--info`` print the config without a run's callbacks: a config of one's own
    (--config-dir, hydra.searchpath) that one of configs/ keeps from being read is said there too (the printed
    config is configs/')."""
    from lenet_exp import CONFIGS
    from lenet_exp.command_line_errors.arguments import hydra_flags
    from lenet_exp.command_line_errors.keys import search_folders

    flags = hydra_flags(arguments)
    if not flags or not (flags.cfg or flags.help or flags.info):
        return
    for folder in [*([flags.config_dir] if flags.config_dir else []), *search_folders(arguments)]:
        folder = Path(folder)  # as Hydra reads it: a quoted '~/mine' is no home folder
        for message in unread_configs(Path(CONFIGS), folder) if folder.is_dir() else ():
            print(f"Warning: {message}", file=sys.stderr)


def unread_configs(main: Path, folder: Path) -> Iterator[str]:
    """What to say of each config in ``folder`` (one's own) that one of ``main`` (configs/) keeps from being read,
    having its name."""
    for own in sorted([*folder.glob("*.yaml"), *folder.glob("*/*.yaml")]):
        shipped = main / own.relative_to(folder)
        if shipped.is_file() and own.resolve() != shipped.resolve():
            chosen = f"{own.parent.name}=<that name>" if own.parent != folder else "--config-name <that name>"
            yield (f"{own} is not read: {shipped}, first on Hydra's search path, has its name. Give yours another "
                   f"name, then choose it with {chosen}.")


def say_what_the_sweep_holds(config: DictConfig, records: dict) -> None:
    """A submitit sweep run again into its folder: the jobs it holds from before, by status. Each job says in its
    run.log whether it is skipped or goes on, which a basic or joblib sweep shows on the console, and a stacked
    one sums up there itself; submitit's jobs log to their own files alone."""
    launching = Launching.of(config.hydra.launcher)
    if not records or not launching.submitit or launching.stacked:
        return
    statuses = Counter(str((read_json(job_dir / METRICS) or {}).get("status", "not recorded")) for job_dir in records)
    log.info("Sweep %s holds %d job%s from before (%s): each one's run.log says whether it is skipped or goes on.",
             config.hydra.sweep.dir, len(records), "s" if len(records) != 1 else "",
             ", ".join(f"{count} {status}" for status, count in sorted(statuses.items())))


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


def put_back_the_runs_record(run_dir: Path, not_its_folder: bool = False) -> None:
    """A run that trained nothing, as it ended with an error (its data gone) or was completed already, gets its
    .hydra/ record back: Hydra had written this command's over it (``resume=<run> trainer.epochs=3``, ``resume=<run>
    device=cuda``), which a plain resume= then replayed. In a folder that held another run's checkpoints and no
    record (``not_its_folder``), the one Hydra wrote goes: it made the folder this command's run."""
    found = {folder: record for folder, record in _records_found.items()
             if folder.resolve() == Path(run_dir).resolve()}
    _records_found.clear()
    if not found and not_its_folder:
        for name in HYDRA_RECORD:
            (run_dir / name).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            (run_dir / HYDRA_FOLDER).rmdir()
    put_back_the_records_of_jobs_that_recorded_nothing(found)


EACH_JOBS_OWN = ("hydra.job.num", "hydra.job.id", "hydra.job.override_dirname")  # Hydra's keys that differ by job


class OutputDirCheck(Callback):
    """Checks the command line and the output folder before Hydra writes into it. Hydra turns a callback's
    exception into a warning and goes on, so an unforeseen error here ends the run instead of skipping the
    checks."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        from hydra.core.hydra_config import HydraConfig

        # as the job has it: a ${hydra:job.name} in hydra.run.dir, a ${hydra:runtime.cwd} in the config resolve
        HydraConfig.instance().set_config(config)
        warn_of_unread_configs(config)
        with failing_closed("hydra.run.dir"):
            refuse_too_long(Path(config.hydra.run.dir), "hydra.run.dir")  # before any check reads in it
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
            refuse_too_long(Path(config.hydra.sweep.dir), "hydra.sweep.dir", sweep=True)  # before any check reads in it
            refuse_misused_overrides(config)
            refuse_a_key_no_job_has(config)
            refuse_a_sweep_of_what_its_task_ignores(config)
            refuse_another_record_folder(config)
            refuse_slurm_where_there_is_none(config)
            self.check_sweep_dir(config)
            self.records = job_records(find_job_dirs(Path(config.hydra.sweep.dir)))  # nested ones too
        say_what_the_sweep_holds(config, self.records)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:  # before the summary, which reads them
        put_back_the_records_of_jobs_that_recorded_nothing(getattr(self, "records", {}))

    @staticmethod
    def check_run_dir(config: DictConfig) -> None:
        if not str(config.hydra.run.dir).strip():
            sys.exit("Error: hydra.run.dir is empty, which would write the run into the current folder. "
                     "Name a folder, e.g. hydra.run.dir=outputs/runs/mine.")
        run_dir = Path(config.hydra.run.dir)
        refuse_up_from_a_link(run_dir, "hydra.run.dir")
        if (run_dir / SWEEP_RECORD).is_file():  # its summary and TensorBoard would take the run for a sweep's
            sys.exit(f"Error: {run_dir} holds a sweep (multirun.yaml). A run needs a folder of its own: choose "
                     f"another hydra.run.dir, or resume one of the sweep's jobs with resume=<its job folder>.")
        saved = run_dir / SAVED_CONFIG
        enclosing = enclosing_record(run_dir)
        sweep = enclosing[0] if enclosing and enclosing[1] == "sweep" else None
        # a job's folder (hydra.sweep.subdir may nest it), or one to be: a new one just inside the sweep's
        in_a_sweep = sweep is not None and (saved.is_file() or Path(os.path.abspath(run_dir)).parent == sweep)
        if enclosing and not in_a_sweep:  # a sweep's summary would list it, or a run's TensorBoard show it
            sys.exit(f"Error: {inside_another(run_dir, enclosing, 'run', 'hydra.run.dir')}")
        below = record_below(run_dir)
        if below:  # hydra.run.dir=outputs
            sys.exit(f"Error: {around_another(run_dir, below, 'run', 'hydra.run.dir')}")
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
        refuse_up_from_a_link(Path(config.hydra.sweep.dir), "hydra.sweep.dir")
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
        launcher = str(OmegaConf.select(config, "hydra.launcher._target_", default=""))
        anew = "${now:…} (the time)" if "${now:" in subdir else "${hydra.job.id} (submitit's job id)" if (
            ("${hydra.job.id}" in subdir or "${hydra:job.id}" in subdir) and "submitit" in launcher) else None
        if anew:  # run again into its hydra.sweep.dir, each job would train again in a new folder
            sys.exit(f"Error: hydra.sweep.subdir={subdir} names {anew}, which differs each time the sweep runs: the "
                     f"same command run again into its hydra.sweep.dir would train every job again in new folders, "
                     f"its summary list each twice. Name the jobs' folders by what they run, e.g. "
                     f"hydra.sweep.subdir='${{hydra.job.num}}_${{hydra.job.override_dirname}}'.")
        if Path(subdir).is_absolute() or ".." in Path(subdir).parts:
            sys.exit(f"Error: hydra.sweep.subdir={subdir} puts the jobs outside hydra.sweep.dir, where the summary and "
                     f"the sweep's command run again do not look for them. Name a folder inside it, e.g. "
                     f"hydra.sweep.subdir='${{hydra.job.num}}_${{seed}}'.")
        sweep_dir = Path(config.hydra.sweep.dir)
        enclosing = enclosing_record(sweep_dir)
        if enclosing and enclosing[1] == "run":  # its TensorBoard would show this sweep's runs as its own
            sys.exit(f"Error: {inside_another(sweep_dir, enclosing, 'sweep', 'hydra.sweep.dir')}")
        if (sweep_dir / HYDRA_FOLDER).is_dir():  # a run's folder, or one of a sweep's jobs
            sys.exit(f"Error: {sweep_dir} holds a run (.hydra/). A sweep needs a folder of its own: choose another "
                     f"hydra.sweep.dir.")
        saved = sweep_dir / SWEEP_RECORD
        # continuing a sweep: only the same sweep, or one with jobs added after its own. One that ended before
        # its first job began (stopped as it started) holds nothing: the next command may start there.
        if saved.is_file():
            record = load_record(saved, "hydra.sweep.dir")
            refuse_moved_jobs(sweep_dir)
            if find_job_dirs(sweep_dir):
                refuse_if_owned(sweep_dir, "sweep", "hydra.sweep.dir")  # before it says which jobs it would add
                refuse_another_sweep(sweep_dir, record, config)
        elif below := record_below(sweep_dir):  # hydra.sweep.dir=outputs: its summary would list those runs as jobs
            sys.exit(f"Error: {around_another(sweep_dir, below, 'sweep', 'hydra.sweep.dir')}")
        check_writable(sweep_dir, "hydra.sweep.dir")
        jobs = (path.name for path in sweep_dir.iterdir() if (path / HYDRA_FOLDER).is_dir())
        refuse_links_out(sweep_dir, [SWEEP_RECORD, SUMMARY_RUN, *jobs], "hydra.sweep.dir")
        for job_dir in (path for path in sweep_dir.iterdir() if path.is_dir()):
            refuse_odd_entries(job_dir, "hydra.sweep.dir")
        refuse_if_owned(sweep_dir, "sweep", "hydra.sweep.dir")
        remove_temporary_files(sweep_dir)  # a summary's, of a sweep killed as it wrote it: now this one's folder
        note_sweep_dir(sweep_dir)  # for run.py's message if a stop reaches it
