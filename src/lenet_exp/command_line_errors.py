"""Hydra's errors for a mistyped command line, as one line that says what to type instead.

Hydra reports a key that does not exist, a value of the wrong type and an option that no config group
has in several lines of its internals (``reference_type=TrainerConfig``, its config search path), and
for a mistyped key it suggests ``+key=``, which adds a setting that nothing reads. These, an override
its grammar cannot read, a comma list without ``-m``, a ``+`` too many, a config file of one's own
that is not YAML, a search space under ``hydra.sweeper.params``, a preset given to ``--config-name``,
a group set to null, a number or a list of options, a setting deleted (``~key``), an override without a
key and ``hydra=`` as a whole are the mistakes users make most, so run.py reports them as every other
bad input is reported; anything else, and everything under ``HYDRA_FULL_ERROR=1``, stays Hydra's. No
torch import.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import os
import re
import shlex
import sys
import traceback
import typing
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import hydra._internal.utils as hydra_utils
import yaml
from hydra.core.default_element import GroupDefault
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ValueType
from hydra.errors import (ConfigCompositionException, HydraException, MissingConfigException,
                          OverrideParseException)
from omegaconf import BooleanNode, DictConfig, OmegaConf
from omegaconf.errors import (ConfigAttributeError, ConfigKeyError, ConfigTypeError, InterpolationResolutionError,
                              ValidationError)

from lenet_exp.config import (DATASET_SCHEMA, GROUP_SCHEMAS, ROOT_SCHEMA, STUDY_GROUP, TOP_LEVEL, Config, schema_name,
                              sets_a_preset)
from lenet_exp.errors import GIVE_A_CONFIG_FOLDER, ConfigError, closest, full_errors_wanted
from lenet_exp.files import HYDRA_FOLDER, disk_full_error, write_refused
from lenet_exp.overrides import (MULTIRUN_FLAGS, OUTPUT_KEYS, TASK_PATH_KEYS, multirun_flag, override_key,
                                 override_value, sets_hydra, unquote)
from lenet_exp.resume import replayed_setting, the_runs_own
from lenet_exp.sweeps.space import GRID_SAMPLER, SEARCH_SPACE
from lenet_exp.validation import NOT_A_RUNS_CONFIG, optimizer_arguments

GRAMMAR = "https://hydra.cc/docs/advanced/override_grammar/basic/"
# Hydra's flags that choose what it does, as its help names them (by its argument parser's dest); -m with one of
# them is run.py's to refuse (flags_first), which says how to see a job's config
HYDRA_MODES = {"help": "--help", "hydra_help": "--hydra-help", "run": "--run", "cfg": "--cfg", "info": "--info",
               "shell_completion": "--shell-completion"}
OWN_CALLBACKS = ("hydra.callbacks", "hydra.callbacks.sweep_summary", "hydra.callbacks.output_dir_check")  # config.yaml
EXPECTED = (  # what omegaconf's message says, and what the value must be instead
    ("could not be converted to Integer", "an integer"),
    ("could not be converted to Float", "a number"),
    ("is not a valid bool", "true or false"),
    ("is not a ListConfig, list or tuple", "a list in brackets, e.g. [a,b]"),
    ("Cannot merge DictConfig with ListConfig", "a list in brackets, e.g. [a,b]"),
    ("NoneType is not a subclass of float", "a number"),  # an item of a list (augment.scale=[null,1])
    ("NoneType is not a subclass of int", "an integer"),
    ("Cannot convert", "a string (a path or a name)"),
    ("is not Optional", "a value: this setting cannot be null"),
    ("to Dict[", "keys of its own, each added with a +, e.g. +<setting>.<key>=<value>"),
)


def did_you_mean(word: str, choices: list[str], prefix: str = "") -> str:
    close = closest(word, choices)
    return f" (did you mean {prefix}{close}?)" if close else ""


PLUGIN_WITH = {"hydra.launcher": "hydra/launcher=joblib", "hydra.sweeper": "sweep=optuna"}  # e.g. n_jobs
SHOW_KEYS = "`python run.py --cfg job` shows every key; `python run.py --help` the config groups."


def sweepers_having(key: str) -> list[str]:
    """What chooses a sweeper with ``key``: nothing for Hydra's basic sweeper's (every sweep= option but
    sweep=optuna runs it), sweep=optuna for Optuna's."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeperConf

    basic = {field.name for field in dataclasses.fields(BasicSweeperConf)}
    return [] if key in basic else [PLUGIN_WITH["hydra.sweeper"]]


def options_having(group: str, key: str, overrides: Sequence[str] = ()) -> list[str]:
    """The options of ``group`` whose YAML or schema has ``key``: ``["scheduler=onecycle"]`` for pct_start,
    ``["optimizer=adam", "optimizer=adamw"]`` for betas (adamw's YAML names adam's schema); those of the command
    line's ``hydra.searchpath`` among them; ``hydra/launcher=joblib`` for n_jobs."""
    repository = config_repository(overrides)
    if not repository:  # no Hydra ran: the schemas, named as the options that they are named after
        return [f"{group}={name}" for name, schema in GROUP_SCHEMAS.get(group, {}).items()
                if key in schema_keys(schema)]
    return [f"{group}={option}" for option in repository.get_group_options(group)
            if key in option_keys(repository, group, option)]


def option_keys(repository, group: str, option: str, seen: frozenset = frozenset()) -> set[str]:
    """The keys of ``group``'s ``option``: its YAML's, those of the schema that its defaults list names, and those
    of another option of the group that it extends (``defaults: [adam, _self_]``)."""
    try:
        found = repository.load_config(config_path=f"{group}/{option}")
    except Exception:  # one that does not load is said on its own
        found = None
    if found is None or option in seen:
        return set()
    keys = set(found.config.keys() if found.config else ())
    for path in (default.path for default in found.defaults_list or [] if getattr(default, "path", None)):
        name = path.lstrip("/")
        schema = next((kind for kind_name, kind in GROUP_SCHEMAS.get(group, {}).items()
                       if schema_name(group, kind_name) == name), None)
        if schema is not None:
            keys |= schema_keys(schema)
        elif path != "_self_" and (not path.startswith("/") or name.startswith(f"{group}/")):  # one of the group's
            keys |= option_keys(repository, group, name.removeprefix(f"{group}/"), seen | {option})
    return keys


def listed_words(words: Sequence[str], last: str) -> str:
    """``a, b and c`` (``last``: "and" or "or")."""
    return f"{', '.join(words[:-1])} {last} {words[-1]}" if len(words) > 1 else "".join(words)


def swept_options(group: str, overrides: Sequence[str], sweep: bool = True) -> list[str]:
    """The options that a sweep's command line gives ``group`` (``augment=affine,elastic``, ``choice(…)``), or, in
    a ``sweep`` (-m), its study (``sweep=optimizers``: ``optimizer: adam,adamw,sgd``), or none (one option, or a
    sweep Hydra cannot list)."""
    study = next((override_value(o) for o in reversed(overrides) if override_key(o) == STUDY_GROUP), None) \
        if sweep else None
    space = OmegaConf.select(option_config(STUDY_GROUP, study), SEARCH_SPACE, default=None) if study else None
    searched = [f"{group}={space[group]}"] if isinstance(space, DictConfig) and group in space else []
    for override in reversed([*searched, *(o for o in overrides if override_key(o) == group)]):
        try:
            parsed = OverridesParser.create().parse_override(override)
            return list(parsed.sweep_string_iterator()) if parsed.is_sweep_override() else []
        except Exception:  # Hydra's grammar errors, or a sweep it does not list (interval): said on their own
            return []
    return []


def having_it(owners: Sequence[str], last: str = "and") -> str:
    """``optimizer=adam and optimizer=adamw have it``; with ``last="or"``, ``… or … has it``."""
    return f"{listed_words(owners, last)} {'have' if last == 'and' and len(owners) > 1 else 'has'} it"


def schema_keys(schema: type) -> set[str]:
    return {f.name for f in dataclasses.fields(schema)}


def preset_key_of_a_replaced_option(error: ConfigAttributeError | ConfigKeyError, source: str,
                                    overrides: list[str]) -> Optional[str]:
    """``experiment=mnist_best scheduler=none``: the preset sets ``scheduler.pct_start`` for the scheduler it
    chooses, which the command line (or a study's sweep) replaced; None for any other unknown key."""
    full_key, key = str(error.full_key), str(error.key)
    group = full_key[:-len(key)].rstrip(".")
    owners = options_having(group, key, overrides)
    if not source.startswith("experiment/") or not owners:
        return None
    preset = source.replace("/", "=", 1)
    own = chosen_in_defaults(source, group, overrides)
    if own and f"{group}={own}" not in owners:  # the preset's own choice lacks it: the preset is to fix
        return (f"{preset} sets {full_key}, a key that {group}={own}, the preset's own choice, does not have "
                f"({having_it(owners, 'or')}). In {source}.yaml, leave out {full_key} or choose "
                f"{owners[0].split('=')[1]}.")
    chosen = [o for o in overrides if override_key(o) == group and not o.startswith("~")]
    if chosen and replayed_setting(group) == chosen[-1]:  # resume=<run> experiment=…: the run's own choice
        return the_runs_own(chosen[-1], f"and {preset} sets {full_key} ({having_it(owners, 'or')})", preset)
    written = override_value(chosen[-1]) if chosen else ""
    # the swept options that lack it: none of scheduler=onecycle,none
    lacking = [option for option in written.split(",") if written and f"{group}={option}" not in owners]
    instead = (f"{chosen[-1]} draws one that" if "(" in written else f"{group}={lacking[0]}" if lacking
               else f"another {group} (a study may sweep it)")
    return (f"{preset} sets {full_key} ({having_it(owners, 'or')}), and {instead} has no such key. "
            f"Keep the preset's {group}, or make a preset of your own: a copy of configs/{source}.yaml with the "
            f"{group} you want and without {full_key}.")


