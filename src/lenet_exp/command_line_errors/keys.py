"""A key, a config group's option or a value that the config lacks or refuses (``trainer.epoch``,
``optimizer=adamx``, ``trainer.epochs=ten``): what to type instead, naming the options, presets or studies that
have the key, and the folders that hold the configs."""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import sys
import typing
from pathlib import Path
from typing import Optional, Sequence

from hydra.core.default_element import GroupDefault
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException, HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ConfigTypeError, ValidationError

from lenet_exp.command_line_errors.arguments import hydra_flags, overrides_in
from lenet_exp.config import DATASET_SCHEMA, GROUP_SCHEMAS, STUDY_GROUP, Config, schema_name, sets_a_preset
from lenet_exp.errors import ConfigError, closest
from lenet_exp.overrides import override_key, override_value
from lenet_exp.resume import replayed_setting, the_runs_own
from lenet_exp.sweeps.space import GRID_SAMPLER, SEARCH_SPACE
from lenet_exp.validation import optimizer_arguments


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


def may_be_null(key: str) -> bool:
    """Whether a setting of the run's schema outside the config groups (``trainer.channels_last``), or of Hydra's
    own (``hydra.job.chdir``), takes null."""
    from hydra.conf import HydraConf

    schema, names = (HydraConf, key.split(".")[1:]) if key.startswith("hydra.") else (Config, key.split("."))
    for name in names:
        hints = typing.get_type_hints(schema) if dataclasses.is_dataclass(schema) else {}
        if name not in hints:
            return False
        schema = hints[name]
    return type(None) in typing.get_args(schema)


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
    elif may_be_null(key) and "null" not in expected:  # (channels_last=maybe: "expected true or false" left null out)
        expected = "true, false or null" if expected == "true or false" else f"{expected} or null"
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


def config_loader():
    """Hydra's config loader of the command that failed, or None where Hydra had not started."""
    from hydra.core.global_hydra import GlobalHydra

    return GlobalHydra.instance().config_loader() if GlobalHydra.instance().is_initialized() else None


def group_options(group: str) -> list[str]:
    """The options of config group ``group`` that the running Hydra finds (a folder of one's own included); none
    where Hydra had not started."""
    loader = config_loader()
    return loader.get_group_options(group) if loader else []
