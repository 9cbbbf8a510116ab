"""What a sweep searches: the search space rule and the job folders' names at its start, the searched
keys at its end.

The default study (``sweep: default`` in the defaults list: learning rate x batch size) is swept by
``python run.py -m`` alone. Hydra's BasicSweeper would otherwise take the cartesian product of
``hydra.sweeper.params`` and the swept values of the command line, so ``-m optimizer.lr=1e-3,3e-3
model=lenet5,lenet5_classic`` would run 2 x 2 x 2 (batch sizes) = 8 jobs instead of the 4 named. When
the command line sweeps a value and names no study, the default study is therefore left out, as it is
from a sweep of ``task=eval`` or ``task=predict``, which train nothing. A study
named on the command line (``sweep=lr_schedule``, or ``sweep=default`` itself) is combined with it the
way Hydra does: a key given on the command line replaces the study's values for that key, other keys
multiply.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import random
import sys
from pathlib import Path
from typing import Iterable, Iterator, Optional

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, Glob, IntervalSweep, RangeSweep, Sweep
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from lenet_exp.config import STUDY_GROUP
from lenet_exp.overrides import as_written, override_key, quote

log = logging.getLogger(__name__)

DEFAULT_STUDY = "default"
SEARCH_SPACE = "hydra.sweeper.params"  # a study's space: what Optuna draws from, or Hydra's sweeper's grid
GRID_SAMPLER = "optuna.samplers.GridSampler"


def _parse(overrides: Iterable[str]) -> list:
    """Parsed ``overrides``; a glob() of a group's options lists them where Hydra runs (run.py: its config
    loader), as its sweeper does."""
    from hydra.core.global_hydra import GlobalHydra

    loader = GlobalHydra.instance().config_loader() if GlobalHydra.instance().is_initialized() else None
    return OverridesParser.create(config_loader=loader).parse_overrides(list(overrides))


def task_overrides(config: DictConfig) -> list[str]:
    """The sweep's command-line overrides of the task's config, as written."""
    return as_written(OmegaConf.select(config, "hydra.overrides.task", default=[]) or [])


def sweep_overrides(config: DictConfig) -> list[str]:
    """What the sweepers read: the sweeper's params, then the command line (the last word on a key wins)."""
    params = OmegaConf.select(config, SEARCH_SPACE, default=None) or {}
    task = task_overrides(config)
    return [*(f"{key}={value}" for key, value in params.items()), *task]


def command_line_sweeps(overrides: Iterable[str]) -> list[str]:
    """Keys that the command line sweeps (comma lists, range(), choice(), glob(), interval())."""
    return [override.get_key_element() for override in _parse(overrides) if override.is_sweep_override()]


def apply_search_space_rule(config: DictConfig) -> Optional[str]:
    """Leave the default study out when the command line sweeps values of its own.

    Returns the message it logged, or None when the study's space stays as it is.
    """
    task = task_overrides(config)
    study = OmegaConf.select(config, f"hydra.runtime.choices.{STUDY_GROUP}", default=None)
    named = any(override_key(o) == STUDY_GROUP for o in task)
    params = OmegaConf.select(config, SEARCH_SPACE, default=None)
    if study != DEFAULT_STUDY or named or not params:
        return None
    swept = command_line_sweeps(task)
    trains = OmegaConf.select(config, "task", default="train") == "train"
    if not swept and trains:  # a key of the study given one value replaces its values: said, as Hydra does not
        replaced = [override for override in task if override_key(override).lstrip("+") in params]
        if replaced:
            kept = [f"{key}={value}" for key, value in params.items() if key not in map(override_key, replaced)]
            log.info("Sweeping the default search space (%s) with %s in place of its values; ~sweep runs the "
                     "command line's values alone.", " ".join(kept) or "no other key", " ".join(replaced))
        return None
    study_keys = [str(key) for key in params]
    left_out = ", ".join(study_keys)
    with open_dict(config.hydra.sweeper):
        config.hydra.sweeper.params = {}
    if trains:
        message = f"Sweeping only what the command line names ({', '.join(swept)})" + (
            f"; the default search space ({left_out}) is left out. Add sweep=default to combine them."
            if set(study_keys) - {key.lstrip("+") for key in swept} else ".")  # all swept: nothing to combine
    else:  # the default study's training settings would only repeat the same evaluation
        message = f"task={config.task} trains nothing: the default search space ({left_out}) is left out."
    log.info(message)
    return message