def config_repository(overrides: Sequence[str]):
    """The configs that the failed command reads, with those of its ``hydra.searchpath`` (a folder of one's own
    presets); None where Hydra had not started."""
    loader = config_loader()
    try:  # (Hydra's own step: its repository knows no hydra.searchpath of the command line's)
        return loader._parse_overrides_and_create_caching_repo(None, list(overrides))[1] if loader else None
    except (HydraException, AttributeError, TypeError):  # unparsable (said on its own), or another Hydra's internals
        return loader.repository


def config_file(source: str, overrides: list[str]):
    """Config file ``source`` (``experiment/mine``) as Hydra loads it, or None."""
    repository = config_repository(overrides)
    try:
        return repository.load_config(source) if repository else None
    except (HydraException, AttributeError, TypeError):
        return None


def study_sweeping(group: str, option: str, overrides: list[str]) -> Optional[str]:
    """``In sweep/mine.yaml: model: lenet5,lenet9``, where the study chosen sweeps ``option`` of ``group``."""
    chosen = [o for o in overrides if override_key(o) == STUDY_GROUP]
    if chosen and chosen[-1].startswith("~"):  # `~sweep`: no study
        return None
    for study in (override_value(chosen[-1]) if chosen else "default").split(","):
        found = config_file(f"{STUDY_GROUP}/{study}", overrides)
        swept = OmegaConf.select(found.config, f"{SEARCH_SPACE}.{group}", default=None) if found else None
        if isinstance(swept, str) and option in swept.replace(" ", "").split(","):
            return f"In {STUDY_GROUP}/{study}.yaml: {group}: {swept}"
    return None


def chosen_in_defaults(source: str, group: str, overrides: list[str]) -> Optional[str]:
    """The option of ``group`` that config file ``source`` (``experiment/mine``) chooses in its defaults list."""
    found = config_file(source, overrides)
    for default in (found.defaults_list or []) if found else []:
        if isinstance(default, GroupDefault) and default.group.lstrip("/") == group and isinstance(default.value, str):
            return default.value
    return None


def preset_without_global_package(error: ConfigAttributeError | ConfigKeyError, source: str) -> Optional[str]:
    """``experiment/mine.yaml`` without its header: Hydra puts its keys under ``experiment.``, an unknown key."""
    group = source.split("/")[0]
    if "/" not in source or str(error.full_key) != group:
        return None
    return without_global_package(source)


def without_global_package(source: str) -> str:
    return (f"{source}.yaml puts its keys under {source.split('/')[0]}: a preset that sets the run's own settings "
            f"(trainer.epochs, optimizer.lr, ...) or chooses its options (override /optimizer: sgd) begins with the "
            f"line `# @package _global_`, as configs/experiment/mnist_best.yaml does.")


def unknown_key(error: ConfigAttributeError | ConfigKeyError, overrides: Sequence[str] = (),
                sweep: bool = False) -> str:
    full_key, key = str(error.full_key), str(error.key)
    group = full_key[:-len(key)].rstrip(".")  # "trainer" of "trainer.epoch"; "" at the top level
    keys = [k for k in error.parent_node.keys() if k != "hydra"] if error.parent_node is not None else []
    target = error.parent_node.get("_target_") if group == "optimizer" and error.parent_node is not None else None
    if target and key in optimizer_arguments(target) and key not in keys:  # an argument its YAML leaves out
        return f"{full_key} is not a setting of this optimizer's YAML: +{full_key}=… passes it to {target}."
    if key == "seed" and error.parent_node is not None and error.parent_node.get("_target_") == GRID_SAMPLER:
        return (f"{full_key} is not a setting of Optuna's grid sampler, and sweep=optuna seeds its sampler: a study "
                f"with the grid sampler is a study file of your own whose defaults choose it, "
                f"`- override /hydra/sweeper/sampler: grid` (docs/usage.md#sweeps).")
    close = did_you_mean(key, keys, f"{group}." if group else "")
    if close:
        return f"{full_key} is not a setting{close}. {SHOW_KEYS}"
    if group == "dataset" and not dataclasses.is_dataclass(error.object_type):  # `dataset.root=` on a bare YAML
        return f"{full_key} is not a setting of this data set, which has no schema: write {DATASET_SCHEMA}."
    owners = options_having(group, key, overrides)
    swept = [f"{group}={option}" for option in swept_options(group, overrides, sweep)]
    if set(owners) & set(swept):  # the sweep's config, checked before its jobs choose their options, has the default's
        lacking = [option for option in swept if option not in owners]
        if lacking:
            return (f"{full_key} is a setting of {listed_words([o for o in swept if o in owners], 'and')} only, "
                    f"not of {listed_words(lacking, 'and')}: sweep those apart.")
        value = next((override_value(o) for o in overrides if override_key(o) == full_key), "…")
        return (f"{full_key} is not a setting of the {group} that a sweep's config has before each job chooses its "
                f"own: ++{full_key}={value} sets it in each job ({having_it(swept)}).")
    if owners:  # momentum of Adam: SGD's
        return f"{full_key} is not a setting of this {group} ({having_it(owners)})."
    if group in PLUGIN_WITH:  # n_jobs of the basic launcher: another plugin's key
        kind = group.split(".")[1]
        having = options_having("hydra/launcher", key, overrides) if group == "hydra.launcher" else sweepers_having(key)
        instead = (f"choose the {kind} that has it first, e.g. {' or '.join(having)}" if having else
                   "it is Hydra's basic sweeper's, which every sweep= option but sweep=optuna runs" if kind == "sweeper"
                   else f"no {kind} of {group.replace('.', '/')} has it")
        return f"{full_key} is not a setting of the {kind} chosen (it has {', '.join(keys)}): {instead}."
    if group and not keys:  # a node of one's own keys, e.g. hydra.job.env_set
        return f"{full_key} is not a setting: {group} has none yet, and +{full_key}=… adds it."
    listing = f"; {group} has {', '.join(keys)}" if group else ""
    return f"{full_key} is not a setting{listing}. {SHOW_KEYS}"


def setting_of_the_resumed_run(error: ConfigAttributeError | ConfigKeyError) -> Optional[str]:
    """``resume=<run> scheduler=none`` where the run set ``scheduler.step_epochs=1``: a setting of the run's own,
    which the option chosen now lacks, told as such (it read as a typo of the command line's)."""
    setting = replayed_setting(str(error.full_key))
    group = str(error.full_key).rsplit(".", 1)[0]
    return the_runs_own(setting, f"which the {group} chosen now does not have", f"the other {group}") if setting \
        else None


def option_config(group: str, option: str) -> Optional[DictConfig]:
    """What the YAML of ``group``'s ``option`` sets itself (not its defaults list's), as the running Hydra finds
    it; None where no Hydra runs, or where it does not load (a plugin's, one of one's own: no answer here)."""
    loader = config_loader()
    try:
        return loader.repository.load_config(config_path=f"{group}/{option}").config if loader else None
    except Exception:
        return None


def expected_value(error: ValidationError) -> str:
    """What the key takes, in words (``an integer``, ``one of [relu, tanh]``), from OmegaConf's refusal."""
    message = str(error.msg).splitlines()[0]
    if message.startswith("Invalid value") and "expected one of" in message:  # an enum's
        return message.split("expected ", 1)[1]
    enum = re.search(r"is not a valid input for <enum '(\w+)'>", message)  # a list or a dict where a choice goes
    if enum:
        import lenet_exp.config as schema

        return f"one of [{', '.join(member.value for member in getattr(schema, enum.group(1), ()))}]"
    return next((what for words, what in EXPECTED if words in message), message)


