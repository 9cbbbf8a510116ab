"""Hydra's flags as no run can use them, refused before Hydra runs: two modes at once (``--cfg job --info``), ``-m``
with ``hydra.mode=RUN``, ``-sc`` without a shell, ``-p`` without ``--cfg``, ``--experimental-rerun``,
``--config-path`` or ``--config-dir`` without configs, a run's record given as configs, and a preset given to
``--config-name``."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Optional

import yaml
from omegaconf import OmegaConf

from lenet_exp.command_line_errors.arguments import config_name_given, flags_and_overrides, hydra_flags, overrides_in
from lenet_exp.command_line_errors.keys import config_loader
from lenet_exp.command_line_errors.misused import search_space_key_by_key
from lenet_exp.config import ROOT_SCHEMA, STUDY_GROUP
from lenet_exp.files import HYDRA_FOLDER
from lenet_exp.overrides import MULTIRUN_FLAGS, multirun_flag, override_key, override_value, sets_hydra, unquote
from lenet_exp.sweeps.space import SEARCH_SPACE
from lenet_exp.validation import NOT_A_RUNS_CONFIG


# Hydra's flags that choose what it does, as its help names them (by its argument parser's dest); -m with one of
# them is run.py's to refuse (flags_first), which says how to see a job's config
HYDRA_MODES = {"help": "--help", "hydra_help": "--hydra-help", "run": "--run", "cfg": "--cfg", "info": "--info",
               "shell_completion": "--shell-completion"}
OWN_CALLBACKS = ("hydra.callbacks", "hydra.callbacks.sweep_summary", "hydra.callbacks.output_dir_check")  # config.yaml


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
    if in_it and (not chosen or own_primary_config(name, arguments)):  # a primary config of one's own, with a
        return None  # mistake in it (an option of the same name or not): told as in any config file
    return no_run_config(name, chosen[0] if chosen else None)


def own_primary_config(name: str, arguments: list[str]) -> bool:
    """Whether ``--config-name NAME`` is a file of the --config-dir's own that composes a run (its mistake is its
    own, whatever a group's option of that name)."""
    flags = hydra_flags(arguments)
    path = Path(flags.config_dir) / f"{name.removesuffix('.yaml')}.yaml" if flags and flags.config_dir else None
    return path is not None and path.is_file() and composes_a_run(path)


def no_run_config(name: str, option: Optional[str]) -> str:
    instead = f"; {option} chooses that option" if option else ""
    return (f"--config-name {name} names no config that composes a run: python run.py composes configs/config.yaml, "
            f"and --config-name chooses another such file of configs/ or of --config-dir{instead}.")


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