OUR_BASIC_SWEEPER = "hydra_plugins.lenet_exp_basic_sweeper.basic_sweeper.EndingBasicSweeper"  # config.yaml's
BASIC_SWEEPERS = ("hydra._internal.core_plugins.basic_sweeper.BasicSweeper", OUR_BASIC_SWEEPER)  # Hydra's, and ours


def numbers_jobs_by_folders(config: DictConfig) -> bool:
    """Whether the sweep's sweeper is ours, which numbers a grid's jobs by the folders found (numbered_as_found)."""
    return OmegaConf.select(config, "hydra.sweeper._target_", default=None) == OUR_BASIC_SWEEPER


def is_a_grid(config: DictConfig) -> bool:
    """Whether the sweep's sweeper is the basic one, which lists its jobs (a grid), not one that draws them."""
    return OmegaConf.select(config, "hydra.sweeper._target_", default=None) in BASIC_SWEEPERS


@contextlib.contextmanager
def shuffled_alike() -> Iterator[None]:
    """Hydra's ``shuffle(…)`` orders a sweep's values with Python's global random generator: seeded here,
    a shuffled sweep numbers its jobs the same way each time it runs, so that the same command continues
    it (each job keeps its number, and so its folder) instead of being "another sweep"."""
    state = random.getstate()
    random.seed(0)
    try:
        yield
    finally:
        random.setstate(state)


def split_grid(overrides: list, max_batch_size: Optional[int] = None,
               found: Iterable[tuple[int, list[str]]] = ()) -> list:
    """Hydra's basic sweeper's expansion of parsed overrides into batches of jobs, shuffled alike, and numbered
    as the sweep folder's jobs ``found`` (each one's number and overrides) are: :func:`numbered_as_found`."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper  # its static split, no instance

    if max_batch_size is not None and max_batch_size < 1 and max_batch_size != -1:  # Hydra's assert: a traceback
        sys.exit(f"Error: hydra.sweeper.max_batch_size={max_batch_size} hands the launcher no job at a time. Give "
                 f"the number of jobs at a time (1 or more), or null (or -1) for all of them at once.")
    with shuffled_alike():
        (jobs,) = BasicSweeper.split_arguments(overrides, None)
    jobs = numbered_as_found(jobs, found)
    return [jobs] if max_batch_size is None else list(BasicSweeper.split_overrides_to_chunks(jobs, max_batch_size))


def numbered_as_found(jobs: list[list[str]], found: Iterable[tuple[int, list[str]]]) -> list[list[str]]:
    """A grid's jobs, in Hydra's order (the last key varying fastest), numbered as the sweep's folder has them:
    a job whose values of the swept keys a folder ``found`` holds (its number and overrides) keeps that number,
    and the others take the numbers left, in Hydra's order. So values added to any swept key (seeds, where
    ``seed=`` is not the first) add jobs after the sweep's own, each of which keeps its folder. Hydra's order
    where the folders do not fit the grid (more of them than jobs): the sweep's check refuses it then."""
    keys = list(dict.fromkeys(override_key(o) for job in jobs for o in job))
    swept = [key for key in keys if len({o for job in jobs for o in job if override_key(o) == key}) > 1]

    def values(overrides: Iterable[str]) -> tuple:
        given = {override_key(o): o for o in overrides}
        return tuple(given.get(key) for key in swept)

    index = {}
    for i, job in enumerate(jobs):
        index.setdefault(values(job), i)
    kept: dict[int, int] = {}  # number -> the job's index in Hydra's order
    taken: set[int] = set()  # those indices (a thousand-job sweep's lookups)
    for number, overrides in sorted(found):
        i = index.get(values(overrides))
        if i is not None and i not in taken and number not in kept:
            kept[number] = i
            taken.add(i)
    if not kept or max(kept) >= len(jobs):
        return jobs
    rest = iter(i for i in range(len(jobs)) if i not in taken)
    return [jobs[kept[number]] if number in kept else jobs[next(rest)] for number in range(len(jobs))]