def wrong_value(error: ValidationError | ConfigTypeError, overrides: list[str], study: Optional[str] = None,
                sweep: bool = False) -> str:
    """``study``: the sweep option whose search space gave the value (see :func:`given_by_a_study`); ``sweep``: a
    sweep's command line (-m), whose fix is one too."""
    expected = expected_value(error)
    key, command = str(error.full_key), "python run.py -m" if sweep else "python run.py"
    section = typing.get_type_hints(Config).get(key)
    if dataclasses.is_dataclass(section):  # trainer=5: "Fix it … `python run.py trainer=...`" said what it refused
        written = next((override_value(o) for o in overrides if override_key(o) == key), error.value)
        return (f"{key}={written}: {key} is a section of settings, not a setting: set its keys, e.g. "
                f"{key}.{dataclasses.fields(section)[0].name}=… (`python run.py --cfg job -p {key}` lists them).")
    item = re.match(r"(.+)\[\d+\]$", key)  # of a list, which the command line sets whole (key[0]= is no override)
    if item:
        key, expected = item.group(1), f"{expected} for each item"
    value = error.value if isinstance(error, ValidationError) else next(  # a dict for a list has none: as written
        (override_value(o) for o in overrides if override_key(o) == key), None)
    # a sweep's setting: of the plugin chosen, else of one that has it (Optuna's sweeper comes with sweep=optuna)
    for prefix, choosers in (("hydra.launcher.", ("hydra/launcher",)), ("hydra.sweeper.", ("hydra/sweeper", "sweep"))):
        if key.startswith(prefix):
            chosen = [override for override in overrides if override_key(override) in choosers]
            setting = key[len(prefix):].split(".")[0]  # submitit of hydra.launcher.submitit.cluster
            having = sweepers_having(setting) if choosers[-1] == "sweep" else options_having(choosers[0], setting,
                                                                                               overrides)
            command = " ".join(["python run.py -m", *(chosen or having)[:1]])
    if study:
        one_value = (f" (a list there is one value: `{key}: {','.join(map(str, value))}` sweeps each)"
                     if isinstance(value, list) else "")
        return str(ConfigError(key, value, expected, fix=f"The study gives it: fix {SEARCH_SPACE}.{key} in the file "
                                                         f"of {study}{one_value}."))
    return str(ConfigError(key, value, expected, command=command))


def given_by_a_study(error: Exception, overrides: list[str]) -> Optional[str]:
    """The option (``sweep=NAME``, else a preset chosen: ``experiment=NAME``) whose search space
    (``hydra.sweeper.params: {seed: [0, 1]}``) made the override that failed, where the command line gave none of
    its key: "fix it on the command line" misled."""
    merging = re.match(r"Error merging override (.+)$", str(error))
    if not merging or any(override_key(o) == override_key(merging.group(1)) for o in overrides):
        return None
    chosen = [o for o in overrides if override_key(o) == STUDY_GROUP] or [
        o for o in overrides if sets_a_preset(override_key(o)) and not o.startswith("~")]
    return chosen[-1].lstrip("+") if chosen else f"{STUDY_GROUP}=default"


def named_on_the_command_line(group: str, option: str, arguments: list[str]) -> bool:
    """Whether ``group=option`` (or a sweep's ``group=a,option``) is among the overrides, as against in a
    config file (where a missing option is no typo of the user's, e.g. a sweeper plugin not installed)."""
    for arg in arguments:
        if override_key(arg) == group and option in override_value(arg).split(","):
            return True
    return False


def unknown_option(error: MissingConfigException, arguments: list[str]) -> Optional[str]:
    group, _, option = str(error.missing_cfg_file or "").rpartition("/")
    if not group or not error.options:
        return None
    if not named_on_the_command_line(group, option, arguments):
        # a preset of one's own (`override /optimizer: adamx`); else no typo of the user's (a sweeper not installed)
        overrides = overrides_in(arguments)
        choices = [(override_key(o), override_value(o)) for o in overrides if not o.startswith("~")]
        source = next((f"{chosen}/{value}" for chosen, value in choices if chosen not in GROUP_SCHEMAS
                       and chosen_in_defaults(f"{chosen}/{value}", group, overrides) == option), None)
        study = study_sweeping(group, option, overrides)
        if study:
            return (f"{study} sweeps {option}, which is not an option of {group}"
                    f"{did_you_mean(option, list(error.options))}: choose among {', '.join(error.options)}.")
        if not source:
            return None
        return (f"In {source}.yaml: {group}: {option} is not an option of {group}"
                f"{did_you_mean(option, list(error.options))}: choose one of {', '.join(error.options)}.")
    return (f"{group}={option} is not an option of {group}{did_you_mean(option, list(error.options))}: choose one of "
            f"{', '.join(error.options)}{missing_search_folders(arguments)}.")


def search_folders(arguments: list[str]) -> list[str]:
    """The folders that the command line's ``hydra.searchpath=[file://mine,other]`` names (a path without a
    scheme is a folder too, as Hydra reads it)."""
    folders = []
    for override in (o for o in overrides_in(arguments) if override_key(o) == "hydra.searchpath"):
        try:
            entries = OverridesParser.create().parse_override(override).value()
        except Exception:  # unparsable: said on its own
            continue
        folders += [entry.removeprefix("file://") for entry in (entries if isinstance(entries, list) else [])
                    if isinstance(entry, str) and (entry.startswith("file://") or "://" not in entry)]
    return folders


def missing_search_folders(arguments: list[str]) -> str:
    """`` (hydra.searchpath names /tmp/mine, which is no folder)``, where the command line's does: an option
    kept there is then "not an option" (Hydra only warns of the folder, with its source line)."""
    missing = [folder for folder in search_folders(arguments) if not os.path.isdir(folder)]
    return f" (hydra.searchpath names {', '.join(missing)}, which is no folder)" if missing else ""


def default_not_found(error: MissingConfigException, arguments: list[str]) -> Optional[str]:
    """A YAML of one's own whose defaults list names a config that is not there ("In 'dataset/kmnist': Could not
    load 'schema/dataset/idx'", then Hydra's search path): a schema by its old path, or any other; configs/ left
    out by --config-path (``defaults: [config]`` in a primary config of one's own)."""
    found = re.match(r"In '([^']+)': Could not load '([^']+)'", str(error))
    if not found:
        return None
    source, missing = found.groups()
    old_schema = re.fullmatch(r"schema/(\w+)/(\w+)", missing)
    if old_schema:
        now = schema_name(*old_schema.groups())
        return (f"In {source}.yaml: its defaults name the schema {missing}, which is /{now} now: write "
                f"`- /{now}@_here_` there.")
    from lenet_exp import CONFIGS

    flags = hydra_flags(arguments)
    if flags is not None and flags.config_path and (Path(CONFIGS) / f"{missing}.yaml").is_file():
        # Hydra reads a relative --config-path from run.py's folder, a relative --config-dir from the current one
        folder = Path(sys.argv[0]).resolve().parent / flags.config_path
        return (f"In {source}.yaml: its defaults name {missing}, a file of configs/, which --config-path "
                f"{flags.config_path} takes the place of: give --config-dir {shlex.quote(str(folder))} instead, "
                f"which adds its folder to configs/.")
    return (f"In {source}.yaml: its defaults name {missing}, which is no file of configs/ (nor of hydra.searchpath): "
            f"fix the name, or compare the file with the others of its folder.")


def group_left_unset(error: ConfigCompositionException) -> Optional[str]:
    """``model=???`` on the command line, or a YAML of one's own that leaves a group unset ("You must specify
    'model', e.g, model=<OPTION>", then the options one to a line)."""
    found = re.match(r"You must specify '([^']+)'", str(error))
    if not found:
        return None
    group = found[1]
    options = [line.strip() for line in str(error).split("Available options:", 1)[-1].splitlines() if line.strip()]
    return (f"{group} is left unset ('???'): choose one of its options, {group}=<option> on the command line or in "
            f"your YAML ({', '.join(options) or 'configs/' + group + '/ has none'}).")


def hydra_flags(arguments: list[str]) -> Optional[argparse.Namespace]:
    """The command line's flags as Hydra's own argument parser reads them (``-cjob``, ``--pack=seed`` too), or None
    where it cannot (Hydra says what is wrong with them)."""
    parser = hydra_utils.get_args_parser()
    parser.exit_on_error = False
    try:
        return parser.parse_known_args(arguments)[0]
    except argparse.ArgumentError:
        return None


def flags_and_overrides(arguments: list[str]) -> tuple[list[str], list[str]]:
    """The command line's flags, each with its value, and its overrides, as Hydra's parser tells them apart:
    a command built of them puts each kind together (argparse refuses overrides on both sides of a flag)."""
    actions = hydra_utils.get_args_parser()._option_string_actions
    flags, overrides, index = [], [], 0
    while index < len(arguments):
        argument, index = arguments[index], index + 1
        if not argument.startswith("-"):
            overrides.append(argument)
            continue
        flags.append(argument)
        action = flag_action(argument, actions)
        takes_one = action is not None and (action.nargs is None or action.nargs == "?")
        maybe = action is not None and action.nargs == "?"  # --info's: where it is no flag, and no override (argparse
        if takes_one and index < len(arguments) and not (maybe and (arguments[index].startswith("-")  # refused the
                                                                    or "=" in arguments[index])):  # `--info seed=1`)
            flags.append(arguments[index])
            index += 1
    return flags, overrides


