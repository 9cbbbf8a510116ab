"""Overrides that a run cannot use as written: one that Hydra's grammar cannot read, and of those it reads, a group
given a value, a setting deleted, a sweep that gives a value twice or sweeps Hydra itself, a search space on the
command line, ``hydra=`` as a whole, an override without a key, a number where a bool is."""

from __future__ import annotations

import dataclasses
import re
import typing
from typing import Optional, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ValueType
from hydra.errors import ConfigCompositionException, HydraException, OverrideParseException
from omegaconf import BooleanNode, DictConfig, OmegaConf

from lenet_exp.command_line_errors.keys import (SHOW_KEYS, config_loader, did_you_mean, group_options, having_it,
                                                listed_words, may_be_null, options_having, schema_keys,
                                                swept_options)
from lenet_exp.config import GROUP_SCHEMAS, TOP_LEVEL, Config
from lenet_exp.errors import ConfigError
from lenet_exp.overrides import OUTPUT_KEYS, TASK_PATH_KEYS, override_key, override_value, unquote
from lenet_exp.resume import replayed_setting, the_runs_own
from lenet_exp.sweeps.space import SEARCH_SPACE


GRAMMAR = "https://hydra.cc/docs/advanced/override_grammar/basic/"
RUN_SETTINGS = [name for name in TOP_LEVEL if name not in GROUP_SCHEMAS]  # trainer, seed, ...


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
            return str(ConfigError(key, number, "true, false or null" if may_be_null(key) else "true or false"))
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
    packaged = re.match(r"Could not (?:override|delete) '(\w+)@([^']+)'", text)
    if packaged:  # optimizer@foo=sgd: Hydra's own lines, with its HYDRA_FULL_ERROR hint
        group, package = packaged.groups()
        written = next((o for o in overrides if override_key(o) == f"{group}@{package}"), f"{group}@{package}")
        option = override_value(written) or "<option>"
        return (f"{written}: @{package} would move config group {group} elsewhere in the config, which lenet_exp "
                f"reads where it is: choose its option with {group}={option}, without the @{package}.")
    forced = re.match(r"force-add of config groups is not supported: '\+\+([^=']+)=([^']*)'", text)
    if forced:  # ++dataset=fashion_mnist: Hydra's own line and its HYDRA_FULL_ERROR hint
        return (f"++{forced.group(1)}={forced.group(2)}: ++ sets a key, and {forced.group(1)} is a config group: "
                f"choose its option with {forced.group(1)}={forced.group(2)}, without the ++.")
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