def grid_jobs(config: DictConfig, found: Iterable[tuple[int, list[str]]] = ()) -> Optional[list[tuple[str, ...]]]:
    """The jobs of a grid sweep in the order they are numbered, each its sorted overrides (as its folder
    names them); None for a sweeper that draws its jobs (Optuna), or a sweep whose values are listed only
    when it runs. Hydra's basic sweeper's own expansion: its params, then the command line, the last key
    varying fastest, numbered as the jobs ``found`` in its folder are (:func:`numbered_as_found`) by ours;
    Hydra's own (``hydra.sweeper._target_=…BasicSweeper``) numbers them in its order whatever is found."""
    if not is_a_grid(config):
        return None
    if not numbers_jobs_by_folders(config):
        found = ()
    try:
        return [tuple(sorted(job)) for job in split_grid(_parse(sweep_overrides(config)), found=found)[0]]
    except Exception:  # e.g. a glob() over a group's options, which only the config loader lists
        return None


def refuse_intervals_in_a_grid(config: DictConfig) -> None:
    """Exits with a message where a grid (the basic sweeper's lists of values, or Optuna's grid sampler) is
    given an interval to draw values from, which only Optuna's other samplers do; either would fail with a
    traceback."""
    grid_sampler = OmegaConf.select(config, "hydra.sweeper.sampler._target_", default=None) == GRID_SAMPLER
    if not is_a_grid(config) and not grid_sampler:
        return
    for override in _parse(sweep_overrides(config)):
        if override.is_interval_sweep():
            key = override.get_key_element()
            if grid_sampler:
                sys.exit(f"Error: {override.input_line} is a range to draw values from, which Optuna's grid "
                         f"sampler does not: give it the values to try, {key}='choice(a,b,c)'.")
            sys.exit(f"Error: {override.input_line} is a range to draw values from, which only an Optuna study "
                     f"does: `python run.py -m sweep=optuna '{override.input_line}'`. A grid sweep lists its "
                     f"values instead: {key}=a,b,c or {key}='range(start,stop,step)'.")


def refuse_a_space_that_draws_wrong(config: DictConfig) -> None:
    """Exits with a message where a swept key's glob(), range() or interval() cannot give what it says: a glob
    that matches no option, a step of 0 and an interval from high to low (tracebacks of Hydra and Optuna), a log
    interval from 0 or below, a range of floats, which Hydra steps by adding (0.30000000000000004), reaching its
    stop (range(0.1,0.4,0.1) gave 0.4), and one of them written as a value of a list (seed=range(0,2),5)."""
    from lenet_exp.command_line_errors.keys import group_options

    overrides = _parse(sweep_overrides(config))
    # the config groups swept: a key that a trial's option may have (optimizer=choice(adam,sgd): sgd's momentum)
    swept_groups = [key for key in (o.get_key_element() for o in overrides if o.is_sweep_override())
                    if group_options(key)]
    for override in overrides:
        value, key, written = override.value(), override.get_key_element(), override.input_line
        listed = value.list if isinstance(value, ChoiceSweep) else []
        nested = next((v for v in listed if isinstance(v, (Sweep, Glob))), None)
        if nested is not None:  # Hydra takes it for a value: omegaconf's traceback, or "model.include is not a setting"
            kind = {Glob: "glob()", RangeSweep: "range()", IntervalSweep: "interval()"}.get(type(nested), "choice()")
            sys.exit(f"Error: {written}: its {kind} is a sweep of its own, not one value of a list: give {key} the "
                     f"{kind} alone, or list every value ({key}=a,b,c).")
        options = group_options(key) if isinstance(value, Glob) else []
        if options and not value.filter(options):  # it launched no job, then found no job folder
            sys.exit(f"Error: {written} matches no option of {key}: choose from {', '.join(options)}.")
        if isinstance(value, RangeSweep) and value.step == 0:
            sys.exit(f"Error: {written}: a range() steps by a number other than 0, e.g. {key}='range(0,3)' for 0, 1, "
                     f"2.")
        if isinstance(value, RangeSweep) and any(isinstance(n, float) for n in (value.start, value.stop, value.step)):
            meant = _float_range(value.start, value.stop, value.step)
            if [float(v) for v in override.sweep_iterator()] != meant:
                sys.exit(f"Error: {written}: Hydra's range() of floats gives "
                         f"{', '.join(override.sweep_string_iterator())}. List the values instead: "
                         f"{key}={','.join(f'{v:g}' for v in meant)}.")
        if isinstance(value, IntervalSweep) and value.tags - {"log"}:  # drawn on a linear scale without a word
            advice = (f"{key}='{_interval(value, log=True)}', or the interval alone for a linear scale"
                      if min(value.start, value.end) > 0 else f"{key}='{_interval(value)}' (a log scale has no 0)")
            sys.exit(f"Error: {written}: Optuna's sweeper reads one tag, log (a log scale), and not "
                     f"{', '.join(sorted(value.tags - {'log'}))}: {advice}.")
        if isinstance(value, IntervalSweep) and value.start > value.end:
            sys.exit(f"Error: {written}: an interval goes from low to high: {key}='{_interval(value)}'.")
        if isinstance(value, IntervalSweep) and "log" in value.tags and value.start <= 0:
            sys.exit(f"Error: {written}: a log interval starts above 0 (a log scale has no 0), e.g. "
                     f"{key}='tag(log,interval({value.end / 100:g},{value.end:g}))'.")
        if not is_a_grid(config):
            refuse_a_draw_no_trial_can_take(config, override, swept_groups)