def flag_action(argument: str, actions: dict) -> Optional[argparse.Action]:
    """The action of a flag as argparse reads it: by its name, or by a long name's abbreviation that is no other's
    (``--pack``); None where the value is attached (``--cfg=job``, ``-cjob``)."""
    if argument in actions:
        return actions[argument]
    abbreviated = {actions[name] for name in actions if name.startswith("--") and name.startswith(argument)}
    return abbreviated.pop() if len(abbreviated) == 1 else None


def flags_then_overrides(arguments: list[str]) -> list[str]:
    """The command line's flags, then its overrides, which argparse takes only together (an override after a flag
    among them was "unrecognized"); a flag whose value may be left out (--info) and was, after them, where it
    would take the first override as its value."""
    flags, overrides = flags_and_overrides(arguments)
    actions = hydra_utils.get_args_parser()._option_string_actions
    bare = [i for i, flag in enumerate(flags) if (action := flag_action(flag, actions)) and action.nargs == "?"
            and (i + 1 == len(flags) or flags[i + 1].startswith("-"))]
    return [flag for i, flag in enumerate(flags) if i not in bare] + overrides + [flags[i] for i in bare]


def config_name_given(arguments: list[str]) -> Optional[str]:
    """The value of ``--config-name NAME`` (``-cn``, ``--config-name=NAME``) among the arguments."""
    flags = hydra_flags(arguments)
    return flags.config_name if flags else None


def config_loader():
    """Hydra's config loader of the command that failed, or None where Hydra had not started."""
    from hydra.core.global_hydra import GlobalHydra

    return GlobalHydra.instance().config_loader() if GlobalHydra.instance().is_initialized() else None


def group_options(group: str) -> list[str]:
    """The options of config group ``group`` that the running Hydra finds (a folder of one's own included); none
    where Hydra had not started."""
    loader = config_loader()
    return loader.get_group_options(group) if loader else []


def not_a_primary_config(error: Exception, arguments: list[str]) -> Optional[str]:
    """``--config-name mnist_best`` ("Cannot find primary config") or ``--config-name experiment/mnist_best``
    (which composes the preset alone and fails at its first override): an option of a group, not a file
    that composes a whole run."""
    name = config_name_given(arguments)
    in_it = str(error).startswith(f"In '{name}': ")
    if not name or not (str(error).startswith("Cannot find primary config") or in_it):
        return None
    group, _, option = name.removesuffix(".yaml").rpartition("/")
    chosen = []
    loader = config_loader()
    if loader:
        groups = [group] if group else [g for g in loader.list_groups("") if g != "hydra"]
        chosen = [f"{g}={option}" for g in groups if option in loader.get_group_options(g)]
    if in_it and not chosen:  # a primary config of one's own, with a mistake in it: told as in any config file
        return None
    return no_run_config(name, chosen[0] if chosen else None)


def no_run_config(name: str, option: Optional[str]) -> str:
    instead = f"; {option} chooses that option" if option else ""
    return (f"--config-name {name} names no config that composes a run: python run.py composes configs/config.yaml, "
            f"and --config-name chooses another such file of configs/ or of --config-dir{instead}.")


def raised_by_hydra(error: BaseException) -> bool:
    """Whether Hydra itself raised ``error``: its checks of its own flags (``--resolve`` without ``--cfg``, ``-sc``
    without ``install=``, a missing ``--experimental-rerun`` file) raise a ValueError of one clear sentence, which
    came with a traceback."""
    import traceback

    frames = traceback.extract_tb(error.__traceback__)
    hydra_package = os.path.dirname(os.path.dirname(hydra_utils.__file__)) + os.sep  # not hydra_plugins' code
    return bool(frames) and frames[-1].filename.startswith(hydra_package)


def hydras_message(error: BaseException) -> str:
    """Hydra's sentence in one line: "available : \\n\\tbash\\n\\tfish" -> "available : bash fish"; of a shell
    left out (``-sc install``), which it called 'None', what to write."""
    said = " ".join(str(error).split())
    shells = re.fullmatch(r"No completion plugin for 'None' found, available : (.+)", said)
    if shells:
        asked = next((arg for arg in sys.argv[1:] if arg in ("install", "uninstall", "query")), "install")
        example = f"eval \"$(python run.py -sc {asked}=bash)\"" if asked != "query" else \
            "-sc query=bash (the shell's completion asks it, once installed)"
        return f"-sc {asked} names no shell: give one of {', '.join(shells.group(1).split())}, e.g. {example}."
    return said


def refuse_misused_flags(arguments: list[str]) -> None:
    """Flags that Hydra takes without a word, and then runs what was not meant: ``-p`` without ``--cfg`` (ignored:
    the default recipe trained), ``--config-name model/lenet5`` or the schema (composed alone: the run got as far
    as a folder of Hydra's own layout, outputs/<date>/<time>/, before it was refused). Read with Hydra's own
    argument parser, which takes ``-cjob``, ``-pseed`` and ``--pack=seed`` too."""
    from hydra.core.config_store import ConfigStore

    from lenet_exp import CONFIGS

    flags = hydra_flags(arguments)
    if flags is None:
        return
    modes = [flag for dest, flag in HYDRA_MODES.items() if getattr(flags, dest)]
    if len(modes) > 1 and (flags.shell_completion or not (flags.help or flags.hydra_help)):  # (help prints alone)
        # Hydra's "Only one of … and --shell_completion", which names no flag it has; `--help -sc install=bash`
        # composed the config with install=bash: "install is not a setting"
        sys.exit(f"Error: {' and '.join(modes)} cannot go together: give one of them.")
    if flags.experimental_rerun:  # Hydra's pickle.load of the file: any code, from a folder anyone may hand over
        folder = Path(flags.experimental_rerun).parent
        run = folder.parent if folder.name == HYDRA_FOLDER else folder
        sys.exit(f"Error: --experimental-rerun loads a pickle, which can run any code the file holds, and a run's "
                 f"folder is data. `python run.py resume={shlex.quote(str(run))}` continues the run from its own "
                 f"overrides (each checked), which {run / HYDRA_FOLDER / 'overrides.yaml'} lists for a new one.")
    mode = next((arg for arg in reversed(flags.overrides) if override_key(arg) == "hydra.mode"), None)
    if flags.multirun and mode and unquote(override_value(mode)).upper() == "RUN":  # Hydra warned, then swept
        sys.exit(f"Error: {multirun_flag(arguments) or '-m'} sweeps, and {mode} runs once: give one of them.")
    query = next((arg for arg in flags.overrides if arg.startswith("query=")), None)
    if flags.shell_completion and query and "COMP_LINE" not in os.environ:  # Hydra's KeyError, a traceback
        shell = query.split("=", 1)[1]
        sys.exit(f"Error: -sc {query} answers the shell, which passes the command line being completed in COMP_LINE. "
                 f"Install the completion instead: eval \"$(python run.py -sc install={shell})\".")
    if flags.package and not flags.cfg:
        sys.exit("Error: --package (-p) chooses the part of the config that --cfg prints: add --cfg job, e.g. "
                 "python run.py --cfg job -p optimizer.")
    if flags.cfg == "job" and flags.package and flags.package.split(".")[0] == "hydra":  # "package … not found"
        sys.exit(f"Error: --cfg job prints the run's config, without Hydra's: --cfg hydra -p {flags.package} prints "
                 f"{flags.package}.")
    refuse_a_runs_record_as_configs(flags, arguments)
    refuse_a_config_path_without_configs(flags)
    overrides = flags_and_overrides(arguments)[1]
    removing = next((arg for arg in overrides if override_key(arg) in OWN_CALLBACKS
                     and (arg.startswith("~") or override_value(arg).lower() in ("null", "none"))), None)
    if removing:  # `-m seed=0,1` then ran 12 jobs (the seeds times the default study), unchecked and unsummarised
        sys.exit(f"Error: {removing} removes callbacks of lenet_exp's, which check a run or a sweep before anything is "
                 f"written and summarise a sweep. Keep them: hydra.callbacks.sweep_summary.plot=false, "
                 f"tensorboard=false or fail_on_error=false leaves out what you do not want.")
    sweeper = next((arg for arg in overrides if override_key(arg) == "hydra/sweeper"
                    and override_value(arg) == "optuna"), None)
    if sweeper:  # config.yaml names lenet_exp's basic sweeper over it: "BasicSweeper… unexpected keyword 'sampler'"
        sys.exit(f"Error: {sweeper}: Optuna's sweeper comes with its study and lenet_exp's ending (the summary on a "
                 f"stop): choose it with {STUDY_GROUP}=optuna, or a study file of one's own in configs/sweep/ "
                 f"({STUDY_GROUP}=NAME).")
    runs_own = [arg for arg in overrides if not sets_hydra(override_key(arg))]
    if flags.hydra_help and runs_own:  # composed with Hydra's config alone: "Could not override 'seed'", a traceback
        sys.exit(f"Error: --hydra-help prints Hydra's own help, which no setting of the run changes: drop "
                 f"{' '.join(runs_own)}, or give --help for the run's.")
    added = next((arg for arg in overrides if arg.startswith("+") and override_key(arg).startswith(SEARCH_SPACE)),
                 None)
    if added:  # Hydra merges it into the study's space (+hydra.sweeper.params.seed=… swept seeds x lr x batch size)
        sys.exit(f"Error: {search_space_key_by_key(added)}")
    name = flags.config_name
    if not name:
        return
    group, _, option = name.removesuffix(".yaml").rpartition("/")
    if group and (Path(CONFIGS) / group).is_dir():
        sys.exit(f"Error: {no_run_config(name, f'{group}={option}')}")
    if not group and f"{option}.yaml" in ConfigStore.instance().repo and not option.startswith("_"):  # the schema's
        sys.exit(f"Error: {no_run_config(name, None)}")
    own = next((path for path in (Path(folder) / f"{name.removesuffix('.yaml')}.yaml"
                                  for folder in (flags.config_dir, CONFIGS) if folder) if path.is_file()), None)
    if own and not composes_a_run(own):  # refused once composed, in a folder of Hydra's own layout
        sys.exit(f"Error: {NOT_A_RUNS_CONFIG} {own}'s defaults do not name config.")


