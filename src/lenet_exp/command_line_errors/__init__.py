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

Its modules: ``arguments`` reads the command line as Hydra's parser does; ``keys`` tells of a key, option or
value that the config lacks or refuses; ``misused`` of an override that Hydra reads but a run cannot use as
written; ``flags`` refuses flags that no run can use. Here: the reporter that asks them, wrapped around
Hydra's.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable, Optional

import hydra._internal.utils as hydra_utils
import yaml
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import (ConfigAttributeError, ConfigKeyError, ConfigTypeError, InterpolationResolutionError,
                              ValidationError)

from lenet_exp.command_line_errors.arguments import overrides_in
from lenet_exp.command_line_errors.flags import not_a_primary_config
from lenet_exp.command_line_errors.keys import (default_not_found, did_you_mean, given_by_a_study, group_left_unset,
                                                options_having, preset_key_of_a_replaced_option,
                                                preset_without_global_package, setting_of_the_resumed_run, unknown_key,
                                                unknown_option, without_global_package, wrong_value)
from lenet_exp.command_line_errors.misused import (deleted_setting, deleting_a_setting, deletion_of_another_value,
                                                   group_given_a_value, hydra_as_a_whole, hydra_setting_swept,
                                                   item_not_in_a_list, keyless, merged_options_in, misused_override,
                                                   search_space_written, unknown_deletion, unreadable_override)
from lenet_exp.config import GROUP_SCHEMAS
from lenet_exp.errors import GIVE_A_CONFIG_FOLDER, full_errors_wanted
from lenet_exp.files import disk_full_error, write_refused
from lenet_exp.overrides import multirun_flag, override_key


def raised_by_hydra(error: BaseException) -> bool:
    """Whether Hydra itself raised ``error``: its checks of its own flags (``--resolve`` without ``--cfg``, ``-sc``
    without ``install=``, a missing ``--experimental-rerun`` file) raise a ValueError of one clear sentence, which
    came with a traceback."""
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
    """``--info config optimizer=bogus`` printed the config search path's header, then the error: the config is
    composed first (for all but ``--info plugins``; ``defaults`` and ``defaults-tree``, which list the defaults
    alone, refuse a wrong value too), so that an error is all it says."""
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