def _interval(value: IntervalSweep, log: bool = False) -> str:
    """``value`` written from low to high, of integers where it is, and on a log scale where it is or ``log``."""
    written = f"interval({min(value.start, value.end):g},{max(value.start, value.end):g})"
    if isinstance(value.start, int) and isinstance(value.end, int):
        written = f"int({written})"
    return f"tag(log,{written})" if log or "log" in value.tags else written


def refuse_a_draw_no_trial_can_take(config: DictConfig, override, swept_groups: list[str]) -> None:
    """Exits with a message where an Optuna study would draw values that its trials fail on, each one a lost
    trial (a grid composes each job first): an option that its config group lacks, fractions for an integer
    setting, or a range(), which Optuna's sweeper draws with its stop (range(0,2) drew 2) or not at all."""
    from lenet_exp.command_line_errors.keys import group_options

    value, key, written = override.value(), override.get_key_element(), override.input_line
    options = group_options(key)
    if isinstance(value, ChoiceSweep) and options:
        unknown = [str(v) for v in value.list if str(v) not in options]
        if unknown:
            sys.exit(f"Error: {written}: {unknown[0]} is not an option of {key}: choose from {', '.join(options)}.")
    current = OmegaConf.select(config, key, default=None)
    if (isinstance(value, IntervalSweep) and isinstance(current, int) and not isinstance(current, bool)
            and isinstance(value.start, float)):
        sys.exit(f"Error: {written}: {key} takes integers, and this interval draws fractions: "
                 f"{key}='int(interval({math.ceil(value.start)},{math.floor(value.end)}))'.")
    refuse_a_value_no_trial_takes(config, override, swept_groups)
    if isinstance(value, RangeSweep) and not value.shuffle:
        listed = list(override.sweep_string_iterator())
        if not listed:
            sys.exit(f"Error: {written} gives no value: give the values to draw from, e.g. {key}='choice(0,1,2)'.")
        sys.exit(f"Error: {written}: Optuna's sweeper draws a range() with its stop ({value.stop} too). Give the "
                 f"values to draw from: {key}='choice({','.join(listed)})'.")