def composes_a_run(path: Path) -> bool:
    """Whether a primary config file's defaults bring in the run's schema: ``config`` (configs/config.yaml), or
    the schema itself (a copy of config.yaml); True where the file cannot be read (Hydra says what is wrong)."""
    try:
        defaults = (yaml.safe_load(path.read_text()) or {}).get("defaults", [])
        named = {str(entry).lstrip("/").split("@")[0] for entry in defaults if isinstance(entry, str)}
    except Exception:
        return True
    return bool(named & {"config", ROOT_SCHEMA})


def refuse_a_config_path_without_configs(flags: argparse.Namespace) -> None:
    """``--config-path`` to no folder, or to one without its primary config: Hydra's lines ("Primary config
    directory not found", or "Cannot find primary config 'config'" and its search path), no Error line."""
    from lenet_exp import CONFIGS

    path = flags.config_path
    if path and path.startswith("file://"):  # Hydra reads it as a folder named file:
        sys.exit(f"Error: --config-path takes a folder, not a URL: --config-path {shlex.quote(path[len('file://'):])}.")
    if not path or "://" in path:  # pkg://…, a package's: Hydra looks it up
        return
    folder = CONFIGS.parent / Path(path).expanduser()  # relative: to run.py's folder, as Hydra takes it
    name = (flags.config_name or "config").removesuffix(".yaml")
    instead = f"--config-dir {shlex.quote(path)} adds a folder of options of your own to configs/"
    if not folder.is_dir():
        sys.exit(f"Error: --config-path {path} is no folder: give the folder of a primary config ({name}.yaml); a "
                 f"relative one is read from run.py's folder, {CONFIGS.parent}.")
    if not (folder / f"{name}.yaml").is_file() and not (flags.config_dir and (
            Path(flags.config_dir).expanduser() / f"{name}.yaml").is_file()):
        sys.exit(f"Error: --config-path {path} holds no {name}.yaml, the primary config that it gives in the place of "
                 f"configs/config.yaml: {instead}.")


def refuse_a_runs_record_as_configs(flags: argparse.Namespace, arguments: list[str]) -> None:
    """``--config-path <run>/.hydra --config-name config``, Hydra's way to repeat a run: the config.yaml there is
    Hydra's record of the config it composed, without the schema that checks its values (the run failed on
    it, in a folder of Hydra's own logging). The run's overrides, given again, compose the same run."""
    if not (flags.config_path or flags.config_dir):  # the usual command: nothing to import or read
        return
    from lenet_exp import CONFIGS
    from lenet_exp.files import SAVED_HYDRA, SAVED_OVERRIDES, SWEEP_RECORD
    from lenet_exp.overrides import recorded_overrides
    from lenet_exp.resume import configs_to_name, resume_command
    from lenet_exp.sweeps.records import load_sweep_config

    for flag, folder in (("--config-path", flags.config_path), ("--config-dir", flags.config_dir)):
        # --config-path may be relative to run.py's folder, as Hydra takes it, --config-dir to the current one
        found = [Path(folder).expanduser(), CONFIGS.parent / Path(folder).expanduser()] if folder else []
        sweep_dir = next((path for path in found if OmegaConf.select(load_sweep_config(path) or OmegaConf.create(),
                                                                     "hydra.sweep.dir", default=None)), None)
        if sweep_dir is not None:  # --config-name multirun: the sweep's record, of every job's config at once
            sys.exit(f"Error: {flag} {folder} is a sweep's folder, whose {SWEEP_RECORD} is Hydra's record of the "
                     f"sweep: no config to run. Continue the sweep with the command that made it and "
                     f"hydra.sweep.dir={shlex.quote(str(sweep_dir))}; `python -m lenet_exp.sweeps "
                     f"{shlex.quote(str(sweep_dir))}` summarises it.")
        record = next((path for path in found if path.name == HYDRA_FOLDER
                       and (path.parent / SAVED_OVERRIDES).is_file() and (path.parent / SAVED_HYDRA).is_file()), None)
        if record is None:
            continue
        run_dir, given = record.parent, overrides_in(arguments)
        keys_given = {override_key(override) for override in given}  # the run's own, unless this command sets them
        sweep = multirun_flag(arguments)  # -m (hydra.mode=MULTIRUN is among the overrides given)
        again = [*([sweep] if sweep in MULTIRUN_FLAGS else []), *configs_to_name(run_dir),
                 *(o for o in recorded_overrides(run_dir) if override_key(o) not in keys_given), *given]
        sys.exit(f"Error: {flag} {folder} is a run's record, which Hydra wrote of the config it composed: no config to "
                 f"run. Run the run's settings again, with this command's instead where it sets them: `python run.py "
                 f"{' '.join(map(shlex.quote, again))}`; or continue the run: `{resume_command(run_dir)}`.")


RUN_SETTINGS = [name for name in TOP_LEVEL if name not in GROUP_SCHEMAS]  # trainer, seed, ...


def overrides_in(arguments: list[str]) -> list[str]:
    """The overrides among a command line's arguments: its flags and their values left out."""
    return flags_and_overrides(arguments)[1]


def group_given_a_value(error: Exception, overrides: list[str]) -> Optional[str]:
    """``model=null``, ``model=1`` (or ``experiment=null``): Hydra's ValueError "Config group override must be a
    string or a list. Got NoneType" (int, float, bool) came with a traceback. A group takes one of its options;
    ``~group`` leaves out one that a run can do without (a preset, a study), not one of the run's own (model,
    dataset, ...)."""
    if not str(error).startswith("Config group override must be a string or a list. Got "):
        return None
    for arg in overrides:
        try:
            override = OverridesParser.create().parse_override(arg)
        except HydraException:  # an unreadable one is no group's value
            continue
        if override.is_delete():  # Hydra reports none so
            continue
        group = override.key_or_group
        try:  # a sweep's values one by one (model=lenet5,1)
            values = list(override.sweep_iterator()) if override.is_sweep_override() else [override.value()]
        except HydraException:  # an interval: no values to list
            continue
        options = group_options(group)
        value = next((v for v in values if not isinstance(v, (str, list, dict))), "")
        if (options or group in GROUP_SCHEMAS) and not isinstance(value, (str, list, dict)):
            written = ("null" if value is None else override_value(arg) if not override.is_sweep_override()
                       else str(value).lower() if isinstance(value, bool) else str(value))  # model=1e-3: as typed
            choose = f"choose one of {', '.join(options)}" if options else "choose one"
            leave_out = f", or write ~{group} to leave it out" if group not in GROUP_SCHEMAS else ""
            return f"{arg}: a config group takes one of its options, not {written}: {choose}{leave_out}."
    return None


def hydra_as_a_whole(overrides: list[str]) -> Optional[str]:
    """``hydra=…`` (or ``~hydra``): Hydra took it for a config group and failed in its own words, or with a
    traceback."""
    given = next((arg for arg in overrides if override_key(arg) == "hydra"), None)
    if given is None:
        return None
    return (f"{given} names Hydra's own config as a whole: set one of its keys instead, e.g. "
            f"hydra.run.dir=outputs/runs/mine (`python run.py --cfg hydra` shows them).")


def keyless(overrides: list[str]) -> Optional[str]:
    """``=3``, ``+=1`` or a bare ``~``: an override without a key, which Hydra reports as something else."""
    given = next((arg for arg in overrides if not override_key(arg)
                  and (arg.startswith("~") or "=" in arg)), None)
    if given is None:
        return None
    if given.startswith("~"):
        return f"{given} has no key: write ~key to leave out an optional group, e.g. ~experiment."
    return f"{given} has no key: write key=value, e.g. trainer.epochs=3."