def refuse_a_value_no_trial_takes(config: DictConfig, override, swept_groups: list[str]) -> None:
    """Exits with a message where a study's choice() holds a value, or its interval() an end, that the key's type
    or range refuses (``optimizer.lr='choice(abc,1e-3)'``), or sweeps a key that the config lacks without the +
    that adds it (``optimizer.eps=…``): each trial that drew it would fail."""
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

    from lenet_exp.command_line_errors.keys import expected_value, unknown_key
    from lenet_exp.validation import RANGES, fits, range_checked

    value, key, written = override.value(), override.get_key_element(), override.input_line
    drawn = [(v, v) for v in value.list] if isinstance(value, ChoiceSweep) else []  # (as written, as drawn)
    if isinstance(value, IntervalSweep):  # Optuna draws a float below the end, an integer up to it
        drawn = [(value.start, value.start), (value.end, value.end if isinstance(value.end, int)
                                              else math.nextafter(value.end, value.start))]
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(config, parent, default=None) if parent else config
    # the options drawn of its section's group (optimizer=choice(adam,sgd): sgd has momentum), or of a preset's
    option_may_have_it = any(  # (Hydra's own groups are never swept: refused before)
        group == key.split(".")[0] or group not in config for group in swept_groups)
    if not drawn or not OmegaConf.is_dict(node) or (leaf not in node and (
            override.is_add() or override.is_force_add() or option_may_have_it)):  # a key that a trial adds
        return
    ok, allowed = RANGES.get(key, (None, None))
    for written_value, candidate in drawn:
        trial = copy.deepcopy(node)
        try:
            trial[leaf] = candidate  # converted by the schema's type, or refused
        except (ConfigAttributeError, ConfigKeyError) as error:
            sys.exit(f"Error: {written}: {unknown_key(error)} Each trial would fail on it.")
        except ValidationError as error:
            allowed = expected_value(error)
        else:
            if ok is None or not range_checked(config, key) or fits(ok, trial[leaf]):
                continue
        sys.exit(f"Error: {written}: {key} takes {allowed}, not {written_value!r}: each trial that drew it would "
                 f"fail.")


def _float_range(start: float, stop: float, step: float) -> list[float]:
    """range(start, stop, step) for floats as Python's range() means it for integers: the stop left out, each
    value rounded to the decimals its numbers are written with."""
    decimals = max(len(f"{abs(n):g}".partition(".")[2]) for n in (start, stop, step))
    count = max(0, math.ceil(round((stop - start) / step, 9)))
    return [round(start + i * step, decimals) for i in range(count)]


def refuse_studies_swept(config: DictConfig) -> None:
    """Exits with a message where the command line sweeps the study group (``sweep=seeds,models``): a study is
    the sweeper's search space, read once, so each job ran the default study's jobs again under another name."""
    for override in _parse(task_overrides(config)):
        if override.get_key_element().lstrip("+") == STUDY_GROUP and override.is_sweep_override():
            try:
                studies = list(override.sweep_string_iterator())
            except Exception:  # glob(), which only the config loader lists
                studies = []
            one_each = (" then ".join(f"`python run.py -m {STUDY_GROUP}={study}`" for study in studies[:2])
                        or f"`python run.py -m {STUDY_GROUP}=NAME` for each")
            sys.exit(f"Error: {override.input_line} sweeps over studies, and a study is a sweep's whole search space: "
                     f"run one sweep per study ({one_each}).")


def refuse_an_empty_grid(config: DictConfig) -> None:
    """Exits with a message where a swept key lists no value (``seed=range(0,0)``): the sweep has no jobs,
    and it ended with "No job directories found"."""
    if grid_jobs(config) != []:
        return
    from hydra.core.override_parser.types import ValueType

    empty, globs = [], []
    for override in _parse(sweep_overrides(config)):
        try:
            if override.is_sweep_override() and not list(override.sweep_string_iterator()):
                (globs if override.value_type == ValueType.GLOB_CHOICE_SWEEP else empty).append(override.input_line)
        except Exception:  # an interval: refused on its own
            pass
    if globs and not empty:  # of no option, or of a setting: said on their own, with what to write instead
        return
    which = f"{' and '.join(empty)} gives no value" if empty else "its swept keys give no value"
    sys.exit(f"Error: the sweep has no jobs: {which}. Give each swept key one value or more.")


MAX_FOLDER_NAME = 255  # bytes: the limit of most file systems
AN_INTERVAL_VALUE = 24  # characters: a float that Optuna draws from an interval
EXCLUDED_FROM_NAMES = "hydra.job.config.override_dirname.exclude_keys="
BY_NUMBER = "hydra.sweep.subdir='${hydra.job.num}'"