def unknown_deletion(error: Exception, overrides: Sequence[str] = (), sweep: bool = False) -> Optional[str]:
    """``~foo`` or ``~trainer.epochz``: Hydra's "Could not delete from config. 'foo' does not exist." in two
    lines, which it also says of a setting that is null (``~trainer.limit_batches``)."""
    found = re.match(r"Could not delete from config\. '(.+)' does not exist\.", str(error))
    if not found:
        return None
    key = found.group(1)
    section, _, name = key.rpartition(".")
    known = setting_names(section)
    if in_every_run(key):
        return every_run_has(f"~{key}", key)  # (a null setting: "does not exist" to Hydra)
    owners = options_having(section, name, overrides) if section in GROUP_SCHEMAS else []
    swept = [f"{section}={option}" for option in swept_options(section, overrides, sweep)]
    if set(owners) & set(swept):  # optimizer=sgd,adam: sgd's jobs would delete it, adam's have none
        lacking = [option for option in swept if option not in owners]
        return (f"~{key}: {key} is a setting of {listed_words([o for o in swept if o in owners], 'and')} only, "
                f"not of {listed_words(lacking, 'and')}: sweep those apart.")
    if owners:  # momentum of Adam: SGD's, and nothing to leave out
        return f"~{key}: {key} is not a setting of this {section} ({having_it(owners)}), nothing to delete."
    loader = config_loader()
    optional = [g for g in (loader.list_groups("") if loader else []) if g not in (*GROUP_SCHEMAS, "hydra")]
    close = did_you_mean(name, known, f"~{section}.") if section else did_you_mean(key, optional, "~")
    return f"~{key} deletes {key}, which is not a setting{close}. {SHOW_KEYS}"


def deletion_of_another_value(error: Exception, overrides: Sequence[str] = ()) -> Optional[str]:
    """``~optimizer.lr=0.5`` where lr is 0.001, ``~experiment=fashion_best`` where none or another is chosen: Hydra's
    "Could not delete …" names no fix (``~key=value`` deletes only that value)."""
    of_a_setting = re.match(r"Could not delete from config\. The value of '(.+)' is (.*) and not (.*)\.$", str(error))
    of_a_group = re.match(r"Could not delete '([^=]+)=(.*)'\. No match in the defaults list", str(error))
    if not (of_a_setting or of_a_group):
        return None
    key, value = of_a_setting.group(1, 3) if of_a_setting else of_a_group.group(1, 2)
    given = next((o for o in overrides if o.startswith(f"~{key}=")), f"~{key}={value}")  # a sweep's, as written
    if of_a_setting and in_every_run(key):
        return every_run_has(given, key)
    now = f"it is {of_a_setting.group(2)}" if of_a_setting else "this command chooses no such option"
    return (f"{given} deletes {key} only where it is {value}, and {now}: write ~{key} to delete it whatever it is, "
            f"or leave the override out.")


def in_every_run(key: str) -> bool:
    """Whether ``key`` is a setting of the schema that every run has (``trainer.epochs``, ``optimizer.lr``)."""
    section, _, name = key.rpartition(".")
    return name in setting_names(section) and all(name in schema_keys(schema)
                                                  for schema in GROUP_SCHEMAS.get(section, {}).values())


def setting_names(section: str) -> list[str]:
    """The keys of a section of the schema (``trainer``, or a group's, from every option of it); of the
    top level for ""."""
    if not section:
        return list(TOP_LEVEL)
    schemas = GROUP_SCHEMAS.get(section, {}).values() or [typing.get_type_hints(Config).get(section)]
    return sorted({key for schema in schemas if dataclasses.is_dataclass(schema) for key in schema_keys(schema)})


def deleted_setting(overrides: list[str]) -> Optional[str]:
    """``~seed``, ``~trainer`` or ``~model``: the run then fails where it reads what was deleted (a traceback,
    after its folder was made), or Hydra reports a null setting as one that "does not exist". Every run has
    these; ``~`` can leave out a preset or a study only. (``~trainer.epochs`` is refused by the schema:
    :func:`deleting_a_setting`.)"""
    for override in overrides:
        if not override.startswith("~"):
            continue
        key = override_key(override)
        if key in GROUP_SCHEMAS:
            options = group_options(key)
            choose = f" ({', '.join(options)})" if options else ""
            return (f"{override} leaves the run with no {key} option, which every run needs: choose one of its "
                    f"options{choose}.")
        if key in RUN_SETTINGS:
            return every_run_has(override, key)
    return None


def every_run_has(deletion: str, key: str) -> str:
    """The message for ``~key`` of a setting of the schema, which every run has."""
    setting = f"{key}.epochs" if key == "trainer" else key  # a section: one of its keys
    return (f"{deletion} deletes {key}, which every run has: set it instead ({setting}=…; `--cfg job` shows its "
            f"value).")


def deleting_a_setting(error: Exception) -> Optional[str]:
    """``~trainer.epochs``: a typed config keeps every key of its schema ("does not support deletion"), and
    one that an override added to it (``+optimizer.amsgrad=true``, or the resumed run's own)."""
    found = re.match(r"Error merging override ~(\S+)$", str(error))
    cause = error.__cause__ or error.__context__
    if not found or "does not support deletion" not in str(cause):
        return None
    deletion, key = f"~{found.group(1)}", found.group(1).split("=")[0]
    setting = replayed_setting(key)
    if setting:
        return the_runs_own(setting, f"which {deletion} deletes", "the config without it")
    section, _, name = key.rpartition(".")
    if name not in setting_names(section):
        return f"{deletion} deletes {key}, which an override of this command adds: leave out both."
    return every_run_has(deletion, key)


def merged_options(overrides: list[str]) -> Optional[str]:
    """``model=[lenet5,lenet5_classic]``: Hydra merges a list of a group's options into one config, neither of
    them (the later one's values over the earlier's), and trained it without a word; options of two schemas
    (``optimizer=[adam,sgd]``) failed in several lines. What was meant is one of them, or a sweep over both."""
    for override in OverridesParser.create().parse_overrides(overrides):
        group, value = override.key_or_group, override.value()
        if group in GROUP_SCHEMAS and override.value_type == ValueType.ELEMENT and isinstance(value, list):
            return (f"{override.input_line} merges those options into one {group}, which is neither (the later "
                    f"one's values over the earlier's). Choose one, or sweep over them: python run.py -m "
                    f"{group}={','.join(map(str, value))}.")
    return None


def swept_twice(overrides: list[str]) -> Optional[str]:
    """``-m 'optimizer.lr=range(1,12)' optimizer.lr=1e-4,3e-4``: Hydra sweeps the last of a key's overrides
    alone, without a word of the others."""
    seen = {}
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.get_key_element().lstrip("+")  # `++k=3` after `k=1,2`: both applied, the jobs twice each
        if key in seen and (override.is_sweep_override() or seen[key].is_sweep_override()):
            return (f"{key} is given twice ({seen[key].input_line} and {override.input_line}), which a sweep does not "
                    f"combine: give it once, with every value, e.g. python run.py -m {key}=<v1>,<v2>,….")
        seen[key] = override
    return None


def glob_of_a_setting(overrides: list[str], repository) -> Optional[str]:
    """``optimizer.lr=glob(*)``: glob() chooses among a config group's options (those of ``repository``, the
    command's configs), and of a setting Hydra made no job (the sweep ended "No job directories found")."""
    from hydra.core.override_parser.types import ValueType

    globs = [override for override in OverridesParser.create().parse_overrides(overrides)
             if override.value_type == ValueType.GLOB_CHOICE_SWEEP]
    for override in globs if repository else ():
        key = override.get_key_element().lstrip("+")
        if not repository.group_exists(key):
            return (f"{override.input_line}: glob() chooses among the options of a config group (model=glob(*)), and "
                    f"{key} is none: list its values instead, e.g. {key}=<v1>,<v2> or {key}='range(…)'.")
    return None


def a_value_twice(overrides: list[str]) -> Optional[str]:
    """``seed=0,1,1`` or ``optimizer.lr=1e-3,0.001``: Hydra trains the same job twice, in two folders, whose
    seeds the summary counts twice."""
    for override in OverridesParser.create().parse_overrides(overrides):
        try:
            values = list(override.sweep_iterator()) if override.is_discrete_sweep() else []
        except Exception:  # glob(), which only the config loader lists
            continue
        seen = []
        for value in (getattr(value, "text", value) for value in values):  # 'a' and a: one string
            if value in seen:
                return (f"{override.input_line} gives {value!r} twice, a job the sweep would train twice (in two "
                        f"folders, counted twice by its summary): give each value once.")
            seen.append(value)
    return None


def number_as_bool(overrides: list[str], config: DictConfig) -> Optional[str]:
    """``trainer.deterministic=2``: omegaconf turns any integer into a bool (2 is true) without a word, where
    a 2 was meant for another setting, or a typo. 0 and 1 stay the bools they usually spell."""
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.key_or_group
        parent_key, _, name = key.rpartition(".")
        parent = OmegaConf.select(config, parent_key, default=None) if parent_key else config
        if not (OmegaConf.is_dict(parent) and name in parent and isinstance(parent._get_node(name), BooleanNode)):
            continue
        values = list(override.sweep_iterator()) if override.is_discrete_sweep() else [override.value()]
        number = next((v for v in values if isinstance(v, int) and not isinstance(v, bool) and v not in (0, 1)),
                      None)
        if number is not None:
            return str(ConfigError(key, number, "true or false"))
    return None