def name_jobs_by_what_varies(config: DictConfig) -> None:
    """Leave the command line's constant overrides out of the job folders' names too, so that a job's
    folder (and TensorBoard run) is named by its number and the values searched: ``3_optimizer.lr=0.003``.
    Where those values could make a name longer than a file system allows, or no searched key names a job
    (a sweep over ``ckpt=``, whose paths are left out of names), jobs are named by number.

    Hydra composes each job anew from the sweep's Hydra overrides and the job's own, so the change is
    passed on as one more Hydra override (multirun.yaml records it)."""
    searched = searched_keys(config)
    constant = sorted({override_key(o) for o in task_overrides(config)} - searched)
    constant_before = constants_of_the_sweep_before(config, searched)
    if constant_before:
        log.info("Job folders are named as the sweep in %s names them: without %s, a constant of its first jobs "
                 "(each job's value is in its .hydra/ and TensorBoard's HParams).", config.hydra.sweep.dir,
                 ", ".join(constant_before))
    excluded = list(dict.fromkeys([*config.hydra.job.config.override_dirname.exclude_keys, *constant,
                                   *constant_before]))
    if not searched - set(excluded):  # e.g. a sweep over checkpoints: `0_` would say nothing more
        change = BY_NUMBER
    elif _longest_name(config, set(excluded)) > MAX_FOLDER_NAME:
        log.info("Job folders are named by their number only: the swept values would make names longer than "
                 "%d bytes.", MAX_FOLDER_NAME)
        change = BY_NUMBER
    elif constant:
        change = f"{EXCLUDED_FROM_NAMES}[{','.join(map(quote, excluded))}]"
    else:
        return
    with read_write(config.hydra.overrides):
        config.hydra.overrides.hydra.append(change)


def constants_of_the_sweep_before(config: DictConfig, searched: set[str]) -> list[str]:
    """The keys this sweep searches that the sweep already in its hydra.sweep.dir had as constants, and so
    left out of its job folders' names: seeds added to ``seed=0``. Its jobs keep their folders only where
    the new ones are named so too (their numbers tell them apart), and only with our basic sweeper, which
    numbers them by the folders found (Hydra's, or a study, would renumber or redraw them: refused)."""
    from lenet_exp.files import SWEEP_RECORD

    if not numbers_jobs_by_folders(config):
        return []
    try:
        saved = OmegaConf.load(Path(str(config.hydra.sweep.dir)) / SWEEP_RECORD)
        naming = [o for o in as_written(saved.hydra.overrides.hydra) if o.startswith(EXCLUDED_FROM_NAMES)]
        excluded = OverridesParser.create().parse_override(naming[0]).value() if naming else []
    except Exception:  # no sweep there, or one whose record the sweep's check refuses
        return []
    return sorted(set(excluded) & searched)


def job_naming(config: DictConfig, kept) -> list[str]:
    """The Hydra overrides that name a sweep's job folders (:func:`name_jobs_by_what_varies` sets them), sorted,
    with the keys left out of the names reduced to those ``kept`` (a constant is in no name either way)."""
    naming = []
    for override in as_written(config.hydra.overrides.hydra):  # subdir=${hydra.job.num} is no value yet
        if override.startswith(EXCLUDED_FROM_NAMES):
            excluded = OverridesParser.create().parse_override(override).value()
            naming.append(f"{EXCLUDED_FROM_NAMES}[{','.join(sorted(key for key in excluded if kept(key)))}]")
        elif override.startswith(("hydra.job.config.override_dirname.", "hydra.sweep.subdir=")):
            naming.append(override)
    return sorted(naming)


def subdir_template(config: DictConfig) -> str:
    """``hydra.sweep.subdir`` as written, its ``${…}`` unresolved (a job's number is no value yet)."""
    return str(OmegaConf.to_container(config.hydra.sweep, resolve=False).get("subdir"))