def merged_options_in(overrides: list[str]) -> Optional[str]:
    """:func:`merged_options`, or None where an override is unreadable (which is reported on its own)."""
    try:
        return merged_options([arg for arg in overrides if "=" in arg])
    except HydraException:
        return None


def unreadable_override(error: OverrideParseException) -> str:
    lines = [line for line in str(error).splitlines() if not line.startswith(("Error parsing override", "See http"))]
    reason = "no '=' and value" if "missing EQUAL" in str(error) else (lines[0] if lines else "a syntax error")
    return (f"{error.override} cannot be read as an override ({reason}). Write key=value, and quote a value with "
            f"spaces, commas or brackets of its own ('key=\"a, b\"'); the grammar: {GRAMMAR}")


def misused_override(error: ConfigCompositionException, overrides: list[str]) -> Optional[str]:
    """A comma list without -m ("Ambiguous value for argument 'optimizer.lr=1,2'"), or a + before a key or
    group that the config has already ("Multiple values for experiment", "Could not append to config"), on
    the command line (``overrides``) or in a preset's defaults list."""
    text = str(error)
    if text.startswith("Ambiguous value for argument '"):
        override = text.split("'")[1]
        key = override_key(override)
        if group_options(key):  # a list of a group's options merges them: merged_options
            return f"{override} gives several options of {key}: add -m to sweep over them, or choose one."
        if key in TASK_PATH_KEYS:  # one path each: a list is no value of theirs
            return (f"{override} gives several paths: add -m to run once for each (-m task=predict "
                    f"image=a.png,b.png predicts each image), or quote a path with a comma: '{key}=\"…\"'.")
        return (f"{override} gives several values: add -m to sweep over them, write a list as {key}=[…], or quote "
                f"a string with a comma: '{key}=\"…\"'.")
    if text.startswith("Multiple values for ") and "override " in text:  # 'override experiment: mnist_best'
        group, option = text.rsplit("override ", 1)[1].rstrip("'").split(": ", 1)
        if not any(override.startswith(f"+{group}=") for override in overrides):  # a preset's defaults list
            return (f"A defaults list chooses {group}: {option}, which the config has chosen already: in a preset of "
                    f"your own, write `- override /{group}: {option}` there.")
        return f"+{group}={option} adds {group}, which the config has already: write {group}={option}, without the +."
    fixed = re.search(r"remove \+ prefix: '([^']*)'", text)
    if text.startswith("Could not append to config") and fixed:
        key = fixed.group(1).split("=")[0]
        swept = next((o for o in overrides if override_key(o) == key.split(".")[0] and re.search(r"[,(]", o)), None)
        if swept:  # optimizer=sgd,adam +optimizer.momentum=0.9: sgd's YAML has it, adam's not
            return (f"+{fixed.group(1)} adds {key}, which an option of {swept} has already: sweep the options "
                    f"that take it apart from the others (e.g. -m {swept.split('=')[0]}=<those> "
                    f"{fixed.group(1)}), or write ++{fixed.group(1)} to set it in every option (the jobs of "
                    f"one that takes no such key then fail).")
        return (f"+{fixed.group(1)} adds {key}, which the config has already: write {fixed.group(1)}, without the +.")
    return None


def hydra_setting_swept(error: ConfigCompositionException) -> Optional[str]:
    """``hydra.sweeper.n_trials=10,20``: Hydra's own settings take one value ("Sweeping over Hydra's
    configuration is not supported"); a search space written there is handled by :func:`search_space_written`."""
    found = re.match(r"Sweeping over Hydra's configuration is not supported : '(.*)'$", str(error))
    if not found:
        return None
    override = found.group(1)
    key = override_key(override)
    quoted = f": a path with a comma is quoted, '{key}=\"…\"'" if key in OUTPUT_KEYS else ""
    return (f"{override} gives several values to a setting of Hydra itself, which a sweep cannot vary: give it "
            f"one{quoted}.")


def search_space_written(error: Exception, arguments: list[str]) -> Optional[str]:
    """``hydra.sweeper.params.optimizer.lr=interval(…)``, or ``hydra.sweeper.params={…}``: Hydra reads the
    dots of a search space's key as nesting, refuses a sweep over its own settings and cannot merge a
    whole new search space into Optuna's, so each fails with a message about something else. A key's
    space is an override of its own on the command line, where the sweeper reads it too."""
    cause = error.__cause__ or error.__context__
    if SEARCH_SPACE not in f"{error} {getattr(cause, 'full_key', '')}":
        return None
    written = next((arg for arg in arguments if override_key(arg).startswith(SEARCH_SPACE)), None)
    return None if written is None else search_space_key_by_key(written)


def search_space_key_by_key(written: str) -> str:
    """What to write instead of ``written``, an override of the search space (``hydra.sweeper.params…``)."""
    key, value = override_key(written)[len(SEARCH_SPACE) + 1:], override_value(written)
    if written.startswith("~"):  # Hydra cannot delete from a sweeper's config
        instead = (f"one value, {key}=…, takes the place of the study's space for {key}" if key else
                   "~sweep leaves the study out, and the command line's swept values alone make the sweep")
        return f"{written}: the study's search space is the sweep option's (sweep=NAME): {instead}."
    instead = (f"'{key}={unquote(value)}' (with -m it takes the place of the study's space for {key})" if key else
               "'optimizer.lr=interval(1e-4,1e-2)' with sweep=optuna, seed=0,1,2 with the basic sweeper")
    return (f"{written}: a search space goes on the command line key by key, as an override of its own: "
            f"{instead}. A study of one's own is a file in configs/sweep/ (sweep=NAME).")


def broken_yaml(error: BaseException) -> Optional[str]:
    """A config file of one's own (a new option's YAML) that is no YAML: where, and what the parser says."""
    while error is not None and not isinstance(error, yaml.MarkedYAMLError):
        error = error.__cause__ or error.__context__
    if error is None or error.problem_mark is None:
        return None
    mark = error.problem_mark
    return (f"{mark.name}, line {mark.line + 1}, column {mark.column + 1}: {error.problem} (the file is not valid "
            f"YAML; compare it with the other files of its folder).")


def swept_without_multirun(text: str) -> Optional[str]:
    """The overrides that Hydra's error ``text`` says sweep values without --multirun, or None."""
    swept = re.match(r"Sweep parameters '(.*)' requires --multirun", text)
    return swept.group(1) if swept else None


def several_values(text: str) -> Optional[str]:
    """The override that Hydra's error ``text`` says gives several values without --multirun (a comma list:
    "Ambiguous value for argument …", or ``range()``), or None."""
    ambiguous = re.match(r"Ambiguous value for argument '(.*)'\n", text)
    return ambiguous.group(1) if ambiguous else swept_without_multirun(text)


def hydra_said_plainly(text: str) -> Optional[str]:
    """Hydra's own one-line errors about the command line, said with what to type instead."""
    swept = swept_without_multirun(text)
    if swept:  # seed=range(0,3) without -m: a comma list gets the same answer (misused_override)
        return f"{swept} gives several values: add -m to sweep over them."
    missing = re.match(r"Additional config directory '(.*)' not found", text)
    if missing:
        return f"--config-dir {missing.group(1)}: no such folder. {GIVE_A_CONFIG_FOLDER}"
    # `override /optimizer: sgd` of a preset without its header: Hydra looks for optimizer under experiment.
    overridden_inside = re.match(r"In '((\w+)/[^']+)': Could not override '\w+@\2\.", text)
    if overridden_inside:
        return without_global_package(overridden_inside.group(1))
    # a callback (or another object of hydra's config) of one's own whose class cannot be found, or made
    unfound = re.match(r"Error locating target '([^']+)'.*\nfull_key: (\S+)", text, re.S)
    if unfound:
        return (f"{unfound.group(2)}._target_={unfound.group(1)} cannot be imported: give the dotted path of a class "
                f"that Python can import (its module on PYTHONPATH: PYTHONPATH=. for one in the current folder).")
    refused = re.match(r"Error in call to target '([^']+)':\n(.+)\nfull_key: (\S+)", text, re.S)
    if refused:
        return f"{refused.group(3)}: {refused.group(1)} refused its settings: {refused.group(2).strip()}."
    not_a_list = re.match(r"hydra.searchpath must be a list of strings. Got: (.*)", text)
    if not_a_list:
        written = not_a_list.group(1)
        return f"hydra.searchpath={written} is not a list: write 'hydra.searchpath=[{written}]'."
    return None


def item_not_in_a_list(error: Exception, overrides: list[str]) -> Optional[str]:
    """``model.conv_channels.x=1`` or ``optimizer.betas.5=0.1``: an item that the list does not have, which
    was a traceback (OmegaConf's ValueError) or Hydra's message of several lines."""
    cause = error.__cause__ or error.__context__
    merging = re.match(r"Error merging override (\S+)$", str(error))
    not_an_int = re.match(r"invalid literal for int\(\) with base 10: '(.*)'", str(error))
    if merging and re.match(r"Index '.*' \(str\) is not an int|list index out of range", str(cause)):
        override = merging.group(1)
    elif isinstance(error, ValueError) and not_an_int:
        override = next((o for o in overrides if override_key(o).endswith(f".{not_an_int.group(1)}")), None)
    else:
        return None
    if override is None:
        return None
    listed = override_key(override).rpartition(".")[0]
    return (f"{override} names an item that the list {listed} does not have: give the whole list instead, e.g. "
            f"{listed}=[…] (`python run.py --cfg job` shows its value).")