class JobFolders:
    """The folders a sweep's jobs write to, each worked out from the job's config as Hydra's basic sweeper
    composes it to check the job (an Optuna study's as it draws them): two jobs given one folder by a
    ``hydra.sweep.subdir`` of one's own (e.g. ``seed_${seed}`` in a sweep over lr and seed) are refused
    before the first job starts (a study's, before the second). Hydra would write the second job's .hydra/
    over the first's, and the summary read the first's results as the second's."""

    # in a subdir, what gives each job a folder of its own (${hydra:job.num}: Hydra's resolver of the same)
    NUMBERED = ("hydra.job.num", "hydra.job.id", "hydra:job.num", "hydra:job.id")

    def __init__(self, sweep_config: DictConfig) -> None:
        self.subdir = subdir_template(sweep_config)
        self.first_job_in: dict[str, int] = {}
        self.jobs = 0

    @property
    def numbered(self) -> bool:
        """Whether each job's folder has the job's number in its name, and so is its own."""
        return any(key in self.subdir for key in self.NUMBERED)

    def claim(self, job_config: DictConfig) -> None:
        """Take the folder of the sweep's next job, or exit with a message where an earlier job has it, or where
        it is a link out of the sweep's folder (Hydra would write the job there: a folder is data)."""
        from lenet_exp.files import REPLACE_THE_LINK, linked_entry

        number, self.jobs = self.jobs, self.jobs + 1
        with open_dict(job_config):
            job_config.hydra.job.num = job_config.hydra.job.id = number  # as Hydra's basic launcher sets them
        folder = job_folder(job_config)
        linked = linked_entry(Path(str(job_config.hydra.sweep.dir)), Path(folder).parts[:1])
        if linked:
            sys.exit(f"Error: {linked}. {REPLACE_THE_LINK}, or remove the link, then run the same command again.")
        if self.numbered:
            return
        if folder in self.first_job_in:
            sys.exit(f"Error: hydra.sweep.subdir={self.subdir} gives jobs {self.first_job_in[folder]} and {number} one "
                     f"folder ({folder}), where the second would overwrite the first. Name each job's folder with its "
                     f"number, as the default does: "
                     f"hydra.sweep.subdir='${{hydra.job.num}}_${{hydra.job.override_dirname}}'.")
        self.first_job_in[folder] = number


def job_folder(job_config: DictConfig) -> str:
    """The job's ``hydra.sweep.subdir``, resolved as Hydra's run_job does: with the job's config as Hydra's own
    (``${hydra:job.num}`` reads it), on a copy, which Hydra makes read-only."""
    from hydra.core.hydra_config import HydraConfig

    hydras, before = HydraConfig.instance(), HydraConfig.instance().cfg
    resolved = copy.deepcopy(job_config)
    hydras.set_config(resolved)
    try:
        return str(resolved.hydra.sweep.subdir)
    finally:
        hydras.cfg = before


def _longest_name(config: DictConfig, excluded: set[str]) -> int:
    """An upper bound on a job folder's name in bytes: its number, then key=value for each override."""
    widths = {}
    for override in _parse(sweep_overrides(config)):
        key = override.get_key_element()
        try:
            values = list(override.sweep_string_iterator()) if override.is_sweep_override() else [
                override.get_value_element_as_str()]
            width = max((len(v.encode()) for v in values), default=0)
        except Exception:  # an interval: no list of values, a number drawn from it
            width = AN_INTERVAL_VALUE
        widths[key] = len(key.encode()) + 1 + width
    kept = [width for key, width in widths.items() if key not in excluded]
    return len("999999_") + sum(kept) + max(0, len(kept) - 1)


def searched_keys(config: Optional[DictConfig]) -> set[str]:
    """Keys the sweep searched: its sweeper's params and the command line's swept values (as
    :func:`override_key` writes them: ``+trial=a,b`` searches ``trial``).

    An Optuna study may draw one value of a searched key in every trial; it is still a column.
    """
    if config is None:
        return set()
    try:
        swept = {override_key(override.input_line): override.is_sweep_override()
                 for override in _parse(sweep_overrides(config))}
    except Exception:  # an override the parser rejects cannot have run either
        return set()
    return {key for key, is_sweep in swept.items() if is_sweep}


def linear_intervals(config: Optional[DictConfig]) -> set[str]:
    """Keys that a study draws from an interval on a linear scale (``interval(0.0, 0.5)``, not
    ``tag(log, interval(...))``): plotted on a linear axis even where the values drawn span decades."""
    if config is None:
        return set()
    try:
        overrides = _parse(sweep_overrides(config))
    except Exception:  # as searched_keys
        return set()
    return {override_key(override.input_line) for override in overrides
            if isinstance(override.value(), IntervalSweep) and "log" not in override.value().tags}