def typo_message(error: Exception, arguments: Optional[list[str]] = None) -> Optional[str]:
    """The message for a typo in the overrides (``arguments``, or else the command line's) or in a config
    file, or None for any other error."""
    arguments = sys.argv[1:] if arguments is None else arguments
    cause = error.__cause__ or error.__context__  # Hydra raises a config file's error without "from"
    in_file = re.match(r"In '([^']+)': ", str(error))  # "In 'dataset/kmnist': ConfigKeyError raised while …"
    where = f"In {in_file.group(1)}.yaml: " if in_file else ""
    # mistakes that Hydra reports as something else: told by the error's text and the arguments, whatever its type
    overrides, sweep = overrides_in(arguments), bool(multirun_flag(arguments))
    told = (keyless(overrides) or hydra_as_a_whole(overrides) or broken_yaml(error)
            or search_space_written(error, arguments) or not_a_primary_config(error, arguments)
            or group_given_a_value(error, overrides) or deleted_setting(overrides) or deleting_a_setting(error)
            or unknown_deletion(error, overrides, sweep) or deletion_of_another_value(error, overrides)
            or item_not_in_a_list(error, overrides)
            or (isinstance(error, ConfigCompositionException) and merged_options_in(overrides)))
    if told:
        return told
    said = hydra_said_plainly(str(error))
    if said:
        return said
    if isinstance(error, OverrideParseException):
        return unreadable_override(error)
    if isinstance(error, ConfigCompositionException) and isinstance(cause, (ConfigAttributeError, ConfigKeyError)):
        if not getattr(cause, "full_key", None):
            return None
        return setting_of_the_resumed_run(cause) or (in_file and (
            preset_key_of_a_replaced_option(cause, in_file.group(1), overrides)
            or preset_without_global_package(cause, in_file.group(1)))) or where + unknown_key(cause, overrides, sweep)
    if isinstance(error, ConfigCompositionException) and isinstance(cause, (ValidationError, ConfigTypeError)):
        return where + wrong_value(cause, overrides, given_by_a_study(error, overrides), sweep) \
            if getattr(cause, "full_key", None) else None
    if isinstance(error, MissingConfigException):
        return unknown_option(error, arguments) or default_not_found(error, arguments)
    if isinstance(error, ConfigCompositionException) and cause is None:
        return misused_override(error, overrides) or hydra_setting_swept(error) or group_left_unset(error)
    if isinstance(error, InterpolationResolutionError):  # --cfg job --resolve (a run's: config.validate)
        written = [override_key(override) for override in overrides if "${" in override.split("=", 1)[-1]]
        what = error.full_key or (written[0] if len(written) == 1 else "a ${…} of the config")
        return (f"{what} cannot be resolved ({str(error).splitlines()[0]}): give it a value, or a ${{…}} that names "
                f"a key of the config (e.g. ${{seed}}).")
    return None


def report_typos_in_one_line() -> None:
    """Wrap Hydra's error reporter (where @hydra.main runs a command) so that typos get one line."""
    # a search path folder that does not exist: said in a line of ours (callbacks.warn_of_unread_configs)
    warnings.filterwarnings("ignore", message=r"provider=.*, path=.* is not available\.")
    hydra_report: Callable[[Any], Any] = hydra_utils.run_and_report
    if getattr(hydra_report, "reports_typos", False):
        return

    def run_and_report(func: Callable[[], Any]) -> Any:
        try:
            return func()
        except Exception as error:
            full = full_errors_wanted()
            message = None if full else no_space_message(error) or typo_message(error) or logging_refused(error) or (
                hydras_message(error) if isinstance(error, ValueError) and raised_by_hydra(error) else None)
            if message is None:
                return hydra_report(lambda: _raise(error))
            sys.exit(f"Error: {message}")

    run_and_report.reports_typos = True
    hydra_utils.run_and_report = run_and_report
    # --help and --info compose the config too, outside Hydra's reporter: a typo there was a traceback
    from hydra._internal.hydra import Hydra

    Hydra.show_info = composed_before_its_headers(Hydra.show_info)
    for name in ("app_help", "show_info"):  # (--hydra-help composes Hydra's config alone: no typo of ours)
        def reported(self, *args, _shown=getattr(Hydra, name), **kwargs):
            return run_and_report(lambda: _shown(self, *args, **kwargs))
        setattr(Hydra, name, reported)
    Hydra.show_cfg = package_said_plainly(Hydra.show_cfg)


def composed_before_its_headers(show_info: Callable) -> Callable:
    """``--info config optimizer=bogus`` printed the config search path's header, then the error: what composes the
    config (all but ``--info plugins``) composes it first, so that an error is all it says."""
    def shown(self, info, config_name, overrides, run_mode=None, **kwargs):
        from hydra.types import RunMode

        run_mode = run_mode or RunMode.RUN
        if info != "plugins":
            self.compose_config(config_name, overrides, run_mode=run_mode, with_log_configuration=False)
        return show_info(self, info, config_name, overrides, run_mode, **kwargs)
    return shown


def package_said_plainly(show_cfg: Callable) -> Callable:
    """``--cfg job -p trainer.epoch``: Hydra's bare "package 'trainer.epoch' not found in config", said of a setting
    that is null too (``-p ckpt``). Where Hydra says so, the config is composed again to tell which."""
    def shown(self, config_name, overrides, cfg_type, package, resolve=False):
        said, not_found = io.StringIO(), f"package '{package}' not found in config\n"
        try:
            with contextlib.redirect_stderr(said):
                return show_cfg(self, config_name, overrides, cfg_type, package, resolve)
        except SystemExit:
            if not said.getvalue().endswith(not_found):
                raise
        finally:  # what else it said (a warning)
            sys.stderr.write(said.getvalue().removesuffix(not_found))
        from hydra.types import RunMode

        cfg = self.get_sanitized_cfg(self.compose_config(config_name, overrides, run_mode=RunMode.RUN,
                                                         with_log_configuration=False), cfg_type)
        parent, _, name = package.rpartition(".")
        section = OmegaConf.select(cfg, parent) if parent else cfg
        if isinstance(section, DictConfig) and name in section:  # there, and null
            print("null")
            return None
        if cfg_type == "hydra" and package.split(".")[0] != "hydra":
            sys.exit(f"Error: --cfg hydra prints Hydra's config, which has no {package}: --cfg job -p {package} "
                     f"prints the run's.")
        keys = list(section.keys()) if isinstance(section, DictConfig) else []
        others = options_having(parent, name, overrides) if parent in GROUP_SCHEMAS else []
        hint = f" ({' and '.join(others)} {'has' if len(others) == 1 else 'have'} it)" if others else did_you_mean(
            name, keys, f"{parent}." * bool(parent))
        sys.exit(f"Error: -p {package} names nothing in the config{hint}: `python run.py --cfg {cfg_type}` prints it "
                 f"whole.")
    return shown


def logging_refused(error: Exception) -> Optional[str]:
    """``hydra.verbose=1`` (Hydra's bare AssertionError), or a logging config that Python's logging cannot take
    (``hydra.job_logging.root.level=BOGUS``; ``hydra.job.name=a/b``, which names the log file of Hydra's
    default logging): tracebacks."""
    frames = traceback.extract_tb(error.__traceback__)
    if isinstance(error, AssertionError) and frames and frames[-1].name == "configure_log":
        given = next((arg for arg in reversed(sys.argv[1:]) if override_key(arg) == "hydra.verbose"), "hydra.verbose")
        return (f"{given}: give true, the name of a logger to show at DEBUG (hydra.verbose=lenet_exp) or a list of "
                f"them (hydra.verbose=[lenet_exp,hydra]).")
    if isinstance(error, ValueError) and any(frame.name == "configure_logging" for frame in frames):
        cause = error.__cause__ or error.__context__
        return (f"Python's logging cannot take Hydra's logging config: {str(error)[:1].lower()}{str(error)[1:]}"
                f"{f' ({cause})' if cause else ''}. Correct what the command line gives hydra.job_logging, "
                f"hydra.hydra_logging or hydra.job.name (`python run.py --cfg hydra -p hydra.job_logging` shows it).")
    return None


def no_space_message(error: Exception) -> Optional[str]:
    """What to do where Hydra could not write a run's record or open its log (no space, no files left), which its
    reporter shows as a traceback; None for any other error."""
    full = disk_full_error(error)
    if full is None:
        return None
    return str(write_refused(Path(os.fsdecode(full.filename)) if full.filename else Path.cwd(), full))


def _raise(error: Exception) -> Any:
    raise error
